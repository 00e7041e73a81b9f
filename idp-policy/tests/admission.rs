//! The transport-neutral admission handler: validating and mutating reviews, malformed
//! input, and the JSON Patch diff checked against an independent RFC 6902 applier.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use idp_core::PolicyContext;
use idp_policy::admission::{
    AUDIT_ANNOTATION, AdmissionHandler, AdmissionRequest, AdmissionResponse, AdmissionReview,
    JsonPatch, Operation, ReviewKind,
};
use idp_policy::exceptions::{PolicyException, RuleRef};
use idp_policy::matching::ResourceFilter;
use idp_policy::mutate::{DefaultResources, Mutations, OtelInjection, StandardLabels};
use idp_policy::{Action, PolicyOptions, PolicySet, guardrails, pss::PodSecurity};
use proptest::prelude::*;
use serde_json::{Map, Value, json};

fn pod(namespace: &str, privileged: bool, image: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": namespace, "labels": {"idp.dev/owner": "team-a"}},
        "spec": {"containers": [{"name": "app", "image": image,
            "securityContext": {"privileged": privileged}}]}})
}

fn handler() -> AdmissionHandler {
    let set = PolicySet::new()
        .with_policy_options(
            PodSecurity::baseline(),
            PolicyOptions::new().exclude(ResourceFilter::new().namespaces(["kube-system"])),
        )
        .with_policy_options(
            guardrails::DisallowLatestTag::default(),
            PolicyOptions::new().action(Action::Warn),
        )
        .with_policy_options(
            guardrails::RequireProbes::default(),
            PolicyOptions::new().action(Action::Audit),
        )
        .with_exception(
            PolicyException::new("debug-pods", "the SRE debug namespace")
                .waive(RuleRef::rules("pod-security", ["privileged"]))
                .for_objects(ResourceFilter::new().namespaces(["sre-debug"])),
        );
    AdmissionHandler::new()
        .with_policy(set)
        .with_context(PolicyContext::new().with_environment("prod".parse().unwrap()))
}

fn validate(h: &AdmissionHandler, request: AdmissionRequest) -> AdmissionResponse {
    let body = serde_json::to_vec(&AdmissionReview::ask(request)).unwrap();
    let review = h.handle(ReviewKind::Validate, &body);
    assert_eq!(review.api_version, "admission.k8s.io/v1");
    assert_eq!(review.kind, "AdmissionReview");
    assert!(review.request.is_none());
    review.response.unwrap()
}

#[test]
fn enforced_violations_deny_with_a_403_listing_them() {
    let r = validate(
        &handler(),
        AdmissionRequest::new("u-1", Operation::Create, pod("shop", true, "nginx:1.27"))
            .with_namespace("shop"),
    );
    assert_eq!(r.uid, "u-1");
    assert!(!r.allowed);
    let status = r.status.unwrap();
    assert_eq!(status.code, Some(403));
    assert_eq!(status.reason.as_deref(), Some("Forbidden"));
    let message = status.message.unwrap();
    assert!(
        message.starts_with("Pod shop/web was refused by 1 policy violation: "),
        "{message}"
    );
    assert!(message.contains("pod-security/privileged"), "{message}");
    assert!(
        message.contains("spec.containers[0].securityContext.privileged"),
        "{message}"
    );
}

#[test]
fn warn_actions_become_warnings_and_audit_ones_annotations() {
    let r = validate(
        &handler(),
        AdmissionRequest::new("u-2", Operation::Create, pod("shop", false, "nginx:latest")),
    );
    assert!(r.allowed);
    assert!(r.status.is_none());
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(r.warnings[0].starts_with("disallow-latest-tag/latest-tag: "));
    let audit: Vec<String> = serde_json::from_str(&r.audit_annotations[AUDIT_ANNOTATION]).unwrap();
    assert_eq!(audit.len(), 2, "liveness and readiness: {audit:?}");
    assert!(audit.iter().all(|a| a.starts_with("require-probes/")));
}

#[test]
fn exceptions_and_namespace_matching_use_the_request_namespace() {
    // The object names no namespace: the request's namespace decides.
    let mut object = pod("", true, "nginx:1.27");
    object["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    for (namespace, allowed) in [("sre-debug", true), ("kube-system", true), ("shop", false)] {
        let r = validate(
            &handler(),
            AdmissionRequest::new("u", Operation::Create, object.clone()).with_namespace(namespace),
        );
        assert_eq!(r.allowed, allowed, "namespace {namespace}: {r:?}");
    }
}

#[test]
fn delete_checks_the_old_object_and_connect_is_allowed() {
    let h = handler();
    let r = validate(
        &h,
        AdmissionRequest::new("d", Operation::Delete, pod("shop", true, "nginx:1.27")),
    );
    assert!(!r.allowed, "DELETE is judged on oldObject");
    let r = validate(
        &h,
        AdmissionRequest::new("d", Operation::Delete, pod("shop", false, "nginx:1.27")),
    );
    assert!(r.allowed);
    let r = validate(
        &h,
        AdmissionRequest::new("c", Operation::Connect, Value::Null),
    );
    assert!(r.allowed);
}

#[test]
fn update_checks_the_new_object() {
    let r = validate(
        &handler(),
        AdmissionRequest::new("u", Operation::Update, pod("shop", true, "nginx:1.27"))
            .with_old_object(pod("shop", false, "nginx:1.27")),
    );
    assert!(!r.allowed);
}

#[test]
fn malformed_reviews_are_refused_with_a_message() {
    let h = handler();
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"".to_vec(), "not a valid AdmissionReview"),
        (b"[1,2]".to_vec(), "not a valid AdmissionReview"),
        (br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(), "has no request"),
        (
            br#"{"apiVersion":"admission.k8s.io/v9","kind":"AdmissionReview","request":{"uid":"x","kind":{},"resource":{},"operation":"CREATE"}}"#.to_vec(),
            "is not supported",
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","kind":{},"resource":{},"operation":"CREATE"}}"#.to_vec(),
            "request.object is missing",
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","kind":{},"resource":{},"operation":"CREATE","object":{"kind":"Pod","metadata":"oops"}}}"#.to_vec(),
            "request.object is not a Kubernetes object",
        ),
        (
            br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"x","kind":{},"resource":{},"operation":"PATCH"}}"#.to_vec(),
            "not a valid AdmissionReview",
        ),
    ];
    for (body, expected) in cases {
        for kind in [ReviewKind::Validate, ReviewKind::Mutate] {
            let r = h.handle(kind, &body).response.unwrap();
            assert!(!r.allowed, "{}", String::from_utf8_lossy(&body));
            let message = r.status.unwrap().message.unwrap();
            assert!(
                message.contains(expected),
                "{message} should contain {expected}"
            );
        }
    }
    // The uid is echoed even when the request does not parse as a whole.
    let r = h
        .handle(
            ReviewKind::Validate,
            br#"{"request":{"uid":"keep-me","operation":"PATCH"}}"#,
        )
        .response
        .unwrap();
    assert_eq!(r.uid, "keep-me");
}

#[test]
fn bodies_over_the_limit_are_refused_unread() {
    let h = handler().with_max_body_bytes(1024);
    let body = serde_json::to_vec(&AdmissionReview::ask(AdmissionRequest::new(
        "big",
        Operation::Create,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "x".repeat(2000)}}),
    )))
    .unwrap();
    let r = h.handle(ReviewKind::Validate, &body).response.unwrap();
    assert!(!r.allowed);
    assert_eq!(r.status.unwrap().code, Some(413));
}

#[test]
fn deeply_nested_reviews_hit_the_parser_limit_not_the_stack() {
    let depth = 50_000;
    let body = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"deep","kind":{{}},"resource":{{}},"operation":"CREATE","object":{{"apiVersion":"v1","kind":"Pod","spec":{}{}}}}}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let r = handler()
        .handle(ReviewKind::Validate, body.as_bytes())
        .response
        .unwrap();
    assert!(!r.allowed);
    assert!(
        r.status
            .unwrap()
            .message
            .unwrap()
            .contains("recursion limit")
    );
}

#[test]
fn many_violations_are_listed_up_to_a_cap() {
    let containers: Vec<Value> = (0..100)
        .map(|i| json!({"name": format!("c{i}"), "image": "nginx:1", "securityContext": {"privileged": true}}))
        .collect();
    let object = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
        "spec": {"containers": containers}});
    let r = validate(
        &handler(),
        AdmissionRequest::new("m", Operation::Create, object),
    );
    let message = r.status.unwrap().message.unwrap();
    assert!(
        message.contains("refused by 100 policy violations"),
        "{message}"
    );
    assert!(message.ends_with("; … and 80 more"), "{message}");
}

fn mutations() -> Mutations {
    Mutations::new()
        .with(StandardLabels::default())
        .with(DefaultResources::default())
        .with(OtelInjection::new(
            "http://otel-collector.observability:4317",
        ))
}

fn apply(patch: &Value, to: &Value) -> Value {
    let patch: json_patch::Patch = serde_json::from_value(patch.clone()).unwrap();
    let mut doc = to.clone();
    json_patch::patch(&mut doc, &patch).unwrap();
    doc
}

#[test]
fn mutation_patch_applied_to_the_object_gives_the_mutated_object() {
    let ctx = PolicyContext::new().with_environment("prod".parse().unwrap());
    let h = AdmissionHandler::new()
        .with_mutation(mutations())
        .with_context(ctx.clone());
    let object = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "cart", "namespace": "shop", "labels": {"keep/me": "yes"}},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "cart"}},
            "spec": {"containers": [{"name": "app", "image": "acme/cart:1", "env": [{"name": "A", "value": "1"}]}]}}}});
    let request =
        AdmissionRequest::new("mut", Operation::Create, object.clone()).with_namespace("shop");
    let body = serde_json::to_vec(&AdmissionReview::ask(request)).unwrap();
    let r = h.handle(ReviewKind::Mutate, &body).response.unwrap();
    assert!(r.allowed);
    assert_eq!(r.patch_type.as_deref(), Some("JSONPatch"));
    let patch = r.decoded_patch().unwrap().unwrap();

    // The expected object, mutated directly through the Mutation port.
    let mut expected = idp_core::Object::from_value(object.clone()).unwrap();
    let mut ctx = ctx;
    ctx.namespace = Some("shop".into());
    idp_core::ports::Mutation::mutate(&mutations(), &mut expected, &ctx).unwrap();
    assert_eq!(apply(&patch, &object), expected.into_value());
    // The patch appends to the existing env list instead of replacing the container.
    let ops = patch.as_array().unwrap();
    assert!(
        ops.iter()
            .any(|op| op["op"] == "add" && op["path"] == "/spec/template/spec/containers/0/env/1"),
        "{patch:#}"
    );
    assert!(
        ops.iter()
            .any(|op| op["path"].as_str().unwrap().contains("app.kubernetes.io~1")),
        "label keys are escaped: {patch:#}"
    );

    // Nothing left to do the second time: no patch at all.
    let again = apply(&patch, &object);
    let request = AdmissionRequest::new("mut-2", Operation::Create, again).with_namespace("shop");
    let r = h.mutate(&AdmissionReview::ask(request)).response.unwrap();
    assert!(r.allowed);
    assert!(r.patch.is_none() && r.patch_type.is_none(), "{r:?}");
}

#[test]
fn mutate_leaves_deletes_and_subresources_alone() {
    let h = AdmissionHandler::new().with_mutation(mutations());
    let object = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}});
    let r = h.mutate_request(&AdmissionRequest::new(
        "1",
        Operation::Delete,
        object.clone(),
    ));
    assert!(r.allowed && r.patch.is_none());
    let mut req = AdmissionRequest::new("2", Operation::Update, object);
    req.sub_resource = Some("status".into());
    let r = h.mutate_request(&req);
    assert!(r.allowed && r.patch.is_none());
}

#[test]
fn the_wire_format_is_camel_case_and_sparse() {
    let mut r = AdmissionResponse::allow("1").with_warning("w");
    r.set_patch(&JsonPatch::diff(&json!({}), &json!({"a": 1})));
    let v = serde_json::to_value(AdmissionReview::answer(r)).unwrap();
    assert_eq!(
        v,
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {
            "uid": "1", "allowed": true, "warnings": ["w"], "patchType": "JSONPatch",
            "patch": "W3sib3AiOiJhZGQiLCJwYXRoIjoiL2EiLCJ2YWx1ZSI6MX1d"}})
    );
    // A request as the API server sends it, with fields we do not model.
    let review: AdmissionReview = serde_json::from_value(json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "705ab4f5", "kind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
            "resource": {"group": "apps", "version": "v1", "resource": "deployments"}, "subResource": "scale",
            "requestKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
            "requestResource": {"group": "apps", "version": "v1", "resource": "deployments"},
            "requestSubResource": "scale", "name": "my-deployment", "namespace": "my-namespace",
            "operation": "UPDATE", "userInfo": {"username": "admin", "uid": "014fbff9a07c", "groups": ["system:authenticated"],
                "extra": {"some-key": ["some-value1", "some-value2"]}},
            "object": {"apiVersion": "autoscaling/v1", "kind": "Scale"}, "oldObject": {"apiVersion": "autoscaling/v1", "kind": "Scale"},
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "UpdateOptions"}, "dryRun": false, "somethingNew": 1}
    }))
    .unwrap();
    let req = review.request.unwrap();
    assert_eq!(req.sub_resource.as_deref(), Some("scale"));
    assert_eq!(req.user_info.extra["some-key"].len(), 2);
    assert_eq!(req.dry_run, Some(false));
    assert_eq!(req.options["kind"], "UpdateOptions");
}

fn arbitrary_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-5i64..5).prop_map(|n| json!(n)),
        "[a-c~/]{0,3}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 5, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::btree_map("[a-c~/]{0,3}", inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn diff_then_apply_gives_the_target(a in arbitrary_json(), b in arbitrary_json()) {
        let patch = serde_json::to_value(JsonPatch::diff(&a, &b)).unwrap();
        prop_assert_eq!(apply(&patch, &a), b.clone());
        prop_assert!(JsonPatch::diff(&b, &b).is_empty());
    }

    #[test]
    fn arbitrary_bodies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let h = handler().with_mutation(mutations());
        for kind in [ReviewKind::Validate, ReviewKind::Mutate] {
            let r = h.handle(kind, &bytes).response.unwrap();
            prop_assert!(!r.allowed);
        }
    }
}
