//! Kyverno mutate rules: strategic merge patches with anchors, JSON patches, foreach,
//! variables, auto-gen for Pod controllers, cascading rules, mutation before validation,
//! exceptions and failures.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

use idp_core::ports::Mutation;
use idp_core::{Object, Policy, PolicyContext};
use idp_policy::kyverno::{KyvernoPolicy, RuleOutcome};
use serde_json::{Value, json};

const MUTATE: &str = include_str!("fixtures/kyverno/mutate.yaml");

fn object(value: Value) -> Object {
    Object::from_value(value).unwrap()
}

fn pod(spec: Value) -> Object {
    object(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop"}, "spec": spec}))
}

fn deployment(pod_spec: Value) -> Object {
    object(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec}}}))
}

fn mutated(p: &KyvernoPolicy, o: &Object) -> Value {
    let mut o = o.clone();
    p.mutate(&mut o, &PolicyContext::new()).unwrap();
    o.to_value()
}

/// The outcome word of each mutate result, as `rule=word`.
fn outcomes(p: &KyvernoPolicy, o: &Object) -> Vec<String> {
    p.mutate_results(o, &PolicyContext::new())
        .unwrap()
        .1
        .iter()
        .map(|r| format!("{}={}", r.rule, r.outcome.word()))
        .collect()
}

#[test]
fn pod_defaults_fill_only_what_is_missing() {
    let p = KyvernoPolicy::from_yaml("kyverno", MUTATE, None).unwrap();
    let bare = pod(json!({"containers": [
        {"name": "app", "image": "registry.acme.internal/shop/web:1.2"},
        {"name": "proxy", "image": "envoy:latest", "securityContext": {"allowPrivilegeEscalation": true}}]}));
    let out = mutated(&p, &bare);
    assert_eq!(
        out["spec"]["securityContext"],
        json!({"runAsNonRoot": true, "runAsUser": 10001})
    );
    let c = &out["spec"]["containers"];
    // The conditional anchor selects the `:latest` container only.
    assert_eq!(c[1]["imagePullPolicy"], "Always");
    assert!(c[0].get("imagePullPolicy").is_none(), "{c}");
    // The add anchor keeps what the author wrote.
    assert_eq!(c[0]["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c[1]["securityContext"]["allowPrivilegeEscalation"], true);
    // The global anchor holds (one image is from the registry): the secret is added.
    assert_eq!(
        out["spec"]["imagePullSecrets"],
        json!([{"name": "acme-registry"}])
    );
    // The JSON patch creates the labels map, with the escaped key.
    assert_eq!(out["metadata"]["labels"]["acme.dev/pod"], "web");
    // Nothing the author set is lost.
    assert_eq!(c[0]["image"], "registry.acme.internal/shop/web:1.2");

    let words = outcomes(&p, &bare);
    assert_eq!(
        words,
        [
            "run-as-non-root=pass",
            "always-pull-latest=pass",
            "registry-secret=pass",
            "no-escalation=pass",
            "pod-name-label=pass"
        ]
    );

    // An author's own settings win; a public image gets no pull secret.
    let set = pod(json!({"securityContext": {"runAsNonRoot": false},
        "containers": [{"name": "app", "image": "nginx:1.27"}]}));
    let out = mutated(&p, &set);
    assert_eq!(out["spec"]["securityContext"]["runAsNonRoot"], false);
    assert_eq!(out["spec"]["securityContext"]["runAsUser"], 10001);
    assert!(out["spec"].get("imagePullSecrets").is_none(), "{out}");
    assert!(
        outcomes(&p, &set).contains(&"registry-secret=skip".to_owned()),
        "{:?}",
        outcomes(&p, &set)
    );
}

#[test]
fn strategic_rules_are_auto_generated_for_controllers_and_json_patches_are_not() {
    let p = KyvernoPolicy::from_yaml("kyverno", MUTATE, None).unwrap();
    let d = deployment(json!({"containers": [{"name": "app", "image": "envoy:latest"}]}));
    let out = mutated(&p, &d);
    let template = &out["spec"]["template"];
    assert_eq!(template["spec"]["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        template["spec"]["containers"][0]["imagePullPolicy"],
        "Always"
    );
    assert_eq!(
        template["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"],
        false
    );
    // The template's labels are kept; the JSON patch rule does not apply to controllers.
    assert_eq!(template["metadata"]["labels"]["app"], "web");
    assert!(out["metadata"].get("labels").is_none(), "{out}");
    let names = outcomes(&p, &d);
    assert!(
        names.contains(&"autogen-run-as-non-root=pass".to_owned()),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.contains("pod-name-label")),
        "{names:?}"
    );

    let cron = object(json!({"apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": {"name": "nightly", "namespace": "shop"},
        "spec": {"schedule": "0 2 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "job", "image": "tool:1"}]}}}}}}));
    let out = mutated(&p, &cron);
    assert_eq!(
        out.pointer("/spec/jobTemplate/spec/template/spec/securityContext/runAsUser"),
        Some(&json!(10001))
    );
    assert!(
        outcomes(&p, &cron).contains(&"autogen-cronjob-no-escalation=pass".to_owned()),
        "{:?}",
        outcomes(&p, &cron)
    );
}

#[test]
fn rules_cascade_and_preconditions_gate() {
    let p = KyvernoPolicy::from_yaml("kyverno", MUTATE, None).unwrap();
    let db = object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "orders-db", "namespace": "shop"}, "data": {"engine": "postgres"}}));
    let out = mutated(&p, &db);
    assert_eq!(out["metadata"]["labels"]["acme.dev/type"], "database");
    // Written by the second rule, which matched the first rule's label.
    assert_eq!(out["metadata"]["labels"]["acme.dev/backup"], "daily");

    let cache = object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cache", "namespace": "shop"}, "data": {"engine": "redis"}}));
    assert_eq!(outcomes(&p, &cache), ["database-type=skip"]);
    assert_eq!(mutated(&p, &cache), cache.to_value());

    // An owner's choice survives the add anchor.
    let opted_out = object(json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "scratch", "namespace": "shop", "labels": {"acme.dev/backup": "none"}},
        "data": {"engine": "mysql"}}));
    assert_eq!(
        mutated(&p, &opted_out)["metadata"]["labels"]["acme.dev/backup"],
        "none"
    );
}

#[test]
fn applying_the_strategic_rules_twice_equals_once() {
    let p = KyvernoPolicy::from_yaml("kyverno", MUTATE, None).unwrap();
    for o in [
        pod(json!({"containers": [{"name": "a", "image": "registry.acme.internal/a:latest"}]})),
        deployment(
            json!({"containers": [{"name": "a", "image": "b:1"}, {"name": "c", "image": "d:latest"}]}),
        ),
    ] {
        let once = mutated(&p, &o);
        let twice = mutated(&p, &Object::from_value(once.clone()).unwrap());
        assert_eq!(once, twice);
    }
}

const WITH_VALIDATE: &str = r#"
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: non-root}
spec:
  validationFailureAction: Enforce
  rules:
    - name: default-non-root
      match: {any: [{resources: {kinds: [Pod]}}]}
      mutate:
        patchStrategicMerge:
          spec:
            securityContext:
              +(runAsNonRoot): true
    - name: require-non-root
      match: {any: [{resources: {kinds: [Pod]}}]}
      validate:
        message: "Pods must run as non-root."
        pattern:
          spec:
            securityContext:
              runAsNonRoot: true
"#;

#[test]
fn validate_rules_see_the_mutated_object_as_at_admission() {
    let p = KyvernoPolicy::from_yaml("kyverno", WITH_VALIDATE, None).unwrap();
    let ctx = PolicyContext::new();
    let bare = pod(json!({"containers": [{"name": "a", "image": "a:1"}]}));
    assert!(p.evaluate(&bare, &ctx).is_empty());
    let words: Vec<String> = p
        .results(&bare, &ctx)
        .unwrap()
        .iter()
        .map(|r| format!("{}={}", r.rule, r.outcome.word()))
        .collect();
    assert_eq!(words, ["default-non-root=pass", "require-non-root=pass"]);
    // An explicit `false` is kept by the mutation and denied by the validation.
    let root = pod(json!({"securityContext": {"runAsNonRoot": false},
        "containers": [{"name": "a", "image": "a:1"}]}));
    let v = p.evaluate(&root, &ctx);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].rule, "non-root/require-non-root");
    assert!(v[0].enforcement.blocks());
}

fn single(rule: &str) -> String {
    format!(
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {{name: p}}\nspec:\n  rules:\n    - name: r\n      match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}\n{rule}"
    )
}

#[test]
fn failures_name_the_rule_and_deny_unless_ignored() {
    let rule = "      mutate:\n        patchStrategicMerge:\n          metadata:\n            labels:\n              team: \"{{ request.object.metadata.labels.owner }}\"\n";
    let p = KyvernoPolicy::from_yaml("kyverno", &single(rule), None).unwrap();
    let o = pod(json!({"containers": []}));
    let mut copy = o.clone();
    let err = p.mutate(&mut copy, &PolicyContext::new()).unwrap_err();
    let text = err.report();
    assert!(text.contains("mutate rule p/r"), "{text}");
    assert!(
        text.contains("request.object.metadata.labels.owner"),
        "{text}"
    );
    assert_eq!(copy.to_value(), o.to_value(), "left as it was");
    // As a policy, the failure denies.
    let v = p.evaluate(&o, &PolicyContext::new());
    assert_eq!(v.len(), 1);
    assert!(v[0].enforcement.blocks());

    let ignored = single(rule).replace("spec:\n", "spec:\n  failurePolicy: Ignore\n");
    let p = KyvernoPolicy::from_yaml("kyverno", &ignored, None).unwrap();
    let mut copy = o.clone();
    assert!(!p.mutate(&mut copy, &PolicyContext::new()).unwrap());
    assert!(matches!(
        &p.mutate_results(&o, &PolicyContext::new()).unwrap().1[0].outcome,
        RuleOutcome::Skip(why) if why.contains("failurePolicy Ignore")
    ));

    // A patch may not rename the object.
    let rename = "      mutate:\n        patchStrategicMerge:\n          metadata:\n            name: other\n";
    let p = KyvernoPolicy::from_yaml("kyverno", &single(rename), None).unwrap();
    let text = p
        .mutate(&mut o.clone(), &PolicyContext::new())
        .unwrap_err()
        .report();
    assert!(text.contains("changes metadata.name"), "{text}");
}

#[test]
fn foreach_json_patches_use_element_indexes_and_exceptions_waive() {
    let yaml = r#"
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: hosts}
spec:
  rules:
    - name: move-domain
      match: {any: [{resources: {kinds: [Ingress]}}]}
      mutate:
        foreach:
          - list: request.object.spec.tls[]
            foreach:
              - list: element.hosts
                patchesJson6902: |-
                  - op: replace
                    path: /spec/tls/{{elementIndex0}}/hosts/{{elementIndex1}}
                    value: "{{ replace_all('{{element}}', '.legacy.example', '.example') }}"
---
apiVersion: kyverno.io/v2
kind: PolicyException
metadata: {name: keep-legacy, namespace: shop}
spec:
  exceptions:
    - policyName: hosts
      ruleNames: [move-domain]
  match:
    any:
      - resources: {kinds: [Ingress], names: [legacy-*]}
"#;
    let p = KyvernoPolicy::from_yaml("kyverno", yaml, None).unwrap();
    let ingress = |name: &str| {
        object(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"tls": [{"hosts": ["a.legacy.example", "b.example"], "secretName": "t"},
                              {"hosts": ["c.legacy.example"]}]}}),
        )
    };
    let out = mutated(&p, &ingress("shop"));
    assert_eq!(
        out["spec"]["tls"],
        json!([{"hosts": ["a.example", "b.example"], "secretName": "t"}, {"hosts": ["c.example"]}])
    );
    let kept = ingress("legacy-shop");
    assert_eq!(mutated(&p, &kept), kept.to_value());
    assert_eq!(outcomes(&p, &kept), ["move-domain=skip"]);
}

#[test]
fn an_admission_review_round_trip_mutates_then_validates() {
    use idp_policy::admission::{AdmissionHandler, AdmissionRequest, Operation};
    use std::sync::Arc;

    let p = Arc::new(KyvernoPolicy::from_yaml("kyverno", WITH_VALIDATE, None).unwrap());
    let h = AdmissionHandler::new()
        .with_shared_policy(p.clone())
        .with_shared_mutation(p);
    let bare = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"containers": [{"name": "a", "image": "a:1"}]}});
    let response = h.mutate_request(&AdmissionRequest::new("1", Operation::Create, bare.clone()));
    assert!(response.allowed);
    let patch: json_patch::Patch =
        serde_json::from_value(response.decoded_patch().unwrap().unwrap()).unwrap();
    let mut after = bare.clone();
    json_patch::patch(&mut after, &patch).unwrap();
    assert_eq!(after["spec"]["securityContext"]["runAsNonRoot"], true);
    // The API server then sends the mutated object for validation: allowed.
    let response = h.validate_request(&AdmissionRequest::new("2", Operation::Create, after));
    assert!(response.allowed, "{response:?}");

    // A Pod that insists on root is left alone by the mutation and denied by validation.
    let mut root = bare;
    root["spec"]["securityContext"] = json!({"runAsNonRoot": false});
    let response = h.mutate_request(&AdmissionRequest::new("3", Operation::Create, root.clone()));
    assert!(response.allowed);
    let response = h.validate_request(&AdmissionRequest::new("4", Operation::Create, root));
    assert!(!response.allowed);
}

/// A JSON patch that appends is not idempotent: the validating webhook must check the
/// object the mutating webhook produced as given, not mutate it again.
#[test]
fn the_validating_webhook_checks_the_mutated_object_as_given() {
    use idp_policy::admission::{AdmissionHandler, AdmissionRequest, Operation};
    use idp_policy::kyverno::ValidateRules;
    use std::sync::Arc;

    const APPEND: &str = r#"apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: tolerations}
spec:
  validationFailureAction: Enforce
  rules:
    - name: add-toleration
      match: {any: [{resources: {kinds: [Pod]}}]}
      mutate:
        patchesJson6902: |-
          - op: add
            path: /spec/tolerations/-
            value: {key: dedicated, operator: Equal, value: shop, effect: NoSchedule}
    - name: one-toleration
      match: {any: [{resources: {kinds: [Pod]}}]}
      validate:
        message: at most one toleration
        deny:
          conditions:
            any:
              - key: "{{ length(request.object.spec.tolerations || `[]`) }}"
                operator: GreaterThan
                value: 1
"#;
    let p = Arc::new(KyvernoPolicy::from_yaml("kyverno", APPEND, None).unwrap());
    let pod = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"containers": [{"name": "a", "image": "a:1"}]}});
    let admitted = AdmissionHandler::new()
        .with_shared_policy(Arc::new(ValidateRules::new(p.clone())))
        .with_shared_mutation(p.clone());
    let response =
        admitted.mutate_request(&AdmissionRequest::new("1", Operation::Create, pod.clone()));
    assert!(response.allowed, "{response:?}");
    let patch: json_patch::Patch =
        serde_json::from_value(response.decoded_patch().unwrap().unwrap()).unwrap();
    let mut after = pod;
    json_patch::patch(&mut after, &patch).unwrap();
    assert_eq!(after["spec"]["tolerations"].as_array().unwrap().len(), 1);
    let response = admitted.validate_request(&AdmissionRequest::new(
        "2",
        Operation::Create,
        after.clone(),
    ));
    assert!(response.allowed, "{response:?}");

    // The whole policy as the validator would append a second toleration and deny.
    let remutating = AdmissionHandler::new().with_shared_policy(p.clone());
    let response = remutating.validate_request(&AdmissionRequest::new(
        "3",
        Operation::Create,
        after.clone(),
    ));
    assert!(!response.allowed);
    let message = response.status.unwrap().message.unwrap();
    assert!(message.contains("at most one toleration"), "{message}");

    // The validate rules alone still deny what breaks them.
    after["spec"]["tolerations"]
        .as_array_mut()
        .unwrap()
        .push(json!({"key": "other", "operator": "Exists"}));
    let response = admitted.validate_request(&AdmissionRequest::new("4", Operation::Create, after));
    assert!(!response.allowed);
}
