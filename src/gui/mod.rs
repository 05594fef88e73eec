//! The desktop app (`darts-pt gui`, cargo feature `gui`): configure a run, watch the supernet learn
//! and PT decide, browse finished runs. eframe/egui with the wgpu renderer; the job runs on a
//! worker thread ([`worker`]) and reaches the UI as events folded into a [`record::RunRecord`].
//!
//! Views: **Configure** (every option of `darts-pt run`, presets, config.toml load/save),
//! **Watch** (loss and accuracy curves, α per edge as lines and as an edge × op heatmap, the
//! parameter-free share and a collapse warning, PT score tables), **Cells** (normal / reduce or
//! NAS-Bench-201 cell drawings of the magnitude genotype, the PT genotype or the current mixed
//! state, disagreements, genotype and PNG export). A status bar shows the phase, a progress bar
//! with ETA, pause / resume / stop, and the GPU adapter.

pub mod cells;
#[cfg(target_arch = "wasm32")]
pub mod page;
pub mod platform;
pub mod record;
pub mod worker;

use std::path::{Path, PathBuf};

use eframe::egui::{self, Color32, RichText};
use egui_plot::{Legend, Line, Plot, PlotPoints};

use crate::data::DatasetName;
use crate::device::Backend;
use crate::job::JobEnd;
use crate::run::{self, SearchSettings};
use crate::search::Method;
use crate::select::{Choice, Criterion, EdgeOrder, EvalMode, PtSettings, TopologyMode};
use crate::space::{CellType, SpaceName};
use cells::GenotypeSource;
use record::{Phase, RunRecord};
use worker::{Message, Worker};

/// The app's tabs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tab {
    /// Settings of a new run.
    Configure,
    /// Curves, α and PT decisions.
    Watch,
    /// Cell drawings and genotypes.
    Cells,
}

/// The editable settings of a new run.
#[derive(Clone, Debug)]
pub struct Form {
    /// Search settings.
    pub settings: SearchSettings,
    /// PT settings.
    pub pt: PtSettings,
    /// Dataset directory as typed.
    pub data_dir: String,
    /// Run directory to write.
    pub out: String,
    /// Use only the first N training images.
    pub limit_train: Option<usize>,
}

impl Form {
    /// The quick preset on the embedded digits in the NAS-Bench-201 space.
    pub fn quick(space: SpaceName, dataset: DatasetName) -> Self {
        let mut settings = SearchSettings::reference(space, dataset);
        settings.apply_quick_preset();
        let mut pt = PtSettings {
            tune_lr: settings.hyper.learning_rate / 10.0,
            proj_intv: 1,
            ..PtSettings::default()
        };
        if space != SpaceName::Nb201 {
            pt.eval_limit = Some(256);
        }
        Form {
            limit_train: settings.limit_train,
            out: format!("runs/gui-{space}-{dataset}-s{}", settings.seed),
            data_dir: String::new(),
            settings,
            pt,
        }
    }

    /// The settings as the engine takes them.
    pub fn resolved(&self) -> (SearchSettings, PtSettings) {
        let mut s = self.settings.clone();
        s.data_dir =
            (!self.data_dir.trim().is_empty()).then(|| PathBuf::from(self.data_dir.trim()));
        s.limit_train = self.limit_train;
        (s, self.pt.clone())
    }

    /// Every problem that keeps the run from starting, with the engine's own messages.
    pub fn problems(&self) -> Vec<String> {
        let (s, pt) = self.resolved();
        let mut out = Vec::new();
        if let Err(e) = s.validate() {
            out.push(e.to_string());
        }
        if let Err(e) = pt.validate() {
            out.push(e.to_string());
        }
        if !platform::HAS_FILES {
            #[cfg(target_arch = "wasm32")]
            if let Err(e) = page::supported(&s, &pt) {
                out.push(e.to_string());
            }
        } else if self.out.trim().is_empty() {
            out.push("invalid setting `out`: give a run directory".into());
        } else if crate::rundir::RunDir::new(self.out.trim()).holds_run() {
            out.push(format!(
                "invalid setting `out`: {} already holds a run; open it to browse or resume it, or choose another directory",
                self.out.trim()
            ));
        }
        if out.is_empty() {
            match run::open_dataset(&s) {
                Ok((ds, _, _)) => {
                    if let Err(e) = s.supernet_config(&ds).validate() {
                        out.push(e.to_string());
                    }
                }
                Err(e) => out.push(e.to_string()),
            }
        }
        out
    }
}

/// View options of the Watch and Cells tabs.
#[derive(Clone, Debug)]
pub struct ViewState {
    /// Cell type shown in the α views.
    pub cell: CellType,
    /// Edge of the α line plot.
    pub edge: usize,
    /// Epoch of the heatmap (`None` = newest).
    pub epoch: Option<usize>,
    /// What the cell drawing shows.
    pub source: GenotypeSource,
}

impl ViewState {
    /// Keep the view inside `space`: a cell type it has (a DARTS run's reduce cell does not exist
    /// in an NB201 run) and an edge of that cell type.
    pub fn fit(&mut self, space: &crate::space::SearchSpace) {
        if !space.cell_types().contains(&self.cell) {
            self.cell = CellType::Normal;
        }
        let edges = space.edges(self.cell).len();
        self.edge = self.edge.min(edges.saturating_sub(1));
    }
}

/// The app.
pub struct App {
    /// Current tab.
    pub tab: Tab,
    /// Settings of a new run.
    pub form: Form,
    /// Why the last Run click did not start.
    pub errors: Vec<String>,
    /// The run on screen.
    pub record: Option<RunRecord>,
    /// The running job.
    pub worker: Option<Worker>,
    /// Path typed into "Open run".
    pub open_path: String,
    /// View options.
    pub view: ViewState,
    /// GPU adapter drawing the UI.
    pub adapter: String,
    /// Last status message.
    pub status: String,
    /// Where the cell drawing was painted (for the PNG export).
    pub drawing_rect: Option<egui::Rect>,
    /// Ask for a screenshot of the drawing after this frame.
    pub export_png: Option<PathBuf>,
    /// The reference checkpoint typed or picked for "Import" (desktop).
    pub import_path: String,
    /// A running import: its run directory and where its result arrives (desktop).
    pub importing: Option<(
        PathBuf,
        std::sync::mpsc::Receiver<std::result::Result<String, String>>,
    )>,
}

impl App {
    /// A new app showing the Configure tab; `adapter` describes the GPU adapter.
    pub fn new(adapter: impl Into<String>) -> Self {
        App {
            tab: Tab::Configure,
            form: Form::quick(SpaceName::Nb201, DatasetName::Digits),
            errors: Vec::new(),
            record: None,
            worker: None,
            open_path: String::new(),
            view: ViewState {
                cell: CellType::Normal,
                edge: 0,
                epoch: None,
                source: GenotypeSource::Current,
            },
            adapter: adapter.into(),
            status: String::new(),
            drawing_rect: None,
            export_png: None,
            import_path: String::new(),
            importing: None,
        }
    }

    /// Import the reference checkpoint in `import_path` into the form's run directory with the
    /// form's space, dataset and sizes (what `darts-pt import` needs), on a thread (desktop).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn start_import(&mut self, ctx: &egui::Context) {
        self.errors = self.form.problems();
        let path = PathBuf::from(self.import_path.trim());
        if self.import_path.trim().is_empty() {
            self.errors
                .push("Import: choose the checkpoint file first".into());
        }
        if !self.errors.is_empty() {
            return;
        }
        let (s, _) = self.form.resolved();
        let dir = PathBuf::from(self.form.out.trim());
        let ctx = ctx.clone();
        let rx = platform::spawn_import(
            path,
            s,
            dir.clone(),
            Box::new(move || ctx.request_repaint()),
        );
        self.importing = Some((dir.clone(), rx));
        self.status = format!("importing into {}…", dir.display());
    }

    /// Open a finished import (never blocks): the run is shown, ready for "Resume run", which
    /// runs PT selection on the imported supernet with the form's PT settings.
    fn poll_import(&mut self) {
        let Some((dir, rx)) = &self.importing else {
            return;
        };
        let Ok(result) = rx.try_recv() else { return };
        let dir = dir.clone();
        self.importing = None;
        match result {
            Ok(genotype) => {
                self.open(&dir);
                if let Some(r) = &mut self.record {
                    r.phase = Phase::Stopped;
                    r.pt_settings = Some(self.form.resolved().1);
                }
                self.status = format!(
                    "imported into {} (magnitude genotype {genotype}); Resume run runs PT selection",
                    dir.display()
                );
            }
            Err(e) => {
                self.status = "import failed".into();
                self.errors = vec![format!("import: {e}")];
            }
        }
    }

    /// Open a run directory for browsing.
    pub fn open(&mut self, dir: &Path) {
        match RunRecord::load(dir) {
            Ok(r) => {
                self.status = format!("opened {}", dir.display());
                self.form.out = dir.display().to_string();
                self.view.fit(&r.space());
                self.record = Some(r);
                self.tab = Tab::Watch;
                self.view.edge = 0;
                self.view.epoch = None;
                self.view.source = GenotypeSource::Pt;
            }
            Err(e) => self.status = format!("cannot open {}: {e}", dir.display()),
        }
    }

    /// Start the configured run (or show why it cannot start).
    pub fn start(&mut self, ctx: &egui::Context) {
        self.errors = self.form.problems();
        if !self.errors.is_empty() {
            return;
        }
        let (s, pt) = self.form.resolved();
        let dir = PathBuf::from(self.form.out.trim());
        let mut record = RunRecord::new(s.clone(), Some(pt.clone()));
        record.run_dir = Some(dir.clone());
        self.view.fit(&record.space());
        self.record = Some(record);
        let ctx = ctx.clone();
        self.worker = Some(Worker::start(s, pt, dir, false, move || {
            ctx.request_repaint()
        }));
        self.tab = Tab::Watch;
        self.view.source = GenotypeSource::Current;
        self.status = "running".into();
    }

    /// Resume the stopped run on screen.
    pub fn resume(&mut self, ctx: &egui::Context) {
        let Some(r) = &self.record else { return };
        let Some(dir) = r.run_dir.clone() else { return };
        let pt = r.pt_settings.clone().unwrap_or_default();
        let ctx = ctx.clone();
        self.worker = Some(Worker::start(
            r.settings.clone(),
            pt,
            dir,
            true,
            move || ctx.request_repaint(),
        ));
        self.status = "resumed".into();
    }

    /// Fold the worker's messages into the record (never blocks).
    pub fn poll(&mut self) {
        let Some(w) = &self.worker else { return };
        let mut ended = None;
        for m in w.rx.try_iter() {
            match m {
                Message::Event(e) => {
                    if let Some(r) = &mut self.record {
                        r.apply(&e);
                    }
                }
                Message::Ended(res) => ended = Some(res),
            }
        }
        if let Some(res) = ended {
            if let Some(r) = &mut self.record {
                match res {
                    Ok(JobEnd::Finished) => r.phase = Phase::Done,
                    Ok(_) => r.phase = Phase::Stopped,
                    Err(e) => r.phase = Phase::Failed(e),
                }
            }
            self.status = match self.record.as_ref().map(|r| &r.phase) {
                Some(Phase::Done) => "finished".into(),
                Some(Phase::Stopped) => "stopped; resumable".into(),
                Some(Phase::Failed(e)) => format!("failed: {e}"),
                _ => String::new(),
            };
            self.worker = None;
        }
    }

    /// Draw the whole app into `ui` (the eframe window, or a test harness).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        self.poll();
        self.poll_import();
        if self.worker.is_some() {
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(200));
        }
        egui::Panel::top("top").show(ui, |ui| self.top_bar(ui));
        egui::Panel::bottom("status").show(ui, |ui| self.status_bar(ui));
        egui::CentralPanel::default_margins().show(ui, |ui| {
            egui::ScrollArea::vertical().show(ui, |ui| match self.tab {
                Tab::Configure => self.configure(ui),
                Tab::Watch => self.watch(ui),
                Tab::Cells => self.cells(ui),
            });
        });
        if let (Some(path), Some(rect)) = (self.export_png.take(), self.drawing_rect) {
            let ppp = ui.ctx().pixels_per_point();
            ui.ctx().request_screenshot(move |image| {
                let region = image.region(&rect, Some(ppp));
                let [w, h] = region.size;
                let bytes: Vec<u8> = region.pixels.iter().flat_map(|c| c.to_array()).collect();
                let mut png = std::io::Cursor::new(Vec::new());
                if let Some(img) = image::RgbaImage::from_raw(w as u32, h as u32, bytes)
                    && img.write_to(&mut png, image::ImageFormat::Png).is_ok()
                {
                    let dir = path.parent().unwrap_or(Path::new("."));
                    let name = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or("cells.png");
                    let _ = platform::save_file(dir, name, &png.into_inner());
                }
            });
            self.status = "PNG export requested".into();
        }
    }

    fn top_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal_wrapped(|ui| {
            ui.heading("darts-pt");
            ui.separator();
            ui.selectable_value(&mut self.tab, Tab::Configure, "Configure");
            ui.selectable_value(&mut self.tab, Tab::Watch, "Watch");
            ui.selectable_value(&mut self.tab, Tab::Cells, "Cells");
            if platform::HAS_FILES {
                ui.separator();
                let l = ui.label("Run directory:");
                ui.add(egui::TextEdit::singleline(&mut self.open_path).desired_width(220.0))
                    .labelled_by(l.id);
                if ui.button("Browse…").clicked()
                    && let Some(p) = platform::pick_folder()
                {
                    self.open_path = p.display().to_string();
                }
                if ui.button("Open run").clicked() && !self.open_path.trim().is_empty() {
                    let p = PathBuf::from(self.open_path.trim());
                    self.open(&p);
                }
            }
            ui.separator();
            let mut pref = ui.ctx().options(|o| o.theme_preference);
            for (p, label) in [
                (egui::ThemePreference::Light, "Light"),
                (egui::ThemePreference::Dark, "Dark"),
                (egui::ThemePreference::System, "System"),
            ] {
                if ui.selectable_value(&mut pref, p, label).clicked() {
                    ui.ctx().set_theme(pref);
                }
            }
        });
    }

    fn status_bar(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            let phase = self
                .record
                .as_ref()
                .map(|r| r.phase.clone())
                .unwrap_or(Phase::Idle);
            let text = match &phase {
                Phase::Idle => "idle".to_string(),
                Phase::Search => "search".to_string(),
                Phase::Selection => "PT selection".to_string(),
                Phase::Done => "done".to_string(),
                Phase::Stopped => "stopped (resumable)".to_string(),
                Phase::Failed(e) => format!("failed: {e}"),
            };
            ui.label(RichText::new(text).strong());
            if let Some(p) = self.record.as_ref().and_then(|r| r.progress.as_ref()) {
                let eta = p
                    .eta_seconds()
                    .map_or(String::new(), |s| format!("  ETA {}", fmt_seconds(s)));
                ui.add(
                    egui::ProgressBar::new(p.fraction())
                        .desired_width(260.0)
                        .text(format!("{}/{}{eta}", p.done, p.total)),
                );
            }
            if let Some(w) = &self.worker {
                let paused = w.control.paused();
                if ui.button(if paused { "Resume" } else { "Pause" }).clicked() {
                    w.control.set_paused(!paused);
                }
                if ui.button("Stop").clicked() {
                    w.control.request_stop();
                    self.status = "stopping at the next checkpoint…".into();
                }
            } else if matches!(phase, Phase::Stopped)
                && self.record.as_ref().is_some_and(|r| r.run_dir.is_some())
                && ui.button("Resume run").clicked()
            {
                let ctx = ui.ctx().clone();
                self.resume(&ctx);
            }
            ui.separator();
            ui.label(&self.status);
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.label(format!("GPU adapter: {}", self.adapter));
                if let Some(r) = &self.record
                    && !r.device.is_empty()
                {
                    ui.label(format!("compute: {} |", r.device));
                }
            });
        });
    }

    fn configure(&mut self, ui: &mut egui::Ui) {
        let f = &mut self.form;
        ui.horizontal(|ui| {
            ui.label("Preset:");
            if ui.button("Quick (CPU-sized)").clicked() {
                *f = Form::quick(f.settings.space, f.settings.dataset);
            }
            if ui.button("Paper").clicked() {
                let mut s = SearchSettings::reference(f.settings.space, f.settings.dataset);
                s.device = f.settings.device;
                f.pt = PtSettings {
                    tune_lr: s.hyper.learning_rate / 10.0,
                    ..PtSettings::default()
                };
                f.limit_train = None;
                f.settings = s;
            }
        });
        egui::Grid::new("configure")
            .num_columns(2)
            .striped(true)
            .show(ui, |ui| {
                let l = ui.label("Search space");
                let mut space = f.settings.space;
                egui::ComboBox::from_id_salt("space")
                    .selected_text(space.to_string())
                    .show_ui(ui, |ui| {
                        for s in [
                            SpaceName::Nb201,
                            SpaceName::Darts,
                            SpaceName::Darts8,
                            SpaceName::S1,
                            SpaceName::S2,
                            SpaceName::S3,
                            SpaceName::S4,
                        ] {
                            ui.selectable_value(&mut space, s, s.to_string());
                        }
                    })
                    .response
                    .labelled_by(l.id);
                if space != f.settings.space {
                    *f = Form::quick(space, f.settings.dataset);
                }
                ui.end_row();
                let l = ui.label("Dataset");
                egui::ComboBox::from_id_salt("dataset")
                    .selected_text(f.settings.dataset.to_string())
                    .show_ui(ui, |ui| {
                        for d in DatasetName::ALL {
                            ui.selectable_value(&mut f.settings.dataset, d, d.to_string());
                        }
                    })
                    .response
                    .labelled_by(l.id);
                ui.end_row();
                if platform::HAS_FILES {
                    let l = ui.label("Dataset directory");
                    ui.horizontal(|ui| {
                        ui.add(egui::TextEdit::singleline(&mut f.data_dir).desired_width(300.0))
                            .labelled_by(l.id);
                        if ui.button("Pick…").clicked()
                            && let Some(p) = platform::pick_folder()
                        {
                            f.data_dir = p.display().to_string();
                        }
                    });
                    ui.end_row();
                }
                let l = ui.label("Method");
                egui::ComboBox::from_id_salt("method")
                    .selected_text(f.settings.method.as_str())
                    .show_ui(ui, |ui| {
                        for m in [
                            Method::Darts,
                            Method::SdartsRs,
                            Method::SdartsAdv,
                            Method::Blank,
                        ] {
                            ui.selectable_value(&mut f.settings.method, m, m.as_str());
                        }
                    })
                    .response
                    .labelled_by(l.id);
                ui.end_row();
                ui.label("Second order");
                ui.checkbox(&mut f.settings.second_order, "DARTS 2nd-order α gradient");
                ui.end_row();
                let l = ui.label("Epochs");
                ui.add(egui::DragValue::new(&mut f.settings.epochs).range(0..=10_000))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Batch size");
                ui.add(egui::DragValue::new(&mut f.settings.batch_size).range(0..=4096))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Seed");
                ui.add(egui::DragValue::new(&mut f.settings.seed))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Training images");
                ui.horizontal(|ui| {
                    let mut all = f.limit_train.is_none();
                    if ui.checkbox(&mut all, "all").changed() {
                        f.limit_train = if all { None } else { Some(2000) };
                    }
                    if let Some(n) = &mut f.limit_train {
                        ui.add(egui::DragValue::new(n).range(2..=1_000_000))
                            .labelled_by(l.id);
                    }
                });
                ui.end_row();
                let l = ui.label("Initial channels C");
                ui.add(egui::DragValue::new(&mut f.settings.init_channels).range(2..=256))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Layers (cells / per stage)");
                ui.add(egui::DragValue::new(&mut f.settings.layers).range(1..=50))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Learning rate");
                ui.add(egui::DragValue::new(&mut f.settings.hyper.learning_rate).speed(0.001))
                    .labelled_by(l.id);
                ui.end_row();
                ui.label("Augmentation");
                ui.horizontal(|ui| {
                    ui.checkbox(&mut f.settings.augment, "crop + flip");
                    ui.checkbox(&mut f.settings.cutout, "cutout (ramped)");
                });
                ui.end_row();
                ui.label("Device");
                ui.horizontal(|ui| {
                    ui.selectable_value(&mut f.settings.device, Backend::Cpu, "cpu (flex)");
                    ui.selectable_value(&mut f.settings.device, Backend::Wgpu, "wgpu");
                });
                ui.end_row();
                ui.label("PT criterion");
                ui.horizontal(|ui| {
                    // One criterion for every decision here; the CLI sets them one by one.
                    let mut c = f.pt.crit_normal;
                    ui.selectable_value(&mut c, Criterion::Acc, "acc");
                    ui.selectable_value(&mut c, Criterion::Loss, "loss");
                    if c != f.pt.crit_normal {
                        f.pt.set_crit(c);
                    }
                });
                ui.end_row();
                ui.label("PT edge order");
                ui.horizontal(|ui| {
                    ui.selectable_value(&mut f.pt.edge_order, EdgeOrder::Random, "random");
                    ui.selectable_value(&mut f.pt.edge_order, EdgeOrder::Fixed, "fixed");
                });
                ui.end_row();
                let l = ui.label("PT evaluation");
                ui.horizontal(|ui| {
                    ui.selectable_value(&mut f.pt.eval, EvalMode::Reference, "reference");
                    ui.selectable_value(&mut f.pt.eval, EvalMode::Deterministic, "deterministic");
                    let mut all = f.pt.eval_limit.is_none();
                    if ui.checkbox(&mut all, "all validation images").changed() {
                        f.pt.eval_limit = if all { None } else { Some(256) };
                    }
                    if let Some(n) = &mut f.pt.eval_limit {
                        ui.add(egui::DragValue::new(n).range(0..=1_000_000))
                            .labelled_by(l.id);
                    }
                });
                ui.end_row();
                let l = ui.label("Tuning epochs between decisions");
                ui.add(egui::DragValue::new(&mut f.pt.proj_intv).range(0..=100))
                    .labelled_by(l.id);
                ui.end_row();
                let l = ui.label("Tuning learning rate");
                ui.add(egui::DragValue::new(&mut f.pt.tune_lr).speed(0.0001))
                    .labelled_by(l.id);
                ui.end_row();
                ui.label("Topology loop");
                ui.horizontal(|ui| {
                    ui.selectable_value(&mut f.pt.topology, TopologyMode::Reference, "reference");
                    ui.selectable_value(&mut f.pt.topology, TopologyMode::Corrected, "corrected");
                });
                ui.end_row();
                if platform::HAS_FILES {
                    let l = ui.label("Run directory");
                    ui.add(egui::TextEdit::singleline(&mut f.out).desired_width(300.0))
                        .labelled_by(l.id);
                    ui.end_row();
                }
            });
        ui.horizontal(|ui| {
            let running = self.worker.is_some();
            if ui
                .add_enabled(!running, egui::Button::new(RichText::new("Run").strong()))
                .clicked()
            {
                let ctx = ui.ctx().clone();
                self.start(&ctx);
            }
            if platform::HAS_FILES && ui.button("Load config.toml").clicked() {
                let dir = PathBuf::from(self.form.out.trim());
                match crate::rundir::read_settings(&crate::rundir::RunDir::new(&dir)) {
                    Ok(s) => {
                        self.form.data_dir = s
                            .data_dir
                            .as_ref()
                            .map_or(String::new(), |p| p.display().to_string());
                        self.form.limit_train = s.limit_train;
                        self.form.settings = s;
                        self.status = format!(
                            "loaded {}",
                            crate::rundir::RunDir::new(&dir)
                                .path(crate::rundir::RunDir::CONFIG)
                                .display()
                        );
                    }
                    Err(e) => self.errors = vec![e.to_string()],
                }
            }
            if platform::HAS_FILES && ui.button("Save config.toml").clicked() {
                let (s, _) = self.form.resolved();
                let path = crate::rundir::RunDir::new(self.form.out.trim())
                    .path(crate::rundir::RunDir::CONFIG);
                let res = toml::to_string_pretty(&s)
                    .map_err(|e| e.to_string())
                    .and_then(|t| {
                        crate::rundir::write_atomic(&path, t.as_bytes()).map_err(|e| e.to_string())
                    });
                self.status = match res {
                    Ok(()) => format!("saved {}", path.display()),
                    Err(e) => e,
                };
            }
        });
        #[cfg(not(target_arch = "wasm32"))]
        {
            ui.separator();
            ui.label(RichText::new("Import a reference checkpoint").strong());
            ui.label(
                "A supernet saved by the reference's train_search.py (.pt / .pth.tar, or \
                 safetensors with the same names), with the space, dataset, dataset directory, \
                 C, layers and run directory above (as `darts-pt import`).",
            );
            ui.horizontal(|ui| {
                let l = ui.label("Checkpoint");
                ui.add(egui::TextEdit::singleline(&mut self.import_path).desired_width(360.0))
                    .labelled_by(l.id);
                if ui.button("Pick…").clicked()
                    && let Some(p) = platform::pick_checkpoint()
                {
                    self.import_path = p.display().to_string();
                }
                let busy = self.worker.is_some() || self.importing.is_some();
                if ui.add_enabled(!busy, egui::Button::new("Import")).clicked() {
                    let ctx = ui.ctx().clone();
                    self.start_import(&ctx);
                }
            });
        }
        for e in &self.errors {
            ui.colored_label(Color32::from_rgb(220, 50, 50), e);
        }
    }

    fn watch(&mut self, ui: &mut egui::Ui) {
        let Some(r) = &self.record else {
            ui.label("No run yet: configure one and press Run, or open a run directory.");
            return;
        };
        ui.label(format!(
            "{} on {}, method {}, {} search epochs, {} PT decisions",
            r.settings.space,
            r.settings.dataset,
            r.settings.method.as_str(),
            r.epochs.len(),
            r.decisions.len()
        ));
        ui.columns(2, |cols| {
            let n = r.epochs.len() as f64;
            let pts = |f: &dyn Fn(&run::EpochMetrics) -> f64| -> Vec<[f64; 2]> {
                r.epochs
                    .iter()
                    .map(|m| [m.epoch as f64 + 1.0, f(m)])
                    .collect()
            };
            let tune = |f: &dyn Fn(&crate::select::TuneMetrics) -> f64| -> Vec<[f64; 2]> {
                r.tune
                    .iter()
                    .map(|m| [n + m.epoch as f64 + 1.0, f(m)])
                    .collect()
            };
            cols[0].label("Loss (search, then PT tuning)");
            Plot::new("loss")
                .height(180.0)
                .legend(Legend::default())
                .show(&mut cols[0], |p| {
                    p.line(Line::new("train", PlotPoints::from(pts(&|m| m.train_loss))));
                    p.line(Line::new("valid", PlotPoints::from(pts(&|m| m.valid_loss))));
                    p.line(Line::new(
                        "tune train",
                        PlotPoints::from(tune(&|m| m.train_loss)),
                    ));
                    p.line(Line::new(
                        "tune valid",
                        PlotPoints::from(tune(&|m| m.valid_loss)),
                    ));
                });
            cols[1].label("Accuracy (%)");
            Plot::new("acc")
                .height(180.0)
                .legend(Legend::default())
                .show(&mut cols[1], |p| {
                    p.line(Line::new("train", PlotPoints::from(pts(&|m| m.train_acc))));
                    p.line(Line::new("valid", PlotPoints::from(pts(&|m| m.valid_acc))));
                    p.line(Line::new(
                        "tune train",
                        PlotPoints::from(tune(&|m| m.train_acc)),
                    ));
                    p.line(Line::new(
                        "tune valid",
                        PlotPoints::from(tune(&|m| m.valid_acc)),
                    ));
                });
        });
        ui.separator();
        self.alpha_views(ui);
        ui.separator();
        self.decision_tables(ui);
    }

    fn alpha_views(&mut self, ui: &mut egui::Ui) {
        let Some(r) = &self.record else { return };
        let space = r.space();
        self.view.fit(&space);
        ui.horizontal(|ui| {
            ui.label(RichText::new("α (softmax)").strong());
            for &c in space.cell_types() {
                ui.selectable_value(&mut self.view.cell, c, c.name());
            }
            let edges = space.edges(self.view.cell);
            self.view.edge = self.view.edge.min(edges.len().saturating_sub(1));
            let l = ui.label("edge");
            egui::ComboBox::from_id_salt("edge")
                .selected_text(edge_name(&space, self.view.cell, self.view.edge))
                .show_ui(ui, |ui| {
                    for e in 0..edges.len() {
                        ui.selectable_value(
                            &mut self.view.edge,
                            e,
                            edge_name(&space, self.view.cell, e),
                        );
                    }
                })
                .response
                .labelled_by(l.id);
            if !r.epochs.is_empty() {
                let last = r.epochs.last().map_or(0, |m| m.epoch);
                let mut e = self.view.epoch.unwrap_or(last);
                let l = ui.label("heatmap epoch");
                ui.add(egui::Slider::new(&mut e, 0..=last))
                    .labelled_by(l.id);
                self.view.epoch = (e != last).then_some(e);
            }
        });
        for &c in space.cell_types() {
            if let Some(share) = r.parameter_free_share(c, self.view.epoch) {
                ui.label(format!(
                    "{} cell: parameter-free ops hold {:.1}% of the softmax weight",
                    c.name(),
                    100.0 * share
                ));
            }
        }
        if let Some(w) = r.collapse_warning() {
            ui.colored_label(Color32::from_rgb(230, 120, 20), w);
        }
        let edge = &space.edges(self.view.cell)[self.view.edge];
        let cell = self.view.cell;
        ui.columns(2, |cols| {
            Plot::new("alpha_lines")
                .height(200.0)
                .legend(Legend::default())
                .include_y(0.0)
                .show(&mut cols[0], |p| {
                    for (k, op) in edge.ops.iter().enumerate() {
                        let pts: Vec<[f64; 2]> = r
                            .epochs
                            .iter()
                            .filter_map(|m| {
                                let row = m.softmax_alpha.get(cell.index())?.get(self.view.edge)?;
                                Some([m.epoch as f64 + 1.0, *row.get(k)? as f64])
                            })
                            .collect();
                        p.line(Line::new(op.name(), PlotPoints::from(pts)));
                    }
                });
            cells::heatmap(&mut cols[1], &space, cell, r.alpha(cell, self.view.epoch));
        });
    }

    fn decision_tables(&mut self, ui: &mut egui::Ui) {
        let Some(r) = &self.record else { return };
        ui.label(RichText::new(format!("PT decisions ({})", r.decisions.len())).strong());
        let n = r.decisions.len();
        for d in &r.decisions {
            let what = d.summary(&r.space());
            egui::CollapsingHeader::new(format!(
                "#{} {} cell: {what} ({:.1} s)",
                d.index + 1,
                d.cell,
                d.seconds
            ))
            .id_salt(("decision", d.index))
            .default_open(d.index + 1 == n)
            .show(ui, |ui| {
                egui::Grid::new(("scores", d.index))
                    .striped(true)
                    .show(ui, |ui| {
                        ui.label("removed");
                        ui.label("accuracy after removal (%)");
                        ui.label("loss after removal");
                        ui.end_row();
                        for c in &d.candidates {
                            let name =
                                c.op.map_or_else(|| format!("edge {}", c.edge), |o| o.to_string());
                            let chosen = match &d.choice {
                                Choice::Op { chosen_op, .. } => c.op == Some(*chosen_op),
                                Choice::Topology { kept_edges, .. } => {
                                    kept_edges.contains(&c.edge) && c.round == 0
                                }
                            };
                            let style = |t: String| {
                                if chosen {
                                    RichText::new(t)
                                        .strong()
                                        .color(Color32::from_rgb(40, 160, 70))
                                } else {
                                    RichText::new(t)
                                }
                            };
                            ui.label(style(if c.round > 0 {
                                format!("{name} (round {})", c.round)
                            } else {
                                name
                            }));
                            ui.label(style(format!("{:.2}", c.accuracy)));
                            ui.label(style(format!("{:.4}", c.loss)));
                            ui.end_row();
                        }
                    });
            });
        }
    }

    fn cells(&mut self, ui: &mut egui::Ui) {
        let Some(r) = &self.record else {
            ui.label("No run yet.");
            return;
        };
        ui.horizontal(|ui| {
            ui.label("Show:");
            ui.selectable_value(
                &mut self.view.source,
                GenotypeSource::Current,
                "current (α + PT decisions)",
            );
            ui.selectable_value(
                &mut self.view.source,
                GenotypeSource::Magnitude,
                "magnitude genotype",
            );
            ui.selectable_value(&mut self.view.source, GenotypeSource::Pt, "PT genotype");
        });
        let rect = cells::draw(ui, r, self.view.source);
        self.drawing_rect = Some(rect);
        ui.separator();
        for (label, g) in [("magnitude", &r.magnitude), ("PT", &r.pt)] {
            ui.horizontal_wrapped(|ui| {
                ui.label(RichText::new(format!("{label}:")).strong());
                ui.label(g.as_deref().unwrap_or("(not yet)"));
                if let Some(arch) = g
                    .as_deref()
                    .and_then(|t| t.parse::<crate::genotype::Nb201Arch>().ok())
                {
                    let l = crate::nb201::Table::embedded().lookup(&arch);
                    ui.label(format!("NAS-Bench-201: {l}"));
                }
            });
        }
        for d in cells::disagreements(r) {
            ui.colored_label(Color32::from_rgb(230, 120, 20), format!("differs: {d}"));
        }
        ui.horizontal(|ui| {
            let text = match self.view.source {
                GenotypeSource::Magnitude => r.magnitude.clone(),
                _ => r.pt.clone(),
            };
            if ui.button("Copy genotype").clicked()
                && let Some(t) = &text
            {
                ui.ctx().copy_text(t.clone());
                self.status = "genotype copied".into();
            }
            let base = r.run_dir.clone().unwrap_or_else(|| PathBuf::from("."));
            if ui.button("Save genotype").clicked()
                && let Some(t) = &text
            {
                let name = if platform::HAS_FILES {
                    "genotype_export.txt"
                } else {
                    "genotype.txt"
                };
                self.status = platform::save_file(&base, name, format!("{t}\n").as_bytes())
                    .unwrap_or_else(|e| e);
            }
            if ui.button("Save metrics").clicked() {
                self.status = r
                    .summary_json()
                    .and_then(|b| platform::save_file(&base, "metrics_export.json", &b))
                    .unwrap_or_else(|e| e);
            }
            if ui.button("Save view as PNG").clicked() {
                self.export_png = Some(base.join("cells.png"));
            }
            // The report's figures (curves, α, PT scores, both cells), drawn from the record by
            // the same code as `report.md`'s: PNG files on the desktop, SVG downloads in the page.
            if ui.button("Save figures").clicked() {
                let format = crate::figures::Format::for_report();
                self.status = crate::figures::run_figures(&r.figure_data(), format)
                    .map_err(|e| e.to_string())
                    .and_then(|figs| {
                        let mut saved = Vec::new();
                        for f in figs {
                            let name = format!("figure_{}.{}", f.name, format.extension());
                            platform::save_file(&base, &name, &f.bytes)?;
                            saved.push(name);
                        }
                        Ok(if saved.is_empty() {
                            "no figures yet".to_string()
                        } else if platform::HAS_FILES {
                            format!("saved {} in {}", saved.join(", "), base.display())
                        } else {
                            format!("downloaded {}", saved.join(", "))
                        })
                    })
                    .unwrap_or_else(|e| e);
            }
        });
    }
}

fn edge_name(space: &crate::space::SearchSpace, cell: CellType, e: usize) -> String {
    format!("edge {e}: {}", space.edge_label(cell, e))
}

fn fmt_seconds(s: f64) -> String {
    let s = s.round() as u64;
    format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

impl eframe::App for App {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }
}

/// The GPU adapter eframe draws with, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)`
/// (browsers leave the name empty: `(BrowserWebGpu, Cpu)`), or `none`.
pub fn adapter_label(cc: &eframe::CreationContext<'_>) -> String {
    cc.wgpu_render_state.as_ref().map_or_else(
        || "none".to_string(),
        |s| {
            let i = s.adapter.get_info();
            format!("{} ({:?}, {:?})", i.name, i.backend, i.device_type)
                .trim_start()
                .to_string()
        },
    )
}

#[cfg(not(target_arch = "wasm32"))]
/// Open the desktop app (1280×800), optionally showing the run in `open`, or starting the default
/// (quick) run into the directory `start` right away.
pub fn run_app(open: Option<PathBuf>, start: Option<PathBuf>) -> std::result::Result<(), String> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_inner_size([1280.0, 800.0])
            .with_min_inner_size([960.0, 600.0])
            .with_title("darts-pt"),
        ..Default::default()
    };
    eframe::run_native(
        "darts-pt",
        options,
        Box::new(move |cc| {
            let mut app = App::new(adapter_label(cc));
            if let Some(dir) = &open {
                app.open(dir);
            }
            if let Some(dir) = &start {
                app.form.out = dir.display().to_string();
                app.start(&cc.egui_ctx);
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| e.to_string())
}
