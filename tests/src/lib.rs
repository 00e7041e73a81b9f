//! Workspace-level end-to-end tests of the idp golden paths live in `tests/tests/`.
//!
//! This library only compiles the workspace README's example as a doctest, so the
//! README stays true.
#![doc = include_str!("../../README.md")]
