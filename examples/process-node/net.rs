//! The pods' network: a bridge on the host holding the gateway address of
//! 198.18.0.0/24 (RFC 2544's benchmarking range, never routed), and one network
//! namespace per pod joined to it by a veth pair, with the pod's own address. All of it
//! made with iproute2's `ip`, and removed again by `teardown_all`.

use std::net::Ipv4Addr;
use std::process::Command;

use anyhow::{Context, bail};

pub const BRIDGE: &str = "slck0";
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Pod addresses are 198.18.0.N for N in this range.
pub const SLOTS: std::ops::RangeInclusive<u8> = 10..=250;
const NETNS_PREFIX: &str = "slck-";

pub fn pod_ip(slot: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, slot)
}

pub fn netns(slot: u8) -> String {
    format!("{NETNS_PREFIX}{slot}")
}

fn host_veth(slot: u8) -> String {
    format!("slckh{slot}")
}

/// `ip ARGS`, which must succeed.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("run `ip` (Debian's iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The bridge with the gateway address, up (made if missing).
pub fn bridge_up() -> anyhow::Result<()> {
    if ip(&["link", "show", BRIDGE]).is_err() {
        ip(&["link", "add", BRIDGE, "type", "bridge"])?;
        ip(&["addr", "add", &format!("{GATEWAY}/24"), "dev", BRIDGE])?;
    }
    ip(&["link", "set", BRIDGE, "up"])
}

/// The pod's namespace, on the bridge, with its address and a default route through
/// the gateway. A leftover of the same slot is removed first.
pub fn pod_up(slot: u8) -> anyhow::Result<()> {
    pod_down(slot);
    let ns = netns(slot);
    let veth = host_veth(slot);
    ip(&["netns", "add", &ns])?;
    ip(&[
        "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
    ])?;
    ip(&["link", "set", &veth, "master", BRIDGE, "up"])?;
    ip(&["-n", &ns, "link", "set", "lo", "up"])?;
    ip(&[
        "-n",
        &ns,
        "addr",
        "add",
        &format!("{}/24", pod_ip(slot)),
        "dev",
        "eth0",
    ])?;
    ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
    ip(&[
        "-n",
        &ns,
        "route",
        "add",
        "default",
        "via",
        &GATEWAY.to_string(),
    ])?;
    // Before the process starts: `ip netns exec` mounts /etc/netns/<ns>/hosts over
    // /etc/hosts only if it exists then. The controller fills in the Services on its
    // next pass, in place, which the running process sees.
    write_hosts(slot, "127.0.0.1 localhost\n::1 localhost\n")
}

/// Remove the pod's namespace and veth (no error if they are gone).
pub fn pod_down(slot: u8) {
    let _ = ip(&["link", "del", &host_veth(slot)]);
    let _ = ip(&["netns", "del", &netns(slot)]);
    let _ = std::fs::remove_dir_all(format!("/etc/netns/{}", netns(slot)));
}

/// Every pod namespace and the bridge.
pub fn teardown_all() {
    for slot in SLOTS {
        if std::path::Path::new(&format!("/run/netns/{}", netns(slot))).exists() {
            pod_down(slot);
        }
    }
    let _ = ip(&["link", "del", BRIDGE]);
}

/// `/etc/netns/<ns>/hosts`, which `ip netns exec` mounts over /etc/hosts for the pod's
/// process: written in place (same inode), so a running process sees updates.
pub fn write_hosts(slot: u8, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let dir = format!("/etc/netns/{}", netns(slot));
    std::fs::create_dir_all(&dir).with_context(|| format!("create {dir}"))?;
    let path = format!("{dir}/hosts");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .with_context(|| format!("write {path}"))?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("write {path}"))
}
