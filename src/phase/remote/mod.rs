//! A distributed load phase's coordinator (`--generators N`): launches the generators
//! through a `GeneratorLauncher`, refuses any whose plan differs, measures each one's clock
//! offset, starts them all at the run's zero, and files their records into the one
//! recorder as if one engine had made them. A generator that never starts, dies, or stops
//! answering is reported by name and fails the load-delivered check: its starts are
//! missing, never silently passed.
//!
//! Generators send records, not histograms: the recorder gets every workflow with its
//! intended start, so windows, steps, canary subsets and percentiles are exactly those of
//! one generator issuing the same schedule.

pub mod process;
pub mod wire;

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::live::GeneratorNow;
use crate::load::engine::{Control, Issued, Live};
use crate::report::model::GeneratorReport;
use crate::stats::record::Event;
pub use crate::target::Distributed;
use crate::target::{GeneratorLauncher, LaunchedGenerator};
use wire::{Events, Fingerprint, Start, Status};

/// How often each generator is asked for its records.
const POLL: Duration = Duration::from_millis(200);
/// A generator that does not answer for this long is lost.
const LOST_AFTER: Duration = Duration::from_secs(5);
/// One control request's bound.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// Clock samples per generator; the one with the shortest round trip is kept.
const CLOCK_SAMPLES: usize = 5;
/// How long every generator together may take to start listening.
const LAUNCH_TIMEOUT: Duration = Duration::from_secs(120);

/// Each generator as last heard from, in shard order: what the progress line and the
/// live series show of a distributed run (empty for a one-process run).
pub type Board = Arc<std::sync::Mutex<Vec<GeneratorNow>>>;

/// The generators, launched and checked, not yet started.
pub struct Fleet {
    members: Vec<Member>,
    launcher: Arc<dyn GeneratorLauncher>,
}

struct Member {
    report: GeneratorReport,
    generator: Option<Box<dyn LaunchedGenerator>>,
    offset_us: i64,
    base: String,
}

/// Launch every generator at once, check their plans against `fingerprint`, and measure
/// their clocks. A generator that fails any of that is kept as lost (its report says why).
/// An interrupt (`stop`) ends the wait for those not yet listening: a Ctrl-C while pods
/// are pending is not held for the launch timeout.
pub async fn launch(
    d: &Distributed,
    fingerprint: &Fingerprint,
    target_url: &str,
    stop: &tokio_util::sync::CancellationToken,
) -> Fleet {
    let http = client();
    let members = (0..d.count).map(|index| {
        let http = http.clone();
        async move {
            let mut report = GeneratorReport {
                index,
                shard: format!("{index}/{}", d.count),
                runs_as: "not started".into(),
                lost: None,
                clock_offset_ms: None,
                clock_bound_ms: None,
                started: 0,
                dropped: 0,
                records: 0,
            };
            let launched = tokio::select! {
                l = tokio::time::timeout(LAUNCH_TIMEOUT, d.launcher.launch(index, d.count, target_url)) => {
                    l.unwrap_or_else(|_| {
                        Err(format!("it did not listen within {} s", LAUNCH_TIMEOUT.as_secs()))
                    })
                }
                _ = stop.cancelled() => Err("the run was interrupted while it was being started".into()),
            };
            let generator = match launched {
                Ok(g) => g,
                Err(why) => {
                    report.lost = Some(format!("it never started: {why}"));
                    return Member {
                        report,
                        generator: None,
                        offset_us: 0,
                        base: String::new(),
                    };
                }
            };
            report.runs_as = generator.describe();
            let base = format!("http://{}", generator.addr());
            let mut member = Member {
                report,
                generator: Some(generator),
                offset_us: 0,
                base,
            };
            match check(&http, &member.base, &member.report.shard, fingerprint).await {
                Ok((offset_us, bound_us)) => {
                    member.offset_us = offset_us;
                    member.report.clock_offset_ms = Some(offset_us as f64 / 1e3);
                    member.report.clock_bound_ms = Some(bound_us as f64 / 1e3);
                }
                Err(why) => member.report.lost = Some(why),
            }
            member
        }
    });
    let members = futures::future::join_all(members).await;
    Fleet {
        members,
        launcher: d.launcher.clone(),
    }
}

/// Ask the generator's status `CLOCK_SAMPLES` times: check its shard and plan, and
/// estimate its clock offset as NTP does from the sample with the shortest round trip
/// (offset = its clock − the midpoint of ours around the request; bound = half the trip).
async fn check(
    http: &reqwest::Client,
    base: &str,
    shard: &str,
    fingerprint: &Fingerprint,
) -> Result<(i64, u64), String> {
    let mut best: Option<(i64, u64)> = None;
    for _ in 0..CLOCK_SAMPLES {
        let before = unix_us();
        let status: Status = get_json(http, &format!("{base}/status")).await?;
        let after = unix_us();
        if status.shard != shard {
            return Err(format!(
                "it runs shard {} where {shard} was asked",
                status.shard
            ));
        }
        if status.fingerprint != *fingerprint {
            return Err(format!(
                "its plan differs from the coordinator's ({:?} against {:?}): the same scenario, seed and time scale must reach every generator",
                status.fingerprint, fingerprint
            ));
        }
        let bound = after.saturating_sub(before) / 2;
        let offset = status.now_unix_us as i64 - (before + bound) as i64;
        if best.is_none_or(|(_, b)| bound < b) {
            best = Some((offset, bound));
        }
    }
    best.ok_or_else(|| "no clock sample".into())
}

impl Fleet {
    /// How many generators are ready to start.
    pub fn ready(&self) -> usize {
        self.members
            .iter()
            .filter(|m| m.report.lost.is_none())
            .count()
    }

    /// The lost ones so far, one line each.
    pub fn lost(&self) -> Vec<String> {
        self.members
            .iter()
            .filter_map(|m| m.report.lost_line())
            .collect()
    }

    /// Start every ready generator at `zero` and file their records into `tx`; `live`
    /// shows their summed counts and `board` each one's, and `control`'s stop and abandon
    /// reach them. Returns once every generator's schedule is over (or it is lost), with a
    /// task that ends when the last record is in and every generator is stopped.
    pub async fn drive(
        self,
        zero: Instant,
        tx: UnboundedSender<Vec<Event>>,
        live: Arc<Live>,
        board: Board,
        control: Control,
    ) -> (Issued, JoinHandle<Vec<GeneratorReport>>) {
        let http = client();
        *lock(&board) = self
            .members
            .iter()
            .map(|m| GeneratorNow {
                shard: m.report.shard.clone(),
                lost: m.report.lost.is_some(),
                ..GeneratorNow::default()
            })
            .collect();
        let zero_unix_us = unix_us() as i64 + signed_us_until(zero);
        let stopped = Arc::new(AtomicBool::new(false));
        let bases: Vec<String> = self
            .members
            .iter()
            .filter(|m| m.report.lost.is_none())
            .map(|m| m.base.clone())
            .collect();
        let interrupted = control.stop_starts.clone();
        let relay = tokio::spawn(relay_control(http.clone(), bases, control));
        let launcher = self.launcher.clone();
        let mut over = Vec::new();
        let mut pollers = Vec::new();
        for (slot, member) in self.members.into_iter().enumerate() {
            let (over_tx, over_rx) = tokio::sync::oneshot::channel();
            over.push(over_rx);
            let poller = Poller {
                http: http.clone(),
                tx: tx.clone(),
                live: live.clone(),
                board: board.clone(),
                slot,
                stopped: stopped.clone(),
            };
            pollers.push(tokio::spawn(poller.run(member, zero_unix_us, over_tx)));
        }
        drop(tx);
        for o in over {
            let _ = o.await;
        }
        let issued = if stopped.load(Ordering::SeqCst) || interrupted.is_cancelled() {
            Issued::Stopped
        } else {
            Issued::All
        };
        let rest = tokio::spawn(async move {
            let mut reports = Vec::new();
            for p in pollers {
                if let Ok(r) = p.await {
                    reports.push(r);
                }
            }
            relay.abort();
            launcher.finish().await;
            reports
        });
        (issued, rest)
    }
}

/// Pass the coordinator's interrupt on: stop starts, then abandon in-flight workflows.
async fn relay_control(http: reqwest::Client, bases: Vec<String>, control: Control) {
    let post_all = |path: &'static str| {
        let http = http.clone();
        let bases = bases.clone();
        async move {
            futures::future::join_all(
                bases
                    .iter()
                    .map(|b| post(&http, format!("{b}{path}"), None)),
            )
            .await;
        }
    };
    control.stop_starts.cancelled().await;
    post_all("/stop").await;
    control.abandon.cancelled().await;
    post_all("/abandon").await;
}

/// Reads one generator's records into the recorder.
struct Poller {
    http: reqwest::Client,
    tx: UnboundedSender<Vec<Event>>,
    live: Arc<Live>,
    board: Board,
    slot: usize,
    stopped: Arc<AtomicBool>,
}

/// How far back a generator's rate and lag on the board look.
const BOARD_WINDOW: Duration = Duration::from_secs(1);

/// One generator's recent starts and lags, for its place on the board.
#[derive(Default)]
struct Recent {
    /// (when, started so far), over the last `BOARD_WINDOW`.
    started: VecDeque<(Instant, u64)>,
    /// (when, the largest lag of the workflows received then, µs).
    lag_us: VecDeque<(Instant, u64)>,
}

impl Recent {
    fn add(&mut self, started: u64, events: &[Event]) -> (f64, Option<f64>) {
        let now = Instant::now();
        self.started.push_back((now, started));
        let lag = events
            .iter()
            .filter_map(|e| match e {
                Event::Workflow(w) => Some(w.lag_us),
                _ => None,
            })
            .max();
        if let Some(l) = lag {
            self.lag_us.push_back((now, l));
        }
        let old = |t: &Instant| now.duration_since(*t) > BOARD_WINDOW;
        while self.started.len() > 2 && self.started.front().is_some_and(|(t, _)| old(t)) {
            self.started.pop_front();
        }
        while self.lag_us.front().is_some_and(|(t, _)| old(t)) {
            self.lag_us.pop_front();
        }
        let rate = match (self.started.front(), self.started.back()) {
            (Some((t0, s0)), Some((t1, s1))) if t1 > t0 => {
                s1.saturating_sub(*s0) as f64 / (*t1 - *t0).as_secs_f64()
            }
            _ => 0.0,
        };
        let lag_ms = self.lag_us.iter().map(|(_, l)| *l).max();
        (rate, lag_ms.map(|l| l as f64 / 1e3))
    }
}

fn lock(board: &Board) -> std::sync::MutexGuard<'_, Vec<GeneratorNow>> {
    board.lock().unwrap_or_else(|e| e.into_inner())
}

impl Poller {
    async fn run(
        self,
        mut m: Member,
        zero_unix_us: i64,
        over: tokio::sync::oneshot::Sender<()>,
    ) -> GeneratorReport {
        let mut over = Some(over);
        if m.report.lost.is_none() {
            let start = Start {
                zero_unix_us: (zero_unix_us + m.offset_us).max(0) as u64,
            };
            let body = serde_json::to_string(&start).unwrap_or_default();
            if let Err(why) = post(&self.http, format!("{}/start", m.base), Some(body)).await {
                m.report.lost = Some(format!("it could not be started: {why}"));
            }
        }
        if m.report.lost.is_none() {
            self.poll(&mut m, &mut over).await;
        }
        if let Some(o) = over.take() {
            let _ = o.send(());
        }
        if let Some(g) = m.generator.take() {
            if m.report.lost.is_none() {
                let _ = post(&self.http, format!("{}/exit", m.base), None).await;
            }
            g.stop().await;
        }
        // The started and dropped counts of a generator that is gone stay in the sums.
        self.show(|g| {
            g.started = m.report.started;
            g.dropped = m.report.dropped;
            g.in_flight = 0;
            g.rate_per_s = 0.0;
            g.lost = m.report.lost.is_some();
        });
        m.report
    }

    async fn poll(&self, m: &mut Member, over: &mut Option<tokio::sync::oneshot::Sender<()>>) {
        let mut next = 0u64;
        let mut failing_since: Option<Instant> = None;
        let mut recent = Recent::default();
        loop {
            let url = format!("{}/events?from={next}", m.base);
            match get_json::<Events>(&self.http, &url).await {
                Ok(e) => {
                    failing_since = None;
                    let n = e.events.len() as u64;
                    if e.from != next {
                        m.report.lost = Some(format!(
                            "it answered events from {} when {next} was asked",
                            e.from
                        ));
                        return;
                    }
                    let (rate, lag_ms) = recent.add(e.started, &e.events);
                    self.show(|g| {
                        g.started = e.started;
                        g.dropped = e.dropped;
                        g.in_flight = e.in_flight;
                        g.rate_per_s = rate;
                        g.lag_ms = lag_ms;
                    });
                    if n > 0 {
                        next += n;
                        m.report.records += e
                            .events
                            .iter()
                            .filter(|e| matches!(e, Event::Workflow(_)))
                            .count() as u64;
                        let _ = self.tx.send(e.events);
                    }
                    m.report.started = e.started;
                    m.report.dropped = e.dropped;
                    if e.stopped {
                        self.stopped.store(true, Ordering::SeqCst);
                    }
                    if e.schedule_over
                        && let Some(o) = over.take()
                    {
                        let _ = o.send(());
                    }
                    if e.done && next >= e.total {
                        return;
                    }
                    if n as usize >= wire::MAX_EVENTS {
                        continue;
                    }
                }
                Err(why) => {
                    let since = *failing_since.get_or_insert_with(Instant::now);
                    let gone = m.generator.as_ref().and_then(|g| g.gone());
                    if gone.is_some() || since.elapsed() >= LOST_AFTER {
                        m.report.lost = Some(match gone {
                            Some(g) => format!(
                                "{g}; {next} events were received before (its other starts are missing)"
                            ),
                            None => format!(
                                "it did not answer for {} s ({why}); {next} events were received before (its other starts are missing)",
                                LOST_AFTER.as_secs()
                            ),
                        });
                        return;
                    }
                }
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Update this generator's place on the board, and show the board's sums in `live`.
    fn show(&self, update: impl FnOnce(&mut GeneratorNow)) {
        let board = &mut *lock(&self.board);
        if let Some(g) = board.get_mut(self.slot) {
            update(g);
        }
        let sum = |f: fn(&GeneratorNow) -> u64| board.iter().map(f).sum::<u64>();
        self.live
            .started
            .store(sum(|g| g.started), Ordering::Relaxed);
        self.live
            .dropped
            .store(sum(|g| g.dropped), Ordering::Relaxed);
        self.live
            .in_flight
            .store(sum(|g| g.in_flight), Ordering::Relaxed);
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .no_proxy()
        .build()
        .unwrap_or_default()
}

async fn get_json<T: serde::de::DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> Result<T, String> {
    let resp = http
        .get(url)
        .send()
        .await
        .map_err(|e| crate::errors::error_chain(&e))?;
    if !resp.status().is_success() {
        return Err(format!("GET {url} answered {}", resp.status()));
    }
    let body = resp
        .bytes()
        .await
        .map_err(|e| crate::errors::error_chain(&e))?;
    serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not the expected JSON: {e}"))
}

async fn post(http: &reqwest::Client, url: String, body: Option<String>) -> Result<(), String> {
    let resp = http
        .post(&url)
        .body(body.unwrap_or_default())
        .send()
        .await
        .map_err(|e| crate::errors::error_chain(&e))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!("POST {url} answered {}", resp.status()))
    }
}

/// The plan's fingerprint: what a generator's plan must share with the coordinator's.
pub fn fingerprint(plan: &crate::plan::Plan) -> Fingerprint {
    Fingerprint {
        scenario: plan.scenario.name.clone(),
        scheduled: plan.scheduled,
        duration_us: plan.schedule.duration().as_micros() as u64,
        seed: plan.schedule.seed,
    }
}

/// Now on the wall clock, µs since the Unix epoch.
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// µs from now until `t` (negative when it is past).
fn signed_us_until(t: Instant) -> i64 {
    let now = Instant::now();
    if t >= now {
        (t - now).as_micros() as i64
    } else {
        -((now - t).as_micros() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::BoxFuture;
    use std::sync::atomic::AtomicUsize;

    /// A launcher whose generators never listen; counts its `finish` calls.
    struct NeverListens {
        finished: AtomicUsize,
    }

    impl GeneratorLauncher for NeverListens {
        fn launch(
            &self,
            _index: u32,
            _count: u32,
            _target_url: &str,
        ) -> BoxFuture<'_, Result<Box<dyn LaunchedGenerator>, String>> {
            Box::pin(std::future::pending())
        }

        fn describe(&self) -> String {
            "never".into()
        }

        fn finish(&self) -> BoxFuture<'_, ()> {
            self.finished.fetch_add(1, Ordering::SeqCst);
            Box::pin(async {})
        }
    }

    /// An interrupt during the launch ends it at once: every generator lost with why, the
    /// run stopped, and the launcher's `finish` called (a created Job is deleted).
    #[tokio::test]
    async fn an_interrupt_while_generators_start_ends_the_wait_and_cleans_up() {
        let launcher = Arc::new(NeverListens {
            finished: AtomicUsize::new(0),
        });
        let d = Distributed {
            count: 2,
            launcher: launcher.clone(),
        };
        let fingerprint = Fingerprint {
            scenario: "s".into(),
            scheduled: 10,
            duration_us: 1_000_000,
            seed: 1,
        };
        let control = Control::default();
        let stop = control.stop_starts.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            stop.cancel();
        });
        let fleet = tokio::time::timeout(
            Duration::from_secs(5),
            launch(&d, &fingerprint, "http://127.0.0.1:1", &control.stop_starts),
        )
        .await
        .expect("the launch ends on the interrupt");
        assert_eq!(fleet.ready(), 0);
        let lost = fleet.lost();
        assert_eq!(lost.len(), 2, "{lost:?}");
        assert!(
            lost[0].contains("interrupted while it was being started"),
            "{lost:?}"
        );
        let (tx, _rx) = tokio::sync::mpsc::unbounded_channel();
        let (issued, rest) = fleet
            .drive(
                Instant::now(),
                tx,
                Arc::new(Live::default()),
                Board::default(),
                control,
            )
            .await;
        let reports = rest.await.unwrap();
        assert_eq!(issued, Issued::Stopped);
        assert_eq!(reports.len(), 2);
        assert_eq!(launcher.finished.load(Ordering::SeqCst), 1);
    }
}
