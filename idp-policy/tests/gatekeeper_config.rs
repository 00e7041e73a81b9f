//! Gatekeeper's `Config` among the Gatekeeper files: namespaces left out of the
//! webhook, the audit, the sync and the mutation webhook, and `syncOnly` shaping
//! `data.inventory`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use idp_core::ports::Mutation;
use idp_core::{Object, Policy, PolicyContext};
use idp_policy::gatekeeper::mutation::GatekeeperMutators;
use idp_policy::rego::RegoPolicy;
use serde_json::json;

const UNIQUE_HOST: &str = include_str!("fixtures/rego/unique-ingress-host.yaml");

/// A template whose constraint denies every Pod.
const DENY_PODS: &str = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8sdenypods}
spec:
  crd: {spec: {names: {kind: K8sDenyPods}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sdenypods
        violation[{"msg": "no Pods here"}] { input.review.kind.kind == "Pod" }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sDenyPods
metadata: {name: no-pods}
"#;

const CONFIG: &str = r#"
apiVersion: config.gatekeeper.sh/v1alpha1
kind: Config
metadata: {name: config, namespace: gatekeeper-system}
spec:
  sync:
    syncOnly:
      - {group: networking.k8s.io, version: v1, kind: Ingress}
  match:
    - excludedNamespaces: ["kube-*"]
      processes: ["*"]
    - excludedNamespaces: [legacy]
      processes: [audit]
    - excludedNamespaces: [staging]
      processes: [sync]
    - excludedNamespaces: [edge]
      processes: [mutation-webhook]
"#;

fn object(value: serde_json::Value) -> Object {
    Object::from_value(value).unwrap()
}

fn pod(namespace: &str) -> Object {
    object(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}))
}

fn ingress(namespace: &str, name: &str, host: &str) -> Object {
    object(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"rules": [{"host": host}]}}),
    )
}

fn gatekeeper(yaml: &str) -> RegoPolicy {
    RegoPolicy::new("gatekeeper")
        .with_gatekeeper_yaml(yaml, Some(Path::new("gatekeeper.yaml")))
        .unwrap()
        .with_gatekeeper_yaml(CONFIG, Some(Path::new("config.yaml")))
        .unwrap()
}

#[test]
fn the_webhook_and_the_audit_leave_out_their_namespaces() {
    let ctx = PolicyContext::new();
    let webhook = gatekeeper(DENY_PODS);
    let audit = webhook.clone().for_audit();
    let denied = |policy: &RegoPolicy, ns: &str| !policy.evaluate(&pod(ns), &ctx).is_empty();
    // kube-* is out of every process; legacy only out of the audit; the rest in.
    assert!(!denied(&webhook, "kube-system"));
    assert!(!denied(&audit, "kube-public"));
    assert!(denied(&webhook, "legacy"));
    assert!(!denied(&audit, "legacy"));
    assert!(denied(&webhook, "shop"));
    assert!(denied(&audit, "shop"));
    // Excluded from the sync or the mutation webhook only: still checked.
    assert!(denied(&webhook, "staging"));
    assert!(denied(&audit, "edge"));
    let config = webhook.gatekeeper_config().unwrap();
    assert_eq!(
        config.sync_only()[0].to_string(),
        "Ingress.networking.k8s.io"
    );
}

#[test]
fn the_inventory_holds_what_gatekeeper_would_have_synced() {
    let ctx = PolicyContext::new();
    let shop = ingress("shop", "web", "shop.example.com");
    // Same host, but in a namespace kept from the sync, and one left out of everything.
    let staging = ingress("staging", "web", "shop.example.com");
    let system = ingress("kube-system", "web", "shop.example.com");
    let policy = gatekeeper(UNIQUE_HOST)
        .with_inventory([&shop, &staging, &system])
        .unwrap();
    assert!(
        policy.evaluate(&shop, &ctx).is_empty(),
        "neither copy was synced"
    );
    let copy = ingress("test", "copy", "shop.example.com");
    let policy = policy.with_inventory([&shop, &copy, &staging]).unwrap();
    let found = policy.evaluate(&shop, &ctx);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(
        found[0].message.contains("test/copy"),
        "{}",
        found[0].message
    );
}

#[test]
fn sync_only_keeps_other_kinds_out_of_the_inventory() {
    // A template that reports every ConfigMap it finds in data.inventory.
    let template = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8sseeconfigmaps}
spec:
  crd: {spec: {names: {kind: K8sSeeConfigMaps}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sseeconfigmaps
        violation[{"msg": msg}] {
          data.inventory.namespace[ns]["v1"].ConfigMap[name]
          msg := sprintf("sees %v/%v", [ns, name])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sSeeConfigMaps
metadata: {name: see}
"#;
    let cm = object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cfg", "namespace": "shop"}}));
    let ctx = PolicyContext::new();
    let without_config = RegoPolicy::new("gk")
        .with_gatekeeper_yaml(template, None)
        .unwrap()
        .with_inventory([&cm])
        .unwrap();
    assert_eq!(without_config.evaluate(&pod("shop"), &ctx).len(), 1);
    let with_config = gatekeeper(template).with_inventory([&cm]).unwrap();
    assert!(with_config.evaluate(&pod("shop"), &ctx).is_empty());
}

#[test]
fn one_config_given_before_the_inventory() {
    let twice = RegoPolicy::new("gk")
        .with_gatekeeper_yaml(CONFIG, Some(Path::new("a.yaml")))
        .unwrap()
        .with_gatekeeper_yaml(CONFIG, Some(Path::new("b.yaml")));
    let err = twice.unwrap_err().to_string();
    assert!(
        err.contains("b.yaml") && err.contains("second Gatekeeper Config"),
        "{err}"
    );

    let late = RegoPolicy::new("gk")
        .with_inventory([&pod("shop")])
        .unwrap()
        .with_gatekeeper_yaml(CONFIG, Some(Path::new("config.yaml")));
    let err = late.unwrap_err().to_string();
    assert!(
        err.contains("config.yaml") && err.contains("before the inventory"),
        "{err}"
    );

    let renamed = CONFIG.replace("name: config,", "name: gatekeeper-config,");
    let err = RegoPolicy::new("gk")
        .with_gatekeeper_yaml(&renamed, Some(Path::new("config.yaml")))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("config.yaml") && err.contains("\"gatekeeper-config\""),
        "{err}"
    );
}

#[test]
fn the_mutation_webhook_leaves_its_namespaces_alone() {
    let mut mutators = GatekeeperMutators::from_yaml(
        "gatekeeper",
        r"
apiVersion: mutations.gatekeeper.sh/v1
kind: AssignMetadata
metadata: {name: owner}
spec:
  location: metadata.labels.owner
  parameters: {assign: {value: platform}}
",
        None,
    )
    .unwrap();
    mutators
        .add_yaml(CONFIG, Some(Path::new("config.yaml")))
        .unwrap();
    let ctx = PolicyContext::new();
    let mut shop = pod("shop");
    assert!(mutators.mutate(&mut shop, &ctx).unwrap());
    assert_eq!(shop.labels()["owner"], "platform");
    for ns in ["edge", "kube-system"] {
        let mut left = pod(ns);
        assert!(!mutators.mutate(&mut left, &ctx).unwrap(), "{ns}");
        assert!(left.labels().is_empty(), "{ns}");
    }
}
