//! The layered layout of a cell drawing, shared by the desktop app, the page, the report's
//! figures and `darts-pt draw` (issue 18): the style of the DARTS paper's cell figures, with the
//! cell inputs `c_{k-2}` (above) and `c_{k-1}` (below) on the left, the intermediate nodes in
//! order, and the cell output `c_{k}` on the right (NAS-Bench-201: nodes 0..3 in a row).
//!
//! Geometry only, in abstract units (pixels at scale 1, y down); each face scales it into its
//! own canvas and draws the nodes, the polylines and the label boxes with its own painter.
//!
//! Rules (checked by the tests below on every NAS-Bench-201 cell and on random DARTS cells):
//! * an edge between neighbouring columns on the node row is a straight segment;
//! * a longer edge runs on a *lane*, a horizontal track above or below the node row, rising from
//!   its source and dropping into its target within `DROP` of their columns, so that it passes
//!   no node; edges share a lane only where their spans do not overlap;
//! * a label is placed on its edge's straight part, clear of every node, every other label and
//!   every other edge's line; when no such place exists on a lane the edge moves to a new outer
//!   lane and the labels are placed again.

use crate::genotype::{DartsGenotype, Nb201Arch};
use crate::space::{CellType, Family, OpKind, SearchSpace};

/// Horizontal distance between node columns.
pub const COLUMN: f32 = 200.0;
/// Vertical distance between lanes (and from the node row to the first lane).
pub const LANE: f32 = 30.0;
/// Horizontal extent of an edge's rise from its source and drop into its target.
pub const DROP: f32 = 34.0;
/// Label text size the boxes are measured for (the faces draw at this size times their scale).
pub const FONT: f32 = 11.0;
/// Height of a label box.
pub const LABEL_H: f32 = 16.0;
/// Height of a node box.
pub const NODE_H: f32 = 26.0;
const PAD: f32 = 12.0;

/// Estimated width of `text` at [`FONT`]: a conservative per-character width for the
/// proportional fonts the faces use (egui's and the report's Ubuntu Light), plus padding.
pub fn text_width(text: &str) -> f32 {
    text.chars().count() as f32 * FONT * 0.6 + 8.0
}

/// What a node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeKind {
    /// A cell input (`c_{k-2}`, `c_{k-1}`; NAS-Bench-201's node 0).
    Input,
    /// An intermediate node.
    Intermediate,
    /// The cell output (`c_{k}`; NAS-Bench-201's node 3).
    Output,
}

/// A node box (centre and size).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Text in the box: `c_{k-2}`, `0`, `c_{k}`.
    pub name: String,
    /// Its role.
    pub kind: NodeKind,
    /// Centre.
    pub x: f32,
    /// Centre.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

/// One edge to draw, before layout. `from`/`to` index [`Cell::nodes`]: DARTS states (0 =
/// `c_{k-2}`, 1 = `c_{k-1}`, 2.. = intermediate nodes, last = `c_{k}`) or NAS-Bench-201 nodes.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeSpec {
    /// Source node.
    pub from: usize,
    /// Target node.
    pub to: usize,
    /// Op name (with its weight for a mixed edge), `None` for the output's concatenation.
    pub label: Option<String>,
    /// 0..1: line strength (1 for a fixed op, the op's softmax weight for a mixed edge).
    pub weight: f32,
    /// A fixed op (genotype or PT decision) rather than a mixed one.
    pub decided: bool,
    /// Differs from the genotype it is compared with (the other selection).
    pub differs: bool,
    /// Drawn faint: NAS-Bench-201's `none`, or the unlabelled concatenation into `c_{k}`.
    pub faint: bool,
}

/// A label box (centre and size).
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    /// The text.
    pub text: String,
    /// Centre.
    pub x: f32,
    /// Centre.
    pub y: f32,
    /// Width.
    pub w: f32,
    /// Height.
    pub h: f32,
}

/// A laid-out edge: its polyline (from the source's border to the target's border, where the
/// arrow head goes) and its label.
#[derive(Clone, Debug, PartialEq)]
pub struct Edge {
    /// What it shows.
    pub spec: EdgeSpec,
    /// Polyline points.
    pub path: Vec<(f32, f32)>,
    /// Label box, when the edge has a label.
    pub label: Option<Label>,
}

/// A laid-out cell: every coordinate within `[0, width] × [0, height]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Cell {
    /// Title (`normal cell`, `reduce cell`, `NAS-Bench-201 cell`).
    pub title: String,
    /// Extent.
    pub width: f32,
    /// Extent.
    pub height: f32,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// Edges.
    pub edges: Vec<Edge>,
}

/// The nodes of a cell of `family` (before layout: names and kinds).
fn node_names(family: Family) -> Vec<(String, NodeKind)> {
    match family {
        Family::Darts => {
            let mut v = vec![
                ("c_{k-2}".to_string(), NodeKind::Input),
                ("c_{k-1}".to_string(), NodeKind::Input),
            ];
            v.extend(
                (0..crate::space::DARTS_STEPS).map(|i| (i.to_string(), NodeKind::Intermediate)),
            );
            v.push(("c_{k}".to_string(), NodeKind::Output));
            v
        }
        Family::Nb201 => (0..4)
            .map(|i| {
                let kind = match i {
                    0 => NodeKind::Input,
                    3 => NodeKind::Output,
                    _ => NodeKind::Intermediate,
                };
                (i.to_string(), kind)
            })
            .collect(),
    }
}

/// The title of a cell drawing.
pub fn title(family: Family, cell: CellType) -> String {
    match family {
        Family::Darts => format!("{} cell", cell.name()),
        Family::Nb201 => "NAS-Bench-201 cell".to_string(),
    }
}

/// The edges of a genotype's `cell` (DARTS `Genotype(...)` text or a NAS-Bench-201 string);
/// with `other` (the other selection) the edges it lacks are marked as differing.
///
/// # Errors
/// When the text is not a genotype of the space.
pub fn genotype_edges(
    space: &SearchSpace,
    cell: CellType,
    text: &str,
    other: Option<&str>,
) -> crate::Result<Vec<EdgeSpec>> {
    match space.family {
        Family::Darts => {
            let g: DartsGenotype = text.parse()?;
            let o: Option<DartsGenotype> = other.map(str::parse).transpose()?;
            let pick = |g: &DartsGenotype| {
                if cell == CellType::Normal {
                    (g.normal.clone(), g.normal_concat.nodes.clone())
                } else {
                    (g.reduce.clone(), g.reduce_concat.nodes.clone())
                }
            };
            let (genes, concat) = pick(&g);
            let other_genes = o.as_ref().map(|o| pick(o).0);
            let out = 2 + genes.len() / 2;
            let mut edges: Vec<EdgeSpec> = genes
                .iter()
                .enumerate()
                .map(|(i, (op, input))| EdgeSpec {
                    from: *input,
                    to: 2 + i / 2,
                    label: Some(op.name().to_string()),
                    weight: 1.0,
                    decided: true,
                    differs: other_genes.as_ref().is_some_and(|og| {
                        // The same (op, input) on the same node.
                        let node = i / 2;
                        !og.iter()
                            .skip(2 * node)
                            .take(2)
                            .any(|(o2, in2)| o2 == op && in2 == input)
                    }),
                    faint: false,
                })
                .collect();
            edges.extend(
                concat
                    .iter()
                    .filter(|&&n| n < out)
                    .map(|&n| concat_edge(n, out)),
            );
            Ok(edges)
        }
        Family::Nb201 => {
            let a: Nb201Arch = text.parse()?;
            let o: Option<Nb201Arch> = other.map(str::parse).transpose()?;
            Ok(space
                .edges(CellType::Normal)
                .iter()
                .enumerate()
                .map(|(e, edge)| {
                    let none = a.edges[e] == OpKind::None;
                    EdgeSpec {
                        from: edge.from,
                        to: edge.to,
                        label: Some(a.edges[e].name().to_string()),
                        weight: if none { 0.15 } else { 1.0 },
                        decided: true,
                        differs: o.is_some_and(|o| o.edges[e] != a.edges[e]),
                        faint: none,
                    }
                })
                .collect())
        }
    }
}

fn concat_edge(from: usize, out: usize) -> EdgeSpec {
    EdgeSpec {
        from,
        to: out,
        label: None,
        weight: 0.3,
        decided: true,
        differs: false,
        faint: true,
    }
}

/// The edges of a supernet's `cell` during search or PT: `alpha` is softmax(α) `[edges][ops]`
/// (`None` before the first epoch); `fixed[e]` is the op PT kept on edge `e`; `removed` the
/// edges PT's topology step dropped. A mixed edge shows its strongest op and that op's weight.
pub fn mixed_edges(
    space: &SearchSpace,
    cell: CellType,
    alpha: Option<&[Vec<f32>]>,
    fixed: &[Option<String>],
    removed: &[usize],
) -> Vec<EdgeSpec> {
    let darts = space.family == Family::Darts;
    let shift = if darts { 2 } else { 0 };
    let mut edges: Vec<EdgeSpec> = space
        .edges(cell)
        .iter()
        .enumerate()
        .filter(|(e, _)| !removed.contains(e))
        .map(|(e, edge)| {
            let to = edge.to + shift;
            if let Some(Some(op)) = fixed.get(e) {
                return EdgeSpec {
                    from: edge.from,
                    to,
                    label: Some(op.clone()),
                    weight: 1.0,
                    decided: true,
                    differs: false,
                    faint: op == OpKind::None.name(),
                };
            }
            let (k, w) = alpha
                .and_then(|a| a.get(e))
                .and_then(|row| {
                    row.iter()
                        .copied()
                        .enumerate()
                        .max_by(|x, y| x.1.total_cmp(&y.1).then(y.0.cmp(&x.0)))
                })
                .unwrap_or((0, 0.0));
            EdgeSpec {
                from: edge.from,
                to,
                label: Some(format!("{} {w:.2}", edge.ops[k].name())),
                weight: w,
                decided: false,
                differs: false,
                faint: false,
            }
        })
        .collect();
    if darts {
        let out = 2 + crate::space::DARTS_STEPS;
        edges.extend((2..out).map(|n| concat_edge(n, out)));
    }
    edges
}

/// Where an edge runs: straight, or on lane `k ≥ 1` above (`side = -1`) or below (`+1`).
#[derive(Clone, Copy, Debug, PartialEq)]
struct Route {
    side: f32,
    lane: usize,
}

/// Lay out a cell of `family` with `edges`.
pub fn layout(family: Family, title: &str, edges: &[EdgeSpec]) -> Cell {
    let names = node_names(family);
    // Columns and rows: DARTS inputs share column 0 (c_{k-2} above the row, c_{k-1} below).
    let column = |n: usize| -> usize {
        match family {
            Family::Darts => n.saturating_sub(1),
            Family::Nb201 => n,
        }
    };
    let row = |n: usize| -> f32 {
        match (family, n) {
            (Family::Darts, 0) => -LANE,
            (Family::Darts, 1) => LANE,
            _ => 0.0,
        }
    };
    let mut nodes: Vec<Node> = names
        .iter()
        .enumerate()
        .map(|(n, (name, kind))| Node {
            name: name.clone(),
            kind: *kind,
            x: column(n) as f32 * COLUMN,
            y: row(n),
            w: if *kind == NodeKind::Intermediate {
                NODE_H
            } else {
                text_width(name) + 4.0
            },
            h: NODE_H,
        })
        .collect();
    let nn = nodes.len();
    let edges: Vec<EdgeSpec> = edges
        .iter()
        .filter(|e| e.from < nn && e.to < nn && e.from != e.to)
        .cloned()
        .collect();
    // Straight where the two ends are neighbouring columns (node row, or an input to node 0).
    let straight = |e: &EdgeSpec| column(e.to) == column(e.from) + 1;
    // Lane edges, shortest span first, get the inner lanes.
    let mut order: Vec<usize> = (0..edges.len()).filter(|&i| !straight(&edges[i])).collect();
    order.sort_by_key(|&i| {
        (
            column(edges[i].to) - column(edges[i].from),
            edges[i].from,
            edges[i].to,
        )
    });
    let mut routes: Vec<Option<Route>> = vec![None; edges.len()];
    let mut extra: Vec<usize> = vec![0; edges.len()];
    let mut attempt = 0;
    loop {
        // Assign lanes.
        let mut busy: Vec<(f32, usize, f32, f32)> = Vec::new(); // (side, lane, x0, x1)
        let mut counts = [0usize; 2];
        for &i in &order {
            let e = &edges[i];
            let (x0, x1) = (nodes[e.from].x, nodes[e.to].x);
            let side = if nodes[e.from].y < 0.0 {
                -1.0
            } else if nodes[e.from].y > 0.0 {
                1.0
            } else if counts[1] < counts[0] {
                1.0
            } else {
                -1.0
            };
            counts[usize::from(side > 0.0)] += 1;
            let free = |lane: usize| {
                !busy
                    .iter()
                    .any(|&(s, l, a, b)| s == side && l == lane && x0 < b && a < x1)
            };
            let mut lane = 1 + extra[i];
            while !free(lane) {
                lane += 1;
            }
            busy.push((side, lane, x0, x1));
            routes[i] = Some(Route { side, lane });
        }
        // Paths.
        let paths: Vec<Vec<(f32, f32)>> = (0..edges.len())
            .map(|i| path(&nodes, &edges[i], routes[i]))
            .collect();
        // Labels.
        match place_labels(&nodes, &edges, &paths, &routes, &column) {
            Ok(labels) => {
                return finish(title, &mut nodes, edges, paths, labels);
            }
            Err(i) if attempt < 60 && routes[i].is_some() => {
                // Push the edge out by one lane and try again.
                extra[i] += 1;
                attempt += 1;
            }
            Err(i) if attempt < 60 => {
                // A straight edge whose label does not fit becomes a lane edge.
                order.push(i);
                attempt += 1;
            }
            Err(_) => {
                // Give up on the rule (never seen): place labels at their preferred spots.
                let labels = preferred_labels(&edges, &paths);
                return finish(title, &mut nodes, edges, paths, labels);
            }
        }
    }
}

fn path(nodes: &[Node], e: &EdgeSpec, route: Option<Route>) -> Vec<(f32, f32)> {
    let (a, b) = (&nodes[e.from], &nodes[e.to]);
    let pts = match route {
        None => vec![(a.x, a.y), (b.x, b.y)],
        Some(r) => {
            let y = r.side * LANE * r.lane as f32;
            let mut v = vec![(a.x, a.y)];
            if (a.y - y).abs() > f32::EPSILON {
                v.push((a.x + DROP, y));
            } else {
                v.push((a.x + a.w / 2.0, y));
            }
            v.push((b.x - DROP, y));
            v.push((b.x, b.y));
            v
        }
    };
    // Clip the ends to the node borders.
    let mut pts = pts;
    let n = pts.len();
    pts[0] = border(a, pts[1]);
    pts[n - 1] = border(b, pts[n - 2]);
    pts
}

/// Where the segment from the centre of `node` towards `p` leaves the node's box.
fn border(node: &Node, p: (f32, f32)) -> (f32, f32) {
    let (dx, dy) = (p.0 - node.x, p.1 - node.y);
    let tx = if dx.abs() > 1e-6 {
        (node.w / 2.0) / dx.abs()
    } else {
        f32::INFINITY
    };
    let ty = if dy.abs() > 1e-6 {
        (node.h / 2.0) / dy.abs()
    } else {
        f32::INFINITY
    };
    let t = tx.min(ty).min(1.0);
    (node.x + dx * t, node.y + dy * t)
}

fn preferred_labels(edges: &[EdgeSpec], paths: &[Vec<(f32, f32)>]) -> Vec<Option<Label>> {
    edges
        .iter()
        .zip(paths)
        .map(|(e, p)| {
            e.label.as_ref().map(|t| {
                let k = p.len() / 2;
                let (a, b) = (p[k - 1], p[k]);
                Label {
                    text: t.clone(),
                    x: (a.0 + b.0) / 2.0,
                    y: (a.1 + b.1) / 2.0,
                    w: text_width(t),
                    h: LABEL_H,
                }
            })
        })
        .collect()
}

/// Place every label clear of nodes, other labels and other edges; `Err(i)` names the first
/// edge whose label finds no place.
fn place_labels(
    nodes: &[Node],
    edges: &[EdgeSpec],
    paths: &[Vec<(f32, f32)>],
    routes: &[Option<Route>],
    column: &dyn Fn(usize) -> usize,
) -> Result<Vec<Option<Label>>, usize> {
    let mut placed: Vec<Option<Label>> = vec![None; edges.len()];
    // Lane edges first (fewer choices per position), then straight ones.
    let mut order: Vec<usize> = (0..edges.len()).collect();
    order.sort_by_key(|&i| routes[i].is_none());
    for i in order {
        let Some(text) = &edges[i].label else {
            continue;
        };
        let (w, h) = (text_width(text), LABEL_H);
        let mut candidates: Vec<(f32, f32)> = Vec::new();
        let p = &paths[i];
        match routes[i] {
            Some(_) => {
                // On the lane, in the gaps between columns (clear of every rise and drop).
                let y = p[1].1;
                let (c0, c1) = (column(edges[i].from), column(edges[i].to));
                let mid = (c0 + c1) as f32 / 2.0;
                let mut gaps: Vec<usize> = (c0..c1).collect();
                gaps.sort_by(|a, b| {
                    let da = (*a as f32 + 0.5 - mid).abs();
                    let db = (*b as f32 + 0.5 - mid).abs();
                    da.total_cmp(&db).then(b.cmp(a))
                });
                for g in gaps {
                    let lo = g as f32 * COLUMN + DROP + w / 2.0 + 3.0;
                    let hi = (g + 1) as f32 * COLUMN - DROP - w / 2.0 - 3.0;
                    if lo > hi {
                        // Too wide for the gap: centred on it, if nothing is in the way.
                        candidates.push(((g as f32 + 0.5) * COLUMN, y));
                        continue;
                    }
                    for t in [0.5, 0.3, 0.7, 0.1, 0.9, 0.0, 1.0] {
                        candidates.push((lo + (hi - lo) * t, y));
                    }
                }
            }
            None => {
                let (a, b) = (p[0], p[p.len() - 1]);
                for t in [0.5, 0.42, 0.58, 0.34, 0.66] {
                    candidates.push((a.0 + (b.0 - a.0) * t, a.1 + (b.1 - a.1) * t));
                }
            }
        }
        let fits = |(x, y): (f32, f32)| {
            let r = (x - w / 2.0, y - h / 2.0, x + w / 2.0, y + h / 2.0);
            let clear_nodes = nodes.iter().all(|n| {
                !overlaps(
                    r,
                    (
                        n.x - n.w / 2.0 - 2.0,
                        n.y - n.h / 2.0 - 2.0,
                        n.x + n.w / 2.0 + 2.0,
                        n.y + n.h / 2.0 + 2.0,
                    ),
                )
            });
            let clear_labels = placed.iter().flatten().all(|l| {
                !overlaps(
                    r,
                    (
                        l.x - l.w / 2.0 - 2.0,
                        l.y - l.h / 2.0 - 2.0,
                        l.x + l.w / 2.0 + 2.0,
                        l.y + l.h / 2.0 + 2.0,
                    ),
                )
            });
            let clear_edges = paths
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .all(|(_, q)| q.windows(2).all(|s| !segment_hits_box(s[0], s[1], r)));
            clear_nodes && clear_labels && clear_edges
        };
        match candidates.into_iter().find(|&c| fits(c)) {
            Some((x, y)) => {
                placed[i] = Some(Label {
                    text: text.clone(),
                    x,
                    y,
                    w,
                    h,
                });
            }
            None => return Err(i),
        }
    }
    Ok(placed)
}

fn finish(
    title: &str,
    nodes: &mut [Node],
    edges: Vec<EdgeSpec>,
    paths: Vec<Vec<(f32, f32)>>,
    labels: Vec<Option<Label>>,
) -> Cell {
    // Bounds, then shift everything to start at PAD (a title line above).
    let mut lo = (f32::INFINITY, f32::INFINITY);
    let mut hi = (f32::NEG_INFINITY, f32::NEG_INFINITY);
    let mut grow = |x0: f32, y0: f32, x1: f32, y1: f32| {
        lo = (lo.0.min(x0), lo.1.min(y0));
        hi = (hi.0.max(x1), hi.1.max(y1));
    };
    for n in nodes.iter() {
        grow(
            n.x - n.w / 2.0,
            n.y - n.h / 2.0,
            n.x + n.w / 2.0,
            n.y + n.h / 2.0,
        );
    }
    for p in &paths {
        for &(x, y) in p {
            grow(x, y, x, y);
        }
    }
    for l in labels.iter().flatten() {
        grow(
            l.x - l.w / 2.0,
            l.y - l.h / 2.0,
            l.x + l.w / 2.0,
            l.y + l.h / 2.0,
        );
    }
    let top = PAD + 20.0;
    let (dx, dy) = (PAD - lo.0, top - lo.1);
    for n in nodes.iter_mut() {
        n.x += dx;
        n.y += dy;
    }
    let edges = edges
        .into_iter()
        .zip(paths)
        .zip(labels)
        .map(|((spec, path), label)| Edge {
            spec,
            path: path.into_iter().map(|(x, y)| (x + dx, y + dy)).collect(),
            label: label.map(|l| Label {
                x: l.x + dx,
                y: l.y + dy,
                ..l
            }),
        })
        .collect();
    Cell {
        title: title.to_string(),
        width: hi.0 - lo.0 + 2.0 * PAD,
        height: hi.1 - lo.1 + top + PAD,
        nodes: nodes.to_vec(),
        edges,
    }
}

/// Whether two boxes `(x0, y0, x1, y1)` overlap (touching is not overlapping).
fn overlaps(a: (f32, f32, f32, f32), b: (f32, f32, f32, f32)) -> bool {
    a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
}

/// Whether the segment `p`–`q` passes through the inside of box `r` (Liang–Barsky clipping).
fn segment_hits_box(p: (f32, f32), q: (f32, f32), r: (f32, f32, f32, f32)) -> bool {
    let (dx, dy) = (q.0 - p.0, q.1 - p.1);
    let mut t0 = 0.0f32;
    let mut t1 = 1.0f32;
    for (pk, qk) in [
        (-dx, p.0 - r.0),
        (dx, r.2 - p.0),
        (-dy, p.1 - r.1),
        (dy, r.3 - p.1),
    ] {
        if pk.abs() < 1e-9 {
            if qk <= 0.0 {
                return false;
            }
        } else {
            let t = qk / pk;
            if pk < 0.0 {
                t0 = t0.max(t);
            } else {
                t1 = t1.min(t);
            }
        }
    }
    t1 - t0 > 1e-4
}

impl Cell {
    /// Violations of the layout rules (empty when the drawing is clean): an edge through a node
    /// other than its ends, two labels overlapping, a label over a node or over another edge.
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        let shrink = |n: &Node, by: f32| {
            (
                n.x - n.w / 2.0 + by,
                n.y - n.h / 2.0 + by,
                n.x + n.w / 2.0 - by,
                n.y + n.h / 2.0 - by,
            )
        };
        let lbox = |l: &Label| {
            (
                l.x - l.w / 2.0,
                l.y - l.h / 2.0,
                l.x + l.w / 2.0,
                l.y + l.h / 2.0,
            )
        };
        for (i, e) in self.edges.iter().enumerate() {
            for (k, n) in self.nodes.iter().enumerate() {
                if k == e.spec.from || k == e.spec.to {
                    continue;
                }
                if e.path
                    .windows(2)
                    .any(|s| segment_hits_box(s[0], s[1], shrink(n, -1.0)))
                {
                    v.push(format!(
                        "edge {i} ({} -> {}) passes node {}",
                        e.spec.from, e.spec.to, n.name
                    ));
                }
            }
            if let Some(l) = &e.label {
                for n in &self.nodes {
                    if overlaps(lbox(l), shrink(n, 0.0)) {
                        v.push(format!("label `{}` covers node {}", l.text, n.name));
                    }
                }
                for (j, f) in self.edges.iter().enumerate() {
                    if j == i {
                        continue;
                    }
                    if f.path
                        .windows(2)
                        .any(|s| segment_hits_box(s[0], s[1], lbox(l)))
                    {
                        v.push(format!(
                            "label `{}` of edge {i} is crossed by edge {j}",
                            l.text
                        ));
                    }
                    if let Some(m) = &f.label
                        && j > i
                        && overlaps(lbox(l), lbox(m))
                    {
                        v.push(format!("labels `{}` and `{}` overlap", l.text, m.text));
                    }
                }
            }
        }
        v
    }
}

/// Lay out `cell` of a genotype (see [`genotype_edges`]).
///
/// # Errors
/// When the text is not a genotype of the space.
pub fn genotype_cell(
    space: &SearchSpace,
    cell: CellType,
    text: &str,
    other: Option<&str>,
) -> crate::Result<Cell> {
    let edges = genotype_edges(space, cell, text, other)?;
    Ok(layout(space.family, &title(space.family, cell), &edges))
}

/// Graphviz DOT of a genotype's cells (left to right, as the DARTS paper's figures), for papers:
/// `dot -Tpdf cell.dot > cell.pdf`.
///
/// # Errors
/// When the text is not a genotype of the space.
pub fn dot(space: &SearchSpace, text: &str) -> crate::Result<String> {
    use std::fmt::Write as _;
    let mut s = String::new();
    let _ = writeln!(s, "digraph genotype {{");
    let _ = writeln!(s, "  rankdir=LR;");
    let _ = writeln!(
        s,
        "  node [shape=box, style=\"rounded,filled\", fontname=\"helvetica\", fontsize=18];"
    );
    let _ = writeln!(s, "  edge [fontname=\"times\", fontsize=18];");
    let names = node_names(space.family);
    for &cell in space.cell_types() {
        let edges = genotype_edges(space, cell, text, None)?;
        let p = cell.name();
        let _ = writeln!(s, "  subgraph cluster_{p} {{");
        let _ = writeln!(s, "    label=\"{}\";", title(space.family, cell));
        for (n, (name, kind)) in names.iter().enumerate() {
            let (fill, shape) = match kind {
                NodeKind::Input => ("darkseagreen2", "box"),
                NodeKind::Output => ("palegoldenrod", "box"),
                NodeKind::Intermediate => ("lightblue", "circle"),
            };
            let _ = writeln!(
                s,
                "    {p}_{n} [label=\"{name}\", fillcolor={fill}, shape={shape}];"
            );
        }
        if space.family == Family::Darts {
            let _ = writeln!(s, "    {{ rank=same; {p}_0; {p}_1; }}");
        }
        for e in &edges {
            match &e.label {
                Some(op) if !(space.family == Family::Nb201 && op == OpKind::None.name()) => {
                    let _ = writeln!(
                        s,
                        "    {p}_{} -> {p}_{} [label=\"{op}\", fillcolor=gray];",
                        e.from, e.to
                    );
                }
                Some(_) => {}
                None => {
                    let _ = writeln!(s, "    {p}_{} -> {p}_{} [color=gray];", e.from, e.to);
                }
            }
        }
        let _ = writeln!(s, "  }}");
    }
    let _ = writeln!(s, "}}");
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::SpaceName;
    use rand::{Rng, SeedableRng};

    fn check(cell: &Cell) {
        let v = cell.violations();
        assert!(v.is_empty(), "{}: {v:#?}", cell.title);
        for e in &cell.edges {
            for &(x, y) in &e.path {
                assert!((0.0..=cell.width).contains(&x) && (0.0..=cell.height).contains(&y));
            }
            assert_eq!(e.label.is_some(), e.spec.label.is_some());
        }
    }

    #[test]
    fn every_nb201_cell_is_drawn_cleanly() {
        let space = SearchSpace::new(SpaceName::Nb201);
        let ops = crate::space::NB201_OPS;
        for idx in 0..5usize.pow(6) {
            let mut k = idx;
            let mut edges = [OpKind::None; 6];
            for e in (0..6).rev() {
                edges[e] = ops[k % 5];
                k /= 5;
            }
            let text = Nb201Arch { edges }.to_string();
            check(&genotype_cell(&space, CellType::Normal, &text, None).unwrap());
        }
    }

    fn random_genotype(rng: &mut impl Rng, ops: &[OpKind]) -> String {
        let mut genes = |_: ()| -> String {
            (0..4)
                .flat_map(|node| {
                    let a = rng.random_range(0..node + 2);
                    let mut b = rng.random_range(0..node + 2);
                    if b == a {
                        b = (a + 1) % (node + 2);
                    }
                    [a, b]
                        .into_iter()
                        .map(|input| {
                            let op = ops[rng.random_range(1..ops.len())];
                            format!("('{}', {input})", op.name())
                        })
                        .collect::<Vec<_>>()
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let n = genes(());
        let r = genes(());
        format!(
            "Genotype(normal=[{n}], normal_concat=range(2, 6), reduce=[{r}], reduce_concat=range(2, 6))"
        )
    }

    #[test]
    fn random_darts_cells_are_drawn_cleanly() {
        let space = SearchSpace::new(SpaceName::Darts);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        for _ in 0..300 {
            let a = random_genotype(&mut rng, &crate::space::DARTS_OPS);
            let b = random_genotype(&mut rng, &crate::space::DARTS_OPS);
            for &cell in space.cell_types() {
                let c = genotype_cell(&space, cell, &a, Some(&b)).unwrap();
                check(&c);
            }
        }
    }

    #[test]
    fn supernet_cells_with_weights_are_drawn_cleanly() {
        for name in [SpaceName::Darts, SpaceName::Nb201, SpaceName::S2] {
            let space = SearchSpace::new(name);
            for &cell in space.cell_types() {
                let rows = space.edges(cell).len();
                let k = space.ops_per_edge(cell);
                let alpha: Vec<Vec<f32>> = (0..rows)
                    .map(|e| (0..k).map(|j| ((e + j) % k) as f32 / k as f32).collect())
                    .collect();
                let mut fixed = vec![None; rows];
                fixed[1] = Some("sep_conv_3x3".to_string());
                let c = layout(
                    space.family,
                    "t",
                    &mixed_edges(&space, cell, Some(&alpha), &fixed, &[]),
                );
                check(&c);
                assert_eq!(
                    c.edges.iter().filter(|e| e.spec.label.is_some()).count(),
                    rows
                );
            }
        }
    }

    #[test]
    fn the_layout_is_layered_left_to_right() {
        let space = SearchSpace::new(SpaceName::Darts);
        let g = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('skip_connect', 0), ('sep_conv_3x3', 2), ('dil_conv_3x3', 2), ('sep_conv_3x3', 0), ('skip_connect', 3), ('max_pool_3x3', 1)], normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 0), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('avg_pool_3x3', 0)], reduce_concat=range(2, 6))";
        let c = genotype_cell(&space, CellType::Normal, g, None).unwrap();
        let x: Vec<f32> = c.nodes.iter().map(|n| n.x).collect();
        assert_eq!(x[0], x[1], "c_{{k-2}} and c_{{k-1}} share the first column");
        assert!(c.nodes[0].y < c.nodes[1].y, "c_{{k-2}} above c_{{k-1}}");
        assert!(x.windows(2).skip(1).all(|w| w[0] < w[1]), "{x:?}");
        assert_eq!(c.nodes.last().unwrap().name, "c_{k}");
        // 8 op edges and 4 concatenations.
        assert_eq!(c.edges.len(), 12);
        assert_eq!(c.edges.iter().filter(|e| e.label.is_some()).count(), 8);
    }

    #[test]
    fn the_rule_checker_sees_a_bad_drawing() {
        // Two labels forced onto one spot and a straight edge across a node.
        let space = SearchSpace::new(SpaceName::Nb201);
        let mut c = genotype_cell(&space, CellType::Normal, "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|", None).unwrap();
        let l0 = c.edges[0].label.clone().unwrap();
        c.edges[1].label = Some(l0);
        let (a, b) = (&c.nodes[0], &c.nodes[3]);
        c.edges[3].path = vec![(a.x, a.y), (b.x, b.y)];
        let v = c.violations();
        assert!(v.iter().any(|s| s.contains("overlap")), "{v:?}");
        assert!(v.iter().any(|s| s.contains("passes node")), "{v:?}");
    }

    #[test]
    fn dot_names_every_op_edge() {
        let space = SearchSpace::new(SpaceName::Nb201);
        let d = dot(&space, "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|").unwrap();
        assert!(d.starts_with("digraph genotype {"));
        assert_eq!(d.matches(" -> ").count(), 5, "{d}");
        assert!(d.contains("label=\"avg_pool_3x3\""));
    }
}
