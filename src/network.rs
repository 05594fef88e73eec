//! Evaluation networks: the discrete architecture a genotype describes, trained from scratch
//! (spec §4.1).
//!
//! * [`DartsNetwork`]: darts-pt's `sota.cnn.model.Network` (quark0/darts `NetworkCIFAR`): stem
//!   3×3 conv to 3C + affine BN, `layers` cells with reductions at `layers/3` and `2·layers/3`,
//!   each node the sum of its two genotype ops, cell output the concat of the `*_concat` nodes,
//!   affine BN everywhere, an auxiliary head after cell `2·layers/3` (training only), drop-path on
//!   every op that is not an identity.
//! * [`Nb201Network`]: NAS-Bench-201's `TinyNetwork` with `InferCell` (stem, N cells, residual
//!   reduction block, N cells, block, N cells, BN + ReLU, classifier); `none` edges contribute
//!   nothing.
//!
//! Tensor layout is `[batch, channels, height, width]`; logits are `[batch, classes]`.

use std::fmt;
use std::path::Path;

use burn::module::Module;
use burn::nn::conv::Conv2d;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::module::avg_pool2d;
use burn::tensor::ops::AvgPoolOptions;
use burn::tensor::{Device, Distribution, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::genotype::{DartsGenotype, Nb201Arch};
use crate::ops::{
    BatchNorm2d, BnMode, FactorizedReduce, Op, OpFlavor, ReluConvBn, conv, conv_macs,
};
use crate::space::OpKind;
use crate::supernet::{
    Preprocess, ResNetBlock, darts_reduction_cells, global_avg_pool, learnable_params,
};

/// A discrete architecture: a DARTS genotype or a NAS-Bench-201 cell.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Architecture {
    /// DARTS-like spaces (DARTS, DARTS-8, RobustDARTS S1–S4).
    Darts(DartsGenotype),
    /// NAS-Bench-201.
    Nb201(Nb201Arch),
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Architecture::Darts(g) => g.fmt(f),
            Architecture::Nb201(a) => a.fmt(f),
        }
    }
}

impl std::str::FromStr for Architecture {
    type Err = Error;

    /// `Genotype(...)` text (spec §4.2) or a NAS-Bench-201 string starting with `|` (spec §4.3).
    fn from_str(text: &str) -> Result<Self> {
        let t = text.trim();
        if t.starts_with('|') {
            Ok(Architecture::Nb201(t.parse()?))
        } else {
            let g: DartsGenotype = t.parse()?;
            g.validate()?;
            Ok(Architecture::Darts(g))
        }
    }
}

cli_enum! {
    /// Which genotype of a search run directory to take.
    RunGenotype {
        /// `genotype_pt.txt` (PT selection).
        #[default]
        Pt = "pt",
        /// `genotype_magnitude.txt` (argmax α).
        Magnitude = "magnitude",
    }
}

impl Architecture {
    /// Resolve `source`: the genotype text itself, a file holding it, or a search run directory
    /// (its `genotype_pt.txt` or `genotype_magnitude.txt`, per `which`).
    pub fn resolve(source: &str, which: RunGenotype) -> Result<Self> {
        let path = Path::new(source);
        let looks_like_text =
            source.trim_start().starts_with("Genotype") || source.trim_start().starts_with('|');
        if looks_like_text || !path.exists() {
            if !looks_like_text {
                return Err(Error::Config {
                    field: "genotype".into(),
                    message: format!(
                        "`{source}` is neither a file, a run directory, `Genotype(...)` text nor a NAS-Bench-201 string"
                    ),
                });
            }
            return source.parse();
        }
        let file = if path.is_dir() {
            let name = match which {
                RunGenotype::Pt => crate::rundir::RunDir::GENOTYPE_PT,
                RunGenotype::Magnitude => crate::rundir::RunDir::GENOTYPE_MAGNITUDE,
            };
            let f = path.join(name);
            if !f.exists() {
                return Err(Error::Config {
                    field: "genotype".into(),
                    message: format!(
                        "{} has no {name}; run `darts-pt select --run {}` first, or pass --which {}",
                        path.display(),
                        path.display(),
                        if which == RunGenotype::Pt {
                            "magnitude"
                        } else {
                            "pt"
                        }
                    ),
                });
            }
            f
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file).map_err(|source| Error::Io {
            path: file.clone(),
            source,
        })?;
        text.parse().map_err(|e: Error| Error::Data {
            path: file,
            message: e.to_string(),
        })
    }

    /// The family's name: `darts` or `nb201`.
    pub fn family_name(&self) -> &'static str {
        match self {
            Architecture::Darts(_) => "darts",
            Architecture::Nb201(_) => "nb201",
        }
    }
}

/// Size knobs of an evaluation network.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkConfig {
    /// Initial channels C (DARTS 36, RobustDARTS 16, NAS-Bench-201 16).
    pub init_channels: usize,
    /// DARTS: cells (20, RobustDARTS 8). NAS-Bench-201: cells per stage N (5).
    pub layers: usize,
    /// Auxiliary head after cell `2·layers/3` (DARTS only; training only).
    pub auxiliary: bool,
    /// Output classes.
    pub num_classes: usize,
    /// Input image channels.
    pub in_channels: usize,
    /// Input height = width in pixels.
    pub input_size: usize,
}

impl NetworkConfig {
    /// The paper's network for `arch` on 3×32×32 inputs with 10 classes: DARTS C=36, 20 cells,
    /// auxiliary head (spec §4.1); NAS-Bench-201 C=16, N=5.
    pub fn paper(arch: &Architecture) -> Self {
        match arch {
            Architecture::Darts(_) => NetworkConfig {
                init_channels: 36,
                layers: 20,
                auxiliary: true,
                num_classes: 10,
                in_channels: 3,
                input_size: 32,
            },
            Architecture::Nb201(_) => NetworkConfig {
                init_channels: 16,
                layers: 5,
                auxiliary: false,
                num_classes: 10,
                in_channels: 3,
                input_size: 32,
            },
        }
    }

    /// Spatial size of the auxiliary head's input (after the cell it follows).
    fn auxiliary_input_size(&self) -> usize {
        let at = 2 * self.layers / 3;
        let halvings = darts_reduction_cells(self.layers)
            .iter()
            .filter(|&&r| r <= at)
            .count();
        self.input_size >> halvings
    }

    /// Check the knobs against `arch`; errors name the setting.
    pub fn validate(&self, arch: &Architecture) -> Result<()> {
        let bad = |field: &str, message: String| {
            Err(Error::Config {
                field: field.into(),
                message,
            })
        };
        if self.init_channels < 2 || !self.init_channels.is_multiple_of(2) {
            return bad(
                "init_channels",
                format!("must be an even number ≥ 2, got {}", self.init_channels),
            );
        }
        if self.layers == 0 {
            return bad("layers", "must be at least 1".into());
        }
        if self.num_classes < 2 || self.in_channels == 0 {
            return bad(
                "num_classes",
                "need at least 2 classes and 1 input channel".into(),
            );
        }
        let reductions = match arch {
            Architecture::Darts(_) => darts_reduction_cells(self.layers).len(),
            Architecture::Nb201(_) => 2,
        };
        let div = 1usize << reductions;
        if self.input_size < div || !self.input_size.is_multiple_of(div) {
            return bad(
                "input_size",
                format!(
                    "must be a positive multiple of {div}, got {}",
                    self.input_size
                ),
            );
        }
        if self.auxiliary {
            if matches!(arch, Architecture::Nb201(_)) {
                return bad(
                    "auxiliary",
                    "the NAS-Bench-201 network has no auxiliary head".into(),
                );
            }
            let h = self.auxiliary_input_size();
            if !(8..=10).contains(&h) {
                return bad(
                    "auxiliary",
                    format!(
                        "the auxiliary head (5×5 pool, stride 3, then a 2×2 conv) needs 8–10 pixel features after cell {}, as 32×32 inputs give; these {}×{} inputs give {h}. Turn it off (--no-auxiliary)",
                        2 * self.layers / 3,
                        self.input_size,
                        self.input_size
                    ),
                );
            }
        }
        Ok(())
    }
}

/// How one forward pass runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pass {
    /// Training: BN batch statistics (running estimates updated), auxiliary logits, drop-path
    /// with this probability.
    Train {
        /// Drop-path probability (0 = off).
        drop_path: f64,
    },
    /// Evaluation: BN running statistics, no auxiliary head, no drop-path.
    Eval,
}

impl Pass {
    fn bn(self) -> BnMode {
        match self {
            Pass::Train { .. } => BnMode::Train,
            Pass::Eval => BnMode::Eval,
        }
    }

    fn drop_path(self) -> f64 {
        match self {
            Pass::Train { drop_path } => drop_path,
            Pass::Eval => 0.0,
        }
    }
}

/// Drop-path (spec §4.1): zero whole samples with probability `p` and scale the others by
/// `1 / (1 − p)`, so the expectation is unchanged. The mask `[batch, 1, 1, 1]` is drawn on the
/// tensor's device.
pub fn drop_path(x: Tensor<4>, p: f64) -> Tensor<4> {
    if p <= 0.0 {
        return x;
    }
    let keep = 1.0 - p;
    let [b, _, _, _] = x.dims();
    let mask = Tensor::<4>::random([b, 1, 1, 1], Distribution::Bernoulli(keep), &x.device());
    x.div_scalar(keep).mul(mask)
}

/// A DARTS evaluation cell: preprocessing of both inputs, two ops per intermediate node.
#[derive(Module, Debug)]
pub struct EvalCell {
    /// Preprocessing of s0 (FactorizedReduce after a reduction cell).
    pub preprocess0: Preprocess,
    /// Preprocessing of s1.
    pub preprocess1: ReluConvBn,
    /// The genotype's ops, two per node.
    pub ops: Vec<Op>,
    /// Input state of each op (0 = s0, 1 = s1, 2.. = nodes).
    pub inputs: Vec<usize>,
    /// States concatenated into the output.
    pub concat: Vec<usize>,
    /// Reduction cell.
    pub reduction: bool,
}

impl EvalCell {
    fn new(
        genes: &[(OpKind, usize)],
        concat: &[usize],
        (c_pp, c_p, c): (usize, usize, usize),
        reduction: bool,
        reduction_prev: bool,
        device: &Device,
    ) -> Self {
        let preprocess0 = if reduction_prev {
            Preprocess::FactorizedReduce(FactorizedReduce::new(c_pp, c, true, false, device))
        } else {
            Preprocess::ReluConvBn(ReluConvBn::new(c_pp, c, 1, 1, 0, true, device))
        };
        let ops = genes
            .iter()
            .map(|&(kind, input)| {
                let stride = if reduction && input < 2 { 2 } else { 1 };
                Op::new(kind, c, stride, true, OpFlavor::DartsEval, device)
            })
            .collect();
        EvalCell {
            preprocess0,
            preprocess1: ReluConvBn::new(c_p, c, 1, 1, 0, true, device),
            ops,
            inputs: genes.iter().map(|g| g.1).collect(),
            concat: concat.to_vec(),
            reduction,
        }
    }

    /// `s0`, `s1` → `[b, len(concat)·C, h / s, w / s]`.
    fn forward(&self, s0: Tensor<4>, s1: Tensor<4>, pass: Pass) -> Tensor<4> {
        let bn = pass.bn();
        let p = pass.drop_path();
        let mut states = vec![
            self.preprocess0.forward(s0, bn),
            self.preprocess1.forward(s1, bn),
        ];
        for pair in 0..self.ops.len() / 2 {
            let mut node: Option<Tensor<4>> = None;
            for k in [2 * pair, 2 * pair + 1] {
                let op = &self.ops[k];
                let mut h = op.forward(states[self.inputs[k]].clone(), bn);
                if p > 0.0 && !matches!(op, Op::Identity(_) | Op::Zero(_)) {
                    h = drop_path(h, p);
                }
                node = Some(match node {
                    Some(n) => n.add(h),
                    None => h,
                });
            }
            states.push(node.expect("two ops per node"));
        }
        Tensor::cat(self.concat.iter().map(|&i| states[i].clone()).collect(), 1)
    }
}

/// The CIFAR auxiliary head (spec §4.1): ReLU, 5×5 average pool stride 3 (8×8 → 2×2), 1×1 conv to
/// 128, BN, ReLU, 2×2 conv to 768, BN, ReLU, linear.
#[derive(Module, Debug)]
pub struct AuxiliaryHead {
    /// 1×1 convolution C → 128.
    pub conv1: Conv2d,
    /// BN after it.
    pub bn1: BatchNorm2d,
    /// 2×2 convolution 128 → 768.
    pub conv2: Conv2d,
    /// BN after it.
    pub bn2: BatchNorm2d,
    /// Linear 768 → classes.
    pub classifier: Linear,
}

impl AuxiliaryHead {
    fn new(c: usize, classes: usize, device: &Device) -> Self {
        AuxiliaryHead {
            conv1: conv(c, 128, 1, 1, 0, 1, 1, device),
            bn1: BatchNorm2d::new(128, true, device),
            conv2: conv(128, 768, 2, 1, 0, 1, 1, device),
            bn2: BatchNorm2d::new(768, true, device),
            classifier: LinearConfig::new(768, classes).init(device),
        }
    }

    /// `[b, C, 8, 8]` → `[b, classes]`.
    fn forward(&self, x: Tensor<4>, bn: BnMode) -> Tensor<2> {
        let x = avg_pool2d(
            relu(x),
            AvgPoolOptions::new([5, 5])
                .with_stride([3, 3])
                .with_count_include_pad(false),
        );
        let x = relu(self.bn1.forward(self.conv1.forward(x), bn));
        let x = relu(self.bn2.forward(self.conv2.forward(x), bn));
        let b = x.dims()[0];
        self.classifier.forward(x.reshape([b, 768]))
    }
}

/// The DARTS evaluation network (spec §4.1).
#[derive(Module, Debug)]
pub struct DartsNetwork {
    /// Stem convolution 3×3 to 3C.
    pub stem_conv: Conv2d,
    /// Stem BN (affine).
    pub stem_bn: BatchNorm2d,
    /// The cells.
    pub cells: Vec<EvalCell>,
    /// Auxiliary head (when configured).
    pub auxiliary: Option<AuxiliaryHead>,
    /// Index of the cell the auxiliary head follows (`2·layers/3`).
    pub auxiliary_after: usize,
    /// Classifier.
    pub classifier: Linear,
}

impl DartsNetwork {
    fn new(g: &DartsGenotype, cfg: &NetworkConfig, device: &Device) -> Self {
        let c = cfg.init_channels;
        let stem_c = 3 * c;
        let reductions = darts_reduction_cells(cfg.layers);
        let auxiliary_after = 2 * cfg.layers / 3;
        let (mut c_pp, mut c_p, mut c_curr) = (stem_c, stem_c, c);
        let mut reduction_prev = false;
        let mut cells = Vec::with_capacity(cfg.layers);
        let mut c_aux = c_p;
        for i in 0..cfg.layers {
            let reduction = reductions.contains(&i);
            if reduction {
                c_curr *= 2;
            }
            let (genes, concat) = if reduction {
                (&g.reduce, &g.reduce_concat)
            } else {
                (&g.normal, &g.normal_concat)
            };
            cells.push(EvalCell::new(
                genes,
                &concat.nodes,
                (c_pp, c_p, c_curr),
                reduction,
                reduction_prev,
                device,
            ));
            reduction_prev = reduction;
            c_pp = c_p;
            c_p = concat.nodes.len() * c_curr;
            if i == auxiliary_after {
                c_aux = c_p;
            }
        }
        DartsNetwork {
            stem_conv: conv(cfg.in_channels, stem_c, 3, 1, 1, 1, 1, device),
            stem_bn: BatchNorm2d::new(stem_c, true, device),
            cells,
            auxiliary: cfg
                .auxiliary
                .then(|| AuxiliaryHead::new(c_aux, cfg.num_classes, device)),
            auxiliary_after,
            classifier: LinearConfig::new(c_p, cfg.num_classes).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>, pass: Pass) -> (Tensor<2>, Option<Tensor<2>>) {
        let bn = pass.bn();
        let stem = self.stem_bn.forward(self.stem_conv.forward(x), bn);
        let (mut s0, mut s1) = (stem.clone(), stem);
        let mut aux = None;
        for (i, cell) in self.cells.iter().enumerate() {
            let out = cell.forward(s0, s1.clone(), pass);
            s0 = s1;
            s1 = out;
            if i == self.auxiliary_after
                && let (Some(head), Pass::Train { .. }) = (&self.auxiliary, pass)
            {
                aux = Some(head.forward(s1.clone(), bn));
            }
        }
        (self.classifier.forward(global_avg_pool(s1)), aux)
    }

    fn macs(&self, input_size: usize) -> u64 {
        let mut total = conv_macs(&self.stem_conv, input_size * input_size);
        // Input size of each cell: s1's size; s0 may be twice as large after a reduction.
        let mut size = input_size;
        let mut prev_size = input_size;
        for cell in &self.cells {
            let s0_size = prev_size;
            let pre0 = match &cell.preprocess0 {
                Preprocess::ReluConvBn(p) => p.macs(s0_size * s0_size),
                Preprocess::FactorizedReduce(p) => p.macs(size * size),
            };
            let out = if cell.reduction { size / 2 } else { size };
            total += pre0
                + cell.preprocess1.macs(size * size)
                + cell.ops.iter().map(|o| o.macs(out * out)).sum::<u64>();
            prev_size = size;
            size = out;
        }
        let [i, o] = self.classifier.weight.lazy_shape().dims::<2>();
        total + (i * o) as u64
    }
}

/// A NAS-Bench-201 inference cell: node i = Σ_{j<i} op_{i←j}(node j); `none` edges are skipped.
#[derive(Module, Debug)]
pub struct Nb201EvalCell {
    /// Ops in edge order `1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2`.
    pub ops: Vec<Op>,
}

impl Nb201EvalCell {
    fn forward(&self, x: Tensor<4>, bn: BnMode) -> Tensor<4> {
        let shape = x.dims();
        let device = x.device();
        let mut nodes = vec![x];
        let mut e = 0;
        for i in 1..4 {
            let mut node: Option<Tensor<4>> = None;
            for input in nodes.iter().take(i) {
                let op = &self.ops[e];
                e += 1;
                if op.is_zero() {
                    continue;
                }
                let h = op.forward(input.clone(), bn);
                node = Some(match node {
                    Some(n) => n.add(h),
                    None => h,
                });
            }
            nodes.push(node.unwrap_or_else(|| Tensor::zeros(shape, &device)));
        }
        nodes.pop().expect("four nodes")
    }
}

/// A layer of the NAS-Bench-201 network.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Nb201EvalLayer {
    /// An inference cell.
    Cell(Nb201EvalCell),
    /// A residual reduction block.
    Reduction(ResNetBlock),
}

/// The NAS-Bench-201 network of one cell (AutoDL's `TinyNetwork` with `InferCell`).
#[derive(Module, Debug)]
pub struct Nb201Network {
    /// Stem convolution.
    pub stem_conv: Conv2d,
    /// Stem BN.
    pub stem_bn: BatchNorm2d,
    /// Cells and reduction blocks.
    pub layers: Vec<Nb201EvalLayer>,
    /// Final BN, followed by ReLU.
    pub lastact_bn: BatchNorm2d,
    /// Classifier `4C → classes`.
    pub classifier: Linear,
}

impl Nb201Network {
    fn new(arch: &Nb201Arch, cfg: &NetworkConfig, device: &Device) -> Self {
        let c = cfg.init_channels;
        let mut layers = Vec::new();
        let mut c_prev = c;
        for (stage, c_stage) in [c, 2 * c, 4 * c].into_iter().enumerate() {
            if stage > 0 {
                layers.push(Nb201EvalLayer::Reduction(ResNetBlock::new(
                    c_prev, c_stage, device,
                )));
                c_prev = c_stage;
            }
            for _ in 0..cfg.layers {
                let ops = arch
                    .edges
                    .iter()
                    .map(|&k| Op::new(k, c_stage, 1, true, OpFlavor::Nb201Search, device))
                    .collect();
                layers.push(Nb201EvalLayer::Cell(Nb201EvalCell { ops }));
            }
        }
        Nb201Network {
            stem_conv: conv(cfg.in_channels, c, 3, 1, 1, 1, 1, device),
            stem_bn: BatchNorm2d::new(c, true, device),
            layers,
            lastact_bn: BatchNorm2d::new(c_prev, true, device),
            classifier: LinearConfig::new(c_prev, cfg.num_classes).init(device),
        }
    }

    fn forward(&self, x: Tensor<4>, pass: Pass) -> Tensor<2> {
        let bn = pass.bn();
        let mut h = self.stem_bn.forward(self.stem_conv.forward(x), bn);
        for layer in &self.layers {
            h = match layer {
                Nb201EvalLayer::Cell(cell) => cell.forward(h, bn),
                Nb201EvalLayer::Reduction(block) => block.forward(h, bn),
            };
        }
        self.classifier
            .forward(global_avg_pool(relu(self.lastact_bn.forward(h, bn))))
    }

    fn macs(&self, input_size: usize) -> u64 {
        let mut size = input_size;
        let mut total = conv_macs(&self.stem_conv, size * size);
        for layer in &self.layers {
            match layer {
                Nb201EvalLayer::Cell(cell) => {
                    total += cell.ops.iter().map(|o| o.macs(size * size)).sum::<u64>();
                }
                Nb201EvalLayer::Reduction(b) => {
                    size /= 2;
                    let px = size * size;
                    total += b.conv_a.macs(px) + b.conv_b.macs(px) + conv_macs(&b.downsample, px);
                }
            }
        }
        let [i, o] = self.classifier.weight.lazy_shape().dims::<2>();
        total + (i * o) as u64
    }
}

/// An evaluation network of either family.
#[derive(Module, Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Network {
    /// DARTS-like genotype.
    Darts(DartsNetwork),
    /// NAS-Bench-201 cell.
    Nb201(Nb201Network),
}

impl Network {
    /// Build the network of `arch` with `cfg` on `device` (PyTorch's default initialisation; use
    /// [`crate::supernet::reset_parameters`] for a seeded, backend-independent one).
    pub fn new(arch: &Architecture, cfg: &NetworkConfig, device: &Device) -> Result<Self> {
        cfg.validate(arch)?;
        Ok(match arch {
            Architecture::Darts(g) => {
                g.validate()?;
                Network::Darts(DartsNetwork::new(g, cfg, device))
            }
            Architecture::Nb201(a) => Network::Nb201(Nb201Network::new(a, cfg, device)),
        })
    }

    /// Logits `[batch, classes]` of `x` `[batch, in_channels, size, size]`, and the auxiliary
    /// head's logits in a training pass of a network that has one.
    pub fn forward(&self, x: Tensor<4>, pass: Pass) -> (Tensor<2>, Option<Tensor<2>>) {
        match self {
            Network::Darts(n) => n.forward(x, pass),
            Network::Nb201(n) => (n.forward(x, pass), None),
        }
    }

    /// Learnable parameters, auxiliary head included (the reference's `model.parameters()`).
    pub fn params(&self) -> usize {
        learnable_params(self)
    }

    /// Learnable parameters of the auxiliary head (0 without one).
    pub fn auxiliary_params(&self) -> usize {
        match self {
            Network::Darts(DartsNetwork {
                auxiliary: Some(h), ..
            }) => learnable_params(h),
            _ => 0,
        }
    }

    /// Multiply-accumulates of one inference forward pass of one `input_size`² image:
    /// convolutions and the classifier (the auxiliary head is not run at inference; pools, BN and
    /// additions are not counted). This is the quantity NAS papers and NAS-Bench-201 report as
    /// "FLOPs".
    pub fn flops(&self, input_size: usize) -> u64 {
        match self {
            Network::Darts(n) => n.macs(input_size),
            Network::Nb201(n) => n.macs(input_size),
        }
    }
}

/// What `darts-pt info --genotype / --arch-string` reports (keys of `--json`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NetworkInfo {
    /// The architecture's text.
    pub architecture: String,
    /// The network's size knobs.
    pub config: NetworkConfig,
    /// Learnable parameters, auxiliary head included.
    pub params: usize,
    /// Learnable parameters without the auxiliary head (what papers report).
    pub params_without_auxiliary: usize,
    /// Multiply-accumulates of one inference forward pass of one image.
    pub flops: u64,
}

/// Describe the network of `arch` with `cfg` (built lazily; no weights are initialised).
pub fn network_info(arch: &Architecture, cfg: &NetworkConfig) -> Result<NetworkInfo> {
    let net = Network::new(arch, cfg, &Device::flex())?;
    let params = net.params();
    Ok(NetworkInfo {
        architecture: arch.to_string(),
        config: cfg.clone(),
        params,
        params_without_auxiliary: params - net.auxiliary_params(),
        flops: net.flops(cfg.input_size),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_path_keeps_the_expectation() {
        let device = Device::flex();
        device.seed(7);
        let x = Tensor::<4>::ones([20_000, 2, 1, 1], &device);
        let y = drop_path(x.clone(), 0.2);
        let mean = y.clone().mean().into_scalar::<f64>();
        assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
        // Whole samples are dropped or kept: each sample is 0 or 1 / 0.8.
        let v: Vec<f32> = y.into_data().convert::<f32>().try_into_vec().unwrap();
        assert!(v.iter().all(|&a| a == 0.0 || (a - 1.25).abs() < 1e-6));
        let dropped = v.iter().filter(|&&a| a == 0.0).count() as f64 / v.len() as f64;
        assert!((dropped - 0.2).abs() < 0.01, "dropped {dropped}");
        assert_eq!(drop_path(x.clone(), 0.0).into_data(), x.into_data());
    }

    #[test]
    fn auxiliary_head_needs_32_pixel_inputs() {
        let arch: Architecture = "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|"
            .parse()
            .unwrap();
        let mut cfg = NetworkConfig::paper(&arch);
        cfg.auxiliary = true;
        assert!(
            cfg.validate(&arch)
                .unwrap_err()
                .to_string()
                .contains("auxiliary")
        );
        let darts: Architecture = "Genotype(normal=[('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 1), ('skip_connect', 0), ('skip_connect', 1)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('max_pool_3x3', 1)], reduce_concat=range(2, 6))".parse().unwrap();
        let mut cfg = NetworkConfig::paper(&darts);
        cfg.validate(&darts).unwrap();
        cfg.input_size = 16;
        let e = cfg.validate(&darts).unwrap_err().to_string();
        assert!(e.contains("--no-auxiliary") && e.contains("give 4"), "{e}");
        cfg.auxiliary = false;
        cfg.validate(&darts).unwrap();
    }
}
