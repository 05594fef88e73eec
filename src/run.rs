//! The search: its settings (`config.toml`), its events and the one search loop
//! ([`search_in`], spec §2), written through a [`RunStore`] (the run directory's files and
//! checkpoint format are in [`crate::rundir`]).
//!
//! Every epoch saves a checkpoint; `resume` continues from the newest one, and on `flex` the
//! result equals an uninterrupted run bit for bit, because every random choice of an epoch derives
//! from (seed, epoch).

#[cfg(not(target_arch = "wasm32"))]
use std::path::Path;
use std::path::PathBuf;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use web_time::Instant;

use crate::data::{self, Augment, Dataset, DatasetName, random_batch};
use crate::device::{self, Backend};
use crate::engine::{self, Control};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::genotype::{derive_darts, derive_nb201};
use crate::optim::cosine_lr;
use crate::rundir::{self, RunDir, RunStore};
use crate::search::{Hyper, Method, PendingStats, Trainer, epoch_rng};
use crate::space::{Family, SearchSpace, SpaceName};
use crate::supernet::{Alphas, SupernetConfig, build_seeded};

/// Every setting of a search run (`config.toml`). Defaults are the reference's (spec §2.2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchSettings {
    /// Search space.
    pub space: SpaceName,
    /// Dataset.
    pub dataset: DatasetName,
    /// Where the dataset's files are (not needed for `digits`). A run stores it absolute
    /// ([`absolute_data_dir`]), so that `--resume` from another directory finds the files.
    pub data_dir: Option<PathBuf>,
    /// `data_dir` as it was typed, when that was a relative path (for display only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir_typed: Option<PathBuf>,
    /// α training method.
    pub method: Method,
    /// Second-order DARTS α gradient.
    pub second_order: bool,
    /// Epochs (50 for DARTS-like spaces, 100 for NB201 in the reference).
    pub epochs: usize,
    /// Batch size of both halves.
    pub batch_size: usize,
    /// Run seed.
    pub seed: u64,
    /// Use only the first N training images (before the 50/50 split).
    pub limit_train: Option<usize>,
    /// Initial channels C.
    pub init_channels: usize,
    /// Cells (DARTS-like) or cells per stage (NB201).
    pub layers: usize,
    /// Upsampled size of the embedded digits (16 or 32).
    pub digits_size: usize,
    /// Random crop and flip on both halves (the reference does).
    pub augment: bool,
    /// Cutout during search, its probability ramped linearly from 0 to `cutout_prob` (off by
    /// default, as in the reference).
    pub cutout: bool,
    /// Cutout square side (pixels).
    pub cutout_length: usize,
    /// Final cutout probability.
    pub cutout_prob: f64,
    /// Compute device.
    pub device: Backend,
    /// Optimisation hyper-parameters.
    pub hyper: Hyper,
    /// Share of the training images in the weight half; the rest is the α / validation half
    /// (the reference's `--train_portion`, 0.5: split at `floor(portion * n)`, spec §2.1).
    #[serde(default = "default_train_portion")]
    pub train_portion: f64,
}

fn default_train_portion() -> f64 {
    0.5
}

impl SearchSettings {
    /// The reference's settings for `space` on `dataset`.
    pub fn reference(space: SpaceName, dataset: DatasetName) -> Self {
        let paper = SupernetConfig::paper(space);
        SearchSettings {
            space,
            dataset,
            data_dir: None,
            data_dir_typed: None,
            method: Method::Darts,
            second_order: false,
            epochs: if space == SpaceName::Nb201 { 100 } else { 50 },
            batch_size: 64,
            seed: 2,
            limit_train: None,
            init_channels: paper.init_channels,
            layers: paper.layers,
            digits_size: 16,
            augment: true,
            cutout: false,
            cutout_length: 16,
            cutout_prob: 1.0,
            device: Backend::Cpu,
            hyper: Hyper::default(),
            train_portion: 0.5,
        }
    }

    /// The `quick` preset: a CPU-sized run of the same protocol with a small supernet (C = 8;
    /// 1 cell per stage for NB201, 5 cells for DARTS-like spaces), few epochs and the first 2,000
    /// training images for NB201 (a few minutes on 2 cores) or 1,000 for DARTS-like spaces, whose
    /// selection evaluates the supernet 240 times (tens of minutes).
    pub fn apply_quick_preset(&mut self) {
        self.init_channels = 8;
        self.batch_size = 32;
        self.digits_size = 16;
        match self.space {
            SpaceName::Nb201 => {
                self.layers = 1;
                self.epochs = 10;
            }
            _ => {
                self.layers = 5;
                self.epochs = 5;
            }
        }
        self.limit_train = Some(if self.space == SpaceName::Nb201 {
            2000
        } else {
            1000
        });
    }

    /// Check the settings that no later step checks; errors name the setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, message: &str| {
            Err(Error::Config {
                field: field.into(),
                message: message.into(),
            })
        };
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if self.second_order && self.method != Method::Darts {
            return bad("second_order", "only applies to --method darts");
        }
        if ![8, 16, 32].contains(&self.digits_size) {
            return bad("digits_size", "must be 8, 16 or 32");
        }
        if let Some(0) = self.limit_train {
            return bad("limit_train", "must be at least 2 (one image per half)");
        }
        if !(self.train_portion > 0.0 && self.train_portion < 1.0) {
            return bad(
                "--train-portion (train_portion)",
                &format!("must be in (0, 1), got {}", self.train_portion),
            );
        }
        self.hyper.validate()
    }

    /// The split point of `n` training images: the weight half is `0..split`, the α /
    /// validation half `split..n`, with `split = floor(train_portion · n)` as the reference's
    /// `--train_portion` (spec §2.1), kept within `1..n` so that both halves hold an image.
    pub fn weight_half(&self, n: usize) -> usize {
        ((self.train_portion * n as f64).floor() as usize).clamp(1, n.max(2) - 1)
    }

    /// The supernet configuration for a loaded dataset.
    pub fn supernet_config(&self, ds: &Dataset) -> SupernetConfig {
        SupernetConfig {
            space: self.space,
            init_channels: self.init_channels,
            layers: self.layers,
            num_classes: ds.classes,
            in_channels: ds.train.channels,
            input_size: ds.train.size,
        }
    }
}

/// A dataset directory as a run stores it: absolute (against the current directory), plus what
/// was typed when that was relative. Returns `(data_dir, data_dir_typed)`. An absolute or absent
/// path is kept as it is.
pub fn absolute_data_dir(typed: &Option<PathBuf>) -> (Option<PathBuf>, Option<PathBuf>) {
    match typed {
        Some(p) if p.is_relative() => match std::path::absolute(p) {
            Ok(abs) => (Some(abs), Some(p.clone())),
            Err(_) => (Some(p.clone()), None),
        },
        other => (other.clone(), None),
    }
}

/// One line of `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    /// Epoch index (0-based).
    pub epoch: usize,
    /// Mean weight-step loss.
    pub train_loss: f64,
    /// Weight-step top-1 accuracy (percent).
    pub train_acc: f64,
    /// Mean α-step loss on the α half.
    pub valid_loss: f64,
    /// α-step top-1 accuracy (percent).
    pub valid_acc: f64,
    /// Weight learning rate of the epoch.
    pub lr: f64,
    /// SDARTS ε of the epoch (0 for other methods).
    pub epsilon: f64,
    /// softmax(α) after the epoch, per cell type `[edges][ops]` (normal first).
    pub softmax_alpha: Vec<Vec<Vec<f32>>>,
    /// Wall time of the epoch (seconds).
    pub seconds: f64,
}

/// What a search leaves.
pub struct SearchOutcome {
    /// Metrics of every epoch of the run (including epochs before a resume).
    pub metrics: Vec<EpochMetrics>,
    /// The magnitude genotype (DARTS text or NB201 string) of the final α.
    pub genotype: String,
    /// The trained run (settings, dataset, trainer on the run's autodiff device), ready for PT
    /// selection.
    pub run: Loaded,
    /// A stop was requested; the run is resumable from its last checkpoint.
    pub stopped: bool,
}

impl std::fmt::Debug for SearchOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchOutcome")
            .field("epochs", &self.metrics.len())
            .field("genotype", &self.genotype)
            .field("stopped", &self.stopped)
            .finish_non_exhaustive()
    }
}

/// A search run in memory: its settings, dataset (with `limit_train` applied, `n` images split at
/// `half`), supernet configuration, device and trainer.
pub struct Loaded {
    /// The search settings.
    pub settings: SearchSettings,
    /// The dataset.
    pub ds: Dataset,
    /// Training images used.
    pub n: usize,
    /// Split point: the weight half is `0..half`, the α / validation half `half..n`.
    pub half: usize,
    /// The supernet configuration.
    pub cfg: SupernetConfig,
    /// The device (description for the manifest).
    pub dev: device::ComputeDevice,
    /// The autodiff device the trainer lives on.
    pub device: Device,
    /// Supernet, α and both optimizers.
    pub trainer: Trainer,
}

/// Load the run's dataset and apply `limit_train`; returns it with the training-image count `n`
/// and the split point `half` (weight half `0..half`, α / validation half `half..n`).
pub fn open_dataset(settings: &SearchSettings) -> Result<(Dataset, usize, usize)> {
    let mut ds = data::load(
        settings.dataset,
        settings.data_dir.as_deref(),
        settings.digits_size,
    )?;
    if let Some(n) = settings.limit_train {
        ds.train.truncate(n);
    }
    let n = ds.train.len();
    if n < 2 {
        return Err(Error::Config {
            field: "limit_train".into(),
            message: format!("{n} training image(s) leave nothing to split"),
        });
    }
    Ok((ds, n, settings.weight_half(n)))
}

/// Sums over one epoch of bilevel steps.
#[derive(Clone, Copy, Debug, Default)]
pub struct EpochTotals {
    /// Mean weight-step loss.
    pub train_loss: f64,
    /// Weight-step accuracy (percent).
    pub train_acc: f64,
    /// Mean α-step loss.
    pub valid_loss: f64,
    /// α-step accuracy (percent).
    pub valid_acc: f64,
}

/// Bilevel steps whose measurements (losses, correct counts) are read back from the device at
/// once by [`train_epoch`] (issue 16: one wait for a GPU per group of steps, not per step).
pub const STATS_EVERY: usize = 8;

/// One epoch of bilevel steps: `half.div_ceil(batch)` steps, each drawing a random weight-half
/// batch and a random α-half batch (spec §2.1). The steps' measurements are read back from the
/// device [`STATS_EVERY`] steps at a time (and at the epoch's end), so that a GPU is not waited on
/// after every step; `on_step(step, loss)` then follows each of those steps in order. After every
/// step comes [`Control::checkpoint`] (the driver runs; a pause waits there). A non-finite loss
/// is an error naming its step, found when its group is read (the steps after it in the group
/// have run, but nothing of them is saved). A stop request is the
/// caller's to honour at its next checkpoint. `store` is named in the error of a non-finite loss
/// (its last checkpoint is kept).
#[allow(clippy::too_many_arguments)]
pub async fn train_epoch(
    trainer: &mut Trainer,
    ds: &Dataset,
    (n, half, batch_size): (usize, usize, usize),
    aug: Augment,
    lr: f64,
    epsilon: f64,
    rng: &mut rand_chacha::ChaCha8Rng,
    device: &Device,
    epoch: usize,
    store: &dyn RunStore,
    control: &Control,
    on_step: &mut dyn FnMut(usize, f64),
) -> Result<EpochTotals> {
    let steps = half.div_ceil(batch_size);
    let (mut tl, mut tc, mut vl, mut vc, mut tn, mut vn) =
        (0.0, 0usize, 0.0, 0usize, 0usize, 0usize);
    // Steps whose measurements are still on the device: (step, weight-half size, α-half size).
    let mut pending: Vec<(usize, usize, usize)> = Vec::new();
    let mut stats: Vec<PendingStats> = Vec::new();
    for step in 0..steps {
        let iw = random_batch(0..half, batch_size, rng);
        let ia = random_batch(half..n, batch_size, rng);
        let train = ds.batch(&ds.train, &iw, aug, rng, device);
        let valid = ds.batch(&ds.train, &ia, aug, rng, device);
        stats.push(
            trainer
                .step_pending(&train, &valid, lr, epsilon, rng)
                .await?,
        );
        pending.push((step, iw.len(), ia.len()));
        if pending.len() == STATS_EVERY || step + 1 == steps {
            let read = PendingStats::read_all(std::mem::take(&mut stats)).await?;
            for ((step, bw, ba), s) in pending.drain(..).zip(read) {
                if !s.train_loss.is_finite() || !s.valid_loss.is_finite() {
                    return Err(Error::NonFinite {
                        epoch,
                        step,
                        message: format!(
                            "loss became {} (weight step) / {} (α step); the last good checkpoint is kept in {}",
                            s.train_loss,
                            s.valid_loss,
                            store.location()
                        ),
                    });
                }
                tl += s.train_loss * bw as f64;
                vl += s.valid_loss * ba as f64;
                tc += s.train_correct;
                vc += s.valid_correct;
                tn += bw;
                vn += ba;
                on_step(step, s.train_loss);
            }
        }
        control.checkpoint().await;
    }
    Ok(EpochTotals {
        train_loss: tl / tn as f64,
        train_acc: 100.0 * tc as f64 / tn as f64,
        valid_loss: vl / vn as f64,
        valid_acc: 100.0 * vc as f64 / vn as f64,
    })
}

/// Validate `settings` and build the run before its first step: the dataset, the supernet
/// configuration, the device and a trainer holding the seeded supernet and α with fresh
/// optimizers.
pub fn prepare(settings: &SearchSettings) -> Result<Loaded> {
    settings.validate()?;
    let (ds, n, half) = open_dataset(settings)?;
    let cfg = settings.supernet_config(&ds);
    cfg.validate()?;
    let dev = device::open(settings.device)?;
    let device = dev.device.clone().autodiff();
    let (net, alphas) = build_seeded(&cfg, settings.seed, &device)?;
    let trainer = Trainer::new(
        net,
        alphas,
        settings.method,
        settings.second_order,
        settings.hyper.clone(),
    );
    Ok(Loaded {
        settings: settings.clone(),
        ds,
        n,
        half,
        cfg,
        dev,
        device,
        trainer,
    })
}

/// softmax(α) of every cell type as host rows `[cells][edges][ops]` (normal first).
pub async fn probs_rows(alphas: &Alphas) -> Result<Vec<Vec<Vec<f32>>>> {
    let mut out = Vec::new();
    for c in alphas.cell_types() {
        out.push(engine::read_rows(alphas.probs(c)).await?);
    }
    Ok(out)
}

/// The search loop (spec §2): run a search into `store`; with `resume`, continue the run found
/// there from its newest checkpoint (its `config.toml` wins over `settings`). Every epoch appends
/// its line to `metrics.jsonl` and saves a checkpoint; a stop request ([`Control`]) takes effect
/// after the epoch's checkpoint, leaving the run resumable. The magnitude genotype is written at
/// the end.
pub async fn search_in(
    settings: &SearchSettings,
    store: &dyn RunStore,
    resume: bool,
    control: &Control,
    emit: &mut dyn FnMut(Event),
) -> Result<SearchOutcome> {
    let settings = if resume {
        rundir::read_settings(store)?
    } else {
        let mut s = settings.clone();
        (s.data_dir, s.data_dir_typed) = absolute_data_dir(&s.data_dir);
        s
    };
    let mut run = prepare(&settings)?;
    let (n, half) = (run.n, run.half);
    let steps = half.div_ceil(settings.batch_size);
    let mut metrics: Vec<EpochMetrics> = Vec::new();
    let mut start = 0;
    if resume {
        if let Some((epoch, _)) =
            store.load_checkpoint(RunDir::CHECKPOINTS, &run.cfg, &run.device, &mut run.trainer)?
        {
            start = epoch;
            metrics = rundir::read_metrics(store)?
                .into_iter()
                .filter(|m| m.epoch < start)
                .collect();
        }
    } else {
        rundir::ensure_new_run(store)?;
        rundir::start_run(
            store,
            &settings,
            settings.device,
            &run.dev.description,
            settings.seed,
            settings.dataset,
            n,
            serde_json::json!({ "dataset_files": rundir::dataset_files(&run.ds)? }),
        )?;
    }
    emit(Event::SearchStarted {
        epoch: start,
        epochs: settings.epochs,
        steps,
        device: run.dev.description.clone(),
    });
    let aug0 = if settings.augment {
        Augment::search(&run.ds)
    } else {
        Augment::NONE
    };
    let h = &settings.hyper;
    let mut stopped = false;
    for epoch in start..settings.epochs {
        let t0 = Instant::now();
        let lr = cosine_lr(h.learning_rate, h.learning_rate_min, epoch, settings.epochs);
        let epsilon = match settings.method {
            Method::SdartsRs | Method::SdartsAdv => {
                0.03 + (h.epsilon_alpha - 0.03) * epoch as f64 / settings.epochs as f64
            }
            _ => 0.0,
        };
        let mut rng = epoch_rng(settings.seed, epoch);
        let mut aug = aug0;
        if settings.cutout {
            aug.cutout_length = settings.cutout_length;
            aug.cutout_prob =
                settings.cutout_prob * epoch as f64 / (settings.epochs.max(2) - 1) as f64;
        }
        run.device.seed(settings.seed.wrapping_add(epoch as u64));
        let totals = train_epoch(
            &mut run.trainer,
            &run.ds,
            (n, half, settings.batch_size),
            aug,
            lr,
            epsilon,
            &mut rng,
            &run.device,
            epoch,
            store,
            control,
            &mut |step, loss| emit(Event::Step { epoch, step, loss }),
        )
        .await?;
        let m = EpochMetrics {
            epoch,
            train_loss: totals.train_loss,
            train_acc: totals.train_acc,
            valid_loss: totals.valid_loss,
            valid_acc: totals.valid_acc,
            lr,
            epsilon,
            softmax_alpha: probs_rows(&run.trainer.alphas).await?,
            seconds: t0.elapsed().as_secs_f64(),
        };
        metrics.push(m.clone());
        rundir::write_jsonl_in(store, RunDir::METRICS, &metrics)?;
        store.save_checkpoint(
            RunDir::CHECKPOINTS,
            &format!("epoch-{:04}", epoch + 1),
            epoch + 1,
            &run.trainer,
            &[],
        )?;
        emit(Event::Epoch(m));
        if control.stop_requested() {
            stopped = true;
            break;
        }
    }
    let genotype = magnitude_genotype(settings.space, &probs_rows(&run.trainer.alphas).await?);
    if !stopped {
        store.write(
            RunDir::GENOTYPE_MAGNITUDE,
            format!("{genotype}\n").as_bytes(),
        )?;
    }
    Ok(SearchOutcome {
        metrics,
        genotype,
        run,
        stopped,
    })
}

/// [`search_in`] on the run directory `run_dir`, driven on this thread (native only).
/// `events` receives progress; returning `false` asks for a stop at the next checkpoint (the end
/// of the current epoch), leaving the run resumable.
#[cfg(not(target_arch = "wasm32"))]
pub fn search(
    settings: &SearchSettings,
    run_dir: &Path,
    resume: bool,
    events: &mut dyn FnMut(Event) -> bool,
) -> Result<SearchOutcome> {
    let control = Control::new();
    engine::block_on(search_in(
        settings,
        &RunDir::new(run_dir),
        resume,
        &control,
        &mut |e| {
            if !events(e) {
                control.request_stop();
            }
        },
    ))
}

/// The magnitude genotype (spec §3.6, §4.3) of softmax(α) rows `[cells][edges][ops]` as text.
pub fn magnitude_genotype(space: SpaceName, probs: &[Vec<Vec<f32>>]) -> String {
    let s = SearchSpace::new(space);
    match s.family {
        Family::Darts => derive_darts(&s, &probs[0], &probs[1]).to_string(),
        Family::Nb201 => derive_nb201(&probs[0]).to_string(),
    }
}
