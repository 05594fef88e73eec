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
}

impl DatasetName {
    /// Every dataset, in CLI order.
    pub const ALL: [DatasetName; 5] = [
        DatasetName::Digits,
        DatasetName::Cifar10,
        DatasetName::Cifar100,
        DatasetName::FashionMnist,
        DatasetName::Mnist,
    ];

    /// Image channels and classes of the dataset's images (before any upsampling).
    pub fn channels_and_classes(self) -> (usize, usize) {
        match self {
            DatasetName::Digits | DatasetName::FashionMnist | DatasetName::Mnist => (1, 10),
            DatasetName::Cifar10 => (3, 10),
            DatasetName::Cifar100 => (3, 100),
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
            _ => {
                return Err(Error::Config {
                    field: "dataset".into(),
                    message: format!(
                        "unknown dataset `{s}`; expected digits, cifar10, cifar100, fashion-mnist or mnist"
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
    }
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

#[cfg(test)]
mod tests {
    use super::*;

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
