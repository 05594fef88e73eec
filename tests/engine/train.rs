//! Training an evaluation network from scratch: accuracy above chance on CIFAR-10, checkpoints
//! that rebuild the same network, resume, and the CLI's errors.

use std::path::PathBuf;
use std::process::Command;

use burn::tensor::Device;
use darts_pt::data::{self, Augment, DatasetName};
use darts_pt::network::{Architecture, Pass};
use darts_pt::search::epoch_rng;
use darts_pt::train::{self, TrainEvent, TrainSettings, evaluate, load_trained};

use crate::shared_dir;

const GENOTYPE: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("darts-pt-train-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_darts-pt")
}

/// A DARTS_V2 network with C=4, 3 cells and the auxiliary head on 32×32 digits.
fn tiny_digits() -> TrainSettings {
    let arch: Architecture = GENOTYPE.parse().unwrap();
    let mut s = TrainSettings::reference(&arch, DatasetName::Digits);
    s.init_channels = 4;
    s.layers = 3;
    s.digits_size = 32;
    s.epochs = 3;
    s.batch_size = 32;
    s.limit_train = Some(96);
    s.limit_test = Some(64);
    s
}

#[test]
fn tiny_train_on_cifar10_beats_chance() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipping: shared data not found");
        return;
    };
    let arch: Architecture = GENOTYPE.parse().unwrap();
    let mut s = TrainSettings::reference(&arch, DatasetName::Cifar10);
    s.data_dir = Some(shared.join("data/cifar10-subset"));
    s.init_channels = 8;
    s.layers = 3;
    s.auxiliary = false;
    s.epochs = 2;
    s.batch_size = 64;
    s.limit_train = Some(2000);
    let dir = temp("cifar");
    let out = train::train(&s, &dir, false, &mut |_| true).unwrap();
    let r = out.result.expect("finished");
    eprintln!(
        "tiny CIFAR-10 train: test accuracy {:.2}% after {} epochs ({:.1} s per epoch)",
        r.final_test_acc, r.epochs, r.seconds_per_epoch
    );
    assert_eq!(r.test_images, 932);
    assert!(
        r.final_test_acc > 15.0,
        "test accuracy {:.2}%",
        r.final_test_acc
    );
    assert_eq!(out.metrics.len(), 2);
    assert!(out.metrics[1].drop_path_prob > 0.0 && out.metrics[0].drop_path_prob == 0.0);
    assert!(out.metrics[1].lr < out.metrics[0].lr);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn checkpoint_rebuilds_identical_logits_and_resume_matches() {
    let s = tiny_digits();
    let whole = temp("whole");
    let full = train::train(&s, &whole, false, &mut |_| true).unwrap();
    // Save → rebuild from the recorded genotype → load: identical logits on flex.
    let device = Device::flex();
    let loaded = load_trained(&whole, &device).unwrap();
    assert_eq!(loaded.epoch, 3);
    assert_eq!(loaded.architecture.to_string(), GENOTYPE);
    let mut ds = data::load(DatasetName::Digits, None, 32).unwrap();
    ds.test.truncate(64);
    let idx: Vec<usize> = (0..32).collect();
    let b = ds.batch(&ds.test, &idx, Augment::NONE, &mut epoch_rng(0, 0), &device);
    let (a, _) = full.net.forward(b.images.clone(), Pass::Eval);
    let (c, _) = loaded.net.forward(b.images, Pass::Eval);
    assert_eq!(a.into_data(), c.into_data(), "reloaded logits differ");
    let (_, acc) = evaluate(&loaded.net, &ds, &ds.test, 32, &device);
    let last = full.metrics.last().unwrap();
    assert_eq!(acc, last.test_acc);
    // Stop after the first epoch, resume: the same metrics and weights as the whole run.
    let part = temp("part");
    let mut epochs_seen = 0;
    let stopped = train::train(&s, &part, false, &mut |e| {
        if let TrainEvent::Epoch(_) = e {
            epochs_seen += 1;
            return false;
        }
        true
    })
    .unwrap();
    assert!(stopped.result.is_none());
    assert_eq!(epochs_seen, 1);
    let resumed = train::train(&s, &part, true, &mut |_| true).unwrap();
    let strip = |m: &[train::TrainMetrics]| -> Vec<(f64, f64, f64, f64)> {
        m.iter()
            .map(|m| (m.train_loss, m.train_acc, m.test_loss, m.test_acc))
            .collect()
    };
    assert_eq!(strip(&resumed.metrics), strip(&full.metrics));
    let (r, _) = resumed.net.forward(
        ds.batch(&ds.test, &idx, Augment::NONE, &mut epoch_rng(0, 0), &device)
            .images,
        Pass::Eval,
    );
    let (w, _) = full.net.forward(
        ds.batch(&ds.test, &idx, Augment::NONE, &mut epoch_rng(0, 0), &device)
            .images,
        Pass::Eval,
    );
    assert_eq!(r.into_data(), w.into_data());
    // A checkpoint whose genotype differs from config.toml is refused.
    let cfg = std::fs::read_to_string(whole.join("config.toml")).unwrap();
    std::fs::write(
        whole.join("config.toml"),
        cfg.replace("('dil_conv_3x3', 2)", "('sep_conv_5x5', 2)"),
    )
    .unwrap();
    let e = load_trained(&whole, &device).err().unwrap().to_string();
    assert!(e.contains("the checkpoint holds"), "{e}");
    for d in [whole, part] {
        std::fs::remove_dir_all(d).ok();
    }
}

#[test]
fn train_cli_from_a_run_directory_and_errors() {
    // A search run directory's PT genotype is what `--genotype DIR` trains.
    let search = temp("search");
    std::fs::create_dir_all(&search).unwrap();
    std::fs::write(search.join("genotype_pt.txt"), format!("{GENOTYPE}\n")).unwrap();
    let out_dir = temp("cli");
    let out = Command::new(bin())
        .args(["train", "--genotype"])
        .arg(&search)
        .args([
            "--dataset",
            "digits",
            "--digits-size",
            "32",
            "--init-channels",
            "4",
            "--layers",
            "3",
            "--epochs",
            "1",
            "--batch-size",
            "32",
            "--limit-train",
            "64",
            "--limit-test",
            "32",
            "--quiet",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("test accuracy after the final epoch"),
        "{stdout}"
    );
    let result: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("result.json")).unwrap())
            .unwrap();
    assert_eq!(result["architecture"], GENOTYPE);
    let eval = Command::new(bin())
        .args(["evaluate", "--json", "--run"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(
        eval.status.success(),
        "{}",
        String::from_utf8_lossy(&eval.stderr)
    );
    let e: serde_json::Value = serde_json::from_slice(&eval.stdout).unwrap();
    assert_eq!(e["test_acc"], result["final_test_acc"]);
    // Errors name what is wrong.
    let fail = |args: &[&str], needle: &str| {
        let out = Command::new(bin()).args(args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && err.contains(needle),
            "{args:?}: {err}"
        );
    };
    let s = search.display().to_string();
    fail(
        &[
            "train",
            "--genotype",
            &s,
            "--which",
            "magnitude",
            "--dataset",
            "digits",
        ],
        "genotype_magnitude.txt",
    );
    fail(
        &[
            "train",
            "--genotype",
            &s,
            "--dataset",
            "digits",
            "--epochs",
            "0",
        ],
        "epochs",
    );
    fail(
        &["train", "--genotype", &s, "--dataset", "digits"],
        "auxiliary",
    );
    fail(
        &[
            "train",
            "--genotype",
            "Genotype(normal=[('sep_conv_3x3', 0)]",
            "--dataset",
            "digits",
        ],
        "DARTS genotype",
    );
    fail(
        &[
            "train",
            "--arch-string",
            "|nor_conv_3x3~0|+|bogus~0|none~1|+|none~0|none~1|none~2|",
            "--dataset",
            "digits",
        ],
        "bogus",
    );
    fail(
        &[
            "info",
            "--genotype",
            "Genotype(normal=[('sep_conv_9x9', 0)])",
        ],
        "sep_conv_9x9",
    );
    let out = Command::new(bin())
        .args(["info", "--json", "--arch-string", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"])
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(info["params"], 1_073_466);
    assert_eq!(info["params_without_auxiliary"], 1_073_466);
    assert_eq!(info["flops"], 153_272_960u64);
    for d in [search, out_dir] {
        std::fs::remove_dir_all(d).ok();
    }
}
