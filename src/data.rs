//! Datasets, the search split and batching with augmentation (spec §2.1).
//!
//! Images are kept on the host as `u8` in `[n, channels, height, width]` order; batches are
//! normalised (and augmented) on the host and uploaded as `[batch, channels, height, width]` f32.
//!
//! Formats:
//! * `digits`: 1,797 real 8×8 handwritten digits (UCI via scikit-learn, BSD-3-Clause), embedded
//!   in the binary, upsampled to 16×16 (default) or 32×32. Every 5th image is the test set.
//! * `cifar10`: the official binary version (`data_batch_{1..5}.bin`, `test_batch.bin`, records of
//!   1 label byte + 3,072 pixel bytes). The record count comes from the file size.
//! * `cifar100`: binary version (`train.bin`, `test.bin`, records of coarse + fine label + 3,072 bytes;
//!   the fine label is used).
//! * `fashion-mnist` / `mnist`: IDX files, plain or gzip (`train-images-idx3-ubyte[.gz]`, …).
//! * `svhn`: the official `train_32x32.mat` / `test_32x32.mat` (MATLAB v5, compressed or not):
//!   `X` is uint8 `[32, 32, 3, N]` (column-major: height, width, channel, image) and `y` is
//!   `[N, 1]` with labels 1..10, 10 standing for the digit 0 (as torchvision reads them).
//! * `imagenet16-120`: NAS-Bench-201's pickled `train_data_batch_1..10` and `val_data` (dicts with
//!   `data`, a uint8 numpy array `[N, 768]` of 3×16×16 images, and `labels` 1..1000). As
//!   NAS-Bench-201 does, images labelled 1..120 are kept as 0..119 and the others skipped.

use std::io::Read;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::Rng;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The datasets `--dataset` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    /// Embedded 8×8 digits, upsampled.
    Digits,
    /// CIFAR-10 binary version.
    Cifar10,
    /// CIFAR-100 binary version.
    Cifar100,
    /// Fashion-MNIST IDX files.
    FashionMnist,
    /// MNIST IDX files.
    Mnist,
    /// SVHN, the official MATLAB files (`train_32x32.mat`, `test_32x32.mat`).
    Svhn,
    /// ImageNet16-120: NAS-Bench-201's 16×16 ImageNet subset (classes 1..120 of the pickled
    /// `train_data_batch_1..10` and `val_data`).
    ImageNet16,
}

impl DatasetName {
    /// Every dataset, in CLI order.
    pub const ALL: [DatasetName; 7] = [
        DatasetName::Digits,
        DatasetName::Cifar10,
        DatasetName::Cifar100,
        DatasetName::FashionMnist,
        DatasetName::Mnist,
        DatasetName::Svhn,
        DatasetName::ImageNet16,
    ];

    /// Image channels and classes of the dataset's images (before any upsampling).
    pub fn channels_and_classes(self) -> (usize, usize) {
        match self {
            DatasetName::Digits | DatasetName::FashionMnist | DatasetName::Mnist => (1, 10),
            DatasetName::Cifar10 | DatasetName::Svhn => (3, 10),
            DatasetName::Cifar100 => (3, 100),
            DatasetName::ImageNet16 => (3, 120),
        }
    }

    /// CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Digits => "digits",
            DatasetName::Cifar10 => "cifar10",
            DatasetName::Cifar100 => "cifar100",
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Mnist => "mnist",
            DatasetName::Svhn => "svhn",
            DatasetName::ImageNet16 => "imagenet16-120",
        }
    }

    /// Default data directory, where one exists (Debian's `dataset-fashion-mnist` package).
    pub fn default_dir(self) -> Option<PathBuf> {
        match self {
            DatasetName::FashionMnist => Some(PathBuf::from("/usr/share/datasets/fashion-mnist")),
            _ => None,
        }
    }
}

impl std::fmt::Display for DatasetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DatasetName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "digits" => DatasetName::Digits,
            "cifar10" | "cifar-10" => DatasetName::Cifar10,
            "cifar100" | "cifar-100" => DatasetName::Cifar100,
            "fashion-mnist" | "fashion_mnist" | "fmnist" => DatasetName::FashionMnist,
            "mnist" => DatasetName::Mnist,
            "svhn" => DatasetName::Svhn,
            "imagenet16-120" | "imagenet16" | "ImageNet16-120" => DatasetName::ImageNet16,
            _ => {
                return Err(Error::Config {
                    field: "dataset".into(),
                    message: format!(
                        "unknown dataset `{s}`; expected digits, cifar10, cifar100, fashion-mnist, mnist, svhn or imagenet16-120"
                    ),
                });
            }
        })
    }
}

/// A set of images `[n, channels, size, size]` (u8) with labels.
#[derive(Clone, Debug)]
pub struct ImageSet {
    /// Pixels, image after image, channel planes row-major.
    pub pixels: Vec<u8>,
    /// Labels `0..classes`.
    pub labels: Vec<u16>,
    /// Channels per image.
    pub channels: usize,
    /// Height = width.
    pub size: usize,
}

impl ImageSet {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    fn image_len(&self) -> usize {
        self.channels * self.size * self.size
    }

    /// Keep the first `n` images.
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.pixels.truncate(n * self.image_len());
    }
}

/// A loaded dataset: train and test sets plus its normalisation constants.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Which dataset.
    pub name: DatasetName,
    /// Training set (the search splits it 50/50).
    pub train: ImageSet,
    /// Test set (logging only).
    pub test: ImageSet,
    /// Number of classes.
    pub classes: usize,
    /// Per-channel mean (of pixel / 255).
    pub mean: Vec<f32>,
    /// Per-channel standard deviation.
    pub std: Vec<f32>,
    /// Files read (for the run manifest); empty for the embedded digits.
    pub files: Vec<PathBuf>,
    /// Whether random horizontal flips suit the data (not for digits).
    pub flip: bool,
}

const DIGITS_GZ: &[u8] = include_bytes!("data/digits.csv.gz");

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn data_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Read a whole file, gunzipping `.gz` files.
fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(io_err(path))?;
    if path.extension().is_some_and(|e| e == "gz") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .map_err(|e| data_err(path, format!("not a valid gzip file: {e}")))?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parse the embedded digits and upsample them to `size`×`size` (bilinear).
pub fn load_digits(size: usize) -> Result<Dataset> {
    let path = Path::new("<embedded digits.csv.gz>");
    let mut text = String::new();
    flate2::read::GzDecoder::new(DIGITS_GZ)
        .read_to_string(&mut text)
        .map_err(|e| data_err(path, format!("corrupt embedded data: {e}")))?;
    let mut train = ImageSet {
        pixels: Vec::new(),
        labels: Vec::new(),
        channels: 1,
        size,
    };
    let mut test = train.clone();
    for (i, line) in text.lines().enumerate() {
        let values: Vec<u8> = line
            .split(',')
            .map(|v| v.trim().parse::<u8>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| data_err(path, format!("line {}: {e}", i + 1)))?;
        if values.len() != 65 {
            return Err(data_err(
                path,
                format!("line {}: expected 65 values, got {}", i + 1, values.len()),
            ));
        }
        let img = image::GrayImage::from_fn(8, 8, |x, y| {
            image::Luma([(values[(y * 8 + x) as usize] as u32 * 255 / 16) as u8])
        });
        let big = image::imageops::resize(
            &img,
            size as u32,
            size as u32,
            image::imageops::FilterType::Triangle,
        );
        let set = if i % 5 == 4 { &mut test } else { &mut train };
        set.pixels.extend_from_slice(big.as_raw());
        set.labels.push(values[64] as u16);
    }
    let (mean, std) = channel_stats(&train);
    Ok(Dataset {
        name: DatasetName::Digits,
        train,
        test,
        classes: 10,
        mean,
        std,
        files: Vec::new(),
        flip: false,
    })
}

/// Per-channel mean and std of pixel / 255 over a set (for datasets without reference constants).
fn channel_stats(set: &ImageSet) -> (Vec<f32>, Vec<f32>) {
    let plane = set.size * set.size;
    let mut mean = vec![0f64; set.channels];
    let mut sq = vec![0f64; set.channels];
    for img in set.pixels.chunks(set.image_len()) {
        for c in 0..set.channels {
            for &p in &img[c * plane..(c + 1) * plane] {
                let v = p as f64 / 255.0;
                mean[c] += v;
                sq[c] += v * v;
            }
        }
    }
    let n = (set.len() * plane).max(1) as f64;
    let m: Vec<f32> = mean.iter().map(|s| (s / n) as f32).collect();
    let s: Vec<f32> = sq
        .iter()
        .zip(&mean)
        .map(|(q, s)| ((q / n - (s / n).powi(2)).max(1e-12)).sqrt() as f32)
        .collect();
    (m, s)
}

/// Read CIFAR binary records (`label_bytes` label bytes then 3,072 pixels) from `path`.
fn read_cifar_file(
    path: &Path,
    label_bytes: usize,
    classes: usize,
    set: &mut ImageSet,
) -> Result<()> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let record = label_bytes + 3072;
    if bytes.is_empty() {
        return Err(data_err(
            path,
            "file is empty; expected CIFAR binary records",
        ));
    }
    if bytes.len() % record != 0 {
        return Err(data_err(
            path,
            format!(
                "size {} is not a multiple of the {record}-byte CIFAR record: truncated or not a CIFAR binary file",
                bytes.len()
            ),
        ));
    }
    for (i, r) in bytes.chunks_exact(record).enumerate() {
        let label = r[label_bytes - 1] as usize;
        if label >= classes {
            return Err(data_err(
                path,
                format!("record {i} has label {label}; expected 0..{}", classes - 1),
            ));
        }
        set.labels.push(label as u16);
        set.pixels.extend_from_slice(&r[label_bytes..]);
    }
    Ok(())
}

/// Load CIFAR-10 or CIFAR-100 (binary versions) from `dir`.
pub fn load_cifar(dir: &Path, hundred: bool) -> Result<Dataset> {
    if !dir.is_dir() {
        return Err(data_err(
            dir,
            "directory not found; expected the CIFAR binary version's folder",
        ));
    }
    let (train_files, test_file, label_bytes, classes) = if hundred {
        (vec!["train.bin".to_string()], "test.bin", 2, 100)
    } else {
        (
            (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
            "test_batch.bin",
            1,
            10,
        )
    };
    let mut train = ImageSet {
        pixels: Vec::new(),
        labels: Vec::new(),
        channels: 3,
        size: 32,
    };
    let mut test = train.clone();
    let mut files = Vec::new();
    for f in &train_files {
        let p = dir.join(f);
        read_cifar_file(&p, label_bytes, classes, &mut train)?;
        files.push(p);
    }
    let p = dir.join(test_file);
    read_cifar_file(&p, label_bytes, classes, &mut test)?;
    files.push(p);
    // Spec §2.1 normalisation constants.
    let (mean, std) = if hundred {
        (vec![0.5071, 0.4865, 0.4409], vec![0.2673, 0.2564, 0.2762])
    } else {
        (
            vec![0.491_399_68, 0.482_158_27, 0.446_531_24],
            vec![0.247_032_33, 0.243_485_05, 0.261_587_68],
        )
    };
    let name = if hundred {
        DatasetName::Cifar100
    } else {
        DatasetName::Cifar10
    };
    Ok(Dataset {
        name,
        train,
        test,
        classes,
        mean,
        std,
        files,
        flip: true,
    })
}

fn find_idx(dir: &Path, stem: &str) -> Result<PathBuf> {
    for name in [stem.to_string(), format!("{stem}.gz")] {
        let p = dir.join(&name);
        if p.is_file() {
            return Ok(p);
        }
    }
    Err(data_err(
        &dir.join(stem),
        "file not found (looked for it plain and with .gz)",
    ))
}

fn be_u32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Read an IDX image file (magic 2051) and its label file (magic 2049).
fn read_idx(images: &Path, labels: &Path, classes: usize) -> Result<ImageSet> {
    let ib = read_maybe_gz(images)?;
    if ib.len() < 16 || be_u32(&ib, 0) != 2051 {
        return Err(data_err(
            images,
            "wrong magic number; expected an IDX image file (magic 2051)",
        ));
    }
    let (n, h, w) = (
        be_u32(&ib, 4) as usize,
        be_u32(&ib, 8) as usize,
        be_u32(&ib, 12) as usize,
    );
    if h != w {
        return Err(data_err(
            images,
            format!("images are {h}×{w}; expected square images"),
        ));
    }
    if ib.len() != 16 + n * h * w {
        return Err(data_err(
            images,
            format!(
                "holds {} pixel bytes; the header promises {n} images of {h}×{w}: truncated",
                ib.len() - 16
            ),
        ));
    }
    let lb = read_maybe_gz(labels)?;
    if lb.len() < 8 || be_u32(&lb, 0) != 2049 {
        return Err(data_err(
            labels,
            "wrong magic number; expected an IDX label file (magic 2049)",
        ));
    }
    let m = be_u32(&lb, 4) as usize;
    if m != n || lb.len() != 8 + n {
        return Err(data_err(
            labels,
            format!(
                "holds {} labels; expected {n} (one per image): truncated or mismatched",
                lb.len().saturating_sub(8)
            ),
        ));
    }
    let mut lab = Vec::with_capacity(n);
    for (i, &l) in lb[8..].iter().enumerate() {
        if l as usize >= classes {
            return Err(data_err(
                labels,
                format!("label {i} is {l}; expected 0..{}", classes - 1),
            ));
        }
        lab.push(l as u16);
    }
    Ok(ImageSet {
        pixels: ib[16..].to_vec(),
        labels: lab,
        channels: 1,
        size: h,
    })
}

/// Load Fashion-MNIST or MNIST IDX files from `dir`.
pub fn load_idx_dataset(dir: &Path, name: DatasetName) -> Result<Dataset> {
    if !dir.is_dir() {
        let hint = if name == DatasetName::FashionMnist {
            " (apt-get install dataset-fashion-mnist)"
        } else {
            ""
        };
        return Err(data_err(
            dir,
            format!("directory not found; expected the {name} IDX files{hint}"),
        ));
    }
    let ti = find_idx(dir, "train-images-idx3-ubyte")?;
    let tl = find_idx(dir, "train-labels-idx1-ubyte")?;
    let vi = find_idx(dir, "t10k-images-idx3-ubyte")?;
    let vl = find_idx(dir, "t10k-labels-idx1-ubyte")?;
    let train = read_idx(&ti, &tl, 10)?;
    let test = read_idx(&vi, &vl, 10)?;
    let (mean, std) = channel_stats(&train);
    let flip = name == DatasetName::FashionMnist;
    Ok(Dataset {
        name,
        train,
        test,
        classes: 10,
        mean,
        std,
        files: vec![ti, tl, vi, vl],
        flip,
    })
}

/// Load `name` from `dir` (or its default place). `digits_size` is the digits' upsampled size.
pub fn load(name: DatasetName, dir: Option<&Path>, digits_size: usize) -> Result<Dataset> {
    let need_dir = || -> Result<PathBuf> {
        dir.map(Path::to_path_buf)
            .or_else(|| name.default_dir())
            .ok_or_else(|| Error::Config {
                field: "data-dir".into(),
                message: format!("dataset `{name}` needs --data-dir pointing at its files"),
            })
    };
    match name {
        DatasetName::Digits => load_digits(digits_size),
        DatasetName::Cifar10 => load_cifar(&need_dir()?, false),
        DatasetName::Cifar100 => load_cifar(&need_dir()?, true),
        DatasetName::FashionMnist | DatasetName::Mnist => load_idx_dataset(&need_dir()?, name),
        #[cfg(not(target_arch = "wasm32"))]
        DatasetName::Svhn => load_svhn(&need_dir()?),
        #[cfg(not(target_arch = "wasm32"))]
        DatasetName::ImageNet16 => load_imagenet16(&need_dir()?),
        #[cfg(target_arch = "wasm32")]
        DatasetName::Svhn | DatasetName::ImageNet16 => Err(Error::Config {
            field: "dataset".into(),
            message: format!("`{name}` is read from files, which the page has not; use digits"),
        }),
    }
}

#[cfg(not(target_arch = "wasm32"))]
/// Read one SVHN MATLAB file: `X` uint8 `[32, 32, 3, N]`, `y` `[N, 1]` (any numeric class) with
/// labels 1..10 (10 = digit 0, stored as 0). Errors name the file and what was expected.
fn read_svhn_mat(path: &Path) -> Result<ImageSet> {
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    // The MATLAB parser can panic on some malformed files: that is an error about the file.
    let parsed = std::panic::catch_unwind(|| matfile::MatFile::parse(&bytes[..]));
    let mat = match parsed {
        Ok(Ok(m)) => m,
        Ok(Err(e)) => {
            return Err(data_err(
                path,
                format!("not a readable MATLAB v5 file (truncated, or saved as v7.3/HDF5?): {e}"),
            ));
        }
        Err(_) => return Err(data_err(path, "not a readable MATLAB v5 file")),
    };
    let x = mat
        .find_by_name("X")
        .ok_or_else(|| data_err(path, "no numeric array `X` (uint8 [32, 32, 3, N])"))?;
    let size = x.size().clone();
    let n = match size.as_slice() {
        [32, 32, 3, n] => *n,
        [32, 32, 3] => 1,
        other => {
            return Err(data_err(
                path,
                format!("`X` has size {other:?}; expected [32, 32, 3, N]"),
            ));
        }
    };
    let matfile::NumericData::UInt8 { real: px, .. } = x.data() else {
        return Err(data_err(
            path,
            "`X` is not uint8; expected uint8 [32, 32, 3, N]",
        ));
    };
    if px.len() != 3072 * n {
        return Err(data_err(
            path,
            format!("`X` holds {} values for size {size:?}", px.len()),
        ));
    }
    let y = mat
        .find_by_name("y")
        .ok_or_else(|| data_err(path, "no numeric array `y` ([N, 1] labels 1..10)"))?;
    let labels: Vec<f64> = match y.data() {
        matfile::NumericData::UInt8 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        matfile::NumericData::Double { real, .. } => real.clone(),
        matfile::NumericData::Single { real, .. } => real.iter().map(|&v| v as f64).collect(),
        matfile::NumericData::Int32 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        matfile::NumericData::Int64 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        matfile::NumericData::UInt16 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        _ => return Err(data_err(path, "`y` has an unexpected numeric class")),
    };
    if labels.len() != n || y.size().iter().product::<usize>() != n {
        return Err(data_err(
            path,
            format!(
                "`y` has size {:?} ({} labels) for {n} images",
                y.size(),
                labels.len()
            ),
        ));
    }
    let mut set = ImageSet {
        pixels: Vec::with_capacity(3072 * n),
        labels: Vec::with_capacity(n),
        channels: 3,
        size: 32,
    };
    for (i, &l) in labels.iter().enumerate() {
        if !(l.fract() == 0.0 && (1.0..=10.0).contains(&l)) {
            return Err(data_err(
                path,
                format!("image {i} has label {l}; expected 1..10 (10 for the digit 0)"),
            ));
        }
        set.labels.push((l as u16) % 10);
    }
    // Column-major [h, w, c, n] to row-major [n, c, h, w].
    for img in 0..n {
        for c in 0..3 {
            for h in 0..32 {
                for w in 0..32 {
                    set.pixels.push(px[h + 32 * w + 1024 * c + 3072 * img]);
                }
            }
        }
    }
    Ok(set)
}

#[cfg(not(target_arch = "wasm32"))]
/// Load SVHN from `dir` (`train_32x32.mat`, `test_32x32.mat`; the `extra` split is not used, as
/// in the reference), with the reference's normalisation constants and augmentation (random crop
/// with 4-pixel padding and horizontal flips, `nasbench201/utils.py` of darts-pt).
pub fn load_svhn(dir: &Path) -> Result<Dataset> {
    if !dir.is_dir() {
        return Err(data_err(
            dir,
            "directory not found; expected the folder of train_32x32.mat and test_32x32.mat",
        ));
    }
    let (tp, vp) = (dir.join("train_32x32.mat"), dir.join("test_32x32.mat"));
    for p in [&tp, &vp] {
        if !p.is_file() {
            return Err(data_err(p, "file not found"));
        }
    }
    let train = read_svhn_mat(&tp)?;
    let test = read_svhn_mat(&vp)?;
    Ok(Dataset {
        name: DatasetName::Svhn,
        train,
        test,
        classes: 10,
        mean: vec![0.4377, 0.4438, 0.4728],
        std: vec![0.1980, 0.2010, 0.1970],
        files: vec![tp, vp],
        flip: true,
    })
}

#[cfg(not(target_arch = "wasm32"))]
/// A pickled numpy array or list found in an ImageNet16 file.
enum Pickled<'a> {
    /// A uint8 array: shape and bytes.
    Array(Vec<usize>, &'a [u8]),
    /// A list of integers.
    Ints(Vec<i64>),
}

#[cfg(not(target_arch = "wasm32"))]
/// What a value of the pickle is, as far as these files need: an int, a numpy array (numpy's
/// `_reconstruct` + state, or protocol 5's `_frombuffer`) or a list of ints.
fn pickled<'a>(v: &'a repugnant_pickle::Value<'a>) -> Option<Pickled<'a>> {
    use repugnant_pickle::{SequenceType as S, Value as V};
    let int = |v: &V| match v {
        V::Int(i) => Some(*i),
        V::Raw(_) => match repugnant_pickle::value::fix_value(v.clone()).ok()? {
            V::Int(i) => Some(i),
            _ => None,
        },
        _ => None,
    };
    let bytes = |v: &'a V<'a>| match v {
        V::Bytes(b) => Some(*b),
        V::String(s) => Some(s.as_bytes()),
        _ => None,
    };
    let shape = |v: &V| match v {
        V::Seq(S::Tuple, dims) => dims.iter().map(|d| int(d).map(|d| d as usize)).collect(),
        _ => None,
    };
    match v {
        // ndarray: BUILD(_reconstruct(...), (version, shape, dtype, fortran, data)).
        V::Build(_, state) => match state.as_ref() {
            V::Seq(S::Tuple, st) if st.len() == 5 => {
                Some(Pickled::Array(shape(&st[1])?, bytes(&st[4])?))
            }
            _ => None,
        },
        // Protocol 5: _frombuffer(buffer, dtype, shape, order).
        V::Global(_, args) => match args.first()? {
            V::Seq(S::Tuple, a) if a.len() == 4 => {
                Some(Pickled::Array(shape(&a[2])?, bytes(&a[0])?))
            }
            _ => None,
        },
        V::Seq(S::List, items) => items
            .iter()
            .map(int)
            .collect::<Option<_>>()
            .map(Pickled::Ints),
        _ => None,
    }
}

#[cfg(not(target_arch = "wasm32"))]
/// Read one ImageNet16 pickle into `set`, keeping labels 1..=`classes` (as 0..classes).
fn read_imagenet16_file(path: &Path, classes: usize, set: &mut ImageSet) -> Result<()> {
    use repugnant_pickle::{SequenceType as S, Value as V};
    let bytes = std::fs::read(path).map_err(io_err(path))?;
    let bad = |m: &str| {
        data_err(
            path,
            format!(
                "{m}; expected a pickled dict with `data` (uint8 [N, 768]) and `labels` (1..1000), as NAS-Bench-201's ImageNet16 files"
            ),
        )
    };
    // The pickle scraper can panic on malformed input: that is an error about the file.
    let parsed = std::panic::catch_unwind(
        || -> std::result::Result<(Vec<u8>, Vec<i64>), String> {
            let (_, ops) = repugnant_pickle::parse_ops::<nom::error::Error<&[u8]>>(&bytes)
                .map_err(|_| "not a pickle".to_string())?;
            let (values, _) = repugnant_pickle::evaluate(&ops, true)
                .map_err(|e| format!("not a readable pickle: {e}"))?;
            let Some(V::Seq(S::Dict, entries)) = values.last() else {
                return Err("the pickle does not hold a dict".into());
            };
            // The scraper gives a dict's items as (key, value) tuples, grouped in a tuple per
            // SETITEMS.
            fn pairs<'v, 'a>(items: &'v [V<'a>], out: &mut Vec<(&'v V<'a>, &'v V<'a>)>) {
                for e in items {
                    if let V::Seq(S::Tuple, kv) = e {
                        match kv.as_slice() {
                            [k @ (V::String(_) | V::Bytes(_)), v] => out.push((k, v)),
                            inner => pairs(inner, out),
                        }
                    }
                }
            }
            let mut items = Vec::new();
            pairs(entries, &mut items);
            let (mut data, mut labels) = (None, None);
            for (k, v) in items {
                {
                    let key = match k {
                        V::String(s) => *s,
                        V::Bytes(b) => std::str::from_utf8(b).unwrap_or(""),
                        _ => "",
                    };
                    match (key, pickled(v)) {
                        ("data", Some(Pickled::Array(shape, px))) => data = Some((shape, px)),
                        ("labels", Some(Pickled::Ints(l))) => labels = Some(l),
                        ("data" | "labels", _) => {
                            return Err(format!("`{key}` has an unexpected type"));
                        }
                        _ => {}
                    }
                }
            }
            let (shape, px) = data.ok_or("no `data` entry")?;
            let labels = labels.ok_or("no `labels` entry")?;
            let n = labels.len();
            if shape != [n, 768] || px.len() != n * 768 {
                return Err(format!(
                    "`data` has shape {shape:?} ({} bytes) for {n} labels; expected [{n}, 768] uint8",
                    px.len()
                ));
            }
            Ok((px.to_vec(), labels))
        },
    );
    let (px, labels) = match parsed {
        Ok(Ok(v)) => v,
        Ok(Err(m)) => return Err(bad(&m)),
        Err(_) => return Err(bad("not a readable pickle")),
    };
    for (i, &l) in labels.iter().enumerate() {
        if !(1..=1000).contains(&l) {
            return Err(data_err(
                path,
                format!("image {i} has label {l}; expected 1..1000"),
            ));
        }
        if l as usize <= classes {
            set.labels.push((l - 1) as u16);
            set.pixels.extend_from_slice(&px[i * 768..(i + 1) * 768]);
        }
    }
    Ok(())
}

#[cfg(not(target_arch = "wasm32"))]
/// Load ImageNet16-120 from `dir` (`train_data_batch_1` … `train_data_batch_10`, `val_data`):
/// the images of classes 1..120 as labels 0..119 (NAS-Bench-201's subset; 151,700 training and
/// 6,000 validation images in the full files), with NAS-Bench-201's normalisation constants and
/// its augmentation (random crop with 2-pixel padding and horizontal flips).
pub fn load_imagenet16(dir: &Path) -> Result<Dataset> {
    if !dir.is_dir() {
        return Err(data_err(
            dir,
            "directory not found; expected NAS-Bench-201's ImageNet16 folder (train_data_batch_1..10, val_data)",
        ));
    }
    let empty = ImageSet {
        pixels: Vec::new(),
        labels: Vec::new(),
        channels: 3,
        size: 16,
    };
    let (mut train, mut test) = (empty.clone(), empty);
    let mut files = Vec::new();
    for i in 1..=10 {
        let p = dir.join(format!("train_data_batch_{i}"));
        read_imagenet16_file(&p, 120, &mut train)?;
        files.push(p);
    }
    let p = dir.join("val_data");
    read_imagenet16_file(&p, 120, &mut test)?;
    files.push(p);
    Ok(Dataset {
        name: DatasetName::ImageNet16,
        train,
        test,
        classes: 120,
        // NAS-Bench-201 (xautodl, get_datasets): mean and std of ImageNet16 pixels / 255.
        mean: vec![122.68 / 255.0, 116.66 / 255.0, 104.01 / 255.0],
        std: vec![63.22 / 255.0, 61.26 / 255.0, 65.09 / 255.0],
        files,
        flip: true,
    })
}

/// Augmentation applied when drawing a batch.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Augment {
    /// Random crop after zero padding by this many pixels (0 = off).
    pub crop_padding: usize,
    /// Random horizontal flip with probability 1/2.
    pub flip: bool,
    /// Cutout square side in pixels (0 = off).
    pub cutout_length: usize,
    /// Probability of applying cutout to an image.
    pub cutout_prob: f64,
}

impl Augment {
    /// No augmentation.
    pub const NONE: Augment = Augment {
        crop_padding: 0,
        flip: false,
        cutout_length: 0,
        cutout_prob: 0.0,
    };

    /// The reference's search augmentation for a dataset: random crop with 4-pixel padding (2 for
    /// images under 28 pixels) and, where it suits the data, horizontal flips. No cutout.
    pub fn search(ds: &Dataset) -> Self {
        Augment {
            crop_padding: if ds.train.size >= 28 { 4 } else { 2 },
            flip: ds.flip,
            cutout_length: 0,
            cutout_prob: 0.0,
        }
    }
}

/// A batch on the device: images `[batch, channels, size, size]` and labels `[batch]`.
pub struct Batch {
    /// Normalised images.
    pub images: Tensor<4>,
    /// Labels.
    pub labels: Tensor<1, Int>,
}

impl Dataset {
    /// Normalise (and augment) `indices` of `set` into a batch on `device`.
    pub fn batch<R: Rng>(
        &self,
        set: &ImageSet,
        indices: &[usize],
        aug: Augment,
        rng: &mut R,
        device: &Device,
    ) -> Batch {
        let (c, s) = (set.channels, set.size);
        let plane = s * s;
        let mut out = vec![0f32; indices.len() * c * plane];
        let mut labels = Vec::with_capacity(indices.len());
        let scale: Vec<f32> = self.std.iter().map(|v| 1.0 / v).collect();
        for (b, &i) in indices.iter().enumerate() {
            let img = &set.pixels[i * c * plane..(i + 1) * c * plane];
            let p = aug.crop_padding as isize;
            let (dy, dx) = if p > 0 {
                (
                    rng.random_range(0..=2 * p as i64) as isize - p,
                    rng.random_range(0..=2 * p as i64) as isize - p,
                )
            } else {
                (0, 0)
            };
            let flip = aug.flip && rng.random_bool(0.5);
            for ch in 0..c {
                let zero = (0.0 - self.mean[ch]) * scale[ch];
                for y in 0..s {
                    for x in 0..s {
                        let sy = y as isize + dy;
                        let sx0 = if flip {
                            (s - 1 - x) as isize
                        } else {
                            x as isize
                        };
                        let sx = sx0 + dx;
                        let v = if sy >= 0 && sy < s as isize && sx >= 0 && sx < s as isize {
                            (img[ch * plane + sy as usize * s + sx as usize] as f32 / 255.0
                                - self.mean[ch])
                                * scale[ch]
                        } else {
                            zero
                        };
                        out[b * c * plane + ch * plane + y * s + x] = v;
                    }
                }
            }
            // Cutout: a square of zeros (in normalised units) centred at a uniform random pixel,
            // clipped at the borders.
            if aug.cutout_length > 0
                && aug.cutout_prob > 0.0
                && rng.random_bool(aug.cutout_prob.min(1.0))
            {
                let (cy, cx) = (rng.random_range(0..s), rng.random_range(0..s));
                let half = aug.cutout_length / 2;
                let (y0, y1) = (cy.saturating_sub(half), (cy + half).min(s));
                let (x0, x1) = (cx.saturating_sub(half), (cx + half).min(s));
                for ch in 0..c {
                    for y in y0..y1 {
                        for x in x0..x1 {
                            out[b * c * plane + ch * plane + y * s + x] = 0.0;
                        }
                    }
                }
            }
            labels.push(set.labels[i] as i64);
        }
        Batch {
            images: Tensor::from_data(TensorData::new(out, [indices.len(), c, s, s]), device),
            labels: Tensor::from_data(TensorData::new(labels, [indices.len()]), device),
        }
    }
}

/// `batch` distinct indices drawn uniformly from `range` (one reference "fresh iterator" batch).
pub fn random_batch<R: Rng>(
    range: std::ops::Range<usize>,
    batch: usize,
    rng: &mut R,
) -> Vec<usize> {
    let n = range.len();
    let mut v: Vec<usize> = sample(rng, n, batch.min(n))
        .into_iter()
        .map(|i| range.start + i)
        .collect();
    v.sort_unstable();
    v
}

/// Small MATLAB v5 files in the exact layout of SVHN's (for the loader's tests and the parser
/// fuzz test): a 128-byte header, then one `miMATRIX` element per array, optionally wrapped in
/// `miCOMPRESSED` (zlib), as MATLAB writes them.
#[doc(hidden)]
#[cfg(not(target_arch = "wasm32"))]
pub mod mat_v5 {
    /// The values of one array.
    pub enum Values<'a> {
        /// `mxUINT8_CLASS`.
        U8(&'a [u8]),
        /// `mxDOUBLE_CLASS`.
        F64(&'a [f64]),
    }

    fn sub(out: &mut Vec<u8>, ty: u32, data: &[u8]) {
        out.extend(ty.to_le_bytes());
        out.extend((data.len() as u32).to_le_bytes());
        out.extend(data);
        out.resize(out.len().next_multiple_of(8), 0);
    }

    /// A MAT v5 file with `arrays` (name, column-major size, values).
    pub fn file(arrays: &[(&str, &[usize], Values)], compressed: bool) -> Vec<u8> {
        let mut out = format!("{:<116}", "MATLAB 5.0 MAT-file, darts-pt test").into_bytes();
        out.extend([0u8; 8]);
        out.extend(0x0100u16.to_le_bytes());
        out.extend(*b"IM");
        for (name, size, values) in arrays {
            let mut body = Vec::new();
            let class: u32 = match values {
                Values::U8(_) => 9,
                Values::F64(_) => 6,
            };
            let flags: Vec<u8> = [class, 0u32].iter().flat_map(|v| v.to_le_bytes()).collect();
            sub(&mut body, 6, &flags);
            let dims: Vec<u8> = size
                .iter()
                .flat_map(|&d| (d as i32).to_le_bytes())
                .collect();
            sub(&mut body, 5, &dims);
            sub(&mut body, 1, name.as_bytes());
            match values {
                Values::U8(v) => sub(&mut body, 2, v),
                Values::F64(v) => {
                    let b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
                    sub(&mut body, 9, &b)
                }
            }
            let mut element = Vec::new();
            element.extend(14u32.to_le_bytes());
            element.extend((body.len() as u32).to_le_bytes());
            element.extend(body);
            if compressed {
                use std::io::Write;
                let mut z =
                    flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
                z.write_all(&element).unwrap();
                let packed = z.finish().unwrap();
                out.extend(15u32.to_le_bytes());
                out.extend((packed.len() as u32).to_le_bytes());
                out.extend(packed);
            } else {
                out.extend(element);
            }
        }
        out
    }
}

/// Pickles in the layout of NAS-Bench-201's ImageNet16 files (for the loader's tests and the
/// parser fuzz test): a dict with `data` (a uint8 numpy array `[N, 768]`) and `labels` (a list),
/// written with the opcodes Python 2's `pickle.dump(..., protocol=2)` emits (the data as a
/// `str`, BINSTRING) or Python 3's protocol 4 (BINBYTES).
#[doc(hidden)]
#[cfg(not(target_arch = "wasm32"))]
pub mod imagenet16_pickle {
    fn int(out: &mut Vec<u8>, v: i64) {
        match v {
            0..=255 => out.extend([b'K', v as u8]),
            256..=65535 => {
                out.push(b'M');
                out.extend((v as u16).to_le_bytes());
            }
            _ => {
                out.push(b'J');
                out.extend((v as i32).to_le_bytes());
            }
        }
    }

    fn short(out: &mut Vec<u8>, s: &str, py3: bool) {
        if py3 {
            out.push(0x8c);
        } else {
            out.push(b'U');
        }
        out.push(s.len() as u8);
        out.extend(s.as_bytes());
    }

    fn global(out: &mut Vec<u8>, module: &str, name: &str) {
        out.push(b'c');
        out.extend(format!("{module}\n{name}\n").as_bytes());
    }

    /// The pickle of `{'data': uint8 array [n, 768] of `pixels`, 'labels': labels}`.
    pub fn file(pixels: &[u8], labels: &[i64], py3: bool) -> Vec<u8> {
        let n = labels.len();
        let mut o = vec![0x80, if py3 { 4 } else { 2 }];
        o.extend([b'}', b'(']);
        short(&mut o, "data", py3);
        global(&mut o, "numpy.core.multiarray", "_reconstruct");
        global(&mut o, "numpy", "ndarray");
        int(&mut o, 0);
        o.push(0x85);
        if py3 {
            o.extend([b'C', 1, b'b']);
        } else {
            short(&mut o, "b", false);
        }
        o.extend([0x87, b'R', b'(']);
        int(&mut o, 1);
        int(&mut o, n as i64);
        int(&mut o, 768);
        o.push(0x86);
        global(&mut o, "numpy", "dtype");
        short(&mut o, "u1", py3);
        int(&mut o, 0);
        int(&mut o, 1);
        o.extend([0x87, b'R', b'(']);
        int(&mut o, 3);
        short(&mut o, "|", py3);
        o.extend([b'N', b'N', b'N']);
        int(&mut o, -1);
        int(&mut o, -1);
        int(&mut o, 0);
        o.extend([b't', b'b', 0x89]);
        o.push(if py3 { b'B' } else { b'T' });
        o.extend((pixels.len() as u32).to_le_bytes());
        o.extend(pixels);
        o.extend([b't', b'b']);
        short(&mut o, "labels", py3);
        o.extend([b']', b'(']);
        for &l in labels {
            int(&mut o, l);
        }
        o.extend([b'e', b'u', b'.']);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` SVHN images: pixel (h, w, c) of image i is `h + 2w + 3c + i` (mod 256), labels
    /// 1..=10 cycling.
    fn svhn_file(n: usize, compressed: bool, labels_u8: bool) -> (Vec<u8>, Vec<f64>) {
        let mut x = vec![0u8; 3072 * n];
        for i in 0..n {
            for c in 0..3 {
                for w in 0..32 {
                    for h in 0..32 {
                        x[h + 32 * w + 1024 * c + 3072 * i] = (h + 2 * w + 3 * c + i) as u8;
                    }
                }
            }
        }
        let y: Vec<f64> = (0..n).map(|i| (i % 10 + 1) as f64).collect();
        let y8: Vec<u8> = y.iter().map(|&v| v as u8).collect();
        let ys = if labels_u8 {
            mat_v5::Values::U8(&y8)
        } else {
            mat_v5::Values::F64(&y)
        };
        let bytes = mat_v5::file(
            &[
                ("X", &[32, 32, 3, n], mat_v5::Values::U8(&x)),
                ("y", &[n, 1], ys),
            ],
            compressed,
        );
        (bytes, y)
    }

    #[test]
    fn svhn_reads_the_official_layout() {
        let dir = std::env::temp_dir().join(format!("darts-pt-svhn-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (compressed, labels_u8) in [(false, true), (true, true), (true, false)] {
            let (train, y) = svhn_file(12, compressed, labels_u8);
            std::fs::write(dir.join("train_32x32.mat"), &train).unwrap();
            std::fs::write(
                dir.join("test_32x32.mat"),
                svhn_file(3, compressed, labels_u8).0,
            )
            .unwrap();
            let ds = load(DatasetName::Svhn, Some(&dir), 16).unwrap();
            assert_eq!((ds.train.len(), ds.test.len(), ds.classes), (12, 3, 10));
            assert_eq!((ds.train.channels, ds.train.size), (3, 32));
            // Label 10 is the digit 0.
            let want: Vec<u16> = y.iter().map(|&l| (l as u16) % 10).collect();
            assert_eq!(ds.train.labels, want);
            assert_eq!(ds.train.labels[9], 0);
            // Row-major [n, c, h, w]: image 5, channel 2, row 7, column 11.
            let (i, c, h, w) = (5, 2, 7, 11);
            assert_eq!(
                ds.train.pixels[i * 3072 + c * 1024 + h * 32 + w],
                (h + 2 * w + 3 * c + i) as u8
            );
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Writes the 11 ImageNet16 files into `dir`: `per_file` images each, labels cycling over
    /// 1..=130 so that some are beyond the 120 kept; image i's pixels are `(i + j) mod 256`.
    fn imagenet16_dir(dir: &Path, per_file: usize, py3: bool) -> Vec<(i64, Vec<u8>)> {
        let mut all = Vec::new();
        let mut k = 0i64;
        for f in (1..=10)
            .map(|i| format!("train_data_batch_{i}"))
            .chain(["val_data".to_string()])
        {
            let mut px = Vec::new();
            let mut labels = Vec::new();
            for _ in 0..per_file {
                let img: Vec<u8> = (0..768).map(|j| (k as usize + j) as u8).collect();
                let label = k % 130 + 1;
                if f != "val_data" {
                    all.push((label, img.clone()));
                }
                px.extend(img);
                labels.push(label);
                k += 17;
            }
            std::fs::write(dir.join(f), imagenet16_pickle::file(&px, &labels, py3)).unwrap();
        }
        all
    }

    #[test]
    fn imagenet16_keeps_classes_1_to_120_as_0_to_119() {
        let dir = std::env::temp_dir().join(format!("darts-pt-in16-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for py3 in [false, true] {
            let all = imagenet16_dir(&dir, 6, py3);
            let ds = load(DatasetName::ImageNet16, Some(&dir), 16).unwrap();
            let kept: Vec<&(i64, Vec<u8>)> = all.iter().filter(|(l, _)| *l <= 120).collect();
            assert!(kept.len() < all.len(), "some labels are skipped");
            assert_eq!(ds.train.len(), kept.len());
            assert_eq!((ds.train.channels, ds.train.size, ds.classes), (3, 16, 120));
            for (i, (l, img)) in kept.iter().enumerate() {
                assert_eq!(ds.train.labels[i] as i64, l - 1);
                assert_eq!(&ds.train.pixels[i * 768..(i + 1) * 768], img.as_slice());
            }
            assert!(ds.test.len() <= 6);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn imagenet16_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("darts-pt-in16-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        imagenet16_dir(&dir, 2, false);
        let first = dir.join("train_data_batch_1");
        let good = std::fs::read(&first).unwrap();
        let err = |bytes: &[u8]| {
            std::fs::write(&first, bytes).unwrap();
            let e = load_imagenet16(&dir).unwrap_err().to_string();
            assert!(e.contains("train_data_batch_1"), "{e}");
            e
        };
        assert!(err(&good[..good.len() / 2]).contains("pickle"));
        assert!(err(b"garbage").contains("pickle"));
        // Wrong layout: 32x32 images (3,072 bytes each).
        let e = err(&imagenet16_pickle::file(&vec![0; 3072 * 2], &[1, 2], false));
        assert!(e.contains("[2, 768]"), "{e}");
        // Labels out of 1..1000, or fewer labels than images.
        let e = err(&imagenet16_pickle::file(
            &vec![0; 768 * 2],
            &[1, 1001],
            false,
        ));
        assert!(e.contains("label 1001") && e.contains("1..1000"), "{e}");
        let e = err(&imagenet16_pickle::file(&vec![0; 768 * 2], &[1], false));
        assert!(e.contains("for 1 labels"), "{e}");
        std::fs::write(&first, &good).unwrap();
        assert!(load_imagenet16(&dir).is_ok());
        std::fs::remove_file(dir.join("val_data")).unwrap();
        let e = load_imagenet16(&dir).unwrap_err().to_string();
        assert!(e.contains("val_data"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn svhn_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("darts-pt-svhn-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = |train: &[u8]| {
            std::fs::write(dir.join("train_32x32.mat"), train).unwrap();
            std::fs::write(dir.join("test_32x32.mat"), svhn_file(2, false, true).0).unwrap();
            let e = load_svhn(&dir).unwrap_err().to_string();
            assert!(e.contains("train_32x32.mat"), "{e}");
            e
        };
        let (good, _) = svhn_file(4, false, true);
        let cut = err(&good[..good.len() / 2]);
        assert!(cut.contains("MATLAB") || cut.contains("`X`"), "{cut}");
        assert!(err(b"not a mat file").contains("MATLAB"));
        // Wrong layout: 28x28 grey images.
        let x = vec![0u8; 28 * 28 * 2];
        let y = [1u8, 2];
        let e = err(&mat_v5::file(
            &[
                ("X", &[28, 28, 2], mat_v5::Values::U8(&x)),
                ("y", &[2, 1], mat_v5::Values::U8(&y)),
            ],
            false,
        ));
        assert!(e.contains("[32, 32, 3, N]"), "{e}");
        // A label out of range.
        let x = vec![0u8; 3072 * 2];
        let y = [1.0, 11.0];
        let e = err(&mat_v5::file(
            &[
                ("X", &[32, 32, 3, 2], mat_v5::Values::U8(&x)),
                ("y", &[2, 1], mat_v5::Values::F64(&y)),
            ],
            true,
        ));
        assert!(e.contains("label 11") && e.contains("1..10"), "{e}");
        // Labels missing, or fewer than images.
        let e = err(&mat_v5::file(
            &[("X", &[32, 32, 3, 2], mat_v5::Values::U8(&x))],
            false,
        ));
        assert!(e.contains("`y`"), "{e}");
        let e = err(&mat_v5::file(
            &[
                ("X", &[32, 32, 3, 2], mat_v5::Values::U8(&x)),
                ("y", &[1, 1], mat_v5::Values::F64(&[1.0])),
            ],
            false,
        ));
        assert!(e.contains("for 2 images"), "{e}");
        std::fs::remove_file(dir.join("test_32x32.mat")).unwrap();
        let e = load_svhn(&dir).unwrap_err().to_string();
        assert!(
            e.contains("test_32x32.mat") && e.contains("not found"),
            "{e}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn digits_embedded() {
        let d = load_digits(16).unwrap();
        assert_eq!(d.train.len() + d.test.len(), 1797);
        assert_eq!(d.train.size, 16);
        assert_eq!(d.train.pixels.len(), d.train.len() * 256);
        assert!(d.train.labels.iter().all(|&l| l < 10));
        assert!(d.std[0] > 0.1);
    }

    #[test]
    fn cifar_errors_name_the_file() {
        let dir = std::env::temp_dir().join(format!("darts-pt-cifar-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = load_cifar(&dir, false).unwrap_err().to_string();
        assert!(e.contains("data_batch_1.bin"), "{e}");
        for i in 1..=5 {
            std::fs::write(dir.join(format!("data_batch_{i}.bin")), vec![0u8; 3073 * 2]).unwrap();
        }
        std::fs::write(dir.join("test_batch.bin"), vec![0u8; 3073 + 10]).unwrap();
        let e = load_cifar(&dir, false).unwrap_err().to_string();
        assert!(
            e.contains("test_batch.bin") && e.contains("truncated"),
            "{e}"
        );
        let mut rec = vec![0u8; 3073];
        rec[0] = 12;
        std::fs::write(dir.join("test_batch.bin"), rec).unwrap();
        let e = load_cifar(&dir, false).unwrap_err().to_string();
        assert!(e.contains("label 12"), "{e}");
        std::fs::write(dir.join("test_batch.bin"), b"").unwrap();
        assert!(
            load_cifar(&dir, false)
                .unwrap_err()
                .to_string()
                .contains("empty")
        );
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn idx_errors() {
        let dir = std::env::temp_dir().join(format!("darts-pt-idx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut img = vec![0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2];
        img.extend([0u8; 8]);
        let lab = vec![0, 0, 8, 1, 0, 0, 0, 2, 1, 9];
        for pre in ["train", "t10k"] {
            std::fs::write(dir.join(format!("{pre}-images-idx3-ubyte")), &img).unwrap();
            std::fs::write(dir.join(format!("{pre}-labels-idx1-ubyte")), &lab).unwrap();
        }
        let d = load_idx_dataset(&dir, DatasetName::Mnist).unwrap();
        assert_eq!(d.train.len(), 2);
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), &img[..20]).unwrap();
        let e = load_idx_dataset(&dir, DatasetName::Mnist)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("t10k-images-idx3-ubyte") && e.contains("truncated"),
            "{e}"
        );
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), [1u8; 24]).unwrap();
        let e = load_idx_dataset(&dir, DatasetName::Mnist)
            .unwrap_err()
            .to_string();
        assert!(e.contains("magic"), "{e}");
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), &img).unwrap();
        std::fs::write(
            dir.join("t10k-labels-idx1-ubyte"),
            [0, 0, 8, 1, 0, 0, 0, 2, 1, 10],
        )
        .unwrap();
        let e = load_idx_dataset(&dir, DatasetName::Mnist)
            .unwrap_err()
            .to_string();
        assert!(e.contains("label 1 is 10"), "{e}");
        std::fs::remove_dir_all(&dir).ok();
    }
}
