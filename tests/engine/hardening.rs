//! Issue 17: bad inputs and faults, as a new user meets them. Every case ends in a clear error
//! naming the file, flag or tensor at fault (exit status 1 from the CLI, never Burn's panic with
//! 101), and an interrupted write resumes to the same genotype.

use std::path::{Path, PathBuf};
use std::process::Command;

use darts_pt::data::DatasetName;
use darts_pt::engine::Control;
use darts_pt::error::Error;
use darts_pt::job;
use darts_pt::run::{self, SearchSettings};
use darts_pt::rundir::{self, RunDir, RunStore};
use darts_pt::select::{self, EvalMode, PtSettings};
use darts_pt::space::SpaceName;

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("darts-pt-hard-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_darts-pt")
}

/// NB201, C = 4, one cell per stage, 8×8 digits, 64 images, `epochs` epochs.
fn tiny(epochs: usize) -> SearchSettings {
    let mut s = SearchSettings::reference(SpaceName::Nb201, DatasetName::Digits);
    s.epochs = epochs;
    s.batch_size = 16;
    s.limit_train = Some(64);
    s.init_channels = 4;
    s.layers = 1;
    s.digits_size = 8;
    s.seed = 5;
    s
}

fn searched(name: &str, s: &SearchSettings) -> PathBuf {
    let dir = temp(name);
    run::search(s, &dir, false, &mut |_| true).unwrap();
    dir
}

/// Run the CLI; (exit code, stderr).
fn cli(args: &[&str]) -> (i32, String) {
    let out = Command::new(bin()).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A safetensors file: f32 `x` of `shape` and i64 `y` of `labels`.
fn write_batch(path: &Path, shape: [usize; 4], labels: &[i64]) {
    use safetensors::tensor::TensorView;
    let n: usize = shape.iter().product();
    let x: Vec<u8> = (0..n)
        .flat_map(|i| (i as f32 * 1e-3).to_le_bytes())
        .collect();
    let y: Vec<u8> = labels.iter().flat_map(|v| v.to_le_bytes()).collect();
    let views = vec![
        (
            "x".to_string(),
            TensorView::new(safetensors::Dtype::F32, shape.to_vec(), &x).unwrap(),
        ),
        (
            "y".to_string(),
            TensorView::new(safetensors::Dtype::I64, vec![labels.len()], &y).unwrap(),
        ),
    ];
    std::fs::write(path, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn score_checks_the_batch_against_the_run() {
    let dir = searched("score", &tiny(1));
    let d = dir.to_str().unwrap();
    let rgb = dir.join("rgb.safetensors");
    write_batch(&rgb, [2, 3, 32, 32], &[0, 1]);
    let (code, err) = cli(&["score", "--run", d, "--batch", rgb.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("rgb.safetensors") && err.contains("`x`") && err.contains("[n, 1, 8, 8]"),
        "{err}"
    );
    let label = dir.join("label.safetensors");
    write_batch(&label, [2, 1, 8, 8], &[0, 10]);
    let (code, err) = cli(&["score", "--run", d, "--batch", label.to_str().unwrap()]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("label 10") && err.contains("10 classes"),
        "{err}"
    );
    let good = dir.join("good.safetensors");
    write_batch(&good, [2, 1, 8, 8], &[0, 9]);
    let (code, err) = cli(&["score", "--run", d, "--batch", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

fn load_err(dir: &Path) -> String {
    let e = select::load_run(&RunDir::new(dir)).err().expect("an error");
    assert!(matches!(e, Error::Checkpoint { .. }), "{e:?}");
    let m = e.to_string();
    assert!(
        !m.contains("Io(\"") && !m.contains("Validation(\""),
        "debug text: {m}"
    );
    m
}

/// Every tensor of a checkpoint is checked against the run's config.toml before use, and Burn's
/// record errors read as sentences.
#[test]
fn checkpoints_that_do_not_fit_are_errors_naming_file_and_tensor() {
    let dir = searched("ckpt", &tiny(1));
    let mut wide = tiny(1);
    wide.init_channels = 6;
    let other = searched("ckpt-other", &wide);
    let ck = |d: &Path, f: &str| d.join("checkpoints/epoch-0001").join(f);
    let keep = |f: &str| std::fs::read(ck(&dir, f)).unwrap();
    let (bpk, st) = (keep("supernet.bpk"), keep("state.safetensors"));

    // Truncated weights.
    std::fs::write(ck(&dir, "supernet.bpk"), &bpk[..100]).unwrap();
    let m = load_err(&dir);
    assert!(
        m.contains("supernet.bpk") && m.contains("cannot be read"),
        "{m}"
    );
    // Weights of another supernet size: the first mismatch and a count, not 140 lines.
    std::fs::copy(ck(&other, "supernet.bpk"), ck(&dir, "supernet.bpk")).unwrap();
    let m = load_err(&dir);
    assert!(
        m.contains("do not fit") && m.contains("more mismatches"),
        "{m}"
    );
    assert!(m.len() < 400, "{m}");
    std::fs::write(ck(&dir, "supernet.bpk"), &bpk).unwrap();
    // Optimizer state of another size.
    std::fs::copy(
        ck(&other, "state.safetensors"),
        ck(&dir, "state.safetensors"),
    )
    .unwrap();
    let m = load_err(&dir);
    assert!(m.contains("state.safetensors") && m.contains("sgd."), "{m}");
    // α of the wrong shape, among them a 1-D α (its width was never checked).
    for shape in [vec![30], vec![5, 6], vec![6, 0]] {
        let n: usize = shape.iter().product();
        let bytes: Vec<u8> = (0..n).flat_map(|_| 0f32.to_le_bytes()).collect();
        let v =
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), &bytes)
                .unwrap();
        std::fs::write(
            ck(&dir, "state.safetensors"),
            safetensors::serialize(vec![("alpha.normal".to_string(), v)], None).unwrap(),
        )
        .unwrap();
        let m = load_err(&dir);
        assert!(
            m.contains("`alpha.normal`") && m.contains("expected [6, 5]"),
            "{shape:?}: {m}"
        );
    }
    // Not a safetensors file at all.
    std::fs::write(ck(&dir, "state.safetensors"), b"garbage").unwrap();
    let m = load_err(&dir);
    assert!(m.contains("state.safetensors"), "{m}");
    std::fs::write(ck(&dir, "state.safetensors"), &st).unwrap();
    assert!(select::load_run(&RunDir::new(&dir)).is_ok());
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&other);
}

/// A writer holds the run directory's lock; a second writer (even with --force) gets an error
/// naming the holder, and readers keep working.
#[test]
fn a_second_writer_is_refused_and_readers_keep_working() {
    let dir = searched("lock", &tiny(1));
    let d = dir.to_str().unwrap();
    let store = RunDir::new(&dir);
    {
        let _held = store.lock("test writer").unwrap();
        let again = store.lock("second writer").unwrap_err();
        assert!(matches!(again, Error::InUse { .. }), "{again:?}");
        let pid = std::process::id().to_string();
        assert!(again.to_string().contains(&pid), "{again}");
        // Another process: select --force, search --resume, run --resume.
        for args in [
            vec!["select", "--run", d, "--force", "--quiet"],
            vec!["search", "--resume", d, "--quiet"],
            vec!["run", "--resume", d, "--quiet"],
        ] {
            let (code, err) = cli(&args);
            assert_eq!(code, 1, "{args:?}: {err}");
            assert!(
                err.contains("is in use by process") && err.contains("test writer"),
                "{args:?}: {err}"
            );
        }
        // Readers.
        let batch = dir.join("b.safetensors");
        write_batch(&batch, [2, 1, 8, 8], &[1, 2]);
        let (code, err) = cli(&["score", "--run", d, "--batch", batch.to_str().unwrap()]);
        assert_eq!(code, 0, "{err}");
        assert!(select::load_run(&store).is_ok());
    }
    // Released with the guard.
    let (code, err) = cli(&["select", "--run", d, "--method", "magnitude"]);
    assert_eq!(code, 0, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// Unique temporary names: writers of one file never share a temporary file, so each write is
/// whole, and none is left behind.
#[test]
fn concurrent_atomic_writes_of_one_file_stay_whole() {
    let dir = temp("atomic");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("f.json");
    std::thread::scope(|s| {
        for t in 0..8u8 {
            let path = &path;
            s.spawn(move || {
                for _ in 0..50 {
                    rundir::write_atomic(path, &vec![t; 64 << 10]).unwrap();
                }
            });
        }
    });
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes.len(), 64 << 10);
    assert!(bytes.iter().all(|&b| b == bytes[0]), "a mixed file");
    let names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(names, vec!["f.json".to_string()]);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A kill during any write of a search and its PT selection, by deterministic fault injection
/// (every write after the k-th file fails, as if the process had stopped there): resuming
/// gives the genotypes of an uninterrupted run, for every k.
#[test]
fn a_fault_after_any_file_write_resumes_to_the_same_genotype() {
    let s = tiny(2);
    let pt = PtSettings {
        proj_intv: 1,
        eval: EvalMode::Deterministic,
        ..PtSettings::default()
    };
    let genotypes = |dir: &Path| {
        let st = RunDir::new(dir);
        (
            rundir::read_genotype(&st, RunDir::GENOTYPE_MAGNITUDE),
            rundir::read_genotype(&st, RunDir::GENOTYPE_PT),
        )
    };
    let full = temp("fault-full");
    job::run_job_with(&s, &pt, &full, false, &Control::new(), &mut |_| {}).unwrap();
    let want = genotypes(&full);
    assert!(want.0.is_some() && want.1.is_some());
    let mut k = 0;
    loop {
        let dir = temp(&format!("fault-{k}"));
        rundir::fault::fail_after_writes(Some(k));
        let first = job::run_job_with(&s, &pt, &dir, false, &Control::new(), &mut |_| {});
        let fired = rundir::fault::fired_at();
        rundir::fault::fail_after_writes(None);
        if first.is_ok() && fired.is_none() {
            // k is past the job's last write: every write position has been tried.
            assert!(k > 10, "only {k} writes");
            let _ = std::fs::remove_dir_all(&dir);
            break;
        }
        let err = first.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            err.contains("injected fault"),
            "k = {k}: the write of {fired:?} failed, yet the job went on: {err}"
        );
        // Resume (the search's own resume if it never finished, then the job's).
        let resumed = if RunDir::new(&dir).holds_run() {
            job::run_job_with(&s, &pt, &dir, true, &Control::new(), &mut |_| {})
        } else {
            job::run_job_with(&s, &pt, &dir, false, &Control::new(), &mut |_| {})
        };
        assert!(resumed.is_ok(), "k = {k}: {resumed:?}");
        assert_eq!(genotypes(&dir), want, "k = {k}");
        let _ = std::fs::remove_dir_all(&dir);
        k += 1;
    }
    let _ = std::fs::remove_dir_all(&full);
}

#[test]
fn data_dir_is_stored_absolute_with_what_was_typed() {
    let mut s = tiny(1);
    s.data_dir = Some(PathBuf::from("some/relative/dir"));
    let dir = searched("datadir", &s);
    let stored = rundir::read_settings(&RunDir::new(&dir)).unwrap();
    let abs = stored.data_dir.clone().unwrap();
    assert!(abs.is_absolute(), "{abs:?}");
    assert!(abs.ends_with("some/relative/dir"), "{abs:?}");
    assert_eq!(
        stored.data_dir_typed.as_deref(),
        Some(Path::new("some/relative/dir"))
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn import_of_a_cifar_checkpoint_names_the_dataset_to_pass() {
    let Some(shared) = crate::shared_dir() else {
        return;
    };
    let ckpt = shared.join("fixtures/nb201/supernet.pt");
    let out = temp("import");
    let (code, err) = cli(&[
        "import",
        "--from-darts-pt",
        ckpt.to_str().unwrap(),
        "--space",
        "nb201",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("3-channel images") && err.contains("--dataset") && err.contains("cifar10"),
        "{err}"
    );
    // A truncated checkpoint is an error about the file.
    let cut = temp("import-cut");
    std::fs::create_dir_all(&cut).unwrap();
    let bytes = std::fs::read(&ckpt).unwrap();
    let cut_file = cut.join("cut.pt");
    std::fs::write(&cut_file, &bytes[..bytes.len() / 2]).unwrap();
    let (code, err) = cli(&[
        "import",
        "--from-darts-pt",
        cut_file.to_str().unwrap(),
        "--space",
        "nb201",
        "--dataset",
        "cifar10",
        "--data-dir",
        shared.join("data/cifar10-subset").to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("cut.pt"), "{err}");
    let _ = std::fs::remove_dir_all(&out);
    let _ = std::fs::remove_dir_all(&cut);
}

#[test]
fn train_resume_without_metrics_is_an_error_not_a_panic() {
    let arch: darts_pt::network::Architecture =
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|nor_conv_1x1~1|avg_pool_3x3~2|"
            .parse()
            .unwrap();
    let mut s = darts_pt::train::TrainSettings::reference(&arch, DatasetName::Digits);
    s.init_channels = 4;
    s.layers = 1;
    s.digits_size = 8;
    s.epochs = 1;
    s.batch_size = 32;
    s.limit_train = Some(64);
    s.limit_test = Some(32);
    let dir = temp("train-metrics");
    darts_pt::train::train(&s, &dir, false, &mut |_| true).unwrap();
    std::fs::remove_file(RunDir::new(&dir).path(RunDir::METRICS)).unwrap();
    let (code, err) = cli(&["train", "--resume", dir.to_str().unwrap(), "--quiet"]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("metrics.jsonl") && err.contains("0 of the 1"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The reference's hyper-parameters as flags, each checked; a diverging learning rate still stops
/// at the first NaN loss with the last checkpoint kept.
#[test]
fn hyper_parameter_flags_are_validated_and_recorded() {
    let out = temp("flags");
    let o = out.to_str().unwrap();
    let base = [
        "search",
        "--space",
        "nb201",
        "--epochs",
        "1",
        "--init-channels",
        "4",
        "--layers",
        "1",
        "--limit-train",
        "64",
        "--digits-size",
        "8",
        "--batch-size",
        "16",
        "--quiet",
        "--out",
        o,
    ];
    for (flag, value, range) in [
        ("--learning-rate", "-1", "> 0"),
        ("--learning-rate", "NaN", "> 0"),
        ("--learning-rate-min", "1", "[0, --learning-rate]"),
        ("--momentum", "1", "[0, 1)"),
        ("--weight-decay", "-0.1", ">= 0"),
        ("--arch-learning-rate", "inf", "> 0"),
        ("--arch-weight-decay", "-1", ">= 0"),
        ("--grad-clip", "0", "> 0"),
        ("--train-portion", "1", "(0, 1)"),
        ("--epsilon-alpha", "-0.3", ">= 0"),
    ] {
        let mut args = base.to_vec();
        let pair = format!("{flag}={value}");
        args.push(&pair);
        let (code, err) = cli(&args);
        assert_eq!(code, 1, "{flag} {value}: {err}");
        assert!(
            err.contains(flag) && err.contains(range),
            "{flag} {value}: {err}"
        );
        assert!(!RunDir::new(&out).holds_run());
    }
    let mut args = base.to_vec();
    args.extend([
        "--learning-rate",
        "0.05",
        "--learning-rate-min",
        "0.002",
        "--momentum",
        "0.8",
        "--weight-decay",
        "0.0005",
        "--arch-learning-rate",
        "0.0006",
        "--arch-weight-decay",
        "0.002",
        "--grad-clip",
        "3",
        "--train-portion",
        "0.75",
        "--epsilon-alpha",
        "0.1",
    ]);
    let (code, err) = cli(&args);
    assert_eq!(code, 0, "{err}");
    let s = rundir::read_settings(&RunDir::new(&out)).unwrap();
    let h = &s.hyper;
    assert_eq!(
        (
            h.learning_rate,
            h.learning_rate_min,
            h.momentum,
            h.weight_decay
        ),
        (0.05, 0.002, 0.8, 0.0005)
    );
    assert_eq!(
        (
            h.arch_learning_rate,
            h.arch_weight_decay,
            h.grad_clip,
            h.epsilon_alpha
        ),
        (0.0006, 0.002, 3.0, 0.1)
    );
    assert_eq!(s.train_portion, 0.75);
    // 48 of 64 images in the weight half at batch 16: 3 steps per epoch.
    let (_, n, half) = run::open_dataset(&s).unwrap();
    assert_eq!((n, half), (64, 48));
    let _ = std::fs::remove_dir_all(&out);
    // Diverging.
    let mut args = base.to_vec();
    args[4] = "3";
    args.extend(["--learning-rate", "1e30"]);
    let (code, err) = cli(&args);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("non-finite loss") && err.contains("last good checkpoint"),
        "{err}"
    );
    assert!(
        select::load_run(&RunDir::new(&out)).is_err(),
        "not finished"
    );
    assert!(RunDir::new(&out).path("checkpoints/LATEST").is_file());
    let _ = std::fs::remove_dir_all(&out);
}

/// `--config FILE`: values from the file; a flag overrides one only when typed; unknown keys are
/// errors; PT criteria per cell type and for the topology step.
#[test]
fn config_files_and_typed_flags() {
    let dir = temp("config");
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("search.toml");
    std::fs::write(
        &cfg,
        "space = \"nb201\"\nepochs = 1\nbatch_size = 16\nseed = 9\nlimit_train = 64\ninit_channels = 4\nlayers = 1\ndigits_size = 8\n[hyper]\nlearning_rate = 0.04\n[pt]\ncrit_edge = \"loss\"\nproj_intv = 0\n",
    )
    .unwrap();
    let c = cfg.to_str().unwrap();
    let out = dir.join("run");
    let o = out.to_str().unwrap();
    // --seed's default (2) does not override the file's 9; the typed --momentum does.
    let (code, err) = cli(&[
        "search",
        "--config",
        c,
        "--momentum",
        "0.7",
        "--quiet",
        "--out",
        o,
    ]);
    assert_eq!(code, 0, "{err}");
    let s = rundir::read_settings(&RunDir::new(&out)).unwrap();
    assert_eq!((s.seed, s.epochs, s.init_channels), (9, 1, 4));
    assert_eq!((s.hyper.learning_rate, s.hyper.momentum), (0.04, 0.7));
    // select: --crit sets all three, --crit-reduce then one of them; the file's [pt] table is
    // read too (proj_intv 0, crit_edge), and --crit overrides its crit_edge.
    let (code, err) = cli(&[
        "select",
        "--run",
        o,
        "--config",
        c,
        "--crit",
        "loss",
        "--crit-normal",
        "acc",
        "--quiet",
    ]);
    assert_eq!(code, 0, "{err}");
    let pt = select::read_pt_settings(&RunDir::new(&out))
        .unwrap()
        .unwrap();
    use darts_pt::select::Criterion::{Acc, Loss};
    assert_eq!(
        (pt.crit_normal, pt.crit_reduce, pt.crit_edge),
        (Acc, Loss, Loss)
    );
    assert_eq!(pt.proj_intv, 0);
    // A run directory's own config.toml is a valid --config.
    let again = dir.join("again");
    let own = RunDir::new(&out).path(RunDir::CONFIG);
    let (code, err) = cli(&[
        "search",
        "--config",
        own.to_str().unwrap(),
        "--quiet",
        "--out",
        again.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(rundir::read_settings(&RunDir::new(&again)).unwrap(), s);
    // Unknown keys and bad values name the file and the key.
    std::fs::write(&cfg, "epochs = 1\n[hyper]\nlearnig_rate = 0.1\n").unwrap();
    let (code, err) = cli(&[
        "search",
        "--config",
        c,
        "--out",
        dir.join("x").to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("search.toml") && err.contains("`hyper.learnig_rate`"),
        "{err}"
    );
    std::fs::write(&cfg, "epochs = \"many\"\n").unwrap();
    let (code, err) = cli(&[
        "search",
        "--config",
        c,
        "--out",
        dir.join("x").to_str().unwrap(),
    ]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("search.toml") && err.contains("epochs"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs written before the three criteria existed keep their one `crit`.
#[test]
fn old_pt_settings_with_one_criterion_still_read() {
    let run = Path::new("tests/fixtures/runs/nb201-digits");
    let text = std::fs::read_to_string(run.join("pt/settings.toml")).unwrap();
    let pt = select::read_pt_settings(&RunDir::new(run))
        .unwrap()
        .unwrap();
    if let Some(line) = text.lines().find(|l| l.starts_with("crit =")) {
        let c = if line.contains("loss") {
            select::Criterion::Loss
        } else {
            select::Criterion::Acc
        };
        assert_eq!((pt.crit_normal, pt.crit_reduce, pt.crit_edge), (c, c, c));
    }
    let store: &dyn RunStore = &RunDir::new(run);
    assert!(store.read(RunDir::PT_SETTINGS).unwrap().is_some());
}
