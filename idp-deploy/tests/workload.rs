//! Score workloads rendered per environment: every field of a realistic workload, a golden
//! file, determinism, clear errors for bad input, and property tests of the parser.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use idp_core::{ErrorKind, ManifestSet, Object};
use idp_deploy::workload::{
    CONFIG_HASH_ANNOTATION, CompositeProvisioner, EnvironmentProfile, RenderContext, StaticOutputs,
    Workload, expand_placeholders, render, render_file,
};
use proptest::prelude::*;
use serde_json::{Value, json};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cart")
        .join(name)
}

fn provisioner() -> CompositeProvisioner {
    CompositeProvisioner::with_defaults()
        .with_fallback(StaticOutputs::from_file(data("outputs.yaml")).unwrap())
}

fn ctx() -> RenderContext {
    RenderContext::new()
        .with_owner("group:default/team-a")
        .with_part_of("webshop")
        .with_image("ghcr.io/acme/cart-worker:7.0.1")
        .with_base_dir(data(""))
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

fn render_cart() -> ManifestSet {
    let workload = Workload::from_file(data("score.yaml")).unwrap();
    let profile = EnvironmentProfile::from_file(data("prod.yaml")).unwrap();
    block_on(render(&workload, &profile, &provisioner(), &ctx())).unwrap()
}

fn find<'a>(set: &'a ManifestSet, kind: &str, name: &str) -> &'a Object {
    set.iter()
        .find(|o| o.kind() == kind && o.name() == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", kinds(set)))
}

fn kinds(set: &ManifestSet) -> Vec<(String, String)> {
    set.iter()
        .map(|o| (o.kind().to_owned(), o.name().to_owned()))
        .collect()
}

fn at<'a>(o: &'a Object, pointer: &str) -> &'a Value {
    o.pointer(pointer)
        .unwrap_or_else(|| panic!("{} {} has no {pointer}", o.kind(), o.name()))
}

fn expected_labels() -> Value {
    json!({
        "app.kubernetes.io/instance": "cart-prod",
        "app.kubernetes.io/managed-by": "idp",
        "app.kubernetes.io/name": "cart",
        "app.kubernetes.io/part-of": "webshop",
        "cost-center": "cc-42",
        "idp.dev/environment": "prod",
        "idp.dev/owner": "team-a",
    })
}

fn selector() -> Value {
    json!({"app.kubernetes.io/instance": "cart-prod", "app.kubernetes.io/name": "cart"})
}

#[test]
fn renders_every_object_in_a_fixed_order_with_our_labels() {
    let set = render_cart();
    assert_eq!(
        kinds(&set),
        [
            ("ConfigMap", "cart-api-files"),
            ("ConfigMap", "cart-worker-files"),
            ("Deployment", "cart"),
            ("Service", "cart"),
            ("Ingress", "cart"),
            ("HorizontalPodAutoscaler", "cart"),
            ("PodDisruptionBudget", "cart"),
        ]
        .map(|(k, n)| (k.to_owned(), n.to_owned()))
    );
    let annotations = json!({
        "example.com/docs": "https://docs.example.com/cart",
        "example.com/on-call": "team-a",
    });
    for object in &set {
        assert_eq!(object.namespace(), Some("shop"), "{}", object.kind());
        assert_eq!(at(object, "/metadata/labels"), &expected_labels());
        if object.kind() != "Ingress" {
            assert_eq!(at(object, "/metadata/annotations"), &annotations);
        }
    }
}

#[test]
fn the_deployment_carries_containers_env_resources_probes_and_mounts() {
    let set = render_cart();
    let d = find(&set, "Deployment", "cart");
    assert_eq!(d.api_version(), "apps/v1");
    assert_eq!(
        d.pointer("/spec/replicas"),
        None,
        "the HPA owns replicas when autoscaling is on"
    );
    assert_eq!(at(d, "/spec/selector"), &json!({"matchLabels": selector()}));
    assert_eq!(at(d, "/spec/template/metadata/labels"), &expected_labels());
    let pod_annotations = at(d, "/spec/template/metadata/annotations");
    assert_eq!(pod_annotations["example.com/on-call"], "team-a");
    let hash = pod_annotations[CONFIG_HASH_ANNOTATION].as_str().unwrap();
    assert_eq!(hash.len(), 16);

    let pod = at(d, "/spec/template/spec");
    assert_eq!(
        pod["nodeSelector"],
        json!({"cloud.google.com/gke-accelerator": "nvidia-l4"})
    );
    assert_eq!(
        pod["tolerations"],
        json!([{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    );

    let api = &pod["containers"][0];
    assert_eq!(api["name"], "api");
    assert_eq!(api["image"], "ghcr.io/acme/cart-api:1.4.2");
    assert_eq!(api["command"], json!(["/app/cart"]));
    assert_eq!(api["args"], json!(["--listen", ":8080"]));
    assert_eq!(
        api["env"],
        json!([
            {"name": "DATABASE_URL", "value": "postgres://cart@cart-db.postgres.example.com:5432/cart"},
            {"name": "LOG_LEVEL", "value": "info"},
            {"name": "PAYMENTS_URL", "value": "http://payments.shop.svc.cluster.local:8443"},
            {"name": "PRICE_TAG", "value": "costs $5"},
            {"name": "REGION", "value": "eu-west-1"},
            {"name": "WORKLOAD", "value": "cart"},
        ])
    );
    assert_eq!(
        api["resources"],
        json!({"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}})
    );
    assert_eq!(
        api["livenessProbe"],
        json!({"httpGet": {"path": "/healthz", "port": 8080}})
    );
    assert_eq!(
        api["readinessProbe"],
        json!({"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP",
                           "httpHeaders": [{"name": "X-Probe", "value": "readiness"}]}})
    );
    assert_eq!(
        api["volumeMounts"],
        json!([
            {"name": "api-files", "mountPath": "/etc/cart/app.toml", "subPath": "etc_cart_app.toml", "readOnly": true},
            {"name": "api-files", "mountPath": "/etc/cart/raw.txt", "subPath": "etc_cart_raw.txt", "readOnly": true},
        ])
    );

    let worker = &pod["containers"][1];
    assert_eq!(worker["name"], "worker");
    assert_eq!(
        worker["image"], "ghcr.io/acme/cart-worker:7.0.1",
        "`.` takes the deploy-time image"
    );
    assert_eq!(worker["args"], json!(["work"]));
    assert_eq!(worker.get("command"), None);
    assert_eq!(
        worker["env"],
        json!([{"name": "LOG_LEVEL", "value": "info"}])
    );
    assert_eq!(
        worker["resources"],
        json!({"requests": {"cpu": "2", "memory": "8Gi", "nvidia.com/gpu": "1"},
               "limits": {"nvidia.com/gpu": "1"}}),
        "the profile's overrides, GPU included, pass through"
    );
    assert_eq!(worker.get("livenessProbe"), None);
    assert_eq!(
        worker["readinessProbe"],
        json!({"exec": {"command": ["/bin/check", "--quick"]}})
    );
    assert_eq!(
        worker["volumeMounts"],
        json!([
            {"name": "worker-files", "mountPath": "/etc/worker/policy.json", "subPath": "etc_worker_policy.json", "readOnly": true},
            {"name": "worker-volume-0", "mountPath": "/var/cache/worker", "subPath": "worker", "readOnly": true},
        ])
    );

    assert_eq!(
        pod["volumes"],
        json!([
            {"name": "api-files", "configMap": {"name": "cart-api-files", "items": [
                {"key": "etc_cart_app.toml", "path": "etc_cart_app.toml", "mode": 0o644},
                {"key": "etc_cart_raw.txt", "path": "etc_cart_raw.txt"},
            ]}},
            {"name": "worker-files", "configMap": {"name": "cart-worker-files", "items": [
                {"key": "etc_worker_policy.json", "path": "etc_worker_policy.json"},
            ]}},
            {"name": "worker-volume-0", "persistentVolumeClaim": {"claimName": "cart-cache", "readOnly": true}},
        ])
    );
}

#[test]
fn files_become_config_maps_with_expanded_content() {
    let set = render_cart();
    let api = find(&set, "ConfigMap", "cart-api-files");
    assert_eq!(api.api_version(), "v1");
    assert_eq!(
        at(api, "/data"),
        &json!({
            "etc_cart_app.toml": "name = \"cart\"\ndb = \"cart-db.postgres.example.com\"\n",
            "etc_cart_raw.txt": "kept as is: ${resources.db.host}",
        })
    );
    let worker = find(&set, "ConfigMap", "cart-worker-files");
    assert_eq!(
        at(worker, "/data"),
        &json!({"etc_worker_policy.json": "{\"retries\": 5}\n"}),
        "a `source` file is read next to the Score file and expanded"
    );
}

#[test]
fn service_ingress_hpa_and_pdb() {
    let set = render_cart();
    let svc = find(&set, "Service", "cart");
    assert_eq!(svc.api_version(), "v1");
    assert_eq!(
        at(svc, "/spec"),
        &json!({
            "selector": selector(),
            "ports": [
                {"name": "metrics", "port": 9090, "targetPort": 9090, "protocol": "TCP"},
                {"name": "web", "port": 80, "targetPort": 8080, "protocol": "TCP"},
            ],
        })
    );

    let ing = find(&set, "Ingress", "cart");
    assert_eq!(ing.api_version(), "networking.k8s.io/v1");
    let path = json!({"paths": [{"path": "/", "pathType": "Prefix",
        "backend": {"service": {"name": "cart", "port": {"name": "web"}}}}]});
    assert_eq!(
        at(ing, "/spec"),
        &json!({
            "ingressClassName": "nginx",
            "rules": [
                {"host": "cart.example.com", "http": path.clone()},
                {"host": "shop.example.com", "http": path},
            ],
            "tls": [{"hosts": ["cart.example.com", "shop.example.com"], "secretName": "cart-tls"}],
        })
    );

    let hpa = find(&set, "HorizontalPodAutoscaler", "cart");
    assert_eq!(hpa.api_version(), "autoscaling/v2");
    assert_eq!(
        at(hpa, "/spec"),
        &json!({
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "cart"},
            "minReplicas": 3,
            "maxReplicas": 12,
            "metrics": [{"type": "Resource", "resource": {"name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 65}}}],
        })
    );

    let pdb = find(&set, "PodDisruptionBudget", "cart");
    assert_eq!(pdb.api_version(), "policy/v1");
    assert_eq!(
        at(pdb, "/spec"),
        &json!({"minAvailable": 2, "selector": {"matchLabels": selector()}})
    );
}

#[test]
fn output_matches_the_golden_file_and_is_deterministic() {
    let yaml = render_cart().to_yaml().unwrap();
    assert_eq!(yaml, render_cart().to_yaml().unwrap());
    let golden = data("golden-prod.yaml");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, &yaml).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap();
    assert_eq!(
        yaml,
        expected,
        "rendered YAML differs from {}; rerun with UPDATE_GOLDEN=1 after checking the change",
        golden.display()
    );
    // What we write, the manifest reader reads back unchanged.
    assert_eq!(
        ManifestSet::parse(yaml.as_bytes(), None).unwrap(),
        render_cart()
    );
}

#[test]
fn a_changed_file_changes_the_config_hash() {
    let hash = |set: &ManifestSet| {
        at(
            find(set, "Deployment", "cart"),
            "/spec/template/metadata/annotations",
        )[CONFIG_HASH_ANNOTATION]
            .clone()
    };
    let before = render_cart();
    let workload = Workload::from_file(data("score.yaml")).unwrap();
    let mut profile = EnvironmentProfile::from_file(data("prod.yaml")).unwrap();
    profile.env.insert("RETRIES".into(), "6".into());
    let after = block_on(render(&workload, &profile, &provisioner(), &ctx())).unwrap();
    assert_ne!(hash(&before), hash(&after));
}

#[test]
fn a_minimal_workload_with_an_empty_profile() {
    let workload = Workload::from_yaml(
        "apiVersion: score.dev/v1b1\nmetadata: {name: hello}\ncontainers: {app: {image: nginx:1.27}}\n",
        None,
    )
    .unwrap();
    let set = block_on(render(
        &workload,
        &EnvironmentProfile::default(),
        &CompositeProvisioner::new(),
        &RenderContext::new(),
    ))
    .unwrap();
    assert_eq!(set.len(), 1);
    let d = &set.objects()[0];
    assert_eq!(d.namespace(), Some("default"));
    assert_eq!(at(d, "/spec/replicas"), &json!(1));
    assert_eq!(
        at(d, "/metadata/labels"),
        &json!({
            "app.kubernetes.io/instance": "hello",
            "app.kubernetes.io/managed-by": "idp",
            "app.kubernetes.io/name": "hello",
        })
    );
    assert_eq!(d.pointer("/metadata/annotations"), None);
    assert_eq!(
        at(d, "/spec/template/spec"),
        &json!({"containers": [{"name": "app", "image": "nginx:1.27"}]})
    );
}

#[test]
fn render_file_reads_sources_next_to_the_score_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("score.yaml"),
        "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers:\n  app:\n    image: nginx\n    files: [{target: /etc/motd, source: motd.txt}]\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("motd.txt"), "hello $$ ${metadata.name}").unwrap();
    let set = block_on(render_file(
        dir.path().join("score.yaml"),
        &EnvironmentProfile::default(),
        &CompositeProvisioner::new(),
    ))
    .unwrap();
    assert_eq!(
        at(&set.objects()[0], "/data/etc_motd"),
        &json!("hello $ web")
    );
}

#[test]
fn sources_must_stay_inside_the_score_folder() {
    let dir = tempfile::tempdir().unwrap();
    let inner = dir.path().join("svc");
    std::fs::create_dir(&inner).unwrap();
    std::fs::write(dir.path().join("secret.txt"), "do not read").unwrap();
    for source in ["../secret.txt", "/etc/hostname"] {
        std::fs::write(
            inner.join("score.yaml"),
            format!("apiVersion: score.dev/v1b1\nmetadata: {{name: web}}\ncontainers:\n  app:\n    image: nginx\n    files: [{{target: /etc/x, source: \"{source}\"}}]\n"),
        )
        .unwrap();
        let err = block_on(render_file(
            inner.join("score.yaml"),
            &EnvironmentProfile::default(),
            &CompositeProvisioner::new(),
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("container `app`: files[/etc/x]"), "{err}");
        assert!(err.contains("outside the Score file's folder"), "{err}");
    }
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(dir.path().join("secret.txt"), inner.join("link.txt")).unwrap();
        std::fs::write(
            inner.join("score.yaml"),
            "apiVersion: score.dev/v1b1\nmetadata: {name: web}\ncontainers:\n  app:\n    image: nginx\n    files: [{target: /etc/x, source: link.txt}]\n",
        )
        .unwrap();
        let err = block_on(render_file(
            inner.join("score.yaml"),
            &EnvironmentProfile::default(),
            &CompositeProvisioner::new(),
        ))
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("outside the Score file's folder"),
            "a symlink out: {err}"
        );
    }
}

#[test]
fn files_larger_than_a_config_map_are_refused() {
    let big = "x".repeat(1024 * 1024 + 1);
    let score = format!(
        "{HEAD}containers:\n  api:\n    image: x\n    files: [{{target: /big, content: {big}}}]\n"
    );
    let text = render_err(&score, "{}", &CompositeProvisioner::new()).to_string();
    assert!(text.contains("at most 1 MiB"), "{text}");
}

// ---- bad input ----------------------------------------------------------------------

fn parse_err(text: &str) -> String {
    Workload::from_yaml(text, Some(Path::new("score.yaml")))
        .unwrap_err()
        .to_string()
}

const HEAD: &str = "apiVersion: score.dev/v1b1\nmetadata:\n  name: cart\n";

#[test]
fn unknown_fields_are_named_with_their_line() {
    let err = parse_err(&format!(
        "{HEAD}containers:\n  app:\n    image: x\n    imagePullPolicy: Always\n"
    ));
    assert!(
        err.starts_with("score.yaml:7:5: invalid Score file:"),
        "{err}"
    );
    assert!(err.contains("unknown field `imagePullPolicy`"), "{err}");

    let err = parse_err(&format!(
        "{HEAD}containers:\n  app:\n    image: x\nservice:\n  ports:\n    web: {{port: 80, nodePort: 30080}}\n"
    ));
    assert!(err.starts_with("score.yaml:9:"), "{err}");
    assert!(err.contains("nodePort"), "{err}");

    let err = parse_err(&format!(
        "{HEAD}containers: {{app: {{image: x}}}}\nextra: 1\n"
    ));
    assert!(err.contains("unknown field `extra`"), "{err}");
}

#[test]
fn schema_rules_have_clear_messages() {
    let cases = [
        (
            "apiVersion: score.dev/v1\nmetadata: {name: cart}\ncontainers: {app: {image: x}}\n",
            "score.yaml:1: invalid Score file: apiVersion: `score.dev/v1` is not supported",
        ),
        (
            "apiVersion: score.dev/v1b1\nmetadata: {name: Cart}\ncontainers: {app: {image: x}}\n",
            "metadata.name: `Cart` is not a valid name",
        ),
        (
            "apiVersion: score.dev/v1b1\nmetadata: {name: cart}\ncontainers: {}\n",
            "score.yaml:3: invalid Score file: containers: a workload needs at least one container",
        ),
        (
            "apiVersion: score.dev/v1b1\nmetadata: {name: cart}\n",
            "missing field `containers`",
        ),
        (
            "apiVersion: score.dev/v1b1\nmetadata: {name: cart}\ncontainers:\n  app:\n    image: x\n    files:\n      - {target: /a, content: x, source: y}\n",
            "score.yaml:7:",
        ),
        (
            "apiVersion: score.dev/v1b1\nmetadata: {name: cart}\ncontainers:\n  app:\n    image: x\n    files:\n      - {target: /a, content: x, source: y}\n",
            "needs exactly one of `content`, `binaryContent` or `source`",
        ),
        (
            "apiVersion: score.dev/v1b1\nmetadata: {name: cart}\ncontainers:\n  app:\n    image: x\n    files: [{target: relative, content: x}]\n",
            "must be an absolute path",
        ),
        (
            "apiVersion: score.dev/v1b1\nmetadata: {name: cart}\ncontainers:\n  app:\n    image: x\n    files: [{target: /a, content: x, mode: \"0999\"}]\n",
            "mode `0999` is not an octal mode",
        ),
        (
            "apiVersion: score.dev/v1b1\nmetadata: {name: cart}\ncontainers:\n  app:\n    image: x\n    livenessProbe: {}\n",
            "exactly one of `httpGet` or `exec`",
        ),
        (
            "apiVersion: score.dev/v1b1\nmetadata: {name: cart}\ncontainers:\n  app:\n    image: x\n    resources:\n      requests: {cpus: 1}\n",
            "score.yaml:7: invalid Score file: containers.app.resources.requests.cpus: unknown resource",
        ),
        (
            "apiVersion: score.dev/v1b1\nmetadata: {name: cart}\ncontainers: {app: {image: x}}\nservice:\n  ports:\n    web: {port: 70000}\n",
            "score.yaml:6:",
        ),
        (
            "apiVersion: score.dev/v1b1\nmetadata: {name: cart}\ncontainers: {app: {image: x}}\nservice:\n  ports:\n    web: {port: 80, protocol: SCTP}\n",
            "SCTP",
        ),
        (
            "apiVersion: score.dev/v1b1\nmetadata: {name: cart}\ncontainers:\n  app:\n    image: x\n    livenessProbe:\n      httpGet: {path: /, port: 80, scheme: ftp}\n",
            "score.yaml:7: invalid Score file: containers.app.livenessProbe.httpGet.scheme: `ftp` is not",
        ),
        (
            "apiVersion: score.dev/v1b1\nmetadata: {name: cart}\ncontainers:\n  app:\n    image: x\n    variables: {\"A=B\": x}\n",
            "containers.app.variables: `A=B` is not a valid variable name",
        ),
        ("a: [", "score.yaml:1"),
    ];
    for (text, expected) in cases {
        let err = parse_err(text);
        assert!(
            err.contains(expected),
            "for\n{text}\nexpected `{expected}` in: {err}"
        );
    }
}

fn render_err(score: &str, profile: &str, provisioner: &CompositeProvisioner) -> idp_core::Error {
    let workload = Workload::from_yaml(score, None).unwrap();
    let profile = EnvironmentProfile::from_yaml(profile, None).unwrap();
    block_on(render(
        &workload,
        &profile,
        provisioner,
        &RenderContext::new(),
    ))
    .unwrap_err()
}

#[test]
fn unresolved_placeholders_name_the_container_field_and_placeholder() {
    let score = format!(
        "{HEAD}containers:\n  api:\n    image: x\n    variables:\n      DB: ${{resources.db.hots}}\nresources:\n  db: {{type: postgres}}\n"
    );
    let statics = StaticOutputs::from_yaml("db: {host: h, port: 5432}\n", None).unwrap();
    let err = render_err(
        &score,
        "{}",
        &CompositeProvisioner::new().with("postgres", statics),
    );
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let text = err.to_string();
    assert!(text.contains("container `api`"), "{text}");
    assert!(text.contains("variables.DB"), "{text}");
    assert!(text.contains("`${resources.db.hots}`"), "{text}");
    assert!(text.contains("known: host, port"), "{text}");

    let score = format!(
        "{HEAD}containers:\n  api:\n    image: x\n    files: [{{target: /a, content: \"${{resources.cache.host}}\"}}]\n"
    );
    let text = render_err(&score, "{}", &CompositeProvisioner::new()).to_string();
    assert!(text.contains("files[/a].content"), "{text}");
    assert!(text.contains("no resource `cache`"), "{text}");

    let score = format!(
        "{HEAD}containers:\n  api:\n    image: x\n    variables: {{A: \"${{resources.env\"}}\n"
    );
    let text = render_err(&score, "{}", &CompositeProvisioner::new()).to_string();
    assert!(text.contains("no closing `}`"), "{text}");
}

#[test]
fn render_problems_say_what_to_do() {
    let score =
        format!("{HEAD}containers: {{api: {{image: x}}}}\nresources: {{bucket: {{type: s3}}}}\n");
    let err = render_err(&score, "{}", &CompositeProvisioner::with_defaults()).to_string();
    assert!(
        err.contains("no provisioner for resource type `s3`")
            && err.contains("environment, service"),
        "{err}"
    );

    let score = format!("{HEAD}containers: {{api: {{image: .}}}}\n");
    let err = render_err(&score, "{}", &CompositeProvisioner::new()).to_string();
    assert!(
        err.contains("container `api`: image:") && err.contains("--image"),
        "{err}"
    );

    let score = format!("{HEAD}containers: {{api: {{image: x}}}}\n");
    let err = render_err(
        &score,
        "containers: {web: {image: y}}\n",
        &CompositeProvisioner::new(),
    );
    assert!(
        err.to_string().contains("overrides container `web`"),
        "{err}"
    );

    let err = render_err(
        &score,
        "ingress: {hosts: [a.example.com]}\n",
        &CompositeProvisioner::new(),
    );
    assert!(err.to_string().contains("publishes no ports"), "{err}");

    let statics = StaticOutputs::from_yaml("other: {}\n", Some(Path::new("out.yaml"))).unwrap();
    let score =
        format!("{HEAD}containers: {{api: {{image: x}}}}\nresources: {{db: {{type: postgres}}}}\n");
    let err = render_err(
        &score,
        "{}",
        &CompositeProvisioner::new().with_fallback(statics),
    );
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(
        err.to_string().contains("no outputs for resource `db`"),
        "{err}"
    );
    assert!(err.to_string().contains("in out.yaml"), "{err}");
}

#[test]
fn profile_errors_name_the_field_and_line() {
    let err =
        EnvironmentProfile::from_yaml("name: prod\nreplica: 3\n", Some(Path::new("prod.yaml")))
            .unwrap_err()
            .to_string();
    assert!(err.starts_with("prod.yaml:2:1:"), "{err}");
    assert!(err.contains("unknown field `replica`"), "{err}");
    let err = EnvironmentProfile::from_yaml(
        "podDisruptionBudget:\n  minAvailable: half\n",
        Some(Path::new("prod.yaml")),
    )
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("prod.yaml:2:"), "{err}");
    assert!(err.contains("minAvailable `half`"), "{err}");
    let err =
        EnvironmentProfile::from_yaml("autoscaling: {minReplicas: 5, maxReplicas: 2}\n", None)
            .unwrap_err()
            .to_string();
    assert!(err.contains("at least minReplicas"), "{err}");
}

// ---- properties ---------------------------------------------------------------------

fn yaml_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9./:-]{0,12}",
        Just("${resources.db.host}".to_owned()),
        Just("$$".to_owned()),
        Just("\"\"".to_owned()),
        Just("[]".to_owned()),
        Just("{}".to_owned()),
        Just("~".to_owned()),
        Just("0644".to_owned()),
        "[0-9]{1,6}",
    ]
}

fn score_like() -> impl Strategy<Value = String> {
    let keys = prop::sample::select(vec![
        "image",
        "command",
        "args",
        "variables",
        "files",
        "volumes",
        "resources",
        "livenessProbe",
        "readinessProbe",
        "target",
        "content",
        "source",
        "mode",
        "httpGet",
        "exec",
        "path",
        "port",
        "requests",
        "limits",
        "cpu",
        "memory",
        "ports",
        "type",
    ]);
    prop::collection::vec((0usize..4, keys, yaml_scalar(), any::<bool>()), 0..20).prop_map(
        |lines| {
            let mut out = String::from(
                "apiVersion: score.dev/v1b1\nmetadata: {name: cart}\ncontainers:\n  app:\n",
            );
            for (depth, key, value, dash) in lines {
                let indent = "  ".repeat(depth + 2);
                let dash = if dash { "- " } else { "" };
                writeln!(out, "{indent}{dash}{key}: {value}").unwrap();
            }
            out
        },
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = Workload::from_yaml(&text, None);
        let _ = EnvironmentProfile::from_yaml(&text, None);
        let _ = StaticOutputs::from_yaml(&text, None);
    }

    #[test]
    fn score_shaped_input_parses_or_fails_with_a_location(text in score_like()) {
        match Workload::from_yaml(&text, Some(Path::new("s.yaml"))) {
            Ok(w) => prop_assert_eq!(w.name(), "cart"),
            Err(e) => {
                prop_assert_eq!(e.kind(), ErrorKind::InvalidInput);
                prop_assert!(e.to_string().starts_with("s.yaml:"), "{}", e);
            }
        }
    }

    #[test]
    fn expansion_never_panics_and_escapes_round_trip(text in "[a-z${}.$ ]{0,40}") {
        let _ = expand_placeholders(&text, &mut |p| Ok(p.to_owned()));
        let escaped = text.replace('$', "$$");
        let out = expand_placeholders(&escaped, &mut |_| Err("none".to_owned()));
        prop_assert_eq!(out, Ok(text));
    }
}
