//! One test per guardrail: a violating and a passing fixture, paths, configuration.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

use idp_core::{Object, Policy, PolicyContext};
use idp_policy::guardrails::{
    AllowedRegistries, DisallowLatestTag, ForbidSensitivePorts, ImageRef, MinReplicas,
    RequireIngressTls, RequireLabels, RequireProbes, RequireResources, RestrictServiceTypes,
};
use serde_json::{Value, json};

fn obj(v: Value) -> Object {
    Object::from_value(v).unwrap()
}

fn deployment(containers: Value) -> Object {
    obj(
        json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d", "namespace": "ns"},
        "spec": {"replicas": 3, "template": {"spec": {"containers": containers}}}}),
    )
}

fn found(p: &dyn Policy, o: &Object) -> Vec<(String, String)> {
    found_in(p, o, &PolicyContext::new())
}

fn found_in(p: &dyn Policy, o: &Object, ctx: &PolicyContext) -> Vec<(String, String)> {
    p.evaluate(o, ctx)
        .into_iter()
        .map(|v| {
            assert_eq!(v.policy, p.name());
            (v.rule.into_owned(), v.path.unwrap_or_default())
        })
        .collect()
}

#[test]
fn require_resources() {
    let full = json!({"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"cpu": "1", "memory": "128Mi"}});
    let ok = obj(json!({"apiVersion": "v1", "kind": "Pod", "spec": {
        "initContainers": [{"name": "i", "resources": full}],
        "containers": [{"name": "c", "resources": full}],
        "ephemeralContainers": [{"name": "debug"}]}}));
    assert!(found(&RequireResources::default(), &ok).is_empty());

    let bare = obj(json!({"apiVersion": "v1", "kind": "Pod", "spec": {
        "initContainers": [{"name": "i"}],
        "containers": [{"name": "c", "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "1Gi"}}}]}}));
    let v = found(&RequireResources::default(), &bare);
    assert_eq!(
        v,
        [
            (
                "requests".into(),
                "spec.initContainers[0].resources.requests.cpu".into()
            ),
            (
                "requests".into(),
                "spec.initContainers[0].resources.requests.memory".into()
            ),
            (
                "limits".into(),
                "spec.initContainers[0].resources.limits.cpu".into()
            ),
            (
                "limits".into(),
                "spec.initContainers[0].resources.limits.memory".into()
            ),
            (
                "limits".into(),
                "spec.containers[0].resources.limits.cpu".into()
            ),
        ]
    );
    // Configurable: memory limits only, init containers skipped.
    let config: RequireResources = serde_json::from_value(json!({
        "resources": ["memory"], "requests": false, "initContainers": false}))
    .unwrap();
    assert!(found(&config, &bare).is_empty());
    let msg = &RequireResources::default().evaluate(&bare, &PolicyContext::new())[0].message;
    assert!(msg.contains("container \"i\" has no cpu request"), "{msg}");
}

#[test]
fn forbid_sensitive_ports() {
    let pod = deployment(
        json!([{"name": "c", "ports": [{"containerPort": 8080}, {"containerPort": 22}, {"containerPort": 80, "hostPort": 2375}]}]),
    );
    assert_eq!(
        found(&ForbidSensitivePorts::default(), &pod),
        [
            (
                "container-port".into(),
                "spec.template.spec.containers[0].ports[1].containerPort".into()
            ),
            (
                "container-port".into(),
                "spec.template.spec.containers[0].ports[2].hostPort".into()
            ),
        ]
    );
    let svc = obj(
        json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "NodePort",
        "ports": [{"port": 443, "targetPort": "https"}, {"port": 8443, "targetPort": 6443, "nodePort": 30022}]}}),
    );
    assert_eq!(
        found(&ForbidSensitivePorts::default(), &svc),
        [("service-port".into(), "spec.ports[1].targetPort".into())]
    );
    let custom = ForbidSensitivePorts::new([30022, 8080]);
    assert_eq!(
        found(&custom, &svc),
        [("service-port".into(), "spec.ports[1].nodePort".into())]
    );
    assert_eq!(found(&custom, &pod).len(), 1);
    let cfg: ForbidSensitivePorts = serde_json::from_value(json!({})).unwrap();
    assert_eq!(cfg, ForbidSensitivePorts::default());
}

#[test]
fn allowed_registries() {
    let p = AllowedRegistries::new([
        "ghcr.io/acme",
        "registry.internal:5000",
        "docker.io/library",
    ]);
    let d = deployment(json!([
        {"name": "a", "image": "ghcr.io/acme/cart:1.2"},
        {"name": "b", "image": "ghcr.io/acme-evil/cart:1.2"},
        {"name": "c", "image": "registry.internal:5000/team/x@sha256:abc"},
        {"name": "d", "image": "nginx:1.27"},
        {"name": "e", "image": "bitnami/redis:7"},
        {"name": "f", "image": "quay.io/acme/cart:1"}
    ]));
    let v = found(&p, &d);
    let paths: Vec<_> = v.iter().map(|(_, p)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            "spec.template.spec.containers[1].image",
            "spec.template.spec.containers[4].image",
            "spec.template.spec.containers[5].image",
        ]
    );
    assert!(found(&AllowedRegistries::default(), &d).is_empty());
}

#[test]
fn image_ref_parsing() {
    let cases = [
        ("nginx", "docker.io", "library/nginx", None, None),
        (
            "nginx:1.27",
            "docker.io",
            "library/nginx",
            Some("1.27"),
            None,
        ),
        ("acme/app", "docker.io", "acme/app", None, None),
        ("localhost/app:dev", "localhost", "app", Some("dev"), None),
        (
            "localhost:5000/a/b:1",
            "localhost:5000",
            "a/b",
            Some("1"),
            None,
        ),
        (
            "gcr.io/p/i@sha256:00",
            "gcr.io",
            "p/i",
            None,
            Some("sha256:00"),
        ),
        (
            "gcr.io/p/i:v1@sha256:00",
            "gcr.io",
            "p/i",
            Some("v1"),
            Some("sha256:00"),
        ),
    ];
    for (image, registry, repo, tag, digest) in cases {
        let r = ImageRef::parse(image);
        assert_eq!(
            (
                r.registry.as_str(),
                r.repository.as_str(),
                r.tag.as_deref(),
                r.digest.as_deref()
            ),
            (registry, repo, tag, digest),
            "{image}"
        );
    }
}

#[test]
fn disallow_latest_tag_and_digests() {
    let d = deployment(json!([
        {"name": "a", "image": "nginx"},
        {"name": "b", "image": "nginx:latest"},
        {"name": "c", "image": "nginx:1.27"},
        {"name": "d", "image": "registry:5000/nginx"},
        {"name": "e", "image": "nginx@sha256:abc"}
    ]));
    let rules: Vec<_> = found(&DisallowLatestTag::default(), &d)
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(rules, ["untagged", "latest-tag", "untagged"]);
    let strict: Vec<_> = found(&DisallowLatestTag::with_digests(), &d)
        .into_iter()
        .map(|(r, _)| r)
        .collect();
    assert_eq!(strict, ["digest", "digest", "digest", "digest"]);
}

#[test]
fn require_labels() {
    let p = RequireLabels::new(["idp.dev/owner", "team"]);
    let d = obj(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "labels": {"idp.dev/owner": "", "team": "payments"}}}));
    assert_eq!(
        found(&p, &d),
        [(
            "missing-label".into(),
            "metadata.labels[\"idp.dev/owner\"]".into()
        )]
    );
    let cm = obj(json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}));
    assert!(
        found(&p, &cm).is_empty(),
        "ConfigMaps are not in the default kinds"
    );
    let every_kind: RequireLabels =
        serde_json::from_value(json!({"labels": ["team"], "kinds": []})).unwrap();
    assert_eq!(found(&every_kind, &cm).len(), 1);
    let labelled = obj(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "s", "labels": {"idp.dev/owner": "payments"}}}));
    assert!(found(&RequireLabels::default(), &labelled).is_empty());
}

#[test]
fn restrict_service_types() {
    let svc = |t: Option<&str>| {
        let mut v = json!({"apiVersion": "v1", "kind": "Service", "spec": {}});
        if let Some(t) = t {
            v["spec"]["type"] = json!(t);
        }
        obj(v)
    };
    let p = RestrictServiceTypes::default();
    assert_eq!(
        found(&p, &svc(Some("LoadBalancer"))),
        [("service-type".into(), "spec.type".into())]
    );
    assert_eq!(found(&p, &svc(Some("NodePort"))).len(), 1);
    assert!(found(&p, &svc(Some("ClusterIP"))).is_empty());
    assert!(found(&p, &svc(None)).is_empty());
    let only_lb: RestrictServiceTypes =
        serde_json::from_value(json!({"forbidden": ["LoadBalancer"]})).unwrap();
    assert!(found(&only_lb, &svc(Some("NodePort"))).is_empty());
}

#[test]
fn require_ingress_tls() {
    let ing = |spec: Value| {
        obj(json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "spec": spec}))
    };
    let p = RequireIngressTls::default();
    assert_eq!(
        found(&p, &ing(json!({"rules": [{"host": "a.example.com"}]}))),
        [("tls".into(), "spec.tls".into())]
    );
    assert_eq!(found(&p, &ing(json!({"tls": [], "rules": []}))).len(), 1);
    let partial = ing(json!({
        "tls": [{"hosts": ["a.example.com", "*.shop.example.com"], "secretName": "s"}],
        "rules": [{"host": "a.example.com"}, {"host": "eu.shop.example.com"}, {"host": "b.example.com"}, {}]
    }));
    assert_eq!(
        found(&p, &partial),
        [("host-without-tls".into(), "spec.rules[2].host".into())]
    );
}

#[test]
fn require_probes() {
    let probe = json!({"httpGet": {"path": "/", "port": 8080}});
    let ok = deployment(json!([{"name": "c", "livenessProbe": probe, "readinessProbe": probe}]));
    assert!(found(&RequireProbes::default(), &ok).is_empty());
    let missing = deployment(json!([{"name": "c", "livenessProbe": probe}, {"name": "d"}]));
    assert_eq!(
        found(&RequireProbes::default(), &missing),
        [
            (
                "readiness".into(),
                "spec.template.spec.containers[0].readinessProbe".into()
            ),
            (
                "liveness".into(),
                "spec.template.spec.containers[1].livenessProbe".into()
            ),
            (
                "readiness".into(),
                "spec.template.spec.containers[1].readinessProbe".into()
            ),
        ]
    );
    let job = obj(json!({"apiVersion": "batch/v1", "kind": "Job",
        "spec": {"template": {"spec": {"containers": [{"name": "j"}]}}}}));
    assert!(found(&RequireProbes::default(), &job).is_empty());
    let batch: RequireProbes =
        serde_json::from_value(json!({"batch": true, "startup": true})).unwrap();
    assert_eq!(found(&batch, &job).len(), 3);
}

#[test]
fn min_replicas_per_environment() {
    let with = |replicas: Option<Value>| {
        let mut v = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "spec": {}});
        if let Some(r) = replicas {
            v["spec"]["replicas"] = r;
        }
        obj(v)
    };
    let prod = PolicyContext::new().with_environment("prod".parse().unwrap());
    let dev = PolicyContext::new().with_environment("dev".parse().unwrap());
    let p = MinReplicas::default();
    assert_eq!(
        found_in(&p, &with(Some(json!(1))), &prod),
        [("replicas".into(), "spec.replicas".into())]
    );
    assert_eq!(
        found_in(&p, &with(None), &prod).len(),
        1,
        "missing replicas defaults to 1"
    );
    assert!(found_in(&p, &with(Some(json!(2))), &prod).is_empty());
    assert!(found_in(&p, &with(Some(json!(1))), &dev).is_empty());
    assert!(found_in(&p, &with(Some(json!(1))), &PolicyContext::new()).is_empty());
    let three_everywhere: MinReplicas =
        serde_json::from_value(json!({"min": 3, "environments": ["*"]})).unwrap();
    assert_eq!(
        found_in(&three_everywhere, &with(Some(json!(2))), &dev).len(),
        1
    );
    assert_eq!(found_in(&p, &with(Some(json!("two"))), &prod).len(), 1);
    let daemonset = obj(json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "spec": {}}));
    assert!(found_in(&p, &daemonset, &prod).is_empty());
}
