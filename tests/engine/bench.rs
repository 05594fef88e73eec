//! `darts-pt bench`: the library entry at a tiny size, its FLOP count against the reference's
//! architecture counted by hand, and the CLI's `--json` contract with `../shared/bench/`.

use std::process::Command;

use burn::tensor::Device;
use darts_pt::bench::{BenchConfig, BenchReport, Timing, run_bench};
use darts_pt::device::Backend;
use darts_pt::info::supernet_macs;
use darts_pt::space::SpaceName;
use darts_pt::supernet::{Supernet, SupernetConfig};
use serde_json::Value;

/// Multiply-adds per image of the reference's NAS-Bench-201 search network (`TinyNetworkDarts`,
/// C, N cells per stage, s×s inputs), every candidate op computed: stem conv 3×3 (3 → C); per
/// cell 6 edges of nor_conv_1x1 + nor_conv_3x3 (c² + 9c² per pixel; skip, pool, none: 0); per
/// ResNet block (c → 2c, stride 2) conv_a 3×3, conv_b 3×3 and the 1×1 shortcut at the halved
/// size; classifier 4C → 10.
fn nb201_reference_macs(c: usize, n: usize, s: usize) -> u64 {
    let mut total = 3 * c * 9 * s * s;
    let (mut ch, mut r) = (c, s);
    for stage in 0..3 {
        if stage > 0 {
            let co = 2 * ch;
            r /= 2;
            total += (ch * co * 9 + co * co * 9 + ch * co) * r * r;
            ch = co;
        }
        total += n * 6 * (ch * ch + 9 * ch * ch) * r * r;
    }
    (total + ch * 10) as u64
}

/// Multiply-adds per image of the reference's DARTS search network (`Network`, s5 = 7 ops, C,
/// `layers` cells, s×s inputs): stem 3×3 (3 → 3C); per cell preprocess0 (1×1 at s0's size, or a
/// FactorizedReduce after a reduction: two 1×1 stride-2 convs to c/2 at s1's size), preprocess1
/// (1×1), 14 edges of sep_conv_3x3/5x5 (two depthwise + pointwise blocks), dil_conv_3x3/5x5 (one),
/// pools 0, skip_connect 0 (identity) or c² (FactorizedReduce on the 8 stride-2 edges of a
/// reduction cell), at the cell's output size; classifier 4c → 10.
fn darts_reference_macs(c: usize, layers: usize, s: usize) -> u64 {
    let mut total = 3 * (3 * c) * 9 * s * s;
    let (mut c_pp, mut c_p, mut cc) = (3 * c, 3 * c, c);
    let (mut size, mut prev) = (s, s);
    let mut reduction_prev = false;
    for i in 0..layers {
        let reduction = i == layers / 3 || i == 2 * layers / 3;
        if reduction {
            cc *= 2;
        }
        let out = if reduction { size / 2 } else { size };
        total += if reduction_prev {
            c_pp * cc * size * size
        } else {
            c_pp * cc * prev * prev
        };
        total += c_p * cc * size * size;
        let dw_pw = |k: usize| k * k * cc + cc * cc;
        let per_edge = 2 * dw_pw(3) + 2 * dw_pw(5) + dw_pw(3) + dw_pw(5);
        let strided = if reduction { 8 } else { 0 };
        total += (14 * per_edge + strided * cc * cc) * out * out;
        reduction_prev = reduction;
        c_pp = c_p;
        c_p = 4 * cc;
        prev = size;
        size = out;
    }
    (total + c_p * 10) as u64
}

fn tiny(space: SpaceName, layers: usize) -> BenchConfig {
    BenchConfig {
        init_channels: 4,
        layers,
        batch_size: 4,
        input_size: 8,
        eval_batches: 2,
        warmup: 0,
        repeats: 1,
        ..BenchConfig::new(space)
    }
}

fn assert_timing(t: &Timing, repeats: usize, what: &str) {
    assert_eq!(t.n, repeats, "{what}: n");
    assert!(
        t.min.is_finite() && t.min > 0.0 && t.median >= t.min,
        "{what}: {t:?}"
    );
}

fn assert_report(r: &BenchReport, cfg: &BenchConfig) {
    assert_timing(&r.search_step_s, cfg.repeats, "search_step_s");
    assert_timing(&r.forward_s, cfg.repeats, "forward_s");
    assert_timing(&r.pt_candidate_s, cfg.repeats, "pt_candidate_s");
    let c = &r.config;
    assert_eq!(c.space, cfg.space.as_str());
    assert_eq!(
        (
            c.init_channels,
            c.layers,
            c.batch_size,
            c.input_size,
            c.eval_batches
        ),
        (
            cfg.init_channels,
            cfg.layers,
            cfg.batch_size,
            cfg.input_size,
            cfg.eval_batches
        )
    );
    assert!(r.threads >= 1);
}

#[test]
fn bench_tiny_nb201_and_darts() {
    let cfg = tiny(SpaceName::Nb201, 1);
    let r = run_bench(&cfg).unwrap();
    assert_report(&r, &cfg);
    assert_eq!(r.device, "cpu");
    assert!(r.check_vs_cpu_max_rel.is_none(), "no wgpu check on the CPU");
    // By hand, C=4, N=1, 8×8: stem 3·4·9·64 = 6,912; three cells of 60·c²·px = 61,440 each
    // (c=4 at 64 px, 8 at 16 px, 16 at 4 px); ResNet blocks (4·8·9 + 8·8·9 + 4·8)·16 = 14,336 and
    // (8·16·9 + 16·16·9 + 8·16)·4 = 14,336; classifier 16·10 = 160. Total 220,064 per image.
    assert_eq!(nb201_reference_macs(4, 1, 8), 220_064);
    let expected = 2.0 * 4.0 * 220_064.0 / 1e9;
    assert!(
        (r.gflop_forward - expected).abs() < 1e-12,
        "gflop_forward {} vs {expected}",
        r.gflop_forward
    );

    let cfg = tiny(SpaceName::Darts, 3);
    let r = run_bench(&cfg).unwrap();
    assert_report(&r, &cfg);
    let expected = 2.0 * 4.0 * darts_reference_macs(4, 3, 8) as f64 / 1e9;
    assert!(
        (r.gflop_forward - expected).abs() < 1e-12,
        "gflop_forward {} vs {expected}",
        r.gflop_forward
    );
}

#[test]
fn bench_on_wgpu_checks_its_logits_against_flex() {
    if let Err(e) = darts_pt::device::open(Backend::Wgpu) {
        eprintln!("skipping the wgpu bench: {e}");
        return;
    }
    let cfg = BenchConfig {
        backend: Backend::Wgpu,
        ..tiny(SpaceName::Nb201, 1)
    };
    let r = run_bench(&cfg).unwrap();
    assert_eq!(r.device, "wgpu");
    assert_timing(&r.forward_s, 1, "forward_s");
    let rel = r
        .check_vs_cpu_max_rel
        .expect("wgpu reports its check against flex");
    assert!(
        rel.is_finite() && rel < 1e-4,
        "wgpu vs flex logits: {rel:.2e}"
    );
}

#[test]
fn forward_macs_equal_the_reference_architecture_count() {
    // Shapes only: the supernets are built lazily, no weight is initialised.
    for (space, c, layers, s) in [
        (SpaceName::Nb201, 16, 5, 32),
        (SpaceName::Nb201, 8, 1, 32),
        (SpaceName::Nb201, 4, 2, 16),
        (SpaceName::Darts, 16, 8, 32),
        (SpaceName::Darts, 8, 5, 32),
        (SpaceName::Darts, 4, 3, 8),
    ] {
        let cfg = SupernetConfig {
            init_channels: c,
            layers,
            input_size: s,
            ..SupernetConfig::paper(space)
        };
        let net = Supernet::new(&cfg, &Device::flex()).unwrap();
        let expected = match space {
            SpaceName::Nb201 => nb201_reference_macs(c, layers, s),
            _ => darts_reference_macs(c, layers, s),
        };
        assert_eq!(
            supernet_macs(&net, s),
            expected,
            "{space} C={c} layers={layers} {s}px"
        );
    }
    // The paper's supernets, batch 64: 31.195 and 38.433 GFLOP per forward.
    assert_eq!(nb201_reference_macs(16, 5, 32), 243_712_640);
    assert_eq!(darts_reference_macs(16, 8, 32), 300_255_744);
}

#[test]
fn bad_bench_settings_name_the_field() {
    for (field, cfg) in [
        (
            "batch_size",
            BenchConfig {
                batch_size: 0,
                ..tiny(SpaceName::Nb201, 1)
            },
        ),
        (
            "repeats",
            BenchConfig {
                repeats: 0,
                ..tiny(SpaceName::Nb201, 1)
            },
        ),
        (
            "input_size",
            BenchConfig {
                input_size: 6,
                ..tiny(SpaceName::Nb201, 1)
            },
        ),
    ] {
        let e = run_bench(&cfg).unwrap_err().to_string();
        assert!(e.contains(field), "{field}: {e}");
    }
}

#[test]
fn bench_cli_json_is_one_object() {
    let out = Command::new(env!("CARGO_BIN_EXE_darts-pt"))
        .args([
            "bench",
            "--space",
            "nb201",
            "--init-channels",
            "4",
            "--layers",
            "1",
            "--batch-size",
            "4",
            "--input-size",
            "8",
            "--eval-batches",
            "2",
            "--warmup",
            "0",
            "--repeats",
            "2",
            "--kernels",
            "plain",
            "--json",
        ])
        .output()
        .expect("darts-pt runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "darts-pt bench failed: {stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    // The whole of stdout parses as one value: nothing else is printed there.
    let v: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    let obj = v.as_object().expect("a JSON object");
    for key in [
        "search_step_s",
        "forward_s",
        "pt_candidate_s",
        "config",
        "device",
        "threads",
        "kernels",
        "gflop_forward",
    ] {
        assert!(obj.contains_key(key), "missing {key}: {stdout}");
    }
    for key in ["search_step_s", "forward_s", "pt_candidate_s"] {
        let t = &v[key];
        assert_eq!(t["n"], 2, "{key}");
        assert!(t["min"].as_f64().unwrap() > 0.0, "{key}");
        assert!(t["median"].as_f64().unwrap() >= t["min"].as_f64().unwrap());
    }
    let config = v["config"].as_object().unwrap();
    let mut keys: Vec<&str> = config.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "batch_size",
            "eval_batches",
            "init_channels",
            "input_size",
            "layers",
            "space"
        ]
    );
    assert_eq!(v["config"]["space"], "nb201");
    assert_eq!(v["config"]["layers"], 1);
    assert_eq!(v["device"], "cpu");
    assert_eq!(v["kernels"], "plain");
    assert!((v["gflop_forward"].as_f64().unwrap() - 2.0 * 4.0 * 220_064.0 / 1e9).abs() < 1e-12);
    assert!(!obj.contains_key("check_vs_cpu_max_rel"));
}
