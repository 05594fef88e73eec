//! What the desktop app and the browser page do differently, in one place: where the job runs,
//! folder pickers, and where exported files go. Everything else in the UI is shared.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::worker::{Message, Sink};
use crate::engine::Control;
use crate::run::SearchSettings;
use crate::select::PtSettings;

/// Whether runs live in directories (desktop) rather than in memory (browser): the run-directory,
/// dataset-directory and config-file controls are shown only then.
pub const HAS_FILES: bool = cfg!(not(target_arch = "wasm32"));

/// Run the job beside the UI. Desktop: [`crate::job::run_job_in`] on a new thread (driven by
/// `block_on`), writing the run directory.
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
        // The app writes the run directory: it holds its lock as the CLI does.
        let result = crate::rundir::RunDir::new(&run_dir)
            .lock("darts-pt gui")
            .and_then(|_lock| {
                crate::job::run_job_with(&settings, &pt, &run_dir, resume, &control, &mut |e| {
                    sink.send(Message::Event(e))
                })
            });
        control.set_done();
        sink.send(Message::Ended(result.map_err(|e| e.to_string())));
    });
}

/// Run the job beside the UI. Browser: the same [`crate::job::run_job_in`] as a future on the
/// page's event loop, in memory ([`crate::rundir::MemoryRun`]; `resume` is not available).
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
        let store = crate::rundir::MemoryRun::new();
        let result = super::page::run_job(&settings, &pt, &store, &control, &mut |e| {
            sink.send(Message::Event(e))
        })
        .await;
        control.set_done();
        sink.send(Message::Ended(result.map_err(|e| e.to_string())));
    });
}

/// A folder chosen in the system's picker (desktop only).
#[cfg(not(target_arch = "wasm32"))]
pub fn pick_folder() -> Option<PathBuf> {
    rfd::FileDialog::new().pick_folder()
}

/// A reference checkpoint chosen in the system's picker (desktop only).
#[cfg(not(target_arch = "wasm32"))]
pub fn pick_checkpoint() -> Option<PathBuf> {
    rfd::FileDialog::new()
        .add_filter("darts-pt checkpoint", &["pt", "pth", "tar", "safetensors"])
        .add_filter("any file", &["*"])
        .pick_file()
}

/// Import a reference checkpoint into `run_dir` on a new thread, holding the run directory's
/// lock as `darts-pt import` does; the result (the magnitude genotype, or why not) arrives on
/// the returned channel, after `wake` is called.
#[cfg(not(target_arch = "wasm32"))]
pub fn spawn_import(
    checkpoint: PathBuf,
    settings: SearchSettings,
    run_dir: PathBuf,
    wake: Box<dyn Fn() + Send>,
) -> std::sync::mpsc::Receiver<std::result::Result<String, String>> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let result = crate::rundir::RunDir::new(&run_dir)
            .lock("darts-pt gui import")
            .and_then(|_lock| crate::import::import_reference(&checkpoint, &settings, &run_dir))
            .map_err(|e| e.to_string());
        let _ = tx.send(result);
        wake();
    });
    rx
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
        crate::rundir::write_atomic(&path, bytes).map_err(|e| e.to_string())?;
        Ok(format!("saved {}", path.display()))
    }
    #[cfg(target_arch = "wasm32")]
    {
        let _ = dir;
        super::page::download(name, bytes)?;
        Ok(format!("downloaded {name}"))
    }
}
