//! `slo-check stack up|down|status|clean|permissions`: the kube platform's steps one at a time,
//! for people and CI scripts. Exit: 0 done, 2 bad flags, 3 the cluster failed us,
//! 130 interrupted.

use crate::cli::{StackAction, StackArgs};
use crate::exit;
use crate::platform::kube::stack::{self, Action};

/// Run the command.
pub fn run(args: &StackArgs) -> u8 {
    let (action, kube) = match &args.action {
        StackAction::Up(k) => (Action::Up, k),
        StackAction::Down(k) => (Action::Down, k),
        StackAction::Status(k) => (Action::Status, k),
        StackAction::Clean(k) => (Action::Clean, k),
        StackAction::Permissions(k) => (Action::Permissions, k),
    };
    let request = super::kube_request(kube);
    exit::block_on(async {
        match stack::run(action, &request).await {
            Ok(()) => exit::PASS,
            Err(e) => {
                eprintln!("error: {e}");
                e.class().code()
            }
        }
    })
}
