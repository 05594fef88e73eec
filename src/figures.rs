//! The run's figures (issue 18), drawn with `plotters` from the files of a run alone:
//!
//! * `curves`: search and progressive-tuning loss and accuracy per epoch (`metrics.jsonl`,
//!   `pt/metrics.jsonl`);
//! * `alpha`: softmax(α) of every edge over the search epochs, one panel per cell type, one small
//!   chart per edge (named `c_{k-2} -> 0` …), one line per op;
//! * `pt_scores`: every PT decision's validation accuracy after removing each candidate, as bars,
//!   the kept op (or kept edges) marked (`pt/pt_scores.json`);
//! * `cells`: the magnitude and PT cells side by side, the edges where they differ in orange,
//!   laid out by [`crate::layout`].
//!
//! PNG natively (text through `ab_glyph` with egui's embedded Ubuntu Light font: no system
//! fonts, the same pixels everywhere) and SVG on every target (in the page the browser lays out
//! the text). `report.md` embeds them from the run's `figures/` folder; `darts-pt draw` draws a
//! genotype's cells; the desktop app saves them and the page downloads them.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::error::{Error, Result};
use crate::layout::{self, Cell, NodeKind};
use crate::run::EpochMetrics;
use crate::rundir::{RunDir, RunStore, read_genotype, read_metrics, read_settings};
use crate::select::TuneMetrics;
use crate::select::{Choice, Decision, read_decisions, read_tune_metrics};
use crate::space::{OpKind, SearchSpace};

/// An image format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// PNG (native builds only: the page has no font rasteriser).
    Png,
    /// SVG.
    Svg,
}

impl Format {
    /// File extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Png => "png",
            Format::Svg => "svg",
        }
    }

    /// The format of the report's figures: PNG natively, SVG in the page.
    pub fn for_report() -> Self {
        if cfg!(target_arch = "wasm32") {
            Format::Svg
        } else {
            Format::Png
        }
    }
}

/// What the figures are drawn from: a run's files (see [`RunData::read`]) or the app's record.
#[derive(Clone, Debug)]
pub struct RunData {
    /// The search space.
    pub space: SearchSpace,
    /// Search metrics per epoch (softmax α included).
    pub epochs: Vec<EpochMetrics>,
    /// Progressive-tuning metrics per epoch.
    pub tune: Vec<TuneMetrics>,
    /// PT decisions in order.
    pub decisions: Vec<Decision>,
    /// Magnitude genotype text.
    pub magnitude: Option<String>,
    /// PT genotype text.
    pub pt: Option<String>,
}

impl RunData {
    /// Read what the figures need from the run in `store`.
    ///
    /// # Errors
    /// A missing or unreadable `config.toml`, or a malformed metrics or scores file.
    pub fn read(store: &dyn RunStore) -> Result<Self> {
        let settings = read_settings(store)?;
        Ok(RunData {
            space: SearchSpace::new(settings.space),
            epochs: read_metrics(store)?,
            tune: read_tune_metrics(store)?,
            decisions: read_decisions(store)?,
            magnitude: read_genotype(store, RunDir::GENOTYPE_MAGNITUDE),
            pt: read_genotype(store, RunDir::GENOTYPE_PT),
        })
    }
}

/// The folder of a run holding its figures.
pub const FOLDER: &str = "figures";

/// One figure: its name (`curves`, `alpha`, `pt_scores`, `cells`), a one-line caption and the
/// image's bytes.
#[derive(Clone, Debug)]
pub struct Figure {
    /// File stem.
    pub name: &'static str,
    /// Caption for the report.
    pub caption: String,
    /// The encoded image.
    pub bytes: Vec<u8>,
}

/// Every figure the run's data allows, in `format` (a run with no epochs yet has none).
///
/// # Errors
/// A genotype that does not parse, or a drawing error.
pub fn run_figures(data: &RunData, format: Format) -> Result<Vec<Figure>> {
    let mut out = Vec::new();
    if !data.epochs.is_empty() {
        out.push(Figure {
            name: "curves",
            caption: "Loss and accuracy per epoch: search, then progressive tuning".into(),
            bytes: render(format, Plot::Curves(data))?,
        });
        out.push(Figure {
            name: "alpha",
            caption: "softmax(α) per edge over the search epochs".into(),
            bytes: render(format, Plot::Alpha(data))?,
        });
    }
    if !data.decisions.is_empty() {
        out.push(Figure {
            name: "pt_scores",
            caption:
                "PT decisions: validation accuracy after removing each candidate (kept: dark red)"
                    .into(),
            bytes: render(format, Plot::Scores(data))?,
        });
    }
    if data.magnitude.is_some() || data.pt.is_some() {
        let cells = cell_grid(data)?;
        out.push(Figure {
            name: "cells",
            caption: "Magnitude (left) and PT (right) cells; orange: where they differ".into(),
            bytes: render(format, Plot::Cells(&cells))?,
        });
    }
    Ok(out)
}

/// Write the run's figures into `figures/` of `store`; returns them (for the report's links).
///
/// # Errors
/// As [`run_figures`], and the store's write errors.
pub fn write_run_figures(store: &dyn RunStore, data: &RunData) -> Result<Vec<(Figure, String)>> {
    let format = Format::for_report();
    let figures = run_figures(data, format)?;
    let mut written = Vec::new();
    for f in figures {
        let file = format!("{FOLDER}/{}.{}", f.name, format.extension());
        store.write(&file, &f.bytes)?;
        written.push((f, file));
    }
    Ok(written)
}

/// Draw a genotype's cells (one row per cell type) in `format`.
///
/// # Errors
/// A genotype that does not parse, or a drawing error.
pub fn genotype_figure(space: &SearchSpace, text: &str, format: Format) -> Result<Vec<u8>> {
    let rows: Vec<Vec<Option<(String, Cell)>>> = space
        .cell_types()
        .iter()
        .map(|&cell| {
            Ok(vec![Some((
                String::new(),
                layout::genotype_cell(space, cell, text, None)?,
            ))])
        })
        .collect::<Result<_>>()?;
    render(format, Plot::Cells(&rows))
}

/// The cells figure's grid: rows are cell types, columns magnitude and PT (when present).
fn cell_grid(data: &RunData) -> Result<Vec<Vec<Option<(String, Cell)>>>> {
    let space = &data.space;
    space
        .cell_types()
        .iter()
        .map(|&cell| {
            [
                ("magnitude", &data.magnitude, &data.pt),
                ("PT", &data.pt, &data.magnitude),
            ]
            .into_iter()
            .map(|(name, g, other)| {
                g.as_deref()
                    .map(|g| {
                        layout::genotype_cell(space, cell, g, other.as_deref())
                            .map(|c| (name.to_string(), c))
                    })
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()
        })
        .collect()
}

enum Plot<'a> {
    Curves(&'a RunData),
    Alpha(&'a RunData),
    Scores(&'a RunData),
    Cells(&'a [Vec<Option<(String, Cell)>>]),
}

impl Plot<'_> {
    fn size(&self) -> (u32, u32) {
        match self {
            Plot::Curves(_) => (1200, 440),
            Plot::Alpha(d) => {
                let rows: usize = d
                    .space
                    .cell_types()
                    .iter()
                    .map(|&c| d.space.edges(c).len().div_ceil(ALPHA_COLUMNS))
                    .sum();
                (
                    1400,
                    60 + rows as u32 * 170 + d.space.cell_types().len() as u32 * 30,
                )
            }
            Plot::Scores(d) => {
                let n = d.decisions.len();
                let tallest = d
                    .decisions
                    .iter()
                    .map(|d| d.candidates.len())
                    .max()
                    .unwrap_or(1);
                let h = 50 + 16 * tallest as u32;
                (1400, n.div_ceil(SCORE_COLUMNS) as u32 * h + 10)
            }
            Plot::Cells(rows) => {
                let w: f32 = rows
                    .iter()
                    .map(|r| r.iter().flatten().map(|(_, c)| c.width).sum::<f32>())
                    .fold(0.0, f32::max);
                let h: f32 = rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .flatten()
                            .map(|(_, c)| c.height)
                            .fold(0.0, f32::max)
                    })
                    .sum();
                ((w.ceil() as u32).max(200), (h.ceil() as u32).max(60))
            }
        }
    }

    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
    ) -> std::result::Result<(), String> {
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        match self {
            Plot::Curves(d) => curves(root, d),
            Plot::Alpha(d) => alpha(root, d),
            Plot::Scores(d) => scores(root, d),
            Plot::Cells(rows) => {
                let mut y = 0.0;
                for row in rows.iter() {
                    let mut x = 0.0;
                    let mut h: f32 = 0.0;
                    for (name, cell) in row.iter().flatten() {
                        draw_cell(root, cell, name, (x, y), 1.0)?;
                        x += cell.width;
                        h = h.max(cell.height);
                    }
                    y += h;
                }
                Ok(())
            }
        }
    }
}

/// The font every figure uses.
const FONT: &str = "sans-serif";

#[cfg(not(target_arch = "wasm32"))]
fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // The bytes are a well-formed TrueType font shipped with egui.
        let _ = plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        );
    });
}

fn render(format: Format, plot: Plot<'_>) -> Result<Vec<u8>> {
    let (w, h) = plot.size();
    let fail = |m: String| Error::Figure(m);
    match format {
        Format::Svg => {
            let mut s = String::new();
            {
                let root = SVGBackend::with_string(&mut s, (w, h)).into_drawing_area();
                plot.draw(&root).map_err(fail)?;
                root.present().map_err(|e| fail(e.to_string()))?;
            }
            Ok(s.into_bytes())
        }
        #[cfg(not(target_arch = "wasm32"))]
        Format::Png => {
            register_font();
            let mut buf = vec![0u8; w as usize * h as usize * 3];
            {
                let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
                plot.draw(&root).map_err(fail)?;
                root.present().map_err(|e| fail(e.to_string()))?;
            }
            let img = image::RgbImage::from_raw(w, h, buf)
                .ok_or_else(|| fail("image buffer of the wrong size".into()))?;
            let mut out = std::io::Cursor::new(Vec::new());
            img.write_to(&mut out, image::ImageFormat::Png)
                .map_err(|e| fail(e.to_string()))?;
            Ok(out.into_inner())
        }
        #[cfg(target_arch = "wasm32")]
        Format::Png => Err(fail(
            "PNG figures are drawn by the native build; the page writes SVG".into(),
        )),
    }
}

const SEARCH_TRAIN: RGBColor = RGBColor(31, 119, 180);
const SEARCH_VALID: RGBColor = RGBColor(255, 127, 14);
const TUNE_TRAIN: RGBColor = RGBColor(44, 160, 44);
const TUNE_VALID: RGBColor = RGBColor(214, 39, 40);
const KEPT: RGBColor = RGBColor(150, 20, 30);
const OTHER: RGBColor = RGBColor(140, 160, 190);

/// One colour per op kind (the same op has the same colour in every chart).
fn op_colour(op: OpKind) -> RGBColor {
    const PALETTE: [RGBColor; 11] = [
        RGBColor(127, 127, 127),
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(188, 189, 34),
        RGBColor(23, 190, 207),
        RGBColor(0, 0, 0),
    ];
    let i = OpKind::ALL.iter().position(|&o| o == op).unwrap_or(0);
    PALETTE[i % PALETTE.len()]
}

fn text_style(size: f64, colour: &RGBColor) -> TextStyle<'_> {
    (FONT, size).into_font().color(colour)
}

fn curves<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    d: &RunData,
) -> std::result::Result<(), String> {
    let n = d.epochs.len();
    let total = (n + d.tune.len()).max(2) as f64;
    let panels = root.split_evenly((1, 2));
    type Get = fn(f64, f64, f64, f64) -> (f64, f64);
    let specs: [(&str, &str, Get); 2] = [
        ("loss", "mean loss", |tl, vl, _, _| (tl, vl)),
        ("accuracy", "top-1 accuracy (%)", |_, _, ta, va| (ta, va)),
    ];
    for (panel, (title, ylab, get)) in panels.iter().zip(specs) {
        let search: Vec<(f64, f64, f64)> = d
            .epochs
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let (a, b) = get(m.train_loss, m.valid_loss, m.train_acc, m.valid_acc);
                ((i + 1) as f64, a, b)
            })
            .collect();
        let tune: Vec<(f64, f64, f64)> = d
            .tune
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let (a, b) = get(m.train_loss, m.valid_loss, m.train_acc, m.valid_acc);
                ((n + i + 1) as f64, a, b)
            })
            .collect();
        let ys = search
            .iter()
            .chain(&tune)
            .flat_map(|p| [p.1, p.2])
            .filter(|v| v.is_finite());
        let (lo, hi) = ys.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
        let (lo, hi) = if lo.is_finite() { (lo, hi) } else { (0.0, 1.0) };
        let pad = ((hi - lo) * 0.08).max(1e-3);
        let mut chart = ChartBuilder::on(panel)
            .caption(title, (FONT, 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(56)
            .build_cartesian_2d(0.5..total + 0.5, (lo - pad)..(hi + pad))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_label_formatter(&|x| format!("{x:.0}"))
            .x_desc("epoch (search, then tuning)")
            .y_desc(ylab)
            .label_style((FONT, 13))
            .axis_desc_style((FONT, 14))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| e.to_string())?;
        let series: [(&str, &Vec<(f64, f64, f64)>, bool, RGBColor); 4] = [
            ("search: weight step", &search, true, SEARCH_TRAIN),
            ("search: α step", &search, false, SEARCH_VALID),
            ("tuning: weight step", &tune, true, TUNE_TRAIN),
            ("tuning: α step", &tune, false, TUNE_VALID),
        ];
        for (name, pts, first, colour) in series {
            if pts.is_empty() {
                continue;
            }
            let line: Vec<(f64, f64)> = pts
                .iter()
                .map(|p| (p.0, if first { p.1 } else { p.2 }))
                .collect();
            chart
                .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
            chart
                .draw_series(line.iter().map(|&p| Circle::new(p, 2, colour.filled())))
                .map_err(|e| e.to_string())?;
        }
        chart
            .configure_series_labels()
            .label_font((FONT, 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .position(if title == "loss" {
                SeriesLabelPosition::UpperRight
            } else {
                SeriesLabelPosition::LowerRight
            })
            .draw()
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

const ALPHA_COLUMNS: usize = 7;

fn alpha<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    d: &RunData,
) -> std::result::Result<(), String> {
    let space = &d.space;
    let (_, h) = root.dim_in_pixel();
    let n = d.epochs.len();
    // Legend: one colour per op of the first cell type.
    let (legend, body) = root.split_vertically(40);
    let first = space.cell_types()[0];
    let ops: Vec<OpKind> = space.edges(first)[0].ops.clone();
    let mut x = 10;
    legend
        .draw(&Text::new("ops:", (x, 14), text_style(15.0, &BLACK)))
        .map_err(|e| e.to_string())?;
    x += 44;
    let uniform = space.uniform_ops().is_some();
    if uniform {
        for op in &ops {
            legend
                .draw(&Rectangle::new(
                    [(x, 16), (x + 22, 20)],
                    op_colour(*op).filled(),
                ))
                .map_err(|e| e.to_string())?;
            legend
                .draw(&Text::new(
                    op.name(),
                    (x + 28, 10),
                    text_style(14.0, &BLACK),
                ))
                .map_err(|e| e.to_string())?;
            x += 40 + (layout::text_width(op.name()) * 1.25) as i32;
        }
    } else {
        legend
            .draw(&Text::new(
                "each edge has its own two candidates (RobustDARTS space), named in its chart",
                (x, 10),
                text_style(14.0, &BLACK),
            ))
            .map_err(|e| e.to_string())?;
    }
    let cells = space.cell_types();
    let rows: Vec<usize> = cells
        .iter()
        .map(|&c| space.edges(c).len().div_ceil(ALPHA_COLUMNS))
        .collect();
    let total_rows: usize = rows.iter().sum();
    let body_h = h.saturating_sub(40) as usize;
    let mut top = 0usize;
    for (ci, &cell) in cells.iter().enumerate() {
        let title_h = 30usize;
        let panel_h = (body_h - 30 * cells.len()) * rows[ci] / total_rows.max(1) + title_h;
        let panel = body
            .clone()
            .shrink((0, top as i32), (body.dim_in_pixel().0, panel_h as u32));
        top += panel_h;
        let (title, grid) = panel.split_vertically(title_h as i32);
        title
            .draw(&Text::new(
                format!(
                    "{}: softmax(α) per edge over {n} search epochs",
                    layout::title(space.family, cell)
                ),
                (10, 6),
                text_style(17.0, &BLACK),
            ))
            .map_err(|e| e.to_string())?;
        let charts = grid.split_evenly((rows[ci], ALPHA_COLUMNS));
        let a_edges = space.edges(cell);
        for (e, area) in charts.iter().enumerate().take(a_edges.len()) {
            let series: Vec<Vec<(f64, f64)>> = (0..a_edges[e].ops.len())
                .map(|k| {
                    d.epochs
                        .iter()
                        .enumerate()
                        .filter_map(|(i, m)| {
                            m.softmax_alpha
                                .get(cell.index())
                                .and_then(|a| a.get(e))
                                .and_then(|r| r.get(k))
                                .map(|&w| ((i + 1) as f64, f64::from(w)))
                        })
                        .collect()
                })
                .collect();
            // Scaled to the edge's own range, so that the small differences of a near-uniform
            // α (early in a search) show.
            let (lo_w, hi_w) = series
                .iter()
                .flatten()
                .map(|p| p.1)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                });
            let (lo_w, hi_w) = if lo_w.is_finite() {
                (lo_w, hi_w)
            } else {
                (0.0, 1.0)
            };
            let pad_w = ((hi_w - lo_w) * 0.1).max(1e-5);
            // Enough decimals to tell the ticks apart.
            let decimals =
                ((-(hi_w - lo_w + 2.0 * pad_w).log10()).ceil() as i64 + 1).clamp(2, 6) as usize;
            let caption = if uniform {
                space.edge_label(cell, e)
            } else {
                format!(
                    "{}: {}",
                    space.edge_label(cell, e),
                    a_edges[e]
                        .ops
                        .iter()
                        .map(|o| o.name())
                        .collect::<Vec<_>>()
                        .join(" / ")
                )
            };
            let mut chart = ChartBuilder::on(area)
                .caption(caption, (FONT, if uniform { 14 } else { 11 }))
                .margin(6)
                .x_label_area_size(18)
                .y_label_area_size(40)
                .build_cartesian_2d(
                    0.5..(n.max(1) as f64 + 0.5),
                    (lo_w - pad_w).max(0.0)..(hi_w + pad_w).min(1.0),
                )
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_labels(4)
                .y_labels(4)
                .x_label_formatter(&|x| format!("{x:.0}"))
                .y_label_formatter(&|y| format!("{y:.decimals$}"))
                .label_style((FONT, 10))
                .light_line_style(WHITE.mix(0.0))
                .draw()
                .map_err(|e| e.to_string())?;
            for (k, pts) in series.iter().enumerate() {
                let c = op_colour(a_edges[e].ops[k]);
                let c = if uniform {
                    c
                } else {
                    [SEARCH_TRAIN, SEARCH_VALID][k % 2]
                };
                chart
                    .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))
                    .map_err(|e| e.to_string())?;
                if pts.len() == 1 {
                    chart
                        .draw_series(pts.iter().map(|&p| Circle::new(p, 3, c.filled())))
                        .map_err(|e| e.to_string())?;
                }
            }
        }
    }
    Ok(())
}

const SCORE_COLUMNS: usize = 4;

fn scores<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    d: &RunData,
) -> std::result::Result<(), String> {
    let space = &d.space;
    let rows = d.decisions.len().div_ceil(SCORE_COLUMNS);
    let areas = root.split_evenly((rows, SCORE_COLUMNS));
    for (dec, area) in d.decisions.iter().zip(&areas) {
        let (title, bars): (String, Vec<(String, f64, bool)>) = match &dec.choice {
            Choice::Op { edge, chosen_op } => (
                format!(
                    "{}. {} edge {}: keep {}",
                    dec.index + 1,
                    dec.cell.name(),
                    space.edge_label(dec.cell, *edge),
                    chosen_op
                ),
                dec.candidates
                    .iter()
                    .map(|c| {
                        let name =
                            c.op.map_or_else(|| "(edge)".to_string(), |o| o.name().to_string());
                        (name, c.accuracy, c.op == Some(*chosen_op))
                    })
                    .collect(),
            ),
            Choice::Topology { node, kept_edges } => (
                format!(
                    "{}. {} node {node}: keep {}",
                    dec.index + 1,
                    dec.cell.name(),
                    kept_edges
                        .iter()
                        .map(|&e| space.edge_label(dec.cell, e))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                dec.candidates
                    .iter()
                    .map(|c| {
                        (
                            format!("r{} {}", c.round, space.edge_label(dec.cell, c.edge)),
                            c.accuracy,
                            kept_edges.contains(&c.edge),
                        )
                    })
                    .collect(),
            ),
        };
        let (lo, hi) = bars
            .iter()
            .map(|b| b.1)
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                (a.min(v), b.max(v))
            });
        let (lo, hi) = if lo.is_finite() {
            (lo, hi)
        } else {
            (0.0, 100.0)
        };
        let x0 = (lo - (hi - lo).max(1.0) * 0.3).max(0.0);
        let x1 = (hi + (hi - lo).max(1.0) * 0.15).min(100.0).max(x0 + 1.0);
        let k = bars.len().max(1);
        let names: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
        let mut chart = ChartBuilder::on(area)
            .caption(title, (FONT, 13))
            .margin(6)
            .x_label_area_size(20)
            .y_label_area_size(112)
            .build_cartesian_2d(x0..x1, -0.5..(k as f64 - 0.5))
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(k)
            .y_label_formatter(&|y| {
                let i = y.round();
                if (y - i).abs() < 1e-6 && i >= 0.0 {
                    names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_labels(4)
            .label_style((FONT, 10))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, acc, kept))| {
                let y = i as f64;
                let c = if *kept { KEPT } else { OTHER };
                Rectangle::new([(x0, y - 0.35), (*acc, y + 0.35)], c.filled())
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, (_, acc, kept))| {
                let label = if *kept {
                    format!("{acc:.2} kept")
                } else {
                    format!("{acc:.2}")
                };
                Text::new(
                    label,
                    (*acc, i as f64),
                    text_style(10.0, &BLACK).pos(Pos::new(HPos::Left, VPos::Center)),
                )
            }))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn rgb((r, g, b): (u8, u8, u8)) -> RGBColor {
    RGBColor(r, g, b)
}

/// Colours of the cell drawings (shared with the app, which converts them).
pub mod palette {
    /// A fixed op.
    pub const DECIDED: (u8, u8, u8) = (40, 110, 190);
    /// A mixed op (during search).
    pub const MIXED: (u8, u8, u8) = (130, 130, 150);
    /// An edge that differs from the other selection.
    pub const DIFFERS: (u8, u8, u8) = (230, 120, 20);
    /// `none` and the concatenation into `c_{k}`.
    pub const FAINT: (u8, u8, u8) = (185, 185, 185);
    /// Input nodes (`c_{k-2}`, `c_{k-1}`).
    pub const INPUT: (u8, u8, u8) = (196, 230, 196);
    /// Intermediate nodes.
    pub const NODE: (u8, u8, u8) = (180, 214, 240);
    /// The output node.
    pub const OUTPUT: (u8, u8, u8) = (238, 232, 170);

    /// The colour of an edge.
    pub fn edge(e: &crate::layout::EdgeSpec) -> (u8, u8, u8) {
        if e.differs {
            DIFFERS
        } else if e.faint {
            FAINT
        } else if e.decided {
            DECIDED
        } else {
            MIXED
        }
    }

    /// The fill of a node.
    pub fn node(kind: crate::layout::NodeKind) -> (u8, u8, u8) {
        match kind {
            crate::layout::NodeKind::Input => INPUT,
            crate::layout::NodeKind::Intermediate => NODE,
            crate::layout::NodeKind::Output => OUTPUT,
        }
    }
}

/// Draw a laid-out cell at `origin` (pixels) and `scale`; `heading` goes before its title.
fn draw_cell<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    cell: &Cell,
    heading: &str,
    origin: (f32, f32),
    scale: f32,
) -> std::result::Result<(), String> {
    let at = |(x, y): (f32, f32)| -> (i32, i32) {
        (
            (origin.0 + x * scale).round() as i32,
            (origin.1 + y * scale).round() as i32,
        )
    };
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let title = if heading.is_empty() {
        cell.title.clone()
    } else {
        format!("{heading}: {}", cell.title)
    };
    root.draw(&Text::new(
        title,
        at((12.0, 8.0)),
        text_style(f64::from(15.0 * scale), &BLACK),
    ))
    .map_err(err)?;
    for e in &cell.edges {
        let c = rgb(palette::edge(&e.spec));
        let width = if e.spec.faint {
            1
        } else {
            (1.0 + 2.5 * e.spec.weight.clamp(0.0, 1.0) * scale).round() as u32
        };
        let pts: Vec<(i32, i32)> = e.path.iter().map(|&p| at(p)).collect();
        root.draw(&PathElement::new(pts.clone(), c.stroke_width(width)))
            .map_err(err)?;
        // Arrow head at the target.
        if let [.., a, b] = e.path.as_slice() {
            let (dx, dy) = (b.0 - a.0, b.1 - a.1);
            let len = (dx * dx + dy * dy).sqrt().max(1e-3);
            let (ux, uy) = (dx / len, dy / len);
            let s = 8.0;
            let tip = *b;
            let l = (tip.0 - ux * s - uy * s * 0.5, tip.1 - uy * s + ux * s * 0.5);
            let r = (tip.0 - ux * s + uy * s * 0.5, tip.1 - uy * s - ux * s * 0.5);
            root.draw(&Polygon::new(vec![at(tip), at(l), at(r)], c.filled()))
                .map_err(err)?;
        }
    }
    for e in &cell.edges {
        if let Some(l) = &e.label {
            let c = rgb(palette::edge(&e.spec));
            let r = [
                at((l.x - l.w / 2.0, l.y - l.h / 2.0)),
                at((l.x + l.w / 2.0, l.y + l.h / 2.0)),
            ];
            root.draw(&Rectangle::new(r, WHITE.filled())).map_err(err)?;
            root.draw(&Rectangle::new(r, c.stroke_width(1)))
                .map_err(err)?;
            root.draw(&Text::new(
                l.text.clone(),
                at((l.x, l.y)),
                text_style(f64::from(layout::FONT * scale), &BLACK)
                    .pos(Pos::new(HPos::Center, VPos::Center)),
            ))
            .map_err(err)?;
        }
    }
    for n in &cell.nodes {
        let r = [
            at((n.x - n.w / 2.0, n.y - n.h / 2.0)),
            at((n.x + n.w / 2.0, n.y + n.h / 2.0)),
        ];
        root.draw(&Rectangle::new(r, rgb(palette::node(n.kind)).filled()))
            .map_err(err)?;
        root.draw(&Rectangle::new(r, RGBColor(60, 60, 60).stroke_width(1)))
            .map_err(err)?;
        let size = if n.kind == NodeKind::Intermediate {
            13.0
        } else {
            12.0
        };
        root.draw(&Text::new(
            n.name.clone(),
            at((n.x, n.y)),
            text_style(f64::from(size * scale), &BLACK).pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(err)?;
    }
    Ok(())
}

/// What `darts-pt draw` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrawFormat {
    /// PNG.
    Png,
    /// SVG.
    Svg,
    /// Graphviz DOT.
    Dot,
}

impl std::str::FromStr for DrawFormat {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "png" => Ok(DrawFormat::Png),
            "svg" => Ok(DrawFormat::Svg),
            "dot" | "gv" => Ok(DrawFormat::Dot),
            _ => Err(Error::Config {
                field: "format".into(),
                message: format!("unknown format `{s}`; expected png, svg or dot"),
            }),
        }
    }
}

/// `darts-pt draw WHAT`: `what` is a run directory (both selections side by side; DOT: the PT
/// cell, else the magnitude one), a file holding a genotype, or a genotype's text (DARTS
/// `Genotype(...)`, or a NAS-Bench-201 string starting with `|`).
///
/// # Errors
/// A run without a genotype, a text that is no genotype (the parser's message), or a drawing
/// error.
#[cfg(not(target_arch = "wasm32"))]
pub fn draw(what: &str, format: DrawFormat) -> Result<Vec<u8>> {
    let path = std::path::Path::new(what);
    let dir = RunDir::new(path);
    if path.is_dir() {
        if !dir.holds_run() {
            return Err(Error::Data {
                path: path.to_path_buf(),
                message: "is a directory but not a run directory (no config.toml)".into(),
            });
        }
        let data = RunData::read(&dir)?;
        let Some(main) = data.pt.clone().or_else(|| data.magnitude.clone()) else {
            return Err(Error::Data {
                path: path.to_path_buf(),
                message: "holds no genotype yet (run `darts-pt select` first)".into(),
            });
        };
        return match format {
            DrawFormat::Dot => Ok(layout::dot(&data.space, &main)?.into_bytes()),
            DrawFormat::Png => render(Format::Png, Plot::Cells(&cell_grid(&data)?)),
            DrawFormat::Svg => render(Format::Svg, Plot::Cells(&cell_grid(&data)?)),
        };
    }
    let text = if path.is_file() {
        std::fs::read_to_string(path)
            .map_err(|source| Error::Io {
                path: path.to_path_buf(),
                source,
            })?
            .trim()
            .to_string()
    } else {
        what.trim().to_string()
    };
    let space = SearchSpace::new(if text.starts_with('|') {
        crate::space::SpaceName::Nb201
    } else {
        crate::space::SpaceName::Darts
    });
    match format {
        DrawFormat::Dot => Ok(layout::dot(&space, &text)?.into_bytes()),
        DrawFormat::Png => genotype_figure(&space, &text, Format::Png),
        DrawFormat::Svg => genotype_figure(&space, &text, Format::Svg),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::SpaceName;

    const PT: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 2), ('dil_conv_3x3', 2), ('sep_conv_3x3', 0), ('skip_connect', 3), ('max_pool_3x3', 1)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=range(2, 6))";

    #[test]
    fn a_genotype_is_drawn_as_png_and_svg() {
        let space = SearchSpace::new(SpaceName::Darts);
        let png = genotype_figure(&space, PT, Format::Png).unwrap();
        let img = image::load_from_memory(&png).unwrap().to_rgb8();
        assert!(
            img.width() > 800 && img.height() > 200,
            "{}x{}",
            img.width(),
            img.height()
        );
        // Something other than white is drawn: nodes, edges and text.
        let dark = img.pixels().filter(|p| p.0.iter().all(|&c| c < 90)).count();
        assert!(dark > 500, "{dark} dark pixels");
        let svg = String::from_utf8(genotype_figure(&space, PT, Format::Svg).unwrap()).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(
            svg.contains("sep_conv_3x3") && svg.contains("c_{k-2}") && svg.contains("reduce cell")
        );
        assert!(genotype_figure(&space, "Genotype(normal=[", Format::Png).is_err());
    }
}
