//! `kubectl` against the fake cluster (skipped when kubectl is not on PATH).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::process::Command;

fn kubectl_available() -> bool {
    Command::new("kubectl")
        .arg("version")
        .arg("--client")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: x
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: nginx:1.27
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_apply_get_delete() {
    if !kubectl_available() {
        eprintln!("skipping: kubectl is not on PATH");
        return;
    }
    let cluster = common::cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let manifest = dir.path().join("deploy.yaml");
    std::fs::write(&manifest, DEPLOYMENT).unwrap();

    let kc = kubeconfig.clone();
    let mf = manifest.clone();
    let json = tokio::task::spawn_blocking(move || {
        assert!(kubectl(&kc, &["create", "namespace", "x"]).contains("namespace/x created"));
        let applied = kubectl(&kc, &["apply", "--server-side", "-f", mf.to_str().unwrap()]);
        assert!(applied.contains("serverside-applied"), "{applied}");
        // The simulator reports the rollout after a few milliseconds.
        let mut last = String::new();
        for _ in 0..100 {
            last = kubectl(&kc, &["get", "deploy", "-n", "x", "-o", "json"]);
            if last.contains("\"readyReplicas\": 2") {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        last
    })
    .await
    .unwrap();
    let list: serde_json::Value = serde_json::from_str(&json).unwrap();
    let d = &list["items"][0];
    assert_eq!(d["metadata"]["name"], "web");
    assert_eq!(d["status"]["readyReplicas"], 2);
    assert_eq!(d["status"]["observedGeneration"], 1);
    assert!(cluster.requests().count(idp_testkit::Request::is_apply) >= 1);

    let kc = kubeconfig.clone();
    tokio::task::spawn_blocking(move || {
        let out = kubectl(&kc, &["delete", "namespace", "x"]);
        assert!(out.contains("namespace \"x\" deleted"), "{out}");
        let nss = kubectl(&kc, &["get", "namespaces", "-o", "name"]);
        assert!(!nss.contains("namespace/x"), "{nss}");
    })
    .await
    .unwrap();
}
