//! `promql`: the window variables of a PromQL SLO. `${window}` brings its own brackets
//! (`[90s]`); Grafana's `$__range` (and `$__range_s`, `$__range_ms`) do not. Any other
//! `$` variable, or `[${window}]`, is refused here with its column rather than sent to
//! Prometheus, whose answer ("missing unit character in duration") names neither.

/// The variables `prom::clock::expand_window` replaces, with and without braces.
const KNOWN: [&str; 4] = ["window", "__range", "__range_s", "__range_ms"];

/// Every problem with the variables of `query`, each naming its 1-based column.
pub(super) fn check_variables(query: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for (at, _) in query.match_indices('$') {
        let col = query[..at].chars().count() + 1;
        let rest = &query[at + 1..];
        let (name, braced, len) = match rest.strip_prefix('{') {
            Some(inner) => match inner.find('}') {
                Some(end) => (&inner[..end], true, end + 3),
                None => continue,
            },
            None => {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                (&rest[..end], false, end + 1)
            }
        };
        // A bare `$` not followed by a `__` name is PromQL's own (a regex's end anchor).
        if !braced && !name.starts_with("__") {
            continue;
        }
        let written = &query[at..at + len];
        if !KNOWN.contains(&name) {
            problems.push(format!(
                "column {col}: `{written}` is not a variable slo-check expands; it knows `${{window}}` (the window's range with its brackets, e.g. `rate(x${{window}})`) and Grafana's `$__range` (without them, e.g. `rate(x[$__range])`), `$__range_s` and `$__range_ms`"
            ));
            continue;
        }
        let before = query[..at].trim_end();
        let after = query[at + len..].trim_start();
        if name == "window" && before.ends_with('[') && after.starts_with(']') {
            problems.push(format!(
                "column {col}: `${{window}}` already includes the brackets (a 90 s window becomes `[90s]`), so `[${{window}}]` would send `[[90s]]`; write `rate(x${{window}})`, or as in Grafana `rate(x[$__range])`"
            ));
        } else if name == "__range" && !(before.ends_with('[') && after.starts_with(']')) {
            problems.push(format!(
                "column {col}: `{written}` is the window's length without brackets (`90s`); put it in a range, e.g. `rate(x[$__range])`, or use `${{window}}`, which brings its own"
            ));
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::check_variables;

    #[test]
    fn both_styles_pass() {
        for q in [
            "sum(rate(a${window})) / sum(rate(b${window}))",
            "sum(rate(a[$__range])) / sum(rate(b[ ${__range} ]))",
            "increase(a[$__range]) / $__range_s * 1000 / $__range_ms",
            r#"sum(rate(a{path=~"/api$"}[1m]))"#,
            "up",
        ] {
            assert_eq!(check_variables(q), Vec::<String>::new(), "{q}");
        }
    }

    #[test]
    fn window_in_brackets_is_located_and_explained() {
        let p = check_variables("sum(rate(http_requests_total[${window}]))");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].starts_with("column 30: "), "{}", p[0]);
        assert!(p[0].contains("already includes the brackets"), "{}", p[0]);
        assert!(p[0].contains("[$__range]"), "{}", p[0]);
    }

    #[test]
    fn range_outside_brackets_and_unknown_variables_are_refused() {
        let p = check_variables("rate(x$__range)");
        assert!(p[0].contains("without brackets"), "{p:?}");
        let p = check_variables("rate(x[$__rate_interval]) + ${job}");
        assert_eq!(p.len(), 2, "{p:?}");
        assert!(
            p[0].contains("`$__rate_interval` is not a variable"),
            "{p:?}"
        );
        assert!(p[1].contains("`${job}` is not a variable"), "{p:?}");
    }
}
