//! Parameter counts, α shapes and op lists of a supernet (`darts-pt info`).

use burn::tensor::Device;
use serde::Serialize;

use crate::error::Result;
use crate::space::{CellType, SearchSpace, SpaceName};
use crate::supernet::{Supernet, SupernetConfig};

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
