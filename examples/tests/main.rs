//! idpctl and idp-server, end to end: the binaries run as a user runs them, and the server started in-process.
//!
//! One test binary for the whole crate: each module is one file of `tests/`, so the
//! dependencies are linked once rather than once per file.

mod common;
mod server_common;

mod deploy_manifests;
mod idp_server;
mod idpctl;
mod idpctl_catalog;
mod idpctl_cost;
mod idpctl_deploy;
mod idpctl_policy;
mod idpctl_policy_audit;
mod idpctl_preview;
mod idpctl_preview_env;
mod idpctl_reconcile;
mod idpctl_scaffold;
mod server_create;
mod server_deliver;
mod server_ops;
mod server_tls;
