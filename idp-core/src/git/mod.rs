//! An async Git repository with compare-and-swap commits, built on git2 (libgit2).
//!
//! Start with [`GitRepo`]: [`GitRepo::init`], [`GitRepo::open`] or [`GitRepo::clone`]
//! one, read files and whole folders at any revision without a checkout
//! ([`GitRepo::read_file`], [`GitRepo::read_tree`], [`GitRepo::list_dir`]), and write with
//! [`GitRepo::commit`] / [`GitRepo::commit_with_retry`], which build the new tree in the
//! object database (no working tree needed, bare repositories work) and move the branch
//! **only if it still points at the parent the commit was built on**. A concurrent writer
//! therefore never loses a commit: the loser gets [`ErrorKind::Conflict`](crate::ErrorKind)
//! and the retrying helpers re-apply the change on the new tip. The same holds across
//! machines with [`GitRepo::commit_and_push`]: commit on top of the remote branch, push,
//! and on a non-fast-forward fetch, re-apply and push again.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
//! use idp_core::git::{CommitRequest, GitRepo, Identity, InitOptions, RetryPolicy};
//!
//! let dir = tempfile::tempdir()?;
//! let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
//! let bot = Identity::new("idp bot", "bot@example.com");
//! let out = repo
//!     .commit_with_retry(
//!         CommitRequest::new("main", "deploy cart 1.2.0", bot)
//!             .put("envs/prod/cart.yaml", "image: cart:1.2.0\n")
//!             .trailer("Component", "cart"),
//!         &RetryPolicy::default(),
//!     )
//!     .await?;
//! assert!(out.created);
//! assert_eq!(repo.read_file("main", "envs/prod/cart.yaml").await?, b"image: cart:1.2.0\n");
//! let log = repo.log("main", &idp_core::git::LogOptions::default()).await?;
//! assert_eq!(log[0].trailer("Component"), Some("cart"));
//! # Ok(()) }
//! ```
//!
//! ## Why one `Repository` per operation
//!
//! `git2::Repository` is `Send` but not `Sync`, and every libgit2 call blocks. A
//! [`GitRepo`] keeps only the repository's path: each operation runs in
//! [`tokio::task::spawn_blocking`] and opens its own `Repository` there. We chose this
//! over an `Arc<Mutex<Repository>>` because
//!
//! - reads and writes from many tasks run in parallel instead of queueing on one lock,
//!   and correctness of concurrent writers comes from Git itself (ref lock files and the
//!   compare-and-swap on the ref), which also protects against *other processes* writing
//!   the same repository — a process-local mutex could not;
//! - every operation sees the current refs on disk, never a cached view;
//! - [`GitRepo`] is a cheap `Clone + Send + Sync` value with no shared state.
//!
//! Opening a repository costs a few file reads, small next to any operation that touches
//! objects.
//!
//! ## Working trees
//!
//! Writes update refs and the object database only. If a non-bare repository has the
//! written branch checked out, its working tree and index are **not** updated (they
//! will look modified) unless the commit asks for it with
//! [`CommitRequest::update_worktree`]: then only the paths the commit changed are
//! written or removed and only their index entries replaced, and local changes on
//! those paths stop the update (see [`WorktreeUpdate`]). Bare repositories (or branches
//! that are not checked out) remain the simplest home for machine-written state.
//!
//! ## Transports
//!
//! `file://` URLs and local paths always work. `https://` needs the `https` cargo feature
//! and `ssh://` / `user@host:path` the `ssh` feature; without them such URLs fail early
//! with an [`ErrorKind::InvalidInput`](crate::ErrorKind) error naming the feature.
//! Credentials come from the ssh agent and from Git's credential helpers.

mod commit;
mod error;
mod index_file;
mod path;
mod remote;
mod worktree;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use git2::{BranchType, ObjectType, Repository};
use tracing::instrument;

pub use commit::{Change, CommitOutcome, CommitRequest, Identity, RetryPolicy, RevertRequest};
pub use worktree::WorktreeUpdate;

use crate::{Error, ErrorKind, Result};
use error::Ctx;

/// The id of a Git object (a commit or a tree), printed as lowercase hex.
///
/// ```
/// use idp_core::git::ObjectId;
/// let id: ObjectId = "4b825dc642cb6eb9a060e54bf8d69288fbee4904".parse()?;
/// assert_eq!(id.to_string(), "4b825dc642cb6eb9a060e54bf8d69288fbee4904");
/// assert!("not hex".parse::<ObjectId>().is_err());
/// # Ok::<(), idp_core::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ObjectId(git2::Oid);

impl ObjectId {
    /// The id as lowercase hex.
    ///
    /// ```
    /// let id: idp_core::git::ObjectId = "4b825dc642cb6eb9a060e54bf8d69288fbee4904".parse()?;
    /// assert_eq!(id.to_hex().len(), 40);
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn to_hex(&self) -> String {
        self.0.to_string()
    }

    /// The first `n` hex digits (for messages).
    ///
    /// ```
    /// let id: idp_core::git::ObjectId = "4b825dc642cb6eb9a060e54bf8d69288fbee4904".parse()?;
    /// assert_eq!(id.short(7), "4b825dc");
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn short(&self, n: usize) -> String {
        let hex = self.to_hex();
        hex.get(..n).unwrap_or(&hex).to_owned()
    }

    pub(crate) fn raw(self) -> git2::Oid {
        self.0
    }
}

impl From<git2::Oid> for ObjectId {
    fn from(oid: git2::Oid) -> Self {
        Self(oid)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectId({})", self.0)
    }
}

impl FromStr for ObjectId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        if s.len() < 40 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::invalid_input(format!(
                "{s:?} is not a full Git object id (40 or 64 hex digits)"
            )));
        }
        git2::Oid::from_str(s).map(Self).map_err(|e| {
            Error::invalid_input(format!("{s:?} is not a Git object id: {}", e.message()))
                .with_source(e)
        })
    }
}

/// How [`GitRepo::init`] creates a repository.
///
/// ```
/// use idp_core::git::InitOptions;
/// let opts = InitOptions::bare("main");
/// assert!(opts.is_bare());
/// assert_eq!(InitOptions::default().initial_branch(), "main");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitOptions {
    bare: bool,
    initial_branch: String,
}

impl Default for InitOptions {
    fn default() -> Self {
        Self::with_worktree("main")
    }
}

impl InitOptions {
    /// A bare repository (no working tree) whose `HEAD` names `initial_branch`.
    ///
    /// ```
    /// assert!(idp_core::git::InitOptions::bare("main").is_bare());
    /// ```
    pub fn bare(initial_branch: impl Into<String>) -> Self {
        Self {
            bare: true,
            initial_branch: initial_branch.into(),
        }
    }

    /// A repository with a working tree whose `HEAD` names `initial_branch`.
    ///
    /// ```
    /// assert!(!idp_core::git::InitOptions::with_worktree("trunk").is_bare());
    /// ```
    pub fn with_worktree(initial_branch: impl Into<String>) -> Self {
        Self {
            bare: false,
            initial_branch: initial_branch.into(),
        }
    }

    /// Whether the repository will be bare.
    ///
    /// ```
    /// assert!(!idp_core::git::InitOptions::default().is_bare());
    /// ```
    pub fn is_bare(&self) -> bool {
        self.bare
    }

    /// The branch `HEAD` will name.
    ///
    /// ```
    /// assert_eq!(idp_core::git::InitOptions::bare("trunk").initial_branch(), "trunk");
    /// ```
    pub fn initial_branch(&self) -> &str {
        &self.initial_branch
    }
}

/// How [`GitRepo::clone`] clones.
///
/// ```
/// let opts = idp_core::git::CloneOptions::default().bare(true).branch("main");
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloneOptions {
    bare: bool,
    branch: Option<String>,
}

impl CloneOptions {
    /// Clone without a working tree.
    ///
    /// ```
    /// let opts = idp_core::git::CloneOptions::default().bare(true);
    /// # let _ = opts;
    /// ```
    pub fn bare(mut self, bare: bool) -> Self {
        self.bare = bare;
        self
    }

    /// Check out (point `HEAD` at) this branch instead of the remote's default.
    ///
    /// ```
    /// let opts = idp_core::git::CloneOptions::default().branch("release");
    /// # let _ = opts;
    /// ```
    pub fn branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = Some(branch.into());
        self
    }
}

/// What a tree entry is.
///
/// ```
/// use idp_core::git::EntryKind;
/// assert_ne!(EntryKind::File, EntryKind::Dir);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EntryKind {
    /// A regular file.
    File,
    /// A regular file with the executable bit.
    Executable,
    /// A symbolic link (its content is the link target).
    Symlink,
    /// A directory (a tree).
    Dir,
    /// A submodule (a commit of another repository).
    Submodule,
}

impl EntryKind {
    fn from_mode(mode: i32) -> Self {
        match mode {
            0o040_000 => Self::Dir,
            0o100_755 => Self::Executable,
            0o120_000 => Self::Symlink,
            0o160_000 => Self::Submodule,
            _ => Self::File,
        }
    }
}

/// One entry of a directory listed by [`GitRepo::list_dir`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
/// # use idp_core::git::*;
/// # let dir = tempfile::tempdir()?;
/// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
/// # repo.commit(CommitRequest::new("main", "add", Identity::new("a", "a@x")).put("d/f.txt", "x")).await?;
/// let entries = repo.list_dir("main", "d").await?;
/// assert_eq!(entries[0].name, "f.txt");
/// assert_eq!(entries[0].path, "d/f.txt");
/// assert_eq!(entries[0].kind, EntryKind::File);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirEntry {
    /// The entry's name inside its directory.
    pub name: String,
    /// The path from the repository root.
    pub path: String,
    /// File, directory, …
    pub kind: EntryKind,
    /// The blob or tree id.
    pub id: ObjectId,
}

/// A branch and the commit it points at, from [`GitRepo::list_branches`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
/// # use idp_core::git::*;
/// # let dir = tempfile::tempdir()?;
/// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
/// # repo.commit(CommitRequest::new("main", "add", Identity::new("a", "a@x")).put("f", "x")).await?;
/// let branches = repo.list_branches().await?;
/// assert_eq!(branches[0].name, "main");
/// assert_eq!(branches[0].commit, repo.resolve("main").await?);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Branch {
    /// The short name (`main`).
    pub name: String,
    /// The commit the branch points at.
    pub commit: ObjectId,
}

/// Filters for [`GitRepo::log`].
///
/// ```
/// let opts = idp_core::git::LogOptions::default().path("envs/prod").limit(10);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    path: Option<String>,
    limit: Option<usize>,
}

impl LogOptions {
    /// Only commits that changed something at or under `path` (a file or a directory),
    /// compared with their first parent.
    ///
    /// ```
    /// let opts = idp_core::git::LogOptions::default().path("envs/prod/cart.yaml");
    /// # let _ = opts;
    /// ```
    pub fn path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// At most `limit` entries (after the path filter), newest first.
    ///
    /// ```
    /// let opts = idp_core::git::LogOptions::default().limit(1);
    /// # let _ = opts;
    /// ```
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }
}

/// One commit returned by [`GitRepo::log`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
/// # use idp_core::git::*;
/// # let dir = tempfile::tempdir()?;
/// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
/// repo.commit(
///     CommitRequest::new("main", "deploy cart\n\nBody text.", Identity::new("Ann", "ann@example.com"))
///         .put("f", "x")
///         .trailer("Release-Id", "r-42"),
/// )
/// .await?;
/// let entry = &repo.log("main", &LogOptions::default()).await?[0];
/// assert_eq!(entry.summary, "deploy cart");
/// assert_eq!(entry.author.name, "Ann");
/// assert_eq!(entry.trailer("Release-Id"), Some("r-42"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogEntry {
    /// The commit id.
    pub id: ObjectId,
    /// The commit's tree.
    pub tree: ObjectId,
    /// Parent commits (first parent first).
    pub parents: Vec<ObjectId>,
    /// The first line of the message.
    pub summary: String,
    /// The whole message, trailers included.
    pub message: String,
    /// Who wrote the change.
    pub author: Identity,
    /// Who committed it.
    pub committer: Identity,
    /// The committer time.
    pub time: jiff::Timestamp,
    /// The `Key: value` trailers of the message's last paragraph, in order.
    pub trailers: Vec<(String, String)>,
}

impl LogEntry {
    /// The value of the first trailer named `key` (compared ignoring ASCII case).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// # repo.commit(CommitRequest::new("main", "m", Identity::new("a", "a@x")).put("f", "x").trailer("Environment", "prod")).await?;
    /// let entry = &repo.log("main", &LogOptions::default()).await?[0];
    /// assert_eq!(entry.trailer("environment"), Some("prod"));
    /// assert_eq!(entry.trailer("Missing"), None);
    /// # Ok(()) }
    /// ```
    pub fn trailer(&self, key: &str) -> Option<&str> {
        self.trailers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

/// Parse the `Key: value` trailers of a commit message's last paragraph.
///
/// ```
/// let t = idp_core::git::parse_trailers("deploy\n\nbody\n\nRelease-Id: r1\nComponent: cart\n");
/// assert_eq!(t, vec![("Release-Id".into(), "r1".into()), ("Component".into(), "cart".into())]);
/// assert!(idp_core::git::parse_trailers("no trailers here").is_empty());
/// ```
pub fn parse_trailers(message: &str) -> Vec<(String, String)> {
    match git2::message_trailers_strs(message) {
        Ok(trailers) => trailers
            .iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// An async handle on one Git repository (bare or not). Cheap to clone; see the
/// [module docs](self) for how it runs libgit2 off the async runtime.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
/// use idp_core::git::{GitRepo, InitOptions};
/// let dir = tempfile::tempdir()?;
/// GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
/// let repo = GitRepo::open(dir.path()).await?;
/// assert!(repo.is_bare());
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GitRepo {
    path: PathBuf,
    bare: bool,
}

/// Run `f` on a blocking thread, inside the current tracing span.
async fn blocking<T, F>(op: &'static str, path: &Path, f: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| {
            Error::internal(format!(
                "git {op} in {}: the blocking task failed: {e}",
                path.display()
            ))
        })?
}

impl GitRepo {
    /// Run `f` with a freshly opened `Repository` on a blocking thread.
    async fn with_repo<T, F>(&self, op: &'static str, f: F) -> Result<T>
    where
        F: FnOnce(&Repository, Ctx<'_>) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let path = self.path.clone();
        blocking(op, &self.path, move || {
            let ctx = Ctx::new(op, &path);
            let repo = Repository::open(&path).map_err(ctx.git("open"))?;
            f(&repo, ctx)
        })
        .await
    }

    /// Create a repository at `path` (the directory is created if needed). Creating one
    /// where a repository exists already re-initialises it harmlessly.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// use idp_core::git::{GitRepo, InitOptions};
    /// let dir = tempfile::tempdir()?;
    /// let repo = GitRepo::init(dir.path(), InitOptions::with_worktree("trunk")).await?;
    /// assert!(!repo.is_bare());
    /// assert_eq!(repo.head_branch().await?.as_deref(), Some("trunk"));
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %path.as_ref().display(), bare = options.bare))]
    pub async fn init(path: impl AsRef<Path>, options: InitOptions) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let p = path.clone();
        blocking("init", &path, move || {
            let ctx = Ctx::new("init", &p);
            let refname = branch_ref(&options.initial_branch)?;
            let mut opts = git2::RepositoryInitOptions::new();
            opts.bare(options.bare).initial_head(&refname).mkpath(true);
            let repo = Repository::init_opts(&p, &opts).map_err(ctx.git("create repository"))?;
            Ok(Self {
                path: p,
                bare: repo.is_bare(),
            })
        })
        .await
    }

    /// Open an existing repository: a bare repository's directory, a working tree's root
    /// or its `.git` directory. Parent directories are not searched.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// use idp_core::{ErrorKind, git::GitRepo};
    /// let dir = tempfile::tempdir()?;
    /// let err = GitRepo::open(dir.path()).await.unwrap_err();
    /// assert_eq!(err.kind(), ErrorKind::NotFound);
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %path.as_ref().display()))]
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let p = path.clone();
        blocking("open", &path, move || {
            let ctx = Ctx::new("open", &p);
            let repo = Repository::open(&p).map_err(ctx.git("open repository"))?;
            Ok(Self {
                path: p,
                bare: repo.is_bare(),
            })
        })
        .await
    }

    /// Clone `url` into `dest`. `file://` URLs and local paths always work; `https://`
    /// and `ssh://` need the matching cargo feature (see the [module docs](self)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// use idp_core::git::*;
    /// let dir = tempfile::tempdir()?;
    /// let origin = GitRepo::init(dir.path().join("origin.git"), InitOptions::bare("main")).await?;
    /// origin.commit(CommitRequest::new("main", "init", Identity::new("a", "a@x")).put("f", "1")).await?;
    /// let url = format!("file://{}", dir.path().join("origin.git").display());
    /// let clone = GitRepo::clone(&url, dir.path().join("work"), CloneOptions::default()).await?;
    /// assert_eq!(clone.read_file("HEAD", "f").await?, b"1");
    /// assert!(dir.path().join("work/f").exists());
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(url = %url, dest = %dest.as_ref().display()))]
    pub async fn clone(url: &str, dest: impl AsRef<Path>, options: CloneOptions) -> Result<Self> {
        let dest = dest.as_ref().to_path_buf();
        let url = url.to_owned();
        let d = dest.clone();
        blocking("clone", &dest, move || {
            let ctx = Ctx::new("clone", &d);
            remote::check_transport(&url, ctx)?;
            let state = remote::CallbackState::default();
            let mut builder = git2::build::RepoBuilder::new();
            builder.bare(options.bare);
            if let Some(branch) = &options.branch {
                builder.branch(branch);
            }
            let mut fetch = git2::FetchOptions::new();
            fetch.remote_callbacks(remote::callbacks(&state));
            builder.fetch_options(fetch);
            let repo = builder
                .clone(&url, &d)
                .map_err(ctx.git(format_args!("clone {url}")))?;
            Ok(Self {
                path: d,
                bare: repo.is_bare(),
            })
        })
        .await
    }

    /// The path the repository was opened with.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// let dir = tempfile::tempdir()?;
    /// let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// assert_eq!(repo.path(), dir.path());
    /// # Ok(()) }
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the repository has no working tree.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// let dir = tempfile::tempdir()?;
    /// assert!(GitRepo::init(dir.path(), InitOptions::bare("main")).await?.is_bare());
    /// # Ok(()) }
    /// ```
    pub fn is_bare(&self) -> bool {
        self.bare
    }

    /// The branch `HEAD` names (even if it has no commit yet), or `None` when `HEAD` is
    /// detached.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// let dir = tempfile::tempdir()?;
    /// let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// assert_eq!(repo.head_branch().await?.as_deref(), Some("main"));
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display()))]
    pub async fn head_branch(&self) -> Result<Option<String>> {
        self.with_repo("head", head_branch).await
    }

    /// Resolve a revision (`main`, `v1.2`, a sha, `HEAD~2`, `main^{commit}`) to the
    /// commit it names. Unknown revisions are [`ErrorKind::NotFound`]; malformed ones and
    /// revisions naming something other than a commit are [`ErrorKind::InvalidInput`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let me = Identity::new("a", "a@x");
    /// let first = repo.commit(CommitRequest::new("main", "1", me.clone()).put("f", "1")).await?.id;
    /// repo.commit(CommitRequest::new("main", "2", me).put("f", "2")).await?;
    /// assert_eq!(repo.resolve("main~1").await?, first);
    /// assert_eq!(repo.resolve("nope").await.unwrap_err().kind(), idp_core::ErrorKind::NotFound);
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display(), rev = %rev))]
    pub async fn resolve(&self, rev: &str) -> Result<ObjectId> {
        let rev = rev.to_owned();
        self.with_repo("resolve", move |repo, ctx| {
            Ok(resolve_commit(repo, ctx, &rev)?.id().into())
        })
        .await
    }

    /// The id of the root tree at a revision: two revisions with the same tree id have
    /// exactly the same content.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let me = Identity::new("a", "a@x");
    /// repo.commit(CommitRequest::new("main", "1", me.clone()).put("f", "1")).await?;
    /// let before = repo.tree_id("main").await?;
    /// repo.commit(CommitRequest::new("main", "2", me).put("f", "2")).await?;
    /// assert_ne!(repo.tree_id("main").await?, before);
    /// assert_eq!(repo.tree_id("main~1").await?, before);
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display(), rev = %rev))]
    pub async fn tree_id(&self, rev: &str) -> Result<ObjectId> {
        let rev = rev.to_owned();
        self.with_repo("tree-id", move |repo, ctx| {
            Ok(resolve_commit(repo, ctx, &rev)?.tree_id().into())
        })
        .await
    }

    /// The content of the file at `path` in revision `rev`, read from the object
    /// database (no checkout). A missing file is [`ErrorKind::NotFound`]; a directory is
    /// [`ErrorKind::InvalidInput`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let me = Identity::new("a", "a@x");
    /// repo.commit(CommitRequest::new("main", "v1", me.clone()).put("app.yaml", "v: 1")).await?;
    /// repo.commit(CommitRequest::new("main", "v2", me).put("app.yaml", "v: 2")).await?;
    /// assert_eq!(repo.read_file("main", "app.yaml").await?, b"v: 2");
    /// assert_eq!(repo.read_file("main~1", "app.yaml").await?, b"v: 1");
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display(), rev = %rev, path = %path))]
    pub async fn read_file(&self, rev: &str, path: &str) -> Result<Vec<u8>> {
        match self.try_read_file(rev, path).await? {
            Some(bytes) => Ok(bytes),
            None => Err(Error::not_found(format!(
                "git read in {}: no file {path:?} at revision {rev:?}",
                self.path.display()
            ))),
        }
    }

    /// Like [`read_file`](Self::read_file), but a missing file is `Ok(None)`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// # repo.commit(CommitRequest::new("main", "m", Identity::new("a", "a@x")).put("f", "x")).await?;
    /// assert_eq!(repo.try_read_file("main", "missing.yaml").await?, None);
    /// assert_eq!(repo.try_read_file("main", "f").await?, Some(b"x".to_vec()));
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display(), rev = %rev, path = %path))]
    pub async fn try_read_file(&self, rev: &str, path: &str) -> Result<Option<Vec<u8>>> {
        let rev = rev.to_owned();
        let path = path.to_owned();
        self.with_repo("read", move |repo, ctx| {
            path::components(&path, false)?;
            let commit = resolve_commit(repo, ctx, &rev)?;
            let tree = commit.tree().map_err(ctx.git(&rev))?;
            let Some(entry) = entry_at(&tree, &path, ctx)? else {
                return Ok(None);
            };
            match entry.kind() {
                Some(ObjectType::Blob) => {
                    let blob = repo
                        .find_blob(entry.id())
                        .map_err(ctx.git(format_args!("{path} at {rev}")))?;
                    Ok(Some(blob.content().to_vec()))
                }
                _ => Err(ctx.error(
                    ErrorKind::InvalidInput,
                    format_args!("{path} at {rev}"),
                    "this is a directory, not a file; use read_tree or list_dir",
                )),
            }
        })
        .await
    }

    /// Every file at or under `dir` (recursively) in revision `rev`, as repository path
    /// (from the root, e.g. `envs/prod/app.yaml`) → content. `""` reads the whole tree.
    /// A missing directory is [`ErrorKind::NotFound`]; a file path returns that one file.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// repo.commit(
    ///     CommitRequest::new("main", "m", Identity::new("a", "a@x"))
    ///         .put("envs/prod/a.yaml", "a")
    ///         .put("envs/prod/sub/b.yaml", "b")
    ///         .put("envs/dev/c.yaml", "c"),
    /// )
    /// .await?;
    /// let files = repo.read_tree("main", "envs/prod").await?;
    /// assert_eq!(files.keys().collect::<Vec<_>>(), ["envs/prod/a.yaml", "envs/prod/sub/b.yaml"]);
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display(), rev = %rev, dir = %dir))]
    pub async fn read_tree(&self, rev: &str, dir: &str) -> Result<BTreeMap<String, Vec<u8>>> {
        let rev = rev.to_owned();
        let dir = dir.to_owned();
        self.with_repo("read-tree", move |repo, ctx| {
            let parts = path::components(&dir, true)?;
            let commit = resolve_commit(repo, ctx, &rev)?;
            let root = commit.tree().map_err(ctx.git(&rev))?;
            let prefix = parts.join("/");
            let mut out = BTreeMap::new();
            let tree = if parts.is_empty() {
                root
            } else {
                let Some(entry) = entry_at(&root, &prefix, ctx)? else {
                    return Err(ctx.error(
                        ErrorKind::NotFound,
                        format_args!("{prefix} at {rev}"),
                        "no such directory",
                    ));
                };
                if entry.kind() == Some(ObjectType::Blob) {
                    let blob = repo.find_blob(entry.id()).map_err(ctx.git(&prefix))?;
                    out.insert(prefix, blob.content().to_vec());
                    return Ok(out);
                }
                repo.find_tree(entry.id()).map_err(ctx.git(&prefix))?
            };
            let base = if prefix.is_empty() {
                String::new()
            } else {
                format!("{prefix}/")
            };
            let mut failure = None;
            tree.walk(git2::TreeWalkMode::PreOrder, |root, entry| {
                if entry.kind() != Some(ObjectType::Blob) {
                    return git2::TreeWalkResult::Ok;
                }
                let name = String::from_utf8_lossy(entry.name_bytes());
                let full = format!("{base}{root}{name}");
                match repo.find_blob(entry.id()) {
                    Ok(blob) => {
                        out.insert(full, blob.content().to_vec());
                        git2::TreeWalkResult::Ok
                    }
                    Err(e) => {
                        failure = Some(ctx.git_error(&full, e));
                        git2::TreeWalkResult::Abort
                    }
                }
            })
            .map_err(|e| failure.take().unwrap_or_else(|| ctx.git_error(&prefix, e)))?;
            if let Some(e) = failure {
                return Err(e);
            }
            Ok(out)
        })
        .await
    }

    /// The entries directly inside `dir` (`""` for the root) at revision `rev`, sorted by
    /// name. A missing directory is [`ErrorKind::NotFound`]; a file is
    /// [`ErrorKind::InvalidInput`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// repo.commit(
    ///     CommitRequest::new("main", "m", Identity::new("a", "a@x")).put("envs/prod/a.yaml", "a").put("README.md", "hi"),
    /// )
    /// .await?;
    /// let root = repo.list_dir("main", "").await?;
    /// let names: Vec<_> = root.iter().map(|e| (e.name.as_str(), e.kind)).collect();
    /// assert_eq!(names, [("README.md", EntryKind::File), ("envs", EntryKind::Dir)]);
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display(), rev = %rev, dir = %dir))]
    pub async fn list_dir(&self, rev: &str, dir: &str) -> Result<Vec<DirEntry>> {
        let rev = rev.to_owned();
        let dir = dir.to_owned();
        self.with_repo("list-dir", move |repo, ctx| {
            let parts = path::components(&dir, true)?;
            let commit = resolve_commit(repo, ctx, &rev)?;
            let root = commit.tree().map_err(ctx.git(&rev))?;
            let prefix = parts.join("/");
            let tree = if parts.is_empty() {
                root
            } else {
                let what = format!("{prefix} at {rev}");
                match entry_at(&root, &prefix, ctx)? {
                    None => return Err(ctx.error(ErrorKind::NotFound, what, "no such directory")),
                    Some(e) if e.kind() == Some(ObjectType::Tree) => {
                        repo.find_tree(e.id()).map_err(ctx.git(&what))?
                    }
                    Some(_) => {
                        return Err(ctx.error(
                            ErrorKind::InvalidInput,
                            what,
                            "this is a file, not a directory",
                        ));
                    }
                }
            };
            Ok(tree
                .iter()
                .map(|e| {
                    let name = String::from_utf8_lossy(e.name_bytes()).into_owned();
                    DirEntry {
                        path: if prefix.is_empty() {
                            name.clone()
                        } else {
                            format!("{prefix}/{name}")
                        },
                        name,
                        kind: EntryKind::from_mode(e.filemode()),
                        id: e.id().into(),
                    }
                })
                .collect())
        })
        .await
    }

    /// Commits reachable from `rev`, newest first, optionally only those that changed a
    /// path (compared with their first parent) and at most `limit` of them.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let me = Identity::new("a", "a@x");
    /// repo.commit(CommitRequest::new("main", "prod", me.clone()).put("envs/prod/a", "1")).await?;
    /// repo.commit(CommitRequest::new("main", "dev", me).put("envs/dev/a", "1")).await?;
    /// let all = repo.log("main", &LogOptions::default()).await?;
    /// assert_eq!(all.len(), 2);
    /// let prod = repo.log("main", &LogOptions::default().path("envs/prod")).await?;
    /// assert_eq!(prod.len(), 1);
    /// assert_eq!(prod[0].summary, "prod");
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display(), rev = %rev, path = ?options.path, limit = ?options.limit))]
    pub async fn log(&self, rev: &str, options: &LogOptions) -> Result<Vec<LogEntry>> {
        let rev = rev.to_owned();
        let options = options.clone();
        self.with_repo("log", move |repo, ctx| log(repo, ctx, &rev, &options))
            .await
    }

    /// Create branch `name` at revision `rev`. An existing branch is
    /// [`ErrorKind::AlreadyExists`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// # repo.commit(CommitRequest::new("main", "m", Identity::new("a", "a@x")).put("f", "x")).await?;
    /// let id = repo.create_branch("preview/pr-7", "main").await?;
    /// assert_eq!(repo.resolve("preview/pr-7").await?, id);
    /// let again = repo.create_branch("preview/pr-7", "main").await.unwrap_err();
    /// assert_eq!(again.kind(), idp_core::ErrorKind::AlreadyExists);
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display(), branch = %name, rev = %rev))]
    pub async fn create_branch(&self, name: &str, rev: &str) -> Result<ObjectId> {
        let name = name.to_owned();
        let rev = rev.to_owned();
        self.with_repo("create-branch", move |repo, ctx| {
            let refname = branch_ref(&name)?;
            let commit = resolve_commit(repo, ctx, &rev)?;
            // Against the zero id: libgit2 checks it under the ref's lock (a plain
            // create checks for an existing ref before locking, so two callers
            // creating the same branch at once could both succeed). While another
            // writer holds the lock (microseconds), wait for its outcome.
            let log = format!("branch: created from {rev}");
            let mut waits = 0;
            loop {
                match repo.reference_matching(
                    &refname,
                    commit.id(),
                    true,
                    git2::Oid::ZERO_SHA1,
                    &log,
                ) {
                    Ok(_) => return Ok(commit.id().into()),
                    Err(e) if e.code() == git2::ErrorCode::Modified => {
                        return Err(ctx.error(
                            ErrorKind::AlreadyExists,
                            &refname,
                            "the branch already exists; pick another name or delete it first",
                        ));
                    }
                    Err(e) if e.code() == git2::ErrorCode::Locked && waits < 200 => {
                        waits += 1;
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                    Err(e) => return Err(ctx.git_error(&refname, e)),
                }
            }
        })
        .await
    }

    /// Delete branch `name`. A missing branch is [`ErrorKind::NotFound`]; the branch
    /// checked out in a non-bare repository is refused with [`ErrorKind::Conflict`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// # repo.commit(CommitRequest::new("main", "m", Identity::new("a", "a@x")).put("f", "x")).await?;
    /// repo.create_branch("tmp", "main").await?;
    /// repo.delete_branch("tmp").await?;
    /// assert_eq!(repo.delete_branch("tmp").await.unwrap_err().kind(), idp_core::ErrorKind::NotFound);
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display(), branch = %name))]
    pub async fn delete_branch(&self, name: &str) -> Result<()> {
        let name = name.to_owned();
        self.with_repo("delete-branch", move |repo, ctx| {
            let refname = branch_ref(&name)?;
            if !repo.is_bare() && head_branch(repo, ctx)?.is_some_and(|h| branch_ref(&h).ok() == Some(refname.clone())) {
                return Err(ctx.error(
                    ErrorKind::Conflict,
                    &refname,
                    "this branch is checked out (HEAD); check out another branch before deleting it",
                ));
            }
            let mut reference = repo.find_reference(&refname).map_err(ctx.git(&refname))?;
            reference.delete().map_err(ctx.git(&refname))
        })
        .await
    }

    /// All local branches, sorted by name.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// # repo.commit(CommitRequest::new("main", "m", Identity::new("a", "a@x")).put("f", "x")).await?;
    /// repo.create_branch("b", "main").await?;
    /// let names: Vec<_> = repo.list_branches().await?.into_iter().map(|b| b.name).collect();
    /// assert_eq!(names, ["b", "main"]);
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display()))]
    pub async fn list_branches(&self) -> Result<Vec<Branch>> {
        self.with_repo("list-branches", |repo, ctx| {
            let mut out = Vec::new();
            for item in repo
                .branches(Some(BranchType::Local))
                .map_err(ctx.git("branches"))?
            {
                let (branch, _) = item.map_err(ctx.git("branches"))?;
                let reference = branch.get();
                let name = String::from_utf8_lossy(reference.shorthand_bytes()).into_owned();
                let commit = reference.peel_to_commit().map_err(ctx.git(&name))?;
                out.push(Branch {
                    name,
                    commit: commit.id().into(),
                });
            }
            out.sort_by(|a, b| a.name.cmp(&b.name));
            Ok(out)
        })
        .await
    }
}

/// `refs/heads/<name>` for a branch name (a name starting with `refs/` is kept).
pub(crate) fn branch_ref(name: &str) -> Result<String> {
    let full = if name.starts_with("refs/") {
        name.to_owned()
    } else {
        format!("refs/heads/{name}")
    };
    if name.is_empty() || !git2::Reference::is_valid_name(&full) {
        return Err(Error::invalid_input(format!(
            "{name:?} is not a valid Git branch name (no spaces, '..', '~', '^', ':', '?', '*', '[' or trailing '/')"
        )));
    }
    Ok(full)
}

fn head_branch(repo: &Repository, ctx: Ctx<'_>) -> Result<Option<String>> {
    let head = repo.find_reference("HEAD").map_err(ctx.git("HEAD"))?;
    Ok(head
        .symbolic_target()
        .ok()
        .flatten()
        .map(|t| t.strip_prefix("refs/heads/").unwrap_or(t).to_owned()))
}

/// Resolve a revision to a commit with errors that name the revision.
pub(crate) fn resolve_commit<'r>(
    repo: &'r Repository,
    ctx: Ctx<'_>,
    rev: &str,
) -> Result<git2::Commit<'r>> {
    if rev.trim().is_empty() {
        return Err(ctx.error(
            ErrorKind::InvalidInput,
            "revision \"\"",
            "the revision is empty",
        ));
    }
    let what = format!("revision {rev:?}");
    let object = repo.revparse_single(rev).map_err(|e| {
        let kind = error::kind_of(&e);
        let msg = match kind {
            ErrorKind::NotFound => "no such branch, tag or commit".to_owned(),
            ErrorKind::InvalidInput => {
                "not a valid revision (try a branch, tag, sha or HEAD~2)".to_owned()
            }
            _ => e.message().to_owned(),
        };
        ctx.error(kind, &what, msg).with_source(e)
    })?;
    object.peel_to_commit().map_err(|e| {
        ctx.error(ErrorKind::InvalidInput, &what, "does not name a commit")
            .with_source(e)
    })
}

/// The tree entry at `path`, or `None` when nothing is there.
pub(crate) fn entry_at(
    tree: &git2::Tree<'_>,
    path: &str,
    ctx: Ctx<'_>,
) -> Result<Option<git2::TreeEntry<'static>>> {
    if path.is_empty() {
        return Ok(None);
    }
    match tree.get_path(Path::new(path)) {
        Ok(entry) => Ok(Some(entry)),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(ctx.git_error(path, e)),
    }
}

fn log(repo: &Repository, ctx: Ctx<'_>, rev: &str, options: &LogOptions) -> Result<Vec<LogEntry>> {
    let filter = match &options.path {
        Some(p) => {
            let parts = path::components(p, true)?;
            if parts.is_empty() {
                None
            } else {
                Some(parts.join("/"))
            }
        }
        None => None,
    };
    let start = resolve_commit(repo, ctx, rev)?;
    let mut walk = repo.revwalk().map_err(ctx.git(rev))?;
    walk.set_sorting(git2::Sort::TOPOLOGICAL | git2::Sort::TIME)
        .map_err(ctx.git(rev))?;
    walk.push(start.id()).map_err(ctx.git(rev))?;
    let limit = options.limit.unwrap_or(usize::MAX);
    let mut out = Vec::new();
    for oid in walk {
        if out.len() >= limit {
            break;
        }
        let oid = oid.map_err(ctx.git(rev))?;
        let commit = repo.find_commit(oid).map_err(ctx.git(oid))?;
        if let Some(path) = &filter {
            let tree = commit.tree().map_err(ctx.git(oid))?;
            let here = entry_at(&tree, path, ctx)?.map(|e| e.id());
            let before = match commit.parents().next() {
                Some(parent) => {
                    let tree = parent.tree().map_err(ctx.git(parent.id()))?;
                    entry_at(&tree, path, ctx)?.map(|e| e.id())
                }
                None => None,
            };
            if here == before {
                continue;
            }
        }
        out.push(log_entry(&commit));
    }
    Ok(out)
}

pub(crate) fn identity_of(sig: &git2::Signature<'_>) -> Identity {
    Identity::new(
        String::from_utf8_lossy(sig.name_bytes()),
        String::from_utf8_lossy(sig.email_bytes()),
    )
}

fn log_entry(commit: &git2::Commit<'_>) -> LogEntry {
    let message = String::from_utf8_lossy(commit.message_bytes()).into_owned();
    let summary = message.lines().next().unwrap_or_default().trim().to_owned();
    let time = jiff::Timestamp::from_second(commit.time().seconds()).unwrap_or_default();
    LogEntry {
        id: commit.id().into(),
        tree: commit.tree_id().into(),
        parents: commit.parent_ids().map(ObjectId::from).collect(),
        summary,
        trailers: parse_trailers(&message),
        message,
        author: identity_of(&commit.author()),
        committer: identity_of(&commit.committer()),
        time,
    }
}
