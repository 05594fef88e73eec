//! `darts-pt` command-line interface.

use std::process::ExitCode;
use std::time::Instant;

use std::path::PathBuf;

use anyhow::Context;
use burn::tensor::{Distribution, Tensor};
use clap::{Args, Parser, Subcommand};
use darts_pt::data::DatasetName;
use darts_pt::device::{self, Backend};
use darts_pt::info::{OpNames, supernet_info};
use darts_pt::ops::BnMode;
use darts_pt::run::{self, Event, SearchSettings};
use darts_pt::search::Method;
use darts_pt::space::SpaceName;
use darts_pt::supernet::{SupernetConfig, build_seeded, softmax_weights};
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
    /// Batch size of both halves.
    #[arg(long, default_value_t = 64)]
    batch_size: usize,
    /// Run seed.
    #[arg(long, default_value_t = 2)]
    seed: u64,
    /// Use only the first N training images (before the 50/50 split).
    #[arg(long)]
    limit_train: Option<usize>,
    /// Initial channels C.
    #[arg(long, default_value_t = 16)]
    init_channels: usize,
    /// Cells (DARTS-like; default 8) or cells per stage (NB201; default 5).
    #[arg(long)]
    layers: Option<usize>,
    /// Size the embedded digits are upsampled to (8, 16 or 32).
    #[arg(long, default_value_t = 16)]
    digits_size: usize,
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
    /// Run directory to write (or, with --resume, to continue).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// No progress bars; one log line per epoch.
    #[arg(long)]
    quiet: bool,
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
    /// Initial channels C.
    #[arg(long, default_value_t = 16)]
    init_channels: usize,
    /// Cells (DARTS-like spaces; default 8) or cells per stage (NB201; default 5).
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
            init_channels: self.init_channels,
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
    /// Print JSON with the keys `params`, `alpha_elements`, `alpha_shapes`, `op_names`.
    #[arg(long)]
    json: bool,
    /// Also build the supernet on this device (cpu or wgpu) and time one forward pass of a batch of 2.
    #[arg(long, value_parser = parse_backend)]
    device: Option<Backend>,
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

fn search(args: &SearchArgs) -> anyhow::Result<()> {
    let mut settings = SearchSettings::reference(args.space, args.dataset);
    settings.data_dir = args.data_dir.clone();
    settings.method = args.method;
    settings.second_order = args.second_order;
    if let Some(e) = args.epochs {
        settings.epochs = e;
    }
    settings.batch_size = args.batch_size;
    settings.seed = args.seed;
    settings.limit_train = args.limit_train;
    settings.init_channels = args.init_channels;
    if let Some(l) = args.layers {
        settings.layers = l;
    }
    settings.digits_size = args.digits_size;
    settings.augment = !args.no_augment;
    settings.cutout = args.cutout;
    settings.cutout_length = args.cutout_length;
    settings.cutout_prob = args.cutout_prob;
    settings.device = args.device;
    let (run_dir, resume) = match (&args.resume, &args.out) {
        (Some(dir), _) => (dir.clone(), true),
        (None, Some(dir)) => (dir.clone(), false),
        (None, None) => {
            anyhow::bail!("give --out RUN_DIR for a new run or --resume RUN_DIR to continue one")
        }
    };
    let bar = ProgressBar::hidden();
    let quiet = args.quiet;
    let mut on_event = |e: Event| {
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
                if !quiet {
                    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    bar.set_length(((epochs - epoch) * steps) as u64);
                    bar.set_style(
                    ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  [{elapsed_precise} < {eta_precise}]")
                        .unwrap_or_else(|_| ProgressStyle::default_bar()),
                );
                }
            }
            Event::Step { epoch, step, loss } => {
                bar.inc(1);
                bar.set_message(format!("epoch {epoch} step {step} loss {loss:.4}"));
            }
            Event::Epoch(m) => {
                let line = format!(
                    "epoch {:>3}  train loss {:.4} acc {:5.2}%  valid loss {:.4} acc {:5.2}%  lr {:.5}  {:.1} s",
                    m.epoch, m.train_loss, m.train_acc, m.valid_loss, m.valid_acc, m.lr, m.seconds
                );
                if quiet {
                    eprintln!("{line}")
                } else {
                    bar.println(line)
                }
            }
        }
        true
    };
    let out = run::search(&settings, &run_dir, resume, &mut on_event)?;
    bar.finish_and_clear();
    println!("magnitude genotype: {}", out.genotype);
    println!("run directory: {}", run_dir.display());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Info(args) => info(args).context("info"),
        Command::Search(args) => search(args).context("search"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
