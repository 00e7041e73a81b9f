//! The deploy golden path across the crates: a component registered in the catalog is
//! mutated, checked against Pod Security Standards (restricted) and guardrails, deployed,
//! recorded — and what was deployed is applied to a Kubernetes API server and becomes
//! healthy. A privileged workload is refused with every violation and deploys nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use idp_catalog::InMemoryCatalog;
use idp_core::cluster::{Applier, Cluster, Inventory, wait_healthy};
use idp_core::model::Entity;
use idp_core::{Catalog, ErrorKind, ManifestSet, Platform, PlatformEvent, Release};
use idp_policy::mutate::{DefaultResources, StandardLabels};
use idp_policy::pss::PodSecurity;
use idp_policy::{PolicySet, guardrails};
use idp_testkit::FakeCluster;
use idp_testkit::doubles::{MemoryDeployer, RecordingSink};

const COMPLIANT: &str = r"
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cart
  namespace: shop
  labels: {app.kubernetes.io/name: cart}
spec:
  replicas: 2
  selector: {matchLabels: {app.kubernetes.io/name: cart}}
  template:
    metadata:
      labels: {app.kubernetes.io/name: cart}
    spec:
      securityContext:
        runAsNonRoot: true
        seccompProfile: {type: RuntimeDefault}
      containers:
      - name: app
        image: ghcr.io/acme/cart:1.4.2
        ports: [{containerPort: 8080}]
        readinessProbe: {httpGet: {path: /ready, port: 8080}}
        livenessProbe: {httpGet: {path: /live, port: 8080}}
        securityContext:
          allowPrivilegeEscalation: false
          capabilities: {drop: [ALL]}
";

const PRIVILEGED: &str = r"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: cart
  namespace: shop
spec:
  selector: {matchLabels: {app: cart}}
  template:
    metadata: {labels: {app: cart}}
    spec:
      hostNetwork: true
      containers:
      - name: app
        image: ghcr.io/acme/cart:latest
        ports: [{containerPort: 22}]
        securityContext: {privileged: true}
";

async fn platform() -> (Platform, MemoryDeployer, RecordingSink) {
    let catalog = InMemoryCatalog::new();
    catalog
        .upsert(
            Entity::from_value(serde_json::json!({
                "apiVersion": "backstage.io/v1alpha1",
                "kind": "Component",
                "metadata": {"name": "cart"},
                "spec": {"type": "service", "lifecycle": "production", "owner": "team-shop"}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let mut policies = PolicySet::new().with_policy(PodSecurity::restricted());
    for guardrail in guardrails::all() {
        policies.push(guardrail, idp_policy::PolicyOptions::new());
    }
    let deployer = MemoryDeployer::new();
    let events = RecordingSink::new();
    let platform = Platform::builder()
        .catalog(Arc::new(catalog))
        .deployer(Arc::new(deployer.clone()))
        .mutation(Arc::new(DefaultResources::default()))
        .mutation(Arc::new(StandardLabels::default()))
        .policy(Arc::new(policies))
        .events(Arc::new(events.clone()))
        .build()
        .unwrap();
    (platform, deployer, events)
}

fn release(yaml: &str) -> Release {
    let manifests = ManifestSet::parse(yaml.as_bytes(), Some("deploy/cart.yaml".as_ref())).unwrap();
    Release::new(
        "component:default/cart".parse().unwrap(),
        "staging".parse().unwrap(),
        manifests,
    )
    .with_author("jane@example.com")
}

#[tokio::test]
async fn privileged_workload_is_denied_with_every_violation_and_nothing_deploys() {
    let (platform, deployer, events) = platform().await;
    let err = platform.deploy(release(PRIVILEGED)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Denied);
    let rules: Vec<&str> = err.violations().iter().map(|v| v.rule.as_ref()).collect();
    for rule in ["privileged", "hostNamespaces"] {
        assert!(rules.contains(&rule), "missing {rule} in {rules:?}");
    }
    let privileged = err
        .violations()
        .iter()
        .find(|v| v.rule == "privileged")
        .unwrap();
    assert_eq!(
        privileged.path.as_deref(),
        Some("spec.template.spec.containers[0].securityContext.privileged"),
        "the path points into the pod template"
    );
    assert!(
        err.violations().iter().any(|v| v.message.contains("22")),
        "the sensitive port guardrail fires: {:?}",
        err.violations()
    );
    assert_eq!(deployer.deployment_count(), 0, "nothing was deployed");
    assert!(matches!(
        events.events()[..],
        [PlatformEvent::Denied { .. }]
    ));
}

#[tokio::test]
async fn unregistered_component_is_refused() {
    let (platform, deployer, _) = platform().await;
    let mut r = release(COMPLIANT);
    r.component = "component:default/ghost".parse().unwrap();
    let err = platform.deploy(r).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("catalog-info.yaml"), "{err}");
    assert_eq!(deployer.deployment_count(), 0);
}

#[tokio::test]
async fn compliant_workload_is_mutated_deployed_applied_and_healthy() {
    let (platform, deployer, events) = platform().await;
    let outcome = platform.deploy(release(COMPLIANT)).await.unwrap();
    assert!(
        matches!(events.events()[..], [PlatformEvent::Deployed { .. }]),
        "{:?}",
        events.events()
    );

    // The mutation filled in resources before the require-resources guardrail ran.
    let deployed = deployer
        .manifests(
            &outcome.deployment.component,
            &outcome.deployment.environment,
        )
        .unwrap();
    let deployment = deployed.iter().find(|o| o.kind() == "Deployment").unwrap();
    assert!(
        deployment
            .pointer("/spec/template/spec/containers/0/resources/limits/memory")
            .is_some(),
        "default limits were injected"
    );
    assert_eq!(
        deployment.labels().get("idp.dev/owner").map(String::as_str),
        Some("team-shop"),
        "the owner label comes from the catalog entity"
    );

    // What the platform deployed goes to a cluster and becomes healthy.
    let cluster = FakeCluster::builder()
        .rollout_delay(Duration::from_millis(20))
        .start()
        .await
        .unwrap();
    let applier = Applier::new(
        Cluster::new(cluster.client()),
        Inventory::new("shop", "cart-staging").unwrap(),
    );
    let report = applier.apply(&deployed).await.unwrap();
    assert_eq!(report.writes(), 2);
    let health = wait_healthy(applier.cluster(), &report.refs(), Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(health.len(), 2);

    // Applying the same release again writes nothing.
    cluster.reset_counters();
    let again = applier.apply(&deployed).await.unwrap();
    assert_eq!(again.writes(), 0);
    assert_eq!(cluster.requests().writes(), 0);
}
