//! The desktop app under egui_kittest (headless, wgpu on lavapipe): snapshots of the main views
//! from recorded runs (`tests/fixtures/runs`), a tiny live run on the embedded digits with a
//! decision appearing and a stop, and inline errors for bad settings.
//!
//! Snapshots live in `tests/snapshots`; `UPDATE_SNAPSHOTS=1 cargo test gui` rewrites them (render
//! them on lavapipe, as CI does).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use darts_pt::data::DatasetName;
use darts_pt::gui::record::{Phase, RunRecord};
use darts_pt::gui::{App, Tab};
use darts_pt::space::CellType;
use eframe::egui;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

/// A recorded run, by a relative path (tests run in the package root) so that the snapshots do not
/// depend on where the repository lives.
fn fixture(name: &str) -> PathBuf {
    Path::new("tests/fixtures/runs").join(name)
}

fn harness(app: App) -> Harness<'static, App> {
    Harness::builder()
        .with_size(egui::vec2(1280.0, 800.0))
        .with_theme(egui::Theme::Light)
        .wgpu()
        .build_ui_state(|ui, app: &mut App| app.show(ui), app)
}

fn opened(name: &str, tab: Tab) -> Harness<'static, App> {
    let mut app = App::new("lavapipe (test)");
    app.open(&fixture(name));
    assert!(app.record.is_some(), "{}", app.status);
    app.tab = tab;
    let mut h = harness(app);
    h.run();
    h
}

// One harness per test: egui_kittest merges snapshot results per harness.
#[test]
fn snapshots_nb201_watch_and_cells() {
    let mut h = opened("nb201-digits", Tab::Watch);
    assert!(h.query_by_label_contains("PT decisions (6)").is_some());
    h.snapshot("watch_nb201");
    h.state_mut().tab = Tab::Cells;
    h.run();
    assert!(h.query_by_label_contains("magnitude:").is_some());
    h.snapshot("cells_nb201");
}

#[test]
fn snapshots_darts_cells_and_reduce_alpha() {
    let mut h = opened("darts-cifar10", Tab::Cells);
    h.snapshot("cells_darts");
    h.state_mut().tab = Tab::Watch;
    h.state_mut().view.cell = CellType::Reduce;
    h.run();
    h.snapshot("watch_darts_reduce");
}

/// Issue 17: the view's cell type was kept across runs, and the α views then indexed the reduce
/// cell of an NB201 run (a panic). Opening an NB201 run while a DARTS run's reduce cell is shown
/// now falls back to the normal cell.
#[test]
fn reduce_cell_view_survives_opening_an_nb201_run() {
    let mut h = opened("darts-cifar10", Tab::Watch);
    h.state_mut().view.cell = CellType::Reduce;
    h.state_mut().view.edge = 13;
    h.run();
    h.state_mut().open(&fixture("nb201-digits"));
    h.state_mut().tab = Tab::Watch;
    h.run();
    assert_eq!(h.state().view.cell, CellType::Normal);
    assert!(h.state().view.edge < 6, "edge {}", h.state().view.edge);
    // The same holds when the NB201 record arrives without `open` (a run started from the form).
    h.state_mut().view.cell = CellType::Reduce;
    h.state_mut().view.edge = 13;
    h.run();
    assert_eq!(h.state().view.cell, CellType::Normal);
}

#[test]
fn snapshot_configure() {
    let mut h = harness(App::new("lavapipe (test)"));
    h.run();
    h.snapshot("configure");
}

#[test]
fn frame_time_with_a_darts_run_loaded() {
    // A full-length DARTS-space record: the fixture's α repeated over 50 epochs, every decision.
    let mut r = RunRecord::load(&fixture("darts-cifar10")).unwrap();
    let first = r.epochs[0].clone();
    r.epochs = (0..50)
        .map(|e| {
            let mut m = first.clone();
            m.epoch = e;
            m
        })
        .collect();
    let mut app = App::new("lavapipe (test)");
    app.record = Some(r);
    app.tab = Tab::Watch;
    let mut h = harness(app);
    h.run();
    let t0 = Instant::now();
    let frames = 10;
    for _ in 0..frames {
        h.step();
    }
    let watch = t0.elapsed().as_secs_f64() / frames as f64;
    let t0 = Instant::now();
    for _ in 0..frames {
        h.render().expect("wgpu render");
    }
    let watch_render = t0.elapsed().as_secs_f64() / frames as f64;
    h.state_mut().tab = Tab::Cells;
    h.run();
    let t0 = Instant::now();
    for _ in 0..frames {
        h.step();
    }
    let cells = t0.elapsed().as_secs_f64() / frames as f64;
    eprintln!(
        "50-epoch DARTS run loaded: UI pass Watch {:.1} ms, Cells {:.1} ms; Watch pass + render on lavapipe {:.1} ms",
        watch * 1e3,
        cells * 1e3,
        (watch + watch_render) * 1e3
    );
}

#[test]
fn bad_settings_show_inline_errors_and_do_not_start() {
    let mut h = harness(App::new("lavapipe (test)"));
    h.run();
    h.state_mut().form.settings.epochs = 0;
    h.get_by_label("Run").click();
    h.run();
    assert!(h.state().worker.is_none() && h.state().record.is_none());
    assert!(
        h.state().errors.iter().any(|e| e.contains("epochs")),
        "{:?}",
        h.state().errors
    );
    assert!(
        h.query_by_label_contains("invalid setting `epochs`")
            .is_some()
    );
    let mut form =
        darts_pt::gui::Form::quick(darts_pt::space::SpaceName::Nb201, DatasetName::Cifar10);
    form.data_dir = "/nonexistent/cifar".into();
    h.state_mut().form = form;
    h.get_by_label("Run").click();
    h.run();
    assert!(h.state().worker.is_none());
    assert!(
        h.state()
            .errors
            .iter()
            .any(|e| e.contains("/nonexistent/cifar")),
        "{:?}",
        h.state().errors
    );
}

fn wait_for(
    h: &mut Harness<'static, App>,
    what: &str,
    timeout: Duration,
    done: impl Fn(&App) -> bool,
) {
    let t0 = Instant::now();
    while !done(h.state()) {
        assert!(
            t0.elapsed() < timeout,
            "timed out waiting for {what}: {}",
            h.state().status
        );
        std::thread::sleep(Duration::from_millis(100));
        h.step();
    }
    h.step();
}

#[test]
fn live_tiny_run_shows_a_decision_and_stops() {
    let out = std::env::temp_dir().join(format!("darts-pt-gui-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut h = harness(App::new("lavapipe (test)"));
    h.run();
    // Change a setting through the UI: the PT criterion.
    h.get_by_label("loss").click();
    h.run();
    assert_eq!(
        h.state().form.pt.crit_normal,
        darts_pt::select::Criterion::Loss
    );
    assert_eq!(
        h.state().form.pt.crit_edge,
        darts_pt::select::Criterion::Loss
    );
    {
        let f = &mut h.state_mut().form;
        f.settings.epochs = 1;
        f.settings.init_channels = 4;
        f.settings.layers = 1;
        f.settings.digits_size = 8;
        f.settings.batch_size = 32;
        f.limit_train = Some(128);
        f.pt.proj_intv = 1;
        f.out = out.display().to_string();
    }
    h.get_by_label("Run").click();
    h.step();
    assert!(h.state().worker.is_some(), "{:?}", h.state().errors);
    wait_for(&mut h, "a PT decision", Duration::from_secs(300), |a| {
        a.record.as_ref().is_some_and(|r| !r.decisions.is_empty())
    });
    assert!(h.query_by_label_contains("#1 normal cell").is_some());
    h.get_by_label("Stop").click();
    h.step();
    wait_for(&mut h, "the stop", Duration::from_secs(300), |a| {
        a.worker.is_none()
    });
    let phase = h.state().record.as_ref().unwrap().phase.clone();
    assert!(matches!(phase, Phase::Stopped | Phase::Done), "{phase:?}");
    assert!(Path::new(&out).join("config.toml").exists());
    // The stopped run resumes to the end from the app.
    if phase == Phase::Stopped {
        h.get_by_label("Resume run").click();
        h.step();
        assert!(h.state().worker.is_some());
        wait_for(&mut h, "the end", Duration::from_secs(300), |a| {
            a.worker.is_none()
        });
        assert_eq!(h.state().record.as_ref().unwrap().phase, Phase::Done);
    }
    assert!(out.join("genotype_pt.txt").exists());
    std::fs::remove_dir_all(&out).ok();
}

/// Import from the app (issue 18): no file is an inline error; the reference's NAS-Bench-201
/// checkpoint with the form's space, dataset and sizes becomes a run that opens, resumable (PT).
#[test]
fn import_from_the_app_opens_the_imported_run() {
    let mut h = harness(App::new("lavapipe (test)"));
    h.run();
    h.get_by_label("Import").click();
    h.run();
    assert!(
        h.state()
            .errors
            .iter()
            .any(|e| e.contains("checkpoint file")),
        "{:?}",
        h.state().errors
    );
    let Some(shared) = crate::shared_dir() else {
        return;
    };
    let out = std::env::temp_dir().join(format!("darts-pt-gui-import-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let mut form =
        darts_pt::gui::Form::quick(darts_pt::space::SpaceName::Nb201, DatasetName::Cifar10);
    form.data_dir = shared.join("data/cifar10-subset").display().to_string();
    // The reference supernet's sizes (the paper's NAS-Bench-201 supernet).
    form.settings.init_channels = 16;
    form.settings.layers = 5;
    form.out = out.display().to_string();
    h.state_mut().form = form;
    h.state_mut().import_path = shared
        .join("fixtures/nb201/supernet.pt")
        .display()
        .to_string();
    h.get_by_label("Import").click();
    h.run();
    wait_for(&mut h, "the import", Duration::from_secs(120), |a| {
        a.importing.is_none()
    });
    let app = h.state();
    assert!(app.errors.is_empty(), "{:?}", app.errors);
    let r = app.record.as_ref().expect("the imported run is open");
    assert!(r.magnitude.is_some() && r.pt.is_none(), "{}", app.status);
    assert_eq!(r.phase, Phase::Stopped);
    assert!(app.status.contains("imported"), "{}", app.status);
    assert!(out.join("genotype_magnitude.txt").is_file());
    let _ = std::fs::remove_dir_all(&out);
}
