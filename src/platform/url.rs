//! `--platform url`: an endpoint that is already running. No deploy, no
//! faults, no replica observation.

use hyper::Uri;

use std::sync::Arc;

use super::PlatformError;
use crate::target::{StaticTargets, Target};

/// Check `--target-url` and make the target.
pub fn target(url: Option<&str>) -> Result<Target, PlatformError> {
    let url = url.ok_or_else(|| {
        PlatformError::Usage(
            "--platform url needs --target-url URL, e.g. --target-url http://127.0.0.1:8080".into(),
        )
    })?;
    let uri: Uri = url.parse().map_err(|e| {
        PlatformError::Usage(format!(
            "--target-url `{url}`: not a URL ({e}); write e.g. http://127.0.0.1:8080"
        ))
    })?;
    match uri.scheme_str() {
        Some("http") => {}
        Some("https") => {
            return Err(PlatformError::Usage(format!(
                "--target-url `{url}`: https is not supported yet; reach the service over http (e.g. through a port-forward)"
            )));
        }
        _ => {
            return Err(PlatformError::Usage(format!(
                "--target-url `{url}`: give a scheme and host, e.g. http://127.0.0.1:8080"
            )));
        }
    }
    if uri.host().is_none() {
        return Err(PlatformError::Usage(format!(
            "--target-url `{url}`: no host; write e.g. http://127.0.0.1:8080"
        )));
    }
    if uri.path() != "/" && !uri.path().is_empty() {
        return Err(PlatformError::Usage(format!(
            "--target-url `{url}`: give only scheme, host and port; paths come from the scenario's steps"
        )));
    }
    let base = format!(
        "http://{}",
        uri.authority().map(|a| a.as_str()).unwrap_or_default()
    );
    // An IP:port target is also the one thing a Prometheus can scrape for this platform.
    let scrape = uri
        .authority()
        .and_then(|a| a.as_str().parse().ok())
        .map(|addr| Arc::new(StaticTargets(vec![("target".into(), addr)])) as _);
    Ok(Target {
        description: format!("url {base}"),
        base_url: base,
        emulated: false,
        faults: None,
        replicas: None,
        scrape,
        gateway: None,
        split: None,
        generators: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_normalised() {
        assert_eq!(
            target(Some("http://127.0.0.1:8080/")).unwrap().base_url,
            "http://127.0.0.1:8080"
        );
        assert!(matches!(target(None), Err(PlatformError::Usage(m)) if m.contains("--target-url")));
        assert!(target(Some("https://x")).is_err());
        assert!(target(Some("127.0.0.1:80")).is_err());
        assert!(target(Some("http://h:1/api")).is_err());
    }
}
