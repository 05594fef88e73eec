//! Selection: PT against magnitude on toy supernets, the topology loop, kill and resume of the
//! CLI, the NAS-Bench-201 table.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use burn::module::Module;
use darts_pt::data::{self, Augment, DatasetName};
use darts_pt::engine::block_on;
use darts_pt::genotype::{Nb201Arch, derive_nb201};
use darts_pt::nb201::Table;
use darts_pt::run::train_epoch;
use darts_pt::search::{Hyper, Method, Trainer, epoch_rng};
use darts_pt::select::{
    Criterion, EvalMode, Evaluate, Scorer, TopologyMode, op_decision, topology_decision,
};
use darts_pt::space::{CellType, OpKind, SearchSpace, SpaceName};
use darts_pt::supernet::{Alphas, SupernetConfig, build_seeded, tensor_rows};
use darts_pt::weights::{Mask, Overrides};

use crate::shared_dir;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_darts-pt")
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("darts-pt-select-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Train a tiny supernet on the embedded digits (8×8) with α fixed to `alpha` and the given
/// decided rows, then return a trainer and the dataset.
fn trained(
    space: SpaceName,
    layers: usize,
    alpha: &[Vec<Vec<f32>>],
    overrides: Vec<Overrides>,
    epochs: usize,
) -> (Trainer, data::Dataset) {
    let mut ds = data::load(DatasetName::Digits, None, 8).unwrap();
    ds.train.truncate(768);
    let cfg = SupernetConfig {
        space,
        init_channels: 8,
        layers,
        num_classes: 10,
        in_channels: 1,
        input_size: 8,
    };
    let device = darts_pt::device::open(darts_pt::device::Backend::Cpu)
        .unwrap()
        .device
        .autodiff();
    let (net, _) = build_seeded(&cfg, 3, &device).unwrap();
    let alphas = Alphas::from_rows(&alpha[0], alpha.get(1).map(Vec::as_slice), &device).train();
    let mut t = Trainer::new(net, alphas, Method::Blank, false, Hyper::default());
    t.overrides = overrides;
    for epoch in 0..epochs {
        let mut rng = epoch_rng(1, epoch);
        block_on(train_epoch(
            &mut t,
            &ds,
            (768, 384, 32),
            Augment::NONE,
            0.05,
            0.0,
            &mut rng,
            &device,
            epoch,
            &darts_pt::rundir::MemoryRun::new(),
            &darts_pt::engine::Control::new(),
            &mut |_, _| {},
        ))
        .unwrap();
    }
    (t, ds)
}

#[test]
fn pt_keeps_the_op_that_matters_where_magnitude_keeps_the_one_alpha_favours() {
    // α favours `none` on every edge (softmax 0.83 vs 0.04 each): magnitude keeps `none`,
    // an op that contributes nothing to the output. PT must keep an op whose removal hurts.
    let row = vec![3.0, 0.0, 0.0, 0.0, 0.0];
    let alpha = vec![vec![row; 6]];
    let (t, ds) = trained(SpaceName::Nb201, 1, &alpha, vec![Overrides::none(6)], 4);
    let magnitude = derive_nb201(&tensor_rows(t.alphas.probs(CellType::Normal)));
    assert_eq!(magnitude.edges, [OpKind::None; 6], "magnitude keeps `none`");
    let space = SearchSpace::new(SpaceName::Nb201);
    let mut scorer = Scorer::new(
        &t.net,
        &t.alphas,
        &ds,
        (384..768).collect(),
        EvalMode::Deterministic,
        64,
        Augment::NONE,
        1,
    );
    let ovr = vec![Overrides::none(6)];
    for edge in [0, 5] {
        let (k, c) = block_on(op_decision(
            &mut scorer,
            &space,
            &ovr,
            CellType::Normal,
            edge,
            Criterion::Acc,
            7,
        ))
        .unwrap();
        eprintln!("edge {edge}: {c:?}");
        assert_ne!(space.normal[edge].ops[k], OpKind::None, "edge {edge}");
        // Removing `none` changes nothing; removing the kept op hurts.
        assert!(c[k].accuracy < c[0].accuracy, "edge {edge}: {c:?}");
        // Deterministic evaluation: scoring again gives the same numbers.
        let (k2, c2) = block_on(op_decision(
            &mut scorer,
            &space,
            &ovr,
            CellType::Normal,
            edge,
            Criterion::Acc,
            9,
        ))
        .unwrap();
        assert_eq!((k, &c), (k2, &c2));
    }
}

#[test]
fn pt_topology_keeps_the_two_inputs_that_carry_signal() {
    // DARTS 8-op space. Normal-cell node 1 has three inputs: edges 2 (from s0) and 3 (from s1)
    // are fixed to `sep_conv_3x3`; edge 4 (from node 0) is fixed to `none`. Every other edge of
    // the normal cell is `none`, so node 1 is the only node with a non-zero output and the cell's
    // whole signal passes through edges 2 and 3: removing either one must hurt, whatever the
    // rounding of training (a premise where a removed edge's information also reached the cell
    // output by another node did not hold for every summation order).
    let space = SearchSpace::new(SpaceName::Darts8);
    let one_hot = |op: OpKind| {
        let mut r = vec![0.0; 8];
        r[space.normal[0].ops.iter().position(|o| *o == op).unwrap()] = 1.0;
        Some(r)
    };
    let mut normal = Overrides::none(14);
    for (edge, row) in normal.rows.iter_mut().enumerate() {
        *row = one_hot(if edge == 2 || edge == 3 {
            OpKind::SepConv3x3
        } else {
            OpKind::None
        });
    }
    let overrides = vec![normal, Overrides::none(14)];
    let alpha = vec![vec![vec![0.0; 8]; 14]; 2];
    let (t, _) = trained(SpaceName::Darts8, 3, &alpha, overrides.clone(), 4);
    // Scored on every digit the weights were not trained on (the training split is 0..384):
    // on a 384-image split, one image's worth of top-1 accuracy (0.26 %) decided the
    // accuracy criterion's ranking, not the edge's signal.
    let ds = data::load(DatasetName::Digits, None, 8).unwrap();
    let valid: Vec<usize> = (384..ds.train.len()).collect();
    assert!(valid.len() > 1000, "{} digits", ds.train.len());
    // The unmasked supernet's score, the same for every criterion: computed once.
    let mut whole = None;
    for (crit, mode) in [
        (Criterion::Loss, TopologyMode::Reference),
        (Criterion::Loss, TopologyMode::Corrected),
        (Criterion::Acc, TopologyMode::Reference),
    ] {
        let mut scorer = Scorer::new(
            &t.net,
            &t.alphas,
            &ds,
            valid.clone(),
            EvalMode::Deterministic,
            64,
            Augment::NONE,
            1,
        );
        let (kept, c) = block_on(topology_decision(
            &mut scorer,
            &overrides,
            CellType::Normal,
            &[2, 3, 4],
            crit,
            mode,
            3,
        ))
        .unwrap();
        eprintln!("{crit} {mode}: {c:?}");
        assert_eq!(kept, vec![2, 3], "{crit} {mode}: {c:?}");
        assert_eq!(c.len(), 3);
        // Removing the `none` edge changes nothing: its score is the unmasked supernet's, to
        // the bit (deterministic evaluation; a zero weight skips the op).
        let whole = *whole.get_or_insert_with(|| {
            block_on(scorer.evaluate(&overrides, &Mask::default(), 0)).unwrap()
        });
        assert_eq!((c[2].accuracy, c[2].loss), (whole.accuracy, whole.loss));
        assert!(c[0].loss > whole.loss && c[1].loss > whole.loss, "{c:?}");
    }
}

fn tiny_run_args(out: &Path) -> Vec<String> {
    [
        "run",
        "--space",
        "nb201",
        "--dataset",
        "digits",
        "--digits-size",
        "8",
        "--init-channels",
        "4",
        "--layers",
        "1",
        "--limit-train",
        "512",
        "--batch-size",
        "32",
        "--epochs",
        "1",
        "--eval",
        "deterministic",
        "--proj-intv",
        "1",
        "--seed",
        "4",
        "--quiet",
        "--out",
    ]
    .iter()
    .map(|s| s.to_string())
    .chain([out.display().to_string()])
    .collect()
}

fn decisions_without_times(dir: &Path) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("pt").join("pt_scores.json")).unwrap(),
    )
    .unwrap();
    for d in v.as_array_mut().unwrap() {
        d.as_object_mut().unwrap().remove("seconds");
    }
    v
}

#[test]
fn killed_run_resumes_to_the_same_genotype() {
    let a = temp("whole");
    let out = Command::new(bin())
        .args(tiny_run_args(&a))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = std::fs::read_to_string(a.join("report.md")).unwrap();
    assert!(report.contains("NAS-Bench-201") && report.contains("PT decisions"));
    // The figures (issue 18): PNGs beside the report, embedded in it.
    for name in ["curves", "alpha", "pt_scores", "cells"] {
        let file = format!("figures/{name}.png");
        assert!(
            report.contains(&format!("]({file})")),
            "{name} not in report.md"
        );
        let img = image::open(a.join(&file)).unwrap();
        assert!(img.width() >= 400 && img.height() >= 100, "{file}");
    }
    // PT decision headers name edges as the field does.
    assert!(report.contains("edge 0 -> 1"), "{report}");
    // `darts-pt draw RUN_DIR`: both cells side by side (PNG), or the PT cell as DOT.
    let png = a.join("drawn.png");
    let out = Command::new(bin())
        .args([
            "draw",
            &a.display().to_string(),
            "--output",
            &png.display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(image::open(&png).unwrap().width() > 400);
    let out = Command::new(bin())
        .args(["draw", &a.display().to_string()])
        .output()
        .unwrap();
    let dot = String::from_utf8(out.stdout).unwrap();
    assert!(
        dot.starts_with("digraph genotype {") && dot.contains("->"),
        "{dot}"
    );
    let sel: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(a.join("selection.json")).unwrap()).unwrap();
    assert!(sel["nb201_pt"]["cifar10"].as_f64().unwrap() >= 10.0);
    // A finished run is never overwritten by a new one.
    let again = Command::new(bin())
        .args(tiny_run_args(&a))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        !again.status.success() && err.contains("already holds a run"),
        "{err}"
    );
    // Nor is a finished selection discarded without --force.
    let again = Command::new(bin())
        .args([
            "select",
            "--run",
            &a.display().to_string(),
            "--method",
            "pt",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && err.contains("--force"), "{err}");

    // The same run, killed (SIGKILL) once two decisions are on disk, then resumed.
    let b = temp("killed");
    let mut child = Command::new(bin())
        .args(tiny_run_args(&b))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    let mut killed = false;
    while t0.elapsed() < Duration::from_secs(600) {
        let n = std::fs::read_to_string(b.join("pt").join("pt_scores.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .map_or(0, |v| v.as_array().map_or(0, Vec::len));
        if n >= 2 {
            child.kill().unwrap();
            killed = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.wait();
    assert!(
        killed,
        "the run ended before it could be killed during selection"
    );
    assert!(!b.join("genotype_pt.txt").exists());
    let out = Command::new(bin())
        .args(["run", "--resume", &b.display().to_string(), "--quiet"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ga = std::fs::read_to_string(a.join("genotype_pt.txt")).unwrap();
    let gb = std::fs::read_to_string(b.join("genotype_pt.txt")).unwrap();
    assert_eq!(ga, gb);
    assert_eq!(decisions_without_times(&a), decisions_without_times(&b));
    let _ = std::fs::remove_dir_all(a);
    let _ = std::fs::remove_dir_all(b);
}

#[test]
fn select_needs_a_finished_search_and_valid_settings() {
    let d = temp("unfinished");
    std::fs::create_dir_all(&d).unwrap();
    let out = Command::new(bin())
        .args(["select", "--run", &d.display().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.toml"), "{err}");
    let out = Command::new(bin())
        .args(["select", "--run", ".", "--crit", "top5"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("acc, loss"), "{err}");
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn nb201_lookup_cli_and_table() {
    let run = |arch: &str| Command::new(bin()).args(["lookup", arch]).output().unwrap();
    let out = run(
        "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("CIFAR-10        54.30%"),
        "{text}"
    );
    let out = run(
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("94.37%  rank 1 of 15625"), "{text}");
    for bad in [
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|",
        "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|none~1|+|none~0|none~1|+|none~0|none~1|none~2|",
    ] {
        let out = run(bad);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains("malformed NAS-Bench-201"),
            "{bad}: {err}"
        );
    }
    // The embedded table is the shared CSV, cell for cell.
    let Some(dir) = shared_dir() else { return };
    let csv_path = dir.join("data").join("nb201_accuracy.csv");
    let Ok(csv) = std::fs::read_to_string(&csv_path) else {
        return;
    };
    let rebuilt =
        Table::from_gz(&darts_pt::nb201::table_from_csv(&csv, &csv_path).unwrap()).unwrap();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let arch: Nb201Arch = f[1].parse().unwrap();
        let (a, b) = (Table::embedded().lookup(&arch), rebuilt.lookup(&arch));
        assert_eq!(a, b);
        assert_eq!(a.cifar10, f[2].parse::<f64>().unwrap(), "{}", f[1]);
    }
}
