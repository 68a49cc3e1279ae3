//! Reader for APEX's collective profiles (microsoft/apex_plus `profile/comm`, MIT).
//!
//! # `apex/comm/<GPU>/{all_reduce,all_gather,reduce_scatter,alltoall,sendrecv}.csv`
//!
//! Header `gpu,num_nodes,num_gpus_per_node,dtype,size(kb),time(us)` (some
//! files add `gpu_freq,energy(J)`, ignored). One row per measurement; the
//! GPU folder names the device (`H100-SXM-80GB`, `H200-SXM-141GB`,
//! `V100-PCIE-16GB`). As written by `profile/scripts/comm.py`:
//! - `size(kb)` is `int(bytes / 1024)` of the whole buffer (the all-reduce
//!   input; the gathered output for all-gather; the reduce-scatter input),
//!   for `2^8 … 2^26` elements of `dtype` (`half` = 2 bytes, `float` = 4), so
//!   the smallest FP16 message (512 bytes) is written as `0`. The reader maps
//!   `size(kb) = 0` back to 512 bytes and otherwise uses `kb · 1024` bytes.
//! - `time(us)` is the mean wall time per call over a timed loop, truncated
//!   to an integer number of microseconds.
//! - `num_nodes × num_gpus_per_node` GPUs take part (the shared files have
//!   only `num_nodes = 1`; `sendrecv` runs between GPU 0 and the last GPU
//!   of one node, recorded as `num_gpus_per_node = 2`).
//!
//! Times are converted to seconds.

use super::vidur::{Csv, int, num, trace};
use crate::error::Result;
use std::path::{Path, PathBuf};

/// One row of an APEX collective table.
#[derive(Debug, Clone, PartialEq)]
pub struct CommRow {
    pub num_nodes: u32,
    pub gpus_per_node: u32,
    /// `half` or `float`.
    pub dtype: String,
    /// Message size, bytes.
    pub bytes: f64,
    /// Time per call, seconds.
    pub secs: f64,
    pub line: u64,
}

/// A parsed APEX collective table.
#[derive(Debug, Clone)]
pub struct CommProfile {
    pub path: PathBuf,
    /// The collective, from the file name (`all_reduce`, `sendrecv`, …).
    pub collective: String,
    pub rows: Vec<CommRow>,
}

impl CommProfile {
    /// `(bytes, seconds)` of the FP16 rows with `gpus` GPUs on one node.
    pub fn single_node_half(&self, gpus: u32) -> Vec<(f64, f64)> {
        self.rows
            .iter()
            .filter(|r| r.num_nodes == 1 && r.gpus_per_node == gpus && r.dtype == "half")
            .map(|r| (r.bytes, r.secs))
            .collect()
    }
}

/// Reads an APEX collective CSV.
pub fn read_comm(path: &Path) -> Result<CommProfile> {
    let mut csv = Csv::open(path)?;
    let c_nodes = csv.col("num_nodes")?;
    let c_gpus = csv.col("num_gpus_per_node")?;
    let c_dtype = csv.col("dtype")?;
    let c_kb = csv.col("size(kb)")?;
    let c_us = csv.col("time(us)")?;
    let path_buf = csv.path.clone();
    let p = path_buf.as_path();
    let mut rows = Vec::new();
    csv.for_each(|rec, line| {
        let kb = int(rec, c_kb, "size(kb)", p, line)?;
        let us = num(rec, c_us, "time(us)", p, line)?;
        if us < 0.0 {
            return Err(trace(
                p,
                Some(line),
                format!("column `time(us)`: negative time {us}"),
            ));
        }
        let dtype = rec.get(c_dtype).unwrap_or("").trim().to_string();
        if dtype != "half" && dtype != "float" {
            return Err(trace(
                p,
                Some(line),
                format!("column `dtype`: expected half or float, found `{dtype}`"),
            ));
        }
        rows.push(CommRow {
            num_nodes: int(rec, c_nodes, "num_nodes", p, line)?,
            gpus_per_node: int(rec, c_gpus, "num_gpus_per_node", p, line)?,
            dtype,
            bytes: if kb == 0 { 512.0 } else { kb as f64 * 1024.0 },
            secs: us * 1e-6,
            line,
        });
        Ok(true)
    })?;
    let collective = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(CommProfile {
        path: path_buf,
        collective,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_apex_rows() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("all_reduce.csv");
        std::fs::write(
            &p,
            "gpu,num_nodes,num_gpus_per_node,dtype,size(kb),time(us)\n\
             H100-SXM-80GB,1,8,half,0,14.0\n\
             H100-SXM-80GB,1,8,half,1024,34.0\n\
             H100-SXM-80GB,1,4,float,1,10.0\n",
        )
        .unwrap();
        let c = read_comm(&p).unwrap();
        assert_eq!(c.collective, "all_reduce");
        assert_eq!(c.rows.len(), 3);
        assert_eq!(c.rows[0].bytes, 512.0);
        assert_eq!(c.rows[1].bytes, 1024.0 * 1024.0);
        assert!((c.rows[1].secs - 34e-6).abs() < 1e-18);
        assert_eq!(c.single_node_half(8), vec![(512.0, 14e-6), (1048576.0, 34e-6)]);
        assert!(c.single_node_half(4).is_empty());
        std::fs::write(
            &p,
            "gpu,num_nodes,num_gpus_per_node,dtype,size(kb),time(us)\nH100,1,8,double,4,1\n",
        )
        .unwrap();
        let msg = read_comm(&p).unwrap_err().to_string();
        assert!(
            msg.contains("all_reduce.csv, line 2") && msg.contains("dtype"),
            "{msg}"
        );
    }

    /// A zero time is a measurement (truncated below 1 µs); a negative one
    /// is refused by line and column. Rows of two nodes are not single-node.
    #[test]
    fn zero_times_are_kept_negative_ones_refused_and_nodes_kept_apart() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sendrecv.csv");
        let head = "gpu,num_nodes,num_gpus_per_node,dtype,size(kb),time(us)\n";
        std::fs::write(&p, format!("{head}H100,1,2,half,2,0\nH100,2,2,half,2,9\n")).unwrap();
        let c = read_comm(&p).unwrap();
        assert_eq!(c.rows[0].secs, 0.0);
        assert_eq!(c.single_node_half(2), vec![(2048.0, 0.0)]);
        std::fs::write(&p, format!("{head}H100,1,2,half,2,5\nH100,1,2,half,4,-1\n")).unwrap();
        let msg = read_comm(&p).unwrap_err().to_string();
        assert!(
            msg.contains("sendrecv.csv, line 3") && msg.contains("negative time"),
            "{msg}"
        );
    }
}
