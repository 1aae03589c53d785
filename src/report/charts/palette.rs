//! One colour per series, shared by every chart and the HTML page, so "p95"
//! or "timeout" reads the same wherever it appears.

use plotters::style::RGBColor;

/// Text and axes.
pub const INK: RGBColor = RGBColor(0x33, 0x33, 0x33);
/// Secondary text (notes, off-scale hints).
pub const MUTED: RGBColor = RGBColor(0x6B, 0x72, 0x80);
/// Minor grid lines.
pub const GRID_LIGHT: RGBColor = RGBColor(0xF1, 0xF3, 0xF5);
/// Major grid lines.
pub const GRID_BOLD: RGBColor = RGBColor(0xDD, 0xE1, 0xE6);

/// Workflow latency percentiles over time (and their markers on the spectrum).
pub const P50: RGBColor = RGBColor(0x4C, 0x78, 0xA8);
pub const P95: RGBColor = RGBColor(0xF5, 0x85, 0x18);
pub const P99: RGBColor = RGBColor(0xB0, 0x25, 0x4F);
/// An SLO threshold that is not on p50/p95/p99.
pub const THRESHOLD: RGBColor = RGBColor(0x33, 0x33, 0x33);

/// Start rates.
pub const TARGET_RATE: RGBColor = RGBColor(0x7F, 0x7F, 0x7F);
pub const ACHIEVED_RATE: RGBColor = RGBColor(0x54, 0xA2, 0x4B);

/// Dropped starts (shown with the failures).
pub const DROPPED: RGBColor = RGBColor(0x2B, 0x2B, 0x2B);

/// Replica counts.
pub const DESIRED: RGBColor = RGBColor(0x75, 0x70, 0xB3);
pub const CURRENT: RGBColor = RGBColor(0xA6, 0xA6, 0xA6);
pub const READY: RGBColor = RGBColor(0x1B, 0x9E, 0x77);

/// Fault windows: the band's fill (drawn translucent) and its label.
pub const FAULT: RGBColor = RGBColor(0xF2, 0xB1, 0x34);
pub const FAULT_TEXT: RGBColor = RGBColor(0x8A, 0x5A, 0x00);

/// The whole-run workflow latency on the spectrum.
pub const WORKFLOW: RGBColor = RGBColor(0x1F, 0x3B, 0x73);
/// Steps on the spectrum, in step-name order.
const STEPS: [RGBColor; 5] = [
    RGBColor(0x17, 0xBE, 0xCF),
    RGBColor(0x8C, 0x56, 0x4B),
    RGBColor(0xBC, 0xBD, 0x22),
    RGBColor(0xE3, 0x77, 0xC2),
    RGBColor(0x7F, 0x7F, 0x7F),
];

/// The colour of a failure kind (the kinds of `stats::FailureKind`).
pub fn failure_kind(kind: &str) -> RGBColor {
    match kind {
        "status" => RGBColor(0xE4, 0x57, 0x56),
        "overloaded" => RGBColor(0xF2, 0x8E, 0x2B),
        "timeout" => RGBColor(0xB2, 0x79, 0xA2),
        "connect" => RGBColor(0x9D, 0x75, 0x5D),
        "expectation" => RGBColor(0xEE, 0xCA, 0x3B),
        "poll_timeout" => RGBColor(0xFF, 0x9D, 0xA6),
        _ => RGBColor(0x79, 0x70, 0x6E),
    }
}

/// The colour of the i-th step.
pub fn step(i: usize) -> RGBColor {
    STEPS[i % STEPS.len()]
}

/// The colour of a workflow latency statistic (`p50`, `p95`, `p99`), if it has one.
pub fn percentile(stat: &str) -> Option<RGBColor> {
    match stat {
        "p50" => Some(P50),
        "p95" => Some(P95),
        "p99" => Some(P99),
        _ => None,
    }
}

/// `#RRGGBB`, as the SVG backend writes it (for the HTML page and tests).
pub fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}
