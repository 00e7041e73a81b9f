//! The CEL admission policies kept in a cluster: Kubernetes'
//! `ValidatingAdmissionPolicy` and `ValidatingAdmissionPolicyBinding` objects
//! (`admissionregistration.k8s.io`), the param objects their `paramKind`s name, and
//! Kyverno's `ValidatingPolicy`, `NamespacedValidatingPolicy` and `PolicyException`
//! objects (`policies.kyverno.io`), read into a [`CelPolicy`].
//!
//! The API server enforces its ValidatingAdmissionPolicies at admission, but it never
//! checks what already runs against a policy added later, and nothing checks manifests
//! against them before they are committed. With them read here, an
//! [audit](crate::audit) does the first and `idpctl policy check
//! --admission-policies-from-cluster` the second.
//!
//! The `Namespace`s are read too, for `namespaceSelector` and `namespaceObject`. A
//! policy, binding or exception that does not load is left out, with the reason, and the
//! others still apply.
//!
//! ```no_run
//! # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
//! use idp_core::PolicyContext;
//! use idp_policy::audit::Audit;
//! use idp_policy::cel::CelPolicy;
//! use idp_policy::cel::cluster::ClusterPolicies;
//!
//! let loaded = ClusterPolicies::read(&cluster).await?.load_into(CelPolicy::new("admission-policies"));
//! for (what, error) in &loaded.skipped {
//!     eprintln!("left out {what}: {error}");
//! }
//! let found = Audit::new(cluster).report(&loaded.policy.for_background(), &PolicyContext::new()).await?;
//! println!("{} objects denied", found.report.denied);
//! # Ok(()) }
//! ```

use std::collections::BTreeSet;

use idp_core::cluster::{Cluster, GroupKind};
use idp_core::{Error, Object, Result};
use serde_json::Value;
use tracing::Instrument;

use super::{ADMISSION_GROUP, CelPolicy, kyverno};
use crate::audit::{add_each, list_served};
use crate::names::split_api_version;

/// The CEL admission policies read from a cluster.
///
/// ```
/// let p = idp_policy::cel::cluster::ClusterPolicies::default();
/// assert!(p.policies.is_empty() && p.bindings.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClusterPolicies {
    /// Every `ValidatingAdmissionPolicy`, then every Kyverno `ValidatingPolicy` and
    /// `NamespacedValidatingPolicy`.
    pub policies: Vec<Object>,
    /// Every `ValidatingAdmissionPolicyBinding`.
    pub bindings: Vec<Object>,
    /// Every Kyverno `PolicyException` of `policies.kyverno.io`.
    pub exceptions: Vec<Object>,
    /// The objects of the kinds the policies' `spec.paramKind` name, and every
    /// `Namespace`.
    pub params: Vec<Object>,
}

/// What [`ClusterPolicies::load_into`] made.
#[derive(Debug)]
pub struct Loaded {
    /// The set with the cluster's policies, bindings, exceptions and params added.
    pub policy: CelPolicy,
    /// What was left out (`ValidatingAdmissionPolicy max-replicas`, …) and why.
    pub skipped: Vec<(String, Error)>,
}

/// The group-kinds the `spec.paramKind` of `policies` name.
fn param_kinds(policies: &[Object]) -> BTreeSet<(String, String)> {
    policies
        .iter()
        .filter_map(|p| {
            let kind = p.pointer("/spec/paramKind")?;
            let text = |k: &str| kind.get(k).and_then(Value::as_str);
            let (group, _) = split_api_version(text("apiVersion")?);
            Some((group.to_owned(), text("kind")?.to_owned()))
        })
        .collect()
}

impl ClusterPolicies {
    /// List the policies, bindings and exceptions, then the param objects of the kinds
    /// the policies name and the `Namespace`s. Kinds the cluster does not serve (no
    /// Kyverno, or a Kubernetes before 1.30) give nothing; a kind that cannot be listed
    /// (forbidden) is an error.
    ///
    /// ```no_run
    /// # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
    /// let found = idp_policy::cel::cluster::ClusterPolicies::read(&cluster).await?;
    /// println!("{} policies, {} bindings", found.policies.len(), found.bindings.len());
    /// # Ok(()) }
    /// ```
    pub async fn read(cluster: &Cluster) -> Result<Self> {
        Self::read_kinds(cluster, true).await
    }

    /// Only Kyverno's: the `ValidatingPolicy`, `NamespacedValidatingPolicy` and
    /// `PolicyException` objects (`policies.kyverno.io`) and the `Namespace`s, for a
    /// webhook standing in for Kyverno's (the API server applies the
    /// ValidatingAdmissionPolicies itself).
    ///
    /// ```no_run
    /// # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
    /// let found = idp_policy::cel::cluster::ClusterPolicies::read_kyverno(&cluster).await?;
    /// assert!(found.bindings.is_empty());
    /// # Ok(()) }
    /// ```
    pub async fn read_kyverno(cluster: &Cluster) -> Result<Self> {
        Self::read_kinds(cluster, false).await
    }

    async fn read_kinds(cluster: &Cluster, admission_policies: bool) -> Result<Self> {
        let span = tracing::info_span!("policy.cel.read_cluster", admission_policies);
        async {
            let mut found = Self::default();
            let list = |group: &'static str, kind: &'static str| {
                list_served(cluster, GroupKind::new(group, kind))
            };
            if admission_policies {
                found
                    .policies
                    .extend(list(ADMISSION_GROUP, "ValidatingAdmissionPolicy").await?);
                found
                    .bindings
                    .extend(list(ADMISSION_GROUP, "ValidatingAdmissionPolicyBinding").await?);
            }
            for kind in ["ValidatingPolicy", "NamespacedValidatingPolicy"] {
                found.policies.extend(list(kyverno::GROUP, kind).await?);
            }
            found.exceptions = list(kyverno::GROUP, "PolicyException").await?;
            if !found.policies.is_empty() {
                for (group, kind) in param_kinds(&found.policies) {
                    if (group.as_str(), kind.as_str()) == ("", "Namespace") {
                        continue;
                    }
                    found
                        .params
                        .extend(list_served(cluster, GroupKind::new(&group, &kind)).await?);
                }
                found
                    .params
                    .extend(list_served(cluster, GroupKind::new("", "Namespace")).await?);
            }
            tracing::debug!(
                policies = found.policies.len(),
                bindings = found.bindings.len(),
                exceptions = found.exceptions.len(),
                params = found.params.len(),
                "CEL admission policies read from the cluster"
            );
            Ok(found)
        }
        .instrument(span)
        .await
    }

    /// Add the params, policies, bindings and exceptions to `policy` (which may hold
    /// policies from files already), one by one: one that does not load is left out and
    /// recorded in [`Loaded::skipped`] (a binding of a policy left out then binds
    /// nothing, as the API server ignores a binding whose policy does not exist).
    ///
    /// ```
    /// use idp_policy::cel::{CelPolicy, cluster::ClusterPolicies};
    /// let broken = idp_core::Object::from_value(serde_json::json!({
    ///     "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
    ///     "metadata": {"name": "broken"},
    ///     "spec": {"validations": [{"expression": "object.spec.replicas <"}]}})).unwrap();
    /// let loaded = ClusterPolicies { policies: vec![broken], ..ClusterPolicies::default() }
    ///     .load_into(CelPolicy::new("cel"));
    /// assert_eq!(loaded.skipped[0].0, "ValidatingAdmissionPolicy broken");
    /// assert!(loaded.policy.policies().is_empty());
    /// ```
    pub fn load_into(&self, mut policy: CelPolicy) -> Loaded {
        let all = self
            .params
            .iter()
            .chain(&self.policies)
            .chain(&self.bindings)
            .chain(&self.exceptions);
        let skipped = add_each("CEL admission", all, |object| {
            policy.add_object(object.clone())
        });
        Loaded { policy, skipped }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn param_kinds_are_read_from_the_policies() {
        let policy = |param: Value| {
            Object::from_value(serde_json::json!({
                "apiVersion": "admissionregistration.k8s.io/v1",
                "kind": "ValidatingAdmissionPolicy",
                "metadata": {"name": "p"},
                "spec": {"paramKind": param}}))
            .unwrap()
        };
        let kinds = param_kinds(&[
            policy(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap"})),
            policy(
                serde_json::json!({"apiVersion": "rules.example.com/v1", "kind": "ReplicaLimit"}),
            ),
            policy(serde_json::json!({"kind": "NoVersion"})),
            policy(serde_json::json!(null)),
        ]);
        let kinds: Vec<(&str, &str)> = kinds
            .iter()
            .map(|(g, k)| (g.as_str(), k.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [("", "ConfigMap"), ("rules.example.com", "ReplicaLimit")]
        );
    }
}
