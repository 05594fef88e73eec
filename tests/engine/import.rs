//! Import of darts-pt checkpoints (`.pt` through Burn's PyTorch reader, safetensors), `score`,
//! and PT decisions on the reference fixtures.

use darts_pt::engine::block_on;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::Device;
use darts_pt::import::{load_reference_checkpoint, load_reference_safetensors, read_reference_pt};
use darts_pt::ops::BnMode;
use darts_pt::score::{BatchScorer, FixedBatch};
use darts_pt::select::{Criterion, Evaluate, Score, TopologyMode, op_decision, topology_decision};
use darts_pt::space::{CellType, SearchSpace, SpaceName};
use darts_pt::supernet::SupernetConfig;
use darts_pt::weights::{Mask, Overrides};
use serde_json::Value;

use crate::{fixture_json, matrix, shared_dir};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_darts-pt")
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("darts-pt-import-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn fixture(sub: &str) -> Option<(PathBuf, Value)> {
    let e = fixture_json(&format!("{sub}/expected.json"))?;
    Some((shared_dir()?.join("fixtures").join(sub), e))
}

/// Imports `supernet.pt` through the CLI into a run directory on the CIFAR-10 subset.
fn import_cli(sub: &str, space: &str, name: &str) -> PathBuf {
    let dir = shared_dir().unwrap();
    let out = temp(name);
    let o = Command::new(bin())
        .args([
            "import",
            "--from-darts-pt",
            &dir.join("fixtures")
                .join(sub)
                .join("supernet.pt")
                .display()
                .to_string(),
            "--space",
            space,
            "--dataset",
            "cifar10",
            "--data-dir",
            &dir.join("data/cifar10-subset").display().to_string(),
            "--out",
            &out.display().to_string(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

#[test]
fn pt_checkpoints_read_exactly_what_the_safetensors_hold() {
    for (sub, space) in [("nb201", SpaceName::Nb201), ("darts", SpaceName::Darts)] {
        let Some((dir, e)) = fixture(sub) else { return };
        let (pt, ck) =
            read_reference_pt(&dir.join("supernet.pt"), &SearchSpace::new(space)).unwrap();
        let bytes = std::fs::read(dir.join("supernet.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut compared = 0;
        for (name, view) in st.tensors() {
            if view.dtype() != safetensors::Dtype::F32 {
                continue;
            }
            let want: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let got = pt
                .get(&name)
                .unwrap_or_else(|| panic!("{sub}: `{name}` not read"));
            assert_eq!(got.shape, view.shape(), "{sub} {name}");
            assert_eq!(got.data, want, "{sub} {name}");
            compared += 1;
        }
        assert_eq!(compared, pt.len(), "{sub}: the same tensors");
        assert_eq!(ck.epoch, Some(1));
        assert_eq!(ck.adam.len(), if space == SpaceName::Nb201 { 1 } else { 2 });
        let steps = e["training"]["steps"].as_u64().unwrap();
        assert!(
            ck.adam.iter().all(|a| a.0 == steps),
            "{sub}: Adam step {:?}",
            ck.adam[0].0
        );

        // The CLI import gives a run whose magnitude genotype is the reference's text.
        let run = import_cli(sub, space.as_str(), sub);
        let g = std::fs::read_to_string(run.join("genotype_magnitude.txt")).unwrap();
        let want = match space {
            SpaceName::Nb201 => e["genotype"]["string"].as_str().unwrap(),
            _ => e["genotype"]["text"].as_str().unwrap(),
        };
        assert_eq!(g.trim(), want);
        if space == SpaceName::Nb201 {
            // PT runs on the imported run directory (decisions back to back, 16 images).
            let o = Command::new(bin())
                .args([
                    "select",
                    "--run",
                    &run.display().to_string(),
                    "--method",
                    "both",
                ])
                .args([
                    "--proj-intv",
                    "0",
                    "--eval",
                    "deterministic",
                    "--eval-limit",
                    "16",
                ])
                .args(["--quiet"])
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let pt = std::fs::read_to_string(run.join("genotype_pt.txt")).unwrap();
            assert!(
                pt.trim().parse::<darts_pt::genotype::Nb201Arch>().is_ok(),
                "{pt}"
            );
            let scores = std::fs::read_to_string(run.join("pt").join("pt_scores.json")).unwrap();
            let v: Value = serde_json::from_str(&scores).unwrap();
            assert_eq!(v.as_array().unwrap().len(), 6);
        }
        let _ = std::fs::remove_dir_all(run);
    }
}

#[test]
fn score_cli_reproduces_the_nb201_reference_on_its_batch() {
    let Some((dir, e)) = fixture("nb201") else {
        return;
    };
    let run = import_cli("nb201", "nb201", "nb201-score");
    let score = |bn: &str| -> Value {
        let o = Command::new(bin())
            .args([
                "score",
                "--run",
                &run.display().to_string(),
                "--batch",
                &dir.join("batch.safetensors").display().to_string(),
                "--bn",
                bn,
                "--json",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).unwrap()
    };
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-4 * b.abs().max(1.0);
    // Eval-mode BN through the library (the CLI run below covers train mode and every mask).
    let device = Device::flex();
    let (net, alphas, _) = load_reference_checkpoint(
        &dir.join("supernet.pt"),
        &SupernetConfig::paper(SpaceName::Nb201),
        &device,
    )
    .unwrap();
    let batch = FixedBatch::read(&dir.join("batch.safetensors")).unwrap();
    let (logits, s) = BatchScorer::new(&net, &alphas, &batch, BnMode::Eval)
        .run(&alphas.no_overrides(), &Mask::default());
    let eval = serde_json::json!({"logits": logits, "loss": s.loss, "accuracy": s.accuracy});
    for (bn, key) in [("eval", "eval_mode"), ("train", "train_mode")] {
        let r = if bn == "eval" {
            eval.clone()
        } else {
            score(bn)
        };
        let got = matrix(&r["logits"]);
        let want = matrix(&e[key]["logits"]);
        let worst = got
            .iter()
            .flatten()
            .zip(want.iter().flatten())
            .map(|(g, w)| ((g - w).abs() / w.abs().max(1.0)) as f64)
            .fold(0.0, f64::max);
        eprintln!("nb201 score --bn {bn}: max relative logit error {worst:.2e}");
        assert!(worst <= 1e-4, "{bn}: {worst}");
        assert!(close(
            r["loss"].as_f64().unwrap(),
            e[key]["loss"].as_f64().unwrap()
        ));
        assert_eq!(r["accuracy"].as_f64(), e[key]["acc"].as_f64());
        if bn == "train" {
            let ops = r["masked_ops"].as_array().unwrap();
            assert_eq!(ops.len(), 30);
            let mut matched = 0;
            for m in ops {
                let (edge, op) = (
                    m["edge"].as_u64().unwrap() as usize,
                    m["op"].as_str().unwrap(),
                );
                let k = e["op_names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .position(|n| n.as_str() == Some(op))
                    .unwrap();
                assert_eq!(m["cell"], "normal");
                let t = &e["masked_op_train_mode"];
                assert!(close(
                    m["loss"].as_f64().unwrap(),
                    t["loss"][edge][k].as_f64().unwrap()
                ));
                matched += (m["accuracy"].as_f64() == t["acc"][edge][k].as_f64()) as usize;
            }
            eprintln!("nb201 score: {matched}/30 masked-op accuracies equal the reference");
            assert_eq!(matched, 30);
            assert_eq!(r["masked_edges"].as_array().unwrap().len(), 6);
        }
    }
    let _ = std::fs::remove_dir_all(run);
}

/// Remembers evaluations: with one fixed batch, the reference topology loop's later rounds
/// repeat earlier masks.
struct Memo<'a> {
    inner: &'a mut BatchScorer,
    seen: HashMap<String, Score>,
    forwards: usize,
}

impl Evaluate for Memo<'_> {
    async fn evaluate(&mut self, o: &[Overrides], m: &Mask, salt: u64) -> darts_pt::Result<Score> {
        let key = format!("{o:?}{m:?}");
        if let Some(s) = self.seen.get(&key) {
            return Ok(*s);
        }
        self.forwards += 1;
        let s = self.inner.evaluate(o, m, salt).await?;
        self.seen.insert(key, s);
        Ok(s)
    }
}

fn op_index(v: &Value) -> usize {
    v["op"].as_u64().unwrap() as usize
}

#[test]
fn pt_decisions_on_the_fixture_batches_are_the_references() {
    let device = Device::flex();
    // NB201: edge 0 under both criteria.
    let Some((dir, e)) = fixture("nb201") else {
        return;
    };
    let cfg = SupernetConfig::paper(SpaceName::Nb201);
    let (net, alphas, _) =
        load_reference_checkpoint(&dir.join("supernet.pt"), &cfg, &device).unwrap();
    let batch = FixedBatch::read(&dir.join("batch.safetensors")).unwrap();
    let mut scorer = BatchScorer::new(&net, &alphas, &batch, BnMode::BatchStats);
    let space = SearchSpace::new(SpaceName::Nb201);
    let ovr = alphas.no_overrides();
    let p = &e["pt_first_decision"];
    let edge = p["edge"].as_u64().unwrap() as usize;
    for (crit, key) in [(Criterion::Acc, "crit_acc"), (Criterion::Loss, "crit_loss")] {
        let (k, _) = block_on(op_decision(
            &mut scorer,
            &space,
            &ovr,
            CellType::Normal,
            edge,
            crit,
            0,
        ))
        .unwrap();
        assert_eq!(k, op_index(&p[key]), "nb201 {crit}: {}", p[key]);
    }

    // DARTS: edge 0 of each cell type independently, the reference's sequential order (reduce
    // scored with normal's decision in place), and the topology of every node.
    let Some((dir, e)) = fixture("darts") else {
        return;
    };
    let cfg = SupernetConfig::paper(SpaceName::Darts);
    let (net, alphas) =
        load_reference_safetensors(&dir.join("supernet.safetensors"), &cfg, &device).unwrap();
    let batch = FixedBatch::read(&dir.join("batch.safetensors")).unwrap();
    let mut inner = BatchScorer::new(&net, &alphas, &batch, BnMode::BatchStats);
    let mut memo = Memo {
        inner: &mut inner,
        seen: HashMap::new(),
        forwards: 0,
    };
    let space = SearchSpace::new(SpaceName::Darts);
    let ovr = alphas.no_overrides();
    let p = &e["pt_first_decision"];
    let mut decided = 0;
    for cell in [CellType::Normal, CellType::Reduce] {
        for (crit, key) in [(Criterion::Acc, "acc"), (Criterion::Loss, "loss")] {
            let (k, _) = block_on(op_decision(&mut memo, &space, &ovr, cell, 0, crit, 0)).unwrap();
            assert_eq!(
                k,
                op_index(&p["independent"][cell.name()][key]),
                "darts {cell} {crit}"
            );
            decided += 1;
        }
    }
    for (crit, key) in [(Criterion::Acc, "acc"), (Criterion::Loss, "loss")] {
        let seq = &p["sequential_reference"][key];
        let (kn, _) = block_on(op_decision(
            &mut memo,
            &space,
            &ovr,
            CellType::Normal,
            0,
            crit,
            0,
        ))
        .unwrap();
        assert_eq!(kn, op_index(&seq["normal"]));
        let mut fixed = ovr.clone();
        let mut row = vec![0.0; 7];
        row[kn] = 1.0;
        fixed[0].rows[0] = Some(row);
        let (kr, c) = block_on(op_decision(
            &mut memo,
            &space,
            &fixed,
            CellType::Reduce,
            0,
            crit,
            0,
        ))
        .unwrap();
        let accs: Vec<f64> = c.iter().map(|c| c.accuracy).collect();
        let want: Vec<f64> = seq["reduce_scores_after_normal_fixed"]["acc"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap())
            .collect();
        assert_eq!(accs, want, "{crit}");
        assert_eq!(kr, op_index(&seq["reduce"]), "darts sequential {crit}");
        decided += 2;
    }
    let topo = &e["topology_decision_per_node"];
    for (crit, key) in [(Criterion::Acc, "acc"), (Criterion::Loss, "loss")] {
        for cell in [CellType::Normal, CellType::Reduce] {
            let nodes: BTreeMap<String, Value> =
                serde_json::from_value(topo[key][cell.name()].clone()).unwrap();
            for (nid, t) in nodes {
                let edges: Vec<usize> = serde_json::from_value(t["input_edges"].clone()).unwrap();
                let want: Vec<usize> = serde_json::from_value(t["kept_edges"].clone()).unwrap();
                let (kept, c) = block_on(topology_decision(
                    &mut memo,
                    &ovr,
                    cell,
                    &edges,
                    crit,
                    TopologyMode::Reference,
                    0,
                ))
                .unwrap();
                assert_eq!(c.len(), t["evaluations"].as_u64().unwrap() as usize);
                let mut kept_sorted = kept.clone();
                kept_sorted.sort_unstable();
                assert_eq!(kept_sorted, want, "darts {crit} {cell} node {nid}");
                decided += 1;
            }
        }
    }
    eprintln!(
        "{decided} PT decisions on the fixture batches equal the reference's ({} DARTS forward passes)",
        memo.forwards
    );
}

fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>, Vec<u8>)]) {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, s, b)| {
            (
                n.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .unwrap(),
            )
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn broken_checkpoints_give_clear_errors() {
    let Some((dir, _)) = fixture("nb201") else {
        return;
    };
    let device = Device::flex();
    let cfg = SupernetConfig::paper(SpaceName::Nb201);
    let bytes = std::fs::read(dir.join("supernet.safetensors")).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let all: Vec<(String, Vec<usize>, Vec<u8>)> = st
        .tensors()
        .into_iter()
        .filter(|(_, v)| v.dtype() == safetensors::Dtype::F32)
        .map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec()))
        .collect();
    let tmp = temp("broken");
    std::fs::create_dir_all(&tmp).unwrap();
    let err = |tensors: Vec<(String, Vec<usize>, Vec<u8>)>, name: &str| -> String {
        let p = tmp.join(name);
        write_safetensors(&p, &tensors);
        let e = load_reference_safetensors(&p, &cfg, &device)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(name), "the error names the file: {e}");
        e
    };
    let missing: Vec<_> = all
        .iter()
        .filter(|t| t.0 != "classifier.bias")
        .cloned()
        .collect();
    let e = err(missing, "missing.safetensors");
    assert!(e.contains("missing tensor `classifier.bias`"), "{e}");
    let mut extra = all.clone();
    extra.push(("cells.99.extra.weight".into(), vec![2], vec![0; 8]));
    let e = err(extra, "extra.safetensors");
    assert!(
        e.contains("unexpected") && e.contains("cells.99.extra.weight"),
        "{e}"
    );
    let mut shaped = all.clone();
    let i = shaped.iter().position(|t| t.0 == "stem.0.weight").unwrap();
    let n = shaped[i].2.len() / 4;
    shaped[i].1 = vec![n];
    let e = err(shaped, "shape.safetensors");
    assert!(e.contains("`stem.0.weight` has shape"), "{e}");

    // Truncated files.
    let pt = std::fs::read(dir.join("supernet.pt")).unwrap();
    let cut = tmp.join("truncated.pt");
    std::fs::write(&cut, &pt[..pt.len() / 2]).unwrap();
    let e = load_reference_checkpoint(&cut, &cfg, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("truncated.pt"), "{e}");
    let cut = tmp.join("truncated.safetensors");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let e = load_reference_checkpoint(&cut, &cfg, &device)
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("truncated.safetensors") && e.contains("safetensors"),
        "{e}"
    );
    // The wrong space for the checkpoint.
    let e = load_reference_checkpoint(
        &dir.join("supernet.pt"),
        &SupernetConfig::paper(SpaceName::Darts),
        &device,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(e.contains("missing") && e.contains("unexpected"), "{e}");
    let _ = std::fs::remove_dir_all(tmp);
}

#[test]
fn imported_supernets_on_wgpu_match_the_reference_within_1e_3() {
    for (sub, space) in [("nb201", SpaceName::Nb201), ("darts", SpaceName::Darts)] {
        wgpu_fixture(sub, space);
    }
}

fn wgpu_fixture(sub: &str, space: SpaceName) {
    let Some((dir, e)) = fixture(sub) else {
        return;
    };
    let dev = match darts_pt::device::open(darts_pt::device::Backend::Wgpu) {
        Ok(d) => d,
        Err(err) => {
            eprintln!("skipping: no wgpu adapter ({err})");
            return;
        }
    };
    let t0 = std::time::Instant::now();
    let (net, alphas, _) = load_reference_checkpoint(
        &dir.join("supernet.pt"),
        &SupernetConfig::paper(space),
        &dev.device,
    )
    .unwrap();
    let batch = FixedBatch::read(&dir.join("batch.safetensors")).unwrap();
    for (bn, key) in [
        (BnMode::Eval, "eval_mode"),
        (BnMode::BatchStats, "train_mode"),
    ] {
        let (logits, s) = BatchScorer::new(&net, &alphas, &batch, bn)
            .run(&alphas.no_overrides(), &Mask::default());
        let want = matrix(&e[key]["logits"]);
        let worst = logits
            .iter()
            .flatten()
            .zip(want.iter().flatten())
            .map(|(g, w)| ((g - w).abs() / w.abs().max(1.0)) as f64)
            .fold(0.0, f64::max);
        eprintln!(
            "{sub} on {}: {key} max relative logit error {worst:.2e}, accuracy {}",
            dev.description, s.accuracy
        );
        assert!(worst <= 1e-3, "{key}: {worst}");
    }
    eprintln!("{sub} wgpu check took {:.1} s", t0.elapsed().as_secs_f64());
}
