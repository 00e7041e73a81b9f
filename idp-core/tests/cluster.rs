//! End-to-end tests of `idp_core::cluster` against the in-process API server of
//! `idp-testkit`, through the real `kube::Client`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use idp_core::cluster::{
    Applier, ApplyOutcome, Cluster, HealthStatus, Inventory, PruneOptions, RetryPolicy, labels,
    wait_healthy,
};
use idp_core::{ErrorKind, ManifestSet, Object, ObjectRef};
use idp_testkit::{FakeCluster, Fault, Verb};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::{Value, json};

const NAMESPACES: [&str; 3] = ["team-a", "team-b", "team-c"];

fn obj(value: Value) -> Object {
    Object::from_value(value).unwrap()
}

fn namespace(name: &str) -> Object {
    obj(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
}

fn config_map(namespace: &str, name: &str, value: &str) -> Object {
    obj(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "labels": {"app.kubernetes.io/name": "demo"}},
        "data": {"value": value, "other": "x"},
    }))
}

fn deployment(namespace: &str, name: &str, image: &str) -> Object {
    obj(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image, "ports": [{"containerPort": 8080}]}]},
            },
        },
    }))
}

/// 3 namespaces, 500 ConfigMaps spread over them, 2 Deployments.
fn big_set() -> ManifestSet {
    let mut set: ManifestSet = NAMESPACES.iter().map(|ns| namespace(ns)).collect();
    for i in 0..500 {
        let ns = NAMESPACES[i % NAMESPACES.len()];
        set.push(config_map(ns, &format!("cm-{i:03}"), &format!("v{i}")));
    }
    set.push(deployment("team-a", "web", "nginx:1.27"));
    set.push(deployment("team-c", "indexer", "indexer:2"));
    set
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(8)
        .with_base_delay(Duration::from_millis(2))
        .with_max_delay(Duration::from_millis(50))
}

async fn start() -> (FakeCluster, Cluster) {
    let fake = FakeCluster::builder()
        .seed(7)
        .rollout_delay(Duration::from_millis(5))
        .namespace("shop")
        .start()
        .await
        .unwrap();
    let cluster = Cluster::new(fake.client()).with_retry(fast_retry());
    (fake, cluster)
}

fn applier(cluster: &Cluster, name: &str) -> Applier {
    Applier::new(cluster.clone(), Inventory::new("default", name).unwrap())
        .with_default_namespace("shop")
}

#[tokio::test]
async fn apply_500_objects_then_reapply_unchanged_without_writes() {
    let (fake, cluster) = start().await;
    let set = big_set();
    let applier = applier(&cluster, "big");

    let first = applier.apply(&set).await.unwrap();
    assert_eq!(first.objects.len(), 505);
    assert_eq!(first.count(ApplyOutcome::Created), 505, "{first}");
    assert!(first.objects.iter().all(|o| o.resource_version.is_some()));
    // Objects are reported in input order, namespaces as applied.
    assert_eq!(
        first.objects[0].object,
        ObjectRef::new("v1", "Namespace", None, "team-a")
    );
    assert_eq!(
        first.objects[3].object,
        ObjectRef::new("v1", "ConfigMap", Some("team-a"), "cm-000")
    );

    // Every object carries the ownership labels.
    let cms: Api<ConfigMap> = Api::namespaced(fake.client(), "team-b");
    let live = cms.get("cm-001").await.unwrap();
    let live_labels = live.metadata.labels.unwrap();
    assert_eq!(live_labels[labels::MANAGED_BY], "idp");
    assert_eq!(
        live_labels[labels::APPLYSET_PART_OF],
        applier.inventory().id()
    );
    assert_eq!(live_labels["app.kubernetes.io/name"], "demo");
    assert!(live.metadata.annotations.unwrap()[labels::APPLIED_HASH].starts_with("sha256:"));

    // Re-applying the same set writes nothing and reads little.
    fake.reset_counters();
    let again = applier.apply(&set).await.unwrap();
    let requests = fake.requests();
    assert_eq!(again.count(ApplyOutcome::Unchanged), 505, "{again}");
    assert_eq!(again.writes(), 0);
    assert_eq!(
        requests.writes(),
        0,
        "{:?}",
        requests.iter().filter(|r| r.is_write()).collect::<Vec<_>>()
    );
    // One inventory read plus one list per (resource, namespace): 1 + 1 + 3 + 2.
    assert!(
        requests.len() <= 8,
        "{} requests: {:?}",
        requests.len(),
        requests
            .iter()
            .map(|r| (&r.verb, &r.path))
            .collect::<Vec<_>>()
    );
    // ConfigMaps keep their resourceVersion (Deployments move on: the rollout
    // simulator writes their status).
    let config_map_versions = |r: &idp_core::cluster::ApplyReport| -> Vec<Option<String>> {
        r.objects
            .iter()
            .filter(|o| o.object.kind == "ConfigMap")
            .map(|o| o.resource_version.clone())
            .collect()
    };
    assert_eq!(config_map_versions(&again), config_map_versions(&first));

    // Changing one object costs exactly one write.
    let mut changed: ManifestSet = ManifestSet::new();
    for o in &set {
        if o.name() == "cm-042" {
            changed.push(config_map("team-a", "cm-042", "changed"));
        } else {
            changed.push(o.clone());
        }
    }
    fake.reset_counters();
    let third = applier.apply(&changed).await.unwrap();
    assert_eq!(fake.requests().writes(), 1);
    assert_eq!(third.count(ApplyOutcome::Configured), 1, "{third}");
    let cm42 = third
        .objects
        .iter()
        .find(|o| o.object.name == "cm-042")
        .unwrap();
    assert_eq!(cm42.outcome, ApplyOutcome::Configured);
    let cms: Api<ConfigMap> = Api::namespaced(fake.client(), "team-a");
    assert_eq!(
        cms.get("cm-042").await.unwrap().data.unwrap()["value"],
        "changed"
    );
}

#[tokio::test]
async fn drift_on_a_managed_field_is_repaired() {
    let (fake, cluster) = start().await;
    let set: ManifestSet = [config_map("shop", "settings", "blue")]
        .into_iter()
        .collect();
    let applier = applier(&cluster, "drift");
    applier.apply(&set).await.unwrap();

    // Someone edits a field we manage, leaving our hash annotation alone.
    let cms: Api<ConfigMap> = Api::namespaced(fake.client(), "shop");
    let edit = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"value": "red"}});
    cms.patch("settings", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();

    // The drift is seen (a write is attempted); without force the other manager's
    // ownership of the field is a conflict, with force we take it back.
    let err = applier.apply(&set).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().contains("force"), "{err}");
    let applier = applier.with_force(true);
    fake.reset_counters();
    let report = applier.apply(&set).await.unwrap();
    assert_eq!(report.objects[0].outcome, ApplyOutcome::Configured);
    assert_eq!(fake.requests().writes(), 1);
    assert_eq!(
        cms.get("settings").await.unwrap().data.unwrap()["value"],
        "blue"
    );

    // A field we do not manage is not our business.
    let edit = json!({"apiVersion": "v1", "kind": "ConfigMap", "data": {"theirs": "1"}});
    cms.patch("settings", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    fake.reset_counters();
    let report = applier.apply(&set).await.unwrap();
    assert_eq!(report.objects[0].outcome, ApplyOutcome::Unchanged);
    assert_eq!(fake.requests().writes(), 0);
}

#[tokio::test]
async fn prune_deletes_only_what_left_the_set_and_only_ours() {
    let (fake, cluster) = start().await;
    let mine = applier(&cluster, "mine");
    let theirs = applier(&cluster, "theirs");
    let set: ManifestSet = [
        namespace("shop"),
        config_map("shop", "keep", "1"),
        config_map("shop", "dup", "1"),
        config_map("billing", "gone", "1"),
    ]
    .into_iter()
    .collect();
    let _ = cluster; // namespaces come from the set
    let billing = namespace("billing");
    let mut with_billing = set.clone();
    with_billing.push(billing);
    mine.apply(&with_billing).await.unwrap();

    // Another inventory owns an object with the same name in another namespace.
    theirs
        .apply(
            &[config_map("billing", "dup", "theirs")]
                .into_iter()
                .collect(),
        )
        .await
        .unwrap();
    // An object nobody owns, and one labelled with a foreign id.
    let billing_cms: Api<ConfigMap> = Api::namespaced(fake.client(), "billing");
    let mut stray = ConfigMap::default();
    stray.metadata.name = Some("stray".into());
    billing_cms
        .create(&PostParams::default(), &stray)
        .await
        .unwrap();
    let mut foreign = ConfigMap::default();
    foreign.metadata.name = Some("foreign".into());
    foreign.metadata.labels = Some(
        [(
            labels::APPLYSET_PART_OF.to_owned(),
            "applyset-someone-else-v1".to_owned(),
        )]
        .into_iter()
        .collect(),
    );
    billing_cms
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();

    // Drop "gone" and "dup" from my set.
    let keep: ManifestSet = [
        namespace("shop"),
        namespace("billing"),
        config_map("shop", "keep", "1"),
    ]
    .into_iter()
    .collect();
    fake.reset_counters();
    let report = mine.prune(&keep, &PruneOptions::default()).await.unwrap();
    let mut deleted: Vec<String> = report.deleted.iter().map(ToString::to_string).collect();
    deleted.sort();
    assert_eq!(
        deleted,
        vec!["v1 ConfigMap billing/gone", "v1 ConfigMap shop/dup"],
        "{report:?}"
    );
    assert_eq!(fake.requests().count_verb(Verb::Delete), 2);

    let shop_cms: Api<ConfigMap> = Api::namespaced(fake.client(), "shop");
    assert!(shop_cms.get_opt("dup").await.unwrap().is_none());
    assert!(shop_cms.get_opt("keep").await.unwrap().is_some());
    for survivor in ["dup", "stray", "foreign"] {
        assert!(
            billing_cms.get_opt(survivor).await.unwrap().is_some(),
            "{survivor} was pruned"
        );
    }

    // A second prune with the same set has nothing to do.
    let report = mine.prune(&keep, &PruneOptions::default()).await.unwrap();
    assert!(report.deleted.is_empty(), "{report:?}");

    // Pruning with everything allowed deletes my objects, rest before namespaces.
    let report = mine
        .prune(
            &ManifestSet::new(),
            &PruneOptions::default().allow_empty(true),
        )
        .await
        .unwrap();
    let order: Vec<&str> = report.deleted.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        order,
        vec!["ConfigMap", "Namespace", "Namespace"],
        "{report:?}"
    );
}

#[tokio::test]
async fn an_empty_set_is_never_pruned_unless_allowed() {
    let (fake, cluster) = start().await;
    let applier = applier(&cluster, "careful");
    applier
        .apply(&[config_map("shop", "precious", "1")].into_iter().collect())
        .await
        .unwrap();
    fake.reset_counters();
    let err = applier
        .prune(&ManifestSet::new(), &PruneOptions::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("allow_empty(true)"), "{err}");
    assert_eq!(
        fake.requests().len(),
        0,
        "refusal must not touch the cluster"
    );
    let cms: Api<ConfigMap> = Api::namespaced(fake.client(), "shop");
    assert!(cms.get_opt("precious").await.unwrap().is_some());
}

#[tokio::test]
async fn a_crd_and_its_custom_resource_apply_in_one_set() {
    let (fake, cluster) = start().await;
    let crd = obj(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"kind": "Widget", "plural": "widgets", "singular": "widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}],
        },
    }));
    let widget = obj(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "gizmo"}, "spec": {"size": 3},
    }));
    let applier = applier(&cluster, "crds");

    // Without its CRD the kind is unknown, and nothing is written.
    fake.reset_counters();
    let err = applier
        .apply(&[widget.clone()].into_iter().collect())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("is its CRD installed?"), "{err}");
    assert_eq!(fake.requests().writes(), 0);

    // Custom resource first in the input: the applier orders it after its CRD.
    let set: ManifestSet = [widget, crd].into_iter().collect();
    let report = applier.apply(&set).await.unwrap();
    assert_eq!(report.count(ApplyOutcome::Created), 2, "{report}");
    assert_eq!(
        report.objects[0].object,
        ObjectRef::new("example.com/v1", "Widget", Some("shop"), "gizmo")
    );
    let again = applier.apply(&set).await.unwrap();
    assert_eq!(again.writes(), 0, "{again}");
}

#[tokio::test]
async fn apply_converges_through_injected_503s() {
    let (fake, cluster) = start().await;
    let mut set: ManifestSet = [namespace("shop")].into_iter().collect();
    for i in 0..150 {
        set.push(config_map("shop", &format!("flaky-{i}"), "1"));
    }
    let applier = applier(&cluster, "flaky");
    fake.faults().inject(Fault::status(503).fraction(0.1));
    let report = applier.apply(&set).await.unwrap();
    assert_eq!(report.objects.len(), 151);
    let failed = fake.requests().count(|r| r.status == 503);
    assert!(failed > 0, "no fault was injected");

    fake.faults().clear();
    fake.reset_counters();
    let again = applier.apply(&set).await.unwrap();
    assert_eq!(again.count(ApplyOutcome::Unchanged), 151);
    assert_eq!(fake.requests().writes(), 0);
}

#[tokio::test]
async fn validation_errors_are_not_retried() {
    let (fake, cluster) = start().await;
    let applier = applier(&cluster, "strict");
    fake.faults().inject(
        Fault::status(422)
            .verb(Verb::Patch)
            .resource("configmaps")
            .namespace("shop"),
    );
    let err = applier
        .apply(&[config_map("shop", "bad", "1")].into_iter().collect())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.to_string().contains("apply v1 ConfigMap shop/bad"),
        "{err}"
    );
    assert_eq!(
        fake.requests().count(|r| r.verb == Verb::Patch
            && r.resource == "configmaps"
            && r.namespace.as_deref() == Some("shop")),
        1
    );
}

#[tokio::test]
async fn wait_healthy_follows_rollouts() {
    let (_fake, cluster) = start().await;
    let applier = applier(&cluster, "rollout");
    let good = applier
        .apply(
            &[
                deployment("shop", "web", "nginx:1.27"),
                config_map("shop", "cfg", "1"),
            ]
            .into_iter()
            .collect(),
        )
        .await
        .unwrap();
    let healths = wait_healthy(&cluster, &good.refs(), Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(healths.len(), 2);
    assert!(
        healths
            .iter()
            .all(|h| h.health.status == HealthStatus::Healthy),
        "{healths:?}"
    );

    let bad = applier
        .apply(
            &[deployment("shop", "broken", "app:broken")]
                .into_iter()
                .collect(),
        )
        .await
        .unwrap();
    let err = wait_healthy(&cluster, &bad.refs(), Duration::from_secs(20))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let text = err.to_string();
    assert!(
        text.contains("apps/v1 Deployment shop/broken is Degraded"),
        "{text}"
    );
    assert!(text.contains("progress deadline"), "{text}");
}

#[tokio::test]
async fn wait_healthy_times_out_naming_what_is_missing() {
    let (_fake, cluster) = start().await;
    let ghost = ObjectRef::new("apps/v1", "Deployment", Some("shop"), "ghost");
    let err = wait_healthy(&cluster, &[ghost], Duration::from_millis(300))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.to_string().contains("shop/ghost (Missing"), "{err}");
}

#[tokio::test]
async fn too_many_requests_waits_as_long_as_the_server_asks() {
    let (fake, cluster) = start().await;
    let applier = applier(&cluster, "polite");
    fake.faults().inject(
        Fault::too_many_requests(1)
            .verb(Verb::Patch)
            .resource("configmaps")
            .namespace("shop")
            .times(1),
    );
    let started = std::time::Instant::now();
    let report = applier
        .apply(&[config_map("shop", "busy", "1")].into_iter().collect())
        .await
        .unwrap();
    assert_eq!(report.objects[0].outcome, ApplyOutcome::Created);
    let patches = fake.requests().count(|r| {
        r.verb == Verb::Patch
            && r.resource == "configmaps"
            && r.namespace.as_deref() == Some("shop")
    });
    assert_eq!(patches, 2, "one refused, one retried");
    // Our own backoff (fast_retry) is milliseconds; the server asked for a second.
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn prune_without_a_recorded_inventory_searches_every_type() {
    let (fake, cluster) = start().await;
    let applier = applier(&cluster, "lost-parent");
    applier
        .apply(
            &[
                config_map("shop", "a", "1"),
                deployment("shop", "web", "nginx:1"),
            ]
            .into_iter()
            .collect(),
        )
        .await
        .unwrap();
    // The parent is gone (deleted by hand): prune falls back to full discovery.
    let defaults: Api<ConfigMap> = Api::namespaced(fake.client(), "default");
    defaults
        .delete("lost-parent", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    let keep: ManifestSet = [config_map("shop", "a", "1")].into_iter().collect();
    let report = applier
        .prune(&keep, &PruneOptions::default())
        .await
        .unwrap();
    let deleted: Vec<String> = report.deleted.iter().map(ToString::to_string).collect();
    assert_eq!(deleted, vec!["apps/v1 Deployment shop/web"]);
    // The record is written again, listing only what is kept.
    let parent = defaults.get("lost-parent").await.unwrap();
    assert_eq!(
        parent.metadata.annotations.unwrap()[labels::APPLYSET_CONTAINS_GROUP_KINDS],
        "ConfigMap"
    );
}
