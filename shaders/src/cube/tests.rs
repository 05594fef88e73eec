//! Each GPU op against Burn's composition on the same wgpu device (lavapipe in CI): outputs and
//! gradients, within a stated max |a − b| / max |b|. Skipped, with a message, where wgpu finds no
//! adapter.

use std::sync::OnceLock;

use burn::tensor::module::batch_norm_train as burn_bn;
use burn::tensor::{Device, Distribution, Tensor};

use super::{batch_norm_train, relu, supported, weighted_sum};

/// Output tolerance of the weighted sum and ReLU (the same f32 products and sums; a GPU may
/// fuse a multiply-add).
const TOL: f32 = 1e-6;
/// Tolerance of the reductions (the weight gradient, BatchNorm's statistics and backward): f32
/// sums in another order than Burn's reduction kernels.
const SUM_TOL: f32 = 1e-5;

fn wgpu() -> Option<Device> {
    static DEV: OnceLock<Option<Device>> = OnceLock::new();
    DEV.get_or_init(|| {
        match std::panic::catch_unwind(|| Device::wgpu_options().init_with_setup()) {
            Ok(Ok((device, setup))) => {
                eprintln!("wgpu adapter: {:?}", setup.adapter.get_info().name);
                Some(device)
            }
            Ok(Err(e)) => {
                eprintln!("skipping the GPU ops' tests: no wgpu adapter ({e})");
                None
            }
            Err(_) => {
                eprintln!("skipping the GPU ops' tests: the wgpu runtime panicked");
                None
            }
        }
    })
    .clone()
}

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

fn rand<const D: usize>(shape: [usize; D], dev: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.5, 2.0), dev)
}

fn plain_wsum(terms: &[Tensor<4>], w: &Tensor<1>) -> Tensor<4> {
    let mut acc: Option<Tensor<4>> = None;
    for (k, t) in terms.iter().enumerate() {
        let wk = w.clone().slice([k..k + 1]).reshape([1, 1, 1, 1]);
        let term = t.clone().mul(wk);
        acc = Some(match acc {
            None => term,
            Some(a) => a.add(term),
        });
    }
    acc.unwrap()
}

#[test]
fn gpu_ops_take_cube_tensors_only() {
    let Some(dev) = wgpu() else { return };
    let x = rand([2, 3, 4, 4], &dev);
    assert!(supported(&x));
    assert!(supported(&x.clone().autodiff()));
    let cpu = rand([2, 3, 4, 4], &Device::flex());
    assert!(!supported(&cpu));
    assert!(relu(&cpu).is_none());
    assert!(batch_norm_train(&cpu, 1e-5).is_none());
    // Shapes that do not match are refused, not computed.
    let w = Tensor::<1>::ones([3], &dev);
    assert!(weighted_sum(&[x.clone(), x.clone()], &w).is_none());
    let other = rand([2, 3, 4, 5], &dev);
    let w2 = Tensor::<1>::ones([2], &dev);
    assert!(weighted_sum(&[x, other], &w2).is_none());
}

#[test]
fn weighted_sum_matches_the_composition_with_gradients() {
    let Some(dev) = wgpu() else { return };
    // 1 to 8 terms: one launch up to four, two above; shapes of a cell's edges, one with more
    // elements than the weight reduction has units (512 cubes of 256).
    for (k, shape) in [
        (1, [2, 3, 5, 5]),
        (4, [4, 8, 8, 8]),
        (5, [2, 16, 6, 6]),
        (7, [8, 16, 32, 32]),
        (8, [3, 5, 7, 9]),
    ] {
        let terms0: Vec<Tensor<4>> = (0..k).map(|_| rand(shape, &dev)).collect();
        let w0 = rand([k], &dev);
        let r = rand(shape, &dev).autodiff();

        // Untracked: the same numbers.
        let fused = weighted_sum(&terms0, &w0).expect("GPU weighted sum");
        let e = rel(fused, plain_wsum(&terms0, &w0));
        assert!(e < TOL, "k = {k}: outputs differ by {e:.2e}");

        // Tracked: every term and the weights get their gradients; the first term also feeds
        // another op, whose gradient is added to the sum's.
        let run = |fused: bool| {
            let terms: Vec<Tensor<4>> = terms0
                .iter()
                .map(|t| t.clone().autodiff().require_grad())
                .collect();
            let w = w0.clone().autodiff().require_grad();
            let y = if fused {
                weighted_sum(&terms, &w).expect("GPU weighted sum")
            } else {
                plain_wsum(&terms, &w)
            };
            let loss = y
                .mul(r.clone())
                .sum()
                .add(terms[0].clone().mul_scalar(3.0).sum());
            let grads = loss.backward();
            let tg: Vec<Tensor<4>> = terms.iter().map(|t| t.grad(&grads).unwrap()).collect();
            (tg, w.grad(&grads).unwrap())
        };
        let (tg_f, wg_f) = run(true);
        let (tg_p, wg_p) = run(false);
        for (j, (a, b)) in tg_f.into_iter().zip(tg_p).enumerate() {
            let e = rel(a, b);
            assert!(e < TOL, "k = {k}: term {j}'s gradient differs by {e:.2e}");
        }
        let e = rel(wg_f, wg_p);
        assert!(e < SUM_TOL, "k = {k}: weight gradient differs by {e:.2e}");
    }
}

#[test]
fn batch_norm_matches_the_composition_with_gradients() {
    let Some(dev) = wgpu() else { return };
    let ad = dev.clone().autodiff();
    for shape in [
        [4, 3, 5, 5],
        [2, 16, 8, 8],
        [64, 2, 3, 3],
        [8, 16, 32, 32],
        [1, 4, 1, 1],
    ] {
        let c = shape[1];
        let x0 = rand(shape, &dev);
        let r = rand(shape, &dev).autodiff();

        let x = x0.clone().autodiff().require_grad();
        let plain = burn_bn(
            x.clone(),
            Tensor::ones([c], &ad),
            Tensor::zeros([c], &ad),
            1e-5,
        );
        let grads = plain
            .output
            .clone()
            .mul(r.clone())
            .sum()
            .add(x.clone().sum())
            .backward();
        let dx_plain = x.grad(&grads).unwrap();

        let xf = x0.clone().autodiff().require_grad();
        let (y, mean, var) = batch_norm_train(&xf, 1e-5).expect("GPU BatchNorm");
        assert_eq!(mean.device(), ad, "statistics live on the input's device");
        let e = rel(y.clone(), plain.output.clone());
        assert!(e < SUM_TOL, "{shape:?}: outputs differ by {e:.2e}");
        let e = rel(mean, plain.mean.clone());
        assert!(e < SUM_TOL, "{shape:?}: means differ by {e:.2e}");
        let e = rel(var, plain.variance.clone());
        assert!(e < SUM_TOL, "{shape:?}: variances differ by {e:.2e}");
        let grads = y.mul(r.clone()).sum().add(xf.clone().sum()).backward();
        let e = rel(xf.grad(&grads).unwrap(), dx_plain);
        // A one-element channel has a zero gradient on both sides (up to rounding).
        if shape[0] * shape[2] * shape[3] > 1 {
            assert!(e < SUM_TOL, "{shape:?}: input gradients differ by {e:.2e}");
        }

        // Untracked input: the same output, plain statistics.
        let (y0, m0, _) = batch_norm_train(&x0, 1e-5).expect("GPU BatchNorm");
        assert_eq!(m0.device(), dev);
        let e = rel(y0, plain.output.inner());
        assert!(
            e < SUM_TOL,
            "{shape:?}: untracked outputs differ by {e:.2e}"
        );
    }
}

#[test]
fn relu_matches_burn_with_gradients() {
    let Some(dev) = wgpu() else { return };
    let shape = [4, 8, 9, 9];
    let x0 = rand(shape, &dev);
    let r = rand(shape, &dev).autodiff();
    let run = |fused: bool| {
        let x = x0.clone().autodiff().require_grad();
        let y = if fused {
            relu(&x).expect("GPU ReLU")
        } else {
            burn::tensor::activation::relu(x.clone())
        };
        let grads = y
            .clone()
            .mul(r.clone())
            .sum()
            .add(x.clone().sum())
            .backward();
        (y, x.grad(&grads).unwrap())
    };
    let (yf, gf) = run(true);
    let (yp, gp) = run(false);
    assert!(rel(yf, yp) == 0.0, "ReLU outputs differ");
    assert!(rel(gf, gp) == 0.0, "ReLU gradients differ");
    let y0 = relu(&x0).expect("GPU ReLU");
    assert!(rel(y0, burn::tensor::activation::relu(x0)) == 0.0);
}
