//! `darts-pt` command-line interface.

use std::process::ExitCode;
use std::time::Instant;

use std::path::PathBuf;

use anyhow::Context;
use burn::tensor::{Distribution, Tensor};
use clap::{Args, Parser, Subcommand};
use darts_pt::bench::{BenchConfig, BenchReport, run_bench};
use darts_pt::data::DatasetName;
use darts_pt::device::{self, Backend};
use darts_pt::genotype::Nb201Arch;
use darts_pt::info::{OpNames, supernet_info};
use darts_pt::job::{JobEnd, JobEvent, run_job};
use darts_pt::kernels::{self, Kernels};
use darts_pt::network::{Architecture, NetworkConfig, RunGenotype, network_info};
use darts_pt::ops::BnMode;
use darts_pt::run::{self, Event, SearchSettings};
use darts_pt::search::Method;
use darts_pt::select::{
    self, Criterion, EdgeOrder, EvalMode, NoneRule, PtEvent, PtSettings, TopologyMode,
};
use darts_pt::space::SpaceName;
use darts_pt::supernet::{SupernetConfig, build_seeded, softmax_weights};
use darts_pt::train::{self, TrainEvent, TrainPreset, TrainSettings};
use indicatif::{ProgressBar, ProgressStyle};

/// Differentiable NAS with perturbation-based architecture selection (DARTS-PT).
#[derive(Parser, Debug)]
#[command(name = "darts-pt", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print a supernet's parameter count, α shapes and op lists.
    Info(InfoArgs),
    /// Train a supernet (bilevel search) into a run directory.
    Search(SearchArgs),
    /// Select an architecture from a finished search: magnitude and/or PT.
    Select(SelectArgs),
    /// The main job: search, then magnitude and PT selection, then report.md.
    Run(RunArgs),
    /// NAS-Bench-201 test accuracies and rank of a cell (offline table).
    Lookup(LookupArgs),
    /// Turn a darts-pt search checkpoint (.pt or safetensors) into a run directory.
    Import(ImportArgs),
    /// Score a run's supernet on one fixed batch, with every op mask and every edge mask.
    Score(ScoreArgs),
    /// Train the network of a genotype from scratch (spec §4.1) into a run directory.
    Train(TrainArgs),
    /// Reload a trained network from its run directory and measure it on the test set again.
    Evaluate(EvaluateArgs),
    /// Time a search step, a supernet forward and a PT candidate (as ../shared/bench/ times the
    /// PyTorch reference).
    Bench(BenchArgs),
    /// Open the desktop app (configure, run and watch a search and its PT selection).
    #[cfg(feature = "gui")]
    Gui(GuiArgs),
    /// Rebuild the embedded NAS-Bench-201 table from its CSV (maintainers).
    #[command(hide = true)]
    Nb201Table(TableArgs),
}

impl Command {
    /// The `--kernels` of a command that computes on a device (set once, at startup).
    fn kernels(&self) -> Option<Kernels> {
        let k = match self {
            Command::Info(a) => &a.kernels,
            Command::Search(a) => &a.kernels,
            Command::Run(a) => &a.search.kernels,
            Command::Import(a) => &a.search.kernels,
            Command::Train(a) => &a.kernels,
            Command::Evaluate(a) => &a.kernels,
            Command::Bench(a) => &a.kernels,
            Command::Select(a) => &a.kernels,
            Command::Score(a) => &a.kernels,
            _ => return None,
        };
        Some(k.kernels)
    }
}

/// `--kernels`, shared by every command that takes `--device`.
#[derive(Args, Debug, Clone)]
struct KernelArgs {
    /// Hot-op implementation: fused (the darts-pt-kernels ops on the CPU; wgpu computes plain) or
    /// plain (Burn's tensor-op compositions everywhere, for bisecting).
    #[arg(long, default_value = "fused", value_parser = parse_enum::<Kernels>)]
    kernels: Kernels,
}

#[derive(Args, Debug)]
struct SearchArgs {
    /// Search space: darts, darts8, nb201, s1, s2, s3, s4.
    #[arg(long, default_value = "nb201", value_parser = parse_space)]
    space: SpaceName,
    /// Dataset: digits (embedded), cifar10, cifar100, fashion-mnist, mnist.
    #[arg(long, default_value = "digits", value_parser = parse_dataset)]
    dataset: DatasetName,
    /// Directory of the dataset's files (fashion-mnist defaults to /usr/share/datasets/fashion-mnist).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// α training: darts, sdarts-rs, sdarts-adv, blank (fixed α).
    #[arg(long, default_value = "darts", value_parser = parse_method)]
    method: Method,
    /// Second-order DARTS α gradient (spec §2.4).
    #[arg(long)]
    second_order: bool,
    /// Epochs [default: 100 for nb201, 50 otherwise, as the reference].
    #[arg(long)]
    epochs: Option<usize>,
    /// Batch size of both halves [default: 64].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Run seed.
    #[arg(long, default_value_t = 2)]
    seed: u64,
    /// Use only the first N training images (before the 50/50 split).
    #[arg(long)]
    limit_train: Option<usize>,
    /// Initial channels C [default: 16].
    #[arg(long)]
    init_channels: Option<usize>,
    /// Cells (DARTS-like; default 8) or cells per stage (NB201; default 5).
    #[arg(long)]
    layers: Option<usize>,
    /// Size the embedded digits are upsampled to (8, 16 or 32) [default: 16].
    #[arg(long)]
    digits_size: Option<usize>,
    /// Turn off random crop and flip.
    #[arg(long)]
    no_augment: bool,
    /// Cutout during search, probability ramped 0 → --cutout-prob over the epochs.
    #[arg(long)]
    cutout: bool,
    /// Cutout square side in pixels.
    #[arg(long, default_value_t = 16)]
    cutout_length: usize,
    /// Final cutout probability.
    #[arg(long, default_value_t = 1.0)]
    cutout_prob: f64,
    /// Compute device: cpu or wgpu.
    #[arg(long, default_value = "cpu", value_parser = parse_backend)]
    device: Backend,
    #[command(flatten)]
    kernels: KernelArgs,
    /// Run directory to write [default: runs/SPACE-DATASET-sSEED].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// No progress bars; one log line per epoch.
    #[arg(long)]
    quiet: bool,
}

impl SearchArgs {
    /// Settings: the reference's, then the preset's, then every flag given.
    fn settings(&self, preset: Preset) -> SearchSettings {
        let mut s = SearchSettings::reference(self.space, self.dataset);
        if preset == Preset::Quick {
            s.apply_quick_preset();
        }
        s.data_dir = self.data_dir.clone();
        s.method = self.method;
        s.second_order = self.second_order;
        s.seed = self.seed;
        s.device = self.device;
        s.augment = !self.no_augment;
        s.cutout = self.cutout;
        s.cutout_length = self.cutout_length;
        s.cutout_prob = self.cutout_prob;
        if let Some(v) = self.epochs {
            s.epochs = v;
        }
        if let Some(v) = self.batch_size {
            s.batch_size = v;
        }
        if self.limit_train.is_some() {
            s.limit_train = self.limit_train;
        }
        if let Some(v) = self.init_channels {
            s.init_channels = v;
        }
        if let Some(v) = self.layers {
            s.layers = v;
        }
        if let Some(v) = self.digits_size {
            s.digits_size = v;
        }
        s
    }
}

/// Settings presets of `darts-pt run`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Preset {
    /// The paper's protocol (spec §2.2, §3.4, §3.5): full-size supernet; for GPUs.
    Paper,
    /// A CPU-sized run that finishes in minutes on 2 cores: small supernet, few epochs, a subset,
    /// one tuning epoch between decisions.
    Quick,
}

/// PT selection flags.
#[derive(Args, Debug, Clone)]
struct PtArgs {
    /// Scoring criterion: acc (keep the op whose removal lowers accuracy most) or loss.
    #[arg(long, default_value = "acc", value_parser = parse_enum::<Criterion>)]
    crit: Criterion,
    /// Order of undecided edges: random (from the run seed, as the reference) or fixed.
    #[arg(long, default_value = "random", value_parser = parse_enum::<EdgeOrder>)]
    edge_order: EdgeOrder,
    /// Evaluation: reference (augmented images, random order) or deterministic.
    #[arg(long, default_value = "reference", value_parser = parse_enum::<EvalMode>)]
    eval: EvalMode,
    /// Score on the first N validation images only [default: the whole validation half].
    #[arg(long)]
    eval_limit: Option<usize>,
    /// Tuning epochs between decisions [default: 5; the quick preset: 1]; 0 = no tuning.
    #[arg(long)]
    proj_intv: Option<usize>,
    /// Constant weight learning rate while tuning [default: the search's learning rate / 10].
    #[arg(long)]
    tune_lr: Option<f64>,
    /// Topology loop: reference (earlier removals not re-zeroed, spec §3.3) or corrected.
    #[arg(long, default_value = "reference", value_parser = parse_enum::<TopologyMode>)]
    topology: TopologyMode,
    /// DARTS genotype of an edge where PT kept `none`: reference (shown as its first other op,
    /// spec §3.6) or keep (shown as 'none').
    #[arg(long, default_value = "reference", value_parser = parse_enum::<NoneRule>)]
    none_genotype: NoneRule,
}

impl PtArgs {
    fn settings(&self, preset: Preset, search: &SearchSettings) -> PtSettings {
        let mut p = PtSettings {
            tune_lr: search.hyper.learning_rate / 10.0,
            ..PtSettings::default()
        };
        if preset == Preset::Quick {
            p.proj_intv = 1;
            if search.space != SpaceName::Nb201 {
                // 240 evaluations in DARTS-like spaces: score on 256 validation images.
                p.eval_limit = Some(256);
            }
        }
        p.crit = self.crit;
        p.edge_order = self.edge_order;
        p.eval = self.eval;
        p.eval_limit = self.eval_limit;
        p.topology = self.topology;
        p.none_genotype = self.none_genotype;
        if let Some(v) = self.proj_intv {
            p.proj_intv = v;
        }
        if let Some(v) = self.tune_lr {
            p.tune_lr = v;
        }
        p
    }
}

#[derive(Args, Debug)]
struct SelectArgs {
    /// Run directory of a finished search.
    #[arg(long)]
    run: PathBuf,
    /// Selection: pt, magnitude or both.
    #[arg(long, default_value = "both")]
    method: SelectMethod,
    #[command(flatten)]
    pt: PtArgs,
    /// Continue an interrupted PT selection from its last checkpoint.
    #[arg(long)]
    resume: bool,
    #[command(flatten)]
    kernels: KernelArgs,
    /// Discard an earlier PT selection of this run and select again.
    #[arg(long)]
    force: bool,
    /// No progress bars.
    #[arg(long)]
    quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SelectMethod {
    /// Perturbation-based selection with progressive tuning.
    Pt,
    /// Argmax α.
    Magnitude,
    /// Both.
    Both,
}

#[derive(Args, Debug)]
struct RunArgs {
    #[command(flatten)]
    search: SearchArgs,
    #[command(flatten)]
    pt: PtArgs,
    /// Settings preset: paper (the reference protocol) or quick (CPU-sized: C = 8, 1 cell per
    /// stage for nb201 or 5 cells, 10 or 5 epochs, the first 2,000 or 1,000 training images,
    /// batch 32, --proj-intv 1, and --eval-limit 256 outside nb201). Flags given explicitly
    /// override the preset.
    #[arg(long, default_value = "paper")]
    preset: Preset,
}

#[derive(Args, Debug)]
struct LookupArgs {
    /// NAS-Bench-201 cell, e.g. '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|'.
    arch: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// The reference's checkpoint: `checkpoint_50.pth.tar` / `.pt` as darts-pt's
    /// train_search.py saves it, or a safetensors file with the same names (α under `arch.*`).
    #[arg(long)]
    from_darts_pt: PathBuf,
    /// Space, dataset (PT scores on its validation half), size knobs and --out as for `search`;
    /// the defaults are the paper's supernet sizes.
    #[command(flatten)]
    search: SearchArgs,
}

#[derive(Args, Debug)]
struct ScoreArgs {
    /// Run directory (its final search checkpoint is scored).
    #[arg(long)]
    run: PathBuf,
    /// Safetensors file with `x` (f32 [n, c, h, w], normalised) and `y` (int64 [n]).
    #[arg(long)]
    batch: PathBuf,
    /// BatchNorm: train (batch statistics, as PT scores) or eval (running statistics).
    #[arg(long, default_value = "train")]
    bn: BnArg,
    #[command(flatten)]
    kernels: KernelArgs,
    /// Print JSON: logits, loss, accuracy, masked_ops, masked_edges.
    #[arg(long)]
    json: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum BnArg {
    /// Batch statistics (running estimates untouched).
    Train,
    /// Running statistics.
    Eval,
}

#[derive(Args, Debug)]
struct TableArgs {
    /// nb201_accuracy.csv (index, arch_string, cifar10_test, cifar100_test, imagenet16_test).
    #[arg(long)]
    csv: PathBuf,
    /// Output file (src/data/nb201_accuracy.bin.gz).
    #[arg(long)]
    out: PathBuf,
}

/// Size knobs shared by every command that builds a supernet. Defaults are the paper's.
#[derive(Args, Debug, Clone)]
struct SupernetArgs {
    /// Search space: darts (7 ops), darts8 (8 ops), nb201, s1, s2, s3, s4.
    #[arg(long, default_value = "darts", value_parser = parse_space)]
    space: SpaceName,
    /// Number of classes.
    #[arg(long, default_value_t = 10)]
    classes: usize,
    /// Initial channels C [default: 16; evaluation networks: 36 for DARTS, 16 for NB201].
    #[arg(long)]
    init_channels: Option<usize>,
    /// Cells (DARTS-like spaces; default 8, evaluation networks 20) or cells per stage (NB201;
    /// default 5).
    #[arg(long)]
    layers: Option<usize>,
    /// Input image channels (3 for RGB, 1 for grey).
    #[arg(long, default_value_t = 3)]
    in_channels: usize,
    /// Input height = width in pixels.
    #[arg(long, default_value_t = 32)]
    input_size: usize,
}

impl SupernetArgs {
    fn config(&self) -> SupernetConfig {
        let paper = SupernetConfig::paper(self.space);
        SupernetConfig {
            space: self.space,
            init_channels: self.init_channels.unwrap_or(paper.init_channels),
            layers: self.layers.unwrap_or(paper.layers),
            num_classes: self.classes,
            in_channels: self.in_channels,
            input_size: self.input_size,
        }
    }
}

#[derive(Args, Debug)]
struct InfoArgs {
    #[command(flatten)]
    net: SupernetArgs,
    /// Describe the evaluation network of this DARTS genotype instead (`Genotype(...)` text, a
    /// file holding it, or a search run directory): defaults C=36, 20 cells, auxiliary head.
    #[arg(long, conflicts_with = "arch_string")]
    genotype: Option<String>,
    /// Describe the NAS-Bench-201 network of this cell instead (defaults C=16, N=5).
    #[arg(long)]
    arch_string: Option<String>,
    /// With --genotype / --arch-string: no auxiliary head.
    #[arg(long)]
    no_auxiliary: bool,
    /// Print JSON with the keys `params`, `alpha_elements`, `alpha_shapes`, `op_names`.
    #[arg(long)]
    json: bool,
    /// Also build the supernet on this device (cpu or wgpu) and time one forward pass of a batch of 2.
    #[arg(long, value_parser = parse_backend)]
    device: Option<Backend>,
    #[command(flatten)]
    kernels: KernelArgs,
}

#[derive(Args, Debug)]
struct BenchArgs {
    /// Search space: nb201 or darts (the 7-op s5 space), the two the reference bench times; any
    /// other space name is accepted too.
    #[arg(long, default_value = "nb201", value_parser = parse_space)]
    space: SpaceName,
    /// Initial channels C.
    #[arg(long, default_value_t = 16)]
    init_channels: usize,
    /// Cells per stage (nb201) or cells (DARTS-like) [default: 5 for nb201, 8 otherwise].
    #[arg(long)]
    layers: Option<usize>,
    /// Images per batch.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Input height = width in pixels (3 channels, 10 classes).
    #[arg(long, default_value_t = 32)]
    input_size: usize,
    /// Batches one PT candidate scores.
    #[arg(long, default_value_t = 10)]
    eval_batches: usize,
    /// Untimed calls before the timed ones, per figure.
    #[arg(long, default_value_t = 1)]
    warmup: usize,
    /// Timed calls per figure (min and median are reported).
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Compute device: cpu or wgpu (wgpu also checks its logits against flex).
    #[arg(long, default_value = "cpu", value_parser = parse_backend)]
    device: Backend,
    #[command(flatten)]
    kernels: KernelArgs,
    /// Seed of the supernet and of the random inputs.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Print only one JSON object on stdout: the figures, `config`, `device`, `threads` and
    /// `gflop_forward` as reference_bench.py writes them, plus `adapter`, `kernels` and, on wgpu,
    /// `check_vs_cpu_max_rel`.
    #[arg(long)]
    json: bool,
}

fn bench_cmd(args: &BenchArgs) -> anyhow::Result<()> {
    let mut cfg = BenchConfig::new(args.space);
    cfg.init_channels = args.init_channels;
    if let Some(l) = args.layers {
        cfg.layers = l;
    }
    cfg.batch_size = args.batch_size;
    cfg.input_size = args.input_size;
    cfg.eval_batches = args.eval_batches;
    cfg.warmup = args.warmup;
    cfg.repeats = args.repeats;
    cfg.backend = args.device;
    cfg.kernels = args.kernels.kernels;
    cfg.seed = args.seed;
    let r = run_bench(&cfg)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print_bench(&r);
    }
    Ok(())
}

/// The bench report as a table: the three figures, and GFLOP/s of the forward FLOPs.
fn print_bench(r: &BenchReport) {
    let c = &r.config;
    println!(
        "network         {} C={} layers={}, batch {}, {}x{} inputs, {} batches per PT candidate",
        c.space,
        c.init_channels,
        c.layers,
        c.batch_size,
        c.input_size,
        c.input_size,
        c.eval_batches
    );
    println!(
        "device          {} ({}), {} threads, kernels {}",
        r.device, r.adapter, r.threads, r.kernels
    );
    println!(
        "forward FLOPs   {:.3} GFLOP per batch (2 x multiply-adds of every conv and linear layer)",
        r.gflop_forward
    );
    if let Some(rel) = r.check_vs_cpu_max_rel {
        println!("wgpu vs flex    logits max relative difference {rel:.2e}");
    }
    println!();
    println!(
        "{:<16}{:>10}{:>10}{:>4}{:>10}",
        "figure", "min s", "median s", "n", "GFLOP/s"
    );
    let forwards = [
        ("search_step_s", &r.search_step_s, None),
        ("forward_s", &r.forward_s, Some(1.0)),
        (
            "pt_candidate_s",
            &r.pt_candidate_s,
            Some(c.eval_batches as f64),
        ),
    ];
    for (name, t, batches) in forwards {
        let rate = batches.map_or(String::new(), |b| {
            format!("{:.1}", b * r.gflop_forward / t.min)
        });
        println!(
            "{name:<16}{:>10.3}{:>10.3}{:>4}{rate:>10}",
            t.min, t.median, t.n
        );
    }
    println!(
        "(GFLOP/s: forward FLOPs over the fastest call; a PT candidate is that many forwards)"
    );
}

fn parse_space(s: &str) -> Result<SpaceName, String> {
    s.parse().map_err(|e: darts_pt::Error| e.to_string())
}

fn parse_dataset(s: &str) -> Result<DatasetName, String> {
    s.parse().map_err(|e: darts_pt::Error| e.to_string())
}

fn parse_method(s: &str) -> Result<Method, String> {
    s.parse().map_err(|e: darts_pt::Error| e.to_string())
}

fn parse_enum<T: std::str::FromStr<Err = darts_pt::Error>>(s: &str) -> Result<T, String> {
    s.parse().map_err(|e: darts_pt::Error| e.to_string())
}

fn parse_backend(s: &str) -> Result<Backend, String> {
    s.parse().map_err(|e: darts_pt::Error| e.to_string())
}

fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn info(args: &InfoArgs) -> anyhow::Result<()> {
    if args.genotype.is_some() || args.arch_string.is_some() {
        return network_info_cmd(args);
    }
    let cfg = args.net.config();
    let info = supernet_info(&cfg)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
    } else {
        println!("space           {}", cfg.space);
        println!(
            "supernet        C={}, layers={}, classes={}, input {}x{}x{}",
            cfg.init_channels,
            cfg.layers,
            cfg.num_classes,
            cfg.in_channels,
            cfg.input_size,
            cfg.input_size
        );
        println!("network weights {} parameters", thousands(info.params));
        let shapes: Vec<String> = info
            .alpha_shapes
            .iter()
            .map(|s| format!("[{}, {}]", s[0], s[1]))
            .collect();
        println!(
            "alpha           {} elements, shapes {}",
            info.alpha_elements,
            shapes.join(" (normal), ") + if shapes.len() > 1 { " (reduce)" } else { "" }
        );
        match &info.op_names {
            OpNames::Uniform(ops) => println!("ops             {}", ops.join(", ")),
            OpNames::PerEdge { normal, reduce } => {
                for (cell, edges) in [("normal", normal), ("reduce", reduce)] {
                    for (e, ops) in edges.iter().enumerate() {
                        println!("ops {cell:<6} e{e:<2}  {}", ops.join(", "));
                    }
                }
            }
        }
    }
    if let Some(backend) = args.device {
        let dev = device::open(backend)?;
        let t0 = Instant::now();
        let (net, alphas) = build_seeded(&cfg, 0, &dev.device)?;
        let x = Tensor::<4>::random(
            [2, cfg.in_channels, cfg.input_size, cfg.input_size],
            Distribution::Default,
            &dev.device,
        );
        let logits = net.forward(x, &softmax_weights(&alphas, true), BnMode::BatchStats);
        let dims = logits.dims();
        let _ = logits.into_data();
        eprintln!(
            "device          {} ({}); forward of a batch of 2 -> logits {:?} in {:.2} s (incl. build)",
            dev.backend,
            dev.description,
            dims,
            t0.elapsed().as_secs_f64()
        );
    }
    Ok(())
}

fn run_dir_of(args: &SearchArgs) -> anyhow::Result<(PathBuf, bool)> {
    Ok(match (&args.resume, &args.out) {
        (Some(dir), _) => (dir.clone(), true),
        (None, Some(dir)) => (dir.clone(), false),
        (None, None) => (
            PathBuf::from("runs").join(format!("{}-{}-s{}", args.space, args.dataset, args.seed)),
            false,
        ),
    })
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}  [{elapsed_precise} < {eta_precise}]")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Search with a progress bar; `None` when the run was stopped.
fn run_search(
    settings: &SearchSettings,
    run_dir: &std::path::Path,
    resume: bool,
    quiet: bool,
) -> anyhow::Result<run::SearchOutcome> {
    let bar = ProgressBar::hidden();
    let mut on_event = search_printer(&bar, quiet);
    let out = run::search(settings, run_dir, resume, &mut on_event)?;
    bar.finish_and_clear();
    Ok(out)
}

fn search(args: &SearchArgs) -> anyhow::Result<()> {
    let settings = args.settings(Preset::Paper);
    let (run_dir, resume) = run_dir_of(args)?;
    let out = run_search(&settings, &run_dir, resume, args.quiet)?;
    println!("magnitude genotype: {}", out.genotype);
    println!("run directory: {}", run_dir.display());
    Ok(())
}

/// PT selection with a progress bar.
fn run_pt(
    run_dir: &std::path::Path,
    settings: &PtSettings,
    resume: bool,
    quiet: bool,
) -> anyhow::Result<select::PtOutcome> {
    let bar = ProgressBar::hidden();
    let mut on_event = pt_printer(&bar, quiet);
    let out = select::select_pt(run_dir, settings, resume, &mut on_event)?;
    bar.finish_and_clear();
    Ok(out)
}

fn print_selection(run_dir: &std::path::Path) -> anyhow::Result<()> {
    let text = darts_pt::report::write(run_dir)?;
    let sel = darts_pt::report::selection(run_dir)?;
    if let Some(g) = &sel.magnitude {
        println!("magnitude genotype: {g}");
    }
    if let Some(g) = &sel.pt {
        println!("pt genotype:        {g}");
    }
    for d in &sel.disagreements {
        println!("  differs: {d}");
    }
    for (label, l) in [("magnitude", &sel.nb201_magnitude), ("pt", &sel.nb201_pt)] {
        if let Some(l) = l {
            println!(
                "NAS-Bench-201 {label:<9} CIFAR-10 {:.2}  CIFAR-100 {:.2}  ImageNet16-120 {:.2}  (rank {} of 15625 on CIFAR-10)",
                l.cifar10, l.cifar100, l.imagenet16_120, l.rank.cifar10
            );
        }
    }
    println!(
        "report: {} ({} lines)",
        run_dir.join("report.md").display(),
        text.lines().count()
    );
    Ok(())
}

fn select_cmd(args: &SelectArgs) -> anyhow::Result<()> {
    let search = run::read_settings(&args.run)?;
    if args.method != SelectMethod::Pt {
        select::select_magnitude(&args.run)?;
    }
    if args.method != SelectMethod::Magnitude {
        let earlier = args.run.join("genotype_pt.txt").exists()
            || !select::read_decisions(&args.run)?.is_empty();
        if earlier && !args.resume && !args.force {
            anyhow::bail!(
                "{} already has a PT selection; continue it with --resume or discard it with --force",
                args.run.display()
            );
        }
        let pt = args.pt.settings(Preset::Paper, &search);
        let out = run_pt(&args.run, &pt, args.resume, args.quiet)?;
        if out.stopped {
            anyhow::bail!("selection stopped; continue with --resume");
        }
    }
    print_selection(&args.run)
}

fn run_cmd(args: &RunArgs) -> anyhow::Result<()> {
    let (run_dir, resume) = run_dir_of(&args.search)?;
    let settings = args.search.settings(args.preset);
    let quiet = args.search.quiet;
    // A resumed run's own settings decide the selection defaults (its `pt/settings.toml`, written
    // when it started, wins anyway).
    let search = if resume {
        run::read_settings(&run_dir)?
    } else {
        settings.clone()
    };
    let pt = args.pt.settings(args.preset, &search);
    let bar = ProgressBar::hidden();
    let mut on_search = search_printer(&bar, quiet);
    let pt_bar = ProgressBar::hidden();
    let mut on_pt = pt_printer(&pt_bar, quiet);
    let end = run_job(&settings, &pt, &run_dir, resume, &mut |e| match e {
        JobEvent::Search(e) => on_search(e),
        JobEvent::Magnitude(_) => {
            bar.finish_and_clear();
            true
        }
        JobEvent::Pt(e) => on_pt(e),
        JobEvent::Finished(_) => {
            pt_bar.finish_and_clear();
            true
        }
    })?;
    match end {
        JobEnd::StoppedInSearch => anyhow::bail!(
            "search stopped; continue with --resume {}",
            run_dir.display()
        ),
        JobEnd::StoppedInSelection => anyhow::bail!(
            "selection stopped; continue with --resume {}",
            run_dir.display()
        ),
        JobEnd::Finished => {}
    }
    print_selection(&run_dir)?;
    println!("run directory: {}", run_dir.display());
    Ok(())
}

fn lookup(args: &LookupArgs) -> anyhow::Result<()> {
    let arch: darts_pt::genotype::Nb201Arch = args.arch.parse()?;
    let l = darts_pt::nb201::Table::embedded().lookup(&arch);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&l)?);
    } else {
        println!("{}", l.arch);
        println!(
            "CIFAR-10        {:.2}%  rank {} of 15625",
            l.cifar10, l.rank.cifar10
        );
        println!(
            "CIFAR-100       {:.2}%  rank {} of 15625",
            l.cifar100, l.rank.cifar100
        );
        println!(
            "ImageNet16-120  {:.2}%  rank {} of 15625",
            l.imagenet16_120, l.rank.imagenet16_120
        );
        println!("(test accuracy after 200 epochs, NAS-Bench-201 / NATS-Bench)");
    }
    Ok(())
}

fn import_cmd(args: &ImportArgs) -> anyhow::Result<()> {
    let settings = args.search.settings(Preset::Paper);
    let Some(out) = &args.search.out else {
        anyhow::bail!("give --out RUN_DIR");
    };
    let g = run::import_reference(&args.from_darts_pt, &settings, out)?;
    println!(
        "imported {} into {}",
        args.from_darts_pt.display(),
        out.display()
    );
    println!("magnitude genotype: {g}");
    println!("next: darts-pt select --run {}", out.display());
    Ok(())
}

fn score_cmd(args: &ScoreArgs) -> anyhow::Result<()> {
    let loaded = select::load_run(&args.run)?;
    let batch = darts_pt::score::FixedBatch::read(&args.batch)?;
    let space = darts_pt::space::SearchSpace::new(loaded.settings.space);
    let bn = match args.bn {
        BnArg::Train => BnMode::BatchStats,
        BnArg::Eval => BnMode::Eval,
    };
    let r = darts_pt::score::score_report(
        &loaded.trainer.net,
        &loaded.trainer.alphas,
        &space,
        &batch,
        bn,
    );
    if args.json {
        println!("{}", serde_json::to_string(&r)?);
        return Ok(());
    }
    let flat: Vec<f32> = r.logits.iter().flatten().copied().collect();
    let (lo, hi) = flat
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    println!(
        "logits [{}, {}]  min {lo:.4}  max {hi:.4}  mean {:.4}",
        r.logits.len(),
        r.logits.first().map_or(0, Vec::len),
        flat.iter().sum::<f32>() / flat.len().max(1) as f32
    );
    println!("loss {:.6}  accuracy {:.2}%", r.loss, r.accuracy);
    println!("\nmasked op                          loss      accuracy");
    for m in &r.masked_ops {
        println!(
            "{:<6} edge {:>2} {:<14} {:>10.6} {:>8.2}%",
            m.cell,
            m.edge,
            m.op.clone().unwrap_or_default(),
            m.loss,
            m.accuracy
        );
    }
    println!("\nmasked edge                        loss      accuracy");
    for m in &r.masked_edges {
        println!(
            "{:<6} edge {:>2} {:<14} {:>10.6} {:>8.2}%",
            m.cell, m.edge, "", m.loss, m.accuracy
        );
    }
    Ok(())
}

fn nb201_table(args: &TableArgs) -> anyhow::Result<()> {
    let csv = std::fs::read_to_string(&args.csv)
        .with_context(|| format!("reading {}", args.csv.display()))?;
    let bytes = darts_pt::nb201::table_from_csv(&csv, &args.csv)?;
    run::write_atomic(&args.out, &bytes)?;
    println!("{} bytes -> {}", bytes.len(), args.out.display());
    Ok(())
}

/// Keep freed memory for reuse. The engine allocates a fresh buffer for nearly every tensor op
/// and frees it soon after; with glibc's defaults, buffers above its (adaptive) mmap threshold
/// are unmapped when freed and the next step faults them in again, page by page, each page
/// cleared by the kernel (a large share of a step in the profile). Raising the mmap threshold to
/// its maximum (32 MiB) and the trim threshold out of reach keeps them in the heap, so a step
/// reuses the pages of the previous one; memory use stays at the peak of a step. This is what
/// the benchmark gives the PyTorch reference through `MALLOC_MMAP_THRESHOLD_` /
/// `MALLOC_TRIM_THRESHOLD_`, which still win when set. (mimalloc was measured too, issue-14
/// note: it re-faulted about 10× the peak memory per run as huge pages and was slower.)
fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: mallopt only sets allocator parameters; called first thing in `main`.
            unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) };
        }
        if std::env::var_os("MALLOC_TRIM_THRESHOLD_").is_none() {
            // SAFETY: as above.
            unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX) };
        }
    }
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    if let Some(k) = cli.command.kernels() {
        kernels::set_kernels(k);
    }
    let result = match &cli.command {
        Command::Info(args) => info(args).context("info"),
        Command::Search(args) => search(args).context("search"),
        Command::Select(args) => select_cmd(args).context("select"),
        Command::Run(args) => run_cmd(args).context("run"),
        Command::Lookup(args) => lookup(args).context("lookup"),
        Command::Import(args) => import_cmd(args).context("import"),
        Command::Score(args) => score_cmd(args).context("score"),
        Command::Train(args) => train_cmd(args).context("train"),
        Command::Evaluate(args) => evaluate_cmd(args).context("evaluate"),
        Command::Bench(args) => bench_cmd(args).context("bench"),
        #[cfg(feature = "gui")]
        Command::Gui(args) => darts_pt::gui::run_app(args.run.clone(), args.start.clone())
            .map_err(anyhow::Error::msg)
            .context("gui"),
        Command::Nb201Table(args) => nb201_table(args).context("nb201-table"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Each cause once: our errors already show their I/O cause in their own message.
            let mut text = String::new();
            for cause in e.chain() {
                let m = cause.to_string();
                if !text.contains(&m) {
                    if !text.is_empty() {
                        text.push_str(": ");
                    }
                    text.push_str(&m);
                }
            }
            eprintln!("error: {text}");
            ExitCode::FAILURE
        }
    }
}

fn network_info_cmd(args: &InfoArgs) -> anyhow::Result<()> {
    let arch = match (&args.genotype, &args.arch_string) {
        (Some(g), _) => Architecture::resolve(g, RunGenotype::Pt)?,
        (None, Some(a)) => a.parse::<Nb201Arch>().map(Architecture::Nb201)?,
        (None, None) => unreachable!("checked by the caller"),
    };
    let mut cfg = NetworkConfig::paper(&arch);
    if let Some(c) = args.net.init_channels {
        cfg.init_channels = c;
    }
    if let Some(l) = args.net.layers {
        cfg.layers = l;
    }
    cfg.num_classes = args.net.classes;
    cfg.in_channels = args.net.in_channels;
    cfg.input_size = args.net.input_size;
    if args.no_auxiliary {
        cfg.auxiliary = false;
    }
    let info = network_info(&arch, &cfg)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&info)?);
        return Ok(());
    }
    println!("architecture    {arch}");
    println!(
        "network         {} C={}, {}={}, classes={}, input {}x{}x{}{}",
        arch.family_name(),
        cfg.init_channels,
        if matches!(arch, Architecture::Darts(_)) {
            "cells"
        } else {
            "N"
        },
        cfg.layers,
        cfg.num_classes,
        cfg.in_channels,
        cfg.input_size,
        cfg.input_size,
        if cfg.auxiliary {
            ", auxiliary head"
        } else {
            ""
        }
    );
    println!(
        "params          {} ({:.2} M) with the auxiliary head, {} ({:.2} M) without",
        thousands(info.params),
        info.params as f64 / 1e6,
        thousands(info.params_without_auxiliary),
        info.params_without_auxiliary as f64 / 1e6
    );
    println!(
        "flops           {} ({:.2} M multiply-adds per image, inference)",
        thousands(info.flops as usize),
        info.flops as f64 / 1e6
    );
    Ok(())
}

#[derive(Args, Debug)]
struct TrainArgs {
    /// The DARTS genotype: `Genotype(...)` text, a file holding it, or a search run directory
    /// (its PT genotype; see --which). A NAS-Bench-201 string is accepted too.
    #[arg(long, required_unless_present_any = ["arch_string", "resume"])]
    genotype: Option<String>,
    /// A NAS-Bench-201 cell, e.g. '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|'.
    #[arg(long, conflicts_with = "genotype")]
    arch_string: Option<String>,
    /// Which genotype of a search run directory: pt or magnitude.
    #[arg(long, default_value = "pt", value_parser = parse_enum::<RunGenotype>)]
    which: RunGenotype,
    /// Settings preset: paper (spec §4.1: C=36, 20 cells, auxiliary, cutout, 600 epochs; NB201
    /// C=16, N=5, 200 epochs), robust (RobustDARTS' CIFAR-100/SVHN protocol: C=16, 8 cells) or
    /// quick (CPU-sized: C=16, 5 cells or N=1, 10 epochs, batch 64, first 5,000 images).
    #[arg(long, default_value = "paper", value_parser = parse_enum::<TrainPreset>)]
    preset: TrainPreset,
    /// Dataset: digits (embedded), cifar10, cifar100, fashion-mnist, mnist.
    #[arg(long, default_value = "cifar10", value_parser = parse_dataset)]
    dataset: DatasetName,
    /// Directory of the dataset's files.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Epochs [default: the preset's].
    #[arg(long)]
    epochs: Option<usize>,
    /// Batch size [default: 96].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Seed.
    #[arg(long, default_value_t = 2)]
    seed: u64,
    /// Initial channels C [default: the preset's].
    #[arg(long)]
    init_channels: Option<usize>,
    /// Cells (DARTS) or cells per stage (NB201) [default: the preset's].
    #[arg(long)]
    layers: Option<usize>,
    /// No auxiliary head.
    #[arg(long)]
    no_auxiliary: bool,
    /// Weight of the auxiliary loss.
    #[arg(long, default_value_t = 0.4)]
    auxiliary_weight: f64,
    /// Final drop-path probability [default: 0.2 for DARTS, 0 for NB201].
    #[arg(long)]
    drop_path_prob: Option<f64>,
    /// No cutout.
    #[arg(long)]
    no_cutout: bool,
    /// Cutout square side in pixels.
    #[arg(long, default_value_t = 16)]
    cutout_length: usize,
    /// Initial learning rate.
    #[arg(long, default_value_t = 0.025)]
    learning_rate: f64,
    /// Train on the first N training images only.
    #[arg(long)]
    limit_train: Option<usize>,
    /// Test on the first N test images only.
    #[arg(long)]
    limit_test: Option<usize>,
    /// Size the embedded digits are upsampled to [default: 16].
    #[arg(long)]
    digits_size: Option<usize>,
    /// Compute device: cpu or wgpu.
    #[arg(long, default_value = "cpu", value_parser = parse_backend)]
    device: Backend,
    #[command(flatten)]
    kernels: KernelArgs,
    /// Run directory to write [default: runs/train-DATASET-sSEED].
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the training run in this directory from its last checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// No progress bars; one log line per epoch.
    #[arg(long)]
    quiet: bool,
}

impl TrainArgs {
    fn settings(&self) -> anyhow::Result<TrainSettings> {
        let arch = match (&self.genotype, &self.arch_string) {
            (Some(g), _) => Architecture::resolve(g, self.which)?,
            (None, Some(a)) => a.parse::<Nb201Arch>().map(Architecture::Nb201)?,
            (None, None) => anyhow::bail!("give --genotype or --arch-string"),
        };
        let mut s = TrainSettings::reference(&arch, self.dataset);
        s.apply_preset(self.preset);
        s.data_dir = self.data_dir.clone();
        s.seed = self.seed;
        s.device = self.device;
        s.auxiliary_weight = self.auxiliary_weight;
        s.cutout_length = self.cutout_length;
        s.learning_rate = self.learning_rate;
        if self.no_auxiliary {
            s.auxiliary = false;
        }
        if self.no_cutout {
            s.cutout = false;
        }
        if let Some(v) = self.epochs {
            s.epochs = v;
        }
        if let Some(v) = self.batch_size {
            s.batch_size = v;
        }
        if let Some(v) = self.init_channels {
            s.init_channels = v;
        }
        if let Some(v) = self.layers {
            s.layers = v;
        }
        if let Some(v) = self.drop_path_prob {
            s.drop_path_prob = v;
        }
        if self.limit_train.is_some() {
            s.limit_train = self.limit_train;
        }
        if self.limit_test.is_some() {
            s.limit_test = self.limit_test;
        }
        if let Some(v) = self.digits_size {
            s.digits_size = v;
        }
        // The auxiliary head only fits 32-pixel inputs; the presets keep it only where it fits.
        if s.auxiliary && self.preset == TrainPreset::Quick && !self.dataset_is_32px() {
            s.auxiliary = false;
        }
        Ok(s)
    }

    fn dataset_is_32px(&self) -> bool {
        match self.dataset {
            DatasetName::Cifar10 | DatasetName::Cifar100 => true,
            DatasetName::Digits => self.digits_size == Some(32),
            DatasetName::FashionMnist | DatasetName::Mnist => false,
        }
    }
}

fn train_cmd(args: &TrainArgs) -> anyhow::Result<()> {
    let (run_dir, resume) = match (&args.resume, &args.out) {
        (Some(dir), _) => (dir.clone(), true),
        (None, Some(dir)) => (dir.clone(), false),
        (None, None) => (
            PathBuf::from("runs").join(format!("train-{}-s{}", args.dataset, args.seed)),
            false,
        ),
    };
    let settings = if resume {
        train::read_train_settings(&run_dir)?
    } else {
        args.settings()?
    };
    let bar = ProgressBar::hidden();
    let quiet = args.quiet;
    let mut on_event = |e: TrainEvent| {
        match e {
            TrainEvent::Started {
                epoch,
                epochs,
                steps,
                device,
                params,
            } => {
                eprintln!(
                    "train: epochs {epoch}..{epochs}, {steps} steps per epoch, {:.2} M parameters, device {device}",
                    params as f64 / 1e6
                );
                start_bar(&bar, ((epochs - epoch) * steps) as u64, quiet);
            }
            TrainEvent::Step { epoch, step, loss } => {
                bar.inc(1);
                bar.set_message(format!("epoch {epoch} step {step} loss {loss:.4}"));
            }
            TrainEvent::Epoch(m) => {
                let line = format!(
                    "epoch {:>3}  lr {:.5}  drop-path {:.3}  train loss {:.4} acc {:5.2}%  test loss {:.4} acc {:5.2}%  {:.1} s",
                    m.epoch,
                    m.lr,
                    m.drop_path_prob,
                    m.train_loss,
                    m.train_acc,
                    m.test_loss,
                    m.test_acc,
                    m.seconds
                );
                emit(&bar, quiet, line);
            }
        }
        true
    };
    let out = train::train(&settings, &run_dir, resume, &mut on_event)?;
    bar.finish_and_clear();
    if let Some(r) = &out.result {
        println!(
            "test accuracy after the final epoch ({}): {:.2}%   (best over epochs: {:.2}% at epoch {}, selected on the test set)",
            r.epochs, r.final_test_acc, r.best_test_acc, r.best_epoch
        );
        println!(
            "params {:.2} M (without auxiliary head), {:.2} M multiply-adds per image, {:.1} s per epoch",
            r.params_without_auxiliary as f64 / 1e6,
            r.flops as f64 / 1e6,
            r.seconds_per_epoch
        );
    }
    println!("run directory: {}", run_dir.display());
    Ok(())
}

#[derive(Args, Debug)]
struct EvaluateArgs {
    /// Run directory of `darts-pt train`.
    #[arg(long)]
    run: PathBuf,
    /// Compute device: cpu or wgpu.
    #[arg(long, default_value = "cpu", value_parser = parse_backend)]
    device: Backend,
    #[command(flatten)]
    kernels: KernelArgs,
    /// Print JSON: architecture, epoch, test_loss, test_acc, test_images.
    #[arg(long)]
    json: bool,
}

fn evaluate_cmd(args: &EvaluateArgs) -> anyhow::Result<()> {
    let dev = device::open(args.device)?;
    let t = train::load_trained(&args.run, &dev.device)?;
    let ds = train::open_dataset(&t.settings)?;
    let (loss, acc) = train::evaluate(&t.net, &ds, &ds.test, t.settings.batch_size, &dev.device);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "architecture": t.architecture.to_string(),
                "epoch": t.epoch,
                "test_loss": loss,
                "test_acc": acc,
                "test_images": ds.test.len(),
            }))?
        );
    } else {
        println!("architecture {}", t.architecture);
        println!(
            "after epoch {}: test loss {loss:.4}, accuracy {acc:.2}% on {} images",
            t.epoch,
            ds.test.len()
        );
    }
    Ok(())
}

/// Prints search events: a progress bar, one line per epoch.
fn search_printer(bar: &ProgressBar, quiet: bool) -> impl FnMut(Event) -> bool + '_ {
    move |e: Event| {
        match e {
            Event::Started {
                epoch,
                epochs,
                steps,
                device,
            } => {
                eprintln!(
                    "search: epochs {epoch}..{epochs}, {steps} steps per epoch, device {device}"
                );
                start_bar(bar, ((epochs - epoch) * steps) as u64, quiet);
            }
            Event::Step { epoch, step, loss } => {
                bar.inc(1);
                bar.set_message(format!("steps  epoch {epoch} step {step} loss {loss:.4}"));
            }
            Event::Epoch(m) => {
                let line = format!(
                    "epoch {:>3}  train loss {:.4} acc {:5.2}%  valid loss {:.4} acc {:5.2}%  lr {:.5}  {:.1} s",
                    m.epoch, m.train_loss, m.train_acc, m.valid_loss, m.valid_acc, m.lr, m.seconds
                );
                emit(bar, quiet, line);
            }
        }
        true
    }
}

/// Prints selection events: a progress bar over evaluations, one line per decision and tuning epoch.
fn pt_printer(bar: &ProgressBar, quiet: bool) -> impl FnMut(PtEvent) -> bool + '_ {
    move |e: PtEvent| {
        match e {
            PtEvent::Started {
                slot,
                slots,
                decisions,
                evaluations,
                steps,
            } => {
                eprintln!(
                    "pt: slot {slot} of {slots}, {decisions} decisions, {evaluations} evaluations, {steps} tuning steps per epoch"
                );
                if !quiet {
                    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    bar.set_style(bar_style());
                    bar.set_length(evaluations as u64);
                    bar.set_message("evaluations");
                }
            }
            PtEvent::Evaluated => bar.inc(1),
            PtEvent::Decided(d) => {
                let what = match (&d.chosen_op, &d.kept_edges) {
                    (Some(op), _) => format!("edge {} -> {op}", d.edge.unwrap_or(0)),
                    (_, Some(kept)) => format!("node {} keeps edges {kept:?}", d.node.unwrap_or(0)),
                    _ => String::new(),
                };
                let scores: Vec<String> = d
                    .candidates
                    .iter()
                    .map(|c| {
                        format!(
                            "{}:{:.2}",
                            c.op.clone().unwrap_or_else(|| format!("e{}", c.edge)),
                            c.accuracy
                        )
                    })
                    .collect();
                let line = format!(
                    "decision {:>2} {} {what}  ({:.1} s; acc after removal {})",
                    d.index + 1,
                    d.cell,
                    d.seconds,
                    scores.join(" ")
                );
                emit(bar, quiet, line);
            }
            PtEvent::TuneStep { .. } => {}
            PtEvent::Tuned(m) => {
                let line = format!(
                    "tune {:>3}  train loss {:.4} acc {:5.2}%  valid loss {:.4} acc {:5.2}%  {:.1} s",
                    m.epoch, m.train_loss, m.train_acc, m.valid_loss, m.valid_acc, m.seconds
                );
                emit(bar, quiet, line);
            }
        }
        true
    }
}

#[cfg(feature = "gui")]
#[derive(Args, Debug)]
struct GuiArgs {
    /// A run directory to open at start.
    #[arg(long, conflicts_with = "start")]
    run: Option<PathBuf>,
    /// Start the default run (quick preset, NAS-Bench-201 on the embedded digits) into this
    /// directory right away.
    #[arg(long)]
    start: Option<PathBuf>,
}

/// Show `bar` on stderr with `total` units, unless `quiet`.
fn start_bar(bar: &ProgressBar, total: u64, quiet: bool) {
    if !quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_length(total);
        bar.set_style(bar_style());
    }
}

/// Print a log line above the progress bar (or plainly when `quiet`).
fn emit(bar: &ProgressBar, quiet: bool, line: String) {
    if quiet {
        eprintln!("{line}")
    } else {
        bar.println(line)
    }
}
