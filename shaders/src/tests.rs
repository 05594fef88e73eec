//! Each fused op against Burn's composition on flex: outputs and gradients.

use burn::tensor::activation::softmax;
use burn::tensor::module::{avg_pool2d, batch_norm_train as burn_bn};
use burn::tensor::ops::AvgPoolOptions;
use burn::tensor::{Device, Distribution, Tensor};

/// max |a − b| / max |b|.
fn rel<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    let a: Vec<f32> = a.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    let b: Vec<f32> = b.into_data().convert::<f32>().try_to_vec::<f32>().unwrap();
    assert_eq!(a.len(), b.len());
    let diff = a
        .iter()
        .zip(&b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    let scale = b.iter().map(|y| y.abs()).fold(0.0, f32::max).max(1e-30);
    diff / scale
}

fn ad() -> Device {
    Device::flex().autodiff()
}

fn rand<const D: usize>(shape: [usize; D], dev: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.5, 2.0), dev)
}

/// Tolerance of BatchNorm (f64 statistics against Burn's f32 ones).
const BN_TOL: f32 = 1e-5;

#[test]
fn batch_norm_affine_free_matches_burn() {
    let dev = ad();
    Device::flex().seed(1);
    for shape in [[4, 3, 5, 5], [2, 16, 8, 8], [64, 2, 3, 3]] {
        let x0 = rand(shape, &Device::flex());
        let r = rand(shape, &Device::flex()).autodiff();
        let c = shape[1];
        let x = x0.clone().autodiff().require_grad();
        let plain = burn_bn(
            x.clone(),
            Tensor::ones([c], &dev),
            Tensor::zeros([c], &dev),
            1e-5,
        );
        let grads = plain.output.clone().mul(r.clone()).sum().backward();
        let dx_plain = x.grad(&grads).unwrap();

        let x = x0.clone().autodiff().require_grad();
        let fused = crate::batch_norm_train(&x, None, 1e-5).expect("flex");
        let grads = fused.output.clone().mul(r.clone()).sum().backward();
        let dx = x.grad(&grads).unwrap();
        assert!(rel(fused.output.clone(), plain.output.clone()) < BN_TOL);
        assert!(rel(dx, dx_plain) < BN_TOL, "dx {shape:?}");
        let mean = Tensor::<1>::from_floats(fused.mean.as_slice(), &Device::flex());
        let var = Tensor::<1>::from_floats(fused.var.as_slice(), &Device::flex());
        assert!(rel(mean, plain.mean.inner()) < BN_TOL);
        assert!(rel(var, plain.variance.inner()) < BN_TOL);

        // Without autodiff: the same output.
        let out = crate::batch_norm_train(&x0, None, 1e-5).unwrap().output;
        assert!(rel(out, plain.output.inner()) < BN_TOL);
    }
}

#[test]
fn batch_norm_affine_matches_burn() {
    Device::flex().seed(2);
    let shape = [6, 4, 7, 7];
    let x0 = rand(shape, &Device::flex());
    let g0 = rand([4], &Device::flex());
    let b0 = rand([4], &Device::flex());
    let r = rand(shape, &Device::flex()).autodiff();
    let run = |fused: bool| {
        let x = x0.clone().autodiff().require_grad();
        let g = g0.clone().autodiff().require_grad();
        let b = b0.clone().autodiff().require_grad();
        let y = if fused {
            crate::batch_norm_train(&x, Some((&g, &b)), 1e-5)
                .unwrap()
                .output
        } else {
            burn_bn(x.clone(), g.clone(), b.clone(), 1e-5).output
        };
        let grads = y.clone().mul(r.clone()).sum().backward();
        (
            y.inner(),
            x.grad(&grads).unwrap(),
            g.grad(&grads).unwrap(),
            b.grad(&grads).unwrap(),
        )
    };
    let (y1, dx1, dg1, db1) = run(true);
    let (y0, dx0, dg0, db0) = run(false);
    assert!(rel(y1, y0) < BN_TOL);
    assert!(rel(dx1, dx0) < BN_TOL);
    assert!(rel(dg1, dg0) < BN_TOL);
    assert!(rel(db1, db0) < BN_TOL);
}

#[test]
fn avg_pool_matches_burn() {
    Device::flex().seed(3);
    for (shape, stride) in [
        ([2, 3, 5, 5], 1),
        ([2, 3, 5, 5], 2),
        ([3, 2, 8, 6], 2),
        ([1, 1, 1, 1], 1),
        ([2, 4, 8, 8], 1),
    ] {
        let x0 = rand(shape, &Device::flex());
        let opts = AvgPoolOptions::new([3, 3])
            .with_stride([stride, stride])
            .with_padding([1, 1])
            .with_count_include_pad(false);
        let x = x0.clone().autodiff().require_grad();
        let y0 = avg_pool2d(x.clone(), opts.clone());
        let r = rand(y0.dims(), &Device::flex()).autodiff();
        let g0 = x.grad(&y0.clone().mul(r.clone()).sum().backward()).unwrap();
        let x = x0.clone().autodiff().require_grad();
        let y1 = crate::avg_pool3x3(&x, stride).unwrap();
        assert_eq!(y1.dims(), y0.dims());
        let g1 = x.grad(&y1.clone().mul(r).sum().backward()).unwrap();
        assert!(rel(y1, y0.clone()) < 1e-6, "{shape:?} {stride}");
        assert!(rel(g1, g0) < 1e-6, "{shape:?} {stride}");
        let y2 = crate::avg_pool3x3(&x0, stride).unwrap();
        assert!(rel(y2, y0.inner()) < 1e-6);
    }
}

#[test]
fn weighted_sum_matches_burn() {
    Device::flex().seed(4);
    for k in [1usize, 3, 7] {
        let shape = [3, 4, 5, 5];
        let ts0: Vec<Tensor<4>> = (0..k).map(|_| rand(shape, &Device::flex())).collect();
        let a0 = rand([1, k], &Device::flex());
        let r = rand(shape, &Device::flex()).autodiff();
        let run = |fused: bool| {
            let ts: Vec<Tensor<4>> = ts0
                .iter()
                .map(|t| t.clone().autodiff().require_grad())
                .collect();
            let a = a0.clone().autodiff().require_grad();
            let w = softmax(a.clone(), 1);
            let y = if fused {
                crate::weighted_sum(&ts, &w.clone().reshape([k])).unwrap()
            } else {
                let mut acc: Option<Tensor<4>> = None;
                for (j, t) in ts.iter().enumerate() {
                    let term = t
                        .clone()
                        .mul(w.clone().slice([0..1, j..j + 1]).reshape([1, 1, 1, 1]));
                    acc = Some(match acc {
                        Some(a) => a.add(term),
                        None => term,
                    });
                }
                acc.unwrap()
            };
            let grads = y.clone().mul(r.clone()).sum().backward();
            let dts: Vec<Tensor<4>> = ts.iter().map(|t| t.grad(&grads).unwrap()).collect();
            (y.inner(), dts, a.grad(&grads).unwrap())
        };
        let (y1, d1, a1) = run(true);
        let (y0, d0, a0g) = run(false);
        assert_eq!(rel(y1, y0), 0.0, "forward is bit-identical");
        for (x, y) in d1.into_iter().zip(d0) {
            assert!(rel(x, y) < 1e-6);
        }
        assert!(rel(a1, a0g) < 1e-5, "alpha gradient, k = {k}");
        // Untracked weights (the weight step): only the terms get gradients.
        let ts: Vec<Tensor<4>> = ts0
            .iter()
            .map(|t| t.clone().autodiff().require_grad())
            .collect();
        let w = softmax(a0.clone().autodiff(), 1).reshape([k]);
        let y = crate::weighted_sum(&ts, &w).unwrap();
        let grads = y.mul(r.clone()).sum().backward();
        assert!(ts[0].grad(&grads).is_some());
    }
}

#[test]
fn other_backends_and_dtypes_are_refused() {
    let x = Tensor::<4>::zeros([1, 1, 2, 2], &Device::flex())
        .int()
        .float();
    assert!(crate::supported(&x));
    let w = Tensor::<1>::ones([2], &Device::flex());
    assert!(
        crate::weighted_sum(&[x.clone()], &w).is_none(),
        "K must equal the weights"
    );
}

#[test]
fn depthwise_conv_matches_burn() {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    Device::flex().seed(5);
    // (shape, k, stride, padding, dilation): the DARTS ops and some odd sizes.
    for (shape, k, s, p, d) in [
        ([2, 3, 8, 8], 3, 1, 1, 1),
        ([2, 3, 8, 8], 3, 2, 1, 1),
        ([2, 3, 8, 8], 5, 1, 2, 1),
        ([2, 3, 8, 8], 5, 2, 2, 1),
        ([2, 3, 8, 8], 3, 1, 2, 2),
        ([2, 3, 7, 9], 3, 2, 2, 2),
        ([1, 2, 8, 8], 5, 1, 4, 2),
        ([1, 2, 5, 6], 5, 2, 4, 2),
        ([3, 4, 2, 2], 5, 1, 4, 2),
    ] {
        let c = shape[1];
        let x0 = rand(shape, &Device::flex());
        let w0 = rand([c, 1, k, k], &Device::flex());
        let run = |fused: bool| {
            let x = x0.clone().autodiff().require_grad();
            let w = w0.clone().autodiff().require_grad();
            let y = if fused {
                crate::depthwise_conv2d(&x, &w, s, p, d).unwrap()
            } else {
                conv2d(
                    x.clone(),
                    w.clone(),
                    None,
                    ConvOptions::new([s, s], [p, p], [d, d], c),
                )
            };
            let r = Tensor::<4>::random(y.dims(), Distribution::Normal(0.0, 1.0), &Device::flex());
            (y, x, w, r)
        };
        let (y0, x_p, w_p, r) = run(false);
        let (y1, x_f, w_f, _) = run(true);
        assert_eq!(y1.dims(), y0.dims());
        let g0 = y0.clone().mul(r.clone().autodiff()).sum().backward();
        let g1 = y1.clone().mul(r.autodiff()).sum().backward();
        let what = format!("{shape:?} k{k} s{s} p{p} d{d}");
        assert!(rel(y1.inner(), y0.inner()) < 1e-5, "output {what}");
        assert!(
            rel(x_f.grad(&g1).unwrap(), x_p.grad(&g0).unwrap()) < 1e-5,
            "dx {what}"
        );
        assert!(
            rel(w_f.grad(&g1).unwrap(), w_p.grad(&g0).unwrap()) < 1e-5,
            "dw {what}"
        );
        let plain = crate::depthwise_conv2d(&x0, &w0, s, p, d).unwrap();
        assert!(
            rel(
                plain,
                conv2d(
                    x0.clone(),
                    w0.clone(),
                    None,
                    ConvOptions::new([s, s], [p, p], [d, d], c)
                )
            ) < 1e-5
        );
    }
}

#[test]
fn dense_conv_matches_burn() {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    Device::flex().seed(6);
    // (shape, c_out, k, stride, padding): ReLU-Conv-BN 1×1 and 3×3, FactorizedReduce, stems.
    for (shape, co, k, s, p) in [
        ([2, 3, 8, 8], 4, 1, 1, 0),
        ([2, 3, 8, 8], 4, 3, 1, 1),
        ([2, 3, 8, 8], 5, 3, 2, 1),
        ([2, 4, 8, 8], 2, 1, 2, 0),
        ([2, 4, 7, 7], 2, 1, 2, 0),
        ([3, 2, 5, 6], 3, 5, 1, 2),
        ([1, 3, 2, 2], 2, 3, 1, 1),
    ] {
        let ci = shape[1];
        let x0 = rand(shape, &Device::flex());
        let w0 = rand([co, ci, k, k], &Device::flex());
        let opts = ConvOptions::new([s, s], [p, p], [1, 1], 1);
        let x = x0.clone().autodiff().require_grad();
        let w = w0.clone().autodiff().require_grad();
        let y0 = conv2d(x.clone(), w.clone(), None, opts.clone());
        let r = Tensor::<4>::random(y0.dims(), Distribution::Normal(0.0, 1.0), &Device::flex());
        let g0 = y0.clone().mul(r.clone().autodiff()).sum().backward();
        let x1 = x0.clone().autodiff().require_grad();
        let w1 = w0.clone().autodiff().require_grad();
        let y1 = crate::conv2d_dense(&x1, &w1, s, p).unwrap();
        let g1 = y1.clone().mul(r.autodiff()).sum().backward();
        let what = format!("{shape:?} co{co} k{k} s{s} p{p}");
        assert!(rel(y1.inner(), y0.inner()) < 1e-6, "output {what}");
        assert!(
            rel(x1.grad(&g1).unwrap(), x.grad(&g0).unwrap()) < 1e-5,
            "dx {what}"
        );
        assert!(
            rel(w1.grad(&g1).unwrap(), w.grad(&g0).unwrap()) < 1e-5,
            "dw {what}"
        );
        // Untracked weights (the α step): only the input gradient.
        let x2 = x0.clone().autodiff().require_grad();
        let y2 = crate::conv2d_dense(&x2, &w0.clone().autodiff(), s, p).unwrap();
        let g2 = y2.sum().backward();
        assert!(x2.grad(&g2).is_some());
    }
}

#[test]
fn relu_matches_burn() {
    use burn::tensor::activation::relu as burn_relu;
    Device::flex().seed(7);
    for shape in [[2, 3, 5, 5], [64, 4, 16, 17]] {
        let x0 = rand(shape, &Device::flex());
        let r = rand(shape, &Device::flex());
        let x = x0.clone().autodiff().require_grad();
        let y0 = burn_relu(x.clone());
        let g0 = x
            .grad(&y0.clone().mul(r.clone().autodiff()).sum().backward())
            .unwrap();
        let x1 = x0.clone().autodiff().require_grad();
        let y1 = crate::relu(&x1).unwrap();
        let g1 = x1
            .grad(&y1.clone().mul(r.autodiff()).sum().backward())
            .unwrap();
        assert_eq!(rel(y1.inner(), y0.inner()), 0.0);
        assert_eq!(rel(g1, g0), 0.0);
        assert_eq!(rel(crate::relu(&x0).unwrap(), burn_relu(x0.clone())), 0.0);
    }
}

#[test]
fn max_pool_matches_burn() {
    use burn::tensor::module::max_pool2d;
    use burn::tensor::ops::MaxPoolOptions;
    Device::flex().seed(8);
    for (shape, stride) in [
        ([2, 3, 5, 5], 1),
        ([2, 3, 5, 5], 2),
        ([3, 2, 8, 6], 2),
        ([2, 4, 8, 8], 1),
        ([1, 1, 1, 1], 1),
    ] {
        let x0 = rand(shape, &Device::flex());
        let opts = MaxPoolOptions::new([3, 3])
            .with_stride([stride, stride])
            .with_padding([1, 1]);
        let x = x0.clone().autodiff().require_grad();
        let y0 = max_pool2d(x.clone(), opts.clone());
        let r = rand(y0.dims(), &Device::flex());
        let g0 = x
            .grad(&y0.clone().mul(r.clone().autodiff()).sum().backward())
            .unwrap();
        let x1 = x0.clone().autodiff().require_grad();
        let y1 = crate::max_pool3x3(&x1, stride).unwrap();
        let g1 = x1
            .grad(&y1.clone().mul(r.autodiff()).sum().backward())
            .unwrap();
        assert_eq!(rel(y1.inner(), y0.inner()), 0.0, "{shape:?} {stride}");
        assert!(rel(g1, g0) < 1e-6, "{shape:?} {stride}");
        assert_eq!(
            rel(
                crate::max_pool3x3(&x0, stride).unwrap(),
                max_pool2d(x0.clone(), opts)
            ),
            0.0
        );
    }
}

/// One tracked tensor read by every fused op and by plain Burn ops (a cell node's fan-out): the
/// fused backward passes add their input gradients to those already registered
/// (`register_input_grad`), in whatever order the graph runs them. The total gradient must
/// equal the plain composition's.
#[test]
fn fused_ops_accumulate_a_shared_input_gradient() {
    use burn::tensor::activation::relu as burn_relu;
    use burn::tensor::module::{conv2d, max_pool2d};
    use burn::tensor::ops::{ConvOptions, MaxPoolOptions};
    Device::flex().seed(9);
    let shape = [3, 4, 6, 6];
    let c = shape[1];
    let x0 = rand(shape, &Device::flex());
    let wc = rand([c, c, 3, 3], &Device::flex());
    let wd = rand([c, 1, 3, 3], &Device::flex());
    let mix = Tensor::<1>::from_floats([0.3, 0.7], &Device::flex());
    let rs: Vec<Tensor<4>> = (0..8).map(|_| rand(shape, &Device::flex())).collect();
    let run = |fused: bool| {
        let x = x0.clone().autodiff().require_grad();
        let (wc, wd, mix) = (
            wc.clone().autodiff(),
            wd.clone().autodiff(),
            mix.clone().autodiff(),
        );
        let outs: Vec<Tensor<4>> = if fused {
            let r = crate::relu(&x).unwrap();
            vec![
                x.clone().mul_scalar(2.0),
                crate::avg_pool3x3(&x, 1).unwrap(),
                crate::max_pool3x3(&x, 1).unwrap(),
                crate::batch_norm_train(&x, None, 1e-5).unwrap().output,
                crate::conv2d_dense(&x, &wc, 1, 1).unwrap(),
                crate::depthwise_conv2d(&x, &wd, 1, 1, 1).unwrap(),
                crate::weighted_sum(&[x.clone(), r.clone()], &mix).unwrap(),
                r,
            ]
        } else {
            let r = burn_relu(x.clone());
            let opts = AvgPoolOptions::new([3, 3])
                .with_stride([1, 1])
                .with_padding([1, 1])
                .with_count_include_pad(false);
            let w = mix.clone().reshape([2, 1, 1, 1]);
            vec![
                x.clone().mul_scalar(2.0),
                avg_pool2d(x.clone(), opts),
                max_pool2d(
                    x.clone(),
                    MaxPoolOptions::new([3, 3])
                        .with_stride([1, 1])
                        .with_padding([1, 1]),
                ),
                burn_bn(
                    x.clone(),
                    Tensor::ones([c], &x.device()),
                    Tensor::zeros([c], &x.device()),
                    1e-5,
                )
                .output,
                conv2d(
                    x.clone(),
                    wc,
                    None,
                    ConvOptions::new([1, 1], [1, 1], [1, 1], 1),
                ),
                conv2d(
                    x.clone(),
                    wd,
                    None,
                    ConvOptions::new([1, 1], [1, 1], [1, 1], c),
                ),
                x.clone().mul(w.clone().slice(0..1)) + r.clone().mul(w.slice(1..2)),
                r,
            ]
        };
        let loss = outs
            .into_iter()
            .zip(&rs)
            .map(|(o, r)| o.mul(r.clone().autodiff()).sum())
            .reduce(|a, b| a + b)
            .unwrap();
        x.grad(&loss.backward()).unwrap()
    };
    let (fused, plain) = (run(true), run(false));
    assert!(rel(fused, plain) < 1e-5);
}

#[test]
fn shared_dense_conv_matches_separate_convs() {
    use burn::tensor::module::conv2d;
    use burn::tensor::ops::ConvOptions;
    Device::flex().seed(9);
    // (shape, c_out per weight, k, stride, padding, outputs the loss uses): the out-edges of a
    // NAS-Bench-201 node (3×3 and 1×1), a strided case, and an output left out of the loss.
    for (shape, cos, k, s, p, used) in [
        ([2, 4, 8, 8], vec![4, 4, 4], 3, 1, 1, vec![true, true, true]),
        ([2, 4, 8, 8], vec![4, 4], 1, 1, 0, vec![true, true]),
        (
            [3, 3, 7, 7],
            vec![2, 5, 3],
            3,
            2,
            1,
            vec![true, false, true],
        ),
        (
            [5, 2, 6, 6],
            vec![3, 3, 3, 2],
            3,
            1,
            1,
            vec![false, true, true, true],
        ),
    ] {
        let what = format!("{shape:?} {cos:?} k{k} s{s} p{p} used {used:?}");
        let ci = shape[1];
        let x0 = rand(shape, &Device::flex());
        let w0: Vec<Tensor<4>> = cos
            .iter()
            .map(|&co| rand([co, ci, k, k], &Device::flex()))
            .collect();
        let opts = ConvOptions::new([s, s], [p, p], [1, 1], 1);
        // The input also feeds another op, whose gradient the shared backward adds to.
        let rx = rand(shape, &Device::flex()).autodiff();
        // The output weights of the loss, drawn once for both runs.
        let ho = (shape[2] + 2 * p - k) / s + 1;
        let wo = (shape[3] + 2 * p - k) / s + 1;
        let rs: Vec<Tensor<4>> = cos
            .iter()
            .map(|&co| rand([shape[0], co, ho, wo], &Device::flex()).autodiff())
            .collect();
        let run = |shared: bool| {
            let x = x0.clone().autodiff().require_grad();
            let ws: Vec<Tensor<4>> = w0
                .iter()
                .map(|w| w.clone().autodiff().require_grad())
                .collect();
            let ys: Vec<Tensor<4>> = if shared {
                crate::conv2d_dense_shared(&x, &ws, s, p).expect("flex")
            } else {
                ws.iter()
                    .map(|w| conv2d(x.clone(), w.clone(), None, opts.clone()))
                    .collect()
            };
            let mut loss = x.clone().mul(rx.clone()).sum();
            for (e, y) in ys.iter().enumerate() {
                if used[e] {
                    loss = loss.add(y.clone().mul(rs[e].clone()).sum());
                }
            }
            let g = loss.backward();
            let dws: Vec<Option<Tensor<4>>> = ws.iter().map(|w| w.grad(&g)).collect();
            (ys, x.grad(&g).unwrap(), dws)
        };
        let (ys1, dx1, dws1) = run(true);
        let (ys0, dx0, dws0) = run(false);
        for (e, (y1, y0)) in ys1.iter().zip(&ys0).enumerate() {
            assert!(
                rel(y1.clone().inner(), y0.clone().inner()) < 1e-6,
                "y{e} {what}"
            );
            // Bit for bit the single convolution's output.
            let single = crate::conv2d_dense(&x0, &w0[e], s, p).unwrap();
            assert_eq!(
                rel(y1.clone().inner(), single),
                0.0,
                "y{e} vs single {what}"
            );
        }
        assert!(rel(dx1, dx0) < 1e-5, "dx {what}");
        for (e, (a, b)) in dws1.into_iter().zip(dws0).enumerate() {
            match (a, b) {
                (Some(a), Some(b)) => assert!(rel(a, b) < 1e-5, "dw{e} {what}"),
                (None, None) => assert!(!used[e], "dw{e} missing {what}"),
                (a, b) => panic!("dw{e} {what}: {} vs {}", a.is_some(), b.is_some()),
            }
        }
        // Untracked weights (the α step): the input gradient alone, as the separate convolutions'.
        let x2 = x0.clone().autodiff().require_grad();
        let ws2: Vec<Tensor<4>> = w0.iter().map(|w| w.clone().autodiff()).collect();
        let y2 = crate::conv2d_dense_shared(&x2, &ws2, s, p).unwrap();
        let g2 = y2
            .into_iter()
            .map(|y| y.sum())
            .reduce(|a, b| a.add(b))
            .unwrap()
            .backward();
        assert!(x2.grad(&g2).is_some(), "dx untracked weights {what}");
        // Without autodiff: the same outputs.
        let y3 = crate::conv2d_dense_shared(&x0, &w0, s, p).unwrap();
        for (e, (a, b)) in y3.into_iter().zip(ys0).enumerate() {
            assert!(rel(a, b.inner()) < 1e-6, "plain y{e} {what}");
        }
    }
}
