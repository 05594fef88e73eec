//! The main job as one function with one event stream: search, magnitude selection, PT selection
//! and the report (design: one engine, several faces). `darts-pt run` and the desktop app both
//! drive it.

use std::path::Path;

use crate::error::Result;
use crate::report::{self, Selection};
use crate::run::{self, Event, SearchSettings};
use crate::select::{self, PtEvent, PtSettings};

/// Progress of the whole job.
#[derive(Clone, Debug)]
pub enum JobEvent {
    /// A search event.
    Search(Event),
    /// The magnitude genotype of the finished search.
    Magnitude(String),
    /// A PT selection event.
    Pt(PtEvent),
    /// The PT genotype; the job is done and `selection.json` / `report.md` are written.
    Finished(Box<Selection>),
}

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

/// Run the main job in `run_dir`; with `resume`, continue it (the run's own settings win).
/// `events` receives every event; returning `false` stops at the next checkpoint (end of the
/// current search epoch, or the next PT checkpoint), leaving the run resumable.
pub fn run_job(
    settings: &SearchSettings,
    pt: &PtSettings,
    run_dir: &Path,
    resume: bool,
    events: &mut dyn FnMut(JobEvent) -> bool,
) -> Result<JobEnd> {
    if !resume && !run_dir.join("config.toml").exists() {
        settings.validate()?;
        // The selection settings are fixed now, so that a resume after a kill during the search
        // selects with them.
        pt.validate()?;
        run::write_atomic(
            &run_dir.join("pt").join("settings.toml"),
            toml::to_string_pretty(pt).unwrap_or_default().as_bytes(),
        )?;
    }
    let out = run::search(settings, run_dir, resume, &mut |e| {
        events(JobEvent::Search(e))
    })?;
    if out.stopped {
        return Ok(JobEnd::StoppedInSearch);
    }
    let g = select::select_magnitude(run_dir)?;
    events(JobEvent::Magnitude(g));
    // `resume = true`: `pt/settings.toml` (written above) wins, and an interrupted selection
    // continues from its newest checkpoint.
    let out = select::select_pt(run_dir, pt, true, &mut |e| events(JobEvent::Pt(e)))?;
    if out.stopped {
        return Ok(JobEnd::StoppedInSelection);
    }
    report::write(run_dir)?;
    events(JobEvent::Finished(Box::new(report::selection(run_dir)?)));
    Ok(JobEnd::Finished)
}
