//! Gatekeeper mutators (`mutations.gatekeeper.sh`): Assign, AssignMetadata, ModifySet and
//! AssignImage applied together, with match/applyTo filtering, namespaceSelector over
//! supplied Namespace objects, convergence, idempotence and errors.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

use std::path::Path;

use idp_core::ports::Mutation;
use idp_core::{ErrorKind, ManifestSet, Object, PolicyContext};
use idp_policy::gatekeeper::mutation::GatekeeperMutators;
use serde_json::{Value, json};

const MUTATORS: &str = include_str!("fixtures/gatekeeper-mutation/mutators.yaml");
const NAMESPACES: &str = include_str!("fixtures/gatekeeper-mutation/namespaces.yaml");
const FIGHT: &str = include_str!("fixtures/gatekeeper-mutation/fight.yaml");
const INVALID: &str = include_str!("fixtures/gatekeeper-mutation/invalid.yaml");

fn mutators() -> GatekeeperMutators {
    let mut m = GatekeeperMutators::from_yaml(
        "gatekeeper",
        MUTATORS,
        Some(Path::new("policies/mutators.yaml")),
    )
    .unwrap();
    m.add_yaml(NAMESPACES, Some(Path::new("policies/namespaces.yaml")))
        .unwrap();
    m
}

fn pod(namespace: Option<&str>, containers: Value) -> Object {
    let mut metadata = json!({"name": "web"});
    if let Some(ns) = namespace {
        metadata["namespace"] = json!(ns);
    }
    Object::from_value(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
        "spec": {"containers": containers}}),
    )
    .unwrap()
}

fn containers() -> Value {
    json!([
        {"name": "app", "image": "ghcr.io/acme/shop:1.4", "args": ["--port=8080"]},
        {"name": "proxy", "image": "envoy:1.30", "imagePullPolicy": "IfNotPresent",
         "securityContext": {"allowPrivilegeEscalation": true}}
    ])
}

fn mutated_with(m: &GatekeeperMutators, o: &Object, ctx: &PolicyContext) -> (bool, Value) {
    let mut o = o.clone();
    let changed = m.mutate(&mut o, ctx).unwrap();
    (changed, o.to_value())
}

fn mutated(m: &GatekeeperMutators, o: &Object) -> (bool, Value) {
    mutated_with(m, o, &PolicyContext::new())
}

#[test]
fn loads_in_gatekeepers_order() {
    assert_eq!(
        mutators().mutators(),
        [
            "Assign/always-pull",
            "Assign/no-privilege-escalation",
            "AssignImage/mirror-deployment-images",
            "AssignImage/mirror-images",
            "AssignMetadata/team-label",
            "ModifySet/json-logs",
        ]
    );
}

#[test]
fn a_pod_in_a_tenant_namespace_gets_every_default() {
    let (changed, out) = mutated(&mutators(), &pod(Some("shop"), containers()));
    assert!(changed);
    let c = &out["spec"]["containers"];
    assert_eq!(c[0]["imagePullPolicy"], "Always");
    assert_eq!(c[1]["imagePullPolicy"], "Always");
    // The default fills what is missing, and keeps what the author wrote.
    assert_eq!(c[0]["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c[1]["securityContext"]["allowPrivilegeEscalation"], true);
    assert_eq!(c[0]["args"], json!(["--port=8080", "--log-format=json"]));
    assert_eq!(c[1]["args"], json!(["--log-format=json"]));
    assert_eq!(c[0]["image"], "mirror.acme.io/acme/shop:1.4");
    assert_eq!(c[1]["image"], "mirror.acme.io/envoy:1.30");
    // The Namespace object supplied says shop is a tenant.
    assert_eq!(out["metadata"]["labels"]["acme.dev/team"], "platform");
}

#[test]
fn namespace_filters_select_the_mutators() {
    let m = mutators();
    // tools has no tenant label; it is not among json-logs' namespaces either.
    let (_, out) = mutated(&m, &pod(Some("tools"), containers()));
    assert!(out["metadata"].get("labels").is_none(), "{out}");
    assert_eq!(out["spec"]["containers"][1]["args"], Value::Null);
    assert_eq!(out["spec"]["containers"][0]["imagePullPolicy"], "Always");
    // team-a matches json-logs' glob; no Namespace object was given, so the selector
    // sees no labels.
    let (_, out) = mutated(&m, &pod(Some("team-a"), containers()));
    assert_eq!(
        out["spec"]["containers"][1]["args"],
        json!(["--log-format=json"])
    );
    assert!(out["metadata"].get("labels").is_none(), "{out}");
    // kube-system is excluded everywhere: nothing changes.
    let original = pod(Some("kube-system"), containers());
    let (changed, out) = mutated(&m, &original);
    assert!(!changed);
    assert_eq!(out, original.to_value());
    // The namespace of the context stands in for a missing one.
    let ctx = PolicyContext {
        namespace: Some("shop".into()),
        ..PolicyContext::new()
    };
    let (_, out) = mutated_with(&m, &pod(None, containers()), &ctx);
    assert_eq!(out["metadata"]["labels"]["acme.dev/team"], "platform");
    // scope: Namespaced — without any namespace, the Pod is not mutated by the
    // Namespaced mutators, but mirror-images (no scope) still applies.
    let (_, out) = mutated(&m, &pod(None, containers()));
    assert_eq!(out["spec"]["containers"][0].get("imagePullPolicy"), None);
    assert_eq!(
        out["spec"]["containers"][0]["image"],
        "mirror.acme.io/acme/shop:1.4"
    );
}

#[test]
fn apply_to_selects_kinds() {
    let m = mutators();
    let deploy = Object::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx"}]}}}}))
    .unwrap();
    let (changed, out) = mutated(&m, &deploy);
    assert!(changed);
    let c = &out["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c, &json!({"name": "app", "image": "mirror.acme.io/nginx"}));
    // AssignMetadata has no applyTo: its match alone decides.
    assert_eq!(out["metadata"]["labels"]["acme.dev/team"], "platform");
    let cm = Object::from_value(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "namespace": "tools"}, "data": {"a": "1"}}))
    .unwrap();
    assert!(!mutated(&m, &cm).0);
}

#[test]
fn an_existing_label_is_never_changed() {
    let mut p = pod(Some("shop"), containers());
    p.as_map_mut()["metadata"]["labels"] = json!({"acme.dev/team": "payments"});
    let (_, out) = mutated(&mutators(), &p);
    assert_eq!(out["metadata"]["labels"]["acme.dev/team"], "payments");
}

#[test]
fn applying_twice_equals_once_and_keeps_the_source() {
    let m = mutators();
    let set = ManifestSet::parse(
        b"apiVersion: v1\nkind: Pod\nmetadata: {name: web, namespace: shop}\nspec:\n  containers:\n    - {name: app, image: nginx}\n",
        Some(Path::new("apps/web.yaml")),
    )
    .unwrap();
    let mut o = set.iter().next().unwrap().clone();
    let source = o.source().cloned();
    assert!(m.mutate(&mut o, &PolicyContext::new()).unwrap());
    assert_eq!(o.source().cloned(), source);
    let once = o.to_value();
    assert!(!m.mutate(&mut o, &PolicyContext::new()).unwrap());
    assert_eq!(o.to_value(), once);
}

#[test]
fn a_set_that_does_not_converge_is_denied() {
    let m = GatekeeperMutators::from_yaml("gatekeeper", FIGHT, None).unwrap();
    let mut p = pod(Some("shop"), containers());
    let before = p.to_value();
    let err = m.mutate(&mut p, &PolicyContext::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied);
    let text = err.to_string();
    assert!(text.contains("do not converge"), "{text}");
    assert!(
        text.contains("Assign/dns-default, Assign/dns-none"),
        "{text}"
    );
    assert_eq!(err.violations()[0].policy, "gatekeeper");
    assert_eq!(p.to_value(), before, "the object is left as it was");
}

#[test]
fn invalid_mutators_are_refused_naming_file_mutator_and_field() {
    let err =
        GatekeeperMutators::from_yaml("gatekeeper", INVALID, Some(Path::new("policies/m.yaml")))
            .unwrap_err();
    let text = err.to_string();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        text.starts_with("policies/m.yaml:1 (document 0): Assign set-pull-policy: spec.location:"),
        "{text}"
    );
    assert!(text.contains("'*' list selector"), "{text}");
    // Other documents are refused by name.
    let err = GatekeeperMutators::from_yaml(
        "gatekeeper",
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sRequiredLabels\nmetadata: {name: labels}\nspec: {}\n",
        None,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("K8sRequiredLabels labels is not a Gatekeeper mutator"),
        "{err}"
    );
}

/// Mutators kept in a cluster (`mutation::cluster`), read through the real kube client
/// from idp-testkit's API server: a broken one left out, `namespaceSelector` matched
/// against the cluster's Namespaces, applied after the mutators of files.
#[tokio::test]
async fn mutators_kept_in_the_cluster_are_read_and_applied() {
    use idp_policy::gatekeeper::mutation::cluster::ClusterMutators;
    let c = idp_testkit::FakeCluster::builder()
        .rollout_simulation(false)
        .start()
        .await
        .unwrap();
    for crd in idp_testkit::gatekeeper_mutation_crds() {
        c.create(crd).await.unwrap();
    }
    for object in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop", "labels": {"tier": "web"}}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "lab"}}),
        json!({"apiVersion": "mutations.gatekeeper.sh/v1", "kind": "AssignMetadata",
            "metadata": {"name": "web-tier"},
            "spec": {"match": {"namespaceSelector": {"matchLabels": {"tier": "web"}}},
                "location": "metadata.labels.tier",
                "parameters": {"assign": {"value": "web"}}}}),
        // No applyTo: Gatekeeper refuses an Assign without one.
        json!({"apiVersion": "mutations.gatekeeper.sh/v1", "kind": "Assign",
            "metadata": {"name": "broken"},
            "spec": {"location": "spec.containers[name:*].imagePullPolicy",
                "parameters": {"assign": {"value": "Always"}}}}),
    ] {
        c.create(object).await.unwrap();
    }
    let found = ClusterMutators::read(&idp_core::cluster::Cluster::new(c.client()))
        .await
        .unwrap();
    assert_eq!(found.mutators.len(), 2);
    let loaded = found.load_into(mutators());
    assert_eq!(loaded.skipped.len(), 1, "{:?}", loaded.skipped);
    assert_eq!(loaded.skipped[0].0, "Assign broken");
    assert!(
        loaded
            .mutators
            .mutators()
            .contains(&"AssignMetadata/web-tier".to_owned()),
        "{:?}",
        loaded.mutators.mutators()
    );
    let (_, shop) = mutated(&loaded.mutators, &pod(Some("shop"), containers()));
    assert_eq!(shop["metadata"]["labels"]["tier"], "web", "{shop}");
    let (_, lab) = mutated(&loaded.mutators, &pod(Some("lab"), containers()));
    assert!(lab["metadata"]["labels"].get("tier").is_none(), "{lab}");
}
