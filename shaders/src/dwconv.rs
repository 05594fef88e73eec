//! Depthwise convolution (`groups = channels`, one k×k filter per channel, no bias) with stride,
//! symmetric zero padding and dilation: the first half of DARTS' `sep_conv_kxk` and
//! `dil_conv_kxk` blocks. Input gradient and weight gradient are direct loops over each
//! `[h, w]` plane, parallel over planes, whose inner loops run over contiguous output columns.
//! The forward is flex's depthwise kernel itself, so outputs equal the plain path's bit for bit.
//!
//! `y[n,c,i,j] = Σ_{a,b} w[c,0,a,b] · x[n,c, i·s − p + a·d, j·s − p + b·d]` (out-of-range x is 0).

use burn::backend::ops::{ConvOptions, ModuleOps};
use burn::tensor::Tensor;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

use crate::bridge::{
    AdTensor, Flexed, contiguous, dims, flexed, from_vec, par_zeroed, plain_tensor, record,
    register_input_grad, values,
};

/// Geometry of one depthwise convolution.
#[derive(Clone, Copy, Debug)]
struct Geo {
    c: usize,
    h: usize,
    w: usize,
    k: usize,
    s: usize,
    p: usize,
    d: usize,
    ho: usize,
    wo: usize,
}

impl Geo {
    /// Output positions `lo..hi` (of `out`) whose input index `o·s − p + off` lies in `0..n`.
    #[inline]
    fn range(&self, out: usize, n: usize, off: usize) -> (usize, usize) {
        crate::bridge::valid_range(out, n, self.s, self.p, off)
    }
}

fn input_grad(dy: &[f32], wt: &[f32], planes: usize, g: Geo) -> Vec<f32> {
    let (hw, ohw, kk) = (g.h * g.w, g.ho * g.wo, g.k * g.k);
    let dx = par_zeroed(planes * hw, hw, |pl, gx| {
        let gy = &dy[pl * ohw..(pl + 1) * ohw];
        let ws = &wt[(pl % g.c) * kk..(pl % g.c + 1) * kk];
        for a in 0..g.k {
            let (i0, i1) = g.range(g.ho, g.h, a * g.d);
            for i in i0..i1 {
                let r = i * g.s + a * g.d - g.p;
                let grow = &gy[i * g.wo..(i + 1) * g.wo];
                let xrow = &mut gx[r * g.w..(r + 1) * g.w];
                for b in 0..g.k {
                    let wv = ws[a * g.k + b];
                    let (j0, j1) = g.range(g.wo, g.w, b * g.d);
                    if j1 <= j0 {
                        continue;
                    }
                    if g.s == 1 {
                        let base = j0 + b * g.d - g.p;
                        for (o, &v) in xrow[base..base + (j1 - j0)].iter_mut().zip(&grow[j0..j1]) {
                            *o += wv * v;
                        }
                    } else {
                        for j in j0..j1 {
                            xrow[j * g.s + b * g.d - g.p] += wv * grow[j];
                        }
                    }
                }
            }
        }
    });
    dx
}

fn weight_grad(dy: &[f32], x: &[f32], planes: usize, g: Geo) -> Vec<f32> {
    let (hw, ohw, kk) = (g.h * g.w, g.ho * g.wo, g.k * g.k);
    let per_plane: Vec<Vec<f64>> = (0..planes)
        .into_par_iter()
        .map(|pl| {
            let xs = &x[pl * hw..(pl + 1) * hw];
            let gy = &dy[pl * ohw..(pl + 1) * ohw];
            let mut acc = vec![0.0f64; kk];
            for a in 0..g.k {
                let (i0, i1) = g.range(g.ho, g.h, a * g.d);
                for b in 0..g.k {
                    let (j0, j1) = g.range(g.wo, g.w, b * g.d);
                    if j1 <= j0 {
                        continue;
                    }
                    let mut s = 0.0f32;
                    for i in i0..i1 {
                        let r = i * g.s + a * g.d - g.p;
                        let row = &xs[r * g.w..(r + 1) * g.w];
                        let grow = &gy[i * g.wo..(i + 1) * g.wo];
                        if g.s == 1 {
                            let base = j0 + b * g.d - g.p;
                            let mut l = [0.0f32; 8];
                            let gs = &grow[j0..j1];
                            let xs2 = &row[base..base + (j1 - j0)];
                            let mut q = 0;
                            while q + 8 <= gs.len() {
                                for t in 0..8 {
                                    l[t] += gs[q + t] * xs2[q + t];
                                }
                                q += 8;
                            }
                            while q < gs.len() {
                                l[0] += gs[q] * xs2[q];
                                q += 1;
                            }
                            s += l.iter().sum::<f32>();
                        } else {
                            for j in j0..j1 {
                                s += grow[j] * row[j * g.s + b * g.d - g.p];
                            }
                        }
                    }
                    acc[a * g.k + b] += s as f64;
                }
            }
            acc
        })
        .collect();
    let mut dw = vec![0.0f64; g.c * kk];
    for (pl, acc) in per_plane.iter().enumerate() {
        let ch = pl % g.c;
        for (t, v) in acc.iter().enumerate() {
            dw[ch * kk + t] += v;
        }
    }
    dw.into_iter().map(|v| v as f32).collect()
}

#[derive(Clone, Debug)]
struct DwState {
    /// The tracked input, for [`register_input_grad`].
    input: AdTensor,
    x: FlexTensor,
    weight: FlexTensor,
    geo: Geo,
    n: usize,
}

#[derive(Debug)]
struct DwBackward;

impl Backward<Flex, 2> for DwBackward {
    type State = DwState;

    fn backward(self, ops: Ops<DwState, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [px, pw] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        let st = &ops.state;
        let g = st.geo;
        let planes = st.n * g.c;
        if px.is_some() {
            let dx = input_grad(values(&dy), values(&st.weight), planes, g);
            register_input_grad(grads, &st.input, dx, vec![st.n, g.c, g.h, g.w]);
        }
        if let Some(node) = pw {
            let dw = weight_grad(values(&dy), values(&st.x), planes, g);
            grads.register::<Flex>(node.id, from_vec(dw, vec![g.c, 1, g.k, g.k]));
        }
    }
}

/// Depthwise convolution of `x` `[batch, channels, h, w]` with `weight` `[channels, 1, k, k]`,
/// `stride`, symmetric `padding` and `dilation` (no bias): `[batch, channels, h', w']` with
/// `h' = (h + 2·padding − dilation·(k − 1) − 1) / stride + 1`. Gradients reach `x` and `weight`
/// when tracked. `None` when a tensor is not f32 on flex or the shapes do not fit.
pub fn depthwise_conv2d(
    x: &Tensor<4>,
    weight: &Tensor<4>,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Option<Tensor<4>> {
    let [n, c, h, w] = x.dims();
    let [wc, one, k, k2] = weight.dims();
    if wc != c || one != 1 || k != k2 || k == 0 || stride == 0 || dilation == 0 {
        return None;
    }
    let span = dilation * (k - 1) + 1;
    if h + 2 * padding < span || w + 2 * padding < span {
        return None;
    }
    let geo = Geo {
        c,
        h,
        w,
        k,
        s: stride,
        p: padding,
        d: dilation,
        ho: (h + 2 * padding - span) / stride + 1,
        wo: (w + 2 * padding - span) / stride + 1,
    };
    let (fx, fw) = (flexed(x)?, flexed(weight)?);
    let (xp, wp) = (contiguous(fx.primitive()), contiguous(fw.primitive()));
    debug_assert_eq!(dims(&xp), vec![n, c, h, w]);
    // The forward is flex's own depthwise kernel (faster than a direct loop here, and the very
    // numbers of the plain path); the backward passes below replace Burn's generic ones.
    let y = <Flex as ModuleOps<Flex>>::conv2d(
        xp.clone(),
        wp.clone(),
        None,
        ConvOptions::new([stride; 2], [padding; 2], [dilation; 2], c),
    );
    debug_assert_eq!(dims(&y), vec![n, c, geo.ho, geo.wo]);
    match (fx, fw) {
        (Flexed::Plain(_), Flexed::Plain(_)) => Some(plain_tensor(y)),
        (Flexed::Tracked(tx), Flexed::Tracked(tw)) => {
            let node = tx.node();
            let state = DwState {
                input: tx,
                x: xp,
                weight: wp,
                geo,
                n,
            };
            Some(record(DwBackward, [node, tw.node()], state, y))
        }
        _ => None,
    }
}
