//! `slo-check history`: the recorded runs with their trends as a table (or JSON), and
//! `history compare A B`. Exit 0, 2 on a bad flag, 3 when the store cannot be read.

use std::fmt::Write as _;

use crate::cli::{HistoryAction, HistoryCmdArgs};
use crate::exit;
use crate::history::{self, Filter, Location, StoredRun, regress};
use crate::report::format;
use crate::report::trend::MetricTrend;

/// The columns shown without --metric.
const DEFAULT_METRICS: [&str; 3] = ["workflow p95", "failure rate", "achieved rate"];

/// Run the command.
pub fn run(args: &HistoryCmdArgs) -> u8 {
    let location = match history::resolve(args.history.as_deref(), true) {
        Ok(Some(l)) => l,
        Ok(None) => return super::usage("--history off: there is no history to show"),
        Err(e) => return super::usage(&e),
    };
    if let Location::Sqlite(path) = &location {
        if !path.exists() {
            eprintln!(
                "error: history {location}: no such file (runs are recorded there by `slo-check run`; give --history URL for another store)"
            );
            return exit::INFRA;
        }
    }
    let result = match &args.action {
        Some(HistoryAction::Compare { a, b }) => compare(&location, *a, *b, args.json),
        None => list(&location, args),
    };
    match result {
        Ok(text) => {
            print!("{text}");
            exit::PASS
        }
        Err((code, e)) => {
            eprintln!("error: {e}");
            code
        }
    }
}

type Outcome = Result<String, (u8, String)>;

/// One measure of `compare`: name, A's value, B's, the relative change, the unit.
type Row = (
    String,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    crate::scenario::Unit,
);

fn list(location: &Location, args: &HistoryCmdArgs) -> Outcome {
    let filter = Filter {
        scenario: args.scenario.clone(),
        last: args.last,
        ..Filter::default()
    };
    let runs = history::with_store(location, |s| s.runs(&filter)).map_err(|e| (exit::INFRA, e))?;
    let metrics: Vec<String> = if args.metric.is_empty() {
        DEFAULT_METRICS.iter().map(|m| m.to_string()).collect()
    } else {
        args.metric.clone()
    };
    let trends: Vec<MetricTrend> = metrics.iter().map(|m| trend(&runs, m)).collect();
    if args.json {
        let json =
            serde_json::json!({ "store": location.to_string(), "runs": runs, "trends": trends });
        return Ok(serde_json::to_string_pretty(&json).unwrap_or_default() + "\n");
    }
    if runs.is_empty() {
        return Ok(format!(
            "no runs in {location}{}\n",
            match &args.scenario {
                Some(s) => format!(" for scenario {s:?}"),
                None => String::new(),
            }
        ));
    }
    Ok(table(&runs, &metrics, &trends))
}

/// One metric's series over `runs` (those with a value) and its newest change point.
fn trend(runs: &[StoredRun], metric: &str) -> MetricTrend {
    let obs = runs
        .iter()
        .flat_map(|r| &r.observations)
        .find(|o| o.name == metric);
    let (unit, worse) = obs.map_or(
        (
            crate::scenario::Unit::Number,
            crate::report::model::Worse::Higher,
        ),
        |o| (o.unit, o.worse),
    );
    let series: Vec<f64> = runs.iter().filter_map(|r| r.value(metric)).collect();
    let current = series.last().copied();
    regress::trend(metric, unit, worse, current, series, true, 0.0)
}

fn table(runs: &[StoredRun], metrics: &[String], trends: &[MetricTrend]) -> String {
    let mut header = vec![
        "run".to_string(),
        "scenario".into(),
        "started".into(),
        "verdict".into(),
    ];
    header.extend(metrics.iter().cloned());
    header.push("labels".into());
    let mut rows = vec![header];
    for run in runs {
        let mut row = vec![
            run.id.to_string(),
            run.scenario.clone(),
            run.started_at.clone(),
            run.verdict.to_uppercase(),
        ];
        for (m, t) in metrics.iter().zip(trends) {
            // The index of this run's value in the trend's series, to mark change points.
            let index = runs
                .iter()
                .take_while(|r| r.id != run.id)
                .filter(|r| r.value(m).is_some())
                .count();
            let cell = match run.value(m) {
                Some(v) => {
                    let mark = match t.change_at {
                        Some(at) if at == index => match (t.before_mean, t.after_mean) {
                            (Some(b), Some(a)) if a > b => " ▲",
                            (Some(_), Some(_)) => " ▼",
                            _ => "",
                        },
                        _ => "",
                    };
                    format!("{}{mark}", format::value(v, t.unit))
                }
                None => "—".into(),
            };
            row.push(cell);
        }
        row.push(
            run.labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" "),
        );
        rows.push(row);
    }
    let mut out = align(&rows);
    out.push('\n');
    for t in trends {
        let _ = writeln!(out, "{}", trend_line(t));
    }
    out.push_str("▲/▼: a change point (E-divisive means, t-test p < 0.001): the mean rose/fell from that run on\n");
    out
}

fn trend_line(t: &MetricTrend) -> String {
    match (t.change_at, t.before_mean, t.after_mean) {
        (Some(_), Some(_), Some(_)) => format!("trend: {}", t.text()),
        _ if t.series.is_empty() => format!("trend: {}: no values", t.name),
        _ => format!(
            "trend: {}: no change point over {} runs (mean {})",
            t.name,
            t.series.len(),
            t.before_mean
                .map_or("n/a".into(), |m| format::value(m, t.unit))
        ),
    }
}

fn align(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .map(|r| r.get(c).map_or(0, |s| s.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w - c.chars().count())))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

fn compare(location: &Location, a: i64, b: i64, json: bool) -> Outcome {
    let filter = Filter {
        ids: vec![a, b],
        ..Filter::default()
    };
    let runs = history::with_store(location, |s| s.runs(&filter)).map_err(|e| (exit::INFRA, e))?;
    let find = |id: i64| {
        runs.iter().find(|r| r.id == id).cloned().ok_or((
            exit::USAGE,
            format!("history {location}: no run {id} (`slo-check history` lists the ids)"),
        ))
    };
    let (ra, rb) = (find(a)?, find(b)?);
    let mut names: Vec<&str> = ra.observations.iter().map(|o| o.name.as_str()).collect();
    for o in &rb.observations {
        if !names.contains(&o.name.as_str()) {
            names.push(&o.name);
        }
    }
    let rows: Vec<Row> = names
        .iter()
        .map(|n| {
            let unit = ra
                .observations
                .iter()
                .chain(&rb.observations)
                .find(|o| o.name == *n)
                .map_or(crate::scenario::Unit::Number, |o| o.unit);
            let (va, vb) = (ra.value(n), rb.value(n));
            let change = match (va, vb) {
                (Some(x), Some(y)) if x != 0.0 => Some((y - x) / x.abs()),
                _ => None,
            };
            (n.to_string(), va, vb, change, unit)
        })
        .collect();
    if json {
        let deltas: Vec<_> = rows
            .iter()
            .map(|(n, va, vb, c, u)| serde_json::json!({"name": n, "unit": u, "a": va, "b": vb, "change": c}))
            .collect();
        let doc = serde_json::json!({"a": ra, "b": rb, "deltas": deltas});
        return Ok(serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n");
    }
    let v = |x: Option<f64>, u| x.map_or("—".to_string(), |x| format::value(x, u));
    let mut table = vec![vec![
        "measure".to_string(),
        format!("run {a}"),
        format!("run {b}"),
        "change".into(),
    ]];
    for (n, va, vb, c, u) in &rows {
        table.push(vec![
            n.clone(),
            v(*va, *u),
            v(*vb, *u),
            c.map_or("n/a".into(), |c| format!("{:+.1} %", c * 100.0)),
        ]);
    }
    let mut out = String::new();
    for r in [&ra, &rb] {
        let labels: Vec<String> = r.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let _ = writeln!(
            out,
            "run {}: {} started {} ({}, {}, time scale {}){}{}",
            r.id,
            r.scenario,
            r.started_at,
            r.verdict.to_uppercase(),
            r.platform,
            r.time_scale,
            if labels.is_empty() { "" } else { " " },
            labels.join(" ")
        );
    }
    out.push('\n');
    out.push_str(&align(&table));
    Ok(out)
}
