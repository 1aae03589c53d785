//! One pod's life as a process: started in its network namespace, its output kept in
//! a CRI-format log file (what KWOK's `Logs` serves to `kubectl logs`), its probes run,
//! its CPU and memory read from /proc for the pod's `ResourceUsage`, restarted when it
//! exits or fails its liveness probe, and stopped with the pod's grace period.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;

use crate::net;
use crate::spec::{Check, ProbeSpec, ProcessSpec};

/// What the pod's status should say; `kube.rs` writes it as annotations.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Observed {
    pub ready: bool,
    pub restarts: u32,
    /// CPU in millicores (moving average) and resident memory in bytes.
    pub cpu_milli: u64,
    pub memory: u64,
}

pub struct Process {
    pub spec: ProcessSpec,
    pub slot: u8,
    pub log: PathBuf,
}

/// Seconds of CPU (user + system) the process has used, and its resident bytes.
fn proc_usage(pid: u32) -> Option<(f64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // After the comm field: state is [0], utime [11], stime [12], rss (pages) [21].
    let ticks = 100.0; // USER_HZ on Linux
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let rss: u64 = fields.get(21)?.parse().ok()?;
    Some(((utime + stime) / ticks, rss * 4096))
}

async fn check(ip: Ipv4Addr, p: &ProbeSpec) -> bool {
    let timeout = Duration::from_secs(p.timeout_s);
    let attempt = async {
        match &p.check {
            Check::Tcp { port } => tokio::net::TcpStream::connect((ip, *port)).await.is_ok(),
            Check::Http { path, port } => {
                let Ok(mut s) = tokio::net::TcpStream::connect((ip, *port)).await else {
                    return false;
                };
                let req = format!(
                    "GET {path} HTTP/1.1\r\nHost: {ip}:{port}\r\nUser-Agent: kube-probe/1.36\r\nConnection: close\r\n\r\n"
                );
                if s.write_all(req.as_bytes()).await.is_err() {
                    return false;
                }
                let mut line = String::new();
                if BufReader::new(s).read_line(&mut line).await.is_err() {
                    return false;
                }
                // The kubelet's rule: 200 <= status < 400 succeeds.
                line.split_whitespace()
                    .nth(1)
                    .and_then(|c| c.parse::<u16>().ok())
                    .is_some_and(|c| (200..400).contains(&c))
            }
        }
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .unwrap_or(false)
}

/// Append the child's lines to the CRI log: `TIMESTAMP STREAM F LINE`.
fn copy_output(
    stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    name: &'static str,
    log: Arc<Mutex<tokio::fs::File>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let ts = humantime::format_rfc3339_nanos(std::time::SystemTime::now());
            let mut f = log.lock().await;
            let _ = f
                .write_all(format!("{ts} {name} F {line}\n").as_bytes())
                .await;
            let _ = f.flush().await;
        }
    });
}

impl Process {
    fn spawn(&self, log: &Arc<Mutex<tokio::fs::File>>) -> std::io::Result<Child> {
        // `ip netns exec` joins the pod's network namespace and a private mount
        // namespace (with the pod's /etc/hosts); this binary's shim then mounts the
        // volumes, takes the pod's user and becomes the program.
        let shim = crate::shim::path()?;
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &net::netns(self.slot)])
            .arg(shim)
            .args(crate::shim::args(
                &self.spec.binds,
                self.spec.user.as_ref(),
                &self.spec.program,
                &self.spec.args,
            ))
            .env_clear()
            .envs(&self.spec.env)
            .current_dir("/")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // SAFETY: prctl is async-signal-safe; the child dies with the controller.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        copy_output(child.stdout.take().expect("piped"), "stdout", log.clone());
        copy_output(child.stderr.take().expect("piped"), "stderr", log.clone());
        Ok(child)
    }

    /// Run until `stop`, reporting through `report` whenever what the status should say
    /// changes (and every 5 s, for the usage). Returns once the process has exited.
    pub async fn run(
        self,
        stop: CancellationToken,
        report: impl Fn(Observed) + Send + 'static,
        say: impl Fn(String) + Send + Sync + 'static,
    ) {
        let ip = net::pod_ip(self.slot);
        let file = match tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .await
        {
            Ok(f) => Arc::new(Mutex::new(f)),
            Err(e) => {
                say(format!("cannot open the log {}: {e}", self.log.display()));
                return;
            }
        };
        let mut observed = Observed {
            cpu_milli: 1,
            memory: 1 << 20,
            ..Observed::default()
        };
        report(observed.clone());
        let mut backoff = Duration::from_secs(1);
        'life: loop {
            let mut child = match self.spawn(&file) {
                Ok(c) => c,
                Err(e) => {
                    say(format!("cannot start {}: {e}", self.spec.program));
                    tokio::select! {
                        _ = stop.cancelled() => break 'life,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            };
            let pid = child.id().unwrap_or(0);
            say(format!("started {} (pid {pid}) at {ip}", self.spec.program));
            let started = Instant::now();
            let mut samples: VecDeque<(Instant, f64)> = VecDeque::new();
            let (mut ready_ok, mut ready_fail, mut live_fail) = (0u32, 0u32, 0u32);
            let mut next_ready = self
                .spec
                .readiness
                .as_ref()
                .map(|p| started + Duration::from_secs(p.initial_delay_s));
            let mut next_live = self
                .spec
                .liveness
                .as_ref()
                .map(|p| started + Duration::from_secs(p.initial_delay_s.max(1)));
            let mut next_usage = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_millis(250));
            let restart = loop {
                tokio::select! {
                    _ = stop.cancelled() => {
                        self.terminate(&mut child, &say).await;
                        break 'life;
                    }
                    status = child.wait() => {
                        say(format!("{} exited: {status:?}", self.spec.program));
                        break true;
                    }
                    _ = tick.tick() => {}
                }
                let now = Instant::now();
                let mut changed = false;
                if self.spec.readiness.is_none() && !observed.ready {
                    observed.ready = true;
                    changed = true;
                }
                if let (Some(p), Some(at)) = (&self.spec.readiness, next_ready)
                    && now >= at
                {
                    next_ready = Some(now + Duration::from_secs(p.period_s));
                    if check(ip, p).await {
                        ready_fail = 0;
                        ready_ok += 1;
                        if !observed.ready && ready_ok >= p.success_threshold {
                            observed.ready = true;
                            changed = true;
                        }
                    } else {
                        ready_ok = 0;
                        ready_fail += 1;
                        if observed.ready && ready_fail >= p.failure_threshold {
                            observed.ready = false;
                            changed = true;
                        }
                    }
                }
                if let (Some(p), Some(at)) = (&self.spec.liveness, next_live)
                    && now >= at
                {
                    next_live = Some(now + Duration::from_secs(p.period_s));
                    if check(ip, p).await {
                        live_fail = 0;
                    } else {
                        live_fail += 1;
                        if live_fail >= p.failure_threshold {
                            say(format!(
                                "liveness probe failed {live_fail} times: restarting"
                            ));
                            self.terminate(&mut child, &say).await;
                            break true;
                        }
                    }
                }
                if now >= next_usage {
                    next_usage = now + Duration::from_secs(5);
                    if let Some((cpu_s, rss)) = proc_usage(pid) {
                        samples.push_back((now, cpu_s));
                        while samples.len() > 2
                            && now.duration_since(samples[0].0) > Duration::from_secs(15)
                        {
                            samples.pop_front();
                        }
                        let (t0, c0) = samples[0];
                        let span = now.duration_since(t0).as_secs_f64();
                        if span > 0.0 {
                            // metrics-server drops a container reporting 0: at least 1m.
                            observed.cpu_milli =
                                (((cpu_s - c0) / span) * 1000.0).round().max(1.0) as u64;
                        }
                        observed.memory = rss.max(1 << 20);
                    }
                    changed = true;
                }
                if changed {
                    report(observed.clone());
                }
            };
            if restart {
                observed.ready = false;
                observed.restarts += 1;
                report(observed.clone());
                tokio::select! {
                    _ = stop.cancelled() => break 'life,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }

    /// The kubelet's order: the preStop sleep, SIGTERM, the rest of the grace period,
    /// then SIGKILL.
    async fn terminate(&self, child: &mut Child, say: &(impl Fn(String) + Send + Sync)) {
        let grace = Duration::from_secs(self.spec.grace_s);
        let deadline = Instant::now() + grace;
        let pre_stop = Duration::from_secs(self.spec.pre_stop_sleep_s).min(grace);
        tokio::time::sleep(pre_stop).await;
        if let Some(pid) = child.id() {
            // SAFETY: kill(2) on our own child's pid.
            unsafe {
                libc::kill(pid as i32, libc::SIGTERM);
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, child.wait()).await {
            Ok(status) => say(format!("stopped on SIGTERM: {status:?}")),
            Err(_) => {
                let _ = child.kill().await;
                say(format!(
                    "SIGKILL after the {}s grace period",
                    self.spec.grace_s
                ));
            }
        }
    }
}
