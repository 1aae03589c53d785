//! Reports people read (issue 4): report.html and its SVG charts, the
//! `slo-check report` re-render, baseline regressions in every format, and a
//! real browser (Debian's chromium, headless) rendering the page.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use assert_cmd::Command as BinCommand;
use slo_check::report::charts::{Charts, palette};
use slo_check::report::model::RunReport;
use slo_check::report::{baseline, html, input, write_all};

use crate::support::sample;
use slo_check::slo::{Status, Verdict};

/// The sample run with every SLO holding (so only a regression can fail it).
fn passing_sample() -> RunReport {
    let mut r = sample::spike();
    for s in &mut r.slos {
        if s.status == Status::Fail {
            s.threshold = s.observed.unwrap_or(s.threshold) * 2.0;
            s.status = Status::Pass;
        }
    }
    r.verdict = Verdict::Pass;
    r
}

fn write_json(r: &RunReport, path: &Path) {
    std::fs::write(path, serde_json::to_string_pretty(r).unwrap()).unwrap();
}

fn bin() -> BinCommand {
    BinCommand::cargo_bin("slo-check").unwrap()
}

/// Elements named `tag` whose attribute `attr` equals `value`.
fn count(doc: &roxmltree::Document, tag: &str, attr: &str, value: &str) -> usize {
    doc.descendants()
        .filter(|n| n.has_tag_name(tag) && n.attribute(attr) == Some(value))
        .count()
}

fn texts(doc: &roxmltree::Document) -> Vec<String> {
    doc.descendants()
        .filter(|n| n.has_tag_name("text"))
        .filter_map(|n| n.text().map(|t| t.trim().to_string()))
        .collect()
}

#[test]
fn every_chart_is_svg_and_holds_its_series() {
    let r = sample::spike();
    let charts = Charts::render(&r).unwrap();
    assert_eq!(charts.all().len(), 5);
    let hex = palette::hex;
    for c in charts.all() {
        let doc = roxmltree::Document::parse(&c.svg)
            .unwrap_or_else(|e| panic!("{} is not XML: {e}", c.file));
        assert_eq!(doc.root_element().tag_name().name(), "svg", "{}", c.file);
        if c.file != "spectrum.svg" {
            assert!(
                texts(&doc).iter().any(|t| t == "fault window"),
                "{}: fault legend",
                c.file
            );
            // The fault band is shaded on every time chart.
            assert!(
                count(&doc, "rect", "fill", &hex(palette::FAULT)) >= 1,
                "{}: fault band",
                c.file
            );
        }
    }

    let latency = roxmltree::Document::parse(&charts.latency.svg).unwrap();
    let labels = texts(&latency);
    for want in [
        "p50",
        "p95",
        "p99",
        "SLO workflow p95: ≤ 1.50 s",
        "SLO workflow p99: ≤ 1.20 s",
    ] {
        assert!(
            labels.iter().any(|t| t == want),
            "latency legend lacks {want:?}: {labels:?}"
        );
    }
    assert!(
        labels
            .iter()
            .any(|t| t == "latency from intended start (ms)")
    );
    assert!(labels.iter().any(|t| t == "time since start (s)"));
    // One long polyline per percentile (no gaps in the sample) ...
    for c in [palette::P50, palette::P95, palette::P99] {
        let long = latency
            .descendants()
            .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") == Some(&hex(c)))
            .filter(|n| n.attribute("points").unwrap().split_whitespace().count() > 100)
            .count();
        assert_eq!(long, 1, "series {}", hex(c));
    }
    // ... and the p99 threshold drawn as dashes: many short horizontal segments at one height.
    let dashes: Vec<String> = latency
        .descendants()
        .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") == Some(&hex(palette::P99)))
        .map(|n| n.attribute("points").unwrap().to_string())
        .filter(|p| p.split_whitespace().count() == 2)
        .collect();
    assert!(dashes.len() > 20, "threshold dashes: {}", dashes.len());
    let mut by_y = std::collections::HashMap::<&str, usize>::new();
    for p in &dashes {
        for xy in p.split_whitespace() {
            *by_y.entry(xy.split(',').nth(1).unwrap()).or_default() += 1;
        }
    }
    // Both ends of >20 dashes at one height: a horizontal line (the legend swatch adds 3 more elsewhere).
    assert!(
        by_y.values().any(|n| *n > 40),
        "the threshold is horizontal: {by_y:?}"
    );

    let failures = roxmltree::Document::parse(&charts.failures.svg).unwrap();
    let bars = count(
        &failures,
        "rect",
        "fill",
        &hex(palette::failure_kind("status")),
    );
    assert!(bars >= 20, "status bars in the fault window: {bars}");
    assert!(
        count(
            &failures,
            "rect",
            "fill",
            &hex(palette::failure_kind("timeout"))
        ) > 5
    );
    assert!(texts(&failures).iter().any(|t| t == "timeout"));

    let replicas = roxmltree::Document::parse(&charts.replicas.as_ref().unwrap().svg).unwrap();
    for c in [palette::DESIRED, palette::CURRENT, palette::READY] {
        // The legend swatch and the step line.
        assert_eq!(
            count(&replicas, "polyline", "stroke", &hex(c)),
            2,
            "replica series {}",
            hex(c)
        );
    }

    let spectrum = roxmltree::Document::parse(&charts.spectrum.as_ref().unwrap().svg).unwrap();
    let labels = texts(&spectrum);
    for want in [
        "0%",
        "50%",
        "90%",
        "99%",
        "99.9%",
        "percentile (log scale of 1/(1−q))",
        "latency (ms)",
    ] {
        assert!(
            labels.iter().any(|t| t == want),
            "spectrum lacks {want:?}: {labels:?}"
        );
    }
    for c in [palette::WORKFLOW, palette::step(0), palette::step(1)] {
        assert!(
            count(&spectrum, "polyline", "stroke", &hex(c)) >= 1,
            "spectrum curve {}",
            hex(c)
        );
    }
}

/// A fault window whose fault the platform did not inject is drawn, labelled so.
#[test]
fn a_fault_that_was_not_injected_is_labelled_so_in_the_charts() {
    let mut r = sample::spike();
    let charts = Charts::render(&r).unwrap();
    let label = |charts: &Charts| -> Vec<String> {
        let svg = &charts.replicas.as_ref().expect("a replica chart").svg;
        let doc = roxmltree::Document::parse(svg).unwrap();
        texts(&doc)
            .into_iter()
            .filter(|t| t.starts_with("fault: "))
            .collect()
    };
    assert_eq!(label(&charts), vec!["fault: aborts"]);
    r.faults[0].injected = false;
    let charts = Charts::render(&r).unwrap();
    assert_eq!(label(&charts), vec!["fault: aborts (not injected)"]);
}

#[test]
fn replicas_chart_is_left_out_without_a_replica_observer() {
    let mut r = sample::spike();
    r.replicas.clear();
    r.hpa = None;
    let charts = Charts::render(&r).unwrap();
    assert!(charts.replicas.is_none());
    let page = html::render(&r, &charts);
    assert!(page.contains("this platform has no replica observer"));
}

#[test]
fn report_html_is_self_contained() {
    let r = sample::spike();
    let page = html::render(&r, &Charts::render(&r).unwrap());
    let lower = page.to_lowercase();
    for banned in [
        "<script", "<link", "<img", "<iframe", "@import", "url(", "src=", "href=",
    ] {
        assert!(!lower.contains(banned), "report.html contains {banned:?}");
    }
    // The only URL on the page is the target, shown as text.
    let urls: Vec<&str> = page
        .match_indices("://")
        .map(|(i, _)| &page[i.saturating_sub(5)..i + 20])
        .collect();
    assert!(
        urls.iter().all(|u| u.contains("http://127.0.0.1:41234")),
        "{urls:?}"
    );
    assert_eq!(page.matches("<svg").count(), 5);
    for want in [
        "FAIL",
        "workflow p99",
        "Emulated platform",
        "seed",
        "time scale",
        "slo-check 0.1.0",
    ] {
        assert!(page.contains(want), "report.html lacks {want:?}");
    }
}

#[test]
fn report_command_re_renders_every_output_from_run_json() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run.json");
    write_json(&sample::spike(), &run);
    let out = dir.path().join("out");
    // The sample's verdict is fail, so the command exits 1 like the run did.
    bin()
        .args(["report", "-q"])
        .arg(&run)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(1);
    for f in [
        "run.json",
        "summary.md",
        "junit.xml",
        "report.html",
        "latency.svg",
        "rate.svg",
        "failures.svg",
        "replicas.svg",
        "spectrum.svg",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let again = std::fs::read_to_string(out.join("run.json")).unwrap();
    assert_eq!(
        again.trim_end(),
        serde_json::to_string_pretty(&sample::spike()).unwrap()
    );
    let svg = std::fs::read_to_string(out.join("latency.svg")).unwrap();
    assert!(
        svg.contains("xmlns=\"http://www.w3.org/2000/svg\""),
        "standalone SVG keeps its namespace"
    );
}

#[test]
fn report_command_names_a_bad_file_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.json");
    std::fs::write(&old, r#"{"schema_version": 99}"#).unwrap();
    let out = bin()
        .arg("report")
        .arg(&old)
        .assert()
        .code(2)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8_lossy(&out);
    assert!(
        err.contains("old.json") && err.contains("schema_version 99 is not supported"),
        "{err}"
    );

    let run = dir.path().join("run.json");
    write_json(&passing_sample(), &run);
    let out = bin()
        .arg("report")
        .arg(&run)
        .arg("--baseline")
        .arg(&old)
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(
        err.contains("--baseline") && err.contains("old.json"),
        "{err}"
    );

    let out = bin()
        .arg("report")
        .arg(&run)
        .args(["--max-regression", "lots"])
        .assert()
        .code(2);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("--max-regression"), "{err}");

    bin()
        .arg("report")
        .arg(dir.path().join("missing.json"))
        .assert()
        .code(2);
}

/// A baseline in which every workflow was 30 % faster than now.
fn faster_baseline() -> RunReport {
    let mut b = passing_sample();
    let l = &mut b.workflow.latency_ms;
    for v in [&mut l.p50, &mut l.p90, &mut l.p95, &mut l.p99, &mut l.p999] {
        *v = v.map(|x| x * 0.7);
    }
    for s in b
        .slos
        .iter_mut()
        .filter(|s| s.metric.starts_with("latency."))
    {
        s.observed = s.observed.map(|x| x * 0.7);
    }
    b.started_at = "2026-11-21T03:00:00Z".into();
    b
}

#[test]
fn a_regression_against_the_baseline_exits_1_and_shows_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let (run, old) = (dir.path().join("run.json"), dir.path().join("old.json"));
    write_json(&passing_sample(), &run);
    write_json(&passing_sample(), &old);
    // Against itself: no regression, the verdict passes.
    bin()
        .args(["report", "-q"])
        .arg(&run)
        .arg("--baseline")
        .arg(&old)
        .assert()
        .code(0);

    write_json(&faster_baseline(), &old);
    let out = dir.path().join("out");
    let assert = bin()
        .args(["report", "-q"])
        .arg(&run)
        .arg("--baseline")
        .arg(&old)
        .arg("--out")
        .arg(&out)
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&assert.get_output().stderr).to_string();
    assert!(err.contains("regressions against the baseline"), "{err}");

    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("## Compared with the baseline"), "{md}");
    assert!(
        md.contains("| workflow p95 |") && md.contains("**REGRESSION**"),
        "{md}"
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    roxmltree::Document::parse(&junit).unwrap();
    assert!(
        junit.contains("baseline: workflow p95") && junit.contains("type=\"regression\""),
        "{junit}"
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("Compared with the baseline") && html.contains("class=\"regressed\""));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    // p50, p90, p95, p99, p99.9 and the two latency SLOs.
    assert_eq!(json["baseline"]["regressions"], 7, "{}", json["baseline"]);

    // A looser threshold lets the same change through.
    bin()
        .args(["report", "-q"])
        .arg(&run)
        .arg("--baseline")
        .arg(&old)
        .args(["--max-regression", "50%"])
        .assert()
        .code(0);
}

#[test]
fn summary_and_junit_snapshots() {
    let current = sample::spike();
    let compared = baseline::compare(
        &current,
        &faster_baseline(),
        Path::new("last-good/run.json"),
        0.10,
    );
    let mut r = current;
    r.baseline = Some(compared);
    insta::assert_snapshot!("summary_md", slo_check::report::markdown::render(&r));
    insta::assert_snapshot!("junit_xml", slo_check::report::junit::render(&r).unwrap());
}

#[test]
fn run_json_shape_snapshot() {
    let mut r = sample::spike();
    r.baseline = Some(baseline::compare(
        &r,
        &faster_baseline(),
        Path::new("old.json"),
        0.10,
    ));
    let mut v = serde_json::to_value(&r).unwrap();
    // Shape, not bulk: one element of each array, histograms elided.
    for key in ["timeseries", "replicas"] {
        v[key].as_array_mut().unwrap().truncate(1);
    }
    v["baseline"]["deltas"].as_array_mut().unwrap().truncate(2);
    v["histograms"] = serde_json::json!("(elided)");
    insta::assert_json_snapshot!("run_json_shape", v);
}

fn chromium() -> Option<PathBuf> {
    let p = PathBuf::from("/usr/bin/chromium");
    p.is_file().then_some(p)
}

/// Render `page` with headless chromium into `png`.
fn screenshot(browser: &Path, page: &Path, png: &Path) {
    let profile = tempfile::tempdir().unwrap();
    let status = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", png.display()))
        .arg("--window-size=1280,2400")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium starts");
    assert!(
        png.is_file(),
        "chromium wrote no screenshot: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

#[test]
fn a_real_browser_renders_the_report() {
    let Some(browser) = chromium() else {
        if std::env::var_os("SLO_CHECK_REQUIRE_CHROMIUM").is_some() {
            panic!(
                "SLO_CHECK_REQUIRE_CHROMIUM is set but /usr/bin/chromium is missing: apt-get install -y chromium"
            );
        }
        println!(
            "SKIPPED a_real_browser_renders_the_report: /usr/bin/chromium is not installed (scripts/test.sh installs it)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    write_all(&sample::spike(), dir.path()).unwrap();
    let png = dir.path().join("report.png");
    screenshot(&browser, &dir.path().join("report.html"), &png);

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1280, 2400));
    let channels = info.color_type.samples();
    let pixels: Vec<&[u8]> = buf[..info.buffer_size()].chunks(channels).collect();
    let colours: HashSet<[u8; 3]> = pixels.iter().map(|p| [p[0], p[1], p[2]]).collect();
    let ink = pixels
        .iter()
        .filter(|p| p[..3].iter().any(|c| *c < 200))
        .count();
    assert!(
        colours.len() > 200,
        "only {} distinct colours: blank page?",
        colours.len()
    );
    assert!(
        ink * 50 > pixels.len(),
        "only {ink} of {} pixels are not near-white",
        pixels.len()
    );
    // The series colours made it to the screen.
    for c in [palette::P50, palette::ACHIEVED_RATE, palette::READY] {
        assert!(
            colours.contains(&[c.0, c.1, c.2]),
            "no pixel of {}",
            palette::hex(c)
        );
    }
}

/// Kills the agent subprocess when the test ends, pass or fail.
struct Agent(std::process::Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn report_re_renders_a_run_json_written_by_the_real_binary() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let exe = assert_cmd::cargo::cargo_bin("slo-check");
    let _agent = Agent(
        Command::new(&exe)
            .args(["agent", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let dir = tempfile::tempdir().unwrap();
    let first = dir.path().join("first");
    let scenario = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/smoke.yaml");
    bin()
        .args([
            "run",
            "-q",
            "--platform",
            "url",
            "--time-scale",
            "0.05",
            "--target-url",
        ])
        .arg(format!("http://127.0.0.1:{port}"))
        .arg("--scenario")
        .arg(&scenario)
        .arg("--out")
        .arg(&first)
        .assert()
        .code(0);
    for f in [
        "report.html",
        "latency.svg",
        "rate.svg",
        "failures.svg",
        "spectrum.svg",
    ] {
        assert!(first.join(f).is_file(), "the run wrote no {f}");
    }
    assert!(
        !first.join("replicas.svg").exists(),
        "the url platform observes no replicas"
    );
    let again = dir.path().join("again");
    bin()
        .args(["report", "-q"])
        .arg(first.join("run.json"))
        .arg("--baseline")
        .arg(first.join("run.json"))
        .arg("--out")
        .arg(&again)
        .assert()
        .code(0);
    let html = std::fs::read_to_string(again.join("report.html")).unwrap();
    assert!(html.contains("Compared with the baseline") && html.contains("no replica observer"));
    let svg = std::fs::read_to_string(again.join("spectrum.svg")).unwrap();
    roxmltree::Document::parse(&svg).unwrap();
}

#[test]
fn the_sample_round_trips() {
    let r = sample::spike();
    let text = serde_json::to_string(&r).unwrap();
    let back = input::parse(&text).unwrap();
    // Compared as JSON: serde_json may round the last bit of a float.
    let again = serde_json::to_value(&back).unwrap();
    let first = serde_json::to_value(&r).unwrap();
    assert!(again == first, "run.json does not round-trip");
}
