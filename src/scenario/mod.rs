//! Scenarios: find the file, parse the YAML (serde-saphyr), validate it into a
//! `Scenario`, and describe the format as JSON Schema.

pub mod error;
pub mod model;
pub mod raw;
pub mod template;
pub mod validate;

use std::path::{Path, PathBuf};

pub use error::{ScenarioError, ScenarioErrors};
pub use model::*;

/// Largest scenario file read; anything bigger is refused before parsing.
pub const MAX_SCENARIO_BYTES: u64 = 1 << 20;

/// Resolve `--scenario NAME|PATH`: an existing path, or `<dir>/NAME.yaml` (or `.yml`).
pub fn resolve(name_or_path: &str, dir: &Path) -> Result<PathBuf, String> {
    let as_path = Path::new(name_or_path);
    if as_path.is_file() {
        return Ok(as_path.to_path_buf());
    }
    for ext in ["yaml", "yml"] {
        let candidate = dir.join(format!("{name_or_path}.{ext}"));
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    let known = list_files(dir).unwrap_or_default();
    let names: Vec<String> = known
        .iter()
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    Err(format!(
        "--scenario: no file `{name_or_path}` and no `{}/{name_or_path}.yaml`; {}",
        dir.display(),
        if names.is_empty() {
            format!(
                "`{}` holds no scenarios (set --scenarios-dir)",
                dir.display()
            )
        } else {
            format!("known scenarios: {}", names.join(", "))
        }
    ))
}

/// The `.yaml`/`.yml` files in a directory, sorted.
pub fn list_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
        })
        .collect();
    files.sort();
    Ok(files)
}

/// Read, parse and validate one scenario file.
pub fn load(file: &Path) -> Result<Scenario, ScenarioErrors> {
    let one = |message: String| {
        ScenarioErrors(vec![ScenarioError {
            file: file.to_path_buf(),
            line_col: None,
            path: None,
            message,
        }])
    };
    let meta = std::fs::metadata(file).map_err(|e| one(format!("cannot read: {e}")))?;
    if meta.len() > MAX_SCENARIO_BYTES {
        return Err(one(format!(
            "the file is {} bytes; a scenario must be under {} bytes",
            meta.len(),
            MAX_SCENARIO_BYTES
        )));
    }
    let bytes = std::fs::read(file).map_err(|e| one(format!("cannot read: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        one(format!(
            "not UTF-8 text (invalid byte at offset {}); a scenario is a YAML file",
            e.utf8_error().valid_up_to()
        ))
    })?;
    parse_str(&text, file)
}

/// Parse and validate scenario text; `file` names it in errors.
pub fn parse_str(text: &str, file: &Path) -> Result<Scenario, ScenarioErrors> {
    let blank = text.lines().all(|l| {
        let l = l.trim();
        l.is_empty() || l.starts_with('#') || l == "---"
    });
    if blank {
        return Err(ScenarioErrors(vec![ScenarioError {
            file: file.to_path_buf(),
            line_col: None,
            path: None,
            message: "the file is empty; a scenario needs at least `name`, `workflow` and `load`"
                .into(),
        }]));
    }
    let raw: raw::RawScenario = serde_saphyr::from_str(text).map_err(|e| yaml_error(&e, file))?;
    validate::validate(raw, file)
}

fn yaml_error(e: &serde_saphyr::Error, file: &Path) -> ScenarioErrors {
    let line_col = e.location().map(|l| (l.line(), l.column()));
    let formatter = serde_saphyr::UserMessageFormatter;
    let mut opts = serde_saphyr::RenderOptions::new(&formatter);
    opts.snippets = serde_saphyr::SnippetMode::Off;
    let message = friendlier(&strip_location(&e.render_with_options(opts)));
    ScenarioErrors(vec![ScenarioError {
        file: file.to_path_buf(),
        line_col,
        path: None,
        message,
    }])
}

/// serde-saphyr puts "line N column M" into its message; we print it once, up front.
fn strip_location(message: &str) -> String {
    let mut m = message.trim().to_string();
    if let Some(rest) = m.strip_prefix("error: ") {
        m = rest.to_string();
    }
    if let Some(pos) = m.find(" at line ") {
        m.truncate(pos);
    }
    if let Some(idx) = m.find(": ").filter(|_| m.starts_with("line ")) {
        m = m[idx + 2..].to_string();
    }
    m
}

/// Say what was expected in a scenario's words rather than the parser's.
fn friendlier(message: &str) -> String {
    let table = [
        (
            "expected sequence start",
            "expected a list here (`- item` lines or `[a, b]`)",
        ),
        (
            "expected mapping start",
            "expected a map here (`key: value` lines or `{ key: value }`)",
        ),
        ("expected string scalar", "expected a text value here"),
        ("invalid u64", "expected a whole number, 0 or more"),
        ("invalid u16", "expected a whole number from 0 to 65535"),
        ("invalid i64", "expected a whole number"),
        ("invalid floating point", "expected a number"),
        ("invalid boolean", "expected true or false"),
    ];
    for (parser, ours) in table {
        if message.starts_with(parser) {
            return ours.to_string();
        }
    }
    message.to_string()
}

/// The JSON Schema of the scenario format.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(raw::RawScenario);
    serde_json::to_value(schema).unwrap_or_default()
}
