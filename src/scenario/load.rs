//! Reading a scenario: TOML text → table → `--set` overrides → typed
//! [`Scenario`]. Errors name the file, line and dotted key, and suggest the
//! closest valid key when a key is unknown.

use super::Scenario;
use crate::error::{Error, Result};
use crate::units::did_you_mean;
use std::path::{Path, PathBuf};
use toml::{Table, Value};

/// Keys whose values are file paths; when they come from a scenario file,
/// relative paths are taken relative to that file's folder.
const PATH_KEYS: &[&str] = &["catalog", "workload.trace", "hardware.profile_dir"];

/// Loads a scenario from `path` (or the built-in default when `None`) and
/// applies `--set key=value` overrides, in order. Paths given with `--set`
/// are relative to the current directory.
pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Scenario> {
    let (table, origin) = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| Error::io(p, e))?;
            let origin = p.display().to_string();
            // Deserialize the text once on its own so schema errors can point at a line.
            let table = parse_text(&text, &origin)?;
            let mut table = table;
            let base = p.parent().map(Path::to_path_buf).unwrap_or_default();
            resolve_paths(&mut table, &base);
            (table, origin)
        }
        None => (Table::new(), "built-in default scenario".to_string()),
    };
    with_overrides(table, &origin, overrides)
}

/// Like [`load`] for a scenario table already parsed (and schema-checked by
/// [`parse_text`]) from `origin`, a file in folder `dir`: relative paths are
/// made relative to `dir`, then the overrides are applied. `fleetsim search`
/// uses it for the scenario part of a search-space file.
pub fn load_table(mut table: Table, origin: &str, dir: &Path, overrides: &[String]) -> Result<Scenario> {
    resolve_paths(&mut table, dir);
    with_overrides(table, origin, overrides)
}

fn with_overrides(mut table: Table, origin: &str, overrides: &[String]) -> Result<Scenario> {
    for o in overrides {
        apply_override(&mut table, o)?;
    }
    let context = if overrides.is_empty() {
        origin.to_string()
    } else {
        format!("{origin} with --set overrides")
    };
    from_table(table, &context, None)
}

/// Parses scenario text (no overrides); `origin` names it in errors.
pub fn parse_text(text: &str, origin: &str) -> Result<Table> {
    let table: Table = toml::from_str(text).map_err(|e| {
        Error::config(
            origin,
            format!("{}{}", location(text, e.span()), e.message().trim()),
        )
    })?;
    // Check the schema against the text so errors carry a line number.
    from_table(table.clone(), origin, Some(text))?;
    Ok(table)
}

/// Deserializes a table into a scenario, turning serde's messages into ours.
fn from_table(table: Table, context: &str, text: Option<&str>) -> Result<Scenario> {
    let result = match text {
        Some(t) => toml::from_str::<Scenario>(t),
        None => Value::Table(table.clone()).try_into::<Scenario>(),
    };
    result.map_err(|e| {
        let loc = match text {
            Some(t) => location(t, e.span()),
            None => key_at_error(&table)
                .map(|k| format!("key `{k}`: "))
                .unwrap_or_default(),
        };
        Error::config(context, format!("{loc}{}", explain(e.message(), &table)))
    })
}

/// For a table built from overrides (no source text): the dotted key whose
/// value fails to deserialize, found by rendering the table as TOML and
/// reading the key at the error's position.
fn key_at_error(table: &Table) -> Option<String> {
    let text = toml::to_string(table).ok()?;
    let span = toml::from_str::<Scenario>(&text).err()?.span()?;
    let before = &text[..span.start.min(text.len())];
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[line_start..]
        .find('\n')
        .map_or(text.len(), |i| line_start + i);
    let key = text[line_start..line_end].split('=').next()?.trim().to_string();
    let section = before[..line_start]
        .lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix('[').and_then(|l| l.strip_suffix(']')))
        .map(|s| s.trim().to_string());
    Some(match section {
        Some(sec) if !key.is_empty() && !key.starts_with('[') => format!("{sec}.{key}"),
        _ => key,
    })
}

/// "line 3: " for a byte span in `text`.
fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
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
        return message.to_string();
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
pub fn apply_override(table: &mut Table, assignment: &str) -> Result<()> {
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
