//! Effective mixing weights and masks (spec §3.1, §3.2, §3.3).
//!
//! The forward pass of a mixed op uses the *effective weights* of its edge: softmax(α) with the
//! rows of decided edges overwritten (one-hot after an op decision, all-zero after a topology
//! decision removed the edge). PT scoring additionally masks one op or one whole edge. All of this
//! acts on the mixing weights, never on α, and nothing is renormalised.
//!
//! The zero pattern is known on the host, so ops whose weight is exactly zero are never computed.

use burn::tensor::{Tensor, TensorData};

use crate::space::CellType;

/// Host-side projection state of one cell type: rows of decided edges (spec §3.1 `proj_weights`).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Overrides {
    /// Per edge: `None` = undecided (use softmax(α)), `Some(row)` = the row to use instead.
    pub rows: Vec<Option<Vec<f32>>>,
}

impl Overrides {
    /// No decision on any of `edges` edges.
    pub fn none(edges: usize) -> Self {
        Overrides {
            rows: vec![None; edges],
        }
    }

    /// Whether any row is overridden.
    pub fn any(&self) -> bool {
        self.rows.iter().any(Option::is_some)
    }
}

/// A temporary mask applied on top of the effective weights for one evaluation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mask {
    /// `(cell, edge, op)` entries whose weight is set to 0.
    pub ops: Vec<(CellType, usize, usize)>,
    /// `(cell, edge)` rows set entirely to 0.
    pub edges: Vec<(CellType, usize)>,
}

impl Mask {
    /// Mask op `op` of edge `edge` in `cell`.
    pub fn op(cell: CellType, edge: usize, op: usize) -> Self {
        Mask {
            ops: vec![(cell, edge, op)],
            edges: Vec::new(),
        }
    }

    /// Mask the whole edge `edge` in `cell`.
    pub fn edge(cell: CellType, edge: usize) -> Self {
        Mask {
            ops: Vec::new(),
            edges: vec![(cell, edge)],
        }
    }

    /// Whether the mask touches `cell` at all.
    pub fn touches(&self, cell: CellType) -> bool {
        self.ops.iter().any(|m| m.0 == cell) || self.edges.iter().any(|m| m.0 == cell)
    }
}

/// The mixing weights of one cell type, ready for the forward pass.
#[derive(Clone, Debug)]
pub struct CellWeights {
    /// `[edges, ops]` weights (autodiff-tracked when α is).
    pub matrix: Tensor<2>,
    /// Per edge and op: the weight as a `[1, 1, 1, 1]` tensor, or `None` when it is exactly zero
    /// (the op is then not computed).
    pub scalars: Vec<Vec<Option<Tensor<4>>>>,
}

impl CellWeights {
    /// Build from probabilities `[edges, ops]` (softmax(α), or SDARTS' perturbed simplex
    /// weights), the decided rows, and the part of `mask` that concerns `cell`.
    ///
    /// Effective weight = probs · keep + fixed, where `keep` is 0 on overridden rows and masked
    /// entries and `fixed` holds the override values. Gradients therefore reach α only through
    /// undecided, unmasked entries (spec §3.1: decided rows are a raw data copy).
    pub fn build(probs: Tensor<2>, overrides: &Overrides, mask: &Mask, cell: CellType) -> Self {
        let [edges, ops] = probs.dims();
        assert_eq!(
            overrides.rows.len(),
            edges,
            "overrides must have one row per edge"
        );
        let mut keep = vec![1.0f32; edges * ops];
        let mut fixed = vec![0.0f32; edges * ops];
        for (e, row) in overrides.rows.iter().enumerate() {
            if let Some(row) = row {
                assert_eq!(row.len(), ops, "override row width must equal the op count");
                for k in 0..ops {
                    keep[e * ops + k] = 0.0;
                    fixed[e * ops + k] = row[k];
                }
            }
        }
        for &(c, e, k) in &mask.ops {
            if c == cell {
                keep[e * ops + k] = 0.0;
                fixed[e * ops + k] = 0.0;
            }
        }
        for &(c, e) in &mask.edges {
            if c == cell {
                for k in 0..ops {
                    keep[e * ops + k] = 0.0;
                    fixed[e * ops + k] = 0.0;
                }
            }
        }
        let device = probs.device();
        let matrix = if keep.iter().all(|&v| v == 1.0) {
            probs
        } else {
            let keep_t =
                Tensor::<2>::from_data(TensorData::new(keep.clone(), [edges, ops]), &device);
            let fixed_t =
                Tensor::<2>::from_data(TensorData::new(fixed.clone(), [edges, ops]), &device);
            probs.mul(keep_t).add(fixed_t)
        };
        let scalars = (0..edges)
            .map(|e| {
                (0..ops)
                    .map(|k| {
                        let exactly_zero = keep[e * ops + k] == 0.0 && fixed[e * ops + k] == 0.0;
                        (!exactly_zero).then(|| {
                            matrix
                                .clone()
                                .slice([e..e + 1, k..k + 1])
                                .reshape([1, 1, 1, 1])
                        })
                    })
                    .collect()
            })
            .collect();
        CellWeights { matrix, scalars }
    }

    /// Number of (edge, op) terms that will be computed.
    pub fn active_terms(&self) -> usize {
        self.scalars
            .iter()
            .flatten()
            .filter(|s| s.is_some())
            .count()
    }
}

/// Mixing weights for a whole supernet: one [`CellWeights`] per cell type.
#[derive(Clone, Debug)]
pub struct MixWeights {
    /// Normal cells (NB201: every search cell).
    pub normal: CellWeights,
    /// Reduction cells (DARTS-like spaces only).
    pub reduce: Option<CellWeights>,
}

impl MixWeights {
    /// The weights of `cell`.
    pub fn cell(&self, cell: CellType) -> &CellWeights {
        match cell {
            CellType::Normal => &self.normal,
            CellType::Reduce => self
                .reduce
                .as_ref()
                .expect("this supernet has no reduction weights"),
        }
    }
}
