//! The mixed-op weighted sum `Σ_k w_k · t_k` of K same-shaped tensors with a `[K]` weight vector
//! (softmax(α) of one edge, spec §1.1), in one pass forward; backward gives each term's gradient
//! `w_k · dy` and the weight gradient `Σ dy · t_k` in K + 1 passes.
//!
//! The forward adds the products in term order in f32, exactly as the composition
//! `((t_0·w_0 + t_1·w_1) + t_2·w_2) + …`, so its output is bit-identical to it.

use burn::tensor::Tensor;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use crate::bridge::{
    AdTensor, CHUNK, Flexed, contiguous, dims, flexed, from_vec, par_zeroed, plain_tensor, record,
    register_input_grad, values,
};

/// Most terms one fused sum takes (the 8-op DARTS space computes at most 7).
pub const MAX_TERMS: usize = 8;

fn forward(terms: &[&[f32]], w: &[f32]) -> Vec<f32> {
    let len = terms[0].len();
    let y = par_zeroed(len, CHUNK, |ci, out| {
        let o = ci * CHUNK;
        let n = out.len();
        out.copy_from_slice(&terms[0][o..o + n]);
        let w0 = w[0];
        for v in out.iter_mut() {
            *v *= w0;
        }
        for (t, &wk) in terms.iter().zip(w).skip(1) {
            for (v, &x) in out.iter_mut().zip(&t[o..o + n]) {
                *v += x * wk;
            }
        }
    });
    y
}

fn dots(dy: &[f32], terms: &[FlexTensor]) -> Vec<f32> {
    let k = terms.len();
    let vals: Vec<&[f32]> = terms.iter().map(values).collect();
    let chunks = dy.len().div_ceil(CHUNK);
    let parts: Vec<Vec<f64>> = (0..chunks)
        .into_par_iter()
        .map(|ci| {
            let o = ci * CHUNK;
            let e = (o + CHUNK).min(dy.len());
            vals.iter()
                .map(|t| {
                    let mut acc = [0.0f32; 8];
                    let (g, x) = (&dy[o..e], &t[o..e]);
                    let mut i = 0;
                    while i + 8 <= g.len() {
                        for l in 0..8 {
                            acc[l] += g[i + l] * x[i + l];
                        }
                        i += 8;
                    }
                    let mut s: f64 = acc.iter().map(|&a| a as f64).sum();
                    while i < g.len() {
                        s += (g[i] * x[i]) as f64;
                        i += 1;
                    }
                    s
                })
                .collect()
        })
        .collect();
    (0..k)
        .map(|j| parts.iter().map(|p| p[j]).sum::<f64>() as f32)
        .collect()
}

fn scaled(dy: &[f32], w: f32) -> Vec<f32> {
    let out = par_zeroed(dy.len(), CHUNK, |ci, o| {
        let s = ci * CHUNK;
        let n = o.len();
        for (v, &g) in o.iter_mut().zip(&dy[s..s + n]) {
            *v = g * w;
        }
    });
    out
}

#[derive(Clone, Debug)]
struct WsumState {
    terms: Vec<FlexTensor>,
    /// The tracked terms, for [`register_input_grad`].
    inputs: Vec<AdTensor>,
    weights: Vec<f32>,
}

#[derive(Debug)]
struct WsumBackward<const N: usize>;

impl<const N: usize> Backward<Flex, N> for WsumBackward<N> {
    type State = WsumState;

    fn backward(self, ops: Ops<WsumState, N>, grads: &mut Gradients, _: &mut Checkpointer) {
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let shape = dims(&dy);
        let dyv = values(&dy);
        let k = ops.state.weights.len();
        let mut parents = ops.parents.into_iter();
        for j in 0..k {
            if parents.next().flatten().is_some() {
                let g = scaled(dyv, ops.state.weights[j]);
                register_input_grad(grads, &ops.state.inputs[j], g, shape.clone());
            }
        }
        if let Some(node) = parents.next().flatten() {
            let g = dots(dyv, &ops.state.terms);
            grads.register::<Flex>(node.id, from_vec(g, vec![k]));
        }
    }
}

fn tracked<const N: usize>(
    terms: Vec<AdTensor>,
    weights: AdTensor,
    mut state: WsumState,
    out: FlexTensor,
) -> Tensor<4> {
    let mut guards: Vec<_> = terms.iter().map(|t| t.node()).collect();
    state.inputs = terms;
    guards.push(weights.node());
    let guards: [_; N] = match guards.try_into() {
        Ok(g) => g,
        Err(_) => unreachable!("N = terms + 1"),
    };
    record(WsumBackward::<N>, guards, state, out)
}

/// `Σ_k weights[k] · terms[k]` for `terms` of one shape `[batch, channels, h, w]` and `weights`
/// `[K]`, K = `terms.len()` in 1..=[`MAX_TERMS`]. Gradients reach the terms and the weights when
/// they are tracked. `None` when a tensor is not f32 on flex, the shapes differ, or K is out of
/// range.
pub fn weighted_sum(terms: &[Tensor<4>], weights: &Tensor<1>) -> Option<Tensor<4>> {
    let k = terms.len();
    if k == 0 || k > MAX_TERMS || weights.dims() != [k] {
        return None;
    }
    let shape = terms[0].dims();
    if terms.iter().any(|t| t.dims() != shape) {
        return None;
    }
    let ft: Vec<Flexed> = terms.iter().map(flexed).collect::<Option<_>>()?;
    let fw = flexed(weights)?;
    let prims: Vec<FlexTensor> = ft.iter().map(|t| contiguous(t.primitive())).collect();
    let wv = values(&contiguous(fw.primitive())).to_vec();
    let y = {
        let vals: Vec<&[f32]> = prims.iter().map(values).collect();
        from_vec(forward(&vals, &wv), shape.to_vec())
    };
    let all_plain = ft.iter().all(|t| matches!(t, Flexed::Plain(_)));
    match (all_plain, fw) {
        (true, Flexed::Plain(_)) => Some(plain_tensor(y)),
        (false, Flexed::Tracked(w)) => {
            let ts: Vec<_> = ft
                .into_iter()
                .map(|t| match t {
                    Flexed::Tracked(t) => Some(t),
                    Flexed::Plain(_) => None,
                })
                .collect::<Option<_>>()?;
            let state = WsumState {
                terms: prims,
                inputs: Vec::new(),
                weights: wv,
            };
            let out = match k {
                1 => tracked::<2>(ts, w, state, y),
                2 => tracked::<3>(ts, w, state, y),
                3 => tracked::<4>(ts, w, state, y),
                4 => tracked::<5>(ts, w, state, y),
                5 => tracked::<6>(ts, w, state, y),
                6 => tracked::<7>(ts, w, state, y),
                7 => tracked::<8>(ts, w, state, y),
                _ => tracked::<9>(ts, w, state, y),
            };
            Some(out)
        }
        _ => None,
    }
}
