//! The capacity-search variant of the HTML report (`fleetsim search
//! --report`): the search's facts, the Pareto plot of cost against capacity
//! and the top-plans table, built from plain data ([`SearchInput`]) so any
//! search front end only has to fill it in. Shares the page, the styles and
//! the embedded-JSON conventions of the run report (see the parent module).

use super::{f, facts_table, figure, page};
use crate::error::Result;
use crate::output::svg::{self, Series, Style, XyChart, esc};
use serde::Serialize;
use serde_json::json;
use std::fmt::Write as _;
use std::path::Path;

/// One candidate deployment of a capacity search.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchPlan {
    /// Short description, e.g. "4× H100-SXM, TP2 PP1, vllm".
    pub name: String,
    /// Devices the plan uses in total.
    pub gpus: u32,
    /// Cost in `SearchInput::cost_unit` (e.g. dollars per hour).
    pub cost: f64,
    /// Highest request rate (req/s) at which the plan meets the SLO.
    pub capacity_rps: f64,
    /// TTFT and TPOT at that rate, ms (at the SLO percentile).
    pub ttft_ms: f64,
    pub tpot_ms: f64,
    /// On the cost–capacity Pareto front (no other plan is cheaper and at least as capable).
    pub pareto: bool,
}

/// Everything the search report shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SearchInput {
    /// Page title, e.g. "Llama-3-70B at p90 TTFT ≤ 2 s".
    pub title: String,
    /// Facts shown above the plot (model, SLO, workload, search space...).
    pub facts: Vec<(String, String)>,
    /// Unit of `SearchPlan::cost`, e.g. "$/h" or "GPUs".
    pub cost_unit: String,
    /// Every evaluated plan, best first (the table shows them in this order).
    pub plans: Vec<SearchPlan>,
    /// How many plans the table lists (0 = all).
    pub top: usize,
}

/// The HTML report of a capacity search: facts, the Pareto plot (cost vs
/// capacity: every plan as a grey point, the front as a line) and the
/// top-plans table. Plain data in, so any search front end can call it.
pub fn search_report(input: &SearchInput) -> String {
    let mut body = String::new();
    let _ = writeln!(body, "<h1>{}</h1>", esc(&input.title));
    let n_pareto = input.plans.iter().filter(|p| p.pareto).count();
    let _ = writeln!(
        body,
        "<p class=\"sub\">{} plans evaluated, {} on the cost–capacity Pareto front</p>",
        input.plans.len(),
        n_pareto
    );
    body.push_str("<h2 id=\"search\">Search</h2>\n");
    body.push_str(&facts_table(&input.facts));

    let cost_label = format!("cost ({})", input.cost_unit);
    let all: Vec<(f64, f64)> = input.plans.iter().map(|p| (p.cost, p.capacity_rps)).collect();
    let mut front: Vec<(f64, f64)> = input
        .plans
        .iter()
        .filter(|p| p.pareto)
        .map(|p| (p.cost, p.capacity_rps))
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    let mut plans_series = Series::line("evaluated plans", all);
    plans_series.style = Style::Markers;
    plans_series.color = Some("#999999");
    let mut front_series = Series::line("Pareto front", front.clone());
    front_series.style = Style::LineMarkers;
    front_series.color = Some("#0072B2");
    body.push_str("<h2 id=\"pareto\">Cost vs capacity</h2>\n<div class=\"grid\">\n");
    body.push_str(&figure(
        svg::xy_chart(&XyChart {
            id: "pareto".into(),
            title: "Cost vs capacity".into(),
            x_label: cost_label.clone(),
            y_label: "capacity (req/s meeting the SLO)".into(),
            series: vec![plans_series, front_series],
            y_from_zero: true,
            x_from_zero: true,
            y_range: None,
        }),
        "Each point is a plan; the line joins the plans no other plan beats on both cost and capacity.",
    ));
    body.push_str("</div>\n");

    let shown = if input.top == 0 {
        input.plans.len()
    } else {
        input.top.min(input.plans.len())
    };
    let _ = writeln!(body, "<h2 id=\"plans\">Top {shown} plans</h2>");
    let _ = writeln!(
        body,
        "<table class=\"plans\">\n<tr><th>#</th><th class=\"l\">plan</th><th>GPUs</th><th>{}</th><th>capacity (req/s)</th>\
         <th>req/s per {}</th><th>TTFT (ms)</th><th>TPOT (ms)</th><th>Pareto</th></tr>",
        esc(&cost_label),
        esc(&input.cost_unit)
    );
    for (i, p) in input.plans.iter().take(shown).enumerate() {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            esc(&p.name),
            p.gpus,
            f(p.cost, 2),
            f(p.capacity_rps, 3),
            if p.cost > 0.0 {
                f(p.capacity_rps / p.cost, 4)
            } else {
                "—".into()
            },
            f(p.ttft_ms, 2),
            f(p.tpot_ms, 2),
            if p.pareto { "★" } else { "" }
        );
    }
    body.push_str("</table>\n");
    let data = json!({
        "kind": "search",
        "input": serde_json::to_value(input).expect("search input serialises"),
        "charts": {"pareto": {"cost": front.iter().map(|p| p.0).collect::<Vec<_>>(),
                              "capacity_rps": front.iter().map(|p| p.1).collect::<Vec<_>>()}},
    });
    page(&input.title, &body, &data)
}

/// Writes [`search_report`] to `path` (parent folders created).
pub fn write_search_report(input: &SearchInput, path: &Path) -> Result<()> {
    crate::output::write_file(path, search_report(input).as_bytes())
}
