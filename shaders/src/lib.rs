//! Fused ops of darts-pt as Burn backend extensions on the `flex` CPU backend, each with a
//! hand-written backward registered in Burn's autodiff graph:
//!
//! * [`batch_norm_train`]: BatchNorm with batch statistics, affine or not, 2 passes each way
//!   (Burn's generic composition makes about 9 forward and 13 backward, plus γ/β work for an
//!   affine-free BN).
//! * [`relu`]: ReLU on all cores (flex runs unary ops on one).
//! * [`max_pool3x3`]: `max_pool_3x3`, the gradient to each window's first maximum.
//! * [`avg_pool3x3`]: `avg_pool_3x3` without padding in the count, one pass each way.
//! * [`weighted_sum`]: a mixed op's `Σ_k w_k · out_k`, one pass forward and one backward.
//! * [`conv2d_dense`]: a dense convolution as matrix products per image, forward
//!   (`W · im2col(x)`) and backward (input gradient by col2im, weight gradient by im2col);
//!   [`conv2d_dense_shared`]: several such convolutions of one input, sharing its im2col and one
//!   input-gradient pass.
//! * [`depthwise_conv2d`]: the depthwise k×k convolution of `sep_conv` / `dil_conv`: flex's own
//!   forward kernel, and direct loops for both gradients (Burn's generic backward loops over
//!   groups and copies im2col buffers).
//!
//! Two rules hold for every op, so that the whole step runs on all cores:
//!
//! * **No single-core zeroing.** Outputs are built by the workers that write them: uninitialised
//!   where the pass writes every element, zeroed chunk by chunk where it accumulates (a
//!   `vec![0.0; n]` had glibc's calloc clear recycled memory with one memset on the calling
//!   thread).
//! * **Gradients are summed on all cores.** When an input tensor feeds several ops (a cell node's
//!   ReLU, pools and skip terms on every out-edge), each op's backward adds the gradient the
//!   input has received so far into its own result, in parallel, instead of leaving the sum to
//!   Burn's `Gradients::register` (one core). The sum is Burn's, `new + old`: the same bits.
//!
//! Every function returns `None` when its tensors do not live on flex as f32, so that the caller
//! falls back to Burn's composition (the wgpu backend, the browser). Crate tests compare each op
//! with that composition, outputs and gradients, within a stated max |a−b| / max |b|.
//! Tensor layout: `[batch, channels, height, width]`.

mod bn;
mod bridge;
mod conv;
pub mod cube;
mod dwconv;
mod pool;
mod relu;
mod wsum;

pub use bn::{BnOutput, batch_norm_train};
pub use bridge::supported;
pub use conv::{MAX_SHARED, conv2d_dense, conv2d_dense_shared};
pub use dwconv::depthwise_conv2d;
pub use pool::{avg_pool3x3, max_pool3x3};
pub use relu::relu;
pub use wsum::{MAX_TERMS, weighted_sum};

#[cfg(test)]
mod tests;
