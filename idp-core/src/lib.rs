//! # idp-core
//!
//! The core of **idp**, an SDK for building Internal Developer Platforms: the domain
//! model, the four ports every platform is assembled from, the [`Platform`] that runs
//! the golden paths over them, and the Git and Kubernetes plumbing the other crates share.
//!
//! Start with [`Platform::builder`]: give it one implementation of each port
//! ([`Catalog`], [`Deployer`], [`Policy`], [`EnvironmentProvider`]) and call
//! [`Platform::deploy`]. Every part is usable on its own:
//!
//! - [`manifest`]: Kubernetes objects and multi-document YAML with file:line errors.
//! - [`ids`]: validated names — [`EntityRef`], [`ObjectRef`], [`EnvironmentName`], [`DnsLabel`].
//! - [`model`]: [`Release`], [`Deployment`], [`Environment`], [`Violation`], [`PolicyContext`].
//! - [`ports`]: the traits a platform team can replace.
//! - [`git`]: an async Git repository with compare-and-swap commits.
//! - [`cluster`]: server-side apply, prune and health against a Kubernetes API server.
//!
//! State lives in Git and Kubernetes, never in a database of ours: everything built on
//! these parts is stateless and can be restarted or replicated.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod cluster;
pub mod error;
pub mod git;
pub mod hash;
pub mod ids;
pub mod manifest;
pub mod model;
pub mod platform;
pub mod ports;

pub use error::{Error, ErrorKind, Result};
pub use ids::{
    DEFAULT_NAMESPACE, DnsLabel, DnsSubdomain, EntityRef, EnvironmentName, ObjectRef, slugify,
};
pub use manifest::{ManifestSet, Object};
pub use model::{
    Deployment, DeploymentId, DeploymentStatus, Environment, PolicyContext, Release, Severity,
    Violation,
};
pub use platform::{Platform, PlatformBuilder, PlatformEvent};
pub use ports::{
    Catalog, CatalogExt, Deployer, DeployerExt, EnvironmentProvider, EventSink, Policy, PolicyExt,
};
