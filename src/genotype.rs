//! Genotypes: the discrete architectures that selection produces.
//!
//! * [`DartsGenotype`]: the reference's `Genotype(normal=[...], normal_concat=..., reduce=[...],
//!   reduce_concat=...)` text (spec §4.2), parsed and printed exactly as Python's `str()` prints the
//!   namedtuple.
//! * [`Nb201Arch`]: a NAS-Bench-201 cell, `|op~0|+|op~0|op~1|+|op~0|op~1|op~2|` (spec §4.3).
//!
//! Both derive from mixing weights by the magnitude rule of spec §3.6 ([`derive_darts`],
//! [`derive_nb201`]).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::space::{
    CellType, DARTS_STEPS, Family, NB201_OPS, OpKind, SearchSpace, darts_node_first_edge,
};

/// The output nodes of a DARTS cell, as printed: `range(a, b)` or a list `[2, 3, 4, 5]`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Concat {
    /// Node indices concatenated into the cell output (2 = first intermediate node).
    pub nodes: Vec<usize>,
    /// Printed as `range(first, last + 1)` (darts-pt) rather than a list (quark0's DARTS_V2).
    pub as_range: bool,
}

impl Concat {
    /// `range(2, 6)`, the concat of every searched DARTS cell.
    pub fn default_range() -> Self {
        Concat {
            nodes: (2..2 + DARTS_STEPS).collect(),
            as_range: true,
        }
    }
}

impl fmt::Display for Concat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.as_range {
            let start = self.nodes.first().copied().unwrap_or(0);
            write!(f, "range({}, {})", start, start + self.nodes.len())
        } else {
            let items: Vec<String> = self.nodes.iter().map(|n| n.to_string()).collect();
            write!(f, "[{}]", items.join(", "))
        }
    }
}

/// A DARTS cell pair: two `(op, input)` genes per intermediate node, in node order.
/// Input 0 = s0 (cell k-2), 1 = s1 (cell k-1), 2.. = earlier intermediate nodes.
pub type Genes = Vec<(OpKind, usize)>;

/// A DARTS genotype (spec §4.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DartsGenotype {
    /// Normal-cell genes.
    pub normal: Genes,
    /// Normal-cell output nodes.
    pub normal_concat: Concat,
    /// Reduction-cell genes.
    pub reduce: Genes,
    /// Reduction-cell output nodes.
    pub reduce_concat: Concat,
}

impl DartsGenotype {
    /// Check the structural rules: two genes per node, inputs that exist, concat nodes in range.
    pub fn validate(&self) -> Result<()> {
        for (cell, genes, concat) in [
            ("normal", &self.normal, &self.normal_concat),
            ("reduce", &self.reduce, &self.reduce_concat),
        ] {
            if genes.is_empty() || genes.len() % 2 != 0 {
                return Err(Error::Genotype(format!(
                    "`{cell}` has {} genes; expected two (op, input) pairs per intermediate node",
                    genes.len()
                )));
            }
            let steps = genes.len() / 2;
            for (i, (op, input)) in genes.iter().enumerate() {
                let node = i / 2;
                if *input >= node + 2 {
                    return Err(Error::Genotype(format!(
                        "`{cell}` gene {i} ('{op}', {input}): node {node} can only take inputs 0..={}",
                        node + 1
                    )));
                }
            }
            if concat.nodes.is_empty() || concat.nodes.iter().any(|&n| n < 2 || n >= steps + 2) {
                return Err(Error::Genotype(format!(
                    "`{cell}_concat` {concat} must name intermediate nodes 2..{}",
                    steps + 1
                )));
            }
        }
        Ok(())
    }
}

fn write_genes(f: &mut fmt::Formatter<'_>, genes: &Genes) -> fmt::Result {
    f.write_str("[")?;
    for (i, (op, input)) in genes.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        write!(f, "('{}', {})", op.name(), input)?;
    }
    f.write_str("]")
}

impl fmt::Display for DartsGenotype {
    /// Prints exactly as Python's `str(Genotype(...))`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Genotype(normal=")?;
        write_genes(f, &self.normal)?;
        write!(f, ", normal_concat={}, reduce=", self.normal_concat)?;
        write_genes(f, &self.reduce)?;
        write!(f, ", reduce_concat={})", self.reduce_concat)
    }
}

/// A small cursor-based parser over the genotype text, with positions for error messages.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str, what: &'static str) -> Self {
        Cursor { text, pos: 0, what }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_ws(&mut self) {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
    }

    fn error(&self, expected: impl Into<String>) -> Error {
        let rest = self.rest();
        let found = if rest.is_empty() {
            "end of text".to_string()
        } else {
            let snippet: String = rest.chars().take(16).collect();
            format!("`{snippet}`")
        };
        Error::Parse {
            what: self.what,
            position: self.text[..self.pos].chars().count(),
            expected: expected.into(),
            found,
        }
    }

    fn eat(&mut self, token: &str) -> bool {
        self.skip_ws();
        if self.rest().starts_with(token) {
            self.pos += token.len();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, token: &str) -> Result<()> {
        if self.eat(token) {
            Ok(())
        } else {
            Err(self.error(format!("`{token}`")))
        }
    }

    fn ident(&mut self) -> Result<&'a str> {
        self.skip_ws();
        let len = self
            .rest()
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
            .map_or(self.rest().len(), |(i, _)| i);
        if len == 0 {
            return Err(self.error("a name"));
        }
        let s = &self.rest()[..len];
        self.pos += len;
        Ok(s)
    }

    fn number(&mut self) -> Result<usize> {
        self.skip_ws();
        let len = self
            .rest()
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .count();
        if len == 0 {
            return Err(self.error("a non-negative integer"));
        }
        let value = self.rest()[..len]
            .parse()
            .map_err(|_| self.error("a small integer"))?;
        self.pos += len;
        Ok(value)
    }

    fn quoted(&mut self) -> Result<(usize, &'a str)> {
        self.skip_ws();
        let start = self.pos;
        let quote = match self.rest().chars().next() {
            Some(q @ ('\'' | '"')) => q,
            _ => return Err(self.error("a quoted op name such as 'sep_conv_3x3'")),
        };
        self.pos += 1;
        let Some(end) = self.rest().find(quote) else {
            self.pos = start;
            return Err(self.error("a closing quote"));
        };
        let s = &self.rest()[..end];
        self.pos += end + 1;
        Ok((start, s))
    }

    fn op(&mut self) -> Result<OpKind> {
        let (start, name) = self.quoted()?;
        name.parse::<OpKind>().map_err(|e| {
            let mut c = Cursor::new(self.text, self.what);
            c.pos = start;
            c.error(e.to_string().replace("unknown op", "a known op instead of"))
        })
    }

    fn genes(&mut self) -> Result<Genes> {
        self.expect("[")?;
        let mut genes = Vec::new();
        if self.eat("]") {
            return Ok(genes);
        }
        loop {
            self.expect("(")?;
            let op = self.op()?;
            self.expect(",")?;
            let input = self.number()?;
            self.eat(",");
            self.expect(")")?;
            genes.push((op, input));
            if self.eat("]") {
                return Ok(genes);
            }
            self.expect(",")?;
            if self.eat("]") {
                return Ok(genes);
            }
        }
    }

    fn concat(&mut self) -> Result<Concat> {
        self.skip_ws();
        if self.eat("range") {
            self.expect("(")?;
            let a = self.number()?;
            self.expect(",")?;
            let b = self.number()?;
            self.expect(")")?;
            if b <= a {
                return Err(self.error(format!("range(a, b) with b > a, got range({a}, {b})")));
            }
            Ok(Concat {
                nodes: (a..b).collect(),
                as_range: true,
            })
        } else if self.eat("[") {
            let mut nodes = Vec::new();
            if !self.eat("]") {
                loop {
                    nodes.push(self.number()?);
                    if self.eat("]") {
                        break;
                    }
                    self.expect(",")?;
                    if self.eat("]") {
                        break;
                    }
                }
            }
            Ok(Concat {
                nodes,
                as_range: false,
            })
        } else {
            Err(self.error("`range(2, 6)` or a list such as `[2, 3, 4, 5]`"))
        }
    }
}

impl FromStr for DartsGenotype {
    type Err = Error;

    /// Parses the reference's `Genotype(...)` text. Keyword arguments may come in any order;
    /// all four are required. Quotes may be single or double; concat may be `range(a, b)` or a list.
    fn from_str(text: &str) -> Result<Self> {
        let mut c = Cursor::new(text, "DARTS genotype");
        c.expect("Genotype")?;
        c.expect("(")?;
        let (mut normal, mut normal_concat, mut reduce, mut reduce_concat) =
            (None, None, None, None);
        loop {
            c.skip_ws();
            let key_pos = c.pos;
            let key = c.ident()?;
            c.expect("=")?;
            let slot_taken = match key {
                "normal" => normal.replace(c.genes()?).is_some(),
                "reduce" => reduce.replace(c.genes()?).is_some(),
                "normal_concat" => normal_concat.replace(c.concat()?).is_some(),
                "reduce_concat" => reduce_concat.replace(c.concat()?).is_some(),
                _ => {
                    c.pos = key_pos;
                    return Err(
                        c.error("one of `normal`, `normal_concat`, `reduce`, `reduce_concat`")
                    );
                }
            };
            if slot_taken {
                c.pos = key_pos;
                return Err(c.error(format!("each field once, but `{key}` is repeated")));
            }
            if c.eat(")") {
                break;
            }
            c.expect(",")?;
            if c.eat(")") {
                break;
            }
        }
        c.skip_ws();
        if !c.rest().is_empty() {
            return Err(c.error("end of text after `)`"));
        }
        let missing = |name: &str| Error::Genotype(format!("missing field `{name}`"));
        let g = DartsGenotype {
            normal: normal.ok_or_else(|| missing("normal"))?,
            normal_concat: normal_concat.ok_or_else(|| missing("normal_concat"))?,
            reduce: reduce.ok_or_else(|| missing("reduce"))?,
            reduce_concat: reduce_concat.ok_or_else(|| missing("reduce_concat"))?,
        };
        g.validate()?;
        Ok(g)
    }
}

/// A NAS-Bench-201 cell: the op on each of the 6 edges in α-row order
/// (`1<-0, 2<-0, 2<-1, 3<-0, 3<-1, 3<-2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Nb201Arch {
    /// Ops per edge, α-row order.
    pub edges: [OpKind; 6],
}

impl Nb201Arch {
    /// Index of the cell in base 5 over the NB201 op order (edge 0 most significant). This is a
    /// compact key for lookup tables; it is not NAS-Bench-201's own index.
    pub fn base5_index(&self) -> usize {
        self.edges.iter().fold(0, |acc, op| {
            acc * 5
                + NB201_OPS
                    .iter()
                    .position(|o| o == op)
                    .expect("validated NB201 op")
        })
    }
}

impl fmt::Display for Nb201Arch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut e = 0;
        for node in 1..4 {
            if node > 1 {
                f.write_str("+")?;
            }
            f.write_str("|")?;
            for from in 0..node {
                write!(f, "{}~{}|", self.edges[e].name(), from)?;
                e += 1;
            }
        }
        Ok(())
    }
}

impl FromStr for Nb201Arch {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let what = "NAS-Bench-201 architecture string";
        let err = |position: usize, expected: String, found: &str| Error::Parse {
            what,
            position,
            expected,
            found: if found.is_empty() {
                "end of text".into()
            } else {
                format!("`{found}`")
            },
        };
        let t = text.trim();
        let offset = text.len() - text.trim_start().len();
        let groups: Vec<&str> = t.split('+').collect();
        if groups.len() != 3 {
            return Err(err(
                offset,
                "three node groups separated by `+`, like |op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
                    .into(),
                t,
            ));
        }
        let mut edges = Vec::with_capacity(6);
        let mut pos = offset;
        for (g, group) in groups.iter().enumerate() {
            let node = g + 1;
            if !(group.starts_with('|') && group.ends_with('|') && group.len() >= 2) {
                return Err(err(pos, "a node group enclosed in `|`".into(), group));
            }
            let inner = &group[1..group.len() - 1];
            let items: Vec<&str> = inner.split('|').collect();
            if items.len() != node {
                return Err(err(
                    pos,
                    format!("{node} input(s) `op~j` for node {node}"),
                    group,
                ));
            }
            let mut ipos = pos + 1;
            for (j, item) in items.iter().enumerate() {
                let Some((name, from)) = item.split_once('~') else {
                    return Err(err(ipos, format!("`op~{j}`"), item));
                };
                let op: OpKind = name
                    .parse()
                    .ok()
                    .filter(|op| NB201_OPS.contains(op))
                    .ok_or_else(|| {
                        err(
                            ipos,
                            "one of none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3"
                                .into(),
                            name,
                        )
                    })?;
                if from != j.to_string() {
                    return Err(err(ipos + name.len() + 1, format!("input index {j}"), from));
                }
                edges.push(op);
                ipos += item.len() + 1;
            }
            pos += group.len() + 1;
        }
        Ok(Nb201Arch {
            edges: edges.try_into().expect("3 groups of 1, 2, 3 edges"),
        })
    }
}

/// Magnitude derivation of a DARTS-like genotype from mixing weights (spec §3.6).
///
/// `weights[c]` is the `[edges][ops]` matrix of cell type `c` (normal, reduce), usually the
/// effective weights (softmax(α) with PT decisions overwritten). Per intermediate node the two
/// input edges with the largest non-`none` weight are kept (stable sort, so ties keep the lower
/// edge), and each kept edge takes its strongest non-`none` op (ties to the lower op index).
/// Genes are listed strongest edge first, as the reference does.
pub fn derive_darts(
    space: &SearchSpace,
    normal: &[Vec<f32>],
    reduce: &[Vec<f32>],
) -> DartsGenotype {
    derive_darts_with(space, normal, reduce, false)
}

/// [`derive_darts`] with a choice for `none`: `keep_none = false` is the reference (spec §3.6:
/// `none` never ranks an edge nor wins its argmax, so an edge on which PT kept `none` turns into
/// its first other op); `keep_none = true` treats `none` like any op, so such an edge appears as
/// `('none', j)` (a cell input that contributes nothing).
pub fn derive_darts_with(
    space: &SearchSpace,
    normal: &[Vec<f32>],
    reduce: &[Vec<f32>],
    keep_none: bool,
) -> DartsGenotype {
    assert_eq!(
        space.family,
        Family::Darts,
        "derive_darts needs a DARTS-like space"
    );
    let parse = |cell: CellType, w: &[Vec<f32>]| -> Genes {
        let edges = space.edges(cell);
        let mut genes = Vec::new();
        for node in 0..DARTS_STEPS {
            let start = darts_node_first_edge(node);
            let strength = |e: usize| -> f32 {
                edges[e]
                    .ops
                    .iter()
                    .zip(&w[e])
                    .filter(|(op, _)| keep_none || **op != OpKind::None)
                    .map(|(_, &v)| v)
                    .fold(f32::NEG_INFINITY, f32::max)
            };
            let mut inputs: Vec<usize> = (0..node + 2).collect();
            // Stable sort on descending strength: ties keep the lower input first.
            inputs.sort_by(|&a, &b| {
                strength(start + b)
                    .partial_cmp(&strength(start + a))
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
            for &j in inputs.iter().take(2) {
                let e = start + j;
                let mut best: Option<usize> = None;
                for (k, op) in edges[e].ops.iter().enumerate() {
                    if (keep_none || *op != OpKind::None) && best.is_none_or(|b| w[e][k] > w[e][b])
                    {
                        best = Some(k);
                    }
                }
                let k = best.expect("every DARTS edge has a non-`none` op");
                genes.push((edges[e].ops[k], j));
            }
        }
        genes
    };
    DartsGenotype {
        normal: parse(CellType::Normal, normal),
        normal_concat: Concat::default_range(),
        reduce: parse(CellType::Reduce, reduce),
        reduce_concat: Concat::default_range(),
    }
}

/// Magnitude derivation of a NAS-Bench-201 cell: per edge the argmax op over all five ops,
/// `none` included (ties to the lower op index), as darts-pt's `genotype()` does (spec §4.3).
pub fn derive_nb201(weights: &[Vec<f32>]) -> Nb201Arch {
    let mut edges = [OpKind::None; 6];
    for (e, row) in weights.iter().enumerate().take(6) {
        let mut best = 0;
        for k in 1..row.len() {
            if row[k] > row[best] {
                best = k;
            }
        }
        edges[e] = NB201_OPS[best];
    }
    Nb201Arch { edges }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::space::SpaceName;

    const V2: &str = "Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], normal_concat=[2, 3, 4, 5], reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), ('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], reduce_concat=[2, 3, 4, 5])";

    #[test]
    fn darts_round_trip_list_and_range() {
        let g: DartsGenotype = V2.parse().unwrap();
        assert_eq!(g.to_string(), V2);
        assert!(!g.normal_concat.as_range);
        let r = V2.replace("[2, 3, 4, 5]", "range(2, 6)");
        let g2: DartsGenotype = r.parse().unwrap();
        assert_eq!(g2.to_string(), r);
        assert_eq!(g2.normal_concat.nodes, vec![2, 3, 4, 5]);
    }

    #[test]
    fn darts_accepts_double_quotes_and_whitespace() {
        let t = V2.replace('\'', "\"").replace(", ", " ,  ");
        let g: DartsGenotype = t.parse().unwrap();
        assert_eq!(g.to_string(), V2);
    }

    #[test]
    fn darts_errors_say_where() {
        let bad = V2.replace("'sep_conv_3x3', 1)", "'sep_conv_9x9', 1)");
        let e = bad.parse::<DartsGenotype>().unwrap_err().to_string();
        assert!(
            e.contains("character 39") && e.contains("sep_conv_9x9"),
            "{e}"
        );
        let e = "Genotype(normal=[('skip_connect', 0)"
            .parse::<DartsGenotype>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("end of text"), "{e}");
        let e = V2
            .replace("normal_concat", "norm_concat")
            .parse::<DartsGenotype>()
            .unwrap_err()
            .to_string();
        assert!(e.contains("norm_concat"), "{e}");
        let e = V2
            .replace("('dil_conv_3x3', 2)", "('dil_conv_3x3', 7)")
            .parse::<DartsGenotype>()
            .unwrap_err();
        assert!(e.to_string().contains("inputs 0..=4"), "{e}");
        assert!("".parse::<DartsGenotype>().is_err());
        assert!(
            "Genotype(normal=[], reduce=[])"
                .parse::<DartsGenotype>()
                .is_err()
        );
    }

    #[test]
    fn nb201_round_trip_and_errors() {
        let s = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|";
        let a: Nb201Arch = s.parse().unwrap();
        assert_eq!(a.to_string(), s);
        assert_eq!(a.edges[2], OpKind::None);
        for bad in [
            "",
            "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|",
            "|sep_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|",
            "|nor_conv_3x3~1|+|nor_conv_1x1~0|none~1|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|",
            "|nor_conv_3x3~0|+|nor_conv_1x1~0|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|",
            "nor_conv_3x3~0+|nor_conv_1x1~0|none~1|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|",
        ] {
            let e = bad.parse::<Nb201Arch>().unwrap_err();
            assert!(
                e.to_string().contains("malformed NAS-Bench-201"),
                "{bad}: {e}"
            );
        }
        let e = "|nor_conv_3x3~0|+|nor_conv_1x1~0|none~1|+|none~0|nor_conv_1x1~1|nor_conv_5x5~2|"
            .parse::<Nb201Arch>()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("nor_conv_5x5") && e.contains("character 64"),
            "{e}"
        );
    }

    #[test]
    fn magnitude_darts_top2_and_ties() {
        let space = SearchSpace::new(SpaceName::Darts8);
        // Uniform weights everywhere except `none` (index 0) large: `none` must be ignored, ties
        // keep the lowest edge and op index.
        let mut w = vec![vec![0.1f32; 8]; 14];
        for row in &mut w {
            row[0] = 0.9;
        }
        w[3][5] = 0.5; // node 1, input 1 strongest, sep_conv_5x5
        let g = derive_darts(&space, &w, &w);
        assert_eq!(g.normal[0], (OpKind::MaxPool3x3, 0));
        assert_eq!(g.normal[1], (OpKind::MaxPool3x3, 1));
        assert_eq!(g.normal[2], (OpKind::SepConv5x5, 1));
        assert_eq!(g.normal[3], (OpKind::MaxPool3x3, 0));
        g.validate().unwrap();
    }

    #[test]
    fn magnitude_nb201_keeps_none() {
        let mut w = vec![vec![0.2f32; 5]; 6];
        w[0][0] = 0.3;
        w[1][3] = 0.4;
        let a = derive_nb201(&w);
        assert_eq!(a.edges[0], OpKind::None);
        assert_eq!(a.edges[1], OpKind::NorConv3x3);
        assert_eq!(a.edges[2], OpKind::None);
        assert_eq!(a.base5_index(), 3 * 5usize.pow(4));
    }

    #[test]
    fn none_kept_by_pt_reference_rule_and_keep_rule() {
        // S3 edges: none, skip_connect, sep_conv_3x3.
        let space = SearchSpace::new(SpaceName::S3);
        let mut w = vec![vec![0.0f32; 3]; 14];
        w[0][0] = 1.0; // node 0 <- s0: PT kept `none`
        w[1][2] = 1.0; // node 0 <- s1: sep_conv_3x3
        for e in 2..14 {
            w[e][1] = 1.0;
        }
        let reference = derive_darts_with(&space, &w, &w, false);
        assert_eq!(
            &reference.normal[..2],
            &[(OpKind::SepConv3x3, 1), (OpKind::SkipConnect, 0)]
        );
        let keep = derive_darts_with(&space, &w, &w, true);
        assert_eq!(
            &keep.normal[..2],
            &[(OpKind::None, 0), (OpKind::SepConv3x3, 1)]
        );
        let text = keep.to_string();
        assert_eq!(text.parse::<DartsGenotype>().unwrap(), keep);
    }
}
