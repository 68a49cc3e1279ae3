//! Reading a ground-truth CSV table (`cases.csv`, `points.csv`) by column
//! name, with errors that name the file, the line and the column as the
//! user wrote them, what was expected and what was found.
//!
//! Invariant: a [`Row`] only answers for the columns its [`Table`] was asked
//! for (required ones are checked against the header once, optional ones
//! read as absent when the header lacks them).

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// A CSV file read whole, with the position of each named column.
pub(super) struct Table {
    path: PathBuf,
    header: Vec<String>,
    records: Vec<csv::StringRecord>,
}

/// One data row of a [`Table`].
pub(super) struct Row<'a> {
    table: &'a Table,
    record: &'a csv::StringRecord,
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
}

impl Table {
    /// Reads `path`, checking that every column of `required` is in its header.
    pub fn read(path: &Path, required: &[&str]) -> Result<Table> {
        let err = |line: Option<u64>, message: String| Error::Trace {
            path: path.to_path_buf(),
            line,
            message,
        };
        let mut rdr = csv::Reader::from_path(path).map_err(|e| err(None, e.to_string()))?;
        let header: Vec<String> = rdr
            .headers()
            .map_err(|e| err(Some(1), e.to_string()))?
            .iter()
            .map(|h| h.trim().to_string())
            .collect();
        if let Some(missing) = required.iter().find(|c| !header.iter().any(|h| h == *c)) {
            return Err(err(
                Some(1),
                format!("missing column `{missing}` (found: {})", header.join(",")),
            ));
        }
        let mut records = Vec::new();
        for (i, rec) in rdr.records().enumerate() {
            records.push(rec.map_err(|e| err(Some(i as u64 + 2), e.to_string()))?);
        }
        if records.is_empty() {
            return Err(err(None, "no rows below the header".into()));
        }
        Ok(Table {
            path: path.to_path_buf(),
            header,
            records,
        })
    }

    pub fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.records.iter().enumerate().map(move |(i, record)| Row {
            table: self,
            record,
            line: i as u64 + 2,
        })
    }
}

impl Row<'_> {
    /// The trimmed text of `column`, `None` when the header has no such column.
    pub fn get(&self, column: &str) -> Option<&str> {
        let i = self.table.header.iter().position(|h| h == column)?;
        Some(self.record.get(i).unwrap_or("").trim())
    }

    /// The text of a required column.
    pub fn text(&self, column: &str) -> String {
        self.get(column).unwrap_or("").to_string()
    }

    /// An error about `column` of this row.
    pub fn bad(&self, column: &str, expected: &str) -> Error {
        Error::Trace {
            path: self.table.path.clone(),
            line: Some(self.line),
            message: format!(
                "column `{column}`: expected {expected}, found `{}`",
                self.get(column).unwrap_or("")
            ),
        }
    }

    /// A required column parsed as `T` (`expected` says what in an error).
    pub fn parse<T: std::str::FromStr>(&self, column: &str, expected: &str) -> Result<T> {
        self.get(column)
            .unwrap_or("")
            .parse()
            .map_err(|_| self.bad(column, expected))
    }

    /// A finite number ≥ 0.
    pub fn non_negative(&self, column: &str) -> Result<f64> {
        let v: f64 = self.parse(column, "a number ≥ 0")?;
        if v.is_finite() && v >= 0.0 {
            Ok(v)
        } else {
            Err(self.bad(column, "a number ≥ 0"))
        }
    }

    /// A measured time, seconds: finite and above 0 (a 0 would make every
    /// prediction's percentage error undefined).
    pub fn measured_time(&self, column: &str) -> Result<f64> {
        let v: f64 = self.parse(column, "a time in seconds above 0")?;
        if v.is_finite() && v > 0.0 {
            Ok(v)
        } else {
            Err(self.bad(column, "a time in seconds above 0"))
        }
    }

    /// An optional column: `None` when absent from the header or empty.
    pub fn optional<T: std::str::FromStr>(&self, column: &str, expected: &str) -> Result<Option<T>> {
        match self.get(column) {
            None | Some("") => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| self.bad(column, expected)),
        }
    }

    /// A `true`/`false` column (also `1`/`0`, `yes`/`no`).
    pub fn flag(&self, column: &str) -> Result<bool> {
        match self.get(column).unwrap_or("").to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            _ => Err(self.bad(column, "true or false")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(text: &str, required: &[&str]) -> Result<Table> {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.csv");
        std::fs::write(&p, text).unwrap();
        Table::read(&p, required)
    }

    #[test]
    fn a_missing_column_is_named_with_what_the_header_has() {
        let e = table("a,b\n1,2\n", &["a", "c"]).err().unwrap().to_string();
        assert!(
            e.contains("missing column `c`") && e.contains("found: a,b"),
            "{e}"
        );
        assert!(e.contains("t.csv"), "{e}");
    }

    #[test]
    fn a_bad_value_names_its_line_column_and_text() {
        let t = table("a,b\n1,2\n3,x\n", &["a", "b"]).unwrap();
        let rows: Vec<Row> = t.rows().collect();
        assert_eq!(rows[0].parse::<u32>("b", "a whole number").unwrap(), 2);
        let e = rows[1]
            .parse::<u32>("b", "a whole number")
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("line 3") && e.contains("`b`") && e.contains("`x`"),
            "{e}"
        );
        assert_eq!(rows[1].line, 3);
    }

    #[test]
    fn optional_columns_and_flags() {
        let t = table("a,f,g\n1,, true\n2,7,no\n", &["a"]).unwrap();
        let rows: Vec<Row> = t.rows().collect();
        assert_eq!(rows[0].optional::<u32>("f", "n").unwrap(), None);
        assert_eq!(rows[1].optional::<u32>("f", "n").unwrap(), Some(7));
        assert_eq!(rows[0].optional::<u32>("absent", "n").unwrap(), None);
        assert!(rows[0].flag("g").unwrap());
        assert!(!rows[1].flag("g").unwrap());
        assert!(rows[0].flag("a").unwrap(), "1 is true");
        assert!(rows[1].flag("a").is_err(), "2 is not a flag");
        assert!(rows[0].non_negative("a").is_ok());
        let neg = table("a\n-1\n", &["a"]).unwrap();
        assert!(neg.rows().next().unwrap().non_negative("a").is_err());
        let times = table("t\n0\n0.02\ninf\n", &["t"]).unwrap();
        let times: Vec<Row> = times.rows().collect();
        let e = times[0].measured_time("t").err().unwrap().to_string();
        assert!(e.contains("above 0") && e.contains("line 2"), "{e}");
        assert_eq!(times[1].measured_time("t").unwrap(), 0.02);
        assert!(times[2].measured_time("t").is_err(), "not finite");
    }

    #[test]
    fn a_table_without_rows_is_an_error() {
        let e = table("a,b\n", &["a"]).err().unwrap().to_string();
        assert!(e.contains("no rows"), "{e}");
    }

    /// `non_negative` takes 0 and refuses −0.5 and ∞; `text` is the trimmed
    /// cell; every spelling of a flag reads as itself, case aside.
    #[test]
    fn bounds_text_and_flag_spellings() {
        let t = table("n,s,f\n0, gpu a ,TRUE\ninf,x,No\n-0.5,y,0\n", &["n"]).unwrap();
        let rows: Vec<Row> = t.rows().collect();
        assert_eq!(rows[0].non_negative("n").unwrap(), 0.0);
        for r in &rows[1..] {
            let e = r.non_negative("n").err().unwrap().to_string();
            assert!(
                e.contains("a number ≥ 0") && e.contains(&format!("line {}", r.line)),
                "{e}"
            );
        }
        assert_eq!(rows[0].text("s"), "gpu a");
        assert_eq!(rows[0].text("absent"), "");
        assert_eq!(
            rows.iter().map(|r| r.flag("f").unwrap()).collect::<Vec<_>>(),
            [true, false, false]
        );
    }

    /// A row with the wrong number of fields is an error naming its line
    /// (the second data row is line 3).
    #[test]
    fn a_ragged_row_names_its_line() {
        let e = table("a,b\n1,2\n3\n4,5\n", &["a"]).err().unwrap().to_string();
        assert!(e.contains("t.csv") && e.contains("line 3"), "{e}");
    }
}
