//! [`SecureDefaults`]: the security context the Pod Security Standards' restricted level
//! asks for, filled in where a workload says nothing.

use idp_core::ports::Mutation;
use idp_core::{Object, PolicyContext, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::insert_missing;
use crate::podspec::pod_spec_mut;

/// Fill in the restricted security context where a pod spec leaves it out: at pod level
/// `runAsNonRoot: true` and `seccompProfile: {type: RuntimeDefault}`; on every container
/// (init containers included) `allowPrivilegeEscalation: false` and
/// `capabilities: {drop: [ALL]}`.
///
/// Only missing fields are set, so an explicit choice always wins and is then judged by
/// the policies: a container that asks for `privileged: true` keeps it (and gets no
/// `allowPrivilegeEscalation`, which Kubernetes rejects next to `privileged`). Workload
/// formats that cannot express a security context (Score) pass PSS restricted this way;
/// their images must then run as a non-root user.
///
/// ```
/// use idp_core::{Object, PolicyContext, ports::Mutation};
/// use idp_policy::mutate::SecureDefaults;
/// let mut d = Object::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
///     "metadata": {"name": "a"},
///     "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}})).unwrap();
/// assert!(SecureDefaults::default().mutate(&mut d, &PolicyContext::new()).unwrap());
/// let spec = &d.as_map()["spec"]["template"]["spec"];
/// assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
/// assert_eq!(spec["containers"][0]["securityContext"]["capabilities"]["drop"][0], "ALL");
/// // Idempotent.
/// assert!(!SecureDefaults::default().mutate(&mut d, &PolicyContext::new()).unwrap());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecureDefaults {
    /// Set the pod's `runAsNonRoot: true` (default true).
    #[serde(default = "yes")]
    pub run_as_non_root: bool,
    /// Set the pod's `seccompProfile: {type: RuntimeDefault}` (default true).
    #[serde(default = "yes")]
    pub seccomp: bool,
    /// Set each container's `allowPrivilegeEscalation: false` (default true).
    #[serde(default = "yes")]
    pub no_privilege_escalation: bool,
    /// Set each container's `capabilities.drop: [ALL]` (default true).
    #[serde(default = "yes")]
    pub drop_all_capabilities: bool,
}

fn yes() -> bool {
    true
}

impl Default for SecureDefaults {
    fn default() -> Self {
        Self {
            run_as_non_root: true,
            seccomp: true,
            no_privilege_escalation: true,
            drop_all_capabilities: true,
        }
    }
}

/// The object under `key`, created when missing; `None` when it holds something else.
fn child<'a>(map: &'a mut Map<String, Value>, key: &str) -> Option<&'a mut Map<String, Value>> {
    if map.get(key).is_none_or(Value::is_null) {
        map.insert(key.to_owned(), Value::Object(Map::new()));
    }
    map.get_mut(key).and_then(Value::as_object_mut)
}

impl SecureDefaults {
    fn container(&self, container: &mut Map<String, Value>) -> bool {
        let Some(sc) = child(container, "securityContext") else {
            return false;
        };
        let mut changed = false;
        let privileged = sc.get("privileged").and_then(Value::as_bool) == Some(true);
        if self.no_privilege_escalation && !privileged {
            changed |= insert_missing(sc, "allowPrivilegeEscalation", Value::Bool(false));
        }
        if self.drop_all_capabilities
            && let Some(caps) = child(sc, "capabilities")
        {
            changed |= insert_missing(caps, "drop", json!(["ALL"]));
        }
        changed
    }
}

impl Mutation for SecureDefaults {
    fn name(&self) -> &str {
        "secure-defaults"
    }

    fn mutate(&self, object: &mut Object, _ctx: &PolicyContext) -> Result<bool> {
        let before = object.clone();
        let Some(spec) = pod_spec_mut(object) else {
            return Ok(false);
        };
        if let Some(sc) = child(spec, "securityContext") {
            if self.run_as_non_root {
                insert_missing(sc, "runAsNonRoot", Value::Bool(true));
            }
            if self.seccomp {
                insert_missing(sc, "seccompProfile", json!({"type": "RuntimeDefault"}));
            }
        }
        for list in ["initContainers", "containers"] {
            let Some(containers) = spec.get_mut(list).and_then(Value::as_array_mut) else {
                continue;
            };
            for c in containers.iter_mut().filter_map(Value::as_object_mut) {
                self.container(c);
            }
        }
        // Empty maps created on the way count as no change only when nothing else moved.
        Ok(*object != before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pss::PodSecurity;
    use idp_core::Policy;

    fn deployment(container: &Value) -> Object {
        Object::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "a"},
            "spec": {"template": {"spec": {"containers": [container]}}}}))
        .unwrap()
    }

    #[test]
    fn a_bare_container_then_passes_restricted() {
        let mut d = deployment(&json!({"name": "app", "image": "nginx:1.27"}));
        let ctx = PolicyContext::new();
        assert!(!PodSecurity::restricted().evaluate(&d, &ctx).is_empty());
        SecureDefaults::default().mutate(&mut d, &ctx).unwrap();
        let left: Vec<String> = PodSecurity::restricted()
            .evaluate(&d, &ctx)
            .into_iter()
            .map(|v| v.rule.into_owned())
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }

    #[test]
    fn explicit_choices_win() {
        let mut d = deployment(&json!({"name": "app", "image": "nginx:1.27",
            "securityContext": {"privileged": true, "capabilities": {"drop": ["NET_RAW"]}}}));
        SecureDefaults::default()
            .mutate(&mut d, &PolicyContext::new())
            .unwrap();
        let sc = &d.as_map()["spec"]["template"]["spec"]["containers"][0]["securityContext"];
        assert_eq!(sc["privileged"], true);
        assert!(sc.get("allowPrivilegeEscalation").is_none());
        assert_eq!(sc["capabilities"]["drop"], json!(["NET_RAW"]));
        let denied = PodSecurity::restricted().evaluate(&d, &PolicyContext::new());
        assert!(denied.iter().any(|v| v.rule == "privileged"));
    }

    #[test]
    fn objects_without_pods_are_left_alone() {
        let mut cm = Object::from_value(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
        )
        .unwrap();
        let before = cm.clone();
        assert!(
            !SecureDefaults::default()
                .mutate(&mut cm, &PolicyContext::new())
                .unwrap()
        );
        assert_eq!(cm, before);
    }
}
