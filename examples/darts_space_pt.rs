//! DARTS-space search and PT selection (op decisions on all 14 edges of both cell types, then
//! topology) on real CIFAR-10 images.
//!
//! ```sh
//! cargo run --example darts_space_pt -- --data-dir PATH/cifar-10-batches-bin   # CPU-sized
//! cargo run --example darts_space_pt -- --tiny                                  # what CI runs
//! ```
//!
//! Without `--data-dir` it reads `$DARTS_PT_SHARED/data/cifar10-subset` (the project's subset of
//! CIFAR-10 in the official binary layout).

use std::path::PathBuf;

use darts_pt::data::DatasetName;
use darts_pt::run::{self, SearchSettings};
use darts_pt::select::{self, Choice, EvalMode, PtSettings};
use darts_pt::space::SpaceName;

fn data_dir() -> Option<PathBuf> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--data-dir") {
        return args.get(i + 1).map(PathBuf::from);
    }
    let shared = std::env::var_os("DARTS_PT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    let dir = shared.join("data").join("cifar10-subset");
    dir.is_dir().then_some(dir)
}

fn run_example(tiny: bool, data: PathBuf, out: PathBuf) -> anyhow::Result<String> {
    let mut search = SearchSettings::reference(SpaceName::Darts, DatasetName::Cifar10);
    search.data_dir = Some(data);
    search.apply_quick_preset();
    let mut pt = PtSettings {
        proj_intv: 1,
        ..PtSettings::default()
    };
    if tiny {
        search.epochs = 1;
        search.limit_train = Some(128);
        search.init_channels = 4;
        search.layers = 3;
        // Decisions back to back (no tuning epochs) on 16 images: the 240 evaluations of the
        // DARTS space stay cheap; `robust_s2` covers tuning between decisions.
        pt.proj_intv = 0;
        pt.eval = EvalMode::Deterministic;
        pt.eval_limit = Some(16);
    }
    run::search(&search, &out, false, &mut |_| true)?;
    let magnitude = select::select_magnitude(&out)?;
    let chosen = select::select_pt(&out, &pt, false, &mut |_| true)?;
    let space = darts_pt::space::SearchSpace::new(search.space);
    let topology: Vec<String> = chosen
        .decisions
        .iter()
        .filter(|d| matches!(d.choice, Choice::Topology { .. }))
        .map(|d| format!("{} {}", d.cell, d.summary(&space)))
        .collect();
    println!(
        "{} decisions; topology: {}",
        chosen.decisions.len(),
        topology.join("; ")
    );
    println!("magnitude: {magnitude}");
    println!("PT:        {}", chosen.genotype);
    darts_pt::report::write(&darts_pt::rundir::RunDir::new(&out))?;
    println!("report: {}", out.join("report.md").display());
    Ok(chosen.genotype)
}

fn main() -> anyhow::Result<()> {
    let tiny = std::env::args().any(|a| a == "--tiny");
    let Some(data) = data_dir() else {
        anyhow::bail!("give --data-dir DIR (CIFAR-10 binary version) or set DARTS_PT_SHARED");
    };
    run_example(tiny, data, PathBuf::from("runs/example-darts-space-pt"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tiny() {
        let Some(data) = super::data_dir() else {
            eprintln!("skipping: CIFAR-10 subset not found (set DARTS_PT_SHARED)");
            return;
        };
        let out = std::env::temp_dir().join(format!("darts-pt-ex-darts-{}", std::process::id()));
        let g = super::run_example(true, data, out.clone()).unwrap();
        let g: darts_pt::genotype::DartsGenotype = g.parse().unwrap();
        assert_eq!(g.normal.len(), 8);
        assert_eq!(g.reduce.len(), 8);
        let _ = std::fs::remove_dir_all(out);
    }
}
