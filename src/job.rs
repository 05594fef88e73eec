//! The main job as one function with one event stream: search, magnitude selection, PT selection
//! and the report (design: one engine, several faces). `darts-pt run`, the desktop app and the
//! browser page all drive [`run_job_in`]: natively on the run directory through [`run_job_with`], in
//! the page in memory ([`crate::rundir::MemoryRun`]).

#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;

use crate::engine::Control;
use crate::error::Result;
use crate::event::Event;
use crate::report;
use crate::run::{self, SearchSettings};
use crate::rundir::{self, RunDir, RunStore};
use crate::select::{self, PtSettings};

/// How the job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobEnd {
    /// Search, both selections and the report are done.
    Finished,
    /// Stopped on request during the search (resumable).
    StoppedInSearch,
    /// Stopped on request during PT selection (resumable).
    StoppedInSelection,
}

/// The job: search into `store`, the magnitude genotype, PT selection on the trained supernet,
/// then `selection.json` and `report.md`. With `resume`, continue the run in `store` (its own
/// settings win). Every event goes to `emit`; a stop request ([`Control`]) takes effect at the
/// next checkpoint (end of the current search epoch, or the next PT checkpoint), leaving the run
/// resumable.
pub async fn run_job_in(
    settings: &SearchSettings,
    pt: &PtSettings,
    store: &dyn RunStore,
    resume: bool,
    control: &Control,
    emit: &mut dyn FnMut(Event),
) -> Result<JobEnd> {
    if !resume && store.read(RunDir::CONFIG)?.is_none() {
        settings.validate()?;
        // The selection settings are fixed now, so that a resume after a kill during the search
        // selects with them.
        pt.validate()?;
        rundir::write_toml(store, RunDir::PT_SETTINGS, pt)?;
    }
    let out = run::search_in(settings, store, resume, control, &mut *emit).await?;
    if out.stopped {
        return Ok(JobEnd::StoppedInSearch);
    }
    emit(Event::Magnitude(out.genotype.clone()));
    // `resume = true`: `pt/settings.toml` (written above) wins, and an interrupted selection
    // continues from its newest checkpoint.
    let sel = select::select_pt_in(out.run, store, pt, true, control, &mut *emit).await?;
    if sel.stopped {
        return Ok(JobEnd::StoppedInSelection);
    }
    report::write(store)?;
    emit(Event::Finished(Box::new(report::selection(store)?)));
    Ok(JobEnd::Finished)
}

/// A recorded run as the events a live run emits, in the same order: the search's start and
/// every epoch's metrics, the magnitude genotype, every PT decision and tuning epoch, and (when
/// the selection finished) the selection summary. The app opens a run directory through this, so
/// a finished, stopped or imported run is shown by the same code as a live one. Steps and
/// evaluations are not recorded and are not replayed.
pub fn replay(store: &dyn RunStore) -> Result<Vec<Event>> {
    let settings = rundir::read_settings(store)?;
    let manifest: Option<serde_json::Value> =
        rundir::read_text(store, RunDir::MANIFEST)?.and_then(|t| serde_json::from_str(&t).ok());
    let device = manifest
        .as_ref()
        .and_then(|m| m["adapter"].as_str())
        .unwrap_or("")
        .to_string();
    let steps = settings
        .limit_train
        .map(|n| settings.weight_half(n).div_ceil(settings.batch_size.max(1)))
        .unwrap_or(0);
    let mut out = vec![Event::SearchStarted {
        epoch: 0,
        epochs: settings.epochs,
        steps,
        device,
    }];
    out.extend(rundir::read_metrics(store)?.into_iter().map(Event::Epoch));
    if let Some(g) = rundir::read_genotype(store, RunDir::GENOTYPE_MAGNITUDE) {
        out.push(Event::Magnitude(g));
    }
    let mut decisions = select::read_decisions(store)?.into_iter().peekable();
    for m in select::read_tune_metrics(store)? {
        // Decisions are taken before the tuning epoch they name.
        while let Some(d) = decisions.next_if(|d| d.epoch <= m.epoch) {
            out.push(Event::Decided(d));
        }
        out.push(Event::Tuned(m));
    }
    out.extend(decisions.map(Event::Decided));
    if rundir::read_genotype(store, RunDir::GENOTYPE_PT).is_some() {
        out.push(Event::Finished(Box::new(report::selection(store)?)));
    }
    Ok(out)
}

/// [`run_job_in`] on the run directory `run_dir` with the caller's [`Control`] (Ctrl-C in the
/// CLI, the desktop app's buttons), driven on this thread (native only).
#[cfg(not(target_arch = "wasm32"))]
pub fn run_job_with(
    settings: &SearchSettings,
    pt: &PtSettings,
    run_dir: &Path,
    resume: bool,
    control: &Control,
    emit: &mut dyn FnMut(Event),
) -> Result<JobEnd> {
    crate::engine::block_on(run_job_in(
        settings,
        pt,
        &RunDir::new(run_dir),
        resume,
        control,
        emit,
    ))
}
