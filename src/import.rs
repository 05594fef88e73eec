//! Loading supernet weights saved by the reference code (ruocwang/darts-pt) from safetensors.
//!
//! Every tensor of our supernet is looked up under its PyTorch state-dict name (layout in the
//! fixtures' README): a tensor that is missing, of the wrong shape, or left over in the file is an
//! error that lists them all. α is read from `arch.alpha` (NB201) or `arch.alphas_normal` /
//! `arch.alphas_reduce` (DARTS-like spaces). `num_batches_tracked` buffers are not used.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::space::{SearchSpace, nb201_edge_endpoints};
use crate::supernet::{Alphas, Supernet, SupernetConfig};

/// Translate our module path (as Burn's visitor reports it) into the reference's state-dict name.
/// Returns `None` for a path this crate does not know how to map (a bug, reported as an error).
pub fn reference_name(path: &[String]) -> Option<String> {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let bn_leaf = |leaf: &str| leaf.to_string();
    let out = match p.as_slice() {
        [_, "stem_conv", "weight"] => "stem.0.weight".to_string(),
        [_, "stem_bn", leaf] => format!("stem.1.{}", bn_leaf(leaf)),
        ["Nb201", "lastact_bn", leaf] => format!("lastact.0.{leaf}"),
        [_, "classifier", leaf] => format!("classifier.{leaf}"),
        // DARTS cells.
        ["Darts", "cells", i, "preprocess0", "ReluConvBn", rest @ ..] => {
            format!("cells.{i}.preprocess0.{}", relu_conv_bn(rest)?)
        }
        [
            "Darts",
            "cells",
            i,
            "preprocess0",
            "FactorizedReduce",
            rest @ ..,
        ] => {
            format!("cells.{i}.preprocess0.{}", rest.join("."))
        }
        ["Darts", "cells", i, "preprocess1", rest @ ..] => {
            format!("cells.{i}.preprocess1.{}", relu_conv_bn(rest)?)
        }
        [
            "Darts",
            "cells",
            i,
            "edges",
            e,
            "ops",
            k,
            variant,
            rest @ ..,
        ] => {
            format!("cells.{i}._ops.{e}._ops.{k}.{}", op_tail(variant, rest)?)
        }
        // NAS-Bench-201 cells and reduction blocks.
        [
            "Nb201",
            "cells",
            i,
            "Cell",
            "edges",
            e,
            "ops",
            k,
            variant,
            rest @ ..,
        ] => {
            let (from, to) = *nb201_edge_endpoints().get(e.parse::<usize>().ok()?)?;
            format!(
                "cells.{i}.edges.{to}<-{from}.{k}.{}",
                op_tail(variant, rest)?
            )
        }
        [
            "Nb201",
            "cells",
            i,
            "Reduction",
            conv @ ("conv_a" | "conv_b"),
            rest @ ..,
        ] => {
            format!("cells.{i}.{conv}.{}", relu_conv_bn(rest)?)
        }
        ["Nb201", "cells", i, "Reduction", "downsample", "weight"] => {
            format!("cells.{i}.downsample.1.weight")
        }
        _ => return None,
    };
    Some(out)
}

/// `conv.weight` → `op.1.weight`, `bn.x` → `op.2.x` (PyTorch `ReLUConvBN`).
fn relu_conv_bn(rest: &[&str]) -> Option<String> {
    match rest {
        ["conv", leaf] => Some(format!("op.1.{leaf}")),
        ["bn", leaf] => Some(format!("op.2.{leaf}")),
        _ => None,
    }
}

/// The part of a candidate op's name below `_ops.{k}.` (DARTS) or `{k}.` (NB201).
fn op_tail(variant: &str, rest: &[&str]) -> Option<String> {
    match (variant, rest) {
        // Pool followed by BN(affine=False): nn.Sequential(pool, bn) → `1.*`.
        ("Pool", ["bn", leaf]) => Some(format!("1.{leaf}")),
        ("FactorizedReduce", rest) => Some(rest.join(".")),
        ("ReluConvBn", rest) => relu_conv_bn(rest),
        ("DilConv", [part, leaf]) => {
            let idx = match *part {
                "depthwise" => 1,
                "pointwise" => 2,
                "bn" => 3,
                _ => return None,
            };
            Some(format!("op.{idx}.{leaf}"))
        }
        ("SepConv", [block, part, leaf]) => {
            let base = match *block {
                "first" => 0,
                "second" => 4,
                _ => return None,
            };
            let idx = match *part {
                "depthwise" => 1,
                "pointwise" => 2,
                "bn" => 3,
                _ => return None,
            };
            Some(format!("op.{}.{leaf}", base + idx))
        }
        _ => None,
    }
}

/// A float tensor read from the file, converted to f32.
struct HostTensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

fn read_tensors(path: &Path, bytes: &[u8]) -> Result<BTreeMap<String, HostTensor>> {
    let bad = |message: String| Error::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        let data = match view.dtype() {
            Dtype::F32 => view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::F64 => view
                .data()
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
                .collect(),
            // Integer buffers (`num_batches_tracked`) are not used by the model.
            _ => continue,
        };
        out.insert(
            name.to_string(),
            HostTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}

/// Loads the reference's safetensors weights into a supernet (built on `device`).
struct Loader<'a> {
    path: Vec<String>,
    tensors: &'a BTreeMap<String, HostTensor>,
    used: BTreeSet<String>,
    problems: Vec<String>,
}

impl ModuleMapper for Loader<'_> {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let Some(name) = reference_name(&self.path) else {
            self.problems.push(format!(
                "no reference name for our tensor `{}`",
                self.path.join(".")
            ));
            return param;
        };
        let Some(t) = self.tensors.get(&name) else {
            self.problems.push(format!("missing tensor `{name}`"));
            return param;
        };
        self.used.insert(name.clone());
        let ours = param.lazy_shape().dims::<D>().to_vec();
        // PyTorch's Linear weight is [out, in]; Burn's is [in, out].
        let linear = name == "classifier.weight";
        let expected: Vec<usize> = if linear {
            ours.iter().rev().copied().collect()
        } else {
            ours.clone()
        };
        if t.shape != expected {
            self.problems.push(format!(
                "tensor `{name}` has shape {:?}, expected {:?}",
                t.shape, expected
            ));
            return param;
        }
        let data = t.data.clone();
        let shape = t.shape.clone();
        param.map(move |old| {
            let require_grad = old.is_require_grad();
            let device = old.device();
            let mut value = Tensor::<D>::from_data(TensorData::new(data, shape), &device);
            if linear {
                value = value.transpose();
            }
            value.set_require_grad(require_grad)
        })
    }
}

/// Read a reference supernet and its α from a safetensors file written from a darts-pt
/// checkpoint (state-dict names, α under `arch.*`), into a supernet built from `cfg` on `device`.
///
/// Errors name the file and list every missing, mis-shaped or unexpected tensor.
pub fn load_reference_safetensors(
    path: &Path,
    cfg: &SupernetConfig,
    device: &Device,
) -> Result<(Supernet, Alphas)> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let tensors = read_tensors(path, &bytes)?;
    let net = Supernet::new(cfg, device)?;
    let mut loader = Loader {
        path: Vec::new(),
        tensors: &tensors,
        used: BTreeSet::new(),
        problems: Vec::new(),
    };
    let net = net.map(&mut loader);

    let space = SearchSpace::new(cfg.space);
    let alpha_names: Vec<(&str, [usize; 2])> = match space.family {
        crate::space::Family::Nb201 => vec![(
            "arch.alpha",
            space.alpha_shape(crate::space::CellType::Normal),
        )],
        crate::space::Family::Darts => vec![
            (
                "arch.alphas_normal",
                space.alpha_shape(crate::space::CellType::Normal),
            ),
            (
                "arch.alphas_reduce",
                space.alpha_shape(crate::space::CellType::Reduce),
            ),
        ],
    };
    let mut rows = Vec::new();
    for (name, shape) in &alpha_names {
        match tensors.get(*name) {
            None => loader.problems.push(format!("missing α tensor `{name}`")),
            Some(t) if t.shape != shape.to_vec() => loader.problems.push(format!(
                "α tensor `{name}` has shape {:?}, expected {:?}",
                t.shape, shape
            )),
            Some(t) => {
                loader.used.insert(name.to_string());
                rows.push(
                    t.data
                        .chunks(shape[1])
                        .map(<[f32]>::to_vec)
                        .collect::<Vec<_>>(),
                );
            }
        }
    }
    let unused: Vec<&String> = tensors
        .keys()
        .filter(|k| !loader.used.contains(*k))
        .collect();
    if !unused.is_empty() {
        let shown: Vec<&str> = unused.iter().take(10).map(|s| s.as_str()).collect();
        loader.problems.push(format!(
            "{} unexpected tensor(s) for space `{}`: {}{}",
            unused.len(),
            cfg.space,
            shown.join(", "),
            if unused.len() > 10 { ", …" } else { "" }
        ));
    }
    if !loader.problems.is_empty() {
        return Err(Error::Checkpoint {
            path: path.to_path_buf(),
            message: loader.problems.join("; "),
        });
    }
    let alphas = Alphas::from_rows(&rows[0], rows.get(1).map(Vec::as_slice), device);
    Ok((net, alphas))
}
