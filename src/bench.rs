//! `darts-pt bench`: wall-clock times of the work a search and a PT selection repeat, measured
//! through the very code `search` and `select` run, on the work the PyTorch reference's
//! `reference_bench.py` times (`../shared/bench/`), so that the two can be compared side by side.
//!
//! Three figures, each `warmup` untimed calls then `repeats` timed ones (min and median, seconds):
//! * `search_step_s`: one [`Trainer::step`] (DARTS first order, the reference's hyper-parameters,
//!   weight learning rate 0.025): the α step (forward and backward on one batch, Adam on α) and
//!   the weight step (forward and backward on another batch, clip 5, SGD).
//! * `forward_s`: one supernet forward of a batch without autodiff, plain softmax(α) mixing
//!   weights, BatchNorm with batch statistics (what a PT evaluation does per batch).
//! * `pt_candidate_s`: one PT candidate: one op of one normal-cell edge masked, `eval_batches`
//!   batches scored for loss and top-1 by [`Scorer`]'s multi-threaded [`Evaluate::evaluate`],
//!   deterministic order, no augmentation.
//!
//! Inputs are random: 3-channel images whose normalised values are N(0, 1) (quantised to steps
//! of 1/32 and clipped at ±4), labels uniform over 10 classes, all from a host RNG seeded with
//! `seed`, in a pool of max(4, `eval_batches`) batches as the reference's. Timing does not depend
//! on the values.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Distribution as _;
use serde::{Deserialize, Serialize};

use crate::data::{Augment, Batch, Dataset, DatasetName, ImageSet};
use crate::device::{self, Backend};
use crate::error::{Error, Result};
use crate::info::supernet_macs;
use crate::kernels::{self, Kernels};
use crate::ops::BnMode;
use crate::search::{Hyper, Method, Trainer};
use crate::select::{EvalMode, Evaluate, Scorer};
use crate::space::{CellType, SearchSpace, SpaceName};
use crate::supernet::{SupernetConfig, build_seeded, softmax_weights};
use crate::weights::Mask;

/// Input image channels of the benchmark (RGB, as the reference's CIFAR-10 search).
pub const BENCH_IN_CHANNELS: usize = 3;
/// Classes of the benchmark's labels and classifier.
pub const BENCH_CLASSES: usize = 10;
/// Weight learning rate of the timed search step (the reference's epoch-0 rate).
const STEP_LR: f64 = 0.025;
/// Standard deviation, in pixel levels, of the random `u8` pixels around 127.5: the dataset
/// normalises them back to N(0, 1) values in steps of 1/32, clipped at ±127.5/32 ≈ ±4.
const PIXEL_SIGMA: f32 = 32.0;

/// What `darts-pt bench` measures and on what.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchConfig {
    /// Search space (`nb201` and `darts`, the 7-op s5 space, are those the reference times).
    pub space: SpaceName,
    /// Initial channels C (even, ≥ 2).
    pub init_channels: usize,
    /// DARTS-like: cells; NAS-Bench-201: cells per stage.
    pub layers: usize,
    /// Images per batch (≥ 1).
    pub batch_size: usize,
    /// Input height = width in pixels (a multiple of 4 for the spaces with two reductions).
    pub input_size: usize,
    /// Batches one PT candidate scores (≥ 1).
    pub eval_batches: usize,
    /// Untimed calls before the timed ones.
    pub warmup: usize,
    /// Timed calls per figure (≥ 1).
    pub repeats: usize,
    /// Compute device.
    pub backend: Backend,
    /// Kernels of the process ([`kernels::set_kernels`] is called with it).
    pub kernels: Kernels,
    /// Seed of the supernet's weights and α and of the random inputs.
    pub seed: u64,
}

impl BenchConfig {
    /// The reference bench's defaults for `space`: C = 16, 5 cells per stage (NB201) or 8 cells,
    /// batch 64, 32×32 inputs, 10 evaluation batches, 1 warm-up call, 3 timed calls, CPU, fused
    /// kernels, seed 0.
    pub fn new(space: SpaceName) -> Self {
        let paper = SupernetConfig::paper(space);
        BenchConfig {
            space,
            init_channels: paper.init_channels,
            layers: paper.layers,
            batch_size: 64,
            input_size: 32,
            eval_batches: 10,
            warmup: 1,
            repeats: 3,
            backend: Backend::Cpu,
            kernels: Kernels::Fused,
            seed: 0,
        }
    }

    /// The supernet timed: 3 input channels, 10 classes.
    pub fn supernet(&self) -> SupernetConfig {
        SupernetConfig {
            space: self.space,
            init_channels: self.init_channels,
            layers: self.layers,
            num_classes: BENCH_CLASSES,
            in_channels: BENCH_IN_CHANNELS,
            input_size: self.input_size,
        }
    }

    /// Check every knob. Errors: [`Error::Config`] naming the field (`batch_size`,
    /// `eval_batches`, `repeats`, or the supernet's `init_channels`, `layers`, `input_size`).
    pub fn validate(&self) -> Result<()> {
        for (field, v) in [
            ("batch_size", self.batch_size),
            ("eval_batches", self.eval_batches),
            ("repeats", self.repeats),
        ] {
            if v == 0 {
                return Err(Error::Config {
                    field: field.into(),
                    message: "must be at least 1".into(),
                });
            }
        }
        self.supernet().validate()
    }

    /// Number of batches in the input pool: max(4, `eval_batches`), as the reference's.
    pub fn pool_batches(&self) -> usize {
        self.eval_batches.max(4)
    }
}

/// The network a report timed: the keys (and spellings) of the reference bench's `config`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BenchNet {
    /// Space, CLI spelling (`nb201`, `darts`, …).
    pub space: String,
    /// Initial channels C.
    pub init_channels: usize,
    /// Cells (DARTS-like) or cells per stage (NB201).
    pub layers: usize,
    /// Images per batch.
    pub batch_size: usize,
    /// Input height = width in pixels.
    pub input_size: usize,
    /// Batches per PT candidate.
    pub eval_batches: usize,
}

/// Wall-clock times of one figure, in seconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    /// Fastest timed call.
    pub min: f64,
    /// Median of the timed calls (mean of the two middle ones for an even count).
    pub median: f64,
    /// Number of timed calls.
    pub n: usize,
}

/// What `darts-pt bench --json` prints: one object with these keys.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// `darts-pt VERSION`.
    #[serde(rename = "impl")]
    pub implementation: String,
    /// The network timed.
    pub config: BenchNet,
    /// `cpu` or `wgpu`.
    pub device: String,
    /// The device's description (`flex (CPU)`, the wgpu adapter's name and API).
    pub adapter: String,
    /// Threads a PT evaluation scores batches on (`std::thread::available_parallelism`).
    pub threads: usize,
    /// `plain` or `fused`.
    pub kernels: Kernels,
    /// FLOPs of one supernet forward of a whole batch, in 10⁹: 2 × the multiply-adds of every
    /// convolution and linear layer, every candidate op counted ([`supernet_macs`]), as
    /// `torch.utils.flop_counter` counts the reference's forward.
    pub gflop_forward: f64,
    /// One bilevel search step.
    pub search_step_s: Timing,
    /// One forward pass of a batch.
    pub forward_s: Timing,
    /// One PT candidate (`eval_batches` batches scored).
    pub pt_candidate_s: Timing,
    /// wgpu only: max |a − b| / max |b| of one batch's logits, a on wgpu, b on flex, both from the
    /// same seeded supernet.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub check_vs_cpu_max_rel: Option<f64>,
}

/// `warmup` untimed calls of `f` then `repeats` timed ones, each followed by `device.sync()`.
/// `f` gets the call's index (warm-up calls first).
fn measure(
    what: &str,
    (warmup, repeats): (usize, usize),
    (backend, device): (Backend, &Device),
    mut f: impl FnMut(usize) -> Result<()>,
) -> Result<Timing> {
    let sync = || {
        device.sync().map_err(|e| Error::Device {
            device: backend.as_str().into(),
            message: format!("{what}: {e}"),
        })
    };
    for i in 0..warmup {
        f(i)?;
    }
    sync()?;
    let mut times = Vec::with_capacity(repeats);
    for r in 0..repeats {
        let t0 = Instant::now();
        f(warmup + r)?;
        sync()?;
        times.push(t0.elapsed().as_secs_f64());
    }
    eprintln!("bench: {what}: {times:.3?} s");
    Ok(timing(&times))
}

/// Min, median and count of `times` (not empty).
fn timing(times: &[f64]) -> Timing {
    let mut t = times.to_vec();
    t.sort_by(f64::total_cmp);
    let n = t.len();
    let median = if n % 2 == 1 {
        t[n / 2]
    } else {
        0.5 * (t[n / 2 - 1] + t[n / 2])
    };
    Timing {
        min: t[0],
        median,
        n,
    }
}

/// An in-memory dataset of `images` random 3×`size`×`size` images (`u8` pixels around 127.5
/// that [`Dataset::batch`] normalises to N(0, 1) values, see the module docs) with uniform labels
/// over 10 classes: its `train` set holds them, its `test` set is empty. The `name` is only a
/// label (nothing here reads it).
pub fn random_dataset(images: usize, size: usize, seed: u64) -> Dataset {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0BE7_C400);
    let c = BENCH_IN_CHANNELS;
    let pixels: Vec<u8> = (0..images * c * size * size)
        .map(|_| {
            let z: f32 = rand_distr::StandardNormal.sample(&mut rng);
            (127.5 + PIXEL_SIGMA * z).round().clamp(0.0, 255.0) as u8
        })
        .collect();
    let labels: Vec<u16> = (0..images)
        .map(|_| rng.random_range(0..BENCH_CLASSES as u16))
        .collect();
    let train = ImageSet {
        pixels,
        labels,
        channels: c,
        size,
    };
    let test = ImageSet {
        pixels: Vec::new(),
        labels: Vec::new(),
        channels: c,
        size,
    };
    Dataset {
        name: DatasetName::Cifar10,
        train,
        test,
        classes: BENCH_CLASSES,
        // (pixel / 255 − 127.5 / 255) / (32 / 255) = (pixel − 127.5) / 32.
        mean: vec![0.5; c],
        std: vec![PIXEL_SIGMA / 255.0; c],
        files: Vec::new(),
        flip: false,
    }
}

/// Batch `b` of the pool (images `b·batch .. (b+1)·batch` of `ds.train`) on `device`.
fn pool_batch(ds: &Dataset, b: usize, batch: usize, device: &Device) -> Batch {
    let idx: Vec<usize> = (b * batch..(b + 1) * batch).collect();
    // No augmentation: the RNG is never drawn from.
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    ds.batch(&ds.train, &idx, Augment::NONE, &mut rng, device)
}

/// Time the three figures of `cfg` (see the module docs) and count the forward's FLOPs. Sets the
/// process-wide kernels to `cfg.kernels` first. Progress goes to stderr.
///
/// Errors: [`Error::Config`] for a bad setting (naming it), [`Error::Device`] when the device
/// cannot be opened or fails to run, [`Error::NonFinite`] when a search step's or a PT
/// evaluation's loss is not finite.
pub fn run_bench(cfg: &BenchConfig) -> Result<BenchReport> {
    cfg.validate()?;
    kernels::set_kernels(cfg.kernels);
    let net_cfg = cfg.supernet();
    let dev = device::open(cfg.backend)?;
    let plain = dev.device.clone();
    let ad = plain.clone().autodiff();
    eprintln!(
        "bench: {} C={} layers={} batch {} {}×{} on {} ({}), kernels {}",
        cfg.space,
        cfg.init_channels,
        cfg.layers,
        cfg.batch_size,
        cfg.input_size,
        cfg.input_size,
        dev.backend,
        dev.description,
        cfg.kernels
    );
    let pool_len = cfg.pool_batches();
    let ds = random_dataset(pool_len * cfg.batch_size, cfg.input_size, cfg.seed);
    let pool: Vec<Batch> = (0..pool_len)
        .map(|b| pool_batch(&ds, b, cfg.batch_size, &ad))
        .collect();
    let (net, alphas) = build_seeded(&net_cfg, cfg.seed, &ad)?;
    let macs = supernet_macs(&net, cfg.input_size);
    let gflop_forward = 2.0 * cfg.batch_size as f64 * macs as f64 / 1e9;

    let calls = (cfg.warmup, cfg.repeats);
    // (1) The bilevel step: weight step on batch i, α step on batch i + 1, as the reference.
    let mut trainer = Trainer::new(net, alphas, Method::Darts, false, Hyper::default());
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let search_step_s = measure("search step", calls, (cfg.backend, &ad), |i: usize| {
        let train = &pool[i % pool_len];
        let valid = &pool[(i + 1) % pool_len];
        let s = trainer.step_blocking(train, valid, STEP_LR, 0.0, &mut rng)?;
        if !(s.train_loss.is_finite() && s.valid_loss.is_finite()) {
            return Err(Error::NonFinite {
                epoch: 0,
                step: i,
                message: format!(
                    "bench search step: loss {} (weight step) / {} (α step)",
                    s.train_loss, s.valid_loss
                ),
            });
        }
        Ok(())
    })?;

    // (2) One forward without autodiff, BN with batch statistics.
    let net = trainer.net.valid();
    let alphas = trainer.alphas.valid();
    let images: Vec<Tensor<4>> = pool.iter().map(|b| b.images.clone().inner()).collect();
    let forward_s = measure("forward", calls, (cfg.backend, &plain), |i: usize| {
        let w = softmax_weights(&alphas, true);
        let logits = net.forward(images[i % pool_len].clone(), &w, BnMode::BatchStats);
        let _ = logits.into_data();
        Ok(())
    })?;
    drop(images);

    // (3) One PT candidate through the scorer `select` uses.
    let [edges, ops] = SearchSpace::new(cfg.space).alpha_shape(CellType::Normal);
    let mut scorer = Scorer::new(
        &trainer.net,
        &trainer.alphas,
        &ds,
        (0..cfg.eval_batches * cfg.batch_size).collect(),
        EvalMode::Deterministic,
        cfg.batch_size,
        Augment::NONE,
        cfg.seed,
    );
    let overrides = trainer.alphas.no_overrides();
    let pt_candidate_s = measure("PT candidate", calls, (cfg.backend, &plain), |i: usize| {
        let mask = Mask::op(CellType::Normal, i % edges, i % ops);
        crate::engine::block_on(scorer.evaluate(&overrides, &mask, i as u64)).map(|_| ())
    })?;
    drop(scorer);
    drop(trainer);

    let check_vs_cpu_max_rel = match cfg.backend {
        Backend::Cpu => None,
        Backend::Wgpu => Some(check_vs_cpu(
            &net_cfg,
            cfg.seed,
            &ds,
            cfg.batch_size,
            &plain,
        )?),
    };
    Ok(BenchReport {
        implementation: format!("darts-pt {}", env!("CARGO_PKG_VERSION")),
        config: BenchNet {
            space: cfg.space.as_str().to_string(),
            init_channels: cfg.init_channels,
            layers: cfg.layers,
            batch_size: cfg.batch_size,
            input_size: cfg.input_size,
            eval_batches: cfg.eval_batches,
        },
        device: dev.backend.as_str().to_string(),
        adapter: dev.description,
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        kernels: kernels::kernels(),
        gflop_forward,
        search_step_s,
        forward_s,
        pt_candidate_s,
        check_vs_cpu_max_rel,
    })
}

/// max |a − b| / max |b| of the logits of the pool's first batch, a from the supernet of `cfg`
/// seeded with `seed` on `device`, b from the same supernet on flex.
fn check_vs_cpu(
    cfg: &SupernetConfig,
    seed: u64,
    ds: &Dataset,
    batch: usize,
    device: &Device,
) -> Result<f64> {
    let logits = |name: &str, device: &Device| -> Result<Vec<f32>> {
        let (net, alphas) = build_seeded(cfg, seed, device)?;
        let x = pool_batch(ds, 0, batch, device).images;
        let data = net
            .forward(x, &softmax_weights(&alphas, true), BnMode::BatchStats)
            .into_data();
        data.convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| Error::Device {
                device: name.into(),
                message: format!("reading the logits back: {e}"),
            })
    };
    let a = logits("wgpu", device)?;
    let b = logits("cpu", &Device::flex())?;
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    let diff = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs()));
    let rel = f64::from(diff / scale);
    eprintln!("bench: wgpu vs flex logits: max relative difference {rel:.2e}");
    Ok(rel)
}
