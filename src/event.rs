//! The one event type of a job: what the search loop, the PT loop and the job report while they
//! run, in this order. The CLI's printers, the desktop app, the page and the tests all read it;
//! a run directory opened later is replayed as the same events ([`crate::job::replay`]).

use crate::report::Selection;
use crate::run::EpochMetrics;
use crate::select::{Decision, TuneMetrics};

/// Progress of a job.
#[derive(Clone, Debug)]
pub enum Event {
    /// The search starts (or resumes) at `epoch` of `epochs`, `steps` steps each.
    SearchStarted {
        /// First epoch to run.
        epoch: usize,
        /// Total epochs.
        epochs: usize,
        /// Steps per epoch.
        steps: usize,
        /// Device description.
        device: String,
    },
    /// A bilevel search step finished.
    Step {
        /// Epoch.
        epoch: usize,
        /// Step within the epoch.
        step: usize,
        /// Weight-step loss.
        loss: f64,
    },
    /// A search epoch finished; its `metrics.jsonl` line.
    Epoch(EpochMetrics),
    /// The magnitude genotype of the finished search (spec §3.6).
    Magnitude(String),
    /// PT selection starts (or resumes) at `slot` of `slots`.
    PtStarted {
        /// First slot to run.
        slot: usize,
        /// Total slots (tuning epochs, or decisions when there is no tuning).
        slots: usize,
        /// Decisions in all.
        decisions: usize,
        /// Full-validation evaluations in all (spec §3.8).
        evaluations: usize,
        /// Tuning steps per epoch.
        steps: usize,
    },
    /// One PT evaluation finished.
    Evaluated,
    /// A PT decision was taken (spec §3.2, §3.3).
    Decided(Decision),
    /// A tuning step finished.
    TuneStep {
        /// Slot.
        slot: usize,
        /// Loss of the weight step.
        loss: f64,
    },
    /// A tuning epoch finished; its `pt/metrics.jsonl` line.
    Tuned(TuneMetrics),
    /// The job is done: both genotypes, `selection.json` and `report.md` are written.
    Finished(Box<Selection>),
}
