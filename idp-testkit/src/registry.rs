//! The resource types the fake API server knows: the built-in kinds it serves from the
//! start, and the custom resources that become servable once their
//! `CustomResourceDefinition` is created.

use std::collections::BTreeMap;

use serde_json::Value;

/// The verbs every resource in the fake cluster supports.
pub(crate) const ALL_VERBS: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// One servable resource: a (group, version, plural) triple and what discovery says about it.
///
/// ```
/// let rt = idp_testkit::ResourceType::new("apps", "v1", "Deployment", "deployments", true);
/// assert_eq!(rt.api_version(), "apps/v1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `Deployment`.
    pub kind: String,
    /// Plural resource name used in URLs, e.g. `deployments`.
    pub plural: String,
    /// Singular resource name, e.g. `deployment`.
    pub singular: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names kubectl accepts, e.g. `deploy`.
    pub short_names: Vec<String>,
    /// Whether the resource has a `/status` subresource.
    pub has_status: bool,
    /// Whether the resource has a `/scale` subresource (`spec.replicas`).
    pub has_scale: bool,
    /// Categories kubectl expands, e.g. `all`.
    pub categories: Vec<String>,
}

impl ResourceType {
    /// A resource type with the singular name derived from the kind and no short names.
    ///
    /// ```
    /// let rt = idp_testkit::ResourceType::new("", "v1", "ConfigMap", "configmaps", true);
    /// assert_eq!(rt.singular, "configmap");
    /// assert_eq!(rt.api_version(), "v1");
    /// ```
    pub fn new(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            singular: kind.to_ascii_lowercase(),
            namespaced,
            short_names: Vec::new(),
            has_status: false,
            has_scale: false,
            categories: Vec::new(),
        }
    }

    /// `group/version`, or just `version` for the core group.
    ///
    /// ```
    /// let rt = idp_testkit::ResourceType::new("batch", "v1", "Job", "jobs", true);
    /// assert_eq!(rt.api_version(), "batch/v1");
    /// ```
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The name used in error messages: `deployments.apps`, or `configmaps` for core.
    pub(crate) fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    fn with_status(mut self) -> Self {
        self.has_status = true;
        self
    }

    fn with_scale(mut self) -> Self {
        self.has_scale = true;
        self
    }

    fn in_all(mut self) -> Self {
        self.categories = vec!["all".to_owned()];
        self
    }

    fn short(mut self, names: &[&str]) -> Self {
        self.short_names = names.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// The `APIResource` entries discovery lists for this type (main resource and status).
    pub(crate) fn discovery_entries(&self) -> Vec<Value> {
        let mut out = vec![serde_json::json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ALL_VERBS,
            "shortNames": self.short_names,
            "categories": self.categories,
            "storageVersionHash": "",
        })];
        if self.has_scale {
            out.push(serde_json::json!({
                "name": format!("{}/scale", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        if self.has_status {
            out.push(serde_json::json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        out
    }
}

/// The built-in kinds served from the start.
fn builtins() -> Vec<ResourceType> {
    let rt = ResourceType::new;
    vec![
        rt("", "v1", "Namespace", "namespaces", false)
            .short(&["ns"])
            .with_status(),
        rt("", "v1", "ConfigMap", "configmaps", true).short(&["cm"]),
        rt("", "v1", "Secret", "secrets", true),
        rt("", "v1", "Service", "services", true)
            .short(&["svc"])
            .with_status()
            .in_all(),
        rt("", "v1", "ServiceAccount", "serviceaccounts", true).short(&["sa"]),
        rt("", "v1", "Pod", "pods", true)
            .short(&["po"])
            .with_status()
            .in_all(),
        rt("", "v1", "ResourceQuota", "resourcequotas", true)
            .short(&["quota"])
            .with_status(),
        rt("", "v1", "LimitRange", "limitranges", true).short(&["limits"]),
        rt(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
        )
        .short(&["pvc"])
        .with_status(),
        rt("", "v1", "Event", "events", true).short(&["ev"]),
        rt("", "v1", "Node", "nodes", false)
            .short(&["no"])
            .with_status(),
        rt("apps", "v1", "Deployment", "deployments", true)
            .short(&["deploy"])
            .with_status()
            .with_scale()
            .in_all(),
        rt("apps", "v1", "StatefulSet", "statefulsets", true)
            .short(&["sts"])
            .with_status()
            .with_scale()
            .in_all(),
        rt("apps", "v1", "DaemonSet", "daemonsets", true)
            .short(&["ds"])
            .with_status()
            .in_all(),
        rt("apps", "v1", "ReplicaSet", "replicasets", true)
            .short(&["rs"])
            .with_status()
            .with_scale()
            .in_all(),
        rt("batch", "v1", "Job", "jobs", true)
            .with_status()
            .in_all(),
        rt("batch", "v1", "CronJob", "cronjobs", true)
            .short(&["cj"])
            .with_status()
            .in_all(),
        rt(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicy",
            "validatingadmissionpolicies",
            false,
        )
        .with_status(),
        rt(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingAdmissionPolicyBinding",
            "validatingadmissionpolicybindings",
            false,
        ),
        rt("networking.k8s.io", "v1", "Ingress", "ingresses", true)
            .short(&["ing"])
            .with_status(),
        rt(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            true,
        )
        .short(&["netpol"]),
        rt(
            "autoscaling",
            "v2",
            "HorizontalPodAutoscaler",
            "horizontalpodautoscalers",
            true,
        )
        .short(&["hpa"])
        .with_status()
        .in_all(),
        rt(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
        )
        .short(&["pdb"])
        .with_status(),
        rt("rbac.authorization.k8s.io", "v1", "Role", "roles", true),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            "rolebindings",
            true,
        ),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
        ),
        rt(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
        ),
        rt("coordination.k8s.io", "v1", "Lease", "leases", true),
        rt(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
        )
        .short(&["crd", "crds"])
        .with_status(),
    ]
}

/// All servable resource types, keyed by (group, version, plural).
#[derive(Debug, Clone)]
pub(crate) struct Registry {
    types: BTreeMap<(String, String, String), ResourceType>,
    /// Which CRD (by name) registered which keys, so deleting it unregisters them.
    crd_keys: BTreeMap<String, Vec<(String, String, String)>>,
}

impl Registry {
    /// The built-in types.
    pub(crate) fn new() -> Self {
        let mut types = BTreeMap::new();
        for rt in builtins() {
            types.insert(
                (rt.group.clone(), rt.version.clone(), rt.plural.clone()),
                rt,
            );
        }
        Self {
            types,
            crd_keys: BTreeMap::new(),
        }
    }

    /// The type served at `group/version/plural`.
    pub(crate) fn get(&self, group: &str, version: &str, plural: &str) -> Option<&ResourceType> {
        self.types
            .get(&(group.to_owned(), version.to_owned(), plural.to_owned()))
    }

    /// All types.
    pub(crate) fn all(&self) -> impl Iterator<Item = &ResourceType> {
        self.types.values()
    }

    /// The served groups with their versions, in a stable order (core group first as "").
    pub(crate) fn groups(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for t in self.types.values() {
            let versions = out.entry(t.group.clone()).or_default();
            if !versions.contains(&t.version) {
                versions.push(t.version.clone());
            }
        }
        out
    }

    /// Registers (or re-registers) the resource a CRD object describes. Returns the
    /// registered types, or a message saying what is missing from the CRD spec.
    pub(crate) fn register_crd(&mut self, crd: &Value) -> Result<Vec<ResourceType>, String> {
        let name = crd
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let spec = crd.get("spec").ok_or("spec: Required value")?;
        let group = str_at(spec, "/group").ok_or("spec.group: Required value")?;
        let plural = str_at(spec, "/names/plural").ok_or("spec.names.plural: Required value")?;
        let kind = str_at(spec, "/names/kind").ok_or("spec.names.kind: Required value")?;
        let singular = str_at(spec, "/names/singular")
            .map_or_else(|| kind.to_ascii_lowercase(), ToOwned::to_owned);
        let namespaced = str_at(spec, "/scope") != Some("Cluster");
        let expected = format!("{plural}.{group}");
        if name != expected {
            return Err(format!(
                "metadata.name: Invalid value: {name:?}: must be spec.names.plural+\".\"+spec.group ({expected:?})"
            ));
        }
        let short_names: Vec<String> = spec
            .pointer("/names/shortNames")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(ToOwned::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let versions = spec
            .get("versions")
            .and_then(Value::as_array)
            .filter(|v| !v.is_empty())
            .ok_or("spec.versions: Required value: must have at least one version")?;
        self.unregister_crd(&name);
        let mut registered = Vec::new();
        for v in versions {
            if v.get("served").and_then(Value::as_bool) == Some(false) {
                continue;
            }
            let Some(version) = v.get("name").and_then(Value::as_str) else {
                return Err("spec.versions[].name: Required value".to_owned());
            };
            let mut rt = ResourceType::new(group, version, kind, plural, namespaced);
            rt.singular.clone_from(&singular);
            rt.short_names.clone_from(&short_names);
            rt.has_status = v.pointer("/subresources/status").is_some();
            let key = (group.to_owned(), version.to_owned(), plural.to_owned());
            self.types.insert(key.clone(), rt.clone());
            self.crd_keys.entry(name.clone()).or_default().push(key);
            registered.push(rt);
        }
        Ok(registered)
    }

    /// Removes the types a CRD registered.
    pub(crate) fn unregister_crd(&mut self, crd_name: &str) {
        if let Some(keys) = self.crd_keys.remove(crd_name) {
            for key in keys {
                self.types.remove(&key);
            }
        }
    }
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_are_found_by_gvr_and_kind() {
        let r = Registry::new();
        assert_eq!(
            r.get("apps", "v1", "deployments").unwrap().kind,
            "Deployment"
        );
        assert!(r.get("apps", "v2", "deployments").is_none());
        assert!(r.groups().contains_key("rbac.authorization.k8s.io"));
    }

    #[test]
    fn crd_registration_round_trip() {
        let mut r = Registry::new();
        let crd = serde_json::json!({
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "scope": "Namespaced",
                     "names": {"plural": "widgets", "kind": "Widget", "shortNames": ["wd"]},
                     "versions": [{"name": "v1", "served": true, "storage": true,
                                   "subresources": {"status": {}}}]}
        });
        let types = r.register_crd(&crd).unwrap();
        assert_eq!(types.len(), 1);
        assert!(r.get("example.com", "v1", "widgets").unwrap().has_status);
        r.unregister_crd("widgets.example.com");
        assert!(r.get("example.com", "v1", "widgets").is_none());
    }

    #[test]
    fn crd_with_wrong_name_is_rejected() {
        let mut r = Registry::new();
        let crd = serde_json::json!({
            "metadata": {"name": "nope"},
            "spec": {"group": "example.com", "names": {"plural": "widgets", "kind": "Widget"},
                     "versions": [{"name": "v1", "served": true}]}
        });
        assert!(r.register_crd(&crd).unwrap_err().contains("metadata.name"));
    }
}
