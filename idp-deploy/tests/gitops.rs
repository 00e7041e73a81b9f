//! GitOpsDeployer against real Git repositories in temp dirs (bare remotes over file://).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::Command;

use idp_core::git::{GitRepo, InitOptions, LogOptions};
use idp_core::ports::HistoryQuery;
use idp_core::{
    Deployer, DeployerExt, DeploymentStatus, EntityRef, EnvironmentName, ErrorKind, ManifestSet,
    Release,
};
use idp_deploy::gitops::{ArgoCdOptions, GitOpsDeployer, Handover, trailers};
use idp_testkit::conformance;

fn cart() -> EntityRef {
    "component:default/cart".parse().unwrap()
}

fn env(name: &str) -> EnvironmentName {
    name.parse().unwrap()
}

/// Version `v` of the cart: a Deployment and a ConfigMap, plus a Service up to v1 only.
fn manifests(v: u32) -> ManifestSet {
    let mut yaml = format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: cart, namespace: shop}}\nspec:\n  replicas: {v}\n  template: {{spec: {{containers: [{{name: app, image: 'cart:{v}'}}]}}}}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cart-config, namespace: shop}}\ndata: {{version: '{v}'}}\n"
    );
    if v <= 1 {
        yaml.push_str("---\napiVersion: v1\nkind: Service\nmetadata: {name: cart, namespace: shop}\nspec: {ports: [{port: 80}]}\n");
    }
    ManifestSet::parse(yaml.as_bytes(), None).unwrap()
}

fn release(environment: &str, v: u32) -> Release {
    Release::new(cart(), env(environment), manifests(v))
        .with_source_revision(format!("src{v}"))
        .with_author("jane@example.com")
}

async fn bare() -> (tempfile::TempDir, GitRepo) {
    let dir = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(dir.path(), InitOptions::bare("main"))
        .await
        .unwrap();
    (dir, repo)
}

fn file_names(files: &BTreeMap<String, Vec<u8>>) -> Vec<&str> {
    files.keys().map(String::as_str).collect()
}

#[tokio::test]
async fn conformance_suite() {
    let (_dir, repo) = bare().await;
    conformance::deployer(
        &GitOpsDeployer::new(repo),
        &conformance::DeployerFixtures::default(),
    )
    .await;
}

#[tokio::test]
async fn deploy_replaces_the_folder_and_rollback_restores_it_exactly() {
    let (_dir, repo) = bare().await;
    let d = GitOpsDeployer::new(repo.clone());
    // Something else in the repository must survive every write.
    repo.commit(
        idp_core::git::CommitRequest::new(
            "main",
            "readme",
            idp_core::git::Identity::new("a", "a@x"),
        )
        .put("README.md", "gitops\n"),
    )
    .await
    .unwrap();

    let v1 = d.deploy_release(&release("prod", 1)).await.unwrap();
    assert!(v1.created);
    let files_v1 = repo.read_tree("main", "envs/prod/cart").await.unwrap();
    assert_eq!(
        file_names(&files_v1),
        [
            "envs/prod/cart/configmap-cart-config.yaml",
            "envs/prod/cart/deployment-cart.yaml",
            "envs/prod/cart/service-cart.yaml"
        ]
    );
    let tree_v1 = repo.list_dir(&v1.record.commit, "envs/prod").await.unwrap()[0].id;

    let v2 = d.deploy_release(&release("prod", 2)).await.unwrap();
    let files_v2 = repo.read_tree("main", "envs/prod/cart").await.unwrap();
    assert_eq!(
        files_v2.len(),
        2,
        "the Service removed in v2 is gone: {:?}",
        file_names(&files_v2)
    );
    assert_ne!(
        files_v2["envs/prod/cart/deployment-cart.yaml"],
        files_v1["envs/prod/cart/deployment-cart.yaml"]
    );

    let back = d
        .rollback_to(&cart(), &env("prod"), &v1.record.release_id, Some("ops"))
        .await
        .unwrap();
    assert!(back.created);
    assert_ne!(back.record.release_id, v1.record.release_id);
    // Byte for byte: the folder's tree is v1's tree, file for file.
    let tree_back = repo.list_dir("main", "envs/prod").await.unwrap()[0].id;
    assert_eq!(tree_back, tree_v1);
    assert_eq!(
        repo.read_tree("main", "envs/prod/cart").await.unwrap(),
        files_v1
    );
    assert_eq!(
        repo.read_file("main", "README.md").await.unwrap(),
        b"gitops\n"
    );

    let log = repo
        .log("main", &LogOptions::default().limit(1))
        .await
        .unwrap();
    assert_eq!(
        log[0].trailer(trailers::ROLLBACK_OF),
        Some(v2.record.release_id.as_str())
    );
    assert_eq!(
        log[0].trailer(trailers::ROLLBACK_TO),
        Some(v1.record.release_id.as_str())
    );
    assert_eq!(log[0].trailer(trailers::SOURCE_REVISION), Some("src1"));
    assert_eq!(log[0].trailer(trailers::AUTHOR), Some("ops"));

    let history = d.releases(&cart(), &env("prod"), None).await.unwrap();
    let statuses: Vec<_> = history
        .iter()
        .map(|r| (r.release_id.clone(), r.status))
        .collect();
    assert_eq!(
        statuses,
        [
            (back.record.release_id.clone(), DeploymentStatus::Pending),
            (v2.record.release_id.clone(), DeploymentStatus::RolledBack),
            (v1.record.release_id.clone(), DeploymentStatus::Superseded),
        ]
    );
    // Rolling back to a commit prefix works too, and to the current content is a no-op.
    let again = d
        .rollback_to(&cart(), &env("prod"), &v1.record.commit[..10], None)
        .await
        .unwrap();
    assert!(!again.created);
    assert_eq!(again.record.release_id, back.record.release_id);
}

#[tokio::test]
async fn every_commit_carries_the_trailers() {
    let (_dir, repo) = bare().await;
    let d = GitOpsDeployer::new(repo.clone());
    let at: jiff::Timestamp = "2026-03-04T05:06:07Z".parse().unwrap();
    let out = d
        .deploy_release_with(
            &release("dev", 1).with_message("ship the new cart"),
            Some(at),
        )
        .await
        .unwrap();
    let entry = &repo.log("main", &LogOptions::default()).await.unwrap()[0];
    assert_eq!(entry.summary, "deploy cart to dev");
    assert!(entry.message.contains("ship the new cart"));
    assert_eq!(
        entry.trailer(trailers::RELEASE_ID),
        Some(out.record.release_id.as_str())
    );
    assert_eq!(
        entry.trailer(trailers::COMPONENT),
        Some("component:default/cart")
    );
    assert_eq!(entry.trailer(trailers::ENVIRONMENT), Some("dev"));
    assert_eq!(entry.trailer(trailers::SOURCE_REVISION), Some("src1"));
    assert_eq!(
        entry.trailer(trailers::SOURCE_COMMITTED_AT),
        Some("2026-03-04T05:06:07Z")
    );
    assert_eq!(entry.trailer(trailers::AUTHOR), Some("jane@example.com"));
    assert_eq!(entry.id.to_hex(), out.record.commit);
    // The record deploy returned is the one history reads back.
    let history = d.releases(&cart(), &env("dev"), Some(1)).await.unwrap();
    assert_eq!(history[0], out.record);
}

#[tokio::test]
async fn an_identical_release_makes_no_commit() {
    let (_dir, repo) = bare().await;
    let d = GitOpsDeployer::new(repo.clone());
    let first = d.deploy(&release("dev", 1)).await.unwrap();
    let tip = repo.resolve("main").await.unwrap();
    // Same objects, fields in another order: same bytes, no commit.
    let reordered = ManifestSet::parse(
        manifests(1)
            .to_json()
            .unwrap()
            .replace("\"apiVersion\": \"v1\",", "\"apiVersion\":\"v1\",")
            .as_bytes(),
        None,
    )
    .unwrap();
    let second = d
        .deploy(&Release::new(cart(), env("dev"), reordered))
        .await
        .unwrap();
    assert_eq!(repo.resolve("main").await.unwrap(), tip);
    assert_eq!(second.id, first.id);
    assert!(second.message.unwrap().starts_with("unchanged"));
    assert_eq!(
        d.history(&HistoryQuery::new(cart(), env("dev")))
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn promote_copies_the_current_release() {
    let (_dir, repo) = bare().await;
    let d = GitOpsDeployer::new(repo.clone());
    d.deploy_release(&release("staging", 1)).await.unwrap();
    let staged = d.deploy_release(&release("staging", 2)).await.unwrap();
    d.deploy_release(&release("prod", 1)).await.unwrap();

    let promoted = d
        .promote(&cart(), &env("staging"), &env("prod"), Some("release-bot"))
        .await
        .unwrap();
    assert!(promoted.created);
    assert_ne!(promoted.record.release_id, staged.record.release_id);
    assert_eq!(promoted.record.source_revision.as_deref(), Some("src2"));
    let strip = |files: BTreeMap<String, Vec<u8>>, prefix: &str| -> BTreeMap<String, Vec<u8>> {
        files
            .into_iter()
            .map(|(k, v)| (k.strip_prefix(prefix).unwrap().to_owned(), v))
            .collect()
    };
    assert_eq!(
        strip(
            repo.read_tree("main", "envs/prod/cart").await.unwrap(),
            "envs/prod/cart/"
        ),
        strip(
            repo.read_tree("main", "envs/staging/cart").await.unwrap(),
            "envs/staging/cart/"
        ),
    );
    let entry = &repo
        .log("main", &LogOptions::default().limit(1))
        .await
        .unwrap()[0];
    assert_eq!(
        entry.trailer(trailers::PROMOTED_FROM),
        Some(format!("staging/{}", staged.record.release_id).as_str())
    );
    assert_eq!(entry.trailer(trailers::ENVIRONMENT), Some("prod"));
    let current = d.current(&cart(), &env("prod")).await.unwrap().unwrap();
    assert_eq!(current.id.as_str(), promoted.record.release_id);

    // Promoting again changes nothing; promoting from an empty environment is NotFound.
    assert!(
        !d.promote(&cart(), &env("staging"), &env("prod"), None)
            .await
            .unwrap()
            .created
    );
    let err = d
        .promote(&cart(), &env("qa"), &env("prod"), None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    let same = d
        .promote(&cart(), &env("prod"), &env("prod"), None)
        .await
        .unwrap_err();
    assert_eq!(same.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn unknown_release_lists_recent_ones() {
    let (_dir, repo) = bare().await;
    let d = GitOpsDeployer::new(repo);
    let v1 = d.deploy_release(&release("dev", 1)).await.unwrap();
    let err = d
        .rollback_to(&cart(), &env("dev"), "r-missing", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains(&v1.record.release_id), "{err}");
}

#[tokio::test]
async fn two_writers_racing_on_a_bare_remote_lose_nothing() {
    let root = tempfile::tempdir().unwrap();
    let remote_path = root.path().join("remote.git");
    let remote = GitRepo::init(&remote_path, InitOptions::bare("main"))
        .await
        .unwrap();
    let url = format!("file://{}", remote_path.display());
    let mut tasks = Vec::new();
    for writer in 0..2 {
        let local = GitRepo::init(
            root.path().join(format!("w{writer}.git")),
            InitOptions::bare("main"),
        )
        .await
        .unwrap();
        let d = GitOpsDeployer::new(local).remote(url.clone());
        tasks.push(tokio::spawn(async move {
            let component: EntityRef = format!("component:default/app{writer}").parse().unwrap();
            let mut ids = Vec::new();
            for v in 1..=6 {
                let r = Release::new(component.clone(), "prod".parse().unwrap(), manifests(v));
                ids.push(d.deploy_release(&r).await.unwrap().record.release_id);
            }
            (d, component, ids)
        }));
    }
    let mut all_ids = Vec::new();
    for t in tasks {
        let (d, component, ids) = t.await.unwrap();
        // Each writer reads its history back from the remote, newest first.
        let history = d.releases(&component, &env("prod"), None).await.unwrap();
        let got: Vec<_> = history.iter().map(|r| r.release_id.clone()).collect();
        let mut want = ids.clone();
        want.reverse();
        assert_eq!(got, want);
        all_ids.extend(ids);
    }
    let log = remote.log("main", &LogOptions::default()).await.unwrap();
    assert_eq!(
        log.len(),
        12,
        "every commit of both writers is on the remote"
    );
    for id in &all_ids {
        assert!(
            log.iter()
                .any(|e| e.trailer(trailers::RELEASE_ID) == Some(id.as_str())),
            "{id} lost"
        );
    }
    // The remote holds the last version of both components.
    for app in ["app0", "app1"] {
        let text = remote
            .read_file(
                "main",
                &format!("envs/prod/{app}/configmap-cart-config.yaml"),
            )
            .await
            .unwrap();
        let set = ManifestSet::parse(&text, None).unwrap();
        assert_eq!(set.objects()[0].pointer("/data/version").unwrap(), "6");
    }
}

/// `git status --porcelain` through the git CLI; `None` (after saying so) when there is
/// no git CLI on this machine.
fn git_status(dir: &std::path::Path) -> Option<String> {
    let out = match Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=all"])
        .current_dir(dir)
        .output()
    {
        Ok(out) => out,
        Err(e) => {
            eprintln!("skipping the `git status` checks: cannot run the git CLI ({e})");
            return None;
        }
    };
    assert!(out.status.success(), "{out:?}");
    Some(String::from_utf8(out.stdout).unwrap())
}

/// The index entry of `path` (`git ls-files -s`: mode, blob id, stage) through the git
/// CLI; `None` without one.
fn staged(dir: &std::path::Path, path: &str) -> Option<String> {
    let out = Command::new("git")
        .args(["ls-files", "-s", "--", path])
        .current_dir(dir)
        .output()
        .ok()?;
    assert!(out.status.success(), "{out:?}");
    Some(String::from_utf8(out.stdout).unwrap())
}

fn git_out(dir: &std::path::Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn a_checked_out_working_tree_follows_the_branch() {
    let dir = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(dir.path(), InitOptions::with_worktree("main"))
        .await
        .unwrap();
    let d = GitOpsDeployer::new(repo.clone());
    d.deploy_release(&release("prod", 1)).await.unwrap();
    let service = dir.path().join("envs/prod/cart/service-cart.yaml");
    assert!(service.exists());
    if let Some(status) = git_status(dir.path()) {
        assert_eq!(status, "");
        // Let Git record its cache tree in the index, so the next deploy has to keep it
        // correct (invalidated along the changed paths).
        let tree = git_out(dir.path(), &["write-tree"]);
        assert_eq!(tree, git_out(dir.path(), &["rev-parse", "HEAD^{tree}"]));
    }
    let v2 = d.deploy_release(&release("prod", 2)).await.unwrap();
    assert!(v2.worktree_warning.is_none());
    assert!(
        !service.exists(),
        "the file of the removed object is gone from the working tree"
    );
    assert_eq!(
        std::fs::read(dir.path().join("envs/prod/cart/deployment-cart.yaml")).unwrap(),
        repo.read_file("main", "envs/prod/cart/deployment-cart.yaml")
            .await
            .unwrap()
    );
    if let Some(status) = git_status(dir.path()) {
        // The index matches HEAD on every changed path, and the files are unmodified.
        assert_eq!(status, "");
        let path = "envs/prod/cart/deployment-cart.yaml";
        let entry = staged(dir.path(), path).unwrap();
        let head = git_out(dir.path(), &["rev-parse", &format!("HEAD:{path}")]);
        assert_eq!(entry, format!("100644 {} 0\t{path}\n", head.trim()));
        assert_eq!(
            staged(dir.path(), "envs/prod/cart/service-cart.yaml").unwrap(),
            ""
        );
        // The tree Git builds from the index (through its cache tree) is the commit's.
        assert_eq!(
            git_out(dir.path(), &["write-tree"]),
            git_out(dir.path(), &["rev-parse", "HEAD^{tree}"])
        );
    }

    // A hand edit in the way: the commit is made, the edit is kept, the caller is told.
    let config = dir.path().join("envs/prod/cart/configmap-cart-config.yaml");
    std::fs::write(&config, "edited by hand\n").unwrap();
    let v3 = d.deploy_release(&release("prod", 3)).await.unwrap();
    assert!(v3.created);
    assert!(
        v3.worktree_warning
            .unwrap()
            .contains("configmap-cart-config.yaml")
    );
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "edited by hand\n"
    );
}

#[tokio::test]
async fn a_deploy_never_touches_untracked_or_edited_files_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(dir.path(), InitOptions::with_worktree("main"))
        .await
        .unwrap();
    let d = GitOpsDeployer::new(repo.clone());
    d.deploy_release(&release("prod", 1)).await.unwrap();
    d.deploy_release(&release("staging", 1)).await.unwrap();
    // A person's work in progress next to the machine-written folders.
    let notes = dir.path().join("envs/prod/cart/NOTES.md");
    std::fs::write(&notes, "my notes\n").unwrap();
    let scratch = dir.path().join("scratch/todo.txt");
    std::fs::create_dir_all(scratch.parent().unwrap()).unwrap();
    std::fs::write(&scratch, "later\n").unwrap();
    let staging = dir.path().join("envs/staging/cart/deployment-cart.yaml");
    std::fs::write(&staging, "edited staging by hand\n").unwrap();

    let v2 = d.deploy_release(&release("prod", 2)).await.unwrap();
    assert!(v2.created);
    assert_eq!(v2.worktree_warning, None, "nothing was in the way");
    assert_eq!(std::fs::read_to_string(&notes).unwrap(), "my notes\n");
    assert_eq!(std::fs::read_to_string(&scratch).unwrap(), "later\n");
    assert_eq!(
        std::fs::read_to_string(&staging).unwrap(),
        "edited staging by hand\n"
    );
    assert!(
        !dir.path().join("envs/prod/cart/service-cart.yaml").exists(),
        "the removed object's file is gone"
    );
    if let Some(status) = git_status(dir.path()) {
        let mut lines: Vec<&str> = status.lines().collect();
        lines.sort_unstable();
        assert_eq!(
            lines,
            [
                " M envs/staging/cart/deployment-cart.yaml",
                "?? envs/prod/cart/NOTES.md",
                "?? scratch/todo.txt",
            ],
            "only the person's own changes show"
        );
    }

    // An untracked file where the next release puts a new file: kept, and the caller told.
    let service = dir.path().join("envs/prod/cart/service-cart.yaml");
    std::fs::write(&service, "mine\n").unwrap();
    let v3 = d.deploy_release(&release("prod", 1)).await.unwrap();
    assert!(v3.created);
    assert!(
        v3.worktree_warning
            .as_deref()
            .is_some_and(|w| w.contains("service-cart.yaml")),
        "{:?}",
        v3.worktree_warning
    );
    assert_eq!(std::fs::read_to_string(&service).unwrap(), "mine\n");
}

#[tokio::test]
async fn argo_cd_handover_is_committed_next_to_the_release() {
    let (_dir, repo) = bare().await;
    let d = GitOpsDeployer::new(repo.clone()).handover(Handover::argo_cd(ArgoCdOptions::new(
        "https://git.example.com/gitops.git",
    )));
    d.deploy_release(&release("prod", 1)).await.unwrap();
    let text = repo
        .read_file("main", "clusters/prod/cart/argocd-application.yaml")
        .await
        .unwrap();
    let app = ManifestSet::parse(&text, None).unwrap();
    let app = &app.objects()[0];
    assert_eq!(app.kind(), "Application");
    assert_eq!(app.pointer("/spec/source/path").unwrap(), "envs/prod/cart");
    assert_eq!(app.pointer("/spec/source/targetRevision").unwrap(), "main");
    assert_eq!(
        app.pointer("/spec/syncPolicy/automated/prune").unwrap(),
        true
    );
    // The release folder holds the release's objects and nothing else.
    assert_eq!(
        repo.read_tree("main", "envs/prod/cart")
            .await
            .unwrap()
            .len(),
        3
    );
}
