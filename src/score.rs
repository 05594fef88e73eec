//! What PT sees on one fixed batch: the supernet's logits, loss and accuracy, and the same with
//! every single (cell type, edge, op) masked and every whole edge masked (spec §3.2, §3.3).
//! `darts-pt score` prints it; the fidelity tests compare it with the reference's numbers.

use std::path::Path;

use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::ops::BnMode;
use crate::search::loss_and_correct;
use crate::select::{Evaluate, Score};
use crate::space::SearchSpace;
use crate::supernet::{Alphas, Supernet, SupernetConfig, tensor_rows};
use crate::weights::{Mask, Overrides};

/// A fixed evaluation batch: images `[n, c, h, w]` (already normalised) and labels `[n]`.
#[derive(Clone, Debug)]
pub struct FixedBatch {
    /// Images, row-major `[n, c, h, w]`.
    pub x: Vec<f32>,
    /// Shape of `x`.
    pub shape: [usize; 4],
    /// Labels.
    pub y: Vec<i64>,
}

impl FixedBatch {
    /// Read a safetensors file with `x` (f32 `[n, c, h, w]`) and `y` (int64 or int32 `[n]`).
    pub fn read(path: &Path) -> Result<FixedBatch> {
        let bad = |message: String| Error::Data {
            path: path.to_path_buf(),
            message,
        };
        let bytes = std::fs::read(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let st = safetensors::SafeTensors::deserialize(&bytes)
            .map_err(|e| bad(format!("not a valid safetensors file: {e}")))?;
        let x = st
            .tensor("x")
            .map_err(|_| bad("missing tensor `x` (f32 [n, c, h, w])".into()))?;
        if x.dtype() != safetensors::Dtype::F32 || x.shape().len() != 4 {
            return Err(bad(format!(
                "tensor `x` is {:?} {:?}; expected F32 [n, c, h, w]",
                x.dtype(),
                x.shape()
            )));
        }
        let shape: [usize; 4] = x.shape().try_into().expect("4 dims");
        let xs = x
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let y = st
            .tensor("y")
            .map_err(|_| bad("missing tensor `y` (int64 [n])".into()))?;
        let ys: Vec<i64> = match y.dtype() {
            safetensors::Dtype::I64 => y
                .data()
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
                .collect(),
            safetensors::Dtype::I32 => y
                .data()
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes(b.try_into().expect("4 bytes")) as i64)
                .collect(),
            d => return Err(bad(format!("tensor `y` is {d:?}; expected I64 [n]"))),
        };
        if ys.len() != shape[0] {
            return Err(bad(format!(
                "`y` has {} labels for {} images",
                ys.len(),
                shape[0]
            )));
        }
        Ok(FixedBatch {
            x: xs,
            shape,
            y: ys,
        })
    }
}

impl FixedBatch {
    /// Check the batch (read from `path`) against the supernet it is fed to: at least one image,
    /// images `[n, in_channels, input_size, input_size]` and labels in `0..num_classes`. Errors
    /// ([`Error::Data`]) name the file, the tensor and the expected shape.
    pub fn check(&self, cfg: &SupernetConfig, path: &Path) -> Result<()> {
        let bad = |message: String| {
            Err(Error::Data {
                path: path.to_path_buf(),
                message,
            })
        };
        let [n, c, h, w] = self.shape;
        let (ec, es) = (cfg.in_channels, cfg.input_size);
        if n == 0 {
            return bad("tensor `x` holds no images".into());
        }
        if [c, h, w] != [ec, es, es] {
            return bad(format!(
                "tensor `x` has shape {:?}; this run's supernet takes [n, {ec}, {es}, {es}] ({ec}-channel {es}x{es} images, as its dataset)",
                self.shape
            ));
        }
        if let Some(y) = self
            .y
            .iter()
            .find(|&&y| y < 0 || y as usize >= cfg.num_classes)
        {
            return bad(format!(
                "tensor `y` holds label {y}; this run has {} classes (labels 0..{})",
                cfg.num_classes,
                cfg.num_classes - 1
            ));
        }
        Ok(())
    }
}

/// Evaluates a supernet on one fixed batch, without autodiff, with the chosen BatchNorm mode
/// (running estimates never updated).
pub struct BatchScorer {
    net: Supernet,
    alphas: Alphas,
    x: Tensor<4>,
    y: Tensor<1, Int>,
    bn: BnMode,
}

impl BatchScorer {
    /// A scorer on `batch`; `bn` is [`BnMode::BatchStats`] (the reference's PT scoring) or
    /// [`BnMode::Eval`].
    pub fn new(net: &Supernet, alphas: &Alphas, batch: &FixedBatch, bn: BnMode) -> Self {
        let net = net.valid();
        let alphas = alphas.valid();
        let device = alphas.normal.val().device();
        let x = Tensor::from_data(TensorData::new(batch.x.clone(), batch.shape), &device);
        let y = Tensor::from_data(TensorData::new(batch.y.clone(), [batch.y.len()]), &device);
        BatchScorer {
            net,
            alphas,
            x,
            y,
            bn,
        }
    }

    /// Logits `[n][classes]`, mean loss and accuracy (percent) under `overrides` and `mask`.
    pub fn run(&self, overrides: &[Overrides], mask: &Mask) -> (Vec<Vec<f32>>, Score) {
        let w = self.alphas.mix_weights(overrides, mask, true);
        let logits = self.net.forward(self.x.clone(), &w, self.bn);
        let (loss, correct) = loss_and_correct(logits.clone(), self.y.clone());
        let n = self.y.dims()[0].max(1);
        (
            tensor_rows(logits),
            Score {
                accuracy: 100.0 * correct.into_scalar::<i64>() as f64 / n as f64,
                loss: loss.into_scalar::<f64>(),
            },
        )
    }
}

impl Evaluate for BatchScorer {
    async fn evaluate(
        &mut self,
        overrides: &[Overrides],
        mask: &Mask,
        _salt: u64,
    ) -> Result<Score> {
        Ok(self.run(overrides, mask).1)
    }
}

/// One masked evaluation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MaskedScore {
    /// `normal` or `reduce`.
    pub cell: String,
    /// Edge (α row).
    pub edge: usize,
    /// The masked op (op masks only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub op: Option<String>,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Top-1 accuracy, percent.
    pub accuracy: f64,
}

/// `darts-pt score --json`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScoreReport {
    /// Logits `[n][classes]` of the unmasked supernet.
    pub logits: Vec<Vec<f32>>,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Top-1 accuracy, percent.
    pub accuracy: f64,
    /// Every (cell type, edge, op) masked alone.
    pub masked_ops: Vec<MaskedScore>,
    /// Every whole edge masked alone.
    pub masked_edges: Vec<MaskedScore>,
}

/// Score the supernet on `batch` with every op mask and every edge mask (no decisions applied).
pub fn score_report(
    net: &Supernet,
    alphas: &Alphas,
    space: &SearchSpace,
    batch: &FixedBatch,
    bn: BnMode,
) -> ScoreReport {
    let scorer = BatchScorer::new(net, alphas, batch, bn);
    let overrides = alphas.no_overrides();
    let (logits, base) = scorer.run(&overrides, &Mask::default());
    let mut masked_ops = Vec::new();
    let mut masked_edges = Vec::new();
    for &cell in space.cell_types() {
        for (e, edge) in space.edges(cell).iter().enumerate() {
            for (k, op) in edge.ops.iter().enumerate() {
                let (_, s) = scorer.run(&overrides, &Mask::op(cell, e, k));
                masked_ops.push(MaskedScore {
                    cell: cell.name().into(),
                    edge: e,
                    op: Some(op.name().into()),
                    loss: s.loss,
                    accuracy: s.accuracy,
                });
            }
            let (_, s) = scorer.run(&overrides, &Mask::edge(cell, e));
            masked_edges.push(MaskedScore {
                cell: cell.name().into(),
                edge: e,
                op: None,
                loss: s.loss,
                accuracy: s.accuracy,
            });
        }
    }
    ScoreReport {
        logits,
        loss: base.loss,
        accuracy: base.accuracy,
        masked_ops,
        masked_edges,
    }
}
