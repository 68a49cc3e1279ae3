//! The resume fingerprint of a search: a hash of everything a plan's
//! capacity depends on besides the plan's own parameters.
//!
//! A line of an earlier `plans.jsonl` is reused only when its fingerprint
//! equals the current one, so the fingerprint must change whenever a result
//! could: the base scenario and the goodput criteria and rate bracket; the
//! *contents* (not the names) of every file the scenario reads — a catalog
//! override, the trace, every file below the profile folder; and the
//! simulator itself — its version and its build identity (`build.rs`: a hash
//! of the sources, the embedded catalog and `Cargo.lock`). Device prices and
//! power are not in it: they are applied afresh to reused lines.
//!
//! Invariant: the fingerprint is a pure function of those inputs (files are
//! hashed in sorted path order), so it is the same on every run and thread
//! count.

use super::capacity::{Bracket, Criteria};
use super::space::Space;
use crate::error::{Error, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// 64-bit FNV-1a, streamed.
#[derive(Debug, Clone, Copy)]
pub struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Fnv1a(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    pub fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    /// The hash as 16 hex digits (stable across platforms).
    pub fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Identity of this build of fleetsim: version and source hash.
pub fn build_identity() -> String {
    format!(
        "fleetsim {} build {}",
        env!("CARGO_PKG_VERSION"),
        env!("FLEETSIM_BUILD_ID")
    )
}

/// Hashes a file's name and contents, streaming (traces may be large).
fn hash_file(h: &mut Fnv1a, path: &Path) -> Result<()> {
    h.write(path.to_string_lossy().as_bytes());
    h.write(&[0]);
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        h.write(&buf[..n]);
    }
    h.write(&[0]);
    Ok(())
}

/// Every regular file below `dir` (symbolic links followed once, as the
/// profile reader does), in sorted path order.
fn files_below(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            files_below(&p, out)?;
        } else if p.is_file() {
            out.push(p);
        }
    }
    Ok(())
}

/// The fingerprint of a search over `space` with this bracket and criteria.
pub fn fingerprint(space: &Space, bracket: &Bracket, criteria: &Criteria) -> Result<String> {
    let mut h = Fnv1a::default();
    let base = toml::to_string(&space.base).unwrap_or_default();
    h.write(
        format!(
            "{}\n{base}\n{criteria:?}\nlow={} high={} tol={} max={}\n",
            build_identity(),
            bracket.low,
            bracket.high,
            bracket.tolerance,
            bracket.max_probes
        )
        .as_bytes(),
    );
    let s = &space.base;
    for file in [&s.catalog, &s.workload.trace].into_iter().flatten() {
        hash_file(&mut h, file)?;
    }
    if let Some(dir) = &s.hardware.profile_dir {
        let mut files = Vec::new();
        files_below(dir, &mut files)?;
        for f in &files {
            hash_file(&mut h, f)?;
        }
    }
    Ok(h.hex())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a_matches_the_published_test_vectors() {
        // From the FNV reference (Fowler, Noll, Vo): "" and "a".
        assert_eq!(Fnv1a::default().hex(), "cbf29ce484222325");
        let mut h = Fnv1a::default();
        h.write(b"a");
        assert_eq!(h.hex(), "af63dc4c8601ec8c");
    }

    #[test]
    fn every_file_below_a_folder_counts_in_sorted_order() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("b/c")).unwrap();
        std::fs::write(d.path().join("a.csv"), "1").unwrap();
        std::fs::write(d.path().join("b/c/z.csv"), "2").unwrap();
        std::fs::write(d.path().join("b/y.csv"), "3").unwrap();
        let mut files = Vec::new();
        files_below(d.path(), &mut files).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|f| f.strip_prefix(d.path()).unwrap().display().to_string())
            .collect();
        assert_eq!(names, ["a.csv", "b/c/z.csv", "b/y.csv"]);
        let hash = |p: &Path| {
            let mut h = Fnv1a::default();
            hash_file(&mut h, p).unwrap();
            h.hex()
        };
        let before = hash(&files[1]);
        std::fs::write(d.path().join("b/c/z.csv"), "4").unwrap();
        assert_ne!(before, hash(&files[1]), "a file's contents count");
        assert!(files_below(&d.path().join("missing"), &mut files).is_err());
    }

    #[test]
    fn the_build_identity_names_version_and_source_hash() {
        let id = build_identity();
        let hash = id.rsplit(' ').next().unwrap();
        assert!(id.starts_with(concat!("fleetsim ", env!("CARGO_PKG_VERSION"))));
        assert_eq!(hash.len(), 16);
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn the_fingerprint_changes_with_the_profile_tables_and_the_catalog() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("profiles/vidur")).unwrap();
        let table = d.path().join("profiles/vidur/mlp.csv");
        std::fs::write(&table, "a,b\n1,2\n").unwrap();
        let catalog = d.path().join("extra.toml");
        std::fs::write(&catalog, "").unwrap();
        let space_file = d.path().join("space.toml");
        std::fs::write(
            &space_file,
            "catalog = \"extra.toml\"\n[hardware]\nprofile_dir = \"profiles\"\n[search]\ntp = [1]\nreplicas = [1]\n",
        )
        .unwrap();
        let space = crate::search::load(&space_file, &[]).unwrap();
        let bracket = Bracket {
            low: 1.0,
            high: 2.0,
            tolerance: 0.01,
            max_probes: 10,
        };
        let criteria = Criteria {
            min_attainment: 0.0,
            min_window_latencies: 0.0,
        };
        let fp = || fingerprint(&space, &bracket, &criteria).unwrap();
        let first = fp();
        assert_eq!(first, fp(), "a pure function of its inputs");
        std::fs::write(&table, "a,b\n1,3\n").unwrap();
        let after_table = fp();
        assert_ne!(first, after_table, "profile table contents count");
        std::fs::write(&catalog, "# edited\n").unwrap();
        assert_ne!(after_table, fp(), "catalog contents count");
        let wider = Bracket { high: 3.0, ..bracket };
        assert_ne!(fp(), fingerprint(&space, &wider, &criteria).unwrap());
    }
}
