//! ValidatingAdmissionPolicies evaluated with CEL (feature `cel`): params, bindings,
//! match rules and conditions, variables, messages, actions, failure policy and cost.
#![cfg(feature = "cel")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use idp_core::model::{Enforcement, Operation};
use idp_core::{Object, Policy, PolicyContext};
use idp_policy::PolicySet;
use idp_policy::cel::CelPolicy;
use serde_json::{Value, json};

const REPLICA_LIMIT: &str = include_str!("fixtures/cel/replica-limit.yaml");

fn object(value: Value) -> Object {
    Object::from_value(value).unwrap()
}

fn deployment(namespace: &str, replicas: Option<i64>) -> Object {
    let mut spec = json!({"template": {"spec": {"containers": []}}});
    if let Some(r) = replicas {
        spec["replicas"] = json!(r);
    }
    object(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": namespace}, "spec": spec
    }))
}

fn replica_limit() -> CelPolicy {
    CelPolicy::from_yaml("vap", REPLICA_LIMIT, None).unwrap()
}

#[test]
fn the_fixture_loads() {
    let p = replica_limit();
    assert_eq!(p.policies(), ["replica-limit"]);
    assert_eq!(
        p.bindings(),
        ["replica-limit-prod", "replica-limit-elsewhere"]
    );
}

#[test]
fn params_by_name_and_message_expression_deny() {
    let p = replica_limit();
    let ctx = PolicyContext::new();
    let v = p.evaluate(&deployment("shop", Some(12)), &ctx);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].policy, "vap");
    assert_eq!(v[0].rule, "replica-limit/validations[0]");
    assert_eq!(v[0].message, "spec.replicas must be at most 10, got 12");
    assert_eq!(v[0].path.as_deref(), Some("spec.replicas"));
    assert_eq!(v[0].enforcement, Enforcement::Deny);
    assert!(p.evaluate(&deployment("shop", Some(10)), &ctx).is_empty());
}

#[test]
fn a_warn_binding_with_a_param_selector() {
    let p = replica_limit();
    let ctx = PolicyContext::new();
    let v = p.evaluate(&deployment("sandbox", Some(5)), &ctx);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].message, "spec.replicas must be at most 3, got 5");
    assert_eq!(v[0].enforcement, Enforcement::Warn);
    // A namespace that was not supplied has no labels: env NotIn [prod] holds.
    let v = p.evaluate(&deployment("unknown", Some(5)), &ctx);
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].enforcement, Enforcement::Warn);
    // Warnings do not block a set.
    let set = PolicySet::new().with_policy(replica_limit());
    assert!(
        set.check_object(&deployment("sandbox", Some(5)), &ctx)
            .allowed
    );
    assert!(
        !set.check_object(&deployment("shop", Some(50)), &ctx)
            .allowed
    );
}

#[test]
fn variables_default_when_a_field_is_missing() {
    let p = replica_limit();
    // No spec.replicas: the `replicas` variable is 1.
    assert!(
        p.evaluate(&deployment("sandbox", None), &PolicyContext::new())
            .is_empty()
    );
}

#[test]
fn match_conditions_and_match_constraints() {
    let p = replica_limit();
    let ctx = PolicyContext::new();
    // matchConditions: kube-* namespaces are skipped.
    assert!(
        p.evaluate(&deployment("kube-system", Some(50)), &ctx)
            .is_empty()
    );
    // resourceRules: only apps/v1 deployments.
    let sts = object(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "shop"}, "spec": {"replicas": 50}}));
    assert!(p.evaluate(&sts, &ctx).is_empty());
    // operations: CREATE and UPDATE (and apply); not DELETE.
    let mut delete = PolicyContext::new();
    delete.operation = Operation::Delete;
    assert!(
        p.evaluate(&deployment("shop", Some(50)), &delete)
            .is_empty()
    );
    let mut update = PolicyContext::new();
    update.operation = Operation::Update;
    assert_eq!(p.evaluate(&deployment("shop", Some(50)), &update).len(), 1);
}

const SIMPLE: &str = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: POLICY}
spec:
  FAILURE
  matchConstraints:
    resourceRules:
      - {apiGroups: ["*"], apiVersions: ["*"], operations: ["*"], resources: ["*"]}
    excludeResourceRules:
      - {apiGroups: [""], apiVersions: ["v1"], operations: ["*"], resources: ["secrets"]}
    objectSelector:
      matchExpressions: [{key: skip, operator: DoesNotExist}]
  validations:
    - expression: "EXPR"
      message: "static message"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: POLICY-binding}
spec: {policyName: POLICY, validationActions: [Audit, Warn]}
"#;

fn simple(expr: &str, failure: &str) -> CelPolicy {
    let yaml = SIMPLE
        .replace("POLICY", "simple")
        .replace("FAILURE", failure)
        .replace("EXPR", expr);
    CelPolicy::from_yaml("cel", &yaml, None).unwrap()
}

#[test]
fn static_messages_excludes_object_selectors_and_strongest_action() {
    let p = simple("object.metadata.name != 'bad'", "failurePolicy: Fail");
    let bad = object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bad"}}));
    let v = p.evaluate(&bad, &PolicyContext::new());
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].message, "static message");
    assert_eq!(
        v[0].enforcement,
        Enforcement::Warn,
        "[Audit, Warn] → the stronger, warn"
    );

    let secret = object(json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad"}}));
    assert!(
        p.evaluate(&secret, &PolicyContext::new()).is_empty(),
        "excluded resource"
    );
    let skipped = object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "bad", "labels": {"skip": "yes"}}}));
    assert!(
        p.evaluate(&skipped, &PolicyContext::new()).is_empty(),
        "objectSelector"
    );
}

#[test]
fn kubernetes_extension_functions_are_available() {
    let p = simple(
        "quantity(object.data.size).compareTo(quantity('1Gi')) <= 0 && object.data.name.lowerAscii() == object.data.name",
        "",
    );
    let ok = object(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"size": "512Mi", "name": "web"}}),
    );
    assert!(p.evaluate(&ok, &PolicyContext::new()).is_empty());
    let big = object(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "data": {"size": "2Gi", "name": "web"}}),
    );
    assert_eq!(p.evaluate(&big, &PolicyContext::new()).len(), 1);
}

#[test]
fn runtime_errors_follow_the_failure_policy() {
    let cm = object(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
    let fail = simple("object.spec.replicas > 1", "failurePolicy: Fail");
    let v = fail.evaluate(&cm, &PolicyContext::new());
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].rule, "simple/error");
    assert!(
        v[0].message.contains("spec.validations[0].expression"),
        "{}",
        v[0].message
    );
    assert!(
        v[0].message.contains("failurePolicy: Fail"),
        "{}",
        v[0].message
    );

    let ignore = simple("object.spec.replicas > 1", "failurePolicy: Ignore");
    assert!(ignore.evaluate(&cm, &PolicyContext::new()).is_empty());

    let not_bool = simple("object.metadata.name", "");
    let v = not_bool.evaluate(&cm, &PolicyContext::new());
    assert!(v[0].message.contains("not a boolean"), "{}", v[0].message);
}

#[test]
fn an_expression_over_its_cost_budget_is_refused_not_run() {
    // 2,000 items iterated three levels deep would be 8e9 steps: it must not run.
    let items: Vec<i64> = (0..2000).collect();
    let big = object(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "spec": {"items": items}}),
    );
    let expr = "object.spec.items.all(a, object.spec.items.all(b, object.spec.items.all(c, a + b + c >= 0)))";
    let p = simple(expr, "failurePolicy: Fail");
    let v = p.evaluate(&big, &PolicyContext::new());
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(
        v[0].message.contains("per-expression limit of 1000000"),
        "{}",
        v[0].message
    );
    assert!(v[0].enforcement.blocks() || v[0].enforcement == Enforcement::Warn);

    // The same expression over a small input is cheap and runs.
    let small = object(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
        "spec": {"items": [1, 2, 3]}}),
    );
    assert!(p.evaluate(&small, &PolicyContext::new()).is_empty());

    // Under failurePolicy: Ignore it is skipped.
    let ignore = simple(expr, "failurePolicy: Ignore");
    assert!(ignore.evaluate(&big, &PolicyContext::new()).is_empty());
}

#[test]
fn paths_through_variables_are_costed_by_what_the_variable_holds() {
    let expr =
        "variables.items.all(a, variables.items.all(b, variables.items.all(c, a + b + c >= 0)))";
    let p = simple(
        expr,
        "variables: [{name: items, expression: 'object.spec.items'}]",
    );
    // A 5,000-character annotation elsewhere in the object does not make three items
    // look like 5,000 (which would cost 1.25e11 and be refused).
    let small = object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c", "annotations": {"note": "x".repeat(5000)}},
        "spec": {"items": [1, 2, 3]}}));
    let v = p.evaluate(&small, &PolicyContext::new());
    assert!(v.is_empty(), "{v:#?}");
    // 2,000 items through the variable are still refused.
    let items: Vec<i64> = (0..2000).collect();
    let big = object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c"}, "spec": {"items": items}}));
    let v = p.evaluate(&big, &PolicyContext::new());
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(
        v[0].message.contains("per-expression limit"),
        "{}",
        v[0].message
    );
}

#[test]
fn missing_params_follow_parameter_not_found_action() {
    let yaml = REPLICA_LIMIT.replace(
        "name: prod-limit\n    namespace: default",
        "name: nope\n    namespace: default",
    );
    let p = CelPolicy::from_yaml("vap", &yaml, None).unwrap();
    let v = p.evaluate(&deployment("shop", Some(1)), &PolicyContext::new());
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].rule, "replica-limit/params");
    assert!(
        v[0].message
            .contains("no params found for binding replica-limit-prod"),
        "{}",
        v[0].message
    );

    let allow = yaml.replacen(
        "parameterNotFoundAction: Deny",
        "parameterNotFoundAction: Allow",
        1,
    );
    let p = CelPolicy::from_yaml("vap", &allow, None).unwrap();
    assert!(
        p.evaluate(&deployment("shop", Some(1)), &PolicyContext::new())
            .is_empty()
    );
}

#[test]
fn unbound_policies_do_nothing_as_in_kubernetes() {
    let only_policy = REPLICA_LIMIT.split("\n---\n").next().unwrap();
    let p = CelPolicy::from_yaml("vap", only_policy, None).unwrap();
    assert!(
        p.evaluate(&deployment("shop", Some(99)), &PolicyContext::new())
            .is_empty()
    );
}

#[test]
fn load_errors_name_the_field() {
    let bad_binding = "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {name: b}\nspec: {policyName: p, validationActions: [Block]}\n";
    let err =
        CelPolicy::from_yaml("c", bad_binding, Some(std::path::Path::new("vap.yaml"))).unwrap_err();
    assert!(err.to_string().starts_with("vap.yaml:1"), "{err}");
    assert!(err.to_string().contains("validationActions"), "{err}");

    let no_match = "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {name: p}\nspec: {validations: [{expression: 'true'}]}\n";
    let err = CelPolicy::from_yaml("c", no_match, None).unwrap_err();
    assert!(err.to_string().contains("matchConstraints"), "{err}");
}

#[test]
fn namespace_object_and_request_are_bound() {
    let yaml = r#"
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: ns}
spec:
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: ["v1"], operations: ["*"], resources: ["pods"]}]
  validations:
    - expression: "namespaceObject.metadata.labels.env == 'prod' && request.kind.kind == 'Pod' && request.resource.resource == 'pods' && oldObject == null"
      message: "wrong"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: ns}
spec: {policyName: ns, validationActions: [Deny]}
---
apiVersion: v1
kind: Namespace
metadata: {name: shop, labels: {env: prod}}
"#;
    let p = CelPolicy::from_yaml("cel", yaml, None).unwrap();
    let pod = object(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"}}),
    );
    assert!(
        p.evaluate(&pod, &PolicyContext::new()).is_empty(),
        "{:?}",
        p.evaluate(&pod, &PolicyContext::new())
    );
}

#[test]
fn deep_objects_are_refused_not_overflowed() {
    let mut value = json!(1);
    for _ in 0..400 {
        value = json!({"n": value});
    }
    let deep = object(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "d"}, "data": value}),
    );
    let p = simple("true", "");
    let err = p.try_evaluate(&deep, &PolicyContext::new()).unwrap_err();
    assert!(err.to_string().contains("nested deeper"), "{err}");
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Arbitrary expression text: a load error or a policy that evaluates, no panic.
        #[test]
        fn arbitrary_expressions_never_panic(expr in "[a-z.()\\[\\]'0-9 <>=!&|+*,_-]{0,40}") {
            let yaml = SIMPLE
                .replace("POLICY", "p")
                .replace("FAILURE", "")
                .replace("EXPR", &expr.replace('"', ""));
            if let Ok(policy) = CelPolicy::from_yaml("cel", &yaml, None) {
                let cm = object(json!({"apiVersion": "v1", "kind": "ConfigMap",
                    "metadata": {"name": "c"}, "data": {"a": "b"}}));
                let _ = policy.evaluate(&cm, &PolicyContext::new());
            }
        }

        /// Arbitrary YAML-ish text: parsed or refused, no panic.
        #[test]
        fn arbitrary_documents_never_panic(text in "(apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy(Binding)?\n)?[a-zA-Z:{}\\[\\] \n,'-]{0,120}") {
            let _ = CelPolicy::from_yaml("cel", &text, None);
        }
    }
}

const KYVERNO_CEL: &str = include_str!("fixtures/cel/kyverno-validating-policy.yaml");

/// (rule, message, action) of every violation.
fn found(p: &CelPolicy, o: &Object) -> Vec<(String, String, Enforcement)> {
    p.try_evaluate(o, &PolicyContext::new())
        .unwrap()
        .into_iter()
        .map(|v| (v.rule.into_owned(), v.message, v.enforcement))
        .collect()
}

fn pod_spec(privileged: bool, host_network: bool) -> Value {
    json!({"hostNetwork": host_network,
        "containers": [{"name": "app", "image": "app:1", "securityContext": {"privileged": privileged}}]})
}

#[test]
fn kyverno_validating_policies_need_no_binding() {
    let p = CelPolicy::from_yaml("kyverno", KYVERNO_CEL, None).unwrap();
    assert_eq!(
        p.policies(),
        [
            "require-app-label",
            "autogen-require-app-label",
            "autogen-cronjobs-require-app-label",
            "no-host-network",
            "autogen-no-host-network",
            "autogen-cronjobs-no-host-network"
        ]
    );
    let pod = object(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop"}, "spec": pod_spec(true, true)}));
    assert_eq!(
        found(&p, &pod),
        [
            (
                "require-app-label/validations[0]".to_owned(),
                "pod template of web needs an app label".to_owned(),
                Enforcement::Deny
            ),
            (
                "require-app-label/validations[1]".to_owned(),
                "no privileged containers".to_owned(),
                Enforcement::Deny
            ),
            (
                "no-host-network/validations[0]".to_owned(),
                "host networking is not allowed in shop".to_owned(),
                Enforcement::Warn
            ),
        ]
    );
    // The namespaced policy stays in its namespace.
    let elsewhere = object(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "lab", "labels": {"app": "web"}}, "spec": pod_spec(false, true)}));
    assert!(found(&p, &elsewhere).is_empty());
}

#[test]
fn kyverno_validating_policies_check_pod_templates_of_controllers() {
    let p = CelPolicy::from_yaml("kyverno", KYVERNO_CEL, None).unwrap();
    // The template's labels and spec are read; the Deployment's own name stays its own.
    let deploy = object(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "cart", "namespace": "shop", "labels": {"app": "cart"}},
        "spec": {"template": {"metadata": {"labels": {"tier": "web"}}, "spec": pod_spec(true, true)}}}));
    assert_eq!(
        found(&p, &deploy),
        [
            (
                "autogen-require-app-label/validations[0]".to_owned(),
                "pod template of cart needs an app label".to_owned(),
                Enforcement::Deny
            ),
            (
                "autogen-require-app-label/validations[1]".to_owned(),
                "no privileged containers".to_owned(),
                Enforcement::Deny
            ),
            (
                "autogen-no-host-network/validations[0]".to_owned(),
                "host networking is not allowed in shop".to_owned(),
                Enforcement::Warn
            ),
        ]
    );
    // A StatefulSet is not among the namespaced policy's controllers.
    let mut sts = deploy.to_value();
    sts["kind"] = json!("StatefulSet");
    let rules: Vec<String> = found(&p, &object(sts)).into_iter().map(|f| f.0).collect();
    assert_eq!(
        rules,
        [
            "autogen-require-app-label/validations[0]",
            "autogen-require-app-label/validations[1]"
        ]
    );
    // A CronJob: the template under jobTemplate.
    let cron = object(json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "shop"},
        "spec": {"jobTemplate": {"spec": {"template": {"metadata": {"labels": {"app": "n"}}, "spec": pod_spec(false, false)}}}}}));
    assert!(found(&p, &cron).is_empty());
}

#[test]
fn kyverno_validating_policies_refuse_what_they_cannot_run() {
    let cases = [
        (
            KYVERNO_CEL.replacen("  validationActions: [Deny]\n", "", 1),
            "spec.validationActions is required",
        ),
        (
            KYVERNO_CEL.replacen("validationActions: [Deny]", "validationActions: [Block]", 1),
            "\"Block\" is not Deny, Warn or Audit",
        ),
        (
            KYVERNO_CEL.replacen(
                "validationActions: [Deny]",
                "validationActions: [Deny]\n  evaluation: {mode: JSON}",
                1,
            ),
            "spec.evaluation.mode \"JSON\"",
        ),
        (
            KYVERNO_CEL.replacen(
                "controllers: [deployments, cronjobs]",
                "controllers: [pods]",
                1,
            ),
            "controllers entry \"pods\"",
        ),
        (
            KYVERNO_CEL.replacen("kind: ValidatingPolicy", "kind: MutatingPolicy", 1),
            "MutatingPolicy require-app-label: only ValidatingPolicy",
        ),
        (
            KYVERNO_CEL.replacen("\"'app' in variables.labels\"", "\"'app' in\"", 1),
            "spec.validations[0].expression is not valid CEL",
        ),
    ];
    for (yaml, want) in cases {
        let err = CelPolicy::from_yaml("kyverno", &yaml, Some(std::path::Path::new("vpol.yaml")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("vpol.yaml") && err.contains(want),
            "{want}: {err}"
        );
    }
}

const KYVERNO_EXCEPTIONS: &str = include_str!("fixtures/cel/kyverno-policy-exception.yaml");

/// The policies and their exceptions, the exceptions read first and from another text.
fn with_exceptions(exceptions: &str) -> CelPolicy {
    let mut p = CelPolicy::from_yaml("kyverno", exceptions, None).unwrap();
    p.add_yaml(KYVERNO_CEL, None).unwrap();
    p
}

/// A Deployment `name` in `namespace`, its template privileged, on the host network and
/// without an app label.
fn bad_deployment(name: &str, namespace: &str, labels: &Value) -> Object {
    object(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"template": {"metadata": {"labels": {"tier": "web"}}, "spec": pod_spec(true, true)}}}))
}

fn rules(p: &CelPolicy, o: &Object) -> Vec<String> {
    found(p, o).into_iter().map(|f| f.0).collect()
}

#[test]
fn kyverno_exceptions_skip_the_policy_and_its_autogen_variants() {
    let p = with_exceptions(KYVERNO_EXCEPTIONS);
    let plain = CelPolicy::from_yaml("kyverno", KYVERNO_CEL, None).unwrap();
    let cart = bad_deployment("cart", "shop", &json!({}));
    assert_eq!(
        rules(&plain, &cart),
        [
            "autogen-require-app-label/validations[0]",
            "autogen-require-app-label/validations[1]",
            "autogen-no-host-network/validations[0]"
        ]
    );
    // The exception names the policy as written; it covers the Deployment variant.
    assert_eq!(rules(&p, &cart), ["autogen-no-host-network/validations[0]"]);
    // And the Pod the policy was written for.
    let pod = object(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "cart", "namespace": "shop"}, "spec": pod_spec(true, false)}));
    assert_eq!(rules(&plain, &pod).len(), 2);
    assert!(rules(&p, &pod).is_empty());
    // And the CronJob variant.
    let cron = object(json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "cart", "namespace": "shop"},
        "spec": {"jobTemplate": {"spec": {"template": {"spec": pod_spec(true, false)}}}}}));
    assert_eq!(rules(&plain, &cron).len(), 2);
    assert!(rules(&p, &cron).is_empty());
}

#[test]
fn kyverno_exceptions_whose_conditions_do_not_hold_change_nothing() {
    let p = with_exceptions(KYVERNO_EXCEPTIONS);
    // Another name: the first condition is false.
    let web = bad_deployment("web", "shop", &json!({}));
    assert_eq!(rules(&p, &web).len(), 3);
    // The cart elsewhere: the second condition is false.
    let lab = bad_deployment("cart", "lab", &json!({}));
    assert_eq!(
        rules(&p, &lab),
        [
            "autogen-require-app-label/validations[0]",
            "autogen-require-app-label/validations[1]"
        ]
    );
}

#[test]
fn kyverno_exceptions_apply_to_the_policy_they_name_by_name_and_kind() {
    let cart = bad_deployment("cart", "shop", &json!({}));
    let other_name = with_exceptions(&KYVERNO_EXCEPTIONS.replacen(
        "{name: require-app-label, kind: ValidatingPolicy}",
        "{name: require-team-label, kind: ValidatingPolicy}",
        1,
    ));
    assert_eq!(rules(&other_name, &cart).len(), 3);
    // The name of a ValidatingPolicy, with the kind of the other policy kind.
    let other_kind = with_exceptions(&KYVERNO_EXCEPTIONS.replacen(
        "{name: require-app-label, kind: ValidatingPolicy}",
        "{name: require-app-label, kind: NamespacedValidatingPolicy}",
        1,
    ));
    assert_eq!(rules(&other_kind, &cart).len(), 3);
    // An exception naming an auto-generated variant names no policy Kyverno knows.
    let variant = with_exceptions(&KYVERNO_EXCEPTIONS.replacen(
        "{name: require-app-label, kind: ValidatingPolicy}",
        "{name: autogen-require-app-label, kind: ValidatingPolicy}",
        1,
    ));
    assert_eq!(rules(&variant, &cart).len(), 3);
}

#[test]
fn kyverno_exceptions_cover_objects_of_every_namespace_as_in_kyverno() {
    // The exceptions live in `exceptions`; the objects they cover are in `shop`.
    let p = with_exceptions(KYVERNO_EXCEPTIONS);
    let labelled = bad_deployment("web", "shop", &json!({"host-network": "yes"}));
    assert_eq!(
        rules(&p, &labelled),
        [
            "autogen-require-app-label/validations[0]",
            "autogen-require-app-label/validations[1]"
        ]
    );
    // An exception without a namespace is read too.
    let p = with_exceptions(&KYVERNO_EXCEPTIONS.replacen(
        "{name: legacy-cart, namespace: exceptions}",
        "{name: legacy-cart}",
        1,
    ));
    assert_eq!(
        rules(&p, &bad_deployment("cart", "shop", &json!({}))),
        ["autogen-no-host-network/validations[0]"]
    );
}

#[test]
fn kyverno_exceptions_are_reported_as_skip_or_pass() {
    use idp_policy::cel::{Excepted, PolicyResult};
    let p = with_exceptions(KYVERNO_EXCEPTIONS);
    let ctx = PolicyContext::new();
    let cart = bad_deployment("cart", "shop", &json!({"host-network": "yes"}));
    let results = p.results(&cart, &ctx).unwrap();
    assert_eq!(
        results["require-app-label"],
        PolicyResult::Excepted(Excepted {
            exceptions: vec!["exceptions/legacy-cart".to_owned()],
            pass: false
        })
    );
    assert_eq!(results["require-app-label"].word(), "skip");
    // `reportResult: pass`.
    assert_eq!(results["no-host-network"].word(), "pass");
    // `outcomes` leaves the skipped policy out (a skip), and counts the other as passed.
    let outcomes = p.outcomes(&cart, &ctx).unwrap();
    assert_eq!(outcomes.keys().collect::<Vec<_>>(), ["no-host-network"]);
    assert!(outcomes["no-host-network"].is_empty());
    // Without exceptions that hold, the policies are checked.
    let web = bad_deployment("web", "shop", &json!({}));
    let results = p.results(&web, &ctx).unwrap();
    assert_eq!(results["require-app-label"].word(), "fail");
    assert!(matches!(&results["no-host-network"], PolicyResult::Checked(v) if v.len() == 1));
}

#[test]
fn kyverno_exceptions_expire() {
    let cart = bad_deployment("cart", "shop", &json!({}));
    let p = with_exceptions(&KYVERNO_EXCEPTIONS.replacen(
        "  policyRefs:\n    - {name: require-app-label",
        "  expiresAt: '2030-01-01T00:00:00Z'\n  policyRefs:\n    - {name: require-app-label",
        1,
    ));
    let at = |t: &str| PolicyContext::new().at(t.parse().unwrap());
    let count = |ctx: &PolicyContext| p.try_evaluate(&cart, ctx).unwrap().len();
    assert_eq!(count(&at("2029-12-31T23:59:59Z")), 1);
    assert_eq!(count(&at("2030-01-01T00:00:01Z")), 3);
}

#[test]
fn kyverno_exception_errors_follow_the_policy_failure_policy() {
    let broken = KYVERNO_EXCEPTIONS.replacen(
        "\"object.metadata.name == 'cart'\"",
        "\"object.metadata.name.size()\"",
        1,
    );
    let cart = bad_deployment("cart", "shop", &json!({}));
    // Fail (the default): the policy reports the error and is not checked.
    let p = with_exceptions(&broken);
    let found = found(&p, &cart);
    assert_eq!(found[0].0, "autogen-require-app-label/error", "{found:?}");
    assert!(
        found[0]
            .1
            .contains("PolicyException exceptions/legacy-cart")
            && found[0].1.contains("\"the-cart\"")
            && found[0].1.contains("not a boolean"),
        "{found:?}"
    );
    assert_eq!(found.len(), 2, "{found:?}");
    // Ignore: the exception is left out, and the policy checked.
    let mut p = CelPolicy::from_yaml("kyverno", &broken, None).unwrap();
    p.add_yaml(
        &KYVERNO_CEL.replacen(
            "validationActions: [Deny]",
            "validationActions: [Deny]\n  failurePolicy: Ignore",
            1,
        ),
        None,
    )
    .unwrap();
    assert_eq!(rules(&p, &cart).len(), 3);
    // A false condition wins over an error.
    let false_first = broken.replacen("\"request.namespace == 'shop'\"", "\"false\"", 1);
    assert_eq!(rules(&with_exceptions(&false_first), &cart).len(), 3);
}

#[test]
fn kyverno_exceptions_with_allowed_values_let_the_policy_decide() {
    let policy = r#"
apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: allowed-registries}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]
  validations:
    - expression: >-
        object.spec.containers.all(c, c.image.startsWith('registry.shop/')
          || c.image in exceptions.allowedImages
          || exceptions.allowedValues.exists(v, c.image.startsWith(v)))
      message: images come from registry.shop
---
apiVersion: policies.kyverno.io/v1
kind: PolicyException
metadata: {name: vendor-images, namespace: shop}
spec:
  policyRefs: [{name: allowed-registries, kind: ValidatingPolicy}]
  images: ["vendor.io/agent:1"]
  allowedValues: ["mirror.shop/"]
"#;
    let p = CelPolicy::from_yaml("kyverno", policy, None).unwrap();
    let deploy = |images: &[&str]| {
        let containers: Vec<Value> = images
            .iter()
            .map(|i| json!({"name": "c", "image": i}))
            .collect();
        object(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"template": {"spec": {"containers": containers}}}}))
    };
    assert!(
        rules(
            &p,
            &deploy(&["registry.shop/a", "vendor.io/agent:1", "mirror.shop/b"])
        )
        .is_empty()
    );
    assert_eq!(
        rules(&p, &deploy(&["vendor.io/agent:2"])),
        ["autogen-allowed-registries/validations[0]"]
    );
    // The policy is checked, not skipped.
    let results = p
        .results(&deploy(&["registry.shop/a"]), &PolicyContext::new())
        .unwrap();
    assert_eq!(results["allowed-registries"].word(), "pass");
    // Without an exception that holds, the lists are empty.
    let p = CelPolicy::from_yaml(
        "kyverno",
        &policy.replacen(
            "  images:",
            "  matchConditions: [{name: never, expression: 'false'}]\n  images:",
            1,
        ),
        None,
    )
    .unwrap();
    assert_eq!(rules(&p, &deploy(&["vendor.io/agent:1"])).len(), 1);
}

#[test]
fn kyverno_exceptions_refuse_what_they_cannot_honour() {
    let cases = [
        (
            KYVERNO_EXCEPTIONS.replacen(
                "  policyRefs:\n    - {name: require-app-label, kind: ValidatingPolicy}\n",
                "",
                1,
            ),
            "PolicyException exceptions/legacy-cart: spec.policyRefs is required",
        ),
        (
            KYVERNO_EXCEPTIONS.replacen(", kind: ValidatingPolicy}", "}", 1),
            "PolicyException exceptions/legacy-cart: spec.policyRefs[0].kind is required",
        ),
        (
            KYVERNO_EXCEPTIONS.replacen(
                "  matchConditions:",
                "  match: {any: []}\n  matchConditions:",
                1,
            ),
            "PolicyException exceptions/legacy-cart: spec.match is not a field",
        ),
        (
            KYVERNO_EXCEPTIONS.replacen("reportResult: pass", "reportResult: fail", 1),
            "PolicyException exceptions/shop-network: spec.reportResult \"fail\" is not skip or pass",
        ),
        (
            KYVERNO_EXCEPTIONS.replacen(
                "  matchConditions:",
                "  expiresAt: tomorrow\n  matchConditions:",
                1,
            ),
            "PolicyException exceptions/legacy-cart: spec.expiresAt \"tomorrow\"",
        ),
        (
            KYVERNO_EXCEPTIONS.replacen(
                "  matchConditions:",
                "  evaluationMode: JSON\n  matchConditions:",
                1,
            ),
            "PolicyException exceptions/legacy-cart: spec.evaluationMode \"JSON\"",
        ),
        (
            KYVERNO_EXCEPTIONS.replacen(
                "\"request.namespace == 'shop'\"",
                "\"request.namespace ==\"",
                1,
            ),
            "PolicyException exceptions/legacy-cart: spec.matchConditions[1].expression is not valid CEL",
        ),
        (
            KYVERNO_EXCEPTIONS.replacen("  reportResult: pass", "  images: [1]", 1),
            "PolicyException exceptions/shop-network: spec.images entry 1 is not a string",
        ),
    ];
    for (yaml, want) in cases {
        let err = CelPolicy::from_yaml("kyverno", &yaml, Some(std::path::Path::new("polex.yaml")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("polex.yaml") && err.contains(want),
            "{want}: {err}"
        );
    }
}
