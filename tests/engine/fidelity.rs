//! Our supernets against the reference's own numbers: the darts-pt fixtures' weights loaded into
//! our modules must give the reference's logits, losses and accuracies on the fixture batch.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use darts_pt::import::load_reference_safetensors;
use darts_pt::ops::BnMode;
use darts_pt::space::{CellType, SearchSpace, SpaceName};
use darts_pt::supernet::{Alphas, Supernet, SupernetConfig};
use darts_pt::weights::{Mask, Overrides};
use safetensors::SafeTensors;
use serde_json::Value;

use crate::{fixture_json, matrix, shared_dir};

struct Fixture {
    net: Supernet,
    alphas: Alphas,
    x: Tensor<4>,
    y: Vec<i64>,
    expected: Value,
    space: SpaceName,
}

fn load(sub: &str, space: SpaceName, device: &Device) -> Option<Fixture> {
    let expected = fixture_json(&format!("{sub}/expected.json"))?;
    let dir = shared_dir()?.join("fixtures").join(sub);
    let cfg = SupernetConfig::paper(space);
    let (net, alphas) = load_reference_safetensors(&dir.join("supernet.safetensors"), &cfg, device)
        .unwrap_or_else(|e| panic!("{sub}: {e}"));
    let bytes = std::fs::read(dir.join("batch.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let xv = st.tensor("x").unwrap();
    let x: Vec<f32> = xv
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let x = Tensor::<4>::from_data(TensorData::new(x, xv.shape().to_vec()), device);
    let y: Vec<i64> = st
        .tensor("y")
        .unwrap()
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    Some(Fixture {
        net,
        alphas,
        x,
        y,
        expected,
        space,
    })
}

/// (logits, mean CE loss, top-1 accuracy in percent).
fn evaluate(f: &Fixture, mask: &Mask, bn: BnMode) -> (Vec<Vec<f32>>, f64, f64) {
    let space = SearchSpace::new(f.space);
    let ovr: Vec<Overrides> = [CellType::Normal, CellType::Reduce]
        .iter()
        .map(|&c| Overrides::none(space.edges(c).len()))
        .collect();
    let logits = f
        .net
        .forward(f.x.clone(), &f.alphas.mix_weights(&ovr, mask, true), bn);
    let device = logits.device();
    let y = Tensor::<1, Int>::from_data(TensorData::new(f.y.clone(), [f.y.len()]), &device);
    let loss = CrossEntropyLossConfig::new()
        .init(&device)
        .forward(logits.clone(), y)
        .into_scalar::<f32>() as f64;
    let rows = darts_pt::supernet::tensor_rows(logits);
    let correct = rows
        .iter()
        .zip(&f.y)
        .filter(|(r, y)| {
            let best = r
                .iter()
                .enumerate()
                .fold(0, |b, (i, v)| if *v > r[b] { i } else { b });
            best as i64 == **y
        })
        .count();
    (rows, loss, 100.0 * correct as f64 / f.y.len() as f64)
}

fn assert_logits(got: &[Vec<f32>], want: &Value, what: &str) -> f64 {
    let want = matrix(want);
    let mut worst = 0f64;
    for (g, w) in got.iter().flatten().zip(want.iter().flatten()) {
        let err = (g - w).abs() as f64 / (w.abs() as f64).max(1.0);
        worst = worst.max(err);
    }
    assert!(
        worst <= 1e-4,
        "{what}: logits differ from the reference by {worst:.2e} (relative)"
    );
    worst
}

fn check_score(
    loss: f64,
    acc: f64,
    want_loss: &Value,
    want_acc: &Value,
    margin: &Value,
    what: &str,
) -> bool {
    let wl = want_loss.as_f64().unwrap();
    assert!(
        (loss - wl).abs() <= 1e-4 * wl.abs().max(1.0),
        "{what}: loss {loss} vs reference {wl}"
    );
    let wa = want_acc.as_f64().unwrap();
    if margin.as_f64().unwrap_or(1.0) > 1e-3 {
        assert!(
            (acc - wa).abs() < 1e-6,
            "{what}: accuracy {acc} vs reference {wa}"
        );
        true
    } else {
        (acc - wa).abs() < 1e-6
    }
}

/// `ops(cell, edge)`: the ops whose masked evaluation is checked on that edge.
fn run(
    sub: &str,
    space: SpaceName,
    cells: &[CellType],
    ops: impl Fn(CellType, usize) -> Vec<usize>,
) {
    let device = Device::flex();
    let Some(f) = load(sub, space, &device) else {
        return;
    };
    let e = &f.expected;
    let (l, loss, acc) = evaluate(&f, &Mask::default(), BnMode::Eval);
    let err_eval = assert_logits(&l, &e["eval_mode"]["logits"], "eval-mode BN");
    check_score(
        loss,
        acc,
        &e["eval_mode"]["loss"],
        &e["eval_mode"]["acc"],
        &e["eval_mode"]["min_top1_margin"],
        "eval",
    );
    let (l, loss, acc) = evaluate(&f, &Mask::default(), BnMode::BatchStats);
    let err_train = assert_logits(&l, &e["train_mode"]["logits"], "train-mode BN");
    check_score(
        loss,
        acc,
        &e["train_mode"]["loss"],
        &e["train_mode"]["acc"],
        &e["train_mode"]["min_top1_margin"],
        "train",
    );
    eprintln!(
        "{sub}: max relative logit error eval-mode {err_eval:.2e}, train-mode {err_train:.2e}"
    );

    let (mut matched, mut total) = (0, 0);
    for &cell in cells {
        let table = if cells.len() == 1 {
            &e["masked_op_train_mode"]
        } else {
            &e["masked_op_train_mode"][cell.name()]
        };
        let edges = table["loss"].as_array().unwrap().len();
        for edge in 0..edges {
            for k in ops(cell, edge) {
                let (_, loss, acc) = evaluate(&f, &Mask::op(cell, edge, k), BnMode::BatchStats);
                let what = format!("{sub} {cell} edge {edge} op {k} masked");
                matched += check_score(
                    loss,
                    acc,
                    &table["loss"][edge][k],
                    &table["acc"][edge][k],
                    &table["min_top1_margin"][edge][k],
                    &what,
                ) as usize;
                total += 1;
            }
        }
        if cells.len() == 2 {
            let t = &e["masked_edge_train_mode"][cell.name()];
            for edge in 0..14 {
                let (_, loss, acc) = evaluate(&f, &Mask::edge(cell, edge), BnMode::BatchStats);
                let what = format!("{sub} {cell} edge {edge} removed");
                matched += check_score(
                    loss,
                    acc,
                    &t["loss"][edge],
                    &t["acc"][edge],
                    &t["min_top1_margin"][edge],
                    &what,
                ) as usize;
                total += 1;
            }
        }
    }
    eprintln!(
        "{sub}: {matched}/{total} masked evaluations match the reference exactly in accuracy (all within 1e-4 in loss)"
    );
}

#[test]
fn nb201_reference_fixture_matches() {
    run("nb201", SpaceName::Nb201, &[CellType::Normal], |_, _| {
        (0..5).collect()
    });
}

#[test]
fn darts_reference_fixture_matches() {
    // All 7 ops of all 14 edges of both cell types plus every whole-edge mask: 224 passes of the
    // full-size supernet (a few minutes on 2 cores). `DARTS_PT_QUICK_FIDELITY` checks one op per
    // edge instead, rotating so that each of the 7 ops is checked on two edges of each cell type
    // (28 op masks, plus every whole-edge mask).
    let quick = std::env::var_os("DARTS_PT_QUICK_FIDELITY").is_some();
    run(
        "darts",
        SpaceName::Darts,
        &[CellType::Normal, CellType::Reduce],
        move |cell, edge| {
            if quick {
                let shift = if cell == CellType::Reduce { 3 } else { 0 };
                vec![(edge + shift) % 7]
            } else {
                (0..7).collect()
            }
        },
    );
}
