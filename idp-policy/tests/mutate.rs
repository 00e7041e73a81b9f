//! Mutations: what each one adds, that explicit values win, and that applying twice
//! equals applying once (examples and a property test over generated pod specs).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

use idp_core::ports::Mutation;
use idp_core::{Object, Policy, PolicyContext};
use idp_policy::guardrails::{RequireProbes, RequireResources};
use idp_policy::mutate::{
    ATTR_OWNER, ATTR_SYSTEM, CollectorSidecar, DefaultResources, Mutations, OtelInjection,
    StandardLabels,
};
use idp_policy::pss::PodSecurity;
use proptest::prelude::*;
use serde_json::{Value, json};

fn obj(v: Value) -> Object {
    Object::from_value(v).unwrap()
}

fn ctx() -> PolicyContext {
    let mut ctx = PolicyContext::new()
        .with_environment("prod".parse().unwrap())
        .with_component("component:default/cart".parse().unwrap());
    ctx.attributes
        .insert(ATTR_OWNER.into(), "team-payments".into());
    ctx.attributes.insert(ATTR_SYSTEM.into(), "shop".into());
    ctx
}

fn all() -> Mutations {
    Mutations::new()
        .with(StandardLabels::default())
        .with(DefaultResources::default())
        .with(
            OtelInjection::new("http://otel.observability:4317")
                .with_sidecar(CollectorSidecar::default()),
        )
}

fn env_names(container: &Value) -> Vec<String> {
    container["env"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|v| v["name"].as_str().unwrap_or_default().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn default_resources_fill_only_what_is_missing() {
    let mut pod = obj(json!({"apiVersion": "v1", "kind": "Pod", "spec": {
        "initContainers": [{"name": "i"}],
        "containers": [
            {"name": "a"},
            {"name": "b", "resources": {"limits": {"cpu": "50m"}, "requests": {"memory": "2Gi"}}},
        ],
        "ephemeralContainers": [{"name": "dbg"}]}}));
    assert!(
        DefaultResources::default()
            .mutate(&mut pod, &ctx())
            .unwrap()
    );
    let spec = &pod.as_map()["spec"];
    assert_eq!(
        spec["initContainers"][0]["resources"]["limits"]["memory"],
        "256Mi"
    );
    assert_eq!(
        spec["containers"][0]["resources"]["requests"],
        json!({"cpu": "100m", "memory": "128Mi"})
    );
    let b = &spec["containers"][1]["resources"];
    assert_eq!(b["limits"]["cpu"], "50m", "explicit limit kept");
    assert_eq!(b["requests"]["cpu"], "50m", "request never above the limit");
    assert_eq!(b["requests"]["memory"], "2Gi", "explicit request kept");
    assert_eq!(
        b["limits"]["memory"], "2Gi",
        "limit never below the request"
    );
    assert!(spec["ephemeralContainers"][0].get("resources").is_none());
    assert!(
        RequireResources::default()
            .evaluate(&pod, &ctx())
            .is_empty()
    );
    assert!(
        !DefaultResources::default()
            .mutate(&mut pod, &ctx())
            .unwrap()
    );
}

#[test]
fn otel_injection_env_sidecar_and_opt_out() {
    let deploy = |annotations: Value| {
        obj(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "cart", "namespace": "shop", "annotations": annotations},
            "spec": {"template": {"metadata": {"labels": {"app": "cart"}}, "spec": {"containers": [
                {"name": "app", "env": [{"name": "OTEL_SERVICE_NAME", "value": "custom"}]},
                {"name": "worker"}]}}}}))
    };
    let m = OtelInjection::new("http://otel.observability:4317")
        .with_sidecar(CollectorSidecar::default());
    let mut d = deploy(json!({}));
    assert!(m.mutate(&mut d, &ctx()).unwrap());
    let spec = &d.as_map()["spec"]["template"]["spec"];
    let app = &spec["containers"][0];
    assert_eq!(
        env_names(app),
        [
            "OTEL_SERVICE_NAME",
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "OTEL_RESOURCE_ATTRIBUTES"
        ]
    );
    assert_eq!(
        app["env"][0]["value"], "custom",
        "a developer's own value wins"
    );
    assert_eq!(
        app["env"][1]["value"], "http://localhost:4317",
        "apps export to the sidecar"
    );
    assert_eq!(
        app["env"][2]["value"],
        "service.name=cart,service.namespace=shop,deployment.environment.name=prod,team.name=team-payments"
    );
    let sidecar = &spec["initContainers"][0];
    assert_eq!(sidecar["name"], "otel-collector");
    assert_eq!(sidecar["restartPolicy"], "Always");
    assert_eq!(sidecar["env"][0]["value"], "http://otel.observability:4317");
    // The injected sidecar passes our own restricted PSS, resources and probes.
    assert!(
        PodSecurity::restricted()
            .evaluate(&d, &ctx())
            .iter()
            .all(|v| !v
                .path
                .as_deref()
                .unwrap_or_default()
                .contains("initContainers"))
    );
    assert!(
        RequireResources::default()
            .evaluate(&d, &ctx())
            .iter()
            .all(|v| !v
                .path
                .as_deref()
                .unwrap_or_default()
                .contains("initContainers"))
    );
    // Second run: nothing changes, nothing duplicated.
    let once = d.clone();
    assert!(!m.mutate(&mut d, &ctx()).unwrap());
    assert_eq!(d, once);

    for opt_out in [
        json!({"idp.dev/otel-inject": "false"}),
        json!({"idp.dev/otel-inject": "False"}),
    ] {
        let mut d = deploy(opt_out);
        assert!(!m.mutate(&mut d, &ctx()).unwrap());
        assert_eq!(
            env_names(&d.as_map()["spec"]["template"]["spec"]["containers"][1]),
            Vec::<String>::new()
        );
    }
    // Opt-out on the pod template works too.
    let mut d = deploy(json!({}));
    d.as_map_mut()["spec"]["template"]["metadata"]["annotations"] =
        json!({"idp.dev/otel-inject": "false"});
    assert!(!m.mutate(&mut d, &ctx()).unwrap());
    // Objects without pods are untouched.
    let mut svc = obj(json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}}));
    assert!(!m.mutate(&mut svc, &ctx()).unwrap());
}

#[test]
fn standard_labels_on_object_and_template_never_selector() {
    let mut d = obj(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "cart-deploy", "labels": {"app.kubernetes.io/managed-by": "helm"}},
        "spec": {"selector": {"matchLabels": {"app": "cart"}},
                 "template": {"metadata": {"labels": {"app": "cart"}}, "spec": {"containers": []}}}}));
    assert!(StandardLabels::default().mutate(&mut d, &ctx()).unwrap());
    let labels = d.labels();
    assert_eq!(labels["app.kubernetes.io/name"], "cart");
    assert_eq!(labels["app.kubernetes.io/instance"], "cart-prod");
    assert_eq!(labels["app.kubernetes.io/part-of"], "shop");
    assert_eq!(
        labels["app.kubernetes.io/managed-by"], "helm",
        "existing labels are kept"
    );
    assert_eq!(labels["idp.dev/owner"], "team-payments");
    assert_eq!(labels["idp.dev/environment"], "prod");
    let spec = &d.as_map()["spec"];
    assert_eq!(spec["selector"]["matchLabels"], json!({"app": "cart"}));
    assert_eq!(
        spec["template"]["metadata"]["labels"]["idp.dev/owner"],
        "team-payments"
    );
    assert_eq!(spec["template"]["metadata"]["labels"]["app"], "cart");
    assert!(!StandardLabels::default().mutate(&mut d, &ctx()).unwrap());
    // Without a component or environment: the object's name, no environment labels.
    let mut cm = obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"}}));
    StandardLabels::default()
        .mutate(&mut cm, &PolicyContext::new())
        .unwrap();
    let labels = cm.labels();
    assert_eq!(labels["app.kubernetes.io/instance"], "cfg");
    assert!(!labels.contains_key("idp.dev/environment"));
}

#[test]
fn mutated_workload_satisfies_the_guardrails_the_mutations_target() {
    let mut d = obj(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cart", "namespace": "shop"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "acme/cart:1"}]}}}}),
    );
    all().mutate(&mut d, &ctx()).unwrap();
    assert!(RequireResources::default().evaluate(&d, &ctx()).is_empty());
    // Probes are not something a mutation can invent for the app container.
    assert_eq!(RequireProbes::default().evaluate(&d, &ctx()).len(), 2);
}

fn container() -> impl Strategy<Value = Value> {
    let quantity = prop_oneof![
        Just(json!("100m")),
        Just(json!("1")),
        Just(json!("2Gi")),
        Just(json!("64Mi")),
        Just(json!("bogus")),
        Just(json!(2))
    ];
    let resources = (
        proptest::option::of(quantity.clone()),
        proptest::option::of(quantity.clone()),
        proptest::option::of(quantity.clone()),
        proptest::option::of(quantity),
        any::<bool>(),
    )
        .prop_map(|(rc, rm, lc, lm, null)| {
            if null {
                return Value::Null;
            }
            let mut r = json!({"requests": {}, "limits": {}});
            if let Some(v) = rc {
                r["requests"]["cpu"] = v;
            }
            if let Some(v) = rm {
                r["requests"]["memory"] = v;
            }
            if let Some(v) = lc {
                r["limits"]["cpu"] = v;
            }
            if let Some(v) = lm {
                r["limits"]["memory"] = v;
            }
            r
        });
    let env = proptest::collection::vec(
        prop_oneof![
            Just("OTEL_SERVICE_NAME"),
            Just("OTEL_RESOURCE_ATTRIBUTES"),
            Just("OTHER"),
            Just("OTEL_EXPORTER_OTLP_ENDPOINT")
        ],
        0..3,
    );
    (
        "[a-z]{1,6}",
        proptest::option::of(resources),
        proptest::option::of(env),
    )
        .prop_map(|(name, resources, env)| {
            let mut c = json!({"name": name, "image": "x:1"});
            if let Some(r) = resources {
                c["resources"] = r;
            }
            if let Some(env) = env {
                c["env"] = Value::Array(
                    env.into_iter()
                        .map(|n| json!({"name": n, "value": "v"}))
                        .collect(),
                );
            }
            c
        })
}

fn workload() -> impl Strategy<Value = Object> {
    let kind = prop_oneof![
        Just("Pod"),
        Just("Deployment"),
        Just("StatefulSet"),
        Just("Job"),
        Just("CronJob"),
        Just("Service")
    ];
    (
        kind,
        proptest::collection::vec(container(), 0..4),
        proptest::collection::vec(container(), 0..2),
        proptest::option::of(prop_oneof![Just("false"), Just("true")]),
        proptest::option::of(proptest::collection::btree_map(
            "[a-z./]{1,12}",
            "[a-z]{0,5}",
            0..3,
        )),
    )
        .prop_map(|(kind, containers, init, opt_out, labels)| {
            let mut pod = json!({"containers": containers});
            if !init.is_empty() {
                pod["initContainers"] = json!(init);
            }
            let mut meta = json!({"name": "w", "namespace": "ns"});
            if let Some(o) = opt_out {
                meta["annotations"] = json!({"idp.dev/otel-inject": o});
            }
            if let Some(l) = labels {
                meta["labels"] = json!(l);
            }
            let template = json!({"spec": pod});
            let spec = match kind {
                "Pod" => pod,
                "CronJob" => json!({"jobTemplate": {"spec": {"template": template}}}),
                "Service" => json!({"ports": [{"port": 80}]}),
                _ => json!({"template": template}),
            };
            Object::from_value(
                json!({"apiVersion": "v1", "kind": kind, "metadata": meta, "spec": spec}),
            )
            .unwrap()
        })
}

proptest! {
    #[test]
    fn every_mutation_applied_twice_equals_once(object in workload(), with_env in any::<bool>()) {
        let ctx = if with_env { ctx() } else { PolicyContext::new() };
        let mutations: Vec<Box<dyn Mutation>> = vec![
            Box::new(DefaultResources::default()),
            Box::new(OtelInjection::new("http://c:4317")),
            Box::new(OtelInjection::new("http://c:4317").with_sidecar(CollectorSidecar { native: false, ..CollectorSidecar::default() })),
            Box::new(StandardLabels::default()),
            Box::new(all()),
        ];
        for m in &mutations {
            let mut once = object.clone();
            m.mutate(&mut once, &ctx).unwrap();
            let mut twice = once.clone();
            let changed = m.mutate(&mut twice, &ctx).unwrap();
            prop_assert_eq!(&twice, &once, "{} is not idempotent", m.name());
            prop_assert!(!changed, "{} reported a change on the second run", m.name());
        }
    }

    #[test]
    fn otel_never_duplicates_env_vars(object in workload()) {
        let before = object.clone();
        let mut o = object;
        let m = OtelInjection::new("http://c:4317");
        m.mutate(&mut o, &ctx()).unwrap();
        m.mutate(&mut o, &ctx()).unwrap();
        if let (Some(old), Some(new)) = (idp_policy::podspec::PodSpec::of(&before), idp_policy::podspec::PodSpec::of(&o)) {
            for (a, b) in old.containers().zip(new.containers()) {
                let (a, b) = (env_names(&Value::Object(a.value().clone())), env_names(&Value::Object(b.value().clone())));
                for var in ["OTEL_SERVICE_NAME", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_RESOURCE_ATTRIBUTES"] {
                    let count = |names: &[String]| names.iter().filter(|n| *n == var).count();
                    prop_assert!(count(&b) >= count(&a));
                    prop_assert!(count(&b) <= count(&a).max(1), "{var} duplicated: {b:?}");
                }
            }
        }
    }
}
