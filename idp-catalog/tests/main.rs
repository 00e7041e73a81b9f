//! idp-catalog's integration tests: the catalog, Backstage compatibility and the scaffolder.
//!
//! One test binary for the whole crate: each module is one file of `tests/`, so the
//! dependencies are linked once rather than once per file. `scaffolder_tracing.rs` is the
//! exception: it needs a process to itself (see its header).

mod backstage;
mod catalog;
mod conformance;
mod props;
mod scaffolder;
mod scaffolder_golden;
mod scaffolder_props;
mod scaffolder_security;
mod staged;
