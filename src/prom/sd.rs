//! Prometheus file-based service discovery: the run writes what to scrape to
//! `--prometheus-sd-file PATH` as `[{"targets": ["127.0.0.1:P", ...], "labels": {"job":
//! "agent"}}, ...]` (one group per job), and rewrites it every second while the run lasts
//! so replicas the autoscaler adds are scraped too. Point a Prometheus's
//! `file_sd_configs: [{ files: [PATH] }]` at it; Prometheus notices changes by itself.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::source::MetricsSource;
use crate::target::{ScrapeTargets, Target};

/// How often the file is refreshed.
const REFRESH: Duration = Duration::from_secs(1);

/// One target group of a file_sd file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetGroup {
    pub targets: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// The file_sd groups for `targets`: one group per job, jobs and addresses in order.
pub fn groups(targets: &[(String, SocketAddr)]) -> Vec<TargetGroup> {
    let mut by_job: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (job, addr) in targets {
        by_job.entry(job).or_default().push(addr.to_string());
    }
    by_job
        .into_iter()
        .map(|(job, targets)| TargetGroup {
            targets,
            labels: BTreeMap::from([("job".to_string(), job.to_string())]),
        })
        .collect()
}

/// Writes the file_sd file for `targets` atomically (temporary file, then rename), so
/// Prometheus never reads half a file.
pub fn write(path: &Path, targets: &[(String, SocketAddr)]) -> Result<(), String> {
    let json = serde_json::to_string_pretty(&groups(targets)).unwrap_or_else(|_| "[]".into());
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("--prometheus-sd-file: cannot create {}: {e}", dir.display()))?;
    }
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json + "\n")
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("--prometheus-sd-file: cannot write {}: {e}", path.display()))
}

/// Keeps the file current while it lives; dropping it stops the refresh (the file stays,
/// so a Prometheus can still be queried about the finished run).
pub struct SdWriter {
    source: Arc<dyn ScrapeTargets>,
    refresh: tokio::task::JoinHandle<()>,
}

impl SdWriter {
    /// Writes the file now and starts the refresh. A platform that cannot say what to
    /// scrape gets an empty file and a warning.
    pub fn start(path: PathBuf, target: &Target) -> Result<SdWriter, String> {
        let source: Arc<dyn ScrapeTargets> = match &target.scrape {
            Some(s) => s.clone(),
            None => {
                eprintln!(
                    "warning: --prometheus-sd-file: this platform does not expose metrics endpoints; writing an empty target list"
                );
                Arc::new(crate::target::StaticTargets(Vec::new()))
            }
        };
        let first = source.scrape_targets();
        write(&path, &first)?;
        let s = source.clone();
        let refresh = tokio::spawn(async move {
            let mut last = first;
            loop {
                tokio::time::sleep(REFRESH).await;
                let now = s.scrape_targets();
                if now != last {
                    if let Err(e) = write(&path, &now) {
                        eprintln!("warning: {e}");
                    }
                    last = now;
                }
            }
        });
        Ok(SdWriter { source, refresh })
    }

    /// The targets as of now.
    pub fn current(&self) -> Vec<(String, SocketAddr)> {
        self.source.scrape_targets()
    }
}

impl Drop for SdWriter {
    fn drop(&mut self) {
        self.refresh.abort();
    }
}

/// Waits until Prometheus reports `up == 1` for every address, at most `limit`.
pub async fn wait_scraped(
    source: &dyn MetricsSource,
    targets: &[(String, SocketAddr)],
    limit: Duration,
) -> Result<(), String> {
    if targets.is_empty() {
        return Ok(());
    }
    let instances = targets
        .iter()
        .map(|(_, a)| a.to_string().replace('.', "\\\\."))
        .collect::<Vec<_>>()
        .join("|");
    let query = format!("up{{instance=~\"{instances}\"}} == 1");
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let up = source.instant(&query, now).await.map(|p| p.len());
        if matches!(up, Ok(n) if n >= targets.len()) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "Prometheus had not scraped all {} targets of the sd file after {} ({}); counts may miss the run's first requests: is its file_sd_configs pointing at --prometheus-sd-file?",
                targets.len(),
                crate::units::format_duration(limit),
                match up {
                    Ok(n) => format!("{n} up"),
                    Err(e) => e,
                }
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_group_per_job() {
        let a: SocketAddr = "127.0.0.1:1001".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:1002".parse().unwrap();
        let m: SocketAddr = "127.0.0.1:2000".parse().unwrap();
        let json = serde_json::to_value(groups(&[
            ("agent".into(), a),
            ("agent".into(), b),
            ("mesh".into(), m),
        ]))
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!([
                {"targets": ["127.0.0.1:1001", "127.0.0.1:1002"], "labels": {"job": "agent"}},
                {"targets": ["127.0.0.1:2000"], "labels": {"job": "mesh"}},
            ])
        );
    }

    #[test]
    fn writes_atomically_and_creates_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sd/targets.json");
        write(&path, &[("agent".into(), "127.0.0.1:9".parse().unwrap())]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("127.0.0.1:9"), "{text}");
        assert!(!path.with_extension("json.tmp").exists());
    }
}
