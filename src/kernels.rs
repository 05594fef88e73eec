//! Which implementation of the hot ops a process uses: `--kernels plain|fused`.
//!
//! * `plain`: every op is a composition of Burn tensor ops (the reference's semantics, op for op).
//! * `fused` (default): the ops of the `darts-pt-kernels` crate (`shaders/`) replace those
//!   compositions where they apply. On Burn's `flex` CPU backend: BatchNorm with batch
//!   statistics (affine or not), 3×3 average and max pooling, the mixed-op weighted sum, ReLU,
//!   and depthwise and dense convolutions. On the CubeCL backend (`--device wgpu`, natively):
//!   the mixed-op weighted sum, affine-free BatchNorm with batch statistics and ReLU, as CubeCL
//!   kernels (`darts_pt_kernels::cube`). Each computes the same numbers as the plain path within
//!   a tolerance its tests state (max |a−b| / max |b|), forward and backward. Every other op, and
//!   every op in the browser build, takes the plain path by itself.
//!
//! The choice is process-wide (an atomic), set once from the command line, and recorded in each
//! run's `manifest.json`. Model-level savings that are exact rewrites on every backend (the ReLU
//! and the parameter-free pools of a node computed once for all its out-edges, no network-weight
//! gradients in the first-order α step) are always on: they change no number beyond float
//! summation order.

use std::sync::atomic::{AtomicU8, Ordering};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

cli_enum! {
    /// `--kernels`: the fused CPU kernels or Burn's plain compositions.
    Kernels {
        /// Burn tensor-op compositions everywhere (for bisecting).
        Plain = "plain",
        /// The fused ops of `darts-pt-kernels`: on flex, and on wgpu for the mixed-op sum,
        /// affine-free BatchNorm and ReLU; plain elsewhere.
        #[default]
        Fused = "fused",
    }
}

static KERNELS: AtomicU8 = AtomicU8::new(1);

/// Choose the kernels for this process (the CLI does it once, before building any network).
pub fn set_kernels(k: Kernels) {
    KERNELS.store(k as u8, Ordering::Relaxed);
}

thread_local! {
    static OVERRIDE: std::cell::Cell<Option<Kernels>> = const { std::cell::Cell::new(None) };
}

/// The kernels this thread uses: the [`with_kernels`] override, else the process-wide choice.
pub fn kernels() -> Kernels {
    if let Some(k) = OVERRIDE.with(|o| o.get()) {
        return k;
    }
    if KERNELS.load(Ordering::Relaxed) == 0 {
        Kernels::Plain
    } else {
        Kernels::Fused
    }
}

/// Run `f` with kernels `k` on this thread only (threads `f` spawns keep the process-wide
/// choice). For comparing the two paths side by side, e.g. in tests.
pub fn with_kernels<R>(k: Kernels, f: impl FnOnce() -> R) -> R {
    let before = OVERRIDE.with(|o| o.replace(Some(k)));
    struct Restore(Option<Kernels>);
    impl Drop for Restore {
        fn drop(&mut self) {
            OVERRIDE.with(|o| o.set(self.0));
        }
    }
    let _restore = Restore(before);
    f()
}

/// BatchNorm with batch statistics through the fused kernels: `(output, mean, biased variance)`,
/// the statistics `[channels]` untracked on `x`'s device, or `None` when the plain path must run
/// (kernels `plain`, an affine BatchNorm off flex, a backend other than flex and CubeCL, the
/// browser build).
pub(crate) fn batch_norm_train(
    x: &burn::tensor::Tensor<4>,
    affine: Option<(&burn::tensor::Tensor<1>, &burn::tensor::Tensor<1>)>,
    epsilon: f64,
) -> Option<(
    burn::tensor::Tensor<4>,
    burn::tensor::Tensor<1>,
    burn::tensor::Tensor<1>,
)> {
    #[cfg(not(target_arch = "wasm32"))]
    if kernels() == Kernels::Fused {
        if let Some(o) = darts_pt_kernels::batch_norm_train(x, affine, epsilon) {
            let device = x.device();
            let stats = |v: Vec<f32>| burn::tensor::Tensor::<1>::from_floats(v.as_slice(), &device);
            return Some((o.output, stats(o.mean), stats(o.var)));
        }
        if affine.is_none() {
            return darts_pt_kernels::cube::batch_norm_train(x, epsilon);
        }
        return None;
    }
    let _ = (x, affine, epsilon);
    None
}

/// `avg_pool_3x3` (`average`, padding not counted, as `nn.AvgPool2d(3, stride, 1,
/// count_include_pad=False)`) or `max_pool_3x3` (padding 1) of `x` `[b, c, h, w]` →
/// `[b, c, ⌊(h−1)/stride⌋+1, ⌊(w−1)/stride⌋+1]`: through the fused kernel where it applies,
/// Burn's pooling otherwise (see [`batch_norm_train`]).
pub(crate) fn pool3x3(
    x: burn::tensor::Tensor<4>,
    stride: usize,
    average: bool,
) -> burn::tensor::Tensor<4> {
    use burn::tensor::module::{avg_pool2d, max_pool2d};
    use burn::tensor::ops::{AvgPoolOptions, MaxPoolOptions};
    #[cfg(not(target_arch = "wasm32"))]
    if kernels() == Kernels::Fused {
        let fused = if average {
            darts_pt_kernels::avg_pool3x3(&x, stride)
        } else {
            darts_pt_kernels::max_pool3x3(&x, stride)
        };
        if let Some(y) = fused {
            return y;
        }
    }
    let s = [stride, stride];
    if average {
        avg_pool2d(
            x,
            AvgPoolOptions::new([3, 3])
                .with_stride(s)
                .with_padding([1, 1])
                .with_count_include_pad(false),
        )
    } else {
        max_pool2d(
            x,
            MaxPoolOptions::new([3, 3])
                .with_stride(s)
                .with_padding([1, 1]),
        )
    }
}

/// A mixed op's `Σ_k w_k · terms[k]` through the fused kernel (`weights` `[K]`), or `None` (see
/// [`batch_norm_train`]).
pub(crate) fn weighted_sum(
    terms: &[burn::tensor::Tensor<4>],
    weights: &burn::tensor::Tensor<1>,
) -> Option<burn::tensor::Tensor<4>> {
    #[cfg(not(target_arch = "wasm32"))]
    if kernels() == Kernels::Fused {
        return darts_pt_kernels::weighted_sum(terms, weights)
            .or_else(|| darts_pt_kernels::cube::weighted_sum(terms, weights));
    }
    let _ = (terms, weights);
    None
}

/// Whether the fused kernels apply to `t` on this thread: they are switched on and `t` is an f32
/// tensor on flex or on the CubeCL backend (wgpu), with or without autodiff.
pub fn applies<const D: usize>(t: &burn::tensor::Tensor<D>) -> bool {
    fused_for(t)
}

/// Whether `t` lives where the fused kernels apply (and they are switched on).
pub(crate) fn fused_for<const D: usize>(t: &burn::tensor::Tensor<D>) -> bool {
    #[cfg(not(target_arch = "wasm32"))]
    if kernels() == Kernels::Fused {
        return darts_pt_kernels::supported(t) || darts_pt_kernels::cube::supported(t);
    }
    let _ = t;
    false
}

/// `conv.forward(x)`, through the fused kernels where they apply: a depthwise convolution
/// (`groups` = channels) or a dense one (`groups` = 1, dilation 1), without bias, with square
/// kernel, equal strides and symmetric padding. Any other convolution, and every convolution on
/// the plain path, is Burn's.
pub(crate) fn conv2d(
    x: burn::tensor::Tensor<4>,
    conv: &burn::nn::conv::Conv2d,
) -> burn::tensor::Tensor<4> {
    #[cfg(not(target_arch = "wasm32"))]
    if kernels() == Kernels::Fused
        && let burn::nn::PaddingConfig2d::Explicit(top, left, bottom, right) = conv.padding
        && top == left
        && top == bottom
        && top == right
        && conv.bias.is_none()
        && conv.stride[0] == conv.stride[1]
        && conv.dilation[0] == conv.dilation[1]
        && conv.kernel_size[0] == conv.kernel_size[1]
    {
        let [_, c, _, _] = x.dims();
        let (s, d) = (conv.stride[0], conv.dilation[0]);
        let fused = if conv.groups == c && c > 1 {
            darts_pt_kernels::depthwise_conv2d(&x, &conv.weight.val(), s, top, d)
        } else if conv.groups == 1 && d == 1 {
            darts_pt_kernels::conv2d_dense(&x, &conv.weight.val(), s, top)
        } else {
            None
        };
        if let Some(y) = fused {
            return y;
        }
    }
    conv.forward(x)
}

/// The fused kernels' geometry of `conv`: `(stride, padding)` of a dense convolution (`groups`
/// = 1, dilation 1) without bias, with square kernel, equal strides and symmetric padding.
#[cfg(not(target_arch = "wasm32"))]
fn dense_geometry(conv: &burn::nn::conv::Conv2d) -> Option<(usize, usize)> {
    match conv.padding {
        burn::nn::PaddingConfig2d::Explicit(top, left, bottom, right)
            if top == left
                && top == bottom
                && top == right
                && conv.bias.is_none()
                && conv.groups == 1
                && conv.stride[0] == conv.stride[1]
                && conv.dilation == [1, 1]
                && conv.kernel_size[0] == conv.kernel_size[1] =>
        {
            Some((conv.stride[0], top))
        }
        _ => None,
    }
}

/// `convs[e].forward(x)` for every `e`: through one fused op when the fused kernels apply and
/// the convolutions are dense ones of one geometry (kernel size, stride, padding; see
/// [`darts_pt_kernels::conv2d_dense_shared`]: one im2col per image for all of them, one
/// input-gradient pass), [`conv2d`] of each otherwise. Same outputs bit for bit; the input
/// gradient differs from the separate convolutions' in float summation order only.
pub(crate) fn conv2d_shared(
    x: &burn::tensor::Tensor<4>,
    convs: &[&burn::nn::conv::Conv2d],
) -> Vec<burn::tensor::Tensor<4>> {
    #[cfg(not(target_arch = "wasm32"))]
    if convs.len() > 1
        && kernels() == Kernels::Fused
        && let Some(geo) = dense_geometry(convs[0])
        && convs
            .iter()
            .all(|c| dense_geometry(c) == Some(geo) && c.kernel_size == convs[0].kernel_size)
    {
        let weights: Vec<_> = convs.iter().map(|c| c.weight.val()).collect();
        if let Some(ys) = darts_pt_kernels::conv2d_dense_shared(x, &weights, geo.0, geo.1) {
            return ys;
        }
    }
    convs.iter().map(|c| conv2d(x.clone(), c)).collect()
}

/// ReLU through the fused kernels (flex: all cores; CubeCL: one launch each way), Burn's `relu`
/// otherwise (see [`batch_norm_train`]).
pub(crate) fn relu(x: burn::tensor::Tensor<4>) -> burn::tensor::Tensor<4> {
    #[cfg(not(target_arch = "wasm32"))]
    if kernels() == Kernels::Fused
        && let Some(y) = darts_pt_kernels::relu(&x).or_else(|| darts_pt_kernels::cube::relu(&x))
    {
        return y;
    }
    burn::tensor::activation::relu(x)
}
