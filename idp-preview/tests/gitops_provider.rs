//! The GitOps environment provider against real Git repositories in temp dirs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use idp_core::git::{CommitRequest, GitRepo, Identity, InitOptions, LogOptions};
use idp_core::model::EnvironmentSpec;
use idp_core::{EnvironmentName, EnvironmentProvider, ErrorKind};
use idp_preview::gitops::{
    ArgoCdApplication, FluxKustomization, GitOpsEnvironmentProvider, METADATA_FILE,
};
use idp_testkit::fixtures::GitFixture;
use serde_json::Value;

async fn bare() -> (tempfile::TempDir, GitRepo) {
    let dir = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(dir.path(), InitOptions::bare("main"))
        .await
        .unwrap();
    (dir, repo)
}

fn name(s: &str) -> EnvironmentName {
    s.parse().unwrap()
}

async fn commits(repo: &GitRepo, rev: &str) -> usize {
    match repo.log(rev, &LogOptions::default()).await {
        Ok(log) => log.len(),
        Err(e) if e.kind() == ErrorKind::NotFound => 0,
        Err(e) => panic!("{e}"),
    }
}

/// A clock the test moves by hand (seconds since the epoch).
fn manual_clock(start: i64) -> (Arc<AtomicI64>, impl Fn() -> jiff::Timestamp + Send + Sync) {
    let now = Arc::new(AtomicI64::new(start));
    let read = now.clone();
    (now, move || {
        jiff::Timestamp::from_second(read.load(Ordering::SeqCst)).unwrap()
    })
}

#[tokio::test]
async fn conformance_on_a_local_bare_repository() {
    let (_dir, repo) = bare().await;
    let provider = GitOpsEnvironmentProvider::new(repo, "main");
    idp_testkit::conformance::environment_provider(&provider).await;
}

#[tokio::test]
async fn conformance_against_a_remote() {
    let fx = GitFixture::new().unwrap();
    let (_dir, cache) = bare().await;
    let provider = GitOpsEnvironmentProvider::new(cache, "main").push_to(fx.remote_url());
    idp_testkit::conformance::environment_provider(&provider).await;
    // The fixture's own file is untouched and the previews went to the remote.
    assert!(fx.remote_file("main", "README.md").unwrap().is_some());
    let log = fx.remote_log().unwrap();
    assert!(
        log.iter()
            .any(|m| m.starts_with("preview: create conf-env-1")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|m| m.starts_with("preview: destroy conf-env-1")),
        "{log:?}"
    );
}

#[tokio::test]
async fn list_returns_exactly_what_ensure_was_given() {
    let (_dir, repo) = bare().await;
    let (_now, clock) = manual_clock(1_800_000_000);
    let provider = GitOpsEnvironmentProvider::new(repo, "main")
        .clock(clock)
        .url_template("https://{name}.preview.example.com");
    let spec = EnvironmentSpec::new(name("pr-cart-1a2b3c-42"))
        .with_owner("group:default/team-cart".parse().unwrap())
        .with_label("idp.dev/preview", "true")
        .with_label("idp.dev/pr", "42")
        .with_label("idp.dev/repo", "acme.cart")
        .with_label("yes-looking", "yes")
        .with_ttl(Duration::from_secs(3 * 24 * 3600));
    let env = provider.ensure(&spec).await.unwrap();
    assert_eq!(env.labels, spec.labels);
    assert_eq!(env.owner, spec.owner);
    assert_eq!(env.namespace.as_deref(), Some("pr-cart-1a2b3c-42"));
    assert_eq!(
        env.url.as_deref(),
        Some("https://pr-cart-1a2b3c-42.preview.example.com")
    );
    let created = jiff::Timestamp::from_second(1_800_000_000).unwrap();
    assert_eq!(env.created_at, Some(created));
    assert_eq!(
        env.expires_at,
        Some(jiff::Timestamp::from_second(1_800_000_000 + 3 * 24 * 3600).unwrap())
    );
    let listed = provider.list().await.unwrap();
    assert_eq!(listed, vec![env]);

    // Without a TTL there is no expiry.
    let forever = provider
        .ensure(&EnvironmentSpec::new(name("pr-forever-1")))
        .await
        .unwrap();
    assert_eq!(forever.expires_at, None);
}

#[tokio::test]
async fn ensure_commits_only_when_something_changes() {
    let (_dir, repo) = bare().await;
    let (now, clock) = manual_clock(1_800_000_000);
    let provider = GitOpsEnvironmentProvider::new(repo.clone(), "main").clock(clock);
    let spec = EnvironmentSpec::new(name("pr-7"))
        .with_label("idp.dev/pr", "7")
        .with_ttl(Duration::from_secs(3600));
    let first = provider.ensure(&spec).await.unwrap();
    assert_eq!(commits(&repo, "main").await, 1);

    // Ten minutes later: same spec, plenty of TTL left → no commit, same expiry.
    now.fetch_add(600, Ordering::SeqCst);
    let again = provider.ensure(&spec).await.unwrap();
    assert_eq!(again, first);
    assert_eq!(commits(&repo, "main").await, 1);

    // Forty minutes in: less than half the TTL left → extended, one commit.
    now.fetch_add(1800, Ordering::SeqCst);
    let renewed = provider.ensure(&spec).await.unwrap();
    assert_eq!(commits(&repo, "main").await, 2);
    assert_eq!(
        renewed.expires_at,
        Some(jiff::Timestamp::from_second(1_800_000_000 + 2400 + 3600).unwrap())
    );
    assert_eq!(
        renewed.created_at, first.created_at,
        "creation time is kept"
    );

    // A label change is a change.
    let relabeled = spec.clone().with_label("idp.dev/sha", "abc123");
    let env = provider.ensure(&relabeled).await.unwrap();
    assert_eq!(env.labels["idp.dev/sha"], "abc123");
    assert_eq!(commits(&repo, "main").await, 3);
    let log = repo.log("main", &LogOptions::default()).await.unwrap();
    assert_eq!(log[0].summary, "preview: update pr-7");
    assert_eq!(log[0].trailer("Environment"), Some("pr-7"));
}

#[tokio::test]
async fn a_foreign_folder_is_never_touched() {
    let (_dir, repo) = bare().await;
    let me = Identity::new("human", "human@example.com");
    repo.commit(
        CommitRequest::new("main", "hand-made", me)
            .put("previews/pr-9/deployment.yaml", "kind: Deployment\n")
            .put("previews/README.md", "previews live here\n"),
    )
    .await
    .unwrap();
    let before = repo.resolve("main").await.unwrap();
    let provider = GitOpsEnvironmentProvider::new(repo.clone(), "main");
    let err = provider
        .ensure(&EnvironmentSpec::new(name("pr-9")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().contains("previews/pr-9"), "{err}");
    let err = provider.destroy(&name("pr-9")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(provider.list().await.unwrap().is_empty());
    assert_eq!(
        repo.resolve("main").await.unwrap(),
        before,
        "no commit at all"
    );
    assert_eq!(
        repo.read_file("main", "previews/pr-9/deployment.yaml")
            .await
            .unwrap(),
        b"kind: Deployment\n"
    );
}

#[tokio::test]
async fn destroy_is_one_commit_and_leaves_the_rest() {
    let (_dir, repo) = bare().await;
    let provider = GitOpsEnvironmentProvider::new(repo.clone(), "main").argo_cd(
        ArgoCdApplication::new("https://git.example.com/platform/gitops.git"),
    );
    provider
        .ensure(&EnvironmentSpec::new(name("pr-1")))
        .await
        .unwrap();
    provider
        .ensure(&EnvironmentSpec::new(name("pr-2")))
        .await
        .unwrap();
    // A deployer writes the workloads into the folder.
    repo.commit(
        CommitRequest::new("main", "deploy cart into pr-1", Identity::new("d", "d@x"))
            .put("previews/pr-1/cart/deployment.yaml", "kind: Deployment\n"),
    )
    .await
    .unwrap();
    let before = commits(&repo, "main").await;
    assert!(provider.destroy(&name("pr-1")).await.unwrap());
    assert_eq!(commits(&repo, "main").await, before + 1);
    let files = repo.read_tree("main", "").await.unwrap();
    assert!(
        files.keys().all(|k| !k.contains("pr-1")),
        "{:?}",
        files.keys()
    );
    assert!(files.contains_key("previews/pr-2/idp-environment.json"));
    assert!(files.contains_key("preview-apps/pr-2.json"));
    assert!(!provider.destroy(&name("pr-1")).await.unwrap());
    assert_eq!(commits(&repo, "main").await, before + 1);
}

#[tokio::test]
async fn argo_cd_and_flux_manifests_point_at_the_folder() {
    let (_dir, repo) = bare().await;
    let argo = GitOpsEnvironmentProvider::new(repo.clone(), "main")
        .root("clusters/dev/previews")
        .argo_cd(ArgoCdApplication::new("https://git.example.com/gitops.git"));
    argo.ensure(&EnvironmentSpec::new(name("pr-5")).with_label("team", "cart"))
        .await
        .unwrap();
    let app: Value = serde_json::from_slice(
        &repo
            .read_file("main", "preview-apps/pr-5.json")
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(app["apiVersion"], "argoproj.io/v1alpha1");
    assert_eq!(app["kind"], "Application");
    assert_eq!(app["metadata"]["namespace"], "argocd");
    assert_eq!(app["metadata"]["labels"]["team"], "cart");
    assert_eq!(app["spec"]["source"]["path"], "clusters/dev/previews/pr-5");
    assert_eq!(
        app["spec"]["source"]["repoURL"],
        "https://git.example.com/gitops.git"
    );
    assert_eq!(app["spec"]["source"]["targetRevision"], "main");
    assert_eq!(app["spec"]["destination"]["namespace"], "pr-5");

    let flux = GitOpsEnvironmentProvider::new(repo.clone(), "main")
        .apps_dir("flux/previews")
        .flux(FluxKustomization::new("gitops"));
    flux.ensure(&EnvironmentSpec::new(name("pr-6")))
        .await
        .unwrap();
    let k: Value = serde_json::from_slice(
        &repo
            .read_file("main", "flux/previews/pr-6.json")
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(k["apiVersion"], "kustomize.toolkit.fluxcd.io/v1");
    assert_eq!(k["kind"], "Kustomization");
    assert_eq!(k["spec"]["path"], "./previews/pr-6");
    assert_eq!(k["spec"]["sourceRef"]["name"], "gitops");
    assert_eq!(k["spec"]["prune"], true);

    // The metadata file and namespace are Kubernetes objects a GitOps tool can apply.
    let ns: Value = serde_json::from_slice(
        &repo
            .read_file("main", "previews/pr-6/namespace.json")
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(ns["kind"], "Namespace");
    assert_eq!(
        ns["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "idp"
    );
    let cm: Value = serde_json::from_slice(
        &repo
            .read_file("main", &format!("previews/pr-6/{METADATA_FILE}"))
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(cm["kind"], "ConfigMap");
    assert_eq!(cm["metadata"]["namespace"], "pr-6");
}

#[tokio::test]
async fn labels_that_kubernetes_would_refuse_stay_in_the_record_only() {
    let (_dir, repo) = bare().await;
    let provider = GitOpsEnvironmentProvider::new(repo.clone(), "main");
    let spec = EnvironmentSpec::new(name("pr-8"))
        .with_label("idp.dev/repo", "acme/cart")
        .with_label("idp.dev/pr", "8")
        .with_label("Bad Key!", "x");
    provider.ensure(&spec).await.unwrap();
    assert_eq!(provider.list().await.unwrap()[0].labels, spec.labels);
    let ns: Value = serde_json::from_slice(
        &repo
            .read_file("main", "previews/pr-8/namespace.json")
            .await
            .unwrap(),
    )
    .unwrap();
    let labels = ns["metadata"]["labels"].as_object().unwrap();
    assert_eq!(labels["idp.dev/pr"], "8");
    assert!(!labels.contains_key("idp.dev/repo"));
    assert!(!labels.contains_key("Bad Key!"));
}

#[tokio::test]
async fn concurrent_ensures_all_land() {
    let (_dir, repo) = bare().await;
    let provider = GitOpsEnvironmentProvider::new(repo.clone(), "main");
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let p = provider.clone();
            tokio::spawn(async move {
                p.ensure(&EnvironmentSpec::new(name(&format!("pr-{i}"))))
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let mut names: Vec<_> = provider
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name.to_string())
        .collect();
    names.sort();
    assert_eq!(names, (0..8).map(|i| format!("pr-{i}")).collect::<Vec<_>>());
    assert_eq!(commits(&repo, "main").await, 8);
}

#[tokio::test]
async fn a_corrupt_record_is_skipped_by_list_and_reported_by_ensure() {
    let (_dir, repo) = bare().await;
    repo.commit(
        CommitRequest::new("main", "oops", Identity::new("h", "h@x"))
            .put(format!("previews/pr-3/{METADATA_FILE}"), "{ not json"),
    )
    .await
    .unwrap();
    let provider = GitOpsEnvironmentProvider::new(repo, "main");
    assert!(provider.list().await.unwrap().is_empty());
    let err = provider
        .ensure(&EnvironmentSpec::new(name("pr-3")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains(METADATA_FILE), "{err}");
}
