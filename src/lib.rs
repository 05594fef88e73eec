//! # darts-pt
//!
//! Differentiable neural architecture search with perturbation-based architecture selection
//! (DARTS-PT; Wang et al., "Rethinking Architecture Selection in Differentiable NAS", ICLR 2021),
//! on Burn's `flex` CPU backend and its wgpu backend.
//!
//! Modules:
//! * [`space`]: op names, search spaces (DARTS 7/8-op, NAS-Bench-201, RobustDARTS S1–S4).
//! * [`genotype`]: DARTS `Genotype(...)` text and NAS-Bench-201 strings; magnitude derivation.
//! * [`ops`]: the candidate operations as Burn modules.
//! * [`weights`]: effective mixing weights, PT masks.
//! * [`supernet`]: the DARTS and NAS-Bench-201 supernets and α.
//! * [`data`]: datasets (embedded digits, CIFAR-10/100, Fashion-MNIST/MNIST), split, batches.
//! * [`optim`]: SGD and Adam with the reference's semantics; the cosine schedule.
//! * [`search`]: the bilevel step (DARTS 1st/2nd order, SDARTS-RS/ADV, fixed α).
//! * [`engine`]: how the loops are driven: async device reads, yielding, the stop/pause
//!   [`engine::Control`], `block_on` natively.
//! * [`run`]: search settings, events and the one search loop.
//! * [`rundir`]: the run directory's file names, the run stores (directory, memory), atomic
//!   writes and the checkpoint format.
//! * [`select`]: magnitude and perturbation-based (PT) selection with progressive tuning.
//! * [`nb201`]: NAS-Bench-201 accuracies of all 15,625 cells, offline.
//! * [`device`]: opening the CPU or wgpu device.
//! * [`kernels`]: `--kernels plain|fused`, the fused CPU ops of `shaders/` or Burn's compositions.
//! * [`import`]: supernets saved by the reference code (darts-pt `.pt` checkpoints, safetensors).
//! * [`score`]: a supernet's scores on one fixed batch with every op and edge mask.
//! * `gui` (cargo feature `gui`, on by default): the desktop app; in wasm32 also the page side of
//!   the app (`gui::page`: the job in memory, the status line, downloads).
//! * [`layout`]: the layered layout of a cell drawing (DARTS-paper style), one for every face;
//!   Graphviz DOT of a genotype.
//! * [`figures`]: the run's figures (curves, α over the epochs, PT scores, cells side by side)
//!   as PNG and SVG, for `report.md`, `darts-pt draw`, the app and the page.
//! * [`info`]: parameter counts, shapes and multiply-adds of a supernet.
//! * [`bench`]: `darts-pt bench`, timings of a search step, a forward and a PT candidate against
//!   the PyTorch reference's (`../shared/bench/`).
//! * [`event`]: the one event type of a job (search, PT, job).
//! * [`job`]: the main job (search, both selections, report) with one event stream, run by the
//!   CLI, the desktop app and the page alike.
//! * [`network`]: evaluation networks built from a genotype (DARTS, NAS-Bench-201).
//! * [`train`]: training an evaluation network from scratch (`darts-pt train`).
//! * `web` (wasm32 with `gui`): the in-browser demo's start (WebGPU set-up, canvas, the page's settings),
//!   built by `web/build.sh`; it runs [`job`] like the other faces.
//!
//! Tensor layout is `[batch, channels, height, width]`; α is `[edges, ops]` per cell type.

/// A settings enum with serde names, `as_str`, `FromStr` (errors name the setting and list the
/// accepted values) and `Display`, all from one list of `Variant = "spelling"`.
macro_rules! cli_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $s)] $var),+ }
        impl $name {
            /// CLI / config spelling.
            pub fn as_str(self) -> &'static str { match self { $($name::$var => $s),+ } }
        }
        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                match s {
                    $($s => Ok($name::$var),)+
                    _ => Err(Error::Config {
                        field: stringify!($name).to_lowercase(),
                        message: format!("unknown value `{s}`; expected one of: {}", [$($s),+].join(", ")),
                    }),
                }
            }
        }
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

// Timing the engine against the reference is a command-line job (native only).
#[cfg(not(target_arch = "wasm32"))]
pub mod bench;
pub mod config;
pub mod data;
pub mod device;
pub mod engine;
pub mod error;
pub mod event;
pub mod figures;
pub mod genotype;
#[cfg(feature = "gui")]
pub mod gui;
// Reading PyTorch checkpoints is native only: the page never imports one.
#[cfg(not(target_arch = "wasm32"))]
pub mod import;
pub mod info;
pub mod job;
pub mod kernels;
pub mod layout;
pub mod nb201;
pub mod network;
pub mod ops;
pub mod optim;
pub mod report;
pub mod run;
pub mod rundir;
pub mod score;
pub mod search;
pub mod select;
pub mod space;
pub mod supernet;
pub mod train;
#[cfg(all(target_arch = "wasm32", feature = "gui"))]
pub mod web;
pub mod weights;

pub use error::{Error, Result};
