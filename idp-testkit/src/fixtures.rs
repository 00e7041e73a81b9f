//! Git fixtures: real repositories in temporary directories, for tests anywhere in the
//! workspace.
//!
//! Start with [`GitFixture::new`]: a bare "remote" repository reachable over a
//! `file://` URL, with one commit on `main`, and a working clone of it. Code under test
//! clones or pushes to [`GitFixture::remote_url`]; the test plays "another developer"
//! with [`GitFixture::commit_files`], which commits in the working clone and pushes.
//! For a single repository with some files, use [`repo_with_files`] or
//! [`bare_repo_with_files`].
//!
//! Every fixture owns its [`tempfile::TempDir`]: the repositories live exactly as long
//! as the fixture value. The helpers are synchronous (plain git2), so they work in
//! `#[test]` and `#[tokio::test]` alike; [`GitFixture::remote_repo`] and friends hand
//! out async [`idp_core::git::GitRepo`] handles.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
//! use idp_testkit::fixtures::GitFixture;
//!
//! let fx = GitFixture::with_files(&[("envs/prod/app.yaml", "replicas: 1\n")])?;
//! fx.commit_files(&[("envs/prod/app.yaml", "replicas: 3\n")], "scale prod")?;
//! assert_eq!(fx.remote_file("main", "envs/prod/app.yaml")?.as_deref(), Some("replicas: 3\n"));
//!
//! // Code under test sees the same remote through idp_core::git.
//! let remote = fx.remote_repo().await?;
//! assert_eq!(remote.read_file("main~1", "envs/prod/app.yaml").await?, b"replicas: 1\n");
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use git2::{Repository, Signature};
use idp_core::git::GitRepo;
use idp_core::{Error, Result};
use tempfile::TempDir;

/// The branch every fixture creates.
pub const DEFAULT_BRANCH: &str = "main";

fn git_err(what: impl std::fmt::Display) -> impl FnOnce(git2::Error) -> Error {
    move |e| Error::internal(format!("git fixture: {what}: {}", e.message())).with_source(e)
}

fn signature() -> Result<Signature<'static>> {
    Signature::now("idp-testkit", "testkit@idp.invalid").map_err(git_err("signature"))
}

/// Refuse paths that would leave the repository (absolute, `..`, `.git`).
fn check_path(path: &str) -> Result<()> {
    let bad = path.is_empty()
        || path.starts_with('/')
        || path.contains('\\')
        || path
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.eq_ignore_ascii_case(".git"));
    if bad {
        return Err(Error::invalid_input(format!(
            "git fixture: invalid file path {path:?}; use a relative path like \"envs/prod/app.yaml\""
        )));
    }
    Ok(())
}

fn file_url(path: &Path) -> String {
    format!("file://{}", path.display())
}

/// Build a tree from `base` plus `files` (path → content) minus `deletes`, in the
/// object database of `repo`.
fn build_tree(
    repo: &Repository,
    base: Option<&git2::Tree<'_>>,
    files: &[(&str, &str)],
    deletes: &[&str],
) -> Result<git2::Oid> {
    let mut index = git2::Index::new().map_err(git_err("new index"))?;
    if let Some(tree) = base {
        index.read_tree(tree).map_err(git_err("read tree"))?;
    }
    for path in deletes {
        check_path(path)?;
        index
            .remove_path(Path::new(path))
            .map_err(git_err(format_args!("remove {path}")))?;
        index
            .remove_dir(Path::new(path), 0)
            .map_err(git_err(format_args!("remove {path}")))?;
    }
    for (path, content) in files {
        check_path(path)?;
        let blob = repo
            .blob(content.as_bytes())
            .map_err(git_err(format_args!("write {path}")))?;
        let entry = git2::IndexEntry {
            ctime: git2::IndexTime::new(0, 0),
            mtime: git2::IndexTime::new(0, 0),
            dev: 0,
            ino: 0,
            mode: 0o100_644,
            uid: 0,
            gid: 0,
            file_size: 0,
            id: blob,
            flags: 0,
            flags_extended: 0,
            path: path.as_bytes().to_vec(),
        };
        index
            .add(&entry)
            .map_err(git_err(format_args!("stage {path}")))?;
    }
    index.write_tree_to(repo).map_err(git_err("write tree"))
}

/// Commit `files` on top of `refname` (or as its first commit) without a working tree.
fn commit_to_ref(
    repo: &Repository,
    refname: &str,
    files: &[(&str, &str)],
    deletes: &[&str],
    message: &str,
) -> Result<git2::Oid> {
    let parent = match repo.find_reference(refname) {
        Ok(r) => Some(r.peel_to_commit().map_err(git_err(refname))?),
        Err(e) if e.code() == git2::ErrorCode::NotFound => None,
        Err(e) => return Err(git_err(refname)(e)),
    };
    let base = match &parent {
        Some(p) => Some(p.tree().map_err(git_err("parent tree"))?),
        None => None,
    };
    let tree_id = build_tree(repo, base.as_ref(), files, deletes)?;
    let tree = repo.find_tree(tree_id).map_err(git_err("new tree"))?;
    let sig = signature()?;
    let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
    repo.commit(Some(refname), &sig, &sig, message, &tree, &parents)
        .map_err(git_err(format_args!("commit to {refname}")))
}

/// A bare "remote" repository (served over `file://`) plus a working clone, in one
/// temporary directory.
///
/// ```
/// use idp_testkit::fixtures::GitFixture;
/// let fx = GitFixture::new()?;
/// assert!(fx.remote_url().starts_with("file://"));
/// assert!(fx.work_path().join("README.md").is_file());
/// let id = fx.commit_files(&[("a.txt", "hello")], "add a")?;
/// assert_eq!(fx.remote_head()?, id);
/// # Ok::<(), idp_core::Error>(())
/// ```
#[derive(Debug)]
pub struct GitFixture {
    dir: TempDir,
    remote: PathBuf,
    work: PathBuf,
}

impl GitFixture {
    /// A remote whose `main` has one commit with a `README.md`, and a clone of it.
    ///
    /// ```
    /// let fx = idp_testkit::fixtures::GitFixture::new()?;
    /// assert_eq!(fx.remote_log()?, ["initial commit"]);
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn new() -> Result<Self> {
        Self::with_files(&[("README.md", "# fixture repository\n")])
    }

    /// A remote whose `main` has one commit with exactly `files` (path → content), and
    /// a clone of it.
    ///
    /// ```
    /// let fx = idp_testkit::fixtures::GitFixture::with_files(&[("envs/dev/app.yaml", "a: 1\n")])?;
    /// assert!(fx.work_path().join("envs/dev/app.yaml").is_file());
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn with_files(files: &[(&str, &str)]) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("idp-git-fixture-")
            .tempdir()?;
        let remote = dir.path().join("remote.git");
        let work = dir.path().join("work");
        let mut opts = git2::RepositoryInitOptions::new();
        opts.bare(true).initial_head(DEFAULT_BRANCH);
        let bare = Repository::init_opts(&remote, &opts).map_err(git_err("init remote"))?;
        commit_to_ref(&bare, "refs/heads/main", files, &[], "initial commit")?;
        Repository::clone(&file_url(&remote), &work).map_err(git_err("clone remote"))?;
        Ok(Self { dir, remote, work })
    }

    /// The temporary directory holding everything (remove it by dropping the fixture).
    ///
    /// ```
    /// let fx = idp_testkit::fixtures::GitFixture::new()?;
    /// assert!(fx.work_path().starts_with(fx.path()));
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The bare remote's directory.
    ///
    /// ```
    /// let fx = idp_testkit::fixtures::GitFixture::new()?;
    /// assert!(fx.remote_path().join("HEAD").is_file());
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn remote_path(&self) -> &Path {
        &self.remote
    }

    /// The remote as a `file://` URL, for code that clones, fetches or pushes.
    ///
    /// ```
    /// let fx = idp_testkit::fixtures::GitFixture::new()?;
    /// assert!(fx.remote_url().ends_with("remote.git"));
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn remote_url(&self) -> String {
        file_url(&self.remote)
    }

    /// The working clone's directory (its `origin` is the remote).
    ///
    /// ```
    /// let fx = idp_testkit::fixtures::GitFixture::new()?;
    /// assert!(fx.work_path().join(".git").is_dir());
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn work_path(&self) -> &Path {
        &self.work
    }

    /// The branch the fixture works on ([`DEFAULT_BRANCH`]).
    ///
    /// ```
    /// assert_eq!(idp_testkit::fixtures::GitFixture::new()?.branch(), "main");
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn branch(&self) -> &str {
        DEFAULT_BRANCH
    }

    /// Act as another developer: bring the working clone up to date with the remote's
    /// `main` (discarding local changes), write `files` (path → content), commit them
    /// with `message` and push. Returns the new commit id (hex).
    ///
    /// ```
    /// let fx = idp_testkit::fixtures::GitFixture::new()?;
    /// fx.commit_files(&[("a.txt", "1"), ("dir/b.txt", "2")], "two files")?;
    /// assert_eq!(std::fs::read_to_string(fx.work_path().join("dir/b.txt"))?, "2");
    /// assert_eq!(fx.remote_file("main", "a.txt")?.as_deref(), Some("1"));
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn commit_files(&self, files: &[(&str, &str)], message: &str) -> Result<String> {
        self.change(files, &[], message)
    }

    /// Like [`commit_files`](Self::commit_files), but removes files or directories.
    ///
    /// ```
    /// let fx = idp_testkit::fixtures::GitFixture::with_files(&[("a", "1"), ("d/b", "2")])?;
    /// fx.delete_files(&["d"], "drop d")?;
    /// assert_eq!(fx.remote_file("main", "d/b")?, None);
    /// assert!(!fx.work_path().join("d/b").exists());
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn delete_files(&self, paths: &[&str], message: &str) -> Result<String> {
        self.change(&[], paths, message)
    }

    fn change(&self, files: &[(&str, &str)], deletes: &[&str], message: &str) -> Result<String> {
        let repo = Repository::open(&self.work).map_err(git_err("open work clone"))?;
        Self::sync(&repo)?;
        let id = commit_to_ref(&repo, "refs/heads/main", files, deletes, message)?;
        let commit = repo.find_object(id, None).map_err(git_err("new commit"))?;
        repo.reset(&commit, git2::ResetType::Hard, None)
            .map_err(git_err("check out new commit"))?;
        let mut origin = repo.find_remote("origin").map_err(git_err("origin"))?;
        origin
            .push(&["refs/heads/main:refs/heads/main"], None)
            .map_err(git_err("push to remote"))?;
        Ok(id.to_string())
    }

    /// Fetch the remote and hard-reset the working clone's `main` to it.
    fn sync(repo: &Repository) -> Result<()> {
        let mut origin = repo.find_remote("origin").map_err(git_err("origin"))?;
        origin
            .fetch(&["+refs/heads/main:refs/remotes/origin/main"], None, None)
            .map_err(git_err("fetch remote"))?;
        let tip = repo
            .revparse_single("refs/remotes/origin/main")
            .map_err(git_err("origin/main"))?;
        repo.reference("refs/heads/main", tip.id(), true, "fixture: sync")
            .map_err(git_err("update main"))?;
        repo.reset(&tip, git2::ResetType::Hard, None)
            .map_err(git_err("reset work clone"))
    }

    /// Bring the working clone up to date with the remote (e.g. after code under test
    /// pushed), discarding local changes.
    ///
    /// ```
    /// let fx = idp_testkit::fixtures::GitFixture::new()?;
    /// fx.pull()?;
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn pull(&self) -> Result<()> {
        let repo = Repository::open(&self.work).map_err(git_err("open work clone"))?;
        Self::sync(&repo)
    }

    /// The content of `path` at revision `rev` of the remote, `None` if absent.
    ///
    /// ```
    /// let fx = idp_testkit::fixtures::GitFixture::new()?;
    /// assert!(fx.remote_file("main", "README.md")?.is_some());
    /// assert_eq!(fx.remote_file("main", "nope")?, None);
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn remote_file(&self, rev: &str, path: &str) -> Result<Option<String>> {
        check_path(path)?;
        let repo = Repository::open(&self.remote).map_err(git_err("open remote"))?;
        let tree = repo
            .revparse_single(rev)
            .and_then(|o| o.peel_to_tree())
            .map_err(git_err(format_args!("revision {rev}")))?;
        let entry = match tree.get_path(Path::new(path)) {
            Ok(e) => e,
            Err(e) if e.code() == git2::ErrorCode::NotFound => return Ok(None),
            Err(e) => return Err(git_err(path)(e)),
        };
        let blob = repo.find_blob(entry.id()).map_err(git_err(path))?;
        Ok(Some(String::from_utf8_lossy(blob.content()).into_owned()))
    }

    /// The commit id (hex) the remote's `main` points at.
    ///
    /// ```
    /// let fx = idp_testkit::fixtures::GitFixture::new()?;
    /// assert_eq!(fx.remote_head()?.len(), 40);
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn remote_head(&self) -> Result<String> {
        let repo = Repository::open(&self.remote).map_err(git_err("open remote"))?;
        let id = repo
            .refname_to_id("refs/heads/main")
            .map_err(git_err("main"))?;
        Ok(id.to_string())
    }

    /// The summaries of the remote's `main`, newest first.
    ///
    /// ```
    /// let fx = idp_testkit::fixtures::GitFixture::new()?;
    /// fx.commit_files(&[("x", "1")], "second")?;
    /// assert_eq!(fx.remote_log()?, ["second", "initial commit"]);
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn remote_log(&self) -> Result<Vec<String>> {
        let repo = Repository::open(&self.remote).map_err(git_err("open remote"))?;
        let mut walk = repo.revwalk().map_err(git_err("revwalk"))?;
        walk.push_ref("refs/heads/main").map_err(git_err("main"))?;
        let mut out = Vec::new();
        for id in walk {
            let id = id.map_err(git_err("revwalk"))?;
            let commit = repo.find_commit(id).map_err(git_err(id))?;
            let message = String::from_utf8_lossy(commit.message_bytes()).into_owned();
            out.push(message.lines().next().unwrap_or_default().to_owned());
        }
        Ok(out)
    }

    /// Another clone of the remote at `<fixture dir>/<name>` (bare when `bare`), e.g. a
    /// second writer.
    ///
    /// ```
    /// let fx = idp_testkit::fixtures::GitFixture::new()?;
    /// let other = fx.clone_remote("other.git", true)?;
    /// assert!(other.join("HEAD").is_file());
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn clone_remote(&self, name: &str, bare: bool) -> Result<PathBuf> {
        check_path(name)?;
        let dest = self.dir.path().join(name);
        git2::build::RepoBuilder::new()
            .bare(bare)
            .clone(&self.remote_url(), &dest)
            .map_err(git_err(format_args!("clone into {name}")))?;
        Ok(dest)
    }

    /// An async [`GitRepo`] handle on the bare remote.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// let fx = idp_testkit::fixtures::GitFixture::new()?;
    /// let remote = fx.remote_repo().await?;
    /// assert!(remote.is_bare());
    /// # Ok(()) }
    /// ```
    pub async fn remote_repo(&self) -> Result<GitRepo> {
        GitRepo::open(&self.remote).await
    }

    /// An async [`GitRepo`] handle on the working clone.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// let fx = idp_testkit::fixtures::GitFixture::new()?;
    /// let work = fx.work_repo().await?;
    /// assert!(!work.is_bare());
    /// # Ok(()) }
    /// ```
    pub async fn work_repo(&self) -> Result<GitRepo> {
        GitRepo::open(&self.work).await
    }
}

/// One repository in its own temporary directory, made by [`repo_with_files`] or
/// [`bare_repo_with_files`].
///
/// ```
/// let repo = idp_testkit::fixtures::repo_with_files(&[("a.txt", "1")])?;
/// assert!(repo.path().join("a.txt").is_file());
/// # Ok::<(), idp_core::Error>(())
/// ```
#[derive(Debug)]
pub struct TempRepo {
    dir: TempDir,
    path: PathBuf,
}

impl TempRepo {
    /// The repository's directory (the working tree root, or the bare repository).
    ///
    /// ```
    /// let repo = idp_testkit::fixtures::bare_repo_with_files(&[("a.txt", "1")])?;
    /// assert!(repo.path().join("HEAD").is_file());
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The temporary directory that holds the repository.
    ///
    /// ```
    /// let repo = idp_testkit::fixtures::repo_with_files(&[])?;
    /// assert!(repo.path().starts_with(repo.dir()));
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The repository as a `file://` URL.
    ///
    /// ```
    /// let repo = idp_testkit::fixtures::bare_repo_with_files(&[("a", "1")])?;
    /// assert!(repo.url().starts_with("file://"));
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn url(&self) -> String {
        file_url(&self.path)
    }

    /// The commit id (hex) `main` points at.
    ///
    /// ```
    /// let repo = idp_testkit::fixtures::repo_with_files(&[("a", "1")])?;
    /// assert_eq!(repo.head()?.len(), 40);
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn head(&self) -> Result<String> {
        let repo = Repository::open(&self.path).map_err(git_err("open"))?;
        let id = repo
            .refname_to_id("refs/heads/main")
            .map_err(git_err("main"))?;
        Ok(id.to_string())
    }

    /// Commit more files on `main` (and update the working tree of a non-bare
    /// repository). Returns the commit id (hex).
    ///
    /// ```
    /// let repo = idp_testkit::fixtures::repo_with_files(&[("a", "1")])?;
    /// let id = repo.commit_files(&[("b", "2")], "add b")?;
    /// assert_eq!(repo.head()?, id);
    /// assert!(repo.path().join("b").is_file());
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn commit_files(&self, files: &[(&str, &str)], message: &str) -> Result<String> {
        let repo = Repository::open(&self.path).map_err(git_err("open"))?;
        let id = commit_to_ref(&repo, "refs/heads/main", files, &[], message)?;
        if !repo.is_bare() {
            let commit = repo.find_object(id, None).map_err(git_err("new commit"))?;
            repo.reset(&commit, git2::ResetType::Hard, None)
                .map_err(git_err("check out"))?;
        }
        Ok(id.to_string())
    }

    /// An async [`GitRepo`] handle on it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// let repo = idp_testkit::fixtures::repo_with_files(&[("a", "1")])?;
    /// assert_eq!(repo.open().await?.read_file("main", "a").await?, b"1");
    /// # Ok(()) }
    /// ```
    pub async fn open(&self) -> Result<GitRepo> {
        GitRepo::open(&self.path).await
    }
}

fn make_repo(files: &[(&str, &str)], bare: bool) -> Result<TempRepo> {
    let dir = tempfile::Builder::new().prefix("idp-git-repo-").tempdir()?;
    let path = dir.path().join(if bare { "repo.git" } else { "repo" });
    let mut opts = git2::RepositoryInitOptions::new();
    opts.bare(bare).initial_head(DEFAULT_BRANCH);
    Repository::init_opts(&path, &opts).map_err(git_err("init"))?;
    let repo = TempRepo { dir, path };
    repo.commit_files(files, "initial commit")?;
    Ok(repo)
}

/// A non-bare repository whose `main` has one commit with exactly `files` (path →
/// content), checked out.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
/// use idp_testkit::fixtures::repo_with_files;
/// let repo = repo_with_files(&[("catalog-info.yaml", "kind: Component\n"), ("src/main.rs", "fn main() {}\n")])?;
/// let files = repo.open().await?.read_tree("HEAD", "").await?;
/// assert_eq!(files.len(), 2);
/// # Ok(()) }
/// ```
pub fn repo_with_files(files: &[(&str, &str)]) -> Result<TempRepo> {
    make_repo(files, false)
}

/// A bare repository whose `main` has one commit with exactly `files`.
///
/// ```
/// let repo = idp_testkit::fixtures::bare_repo_with_files(&[("a.yaml", "a: 1\n")])?;
/// assert!(repo.path().ends_with("repo.git"));
/// # Ok::<(), idp_core::Error>(())
/// ```
pub fn bare_repo_with_files(files: &[(&str, &str)]) -> Result<TempRepo> {
    make_repo(files, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixture_round_trip_and_two_writers() {
        let fx = GitFixture::with_files(&[("a", "1")]).unwrap();
        let other = fx.clone_remote("other", false).unwrap();
        fx.commit_files(&[("b", "2")], "b").unwrap();
        // A second writer pushing through its own clone.
        let repo = Repository::open(&other).unwrap();
        let mut origin = repo.find_remote("origin").unwrap();
        origin
            .fetch(&["+refs/heads/main:refs/remotes/origin/main"], None, None)
            .unwrap();
        let tip = repo.refname_to_id("refs/remotes/origin/main").unwrap();
        repo.reference("refs/heads/main", tip, true, "").unwrap();
        commit_to_ref(&repo, "refs/heads/main", &[("c", "3")], &[], "c").unwrap();
        origin
            .push(&["refs/heads/main:refs/heads/main"], None)
            .unwrap();
        // The fixture's next commit builds on top, nothing is lost.
        fx.commit_files(&[("d", "4")], "d").unwrap();
        assert_eq!(fx.remote_log().unwrap(), ["d", "c", "b", "initial commit"]);
        for (p, c) in [("a", "1"), ("b", "2"), ("c", "3"), ("d", "4")] {
            assert_eq!(fx.remote_file("main", p).unwrap().as_deref(), Some(c));
        }
        assert!(fx.work_path().join("c").is_file());
    }

    #[test]
    fn bad_paths_are_invalid_input() {
        let fx = GitFixture::new().unwrap();
        for bad in ["/abs", "../x", ".git/config", ""] {
            let err = fx.commit_files(&[(bad, "x")], "bad").unwrap_err();
            assert_eq!(err.kind(), idp_core::ErrorKind::InvalidInput, "{bad}");
        }
    }

    #[test]
    fn temp_repos_live_as_long_as_the_value() {
        let repo = bare_repo_with_files(&[("a", "1")]).unwrap();
        let dir = repo.dir().to_path_buf();
        assert!(dir.exists());
        drop(repo);
        assert!(!dir.exists());
    }
}
