//! idpctl as a user runs it: the real binary, real files, exit codes and output formats.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::{Command, Output};

fn idpctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_idpctl"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("idpctl runs")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

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
