//! The one job, as the page runs it (in memory, PT evaluations one batch after the other) and as
//! the CLI and the desktop app run it (a run directory, evaluations on every core): the same
//! numbers, decisions and genotypes, in every space family and with every search method.

use std::path::PathBuf;

use darts_pt::data::DatasetName;
use darts_pt::engine::{self, Control, block_on};
use darts_pt::event::Event;
use darts_pt::job::{self, JobEnd};
use darts_pt::run::SearchSettings;
use darts_pt::rundir::{self, MemoryRun, RunDir, RunStore};
use darts_pt::search::Method;
use darts_pt::select::{self, EvalMode, PtSettings};
use darts_pt::space::SpaceName;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("darts-pt-job-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The browser test's tiny job, on the CPU: C = 4, 8×8 digits, 128 images, 1 epoch; one cell
/// per stage and tuning between decisions (NB201), or 3 cells and decisions back to back on 16
/// scoring images (DARTS-like).
fn tiny(space: SpaceName, method: Method, second_order: bool) -> (SearchSettings, PtSettings) {
    let mut s = SearchSettings::reference(space, DatasetName::Digits);
    s.epochs = 1;
    s.batch_size = 32;
    s.limit_train = Some(128);
    s.init_channels = 4;
    s.layers = if space == SpaceName::Nb201 { 1 } else { 3 };
    s.digits_size = 8;
    s.seed = 11;
    s.method = method;
    s.second_order = second_order;
    let darts_like = space != SpaceName::Nb201;
    let pt = PtSettings {
        proj_intv: if darts_like { 0 } else { 1 },
        eval_limit: darts_like.then_some(16),
        ..PtSettings::default()
    };
    (s, pt)
}

/// Everything a job measured, without wall times.
fn numbers(store: &dyn RunStore) -> (Vec<String>, String, String, String) {
    let strip = |mut v: serde_json::Value| {
        fn walk(v: &mut serde_json::Value) {
            match v {
                serde_json::Value::Object(m) => {
                    m.remove("seconds");
                    m.values_mut().for_each(walk);
                }
                serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
                _ => {}
            }
        }
        walk(&mut v);
        v.to_string()
    };
    let metrics: Vec<String> = rundir::read_metrics(store)
        .unwrap()
        .into_iter()
        .map(|m| strip(serde_json::to_value(m).unwrap()))
        .collect();
    let decisions = strip(serde_json::to_value(select::read_decisions(store).unwrap()).unwrap());
    let tune = strip(serde_json::to_value(select::read_tune_metrics(store).unwrap()).unwrap());
    let genotypes = format!(
        "{:?} {:?}",
        rundir::read_genotype(store, RunDir::GENOTYPE_MAGNITUDE),
        rundir::read_genotype(store, RunDir::GENOTYPE_PT)
    );
    (metrics, decisions, tune, genotypes)
}

fn page_and_native_agree(name: &str, space: SpaceName, method: Method, second_order: bool) {
    let (s, pt) = tiny(space, method, second_order);
    let dir = temp(name);
    let control = Control::new();
    let mut native_events = 0;
    engine::set_eval_threads(0);
    let end =
        job::run_job_with(&s, &pt, &dir, false, &control, &mut |_| native_events += 1).unwrap();
    assert_eq!(end, JobEnd::Finished);

    // The page: memory, one evaluation batch after the other, its events.
    engine::set_eval_threads(1);
    let memory = MemoryRun::new();
    let mut decided = 0;
    let mut finished = None;
    let end = block_on(job::run_job_in(
        &s,
        &pt,
        &memory,
        false,
        &control,
        &mut |e| match e {
            Event::Decided(_) => decided += 1,
            Event::Finished(sel) => finished = Some(sel),
            _ => {}
        },
    ))
    .unwrap();
    engine::set_eval_threads(0);
    assert_eq!(end, JobEnd::Finished);
    let native = numbers(&RunDir::new(&dir));
    let page = numbers(&memory);
    assert_eq!(native, page, "{name}: page vs native");
    assert!(decided > 0 && native_events > decided);
    let sel = finished.expect("a Finished event");
    assert_eq!(
        Some(sel.pt.clone().unwrap()),
        rundir::read_genotype(&memory, RunDir::GENOTYPE_PT)
    );
    // The page's memory holds the same files a run directory does (no checkpoints).
    let files = memory.files();
    for f in [
        RunDir::CONFIG,
        RunDir::MANIFEST,
        RunDir::METRICS,
        RunDir::PT_SETTINGS,
        RunDir::PT_SCORES,
        RunDir::SELECTION,
        RunDir::REPORT,
    ] {
        assert!(files.contains_key(f), "{name}: {f} missing in memory");
        assert!(
            RunDir::new(&dir).path(f).is_file(),
            "{name}: {f} missing on disk"
        );
    }
    // A run directory opened later is read through the events a live run emits.
    let replayed = job::replay(&RunDir::new(&dir)).unwrap();
    let replayed_decisions = replayed
        .iter()
        .filter(|e| matches!(e, Event::Decided(_)))
        .count();
    assert_eq!(replayed_decisions, decided);
    assert!(matches!(replayed.last(), Some(Event::Finished(_))));
    assert!(matches!(
        replayed.first(),
        Some(Event::SearchStarted { .. })
    ));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn page_job_matches_native_nb201_darts() {
    page_and_native_agree("nb201", SpaceName::Nb201, Method::Darts, false);
}

#[test]
fn page_job_matches_native_darts_space_with_topology() {
    page_and_native_agree("darts", SpaceName::Darts, Method::Darts, false);
}

#[test]
fn page_job_matches_native_second_order_and_sdarts() {
    page_and_native_agree("nb201-2nd", SpaceName::Nb201, Method::Darts, true);
    page_and_native_agree("nb201-adv", SpaceName::Nb201, Method::SdartsAdv, false);
    page_and_native_agree("s2-rs", SpaceName::S2, Method::SdartsRs, false);
}

/// One stop protocol: a stop requested during the search ends the job after the epoch's
/// checkpoint, and the resumed job ends where an uninterrupted one does.
#[test]
fn a_stop_through_control_resumes_to_the_same_genotype() {
    let (mut s, mut pt) = tiny(SpaceName::Nb201, Method::Darts, false);
    s.epochs = 2;
    pt.eval = EvalMode::Deterministic;
    let (full, part) = (temp("ctl-full"), temp("ctl-part"));
    let control = Control::new();
    job::run_job_with(&s, &pt, &full, false, &control, &mut |_| {}).unwrap();
    let control = Control::new();
    let end = job::run_job_with(&s, &pt, &part, false, &control, &mut |e| {
        if matches!(e, Event::Step { .. }) {
            control.request_stop();
        }
    })
    .unwrap();
    assert_eq!(end, JobEnd::StoppedInSearch);
    assert_eq!(rundir::read_metrics(&RunDir::new(&part)).unwrap().len(), 1);
    let control = Control::new();
    let end = job::run_job_with(&s, &pt, &part, true, &control, &mut |_| {}).unwrap();
    assert_eq!(end, JobEnd::Finished);
    assert_eq!(
        numbers(&RunDir::new(&full)).3,
        numbers(&RunDir::new(&part)).3
    );
    let _ = std::fs::remove_dir_all(&full);
    let _ = std::fs::remove_dir_all(&part);
}
