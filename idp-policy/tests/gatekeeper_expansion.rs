//! Gatekeeper's expansion: `ExpansionTemplate`s check workloads by the Pods they would
//! create, with mutators shaping those mock Pods and `match.source` choosing which
//! constraints see real objects, mocks or both.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value,
    clippy::items_after_statements
)]

use idp_core::model::Enforcement;
use idp_core::{Object, Policy, PolicyContext};
use idp_policy::rego::RegoPolicy;
use serde_json::{Value, json};

const POLICIES: &str = include_str!("fixtures/gatekeeper-expansion/policies.yaml");

fn policy() -> RegoPolicy {
    RegoPolicy::new("gatekeeper")
        .with_gatekeeper_yaml(POLICIES, Some(std::path::Path::new("policies.yaml")))
        .unwrap()
}

fn pod_spec(privileged: bool) -> Value {
    json!({"containers": [{"name": "app", "image": "shop:1",
        "securityContext": {"privileged": privileged}}]})
}

fn deployment(privileged: bool, labels: Value) -> Object {
    Object::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "Cart", "namespace": "shop"},
        "spec": {"template": {"metadata": {"labels": labels}, "spec": pod_spec(privileged)}}}))
    .unwrap()
}

/// (rule, message, action) of every violation.
fn found(p: &RegoPolicy, o: &Object) -> Vec<(String, String, Enforcement)> {
    p.try_evaluate(o, &PolicyContext::new())
        .unwrap()
        .into_iter()
        .map(|v| (v.rule.into_owned(), v.message, v.enforcement))
        .collect()
}

#[test]
fn a_workload_is_checked_by_the_pod_it_would_create() {
    let p = policy();
    let bad = deployment(true, json!({"app": "cart"}));
    assert_eq!(
        found(&p, &bad),
        [(
            "K8sNoPrivileged/no-privileged".to_owned(),
            "[Implied by expand-workloads] privileged container app in Pod cart-pod".to_owned(),
            Enforcement::Deny
        )]
    );
    // The same Deployment, not privileged: nothing.
    assert!(found(&p, &deployment(false, json!({"app": "cart"}))).is_empty());
    // A constraint for mocks only, with its own action: a template without `app`.
    assert_eq!(
        found(&p, &deployment(false, json!({"team": "a"}))),
        [(
            "K8sNeedLabel/templates-have-app".to_owned(),
            "[Implied by expand-workloads] label app is required".to_owned(),
            Enforcement::Audit
        )]
    );
}

#[test]
fn real_pods_see_the_original_constraints_and_no_prefix() {
    let p = policy();
    let pod = Object::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop", "labels": {"mesh": "on"}}, "spec": pod_spec(true)}))
    .unwrap();
    let rules: Vec<_> = found(&p, &pod)
        .into_iter()
        .map(|(r, m, _)| (r, m))
        .collect();
    assert_eq!(
        rules,
        [
            (
                "K8sNoPrivileged/no-privileged".to_owned(),
                "privileged container app in Pod web".to_owned()
            ),
            (
                "K8sNeedLabel/pods-have-owner".to_owned(),
                "label owner is required".to_owned()
            ),
        ]
    );
}

#[test]
fn mutators_for_generated_objects_shape_the_mock() {
    let p = policy();
    // The mesh's sidecar is privileged: a Deployment whose Pods join the mesh breaks the
    // constraint through it, though its own container does not.
    let meshed = deployment(false, json!({"app": "cart", "mesh": "on"}));
    let found = found(&p, &meshed);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].1,
        "[Implied by expand-workloads] privileged container mesh-proxy in Pod cart-pod"
    );
    // The mutator is for mocks only: it leaves real Pods alone.
    use idp_core::ports::Mutation;
    let mutators = idp_policy::gatekeeper::mutation::GatekeeperMutators::from_yaml(
        "gk",
        &POLICIES[POLICIES.find("apiVersion: mutations").unwrap()..],
        None,
    )
    .unwrap();
    let mut pod = Object::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "labels": {"mesh": "on"}}, "spec": pod_spec(false)}))
    .unwrap();
    assert!(!mutators.mutate(&mut pod, &PolicyContext::new()).unwrap());
}

#[test]
fn the_template_action_replaces_the_constraint_action() {
    let p = policy();
    let job = Object::from_value(json!({"apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "migrate", "namespace": "shop"},
        "spec": {"template": {"metadata": {"labels": {"app": "m"}}, "spec": pod_spec(true)}}}))
    .unwrap();
    assert_eq!(
        found(&p, &job),
        [(
            "K8sNoPrivileged/no-privileged".to_owned(),
            "[Implied by expand-jobs] privileged container app in Pod migrate-pod".to_owned(),
            Enforcement::Warn
        )]
    );
}

#[test]
fn a_workload_without_its_template_is_an_error_naming_it() {
    let p = policy();
    let broken = Object::from_value(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db"}, "spec": {"template": ["not", "a", "mapping"]}}))
    .unwrap();
    let err = p
        .try_evaluate(&broken, &PolicyContext::new())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("ExpansionTemplate expand-workloads")
            && err.contains("StatefulSet db has a list at spec.template"),
        "{err}"
    );
    // As a Policy: one error violation, no panic.
    let v = p.evaluate(&broken, &PolicyContext::new());
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].rule, "rego-error");
}

#[test]
fn bad_source_values_are_refused_naming_the_field() {
    let bad = POLICIES.replace("source: Original", "source: Real");
    let err = RegoPolicy::new("gk")
        .with_gatekeeper_yaml(&bad, Some(std::path::Path::new("policies.yaml")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("policies.yaml") && err.contains("spec.match.source \"Real\""),
        "{err}"
    );
}
