//! Every file in tests/corpus/invalid/ is refused by `slo-check validate` with
//! exit 2, a message that names the file and a line:column or field path, and
//! the hint its first line promises; never a panic, never a hang. Binary
//! garbage and an oversized file are made here rather than committed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use assert_cmd::Command;

fn validate(path: &Path) -> (i32, String) {
    let out = Command::cargo_bin("slo-check")
        .unwrap()
        .arg("validate")
        .arg(path)
        .timeout(Duration::from_secs(20))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn corpus() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus/invalid");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
}

#[test]
fn the_corpus_holds_at_least_a_hundred_cases() {
    assert!(corpus().len() >= 100, "{} cases", corpus().len());
}

#[test]
fn every_malformed_scenario_exits_2_with_a_located_message() {
    let mut problems = Vec::new();
    for file in corpus() {
        let text = std::fs::read_to_string(&file).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .unwrap_or("")
            .trim();
        let (code, stderr) = validate(&file);
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let first = stderr.lines().next().unwrap_or("");
        let located = first.contains(&format!("{name}:"))
            && (first.split(&format!("{name}:")).nth(1).is_some_and(|rest| {
                rest.split(':')
                    .next()
                    .is_some_and(|n| n.trim().parse::<u64>().is_ok())
            }) || first.matches(": ").count() >= 2);
        if code != 2 {
            problems.push(format!("{name}: exit {code}, stderr: {stderr}"));
        } else if stderr.contains("panicked") {
            problems.push(format!("{name}: panicked: {stderr}"));
        } else if !located {
            problems.push(format!("{name}: not located: {first}"));
        } else if !stderr.contains(expect) {
            problems.push(format!("{name}: expected `{expect}` in: {stderr}"));
        }
    }
    assert!(
        problems.is_empty(),
        "{} problems:\n{}",
        problems.len(),
        problems.join("\n")
    );
}

#[test]
fn binary_garbage_and_a_50_mb_file_are_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    let garbage = dir.path().join("garbage.yaml");
    std::fs::write(
        &garbage,
        (0..4096u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let (code, stderr) = validate(&garbage);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("garbage.yaml") && !stderr.contains("panicked"),
        "{stderr}"
    );

    let big = dir.path().join("big.yaml");
    let line = "# padding padding padding padding padding padding padding padding padding\n";
    std::fs::write(&big, line.repeat(50 * 1024 * 1024 / line.len())).unwrap();
    let (code, stderr) = validate(&big);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("big.yaml") && stderr.contains("must be under"),
        "{stderr}"
    );
}
