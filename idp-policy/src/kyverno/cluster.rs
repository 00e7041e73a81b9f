//! Kyverno policies kept in a cluster: the `ClusterPolicy`, `Policy` and
//! `PolicyException` objects (`kyverno.io`) Kyverno users apply with `kubectl`, read
//! into a [`KyvernoPolicy`] for a background scan of what runs, as Kyverno's reports
//! controller scans with them.
//!
//! A policy or exception that does not load is left out, with the reason, and the
//! others still apply, as Kyverno reports one policy not ready without stopping the
//! rest.
//!
//! The ConfigMaps the policies' `context` entries name are read with them, as Kyverno
//! reads them at admission: those of each namespace named (`default` when an entry
//! names none), only the ones named unless a name holds variables
//! (`limits-{{ request.namespace }}`), in which case every ConfigMap of that namespace.
//! An entry whose namespace holds variables reads nothing here, and fails when a rule
//! runs, naming the ConfigMap it wanted.
//!
//! ```no_run
//! # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
//! use std::sync::Arc;
//! use idp_core::PolicyContext;
//! use idp_policy::audit::Audit;
//! use idp_policy::kyverno::{KyvernoPolicy, ValidateRules};
//! use idp_policy::kyverno::cluster::ClusterPolicies;
//!
//! let loaded = ClusterPolicies::read(&cluster).await?.load_into(KyvernoPolicy::new("kyverno"));
//! for (what, error) in &loaded.skipped {
//!     eprintln!("left out {what}: {error}");
//! }
//! let scan = ValidateRules::background(Arc::new(loaded.policy));
//! let found = Audit::new(cluster).report(&scan, &PolicyContext::new()).await?;
//! println!("{} objects denied", found.report.denied);
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet};

use idp_core::cluster::{Cluster, GroupKind};
use idp_core::{Error, Object, Result};
use serde_json::Value;
use tracing::Instrument;

use super::{GROUP, KyvernoPolicy};
use crate::audit::{add_each, list_served};

/// The Kyverno policies read from a cluster.
///
/// ```
/// let p = idp_policy::kyverno::cluster::ClusterPolicies::default();
/// assert!(p.policies.is_empty() && p.exceptions.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClusterPolicies {
    /// Every `ClusterPolicy`, then every `Policy`.
    pub policies: Vec<Object>,
    /// Every `PolicyException`.
    pub exceptions: Vec<Object>,
    /// The ConfigMaps the policies' `context` entries name.
    pub config_maps: Vec<Object>,
}

/// Which ConfigMaps of one namespace the `context` entries read.
#[derive(Debug, Default, PartialEq, Eq)]
enum Wanted {
    /// These, by name.
    #[default]
    Named,
    /// Any: a name holds variables.
    All,
}

/// The namespaces whose ConfigMaps the `context` entries of `policies` name, with the
/// names (empty for [`Wanted::All`]).
fn config_map_refs(policies: &[Object]) -> BTreeMap<String, (Wanted, BTreeSet<String>)> {
    fn walk(value: &Value, out: &mut BTreeMap<String, (Wanted, BTreeSet<String>)>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    if key == "context"
                        && let Value::Array(entries) = v
                    {
                        for cm in entries.iter().filter_map(|e| e.get("configMap")) {
                            let text = |k: &str| {
                                cm.get(k).and_then(Value::as_str).filter(|s| !s.is_empty())
                            };
                            let Some(name) = text("name") else { continue };
                            let namespace = text("namespace").unwrap_or("default");
                            if namespace.contains("{{") {
                                continue;
                            }
                            let (wanted, names) = out.entry(namespace.to_owned()).or_default();
                            if name.contains("{{") {
                                *wanted = Wanted::All;
                            } else {
                                names.insert(name.to_owned());
                            }
                        }
                    }
                    walk(v, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    // `context` lists sit under `spec`, never at the top of an object.
    for value in policies.iter().flat_map(|p| p.as_map().values()) {
        walk(value, &mut out);
    }
    out
}

/// What [`ClusterPolicies::load_into`] made.
#[derive(Debug)]
pub struct Loaded {
    /// The policy with the cluster's policies and exceptions added.
    pub policy: KyvernoPolicy,
    /// What was left out (`ClusterPolicy require-labels`, …) and why.
    pub skipped: Vec<(String, Error)>,
}

impl ClusterPolicies {
    /// List the `ClusterPolicy`, `Policy` and `PolicyException` objects. Kinds the
    /// cluster does not serve (Kyverno's CRDs are not installed) give nothing; a kind
    /// that cannot be listed (forbidden) is an error.
    ///
    /// ```no_run
    /// # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
    /// let found = idp_policy::kyverno::cluster::ClusterPolicies::read(&cluster).await?;
    /// println!("{} policies", found.policies.len());
    /// # Ok(()) }
    /// ```
    pub async fn read(cluster: &Cluster) -> Result<Self> {
        let span = tracing::info_span!("policy.kyverno.read_cluster");
        async {
            let mut found = Self::default();
            for kind in ["ClusterPolicy", "Policy"] {
                found
                    .policies
                    .extend(list_served(cluster, GroupKind::new(GROUP, kind)).await?);
            }
            found.exceptions =
                list_served(cluster, GroupKind::new(GROUP, "PolicyException")).await?;
            let refs = config_map_refs(&found.policies);
            if !refs.is_empty() {
                let listing = crate::audit::Audit::new(cluster.clone())
                    .with_kinds([GroupKind::new("", "ConfigMap")])
                    .with_namespaces(refs.keys().cloned())
                    .for_each_object(|cm| {
                        let wanted = cm.namespace().and_then(|ns| refs.get(ns));
                        if wanted.is_some_and(|(wanted, names)| {
                            *wanted == Wanted::All || names.contains(cm.name())
                        }) {
                            found.config_maps.push(cm);
                        }
                    })
                    .await?;
                if let Some(failed) = listing.failed().next() {
                    return Err(Error::unavailable(format!(
                        "cannot list the ConfigMaps the Kyverno policies' context entries read: {}",
                        failed.error.as_deref().unwrap_or_default()
                    )));
                }
            }
            tracing::debug!(
                policies = found.policies.len(),
                exceptions = found.exceptions.len(),
                config_maps = found.config_maps.len(),
                "Kyverno policies read from the cluster"
            );
            Ok(found)
        }
        .instrument(span)
        .await
    }

    /// Add the policies and exceptions to `policy` (which may hold policies from files
    /// already), one by one: one that does not load is left out and recorded in
    /// [`Loaded::skipped`].
    ///
    /// ```
    /// use idp_policy::kyverno::{KyvernoPolicy, cluster::ClusterPolicies};
    /// let broken = idp_core::Object::from_value(serde_json::json!({"apiVersion": "kyverno.io/v1",
    ///     "kind": "ClusterPolicy", "metadata": {"name": "broken"}, "spec": {"rules": "none"}})).unwrap();
    /// let loaded = ClusterPolicies { policies: vec![broken], ..ClusterPolicies::default() }
    ///     .load_into(KyvernoPolicy::new("kyverno"));
    /// assert_eq!(loaded.skipped[0].0, "ClusterPolicy broken");
    /// assert!(loaded.policy.rules().is_empty());
    /// ```
    pub fn load_into(&self, mut policy: KyvernoPolicy) -> Loaded {
        // The ConfigMaps first: the policies' context entries read them.
        let all = self
            .config_maps
            .iter()
            .chain(&self.policies)
            .chain(&self.exceptions);
        let skipped = add_each("Kyverno", all, |object| {
            // JSON is YAML: each object is one document.
            serde_json::to_string(&object.to_value())
                .map_err(|e| Error::internal("a cluster object does not serialize").with_source(e))
                .and_then(|text| policy.add_yaml(&text, None))
        });
        Loaded { policy, skipped }
    }
}
