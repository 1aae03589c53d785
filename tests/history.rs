//! The run history (`--history`): what a run stores in SQLite and PostgreSQL, concurrent
//! writers losing nothing, a corrupt, locked or unreachable store failing the run with
//! exit 3 after its reports are written, `slo-check history`, and regression detection
//! (`--baseline history`) over real repeated runs.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use slo_check::history::{self, Location};

use crate::support::common::{Run, Server, closed_port, get_scenario, respond, slo_check};
use crate::support::postgres::PgServer;

/// One second of 20 GETs a second, with a latency SLO.
fn scenario() -> String {
    scenario_of(1, 20)
}

/// `secs` seconds of `rate` GETs a second, with a latency SLO.
fn scenario_of(secs: u32, rate: u32) -> String {
    get_scenario(
        "/x",
        &format!("{{ arrival: constant, stages: [ {{ for: {secs}s, rate: {rate} }} ] }}"),
        "[ { name: p95, metric: latency.p95, max: 2s } ]",
    )
}

/// A server answering after `delay_ms` (changeable while it runs).
fn slow_server(delay_ms: Arc<AtomicU64>) -> Server {
    Server::http(move |_req| {
        let d = delay_ms.load(Ordering::SeqCst);
        async move {
            tokio::time::sleep(Duration::from_millis(d)).await;
            respond(200, "ok")
        }
    })
}

fn ok_server() -> Server {
    Server::http(|_req| async { respond(200, "ok") })
}

fn history_json(store: &str, extra: &[&str]) -> Value {
    let out = slo_check()
        .args(["history", "--json", "--history", store])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `n` `slo-check run` processes started at once, all recording into `store`.
fn concurrent_runs(server: &Server, store: &str, n: usize) {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("s.yaml");
    std::fs::write(&yaml, scenario()).unwrap();
    let children: Vec<_> = (0..n)
        .map(|i| {
            Command::new(assert_cmd::cargo::cargo_bin("slo-check"))
                .args([
                    "run",
                    "-q",
                    "--platform",
                    "url",
                    "--target-url",
                    &server.url(),
                ])
                .arg("--scenario")
                .arg(&yaml)
                .arg("--out")
                .arg(dir.path().join(format!("out{i}")))
                .args(["--history", store, "--label", &format!("job={i}")])
                .env_remove("SLO_CHECK_HISTORY")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a concurrent run failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// `threads` × `each` records inserted at once, each thread through its own connection.
fn concurrent_inserts(store: &str, threads: usize, each: usize) {
    let location = Location::parse(store).unwrap();
    let report: slo_check::report::RunReport = crate::support::sample::spike();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (location, report) = (&location, &report);
            s.spawn(move || {
                let mut st = history::open(location).unwrap();
                for i in 0..each {
                    let labels = [("writer".to_string(), format!("{t}-{i}"))].into();
                    let rec = history::record::of_run(report, &labels, None);
                    st.insert(&rec).unwrap();
                }
            });
        }
    });
}

#[test]
fn a_run_stores_its_summary_labels_slos_percentiles_and_histograms() {
    let server = ok_server();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.sqlite");
    let store = format!("sqlite:{}", db.display());
    let run = Run::new(&scenario(), &server.url())
        .arg("--history")
        .arg(store.clone())
        .args_label("commit=abc123")
        .args_label("version=1.4")
        .exec();
    run.expect_code(0);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn
        .query_row("SELECT MAX(version) FROM schema_migrations", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(version, 1);
    let (scenario, verdict, hist, summary): (String, String, String, String) = conn
        .query_row(
            "SELECT scenario, verdict, histograms, summary FROM runs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap();
    assert_eq!((scenario.as_str(), verdict.as_str()), ("t", "pass"));
    let hist: Value = serde_json::from_str(&hist).unwrap();
    assert_eq!(hist["workflow"], run.report()["histograms"]["workflow"]);
    let summary: Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(summary["counts"]["started"], 20);

    let listed = history_json(&store, &[]);
    let r = &listed["runs"][0];
    assert_eq!(r["labels"]["commit"], "abc123");
    assert_eq!(r["labels"]["version"], "1.4");
    let names: Vec<&str> = r["observations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    for want in [
        "workflow p50",
        "workflow p95",
        "workflow p99",
        "step get p95",
        "failure rate",
        "achieved rate",
        "SLO p95",
        "SLO load delivered",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let p95 = r["observations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "SLO p95")
        .unwrap();
    assert_eq!(p95["value"], run.report()["workflow"]["latency_ms"]["p95"]);
}

#[test]
fn concurrent_writers_to_one_sqlite_file_lose_nothing() {
    let server = ok_server();
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("h.sqlite").display());
    // Four CI jobs on a file none of them has created yet: the migration runs once.
    concurrent_runs(&server, &store, 4);
    concurrent_inserts(&store, 4, 25);
    let runs = history_json(&store, &["--last", "0"])["runs"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(runs, 4 + 100);
}

#[test]
fn a_corrupt_store_costs_no_reports_but_exits_3_naming_it() {
    let server = ok_server();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.sqlite");
    std::fs::write(
        &db,
        b"this is not an SQLite database, just bytes ".repeat(200),
    )
    .unwrap();
    let run = Run::new(&scenario(), &server.url())
        .arg("--history")
        .arg(format!("sqlite:{}", db.display()))
        .exec();
    run.expect_code(3);
    assert_eq!(run.report()["verdict"], "pass", "the reports were written");
    assert!(
        run.stderr
            .contains(&format!("history sqlite:{}", db.display()))
            && run.stderr.contains("not a database")
            && run.stderr.contains("the run was not recorded"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_locked_store_fails_after_its_timeout_with_the_reports_written() {
    let server = ok_server();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.sqlite");
    let store = format!("sqlite:{}", db.display());
    drop(history::open(&Location::parse(&store).unwrap()).unwrap());
    let holder = rusqlite::Connection::open(&db).unwrap();
    holder.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let run = Run::new(&scenario(), &server.url())
        .arg("--history")
        .arg(store)
        .env("SLO_CHECK_HISTORY_BUSY_TIMEOUT", "1s")
        .exec();
    run.expect_code(3);
    assert!(run.out.join("run.json").exists());
    assert!(run.stderr.contains("database is locked"), "{}", run.stderr);
    holder.execute_batch("ROLLBACK").unwrap();
}

#[test]
fn an_unreachable_postgres_costs_no_reports_but_exits_3_naming_it() {
    let server = ok_server();
    let url = format!("postgres://slo:pw@127.0.0.1:{}/none", closed_port());
    let run = Run::new(&scenario(), &server.url())
        .arg("--history")
        .arg(url.clone())
        .exec();
    run.expect_code(3);
    assert!(run.out.join("run.json").exists());
    assert!(
        run.stderr.contains("history postgres://slo:***@127.0.0.1:")
            && !run.stderr.contains(":pw@"),
        "names the store, hides the password: {}",
        run.stderr
    );
}

#[test]
fn postgres_history_records_concurrent_writers_and_lists_them() {
    let Some(pg) = PgServer::start() else { return };
    let server = ok_server();
    concurrent_runs(&server, &pg.url(), 4);
    concurrent_inserts(&pg.url(), 4, 25);
    let listed = history_json(&pg.url(), &["--last", "0"]);
    let runs = listed["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 4 + 100);
    let jobs: std::collections::BTreeSet<&str> = runs
        .iter()
        .filter_map(|r| r["labels"]["job"].as_str())
        .collect();
    assert_eq!(jobs.len(), 4, "{jobs:?}");
    let compare = slo_check()
        .args(["history", "compare", "1", "2", "--history", &pg.url()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&compare.stdout);
    assert!(
        compare.status.success() && text.contains("workflow p95"),
        "{text}"
    );
}

/// Runs at one latency (40 ms) flag nothing; after the server slows down (120 ms), the
/// first or second run flags the p95 step, and --fail-on-regression turns it into exit 1.
#[test]
fn repeated_runs_flag_nothing_until_the_target_slows_down() {
    let delay = Arc::new(AtomicU64::new(40));
    let server = slow_server(delay.clone());
    let dir = tempfile::tempdir().unwrap();
    let store = format!("sqlite:{}", dir.path().join("h.sqlite").display());
    // 50 requests a run, so one scheduling hiccup of a loaded machine moves p95 less.
    let judged = |extra: &[&str]| {
        let mut run = Run::new(&scenario_of(2, 25), &server.url())
            .args_label("x=y")
            .arg("--history")
            .arg(store.clone())
            .arg("--baseline")
            .arg("history");
        for e in extra {
            run = run.arg(*e);
        }
        run.exec()
    };
    for i in 0..8 {
        let run = judged(&["--fail-on-regression"]);
        run.expect_code(0);
        let h = &run.report()["history"];
        assert_eq!(h["runs"], i, "{h:#}");
        assert_eq!(h["regressions"], 0, "run {i}: {h:#}");
    }
    delay.store(120, Ordering::SeqCst);
    let first = judged(&[]);
    first.expect_code(0);
    let second = judged(&["--fail-on-regression"]);
    let flagged = |r: &Value| {
        r["history"]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["name"] == "workflow p95" && m["regression"] == true)
    };
    assert!(
        flagged(&first.report()) || flagged(&second.report()),
        "{:#}",
        second.report()["history"]
    );
    second.expect_code(1);
    assert!(second.file("summary.md").contains("**REGRESSION**"));
    let junit = second.file("junit.xml");
    assert!(junit.contains("history: workflow p95"), "{junit}");
    assert!(
        second
            .file("report.html")
            .contains("Compared with the history")
    );
    assert!(
        second.stderr.is_empty() || !second.stderr.contains("error"),
        "{}",
        second.stderr
    );
}

/// `--baseline history` without a store to read, and a bad --label, are usage errors.
#[test]
fn history_flags_are_checked_before_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = dir.path().join("s.yaml");
    std::fs::write(&yaml, scenario()).unwrap();
    let run = |args: &[&str]| {
        slo_check()
            .args([
                "run",
                "-q",
                "--platform",
                "url",
                "--target-url",
                "http://127.0.0.1:1",
            ])
            .arg("--scenario")
            .arg(&yaml)
            .arg("--out")
            .arg(dir.path().join("out"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--baseline", "history"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--history URL"));
    let out = run(&["--history", "sqlite:x.db", "--label", "nokey"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("KEY=VALUE"));
    let out = run(&["--history", "mysql://x"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!Path::new("x.db").exists());
}

/// report.html's trend chart: only with a history section; three panels (workflow p95,
/// failure rate, each SLO's margin to its threshold), this run circled in each, each
/// metric's change point dashed in its colour, regressions named.
#[test]
fn the_trend_chart_is_drawn_from_the_history_section() {
    use slo_check::report::charts::palette;
    use slo_check::report::charts::trend::{margin_pct, trend};
    use slo_check::report::model::Worse;
    use slo_check::report::trend::HistoryReport;
    use slo_check::scenario::Unit;
    let mut r = crate::support::sample::spike();
    assert_eq!(trend(&r).unwrap(), None);
    let step = |name: &str, unit, worse, from: f64, to: f64| {
        let mut series = vec![from; 20];
        series.push(to);
        history::regress::trend(name, unit, worse, Some(to), series, true, 0.1)
    };
    // p95 steps up 25 % at this run: a regression. The failure rate stays flat. The p99
    // SLO (threshold 1200 ms) steps from 600 to 1500 ms: its margin from +50 % to −25 %.
    let p95 = step("workflow p95", Unit::Ms, Worse::Higher, 800.0, 1000.0);
    let failures = step("failure rate", Unit::Ratio, Worse::Higher, 0.01, 0.01);
    let p99 = step("SLO workflow p99", Unit::Ms, Worse::Higher, 600.0, 1500.0);
    assert!(p95.regression && p99.regression && !failures.regression);
    let p99_slo = r.slos.iter().find(|s| s.name == "workflow p99").unwrap();
    assert_eq!(margin_pct(p99_slo, 600.0), 50.0);
    assert_eq!(margin_pct(p99_slo, 1500.0), -25.0);
    let delivered = r.slos.iter().find(|s| s.name == "load delivered").unwrap();
    assert!(margin_pct(delivered, delivered.threshold * 1.1) > 9.9);
    let history = |metrics: Vec<_>| HistoryReport {
        store: "sqlite:h".into(),
        runs: 20,
        method: "m".into(),
        max_pvalue: 0.001,
        min_effect: 0.1,
        regressions: 2,
        metrics,
        notes: Vec::new(),
    };
    r.history = Some(history(vec![p95.clone(), failures.clone(), p99.clone()]));
    let svg = trend(&r).unwrap().expect("a chart");
    assert!(
        svg.contains("Trend over the last 21 runs (this run last, circled): 2 regressions"),
        "{svg}"
    );
    for text in [
        "workflow p95 (ms)",
        "failure rate (%)",
        "SLO margins to this run&apos;s thresholds",
        "workflow p99 (regression)",
        "workflow p95 (regression)",
        "threshold (margin 0; below fails)",
        "newest change point",
    ] {
        assert!(
            svg.contains(text) || svg.contains(&text.replace("&apos;", "'")),
            "{text} missing in {svg}"
        );
    }
    // Three panels: the canvas is taller than one chart.
    assert!(svg.contains("height=\"940\""), "{}", &svg[..200]);
    // Each change point is a dashed line in its metric's colour: without them, fewer
    // segments of the p95 colour.
    let mut plain = r.clone();
    if let Some(h) = plain.history.as_mut() {
        for m in &mut h.metrics {
            m.change_at = None;
        }
    }
    let without = trend(&plain).unwrap().unwrap();
    let p95_colour = palette::hex(palette::P95);
    assert!(svg.matches(&p95_colour).count() > without.matches(&p95_colour).count());
    // Without SLO series, two panels; without any, no chart.
    r.history = Some(history(vec![p95, failures]));
    let two = trend(&r).unwrap().unwrap();
    assert!(two.contains("height=\"640\"") && !two.contains("SLO margins"));
    r.history = Some(history(Vec::new()));
    assert_eq!(trend(&r).unwrap(), None);
    r.history = Some(history(vec![p99]));
    let charts = slo_check::report::charts::Charts::render(&r).unwrap();
    let html = slo_check::report::html::render(&r, &charts);
    assert!(html.contains("Trend over the last 21 runs"), "{html}");
}
