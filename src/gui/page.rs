//! The page side of the app (browser build only): the job as it runs in the page, the page's
//! status line and result, downloads. [`crate::web`] starts the page; this module is what the
//! app calls while it runs, so the dependency goes one way (`web` → `gui`).
//!
//! The page runs the same job as the CLI and the desktop app ([`crate::job::run_job_in`]), in
//! memory ([`MemoryRun`]), driven as a future on the page's event loop: every host read is
//! `into_data_async().await` and the loops yield to the page after every step and evaluation
//! ([`crate::engine`]).

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_time::Instant;

use crate::data::DatasetName;
use crate::engine::Control;
use crate::error::{Error, Result};
use crate::event::Event;
use crate::job::JobEnd;
use crate::report::Selection;
use crate::run::SearchSettings;
use crate::rundir::MemoryRun;
use crate::select::PtSettings;
use crate::space::SpaceName;

pub fn js_error(e: JsValue) -> String {
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

pub fn document() -> Option<web_sys::Document> {
    web_sys::window()?.document()
}

/// Put `text` into the page element `id` (if the page has it).
pub fn set_text(id: &str, text: &str) {
    if let Some(el) = document().and_then(|d| d.get_element_by_id(id)) {
        el.set_text_content(Some(text));
    }
}

pub fn set_title(text: &str) {
    if let Some(d) = document() {
        d.set_title(text);
    }
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

/// What the page can run: everything the engine runs (every space, method and PT setting) on
/// the embedded digits (it has no file system), plus the settings' own checks. Errors name the
/// setting.
pub fn supported(s: &SearchSettings, pt: &PtSettings) -> Result<()> {
    s.validate()?;
    pt.validate()?;
    if s.dataset != DatasetName::Digits {
        return Err(Error::Config {
            field: "dataset".into(),
            message: "the browser build has only the embedded digits (no file system)".into(),
        });
    }
    Ok(())
}

/// The main job in the page: [`crate::job::run_job_in`] in memory (`store`), with the page's
/// status line following it and the result written into the page at the end. `control` pauses
/// or stops it (a stopped page run cannot be resumed: the page keeps no checkpoints).
pub async fn run_job(
    s: &SearchSettings,
    pt: &PtSettings,
    store: &MemoryRun,
    control: &Control,
    emit: &mut dyn FnMut(Event),
) -> Result<JobEnd> {
    let t_job = Instant::now();
    let mut evaluated = 0;
    let mut device = String::new();
    let mut finished: Option<Selection> = None;
    let mut emit = |e: Event| {
        // The page's status line follows the job too (readable without the canvas).
        let line = match &e {
            Event::SearchStarted { device: d, .. } => {
                device = d.clone();
                None
            }
            Event::Step { epoch, step, loss } => Some(format!(
                "search: epoch {epoch}, step {step}, loss {loss:.4}"
            )),
            Event::Evaluated => {
                evaluated += 1;
                Some(format!("PT: evaluation {evaluated}"))
            }
            Event::TuneStep { slot, loss } => {
                Some(format!("PT: tuning epoch {slot}, loss {loss:.4}"))
            }
            Event::Magnitude(g) => Some(format!("magnitude genotype {g}")),
            Event::Finished(sel) => {
                finished = Some((**sel).clone());
                None
            }
            _ => None,
        };
        if let Some(line) = line {
            set_text("status", &line);
        }
        emit(e)
    };
    let result = async {
        supported(s, pt)?;
        crate::job::run_job_in(s, pt, store, false, control, &mut emit).await
    }
    .await;
    match &result {
        Ok(JobEnd::Finished) => {
            set_text("status", "Finished.");
            if let Some(sel) = &finished {
                report_to_page(sel, s.space, t_job.elapsed().as_secs_f64(), &device, store);
            }
        }
        Ok(_) => set_text("status", "Stopped."),
        Err(e) => {
            set_text("status", &format!("The run failed: {e}"));
            set_title("darts-pt: failed");
        }
    }
    result
}

/// Write the finished run into the page (`#result`, and the title `darts-pt: done`), where a
/// person or a browser test reads it.
fn report_to_page(
    sel: &Selection,
    space: SpaceName,
    seconds: f64,
    device: &str,
    store: &MemoryRun,
) {
    use crate::rundir::RunStore as _;
    // The report's figures, as the job wrote them into the run (SVG in the page): `name:bytes`.
    let figures: Vec<String> = ["curves", "alpha", "pt_scores", "cells"]
        .iter()
        .filter_map(|n| {
            let file = format!("{}/{n}.svg", crate::figures::FOLDER);
            let bytes = store.read(&file).ok().flatten()?;
            bytes
                .starts_with(b"<svg")
                .then(|| format!("{n}:{}", bytes.len()))
        })
        .collect();
    let line = |g: &Option<String>, l: &Option<crate::nb201::Lookup>| match (g, l) {
        (Some(g), Some(l)) => format!("{g}  NAS-Bench-201 {l}"),
        (Some(g), None) => g.clone(),
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
        attr("data-space", space.to_string());
        attr("data-seconds", format!("{seconds:.1}"));
        attr("data-figures", figures.join(" "));
    }
    set_title("darts-pt: done");
}
