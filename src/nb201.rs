//! NAS-Bench-201 ground truth, offline (spec §4.3).
//!
//! The binary carries a compact table of the 200-epoch test accuracies of all 15,625
//! NAS-Bench-201 cells on CIFAR-10, CIFAR-100 and ImageNet16-120, indexed by
//! [`Nb201Arch::base5_index`]. Origin: NATS-Bench (Dong et al.) topology search space, queried
//! with `hp=200, is_random=False` (mean over the available training seeds), as collected in the
//! public `v-tao/nats-bench-landscape` repository (`nats_bench.csv`); the numbers are the
//! benchmark's measurements, rounded to 1e-4 percent. CIFAR-10 accuracies are on the full test
//! set (NATS "ori-test"), CIFAR-100 and ImageNet16-120 on NB201's "x-test" half.
//!
//! File format of `src/data/nb201_accuracy.bin.gz` (gzip): the 8 bytes `NB201ACC`, then for each
//! base-5 index 0..15,625 three little-endian `u32` values: accuracy × 10,000 for CIFAR-10,
//! CIFAR-100 and ImageNet16-120. [`table_from_csv`] rebuilds it from the CSV.

use std::io::Read;
use std::sync::OnceLock;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::genotype::Nb201Arch;

/// Number of NAS-Bench-201 cells (5^6).
pub const CELLS: usize = 15_625;
const MAGIC: &[u8; 8] = b"NB201ACC";
const TABLE_GZ: &[u8] = include_bytes!("data/nb201_accuracy.bin.gz");

/// The three benchmark datasets, in table-column order.
pub const DATASETS: [&str; 3] = ["cifar10", "cifar100", "imagenet16-120"];

/// Test accuracies (percent) of every cell, by base-5 index.
pub struct Table {
    /// `[cell][dataset]` accuracy in percent.
    acc: Vec<[f64; 3]>,
    /// `[dataset]`: accuracies sorted descending (for ranks).
    sorted: [Vec<f64>; 3],
}

/// What the benchmark says about one cell.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Lookup {
    /// The cell's NAS-Bench-201 string.
    pub arch: String,
    /// CIFAR-10 test accuracy (percent, 200 epochs).
    pub cifar10: f64,
    /// CIFAR-100 test accuracy (percent).
    pub cifar100: f64,
    /// ImageNet16-120 test accuracy (percent).
    pub imagenet16_120: f64,
    /// Rank among all 15,625 cells per dataset (1 = best; ties share the better rank).
    pub rank: Ranks,
}

/// `CIFAR-10 93.76% (rank 1), CIFAR-100 71.11%, ImageNet16-120 41.44%` (test accuracies in
/// percent; the rank is by CIFAR-10).
impl std::fmt::Display for Lookup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "CIFAR-10 {:.2}% (rank {}), CIFAR-100 {:.2}%, ImageNet16-120 {:.2}%",
            self.cifar10, self.rank.cifar10, self.cifar100, self.imagenet16_120
        )
    }
}

/// Ranks of a cell among all 15,625 (1 = best; ties share the better rank).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Ranks {
    /// By CIFAR-10 test accuracy.
    pub cifar10: usize,
    /// By CIFAR-100 test accuracy.
    pub cifar100: usize,
    /// By ImageNet16-120 test accuracy.
    pub imagenet16_120: usize,
}

impl Table {
    /// The table embedded in the binary.
    pub fn embedded() -> &'static Table {
        static T: OnceLock<Table> = OnceLock::new();
        T.get_or_init(|| {
            Table::from_gz(TABLE_GZ).expect("the embedded NAS-Bench-201 table is well formed")
        })
    }

    /// Decode a table file (gzip of the format in the module docs).
    pub fn from_gz(gz: &[u8]) -> Result<Table> {
        let bad = |message: String| Error::Data {
            path: "nb201_accuracy.bin.gz".into(),
            message,
        };
        let mut raw = Vec::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut raw)
            .map_err(|e| bad(format!("not a gzip stream: {e}")))?;
        if raw.len() != 8 + CELLS * 12 || &raw[..8] != MAGIC {
            return Err(bad(format!(
                "expected `NB201ACC` and {} bytes, found {} bytes",
                8 + CELLS * 12,
                raw.len()
            )));
        }
        let acc: Vec<[f64; 3]> = raw[8..]
            .chunks_exact(12)
            .map(|c| {
                let v = |i: usize| {
                    u32::from_le_bytes([c[4 * i], c[4 * i + 1], c[4 * i + 2], c[4 * i + 3]]) as f64
                        / 1e4
                };
                [v(0), v(1), v(2)]
            })
            .collect();
        let sorted = std::array::from_fn(|d| {
            let mut v: Vec<f64> = acc.iter().map(|a| a[d]).collect();
            v.sort_by(|a, b| b.total_cmp(a));
            v
        });
        Ok(Table { acc, sorted })
    }

    /// The benchmark's accuracies and ranks of `arch`.
    pub fn lookup(&self, arch: &Nb201Arch) -> Lookup {
        let a = self.acc[arch.base5_index()];
        // Number of cells strictly better, plus one.
        let rank = |d: usize| self.sorted[d].partition_point(|&x| x > a[d]) + 1;
        let rank = Ranks {
            cifar10: rank(0),
            cifar100: rank(1),
            imagenet16_120: rank(2),
        };
        Lookup {
            arch: arch.to_string(),
            cifar10: a[0],
            cifar100: a[1],
            imagenet16_120: a[2],
            rank,
        }
    }

    /// Mean accuracy over all cells per dataset (percent).
    pub fn mean(&self) -> [f64; 3] {
        std::array::from_fn(|d| self.acc.iter().map(|a| a[d]).sum::<f64>() / CELLS as f64)
    }
}

/// Build the table file from the CSV (`index,arch_string,cifar10_test,cifar100_test,imagenet16_test`,
/// one row per cell). Every architecture string is parsed; a missing or duplicated cell is an error.
pub fn table_from_csv(csv: &str, path: &std::path::Path) -> Result<Vec<u8>> {
    let bad = |line: usize, message: String| Error::Data {
        path: path.to_path_buf(),
        message: format!("line {line}: {message}"),
    };
    let mut cells: Vec<Option<[u32; 3]>> = vec![None; CELLS];
    for (i, line) in csv.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 5 {
            return Err(bad(i + 1, format!("expected 5 fields, found {}", f.len())));
        }
        let arch: Nb201Arch = f[1].parse().map_err(|e| bad(i + 1, format!("{e}")))?;
        let mut v = [0u32; 3];
        for d in 0..3 {
            let x: f64 = f[2 + d]
                .parse()
                .map_err(|_| bad(i + 1, format!("accuracy `{}` is not a number", f[2 + d])))?;
            if !(0.0..=100.0).contains(&x) {
                return Err(bad(i + 1, format!("accuracy {x} outside 0..100")));
            }
            v[d] = (x * 1e4).round() as u32;
        }
        let slot = &mut cells[arch.base5_index()];
        if slot.is_some() {
            return Err(bad(i + 1, format!("{arch} appears twice")));
        }
        *slot = Some(v);
    }
    let mut raw = MAGIC.to_vec();
    for (i, c) in cells.iter().enumerate() {
        let v = c.ok_or_else(|| Error::Data {
            path: path.to_path_buf(),
            message: format!("no row for the cell with base-5 index {i}"),
        })?;
        for x in v {
            raw.extend_from_slice(&x.to_le_bytes());
        }
    }
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    std::io::Write::write_all(&mut enc, &raw).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    enc.finish().map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acc(s: &str) -> Lookup {
        Table::embedded().lookup(&s.parse().unwrap())
    }

    #[test]
    fn spot_values_of_the_embedded_table() {
        let skip = acc(
            "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
        );
        assert_eq!(
            (skip.cifar10, skip.cifar100, skip.imagenet16_120),
            (54.2967, 15.6067, 16.3222)
        );
        assert_eq!(format!("{:.2}", skip.cifar10), "54.30");
        let best = acc(
            "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|",
        );
        assert_eq!(best.cifar10, 94.3733);
        assert_eq!(best.rank.cifar10, 1);
        let none = acc("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|");
        assert_eq!(none.cifar10, 10.0);
        assert!(none.rank.cifar10 > 15_000);
        let mean = Table::embedded().mean();
        assert!((mean[0] - 87.06).abs() < 0.01, "{mean:?}");
    }
}
