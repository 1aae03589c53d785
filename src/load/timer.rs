//! A precise one-shot timer for the pacer: a Linux timerfd registered in the
//! worker's own event loop. A start wakes the worker within microseconds of its
//! intended time without a thread of its own (tokio's timer wheel ticks every
//! 1 ms, which would add up to a millisecond of schedule lag to every start),
//! and when the worker is busy the expiry is picked up in the same poll as the
//! socket events, so starts due together are issued in one batch.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A timerfd (CLOCK_MONOTONIC, the clock `Instant` reads) in the current runtime.
pub struct PreciseTimer {
    fd: AsyncFd<OwnedFd>,
}

impl PreciseTimer {
    /// Must be called within a tokio runtime with I/O enabled.
    pub fn new() -> io::Result<PreciseTimer> {
        // SAFETY: plain syscall; the returned descriptor is owned by `OwnedFd` below.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an `OwnedFd` keeps its descriptor open and unchanged until dropped.
        let fd = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE)? };
        Ok(PreciseTimer { fd })
    }

    /// Wait until `deadline`; returns at once when it has passed.
    ///
    /// The expiry count is never read: re-arming the timer resets it, and the
    /// event loop's edge-triggered registration reports every expiry anyway, so
    /// a wait costs one `timerfd_settime` and no `read`.
    pub async fn sleep_until(&self, deadline: Instant) -> io::Result<()> {
        let now = Instant::now();
        if deadline <= now {
            return Ok(());
        }
        self.arm(deadline - now)?;
        loop {
            let mut guard = self.fd.readable().await?;
            guard.clear_ready();
            // Readiness left by an earlier expiry can wake us early: wait for this one.
            if Instant::now() >= deadline {
                return Ok(());
            }
        }
    }

    /// One expiry `after` from now (re-arming also clears a pending expiry).
    fn arm(&self, after: Duration) -> io::Result<()> {
        // A zero value would disarm the timer instead.
        let after = after.max(Duration::from_nanos(1));
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: after.as_secs() as libc::time_t,
                tv_nsec: after.subsec_nanos() as libc::c_long,
            },
        };
        // SAFETY: valid descriptor and a valid itimerspec; the old value is not wanted.
        let rc = unsafe {
            libc::timerfd_settime(
                self.fd.get_ref().as_raw_fd(),
                0,
                &spec,
                std::ptr::null_mut(),
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn never_returns_before_the_deadline() {
        let timer = PreciseTimer::new().unwrap();
        for ms in [0u64, 1, 3] {
            let deadline = Instant::now() + Duration::from_millis(ms);
            timer.sleep_until(deadline).await.unwrap();
            assert!(Instant::now() >= deadline);
        }
        // A deadline in the past returns at once, without arming.
        timer
            .sleep_until(Instant::now() - Duration::from_millis(1))
            .await
            .unwrap();
    }
}
