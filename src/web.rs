//! The browser build (`wasm32-unknown-unknown`, built by `web/build.sh`): the desktop app's UI in
//! a canvas and the engine on the page's WebGPU through Burn's wgpu backend. Nothing runs on a
//! server.
//!
//! This module starts the page: it checks WebGPU, sets up the wgpu device with
//! [`crate::device::init_wgpu_async`] before the first tensor, and opens the app with the page's
//! settings. The job then runs as [`crate::gui::page::run_job`]: the engine's own job
//! ([`crate::job::run_job_in`]) in memory. What the page lacks is what needs files: datasets
//! other than the embedded digits, checkpoints and resume, import, `train`, `bench`.

use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;

use crate::data::DatasetName;
use crate::device::{self, Backend};
use crate::gui::page::{document, js_error, set_text, set_title};
use crate::gui::{App, Form};
use crate::space::SpaceName;

/// Whether the page's browser exposes WebGPU (`navigator.gpu`).
fn has_webgpu() -> bool {
    web_sys::window()
        .map(|w| w.navigator())
        .and_then(|n| js_sys::Reflect::get(&n, &JsValue::from_str("gpu")).ok())
        .is_some_and(|g| !g.is_undefined() && !g.is_null())
}

/// The page's run settings: the desktop's quick preset of `space` on the embedded digits, on
/// WebGPU. With `tiny` (the page URL has `?tiny`), the smallest run that exercises every phase:
/// C = 4, 8×8 digits, 128 images, 1 search epoch; for NAS-Bench-201 one cell per stage and PT
/// tuning one epoch between decisions, for the DARTS-like spaces 3 cells and every op and
/// topology decision back to back, scored on 16 validation images.
fn page_form(space: SpaceName, tiny: bool) -> Form {
    let mut f = Form::quick(space, DatasetName::Digits);
    f.settings.device = Backend::Wgpu;
    f.out = "browser".into();
    if tiny {
        f.settings.init_channels = 4;
        f.settings.digits_size = 8;
        f.settings.epochs = 1;
        f.limit_train = Some(128);
        f.pt.proj_intv = 1;
        if space != SpaceName::Nb201 {
            // The DARTS-like spaces' 240 evaluations dominate (about a second each on a CPU
            // rasteriser): decisions back to back on 16 validation images; the NAS-Bench-201
            // job covers tuning between decisions.
            f.settings.layers = 3;
            f.pt.eval_limit = Some(16);
            f.pt.proj_intv = 0;
        }
    }
    f
}

/// Start the page: check WebGPU, set up Burn's wgpu device, then run the app in the canvas
/// `#darts_pt_canvas`. URL options: `?run` starts the default run at once, `?tiny` makes it the
/// tiny run, `?space=NAME` picks the search space (`nb201` by default; `darts`, `darts-8op`,
/// `s1`…`s4` as the CLI spells them), `?ui=webgl` draws the UI with WebGL (the browser test opens
/// `?tiny&run&ui=webgl` and `?tiny&run&space=darts&ui=webgl`).
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
    let space = search
        .trim_start_matches('?')
        .split('&')
        .find_map(|p| p.strip_prefix("space="))
        .map_or(Ok(SpaceName::Nb201), str::parse::<SpaceName>);
    let space = match space {
        Ok(s) => s,
        Err(e) => {
            set_text("status", &format!("Bad page URL: {e}"));
            set_title("darts-pt: failed");
            return;
        }
    };
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
                app.form = page_form(space, tiny);
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
