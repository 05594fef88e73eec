//! RobustDARTS space S2 (each edge: `skip_connect` or `sep_conv_3x3`), where DARTS' magnitude
//! selection is known to fill the cells with skip connections (Zela et al., ICLR 2020) and PT
//! should not (DARTS-PT paper, Table 3). Prints how many skip connections each selection keeps.
//!
//! ```sh
//! cargo run --example robust_s2             # CPU-sized on the embedded digits
//! cargo run --example robust_s2 -- --tiny   # what CI runs
//! ```

use std::path::PathBuf;

use darts_pt::data::DatasetName;
use darts_pt::genotype::DartsGenotype;
use darts_pt::run::{self, SearchSettings};
use darts_pt::select::{self, EvalMode, PtSettings};
use darts_pt::space::{OpKind, SpaceName};

fn skips(g: &DartsGenotype) -> usize {
    g.normal
        .iter()
        .chain(&g.reduce)
        .filter(|(op, _)| *op == OpKind::SkipConnect)
        .count()
}

fn run_example(tiny: bool, out: PathBuf) -> anyhow::Result<(usize, usize)> {
    let mut search = SearchSettings::reference(SpaceName::S2, DatasetName::Digits);
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
        search.digits_size = 8;
        pt.eval = EvalMode::Deterministic;
        pt.eval_limit = Some(32);
    }
    run::search(&search, &out, false, &mut |_| true)?;
    let magnitude: DartsGenotype = select::select_magnitude(&out)?.parse()?;
    let chosen: DartsGenotype = select::select_pt(&out, &pt, false, &mut |_| true)?
        .genotype
        .parse()?;
    let (m, p) = (skips(&magnitude), skips(&chosen));
    println!("magnitude: {magnitude}\n  skip connections: {m} of 16");
    println!("PT:        {chosen}\n  skip connections: {p} of 16");
    darts_pt::report::write(&darts_pt::rundir::RunDir::new(&out))?;
    Ok((m, p))
}

fn main() -> anyhow::Result<()> {
    let tiny = std::env::args().any(|a| a == "--tiny");
    run_example(tiny, PathBuf::from("runs/example-robust-s2"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn tiny() {
        let out = std::env::temp_dir().join(format!("darts-pt-ex-s2-{}", std::process::id()));
        let (m, p) = super::run_example(true, out.clone()).unwrap();
        assert!(m <= 16 && p <= 16);
        let _ = std::fs::remove_dir_all(out);
    }
}
