//! Kyverno's `ValidatingPolicy` and `NamespacedValidatingPolicy` (policies.kyverno.io),
//! read into [`CelPolicy`](super::CelPolicy).
//!
//! A `ValidatingPolicy` is a `ValidatingAdmissionPolicy` that needs no binding:
//!
//! - `spec.validationActions` (`Deny`, `Warn`, `Audit`) is in the policy itself;
//! - `matchConstraints`, `matchConditions`, `variables`, `validations` and
//!   `failurePolicy` are read as for a `ValidatingAdmissionPolicy`.
//!
//! A `NamespacedValidatingPolicy` is the same, and applies only in its own namespace.
//!
//! **Pod controllers.** As Kyverno does, a policy that matches only Pods (one resource
//! rule for `pods` in the core group, version `v1`, without resource names, selectors
//! or exclusions) also checks the Pod templates of controllers. By default that is
//! Deployments, DaemonSets, StatefulSets, ReplicaSets, Jobs and CronJobs;
//! `spec.autogen.podControllers.controllers` chooses them by resource name.
//!
//! - **The variants:** `autogen-<policy>` for the template under `spec.template`, and
//!   `autogen-cronjobs-<policy>` for CronJobs (`spec.jobTemplate.spec.template`).
//! - **How they are made:** every expression reading `object.spec` reads the template's
//!   spec instead, and `object.metadata` (but not `object.metadata.name` or `.namespace`)
//!   the template's metadata. The same holds for `oldObject`.
//!
//! **Refused at load, naming the field:**
//!
//! - `evaluation.mode` other than `Kubernetes` (JSON, HTTP and Envoy payloads are not
//!   Kubernetes objects);
//! - `paramKind`;
//! - a missing `validationActions`.
//!
//! Kyverno's own CEL libraries (`resource`, `http`, `image`, `globalContext`…) are not
//! available. An expression that calls one fails when evaluated, under the policy's
//! `failurePolicy`.
//!
//! ```
//! use idp_core::{Object, Policy, PolicyContext};
//! use idp_policy::cel::CelPolicy;
//!
//! let p = CelPolicy::from_yaml("kyverno", r#"
//! apiVersion: policies.kyverno.io/v1
//! kind: ValidatingPolicy
//! metadata: {name: no-host-network}
//! spec:
//!   validationActions: [Deny]
//!   matchConstraints:
//!     resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]
//!   validations:
//!     - expression: "!(has(object.spec.hostNetwork) && object.spec.hostNetwork)"
//!       message: host networking is not allowed
//! "#, None).unwrap();
//! // Written for Pods, it checks the Pod template of a Deployment too.
//! let deploy = Object::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
//!     "metadata": {"name": "web", "namespace": "shop"},
//!     "spec": {"template": {"spec": {"hostNetwork": true, "containers": []}}}})).unwrap();
//! let v = p.evaluate(&deploy, &PolicyContext::new());
//! assert_eq!(v[0].rule, "autogen-no-host-network/validations[0]");
//! assert_eq!(v[0].message, "host networking is not allowed");
//! ```

use idp_core::manifest::Source;
use idp_core::model::Enforcement;
use idp_core::{Error, Result};
use serde_json::{Value, json};

use super::resources::MatchResources;
use super::{AdmissionPolicy, Binding, text};
use crate::names::source_prefix as at;

/// The API group of Kyverno's CEL policy kinds.
pub(super) const GROUP: &str = "policies.kyverno.io";

/// A pod controller autogen can target: its resource, group and template paths.
struct Controller {
    resource: &'static str,
    group: &'static str,
    cronjob: bool,
}

const CONTROLLERS: [Controller; 6] = [
    Controller {
        resource: "daemonsets",
        group: "apps",
        cronjob: false,
    },
    Controller {
        resource: "deployments",
        group: "apps",
        cronjob: false,
    },
    Controller {
        resource: "replicasets",
        group: "apps",
        cronjob: false,
    },
    Controller {
        resource: "statefulsets",
        group: "apps",
        cronjob: false,
    },
    Controller {
        resource: "jobs",
        group: "batch",
        cronjob: false,
    },
    Controller {
        resource: "cronjobs",
        group: "batch",
        cronjob: true,
    },
];

/// The strongest of a list of `validationActions` (`field` names it for errors).
pub(super) fn validation_actions(
    spec: &Value,
    field: &str,
    fail: &dyn Fn(String) -> Error,
) -> Result<Enforcement> {
    let mut enforcement: Option<Enforcement> = None;
    for action in spec
        .get("validationActions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let a = match action.as_str() {
            Some("Deny") => Enforcement::Deny,
            Some("Warn") => Enforcement::Warn,
            Some("Audit") => Enforcement::Audit,
            _ => {
                return Err(fail(format!(
                    "{field}.validationActions entry {action} is not Deny, Warn or Audit"
                )));
            }
        };
        enforcement = Some(match (enforcement, a) {
            (Some(Enforcement::Deny), _) | (_, Enforcement::Deny) => Enforcement::Deny,
            (Some(Enforcement::Warn), _) | (_, Enforcement::Warn) => Enforcement::Warn,
            _ => Enforcement::Audit,
        });
    }
    enforcement.ok_or_else(|| {
        fail(format!(
            "{field}.validationActions is required (Deny, Warn and/or Audit)"
        ))
    })
}

/// Whether a policy's `matchConstraints` select Pods alone, as Kyverno requires before
/// it generates the controller variants.
fn matches_only_pods(match_constraints: &Value) -> bool {
    let non_empty_selector = |key: &str| {
        match_constraints.get(key).is_some_and(|s| {
            ["matchLabels", "matchExpressions"].iter().any(|k| {
                s.get(*k).is_some_and(|v| {
                    v.as_object().is_some_and(|m| !m.is_empty())
                        || v.as_array().is_some_and(|l| !l.is_empty())
                })
            })
        })
    };
    if non_empty_selector("namespaceSelector") || non_empty_selector("objectSelector") {
        return false;
    }
    if match_constraints
        .get("excludeResourceRules")
        .and_then(Value::as_array)
        .is_some_and(|l| !l.is_empty())
    {
        return false;
    }
    let Some([rule]) = match_constraints
        .get("resourceRules")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
    else {
        return false;
    };
    let only = |key: &str, want: &str| {
        rule.get(key)
            .and_then(Value::as_array)
            .is_some_and(|l| l.len() == 1 && l[0].as_str() == Some(want))
    };
    let no_names = rule
        .get("resourceNames")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    no_names && only("apiGroups", "") && only("apiVersions", "v1") && only("resources", "pods")
}

/// Rewrite `object.<from>` and `oldObject.<from>` to `<to>` in `text`, except where the
/// path goes on with `.name` or `.namespace` (the controller's own name and namespace
/// stay what they were).
fn replace_path(text: &str, from: &str, to: &str) -> String {
    let mut out = text.to_owned();
    for root in ["object.", "oldObject."] {
        let (from, to) = (format!("{root}{from}"), format!("{root}{to}"));
        let mut next = String::with_capacity(out.len());
        let mut rest = out.as_str();
        while let Some(i) = rest.find(&from) {
            // `myobject.spec` is another identifier: only a whole `object` is rewritten.
            let before = rest[..i].chars().next_back();
            let whole = before.is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
            next.push_str(&rest[..i]);
            let after = &rest[i + from.len()..];
            let protected = [".name", ".namespace"].iter().any(|suffix| {
                after.strip_prefix(suffix).is_some_and(|tail| {
                    tail.chars()
                        .next()
                        .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
                })
            });
            let continues = after
                .chars()
                .next()
                .is_some_and(|c| c.is_alphanumeric() || c == '_');
            if whole && !protected && !continues {
                next.push_str(&to);
            } else {
                next.push_str(&from);
            }
            rest = after;
        }
        next.push_str(rest);
        out = next;
    }
    out
}

/// Every string in `value` with the controller's template paths in place of the Pod's.
fn rewrite(value: &Value, cronjob: bool) -> Value {
    let template = if cronjob {
        "spec.jobTemplate.spec.template"
    } else {
        "spec.template"
    };
    match value {
        Value::String(s) => Value::String(replace_path(
            &replace_path(s, "spec", &format!("{template}.spec")),
            "metadata",
            &format!("{template}.metadata"),
        )),
        Value::Array(items) => Value::Array(items.iter().map(|v| rewrite(v, cronjob)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), rewrite(v, cronjob)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Read a `ValidatingPolicy` or `NamespacedValidatingPolicy`: the policy and its implicit
/// binding, then the auto-generated controller variants with theirs.
pub(super) fn read(
    value: &Value,
    source: Option<&Source>,
) -> Result<Vec<(AdmissionPolicy, Binding)>> {
    let here = at(source);
    let kind = text(value, "kind").unwrap_or("ValidatingPolicy").to_owned();
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let label = format!("{kind} {name}");
    let fail = |message: String| Error::invalid_input(format!("{here}{label}: {message}"));
    let namespace = if kind == "NamespacedValidatingPolicy" {
        Some(
            value
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    fail(
                        "metadata.namespace is required: the policy applies in its own namespace"
                            .to_owned(),
                    )
                })?
                .to_owned(),
        )
    } else {
        None
    };
    let spec = value.get("spec").cloned().unwrap_or_else(|| json!({}));
    match spec.pointer("/evaluation/mode").and_then(Value::as_str) {
        None | Some("" | "Kubernetes") => {}
        Some(other) => {
            return Err(fail(format!(
                "spec.evaluation.mode {other:?}: only Kubernetes objects are checked here (JSON, HTTP and Envoy payloads are not)"
            )));
        }
    }
    if spec.get("paramKind").is_some_and(|p| !p.is_null()) {
        return Err(fail(
            "spec.paramKind: params are not supported in a ValidatingPolicy; write a ValidatingAdmissionPolicy with a binding instead".to_owned(),
        ));
    }
    let enforcement = validation_actions(&spec, "spec", &fail)?;
    let match_value = spec.get("matchConstraints").cloned().ok_or_else(|| {
        fail(
            "spec.matchConstraints is required (list the resourceRules the policy applies to)"
                .to_owned(),
        )
    })?;
    let compile = |policy_name: String,
                   spec: &Value,
                   match_value: &Value|
     -> Result<(AdmissionPolicy, Binding)> {
        let mut policy = AdmissionPolicy::parse(
            spec,
            "spec",
            "validations",
            policy_name.clone(),
            label.clone(),
            &[],
            source.cloned(),
        )?;
        policy.origin.clone_from(&name);
        policy.match_constraints = MatchResources::from_value(match_value, "spec.matchConstraints")
            .map_err(|e| e.context(format!("{here}{label}")))?;
        let binding = Binding {
            name: policy_name.clone(),
            policy_name,
            param_ref: None,
            match_resources: None,
            enforcement,
            namespace: namespace.clone(),
            source: source.cloned(),
        };
        Ok((policy, binding))
    };
    let mut out = vec![compile(name.clone(), &spec, &match_value)?];
    if !matches_only_pods(&match_value) {
        return Ok(out);
    }
    let chosen: Option<Vec<String>> = match spec.pointer("/autogen/podControllers/controllers") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|c| {
                    c.as_str()
                        .filter(|c| CONTROLLERS.iter().any(|k| k.resource == *c))
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            fail(format!(
                                "spec.autogen.podControllers.controllers entry {c} is not one of daemonsets, deployments, replicasets, statefulsets, jobs, cronjobs"
                            ))
                        })
                })
                .collect::<Result<_>>()?,
        ),
        Some(_) => {
            return Err(fail(
                "spec.autogen.podControllers.controllers is not a list of resources".to_owned(),
            ));
        }
    };
    let operations = match_value
        .pointer("/resourceRules/0/operations")
        .cloned()
        .unwrap_or_else(|| json!(["*"]));
    for (cronjob, prefix) in [(false, "autogen"), (true, "autogen-cronjobs")] {
        let targets: Vec<&Controller> = CONTROLLERS
            .iter()
            .filter(|c| c.cronjob == cronjob)
            .filter(|c| {
                chosen
                    .as_ref()
                    .is_none_or(|l| l.iter().any(|r| r == c.resource))
            })
            .collect();
        if targets.is_empty() {
            continue;
        }
        let mut rules: Vec<Value> = Vec::new();
        for group in ["apps", "batch"] {
            let resources: Vec<&str> = targets
                .iter()
                .filter(|c| c.group == group)
                .map(|c| c.resource)
                .collect();
            if !resources.is_empty() {
                rules.push(json!({"apiGroups": [group], "apiVersions": ["v1"], "resources": resources, "operations": operations}));
            }
        }
        let mut variant = spec.clone();
        if let Some(map) = variant.as_object_mut() {
            map.remove("matchConstraints");
            map.remove("autogen");
        }
        let variant = rewrite(&variant, cronjob);
        out.push(compile(
            format!("{prefix}-{name}"),
            &variant,
            &json!({"resourceRules": rules}),
        )?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn template_paths_replace_the_pods() {
        let r = |s: &str| {
            rewrite(&json!(s), false)
                .as_str()
                .unwrap_or_default()
                .to_owned()
        };
        assert_eq!(
            r("object.spec.containers.all(c, has(c.resources))"),
            "object.spec.template.spec.containers.all(c, has(c.resources))"
        );
        assert_eq!(
            r("'app' in object.metadata.?labels.orValue({}) && object.metadata.name != ''"),
            "'app' in object.spec.template.metadata.?labels.orValue({}) && object.metadata.name != ''"
        );
        assert_eq!(
            r("oldObject.spec == null"),
            "oldObject.spec.template.spec == null"
        );
        assert_eq!(
            r("myobject.spec + object.specs"),
            "myobject.spec + object.specs"
        );
        assert_eq!(r("object.metadata.namespace"), "object.metadata.namespace");
        assert_eq!(
            rewrite(&json!("object.spec.hostNetwork"), true),
            json!("object.spec.jobTemplate.spec.template.spec.hostNetwork")
        );
    }

    #[test]
    fn only_pod_policies_are_generated_for_controllers() {
        let pods = json!({"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods"], "operations": ["CREATE"]}]});
        assert!(matches_only_pods(&pods));
        let mut named = pods.clone();
        named["resourceRules"][0]["resourceNames"] = json!(["web"]);
        assert!(!matches_only_pods(&named));
        let mut selected = pods.clone();
        selected["objectSelector"] = json!({"matchLabels": {"a": "b"}});
        assert!(!matches_only_pods(&selected));
        let mut empty_selector = pods.clone();
        empty_selector["namespaceSelector"] = json!({});
        assert!(matches_only_pods(&empty_selector));
        let both = json!({"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"], "resources": ["pods", "services"]}]});
        assert!(!matches_only_pods(&both));
    }

    proptest! {
        /// Rewriting never panics on any text, and leaves text without `object.` alone.
        #[test]
        fn rewriting_any_text_is_safe(s in ".{0,60}", cronjob in any::<bool>()) {
            let out = rewrite(&json!(s), cronjob);
            if !s.contains("bject.") {
                prop_assert_eq!(out, json!(s));
            }
        }
    }
}
