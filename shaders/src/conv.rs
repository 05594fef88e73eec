//! Dense 2-d convolution (`groups = 1`, no bias, square kernel, symmetric padding, dilation 1):
//! the ReLU-Conv-BN convolutions, the 1×1 pointwise convolutions of `sep_conv` / `dil_conv`,
//! FactorizedReduce and the stems. Everything is matrix products per image, parallel over the
//! images of the batch: forward `y_n = W·im2col(x_n)`; input gradient `dcol = Wᵀ·dy_n` folded
//! back with col2im; weight gradient `dW += dy_n·im2col(x_n)ᵀ`. A 1×1 stride-1 convolution needs
//! no im2col at all. (flex's forward converts to channels-last and tiles pixels across images; Burn's generic backward computes the input gradient as a transposed convolution and the
//! weight gradient as a convolution with the whole gradient map as its kernel.)

use burn::tensor::Tensor;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use crate::bridge::{
    AdTensor, Flexed, contiguous, dims, flexed, from_vec, par_uninit_map, par_zeroed_map,
    plain_tensor, record, register_input_grad, values,
};

#[derive(Clone, Copy, Debug)]
struct Geo {
    ci: usize,
    co: usize,
    h: usize,
    w: usize,
    k: usize,
    s: usize,
    p: usize,
    ho: usize,
    wo: usize,
}

impl Geo {
    /// Output positions `lo..hi` whose input index `o·s − p + off` lies in `0..n`.
    #[inline]
    fn range(&self, out: usize, n: usize, off: usize) -> (usize, usize) {
        crate::bridge::valid_range(out, n, self.s, self.p, off)
    }

    fn pointwise(&self) -> bool {
        self.k == 1 && self.s == 1 && self.p == 0
    }

    /// Rows of the im2col matrix (`ci·k·k`).
    fn rows(&self) -> usize {
        self.ci * self.k * self.k
    }
}

/// `col[(c·k + a)·k + b][i·wo + j] = x[c][i·s − p + a][j·s − p + b]` (0 outside).
fn im2col(x: &[f32], g: Geo, col: &mut [f32]) {
    let pix = g.ho * g.wo;
    for c in 0..g.ci {
        let xc = &x[c * g.h * g.w..(c + 1) * g.h * g.w];
        for a in 0..g.k {
            let (i0, i1) = g.range(g.ho, g.h, a);
            for b in 0..g.k {
                let row = (c * g.k + a) * g.k + b;
                let dst = &mut col[row * pix..(row + 1) * pix];
                let (j0, j1) = g.range(g.wo, g.w, b);
                for i in 0..g.ho {
                    let out = &mut dst[i * g.wo..(i + 1) * g.wo];
                    if i < i0 || i >= i1 || j0 >= j1 {
                        out.fill(0.0);
                        continue;
                    }
                    let r = i * g.s + a - g.p;
                    let xr = &xc[r * g.w..(r + 1) * g.w];
                    out[..j0].fill(0.0);
                    out[j1..].fill(0.0);
                    if g.s == 1 {
                        let base = j0 + b - g.p;
                        out[j0..j1].copy_from_slice(&xr[base..base + (j1 - j0)]);
                    } else {
                        for j in j0..j1 {
                            out[j] = xr[j * g.s + b - g.p];
                        }
                    }
                }
            }
        }
    }
}

/// The im2col matrix of one image `x` (`[kr × pix]`, built in `scratch`), or `x` itself for a 1×1
/// stride-1 convolution, whose im2col matrix it is.
fn columns<'a>(x: &'a [f32], g: Geo, scratch: &'a mut Vec<f32>) -> &'a [f32] {
    if g.pointwise() {
        return x;
    }
    scratch.resize(g.rows() * g.ho * g.wo, 0.0);
    im2col(x, g, scratch);
    scratch
}

/// `dx[c][i·s − p + a][j·s − p + b] += dcol[(c·k + a)·k + b][i·wo + j]`.
fn col2im(dcol: &[f32], g: Geo, dx: &mut [f32]) {
    let pix = g.ho * g.wo;
    dx.fill(0.0);
    for c in 0..g.ci {
        let dxc = &mut dx[c * g.h * g.w..(c + 1) * g.h * g.w];
        for a in 0..g.k {
            let (i0, i1) = g.range(g.ho, g.h, a);
            for b in 0..g.k {
                let row = (c * g.k + a) * g.k + b;
                let src = &dcol[row * pix..(row + 1) * pix];
                let (j0, j1) = g.range(g.wo, g.w, b);
                if j0 >= j1 {
                    continue;
                }
                for i in i0..i1 {
                    let r = i * g.s + a - g.p;
                    let xr = &mut dxc[r * g.w..(r + 1) * g.w];
                    let sr = &src[i * g.wo..(i + 1) * g.wo];
                    if g.s == 1 {
                        let base = j0 + b - g.p;
                        for (d, &v) in xr[base..base + (j1 - j0)].iter_mut().zip(&sr[j0..j1]) {
                            *d += v;
                        }
                    } else {
                        for j in j0..j1 {
                            xr[j * g.s + b - g.p] += sr[j];
                        }
                    }
                }
            }
        }
    }
}

/// Row-major `dst[m×n] (+)= lhs · rhs` with explicit strides (column stride, row stride); `dst`
/// points at m·n values.
#[allow(clippy::too_many_arguments)]
fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    accumulate: bool,
    lhs: &[f32],
    (lhs_cs, lhs_rs): (usize, usize),
    rhs: &[f32],
    (rhs_cs, rhs_rs): (usize, usize),
) {
    // SAFETY: `dst` has room for m·n values, and the slices cover every index the strides reach
    // (checked by the callers' shapes). Without `accumulate`, gemm writes `dst` without reading
    // it, so `dst` may be uninitialised.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Images per partial weight gradient in the backward pass (fixed, for repeatable sums).
const IMAGES_PER_GROUP: usize = 4;

/// Input gradient (if `want_dx`) and weight gradient (if `want_dw`).
fn backward(
    dy: &[f32],
    x: &[f32],
    wt: &[f32],
    n: usize,
    g: Geo,
    want_dx: bool,
    want_dw: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let (pix, kr) = (g.ho * g.wo, g.rows());
    let chw = g.ci * g.h * g.w;
    let step = |img: usize, dxn: Option<&mut [f32]>, acc: &mut Vec<f32>, scratch: &mut Vec<f32>| {
        let dyn_ = &dy[img * g.co * pix..(img + 1) * g.co * pix];
        let xn = &x[img * chw..(img + 1) * chw];
        if let Some(dxn) = dxn {
            // dcol = Wᵀ · dy_n: [kr × pix] = [kr × co] · [co × pix]; for a 1×1 stride-1
            // convolution dcol is dx_n itself, otherwise it is folded back with col2im.
            let dst = if g.pointwise() {
                dxn.as_mut_ptr()
            } else {
                scratch.resize(kr * pix, 0.0);
                scratch.as_mut_ptr()
            };
            matmul(kr, pix, g.co, dst, false, wt, (kr, 1), dyn_, (1, pix));
            if !g.pointwise() {
                col2im(scratch, g, dxn);
            }
        }
        if want_dw {
            // dW += dy_n · colᵀ: [co × kr] = [co × pix] · [pix × kr].
            if acc.is_empty() {
                acc.resize(g.co * kr, 0.0);
            }
            let col = columns(xn, g, scratch);
            let dst = acc.as_mut_ptr();
            matmul(g.co, kr, pix, dst, true, dyn_, (1, pix), col, (pix, 1));
        }
    };
    // Images are taken in fixed groups, each with its own weight-gradient accumulator, summed in
    // group order: the result depends on neither the thread count nor the scheduling, so a run
    // is bit-for-bit repeatable (an interrupted and resumed run equals an uninterrupted one).
    let groups = n.div_ceil(IMAGES_PER_GROUP);
    let group = |gi: usize, mut dxg: Option<&mut [f32]>| -> Vec<f32> {
        let (mut acc, mut scratch) = (Vec::new(), Vec::new());
        for img in gi * IMAGES_PER_GROUP..((gi + 1) * IMAGES_PER_GROUP).min(n) {
            let local = img - gi * IMAGES_PER_GROUP;
            let dxn = dxg
                .as_deref_mut()
                .map(|d| &mut d[local * chw..(local + 1) * chw]);
            step(img, dxn, &mut acc, &mut scratch);
        }
        acc
    };
    let (dx, parts): (Vec<f32>, Vec<Vec<f32>>) = if want_dx {
        par_zeroed_map(
            n * chw,
            IMAGES_PER_GROUP * chw,
            || (),
            |_, gi, dxg| group(gi, Some(dxg)),
        )
    } else {
        let parts = (0..groups)
            .into_par_iter()
            .map(|gi| group(gi, None))
            .collect();
        (Vec::new(), parts)
    };
    let dw = want_dw.then(|| {
        let mut dw = vec![0.0f32; g.co * kr];
        for p in parts.iter().filter(|p| !p.is_empty()) {
            for (d, v) in dw.iter_mut().zip(p) {
                *d += v;
            }
        }
        dw
    });
    (want_dx.then_some(dx), dw)
}

/// Forward per image: `y_n = W · im2col(x_n)` (`W · x_n` for a 1×1 stride-1 convolution).
fn forward(x: &[f32], wt: &[f32], n: usize, g: Geo) -> Vec<f32> {
    let (pix, kr) = (g.ho * g.wo, g.rows());
    let chw = g.ci * g.h * g.w;
    // SAFETY: each image's output chunk is written whole by the matrix product (not
    // accumulating).
    unsafe {
        par_uninit_map(
            n * g.co * pix,
            g.co * pix,
            Vec::new,
            |scratch: &mut Vec<f32>, img, yn: &mut [std::mem::MaybeUninit<f32>]| {
                let col = columns(&x[img * chw..(img + 1) * chw], g, scratch);
                let dst = yn.as_mut_ptr() as *mut f32;
                matmul(g.co, pix, kr, dst, false, wt, (1, kr), col, (1, pix));
            },
        )
        .0
    }
}

#[derive(Clone, Debug)]
struct ConvState {
    /// The tracked input, for [`register_input_grad`].
    input: AdTensor,
    x: FlexTensor,
    weight: FlexTensor,
    geo: Geo,
    n: usize,
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 2> for ConvBackward {
    type State = ConvState;

    fn backward(self, ops: Ops<ConvState, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [px, pw] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let st = &ops.state;
        let g = st.geo;
        let (dx, dw) = backward(
            values(&dy),
            values(&st.x),
            values(&st.weight),
            st.n,
            g,
            px.is_some(),
            pw.is_some(),
        );
        if let (Some(_), Some(dx)) = (px, dx) {
            register_input_grad(grads, &st.input, dx, vec![st.n, g.ci, g.h, g.w]);
        }
        if let (Some(node), Some(dw)) = (pw, dw) {
            grads.register::<Flex>(node.id, from_vec(dw, vec![g.co, g.ci, g.k, g.k]));
        }
    }
}

/// Convolution of `x` `[batch, c_in, h, w]` with `weight` `[c_out, c_in, k, k]`, `stride`,
/// symmetric `padding`, dilation 1, no bias: `[batch, c_out, h', w']`,
/// `h' = (h + 2·padding − k) / stride + 1`. Gradients reach `x` and `weight` when tracked. `None` when a tensor is not f32 on flex or the shapes do not fit.
pub fn conv2d_dense(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    stride: usize,
    padding: usize,
) -> Option<Tensor<4>> {
    let [n, ci, h, w] = x.dims();
    let [co, wci, k, k2] = weight.dims();
    if wci != ci || k != k2 || k == 0 || stride == 0 || h + 2 * padding < k || w + 2 * padding < k {
        return None;
    }
    let geo = Geo {
        ci,
        co,
        h,
        w,
        k,
        s: stride,
        p: padding,
        ho: (h + 2 * padding - k) / stride + 1,
        wo: (w + 2 * padding - k) / stride + 1,
    };
    let (fx, fw) = (flexed(x)?, flexed(weight)?);
    let (xp, wp) = (contiguous(fx.primitive()), contiguous(fw.primitive()));
    let y = from_vec(
        forward(values(&xp), values(&wp), n, geo),
        vec![n, co, geo.ho, geo.wo],
    );
    debug_assert_eq!(dims(&y), vec![n, co, geo.ho, geo.wo]);
    match (fx, fw) {
        (Flexed::Plain(_), Flexed::Plain(_)) => Some(plain_tensor(y)),
        (Flexed::Tracked(tx), Flexed::Tracked(tw)) => {
            let node = tx.node();
            let state = ConvState {
                input: tx,
                x: xp,
                weight: wp,
                geo,
                n,
            };
            Some(record(ConvBackward, [node, tw.node()], state, y))
        }
        _ => None,
    }
}
