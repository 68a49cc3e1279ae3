//! What `fleetsim train` writes: the summary table, the JSON report, the
//! Perfetto trace (one track per pipeline device with its F/B/W boxes and
//! the step's data-parallel synchronisation — the schedule picture people
//! draw by hand) and a self-contained HTML report. Every output is a pure
//! function of the run, so the same plan gives byte-identical files.

use super::run::{TrainReport, TrainRun};
use super::schedule::Pass;
use std::fmt::Write;

/// The report as pretty JSON.
pub fn to_json(r: &TrainReport) -> String {
    serde_json::to_string_pretty(r).expect("a training report serializes")
}

/// The summary as aligned text.
pub fn to_table(r: &TrainReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} — {} on {} × {} ({} schedule, {} micro-batches)",
        r.name, r.model, r.gpus, r.device, r.schedule, r.micro_batches
    );
    let rows: [(&str, String); 11] = [
        ("iteration", format!("{:.3} s", r.iteration_s)),
        ("tokens/s", format!("{:.0}", r.tokens_per_s)),
        ("TFLOP/s per GPU", format!("{:.1}", r.tflops_per_gpu)),
        ("MFU", format!("{:.1} %", 100.0 * r.mfu)),
        ("bubble", format!("{:.1} %", 100.0 * r.bubble_fraction)),
        ("exposed comm", format!("{:.3} s", r.exposed_comm_s)),
        (
            "DP sync",
            format!(
                "{}: {:.3} s exposed, {:.2} GB/step",
                r.dp_sync.method,
                r.dp_sync.exposed_s,
                r.dp_sync.bytes_per_step / 1e9
            ),
        ),
        ("peak memory", format!("{:.2} GiB", r.peak_memory_gib)),
        ("goodput", format!("{:.2} %", 100.0 * r.goodput)),
        (
            "checkpoints",
            match r.faults.interval_steps {
                Some(i) => format!("{} every {i} steps", r.faults.checkpoint),
                None => "none".to_string(),
            },
        ),
        (
            "time to train",
            format!("{:.2} h ({} steps)", r.time_to_train_s / 3600.0, r.steps),
        ),
    ];
    for (k, v) in rows {
        let _ = writeln!(s, "  {k:<16} {v}");
    }
    let _ = writeln!(
        s,
        "  {:<6} {:>6} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "device", "layers", "busy s", "mem GiB", "weights", "optim", "activ", "in-flight"
    );
    for d in &r.devices {
        let _ = writeln!(
            s,
            "  {:<6} {:>6} {:>9.3} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            d.device,
            d.layers,
            d.busy_s,
            d.peak_memory_gib,
            d.weights_gib,
            d.optimizer_gib,
            d.activations_gib,
            d.peak_in_flight
        );
    }
    s
}

fn pass_name(p: Pass) -> &'static str {
    match p {
        Pass::F => "F",
        Pass::B => "B",
        Pass::W => "W",
    }
}

/// Chrome trace-event JSON (opens in Perfetto): process 0, one thread per
/// pipeline device; each pass is a complete event named by its pass and
/// micro-batch, with its virtual stage in `args`; the exposed data-parallel
/// synchronisation and the optimizer step follow each device's last pass.
pub fn trace_json(run: &TrainRun) -> String {
    #[derive(serde::Serialize)]
    struct Event<'a> {
        name: String,
        cat: &'a str,
        ph: &'a str,
        ts: f64,
        dur: f64,
        pid: u32,
        tid: u32,
        args: serde_json::Value,
    }
    let us = 1e6;
    let mut events = Vec::new();
    let mut meta = Vec::new();
    for (d, ran) in run.timeline.devices.iter().enumerate() {
        meta.push(serde_json::json!({
            "name": "thread_name", "ph": "M", "pid": 0, "tid": d,
            "args": {"name": format!("device {d} (pipeline rank)")}
        }));
        for r in ran {
            events.push(Event {
                name: format!("{}{}", pass_name(r.task.pass), r.task.micro_batch),
                cat: pass_name(r.task.pass),
                ph: "X",
                ts: r.start * us,
                dur: (r.end - r.start) * us,
                pid: 0,
                tid: d as u32,
                args: serde_json::json!({"stage": r.task.stage, "micro_batch": r.task.micro_batch}),
            });
        }
        let end = ran.last().map_or(0.0, |r| r.end);
        let dev = &run.report.devices[d];
        if dev.dp_exposed_s > 0.0 {
            events.push(Event {
                name: format!("dp sync ({})", run.report.dp_sync.method),
                cat: "comm",
                ph: "X",
                ts: end * us,
                dur: dev.dp_exposed_s * us,
                pid: 0,
                tid: d as u32,
                args: serde_json::json!({"exposed_s": dev.dp_exposed_s}),
            });
        }
        events.push(Event {
            name: "optimizer step".into(),
            cat: "optimizer",
            ph: "X",
            ts: (end + dev.dp_exposed_s) * us,
            dur: dev.optimizer_step_s * us,
            pid: 0,
            tid: d as u32,
            args: serde_json::Value::Null,
        });
    }
    let mut all: Vec<serde_json::Value> = meta;
    all.extend(
        events
            .iter()
            .map(|e| serde_json::to_value(e).expect("an event serializes")),
    );
    serde_json::to_string(&serde_json::json!({ "traceEvents": all, "displayTimeUnit": "ms" }))
        .expect("a trace serializes")
}

/// A self-contained HTML page: the summary, the schedule drawn as one row
/// of F/B/W boxes per device, and the per-device memory table.
pub fn report_html(run: &TrainRun) -> String {
    let r = &run.report;
    let span = run
        .timeline
        .devices
        .iter()
        .zip(&r.devices)
        .map(|(ran, d)| ran.last().map_or(0.0, |x| x.end) + d.dp_exposed_s + d.optimizer_step_s)
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let (width, row) = (1200.0, 22.0);
    let height = row * run.timeline.devices.len() as f64 + 10.0;
    let mut svg =
        format!("<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' font-size='10'>");
    for (d, ran) in run.timeline.devices.iter().enumerate() {
        let y = d as f64 * row + 5.0;
        for x in ran {
            let color = match x.task.pass {
                Pass::F => "#4e79a7",
                Pass::B => "#59a14f",
                Pass::W => "#edc948",
            };
            let (x0, w) = (x.start / span * width, (x.end - x.start) / span * width);
            let _ = write!(
                svg,
                "<rect x='{x0:.2}' y='{y}' width='{w:.2}' height='{}' fill='{color}' stroke='#fff' stroke-width='0.3'>\
                 <title>{}{} stage {} {:.4}–{:.4} s</title></rect>",
                row - 4.0,
                pass_name(x.task.pass),
                x.task.micro_batch,
                x.task.stage,
                x.start,
                x.end
            );
        }
    }
    svg.push_str("</svg>");
    let mut rows = String::new();
    for d in &r.devices {
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{:.3}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{:.2}</td></tr>",
            d.device,
            d.layers,
            d.busy_s,
            d.peak_memory_gib,
            d.weights_gib,
            d.gradients_gib,
            d.optimizer_gib,
            d.activations_gib
        );
    }
    format!(
        "<!doctype html><html><head><meta charset='utf-8'><title>fleetsim train: {name}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:right}}</style></head><body>\
         <h1>{name}</h1><p>{model} on {gpus} × {device}; {schedule}, {m} micro-batches</p>\
         <pre>{table}</pre><h2>Schedule (blue F, green B, yellow W)</h2>{svg}\
         <h2>Memory per device (GiB)</h2><table><tr><th>device</th><th>layers</th><th>busy s</th><th>peak</th>\
         <th>weights</th><th>gradients</th><th>optimizer</th><th>activations</th></tr>{rows}</table></body></html>",
        name = html_escape(&r.name),
        model = html_escape(&r.model),
        gpus = r.gpus,
        device = html_escape(&r.device),
        schedule = r.schedule,
        m = r.micro_batches,
        table = html_escape(&to_table(r)),
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
