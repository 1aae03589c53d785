//! The embedded autoscaler of the `local` platform: the Kubernetes
//! HorizontalPodAutoscaler v2 algorithm (`hpa`), fed by the same `stack/` HPA
//! manifest that is applied to clusters (`manifest`), and the figures read
//! off a replica timeline (`figures`). Pure and clock-free:
//! callers pass the time, so every decision is reproducible in tests.

pub mod figures;
pub mod hpa;
pub mod manifest;
