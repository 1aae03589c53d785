//! Istio's traffic split on the embedded balancer, for a canary run: a request whose
//! headers match the canary's header route goes to the canary subset; every other one
//! goes to the canary with probability weight / 100 (Envoy's weighted clusters draw per
//! request), else to stable. Within a subset, the least-connections pick. Without a
//! canary, every request goes to the one pool.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use hyper::HeaderMap;
use hyper::header::HeaderName;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::pool::{InFlight, Pool, lock};
use crate::scenario::Subset;
use crate::target::{BoxFuture, TrafficSplit};

/// The subsets' pools and the route between them; implements `TrafficSplit`.
#[derive(Debug)]
pub struct Split {
    /// Indexed by `Subset::index`; one pool when there is no canary.
    pools: Vec<Arc<Pool>>,
    /// The canary's share of the weighted route, percent.
    weight: AtomicU8,
    /// Requests with all of these (name, exact value) go to the canary.
    header: Vec<(HeaderName, String)>,
    rng: Mutex<SmallRng>,
    closed: AtomicBool,
}

impl Split {
    /// Every request to `pool`.
    pub(super) fn single(pool: Arc<Pool>) -> Split {
        Split::new(vec![pool], Vec::new(), 0)
    }

    /// A stable and a canary pool; weight 0 until `set_canary_weight`.
    pub(super) fn canary(
        stable: Arc<Pool>,
        canary: Arc<Pool>,
        header: Vec<(HeaderName, String)>,
        seed: u64,
    ) -> Split {
        Split::new(vec![stable, canary], header, seed)
    }

    fn new(pools: Vec<Arc<Pool>>, header: Vec<(HeaderName, String)>, seed: u64) -> Split {
        Split {
            pools,
            weight: AtomicU8::new(0),
            header,
            rng: Mutex::new(SmallRng::seed_from_u64(seed)),
            closed: AtomicBool::new(false),
        }
    }

    /// The canary's weight now, percent.
    pub fn canary_weight(&self) -> u8 {
        self.weight.load(Ordering::Acquire)
    }

    /// The subset a request with `headers` is routed to (`Stable` without a canary).
    pub(super) fn route(&self, headers: &HeaderMap) -> Subset {
        if self.pools.len() < 2 {
            return Subset::Stable;
        }
        let matched = !self.header.is_empty()
            && self.header.iter().all(|(name, value)| {
                headers
                    .get(name)
                    .is_some_and(|v| v.as_bytes() == value.as_bytes())
            });
        if matched {
            return Subset::Canary;
        }
        match self.canary_weight() {
            0 => Subset::Stable,
            w if w >= 100 => Subset::Canary,
            w => {
                if lock(&self.rng).random_range(0..100u8) < w {
                    Subset::Canary
                } else {
                    Subset::Stable
                }
            }
        }
    }

    /// The pool of `subset`.
    pub(super) fn pool(&self, subset: Subset) -> &Arc<Pool> {
        self.pools.get(subset.index()).unwrap_or(&self.pools[0])
    }

    /// The replica owning workflow `id` in any subset, with the pool it is in.
    pub(super) fn owner_of(&self, id: &str) -> Option<(InFlight, &Arc<Pool>)> {
        self.pools
            .iter()
            .find_map(|p| p.owner_of(id).map(|r| (r, p)))
    }

    /// Refuses further changes (the platform is going down).
    pub(super) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }
}

/// The balancer's route is control plane and data plane at once: the next request
/// is routed by the new weight.
impl TrafficSplit for Split {
    fn set_canary_weight(&self, percent: u8) -> BoxFuture<'_, anyhow::Result<()>> {
        Box::pin(async move {
            if self.closed.load(Ordering::Acquire) {
                anyhow::bail!("cannot set the canary's weight: the embedded platform is down");
            }
            if self.pools.len() < 2 {
                anyhow::bail!("the embedded platform runs no canary subset");
            }
            self.weight.store(percent.min(100), Ordering::Release);
            Ok(())
        })
    }

    fn describe(&self) -> String {
        "the embedded balancer's route (takes effect on the next request)".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.insert(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn the_header_match_comes_first_then_the_weights() {
        let split = Split::canary(
            Arc::new(Pool::default()),
            Arc::new(Pool::default()),
            vec![(HeaderName::from_static("canary-user"), "true".into())],
            3,
        );
        let plain = headers(&[]);
        let user = headers(&[("canary-user", "true")]);
        let other = headers(&[("canary-user", "false")]);
        assert!((0..1000).all(|_| split.route(&plain) == Subset::Stable));
        assert!((0..1000).all(|_| split.route(&user) == Subset::Canary));
        block_on(split.set_canary_weight(25)).unwrap();
        let n = 20_000;
        let canary = (0..n)
            .filter(|_| split.route(&other) == Subset::Canary)
            .count();
        // 4 sigma of a binomial(20000, 0.25) is about 245.
        assert!((canary as f64 - 5000.0).abs() < 245.0, "{canary}");
        block_on(split.set_canary_weight(100)).unwrap();
        assert!((0..1000).all(|_| split.route(&plain) == Subset::Canary));
        block_on(split.set_canary_weight(0)).unwrap();
        assert!((0..1000).all(|_| split.route(&plain) == Subset::Stable));
        assert!((0..100).all(|_| split.route(&user) == Subset::Canary));
        split.close();
        assert!(block_on(split.set_canary_weight(10)).is_err());
    }

    #[test]
    fn without_a_canary_everything_is_stable_and_weights_are_refused() {
        let split = Split::single(Arc::new(Pool::default()));
        assert_eq!(
            split.route(&headers(&[("canary-user", "true")])),
            Subset::Stable
        );
        assert!(block_on(split.set_canary_weight(10)).is_err());
    }
}
