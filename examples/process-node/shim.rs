//! The last step before a pod's program: `process-node --pod-exec [--bind SRC=DST]...
//! [--user UID:GID[:GROUP,...]] -- PROGRAM ARGS...`, run by `ip netns exec` inside the
//! pod's network namespace and the private mount namespace `ip` made for it. It
//! bind-mounts the pod's volumes at their mount paths (visible to this pod only),
//! takes the pod's user and groups, and becomes the program (same pid), which dies
//! with the process node.

use std::ffi::CString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, bail};

/// The copy of this executable that pods are started through.
static SHIM: OnceLock<PathBuf> = OnceLock::new();

/// Copies this executable into `dir` and starts pods through the copy from now on, so
/// that a rebuild of the controller (cargo replaces the file) cannot break the pods it
/// starts later: a replaced executable's `/proc/self/exe` names a deleted file.
pub fn snapshot_self(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let exe = std::env::current_exe().context("this executable's path")?;
    std::fs::create_dir_all(dir).with_context(|| format!("make {}", dir.display()))?;
    let copy = dir.join("process-node-shim");
    let tmp = copy.with_extension("tmp");
    std::fs::copy(&exe, &tmp)
        .with_context(|| format!("copy {} to {}", exe.display(), tmp.display()))?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    std::fs::rename(&tmp, &copy)?;
    let _ = SHIM.set(copy);
    Ok(())
}

/// What `ip netns exec` runs: the snapshot, or this executable before there is one.
pub fn path() -> std::io::Result<PathBuf> {
    match SHIM.get() {
        Some(p) => Ok(p.clone()),
        None => std::env::current_exe(),
    }
}

/// A pod's volume: the node's directory `source`, mounted at `target` in the pod.
#[derive(Clone, Debug, PartialEq)]
pub struct Bind {
    pub source: String,
    pub target: String,
}

/// The pod's user: uid, primary gid and supplementary groups (fsGroup among them).
#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

/// The shim's arguments, after `--pod-exec`, for these binds, user and program.
pub fn args(binds: &[Bind], user: Option<&User>, program: &str, rest: &[String]) -> Vec<String> {
    let mut out = vec!["--pod-exec".to_string()];
    for b in binds {
        out.extend(["--bind".into(), format!("{}={}", b.source, b.target)]);
    }
    if let Some(u) = user {
        let groups: Vec<String> = u.groups.iter().map(u32::to_string).collect();
        out.extend([
            "--user".into(),
            format!("{}:{}:{}", u.uid, u.gid, groups.join(",")),
        ]);
    }
    out.push("--".into());
    out.push(program.into());
    out.extend(rest.iter().cloned());
    out
}

/// Parse what `args` wrote (without `--pod-exec`).
fn parse(argv: &[String]) -> anyhow::Result<(Vec<Bind>, Option<User>, Vec<String>)> {
    let mut binds = Vec::new();
    let mut user = None;
    let mut it = argv.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--bind" => {
                let v = it.next().context("--bind needs SRC=DST")?;
                let (source, target) = v.split_once('=').context("--bind needs SRC=DST")?;
                binds.push(Bind {
                    source: source.into(),
                    target: target.into(),
                });
            }
            "--user" => {
                let v = it.next().context("--user needs UID:GID[:GROUPS]")?;
                let mut parts = v.splitn(3, ':');
                let num = |s: Option<&str>| -> anyhow::Result<u32> {
                    s.context("--user needs UID:GID[:GROUPS]")?
                        .parse()
                        .context("--user: not a number")
                };
                let uid = num(parts.next())?;
                let gid = num(parts.next())?;
                let groups = parts
                    .next()
                    .unwrap_or("")
                    .split(',')
                    .filter(|g| !g.is_empty())
                    .map(|g| g.parse().context("--user: a group is not a number"))
                    .collect::<anyhow::Result<Vec<u32>>>()?;
                user = Some(User { uid, gid, groups });
            }
            "--" => {
                let program: Vec<String> = it.cloned().collect();
                if program.is_empty() {
                    bail!("no program after --");
                }
                return Ok((binds, user, program));
            }
            other => bail!("unknown argument `{other}`"),
        }
    }
    bail!("no `-- PROGRAM`")
}

fn check(what: &str, rc: libc::c_int) -> anyhow::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error()).context(what.to_string())
    }
}

/// Mount, change user, and exec; returns only with the reason it could not.
pub fn exec(argv: &[String]) -> anyhow::Error {
    match prepare(argv) {
        Ok(program) => {
            let err = std::process::Command::new(&program[0])
                .args(&program[1..])
                .exec();
            anyhow::Error::new(err).context(format!("exec {}", program[0]))
        }
        Err(e) => e,
    }
}

fn prepare(argv: &[String]) -> anyhow::Result<Vec<String>> {
    let (binds, user, program) = parse(argv)?;
    for b in &binds {
        // The mount point exists on the node's filesystem (made here when missing, as
        // an empty directory); what is mounted on it is seen by this pod alone.
        if !Path::new(&b.target).exists() {
            std::fs::create_dir_all(&b.target)
                .with_context(|| format!("make the mount point {}", b.target))?;
        }
        let src = CString::new(b.source.as_str())?;
        let dst = CString::new(b.target.as_str())?;
        // SAFETY: plain syscall with valid NUL-terminated strings.
        let rc = unsafe {
            libc::mount(
                src.as_ptr(),
                dst.as_ptr(),
                std::ptr::null(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            )
        };
        check(&format!("bind-mount {} on {}", b.source, b.target), rc)?;
    }
    if let Some(u) = &user {
        let groups: Vec<libc::gid_t> = u.groups.clone();
        // SAFETY: plain syscalls; the group list outlives the call. Groups and gid
        // first: once the uid is not root they can no longer change.
        unsafe {
            check("setgroups", libc::setgroups(groups.len(), groups.as_ptr()))?;
            check("setgid", libc::setgid(u.gid))?;
            check("setuid", libc::setuid(u.uid))?;
        }
    }
    // A change of user clears the parent-death signal: set it again, so the program
    // still dies with the process node.
    // SAFETY: plain syscall.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_args_writes_parse_reads_back() {
        let binds = vec![Bind {
            source: "/state/claims/ns/data-redis-0".into(),
            target: "/data".into(),
        }];
        let user = User {
            uid: 999,
            gid: 999,
            groups: vec![999, 5],
        };
        let rest = vec!["--dir".to_string(), "/data".to_string()];
        let argv = args(&binds, Some(&user), "redis-server", &rest);
        assert_eq!(argv[0], "--pod-exec");
        let (b, u, p) = parse(&argv[1..]).expect("parses");
        assert_eq!(b, binds);
        assert_eq!(u, Some(user));
        assert_eq!(p, vec!["redis-server", "--dir", "/data"]);
        let (b, u, p) = parse(&args(&[], None, "x", &[])[1..]).expect("parses");
        assert!(b.is_empty() && u.is_none());
        assert_eq!(p, vec!["x"]);
    }

    #[test]
    fn bad_shim_arguments_are_refused() {
        for argv in [
            vec!["--bind", "nosep", "--", "x"],
            vec!["--user", "a:b", "--", "x"],
            vec!["--user", "1:2:x", "--", "x"],
            vec!["--"],
            vec!["--what"],
            vec![],
        ] {
            let argv: Vec<String> = argv.into_iter().map(String::from).collect();
            assert!(parse(&argv).is_err(), "{argv:?}");
        }
    }
}
