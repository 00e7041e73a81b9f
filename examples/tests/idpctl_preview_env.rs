//! `idpctl preview up|down|list|reap` through the real binary, against a fake API
//! server reached with a kubeconfig.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::process::Output;
use std::time::Duration;

use common::{json, write};
use k8s_openapi::api::core::v1::Namespace;

const WEB: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers:\n        - name: web\n          image: ghcr.io/acme/cart:main\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector: {app: web}\n  ports: [{port: 80}]\n";

async fn run(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::idpctl(&args)
    })
    .await
    .unwrap()
}

/// The environment name the planner gives acme/cart#`pr`.
fn name(pr: u64) -> String {
    idp_preview::plan::PreviewConfig::default()
        .environment_name("acme/cart", pr)
        .unwrap()
        .to_string()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

async fn fixture() -> (idp_testkit::FakeCluster, tempfile::TempDir, String, String) {
    let cluster = idp_testkit::FakeCluster::builder()
        .rollout_delay(Duration::from_millis(1))
        .namespace_deletion_delay(Duration::ZERO)
        .start()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    write(dir.path(), "deploy/web.yaml", WEB);
    let manifests = dir.path().join("deploy").display().to_string();
    (cluster, dir, kubeconfig.display().to_string(), manifests)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_list_down() {
    let (cluster, _dir, kc, manifests) = fixture().await;
    let sha = "9f1c2e7d9f1c2e7d9f1c2e7d9f1c2e7d9f1c2e7d";
    let out = run(args(&[
        "preview",
        "up",
        "--kubeconfig",
        &kc,
        "--repo",
        "acme/cart",
        "--pr",
        "42",
        "--sha",
        sha,
        "--manifests",
        &manifests,
        "--image",
        "ghcr.io/acme/cart",
        "--host-template",
        "{env}.preview.example.com",
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let status = json(&out);
    assert_eq!(status["phase"], "ready");
    assert_eq!(status["preview"], "acme/cart#42");
    // The same name the webhook planner gives acme/cart#42.
    let env = idp_preview::plan::PreviewConfig::default()
        .environment_name("acme/cart", 42)
        .unwrap()
        .to_string();
    assert!(env.starts_with("pr-cart-") && env.ends_with("-42"), "{env}");
    assert_eq!(status["environment"], env.as_str());
    assert_eq!(
        status["urls"][0],
        format!("https://{env}.preview.example.com")
    );
    let d = cluster.object("apps", "deployments", &env, "web").unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        format!("ghcr.io/acme/cart:{sha}")
    );

    let out = run(args(&[
        "preview",
        "list",
        "--kubeconfig",
        &kc,
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let rows = json(&out);
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["preview"], "acme/cart#42");
    assert_eq!(rows[0]["headSha"], sha);
    assert!(rows[0]["expiresAt"].is_string());

    let out = run(args(&["preview", "list", "--kubeconfig", &kc])).await;
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&env),
        "{out:?}"
    );

    let out = run(args(&[
        "preview",
        "down",
        "--kubeconfig",
        &kc,
        "--repo",
        "acme/cart",
        "--pr",
        "42",
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(json(&out)["phase"], "gone");
    assert!(cluster.object("", "namespaces", "", &env).is_none());
    let out = run(args(&[
        "preview",
        "list",
        "--kubeconfig",
        &kc,
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(json(&out), serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reap_closed_pull_requests_with_a_dry_run_first() {
    let (cluster, _dir, kc, manifests) = fixture().await;
    for pr in ["1", "2"] {
        let out = run(args(&[
            "preview",
            "up",
            "--kubeconfig",
            &kc,
            "--repo",
            "acme/cart",
            "--pr",
            pr,
            "--sha",
            "abc1234",
            "--manifests",
            &manifests,
        ]))
        .await;
        assert_eq!(out.status.code(), Some(0), "{out:?}");
    }
    let out = run(args(&[
        "preview",
        "reap",
        "--kubeconfig",
        &kc,
        "--closed",
        "acme/cart#1",
        "--dry-run",
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report = json(&out);
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["reaped"][0]["environment"], name(1).as_str());
    assert!(
        cluster.object("", "namespaces", "", &name(1)).is_some(),
        "dry run keeps it"
    );

    let out = run(args(&[
        "preview",
        "reap",
        "--kubeconfig",
        &kc,
        "--closed",
        "acme/cart#1",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "reaped {} (acme/cart#1): the pull request is closed",
            name(1)
        )),
        "{text}"
    );
    assert!(cluster.object("", "namespaces", "", &name(1)).is_none());
    assert!(cluster.object("", "namespaces", "", &name(2)).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_namespace_fails_up_with_exit_1_and_a_non_repository_is_refused() {
    let (cluster, dir, kc, manifests) = fixture().await;
    let api: kube::Api<Namespace> = kube::Api::all(cluster.client());
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name(3));
    api.create(&kube::api::PostParams::default(), &ns)
        .await
        .unwrap();
    let out = run(args(&[
        "preview",
        "up",
        "--kubeconfig",
        &kc,
        "--repo",
        "acme/cart",
        "--pr",
        "3",
        "--sha",
        "abc",
        "--manifests",
        &manifests,
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("not created by idp-preview"),
        "{out:?}"
    );

    let repo = dir.path().display().to_string();
    let out = run(args(&["preview", "list", "--gitops-repo", &repo])).await;
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--gitops-repo"),
        "{out:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_list_down_in_a_gitops_repository() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("gitops.git");
    let init = std::process::Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(&repo)
        .output()
        .unwrap();
    assert!(init.status.success());
    let repo = repo.display().to_string();
    write(dir.path(), "deploy/web.yaml", WEB);
    let manifests = dir.path().join("deploy").display().to_string();
    let sha = "1234567812345678123456781234567812345678";
    let out = run(args(&[
        "preview",
        "up",
        "--gitops-repo",
        &repo,
        "--repo",
        "acme/cart",
        "--pr",
        "7",
        "--sha",
        sha,
        "--manifests",
        &manifests,
        "--image",
        "ghcr.io/acme/cart",
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let status = json(&out);
    let env = status["environment"].as_str().unwrap().to_owned();
    assert!(env.ends_with("-7"), "{status}");

    let git = |args: &[&str]| {
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(&repo)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let files = git(&["ls-tree", "-r", "--name-only", "main"]);
    let folder = format!("previews/{env}/");
    assert!(
        files
            .lines()
            .any(|f| f.starts_with(&folder) && f.contains("/cart/")),
        "{files}"
    );
    let deployment = files
        .lines()
        .find(|f| f.starts_with(&folder) && f.contains("eployment"))
        .unwrap_or_else(|| panic!("no Deployment under {folder}: {files}"));
    let text = git(&["show", &format!("main:{deployment}")]);
    assert!(text.contains(&format!("ghcr.io/acme/cart:{sha}")), "{text}");

    let out = run(args(&[
        "preview",
        "list",
        "--gitops-repo",
        &repo,
        "--format",
        "json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let rows = json(&out);
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["environment"], env.as_str());

    let out = run(args(&[
        "preview",
        "down",
        "--gitops-repo",
        &repo,
        "--repo",
        "acme/cart",
        "--pr",
        "7",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let files = git(&["ls-tree", "-r", "--name-only", "main"]);
    assert!(!files.contains(&folder), "{files}");
}
