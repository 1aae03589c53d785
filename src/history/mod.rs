//! The run history (`--history URL`): where runs are recorded (an SQLite file, or a
//! PostgreSQL database a team's CI jobs share), its versioned schema, what one run
//! leaves there (`record`), and the runs read back for `slo-check history` and for
//! regression detection (`regress`).

mod postgres;
pub mod record;
pub mod regress;
mod schema;
mod sqlite;

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

pub use record::{Observation, Record};

use crate::report::model::Worse;
use crate::scenario::Unit;

/// Where the history is kept when no `--history` or `SLO_CHECK_HISTORY` says otherwise
/// (and the run's reports go under `reports/`).
pub const DEFAULT: &str = "sqlite:reports/history.sqlite";

/// A history store's address, as `--history` takes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// `sqlite:PATH`: one file, no server.
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`: a server.
    Postgres(String),
}

impl Location {
    /// Parse `sqlite:PATH`, `postgres://…` or `postgresql://…`.
    pub fn parse(text: &str) -> Result<Location, String> {
        let t = text.trim();
        if let Some(path) = t.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            if path.is_empty() {
                return Err(format!("{text:?}: `sqlite:` needs a file, e.g. {DEFAULT}"));
            }
            return Ok(Location::Sqlite(PathBuf::from(path)));
        }
        if t.starts_with("postgres://") || t.starts_with("postgresql://") {
            return Ok(Location::Postgres(t.to_string()));
        }
        Err(format!(
            "{text:?}: expected sqlite:PATH (e.g. {DEFAULT}) or postgres://USER@HOST:PORT/DB, or `off`"
        ))
    }
}

impl fmt::Display for Location {
    /// The address with any password hidden: it appears in every message.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Sqlite(p) => write!(f, "sqlite:{}", p.display()),
            Location::Postgres(u) => match url::Url::parse(u) {
                Ok(mut parsed) if parsed.password().is_some() => {
                    let _ = parsed.set_password(Some("***"));
                    write!(f, "{parsed}")
                }
                _ => write!(f, "{u}"),
            },
        }
    }
}

/// What a run does with the history, from the flags.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// Where to record the run (None: not recorded).
    pub location: Option<Location>,
    /// `--label key=value`.
    pub labels: BTreeMap<String, String>,
    /// `--baseline history`: detect regressions, with this effect-size floor
    /// (`--max-regression`, a fraction).
    pub detect: Option<f64>,
    /// `--fail-on-regression`: a regression found against the history fails the run.
    pub fail_on_regression: bool,
}

/// `--label KEY=VALUE` flags as a map; errors name the flag.
pub fn parse_labels(flags: &[String]) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for f in flags {
        match f.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                if out.insert(k.trim().to_string(), v.to_string()).is_some() {
                    return Err(format!(
                        "--label {f:?}: the key {:?} is given twice",
                        k.trim()
                    ));
                }
            }
            _ => {
                return Err(format!(
                    "--label {f:?}: expected KEY=VALUE, e.g. --label commit=abc123"
                ));
            }
        }
    }
    Ok(out)
}

/// The store a run records into: `--history` (or `SLO_CHECK_HISTORY`), `off` for none;
/// by default [`DEFAULT`] when the reports go under `reports/` (`reports_default`), and
/// none with `--out`, so a run pointed elsewhere writes nothing in the working directory.
pub fn resolve(flag: Option<&str>, reports_default: bool) -> Result<Option<Location>, String> {
    match flag.map(str::trim) {
        Some("off") | Some("") => Ok(None),
        Some(text) => Location::parse(text)
            .map(Some)
            .map_err(|e| format!("--history {e}")),
        None if reports_default => Location::parse(DEFAULT).map(Some),
        None => Ok(None),
    }
}

/// One run as read back from the store.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StoredRun {
    /// The store's id of the run (what `history compare A B` takes).
    pub id: i64,
    /// `run` or `capacity`.
    pub kind: String,
    pub scenario: String,
    /// UTC RFC 3339, as in run.json.
    pub started_at: String,
    pub verdict: String,
    /// `local`, `url` or `kube`.
    pub platform: String,
    pub time_scale: f64,
    pub tool_version: String,
    /// Where its reports were written (null: not known).
    pub report_dir: Option<String>,
    /// `--label key=value`.
    pub labels: BTreeMap<String, String>,
    /// Every observed value, by name (`workflow p95`, `SLO <name>`, …).
    pub observations: Vec<Observation>,
    /// Stopped by SIGINT/SIGTERM (its summary's `interrupted`): its values cover part of
    /// the schedule.
    pub interrupted: bool,
}

impl StoredRun {
    /// The value of the observation `name`, if the run has one.
    pub fn value(&self, name: &str) -> Option<f64> {
        self.observations
            .iter()
            .find(|o| o.name == name)
            .and_then(|o| o.value)
    }
}

/// Which runs to read.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub scenario: Option<String>,
    pub kind: Option<String>,
    pub platform: Option<String>,
    pub time_scale: Option<f64>,
    /// Only these ids (empty: any).
    pub ids: Vec<i64>,
    /// The newest N (0: all).
    pub last: usize,
}

/// An open history store.
pub trait Store {
    /// Record one run with everything it carries, atomically; its id.
    fn insert(&mut self, run: &Record) -> Result<i64, String>;
    /// The runs `filter` selects, oldest first.
    fn runs(&mut self, filter: &Filter) -> Result<Vec<StoredRun>, String>;
}

/// Open (creating or migrating as needed) the store at `location`. Errors name the
/// store and what went wrong.
pub fn open(location: &Location) -> Result<Box<dyn Store>, String> {
    let opened: Result<Box<dyn Store>, String> = match location {
        Location::Sqlite(path) => sqlite::SqliteStore::open(path).map(|s| Box::new(s) as _),
        Location::Postgres(url) => postgres::PostgresStore::open(url).map(|s| Box::new(s) as _),
    };
    opened.map_err(|e| format!("history {location}: {e}"))
}

/// Run `f` with the store at `location`, on a thread of its own: the PostgreSQL
/// client runs a runtime of its own, which may not start inside the run's.
pub fn with_store<T: Send>(
    location: &Location,
    f: impl FnOnce(&mut dyn Store) -> Result<T, String> + Send,
) -> Result<T, String> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut store = open(location)?;
            f(store.as_mut()).map_err(|e| format!("history {location}: {e}"))
        })
        .join()
        .unwrap_or_else(|_| Err(format!("history {location}: the history step panicked")))
    })
}

fn worse_str(w: Worse) -> &'static str {
    match w {
        Worse::Higher => "higher",
        Worse::Lower => "lower",
    }
}

fn parse_worse(s: &str) -> Worse {
    if s == "lower" {
        Worse::Lower
    } else {
        Worse::Higher
    }
}

fn parse_unit(s: &str) -> Unit {
    serde_json::from_value(serde_json::Value::String(s.into())).unwrap_or(Unit::Number)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_parse_and_hide_passwords() {
        assert_eq!(
            Location::parse("sqlite:reports/history.sqlite").unwrap(),
            Location::Sqlite("reports/history.sqlite".into())
        );
        let pg = Location::parse("postgres://ci:secret@db:5432/slo").unwrap();
        assert_eq!(pg.to_string(), "postgres://ci:***@db:5432/slo");
        let e = Location::parse("mysql://x").unwrap_err();
        assert!(e.contains("sqlite:PATH"), "{e}");
    }
}
