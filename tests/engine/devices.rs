//! `darts-pt devices` and `--adapter` (issue 16, part 4): the list, the default, a bad choice.

use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_darts-pt")
}

#[test]
fn devices_lists_the_adapters_and_a_bad_adapter_is_named() {
    let out = Command::new(bin())
        .args(["devices", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let list = v["adapters"].as_array().unwrap();
    if list.is_empty() {
        eprintln!("skipping the adapter checks: no wgpu adapter on this machine");
        assert!(v["default"].is_null());
    } else {
        for a in list {
            assert!(
                ["Vulkan", "Metal", "Dx12", "Gl"].contains(&a["backend"].as_str().unwrap()),
                "{a}"
            );
            assert!(!a["name"].as_str().unwrap().is_empty(), "{a}");
        }
        let d = v["default"].as_u64().unwrap() as usize;
        assert!(d < list.len());
        // The table marks the same one.
        let out = Command::new(bin()).arg("devices").output().unwrap();
        let text = String::from_utf8(out.stdout).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("<- --device wgpu"))
            .unwrap();
        assert!(line.starts_with(&d.to_string()), "{text}");
    }
    let out = Command::new(bin())
        .args([
            "info",
            "--space",
            "nb201",
            "--init-channels",
            "4",
            "--layers",
            "1",
            "--device",
            "wgpu",
            "--adapter",
            "99",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success()
            && err.contains("--adapter 99")
            && err.contains("no adapter has that number or name"),
        "{err}"
    );
}
