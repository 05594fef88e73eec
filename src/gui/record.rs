//! What the app shows about one run, built either from a run directory on disk or, live, from the
//! job's events. Plain data: no egui here.

use std::path::{Path, PathBuf};
use web_time::Instant;

use crate::error::Result;
use crate::event::Event;
use crate::run::{EpochMetrics, SearchSettings};
use crate::rundir::{self, RunDir};
use crate::select::{Choice, Decision, PtSettings, TuneMetrics};
use crate::space::{CellType, Family, OpKind, SearchSpace};

/// Phase of a run.
#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    /// Nothing running.
    Idle,
    /// Supernet training.
    Search,
    /// PT selection (decisions and progressive tuning).
    Selection,
    /// Finished.
    Done,
    /// Stopped on request; resumable.
    Stopped,
    /// Ended with an error.
    Failed(String),
}

/// Progress of the current phase.
#[derive(Clone, Debug)]
pub struct Progress {
    /// Units done (steps or evaluations).
    pub done: u64,
    /// Units in all.
    pub total: u64,
    /// When the phase started (for the ETA).
    pub started: Instant,
}

impl Progress {
    fn new(total: u64) -> Self {
        Progress {
            done: 0,
            total,
            started: Instant::now(),
        }
    }

    /// Fraction done, 0..=1.
    pub fn fraction(&self) -> f32 {
        if self.total == 0 {
            0.0
        } else {
            (self.done as f32 / self.total as f32).min(1.0)
        }
    }

    /// Estimated seconds left, from the rate so far.
    pub fn eta_seconds(&self) -> Option<f64> {
        (self.done > 0 && self.total > self.done).then(|| {
            let rate = self.started.elapsed().as_secs_f64() / self.done as f64;
            rate * (self.total - self.done) as f64
        })
    }
}

/// Everything the views draw.
#[derive(Clone, Debug)]
pub struct RunRecord {
    /// The run directory, when there is one.
    pub run_dir: Option<PathBuf>,
    /// Search settings.
    pub settings: SearchSettings,
    /// PT settings (when known).
    pub pt_settings: Option<PtSettings>,
    /// Search metrics per epoch (softmax α included).
    pub epochs: Vec<EpochMetrics>,
    /// Progressive-tuning metrics per epoch.
    pub tune: Vec<TuneMetrics>,
    /// PT decisions in order.
    pub decisions: Vec<Decision>,
    /// Magnitude genotype.
    pub magnitude: Option<String>,
    /// PT genotype.
    pub pt: Option<String>,
    /// Compute device in use.
    pub device: String,
    /// Current phase.
    pub phase: Phase,
    /// Progress of the current phase.
    pub progress: Option<Progress>,
    /// Search steps per epoch (for plotting step losses).
    pub steps_per_epoch: usize,
}

impl RunRecord {
    /// An empty record for a run about to start with `settings`.
    pub fn new(settings: SearchSettings, pt: Option<PtSettings>) -> Self {
        RunRecord {
            run_dir: None,
            settings,
            pt_settings: pt,
            epochs: Vec::new(),
            tune: Vec::new(),
            decisions: Vec::new(),
            magnitude: None,
            pt: None,
            device: String::new(),
            phase: Phase::Idle,
            progress: None,
            steps_per_epoch: 0,
        }
    }

    /// Load a run directory (finished, interrupted or imported): its settings, then the events
    /// it recorded ([`crate::job::replay`]) folded in as a live run's are.
    pub fn load(run_dir: &Path) -> Result<Self> {
        let store = RunDir::new(run_dir);
        let settings = rundir::read_settings(&store)?;
        // An unreadable PT settings file only hides them in the view.
        let pt_settings = crate::select::read_pt_settings(&store).ok().flatten();
        let mut r = RunRecord::new(settings, pt_settings);
        for e in crate::job::replay(&store)? {
            r.apply(&e);
        }
        r.run_dir = Some(run_dir.to_path_buf());
        r.progress = None;
        r.phase = if r.pt.is_some() {
            Phase::Done
        } else if r.epochs.is_empty() {
            Phase::Idle
        } else {
            Phase::Stopped
        };
        Ok(r)
    }

    /// Everything the run measured as pretty JSON (the "Save metrics" export): settings, search
    /// epochs with softmax(α), PT tuning epochs, every PT decision with its scores, both genotypes
    /// and, for NAS-Bench-201 cells, their benchmark accuracies.
    /// Errors: the record cannot be serialised (the message says why).
    pub fn summary_json(&self) -> std::result::Result<Vec<u8>, String> {
        let lookup = |g: &Option<String>| {
            g.as_deref()
                .and_then(|t| t.parse::<crate::genotype::Nb201Arch>().ok())
                .map(|a| crate::nb201::Table::embedded().lookup(&a))
        };
        let v = serde_json::json!({
            "settings": self.settings,
            "pt_settings": self.pt_settings,
            "device": self.device,
            "search": self.epochs,
            "pt_tuning": self.tune,
            "pt_decisions": self.decisions,
            "genotype_magnitude": self.magnitude,
            "genotype_pt": self.pt,
            "nb201_magnitude": lookup(&self.magnitude),
            "nb201_pt": lookup(&self.pt),
        });
        serde_json::to_vec_pretty(&v).map_err(|e| format!("cannot export the metrics: {e}"))
    }

    /// Fold one job event into the record.
    pub fn apply(&mut self, e: &Event) {
        match e {
            Event::SearchStarted {
                epoch,
                epochs,
                steps,
                device,
            } => {
                self.phase = Phase::Search;
                self.device = device.clone();
                self.steps_per_epoch = *steps;
                self.progress = Some(Progress::new(((epochs - epoch) * steps) as u64));
            }
            Event::Step { .. } => {
                if let Some(p) = &mut self.progress {
                    p.done += 1;
                }
            }
            Event::Epoch(m) => {
                self.epochs.retain(|x| x.epoch < m.epoch);
                self.epochs.push(m.clone());
            }
            Event::Magnitude(g) => self.magnitude = Some(g.clone()),
            Event::PtStarted { evaluations, .. } => {
                self.phase = Phase::Selection;
                self.progress = Some(Progress::new(*evaluations as u64));
            }
            Event::Evaluated => {
                if let Some(p) = &mut self.progress {
                    p.done += 1;
                }
            }
            Event::Decided(d) => {
                self.decisions.retain(|x| x.index < d.index);
                self.decisions.push(d.clone());
            }
            Event::TuneStep { .. } => {}
            Event::Tuned(m) => {
                self.tune.retain(|x| x.epoch < m.epoch);
                self.tune.push(m.clone());
            }
            Event::Finished(sel) => {
                self.phase = Phase::Done;
                self.pt = sel.pt.clone();
                self.magnitude = sel.magnitude.clone().or(self.magnitude.take());
                if let Some(p) = &mut self.progress {
                    p.done = p.total;
                }
            }
        }
    }

    /// The search space.
    pub fn space(&self) -> SearchSpace {
        SearchSpace::new(self.settings.space)
    }

    /// What the report's figures are drawn from ([`crate::figures::run_figures`]).
    pub fn figure_data(&self) -> crate::figures::RunData {
        crate::figures::RunData {
            space: self.space(),
            epochs: self.epochs.clone(),
            tune: self.tune.clone(),
            decisions: self.decisions.clone(),
            magnitude: self.magnitude.clone(),
            pt: self.pt.clone(),
        }
    }

    /// Softmax(α) `[edges][ops]` of `cell` after search epoch `epoch` (the last when `None`).
    pub fn alpha(&self, cell: CellType, epoch: Option<usize>) -> Option<&Vec<Vec<f32>>> {
        let m = match epoch {
            Some(e) => self.epochs.iter().find(|m| m.epoch == e),
            None => self.epochs.last(),
        }?;
        m.softmax_alpha.get(cell.index())
    }

    /// Share of parameter-free ops (skip_connect, pools, none) in the softmax weights of `cell`
    /// at `epoch`, averaged over edges (0..1).
    pub fn parameter_free_share(&self, cell: CellType, epoch: Option<usize>) -> Option<f32> {
        let a = self.alpha(cell, epoch)?;
        let space = self.space();
        let edges = space.edges(cell);
        let total: f32 = a
            .iter()
            .zip(edges)
            .map(|(row, e)| {
                row.iter()
                    .zip(&e.ops)
                    .filter(|(_, op)| is_parameter_free(**op))
                    .map(|(w, _)| *w)
                    .sum::<f32>()
            })
            .sum();
        Some(total / a.len().max(1) as f32)
    }

    /// A collapse warning when skip connections dominate the normal cell's argmax α: three or more
    /// `skip_connect` edges in the DARTS normal cell's genotype (the DARTS+ / RobustDARTS symptom),
    /// or `skip_connect` / `none` on most NAS-Bench-201 edges.
    pub fn collapse_warning(&self) -> Option<String> {
        let a = self.alpha(CellType::Normal, None)?;
        let space = self.space();
        match space.family {
            Family::Darts => {
                let g = self.magnitude_genotype_now()?;
                let skips = g
                    .normal
                    .iter()
                    .filter(|(op, _)| *op == OpKind::SkipConnect)
                    .count();
                (skips >= 3).then(|| {
                    format!(
                        "Collapse warning: the magnitude genotype keeps {skips} skip connections in the normal cell"
                    )
                })
            }
            Family::Nb201 => {
                // The magnitude rule of spec §4.3 (argmax of each edge's row).
                let argmax = crate::genotype::derive_nb201(a).edges;
                let bad = argmax
                    .iter()
                    .filter(|op| matches!(op, OpKind::SkipConnect | OpKind::None))
                    .count();
                (2 * bad > argmax.len()).then(|| {
                    format!(
                        "Collapse warning: argmax α is skip_connect or none on {bad} of {} edges",
                        argmax.len()
                    )
                })
            }
        }
    }

    /// The magnitude genotype of the newest α (DARTS-like spaces).
    fn magnitude_genotype_now(&self) -> Option<crate::genotype::DartsGenotype> {
        let space = self.space();
        let n = self.alpha(CellType::Normal, None)?;
        let r = self.alpha(CellType::Reduce, None)?;
        Some(crate::genotype::derive_darts(&space, n, r))
    }

    /// The op PT fixed on each edge of `cell`, and the edges topology decisions removed.
    pub fn pt_state(&self, cell: CellType) -> (Vec<Option<String>>, Vec<usize>) {
        let edges = self.space().edges(cell).len();
        let mut ops = vec![None; edges];
        let mut removed = Vec::new();
        let space = self.space();
        for d in self.decisions.iter().filter(|d| d.cell == cell) {
            match &d.choice {
                Choice::Op { edge, chosen_op } => ops[*edge] = Some(chosen_op.name().to_string()),
                Choice::Topology { node, kept_edges } => {
                    for (e, edge) in space.edges(cell).iter().enumerate() {
                        if edge.to == *node && !kept_edges.contains(&e) {
                            removed.push(e);
                        }
                    }
                }
            }
        }
        (ops, removed)
    }
}

/// Whether an op has no learnable weights.
pub fn is_parameter_free(op: OpKind) -> bool {
    matches!(
        op,
        OpKind::None
            | OpKind::SkipConnect
            | OpKind::MaxPool3x3
            | OpKind::AvgPool3x3
            | OpKind::Noise
    )
}
