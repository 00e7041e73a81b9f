//! Table-driven tests of the health rules: each case is a live object, the status we
//! expect and a fragment of the message.
#![allow(clippy::needless_pass_by_value, clippy::unwrap_used)]

use serde_json::{Value, json};

use super::*;

struct Case {
    name: &'static str,
    object: Value,
    status: HealthStatus,
    message: &'static str,
}

fn case(name: &'static str, object: Value, status: HealthStatus, message: &'static str) -> Case {
    Case {
        name,
        object,
        status,
        message,
    }
}

fn run(cases: Vec<Case>) {
    let mut failures = Vec::new();
    for c in cases {
        let object = Object::from_value(c.object).unwrap();
        match assess(&object) {
            Some(h) if h.status == c.status && h.message.contains(c.message) => {}
            other => failures.push(format!(
                "{}: expected {:?} containing {:?}, got {other:?}",
                c.name, c.status, c.message
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn deploy(spec: Value, status: Value, generation: i64) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "generation": generation},
        "spec": spec, "status": status,
    })
}

#[test]
fn deployment_rules() {
    use HealthStatus::*;
    let done = json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3, "readyReplicas": 3});
    run(vec![
        case(
            "healthy",
            deploy(json!({"replicas": 3}), done.clone(), 2),
            Healthy,
            "",
        ),
        case(
            "paused wins",
            deploy(json!({"replicas": 3, "paused": true}), done.clone(), 2),
            Suspended,
            "paused",
        ),
        case(
            "generation not observed",
            deploy(json!({"replicas": 3}), done.clone(), 3),
            Progressing,
            "observed deployment generation less than desired generation",
        ),
        case(
            "deadline exceeded",
            deploy(
                json!({"replicas": 3}),
                json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1,
                "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
                2,
            ),
            Degraded,
            "exceeded its progress deadline",
        ),
        case(
            "new replicas not updated",
            deploy(
                json!({"replicas": 3}),
                json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 1, "availableReplicas": 3}),
                2,
            ),
            Progressing,
            "1 out of 3 new replicas have been updated",
        ),
        case(
            "old replicas pending termination",
            deploy(
                json!({"replicas": 3}),
                json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 3, "availableReplicas": 3}),
                2,
            ),
            Progressing,
            "1 old replicas are pending termination",
        ),
        case(
            "updated not available",
            deploy(
                json!({"replicas": 3}),
                json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 2}),
                2,
            ),
            Progressing,
            "2 of 3 updated replicas are available",
        ),
        case(
            "progressing condition without deadline is fine",
            deploy(
                json!({"replicas": 1}),
                json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1,
                "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}]}),
                1,
            ),
            Healthy,
            "",
        ),
        case(
            "scaled to zero",
            deploy(json!({"replicas": 0}), json!({"observedGeneration": 1}), 1),
            Healthy,
            "",
        ),
        case(
            "being deleted",
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "deletionTimestamp": "2026-01-01T00:00:00Z"}}),
            Progressing,
            "Pending deletion",
        ),
    ]);
}

fn sts(spec: Value, status: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "generation": 1}, "spec": spec, "status": status})
}

#[test]
fn stateful_set_rules() {
    use HealthStatus::*;
    run(vec![
        case(
            "not observed",
            sts(json!({"replicas": 2}), json!({})),
            Progressing,
            "spec update to be observed",
        ),
        case(
            "pods not ready",
            sts(
                json!({"replicas": 3}),
                json!({"observedGeneration": 1, "readyReplicas": 1}),
            ),
            Progressing,
            "Waiting for 2 pods to be ready",
        ),
        case(
            "partition pending",
            sts(
                json!({"replicas": 4, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
                json!({"observedGeneration": 1, "readyReplicas": 4, "updatedReplicas": 1}),
            ),
            Progressing,
            "1 out of 2 new pods have been updated",
        ),
        case(
            "partition done",
            sts(
                json!({"replicas": 4, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
                json!({"observedGeneration": 1, "readyReplicas": 4, "updatedReplicas": 2}),
            ),
            Healthy,
            "partitioned roll out complete: 2 new pods",
        ),
        case(
            "on delete",
            sts(
                json!({"replicas": 2, "updateStrategy": {"type": "OnDelete"}}),
                json!({"observedGeneration": 1, "readyReplicas": 2, "updateRevision": "b", "currentRevision": "a"}),
            ),
            Healthy,
            "statefulset has 2 ready pods",
        ),
        case(
            "revision rolling",
            sts(
                json!({"replicas": 2, "updateStrategy": {"type": "RollingUpdate"}}),
                json!({"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 1, "updateRevision": "db-2", "currentRevision": "db-1"}),
            ),
            Progressing,
            "1 pods at revision db-2",
        ),
        case(
            "revision complete",
            sts(
                json!({"replicas": 2}),
                json!({"observedGeneration": 1, "readyReplicas": 2, "currentReplicas": 2, "updateRevision": "db-2", "currentRevision": "db-2"}),
            ),
            Healthy,
            "rolling update complete 2 pods at revision db-2",
        ),
    ]);
}

fn ds(spec: Value, status: Value) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "generation": 2}, "spec": spec, "status": status})
}

#[test]
fn daemon_set_rules() {
    use HealthStatus::*;
    run(vec![
        case(
            "not observed",
            ds(json!({}), json!({"observedGeneration": 1})),
            Progressing,
            "observed daemon set generation",
        ),
        case(
            "on delete",
            ds(
                json!({"updateStrategy": {"type": "OnDelete"}}),
                json!({"observedGeneration": 2, "desiredNumberScheduled": 3, "updatedNumberScheduled": 1}),
            ),
            Healthy,
            "1 out of 3 new pods have been updated",
        ),
        case(
            "updating",
            ds(
                json!({}),
                json!({"observedGeneration": 2, "desiredNumberScheduled": 3, "updatedNumberScheduled": 2, "numberAvailable": 3}),
            ),
            Progressing,
            "2 out of 3 new pods have been updated",
        ),
        case(
            "not available",
            ds(
                json!({}),
                json!({"observedGeneration": 2, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 1}),
            ),
            Progressing,
            "1 of 3 updated pods are available",
        ),
        case(
            "done",
            ds(
                json!({}),
                json!({"observedGeneration": 2, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3}),
            ),
            Healthy,
            "",
        ),
    ]);
}

#[test]
fn replica_set_rules() {
    use HealthStatus::*;
    let rs = |status: Value| {
        json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "r", "generation": 1},
            "spec": {"replicas": 2}, "status": status})
    };
    run(vec![
        case(
            "not observed",
            rs(json!({})),
            Progressing,
            "observed replica set generation",
        ),
        case(
            "failure",
            rs(
                json!({"observedGeneration": 1, "conditions": [{"type": "ReplicaFailure", "status": "True", "message": "quota exceeded"}]}),
            ),
            Degraded,
            "quota exceeded",
        ),
        case(
            "waiting",
            rs(json!({"observedGeneration": 1, "availableReplicas": 1})),
            Progressing,
            "1 out of 2 new replicas are available",
        ),
        case(
            "done",
            rs(json!({"observedGeneration": 1, "availableReplicas": 2})),
            Healthy,
            "",
        ),
    ]);
}

fn job_with(spec: Value, conditions: Value) -> Value {
    json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
        "spec": spec, "status": {"conditions": conditions}})
}

#[test]
fn job_rules() {
    use HealthStatus::*;
    run(vec![
        case("running", job_with(json!({}), json!([])), Progressing, ""),
        case(
            "failed",
            job_with(
                json!({}),
                json!([{"type": "Failed", "status": "True", "message": "Job has reached the specified backoff limit"}]),
            ),
            Degraded,
            "backoff limit",
        ),
        case(
            "complete",
            job_with(
                json!({}),
                json!([{"type": "Complete", "status": "True", "message": "done"}]),
            ),
            Healthy,
            "done",
        ),
        case(
            "suspended",
            job_with(
                json!({"suspend": true}),
                json!([{"type": "Suspended", "status": "True", "message": "Job suspended"}]),
            ),
            Suspended,
            "Job suspended",
        ),
        case(
            "suspend requested",
            job_with(json!({"suspend": true}), json!([])),
            Suspended,
            "suspended",
        ),
        case(
            "resumed",
            job_with(
                json!({"suspend": false}),
                json!([{"type": "Suspended", "status": "False", "message": "Job resumed"}]),
            ),
            Progressing,
            "",
        ),
        case(
            "failed beats complete",
            job_with(
                json!({}),
                json!([{"type": "Complete", "status": "True"}, {"type": "Failed", "status": "True", "message": "boom"}]),
            ),
            Degraded,
            "boom",
        ),
    ]);
}

fn pod_with(restart: Option<&str>, status: Value) -> Value {
    let mut spec = json!({"containers": [{"name": "app", "image": "app:1"}]});
    if let Some(r) = restart {
        spec["restartPolicy"] = json!(r);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec, "status": status})
}

#[test]
fn pod_rules() {
    use HealthStatus::*;
    let waiting = |reason: &str, message: &str| {
        json!({"phase": "Pending", "containerStatuses": [{"name": "app", "ready": false,
            "state": {"waiting": {"reason": reason, "message": message}}}]})
    };
    run(vec![
        case(
            "pending",
            pod_with(None, json!({"phase": "Pending", "message": "scheduling"})),
            Progressing,
            "scheduling",
        ),
        case(
            "crash loop",
            pod_with(None, waiting("CrashLoopBackOff", "back-off restarting")),
            Degraded,
            "back-off restarting",
        ),
        case(
            "image pull backoff",
            pod_with(None, waiting("ImagePullBackOff", "")),
            Degraded,
            "ImagePullBackOff",
        ),
        case(
            "err image pull",
            pod_with(Some("Always"), waiting("ErrImagePull", "not found")),
            Degraded,
            "not found",
        ),
        case(
            "config error",
            pod_with(None, waiting("CreateContainerConfigError", "no secret")),
            Degraded,
            "no secret",
        ),
        case(
            "creating is fine",
            pod_with(None, waiting("ContainerCreating", "")),
            Progressing,
            "",
        ),
        case(
            "backoff ignored for hooks",
            pod_with(Some("Never"), waiting("ImagePullBackOff", "x")),
            Progressing,
            "",
        ),
        case(
            "succeeded",
            pod_with(Some("Never"), json!({"phase": "Succeeded"})),
            Healthy,
            "",
        ),
        case(
            "failed with message",
            pod_with(
                None,
                json!({"phase": "Failed", "message": "The node was low on resource: memory."}),
            ),
            Degraded,
            "low on resource",
        ),
        case(
            "failed container exit code",
            pod_with(
                Some("Never"),
                json!({"phase": "Failed", "containerStatuses": [{"name": "app",
                "state": {"terminated": {"exitCode": 3}}}]}),
            ),
            Degraded,
            "container \"app\" failed with exit code 3",
        ),
        case(
            "failed oom",
            pod_with(
                Some("Never"),
                json!({"phase": "Failed", "initContainerStatuses": [{"name": "init",
                "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled"}}}]}),
            ),
            Degraded,
            "OOMKilled",
        ),
        case(
            "running ready",
            pod_with(
                None,
                json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                "containerStatuses": [{"name": "app", "ready": true, "state": {"running": {}}}]}),
            ),
            Healthy,
            "",
        ),
        case(
            "running all containers ready without conditions",
            pod_with(
                None,
                json!({"phase": "Running",
                "containerStatuses": [{"name": "app", "ready": true, "state": {"running": {}}}]}),
            ),
            Healthy,
            "",
        ),
        case(
            "running not ready after a crash",
            pod_with(
                None,
                json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "app", "ready": false, "state": {"running": {}},
                    "lastState": {"terminated": {"exitCode": 1}}}]}),
            ),
            Degraded,
            "",
        ),
        case(
            "running not ready yet",
            pod_with(
                None,
                json!({"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                "containerStatuses": [{"name": "app", "ready": false, "state": {"running": {}}}]}),
            ),
            Progressing,
            "",
        ),
        case(
            "running job pod",
            pod_with(Some("OnFailure"), json!({"phase": "Running"})),
            Progressing,
            "",
        ),
        case(
            "unknown phase",
            pod_with(None, json!({"phase": "Unknown"})),
            Unknown,
            "",
        ),
    ]);
}

#[test]
fn service_and_ingress_rules() {
    use HealthStatus::*;
    let svc = |ty: &str, status: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": {"type": ty}, "status": status});
    let ing = |status: Value| json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"}, "status": status});
    let lb = json!({"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}});
    run(vec![
        case("cluster ip", svc("ClusterIP", json!({})), Healthy, ""),
        case("node port", svc("NodePort", json!({})), Healthy, ""),
        case(
            "lb pending",
            svc("LoadBalancer", json!({"loadBalancer": {}})),
            Progressing,
            "load balancer",
        ),
        case("lb ready", svc("LoadBalancer", lb.clone()), Healthy, ""),
        case(
            "ingress pending",
            ing(json!({"loadBalancer": {"ingress": []}})),
            Progressing,
            "",
        ),
        case("ingress ready", ing(lb), Healthy, ""),
    ]);
}

#[test]
fn pvc_rules() {
    use HealthStatus::*;
    let pvc = |phase: &str| json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "d"}, "status": {"phase": phase}});
    run(vec![
        case("bound", pvc("Bound"), Healthy, ""),
        case("pending", pvc("Pending"), Progressing, ""),
        case("lost", pvc("Lost"), Degraded, "lost"),
        case("other", pvc("Weird"), Unknown, "Weird"),
    ]);
}

#[test]
fn hpa_rules() {
    use HealthStatus::*;
    let v2 = |conditions: Value| {
        json!({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"},
            "status": {"conditions": conditions}})
    };
    let v1 = |conditions: &Value| {
        json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "h", "annotations": {HPA_V1_CONDITIONS_ANNOTATION: conditions.to_string()}}})
    };
    let metric_failure = json!([
        {"type": "AbleToScale", "status": "True", "reason": "SucceededGetScale"},
        {"type": "ScalingActive", "status": "False", "reason": "FailedGetResourceMetric", "message": "missing request for cpu"},
    ]);
    let healthy = json!([
        {"type": "AbleToScale", "status": "True", "reason": "ReadyForNewScale"},
        {"type": "ScalingActive", "status": "True", "reason": "ValidMetricFound"},
        {"type": "ScalingLimited", "status": "False", "reason": "DesiredWithinRange", "message": "the desired count is within the acceptable range"},
    ]);
    run(vec![
        case(
            "no conditions",
            v2(json!([])),
            Progressing,
            "Waiting to Autoscale",
        ),
        case(
            "metric failure",
            v2(metric_failure.clone()),
            Degraded,
            "missing request for cpu",
        ),
        case(
            "external metric failure",
            v2(
                json!([{"type": "ScalingActive", "status": "False", "reason": "FailedGetExternalMetric", "message": "no metric"}]),
            ),
            Degraded,
            "no metric",
        ),
        case(
            "cannot get scale",
            v2(
                json!([{"type": "AbleToScale", "status": "False", "reason": "FailedGetScale", "message": "no such deployment"}]),
            ),
            Degraded,
            "no such deployment",
        ),
        case(
            "invalid selector",
            v2(
                json!([{"type": "ScalingActive", "status": "False", "reason": "InvalidSelector", "message": "bad"}]),
            ),
            Degraded,
            "bad",
        ),
        case("healthy", v2(healthy.clone()), Healthy, "acceptable range"),
        case(
            "v1 annotation degraded",
            v1(&metric_failure),
            Degraded,
            "missing request for cpu",
        ),
        case(
            "v1 annotation healthy",
            v1(&healthy),
            Healthy,
            "acceptable range",
        ),
        case(
            "v1 without annotation",
            json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "h"}}),
            Progressing,
            "Waiting to Autoscale",
        ),
    ]);
}

#[test]
fn api_service_and_crd_rules() {
    use HealthStatus::*;
    let api = |conditions: Value| {
        json!({"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1beta1.metrics.k8s.io"},
            "status": {"conditions": conditions}})
    };
    let crd = |conditions: Value| {
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "widgets.example.com"},
            "status": {"conditions": conditions}})
    };
    run(vec![
        case(
            "api available",
            api(
                json!([{"type": "Available", "status": "True", "reason": "Passed", "message": "all checks passed"}]),
            ),
            Healthy,
            "Passed: all checks passed",
        ),
        case(
            "api unavailable",
            api(
                json!([{"type": "Available", "status": "False", "reason": "MissingEndpoints", "message": "no endpoints"}]),
            ),
            Progressing,
            "MissingEndpoints",
        ),
        case(
            "api new",
            api(json!([])),
            Progressing,
            "Waiting to be processed",
        ),
        case(
            "crd established",
            crd(
                json!([{"type": "NamesAccepted", "status": "True"}, {"type": "Established", "status": "True"}]),
            ),
            Healthy,
            "",
        ),
        case(
            "crd pending",
            crd(json!([{"type": "NamesAccepted", "status": "True"}])),
            Progressing,
            "established",
        ),
        case(
            "crd name clash",
            crd(
                json!([{"type": "NamesAccepted", "status": "False", "message": "plural name is already in use"}]),
            ),
            Degraded,
            "already in use",
        ),
    ]);
}

#[test]
fn kinds_without_rules_have_no_health() {
    for (api_version, kind) in [
        ("v1", "ConfigMap"),
        ("v1", "Secret"),
        ("example.com/v1", "Widget"),
        ("v1", "Namespace"),
    ] {
        let o = Object::from_value(
            json!({"apiVersion": api_version, "kind": kind, "metadata": {"name": "x"}}),
        )
        .unwrap();
        assert!(assess(&o).is_none(), "{kind}");
    }
    assert!(has_rule("batch", "Job"));
    assert!(!has_rule("batch", "CronJob"));
}

#[test]
fn worst_orders_like_argo() {
    use HealthStatus::*;
    assert_eq!(HealthStatus::worst([]), Healthy);
    assert_eq!(HealthStatus::worst([Healthy, Suspended]), Suspended);
    assert_eq!(HealthStatus::worst([Missing, Progressing]), Missing);
    assert_eq!(HealthStatus::worst([Missing, Degraded, Healthy]), Degraded);
    assert_eq!(HealthStatus::worst([Unknown, Degraded]), Unknown);
}

#[test]
fn garbage_status_does_not_panic() {
    for kind in ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet"] {
        let o = Object::from_value(
            json!({"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": "x", "generation": "one"},
            "spec": [1, 2], "status": {"conditions": "x", "replicas": "three"}}),
        )
        .unwrap();
        assert!(assess(&o).is_some());
    }
    let o = Object::from_value(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "status": {"containerStatuses": [null, 3]}}),
    )
    .unwrap();
    assert_eq!(assess(&o).unwrap().status, HealthStatus::Unknown);
}
