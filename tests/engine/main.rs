//! Engine-core tests: parameter counts against the reference, mixed-op semantics, masks, genotypes
//! from the reference fixtures, shapes, and flex-vs-wgpu agreement.
//!
//! Fixtures are read from `../shared/fixtures` (or `$DARTS_PT_SHARED/fixtures`); tests that need
//! them print a message and return when they are absent.

use std::path::PathBuf;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Distribution, Int, Tensor, TensorData};
use darts_pt::genotype::{DartsGenotype, Nb201Arch, derive_darts, derive_nb201};
use darts_pt::info::supernet_info;
use darts_pt::ops::BnMode;
use darts_pt::space::{CellType, SearchSpace, SpaceName};
use darts_pt::supernet::{
    Alphas, SupernetConfig, build_seeded, softmax_weights, tensor_rows, weighted_sum,
};
use darts_pt::weights::{CellWeights, Mask, Overrides};
use serde_json::Value;

pub(crate) fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("DARTS_PT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"));
    dir.join("fixtures").is_dir().then_some(dir)
}

pub(crate) fn fixture_json(rel: &str) -> Option<Value> {
    let Some(dir) = shared_dir() else {
        eprintln!("skipping: shared fixtures not found (set DARTS_PT_SHARED)");
        return None;
    };
    let text = std::fs::read_to_string(dir.join("fixtures").join(rel)).expect("fixture readable");
    Some(serde_json::from_str(&text).expect("fixture is JSON"))
}

pub(crate) fn matrix(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

/// Reference counts (darts-pt / quark0 at C=16, 8 cells or N=5, 10 classes; fixtures/params.json).
const REFERENCE_COUNTS: [(SpaceName, usize, usize); 7] = [
    (SpaceName::Nb201, 1_686_106, 30),
    (SpaceName::Darts, 1_930_618, 196),
    (SpaceName::Darts8, 1_930_618, 224),
    (SpaceName::S1, 405_146, 56),
    (SpaceName::S2, 665_466, 56),
    (SpaceName::S3, 665_466, 84),
    (SpaceName::S4, 624_506, 56),
];

#[test]
fn parameter_counts_match_reference() {
    for (space, params, alpha) in REFERENCE_COUNTS {
        let info = supernet_info(&SupernetConfig::paper(space)).unwrap();
        assert_eq!(info.params, params, "{space}: network weights");
        assert_eq!(info.alpha_elements, alpha, "{space}: alpha elements");
    }
}

#[test]
fn parameter_counts_alpha_shapes_and_ops_match_params_json() {
    let Some(p) = fixture_json("params.json") else {
        return;
    };
    let nets = p["search_supernets"].as_object().unwrap();
    let mut checked = 0;
    for (key, net) in nets {
        let space = match key.as_str() {
            "nb201" => SpaceName::Nb201,
            "darts_s5_7op" => SpaceName::Darts,
            "darts_s1" => SpaceName::S1,
            "darts_s2" => SpaceName::S2,
            "darts_s3" => SpaceName::S3,
            "darts_s4" => SpaceName::S4,
            k if k.starts_with("darts_8op") => SpaceName::Darts8,
            other => panic!("unexpected supernet {other} in params.json"),
        };
        let info = supernet_info(&SupernetConfig::paper(space)).unwrap();
        assert_eq!(
            info.params as u64,
            net["params_total"].as_u64().unwrap(),
            "{key}"
        );
        assert_eq!(
            info.alpha_elements as u64,
            net["alpha_elements"].as_u64().unwrap(),
            "{key}"
        );
        let shapes: Vec<[usize; 2]> = serde_json::from_value(net["alpha_shapes"].clone()).unwrap();
        assert_eq!(info.alpha_shapes, shapes, "{key}");
        assert_eq!(
            serde_json::to_value(&info.op_names).unwrap(),
            net["op_names"],
            "{key}: op names"
        );
        checked += 1;
    }
    assert_eq!(checked, 8);
}

#[test]
fn mixed_op_weights_and_alpha_gradients() {
    let device = Device::flex().autodiff();
    let alpha = Tensor::<2>::from_data(TensorData::new(vec![0.0f32, 3f32.ln()], [1, 2]), &device)
        .require_grad();
    let probs = burn::tensor::activation::softmax(alpha.clone(), 1);
    let w = CellWeights::build(
        probs,
        &Overrides::none(1),
        &Mask::default(),
        CellType::Normal,
    );
    let x = Tensor::<4>::random([2, 3, 4, 4], Distribution::Default, &device);
    let out = weighted_sum(&w.scalars[0], |k| {
        Some(x.clone().mul_scalar((k + 1) as f32))
    })
    .unwrap();
    let expected = x.clone().mul_scalar(1.75);
    let diff = (out.clone() - expected).abs().max().into_scalar::<f32>();
    assert!(diff < 1e-6, "1.75·x expected, max diff {diff}");
    let grads = out.sum().backward();
    let g: Vec<f32> = alpha
        .grad(&grads)
        .unwrap()
        .into_data()
        .convert::<f32>()
        .try_into_vec()
        .unwrap();
    assert!(g[0].abs() > 1e-3, "α gets a gradient: {g:?}");
    assert!(
        (g[0] + g[1]).abs() < 1e-4 * g[0].abs().max(1.0),
        "α gradients of an edge sum to zero: {g:?}"
    );
}

#[test]
fn masking_removes_exactly_one_term_without_renormalising() {
    let device = Device::flex();
    let probs = Tensor::<2>::from_data(
        TensorData::new(vec![0.1f32, 0.2, 0.3, 0.4, 0.25, 0.25, 0.25, 0.25], [2, 4]),
        &device,
    );
    let x = Tensor::<4>::random([1, 2, 3, 3], Distribution::Default, &device);
    let op = |k: usize| Some(x.clone().mul_scalar((k * k + 1) as f32));
    let full = CellWeights::build(
        probs.clone(),
        &Overrides::none(2),
        &Mask::default(),
        CellType::Normal,
    );
    let masked = CellWeights::build(
        probs.clone(),
        &Overrides::none(2),
        &Mask::op(CellType::Normal, 0, 2),
        CellType::Normal,
    );
    // The other cell type's mask does not apply here.
    let other = CellWeights::build(
        probs.clone(),
        &Overrides::none(2),
        &Mask::op(CellType::Reduce, 0, 2),
        CellType::Normal,
    );
    assert_eq!(other.active_terms(), 8);
    assert!(masked.scalars[0][2].is_none());
    assert_eq!(masked.active_terms(), 7);
    let rows = tensor_rows(masked.matrix.clone());
    assert_eq!(rows[0], vec![0.1, 0.2, 0.0, 0.4], "no renormalisation");
    assert_eq!(rows[1], vec![0.25; 4], "other edges untouched");
    let a = weighted_sum(&full.scalars[0], op).unwrap();
    let b = weighted_sum(&masked.scalars[0], op).unwrap();
    let removed = x.clone().mul_scalar(0.3 * 5.0);
    let diff = (a - b - removed).abs().max().into_scalar::<f32>();
    assert!(
        diff < 1e-5,
        "masking op 2 removes exactly its term (diff {diff})"
    );
    // Masking every op of an edge, or the whole edge, leaves nothing to compute.
    let all_ops = Mask {
        ops: (0..4).map(|k| (CellType::Normal, 1, k)).collect(),
        edges: vec![],
    };
    let w = CellWeights::build(
        probs.clone(),
        &Overrides::none(2),
        &all_ops,
        CellType::Normal,
    );
    assert!(weighted_sum(&w.scalars[1], op).is_none());
    let w = CellWeights::build(
        probs.clone(),
        &Overrides::none(2),
        &Mask::edge(CellType::Normal, 1),
        CellType::Normal,
    );
    assert!(weighted_sum(&w.scalars[1], op).is_none());
    // A decided row is used as given, and its zero entries are not computed.
    let decided = Overrides {
        rows: vec![Some(vec![0.0, 0.0, 0.0, 1.0]), None],
    };
    let w = CellWeights::build(probs, &decided, &Mask::default(), CellType::Normal);
    assert_eq!(w.scalars[0].iter().filter(|s| s.is_some()).count(), 1);
    assert_eq!(tensor_rows(w.matrix)[0], vec![0.0, 0.0, 0.0, 1.0]);
}

fn tiny(space: SpaceName, in_channels: usize, input_size: usize) -> SupernetConfig {
    SupernetConfig {
        space,
        init_channels: 4,
        layers: if space == SpaceName::Nb201 { 1 } else { 3 },
        num_classes: 10,
        in_channels,
        input_size,
    }
}

#[test]
fn masking_all_ops_of_an_edge_equals_masking_the_edge_in_a_supernet() {
    let device = Device::flex();
    for space in [SpaceName::Darts, SpaceName::Nb201] {
        let cfg = tiny(space, 3, 8);
        let (net, alphas) = build_seeded(&cfg, 7, &device).unwrap();
        let x = Tensor::<4>::random([4, 3, 8, 8], Distribution::Default, &device);
        let ovr = vec![
            Overrides::none(cfg_edges(space)),
            Overrides::none(cfg_edges(space)),
        ];
        let k = SearchSpace::new(space).ops_per_edge(CellType::Normal);
        let ops_mask = Mask {
            ops: (0..k).map(|o| (CellType::Normal, 2, o)).collect(),
            edges: vec![],
        };
        let a = net.forward(
            x.clone(),
            &alphas.mix_weights(&ovr, &ops_mask, true),
            BnMode::BatchStats,
        );
        let b = net.forward(
            x.clone(),
            &alphas.mix_weights(&ovr, &Mask::edge(CellType::Normal, 2), true),
            BnMode::BatchStats,
        );
        let c = net.forward(
            x.clone(),
            &alphas.mix_weights(&ovr, &Mask::default(), true),
            BnMode::BatchStats,
        );
        let ab = (a.clone() - b).abs().max().into_scalar::<f32>();
        let ac = (a - c).abs().max().into_scalar::<f32>();
        assert!(ab < 1e-6, "{space}: all-ops mask == edge mask ({ab})");
        assert!(ac > 1e-6, "{space}: masking an edge changes the logits");
    }
}

fn cfg_edges(space: SpaceName) -> usize {
    SearchSpace::new(space).edges(CellType::Normal).len()
}

#[test]
fn logits_shapes_rgb32_and_grey28() {
    let device = Device::flex();
    for space in [SpaceName::Darts, SpaceName::Nb201, SpaceName::S4] {
        for (ch, size) in [(3, 32), (1, 28)] {
            let cfg = tiny(space, ch, size);
            let (net, alphas) = build_seeded(&cfg, 1, &device).unwrap();
            let x = Tensor::<4>::random([3, ch, size, size], Distribution::Default, &device);
            for bn in [BnMode::Train, BnMode::BatchStats, BnMode::Eval] {
                let logits = net.forward(x.clone(), &softmax_weights(&alphas, true), bn);
                assert_eq!(logits.dims(), [3, 10], "{space} {ch}x{size}x{size}");
            }
        }
    }
}

#[test]
fn bad_supernet_configs_are_errors() {
    let mut cfg = SupernetConfig::paper(SpaceName::Darts);
    cfg.input_size = 30;
    let e = build_seeded(&cfg, 0, &Device::flex())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("input_size") && e.contains("multiple of 4"),
        "{e}"
    );
    cfg.input_size = 32;
    cfg.init_channels = 5;
    assert!(
        build_seeded(&cfg, 0, &Device::flex())
            .err()
            .unwrap()
            .to_string()
            .contains("init_channels")
    );
}

#[test]
fn genotypes_from_fixtures_round_trip() {
    let Some(p) = fixture_json("params.json") else {
        return;
    };
    let mut n = 0;
    for (name, net) in p["eval_networks"]["networks"].as_object().unwrap() {
        let text = net["genotype_text"].as_str().unwrap();
        let g: DartsGenotype = text.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(g.to_string(), text, "{name} prints back identically");
        assert_eq!(g.to_string().parse::<DartsGenotype>().unwrap(), g);
        let structured = &net["genotype"]["normal"];
        let first = &structured[0];
        assert_eq!(g.normal[0].0.name(), first[0].as_str().unwrap(), "{name}");
        n += 1;
    }
    assert!(n >= 2);
    for (name, net) in p["nb201_discrete_networks"]["networks"]
        .as_object()
        .unwrap()
    {
        let s = net["arch_string"].as_str().unwrap();
        let a: Nb201Arch = s.parse().unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(a.to_string(), s);
    }
}

#[test]
fn magnitude_genotypes_equal_reference_text() {
    let Some(d) = fixture_json("darts/expected.json") else {
        return;
    };
    let space = SearchSpace::new(SpaceName::Darts);
    let w = &d["softmax_alpha"];
    let (normal, reduce) = if w.is_object() {
        (matrix(&w["normal"]), matrix(&w["reduce"]))
    } else {
        panic!("softmax_alpha layout")
    };
    let g = derive_darts(&space, &normal, &reduce);
    assert_eq!(g.to_string(), d["genotype"]["text"].as_str().unwrap());
    // The same from α logits through our softmax.
    let a = &d["alpha"];
    let alphas = Alphas::from_rows(
        &matrix(&a["normal"]),
        Some(&matrix(&a["reduce"])),
        &Device::flex(),
    );
    let g2 = derive_darts(
        &space,
        &tensor_rows(alphas.probs(CellType::Normal)),
        &tensor_rows(alphas.probs(CellType::Reduce)),
    );
    assert_eq!(g2, g);
    for (ours, theirs) in tensor_rows(alphas.probs(CellType::Normal))
        .iter()
        .flatten()
        .zip(normal.iter().flatten())
    {
        assert!(
            (ours - theirs).abs() < 1e-7,
            "softmax(α) {ours} vs {theirs}"
        );
    }

    let Some(n) = fixture_json("nb201/expected.json") else {
        return;
    };
    let arch = derive_nb201(&matrix(&n["softmax_alpha"]));
    assert_eq!(arch.to_string(), n["genotype"]["string"].as_str().unwrap());
}

/// Relative agreement `max|a − b| / max(max|b|, tiny)`.
fn rel_err(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

fn forward_and_alpha_grads(space: SpaceName, device: &Device) -> (Vec<f32>, Vec<f32>) {
    let cfg = tiny(space, 3, 8);
    let ad = device.clone().autodiff();
    let (net, alphas) = build_seeded(&cfg, 3, &ad).unwrap();
    let net = net.train();
    let alphas = alphas.train();
    let cpu = Device::flex();
    cpu.seed(11);
    let x = Tensor::<4>::random([4, 3, 8, 8], Distribution::Default, &cpu).into_data();
    let x = Tensor::<4>::from_data(x, &ad);
    let y = Tensor::<1, Int>::from_data(TensorData::new(vec![1i64, 3, 5, 7], [4]), &ad);
    let ovr = vec![
        Overrides::none(cfg_edges(space)),
        Overrides::none(cfg_edges(space)),
    ];
    let logits = net.forward(
        x,
        &alphas.mix_weights(&ovr, &Mask::default(), false),
        BnMode::Train,
    );
    let loss = CrossEntropyLossConfig::new()
        .init(&ad)
        .forward(logits.clone(), y);
    let grads = loss.backward();
    let mut g: Vec<f32> = Vec::new();
    for cell in alphas.cell_types() {
        let p = match cell {
            CellType::Normal => &alphas.normal,
            CellType::Reduce => alphas.reduce.as_ref().unwrap(),
        };
        let grad = p.val().grad(&grads).expect("α has a gradient");
        g.extend(
            grad.into_data()
                .convert::<f32>()
                .try_into_vec::<f32>()
                .unwrap(),
        );
    }
    let l: Vec<f32> = logits.into_data().convert::<f32>().try_into_vec().unwrap();
    (l, g)
}

#[test]
fn flex_and_wgpu_agree_on_logits_and_alpha_gradients() {
    let wgpu = match darts_pt::device::open(darts_pt::device::Backend::Wgpu) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skipping flex-vs-wgpu agreement: {e}");
            return;
        }
    };
    eprintln!("wgpu adapter: {}", wgpu.description);
    for space in [SpaceName::Darts, SpaceName::Nb201] {
        let (l_cpu, g_cpu) = forward_and_alpha_grads(space, &Device::flex());
        let (l_gpu, g_gpu) = forward_and_alpha_grads(space, &wgpu.device);
        let (el, eg) = (rel_err(&l_gpu, &l_cpu), rel_err(&g_gpu, &g_cpu));
        eprintln!("{space}: flex vs wgpu relative error: logits {el:.2e}, α gradients {eg:.2e}");
        assert!(el < 1e-4, "{space}: logits differ by {el:.2e}");
        assert!(eg < 1e-4, "{space}: α gradients differ by {eg:.2e}");
        assert!(g_cpu.iter().any(|v| v.abs() > 0.0));
    }
}

mod bench;
mod datasets;
mod devices;
mod draw;
mod fidelity;
mod fuzz;
#[cfg(feature = "gui")]
mod gui;
mod hardening;
mod import;
mod job;
mod kernels;
mod network;
mod search;
mod select;
mod train;
