//! Gatekeeper templates with `K8sNativeValidation` (CEL) code (features `rego` and
//! `cel`): parameters through `variables.params`, `variables.anyObject`, match
//! conditions, priority over the template's Rego, errors and cost limits.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

use idp_core::model::{Enforcement, Operation};
use idp_core::{Object, Policy, PolicyContext, Violation};
use idp_policy::rego::RegoPolicy;
use serde_json::{Value, json};

const REQUIRED_LABELS: &str = include_str!("fixtures/gatekeeper-cel/required-labels.yaml");
const PRIVILEGED: &str = include_str!("fixtures/gatekeeper-cel/privileged.yaml");

fn object(value: Value) -> Object {
    Object::from_value(value).unwrap()
}

fn deployment(labels: Value) -> Object {
    object(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "labels": labels},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:1"}]}}}
    }))
}

fn pod(namespace: &str, containers: Value) -> Object {
    object(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": namespace},
        "spec": {"containers": containers}
    }))
}

fn privileged(name: &str, image: &str) -> Value {
    json!({"name": name, "image": image, "securityContext": {"privileged": true}})
}

fn load(yaml: &str) -> RegoPolicy {
    RegoPolicy::new("gatekeeper")
        .with_gatekeeper_yaml(yaml, None)
        .unwrap()
}

fn rules(v: &[Violation]) -> Vec<(&str, &str, Enforcement)> {
    v.iter()
        .map(|v| (v.rule.as_ref(), v.message.as_str(), v.enforcement))
        .collect()
}

#[test]
fn a_cel_template_reads_its_constraints_parameters() {
    let policy = load(REQUIRED_LABELS);
    let ctx = PolicyContext::new();

    let v = policy.evaluate(&deployment(json!({"team": "cart"})), &ctx);
    assert_eq!(
        rules(&v),
        [(
            "K8sRequiredLabels/need-team-and-owner",
            "missing labels: owner",
            Enforcement::Warn
        )]
    );
    assert_eq!(v[0].policy, "gatekeeper");
    assert_eq!(v[0].path.as_deref(), Some("metadata.labels"));

    let v = policy.evaluate(&deployment(json!({})), &ctx);
    assert_eq!(v[0].message, "missing labels: team, owner");

    // Both labels: nothing. A Pod: not matched by the constraint's kinds.
    assert!(
        policy
            .evaluate(&deployment(json!({"team": "cart", "owner": "ana"})), &ctx)
            .is_empty()
    );
    let p = pod("shop", json!([{"name": "app", "image": "app:1"}]));
    assert!(policy.evaluate(&p, &ctx).is_empty());
}

#[test]
fn cel_runs_instead_of_the_rego_and_each_constraint_applies_its_own_parameters() {
    let policy = load(PRIVILEGED);
    let ctx = PolicyContext::new();

    let p = pod(
        "shop",
        json!([privileged("debug", "ghcr.io/acme/debug:1.0"), {"name": "app", "image": "app:1"}]),
    );
    let v = policy.evaluate(&p, &ctx);
    // The constraint without parameters (`variables.params` is `{}`) finds the
    // privileged container; the one exempting its image finds nothing. The Rego beside
    // the CEL never runs.
    assert_eq!(
        rules(&v),
        [(
            "K8sNoPrivileged/everywhere",
            "privileged containers: debug",
            Enforcement::Deny
        )]
    );

    // Init containers too; the exemption is per image, under dryrun (audit).
    let p = object(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
        "spec": {"containers": [privileged("app", "app:1")],
                 "initContainers": [privileged("setup", "busybox:1")]}
    }));
    let v = policy.evaluate(&p, &ctx);
    assert_eq!(
        rules(&v),
        [
            (
                "K8sNoPrivileged/everywhere",
                "privileged containers: app, setup",
                Enforcement::Deny
            ),
            (
                "K8sNoPrivileged/except-debug-image",
                "privileged containers: app, setup",
                Enforcement::Audit
            ),
        ]
    );

    // matchConditions: kube-system is skipped. `request.operation`: updates pass.
    let sys = pod("kube-system", json!([privileged("app", "app:1")]));
    assert!(policy.evaluate(&sys, &ctx).is_empty());
    let update = PolicyContext::new().with_operation(Operation::Update);
    assert!(
        policy
            .evaluate(&pod("shop", json!([privileged("app", "app:1")])), &update)
            .is_empty()
    );
}

fn template(source: &str) -> String {
    format!(
        "apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {{name: k8sbad}}
spec:
  crd: {{spec: {{names: {{kind: K8sBad}}}}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      code:
        - engine: K8sNativeValidation
          source:
{source}
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sBad
metadata: {{name: all}}
spec: {{}}
"
    )
}

#[test]
fn bad_cel_is_an_error_naming_the_template_and_field() {
    let err = RegoPolicy::new("g")
        .with_gatekeeper_yaml(
            &template("            validations: [{expression: 'object.spec.replicas <'}]"),
            Some(std::path::Path::new("policies/bad.yaml")),
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("policies/bad.yaml"), "{err}");
    assert!(
        err.contains(
            "ConstraintTemplate k8sbad: spec.targets[0].code[0].source.validations[0].expression is not valid CEL"
        ),
        "{err}"
    );

    let err = RegoPolicy::new("g")
        .with_gatekeeper_yaml(
            &template("            variables: [{name: x, expression: 'true'}]"),
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no validations"), "{err}");

    let err = RegoPolicy::new("g")
        .with_gatekeeper_yaml(
            &template("            validations: [{expression: 'true'}]\n            failurePolicy: Sometimes"),
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("spec.targets[0].code[0].source.failurePolicy \"Sometimes\""),
        "{err}"
    );

    let none = "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: empty}\nspec:\n  crd: {spec: {names: {kind: K8sEmpty}}}\n  targets: [{target: admission.k8s.gatekeeper.sh}]\n";
    let err = RegoPolicy::new("g")
        .with_gatekeeper_yaml(none, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("has no code"), "{err}");
}

#[test]
fn failing_expressions_follow_the_failure_policy_and_cost_limits() {
    // 2,000 items, three levels deep: far over Kubernetes' per-expression limit.
    let expr = "variables.anyObject.data.items.all(a, variables.anyObject.data.items.all(b, variables.anyObject.data.items.all(c, a + b + c >= 0)))";
    let items: Vec<i64> = (0..2000).collect();
    let big = object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "shop"}, "data": {"items": items}}));

    let fail = load(&template(&format!(
        "            validations: [{{expression: \"{expr}\"}}]"
    )));
    let v = fail.evaluate(&big, &PolicyContext::new());
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].rule, "K8sBad/all");
    assert!(
        v[0].message.contains("per-expression limit of 1000000")
            && v[0].message.contains("(constraint K8sBad/all)")
            && v[0].message.contains("failurePolicy: Fail"),
        "{}",
        v[0].message
    );
    assert_eq!(v[0].enforcement, Enforcement::Deny);

    let ignore = load(&template(&format!(
        "            failurePolicy: Ignore\n            validations: [{{expression: \"{expr}\"}}]"
    )));
    assert!(ignore.evaluate(&big, &PolicyContext::new()).is_empty());

    // The same expression over a small object runs and holds.
    let small = object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "shop"}, "data": {"items": [1, 2]}}));
    let v = fail.evaluate(&small, &PolicyContext::new());
    assert!(v.is_empty(), "{v:#?}");

    // A validation that is not a boolean is an error, not a pass.
    let not_bool = load(&template(
        "            validations: [{expression: 'object.metadata.name'}]",
    ));
    let v = not_bool.evaluate(&small, &PolicyContext::new());
    assert!(v[0].message.contains("not a boolean"), "{}", v[0].message);
}

#[test]
fn cel_templates_ignore_the_inventory_and_join_policy_sets() {
    let policy = load(REQUIRED_LABELS)
        .with_inventory([&deployment(json!({"team": "x"}))])
        .unwrap();
    let v = policy.evaluate(&deployment(json!({"owner": "ana"})), &PolicyContext::new());
    assert_eq!(v[0].message, "missing labels: team");

    let mut set = idp_policy::PolicySet::new();
    set.push(
        std::sync::Arc::new(policy),
        idp_policy::PolicyOptions::default(),
    );
    let report = set.check_object(&deployment(json!({})), &PolicyContext::new());
    // A warn constraint: reported, not denied.
    assert!(report.allowed);
    assert_eq!(report.violations.len(), 1);
}
