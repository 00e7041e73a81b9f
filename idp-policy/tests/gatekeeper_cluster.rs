//! Gatekeeper policies kept in a cluster (`rego::cluster`), against idp-testkit's API
//! server through the real kube client: read as Gatekeeper reads them, a broken
//! template left out, and an audit's findings written into the constraints' status.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

use idp_core::cluster::Cluster;
use idp_core::{ErrorKind, Object, Policy, PolicyContext};
use idp_policy::audit::Audit;
use idp_policy::rego::RegoPolicy;
use idp_policy::rego::cluster::{ClusterPolicies, ConstraintStatuses, STATUS_VIOLATIONS_LIMIT};
use idp_testkit::FakeCluster;
use serde_json::{Value, json};

const REQUIRED_LABELS: &str = "package k8srequiredlabels\nviolation[{\"msg\": msg}] {\n  required := input.parameters.labels[_]\n  not input.review.object.metadata.labels[required]\n  msg := sprintf(\"you must provide label %v\", [required])\n}\n";

fn template(name: &str, kind: &str, rego: &str) -> Value {
    json!({"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
        "metadata": {"name": name},
        "spec": {"crd": {"spec": {"names": {"kind": kind}}},
            "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": rego}]}})
}

fn constraint(kind: &str, name: &str, spec: Value) -> Value {
    json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": kind,
        "metadata": {"name": name}, "spec": spec})
}

/// A cluster with Gatekeeper's CRDs, a working template with a constraint on
/// Namespaces, a template that does not compile with its constraint, and the Config.
async fn gatekeeper_cluster() -> FakeCluster {
    let c = FakeCluster::builder()
        .rollout_simulation(false)
        .namespace("gatekeeper-system")
        .namespace("shop")
        .start()
        .await
        .unwrap();
    for crd in idp_testkit::gatekeeper_crds(&["K8sRequiredLabels", "K8sBroken"]) {
        c.create(crd).await.unwrap();
    }
    for object in [
        template("k8srequiredlabels", "K8sRequiredLabels", REQUIRED_LABELS),
        template("k8sbroken", "K8sBroken", "package k8sbroken\nviolation[{"),
        constraint(
            "K8sRequiredLabels",
            "namespaces-have-an-owner",
            json!({"match": {"kinds": [{"apiGroups": [""], "kinds": ["Namespace"]}]},
                "parameters": {"labels": ["owner"]}}),
        ),
        constraint("K8sBroken", "never", json!({})),
        json!({"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config",
            "metadata": {"name": "config", "namespace": "gatekeeper-system"},
            "spec": {"match": [{"excludedNamespaces": ["kube-*"], "processes": ["*"]}]}}),
        // Not named config: Gatekeeper ignores it.
        json!({"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config",
            "metadata": {"name": "other", "namespace": "shop"},
            "spec": {"match": [{"excludedNamespaces": ["shop"], "processes": ["*"]}]}}),
    ] {
        c.create(object).await.unwrap();
    }
    c
}

fn namespace(name: &str) -> Object {
    Object::from_value(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
        .unwrap()
}

#[tokio::test]
async fn without_gatekeeper_crds_there_is_nothing_to_read() {
    let c = FakeCluster::builder()
        .rollout_simulation(false)
        .start()
        .await
        .unwrap();
    let found = ClusterPolicies::read(&Cluster::new(c.client()))
        .await
        .unwrap();
    assert!(found.templates.is_empty() && found.constraints.is_empty() && found.config.is_none());
}

#[tokio::test]
async fn the_cluster_policies_load_and_a_broken_template_is_left_out_alone() {
    let c = gatekeeper_cluster().await;
    let found = ClusterPolicies::read(&Cluster::new(c.client()))
        .await
        .unwrap();
    assert_eq!(found.templates.len(), 2);
    assert_eq!(found.constraints.len(), 2);
    assert_eq!(
        found.config.as_ref().unwrap().namespace(),
        Some("gatekeeper-system")
    );

    let loaded = found.load_into(RegoPolicy::new("gatekeeper")).unwrap();
    let skipped: Vec<&str> = loaded
        .skipped
        .iter()
        .map(|(what, _)| what.as_str())
        .collect();
    assert_eq!(skipped, ["ConstraintTemplate k8sbroken"]);
    assert_eq!(
        loaded.policy.constraints(),
        ["K8sRequiredLabels/namespaces-have-an-owner"]
    );
    assert_eq!(loaded.constraints.len(), 1);
    let ctx = PolicyContext::new();
    let found = loaded.policy.evaluate(&namespace("shop"), &ctx);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].message, "you must provide label owner");
    // The Config named config applies: kube-* is left out.
    assert!(
        loaded
            .policy
            .evaluate(&namespace("kube-system"), &ctx)
            .is_empty()
    );
}

#[tokio::test]
async fn an_audit_writes_its_findings_into_the_constraints_status() {
    let c = gatekeeper_cluster().await;
    for i in 0..25 {
        c.create(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": format!("team-{i:02}")}}))
            .await
            .unwrap();
    }
    c.create(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "owned", "labels": {"owner": "team-a"}}}))
        .await
        .unwrap();
    let cluster = Cluster::new(c.client());
    let loaded = ClusterPolicies::read(&cluster)
        .await
        .unwrap()
        .load_into(RegoPolicy::new("gatekeeper"))
        .unwrap();
    let policy = loaded.policy.for_audit();
    let mut statuses = ConstraintStatuses::new("gatekeeper", &loaded.constraints);
    let listing = Audit::new(cluster.clone())
        .with_kinds(["Namespace".parse().unwrap()])
        .run(&policy, &PolicyContext::new(), |object, result| {
            statuses.add(object, &result.violations);
        })
        .await
        .unwrap();
    let at: jiff::Timestamp = "2026-11-27T05:00:00Z".parse().unwrap();
    let failed = statuses.write(&cluster, at).await;
    assert!(failed.is_empty(), "{failed:?}");

    let stored = c
        .object(
            "constraints.gatekeeper.sh",
            "k8srequiredlabels",
            "",
            "namespaces-have-an-owner",
        )
        .unwrap();
    let status = &stored["status"];
    // Every Namespace but kube-* (the Config) and the owned one.
    let expected = listing.objects() - 1 - listing_names_with_prefix(&c, "kube-").await;
    assert_eq!(
        status["totalViolations"].as_u64(),
        Some(expected),
        "{status}"
    );
    assert!(expected > STATUS_VIOLATIONS_LIMIT as u64);
    let listed = status["violations"].as_array().unwrap();
    assert_eq!(
        listed.len(),
        STATUS_VIOLATIONS_LIMIT,
        "capped as Gatekeeper caps it"
    );
    assert_eq!(
        listed[0],
        json!({"enforcementAction": "deny", "group": "", "version": "v1", "kind": "Namespace",
            "name": listed[0]["name"], "message": "you must provide label owner"})
    );
    assert!(
        listed
            .iter()
            .all(|v| v["name"] != "owned" && !v["name"].as_str().unwrap().starts_with("kube-"))
    );
    assert_eq!(status["auditTimestamp"], "2026-11-27T05:00:00Z");
    // The spec is untouched.
    assert_eq!(stored["spec"]["parameters"]["labels"], json!(["owner"]));

    // A constraint gone since it was read: its failure is returned, not fatal.
    let mut resource = kube::discovery::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "constraints.gatekeeper.sh",
        "v1beta1",
        "K8sRequiredLabels",
    ));
    resource.plural = "k8srequiredlabels".to_owned();
    kube::Api::<kube::api::DynamicObject>::all_with(c.client(), &resource)
        .delete(
            "namespaces-have-an-owner",
            &kube::api::DeleteParams::default(),
        )
        .await
        .unwrap();
    let failed = statuses.write(&cluster, at).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].1.kind(), ErrorKind::NotFound, "{}", failed[0].1);
}

/// How many Namespaces of the simulated cluster start with `prefix`.
async fn listing_names_with_prefix(c: &FakeCluster, prefix: &str) -> u64 {
    let api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(c.client());
    let list = api.list(&kube::api::ListParams::default()).await.unwrap();
    list.items
        .iter()
        .filter(|n| {
            n.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(prefix))
        })
        .count() as u64
}
