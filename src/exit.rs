//! Exit codes, the class every failure carries, and the one way a command runs
//! async code: the leaf that commands and library share (it imports nothing of
//! the crate).

use std::future::Future;

/// Every SLO holds.
pub const PASS: u8 = 0;
/// An SLO failed (or a regression was found, or no capacity was found).
pub const FAIL: u8 = 1;
/// Bad input or usage.
pub const USAGE: u8 = 2;
/// Infrastructure error: the target could not be reached, a report could not be written.
pub const INFRA: u8 = 3;
/// Interrupted by SIGINT/SIGTERM; a partial report was written.
pub const INTERRUPTED: u8 = 130;

/// What kind of failure ended (or marred) a command: library errors carry it, the
/// commands layer turns it into an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Bad flags, files or settings (exit 2).
    Usage,
    /// The system under test, the cluster or the file system failed us (exit 3).
    Infra,
    /// A signal arrived (exit 130).
    Interrupted,
}

impl Class {
    /// The exit code of this class.
    pub fn code(self) -> u8 {
        match self {
            Class::Usage => USAGE,
            Class::Infra => INFRA,
            Class::Interrupted => INTERRUPTED,
        }
    }
}

/// Run a command's async body on a multi-thread runtime and return its exit code (3 when
/// no runtime can be started).
pub fn block_on(body: impl Future<Output = u8>) -> u8 {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime.block_on(body),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            INFRA
        }
    }
}

/// A failure that ends a command, with its class.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    pub class: Class,
    /// One line (or a few) naming what failed and what would be right.
    pub message: String,
}

impl Failure {
    /// Bad flags, files or settings.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure {
            class: Class::Usage,
            message: message.into(),
        }
    }

    /// Something outside slo-check failed.
    pub fn infra(message: impl Into<String>) -> Failure {
        Failure {
            class: Class::Infra,
            message: message.into(),
        }
    }
}

/// How a run-like command (`run`, `capacity`, `report`) ended once it got going: its
/// reports are written (or the failure to write them is among `problems`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ending {
    /// Every SLO held and no regression was found (`capacity`: a capacity was found).
    pub passed: bool,
    /// Infrastructure problems, one message each (exit 3 unless interrupted).
    pub problems: Vec<String>,
    /// A signal cut the command short (exit 130, whatever else happened).
    pub interrupted: bool,
}

impl Ending {
    /// The exit code: 130 interrupted, else 3 on a problem, else 0 passed or 1.
    pub fn code(&self) -> u8 {
        if self.interrupted {
            INTERRUPTED
        } else if !self.problems.is_empty() {
            INFRA
        } else if self.passed {
            PASS
        } else {
            FAIL
        }
    }
}
