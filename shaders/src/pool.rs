//! 3×3 average pooling, padding 1, stride 1 or 2, padded positions not counted
//! (PyTorch's `AvgPool2d(3, stride, padding=1, count_include_pad=False)`, the DARTS and
//! NAS-Bench-201 `avg_pool_3x3`). Forward and backward are one pass each, parallel over planes.

use burn::tensor::Tensor;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::NoCheckpointing;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use crate::bridge::{
    Flexed, contiguous, dims, flexed, from_vec, plain_tensor, tracked_tensor, values,
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

fn forward(x: &[f32], planes: usize, h: usize, w: usize, s: usize) -> Vec<f32> {
    let (ho, wo) = (out_len(h, s), out_len(w, s));
    let mut y = vec![0.0f32; planes * ho * wo];
    y.par_chunks_mut(ho * wo).enumerate().for_each(|(p, out)| {
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
    let mut dx = vec![0.0f32; planes * h * w];
    dx.par_chunks_mut(h * w).enumerate().for_each(|(p, g)| {
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
    shape: Vec<usize>,
    stride: usize,
}

impl Backward<Flex, 1> for AvgPoolBackward {
    type State = PoolState;

    fn backward(self, ops: Ops<PoolState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [px] = ops.parents;
        let dy: FlexTensor = contiguous(grads.consume::<Flex>(&ops.node));
        if let Some(node) = px {
            let s = &ops.state.shape;
            let dx = backward(values(&dy), s[0] * s[1], s[2], s[3], ops.state.stride);
            grads.register::<Flex>(node.id, from_vec(dx, s.clone()));
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
            let state = PoolState { shape, stride };
            tracked_tensor(
                match AvgPoolBackward
                    .prepare::<NoCheckpointing>([t.node()])
                    .compute_bound()
                    .stateful()
                {
                    OpsKind::Tracked(prep) => prep.finish(state, out),
                    OpsKind::UnTracked(prep) => prep.finish(out),
                },
            )
        }
    })
}
