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
