//! `darts-pt` command-line interface.

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use burn::tensor::{Distribution, Tensor};
use clap::{Args, Parser, Subcommand};
use darts_pt::device::{self, Backend};
use darts_pt::info::{OpNames, supernet_info};
use darts_pt::ops::BnMode;
use darts_pt::space::SpaceName;
use darts_pt::supernet::{SupernetConfig, build_seeded, softmax_weights};

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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Info(args) => info(args).context("info"),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
