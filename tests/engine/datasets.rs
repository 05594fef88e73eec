//! The reference's other datasets end to end on small files in their exact formats: SVHN's
//! MATLAB files under RobustDARTS' training protocol, NAS-Bench-201's ImageNet16 pickles under
//! a search, and NAS-Bench-201's own training protocol (issue 18).

use std::path::{Path, PathBuf};

use darts_pt::data::{DatasetName, imagenet16_pickle, mat_v5};
use darts_pt::network::Architecture;
use darts_pt::run::SearchSettings;
use darts_pt::space::SpaceName;
use darts_pt::train::{TrainPreset, TrainSettings};

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("darts-pt-ds-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `n` 32×32 RGB images whose mean colour encodes the label (learnable), as SVHN stores them.
fn svhn_mat(n: usize, seed: usize) -> Vec<u8> {
    let mut x = vec![0u8; 3072 * n];
    let y: Vec<f64> = (0..n).map(|i| ((i + seed) % 10 + 1) as f64).collect();
    for i in 0..n {
        let l = y[i] as usize;
        for c in 0..3 {
            for w in 0..32 {
                for h in 0..32 {
                    let v = (l * 23 + c * 7 + (h * w + i) % 13) as u8;
                    x[h + 32 * w + 1024 * c + 3072 * i] = v;
                }
            }
        }
    }
    mat_v5::file(
        &[
            ("X", &[32, 32, 3, n], mat_v5::Values::U8(&x)),
            ("y", &[n, 1], mat_v5::Values::F64(&y)),
        ],
        true,
    )
}

const DARTS_V2: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";

#[test]
fn robust_preset_trains_on_svhn() {
    let data = temp("svhn");
    std::fs::write(data.join("train_32x32.mat"), svhn_mat(64, 0)).unwrap();
    std::fs::write(data.join("test_32x32.mat"), svhn_mat(32, 3)).unwrap();
    let arch: Architecture = DARTS_V2.parse().unwrap();
    let mut s = TrainSettings::reference(&arch, DatasetName::Svhn);
    s.apply_preset(TrainPreset::Robust);
    assert_eq!(
        (s.init_channels, s.layers),
        (16, 8),
        "RobustDARTS' C=16, 8 cells"
    );
    s.data_dir = Some(data.clone());
    // CPU-sized beyond the preset: 3 cells, C = 4, one epoch.
    s.init_channels = 4;
    s.layers = 3;
    s.epochs = 1;
    s.batch_size = 32;
    let run = data.join("run");
    let out = darts_pt::train::train(&s, &run, false, &mut |_| true).unwrap();
    let r = out.result.unwrap();
    assert_eq!(r.test_images, 32);
    assert!(r.final_test_acc.is_finite());
    assert!(run.join("result.json").is_file());
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn search_on_imagenet16_120() {
    let data = temp("in16");
    let mut k = 0usize;
    for f in (1..=10)
        .map(|i| format!("train_data_batch_{i}"))
        .chain(["val_data".to_string()])
    {
        let labels: Vec<i64> = (0..8).map(|j| ((k + j * 37) % 200 + 1) as i64).collect();
        let px: Vec<u8> = (0..8 * 768).map(|p| ((p * 7 + k) % 251) as u8).collect();
        k += 8;
        std::fs::write(data.join(f), imagenet16_pickle::file(&px, &labels, false)).unwrap();
    }
    let mut s = SearchSettings::reference(SpaceName::Nb201, DatasetName::ImageNet16);
    s.data_dir = Some(data.clone());
    s.epochs = 1;
    s.batch_size = 8;
    s.init_channels = 4;
    s.layers = 1;
    let run = data.join("run");
    let out = darts_pt::run::search(&s, &run, false, &mut |_| true).unwrap();
    assert_eq!(out.run.cfg.num_classes, 120);
    assert_eq!((out.run.cfg.in_channels, out.run.cfg.input_size), (3, 16));
    // Labels beyond 120 are skipped, not errors: fewer than the 80 training images remain.
    assert!(out.run.n < 80 && out.run.n > 20, "{}", out.run.n);
    let _ = std::fs::remove_dir_all(&data);
}

#[test]
fn nb201_preset_is_nas_bench_201s_protocol() {
    let arch: Architecture =
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
            .parse()
            .unwrap();
    let mut s = TrainSettings::reference(&arch, DatasetName::Cifar10);
    s.apply_preset(TrainPreset::Nb201);
    assert_eq!(
        (
            s.learning_rate,
            s.learning_rate_min,
            s.momentum,
            s.weight_decay
        ),
        (0.1, 0.0, 0.9, 5e-4)
    );
    assert!(s.nesterov);
    assert_eq!((s.batch_size, s.epochs, s.grad_clip), (256, 200, 0.0));
    assert!(!s.cutout && !s.auxiliary && s.drop_path_prob == 0.0);
    // The CLI's --learning-rate default no longer hides the preset's: a tiny run records 0.1.
    let run = temp("nb201-preset");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_darts-pt"))
        .args([
            "train",
            "--arch-string",
            &arch.to_string(),
            "--preset",
            "nb201",
            "--dataset",
            "digits",
            "--epochs",
            "1",
            "--init-channels",
            "4",
            "--layers",
            "1",
            "--digits-size",
            "8",
            "--batch-size",
            "32",
            "--limit-train",
            "64",
            "--limit-test",
            "32",
            "--quiet",
            "--out",
            run.join("r").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = std::fs::read_to_string(run.join("r/config.toml")).unwrap();
    assert!(
        cfg.contains("learning_rate = 0.1") && cfg.contains("nesterov = true"),
        "{cfg}"
    );
    let _ = std::fs::remove_dir_all(Path::new(&run));
}
