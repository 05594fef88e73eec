//! The subcommands: each turns its arguments into the engine's settings, runs the engine and
//! prints the outcome.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use burn::tensor::{Distribution, Tensor};
use darts_pt::bench::{BenchConfig, run_bench};
use darts_pt::device;
use darts_pt::engine::block_on;
use darts_pt::genotype::Nb201Arch;
use darts_pt::info::{OpNames, supernet_info};
use darts_pt::job::{JobEnd, run_job_with};
use darts_pt::network::{Architecture, NetworkConfig, RunGenotype, network_info};
use darts_pt::ops::BnMode;
use darts_pt::run::{self, SearchSettings};
use darts_pt::rundir::{self, RunDir};
use darts_pt::select::{self, PtSettings};
use darts_pt::supernet::{build_seeded, softmax_weights};
use darts_pt::train;
use indicatif::ProgressBar;

use super::CTRL_C;
use super::args::*;
use super::print::{Printer, print_bench, print_selection, thousands, train_printer};

pub fn bench_cmd(args: &BenchArgs) -> anyhow::Result<()> {
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
    cfg.backend = args.compute.device;
    cfg.kernels = args.compute.kernels.kernels;
    cfg.seed = args.seed;
    let r = run_bench(&cfg)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print_bench(&r);
    }
    Ok(())
}

pub fn info(args: &InfoArgs) -> anyhow::Result<()> {
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

/// The run directory of `search`, `run` and `import` (default `runs/SPACE-DATASET-sSEED`), and
/// whether to resume it.
pub fn run_dir_of(args: &SearchArgs) -> (PathBuf, bool) {
    args.output
        .run_dir(&format!("{}-{}-s{}", args.space, args.dataset, args.seed))
}

/// Search into `run_dir`, printing its events.
pub fn run_search(
    settings: &SearchSettings,
    run_dir: &Path,
    resume: bool,
    quiet: bool,
) -> anyhow::Result<run::SearchOutcome> {
    let _lock = RunDir::new(run_dir).lock("darts-pt search")?;
    let printer = Printer::new(quiet, settings.space);
    let out = block_on(run::search_in(
        settings,
        &RunDir::new(run_dir),
        resume,
        &CTRL_C,
        &mut |e| printer.on(e),
    ));
    printer.finish();
    Ok(out?)
}

pub fn search(args: &SearchArgs, given: Given) -> anyhow::Result<()> {
    let (settings, _) = args.settings(false, given)?;
    settings.validate()?;
    let (run_dir, resume) = run_dir_of(args);
    let out = run_search(&settings, &run_dir, resume, args.output.quiet)?;
    if out.stopped {
        anyhow::bail!(
            "search stopped; continue with --resume {}",
            run_dir.display()
        );
    }
    println!("magnitude genotype: {}", out.genotype);
    println!("run directory: {}", run_dir.display());
    Ok(())
}

/// PT selection of the run in `run_dir`, printing its events.
pub fn run_pt(
    run_dir: &Path,
    settings: &PtSettings,
    resume: bool,
    quiet: bool,
) -> anyhow::Result<select::PtOutcome> {
    let store = RunDir::new(run_dir);
    let run = select::load_run(&store)?;
    let printer = Printer::new(quiet, run.settings.space);
    let out = block_on(select::select_pt_in(
        run,
        &store,
        settings,
        resume,
        &CTRL_C,
        &mut |e| printer.on(e),
    ));
    printer.finish();
    Ok(out?)
}

pub fn select_cmd(args: &SelectArgs, given: Given) -> anyhow::Result<()> {
    let store = RunDir::new(&args.run);
    let search = rundir::read_settings(&store)?;
    let _lock = store.lock("darts-pt select")?;
    if args.method != SelectMethod::Pt {
        select::select_magnitude(&args.run)?;
    }
    if args.method != SelectMethod::Magnitude {
        let earlier =
            store.path(RunDir::GENOTYPE_PT).exists() || !select::read_decisions(&store)?.is_empty();
        if earlier && !args.resume && !args.force {
            anyhow::bail!(
                "{} already has a PT selection; continue it with --resume or discard it with --force",
                args.run.display()
            );
        }
        // A `--config` file's `[pt]` table, or the whole file as PT settings.
        let file = match ConfigFile::read(&args.config)? {
            Some(mut f) => Some(match f.take_table("pt")? {
                Some(table) => ConfigFile {
                    path: f.path,
                    table,
                },
                None => f,
            }),
            None => None,
        };
        let pt = args.pt.settings(false, &search, file.as_ref(), given)?;
        let out = run_pt(&args.run, &pt, args.resume, args.quiet)?;
        if out.stopped {
            anyhow::bail!("selection stopped; continue with --resume");
        }
    }
    print_selection(&args.run)
}

pub fn run_cmd(args: &RunArgs, given: Given) -> anyhow::Result<()> {
    let (run_dir, resume) = run_dir_of(&args.search);
    // With a --config file the preset applies only when typed.
    let quick =
        args.preset == Preset::Quick && (args.search.config.is_none() || given.typed("preset"));
    let (settings, pt_file) = args.search.settings(quick, given)?;
    if !resume {
        settings.validate()?;
    }
    let quiet = args.search.output.quiet;
    // A resumed run's own settings decide the selection defaults (its `pt/settings.toml`, written
    // when it started, wins anyway).
    let search = if resume {
        rundir::read_settings(&RunDir::new(&run_dir))?
    } else {
        settings.clone()
    };
    let pt = args.pt.settings(quick, &search, pt_file.as_ref(), given)?;
    let _lock = RunDir::new(&run_dir).lock("darts-pt run")?;
    let printer = Printer::new(quiet, search.space);
    let end = run_job_with(&settings, &pt, &run_dir, resume, &CTRL_C, &mut |e| {
        printer.on(e)
    });
    printer.finish();
    match end? {
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

pub fn lookup(args: &LookupArgs) -> anyhow::Result<()> {
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

pub fn devices_cmd(args: &DevicesArgs) -> anyhow::Result<()> {
    let list = darts_pt::device::adapters();
    let chosen = darts_pt::device::choose_adapter(&list, None)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "adapters": list,
                "default": chosen.as_ref().map(|a| a.index),
            }))?
        );
        return Ok(());
    }
    if list.is_empty() {
        println!(
            "no wgpu adapter (install a Vulkan driver, e.g. Mesa's mesa-vulkan-drivers); --device cpu works everywhere"
        );
        return Ok(());
    }
    println!(
        "{:<3} {:<44} {:<7} {:<14} driver",
        "#", "adapter", "API", "type"
    );
    for a in &list {
        let mark = if chosen.as_ref().is_some_and(|c| c.index == a.index) {
            "  <- --device wgpu"
        } else {
            ""
        };
        println!(
            "{:<3} {:<44} {:<7} {:<14} {}{mark}",
            a.index, a.name, a.backend, a.device_type, a.driver
        );
    }
    println!("(choose another with --adapter N or --adapter NAME)");
    Ok(())
}

pub fn draw_cmd(args: &DrawArgs) -> anyhow::Result<()> {
    use darts_pt::figures::{DrawFormat, draw};
    let format = match (&args.format, &args.output) {
        (Some(f), _) => f.parse::<DrawFormat>()?,
        (None, Some(out)) => match out.extension().and_then(|e| e.to_str()) {
            Some(e) => e.parse::<DrawFormat>().with_context(|| {
                format!(
                    "--output {}: give --format for this extension",
                    out.display()
                )
            })?,
            None => DrawFormat::Dot,
        },
        (None, None) => DrawFormat::Dot,
    };
    let bytes = draw(&args.what, format)?;
    match &args.output {
        Some(out) => {
            rundir::write_atomic(out, &bytes)?;
            eprintln!("wrote {}", out.display());
        }
        None if format == DrawFormat::Png => {
            anyhow::bail!("a PNG needs --output FILE (DOT and SVG can go to standard output)")
        }
        None => {
            use std::io::Write as _;
            std::io::stdout().write_all(&bytes)?;
        }
    }
    Ok(())
}

pub fn import_cmd(args: &ImportArgs, given: Given) -> anyhow::Result<()> {
    let (settings, _) = args.search.settings(false, given)?;
    let Some(out) = &args.search.output.out else {
        anyhow::bail!("give --out RUN_DIR");
    };
    let _lock = RunDir::new(out).lock("darts-pt import")?;
    let g = darts_pt::import::import_reference(&args.from_darts_pt, &settings, out)?;
    println!(
        "imported {} into {}",
        args.from_darts_pt.display(),
        out.display()
    );
    println!("magnitude genotype: {g}");
    println!("next: darts-pt select --run {}", out.display());
    Ok(())
}

pub fn score_cmd(args: &ScoreArgs) -> anyhow::Result<()> {
    let loaded = select::load_run(&RunDir::new(&args.run))?;
    let batch = darts_pt::score::FixedBatch::read(&args.batch)?;
    batch.check(&loaded.cfg, &args.batch)?;
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

pub fn nb201_table(args: &TableArgs) -> anyhow::Result<()> {
    let csv = std::fs::read_to_string(&args.csv)
        .with_context(|| format!("reading {}", args.csv.display()))?;
    let bytes = darts_pt::nb201::table_from_csv(&csv, &args.csv)?;
    rundir::write_atomic(&args.out, &bytes)?;
    println!("{} bytes -> {}", bytes.len(), args.out.display());
    Ok(())
}

pub fn network_info_cmd(args: &InfoArgs) -> anyhow::Result<()> {
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

pub fn train_cmd(args: &TrainArgs, given: Given) -> anyhow::Result<()> {
    let (run_dir, resume) = args
        .output
        .run_dir(&format!("train-{}-s{}", args.dataset, args.seed));
    let settings = if resume {
        train::read_train_settings(&run_dir)?
    } else {
        args.settings(given)?
    };
    let _lock = RunDir::new(&run_dir).lock("darts-pt train")?;
    let bar = ProgressBar::hidden();
    let mut on_event = train_printer(&bar, args.output.quiet);
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

pub fn evaluate_cmd(args: &EvaluateArgs) -> anyhow::Result<()> {
    let dev = device::open(args.compute.device)?;
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
