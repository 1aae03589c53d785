//! The PostgreSQL store (the `postgres` crate, plain TCP): a database a team's CI jobs
//! share. Migrations run under a transaction-scoped advisory lock, so jobs starting at
//! once migrate once; each run is inserted in one transaction.

use std::time::Duration;

use postgres::{Client, NoTls};

use super::schema::{self, MIGRATIONS};
use super::{Filter, Observation, Record, Store, StoredRun};

/// How long connecting may take before the history step fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The advisory lock's key: "slo-check history migrations".
const MIGRATION_LOCK: i64 = 0x510c_4ec4_0001;

pub struct PostgresStore {
    client: Client,
}

impl PostgresStore {
    pub fn open(url: &str) -> Result<PostgresStore, String> {
        let mut config: postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.application_name("slo-check");
        let mut client = config.connect(NoTls).map_err(|e| full(&e))?;
        migrate(&mut client)?;
        Ok(PostgresStore { client })
    }
}

/// The error with its causes: `postgres::Error`'s own text is often just "db error".
fn full(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            text
        }
    }
}

fn migrate(client: &mut Client) -> Result<(), String> {
    let mut tx = client.transaction().map_err(|e| full(&e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .map_err(|e| full(&e))?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
    )
    .map_err(|e| full(&e))?;
    let have: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0)::BIGINT FROM schema_migrations",
            &[],
        )
        .map_err(|e| full(&e))?
        .get(0);
    if have > schema::latest() {
        return Err(schema::too_new(have));
    }
    for (version, _, sql) in MIGRATIONS.iter().filter(|m| m.0 > have) {
        tx.batch_execute(sql)
            .map_err(|e| format!("migration {version}: {}", full(&e)))?;
        tx.execute(
            "INSERT INTO schema_migrations (version) VALUES ($1)",
            &[version],
        )
        .map_err(|e| full(&e))?;
    }
    tx.commit().map_err(|e| full(&e))
}

impl Store for PostgresStore {
    fn insert(&mut self, run: &Record) -> Result<i64, String> {
        let mut tx = self.client.transaction().map_err(|e| full(&e))?;
        let id: i64 = tx
            .query_one(
                "INSERT INTO runs (kind, scenario, started_at, tool_version, verdict, platform, time_scale, duration_s, report_dir, summary, histograms)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::TEXT::JSONB, $11::TEXT::JSONB) RETURNING id",
                &[
                    &run.kind,
                    &run.scenario,
                    &run.started_at,
                    &run.tool_version,
                    &run.verdict,
                    &run.platform,
                    &run.time_scale,
                    &run.duration_s,
                    &run.report_dir,
                    &run.summary,
                    &run.histograms,
                ],
            )
            .map_err(|e| full(&e))?
            .get(0);
        for (k, v) in &run.labels {
            tx.execute(
                "INSERT INTO labels (run_id, key, value) VALUES ($1, $2, $3)",
                &[&id, k, v],
            )
            .map_err(|e| full(&e))?;
        }
        for o in &run.observations {
            tx.execute(
                "INSERT INTO observations (run_id, name, unit, worse, value) VALUES ($1, $2, $3, $4, $5)",
                &[&id, &o.name, &o.unit.as_str(), &super::worse_str(o.worse), &o.value],
            )
            .map_err(|e| full(&e))?;
        }
        tx.commit().map_err(|e| full(&e))?;
        Ok(id)
    }

    fn runs(&mut self, f: &Filter) -> Result<Vec<StoredRun>, String> {
        let limit: Option<i64> = (f.last > 0).then_some(f.last as i64);
        let ids: Option<Vec<i64>> = (!f.ids.is_empty()).then(|| f.ids.clone());
        let rows = self
            .client
            .query(
                "SELECT id, kind, scenario, started_at, verdict, platform, time_scale, tool_version, report_dir,
                        COALESCE((summary->>'interrupted')::BOOLEAN, FALSE)
                 FROM runs
                 WHERE ($1::TEXT IS NULL OR scenario = $1) AND ($2::TEXT IS NULL OR kind = $2)
                   AND ($3::TEXT IS NULL OR platform = $3)
                   AND ($4::DOUBLE PRECISION IS NULL OR abs(time_scale - $4) < 1e-9)
                   AND ($5::BIGINT[] IS NULL OR id = ANY($5))
                 ORDER BY id DESC LIMIT $6",
                &[&f.scenario, &f.kind, &f.platform, &f.time_scale, &ids, &limit],
            )
            .map_err(|e| full(&e))?;
        let mut runs: Vec<StoredRun> = rows
            .iter()
            .map(|r| StoredRun {
                id: r.get(0),
                kind: r.get(1),
                scenario: r.get(2),
                started_at: r.get(3),
                verdict: r.get(4),
                platform: r.get(5),
                time_scale: r.get(6),
                tool_version: r.get(7),
                report_dir: r.get(8),
                interrupted: r.get(9),
                labels: Default::default(),
                observations: Vec::new(),
            })
            .collect();
        runs.reverse();
        for run in &mut runs {
            run.labels = self
                .client
                .query(
                    "SELECT key, value FROM labels WHERE run_id = $1 ORDER BY key",
                    &[&run.id],
                )
                .map_err(|e| full(&e))?
                .iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect();
            run.observations = self
                .client
                .query(
                    "SELECT name, unit, worse, value FROM observations WHERE run_id = $1 ORDER BY ctid",
                    &[&run.id],
                )
                .map_err(|e| full(&e))?
                .iter()
                .map(|r| Observation {
                    name: r.get(0),
                    unit: super::parse_unit(r.get(1)),
                    worse: super::parse_worse(r.get(2)),
                    value: r.get(3),
                })
                .collect();
        }
        Ok(runs)
    }
}
