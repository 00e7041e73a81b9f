//! # idp-deploy
//!
//! GitOps deployment (a commit per release, rollback by revert, history from `git log`), direct server-side apply, a reconciler that converges Git into Kubernetes, and DORA metrics.
//!
//! Part of [idp](https://github.com/idp-rs/idp). It depends only on `idp-core` and
//! implements its ports, so a platform can use it or replace it with its own
//! implementation of the same trait.
//!
//! **Status:** this crate is being built.
//!
//! - [`gitops`]: start with [`gitops::GitOpsDeployer`], the `Deployer` that commits each
//!   release to a GitOps repository (history is `git log`, rollback restores a release's
//!   folder exactly, promotion copies between environments).

pub mod gitops;
