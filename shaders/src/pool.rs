//! 3×3 average pooling, padding 1, stride 1 or 2, padded positions not counted
//! (PyTorch's `AvgPool2d(3, stride, padding=1, count_include_pad=False)`, the DARTS and
//! NAS-Bench-201 `avg_pool_3x3`). Forward and backward are one pass each, parallel over planes.

use burn::tensor::Tensor;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops};
use burn_flex::{Flex, FlexTensor};

use crate::bridge::{
    AdTensor, Flexed, contiguous, dims, flexed, from_vec, par_zeroed, par_zeroed_map, plain_tensor,
    record, register_input_grad, values,
};

/// Output size of a 3×3 window, padding 1, `stride` over `n` positions.
fn out_len(n: usize, stride: usize) -> usize {
    (n + 2 - 3) / stride + 1
}

/// The input rows (or columns) `lo..hi` under output position `o`.
#[inline]
fn window(o: usize, stride: usize, n: usize) -> (usize, usize) {
    let start = (o * stride) as isize - 1;
    let lo = start.max(0) as usize;
    let hi = ((start + 3) as usize).min(n);
    (lo, hi)
}

/// `out[j] = x[j−1] + x[j] + x[j+1]` over the positions inside the row.
#[inline]
fn row_sum3(x: &[f32], out: &mut [f32]) {
    let w = x.len();
    if w == 1 {
        out[0] = x[0];
        return;
    }
    out[0] = x[0] + x[1];
    for j in 1..w - 1 {
        out[j] = x[j - 1] + x[j] + x[j + 1];
    }
    out[w - 1] = x[w - 2] + x[w - 1];
}

/// Number of positions of a 3-wide window centred at `i` inside `0..n` (stride 1, padding 1).
#[inline]
fn count3(i: usize, n: usize) -> f32 {
    (usize::from(i > 0) + 1 + usize::from(i + 1 < n)) as f32
}

/// 3×3 window sums of one `[h, w]` plane, stride 1, zero outside, divided by `divisor(i, j)`
/// when `divide` (the forward) or not (the backward of `g = dy / count`).
fn box3(x: &[f32], h: usize, w: usize, rows: &mut Vec<f32>, out: &mut [f32], divide: bool) {
    rows.resize(h * w, 0.0);
    for r in 0..h {
        row_sum3(&x[r * w..(r + 1) * w], &mut rows[r * w..(r + 1) * w]);
    }
    let cols: Vec<f32> = (0..w).map(|j| count3(j, w)).collect();
    for i in 0..h {
        let o = &mut out[i * w..(i + 1) * w];
        o.copy_from_slice(&rows[i * w..(i + 1) * w]);
        if i > 0 {
            for (v, &a) in o.iter_mut().zip(&rows[(i - 1) * w..i * w]) {
                *v += a;
            }
        }
        if i + 1 < h {
            for (v, &a) in o.iter_mut().zip(&rows[(i + 1) * w..(i + 2) * w]) {
                *v += a;
            }
        }
        if divide {
            let rc = count3(i, h);
            for (v, &cc) in o.iter_mut().zip(&cols) {
                *v /= rc * cc;
            }
        }
    }
}

fn forward(x: &[f32], planes: usize, h: usize, w: usize, s: usize) -> Vec<f32> {
    let (ho, wo) = (out_len(h, s), out_len(w, s));
    if s == 1 {
        return par_zeroed_map(planes * h * w, h * w, Vec::new, |rows, p, out| {
            box3(&x[p * h * w..(p + 1) * h * w], h, w, rows, out, true)
        })
        .0;
    }
    let y = par_zeroed(planes * ho * wo, ho * wo, |p, out| {
        let xs = &x[p * h * w..(p + 1) * h * w];
        for i in 0..ho {
            let (r0, r1) = window(i, s, h);
            for j in 0..wo {
                let (c0, c1) = window(j, s, w);
                let mut acc = 0.0f32;
                for r in r0..r1 {
                    for c in c0..c1 {
                        acc += xs[r * w + c];
                    }
                }
                out[i * wo + j] = acc / ((r1 - r0) * (c1 - c0)) as f32;
            }
        }
    });
    y
}

fn backward(dy: &[f32], planes: usize, h: usize, w: usize, s: usize) -> Vec<f32> {
    let (ho, wo) = (out_len(h, s), out_len(w, s));
    if s == 1 {
        // Input (r, c) is in the windows of outputs r−1..r+1 × c−1..c+1 (stride 1, padding 1):
        // dx is the 3×3 window sum of g = dy / count.
        let cols: Vec<f32> = (0..w).map(|j| count3(j, w)).collect();
        return par_zeroed_map(
            planes * h * w,
            h * w,
            || (Vec::new(), Vec::new()),
            |(rows, g), p, gx| {
                let gy = &dy[p * h * w..(p + 1) * h * w];
                g.resize(h * w, 0.0);
                for i in 0..h {
                    let rc = count3(i, h);
                    for ((d, &v), &cc) in g[i * w..(i + 1) * w]
                        .iter_mut()
                        .zip(&gy[i * w..(i + 1) * w])
                        .zip(&cols)
                    {
                        *d = v / (rc * cc);
                    }
                }
                box3(g, h, w, rows, gx, false)
            },
        )
        .0;
    }
    let dx = par_zeroed(planes * h * w, h * w, |p, g| {
        let gy = &dy[p * ho * wo..(p + 1) * ho * wo];
        for i in 0..ho {
            let (r0, r1) = window(i, s, h);
            for j in 0..wo {
                let (c0, c1) = window(j, s, w);
                let v = gy[i * wo + j] / ((r1 - r0) * (c1 - c0)) as f32;
                for r in r0..r1 {
                    for c in c0..c1 {
                        g[r * w + c] += v;
                    }
                }
            }
        }
    });
    dx
}

#[derive(Debug)]
struct AvgPoolBackward;

#[derive(Clone, Debug)]
struct PoolState {
    input: AdTensor,
    shape: Vec<usize>,
    stride: usize,
}

impl Backward<Flex, 1> for AvgPoolBackward {
    type State = PoolState;

    fn backward(self, ops: Ops<PoolState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [px] = ops.parents;
        let dy: FlexTensor = contiguous(grads.consume::<Flex>(&ops.node));
        if px.is_some() {
            let s = &ops.state.shape;
            let dx = backward(values(&dy), s[0] * s[1], s[2], s[3], ops.state.stride);
            register_input_grad(grads, &ops.state.input, dx, s.clone());
        }
    }
}

/// `avg_pool_3x3` of `x` `[batch, channels, h, w]` → `[batch, channels, ⌊(h−1)/s⌋+1, ⌊(w−1)/s⌋+1]`,
/// `stride` 1 or 2. `None` when `x` is not an f32 tensor on flex.
pub fn avg_pool3x3(x: &Tensor<4>, stride: usize) -> Option<Tensor<4>> {
    let fx = flexed(x)?;
    let xp = contiguous(fx.primitive());
    let shape = dims(&xp);
    let (h, w) = (shape[2], shape[3]);
    let y = forward(values(&xp), shape[0] * shape[1], h, w, stride);
    let out = from_vec(
        y,
        vec![shape[0], shape[1], out_len(h, stride), out_len(w, stride)],
    );
    Some(match fx {
        Flexed::Plain(_) => plain_tensor(out),
        Flexed::Tracked(t) => {
            let node = t.node();
            let state = PoolState {
                input: t,
                shape,
                stride,
            };
            record(AvgPoolBackward, [node], state, out)
        }
    })
}

/// Index (within the plane) of the first maximum of the window of output (i, j), row-major.
#[inline]
fn argmax3(xs: &[f32], w: usize, (r0, r1): (usize, usize), (c0, c1): (usize, usize)) -> usize {
    let mut best = r0 * w + c0;
    let mut v = xs[best];
    for r in r0..r1 {
        for c in c0..c1 {
            let x = xs[r * w + c];
            if x > v {
                v = x;
                best = r * w + c;
            }
        }
    }
    best
}

fn max_forward(x: &[f32], planes: usize, h: usize, w: usize, s: usize) -> Vec<f32> {
    let (ho, wo) = (out_len(h, s), out_len(w, s));
    let y = par_zeroed(planes * ho * wo, ho * wo, |p, out| {
        let xs = &x[p * h * w..(p + 1) * h * w];
        for i in 0..ho {
            let rows = window(i, s, h);
            for j in 0..wo {
                out[i * wo + j] = xs[argmax3(xs, w, rows, window(j, s, w))];
            }
        }
    });
    y
}

fn max_backward(x: &[f32], dy: &[f32], planes: usize, h: usize, w: usize, s: usize) -> Vec<f32> {
    let (ho, wo) = (out_len(h, s), out_len(w, s));
    let dx = par_zeroed(planes * h * w, h * w, |p, g| {
        let xs = &x[p * h * w..(p + 1) * h * w];
        let gy = &dy[p * ho * wo..(p + 1) * ho * wo];
        for i in 0..ho {
            let rows = window(i, s, h);
            for j in 0..wo {
                g[argmax3(xs, w, rows, window(j, s, w))] += gy[i * wo + j];
            }
        }
    });
    dx
}

#[derive(Debug)]
struct MaxPoolBackward;

#[derive(Clone, Debug)]
struct MaxState {
    input: AdTensor,
    x: FlexTensor,
    stride: usize,
}

impl Backward<Flex, 1> for MaxPoolBackward {
    type State = MaxState;

    fn backward(self, ops: Ops<MaxState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [px] = ops.parents;
        let dy: FlexTensor = contiguous(grads.consume::<Flex>(&ops.node));
        if px.is_some() {
            let shape = dims(&ops.state.x);
            let dx = max_backward(
                values(&ops.state.x),
                values(&dy),
                shape[0] * shape[1],
                shape[2],
                shape[3],
                ops.state.stride,
            );
            register_input_grad(grads, &ops.state.input, dx, shape);
        }
    }
}

/// `max_pool_3x3` (padding 1, padded positions never win) of `x` `[batch, channels, h, w]` →
/// `[batch, channels, ⌊(h−1)/s⌋+1, ⌊(w−1)/s⌋+1]`, `stride` 1 or 2. The gradient goes to the
/// first maximum of each window in row-major order (the argmax is recomputed from the saved
/// input, nothing else is stored). `None` when `x` is not an f32 tensor on flex.
pub fn max_pool3x3(x: &Tensor<4>, stride: usize) -> Option<Tensor<4>> {
    let fx = flexed(x)?;
    let xp = contiguous(fx.primitive());
    let shape = dims(&xp);
    let (h, w) = (shape[2], shape[3]);
    let y = max_forward(values(&xp), shape[0] * shape[1], h, w, stride);
    let out = from_vec(
        y,
        vec![shape[0], shape[1], out_len(h, stride), out_len(w, stride)],
    );
    Some(match fx {
        Flexed::Plain(_) => plain_tensor(out),
        Flexed::Tracked(t) => {
            let node = t.node();
            let state = MaxState {
                input: t,
                x: xp,
                stride,
            };
            record(MaxPoolBackward, [node], state, out)
        }
    })
}
