//! Training an evaluation network from scratch (`darts-pt train`, spec §4.1) into a run directory.
//!
//! ```text
//! RUN_DIR/
//!   config.toml     every resolved setting (TrainSettings), the architecture included
//!   manifest.json   crate version, backend and adapter, seed, dataset files' sha256, parameter
//!                   counts and FLOPs
//!   genotype.txt    the architecture trained
//!   metrics.jsonl   one line per epoch: lr, drop-path probability, train loss/accuracy, test
//!                   loss/accuracy, seconds
//!   checkpoints/    LATEST and epoch-NNNN/ {network.bpk, sgd.safetensors, state.json}; state.json
//!                   records the architecture, so a checkpoint is always rebuilt with its own
//!   result.json     the final epoch's test accuracy (the result, as original DARTS reports it)
//!                   and, labelled separately, the best epoch's (darts-pt's "best valid_acc")
//! ```
//!
//! The protocol is the reference's (darts-pt `sota/cnn/train.py`): SGD lr 0.025, momentum 0.9,
//! weight decay 3e-4 on every parameter, cosine schedule to 0 stepped per epoch, batch 96, global
//! gradient-norm clip 5, loss = CE + 0.4·CE(auxiliary), drop-path probability 0.2·epoch/epochs,
//! random crop (pad 4) + flip + cutout 16, a shuffled pass over the whole training set per epoch,
//! test accuracy with BN running statistics after every epoch.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::data::{self, Augment, Dataset, DatasetName, ImageSet};
use crate::device::{self, Backend};
use crate::error::{Error, Result};
use crate::network::{Architecture, Network, NetworkConfig, Pass};
use crate::optim::{Sgd, cosine_lr};
use crate::rundir::{
    RunDir, commit_checkpoint, dataset_files, ensure_new_run, latest_checkpoint, load_sgd_tensors,
    read_json, read_jsonl, read_tensors, sgd_tensors, start_run, write_atomic, write_jsonl,
    write_tensors,
};
use crate::search::{epoch_rng, loss_and_correct};
use crate::supernet::reset_parameters;

cli_enum! {
    /// Settings presets of `darts-pt train`.
    TrainPreset {
        /// The reference protocol (spec §4.1): DARTS C=36, 20 cells, auxiliary head, cutout, 600
        /// epochs; NAS-Bench-201 C=16, N=5, 200 epochs. For GPUs.
        #[default]
        Paper = "paper",
        /// RobustDARTS' CIFAR-100 / SVHN protocol (spec §4.1): as `paper` with C=16 and 8 cells.
        Robust = "robust",
        /// CPU-sized: C=16 with 5 cells (DARTS) or N=1 (NAS-Bench-201), 10 epochs, batch 64, the
        /// first 5,000 training images; the protocol is otherwise the reference's.
        Quick = "quick",
        /// NAS-Bench-201's own training protocol (Dong & Yang, 2020), the one its table's
        /// accuracies come from: SGD lr 0.1 with Nesterov momentum 0.9, cosine to 0, weight
        /// decay 5e-4, batch 256, 200 epochs, no gradient clip, no cutout, no drop-path, no
        /// auxiliary head.
        Nb201 = "nb201",
    }
}

/// Every setting of a training run (`config.toml`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainSettings {
    /// The architecture: `Genotype(...)` text or a NAS-Bench-201 string.
    pub architecture: String,
    /// Dataset.
    pub dataset: DatasetName,
    /// Where the dataset's files are (not needed for `digits`); stored absolute, as a search's.
    pub data_dir: Option<PathBuf>,
    /// `data_dir` as it was typed, when that was a relative path (for display only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_dir_typed: Option<PathBuf>,
    /// Epochs (600 for DARTS, 200 for NAS-Bench-201).
    pub epochs: usize,
    /// Batch size (96).
    pub batch_size: usize,
    /// Seed of initialisation, data order, augmentation and drop-path (2, as darts-pt's scripts).
    pub seed: u64,
    /// Initial channels C.
    pub init_channels: usize,
    /// Cells (DARTS) or cells per stage (NAS-Bench-201).
    pub layers: usize,
    /// Auxiliary head (DARTS only).
    pub auxiliary: bool,
    /// Weight of the auxiliary loss (0.4).
    pub auxiliary_weight: f64,
    /// Final drop-path probability, reached linearly over the epochs (0.2; DARTS only).
    pub drop_path_prob: f64,
    /// Random crop and flip.
    pub augment: bool,
    /// Cutout on every training image.
    pub cutout: bool,
    /// Cutout square side in pixels (16).
    pub cutout_length: usize,
    /// Cutout probability (1.0).
    pub cutout_prob: f64,
    /// Initial learning rate (0.025).
    pub learning_rate: f64,
    /// Final learning rate of the cosine schedule (0).
    pub learning_rate_min: f64,
    /// SGD momentum (0.9).
    pub momentum: f64,
    /// Weight decay (3e-4).
    pub weight_decay: f64,
    /// Global gradient-norm clip (5; 0 = no clip, as NAS-Bench-201's protocol).
    pub grad_clip: f64,
    /// Nesterov momentum (off; on in NAS-Bench-201's protocol, `--preset nb201`).
    #[serde(default)]
    pub nesterov: bool,
    /// Train on the first N training images only.
    pub limit_train: Option<usize>,
    /// Test on the first N test images only.
    pub limit_test: Option<usize>,
    /// Size the embedded digits are upsampled to.
    pub digits_size: usize,
    /// Compute device.
    pub device: Backend,
}

impl TrainSettings {
    /// The reference protocol for `arch` on `dataset` (spec §4.1). NAS-Bench-201 networks get the
    /// same optimiser for 200 epochs with neither cutout nor drop-path (NAS-Bench-201's own
    /// accuracies come from its protocol: lr 0.1 with Nesterov, batch 256, weight decay 5e-4;
    /// `darts-pt lookup` gives those).
    pub fn reference(arch: &Architecture, dataset: DatasetName) -> Self {
        let cfg = NetworkConfig::paper(arch);
        let darts = matches!(arch, Architecture::Darts(_));
        TrainSettings {
            architecture: arch.to_string(),
            dataset,
            data_dir: None,
            data_dir_typed: None,
            epochs: if darts { 600 } else { 200 },
            batch_size: 96,
            seed: 2,
            init_channels: cfg.init_channels,
            layers: cfg.layers,
            auxiliary: cfg.auxiliary,
            auxiliary_weight: 0.4,
            drop_path_prob: if darts { 0.2 } else { 0.0 },
            augment: true,
            cutout: darts,
            cutout_length: 16,
            cutout_prob: 1.0,
            learning_rate: 0.025,
            learning_rate_min: 0.0,
            momentum: 0.9,
            weight_decay: 3e-4,
            grad_clip: 5.0,
            nesterov: false,
            limit_train: None,
            limit_test: None,
            digits_size: 16,
            device: Backend::Cpu,
        }
    }

    /// Apply `preset` over the reference settings.
    pub fn apply_preset(&mut self, preset: TrainPreset) {
        let darts = !self.architecture.trim_start().starts_with('|');
        match preset {
            TrainPreset::Paper => {}
            TrainPreset::Robust => {
                if darts {
                    self.init_channels = 16;
                    self.layers = 8;
                }
            }
            TrainPreset::Nb201 => {
                self.learning_rate = 0.1;
                self.learning_rate_min = 0.0;
                self.momentum = 0.9;
                self.nesterov = true;
                self.weight_decay = 5e-4;
                self.batch_size = 256;
                self.epochs = 200;
                self.grad_clip = 0.0;
                self.cutout = false;
                self.drop_path_prob = 0.0;
                self.auxiliary = false;
            }
            TrainPreset::Quick => {
                self.init_channels = 16;
                self.layers = if darts { 5 } else { 1 };
                self.epochs = 10;
                self.batch_size = 64;
                self.limit_train = Some(5000);
            }
        }
    }

    /// The architecture, parsed.
    pub fn arch(&self) -> Result<Architecture> {
        self.architecture.parse().map_err(|e: Error| Error::Config {
            field: "architecture".into(),
            message: e.to_string(),
        })
    }

    /// The network's size knobs on dataset `ds`.
    pub fn network_config(&self, ds: &Dataset) -> NetworkConfig {
        NetworkConfig {
            init_channels: self.init_channels,
            layers: self.layers,
            auxiliary: self.auxiliary,
            num_classes: ds.classes,
            in_channels: ds.train.channels,
            input_size: ds.train.size,
        }
    }

    /// Check the settings that no later step checks; errors name the setting.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, message: &str| {
            Err(Error::Config {
                field: field.into(),
                message: message.into(),
            })
        };
        self.arch()?;
        if self.epochs == 0 {
            return bad("epochs", "must be at least 1");
        }
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1");
        }
        if !(0.0..1.0).contains(&self.drop_path_prob) {
            return bad("drop_path_prob", "must be in [0, 1)");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return bad("learning_rate", "must be a positive number");
        }
        if !(0.0..=1.0).contains(&self.cutout_prob) {
            return bad("cutout_prob", "must be in [0, 1]");
        }
        if self.limit_train == Some(0) || self.limit_test == Some(0) {
            return bad("limit_train", "limits must be at least 1 image");
        }
        Ok(())
    }

    /// The training augmentation.
    fn augment(&self, ds: &Dataset) -> Augment {
        let mut aug = if self.augment {
            Augment::search(ds)
        } else {
            Augment::NONE
        };
        if self.cutout {
            aug.cutout_length = self.cutout_length;
            aug.cutout_prob = self.cutout_prob;
        }
        aug
    }
}

/// One line of a training run's `metrics.jsonl`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainMetrics {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Learning rate of the epoch.
    pub lr: f64,
    /// Drop-path probability of the epoch.
    pub drop_path_prob: f64,
    /// Mean training loss (auxiliary term included).
    pub train_loss: f64,
    /// Training accuracy of the main head (percent).
    pub train_acc: f64,
    /// Test loss after the epoch (BN running statistics).
    pub test_loss: f64,
    /// Test accuracy after the epoch (percent).
    pub test_acc: f64,
    /// Seconds of the epoch (training and test).
    pub seconds: f64,
}

/// Progress of a training run.
#[derive(Clone, Debug)]
pub enum TrainEvent {
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
        /// Parameters without the auxiliary head.
        params: usize,
    },
    /// A step finished.
    Step {
        /// Epoch.
        epoch: usize,
        /// Step within the epoch.
        step: usize,
        /// Loss of the step.
        loss: f64,
    },
    /// An epoch finished.
    Epoch(TrainMetrics),
}

/// `result.json` of a finished training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainResult {
    /// The architecture trained.
    pub architecture: String,
    /// Parameters, auxiliary head included.
    pub params: usize,
    /// Parameters without the auxiliary head (the size papers report).
    pub params_without_auxiliary: usize,
    /// Multiply-accumulates of one inference forward pass of one image.
    pub flops: u64,
    /// Epochs trained.
    pub epochs: usize,
    /// Test accuracy after the final epoch (percent): the result.
    pub final_test_acc: f64,
    /// Test loss after the final epoch.
    pub final_test_loss: f64,
    /// Best test accuracy over the epochs (percent; darts-pt logs this as "best valid_acc"; it is
    /// selected on the test set and so optimistic).
    pub best_test_acc: f64,
    /// Epoch of the best test accuracy.
    pub best_epoch: usize,
    /// Mean seconds per epoch.
    pub seconds_per_epoch: f64,
    /// Test images.
    pub test_images: usize,
}

#[derive(Serialize, Deserialize)]
struct TrainState {
    /// Epochs completed.
    epoch: usize,
    /// The architecture of the weights in `network.bpk`.
    architecture: String,
    /// The network's size knobs.
    config: NetworkConfig,
}

/// What [`train`] returns.
pub struct TrainOutcome {
    /// Per-epoch metrics (resumed runs include the earlier epochs).
    pub metrics: Vec<TrainMetrics>,
    /// The result (`None` when the run was stopped before its last epoch).
    pub result: Option<TrainResult>,
    /// The trained network (on the training device, autodiff wrapper dropped).
    pub net: Network,
}

/// Mean loss and accuracy (percent) of `net` on `set` in evaluation mode, in batches of
/// `batch_size`, without an autodiff graph.
pub fn evaluate(
    net: &Network,
    ds: &Dataset,
    set: &ImageSet,
    batch_size: usize,
    device: &Device,
) -> (f64, f64) {
    let net = net.valid();
    let n = set.len();
    let mut rng = epoch_rng(0, 0);
    let (mut loss, mut correct) = (0.0, 0usize);
    for start in (0..n).step_by(batch_size.max(1)) {
        let idx: Vec<usize> = (start..(start + batch_size).min(n)).collect();
        let b = ds.batch(set, &idx, Augment::NONE, &mut rng, device);
        let (logits, _) = net.forward(b.images, Pass::Eval);
        let (l, c) = loss_and_correct(logits, b.labels);
        loss += l.into_scalar::<f64>() * idx.len() as f64;
        correct += c.into_scalar::<i64>() as usize;
    }
    let n = n.max(1) as f64;
    (loss / n, 100.0 * correct as f64 / n)
}

/// Load the dataset of `settings` with the limits applied.
pub fn open_dataset(settings: &TrainSettings) -> Result<Dataset> {
    let mut ds = data::load(
        settings.dataset,
        settings.data_dir.as_deref(),
        settings.digits_size,
    )?;
    if let Some(n) = settings.limit_train {
        ds.train.truncate(n);
    }
    if let Some(n) = settings.limit_test {
        ds.test.truncate(n);
    }
    if ds.train.is_empty() || ds.test.is_empty() {
        return Err(Error::Config {
            field: "dataset".into(),
            message: format!(
                "{} has {} training and {} test images; both are needed",
                settings.dataset,
                ds.train.len(),
                ds.test.len()
            ),
        });
    }
    Ok(ds)
}

fn save(ckpts: &Path, epoch: usize, net: &Network, sgd: &Sgd, state: &TrainState) -> Result<()> {
    commit_checkpoint(ckpts, &format!("epoch-{epoch:04}"), |tmp| {
        let bpk = tmp.join("network.bpk");
        net.valid().save_file(&bpk).map_err(|e| Error::Checkpoint {
            path: bpk.clone(),
            message: crate::rundir::record_message(&e),
        })?;
        crate::rundir::sync_written(&bpk)?;
        write_tensors(&tmp.join("sgd.safetensors"), &sgd_tensors(sgd))?;
        let state_path = tmp.join("state.json");
        let text = serde_json::to_string_pretty(state).map_err(|e| Error::Checkpoint {
            path: state_path.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&state_path, text.as_bytes())
    })
}

/// A trained network loaded back from a run directory.
pub struct TrainedNetwork {
    /// The run's settings.
    pub settings: TrainSettings,
    /// The architecture (from the checkpoint, checked against `config.toml`).
    pub architecture: Architecture,
    /// The network's size knobs.
    pub config: NetworkConfig,
    /// Epochs the weights were trained for.
    pub epoch: usize,
    /// The network on `device`.
    pub net: Network,
}

/// Load the newest checkpoint of the training run in `run_dir` onto `device`: the network is
/// rebuilt from the architecture recorded in the checkpoint, then its weights are loaded.
pub fn load_trained(run_dir: &Path, device: &Device) -> Result<TrainedNetwork> {
    let settings = read_train_settings(run_dir)?;
    let ckpts = RunDir::new(run_dir).path(RunDir::CHECKPOINTS);
    let dir = latest_checkpoint(&ckpts).ok_or_else(|| Error::Checkpoint {
        path: ckpts.clone(),
        message: "no checkpoint yet (LATEST is missing): the run has not finished an epoch".into(),
    })?;
    let state: TrainState = read_json(&dir.join("state.json"))?;
    let architecture: Architecture = state.architecture.parse()?;
    if architecture != settings.arch()? {
        return Err(Error::Checkpoint {
            path: dir.join("state.json"),
            message: format!(
                "the checkpoint holds {architecture}, but config.toml names {}",
                settings.architecture
            ),
        });
    }
    let net = crate::rundir::load_module_file(
        Network::new(&architecture, &state.config, device)?,
        &dir.join("network.bpk"),
    )?;
    Ok(TrainedNetwork {
        settings,
        architecture,
        config: state.config,
        epoch: state.epoch,
        net,
    })
}

/// Read `RUN_DIR/config.toml` of a training run.
pub fn read_train_settings(run_dir: &Path) -> Result<TrainSettings> {
    let path = RunDir::new(run_dir).path(RunDir::CONFIG);
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    toml::from_str(&text).map_err(|e| Error::Config {
        field: path.display().to_string(),
        message: format!("not a training run's config.toml: {e}"),
    })
}

/// Train the network of `settings` into `run_dir`; with `resume`, continue the run there from
/// its newest checkpoint (its `config.toml` wins). `events` receives progress; returning `false`
/// stops the run after the current epoch's checkpoint, leaving it resumable.
pub fn train(
    settings: &TrainSettings,
    run_dir: &Path,
    resume: bool,
    events: &mut dyn FnMut(TrainEvent) -> bool,
) -> Result<TrainOutcome> {
    let settings = if resume {
        read_train_settings(run_dir)?
    } else {
        let mut s = settings.clone();
        (s.data_dir, s.data_dir_typed) = crate::run::absolute_data_dir(&s.data_dir);
        s
    };
    settings.validate()?;
    let arch = settings.arch()?;
    let ds = open_dataset(&settings)?;
    let cfg = settings.network_config(&ds);
    cfg.validate(&arch)?;
    let dev = device::open(settings.device)?;
    let plain = dev.device.clone();
    let device = plain.clone().autodiff();
    let mut net = reset_parameters(Network::new(&arch, &cfg, &plain)?, settings.seed);
    let params = net.params();
    let params_without_auxiliary = params - net.auxiliary_params();
    let flops = net.flops(cfg.input_size);
    let mut sgd =
        Sgd::new(settings.momentum, settings.weight_decay).with_nesterov(settings.nesterov);
    let ckpts = RunDir::new(run_dir).path(RunDir::CHECKPOINTS);
    let mut start = 0;
    let mut metrics: Vec<TrainMetrics> = Vec::new();
    if resume {
        if latest_checkpoint(&ckpts).is_some() {
            let t = load_trained(run_dir, &plain)?;
            net = t.net;
            start = t.epoch;
            let Some(dir) = latest_checkpoint(&ckpts) else {
                unreachable!("a checkpoint was just loaded from {}", ckpts.display());
            };
            let sgd_path = dir.join("sgd.safetensors");
            let tensors = read_tensors(&sgd_path)?;
            crate::rundir::check_sgd_tensors(&net, &tensors, &sgd_path)?;
            load_sgd_tensors(&mut sgd, &tensors, &plain);
            let metrics_path = RunDir::new(run_dir).path(RunDir::METRICS);
            metrics = read_jsonl::<TrainMetrics>(&metrics_path)?
                .into_iter()
                .filter(|m| m.epoch < start)
                .collect();
            if metrics.len() != start {
                return Err(Error::Data {
                    path: metrics_path,
                    message: format!(
                        "holds {} of the {start} epochs the last checkpoint has trained (missing or cut short); the run cannot be resumed with its record incomplete (`darts-pt evaluate --run {}` still measures the network)",
                        metrics.len(),
                        run_dir.display()
                    ),
                });
            }
        }
    } else {
        ensure_new_run(&RunDir::new(run_dir))?;
        start_run(
            &RunDir::new(run_dir),
            &settings,
            settings.device,
            &dev.description,
            settings.seed,
            settings.dataset,
            ds.train.len(),
            serde_json::json!({
                "dataset_files": dataset_files(&ds)?,
                "test_images": ds.test.len(),
                "params": params,
                "params_without_auxiliary": params_without_auxiliary,
                "flops": flops,
            }),
        )?;
        write_atomic(
            &RunDir::new(run_dir).path(RunDir::TRAIN_GENOTYPE),
            format!("{arch}\n").as_bytes(),
        )?;
    }
    let mut net = net.fork(&device).train();
    let n = ds.train.len();
    let steps = n.div_ceil(settings.batch_size);
    events(TrainEvent::Started {
        epoch: start,
        epochs: settings.epochs,
        steps,
        device: dev.description.clone(),
        params: params_without_auxiliary,
    });
    let aug = settings.augment(&ds);
    for epoch in start..settings.epochs {
        let t0 = Instant::now();
        let lr = cosine_lr(
            settings.learning_rate,
            settings.learning_rate_min,
            epoch,
            settings.epochs,
        );
        let drop = settings.drop_path_prob * epoch as f64 / settings.epochs as f64;
        let mut rng = epoch_rng(settings.seed, epoch);
        device.seed(settings.seed.wrapping_add(epoch as u64));
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let (mut tl, mut tc) = (0.0, 0usize);
        let mut stop = false;
        for (step, idx) in order.chunks(settings.batch_size).enumerate() {
            let b = ds.batch(&ds.train, idx, aug, &mut rng, &device);
            let (logits, aux) = net.forward(b.images, Pass::Train { drop_path: drop });
            let (mut loss, correct) = loss_and_correct(logits, b.labels.clone());
            if let Some(aux) = aux {
                let (aux_loss, _) = loss_and_correct(aux, b.labels);
                loss = loss.add(aux_loss.mul_scalar(settings.auxiliary_weight));
            }
            let grads = loss.backward();
            let l = loss.into_scalar::<f64>();
            if !l.is_finite() {
                return Err(Error::NonFinite {
                    epoch,
                    step,
                    message: format!(
                        "training loss became {l}; the last good checkpoint is kept in {}",
                        ckpts.display()
                    ),
                });
            }
            let clip = (settings.grad_clip > 0.0).then_some(settings.grad_clip);
            let (next, _) = sgd.step(net, &grads, lr, clip);
            net = next;
            tl += l * idx.len() as f64;
            tc += correct.into_scalar::<i64>() as usize;
            stop |= !events(TrainEvent::Step {
                epoch,
                step,
                loss: l,
            });
        }
        let (test_loss, test_acc) = evaluate(&net, &ds, &ds.test, settings.batch_size, &plain);
        let m = TrainMetrics {
            epoch,
            lr,
            drop_path_prob: drop,
            train_loss: tl / n as f64,
            train_acc: 100.0 * tc as f64 / n as f64,
            test_loss,
            test_acc,
            seconds: t0.elapsed().as_secs_f64(),
        };
        metrics.push(m.clone());
        write_jsonl(&RunDir::new(run_dir).path(RunDir::METRICS), &metrics)?;
        save(
            &ckpts,
            epoch + 1,
            &net,
            &sgd,
            &TrainState {
                epoch: epoch + 1,
                architecture: arch.to_string(),
                config: cfg.clone(),
            },
        )?;
        if (!events(TrainEvent::Epoch(m)) || stop) && epoch + 1 < settings.epochs {
            return Ok(TrainOutcome {
                metrics,
                result: None,
                net: net.valid(),
            });
        }
    }
    let Some(last) = metrics.last() else {
        return Err(Error::Config {
            field: "epochs".into(),
            message: "no epoch was trained".into(),
        });
    };
    let best = metrics.iter().fold(
        &metrics[0],
        |b, m| if m.test_acc > b.test_acc { m } else { b },
    );
    let result = TrainResult {
        architecture: arch.to_string(),
        params,
        params_without_auxiliary,
        flops,
        epochs: settings.epochs,
        final_test_acc: last.test_acc,
        final_test_loss: last.test_loss,
        best_test_acc: best.test_acc,
        best_epoch: best.epoch,
        seconds_per_epoch: metrics.iter().map(|m| m.seconds).sum::<f64>() / metrics.len() as f64,
        test_images: ds.test.len(),
    };
    let result_path = RunDir::new(run_dir).path(RunDir::TRAIN_RESULT);
    let text = serde_json::to_string_pretty(&result).map_err(|e| Error::Data {
        path: result_path.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&result_path, text.as_bytes())?;
    Ok(TrainOutcome {
        metrics,
        result: Some(result),
        net: net.valid(),
    })
}
