//! BatchNorm with batch statistics over `[batch, channels, height, width]`, affine or not, in two
//! passes forward (statistics, normalisation) and two backward (per-channel sums, input gradient).
//!
//! Semantics of PyTorch's `BatchNorm2d` in training mode (and of Burn's `batch_norm_train`):
//! mean and biased variance per channel over batch, height and width;
//! `y = (x − mean) / √(var + ε) · γ + β`. Gradients (M = batch·height·width, x̂ = normalised x):
//! `dβ = Σ dy`, `dγ = Σ dy·x̂`, `dx = γ/√(var + ε) · (dy − Σdy/M − x̂·Σ(dy·x̂)/M)`.

use burn::tensor::Tensor;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use crate::bridge::{
    AdTensor, Flexed, contiguous, dims, flexed, from_vec, par_uninit, plain_tensor, record,
    register_input_grad, values,
};

/// What [`batch_norm_train`] returns.
pub struct BnOutput {
    /// The normalised tensor, shape of the input.
    pub output: Tensor<4>,
    /// Per-channel batch mean `[channels]`.
    pub mean: Vec<f32>,
    /// Per-channel biased batch variance `[channels]`.
    pub var: Vec<f32>,
}

/// Sum of a slice in f32 lanes, accumulated in f64 (close to a pairwise sum, fast).
#[inline]
fn lane_sum(v: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    let mut acc = [0.0f32; 8];
    let chunks = v.chunks_exact(8);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..8 {
            acc[l] += f(c[l]);
        }
    }
    let mut s: f64 = acc.iter().map(|&a| a as f64).sum();
    for &x in rest {
        s += f(x) as f64;
    }
    s
}

/// Per-channel (mean, biased variance, 1/√(var+ε)) of contiguous `x` `[n, c, hw]`.
fn stats(x: &[f32], n: usize, c: usize, hw: usize, eps: f64) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let m = (n * hw) as f64;
    let per: Vec<(f32, f32, f32)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let plane = |b: usize| &x[(b * c + ch) * hw..(b * c + ch + 1) * hw];
            // Split the plane sums into blocks so that f32 lanes never sum more than a few
            // thousand values before reaching the f64 accumulator.
            let mut s = 0.0f64;
            for b in 0..n {
                for blk in plane(b).chunks(4096) {
                    s += lane_sum(blk, |v| v);
                }
            }
            let mean = s / m;
            let mf = mean as f32;
            let mut q = 0.0f64;
            for b in 0..n {
                for blk in plane(b).chunks(4096) {
                    q += lane_sum(blk, |v| {
                        let d = v - mf;
                        d * d
                    });
                }
            }
            let var = q / m;
            (mean as f32, var as f32, (1.0 / (var + eps).sqrt()) as f32)
        })
        .collect();
    (
        per.iter().map(|p| p.0).collect(),
        per.iter().map(|p| p.1).collect(),
        per.iter().map(|p| p.2).collect(),
    )
}

/// `y = (x − mean)·rstd·γ + β` per plane.
fn normalize(
    x: &[f32],
    c: usize,
    hw: usize,
    mean: &[f32],
    rstd: &[f32],
    affine: Option<(&[f32], &[f32])>,
) -> Vec<f32> {
    // SAFETY: every element of each plane chunk is written once.
    unsafe {
        par_uninit(x.len(), hw, |p, out| {
            let ch = p % c;
            let xs = &x[p * hw..(p + 1) * hw];
            let (m, r) = (mean[ch], rstd[ch]);
            match affine {
                Some((g, b)) => {
                    let (g, b) = (g[ch], b[ch]);
                    for (o, &v) in out.iter_mut().zip(xs) {
                        o.write((v - m) * r * g + b);
                    }
                }
                None => {
                    for (o, &v) in out.iter_mut().zip(xs) {
                        o.write((v - m) * r);
                    }
                }
            }
        })
    }
}

/// Per-channel `(Σ dy, Σ dy·x̂)`.
fn grad_sums(
    dy: &[f32],
    x: &[f32],
    n: usize,
    c: usize,
    hw: usize,
    mean: &[f32],
    rstd: &[f32],
) -> (Vec<f64>, Vec<f64>) {
    let per: Vec<(f64, f64)> = (0..c)
        .into_par_iter()
        .map(|ch| {
            let (m, r) = (mean[ch], rstd[ch]);
            let (mut s1, mut s2) = (0.0f64, 0.0f64);
            for b in 0..n {
                let o = (b * c + ch) * hw;
                for (dys, xs) in dy[o..o + hw].chunks(4096).zip(x[o..o + hw].chunks(4096)) {
                    let mut a1 = [0.0f32; 8];
                    let mut a2 = [0.0f32; 8];
                    let mut i = 0;
                    while i + 8 <= dys.len() {
                        for l in 0..8 {
                            let g = dys[i + l];
                            a1[l] += g;
                            a2[l] += g * ((xs[i + l] - m) * r);
                        }
                        i += 8;
                    }
                    s1 += a1.iter().map(|&v| v as f64).sum::<f64>();
                    s2 += a2.iter().map(|&v| v as f64).sum::<f64>();
                    while i < dys.len() {
                        let g = dys[i];
                        s1 += g as f64;
                        s2 += (g * ((xs[i] - m) * r)) as f64;
                        i += 1;
                    }
                }
            }
            (s1, s2)
        })
        .collect();
    (
        per.iter().map(|p| p.0).collect(),
        per.iter().map(|p| p.1).collect(),
    )
}

/// `dx = γ·rstd·(dy − Σdy/M − x̂·Σ(dy·x̂)/M)`.
#[allow(clippy::too_many_arguments)]
fn input_grad(
    dy: &[f32],
    x: &[f32],
    n: usize,
    c: usize,
    hw: usize,
    mean: &[f32],
    rstd: &[f32],
    gamma: Option<&[f32]>,
    s1: &[f64],
    s2: &[f64],
) -> Vec<f32> {
    let m = (n * hw) as f64;
    // SAFETY: every element of each plane chunk is written once.
    unsafe {
        par_uninit(dy.len(), hw, |p, out| {
            let ch = p % c;
            let o = p * hw;
            let (mu, r) = (mean[ch], rstd[ch]);
            let g = gamma.map_or(1.0, |g| g[ch]);
            let k = g * r;
            let a = (s1[ch] / m) as f32;
            let b = (s2[ch] / m) as f32;
            for ((d, &gy), &xv) in out.iter_mut().zip(&dy[o..o + hw]).zip(&x[o..o + hw]) {
                let xh = (xv - mu) * r;
                d.write(k * (gy - a - xh * b));
            }
        })
    }
}

#[derive(Clone, Debug)]
struct BnState {
    /// The tracked input, for [`register_input_grad`].
    input: AdTensor,
    x: FlexTensor,
    mean: Vec<f32>,
    rstd: Vec<f32>,
    gamma: Option<Vec<f32>>,
}

impl BnState {
    /// `(dx, Σ dy, Σ dy·x̂)` per channel; `dx` only when asked for.
    fn grads(&self, dy: FlexTensor, want_dx: bool) -> (Option<Vec<f32>>, Vec<f64>, Vec<f64>) {
        let shape = dims(&self.x);
        let (n, c, hw) = (shape[0], shape[1], shape[2] * shape[3]);
        let dy = contiguous(dy);
        let (dyv, xv) = (values(&dy), values(&self.x));
        let (s1, s2) = grad_sums(dyv, xv, n, c, hw, &self.mean, &self.rstd);
        let dx = want_dx.then(|| {
            input_grad(
                dyv,
                xv,
                n,
                c,
                hw,
                &self.mean,
                &self.rstd,
                self.gamma.as_deref(),
                &s1,
                &s2,
            )
        });
        (dx, s1, s2)
    }
}

#[derive(Debug)]
struct BnFree;

impl Backward<Flex, 1> for BnFree {
    type State = BnState;

    fn backward(self, ops: Ops<BnState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [px] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        if px.is_some() {
            let (dx, _, _) = ops.state.grads(dy, true);
            let st = &ops.state;
            register_input_grad(grads, &st.input, dx.expect("input gradient"), dims(&st.x));
        }
    }
}

#[derive(Debug)]
struct BnAffine;

impl Backward<Flex, 3> for BnAffine {
    type State = BnState;

    fn backward(self, ops: Ops<BnState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [px, pg, pb] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node);
        let c = ops.state.mean.len();
        let (dx, s1, s2) = ops.state.grads(dy, px.is_some());
        if let (Some(_), Some(dx)) = (px, dx) {
            let st = &ops.state;
            register_input_grad(grads, &st.input, dx, dims(&st.x));
        }
        if let Some(node) = pg {
            let v = s2.iter().map(|&v| v as f32).collect();
            grads.register::<Flex>(node.id, from_vec(v, vec![c]));
        }
        if let Some(node) = pb {
            let v = s1.iter().map(|&v| v as f32).collect();
            grads.register::<Flex>(node.id, from_vec(v, vec![c]));
        }
    }
}

/// BatchNorm of `x` `[batch, channels, height, width]` with batch statistics; `affine` is
/// `(γ, β)`, both `[channels]`, or `None` for PyTorch's `affine=False` (no γ/β work at all).
/// Gradients reach `x`, γ and β when they are tracked. Returns `None` when `x` is not an f32
/// tensor on flex (the caller then takes Burn's composition).
pub fn batch_norm_train(
    x: &Tensor<4>,
    affine: Option<(&Tensor<1>, &Tensor<1>)>,
    eps: f64,
) -> Option<BnOutput> {
    let fx = flexed(x)?;
    let fa = match affine {
        Some((g, b)) => Some((flexed(g)?, flexed(b)?)),
        None => None,
    };
    let xp = contiguous(fx.primitive());
    let shape = dims(&xp);
    let (n, c, hw) = (shape[0], shape[1], shape[2] * shape[3]);
    let xv = values(&xp);
    let (mean, var, rstd) = stats(xv, n, c, hw, eps);
    let (gv, bv) = match &fa {
        Some((g, b)) => {
            let (g, b) = (contiguous(g.primitive()), contiguous(b.primitive()));
            (Some(values(&g).to_vec()), Some(values(&b).to_vec()))
        }
        None => (None, None),
    };
    let aff = gv.as_deref().zip(bv.as_deref());
    let y = from_vec(normalize(xv, c, hw, &mean, &rstd, aff), shape);
    let output = match (fx, fa) {
        (Flexed::Plain(_), None) => plain_tensor(y),
        (Flexed::Plain(_), Some((Flexed::Plain(_), Flexed::Plain(_)))) => plain_tensor(y),
        (Flexed::Tracked(t), None) => {
            let node = t.node();
            let state = BnState {
                input: t,
                x: xp,
                mean: mean.clone(),
                rstd,
                gamma: None,
            };
            record(BnFree, [node], state, y)
        }
        (Flexed::Tracked(t), Some((Flexed::Tracked(g), Flexed::Tracked(b)))) => {
            let node = t.node();
            let state = BnState {
                input: t,
                x: xp,
                mean: mean.clone(),
                rstd,
                gamma: gv,
            };
            record(BnAffine, [node, g.node(), b.node()], state, y)
        }
        _ => return None,
    };
    Some(BnOutput { output, mean, var })
}
