//! Plan time (µs after the run's zero, already time-scaled) to wall-clock time, which is
//! what Prometheus stores; and the expansion of PromQL SLOs' window variables: `${window}`
//! (with brackets) and Grafana's `$__range`, `$__range_s`, `$__range_ms` (without).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

/// The run's zero on the wall clock.
#[derive(Debug, Clone, Copy)]
pub struct RunClock {
    /// Plan time 0 as unix seconds.
    pub zero_unix_s: f64,
    /// `--time-scale` (for messages; plan times are already scaled).
    pub time_scale: f64,
}

impl RunClock {
    /// The wall-clock time of `zero` (a monotonic instant), read now.
    pub fn new(zero: Instant, time_scale: f64) -> RunClock {
        let now_wall = SystemTime::now();
        let now = Instant::now();
        let zero_wall = if zero <= now {
            now_wall - now.duration_since(zero)
        } else {
            now_wall + zero.duration_since(now)
        };
        RunClock::at(zero_wall, time_scale)
    }

    /// A clock whose zero is `zero_wall`.
    pub fn at(zero_wall: SystemTime, time_scale: f64) -> RunClock {
        RunClock {
            zero_unix_s: unix_s(zero_wall),
            time_scale,
        }
    }

    /// Plan time `us` as unix seconds.
    pub fn unix_s(&self, us: u64) -> f64 {
        self.zero_unix_s + us as f64 / 1e6
    }

    /// Now, as whole unix seconds (rounded down: never in Prometheus's future).
    pub fn now_unix_s(&self) -> i64 {
        unix_s(SystemTime::now()).floor() as i64
    }
}

fn unix_s(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64()
}

/// A window length as a PromQL range: whole seconds, rounded up, at least 1s.
pub fn promql_range(len: Duration) -> String {
    let secs = len.as_secs() + u64::from(len.subsec_nanos() > 0);
    format!("[{}s]", secs.max(1))
}

/// Replaces the window variables in `query`: `${window}` with the window's range in
/// brackets (`[90s]`); Grafana's `$__range` (or `${__range}`) with its length without
/// them (`90s`, so `rate(x[$__range])` reads as in a Grafana panel), `$__range_s` with
/// whole seconds (`90`) and `$__range_ms` with milliseconds (`90000`). The length is the
/// one [`promql_range`] gives: whole seconds, rounded up, at least 1 s. Validation
/// (`scenario::validate`) has already refused any other `$` variable.
pub fn expand_window(query: &str, len: Duration) -> String {
    let range = promql_range(len);
    let secs = &range[1..range.len() - 2];
    let ms = format!("{secs}000");
    // Longest names first: `$__range` is a prefix of `$__range_s` and `$__range_ms`.
    [
        ("${window}", range.as_str()),
        ("${__range_ms}", ms.as_str()),
        ("$__range_ms", ms.as_str()),
        ("${__range_s}", secs),
        ("$__range_s", secs),
        ("${__range}", &range[1..range.len() - 1]),
        ("$__range", &range[1..range.len() - 1]),
    ]
    .iter()
    .fold(query.to_string(), |q, (var, value)| q.replace(var, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_round_up_to_whole_seconds() {
        assert_eq!(promql_range(Duration::from_secs(90)), "[90s]");
        assert_eq!(promql_range(Duration::from_millis(1500)), "[2s]");
        assert_eq!(promql_range(Duration::from_millis(10)), "[1s]");
        assert_eq!(promql_range(Duration::ZERO), "[1s]");
    }

    #[test]
    fn window_expands_everywhere() {
        assert_eq!(
            expand_window(
                "sum(rate(a${window})) / sum(rate(b${window}))",
                Duration::from_secs(30)
            ),
            "sum(rate(a[30s])) / sum(rate(b[30s]))"
        );
        assert_eq!(expand_window("up", Duration::from_secs(3)), "up");
    }

    #[test]
    fn grafana_range_variables_expand_without_brackets() {
        let len = Duration::from_millis(89_500);
        assert_eq!(
            expand_window("sum(rate(a[$__range])) / sum(rate(b[${__range}]))", len),
            "sum(rate(a[90s])) / sum(rate(b[90s]))"
        );
        assert_eq!(
            expand_window("increase(a[$__range]) / $__range_s + $__range_ms", len),
            "increase(a[90s]) / 90 + 90000"
        );
        assert_eq!(
            expand_window("${__range_s} ${__range_ms}", Duration::ZERO),
            "1 1000"
        );
    }

    #[test]
    fn plan_time_maps_to_wall_time() {
        let c = RunClock::at(UNIX_EPOCH + Duration::from_secs(1000), 0.1);
        assert_eq!(c.unix_s(2_500_000), 1002.5);
    }
}
