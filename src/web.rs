//! The browser build (`wasm32-unknown-unknown`, built by `web/build.sh`): the desktop app's UI in
//! a canvas and the engine on the page's WebGPU through Burn's wgpu backend. Nothing runs on a
//! server.
//!
//! A browser cannot block, so this module holds the engine's asynchronous driver:
//! * the wgpu device is set up with [`crate::device::init_wgpu_async`] before the first tensor;
//! * every host read is `into_data_async().await` (one read per bilevel step, one per PT
//!   evaluation: the step and the evaluation keep their sums on the device,
//!   [`Trainer::step_deferred`], [`Scorer::evaluate_deferred`]);
//! * the job is a future on the page's event loop, and it yields to the page after every step,
//!   so the UI stays responsive.
//!
//! [`run_job`] is `crate::job::run_job` without files: the same search (DARTS first order or fixed
//! α), magnitude selection and PT selection with progressive tuning (same schedule, salts, random
//! streams and decision rule), kept in memory and reported as the same [`JobEvent`]s. The page runs
//! the NAS-Bench-201 space on the embedded digits; what needs files, threads or host reads inside
//! a step (other datasets, DARTS-like spaces with topology decisions, second-order DARTS, SDARTS,
//! checkpoints and resume, import, `train`) is desktop only.

use burn::tensor::Tensor;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_time::Instant;

use crate::data::{Augment, DatasetName, random_batch};
use crate::device::{self, Backend};
use crate::error::{Error, Result};
use crate::genotype::derive_nb201;
use crate::gui::worker::Control;
use crate::gui::{App, Form};
use crate::job::{JobEnd, JobEvent};
use crate::nb201::Table;
use crate::optim::{Sgd, cosine_lr};
use crate::report::{PhaseTimes, Selection};
use crate::run::{self, EpochMetrics, Event, SearchSettings};
use crate::search::{Method, Trainer, epoch_rng};
use crate::select::{
    self, Candidate, Decision, EdgeOrder, Evaluate, PtEvent, PtSettings, Score, Scorer, TuneMetrics,
};
use crate::space::{CellType, Family, SearchSpace, SpaceName};
use crate::supernet::{Alphas, build_seeded};
use crate::weights::{Mask, Overrides};

fn js_error(e: JsValue) -> String {
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

fn document() -> Option<web_sys::Document> {
    web_sys::window()?.document()
}

/// Put `text` into the page element `id` (if the page has it).
fn set_text(id: &str, text: &str) {
    if let Some(el) = document().and_then(|d| d.get_element_by_id(id)) {
        el.set_text_content(Some(text));
    }
}

fn set_title(text: &str) {
    if let Some(d) = document() {
        d.set_title(text);
    }
}

/// Wait `ms` milliseconds on the page's event loop (0: just let the page run).
async fn sleep_ms(ms: i32) {
    let p = js_sys::Promise::new(&mut |resolve, _| {
        if let Some(w) = web_sys::window() {
            let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(p).await;
}

/// Read a tensor back without blocking.
async fn read(t: Tensor<1>) -> Result<Vec<f64>> {
    let data = t.into_data_async().await.map_err(|e| Error::Device {
        device: "wgpu".into(),
        message: format!("reading a result back failed: {e:?}"),
    })?;
    data.convert::<f64>()
        .try_into_vec::<f64>()
        .map_err(|e| Error::Device {
            device: "wgpu".into(),
            message: format!("unexpected result data: {e:?}"),
        })
}

/// softmax(α) of every cell type as host rows `[cells][edges][ops]`, read without blocking.
async fn probs_rows(alphas: &Alphas) -> Result<Vec<Vec<Vec<f32>>>> {
    let mut out = Vec::new();
    for c in alphas.cell_types() {
        let p = alphas.probs(c);
        let [e, k] = p.dims();
        let v = read(p.reshape([e * k])).await?;
        out.push(
            v.chunks(k)
                .map(|r| r.iter().map(|x| *x as f32).collect())
                .collect(),
        );
    }
    Ok(out)
}

/// Download `bytes` as the file `name` (a Blob URL clicked through a temporary link).
pub fn download(name: &str, bytes: &[u8]) -> std::result::Result<(), String> {
    let doc = document().ok_or("no document")?;
    let parts = js_sys::Array::of1(&js_sys::Uint8Array::from(bytes));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("application/octet-stream");
    let blob =
        web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &opts).map_err(js_error)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(js_error)?;
    let a: web_sys::HtmlAnchorElement = doc
        .create_element("a")
        .map_err(js_error)?
        .dyn_into()
        .map_err(|_| "not an anchor".to_string())?;
    a.set_href(&url);
    a.set_download(name);
    a.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

/// Whether the page's browser exposes WebGPU (`navigator.gpu`).
fn has_webgpu() -> bool {
    web_sys::window()
        .map(|w| w.navigator())
        .and_then(|n| js_sys::Reflect::get(&n, &JsValue::from_str("gpu")).ok())
        .is_some_and(|g| !g.is_undefined() && !g.is_null())
}

/// What the page can run: the NAS-Bench-201 space on the embedded digits, DARTS first order or
/// fixed α (`blank`), plus the settings' own checks. Errors name the setting.
pub fn supported(s: &SearchSettings, pt: &PtSettings) -> Result<()> {
    s.validate()?;
    pt.validate()?;
    let bad = |field: &str, message: &str| {
        Err(Error::Config {
            field: field.into(),
            message: message.into(),
        })
    };
    if s.space != SpaceName::Nb201 {
        return bad(
            "space",
            "the browser build searches the NAS-Bench-201 space; DARTS-like spaces (topology decisions) need the desktop app",
        );
    }
    if s.dataset != DatasetName::Digits {
        return bad(
            "dataset",
            "the browser build has only the embedded digits (no file system)",
        );
    }
    if s.second_order || matches!(s.method, Method::SdartsRs | Method::SdartsAdv) {
        return bad(
            "method",
            "the browser build runs darts (first order) or blank; second order and SDARTS read the device inside a step",
        );
    }
    Ok(())
}

/// One epoch of bilevel steps, as `run::train_epoch` (same batches and random streams), reading
/// each step's measurements back without blocking and yielding to the page after every step.
/// `None` when the UI stopped the job.
#[allow(clippy::too_many_arguments)]
async fn epoch_of_steps(
    trainer: &mut Trainer,
    ds: &crate::data::Dataset,
    (n, half, batch_size): (usize, usize, usize),
    aug: Augment,
    lr: f64,
    rng: &mut rand_chacha::ChaCha8Rng,
    device: &burn::tensor::Device,
    epoch: usize,
    control: &Control,
    on_step: &mut dyn FnMut(usize, f64),
) -> Result<Option<run::EpochTotals>> {
    let steps = half.div_ceil(batch_size);
    let (mut tl, mut tc, mut vl, mut vc, mut tn, mut vn) = (0.0, 0.0, 0.0, 0.0, 0usize, 0usize);
    for step in 0..steps {
        let iw = random_batch(0..half, batch_size, rng);
        let ia = random_batch(half..n, batch_size, rng);
        let train = ds.batch(&ds.train, &iw, aug, rng, device);
        let valid = ds.batch(&ds.train, &ia, aug, rng, device);
        let s = read(trainer.step_deferred(&train, &valid, lr)?).await?;
        if !s[0].is_finite() || !s[2].is_finite() {
            return Err(Error::NonFinite {
                epoch,
                step,
                message: format!("loss became {} (weight step) / {} (α step)", s[0], s[2]),
            });
        }
        tl += s[0] * iw.len() as f64;
        tc += s[1];
        vl += s[2] * ia.len() as f64;
        vc += s[3];
        tn += iw.len();
        vn += ia.len();
        on_step(step, s[0]);
        sleep_ms(0).await;
        while control.paused() {
            sleep_ms(50).await;
        }
        if !control.running() {
            return Ok(None);
        }
    }
    Ok(Some(run::EpochTotals {
        train_loss: tl / tn as f64,
        train_acc: 100.0 * tc / tn as f64,
        valid_loss: vl / vn as f64,
        valid_acc: 100.0 * vc / vn as f64,
        stop_requested: false,
    }))
}

/// Hands PT's decision rule ([`select::op_decision`]) scores computed beforehand, checking that
/// it asks for them in the order they were computed.
struct Replay {
    scores: Vec<(Mask, Score)>,
    next: usize,
}

impl Evaluate for Replay {
    fn evaluate(&mut self, _: &[Overrides], mask: &Mask, _salt: u64) -> Result<Score> {
        let (m, s) = self.scores.get(self.next).ok_or_else(|| Error::Config {
            field: "pt".into(),
            message: "decision asked for more evaluations than were computed".into(),
        })?;
        if m != mask {
            return Err(Error::Config {
                field: "pt".into(),
                message: "decision asked for evaluations in another order".into(),
            });
        }
        self.next += 1;
        Ok(*s)
    }
}

/// The main job in the page: search, magnitude selection, PT selection with progressive tuning,
/// in memory. `emit` receives the same events as from `crate::job::run_job`; `control` pauses or
/// stops it (a stopped page run cannot be resumed).
pub async fn run_job(
    s: &SearchSettings,
    pt: &PtSettings,
    control: &Control,
    emit: &mut dyn FnMut(JobEvent),
) -> Result<JobEnd> {
    let mut evaluated = 0;
    let mut emit = |e: JobEvent| {
        // The page's status line follows the job too (readable without the canvas).
        let line = match &e {
            JobEvent::Search(Event::Step { epoch, step, loss }) => Some(format!(
                "search: epoch {epoch}, step {step}, loss {loss:.4}"
            )),
            JobEvent::Pt(PtEvent::Evaluated) => {
                evaluated += 1;
                Some(format!("PT: evaluation {evaluated}"))
            }
            JobEvent::Pt(PtEvent::TuneStep { slot, loss }) => {
                Some(format!("PT: tuning epoch {slot}, loss {loss:.4}"))
            }
            JobEvent::Magnitude(g) => Some(format!("magnitude genotype {g}")),
            _ => None,
        };
        if let Some(line) = line {
            set_text("status", &line);
        }
        emit(e)
    };
    let result = run_job_inner(s, pt, control, &mut emit).await;
    match &result {
        Ok(JobEnd::Finished) => set_text("status", "Finished."),
        Ok(_) => set_text("status", "Stopped."),
        Err(e) => {
            set_text("status", &format!("The run failed: {e}"));
            set_title("darts-pt: failed");
        }
    }
    result
}

async fn run_job_inner(
    s: &SearchSettings,
    pt: &PtSettings,
    control: &Control,
    emit: &mut dyn FnMut(JobEvent),
) -> Result<JobEnd> {
    supported(s, pt)?;
    let t_job = Instant::now();
    let (ds, n, half) = run::open_dataset(s)?;
    let cfg = s.supernet_config(&ds);
    cfg.validate()?;
    let dev = match s.device {
        Backend::Wgpu => device::init_wgpu_async().await?,
        Backend::Cpu => device::open(Backend::Cpu)?,
    };
    let device = dev.device.clone().autodiff();
    let (net, alphas) = build_seeded(&cfg, s.seed, &device)?;
    let mut trainer = Trainer::new(net, alphas, s.method, false, s.hyper.clone());
    let steps = half.div_ceil(s.batch_size);
    emit(JobEvent::Search(Event::Started {
        epoch: 0,
        epochs: s.epochs,
        steps,
        device: format!("{} (browser)", dev.description),
    }));
    let aug0 = if s.augment {
        Augment::search(&ds)
    } else {
        Augment::NONE
    };
    let h = &s.hyper;
    let mut times = PhaseTimes {
        search: 0.0,
        pt_scoring: 0.0,
        pt_tuning: 0.0,
    };
    let mut last_probs = probs_rows(&trainer.alphas).await?;
    for epoch in 0..s.epochs {
        let t0 = Instant::now();
        let lr = cosine_lr(h.learning_rate, h.learning_rate_min, epoch, s.epochs);
        let mut rng = epoch_rng(s.seed, epoch);
        let mut aug = aug0;
        if s.cutout {
            aug.cutout_length = s.cutout_length;
            aug.cutout_prob = s.cutout_prob * epoch as f64 / (s.epochs.max(2) - 1) as f64;
        }
        device.seed(s.seed.wrapping_add(epoch as u64));
        let Some(t) = epoch_of_steps(
            &mut trainer,
            &ds,
            (n, half, s.batch_size),
            aug,
            lr,
            &mut rng,
            &device,
            epoch,
            control,
            &mut |step, loss| emit(JobEvent::Search(Event::Step { epoch, step, loss })),
        )
        .await?
        else {
            return Ok(JobEnd::StoppedInSearch);
        };
        last_probs = probs_rows(&trainer.alphas).await?;
        let seconds = t0.elapsed().as_secs_f64();
        times.search += seconds;
        emit(JobEvent::Search(Event::Epoch(EpochMetrics {
            epoch,
            train_loss: t.train_loss,
            train_acc: t.train_acc,
            valid_loss: t.valid_loss,
            valid_acc: t.valid_acc,
            lr,
            epsilon: 0.0,
            softmax_alpha: last_probs.clone(),
            seconds,
        })));
    }
    let space = SearchSpace::new(s.space);
    debug_assert_eq!(space.family, Family::Nb201);
    let magnitude = derive_nb201(&last_probs[0]).to_string();
    emit(JobEvent::Magnitude(magnitude.clone()));

    // PT selection (spec §3.4): momentum reset, α's Adam continues; NAS-Bench-201 has op
    // decisions only.
    trainer.sgd = Sgd::new(h.momentum, h.weight_decay);
    let cells = space.cell_types().to_vec();
    let mut overrides = trainer.alphas.no_overrides();
    let mut undecided: Vec<Vec<usize>> = cells
        .iter()
        .map(|&c| (0..space.edges(c).len()).collect())
        .collect();
    let rounds = space.edges(CellType::Normal).len();
    let slots = select::schedule(space.family, rounds, pt.proj_intv);
    let evaluations: usize = cells
        .iter()
        .map(|&c| space.edges(c).iter().map(|e| e.ops.len()).sum::<usize>())
        .sum();
    emit(JobEvent::Pt(PtEvent::Started {
        slot: 0,
        slots: slots.len(),
        decisions: rounds * cells.len(),
        evaluations,
        steps,
    }));
    let mut valid_idx: Vec<usize> = (half..n).collect();
    if let Some(limit) = pt.eval_limit {
        valid_idx.truncate(limit);
    }
    let mut decisions: Vec<Decision> = Vec::new();
    for (slot, &(decide, tune)) in slots.iter().enumerate() {
        if decide {
            for (ci, &cell) in cells.iter().enumerate() {
                if undecided[ci].is_empty() {
                    continue;
                }
                let t0 = Instant::now();
                let mut rng = select::decision_rng(s.seed, slot, cell);
                let index = decisions.len();
                let pick = match pt.edge_order {
                    EdgeOrder::Random => rand::Rng::random_range(&mut rng, 0..undecided[ci].len()),
                    EdgeOrder::Fixed => 0,
                };
                let edge = undecided[ci].remove(pick);
                let salt = (index as u64 + 1) << 16;
                let mut scorer = Scorer::new(
                    &trainer.net,
                    &trainer.alphas,
                    &ds,
                    valid_idx.clone(),
                    pt.eval,
                    s.batch_size,
                    aug0,
                    s.seed,
                );
                let ops = &space.edges(cell)[edge].ops;
                let mut scores = Vec::with_capacity(ops.len());
                for k in 0..ops.len() {
                    let mask = Mask::op(cell, edge, k);
                    let eval_salt = salt.wrapping_mul(64).wrapping_add(k as u64);
                    let sums = read(scorer.evaluate_deferred(&overrides, &mask, eval_salt)).await?;
                    let score = scorer.score(sums[0], sums[1].round() as usize, eval_salt)?;
                    scores.push((mask, score));
                    emit(JobEvent::Pt(PtEvent::Evaluated));
                    sleep_ms(0).await;
                }
                let (k, candidates): (usize, Vec<Candidate>) = select::op_decision(
                    &mut Replay { scores, next: 0 },
                    &space,
                    &overrides,
                    cell,
                    edge,
                    pt.crit,
                    salt,
                )?;
                let seconds = t0.elapsed().as_secs_f64();
                times.pt_scoring += seconds;
                let d = select::fix_op(
                    &space,
                    &mut overrides,
                    (cell, edge, k),
                    (index, slot),
                    candidates,
                    seconds,
                );
                decisions.push(d.clone());
                emit(JobEvent::Pt(PtEvent::Decided(d)));
            }
            trainer.overrides = overrides.clone();
            if !control.running() {
                return Ok(JobEnd::StoppedInSelection);
            }
        }
        if tune {
            let t0 = Instant::now();
            let mut rng = epoch_rng(s.seed ^ 0x0050_545f_7475_6e65, slot);
            device.seed(s.seed.wrapping_add(1_000_000 + slot as u64));
            let Some(t) = epoch_of_steps(
                &mut trainer,
                &ds,
                (n, half, s.batch_size),
                aug0,
                pt.tune_lr,
                &mut rng,
                &device,
                slot,
                control,
                &mut |_, loss| emit(JobEvent::Pt(PtEvent::TuneStep { slot, loss })),
            )
            .await?
            else {
                return Ok(JobEnd::StoppedInSelection);
            };
            let seconds = t0.elapsed().as_secs_f64();
            times.pt_tuning += seconds;
            emit(JobEvent::Pt(PtEvent::Tuned(TuneMetrics {
                epoch: slot,
                decisions: decisions.len(),
                train_loss: t.train_loss,
                train_acc: t.train_acc,
                valid_loss: t.valid_loss,
                valid_acc: t.valid_acc,
                seconds,
            })));
        }
    }
    let probs = probs_rows(&trainer.alphas).await?;
    let weights: Vec<Vec<Vec<f32>>> = cells
        .iter()
        .map(|&c| {
            probs[c.index()]
                .iter()
                .zip(&overrides[c.index()].rows)
                .map(|(p, o)| o.clone().unwrap_or_else(|| p.clone()))
                .collect()
        })
        .collect();
    let pt_genotype = select::genotype_of(&space, &weights, pt.none_genotype);
    let table = Table::embedded();
    let lookup = |g: &str| -> Result<_> { Ok(table.lookup(&g.parse()?)) };
    let selection = Selection {
        space: s.space.to_string(),
        nb201_magnitude: Some(lookup(&magnitude)?),
        nb201_pt: Some(lookup(&pt_genotype)?),
        disagreements: select::disagreements(&space, &magnitude, &pt_genotype)?,
        magnitude: Some(magnitude),
        pt: Some(pt_genotype),
        seconds: times,
    };
    report_to_page(&selection, t_job.elapsed().as_secs_f64(), &dev.description);
    emit(JobEvent::Finished(Box::new(selection)));
    Ok(JobEnd::Finished)
}

/// Write the finished run into the page (`#result`, and the title `darts-pt: done`), where a
/// person or a browser test reads it.
fn report_to_page(sel: &Selection, seconds: f64, device: &str) {
    let line = |g: &Option<String>, l: &Option<crate::nb201::Lookup>| match (g, l) {
        (Some(g), Some(l)) => format!("{g}  NAS-Bench-201 {l}"),
        _ => "(none)".into(),
    };
    set_text(
        "result",
        &format!(
            "PT: {}\nmagnitude: {}\nrun time: {seconds:.1} s on {device}",
            line(&sel.pt, &sel.nb201_pt),
            line(&sel.magnitude, &sel.nb201_magnitude)
        ),
    );
    if let Some(el) = document().and_then(|d| d.get_element_by_id("result")) {
        let attr = |k: &str, v: String| {
            let _ = el.set_attribute(k, &v);
        };
        attr("data-pt", sel.pt.clone().unwrap_or_default());
        attr(
            "data-pt-cifar10",
            sel.nb201_pt
                .as_ref()
                .map_or(String::new(), |l| format!("{:.2}", l.cifar10)),
        );
        attr("data-magnitude", sel.magnitude.clone().unwrap_or_default());
        attr("data-seconds", format!("{seconds:.1}"));
    }
    set_title("darts-pt: done");
}

/// The page's run settings: the desktop's quick NB201 preset on the embedded digits, on WebGPU.
/// With `tiny` (the page URL has `?tiny`), the smallest run that exercises every phase: C = 4,
/// one cell per stage, 8×8 digits, 128 images, 1 search epoch and PT tuning one epoch between
/// decisions.
fn page_form(tiny: bool) -> Form {
    let mut f = Form::quick(SpaceName::Nb201, DatasetName::Digits);
    f.settings.device = Backend::Wgpu;
    f.out = "browser".into();
    if tiny {
        f.settings.init_channels = 4;
        f.settings.digits_size = 8;
        f.settings.epochs = 1;
        f.limit_train = Some(128);
        f.pt.proj_intv = 1;
    }
    f
}

/// Start the page: check WebGPU, set up Burn's wgpu device, then run the app in the canvas
/// `#darts_pt_canvas`. URL options: `?run` starts the default run at once, `?tiny` makes it the
/// tiny run, `?ui=webgl` draws the UI with WebGL (the browser test opens `?tiny&run&ui=webgl`).
pub async fn start() {
    std::panic::set_hook(Box::new(|info| {
        let msg = format!("darts-pt panicked: {info}");
        web_sys::console::error_1(&JsValue::from_str(&msg));
        set_text("status", &msg);
        set_title("darts-pt: failed");
    }));
    if !has_webgpu() {
        set_text(
            "status",
            "This browser has no WebGPU (navigator.gpu is missing), so the demo cannot run here. \
             Use a recent Chrome, Edge or Firefox with WebGPU enabled (Chromium on Linux: \
             --enable-unsafe-webgpu), or the desktop app.",
        );
        set_title("darts-pt: no WebGPU");
        return;
    }
    set_text("status", "Looking for a WebGPU adapter…");
    let dev = match device::init_wgpu_async().await {
        Ok(d) => d,
        Err(e) => {
            set_text("status", &format!("No WebGPU adapter: {e}"));
            set_title("darts-pt: no WebGPU");
            return;
        }
    };
    set_text("adapter", &dev.description);
    let search = web_sys::window()
        .and_then(|w| w.location().search().ok())
        .unwrap_or_default();
    let has = |k: &str| {
        search
            .trim_start_matches('?')
            .split('&')
            .any(|p| p.split('=').next() == Some(k))
    };
    let (tiny, run_now) = (has("tiny"), has("run"));
    let Some(canvas) = document()
        .and_then(|d| d.get_element_by_id("darts_pt_canvas"))
        .and_then(|e| e.dyn_into::<web_sys::HtmlCanvasElement>().ok())
    else {
        set_text("status", "The page has no canvas #darts_pt_canvas.");
        return;
    };
    // The UI draws with the device Burn computes on: one WebGPU device in the page. With
    // `?ui=webgl` it draws with WebGL instead and WebGPU only computes (headless Chromium cannot
    // present a WebGPU canvas, and losing that swap chain loses the device; the browser test
    // opens the page so).
    let mut options = eframe::WebOptions::default();
    let webgl_ui = search
        .trim_start_matches('?')
        .split('&')
        .any(|p| p == "ui=webgl");
    if webgl_ui {
        let mut create = eframe::egui_wgpu::WgpuSetupCreateNew::without_display_handle();
        create.instance_descriptor.backends = eframe::wgpu::Backends::GL;
        options.wgpu_options.wgpu_setup = eframe::egui_wgpu::WgpuSetup::CreateNew(create);
    } else if let Some(s) = device::wgpu_setup() {
        options.wgpu_options.wgpu_setup =
            eframe::egui_wgpu::WgpuSetup::Existing(eframe::egui_wgpu::WgpuSetupExisting {
                instance: s.instance,
                adapter: s.adapter,
                device: s.device,
                queue: s.queue,
            });
    }
    let started = eframe::WebRunner::new()
        .start(
            canvas,
            options,
            Box::new(move |cc| {
                let mut app = App::new(crate::gui::adapter_label(cc));
                app.form = page_form(tiny);
                if run_now {
                    app.start(&cc.egui_ctx);
                }
                Ok(Box::new(app))
            }),
        )
        .await;
    match started {
        Ok(()) => {
            set_text("status", "Ready.");
            set_title("darts-pt");
            if run_now {
                set_title("darts-pt: running");
            }
        }
        Err(e) => set_text(
            "status",
            &format!("Could not start the UI: {}", js_error(e)),
        ),
    }
}
