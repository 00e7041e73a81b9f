//! `idpctl policy audit` through the real binary, against idp-testkit's FakeCluster
//! (through its kubeconfig): what already runs is checked. And `idpctl policy check`
//! with the policies kept in that cluster: manifests checked before commit as the
//! cluster's webhooks would check them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{idpctl, json, write};
use idp_testkit::{FakeCluster, Fault, Verb};
use serde_json::{Value, json};

async fn create(cluster: &FakeCluster, value: Value) {
    cluster.create(value).await.unwrap();
}

fn pod(namespace: &str, name: &str, privileged: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/app:1.0",
            "securityContext": {"privileged": privileged}}]}})
}

fn ingress(namespace: &str, name: &str, host: &str) -> Value {
    json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"rules": [{"host": host}]}})
}

/// A cluster with a privileged Pod and a plain one in `shop`, a privileged Pod in
/// kube-system, and its kubeconfig written into `dir`.
async fn seeded(dir: &std::path::Path) -> (FakeCluster, String) {
    let cluster = FakeCluster::builder()
        .rollout_simulation(false)
        .namespace("shop")
        .start()
        .await
        .unwrap();
    create(&cluster, pod("shop", "web", false)).await;
    create(&cluster, pod("shop", "debug", true)).await;
    create(&cluster, pod("kube-system", "kube-proxy", true)).await;
    let kubeconfig = dir.join("kubeconfig.yaml");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    (cluster, kubeconfig.display().to_string())
}

async fn run(args: Vec<String>) -> std::process::Output {
    tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        idpctl(&refs)
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_reports_the_live_objects_that_break_a_policy() {
    let dir = tempfile::tempdir().unwrap();
    let (_cluster, kubeconfig) = seeded(dir.path()).await;

    let out = run(args(&[
        "policy",
        "audit",
        "--kubeconfig",
        &kubeconfig,
        "--exclude-namespace",
        "kube-system",
        "--page-size",
        "1",
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "a denied object: {out:?}");
    let summary = json(&out);
    assert_eq!(summary["denied"], 1, "{summary}");
    let findings = summary["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{summary}");
    assert_eq!(findings[0]["name"], "debug");
    assert_eq!(findings[0]["namespace"], "shop");
    assert_eq!(findings[0]["allowed"], false);
    assert_eq!(findings[0]["violations"][0]["rule"], "privileged");
    let kinds = summary["kinds"].as_array().unwrap();
    let pods = kinds.iter().find(|k| k["kind"] == "Pod").unwrap();
    assert_eq!(pods["objects"], 2, "kube-proxy is excluded: {summary}");

    // Only kube-system, only Pods, as a table.
    let out = run(args(&[
        "policy",
        "audit",
        "--kubeconfig",
        &kubeconfig,
        "-n",
        "kube-system",
        "--kind",
        "Pod",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("denied  Pod kube-system/kube-proxy"),
        "{text}"
    );
    assert!(
        text.contains("1 object(s) of 1 kind(s) audited, 1 denied"),
        "{text}"
    );

    // Nothing denied there.
    let out = run(args(&[
        "policy",
        "audit",
        "--kubeconfig",
        &kubeconfig,
        "-n",
        "shop",
        "--kind",
        "Namespace",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // A kind the cluster does not serve.
    let out = run(args(&[
        "policy",
        "audit",
        "--kubeconfig",
        &kubeconfig,
        "--kind",
        "Widget.example.com",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Widget.example.com"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kind_that_cannot_be_listed_makes_the_audit_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, kubeconfig) = seeded(dir.path()).await;
    cluster
        .faults()
        .inject(Fault::status(403).verb(Verb::List).resource("secrets"));
    let out = run(args(&[
        "policy",
        "audit",
        "--kubeconfig",
        &kubeconfig,
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not audited: Secret:"), "{stderr}");
    // The rest was audited: both privileged Pods.
    assert_eq!(json(&out)["denied"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatekeeper_templates_see_the_cluster_as_their_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, kubeconfig) = seeded(dir.path()).await;
    create(&cluster, ingress("shop", "storefront", "shop.example.com")).await;
    create(&cluster, ingress("default", "old-shop", "shop.example.com")).await;
    create(&cluster, ingress("default", "docs", "docs.example.com")).await;
    let policy = write(
        dir.path(),
        "gatekeeper/unique-ingress-host.yaml",
        UNIQUE_HOST,
    );
    let out = run(args(&[
        "policy",
        "audit",
        "--kubeconfig",
        &kubeconfig,
        "--policy",
        &policy,
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let summary = json(&out);
    let mut names: Vec<&str> = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["old-shop", "storefront"], "{summary}");
    let message = summary["findings"][0]["violations"][0]["message"]
        .as_str()
        .unwrap();
    assert!(
        message.contains("is already served by Ingress"),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gatekeeper_config_leaves_its_audit_namespaces_out_of_the_findings() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, kubeconfig) = seeded(dir.path()).await;
    create(&cluster, ingress("shop", "storefront", "shop.example.com")).await;
    create(&cluster, ingress("default", "old-shop", "shop.example.com")).await;
    let policy = write(dir.path(), "gatekeeper/unique.yaml", UNIQUE_HOST);
    // default is out of the audit only: its Ingress is not reported, but it is still
    // synced, so the shop's Ingress still collides with it.
    let config = write(
        dir.path(),
        "gatekeeper/config.yaml",
        "apiVersion: config.gatekeeper.sh/v1alpha1\nkind: Config\nmetadata: {name: config, namespace: gatekeeper-system}\nspec:\n  match:\n    - {excludedNamespaces: [default], processes: [audit]}\n",
    );
    let out = run(args(&[
        "policy",
        "audit",
        "--kubeconfig",
        &kubeconfig,
        "--kind",
        "Ingress.networking.k8s.io",
        "--policy",
        &policy,
        "--policy",
        &config,
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let summary = json(&out);
    let names: Vec<&str> = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["storefront"], "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kyverno_policies_check_live_objects_as_stored_without_mutating_them() {
    let dir = tempfile::tempdir().unwrap();
    let (_cluster, kubeconfig) = seeded(dir.path()).await;
    // The mutate rule would add the label at admission; the Pods in the cluster were
    // admitted without it, and the audit says so.
    let policy = write(dir.path(), "kyverno/team.yaml", TEAM_LABEL);
    let out = run(args(&[
        "policy",
        "audit",
        "--kubeconfig",
        &kubeconfig,
        "--kind",
        "Pod",
        "-n",
        "shop",
        "--policy",
        &policy,
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let summary = json(&out);
    assert_eq!(summary["denied"], 2, "{summary}");
    for finding in summary["findings"].as_array().unwrap() {
        let rules: Vec<&str> = finding["violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["rule"].as_str().unwrap())
            .collect();
        assert_eq!(
            rules,
            ["team-label/require-team"],
            "background: false is left out: {summary}"
        );
    }

    // As PolicyReports: one for shop, two failures.
    let out = run(args(&[
        "policy",
        "audit",
        "--kubeconfig",
        &kubeconfig,
        "--kind",
        "Pod",
        "-n",
        "shop",
        "--policy",
        &policy,
        "--policy-report",
        "--format",
        "json",
    ]))
    .await;
    let list = json(&out);
    assert_eq!(list["kind"], "List");
    let reports = list["items"].as_array().unwrap();
    assert_eq!(reports.len(), 1, "{list}");
    assert_eq!(reports[0]["metadata"]["namespace"], "shop");
    assert_eq!(reports[0]["summary"]["fail"], 2, "{list}");
}

const TEAM_LABEL: &str = r"apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: team-label
spec:
  rules:
    - name: add-team
      match:
        any:
          - resources:
              kinds: [Pod]
      mutate:
        patchStrategicMerge:
          metadata:
            labels:
              team: unknown
    - name: require-team
      match:
        any:
          - resources:
              kinds: [Pod]
      validate:
        failureAction: Enforce
        message: every Pod names its team
        pattern:
          metadata:
            labels:
              team: '?*'
---
# For admission only: a background scan leaves it out.
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata:
  name: owner-label
spec:
  background: false
  rules:
    - name: require-owner
      match:
        any:
          - resources:
              kinds: [Pod]
      validate:
        failureAction: Enforce
        message: every Pod names its owner
        pattern:
          metadata:
            labels:
              owner: '?*'
";

const UNIQUE_HOST: &str = common::UNIQUE_INGRESS_HOST;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_reports_keeps_policy_reports_in_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, kubeconfig) = seeded(dir.path()).await;
    for crd in idp_testkit::policy_report_crds() {
        create(&cluster, crd).await;
    }
    let audit = |extra: &[&str]| {
        let mut list = vec![
            "policy",
            "audit",
            "--kubeconfig",
            &kubeconfig,
            "--kind",
            "Pod",
            "--write-reports",
            "default",
            "--format",
            "json",
        ];
        list.extend_from_slice(extra);
        args(&list)
    };
    let out = run(audit(&[])).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("policy reports: 2 written"),
        "shop and kube-system: {stderr}"
    );
    let shop = cluster
        .object("wgpolicyk8s.io", "policyreports", "shop", "idp-policy")
        .unwrap();
    assert_eq!(shop["summary"]["fail"], 1, "{shop}");
    // The summary on stdout is as without the flag.
    assert_eq!(json(&out)["denied"], 2);

    // Excluding kube-system now: its report is deleted, shop's rewritten.
    let out = run(audit(&["--exclude-namespace", "kube-system"])).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1 deleted"), "{stderr}");
    assert!(
        cluster
            .object(
                "wgpolicyk8s.io",
                "policyreports",
                "kube-system",
                "idp-policy"
            )
            .is_none()
    );
    assert!(
        cluster
            .object("wgpolicyk8s.io", "policyreports", "shop", "idp-policy")
            .is_some()
    );
}

/// `value` made by `owner` (its controller).
fn controlled_by(mut value: Value, owner: &Value) -> Value {
    value["metadata"]["ownerReferences"] = json!([{
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"], "controller": true}]);
    value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_resource_reports_and_one_finding_per_workload() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, kubeconfig) = seeded(dir.path()).await;
    for crd in idp_testkit::policy_report_crds() {
        create(&cluster, crd).await;
    }
    // A Deployment on the host network, its ReplicaSet and the ReplicaSet's Pod.
    let template = json!({"metadata": {"labels": {"app": "cart"}},
        "spec": {"hostNetwork": true, "containers": [{"name": "app", "image": "ghcr.io/acme/cart:1.0"}]}});
    let cart = cluster
        .create(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "cart", "namespace": "shop"},
            "spec": {"selector": {"matchLabels": {"app": "cart"}}, "template": template}}))
        .await
        .unwrap();
    let rs = cluster
        .create(controlled_by(
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "metadata": {"name": "cart-6b7f", "namespace": "shop"},
                "spec": {"selector": {"matchLabels": {"app": "cart"}}, "template": template}}),
            &cart,
        ))
        .await
        .unwrap();
    create(
        &cluster,
        controlled_by(pod("shop", "cart-6b7f-q2", true), &rs),
    )
    .await;

    let out = run(args(&[
        "policy",
        "audit",
        "--kubeconfig",
        &kubeconfig,
        "--kind",
        "Deployment.apps",
        "--kind",
        "ReplicaSet.apps",
        "--kind",
        "Pod",
        "--skip-controlled",
        "--report-layout",
        "resource",
        "--write-reports",
        "default",
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let summary = json(&out);
    // cart, debug and kube-proxy; the ReplicaSet and its Pod are left to cart.
    assert_eq!(summary["denied"], 3, "{summary:#}");
    let names: Vec<&str> = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert!(!names.contains(&"cart-6b7f-q2"), "{names:?}");
    let controlled: Vec<(&str, u64)> = summary["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| {
            (
                k["kind"].as_str().unwrap(),
                k["controlled"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(
        controlled,
        [("Deployment.apps", 0), ("ReplicaSet.apps", 1), ("Pod", 1)]
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("policy reports: 4 written"),
        "cart, web, debug, kube-proxy: {stderr}"
    );
    let uid = cart["metadata"]["uid"].as_str().unwrap();
    let report = cluster
        .object("wgpolicyk8s.io", "policyreports", "shop", uid)
        .unwrap();
    assert_eq!(report["scope"]["name"], "cart");
    assert_eq!(
        report["metadata"]["ownerReferences"][0]["kind"],
        "Deployment"
    );
    assert_eq!(report["summary"]["fail"], 1, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatekeeper_policies_kept_in_the_cluster_are_audited_and_get_their_status() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, kubeconfig) = seeded(dir.path()).await;
    for crd in idp_testkit::gatekeeper_crds(&["K8sRequiredLabels"]) {
        create(&cluster, crd).await;
    }
    create(
        &cluster,
        json!({"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "metadata": {"name": "k8srequiredlabels"},
            "spec": {"crd": {"spec": {"names": {"kind": "K8sRequiredLabels"}}},
                "targets": [{"target": "admission.k8s.gatekeeper.sh",
                    "rego": "package k8srequiredlabels\nviolation[{\"msg\": msg}] {\n  required := input.parameters.labels[_]\n  not input.review.object.metadata.labels[required]\n  msg := sprintf(\"you must provide label %v\", [required])\n}\n"}]}}),
    )
    .await;
    create(
        &cluster,
        json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sRequiredLabels",
            "metadata": {"name": "pods-have-a-team"},
            "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Pod"]}]},
                "parameters": {"labels": ["team"]}}}),
    )
    .await;

    let out = run(args(&[
        "policy",
        "audit",
        "--kubeconfig",
        &kubeconfig,
        "--kind",
        "Pod",
        "--gatekeeper-from-cluster",
        "--write-constraint-status",
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let summary = json(&out);
    // Only the cluster's policies ran (no PSS default): every Pod lacks the label.
    assert_eq!(summary["denied"], 3, "{summary:#}");
    let rules: Vec<&str> = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["violations"].as_array().unwrap())
        .map(|v| v["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules
            .iter()
            .all(|r| *r == "K8sRequiredLabels/pods-have-a-team"),
        "{rules:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("constraint status written"), "{stderr}");
    let stored = cluster
        .object(
            "constraints.gatekeeper.sh",
            "k8srequiredlabels",
            "",
            "pods-have-a-team",
        )
        .unwrap();
    assert_eq!(stored["status"]["totalViolations"], 3, "{stored}");
    assert_eq!(stored["status"]["violations"][0]["kind"], "Pod", "{stored}");

    // The status needs the cluster's policies.
    let out = run(args(&[
        "policy",
        "audit",
        "--kubeconfig",
        &kubeconfig,
        "--write-constraint-status",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kyverno_policies_kept_in_the_cluster_scan_what_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, kubeconfig) = seeded(dir.path()).await;
    for crd in idp_testkit::kyverno_crds() {
        create(&cluster, crd).await;
    }
    create(
        &cluster,
        json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": {"name": "require-team-label"},
            "spec": {"validationFailureAction": "Enforce", "background": true,
                "rules": [{"name": "check-team",
                    "match": {"any": [{"resources": {"kinds": ["Pod"]}}]},
                    "validate": {"message": "label team is required",
                        "pattern": {"metadata": {"labels": {"team": "?*"}}}}}]}}),
    )
    .await;
    let out = run(args(&[
        "policy",
        "audit",
        "--kubeconfig",
        &kubeconfig,
        "--kind",
        "Pod",
        "--kyverno-from-cluster",
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let summary = json(&out);
    // Only the cluster's policies ran: every Pod lacks the label, privileged or not.
    assert_eq!(summary["denied"], 3, "{summary:#}");
    let messages: Vec<&str> = summary["findings"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["violations"].as_array().unwrap())
        .map(|v| v["message"].as_str().unwrap())
        .collect();
    assert!(
        messages
            .iter()
            .all(|m| m.contains("label team is required")),
        "{messages:?}"
    );
}

/// `policy check --gatekeeper-from-cluster --kyverno-from-cluster`: local manifests are
/// checked as the cluster's webhooks would check them. Gatekeeper's referential
/// template sees the cluster's Ingresses (its Config syncs them), with a manifest in
/// place of the object it changes; Kyverno's mutate rules run before its validate rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_check_asks_the_policies_kept_in_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, kubeconfig) = seeded(dir.path()).await;
    create(&cluster, ingress("shop", "storefront", "shop.example.com")).await;
    create(&cluster, ingress("default", "docs", "docs.example.com")).await;
    for crd in idp_testkit::gatekeeper_crds(&["UniqueIngressHost"]) {
        create(&cluster, crd).await;
    }
    for doc in UNIQUE_HOST.split("\n---\n") {
        let value: Value = serde_saphyr::from_str(doc).unwrap();
        create(&cluster, value).await;
    }
    create(
        &cluster,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gatekeeper-system"}}),
    )
    .await;
    create(
        &cluster,
        json!({"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config",
            "metadata": {"name": "config", "namespace": "gatekeeper-system"},
            "spec": {"sync": {"syncOnly": [{"group": "networking.k8s.io", "version": "v1", "kind": "Ingress"}]}}}),
    )
    .await;
    for crd in idp_testkit::kyverno_crds()
        .into_iter()
        .chain(idp_testkit::kyverno_cel_crds())
    {
        create(&cluster, crd).await;
    }
    create(
        &cluster,
        json!({"apiVersion": "policies.kyverno.io/v1", "kind": "ValidatingPolicy",
            "metadata": {"name": "no-forbidden-names"},
            "spec": {"validationActions": ["Deny"],
                "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"]}]},
                "validations": [{"expression": "object.metadata.name != 'forbidden'",
                    "message": "that name is forbidden"}]}}),
    )
    .await;
    create(
        &cluster,
        json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": {"name": "team"},
            "spec": {"validationFailureAction": "Enforce",
                "rules": [
                    {"name": "default-team",
                        "match": {"any": [{"resources": {"kinds": ["ConfigMap"]}}]},
                        "mutate": {"patchStrategicMerge": {"metadata": {"labels": {"+(team)": "platform"}}}}},
                    {"name": "has-team",
                        "match": {"any": [{"resources": {"kinds": ["ConfigMap"]}}]},
                        "validate": {"message": "label team is required, not scratch",
                            "pattern": {"metadata": {"labels": {"team": "!scratch"}}}}}]}}),
    )
    .await;
    write(
        dir.path(),
        "k8s/app.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: handbook, namespace: shop}\nspec: {rules: [{host: docs.example.com}]}\n---\n\
         apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: storefront, namespace: shop}\nspec: {rules: [{host: new.example.com}]}\n---\n\
         apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: other, namespace: shop}\nspec: {rules: [{host: shop.example.com}]}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: plain, namespace: shop}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: scratch, namespace: shop, labels: {team: scratch}}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: forbidden, namespace: shop}\n",
    );
    let manifests = dir.path().join("k8s").display().to_string();
    let out = run(args(&[
        "policy",
        "check",
        "--kubeconfig",
        &kubeconfig,
        "--gatekeeper-from-cluster",
        "--kyverno-from-cluster",
        &manifests,
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rows = json(&out);
    let verdicts: Vec<(&str, bool)> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].as_str().unwrap(), r["allowed"].as_bool().unwrap()))
        .collect();
    // `handbook` takes the host of the cluster's Ingress default/docs. The manifest of
    // storefront moves it to a new host, in place of the cluster's storefront, which
    // frees its old host for `other`. The plain ConfigMap gets its team label first.
    assert_eq!(
        verdicts,
        [
            ("handbook", false),
            ("storefront", true),
            ("other", true),
            ("plain", true),
            ("scratch", false),
            ("forbidden", false)
        ],
        "{rows:#}"
    );
    assert_eq!(
        rows[0]["violations"][0]["rule"], "UniqueIngressHost/one-ingress-per-host",
        "{rows:#}"
    );
    assert!(
        rows[0]["violations"][0]["message"]
            .as_str()
            .unwrap()
            .contains("docs.example.com is already served by Ingress default/docs"),
        "{rows:#}"
    );
    assert_eq!(
        rows[4]["violations"][0]["policy"], "kyverno-cluster",
        "{rows:#}"
    );
    assert_eq!(
        rows[5]["violations"][0]["policy"], "kyverno-validating-policies",
        "{rows:#}"
    );

    // Without the flags, only PSS baseline runs: nothing denied.
    let out = run(args(&["policy", "check", &manifests, "--format", "json"])).await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

/// `--admission-policies-from-cluster`: the cluster's ValidatingAdmissionPolicies and
/// bindings check manifests before commit (as the API server would admit them) and
/// audit what already runs (which the API server never rechecks).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_policies_kept_in_the_cluster_check_manifests_and_audit_what_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, kubeconfig) = seeded(dir.path()).await;
    let deployment = |name: &str, replicas: u32| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "shop"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/app:1.0"}]}}}})
    };
    for object in [
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "max-replicas"},
            "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]},
                "validations": [{"expression": "object.spec.replicas <= 4",
                    "messageExpression": "'at most 4 replicas, got ' + string(object.spec.replicas)"}]}}),
        json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": "max-replicas"},
            "spec": {"policyName": "max-replicas", "validationActions": ["Deny"]}}),
        deployment("web", 6),
        deployment("api", 2),
    ] {
        create(&cluster, object).await;
    }
    write(
        dir.path(),
        "k8s/app.yaml",
        &format!(
            "{}\n---\n{}\n",
            deployment("small", 3),
            deployment("huge", 12)
        ),
    );
    let manifests = dir.path().join("k8s").display().to_string();
    let out = run(args(&[
        "policy",
        "check",
        "--kubeconfig",
        &kubeconfig,
        "--admission-policies-from-cluster",
        &manifests,
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let rows = json(&out);
    assert_eq!(rows[0]["allowed"], true, "{rows:#}");
    assert_eq!(rows[1]["allowed"], false, "{rows:#}");
    assert_eq!(
        rows[1]["violations"][0]["message"], "at most 4 replicas, got 12",
        "{rows:#}"
    );

    let out = run(args(&[
        "policy",
        "audit",
        "--kubeconfig",
        &kubeconfig,
        "--kind",
        "Deployment.apps",
        "--admission-policies-from-cluster",
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let summary = json(&out);
    assert_eq!(summary["denied"], 1, "{summary:#}");
    assert_eq!(summary["findings"][0]["name"], "web", "{summary:#}");
}

/// `policy mutate --gatekeeper-from-cluster --kyverno-from-cluster`: manifests as the
/// cluster's mutating webhooks would make them: Gatekeeper's mutators (the namespaces
/// its Config leaves to the webhook left alone), then Kyverno's mutate rules.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_mutate_applies_the_mutators_kept_in_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let (cluster, kubeconfig) = seeded(dir.path()).await;
    for crd in idp_testkit::gatekeeper_crds(&[])
        .into_iter()
        .chain(idp_testkit::gatekeeper_mutation_crds())
        .chain(idp_testkit::kyverno_crds())
    {
        create(&cluster, crd).await;
    }
    for object in [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gatekeeper-system"}}),
        json!({"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config",
            "metadata": {"name": "config", "namespace": "gatekeeper-system"},
            "spec": {"match": [{"excludedNamespaces": ["lab"], "processes": ["mutation-webhook"]}]}}),
        json!({"apiVersion": "mutations.gatekeeper.sh/v1", "kind": "AssignMetadata",
            "metadata": {"name": "owner"},
            "spec": {"location": "metadata.annotations.owner",
                "parameters": {"assign": {"value": "platform"}}}}),
        json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
            "metadata": {"name": "team"},
            "spec": {"rules": [{"name": "default-team",
                "match": {"any": [{"resources": {"kinds": ["ConfigMap"]}}]},
                "mutate": {"patchStrategicMerge": {"metadata": {"labels": {"+(team)": "platform"}}}}}]}}),
    ] {
        create(&cluster, object).await;
    }
    write(
        dir.path(),
        "k8s/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a, namespace: shop}\n---\n\
         apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b, namespace: lab}\n",
    );
    let manifests = dir.path().join("k8s").display().to_string();
    let out = run(args(&[
        "policy",
        "mutate",
        "--kubeconfig",
        &kubeconfig,
        "--gatekeeper-from-cluster",
        "--kyverno-from-cluster",
        &manifests,
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let objects = json(&out);
    assert_eq!(
        objects[0]["metadata"]["annotations"]["owner"], "platform",
        "{objects:#}"
    );
    assert_eq!(
        objects[0]["metadata"]["labels"]["team"], "platform",
        "{objects:#}"
    );
    // lab is left to Gatekeeper's mutation webhook by its Config; Kyverno still mutates.
    assert!(
        objects[1]["metadata"].get("annotations").is_none(),
        "{objects:#}"
    );
    assert_eq!(
        objects[1]["metadata"]["labels"]["team"], "platform",
        "{objects:#}"
    );
}
