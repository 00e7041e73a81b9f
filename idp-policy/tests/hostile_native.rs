//! Hostile input for the native engine at full size: 10,000 levels of nesting, 50 MB
//! objects with 100,000 containers. Each must end in a clear error or in bounded,
//! linear work: no panic, no stack overflow, no hang (a hang fails the run by never
//! finishing; no timing assertions).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use idp_core::ports::Mutation;
use idp_core::{Object, Policy, PolicyContext};
use idp_policy::admission::{AdmissionHandler, ReviewKind};
use idp_policy::mutate::{DefaultResources, Mutations, StandardLabels};
use idp_policy::pss::PodSecurity;
use idp_policy::{PolicyOptions, PolicySet, guardrails};
use serde_json::{Map, Value, json};

fn everything() -> PolicySet {
    let mut set = PolicySet::new().with_policy(PodSecurity::restricted());
    for g in guardrails::all() {
        set.push(g, PolicyOptions::default());
    }
    set.push(
        Arc::new(guardrails::AllowedRegistries::new(["ghcr.io/acme"])),
        PolicyOptions::default(),
    );
    set
}

fn ctx() -> PolicyContext {
    PolicyContext::new().with_environment("prod".parse().unwrap())
}

/// Run `f` on a thread with a big stack: building and dropping a 10,000-level
/// `serde_json::Value` recurses in `Drop` and `Clone` (serde_json's own code, not ours).
fn with_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 * 1024 * 1024)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn ten_thousand_levels_of_json_are_refused_by_the_parser() {
    let depth = 10_000;
    for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
        let text = format!(
            "{{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"metadata\":{{\"name\":\"p\"}},\"spec\":{{\"containers\":[{{\"securityContext\":{}1{}}}]}}}}",
            open.repeat(depth),
            close.repeat(depth)
        );
        let err = serde_json::from_slice::<Object>(text.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
        // The same body as an AdmissionReview: a clear refusal, not a crash.
        let review = format!(
            "{{\"apiVersion\":\"admission.k8s.io/v1\",\"kind\":\"AdmissionReview\",\"request\":{{\"uid\":\"u\",\"kind\":{{}},\"resource\":{{}},\"operation\":\"CREATE\",\"object\":{text}}}}}"
        );
        let answer = AdmissionHandler::new()
            .with_policy(everything())
            .handle(ReviewKind::Validate, review.as_bytes())
            .response
            .unwrap();
        assert!(!answer.allowed);
        assert!(
            answer
                .status
                .unwrap()
                .message
                .unwrap()
                .contains("recursion limit")
        );
    }
}

#[test]
fn ten_thousand_levels_built_in_memory_are_not_walked() {
    with_big_stack(|| {
        // Built by moving each level into the next (`json!` would copy the value it
        // interpolates, which is quadratic here).
        let mut deep = json!({"privileged": true});
        for i in 0..10_000 {
            deep = if i % 2 == 0 {
                let mut level = Map::new();
                level.insert("securityContext".to_owned(), deep);
                level.insert(
                    "containers".to_owned(),
                    json!([{"name": "x", "image": "nginx"}]),
                );
                level.insert("spec".to_owned(), json!({}));
                Value::Object(level)
            } else {
                Value::Array(vec![deep, json!({"containers": [{"name": "y"}]})])
            };
        }
        let containers = json!([{"name": "c", "image": "ghcr.io/acme/c:1",
            "securityContext": {"privileged": true, "capabilities": deep.clone(), "seccompProfile": deep.clone()},
            "resources": deep.clone(), "ports": deep.clone(), "livenessProbe": deep.clone(), "env": deep.clone()}]);
        let object = Object::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "labels": deep.clone(), "annotations": deep.clone()},
            "spec": {"replicas": deep.clone(), "template": {"metadata": {"annotations": deep.clone()},
                "spec": {"containers": containers, "initContainers": deep.clone(), "volumes": deep.clone(),
                    "securityContext": deep}}}}))
        .unwrap();
        let result = everything().check_object(&object, &ctx());
        assert!(!result.allowed);
        assert!(result.violations.iter().any(|v| v.rule == "privileged"));
        let mut mutated = object.clone();
        Mutations::new()
            .with(StandardLabels::default())
            .with(DefaultResources::default())
            .mutate(&mut mutated, &ctx())
            .unwrap();
    });
}

fn container(i: usize) -> Value {
    json!({"name": format!("container-{i}"), "image": format!("ghcr.io/acme/service-{i}:1.0.{i}"),
        "ports": [{"containerPort": 8080, "name": "http"}],
        "env": [{"name": "MODE", "value": "production"}, {"name": "INDEX", "value": i.to_string()},
            {"name": "PADDING", "value": "x".repeat(120)}],
        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}},
        "livenessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
        "securityContext": {"allowPrivilegeEscalation": false, "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}})
}

fn huge_pod() -> Vec<u8> {
    let containers: Vec<Value> = (0..100_000).map(container).collect();
    serde_json::to_vec(&json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "huge", "namespace": "shop", "labels": {"idp.dev/owner": "team-a"}},
        "spec": {"containers": containers}}))
    .unwrap()
}

/// One test, so the 50 MB document is built once.
#[test]
fn a_fifty_megabyte_pod_with_100k_containers_is_checked_in_one_linear_pass() {
    let body = huge_pod();
    assert!(body.len() > 50_000_000, "{} bytes", body.len());

    // As an AdmissionReview body it is over the webhook's limit: refused unread.
    let answer = AdmissionHandler::new()
        .with_policy(everything())
        .handle(ReviewKind::Validate, &body)
        .response
        .unwrap();
    assert!(!answer.allowed);
    assert_eq!(answer.status.unwrap().code, Some(413));

    let mut object: Object = serde_json::from_slice(&body).unwrap();
    drop(body);
    let result = everything().check_object(&object, &ctx());
    assert!(result.allowed, "{:?}", result.violations.first());
    assert!(result.violations.is_empty());

    // One violation per container: every one is reported, the report's sample stays
    // capped.
    for c in object
        .pointer_mut("/spec/containers")
        .and_then(Value::as_array_mut)
        .unwrap()
    {
        c["securityContext"]["privileged"] = json!(true);
    }
    let violations = everything().evaluate(&object, &ctx());
    assert_eq!(violations.len(), 100_000);
    assert!(violations.iter().all(|v| v.rule == "privileged"));
    assert_eq!(
        violations[99_999].path.as_deref(),
        Some("spec.containers[99999].securityContext.privileged")
    );
    drop(violations);
    let report = everything().check([&object], &ctx());
    assert_eq!(report.violations, 100_000);
    assert_eq!(report.sample.len(), 1000);
}

#[test]
fn huge_strings_and_lists_in_checked_fields_stay_linear() {
    let long = "a".repeat(1_000_000);
    let object = Object::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"idp.dev/owner": long.clone()}},
        "spec": {"containers": [{"name": long.clone(), "image": format!("{long}:{long}@{long}"),
            "securityContext": {"capabilities": {"add": vec![long.clone(); 10], "drop": vec!["ALL"; 100_000]},
                "seLinuxOptions": {"type": long.clone()}}}],
            "securityContext": {"sysctls": (0..100_000).map(|i| json!({"name": format!("kernel.x{i}")})).collect::<Vec<_>>()}}}))
    .unwrap();
    let violations = everything().evaluate(&object, &ctx());
    assert_eq!(
        violations.iter().filter(|v| v.rule == "sysctls").count(),
        100_000
    );
    assert!(
        violations
            .iter()
            .any(|v| v.rule == "capabilities_restricted")
    );
    let set_of_one = PodSecurity::baseline();
    assert!(!set_of_one.evaluate(&object, &ctx()).is_empty());
}
