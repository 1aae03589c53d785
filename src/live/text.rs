//! A `Frame` in the Prometheus text exposition format 0.0.4 (`GET /metrics`).
//!
//! Written here rather than through prometheus-client's registry: the registry keeps
//! its own atomics and cannot hand its histograms back, while remote write must send the
//! very samples a scrape sees — one `Frame`, two encodings. `promtool check metrics`
//! validates the output in the tests.

use std::fmt::Write;

use super::series::Frame;

/// The `Content-Type` of the text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Render `frame`: `# HELP`, `# TYPE`, then each sample on a line.
pub fn render(frame: &Frame) -> String {
    let mut out = String::new();
    for f in &frame.families {
        let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(f.help));
        let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.as_str());
        for s in &f.samples {
            out.push_str(&s.name);
            if !s.labels.is_empty() {
                out.push('{');
                for (i, (k, v)) in s.labels.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                }
                out.push('}');
            }
            let _ = writeln!(out, " {}", value(s.value));
        }
    }
    out
}

/// A sample value as Prometheus writes it.
fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        v.to_string()
    }
}

/// A label value: backslash, double quote and line feed escaped.
fn escape_label(v: &str) -> String {
    v.replace('\\', r"\\")
        .replace('"', "\\\"")
        .replace('\n', r"\n")
}

/// A help text: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', r"\\").replace('\n', r"\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::live::series::{Family, Kind, Sample};

    #[test]
    fn labels_are_escaped_and_values_written_as_prometheus_does() {
        let frame = Frame {
            families: vec![Family {
                name: "slo_check_x_total".into(),
                help: "A \\ help.",
                kind: Kind::Counter,
                samples: vec![Sample {
                    name: "slo_check_x_total".into(),
                    labels: vec![("testid".into(), "a\"b\\c\nd".into())],
                    value: 3.0,
                }],
            }],
        };
        assert_eq!(
            render(&frame),
            "# HELP slo_check_x_total A \\\\ help.\n# TYPE slo_check_x_total counter\nslo_check_x_total{testid=\"a\\\"b\\\\c\\nd\"} 3\n"
        );
        assert_eq!(value(0.25), "0.25");
        assert_eq!(value(f64::INFINITY), "+Inf");
    }
}
