//! The PolicySet engine: enforcement actions, match rules, exceptions, bounded reports,
//! the policy-set file, and plugging in any other `Policy`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

use std::sync::Arc;

use idp_core::model::Enforcement;
use idp_core::{ManifestSet, Object, Policy, PolicyContext, PolicyExt, Severity, Violation};
use idp_policy::config::PolicySetConfig;
use idp_policy::exceptions::{PolicyException, RuleRef};
use idp_policy::matching::{LabelSelector, ResourceFilter, SelectorOperator, SelectorRequirement};
use idp_policy::pss::PodSecurity;
use idp_policy::report::ReportLimits;
use idp_policy::{Action, PolicyOptions, PolicySet, guardrails};
use serde_json::{Value, json};

fn obj(v: Value) -> Object {
    Object::from_value(v).unwrap()
}

fn privileged_pod(ns: &str, name: &str, labels: Value) -> Object {
    obj(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"containers": [{"name": "c", "image": "acme/c:1", "securityContext": {"privileged": true}}]}}))
}

/// A stand-in for a Rego or CEL policy: any `Policy` joins a set the same way.
#[derive(Debug)]
struct NoDefaultNamespace;

impl Policy for NoDefaultNamespace {
    fn name(&self) -> &str {
        "no-default-namespace"
    }
    fn evaluate(&self, object: &Object, _: &PolicyContext) -> Vec<Violation> {
        if object.namespace() == Some("default") {
            vec![
                Violation::new(
                    self.name().to_owned(),
                    "namespace",
                    "do not use the default namespace",
                )
                .with_path("metadata.namespace"),
            ]
        } else {
            vec![]
        }
    }
}

#[test]
fn actions_map_to_enforcement_and_decide_allowed() {
    let pod = privileged_pod("shop", "p", json!({}));
    for (action, enforcement, allowed) in [
        (Action::Enforce, Enforcement::Deny, false),
        (Action::Warn, Enforcement::Warn, true),
        (Action::Audit, Enforcement::Audit, true),
    ] {
        let set = PolicySet::new()
            .with_policy_options(PodSecurity::baseline(), PolicyOptions::new().action(action));
        let r = set.check_object(&pod, &PolicyContext::new());
        assert_eq!(r.allowed, allowed, "{action:?}");
        assert!(r.violations.iter().all(|v| v.enforcement == enforcement));
        assert_eq!(r.violations[0].object.as_ref().unwrap().name, "p");
    }
    // Without an action the policy's own enforcement stays, and a severity override applies.
    let set = PolicySet::new().with_policy_options(
        PodSecurity::baseline(),
        PolicyOptions::new().severity(Severity::Critical),
    );
    let r = set.check_object(&pod, &PolicyContext::new());
    assert_eq!(r.violations[0].enforcement, Enforcement::Deny);
    assert_eq!(r.violations[0].severity, Severity::Critical);
}

#[test]
fn match_rules_kinds_namespaces_selectors_and_exclusions() {
    let opts = PolicyOptions::new()
        .only(
            ResourceFilter::new()
                .kinds(["Pod"])
                .namespaces(["shop-*"])
                .selector(
                    LabelSelector::new()
                        .with_label("tier", "web")
                        .with_expression(SelectorRequirement::new(
                            "env",
                            SelectorOperator::NotIn,
                            ["dev"],
                        )),
                ),
        )
        .exclude(ResourceFilter::new().names(["legacy-*"]));
    let set = PolicySet::new().with_policy_options(PodSecurity::baseline(), opts);
    let ctx = PolicyContext::new();
    let denied = |o: &Object| !set.check_object(o, &ctx).allowed;
    assert!(denied(&privileged_pod(
        "shop-eu",
        "a",
        json!({"tier": "web"})
    )));
    assert!(denied(&privileged_pod(
        "shop-eu",
        "a",
        json!({"tier": "web", "env": "prod"})
    )));
    assert!(!denied(&privileged_pod(
        "shop-eu",
        "a",
        json!({"tier": "web", "env": "dev"})
    )));
    assert!(!denied(&privileged_pod(
        "shop-eu",
        "a",
        json!({"tier": "db"})
    )));
    assert!(!denied(&privileged_pod(
        "payments",
        "a",
        json!({"tier": "web"})
    )));
    assert!(!denied(&privileged_pod(
        "shop-eu",
        "legacy-a",
        json!({"tier": "web"})
    )));
    // `kinds: [Pod]` also matches pod controllers (autogen).
    let deploy = obj(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "shop-eu", "labels": {"tier": "web"}},
        "spec": {"template": {"spec": {"hostPID": true}}}}));
    assert!(denied(&deploy));
}

#[test]
fn namespace_defaults_from_context() {
    let set = PolicySet::new().with_policy_options(
        PodSecurity::baseline(),
        PolicyOptions::new().only(ResourceFilter::new().namespaces(["shop"])),
    );
    let pod = obj(
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
        "spec": {"hostNetwork": true}}),
    );
    assert!(set.check_object(&pod, &PolicyContext::new()).allowed);
    assert!(
        !set.check_object(&pod, &PolicyContext::new().with_namespace("shop"))
            .allowed
    );
}

#[test]
fn exceptions_waive_rules_for_matching_objects_until_expiry() {
    let pod = obj(json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "agent", "namespace": "monitoring", "labels": {"app": "agent"}},
        "spec": {"hostNetwork": true, "containers": [{"name": "c", "securityContext": {"privileged": true}}]}}));
    let exception = PolicyException::new("agent", "node agent needs the host network (INFRA-42)")
        .waive(RuleRef::rules("pod-security", ["hostNamespaces"]))
        .for_objects(
            ResourceFilter::new()
                .namespaces(["monitoring"])
                .selector(LabelSelector::new().with_label("app", "agent")),
        )
        .until("2027-01-01T00:00:00Z".parse().unwrap());
    let set = PolicySet::new()
        .with_policy(PodSecurity::baseline())
        .with_exception(exception);
    let before = PolicyContext::new().at("2026-06-01T00:00:00Z".parse().unwrap());
    let rules: Vec<_> = set
        .evaluate(&pod, &before)
        .into_iter()
        .map(|v| v.rule)
        .collect();
    assert_eq!(
        rules,
        ["privileged"],
        "hostNamespaces is waived, privileged is not"
    );
    let after = PolicyContext::new().at("2027-01-01T00:00:00Z".parse().unwrap());
    let rules: Vec<_> = set
        .evaluate(&pod, &after)
        .into_iter()
        .map(|v| v.rule)
        .collect();
    assert_eq!(
        rules,
        ["hostNamespaces", "privileged"],
        "expired exceptions stop applying"
    );
}

#[test]
fn any_policy_plugs_in_and_sets_nest() {
    let inner = PolicySet::new()
        .named("inner")
        .with_policy(NoDefaultNamespace);
    let mut outer = PolicySet::new().with_policy(PodSecurity::baseline());
    outer.push(Arc::new(inner), PolicyOptions::new().action(Action::Warn));
    let pod = privileged_pod("default", "p", json!({}));
    let r = outer.check_object(&pod, &PolicyContext::new());
    let ours = r
        .violations
        .iter()
        .find(|v| v.policy == "no-default-namespace")
        .unwrap();
    assert_eq!(ours.enforcement, Enforcement::Warn);
    // An exception naming the inner policy by its own name works through the nesting.
    let outer = outer.with_exception(
        PolicyException::new("e", "r").waive(RuleRef::policy("no-default-namespace")),
    );
    assert!(
        outer
            .evaluate(&pod, &PolicyContext::new())
            .iter()
            .all(|v| v.policy != "no-default-namespace")
    );
    // The set is a Policy: PolicyExt works on it.
    let set: ManifestSet = [pod].into_iter().collect();
    assert!(!outer.evaluate_set(&set, &PolicyContext::new()).is_empty());
}

#[test]
fn report_is_bounded_and_aggregates_per_rule() {
    let set = PolicySet::new()
        .with_policy(PodSecurity::baseline())
        .with_policy_options(
            guardrails::RequireProbes::default(),
            PolicyOptions::new().action(Action::Warn),
        );
    let objects = (0..5000).map(|i| {
        if i % 2 == 0 {
            privileged_pod("ns", &format!("p{i}"), json!({}))
        } else {
            obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": format!("c{i}")}}))
        }
    });
    let limits = ReportLimits {
        max_violations: 7,
        max_objects: 3,
    };
    let report = set.check_with_limits(objects, &PolicyContext::new(), limits);
    assert_eq!(report.objects_checked, 5000);
    assert_eq!(report.denied, 2500);
    assert_eq!(report.allowed, 2500);
    assert_eq!(
        report.warned, 0,
        "warned counts allowed objects with warnings only"
    );
    assert_eq!(report.violations, 2500 * 3);
    assert_eq!(report.sample.len(), 7);
    assert_eq!(report.objects.len(), 3);
    assert!(report.truncated);
    let summary: Vec<_> = report
        .rules
        .iter()
        .map(|r| {
            (
                r.policy.as_str(),
                r.rule.as_str(),
                r.count,
                r.objects,
                r.deny,
                r.warn,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("pod-security", "privileged", 2500, 2500, 2500, 0),
            ("require-probes", "liveness", 2500, 2500, 0, 2500),
            ("require-probes", "readiness", 2500, 2500, 0, 2500),
        ]
    );
    assert!(report.sample.iter().all(|v| v.object.is_some()));
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["objectsChecked"], 5000);
}

#[test]
fn check_each_streams_every_object_and_accepts_a_manifest_set() {
    let set = PolicySet::new().with_policy(PodSecurity::baseline());
    let manifests: ManifestSet = (0..10)
        .map(|i| privileged_pod("ns", &format!("p{i}"), json!({})))
        .collect();
    let mut seen = 0;
    let report = set.check_each(&manifests, &PolicyContext::new(), |o, r| {
        seen += 1;
        assert_eq!(r.object.name, o.name());
        assert!(!r.allowed);
    });
    assert_eq!(seen, 10);
    assert_eq!(report.denied, 10);
    let owned = set.check(manifests.clone(), &PolicyContext::new());
    assert_eq!(owned, report);
}

#[test]
fn policy_set_file_round_trip_and_behaviour() {
    let yaml = r"
apiVersion: idp.dev/v1alpha1
kind: PolicySet
name: production
limits: {maxViolations: 10, maxObjects: 10}
policies:
  - type: pod-security
    level: restricted
    version: v1.24
    match:
      - kinds: [Pod]
    exclude:
      - namespaces: [kube-system]
  - type: require-labels
    labels: [team]
    action: audit
  - type: restrict-service-types
    action: warn
exceptions:
  - name: legacy
    reason: migrating off NodePort in Q3
    policies: [{policy: restrict-service-types}]
    match: {names: [legacy-*]}
";
    let config = PolicySetConfig::from_yaml(yaml).unwrap();
    let again: PolicySetConfig =
        serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
    assert_eq!(again, config);
    let set = config.build();
    assert_eq!(
        set.policy_names().collect::<Vec<_>>(),
        ["pod-security", "require-labels", "restrict-service-types"]
    );
    assert_eq!(set.limits().max_violations, 10);

    let ctx = PolicyContext::new();
    let sys = privileged_pod("kube-system", "p", json!({"team": "infra"}));
    assert!(set.check_object(&sys, &ctx).allowed);
    let app = privileged_pod("shop", "p", json!({}));
    let r = set.check_object(&app, &ctx);
    assert!(!r.allowed);
    assert!(
        r.violations
            .iter()
            .any(|v| v.rule == "missing-label" && v.enforcement == Enforcement::Audit)
    );
    let svc = |name: &str| {
        obj(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "labels": {"team": "t"}}, "spec": {"type": "NodePort"}}),
        )
    };
    assert_eq!(set.check_object(&svc("web"), &ctx).warnings().count(), 1);
    assert_eq!(
        set.check_object(&svc("legacy-web"), &ctx).violations.len(),
        0
    );
}

#[test]
fn policy_set_file_errors_are_actionable() {
    let err = PolicySetConfig::from_yaml("policies:\n  - type: pod-security\n    version: v9.9\n")
        .unwrap_err();
    assert!(err.to_string().contains("v9.9"), "{err}");
    let err = PolicySetConfig::from_yaml("kind: ConfigMap\npolicies: []\n").unwrap_err();
    assert!(err.to_string().contains("PolicySet"), "{err}");
    let err =
        PolicySetConfig::from_yaml("policies: [{type: pod-security, level: strict}]").unwrap_err();
    assert!(err.to_string().contains("strict"), "{err}");
    let err =
        PolicySetConfig::from_yaml("policies: [{type: pod-security, action: block}]").unwrap_err();
    assert!(err.to_string().contains("block"), "{err}");
}

#[test]
fn schema_describes_the_file() {
    let schema = serde_json::to_value(PolicySetConfig::schema()).unwrap();
    let text = schema.to_string();
    for needle in [
        "pod-security",
        "require-resources",
        "min-replicas",
        "exceptions",
        "matchExpressions",
        "expires",
    ] {
        assert!(text.contains(needle), "schema lacks {needle}");
    }
}

/// A set given the built-in policies as concrete types shares one walk of each object
/// among them; given the same policies as `Arc<dyn Policy>` it evaluates each on its
/// own. Both must give the same violations in the same order, with options and
/// exceptions applied the same way.
#[test]
fn built_ins_in_a_set_match_their_trait_objects() {
    let restricted = PodSecurity::restricted().at("v1.30".parse().unwrap());
    let registries = guardrails::AllowedRegistries::new(["ghcr.io/acme"]);
    let probes_opts = PolicyOptions::new()
        .action(Action::Warn)
        .severity(Severity::Low)
        .only(ResourceFilter::new().kinds(["Deployment"]));
    let exception = PolicyException::new("legacy", "migrating")
        .waive(RuleRef::rules("pod-security", ["runAsNonRoot"]))
        .for_objects(ResourceFilter::new().namespaces(["legacy"]));

    let mut native = PolicySet::new().with_policy(restricted.clone());
    let mut dynamic = PolicySet::new();
    dynamic.push(Arc::new(restricted), PolicyOptions::new());
    for config in idp_policy::config::BuiltinPolicy::guardrails() {
        dynamic.push(config.clone().into_policy(), PolicyOptions::new());
        native.add_builtin(config, PolicyOptions::new());
    }
    native.add(registries.clone(), PolicyOptions::new());
    dynamic.push(Arc::new(registries), PolicyOptions::new());
    native.add(guardrails::RequireProbes::default(), probes_opts.clone());
    dynamic.push(Arc::new(guardrails::RequireProbes::default()), probes_opts);
    let native = native.with_exception(exception.clone());
    let dynamic = dynamic.with_exception(exception);

    let container = json!({"name": "app", "image": "nginx:latest",
        "ports": [{"containerPort": 22, "hostPort": 22}],
        "securityContext": {"privileged": true, "capabilities": {"add": ["SYS_ADMIN"]}}});
    let pod_spec = json!({"hostNetwork": true, "containers": [container],
        "initContainers": [{"name": "init", "image": "ghcr.io/acme/init:1"}],
        "volumes": [{"name": "h", "hostPath": {"path": "/"}}]});
    let objects = [
        obj(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "legacy"}, "spec": pod_spec})),
        obj(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "d", "namespace": "shop", "labels": {"idp.dev/owner": "a"}},
            "spec": {"replicas": 1, "template": {"spec": pod_spec}}})),
        obj(
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": pod_spec}}}}}),
        ),
        obj(
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
            "spec": {"type": "NodePort", "ports": [{"port": 22}]}}),
        ),
        obj(
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "i"},
            "spec": {"rules": [{"host": "a.example.com"}]}}),
        ),
    ];
    let ctx = PolicyContext::new().with_environment("prod".parse().unwrap());
    for o in &objects {
        let got = native.evaluate(o, &ctx);
        assert!(!got.is_empty(), "{}", o.kind());
        assert_eq!(got, dynamic.evaluate(o, &ctx), "{}", o.kind());
    }
}
