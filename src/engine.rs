//! How the engine's loops are driven, on every face: one search loop ([`crate::run::search_in`]),
//! one PT loop ([`crate::select::select_pt_in`]) and one job ([`crate::job::run_job_in`]), all
//! `async`.
//!
//! * Every read of a device value goes through [`read`] (`into_data_async().await`): a browser
//!   cannot block on a GPU read, and natively the future is ready as soon as the read is.
//! * The loops call [`Control::checkpoint`] after every step and every PT evaluation: it yields
//!   to the driver (the page's event loop gets to draw) and waits while the run is paused.
//! * Natively the futures are driven by [`block_on`] (pollster) on the caller's thread; in the
//!   browser by `wasm_bindgen_futures::spawn_local`.
//! * [`Control`] is the one stop/pause protocol: Ctrl-C in the CLI, the desktop app's buttons and
//!   the page's set it; the loops honour a stop at their next checkpoint (the end of a search
//!   epoch, a PT slot's decisions saved, the end of a tuning epoch), so a stopped run resumes.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use burn::tensor::Tensor;

use crate::error::{Error, Result};

/// Stop and pause requests, shared (behind an `Arc`) between a running job and whoever drives it.
#[derive(Debug, Default)]
pub struct Control {
    pause: AtomicBool,
    stop: AtomicBool,
    done: AtomicBool,
}

impl Control {
    /// No request yet.
    pub const fn new() -> Self {
        Control {
            pause: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            done: AtomicBool::new(false),
        }
    }

    /// Ask the job to stop at its next checkpoint (it stays resumable). Also ends a pause.
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    /// Whether a stop was asked for.
    pub fn stop_requested(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    /// Pause (`true`) or resume (`false`) the job at its next step or evaluation.
    pub fn set_paused(&self, paused: bool) {
        self.pause.store(paused, Ordering::Relaxed);
    }

    /// Whether the job is asked to wait (a stop request ends the wait).
    pub fn paused(&self) -> bool {
        self.pause.load(Ordering::Relaxed) && !self.stop_requested()
    }

    /// Marked by the driver when the job has returned.
    pub fn set_done(&self) {
        self.done.store(true, Ordering::Relaxed);
    }

    /// Whether the job has returned.
    pub fn done(&self) -> bool {
        self.done.load(Ordering::Relaxed)
    }

    /// Called by the loops between steps and evaluations: lets the driver run (the page draws),
    /// then waits while the job is paused.
    pub async fn checkpoint(&self) {
        yield_now().await;
        while self.paused() {
            sleep_ms(50).await;
        }
    }
}

static EVAL_THREADS: AtomicUsize = AtomicUsize::new(0);

/// How many batches a PT evaluation scores at once: `n`, or with 0 (the default) one per core.
/// With 1, batches run one after the other with their sums read back once, as in the page (its
/// only mode); the scores do not depend on it.
pub fn set_eval_threads(n: usize) {
    EVAL_THREADS.store(n, Ordering::Relaxed);
}

/// The thread count PT evaluations use now (always 1 in the page).
pub fn eval_threads() -> usize {
    if cfg!(target_arch = "wasm32") {
        return 1;
    }
    match EVAL_THREADS.load(Ordering::Relaxed) {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Drive an engine future to completion on this thread (native only; the page spawns it on its
/// event loop instead).
#[cfg(not(target_arch = "wasm32"))]
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    pollster::block_on(f)
}

/// Let the driver run: in the page a zero-delay timeout (the page's event loop draws and handles
/// input), natively nothing (the job runs on its own thread).
pub async fn yield_now() {
    #[cfg(target_arch = "wasm32")]
    sleep_ms(0).await;
}

/// Wait `ms` milliseconds: in the page on its event loop, natively by sleeping the thread.
pub async fn sleep_ms(ms: u32) {
    #[cfg(target_arch = "wasm32")]
    {
        let p = js_sys::Promise::new(&mut |resolve, _| {
            if let Some(w) = web_sys::window() {
                let _ = w.set_timeout_with_callback_and_timeout_and_arguments_0(
                    &resolve,
                    ms.min(i32::MAX as u32) as i32,
                );
            }
        });
        let _ = wasm_bindgen_futures::JsFuture::from(p).await;
    }
    #[cfg(not(target_arch = "wasm32"))]
    std::thread::sleep(std::time::Duration::from_millis(ms as u64));
}

/// Read a device tensor back as f64 values without blocking (f32 and integer values convert
/// exactly). Errors: [`Error::Device`] when the read fails.
pub async fn read(t: Tensor<1>) -> Result<Vec<f64>> {
    let data = t.into_data_async().await.map_err(|e| Error::Device {
        device: "device".into(),
        message: format!("reading a result back failed: {e}"),
    })?;
    data.convert::<f64>()
        .try_into_vec::<f64>()
        .map_err(|e| Error::Device {
            device: "device".into(),
            message: format!("unexpected result data: {e}"),
        })
}

/// Read several `[n_i]` tensors in one transfer (concatenated on the device): the values of each,
/// in order.
pub async fn read_many(ts: Vec<Tensor<1>>) -> Result<Vec<Vec<f64>>> {
    let lens: Vec<usize> = ts.iter().map(|t| t.dims()[0]).collect();
    if ts.is_empty() {
        return Ok(Vec::new());
    }
    let all = read(Tensor::cat(ts, 0)).await?;
    let mut out = Vec::with_capacity(lens.len());
    let mut at = 0;
    for n in lens {
        out.push(all[at..at + n].to_vec());
        at += n;
    }
    Ok(out)
}

/// Read a `[rows, cols]` tensor back as host rows of f32 (as [`crate::supernet::tensor_rows`],
/// without blocking).
pub async fn read_rows(t: Tensor<2>) -> Result<Vec<Vec<f32>>> {
    let [r, c] = t.dims();
    let v = read(t.reshape([r * c])).await?;
    Ok(v.chunks(c.max(1))
        .map(|row| row.iter().map(|x| *x as f32).collect())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_pause_ends_with_a_stop() {
        let c = Control::new();
        assert!(!c.paused() && !c.stop_requested());
        c.set_paused(true);
        assert!(c.paused());
        c.request_stop();
        assert!(!c.paused() && c.stop_requested());
        block_on(c.checkpoint()); // returns at once: stopped
    }

    #[test]
    fn reads_convert_exactly_and_split_in_order() {
        let d = burn::tensor::Device::flex();
        let a = Tensor::<1>::from_floats([0.1f32, 2.5], &d);
        let b = Tensor::<1>::from_floats([7.0f32], &d);
        let v = block_on(read_many(vec![a, b])).unwrap();
        assert_eq!(v, vec![vec![0.1f32 as f64, 2.5], vec![7.0]]);
        let m = Tensor::<2>::from_floats([[1.0f32, 2.0], [3.0, 4.0]], &d);
        assert_eq!(
            block_on(read_rows(m)).unwrap(),
            vec![vec![1.0, 2.0], vec![3.0, 4.0]]
        );
    }
}
