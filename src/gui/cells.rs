//! Cell drawings (the layered layout of [`crate::layout`]: nodes, edges labelled with ops,
//! undecided edges with their mixed weights) and the edge × op heatmap of softmax(α).

use eframe::egui::{self, Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, Vec2};

use super::record::RunRecord;
use crate::figures;
use crate::layout;
use crate::space::{CellType, SearchSpace};

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

/// The edges of `cell` as `source` says, `None` when that genotype does not exist (yet).
fn cell_edges(
    r: &RunRecord,
    cell: CellType,
    source: GenotypeSource,
) -> Option<Vec<layout::EdgeSpec>> {
    let space = r.space();
    match source {
        GenotypeSource::Current => {
            let (fixed, removed) = r.pt_state(cell);
            let alpha = r.alpha(cell, None).map(|a| a.as_slice());
            Some(layout::mixed_edges(&space, cell, alpha, &fixed, &removed))
        }
        GenotypeSource::Magnitude => r
            .magnitude
            .as_deref()
            .and_then(|g| layout::genotype_edges(&space, cell, g, r.pt.as_deref()).ok()),
        GenotypeSource::Pt => {
            r.pt.as_deref()
                .and_then(|g| layout::genotype_edges(&space, cell, g, r.magnitude.as_deref()).ok())
        }
    }
}

fn colour((r, g, b): (u8, u8, u8)) -> Color32 {
    Color32::from_rgb(r, g, b)
}

/// Draw the run's cells as `source` says, one below the other, each laid out by
/// [`crate::layout`] (the same layout as the report's and the page's figures) and scaled to the
/// panel's width; returns the rectangle painted.
pub fn draw(ui: &mut egui::Ui, r: &RunRecord, source: GenotypeSource) -> Rect {
    let space = r.space();
    let cells: Vec<(CellType, Option<layout::Cell>)> = space
        .cell_types()
        .iter()
        .map(|&cell| {
            let laid = cell_edges(r, cell, source).map(|edges| {
                layout::layout(space.family, &layout::title(space.family, cell), &edges)
            });
            (cell, laid)
        })
        .collect();
    let width = ui.available_width().clamp(400.0, 1400.0);
    let natural = cells
        .iter()
        .filter_map(|(_, c)| c.as_ref().map(|c| c.width))
        .fold(400.0f32, f32::max);
    let scale = (width / natural).min(1.3);
    let heights: Vec<f32> = cells
        .iter()
        .map(|(_, c)| c.as_ref().map_or(60.0, |c| c.height * scale))
        .collect();
    let (resp, painter) = ui.allocate_painter(
        Vec2::new(width, heights.iter().sum::<f32>()),
        Sense::hover(),
    );
    let bg = ui.visuals().extreme_bg_color;
    painter.rect_filled(resp.rect, 4.0, bg);
    let text = ui.visuals().text_color();
    let mut y = resp.rect.min.y;
    for ((cell, laid), h) in cells.iter().zip(&heights) {
        let origin = Pos2::new(resp.rect.min.x, y);
        match laid {
            Some(c) => paint_cell(&painter, c, origin, scale, text, bg),
            None => {
                painter.text(
                    origin + Vec2::new(8.0, 6.0),
                    Align2::LEFT_TOP,
                    layout::title(space.family, *cell),
                    FontId::proportional(14.0),
                    text,
                );
                painter.text(
                    origin + Vec2::new(width / 2.0, h / 2.0),
                    Align2::CENTER_CENTER,
                    "no genotype yet",
                    FontId::proportional(13.0),
                    text,
                );
            }
        }
        y += h;
    }
    resp.rect
}

fn paint_cell(
    painter: &egui::Painter,
    cell: &layout::Cell,
    origin: Pos2,
    scale: f32,
    text: Color32,
    bg: Color32,
) {
    let at = |(x, y): (f32, f32)| origin + Vec2::new(x * scale, y * scale);
    painter.text(
        at((12.0, 8.0)),
        Align2::LEFT_TOP,
        &cell.title,
        FontId::proportional(14.0),
        text,
    );
    for e in &cell.edges {
        let c = colour(figures::palette::edge(&e.spec));
        let width = if e.spec.faint {
            1.0
        } else {
            1.0 + 2.5 * e.spec.weight.clamp(0.0, 1.0) * scale
        };
        let pts: Vec<Pos2> = e.path.iter().map(|&p| at(p)).collect();
        painter.add(egui::Shape::line(pts.clone(), Stroke::new(width, c)));
        if let [.., a, b] = pts.as_slice() {
            let d = (*b - *a).normalized();
            let n = Vec2::new(-d.y, d.x);
            let s = 8.0 * scale;
            painter.add(egui::Shape::convex_polygon(
                vec![*b, *b - d * s + n * s * 0.5, *b - d * s - n * s * 0.5],
                c,
                Stroke::NONE,
            ));
        }
    }
    let font = FontId::proportional(layout::FONT * scale);
    for e in &cell.edges {
        if let Some(l) = &e.label {
            let c = colour(figures::palette::edge(&e.spec));
            let r = Rect::from_center_size(at((l.x, l.y)), Vec2::new(l.w, l.h) * scale);
            painter.rect_filled(r, 3.0, bg);
            painter.rect_stroke(r, 3.0, Stroke::new(1.0, c), egui::StrokeKind::Inside);
            painter.text(
                r.center(),
                Align2::CENTER_CENTER,
                &l.text,
                font.clone(),
                text,
            );
        }
    }
    for n in &cell.nodes {
        let r = Rect::from_center_size(at((n.x, n.y)), Vec2::new(n.w, n.h) * scale);
        painter.rect_filled(r, 5.0, colour(figures::palette::node(n.kind)));
        painter.rect_stroke(
            r,
            5.0,
            Stroke::new(1.0, Color32::from_gray(60)),
            egui::StrokeKind::Inside,
        );
        painter.text(
            r.center(),
            Align2::CENTER_CENTER,
            &n.name,
            FontId::proportional(12.0 * scale),
            Color32::BLACK,
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
