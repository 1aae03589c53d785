//! A real PostgreSQL (Debian's `postgresql` package) started per test: `initdb` into a
//! temp dir and `postgres` on a free loopback port, as an unprivileged user when the
//! tests run as root (PostgreSQL refuses root), trust authentication on loopback only.
//! Stopped (fast shutdown, then kill) when dropped, so on every exit path of a test.
//!
//! Without the binaries the tests print `SKIPPED:` and pass, unless
//! `SLO_CHECK_REQUIRE_POSTGRES` is set (scripts/test.sh installs the package and sets it).

use std::io::Write as _;
use std::net::TcpStream;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The user PostgreSQL runs as when the tests run as root.
const NOBODY: u32 = 65534;

/// A running PostgreSQL server.
pub struct PgServer {
    child: Option<Child>,
    pub port: u16,
    _dir: tempfile::TempDir,
}

/// The directory holding `initdb` and `postgres`: `SLO_CHECK_POSTGRES_BIN`, PATH, or
/// Debian's /usr/lib/postgresql/<version>/bin (the newest).
fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("SLO_CHECK_POSTGRES_BIN") {
        return Some(PathBuf::from(dir));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .find(|d| d.join("initdb").is_file() && d.join("postgres").is_file())
    });
    on_path.or_else(|| {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
            .filter(|b| b.join("initdb").is_file())
            .collect();
        versions.sort_by_key(|p| {
            p.parent()
                .and_then(|v| v.file_name()?.to_str()?.parse::<u32>().ok())
                .unwrap_or(0)
        });
        versions.pop()
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn as_server_user(cmd: &mut Command) {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        cmd.uid(NOBODY).gid(NOBODY);
    }
}

impl PgServer {
    /// Start a fresh server; `None` (with a printed reason) when PostgreSQL is not
    /// installed and not required.
    pub fn start() -> Option<PgServer> {
        let Some(bin) = bin_dir() else {
            assert!(
                std::env::var_os("SLO_CHECK_REQUIRE_POSTGRES").is_none(),
                "SLO_CHECK_REQUIRE_POSTGRES is set but no initdb/postgres was found; \
                 scripts/test.sh installs Debian's postgresql"
            );
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED (PostgreSQL history tests): no initdb/postgres; apt-get install postgresql, as scripts/test.sh does"
            );
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if unsafe { libc::geteuid() } == 0 {
            chown(dir.path());
            chown(&data);
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args(["-U", "slo", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .current_dir(dir.path());
        as_server_user(&mut initdb);
        let out = initdb.output().expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let mut postgres = Command::new(bin.join("postgres"));
        postgres
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", data.display()))
            .args(["-c", "fsync=off", "-c", "max_connections=40"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .current_dir(dir.path());
        as_server_user(&mut postgres);
        let child = postgres.spawn().expect("postgres starts");
        let server = PgServer {
            child: Some(child),
            port,
            _dir: dir,
        };
        server.wait_ready();
        Some(server)
    }

    /// The URL of the `postgres` database as user `slo`.
    pub fn url(&self) -> String {
        format!("postgres://slo@127.0.0.1:{}/postgres", self.port)
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && postgres::Client::connect(&self.url(), postgres::NoTls).is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "postgres never accepted connections on {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn chown(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::chown(c.as_ptr(), NOBODY, NOBODY) };
    assert_eq!(rc, 0, "chown {}", path.display());
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Fast shutdown (SIGINT): the postmaster ends its backends and exits.
        unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}
