//! Kyverno generate rules: data, clone and cloneList, variables, Kyverno's labels,
//! foreach, preconditions, exceptions, namespaced Policies, and the errors for missing sources
//! and unsupported fields. Validate and mutate results leave generate rules alone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

use idp_core::{Object, PolicyContext};
use idp_policy::kyverno::{KyvernoPolicy, RuleOutcome};
use serde_json::{Value, json};

const GENERATE: &str = include_str!("fixtures/kyverno/generate.yaml");

fn object(value: Value) -> Object {
    Object::from_value(value).unwrap()
}

fn namespace(name: &str, labels: Value) -> Object {
    object(json!({"apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": name, "labels": labels}}))
}

fn policy() -> KyvernoPolicy {
    KyvernoPolicy::from_yaml("kyverno", GENERATE, None).unwrap()
}

/// Each result as `policy/rule=word`.
fn outcomes(p: &KyvernoPolicy, o: &Object) -> Vec<String> {
    p.generate_results(o, &PolicyContext::new())
        .unwrap()
        .1
        .iter()
        .map(|r| format!("{}/{}={}", r.policy, r.rule, r.outcome.word()))
        .collect()
}

/// The generated objects as `Kind namespace/name`.
fn generated(p: &KyvernoPolicy, o: &Object) -> Vec<String> {
    p.generate_results(o, &PolicyContext::new())
        .unwrap()
        .0
        .iter()
        .map(|g| {
            format!(
                "{} {}/{}",
                g.kind(),
                g.namespace().unwrap_or_default(),
                g.name()
            )
        })
        .collect()
}

fn find<'a>(objects: &'a [Object], kind: &str, name: &str) -> &'a Object {
    objects
        .iter()
        .find(|o| o.kind() == kind && o.name() == name)
        .unwrap_or_else(|| panic!("no {kind} {name} among {objects:?}"))
}

#[test]
fn a_new_namespace_gets_a_network_policy_a_quota_and_a_pull_secret() {
    let p = policy();
    let ns = namespace("shop", json!({"team": "cart"}));
    let (objects, results) = p.generate_results(&ns, &PolicyContext::new()).unwrap();
    assert_eq!(
        results
            .iter()
            .map(|r| format!("{}/{}={}", r.policy, r.rule, r.outcome.word()))
            .collect::<Vec<_>>(),
        [
            "namespace-defaults/default-deny=pass",
            "namespace-defaults/quota=pass",
            "sync-secrets/pull-secret=pass"
        ]
    );
    let netpol = find(&objects, "NetworkPolicy", "default-deny").to_value();
    assert_eq!(netpol["apiVersion"], "networking.k8s.io/v1");
    assert_eq!(netpol["metadata"]["namespace"], "shop");
    assert_eq!(
        netpol["spec"],
        json!({"podSelector": {}, "policyTypes": ["Ingress", "Egress"]})
    );
    let labels = &netpol["metadata"]["labels"];
    assert_eq!(
        labels,
        &json!({
            "app.kubernetes.io/managed-by": "kyverno",
            "generate.kyverno.io/policy-name": "namespace-defaults",
            "generate.kyverno.io/policy-namespace": "",
            "generate.kyverno.io/rule-name": "default-deny",
            "generate.kyverno.io/trigger-group": "",
            "generate.kyverno.io/trigger-version": "v1",
            "generate.kyverno.io/trigger-kind": "Namespace",
            "generate.kyverno.io/trigger-namespace": "",
            "generate.kyverno.io/trigger-name": "shop",
        })
    );

    // Variables in the name and the content; the context variable's default.
    let quota = find(&objects, "ResourceQuota", "shop-quota").to_value();
    assert_eq!(quota["metadata"]["labels"]["tier"], "standard");
    assert_eq!(quota["spec"]["hard"]["requests.memory"], "8Gi");

    // The clone: the source's content and labels, not what the API server set on it.
    let secret = find(&objects, "Secret", "regcred").to_value();
    assert_eq!(secret["metadata"]["namespace"], "shop");
    assert_eq!(secret["type"], "kubernetes.io/dockerconfigjson");
    assert_eq!(secret["data"][".dockerconfigjson"], "eyJhdXRocyI6e319");
    assert_eq!(secret["metadata"]["labels"]["team"], "platform");
    assert_eq!(
        secret["metadata"]["labels"]["generate.kyverno.io/source-namespace"],
        "platform"
    );
    for field in ["uid", "resourceVersion", "creationTimestamp"] {
        assert!(secret["metadata"].get(field).is_none(), "{field}: {secret}");
    }
}

#[test]
fn clone_list_copies_the_selected_objects_under_their_own_names() {
    let p = policy();
    let ns = namespace("reports", json!({"shared": "yes"}));
    let mut got = generated(&p, &ns);
    got.sort();
    assert_eq!(
        got,
        [
            "ConfigMap reports/endpoints",
            "NetworkPolicy reports/default-deny",
            "ResourceQuota reports/reports-quota",
            "Secret reports/api-token",
            "Secret reports/regcred",
        ]
    );
    assert!(outcomes(&p, &ns).contains(&"copy-shared/shared=pass".to_owned()));
}

#[test]
fn preconditions_skip_exceptions_waive_and_exclude_leaves_out() {
    let p = policy();
    let sandbox = namespace("play", json!({"tier": "sandbox"}));
    assert_eq!(
        outcomes(&p, &sandbox),
        [
            "namespace-defaults/default-deny=pass",
            "namespace-defaults/quota=skip",
            "sync-secrets/pull-secret=pass"
        ]
    );
    assert!(
        !generated(&p, &sandbox)
            .iter()
            .any(|g| g.starts_with("ResourceQuota"))
    );

    let legacy = namespace("legacy", json!({}));
    let (_, results) = p.generate_results(&legacy, &PolicyContext::new()).unwrap();
    let quota = results.iter().find(|r| r.rule == "quota").unwrap();
    assert!(
        matches!(&quota.outcome, RuleOutcome::Skip(why) if why.contains("PolicyException")),
        "{:?}",
        quota.outcome
    );

    // exclude: kube-* Namespaces get no NetworkPolicy, and no result for that rule.
    let system = namespace("kube-extra", json!({}));
    assert!(
        !outcomes(&p, &system)
            .iter()
            .any(|o| o.contains("default-deny"))
    );

    // A trigger of another kind matches no generate rule.
    let cm = object(
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}}),
    );
    assert!(outcomes(&p, &cm).is_empty());
}

#[test]
fn validate_and_mutate_results_leave_generate_rules_alone() {
    let p = policy();
    let ns = namespace("shop", json!({}));
    assert!(p.results(&ns, &PolicyContext::new()).unwrap().is_empty());
    let (after, results) = p.apply(&ns, &PolicyContext::new()).unwrap();
    assert!(results.is_empty());
    assert_eq!(after.to_value(), ns.to_value());
    assert!(p.rules().contains(&"sync-secrets/pull-secret".to_owned()));
}

#[test]
fn generate_rules_on_pods_are_not_auto_generated_for_controllers() {
    let p = KyvernoPolicy::from_yaml(
        "k",
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: per-pod\n      match: {any: [{resources: {kinds: [Pod]}}]}\n      generate:\n        apiVersion: v1\n        kind: ConfigMap\n        name: '{{request.object.metadata.name}}-info'\n        namespace: '{{request.object.metadata.namespace}}'\n        data: {data: {pod: '{{request.object.metadata.name}}'}}\n",
        None,
    )
    .unwrap();
    let pod = object(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"}, "spec": {}}),
    );
    let (objects, _) = p.generate_results(&pod, &PolicyContext::new()).unwrap();
    assert_eq!(objects[0].name(), "web-info");
    assert_eq!(objects[0].to_value()["data"]["pod"], "web");
    let deploy = object(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"template": {"spec": {}}}}),
    );
    let (objects, results) = p.generate_results(&deploy, &PolicyContext::new()).unwrap();
    assert!(objects.is_empty() && results.is_empty(), "{results:?}");
}

#[test]
fn a_missing_clone_source_is_an_error_naming_it() {
    // The policies without the objects they clone.
    let policies: String = GENERATE
        .split("\n---\n")
        .filter(|doc| doc.contains("kind: ClusterPolicy"))
        .collect::<Vec<_>>()
        .join("\n---\n");
    let p = KyvernoPolicy::from_yaml("kyverno", &policies, None).unwrap();
    let (objects, results) = p
        .generate_results(
            &namespace("shop", json!({"shared": "yes"})),
            &PolicyContext::new(),
        )
        .unwrap();
    let clone = results.iter().find(|r| r.rule == "pull-secret").unwrap();
    let RuleOutcome::Error(v) = &clone.outcome else {
        panic!("{:?}", clone.outcome)
    };
    assert!(
        v[0].message
            .contains("v1 Secret platform/regcred was not given with the policies"),
        "{}",
        v[0].message
    );
    let list = results.iter().find(|r| r.rule == "shared").unwrap();
    assert_eq!(list.outcome.word(), "error");
    // The data rules still generate.
    assert!(objects.iter().any(|o| o.kind() == "NetworkPolicy"));
}

#[test]
fn a_variable_without_a_value_is_an_error() {
    let p = KyvernoPolicy::from_yaml(
        "k",
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: r\n      match: {any: [{resources: {kinds: [Namespace]}}]}\n      generate:\n        apiVersion: v1\n        kind: ConfigMap\n        name: '{{request.object.metadata.labels.owner}}'\n        namespace: '{{request.object.metadata.name}}'\n        data: {}\n",
        None,
    )
    .unwrap();
    let (objects, results) = p
        .generate_results(&namespace("shop", json!({})), &PolicyContext::new())
        .unwrap();
    assert!(objects.is_empty());
    let RuleOutcome::Error(v) = &results[0].outcome else {
        panic!("{:?}", results[0].outcome)
    };
    assert!(v[0].message.contains("generate.name"), "{}", v[0].message);
}

#[test]
fn a_namespaced_policy_generates_only_in_its_namespace() {
    let p = KyvernoPolicy::from_yaml(
        "k",
        "apiVersion: kyverno.io/v1\nkind: Policy\nmetadata: {name: p, namespace: shop}\nspec:\n  rules:\n    - name: r\n      match: {any: [{resources: {kinds: [ConfigMap]}}]}\n      generate:\n        apiVersion: v1\n        kind: ConfigMap\n        name: '{{request.object.metadata.name}}-copy'\n        namespace: '{{request.object.data.to}}'\n        data: {}\n",
        None,
    )
    .unwrap();
    let cm = |to: &str| {
        object(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"}, "data": {"to": to}}),
        )
    };
    let (objects, results) = p
        .generate_results(&cm("shop"), &PolicyContext::new())
        .unwrap();
    assert_eq!(results[0].outcome.word(), "pass");
    assert_eq!(
        objects[0].labels()["generate.kyverno.io/policy-namespace"],
        "shop"
    );
    let (objects, results) = p
        .generate_results(&cm("other"), &PolicyContext::new())
        .unwrap();
    assert!(objects.is_empty());
    assert_eq!(results[0].outcome.word(), "error");
}

#[test]
fn unsupported_and_malformed_generate_rules_are_refused_naming_the_field() {
    let rule = |generate: &str| {
        format!(
            "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {{name: p}}\nspec:\n  rules:\n    - name: r\n      match: {{any: [{{resources: {{kinds: [Namespace]}}}}]}}\n{generate}"
        )
    };
    for (generate, want) in [
        (
            "      generate:\n        foreach: [{list: request.object.spec.items, foreach: [{list: element}]}]\n",
            "spec.rules[0] (r).generate.foreach[0].foreach: generate foreach entries do not nest",
        ),
        (
            "      generate:\n        foreach: [{list: 'request.object.[', apiVersion: v1, kind: ConfigMap, name: c, data: {}}]\n",
            "spec.rules[0] (r).generate.foreach[0].list",
        ),
        (
            "      generate: {apiVersion: v1, kind: ConfigMap, name: c, data: {}, useServerSideApply: true}\n",
            "spec.rules[0] (r).generate.useServerSideApply",
        ),
        (
            "      generate: {apiVersion: v1, kind: Secret, name: c, clone: {namespace: a}}\n",
            "spec.rules[0] (r).generate.clone.name is required",
        ),
        (
            "      generate: {apiVersion: v1, kind: ConfigMap, name: c, data: {}}\n      validate: {pattern: {metadata: {}}}\n",
            "has validate and generate",
        ),
        (
            "      generate: {namespace: target, cloneList: {namespace: staging, kinds: [v1/Secret], selector: {matchLabels: 3}}}\n",
            "spec.rules[0] (r).generate.cloneList.selector",
        ),
    ] {
        let err = KyvernoPolicy::from_yaml("k", &rule(generate), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(want), "{generate}: {err}");
    }
}

#[test]
fn foreach_generates_one_object_per_element() {
    // As in Kyverno's own example: a ConfigMap lists the namespaces to give a policy.
    let p = KyvernoPolicy::from_yaml(
        "k",
        r#"apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: netpol-per-namespace}
spec:
  rules:
    - name: per-namespace
      match: {any: [{resources: {kinds: [ConfigMap], names: [netpol-targets]}}]}
      generate:
        synchronize: true
        foreach:
          - list: request.object.data.namespaces | split(@, ',')
            context:
              - name: ns
                variable: {jmesPath: element}
            preconditions:
              all:
                - key: "{{ ns }}"
                  operator: AnyNotIn
                  value: [kube-system]
            apiVersion: networking.k8s.io/v1
            kind: NetworkPolicy
            name: deny-{{ elementIndex }}
            namespace: "{{ ns }}"
            data:
              metadata:
                labels: {from: "{{ request.object.metadata.name }}"}
              spec: {podSelector: {}, policyTypes: [Ingress]}
"#,
        None,
    )
    .unwrap();
    let targets = |list: &str| {
        object(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "netpol-targets", "namespace": "platform"}, "data": {"namespaces": list}}))
    };
    let (objects, results) = p
        .generate_results(&targets("shop,kube-system,cart"), &PolicyContext::new())
        .unwrap();
    assert_eq!(results[0].outcome.word(), "pass");
    let placed: Vec<String> = objects
        .iter()
        .map(|o| format!("{}/{}", o.namespace().unwrap(), o.name()))
        .collect();
    assert_eq!(placed, ["shop/deny-0", "cart/deny-2"]);
    assert_eq!(objects[1].labels()["from"], "netpol-targets");
    assert_eq!(
        objects[1].labels()["generate.kyverno.io/rule-name"],
        "per-namespace"
    );

    // Nothing to generate: a skip, not a pass.
    let (objects, results) = p
        .generate_results(&targets("kube-system"), &PolicyContext::new())
        .unwrap();
    assert!(objects.is_empty());
    assert_eq!(results[0].outcome.word(), "skip");
}

#[test]
fn other_kyverno_kinds_are_still_refused() {
    let err = KyvernoPolicy::from_yaml(
        "k",
        "apiVersion: policies.kyverno.io/v1\nkind: ValidatingPolicy\nmetadata: {name: v}\n",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("is not a Kyverno ClusterPolicy"), "{err}");
}
