//! Kyverno policies with mocked values, as a Kyverno CLI test's values file gives them:
//! an `apiCall` context entry mocked by a rule's values, `request.operation` set by
//! global and resource values, namespace labels from `namespaceSelector`, and the
//! refusal of cluster-only entries without values.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use idp_core::{Object, PolicyContext};
use idp_policy::kyverno::{KyvernoPolicy, RuleOutcome, Values};
use serde_json::json;

const POLICY: &str = r#"
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: replica-quota}
spec:
  validationFailureAction: Enforce
  rules:
    - name: max-replicas
      match: {any: [{resources: {kinds: [Deployment]}}]}
      context:
        - name: quota
          apiCall:
            urlPath: "/api/v1/namespaces/{{ request.namespace }}/configmaps/quota"
            jmesPath: data
      preconditions:
        all:
          - key: "{{ request.operation }}"
            operator: Equals
            value: UPDATE
      validate:
        message: "at most {{ quota.maxReplicas }} replicas on update"
        deny:
          conditions:
            any:
              - key: "{{ request.object.spec.replicas }}"
                operator: GreaterThan
                value: "{{ quota.maxReplicas }}"
"#;

const VALUES: &str = r"
apiVersion: cli.kyverno.io/v1alpha1
kind: Values
globalValues:
  request.operation: UPDATE
policies:
  - name: replica-quota
    rules:
      - name: max-replicas
        values:
          quota.maxReplicas: 3
    resources:
      - name: legacy
        values:
          request.operation: CREATE
";

fn deployment(name: &str, replicas: u32) -> Object {
    Object::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [{"name": "a", "image": "a:1"}]}}}
    }))
    .unwrap()
}

fn outcome(policy: &KyvernoPolicy, object: &Object) -> (String, String) {
    let results = policy.results(object, &PolicyContext::new()).unwrap();
    assert_eq!(results.len(), 1, "{results:?}");
    let detail = match &results[0].outcome {
        RuleOutcome::Fail(v) | RuleOutcome::Error(v) => v
            .iter()
            .map(|v| v.message.clone())
            .collect::<Vec<_>>()
            .join("; "),
        RuleOutcome::Skip(why) => why.clone(),
        RuleOutcome::Pass => String::new(),
    };
    (results[0].outcome.word().to_owned(), detail)
}

#[test]
fn without_values_the_api_call_is_refused_when_loaded() {
    let err = KyvernoPolicy::from_yaml("kyverno", POLICY, None)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("spec.rules[0] (max-replicas).context[0] (quota).apiCall"),
        "{err}"
    );
    assert!(err.contains("give its value in a values file"), "{err}");
    // Values that give other names do not make it loadable either.
    let other = Values::from_yaml("globalValues: {request.operation: UPDATE}\n", None).unwrap();
    let err = KyvernoPolicy::new("kyverno")
        .with_values(other)
        .add_yaml(POLICY, None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("(quota).apiCall"), "{err}");
}

#[test]
fn rule_values_mock_the_api_call_and_global_values_set_the_operation() {
    let values = Values::from_yaml(VALUES, Some("values.yaml".as_ref())).unwrap();
    let mut policy = KyvernoPolicy::new("kyverno").with_values(values);
    policy.add_yaml(POLICY, None).unwrap();

    let (word, detail) = outcome(&policy, &deployment("web", 5));
    assert_eq!(word, "fail", "{detail}");
    assert!(detail.contains("at most 3 replicas on update"), "{detail}");

    let (word, detail) = outcome(&policy, &deployment("web", 2));
    assert_eq!(word, "pass", "{detail}");

    // The resource's values set the operation back to CREATE: the precondition fails.
    let (word, detail) = outcome(&policy, &deployment("legacy", 5));
    assert_eq!(
        (word.as_str(), detail.as_str()),
        ("skip", "preconditions not met")
    );
}

#[test]
fn an_entry_mocked_for_one_resource_is_an_error_for_another() {
    // The apiCall is mocked only in the values of the resource `web`.
    let values = Values::from_yaml(
        "policies:\n  - name: replica-quota\n    resources:\n      - name: web\n        values:\n          quota.maxReplicas: 1\n          request.operation: UPDATE\n",
        None,
    )
    .unwrap();
    let mut policy = KyvernoPolicy::new("kyverno").with_values(values);
    policy.add_yaml(POLICY, None).unwrap();
    assert_eq!(outcome(&policy, &deployment("web", 2)).0, "fail");
    // `db` has no values: the context comes before the preconditions, as in Kyverno, and
    // nothing gives the entry its value.
    let (word, detail) = outcome(&policy, &deployment("db", 2));
    assert_eq!(word, "error", "{detail}");
    assert!(
        detail.contains("context quota: the apiCall entry has no value"),
        "{detail}"
    );
    assert!(
        detail.contains("give its value in a values file"),
        "{detail}"
    );
}

#[test]
fn namespace_selector_values_give_namespaces_their_labels() {
    let policy_yaml = r"
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: prod-only}
spec:
  rules:
    - name: no-latest
      match:
        any:
          - resources:
              kinds: [Pod]
              namespaceSelector: {matchLabels: {env: prod}}
      validate:
        message: no latest tag
        pattern: {spec: {containers: [{image: '!*:latest'}]}}
";
    let pod = Object::from_value(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": "shop"},
        "spec": {"containers": [{"name": "a", "image": "a:latest"}]}}))
    .unwrap();
    let mut policy = KyvernoPolicy::from_yaml("kyverno", policy_yaml, None).unwrap();
    // No labels for `shop`: the rule does not match.
    assert!(
        policy
            .results(&pod, &PolicyContext::new())
            .unwrap()
            .is_empty()
    );
    policy.set_values(
        Values::from_yaml(
            "namespaceSelector:\n  - name: shop\n    labels: {env: prod}\n",
            None,
        )
        .unwrap(),
    );
    // A Namespace object given later does not take the labels the values gave.
    policy
        .add_yaml(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {env: dev}}\n",
            None,
        )
        .unwrap();
    assert_eq!(outcome(&policy, &pod).0, "fail");
}
