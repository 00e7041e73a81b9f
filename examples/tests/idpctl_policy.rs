//! `idpctl policy ...` through the real binary: real manifests in temp dirs, exit codes and
//! JSON shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{idpctl, json, write};

use serde_json::Value;

const NAMESPACE: &str = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n";
const PRIVILEGED: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cart\n  namespace: shop\nspec:\n  template:\n    spec:\n      hostPID: true\n      containers:\n        - name: app\n          image: ghcr.io/acme/cart:latest\n          securityContext:\n            privileged: true\n";
const PLAIN: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ghcr.io/acme/web:1.2\n";

fn rules(rows: &Value) -> Vec<(String, String)> {
    rows.as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["violations"].as_array().unwrap().iter())
        .map(|v| {
            (
                v["policy"].as_str().unwrap().to_owned(),
                v["rule"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn check_defaults_to_pss_baseline_with_a_row_per_object() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "k8s/bad.yaml",
        &format!("{NAMESPACE}---\n{PRIVILEGED}"),
    );
    let good = write(dir.path(), "k8s/good.yaml", PLAIN);

    let out = idpctl(&["policy", "check", &good]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 object(s), 0 denied"));

    let root = dir.path().to_str().unwrap();
    let out = idpctl(&["policy", "check", root, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "a denied object is a finding");
    let rows = json(&out);
    let list = rows.as_array().unwrap();
    assert_eq!(list.len(), 3, "every object gets a row: {rows}");
    assert_eq!(list[0]["file"], bad.as_str());
    assert_eq!(list[0]["document"], 0);
    assert_eq!(list[0]["kind"], "Namespace");
    assert_eq!(list[0]["namespace"], Value::Null);
    assert_eq!(list[0]["allowed"], true);
    let cart = &list[1];
    assert_eq!(cart["document"], 1);
    assert_eq!(cart["apiVersion"], "apps/v1");
    assert_eq!(cart["namespace"], "shop");
    assert_eq!(cart["name"], "cart");
    assert_eq!(cart["allowed"], false);
    let privileged = cart["violations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "privileged")
        .expect("privileged is a baseline violation");
    assert_eq!(privileged["policy"], "pod-security");
    assert_eq!(privileged["action"], "deny");
    assert_eq!(
        privileged["path"],
        "spec.template.spec.containers[0].securityContext.privileged"
    );
    assert!(!privileged["message"].as_str().unwrap().is_empty());
    assert_eq!(list[2]["file"], good.as_str());
    assert_eq!(list[2]["allowed"], true);

    let out = idpctl(&["policy", "check", root]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("denied"), "{text}");
    assert!(text.contains("3 object(s), 1 denied"), "{text}");
}

#[test]
fn restricted_and_guardrails_find_more() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.yaml", PLAIN);
    let out = idpctl(&[
        "policy",
        "check",
        &good,
        "--pss",
        "restricted",
        "--pss-version",
        "v1.30",
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let found = rules(&json(&out));
    assert!(
        found.contains(&("pod-security".into(), "runAsNonRoot".into())),
        "{found:?}"
    );

    let out = idpctl(&[
        "policy",
        "check",
        &good,
        "--pss-version",
        "1.30",
        "-o",
        "json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "--pss-version alone means baseline"
    );

    let out = idpctl(&["policy", "check", &good, "--guardrails", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let found = rules(&json(&out));
    assert!(
        found.iter().any(|(p, _)| p == "require-resources"),
        "{found:?}"
    );
    assert!(
        found.iter().all(|(p, _)| p != "pod-security"),
        "no PSS unless asked: {found:?}"
    );

    let out = idpctl(&["policy", "check", &good, "--pss-version", "2.0"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn policy_files_are_policy_sets_and_other_formats_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.yaml", PRIVILEGED);
    let set = write(
        dir.path(),
        "policies/set.yaml",
        "apiVersion: idp.dev/v1alpha1\nkind: PolicySet\nname: ci\npolicies:\n  - type: disallow-latest-tag\n",
    );
    let out = idpctl(&["policy", "check", &bad, "--policy", &set, "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let found = rules(&json(&out));
    assert_eq!(
        found,
        [("disallow-latest-tag".to_owned(), "latest-tag".to_owned())]
    );

    let rego = write(dir.path(), "policies/deny.rego", "package k8s\n");
    let template = write(
        dir.path(),
        "policies/template.yaml",
        "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata:\n  name: k8srequiredlabels\n",
    );
    let vap = write(
        dir.path(),
        "policies/vap.yaml",
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata:\n  name: x\n",
    );
    for file in [&rego, &template, &vap] {
        let out = idpctl(&["policy", "check", &bad, "--policy", file]);
        assert_eq!(out.status.code(), Some(2), "{file}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(file.as_str()), "{err}");
        assert!(err.contains("not supported yet"), "{err}");
    }

    let broken = write(
        dir.path(),
        "policies/broken.yaml",
        "policies:\n  - type: no-such-policy\n",
    );
    let out = idpctl(&["policy", "check", &bad, "--policy", &broken]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no-such-policy"));
}

#[test]
fn mutate_adds_resources_labels_and_otel() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "web.yaml", PLAIN);
    let out = idpctl(&["policy", "mutate", &file, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let objects = json(&out);
    let web = &objects[0];
    let container = &web["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["resources"]["requests"]["cpu"], "100m");
    assert_eq!(
        web["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "idp"
    );
    assert!(
        container.get("env").is_none(),
        "no OTel without an endpoint"
    );

    let out = idpctl(&[
        "policy",
        "mutate",
        &file,
        "--otel-endpoint",
        "http://collector:4317",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("OTEL_EXPORTER_OTLP_ENDPOINT"), "{text}");
    assert!(text.contains("http://collector:4317"), "{text}");
    assert!(text.contains("memory: 128Mi"), "{text}");

    // The mutated output passes the guardrail it was missing.
    let mutated = write(dir.path(), "out/mutated.yaml", &text);
    let out = idpctl(&["policy", "check", &mutated, "--guardrails", "-o", "json"]);
    let found = rules(&json(&out));
    assert!(
        found.iter().all(|(p, _)| p != "require-resources"),
        "{found:?}"
    );

    assert_eq!(
        idpctl(&["policy", "mutate", "/not/here.yaml"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn help_has_examples() {
    for sub in ["check", "mutate"] {
        let out = idpctl(&["policy", sub, "--help"]);
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains("EXAMPLES"), "{sub}: {help}");
    }
}
