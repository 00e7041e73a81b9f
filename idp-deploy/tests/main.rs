//! idp-deploy's integration tests: GitOps, direct deployment, reconciliation, rollback, DORA and cost.
//!
//! One test binary for the whole crate: each module is one file of `tests/`, so the
//! dependencies are linked once rather than once per file.

mod cost;
mod dora;
mod gitops;
mod gitops_layout;
mod kube_deployer;
mod leader;
mod reconcile_e2e;
mod reconcile_efficiency;
mod workload;
