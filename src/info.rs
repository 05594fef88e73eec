//! Parameter counts, α shapes, op lists and multiply-adds of a supernet (`darts-pt info`,
//! `darts-pt bench`).

use burn::tensor::Device;
use serde::Serialize;

use crate::error::Result;
use crate::ops::conv_macs;
use crate::space::{CellType, SearchSpace, SpaceName};
use crate::supernet::{Nb201Layer, Preprocess, Supernet, SupernetConfig};

/// Op names of a space: one list when every edge has the same ops, otherwise per cell type and
/// edge (RobustDARTS S1), as in the reference's `params.json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum OpNames {
    /// Same ops on every edge.
    Uniform(Vec<String>),
    /// `normal` / `reduce` → per-edge op lists.
    PerEdge {
        /// Normal cell, per edge.
        normal: Vec<Vec<String>>,
        /// Reduction cell, per edge.
        reduce: Vec<Vec<String>>,
    },
}

/// What `darts-pt info` reports (keys of `--json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SupernetInfo {
    /// The supernet's configuration.
    pub config: SupernetConfig,
    /// Learnable network weights (α and BN running statistics excluded).
    pub params: usize,
    /// Number of α entries over all cell types.
    pub alpha_elements: usize,
    /// α shapes `[edges, ops]`, normal first.
    pub alpha_shapes: Vec<[usize; 2]>,
    /// Candidate ops in α-column order.
    pub op_names: OpNames,
}

/// Describe the supernet of `cfg` (built lazily on the CPU; no weights are initialised).
pub fn supernet_info(cfg: &SupernetConfig) -> Result<SupernetInfo> {
    let space = SearchSpace::new(cfg.space);
    let net = Supernet::new(cfg, &Device::flex())?;
    let names = |edges: &[crate::space::Edge]| -> Vec<Vec<String>> {
        edges
            .iter()
            .map(|e| e.ops.iter().map(|o| o.name().to_string()).collect())
            .collect()
    };
    // RobustDARTS spaces are per-edge op lists in the reference (even S2-S4, where every edge
    // has the same pair), the others one list.
    let robust = matches!(
        cfg.space,
        SpaceName::S1 | SpaceName::S2 | SpaceName::S3 | SpaceName::S4
    );
    let op_names = match space.uniform_ops() {
        Some(ops) if !robust => {
            OpNames::Uniform(ops.iter().map(|o| o.name().to_string()).collect())
        }
        _ => OpNames::PerEdge {
            normal: names(&space.normal),
            reduce: names(&space.reduce),
        },
    };
    Ok(SupernetInfo {
        config: cfg.clone(),
        params: net.learnable_params(),
        alpha_elements: space.alpha_elements(),
        alpha_shapes: space
            .cell_types()
            .iter()
            .map(|&c: &CellType| space.alpha_shape(c))
            .collect(),
        op_names,
    })
}

/// Multiply-adds of one supernet forward pass for one image of `input_size`×`input_size` pixels,
/// counting every candidate op of every edge (as the reference's forward computes them, whatever
/// the mixing weights): stem, DARTS preprocessing, NB201 residual blocks, candidate ops and
/// classifier. Only convolutions and the linear classifier count (pools, BatchNorm, element-wise
/// ops and the mixing sums are 0), so `2 × batch ×` this is what `torch.utils.flop_counter`
/// reports for a batch. Reads shapes only: works on a supernet whose weights are not initialised.
pub fn supernet_macs(net: &Supernet, input_size: usize) -> u64 {
    let linear = |l: &burn::nn::Linear| {
        let [i, o] = l.weight.lazy_shape().dims::<2>();
        (i * o) as u64
    };
    match net {
        Supernet::Darts(n) => {
            let mut total = conv_macs(&n.stem_conv, input_size * input_size);
            // s1's size is the cell's input size; s0 is twice as large after a reduction cell.
            let (mut size, mut prev_size) = (input_size, input_size);
            for cell in &n.cells {
                let pre0 = match &cell.preprocess0 {
                    Preprocess::ReluConvBn(p) => p.macs(prev_size * prev_size),
                    Preprocess::FactorizedReduce(p) => p.macs(size * size),
                };
                let out = if cell.reduction {
                    size.div_ceil(2)
                } else {
                    size
                };
                let ops: u64 = cell
                    .edges
                    .iter()
                    .flat_map(|e| &e.ops)
                    .map(|o| o.macs(out * out))
                    .sum();
                total += pre0 + cell.preprocess1.macs(size * size) + ops;
                prev_size = size;
                size = out;
            }
            total + linear(&n.classifier)
        }
        Supernet::Nb201(n) => {
            let mut size = input_size;
            let mut total = conv_macs(&n.stem_conv, size * size);
            for layer in &n.cells {
                match layer {
                    Nb201Layer::Cell(cell) => {
                        total += cell
                            .edges
                            .iter()
                            .flat_map(|e| &e.ops)
                            .map(|o| o.macs(size * size))
                            .sum::<u64>();
                    }
                    Nb201Layer::Reduction(b) => {
                        size = size.div_ceil(2);
                        let px = size * size;
                        total +=
                            b.conv_a.macs(px) + b.conv_b.macs(px) + conv_macs(&b.downsample, px);
                    }
                }
            }
            total + linear(&n.classifier)
        }
    }
}
