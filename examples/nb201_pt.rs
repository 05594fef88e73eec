//! NAS-Bench-201 search and PT selection on the embedded digits, then both cells looked up in
//! NAS-Bench-201's offline table.
//!
//! ```sh
//! cargo run --example nb201_pt              # CPU-sized (the `quick` preset), a few minutes
//! cargo run --example nb201_pt -- --tiny    # seconds (what CI runs)
//! ```

use std::path::PathBuf;

use darts_pt::data::DatasetName;
use darts_pt::run::{self, SearchSettings};
use darts_pt::select::{self, EvalMode, PtSettings};
use darts_pt::space::SpaceName;

fn run_example(tiny: bool, out: PathBuf) -> anyhow::Result<darts_pt::report::Selection> {
    let mut search = SearchSettings::reference(SpaceName::Nb201, DatasetName::Digits);
    search.apply_quick_preset();
    let mut pt = PtSettings {
        proj_intv: 1,
        ..PtSettings::default()
    };
    if tiny {
        search.epochs = 1;
        search.limit_train = Some(256);
        search.init_channels = 4;
        search.digits_size = 8;
        pt.eval = EvalMode::Deterministic;
    }
    let found = run::search(&search, &out, false, &mut |_| true)?;
    println!("supernet trained: {} epochs", found.metrics.len());
    select::select_magnitude(&out)?;
    let chosen = select::select_pt(&out, &pt, false, &mut |_| true)?;
    let space = darts_pt::space::SearchSpace::new(search.space);
    for d in &chosen.decisions {
        println!("decision {}: {}", d.index + 1, d.summary(&space));
    }
    darts_pt::report::write(&darts_pt::rundir::RunDir::new(&out))?;
    let sel = darts_pt::report::selection(&darts_pt::rundir::RunDir::new(&out))?;
    for (label, l) in [("magnitude", &sel.nb201_magnitude), ("PT", &sel.nb201_pt)] {
        let l = l.as_ref().expect("NB201 runs are looked up");
        println!(
            "{label:<9} {}  CIFAR-10 {:.2}% (rank {})",
            l.arch, l.cifar10, l.rank.cifar10
        );
    }
    println!("report: {}", out.join("report.md").display());
    Ok(sel)
}

fn main() -> anyhow::Result<()> {
    let tiny = std::env::args().any(|a| a == "--tiny");
    run_example(tiny, PathBuf::from("runs/example-nb201-pt"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tiny() {
        let out = std::env::temp_dir().join(format!("darts-pt-ex-nb201-{}", std::process::id()));
        let sel = super::run_example(true, out.clone()).unwrap();
        assert!(sel.pt.is_some() && sel.magnitude.is_some());
        assert!(sel.nb201_pt.unwrap().cifar10 >= 10.0);
        let _ = std::fs::remove_dir_all(out);
    }
}
