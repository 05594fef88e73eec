//! Supernet search (spec §2): bilevel optimisation of network weights and α with DARTS first or
//! second order, SDARTS-RS / SDARTS-ADV perturbations, or fixed α (`blank`).
//!
//! One step = α step on a batch of the α half, then weight step on a batch of the weight half,
//! each batch a fresh random draw as in the reference (spec §2.1, §2.3).

use std::collections::BTreeMap;

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Gradients, Int, Tensor, TensorData};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::data::Batch;
use crate::engine;
use crate::ops::BnMode;
use crate::optim::{Adam, Sgd};
use crate::space::CellType;
use crate::supernet::{Alphas, Supernet};
use crate::weights::{CellWeights, Mask, MixWeights, Overrides};

/// How α is trained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// DARTS (spec §2.3, §2.4).
    Darts,
    /// SDARTS-RS: uniform random perturbation of softmax(α) for the weight step.
    SdartsRs,
    /// SDARTS-ADV: 7-step L∞ PGD on softmax(α) for the weight step.
    SdartsAdv,
    /// Fixed α: α never updated (spec §2.5).
    Blank,
}

impl Method {
    /// CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Darts => "darts",
            Method::SdartsRs => "sdarts-rs",
            Method::SdartsAdv => "sdarts-adv",
            Method::Blank => "blank",
        }
    }
}

impl std::str::FromStr for Method {
    type Err = crate::Error;

    fn from_str(s: &str) -> crate::Result<Self> {
        Ok(match s {
            "darts" => Method::Darts,
            "sdarts-rs" => Method::SdartsRs,
            "sdarts-adv" => Method::SdartsAdv,
            "blank" => Method::Blank,
            _ => {
                return Err(crate::Error::Config {
                    field: "method".into(),
                    message: format!(
                        "unknown method `{s}`; expected darts, sdarts-rs, sdarts-adv or blank"
                    ),
                });
            }
        })
    }
}

/// Optimisation hyper-parameters; defaults are the reference's (spec §2.2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Hyper {
    /// Weight learning rate at epoch 0.
    pub learning_rate: f64,
    /// Cosine floor.
    pub learning_rate_min: f64,
    /// SGD momentum.
    pub momentum: f64,
    /// SGD weight decay.
    pub weight_decay: f64,
    /// Global gradient-norm clip for the weights.
    pub grad_clip: f64,
    /// α Adam learning rate.
    pub arch_learning_rate: f64,
    /// α Adam weight decay.
    pub arch_weight_decay: f64,
    /// SDARTS ε_max (the RS ramp goes 0.03 → ε_max over the epochs).
    pub epsilon_alpha: f64,
}

impl Default for Hyper {
    fn default() -> Self {
        Hyper {
            learning_rate: 0.025,
            learning_rate_min: 0.001,
            momentum: 0.9,
            weight_decay: 3e-4,
            grad_clip: 5.0,
            arch_learning_rate: 3e-4,
            arch_weight_decay: 1e-3,
            epsilon_alpha: 0.3,
        }
    }
}

impl Hyper {
    /// Check every value: finite and in its range. Errors ([`Error::Config`]) name the CLI flag
    /// and the `config.toml` key, and give the range.
    pub fn validate(&self) -> crate::error::Result<()> {
        let checks: [(&str, &str, f64, bool, &str); 8] = [
            (
                "learning-rate",
                "learning_rate",
                self.learning_rate,
                self.learning_rate > 0.0,
                "> 0",
            ),
            (
                "learning-rate-min",
                "learning_rate_min",
                self.learning_rate_min,
                (0.0..=self.learning_rate).contains(&self.learning_rate_min),
                "in [0, --learning-rate]",
            ),
            (
                "momentum",
                "momentum",
                self.momentum,
                (0.0..1.0).contains(&self.momentum),
                "in [0, 1)",
            ),
            (
                "weight-decay",
                "weight_decay",
                self.weight_decay,
                self.weight_decay >= 0.0,
                ">= 0",
            ),
            (
                "grad-clip",
                "grad_clip",
                self.grad_clip,
                self.grad_clip > 0.0,
                "> 0",
            ),
            (
                "arch-learning-rate",
                "arch_learning_rate",
                self.arch_learning_rate,
                self.arch_learning_rate > 0.0,
                "> 0",
            ),
            (
                "arch-weight-decay",
                "arch_weight_decay",
                self.arch_weight_decay,
                self.arch_weight_decay >= 0.0,
                ">= 0",
            ),
            (
                "epsilon-alpha",
                "epsilon_alpha",
                self.epsilon_alpha,
                self.epsilon_alpha >= 0.0,
                ">= 0",
            ),
        ];
        for (flag, key, v, ok, range) in checks {
            if !(v.is_finite() && ok) {
                return Err(crate::error::Error::Config {
                    field: format!("--{flag} (hyper.{key})"),
                    message: format!("must be a finite number {range}, got {v}"),
                });
            }
        }
        Ok(())
    }
}

/// Mean cross-entropy `[1]` and the number of correct top-1 predictions.
pub fn loss_and_correct(logits: Tensor<2>, labels: Tensor<1, Int>) -> (Tensor<1>, Tensor<1, Int>) {
    let device = logits.device();
    let correct = logits
        .clone()
        .argmax(1)
        .reshape([labels.dims()[0]])
        .equal(labels.clone())
        .int()
        .sum();
    (
        CrossEntropyLossConfig::new()
            .init(&device)
            .forward(logits, labels),
        correct,
    )
}

/// The bilevel trainer state: supernet, α, both optimizers.
pub struct Trainer {
    /// The supernet (on an autodiff device).
    pub net: Supernet,
    /// α (on the same device).
    pub alphas: Alphas,
    /// Weight optimizer.
    pub sgd: Sgd,
    /// α optimizer.
    pub adam: Adam,
    /// Method.
    pub method: Method,
    /// Second-order α gradient (DARTS only).
    pub second_order: bool,
    /// Hyper-parameters.
    pub hyper: Hyper,
    /// Decided rows per cell type (empty decisions during search; PT's progressive tuning fills them).
    pub overrides: Vec<Overrides>,
}

/// What one bilevel step measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct StepStats {
    /// Weight-step loss.
    pub train_loss: f64,
    /// Weight-step correct predictions.
    pub train_correct: usize,
    /// α-step (validation-half) loss.
    pub valid_loss: f64,
    /// α-step correct predictions.
    pub valid_correct: usize,
}

/// What one bilevel step measured, still on the device: `[train loss, train correct, valid loss,
/// valid correct]`. Read several at once with [`PendingStats::read_all`], so that a loop waits
/// for the device once per group of steps instead of once per step.
#[derive(Clone, Debug)]
pub struct PendingStats(Tensor<1>);

impl PendingStats {
    /// The measurements of `pending`, in order, in one read (concatenated on the device).
    /// Errors: a failed device read.
    pub async fn read_all(pending: Vec<PendingStats>) -> crate::Result<Vec<StepStats>> {
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        let v = engine::read(Tensor::cat(pending.into_iter().map(|p| p.0).collect(), 0)).await?;
        Ok(v.chunks_exact(4)
            .map(|c| StepStats {
                train_loss: c[0],
                train_correct: c[1] as usize,
                valid_loss: c[2],
                valid_correct: c[3] as usize,
            })
            .collect())
    }
}

impl Trainer {
    /// A trainer with fresh optimizers.
    pub fn new(
        net: Supernet,
        alphas: Alphas,
        method: Method,
        second_order: bool,
        hyper: Hyper,
    ) -> Self {
        let overrides = alphas.no_overrides();
        let mut adam = Adam::darts();
        adam.lr = hyper.arch_learning_rate;
        adam.weight_decay = hyper.arch_weight_decay;
        Trainer {
            net,
            alphas,
            sgd: Sgd::new(hyper.momentum, hyper.weight_decay),
            adam,
            method,
            second_order,
            hyper,
            overrides,
        }
    }

    fn weights(&self, detach: bool) -> MixWeights {
        self.alphas
            .mix_weights(&self.overrides, &Mask::default(), detach)
    }

    /// One bilevel step (spec §2.3): α step on `valid`, then weight step on `train` at weight
    /// learning rate `lr`. `epsilon` is the SDARTS perturbation size for this epoch.
    ///
    /// The step's four measurements are read at its end ([`Trainer::step_pending`] leaves them
    /// on the device). Errors: a failed device read.
    pub async fn step(
        &mut self,
        train: &Batch,
        valid: &Batch,
        lr: f64,
        epsilon: f64,
        rng: &mut ChaCha8Rng,
    ) -> crate::Result<StepStats> {
        let p = self.step_pending(train, valid, lr, epsilon, rng).await?;
        Ok(PendingStats::read_all(vec![p]).await?[0])
    }

    /// [`Trainer::step`], its measurements left on the device.
    ///
    /// Host reads (issue 16's audit): first-order DARTS, `blank` and fixed-α steps read nothing
    /// back: the gradient clip's global norm is applied on the device
    /// ([`Sgd::step_on_device`]). What still reads, through [`engine::read`], and why:
    /// second-order DARTS reads ‖v‖ once per step (ε = 0.01/‖v‖ and its zero test); SDARTS-RS
    /// reads softmax(α) once per step (the perturbation is drawn on the host from the run's seeded
    /// generator, so that runs replay); SDARTS-ADV reads softmax(α) and, per PGD iteration, the
    /// perturbed α's gradient and the losses that decide whether the attack is kept.
    /// Errors: a failed device read.
    pub async fn step_pending(
        &mut self,
        train: &Batch,
        valid: &Batch,
        lr: f64,
        epsilon: f64,
        rng: &mut ChaCha8Rng,
    ) -> crate::Result<PendingStats> {
        // (1) α step; its loss and correct count stay on the device until the end.
        let (valid_loss, valid_correct) = if self.method == Method::Blank {
            // The reference does no α-half forward for `blank`; this one only measures, so it
            // must not move the BN running statistics.
            let logits = self.net.forward(
                valid.images.clone(),
                &self.weights(true),
                BnMode::BatchStats,
            );
            let (loss, correct) = loss_and_correct(logits, valid.labels.clone());
            (loss.inner(), correct.inner().float())
        } else {
            let (grads, loss, correct) = if self.second_order && self.method == Method::Darts {
                self.second_order_grads(train, valid, lr).await?
            } else {
                let (g, loss, correct) = self.first_order_alpha_grads(valid);
                (g, loss.inner(), correct.inner().float())
            };
            self.apply_alpha_grads(grads);
            (loss, correct)
        };
        // (2) perturbation (SDARTS), (3) weight step at the (perturbed) weights. The saved α is
        // untouched: the perturbation lives only in the mixing weights of this step (4).
        let w = match self.method {
            Method::SdartsRs => self.random_perturbation(epsilon, rng).await?,
            Method::SdartsAdv => self.pgd_perturbation(train, epsilon, rng).await?,
            _ => self.weights(true),
        };
        let logits = self.net.forward(train.images.clone(), &w, BnMode::Train);
        let (loss, correct) = loss_and_correct(logits, train.labels.clone());
        let grads = loss.backward();
        // The clip's global norm stays on the device (no wait for the GPU mid-step).
        self.net =
            self.sgd
                .step_on_device(self.net.clone(), &grads, lr, Some(self.hyper.grad_clip));
        Ok(PendingStats(Tensor::cat(
            vec![
                loss.inner(),
                correct.inner().float(),
                valid_loss,
                valid_correct,
            ],
            0,
        )))
    }

    /// [`Trainer::step`] driven to completion on this thread (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn step_blocking(
        &mut self,
        train: &Batch,
        valid: &Batch,
        lr: f64,
        epsilon: f64,
        rng: &mut ChaCha8Rng,
    ) -> crate::Result<StepStats> {
        crate::engine::block_on(self.step(train, valid, lr, epsilon, rng))
    }

    /// First-order α gradients (spec §2.3): ∂L_val/∂α per cell type (`[edges, ops]` each) at the
    /// current weights, BN in training mode; with the α-step loss `[1]` and correct count `[1]`.
    ///
    /// The network weights are not tracked in this pass, so the backward pass computes no weight
    /// gradient (the reference computes them and zeroes them unused: no number changes). BN
    /// running statistics are shared with `self.net` and updated as in the reference.
    ///
    /// A cell type whose every edge PT has fixed has a zero gradient, not none: the reference
    /// overwrites the fixed rows of softmax(α) in place, so its α stays in the graph with a zero
    /// gradient and Adam still steps it (weight decay, moments). Here the fixed rows are
    /// constants, so such an α is not in the graph and gets zeros explicitly. When no α is in
    /// the graph at all (NB201 tuning after its last decision) there is nothing to
    /// differentiate: the pass only measures (and updates the BN running statistics, as the
    /// reference's does), and every α gets zeros.
    fn first_order_alpha_grads(
        &self,
        valid: &Batch,
    ) -> (Vec<Tensor<2>>, Tensor<1>, Tensor<1, Int>) {
        let logits = self.net.clone().no_grad().forward(
            valid.images.clone(),
            &self.weights(false),
            BnMode::Train,
        );
        let (loss, correct) = loss_and_correct(logits, valid.labels.clone());
        let zeros = |c: CellType| self.alpha_param(c).val().inner().zeros_like();
        // Whether any α is in the graph: `is_tracked` (graph participation). Not
        // `is_require_grad`, which Burn's autodiff reports for leaves only: that check froze α
        // in every search (stop 30; `alpha_is_trained_in_a_first_order_search` pins it).
        if !loss.is_tracked() {
            let g = self.alphas.cell_types().into_iter().map(zeros).collect();
            return (g, loss, correct);
        }
        let grads = loss.backward();
        let g = self
            .alphas
            .cell_types()
            .into_iter()
            .map(|c| {
                self.alpha_param(c)
                    .val()
                    .grad(&grads)
                    .unwrap_or_else(|| zeros(c))
            })
            .collect();
        (g, loss, correct)
    }

    fn alpha_param(&self, cell: CellType) -> &Param<Tensor<2>> {
        match cell {
            CellType::Normal => &self.alphas.normal,
            CellType::Reduce => self.alphas.reduce.as_ref().expect("reduce α"),
        }
    }

    fn apply_alpha_grads(&mut self, grads: Vec<Tensor<2>>) {
        for (cell, g) in self.alphas.cell_types().into_iter().zip(grads) {
            match cell {
                CellType::Normal => {
                    let p = self.alphas.normal.clone();
                    self.alphas.normal = self.adam.update("normal", p, g);
                }
                CellType::Reduce => {
                    let p = self.alphas.reduce.clone().expect("reduce α");
                    self.alphas.reduce = Some(self.adam.update("reduce", p, g));
                }
            }
        }
    }

    /// Softmax(α) as host matrices `[cells][edges][ops]`.
    async fn host_probs(&self) -> crate::Result<Vec<Vec<Vec<f32>>>> {
        crate::run::probs_rows(&self.alphas).await
    }

    fn weights_from_probs(&self, probs: &[Vec<Vec<f32>>], device: &Device) -> MixWeights {
        let cells = self.alphas.cell_types();
        let build = |i: usize| {
            let rows = &probs[i];
            let (e, k) = (rows.len(), rows[0].len());
            let t = Tensor::<2>::from_data(TensorData::new(rows.concat(), [e, k]), device);
            CellWeights::build(
                t,
                &self.overrides[cells[i].index()],
                &Mask::default(),
                cells[i],
            )
        };
        MixWeights {
            normal: build(0),
            reduce: (cells.len() > 1).then(|| build(1)),
        }
    }

    /// SDARTS-RS (spec §2.5): softmax(α) + U(−ε, ε), clamp to [0, 1], empty rows get their former
    /// argmax, rows renormalised.
    async fn random_perturbation(
        &self,
        epsilon: f64,
        rng: &mut ChaCha8Rng,
    ) -> crate::Result<MixWeights> {
        let mut probs = self.host_probs().await?;
        for cell in &mut probs {
            for row in cell.iter_mut() {
                for v in row.iter_mut() {
                    *v += rng.random_range(-epsilon..epsilon) as f32;
                }
                simplex_clip(row);
            }
        }
        let device = self.alphas.normal.val().device();
        Ok(self.weights_from_probs(&probs, &device))
    }

    /// SDARTS-ADV (spec §2.5): 7-step L∞ PGD ascent of the training loss on softmax(α), BN in
    /// evaluation mode, random start, projection to the ε-ball and the simplex after every step;
    /// reverted when it did not raise the loss.
    async fn pgd_perturbation(
        &self,
        train: &Batch,
        epsilon: f64,
        rng: &mut ChaCha8Rng,
    ) -> crate::Result<MixWeights> {
        let device = self.alphas.normal.val().device();
        let saved = self.host_probs().await?;
        let loss_at = |probs: &[Vec<Vec<f32>>]| -> Tensor<1> {
            let w = self.weights_from_probs(probs, &device.clone().without_autodiff());
            let logits = self
                .net
                .valid()
                .forward(train.images.clone().inner(), &w, BnMode::Eval);
            loss_and_correct(logits, train.labels.clone().inner()).0
        };
        let before = engine::read(loss_at(&saved)).await?[0];
        let mut probs = saved.clone();
        for cell in &mut probs {
            for row in cell.iter_mut() {
                for v in row.iter_mut() {
                    *v += rng.random_range(-epsilon..epsilon) as f32;
                }
                simplex_clip(row);
            }
        }
        let steps = 7;
        let step_size = 2.0 * epsilon / steps as f64;
        let cells = self.alphas.cell_types();
        for _ in 0..steps {
            let leaves: Vec<Tensor<2>> = probs
                .iter()
                .map(|rows| {
                    let (e, k) = (rows.len(), rows[0].len());
                    Tensor::<2>::from_data(TensorData::new(rows.concat(), [e, k]), &device)
                        .require_grad()
                })
                .collect();
            let w = MixWeights {
                normal: CellWeights::build(
                    leaves[0].clone(),
                    &self.overrides[0],
                    &Mask::default(),
                    cells[0],
                ),
                reduce: (cells.len() > 1).then(|| {
                    CellWeights::build(
                        leaves[1].clone(),
                        &self.overrides[1],
                        &Mask::default(),
                        cells[1],
                    )
                }),
            };
            let logits = self.net.forward(train.images.clone(), &w, BnMode::Eval);
            let (loss, _) = loss_and_correct(logits, train.labels.clone());
            let grads = loss.backward();
            for (i, leaf) in leaves.iter().enumerate() {
                let g = engine::read_rows(
                    leaf.grad(&grads)
                        .unwrap_or_else(|| leaf.clone().inner().zeros_like()),
                )
                .await?;
                for (e, row) in probs[i].iter_mut().enumerate() {
                    for (k, v) in row.iter_mut().enumerate() {
                        let sign = g[e][k].signum() * (g[e][k] != 0.0) as i32 as f32;
                        let moved = *v + step_size as f32 * sign;
                        let base = saved[i][e][k];
                        *v = base + (moved - base).clamp(-epsilon as f32, epsilon as f32);
                    }
                    simplex_clip(row);
                }
            }
        }
        if before > engine::read(loss_at(&probs)).await?[0] {
            probs = saved;
        }
        Ok(self.weights_from_probs(&probs, &device))
    }

    /// Second-order α gradient (spec §2.4): virtual step w′ = w − ξ(μ·m + ∇w L_train + λw),
    /// g_α = ∂L_val(w′, α)/∂α, v = ∂L_val/∂w′, and the finite-difference Hessian-vector product at
    /// the current w with ε = 0.01/‖v‖: (∇α L_train(w + εv) − ∇α L_train(w − εv)) / 2ε. Returns
    /// g_α − ξ·hvp per cell type, the validation loss and correct count at w′.
    async fn second_order_grads(
        &self,
        train: &Batch,
        valid: &Batch,
        xi: f64,
    ) -> crate::Result<(Vec<Tensor<2>>, Tensor<1>, Tensor<1>)> {
        let cells = self.alphas.cell_types();
        let alpha_grads = |grads: &Gradients| -> Vec<Tensor<2>> {
            cells
                .iter()
                .map(|&c| {
                    let p = self.alpha_param(c).val();
                    p.grad(grads).unwrap_or_else(|| p.inner().zeros_like())
                })
                .collect()
        };
        let train_loss = |net: &Supernet, track_alpha: bool| {
            let logits = net.forward(
                train.images.clone(),
                &self.weights(!track_alpha),
                BnMode::BatchStats,
            );
            loss_and_correct(logits, train.labels.clone()).0
        };
        let val_loss = |net: &Supernet| {
            let logits = net.forward(
                valid.images.clone(),
                &self.weights(false),
                BnMode::BatchStats,
            );
            loss_and_correct(logits, valid.labels.clone())
        };
        let (g, loss, correct) = unrolled_arch_grads(
            &self.net,
            &self.sgd,
            xi,
            &train_loss,
            &|net: &Supernet| {
                let (l, c) = val_loss(net);
                (l, Some(c))
            },
            &alpha_grads,
        )
        .await?;
        let correct = correct.unwrap_or_else(|| loss.zeros_like());
        Ok((g, loss, correct))
    }
}

/// SDARTS' `clip`: clamp to [0, 1]; a row that became all zero gets 1 at its (pre-clamp) argmax;
/// then divide by the row sum.
pub fn simplex_clip(row: &mut [f32]) {
    let argmax = row
        .iter()
        .enumerate()
        .fold(0, |b, (i, v)| if *v > row[b] { i } else { b });
    for v in row.iter_mut() {
        *v = v.clamp(0.0, 1.0);
    }
    let sum: f32 = row.iter().sum();
    if sum == 0.0 {
        row[argmax] = 1.0;
    }
    let sum: f32 = row.iter().sum();
    for v in row.iter_mut() {
        *v /= sum;
    }
}

/// Per-parameter gradients of `module` (plain tensors, flattened), by module path.
pub fn param_grads<M: Module>(module: &M, grads: &Gradients) -> BTreeMap<String, Tensor<1>> {
    struct G<'a> {
        path: Vec<String>,
        grads: &'a Gradients,
        out: BTreeMap<String, Tensor<1>>,
    }
    impl ModuleVisitor for G<'_> {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if matches!(
                self.path.last().map(String::as_str),
                Some("running_mean" | "running_var")
            ) {
                return;
            }
            if let Some(g) = param.val().grad(self.grads) {
                let n = g.dims().iter().product::<usize>();
                self.out.insert(self.path.join("."), g.reshape([n]));
            }
        }
    }
    let mut v = G {
        path: Vec::new(),
        grads,
        out: BTreeMap::new(),
    };
    module.visit(&mut v);
    v.out
}

/// Maps every learnable weight w (with an entry in `dir`) to a fresh leaf `w·(1 − decay) + scale·dir`.
struct Shift<'a> {
    path: Vec<String>,
    dir: &'a BTreeMap<String, Tensor<1>>,
    scale: f64,
    decay: f64,
}

impl ModuleMapper for Shift<'_> {
    fn enter_module(&mut self, name: &str, _: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _: &str, _: &str) {
        self.path.pop();
    }
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(d) = self.dir.get(&self.path.join(".")) else {
            return param;
        };
        let (scale, decay) = (self.scale, self.decay);
        let d = d.clone();
        param.map(|w| {
            let dims = w.dims();
            let w_in = w.inner();
            let base = if decay != 0.0 {
                w_in.clone().mul_scalar(1.0 - decay)
            } else {
                w_in
            };
            Tensor::from_inner(base.add(d.reshape(dims).mul_scalar(scale))).set_require_grad(true)
        })
    }
}

/// The second-order DARTS α gradient for any module `net` (spec §2.4), written against closures
/// so it can be checked on a problem with a closed-form answer.
///
/// * `train_loss(net, track_alpha)`: L_train at `net`'s weights; α tracked when asked.
/// * `val_loss(net)`: L_val with α tracked, plus an optional correct count to report.
/// * `alpha_grads(grads)`: α gradients out of a backward pass.
///
/// `sgd` supplies μ, λ and the momentum buffers m; `xi` is the current weight learning rate.
/// Returns the α gradients with L_val at w′ (`[1]`) and its correct count (`[1]` float, when
/// `val_loss` gives one), left on the device. ‖v‖ is read back (one read of every parameter's
/// squared sum, summed on the host in f64). Errors: a failed device read.
#[allow(clippy::type_complexity)]
pub async fn unrolled_arch_grads<M: Module>(
    net: &M,
    sgd: &Sgd,
    xi: f64,
    train_loss: &dyn Fn(&M, bool) -> Tensor<1>,
    val_loss: &dyn Fn(&M) -> (Tensor<1>, Option<Tensor<1, Int>>),
    alpha_grads: &dyn Fn(&Gradients) -> Vec<Tensor<2>>,
) -> crate::Result<(Vec<Tensor<2>>, Tensor<1>, Option<Tensor<1>>)> {
    // Virtual step: w' = w − ξ(μ·m + g + λ·w) = w(1 − ξλ) − ξ(μ·m + g).
    let g_train = param_grads(net, &train_loss(net, false).backward());
    let dir: BTreeMap<String, Tensor<1>> = g_train
        .into_iter()
        .map(|(k, g)| {
            let d = match sgd.buffers.get(&k) {
                Some(m) => m.clone().mul_scalar(sgd.momentum).add(g),
                None => g,
            };
            (k, d)
        })
        .collect();
    let unrolled = net.clone().map(&mut Shift {
        path: Vec::new(),
        dir: &dir,
        scale: -xi,
        decay: xi * sgd.weight_decay,
    });
    // g_α and v at w'.
    let (loss, correct) = val_loss(&unrolled);
    let grads = loss.backward();
    let stats = (loss.inner(), correct.map(|c| c.inner().float()));
    let g_alpha = alpha_grads(&grads);
    let v = param_grads(&unrolled, &grads);
    let squares: Vec<Tensor<1>> = v.values().map(|t| t.clone().powi_scalar(2).sum()).collect();
    let norm: f64 = if squares.is_empty() {
        0.0
    } else {
        engine::read(Tensor::cat(squares, 0))
            .await?
            .iter()
            .sum::<f64>()
            .sqrt()
    };
    if norm == 0.0 {
        return Ok((g_alpha, stats.0, stats.1));
    }
    let eps = 0.01 / norm;
    // Hessian-vector product at the current w.
    let plus = net.clone().map(&mut Shift {
        path: Vec::new(),
        dir: &v,
        scale: eps,
        decay: 0.0,
    });
    let g_plus = alpha_grads(&train_loss(&plus, true).backward());
    let minus = net.clone().map(&mut Shift {
        path: Vec::new(),
        dir: &v,
        scale: -eps,
        decay: 0.0,
    });
    let g_minus = alpha_grads(&train_loss(&minus, true).backward());
    let g = g_alpha
        .into_iter()
        .zip(g_plus.into_iter().zip(g_minus))
        .map(|(ga, (gp, gm))| ga.sub(gp.sub(gm).mul_scalar(xi / (2.0 * eps))))
        .collect();
    Ok((g, stats.0, stats.1))
}

/// Seeded RNG of an epoch: every random choice of epoch `epoch` of a run with `seed` derives from
/// it, so a run resumed at an epoch boundary repeats the uninterrupted run exactly.
pub fn epoch_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(epoch as u64 + 1);
    r
}
