//! `darts-pt draw` (issue 18): a genotype's text or file as DOT, SVG or PNG, and its errors.

use std::process::Command;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_darts-pt")
}

const DARTS_V2: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";

fn draw(args: &[&str]) -> (bool, Vec<u8>, String) {
    let out = Command::new(bin()).arg("draw").args(args).output().unwrap();
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn a_darts_genotype_is_drawn_as_dot_svg_and_png() {
    let (ok, dot, err) = draw(&[DARTS_V2]);
    assert!(ok, "{err}");
    let dot = String::from_utf8(dot).unwrap();
    // Both cells, 8 labelled op edges each, and the 4 concatenations into c_{k}.
    assert!(
        dot.contains("cluster_normal") && dot.contains("cluster_reduce"),
        "{dot}"
    );
    assert_eq!(dot.matches("label=\"sep_conv_3x3\"").count(), 5, "{dot}");
    assert_eq!(dot.matches("[color=gray]").count(), 8, "{dot}");

    let (ok, svg, err) = draw(&[DARTS_V2, "--format", "svg"]);
    assert!(ok, "{err}");
    let svg = String::from_utf8(svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("dil_conv_3x3") && svg.contains("c_{k-1}"));

    let dir = std::env::temp_dir().join(format!("darts-pt-draw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("genotype.txt");
    std::fs::write(&file, format!("{DARTS_V2}\n")).unwrap();
    let png = dir.join("cells.png");
    let (ok, _, err) = draw(&[file.to_str().unwrap(), "-o", png.to_str().unwrap()]);
    assert!(ok, "{err}");
    let img = image::open(&png).unwrap();
    assert!(
        img.width() > 800 && img.height() > 300,
        "{}x{}",
        img.width(),
        img.height()
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_nb201_cell_is_drawn_and_bad_input_is_named() {
    let cell =
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|none~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|";
    let (ok, dot, err) = draw(&[cell]);
    assert!(ok, "{err}");
    let dot = String::from_utf8(dot).unwrap();
    // `none` is no edge in the drawing.
    assert_eq!(dot.matches(" -> ").count(), 5, "{dot}");

    let (ok, _, err) = draw(&["Genotype(normal=[('sep_conv_9x9', 0)"]);
    assert!(!ok && err.contains("sep_conv_9x9"), "{err}");
    let (ok, _, err) = draw(&[cell, "--format", "png"]);
    assert!(!ok && err.contains("--output"), "{err}");
    let (ok, _, err) = draw(&[cell, "--format", "jpeg"]);
    assert!(!ok && err.contains("png, svg or dot"), "{err}");
    let (ok, _, err) = draw(&[std::env::temp_dir().to_str().unwrap()]);
    assert!(!ok && err.contains("not a run directory"), "{err}");
}
