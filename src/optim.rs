//! The two optimizers of the bilevel search, with PyTorch's exact semantics (spec §2.2) and
//! state that can be checkpointed and inspected (the second-order step needs the momentum buffer).
//!
//! * [`Sgd`]: network weights. Global L2-norm gradient clipping (weights only), then
//!   `g += wd·w`, `buf = μ·buf + g` (dampening 0; `buf = g` on the first step), `w -= lr·buf`.
//! * [`Adam`]: α. `g += wd·α` (L2, not decoupled), bias-corrected moments, ε = 1e-8 added after the
//!   square root, as `torch.optim.Adam`.
//!
//! State is keyed by the parameter's module path (e.g. `Darts.cells.0.edges.3.ops.5...weight`).

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::tensor::{Gradients, Tensor};

fn is_running_stat(path: &[String]) -> bool {
    matches!(
        path.last().map(String::as_str),
        Some("running_mean" | "running_var")
    )
}

/// Squared global L2 norm of the gradients of every learnable weight of `module` (host f64).
pub fn grad_norm_sq<M: Module>(module: &M, grads: &Gradients) -> f64 {
    grad_norm_sq_tensor(module, grads).map_or(0.0, |t| t.into_scalar::<f64>())
}

/// [`grad_norm_sq`] left on the device as a `[1]` tensor (`None` without any gradient).
pub fn grad_norm_sq_tensor<M: Module>(module: &M, grads: &Gradients) -> Option<Tensor<1>> {
    struct Norm<'a> {
        path: Vec<String>,
        grads: &'a Gradients,
        acc: Option<Tensor<1>>,
    }
    impl ModuleVisitor for Norm<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if is_running_stat(&self.path) {
                return;
            }
            if let Some(g) = param.val().grad(self.grads) {
                let s = g.powi_scalar(2).sum();
                self.acc = Some(match self.acc.take() {
                    Some(a) => a.add(s),
                    None => s,
                });
            }
        }
    }
    let mut n = Norm {
        path: Vec::new(),
        grads,
        acc: None,
    };
    module.visit(&mut n);
    n.acc
}

/// SGD with momentum and L2 weight decay for the network weights.
#[derive(Clone, Debug)]
pub struct Sgd {
    /// Momentum μ (0.9).
    pub momentum: f64,
    /// Weight decay λ (3e-4).
    pub weight_decay: f64,
    /// Momentum buffers, flattened, by parameter path.
    pub buffers: BTreeMap<String, Tensor<1>>,
    /// Nesterov momentum (PyTorch's `nesterov=True`: the step is `g + μ·buf` instead of `buf`;
    /// NAS-Bench-201's training protocol). Off in every DARTS protocol.
    pub nesterov: bool,
}

impl Sgd {
    /// A fresh optimizer (empty momentum buffers).
    pub fn new(momentum: f64, weight_decay: f64) -> Self {
        Sgd {
            momentum,
            weight_decay,
            buffers: BTreeMap::new(),
            nesterov: false,
        }
    }

    /// The same optimizer with Nesterov momentum on or off.
    pub fn with_nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// One step on `module` with `grads`, learning rate `lr`, clipping the global gradient norm to
    /// `clip` (PyTorch `clip_grad_norm_`: scale `clip / (norm + 1e-6)` when below 1). Returns the
    /// gradient norm before clipping. Parameters without a gradient are left alone (as PyTorch
    /// skips parameters whose `.grad` is `None`).
    pub fn step<M: Module>(
        &mut self,
        module: M,
        grads: &Gradients,
        lr: f64,
        clip: Option<f64>,
    ) -> (M, f64) {
        let norm = grad_norm_sq(&module, grads).sqrt();
        (self.step_with_norm(module, grads, lr, clip, norm), norm)
    }

    /// [`Sgd::step`] with the global gradient norm already read back (`norm`, as
    /// `grad_norm_sq_tensor(..).sqrt()` on the host).
    pub fn step_with_norm<M: Module>(
        &mut self,
        module: M,
        grads: &Gradients,
        lr: f64,
        clip: Option<f64>,
        norm: f64,
    ) -> M {
        let scale = match clip {
            Some(c) if norm.is_finite() => (c / (norm + 1e-6)).min(1.0),
            _ => 1.0,
        };
        self.apply(module, grads, lr, Scale::Host(scale))
    }

    /// [`Sgd::step`] without any read to the host: the global gradient norm and the clip factor
    /// `min(1, clip / (norm + 1e-6))` (1 for a non-finite norm, as the host path) stay on the
    /// device as a `[1]` tensor that multiplies every gradient. The search step uses this, so
    /// that a GPU is never waited on mid-step (issue 16); the factor is computed in f32 on the
    /// device instead of f64 on the host, so it may differ from [`Sgd::step_with_norm`]'s in its
    /// last bit (the test `device_clip_matches_the_host_clip` bounds the difference).
    pub fn step_on_device<M: Module>(
        &mut self,
        module: M,
        grads: &Gradients,
        lr: f64,
        clip: Option<f64>,
    ) -> M {
        let scale = match (clip, grad_norm_sq_tensor(&module, grads)) {
            (Some(c), Some(sq)) => {
                let norm = sq.sqrt();
                let bad = norm.clone().is_nan().bool_or(norm.clone().is_inf());
                let f = norm.add_scalar(1e-6).recip().mul_scalar(c).clamp_max(1.0);
                Scale::Device(f.mask_fill(bad, 1.0))
            }
            _ => Scale::Host(1.0),
        };
        self.apply(module, grads, lr, scale)
    }

    fn apply<M: Module>(&mut self, module: M, grads: &Gradients, lr: f64, scale: Scale) -> M {
        let mut m = SgdMapper {
            path: Vec::new(),
            grads,
            sgd: self,
            lr,
            scale,
        };
        module.map(&mut m)
    }
}

/// The clip factor `min(1, clip / (norm + 1e-6))`: read back to the host, or a `[1]` tensor on
/// the device.
enum Scale {
    Host(f64),
    Device(Tensor<1>),
}

struct SgdMapper<'a> {
    path: Vec<String>,
    grads: &'a Gradients,
    sgd: &'a mut Sgd,
    lr: f64,
    /// The clip factor `min(1, clip / (norm + 1e-6))` (1 without a clip).
    scale: Scale,
}

impl ModuleMapper for SgdMapper<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        if is_running_stat(&self.path) {
            return param;
        }
        let Some(g) = param.val().grad(self.grads) else {
            return param;
        };
        let key = self.path.join(".");
        let (sgd, lr, scale) = (&mut *self.sgd, self.lr, &self.scale);
        param.map(|w| {
            let dims = w.dims();
            let w_in = w.inner();
            let mut g = match scale {
                Scale::Host(s) if *s < 1.0 => g.mul_scalar(*s),
                Scale::Host(_) => g,
                Scale::Device(f) => g.mul(f.clone().reshape([1; D])),
            };
            if sgd.weight_decay != 0.0 {
                g = g.add(w_in.clone().mul_scalar(sgd.weight_decay));
            }
            // Nesterov needs g after the buffer update; otherwise g is not kept (an extra
            // reference would stop the backend from updating its buffer in place).
            let nesterov_g = (sgd.nesterov && sgd.momentum != 0.0).then(|| g.clone());
            let buf = match sgd.buffers.get(&key) {
                Some(b) if sgd.momentum != 0.0 => {
                    b.clone().reshape(dims).mul_scalar(sgd.momentum).add(g)
                }
                _ => g,
            };
            let numel: usize = dims.iter().product();
            sgd.buffers.insert(key, buf.clone().reshape([numel]));
            // PyTorch: d_p = buf, or d_p = g + μ·buf with Nesterov.
            let step = match nesterov_g {
                Some(g) => g.add(buf.mul_scalar(sgd.momentum)),
                None => buf,
            };
            Tensor::from_inner(w_in.sub(step.mul_scalar(lr))).set_require_grad(true)
        })
    }
}

/// Adam with L2 weight decay, PyTorch semantics, for α.
#[derive(Clone, Debug)]
pub struct Adam {
    /// Learning rate (3e-4).
    pub lr: f64,
    /// β1 (0.5).
    pub beta1: f64,
    /// β2 (0.999).
    pub beta2: f64,
    /// ε (1e-8).
    pub eps: f64,
    /// L2 weight decay (1e-3).
    pub weight_decay: f64,
    /// Per parameter path: (step count, first moment, second moment), flattened.
    pub state: BTreeMap<String, (u64, Tensor<1>, Tensor<1>)>,
}

impl Adam {
    /// The reference's α optimizer: lr 3e-4, betas (0.5, 0.999), wd 1e-3, eps 1e-8.
    pub fn darts() -> Self {
        Adam {
            lr: 3e-4,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 1e-3,
            state: BTreeMap::new(),
        }
    }

    /// Update `param` (named `key`) with gradient `g` (plain tensor of the same shape).
    pub fn update<const D: usize>(
        &mut self,
        key: &str,
        param: Param<Tensor<D>>,
        g: Tensor<D>,
    ) -> Param<Tensor<D>> {
        param.map(|p| {
            let dims = p.dims();
            let numel: usize = dims.iter().product();
            let p_in = p.inner();
            let g = if self.weight_decay != 0.0 {
                g.add(p_in.clone().mul_scalar(self.weight_decay))
            } else {
                g
            };
            let (t, m, v) = match self.state.get(key) {
                Some((t, m, v)) => (*t, m.clone().reshape(dims), v.clone().reshape(dims)),
                None => (0, g.zeros_like(), g.zeros_like()),
            };
            let t = t + 1;
            let m = m
                .mul_scalar(self.beta1)
                .add(g.clone().mul_scalar(1.0 - self.beta1));
            let v = v
                .mul_scalar(self.beta2)
                .add(g.powi_scalar(2).mul_scalar(1.0 - self.beta2));
            let bc1 = 1.0 - self.beta1.powi(t as i32);
            let bc2 = 1.0 - self.beta2.powi(t as i32);
            let denom = v.clone().sqrt().div_scalar(bc2.sqrt()).add_scalar(self.eps);
            let new = p_in.sub(m.clone().div(denom).mul_scalar(self.lr / bc1));
            self.state
                .insert(key.to_string(), (t, m.reshape([numel]), v.reshape([numel])));
            Tensor::from_inner(new).set_require_grad(true)
        })
    }
}

/// Cosine annealing of the weight learning rate, stepped once per epoch (spec §2.2):
/// `lr(e) = lr_min + (lr0 − lr_min)·(1 + cos(π·e / epochs)) / 2`.
pub fn cosine_lr(lr0: f64, lr_min: f64, epoch: usize, epochs: usize) -> f64 {
    if epochs == 0 {
        return lr0;
    }
    lr_min
        + (lr0 - lr_min) * (1.0 + (std::f64::consts::PI * epoch as f64 / epochs as f64).cos()) / 2.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[derive(Module, Debug)]
    struct Lin {
        w: Param<Tensor<1>>,
    }

    /// The clip computed on the device gives the host clip's step, clipped or not, and leaves
    /// the gradients alone for a non-finite norm.
    #[test]
    fn device_clip_matches_the_host_clip() {
        let device = Device::flex().autodiff();
        let vals = |l: &Lin| -> Vec<f32> {
            l.w.val()
                .into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap()
        };
        // Norms 3·√2 (no clip at 5), 30·√2 (clipped to 5) and ∞ (left unclipped).
        for factor in [3.0f64, 30.0, f64::INFINITY] {
            let start = || Lin {
                w: Param::from_tensor(Tensor::from_data(
                    TensorData::new(vec![1.0f32, -2.0], [2]),
                    &device,
                )),
            };
            let (a, b) = (start(), start());
            let (mut host, mut dev) = (Sgd::new(0.9, 0.1), Sgd::new(0.9, 0.1));
            let ga = a.w.val().sum().mul_scalar(factor).backward();
            let gb = b.w.val().sum().mul_scalar(factor).backward();
            let norm = grad_norm_sq(&a, &ga).sqrt();
            let a = host.step_with_norm(a, &ga, 0.5, Some(5.0), norm);
            let b = dev.step_on_device(b, &gb, 0.5, Some(5.0));
            let (va, vb) = (vals(&a), vals(&b));
            for (x, y) in va.iter().zip(&vb) {
                if x.is_finite() {
                    assert!(
                        (x - y).abs() <= 1e-6 * x.abs().max(1.0),
                        "{factor}: {va:?} vs {vb:?}"
                    );
                } else {
                    assert_eq!(x.is_nan(), y.is_nan(), "{factor}: {va:?} vs {vb:?}");
                }
            }
            if factor == 30.0 {
                // Clipped: g = 30·(5 / (30·√2)) = 5/√2 each, plus decay.
                let w = 1.0 - 0.5 * (5.0 / 2f64.sqrt() + 0.1);
                assert!((vb[0] as f64 - w).abs() < 1e-5, "{vb:?}");
            }
        }
    }

    #[test]
    fn sgd_matches_pytorch_momentum_and_clipping() {
        let device = Device::flex().autodiff();
        let mut lin = Lin {
            w: Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![1.0f32, -2.0], [2]),
                &device,
            )),
        };
        let mut sgd = Sgd::new(0.9, 0.1);
        // loss = 3·Σw → grad 3 each; norm √18 ≈ 4.243 < 5: no clipping.
        for step in 0..2 {
            let loss = lin.w.val().sum().mul_scalar(3.0);
            let grads = loss.backward();
            let (l, norm) = sgd.step(lin, &grads, 0.5, Some(5.0));
            lin = l;
            assert!(
                (norm - 18f64.sqrt()).abs() < 1e-5,
                "step {step}: norm {norm}"
            );
        }
        // By hand: g1 = 3 + 0.1·w0, buf1 = g1, w1 = w0 − 0.5·buf1; g2 = 3 + 0.1·w1, buf2 = 0.9·buf1 + g2.
        let mut expect = vec![];
        for w0 in [1.0f64, -2.0] {
            let g1 = 3.0 + 0.1 * w0;
            let w1 = w0 - 0.5 * g1;
            let b2 = 0.9 * g1 + 3.0 + 0.1 * w1;
            expect.push(w1 - 0.5 * b2);
        }
        let got: Vec<f32> = lin
            .w
            .val()
            .into_data()
            .convert::<f32>()
            .try_into_vec()
            .unwrap();
        for (g, e) in got.iter().zip(&expect) {
            assert!((*g as f64 - e).abs() < 1e-5, "{got:?} vs {expect:?}");
        }
        // Clipping: grad 30 each, norm √1800 → scaled to norm 5.
        let loss = lin.w.val().sum().mul_scalar(30.0);
        let grads = loss.backward();
        let mut plain = Sgd::new(0.0, 0.0);
        let before: Vec<f32> = lin
            .w
            .val()
            .into_data()
            .convert::<f32>()
            .try_into_vec()
            .unwrap();
        let (lin, _) = plain.step(lin, &grads, 1.0, Some(5.0));
        let after: Vec<f32> = lin
            .w
            .val()
            .into_data()
            .convert::<f32>()
            .try_into_vec()
            .unwrap();
        let step: f64 = before
            .iter()
            .zip(&after)
            .map(|(a, b)| ((a - b) as f64).powi(2))
            .sum::<f64>()
            .sqrt();
        assert!((step - 5.0).abs() < 1e-3, "clipped step norm {step}");
    }

    #[test]
    fn nesterov_sgd_matches_pytorch() {
        let device = Device::flex().autodiff();
        let mut lin = Lin {
            w: Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![1.0f32, -2.0], [2]),
                &device,
            )),
        };
        let mut sgd = Sgd::new(0.9, 5e-4).with_nesterov(true);
        // loss = Σ w² → grad 2w.
        for _ in 0..3 {
            let loss = lin.w.val().powf_scalar(2.0).sum();
            let grads = loss.backward();
            lin = sgd.step(lin, &grads, 0.1, None).0;
        }
        // torch.optim.SGD(lr=0.1, momentum=0.9, weight_decay=5e-4, nesterov=True), by hand:
        // d = g + wd·w; buf = d (first step) or μ·buf + d; d = d + μ·buf; w -= lr·d.
        let mut expect = vec![];
        for mut w in [1.0f64, -2.0] {
            let mut buf: Option<f64> = None;
            for _ in 0..3 {
                let d = 2.0 * w + 5e-4 * w;
                let b = buf.map_or(d, |b| 0.9 * b + d);
                buf = Some(b);
                w -= 0.1 * (d + 0.9 * b);
            }
            expect.push(w);
        }
        let got: Vec<f32> = lin
            .w
            .val()
            .into_data()
            .convert::<f32>()
            .try_into_vec()
            .unwrap();
        for (g, e) in got.iter().zip(&expect) {
            assert!((*g as f64 - e).abs() < 1e-5, "{got:?} vs {expect:?}");
        }
    }

    #[test]
    fn adam_matches_pytorch_first_steps() {
        let device = Device::flex().autodiff();
        let p = Param::from_tensor(Tensor::<1>::from_data(
            TensorData::new(vec![0.5f32], [1]),
            &device,
        ));
        let mut adam = Adam::darts();
        let g = Tensor::<1>::from_data(TensorData::new(vec![0.2f32], [1]), &Device::flex());
        let p = adam.update("a", p, g.clone());
        let p = adam.update("a", p, g);
        // By hand (PyTorch formulas).
        let (lr, b1, b2, eps, wd) = (3e-4, 0.5f64, 0.999f64, 1e-8, 1e-3);
        let (mut w, mut m, mut v) = (0.5f64, 0.0, 0.0);
        for t in 1..=2 {
            let g = 0.2 + wd * w;
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            let denom = (v.sqrt() / (1.0 - b2.powi(t)).sqrt()) + eps;
            w -= lr / (1.0 - b1.powi(t)) * m / denom;
        }
        let got = p.val().into_scalar::<f64>();
        assert!((got - w).abs() < 1e-6, "{got} vs {w}");
    }

    #[test]
    fn cosine_schedule_endpoints() {
        assert!((cosine_lr(0.025, 0.001, 0, 50) - 0.025).abs() < 1e-12);
        assert!((cosine_lr(0.025, 0.001, 50, 50) - 0.001).abs() < 1e-12);
        assert!((cosine_lr(0.025, 0.001, 25, 50) - 0.013).abs() < 1e-12);
    }
}
