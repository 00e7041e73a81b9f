//! Hostile input: arbitrary JSON in every field, deep nesting, huge objects. Policies
//! and mutations must neither panic nor hang (no timing assertions: a hang fails the
//! test run by never finishing).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

use idp_core::ports::Mutation;
use idp_core::{Object, Policy, PolicyContext};
use idp_policy::mutate::{
    CollectorSidecar, DefaultResources, Mutations, OtelInjection, StandardLabels,
};
use idp_policy::pss::PodSecurity;
use idp_policy::{PolicyOptions, PolicySet, guardrails};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn everything() -> PolicySet {
    let mut set = PolicySet::new()
        .with_policy(PodSecurity::restricted())
        .with_policy(
            PodSecurity::baseline()
                .at("v1.18".parse().unwrap())
                .named("pss-old"),
        );
    for g in guardrails::all() {
        set.push(g, PolicyOptions::default());
    }
    set.push(
        std::sync::Arc::new(guardrails::AllowedRegistries::new(["ghcr.io/acme"])),
        PolicyOptions::default(),
    );
    set
}

fn mutations() -> Mutations {
    Mutations::new()
        .with(StandardLabels::default())
        .with(DefaultResources::default())
        .with(OtelInjection::new("http://c:4317").with_sidecar(CollectorSidecar::default()))
}

fn ctx() -> PolicyContext {
    PolicyContext::new().with_environment("prod".parse().unwrap())
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,8}".prop_map(Value::String),
        prop_oneof![
            Just("ALL"),
            Just("Unconfined"),
            Just("windows"),
            Just("nginx:latest"),
            Just("true"),
            Just("false"),
            Just("")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    let keys = prop_oneof![
        Just("spec"),
        Just("template"),
        Just("jobTemplate"),
        Just("containers"),
        Just("initContainers"),
        Just("ephemeralContainers"),
        Just("securityContext"),
        Just("capabilities"),
        Just("add"),
        Just("drop"),
        Just("volumes"),
        Just("hostPath"),
        Just("ports"),
        Just("hostPort"),
        Just("containerPort"),
        Just("resources"),
        Just("limits"),
        Just("requests"),
        Just("env"),
        Just("name"),
        Just("image"),
        Just("metadata"),
        Just("labels"),
        Just("annotations"),
        Just("seccompProfile"),
        Just("type"),
        Just("sysctls"),
        Just("livenessProbe"),
        Just("httpGet"),
        Just("host"),
        Just("lifecycle"),
        Just("tls"),
        Just("rules"),
        Just("replicas"),
        Just("os"),
        Just("hostUsers"),
        Just("runAsUser"),
    ]
    .prop_map(str::to_owned);
    leaf.prop_recursive(6, 256, 8, move |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(keys.clone(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn arbitrary_object() -> impl Strategy<Value = Object> {
    let kind = prop_oneof![
        Just("Pod"),
        Just("Deployment"),
        Just("StatefulSet"),
        Just("DaemonSet"),
        Just("ReplicaSet"),
        Just("ReplicationController"),
        Just("Job"),
        Just("CronJob"),
        Just("Service"),
        Just("Ingress"),
        Just("Weird")
    ];
    // `Object::from_value` refuses a non-mapping `metadata`; such values never reach a
    // policy, so they are filtered out rather than unwrapped.
    (kind, arbitrary_json(), arbitrary_json()).prop_filter_map(
        "metadata must be a mapping",
        |(kind, spec, metadata)| {
            Object::from_value(
                json!({"apiVersion": "v1", "kind": kind, "metadata": metadata, "spec": spec}),
            )
            .ok()
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_objects_never_panic(object in arbitrary_object()) {
        let set = everything();
        let ctx = ctx();
        let _ = set.check_object(&object, &ctx);
        let mut mutated = object.clone();
        let first = mutations().mutate(&mut mutated, &ctx);
        prop_assert!(first.is_ok());
        let _ = set.evaluate(&mutated, &ctx);
        let mut twice = mutated.clone();
        prop_assert!(mutations().mutate(&mut twice, &ctx).is_ok());
        prop_assert_eq!(twice, mutated);
    }

    #[test]
    fn arbitrary_json_bytes_never_panic_the_parse_then_check_path(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(value) = serde_json::from_slice::<Value>(&bytes)
            && let Ok(object) = Object::from_value(value)
        {
            let _ = everything().check_object(&object, &ctx());
        }
    }
}

#[test]
fn deeply_nested_input_is_refused_by_the_parser_not_a_stack_overflow() {
    let depth = 100_000;
    let text = format!(
        "{{\"apiVersion\":\"v1\",\"kind\":\"Pod\",\"spec\":{}{}}}",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let err = serde_json::from_slice::<Value>(text.as_bytes()).unwrap_err();
    assert!(err.to_string().contains("recursion limit"), "{err}");
}

#[test]
fn deeply_nested_values_inside_fields_are_not_walked() {
    // Nesting built in memory (below what a recursive drop can handle on a test thread)
    // inside fields the policies read: they look at known paths only.
    let mut deep = json!("bottom");
    for i in 0..1_000 {
        deep = if i % 2 == 0 {
            json!({"securityContext": deep, "containers": [{"name": "x"}]})
        } else {
            json!({"spec": [deep]})
        };
    }
    let object = Object::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "securityContext": {"privileged": true, "capabilities": deep.clone()}, "resources": deep}]}}}}))
    .unwrap();
    let result = everything().check_object(&object, &ctx());
    assert!(!result.allowed);
    let mut m = object.clone();
    mutations().mutate(&mut m, &ctx()).unwrap();
}

#[test]
fn huge_objects_are_checked_linearly() {
    let containers: Vec<Value> = (0..5_000)
        .map(|i| json!({"name": format!("c{i}"), "image": "nginx", "securityContext": {"privileged": true},
            "ports": [{"containerPort": 22, "hostPort": 22}]}))
        .collect();
    let object = Object::from_value(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "huge"},
        "spec": {"containers": containers, "volumes": (0..2_000).map(|i| json!({"name": format!("v{i}"), "hostPath": {"path": "/"}})).collect::<Vec<_>>(),
            "securityContext": {"sysctls": (0..2_000).map(|i| json!({"name": format!("kernel.x{i}")})).collect::<Vec<_>>()}}}))
    .unwrap();
    let v = PodSecurity::baseline().evaluate(&object, &ctx());
    assert_eq!(v.iter().filter(|v| v.rule == "privileged").count(), 5_000);
    assert_eq!(
        v.iter().filter(|v| v.rule == "hostPathVolumes").count(),
        2_000
    );
    assert_eq!(v.iter().filter(|v| v.rule == "sysctls").count(), 2_000);
    let report = everything().check([&object], &ctx());
    assert_eq!(report.sample.len(), 1000, "the sample stays capped");
    let mut m = object;
    mutations().mutate(&mut m, &ctx()).unwrap();
}
