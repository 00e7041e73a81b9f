//! # idp-policy
//!
//! Policy-as-code guardrails that run before commit, in CI and at admission: the Pod
//! Security Standards (versioned like Kubernetes' own admission library), configurable
//! guardrails, and mutations, all as in-process implementations of `idp_core`'s
//! [`Policy`](idp_core::Policy) and [`Mutation`](idp_core::ports::Mutation) ports.
//!
//! Where to start:
//!
//! - [`PolicySet`]: the engine. Add policies with an [`Action`] (enforce, warn, audit)
//!   and [match rules](matching), add [exceptions], then [`PolicySet::check`] a manifest
//!   set into a bounded [`Report`](report::Report). A set is itself a `Policy`, so it
//!   plugs into `idp_core::Platform`; any other `Policy` (Rego, CEL, your own) joins a set
//!   the same way.
//! - [`pss::PodSecurity`]: baseline and restricted at a pinned [`pss::PssVersion`].
//! - [`guardrails`]: resources, sensitive ports, registries, tags, labels, Service types,
//!   Ingress TLS, probes, replicas.
//! - [`mutate`]: default resources, OpenTelemetry injection, standard labels.
//! - [`admission`]: answer Kubernetes `AdmissionReview`s (validating and mutating) with
//!   the same set; an HTTP endpoint behind the `admission` feature.
//! - [`config::PolicySetConfig`]: the YAML file a platform team writes.
//! - [`audit`]: check what already runs in a cluster (every listable kind, page by
//!   page), as Gatekeeper's audit and Kyverno's background scans do.
//! - [`policy_report`]: the verdicts as `wgpolicyk8s.io/v1alpha2` `PolicyReport`s, the
//!   format Kyverno reports in and Policy Reporter reads.
//! - [`set`]: the engine's module (what [`PolicySet`] re-exports), with its overview.
//! - `rego` (feature `rego`): `RegoPolicy`, Rego policies with conftest and Gatekeeper
//!   conventions, evaluated by regorus.
//! - `cel` (feature `cel`): `CelPolicy`, Kubernetes ValidatingAdmissionPolicies
//!   evaluated with CEL through kube-cel.
//! - [`kyverno`]: `KyvernoPolicy`, Kyverno ClusterPolicies and Policies: validate rules
//!   (patterns, `podSecurity`, CEL, conditions, `foreach`, `context`) and mutate rules
//!   (strategic merge patches with anchors, JSON patches, `foreach`) as a `Policy` and a
//!   `Mutation`, auto-generated for Pod controllers as Kyverno does.
//! - [`gatekeeper::mutation`]: `GatekeeperMutators`, Gatekeeper's `Assign`,
//!   `AssignMetadata`, `ModifySet` and `AssignImage` mutators as a `Mutation`, applied in
//!   Gatekeeper's order until the object stops changing.
//! - [`podspec`]: pod-controller autogen — how one pod-level rule covers Pods,
//!   Deployments, StatefulSets, DaemonSets, ReplicaSets, ReplicationControllers, Jobs and
//!   CronJobs with paths into the template.
//!
//! ```
//! use idp_core::{Object, PolicyContext};
//! use idp_policy::{Action, PolicyOptions, PolicySet, guardrails, pss::PodSecurity};
//!
//! let set = PolicySet::new()
//!     .with_policy(PodSecurity::restricted().at("v1.30".parse().unwrap()))
//!     .with_policy_options(guardrails::RequireResources::default(), PolicyOptions::new().action(Action::Warn));
//!
//! let deploy = Object::from_value(serde_json::json!({
//!     "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cart", "namespace": "shop"},
//!     "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/cart:1.4",
//!         "securityContext": {"privileged": true}}]}}}
//! })).unwrap();
//! let report = set.check([&deploy], &PolicyContext::new());
//! assert_eq!(report.denied, 1);
//! let privileged = report.sample.iter().find(|v| v.rule == "privileged").unwrap();
//! assert_eq!(privileged.path.as_deref(), Some("spec.template.spec.containers[0].securityContext.privileged"));
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod admission;
pub mod audit;
pub mod config;
pub mod exceptions;
pub mod gatekeeper;
pub mod guardrails;
pub mod kyverno;
pub mod matching;
pub mod mutate;
mod names;
pub mod podspec;
pub mod policy_report;
pub mod pss;
pub mod report;
pub mod set;
mod swap;
mod view;

#[cfg(feature = "rego")]
#[cfg_attr(docsrs, doc(cfg(feature = "rego")))]
pub mod rego;

#[cfg(feature = "cel")]
#[cfg_attr(docsrs, doc(cfg(feature = "cel")))]
pub mod cel;

pub use set::{Action, PolicyOptions, PolicySet};
pub use swap::Swappable;
