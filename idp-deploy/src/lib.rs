//! # idp-deploy
//!
//! GitOps deployment (a commit per release, rollback by revert, history from `git log`), direct server-side apply, a reconciler that converges Git into Kubernetes, and DORA metrics.
//!
//! Part of [idp](https://github.com/idp-rs/idp). It depends only on `idp-core` and
//! implements its ports, so a platform can use it or replace it with its own
//! implementation of the same trait.
//!
//! - [`gitops`]: start with [`gitops::GitOpsDeployer`], the `Deployer` that commits each
//!   release to a GitOps repository (history is `git log`, rollback restores a release's
//!   folder exactly, promotion copies between environments).
//! - [`workload`]: read a developer's Score file and render it per environment into
//!   Kubernetes objects (start with [`workload::render_file`]).
//! - [`reconcile`]: the [`Reconciler`](reconcile::Reconciler) — Git branch and folder →
//!   render → mutate → policy → apply what changed → prune → health → status, with
//!   drift detection and self-heal. Start with [`reconcile::Reconciler::builder`].
//! - [`KubeDeployer`]: the `Deployer` port by server-side apply, release history in
//!   Secrets, rollback.
//! - [`ha`]: leader election on a Lease and sharding by a stable hash, for running
//!   reconcilers on several replicas.
//! - [`cost`]: estimate the monthly cost of a manifest set from its requests and a price
//!   sheet, per object, team and environment (start with [`cost::estimate`]).
//! - [`dora`]: the four DORA metrics and performance levels from deployment history
//!   (start with [`dora::compute`]).
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod cost;
pub mod dora;
pub mod gitops;
pub mod ha;
pub mod kube_deployer;
pub mod reconcile;
pub mod workload;

pub use kube_deployer::KubeDeployer;
