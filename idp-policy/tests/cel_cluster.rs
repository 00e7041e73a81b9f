//! CEL admission policies kept in a cluster (`cel::cluster`), against idp-testkit's API
//! server through the real kube client: ValidatingAdmissionPolicies with their bindings
//! and params, Kyverno ValidatingPolicies with their exceptions, a broken policy left
//! out, and an audit of what runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use idp_core::cluster::Cluster;
use idp_core::{Object, Policy as _, PolicyContext};
use idp_policy::audit::Audit;
use idp_policy::cel::CelPolicy;
use idp_policy::cel::cluster::ClusterPolicies;
use idp_testkit::FakeCluster;
use serde_json::{Value, json};

fn deployment(namespace: &str, name: &str, replicas: u32) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app": name}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/app:1.0"}]}}}})
}

/// A cluster with a replica limit as a ValidatingAdmissionPolicy whose param is a
/// ConfigMap (bound for the namespaces labelled `env: prod`), a Kyverno
/// ValidatingPolicy requiring an `app` label on ConfigMaps with an exception for
/// `legacy`, a broken policy, and Deployments in `shop` (prod) and `lab`.
async fn cel_cluster() -> FakeCluster {
    let c = FakeCluster::builder()
        .rollout_simulation(false)
        .start()
        .await
        .unwrap();
    for crd in idp_testkit::kyverno_cel_crds() {
        c.create(crd).await.unwrap();
    }
    for object in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"env": "prod"}}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "replica-limit", "namespace": "default"}, "data": {"max": "3"}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "max-replicas"},
            "spec": {"paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                "matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]},
                "validations": [{"expression": "object.spec.replicas <= int(params.data.max)",
                    "messageExpression": "'at most ' + params.data.max + ' replicas, got ' + string(object.spec.replicas)"}]}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": "max-replicas-prod"},
            "spec": {"policyName": "max-replicas", "validationActions": ["Deny"],
                "paramRef": {"name": "replica-limit", "namespace": "default", "parameterNotFoundAction": "Deny"},
                "matchResources": {"namespaceSelector": {"matchLabels": {"env": "prod"}}}}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "broken"},
            "spec": {"matchConstraints": {"resourceRules": []},
                "validations": [{"expression": "object.spec.replicas <"}]}}),
        json!({"apiVersion": "policies.kyverno.io/v1", "kind": "ValidatingPolicy",
            "metadata": {"name": "configmaps-have-an-app"},
            "spec": {"validationActions": ["Deny"],
                "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"]}]},
                "validations": [{"expression": "has(object.metadata.labels) && 'app' in object.metadata.labels",
                    "message": "an app label is required"}]}}),
        json!({"apiVersion": "policies.kyverno.io/v1", "kind": "PolicyException",
            "metadata": {"name": "legacy", "namespace": "lab"},
            "spec": {"policyRefs": [{"name": "configmaps-have-an-app", "kind": "ValidatingPolicy"}],
                "matchConditions": [{"name": "legacy", "expression": "object.metadata.name == 'legacy'"}]}}),
        deployment("shop", "web", 5),
        deployment("shop", "api", 2),
        deployment("lab", "big", 9),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "legacy", "namespace": "lab"}}),
    ] {
        c.create(object).await.unwrap();
    }
    c
}

#[tokio::test]
async fn the_policies_bindings_and_params_are_read_and_a_broken_one_is_left_out() {
    let c = cel_cluster().await;
    let found = ClusterPolicies::read(&Cluster::new(c.client()))
        .await
        .unwrap();
    let names: Vec<&str> = found.policies.iter().map(Object::name).collect();
    assert_eq!(names, ["broken", "max-replicas", "configmaps-have-an-app"]);
    assert_eq!(found.bindings.len(), 1);
    assert_eq!(found.exceptions.len(), 1);
    // The ConfigMaps (the param kind) and the Namespaces.
    assert!(
        found
            .params
            .iter()
            .any(|o| o.kind() == "ConfigMap" && o.name() == "replica-limit")
    );
    assert!(
        found
            .params
            .iter()
            .any(|o| o.kind() == "Namespace" && o.name() == "shop")
    );
    let loaded = found.load_into(CelPolicy::new("admission-policies"));
    assert_eq!(loaded.skipped.len(), 1, "{:?}", loaded.skipped);
    assert_eq!(loaded.skipped[0].0, "ValidatingAdmissionPolicy broken");
    assert!(
        loaded.skipped[0]
            .1
            .to_string()
            .contains("spec.validations[0].expression is not valid CEL"),
        "{}",
        loaded.skipped[0].1
    );

    // Manifests checked before commit, as the API server would admit them.
    let policy = loaded.policy;
    let ctx = PolicyContext::new();
    let denied = policy.evaluate(
        &Object::from_value(deployment("shop", "web", 5)).unwrap(),
        &ctx,
    );
    assert_eq!(denied.len(), 1, "{denied:?}");
    assert_eq!(denied[0].message, "at most 3 replicas, got 5");
    // Not bound in lab (no env: prod label).
    assert!(
        policy
            .evaluate(
                &Object::from_value(deployment("lab", "big", 9)).unwrap(),
                &ctx
            )
            .is_empty()
    );
}

#[tokio::test]
async fn an_audit_finds_what_runs_against_policies_added_later() {
    let c = cel_cluster().await;
    let cluster = Cluster::new(c.client());
    let loaded = ClusterPolicies::read(&cluster)
        .await
        .unwrap()
        .load_into(CelPolicy::new("admission-policies"));
    let found = Audit::new(cluster)
        .with_kinds([
            "Deployment.apps".parse().unwrap(),
            "ConfigMap".parse().unwrap(),
        ])
        .report(&loaded.policy.for_background(), &PolicyContext::new())
        .await
        .unwrap();
    let mut denied: Vec<String> = found
        .report
        .objects
        .iter()
        .filter(|o| !o.allowed)
        .map(|o| o.object.to_string())
        .collect();
    denied.sort();
    // shop/web is over the prod limit; the replica-limit ConfigMap has no app label;
    // lab/legacy is excepted; lab/big is not bound.
    assert_eq!(
        denied,
        [
            "apps/v1 Deployment shop/web",
            "v1 ConfigMap default/replica-limit"
        ],
        "{:#?}",
        found.report
    );
}

#[tokio::test]
async fn without_the_kinds_there_is_nothing_to_read() {
    let c = FakeCluster::builder()
        .rollout_simulation(false)
        .start()
        .await
        .unwrap();
    // No Kyverno CRDs, no ValidatingAdmissionPolicies: nothing, and no params read.
    let found = ClusterPolicies::read(&Cluster::new(c.client()))
        .await
        .unwrap();
    assert!(found.policies.is_empty() && found.params.is_empty());
}
