//! OPA Gatekeeper's pieces that need no Rego: the `spec.match` of constraints and
//! mutators ([`GatekeeperMatch`]), and the mutators themselves ([`mutation`]: `Assign`,
//! `AssignMetadata`, `ModifySet`, `AssignImage`).
//!
//! Gatekeeper's constraint templates and constraints (Rego, and CEL) are in
//! `rego::gatekeeper` (feature `rego`).

pub mod mutation;

use std::collections::BTreeMap;

use idp_core::{Error, Object, Result};
use serde_json::Value;

use crate::matching::{LabelSelector, wildcard};
use crate::names::split_api_version;
pub(crate) use crate::names::strings;

/// One `spec.match.kinds` entry.
///
/// ```
/// let k = idp_policy::gatekeeper::KindMatch { api_groups: vec!["apps".into()], kinds: vec!["Deployment".into()] };
/// assert!(k.matches("apps", "Deployment"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KindMatch {
    /// API groups (`""` is core, `*` any).
    pub api_groups: Vec<String>,
    /// Kinds (`*` any).
    pub kinds: Vec<String>,
}

impl KindMatch {
    /// Whether an object of `group`/`kind` matches.
    ///
    /// ```
    /// let k = idp_policy::gatekeeper::KindMatch { api_groups: vec!["".into()], kinds: vec!["*".into()] };
    /// assert!(k.matches("", "Pod"));
    /// assert!(!k.matches("apps", "Deployment"));
    /// ```
    pub fn matches(&self, group: &str, kind: &str) -> bool {
        let group_ok =
            self.api_groups.is_empty() || self.api_groups.iter().any(|g| g == "*" || g == group);
        let kind_ok = self.kinds.is_empty() || self.kinds.iter().any(|k| k == "*" || k == kind);
        group_ok && kind_ok
    }
}

/// A constraint's `spec.match`.
///
/// ```
/// let m = idp_policy::gatekeeper::GatekeeperMatch::default();
/// assert!(m.kinds.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GatekeeperMatch {
    /// `kinds`: any entry must match (empty: all).
    pub kinds: Vec<KindMatch>,
    /// `namespaces` (globs; empty: all).
    pub namespaces: Vec<String>,
    /// `excludedNamespaces` (globs).
    pub excluded_namespaces: Vec<String>,
    /// `labelSelector`.
    pub label_selector: Option<LabelSelector>,
    /// `namespaceSelector`.
    pub namespace_selector: Option<LabelSelector>,
    /// `scope`: `*`, `Cluster` or `Namespaced`.
    pub scope: Option<String>,
    /// `name` (glob).
    pub name: Option<String>,
}

fn selector(value: Option<&Value>, field: &str, here: &str) -> Result<Option<LabelSelector>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| {
            Error::invalid_input(format!(
                "{here}spec.match.{field} is not a label selector: {e}"
            ))
        }),
    }
}

impl GatekeeperMatch {
    pub(crate) fn from_value(value: Option<&Value>, here: &str) -> Result<Self> {
        let Some(value) = value else {
            return Ok(Self::default());
        };
        let kinds = value
            .get("kinds")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .map(|k| KindMatch {
                        api_groups: strings(k.get("apiGroups")),
                        kinds: strings(k.get("kinds")),
                    })
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            kinds,
            namespaces: strings(value.get("namespaces")),
            excluded_namespaces: strings(value.get("excludedNamespaces")),
            label_selector: selector(value.get("labelSelector"), "labelSelector", here)?,
            namespace_selector: selector(
                value.get("namespaceSelector"),
                "namespaceSelector",
                here,
            )?,
            scope: value
                .get("scope")
                .and_then(Value::as_str)
                .map(str::to_owned),
            name: value.get("name").and_then(Value::as_str).map(str::to_owned),
        })
    }

    /// Whether the constraint applies to `object`; `namespaces` holds the labels of the
    /// known Namespace objects.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use idp_policy::gatekeeper::GatekeeperMatch;
    /// let m = GatekeeperMatch { excluded_namespaces: vec!["kube-*".into()], ..Default::default() };
    /// let pod = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
    ///     "metadata": {"name": "p", "namespace": "kube-system"}})).unwrap();
    /// assert!(!m.matches(&pod, None, &BTreeMap::new()));
    /// ```
    pub fn matches(
        &self,
        object: &Object,
        default_namespace: Option<&str>,
        namespaces: &BTreeMap<String, BTreeMap<String, String>>,
    ) -> bool {
        let (group, _) = split_api_version(object.api_version());
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k.matches(group, object.kind())) {
            return false;
        }
        if let Some(name) = &self.name
            && !wildcard(name, object.name())
        {
            return false;
        }
        let is_namespace = object.kind() == "Namespace" && group.is_empty();
        let namespace = if is_namespace {
            Some(object.name())
        } else {
            object.namespace().or(default_namespace)
        };
        match self.scope.as_deref() {
            Some("Cluster") if namespace.is_some() && !is_namespace => return false,
            Some("Namespaced") if namespace.is_none() || is_namespace => return false,
            _ => {}
        }
        if let Some(selector) = &self.label_selector
            && !selector.matches(&object.labels())
        {
            return false;
        }
        // Cluster-scoped objects (other than Namespaces) are not filtered by namespace.
        let Some(ns) = namespace else {
            return true;
        };
        if !self.namespaces.is_empty() && !self.namespaces.iter().any(|p| wildcard(p, ns)) {
            return false;
        }
        if self.excluded_namespaces.iter().any(|p| wildcard(p, ns)) {
            return false;
        }
        if let Some(selector) = &self.namespace_selector {
            let labels = if is_namespace {
                object.labels()
            } else {
                namespaces.get(ns).cloned().unwrap_or_default()
            };
            if !selector.matches(&labels) {
                return false;
            }
        }
        true
    }
}
