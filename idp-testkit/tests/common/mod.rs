//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use idp_testkit::FakeCluster;
use kube::api::{Api, DynamicObject, PostParams};
use kube::discovery::ApiResource;

/// A cluster with tiny delays so tests stay fast.
pub async fn cluster() -> FakeCluster {
    FakeCluster::builder()
        .rollout_delay(Duration::from_millis(5))
        .namespace_deletion_delay(Duration::from_millis(5))
        .bookmark_interval(Duration::from_millis(50))
        .start()
        .await
        .unwrap()
}

pub fn cm_resource() -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".into(),
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        plural: "configmaps".into(),
    }
}

pub fn configmap(name: &str, labels: &[(&str, &str)]) -> DynamicObject {
    let labels: serde_json::Map<String, serde_json::Value> = labels
        .iter()
        .map(|(k, v)| ((*k).to_owned(), serde_json::json!(v)))
        .collect();
    serde_json::from_value(serde_json::json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": name, "labels": labels},
        "data": {"key": "value"}
    }))
    .unwrap()
}

pub async fn create_namespace(client: &kube::Client, name: &str) {
    let ns: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    let obj = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    ns.create(&PostParams::default(), &obj).await.unwrap();
}

/// Polls `check` every few milliseconds for up to two seconds.
pub async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..400 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    false
}

pub fn api_err(e: kube::Error) -> kube::core::Status {
    match e {
        kube::Error::Api(s) => *s,
        other => panic!("expected an API error, got {other:?}"),
    }
}
