//! Rego policies (feature `rego`): conftest conventions, Gatekeeper templates and
//! constraints with match rules and enforcement actions, and hostile policies.
#![cfg(feature = "rego")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

use std::time::Duration;

use idp_core::model::{Enforcement, Operation};
use idp_core::{ErrorKind, Object, Policy, PolicyContext, Violation};
use idp_policy::rego::RegoPolicy;
use idp_policy::{PolicySet, pss::PodSecurity};
use serde_json::{Value, json};

const CONFTEST: &str = include_str!("fixtures/rego/conftest.rego");
const REGISTRIES: &str = include_str!("fixtures/rego/registries.yaml");
const REQUIRED_LABELS: &str = include_str!("fixtures/rego/required-labels.yaml");
const ALLOWED_REPOS: &str = include_str!("fixtures/rego/allowed-repos.yaml");

fn object(value: Value) -> Object {
    Object::from_value(value).unwrap()
}

fn pod(namespace: &str, labels: Value, containers: Value) -> Object {
    object(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": namespace, "labels": labels},
        "spec": {"containers": containers}
    }))
}

fn deployment(namespace: &str, labels: Value, containers: Value) -> Object {
    object(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace, "labels": labels},
        "spec": {"template": {"spec": {"containers": containers}}}
    }))
}

fn conftest() -> RegoPolicy {
    RegoPolicy::new("conftest")
        .with_data(REGISTRIES)
        .unwrap()
        .with_module("conftest.rego", CONFTEST)
        .unwrap()
}

fn by_rule<'a>(violations: &'a [Violation], rule: &str) -> Vec<&'a Violation> {
    violations.iter().filter(|v| v.rule == rule).collect()
}

#[test]
fn conftest_rules_are_found_and_mapped_to_enforcement() {
    let policy = conftest();
    let mut rules = policy.rules();
    rules.sort();
    assert_eq!(
        rules,
        [
            "main.deny",
            "main.deny_registry",
            "main.violation",
            "main.warn"
        ]
    );

    let bad = deployment(
        "shop",
        json!({}),
        json!([
            {"name": "app", "image": "docker.io/library/nginx:latest",
             "securityContext": {"privileged": true}},
            {"name": "side", "image": "ghcr.io/acme/side:1.0",
             "resources": {"limits": {"memory": "64Mi"}}}
        ]),
    );
    let v = policy.evaluate(&bad, &PolicyContext::new());
    let deny = by_rule(&v, "main.deny");
    assert_eq!(deny.len(), 1, "{v:#?}");
    assert_eq!(deny[0].message, "container \"app\" must not run privileged");
    assert_eq!(deny[0].enforcement, Enforcement::Deny);
    assert_eq!(deny[0].policy, "conftest");

    // `{"msg": ...}` objects give their msg.
    let violation = by_rule(&v, "main.violation");
    assert_eq!(violation.len(), 1);
    assert_eq!(
        violation[0].message,
        "container \"app\" has no memory limit"
    );

    let warn = by_rule(&v, "main.warn");
    assert_eq!(warn.len(), 1);
    assert_eq!(warn[0].enforcement, Enforcement::Warn);

    // Data documents are visible under `data`.
    let registry = by_rule(&v, "main.deny_registry");
    assert_eq!(registry.len(), 1);
    assert_eq!(
        registry[0].message,
        "image \"docker.io/library/nginx:latest\" is not from a trusted registry (ghcr.io/acme/, registry.acme.internal/)"
    );

    let good = deployment(
        "shop",
        json!({}),
        json!([{"name": "app", "image": "ghcr.io/acme/web:1.2",
                "resources": {"limits": {"memory": "64Mi"}}}]),
    );
    assert!(policy.evaluate(&good, &PolicyContext::new()).is_empty());

    // Objects the policy does not know about pass.
    let cm = object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
    assert!(policy.evaluate(&cm, &PolicyContext::new()).is_empty());
}

#[test]
fn namespaces_restrict_the_evaluated_packages() {
    let other = "package other\ndeny contains \"always\" if { true }\n";
    let policy = conftest().with_module("other.rego", other).unwrap();
    let cm = object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
    assert_eq!(policy.evaluate(&cm, &PolicyContext::new()).len(), 1);
    let only_main = policy.namespaces(["main"]);
    assert!(only_main.evaluate(&cm, &PolicyContext::new()).is_empty());
}

#[test]
fn rego_v0_modules_load_too() {
    let v0 = "package main\ndeny[msg] {\n  input.kind == \"Secret\"\n  msg := \"no secrets in git\"\n}\n";
    let policy = RegoPolicy::new("v0").with_module("v0.rego", v0).unwrap();
    let secret = object(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}}));
    let v = policy.evaluate(&secret, &PolicyContext::new());
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].message, "no secrets in git");
}

#[test]
fn invalid_modules_and_data_are_clear_errors() {
    let err = RegoPolicy::new("p")
        .with_module("broken.rego", "package main\ndeny contains msg if {\n")
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("broken.rego"), "{err}");

    let err = RegoPolicy::new("p")
        .with_data("- just\n- a list\n")
        .unwrap_err();
    assert!(err.to_string().contains("must be an object"), "{err}");
}

#[test]
fn network_builtins_are_not_available() {
    let fetch = r#"package main
deny contains msg if {
    resp := http.send({"method": "GET", "url": "http://example.com"})
    msg := resp.body
}"#;
    let err = RegoPolicy::new("p")
        .with_module("fetch.rego", fetch)
        .map(|p| {
            let cm =
                object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
            p.try_evaluate(&cm, &PolicyContext::new())
        });
    // Either refused at load or at evaluation, never a request.
    match err {
        Err(e) | Ok(Err(e)) => assert!(e.to_string().contains("http.send"), "{e}"),
        Ok(Ok(v)) => panic!("http.send evaluated: {v:?}"),
    }
}

fn gatekeeper() -> RegoPolicy {
    RegoPolicy::new("gatekeeper")
        .with_gatekeeper_yaml(REQUIRED_LABELS, None)
        .unwrap()
        .with_gatekeeper_yaml(ALLOWED_REPOS, None)
        .unwrap()
}

#[test]
fn gatekeeper_templates_and_constraints_load() {
    let policy = gatekeeper();
    assert_eq!(policy.templates(), ["K8sRequiredLabels", "K8sAllowedRepos"]);
    assert_eq!(
        policy.constraints(),
        [
            "K8sRequiredLabels/deployments-need-team",
            "K8sRequiredLabels/prod-namespaces-need-cost-center",
            "K8sAllowedRepos/acme-repos-only"
        ]
    );
}

#[test]
fn gatekeeper_parameters_review_and_kind_match() {
    let policy = gatekeeper();
    let ctx = PolicyContext::new();

    let unlabelled = deployment("shop", json!({"team": "web"}), json!([]));
    let v = policy.evaluate(&unlabelled, &ctx);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].rule, "K8sRequiredLabels/deployments-need-team");
    assert_eq!(
        v[0].message,
        "Deployment shop/web must have labels [\"app.kubernetes.io/name\"] (operation CREATE)"
    );
    assert_eq!(v[0].enforcement, Enforcement::Deny);

    let labelled = deployment(
        "shop",
        json!({"team": "web", "app.kubernetes.io/name": "web"}),
        json!([]),
    );
    assert!(policy.evaluate(&labelled, &ctx).is_empty());

    // The review carries the context's operation and default namespace.
    let mut nameless = unlabelled.clone();
    nameless.as_map_mut()["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("namespace");
    let mut update = PolicyContext::new();
    update.operation = Operation::Update;
    update.namespace = Some("billing".to_owned());
    let v = policy.evaluate(&nameless, &update);
    assert!(v[0].message.contains("billing/web"), "{}", v[0].message);
    assert!(
        v[0].message.ends_with("(operation UPDATE)"),
        "{}",
        v[0].message
    );
}

#[test]
fn gatekeeper_excluded_namespaces_and_namespace_globs() {
    let policy = gatekeeper();
    let ctx = PolicyContext::new();
    let system = deployment("kube-system", json!({}), json!([]));
    assert!(
        policy.evaluate(&system, &ctx).is_empty(),
        "kube-* is excluded"
    );

    let outside = json!([{"name": "app", "image": "docker.io/nginx:1"}]);
    // `namespaces: [shop, pay*]`, enforcementAction warn.
    let v = policy.evaluate(&pod("shop", json!({}), outside.clone()), &ctx);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].rule, "K8sAllowedRepos/acme-repos-only");
    assert_eq!(v[0].enforcement, Enforcement::Warn);
    assert_eq!(
        v[0].message,
        "container <app> has an invalid image repo <docker.io/nginx:1>, allowed repos are [\"ghcr.io/acme/\"]"
    );
    assert!(
        policy
            .evaluate(&pod("blog", json!({}), outside.clone()), &ctx)
            .is_empty()
    );
    // labelSelector: tier NotIn [experimental].
    let experimental = pod("shop", json!({"tier": "experimental"}), outside.clone());
    assert!(policy.evaluate(&experimental, &ctx).is_empty());
}

#[test]
fn gatekeeper_namespace_selector_and_dryrun() {
    let policy = gatekeeper();
    let ctx = PolicyContext::new();
    let trusted = json!([{"name": "app", "image": "ghcr.io/acme/pay:1"}]);
    // `payments` is labelled env=prod in the fixture: the dryrun constraint applies.
    let v = policy.evaluate(&pod("payments", json!({}), trusted.clone()), &ctx);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(
        v[0].rule,
        "K8sRequiredLabels/prod-namespaces-need-cost-center"
    );
    assert_eq!(v[0].enforcement, Enforcement::Audit, "dryrun is audit");
    // `shop` was not supplied: it has no labels, so env=prod does not match.
    assert!(
        policy
            .evaluate(&pod("shop", json!({}), trusted.clone()), &ctx)
            .is_empty()
    );
    let labelled = pod("payments", json!({"cost-center": "42"}), trusted);
    assert!(policy.evaluate(&labelled, &ctx).is_empty());
}

#[test]
fn a_constraint_without_its_template_is_an_error() {
    let yaml = "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sMissing\nmetadata: {name: m}\nspec: {}\n";
    let policy = RegoPolicy::new("gk")
        .with_gatekeeper_yaml(yaml, None)
        .unwrap();
    let cm = object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
    let err = policy.try_evaluate(&cm, &PolicyContext::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string()
            .contains("no ConstraintTemplate defines kind K8sMissing"),
        "{err}"
    );
    // Through the Policy port it fails closed.
    let v = policy.evaluate(&cm, &PolicyContext::new());
    assert_eq!(v[0].rule, "rego-error");
    assert!(v[0].enforcement.blocks());
    let open = policy.fail_open(true).evaluate(&cm, &PolicyContext::new());
    assert_eq!(open[0].enforcement, Enforcement::Audit);
}

#[test]
fn gatekeeper_yaml_with_other_kinds_is_refused() {
    let err = RegoPolicy::new("gk")
        .with_gatekeeper_yaml(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
            Some(std::path::Path::new("policy.yaml")),
        )
        .unwrap_err();
    assert!(err.to_string().starts_with("policy.yaml:1"), "{err}");
    assert!(err.to_string().contains("is not a Gatekeeper"), "{err}");
}

#[test]
fn a_looping_policy_is_stopped_by_the_time_limit() {
    let explode = r#"package main
deny contains msg if {
    n := count([x | some a in numbers.range(1, 3000); some b in numbers.range(1, 3000); some c in numbers.range(1, 3000); x := a + b + c])
    n > 0
    msg := "unreachable in reasonable time"
}"#;
    let policy = RegoPolicy::new("explode")
        .time_limit(Duration::from_millis(50))
        .with_module("explode.rego", explode)
        .unwrap();
    let cm = object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
    let err = policy.try_evaluate(&cm, &PolicyContext::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("main.deny"), "{err}");
    assert!(err.to_string().contains("limit 50 ms"), "{err}");

    // Through the Policy port: a denying violation that says why.
    let v = policy.evaluate(&cm, &PolicyContext::new());
    assert_eq!(v.len(), 1);
    assert!(
        v[0].message.contains("loops or explodes"),
        "{}",
        v[0].message
    );
    // The engine is still usable afterwards.
    let err = policy.try_evaluate(&cm, &PolicyContext::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
}

#[test]
fn a_looping_template_is_stopped_too() {
    let yaml = r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: slow}
spec:
  crd: {spec: {names: {kind: Slow}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package slow
        violation[{"msg": "x"}] {
          count([x | x := numbers.range(1, 3000)[_] * numbers.range(1, 3000)[_] * numbers.range(1, 3000)[_]]) > 0
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: Slow
metadata: {name: slow}
"#;
    let policy = RegoPolicy::new("gk")
        .time_limit(Duration::from_millis(50))
        .with_gatekeeper_yaml(yaml, None)
        .unwrap();
    let cm = object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
    let err = policy.try_evaluate(&cm, &PolicyContext::new()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout, "{err}");
    assert!(err.to_string().contains("constraint Slow/slow"), "{err}");
}

#[test]
fn rego_joins_a_policy_set_with_native_policies() {
    let set = PolicySet::new()
        .with_policy(PodSecurity::baseline())
        .with_policy(conftest());
    let bad = deployment(
        "shop",
        json!({}),
        json!([{"name": "app", "image": "ghcr.io/acme/web:1", "securityContext": {"privileged": true},
                "resources": {"limits": {"memory": "1Gi"}}}]),
    );
    let result = set.check_object(&bad, &PolicyContext::new());
    assert!(!result.allowed);
    let policies: Vec<&str> = result
        .violations
        .iter()
        .map(|v| v.policy.as_ref())
        .collect();
    assert!(policies.contains(&"conftest"), "{policies:?}");
    assert!(policies.contains(&"pod-security"), "{policies:?}");
}

#[test]
fn deep_objects_do_not_crash_the_engine() {
    let mut value = json!("leaf");
    for _ in 0..300 {
        value = json!({"nested": value});
    }
    let deep = object(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}, "data": value}),
    );
    let policy = conftest();
    // Either evaluated or refused, never a panic.
    let _ = policy.try_evaluate(&deep, &PolicyContext::new());
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Arbitrary module text: loaded or refused with an error, no panic; a loaded
        /// module evaluates without panicking.
        #[test]
        fn arbitrary_modules_never_panic(body in "[a-z_ {}\\[\\]:=\"\n.0-9]{0,80}") {
            let source = format!("package main\n{body}");
            if let Ok(policy) = RegoPolicy::new("p").with_module("p.rego", &source) {
                let cm = object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
                let _ = policy.try_evaluate(&cm, &PolicyContext::new());
            }
        }

        /// Arbitrary Gatekeeper-ish YAML: loaded or refused, no panic.
        #[test]
        fn arbitrary_gatekeeper_yaml_never_panics(text in "(apiVersion: (templates|constraints).gatekeeper.sh/v1\nkind: [A-Za-z]{1,12}\nmetadata: \\{name: x\\}\n)?[a-zA-Z:{}\\[\\] \n,'-]{0,120}") {
            let _ = RegoPolicy::new("gk").with_gatekeeper_yaml(&text, None);
        }
    }
}

const UNIQUE_HOST: &str = include_str!("fixtures/rego/unique-ingress-host.yaml");

fn ingress(namespace: &str, name: &str, host: &str) -> Object {
    object(json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"rules": [{"host": host}]}
    }))
}

#[test]
fn referential_templates_read_the_inventory() {
    let ctx = PolicyContext::new();
    let shop = ingress("shop", "web", "shop.example.com");
    let blog = ingress("blog", "web", "blog.example.com");
    let copy = ingress("test", "shop-copy", "shop.example.com");
    let template = || {
        RegoPolicy::new("gk")
            .with_gatekeeper_yaml(UNIQUE_HOST, None)
            .unwrap()
    };
    // Without an inventory there is nothing to compare with.
    assert!(template().evaluate(&shop, &ctx).is_empty());
    let policy = template().with_inventory([&shop, &blog, &copy]).unwrap();
    let found = policy.evaluate(&shop, &ctx);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(
        found[0].message,
        "host shop.example.com is already served by Ingress test/shop-copy"
    );
    assert_eq!(found[0].rule, "UniqueIngressHost/one-ingress-per-host");
    assert_eq!(
        policy.evaluate(&copy, &ctx)[0].message,
        "host shop.example.com is already served by Ingress shop/web"
    );
    // An object is not its own duplicate.
    assert!(policy.evaluate(&blog, &ctx).is_empty());
    // A second call replaces the inventory rather than adding to it.
    let policy = policy.with_inventory([&shop, &blog]).unwrap();
    assert!(policy.evaluate(&shop, &ctx).is_empty());
    // Templates loaded after the inventory see it too.
    let later = RegoPolicy::new("gk")
        .with_inventory([&shop, &copy])
        .unwrap()
        .with_gatekeeper_yaml(UNIQUE_HOST, None)
        .unwrap();
    assert_eq!(later.evaluate(&shop, &ctx).len(), 1);
}

#[test]
fn the_inventory_has_gatekeepers_layout() {
    let ns = object(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "shop", "labels": {"env": "prod"}}}));
    let cm = object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}));
    let template = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: dumpinventory}
spec:
  crd: {spec: {names: {kind: DumpInventory}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package dumpinventory
        violation[{"msg": msg}] {
          data.inventory.cluster["v1"].Namespace.shop.metadata.labels.env == "prod"
          data.inventory.namespace["default"]["v1"].ConfigMap.cfg.metadata.name == "cfg"
          msg := "laid out as Gatekeeper does"
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: DumpInventory
metadata: {name: dump}
spec:
  match:
    namespaceSelector: {matchLabels: {env: prod}}
"#;
    let policy = RegoPolicy::new("gk")
        .with_gatekeeper_yaml(template, None)
        .unwrap()
        .with_inventory([&ns, &cm])
        .unwrap();
    // The Namespace in the inventory also labels `shop` for namespaceSelector.
    let found = policy.evaluate(&pod("shop", json!({}), json!([])), &PolicyContext::new());
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].message, "laid out as Gatekeeper does");
    assert!(
        policy
            .evaluate(&pod("other", json!({}), json!([])), &PolicyContext::new())
            .is_empty()
    );
}

/// Without the `cel` feature, a template's Rego runs and a CEL-only template is refused
/// (with `cel`, see `gatekeeper_cel.rs`).
#[cfg(not(feature = "cel"))]
#[test]
fn without_cel_the_rego_runs_and_cel_only_templates_are_refused() {
    let both = RegoPolicy::new("g")
        .with_gatekeeper_yaml(
            include_str!("fixtures/gatekeeper-cel/privileged.yaml"),
            None,
        )
        .unwrap();
    let p = pod(
        "shop",
        json!({}),
        json!([{"name": "app", "image": "app:1"}]),
    );
    let v = both.evaluate(&p, &PolicyContext::new());
    assert_eq!(v.len(), 2, "{v:#?}");
    assert!(v.iter().all(|v| v.message == "the Rego ran"));

    let err = RegoPolicy::new("g")
        .with_gatekeeper_yaml(
            include_str!("fixtures/gatekeeper-cel/required-labels.yaml"),
            None,
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("has only K8sNativeValidation (CEL) code"),
        "{err}"
    );
}

#[test]
fn deprecated_opa_builtins_still_work_for_v0_policies() {
    let module = r#"package legacy

deny[msg] {
    re_match("^(extensions|networking\\.k8s\\.io)$", input.apiVersion_group)
    any([false, true])
    not all([true, false])
    count(set_diff({"a", "b"}, {"b"})) == 1
    msg := "legacy built-ins ran"
}
"#;
    let p = RegoPolicy::new("legacy")
        .with_module("legacy.rego", module)
        .unwrap();
    let o = object(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "apiVersion_group": "networking.k8s.io"}),
    );
    let v = p.evaluate(&o, &PolicyContext::new());
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].message, "legacy built-ins ran");
    let other = object(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "apiVersion_group": "apps"}),
    );
    assert!(p.evaluate(&other, &PolicyContext::new()).is_empty());
}
