//! The test cluster's mesh control plane (test infrastructure, not the product): it
//! watches the API server and writes, for each ingress-gateway proxy, the Envoy
//! configuration istiod would send, as xDS files the proxy's Envoy watches.

// Until main watches the API server and uses them (they are tested either way).
#[cfg_attr(not(test), allow(dead_code))]
mod translate;
#[cfg_attr(not(test), allow(dead_code))]
mod xds;

fn main() -> anyhow::Result<()> {
    anyhow::bail!("not yet")
}
