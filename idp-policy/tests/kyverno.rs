//! Kyverno ClusterPolicies and Policies: match and exclude, patterns with operators and
//! anchors, auto-gen for Pod controllers, failure actions and their overrides,
//! podSecurity and CEL rules, and the rules we refuse rather than skip.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

use idp_core::model::Enforcement;
use idp_core::{Object, Policy, PolicyContext, Violation};
use idp_policy::kyverno::KyvernoPolicy;
use serde_json::{Value, json};

const BEST_PRACTICES: &str = include_str!("fixtures/kyverno/best-practices.yaml");
const POD_SECURITY: &str = include_str!("fixtures/kyverno/pod-security.yaml");

fn object(value: Value) -> Object {
    Object::from_value(value).unwrap()
}

fn pod(namespace: &str, spec: Value) -> Object {
    object(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "namespace": namespace}, "spec": spec}))
}

fn controller(kind: &str, namespace: &str, pod_spec: Value) -> Object {
    let (api, spec) = match kind {
        "CronJob" => (
            "batch/v1",
            json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": {"spec": pod_spec}}}}),
        ),
        "Job" => ("batch/v1", json!({"template": {"spec": pod_spec}})),
        _ => (
            "apps/v1",
            json!({"replicas": 3, "template": {"spec": pod_spec}}),
        ),
    };
    object(json!({"apiVersion": api, "kind": kind,
        "metadata": {"name": "web", "namespace": namespace}, "spec": spec}))
}

fn limited(image: &str) -> Value {
    json!({"name": "app", "image": image,
        "resources": {"limits": {"cpu": "500m", "memory": "256Mi"}}})
}

fn policy(yaml: &str) -> KyvernoPolicy {
    KyvernoPolicy::from_yaml("kyverno", yaml, None).unwrap()
}

fn found<'a>(v: &'a [Violation], prefix: &str) -> Vec<&'a Violation> {
    v.iter().filter(|v| v.rule.starts_with(prefix)).collect()
}

#[test]
fn limits_are_required_on_pods_and_auto_generated_for_controllers() {
    let p = policy(BEST_PRACTICES);
    let ctx = PolicyContext::new();

    let bare = pod(
        "shop",
        json!({"containers": [{"name": "app", "image": "app:1.0"}]}),
    );
    let v = p.evaluate(&bare, &ctx);
    let limits = found(&v, "require-limits/");
    assert_eq!(limits.len(), 1, "{v:#?}");
    assert_eq!(limits[0].rule, "require-limits/cpu-and-memory");
    assert_eq!(limits[0].enforcement, Enforcement::Deny);
    assert!(
        limits[0]
            .message
            .starts_with("Container p needs cpu and memory limits. ("),
        "{}",
        limits[0].message
    );
    let path = limits[0].path.as_deref().unwrap();
    assert!(path.starts_with("spec.containers[0].resources"), "{path}");

    let ok = pod("shop", json!({"containers": [limited("app:1.0")]}));
    assert!(found(&p.evaluate(&ok, &ctx), "require-limits/").is_empty());
    // Excluded by namespace glob.
    let system = pod(
        "kube-system",
        json!({"containers": [{"name": "app", "image": "app:1.0"}]}),
    );
    assert!(found(&p.evaluate(&system, &ctx), "require-limits/").is_empty());

    // Auto-gen: the Pod template of every controller, under its own rule name.
    for (kind, rule, prefix) in [
        (
            "Deployment",
            "require-limits/autogen-cpu-and-memory",
            "spec.template.spec.containers[0]",
        ),
        (
            "StatefulSet",
            "require-limits/autogen-cpu-and-memory",
            "spec.template.spec.containers[0]",
        ),
        (
            "Job",
            "require-limits/autogen-cpu-and-memory",
            "spec.template.spec.containers[0]",
        ),
        (
            "CronJob",
            "require-limits/autogen-cronjob-cpu-and-memory",
            "spec.jobTemplate.spec.template.spec.containers[0]",
        ),
    ] {
        let bare = controller(
            kind,
            "shop",
            json!({"containers": [{"name": "app", "image": "app:1.0"}]}),
        );
        let v = p.evaluate(&bare, &ctx);
        let limits = found(&v, "require-limits/");
        assert_eq!(limits.len(), 1, "{kind}: {v:#?}");
        assert_eq!(limits[0].rule, rule, "{kind}");
        let path = limits[0].path.as_deref().unwrap();
        assert!(path.starts_with(prefix), "{kind}: {path}");

        let ok = controller(kind, "shop", json!({"containers": [limited("app:1.0")]}));
        assert!(
            found(&p.evaluate(&ok, &ctx), "require-limits/").is_empty(),
            "{kind}"
        );
    }
}

#[test]
fn the_autogen_annotation_and_failure_actions() {
    let p = policy(BEST_PRACTICES);
    let ctx = PolicyContext::new();
    let latest = json!({"containers": [limited("nginx:latest")]});

    // Auto-gen only for Deployments (the annotation): a StatefulSet is not checked.
    let sts = controller("StatefulSet", "dev", latest.clone());
    assert!(found(&p.evaluate(&sts, &ctx), "images/").is_empty());

    // Audit by default, Enforce in prod (the policy's override).
    let dev = controller("Deployment", "dev", latest.clone());
    let v = p.evaluate(&dev, &ctx);
    let tags = found(&v, "images/autogen-no-latest");
    assert_eq!(tags.len(), 1, "{v:#?}");
    assert_eq!(tags[0].enforcement, Enforcement::Audit);
    let prod = controller("Deployment", "prod", latest);
    let v = p.evaluate(&prod, &ctx);
    assert_eq!(
        found(&v, "images/autogen-no-latest")[0].enforcement,
        Enforcement::Deny
    );

    // The rule's own failureAction beats the policy's Audit; the equality anchor only
    // checks hostNetwork where it is set.
    let host = pod(
        "dev",
        json!({"hostNetwork": true, "containers": [limited("app:1.0")]}),
    );
    let v = p.evaluate(&host, &ctx);
    let hn = found(&v, "images/host-network");
    assert_eq!(hn.len(), 1, "{v:#?}");
    assert_eq!(hn[0].enforcement, Enforcement::Deny);
    assert_eq!(hn[0].path.as_deref(), Some("spec.hostNetwork"));
    let unset = pod("dev", json!({"containers": [limited("app:1.0")]}));
    assert!(
        p.evaluate(&unset, &ctx).is_empty(),
        "{:#?}",
        p.evaluate(&unset, &ctx)
    );
}

#[test]
fn operators_and_kind_forms() {
    let p = policy(BEST_PRACTICES);
    let ctx = PolicyContext::new();
    let one = object(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "prod"},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [limited("app:1.0")]}}}}));
    let v = p.evaluate(&one, &ctx);
    let r = found(&v, "replicas/");
    assert_eq!(r.len(), 1, "{v:#?}");
    assert_eq!(r[0].path.as_deref(), Some("spec.replicas"));
    assert!(
        r[0].message
            .starts_with("Production Deployments need at least two replicas.")
    );

    let three = controller(
        "Deployment",
        "prod",
        json!({"containers": [limited("app:1.0")]}),
    );
    assert!(found(&p.evaluate(&three, &ctx), "replicas/").is_empty());
    // Another namespace, another kind: not matched.
    let mut dev = one.clone();
    dev.as_map_mut().insert(
        "metadata".into(),
        json!({"name": "web", "namespace": "dev"}),
    );
    assert!(found(&p.evaluate(&dev, &ctx), "replicas/").is_empty());
    let sts = object(json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": "prod"},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [limited("db:1.0")]}}}}));
    assert!(found(&p.evaluate(&sts, &ctx), "replicas/").is_empty());
}

fn restricted_container(name: &str, image: &str, add: &[&str]) -> Value {
    json!({"name": name, "image": image, "securityContext": {
        "runAsNonRoot": true, "allowPrivilegeEscalation": false,
        "seccompProfile": {"type": "RuntimeDefault"},
        "capabilities": {"drop": ["ALL"], "add": add}}})
}

#[test]
fn pod_security_rules_use_the_native_checks_with_kyverno_exclusions() {
    let p = policy(POD_SECURITY);
    let ctx = PolicyContext::new();
    let ok = pod(
        "shop",
        json!({"containers": [
            restricted_container("proxy", "ghcr.io/acme/mesh-proxy:1.2", &["NET_ADMIN"]),
            restricted_container("app", "ghcr.io/acme/app:1.0", &[]),
        ]}),
    );
    let v = p.evaluate(&ok, &ctx);
    assert!(found(&v, "psa/").is_empty(), "{v:#?}");

    // The exclusion is for that image and that value only.
    let bad = pod(
        "shop",
        json!({"containers": [
            restricted_container("proxy", "ghcr.io/acme/mesh-proxy:1.2", &["NET_ADMIN", "SYS_ADMIN"]),
            restricted_container("app", "ghcr.io/acme/app:1.0", &["NET_ADMIN"]),
        ]}),
    );
    let v = p.evaluate(&bad, &ctx);
    let psa = found(&v, "psa/restricted");
    assert!(!psa.is_empty(), "{v:#?}");
    assert!(psa.iter().all(|f| f.enforcement == Enforcement::Deny));
    let text: Vec<&str> = psa.iter().map(|f| f.message.as_str()).collect();
    assert!(text.iter().any(|m| m.contains("SYS_ADMIN")), "{text:?}");
    assert!(
        text.iter()
            .any(|m| m.contains("\"app\"") && m.contains("NET_ADMIN")),
        "{text:?}"
    );
    assert!(
        !text.iter().any(|m| m.contains("\"proxy\"")
            && m.contains("NET_ADMIN")
            && !m.contains("SYS_ADMIN")),
        "{text:?}"
    );

    // Controllers: the auto-generated rule.
    let deploy = controller(
        "Deployment",
        "shop",
        json!({"containers": [{"name": "app", "image": "app:1"}]}),
    );
    let v = p.evaluate(&deploy, &ctx);
    assert!(!found(&v, "psa/autogen-restricted").is_empty(), "{v:#?}");
}

#[cfg(feature = "cel")]
#[test]
fn cel_rules_and_namespace_selectors() {
    let p = policy(POD_SECURITY);
    let ctx = PolicyContext::new();
    let mut deploy = controller(
        "Deployment",
        "shop",
        json!({"containers": [{"name": "app", "image": "app:1"}]}),
    );
    let v = p.evaluate(&deploy, &ctx);
    let labels = found(&v, "labels/");
    assert_eq!(labels.len(), 1, "{v:#?}");
    assert_eq!(labels[0].rule, "labels/owner-label");
    assert_eq!(labels[0].message, "Deployment web has no owner label");
    assert_eq!(labels[0].enforcement, Enforcement::Deny);

    deploy.set_label("owner", "ana");
    assert!(found(&p.evaluate(&deploy, &ctx), "labels/").is_empty());
    // A CEL rule on Pods is auto-generated too: its `object` is the Pod template.
    let host = json!({"hostNetwork": true, "containers": [{"name": "app", "image": "app:1"}]});
    let v = p.evaluate(&pod("shop", host.clone()), &ctx);
    let direct = found(&v, "host-network-cel/no-host-network");
    assert_eq!(direct.len(), 1, "{v:#?}");
    assert_eq!(direct[0].message, "hostNetwork is not allowed in shop");
    for (kind, rule) in [
        ("Deployment", "host-network-cel/autogen-no-host-network"),
        (
            "CronJob",
            "host-network-cel/autogen-cronjob-no-host-network",
        ),
    ] {
        let v = p.evaluate(&controller(kind, "shop", host.clone()), &ctx);
        let found = found(&v, rule);
        assert_eq!(found.len(), 1, "{kind}: {v:#?}");
        assert_eq!(found[0].message, "hostNetwork is not allowed in shop");
        let quiet = controller(
            kind,
            "shop",
            json!({"containers": [{"name": "app", "image": "app:1"}]}),
        );
        assert!(
            p.evaluate(&quiet, &ctx)
                .iter()
                .all(|v| !v.rule.starts_with("host-network-cel/")),
            "{kind}"
        );
    }

    // A namespace without the selected labels (or not supplied): not matched.
    let other = controller(
        "Deployment",
        "other",
        json!({"containers": [{"name": "app", "image": "app:1"}]}),
    );
    assert!(found(&p.evaluate(&other, &ctx), "labels/").is_empty());
}

fn one_rule(rule: &str) -> String {
    format!(
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {{name: p}}\nspec:\n  rules:\n    - name: r\n      match: {{any: [{{resources: {{kinds: [Pod]}}}}]}}\n{rule}"
    )
}

#[test]
fn rules_we_cannot_evaluate_are_refused_naming_the_rule() {
    for (rule, wanted) in [
        (
            "      validate: {foreach: [{list: request.object.spec.containers}]}\n",
            "spec.rules[0] (r).validate.foreach[0]: give pattern, anyPattern, deny or a nested foreach",
        ),
        (
            "      context: [{name: cm, apiCall: {urlPath: /api/v1/namespaces}}]\n      validate: {pattern: {spec: {}}}\n",
            "spec.rules[0] (r).context[0] (cm).apiCall",
        ),
        (
            "      validate: {deny: {conditions: {all: [{key: '{{ a.[ }}', operator: Equals, value: x}]}}}\n",
            "spec.rules[0] (r).validate.deny.conditions.all[0].key",
        ),
        (
            "      validate: {foreach: [{list: x}]}\n",
            "spec.rules[0] (r).validate.foreach",
        ),
        (
            "      mutate: {targets: [{apiVersion: v1, kind: Secret}], patchStrategicMerge: {}}\n",
            "spec.rules[0] (r).mutate.targets",
        ),
        (
            "      generate: {apiVersion: v1, kind: ConfigMap, name: c}\n",
            "spec.rules[0] (r).generate",
        ),
        (
            "      validate: {message: m}\n",
            "give pattern, anyPattern, deny, foreach, podSecurity or cel",
        ),
        (
            "      validate: {failureAction: Block, pattern: {spec: {}}}\n",
            "failureAction \"Block\" is not Enforce or Audit",
        ),
        (
            "      validate: {podSecurity: {level: strict}}\n",
            "podSecurity.level",
        ),
        (
            "      validate: {podSecurity: {level: baseline, exclude: [{controlName: Nope}]}}\n",
            "podSecurity.exclude[0]",
        ),
        (
            "      validate: {anyPattern: []}\n",
            "anyPattern must be a non-empty list",
        ),
    ] {
        let err = KyvernoPolicy::from_yaml("k", &one_rule(rule), None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(wanted), "{rule}: {err}");
        assert!(err.contains("ClusterPolicy p"), "{rule}: {err}");
    }
    let err = KyvernoPolicy::from_yaml(
        "k",
        "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: r\n      validate: {pattern: {spec: {}}}\n",
        Some(std::path::Path::new("policies/p.yaml")),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("policies/p.yaml"), "{err}");
    assert!(err.contains("match is required"), "{err}");
}

#[test]
fn a_namespaced_policy_applies_in_its_namespace_only() {
    let yaml = "apiVersion: kyverno.io/v1\nkind: Policy\nmetadata: {name: team-rules, namespace: shop}\nspec:\n  validationFailureAction: Enforce\n  rules:\n    - name: team-label\n      match: {any: [{resources: {kinds: [Pod]}}]}\n      validate:\n        message: team label\n        pattern: {metadata: {labels: {team: '?*'}}}\n";
    let p = policy(yaml);
    let ctx = PolicyContext::new();
    let v = p.evaluate(&pod("shop", json!({"containers": []})), &ctx);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].rule, "team-rules/team-label");
    assert!(
        p.evaluate(&pod("blog", json!({"containers": []})), &ctx)
            .is_empty()
    );
}

#[test]
fn any_pattern_passes_when_one_pattern_holds() {
    let yaml = one_rule(
        "      validate:\n        failureAction: Enforce\n        message: run as non-root\n        anyPattern:\n          - spec: {securityContext: {runAsNonRoot: true}}\n          - spec: {containers: [{securityContext: {runAsNonRoot: true}}]}\n",
    );
    let p = policy(&yaml);
    let ctx = PolicyContext::new();
    let pod_level = pod(
        "shop",
        json!({"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "a", "image": "a:1"}]}),
    );
    assert!(p.evaluate(&pod_level, &ctx).is_empty());
    let containers = pod(
        "shop",
        json!({"containers": [{"name": "a", "image": "a:1", "securityContext": {"runAsNonRoot": true}}]}),
    );
    assert!(p.evaluate(&containers, &ctx).is_empty());
    let neither = pod(
        "shop",
        json!({"containers": [{"name": "a", "image": "a:1"}]}),
    );
    let v = p.evaluate(&neither, &ctx);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(
        v[0].message.contains("anyPattern[0]") && v[0].message.contains("anyPattern[1]"),
        "{}",
        v[0].message
    );
    assert_eq!(v[0].enforcement, Enforcement::Deny);
}

#[test]
fn kyverno_policies_join_a_policy_set() {
    let mut set = idp_policy::PolicySet::new();
    set.push(
        std::sync::Arc::new(policy(BEST_PRACTICES)),
        idp_policy::PolicyOptions::default(),
    );
    let bare = pod(
        "shop",
        json!({"containers": [{"name": "app", "image": "app:1.0"}]}),
    );
    let result = set.check_object(&bare, &PolicyContext::new());
    assert!(!result.allowed);
    let ok = pod("shop", json!({"containers": [limited("app:1.0")]}));
    assert!(set.check_object(&ok, &PolicyContext::new()).allowed);
}

#[test]
fn policy_exceptions_waive_the_rules_they_name_for_what_they_match() {
    let exception = r#"
apiVersion: kyverno.io/v2
kind: PolicyException
metadata: {name: legacy-batch, namespace: kyverno}
spec:
  exceptions:
    - policyName: require-limits
      ruleNames: [cpu-and-memory, autogen-cpu-and-memory]
  match:
    any:
      - resources:
          kinds: [Pod, Deployment]
          namespaces: [batch]
          names: ["legacy-*"]
---
apiVersion: kyverno.io/v2
kind: PolicyException
metadata: {name: root-in-delta, namespace: kyverno}
spec:
  exceptions:
    - policyName: psa
      ruleNames: ["*"]
  match:
    any:
      - resources:
          namespaces: [delta]
  podSecurity:
    - controlName: Running as Non-root
"#;
    let mut p = policy(BEST_PRACTICES);
    p.add_yaml(POD_SECURITY, None).unwrap();
    p.add_yaml(exception, None).unwrap();
    let ctx = PolicyContext::new();
    let bare = json!({"containers": [{"name": "app", "image": "app:1.0"}]});

    let named = |kind: &str, name: &str, ns: &str| {
        let mut o = if kind == "Pod" {
            pod(ns, bare.clone())
        } else {
            controller(kind, ns, bare.clone())
        };
        o.as_map_mut()
            .insert("metadata".into(), json!({"name": name, "namespace": ns}));
        o
    };
    // Waived: the named rules, for the matched names, kinds and namespace.
    for kind in ["Pod", "Deployment"] {
        let v = p.evaluate(&named(kind, "legacy-report", "batch"), &ctx);
        assert!(found(&v, "require-limits/").is_empty(), "{kind}: {v:#?}");
        // Other rules still apply.
        assert!(!found(&v, "psa/").is_empty(), "{kind}: {v:#?}");
    }
    // Not waived: another name, another namespace, a kind the exception does not match.
    for (kind, name, ns) in [
        ("Pod", "report", "batch"),
        ("Pod", "legacy-report", "shop"),
        ("StatefulSet", "legacy-report", "batch"),
    ] {
        let v = p.evaluate(&named(kind, name, ns), &ctx);
        assert_eq!(
            found(&v, "require-limits/").len(),
            1,
            "{kind} {ns}/{name}: {v:#?}"
        );
    }

    // podSecurity entries exclude only their control from the podSecurity rule.
    let root = pod(
        "delta",
        json!({"containers": [{"name": "app", "image": "app:1", "securityContext": {
            "runAsNonRoot": false, "allowPrivilegeEscalation": false,
            "seccompProfile": {"type": "RuntimeDefault"}, "capabilities": {"drop": ["ALL"]}}}]}),
    );
    let v = p.evaluate(&root, &ctx);
    assert!(found(&v, "psa/").is_empty(), "{v:#?}");
    let mut elsewhere = root.clone();
    elsewhere
        .as_map_mut()
        .insert("metadata".into(), json!({"name": "p", "namespace": "shop"}));
    let v = p.evaluate(&elsewhere, &ctx);
    assert_eq!(found(&v, "psa/").len(), 1, "{v:#?}");
    let privileged = pod(
        "delta",
        json!({"containers": [{"name": "app", "image": "app:1", "securityContext": {
            "privileged": true, "runAsNonRoot": false, "allowPrivilegeEscalation": false,
            "seccompProfile": {"type": "RuntimeDefault"}, "capabilities": {"drop": ["ALL"]}}}]}),
    );
    let v = p.evaluate(&privileged, &ctx);
    let psa = found(&v, "psa/");
    assert_eq!(psa.len(), 1, "{v:#?}");
    assert!(psa[0].message.contains("privileged"), "{}", psa[0].message);
}

#[test]
fn bad_exceptions_are_refused() {
    for (spec, wanted) in [
        (
            "  exceptions: [{policyName: p, ruleNames: [r]}]\n  match: {any: [{resources: {kinds: [Pod]}}]}\n  conditions: {any: []}\n",
            "spec.conditions are JMESPath",
        ),
        (
            "  exceptions: []\n  match: {any: [{resources: {kinds: [Pod]}}]}\n",
            "spec.exceptions is empty",
        ),
        (
            "  exceptions: [{policyName: p}]\n  match: {any: [{resources: {kinds: [Pod]}}]}\n",
            "spec.exceptions[0].ruleNames is required",
        ),
        (
            "  exceptions: [{policyName: p, ruleNames: [r]}]\n",
            "spec.match is required",
        ),
        (
            "  exceptions: [{policyName: p, ruleNames: [r]}]\n  match: {any: [{resources: {kinds: [Pod]}}]}\n  podSecurity: [{controlName: Nope}]\n",
            "spec.podSecurity[0]",
        ),
    ] {
        let yaml = format!(
            "apiVersion: kyverno.io/v2\nkind: PolicyException\nmetadata: {{name: e, namespace: k}}\nspec:\n{spec}"
        );
        let err = KyvernoPolicy::from_yaml("k", &yaml, None)
            .unwrap_err()
            .to_string();
        assert!(err.contains(wanted), "{spec}: {err}");
        assert!(err.contains("PolicyException e"), "{err}");
    }
}

const CONDITIONS: &str = include_str!("fixtures/kyverno/conditions.yaml");

#[test]
fn deny_conditions_and_preconditions_with_jmespath() {
    let p = policy(CONDITIONS);
    let ctx = PolicyContext::new();
    let caps = |add: Value| {
        json!({"containers": [
            {"name": "a", "image": "a:1", "securityContext": {"capabilities": {"add": add}}},
            {"name": "b", "image": "b:1"}]})
    };

    let v = p.evaluate(&pod("shop", caps(json!(["NET_ADMIN"]))), &ctx);
    let added = found(&v, "conditions/no-added-capabilities");
    assert_eq!(added.len(), 1, "{v:#?}");
    assert_eq!(
        added[0].message,
        "Containers in p may not add capabilities. (only NET_BIND_SERVICE may be added)"
    );
    assert_eq!(added[0].enforcement, Enforcement::Deny);
    assert!(
        p.evaluate(&pod("shop", caps(json!(["NET_BIND_SERVICE"]))), &ctx)
            .is_empty()
    );
    assert!(
        p.evaluate(
            &pod(
                "shop",
                json!({"containers": [{"name": "a", "image": "a:1"}]})
            ),
            &ctx
        )
        .is_empty()
    );
    // Precondition: not on delete.
    let delete = PolicyContext::new().with_operation(idp_core::model::Operation::Delete);
    assert!(
        p.evaluate(&pod("shop", caps(json!(["SYS_ADMIN"]))), &delete)
            .is_empty()
    );

    // Auto-gen: the deny reads the Pod template of a Deployment and a CronJob.
    for (kind, rule) in [
        ("Deployment", "conditions/autogen-no-added-capabilities"),
        (
            "CronJob",
            "conditions/autogen-cronjob-no-added-capabilities",
        ),
    ] {
        let v = p.evaluate(&controller(kind, "shop", caps(json!(["SYS_ADMIN"]))), &ctx);
        assert_eq!(found(&v, rule).len(), 1, "{kind}: {v:#?}");
        let v = p.evaluate(&controller(kind, "shop", caps(json!([]))), &ctx);
        assert!(found(&v, "conditions/").is_empty(), "{kind}: {v:#?}");
    }

    // Quantities in GreaterThan.
    let big = pod(
        "shop",
        json!({"containers": [{"name": "a", "image": "a:1",
        "resources": {"requests": {"memory": "2Gi"}}}]}),
    );
    let v = p.evaluate(&big, &ctx);
    assert_eq!(
        found(&v, "conditions/memory-request-at-most-1gi").len(),
        1,
        "{v:#?}"
    );
    let small = pod(
        "shop",
        json!({"containers": [{"name": "a", "image": "a:1",
        "resources": {"requests": {"memory": "512Mi"}}}]}),
    );
    assert!(p.evaluate(&small, &ctx).is_empty());

    // Preconditions pick NodePort Services only.
    let svc = |ty: &str, policy: Option<&str>| {
        let mut spec = json!({"type": ty, "ports": [{"port": 80}]});
        if let Some(p) = policy {
            spec["externalTrafficPolicy"] = json!(p);
        }
        object(json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "s", "namespace": "shop"}, "spec": spec}))
    };
    assert_eq!(p.evaluate(&svc("NodePort", None), &ctx).len(), 1);
    assert!(p.evaluate(&svc("NodePort", Some("Local")), &ctx).is_empty());
    assert!(p.evaluate(&svc("ClusterIP", None), &ctx).is_empty());
}

#[test]
fn a_condition_that_fails_to_evaluate_is_reported() {
    let yaml = one_rule(
        "      validate:\n        failureAction: Enforce\n        deny:\n          conditions:\n            all:\n              - {key: '{{ time_now_utc() }}', operator: Equals, value: P}\n",
    );
    let p = policy(&yaml);
    let v = p.evaluate(
        &pod("shop", json!({"containers": []})),
        &PolicyContext::new(),
    );
    assert_eq!(v.len(), 1, "{v:#?}");
    assert!(
        v[0].message.contains("deny conditions of p/r"),
        "{}",
        v[0].message
    );
    assert_eq!(v[0].enforcement, Enforcement::Deny);
}

const FOREACH: &str = include_str!("fixtures/kyverno/foreach.yaml");

#[test]
fn foreach_checks_every_element_with_paths() {
    let p = policy(FOREACH);
    let ctx = PolicyContext::new();
    let spec = json!({
        "initContainers": [{"name": "init", "image": "busybox:1"}],
        "containers": [
            {"name": "app", "image": "ghcr.io/acme/app:1"},
            {"name": "side", "image": "docker.io/envoy:1"},
            {"name": "debug-shell", "image": "docker.io/busybox:1"}]});
    let v = p.evaluate(&pod("shop", spec.clone()), &ctx);
    let mut paths: Vec<&str> = v.iter().filter_map(|v| v.path.as_deref()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        ["spec.containers[1].image", "spec.initContainers[0].image"],
        "{v:#?}"
    );
    assert!(v.iter().all(|v| v.rule == "loops/registries"));
    assert!(
        v[0].message.starts_with("Images come from ghcr.io/acme. ("),
        "{}",
        v[0].message
    );

    // Auto-gen: the same loops over a Deployment's template, with its paths.
    let v = p.evaluate(&controller("Deployment", "shop", spec), &ctx);
    let mut paths: Vec<&str> = v.iter().filter_map(|v| v.path.as_deref()).collect();
    paths.sort_unstable();
    assert_eq!(
        paths,
        [
            "spec.template.spec.containers[1].image",
            "spec.template.spec.initContainers[0].image"
        ],
        "{v:#?}"
    );
    assert!(v.iter().all(|v| v.rule == "loops/autogen-registries"));

    // Nested loops, with the element in the message.
    let ingress = object(
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"tls": [
            {"hosts": ["a.example.com", "b.example.org"]},
            {"hosts": ["c.example.com"]}]}}),
    );
    let v = p.evaluate(&ingress, &ctx);
    assert_eq!(v.len(), 1, "{v:#?}");
    assert_eq!(v[0].path.as_deref(), Some("spec.tls[0].hosts[1]"));
    assert_eq!(
        v[0].message,
        "TLS hosts stay under example.com. (b.example.org is outside example.com)"
    );

    // deny: {} denies whatever the rule matches.
    let cm = |name: &str| {
        object(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": "shop"}, "data": {}}))
    };
    assert_eq!(p.evaluate(&cm("prices-frozen"), &ctx).len(), 1);
    assert!(p.evaluate(&cm("prices"), &ctx).is_empty());
}

const CONTEXT: &str = r#"
apiVersion: v1
kind: ConfigMap
metadata: {name: registries, namespace: platform}
data:
  allowed: '["ghcr.io", "registry.acme.internal"]'
---
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: supply-chain}
spec:
  validationFailureAction: Enforce
  rules:
    - name: allowed-registry
      match: {any: [{resources: {kinds: [Pod]}}]}
      context:
        - name: registries
          configMap: {name: registries, namespace: platform}
        - name: allowed
          variable: {jmesPath: "registries.data.allowed | parse_json(@)"}
      validate:
        message: "{{ request.object.metadata.name }} uses a registry outside {{ join(', ', allowed) }}"
        foreach:
          - list: request.object.spec.containers
            deny:
              conditions:
                all:
                  - key: "{{ images.containers.\"{{ element.name }}\".registry }}"
                    operator: AnyNotIn
                    value: "{{ allowed }}"
    - name: name-label
      match: {any: [{resources: {kinds: [Pod]}}]}
      validate:
        message: "the app label must be the Pod's name"
        pattern:
          metadata:
            labels:
              app: "{{ request.object.metadata.name }}"
"#;

#[test]
fn context_images_and_variables_in_patterns_and_messages() {
    let p = policy(CONTEXT);
    let ctx = PolicyContext::new();
    let labelled = |name: &str, image: &str| {
        object(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "shop", "labels": {"app": name}},
            "spec": {"containers": [{"name": "app", "image": image}]}}))
    };
    assert!(
        p.evaluate(&labelled("web", "ghcr.io/acme/web:1"), &ctx)
            .is_empty()
    );
    let v = p.evaluate(&labelled("web", "nginx:1.27"), &ctx);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].rule, "supply-chain/allowed-registry");
    assert!(
        v[0].message
            .starts_with("web uses a registry outside ghcr.io, registry.acme.internal"),
        "{}",
        v[0].message
    );
    // The pattern's variable is the object's own name.
    let mut wrong = labelled("web", "ghcr.io/acme/web:1").to_value();
    wrong["metadata"]["labels"]["app"] = json!("api");
    let v = p.evaluate(&object(wrong), &ctx);
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].rule, "supply-chain/name-label");
    assert_eq!(v[0].path.as_deref(), Some("metadata.labels.app"));

    // Without the ConfigMap, the rule errors (and denies), naming what is missing.
    let alone = CONTEXT.split_once("---").unwrap().1;
    let p = policy(alone);
    let v = p.evaluate(&labelled("web", "ghcr.io/acme/web:1"), &ctx);
    assert_eq!(v.len(), 1, "{v:?}");
    assert!(
        v[0].message
            .contains("ConfigMap platform/registries was not given"),
        "{}",
        v[0].message
    );
    // API calls are refused when loaded.
    let err = KyvernoPolicy::from_yaml(
        "k",
        &one_rule("      context: [{name: pods, apiCall: {urlPath: /api/v1/pods}}]\n      validate: {deny: {}}\n"),
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("spec.rules[0] (r).context[0] (pods).apiCall"),
        "{err}"
    );
}
