//! ReLU over all cores (flex runs unary ops on one core): forward `max(x, 0)`, backward
//! `dy · [x > 0]` from the saved output (`y > 0` ⇔ `x > 0`), as Burn's own ReLU.

use burn::tensor::Tensor;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops};
use burn_flex::{Flex, FlexTensor};

use crate::bridge::{
    AdTensor, CHUNK, Flexed, contiguous, dims, flexed, from_vec, par_uninit, plain_tensor, record,
    register_grad, take_input_grad, values,
};

#[derive(Debug)]
struct ReluBackward;

impl Backward<Flex, 1> for ReluBackward {
    /// The output (its sign is the mask) and the tracked input.
    type State = (FlexTensor, AdTensor);

    fn backward(
        self,
        ops: Ops<(FlexTensor, AdTensor), 1>,
        grads: &mut Gradients,
        _: &mut Checkpointer,
    ) {
        let [px] = ops.parents;
        let dy = contiguous(grads.consume::<Flex>(&ops.node));
        if px.is_some() {
            let (y, input) = &ops.state;
            let (g, y) = (values(&dy), values(y));
            // The input's earlier gradient (from its other consumers) is summed in this pass.
            let old = take_input_grad(grads, input);
            let old = old.as_ref().map(values);
            // SAFETY: every element of each chunk is written once, with or without an earlier gradient.
            let dx = unsafe {
                par_uninit(g.len(), CHUNK, |ci, d| {
                    let o = ci * CHUNK;
                    let n = d.len();
                    let masked = d.iter_mut().zip(&g[o..o + n]).zip(&y[o..o + n]);
                    match old {
                        Some(old) => {
                            for (((v, &gv), &yv), &ov) in masked.zip(&old[o..o + n]) {
                                v.write((if yv > 0.0 { gv } else { 0.0 }) + ov);
                            }
                        }
                        None => {
                            for ((v, &gv), &yv) in masked {
                                v.write(if yv > 0.0 { gv } else { 0.0 });
                            }
                        }
                    }
                })
            };
            register_grad(grads, input, dx, dims(&dy));
        }
    }
}

/// `max(x, 0)` of `x` `[batch, channels, h, w]`; the gradient reaches `x` when tracked. `None`
/// when `x` is not f32 on flex.
pub fn relu(x: &Tensor<4>) -> Option<Tensor<4>> {
    let fx = flexed(x)?;
    let xp = contiguous(fx.primitive());
    let xv = values(&xp);
    // SAFETY: every element of each chunk is written once.
    let y = unsafe {
        par_uninit(xv.len(), CHUNK, |ci, out| {
            let o = ci * CHUNK;
            let n = out.len();
            for (v, &xi) in out.iter_mut().zip(&xv[o..o + n]) {
                v.write(xi.max(0.0));
            }
        })
    };
    let y = from_vec(y, dims(&xp));
    Some(match fx {
        Flexed::Plain(_) => plain_tensor(y),
        Flexed::Tracked(t) => record(ReluBackward, [t.node()], (y.clone(), t), y),
    })
}
