//! # idp-deploy
//!
//! GitOps deployment (a commit per release, rollback by revert, history from `git log`), direct server-side apply, a reconciler that converges Git into Kubernetes, and DORA metrics.
//!
//! Part of [idp](https://github.com/idp-rs/idp). It depends only on `idp-core` and
//! implements its ports, so a platform can use it or replace it with its own
//! implementation of the same trait.
//!
//! - [`workload`]: read a developer's Score file and render it per environment into
//!   Kubernetes objects (start with [`workload::render_file`]).
//! - [`cost`]: estimate the monthly cost of a manifest set from its requests and a price
//!   sheet, per object, team and environment (start with [`cost::estimate`]).
//! - [`dora`]: the four DORA metrics and performance levels from deployment history
//!   (start with [`dora::compute`]).

pub mod cost;
pub mod dora;
pub mod workload;
