//! The SQLite store (rusqlite, SQLite bundled): one file, no server. Several processes
//! may write at once: WAL journal, a generous busy timeout, and every write in an
//! `IMMEDIATE` transaction, so a second CI job waits for the first instead of failing.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior, params};

use super::schema::{self, MIGRATIONS};
use super::{Filter, Record, Store, StoredRun};

/// How long a writer waits for another's lock before the history step fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub struct SqliteStore {
    conn: Connection,
}

impl SqliteStore {
    pub fn open(path: &Path) -> Result<SqliteStore, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let mut conn = Connection::open(path).map_err(|e| e.to_string())?;
        conn.busy_timeout(busy_timeout())
            .map_err(|e| e.to_string())?;
        // WAL lets readers and one writer work at once; it persists in the file.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| e.to_string())?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(|e| e.to_string())?;
        migrate(&mut conn)?;
        Ok(SqliteStore { conn })
    }
}

/// `SLO_CHECK_HISTORY_BUSY_TIMEOUT` (e.g. `2s`, for tests of a locked store) or 30 s.
fn busy_timeout() -> Duration {
    std::env::var("SLO_CHECK_HISTORY_BUSY_TIMEOUT")
        .ok()
        .and_then(|v| crate::units::parse_duration(&v).ok())
        .unwrap_or(BUSY_TIMEOUT)
}

/// Apply the migrations the file lacks, in one transaction that holds the write lock,
/// so two processes opening a new file at once migrate it once.
fn migrate(conn: &mut Connection) -> Result<(), String> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| e.to_string())?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
    )
    .map_err(|e| e.to_string())?;
    let have: i64 = tx
        .query_row(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            [],
            |r| r.get(0),
        )
        .map_err(|e| e.to_string())?;
    if have > schema::latest() {
        return Err(schema::too_new(have));
    }
    for (version, sql, _) in MIGRATIONS.iter().filter(|m| m.0 > have) {
        tx.execute_batch(sql)
            .map_err(|e| format!("migration {version}: {e}"))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?1, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))",
            params![version],
        )
        .map_err(|e| e.to_string())?;
    }
    tx.commit().map_err(|e| e.to_string())
}

impl Store for SqliteStore {
    fn insert(&mut self, run: &Record) -> Result<i64, String> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| e.to_string())?;
        tx.execute(
            "INSERT INTO runs (kind, scenario, started_at, recorded_at, tool_version, verdict, platform, time_scale, duration_s, report_dir, summary, histograms)
             VALUES (?1, ?2, ?3, strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                run.kind,
                run.scenario,
                run.started_at,
                run.tool_version,
                run.verdict,
                run.platform,
                run.time_scale,
                run.duration_s,
                run.report_dir,
                run.summary,
                run.histograms
            ],
        )
        .map_err(|e| e.to_string())?;
        let id = tx.last_insert_rowid();
        for (k, v) in &run.labels {
            tx.execute(
                "INSERT INTO labels (run_id, key, value) VALUES (?1, ?2, ?3)",
                params![id, k, v],
            )
            .map_err(|e| e.to_string())?;
        }
        for o in &run.observations {
            tx.execute(
                "INSERT INTO observations (run_id, name, unit, worse, value) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id, o.name, o.unit.as_str(), super::worse_str(o.worse), o.value],
            )
            .map_err(|e| e.to_string())?;
        }
        tx.commit().map_err(|e| e.to_string())?;
        Ok(id)
    }

    fn runs(&mut self, filter: &Filter) -> Result<Vec<StoredRun>, String> {
        read_runs(&self.conn, filter).map_err(|e| e.to_string())
    }
}

fn read_runs(conn: &Connection, f: &Filter) -> rusqlite::Result<Vec<StoredRun>> {
    let ids = if f.ids.is_empty() {
        String::new()
    } else {
        let list: Vec<String> = f.ids.iter().map(i64::to_string).collect();
        format!(" AND id IN ({})", list.join(","))
    };
    let sql = format!(
        "SELECT id, kind, scenario, started_at, verdict, platform, time_scale, tool_version, report_dir,
                COALESCE(json_extract(summary, '$.interrupted'), 0)
         FROM runs
         WHERE (?1 IS NULL OR scenario = ?1) AND (?2 IS NULL OR kind = ?2)
           AND (?3 IS NULL OR platform = ?3) AND (?4 IS NULL OR abs(time_scale - ?4) < 1e-9){ids}
         ORDER BY id DESC LIMIT ?5"
    );
    let limit = if f.last == 0 { -1 } else { f.last as i64 };
    let mut stmt = conn.prepare(&sql)?;
    let mut runs: Vec<StoredRun> = stmt
        .query_map(
            params![f.scenario, f.kind, f.platform, f.time_scale, limit],
            |r| {
                Ok(StoredRun {
                    id: r.get(0)?,
                    kind: r.get(1)?,
                    scenario: r.get(2)?,
                    started_at: r.get(3)?,
                    verdict: r.get(4)?,
                    platform: r.get(5)?,
                    time_scale: r.get(6)?,
                    tool_version: r.get(7)?,
                    report_dir: r.get(8)?,
                    interrupted: r.get::<_, i64>(9)? != 0,
                    labels: Default::default(),
                    observations: Vec::new(),
                })
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    runs.reverse();
    let mut labels =
        conn.prepare("SELECT key, value FROM labels WHERE run_id = ?1 ORDER BY key")?;
    let mut obs = conn.prepare(
        "SELECT name, unit, worse, value FROM observations WHERE run_id = ?1 ORDER BY rowid",
    )?;
    for run in &mut runs {
        run.labels = labels
            .query_map(params![run.id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        run.observations = obs
            .query_map(params![run.id], |r| {
                Ok(super::Observation {
                    name: r.get(0)?,
                    unit: super::parse_unit(&r.get::<_, String>(1)?),
                    worse: super::parse_worse(&r.get::<_, String>(2)?),
                    value: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(runs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Record, Store};

    fn record(summary: &str) -> Record {
        Record {
            kind: "run".into(),
            scenario: "s".into(),
            started_at: "2026-12-05T00:00:00Z".into(),
            tool_version: "0".into(),
            verdict: "pass".into(),
            platform: "url".into(),
            time_scale: 1.0,
            duration_s: 1.0,
            report_dir: None,
            labels: Default::default(),
            observations: Vec::new(),
            summary: summary.into(),
            histograms: "{}".into(),
        }
    }

    /// A run's `interrupted` comes back from its summary; a summary without it (a
    /// capacity search) is not interrupted.
    #[test]
    fn an_interrupted_run_reads_back_as_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(&dir.path().join("h.sqlite")).unwrap();
        for summary in [
            r#"{"interrupted": true}"#,
            r#"{"interrupted": false}"#,
            r#"{"capacity": 12}"#,
        ] {
            store.insert(&record(summary)).unwrap();
        }
        let runs = store.runs(&Filter::default()).unwrap();
        let flags: Vec<bool> = runs.iter().map(|r| r.interrupted).collect();
        assert_eq!(flags, [true, false, false]);
    }
}
