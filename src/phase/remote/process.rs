//! Generators as processes on this machine: `slo-check generate … --shard i/N` started
//! from this very executable, each on a loopback port it picks and prints. Each child is
//! killed when it is stopped or dropped, and by the kernel when the coordinator dies, so
//! no exit path leaves one running.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::target::{BoxFuture, GeneratorLauncher, LaunchedGenerator};

/// The line a generator prints on stdout once it listens: `listening on ADDR`.
pub const LISTENING: &str = "listening on ";
/// How long a generator may take to exit after `/exit` before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(3);
/// How much of a generator's stderr is kept, to say why it died.
const STDERR_KEPT: usize = 2000;

/// Starts `exe args… --shard i/N --target-url URL --listen 127.0.0.1:0`.
pub struct ProcessLauncher {
    pub exe: PathBuf,
    /// Everything but the shard, the target and the listen address (the scenario, its
    /// seed and time scale, as the coordinator resolved them).
    pub args: Vec<String>,
}

impl GeneratorLauncher for ProcessLauncher {
    fn launch(
        &self,
        index: u32,
        count: u32,
        target_url: &str,
    ) -> BoxFuture<'_, Result<Box<dyn LaunchedGenerator>, String>> {
        let target_url = target_url.to_string();
        Box::pin(async move {
            let mut cmd = Command::new(&self.exe);
            cmd.args(&self.args)
                .arg("--shard")
                .arg(format!("{index}/{count}"))
                .arg("--target-url")
                .arg(&target_url)
                .arg("--listen")
                .arg("127.0.0.1:0")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                // Their own process group: a Ctrl-C at the terminal reaches the coordinator
                // alone, which stops them through their control API, records kept.
                .process_group(0);
            // A coordinator killed outright (SIGKILL) runs no destructor: the kernel then
            // kills its generators (the thread that forks them is a runtime thread, which
            // lives as long as the coordinator).
            // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
            unsafe {
                cmd.pre_exec(|| {
                    if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
            let mut child = cmd
                .spawn()
                .map_err(|e| format!("cannot run {}: {e}", self.exe.display()))?;
            let pid = child.id().unwrap_or_default();
            let stderr = Arc::new(Mutex::new(String::new()));
            if let Some(mut err) = child.stderr.take() {
                let kept = stderr.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    while let Ok(n) = err.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                        if let Ok(mut k) = kept.lock() {
                            k.push_str(&String::from_utf8_lossy(&buf[..n]));
                            let mut cut = k.len().saturating_sub(STDERR_KEPT);
                            while !k.is_char_boundary(cut) {
                                cut += 1;
                            }
                            k.drain(..cut);
                        }
                    }
                });
            }
            let stdout = child.stdout.take().ok_or("no stdout")?;
            let mut lines = BufReader::new(stdout).lines();
            let addr = loop {
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        if let Some(a) = line.strip_prefix(LISTENING) {
                            break a.trim().parse::<SocketAddr>().map_err(|e| {
                                format!("pid {pid} printed {line:?}, not an address: {e}")
                            })?;
                        }
                    }
                    _ => {
                        let status = child.wait().await.ok();
                        let err = stderr
                            .lock()
                            .map(|s| s.trim().to_string())
                            .unwrap_or_default();
                        return Err(format!(
                            "pid {pid} exited ({}) before it listened: {err}",
                            status.map_or("unknown status".into(), |s| s.to_string())
                        ));
                    }
                }
            };
            // Its stdout is not read further: it prints nothing more.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            Ok(Box::new(ProcessGenerator {
                pid,
                addr,
                child: tokio::sync::Mutex::new(Some(child)),
                exited: Mutex::new(None),
                stderr,
            }) as Box<dyn LaunchedGenerator>)
        })
    }

    fn describe(&self) -> String {
        format!("processes on this machine ({})", self.exe.display())
    }
}

/// One generator process.
struct ProcessGenerator {
    pid: u32,
    addr: SocketAddr,
    child: tokio::sync::Mutex<Option<Child>>,
    exited: Mutex<Option<String>>,
    stderr: Arc<Mutex<String>>,
}

impl LaunchedGenerator for ProcessGenerator {
    fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn describe(&self) -> String {
        format!("pid {}", self.pid)
    }

    fn gone(&self) -> Option<String> {
        if let Some(e) = self.exited.lock().ok()?.clone() {
            return Some(e);
        }
        let mut guard = self.child.try_lock().ok()?;
        let child = guard.as_mut()?;
        let status = child.try_wait().ok()??;
        let err = self
            .stderr
            .lock()
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        let why = if err.is_empty() {
            format!("it exited ({status})")
        } else {
            format!("it exited ({status}): {err}")
        };
        if let Ok(mut e) = self.exited.lock() {
            *e = Some(why.clone());
        }
        Some(why)
    }

    fn stop(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            let Some(mut child) = self.child.lock().await.take() else {
                return;
            };
            if tokio::time::timeout(EXIT_GRACE, child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        })
    }
}
