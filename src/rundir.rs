//! The run directory: every file name a run uses ([`RunDir`]), the stores the loops write a run
//! through ([`RunStore`]: a directory natively, [`MemoryRun`] in the page), atomic writes and the
//! checkpoint format (design: files as the record).
//!
//! ```text
//! RUN_DIR/
//!   config.toml            every resolved setting of the search (`SearchSettings`)
//!   manifest.json          version, backend, adapter, kernels, seed, dataset files' sha256, times
//!   metrics.jsonl          one line per search epoch: losses, accuracies, lr, ε, softmax(α), seconds
//!   checkpoints/           LATEST (name of the newest) and epoch-NNNN/
//!                          {supernet.bpk, state.safetensors, state.json}
//!   genotype_magnitude.txt the magnitude genotype (spec §3.6)
//!   genotype_pt.txt        the PT genotype (spec §3.1–§3.5)
//!   pt/settings.toml       the PT selection's settings (`PtSettings`)
//!   pt/pt_scores.json      every PT decision with its candidates' scores
//!   pt/metrics.jsonl       one line per tuning epoch
//!   pt/checkpoints/        LATEST and slot-NNNN-{decided,start}/ (a search checkpoint + pt_state.json)
//!   selection.json         both genotypes, where they disagree, NAS-Bench-201 accuracies
//!   report.md              the run report
//! ```
//!
//! A training run (`darts-pt train`) has the same `config.toml`, `manifest.json`, `metrics.jsonl`
//! and `checkpoints/`, plus `genotype.txt` and `result.json`.
//!
//! Every file is written to a temporary name, synced and renamed. A checkpoint is a directory
//! filled under a temporary name and renamed, then `LATEST` is pointed at it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::data::{Dataset, DatasetName};
use crate::device::Backend;
use crate::error::{Error, Result};
use crate::run::{EpochMetrics, SearchSettings};
use crate::search::Trainer;
use crate::supernet::{Alphas, Supernet, SupernetConfig};

/// A run directory on disk and the names of its files (relative to the directory, `/`-separated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The search settings.
    pub const CONFIG: &str = "config.toml";
    /// Version, device, dataset files, start time.
    pub const MANIFEST: &str = "manifest.json";
    /// Search metrics, one line per epoch.
    pub const METRICS: &str = "metrics.jsonl";
    /// Search checkpoints.
    pub const CHECKPOINTS: &str = "checkpoints";
    /// The magnitude genotype.
    pub const GENOTYPE_MAGNITUDE: &str = "genotype_magnitude.txt";
    /// The PT genotype.
    pub const GENOTYPE_PT: &str = "genotype_pt.txt";
    /// The PT selection's directory.
    pub const PT: &str = "pt";
    /// The PT selection's settings.
    pub const PT_SETTINGS: &str = "pt/settings.toml";
    /// Every PT decision.
    pub const PT_SCORES: &str = "pt/pt_scores.json";
    /// Tuning metrics, one line per tuning epoch.
    pub const PT_METRICS: &str = "pt/metrics.jsonl";
    /// PT checkpoints.
    pub const PT_CHECKPOINTS: &str = "pt/checkpoints";
    /// The PT state inside a PT checkpoint.
    pub const PT_STATE: &str = "pt_state.json";
    /// The selection summary.
    pub const SELECTION: &str = "selection.json";
    /// The report.
    pub const REPORT: &str = "report.md";
    /// A training run's genotype (`darts-pt train`; its run directory has the same config,
    /// manifest, metrics and checkpoints files).
    pub const TRAIN_GENOTYPE: &str = "genotype.txt";
    /// A training run's final accuracies.
    pub const TRAIN_RESULT: &str = "result.json";
    /// The lock file a writer holds ([`RunDir::lock`]); it names the process holding it.
    pub const LOCK: &str = ".lock";

    /// The run directory at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        RunDir { root: root.into() }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The path of `file` (one of the names above) in this directory.
    pub fn path(&self, file: &str) -> PathBuf {
        file.split('/')
            .fold(self.root.clone(), |p, part| p.join(part))
    }

    /// Whether the directory holds a run (its `config.toml`).
    pub fn holds_run(&self) -> bool {
        self.path(Self::CONFIG).exists()
    }

    /// Take the run directory for writing (creating it): an advisory lock on its
    /// [`RunDir::LOCK`] file, held until the returned guard is dropped (or the process ends,
    /// however it ends). `command` (e.g. `darts-pt select`) is recorded in the file with the
    /// process id for the message a second writer gets. Readers take no lock. Temporary files
    /// that a killed writer left behind are removed.
    ///
    /// Errors: [`Error::InUse`] when another writer holds it; [`Error::Io`] when the directory
    /// or lock file cannot be created.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn lock(&self, command: &str) -> Result<RunLock> {
        let path = self.path(Self::LOCK);
        let io = |source| Error::Io {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(&self.root).map_err(io)?;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(&path).unwrap_or_default();
                let holder = holder.trim();
                return Err(Error::InUse {
                    path: self.root.clone(),
                    holder: if holder.is_empty() {
                        "another process".into()
                    } else {
                        holder.to_string()
                    },
                });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(e)),
        }
        file.set_len(0).map_err(io)?;
        file.write_all(format!("process {} ({command})\n", std::process::id()).as_bytes())
            .map_err(io)?;
        file.sync_all().map_err(io)?;
        for dir in [self.root.clone(), self.path(Self::PT)] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                if name.starts_with('.') && name.ends_with(".tmp") && e.path().is_file() {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(RunLock { _file: file })
    }
}

/// A writer's hold on a run directory ([`RunDir::lock`]); dropping it lets the next writer in.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// Where the loops write a run and read it back: files named as in [`RunDir`]. Natively the run
/// directory ([`RunDir`]); in the page memory ([`MemoryRun`]). The loops don't know which.
pub trait RunStore {
    /// Where the run lives, for messages (the directory, or the page's memory).
    fn location(&self) -> String;
    /// The bytes of `file`; `None` when it does not exist.
    fn read(&self, file: &str) -> Result<Option<Vec<u8>>>;
    /// Replace `file` with `bytes`, atomically.
    fn write(&self, file: &str, bytes: &[u8]) -> Result<()>;
    /// Remove `path`: a file, or a directory with everything below it (nothing when absent).
    fn remove(&self, path: &str) -> Result<()>;
    /// Save the trainer as checkpoint `name` in the checkpoint directory `ckpts`, with `extra`
    /// files beside it; `epoch` is the count of epochs (or slots) done.
    fn save_checkpoint(
        &self,
        ckpts: &str,
        name: &str,
        epoch: usize,
        t: &Trainer,
        extra: &[(&str, Vec<u8>)],
    ) -> Result<()>;
    /// Load the newest checkpoint of `ckpts` into `t`: its epoch count and the checkpoint's own
    /// directory (for [`RunStore::read`] of its extra files), or `None` when there is none.
    fn load_checkpoint(
        &self,
        ckpts: &str,
        cfg: &SupernetConfig,
        device: &Device,
        t: &mut Trainer,
    ) -> Result<Option<(usize, String)>>;
}

impl RunStore for RunDir {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn read(&self, file: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(file);
        match std::fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Io { path, source }),
        }
    }

    fn write(&self, file: &str, bytes: &[u8]) -> Result<()> {
        write_atomic(&self.path(file), bytes)
    }

    fn remove(&self, path: &str) -> Result<()> {
        let p = self.path(path);
        let r = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else if p.exists() {
            std::fs::remove_file(&p)
        } else {
            Ok(())
        };
        r.map_err(|source| Error::Io { path: p, source })
    }

    fn save_checkpoint(
        &self,
        ckpts: &str,
        name: &str,
        epoch: usize,
        t: &Trainer,
        extra: &[(&str, Vec<u8>)],
    ) -> Result<()> {
        save_checkpoint(&self.path(ckpts), name, epoch, t, extra)
    }

    fn load_checkpoint(
        &self,
        ckpts: &str,
        cfg: &SupernetConfig,
        device: &Device,
        t: &mut Trainer,
    ) -> Result<Option<(usize, String)>> {
        Ok(
            load_checkpoint(&self.path(ckpts), cfg, device, t)?.map(|(epoch, dir)| {
                let name = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().to_string())
                    .unwrap_or_default();
                (epoch, format!("{ckpts}/{name}"))
            }),
        )
    }
}

/// A run kept in memory: the page's store (it has no file system). Files are kept as written and
/// can be downloaded ([`MemoryRun::files`]). It keeps no checkpoints: a checkpoint would read every
/// weight back to the host, which the page cannot do without blocking, and the trainer itself is
/// the page's state, so a page run cannot be resumed after the tab is closed (spec: resume is a
/// property of run directories).
#[derive(Debug, Default)]
pub struct MemoryRun {
    files: Mutex<std::collections::BTreeMap<String, Vec<u8>>>,
}

impl MemoryRun {
    /// An empty run.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every file written so far, by name.
    pub fn files(&self) -> std::collections::BTreeMap<String, Vec<u8>> {
        self.files.lock().map(|f| f.clone()).unwrap_or_default()
    }
}

impl RunStore for MemoryRun {
    fn location(&self) -> String {
        "memory".into()
    }

    fn read(&self, file: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.files.lock().ok().and_then(|f| f.get(file).cloned()))
    }

    fn write(&self, file: &str, bytes: &[u8]) -> Result<()> {
        if let Ok(mut f) = self.files.lock() {
            f.insert(file.to_string(), bytes.to_vec());
        }
        Ok(())
    }

    fn remove(&self, path: &str) -> Result<()> {
        if let Ok(mut f) = self.files.lock() {
            let dir = format!("{path}/");
            f.retain(|k, _| k != path && !k.starts_with(&dir));
        }
        Ok(())
    }

    fn save_checkpoint(
        &self,
        _: &str,
        _: &str,
        _: usize,
        _: &Trainer,
        _: &[(&str, Vec<u8>)],
    ) -> Result<()> {
        Ok(())
    }

    fn load_checkpoint(
        &self,
        _: &str,
        _: &SupernetConfig,
        _: &Device,
        _: &mut Trainer,
    ) -> Result<Option<(usize, String)>> {
        Ok(None)
    }
}

/// `file` of `store` as text; `None` when absent. Errors name the file.
pub fn read_text(store: &dyn RunStore, file: &str) -> Result<Option<String>> {
    store
        .read(file)?
        .map(|b| {
            String::from_utf8(b).map_err(|_| Error::Data {
                path: PathBuf::from(format!("{}/{file}", store.location())),
                message: "not UTF-8 text".into(),
            })
        })
        .transpose()
}

/// A genotype file (`genotype_magnitude.txt`, `genotype_pt.txt`), trimmed; `None` when absent or
/// empty.
pub fn read_genotype(store: &dyn RunStore, file: &str) -> Option<String> {
    read_text(store, file)
        .ok()
        .flatten()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Read the run's `config.toml`. Errors: the store holds no run, or the file does not parse (the
/// error names the file).
pub fn read_settings(store: &dyn RunStore) -> Result<SearchSettings> {
    let Some(text) = read_text(store, RunDir::CONFIG)? else {
        return Err(Error::Config {
            field: "run".into(),
            message: format!(
                "{} is not a run directory (it has no config.toml); make one with `darts-pt search`, `run` or `import`",
                store.location()
            ),
        });
    };
    toml::from_str(&text).map_err(|e| Error::Config {
        field: format!("{}/{}", store.location(), RunDir::CONFIG),
        message: e.to_string(),
    })
}

/// Read `file` of `store` as TOML of type `T`; `None` when absent.
pub fn read_toml<T: serde::de::DeserializeOwned>(
    store: &dyn RunStore,
    file: &str,
) -> Result<Option<T>> {
    read_text(store, file)?
        .map(|t| {
            toml::from_str(&t).map_err(|e| Error::Config {
                field: format!("{}/{file}", store.location()),
                message: e.to_string(),
            })
        })
        .transpose()
}

/// Write `value` as pretty TOML to `file`.
pub fn write_toml<T: Serialize>(store: &dyn RunStore, file: &str, value: &T) -> Result<()> {
    let text = toml::to_string_pretty(value).map_err(|e| Error::Config {
        field: file.into(),
        message: e.to_string(),
    })?;
    store.write(file, text.as_bytes())
}

/// Write `value` as pretty JSON to `file`.
pub fn write_json<T: Serialize>(store: &dyn RunStore, file: &str, value: &T) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(|e| Error::Data {
        path: PathBuf::from(file),
        message: e.to_string(),
    })?;
    store.write(file, &bytes)
}

/// The run's search metrics (`metrics.jsonl`; empty when absent).
pub fn read_metrics(store: &dyn RunStore) -> Result<Vec<EpochMetrics>> {
    read_jsonl_in(store, RunDir::METRICS)
}

/// Read the JSON-lines `file` of `store`, one record per non-empty line (empty when absent).
pub fn read_jsonl_in<T: serde::de::DeserializeOwned>(
    store: &dyn RunStore,
    file: &str,
) -> Result<Vec<T>> {
    let Some(text) = read_text(store, file)? else {
        return Ok(Vec::new());
    };
    parse_jsonl(
        &text,
        &PathBuf::from(format!("{}/{file}", store.location())),
    )
}

/// Write `records` as the JSON-lines `file` of `store`.
pub fn write_jsonl_in<T: Serialize>(store: &dyn RunStore, file: &str, records: &[T]) -> Result<()> {
    store.write(file, jsonl_text(records, Path::new(file))?.as_bytes())
}

fn parse_jsonl<T: serde::de::DeserializeOwned>(text: &str, path: &Path) -> Result<Vec<T>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| Error::Data {
                path: path.to_path_buf(),
                message: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}

fn jsonl_text<T: Serialize>(records: &[T], path: &Path) -> Result<String> {
    let mut text = String::new();
    for x in records {
        text.push_str(&serde_json::to_string(x).map_err(|e| Error::Data {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?);
        text.push('\n');
    }
    Ok(text)
}

/// Read a JSON-lines file, one record per non-empty line (empty when the file is absent).
pub fn read_jsonl<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(Vec::new());
    };
    parse_jsonl(&text, path)
}

/// Write records as JSON lines, atomically.
pub fn write_jsonl<T: Serialize>(path: &Path, records: &[T]) -> Result<()> {
    write_atomic(path, jsonl_text(records, path)?.as_bytes())
}

/// Temporary names of [`write_atomic`]: unique within the process (with the process id, across
/// processes), so two writers of one file never share a temporary file.
static TMP_SEQ: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn process_id() -> u32 {
    #[cfg(not(target_arch = "wasm32"))]
    return std::process::id();
    #[cfg(target_arch = "wasm32")]
    return 0;
}

/// Write `bytes` to `path` atomically and durably: a temporary file with a unique name in the
/// same directory, written and synced, renamed over `path`, then the directory synced (so the
/// rename survives a power loss). A kill at any moment leaves either the old or the new file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let io = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        process_id(),
        TMP_SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    ));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    fault::after_file_written(path)?;
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io(e));
    }
    sync_dir(dir)
}

/// fsync a directory (its entries: created, renamed and removed files). A no-op where
/// directories cannot be opened as files (Windows, the browser).
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|source| Error::Io {
                path: dir.to_path_buf(),
                source,
            })?;
    }
    let _ = dir;
    Ok(())
}

/// fsync a file written by someone else (Burn's `save_file`) and count it for
/// [`fault`] injection.
pub(crate) fn sync_written(path: &Path) -> Result<()> {
    sync_file(path)?;
    fault::after_file_written(path)
}

fn sync_file(path: &Path) -> Result<()> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// Deterministic fault injection for the tests of interrupted writes: after the k-th file is
/// written (before it is renamed into place), every write of this thread fails as a kill there
/// would leave things. Off unless a test turns it on.
#[doc(hidden)]
pub mod fault {
    use std::cell::Cell;
    use std::path::Path;

    use crate::error::{Error, Result};

    thread_local! {
        static WRITES_LEFT: Cell<Option<usize>> = const { Cell::new(None) };
        static FIRED_AT: std::cell::RefCell<Option<std::path::PathBuf>> =
            const { std::cell::RefCell::new(None) };
    }

    /// Let `k` more files be written on this thread, then fail every write (`None`: off).
    pub fn fail_after_writes(k: Option<usize>) {
        WRITES_LEFT.with(|c| c.set(k));
        FIRED_AT.with(|f| f.borrow_mut().take());
    }

    /// The first file whose write the injected fault stopped (`None`: it has not fired).
    pub fn fired_at() -> Option<std::path::PathBuf> {
        FIRED_AT.with(|f| f.borrow().clone())
    }

    /// Called with each file once its bytes are written, before it is put in place.
    pub(crate) fn after_file_written(path: &Path) -> Result<()> {
        WRITES_LEFT.with(|c| match c.get() {
            Some(0) => {
                FIRED_AT.with(|f| {
                    f.borrow_mut().get_or_insert_with(|| path.to_path_buf());
                });
                Err(Error::Io {
                    path: path.to_path_buf(),
                    source: std::io::Error::other("injected fault: the process stopped here"),
                })
            }
            Some(k) => {
                c.set(Some(k - 1));
                Ok(())
            }
            None => Ok(()),
        })
    }
}

/// A Burn record error as a plain sentence (its `Debug` form is Rust syntax).
pub(crate) fn record_message(e: &burn::store::RecordError) -> String {
    match e {
        burn::store::RecordError::Io(m) => {
            format!(
                "cannot be read: {}",
                m.strip_prefix("I/O error: ").unwrap_or(m)
            )
        }
        burn::store::RecordError::Validation(m) => {
            // Burn lists every mismatched tensor; the first and a count say enough.
            let list = m
                .strip_prefix("Apply errors: [")
                .and_then(|l| l.strip_suffix(']'))
                .map(|l| {
                    l.split("\", \"")
                        .map(|e| e.trim_matches('"'))
                        .collect::<Vec<_>>()
                });
            match list {
                Some(errors) if errors.len() > 1 => format!(
                    "the weights do not fit this network (its config.toml): {} (and {} more mismatches)",
                    errors[0],
                    errors.len() - 1
                ),
                Some(errors) => format!(
                    "the weights do not fit this network (its config.toml): {}",
                    errors.first().copied().unwrap_or_default()
                ),
                None => format!("the weights do not fit this network (its config.toml): {m}"),
            }
        }
    }
}

pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(format!("{:x}", sha2::Sha256::digest(&bytes)))
}

fn now_unix() -> u64 {
    // web_time: std's clock panics in the browser build.
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Start a run in `store`: `config.toml` (the serialised `settings`), `manifest.json` (crate
/// version, backend and adapter, `--kernels`, seed, dataset, training images used, start time,
/// plus the fields of `extra`) and an empty `metrics.jsonl`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start_run<S: Serialize>(
    store: &dyn RunStore,
    settings: &S,
    backend: Backend,
    adapter: &str,
    seed: u64,
    dataset: DatasetName,
    train_images: usize,
    extra: serde_json::Value,
) -> Result<()> {
    let mut manifest = serde_json::json!({
        "crate": env!("CARGO_PKG_NAME"),
        "version": env!("CARGO_PKG_VERSION"),
        "backend": backend.as_str(),
        "adapter": adapter,
        "kernels": crate::kernels::kernels().as_str(),
        "seed": seed,
        "dataset": dataset.as_str(),
        "train_images": train_images,
        "started_unix": now_unix(),
    });
    if let (Some(m), serde_json::Value::Object(e)) = (manifest.as_object_mut(), extra) {
        m.extend(e);
    }
    write_toml(store, RunDir::CONFIG, settings)?;
    write_json(store, RunDir::MANIFEST, &manifest)?;
    store.write(RunDir::METRICS, b"")
}

/// The dataset's files with their sha256, for a manifest.
pub(crate) fn dataset_files(ds: &Dataset) -> Result<serde_json::Value> {
    let files: Vec<serde_json::Value> = ds
        .files
        .iter()
        .map(|p| {
            Ok(serde_json::json!({"path": p.display().to_string(), "sha256": sha256_file(p)?}))
        })
        .collect::<Result<_>>()?;
    Ok(serde_json::Value::Array(files))
}

/// Refuse to start a fresh run in a store that already holds one.
pub(crate) fn ensure_new_run(store: &dyn RunStore) -> Result<()> {
    if store.read(RunDir::CONFIG)?.is_some() {
        return Err(Error::Config {
            field: "out".into(),
            message: format!(
                "{} already holds a run; continue it with --resume or choose another directory",
                store.location()
            ),
        });
    }
    Ok(())
}

#[derive(Serialize, Deserialize)]
struct CheckpointState {
    /// Epochs completed.
    epoch: usize,
    /// Adam step counts by α name.
    adam_steps: Vec<(String, u64)>,
}

fn f32_bytes(t: Tensor<1>) -> Vec<u8> {
    let v: Vec<f32> = t
        .into_data()
        .convert::<f32>()
        .try_into_vec()
        .expect("f32 tensor");
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A named f32 tensor for a safetensors file: name, shape, little-endian bytes.
pub(crate) type NamedTensor = (String, Vec<usize>, Vec<u8>);

/// Write `named` f32 tensors as a safetensors file, atomically.
pub(crate) fn write_tensors(path: &Path, named: &[NamedTensor]) -> Result<()> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = named
        .iter()
        .map(|(k, shape, bytes)| {
            (
                k.clone(),
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
                    .expect("consistent view"),
            )
        })
        .collect();
    let bytes = safetensors::serialize(views, None).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    write_atomic(path, &bytes)
}

/// f32 tensors by name: (shape, values).
pub(crate) type TensorMap = std::collections::BTreeMap<String, (Vec<usize>, Vec<f32>)>;

/// Read every f32 tensor of a safetensors file.
pub(crate) fn read_tensors(path: &Path) -> Result<TensorMap> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    st.tensors()
        .into_iter()
        .map(|(name, v)| {
            if v.dtype() != safetensors::Dtype::F32 {
                return Err(Error::Checkpoint {
                    path: path.to_path_buf(),
                    message: format!("tensor `{name}` is {:?}; expected F32", v.dtype()),
                });
            }
            let data = v
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            Ok((name, (v.shape().to_vec(), data)))
        })
        .collect()
}

/// The SGD momentum buffers as named tensors (`sgd.PATH`).
pub(crate) fn sgd_tensors(sgd: &crate::optim::Sgd) -> Vec<NamedTensor> {
    sgd.buffers
        .iter()
        .map(|(k, b)| (format!("sgd.{k}"), b.dims().to_vec(), f32_bytes(b.clone())))
        .collect()
}

/// Restore SGD momentum buffers from tensors read by [`read_tensors`].
pub(crate) fn load_sgd_tensors(sgd: &mut crate::optim::Sgd, tensors: &TensorMap, device: &Device) {
    sgd.buffers.clear();
    for (name, (_, b)) in tensors {
        if let Some(k) = name.strip_prefix("sgd.") {
            sgd.buffers.insert(
                k.to_string(),
                Tensor::<1>::from_data(TensorData::new(b.clone(), [b.len()]), device),
            );
        }
    }
}

/// Write checkpoint `name` in `ckpts`: `fill` writes its files into a temporary directory, which
/// is then renamed into place; `ckpts/LATEST` is pointed at it and older checkpoints deleted. A
/// kill at any moment leaves the previous or the new checkpoint complete.
pub(crate) fn commit_checkpoint(
    ckpts: &Path,
    name: &str,
    fill: impl FnOnce(&Path) -> Result<()>,
) -> Result<()> {
    let tmp = ckpts.join(format!(".{name}.tmp"));
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |source| Error::Io { path: p, source }
    };
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
    // Every file inside is synced by its writer; the directory's entries are synced before the
    // rename makes it visible, and the parent after it.
    fill(&tmp)?;
    sync_dir(&tmp)?;
    let final_dir = ckpts.join(name);
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(io(&final_dir))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(io(&final_dir))?;
    sync_dir(ckpts)?;
    write_atomic(&ckpts.join("LATEST"), name.as_bytes())?;
    // Keep only the newest checkpoint; temporaries a kill left behind go too (the writer holds
    // the run directory's lock, so no other writer's temporary can be here).
    if let Ok(entries) = std::fs::read_dir(ckpts) {
        for e in entries.flatten() {
            let fname = e.file_name().to_string_lossy().to_string();
            let stale_tmp = fname.starts_with('.') && fname.ends_with(".tmp");
            if (stale_tmp || !fname.starts_with('.')) && fname != "LATEST" && fname != name {
                let p = e.path();
                let _ = if p.is_dir() {
                    std::fs::remove_dir_all(p)
                } else {
                    std::fs::remove_file(p)
                };
            }
        }
    }
    Ok(())
}

/// The directory `ckpts/LATEST` points at, or `None` when there is no checkpoint yet.
pub(crate) fn latest_checkpoint(ckpts: &Path) -> Option<PathBuf> {
    let name = std::fs::read_to_string(ckpts.join("LATEST")).ok()?;
    Some(ckpts.join(name.trim()))
}

/// Save the trainer (supernet, α, both optimizers' state) as checkpoint `name` in `ckpts`, with
/// `extra` files (name, bytes) beside it (see [`commit_checkpoint`]).
pub(crate) fn save_checkpoint(
    ckpts: &Path,
    name: &str,
    epoch: usize,
    t: &Trainer,
    extra: &[(&str, Vec<u8>)],
) -> Result<()> {
    commit_checkpoint(ckpts, name, |tmp| {
        let bpk = tmp.join("supernet.bpk");
        t.net
            .valid()
            .save_file(&bpk)
            .map_err(|e| Error::Checkpoint {
                path: bpk.clone(),
                message: record_message(&e),
            })?;
        sync_written(&bpk)?;
        // α, Adam moments and SGD momentum buffers.
        let mut named: Vec<NamedTensor> = Vec::new();
        for c in t.alphas.cell_types() {
            let a = t.alphas.logits(c).inner();
            let dims = a.dims().to_vec();
            let n: usize = dims.iter().product();
            named.push((
                format!("alpha.{}", c.name()),
                dims,
                f32_bytes(a.reshape([n])),
            ));
        }
        for (k, (_, m, v)) in &t.adam.state {
            named.push((
                format!("adam.{k}.m"),
                m.dims().to_vec(),
                f32_bytes(m.clone()),
            ));
            named.push((
                format!("adam.{k}.v"),
                v.dims().to_vec(),
                f32_bytes(v.clone()),
            ));
        }
        named.extend(sgd_tensors(&t.sgd));
        write_tensors(&tmp.join("state.safetensors"), &named)?;
        let state = CheckpointState {
            epoch,
            adam_steps: t
                .adam
                .state
                .iter()
                .map(|(k, (s, _, _))| (k.clone(), *s))
                .collect(),
        };
        let state_path = tmp.join("state.json");
        let text = serde_json::to_string_pretty(&state).map_err(|e| Error::Checkpoint {
            path: state_path.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&state_path, text.as_bytes())?;
        for (file, bytes) in extra {
            write_atomic(&tmp.join(file), bytes)?;
        }
        Ok(())
    })
}

/// Load the newest checkpoint in `ckpts` into `t`; returns its epoch count and directory, or
/// `None` when there is no checkpoint yet.
pub(crate) fn load_checkpoint(
    ckpts: &Path,
    cfg: &SupernetConfig,
    device: &Device,
    t: &mut Trainer,
) -> Result<Option<(usize, PathBuf)>> {
    let Some(dir) = latest_checkpoint(ckpts) else {
        return Ok(None);
    };
    let bad = |p: &Path, message: String| Error::Checkpoint {
        path: p.to_path_buf(),
        message,
    };
    let plain = device.clone().without_autodiff();
    let net = load_module_file(Supernet::new(cfg, &plain)?, &dir.join("supernet.bpk"))?;
    let state: CheckpointState = read_json(&dir.join("state.json"))?;
    let st_path = dir.join("state.safetensors");
    let tensors = read_tensors(&st_path)?;
    // Every tensor is checked against the shape this run's config.toml gives it before use.
    let read = |name: &str, shape: &[usize]| -> Result<Vec<f32>> {
        let (got, data) = tensors
            .get(name)
            .ok_or_else(|| bad(&st_path, format!("missing tensor `{name}`")))?;
        if got != shape {
            return Err(bad(
                &st_path,
                format!(
                    "tensor `{name}` has shape {got:?}, expected {shape:?} (from the run's config.toml: space {}, C={}, layers={})",
                    cfg.space, cfg.init_channels, cfg.layers
                ),
            ));
        }
        Ok(data.clone())
    };
    let space = crate::space::SearchSpace::new(cfg.space);
    let mut rows = Vec::new();
    for c in t.alphas.cell_types() {
        let shape = space.alpha_shape(c);
        let data = read(&format!("alpha.{}", c.name()), &shape)?;
        rows.push(
            data.chunks(shape[1].max(1))
                .map(<[f32]>::to_vec)
                .collect::<Vec<_>>(),
        );
    }
    let alphas = Alphas::from_rows(&rows[0], rows.get(1).map(Vec::as_slice), &plain);
    let to_t = |data: Vec<f32>| {
        Tensor::<1>::from_data(TensorData::new(data.clone(), [data.len()]), &plain)
    };
    t.adam.state.clear();
    for (k, steps) in &state.adam_steps {
        let Some(c) = t.alphas.cell_types().into_iter().find(|c| c.name() == k) else {
            return Err(bad(
                &dir.join("state.json"),
                format!("Adam state for unknown α `{k}`"),
            ));
        };
        let [e, o] = space.alpha_shape(c);
        let m = read(&format!("adam.{k}.m"), &[e * o])?;
        let v = read(&format!("adam.{k}.v"), &[e * o])?;
        t.adam.state.insert(k.clone(), (*steps, to_t(m), to_t(v)));
    }
    check_sgd_tensors(&net, &tensors, &st_path)?;
    load_sgd_tensors(&mut t.sgd, &tensors, &plain);
    t.net = net.fork(device).train();
    t.alphas = alphas.fork(device).train();
    Ok(Some((state.epoch, dir)))
}

/// Load a module's weights from a burnpack file; every problem (a missing or truncated file, a
/// tensor that does not fit the module, even a panic inside Burn's reader) is an error naming the
/// file.
pub(crate) fn load_module_file<M: Module>(module: M, path: &Path) -> Result<M> {
    let loaded =
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| module.try_load_file(path)));
    match loaded {
        Ok(Ok(m)) => Ok(m),
        Ok(Err(e)) => Err(Error::Checkpoint {
            path: path.to_path_buf(),
            message: record_message(&e),
        }),
        Err(_) => Err(Error::Checkpoint {
            path: path.to_path_buf(),
            message: "not a readable burnpack file (Burn's reader failed on it)".into(),
        }),
    }
}

/// Check the SGD momentum tensors (`sgd.PATH`) of `tensors` (read from `path`) against the
/// parameters of `net`: each names a parameter of it and has its element count.
pub(crate) fn check_sgd_tensors<M: Module>(
    net: &M,
    tensors: &TensorMap,
    path: &Path,
) -> Result<()> {
    let numels = param_numels(net);
    for (name, (shape, _)) in tensors {
        let Some(k) = name.strip_prefix("sgd.") else {
            continue;
        };
        let message = match numels.get(k) {
            Some(&n) if shape == &[n] => continue,
            Some(&n) => format!("tensor `{name}` has shape {shape:?}, expected [{n}]"),
            None => format!(
                "tensor `{name}` is the momentum of `{k}`, which this network does not have"
            ),
        };
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            message,
        });
    }
    Ok(())
}

/// Element count of every parameter, by its path (as the SGD buffers are keyed).
fn param_numels<M: Module>(net: &M) -> std::collections::BTreeMap<String, usize> {
    struct V {
        path: Vec<String>,
        out: std::collections::BTreeMap<String, usize>,
    }
    impl burn::module::ModuleVisitor for V {
        fn enter_module(&mut self, name: &str, _: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _: &str, _: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<D>>) {
            let n = param.val().dims().iter().product();
            self.out.insert(self.path.join("."), n);
        }
    }
    let mut v = V {
        path: Vec::new(),
        out: Default::default(),
    };
    net.visit(&mut v);
    v.out
}

/// Read a JSON file; errors name the file.
pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}
