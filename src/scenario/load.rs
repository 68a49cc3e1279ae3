//! Reading a scenario: TOML text → table → `--set` overrides → typed
//! [`Scenario`]. Errors name the file, line and dotted key (or the `--set`
//! override that set the key), and suggest the closest valid key when a key
//! is unknown, or the closest valid name when a value is not one of a key's
//! names (`scenario::kinds`).

use super::Scenario;
use crate::error::{Error, Result};
use crate::units::did_you_mean;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};
use toml::{Table, Value};

/// Keys whose values are file paths; when they come from a scenario file,
/// relative paths are taken relative to that file's folder.
const PATH_KEYS: &[&str] = &["catalog", "workload.trace", "hardware.profile_dir"];

/// Loads a scenario from `path` (or the built-in default when `None`) and
/// applies `--set key=value` overrides, in order. Paths given with `--set`
/// are relative to the current directory.
pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Scenario> {
    load_as(path, overrides)
}

/// [`load`] for any file schema read the same way (`fleetsim train`'s
/// training scenario): file errors with lines, `--set` overrides, paths
/// relative to the file. Without a file, the schema's default.
pub(crate) fn load_as<T: DeserializeOwned>(path: Option<&Path>, overrides: &[String]) -> Result<T> {
    let (table, origin) = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
            let origin = p.display().to_string();
            // Deserialize the text once on its own so schema errors can point at a line.
            let table = parse_text_as::<T>(&text, &origin)?;
            let mut table = table;
            let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
            resolve_paths(&mut table, &base);
            (table, origin)
        }
        None => {
            let mut t = Table::new();
            t.insert("name".into(), toml::Value::String("default".into()));
            (t, "built-in default scenario".to_string())
        }
    };
    with_overrides_as(table, &origin, overrides)
}

/// Loads a training scenario (`fleetsim train`) as [`load`] loads a serving one.
pub fn load_training(
    path: Option<&Path>,
    overrides: &[String],
) -> Result<crate::train::config::TrainScenario> {
    load_as(path, overrides)
}

/// [`load_training`] for a table already parsed from `origin` in folder
/// `dir` (the scenario part of a training search space).
pub(crate) fn load_training_table(
    mut table: Table,
    origin: &str,
    dir: &Path,
    overrides: &[String],
) -> Result<crate::train::config::TrainScenario> {
    resolve_paths(&mut table, dir);
    with_overrides_as(table, origin, overrides)
}

/// Like [`load`] for a scenario table already parsed (and schema-checked by
/// [`parse_text`]) from `origin`, a file in folder `dir`: relative paths are
/// made relative to `dir`, then the overrides are applied. `fleetsim search`
/// uses it for the scenario part of a search-space file.
pub(crate) fn load_table(
    mut table: Table,
    origin: &str,
    dir: &Path,
    overrides: &[String],
) -> Result<Scenario> {
    resolve_paths(&mut table, dir);
    with_overrides(table, origin, overrides)
}

fn with_overrides(table: Table, origin: &str, overrides: &[String]) -> Result<Scenario> {
    with_overrides_as(table, origin, overrides)
}

fn with_overrides_as<T: DeserializeOwned>(mut table: Table, origin: &str, overrides: &[String]) -> Result<T> {
    for o in overrides {
        apply_override(&mut table, o)?;
    }
    from_table(table, origin, overrides, None)
}

/// TOML text as a table, a syntax error naming `origin` and the line.
pub(crate) fn parse_toml(text: &str, origin: &str) -> Result<Table> {
    toml::from_str(text).map_err(|e| {
        Error::config(
            origin,
            format!(
                "{}{}",
                location(text, e.span()),
                crate::error::in_user_words(e.message())
            ),
        )
    })
}

/// Parses scenario text (no overrides); `origin` names it in errors.
pub(crate) fn parse_text(text: &str, origin: &str) -> Result<Table> {
    parse_text_as::<Scenario>(text, origin)
}

/// [`parse_text`] checked against schema `T`.
fn parse_text_as<T: DeserializeOwned>(text: &str, origin: &str) -> Result<Table> {
    let table = parse_toml(text, origin)?;
    // Check the schema against the text so errors carry a line number.
    from_table::<T>(table.clone(), origin, &[], Some(text))?;
    Ok(table)
}

/// Deserializes a table (from `origin` with `overrides` applied, or parsed
/// from `text`) into a scenario, turning serde's messages into ours:
/// "line 3: key `cluster.mode`: unknown value ..." for a file; for a value
/// an override set, the override itself is the context.
fn from_table<T: DeserializeOwned>(
    table: Table,
    origin: &str,
    overrides: &[String],
    text: Option<&str>,
) -> Result<T> {
    let result = match text {
        Some(t) => toml::from_str::<T>(t),
        None => Value::Table(table.clone()).try_into::<T>(),
    };
    result.map_err(|e| {
        let explained = explain(e.message(), &table);
        // An unknown key's message names it already.
        let key = match (text, explained.starts_with("unknown key")) {
            (_, true) => None,
            (Some(t), false) => e.span().and_then(|s| key_at(t, s.start)),
            (None, false) => failing_key::<T>(&table),
        };
        let line = text.map(|t| location(t, e.span())).unwrap_or_default();
        let at = key.as_ref().map(|k| format!("key `{k}`: ")).unwrap_or_default();
        let context = match set_by(key.as_deref(), overrides) {
            Some(set) => set,
            None if overrides.is_empty() => origin.to_string(),
            None => format!("{origin} with --set overrides"),
        };
        Error::config(context, format!("{line}{at}{explained}"))
    })
}

/// "--set k=v": the last of `overrides` that set `key`, which is then the
/// error's context (the user typed the bad value there, not in the file).
pub(crate) fn set_by(key: Option<&str>, overrides: &[String]) -> Option<String> {
    let key = key?;
    let o = overrides
        .iter()
        .rev()
        .find(|o| o.split_once('=').is_some_and(|(k, _)| k.trim() == key))?;
    Some(format!("--set {o}"))
}

/// For a table with no source text (built from overrides): the dotted key
/// whose value fails to deserialize as `T`, found by rendering the table as
/// TOML and reading the key at the error's position.
pub(crate) fn failing_key<T: DeserializeOwned>(table: &Table) -> Option<String> {
    let text = toml::to_string(table).ok()?;
    let span = toml::from_str::<T>(&text).err()?.span()?;
    key_at(&text, span.start)
}

/// The dotted key whose value is at byte `pos` of the TOML `text` (where a
/// deserialization error's span starts), however the key was written
/// (`[section]` + `key`, a dotted key, an inline table).
pub(crate) fn key_at(text: &str, pos: usize) -> Option<String> {
    fn walk(table: &DeTable<'_>, pos: usize, path: &mut Vec<String>) -> bool {
        for (k, v) in table.iter() {
            path.push(k.get_ref().to_string());
            let found = match v.get_ref() {
                // A table's own span may cover only its header: look inside.
                DeValue::Table(t) => walk(t, pos, path),
                _ => v.span().contains(&pos),
            };
            if found {
                return true;
            }
            path.pop();
        }
        false
    }
    let doc = DeTable::parse(text).ok()?;
    let mut path = Vec::new();
    walk(doc.get_ref(), pos, &mut path).then(|| path.join("."))
}

/// "line 3: " for a byte span in `text`.
pub(crate) fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    match span {
        Some(s) => {
            let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
            format!("line {line}: ")
        }
        None => String::new(),
    }
}

/// Rewrites serde's "unknown field `x`, expected one of `a`, `b`" into a
/// message with the dotted key and a "did you mean" hint.
fn explain(message: &str, table: &Table) -> String {
    let message = message.trim();
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return crate::error::in_user_words(message);
    };
    let Some(end) = rest.find('`') else {
        return message.to_string();
    };
    let name = &rest[..end];
    let expected: Vec<&str> = rest[end + 1..].split('`').skip(1).step_by(2).collect();
    let dotted = find_key_path(table, name).unwrap_or_else(|| name.to_string());
    format!(
        "unknown key `{dotted}`{}; valid keys here are: {}",
        did_you_mean(name, expected.iter().copied()),
        expected.join(", ")
    )
}

/// The dotted path of the first key called `name` in `table` (depth first,
/// in key order).
fn find_key_path(table: &Table, name: &str) -> Option<String> {
    for (k, v) in table {
        if k == name {
            return Some(k.clone());
        }
        if let Value::Table(t) = v
            && let Some(p) = find_key_path(t, name)
        {
            return Some(format!("{k}.{p}"));
        }
    }
    None
}

/// Makes relative path values in a scenario file relative to its folder.
fn resolve_paths(table: &mut Table, base: &Path) {
    for key in PATH_KEYS {
        if let Some(Value::String(s)) = lookup_mut(table, key) {
            let p = PathBuf::from(&*s);
            if p.is_relative() && !base.as_os_str().is_empty() {
                *s = base.join(p).display().to_string();
            }
        }
    }
}

fn lookup_mut<'a>(table: &'a mut Table, dotted: &str) -> Option<&'a mut Value> {
    let mut parts = dotted.split('.').peekable();
    let mut cur = table;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            return cur.get_mut(part);
        }
        cur = cur.get_mut(part)?.as_table_mut()?;
    }
    None
}

/// Applies one `key=value` override. The value is read as a TOML value
/// (`4`, `0.9`, `true`, `"x"`, `[1, 2]`); anything that is not valid TOML
/// is taken as a string, so `--set scheduler.kind=sarathi` works unquoted.
pub(crate) fn apply_override(table: &mut Table, assignment: &str) -> Result<()> {
    let context = format!("--set {assignment}");
    let Some((key, raw)) = assignment.split_once('=') else {
        return Err(Error::config(
            context,
            "expected key=value with a dotted key, e.g. --set cluster.replicas=4",
        ));
    };
    let key = key.trim();
    let raw = raw.trim();
    if key.is_empty() || key.split('.').any(str::is_empty) {
        return Err(Error::config(
            context,
            format!("`{key}` is not a dotted key like `scheduler.kind`"),
        ));
    }
    let value = match toml::from_str::<Table>(&format!("v = {raw}")) {
        Ok(mut t) => t.remove("v").unwrap_or(Value::String(raw.to_string())),
        Err(_) => Value::String(raw.to_string()),
    };
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().expect("non-empty key");
    let mut cur = &mut *table;
    let mut walked = String::new();
    for part in parts {
        if !walked.is_empty() {
            walked.push('.');
        }
        walked.push_str(part);
        let entry = cur
            .entry(part.to_string())
            .or_insert_with(|| Value::Table(Table::new()));
        cur = match entry {
            Value::Table(t) => t,
            other => {
                return Err(Error::config(
                    context,
                    format!(
                        "`{walked}` is a {} value, not a section, so it has no key `{last}`",
                        other.type_str()
                    ),
                ));
            }
        };
    }
    cur.insert(last.to_string(), value);
    Ok(())
}
