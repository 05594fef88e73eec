//! What the desktop app and the browser page do differently, in one place: where the job runs,
//! folder pickers, and where exported files go. Everything else in the UI is shared.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::worker::{Control, Message, Sink};
use crate::run::SearchSettings;
use crate::select::PtSettings;

/// Whether runs live in directories (desktop) rather than in memory (browser): the run-directory,
/// dataset-directory and config-file controls are shown only then.
pub const HAS_FILES: bool = cfg!(not(target_arch = "wasm32"));

/// Run the job beside the UI. Desktop: [`crate::job::run_job`] on a new thread, writing the run
/// directory.
#[cfg(not(target_arch = "wasm32"))]
pub fn spawn_job(
    settings: SearchSettings,
    pt: PtSettings,
    run_dir: PathBuf,
    resume: bool,
    control: Arc<Control>,
    sink: Sink,
) {
    std::thread::spawn(move || {
        let result = crate::job::run_job(&settings, &pt, &run_dir, resume, &mut |e| {
            sink.send(Message::Event(e));
            while control.paused() {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            control.running()
        });
        control.done.store(true, Ordering::Relaxed);
        sink.send(Message::Ended(result.map_err(|e| e.to_string())));
    });
}

/// Run the job beside the UI. Browser: [`crate::web::run_job`] as a future on the page's event
/// loop, in memory (no run directory; `resume` is not available).
#[cfg(target_arch = "wasm32")]
pub fn spawn_job(
    settings: SearchSettings,
    pt: PtSettings,
    _run_dir: PathBuf,
    _resume: bool,
    control: Arc<Control>,
    sink: Sink,
) {
    wasm_bindgen_futures::spawn_local(async move {
        let result = crate::web::run_job(&settings, &pt, &control, &mut |e| {
            sink.send(Message::Event(e))
        })
        .await;
        control.done.store(true, Ordering::Relaxed);
        sink.send(Message::Ended(result.map_err(|e| e.to_string())));
    });
}

/// A folder chosen in the system's picker (desktop only).
#[cfg(not(target_arch = "wasm32"))]
pub fn pick_folder() -> Option<PathBuf> {
    rfd::FileDialog::new().pick_folder()
}

/// No folders in the browser.
#[cfg(target_arch = "wasm32")]
pub fn pick_folder() -> Option<PathBuf> {
    None
}

/// Save `bytes` as `name`: desktop, into `dir` (atomically); browser, as a download. Returns
/// what happened, for the status line.
pub fn save_file(dir: &Path, name: &str, bytes: &[u8]) -> std::result::Result<String, String> {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let path = dir.join(name);
        crate::run::write_atomic(&path, bytes).map_err(|e| e.to_string())?;
        Ok(format!("saved {}", path.display()))
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = dir;
        crate::web::download(name, bytes)?;
        Ok(format!("downloaded {name}"))
    }
}
