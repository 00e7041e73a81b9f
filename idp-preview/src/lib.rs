//! # idp-preview
//!
//! An isolated preview environment for every pull request: webhook parsing and verification, lifecycle decisions, environment providers and a reaper that never leaks.
//!
//! Part of [idp](https://github.com/idp-rs/idp). It depends only on `idp-core` and
//! implements its ports, so a platform can use it or replace it with its own
//! implementation of the same trait.
//!
//! **Status:** this crate is being built. [`event::PullRequestEvent`] is what webhooks
//! become and [`decision::Decision`] what planning an event yields.

pub mod decision;
pub mod event;
