//! `${...}` templates in request paths, headers and bodies: parsed once when
//! the scenario is validated, rendered per workflow without re-parsing.

use std::fmt::Write as _;

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal text.
    Lit(String),
    /// A value captured by an earlier step (index into the workflow's capture slots).
    Capture(usize),
    /// The workflow's sequence number (0 for the first start).
    Seq,
    /// An environment variable (index into the plan's environment table).
    Env(usize),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Template {
    pub parts: Vec<Part>,
}

/// What a template refers to while it is being parsed.
pub trait Names {
    /// Slot of a capture name that is set before this point, or an error.
    fn capture(&mut self, name: &str) -> Result<usize, String>;
    /// Slot of an environment variable.
    fn env(&mut self, name: &str) -> usize;
}

/// Values a template is rendered with.
pub struct Values<'a> {
    pub captures: &'a [Option<String>],
    pub seq: u64,
    pub env: &'a [String],
}

impl Template {
    /// Parse `text`, resolving `${name}`, `${seq}` and `${env:NAME}`. `$$` is a literal `$`.
    pub fn parse(text: &str, names: &mut dyn Names) -> Result<Template, String> {
        let mut parts = Vec::new();
        let mut lit = String::new();
        let mut rest = text;
        while let Some(pos) = rest.find('$') {
            lit.push_str(&rest[..pos]);
            rest = &rest[pos..];
            if let Some(after) = rest.strip_prefix("$$") {
                lit.push('$');
                rest = after;
                continue;
            }
            let Some(body) = rest.strip_prefix("${") else {
                lit.push('$');
                rest = &rest[1..];
                continue;
            };
            let end = body
                .find('}')
                .ok_or_else(|| format!("unclosed `${{` in `{text}`; write ${{name}}"))?;
            let name = body[..end].trim();
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(if name == "seq" {
                Part::Seq
            } else if let Some(var) = name.strip_prefix("env:") {
                if !valid_ident(var) {
                    return Err(format!("`${{{name}}}`: `{var}` is not an environment variable name"));
                }
                Part::Env(names.env(var))
            } else if valid_ident(name) {
                Part::Capture(names.capture(name)?)
            } else {
                return Err(format!(
                    "`${{{name}}}` is not a template; use ${{capture_name}}, ${{seq}} or ${{env:NAME}}"
                ));
            });
            rest = &body[end + 1..];
        }
        lit.push_str(rest);
        if !lit.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Ok(Template { parts })
    }

    /// The text itself when the template has no placeholders.
    pub fn as_literal(&self) -> Option<&str> {
        match self.parts.as_slice() {
            [] => Some(""),
            [Part::Lit(s)] => Some(s),
            _ => None,
        }
    }

    /// True when rendering can reveal an environment variable's value.
    pub fn uses_env(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Env(_)))
    }

    /// Render into `out`. A capture that was never set renders as empty (the
    /// step that should have set it has already failed the workflow).
    pub fn render_into(&self, values: &Values<'_>, out: &mut String) {
        for part in &self.parts {
            match part {
                Part::Lit(s) => out.push_str(s),
                Part::Capture(i) => {
                    if let Some(Some(v)) = values.captures.get(*i) {
                        out.push_str(v);
                    }
                }
                Part::Seq => {
                    let _ = write!(out, "{}", values.seq);
                }
                Part::Env(i) => out.push_str(values.env.get(*i).map_or("", |s| s.as_str())),
            }
        }
    }

    pub fn render(&self, values: &Values<'_>) -> String {
        let mut out = String::new();
        self.render_into(values, &mut out);
        out
    }
}

/// A JSON body whose strings may be templates.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonTemplate {
    /// A subtree with no templates.
    Value(serde_json::Value),
    Str(Template),
    Array(Vec<JsonTemplate>),
    Object(Vec<(String, JsonTemplate)>),
}

impl JsonTemplate {
    /// Compile `value`; `on_error(path, message)` is told of each bad template.
    pub fn parse(
        value: &serde_json::Value,
        names: &mut dyn Names,
        path: &str,
        on_error: &mut dyn FnMut(String, String),
    ) -> JsonTemplate {
        use serde_json::Value as V;
        match value {
            V::String(s) => match Template::parse(s, names) {
                Ok(t) if t.as_literal().is_some() => JsonTemplate::Value(value.clone()),
                Ok(t) => JsonTemplate::Str(t),
                Err(e) => {
                    on_error(path.to_string(), e);
                    JsonTemplate::Value(value.clone())
                }
            },
            V::Array(items) => {
                let parts: Vec<_> = items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| JsonTemplate::parse(v, names, &format!("{path}[{i}]"), on_error))
                    .collect();
                if parts.iter().all(|p| matches!(p, JsonTemplate::Value(_))) {
                    JsonTemplate::Value(value.clone())
                } else {
                    JsonTemplate::Array(parts)
                }
            }
            V::Object(map) => {
                let parts: Vec<_> = map
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            JsonTemplate::parse(v, names, &format!("{path}.{k}"), on_error),
                        )
                    })
                    .collect();
                if parts
                    .iter()
                    .all(|(_, p)| matches!(p, JsonTemplate::Value(_)))
                {
                    JsonTemplate::Value(value.clone())
                } else {
                    JsonTemplate::Object(parts)
                }
            }
            _ => JsonTemplate::Value(value.clone()),
        }
    }

    /// The literal value when nothing is templated.
    pub fn as_literal(&self) -> Option<&serde_json::Value> {
        match self {
            JsonTemplate::Value(v) => Some(v),
            _ => None,
        }
    }

    pub fn render(&self, values: &Values<'_>) -> serde_json::Value {
        match self {
            JsonTemplate::Value(v) => v.clone(),
            JsonTemplate::Str(t) => serde_json::Value::String(t.render(values)),
            JsonTemplate::Array(items) => items.iter().map(|i| i.render(values)).collect(),
            JsonTemplate::Object(fields) => fields
                .iter()
                .map(|(k, v)| (k.clone(), v.render(values)))
                .collect::<serde_json::Map<_, _>>()
                .into(),
        }
    }
}

fn valid_ident(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

#[cfg(test)]
mod tests {
    use super::*;

    struct N(Vec<String>, Vec<String>);
    impl Names for N {
        fn capture(&mut self, name: &str) -> Result<usize, String> {
            self.0
                .iter()
                .position(|c| c == name)
                .ok_or_else(|| format!("`{name}` is never captured"))
        }
        fn env(&mut self, name: &str) -> usize {
            self.1.push(name.to_string());
            self.1.len() - 1
        }
    }

    #[test]
    fn renders_captures_seq_and_env() {
        let mut n = N(vec!["id".into()], vec![]);
        let t = Template::parse("/w/${id}?n=${seq}&k=${env:KEY}&p=$$5", &mut n).unwrap();
        let caps = [Some("abc".to_string())];
        let env = ["secret".to_string()];
        let v = Values {
            captures: &caps,
            seq: 7,
            env: &env,
        };
        assert_eq!(t.render(&v), "/w/abc?n=7&k=secret&p=$5");
        assert!(t.uses_env());
        assert_eq!(n.1, vec!["KEY".to_string()]);
    }

    #[test]
    fn unknown_capture_and_bad_syntax_are_errors() {
        let mut n = N(vec![], vec![]);
        assert!(
            Template::parse("/w/${id}", &mut n)
                .unwrap_err()
                .contains("never captured")
        );
        assert!(
            Template::parse("/w/${id", &mut n)
                .unwrap_err()
                .contains("unclosed")
        );
        assert!(Template::parse("/w/${a b}", &mut n).is_err());
    }

    #[test]
    fn literal_templates_are_recognised() {
        let mut n = N(vec![], vec![]);
        assert_eq!(
            Template::parse("/x", &mut n).unwrap().as_literal(),
            Some("/x")
        );
        assert_eq!(
            Template::parse("a$b", &mut n).unwrap().as_literal(),
            Some("a$b")
        );
    }
}
