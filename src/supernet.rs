//! The weight-sharing supernets: the DARTS network (spec §1.1, used by DARTS, DARTS-8 and
//! RobustDARTS S1–S4) and the NAS-Bench-201 network (spec §1.3), plus their architecture
//! parameters α, kept in a separate module so that weights and α get different optimizers.

use burn::module::{Module, ModuleVisitor, Param};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::softmax;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use burn::tensor::{Device, Distribution, Tensor};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::ops::{
    BatchNorm2d, BnMode, FactorizedReduce, NodeShare, Op, OpFlavor, ReluConvBn, conv,
};
use crate::space::{CellType, DARTS_STEPS, Family, SearchSpace, SpaceName};
use crate::weights::{CellWeights, Mask, MixWeights, Overrides};

/// Size knobs of a supernet. The defaults are the paper's (spec §1.1, §1.3, §2.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupernetConfig {
    /// The search space.
    pub space: SpaceName,
    /// Initial channels C (16).
    pub init_channels: usize,
    /// DARTS-like: number of cells (8). NAS-Bench-201: search cells per stage N (5).
    pub layers: usize,
    /// Output classes (10).
    pub num_classes: usize,
    /// Input image channels (3 for RGB, 1 for grey).
    pub in_channels: usize,
    /// Input height = width in pixels (32).
    pub input_size: usize,
}

impl SupernetConfig {
    /// The paper's supernet for `space`: C=16, 8 cells (DARTS-like) or N=5 (NB201), 10 classes,
    /// 3×32×32 inputs.
    pub fn paper(space: SpaceName) -> Self {
        SupernetConfig {
            space,
            init_channels: 16,
            layers: if space == SpaceName::Nb201 { 5 } else { 8 },
            num_classes: 10,
            in_channels: 3,
            input_size: 32,
        }
    }

    /// Number of stride-2 stages the network applies to its input.
    pub fn reductions(&self) -> usize {
        match SearchSpace::new(self.space).family {
            Family::Nb201 => 2,
            Family::Darts => darts_reduction_cells(self.layers).len(),
        }
    }

    /// Check every knob; errors name the field and the rule.
    pub fn validate(&self) -> Result<()> {
        let bad = |field: &str, message: String| {
            Err(Error::Config {
                field: field.into(),
                message,
            })
        };
        if self.init_channels < 2 || self.init_channels % 2 != 0 {
            return bad(
                "init_channels",
                format!("must be an even number ≥ 2, got {}", self.init_channels),
            );
        }
        if self.layers == 0 {
            return bad("layers", "must be at least 1".into());
        }
        if self.num_classes < 2 {
            return bad(
                "num_classes",
                format!("must be at least 2, got {}", self.num_classes),
            );
        }
        if self.in_channels == 0 {
            return bad("in_channels", "must be at least 1".into());
        }
        let div = 1usize << self.reductions();
        if self.input_size < div || self.input_size % div != 0 {
            return bad(
                "input_size",
                format!(
                    "must be a positive multiple of {div} (the network halves it {} times), got {}",
                    self.reductions(),
                    self.input_size
                ),
            );
        }
        Ok(())
    }
}

/// Indices of the DARTS reduction cells: `layers / 3` and `2 · layers / 3` (spec §1.1).
pub fn darts_reduction_cells(layers: usize) -> Vec<usize> {
    let mut v = vec![layers / 3, 2 * layers / 3];
    v.dedup();
    v
}

/// A mixed op: `Σ_k w_k · op_k(x)` over the edge's candidate ops, in column order. Ops whose
/// weight is exactly zero, and `none` (always zero), are not computed.
#[derive(Module, Debug)]
pub struct MixedOp {
    /// Candidate ops in α-column order.
    pub ops: Vec<Op>,
}

impl MixedOp {
    /// `x` `[b, c, h, w]` → `Some([b, c, h / s, w / s])`, or `None` when no term is computed
    /// (the edge contributes exactly zero).
    ///
    /// `share` holds what the ops compute from `x` alone (its ReLU, its pools), shared with the
    /// other edges that read `x` ([`NodeShare`]). With the fused kernels on flex, the weighted sum is one fused op
    /// ([`crate::kernels`]); its output is bit-identical to the composition.
    pub fn forward(
        &self,
        x: &Tensor<4>,
        share: &NodeShare,
        weights: &[Option<Tensor<4>>],
        bn: BnMode,
    ) -> Option<Tensor<4>> {
        let computed = |k: usize| weights[k].is_some() && !self.ops[k].is_zero();
        if crate::kernels::fused_for(x) {
            let (mut outs, mut ws) = (Vec::new(), Vec::new());
            for (k, w) in weights.iter().enumerate() {
                if let Some(w) = w.as_ref().filter(|_| computed(k)) {
                    outs.push(self.ops[k].forward_shared(x, share, bn));
                    ws.push(w.clone().reshape([1]));
                }
            }
            if outs.is_empty() {
                return None;
            }
            if outs.len() == 1 {
                let w = ws.pop().expect("one weight").reshape([1, 1, 1, 1]);
                return Some(outs.pop().expect("one term").mul(w));
            }
            let w = Tensor::cat(ws, 0);
            if let Some(y) = crate::kernels::weighted_sum(&outs, &w) {
                return Some(y);
            }
            // Shapes the kernel does not take: the composition, over the outputs computed.
            let mut outs = outs.into_iter();
            return weighted_sum(weights, |k| if computed(k) { outs.next() } else { None });
        }
        weighted_sum(weights, |k| {
            let op = &self.ops[k];
            (!op.is_zero()).then(|| op.forward_shared(x, share, bn))
        })
    }

    /// Declares on `share` the convolutions of the ReLU-Conv-BN ops this mixed op will compute
    /// with `weights` (those with a weight; see [`NodeShare::plan_conv`]).
    pub fn plan<'a>(&'a self, share: &NodeShare<'a>, weights: &[Option<Tensor<4>>]) {
        for (op, w) in self.ops.iter().zip(weights) {
            if let (Op::ReluConvBn(r), Some(_)) = (op, w) {
                share.plan_conv(&r.conv);
            }
        }
    }
}

/// `Σ_k w_k · out_k` in column order, the core of a mixed op. `weights[k]` is the `[1, 1, 1, 1]`
/// weight of op k or `None` when it is exactly zero; `op_output(k)` computes op k's output, or
/// returns `None` for an op whose output is identically zero. Neither kind of term is computed.
/// Returns `None` when no term remains.
pub fn weighted_sum(
    weights: &[Option<Tensor<4>>],
    mut op_output: impl FnMut(usize) -> Option<Tensor<4>>,
) -> Option<Tensor<4>> {
    let mut acc: Option<Tensor<4>> = None;
    for (k, w) in weights.iter().enumerate() {
        let Some(w) = w else { continue };
        let Some(out) = op_output(k) else { continue };
        let term = out.mul(w.clone());
        acc = Some(match acc {
            Some(a) => a.add(term),
            None => term,
        });
    }
    acc
}

/// Sum of optional terms in order; zeros of `shape` when every term is absent.
fn sum_terms(terms: Vec<Option<Tensor<4>>>, shape: [usize; 4], device: &Device) -> Tensor<4> {
    terms
        .into_iter()
        .flatten()
        .reduce(|a, b| a.add(b))
        .unwrap_or_else(|| Tensor::zeros(shape, device))
}

/// The first input of a DARTS cell is preprocessed by a FactorizedReduce after a reduction cell,
/// by a 1×1 ReLU-Conv-BN otherwise.
#[derive(Module, Debug)]
pub enum Preprocess {
    /// 1×1 ReLU-Conv-BN.
    ReluConvBn(ReluConvBn),
    /// FactorizedReduce (the previous cell halved the resolution).
    FactorizedReduce(FactorizedReduce),
}

impl Preprocess {
    /// `[b, c_in, h, w]` → `[b, C, h', w']`.
    pub fn forward(&self, x: Tensor<4>, bn: BnMode) -> Tensor<4> {
        match self {
            Preprocess::ReluConvBn(p) => p.forward(x, bn),
            Preprocess::FactorizedReduce(p) => p.forward(x, bn),
        }
    }
}

/// A DARTS search cell: inputs s0 (cell k-2) and s1 (cell k-1), four intermediate nodes over 14
/// mixed-op edges, output = channel concat of the intermediate nodes (4C channels).
#[derive(Module, Debug)]
pub struct DartsCell {
    /// Preprocessing of s0.
    pub preprocess0: Preprocess,
    /// Preprocessing of s1.
    pub preprocess1: ReluConvBn,
    /// The 14 mixed ops in α-row order.
    pub edges: Vec<MixedOp>,
    /// Whether this is a reduction cell.
    pub reduction: bool,
    /// Cell channels C.
    pub channels: usize,
}

impl DartsCell {
    fn new(
        space: &SearchSpace,
        c_pp: usize,
        c_p: usize,
        c: usize,
        reduction: bool,
        reduction_prev: bool,
        device: &Device,
    ) -> Self {
        let preprocess0 = if reduction_prev {
            Preprocess::FactorizedReduce(FactorizedReduce::new(c_pp, c, false, false, device))
        } else {
            Preprocess::ReluConvBn(ReluConvBn::new(c_pp, c, 1, 1, 0, false, device))
        };
        let cell_type = if reduction {
            CellType::Reduce
        } else {
            CellType::Normal
        };
        let edges = space
            .edges(cell_type)
            .iter()
            .map(|edge| {
                let stride = if reduction && edge.from < 2 { 2 } else { 1 };
                MixedOp {
                    ops: edge
                        .ops
                        .iter()
                        .map(|&k| Op::new(k, c, stride, false, OpFlavor::DartsSearch, device))
                        .collect(),
                }
            })
            .collect();
        DartsCell {
            preprocess0,
            preprocess1: ReluConvBn::new(c_p, c, 1, 1, 0, false, device),
            edges,
            reduction,
            channels: c,
        }
    }

    /// `s0`, `s1` `[b, ·, h, w]` → `[b, 4C, h / s, w / s]`.
    pub fn forward(&self, s0: Tensor<4>, s1: Tensor<4>, w: &CellWeights, bn: BnMode) -> Tensor<4> {
        let s0 = self.preprocess0.forward(s0, bn);
        let s1 = self.preprocess1.forward(s1, bn);
        let [b, _, h, wd] = s1.dims();
        let s = if self.reduction { 2 } else { 1 };
        let node_shape = [b, self.channels, h.div_ceil(s), wd.div_ceil(s)];
        let device = s1.device();
        let mut states = vec![s0, s1];
        let shares: Vec<NodeShare> = (0..2 + DARTS_STEPS).map(|_| NodeShare::new()).collect();
        let mut offset = 0;
        for _ in 0..DARTS_STEPS {
            let terms = states
                .iter()
                .enumerate()
                .map(|(j, h)| {
                    self.edges[offset + j].forward(h, &shares[j], &w.scalars[offset + j], bn)
                })
                .collect();
            let node = sum_terms(terms, node_shape, &device);
            offset += states.len();
            states.push(node);
        }
        Tensor::cat(states.split_off(2), 1)
    }
}

/// The DARTS search network (spec §1.1): stem conv 3×3 to 3C + BN, `layers` cells with reductions
/// at `layers/3` and `2·layers/3`, global average pool, linear classifier.
#[derive(Module, Debug)]
pub struct DartsSupernet {
    /// Stem convolution.
    pub stem_conv: burn::nn::conv::Conv2d,
    /// Stem BatchNorm (affine).
    pub stem_bn: BatchNorm2d,
    /// The cells.
    pub cells: Vec<DartsCell>,
    /// Classifier `C_prev → classes`.
    pub classifier: Linear,
}

impl DartsSupernet {
    fn new(cfg: &SupernetConfig, space: &SearchSpace, device: &Device) -> Self {
        let c = cfg.init_channels;
        let stem_c = 3 * c;
        let reductions = darts_reduction_cells(cfg.layers);
        let (mut c_pp, mut c_p, mut c_curr) = (stem_c, stem_c, c);
        let mut reduction_prev = false;
        let mut cells = Vec::with_capacity(cfg.layers);
        for i in 0..cfg.layers {
            let reduction = reductions.contains(&i);
            if reduction {
                c_curr *= 2;
            }
            cells.push(DartsCell::new(
                space,
                c_pp,
                c_p,
                c_curr,
                reduction,
                reduction_prev,
                device,
            ));
            reduction_prev = reduction;
            c_pp = c_p;
            c_p = DARTS_STEPS * c_curr;
        }
        DartsSupernet {
            stem_conv: conv(cfg.in_channels, stem_c, 3, 1, 1, 1, 1, device),
            stem_bn: BatchNorm2d::new(stem_c, true, device),
            cells,
            classifier: LinearConfig::new(c_p, cfg.num_classes).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>, w: &MixWeights, bn: BnMode) -> Tensor<2> {
        let stem = self
            .stem_bn
            .forward(crate::kernels::conv2d(x, &self.stem_conv), bn);
        let (mut s0, mut s1) = (stem.clone(), stem);
        for cell in &self.cells {
            let cw = if cell.reduction {
                w.cell(CellType::Reduce)
            } else {
                w.cell(CellType::Normal)
            };
            let out = cell.forward(s0, s1.clone(), cw, bn);
            s0 = s1;
            s1 = out;
        }
        self.classifier.forward(global_avg_pool(s1))
    }
}

/// `[b, c, h, w]` → `[b, c]`.
pub fn global_avg_pool(x: Tensor<4>) -> Tensor<2> {
    let [b, c, _, _] = x.dims();
    x.mean_dim(3).mean_dim(2).reshape([b, c])
}

/// A NAS-Bench-201 search cell: node 0 = input, node i = Σ_{j<i} MixedOp_{i←j}(node j), output =
/// node 3. Edges in α-row order `1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2`.
#[derive(Module, Debug)]
pub struct Nb201Cell {
    /// The 6 mixed ops.
    pub edges: Vec<MixedOp>,
}

impl Nb201Cell {
    fn forward(&self, x: Tensor<4>, w: &CellWeights, bn: BnMode) -> Tensor<4> {
        let shape = x.dims();
        let device = x.device();
        let mut nodes = vec![x];
        let shares: Vec<NodeShare> = (0..4).map(|_| NodeShare::new()).collect();
        // The `nor_conv_kxk` of a node's out-edges all convolve its ReLU: computed together.
        let mut e = 0;
        for i in 1..4 {
            for share in &shares[..i] {
                self.edges[e].plan(share, &w.scalars[e]);
                e += 1;
            }
        }
        let mut e = 0;
        for i in 1..4 {
            let terms = (0..i)
                .map(|j| {
                    let t = self.edges[e].forward(&nodes[j], &shares[j], &w.scalars[e], bn);
                    e += 1;
                    t
                })
                .collect();
            nodes.push(sum_terms(terms, shape, &device));
        }
        nodes.pop().expect("four nodes")
    }
}

/// NAS-Bench-201's residual reduction block: ReLU-Conv3×3(stride 2)-BN, ReLU-Conv3×3-BN, plus a
/// shortcut of AvgPool 2×2 then Conv 1×1 (spec §1.3).
#[derive(Module, Debug)]
pub struct ResNetBlock {
    /// First conv (stride 2).
    pub conv_a: ReluConvBn,
    /// Second conv.
    pub conv_b: ReluConvBn,
    /// Shortcut 1×1 conv after 2×2 average pooling.
    pub downsample: burn::nn::conv::Conv2d,
}

impl ResNetBlock {
    /// `c_in → c_out`, halving height and width.
    pub fn new(c_in: usize, c_out: usize, device: &Device) -> Self {
        ResNetBlock {
            conv_a: ReluConvBn::new(c_in, c_out, 3, 2, 1, true, device),
            conv_b: ReluConvBn::new(c_out, c_out, 3, 1, 1, true, device),
            downsample: conv(c_in, c_out, 1, 1, 0, 1, 1, device),
        }
    }

    /// `[b, c_in, h, w]` → `[b, c_out, h / 2, w / 2]`.
    pub fn forward(&self, x: Tensor<4>, bn: BnMode) -> Tensor<4> {
        let main = self.conv_b.forward(self.conv_a.forward(x.clone(), bn), bn);
        let pooled = avg_pool2d(x, AvgPoolOptions::new([2, 2]).with_stride([2, 2]));
        crate::kernels::conv2d(pooled, &self.downsample).add(main)
    }
}

/// A layer of the NAS-Bench-201 network.
#[derive(Module, Debug)]
pub enum Nb201Layer {
    /// A search cell sharing the single α.
    Cell(Nb201Cell),
    /// A residual reduction block.
    Reduction(ResNetBlock),
}

/// The NAS-Bench-201 search network (spec §1.3): stem, N cells (C), ResNet block, N cells (2C),
/// ResNet block, N cells (4C), BN + ReLU, global average pool, linear classifier.
#[derive(Module, Debug)]
pub struct Nb201Supernet {
    /// Stem convolution.
    pub stem_conv: burn::nn::conv::Conv2d,
    /// Stem BatchNorm (affine).
    pub stem_bn: BatchNorm2d,
    /// Cells and reduction blocks in order.
    pub cells: Vec<Nb201Layer>,
    /// Final BN (`lastact`), followed by ReLU.
    pub lastact_bn: BatchNorm2d,
    /// Classifier `4C → classes`.
    pub classifier: Linear,
}

impl Nb201Supernet {
    fn new(cfg: &SupernetConfig, space: &SearchSpace, device: &Device) -> Self {
        let c = cfg.init_channels;
        let mut cells = Vec::new();
        let mut c_prev = c;
        for (stage, c_stage) in [c, 2 * c, 4 * c].into_iter().enumerate() {
            if stage > 0 {
                cells.push(Nb201Layer::Reduction(ResNetBlock::new(
                    c_prev, c_stage, device,
                )));
                c_prev = c_stage;
            }
            for _ in 0..cfg.layers {
                let edges = space
                    .edges(CellType::Normal)
                    .iter()
                    .map(|edge| MixedOp {
                        ops: edge
                            .ops
                            .iter()
                            .map(|&k| Op::new(k, c_stage, 1, false, OpFlavor::Nb201Search, device))
                            .collect(),
                    })
                    .collect();
                cells.push(Nb201Layer::Cell(Nb201Cell { edges }));
            }
        }
        Nb201Supernet {
            stem_conv: conv(cfg.in_channels, c, 3, 1, 1, 1, 1, device),
            stem_bn: BatchNorm2d::new(c, true, device),
            cells,
            lastact_bn: BatchNorm2d::new(c_prev, true, device),
            classifier: LinearConfig::new(c_prev, cfg.num_classes).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>, w: &MixWeights, bn: BnMode) -> Tensor<2> {
        let mut h = self
            .stem_bn
            .forward(crate::kernels::conv2d(x, &self.stem_conv), bn);
        for layer in &self.cells {
            h = match layer {
                Nb201Layer::Cell(cell) => cell.forward(h, &w.normal, bn),
                Nb201Layer::Reduction(block) => block.forward(h, bn),
            };
        }
        let h = crate::kernels::relu(self.lastact_bn.forward(h, bn));
        self.classifier.forward(global_avg_pool(h))
    }
}

/// A supernet of either family.
#[derive(Module, Debug)]
pub enum Supernet {
    /// DARTS-like spaces.
    Darts(DartsSupernet),
    /// NAS-Bench-201.
    Nb201(Nb201Supernet),
}

impl Supernet {
    /// Build the supernet of `cfg` on `device` (weights initialised as PyTorch does by default:
    /// Kaiming-uniform convolutions and linear layer, BN γ = 1, β = 0).
    pub fn new(cfg: &SupernetConfig, device: &Device) -> Result<Self> {
        cfg.validate()?;
        let space = SearchSpace::new(cfg.space);
        Ok(match space.family {
            Family::Darts => Supernet::Darts(DartsSupernet::new(cfg, &space, device)),
            Family::Nb201 => Supernet::Nb201(Nb201Supernet::new(cfg, &space, device)),
        })
    }

    /// Logits `[batch, classes]` of `x` `[batch, in_channels, size, size]` under mixing weights `w`.
    pub fn forward(&self, x: Tensor<4>, w: &MixWeights, bn: BnMode) -> Tensor<2> {
        match self {
            Supernet::Darts(n) => n.forward(x, w, bn),
            Supernet::Nb201(n) => n.forward(x, w, bn),
        }
    }

    /// Number of learnable network weights (BN running statistics and α excluded), counted the
    /// way the reference counts `model.parameters()`.
    pub fn learnable_params(&self) -> usize {
        learnable_params(self)
    }
}

/// Counts the learnable parameters of a module: every float parameter except BatchNorm running
/// statistics (which Burn stores as module state).
pub fn learnable_params<M: Module>(module: &M) -> usize {
    #[derive(Default)]
    struct Counter {
        path: Vec<String>,
        count: usize,
    }
    impl ModuleVisitor for Counter {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let running = matches!(
                self.path.last().map(String::as_str),
                Some("running_mean" | "running_var")
            );
            if !running {
                self.count += param.lazy_shape().num_elements();
            }
        }
    }
    let mut c = Counter::default();
    module.visit(&mut c);
    c.count
}

/// Architecture parameters α: one `[edges, ops]` logit matrix per cell type, initialised to
/// 1e-3·N(0, 1) (spec §1.1). Kept apart from the network weights.
#[derive(Module, Debug)]
pub struct Alphas {
    /// α of the normal cells (NB201: of every cell).
    pub normal: Param<Tensor<2>>,
    /// α of the reduction cells (DARTS-like spaces only).
    pub reduce: Option<Param<Tensor<2>>>,
}

impl Alphas {
    /// Fresh α for `space` on `device`.
    pub fn new(space: &SearchSpace, device: &Device) -> Self {
        let init = |cell: CellType| {
            let shape = space.alpha_shape(cell);
            Param::from_tensor(
                Tensor::<2>::random(shape, Distribution::Normal(0.0, 1.0), device).mul_scalar(1e-3),
            )
        };
        Alphas {
            normal: init(CellType::Normal),
            reduce: (space.family == Family::Darts).then(|| init(CellType::Reduce)),
        }
    }

    /// α from host matrices (`[edges][ops]` per cell type).
    pub fn from_rows(normal: &[Vec<f32>], reduce: Option<&[Vec<f32>]>, device: &Device) -> Self {
        let to_param = |rows: &[Vec<f32>]| {
            let e = rows.len();
            let k = rows.first().map_or(0, Vec::len);
            let flat: Vec<f32> = rows.iter().flatten().copied().collect();
            Param::from_tensor(Tensor::<2>::from_data(
                burn::tensor::TensorData::new(flat, [e, k]),
                device,
            ))
        };
        Alphas {
            normal: to_param(normal),
            reduce: reduce.map(to_param),
        }
    }

    /// α logits of `cell`.
    pub fn logits(&self, cell: CellType) -> Tensor<2> {
        match cell {
            CellType::Normal => self.normal.val(),
            CellType::Reduce => self
                .reduce
                .as_ref()
                .expect("no reduction α in this space")
                .val(),
        }
    }

    /// Row-wise softmax(α) of `cell`, `[edges, ops]`.
    pub fn probs(&self, cell: CellType) -> Tensor<2> {
        softmax(self.logits(cell), 1)
    }

    /// The cell types that have an α.
    pub fn cell_types(&self) -> Vec<CellType> {
        let mut v = vec![CellType::Normal];
        if self.reduce.is_some() {
            v.push(CellType::Reduce);
        }
        v
    }

    /// Effective mixing weights: softmax(α) with `overrides[cell.index()]` decided rows and `mask`
    /// applied (spec §3.1–3.3). With `detach`, no gradient reaches α (weight steps, evaluation).
    pub fn mix_weights(&self, overrides: &[Overrides], mask: &Mask, detach: bool) -> MixWeights {
        let build = |cell: CellType| {
            let p = self.probs(cell);
            let p = if detach { p.detach() } else { p };
            CellWeights::build(p, &overrides[cell.index()], mask, cell)
        };
        MixWeights {
            normal: build(CellType::Normal),
            reduce: self.reduce.as_ref().map(|_| build(CellType::Reduce)),
        }
    }

    /// No decided row, for normal and reduce cells (index = [`CellType::index`]).
    pub fn no_overrides(&self) -> Vec<Overrides> {
        let rows = |p: Option<&Param<Tensor<2>>>| p.map_or(0, |p| p.lazy_shape().dims::<2>()[0]);
        vec![
            Overrides::none(rows(Some(&self.normal))),
            Overrides::none(rows(self.reduce.as_ref())),
        ]
    }

    /// α of `cell` copied to the host as `[edges][ops]`.
    pub fn rows(&self, cell: CellType) -> Vec<Vec<f32>> {
        tensor_rows(self.logits(cell))
    }
}

/// A `[rows, cols]` tensor copied to the host.
pub fn tensor_rows(t: Tensor<2>) -> Vec<Vec<f32>> {
    let [_, k] = t.dims();
    let v: Vec<f32> = t
        .into_data()
        .convert::<f32>()
        .try_into_vec()
        .expect("f32 data");
    v.chunks(k.max(1)).map(<[f32]>::to_vec).collect()
}

/// Mixing weights with no decision and no mask: plain softmax(α).
pub fn softmax_weights(alphas: &Alphas, detach: bool) -> MixWeights {
    alphas.mix_weights(&alphas.no_overrides(), &Mask::default(), detach)
}

/// Re-initialise every learnable weight of `module` from a host RNG seeded with `seed`, in the
/// module's traversal order, so that the result is the same on every backend and every run:
/// convolutions and linear layers Kaiming-uniform as PyTorch's defaults (bound 1/√fan_in, the
/// linear bias too), BatchNorm γ = 1, β = 0 and running statistics untouched.
pub fn reset_parameters<M: Module>(module: M, seed: u64) -> M {
    struct Init {
        path: Vec<String>,
        rng: rand_chacha::ChaCha8Rng,
        linear_fan_in: usize,
    }
    impl burn::module::ModuleMapper for Init {
        fn enter_module(&mut self, name: &str, _container_type: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container_type: &str) {
            self.path.pop();
        }
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            use rand::Rng;
            let n = self.path.len();
            let leaf = self.path.last().map(String::as_str).unwrap_or("");
            let owner = if n >= 2 {
                self.path[n - 2].as_str()
            } else {
                ""
            };
            let dims = param.lazy_shape().dims::<D>().to_vec();
            let fan_in = match (D, leaf) {
                // Conv weight [out, in / groups, kh, kw].
                (4, "weight") => dims[1] * dims[2] * dims[3],
                // Linear weight, Burn layout [in, out].
                (2, "weight") if !owner.contains("bn") => {
                    self.linear_fan_in = dims[0];
                    dims[0]
                }
                // Linear bias (visited after its weight).
                (1, "bias") if !owner.contains("bn") => self.linear_fan_in,
                _ => return param,
            };
            let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
            let count: usize = dims.iter().product();
            let values: Vec<f32> = (0..count)
                .map(|_| self.rng.random_range(-bound..bound) as f32)
                .collect();
            param.map(move |old| {
                let require_grad = old.is_require_grad();
                Tensor::<D>::from_data(burn::tensor::TensorData::new(values, dims), &old.device())
                    .set_require_grad(require_grad)
            })
        }
    }
    use rand::SeedableRng;
    module.map(&mut Init {
        path: Vec::new(),
        rng: rand_chacha::ChaCha8Rng::seed_from_u64(seed),
        linear_fan_in: 0,
    })
}

/// Fresh α `[edges, ops]` per cell type drawn as 1e-3·N(0, 1) from a host RNG seeded with `seed`.
pub fn init_alpha_rows(space: &SearchSpace, seed: u64) -> Vec<Vec<Vec<f32>>> {
    use rand::SeedableRng;
    use rand_distr::Distribution as _;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xA1FA_A1FA);
    space
        .cell_types()
        .iter()
        .map(|&c| {
            let [e, k] = space.alpha_shape(c);
            (0..e)
                .map(|_| {
                    (0..k)
                        .map(|_| {
                            let z: f64 = rand_distr::StandardNormal.sample(&mut rng);
                            (1e-3 * z) as f32
                        })
                        .collect::<Vec<f32>>()
                })
                .collect()
        })
        .collect()
}

/// A supernet and its α, built reproducibly from `seed`: the same numbers on every backend
/// ([`reset_parameters`], [`init_alpha_rows`]), placed on `device`.
pub fn build_seeded(
    cfg: &SupernetConfig,
    seed: u64,
    device: &Device,
) -> Result<(Supernet, Alphas)> {
    let space = SearchSpace::new(cfg.space);
    let plain = device.clone().without_autodiff();
    let net = reset_parameters(Supernet::new(cfg, &plain)?, seed);
    let rows = init_alpha_rows(&space, seed);
    let alphas = Alphas::from_rows(&rows[0], rows.get(1).map(Vec::as_slice), &plain);
    if device.is_autodiff() {
        Ok((net.fork(device).train(), alphas.fork(device).train()))
    } else {
        Ok((net, alphas))
    }
}
