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
    AdTensor, CHUNK, Flexed, assume_init, contiguous, dims, flexed, from_vec, par_uninit,
    plain_tensor, record, register_grad, take_input_grad, values,
};

/// Most terms one fused sum takes (the 8-op DARTS space computes at most 7).
pub const MAX_TERMS: usize = 8;

fn forward(terms: &[&[f32]], w: &[f32]) -> Vec<f32> {
    let len = terms[0].len();
    let fill = |ci: usize, out: &mut [std::mem::MaybeUninit<f32>]| {
        let o = ci * CHUNK;
        let n = out.len();
        let w0 = w[0];
        for (v, &x) in out.iter_mut().zip(&terms[0][o..o + n]) {
            v.write(x * w0);
        }
        // SAFETY: the loop above initialised every element of the chunk.
        let out = unsafe { assume_init(out) };
        for (t, &wk) in terms.iter().zip(w).skip(1) {
            for (v, &x) in out.iter_mut().zip(&t[o..o + n]) {
                *v += x * wk;
            }
        }
    };
    // SAFETY: `fill` initialises every element of each chunk (the first term's loop).
    unsafe { par_uninit(len, CHUNK, fill) }
}

/// `Σ g·x` over one chunk: eight f32 lanes, then summed in f64.
#[inline]
fn chunk_dot(g: &[f32], x: &[f32]) -> f64 {
    let mut acc = [0.0f32; 8];
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
}

/// A term's gradient buffer, written chunk by chunk from several workers.
struct Out(*mut std::mem::MaybeUninit<f32>);
// SAFETY: the workers write disjoint chunks of the buffer.
unsafe impl Sync for Out {}

/// The whole backward in one pass over `dy`, chunk by chunk: for each term `k` in `want`, its
/// gradient `old_k + w_k·dy` (`w_k·dy` without an earlier gradient `old_k`), and, when
/// `want_dots`, the weight gradient `Σ dy·t_k`. Per element the sums are Burn's (`w_k·dy`
/// rounded, then `+ old_k`), so the results equal the separate passes bit for bit; `dy` is read
/// once instead of K + 1 times, and an earlier gradient costs no extra pass.
fn backward_pass(
    dy: &[f32],
    terms: &[&[f32]],
    w: &[f32],
    want: &[bool],
    olds: &[Option<&[f32]>],
    want_dots: bool,
) -> (Vec<Option<Vec<f32>>>, Option<Vec<f32>>) {
    let len = dy.len();
    let mut outs: Vec<Vec<f32>> = want
        .iter()
        .map(|&b| Vec::with_capacity(if b { len } else { 0 }))
        .collect();
    let ptrs: Vec<Out> = outs
        .iter_mut()
        .map(|v| Out(v.spare_capacity_mut().as_mut_ptr()))
        .collect();
    let chunks = len.div_ceil(CHUNK);
    let parts: Vec<Vec<f64>> = (0..chunks)
        .into_par_iter()
        .map(|ci| {
            let o = ci * CHUNK;
            let n = CHUNK.min(len - o);
            let g = &dy[o..o + n];
            for k in (0..want.len()).filter(|&k| want[k]) {
                // SAFETY: buffer k has capacity `len`; this chunk `o..o + n` is written by
                // this worker only.
                let dst = unsafe { std::slice::from_raw_parts_mut(ptrs[k].0.add(o), n) };
                let wk = w[k];
                match olds[k] {
                    Some(old) => {
                        for ((d, &gv), &ov) in dst.iter_mut().zip(g).zip(&old[o..o + n]) {
                            d.write(ov + gv * wk);
                        }
                    }
                    None => {
                        for (d, &gv) in dst.iter_mut().zip(g) {
                            d.write(gv * wk);
                        }
                    }
                }
            }
            if want_dots {
                terms.iter().map(|t| chunk_dot(g, &t[o..o + n])).collect()
            } else {
                Vec::new()
            }
        })
        .collect();
    let grads = outs
        .into_iter()
        .zip(want)
        .map(|(mut v, &b)| {
            b.then(|| {
                // SAFETY: every chunk of `0..len` was written above.
                unsafe { v.set_len(len) };
                v
            })
        })
        .collect();
    let dots = want_dots.then(|| {
        (0..terms.len())
            .map(|j| parts.iter().map(|p| p[j]).sum::<f64>() as f32)
            .collect()
    });
    (grads, dots)
}

#[derive(Clone, Debug)]
struct WsumState {
    terms: Vec<FlexTensor>,
    /// The tracked terms, whose earlier gradients the backward adds to.
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
        let st = &ops.state;
        let k = st.weights.len();
        let want: Vec<bool> = ops.parents[..k].iter().map(Option::is_some).collect();
        let want_dots = ops.parents[k].is_some();
        // What the terms received from their other consumers so far, summed into the pass.
        let olds: Vec<Option<FlexTensor>> = (0..k)
            .map(|j| {
                want[j]
                    .then(|| take_input_grad(grads, &st.inputs[j]))
                    .flatten()
            })
            .collect();
        let (term_grads, dots) = {
            let terms: Vec<&[f32]> = st.terms.iter().map(values).collect();
            let old_vals: Vec<Option<&[f32]>> =
                olds.iter().map(|o| o.as_ref().map(values)).collect();
            backward_pass(
                values(&dy),
                &terms,
                &st.weights,
                &want,
                &old_vals,
                want_dots,
            )
        };
        for (j, g) in term_grads.into_iter().enumerate() {
            if let Some(g) = g {
                register_grad(grads, &st.inputs[j], g, shape.clone());
            }
        }
        if let (Some(node), Some(g)) = (&ops.parents[k], dots) {
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
