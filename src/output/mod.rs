//! Outputs people look at, beyond the summary table and CSV files:
//!
//! - [`trace`]: a Chrome trace-event / Perfetto JSON file (`run --trace`):
//!   the optional [`trace::TraceRecorder`] the engine feeds while it runs,
//!   and the writer that turns it (plus the request records) into events;
//! - [`report`]: one self-contained HTML page (`run --report`, and
//!   [`report::search_report`] for a capacity search), charts rendered
//!   server-side as inline SVG with their data embedded as JSON;
//! - [`svg`]: the small hand-written SVG chart helpers the report uses;
//! - [`atomic`]: every output file is written under a temporary name and
//!   renamed when complete.
//!
//! Everything here is deterministic: no wall-clock time, no hash-map order,
//! numbers formatted by fixed routines, so the same run gives the same bytes.

pub mod atomic;
pub mod report;
pub mod svg;
pub mod trace;

use crate::error::{Error, Result};
use std::path::Path;

/// Creates `path`'s parent folders if missing; errors name the folder.
pub(crate) fn create_parent(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(())
}

/// Writes `contents` to `path` whole or not at all (see [`atomic`]),
/// creating missing parent folders; errors name the path.
pub(crate) fn write_file(path: &Path, contents: &[u8]) -> Result<()> {
    create_parent(path)?;
    atomic::write_bytes(path, contents)
}
