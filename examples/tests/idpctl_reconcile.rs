//! `idpctl reconcile --once` against idp-testkit's FakeCluster (through its kubeconfig)
//! and a real Git repository in a temp dir.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{idpctl, json};
use idp_testkit::FakeCluster;
use idp_testkit::fixtures::GitFixture;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_once_applies_and_prints_the_status_as_json() {
    let cluster = FakeCluster::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let git = GitFixture::with_files(&[
        ("deploy/web/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-settings}\ndata: {color: blue}\n"),
        ("deploy/web/other.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: web-other}\n"),
    ])
    .unwrap();
    let head = git.remote_head().unwrap();
    let args: Vec<String> = [
        "reconcile",
        "--repo",
        &git.remote_path().display().to_string(),
        "--branch",
        "main",
        "--path",
        "deploy/web",
        "--kubeconfig",
        &kubeconfig.display().to_string(),
        "--once",
        "--format",
        "json",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let run = move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        idpctl(&refs)
    };
    let out = tokio::task::spawn_blocking(run.clone()).await.unwrap();
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let status = json(&out);
    assert_eq!(status["revision"], head.as_str());
    assert_eq!(status["sync"], "Synced");
    assert_eq!(status["health"], "Healthy");
    assert_eq!(status["objects"].as_array().unwrap().len(), 2);
    assert_eq!(status["writes"], 2);
    let cm = cluster
        .object("", "configmaps", "default", "web-settings")
        .unwrap();
    assert_eq!(cm["data"]["color"], "blue");

    // Again: nothing to do.
    let out = tokio::task::spawn_blocking(run).await.unwrap();
    assert!(out.status.success());
    assert_eq!(json(&out)["writes"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unparsable_source_exits_1_and_says_where() {
    let cluster = FakeCluster::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let git = GitFixture::with_files(&[("app/bad.yaml", "kind: [\n")]).unwrap();
    let args: Vec<String> = [
        "reconcile",
        "--repo",
        &git.remote_url(),
        "--path",
        "app",
        "--kubeconfig",
        &kubeconfig.display().to_string(),
        "--once",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        idpctl(&refs)
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("RenderFailed") && text.contains("bad.yaml"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconcile_renders_score_workloads_in_the_folder() {
    let cluster = FakeCluster::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig.yaml");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let git = GitFixture::with_files(&[
        (
            "apps/cart/score.yaml",
            "apiVersion: score.dev/v1b1\nmetadata:\n  name: cart\ncontainers:\n  web:\n    image: .\nservice:\n  ports:\n    http: {port: 80, targetPort: 8080}\n",
        ),
        (
            "apps/cart/extra.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cart-extra}\n",
        ),
    ])
    .unwrap();
    let args: Vec<String> = [
        "reconcile",
        "--repo",
        &git.remote_path().display().to_string(),
        "--path",
        "apps/cart",
        "--kubeconfig",
        &kubeconfig.display().to_string(),
        "--env",
        "dev",
        "--image",
        "ghcr.io/acme/cart:2.0.1",
        "--once",
        "--format",
        "json",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    let out = tokio::task::spawn_blocking(move || {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        idpctl(&refs)
    })
    .await
    .unwrap();
    // Exit 0 (healthy) or 1 (still progressing): either way the objects are applied.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = json(&out);
    assert_eq!(status["sync"], "Synced", "{status}");
    let d = cluster
        .object("apps", "deployments", "default", "cart")
        .expect("the Score workload became a Deployment");
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "ghcr.io/acme/cart:2.0.1"
    );
    assert!(cluster.object("", "services", "default", "cart").is_some());
    assert!(
        cluster
            .object("", "configmaps", "default", "cart-extra")
            .is_some()
    );
}
