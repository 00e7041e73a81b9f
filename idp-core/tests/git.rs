//! Integration tests of `idp_core::git` against real repositories in temp dirs, with
//! bare remotes over `file://`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use idp_core::ErrorKind;
use idp_core::git::{
    Change, CloneOptions, CommitRequest, EntryKind, GitRepo, Identity, InitOptions, LogOptions,
    RetryPolicy, RevertRequest,
};

fn me() -> Identity {
    Identity::new("Test Author", "author@example.com")
}

fn url(path: &Path) -> String {
    format!("file://{}", path.display())
}

async fn bare(dir: &Path, name: &str) -> GitRepo {
    GitRepo::init(dir.join(name), InitOptions::bare("main"))
        .await
        .unwrap()
}

fn generous() -> RetryPolicy {
    RetryPolicy::new(500, Duration::from_millis(2), Duration::from_millis(50))
}

#[tokio::test]
async fn init_bare_and_worktree_with_initial_branch() {
    let dir = tempfile::tempdir().unwrap();
    let b = GitRepo::init(dir.path().join("b.git"), InitOptions::bare("trunk"))
        .await
        .unwrap();
    assert!(b.is_bare());
    assert_eq!(b.head_branch().await.unwrap().as_deref(), Some("trunk"));
    let w = GitRepo::init(dir.path().join("w"), InitOptions::with_worktree("dev"))
        .await
        .unwrap();
    assert!(!w.is_bare());
    assert!(dir.path().join("w/.git").is_dir());
    assert_eq!(w.head_branch().await.unwrap().as_deref(), Some("dev"));
    let reopened = GitRepo::open(dir.path().join("w")).await.unwrap();
    assert!(!reopened.is_bare());
    // Nothing committed yet: HEAD does not resolve.
    assert_eq!(
        b.resolve("HEAD").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let bad = GitRepo::init(dir.path().join("x"), InitOptions::bare("bad name")).await;
    assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn open_missing_is_not_found_and_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = GitRepo::open(dir.path().join("nope")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("nope"), "{err}");
}

#[tokio::test]
async fn commit_on_a_non_bare_repo_works_without_touching_the_worktree() {
    let dir = tempfile::tempdir().unwrap();
    let w = GitRepo::init(dir.path().join("w"), InitOptions::with_worktree("main"))
        .await
        .unwrap();
    w.commit(CommitRequest::new("main", "add", me()).put("a.txt", "a"))
        .await
        .unwrap();
    assert_eq!(w.read_file("HEAD", "a.txt").await.unwrap(), b"a");
    assert!(!dir.path().join("w/a.txt").exists());
}

#[tokio::test]
async fn reads_at_old_revisions_branches_tags_and_shas() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare(dir.path(), "r.git").await;
    let mut ids = Vec::new();
    for v in 1..=3 {
        let out = repo
            .commit(
                CommitRequest::new("main", format!("v{v}"), me())
                    .put("app.yaml", format!("v: {v}")),
            )
            .await
            .unwrap();
        ids.push(out.id);
    }
    assert_eq!(repo.read_file("main", "app.yaml").await.unwrap(), b"v: 3");
    assert_eq!(repo.read_file("HEAD~2", "app.yaml").await.unwrap(), b"v: 1");
    assert_eq!(repo.read_file("main^", "app.yaml").await.unwrap(), b"v: 2");
    assert_eq!(
        repo.read_file(&ids[0].to_hex(), "app.yaml").await.unwrap(),
        b"v: 1"
    );
    assert_eq!(
        repo.read_file(&ids[1].short(8), "app.yaml").await.unwrap(),
        b"v: 2"
    );
    assert_eq!(repo.resolve("HEAD~2").await.unwrap(), ids[0]);
    // Errors.
    assert_eq!(
        repo.read_file("main", "missing").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        repo.read_file("nope", "app.yaml").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        repo.read_file("HEAD~10", "app.yaml")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    let bad = repo.read_file("main", "../etc/passwd").await.unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput);
    assert_eq!(
        repo.resolve("main..^{").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        repo.resolve("").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    let err = repo.resolve("no-such-branch").await.unwrap_err();
    assert!(
        err.to_string().contains("no-such-branch") && err.to_string().contains("r.git"),
        "{err}"
    );
}

#[tokio::test]
async fn read_tree_and_list_dir_without_checkout() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare(dir.path(), "r.git").await;
    repo.commit(
        CommitRequest::new("main", "layout", me())
            .put("envs/prod/a.yaml", "a")
            .put("envs/prod/sub/b.yaml", "b")
            .put("envs/dev/c.yaml", "c")
            .put("README.md", "hi"),
    )
    .await
    .unwrap();
    let prod = repo.read_tree("main", "envs/prod").await.unwrap();
    assert_eq!(prod.len(), 2);
    assert_eq!(prod["envs/prod/a.yaml"], b"a");
    assert_eq!(prod["envs/prod/sub/b.yaml"], b"b");
    assert_eq!(repo.read_tree("main", "envs/prod/").await.unwrap(), prod);
    let all = repo.read_tree("main", "").await.unwrap();
    assert_eq!(all.len(), 4);
    let one = repo.read_tree("main", "README.md").await.unwrap();
    assert_eq!(one.keys().collect::<Vec<_>>(), ["README.md"]);
    assert_eq!(
        repo.read_tree("main", "envs/qa").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );

    let envs = repo.list_dir("main", "envs").await.unwrap();
    let names: Vec<_> = envs
        .iter()
        .map(|e| (e.name.as_str(), e.path.as_str(), e.kind))
        .collect();
    assert_eq!(
        names,
        [
            ("dev", "envs/dev", EntryKind::Dir),
            ("prod", "envs/prod", EntryKind::Dir)
        ]
    );
    assert_eq!(
        repo.list_dir("main", "README.md").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        repo.list_dir("main", "nope").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        repo.read_file("main", "envs").await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[tokio::test]
async fn changes_put_delete_and_delete_tree() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare(dir.path(), "r.git").await;
    repo.commit(
        CommitRequest::new("main", "seed", me())
            .put("keep.txt", "k")
            .put("gone.txt", "g")
            .put("pr/7/a.yaml", "a")
            .put("pr/7/deep/b.yaml", "b")
            .put("only/one.txt", "1"),
    )
    .await
    .unwrap();
    repo.commit(
        CommitRequest::new("main", "edit", me())
            .delete("gone.txt")
            .delete("never-existed.txt")
            .delete_tree("pr/7")
            .delete("only/one.txt")
            .put("keep.txt", "k2"),
    )
    .await
    .unwrap();
    let all = repo.read_tree("main", "").await.unwrap();
    assert_eq!(all.keys().collect::<Vec<_>>(), ["keep.txt"]);
    assert_eq!(all["keep.txt"], b"k2");
    // Empty directories disappear.
    assert!(
        repo.list_dir("main", "")
            .await
            .unwrap()
            .iter()
            .all(|e| e.name == "keep.txt")
    );
    // Deleting a directory with Delete is refused; the branch does not move.
    repo.commit(CommitRequest::new("main", "dir", me()).put("d/x", "x"))
        .await
        .unwrap();
    let tip = repo.resolve("main").await.unwrap();
    let err = repo
        .commit(CommitRequest::new("main", "oops", me()).delete("d"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(repo.resolve("main").await.unwrap(), tip);
    // Later changes win; a file in the way of a directory is replaced.
    repo.commit(
        CommitRequest::new("main", "order", me())
            .put("f", "first")
            .put("f", "second")
            .put("keep.txt/inner", "now a dir"),
    )
    .await
    .unwrap();
    assert_eq!(repo.read_file("main", "f").await.unwrap(), b"second");
    assert_eq!(
        repo.read_file("main", "keep.txt/inner").await.unwrap(),
        b"now a dir"
    );
    // Binary content round-trips.
    let bytes: Vec<u8> = (0..=255).collect();
    repo.commit(CommitRequest::new("main", "bin", me()).change(Change::put("bin", bytes.clone())))
        .await
        .unwrap();
    assert_eq!(repo.read_file("main", "bin").await.unwrap(), bytes);
}

#[tokio::test]
async fn path_validation_rejects_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare(dir.path(), "r.git").await;
    for bad in [
        "/abs",
        "a/../b",
        "..",
        ".git/config",
        "x/.git",
        "a//b",
        "",
        "a/",
        "./a",
        "a\\b",
    ] {
        let err = repo
            .commit(CommitRequest::new("main", "bad", me()).put(bad, "x"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{bad:?}");
    }
    assert_eq!(
        repo.resolve("main").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let err = repo
        .commit(CommitRequest::new("main", "", me()).put("a", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = repo
        .commit(CommitRequest::new("bad..branch", "m", me()).put("a", "x"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = repo
        .commit(
            CommitRequest::new("main", "m", me())
                .put("a", "x")
                .trailer("Bad Key", "v"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let err = repo
        .commit(
            CommitRequest::new("main", "m", me())
                .put("a", "x")
                .trailer("K", "two\nlines"),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn no_op_commits_are_skipped_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare(dir.path(), "r.git").await;
    let first = repo
        .commit(CommitRequest::new("main", "1", me()).put("a", "1"))
        .await
        .unwrap();
    let same = repo
        .commit(CommitRequest::new("main", "same", me()).put("a", "1"))
        .await
        .unwrap();
    assert!(!same.created);
    assert_eq!(same.id, first.id);
    let empty = repo
        .commit(CommitRequest::new("main", "nothing", me()))
        .await
        .unwrap();
    assert!(!empty.created);
    let marker = repo
        .commit(CommitRequest::new("main", "marker", me()).allow_empty(true))
        .await
        .unwrap();
    assert!(marker.created);
    assert_eq!(marker.parent, Some(first.id));
    assert_eq!(marker.tree, first.tree);
    assert_eq!(
        repo.log("main", &LogOptions::default())
            .await
            .unwrap()
            .len(),
        2
    );
}

#[tokio::test]
async fn deterministic_commit_time_identity_and_trailers() {
    let dir = tempfile::tempdir().unwrap();
    let time: jiff::Timestamp = "2024-05-06T07:08:09Z".parse().unwrap();
    let mut ids = Vec::new();
    for name in ["one.git", "two.git"] {
        let repo = bare(dir.path(), name).await;
        let out = repo
            .commit(
                CommitRequest::new(
                    "main",
                    "deploy cart 1.2.0\n\nRolled out by the pipeline.",
                    me(),
                )
                .committer(Identity::new("idp bot", "bot@example.com"))
                .time(time)
                .put("envs/prod/cart.yaml", "image: cart:1.2.0\n")
                .trailer("Release-Id", "r-17")
                .trailer("Component", "cart")
                .trailer("Environment", "prod"),
            )
            .await
            .unwrap();
        ids.push(out.id);
        let log = repo.log("main", &LogOptions::default()).await.unwrap();
        let e = &log[0];
        assert_eq!(e.id, out.id);
        assert_eq!(e.summary, "deploy cart 1.2.0");
        assert!(e.message.contains("Rolled out by the pipeline."));
        assert!(
            e.message.ends_with("Environment: prod\n"),
            "{:?}",
            e.message
        );
        assert_eq!(e.author, me());
        assert_eq!(e.committer.name, "idp bot");
        assert_eq!(e.time, time);
        assert_eq!(
            e.trailers,
            vec![
                ("Release-Id".to_owned(), "r-17".to_owned()),
                ("Component".to_owned(), "cart".to_owned()),
                ("Environment".to_owned(), "prod".to_owned()),
            ]
        );
        assert!(e.parents.is_empty());
    }
    // Same content, identity, time and message: same commit id.
    assert_eq!(ids[0], ids[1]);
}

#[tokio::test]
async fn cas_commit_with_stale_parent_is_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare(dir.path(), "r.git").await;
    let first = repo
        .commit(CommitRequest::new("main", "1", me()).put("a", "1"))
        .await
        .unwrap();
    let second = repo
        .commit(CommitRequest::new("main", "2", me()).put("b", "2"))
        .await
        .unwrap();
    let err = repo
        .commit(
            CommitRequest::new("main", "stale", me())
                .put("c", "3")
                .parent(first.id),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().contains("refs/heads/main"), "{err}");
    assert_eq!(
        repo.resolve("main").await.unwrap(),
        second.id,
        "the branch must not move"
    );
    // With the right parent it works.
    let ok = repo
        .commit(
            CommitRequest::new("main", "fresh", me())
                .put("c", "3")
                .parent(second.id),
        )
        .await
        .unwrap();
    assert_eq!(ok.parent, Some(second.id));
    // Unborn expectation on an existing branch.
    let err = repo
        .commit(CommitRequest::new("main", "u", me()).put("d", "4").unborn())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    // Retrying ignores the stale parent and rebases.
    let out = repo
        .commit_with_retry(
            CommitRequest::new("main", "rebased", me())
                .put("c2", "3")
                .parent(first.id),
            &RetryPolicy::default(),
        )
        .await
        .unwrap();
    assert_eq!(out.parent, Some(ok.id));
}

/// Writers racing to create a branch that does not exist yet: exactly one creates it,
/// the others rebase onto it; no commit is lost (libgit2's plain create checks for an
/// existing ref before taking the ref's lock, so the create must be a compare-and-swap).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn writers_racing_to_create_a_branch_lose_nothing() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let repo = bare(dir.path(), "r.git").await;
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let repo = repo.clone();
                let barrier = barrier.clone();
                tokio::spawn(async move {
                    barrier.wait().await;
                    let req = CommitRequest::new("main", format!("writer {i}"), me())
                        .put(format!("f{i}.txt"), "x");
                    repo.commit_with_retry(req, &generous()).await
                })
            })
            .collect();
        for t in tasks {
            assert!(t.await.unwrap().unwrap().created);
        }
        let files = repo.read_tree("main", "").await.unwrap();
        assert_eq!(files.len(), 8, "round {round}: {:?}", files.keys());
        let log = repo.log("main", &LogOptions::default()).await.unwrap();
        assert_eq!(log.len(), 8, "round {round}: one commit per writer");
        assert!(log.last().unwrap().parents.is_empty(), "one root commit");
    }
}

/// Callers racing to create the same branch: exactly one wins, the others are told it
/// exists, and the branch points where the winner said.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_branch_creations_have_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare(dir.path(), "r.git").await;
    let mut commits = Vec::new();
    for i in 0..8 {
        let out = repo
            .commit(CommitRequest::new("main", format!("c{i}"), me()).put("f", format!("{i}")))
            .await
            .unwrap();
        commits.push(out.id.to_string());
    }
    for round in 0..20 {
        let name = format!("race-{round}");
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(8));
        let tasks: Vec<_> = commits
            .iter()
            .map(|rev| {
                let (repo, barrier, name, rev) =
                    (repo.clone(), barrier.clone(), name.clone(), rev.clone());
                tokio::spawn(async move {
                    barrier.wait().await;
                    repo.create_branch(&name, &rev).await
                })
            })
            .collect();
        let mut winners = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                Ok(id) => winners.push(id),
                Err(e) => assert_eq!(e.kind(), ErrorKind::AlreadyExists, "{e}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: {winners:?}");
        assert_eq!(repo.resolve(&name).await.unwrap(), winners[0]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_writers_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare(dir.path(), "r.git").await;
    let base = repo
        .commit(CommitRequest::new("main", "base", me()).put("README.md", "base"))
        .await
        .unwrap();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(50));
    let mut tasks = Vec::new();
    for i in 0..50 {
        let repo = repo.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let req = CommitRequest::new(
                "main",
                format!("writer {i}"),
                Identity::new(format!("w{i}"), "w@x"),
            )
            .put(format!("files/{i:02}.txt"), format!("from writer {i}"))
            .trailer("Writer", i.to_string());
            repo.commit_with_retry(req, &generous()).await
        }));
    }
    let mut attempts = 0;
    let mut new_ids = BTreeSet::new();
    for t in tasks {
        let out = t.await.unwrap().unwrap();
        assert!(out.created);
        attempts += out.attempts;
        new_ids.insert(out.id);
    }
    assert_eq!(new_ids.len(), 50);
    let log = repo.log("main", &LogOptions::default()).await.unwrap();
    assert_eq!(log.len(), 51, "exactly 50 new commits on top of the base");
    assert_eq!(log.last().unwrap().id, base.id);
    let logged: BTreeSet<_> = log
        .iter()
        .filter(|e| e.id != base.id)
        .map(|e| e.id)
        .collect();
    assert_eq!(logged, new_ids);
    // A straight line: every commit has exactly one parent, the one below it.
    for pair in log.windows(2) {
        assert_eq!(pair[0].parents, vec![pair[1].id]);
    }
    let files = repo.read_tree("main", "files").await.unwrap();
    assert_eq!(files.len(), 50);
    for i in 0..50 {
        assert_eq!(
            files[&format!("files/{i:02}.txt")],
            format!("from writer {i}").into_bytes()
        );
    }
    let writers: BTreeSet<_> = log
        .iter()
        .filter_map(|e| e.trailer("Writer").map(str::to_owned))
        .collect();
    assert_eq!(writers.len(), 50);
    // Contention happened (otherwise this test proves nothing about CAS).
    assert!(
        attempts > 50,
        "expected some retries, got {attempts} attempts for 50 commits"
    );
}

#[tokio::test]
async fn revert_restores_the_previous_tree_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare(dir.path(), "r.git").await;
    repo.commit(
        CommitRequest::new("main", "v1", me())
            .put("app.yaml", "v: 1")
            .put("other", "o"),
    )
    .await
    .unwrap();
    let before = repo.tree_id("main").await.unwrap();
    let bad = repo
        .commit(
            CommitRequest::new("main", "v2", me())
                .put("app.yaml", "v: 2")
                .put("new/file", "n")
                .delete("other"),
        )
        .await
        .unwrap();
    assert_ne!(repo.tree_id("main").await.unwrap(), before);
    let out = repo
        .revert(RevertRequest::new("main", bad.id.to_hex(), me()).trailer("Release-Id", "r-2"))
        .await
        .unwrap();
    assert!(out.created);
    assert_eq!(out.parent, Some(bad.id));
    assert_eq!(out.tree, before);
    assert_eq!(repo.tree_id("main").await.unwrap(), before);
    let log = repo
        .log("main", &LogOptions::default().limit(1))
        .await
        .unwrap();
    assert_eq!(log[0].summary, "Revert \"v2\"");
    assert!(log[0].message.contains(&bad.id.to_hex()));
    assert_eq!(log[0].trailer("Release-Id"), Some("r-2"));
    // Reverting again changes nothing: skipped.
    let again = repo
        .revert(RevertRequest::new("main", bad.id.to_hex(), me()))
        .await
        .unwrap();
    assert!(!again.created);
    // A root commit cannot be reverted.
    let root = repo.resolve("main~2").await.unwrap();
    let err = repo
        .revert(RevertRequest::new("main", root.to_hex(), me()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn revert_of_an_older_commit_keeps_later_work_and_conflicts_name_paths() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare(dir.path(), "r.git").await;
    repo.commit(
        CommitRequest::new("main", "base", me())
            .put("a", "1\n")
            .put("b", "1\n"),
    )
    .await
    .unwrap();
    let change_a = repo
        .commit(CommitRequest::new("main", "a2", me()).put("a", "2\n"))
        .await
        .unwrap();
    repo.commit(CommitRequest::new("main", "b2", me()).put("b", "2\n"))
        .await
        .unwrap();
    let out = repo
        .revert_with_retry(
            RevertRequest::new("main", change_a.id.to_hex(), me()),
            &RetryPolicy::default(),
        )
        .await
        .unwrap();
    assert!(out.created);
    assert_eq!(repo.read_file("main", "a").await.unwrap(), b"1\n");
    assert_eq!(repo.read_file("main", "b").await.unwrap(), b"2\n");
    // Conflict: b changed after the commit we revert touched it.
    let change_b = repo
        .commit(CommitRequest::new("main", "b3", me()).put("b", "3\n"))
        .await
        .unwrap();
    repo.commit(CommitRequest::new("main", "b4", me()).put("b", "4\n"))
        .await
        .unwrap();
    let tip = repo.resolve("main").await.unwrap();
    let err = repo
        .revert(RevertRequest::new("main", change_b.id.to_hex(), me()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    assert!(err.to_string().contains('b'), "{err}");
    assert!(
        err.to_string()
            .contains("conflicts with later changes in: b"),
        "{err}"
    );
    assert_eq!(repo.resolve("main").await.unwrap(), tip);
}

#[tokio::test]
async fn log_with_path_filter_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare(dir.path(), "r.git").await;
    repo.commit(CommitRequest::new("main", "prod 1", me()).put("envs/prod/app.yaml", "1"))
        .await
        .unwrap();
    repo.commit(CommitRequest::new("main", "dev 1", me()).put("envs/dev/app.yaml", "1"))
        .await
        .unwrap();
    repo.commit(CommitRequest::new("main", "prod 2", me()).put("envs/prod/app.yaml", "2"))
        .await
        .unwrap();
    repo.commit(CommitRequest::new("main", "readme", me()).put("README.md", "r"))
        .await
        .unwrap();
    repo.commit(CommitRequest::new("main", "prod gone", me()).delete_tree("envs/prod"))
        .await
        .unwrap();

    let summaries =
        |log: Vec<idp_core::git::LogEntry>| log.into_iter().map(|e| e.summary).collect::<Vec<_>>();
    let all = repo.log("main", &LogOptions::default()).await.unwrap();
    assert_eq!(
        summaries(all),
        ["prod gone", "readme", "prod 2", "dev 1", "prod 1"]
    );
    let prod = repo
        .log("main", &LogOptions::default().path("envs/prod"))
        .await
        .unwrap();
    assert_eq!(summaries(prod), ["prod gone", "prod 2", "prod 1"]);
    let file = repo
        .log("main", &LogOptions::default().path("envs/prod/app.yaml"))
        .await
        .unwrap();
    assert_eq!(summaries(file), ["prod gone", "prod 2", "prod 1"]);
    let envs = repo
        .log("main", &LogOptions::default().path("envs").limit(2))
        .await
        .unwrap();
    assert_eq!(summaries(envs), ["prod gone", "prod 2"]);
    let old = repo.log("main~3", &LogOptions::default()).await.unwrap();
    assert_eq!(summaries(old), ["dev 1", "prod 1"]);
    let none = repo
        .log("main", &LogOptions::default().path("nowhere"))
        .await
        .unwrap();
    assert!(none.is_empty());
    let bad = repo
        .log("main", &LogOptions::default().path("../x"))
        .await
        .unwrap_err();
    assert_eq!(bad.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn branches_create_list_delete() {
    let dir = tempfile::tempdir().unwrap();
    let w = GitRepo::init(dir.path().join("w"), InitOptions::with_worktree("main"))
        .await
        .unwrap();
    let c1 = w
        .commit(CommitRequest::new("main", "1", me()).put("a", "1"))
        .await
        .unwrap();
    w.commit(CommitRequest::new("main", "2", me()).put("a", "2"))
        .await
        .unwrap();
    assert_eq!(w.create_branch("release/1", "main~1").await.unwrap(), c1.id);
    assert_eq!(
        w.create_branch("release/1", "main")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::AlreadyExists
    );
    assert_eq!(
        w.create_branch("bad name", "main")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::InvalidInput
    );
    assert_eq!(
        w.create_branch("x", "nope").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let branches = w.list_branches().await.unwrap();
    let names: Vec<_> = branches
        .iter()
        .map(|b| (b.name.as_str(), b.commit))
        .collect();
    assert_eq!(
        names,
        [
            ("main", w.resolve("main").await.unwrap()),
            ("release/1", c1.id)
        ]
    );
    // Commits go to the named branch only.
    w.commit(CommitRequest::new("release/1", "hotfix", me()).put("a", "1.1"))
        .await
        .unwrap();
    assert_eq!(w.read_file("release/1", "a").await.unwrap(), b"1.1");
    assert_eq!(w.read_file("main", "a").await.unwrap(), b"2");
    // HEAD's branch of a non-bare repo cannot be deleted.
    let err = w.delete_branch("main").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict);
    w.delete_branch("release/1").await.unwrap();
    assert_eq!(
        w.delete_branch("release/1").await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(w.list_branches().await.unwrap().len(), 1);
    // In a bare repository HEAD's branch can go.
    let b = bare(dir.path(), "b.git").await;
    b.commit(CommitRequest::new("main", "1", me()).put("a", "1"))
        .await
        .unwrap();
    b.delete_branch("main").await.unwrap();
    assert!(b.list_branches().await.unwrap().is_empty());
}

#[tokio::test]
async fn clone_fetch_and_push_over_file_urls() {
    let dir = tempfile::tempdir().unwrap();
    let origin = bare(dir.path(), "origin.git").await;
    origin
        .commit(CommitRequest::new("main", "seed", me()).put("a", "1"))
        .await
        .unwrap();
    let origin_url = url(&dir.path().join("origin.git"));

    let work = GitRepo::clone(
        &origin_url,
        dir.path().join("work"),
        CloneOptions::default(),
    )
    .await
    .unwrap();
    assert!(!work.is_bare());
    assert!(dir.path().join("work/a").is_file());
    let mirror = GitRepo::clone(
        &origin_url,
        dir.path().join("mirror.git"),
        CloneOptions::default().bare(true),
    )
    .await
    .unwrap();
    assert!(mirror.is_bare());

    // New commit upstream; fetch by remote name with configured refspecs.
    origin
        .commit(CommitRequest::new("main", "up", me()).put("b", "2"))
        .await
        .unwrap();
    work.fetch("origin", &[]).await.unwrap();
    assert_eq!(work.read_file("origin/main", "b").await.unwrap(), b"2");
    assert_eq!(work.try_read_file("main", "b").await.unwrap(), None);

    // Push a new branch by URL, then by name.
    mirror
        .fetch("origin", &["+refs/heads/main:refs/heads/main"])
        .await
        .unwrap();
    mirror.create_branch("feature", "main").await.unwrap();
    mirror
        .commit(CommitRequest::new("feature", "f", me()).put("f", "f"))
        .await
        .unwrap();
    mirror
        .push(&origin_url, &["refs/heads/feature:refs/heads/feature"])
        .await
        .unwrap();
    assert_eq!(origin.read_file("feature", "f").await.unwrap(), b"f");
    mirror
        .commit(CommitRequest::new("feature", "f2", me()).put("f", "f2"))
        .await
        .unwrap();
    mirror
        .push("origin", &["refs/heads/feature:refs/heads/feature"])
        .await
        .unwrap();
    assert_eq!(origin.read_file("feature", "f").await.unwrap(), b"f2");

    // Errors: unknown remote name, missing remote repository, URL fetch without refspecs.
    assert_eq!(
        work.fetch("upstream", &[]).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    let missing = url(&dir.path().join("missing.git"));
    let err = work
        .fetch(&missing, &["+refs/heads/main:refs/x"])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("missing.git"), "{err}");
    assert_eq!(
        work.fetch(&origin_url, &[]).await.unwrap_err().kind(),
        ErrorKind::InvalidInput
    );
}

#[cfg(not(feature = "https"))]
#[tokio::test]
async fn https_without_the_feature_names_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let err = GitRepo::clone(
        "https://example.com/a/b.git",
        dir.path().join("x"),
        CloneOptions::default(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("`https` cargo feature"), "{err}");
}

#[cfg(not(feature = "ssh"))]
#[tokio::test]
async fn ssh_without_the_feature_names_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare(dir.path(), "r.git").await;
    let err = repo
        .fetch("git@example.com:a/b.git", &["+refs/heads/main:refs/x"])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("`ssh` cargo feature"), "{err}");
}

#[tokio::test]
async fn non_fast_forward_push_is_a_conflict_and_commit_and_push_resolves_it() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare(dir.path(), "remote.git").await;
    remote
        .commit(CommitRequest::new("main", "seed", me()).put("seed", "s"))
        .await
        .unwrap();
    let remote_url = url(&dir.path().join("remote.git"));
    let a = GitRepo::clone(
        &remote_url,
        dir.path().join("a.git"),
        CloneOptions::default().bare(true),
    )
    .await
    .unwrap();
    let b = GitRepo::clone(
        &remote_url,
        dir.path().join("b.git"),
        CloneOptions::default().bare(true),
    )
    .await
    .unwrap();

    // A pushes first.
    let pushed_a = a
        .commit_and_push(
            "origin",
            CommitRequest::new("main", "from a", me()).put("a.txt", "a"),
            &RetryPolicy::default(),
        )
        .await
        .unwrap();
    assert!(pushed_a.created);
    assert_eq!(remote.resolve("main").await.unwrap(), pushed_a.id);

    // B, stale, commits locally and pushes: rejected as non-fast-forward.
    b.commit(CommitRequest::new("main", "from b (stale)", me()).put("b.txt", "b"))
        .await
        .unwrap();
    let err = b
        .push("origin", &["refs/heads/main:refs/heads/main"])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    assert_eq!(
        remote.resolve("main").await.unwrap(),
        pushed_a.id,
        "A's commit must survive"
    );

    // The retrying helper fetches, re-applies B's change on top of A's and pushes.
    let out = b
        .commit_and_push(
            "origin",
            CommitRequest::new("main", "from b", me()).put("b.txt", "b"),
            &RetryPolicy::default(),
        )
        .await
        .unwrap();
    assert!(out.created);
    assert_eq!(out.parent, Some(pushed_a.id));
    let files = remote.read_tree("main", "").await.unwrap();
    assert_eq!(files.keys().collect::<Vec<_>>(), ["a.txt", "b.txt", "seed"]);
    let log = remote.log("main", &LogOptions::default()).await.unwrap();
    assert_eq!(
        log.iter().map(|e| e.summary.as_str()).collect::<Vec<_>>(),
        ["from b", "from a", "seed"]
    );

    // A no-op change pushes nothing.
    let noop = a
        .commit_and_push(
            "origin",
            CommitRequest::new("main", "again", me()).put("a.txt", "a"),
            &RetryPolicy::default(),
        )
        .await
        .unwrap();
    assert!(!noop.created);
    assert_eq!(noop.id, out.id);
    assert_eq!(
        a.resolve("main").await.unwrap(),
        out.id,
        "the local branch follows the remote"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_pushers_from_two_clones_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let remote = bare(dir.path(), "remote.git").await;
    let remote_url = url(&dir.path().join("remote.git"));
    let a = bare(dir.path(), "a.git").await;
    let b = bare(dir.path(), "b.git").await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for i in 0..20 {
        let repo = if i % 2 == 0 { a.clone() } else { b.clone() };
        let url = remote_url.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let req = CommitRequest::new("main", format!("push {i}"), me())
                .put(format!("p/{i:02}"), i.to_string());
            repo.commit_and_push(&url, req, &generous()).await
        }));
    }
    let mut attempts = 0;
    for t in tasks {
        let out = t.await.unwrap().unwrap();
        assert!(out.created);
        attempts += out.attempts;
    }
    let files = remote.read_tree("main", "p").await.unwrap();
    assert_eq!(files.len(), 20);
    let log = remote.log("main", &LogOptions::default()).await.unwrap();
    assert_eq!(log.len(), 20);
    assert!(
        attempts > 20,
        "expected non-fast-forward retries, got {attempts} attempts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cas_commits_on_the_same_parent_have_exactly_one_winner() {
    let dir = tempfile::tempdir().unwrap();
    let repo = bare(dir.path(), "r.git").await;
    let base = repo
        .commit(CommitRequest::new("main", "base", me()).put("base", "b"))
        .await
        .unwrap();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(10));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let repo = repo.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let req = CommitRequest::new("main", format!("w{i}"), me())
                .put(format!("w{i}"), "x")
                .parent(base.id);
            repo.commit(req).await
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            Ok(out) => winners.push(out.id),
            Err(e) => assert_eq!(e.kind(), ErrorKind::Conflict, "{e}"),
        }
    }
    assert_eq!(
        winners.len(),
        1,
        "exactly one writer may move the branch from the same parent"
    );
    assert_eq!(repo.resolve("main").await.unwrap(), winners[0]);
    assert_eq!(
        repo.log("main", &LogOptions::default())
            .await
            .unwrap()
            .len(),
        2
    );
}

/// A `git daemon` on loopback serving `base` with push enabled, killed on drop.
struct Daemon {
    child: std::process::Child,
    port: u16,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `git daemon`, or `None` when the git command-line tool is not installed.
fn git_daemon(base: &Path) -> Option<Daemon> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new("git")
        .args([
            "daemon",
            "--reuseaddr",
            "--export-all",
            "--enable=receive-pack",
            "--listen=127.0.0.1",
        ])
        .arg(format!("--port={port}"))
        .arg(format!("--base-path={}", base.display()))
        .arg(base)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    let daemon = Daemon { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(daemon);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("git daemon did not start listening on port {port}");
}

/// The network path of `commit_and_push` (ls-remote, fetch, push, server-side
/// rejection) against a real `git daemon` over `git://` on loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn commit_and_push_over_the_git_protocol_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("served");
    let remote = GitRepo::init(served.join("remote.git"), InitOptions::bare("main"))
        .await
        .unwrap();
    let Some(daemon) = git_daemon(&served) else {
        eprintln!("skipping: the git command-line tool is not installed");
        return;
    };
    let url = format!("git://127.0.0.1:{}/remote.git", daemon.port);
    let a = bare(dir.path(), "a.git").await;
    let b = bare(dir.path(), "b.git").await;
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(10));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let repo = if i % 2 == 0 { a.clone() } else { b.clone() };
        let url = url.clone();
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            let req = CommitRequest::new("main", format!("net {i}"), me())
                .put(format!("n/{i}"), i.to_string());
            repo.commit_and_push(&url, req, &generous()).await
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().unwrap().created);
    }
    assert_eq!(remote.read_tree("main", "n").await.unwrap().len(), 10);
    assert_eq!(
        remote
            .log("main", &LogOptions::default())
            .await
            .unwrap()
            .len(),
        10
    );
    // A stale plain push over the network is a Conflict.
    let c = bare(dir.path(), "c.git").await;
    c.commit(CommitRequest::new("main", "stale", me()).put("stale", "s"))
        .await
        .unwrap();
    let err = c
        .push(&url, &["refs/heads/main:refs/heads/main"])
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
    drop(daemon);
}

/// `git status --porcelain` through the git CLI, `None` (after saying so) without one.
fn cli_status(dir: &Path) -> Option<String> {
    match std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=all"])
        .current_dir(dir)
        .output()
    {
        Ok(out) => {
            assert!(out.status.success(), "{out:?}");
            Some(String::from_utf8(out.stdout).unwrap())
        }
        Err(e) => {
            eprintln!("skipping the `git status` checks: cannot run the git CLI ({e})");
            None
        }
    }
}

#[tokio::test]
async fn update_worktree_writes_only_the_changed_paths_and_their_index_entries() {
    use idp_core::git::WorktreeUpdate;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("w");
    let w = GitRepo::init(&root, InitOptions::with_worktree("main"))
        .await
        .unwrap();
    let first = w
        .commit(
            CommitRequest::new("main", "1", me())
                .put("keep/a.txt", "a")
                .put("gone/deep/b.txt", "b")
                .put("swap", "file first")
                .put("dir/c.txt", "c")
                .update_worktree(true),
        )
        .await
        .unwrap();
    assert_eq!(first.worktree, Some(WorktreeUpdate::Updated { files: 4 }));
    if let Some(status) = cli_status(&root) {
        assert_eq!(status, "");
    }
    // An untracked file and an edited tracked file elsewhere: never touched.
    std::fs::write(root.join("keep/untracked.txt"), "mine").unwrap();
    std::fs::write(root.join("keep/a.txt"), "edited").unwrap();
    let second = w
        .commit(
            CommitRequest::new("main", "2", me())
                .delete_tree("gone")
                .delete("swap")
                .put("swap/inside.txt", "now a folder")
                .delete_tree("dir")
                .put("dir", "now a file")
                .put("new/n.txt", "n")
                .update_worktree(true),
        )
        .await
        .unwrap();
    assert_eq!(second.worktree, Some(WorktreeUpdate::Updated { files: 6 }));
    assert!(!root.join("gone").exists(), "emptied folders are removed");
    assert_eq!(
        std::fs::read(root.join("swap/inside.txt")).unwrap(),
        b"now a folder"
    );
    assert_eq!(std::fs::read(root.join("dir")).unwrap(), b"now a file");
    assert_eq!(std::fs::read(root.join("new/n.txt")).unwrap(), b"n");
    assert_eq!(std::fs::read(root.join("keep/a.txt")).unwrap(), b"edited");
    assert_eq!(
        std::fs::read(root.join("keep/untracked.txt")).unwrap(),
        b"mine"
    );
    if let Some(status) = cli_status(&root) {
        assert_eq!(status, " M keep/a.txt\n?? keep/untracked.txt\n");
    }

    // A commit changing the edited file: committed, but the working tree and index are
    // left exactly as they were.
    let third = w
        .commit(
            CommitRequest::new("main", "3", me())
                .put("keep/a.txt", "a2")
                .put("new/n.txt", "n2")
                .update_worktree(true),
        )
        .await
        .unwrap();
    assert!(third.created);
    match third.worktree {
        Some(WorktreeUpdate::Skipped { paths, reason }) => {
            assert_eq!(paths, ["keep/a.txt"]);
            assert!(reason.contains("keep/a.txt"), "{reason}");
        }
        other => panic!("expected a skipped update, got {other:?}"),
    }
    assert_eq!(std::fs::read(root.join("keep/a.txt")).unwrap(), b"edited");
    assert_eq!(std::fs::read(root.join("new/n.txt")).unwrap(), b"n");
    assert_eq!(w.read_file("main", "keep/a.txt").await.unwrap(), b"a2");

    // Without the option (the default) the working tree is not touched; a bare
    // repository has none.
    let quiet = w
        .commit(CommitRequest::new("main", "4", me()).put("quiet.txt", "q"))
        .await
        .unwrap();
    assert_eq!(quiet.worktree, None);
    assert!(!root.join("quiet.txt").exists());
    let b = bare(dir.path(), "b.git").await;
    let out = b
        .commit(
            CommitRequest::new("main", "1", me())
                .put("x", "x")
                .update_worktree(true),
        )
        .await
        .unwrap();
    assert_eq!(out.worktree, Some(WorktreeUpdate::NotCheckedOut));
}

#[tokio::test]
async fn update_worktree_leaves_a_branch_that_is_not_checked_out_alone() {
    use idp_core::git::WorktreeUpdate;
    let dir = tempfile::tempdir().unwrap();
    let w = GitRepo::init(dir.path(), InitOptions::with_worktree("main"))
        .await
        .unwrap();
    w.commit(
        CommitRequest::new("main", "1", me())
            .put("a", "1")
            .update_worktree(true),
    )
    .await
    .unwrap();
    let other = w
        .commit(
            CommitRequest::new("other", "x", me())
                .put("b", "2")
                .update_worktree(true),
        )
        .await
        .unwrap();
    assert_eq!(other.worktree, Some(WorktreeUpdate::NotCheckedOut));
    assert!(!dir.path().join("b").exists());
}
