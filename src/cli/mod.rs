//! `darts-pt` command-line interface: [`args`] (the flags of every subcommand), [`commands`]
//! (what each subcommand does with the engine) and [`print`] (progress bars, log lines, tables).

mod args;
mod commands;
mod print;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use darts_pt::engine::Control;
use darts_pt::kernels;

use args::*;
use commands::*;

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
    /// List the wgpu adapters (name, graphics API, type) and the one `--device wgpu` opens.
    Devices(DevicesArgs),
    /// Draw a genotype's cells, or a run's magnitude and PT cells side by side: PNG, SVG, or
    /// Graphviz DOT (for papers: `darts-pt draw G | dot -Tpdf > cell.pdf`).
    Draw(DrawArgs),
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
    /// The `--kernels` and `--adapter` of a command that computes on a device (set once, at
    /// startup).
    fn kernels(&self) -> Option<&KernelArgs> {
        let k = match self {
            Command::Info(a) => &a.kernels,
            Command::Search(a) => &a.compute.kernels,
            Command::Run(a) => &a.search.compute.kernels,
            Command::Import(a) => &a.search.compute.kernels,
            Command::Train(a) => &a.compute.kernels,
            Command::Evaluate(a) => &a.compute.kernels,
            Command::Bench(a) => &a.compute.kernels,
            Command::Select(a) => &a.kernels,
            Command::Score(a) => &a.kernels,
            _ => return None,
        };
        Some(k)
    }
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

/// The stop/pause requests of the job this process runs: Ctrl-C asks it to stop at its next
/// checkpoint (a second Ctrl-C exits at once).
static CTRL_C: Control = Control::new();

fn install_ctrl_c() {
    let _ = ctrlc::set_handler(|| {
        if CTRL_C.stop_requested() {
            eprintln!("\ninterrupted again: exiting now (the last checkpoint is kept)");
            std::process::exit(130);
        }
        CTRL_C.request_stop();
        eprintln!(
            "\nstopping at the next checkpoint (end of the epoch, or of the PT slot); Ctrl-C again exits at once"
        );
    });
}

/// Parse the command line, run the subcommand, print its error (each cause once).
pub fn main() -> ExitCode {
    keep_freed_memory();
    let matches = <Cli as clap::CommandFactory>::command().get_matches();
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    // Which flags were typed (a `--config` file is overridden only by those).
    let given = Given(matches.subcommand().map(|(_, m)| m));
    if matches!(
        cli.command,
        Command::Search(_) | Command::Select(_) | Command::Run(_)
    ) {
        install_ctrl_c();
    }
    if let Some(k) = cli.command.kernels() {
        kernels::set_kernels(k.kernels);
        darts_pt::device::set_adapter(k.adapter.clone());
    }
    let result = match &cli.command {
        Command::Info(args) => info(args).context("info"),
        Command::Search(args) => search(args, given).context("search"),
        Command::Select(args) => select_cmd(args, given).context("select"),
        Command::Run(args) => run_cmd(args, given).context("run"),
        Command::Lookup(args) => lookup(args).context("lookup"),
        Command::Draw(args) => draw_cmd(args).context("draw"),
        Command::Devices(args) => devices_cmd(args).context("devices"),
        Command::Import(args) => import_cmd(args, given).context("import"),
        Command::Score(args) => score_cmd(args).context("score"),
        Command::Train(args) => train_cmd(args, given).context("train"),
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
