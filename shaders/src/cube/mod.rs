//! The fused ops on GPUs: Burn's CubeCL backend (wgpu's Vulkan, Metal, DX12; CUDA), with
//! CubeCL kernels ([`kernels`]) and hand-written backward passes in Burn's autodiff graph, as
//! the flex ops of this crate do on the CPU:
//!
//! * [`weighted_sum`]: a mixed op's `Σ_k w_k · t_k` in one launch (two above four terms),
//!   backward `w_k · dy` per term and `Σ dy · t_k` per weight (one reduction launch for up to
//!   four weights, plus one to add the cubes' parts). softmax(α) is read on the device: no host
//!   round trip.
//! * [`batch_norm_train`]: affine-free BatchNorm with batch statistics, one launch forward
//!   (mean, biased variance and normalisation, one cube per channel) and one backward; the batch
//!   mean and variance come back as device tensors for the running statistics. Burn's composition
//!   takes about 9 launches forward and 13 backward.
//! * [`relu`]: ReLU forward and backward, one launch each.
//!
//! Every function returns `None` unless its tensors are f32 on the CubeCL backend (with or
//! without autodiff) and of the shapes it takes; the caller then runs Burn's composition. This
//! module needs Burn's wgpu backend without `fusion` (the primitive is then `CubeBackend`; with
//! fusion, every function here returns `None`). Numbers: within the tolerances the crate's tests
//! state, against the composition on the same device (GPU sums are not in f64 as on flex).

mod kernels;

use burn::tensor::{DType, Tensor};
use burn_autodiff::Autodiff;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, NodeGuard, Ops};
use burn_cubecl::CubeBackend;
use burn_cubecl::kernel::into_contiguous;
use burn_cubecl::tensor::CubeTensor;
use cubecl::prelude::*;

use crate::wsum::MAX_TERMS;

/// The autodiff flavour of the CubeCL backend that `Device::wgpu_options()...autodiff()` gives.
type AdCube = Autodiff<CubeBackend>;
/// An autodiff-tracked CubeCL tensor.
type AdCubeTensor = <AdCube as burn::backend::BackendTypes>::FloatTensorPrimitive;

/// Units per cube of every launch here (a power of two, within every GPU's and WebGPU's limit).
const CUBE: usize = 256;
/// Most cubes of the weight-gradient reduction (each then adds `n / (MAX_CUBES · CUBE)` products).
const MAX_CUBES: usize = 512;

/// A float tensor on the CubeCL backend, with or without autodiff.
enum Cubed {
    Plain(CubeTensor),
    Tracked(AdCubeTensor),
}

impl Cubed {
    fn primitive(&self) -> CubeTensor {
        match self {
            Cubed::Plain(p) => p.clone(),
            Cubed::Tracked(t) => t.primitive().clone(),
        }
    }
}

fn cubed<const D: usize>(t: &Tensor<D>) -> Option<Cubed> {
    if t.dtype() != DType::F32 {
        return None;
    }
    if let Ok(p) = t.clone().try_into_primitive::<CubeBackend>() {
        return Some(Cubed::Plain(p));
    }
    if let Ok(p) = t.clone().try_into_primitive::<AdCube>() {
        return Some(Cubed::Tracked(p));
    }
    None
}

/// Whether `t` is an f32 tensor on the CubeCL backend (autodiff or not): the GPU ops apply.
pub fn supported<const D: usize>(t: &Tensor<D>) -> bool {
    cubed(t).is_some()
}

/// A contiguous f32 tensor with its values at offset 0 of their own binding.
fn contiguous(t: CubeTensor) -> CubeTensor {
    into_contiguous(t)
}

fn len(t: &CubeTensor) -> usize {
    t.meta.shape().num_elements()
}

fn shape(t: &CubeTensor) -> Vec<usize> {
    t.meta.shape().to_vec()
}

/// A new, uninitialised contiguous f32 tensor of `shape` beside `like`.
fn empty(like: &CubeTensor, shape: Vec<usize>) -> CubeTensor {
    let n: usize = shape.iter().product();
    let handle = like.client.empty(n.max(1) * std::mem::size_of::<f32>());
    CubeTensor::new_contiguous(
        like.client.clone(),
        like.device.clone(),
        shape.into(),
        handle,
        DType::F32,
    )
}

fn arg(t: &CubeTensor) -> BufferArg {
    t.clone().into_buffer_arg()
}

/// One unit per element of `n`, cubes of [`CUBE`] units.
fn elementwise(t: &CubeTensor, n: usize) -> (CubeCount, CubeDim) {
    let dim = CubeDim::new_1d(CUBE as u32);
    (
        cubecl::calculate_cube_count_elemwise(&t.client, n, dim),
        dim,
    )
}

fn plain_tensor<const D: usize>(p: CubeTensor) -> Tensor<D> {
    Tensor::from_primitive::<CubeBackend>(p)
}

fn tracked_tensor<const D: usize>(p: AdCubeTensor) -> Tensor<D> {
    Tensor::from_primitive::<AdCube>(p)
}

/// Records `op` in the autodiff graph as the producer of `out` from the tensors behind `nodes`,
/// keeping `state` for its backward when any input is tracked.
fn record<BO, const N: usize, const D: usize>(
    op: BO,
    nodes: [NodeGuard; N],
    state: BO::State,
    out: CubeTensor,
) -> Tensor<D>
where
    BO: Backward<CubeBackend, N>,
{
    use burn_autodiff::checkpoint::strategy::NoCheckpointing;
    use burn_autodiff::ops::OpsKind;
    let p = match op
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    };
    tracked_tensor(p)
}

// ---------------------------------------------------------------------------------------------
// The mixed-op weighted sum.

/// `out = Σ_k w[k] · terms[k]`, four terms per launch.
fn wsum_forward(terms: &[CubeTensor], w: &CubeTensor) -> CubeTensor {
    let n = len(&terms[0]);
    let out = empty(&terms[0], shape(&terms[0]));
    let (count, dim) = elementwise(&out, n);
    for (g, group) in terms.chunks(4).enumerate() {
        let slot = |j: usize| arg(group.get(j).unwrap_or(&group[0]));
        // SAFETY: every term and `out` hold `n` contiguous f32, `w` holds one per term; the
        // kernel guards its index against `out`'s length.
        unsafe {
            kernels::weighted_sum_kernel::launch_unchecked(
                &out.client,
                count.clone(),
                dim,
                slot(0),
                slot(1),
                slot(2),
                slot(3),
                arg(w),
                arg(&out),
                4 * g,
                group.len(),
                g > 0,
            )
        };
    }
    out
}

/// `Σ dy · t_k` for every term: `[K]`.
fn wsum_dots(dy: &CubeTensor, terms: &[CubeTensor]) -> CubeTensor {
    let n = len(dy);
    let cubes = n.div_ceil(CUBE).clamp(1, MAX_CUBES);
    let k = terms.len();
    let out = empty(dy, vec![k]);
    for (g, group) in terms.chunks(4).enumerate() {
        let part = empty(dy, vec![group.len() * cubes]);
        let slot = |j: usize| arg(group.get(j).unwrap_or(&group[0]));
        // SAFETY: `dy` and the terms hold `n` contiguous f32, `part` one per term and cube.
        unsafe {
            kernels::dots_kernel::launch_unchecked(
                &dy.client,
                CubeCount::Static(cubes as u32, 1, 1),
                CubeDim::new_1d(CUBE as u32),
                arg(dy),
                slot(0),
                slot(1),
                slot(2),
                slot(3),
                arg(&part),
                group.len(),
                CUBE,
            )
        };
        let rows = empty(dy, vec![group.len()]);
        let (count, dim) = elementwise(&rows, group.len());
        // SAFETY: `part` holds `group.len()` rows of `cubes`.
        unsafe {
            kernels::row_sum_kernel::launch_unchecked(
                &dy.client,
                count,
                dim,
                arg(&part),
                arg(&rows),
                cubes,
            )
        };
        if terms.len() <= 4 {
            return rows;
        }
        // Two groups: the rows go to their places in `out` (a device-side copy).
        copy_into(&rows, &out, 4 * g);
    }
    out
}

/// Copies `src` (`[m]`) into `dst[offset..offset + m]` on the device.
fn copy_into(src: &CubeTensor, dst: &CubeTensor, offset: usize) {
    let m = len(src);
    let (count, dim) = elementwise(src, m);
    // SAFETY: `dst` holds at least `offset + m` f32.
    unsafe {
        kernels::copy_kernel::launch_unchecked(&src.client, count, dim, arg(src), arg(dst), offset)
    };
}

#[derive(Clone, Debug)]
struct WsumState {
    terms: Vec<CubeTensor>,
    weights: CubeTensor,
}

#[derive(Debug)]
struct WsumBackward<const N: usize>;

impl<const N: usize> Backward<CubeBackend, N> for WsumBackward<N> {
    type State = WsumState;

    fn backward(self, ops: Ops<WsumState, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(grads.consume::<CubeBackend>(&ops.node));
        let st = &ops.state;
        let k = st.terms.len();
        let n = len(&dy);
        for (j, parent) in ops.parents[..k].iter().enumerate() {
            if let Some(node) = parent {
                let dx = empty(&dy, shape(&dy));
                let (count, dim) = elementwise(&dy, n);
                // SAFETY: `dy` and `dx` hold `n` f32, the weights `k > j`.
                unsafe {
                    kernels::scale_kernel::launch_unchecked(
                        &dy.client,
                        count,
                        dim,
                        arg(&dy),
                        arg(&st.weights),
                        arg(&dx),
                        j,
                    )
                };
                grads.register::<CubeBackend>(node.id, dx);
            }
        }
        if let Some(node) = &ops.parents[k] {
            grads.register::<CubeBackend>(node.id, wsum_dots(&dy, &st.terms));
        }
    }
}

fn wsum_tracked<const N: usize>(
    terms: Vec<Cubed>,
    weights: &Cubed,
    state: WsumState,
    out: CubeTensor,
) -> Option<Tensor<4>> {
    let mut guards: Vec<NodeGuard> = Vec::with_capacity(N);
    for t in terms.iter().chain(std::iter::once(weights)) {
        match t {
            Cubed::Tracked(t) => guards.push(t.node()),
            Cubed::Plain(_) => return None,
        }
    }
    let guards: [NodeGuard; N] = guards.try_into().ok()?;
    Some(record(WsumBackward::<N>, guards, state, out))
}

/// `Σ_k weights[k] · terms[k]` for `terms` of one shape `[batch, channels, h, w]` and
/// `weights` `[K]`, K in 1..=[`MAX_TERMS`], on the CubeCL backend; gradients reach the terms and
/// the weights. `None` when a tensor is not f32 on it, when tracked and untracked tensors are
/// mixed, the shapes differ, or K is out of range.
pub fn weighted_sum(terms: &[Tensor<4>], weights: &Tensor<1>) -> Option<Tensor<4>> {
    let k = terms.len();
    if k == 0 || k > MAX_TERMS || weights.dims() != [k] {
        return None;
    }
    let dims = terms[0].dims();
    if terms.iter().any(|t| t.dims() != dims) {
        return None;
    }
    let ct: Vec<Cubed> = terms.iter().map(cubed).collect::<Option<_>>()?;
    let cw = cubed(weights)?;
    let prims: Vec<CubeTensor> = ct.iter().map(|t| contiguous(t.primitive())).collect();
    let w = contiguous(cw.primitive());
    if prims[0].device != w.device || prims.iter().any(|p| p.device != w.device) {
        return None;
    }
    let all_plain =
        ct.iter().all(|t| matches!(t, Cubed::Plain(_))) && matches!(cw, Cubed::Plain(_));
    if all_plain {
        return Some(plain_tensor(wsum_forward(&prims, &w)));
    }
    let y = wsum_forward(&prims, &w);
    let state = WsumState {
        terms: prims,
        weights: w,
    };
    match k {
        1 => wsum_tracked::<2>(ct, &cw, state, y),
        2 => wsum_tracked::<3>(ct, &cw, state, y),
        3 => wsum_tracked::<4>(ct, &cw, state, y),
        4 => wsum_tracked::<5>(ct, &cw, state, y),
        5 => wsum_tracked::<6>(ct, &cw, state, y),
        6 => wsum_tracked::<7>(ct, &cw, state, y),
        7 => wsum_tracked::<8>(ct, &cw, state, y),
        _ => wsum_tracked::<9>(ct, &cw, state, y),
    }
}

// ---------------------------------------------------------------------------------------------
// Affine-free BatchNorm with batch statistics.

#[derive(Clone, Debug)]
struct BnState {
    /// The normalised output x̂.
    y: CubeTensor,
    /// The biased batch variance `[channels]`.
    var: CubeTensor,
    eps: f32,
}

#[derive(Debug)]
struct BnBackward;

impl Backward<CubeBackend, 1> for BnBackward {
    type State = BnState;

    fn backward(self, ops: Ops<BnState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = contiguous(grads.consume::<CubeBackend>(&ops.node));
        if let Some(node) = parent {
            let st = &ops.state;
            let s = shape(&dy);
            let dx = empty(&dy, s.clone());
            // SAFETY: `dy`, `y` and `dx` hold `[b, c, h, w]` f32, `var` `[c]`; one cube per
            // channel.
            unsafe {
                kernels::bn_backward_kernel::launch_unchecked(
                    &dy.client,
                    CubeCount::Static(s[1] as u32, 1, 1),
                    CubeDim::new_1d(CUBE as u32),
                    arg(&dy),
                    arg(&st.y),
                    arg(&st.var),
                    arg(&dx),
                    s[0],
                    s[1],
                    s[2] * s[3],
                    st.eps,
                    CUBE,
                )
            };
            grads.register::<CubeBackend>(node.id, dx);
        }
    }
}

/// Affine-free BatchNorm with batch statistics of `x` `[batch, channels, h, w]` on the CubeCL
/// backend: `(output, batch mean [channels], biased batch variance [channels])`, the statistics
/// untracked, on `x`'s device. The gradient reaches `x` when tracked. `None` when `x` is not f32
/// on the CubeCL backend, has no element, or has more channels than a launch has cubes (65,535).
pub fn batch_norm_train(x: &Tensor<4>, eps: f64) -> Option<(Tensor<4>, Tensor<1>, Tensor<1>)> {
    let [b, c, h, w] = x.dims();
    if b * c * h * w == 0 || c > 65_535 {
        return None;
    }
    let cx = cubed(x)?;
    let tracked = matches!(cx, Cubed::Tracked(_));
    let xp = contiguous(cx.primitive());
    let y = empty(&xp, vec![b, c, h, w]);
    let mean = empty(&xp, vec![c]);
    let var = empty(&xp, vec![c]);
    let eps = eps as f32;
    // SAFETY: `x` and `y` hold `[b, c, h, w]` f32, `mean` and `var` `[c]`; one cube per channel.
    unsafe {
        kernels::bn_forward_kernel::launch_unchecked(
            &xp.client,
            CubeCount::Static(c as u32, 1, 1),
            CubeDim::new_1d(CUBE as u32),
            arg(&xp),
            arg(&y),
            arg(&mean),
            arg(&var),
            b,
            c,
            h * w,
            eps,
            CUBE,
        )
    };
    let output = match cx {
        Cubed::Plain(_) => plain_tensor(y),
        Cubed::Tracked(t) => {
            let state = BnState {
                y: y.clone(),
                var: var.clone(),
                eps,
            };
            record(BnBackward, [t.node()], state, y)
        }
    };
    // The statistics live where `x` does: on the autodiff device (untracked) when `x` does.
    let stats = |p: CubeTensor| -> Tensor<1> {
        if tracked {
            tracked_tensor(AdCubeTensor::new(p))
        } else {
            plain_tensor(p)
        }
    };
    Some((output, stats(mean), stats(var)))
}

// ---------------------------------------------------------------------------------------------
// ReLU.

#[derive(Debug)]
struct ReluBackward;

impl Backward<CubeBackend, 1> for ReluBackward {
    /// The output (its sign is the mask).
    type State = CubeTensor;

    fn backward(self, ops: Ops<CubeTensor, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let dy = contiguous(grads.consume::<CubeBackend>(&ops.node));
        if let Some(node) = parent {
            let n = len(&dy);
            let dx = empty(&dy, shape(&dy));
            let (count, dim) = elementwise(&dy, n);
            // SAFETY: `dy`, the saved output and `dx` hold `n` f32.
            unsafe {
                kernels::relu_backward_kernel::launch_unchecked(
                    &dy.client,
                    count,
                    dim,
                    arg(&dy),
                    arg(&ops.state),
                    arg(&dx),
                )
            };
            grads.register::<CubeBackend>(node.id, dx);
        }
    }
}

/// `max(x, 0)` of `x` `[batch, channels, h, w]` on the CubeCL backend; the gradient reaches `x`
/// when tracked. `None` when `x` is not f32 there.
pub fn relu(x: &Tensor<4>) -> Option<Tensor<4>> {
    let cx = cubed(x)?;
    let xp = contiguous(cx.primitive());
    let n = len(&xp);
    let y = empty(&xp, shape(&xp));
    let (count, dim) = elementwise(&xp, n);
    // SAFETY: `x` and `y` hold `n` f32.
    unsafe { kernels::relu_kernel::launch_unchecked(&xp.client, count, dim, arg(&xp), arg(&y)) };
    Some(match cx {
        Cubed::Plain(_) => plain_tensor(y),
        Cubed::Tracked(t) => record(ReluBackward, [t.node()], y.clone(), y),
    })
}

#[cfg(test)]
mod tests;
