//! Shared set-up for the idp-preview integration tests: a FakeCluster, a namespace
//! provider, a deployer applying to the cluster, a source with a web Deployment + Service.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use idp_core::cluster::Cluster;
use idp_core::{ManifestSet, Object};
use idp_preview::controller::PreviewController;
use idp_preview::decision::Decision;
use idp_preview::event::{Forge, PullRequestAction, PullRequestEvent};
use idp_preview::namespace::{NamespaceConfig, NamespaceProvider};
use idp_preview::source::ManifestSource;
use idp_preview::status::RecordingStatusReporter;
use idp_testkit::FakeCluster;
use idp_testkit::doubles::ApplyDeployer;

pub const IMAGE: &str = "registry.example.com/cart";

pub const WEB: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - name: web
          image: registry.example.com/cart:main
          env: [{name: COMMIT, value: "${PREVIEW_SHA}"}]
---
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
"#;

pub async fn cluster() -> FakeCluster {
    FakeCluster::builder()
        .rollout_delay(Duration::from_millis(1))
        .namespace_deletion_delay(Duration::ZERO)
        .start()
        .await
        .unwrap()
}

pub fn config() -> NamespaceConfig {
    NamespaceConfig::default()
        .with_ingress("{env}.preview.example.com", "web", 80)
        .with_destroy_timeout(Duration::from_secs(30))
}

pub fn provider(cluster: &FakeCluster) -> Arc<NamespaceProvider> {
    Arc::new(NamespaceProvider::new(
        Cluster::new(cluster.client()),
        config(),
    ))
}

pub fn source() -> Arc<ManifestSource> {
    Arc::new(
        ManifestSource::from_set(ManifestSet::parse(WEB.as_bytes(), None).unwrap())
            .with_image(IMAGE),
    )
}

pub fn controller(cluster: &FakeCluster) -> (Arc<PreviewController>, RecordingStatusReporter) {
    let reporter = RecordingStatusReporter::new();
    let deployer =
        ApplyDeployer::new(Cluster::new(cluster.client())).with_timeout(Duration::from_secs(30));
    let controller = PreviewController::new(provider(cluster), Arc::new(deployer), source())
        .with_reporter(Arc::new(reporter.clone()));
    (Arc::new(controller), reporter)
}

pub fn env_name(number: u64) -> idp_core::EnvironmentName {
    format!("pr-cart-{number}").parse().unwrap()
}

pub fn event(action: PullRequestAction, number: u64, sha: &str, second: i64) -> PullRequestEvent {
    let mut e = PullRequestEvent::new(Forge::GitHub, action, "acme/cart", number)
        .with_head("feature/x", sha)
        .with_base("main")
        .at(jiff::Timestamp::from_second(1_700_000_000 + second).unwrap());
    e.author = "jane".into();
    e
}

pub fn ensure(number: u64) -> Decision {
    Decision::Ensure {
        environment: env_name(number),
    }
}

pub fn destroy(number: u64) -> Decision {
    Decision::Destroy {
        environment: env_name(number),
        reason: "pull request closed".into(),
    }
}

/// Every resource type the fake cluster serves that a preview could leave behind.
pub const RESOURCE_TYPES: &[(&str, &str)] = &[
    ("", "namespaces"),
    ("", "configmaps"),
    ("", "secrets"),
    ("", "services"),
    ("", "serviceaccounts"),
    ("", "pods"),
    ("", "resourcequotas"),
    ("", "limitranges"),
    ("", "persistentvolumeclaims"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("apps", "daemonsets"),
    ("batch", "jobs"),
    ("networking.k8s.io", "ingresses"),
    ("networking.k8s.io", "networkpolicies"),
];

/// Objects of every type that carry our preview label or live in a preview namespace.
pub fn leftovers(cluster: &FakeCluster) -> Vec<String> {
    let mut out = Vec::new();
    for (group, resource) in RESOURCE_TYPES {
        for object in cluster.objects(group, resource, None) {
            let ours = object
                .pointer("/metadata/labels/idp.dev~1preview")
                .is_some();
            let ns = object
                .pointer("/metadata/namespace")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let name = object
                .pointer("/metadata/name")
                .and_then(|v| v.as_str())
                .unwrap_or("");
            let in_preview = ns.starts_with("pr-cart-")
                || (*resource == "namespaces" && name.starts_with("pr-cart-"));
            if ours || in_preview {
                out.push(format!("{group}/{resource} {ns}/{name}"));
            }
        }
    }
    out
}

pub fn health(
    cluster: &FakeCluster,
    group: &str,
    resource: &str,
    ns: &str,
    name: &str,
) -> Option<idp_core::cluster::HealthStatus> {
    let value = cluster.object(group, resource, ns, name)?;
    let object = Object::from_value(value).unwrap();
    idp_core::cluster::health::assess(&object).map(|h| h.status)
}
