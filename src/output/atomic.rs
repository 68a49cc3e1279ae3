//! Files written whole or not at all.
//!
//! Every output file is written to a temporary name beside it
//! (`.NAME.PID.partial`, same folder so the rename stays on one file
//! system), flushed, and renamed over `NAME` only when complete. A run that
//! dies mid-write leaves the previous file (or none) plus a `.partial` file,
//! never a truncated file under the real name. A set of files that belongs
//! together (`summary.json`, `requests.csv`, `timeseries.csv`) is written
//! with [`write_set`]: the old marker file goes first and the new one is
//! renamed last, so the marker's presence means the set is complete.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("out.txt");
//! fleetsim::output::atomic::write_with(&path, |w| {
//!     use std::io::Write;
//!     w.write_all(b"complete")
//! })
//! .unwrap();
//! assert_eq!(std::fs::read_to_string(&path).unwrap(), "complete");
//! ```

use crate::error::{Error, Result};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// The temporary name `path` is written under before its rename.
pub fn partial_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.partial", std::process::id()))
}

/// Writes `path` through `write` (given a buffered writer on the
/// temporary file) and renames it into place when `write` succeeds; on any
/// error the temporary file is removed and `path` is left as it was.
pub fn write_with(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> std::io::Result<()>,
) -> Result<()> {
    let tmp = partial_path(path);
    let result = File::create(&tmp)
        .map_err(|e| Error::io(&tmp, e))
        .and_then(|file| {
            let mut w = BufWriter::with_capacity(1 << 16, file);
            write(&mut w)
                .and_then(|_| w.flush())
                .map_err(|e| Error::io(path, e))
        })
        .and_then(|_| std::fs::rename(&tmp, path).map_err(|e| Error::io(path, e)));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Writes `contents` to `path` whole or not at all.
pub fn write_bytes(path: &Path, contents: &[u8]) -> Result<()> {
    write_with(path, |w| w.write_all(contents))
}

/// Writes a set of files that belong together: removes `marker` (the file
/// whose presence says the set is complete) first, writes the others
/// (each through [`write_with`]), then `marker` last.
pub fn write_set(marker: &Path, marker_contents: &[u8], others: impl FnOnce() -> Result<()>) -> Result<()> {
    match std::fs::remove_file(marker) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io(marker, e)),
    }
    others()?;
    write_bytes(marker, marker_contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_partial_one() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a.csv");
        std::fs::write(&p, "old").unwrap();
        let e = write_with(&p, |w| {
            w.write_all(b"half a fi")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("a.csv") && e.contains("disk full"), "{e}");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "old");
        assert_eq!(listing(d.path()), ["a.csv"]);
        write_bytes(&p, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        assert_eq!(listing(d.path()), ["a.csv"]);
    }

    #[test]
    fn while_a_file_is_written_only_its_partial_name_exists() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("big.json");
        write_with(&p, |w| {
            w.write_all(b"{")?;
            w.flush()?;
            assert!(!p.exists(), "the real name appears only when complete");
            assert!(partial_path(&p).exists());
            w.write_all(b"}")
        })
        .unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "{}");
    }

    #[test]
    fn a_set_that_fails_midway_has_no_marker() {
        let d = tempfile::tempdir().unwrap();
        let marker = d.path().join("summary.json");
        std::fs::write(&marker, "from an earlier run").unwrap();
        let e = write_set(&marker, b"{}", || Err(Error::config("x", "killed")));
        assert!(e.is_err());
        assert!(!marker.exists(), "an incomplete set must not look complete");
        write_set(&marker, b"{}", || Ok(())).unwrap();
        assert_eq!(std::fs::read_to_string(&marker).unwrap(), "{}");
        // A marker that cannot be removed (a folder stands there) stops the
        // set before any other file is written; a missing one does not.
        let stuck = d.path().join("stuck.json");
        std::fs::create_dir(&stuck).unwrap();
        let mut wrote = false;
        let e = write_set(&stuck, b"{}", || {
            wrote = true;
            Ok(())
        });
        assert!(e.unwrap_err().to_string().contains("stuck.json"));
        assert!(!wrote, "the others ran although the old marker stayed");
    }
}
