//! The job on a worker thread: events stream to the UI over a channel; pause, resume and stop are
//! flags the job's event callback checks, so the UI never blocks.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::job::{JobEnd, JobEvent, run_job};
use crate::run::SearchSettings;
use crate::select::PtSettings;

/// A message from the worker.
#[derive(Debug)]
pub enum Message {
    /// A job event.
    Event(JobEvent),
    /// The job returned.
    Ended(std::result::Result<JobEnd, String>),
}

/// Pause / stop flags shared with the worker.
#[derive(Debug, Default)]
pub struct Control {
    /// The job waits at its next step while set.
    pub pause: AtomicBool,
    /// The job stops at its next checkpoint.
    pub stop: AtomicBool,
}

/// A running job.
pub struct Worker {
    /// Messages from the job.
    pub rx: Receiver<Message>,
    /// Its flags.
    pub control: Arc<Control>,
    handle: Option<JoinHandle<()>>,
}

impl Worker {
    /// Start the job in `run_dir` (or resume it) on a new thread; `wake` is called after every
    /// message (the app passes a repaint request).
    pub fn start(
        settings: SearchSettings,
        pt: PtSettings,
        run_dir: PathBuf,
        resume: bool,
        wake: impl Fn() + Send + 'static,
    ) -> Self {
        let (tx, rx) = channel::<Message>();
        let control = Arc::new(Control::default());
        let c = control.clone();
        let handle = std::thread::spawn(move || {
            let send = |tx: &Sender<Message>, m: Message| {
                let _ = tx.send(m);
                wake();
            };
            let result = run_job(&settings, &pt, &run_dir, resume, &mut |e| {
                send(&tx, Message::Event(e));
                while c.pause.load(Ordering::Relaxed) && !c.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(50));
                }
                !c.stop.load(Ordering::Relaxed)
            });
            send(&tx, Message::Ended(result.map_err(|e| e.to_string())));
        });
        Worker {
            rx,
            control,
            handle: Some(handle),
        }
    }

    /// Whether the job thread has returned.
    pub fn finished(&self) -> bool {
        self.handle.as_ref().is_none_or(|h| h.is_finished())
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Ask the job to stop at its next checkpoint; the thread is not joined (the app may be
        // closing and the checkpoint may be an epoch away).
        self.control.stop.store(true, Ordering::Relaxed);
        self.control.pause.store(false, Ordering::Relaxed);
    }
}
