//! The job beside the UI: events stream to the UI over a channel; pause, resume and stop go
//! through the engine's [`Control`], so the UI never blocks. On the desktop the job runs on a thread; in the
//! browser it is a future on the page's event loop ([`super::platform::spawn_job`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};

use crate::engine::Control;
use crate::event::Event;
use crate::job::JobEnd;
use crate::run::SearchSettings;
use crate::select::PtSettings;

/// A message from the worker.
#[derive(Debug)]
pub enum Message {
    /// A job event.
    Event(Event),
    /// The job returned.
    Ended(std::result::Result<JobEnd, String>),
}

/// Where a job's messages go: the channel plus the UI's repaint request.
pub struct Sink {
    tx: std::sync::mpsc::Sender<Message>,
    wake: Box<dyn Fn() + Send>,
}

impl Sink {
    /// Send `m` and wake the UI.
    pub fn send(&self, m: Message) {
        let _ = self.tx.send(m);
        (self.wake)();
    }
}

/// A running job.
pub struct Worker {
    /// Messages from the job.
    pub rx: Receiver<Message>,
    /// Its flags.
    pub control: Arc<Control>,
}

impl Worker {
    /// Start the job in `run_dir` (or resume it); `wake` is called after every message (the app
    /// passes a repaint request).
    pub fn start(
        settings: SearchSettings,
        pt: PtSettings,
        run_dir: PathBuf,
        resume: bool,
        wake: impl Fn() + Send + 'static,
    ) -> Self {
        let (tx, rx) = channel::<Message>();
        let control = Arc::new(Control::new());
        let sink = Sink {
            tx,
            wake: Box::new(wake),
        };
        super::platform::spawn_job(settings, pt, run_dir, resume, control.clone(), sink);
        Worker { rx, control }
    }

    /// Whether the job has returned.
    pub fn finished(&self) -> bool {
        self.control.done()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Ask the job to stop at its next checkpoint; it is not awaited (the app may be closing
        // and the checkpoint may be an epoch away).
        self.control.request_stop();
        self.control.set_paused(false);
    }
}
