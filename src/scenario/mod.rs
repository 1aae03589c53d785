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
pub use raw::Arrival;

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
    if text.trim().is_empty() {
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
    let opts = serde_saphyr::render_options! { snippets: serde_saphyr::SnippetMode::Off };
    let message = e.render_with_options(opts);
    ScenarioErrors(vec![ScenarioError {
        file: file.to_path_buf(),
        line_col,
        path: None,
        message: strip_location(&message),
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

/// The JSON Schema of the scenario format.
pub fn json_schema() -> serde_json::Value {
    let schema = schemars::schema_for!(raw::RawScenario);
    serde_json::to_value(schema).unwrap_or_default()
}
