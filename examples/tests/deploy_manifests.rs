//! examples/deploy/: every manifest parses with idp-core, the Deployment passes the
//! server's own policy (Pod Security Standards restricted + guardrails, as production),
//! the RBAC covers what the server does and nothing cluster-wide beyond it, the ConfigMap's
//! idp.yaml is a valid server config, and everything applies to idp-testkit's simulated
//! cluster through idp-core's Applier (the real kube client). When `kubectl` is installed,
//! `kubectl apply --dry-run=client --validate=false` accepts the files too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use idp_core::cluster::{Applier, ApplyOutcome, Cluster, Inventory};
use idp_core::model::Enforcement;
use idp_core::{EnvironmentName, ManifestSet, Object, PolicyContext};
use idp_examples::server::Config;
use idp_policy::pss::PodSecurity;
use idp_policy::{PolicyOptions, PolicySet};
use serde_json::{Value, json};

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// Every `*.yaml` in examples/deploy/, sorted.
fn manifest_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(deploy_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 8, "the manifests are there: {files:?}");
    files
}

fn all_objects() -> ManifestSet {
    let mut set = ManifestSet::new();
    for file in manifest_files() {
        let one = ManifestSet::from_file(&file)
            .unwrap_or_else(|e| panic!("{}: {}", file.display(), e.report()));
        assert!(!one.is_empty(), "{} holds objects", file.display());
        for object in &one {
            set.push(object.clone());
        }
    }
    set
}

fn find<'a>(set: &'a ManifestSet, kind: &str, name: &str) -> &'a Object {
    set.iter()
        .find(|o| o.kind() == kind && o.name() == name)
        .unwrap_or_else(|| panic!("examples/deploy has a {kind} {name}"))
}

#[test]
fn every_kind_the_brief_asks_for_is_there() {
    let set = all_objects();
    for (kind, name) in [
        ("Namespace", "idp-system"),
        ("ServiceAccount", "idp-server"),
        ("ClusterRole", "idp-server"),
        ("ClusterRoleBinding", "idp-server"),
        ("Role", "idp-server-leader-election"),
        ("RoleBinding", "idp-server-leader-election"),
        ("ConfigMap", "idp-server"),
        ("Deployment", "idp-server"),
        ("Service", "idp-server"),
        ("Lease", "idp-server-leader"),
        ("ValidatingWebhookConfiguration", "idp-server"),
    ] {
        find(&set, kind, name);
    }
    let deployment = find(&set, "Deployment", "idp-server").to_value();
    assert_eq!(deployment["spec"]["replicas"], 2);
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/healthz");
    // Webhook secrets come from a Secret, never from the manifest.
    let env = container["env"].as_array().unwrap();
    let github = env
        .iter()
        .find(|e| e["name"] == "IDP_GITHUB_WEBHOOK_SECRET")
        .expect("the GitHub webhook secret is set from the environment");
    assert_eq!(
        github["valueFrom"]["secretKeyRef"]["name"],
        "idp-server-webhooks"
    );
    assert!(
        env.iter()
            .all(|e| e.get("value").is_none() || !e["name"].as_str().unwrap().contains("SECRET")),
        "no secret value inline: {env:?}"
    );
    // The webhook points at the server's admission endpoint.
    let hook = find(&set, "ValidatingWebhookConfiguration", "idp-server").to_value();
    assert_eq!(
        hook["webhooks"][0]["clientConfig"]["service"]["path"],
        "/admission/validate"
    );
    assert_eq!(
        hook["webhooks"][0]["clientConfig"]["service"]["name"],
        find(&set, "Service", "idp-server").name()
    );
}

#[test]
fn the_deployment_passes_the_servers_own_policy() {
    let set = all_objects();
    let mut policies = PolicySet::new()
        .named("idp-server")
        .with_policy(PodSecurity::restricted());
    for policy in idp_policy::guardrails::all() {
        policies.push(policy, PolicyOptions::new());
    }
    // As production: the guardrails that only apply there (replicas) apply too.
    let ctx = PolicyContext::new().with_environment(EnvironmentName::new("production").unwrap());
    for kind in ["Deployment", "Service"] {
        let object = find(&set, kind, "idp-server");
        let result = policies.check_object(object, &ctx);
        let denying: Vec<String> = result
            .violations
            .iter()
            .map(|v| format!("{:?} {}/{}: {}", v.enforcement, v.policy, v.rule, v.message))
            .collect();
        assert!(
            result.allowed
                && result
                    .violations
                    .iter()
                    .all(|v| v.enforcement != Enforcement::Deny),
            "{kind} idp-server is denied: {denying:#?}"
        );
        assert!(
            result.violations.is_empty(),
            "{kind} idp-server has warnings: {denying:#?}"
        );
    }

    // The same check denies a weakened copy (so the check above can fail).
    let mut weak = find(&set, "Deployment", "idp-server").to_value();
    weak["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] =
        json!(true);
    weak["spec"]["replicas"] = json!(1);
    let weak = Object::from_value(weak).unwrap();
    let result = policies.check_object(&weak, &ctx);
    assert!(!result.allowed, "{:#?}", result.violations);
}

/// What the ClusterRole grants: (group, resource) → verbs.
fn grants(role: &Value) -> Vec<(String, String, Vec<String>)> {
    let mut out = Vec::new();
    for rule in role["rules"].as_array().unwrap() {
        let verbs: Vec<String> = rule["verbs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        for group in rule["apiGroups"].as_array().unwrap() {
            for resource in rule["resources"].as_array().unwrap() {
                out.push((
                    group.as_str().unwrap().to_owned(),
                    resource.as_str().unwrap().to_owned(),
                    verbs.clone(),
                ));
            }
        }
    }
    out
}

#[test]
fn rbac_is_least_privilege() {
    let set = all_objects();
    let role = find(&set, "ClusterRole", "idp-server").to_value();
    let grants = grants(&role);
    let can = |group: &str, resource: &str, verb: &str| {
        grants
            .iter()
            .any(|(g, r, v)| g == group && r == resource && v.iter().any(|x| x == verb))
    };
    // What deployments (server-side apply = patch), previews and health need.
    for (group, resource) in [
        ("", "namespaces"),
        ("", "configmaps"),
        ("", "secrets"),
        ("", "services"),
        ("", "resourcequotas"),
        ("", "limitranges"),
        ("apps", "deployments"),
        ("networking.k8s.io", "ingresses"),
        ("networking.k8s.io", "networkpolicies"),
    ] {
        for verb in ["get", "list", "patch", "delete"] {
            assert!(can(group, resource, verb), "{verb} {group}/{resource}");
        }
    }
    assert!(can("", "pods", "list") && !can("", "pods", "delete"));
    assert!(can("", "events", "create"));
    // Nothing it does not use.
    for (g, r, v) in &grants {
        assert!(
            !v.iter()
                .any(|x| x == "*" || x == "escalate" || x == "bind" || x == "impersonate"),
            "{g}/{r}: {v:?}"
        );
        assert!(r != "*" && g != "*", "no wildcards: {g}/{r}");
        assert!(
            !["pods/exec", "nodes", "clusterroles", "roles", "leases"].contains(&r.as_str()),
            "{g}/{r} is not needed cluster-wide"
        );
    }
    // Leases only in its own namespace, renewals only of its own Lease.
    let leader = find(&set, "Role", "idp-server-leader-election").to_value();
    assert_eq!(leader["metadata"]["namespace"], "idp-system");
    let lease = find(&set, "Lease", "idp-server-leader");
    for rule in leader["rules"].as_array().unwrap() {
        let verbs = rule["verbs"].as_array().unwrap();
        if verbs.iter().any(|v| v == "update") {
            assert_eq!(rule["resourceNames"], json!([lease.name()]));
        }
    }
}

fn audit_rbac_file() -> PathBuf {
    deploy_dir().join("audit").join("rbac.yaml")
}

#[test]
fn the_audit_rbac_is_apart_reads_and_writes_only_reports() {
    let set = all_objects();
    assert!(
        set.iter().all(|o| !o.name().ends_with("-audit")),
        "`kubectl apply -f examples/deploy/` must not grant the audit's reads"
    );
    let audit =
        ManifestSet::from_file(audit_rbac_file()).unwrap_or_else(|e| panic!("{}", e.report()));
    let role = find(&audit, "ClusterRole", "idp-server-audit").to_value();
    for (group, resource, verbs) in grants(&role) {
        if group == "wgpolicyk8s.io" {
            assert!(
                ["policyreports", "clusterpolicyreports"].contains(&resource.as_str()),
                "{resource}"
            );
            for verb in ["get", "list", "create", "patch", "delete"] {
                assert!(verbs.iter().any(|v| v == verb), "{verb} {resource}");
            }
        } else if group == "constraints.gatekeeper.sh" {
            // The audit's findings, in the status of Gatekeeper's constraints only.
            assert_eq!(
                (resource.as_str(), verbs.as_slice()),
                ("*/status", &["patch".to_owned()][..])
            );
        } else {
            assert_eq!(verbs, ["get", "list"], "{group}/{resource}: reads only");
        }
    }
    // Bound to the server's own service account.
    let binding = find(&audit, "ClusterRoleBinding", "idp-server-audit").to_value();
    assert_eq!(binding["roleRef"]["name"], "idp-server-audit");
    let account = find(&set, "ServiceAccount", "idp-server");
    assert_eq!(
        binding["subjects"],
        json!([{"kind": "ServiceAccount", "name": account.name(), "namespace": account.namespace()}])
    );
}

#[test]
fn the_configmaps_commented_audit_settings_are_a_valid_config() {
    let set = all_objects();
    let cm = find(&set, "ConfigMap", "idp-server").to_value();
    let text = cm["data"]["idp.yaml"].as_str().expect("data.idp.yaml");
    // Uncomment the `# audit:` block: the lines after it that are commented one level
    // deeper.
    let mut lines = Vec::new();
    let mut indent = None;
    for line in text.lines() {
        let trimmed = line.trim_start();
        let depth = line.len() - trimmed.len();
        match indent {
            None if trimmed == "# audit:" => {
                indent = Some(depth);
                lines.push(format!("{}audit:", " ".repeat(depth)));
            }
            Some(d) if depth == d && trimmed.starts_with("#   ") => {
                lines.push(format!("{}{}", " ".repeat(d), &trimmed[2..]));
            }
            Some(_) => {
                indent = None;
                lines.push(line.to_owned());
            }
            None => lines.push(line.to_owned()),
        }
    }
    let uncommented = lines.join("\n");
    assert!(
        uncommented.contains("reportLayout: perResource"),
        "{uncommented}"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idp.yaml");
    std::fs::write(&path, &uncommented).unwrap();
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{}\n{uncommented}", e.report()));
    let audit = config.policy.audit.expect("policy.audit");
    assert_eq!(
        audit.report_layout,
        idp_policy::policy_report::ReportLayout::PerResource
    );
    assert!(audit.skip_controlled);
    assert_eq!(audit.exclude_namespaces, ["kube-system"]);
}

#[test]
fn the_configmap_holds_a_valid_server_config() {
    let set = all_objects();
    let cm = find(&set, "ConfigMap", "idp-server").to_value();
    let text = cm["data"]["idp.yaml"].as_str().expect("data.idp.yaml");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idp.yaml");
    std::fs::write(&path, text).unwrap();
    let config = Config::load(&path).unwrap_or_else(|e| panic!("{}", e.report()));
    assert!(
        config.catalog.remote.is_some(),
        "replicas share Git: the catalog comes from a remote"
    );
    // The Deployment mounts it where its arguments say.
    let deployment = find(&set, "Deployment", "idp-server").to_value();
    let args = deployment["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(args.contains("/etc/idp/idp.yaml"), "{args}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_applies_to_the_simulated_cluster() {
    let fake = idp_testkit::FakeCluster::start().await.unwrap();
    let cluster = Cluster::new(fake.client());
    // The simulated cluster serves no admissionregistration.k8s.io API: stand in with
    // CustomResourceDefinitions of the same group, kind and scope.
    let mut stand_ins = ManifestSet::new();
    for (kind, plural) in [
        (
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
        ),
        (
            "MutatingWebhookConfiguration",
            "mutatingwebhookconfigurations",
        ),
    ] {
        stand_ins.push(
            Object::from_value(json!({
                "apiVersion": "apiextensions.k8s.io/v1",
                "kind": "CustomResourceDefinition",
                "metadata": {"name": format!("{plural}.admissionregistration.k8s.io")},
                "spec": {
                    "group": "admissionregistration.k8s.io",
                    "scope": "Cluster",
                    "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase()},
                    "versions": [{"name": "v1", "served": true, "storage": true,
                        "schema": {"openAPIV3Schema": {"type": "object",
                            "x-kubernetes-preserve-unknown-fields": true}}}],
                },
            }))
            .unwrap(),
        );
    }
    Applier::new(
        cluster.clone(),
        Inventory::new("default", "webhook-stand-ins").unwrap(),
    )
    .apply(&stand_ins)
    .await
    .unwrap_or_else(|e| panic!("{}", e.report()));

    let set = all_objects();
    let applier = Applier::new(
        cluster,
        Inventory::new("idp-system", "idp-server-install").unwrap(),
    )
    .with_field_manager("deploy-manifests-test");
    let report = applier
        .apply(&set)
        .await
        .unwrap_or_else(|e| panic!("{}", e.report()));
    assert_eq!(report.objects.len(), set.len());
    assert_eq!(report.count(ApplyOutcome::Created), set.len(), "{report}");
    let deployment = fake
        .object("apps", "deployments", "idp-system", "idp-server")
        .expect("the Deployment is in the cluster");
    assert_eq!(deployment["spec"]["replicas"], 2);
    assert!(
        fake.object(
            "coordination.k8s.io",
            "leases",
            "idp-system",
            "idp-server-leader"
        )
        .is_some()
    );
    assert!(
        fake.object(
            "rbac.authorization.k8s.io",
            "clusterroles",
            "",
            "idp-server"
        )
        .is_some()
    );
    assert!(
        fake.object(
            "admissionregistration.k8s.io",
            "validatingwebhookconfigurations",
            "",
            "idp-server"
        )
        .is_some()
    );
    // Applying again changes nothing.
    let again = applier.apply(&set).await.unwrap();
    assert_eq!(again.count(ApplyOutcome::Unchanged), set.len(), "{again}");

    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    fake.write_kubeconfig(&kubeconfig).unwrap();
    tokio::task::spawn_blocking(move || kubectl_dry_run(&kubeconfig))
        .await
        .unwrap();
    fake.shutdown().await;
}

/// `kubectl apply --dry-run=client --validate=false -f FILE` for every file, against the
/// simulated cluster (kubectl needs an API server for discovery even in a client dry run).
/// Skipped with a message when kubectl is not installed.
fn kubectl_dry_run(kubeconfig: &Path) {
    let found = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output();
    if !found.is_ok_and(|o| o.status.success()) {
        eprintln!("kubectl is not installed: skipping the kubectl dry run");
        return;
    }
    for file in manifest_files().into_iter().chain([audit_rbac_file()]) {
        let out = std::process::Command::new("kubectl")
            .args([
                "apply",
                "--dry-run=client",
                "--validate=false",
                "-o",
                "name",
                "-f",
            ])
            .arg(&file)
            .env("KUBECONFIG", kubeconfig)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "kubectl rejects {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        let names = String::from_utf8_lossy(&out.stdout);
        assert!(!names.trim().is_empty(), "{}", file.display());
    }
}
