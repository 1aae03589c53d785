//! Reading a run.json back (`slo-check report`, `--baseline`): the schema
//! version is checked first, so an old or foreign file gets a clear message
//! rather than a serde error about some field deep inside.

use std::path::Path;

use super::model::{RunReport, SCHEMA_VERSION};
use crate::stats::histogram;

/// Read and check a run.json. The error starts with the file's path.
pub fn read(path: &Path) -> Result<RunReport, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| format!("{shown}: cannot read: {e}"))?;
    parse(&text).map_err(|e| format!("{shown}: {e}"))
}

/// Parse and check the text of a run.json.
pub fn parse(text: &str) -> Result<RunReport, String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let Some(obj) = value.as_object() else {
        return Err("not a run.json: the top level is not a JSON object".into());
    };
    match obj.get("schema_version").map(serde_json::Value::as_u64) {
        None => {
            return Err(
                "not a run.json: no schema_version field (is this slo-check's run.json?)".into(),
            );
        }
        Some(Some(v)) if v == u64::from(SCHEMA_VERSION) => {}
        Some(v) => {
            return Err(format!(
                "schema_version {} is not supported: this slo-check {} reads schema_version {SCHEMA_VERSION}; re-run the scenario or use a matching slo-check",
                v.map_or_else(|| obj["schema_version"].to_string(), |v| v.to_string()),
                env!("CARGO_PKG_VERSION"),
            ));
        }
    }
    // From the text again, so errors carry line and column.
    let report: RunReport =
        serde_json::from_str(text).map_err(|e| format!("not a valid run.json: {e}"))?;
    histogram::decode(&report.histograms.workflow)
        .map_err(|e| format!("histograms.workflow is damaged: {e}"))?;
    for (name, h) in &report.histograms.steps {
        histogram::decode(h).map_err(|e| format!("histograms.steps.{name} is damaged: {e}"))?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_schema_version_is_named() {
        let e = parse(r#"{"schema_version": 99}"#).unwrap_err();
        assert!(e.contains("schema_version 99 is not supported"), "{e}");
        let e = parse(r#"{"hello": 1}"#).unwrap_err();
        assert!(e.contains("no schema_version"), "{e}");
        let e = parse("[1,2").unwrap_err();
        assert!(e.starts_with("not JSON"), "{e}");
    }

    #[test]
    fn missing_fields_are_named_with_a_position() {
        let e = parse(r#"{"schema_version": 1, "tool_version": "x"}"#).unwrap_err();
        assert!(e.contains("missing field"), "{e}");
        assert!(e.contains("line 1"), "{e}");
    }
}
