//! Kyverno policies kept in a cluster (`kyverno::cluster`), against idp-testkit's API
//! server through the real kube client: read, a broken policy left out, exceptions
//! applied, and a background scan of what runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use idp_core::cluster::Cluster;
use idp_core::{Policy as _, PolicyContext};
use idp_policy::audit::Audit;
use idp_policy::kyverno::cluster::ClusterPolicies;
use idp_policy::kyverno::{KyvernoPolicy, ValidateRules};
use idp_testkit::FakeCluster;
use serde_json::json;

/// A cluster with Kyverno's CRDs, a policy requiring a `team` label on Pods, one that
/// does not load, an exception for the Pod `legacy` in `shop`, and three Pods without
/// the label (one of them `legacy`).
async fn kyverno_cluster() -> FakeCluster {
    let c = FakeCluster::builder()
        .rollout_simulation(false)
        .namespace("shop")
        .start()
        .await
        .unwrap();
    for crd in idp_testkit::kyverno_crds() {
        c.create(crd).await.unwrap();
    }
    for object in [
        json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": {"name": "require-team-label"},
            "spec": {"validationFailureAction": "Enforce", "background": true,
                "rules": [{"name": "check-team",
                    "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                    "validate": {"message": "label team is required",
                        "pattern": {"metadata": {"labels": {"team": "?*"}}}}}]}}),
        json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": {"name": "broken"}, "spec": {"rules": "none"}}),
        json!({"apiVersion": "kyverno.io/v2", "kind": "PolicyException",
            "metadata": {"name": "legacy", "namespace": "shop"},
            "spec": {"exceptions": [{"policyName": "require-team-label", "ruleNames": ["check-team"]}],
                "match": {"any": [{"resources": {"kinds": ["Pod"], "names": ["legacy"]}}]}}}),
    ] {
        c.create(object).await.unwrap();
    }
    for name in ["web", "worker", "legacy"] {
        c.create(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/app:1.0"}]}}))
            .await
            .unwrap();
    }
    c
}

#[tokio::test]
async fn without_kyverno_crds_there_is_nothing_to_read() {
    let c = FakeCluster::builder()
        .rollout_simulation(false)
        .start()
        .await
        .unwrap();
    let found = ClusterPolicies::read(&Cluster::new(c.client()))
        .await
        .unwrap();
    assert!(found.policies.is_empty() && found.exceptions.is_empty());
}

#[tokio::test]
async fn the_cluster_policies_scan_what_runs_and_a_broken_one_is_left_out() {
    let c = kyverno_cluster().await;
    let cluster = Cluster::new(c.client());
    let found = ClusterPolicies::read(&cluster).await.unwrap();
    assert_eq!(found.policies.len(), 2);
    assert_eq!(found.exceptions.len(), 1);
    let loaded = found.load_into(KyvernoPolicy::new("kyverno"));
    let skipped: Vec<&str> = loaded
        .skipped
        .iter()
        .map(|(what, _)| what.as_str())
        .collect();
    assert_eq!(skipped, ["ClusterPolicy broken"]);
    assert_eq!(loaded.policy.rules(), ["require-team-label/check-team"]);

    // An audit of every kind reads both versions of kyverno.io: ClusterPolicy is
    // served at v1 (the preferred version) only, PolicyException at v2 only.
    let kinds: Vec<String> = Audit::new(cluster.clone())
        .resources()
        .await
        .unwrap()
        .resources
        .iter()
        .map(|r| r.group_kind().to_string())
        .collect();
    for kind in ["ClusterPolicy.kyverno.io", "PolicyException.kyverno.io"] {
        assert!(kinds.iter().any(|k| k == kind), "{kind}: {kinds:?}");
    }

    let scan = ValidateRules::background(Arc::new(loaded.policy));
    let found = Audit::new(cluster)
        .with_kinds(["Pod".parse().unwrap()])
        .report(&scan, &PolicyContext::new())
        .await
        .unwrap();
    let mut denied: Vec<&str> = found
        .report
        .objects
        .iter()
        .filter(|o| !o.allowed)
        .map(|o| o.object.name.as_str())
        .collect();
    denied.sort_unstable();
    // legacy is excepted.
    assert_eq!(denied, ["web", "worker"], "{:#?}", found.report);
    assert!(
        found.report.sample[0]
            .message
            .contains("label team is required")
    );
}

/// A policy whose `context` reads ConfigMaps, by name and by a name with variables: the
/// ConfigMaps come with the policies, as Kyverno reads them at admission; others are
/// left in the cluster.
#[tokio::test]
async fn the_config_maps_a_policys_context_names_are_read_with_it() {
    let c = FakeCluster::builder()
        .rollout_simulation(false)
        .namespace("platform")
        .namespace("shop")
        .start()
        .await
        .unwrap();
    for crd in idp_testkit::kyverno_crds() {
        c.create(crd).await.unwrap();
    }
    c.create(json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
        "metadata": {"name": "registries"},
        "spec": {"validationFailureAction": "Enforce",
            "rules": [{"name": "allowed",
                "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                "context": [
                    {"name": "registries", "configMap": {"name": "registries", "namespace": "platform"}},
                    {"name": "quota", "configMap": {"name": "quota-{{ request.object.metadata.namespace }}", "namespace": "shop"}}],
                "validate": {"message": "image registry {{ registries.data.allowed }} only, at most {{ quota.data.pods }} pods",
                    "deny": {"conditions": {"any": [
                        {"key": "{{ request.object.spec.containers[0].image }}", "operator": "NotEquals", "value": "{{ registries.data.allowed }}/app:1.0"}]}}}}]}}))
        .await
        .unwrap();
    for (ns, name, data) in [
        ("platform", "registries", json!({"allowed": "ghcr.io/acme"})),
        ("platform", "unrelated", json!({"x": "y"})),
        ("shop", "quota-shop", json!({"pods": "10"})),
        ("shop", "other", json!({"z": "1"})),
    ] {
        c.create(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": ns}, "data": data}))
            .await
            .unwrap();
    }
    let found = ClusterPolicies::read(&Cluster::new(c.client()))
        .await
        .unwrap();
    let mut read: Vec<String> = found
        .config_maps
        .iter()
        .map(|cm| format!("{}/{}", cm.namespace().unwrap(), cm.name()))
        .collect();
    read.sort();
    // The one named in platform; every one of shop (a name there has variables).
    assert_eq!(
        read,
        ["platform/registries", "shop/other", "shop/quota-shop"]
    );
    let loaded = found.load_into(KyvernoPolicy::new("kyverno"));
    assert!(loaded.skipped.is_empty(), "{:?}", loaded.skipped);
    let policy = loaded.policy;
    let pod = |image: &str| {
        idp_core::Object::from_value(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"containers": [{"name": "app", "image": image}]}}))
        .unwrap()
    };
    let ctx = PolicyContext::new();
    assert!(
        policy
            .evaluate(&pod("ghcr.io/acme/app:1.0"), &ctx)
            .is_empty(),
        "{:?}",
        policy.evaluate(&pod("ghcr.io/acme/app:1.0"), &ctx)
    );
    let denied = policy.evaluate(&pod("docker.io/app:1.0"), &ctx);
    assert_eq!(
        denied[0].message, "image registry ghcr.io/acme only, at most 10 pods",
        "{denied:?}"
    );
}
