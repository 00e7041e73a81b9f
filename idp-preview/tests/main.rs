//! idp-preview's integration tests: webhooks, lifecycle, environment providers and the reaper.
//!
//! One test binary for the whole crate: each module is one file of `tests/`, so the
//! dependencies are linked once rather than once per file.

mod common;

mod controller;
mod github;
mod gitlab;
mod gitops_provider;
mod handle;
mod load;
mod namespace_provider;
mod plan;
mod reaper;
mod verify;
