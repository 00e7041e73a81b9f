//! The rollout simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{cluster, eventually};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, Patch, PatchParams};
use serde_json::{Value, json};

fn pod_template(image: &str) -> Value {
    json!({"metadata": {"labels": {"app": "x"}},
           "spec": {"containers": [{"name": "x", "image": image}], "restartPolicy": "Never"}})
}

fn workload(kind: &str, image: &str) -> Value {
    json!({"apiVersion": if kind == "Job" { "batch/v1" } else { "apps/v1" }, "kind": kind,
           "metadata": {"name": "x"},
           "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "x"}}, "template": pod_template(image)}})
}

fn condition<'a>(conds: &'a [Value], kind: &str) -> &'a Value {
    conds.iter().find(|c| c["type"] == kind).unwrap()
}

#[tokio::test]
async fn deployment_rolls_out_and_broken_images_stall() {
    let c = cluster().await;
    let api: Api<Deployment> = Api::namespaced(c.client(), "default");
    let pp = PatchParams::apply("test");
    api.patch("x", &pp, &Patch::Apply(workload("Deployment", "nginx:1")))
        .await
        .unwrap();
    assert!(
        eventually(|| async {
            api.get("x")
                .await
                .unwrap()
                .status
                .is_some_and(|s| s.ready_replicas == Some(3))
        })
        .await
    );
    let status = serde_json::to_value(api.get("x").await.unwrap().status).unwrap();
    assert_eq!(status["observedGeneration"], 1);
    assert_eq!(status["availableReplicas"], 3);
    let conds = status["conditions"].as_array().unwrap();
    assert_eq!(condition(conds, "Available")["status"], "True");
    assert_eq!(
        condition(conds, "Progressing")["reason"],
        "NewReplicaSetAvailable"
    );

    api.patch(
        "x",
        &pp,
        &Patch::Apply(workload("Deployment", "nginx:broken")),
    )
    .await
    .unwrap();
    assert!(
        eventually(|| async {
            api.get("x")
                .await
                .unwrap()
                .status
                .is_some_and(|s| s.observed_generation == Some(2))
        })
        .await
    );
    let status = serde_json::to_value(api.get("x").await.unwrap().status).unwrap();
    let conds = status["conditions"].as_array().unwrap();
    assert_eq!(condition(conds, "Progressing")["status"], "False");
    assert_eq!(
        condition(conds, "Progressing")["reason"],
        "ProgressDeadlineExceeded"
    );
    assert!(status.get("readyReplicas").is_none());
}

#[tokio::test]
async fn statefulset_daemonset_and_job() {
    let c = cluster().await;
    let pp = PatchParams::apply("test");
    let sts: Api<StatefulSet> = Api::namespaced(c.client(), "default");
    sts.patch("x", &pp, &Patch::Apply(workload("StatefulSet", "db:1")))
        .await
        .unwrap();
    let ds: Api<DaemonSet> = Api::namespaced(c.client(), "default");
    let mut d = workload("DaemonSet", "agent:1");
    d["spec"].as_object_mut().unwrap().remove("replicas");
    ds.patch("x", &pp, &Patch::Apply(d)).await.unwrap();
    let jobs: Api<Job> = Api::namespaced(c.client(), "default");
    let mut j = workload("Job", "task:1");
    j["spec"].as_object_mut().unwrap().remove("replicas");
    j["spec"].as_object_mut().unwrap().remove("selector");
    jobs.patch("x", &pp, &Patch::Apply(j.clone()))
        .await
        .unwrap();
    j["metadata"]["name"] = json!("bad");
    j["spec"]["template"] = pod_template("task:broken");
    jobs.patch("bad", &pp, &Patch::Apply(j)).await.unwrap();

    assert!(
        eventually(|| async {
            sts.get("x")
                .await
                .unwrap()
                .status
                .is_some_and(|s| s.ready_replicas == Some(3))
        })
        .await
    );
    assert!(
        eventually(|| async {
            ds.get("x")
                .await
                .unwrap()
                .status
                .is_some_and(|s| s.number_ready == 1)
        })
        .await
    );
    assert!(
        eventually(|| async {
            jobs.get("x")
                .await
                .unwrap()
                .status
                .is_some_and(|s| s.succeeded == Some(1))
        })
        .await
    );
    let done = serde_json::to_value(jobs.get("x").await.unwrap().status).unwrap();
    assert_eq!(
        condition(done["conditions"].as_array().unwrap(), "Complete")["status"],
        "True"
    );
    assert!(
        eventually(|| async {
            jobs.get("bad")
                .await
                .unwrap()
                .status
                .is_some_and(|s| s.failed.is_some())
        })
        .await
    );
    let failed = serde_json::to_value(jobs.get("bad").await.unwrap().status).unwrap();
    assert_eq!(
        condition(failed["conditions"].as_array().unwrap(), "Failed")["reason"],
        "BackoffLimitExceeded"
    );
}

#[tokio::test]
async fn simulator_can_be_switched_off() {
    let c = idp_testkit::FakeCluster::builder()
        .rollout_simulation(false)
        .start()
        .await
        .unwrap();
    let api: Api<Deployment> = Api::namespaced(c.client(), "default");
    api.patch(
        "x",
        &PatchParams::apply("t"),
        &Patch::Apply(workload("Deployment", "nginx:1")),
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    assert!(api.get("x").await.unwrap().status.is_none());
}
