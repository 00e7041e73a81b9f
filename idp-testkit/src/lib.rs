//! Test support for code built on the idp SDK.
//!
//! **Start with [`FakeCluster::start`]**: an in-process Kubernetes API server on a loopback
//! port that speaks the real HTTP/JSON protocol, so the real [`kube::Client`] and
//! `kubectl` talk to it unchanged. It serves discovery, the common built-in kinds and any
//! CRD you create; get, list (label/field selectors, pagination), create, update with
//! optimistic concurrency, merge/JSON/strategic patches, server-side apply with field
//! ownership and conflicts, delete with finalizers and namespace cascades, the status
//! subresource, and watch (resume, bookmarks, `410 Gone`). A rollout simulator reports
//! Deployment/StatefulSet/DaemonSet/Job status like the controllers would, every request
//! is recorded ([`FakeCluster::requests`]), stored state can be read without a request
//! ([`FakeCluster::object`], [`FakeCluster::objects`]) and faults can be injected
//! ([`FakeCluster::faults`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use k8s_openapi::api::apps::v1::Deployment;
//! use kube::api::{Api, Patch, PatchParams};
//! use idp_testkit::{FakeCluster, Fault, Verb};
//!
//! let cluster = FakeCluster::start().await?;
//! let deployments: Api<Deployment> = Api::namespaced(cluster.client(), "default");
//! let manifest = serde_json::json!({
//!     "apiVersion": "apps/v1", "kind": "Deployment",
//!     "metadata": {"name": "web"},
//!     "spec": {"replicas": 2,
//!              "selector": {"matchLabels": {"app": "web"}},
//!              "template": {"metadata": {"labels": {"app": "web"}},
//!                           "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
//! });
//! deployments.patch("web", &PatchParams::apply("my-deployer"), &Patch::Apply(&manifest)).await?;
//! assert_eq!(cluster.requests().count(|r| r.is_apply()), 1);
//!
//! // The next write fails once with 500 (kube::Client itself retries 429/503/504).
//! cluster.faults().inject(Fault::status(500).verb(Verb::Patch).times(1));
//! assert!(deployments.patch("web", &PatchParams::apply("my-deployer"), &Patch::Apply(&manifest)).await.is_err());
//! # Ok(()) }
//! ```
//!
//! The same server runs standalone: `cargo run -p idp-testkit --bin fake-cluster -- --help`.
//!
//! Modules, one concept each: `server` (HTTP and routing), `route` (paths), `discovery`,
//! `registry` (resource types and CRDs), `store` (objects, resourceVersions, events),
//! `api` (the verbs), `delete` (deletion and cascades), `selectors`, `patch`, `ssa` (managed fields), `watch`,
//! `simulator` (rollouts), `faults`, `requests`, `kubeconfig`, `openapi`, `protobuf`
//! (the few protobuf bodies kubectl sends), `table` (kubectl's table output), [`fixtures`] (Git), [`http`] (a raw HTTP/1.1 client for server tests), [`doubles`] (in-memory ports)
//! and [`conformance`] (suites every implementation of a port must pass).

mod api;
mod apply_deployer;
mod cluster;
pub mod conformance;
mod delete;
mod discovery;
pub mod doubles;
mod faults;
pub mod fixtures;
pub mod http;
mod kubeconfig;
mod meta;
mod openapi;
mod patch;
mod protobuf;
mod registry;
mod requests;
mod route;
mod selectors;
mod server;
mod shared;
mod simulator;
mod ssa;
mod status;
mod store;
mod table;
mod watch;

pub use cluster::{
    FakeCluster, FakeClusterBuilder, gatekeeper_crds, gatekeeper_mutation_crds, kyverno_cel_crds,
    kyverno_crds, minimal_crd, policy_report_crds,
};
pub use faults::{Fault, FaultAction, FaultId, Faults};
pub use kubeconfig::kubeconfig_yaml;
pub use registry::ResourceType;
pub use requests::{Request, Requests, Verb};
pub use selectors::{LabelSelector, Requirement};
