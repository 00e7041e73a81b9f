//! Policy reports (`wgpolicyk8s.io/v1alpha2`) from a policy set's verdicts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use idp_core::{Object, PolicyContext};
use idp_policy::config::BuiltinPolicy;
use idp_policy::policy_report::{
    DEFAULT_MAX_RESULTS, Outcome, PolicyReport, PolicyReports, ReportLayout,
};
use idp_policy::pss::PodSecurity;
use idp_policy::{Action, PolicyOptions, PolicySet, guardrails};
use serde_json::json;
use std::time::SystemTime;

fn object(v: serde_json::Value) -> Object {
    Object::from_value(v).unwrap()
}

fn objects() -> Vec<Object> {
    vec![
        object(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})),
        object(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "cart", "namespace": "shop", "labels": {"team": "payments"}},
            "spec": {"replicas": 2, "template": {"spec": {"hostNetwork": true, "containers": [{
                "name": "app", "image": "ghcr.io/acme/cart:1.4",
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                              "limits": {"cpu": "1", "memory": "256Mi"}}}]}}}})),
        // No namespace: placed in the default namespace, as kubectl would.
        object(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "cart"},
            "spec": {"type": "NodePort", "ports": [{"port": 80}]}}),
        ),
    ]
}

fn set() -> PolicySet {
    let mut set = PolicySet::new().with_policy(PodSecurity::baseline());
    set.add_builtin(
        BuiltinPolicy::RequireResources(guardrails::RequireResources::default()),
        PolicyOptions::new(),
    );
    set.add_builtin(
        BuiltinPolicy::RestrictServiceTypes(guardrails::RestrictServiceTypes::default()),
        PolicyOptions::new().action(Action::Warn),
    );
    set
}

fn reports() -> Vec<PolicyReport> {
    let set = set();
    let ctx = PolicyContext::new();
    let mut reports = PolicyReports::new("idp", std::time::SystemTime::UNIX_EPOCH);
    for o in &objects() {
        reports.add(
            o,
            &set.check_object(o, &ctx),
            &set.applicable_policies(o, &ctx),
        );
    }
    reports.finish()
}

#[test]
fn one_report_per_namespace_and_one_for_the_cluster() {
    let reports = reports();
    let scopes: Vec<(&str, Option<&str>)> = reports
        .iter()
        .map(|r| (r.kind.as_str(), r.metadata.namespace.as_deref()))
        .collect();
    assert_eq!(
        scopes,
        [
            ("ClusterPolicyReport", None),
            ("PolicyReport", Some("default")),
            ("PolicyReport", Some("shop")),
        ]
    );
    assert!(
        reports[0].results.is_empty(),
        "nothing applies to a Namespace"
    );

    // The Service: a warning from restrict-service-types, nothing else applies to it.
    let service = &reports[1];
    assert_eq!(service.results.len(), 1, "{:#?}", service.results);
    let warn = &service.results[0];
    assert_eq!(warn.policy, "restrict-service-types");
    assert_eq!(warn.result, Outcome::Warn);
    assert!(!warn.scored);
    assert_eq!(warn.properties["action"], "warn");
    assert_eq!(warn.resources[0].namespace.as_deref(), Some("default"));
    assert_eq!(service.summary.warn, 1);

    // The Deployment: a failure from pod security, a pass from require-resources.
    let shop = &reports[2];
    let outcomes: Vec<(&str, Outcome)> = shop
        .results
        .iter()
        .map(|r| (r.policy.as_str(), r.result))
        .collect();
    assert_eq!(
        outcomes,
        [
            ("pod-security", Outcome::Fail),
            ("require-resources", Outcome::Pass)
        ]
    );
    let fail = &shop.results[0];
    assert_eq!(fail.rule.as_deref(), Some("hostNamespaces"));
    assert_eq!(fail.properties["path"], "spec.template.spec.hostNetwork");
    assert_eq!(fail.severity.as_deref(), Some("high"));
    assert_eq!(fail.category.as_deref(), Some("Pod Security Standards"));
    assert_eq!(fail.resources[0].name, "cart");
    assert_eq!((shop.summary.pass, shop.summary.fail), (1, 1));
}

#[test]
fn summaries_count_the_results() {
    for r in reports() {
        let count = |o: Outcome| r.results.iter().filter(|x| x.result == o).count() as u64;
        assert_eq!(r.summary.pass, count(Outcome::Pass));
        assert_eq!(r.summary.fail, count(Outcome::Fail));
        assert_eq!(r.summary.warn, count(Outcome::Warn));
    }
}

#[test]
fn the_json_is_the_report_resource() {
    let reports = reports();
    let value = serde_json::to_value(&reports[2]).unwrap();
    assert_eq!(value["apiVersion"], "wgpolicyk8s.io/v1alpha2");
    assert_eq!(value["kind"], "PolicyReport");
    assert_eq!(
        value["metadata"],
        json!({"name": "idp-policy", "namespace": "shop",
               "labels": {"app.kubernetes.io/managed-by": "idp"}})
    );
    assert_eq!(
        value["summary"],
        json!({"pass": 1, "fail": 1, "warn": 0, "error": 0, "skip": 0})
    );
    let result = &value["results"][0];
    assert_eq!(result["source"], "idp");
    assert_eq!(result["result"], "fail");
    assert_eq!(result["scored"], true);
    assert_eq!(result["timestamp"], json!({"seconds": 0, "nanos": 0}));
    assert_eq!(
        result["resources"][0],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "cart", "namespace": "shop"})
    );
    // And back.
    let back: PolicyReport = serde_json::from_value(value).unwrap();
    assert_eq!(back, reports[2]);
}

#[test]
fn audit_findings_fail_and_waived_ones_pass() {
    let ctx = PolicyContext::new();
    let pod = object(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "agent", "namespace": "monitoring"},
        "spec": {"hostPID": true, "containers": [{"name": "c", "image": "x:1"}]}}));
    let audit = PolicySet::new().with_policy_options(
        PodSecurity::baseline(),
        PolicyOptions::new().action(Action::Audit),
    );
    let mut reports = PolicyReports::new("idp", std::time::SystemTime::UNIX_EPOCH);
    reports.add(
        &pod,
        &audit.check_object(&pod, &ctx),
        &audit.applicable_policies(&pod, &ctx),
    );
    let r = reports.finish();
    assert_eq!(r[0].results[0].result, Outcome::Fail);
    assert_eq!(r[0].results[0].properties["action"], "audit");

    let waived = audit.with_exception(
        serde_json::from_value(
            json!({"name": "agent", "reason": "needs the host PID until OPS-7",
            "policies": [{"policy": "pod-security", "rules": ["hostNamespaces"]}],
            "match": {"namespaces": ["monitoring"]}}),
        )
        .unwrap(),
    );
    let mut reports = PolicyReports::new("idp", std::time::SystemTime::UNIX_EPOCH);
    reports.add(
        &pod,
        &waived.check_object(&pod, &ctx),
        &waived.applicable_policies(&pod, &ctx),
    );
    let r = reports.finish();
    assert_eq!(r[0].results.len(), 1);
    assert_eq!(r[0].results[0].result, Outcome::Pass);
}

#[test]
fn a_namespace_with_many_results_gets_several_reports_each_small_enough_for_kubectl() {
    let set = PolicySet::new()
        .with_policy(PodSecurity::restricted())
        .with_policy(guardrails::RequireResources::default());
    let ctx = PolicyContext::new();
    let mut reports = PolicyReports::new("idp", SystemTime::UNIX_EPOCH);
    let mut expected = 0;
    for i in 0..300 {
        let pod = object(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("worker-with-a-long-name-{i:04}"), "namespace": "batch"},
            "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/worker:1.0",
                "securityContext": {"privileged": true}}]}}));
        let result = set.check_object(&pod, &ctx);
        let applicable = set.applicable_policies(&pod, &ctx);
        expected += result.violations.len()
            + applicable
                .iter()
                .filter(|p| !result.violations.iter().any(|v| v.policy == **p))
                .count();
        reports.add(&pod, &result, &applicable);
    }
    let reports = reports.finish();
    assert!(expected > 2 * DEFAULT_MAX_RESULTS, "{expected} results");
    let names: Vec<&str> = reports.iter().map(|r| r.metadata.name.as_str()).collect();
    assert_eq!(names[0], "idp-policy");
    assert_eq!(names[1], "idp-policy-2");
    let mut total = 0;
    for r in &reports {
        assert_eq!(r.metadata.namespace.as_deref(), Some("batch"));
        assert!(r.results.len() <= DEFAULT_MAX_RESULTS);
        let s = &r.summary;
        assert_eq!(
            (s.pass + s.fail + s.warn + s.error + s.skip) as usize,
            r.results.len(),
            "each part counts its own results"
        );
        total += r.results.len();
        // kubectl apply keeps the object in an annotation of at most 256 KiB.
        let bytes = serde_json::to_vec(r).unwrap().len();
        assert!(
            bytes < 256 * 1024 / 2,
            "{} is {bytes} bytes",
            r.metadata.name
        );
    }
    assert_eq!(total, expected, "nothing lost in the split");
}

const CART_UID: &str = "5c0e7a4e-3b1f-4d8e-9f27-61a0c2d4b8e1";

/// The reports of `objects` with the per-resource layout, at most `max` results each.
fn per_resource(objects: &[Object], max: usize) -> Vec<PolicyReport> {
    let set = set();
    let ctx = PolicyContext::new();
    let mut reports = PolicyReports::new("idp", SystemTime::UNIX_EPOCH)
        .with_layout(ReportLayout::PerResource)
        .with_max_results(max);
    for o in objects {
        reports.add(
            o,
            &set.check_object(o, &ctx),
            &set.applicable_policies(o, &ctx),
        );
    }
    reports.finish()
}

/// [`objects`] as read from a cluster: the Namespace and the Deployment with UIDs.
fn stored_objects() -> Vec<Object> {
    let mut objects = objects();
    objects[0].as_map_mut()["metadata"]["uid"] = json!("0d8f6a3c-9e2b-4a71-8c55-3f1e2d4c6b7a");
    objects[1].as_map_mut()["metadata"]["uid"] = json!(CART_UID);
    objects
}

#[test]
fn per_resource_reports_are_named_by_uid_scoped_and_owned_by_their_object() {
    let reports = per_resource(&stored_objects(), DEFAULT_MAX_RESULTS);
    // No policy applies to the Namespace: no report for it.
    assert_eq!(reports.len(), 2, "{reports:#?}");

    let service = &reports[0];
    assert_eq!(service.metadata.namespace.as_deref(), Some("default"));
    assert!(
        service.metadata.name.starts_with("idp-") && service.metadata.name.len() == 20,
        "a file's object has no UID: {}",
        service.metadata.name
    );
    assert!(service.metadata.owner_references.is_empty());
    let scope = service.scope.as_ref().unwrap();
    assert_eq!(
        (scope.kind.as_str(), scope.name.as_str()),
        ("Service", "cart")
    );
    assert_eq!(scope.uid, None);

    let cart = &reports[1];
    assert_eq!(cart.kind, "PolicyReport");
    assert_eq!(cart.metadata.name, CART_UID);
    assert_eq!(cart.metadata.namespace.as_deref(), Some("shop"));
    let owner = &cart.metadata.owner_references[0];
    assert_eq!(
        (
            owner.api_version.as_str(),
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str()
        ),
        ("apps/v1", "Deployment", "cart", CART_UID)
    );
    assert_eq!(cart.scope.as_ref().unwrap().uid.as_deref(), Some(CART_UID));
    assert_eq!((cart.summary.pass, cart.summary.fail), (1, 1));
    assert!(cart.results.iter().all(|r| r.resources.is_empty()));

    let value = serde_json::to_value(cart).unwrap();
    assert_eq!(value["metadata"]["ownerReferences"][0]["uid"], CART_UID);
    assert_eq!(
        value["scope"],
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "name": "cart",
               "namespace": "shop", "uid": CART_UID})
    );
    assert!(value["results"][0].get("resources").is_none());
    let back: PolicyReport = serde_json::from_value(value).unwrap();
    assert_eq!(&back, cart);
}

#[test]
fn a_report_without_uid_keeps_its_name_across_runs_and_objects_do_not_share_one() {
    let first = per_resource(&objects(), DEFAULT_MAX_RESULTS);
    let again = per_resource(&objects(), DEFAULT_MAX_RESULTS);
    let names =
        |r: &[PolicyReport]| -> Vec<String> { r.iter().map(|r| r.metadata.name.clone()).collect() };
    assert_eq!(names(&first), names(&again));
    let mut other = objects();
    other[2].as_map_mut()["metadata"]["name"] = json!("carts");
    let other = per_resource(&other, DEFAULT_MAX_RESULTS);
    assert_ne!(first[0].metadata.name, other[0].metadata.name);

    // A UID that is not a valid object name is not used as one, nor as an owner.
    let mut odd = stored_objects();
    odd[1].as_map_mut()["metadata"]["uid"] = json!("Not A Name!");
    let odd = per_resource(&odd, DEFAULT_MAX_RESULTS);
    assert!(
        odd[1].metadata.name.starts_with("idp-"),
        "{}",
        odd[1].metadata.name
    );
    assert!(odd[1].metadata.owner_references.is_empty());
}

#[test]
fn a_split_per_resource_report_keeps_its_scope_and_owner() {
    let reports = per_resource(&stored_objects(), 1);
    let cart: Vec<&PolicyReport> = reports
        .iter()
        .filter(|r| r.metadata.namespace.as_deref() == Some("shop"))
        .collect();
    let names: Vec<&str> = cart.iter().map(|r| r.metadata.name.as_str()).collect();
    assert_eq!(names, [CART_UID.to_owned(), format!("{CART_UID}-2")]);
    for part in cart {
        assert_eq!(part.results.len(), 1);
        assert_eq!(part.metadata.owner_references[0].uid, CART_UID);
        assert_eq!(part.scope.as_ref().unwrap().name, "cart");
        assert_eq!(part.metadata.labels["app.kubernetes.io/managed-by"], "idp");
    }
}
