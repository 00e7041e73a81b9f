//! idp-testkit's integration tests: the in-process API server, kubectl against it, and Git fixtures.
//!
//! One test binary for the whole crate: each module is one file of `tests/`, so the
//! dependencies are linked once rather than once per file.

mod common;

mod apply;
mod binary;
mod crud;
mod faults;
mod kubectl;
mod lifecycle;
mod list;
mod simulator;
mod watch;
