//! Workflow state in Redis (`--redis-url` / `REDIS_URL`): `RedisStore`, its health check,
//! and `RedisUrl`, which keeps the password out of every log line and `Debug` output.
//!
//! One key per workflow, `slo-check:workflow:{id}`, holding the `WorkflowView` as JSON and
//! always written with an expiry (`SET .. PX`), so Redis memory stays bounded without any
//! sweeping: a finished workflow's key expires `--finished-retention` after it finished
//! (as in memory), a running one's `RUNNING_TTL_FLOOR` (or the retention, if longer) after
//! its latest step, so the workflows of a replica that died mid-run go away too.
//!
//! Every call is bounded by `--redis-timeout`, so a request answers 503 rather than hang.
//! The connection (redis-rs' `ConnectionManager`: one multiplexed connection, reconnected
//! on I/O errors) is made lazily, so a replica starts, and reports not-ready, while Redis
//! is still coming up. A background check PINGs every `CHECK_INTERVAL`; its result and
//! that of every call set `is_available`, and each change is logged once. A failed check
//! also replaces the connection manager with a fresh one: the manager retries only I/O
//! failures, and would otherwise stay failed after e.g. an AUTH refused during a restart.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, FromRedisValue};
use tokio::sync::watch;

use super::store::{StoreError, StoreFuture, WorkflowStore, WorkflowView};

const KEY_PREFIX: &str = "slo-check:workflow:";
/// Shortest expiry of a running workflow's key, refreshed at each step.
const RUNNING_TTL_FLOOR: Duration = Duration::from_secs(15 * 60);
/// How often the background check PINGs Redis.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
const BACKEND: &str = "Redis";

/// A Redis URL whose password never shows: `Display` and `Debug` print `***` instead.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    url: String,
    redacted: String,
}

impl RedisUrl {
    /// Checks that `url` is a `redis://` URL this build can connect to. The message of an
    /// error never contains the URL (it may hold a password).
    pub fn parse(url: &str) -> Result<RedisUrl, String> {
        let form = "use redis://[:PASSWORD@]HOST[:PORT][/DB], with the password \
                    percent-encoded (e.g. '/' as %2F)";
        let parsed = url::Url::parse(url).map_err(|e| format!("not a URL ({e}); {form}"))?;
        if parsed.scheme() != "redis" {
            return Err(format!(
                "scheme '{}' is not supported (plain TCP only, no TLS); {form}",
                parsed.scheme()
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(format!("no host; {form}"));
        }
        redis::Client::open(url)
            .map_err(|e| format!("rejected by the Redis client ({e}); {form}"))?;
        let mut shown = parsed.clone();
        if parsed.password().is_some() {
            // Cannot fail: the URL has a host, so it can have a password.
            let _ = shown.set_password(Some("***"));
        }
        Ok(RedisUrl {
            url: url.to_owned(),
            redacted: shown.to_string(),
        })
    }
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({})", self.redacted)
    }
}

/// What the store last saw of Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
enum Health {
    Unknown = 0,
    Up = 1,
    Down = 2,
}

/// Workflow state in Redis, shared by every replica pointed at the same server.
pub struct RedisStore {
    url: RedisUrl,
    client: redis::Client,
    config: ConnectionManagerConfig,
    /// Cloned for each call (a cheap handle); replaced after a failed health check.
    connection: Mutex<ConnectionManager>,
    timeout: Duration,
    retention: Duration,
    health: AtomicU8,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.url)
            .field("timeout", &self.timeout)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A store for `url` that connects on first use (call inside a tokio runtime). Each
    /// call, connecting included, is bounded by `timeout`.
    pub fn new(url: &RedisUrl, timeout: Duration, retention: Duration) -> anyhow::Result<Self> {
        let client = redis::Client::open(url.url.as_str())
            .map_err(|e| anyhow::anyhow!("--redis-url {url}: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
            .map_err(|e| anyhow::anyhow!("--redis-url {url}: {e}"))?;
        Ok(Self {
            url: url.clone(),
            client,
            config,
            connection: Mutex::new(connection),
            timeout,
            retention,
            health: AtomicU8::new(Health::Unknown as u8),
        })
    }

    /// Runs `cmd` within the timeout, and notes whether Redis answered.
    async fn call<T: FromRedisValue>(&self, cmd: Cmd) -> Result<T, StoreError> {
        let mut connection = self.lock_connection().clone();
        let result =
            match tokio::time::timeout(self.timeout, cmd.query_async(&mut connection)).await {
                // Ours, or the client's own response timeout (the same bound).
                Err(_) => Err(self.timed_out()),
                Ok(Err(e)) if e.is_timeout() => Err(self.timed_out()),
                Ok(Err(e)) => Err(StoreError::Failed {
                    backend: BACKEND,
                    reason: e.to_string(),
                }),
                Ok(Ok(value)) => Ok(value),
            };
        self.note(result.as_ref().err());
        result
    }

    fn timed_out(&self) -> StoreError {
        StoreError::Timeout {
            backend: BACKEND,
            timeout: self.timeout,
        }
    }

    fn lock_connection(&self) -> std::sync::MutexGuard<'_, ConnectionManager> {
        self.connection.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A fresh connection manager, connecting on its first call.
    fn renew_connection(&self) {
        let fresh =
            ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone());
        // Only fails for settings we never use (push senders); keep the old one then.
        if let Ok(fresh) = fresh {
            *self.lock_connection() = fresh;
        }
    }

    /// Records Redis' health after a call, logging each change once.
    fn note(&self, error: Option<&StoreError>) {
        let now = if error.is_none() {
            Health::Up
        } else {
            Health::Down
        };
        let before = self.health.swap(now as u8, Ordering::AcqRel);
        if before == now as u8 {
            return;
        }
        match error {
            None => eprintln!("slo-check agent: Redis at {} is reachable", self.url),
            Some(e) => eprintln!(
                "slo-check agent: Redis at {} is unreachable: {}; /ready and workflow \
                 requests answer 503 until it is back",
                self.url,
                e.reason()
            ),
        }
    }

    /// PINGs Redis now and then until `stopping` turns true, so that readiness follows
    /// Redis even when no request comes.
    pub async fn check_health(self: Arc<Self>, mut stopping: watch::Receiver<bool>) {
        loop {
            if self.call::<()>(redis::cmd("PING")).await.is_err() {
                self.renew_connection();
            }
            tokio::select! {
                () = tokio::time::sleep(CHECK_INTERVAL) => {}
                _ = stopping.wait_for(|stopping| *stopping) => return,
            }
        }
    }

    fn key(id: &str) -> String {
        format!("{KEY_PREFIX}{id}")
    }

    /// How long the key of `view` lives after this write.
    fn ttl(&self, view: &WorkflowView) -> Duration {
        if view.is_finished() {
            self.retention
        } else {
            self.retention.max(RUNNING_TTL_FLOOR)
        }
    }
}

impl WorkflowStore for RedisStore {
    fn put<'a>(&'a self, view: &'a WorkflowView) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let key = Self::key(&view.id);
            let ttl_ms = self.ttl(view).as_millis() as u64;
            if ttl_ms == 0 {
                // No retention: a finished workflow is gone at once, as in memory.
                return self.call(redis::cmd("DEL").arg(&key).to_owned()).await;
            }
            let json = serde_json::to_string(view).map_err(|e| StoreError::Failed {
                backend: BACKEND,
                reason: format!("cannot encode the workflow: {e}"),
            })?;
            let mut cmd = redis::cmd("SET");
            cmd.arg(&key).arg(json).arg("PX").arg(ttl_ms);
            self.call(cmd).await
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> StoreFuture<'a, Option<WorkflowView>> {
        Box::pin(async move {
            let json: Option<String> = self
                .call(redis::cmd("GET").arg(Self::key(id)).to_owned())
                .await?;
            json.map(|json| {
                serde_json::from_str(&json).map_err(|e| StoreError::Failed {
                    backend: BACKEND,
                    reason: format!("key {KEY_PREFIX}{id} does not hold a workflow: {e}"),
                })
            })
            .transpose()
        })
    }

    fn is_available(&self) -> bool {
        self.health.load(Ordering::Acquire) == Health::Up as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_never_shows() {
        let url = RedisUrl::parse("redis://:s3cret@redis:6379/0").unwrap();
        assert_eq!(url.to_string(), "redis://:***@redis:6379/0");
        assert!(!format!("{url:?}").contains("s3cret"));
        let url = RedisUrl::parse("redis://user:s3cret@10.0.0.1/2").unwrap();
        assert_eq!(url.to_string(), "redis://user:***@10.0.0.1/2");
        let plain = RedisUrl::parse("redis://127.0.0.1:6380").unwrap();
        assert_eq!(plain.to_string(), "redis://127.0.0.1:6380");
    }

    #[test]
    fn bad_urls_are_refused_without_echoing_them() {
        for bad in [
            "rediss://:s3cret@redis:6379",
            "http://:s3cret@redis",
            "s3cret",
            "redis://:s3/cret@redis:6379/0",
        ] {
            let err = RedisUrl::parse(bad).unwrap_err();
            assert!(!err.contains("s3"), "{bad}: {err}");
            assert!(err.contains("redis://[:PASSWORD@]HOST"), "{bad}: {err}");
        }
    }
}
