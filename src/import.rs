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

use crate::device;
use crate::error::{Error, Result};
use crate::run::SearchSettings;
use crate::rundir::{RunDir, RunStore, sha256_file, start_run};
use crate::search::Trainer;
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
#[derive(Clone, Debug)]
pub struct HostTensor {
    /// Shape, outermost first.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub data: Vec<f32>,
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
    let bytes = std::fs::read(path).map_err(|source| Error::Checkpoint {
        path: path.to_path_buf(),
        message: format!("cannot read the checkpoint file: {source}"),
    })?;
    let tensors = read_tensors(path, &bytes)?;
    load_reference_tensors(path, &tensors, cfg, device)
}

/// Check the checkpoint's input channels (`stem.0.weight` `[C_stem, channels, 3, 3]`) and classes
/// (`classifier.weight` `[classes, C]`) against the dataset the supernet is built for (`cfg`),
/// before any tensor is loaded: a mismatch names what the checkpoint expects and which
/// `--dataset` fits it.
fn check_images_and_classes(
    path: &Path,
    tensors: &BTreeMap<String, HostTensor>,
    cfg: &SupernetConfig,
) -> Result<()> {
    let dim = |name: &str, i: usize| tensors.get(name).and_then(|t| t.shape.get(i).copied());
    let channels = dim("stem.0.weight", 1);
    let classes = dim("classifier.weight", 0);
    let (want_c, want_k) = (
        channels.unwrap_or(cfg.in_channels),
        classes.unwrap_or(cfg.num_classes),
    );
    if (want_c, want_k) == (cfg.in_channels, cfg.num_classes) {
        return Ok(());
    }
    let fits: Vec<&str> = crate::data::DatasetName::ALL
        .iter()
        .filter(|d| d.channels_and_classes() == (want_c, want_k))
        .map(|d| d.as_str())
        .collect();
    let advice = match fits.as_slice() {
        [] => "no dataset darts-pt reads has that shape".to_string(),
        [one] => format!("pass --dataset {one}"),
        many => format!("pass --dataset with one of: {}", many.join(", ")),
    };
    Err(Error::Checkpoint {
        path: path.to_path_buf(),
        message: format!(
            "the checkpoint's supernet takes {want_c}-channel images and has {want_k} classes (`stem.0.weight`, `classifier.weight`), but the chosen dataset has {}-channel images and {} classes; {advice}",
            cfg.in_channels, cfg.num_classes
        ),
    })
}

/// Build a supernet from `cfg` on `device` and fill it (and α) from reference-named `tensors`
/// read from `path` (named in errors).
pub fn load_reference_tensors(
    path: &Path,
    tensors: &BTreeMap<String, HostTensor>,
    cfg: &SupernetConfig,
    device: &Device,
) -> Result<(Supernet, Alphas)> {
    check_images_and_classes(path, tensors, cfg)?;
    let net = Supernet::new(cfg, device)?;
    let mut loader = Loader {
        path: Vec::new(),
        tensors,
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

/// What a darts-pt search checkpoint (`torch.save` of the dict `train_search.py` writes) holds,
/// besides the network weights and α.
#[derive(Clone, Debug, Default)]
pub struct ReferenceCheckpoint {
    /// `epoch` of the checkpoint (epochs completed), when the file has it.
    pub epoch: Option<usize>,
    /// α's Adam state per α tensor (normal, then reduce): (step, exp_avg, exp_avg_sq), flattened.
    pub adam: Vec<(u64, Vec<f32>, Vec<f32>)>,
}

fn to_f32(name: &str, t: &pytorch_reader::Tensor, path: &Path) -> Result<Option<HostTensor>> {
    use pytorch_reader::DType;
    let bytes = t.read().map_err(|e| Error::Checkpoint {
        path: path.to_path_buf(),
        message: format!("cannot read tensor `{name}`: {e}"),
    })?;
    let data: Vec<f32> = match t.dtype() {
        DType::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        DType::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_ne_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
        _ => return Ok(None),
    };
    Ok(Some(HostTensor {
        shape: t.shape().to_vec(),
        data,
    }))
}

use burn::store::pytorch_reader;

/// Read a darts-pt search checkpoint (`.pt` / `.pth.tar`, PyTorch's zip or legacy pickle format)
/// through Burn's PyTorch reader: the `state_dict` tensors under their state-dict names, the
/// `alpha` list as `arch.alpha` (NB201) or `arch.alphas_normal` / `arch.alphas_reduce`, and the
/// α optimizer's Adam state. The SGD state is not read (PT re-creates that optimizer, spec §3.4).
pub fn read_reference_pt(
    path: &Path,
    space: &SearchSpace,
) -> Result<(BTreeMap<String, HostTensor>, ReferenceCheckpoint)> {
    let bad = |message: String| Error::Checkpoint {
        path: path.to_path_buf(),
        message,
    };
    if !path.is_file() {
        return Err(bad("checkpoint file not found".into()));
    }
    let reader = pytorch_reader::PytorchReader::new(path).map_err(|e| {
        bad(format!(
            "not a readable PyTorch checkpoint (truncated, or not written by torch.save?): {e}"
        ))
    })?;
    let alpha_names: Vec<&str> = match space.family {
        crate::space::Family::Nb201 => vec!["arch.alpha"],
        crate::space::Family::Darts => vec!["arch.alphas_normal", "arch.alphas_reduce"],
    };
    let mut tensors = BTreeMap::new();
    let mut adam: BTreeMap<usize, (u64, Vec<f32>, Vec<f32>)> = BTreeMap::new();
    let mut names = reader.keys();
    names.sort();
    let has_state_dict = names.iter().any(|n| n.starts_with("state_dict."));
    for name in &names {
        let t = reader.get(name).expect("listed key");
        if let Some(rest) = name.strip_prefix("state_dict.") {
            if let Some(h) = to_f32(name, t, path)? {
                tensors.insert(rest.to_string(), h);
            }
        } else if let Some(j) = name.strip_prefix("alpha.") {
            let j: usize = j
                .parse()
                .map_err(|_| bad(format!("unexpected α entry `{name}`")))?;
            let target = alpha_names.get(j).ok_or_else(|| {
                bad(format!(
                    "the checkpoint has more α tensors than space `{}` ({})",
                    space.name,
                    alpha_names.len()
                ))
            })?;
            if let Some(h) = to_f32(name, t, path)? {
                tensors.insert(target.to_string(), h);
            }
        } else if let Some(rest) = name.strip_prefix("arch_optimizer.state.") {
            let mut parts = rest.splitn(2, '.');
            let (Some(j), Some(field)) = (parts.next(), parts.next()) else {
                continue;
            };
            let Ok(j) = j.parse::<usize>() else { continue };
            let entry = adam.entry(j).or_default();
            match field {
                "step" => {
                    if let Some(h) = to_f32(name, t, path)? {
                        entry.0 = h.data.first().copied().unwrap_or(0.0) as u64;
                    }
                }
                "exp_avg" => entry.1 = to_f32(name, t, path)?.map_or(Vec::new(), |h| h.data),
                "exp_avg_sq" => entry.2 = to_f32(name, t, path)?.map_or(Vec::new(), |h| h.data),
                _ => {}
            }
        } else if !has_state_dict {
            // A bare state dict (`torch.save(model.state_dict())`).
            if let Some(h) = to_f32(name, t, path)? {
                tensors.insert(name.clone(), h);
            }
        }
    }
    if tensors.is_empty() {
        return Err(bad(
            "no `state_dict` tensors found; expected a darts-pt search checkpoint".into(),
        ));
    }
    // Adam's `step` is a plain number in checkpoints of older PyTorch versions.
    let mut epoch = None;
    if let Ok(pytorch_reader::PickleValue::Dict(root)) =
        pytorch_reader::PytorchReader::read_pickle_data(path, None)
    {
        if let Some(pytorch_reader::PickleValue::Int(e)) = root.get("epoch") {
            epoch = usize::try_from(*e).ok();
        }
        if let Some(pytorch_reader::PickleValue::Dict(opt)) = root.get("arch_optimizer")
            && let Some(pytorch_reader::PickleValue::Dict(state)) = opt.get("state")
        {
            for (j, v) in state {
                if let (Ok(j), pytorch_reader::PickleValue::Dict(fields)) = (j.parse::<usize>(), v)
                {
                    let step = match fields.get("step") {
                        Some(pytorch_reader::PickleValue::Int(s)) => Some(*s as u64),
                        Some(pytorch_reader::PickleValue::Float(s)) => Some(*s as u64),
                        _ => None,
                    };
                    if let (Some(step), Some(entry)) = (step, adam.get_mut(&j)) {
                        entry.0 = step;
                    }
                }
            }
        }
    }
    let adam = adam
        .into_values()
        .filter(|(_, m, v)| !m.is_empty() && m.len() == v.len())
        .collect();
    Ok((tensors, ReferenceCheckpoint { epoch, adam }))
}

/// Read weights, α (and, for `.pt` files, α's Adam state) of a reference supernet from a
/// darts-pt checkpoint (`.pt`, `.pth`, `.tar`) or a safetensors file (by extension).
pub fn load_reference_checkpoint(
    path: &Path,
    cfg: &SupernetConfig,
    device: &Device,
) -> Result<(Supernet, Alphas, ReferenceCheckpoint)> {
    let is_safetensors = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("safetensors"));
    if is_safetensors {
        let (net, alphas) = load_reference_safetensors(path, cfg, device)?;
        Ok((net, alphas, ReferenceCheckpoint::default()))
    } else {
        let space = SearchSpace::new(cfg.space);
        // Burn's PyTorch reader can panic on a malformed file: that is an error about the file.
        let read = std::panic::catch_unwind(|| read_reference_pt(path, &space));
        let (tensors, ck) = read.unwrap_or_else(|_| {
            Err(Error::Checkpoint {
                path: path.to_path_buf(),
                message: "not a readable PyTorch checkpoint (Burn's PyTorch reader failed on it)"
                    .into(),
            })
        })?;
        let (net, alphas) = load_reference_tensors(path, &tensors, cfg, device)?;
        Ok((net, alphas, ck))
    }
}
/// Turn a darts-pt search checkpoint (`.pt` as `train_search.py` writes it, or safetensors) into
/// a run directory at `run_dir`, as if our search had produced it: `config.toml` (with `epochs`
/// set to the checkpoint's epoch when it has one), `manifest.json` naming the source file and its
/// sha256, the supernet, α and α's Adam state as the final checkpoint, and
/// `genotype_magnitude.txt`. `darts-pt select` then works on it. The dataset must be present (PT
/// scores on its validation half). Returns the magnitude genotype. Native only.
pub fn import_reference(
    checkpoint: &Path,
    settings: &SearchSettings,
    run_dir: &Path,
) -> Result<String> {
    let mut settings = settings.clone();
    settings.validate()?;
    (settings.data_dir, settings.data_dir_typed) =
        crate::run::absolute_data_dir(&settings.data_dir);
    let store = RunDir::new(run_dir);
    if store.holds_run() {
        return Err(Error::Config {
            field: "out".into(),
            message: format!(
                "{} already holds a run; choose another directory",
                run_dir.display()
            ),
        });
    }
    let (ds, n, _) = crate::run::open_dataset(&settings)?;
    let cfg = settings.supernet_config(&ds);
    cfg.validate()?;
    let dev = device::open(settings.device)?;
    let device = dev.device.clone().autodiff();
    let (net, alphas, ck) = load_reference_checkpoint(checkpoint, &cfg, &dev.device)?;
    if let Some(e) = ck.epoch {
        settings.epochs = e.max(1);
    }
    let mut trainer = Trainer::new(
        net.fork(&device).train(),
        alphas.fork(&device).train(),
        settings.method,
        settings.second_order,
        settings.hyper.clone(),
    );
    let space = SearchSpace::new(settings.space);
    for (cell, (_, m, v)) in trainer.alphas.cell_types().into_iter().zip(&ck.adam) {
        let [e, o] = space.alpha_shape(cell);
        if m.len() != e * o || v.len() != e * o {
            return Err(Error::Checkpoint {
                path: checkpoint.to_path_buf(),
                message: format!(
                    "the α optimizer's state for the {} cell has {} values, expected {} ({e} edges x {o} ops)",
                    cell.name(),
                    m.len(),
                    e * o
                ),
            });
        }
    }
    for (cell, (steps, m, v)) in trainer.alphas.cell_types().into_iter().zip(&ck.adam) {
        let t = |d: &Vec<f32>| {
            Tensor::<1>::from_data(TensorData::new(d.clone(), [d.len()]), &dev.device)
        };
        trainer
            .adam
            .state
            .insert(cell.name().to_string(), (*steps, t(m), t(v)));
    }
    start_run(
        &store,
        &settings,
        settings.device,
        &dev.description,
        settings.seed,
        settings.dataset,
        n,
        serde_json::json!({
            "imported_from": {
            "path": checkpoint.display().to_string(),
            "sha256": sha256_file(checkpoint)?,
            "epoch": ck.epoch,
            "adam_state": !ck.adam.is_empty(),
        }
        }),
    )?;
    store.save_checkpoint(
        RunDir::CHECKPOINTS,
        &format!("epoch-{:04}", settings.epochs),
        settings.epochs,
        &trainer,
        &[],
    )?;
    let probs = crate::engine::block_on(crate::run::probs_rows(&trainer.alphas))?;
    let genotype = crate::run::magnitude_genotype(settings.space, &probs);
    store.write(
        RunDir::GENOTYPE_MAGNITUDE,
        format!("{genotype}\n").as_bytes(),
    )?;
    Ok(genotype)
}
