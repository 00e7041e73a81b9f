//! Lifecycle: namespaces cascading, finalizers, status subresource, generation, CRDs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{api_err, cluster, cm_resource, configmap, create_namespace, eventually};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::discovery::ApiResource;
use serde_json::json;

#[tokio::test]
async fn deleting_a_namespace_terminates_then_removes_contents() {
    let c = cluster().await;
    create_namespace(&c.client(), "doomed").await;
    let cms: Api<DynamicObject> = Api::namespaced_with(c.client(), "doomed", &cm_resource());
    cms.create(&PostParams::default(), &configmap("a", &[]))
        .await
        .unwrap();
    let nss: Api<Namespace> = Api::all(c.client());
    let deleted = nss
        .delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    let ns = deleted.left().unwrap();
    assert_eq!(ns.status.unwrap().phase.as_deref(), Some("Terminating"));
    // New content is refused while terminating (if we are quick enough to see it).
    if let Err(e) = cms
        .create(&PostParams::default(), &configmap("b", &[]))
        .await
    {
        let e = api_err(e);
        assert!(e.code == 403 || e.code == 404, "{e:?}");
    }
    assert!(eventually(|| async { nss.get_opt("doomed").await.unwrap().is_none() }).await);
    let cms_all: Api<ConfigMap> = Api::all(c.client());
    let left = cms_all.list(&ListParams::default()).await.unwrap();
    assert!(
        left.items
            .iter()
            .all(|cm| cm.metadata.namespace.as_deref() != Some("doomed"))
    );
}

#[tokio::test]
async fn finalizers_hold_deletion_until_removed() {
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), "default");
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "held", "finalizers": ["example.com/hold"]}
    }))
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();
    api.delete("held", &DeleteParams::default()).await.unwrap();
    let still = api.get("held").await.unwrap();
    assert!(still.metadata.deletion_timestamp.is_some());
    api.patch(
        "held",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    assert!(api.get_opt("held").await.unwrap().is_none());
}

#[tokio::test]
async fn status_subresource_separates_spec_and_status_writes() {
    let c = idp_testkit::FakeCluster::builder()
        .rollout_simulation(false)
        .start()
        .await
        .unwrap();
    let api: Api<Deployment> = Api::namespaced(c.client(), "default");
    let deploy: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}},
        "status": {"replicas": 99}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &deploy).await.unwrap();
    assert!(created.status.is_none(), "status is dropped on create");
    // A main-resource write cannot change status.
    let main_write = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"replicas": 5}})),
        )
        .await
        .unwrap();
    assert!(main_write.status.is_none());
    // A status write changes only status (and not generation).
    let status_write = api
        .patch_status(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 42}, "status": {"replicas": 3}})),
        )
        .await
        .unwrap();
    assert_eq!(status_write.status.unwrap().replicas, Some(3));
    assert_eq!(status_write.spec.replicas, Some(1));
    assert_eq!(status_write.metadata.generation, Some(1));
    let got = api.get_status("web").await.unwrap();
    assert_eq!(got.status.unwrap().replicas, Some(3));
    // Spec changes bump generation.
    let spec_write = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 2}})),
        )
        .await
        .unwrap();
    assert_eq!(spec_write.metadata.generation, Some(2));
    let label_write = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {"x": "y"}}})),
        )
        .await
        .unwrap();
    assert_eq!(label_write.metadata.generation, Some(2));
}

#[tokio::test]
async fn crd_makes_a_custom_resource_servable() {
    let c = cluster().await;
    let crds: Api<DynamicObject> = Api::all_with(
        c.client(),
        &ApiResource {
            group: "apiextensions.k8s.io".into(),
            version: "v1".into(),
            api_version: "apiextensions.k8s.io/v1".into(),
            kind: "CustomResourceDefinition".into(),
            plural: "customresourcedefinitions".into(),
        },
    );
    let crd: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "shortNames": ["wd"]},
                 "versions": [{"name": "v1", "served": true, "storage": true,
                               "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}},
                               "subresources": {"status": {}}}]}
    }))
    .unwrap();
    let created = crds.create(&PostParams::default(), &crd).await.unwrap();
    let conditions = created.data["status"]["conditions"].as_array().unwrap();
    assert!(
        conditions
            .iter()
            .any(|c| c["type"] == "Established" && c["status"] == "True")
    );

    // Discovery through kube finds it.
    let discovery = kube::Discovery::new(c.client()).run().await.unwrap();
    let (ar, caps) = discovery
        .groups()
        .flat_map(kube::discovery::ApiGroup::recommended_resources)
        .find(|(ar, _)| ar.kind == "Widget")
        .expect("Widget discovered");
    assert_eq!(caps.scope, kube::discovery::Scope::Namespaced);

    let widgets: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &ar);
    let w: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 3}
    }))
    .unwrap();
    widgets.create(&PostParams::default(), &w).await.unwrap();
    let got = widgets.get("w1").await.unwrap();
    assert_eq!(got.data["spec"]["size"], 3);
    widgets
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": true}})),
        )
        .await
        .unwrap();
    assert_eq!(
        widgets.get("w1").await.unwrap().data["status"]["ready"],
        true
    );
    assert_eq!(
        widgets
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // Deleting the CRD removes the resource and its objects.
    crds.delete("widgets.example.com", &DeleteParams::default())
        .await
        .unwrap();
    assert_eq!(api_err(widgets.get("w1").await.unwrap_err()).code, 404);
}

#[tokio::test]
async fn owner_references_cascade_on_delete() {
    let c = cluster().await;
    let api: Api<ConfigMap> = Api::namespaced(c.client(), "default");
    let owner = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let dep: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "dep", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid.unwrap()}
    ]}}))
    .unwrap();
    api.create(&PostParams::default(), &dep).await.unwrap();
    api.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    assert!(api.get_opt("dep").await.unwrap().is_none());
}

#[tokio::test]
async fn scale_subresource_changes_replicas() {
    let c = cluster().await;
    let api: Api<Deployment> = Api::namespaced(c.client(), "default");
    let d: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &d).await.unwrap();
    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.unwrap().replicas, Some(1));
    assert_eq!(scale.status.unwrap().selector.as_deref(), Some("app=web"));
    api.patch_scale(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": 4}})),
    )
    .await
    .unwrap();
    let after = api.get("web").await.unwrap();
    assert_eq!(after.spec.replicas, Some(4));
    assert_eq!(after.metadata.generation, Some(2));
}
