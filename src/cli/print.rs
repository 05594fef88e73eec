//! What the CLI prints: progress bars and log lines of a job's events, the selection summary,
//! the bench table.

use darts_pt::bench::BenchReport;
use darts_pt::event::Event;
use darts_pt::rundir::RunDir;
use darts_pt::train::TrainEvent;
use indicatif::{ProgressBar, ProgressStyle};

/// The bench report as a table: the three figures, and GFLOP/s of the forward FLOPs.
pub fn print_bench(r: &BenchReport) {
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

pub fn thousands(n: usize) -> String {
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

pub fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}  [{elapsed_precise} < {eta_precise}]")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
}

pub fn print_selection(run_dir: &std::path::Path) -> anyhow::Result<()> {
    let store = RunDir::new(run_dir);
    let text = darts_pt::report::write(&store)?;
    let sel = darts_pt::report::selection(&store)?;
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
        store.path(RunDir::REPORT).display(),
        text.lines().count()
    );
    Ok(())
}

/// Show `bar` on stderr with `total` units, unless `quiet`.
pub fn start_bar(bar: &ProgressBar, total: u64, quiet: bool) {
    if !quiet {
        bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        bar.set_length(total);
        bar.set_style(bar_style());
    }
}

/// Print a log line above the progress bar (or plainly when `quiet`).
pub fn emit(bar: &ProgressBar, quiet: bool, line: String) {
    if quiet {
        eprintln!("{line}")
    } else {
        bar.println(line)
    }
}

/// Prints a job's [`Event`]s: a progress bar over the search steps, then one over the PT
/// evaluations, and one log line per search epoch, PT decision and tuning epoch (above the bars,
/// or plainly with `quiet`). `search`, `select` and `run` print through it.
pub struct Printer {
    search: ProgressBar,
    pt: ProgressBar,
    quiet: bool,
    /// The run's space, to name edges in decision lines.
    space: darts_pt::space::SearchSpace,
}

impl Printer {
    /// Hidden bars until the first event; `quiet` keeps them hidden.
    pub fn new(quiet: bool, space: darts_pt::space::SpaceName) -> Self {
        Self {
            search: ProgressBar::hidden(),
            pt: ProgressBar::hidden(),
            quiet,
            space: darts_pt::space::SearchSpace::new(space),
        }
    }

    /// Show one event.
    pub fn on(&self, e: Event) {
        let quiet = self.quiet;
        match e {
            Event::SearchStarted {
                epoch,
                epochs,
                steps,
                device,
            } => {
                eprintln!(
                    "search: epochs {epoch}..{epochs}, {steps} steps per epoch, device {device}"
                );
                start_bar(&self.search, ((epochs - epoch) * steps) as u64, quiet);
            }
            Event::Step { epoch, step, loss } => {
                self.search.inc(1);
                self.search
                    .set_message(format!("steps  epoch {epoch} step {step} loss {loss:.4}"));
            }
            Event::Epoch(m) => {
                let line = format!(
                    "epoch {:>3}  train loss {:.4} acc {:5.2}%  valid loss {:.4} acc {:5.2}%  lr {:.5}  {:.1} s",
                    m.epoch, m.train_loss, m.train_acc, m.valid_loss, m.valid_acc, m.lr, m.seconds
                );
                emit(&self.search, quiet, line);
            }
            Event::Magnitude(_) => self.search.finish_and_clear(),
            Event::PtStarted {
                slot,
                slots,
                decisions,
                evaluations,
                steps,
            } => {
                self.search.finish_and_clear();
                eprintln!(
                    "pt: slot {slot} of {slots}, {decisions} decisions, {evaluations} evaluations, {steps} tuning steps per epoch"
                );
                start_bar(&self.pt, evaluations as u64, quiet);
                self.pt.set_message("evaluations");
            }
            Event::Evaluated => self.pt.inc(1),
            Event::Decided(d) => {
                let scores: Vec<String> = d
                    .candidates
                    .iter()
                    .map(|c| {
                        format!(
                            "{}:{:.2}",
                            c.op.map_or_else(|| format!("e{}", c.edge), |o| o.to_string()),
                            c.accuracy
                        )
                    })
                    .collect();
                let line = format!(
                    "decision {:>2} {} {}  ({:.1} s; acc after removal {})",
                    d.index + 1,
                    d.cell,
                    d.summary(&self.space),
                    d.seconds,
                    scores.join(" ")
                );
                emit(&self.pt, quiet, line);
            }
            Event::TuneStep { .. } => {}
            Event::Tuned(m) => {
                let line = format!(
                    "tune {:>3}  train loss {:.4} acc {:5.2}%  valid loss {:.4} acc {:5.2}%  {:.1} s",
                    m.epoch, m.train_loss, m.train_acc, m.valid_loss, m.valid_acc, m.seconds
                );
                emit(&self.pt, quiet, line);
            }
            Event::Finished(_) => self.pt.finish_and_clear(),
        }
    }

    /// Clear whatever bar is still shown.
    pub fn finish(&self) {
        self.search.finish_and_clear();
        self.pt.finish_and_clear();
    }
}

/// Prints `train` events: a progress bar over the steps, one line per epoch.
pub fn train_printer(bar: &ProgressBar, quiet: bool) -> impl FnMut(TrainEvent) -> bool + '_ {
    move |e: TrainEvent| {
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
                start_bar(bar, ((epochs - epoch) * steps) as u64, quiet);
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
                emit(bar, quiet, line);
            }
        }
        true
    }
}
