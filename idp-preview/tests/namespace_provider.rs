//! NamespaceProvider against the fake API server, through the real kube client.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use idp_core::cluster::Cluster;
use idp_core::model::EnvironmentSpec;
use idp_core::{EnvironmentProvider, ErrorKind};
use idp_preview::labels::{self, PreviewId};
use idp_preview::namespace::{NamespaceConfig, NamespaceProvider};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, PostParams};

#[tokio::test]
async fn passes_the_environment_provider_conformance_suite() {
    let cluster = common::cluster().await;
    let provider = common::provider(&cluster);
    idp_testkit::conformance::environment_provider(provider.as_ref()).await;
}

fn spec(number: u64) -> EnvironmentSpec {
    let id = PreviewId::new("acme/cart", number).unwrap();
    let mut spec =
        EnvironmentSpec::new(common::env_name(number)).with_ttl(Duration::from_secs(3600));
    spec.labels.extend(id.labels());
    spec.labels
        .insert(labels::HEAD_SHA.into(), "9f1c2e7d".into());
    spec
}

#[tokio::test]
async fn ensure_creates_namespace_quota_limits_policy_and_ingress() {
    let cluster = common::cluster().await;
    let provider = common::provider(&cluster);
    let before = jiff::Timestamp::now();
    let env = provider.ensure(&spec(42)).await.unwrap();
    assert_eq!(
        env.url.as_deref(),
        Some("https://pr-cart-42.preview.example.com")
    );
    assert_eq!(env.namespace.as_deref(), Some("pr-cart-42"));
    assert_eq!(env.labels[labels::PREVIEW_ID], "acme/cart#42");
    let expires = env.expires_at.unwrap();
    assert!(expires >= before + jiff::SignedDuration::from_secs(3600));

    let ns = cluster.object("", "namespaces", "", "pr-cart-42").unwrap();
    assert_eq!(ns["metadata"]["labels"][labels::MANAGED_BY], "idp-preview");
    assert_eq!(ns["metadata"]["labels"][labels::REPO], "acme-cart");
    assert_eq!(ns["metadata"]["labels"][labels::PR_NUMBER], "42");
    assert_eq!(ns["metadata"]["labels"][labels::HEAD_SHA], "9f1c2e7d");
    assert_eq!(
        ns["metadata"]["annotations"][labels::PREVIEW_ID],
        "acme/cart#42"
    );
    assert_eq!(
        ns["metadata"]["annotations"][labels::EXPIRES_AT],
        expires.to_string()
    );

    let quota = cluster
        .object("", "resourcequotas", "pr-cart-42", "preview-quota")
        .unwrap();
    assert_eq!(quota["spec"]["hard"]["pods"], "20");
    let limits = cluster
        .object("", "limitranges", "pr-cart-42", "preview-limits")
        .unwrap();
    assert_eq!(limits["spec"]["limits"][0]["default"]["memory"], "512Mi");
    let policy = cluster
        .object(
            "networking.k8s.io",
            "networkpolicies",
            "pr-cart-42",
            "preview-ingress",
        )
        .unwrap();
    assert_eq!(policy["spec"]["policyTypes"][0], "Ingress");
    assert_eq!(policy["spec"]["podSelector"], serde_json::json!({}));
    let from = &policy["spec"]["ingress"][0]["from"];
    assert_eq!(from[0], serde_json::json!({"podSelector": {}}));
    assert_eq!(
        from[1]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"],
        "ingress-nginx"
    );
    let ingress = cluster
        .object("networking.k8s.io", "ingresses", "pr-cart-42", "preview")
        .unwrap();
    assert_eq!(
        ingress["spec"]["rules"][0]["host"],
        "pr-cart-42.preview.example.com"
    );
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"],
        "web"
    );

    // Ensure again: the expiry moves out, the objects stay.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = provider.ensure(&spec(42)).await.unwrap();
    assert!(
        again.expires_at.unwrap() > expires,
        "activity extends the expiry"
    );
    let listed = provider.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].labels[labels::PREVIEW_ID], "acme/cart#42");
    assert_eq!(listed[0].expires_at, again.expires_at);
    assert_eq!(listed[0].url, env.url);
}

#[tokio::test]
async fn a_foreign_namespace_is_neither_adopted_nor_deleted() {
    let cluster = common::cluster().await;
    let provider = common::provider(&cluster);
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    let mut foreign = Namespace::default();
    foreign.metadata.name = Some("pr-cart-7".into());
    // Even with our label copied onto it, the missing annotation keeps it foreign.
    foreign.metadata.labels = Some(
        [
            (
                labels::MANAGED_BY.to_string(),
                labels::MANAGED_BY_VALUE.to_string(),
            ),
            (labels::PREVIEW.to_string(), "true".to_string()),
        ]
        .into(),
    );
    namespaces
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    let before = cluster.object("", "namespaces", "", "pr-cart-7").unwrap();

    let err = provider.ensure(&spec(7)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err:?}");
    assert!(
        err.to_string().contains("not created by idp-preview"),
        "{err}"
    );
    assert!(!provider.destroy(&common::env_name(7)).await.unwrap());
    assert!(
        provider.list().await.unwrap().is_empty(),
        "list skips foreign namespaces"
    );
    let after = cluster.object("", "namespaces", "", "pr-cart-7").unwrap();
    assert_eq!(before, after, "the foreign namespace is untouched");
    assert!(
        cluster
            .objects("", "resourcequotas", Some("pr-cart-7"))
            .is_empty()
    );
}

#[tokio::test]
async fn two_pull_requests_on_one_name_conflict() {
    let cluster = common::cluster().await;
    let provider = common::provider(&cluster);
    provider.ensure(&spec(5)).await.unwrap();
    let mut other = spec(5);
    other
        .labels
        .insert(labels::PREVIEW_ID.into(), "acme/other#5".into());
    assert_eq!(
        provider.ensure(&other).await.unwrap_err().kind(),
        ErrorKind::Conflict
    );
}

#[tokio::test]
async fn destroy_waits_until_gone_and_times_out_clearly() {
    let cluster = common::cluster().await;
    let provider = common::provider(&cluster);
    provider.ensure(&spec(1)).await.unwrap();
    assert!(provider.destroy(&common::env_name(1)).await.unwrap());
    assert!(cluster.object("", "namespaces", "", "pr-cart-1").is_none());
    assert!(
        common::leftovers(&cluster).is_empty(),
        "{:?}",
        common::leftovers(&cluster)
    );

    // An object whose finalizer nobody removes keeps the namespace Terminating: a
    // Timeout naming the namespace.
    let short = NamespaceProvider::new(
        Cluster::new(cluster.client()),
        NamespaceConfig::bare().with_destroy_timeout(Duration::from_millis(300)),
    );
    short.ensure(&spec(2)).await.unwrap();
    let configmaps: Api<ConfigMap> = Api::namespaced(cluster.client(), "pr-cart-2");
    let mut held = ConfigMap::default();
    held.metadata.name = Some("held".into());
    held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
    configmaps
        .create(&PostParams::default(), &held)
        .await
        .unwrap();
    let err = short.destroy(&common::env_name(2)).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err:?}");
    assert!(err.to_string().contains("pr-cart-2"), "{err}");
}

#[tokio::test]
async fn list_selects_by_label_only() {
    let cluster = common::cluster().await;
    let provider = common::provider(&cluster);
    provider.ensure(&spec(3)).await.unwrap();
    cluster.reset_counters();
    let listed = provider.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    let requests: Vec<_> = cluster.requests().iter().cloned().collect();
    assert_eq!(requests.len(), 1, "one request: {requests:?}");
    assert_eq!(requests[0].resource, "namespaces");
    assert!(
        requests[0].query.contains("labelSelector="),
        "{:?}",
        requests[0]
    );
}
