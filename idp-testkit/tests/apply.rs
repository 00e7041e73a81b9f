//! Server-side apply: ownership, conflicts, force, no-op applies, removal of dropped fields.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{api_err, cluster};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

fn deployment(replicas: i64, labels: &Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "labels": labels},
        "spec": {"replicas": replicas,
                 "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx:1.27"}]}}}
    })
}

fn spec_only(replicas: i64) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
           "spec": {"replicas": replicas}})
}

#[tokio::test]
async fn apply_creates_and_records_managed_fields() {
    let c = cluster().await;
    let api: Api<Deployment> = Api::namespaced(c.client(), "default");
    let d = api
        .patch(
            "web",
            &PatchParams::apply("alice"),
            &Patch::Apply(deployment(2, &json!({"a": "1"}))),
        )
        .await
        .unwrap();
    let mf = d.metadata.managed_fields.unwrap();
    assert_eq!(mf.len(), 1);
    assert_eq!(mf[0].manager.as_deref(), Some("alice"));
    assert_eq!(mf[0].operation.as_deref(), Some("Apply"));
    let fields = serde_json::to_value(mf[0].fields_v1.as_ref().unwrap()).unwrap();
    assert!(fields.pointer("/f:spec/f:replicas").is_some(), "{fields}");
    assert!(
        fields
            .pointer("/f:spec/f:template/f:spec/f:containers/k:{\"name\":\"web\"}/f:image")
            .is_some(),
        "{fields}"
    );
}

#[tokio::test]
async fn conflicting_apply_is_409_until_forced() {
    let c = cluster().await;
    let api: Api<Deployment> = Api::namespaced(c.client(), "default");
    api.patch(
        "web",
        &PatchParams::apply("alice"),
        &Patch::Apply(deployment(2, &json!({}))),
    )
    .await
    .unwrap();
    let err = api_err(
        api.patch(
            "web",
            &PatchParams::apply("bob"),
            &Patch::Apply(spec_only(5)),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert_eq!(
        err.message,
        "Apply failed with 1 conflict: conflict with \"alice\": .spec.replicas"
    );
    let forced = api
        .patch(
            "web",
            &PatchParams::apply("bob").force(),
            &Patch::Apply(spec_only(5)),
        )
        .await
        .unwrap();
    assert_eq!(forced.spec.replicas, Some(5));
    // Alice no longer owns replicas: her next apply without replicas does not remove it.
    let mut without = deployment(2, &json!({}));
    without["spec"].as_object_mut().unwrap().remove("replicas");
    let after = api
        .patch("web", &PatchParams::apply("alice"), &Patch::Apply(without))
        .await
        .unwrap();
    assert_eq!(after.spec.replicas, Some(5));
}

#[tokio::test]
async fn same_value_is_shared_and_update_managers_conflict_too() {
    let c = cluster().await;
    let api: Api<Deployment> = Api::namespaced(c.client(), "default");
    api.patch(
        "web",
        &PatchParams::apply("alice"),
        &Patch::Apply(deployment(2, &json!({}))),
    )
    .await
    .unwrap();
    // Same value: no conflict, shared ownership.
    api.patch(
        "web",
        &PatchParams::apply("bob"),
        &Patch::Apply(spec_only(2)),
    )
    .await
    .unwrap();
    // A merge patch by another manager takes replicas over (operation Update).
    let pp = PatchParams {
        field_manager: Some("scaler".into()),
        ..PatchParams::default()
    };
    api.patch("web", &pp, &Patch::Merge(json!({"spec": {"replicas": 7}})))
        .await
        .unwrap();
    let err = api_err(
        api.patch(
            "web",
            &PatchParams::apply("alice"),
            &Patch::Apply(deployment(2, &json!({}))),
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(err.code, 409);
    assert!(
        err.message
            .contains("conflict with \"scaler\" using apps/v1: .spec.replicas"),
        "{}",
        err.message
    );
}

#[tokio::test]
async fn identical_apply_is_a_no_op() {
    // No simulator: its status writes would move the resourceVersion on their own.
    let c = idp_testkit::FakeCluster::builder()
        .rollout_simulation(false)
        .start()
        .await
        .unwrap();
    let api: Api<Deployment> = Api::namespaced(c.client(), "default");
    let pp = PatchParams::apply("alice");
    let first = api
        .patch("web", &pp, &Patch::Apply(deployment(2, &json!({"a": "1"}))))
        .await
        .unwrap();
    let second = api
        .patch("web", &pp, &Patch::Apply(deployment(2, &json!({"a": "1"}))))
        .await
        .unwrap();
    assert_eq!(
        first.metadata.resource_version,
        second.metadata.resource_version
    );
    assert_eq!(second.metadata.generation, Some(1));
}

#[tokio::test]
async fn fields_dropped_from_the_config_are_removed() {
    let c = cluster().await;
    let api: Api<Deployment> = Api::namespaced(c.client(), "default");
    let pp = PatchParams::apply("alice");
    api.patch(
        "web",
        &pp,
        &Patch::Apply(deployment(2, &json!({"a": "1", "b": "2"}))),
    )
    .await
    .unwrap();
    let d = api
        .patch("web", &pp, &Patch::Apply(deployment(2, &json!({"a": "1"}))))
        .await
        .unwrap();
    let labels = d.metadata.labels.unwrap();
    assert!(labels.contains_key("a"));
    assert!(!labels.contains_key("b"));
}

#[tokio::test]
async fn apply_requires_a_field_manager() {
    let c = cluster().await;
    let req = http::Request::patch(format!(
        "{}/apis/apps/v1/namespaces/default/deployments/web",
        c.url()
    ))
    .header("content-type", "application/apply-patch+yaml")
    .body(b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n".to_vec())
    .unwrap();
    let err = c.client().request::<Value>(req).await.unwrap_err();
    assert_eq!(api_err(err).code, 422);
    // YAML bodies work when a manager is given.
    let req = http::Request::patch(format!(
        "{}/apis/apps/v1/namespaces/default/deployments/web?fieldManager=yaml",
        c.url()
    ))
    .header("content-type", "application/apply-patch+yaml")
    .body(
        b"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n"
            .to_vec(),
    )
    .unwrap();
    let out: Value = c.client().request(req).await.unwrap();
    assert_eq!(out["spec"]["replicas"], 3);
}

#[tokio::test]
async fn apply_to_the_status_subresource_owns_only_status() {
    let c = idp_testkit::FakeCluster::builder()
        .rollout_simulation(false)
        .start()
        .await
        .unwrap();
    let api: Api<Deployment> = Api::namespaced(c.client(), "default");
    api.patch(
        "web",
        &PatchParams::apply("alice"),
        &Patch::Apply(deployment(2, &json!({}))),
    )
    .await
    .unwrap();
    let status = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                        "status": {"replicas": 2, "readyReplicas": 1}});
    let d = api
        .patch_status(
            "web",
            &PatchParams::apply("my-controller"),
            &Patch::Apply(status),
        )
        .await
        .unwrap();
    assert_eq!(d.status.unwrap().ready_replicas, Some(1));
    assert_eq!(d.spec.replicas, Some(2));
    let mf = d.metadata.managed_fields.unwrap();
    let ctl = mf
        .iter()
        .find(|m| m.manager.as_deref() == Some("my-controller"))
        .unwrap();
    assert_eq!(ctl.subresource.as_deref(), Some("status"));
    let fields = serde_json::to_value(ctl.fields_v1.as_ref().unwrap()).unwrap();
    assert!(
        fields.get("f:spec").is_none() && fields.get("f:status").is_some(),
        "{fields}"
    );
}
