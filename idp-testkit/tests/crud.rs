//! Every verb through the real `kube::Client`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{api_err, cluster, cm_resource, configmap, create_namespace};
use idp_testkit::Verb;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

#[tokio::test]
async fn create_get_list_delete_dynamic() {
    let c = cluster().await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &cm_resource());
    let created = api
        .create(&PostParams::default(), &configmap("a", &[]))
        .await
        .unwrap();
    assert!(created.metadata.uid.is_some());
    assert!(created.metadata.creation_timestamp.is_some());
    assert_eq!(created.metadata.generation, Some(1));
    let got = api.get("a").await.unwrap();
    assert_eq!(got.data["data"]["key"], "value");
    assert_eq!(
        got.metadata.resource_version,
        created.metadata.resource_version
    );
    let list = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let err = api_err(api.get("a").await.unwrap_err());
    assert_eq!(err.code, 404);
    assert_eq!(err.reason, "NotFound");
    assert_eq!(err.message, "configmaps \"a\" not found");
}

#[tokio::test]
async fn create_twice_is_already_exists() {
    let c = cluster().await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &cm_resource());
    api.create(&PostParams::default(), &configmap("a", &[]))
        .await
        .unwrap();
    let err = api_err(
        api.create(&PostParams::default(), &configmap("a", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "AlreadyExists"));
}

#[tokio::test]
async fn generate_name_and_validation() {
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), "default");
    let mut cm = ConfigMap::default();
    cm.metadata.generate_name = Some("gen-".into());
    let created = api.create(&PostParams::default(), &cm).await.unwrap();
    let name = created.metadata.name.unwrap();
    assert!(name.starts_with("gen-") && name.len() == 9, "{name}");

    let err = api_err(
        api.create(&PostParams::default(), &ConfigMap::default())
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (422, "Invalid"));
    let mut bad = ConfigMap::default();
    bad.metadata.name = Some("Bad_Name".into());
    let err = api_err(api.create(&PostParams::default(), &bad).await.unwrap_err());
    assert_eq!(err.code, 422);
    assert!(err.message.contains("metadata.name"), "{}", err.message);
}

#[tokio::test]
async fn missing_namespace_is_not_found() {
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), "nope");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("a".into());
    let err = api_err(api.create(&PostParams::default(), &cm).await.unwrap_err());
    assert_eq!(err.code, 404);
    assert_eq!(err.message, "namespaces \"nope\" not found");
}

#[tokio::test]
async fn default_namespaces_exist() {
    let c = cluster().await;
    let api: Api<Namespace> = Api::all(c.client());
    let names: Vec<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .collect();
    for ns in ["default", "kube-system", "kube-public"] {
        assert!(names.contains(&ns.to_owned()), "{names:?}");
    }
}

#[tokio::test]
async fn update_with_stale_resource_version_conflicts() {
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), "default");
    let mut cm = ConfigMap::default();
    cm.metadata.name = Some("a".into());
    let v1 = api.create(&PostParams::default(), &cm).await.unwrap();
    let mut change = v1.clone();
    change.data = Some([("k".to_owned(), "1".to_owned())].into());
    let v2 = api
        .replace("a", &PostParams::default(), &change)
        .await
        .unwrap();
    assert_ne!(v1.metadata.resource_version, v2.metadata.resource_version);
    let err = api_err(
        api.replace("a", &PostParams::default(), &change)
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (409, "Conflict"));
    assert!(
        err.message.contains("the object has been modified"),
        "{}",
        err.message
    );
    // An identical update is a no-op: the resourceVersion does not move.
    let v3 = api.replace("a", &PostParams::default(), &v2).await.unwrap();
    assert_eq!(v3.metadata.resource_version, v2.metadata.resource_version);
}

#[tokio::test]
async fn merge_json_and_strategic_patches() {
    let c = cluster().await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &cm_resource());
    api.create(&PostParams::default(), &configmap("a", &[("app", "x")]))
        .await
        .unwrap();
    let p = api
        .patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"extra": "1", "key": null}})),
        )
        .await
        .unwrap();
    assert_eq!(p.data["data"], json!({"extra": "1"}));

    let ops: json_patch_ops::Ops = json_patch_ops::ops(json!([
        {"op": "add", "path": "/data/more", "value": "2"},
        {"op": "remove", "path": "/data/extra"}
    ]));
    let req = http::Request::patch(format!(
        "{}/api/v1/namespaces/default/configmaps/a",
        c.url()
    ))
    .header("content-type", "application/json-patch+json")
    .body(serde_json::to_vec(&ops.0).unwrap())
    .unwrap();
    let out: serde_json::Value = c.client().request(req).await.unwrap();
    assert_eq!(out["data"], json!({"more": "2"}));

    let deploys: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(c.client(), "default");
    let d: k8s_openapi::api::apps::v1::Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [
                                  {"name": "app", "image": "a:1", "env": [{"name": "A", "value": "1"}]},
                                  {"name": "side", "image": "s:1"}]}}}
    }))
    .unwrap();
    deploys.create(&PostParams::default(), &d).await.unwrap();
    let patched = deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "app", "image": "a:2", "env": [{"name": "B", "value": "2"}]}]}}}})),
        )
        .await
        .unwrap();
    let containers = patched.spec.template.spec.unwrap().containers;
    assert_eq!(containers.len(), 2);
    assert_eq!(containers[0].image.as_deref(), Some("a:2"));
    assert_eq!(containers[0].env.as_ref().unwrap().len(), 2);
    assert_eq!(patched.metadata.generation, Some(2));
}

mod json_patch_ops {
    pub struct Ops(pub serde_json::Value);
    pub fn ops(v: serde_json::Value) -> Ops {
        Ops(v)
    }
}

#[tokio::test]
async fn request_log_counts_verbs() {
    let c = cluster().await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &cm_resource());
    api.create(&PostParams::default(), &configmap("a", &[]))
        .await
        .unwrap();
    api.get("a").await.unwrap();
    api.list(&ListParams::default()).await.unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "y"}})),
    )
    .await
    .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let r = c.requests();
    assert_eq!(r.writes(), 3);
    assert_eq!(r.count_verb(Verb::Get), 1);
    assert_eq!(r.count_verb(Verb::List), 1);
    assert_eq!(
        r.count(|r| r.verb == Verb::Delete && r.name.as_deref() == Some("a")),
        1
    );
    assert!(
        r.iter()
            .all(|r| r.resource == "configmaps" && r.status < 300)
    );
    c.reset_counters();
    assert!(c.requests().is_empty());
    let _ = api.get("zzz").await;
    assert_eq!(c.requests().iter().next().unwrap().status, 404);
}

#[tokio::test]
async fn delete_collection_with_selector() {
    let c = cluster().await;
    create_namespace(&c.client(), "dc").await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "dc", &cm_resource());
    for (n, app) in [("a", "x"), ("b", "x"), ("c", "y")] {
        api.create(&PostParams::default(), &configmap(n, &[("app", app)]))
            .await
            .unwrap();
    }
    api.delete_collection(
        &DeleteParams::default(),
        &ListParams::default().labels("app=x"),
    )
    .await
    .unwrap();
    let left = api.list(&ListParams::default()).await.unwrap();
    assert_eq!(left.items.len(), 1);
    assert_eq!(left.items[0].metadata.name.as_deref(), Some("c"));
    assert_eq!(c.requests().count_verb(Verb::DeleteCollection), 1);
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let c = cluster().await;
    let client = c.client();
    let api: Api<ConfigMap> = Api::namespaced(client, "default");
    api.list(&ListParams::default()).await.unwrap();
    drop(c);
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    assert!(api.list(&ListParams::default()).await.is_err());
}

#[tokio::test]
async fn dry_run_writes_change_nothing() {
    let c = cluster().await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &cm_resource());
    let rv = c.resource_version();
    let pp = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let preview = api.create(&pp, &configmap("a", &[])).await.unwrap();
    assert_eq!(preview.metadata.name.as_deref(), Some("a"));
    assert!(api.get_opt("a").await.unwrap().is_none());
    let applied = api
        .patch(
            "b",
            &PatchParams::apply("t").dry_run(),
            &Patch::Apply(configmap("b", &[])),
        )
        .await
        .unwrap();
    assert_eq!(applied.metadata.name.as_deref(), Some("b"));
    assert!(api.get_opt("b").await.unwrap().is_none());
    assert_eq!(c.resource_version(), rv);
}
