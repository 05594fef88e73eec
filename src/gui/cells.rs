//! Cell drawings (nodes, edges labelled with ops, undecided edges with their mixed weights) and
//! the edge × op heatmap of softmax(α).

use eframe::egui::{self, Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, Vec2};
use eframe::epaint::QuadraticBezierShape;

use super::record::RunRecord;
use crate::genotype::{DartsGenotype, Nb201Arch};
use crate::space::{CellType, Family, SearchSpace};

/// What a cell drawing shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GenotypeSource {
    /// Softmax(α) of the newest epoch with PT's decisions applied: decided edges show their op,
    /// undecided ones their strongest op and its weight, removed edges are gone.
    Current,
    /// The magnitude genotype.
    Magnitude,
    /// The PT genotype.
    Pt,
}

/// One edge to draw.
struct DrawEdge {
    from: usize,
    to: usize,
    label: String,
    /// 0..1: line strength.
    weight: f32,
    /// Fixed (genotype or PT decision) rather than mixed.
    decided: bool,
    /// Differs between the magnitude and PT genotypes.
    differs: bool,
}

/// Heatmap of softmax(α) `[edges][ops]` of `cell`: rows are edges (named `c_{k-2} -> 0` …),
/// columns ops; white is the uniform weight 1/ops, red above it and blue below, scaled by the
/// largest deviation, with a legend (issue 18: a near-uniform α early in a search still shows).
pub fn heatmap(
    ui: &mut egui::Ui,
    space: &SearchSpace,
    cell: CellType,
    alpha: Option<&Vec<Vec<f32>>>,
) {
    let Some(a) = alpha else {
        ui.label("no α yet");
        return;
    };
    let ops = &space.edges(cell)[0].ops;
    let uniform = space.uniform_ops().is_some();
    let (cw, ch, left, top) = (46.0, 16.0, 78.0, 80.0);
    let legend_h = 34.0;
    let size = Vec2::new(
        left + cw * ops.len() as f32,
        top + ch * a.len() as f32 + legend_h,
    );
    let (resp, painter) = ui.allocate_painter(size, Sense::hover());
    let o = resp.rect.min;
    let text = ui.visuals().text_color();
    let font = FontId::proportional(10.0);
    if uniform {
        for (k, op) in ops.iter().enumerate() {
            let p = o + Vec2::new(left + cw * (k as f32 + 0.2), top - 16.0);
            let galley = painter.layout_no_wrap(op.name().to_string(), font.clone(), text);
            painter.add(
                egui::epaint::TextShape::new(p, galley, text)
                    .with_angle(-std::f32::consts::FRAC_PI_4),
            );
        }
    }
    // Colour is relative to the uniform weight 1/ops (white), so that the small differences of
    // an early search show: red above it, blue below, scaled by the largest deviation.
    let k = a.first().map_or(1, Vec::len).max(1);
    let base = 1.0 / k as f32;
    let dev = a
        .iter()
        .flatten()
        .map(|w| (w - base).abs())
        .fold(0.0f32, f32::max)
        .max(1e-6);
    let colour = |t: f32| {
        let t = t.clamp(-1.0, 1.0);
        let (r, g, b) = if t >= 0.0 {
            (255.0, 255.0 - 190.0 * t, 255.0 - 200.0 * t)
        } else {
            (255.0 + 200.0 * t, 255.0 + 150.0 * t, 255.0)
        };
        Color32::from_rgb(r as u8, g as u8, b as u8)
    };
    for (e, row) in a.iter().enumerate() {
        let y = o.y + top + ch * e as f32;
        painter.text(
            Pos2::new(o.x + left - 4.0, y + ch / 2.0),
            Align2::RIGHT_CENTER,
            space.edge_label(cell, e),
            font.clone(),
            text,
        );
        for (k, w) in row.iter().enumerate() {
            let r = Rect::from_min_size(
                Pos2::new(o.x + left + cw * k as f32, y),
                Vec2::new(cw - 1.0, ch - 1.0),
            );
            let c = colour((w - base) / dev);
            painter.rect_filled(r, 1.0, c);
            painter.text(
                r.center(),
                Align2::CENTER_CENTER,
                format!("{w:.4}"),
                font.clone(),
                Color32::BLACK,
            );
        }
    }
    // Legend: the colour scale from 1/ops − d to 1/ops + d.
    let ly = o.y + top + ch * a.len() as f32 + 8.0;
    let (lx, lw, steps) = (o.x + left, cw * ops.len().min(5) as f32, 24);
    for i in 0..steps {
        let t = -1.0 + 2.0 * (i as f32 + 0.5) / steps as f32;
        let r = Rect::from_min_size(
            Pos2::new(lx + lw * i as f32 / steps as f32, ly),
            Vec2::new(lw / steps as f32 + 0.5, 8.0),
        );
        painter.rect_filled(r, 0.0, colour(t));
    }
    for (x, label) in [
        (lx, format!("{:.4}", base - dev)),
        (lx + lw / 2.0, format!("1/{k} = {base:.4}")),
        (lx + lw, format!("{:.4}", base + dev)),
    ] {
        painter.text(
            Pos2::new(x, ly + 10.0),
            Align2::CENTER_TOP,
            label,
            font.clone(),
            text,
        );
    }
}

fn genotype_edges(
    space: &SearchSpace,
    cell: CellType,
    text: &str,
    other: Option<&str>,
) -> Option<Vec<DrawEdge>> {
    match space.family {
        Family::Darts => {
            let g: DartsGenotype = text.parse().ok()?;
            let o: Option<DartsGenotype> = other.and_then(|t| t.parse().ok());
            let genes = if cell == CellType::Normal {
                &g.normal
            } else {
                &g.reduce
            };
            let other_genes = o.as_ref().map(|o| {
                if cell == CellType::Normal {
                    &o.normal
                } else {
                    &o.reduce
                }
            });
            Some(
                genes
                    .iter()
                    .enumerate()
                    .map(|(i, (op, input))| DrawEdge {
                        from: *input,
                        to: i / 2,
                        label: op.name().to_string(),
                        weight: 1.0,
                        decided: true,
                        differs: other_genes.is_some_and(|og| !og.contains(&(*op, *input))),
                    })
                    .collect(),
            )
        }
        Family::Nb201 => {
            let a: Nb201Arch = text.parse().ok()?;
            let o: Option<Nb201Arch> = other.and_then(|t| t.parse().ok());
            Some(
                space
                    .edges(CellType::Normal)
                    .iter()
                    .enumerate()
                    .map(|(e, edge)| DrawEdge {
                        from: edge.from,
                        to: edge.to,
                        label: a.edges[e].name().to_string(),
                        weight: if a.edges[e] == crate::space::OpKind::None {
                            0.15
                        } else {
                            1.0
                        },
                        decided: true,
                        differs: o.is_some_and(|o| o.edges[e] != a.edges[e]),
                    })
                    .collect(),
            )
        }
    }
}

fn current_edges(r: &RunRecord, cell: CellType) -> Vec<DrawEdge> {
    let space = r.space();
    let (fixed, removed) = r.pt_state(cell);
    let alpha = r.alpha(cell, None);
    space
        .edges(cell)
        .iter()
        .enumerate()
        .filter(|(e, _)| !removed.contains(e))
        .map(|(e, edge)| {
            if let Some(op) = &fixed[e] {
                return DrawEdge {
                    from: edge.from,
                    to: edge.to,
                    label: op.clone(),
                    weight: 1.0,
                    decided: true,
                    differs: false,
                };
            }
            let (k, w) = alpha
                .and_then(|a| a.get(e))
                .and_then(|row| {
                    row.iter()
                        .copied()
                        .enumerate()
                        .max_by(|x, y| x.1.total_cmp(&y.1))
                })
                .unwrap_or((0, 0.0));
            DrawEdge {
                from: edge.from,
                to: edge.to,
                label: format!("{} {w:.2}", edge.ops[k].name()),
                weight: w,
                decided: false,
                differs: false,
            }
        })
        .collect()
}

/// Draw the run's cells as `source` says; returns the rectangle painted (for the PNG export).
pub fn draw(ui: &mut egui::Ui, r: &RunRecord, source: GenotypeSource) -> Rect {
    let space = r.space();
    let cells = space.cell_types();
    let width = ui.available_width().clamp(400.0, 1400.0);
    let height = 230.0 * cells.len() as f32;
    let (resp, painter) = ui.allocate_painter(Vec2::new(width, height), Sense::hover());
    let bg = ui.visuals().extreme_bg_color;
    painter.rect_filled(resp.rect, 4.0, bg);
    let text = ui.visuals().text_color();
    for (i, &cell) in cells.iter().enumerate() {
        let area = Rect::from_min_size(
            resp.rect.min + Vec2::new(0.0, 230.0 * i as f32),
            Vec2::new(width, 230.0),
        );
        let title = match space.family {
            Family::Darts => format!("{} cell", cell.name()),
            Family::Nb201 => "NAS-Bench-201 cell".to_string(),
        };
        painter.text(
            area.min + Vec2::new(8.0, 6.0),
            Align2::LEFT_TOP,
            title,
            FontId::proportional(14.0),
            text,
        );
        let edges = match source {
            GenotypeSource::Current => Some(current_edges(r, cell)),
            GenotypeSource::Magnitude => r
                .magnitude
                .as_deref()
                .and_then(|g| genotype_edges(&space, cell, g, r.pt.as_deref())),
            GenotypeSource::Pt => {
                r.pt.as_deref()
                    .and_then(|g| genotype_edges(&space, cell, g, r.magnitude.as_deref()))
            }
        };
        match edges {
            Some(edges) => paint_cell(
                &painter,
                area,
                space.family,
                &edges,
                text,
                bg.gamma_multiply(0.85),
            ),
            None => {
                painter.text(
                    area.center(),
                    Align2::CENTER_CENTER,
                    "no genotype yet",
                    FontId::proportional(13.0),
                    text,
                );
            }
        }
    }
    resp.rect
}

fn node_pos(area: Rect, family: Family, node: usize) -> Pos2 {
    let (x, y) = match family {
        // 0 = c_{k-2}, 1 = c_{k-1}, 2..5 = intermediate nodes 0..3, 6 = output.
        Family::Darts => match node {
            0 => (0.05, 0.28),
            1 => (0.05, 0.78),
            6 => (0.96, 0.55),
            n => (
                0.27 + 0.185 * (n - 2) as f32,
                [0.3, 0.8, 0.42, 0.72][(n - 2).min(3)],
            ),
        },
        Family::Nb201 => (0.08 + 0.28 * node as f32, 0.72),
    };
    Pos2::new(
        area.min.x + x * area.width(),
        area.min.y + y * area.height(),
    )
}

fn paint_cell(
    painter: &egui::Painter,
    area: Rect,
    family: Family,
    edges: &[DrawEdge],
    text: Color32,
    label_bg: Color32,
) {
    let font = FontId::proportional(11.0);
    let (dst, names): (Box<dyn Fn(usize) -> usize>, Vec<String>) = match family {
        Family::Darts => (
            Box::new(|to| to + 2),
            vec!["c_{k-2}", "c_{k-1}", "0", "1", "2", "3", "c_{k}"]
                .into_iter()
                .map(String::from)
                .collect(),
        ),
        Family::Nb201 => (Box::new(|to| to), (0..4).map(|i| i.to_string()).collect()),
    };
    if family == Family::Darts {
        for n in 2..6 {
            painter.line_segment(
                [node_pos(area, family, n), node_pos(area, family, 6)],
                Stroke::new(1.0, Color32::from_gray(120)),
            );
        }
    }
    for e in edges {
        let a = node_pos(area, family, e.from);
        let b = node_pos(area, family, dst(e.to));
        let span = (b.x - a.x).abs() / area.width();
        let lift = match family {
            Family::Nb201 => -area.height() * (0.15 + 0.5 * span),
            // Alternate the bend by source so edges into the same node fan out.
            Family::Darts => {
                let sign = if (e.from + e.to) % 2 == 0 { -1.0 } else { 1.0 };
                sign * area.height() * (0.06 + 0.18 * span)
            }
        };
        let c = Pos2::new((a.x + b.x) / 2.0, (a.y + b.y) / 2.0 + lift);
        let color = if e.differs {
            Color32::from_rgb(230, 120, 20)
        } else if e.decided {
            Color32::from_rgb(60, 140, 220)
        } else {
            Color32::from_rgb(150, 150, 170)
        };
        let stroke = Stroke::new(0.8 + 3.0 * e.weight.clamp(0.0, 1.0), color);
        painter.add(QuadraticBezierShape::from_points_stroke(
            [a, c, b],
            false,
            Color32::TRANSPARENT,
            stroke,
        ));
        let mid = Pos2::new(
            0.25 * a.x + 0.5 * c.x + 0.25 * b.x,
            0.25 * a.y + 0.5 * c.y + 0.25 * b.y,
        );
        let galley = painter.layout_no_wrap(e.label.clone(), font.clone(), text);
        let r = Align2::CENTER_CENTER
            .anchor_size(mid, galley.size())
            .expand(2.0);
        painter.rect_filled(r, 3.0, label_bg);
        painter.rect_stroke(r, 3.0, Stroke::new(1.0, color), egui::StrokeKind::Inside);
        painter.galley(r.min + Vec2::splat(2.0), galley, text);
    }
    let fill = Color32::from_rgb(70, 90, 120);
    for (n, name) in names.iter().enumerate() {
        let p = node_pos(area, family, n);
        painter.circle(p, 15.0, fill, Stroke::new(1.0, Color32::WHITE));
        painter.text(
            p,
            Align2::CENTER_CENTER,
            name,
            FontId::proportional(10.0),
            Color32::WHITE,
        );
    }
}

/// Where the magnitude and PT genotypes differ, as text.
pub fn disagreements(r: &RunRecord) -> Vec<String> {
    match (&r.magnitude, &r.pt) {
        (Some(m), Some(p)) => crate::select::disagreements(&r.space(), m, p).unwrap_or_default(),
        _ => Vec::new(),
    }
}
