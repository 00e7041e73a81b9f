//! idpctl as a user runs it: the real binary, real files, exit codes and output formats.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{idpctl, write};

use std::process::Command;

#[test]
fn help_teaches_and_version_prints() {
    let out = idpctl(&["--help"]);
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    assert!(help.contains("manifests"), "{help}");
    assert!(help.contains("EXIT CODES"), "{help}");

    let out = idpctl(&["version", "--format", "json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["idpctl"], env!("CARGO_PKG_VERSION"));
    assert!(v["kubernetesApi"].as_str().unwrap().starts_with("1."));
}

#[test]
fn lint_reports_file_line_and_document() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        dir.path(),
        "good.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n",
    );
    let bad = write(
        dir.path(),
        "nested/bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: [unclosed\n",
    );

    let out = idpctl(&["manifests", "lint", &good]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 objects"));

    let out = idpctl(&["manifests", "lint", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "a broken file is a finding");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!("{bad}:")), "{text}");
    assert!(text.contains("(document 1)"), "{text}");
    assert!(!text.contains('\u{1b}'), "NO_COLOR means no colour");

    let out = idpctl(&["manifests", "lint", &bad, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let reports: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = &reports[0]["error"];
    assert_eq!(error["document"], 1);
    assert!(error["line"].as_u64().unwrap() >= 9, "{error}");
}

#[test]
fn usage_and_io_errors_exit_2() {
    assert_eq!(idpctl(&["manifests", "lint"]).status.code(), Some(2));
    assert_eq!(idpctl(&["no-such-command"]).status.code(), Some(2));
    let out = idpctl(&["manifests", "lint", "/definitely/not/here.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/definitely/not/here.yaml"));
}

#[test]
fn health_reports_argo_statuses_and_null_for_kinds_without_rules() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "live.yaml",
        r"apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop, generation: 2}
spec: {replicas: 2}
status:
  observedGeneration: 2
  replicas: 2
  updatedReplicas: 2
  readyReplicas: 2
  availableReplicas: 2
---
apiVersion: v1
kind: ConfigMap
metadata: {name: settings, namespace: shop}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data, namespace: shop}
status: {phase: Pending}
",
    );
    let out = idpctl(&["health", &file, "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0]["status"], "Healthy");
    assert_eq!(rows[0]["document"], 0);
    assert_eq!(rows[0]["apiVersion"], "apps/v1");
    assert_eq!(rows[1]["status"], serde_json::Value::Null);
    assert_eq!(rows[1]["document"], 1);
    assert_eq!(rows[2]["status"], "Progressing");
    assert_eq!(rows[2]["namespace"], "shop");

    let degraded = write(
        dir.path(),
        "degraded.yaml",
        r"apiVersion: apps/v1
kind: Deployment
metadata: {name: broken, namespace: shop, generation: 1}
spec: {replicas: 1}
status:
  observedGeneration: 1
  replicas: 1
  updatedReplicas: 1
  conditions:
  - {type: Progressing, status: 'False', reason: ProgressDeadlineExceeded, message: 'ReplicaSet has timed out progressing.'}
",
    );
    let out = idpctl(&["health", &degraded]);
    assert_eq!(out.status.code(), Some(1), "a Degraded object is a finding");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("Degraded"), "{text}");
    assert!(text.contains("Deployment shop/broken"), "{text}");
}

#[test]
fn a_closed_pipe_ends_quietly_without_a_panic() {
    use std::io::Read;
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::new();
    for i in 0..4000 {
        yaml.push_str("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-");
        yaml.push_str(&i.to_string());
        yaml.push_str("\n---\n");
    }
    let file = write(dir.path(), "many.yaml", &yaml);
    let mut child = Command::new(common::IDPCTL)
        .args(["policy", "check", &file, "--format", "json"])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 16];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout); // like `| head -c 16`
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
}
