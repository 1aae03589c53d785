//! The cross-check section of summary.md (nothing when there was no cross-check).

use std::fmt::Write as _;

use super::CrossCheckItem;

/// A markdown section, or "" when `items` is empty.
pub fn markdown(items: &[CrossCheckItem]) -> String {
    if items.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n**Client vs server** (Prometheus, whole run)\n\n| compared | server | client | server value | tolerance | result |\n|---|---|---|---|---|---|\n",
    );
    for i in items {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | ±{} | {} |",
            i.what,
            i.server_source,
            value(i.client, &i.unit),
            value(i.server, &i.unit),
            value(Some(i.tolerance), &i.unit),
            match i.status.as_str() {
                "disagree" => "**disagree**",
                s => s,
            }
        );
    }
    if items.iter().any(|i| !i.note.is_empty()) {
        out.push('\n');
    }
    for i in items.iter().filter(|i| !i.note.is_empty()) {
        let _ = writeln!(out, "- {} ({}): {}", i.what, i.server_source, i.note);
    }
    out
}

fn value(v: Option<f64>, unit: &str) -> String {
    match (v, unit) {
        (None, _) => "—".into(),
        (Some(v), "ratio") => format!("{:.2} %", v * 100.0),
        (Some(v), "ms") => format!("{v:.1} ms"),
        (Some(v), u) => format!("{v} {u}"),
    }
}
