//! The fused CPU kernels (`--kernels fused`) against Burn's compositions (`--kernels plain`) on
//! whole supernets: logits, losses, α gradients and network-weight gradients, and bilevel steps.
//! Tolerances are max |a − b| / max |b| per tensor.

use burn::module::Module;
use burn::tensor::{Device, Int, Tensor, TensorData};
use darts_pt::kernels::{Kernels, with_kernels};
use darts_pt::ops::BnMode;
use darts_pt::search::{Hyper, Method, Trainer, loss_and_correct, param_grads};
use darts_pt::space::{CellType, SpaceName};
use darts_pt::supernet::{SupernetConfig, build_seeded, softmax_weights};
use darts_pt::weights::Mask;
use rand::SeedableRng;

/// Logits, α gradients and weight gradients may differ by float summation order only.
const TOL: f32 = 2e-4;

fn rel(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    let diff = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max);
    diff / b.iter().map(|y| y.abs()).fold(0.0, f32::max).max(1e-30)
}

fn vec<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

fn config(space: SpaceName) -> SupernetConfig {
    SupernetConfig {
        space,
        init_channels: 4,
        layers: if space == SpaceName::Nb201 { 1 } else { 3 },
        num_classes: 10,
        in_channels: 3,
        input_size: 8,
    }
}

fn batch(dev: &Device, seed: u64) -> (Tensor<4>, Tensor<1, Int>) {
    use rand::Rng;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let x: Vec<f32> = (0..6 * 3 * 8 * 8)
        .map(|_| rng.random_range(-2.0f32..2.0))
        .collect();
    let y: Vec<i64> = (0..6).map(|_| rng.random_range(0..10)).collect();
    (
        Tensor::from_data(TensorData::new(x, [6, 3, 8, 8]), dev),
        Tensor::from_data(TensorData::new(y, [6]), dev),
    )
}

struct Pass {
    logits: Vec<f32>,
    alpha: Vec<Vec<f32>>,
    weights: Vec<(String, Vec<f32>)>,
}

fn one_pass(space: SpaceName, k: Kernels, mask: &Mask) -> Pass {
    one_pass_on(space, k, mask, &Device::flex())
}

fn one_pass_on(space: SpaceName, k: Kernels, mask: &Mask, device: &Device) -> Pass {
    with_kernels(k, || {
        let dev = device.clone().autodiff();
        let (net, alphas) = build_seeded(&config(space), 7, &dev).unwrap();
        let (x, y) = batch(&dev, 3);
        let no = alphas.no_overrides();
        let w = alphas.mix_weights(&no, mask, false);
        let logits = net.forward(x, &w, BnMode::Train);
        let (loss, _) = loss_and_correct(logits.clone(), y);
        let grads = loss.backward();
        let alpha = alphas
            .cell_types()
            .iter()
            .map(|&c| {
                let p = match c {
                    CellType::Normal => &alphas.normal,
                    CellType::Reduce => alphas.reduce.as_ref().unwrap(),
                };
                vec(p.val().grad(&grads).unwrap())
            })
            .collect();
        let weights = param_grads(&net, &grads)
            .into_iter()
            .map(|(k, t)| (k, vec(t)))
            .collect();
        Pass {
            logits: vec(logits.inner()),
            alpha,
            weights,
        }
    })
}

#[test]
fn fused_kernels_apply_on_flex_only_when_switched_on() {
    let t = Tensor::<4>::zeros([1, 1, 2, 2], &Device::flex().autodiff());
    assert!(with_kernels(Kernels::Fused, || darts_pt::kernels::applies(
        &t
    )));
    assert!(!with_kernels(
        Kernels::Plain,
        || darts_pt::kernels::applies(&t)
    ));
    let t = Tensor::<4>::zeros([1, 1, 2, 2], &Device::flex());
    assert!(with_kernels(Kernels::Fused, || darts_pt::kernels::applies(
        &t
    )));
}

#[test]
fn fused_supernets_match_plain_forward_and_gradients() {
    for space in [SpaceName::Nb201, SpaceName::Darts, SpaceName::Darts8] {
        for mask in [Mask::default(), Mask::op(CellType::Normal, 1, 2)] {
            let p = one_pass(space, Kernels::Plain, &mask);
            let f = one_pass(space, Kernels::Fused, &mask);
            let r = rel(&f.logits, &p.logits);
            assert!(r < TOL, "{space:?} logits differ by {r}");
            assert_ne!(
                f.logits, p.logits,
                "the fused path ran (its BN sums differ in the last bits)"
            );
            for (a, b) in f.alpha.iter().zip(&p.alpha) {
                let r = rel(a, b);
                assert!(r < TOL, "{space:?} α gradient differs by {r}");
            }
            assert_eq!(
                f.weights.len(),
                p.weights.len(),
                "same weights get gradients"
            );
            for ((ka, a), (kb, b)) in f.weights.iter().zip(&p.weights) {
                assert_eq!(ka, kb);
                let r = rel(a, b);
                assert!(r < TOL, "{space:?} gradient of {ka} differs by {r}");
            }
        }
    }
}

/// The GPU ops (`darts_pt_kernels::cube`: weighted sum, affine-free BatchNorm, ReLU) on whole
/// supernets on wgpu (lavapipe in CI), against Burn's compositions on the same device.
#[test]
fn fused_supernets_on_wgpu_match_plain_forward_and_gradients() {
    let wgpu = match darts_pt::device::open(darts_pt::device::Backend::Wgpu) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("skipping the GPU kernels' supernet check: {e}");
            return;
        }
    };
    let dev = wgpu.device;
    assert!(with_kernels(Kernels::Fused, || darts_pt::kernels::applies(
        &Tensor::<4>::zeros([1, 1, 2, 2], &dev.clone().autodiff())
    )));
    for space in [SpaceName::Nb201, SpaceName::Darts] {
        for mask in [Mask::default(), Mask::op(CellType::Normal, 1, 2)] {
            let t = std::time::Instant::now();
            let p = one_pass_on(space, Kernels::Plain, &mask, &dev);
            let tp = t.elapsed().as_secs_f64();
            let t = std::time::Instant::now();
            let f = one_pass_on(space, Kernels::Fused, &mask, &dev);
            let tf = t.elapsed().as_secs_f64();
            let r = rel(&f.logits, &p.logits);
            let mut worst = r;
            assert!(r < TOL, "{space:?} logits differ on wgpu by {r}");
            assert_ne!(f.logits, p.logits, "the GPU kernels ran");
            for (a, b) in f.alpha.iter().zip(&p.alpha) {
                let r = rel(a, b);
                worst = worst.max(r);
                assert!(r < TOL, "{space:?} α gradient differs on wgpu by {r}");
            }
            assert_eq!(f.weights.len(), p.weights.len());
            for ((ka, a), (kb, b)) in f.weights.iter().zip(&p.weights) {
                assert_eq!(ka, kb);
                let r = rel(a, b);
                worst = worst.max(r);
                assert!(r < TOL, "{space:?} gradient of {ka} differs on wgpu by {r}");
            }
            eprintln!(
                "{space:?}: wgpu fused vs plain worst {worst:.2e}; pass {tf:.2} s fused, {tp:.2} s plain"
            );
        }
    }
}

#[test]
fn fused_forward_without_autodiff_matches_plain() {
    for space in [SpaceName::Nb201, SpaceName::Darts] {
        let run = |k| {
            with_kernels(k, || {
                let dev = Device::flex();
                let (net, alphas) = build_seeded(&config(space), 5, &dev).unwrap();
                let (x, _) = batch(&dev, 9);
                let w = softmax_weights(&alphas, true);
                let a = vec(net.forward(x.clone(), &w, BnMode::BatchStats));
                let b = vec(net.forward(x, &w, BnMode::Eval));
                (a, b)
            })
        };
        let (pa, pb) = run(Kernels::Plain);
        let (fa, fb) = run(Kernels::Fused);
        assert!(rel(&fa, &pa) < TOL, "{space:?} batch-statistics forward");
        assert!(rel(&fb, &pb) < TOL, "{space:?} running-statistics forward");
    }
}

#[test]
fn fused_bilevel_steps_match_plain() {
    for space in [SpaceName::Nb201, SpaceName::Darts] {
        let run = |k| {
            with_kernels(k, || {
                let dev = Device::flex().autodiff();
                let (net, alphas) = build_seeded(&config(space), 11, &dev).unwrap();
                let mut t = Trainer::new(net, alphas, Method::Darts, false, Hyper::default());
                let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
                let mut losses = Vec::new();
                for s in 0..3 {
                    let (x, y) = batch(&dev, 20 + s);
                    let (xv, yv) = batch(&dev, 40 + s);
                    let train = darts_pt::data::Batch {
                        images: x,
                        labels: y,
                    };
                    let valid = darts_pt::data::Batch {
                        images: xv,
                        labels: yv,
                    };
                    let st = t
                        .step_blocking(&train, &valid, 0.025, 0.0, &mut rng)
                        .unwrap();
                    losses.push(st.train_loss as f32);
                    losses.push(st.valid_loss as f32);
                }
                let alpha = t.alphas.rows(CellType::Normal).concat();
                // BN running statistics moved the same way (α step and weight step both update them).
                let w = t
                    .alphas
                    .mix_weights(&t.alphas.no_overrides(), &Mask::default(), true);
                let (x, _) = batch(&dev, 99);
                let eval = vec(t.net.valid().forward(x.inner(), &w, BnMode::Eval));
                (losses, alpha, eval)
            })
        };
        let (pl, pa, pe) = run(Kernels::Plain);
        let (fl, fa, fe) = run(Kernels::Fused);
        assert!(rel(&fl, &pl) < TOL, "{space:?} losses {fl:?} vs {pl:?}");
        assert!(rel(&fa, &pa) < 1e-3, "{space:?} α after 3 steps");
        assert!(
            rel(&fe, &pe) < 1e-3,
            "{space:?} eval-mode logits after 3 steps"
        );
    }
}
