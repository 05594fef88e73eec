//! Evaluation networks: parameter counts against the reference (`fixtures/params.json`), FLOPs,
//! and the network's behaviour in training and evaluation passes.

use burn::tensor::{Device, Distribution, Tensor};
use darts_pt::network::{Architecture, Network, NetworkConfig, Pass, network_info};
use darts_pt::supernet::reset_parameters;

use crate::fixture_json;

#[test]
fn eval_network_params_match_params_json() {
    let Some(p) = fixture_json("params.json") else {
        return;
    };
    let mut checked = 0;
    for (name, net) in p["eval_networks"]["networks"].as_object().unwrap() {
        let arch: Architecture = net["genotype_text"].as_str().unwrap().parse().unwrap();
        let c = &net["config"];
        let mut cfg = NetworkConfig::paper(&arch);
        cfg.init_channels = c["C"].as_u64().unwrap() as usize;
        cfg.layers = c["layers"].as_u64().unwrap() as usize;
        cfg.auxiliary = c["auxiliary"].as_bool().unwrap();
        cfg.num_classes = c["num_classes"].as_u64().unwrap() as usize;
        let info = network_info(&arch, &cfg).unwrap();
        assert_eq!(
            info.params,
            net["params_total"].as_u64().unwrap() as usize,
            "{name}: params with the auxiliary head"
        );
        assert_eq!(
            info.params_without_auxiliary,
            net["params_without_auxiliary"].as_u64().unwrap() as usize,
            "{name}: params without the auxiliary head"
        );
        checked += 1;
    }
    assert!(checked >= 50, "only {checked} genotypes in params.json");
    let mut checked = 0;
    for (name, net) in p["nb201_discrete_networks"]["networks"]
        .as_object()
        .unwrap()
    {
        let arch: Architecture = net["arch_string"].as_str().unwrap().parse().unwrap();
        let info = network_info(&arch, &NetworkConfig::paper(&arch)).unwrap();
        assert_eq!(
            info.params,
            net["params_total"].as_u64().unwrap() as usize,
            "NB201 {name}"
        );
        assert_eq!(info.params, info.params_without_auxiliary);
        checked += 1;
    }
    assert_eq!(checked, 6);
}

#[test]
fn flops_of_known_networks() {
    // NAS-Bench-201's largest cell (every edge nor_conv_3x3) and the all-skip cell: the MACs of
    // 90 3×3 convolutions at 16·32² = 32·16² = 64·8² channel-pixels each, plus stem, the two
    // residual blocks and the classifier.
    let all3: Architecture = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|".parse().unwrap();
    let skip: Architecture = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|".parse().unwrap();
    let f3 = network_info(&all3, &NetworkConfig::paper(&all3))
        .unwrap()
        .flops;
    let fs = network_info(&skip, &NetworkConfig::paper(&skip))
        .unwrap()
        .flops;
    let conv3 = 16 * 16 * 9 * 32 * 32;
    assert_eq!(f3 - fs, 90 * conv3);
    let stem = 3 * 16 * 9 * 32 * 32;
    let block1 = 16 * 32 * 9 * 16 * 16 + 32 * 32 * 9 * 16 * 16 + 16 * 32 * 16 * 16;
    let block2 = 32 * 64 * 9 * 8 * 8 + 64 * 64 * 9 * 8 * 8 + 32 * 64 * 8 * 8;
    assert_eq!(fs, stem + block1 + block2 + 64 * 10);
    // DARTS_V2 at C=36, 20 cells: about 0.53 G multiply-adds on 32×32 (published ~0.55 G).
    let v2: Architecture = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])".parse().unwrap();
    let f = network_info(&v2, &NetworkConfig::paper(&v2)).unwrap().flops;
    eprintln!("DARTS_V2 flops {f}, NB201 all-3x3 {f3}");
    assert!((400_000_000..700_000_000).contains(&f), "{f}");
}

fn small_darts() -> (Architecture, NetworkConfig) {
    let arch: Architecture = "Genotype(normal=[('sep_conv_3x3', 0), ('skip_connect', 1), ('dil_conv_3x3', 0), ('sep_conv_5x5', 2), ('skip_connect', 0), ('avg_pool_3x3', 3), ('max_pool_3x3', 1), ('dil_conv_5x5', 4)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('skip_connect', 1), ('skip_connect', 2), ('sep_conv_3x3', 0), ('avg_pool_3x3', 1), ('dil_conv_3x3', 3), ('skip_connect', 4), ('none', 1)], reduce_concat=range(2, 6))".parse().unwrap();
    let cfg = NetworkConfig {
        init_channels: 4,
        layers: 5,
        auxiliary: true,
        num_classes: 10,
        in_channels: 3,
        input_size: 32,
    };
    (arch, cfg)
}

#[test]
fn passes_shapes_auxiliary_and_drop_path() {
    let (arch, cfg) = small_darts();
    let device = Device::flex();
    device.seed(3);
    let net = reset_parameters(Network::new(&arch, &cfg, &device).unwrap(), 5);
    let x = Tensor::<4>::random([4, 3, 32, 32], Distribution::Default, &device);
    let (logits, aux) = net.forward(x.clone(), Pass::Eval);
    assert_eq!(logits.dims(), [4, 10]);
    assert!(aux.is_none(), "no auxiliary logits in evaluation");
    let (again, _) = net.forward(x.clone(), Pass::Eval);
    assert_eq!(logits.clone().into_data(), again.into_data());
    let (train, aux) = net.forward(x.clone(), Pass::Train { drop_path: 0.0 });
    assert_eq!(aux.expect("auxiliary logits in training").dims(), [4, 10]);
    let (train2, _) = net.forward(x.clone(), Pass::Train { drop_path: 0.0 });
    assert_eq!(train.clone().into_data(), train2.into_data());
    let (dropped, _) = net.forward(x.clone(), Pass::Train { drop_path: 0.5 });
    let diff = dropped.sub(train).abs().max().into_scalar::<f64>();
    assert!(diff > 1e-4, "drop-path changed nothing ({diff})");
    // Evaluation is unaffected by training passes' drop-path setting.
    let nb: Architecture =
        "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
            .parse()
            .unwrap();
    let mut ncfg = NetworkConfig::paper(&nb);
    ncfg.init_channels = 4;
    ncfg.layers = 1;
    let net = Network::new(&nb, &ncfg, &device).unwrap();
    let (logits, aux) = net.forward(x, Pass::Train { drop_path: 0.2 });
    assert_eq!(logits.dims(), [4, 10]);
    assert!(aux.is_none());
}
