//! The crate's error type. Every error a user can cause (bad scenario, bad
//! trace, a model that does not fit) is an [`Error`] whose message is a
//! one-paragraph explanation naming the file, line or key involved; the CLI
//! prints it and exits with code 2. Panics are reserved for bugs.

use std::path::PathBuf;

/// Errors reported to the user. The `Display` text is the whole message.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A scenario (or catalog) file or `--set` override is malformed or has an
    /// impossible value. `context` names the file and key.
    #[error("{context}: {message}")]
    Config { context: String, message: String },

    /// A trace file is unreadable or has a bad row.
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Trace {
        path: PathBuf,
        line: Option<u64>,
        message: String,
    },

    /// The scenario is well formed but cannot run (model does not fit, TP does
    /// not divide heads...). The message carries the numbers.
    #[error("scenario cannot run: {0}")]
    Infeasible(String),

    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Shorthand for a configuration error at `context` (e.g. "scenario.toml: key `cluster.tp`").
    pub fn config(context: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Config {
            context: context.into(),
            message: message.into(),
        }
    }

    /// Shorthand for an I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A serde / TOML deserialization message in the words of a scenario file
/// instead of Rust's: "invalid type: string \"abc\", expected u32" becomes
/// "expected a whole number from 0 to 4294967295, found the text \"abc\"";
/// struct and enum names, `f64`, `sequence` and `map` likewise; "missing
/// field" becomes "missing key". Other messages pass through unchanged.
pub fn in_user_words(message: &str) -> String {
    let message = message.trim();
    if let Some(rest) = message.strip_prefix("missing field ") {
        return format!("missing key {rest}");
    }
    if let Some(rest) = message.strip_prefix("unknown field `")
        && let Some((name, tail)) = rest.split_once('`')
    {
        let valid: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
        return format!(
            "unknown key `{name}`{}; valid keys here are: {}",
            crate::units::did_you_mean(name, valid.iter().copied()),
            valid.join(", ")
        );
    }
    let body = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "));
    match body.and_then(|b| b.rsplit_once(", expected ")) {
        Some((found, expected)) => format!(
            "expected {}, found {}",
            expected_words(expected),
            found_words(found)
        ),
        None => message.to_string(),
    }
}

/// serde's "expected ..." part, in a file's words.
fn expected_words(expected: &str) -> String {
    let e = expected.trim();
    let whole = |max: u64| format!("a whole number from 0 to {max}");
    match e {
        "u8" => whole(u8::MAX.into()),
        "u16" => whole(u16::MAX.into()),
        "u32" => whole(u32::MAX.into()),
        "u64" | "usize" => whole(u64::MAX),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a sequence" => "a list `[...]`".into(),
        "a map" => "a table of keys".into(),
        "a boolean" => "true or false".into(),
        _ if e.starts_with("struct ") || e.starts_with("a map") => {
            "a table of keys (`{ key = value }` or a [section])".into()
        }
        _ if e.starts_with("enum ") => "one of the names this key takes".into(),
        _ => e.to_string(),
    }
}

/// serde's "invalid type: ..." part (what was found), in a file's words.
fn found_words(found: &str) -> String {
    let f = found.trim();
    let inner = |prefix: &str| {
        f.strip_prefix(prefix)
            .map(|v| v.trim().trim_matches('`').to_string())
    };
    if let Some(s) = f.strip_prefix("string ") {
        format!("the text {s}")
    } else if let Some(v) = inner("integer ").or_else(|| inner("floating point ")) {
        format!("the number {v}")
    } else if let Some(v) = inner("boolean ") {
        v
    } else {
        match f {
            "sequence" => "a list".into(),
            "map" => "a table".into(),
            "unit value" => "nothing".into(),
            _ => f.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::in_user_words;

    #[test]
    fn serde_messages_become_a_files_words() {
        for (rust, ours) in [
            (
                "invalid type: string \"abc\", expected u32",
                "expected a whole number from 0 to 4294967295, found the text \"abc\"",
            ),
            (
                "invalid value: integer `-1`, expected u64",
                "expected a whole number from 0 to 18446744073709551615, found the number -1",
            ),
            (
                "invalid type: floating point `1.5`, expected u32",
                "expected a whole number from 0 to 4294967295, found the number 1.5",
            ),
            (
                "invalid type: sequence, expected f64",
                "expected a number, found a list",
            ),
            (
                "invalid type: integer `5`, expected struct LengthConfig",
                "expected a table of keys (`{ key = value }` or a [section]), found the number 5",
            ),
            (
                "invalid type: boolean `true`, expected a string",
                "expected a string, found true",
            ),
            (
                "invalid type: map, expected a sequence",
                "expected a list `[...]`, found a table",
            ),
            ("missing field `name`", "missing key `name`"),
            (
                "invalid value: integer `300`, expected u8",
                "expected a whole number from 0 to 255, found the number 300",
            ),
            (
                "invalid value: integer `-2`, expected u16",
                "expected a whole number from 0 to 65535, found the number -2",
            ),
            (
                "invalid type: string \"x\", expected i64",
                "expected a whole number, found the text \"x\"",
            ),
            (
                "invalid type: integer `1`, expected a map",
                "expected a table of keys, found the number 1",
            ),
            (
                "invalid type: string \"yes\", expected a boolean",
                "expected true or false, found the text \"yes\"",
            ),
            (
                "invalid type: integer `2`, expected enum Outcome",
                "expected one of the names this key takes, found the number 2",
            ),
            (
                "invalid type: unit value, expected a string",
                "expected a string, found nothing",
            ),
            (
                "unknown field `layers`, expected one of `name`, `num_layers`",
                "unknown key `layers` (did you mean `num_layers`?); valid keys here are: name, num_layers",
            ),
            (
                "unknown value `foo`; expected one of: a, b",
                "unknown value `foo`; expected one of: a, b",
            ),
        ] {
            assert_eq!(in_user_words(rust), ours);
        }
    }
}
