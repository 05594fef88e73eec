//! The GPU kernels, written in CubeCL (`#[cube(launch_unchecked)]`): compiled just in time for
//! the runtime of the tensors they get (wgpu's Vulkan, Metal, DX12 or WebGPU, CUDA, ...).
//!
//! Every buffer is a contiguous f32 `&[f32]`; tensors are `[batch, channels, height, width]`,
//! a channel's `plane` being `height · width` values. The launchers (`super`) check the shapes
//! before any launch: the kernels index without bounds checks beyond their own guards.

use cubecl::prelude::*;

/// `out[i] = (out[i] if accumulate) + Σ_{j < terms} t_j[i] · w[k0 + j]`, the terms added in
/// order, one unit per element: a mixed op's weighted sum of up to four terms per launch (two
/// launches for the 5 to 8 terms of the DARTS spaces, the second accumulating). Unused term
/// slots are bound to any term and never read.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn weighted_sum_kernel(
    t0: &[f32],
    t1: &[f32],
    t2: &[f32],
    t3: &[f32],
    w: &[f32],
    out: &mut [f32],
    #[comptime] k0: usize,
    #[comptime] terms: usize,
    #[comptime] accumulate: bool,
) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    let mut acc = t0[i] * w[k0];
    if comptime!(accumulate) {
        acc = out[i] + acc;
    }
    if comptime!(terms > 1) {
        acc += t1[i] * w[k0 + 1];
    }
    if comptime!(terms > 2) {
        acc += t2[i] * w[k0 + 2];
    }
    if comptime!(terms > 3) {
        acc += t3[i] * w[k0 + 3];
    }
    out[i] = acc;
}

/// `out[i] = dy[i] · w[k]`: one term's gradient of the weighted sum.
#[cube(launch_unchecked)]
pub(crate) fn scale_kernel(dy: &[f32], w: &[f32], out: &mut [f32], #[comptime] k: usize) {
    let i = ABSOLUTE_POS;
    if i >= out.len() {
        terminate!();
    }
    out[i] = dy[i] * w[k];
}

/// Sums `s[0..lanes·cube]` lane by lane over the `cube` units (a power of two): afterwards
/// `s[l·cube]` holds lane `l`'s total, visible to every unit.
#[cube]
fn tree_sum(s: &mut Shared<[f32]>, #[comptime] lanes: usize, #[comptime] cube: usize) {
    sync_cube();
    let u = UNIT_POS;
    let mut half = CUBE_DIM / 2;
    while half > 0 {
        if u < half {
            #[unroll]
            for l in 0..lanes {
                let dst = l * cube + u as usize;
                let v = s[dst] + s[dst + half as usize];
                s[dst] = v;
            }
        }
        sync_cube();
        half /= 2;
    }
}

/// The weight gradient of the weighted sum, first half: `partial[j · CUBE_COUNT + cube] = Σ
/// dy·t_j` over the elements this cube's units visit (a grid-stride loop), for `j < terms ≤ 4`.
/// [`row_sum_kernel`] then adds the cubes' parts.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn dots_kernel(
    dy: &[f32],
    t0: &[f32],
    t1: &[f32],
    t2: &[f32],
    t3: &[f32],
    partial: &mut [f32],
    #[comptime] terms: usize,
    #[comptime] cube: usize,
) {
    let n = dy.len();
    let stride = CUBE_COUNT * cube;
    let mut s0 = 0.0f32;
    let mut s1 = 0.0f32;
    let mut s2 = 0.0f32;
    let mut s3 = 0.0f32;
    let mut i = ABSOLUTE_POS;
    while i < n {
        let g = dy[i];
        s0 += g * t0[i];
        if comptime!(terms > 1) {
            s1 += g * t1[i];
        }
        if comptime!(terms > 2) {
            s2 += g * t2[i];
        }
        if comptime!(terms > 3) {
            s3 += g * t3[i];
        }
        i += stride;
    }
    let u = UNIT_POS as usize;
    let mut s = Shared::<[f32]>::new_slice(comptime!(4 * cube));
    s[u] = s0;
    s[cube + u] = s1;
    s[2 * cube + u] = s2;
    s[3 * cube + u] = s3;
    tree_sum(&mut s, 4usize, cube);
    if u < terms {
        partial[u * CUBE_COUNT + CUBE_POS] = s[u * cube];
    }
}

/// `out[r] = Σ_{j < cols} partial[r · cols + j]`, one unit per row.
#[cube(launch_unchecked)]
pub(crate) fn row_sum_kernel(partial: &[f32], out: &mut [f32], cols: usize) {
    let r = ABSOLUTE_POS;
    if r >= out.len() {
        terminate!();
    }
    let mut acc = 0.0f32;
    for j in 0..cols {
        acc += partial[r * cols + j];
    }
    out[r] = acc;
}

/// Per channel `c` (one cube each), the sum of `f(x)` over the channel's `batch` planes, each
/// unit striding over a plane; afterwards `s[0]` holds the channel's total.
#[cube]
fn channel_sum(
    x: &[f32],
    shift: f32,
    #[comptime] square: bool,
    s: &mut Shared<[f32]>,
    batch: usize,
    channels: usize,
    plane: usize,
    #[comptime] cube: usize,
) {
    let c = CUBE_POS;
    let u = UNIT_POS as usize;
    let mut acc = 0.0f32;
    for b in 0..batch {
        let base = (b * channels + c) * plane;
        let mut j = u;
        while j < plane {
            let d = x[base + j] - shift;
            if square {
                acc += d * d;
            } else {
                acc += d;
            }
            j += cube;
        }
    }
    s[u] = acc;
    tree_sum(s, 1usize, cube);
}

/// Affine-free BatchNorm with batch statistics, forward, one cube per channel (spec §1.2 and
/// PyTorch's `BatchNorm2d(affine=False)` in training mode): the mean, then the biased variance
/// `Σ(x − mean)²/M` (two passes, M = batch·plane), then `y = (x − mean) / √(var + ε)`.
/// `mean[c]` and `var[c]` are written for the running statistics.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn bn_forward_kernel(
    x: &[f32],
    y: &mut [f32],
    mean: &mut [f32],
    var: &mut [f32],
    batch: usize,
    channels: usize,
    plane: usize,
    eps: f32,
    #[comptime] cube: usize,
) {
    let c = CUBE_POS;
    let u = UNIT_POS as usize;
    let m = f32::cast_from(batch * plane);
    let mut s = Shared::<[f32]>::new_slice(cube);
    channel_sum(x, 0.0f32, false, &mut s, batch, channels, plane, cube);
    let mu = s[0] / m;
    sync_cube();
    channel_sum(x, mu, true, &mut s, batch, channels, plane, cube);
    let v = s[0] / m;
    let inv = 1.0f32 / f32::sqrt(v + eps);
    for b in 0..batch {
        let base = (b * channels + c) * plane;
        let mut j = u;
        while j < plane {
            y[base + j] = (x[base + j] - mu) * inv;
            j += cube;
        }
    }
    if u == 0 {
        mean[c] = mu;
        var[c] = v;
    }
}

/// Affine-free BatchNorm's input gradient, one cube per channel, from the saved output
/// `y` = x̂ and biased variance: `dx = (dy − Σdy/M − x̂·Σ(dy·x̂)/M) / √(var + ε)`.
#[cube(launch_unchecked)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn bn_backward_kernel(
    dy: &[f32],
    y: &[f32],
    var: &[f32],
    dx: &mut [f32],
    batch: usize,
    channels: usize,
    plane: usize,
    eps: f32,
    #[comptime] cube: usize,
) {
    let c = CUBE_POS;
    let u = UNIT_POS as usize;
    let m = f32::cast_from(batch * plane);
    let mut a = 0.0f32;
    let mut p = 0.0f32;
    for b in 0..batch {
        let base = (b * channels + c) * plane;
        let mut j = u;
        while j < plane {
            let g = dy[base + j];
            a += g;
            p += g * y[base + j];
            j += cube;
        }
    }
    let mut s = Shared::<[f32]>::new_slice(comptime!(2 * cube));
    s[u] = a;
    s[cube + u] = p;
    tree_sum(&mut s, 2usize, cube);
    let mean_dy = s[0] / m;
    let mean_dyy = s[cube] / m;
    let inv = 1.0f32 / f32::sqrt(var[c] + eps);
    for b in 0..batch {
        let base = (b * channels + c) * plane;
        let mut j = u;
        while j < plane {
            let k = base + j;
            dx[k] = (dy[k] - mean_dy - y[k] * mean_dyy) * inv;
            j += cube;
        }
    }
}

/// `y[i] = max(x[i], 0)`.
#[cube(launch_unchecked)]
pub(crate) fn relu_kernel(x: &[f32], y: &mut [f32]) {
    let i = ABSOLUTE_POS;
    if i >= y.len() {
        terminate!();
    }
    let v = x[i];
    y[i] = select(v > 0.0f32, v, 0.0f32);
}

/// `dx[i] = dy[i]` where the saved output `y[i] > 0` (⇔ x > 0), else 0.
#[cube(launch_unchecked)]
pub(crate) fn relu_backward_kernel(dy: &[f32], y: &[f32], dx: &mut [f32]) {
    let i = ABSOLUTE_POS;
    if i >= dx.len() {
        terminate!();
    }
    dx[i] = select(y[i] > 0.0f32, dy[i], 0.0f32);
}

/// `dst[offset + i] = src[i]`.
#[cube(launch_unchecked)]
pub(crate) fn copy_kernel(src: &[f32], dst: &mut [f32], offset: usize) {
    let i = ABSOLUTE_POS;
    if i >= src.len() {
        terminate!();
    }
    dst[offset + i] = src[i];
}
