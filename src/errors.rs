//! Error text for people: an error and its sources on one line.

/// The error and its sources joined by `: `, skipping a source whose text is already
/// there (reqwest and hyper hide "connection refused" in a source).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
