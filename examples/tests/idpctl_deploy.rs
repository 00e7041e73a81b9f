//! `idpctl deploy | history | rollback | promote` through the real binary, on real Git
//! repositories in temp dirs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;
use std::process::Command;

use common::{idpctl, json, write};

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn bare_repo(dir: &Path) -> String {
    let path = dir.join("gitops.git");
    let out = Command::new("git")
        .args(["init", "-q", "--bare", "-b", "main"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    path.display().to_string()
}

fn manifests(dir: &Path, v: u32) -> String {
    write(
        dir,
        &format!("v{v}/app.yaml"),
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cart, namespace: shop}}\ndata: {{version: '{v}'}}\n"
        ),
    )
}

fn deploy(repo: &str, env: &str, file: &str, extra: &[&str]) -> serde_json::Value {
    let mut args = vec![
        "deploy",
        "--gitops-repo",
        repo,
        "--env",
        env,
        "--component",
        "cart",
        "--manifests",
        file,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = idpctl(&args);
    assert!(
        out.status.success(),
        "deploy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    json(&out)
}

fn history(repo: &str, env: &str) -> Vec<serde_json::Value> {
    let out = idpctl(&[
        "history",
        "--gitops-repo",
        repo,
        "--env",
        env,
        "--component",
        "cart",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json(&out).as_array().unwrap().clone()
}

#[test]
fn deploy_history_rollback_promote() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare_repo(dir.path());
    let v1 = deploy(
        &repo,
        "staging",
        &manifests(dir.path(), 1),
        &["--source-revision", "aaa111", "--author", "jane"],
    );
    assert_eq!(v1["environment"], "staging");
    assert_eq!(v1["component"], "cart");
    assert_eq!(v1["created"], true);
    // Every deployment carries its cost estimate; a ConfigMap costs nothing.
    assert_eq!(v1["monthly_cost"].as_f64(), Some(0.0), "{v1}");
    assert_eq!(v1["currency"], "USD", "{v1}");
    assert_eq!(v1["commit"].as_str().unwrap().len(), 40);
    let v2 = deploy(
        &repo,
        "staging",
        &manifests(dir.path(), 2),
        &["--source-revision", "bbb222"],
    );
    assert_ne!(v1["release_id"], v2["release_id"]);

    // Deploying the same again commits nothing and answers with the current release.
    let same = deploy(&repo, "staging", &manifests(dir.path(), 2), &[]);
    assert_eq!(same["created"], false);
    assert_eq!(same["release_id"], v2["release_id"]);

    let h = history(&repo, "staging");
    assert_eq!(h.len(), 2);
    assert_eq!(h[0]["release_id"], v2["release_id"]);
    assert_eq!(h[0]["commit"], v2["commit"]);
    assert_eq!(h[0]["source_revision"], "bbb222");
    assert_eq!(h[0]["status"], "current");
    assert_eq!(h[1]["release_id"], v1["release_id"]);
    assert_eq!(h[1]["author"], "jane");
    assert!(h[1]["time"].as_str().unwrap().ends_with('Z'));

    // Roll back to v1: the file is v1's again, byte for byte.
    let out = idpctl(&[
        "rollback",
        "--gitops-repo",
        &repo,
        "--env",
        "staging",
        "--component",
        "cart",
        "--to",
        v1["release_id"].as_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back = json(&out);
    let at = |rev: &str| {
        git(
            Path::new(&repo),
            &[
                "show",
                &format!("{rev}:envs/staging/cart/configmap-cart.yaml"),
            ],
        )
    };
    assert_eq!(
        at(back["commit"].as_str().unwrap()),
        at(v1["commit"].as_str().unwrap())
    );
    let h = history(&repo, "staging");
    let statuses: Vec<_> = h.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["current", "rolled-back", "superseded"]);
    assert_eq!(h[0]["rollback_to"], v1["release_id"]);

    // Promote staging (now v1's content) to prod.
    let out = idpctl(&[
        "promote",
        "--gitops-repo",
        &repo,
        "--component",
        "cart",
        "--from",
        "staging",
        "--to",
        "prod",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let promoted = json(&out);
    assert_eq!(promoted["environment"], "prod");
    let prod = git(
        Path::new(&repo),
        &["show", "main:envs/prod/cart/configmap-cart.yaml"],
    );
    assert_eq!(prod, at("main"));
    let h = history(&repo, "prod");
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["source_revision"], "aaa111");
    assert!(
        h[0]["promoted_from"]
            .as_str()
            .unwrap()
            .starts_with("staging/")
    );

    // The table output says what happened.
    let out = idpctl(&[
        "history",
        "--gitops-repo",
        &repo,
        "--env",
        "staging",
        "--component",
        "cart",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("RELEASE"), "{text}");
    assert!(
        text.contains("rolled-back") && text.contains("rollback to"),
        "{text}"
    );
}

#[test]
fn unknown_release_lists_the_recent_ones() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare_repo(dir.path());
    let v1 = deploy(&repo, "dev", &manifests(dir.path(), 1), &[]);
    let out = idpctl(&[
        "rollback",
        "--gitops-repo",
        &repo,
        "--env",
        "dev",
        "--component",
        "cart",
        "--to",
        "r-nope",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("r-nope") && err.contains(v1["release_id"].as_str().unwrap()),
        "{err}"
    );
}

#[test]
fn clear_errors_for_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let not_repo = dir.path().join("plain");
    std::fs::create_dir_all(&not_repo).unwrap();
    let file = manifests(dir.path(), 1);
    let out = idpctl(&[
        "deploy",
        "--gitops-repo",
        not_repo.to_str().unwrap(),
        "--env",
        "dev",
        "--component",
        "cart",
        "--manifests",
        &file,
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("not a Git repository"), "{err}");

    let repo = bare_repo(dir.path());
    let out = idpctl(&[
        "deploy",
        "--gitops-repo",
        &repo,
        "--env",
        "Prod!",
        "--component",
        "cart",
        "--manifests",
        &file,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("--env"));

    let bad = write(
        dir.path(),
        "bad.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: [\n",
    );
    let out = idpctl(&[
        "deploy",
        "--gitops-repo",
        &repo,
        "--env",
        "dev",
        "--component",
        "cart",
        "--manifests",
        &bad,
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("bad.yaml"));

    // --manifests is required (for now).
    let out = idpctl(&[
        "deploy",
        "--gitops-repo",
        &repo,
        "--env",
        "dev",
        "--component",
        "cart",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("--manifests")
    );

    let out = idpctl(&[
        "promote",
        "--gitops-repo",
        &repo,
        "--component",
        "cart",
        "--from",
        "dev",
        "--to",
        "prod",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("no release in environment dev")
    );
}

#[test]
fn deploy_renders_a_score_workload_with_the_image_given() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare_repo(dir.path());
    let score = write(
        dir.path(),
        "score.yaml",
        "apiVersion: score.dev/v1b1\nmetadata:\n  name: cart\ncontainers:\n  web:\n    image: .\n    variables:\n      GREETING: hello\nservice:\n  ports:\n    http:\n      port: 80\n      targetPort: 8080\n",
    );
    let out = idpctl(&[
        "deploy",
        "--gitops-repo",
        &repo,
        "--env",
        "dev",
        "--component",
        "cart",
        "--workload",
        &score,
        "--image",
        "ghcr.io/acme/cart:1.4.2",
        "--format",
        "json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = git(Path::new(&repo), &["ls-tree", "-r", "--name-only", "main"]);
    let deployment = files
        .lines()
        .find(|f| f.starts_with("envs/dev/cart/") && f.contains("eployment"))
        .unwrap_or_else(|| panic!("no Deployment file in {files}"));
    assert!(files.lines().any(|f| f.contains("ervice")), "{files}");
    let text = git(Path::new(&repo), &["show", &format!("main:{deployment}")]);
    assert!(text.contains("ghcr.io/acme/cart:1.4.2"), "{text}");
    assert!(text.contains("GREETING"), "{text}");

    // --image without --workload, and both inputs at once, are usage errors.
    let out = idpctl(&[
        "deploy",
        "--gitops-repo",
        &repo,
        "--env",
        "dev",
        "--component",
        "cart",
        "--manifests",
        &score,
        "--workload",
        &score,
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn dora_counts_a_rolled_back_release_as_a_failed_change() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare_repo(dir.path());
    let v1 = deploy(&repo, "prod", &manifests(dir.path(), 1), &[]);
    deploy(&repo, "prod", &manifests(dir.path(), 2), &[]);
    let out = idpctl(&[
        "rollback",
        "--gitops-repo",
        &repo,
        "--env",
        "prod",
        "--component",
        "cart",
        "--to",
        v1["release_id"].as_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let out = idpctl(&["dora", "--gitops-repo", &repo, "--format", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report = json(&out);
    let overall = &report["overall"];
    // Three releases: v1, v2 (undone by the rollback: a failed change), the rollback.
    assert_eq!(overall["deployments"], 3, "{report}");
    assert_eq!(overall["failures"], 1, "{report}");
    let rate = overall["changeFailureRate"].as_f64().unwrap();
    assert!((rate - 1.0 / 3.0).abs() < 1e-9, "{report}");
    // The rollback restored service: one failure, restored.
    assert_eq!(overall["restored"], 1, "{report}");
    assert!(report["byComponent"]["cart"].is_object(), "{report}");

    let out = idpctl(&["dora", "--gitops-repo", &repo, "--since", "soon"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--since"));
}
