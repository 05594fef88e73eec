//! The search job and its run directory (design: one engine, files as the record).
//!
//! ```text
//! RUN_DIR/
//!   config.toml        every resolved setting
//!   manifest.json      version, backend, adapter, kernels, seed, dataset files' sha256, times
//!   metrics.jsonl      one line per epoch: losses, accuracies, lr, ε, softmax(α), seconds
//!   checkpoints/       LATEST (name of the newest) and epoch-NNNN/ {supernet.bpk, state.safetensors, state.json}
//!   genotype_magnitude.txt / .json
//! ```
//!
//! Every file is written to a temporary name and renamed. `resume` continues from the newest
//! checkpoint; on `flex` the result equals an uninterrupted run bit for bit, because every random
//! choice of an epoch derives from (seed, epoch).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::{self, Augment, Dataset, DatasetName, random_batch};
use crate::device::{self, Backend};
use crate::error::{Error, Result};
use crate::genotype::{derive_darts, derive_nb201};
use crate::optim::cosine_lr;
use crate::search::{Hyper, Method, Trainer, epoch_rng};
use crate::space::{CellType, Family, SearchSpace, SpaceName};
use crate::supernet::{Alphas, Supernet, SupernetConfig, build_seeded, tensor_rows};

/// Every setting of a search run (`config.toml`). Defaults are the reference's (spec §2.2).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SearchSettings {
    /// Search space.
    pub space: SpaceName,
    /// Dataset.
    pub dataset: DatasetName,
    /// Where the dataset's files are (not needed for `digits`).
    pub data_dir: Option<PathBuf>,
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
}

impl SearchSettings {
    /// The reference's settings for `space` on `dataset`.
    pub fn reference(space: SpaceName, dataset: DatasetName) -> Self {
        let paper = SupernetConfig::paper(space);
        SearchSettings {
            space,
            dataset,
            data_dir: None,
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
        Ok(())
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

/// Progress reported while a search runs.
#[derive(Clone, Debug)]
pub enum Event {
    /// The run starts (or resumes) at `epoch` of `epochs`, `steps` steps each.
    Started {
        /// First epoch to run.
        epoch: usize,
        /// Total epochs.
        epochs: usize,
        /// Steps per epoch.
        steps: usize,
        /// Device description.
        device: String,
    },
    /// A bilevel step finished.
    Step {
        /// Epoch.
        epoch: usize,
        /// Step within the epoch.
        step: usize,
        /// Weight-step loss.
        loss: f64,
    },
    /// An epoch finished; its metrics line.
    Epoch(EpochMetrics),
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

/// Write `bytes` to `path` atomically (temporary file in the same directory, then rename).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    {
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    std::fs::rename(&tmp, path).map_err(io)
}

fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(format!("{:x}", sha2::Sha256::digest(&bytes)))
}

fn now_unix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// What a finished search leaves.
#[derive(Clone, Debug)]
pub struct SearchOutcome {
    /// Metrics of every epoch of the run (including epochs before a resume).
    pub metrics: Vec<EpochMetrics>,
    /// The magnitude genotype (DARTS text or NB201 string).
    pub genotype: String,
    /// Trained supernet (on the run's autodiff device).
    pub net: Supernet,
    /// Trained α.
    pub alphas: Alphas,
    /// The event handler asked to stop; the run is resumable from its last checkpoint.
    pub stopped: bool,
}

/// Read `RUN_DIR/config.toml`.
pub fn read_settings(run_dir: &Path) -> Result<SearchSettings> {
    let path = run_dir.join("config.toml");
    let text = std::fs::read_to_string(&path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            Error::Config {
                field: "run".into(),
                message: format!(
                    "{} is not a run directory (it has no config.toml); make one with `darts-pt search`, `run` or `import`",
                    run_dir.display()
                ),
            }
        } else {
            Error::Io {
                path: path.clone(),
                source,
            }
        }
    })?;
    toml::from_str(&text).map_err(|e| Error::Config {
        field: path.display().to_string(),
        message: e.to_string(),
    })
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
    Ok((ds, n, n / 2))
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
    /// A step callback asked to stop.
    pub stop_requested: bool,
}

/// One epoch of bilevel steps: `half.div_ceil(batch)` steps, each drawing a random weight-half
/// batch and a random α-half batch (spec §2.1). `on_step(step, loss)` returns `false` to ask for
/// a stop (honoured by the caller at its next checkpoint).
#[allow(clippy::too_many_arguments)]
pub fn train_epoch(
    trainer: &mut Trainer,
    ds: &Dataset,
    (n, half, batch_size): (usize, usize, usize),
    aug: Augment,
    lr: f64,
    epsilon: f64,
    rng: &mut rand_chacha::ChaCha8Rng,
    device: &Device,
    epoch: usize,
    run_dir: &Path,
    on_step: &mut dyn FnMut(usize, f64) -> bool,
) -> Result<EpochTotals> {
    let steps = half.div_ceil(batch_size);
    let (mut tl, mut tc, mut vl, mut vc, mut tn, mut vn) =
        (0.0, 0usize, 0.0, 0usize, 0usize, 0usize);
    let mut stop_requested = false;
    for step in 0..steps {
        let iw = random_batch(0..half, batch_size, rng);
        let ia = random_batch(half..n, batch_size, rng);
        let train = ds.batch(&ds.train, &iw, aug, rng, device);
        let valid = ds.batch(&ds.train, &ia, aug, rng, device);
        let s = trainer.step(&train, &valid, lr, epsilon, rng);
        if !s.train_loss.is_finite() || !s.valid_loss.is_finite() {
            return Err(Error::NonFinite {
                epoch,
                step,
                message: format!(
                    "loss became {} (weight step) / {} (α step); the last good checkpoint is kept in {}",
                    s.train_loss,
                    s.valid_loss,
                    run_dir.display()
                ),
            });
        }
        tl += s.train_loss * iw.len() as f64;
        vl += s.valid_loss * ia.len() as f64;
        tc += s.train_correct;
        vc += s.valid_correct;
        tn += iw.len();
        vn += ia.len();
        stop_requested |= !on_step(step, s.train_loss);
    }
    Ok(EpochTotals {
        train_loss: tl / tn as f64,
        train_acc: 100.0 * tc as f64 / tn as f64,
        valid_loss: vl / vn as f64,
        valid_acc: 100.0 * vc as f64 / vn as f64,
        stop_requested,
    })
}

/// Everything a run needs before its first step, built from its settings: the dataset (with
/// `limit_train` applied, `n` images split at `half`), the supernet configuration, the device and
/// a trainer holding the seeded supernet and α with fresh optimizers.
pub(crate) struct Prepared {
    pub(crate) ds: Dataset,
    pub(crate) n: usize,
    pub(crate) half: usize,
    pub(crate) cfg: SupernetConfig,
    pub(crate) dev: device::ComputeDevice,
    pub(crate) device: Device,
    pub(crate) trainer: Trainer,
}

/// Validate `settings` and build a [`Prepared`] run.
pub(crate) fn prepare(settings: &SearchSettings) -> Result<Prepared> {
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
    Ok(Prepared {
        ds,
        n,
        half,
        cfg,
        dev,
        device,
        trainer,
    })
}

/// Create a run directory: `config.toml` (the serialised `settings`), `manifest.json` (crate
/// version, backend and adapter, `--kernels`, seed, dataset, training images used, start time,
/// plus the fields of `extra`) and an empty `metrics.jsonl`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start_run_dir<S: Serialize>(
    run_dir: &Path,
    settings: &S,
    backend: Backend,
    adapter: &str,
    seed: u64,
    dataset: DatasetName,
    train_images: usize,
    extra: serde_json::Value,
) -> Result<()> {
    let mut manifest = serde_json::json!({
        "crate": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "backend": backend.as_str(),
        "adapter": adapter,
        "kernels": crate::kernels::kernels().as_str(),
        "seed": seed,
        "dataset": dataset.as_str(),
        "train_images": train_images,
        "started_unix": now_unix(),
    });
    if let (Some(m), serde_json::Value::Object(e)) = (manifest.as_object_mut(), extra) {
        m.extend(e);
    }
    let manifest = &manifest;
    std::fs::create_dir_all(run_dir).map_err(|source| Error::Io {
        path: run_dir.to_path_buf(),
        source,
    })?;
    let toml = toml::to_string_pretty(settings).map_err(|e| Error::Config {
        field: "settings".into(),
        message: e.to_string(),
    })?;
    write_atomic(&run_dir.join("config.toml"), toml.as_bytes())?;
    write_atomic(
        &run_dir.join("manifest.json"),
        serde_json::to_string_pretty(manifest)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    write_atomic(&run_dir.join("metrics.jsonl"), b"")
}

/// The dataset's files with their sha256, for a manifest.
pub(crate) fn dataset_files(ds: &Dataset) -> Result<serde_json::Value> {
    let files: Vec<serde_json::Value> = ds
        .files
        .iter()
        .map(|p| {
            Ok(serde_json::json!({"path": p.display().to_string(), "sha256": sha256_file(p)?}))
        })
        .collect::<Result<_>>()?;
    Ok(serde_json::Value::Array(files))
}

/// Refuse to start a fresh run in a directory that already holds one.
pub(crate) fn ensure_new_run_dir(run_dir: &Path) -> Result<()> {
    if run_dir.join("config.toml").exists() {
        return Err(Error::Config {
            field: "out".into(),
            message: format!(
                "{} already holds a run; continue it with --resume or choose another directory",
                run_dir.display()
            ),
        });
    }
    Ok(())
}

/// Run a search into `run_dir`; with `resume`, continue the run found there from its newest
/// checkpoint (its `config.toml` wins over `settings`).
/// `events` receives progress; returning `false` stops the run at the next checkpoint (the end of
/// the current epoch), leaving it resumable.
pub fn search(
    settings: &SearchSettings,
    run_dir: &Path,
    resume: bool,
    events: &mut dyn FnMut(Event) -> bool,
) -> Result<SearchOutcome> {
    let settings = if resume {
        read_settings(run_dir)?
    } else {
        settings.clone()
    };
    let Prepared {
        ds,
        n,
        half,
        cfg,
        dev,
        device,
        mut trainer,
    } = prepare(&settings)?;
    let steps = half.div_ceil(settings.batch_size);
    let mut metrics: Vec<EpochMetrics> = Vec::new();
    let mut start = 0;
    if resume {
        if let Some((epoch, _)) =
            load_checkpoint(&run_dir.join("checkpoints"), &cfg, &device, &mut trainer)?
        {
            start = epoch;
            metrics = read_metrics(run_dir)?
                .into_iter()
                .filter(|m| m.epoch < start)
                .collect();
        }
    } else {
        ensure_new_run_dir(run_dir)?;
        start_run_dir(
            run_dir,
            &settings,
            settings.device,
            &dev.description,
            settings.seed,
            settings.dataset,
            n,
            serde_json::json!({ "dataset_files": dataset_files(&ds)? }),
        )?;
    }
    events(Event::Started {
        epoch: start,
        epochs: settings.epochs,
        steps,
        device: dev.description.clone(),
    });
    let aug = if settings.augment {
        Augment::search(&ds)
    } else {
        Augment::NONE
    };
    let h = &settings.hyper;
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
        let mut aug = aug;
        if settings.cutout {
            aug.cutout_length = settings.cutout_length;
            aug.cutout_prob =
                settings.cutout_prob * epoch as f64 / (settings.epochs.max(2) - 1) as f64;
        }
        device.seed(settings.seed.wrapping_add(epoch as u64));
        let totals = train_epoch(
            &mut trainer,
            &ds,
            (n, half, settings.batch_size),
            aug,
            lr,
            epsilon,
            &mut rng,
            &device,
            epoch,
            &run_dir.join("checkpoints"),
            &mut |step, loss| events(Event::Step { epoch, step, loss }),
        )?;
        let stop_requested = totals.stop_requested;
        let m = EpochMetrics {
            epoch,
            train_loss: totals.train_loss,
            train_acc: totals.train_acc,
            valid_loss: totals.valid_loss,
            valid_acc: totals.valid_acc,
            lr,
            epsilon,
            softmax_alpha: trainer
                .alphas
                .cell_types()
                .iter()
                .map(|&c| tensor_rows(trainer.alphas.probs(c)))
                .collect(),
            seconds: t0.elapsed().as_secs_f64(),
        };
        append_metrics(run_dir, &m)?;
        save_checkpoint(
            &run_dir.join("checkpoints"),
            &format!("epoch-{:04}", epoch + 1),
            epoch + 1,
            &trainer,
            &[],
        )?;
        metrics.push(m.clone());
        if !events(Event::Epoch(m)) || stop_requested {
            return Ok(SearchOutcome {
                metrics,
                genotype: magnitude_genotype(settings.space, &trainer.alphas),
                net: trainer.net,
                alphas: trainer.alphas,
                stopped: true,
            });
        }
    }
    let genotype = magnitude_genotype(settings.space, &trainer.alphas);
    write_atomic(
        &run_dir.join("genotype_magnitude.txt"),
        format!("{genotype}\n").as_bytes(),
    )?;
    Ok(SearchOutcome {
        metrics,
        genotype,
        net: trainer.net,
        alphas: trainer.alphas,
        stopped: false,
    })
}

/// The magnitude genotype of α (spec §3.6, §4.3) as text.
pub fn magnitude_genotype(space: SpaceName, alphas: &Alphas) -> String {
    let s = SearchSpace::new(space);
    match s.family {
        Family::Darts => derive_darts(
            &s,
            &tensor_rows(alphas.probs(CellType::Normal)),
            &tensor_rows(alphas.probs(CellType::Reduce)),
        )
        .to_string(),
        Family::Nb201 => derive_nb201(&tensor_rows(alphas.probs(CellType::Normal))).to_string(),
    }
}

fn append_metrics(run_dir: &Path, m: &EpochMetrics) -> Result<()> {
    let mut existing: Vec<EpochMetrics> = read_metrics(run_dir)?
        .into_iter()
        .filter(|x| x.epoch < m.epoch)
        .collect();
    existing.push(m.clone());
    write_jsonl(&run_dir.join("metrics.jsonl"), &existing)
}

/// Read `RUN_DIR/metrics.jsonl` (empty when absent).
pub fn read_metrics(run_dir: &Path) -> Result<Vec<EpochMetrics>> {
    read_jsonl(&run_dir.join("metrics.jsonl"))
}

/// Read a JSON-lines file, one record per non-empty line (empty when the file is absent).
pub fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| Error::Data {
                path: path.to_path_buf(),
                message: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}

/// Write records as JSON lines, atomically.
pub fn write_jsonl<T: Serialize>(path: &Path, records: &[T]) -> Result<()> {
    let mut text = String::new();
    for x in records {
        text.push_str(&serde_json::to_string(x).unwrap_or_default());
        text.push('\n');
    }
    write_atomic(path, text.as_bytes())
}

#[derive(Serialize, Deserialize)]
struct CheckpointState {
    /// Epochs completed.
    epoch: usize,
    /// Adam step counts by α name.
    adam_steps: Vec<(String, u64)>,
}

fn f32_bytes(t: Tensor<1>) -> Vec<u8> {
    let v: Vec<f32> = t
        .into_data()
        .convert::<f32>()
        .try_into_vec()
        .expect("f32 tensor");
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A named f32 tensor for a safetensors file: name, shape, little-endian bytes.
pub(crate) type NamedTensor = (String, Vec<usize>, Vec<u8>);

/// Write `named` f32 tensors as a safetensors file, atomically.
pub(crate) fn write_tensors(path: &Path, named: &[NamedTensor]) -> Result<()> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = named
        .iter()
        .map(|(k, shape, bytes)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .expect("consistent view"),
            )
        })
        .collect();
    let bytes = safetensors::serialize(views, None).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_atomic(path, &bytes)
}

/// f32 tensors by name: (shape, values).
pub(crate) type TensorMap = std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Read every f32 tensor of a safetensors file.
pub(crate) fn read_tensors(path: &Path) -> Result<TensorMap> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    Ok(st
        .tensors()
        .into_iter()
        .map(|(name, v)| {
            let data = v
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            (name, (v.shape().to_vec(), data))
        })
        .collect())
}

/// The SGD momentum buffers as named tensors (`sgd.PATH`).
pub(crate) fn sgd_tensors(sgd: &crate::optim::Sgd) -> Vec<NamedTensor> {
    sgd.buffers
        .iter()
        .map(|(k, b)| (format!("sgd.{k}"), b.dims().to_vec(), f32_bytes(b.clone())))
        .collect()
}

/// Restore SGD momentum buffers from tensors read by [`read_tensors`].
pub(crate) fn load_sgd_tensors(sgd: &mut crate::optim::Sgd, tensors: &TensorMap, device: &Device) {
    sgd.buffers.clear();
    for (name, (_, b)) in tensors {
        if let Some(k) = name.strip_prefix("sgd.") {
            sgd.buffers.insert(
                k.to_string(),
                Tensor::<1>::from_data(TensorData::new(b.clone(), [b.len()]), device),
            );
        }
    }
}

/// Write checkpoint `name` in `ckpts`: `fill` writes its files into a temporary directory, which
/// is then renamed into place; `ckpts/LATEST` is pointed at it and older checkpoints deleted. A
/// kill at any moment leaves the previous or the new checkpoint complete.
pub(crate) fn commit_checkpoint(
    ckpts: &Path,
    name: &str,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let tmp = ckpts.join(format!(".{name}.tmp"));
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| Error::Io { path: p, source }
    };
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    fill(&tmp)?;
    let final_dir = ckpts.join(name);
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(io(&final_dir))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
    write_atomic(&ckpts.join("LATEST"), name.as_bytes())?;
    // Keep only the newest checkpoint (and whatever temporary directory a kill left).
    if let Ok(entries) = std::fs::read_dir(ckpts) {
        for e in entries.flatten() {
            let fname = e.file_name().to_string_lossy().to_string();
            if !fname.starts_with('.') && fname != "LATEST" && fname != name {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok(())
}

/// The directory `ckpts/LATEST` points at, or `None` when there is no checkpoint yet.
pub(crate) fn latest_checkpoint(ckpts: &Path) -> Option<PathBuf> {
    let name = std::fs::read_to_string(ckpts.join("LATEST")).ok()?;
    Some(ckpts.join(name.trim()))
}

/// Save the trainer (supernet, α, both optimizers' state) as checkpoint `name` in `ckpts`, with
/// `extra` files (name, bytes) beside it (see [`commit_checkpoint`]).
pub(crate) fn save_checkpoint(
    ckpts: &Path,
    name: &str,
    epoch: usize,
    t: &Trainer,
    extra: &[(&str, Vec<u8>)],
) -> Result<()> {
    commit_checkpoint(ckpts, name, |tmp| {
        t.net
            .valid()
            .save_file(tmp.join("supernet.bpk"))
            .map_err(|e| Error::Checkpoint {
                path: tmp.join("supernet.bpk"),
                message: format!("{e:?}"),
            })?;
        // α, Adam moments and SGD momentum buffers.
        let mut named: Vec<NamedTensor> = Vec::new();
        for c in t.alphas.cell_types() {
            let a = t.alphas.logits(c).inner();
            let dims = a.dims().to_vec();
            let n: usize = dims.iter().product();
            named.push((
                format!("alpha.{}", c.name()),
                dims,
                f32_bytes(a.reshape([n])),
            ));
        }
        for (k, (_, m, v)) in &t.adam.state {
            named.push((
                format!("adam.{k}.m"),
                m.dims().to_vec(),
                f32_bytes(m.clone()),
            ));
            named.push((
                format!("adam.{k}.v"),
                v.dims().to_vec(),
                f32_bytes(v.clone()),
            ));
        }
        named.extend(sgd_tensors(&t.sgd));
        write_tensors(&tmp.join("state.safetensors"), &named)?;
        let state = CheckpointState {
            epoch,
            adam_steps: t
                .adam
                .state
                .iter()
                .map(|(k, (s, _, _))| (k.clone(), *s))
                .collect(),
        };
        write_atomic(
            &tmp.join("state.json"),
            serde_json::to_string_pretty(&state)
                .unwrap_or_default()
                .as_bytes(),
        )?;
        for (file, bytes) in extra {
            write_atomic(&tmp.join(file), bytes)?;
        }
        Ok(())
    })
}

/// Load the newest checkpoint in `ckpts` into `t`; returns its epoch count and directory, or
/// `None` when there is no checkpoint yet.
pub(crate) fn load_checkpoint(
    ckpts: &Path,
    cfg: &SupernetConfig,
    device: &Device,
    t: &mut Trainer,
) -> Result<Option<(usize, PathBuf)>> {
    let Some(dir) = latest_checkpoint(ckpts) else {
        return Ok(None);
    };
    let bad = |p: &Path, message: String| Error::Checkpoint {
        path: p.to_path_buf(),
        message,
    };
    let plain = device.clone().without_autodiff();
    let net = Supernet::new(cfg, &plain)?
        .try_load_file(dir.join("supernet.bpk"))
        .map_err(|e| bad(&dir.join("supernet.bpk"), format!("{e:?}")))?;
    let state: CheckpointState = read_json(&dir.join("state.json"))?;
    let st_path = dir.join("state.safetensors");
    let tensors = read_tensors(&st_path)?;
    let read = |name: &str| -> Result<(Vec<usize>, Vec<f32>)> {
        tensors
            .get(name)
            .cloned()
            .ok_or_else(|| bad(&st_path, format!("missing tensor `{name}`")))
    };
    let mut rows = Vec::new();
    for c in t.alphas.cell_types() {
        let (shape, data) = read(&format!("alpha.{}", c.name()))?;
        rows.push(
            data.chunks(shape[1])
                .map(<[f32]>::to_vec)
                .collect::<Vec<_>>(),
        );
    }
    let alphas = Alphas::from_rows(&rows[0], rows.get(1).map(Vec::as_slice), &plain);
    let to_t = |data: Vec<f32>| {
        Tensor::<1>::from_data(TensorData::new(data.clone(), [data.len()]), &plain)
    };
    t.adam.state.clear();
    for (k, steps) in &state.adam_steps {
        let (_, m) = read(&format!("adam.{k}.m"))?;
        let (_, v) = read(&format!("adam.{k}.v"))?;
        t.adam.state.insert(k.clone(), (*steps, to_t(m), to_t(v)));
    }
    load_sgd_tensors(&mut t.sgd, &tensors, &plain);
    t.net = net.fork(device).train();
    t.alphas = alphas.fork(device).train();
    Ok(Some((state.epoch, dir)))
}

/// Read a JSON file; errors name the file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// Turn a darts-pt search checkpoint (`.pt` as `train_search.py` writes it, or safetensors) into
/// a run directory at `run_dir`, as if our search had produced it: `config.toml` (with `epochs`
/// set to the checkpoint's epoch when it has one), `manifest.json` naming the source file and its
/// sha256, the supernet, α and α's Adam state as the final checkpoint, and
/// `genotype_magnitude.txt`. `darts-pt select` then works on it. The dataset must be present (PT
/// scores on its validation half). Returns the magnitude genotype. Native only.
#[cfg(not(target_arch = "wasm32"))]
pub fn import_reference(
    checkpoint: &Path,
    settings: &SearchSettings,
    run_dir: &Path,
) -> Result<String> {
    let mut settings = settings.clone();
    settings.validate()?;
    if run_dir.join("config.toml").exists() {
        return Err(Error::Config {
            field: "out".into(),
            message: format!(
                "{} already holds a run; choose another directory",
                run_dir.display()
            ),
        });
    }
    let (ds, n, _) = open_dataset(&settings)?;
    let cfg = settings.supernet_config(&ds);
    cfg.validate()?;
    let dev = device::open(settings.device)?;
    let device = dev.device.clone().autodiff();
    let (net, alphas, ck) =
        crate::import::load_reference_checkpoint(checkpoint, &cfg, &dev.device)?;
    if let Some(e) = ck.epoch {
        settings.epochs = e.max(1);
    }
    let mut trainer = Trainer::new(
        net.fork(&device).train(),
        alphas.fork(&device).train(),
        settings.method,
        settings.second_order,
        settings.hyper.clone(),
    );
    for (cell, (steps, m, v)) in trainer.alphas.cell_types().into_iter().zip(&ck.adam) {
        let t = |d: &Vec<f32>| {
            Tensor::<1>::from_data(TensorData::new(d.clone(), [d.len()]), &dev.device)
        };
        trainer
            .adam
            .state
            .insert(cell.name().to_string(), (*steps, t(m), t(v)));
    }
    start_run_dir(
        run_dir,
        &settings,
        settings.device,
        &dev.description,
        settings.seed,
        settings.dataset,
        n,
        serde_json::json!({
            "imported_from": {
            "path": checkpoint.display().to_string(),
            "sha256": sha256_file(checkpoint)?,
            "epoch": ck.epoch,
            "adam_state": !ck.adam.is_empty(),
        }
        }),
    )?;
    save_checkpoint(
        &run_dir.join("checkpoints"),
        &format!("epoch-{:04}", settings.epochs),
        settings.epochs,
        &trainer,
        &[],
    )?;
    let genotype = magnitude_genotype(settings.space, &trainer.alphas);
    write_atomic(
        &run_dir.join("genotype_magnitude.txt"),
        format!("{genotype}\n").as_bytes(),
    )?;
    Ok(genotype)
}
