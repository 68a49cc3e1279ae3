//! Trace readers: public request traces turned into rows of (timestamp,
//! prompt tokens, output tokens). The format is detected from the header
//! (CSV) or the first object's keys (JSONL), or named explicitly.
//!
//! | name | file | timestamp | prompt | output | source |
//! |---|---|---|---|---|---|
//! | `vidur` | CSV | `arrived_at` (s; optional) | `num_prefill_tokens` | `num_decode_tokens` | microsoft/vidur processed traces |
//! | `azure` | CSV | `TIMESTAMP` (`YYYY-MM-DD HH:MM:SS.fffffff`) | `ContextTokens` | `GeneratedTokens` | Azure LLM inference trace 2023 |
//! | `apex` | JSONL | `StartTimeOffset` (ns) | `ContextTokens` | `GeneratedTokens` | microsoft/apex_plus traces |
//! | `mooncake` | JSONL | `timestamp` (ms) | `input_length` | `output_length` (+ `hash_ids`, 512-token prefix blocks) | kvcache-ai/Mooncake FAST'25 |
//! | `burstgpt` | CSV | `Timestamp` (s) | `Request tokens` | `Response tokens` | BurstGPT (Wang et al. 2024) |
//!
//! Rows are sorted stably by timestamp (some published traces are not in
//! order). An output length of 0 (a failed request in BurstGPT, an empty
//! completion elsewhere) becomes 1: an engine always produces at least the
//! token the prefill samples. A prompt of 0 tokens is an error.
//!
//! Guards: a trace is read line by line, at most [`MAX_LINE_BYTES`] per
//! line and [`MAX_TRACE_BYTES`] in all, so a device (`/dev/zero`), a binary
//! file or a runaway file is an error naming the line, never a read until
//! memory runs out. Timestamps must be real calendar instants (no
//! `2023-02-31`, no negative fields) and times ≥ 0.

use crate::error::{Error, Result};
use crate::scenario::kinds::kinds;
use serde_json::{Map, Value};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The largest trace file read, bytes (4 GiB: ≈ 60M CSV rows).
pub const MAX_TRACE_BYTES: u64 = 4 << 30;
/// The longest line of a trace, bytes (1 MiB: a Mooncake row with ≈ 100k
/// prefix block ids).
pub const MAX_LINE_BYTES: u64 = 1 << 20;

kinds! {
    /// How a trace file is read (`workload.trace_format`): detected, or one
    /// format forced (the table in the module docs).
    pub enum TraceFormatChoice {
        /// Detect the format from the header (CSV) or the first object's keys (JSONL).
        Auto = "auto",
        /// Vidur's processed traces (CSV).
        Vidur = "vidur",
        /// APEX+ request traces (JSONL).
        Apex = "apex",
        /// The Azure LLM inference trace 2023 (CSV).
        Azure = "azure",
        /// Mooncake's traces (JSONL, with prefix block ids).
        Mooncake = "mooncake",
        /// BurstGPT (CSV).
        BurstGpt = "burstgpt",
    }
}

/// The format a trace was read in (forced or detected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    Vidur,
    Apex,
    Azure,
    Mooncake,
    BurstGpt,
}

impl TraceFormatChoice {
    /// The forced format, or `None` to detect it.
    pub(crate) fn forced(self) -> Option<TraceFormat> {
        match self {
            TraceFormatChoice::Auto => None,
            TraceFormatChoice::Vidur => Some(TraceFormat::Vidur),
            TraceFormatChoice::Apex => Some(TraceFormat::Apex),
            TraceFormatChoice::Azure => Some(TraceFormat::Azure),
            TraceFormatChoice::Mooncake => Some(TraceFormat::Mooncake),
            TraceFormatChoice::BurstGpt => Some(TraceFormat::BurstGpt),
        }
    }
}

/// One request of a trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceRow {
    /// Arrival time in seconds (format-specific origin), when the trace has one.
    pub time_s: Option<f64>,
    pub prompt_tokens: u32,
    pub output_tokens: u32,
    /// Mooncake: hashes of the prompt's 512-token blocks (for prefix caching).
    pub hash_ids: Option<Arc<[u64]>>,
}

/// A parsed trace.
#[derive(Debug, Clone)]
pub struct Trace {
    pub path: PathBuf,
    /// The detected (or forced) format; the detection tests read it.
    #[cfg_attr(not(test), allow(dead_code))]
    pub format: TraceFormat,
    pub rows: Vec<TraceRow>,
}

impl Trace {
    /// Whether any row carries prefix block ids (Mooncake `hash_ids`).
    pub fn has_prefix_ids(&self) -> bool {
        self.rows.iter().any(|r| r.hash_ids.is_some())
    }

    pub fn has_timestamps(&self) -> bool {
        self.rows.first().is_some_and(|r| r.time_s.is_some())
    }
}

fn trace_err(path: &Path, line: Option<u64>, message: impl Into<String>) -> Error {
    Error::Trace {
        path: path.to_path_buf(),
        line,
        message: message.into(),
    }
}

/// Reads and parses a trace in the `format` chosen (or detected).
pub fn read(path: &Path, format: TraceFormatChoice) -> Result<Trace> {
    let text = read_text(path)?;
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let fmt = match format.forced() {
        Some(f) => f,
        None => detect(path, first)?,
    };
    let mut rows = match fmt {
        TraceFormat::Apex | TraceFormat::Mooncake => read_jsonl(path, &text, fmt)?,
        _ => read_csv(path, &text, fmt)?,
    };
    if rows.is_empty() {
        return Err(trace_err(path, None, "the trace has no requests"));
    }
    if rows.iter().any(|r| r.time_s.is_some()) {
        rows.sort_by(|a, b| a.time_s.unwrap_or(0.0).total_cmp(&b.time_s.unwrap_or(0.0)));
    }
    Ok(Trace {
        path: path.to_path_buf(),
        format: fmt,
        rows,
    })
}

/// The file's text, read line by line within the guards of the module doc.
fn read_text(path: &Path) -> Result<String> {
    read_text_within(path, MAX_TRACE_BYTES)
}

/// [`read_text`] with at most `max_bytes` in all (tests use a small limit).
fn read_text_within(path: &Path, max_bytes: u64) -> Result<String> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut text = Vec::new();
    let mut line = 0u64;
    loop {
        let start = text.len();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut text)
            .map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        line += 1;
        let body = (text.len() - start - usize::from(text.last() == Some(&b'\n'))) as u64;
        if body > MAX_LINE_BYTES {
            return Err(trace_err(
                path,
                Some(line),
                format!(
                    "the line is longer than {} MiB, the most a trace line may be; is this a trace file?",
                    MAX_LINE_BYTES >> 20
                ),
            ));
        }
        if text.len() as u64 > max_bytes {
            return Err(trace_err(
                path,
                Some(line),
                format!(
                    "the trace is larger than {max_bytes} bytes ({:.1} GiB), the most fleetsim reads; \
                     replay a part of it",
                    max_bytes as f64 / (1u64 << 30) as f64
                ),
            ));
        }
    }
    String::from_utf8(text).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        trace_err(
            path,
            Some(line),
            "the file is not UTF-8 text; is this a trace file?",
        )
    })
}

fn detect(path: &Path, first: &str) -> Result<TraceFormat> {
    let t = first.trim_start_matches('\u{feff}').trim();
    if t.starts_with('{') {
        if t.contains("\"StartTimeOffset\"") || t.contains("\"ContextTokens\"") {
            return Ok(TraceFormat::Apex);
        }
        if t.contains("\"input_length\"") {
            return Ok(TraceFormat::Mooncake);
        }
    } else {
        let cols: Vec<&str> = t.split(',').map(str::trim).collect();
        if cols.contains(&"num_prefill_tokens") && cols.contains(&"num_decode_tokens") {
            return Ok(TraceFormat::Vidur);
        }
        if cols.contains(&"ContextTokens") && cols.contains(&"GeneratedTokens") {
            return Ok(TraceFormat::Azure);
        }
        if cols.contains(&"Request tokens") && cols.contains(&"Response tokens") {
            return Ok(TraceFormat::BurstGpt);
        }
    }
    let shown: String = t.chars().take(120).collect();
    Err(trace_err(
        path,
        Some(1),
        format!(
            "cannot tell the trace format from the first line `{shown}`; expected a Vidur CSV \
             (arrived_at,num_prefill_tokens,num_decode_tokens), an Azure CSV \
             (TIMESTAMP,ContextTokens,GeneratedTokens), a BurstGPT CSV (Timestamp,...,Request tokens,\
             Response tokens,...), APEX+ JSONL (StartTimeOffset, ContextTokens, GeneratedTokens) or \
             Mooncake JSONL (timestamp, input_length, output_length, hash_ids); set \
             workload.trace_format to force one"
        ),
    ))
}

fn lengths(path: &Path, line: u64, prompt: u64, output: u64) -> Result<(u32, u32)> {
    if prompt == 0 {
        return Err(trace_err(
            path,
            Some(line),
            "prompt length is 0 tokens; every request needs at least one",
        ));
    }
    let p = u32::try_from(prompt)
        .map_err(|_| trace_err(path, Some(line), format!("prompt length {prompt} is too large")))?;
    let o = u32::try_from(output.max(1))
        .map_err(|_| trace_err(path, Some(line), format!("output length {output} is too large")))?;
    Ok((p, o))
}

/// One JSONL field as a count (a non-negative integer; `44.0` is accepted).
fn json_count(obj: &Map<String, Value>, key: &str, err: &dyn Fn(String) -> Error) -> Result<u64> {
    match obj.get(key) {
        None => Err(err(format!("missing `{key}`"))),
        Some(v) => v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 1.8e19)
                    .map(|f| f as u64)
            })
            .ok_or_else(|| err(format!("`{key}`: expected a whole number ≥ 0, found `{v}`"))),
    }
}

/// One JSONL field as a time (a finite number ≥ 0).
fn json_time(obj: &Map<String, Value>, key: &str, unit: &str, err: &dyn Fn(String) -> Error) -> Result<f64> {
    match obj.get(key) {
        None => Err(err(format!("missing `{key}`"))),
        Some(v) => v
            .as_f64()
            .filter(|t| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| err(format!("`{key}`: expected {unit} ≥ 0, found `{v}`"))),
    }
}

fn read_jsonl(path: &Path, text: &str, fmt: TraceFormat) -> Result<Vec<TraceRow>> {
    let mut rows = Vec::new();
    let want = match fmt {
        TraceFormat::Apex => "a JSON object with StartTimeOffset (ns), ContextTokens, GeneratedTokens",
        _ => "a JSON object with timestamp (ms), input_length, output_length, hash_ids",
    };
    for (i, l) in text.lines().enumerate() {
        let line = i as u64 + 1;
        if l.trim().is_empty() {
            continue;
        }
        let err = |m: String| trace_err(path, Some(line), format!("{m} (each line must be {want})"));
        let obj = match serde_json::from_str::<Value>(l) {
            Ok(Value::Object(o)) => o,
            Ok(_) => return Err(err("not a JSON object".into())),
            Err(e) => return Err(err(format!("not valid JSON ({e})"))),
        };
        let row = match fmt {
            TraceFormat::Apex => {
                let start_ns = json_count(&obj, "StartTimeOffset", &err)?;
                let (p, o) = lengths(
                    path,
                    line,
                    json_count(&obj, "ContextTokens", &err)?,
                    json_count(&obj, "GeneratedTokens", &err)?,
                )?;
                TraceRow {
                    time_s: Some(start_ns as f64 * 1e-9),
                    prompt_tokens: p,
                    output_tokens: o,
                    hash_ids: None,
                }
            }
            _ => {
                let t_ms = json_time(&obj, "timestamp", "milliseconds", &err)?;
                let (p, o) = lengths(
                    path,
                    line,
                    json_count(&obj, "input_length", &err)?,
                    json_count(&obj, "output_length", &err)?,
                )?;
                let hash_ids = match obj.get("hash_ids") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Array(ids)) => ids
                        .iter()
                        .map(|v| {
                            v.as_u64().ok_or_else(|| {
                                err(format!("`hash_ids`: expected whole numbers ≥ 0, found `{v}`"))
                            })
                        })
                        .collect::<Result<Vec<u64>>>()?,
                    Some(v) => {
                        return Err(err(format!(
                            "`hash_ids`: expected a list of block ids, found `{v}`"
                        )));
                    }
                };
                TraceRow {
                    time_s: Some(t_ms * 1e-3),
                    prompt_tokens: p,
                    output_tokens: o,
                    hash_ids: (!hash_ids.is_empty()).then(|| Arc::from(hash_ids)),
                }
            }
        };
        rows.push(row);
    }
    Ok(rows)
}

fn read_csv(path: &Path, text: &str, fmt: TraceFormat) -> Result<Vec<TraceRow>> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = rdr
        .headers()
        .map_err(|e| trace_err(path, Some(1), e.to_string()))?
        .clone();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| h.trim_start_matches('\u{feff}') == name)
    };
    let need = |name: &str| {
        col(name).ok_or_else(|| {
            trace_err(
                path,
                Some(1),
                format!(
                    "missing column `{name}` (header is `{}`)",
                    headers.iter().collect::<Vec<_>>().join(",")
                ),
            )
        })
    };
    let (time_col, prompt_col, output_col) = match fmt {
        TraceFormat::Vidur => (
            col("arrived_at"),
            need("num_prefill_tokens")?,
            need("num_decode_tokens")?,
        ),
        TraceFormat::Azure => (
            Some(need("TIMESTAMP")?),
            need("ContextTokens")?,
            need("GeneratedTokens")?,
        ),
        _ => (
            Some(need("Timestamp")?),
            need("Request tokens")?,
            need("Response tokens")?,
        ),
    };
    let mut rows = Vec::new();
    for (i, rec) in rdr.records().enumerate() {
        let line = i as u64 + 2;
        let rec = rec.map_err(|e| trace_err(path, Some(line), e.to_string()))?;
        let get = |c: usize, name: &str| {
            rec.get(c)
                .ok_or_else(|| trace_err(path, Some(line), format!("missing value for `{name}`")))
        };
        let int = |c: usize, name: &str| -> Result<u64> {
            let v = get(c, name)?;
            // Some traces write counts as floats ("44.0").
            v.parse::<u64>()
                .or_else(|_| match v.parse::<f64>() {
                    Ok(f) if f >= 0.0 && f.fract() == 0.0 => Ok(f as u64),
                    _ => Err(()),
                })
                .map_err(|_| {
                    trace_err(
                        path,
                        Some(line),
                        format!("`{name}`: expected a token count, found `{v}`"),
                    )
                })
        };
        let time_s = match (fmt, time_col) {
            (TraceFormat::Azure, Some(c)) => {
                let v = get(c, "TIMESTAMP")?;
                Some(parse_timestamp(v).ok_or_else(|| {
                    trace_err(
                        path,
                        Some(line),
                        format!(
                            "`TIMESTAMP`: expected a real date and time `YYYY-MM-DD HH:MM:SS.fffffff` \
                             (UTC), found `{v}`"
                        ),
                    )
                })?)
            }
            (_, Some(c)) => {
                let name = headers.get(c).unwrap_or("time");
                let v = get(c, name)?;
                let t: f64 = v.parse().map_err(|_| {
                    trace_err(
                        path,
                        Some(line),
                        format!("`{name}`: expected seconds, found `{v}`"),
                    )
                })?;
                if !t.is_finite() || t < 0.0 {
                    return Err(trace_err(
                        path,
                        Some(line),
                        format!("`{name}`: expected seconds ≥ 0, found `{v}`"),
                    ));
                }
                Some(t)
            }
            (_, None) => None,
        };
        let pname = headers.get(prompt_col).unwrap_or("prompt").to_string();
        let oname = headers.get(output_col).unwrap_or("output").to_string();
        let (p, o) = lengths(path, line, int(prompt_col, &pname)?, int(output_col, &oname)?)?;
        rows.push(TraceRow {
            time_s,
            prompt_tokens: p,
            output_tokens: o,
            hash_ids: None,
        });
    }
    Ok(rows)
}

/// Days since 1970-01-01 of a proleptic Gregorian date of year ≥ 1
/// (H. Hinnant's `days_from_civil`; years from 1 on need only its
/// non-negative branch: the March-based year is then ≥ 0).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    debug_assert!(y >= 1, "parse_timestamp refuses years before 1");
    let y = if m <= 2 { y - 1 } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

/// Days in month `m` (1–12) of year `y` (proleptic Gregorian).
fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if y % 4 == 0 && (y % 100 != 0 || y % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Seconds since the Unix epoch of `YYYY-MM-DD HH:MM:SS[.fraction]` (UTC,
/// any fraction digits). `None` unless it is a real calendar instant:
/// year 1–9999, the month's own days, hours 0–23, minutes 0–59, seconds
/// 0–60 (a leap second), unsigned digits only.
pub fn parse_timestamp(s: &str) -> Option<f64> {
    let (date, time) = s.trim().split_once([' ', 'T'])?;
    let digits = |x: &str, max_len: usize| -> Option<i64> {
        (!x.is_empty() && x.len() <= max_len && x.bytes().all(|b| b.is_ascii_digit()))
            .then(|| x.parse().ok())
            .flatten()
    };
    let mut d = date.split('-');
    let (y, m, day) = (
        digits(d.next()?, 4)?,
        digits(d.next()?, 2)?,
        digits(d.next()?, 2)?,
    );
    if d.next().is_some() || y < 1 || !(1..=12).contains(&m) || !(1..=days_in_month(y, m)).contains(&day) {
        return None;
    }
    let (hms, frac) = match time.split_once('.') {
        Some((a, b)) => (a, b),
        None => (time, ""),
    };
    let mut t = hms.split(':');
    let (hh, mm, ss) = (
        digits(t.next()?, 2)?,
        digits(t.next()?, 2)?,
        digits(t.next()?, 2)?,
    );
    if t.next().is_some() || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let frac_s = if frac.is_empty() {
        0.0
    } else {
        if !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        format!("0.{frac}").parse::<f64>().ok()?
    };
    Some((days_from_civil(y, m, day) * 86400 + hh * 3600 + mm * 60 + ss) as f64 + frac_s)
}

#[cfg(test)]
mod tests {
    use super::read_text_within;

    /// The size guard at its boundary (4 GiB in use; the file's own size
    /// here): a file of exactly the limit is read, a limit one byte smaller
    /// refuses it at the line that crossed it, and the message gives the
    /// limit.
    #[test]
    fn a_trace_of_exactly_the_size_limit_is_read_and_one_byte_more_is_not() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("t.csv");
        let text = "arrived_at,num_prefill_tokens,num_decode_tokens\n0,1,1\n";
        std::fs::write(&p, text).unwrap();
        let n = text.len() as u64;
        assert_eq!(read_text_within(&p, n).unwrap(), text);
        let e = read_text_within(&p, n - 1).unwrap_err().to_string();
        assert!(
            e.contains("line 2") && e.contains(&format!("larger than {} bytes", n - 1)),
            "{e}"
        );
    }
}
