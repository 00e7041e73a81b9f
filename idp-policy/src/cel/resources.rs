//! Kubernetes resource names for kinds, and `matchConstraints`/`matchResources`
//! evaluation for ValidatingAdmissionPolicies.

use std::collections::BTreeMap;

use idp_core::model::Operation;
use idp_core::{Object, Result};
use serde_json::Value;

use crate::matching::LabelSelector;
use crate::names::{operation_name, split_api_version};

/// Built-in kinds whose plural resource name is not the regular one, plus the common ones
/// (kept explicit so a reader can check them).
const PLURALS: &[(&str, &str)] = &[
    ("Pod", "pods"),
    ("Service", "services"),
    ("ConfigMap", "configmaps"),
    ("Secret", "secrets"),
    ("Namespace", "namespaces"),
    ("ServiceAccount", "serviceaccounts"),
    ("PersistentVolume", "persistentvolumes"),
    ("PersistentVolumeClaim", "persistentvolumeclaims"),
    ("Endpoints", "endpoints"),
    ("EndpointSlice", "endpointslices"),
    ("Node", "nodes"),
    ("Event", "events"),
    ("LimitRange", "limitranges"),
    ("ResourceQuota", "resourcequotas"),
    ("ReplicationController", "replicationcontrollers"),
    ("PodTemplate", "podtemplates"),
    ("Deployment", "deployments"),
    ("StatefulSet", "statefulsets"),
    ("DaemonSet", "daemonsets"),
    ("ReplicaSet", "replicasets"),
    ("ControllerRevision", "controllerrevisions"),
    ("Job", "jobs"),
    ("CronJob", "cronjobs"),
    ("Ingress", "ingresses"),
    ("IngressClass", "ingressclasses"),
    ("NetworkPolicy", "networkpolicies"),
    ("HorizontalPodAutoscaler", "horizontalpodautoscalers"),
    ("PodDisruptionBudget", "poddisruptionbudgets"),
    ("Role", "roles"),
    ("RoleBinding", "rolebindings"),
    ("ClusterRole", "clusterroles"),
    ("ClusterRoleBinding", "clusterrolebindings"),
    ("StorageClass", "storageclasses"),
    ("CustomResourceDefinition", "customresourcedefinitions"),
    ("PriorityClass", "priorityclasses"),
    ("ValidatingAdmissionPolicy", "validatingadmissionpolicies"),
    (
        "ValidatingAdmissionPolicyBinding",
        "validatingadmissionpolicybindings",
    ),
];

/// The resource name Kubernetes uses for `kind` (`Deployment` → `deployments`). Built-in
/// kinds come from a table; any other kind is lower-cased and pluralised the way
/// Kubernetes' REST mapper guesses (`…s`/`…x`/`…ch`/`…sh` → `…es`, consonant + `y` →
/// `…ies`, else `…s`), which is also how most CRDs are named.
///
/// ```
/// use idp_policy::cel::resource_for_kind;
/// assert_eq!(resource_for_kind("Deployment"), "deployments");
/// assert_eq!(resource_for_kind("NetworkPolicy"), "networkpolicies");
/// assert_eq!(resource_for_kind("Endpoints"), "endpoints");
/// assert_eq!(resource_for_kind("ReplicaLimit"), "replicalimits");
/// ```
pub fn resource_for_kind(kind: &str) -> String {
    if let Some((_, plural)) = PLURALS.iter().find(|(k, _)| *k == kind) {
        return (*plural).to_owned();
    }
    let lower = kind.to_ascii_lowercase();
    if lower.ends_with('s')
        || lower.ends_with('x')
        || lower.ends_with("ch")
        || lower.ends_with("sh")
    {
        format!("{lower}es")
    } else if let Some(stem) = lower.strip_suffix('y') {
        if stem.ends_with(['a', 'e', 'i', 'o', 'u']) {
            format!("{lower}s")
        } else {
            format!("{stem}ies")
        }
    } else {
        format!("{lower}s")
    }
}

use crate::names::strings;

/// One `resourceRules`/`excludeResourceRules` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ResourceRule {
    api_groups: Vec<String>,
    api_versions: Vec<String>,
    resources: Vec<String>,
    operations: Vec<String>,
    resource_names: Vec<String>,
    scope: Option<String>,
}

fn any(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == "*" || v == value)
}

impl ResourceRule {
    fn from_value(value: &Value) -> Self {
        Self {
            api_groups: strings(value.get("apiGroups")),
            api_versions: strings(value.get("apiVersions")),
            resources: strings(value.get("resources")),
            operations: strings(value.get("operations")),
            resource_names: strings(value.get("resourceNames")),
            scope: value
                .get("scope")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }

    fn matches(&self, object: &Object, namespaced: bool, op: Operation) -> bool {
        let (group, version) = split_api_version(object.api_version());
        let resource = resource_for_kind(object.kind());
        // `apply` may create or update: it matches rules for either.
        let op_ok = match op {
            Operation::Apply => any(&self.operations, "CREATE") || any(&self.operations, "UPDATE"),
            other => any(&self.operations, operation_name(other)),
        };
        let resource_ok = self
            .resources
            .iter()
            .any(|r| r == "*" || r == "*/*" || *r == resource);
        let scope_ok = match self.scope.as_deref() {
            Some("Cluster") => !namespaced,
            Some("Namespaced") => namespaced,
            _ => true,
        };
        let name_ok = self.resource_names.is_empty()
            || self.resource_names.iter().any(|n| n == object.name());
        any(&self.api_groups, group)
            && any(&self.api_versions, version)
            && resource_ok
            && op_ok
            && scope_ok
            && name_ok
    }
}

/// `matchConstraints` of a policy or `matchResources` of a binding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MatchResources {
    resource_rules: Vec<ResourceRule>,
    exclude_rules: Vec<ResourceRule>,
    namespace_selector: Option<LabelSelector>,
    object_selector: Option<LabelSelector>,
}

fn selector(value: Option<&Value>, field: &str) -> Result<Option<LabelSelector>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| {
            idp_core::Error::invalid_input(format!("{field} is not a label selector: {e}"))
        }),
    }
}

impl MatchResources {
    pub(crate) fn from_value(value: &Value, field: &str) -> Result<Self> {
        let rules = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_array)
                .map(|items| items.iter().map(ResourceRule::from_value).collect())
                .unwrap_or_default()
        };
        Ok(Self {
            resource_rules: rules("resourceRules"),
            exclude_rules: rules("excludeResourceRules"),
            namespace_selector: selector(
                value.get("namespaceSelector"),
                &format!("{field}.namespaceSelector"),
            )?,
            object_selector: selector(
                value.get("objectSelector"),
                &format!("{field}.objectSelector"),
            )?,
        })
    }

    /// Whether the object is selected. `require_rules`: a policy's `matchConstraints`
    /// must list resource rules; a binding's `matchResources` may leave them out (then it
    /// narrows only by selectors and exclusions).
    pub(crate) fn matches(
        &self,
        object: &Object,
        namespace: Option<&str>,
        op: Operation,
        namespaces: &BTreeMap<String, Object>,
        require_rules: bool,
    ) -> bool {
        let is_namespace = object.kind() == "Namespace" && object.api_version() == "v1";
        let namespaced = namespace.is_some() && !is_namespace;
        if (require_rules || !self.resource_rules.is_empty())
            && !self
                .resource_rules
                .iter()
                .any(|r| r.matches(object, namespaced, op))
        {
            return false;
        }
        if self
            .exclude_rules
            .iter()
            .any(|r| r.matches(object, namespaced, op))
        {
            return false;
        }
        if let Some(sel) = &self.object_selector
            && !sel.matches(&object.labels())
        {
            return false;
        }
        if let Some(sel) = &self.namespace_selector {
            // A Namespace is matched by its own labels; other cluster-scoped objects are
            // never skipped by a namespace selector; a namespace we were not given has no
            // labels.
            let labels = if is_namespace {
                Some(object.labels())
            } else {
                namespace.map(|ns| namespaces.get(ns).map(Object::labels).unwrap_or_default())
            };
            if let Some(labels) = labels
                && !sel.matches(&labels)
            {
                return false;
            }
        }
        true
    }
}
