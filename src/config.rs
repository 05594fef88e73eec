//! Settings files a user writes (`--config FILE`): a TOML table, possibly partial, laid over the
//! settings a command would otherwise start from. Keys the settings do not have are errors (a
//! typo must not be ignored silently); a value of the wrong type names its key.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Read `path` as a TOML table. Errors name the file.
pub fn read_table(path: &Path) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_table(&text, path)
}

/// Parse `text` (read from `path`) as a TOML table.
pub fn parse_table(text: &str, path: &Path) -> Result<toml::Table> {
    text.parse::<toml::Table>().map_err(|e| Error::Config {
        field: path.display().to_string(),
        message: e.to_string(),
    })
}

/// `base` with every key of `file` (read from `path`) laid over it: tables merge key by key,
/// any other value replaces the base's. Errors ([`Error::Config`], naming the file): a key the
/// settings do not have, or a value they cannot take.
pub fn merge_over<T: Serialize + DeserializeOwned>(
    base: &T,
    file: &toml::Table,
    path: &Path,
) -> Result<T> {
    let bad = |message: String| Error::Config {
        field: path.display().to_string(),
        message,
    };
    let mut merged =
        toml::Table::try_from(base).map_err(|e| bad(format!("cannot lay the file over: {e}")))?;
    merge(&mut merged, file);
    let mut unknown = Vec::new();
    let value: T =
        serde_ignored::deserialize(toml::Value::Table(merged), |p| unknown.push(p.to_string()))
            .map_err(|e: toml::de::Error| bad(e.to_string()))?;
    if !unknown.is_empty() {
        return Err(bad(format!(
            "unknown key{} {}",
            if unknown.len() > 1 { "s" } else { "" },
            unknown
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(value)
}

fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Inner {
        a: f64,
        b: Option<usize>,
    }

    #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
    struct Outer {
        name: String,
        inner: Inner,
    }

    fn base() -> Outer {
        Outer {
            name: "x".into(),
            inner: Inner { a: 1.0, b: None },
        }
    }

    #[test]
    fn partial_file_overrides_only_its_keys() {
        let t = parse_table("[inner]\nb = 3\n", Path::new("c.toml")).unwrap();
        let m = merge_over(&base(), &t, Path::new("c.toml")).unwrap();
        assert_eq!(
            m,
            Outer {
                name: "x".into(),
                inner: Inner { a: 1.0, b: Some(3) }
            }
        );
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_errors_naming_the_file() {
        let t = parse_table("nme = \"y\"\n[inner]\nc = 1\n", Path::new("c.toml")).unwrap();
        let e = merge_over(&base(), &t, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("c.toml") && e.contains("`nme`") && e.contains("`inner.c`"),
            "{e}"
        );
        let t = parse_table("[inner]\na = \"fast\"\n", Path::new("c.toml")).unwrap();
        let e = merge_over(&base(), &t, Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("c.toml"), "{e}");
    }
}
