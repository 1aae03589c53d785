//! CPU used by each component of the machine during a cluster test (control plane,
//! KWOK, the process node, the agents, Redis, the load generator), read from /proc and
//! printed as a table, so that every run states what it used of the two cores.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How often /proc is read; a process that exits between two reads loses at most this.
const SAMPLE: Duration = Duration::from_secs(1);

/// Per process: its component, CPU ticks when first seen (0 for a process born in the
/// window) and at the latest read.
type Seen = BTreeMap<i32, (&'static str, u64, u64)>;

/// Samples /proc in a thread until [`CpuLedger::table`].
pub struct CpuLedger {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<(Seen, u64)>>,
    started: Instant,
}

impl CpuLedger {
    pub fn start() -> CpuLedger {
        let stop = Arc::new(AtomicBool::new(false));
        let running = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen = Seen::new();
            let machine_start = machine_ticks();
            let mut first = true;
            loop {
                for (pid, component, ticks) in processes() {
                    seen.entry(pid).and_modify(|e| e.2 = ticks).or_insert((
                        component,
                        if first { ticks } else { 0 },
                        ticks,
                    ));
                }
                first = false;
                if running.load(Ordering::Relaxed) {
                    return (seen, machine_ticks().saturating_sub(machine_start));
                }
                std::thread::sleep(SAMPLE);
            }
        });
        CpuLedger {
            stop,
            thread: Some(thread),
            started: Instant::now(),
        }
    }

    /// Stops sampling; the table of CPU-seconds and average millicores per component
    /// over the window, with the machine's total.
    pub fn table(mut self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        let (seen, machine) = self.thread.take().unwrap().join().expect("the CPU sampler");
        let window = self.started.elapsed().as_secs_f64();
        let hz = ticks_per_second();
        let mut per: BTreeMap<&str, u64> = BTreeMap::new();
        for (component, first, last) in seen.values() {
            *per.entry(component).or_default() += last.saturating_sub(*first);
        }
        let mut rows: Vec<(&str, u64)> = per.into_iter().collect();
        rows.sort_by_key(|r| std::cmp::Reverse(r.1));
        let mut out = format!(
            "CPU per component over {window:.0} s (utime+stime from /proc, every process of the kind on the machine; 2 cores = 2000m):\n"
        );
        let mut line = |name: &str, ticks: u64| {
            let secs = ticks as f64 / hz;
            let _ = writeln!(
                out,
                "  {name:<32} {secs:>7.1} s {:>6.0}m",
                secs / window * 1000.0
            );
        };
        for (name, ticks) in rows {
            line(name, ticks);
        }
        line("machine (all of /proc/stat)", machine);
        out
    }
}

impl Drop for CpuLedger {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 { hz as f64 } else { 100.0 }
}

/// Busy ticks of all CPUs (user, nice, system, irq, softirq, steal) from /proc/stat.
fn machine_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    [0, 1, 2, 5, 6, 7]
        .iter()
        .filter_map(|i| fields.get(*i))
        .sum()
}

/// Every process of a known component: (pid, component, utime + stime in ticks).
fn processes() -> Vec<(i32, &'static str, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (head, rest) = stat.rsplit_once(')')?;
            let comm = head.split_once('(')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            // After the comm field: state is [0], utime [11], stime [12].
            let ticks =
                fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
            Some((pid, component(pid, comm)?, ticks))
        })
        .collect()
}

fn component(pid: i32, comm: &str) -> Option<&'static str> {
    Some(match comm {
        "kube-apiserver" => "kube-apiserver",
        "etcd" => "etcd",
        // comm is cut at 15 bytes.
        "kube-controller" => "kube-controller-manager",
        "kube-scheduler" => "kube-scheduler",
        "metrics-server" => "metrics-server",
        "kwok" | "kwok-controller" => "kwok-controller",
        "process-node" => "process-node controller",
        "redis-server" => "redis-server",
        // The process node runs a copy named `<n>-slo-check`.
        c if c == "slo-check" || c.ends_with("-slo-check") => {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            match cmdline.split(|b| *b == 0).nth(1) {
                Some(b"agent") => "agents (slo-check agent)",
                _ => "slo-check (load generator)",
            }
        }
        "kubectl" => "kubectl (the tests' calls)",
        c if c.starts_with("tests-") => "test harness",
        _ => return None,
    })
}
