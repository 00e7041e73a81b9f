//! Kyverno's `ValidatingPolicy` and `NamespacedValidatingPolicy` (policies.kyverno.io),
//! and the `PolicyException`s that exempt objects from them, read into
//! [`CelPolicy`](super::CelPolicy).
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
//! **Exceptions.** A `PolicyException` of policies.kyverno.io (`v1`, `v1beta1` or
//! `v1alpha1`) exempts objects from the policies its `spec.policyRefs` name (`name` and
//! `kind`, both required and compared exactly: `ValidatingPolicy` or
//! `NamespacedValidatingPolicy`). As in Kyverno:
//!
//! - **When:** after the policy's `matchConstraints` select the object and before its own
//!   `matchConditions`, the exception applies when all its `spec.matchConditions` hold
//!   (none: always). They see `object`, `oldObject` (`null`), `request` and
//!   `namespaceObject`, not the policy's `variables`.
//! - **Autogen:** it covers the auto-generated controller variants of the policy it
//!   names, its conditions reading the controller itself (`object.kind` is
//!   `Deployment`), not the Pod template.
//! - **Namespaces:** an exception is a namespaced object, but its namespace does not limit
//!   which objects it covers (Kyverno lists the exceptions of every namespace); write a
//!   condition on `request.namespace` to limit it.
//! - **Result:** the policy is not checked, and [`results`](super::CelPolicy::results)
//!   reports it `skip` (`pass` with `spec.reportResult: pass`, as decided by the first
//!   exception that holds, in the order loaded; Kyverno's priority label is not read).
//! - **`spec.images` and `spec.allowedValues`:** an exception that holds and lists them
//!   does not skip the policy; the policy is checked and reads them, with those of the
//!   other exceptions that hold, as `exceptions.allowedImages` and
//!   `exceptions.allowedValues` (empty lists when none holds).
//! - **`spec.expiresAt`:** after that time (the context's `now`) it no longer applies.
//! - **Errors:** a condition that fails or is not a boolean follows the policy's
//!   `failurePolicy`: `Fail` reports an error for the policy (not checked), `Ignore`
//!   leaves that exception out. A false condition wins over an error.
//!
//! `spec.properties` is read as notes. Other fields are refused (kyverno.io/v2's
//! `exceptions`, `match` and `conditions` belong to exceptions for ClusterPolicies).
//!
//! `spec.evaluation.background.enabled: false` keeps a policy out of background scans
//! (an [audit](crate::audit) through [`CelPolicy::for_background`](super::CelPolicy::for_background)).
//!
//! **Refused at load, naming the field:**
//!
//! - `evaluation.mode` other than `Kubernetes` (JSON, HTTP and Envoy payloads are not
//!   Kubernetes objects), and an exception's `evaluationMode` other than `Kubernetes`;
//! - `paramKind`;
//! - a missing `validationActions`;
//! - an exception without `policyRefs`, a `policyRefs` entry without `name` or `kind`,
//!   a `reportResult` other than `skip` or `pass`, an `expiresAt` that is not an
//!   RFC 3339 time, a match condition that is not valid CEL.
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
//!
//! // An exception, read from another text: the node agents may use the host network.
//! let mut p = p;
//! p.add_yaml(r#"
//! apiVersion: policies.kyverno.io/v1
//! kind: PolicyException
//! metadata: {name: node-agents, namespace: kyverno}
//! spec:
//!   policyRefs: [{name: no-host-network, kind: ValidatingPolicy}]
//!   matchConditions:
//!     - {name: agents, expression: "request.namespace == 'node-agents'"}
//! "#, None).unwrap();
//! assert_eq!(p.evaluate(&deploy, &PolicyContext::new()).len(), 1);
//! let mut agent = deploy.to_value();
//! agent["metadata"]["namespace"] = "node-agents".into();
//! let agent = Object::from_value(agent).unwrap();
//! assert!(p.evaluate(&agent, &PolicyContext::new()).is_empty());
//! assert_eq!(p.results(&agent, &PolicyContext::new()).unwrap()["no-host-network"].word(), "skip");
//! ```

use idp_core::manifest::Source;
use idp_core::model::Enforcement;
use idp_core::{Error, Result};
use serde_json::{Value, json};

use super::resources::MatchResources;
use super::{AdmissionPolicy, Binding, Expression, text};
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
    let background = match spec.pointer("/evaluation/background/enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(fail(format!(
                "spec.evaluation.background.enabled: {other} is not a boolean: true (the default) or false"
            )));
        }
    };
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
        policy.kyverno_kind = Some(kind.clone());
        policy.background = background;
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

/// The fields a `PolicyException` (policies.kyverno.io) may have in its spec.
const EXCEPTION_FIELDS: [&str; 8] = [
    "policyRefs",
    "matchConditions",
    "images",
    "allowedValues",
    "reportResult",
    "expiresAt",
    "properties",
    "evaluationMode",
];

/// A Kyverno `PolicyException` (policies.kyverno.io), compiled: the policies it names
/// are skipped for an object when all its match conditions hold.
#[derive(Debug, Clone)]
pub(super) struct Exception {
    /// `namespace/name`, or `name` without a namespace: how reports name it.
    pub(super) key: String,
    /// What errors call it: `PolicyException shop/allow-web`.
    pub(super) label: String,
    /// `(kind, name)` of each policy it applies to.
    refs: Vec<(String, String)>,
    pub(super) match_conditions: Vec<(String, Expression)>,
    /// `spec.images`: what the policy sees as `exceptions.allowedImages`.
    pub(super) images: Vec<String>,
    /// `spec.allowedValues`: what the policy sees as `exceptions.allowedValues`.
    pub(super) allowed_values: Vec<String>,
    /// `spec.reportResult: pass`: the policy is reported as passed, not skipped.
    pub(super) report_pass: bool,
    /// `spec.expiresAt`: not applied after this time.
    expires_at: Option<jiff::Timestamp>,
    pub(super) source: Option<Source>,
}

impl Exception {
    /// Whether it names the policy `name` of `kind`, and has not expired at `now`.
    pub(super) fn applies_to(&self, kind: &str, name: &str, now: jiff::Timestamp) -> bool {
        self.refs.iter().any(|(k, n)| k == kind && n == name)
            && self.expires_at.is_none_or(|until| now <= until)
    }

    /// Whether the policy it applies to is still checked, with `exceptions.*` to read,
    /// rather than skipped.
    pub(super) fn gives_values(&self) -> bool {
        !self.images.is_empty() || !self.allowed_values.is_empty()
    }
}

/// Read a `PolicyException` of policies.kyverno.io, compiling its match conditions.
pub(super) fn read_exception(value: &Value, source: Option<&Source>) -> Result<Exception> {
    let here = at(source);
    let name = value
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let key = match value
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .filter(|n| !n.is_empty())
    {
        Some(ns) => format!("{ns}/{name}"),
        None => name.to_owned(),
    };
    let label = format!("PolicyException {key}");
    let fail = |message: String| Error::invalid_input(format!("{here}{label}: {message}"));
    let spec = value.get("spec").cloned().unwrap_or_else(|| json!({}));
    let Some(fields) = spec.as_object() else {
        return Err(fail("spec is not a mapping".to_owned()));
    };
    for field in fields.keys() {
        if !EXCEPTION_FIELDS.contains(&field.as_str()) {
            return Err(fail(format!(
                "spec.{field} is not a field of a {GROUP} PolicyException (it has {}); `exceptions`, `match` and `conditions` belong to kyverno.io/v2 PolicyExceptions, for ClusterPolicies",
                EXCEPTION_FIELDS.join(", ")
            )));
        }
    }
    match spec.get("evaluationMode").and_then(Value::as_str) {
        None | Some("" | "Kubernetes") => {}
        Some(other) => {
            return Err(fail(format!(
                "spec.evaluationMode {other:?}: only exceptions for Kubernetes objects are read here"
            )));
        }
    }
    let refs = spec
        .get("policyRefs")
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| {
            fail(
                "spec.policyRefs is required: list the policies ({name, kind}) it exempts from"
                    .to_owned(),
            )
        })?
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let field = |key: &str| {
                text(r, key)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| fail(format!("spec.policyRefs[{i}].{key} is required")))
            };
            Ok((field("kind")?, field("name")?))
        })
        .collect::<Result<Vec<_>>>()?;
    let list = |key: &str| -> Result<Vec<String>> {
        match spec.get(key) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| {
                    v.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| fail(format!("spec.{key} entry {v} is not a string")))
                })
                .collect(),
            Some(_) => Err(fail(format!("spec.{key} is not a list of strings"))),
        }
    };
    let images = list("images")?;
    let allowed_values = list("allowedValues")?;
    let report_pass = match spec.get("reportResult").and_then(Value::as_str) {
        None | Some("" | "skip") => false,
        Some("pass") => true,
        Some(other) => {
            return Err(fail(format!(
                "spec.reportResult {other:?} is not skip or pass"
            )));
        }
    };
    let expires_at = match spec.get("expiresAt") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.parse::<jiff::Timestamp>().map_err(|e| {
            fail(format!(
                "spec.expiresAt {s:?} is not an RFC 3339 time (2026-12-31T23:59:59Z): {e}"
            ))
        })?),
        Some(other) => {
            return Err(fail(format!(
                "spec.expiresAt {other} is not an RFC 3339 time (2026-12-31T23:59:59Z)"
            )));
        }
    };
    let match_conditions = spec
        .get("matchConditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, c)| {
            let expression = text(c, "expression")
                .filter(|e| !e.trim().is_empty())
                .ok_or_else(|| fail(format!("spec.matchConditions[{i}].expression is required")))?;
            Ok((
                text(c, "name").unwrap_or_default().to_owned(),
                Expression::compile(
                    expression,
                    format!("spec.matchConditions[{i}].expression"),
                    &here,
                    &label,
                )?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Exception {
        key,
        label,
        refs,
        match_conditions,
        images,
        allowed_values,
        report_pass,
        expires_at,
        source: source.cloned(),
    })
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
