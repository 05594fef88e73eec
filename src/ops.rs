//! Candidate operations and their building blocks, each a Burn module with the reference's exact
//! definition (spec §1.1, §1.3).
//!
//! Every forward takes a [`BnMode`] so that the caller decides, per pass, whether BatchNorm uses
//! batch statistics (training, PT scoring as in the reference) or running statistics
//! (evaluation), independently of the autodiff device.
//!
//! Tensor layout is `[batch, channels, height, width]` throughout.

use burn::module::{Module, Param, RunningState};
use burn::nn::PaddingConfig2d;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::tensor::module::{batch_norm, batch_norm_train};
use burn::tensor::{Device, Distribution, Tensor};

use crate::space::OpKind;

/// How BatchNorm layers normalise in one forward pass.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BnMode {
    /// Batch statistics, running statistics updated (PyTorch `model.train()`).
    Train,
    /// Batch statistics, running statistics left untouched. This is what the reference's PT scoring
    /// computes (`model.train()` under `no_grad`) without its side effect on the buffers.
    BatchStats,
    /// Running statistics (PyTorch `model.eval()`).
    Eval,
}

/// BatchNorm over `[batch, channels, height, width]` with PyTorch semantics: biased batch
/// variance for normalisation, unbiased variance in the running estimate, momentum 0.1,
/// ε = 1e-5. With `affine = false` (all BNs inside search cells) it has no learnable parameters.
#[derive(Module, Debug)]
pub struct BatchNorm2d {
    /// γ, present only when affine.
    pub weight: Option<Param<Tensor<1>>>,
    /// β, present only when affine.
    pub bias: Option<Param<Tensor<1>>>,
    /// Running mean `[channels]`.
    pub running_mean: RunningState<Tensor<1>>,
    /// Running (unbiased) variance `[channels]`.
    pub running_var: RunningState<Tensor<1>>,
    /// Channels.
    pub num_features: usize,
    /// Running-statistics momentum (PyTorch convention).
    pub momentum: f64,
    /// Numerical-stability term.
    pub epsilon: f64,
}

impl BatchNorm2d {
    /// A BatchNorm of `channels` features; `affine` adds γ = 1 and β = 0.
    pub fn new(channels: usize, affine: bool, device: &Device) -> Self {
        let (weight, bias) = if affine {
            (
                Some(Param::from_tensor(Tensor::ones([channels], device))),
                Some(Param::from_tensor(Tensor::zeros([channels], device))),
            )
        } else {
            (None, None)
        };
        BatchNorm2d {
            weight,
            bias,
            running_mean: RunningState::new(Tensor::zeros([channels], device)),
            running_var: RunningState::new(Tensor::ones([channels], device)),
            num_features: channels,
            momentum: 0.1,
            epsilon: 1e-5,
        }
    }

    fn affine(&self, device: &Device) -> (Tensor<1>, Tensor<1>) {
        match (&self.weight, &self.bias) {
            (Some(w), Some(b)) => (w.val(), b.val()),
            _ => (
                Tensor::ones([self.num_features], device),
                Tensor::zeros([self.num_features], device),
            ),
        }
    }

    /// Normalise `x` `[batch, channels, height, width]`. With batch statistics and the fused
    /// kernels on flex, one fused op (no γ/β work when affine-free); Burn's composition otherwise.
    pub fn forward(&self, x: Tensor<4>, mode: BnMode) -> Tensor<4> {
        if mode != BnMode::Eval
            && let Some(out) = self.forward_fused(&x, mode)
        {
            return out;
        }
        let device = x.device();
        let (gamma, beta) = self.affine(&device);
        match mode {
            BnMode::Eval => {
                let mean = self.running_mean.value_sync().to_device(&device);
                let var = self.running_var.value_sync().to_device(&device);
                batch_norm(x, gamma, beta, mean, var, self.epsilon)
            }
            BnMode::BatchStats => batch_norm_train(x, gamma, beta, self.epsilon).output,
            BnMode::Train => {
                let [b, _, h, w] = x.dims();
                let n = (b * h * w) as f64;
                let out = batch_norm_train(x, gamma, beta, self.epsilon);
                let unbiased = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
                let m = self.momentum;
                let mean = self.running_mean.value_sync().to_device(&device).detach();
                let var = self.running_var.value_sync().to_device(&device).detach();
                let new_mean = mean
                    .mul_scalar(1.0 - m)
                    .add(out.mean.detach().mul_scalar(m));
                let new_var = var
                    .mul_scalar(1.0 - m)
                    .add(out.variance.detach().mul_scalar(m * unbiased));
                self.running_mean.update(new_mean.detach());
                self.running_var.update(new_var.detach());
                // Fold the update in now, so that `value()` (evaluation, saving) is never stale.
                let _ = self.running_mean.value_sync();
                let _ = self.running_var.value_sync();
                out.output
            }
        }
    }
}

impl BatchNorm2d {
    /// The fused batch-statistics path (see [`crate::kernels`]); `None` where it does not apply.
    fn forward_fused(&self, x: &Tensor<4>, mode: BnMode) -> Option<Tensor<4>> {
        let affine = match (&self.weight, &self.bias) {
            (Some(w), Some(b)) => Some((w.val(), b.val())),
            _ => None,
        };
        let (output, mean, var) = crate::kernels::batch_norm_train(
            x,
            affine.as_ref().map(|(g, b)| (g, b)),
            self.epsilon,
        )?;
        if mode == BnMode::Train {
            let [b, _, h, w] = x.dims();
            let n = (b * h * w) as f64;
            let unbiased = if n > 1.0 { n / (n - 1.0) } else { 1.0 };
            let m = self.momentum;
            let device = x.device();
            let (batch_mean, batch_var) = (mean, var);
            let old_mean = self.running_mean.value_sync().to_device(&device).detach();
            let old_var = self.running_var.value_sync().to_device(&device).detach();
            let new_mean = old_mean.mul_scalar(1.0 - m).add(batch_mean.mul_scalar(m));
            let new_var = old_var
                .mul_scalar(1.0 - m)
                .add(batch_var.mul_scalar(m * unbiased));
            self.running_mean.update(new_mean.detach());
            self.running_var.update(new_var.detach());
            let _ = self.running_mean.value_sync();
            let _ = self.running_var.value_sync();
        }
        Some(output)
    }
}

/// What the out-edges of one node compute from the node's tensor alone, computed at most once and
/// shared by every op that needs it: the ReLU of the ReLU-first ops (ReLU-Conv-BN, separable and
/// dilated convolutions, FactorizedReduce) and the parameter-free 3×3 pools (`avg_pool_3x3`,
/// `max_pool_3x3`, keyed by kind and stride; a DARTS pool's BatchNorm stays per edge, since
/// each edge keeps its own running statistics). Both are functions of the input only, so sharing
/// changes no forward value; in the backward pass the edges' gradients are summed before one
/// ReLU or pool backward instead of after (float summation order only). The reference computes
/// one per op.
///
/// The convolutions of ReLU-Conv-BN ops declared with [`NodeShare::plan_conv`] (the
/// `nor_conv_kxk` of a NAS-Bench-201 node's out-edges) are computed together, per geometry, on
/// the first request: one im2col of the ReLU per image and one input-gradient pass for all of
/// them ([`crate::kernels`]; each output is the separate convolution's bit for bit).
#[derive(Debug, Default)]
pub struct NodeShare<'a> {
    relu: std::cell::OnceCell<Tensor<4>>,
    /// `[average][stride − 1]`.
    pools: [[std::cell::OnceCell<Tensor<4>>; 2]; 2],
    /// Planned convolutions of `relu(x)`, grouped by geometry.
    convs: std::cell::RefCell<Vec<ConvGroup<'a>>>,
}

/// Convolutions of one geometry planned on a [`NodeShare`], and their outputs once computed
/// (in the order of `convs`).
#[derive(Debug)]
struct ConvGroup<'a> {
    convs: Vec<&'a Conv2d>,
    outs: std::cell::OnceCell<Vec<Tensor<4>>>,
}

/// Whether `a` and `b` convolve one input the same way (kernel, stride, padding, dilation,
/// groups, channels), so that they can be computed together.
fn same_geometry(a: &Conv2d, b: &Conv2d) -> bool {
    a.kernel_size == b.kernel_size
        && a.stride == b.stride
        && a.dilation == b.dilation
        && a.groups == b.groups
        && a.padding == b.padding
        && a.bias.is_none() == b.bias.is_none()
        && a.weight.lazy_shape().dims::<4>()[1] == b.weight.lazy_shape().dims::<4>()[1]
}

impl<'a> NodeShare<'a> {
    /// Nothing computed yet.
    pub fn new() -> Self {
        NodeShare::default()
    }

    /// Declares that `conv` will be applied to `relu(x)` through [`NodeShare::conv`] in this
    /// forward pass, so that it is computed together with the other planned convolutions of its
    /// geometry. Plan only convolutions whose output is used: a planned one is computed on the
    /// first request of its group. Planning after that request has no effect on the group.
    pub fn plan_conv(&self, conv: &'a Conv2d) {
        let mut groups = self.convs.borrow_mut();
        if groups
            .iter()
            .any(|g| g.convs.iter().any(|c| c.weight.id == conv.weight.id))
        {
            return;
        }
        match groups
            .iter_mut()
            .find(|g| g.outs.get().is_none() && same_geometry(g.convs[0], conv))
        {
            Some(g) => g.convs.push(conv),
            None => groups.push(ConvGroup {
                convs: vec![conv],
                outs: std::cell::OnceCell::new(),
            }),
        }
    }

    /// `conv.forward(relu_x)`, `[b, c_in, h, w]` → `[b, c_out, h', w']`, for `relu_x` =
    /// [`NodeShare::relu`] of the node's tensor (the same tensor on every call): the output of its
    /// planned group, computed on the first request of any member, or the convolution alone when
    /// it was not planned.
    pub fn conv(&self, relu_x: &Tensor<4>, conv: &Conv2d) -> Tensor<4> {
        let groups = self.convs.borrow();
        for g in groups.iter() {
            if let Some(i) = g.convs.iter().position(|c| c.weight.id == conv.weight.id) {
                let outs = g
                    .outs
                    .get_or_init(|| crate::kernels::conv2d_shared(relu_x, &g.convs));
                return outs[i].clone();
            }
        }
        drop(groups);
        crate::kernels::conv2d(relu_x.clone(), conv)
    }

    /// `relu(x)` of `x` `[b, c, h, w]` (same shape), computed on the first call and reused after
    /// (`x` must be the same tensor on every call).
    pub fn relu(&self, x: &Tensor<4>) -> Tensor<4> {
        self.relu
            .get_or_init(|| crate::kernels::relu(x.clone()))
            .clone()
    }

    /// The 3×3 pool of `x` `[b, c, h, w]` → `[b, c, ⌊(h−1)/stride⌋+1, ⌊(w−1)/stride⌋+1]`
    /// (`average`: `avg_pool_3x3` with padding not counted, as the reference's
    /// `nn.AvgPool2d(3, stride, 1, count_include_pad=False)`; otherwise `max_pool_3x3`, padding
    /// 1), computed on the first call for this kind and stride and reused after (`x` must be the
    /// same tensor on every call). Strides other than 1 and 2 are computed and not shared.
    pub fn pool(&self, x: &Tensor<4>, stride: usize, average: bool) -> Tensor<4> {
        match stride {
            1 | 2 => self.pools[average as usize][stride - 1]
                .get_or_init(|| crate::kernels::pool3x3(x.clone(), stride, average))
                .clone(),
            _ => crate::kernels::pool3x3(x.clone(), stride, average),
        }
    }
}

/// A bias-free convolution with symmetric padding.
pub fn conv(
    c_in: usize,
    c_out: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    groups: usize,
    device: &Device,
) -> Conv2d {
    Conv2dConfig::new([c_in, c_out], [kernel, kernel])
        .with_stride([stride, stride])
        .with_padding(PaddingConfig2d::Explicit(
            padding, padding, padding, padding,
        ))
        .with_dilation([dilation, dilation])
        .with_groups(groups)
        .with_bias(false)
        .init(device)
}

/// ReLU → Conv (no bias) → BN. DARTS preprocessing and NAS-Bench-201's `nor_conv_kxk`.
#[derive(Module, Debug)]
pub struct ReluConvBn {
    /// The convolution.
    pub conv: Conv2d,
    /// The BatchNorm.
    pub bn: BatchNorm2d,
}

impl ReluConvBn {
    /// `c_in → c_out`, kernel `k`, stride `s`, padding `p`.
    pub fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        s: usize,
        p: usize,
        affine: bool,
        device: &Device,
    ) -> Self {
        ReluConvBn {
            conv: conv(c_in, c_out, k, s, p, 1, 1, device),
            bn: BatchNorm2d::new(c_out, affine, device),
        }
    }

    /// `[b, c_in, h, w]` → `[b, c_out, h', w']`.
    pub fn forward(&self, x: Tensor<4>, bn: BnMode) -> Tensor<4> {
        self.forward_relu(crate::kernels::relu(x), bn)
    }

    /// [`ReluConvBn::forward`] from the already computed `relu(x)`.
    pub fn forward_relu(&self, relu_x: Tensor<4>, bn: BnMode) -> Tensor<4> {
        self.bn
            .forward(crate::kernels::conv2d(relu_x, &self.conv), bn)
    }

    /// [`ReluConvBn::forward`] of a node's tensor `x` with its ReLU and convolution taken from
    /// `share` ([`NodeShare::relu`], [`NodeShare::conv`]).
    pub fn forward_shared(&self, x: &Tensor<4>, share: &NodeShare, bn: BnMode) -> Tensor<4> {
        self.bn.forward(share.conv(&share.relu(x), &self.conv), bn)
    }
}

/// `dil_conv_kxk`: ReLU → depthwise k×k (dilation 2) → pointwise 1×1 → BN.
#[derive(Module, Debug)]
pub struct DilConv {
    /// Depthwise convolution.
    pub depthwise: Conv2d,
    /// Pointwise convolution.
    pub pointwise: Conv2d,
    /// The BatchNorm.
    pub bn: BatchNorm2d,
}

impl DilConv {
    /// Kernel `k`, stride `s`, padding `p`, dilation `d`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        s: usize,
        p: usize,
        d: usize,
        affine: bool,
        device: &Device,
    ) -> Self {
        DilConv {
            depthwise: conv(c_in, c_in, k, s, p, d, c_in, device),
            pointwise: conv(c_in, c_out, 1, 1, 0, 1, 1, device),
            bn: BatchNorm2d::new(c_out, affine, device),
        }
    }

    /// `[b, c_in, h, w]` → `[b, c_out, h / s, w / s]`.
    pub fn forward(&self, x: Tensor<4>, bn: BnMode) -> Tensor<4> {
        self.forward_relu(crate::kernels::relu(x), bn)
    }

    /// [`DilConv::forward`] from the already computed `relu(x)`.
    pub fn forward_relu(&self, relu_x: Tensor<4>, bn: BnMode) -> Tensor<4> {
        let depthwise = crate::kernels::conv2d(relu_x, &self.depthwise);
        self.bn
            .forward(crate::kernels::conv2d(depthwise, &self.pointwise), bn)
    }
}

/// `sep_conv_kxk`: two stacked [`DilConv`]-like blocks with dilation 1; only the first is strided.
#[derive(Module, Debug)]
pub struct SepConv {
    /// First block (strided).
    pub first: DilConv,
    /// Second block (stride 1).
    pub second: DilConv,
}

impl SepConv {
    /// Kernel `k`, stride `s`, padding `p`.
    pub fn new(
        c_in: usize,
        c_out: usize,
        k: usize,
        s: usize,
        p: usize,
        affine: bool,
        device: &Device,
    ) -> Self {
        SepConv {
            first: DilConv::new(c_in, c_in, k, s, p, 1, affine, device),
            second: DilConv::new(c_in, c_out, k, 1, p, 1, affine, device),
        }
    }

    /// `[b, c_in, h, w]` → `[b, c_out, h / s, w / s]`.
    pub fn forward(&self, x: Tensor<4>, bn: BnMode) -> Tensor<4> {
        self.forward_relu(crate::kernels::relu(x), bn)
    }

    /// [`SepConv::forward`] from the already computed `relu(x)`.
    pub fn forward_relu(&self, relu_x: Tensor<4>, bn: BnMode) -> Tensor<4> {
        self.second.forward(self.first.forward_relu(relu_x, bn), bn)
    }
}

/// FactorizedReduce: ReLU, two 1×1 stride-2 convolutions (the second on the input shifted by one
/// pixel), channel concat, BN. Halves height and width.
///
/// The darts-pt DARTS version drops the first row and column for the shifted branch; the
/// NAS-Bench-201 version pads one zero row and column at the bottom/right first (`pad_shift`).
#[derive(Module, Debug)]
pub struct FactorizedReduce {
    /// Branch on `x`.
    pub conv_1: Conv2d,
    /// Branch on the shifted `x`.
    pub conv_2: Conv2d,
    /// The BatchNorm.
    pub bn: BatchNorm2d,
    /// NAS-Bench-201 variant: pad right/bottom before shifting.
    pub pad_shift: bool,
}

impl FactorizedReduce {
    /// `c_in → c_out` (c_out even).
    pub fn new(c_in: usize, c_out: usize, affine: bool, pad_shift: bool, device: &Device) -> Self {
        assert!(
            c_out % 2 == 0,
            "FactorizedReduce needs an even number of output channels"
        );
        FactorizedReduce {
            conv_1: conv(c_in, c_out / 2, 1, 2, 0, 1, 1, device),
            conv_2: conv(c_in, c_out - c_out / 2, 1, 2, 0, 1, 1, device),
            bn: BatchNorm2d::new(c_out, affine, device),
            pad_shift,
        }
    }

    /// `[b, c_in, h, w]` → `[b, c_out, h / 2, w / 2]`.
    pub fn forward(&self, x: Tensor<4>, bn: BnMode) -> Tensor<4> {
        self.forward_relu(crate::kernels::relu(x), bn)
    }

    /// [`FactorizedReduce::forward`] from the already computed `relu(x)`.
    pub fn forward_relu(&self, x: Tensor<4>, bn: BnMode) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let shifted = if self.pad_shift {
            x.clone()
                .pad((0, 1, 0, 1), burn::tensor::ops::PadMode::Constant(0.0))
                .slice([0..x.dims()[0], 0..x.dims()[1], 1..h + 1, 1..w + 1])
        } else {
            let [b, c, _, _] = x.dims();
            x.clone().slice([0..b, 0..c, 1..h, 1..w])
        };
        let out = Tensor::cat(
            vec![
                crate::kernels::conv2d(x, &self.conv_1),
                crate::kernels::conv2d(shifted, &self.conv_2),
            ],
            1,
        );
        self.bn.forward(out, bn)
    }
}

/// 3×3 max or average pooling (padding 1, average excludes padding), optionally followed by an
/// affine-free BN (DARTS search space only, spec §1.1).
#[derive(Module, Debug)]
pub struct Pool {
    /// Average (true) or max (false).
    pub average: bool,
    /// Stride (1 or 2).
    pub stride: usize,
    /// BN after the pool (DARTS search cells).
    pub bn: Option<BatchNorm2d>,
}

impl Pool {
    /// `[b, c, h, w]` → `[b, c, h / s, w / s]`.
    pub fn forward(&self, x: Tensor<4>, bn: BnMode) -> Tensor<4> {
        let y = crate::kernels::pool3x3(x, self.stride, self.average);
        self.normalise(y, bn)
    }

    /// [`Pool::forward`] with the pooling taken from `share` (computed once per node).
    pub fn forward_shared(&self, x: &Tensor<4>, share: &NodeShare, bn: BnMode) -> Tensor<4> {
        self.normalise(share.pool(x, self.stride, self.average), bn)
    }

    /// The BatchNorm after the pool, where there is one.
    fn normalise(&self, y: Tensor<4>, bn: BnMode) -> Tensor<4> {
        match &self.bn {
            Some(b) => b.forward(y, bn),
            None => y,
        }
    }
}

/// Output shape of an op with `stride` on `[b, c, h, w]` (zero and noise ops).
fn strided_shape(x: &Tensor<4>, stride: usize) -> [usize; 4] {
    let [b, c, h, w] = x.dims();
    [b, c, h.div_ceil(stride), w.div_ceil(stride)]
}

/// `none`: zero output of the (strided) input shape.
#[derive(Module, Debug)]
pub struct Zero {
    /// Stride (1 or 2).
    pub stride: usize,
}

/// `noise`: N(0, 1) noise of the (strided) input shape, independent of the input.
#[derive(Module, Debug)]
pub struct Noise {
    /// Stride (1 or 2).
    pub stride: usize,
}

/// `skip_connect` with stride 1.
#[derive(Module, Debug)]
pub struct Identity {
    /// Always 1; kept so the module has a field.
    pub stride: usize,
}

/// One candidate operation of a mixed op.
#[derive(Module, Debug)]
pub enum Op {
    /// `none`.
    Zero(Zero),
    /// `noise`.
    Noise(Noise),
    /// `skip_connect`, stride 1.
    Identity(Identity),
    /// `skip_connect`, stride 2.
    FactorizedReduce(FactorizedReduce),
    /// `max_pool_3x3`, `avg_pool_3x3`.
    Pool(Pool),
    /// `sep_conv_3x3`, `sep_conv_5x5`.
    SepConv(SepConv),
    /// `dil_conv_3x3`, `dil_conv_5x5`.
    DilConv(DilConv),
    /// `nor_conv_1x1`, `nor_conv_3x3`.
    ReluConvBn(ReluConvBn),
}

/// Where an op lives: decides the reference's small differences between the spaces.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpFlavor {
    /// darts-pt DARTS search cell: BN after pools, FactorizedReduce without padding.
    DartsSearch,
    /// NAS-Bench-201 search cell: no BN after pools.
    Nb201Search,
    /// DARTS evaluation network (spec §4.1): no BN after pools, FactorizedReduce as in search.
    DartsEval,
}

impl Op {
    /// Build op `kind` for `c` channels with `stride`; `affine` applies to every BN inside.
    pub fn new(
        kind: OpKind,
        c: usize,
        stride: usize,
        affine: bool,
        flavor: OpFlavor,
        device: &Device,
    ) -> Self {
        let pool_bn = || match flavor {
            OpFlavor::DartsSearch => Some(BatchNorm2d::new(c, false, device)),
            OpFlavor::Nb201Search | OpFlavor::DartsEval => None,
        };
        match kind {
            OpKind::None => Op::Zero(Zero { stride }),
            OpKind::Noise => Op::Noise(Noise { stride }),
            OpKind::SkipConnect if stride == 1 => Op::Identity(Identity { stride }),
            OpKind::SkipConnect => Op::FactorizedReduce(FactorizedReduce::new(
                c,
                c,
                affine,
                flavor == OpFlavor::Nb201Search,
                device,
            )),
            OpKind::MaxPool3x3 => Op::Pool(Pool {
                average: false,
                stride,
                bn: pool_bn(),
            }),
            OpKind::AvgPool3x3 => Op::Pool(Pool {
                average: true,
                stride,
                bn: pool_bn(),
            }),
            OpKind::SepConv3x3 => Op::SepConv(SepConv::new(c, c, 3, stride, 1, affine, device)),
            OpKind::SepConv5x5 => Op::SepConv(SepConv::new(c, c, 5, stride, 2, affine, device)),
            OpKind::DilConv3x3 => Op::DilConv(DilConv::new(c, c, 3, stride, 2, 2, affine, device)),
            OpKind::DilConv5x5 => Op::DilConv(DilConv::new(c, c, 5, stride, 4, 2, affine, device)),
            OpKind::NorConv1x1 => {
                Op::ReluConvBn(ReluConvBn::new(c, c, 1, stride, 0, affine, device))
            }
            OpKind::NorConv3x3 => {
                Op::ReluConvBn(ReluConvBn::new(c, c, 3, stride, 1, affine, device))
            }
        }
    }

    /// Whether the op's output is identically zero (`none`): a mixed op never computes it.
    pub fn is_zero(&self) -> bool {
        matches!(self, Op::Zero(_))
    }

    /// `[b, c, h, w]` → `[b, c, h / s, w / s]`.
    pub fn forward(&self, x: Tensor<4>, bn: BnMode) -> Tensor<4> {
        match self {
            Op::Zero(z) => Tensor::zeros(strided_shape(&x, z.stride), &x.device()),
            Op::Noise(n) => {
                let shape = strided_shape(&x, n.stride);
                Tensor::random(shape, Distribution::Normal(0.0, 1.0), &x.device())
            }
            Op::Identity(_) => x,
            Op::FactorizedReduce(f) => f.forward(x, bn),
            Op::Pool(p) => p.forward(x, bn),
            Op::SepConv(s) => s.forward(x, bn),
            Op::DilConv(d) => d.forward(x, bn),
            Op::ReluConvBn(r) => r.forward(x, bn),
        }
    }

    /// [`Op::forward`] with what the node's out-edges share taken from `share`: ops that start
    /// with a ReLU take it from there, pools their pooling (see [`NodeShare`]); the others read
    /// `x`.
    pub fn forward_shared(&self, x: &Tensor<4>, share: &NodeShare, bn: BnMode) -> Tensor<4> {
        match self {
            Op::FactorizedReduce(f) => f.forward_relu(share.relu(x), bn),
            Op::SepConv(s) => s.forward_relu(share.relu(x), bn),
            Op::DilConv(d) => d.forward_relu(share.relu(x), bn),
            Op::ReluConvBn(r) => r.forward_shared(x, share, bn),
            Op::Pool(p) => p.forward_shared(x, share, bn),
            _ => self.forward(x.clone(), bn),
        }
    }
}

/// Multiply-accumulates of `conv` producing `out_pixels` output pixels (per image): output
/// elements × (input channels / groups) × kernel area.
pub fn conv_macs(conv: &Conv2d, out_pixels: usize) -> u64 {
    let [o, i, kh, kw] = conv.weight.lazy_shape().dims::<4>();
    (o * i * kh * kw * out_pixels) as u64
}

impl Op {
    /// Multiply-accumulates of the op's convolutions for one image whose output has
    /// `out_pixels` pixels (pools, identity and `none` count 0).
    pub fn macs(&self, out_pixels: usize) -> u64 {
        match self {
            Op::Zero(_) | Op::Noise(_) | Op::Identity(_) | Op::Pool(_) => 0,
            Op::FactorizedReduce(f) => f.macs(out_pixels),
            Op::SepConv(s) => s.first.macs(out_pixels) + s.second.macs(out_pixels),
            Op::DilConv(d) => d.macs(out_pixels),
            Op::ReluConvBn(r) => r.macs(out_pixels),
        }
    }
}

impl ReluConvBn {
    /// Multiply-accumulates for `out_pixels` output pixels.
    pub fn macs(&self, out_pixels: usize) -> u64 {
        conv_macs(&self.conv, out_pixels)
    }
}

impl DilConv {
    /// Multiply-accumulates for `out_pixels` output pixels.
    pub fn macs(&self, out_pixels: usize) -> u64 {
        conv_macs(&self.depthwise, out_pixels) + conv_macs(&self.pointwise, out_pixels)
    }
}

impl FactorizedReduce {
    /// Multiply-accumulates for `out_pixels` output pixels.
    pub fn macs(&self, out_pixels: usize) -> u64 {
        conv_macs(&self.conv_1, out_pixels) + conv_macs(&self.conv_2, out_pixels)
    }
}
