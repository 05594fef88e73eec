//! Search spaces: candidate operations, per-edge op lists and cell topologies.
//!
//! A space is plain data (spec §1): for every cell type an ordered list of edges, and for every
//! edge the ordered list of candidate ops. The column order of α is the op order of the edge, the
//! row order of α is the edge order, both exactly as in the reference code so that checkpoints and
//! genotypes line up.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A candidate operation, spelled exactly as DARTS / NAS-Bench-201 spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum OpKind {
    /// `none`: zero output (strided subsampling first when the edge has stride 2).
    #[serde(rename = "none")]
    None,
    /// `noise`: fresh N(0, 1) noise of the output shape (RobustDARTS S4).
    #[serde(rename = "noise")]
    Noise,
    /// `skip_connect`: identity, or FactorizedReduce on a stride-2 DARTS edge.
    #[serde(rename = "skip_connect")]
    SkipConnect,
    /// `max_pool_3x3`: 3×3 max pooling, padding 1.
    #[serde(rename = "max_pool_3x3")]
    MaxPool3x3,
    /// `avg_pool_3x3`: 3×3 average pooling, padding 1, `count_include_pad = false`.
    #[serde(rename = "avg_pool_3x3")]
    AvgPool3x3,
    /// `sep_conv_3x3`: two stacked ReLU-depthwise-pointwise-BN blocks.
    #[serde(rename = "sep_conv_3x3")]
    SepConv3x3,
    /// `sep_conv_5x5`.
    #[serde(rename = "sep_conv_5x5")]
    SepConv5x5,
    /// `dil_conv_3x3`: ReLU, depthwise 3×3 with dilation 2, pointwise, BN.
    #[serde(rename = "dil_conv_3x3")]
    DilConv3x3,
    /// `dil_conv_5x5`.
    #[serde(rename = "dil_conv_5x5")]
    DilConv5x5,
    /// `nor_conv_1x1`: ReLU-Conv-BN with a 1×1 kernel (NAS-Bench-201).
    #[serde(rename = "nor_conv_1x1")]
    NorConv1x1,
    /// `nor_conv_3x3`: ReLU-Conv-BN with a 3×3 kernel (NAS-Bench-201).
    #[serde(rename = "nor_conv_3x3")]
    NorConv3x3,
}

impl OpKind {
    /// Every op this crate knows.
    pub const ALL: [OpKind; 11] = [
        OpKind::None,
        OpKind::Noise,
        OpKind::SkipConnect,
        OpKind::MaxPool3x3,
        OpKind::AvgPool3x3,
        OpKind::SepConv3x3,
        OpKind::SepConv5x5,
        OpKind::DilConv3x3,
        OpKind::DilConv5x5,
        OpKind::NorConv1x1,
        OpKind::NorConv3x3,
    ];

    /// The reference's name of the op.
    pub fn name(self) -> &'static str {
        match self {
            OpKind::None => "none",
            OpKind::Noise => "noise",
            OpKind::SkipConnect => "skip_connect",
            OpKind::MaxPool3x3 => "max_pool_3x3",
            OpKind::AvgPool3x3 => "avg_pool_3x3",
            OpKind::SepConv3x3 => "sep_conv_3x3",
            OpKind::SepConv5x5 => "sep_conv_5x5",
            OpKind::DilConv3x3 => "dil_conv_3x3",
            OpKind::DilConv5x5 => "dil_conv_5x5",
            OpKind::NorConv1x1 => "nor_conv_1x1",
            OpKind::NorConv3x3 => "nor_conv_3x3",
        }
    }

    /// Whether the op has no learnable weights (pools, skip, none, noise).
    pub fn is_parameter_free(self) -> bool {
        matches!(
            self,
            OpKind::None
                | OpKind::Noise
                | OpKind::SkipConnect
                | OpKind::MaxPool3x3
                | OpKind::AvgPool3x3
        )
    }
}

impl fmt::Display for OpKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for OpKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OpKind::ALL
            .iter()
            .copied()
            .find(|op| op.name() == s)
            .ok_or_else(|| Error::UnknownOp {
                name: s.to_string(),
                expected: OpKind::ALL
                    .iter()
                    .map(|o| o.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

/// The two cell types of a DARTS-like supernet. NAS-Bench-201 has only `Normal`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellType {
    /// Normal cell (stride 1).
    Normal,
    /// Reduction cell (stride 2 on the edges from the cell inputs).
    Reduce,
}

impl CellType {
    /// `"normal"` or `"reduce"`.
    pub fn name(self) -> &'static str {
        match self {
            CellType::Normal => "normal",
            CellType::Reduce => "reduce",
        }
    }

    /// Index into per-cell-type arrays (normal 0, reduce 1).
    pub fn index(self) -> usize {
        match self {
            CellType::Normal => 0,
            CellType::Reduce => 1,
        }
    }
}

impl fmt::Display for CellType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which skeleton the space's supernet uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// DARTS cells: two inputs, four intermediate nodes, 14 edges, normal and reduction cells
    /// (spec §1.1).
    Darts,
    /// NAS-Bench-201 cells: one input, three nodes, 6 edges, one shared α (spec §1.3).
    Nb201,
}

/// The named spaces of the CLI (`--space`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SpaceName {
    /// DARTS space as darts-pt uses it (`s5`): 7 ops, no `none`.
    Darts,
    /// Original DARTS 8-op space (quark0/darts), `none` at index 0.
    Darts8,
    /// NAS-Bench-201: 5 ops on 6 edges.
    Nb201,
    /// RobustDARTS S1: per-edge pairs, different in normal and reduce cells.
    S1,
    /// RobustDARTS S2: {skip_connect, sep_conv_3x3} on every edge.
    S2,
    /// RobustDARTS S3: {none, skip_connect, sep_conv_3x3} on every edge.
    S3,
    /// RobustDARTS S4: {noise, sep_conv_3x3} on every edge.
    S4,
}

impl SpaceName {
    /// Every named space.
    pub const ALL: [SpaceName; 7] = [
        SpaceName::Darts,
        SpaceName::Darts8,
        SpaceName::Nb201,
        SpaceName::S1,
        SpaceName::S2,
        SpaceName::S3,
        SpaceName::S4,
    ];

    /// The CLI spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SpaceName::Darts => "darts",
            SpaceName::Darts8 => "darts8",
            SpaceName::Nb201 => "nb201",
            SpaceName::S1 => "s1",
            SpaceName::S2 => "s2",
            SpaceName::S3 => "s3",
            SpaceName::S4 => "s4",
        }
    }
}

impl fmt::Display for SpaceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SpaceName {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SpaceName::ALL
            .iter()
            .copied()
            .find(|n| n.as_str() == s)
            .ok_or_else(|| Error::Config {
                field: "space".into(),
                message: format!(
                    "unknown space `{s}`; expected one of darts, darts8, nb201, s1, s2, s3, s4"
                ),
            })
    }
}

/// One edge of a cell: where it comes from, where it goes, and its candidate ops.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Edge {
    /// Input state index. DARTS: 0 = s0 (cell k-2), 1 = s1 (cell k-1), 2.. = intermediate nodes.
    /// NB201: node index 0..2.
    pub from: usize,
    /// Destination node. DARTS: intermediate node 0..3. NB201: node 1..3.
    pub to: usize,
    /// Candidate ops in α-column order.
    pub ops: Vec<OpKind>,
}

/// A search space: per cell type, the edges and their candidate ops.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchSpace {
    /// The CLI name.
    pub name: SpaceName,
    /// Which supernet skeleton.
    pub family: Family,
    /// Edges of the normal cell in α-row order.
    pub normal: Vec<Edge>,
    /// Edges of the reduction cell in α-row order (empty for NB201).
    pub reduce: Vec<Edge>,
}

/// darts-pt's DARTS op list (`s5`, spec §1.1): no `none`.
pub const DARTS_OPS: [OpKind; 7] = [
    OpKind::MaxPool3x3,
    OpKind::AvgPool3x3,
    OpKind::SkipConnect,
    OpKind::SepConv3x3,
    OpKind::SepConv5x5,
    OpKind::DilConv3x3,
    OpKind::DilConv5x5,
];

/// The original DARTS op list (quark0/darts `PRIMITIVES`).
pub const DARTS8_OPS: [OpKind; 8] = [
    OpKind::None,
    OpKind::MaxPool3x3,
    OpKind::AvgPool3x3,
    OpKind::SkipConnect,
    OpKind::SepConv3x3,
    OpKind::SepConv5x5,
    OpKind::DilConv3x3,
    OpKind::DilConv5x5,
];

/// NAS-Bench-201's op list in α-column order (spec §1.3).
pub const NB201_OPS: [OpKind; 5] = [
    OpKind::None,
    OpKind::SkipConnect,
    OpKind::NorConv1x1,
    OpKind::NorConv3x3,
    OpKind::AvgPool3x3,
];

/// Intermediate nodes of a DARTS cell.
pub const DARTS_STEPS: usize = 4;

/// Number of edges of a DARTS cell (2 + 3 + 4 + 5).
pub const DARTS_EDGES: usize = 14;

/// The DARTS nodes with a topology decision, as (node, first edge, edge count): intermediate nodes
/// 1, 2, 3 with edges [2,3,4], [5..8], [9..13] (`nid2eids` of the reference, spec §3.1).
pub fn darts_topology_nodes() -> Vec<(usize, Vec<usize>)> {
    (1..DARTS_STEPS)
        .map(|node| {
            let start = darts_node_first_edge(node);
            (node, (start..start + node + 2).collect())
        })
        .collect()
}

/// Index of the first edge of DARTS intermediate node `node` (0, 2, 5, 9).
pub fn darts_node_first_edge(node: usize) -> usize {
    (0..node).map(|i| i + 2).sum()
}

/// `(from, to)` of the 14 DARTS edges in α-row order.
pub fn darts_edge_endpoints() -> Vec<(usize, usize)> {
    let mut v = Vec::with_capacity(DARTS_EDGES);
    for node in 0..DARTS_STEPS {
        for from in 0..node + 2 {
            v.push((from, node));
        }
    }
    v
}

/// `(from, to)` of the 6 NB201 edges in α-row order: sorted keys `1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2`.
pub fn nb201_edge_endpoints() -> Vec<(usize, usize)> {
    let mut v = Vec::new();
    for to in 1..4 {
        for from in 0..to {
            v.push((from, to));
        }
    }
    v
}

use OpKind::{
    AvgPool3x3 as AVG, DilConv3x3 as DIL3, DilConv5x5 as DIL5, MaxPool3x3 as MAX,
    SepConv3x3 as SEP3, SkipConnect as SKIP,
};

/// RobustDARTS S1 normal cell op pairs per edge (spec §1.2; order = α column order).
const S1_NORMAL: [[OpKind; 2]; 14] = [
    [SKIP, DIL3],
    [SKIP, DIL5],
    [SKIP, DIL5],
    [SKIP, SEP3],
    [SKIP, DIL3],
    [MAX, SKIP],
    [SKIP, SEP3],
    [SKIP, SEP3],
    [SKIP, DIL3],
    [SKIP, SEP3],
    [MAX, SKIP],
    [SKIP, DIL3],
    [DIL3, DIL5],
    [DIL3, DIL5],
];

/// RobustDARTS S1 reduction cell op pairs per edge.
const S1_REDUCE: [[OpKind; 2]; 14] = [
    [MAX, AVG],
    [MAX, DIL3],
    [MAX, AVG],
    [MAX, AVG],
    [SKIP, DIL5],
    [MAX, AVG],
    [MAX, SEP3],
    [SKIP, DIL3],
    [SKIP, DIL5],
    [MAX, AVG],
    [MAX, AVG],
    [SKIP, DIL5],
    [SKIP, DIL5],
    [SKIP, DIL5],
];

impl SearchSpace {
    /// Edge `e` of `cell` as the field writes it: `c_{k-2} -> 0`, `c_{k-1} -> 0`, `0 -> 1` (DARTS
    /// cells: the two cell inputs, then intermediate nodes 0..3), or `0 -> 1` between
    /// NAS-Bench-201 nodes 0..3. The arrow is ASCII: the app's default font has no `→`.
    pub fn edge_label(&self, cell: CellType, e: usize) -> String {
        let edge = &self.edges(cell)[e];
        match self.family {
            Family::Darts => {
                let from = match edge.from {
                    0 => "c_{k-2}".to_string(),
                    1 => "c_{k-1}".to_string(),
                    j => (j - 2).to_string(),
                };
                format!("{from} -> {}", edge.to)
            }
            Family::Nb201 => format!("{} -> {}", edge.from, edge.to),
        }
    }

    /// Build a named space.
    pub fn new(name: SpaceName) -> Self {
        let darts_cell = |ops_of: &dyn Fn(usize) -> Vec<OpKind>| -> Vec<Edge> {
            darts_edge_endpoints()
                .into_iter()
                .enumerate()
                .map(|(e, (from, to))| Edge {
                    from,
                    to,
                    ops: ops_of(e),
                })
                .collect()
        };
        match name {
            SpaceName::Nb201 => SearchSpace {
                name,
                family: Family::Nb201,
                normal: nb201_edge_endpoints()
                    .into_iter()
                    .map(|(from, to)| Edge {
                        from,
                        to,
                        ops: NB201_OPS.to_vec(),
                    })
                    .collect(),
                reduce: Vec::new(),
            },
            _ => {
                let (normal, reduce): (
                    Box<dyn Fn(usize) -> Vec<OpKind>>,
                    Box<dyn Fn(usize) -> Vec<OpKind>>,
                ) = match name {
                    SpaceName::Darts => (
                        Box::new(|_| DARTS_OPS.to_vec()),
                        Box::new(|_| DARTS_OPS.to_vec()),
                    ),
                    SpaceName::Darts8 => (
                        Box::new(|_| DARTS8_OPS.to_vec()),
                        Box::new(|_| DARTS8_OPS.to_vec()),
                    ),
                    SpaceName::S1 => (
                        Box::new(|e| S1_NORMAL[e].to_vec()),
                        Box::new(|e| S1_REDUCE[e].to_vec()),
                    ),
                    SpaceName::S2 => (
                        Box::new(|_| vec![SKIP, SEP3]),
                        Box::new(|_| vec![SKIP, SEP3]),
                    ),
                    SpaceName::S3 => (
                        Box::new(|_| vec![OpKind::None, SKIP, SEP3]),
                        Box::new(|_| vec![OpKind::None, SKIP, SEP3]),
                    ),
                    SpaceName::S4 => (
                        Box::new(|_| vec![OpKind::Noise, SEP3]),
                        Box::new(|_| vec![OpKind::Noise, SEP3]),
                    ),
                    SpaceName::Nb201 => unreachable!("handled above"),
                };
                SearchSpace {
                    name,
                    family: Family::Darts,
                    normal: darts_cell(&*normal),
                    reduce: darts_cell(&*reduce),
                }
            }
        }
    }

    /// The cell types that carry an α (normal and reduce for DARTS-like spaces, normal for NB201).
    pub fn cell_types(&self) -> &'static [CellType] {
        match self.family {
            Family::Darts => &[CellType::Normal, CellType::Reduce],
            Family::Nb201 => &[CellType::Normal],
        }
    }

    /// Edges of a cell type.
    pub fn edges(&self, cell: CellType) -> &[Edge] {
        match cell {
            CellType::Normal => &self.normal,
            CellType::Reduce => &self.reduce,
        }
    }

    /// Number of candidate ops per edge; α has this many columns. All edges of a space have the
    /// same count (true for every space of the reference).
    pub fn ops_per_edge(&self, cell: CellType) -> usize {
        self.edges(cell).first().map_or(0, |e| e.ops.len())
    }

    /// α shape `[edges, ops]` of a cell type.
    pub fn alpha_shape(&self, cell: CellType) -> [usize; 2] {
        [self.edges(cell).len(), self.ops_per_edge(cell)]
    }

    /// Total number of α entries over all cell types.
    pub fn alpha_elements(&self) -> usize {
        self.cell_types()
            .iter()
            .map(|&c| {
                let [e, k] = self.alpha_shape(c);
                e * k
            })
            .sum()
    }

    /// Whether the op lists are the same on every edge of both cell types (false for S1).
    pub fn uniform_ops(&self) -> Option<&[OpKind]> {
        let first = &self.normal.first()?.ops;
        let all = self
            .normal
            .iter()
            .chain(self.reduce.iter())
            .all(|e| &e.ops == first);
        all.then_some(first.as_slice())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn op_names_round_trip() {
        for op in OpKind::ALL {
            assert_eq!(op.name().parse::<OpKind>().unwrap(), op);
        }
        let err = "sep_conv_7x7".parse::<OpKind>().unwrap_err().to_string();
        assert!(
            err.contains("sep_conv_7x7") && err.contains("sep_conv_3x3"),
            "{err}"
        );
    }

    #[test]
    fn darts_edges_follow_reference_order() {
        let e = darts_edge_endpoints();
        assert_eq!(e.len(), 14);
        let inputs: Vec<usize> = e.iter().map(|x| x.0).collect();
        assert_eq!(inputs, vec![0, 1, 0, 1, 2, 0, 1, 2, 3, 0, 1, 2, 3, 4]);
        assert_eq!(
            darts_topology_nodes(),
            vec![
                (1, vec![2, 3, 4]),
                (2, vec![5, 6, 7, 8]),
                (3, vec![9, 10, 11, 12, 13])
            ]
        );
    }

    #[test]
    fn nb201_edges_sorted_keys() {
        let keys: Vec<String> = nb201_edge_endpoints()
            .iter()
            .map(|(f, t)| format!("{t}<-{f}"))
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert_eq!(keys, vec!["1<-0", "2<-0", "2<-1", "3<-0", "3<-1", "3<-2"]);
    }

    #[test]
    fn alpha_shapes() {
        assert_eq!(
            SearchSpace::new(SpaceName::Darts).alpha_shape(CellType::Reduce),
            [14, 7]
        );
        assert_eq!(SearchSpace::new(SpaceName::Darts8).alpha_elements(), 224);
        assert_eq!(SearchSpace::new(SpaceName::Nb201).alpha_elements(), 30);
        assert_eq!(SearchSpace::new(SpaceName::S3).alpha_elements(), 84);
        let s1 = SearchSpace::new(SpaceName::S1);
        assert!(s1.uniform_ops().is_none());
        assert_eq!(s1.edges(CellType::Reduce)[1].ops, vec![MAX, DIL3]);
    }
}
