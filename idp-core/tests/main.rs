//! idp-core's integration tests: cluster access, Git plumbing, kubeconfig and manifest parsing.
//!
//! One test binary for the whole crate: each module is one file of `tests/`, so the
//! dependencies are linked once rather than once per file.

mod cluster;
mod git;
mod kubeconfig;
mod manifest_props;
