//! Architecture selection on a trained supernet: magnitude (argmax α, spec §3.6) and
//! perturbation-based selection with progressive tuning (PT, spec §3.1–§3.5).
//!
//! PT state lives in `RUN_DIR/pt/`:
//!
//! ```text
//! pt/settings.toml      the selection settings
//! pt/pt_scores.json     every decision: cell, edge or node, each candidate's accuracy and loss
//!                       after removal, the choice, seconds
//! pt/metrics.jsonl      one line per tuning epoch
//! pt/checkpoints/       LATEST and slot-NNNN-{decided,tuned}/ (supernet, α, optimizers, PT state)
//! ```
//!
//! A killed selection resumes from its newest checkpoint: decisions already taken are kept, the
//! interrupted decision or tuning epoch is redone. Every random choice derives from (run seed,
//! slot), so on `flex` with `--eval deterministic` a resumed selection ends with the same genotype
//! as an uninterrupted one.

#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;
use std::path::PathBuf;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::data::{Augment, Dataset};
use crate::engine::Control;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::genotype::{derive_darts_with, derive_nb201};
use crate::ops::BnMode;
use crate::run::{self, Loaded, train_epoch};
use crate::rundir::{self, RunDir, RunStore};
use crate::search::{Method, Trainer, epoch_rng, loss_and_correct};
use crate::space::{CellType, Family, OpKind, SearchSpace, darts_topology_nodes};
use crate::supernet::{Alphas, Supernet};
use crate::weights::{Mask, Overrides};

cli_enum! {
    /// What PT optimises when it scores a removal (spec §3.2).
    Criterion {
        /// Keep the op whose removal leaves the lowest validation accuracy (the reference's default).
        #[default]
        Acc = "acc",
        /// Keep the op whose removal leaves the highest validation loss.
        Loss = "loss",
    }
}

cli_enum! {
    /// Order in which PT visits undecided edges and nodes.
    EdgeOrder {
        /// Uniformly random among the undecided ones, from the run seed (the reference).
        #[default]
        Random = "random",
        /// Lowest index first.
        Fixed = "fixed",
    }
}

cli_enum! {
    /// How PT evaluates the supernet (spec §3.2, §6.1 items 5–6).
    EvalMode {
        /// The reference: augmented validation images in random order, BatchNorm with batch
        /// statistics. Two evaluations of the same network differ.
        #[default]
        Reference = "reference",
        /// No augmentation, fixed order, BatchNorm with batch statistics: decisions are
        /// reproducible (a documented deviation).
        Deterministic = "deterministic",
    }
}

cli_enum! {
    /// How a DARTS-like genotype shows an edge on which PT kept `none` (spec §3.6, §6.1 item 8).
    NoneRule {
        /// The reference: `none` is skipped when the genotype is read, so the edge shows its
        /// first other op (or a removed edge takes its place).
        #[default]
        Reference = "reference",
        /// The edge shows as `('none', j)`.
        Keep = "keep",
    }
}

cli_enum! {
    /// PT's topology loop (spec §3.3).
    TopologyMode {
        /// The reference: each round scores the remaining edges against the network in which
        /// the edges eliminated in earlier rounds of the same node are still present.
        #[default]
        Reference = "reference",
        /// Edges eliminated in earlier rounds stay zeroed while later rounds are scored.
        Corrected = "corrected",
    }
}

/// Settings of a PT selection (`pt/settings.toml`). Defaults are the reference's (spec §3.4, §3.5).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PtSettings {
    /// Scoring criterion of the op decisions on normal cells (NB201: every cell) (the
    /// reference's `--proj_crit_normal`).
    pub crit_normal: Criterion,
    /// Scoring criterion of the op decisions on reduction cells (`--proj_crit_reduce`).
    pub crit_reduce: Criterion,
    /// Scoring criterion of the topology decisions (`--proj_crit_edge`).
    pub crit_edge: Criterion,
    /// Edge / node visiting order.
    pub edge_order: EdgeOrder,
    /// Evaluation mode.
    pub eval: EvalMode,
    /// Score on the first N validation images only (default: the whole validation half).
    pub eval_limit: Option<usize>,
    /// Tuning epochs between decisions (the reference's `proj_intv`, 5). 0 = no tuning.
    pub proj_intv: usize,
    /// Constant weight learning rate of the tuning epochs (the search's `learning_rate`/10).
    pub tune_lr: f64,
    /// Topology loop variant.
    pub topology: TopologyMode,
    /// How the genotype shows a `none` decision (DARTS-like spaces).
    #[serde(default)]
    pub none_genotype: NoneRule,
}

impl Default for PtSettings {
    fn default() -> Self {
        PtSettings {
            crit_normal: Criterion::Acc,
            crit_reduce: Criterion::Acc,
            crit_edge: Criterion::Acc,
            edge_order: EdgeOrder::Random,
            eval: EvalMode::Reference,
            eval_limit: None,
            proj_intv: 5,
            tune_lr: 0.0025,
            topology: TopologyMode::Reference,
            none_genotype: NoneRule::Reference,
        }
    }
}

impl PtSettings {
    /// Set the criterion of every decision (the CLI's `--crit`).
    pub fn set_crit(&mut self, crit: Criterion) {
        self.crit_normal = crit;
        self.crit_reduce = crit;
        self.crit_edge = crit;
    }

    /// The criterion of op decisions on `cell`.
    pub fn op_crit(&self, cell: CellType) -> Criterion {
        match cell {
            CellType::Normal => self.crit_normal,
            CellType::Reduce => self.crit_reduce,
        }
    }

    /// Files written before the three criteria existed have one `crit` key: it sets the three
    /// that are not there (for `pt/settings.toml` and `--config` files).
    pub fn expand_crit(table: &mut toml::Table) {
        if let Some(c) = table.remove("crit") {
            for k in ["crit_normal", "crit_reduce", "crit_edge"] {
                table.entry(k).or_insert_with(|| c.clone());
            }
        }
    }

    /// Check the settings; errors name the setting.
    pub fn validate(&self) -> Result<()> {
        if let Some(0) = self.eval_limit {
            return Err(Error::Config {
                field: "eval_limit".into(),
                message: "must be at least 1".into(),
            });
        }
        if !(self.tune_lr.is_finite() && self.tune_lr >= 0.0) {
            return Err(Error::Config {
                field: "tune_lr".into(),
                message: format!("must be a non-negative number, found {}", self.tune_lr),
            });
        }
        Ok(())
    }
}

/// Validation accuracy (percent) and mean cross-entropy of one evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Top-1 accuracy, percent.
    pub accuracy: f64,
    /// Mean cross-entropy over the images.
    pub loss: f64,
}

/// Something PT can evaluate: the supernet under effective weights (`overrides`) and a `mask`.
/// `salt` distinguishes evaluations (it seeds augmentation and order in reference mode).
/// Asynchronous, so that the page can read the result back without blocking; natively
/// [`crate::engine::block_on`] drives it.
#[allow(async_fn_in_trait)] // driven on the caller's thread; no `Send` bound needed
pub trait Evaluate {
    /// Score the supernet.
    async fn evaluate(&mut self, overrides: &[Overrides], mask: &Mask, salt: u64) -> Result<Score>;
}

/// Evaluates a supernet on validation images without any autodiff graph; BatchNorm uses batch
/// statistics and its running estimates are left untouched.
pub struct Scorer<'a> {
    net: Supernet,
    alphas: Alphas,
    ds: &'a Dataset,
    indices: Vec<usize>,
    mode: EvalMode,
    batch_size: usize,
    aug: Augment,
    device: Device,
    seed: u64,
    threads: usize,
    /// Number of evaluations done so far.
    pub evaluations: usize,
}

impl<'a> Scorer<'a> {
    /// A scorer for `net` and `alphas` (any device; the autodiff wrapper is dropped) over the
    /// images `indices` of `ds.train`, in batches of `batch_size`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        net: &Supernet,
        alphas: &Alphas,
        ds: &'a Dataset,
        indices: Vec<usize>,
        mode: EvalMode,
        batch_size: usize,
        aug: Augment,
        seed: u64,
    ) -> Self {
        let net = net.valid();
        let alphas = alphas.valid();
        let device = alphas.normal.val().device();
        Scorer {
            net,
            alphas,
            ds,
            indices,
            mode,
            batch_size: batch_size.max(1),
            aug,
            device,
            seed,
            threads: crate::engine::eval_threads(),
            evaluations: 0,
        }
    }

    /// Score with at most `threads` batches at once (default: [`crate::engine::eval_threads`]).
    /// The result does not depend on it.
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }
}

impl Evaluate for Scorer<'_> {
    /// With more than one thread (natively), batches are processed by that many threads at once;
    /// with one (the page), one after the other with every batch's sums left on the device and
    /// read back once. Either way each batch's loss and correct count are kept apart and added in
    /// batch order on the host in f64, so the score does not depend on the thread count.
    /// In reference mode each batch's augmentation draws from its own stream of (seed, salt), and
    /// the image order is a shuffle drawn from the same seed.
    async fn evaluate(&mut self, overrides: &[Overrides], mask: &Mask, salt: u64) -> Result<Score> {
        self.evaluations += 1;
        let w = self.alphas.mix_weights(overrides, mask, true);
        let (order, aug) = self.order(salt);
        let chunks: Vec<&[usize]> = order.chunks(self.batch_size).collect();
        let threads = self.threads.min(chunks.len()).max(1);
        let (net, ds, device) = (&self.net, self.ds, &self.device);
        let stream = |batch: u64| self.stream(salt, batch);
        // Loss (mean over the batch) and correct count of batch `i`, on the device.
        let batch_sums = |i: usize| -> (Tensor<1>, Tensor<1>) {
            let mut rng = stream(i as u64);
            let b = ds.batch(&ds.train, chunks[i], aug, &mut rng, device);
            let logits = net.forward(b.images, &w, BnMode::BatchStats);
            let (loss, c) = loss_and_correct(logits, b.labels);
            (loss, c.float())
        };
        let mut per_batch: Vec<(f64, f64)> = vec![(0.0, 0.0); chunks.len()];
        if threads <= 1 {
            let sums: Vec<Tensor<1>> = (0..chunks.len())
                .map(|i| {
                    let (l, c) = batch_sums(i);
                    Tensor::cat(vec![l, c], 0)
                })
                .collect();
            let v = crate::engine::read_many(sums).await?;
            for (slot, x) in per_batch.iter_mut().zip(v) {
                *slot = (x[0], x[1]);
            }
        } else {
            let run_batch = |i: usize| -> (f64, f64) {
                let (l, c) = batch_sums(i);
                (l.into_scalar::<f64>(), c.into_scalar::<f64>())
            };
            let run_batch = &run_batch;
            let n_chunks = chunks.len();
            let parts: Vec<Vec<(usize, (f64, f64))>> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..threads)
                    .map(|t| {
                        scope.spawn(move || {
                            (t..n_chunks)
                                .step_by(threads)
                                .map(|i| (i, run_batch(i)))
                                .collect::<Vec<_>>()
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().expect("evaluation thread panicked"))
                    .collect()
            });
            for (i, v) in parts.into_iter().flatten() {
                per_batch[i] = v;
            }
        }
        let loss = per_batch
            .iter()
            .zip(&chunks)
            .map(|(p, c)| p.0 * c.len() as f64)
            .sum::<f64>();
        let correct = per_batch.iter().map(|p| p.1.round() as usize).sum();
        self.score(loss, correct, salt)
    }
}

impl Scorer<'_> {
    /// The random stream of batch `batch` of evaluation `salt` (reference mode).
    fn stream(&self, salt: u64, batch: u64) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ 0x5054_5f73_636f_7265);
        rng.set_stream(salt);
        rng.set_word_pos(batch as u128 * (1 << 40));
        rng
    }

    /// Image order and augmentation of evaluation `salt`.
    fn order(&self, salt: u64) -> (Vec<usize>, Augment) {
        let mut order = self.indices.clone();
        match self.mode {
            EvalMode::Reference => {
                order.shuffle(&mut self.stream(salt, u32::MAX as u64));
                (order, self.aug)
            }
            EvalMode::Deterministic => (order, Augment::NONE),
        }
    }

    /// The score of an evaluation from its summed loss and correct count.
    pub fn score(&self, loss_sum: f64, correct: usize, salt: u64) -> Result<Score> {
        let count = self.indices.len().max(1);
        let loss = loss_sum / count as f64;
        if !loss.is_finite() {
            return Err(Error::NonFinite {
                epoch: 0,
                step: 0,
                message: format!("PT evaluation {salt} gave loss {loss}"),
            });
        }
        Ok(Score {
            accuracy: 100.0 * correct as f64 / count as f64,
            loss,
        })
    }
}

/// One scored candidate of a decision.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    /// Topology round (0 for op decisions).
    pub round: usize,
    /// Edge (α row).
    pub edge: usize,
    /// The removed op (op decisions), `None` when the whole edge was removed.
    pub op: Option<OpKind>,
    /// Accuracy after the removal (percent).
    pub accuracy: f64,
    /// Mean loss after the removal.
    pub loss: f64,
}

/// What a PT decision chose.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Choice {
    /// Op selection on one edge (spec §3.2): the op kept on `edge`.
    Op {
        /// The edge (α row).
        edge: usize,
        /// The kept op.
        chosen_op: OpKind,
    },
    /// Topology selection on one node (spec §3.3): the two input edges kept.
    Topology {
        /// The intermediate node (DARTS node 1..3).
        node: usize,
        /// The two kept input edges (α rows).
        kept_edges: Vec<usize>,
    },
}

/// One PT decision as written to `pt_scores.json`: what every decision has, and what it chose
/// ([`Choice`], flattened: `"kind": "op"` with `edge` and `chosen_op`, or `"kind": "topology"`
/// with `node` and `kept_edges`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// 0-based decision number.
    pub index: usize,
    /// Tuning epoch before which it was taken.
    pub epoch: usize,
    /// The cell type decided on.
    pub cell: CellType,
    /// The choice.
    #[serde(flatten)]
    pub choice: Choice,
    /// Every candidate with its score after removal.
    pub candidates: Vec<Candidate>,
    /// Wall time of the decision (seconds).
    pub seconds: f64,
}

impl Decision {
    /// One line for logs and views, edges named as the field writes them
    /// ([`SearchSpace::edge_label`]): `edge c_{k-2} -> 0: sep_conv_3x3`,
    /// `node 2 keeps c_{k-1} -> 2, 0 -> 2`.
    pub fn summary(&self, space: &SearchSpace) -> String {
        match &self.choice {
            Choice::Op { edge, chosen_op } => {
                format!("edge {}: {chosen_op}", space.edge_label(self.cell, *edge))
            }
            Choice::Topology { node, kept_edges } => {
                let kept: Vec<String> = kept_edges
                    .iter()
                    .map(|&e| space.edge_label(self.cell, e))
                    .collect();
                format!("node {node} keeps {}", kept.join(", "))
            }
        }
    }
}

/// Score every op of `edge` in `cell` and pick the op whose removal hurts most (spec §3.2):
/// with [`Criterion::Acc`] the minimum accuracy, with [`Criterion::Loss`] the maximum loss,
/// ties to the lower op index. Returns (op index, candidates).
pub async fn op_decision<E: Evaluate>(
    ev: &mut E,
    space: &SearchSpace,
    overrides: &[Overrides],
    cell: CellType,
    edge: usize,
    crit: Criterion,
    salt: u64,
) -> Result<(usize, Vec<Candidate>)> {
    let ops = &space.edges(cell)[edge].ops;
    let mut best: Option<(usize, Score)> = None;
    let mut candidates = Vec::with_capacity(ops.len());
    for (k, op) in ops.iter().enumerate() {
        let s = ev
            .evaluate(
                overrides,
                &Mask::op(cell, edge, k),
                salt.wrapping_mul(64).wrapping_add(k as u64),
            )
            .await?;
        candidates.push(Candidate {
            round: 0,
            edge,
            op: Some(*op),
            accuracy: s.accuracy,
            loss: s.loss,
        });
        let better = match (&best, crit) {
            (None, _) => true,
            (Some((_, b)), Criterion::Acc) => s.accuracy < b.accuracy,
            (Some((_, b)), Criterion::Loss) => s.loss > b.loss,
        };
        if better {
            best = Some((k, s));
        }
    }
    Ok((best.expect("an edge has at least one op").0, candidates))
}

/// Apply an op decision (spec §3.2): edge `edge` of `cell` becomes the one-hot row of op `k` in
/// `overrides` (a raw copy, α untouched), and the [`Decision`] number `index`, taken before
/// tuning slot `slot` in `seconds`, is returned for `pt_scores.json`.
pub fn fix_op(
    space: &SearchSpace,
    overrides: &mut [Overrides],
    (cell, edge, k): (CellType, usize, usize),
    (index, slot): (usize, usize),
    candidates: Vec<Candidate>,
    seconds: f64,
) -> Decision {
    let ops = &space.edges(cell)[edge].ops;
    let mut row = vec![0.0; ops.len()];
    row[k] = 1.0;
    overrides[cell.index()].rows[edge] = Some(row);
    Decision {
        index,
        epoch: slot,
        cell,
        choice: Choice::Op {
            edge,
            chosen_op: ops[k],
        },
        candidates,
        seconds,
    }
}

/// Topology selection on one node (spec §3.3): while more than two input edges remain, zero each
/// remaining edge in turn and drop the one whose removal hurts least (highest accuracy, or lowest
/// loss; ties drop the later edge). Returns (kept edges, candidates of every round).
pub async fn topology_decision<E: Evaluate>(
    ev: &mut E,
    overrides: &[Overrides],
    cell: CellType,
    edges: &[usize],
    crit: Criterion,
    mode: TopologyMode,
    salt: u64,
) -> Result<(Vec<usize>, Vec<Candidate>)> {
    let mut remaining = edges.to_vec();
    let mut removed: Vec<usize> = Vec::new();
    let mut candidates = Vec::new();
    let mut round = 0;
    while remaining.len() > 2 {
        let mut worst: Option<(usize, Score)> = None;
        for (i, &e) in remaining.iter().enumerate() {
            let mut mask = Mask::edge(cell, e);
            if mode == TopologyMode::Corrected {
                mask.edges.extend(removed.iter().map(|&r| (cell, r)));
            }
            let s = ev
                .evaluate(
                    overrides,
                    &mask,
                    salt.wrapping_mul(64).wrapping_add((round * 8 + i) as u64),
                )
                .await?;
            candidates.push(Candidate {
                round,
                edge: e,
                op: None,
                accuracy: s.accuracy,
                loss: s.loss,
            });
            let least_important = match (&worst, crit) {
                (None, _) => true,
                (Some((_, w)), Criterion::Acc) => s.accuracy >= w.accuracy,
                (Some((_, w)), Criterion::Loss) => s.loss <= w.loss,
            };
            if least_important {
                worst = Some((i, s));
            }
        }
        let (i, _) = worst.expect("more than two edges remain");
        removed.push(remaining.remove(i));
        round += 1;
    }
    Ok((remaining, candidates))
}

/// The PT schedule (spec §3.4, §3.5): for each slot, whether decisions are taken before it and
/// whether it tunes one epoch.
///
/// With interval I > 0 and R rounds: DARTS-like spaces tune I·(R−1)+1 epochs with decisions before
/// epochs 0, I, …, I·(R−1) (17 decisions over 81 epochs for I = 5); NAS-Bench-201 tunes I·(R−1)
/// epochs with decisions before 0, I, …, I·(R−2) and the last epoch (0, 5, 10, 15, 20, 24 over 25).
/// I = 0 takes all decisions back to back without tuning.
pub fn schedule(family: Family, rounds: usize, interval: usize) -> Vec<(bool, bool)> {
    if interval == 0 {
        return vec![(true, false); rounds];
    }
    let epochs = match family {
        Family::Darts => interval * (rounds - 1) + 1,
        // With I = 1 the reference's 5 epochs would leave one edge undecided: at least R slots.
        Family::Nb201 => (interval * (rounds - 1)).max(rounds),
    };
    let mut slots: Vec<(bool, bool)> = (0..epochs)
        .map(|t| (t % interval == 0 || t == epochs - 1, true))
        .collect();
    // NB201 with I = 1 or R = 1: make the count of decision slots equal the rounds.
    let mut decided = slots.iter().filter(|s| s.0).count();
    for s in slots.iter_mut().rev() {
        if decided <= rounds {
            break;
        }
        if s.0 {
            s.0 = false;
            decided -= 1;
        }
    }
    slots
}

/// One line of `pt/metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TuneMetrics {
    /// Tuning epoch.
    pub epoch: usize,
    /// Decisions taken so far.
    pub decisions: usize,
    /// Mean weight-step loss.
    pub train_loss: f64,
    /// Weight-step accuracy (percent).
    pub train_acc: f64,
    /// Mean α-step loss.
    pub valid_loss: f64,
    /// α-step accuracy (percent).
    pub valid_acc: f64,
    /// Wall time (seconds).
    pub seconds: f64,
}

/// PT state saved with each checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct PtState {
    /// Next slot to run.
    slot: usize,
    /// Whether the next slot's decisions are already taken.
    decided: bool,
    /// Decided rows per cell type.
    overrides: Vec<Overrides>,
    /// Undecided edges per cell type.
    undecided_edges: Vec<Vec<usize>>,
    /// Undecided topology nodes per cell type: (node, input edges).
    undecided_nodes: Vec<Vec<(usize, Vec<usize>)>>,
    /// Kept edges per decided node, per cell type.
    kept: Vec<Vec<(usize, Vec<usize>)>>,
    /// Every decision so far.
    decisions: Vec<Decision>,
    /// Evaluations so far.
    evaluations: usize,
}

/// What a finished selection leaves.
#[derive(Clone, Debug)]
pub struct PtOutcome {
    /// The PT genotype (DARTS text or NB201 string).
    pub genotype: String,
    /// Every decision.
    pub decisions: Vec<Decision>,
    /// Tuning metrics of every epoch.
    pub metrics: Vec<TuneMetrics>,
    /// Effective weights at the end, per cell type `[edges][ops]`.
    pub weights: Vec<Vec<Vec<f32>>>,
    /// The event handler asked to stop; resumable.
    pub stopped: bool,
}

/// Effective weights on the host: softmax(α) rows `[cells][edges][ops]` with decided rows
/// overwritten (spec §3.1).
pub fn effective_rows(probs: &[Vec<Vec<f32>>], overrides: &[Overrides]) -> Vec<Vec<Vec<f32>>> {
    probs
        .iter()
        .zip(overrides)
        .map(|(p, o)| {
            p.iter()
                .zip(&o.rows)
                .map(|(p, o)| o.clone().unwrap_or_else(|| p.clone()))
                .collect()
        })
        .collect()
}

/// The genotype text of per-cell-type weights (spec §3.6, §4.3).
pub fn genotype_of(space: &SearchSpace, weights: &[Vec<Vec<f32>>], none: NoneRule) -> String {
    match space.family {
        Family::Darts => {
            derive_darts_with(space, &weights[0], &weights[1], none == NoneRule::Keep).to_string()
        }
        Family::Nb201 => derive_nb201(&weights[0]).to_string(),
    }
}

/// The run's PT decisions (`pt/pt_scores.json`; empty when absent).
pub fn read_decisions(store: &dyn RunStore) -> Result<Vec<Decision>> {
    let Some(text) = rundir::read_text(store, RunDir::PT_SCORES)? else {
        return Ok(Vec::new());
    };
    serde_json::from_str(&text).map_err(|e| Error::Data {
        path: PathBuf::from(format!("{}/{}", store.location(), RunDir::PT_SCORES)),
        message: e.to_string(),
    })
}

/// The run's tuning metrics (`pt/metrics.jsonl`; empty when absent).
pub fn read_tune_metrics(store: &dyn RunStore) -> Result<Vec<TuneMetrics>> {
    rundir::read_jsonl_in(store, RunDir::PT_METRICS)
}

/// Load the final search checkpoint of the run in `store`. Errors when the search has not
/// finished.
pub fn load_run(store: &dyn RunStore) -> Result<Loaded> {
    let settings = rundir::read_settings(store)?;
    let mut run = run::prepare(&settings)?;
    match store.load_checkpoint(RunDir::CHECKPOINTS, &run.cfg, &run.device, &mut run.trainer)? {
        Some((epoch, _)) if epoch >= settings.epochs => {}
        found => {
            return Err(Error::Checkpoint {
                path: PathBuf::from(format!("{}/{}", store.location(), RunDir::CHECKPOINTS)),
                message: format!(
                    "the search has finished {} of {} epochs; finish it first (`darts-pt search --resume {}`)",
                    found.map_or(0, |f| f.0),
                    settings.epochs,
                    store.location()
                ),
            });
        }
    }
    Ok(run)
}

/// The run's `pt/settings.toml` (`None` when absent); errors name the file.
pub fn read_pt_settings(store: &dyn RunStore) -> Result<Option<PtSettings>> {
    let file = format!("{}/{}", store.location(), RunDir::PT_SETTINGS);
    rundir::read_text(store, RunDir::PT_SETTINGS)?
        .map(|text| {
            let bad = |e: toml::de::Error| Error::Config {
                field: file.clone(),
                message: e.to_string(),
            };
            let mut table: toml::Table = text.parse().map_err(bad)?;
            PtSettings::expand_crit(&mut table);
            toml::Value::Table(table).try_into().map_err(bad)
        })
        .transpose()
}

/// Magnitude selection of the run's final α (spec §3.6, §4.3); writes
/// `genotype_magnitude.txt` and returns the genotype (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn select_magnitude(run_dir: &Path) -> Result<String> {
    let store = RunDir::new(run_dir);
    let run = load_run(&store)?;
    let probs = crate::engine::block_on(run::probs_rows(&run.trainer.alphas))?;
    let g = run::magnitude_genotype(run.settings.space, &probs);
    store.write(RunDir::GENOTYPE_MAGNITUDE, format!("{g}\n").as_bytes())?;
    Ok(g)
}

/// The random stream of slot `slot`'s edge choice in `cell`.
pub fn decision_rng(seed: u64, slot: usize, cell: CellType) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed ^ 0x5054_5f6f_7264_6572);
    r.set_stream((slot * 2 + cell.index()) as u64);
    r
}

/// The PT loop (spec §3.4, §3.5) on the trained search `run`, written through `store`.
/// With `resume`, the settings saved in `pt/settings.toml` win over `settings` and the newest
/// selection checkpoint (if any) replaces `run`'s trainer; otherwise (or when there is no
/// checkpoint) any earlier selection of the run is discarded. A stop request ([`Control`]) takes
/// effect at the next checkpoint: after a slot's decisions are saved, or after a tuning epoch.
pub async fn select_pt_in(
    mut run: Loaded,
    store: &dyn RunStore,
    settings: &PtSettings,
    resume: bool,
    control: &Control,
    emit: &mut dyn FnMut(Event),
) -> Result<PtOutcome> {
    let settings: PtSettings = match resume {
        true => read_pt_settings(store)?.unwrap_or_else(|| settings.clone()),
        false => settings.clone(),
    };
    settings.validate()?;
    let search = run.settings.clone();
    let (ds, n, half, device) = (&run.ds, run.n, run.half, run.device.clone());
    let trainer = &mut run.trainer;
    let space = SearchSpace::new(search.space);
    let cells = space.cell_types().to_vec();

    // Fresh PT state: weight optimizer re-created (momentum reset), α's Adam continues (spec §3.4).
    trainer.sgd = crate::optim::Sgd::new(search.hyper.momentum, search.hyper.weight_decay);
    let topo_nodes = if space.family == Family::Darts {
        darts_topology_nodes()
    } else {
        Vec::new()
    };
    let mut state = PtState {
        slot: 0,
        decided: false,
        overrides: trainer.alphas.no_overrides(),
        undecided_edges: cells
            .iter()
            .map(|&c| (0..space.edges(c).len()).collect())
            .collect(),
        undecided_nodes: cells.iter().map(|_| topo_nodes.clone()).collect(),
        kept: cells.iter().map(|_| Vec::new()).collect(),
        decisions: Vec::new(),
        evaluations: 0,
    };
    let mut metrics: Vec<TuneMetrics> = Vec::new();
    let resumed = if resume {
        match store.load_checkpoint(RunDir::PT_CHECKPOINTS, &run.cfg, &device, trainer)? {
            Some((_, dir)) => {
                let file = format!("{dir}/{}", RunDir::PT_STATE);
                let path = PathBuf::from(format!("{}/{file}", store.location()));
                let bytes = store.read(&file)?.ok_or_else(|| Error::Checkpoint {
                    path: path.clone(),
                    message: "missing".into(),
                })?;
                state = serde_json::from_slice(&bytes).map_err(|e| Error::Checkpoint {
                    path,
                    message: e.to_string(),
                })?;
                metrics = read_tune_metrics(store)?
                    .into_iter()
                    .filter(|m| m.epoch < state.slot)
                    .collect();
                true
            }
            None => false,
        }
    } else {
        false
    };
    if !resumed {
        // A new selection replaces any earlier one, its genotype included.
        store.remove(RunDir::PT)?;
        store.remove(RunDir::GENOTYPE_PT)?;
        rundir::write_toml(store, RunDir::PT_SETTINGS, &settings)?;
        store.write(RunDir::PT_METRICS, b"")?;
        store.write(RunDir::PT_SCORES, b"[]")?;
    }
    trainer.overrides = state.overrides.clone();

    let rounds = space.edges(CellType::Normal).len() + topo_nodes.len();
    let slots = schedule(space.family, rounds, settings.proj_intv);
    let evaluations_total: usize = cells
        .iter()
        .map(|&c| {
            space.edges(c).iter().map(|e| e.ops.len()).sum::<usize>()
                + topo_nodes
                    .iter()
                    .map(|(_, es)| (3..=es.len()).sum::<usize>())
                    .sum::<usize>()
        })
        .sum();
    let steps = half.div_ceil(search.batch_size);
    emit(Event::PtStarted {
        slot: state.slot,
        slots: slots.len(),
        decisions: rounds * cells.len(),
        evaluations: evaluations_total,
        steps,
    });
    let mut valid_idx: Vec<usize> = (half..n).collect();
    if let Some(limit) = settings.eval_limit {
        valid_idx.truncate(limit);
    }
    let aug = if search.augment {
        Augment::search(ds)
    } else {
        Augment::NONE
    };
    let epsilon = match search.method {
        Method::SdartsRs | Method::SdartsAdv => search.hyper.epsilon_alpha,
        _ => 0.0,
    };
    let save = |name: String, state: &PtState, trainer: &Trainer| -> Result<()> {
        let pt_state = serde_json::to_vec_pretty(state).map_err(|e| Error::Checkpoint {
            path: PathBuf::from(RunDir::PT_STATE),
            message: e.to_string(),
        })?;
        store.save_checkpoint(
            RunDir::PT_CHECKPOINTS,
            &name,
            state.slot,
            trainer,
            &[(RunDir::PT_STATE, pt_state)],
        )
    };
    let mut stopped = false;

    while state.slot < slots.len() {
        let slot = state.slot;
        let (decide, tune) = slots[slot];
        if decide && !state.decided {
            for (ci, &cell) in cells.iter().enumerate() {
                let t0 = Instant::now();
                let mut rng = decision_rng(search.seed, slot, cell);
                let index = state.decisions.len();
                let mut scorer = Scorer::new(
                    &trainer.net,
                    &trainer.alphas,
                    ds,
                    valid_idx.clone(),
                    settings.eval,
                    search.batch_size,
                    aug,
                    search.seed,
                );
                /// Reports every evaluation and lets the driver run after it.
                struct Counting<'s, 'a> {
                    inner: &'s mut Scorer<'a>,
                    emit: &'s mut dyn FnMut(Event),
                    control: &'s Control,
                }
                impl Evaluate for Counting<'_, '_> {
                    async fn evaluate(
                        &mut self,
                        o: &[Overrides],
                        m: &Mask,
                        salt: u64,
                    ) -> Result<Score> {
                        let s = self.inner.evaluate(o, m, salt).await?;
                        (self.emit)(Event::Evaluated);
                        self.control.checkpoint().await;
                        Ok(s)
                    }
                }
                let mut ev = Counting {
                    inner: &mut scorer,
                    emit: &mut *emit,
                    control,
                };
                let salt = (index as u64 + 1) << 16;
                let decision = if !state.undecided_edges[ci].is_empty() {
                    let pick = match settings.edge_order {
                        EdgeOrder::Random => rng.random_range(0..state.undecided_edges[ci].len()),
                        EdgeOrder::Fixed => 0,
                    };
                    let edge = state.undecided_edges[ci].remove(pick);
                    let (k, candidates) = op_decision(
                        &mut ev,
                        &space,
                        &state.overrides,
                        cell,
                        edge,
                        settings.op_crit(cell),
                        salt,
                    )
                    .await?;
                    fix_op(
                        &space,
                        &mut state.overrides,
                        (cell, edge, k),
                        (index, slot),
                        candidates,
                        t0.elapsed().as_secs_f64(),
                    )
                } else if !state.undecided_nodes[ci].is_empty() {
                    let pick = match settings.edge_order {
                        EdgeOrder::Random => rng.random_range(0..state.undecided_nodes[ci].len()),
                        EdgeOrder::Fixed => 0,
                    };
                    let (node, edges) = state.undecided_nodes[ci].remove(pick);
                    let (kept, candidates) = topology_decision(
                        &mut ev,
                        &state.overrides,
                        cell,
                        &edges,
                        settings.crit_edge,
                        settings.topology,
                        salt,
                    )
                    .await?;
                    for &e in &edges {
                        if !kept.contains(&e) {
                            let width = space.edges(cell)[e].ops.len();
                            state.overrides[cell.index()].rows[e] = Some(vec![0.0; width]);
                        }
                    }
                    state.kept[ci].push((node, kept.clone()));
                    Decision {
                        index,
                        epoch: slot,
                        cell,
                        choice: Choice::Topology {
                            node,
                            kept_edges: kept,
                        },
                        candidates,
                        seconds: t0.elapsed().as_secs_f64(),
                    }
                } else {
                    continue;
                };
                state.evaluations += scorer.evaluations;
                state.decisions.push(decision.clone());
                emit(Event::Decided(decision));
            }
            state.decided = true;
            trainer.overrides = state.overrides.clone();
            rundir::write_json(store, RunDir::PT_SCORES, &state.decisions)?;
            save(format!("slot-{slot:04}-decided"), &state, trainer)?;
            // A stop request takes effect after this slot's decisions are saved.
            if control.stop_requested() {
                stopped = true;
                break;
            }
        }
        if tune {
            let t0 = Instant::now();
            let mut rng = epoch_rng(search.seed ^ 0x0050_545f_7475_6e65, slot);
            device.seed(search.seed.wrapping_add(1_000_000 + slot as u64));
            let totals = train_epoch(
                trainer,
                ds,
                (n, half, search.batch_size),
                aug,
                settings.tune_lr,
                epsilon,
                &mut rng,
                &device,
                slot,
                store,
                control,
                &mut |_, loss| emit(Event::TuneStep { slot, loss }),
            )
            .await?;
            let m = TuneMetrics {
                epoch: slot,
                decisions: state.decisions.len(),
                train_loss: totals.train_loss,
                train_acc: totals.train_acc,
                valid_loss: totals.valid_loss,
                valid_acc: totals.valid_acc,
                seconds: t0.elapsed().as_secs_f64(),
            };
            metrics.push(m.clone());
            rundir::write_jsonl_in(store, RunDir::PT_METRICS, &metrics)?;
            emit(Event::Tuned(m));
        }
        state.slot += 1;
        state.decided = false;
        save(format!("slot-{:04}-start", state.slot), &state, trainer)?;
        if tune && control.stop_requested() {
            stopped = true;
            break;
        }
    }
    let probs = run::probs_rows(&trainer.alphas).await?;
    let weights = effective_rows(&probs, &state.overrides);
    let genotype = genotype_of(&space, &weights, settings.none_genotype);
    if !stopped {
        store.write(RunDir::GENOTYPE_PT, format!("{genotype}\n").as_bytes())?;
    }
    Ok(PtOutcome {
        genotype,
        decisions: state.decisions,
        metrics,
        weights,
        stopped,
    })
}

/// Run (or resume) PT selection on the finished search in `run_dir` ([`select_pt_in`] on the
/// run directory, driven on this thread; native only). `events` returning `false` asks for a stop
/// at the next checkpoint (resumable).
#[cfg(not(target_arch = "wasm32"))]
pub fn select_pt(
    run_dir: &Path,
    settings: &PtSettings,
    resume: bool,
    events: &mut dyn FnMut(Event) -> bool,
) -> Result<PtOutcome> {
    let store = RunDir::new(run_dir);
    let run = load_run(&store)?;
    let control = Control::new();
    crate::engine::block_on(select_pt_in(
        run,
        &store,
        settings,
        resume,
        &control,
        &mut |e| {
            if !events(e) {
                control.request_stop();
            }
        },
    ))
}

/// Where the magnitude and PT genotypes differ: one line per edge (cell type, input, node: named
/// as the field writes it, `normal edge c_{k-2} -> 0`) kept by only one of them or given
/// different ops (DARTS-like), or per edge `0 -> 1` (NAS-Bench-201).
pub fn disagreements(space: &SearchSpace, magnitude: &str, pt: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    match space.family {
        Family::Nb201 => {
            let a: crate::genotype::Nb201Arch = magnitude.parse()?;
            let b: crate::genotype::Nb201Arch = pt.parse()?;
            let ends = crate::space::nb201_edge_endpoints();
            for ((x, y), (from, to)) in a.edges.iter().zip(&b.edges).zip(ends) {
                if x != y {
                    out.push(format!("edge {from} -> {to}: magnitude {x}, pt {y}"));
                }
            }
        }
        Family::Darts => {
            let a: crate::genotype::DartsGenotype = magnitude.parse()?;
            let b: crate::genotype::DartsGenotype = pt.parse()?;
            for (cell, ga, gb) in [
                ("normal", &a.normal, &b.normal),
                ("reduce", &a.reduce, &b.reduce),
            ] {
                for node in 0..ga.len().min(gb.len()) / 2 {
                    let na = &ga[2 * node..2 * node + 2];
                    let nb = &gb[2 * node..2 * node + 2];
                    for input in 0..node + 2 {
                        let oa: Vec<_> = na.iter().filter(|g| g.1 == input).map(|g| g.0).collect();
                        let ob: Vec<_> = nb.iter().filter(|g| g.1 == input).map(|g| g.0).collect();
                        if oa != ob {
                            let show = |v: &[crate::space::OpKind]| {
                                if v.is_empty() {
                                    "-".to_string()
                                } else {
                                    v.iter().map(|o| o.name()).collect::<Vec<_>>().join("+")
                                }
                            };
                            let from = match input {
                                0 => "c_{k-2}".to_string(),
                                1 => "c_{k-1}".to_string(),
                                j => (j - 2).to_string(),
                            };
                            out.push(format!(
                                "{cell} edge {from} -> {node}: magnitude {}, pt {}",
                                show(&oa),
                                show(&ob)
                            ));
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::block_on;
    use crate::space::SpaceName;

    /// An evaluator whose accuracy is the sum of per-(edge, op) contributions that are present.
    struct Toy {
        value: Vec<Vec<f64>>,
        calls: usize,
    }

    impl Evaluate for Toy {
        async fn evaluate(
            &mut self,
            overrides: &[Overrides],
            mask: &Mask,
            _: u64,
        ) -> Result<Score> {
            self.calls += 1;
            let mut acc = 0.0;
            for (e, row) in self.value.iter().enumerate() {
                for (k, v) in row.iter().enumerate() {
                    let zeroed = mask.ops.contains(&(CellType::Normal, e, k))
                        || mask.edges.contains(&(CellType::Normal, e))
                        || overrides[0].rows[e].as_ref().is_some_and(|r| r[k] == 0.0);
                    if !zeroed {
                        acc += v;
                    }
                }
            }
            Ok(Score {
                accuracy: acc,
                loss: 100.0 - acc,
            })
        }
    }

    #[test]
    fn op_decision_keeps_the_op_that_matters_ties_to_lower_index() {
        let space = SearchSpace::new(SpaceName::Nb201);
        let mut toy = Toy {
            value: vec![vec![0.0, 1.0, 5.0, 2.0, 0.0]; 6],
            calls: 0,
        };
        let ovr = vec![Overrides::none(6)];
        for crit in [Criterion::Acc, Criterion::Loss] {
            let (k, c) = block_on(op_decision(
                &mut toy,
                &space,
                &ovr,
                CellType::Normal,
                3,
                crit,
                1,
            ))
            .unwrap();
            assert_eq!(k, 2, "{crit}");
            assert_eq!(c.len(), 5);
        }
        // All equal: the lowest index wins.
        let mut flat = Toy {
            value: vec![vec![1.0; 5]; 6],
            calls: 0,
        };
        let (k, _) = block_on(op_decision(
            &mut flat,
            &space,
            &ovr,
            CellType::Normal,
            0,
            Criterion::Acc,
            1,
        ))
        .unwrap();
        assert_eq!(k, 0);
    }

    #[test]
    fn topology_drops_the_least_important_edge_ties_drop_the_later() {
        let mut value = vec![vec![0.0; 7]; 14];
        value[5][0] = 3.0;
        value[6][0] = 0.5;
        value[7][0] = 2.0;
        value[8][0] = 1.0;
        let mut toy = Toy { value, calls: 0 };
        let ovr = vec![Overrides::none(14), Overrides::none(14)];
        let (kept, c) = block_on(topology_decision(
            &mut toy,
            &ovr,
            CellType::Normal,
            &[5, 6, 7, 8],
            Criterion::Acc,
            TopologyMode::Reference,
            1,
        ))
        .unwrap();
        assert_eq!(kept, vec![5, 7]);
        assert_eq!(c.len(), 4 + 3);
        // Equal importance: the later edge goes first.
        let mut flat = Toy {
            value: vec![vec![1.0; 7]; 14],
            calls: 0,
        };
        let (kept, _) = block_on(topology_decision(
            &mut flat,
            &ovr,
            CellType::Normal,
            &[2, 3, 4],
            Criterion::Loss,
            TopologyMode::Corrected,
            1,
        ))
        .unwrap();
        assert_eq!(kept, vec![2, 3]);
    }

    #[test]
    fn schedules_match_the_reference() {
        let darts = schedule(Family::Darts, 17, 5);
        assert_eq!(darts.len(), 81);
        let d: Vec<usize> = (0..81).filter(|&t| darts[t].0).collect();
        assert_eq!(d, (0..=80).step_by(5).collect::<Vec<_>>());
        let nb = schedule(Family::Nb201, 6, 5);
        assert_eq!(nb.len(), 25);
        let d: Vec<usize> = (0..25).filter(|&t| nb[t].0).collect();
        assert_eq!(d, vec![0, 5, 10, 15, 20, 24]);
        for (f, r, i) in [
            (Family::Nb201, 6, 1),
            (Family::Darts, 17, 1),
            (Family::Nb201, 6, 2),
        ] {
            assert_eq!(schedule(f, r, i).iter().filter(|s| s.0).count(), r, "{i}");
        }
        assert_eq!(schedule(Family::Nb201, 6, 0), vec![(true, false); 6]);
    }

    #[test]
    fn disagreements_list_edges() {
        let space = SearchSpace::new(SpaceName::Nb201);
        let a = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|";
        let b = "|nor_conv_3x3~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|none~2|";
        let d = disagreements(&space, a, b).unwrap();
        assert_eq!(
            d,
            vec![
                "edge 0 -> 1: magnitude skip_connect, pt nor_conv_3x3",
                "edge 2 -> 3: magnitude skip_connect, pt none"
            ]
        );
        let space = SearchSpace::new(SpaceName::Darts);
        let g = |n0: &str| {
            format!(
                "Genotype(normal=[('{n0}', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('skip_connect', 2), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))"
            )
        };
        let d = disagreements(&space, &g("sep_conv_3x3"), &g("dil_conv_5x5")).unwrap();
        assert_eq!(
            d,
            vec!["normal edge c_{k-2} -> 0: magnitude sep_conv_3x3, pt dil_conv_5x5"]
        );
    }
}
