//! From Burn's run-time `Tensor<D>` to the flex primitives the kernels work on, and back.

use burn::tensor::{DType, Tensor, TensorData};
use burn_autodiff::Autodiff;
use burn_flex::{Flex, FlexTensor};

/// The autodiff flavour of flex that `Device::flex().autodiff()` creates.
pub(crate) type AdFlex = Autodiff<Flex>;
/// An autodiff-tracked flex tensor.
pub(crate) type AdTensor = <AdFlex as burn::backend::BackendTypes>::FloatTensorPrimitive;

/// A float tensor on flex, with or without autodiff.
pub(crate) enum Flexed {
    /// A plain flex tensor (no autodiff device).
    Plain(FlexTensor),
    /// A tensor of flex's autodiff device.
    Tracked(AdTensor),
}

/// `t` as a flex primitive, or `None` when it lives on another backend or is not f32 (the caller
/// then takes the plain path).
pub(crate) fn flexed<const D: usize>(t: &Tensor<D>) -> Option<Flexed> {
    if t.dtype() != DType::F32 {
        return None;
    }
    if let Ok(p) = t.clone().try_into_primitive::<Flex>() {
        return Some(Flexed::Plain(p));
    }
    if let Ok(p) = t.clone().try_into_primitive::<AdFlex>() {
        return Some(Flexed::Tracked(p));
    }
    None
}

/// Whether `t` is an f32 tensor on flex (autodiff or not): the fused kernels apply.
pub fn supported<const D: usize>(t: &Tensor<D>) -> bool {
    flexed(t).is_some()
}

impl Flexed {
    /// The values, whatever the wrapper.
    pub(crate) fn primitive(&self) -> FlexTensor {
        match self {
            Flexed::Plain(p) => p.clone(),
            Flexed::Tracked(t) => t.primitive().clone(),
        }
    }
}

/// A contiguous f32 view of `t` (copied only when its layout is strided or offset).
pub(crate) fn contiguous(t: FlexTensor) -> FlexTensor {
    if t.as_slice::<f32>().is_some() {
        t
    } else {
        t.to_contiguous()
    }
}

/// The f32 values of a contiguous tensor.
pub(crate) fn values(t: &FlexTensor) -> &[f32] {
    t.as_slice::<f32>().expect("contiguous f32 tensor")
}

/// A flex tensor of `shape` holding `v`.
pub(crate) fn from_vec(v: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(v, shape))
}

/// The shape of a flex tensor.
pub(crate) fn dims(t: &FlexTensor) -> Vec<usize> {
    use burn::backend::TensorMetadata;
    t.shape().to_vec()
}

/// Wrap a plain result back into a `Tensor` of the plain flex device.
pub(crate) fn plain_tensor<const D: usize>(p: FlexTensor) -> Tensor<D> {
    Tensor::from_primitive::<Flex>(p)
}

/// Wrap an autodiff result back into a `Tensor` of the flex autodiff device.
pub(crate) fn tracked_tensor<const D: usize>(p: AdTensor) -> Tensor<D> {
    Tensor::from_primitive::<AdFlex>(p)
}

/// Record `op` in the autodiff graph as the producer of `out` from the tensors behind `nodes`:
/// with `state` kept for its backward when any input is tracked, or as an untracked result.
pub(crate) fn record<BO, const N: usize>(
    op: BO,
    nodes: [burn_autodiff::ops::NodeGuard; N],
    state: BO::State,
    out: FlexTensor,
) -> Tensor<4>
where
    BO: burn_autodiff::ops::Backward<Flex, N>,
{
    tracked_tensor(record_primitive(op, nodes, state, out))
}

/// [`record`], returning the autodiff primitive (of any rank).
pub(crate) fn record_primitive<BO, const N: usize>(
    op: BO,
    nodes: [burn_autodiff::ops::NodeGuard; N],
    state: BO::State,
    out: FlexTensor,
) -> AdTensor
where
    BO: burn_autodiff::ops::Backward<Flex, N>,
{
    use burn_autodiff::checkpoint::strategy::NoCheckpointing;
    use burn_autodiff::ops::OpsKind;
    match op
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, out),
        OpsKind::UnTracked(prep) => prep.finish(out),
    }
}

/// Elements per parallel work item of the element-wise kernels (64 KiB of f32).
pub(crate) const CHUNK: usize = 16 * 1024;

/// The output positions `lo..hi` (of `out` outputs) of a strided window walk whose input index
/// `o·stride − padding + off` lies inside `0..n`: the part of a convolution or pooling row that
/// reads real (not padded) input at window offset `off`.
#[inline]
pub(crate) fn valid_range(
    out: usize,
    n: usize,
    stride: usize,
    padding: usize,
    off: usize,
) -> (usize, usize) {
    let (s, p, off) = (stride as isize, padding as isize, off as isize);
    // o·s − p + off ≥ 0  ⇔  o ≥ ceil((p − off) / s)
    let lo = if p - off <= 0 {
        0
    } else {
        (p - off + s - 1) / s
    };
    // o·s − p + off ≤ n − 1  ⇔  o ≤ floor((n − 1 + p − off) / s)
    let top = n as isize - 1 + p - off;
    let hi = if top < 0 { 0 } else { top / s + 1 };
    let lo = (lo.max(0) as usize).min(out);
    (lo, (hi as usize).min(out).max(lo))
}

/// Zeroes `c` and views it as initialised values.
#[inline]
fn zeroed(c: &mut [std::mem::MaybeUninit<f32>]) -> &mut [f32] {
    c.fill(std::mem::MaybeUninit::new(0.0));
    // SAFETY: every element of `c` was just initialised.
    unsafe { assume_init(c) }
}

/// `c` viewed as values.
///
/// # Safety
/// Every element of `c` is initialised.
pub(crate) unsafe fn assume_init(c: &mut [std::mem::MaybeUninit<f32>]) -> &mut [f32] {
    // SAFETY: initialised (the caller's promise); `MaybeUninit<f32>` has the layout of `f32`.
    unsafe { &mut *(c as *mut [std::mem::MaybeUninit<f32>] as *mut [f32]) }
}

/// A buffer of `len` f32 built in parallel chunks of `chunk` elements, each handed to
/// `f(&mut scratch, chunk index, chunk)` uninitialised, with one `init()` scratch value per rayon
/// job; the results of `f` come back in chunk order. For an output that `f` overwrites whole:
/// nothing is written twice (zeroing an output that a matrix product or an element-wise pass then
/// overwrites was 6 % of a search step's samples).
///
/// # Safety
/// `f` must initialise every element of each chunk it is given (e.g. with `MaybeUninit::write`,
/// or through a raw pointer that a routine writes without reading first).
pub(crate) unsafe fn par_uninit_map<T, R: Send>(
    len: usize,
    chunk: usize,
    init: impl Fn() -> T + Sync + Send,
    f: impl Fn(&mut T, usize, &mut [std::mem::MaybeUninit<f32>]) -> R + Sync + Send,
) -> (Vec<f32>, Vec<R>) {
    use rayon::prelude::*;
    let mut v: Vec<f32> = Vec::with_capacity(len);
    let results = v.spare_capacity_mut()[..len]
        .par_chunks_mut(chunk.max(1))
        .enumerate()
        .map_init(init, |scratch, (i, c)| f(scratch, i, c))
        .collect();
    // SAFETY: the chunks cover `0..len`, and the caller's `f` initialised each.
    unsafe { v.set_len(len) };
    (v, results)
}

/// [`par_uninit_map`] without scratch or results.
///
/// # Safety
/// As [`par_uninit_map`]: `f` initialises every element of each chunk.
pub(crate) unsafe fn par_uninit(
    len: usize,
    chunk: usize,
    f: impl Fn(usize, &mut [std::mem::MaybeUninit<f32>]) + Sync + Send,
) -> Vec<f32> {
    // SAFETY: passed on to the caller.
    unsafe { par_uninit_map(len, chunk, || (), |_, i, c| f(i, c)).0 }
}

/// [`par_uninit_map`] for an output that `f` accumulates into: each worker zeroes its chunk just
/// before `f` writes it, while it is in cache.
///
/// Why not `vec![0.0; len]`: glibc's calloc clears recycled heap memory with one memset on the
/// calling thread, so every large output was zeroed on one core before the parallel kernel ran
/// (7 % of the samples of a NAS-Bench-201 C = 16 search step, all on the main thread). The values
/// are those of the zeroed buffer: nothing numeric changes.
pub(crate) fn par_zeroed_map<T, R: Send>(
    len: usize,
    chunk: usize,
    init: impl Fn() -> T + Sync + Send,
    f: impl Fn(&mut T, usize, &mut [f32]) -> R + Sync + Send,
) -> (Vec<f32>, Vec<R>) {
    // SAFETY: `zeroed` initialises every chunk before `f` sees it.
    unsafe { par_uninit_map(len, chunk, init, |s, i, c| f(s, i, zeroed(c))) }
}

/// [`par_zeroed_map`] without scratch or results: `f(chunk index, chunk)` on zeroed chunks.
pub(crate) fn par_zeroed(
    len: usize,
    chunk: usize,
    f: impl Fn(usize, &mut [f32]) + Sync + Send,
) -> Vec<f32> {
    par_zeroed_map(len, chunk, || (), |_, i, c| f(i, c)).0
}

/// Takes the gradient that `input` (a tracked input of the op whose backward runs) has received
/// so far from its other consumers, as a contiguous tensor, for a backward that sums it into its
/// own pass ([`register_grad`] then stores the total).
pub(crate) fn take_input_grad(
    grads: &mut burn_autodiff::grads::Gradients,
    input: &AdTensor,
) -> Option<FlexTensor> {
    grads.remove::<Flex>(input).map(contiguous)
}

/// Stores `g` (of `shape`) as the gradient of `input`; with [`take_input_grad`] first, it is the
/// total.
pub(crate) fn register_grad(
    grads: &mut burn_autodiff::grads::Gradients,
    input: &AdTensor,
    g: Vec<f32>,
    shape: Vec<usize>,
) {
    grads.register::<Flex>(input.id(), from_vec(g, shape));
}

/// Registers `g` (of `shape`) as a gradient of `input`, a tracked input of the op whose backward
/// runs (its node is one of the op's parents), adding on all cores whatever gradient that input
/// has received so far from its other consumers.
///
/// Burn's `Gradients::register` would add the two on the calling thread (flex runs element-wise
/// ops on one core below 4M elements); a node tensor of a cell feeds many ops (its ReLU, its
/// pools, the skip terms of every out-edge), so those sums were half of the main thread's own
/// time in a search step. The sum is `new + old` element by element, as Burn's: the same bits.
pub(crate) fn register_input_grad(
    grads: &mut burn_autodiff::grads::Gradients,
    input: &AdTensor,
    mut g: Vec<f32>,
    shape: Vec<usize>,
) {
    use rayon::prelude::*;
    if let Some(old) = take_input_grad(grads, input) {
        let ov = values(&old);
        assert_eq!(ov.len(), g.len(), "gradients of one tensor differ in size");
        g.par_chunks_mut(CHUNK)
            .zip(ov.par_chunks(CHUNK))
            .for_each(|(d, o)| {
                for (a, &b) in d.iter_mut().zip(o) {
                    *a += b;
                }
            });
    }
    register_grad(grads, input, g, shape);
}
