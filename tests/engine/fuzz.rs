//! Bounded property tests over every parser a user feeds (issue 17): DARTS genotype text,
//! NAS-Bench-201 strings, `config.toml` and `--config` files, the CIFAR, IDX, SVHN and ImageNet16 readers,
//! safetensors batches and checkpoints, and PyTorch `.pt` checkpoints. Inputs are random bytes,
//! random text, and valid inputs cut short or with bytes changed. The property: no input
//! panics; each gives a value or an error. `DARTS_PT_FUZZ_CASES` sets the cases per target
//! (default 64, as CI runs them).

use std::path::{Path, PathBuf};

use darts_pt::data::{self, DatasetName};
use darts_pt::genotype::{DartsGenotype, Nb201Arch};
use darts_pt::network::Architecture;
use darts_pt::run::SearchSettings;
use darts_pt::rundir::{MemoryRun, RunDir, RunStore};
use darts_pt::space::SpaceName;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn cases() -> u32 {
    std::env::var("DARTS_PT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64)
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    })
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("darts-pt-fuzz-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// `valid` cut to `cut` bytes (modulo its length + 1; `usize::MAX`: whole) with the bytes at
/// `flips` replaced.
fn mutate(valid: &[u8], cut: usize, flips: &[(usize, u8)]) -> Vec<u8> {
    let len = if cut == usize::MAX {
        valid.len()
    } else {
        cut % (valid.len() + 1)
    };
    let mut b = valid[..len].to_vec();
    for &(i, v) in flips {
        if !b.is_empty() {
            let n = b.len();
            b[i % n] = v;
        }
    }
    b
}

fn mutations() -> impl Strategy<Value = (usize, Vec<(usize, u8)>)> {
    (
        prop_oneof![Just(usize::MAX), any::<usize>()],
        proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6),
    )
}

const DARTS_V2: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";
const NB201: &str = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|";

#[test]
fn genotype_and_arch_string_parsers_never_panic() {
    let text = |valid: &'static str| {
        prop_oneof![
            ".{0,200}",
            mutations().prop_map(move |(cut, flips)| {
                String::from_utf8_lossy(&mutate(valid.as_bytes(), cut, &flips)).to_string()
            }),
        ]
    };
    runner()
        .run(&(text(DARTS_V2), text(NB201)), |(d, n)| {
            let _ = d.parse::<DartsGenotype>();
            let _ = d.parse::<Architecture>();
            let _ = n.parse::<Nb201Arch>();
            let _ = n.parse::<Architecture>();
            Ok(())
        })
        .unwrap();
    // The valid texts still parse (the property is not vacuous).
    assert!(DARTS_V2.parse::<DartsGenotype>().is_ok());
    assert!(NB201.parse::<Nb201Arch>().is_ok());
}

#[test]
fn config_files_never_panic() {
    let s = SearchSettings::reference(SpaceName::Darts, DatasetName::Cifar10);
    let valid = toml::to_string_pretty(&s).unwrap();
    let valid: &'static str = Box::leak(valid.into_boxed_str());
    let strategy = prop_oneof![
        "[a-z_\\[\\]=\". 0-9\n-]{0,300}",
        mutations().prop_map(move |(cut, flips)| {
            String::from_utf8_lossy(&mutate(valid.as_bytes(), cut, &flips)).to_string()
        }),
    ];
    let path = Path::new("fuzz.toml");
    runner()
        .run(&strategy, |text| {
            // A run's config.toml, and a --config file laid over the reference settings.
            let store = MemoryRun::new();
            store.write(RunDir::CONFIG, text.as_bytes()).unwrap();
            let _ = darts_pt::rundir::read_settings(&store);
            if let Ok(table) = darts_pt::config::parse_table(&text, path) {
                let _ = darts_pt::config::merge_over(&s, &table, path);
                let mut t = table.clone();
                darts_pt::select::PtSettings::expand_crit(&mut t);
                let _ = darts_pt::config::merge_over(
                    &darts_pt::select::PtSettings::default(),
                    &t,
                    path,
                );
            }
            Ok(())
        })
        .unwrap();
    let table = darts_pt::config::parse_table(valid, path).unwrap();
    assert_eq!(darts_pt::config::merge_over(&s, &table, path).unwrap(), s);
}

/// One valid CIFAR-10 record set (label byte + 3,072 pixels per image).
fn cifar_records(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| std::iter::once((i % 10) as u8).chain((0..3072).map(move |p| (p + i) as u8)))
        .collect()
}

/// An IDX image file (magic 2051) of `n` 28×28 images and its label file (magic 2049).
fn idx_files(n: u32) -> (Vec<u8>, Vec<u8>) {
    let mut images = [2051u32, n, 28, 28]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect::<Vec<u8>>();
    images.extend((0..n as usize * 784).map(|i| i as u8));
    let mut labels = [2049u32, n]
        .iter()
        .flat_map(|v| v.to_be_bytes())
        .collect::<Vec<u8>>();
    labels.extend((0..n).map(|i| (i % 10) as u8));
    (images, labels)
}

#[test]
fn dataset_readers_never_panic() {
    let dir = temp("data");
    let cifar = dir.join("cifar");
    let idx = dir.join("idx");
    std::fs::create_dir_all(&cifar).unwrap();
    std::fs::create_dir_all(&idx).unwrap();
    let records = cifar_records(3);
    let (images, labels) = idx_files(3);
    let bytes = |valid: Vec<u8>| {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            mutations().prop_map(move |(cut, flips)| mutate(&valid, cut, &flips)),
        ]
    };
    // Valid files first: the readers accept them.
    let write_cifar = |b: &[u8]| {
        for i in 1..=5 {
            std::fs::write(cifar.join(format!("data_batch_{i}.bin")), &records).unwrap();
        }
        std::fs::write(cifar.join("test_batch.bin"), b).unwrap();
    };
    let write_idx = |im: &[u8], lb: &[u8]| {
        std::fs::write(idx.join("train-images-idx3-ubyte"), im).unwrap();
        std::fs::write(idx.join("train-labels-idx1-ubyte"), lb).unwrap();
        std::fs::write(idx.join("t10k-images-idx3-ubyte"), &images).unwrap();
        std::fs::write(idx.join("t10k-labels-idx1-ubyte"), &labels).unwrap();
    };
    write_cifar(&records);
    assert!(data::load_cifar(&cifar, false).is_ok());
    write_idx(&images, &labels);
    assert!(data::load_idx_dataset(&idx, DatasetName::Mnist).is_ok());
    runner()
        .run(
            &(
                bytes(records.clone()),
                bytes(images.clone()),
                bytes(labels.clone()),
            ),
            |(c, im, lb)| {
                write_cifar(&c);
                let _ = data::load_cifar(&cifar, false);
                let _ = data::load_cifar(&cifar, true);
                write_idx(&im, &lb);
                let _ = data::load_idx_dataset(&idx, DatasetName::FashionMnist);
                Ok(())
            },
        )
        .unwrap();
    // SVHN's MATLAB files, plain and compressed.
    let svhn = dir.join("svhn");
    std::fs::create_dir_all(&svhn).unwrap();
    let x: Vec<u8> = (0..3072 * 2).map(|i| i as u8).collect();
    let mat = |compressed| {
        data::mat_v5::file(
            &[
                ("X", &[32, 32, 3, 2], data::mat_v5::Values::U8(&x)),
                ("y", &[2, 1], data::mat_v5::Values::F64(&[3.0, 10.0])),
            ],
            compressed,
        )
    };
    let (plain, packed) = (mat(false), mat(true));
    std::fs::write(svhn.join("test_32x32.mat"), &plain).unwrap();
    std::fs::write(svhn.join("train_32x32.mat"), &packed).unwrap();
    assert!(data::load_svhn(&svhn).is_ok());
    runner()
        .run(&(bytes(plain), bytes(packed)), |(a, b)| {
            std::fs::write(svhn.join("train_32x32.mat"), &a).unwrap();
            let _ = data::load_svhn(&svhn);
            std::fs::write(svhn.join("train_32x32.mat"), &b).unwrap();
            let _ = data::load_svhn(&svhn);
            Ok(())
        })
        .unwrap();
    // ImageNet16's pickles, Python 2's layout and the BINBYTES one.
    let in16 = dir.join("in16");
    std::fs::create_dir_all(&in16).unwrap();
    let px: Vec<u8> = (0..768 * 2).map(|i| i as u8).collect();
    let (p2, p4) = (
        data::imagenet16_pickle::file(&px, &[1, 7], false),
        data::imagenet16_pickle::file(&px, &[1, 7], true),
    );
    for i in 2..=10 {
        std::fs::write(in16.join(format!("train_data_batch_{i}")), &p2).unwrap();
    }
    std::fs::write(in16.join("val_data"), &p4).unwrap();
    std::fs::write(in16.join("train_data_batch_1"), &p2).unwrap();
    assert!(data::load_imagenet16(&in16).is_ok());
    runner()
        .run(&(bytes(p2), bytes(p4)), |(a, b)| {
            std::fs::write(in16.join("train_data_batch_1"), &a).unwrap();
            let _ = data::load_imagenet16(&in16);
            std::fs::write(in16.join("train_data_batch_1"), &b).unwrap();
            let _ = data::load_imagenet16(&in16);
            Ok(())
        })
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A valid `x`/`y` batch as safetensors bytes.
fn batch_bytes() -> Vec<u8> {
    use safetensors::tensor::TensorView;
    let x: Vec<u8> = (0..2 * 64).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let y: Vec<u8> = [1i64, 2].iter().flat_map(|v| v.to_le_bytes()).collect();
    safetensors::serialize(
        vec![
            (
                "x".to_string(),
                TensorView::new(safetensors::Dtype::F32, vec![2, 1, 8, 8], &x).unwrap(),
            ),
            (
                "y".to_string(),
                TensorView::new(safetensors::Dtype::I64, vec![2], &y).unwrap(),
            ),
        ],
        None,
    )
    .unwrap()
}

/// The supernet of the tiny run below: NB201, C = 4, one cell per stage, 1×8×8 digits.
fn tiny_cfg() -> darts_pt::supernet::SupernetConfig {
    darts_pt::supernet::SupernetConfig {
        space: SpaceName::Nb201,
        init_channels: 4,
        layers: 1,
        num_classes: 10,
        in_channels: 1,
        input_size: 8,
    }
}

#[test]
fn safetensors_batches_and_checkpoints_never_panic() {
    let dir = temp("st");
    // A tiny finished search whose checkpoint files get replaced.
    let mut s = SearchSettings::reference(SpaceName::Nb201, DatasetName::Digits);
    s.epochs = 1;
    s.batch_size = 16;
    s.limit_train = Some(32);
    s.init_channels = 4;
    s.layers = 1;
    s.digits_size = 8;
    let run = dir.join("run");
    darts_pt::run::search(&s, &run, false, &mut |_| true).unwrap();
    let ck = run.join("checkpoints/epoch-0001");
    let state = std::fs::read(ck.join("state.safetensors")).unwrap();
    let state_json = std::fs::read(ck.join("state.json")).unwrap();
    let batch = batch_bytes();
    let file = dir.join("batch.safetensors");
    let bytes = |valid: Vec<u8>| {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..64),
            mutations().prop_map(move |(cut, flips)| mutate(&valid, cut, &flips)),
        ]
    };
    let mut cfg = Config {
        cases: cases().div_ceil(4),
        failure_persistence: None,
        ..Config::default()
    };
    TestRunner::new(cfg.clone())
        .run(
            &(
                bytes(batch),
                bytes(state.clone()),
                bytes(state_json.clone()),
            ),
            |(b, st, sj)| {
                std::fs::write(&file, &b).unwrap();
                if let Ok(fb) = darts_pt::score::FixedBatch::read(&file) {
                    let c = tiny_cfg();
                    let _ = fb.check(&c, &file);
                }
                std::fs::write(ck.join("state.safetensors"), &st).unwrap();
                std::fs::write(ck.join("state.json"), &sj).unwrap();
                let _ = darts_pt::select::load_run(&RunDir::new(&run));
                Ok(())
            },
        )
        .unwrap();
    // The reference's safetensors reader (import) on the same kind of bytes.
    cfg.cases = cases();
    let import_cfg = tiny_cfg();
    let device = darts_pt::device::open(darts_pt::device::Backend::Cpu)
        .unwrap()
        .device;
    TestRunner::new(cfg)
        .run(&bytes(state), |b| {
            std::fs::write(&file, &b).unwrap();
            let _ = darts_pt::import::load_reference_safetensors(&file, &import_cfg, &device);
            Ok(())
        })
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pytorch_checkpoints_never_panic() {
    let Some(shared) = crate::shared_dir() else {
        return;
    };
    let valid = std::fs::read(shared.join("fixtures/nb201/supernet.pt")).unwrap();
    let dir = temp("pt");
    let file = dir.join("x.pt");
    let cfg = darts_pt::supernet::SupernetConfig::paper(SpaceName::Nb201);
    let device = darts_pt::device::open(darts_pt::device::Backend::Cpu)
        .unwrap()
        .device;
    // Cut anywhere or with changed bytes: the zip directory, the pickle, the tensor data.
    let strategy = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..256),
        mutations().prop_map(move |(cut, flips)| mutate(&valid, cut, &flips)),
    ];
    TestRunner::new(Config {
        cases: cases().div_ceil(2),
        failure_persistence: None,
        ..Config::default()
    })
    .run(&strategy, |b| {
        std::fs::write(&file, &b).unwrap();
        let _ = darts_pt::import::load_reference_checkpoint(&file, &cfg, &device);
        Ok(())
    })
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}
