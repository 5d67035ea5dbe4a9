//! Reading a machine config from disk: `base` inheritance, `--set`
//! overrides, and errors that name the file and the key.
//!
//! A config may start with `base = "other.toml"` (relative to itself): the
//! base is read first and this file's keys are laid over it, tables merged
//! key by key, anything else replaced. Overrides (`tlb.l2.entries=2048`)
//! are laid over the result the same way; their values are TOML (`2048`,
//! `"2MiB"`, `["4KiB", "2MiB"]`), or plain strings when they do not parse.

use std::fmt;
use std::path::{Path, PathBuf};

use mmusim_translate::config::toml_error;
use mmusim_translate::Config;

/// A config that cannot be used, with where the problem is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigFileError {
    pub file: PathBuf,
    pub message: String,
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.message)
    }
}

impl std::error::Error for ConfigFileError {}

fn error(file: &Path, message: impl Into<String>) -> ConfigFileError {
    ConfigFileError { file: file.to_owned(), message: message.into() }
}

/// Most `base` links followed before giving up (a cycle, most likely).
const MAX_BASES: usize = 16;

/// Reads `path` (following `base` links) into one TOML table.
pub fn read_table(path: &Path) -> Result<toml::Table, ConfigFileError> {
    read_table_at(path, 0)
}

fn read_table_at(path: &Path, depth: usize) -> Result<toml::Table, ConfigFileError> {
    if depth > MAX_BASES {
        return Err(error(path, format!("more than {MAX_BASES} nested `base` files (a cycle?)")));
    }
    let text = std::fs::read_to_string(path).map_err(|e| error(path, format!("cannot read: {e}")))?;
    let mut table: toml::Table = text.parse().map_err(|e| error(path, toml_error(&text, &e).to_string()))?;
    let Some(base) = table.remove("base") else { return Ok(table) };
    let Some(base) = base.as_str() else {
        return Err(error(path, "base: expected the path of another config file"));
    };
    let base_path = path.parent().unwrap_or(Path::new("")).join(base);
    let mut merged = read_table_at(&base_path, depth + 1)?;
    merge(&mut merged, table);
    Ok(merged)
}

/// Lays `overlay` over `base`: tables merge key by key, other values replace.
pub fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(below)), toml::Value::Table(above)) => merge(below, above),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

/// Sets the dotted `key` to `value` (TOML, or a plain string) in `table`.
pub fn set(table: &mut toml::Table, key: &str, value: &str) -> Result<(), String> {
    set_value(table, key, parse_value(value))
}

/// Sets the dotted `key` to `value` in `table`.
///
/// Setting `mode` also drops the sections the new mode has no use for
/// (`host`, `nested`, `exits` and `balloon` for native, `nested` for
/// shadow), so one
/// virtualized preset can be run in every mode; a section set after that is
/// still refused, as it would be in a file.
pub fn set_value(table: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    if key == "mode" {
        let unused: &[&str] = match value.as_str() {
            Some("native") => &["host", "nested", "exits", "balloon"],
            Some("shadow") => &["nested"],
            _ => &[],
        };
        for section in unused {
            table.remove(*section);
        }
    }
    let parts: Vec<&str> = key.split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(format!("{key:?} is not a dotted config key"));
    }
    let (last, path) = parts.split_last().expect("non-empty");
    let mut node = table;
    for part in path {
        let entry = node.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        node = match entry {
            toml::Value::Table(inner) => inner,
            _ => return Err(format!("{key}: {part} is not a table")),
        };
    }
    node.insert(last.to_string(), value);
    Ok(())
}

/// A value as TOML reads it (`2048`, `true`, `"2MiB"`, `[1, 2]`), else the
/// text as a string, so `mode=nested` works unquoted.
pub fn parse_value(text: &str) -> toml::Value {
    match format!("value = {text}").parse::<toml::Table>() {
        Ok(mut table) => table.remove("value").expect("just parsed"),
        Err(_) => toml::Value::String(text.to_owned()),
    }
}

/// Deserializes a TOML value; an error names the dotted key it is about
/// (`tlb.l2.entires: unknown field ...`).
pub fn deserialize<T: serde::de::DeserializeOwned>(value: toml::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().message().trim_end().to_owned();
        if path == "." || path.is_empty() {
            message
        } else {
            format!("{path}: {message}")
        }
    })
}

/// Parses TOML text into `T`: a syntax error names its line, any other
/// error its dotted key.
pub fn parse_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let table: toml::Table = text.parse().map_err(|e| toml_error(text, &e).to_string())?;
    deserialize(toml::Value::Table(table))
}

/// Deserializes a merged table into a resolved config; errors name the
/// file and the dotted key.
pub fn config_from_table(table: toml::Table, file: &Path) -> Result<Config, ConfigFileError> {
    let config: Config = deserialize(toml::Value::Table(table)).map_err(|message| error(file, message))?;
    config.resolve().map_err(|e| error(file, e.to_string()))
}

/// Reads, overrides and resolves the config at `path`.
pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<Config, ConfigFileError> {
    let mut table = read_table(path)?;
    for (key, value) in overrides {
        set(&mut table, key, value).map_err(|e| error(path, format!("--set {e}")))?;
    }
    config_from_table(table, path)
}

/// Splits `key=value`.
pub fn parse_override(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.trim().is_empty() => Ok((key.trim().to_owned(), value.trim().to_owned())),
        _ => Err(format!("{text:?}: expected key=value, e.g. tlb.l2.entries=2048")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    const BASE: &str = "name = \"base\"\n[tlb.l2]\nlevel = 2\nserves = \"unified\"\nentries = 1536\nways = 12\n";

    #[test]
    fn base_files_are_overlaid_key_by_key() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "base.toml", BASE);
        let child = write(
            dir.path(),
            "child.toml",
            "base = \"base.toml\"\nname = \"child\"\n[tlb.l2]\nentries = 2048\nways = 16\n",
        );
        let config = load(&child, &[]).unwrap();
        assert_eq!(config.name, "child");
        assert_eq!(
            (config.tlb["l2"].entries, config.tlb["l2"].ways, config.tlb["l2"].level),
            (Some(2048), Some(16), 2)
        );
    }

    #[test]
    fn overrides_set_dotted_keys_with_toml_values() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "c.toml", BASE);
        let overrides = vec![
            ("tlb.l2.ways".to_owned(), "6".to_owned()),
            ("pages.size".to_owned(), "\"2MiB\"".to_owned()),
            ("name".to_owned(), "swept".to_owned()),
        ];
        let config = load(&path, &overrides).unwrap();
        assert_eq!(config.tlb["l2"].ways, Some(6));
        assert_eq!(config.pages.size.unwrap().0, 2 << 20);
        assert_eq!(config.name, "swept");
    }

    #[test]
    fn errors_name_the_file_and_the_dotted_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "bad.toml", "[tlb.l2]\nlevel = 2\nserves = \"unified\"\nentires = 1536\n");
        let err = load(&path, &[]).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}: tlb.l2.entires: unknown field `entires`", path.display())), "{err}");

        let path = write(
            dir.path(),
            "geometry.toml",
            "[tlb.l2]\nlevel = 2\nserves = \"unified\"\nentries = 1536\nways = 10\n",
        );
        let err = load(&path, &[]).unwrap_err().to_string();
        assert!(err.ends_with("tlb.l2: 1536 entries are not divisible into sets of 10 ways"), "{err}");

        let path = write(dir.path(), "syntax.toml", "name = \"x\"\n[tlb\n");
        let err = load(&path, &[]).unwrap_err().to_string();
        assert!(err.contains("syntax.toml: line 2"), "{err}");

        let path = write(dir.path(), "loop.toml", "base = \"loop.toml\"\n");
        assert!(load(&path, &[]).unwrap_err().to_string().contains("nested `base` files"));
    }

    #[test]
    fn override_syntax_is_checked() {
        assert_eq!(parse_override("a.b=3"), Ok(("a.b".to_owned(), "3".to_owned())));
        assert!(parse_override("nothing").is_err());
        assert!(parse_override("=3").is_err());
        let mut table = toml::Table::new();
        table.insert("name".into(), toml::Value::String("x".into()));
        assert!(set(&mut table, "name.inner", "1").is_err());
    }

    #[test]
    fn setting_the_mode_drops_the_sections_it_does_not_use() {
        let dir = tempfile::tempdir().unwrap();
        let nested = "mode = \"nested\"\n[host.pages]\nsize = \"2MiB\"\n[nested.tlb]\nentries = 8\n[exits]\ntimer_interval = 1000\n";
        let path = write(dir.path(), "nested.toml", nested);
        let native = load(&path, &[("mode".into(), "native".into())]).unwrap();
        assert!(native.host.is_none() && native.nested.is_none() && native.exits.is_none());
        // Balloons too go natively; a shadow run refuses them.
        let ballooned = format!("{nested}[memory]\nresident = \"1MiB\"\n[[balloon]]\nvm = 0\npages = 8\n");
        let ballooned = write(dir.path(), "ballooned.toml", &ballooned);
        assert!(load(&ballooned, &[("mode".into(), "native".into())]).unwrap().balloon.is_empty());
        let err = load(&ballooned, &[("mode".into(), "shadow".into())]).unwrap_err().to_string();
        assert!(err.contains("balloon: ballooning is modelled in nested mode only"), "{err}");
        let shadow = load(&path, &[("mode".into(), "shadow".into())]).unwrap();
        assert!(shadow.nested.is_none());
        assert_eq!(shadow.host.unwrap().pages.size.unwrap().0, 2 << 20);
        assert!(shadow.exits.is_some());
        // A section set after the mode is still checked against it.
        let err = load(&path, &[("mode".into(), "native".into()), ("host.pages.size".into(), "4KiB".into())]);
        assert!(err.unwrap_err().to_string().contains("host: applies to the nested and shadow modes only"));
    }
}
