//! The history's schema, as numbered migrations applied in order. A store records the
//! versions it has in `schema_migrations`; a store newer than this build is refused
//! rather than written with a schema it does not know. Never edit a released
//! migration: add the next one.

/// (version, SQLite statements, PostgreSQL statements).
pub const MIGRATIONS: &[(i64, &str, &str)] = &[(1, SQLITE_1, POSTGRES_1)];

/// The newest version this build knows.
pub fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// The refusal for a store whose schema is newer than this build's.
pub fn too_new(found: i64) -> String {
    format!(
        "its schema is version {found}, this slo-check knows versions up to {}: record with a newer slo-check",
        latest()
    )
}

const SQLITE_1: &str = "
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    scenario TEXT NOT NULL,
    started_at TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    tool_version TEXT NOT NULL,
    verdict TEXT NOT NULL,
    platform TEXT NOT NULL,
    time_scale REAL NOT NULL,
    duration_s REAL NOT NULL,
    report_dir TEXT,
    summary TEXT NOT NULL,
    histograms TEXT NOT NULL
);
CREATE INDEX runs_by_scenario ON runs (scenario, id);
CREATE TABLE labels (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE observations (
    run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    worse TEXT NOT NULL,
    value REAL,
    PRIMARY KEY (run_id, name)
);
";

const POSTGRES_1: &str = "
CREATE TABLE runs (
    id BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL,
    scenario TEXT NOT NULL,
    started_at TEXT NOT NULL,
    recorded_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    tool_version TEXT NOT NULL,
    verdict TEXT NOT NULL,
    platform TEXT NOT NULL,
    time_scale DOUBLE PRECISION NOT NULL,
    duration_s DOUBLE PRECISION NOT NULL,
    report_dir TEXT,
    summary JSONB NOT NULL,
    histograms JSONB NOT NULL
);
CREATE INDEX runs_by_scenario ON runs (scenario, id);
CREATE TABLE labels (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
);
CREATE TABLE observations (
    run_id BIGINT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    worse TEXT NOT NULL,
    value DOUBLE PRECISION,
    PRIMARY KEY (run_id, name)
);
";
