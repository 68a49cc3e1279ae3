//! What becomes of each request's record once the summary's accumulators
//! have taken it: kept, dropped, or streamed to `requests.csv`.
//!
//! [`Records::Keep`] (the library default) keeps every record for
//! [`Report::requests`](super::Report::requests) — the trace, the HTML
//! report and tests read them. [`Records::Drop`] and [`Records::Stream`]
//! keep none, so a run's memory does not grow with its request count (the
//! command line uses them when no output needs the records).
//!
//! Streaming writes `requests.csv` in id order, as the kept records would
//! be: records end out of id order, so a record waits in a reorder buffer
//! until every lower id has been written. Invariants: the buffer holds only
//! records with an id above the next one to write, so its size is bounded
//! by how far request ends overtake one another (requests in flight), not
//! by the run's length; the rows go to a temporary file (see
//! [`crate::output::atomic`]) renamed to `requests.csv` with the rest of
//! the set when the run's outputs are written.

use super::RequestRecord;
use super::writers::{REQUESTS_HEADER, request_row};
use crate::error::{Error, Result};
use crate::output::atomic::partial_path;
use crate::units::Nanos;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

/// What to do with request records (see the module doc).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Records {
    /// Keep them all for `Report::requests`.
    Keep,
    /// Keep none (`Report::requests` is empty).
    Drop,
    /// Write them to this `requests.csv` (through a temporary file renamed
    /// by `Report::write_dir`); keep none.
    Stream(PathBuf),
}

/// `requests.csv` being written as requests end.
#[derive(Debug)]
pub(crate) struct RequestStream {
    /// The final name and the temporary file the rows go to.
    path: PathBuf,
    partial: PathBuf,
    writer: csv::Writer<BufWriter<File>>,
    /// The lowest id not written yet.
    next: u64,
    /// Records waiting for a lower id.
    waiting: BTreeMap<u64, RequestRecord>,
    /// KV transfer times of disaggregated requests not written yet.
    transfers: BTreeMap<u64, Nanos>,
    /// The first write error (reported when the outputs are written).
    error: Option<Error>,
}

impl RequestStream {
    /// Starts `path` (its folder is created if missing).
    pub fn create(path: &Path) -> Result<Self> {
        crate::output::create_parent(path)?;
        let partial = partial_path(path);
        let file = File::create(&partial).map_err(|e| Error::io(&partial, e))?;
        let mut writer = csv::Writer::from_writer(BufWriter::with_capacity(1 << 16, file));
        writer
            .write_record(REQUESTS_HEADER)
            .map_err(|e| Error::io(&partial, e.into()))?;
        Ok(RequestStream {
            path: path.to_path_buf(),
            partial,
            writer,
            next: 0,
            waiting: BTreeMap::new(),
            transfers: BTreeMap::new(),
            error: None,
        })
    }

    /// Request `id`'s KV took `ns` to move (written with its row).
    pub fn transfer(&mut self, id: u64, ns: Nanos) {
        self.transfers.insert(id, ns);
    }

    fn write(&mut self, r: &RequestRecord) {
        let t = self.transfers.remove(&r.id);
        if self.error.is_none()
            && let Err(e) = self.writer.write_record(request_row(r, t))
        {
            self.error = Some(Error::io(&self.partial, e.into()));
        }
    }

    /// A request ended: its row, and every waiting row it unblocks, are written.
    pub fn push(&mut self, r: RequestRecord) {
        if r.id != self.next {
            // An id below `next` cannot wait for anything: written as is.
            if r.id < self.next {
                self.write(&r);
            } else {
                self.waiting.insert(r.id, r);
            }
            return;
        }
        self.write(&r);
        self.next += 1;
        while let Some(entry) = self.waiting.first_entry() {
            if *entry.key() != self.next {
                break;
            }
            let r = entry.remove();
            self.write(&r);
            self.next += 1;
        }
    }

    /// Writes what still waits (ids with gaps below them), in id order,
    /// and closes the temporary file; returns (temporary, final) paths.
    pub fn finish(mut self) -> Result<(PathBuf, PathBuf)> {
        for r in std::mem::take(&mut self.waiting).into_values() {
            self.write(&r);
        }
        if let Some(e) = self.error.take() {
            let _ = std::fs::remove_file(&self.partial);
            return Err(e);
        }
        let flushed = self
            .writer
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|mut w| w.flush());
        if let Err(e) = flushed {
            let _ = std::fs::remove_file(&self.partial);
            return Err(Error::io(&self.partial, e));
        }
        Ok((self.partial, self.path))
    }

    /// Records waiting for a lower id (tests: the buffer stays small).
    #[cfg(test)]
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::test_util::{MS, finished};

    #[test]
    fn rows_come_out_in_id_order_whatever_the_end_order() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("requests.csv");
        let mut st = RequestStream::create(&path).unwrap();
        st.transfer(1, 3 * MS);
        // 0 unblocks 1 and 2; 3 unblocks 4; 7 waits for 5 and 6 (never sent).
        for (id, waiting) in [(2u64, 1), (1, 2), (4, 3), (0, 1), (3, 0), (7, 1)] {
            st.push(finished(id, 0, 0, 0, MS, 2 * MS, 10, 2));
            assert_eq!(st.waiting(), waiting, "after {id}");
        }
        // A repeated id (a library workload may reuse one) cannot wait for
        // anything: its row is written at once.
        st.push(finished(3, 0, 0, 0, MS, 2 * MS, 10, 2));
        assert_eq!(st.waiting(), 1);
        let (partial, final_path) = st.finish().unwrap();
        assert_eq!(final_path, path);
        assert!(!path.exists(), "the final name is given by write_dir");
        let text = std::fs::read_to_string(&partial).unwrap();
        let ids: Vec<&str> = text
            .lines()
            .skip(1)
            .map(|l| l.split(',').next().unwrap())
            .collect();
        assert_eq!(ids, ["0", "1", "2", "3", "4", "3", "7"]);
        // Request 1's transfer time is in its row, nobody else's.
        let row1 = text.lines().nth(2).unwrap();
        assert!(row1.ends_with(",3.000000"), "{row1}");
        assert!(text.lines().nth(1).unwrap().ends_with(','));
    }
}
