//! The run report: `selection.json` (both genotypes, where they disagree, NAS-Bench-201
//! accuracies) and `report.md` (plain Markdown: settings, curves, genotypes, PT scores, time spent
//! per phase, and the figures of [`crate::figures`] written to `figures/` and embedded), built
//! from the files of a run alone (read through its [`RunStore`]).

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::figures;
use crate::genotype::Nb201Arch;
use crate::nb201::{Lookup, Table};
use crate::rundir::{
    RunDir, RunStore, read_genotype, read_metrics, read_settings, read_text, write_json,
};
use crate::select::{Choice, disagreements, read_decisions, read_tune_metrics};
use crate::space::{Family, SearchSpace};

/// Wall time per phase (seconds).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PhaseTimes {
    /// Supernet search (sum of epoch times).
    pub search: f64,
    /// PT scoring (sum of decision times).
    pub pt_scoring: f64,
    /// Progressive tuning (sum of tuning-epoch times).
    pub pt_tuning: f64,
}

/// `selection.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Selection {
    /// Search space.
    pub space: String,
    /// Magnitude genotype (argmax α of the final search checkpoint).
    pub magnitude: Option<String>,
    /// PT genotype.
    pub pt: Option<String>,
    /// Where the two differ.
    pub disagreements: Vec<String>,
    /// NAS-Bench-201 ground truth of the magnitude cell (NB201 runs).
    pub nb201_magnitude: Option<Lookup>,
    /// NAS-Bench-201 ground truth of the PT cell (NB201 runs).
    pub nb201_pt: Option<Lookup>,
    /// Wall time per phase.
    pub seconds: PhaseTimes,
}

/// Gather the selection summary of the run in `store`.
pub fn selection(store: &dyn RunStore) -> Result<Selection> {
    let settings = read_settings(store)?;
    let space = SearchSpace::new(settings.space);
    let magnitude = read_genotype(store, RunDir::GENOTYPE_MAGNITUDE);
    let pt = read_genotype(store, RunDir::GENOTYPE_PT);
    let disagreements = match (&magnitude, &pt) {
        (Some(a), Some(b)) => disagreements(&space, a, b)?,
        _ => Vec::new(),
    };
    let lookup = |g: &Option<String>| -> Result<Option<Lookup>> {
        match (space.family, g) {
            (Family::Nb201, Some(text)) => {
                let arch: Nb201Arch = text.parse()?;
                Ok(Some(Table::embedded().lookup(&arch)))
            }
            _ => Ok(None),
        }
    };
    let seconds = PhaseTimes {
        search: read_metrics(store)?.iter().map(|m| m.seconds).sum(),
        pt_scoring: read_decisions(store)?.iter().map(|d| d.seconds).sum(),
        pt_tuning: read_tune_metrics(store)?.iter().map(|m| m.seconds).sum(),
    };
    Ok(Selection {
        space: settings.space.to_string(),
        nb201_magnitude: lookup(&magnitude)?,
        nb201_pt: lookup(&pt)?,
        magnitude,
        pt,
        disagreements,
        seconds,
    })
}

/// Write `selection.json` and `report.md` into the run in `store`; returns the report text.
pub fn write(store: &dyn RunStore) -> Result<String> {
    let sel = selection(store)?;
    write_json(store, RunDir::SELECTION, &sel)?;
    let figures = figures::write_run_figures(store, &figures::RunData::read(store)?)?;
    let mut text = markdown(store, &sel)?;
    if !figures.is_empty() {
        // After the title and space line: the figures, then the tables.
        let mut head = String::from("## Figures\n\n");
        for (f, file) in &figures {
            let _ = writeln!(head, "![{}]({file})\n\n*{}.*\n", f.name, f.caption);
        }
        let at = text.find("## Genotypes").unwrap_or(text.len());
        text.insert_str(at, &head);
    }
    store.write(RunDir::REPORT, text.as_bytes())?;
    Ok(text)
}

fn markdown(store: &dyn RunStore, sel: &Selection) -> Result<String> {
    let mut s = String::new();
    let location = store.location();
    let name = Path::new(&location)
        .file_name()
        .map_or_else(|| location.clone(), |n| n.to_string_lossy().to_string());
    let _ = writeln!(s, "# darts-pt run `{name}`\n");
    let _ = writeln!(s, "Search space `{}`.\n", sel.space);
    // Results first.
    let _ = writeln!(s, "## Genotypes\n");
    let show = |g: &Option<String>| g.clone().unwrap_or_else(|| "(not selected)".into());
    let _ = writeln!(
        s,
        "Magnitude (argmax α, spec §3.6):\n\n```\n{}\n```\n",
        show(&sel.magnitude)
    );
    let _ = writeln!(
        s,
        "PT (perturbation-based, spec §3):\n\n```\n{}\n```\n",
        show(&sel.pt)
    );
    if sel.magnitude.is_some() && sel.pt.is_some() {
        if sel.disagreements.is_empty() {
            let _ = writeln!(s, "The two selections agree.\n");
        } else {
            let _ = writeln!(s, "Where they disagree:\n");
            for d in &sel.disagreements {
                let _ = writeln!(s, "* {d}");
            }
            s.push('\n');
        }
    }
    if sel.nb201_magnitude.is_some() || sel.nb201_pt.is_some() {
        let _ = writeln!(
            s,
            "## NAS-Bench-201 ground truth\n\nTest accuracy (%) after 200 epochs of training \
             (NATS-Bench), and rank among the 15,625 cells.\n"
        );
        let _ = writeln!(
            s,
            "| selection | CIFAR-10 | CIFAR-100 | ImageNet16-120 | rank (C-10) |\n|---|---|---|---|---|"
        );
        for (label, l) in [("magnitude", &sel.nb201_magnitude), ("PT", &sel.nb201_pt)] {
            if let Some(l) = l {
                let _ = writeln!(
                    s,
                    "| {label} | {:.2} | {:.2} | {:.2} | {} |",
                    l.cifar10, l.cifar100, l.imagenet16_120, l.rank.cifar10
                );
            }
        }
        s.push('\n');
    }
    let t = &sel.seconds;
    let _ = writeln!(
        s,
        "## Time per phase\n\n| phase | seconds |\n|---|---|\n| supernet search | {:.1} |\n| PT scoring | {:.1} |\n| PT tuning | {:.1} |\n| total | {:.1} |\n",
        t.search,
        t.pt_scoring,
        t.pt_tuning,
        t.search + t.pt_scoring + t.pt_tuning
    );
    // Decisions.
    let decisions = read_decisions(store)?;
    let space = SearchSpace::new(read_settings(store)?.space);
    if !decisions.is_empty() {
        let _ = writeln!(
            s,
            "## PT decisions\n\nAccuracy (%) and mean loss on the validation half after removing each \
             candidate; the kept op is the one whose removal hurts most.\n"
        );
        for d in &decisions {
            match &d.choice {
                Choice::Op { edge, chosen_op } => {
                    let _ = writeln!(
                        s,
                        "### {}. {} edge {} (before tuning epoch {}, {:.1} s): keep `{}`\n\n| removed op | accuracy | loss |\n|---|---|---|",
                        d.index + 1,
                        d.cell,
                        space.edge_label(d.cell, *edge),
                        d.epoch,
                        d.seconds,
                        chosen_op
                    );
                    for c in &d.candidates {
                        let _ = writeln!(
                            s,
                            "| {} | {:.2} | {:.4} |",
                            c.op.map_or_else(String::new, |o| o.to_string()),
                            c.accuracy,
                            c.loss
                        );
                    }
                }
                Choice::Topology { node, kept_edges } => {
                    let _ = writeln!(
                        s,
                        "### {}. {} node {} (before tuning epoch {}, {:.1} s): keep edges {}\n\n| round | removed edge | accuracy | loss |\n|---|---|---|---|",
                        d.index + 1,
                        d.cell,
                        node,
                        d.epoch,
                        d.seconds,
                        kept_edges
                            .iter()
                            .map(|&e| format!("`{}`", space.edge_label(d.cell, e)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    for c in &d.candidates {
                        let _ = writeln!(
                            s,
                            "| {} | {} | {:.2} | {:.4} |",
                            c.round,
                            space.edge_label(d.cell, c.edge),
                            c.accuracy,
                            c.loss
                        );
                    }
                }
            }
            s.push('\n');
        }
    }
    // Curves.
    let metrics = read_metrics(store)?;
    if !metrics.is_empty() {
        let _ = writeln!(
            s,
            "## Search curves\n\n| epoch | train loss | train acc | valid loss | valid acc | lr | seconds |\n|---|---|---|---|---|---|---|"
        );
        for m in &metrics {
            let _ = writeln!(
                s,
                "| {} | {:.4} | {:.2} | {:.4} | {:.2} | {:.5} | {:.1} |",
                m.epoch, m.train_loss, m.train_acc, m.valid_loss, m.valid_acc, m.lr, m.seconds
            );
        }
        s.push('\n');
    }
    let tune = read_tune_metrics(store)?;
    if !tune.is_empty() {
        let _ = writeln!(
            s,
            "## Progressive tuning\n\n| epoch | decisions | train loss | train acc | valid loss | valid acc | seconds |\n|---|---|---|---|---|---|---|"
        );
        for m in &tune {
            let _ = writeln!(
                s,
                "| {} | {} | {:.4} | {:.2} | {:.4} | {:.2} | {:.1} |",
                m.epoch,
                m.decisions,
                m.train_loss,
                m.train_acc,
                m.valid_loss,
                m.valid_acc,
                m.seconds
            );
        }
        s.push('\n');
    }
    // Settings.
    let _ = writeln!(
        s,
        "## Settings\n\nSearch (`config.toml`):\n\n```toml\n{}```\n",
        read_text(store, RunDir::CONFIG)?.unwrap_or_default()
    );
    if let Some(pt) = read_text(store, RunDir::PT_SETTINGS)? {
        let _ = writeln!(
            s,
            "PT selection (`pt/settings.toml`):\n\n```toml\n{pt}```\n"
        );
    }
    Ok(s)
}
