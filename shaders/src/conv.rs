//! Dense 2-d convolution (`groups = 1`, no bias, square kernel, symmetric padding, dilation 1):
//! the ReLU-Conv-BN convolutions, the 1×1 pointwise convolutions of `sep_conv` / `dil_conv`,
//! FactorizedReduce and the stems. Everything is matrix products per image, parallel over the
//! images of the batch: forward `y_n = W·im2col(x_n)`; input gradient `dcol = Wᵀ·dy_n` folded
//! back with col2im; weight gradient `dW += dy_n·colt_n` with `colt_n` the transposed im2col
//! matrix (pixel-major, so that gemm packs it with contiguous copies). A 1×1 stride-1
//! convolution needs no im2col in the forward and the input gradient.
//!
//! [`conv2d_dense_shared`] runs several such convolutions of one input at once (the
//! `nor_conv_kxk` of all out-edges of a NAS-Bench-201 node): one im2col per image for all of
//! them, one input-gradient pass (`Σ_e W_eᵀ·dy_e` accumulated by the matrix products, one
//! col2im), one transposed im2col for all weight gradients.
//!
//! (flex's forward converts to channels-last and tiles pixels across images; Burn's generic
//! backward computes the input gradient as a transposed convolution and the weight gradient as a
//! convolution with the whole gradient map as its kernel.)

use burn::tensor::Tensor;
use burn_autodiff::NodeId;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;
use std::sync::{Arc, Mutex};

use crate::bridge::{
    AdTensor, Flexed, contiguous, dims, flexed, from_vec, par_uninit_map, par_zeroed_map,
    plain_tensor, record, record_primitive, register_input_grad, values,
};

#[derive(Clone, Copy, Debug)]
struct Geo {
    ci: usize,
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

/// The transposed im2col matrix of one image, pixel-major with the window offset outside the
/// channel: `colt[i·wo + j][(a·k + b)·ci + c] = x[c][i·s − p + a][j·s − p + b]` (0 outside),
/// `[pix × kr]`, built in `colt` from `x` transposed to `[h][w][ci]` in `hwc`.
///
/// Why: the weight gradient `dy_n · colᵀ` reduces over pixels, along which both `dy_n` and the
/// im2col matrix are contiguous; gemm then packs the im2col matrix with a strided scalar gather
/// (7 % of a NAS-Bench-201 C = 16 search step). Pixel-major, it packs with contiguous copies,
/// and the window rows here are copies of `ci` contiguous channels.
fn im2col_t(x: &[f32], g: Geo, hwc: &mut Vec<f32>, colt: &mut Vec<f32>) {
    let (hw, ci, kr) = (g.h * g.w, g.ci, g.rows());
    hwc.resize(hw * ci, 0.0);
    for (c, xc) in x.chunks_exact(hw).enumerate() {
        for (q, &v) in xc.iter().enumerate() {
            hwc[q * ci + c] = v;
        }
    }
    colt.resize(g.ho * g.wo * kr, 0.0);
    for a in 0..g.k {
        let (i0, i1) = g.range(g.ho, g.h, a);
        for b in 0..g.k {
            let (j0, j1) = g.range(g.wo, g.w, b);
            let off = (a * g.k + b) * ci;
            for i in 0..g.ho {
                for j in 0..g.wo {
                    let dst = &mut colt[(i * g.wo + j) * kr + off..][..ci];
                    if i < i0 || i >= i1 || j < j0 || j >= j1 {
                        dst.fill(0.0);
                    } else {
                        let q = (i * g.s + a - g.p) * g.w + j * g.s + b - g.p;
                        for (d, &v) in dst.iter_mut().zip(&hwc[q * ci..(q + 1) * ci]) {
                            *d = v;
                        }
                    }
                }
            }
        }
    }
}

/// `dw[o][c][a][b]` from the weight gradient `dwt[o][(a·k + b)·ci + c]` of [`im2col_t`]'s order.
fn from_window_major(dwt: &[f32], g: Geo) -> Vec<f32> {
    let (kk, kr) = (g.k * g.k, g.rows());
    let mut dw = vec![0.0f32; dwt.len()];
    for (o, row) in dwt.chunks_exact(kr).enumerate() {
        for ab in 0..kk {
            for c in 0..g.ci {
                dw[o * kr + c * kk + ab] = row[ab * g.ci + c];
            }
        }
    }
    dw
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

/// The weights of one or more convolutions of the same input and geometry (output `e` has
/// `cos[e]` channels and weight `wts[e]`, `[cos[e] × kr]` row-major).
#[derive(Clone, Copy)]
struct Weights<'a> {
    wts: &'a [&'a [f32]],
    cos: &'a [usize],
}

/// Input gradient (if `want_dx`) and the weight gradient of each output `e` with `want_dw[e]`,
/// from the output gradients `dys` (`None`: that output received none, so it adds nothing).
/// The input gradient of several outputs is one sum, `dcol = Σ_e W_eᵀ · dy_e`, accumulated by
/// the matrix products themselves and folded back by one col2im; the weight gradients share one
/// im2col per image.
fn backward(
    dys: &[Option<&[f32]>],
    x: &[f32],
    ws: Weights,
    n: usize,
    g: Geo,
    want_dx: bool,
    want_dw: &[bool],
) -> (Option<Vec<f32>>, Vec<Option<Vec<f32>>>) {
    let (pix, kr) = (g.ho * g.wo, g.rows());
    let chw = g.ci * g.h * g.w;
    let m = ws.cos.len();
    let dw_of = |e: usize| want_dw[e] && dys[e].is_some();
    let any_dw = (0..m).any(dw_of);
    let step = |img: usize,
                dxn: Option<&mut [f32]>,
                accs: &mut [Vec<f32>],
                scratch: &mut Vec<f32>,
                hwc: &mut Vec<f32>| {
        let dy_n =
            |e: usize| dys[e].map(|d| &d[img * ws.cos[e] * pix..(img + 1) * ws.cos[e] * pix]);
        let xn = &x[img * chw..(img + 1) * chw];
        if let Some(dxn) = dxn {
            // dcol = Σ_e W_eᵀ · dy_e,n: [kr × pix] = [kr × co_e] · [co_e × pix]; for a 1×1
            // stride-1 convolution dcol is dx_n itself, otherwise it is folded back with col2im.
            let dst = if g.pointwise() {
                dxn.as_mut_ptr()
            } else {
                scratch.resize(kr * pix, 0.0);
                scratch.as_mut_ptr()
            };
            let mut accumulate = false;
            for e in 0..m {
                if let Some(dye) = dy_n(e) {
                    matmul(
                        kr,
                        pix,
                        ws.cos[e],
                        dst,
                        accumulate,
                        ws.wts[e],
                        (kr, 1),
                        dye,
                        (1, pix),
                    );
                    accumulate = true;
                }
            }
            // Without any output gradient, dx_n stays the zeros it was handed.
            if accumulate && !g.pointwise() {
                col2im(scratch, g, dxn);
            }
        }
        if any_dw {
            // dW_e += dy_e,n · colt: [co_e × kr] = [co_e × pix] · [pix × kr], in the window-major
            // column order of `colt` (put back in the order of the weights at the end).
            im2col_t(xn, g, hwc, scratch);
            for (e, acc) in accs.iter_mut().enumerate() {
                let Some(dye) = dy_n(e).filter(|_| dw_of(e)) else {
                    continue;
                };
                if acc.is_empty() {
                    acc.resize(ws.cos[e] * kr, 0.0);
                }
                let dst = acc.as_mut_ptr();
                matmul(
                    ws.cos[e],
                    kr,
                    pix,
                    dst,
                    true,
                    dye,
                    (1, pix),
                    scratch,
                    (1, kr),
                );
            }
        }
    };
    // Images are taken in fixed groups, each with its own weight-gradient accumulators, summed in
    // group order: the result depends on neither the thread count nor the scheduling, so a run
    // is bit-for-bit repeatable (an interrupted and resumed run equals an uninterrupted one).
    let groups = n.div_ceil(IMAGES_PER_GROUP);
    let group = |gi: usize, mut dxg: Option<&mut [f32]>| -> Vec<Vec<f32>> {
        let (mut accs, mut scratch, mut hwc) = (vec![Vec::new(); m], Vec::new(), Vec::new());
        for img in gi * IMAGES_PER_GROUP..((gi + 1) * IMAGES_PER_GROUP).min(n) {
            let local = img - gi * IMAGES_PER_GROUP;
            let dxn = dxg
                .as_deref_mut()
                .map(|d| &mut d[local * chw..(local + 1) * chw]);
            step(img, dxn, &mut accs, &mut scratch, &mut hwc);
        }
        accs
    };
    let (dx, parts): (Vec<f32>, Vec<Vec<Vec<f32>>>) = if want_dx {
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
    let dws = (0..m)
        .map(|e| {
            dw_of(e).then(|| {
                let mut dw = vec![0.0f32; ws.cos[e] * kr];
                for p in parts.iter().map(|p| &p[e]).filter(|p| !p.is_empty()) {
                    for (d, v) in dw.iter_mut().zip(p) {
                        *d += v;
                    }
                }
                from_window_major(&dw, g)
            })
        })
        .collect();
    (want_dx.then_some(dx), dws)
}

/// [`backward`] for the parents that want a gradient (`parents`: their node ids, `None` for one
/// that wants none), registered in `grads`: the input's (`parents[0]`, tensor `input`, added to
/// what it received from its other consumers) and each weight's `[co_e, ci, k, k]`
/// (`parents[1 + e]`).
#[allow(clippy::too_many_arguments)]
fn backward_and_register(
    grads: &mut Gradients,
    parents: &[Option<NodeId>],
    input: &AdTensor,
    x: &FlexTensor,
    ws: Weights,
    dys: &[Option<&[f32]>],
    n: usize,
    g: Geo,
) {
    let want_dw: Vec<bool> = parents[1..].iter().map(Option::is_some).collect();
    let (dx, dws) = backward(dys, values(x), ws, n, g, parents[0].is_some(), &want_dw);
    if let Some(dx) = dx {
        register_input_grad(grads, input, dx, vec![n, g.ci, g.h, g.w]);
    }
    for ((node, dw), &co) in parents[1..].iter().zip(dws).zip(ws.cos) {
        if let (Some(id), Some(dw)) = (node, dw) {
            grads.register::<Flex>(*id, from_vec(dw, vec![co, g.ci, g.k, g.k]));
        }
    }
}

/// Output buffers written from several workers, one image chunk each.
struct Outs(Vec<*mut f32>);
// SAFETY: the workers write disjoint chunks (one image each) of the buffers.
unsafe impl Sync for Outs {}

/// Forward per image: `y_e,n = W_e · im2col(x_n)` (`W_e · x_n` for a 1×1 stride-1
/// convolution), one im2col per image for all the outputs.
fn forward(x: &[f32], ws: Weights, n: usize, g: Geo) -> Vec<Vec<f32>> {
    let (pix, kr) = (g.ho * g.wo, g.rows());
    let chw = g.ci * g.h * g.w;
    // Output 0 is the buffer the workers are handed image by image; the others are written
    // through pointers, at the same image's chunk.
    let mut rest: Vec<Vec<f32>> = ws.cos[1..]
        .iter()
        .map(|&co| Vec::with_capacity(n * co * pix))
        .collect();
    let ptrs = Outs(rest.iter_mut().map(|v| v.as_mut_ptr()).collect());
    let ptrs = &ptrs;
    // SAFETY: each image's chunk of every output is written whole by its matrix product (not
    // accumulating): output 0's chunk is the one handed over, the others lie inside their
    // buffers' capacity of n·co·pix.
    let (first, _) = unsafe {
        par_uninit_map(
            n * ws.cos[0] * pix,
            ws.cos[0] * pix,
            Vec::new,
            |scratch: &mut Vec<f32>, img, y0: &mut [std::mem::MaybeUninit<f32>]| {
                let col = columns(&x[img * chw..(img + 1) * chw], g, scratch);
                for (e, (&w, &co)) in ws.wts.iter().zip(ws.cos).enumerate() {
                    let dst = if e == 0 {
                        y0.as_mut_ptr() as *mut f32
                    } else {
                        ptrs.0[e - 1].add(img * co * pix)
                    };
                    matmul(co, pix, kr, dst, false, w, (1, kr), col, (1, pix));
                }
            },
        )
    };
    for (v, &co) in rest.iter_mut().zip(&ws.cos[1..]) {
        // SAFETY: every image's chunk was written above.
        unsafe { v.set_len(n * co * pix) };
    }
    std::iter::once(first).chain(rest).collect()
}

#[derive(Clone, Debug)]
struct ConvState {
    /// The tracked input, for [`register_input_grad`].
    input: AdTensor,
    x: FlexTensor,
    weight: FlexTensor,
    co: usize,
    geo: Geo,
    n: usize,
}

#[derive(Debug)]
struct ConvBackward;

impl Backward<Flex, 2> for ConvBackward {
    type State = ConvState;

    fn backward(self, ops: Ops<ConvState, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let st = &ops.state;
        let ws = Weights {
            wts: &[values(&st.weight)],
            cos: &[st.co],
        };
        let dys = [Some(values(&dy))];
        backward_and_register(
            grads,
            &ops.parents.each_ref().map(|p| p.as_ref().map(|n| n.id)),
            &st.input,
            &st.x,
            ws,
            &dys,
            st.n,
            st.geo,
        );
    }
}

/// The geometry of a convolution of `x` `[n, ci, h, w]` by `[co, ci, k, k]` weights with
/// `stride` and symmetric `padding`, or `None` when they do not fit.
fn geometry(x: [usize; 4], w: [usize; 4], stride: usize, padding: usize) -> Option<Geo> {
    let [_, ci, h, wd] = x;
    let [_, wci, k, k2] = w;
    if wci != ci || k != k2 || k == 0 || stride == 0 || h + 2 * padding < k || wd + 2 * padding < k
    {
        return None;
    }
    Some(Geo {
        ci,
        h,
        w: wd,
        k,
        s: stride,
        p: padding,
        ho: (h + 2 * padding - k) / stride + 1,
        wo: (wd + 2 * padding - k) / stride + 1,
    })
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
    let n = x.dims()[0];
    let co = weight.dims()[0];
    let geo = geometry(x.dims(), weight.dims(), stride, padding)?;
    let (fx, fw) = (flexed(x)?, flexed(weight)?);
    let (xp, wp) = (contiguous(fx.primitive()), contiguous(fw.primitive()));
    let ws = Weights {
        wts: &[values(&wp)],
        cos: &[co],
    };
    let y = forward(values(&xp), ws, n, geo).pop().expect("one output");
    let y = from_vec(y, vec![n, co, geo.ho, geo.wo]);
    debug_assert_eq!(dims(&y), vec![n, co, geo.ho, geo.wo]);
    match (fx, fw) {
        (Flexed::Plain(_), Flexed::Plain(_)) => Some(plain_tensor(y)),
        (Flexed::Tracked(tx), Flexed::Tracked(tw)) => {
            let node = tx.node();
            let state = ConvState {
                input: tx,
                x: xp,
                weight: wp,
                co,
                geo,
                n,
            };
            Some(record(ConvBackward, [node, tw.node()], state, y))
        }
        _ => None,
    }
}

/// Most weights one [`conv2d_dense_shared`] takes.
pub const MAX_SHARED: usize = 8;

/// The output gradients of a [`conv2d_dense_shared`], handed over by the outputs' backward steps
/// to the shared one (index: output).
type Stash = Arc<Mutex<Vec<Option<FlexTensor>>>>;

/// The shared step of [`conv2d_dense_shared`]: parents the input and the M weights (N = M + 1).
#[derive(Clone, Debug)]
struct SharedState {
    input: AdTensor,
    x: FlexTensor,
    weights: Vec<FlexTensor>,
    cos: Vec<usize>,
    geo: Geo,
    n: usize,
    stash: Stash,
}

#[derive(Debug)]
struct SharedBackward<const N: usize>;

impl<const N: usize> Backward<Flex, N> for SharedBackward<N> {
    type State = SharedState;

    fn backward(self, ops: Ops<SharedState, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        // The outputs' steps left a one-element marker as this node's gradient.
        let _ = grads.consume::<Flex>(&ops.node);
        let st = &ops.state;
        let g = st.geo;
        let dys: Vec<Option<FlexTensor>> =
            std::mem::take(&mut *st.stash.lock().expect("stash lock"));
        let dy_vals: Vec<Option<&[f32]>> = dys.iter().map(|d| d.as_ref().map(values)).collect();
        let wts: Vec<&[f32]> = st.weights.iter().map(values).collect();
        let ws = Weights {
            wts: &wts,
            cos: &st.cos,
        };
        backward_and_register(
            grads,
            &ops.parents.each_ref().map(|p| p.as_ref().map(|n| n.id)),
            &st.input,
            &st.x,
            ws,
            &dy_vals,
            st.n,
            g,
        );
    }
}

/// One output of [`conv2d_dense_shared`]: its backward step hands its gradient to the shared
/// step (its only parent) through the stash.
#[derive(Clone, Debug)]
struct OutputState {
    index: usize,
    stash: Stash,
}

#[derive(Debug)]
struct OutputBackward;

impl Backward<Flex, 1> for OutputBackward {
    type State = OutputState;

    fn backward(self, ops: Ops<OutputState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let st = &ops.state;
        st.stash.lock().expect("stash lock")[st.index] = Some(dy);
        if let Some(shared) = &ops.parents[0] {
            // Marks the shared node as reached (its backward runs after every output's: they
            // are its only children); Burn adds the markers of several outputs.
            grads.register::<Flex>(shared.id, from_vec(vec![0.0], vec![1, 1, 1, 1]));
        }
    }
}

fn shared_node<const N: usize>(x: &AdTensor, weights: &[AdTensor], state: SharedState) -> AdTensor {
    let mut guards = vec![x.node()];
    guards.extend(weights.iter().map(|w| w.node()));
    let guards: [_; N] = match guards.try_into() {
        Ok(g) => g,
        Err(_) => unreachable!("N = weights + 1"),
    };
    record_primitive(
        SharedBackward::<N>,
        guards,
        state,
        from_vec(vec![0.0], vec![1, 1, 1, 1]),
    )
}

/// The convolutions of one input `x` `[batch, c_in, h, w]` by M weights `weights[e]`
/// `[c_out_e, c_in, k, k]` of one kernel size, all with `stride` and symmetric `padding`: the M
/// outputs `[batch, c_out_e, h', w']`, each equal to [`conv2d_dense`] of that weight bit for
/// bit. The work they share is done once: the im2col matrix of each image, forward and for the
/// weight gradients, and the input gradient, `Σ_e W_eᵀ · dy_e` summed inside the matrix
/// products and folded back by one col2im (the separate convolutions' input gradients, summed;
/// float summation order only). This is the `nor_conv_kxk` of every out-edge of a
/// NAS-Bench-201 node, which all read the node's one ReLU. Outputs that get no gradient add
/// nothing. `None` when a tensor is not f32 on flex, the shapes do not fit, or M is not in
/// 1..=[`MAX_SHARED`].
pub fn conv2d_dense_shared(
    x: &Tensor<4>,
    weights: &[Tensor<4>],
    stride: usize,
    padding: usize,
) -> Option<Vec<Tensor<4>>> {
    let m = weights.len();
    if m == 0 || m > MAX_SHARED {
        return None;
    }
    if m == 1 {
        return conv2d_dense(x, &weights[0], stride, padding).map(|y| vec![y]);
    }
    let n = x.dims()[0];
    let geo = geometry(x.dims(), weights[0].dims(), stride, padding)?;
    let mut cos = Vec::with_capacity(m);
    for w in weights {
        if geometry(x.dims(), w.dims(), stride, padding)?.k != geo.k {
            return None;
        }
        cos.push(w.dims()[0]);
    }
    let fx = flexed(x)?;
    let fws: Vec<Flexed> = weights.iter().map(flexed).collect::<Option<_>>()?;
    let xp = contiguous(fx.primitive());
    let wps: Vec<FlexTensor> = fws.iter().map(|w| contiguous(w.primitive())).collect();
    let ys = {
        let wts: Vec<&[f32]> = wps.iter().map(values).collect();
        let ws = Weights {
            wts: &wts,
            cos: &cos,
        };
        forward(values(&xp), ws, n, geo)
    };
    let ys: Vec<FlexTensor> = ys
        .into_iter()
        .zip(&cos)
        .map(|(y, &co)| from_vec(y, vec![n, co, geo.ho, geo.wo]))
        .collect();
    let all_plain =
        matches!(fx, Flexed::Plain(_)) && fws.iter().all(|w| matches!(w, Flexed::Plain(_)));
    if all_plain {
        return Some(ys.into_iter().map(plain_tensor).collect());
    }
    let Flexed::Tracked(tx) = fx else {
        return None;
    };
    let tws: Vec<AdTensor> = fws
        .into_iter()
        .map(|w| match w {
            Flexed::Tracked(w) => Some(w),
            Flexed::Plain(_) => None,
        })
        .collect::<Option<_>>()?;
    let stash: Stash = Arc::new(Mutex::new(vec![None; m]));
    let state = SharedState {
        input: tx.clone(),
        x: xp,
        weights: wps,
        cos,
        geo,
        n,
        stash: stash.clone(),
    };
    let shared = match m {
        2 => shared_node::<3>(&tx, &tws, state),
        3 => shared_node::<4>(&tx, &tws, state),
        4 => shared_node::<5>(&tx, &tws, state),
        5 => shared_node::<6>(&tx, &tws, state),
        6 => shared_node::<7>(&tx, &tws, state),
        7 => shared_node::<8>(&tx, &tws, state),
        _ => shared_node::<9>(&tx, &tws, state),
    };
    Some(
        ys.into_iter()
            .enumerate()
            .map(|(index, y)| {
                let state = OutputState {
                    index,
                    stash: stash.clone(),
                };
                record(OutputBackward, [shared.node()], state, y)
            })
            .collect(),
    )
}
