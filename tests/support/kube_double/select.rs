//! Label and field selectors as the API server parses them (`a=b,c!=d,e,!f,g in (x,y)`;
//! fields by dotted path, `metadata.name=x`).

use serde_json::Value;

#[derive(Debug, Clone)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    Exists(String),
    NotExists(String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
}

/// A parsed label + field selector; the empty selector matches everything.
#[derive(Debug, Clone, Default)]
pub struct Selector {
    labels: Vec<Requirement>,
    fields: Vec<(String, bool, String)>,
}

/// Splits on commas that are not inside parentheses.
fn split_terms(text: &str) -> Vec<String> {
    let mut terms = vec![];
    let mut depth = 0usize;
    let mut current = String::new();
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                terms.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    terms.push(current);
    terms
        .into_iter()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
        .collect()
}

fn parse_set(text: &str) -> Result<Vec<String>, String> {
    let inner = text
        .trim()
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .ok_or_else(|| format!("expected a parenthesised set, found {text:?}"))?;
    Ok(inner
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect())
}

fn parse_label_term(term: &str) -> Result<Requirement, String> {
    if let Some(key) = term.strip_prefix('!') {
        return Ok(Requirement::NotExists(key.trim().to_string()));
    }
    if let Some((key, value)) = term.split_once("!=") {
        return Ok(Requirement::NotEquals(
            key.trim().into(),
            value.trim().into(),
        ));
    }
    if let Some((key, value)) = term.split_once("==").or_else(|| term.split_once('=')) {
        return Ok(Requirement::Equals(key.trim().into(), value.trim().into()));
    }
    if let Some((key, set)) = term.split_once(" notin ") {
        return Ok(Requirement::NotIn(key.trim().into(), parse_set(set)?));
    }
    if let Some((key, set)) = term.split_once(" in ") {
        return Ok(Requirement::In(key.trim().into(), parse_set(set)?));
    }
    if term.contains(char::is_whitespace) {
        return Err(format!("unable to parse requirement: {term:?}"));
    }
    Ok(Requirement::Exists(term.to_string()))
}

impl Selector {
    /// Parses `labelSelector` and `fieldSelector` query values; errors are the message of a 400.
    pub fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Selector, String> {
        let labels = split_terms(labels.unwrap_or_default())
            .iter()
            .map(|t| parse_label_term(t))
            .collect::<Result<Vec<_>, _>>()?;
        let mut parsed_fields = vec![];
        for term in split_terms(fields.unwrap_or_default()) {
            let (path, negate, value) = if let Some((p, v)) = term.split_once("!=") {
                (p, true, v)
            } else if let Some((p, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
                (p, false, v)
            } else {
                return Err(format!(
                    "invalid selector: '{term}'; can't understand '{term}'"
                ));
            };
            parsed_fields.push((path.trim().to_string(), negate, value.trim().to_string()));
        }
        Ok(Selector {
            labels,
            fields: parsed_fields,
        })
    }

    pub fn matches(&self, object: &Value) -> bool {
        let labels = &object["metadata"]["labels"];
        let label = |k: &str| labels.get(k).and_then(Value::as_str);
        let labels_match = self.labels.iter().all(|req| match req {
            Requirement::Equals(k, v) => label(k) == Some(v.as_str()),
            Requirement::NotEquals(k, v) => label(k) != Some(v.as_str()),
            Requirement::Exists(k) => label(k).is_some(),
            Requirement::NotExists(k) => label(k).is_none(),
            Requirement::In(k, set) => label(k).is_some_and(|l| set.iter().any(|s| s == l)),
            Requirement::NotIn(k, set) => label(k).is_none_or(|l| !set.iter().any(|s| s == l)),
        });
        labels_match
            && self.fields.iter().all(|(path, negate, value)| {
                let pointer = format!("/{}", path.replace('.', "/"));
                let actual = match object.pointer(&pointer) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                (actual == *value) != *negate
            })
    }
}
