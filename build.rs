//! Build identity: a hash of everything compiled into the binary that can
//! change a result — the sources, the embedded catalog, the manifest and the
//! dependency lock — exposed as `FLEETSIM_BUILD_ID`. `fleetsim search` puts it
//! in its resume fingerprint, so a search resumed after any change of code,
//! catalog or dependencies simulates its plans again instead of reusing stale
//! ones (`CARGO_PKG_VERSION` alone is the same for every commit).

use std::path::{Path, PathBuf};

/// 64-bit FNV-1a, continued from `h` (the same function `search` uses).
fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Every file below `dir`, sorted by path (so the hash is order-stable).
fn files_below(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for p in paths {
        if p.is_dir() {
            files_below(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let inputs = ["src", "catalog", "Cargo.toml", "Cargo.lock", "build.rs"];
    let mut files = Vec::new();
    for i in inputs {
        println!("cargo:rerun-if-changed={i}");
        let p = Path::new(i);
        if p.is_dir() {
            files_below(p, &mut files);
        } else {
            files.push(p.to_path_buf());
        }
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for f in &files {
        h = fnv1a(h, f.to_string_lossy().as_bytes());
        h = fnv1a(h, &[0]);
        h = fnv1a(h, &std::fs::read(f).unwrap_or_default());
        h = fnv1a(h, &[0]);
    }
    println!("cargo:rustc-env=FLEETSIM_BUILD_ID={h:016x}");
}
