//! Compare-and-swap commits and reverts built in the object database.

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::time::Duration;

use git2::{ObjectType, Oid, Repository};
use rand::Rng;
use tracing::instrument;

use super::error::Ctx;
use super::{GitRepo, ObjectId, branch_ref, path, resolve_commit};
use crate::{Error, ErrorKind, Result};

/// A person or bot that authors or commits a change.
///
/// ```
/// let bot = idp_core::git::Identity::new("idp deployer", "deployer@example.com");
/// assert_eq!(bot.to_string(), "idp deployer <deployer@example.com>");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: String,
}

impl Identity {
    /// An identity from a name and an e-mail address.
    ///
    /// ```
    /// let me = idp_core::git::Identity::new("Ann", "ann@example.com");
    /// assert_eq!(me.email, "ann@example.com");
    /// ```
    pub fn new(name: impl Into<String>, email: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            email: email.into(),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} <{}>", self.name, self.email)
    }
}

/// One change to a tree, applied in order by [`CommitRequest`]s.
///
/// - `Put` writes a file (creating directories; a file in the way of a directory is
///   replaced; an existing executable bit is kept).
/// - `Delete` removes a file; deleting a missing file is a no-op (so a re-applied change
///   stays correct when another writer deleted it first); a directory is refused.
/// - `DeleteTree` removes a file or a whole directory; missing is a no-op.
///
/// Directories left empty disappear (Git cannot store them).
///
/// ```
/// use idp_core::git::Change;
/// let c = Change::put("envs/prod/app.yaml", "replicas: 2\n");
/// assert_eq!(c.path(), "envs/prod/app.yaml");
/// assert_eq!(Change::delete_tree("envs/pr-7").path(), "envs/pr-7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Write `bytes` at `path`.
    Put {
        /// Repository path from the root (`envs/prod/app.yaml`).
        path: String,
        /// The new content.
        bytes: Vec<u8>,
    },
    /// Remove the file at `path`.
    Delete {
        /// Repository path from the root.
        path: String,
    },
    /// Remove the file or directory at `path`, recursively.
    DeleteTree {
        /// Repository path from the root.
        path: String,
    },
}

impl Change {
    /// A [`Change::Put`].
    ///
    /// ```
    /// let c = idp_core::git::Change::put("a.txt", "hello");
    /// # let _ = c;
    /// ```
    pub fn put(path: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        Self::Put {
            path: path.into(),
            bytes: bytes.into(),
        }
    }

    /// A [`Change::Delete`].
    ///
    /// ```
    /// let c = idp_core::git::Change::delete("a.txt");
    /// # let _ = c;
    /// ```
    pub fn delete(path: impl Into<String>) -> Self {
        Self::Delete { path: path.into() }
    }

    /// A [`Change::DeleteTree`].
    ///
    /// ```
    /// let c = idp_core::git::Change::delete_tree("envs/pr-7");
    /// # let _ = c;
    /// ```
    pub fn delete_tree(path: impl Into<String>) -> Self {
        Self::DeleteTree { path: path.into() }
    }

    /// The path the change touches.
    ///
    /// ```
    /// assert_eq!(idp_core::git::Change::delete("x/y").path(), "x/y");
    /// ```
    pub fn path(&self) -> &str {
        match self {
            Self::Put { path, .. } | Self::Delete { path } | Self::DeleteTree { path } => path,
        }
    }
}

/// Which commit a write must be built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    /// Whatever the branch points at when the write starts.
    Current,
    /// The branch must not exist yet.
    Unborn,
    /// The branch must point at this commit.
    Commit(Oid),
}

/// Who, when, what message: shared by commits and reverts.
#[derive(Debug, Clone)]
struct Meta {
    author: Identity,
    committer: Option<Identity>,
    time: Option<jiff::Timestamp>,
    trailers: Vec<(String, String)>,
    allow_empty: bool,
}

impl Meta {
    fn new(author: Identity) -> Self {
        Self {
            author,
            committer: None,
            time: None,
            trailers: Vec::new(),
            allow_empty: false,
        }
    }

    fn signatures(&self) -> Result<(git2::Signature<'static>, git2::Signature<'static>)> {
        let time = self.time.unwrap_or_else(jiff::Timestamp::now);
        let when = git2::Time::new(time.as_second(), 0);
        let sig = |who: &Identity, role: &str| {
            git2::Signature::new(&who.name, &who.email, &when).map_err(|e| {
                Error::invalid_input(format!(
                    "invalid commit {role} {who}: {}; give a non-empty name and e-mail without '<', '>' or newlines",
                    e.message()
                ))
                .with_source(e)
            })
        };
        let author = sig(&self.author, "author")?;
        let committer = sig(self.committer.as_ref().unwrap_or(&self.author), "committer")?;
        Ok((author, committer))
    }

    /// `message`, then a blank line and the trailers.
    fn full_message(&self, message: &str) -> Result<String> {
        let body = message.trim_end();
        if body.trim().is_empty() {
            return Err(Error::invalid_input(
                "the commit message is empty; say what changed",
            ));
        }
        let mut out = body.to_owned();
        out.push('\n');
        if !self.trailers.is_empty() {
            out.push('\n');
            for (key, value) in &self.trailers {
                if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(Error::invalid_input(format!(
                        "invalid trailer key {key:?}: use letters, digits and '-' (like \"Release-Id\")"
                    )));
                }
                let value = value.trim();
                if value.is_empty() || value.contains(['\n', '\r']) {
                    return Err(Error::invalid_input(format!(
                        "invalid value {value:?} for trailer {key:?}: it must be one non-empty line"
                    )));
                }
                let _ = writeln!(out, "{key}: {value}");
            }
        }
        Ok(out)
    }
}

/// A commit to make with [`GitRepo::commit`] or [`GitRepo::commit_with_retry`]: a branch,
/// a message (plus `Key: value` trailers), an author and a list of [`Change`]s.
///
/// **No-op commits**: when the changes leave the parent's tree exactly as it was, no
/// commit is made and the outcome has `created == false` (the branch is untouched),
/// unless [`allow_empty`](Self::allow_empty) is set. The first commit of a branch is
/// always made.
///
/// ```
/// use idp_core::git::{CommitRequest, Identity};
/// let req = CommitRequest::new("main", "deploy cart 1.2.0", Identity::new("bot", "bot@x"))
///     .put("envs/prod/cart.yaml", "image: cart:1.2.0\n")
///     .delete("envs/prod/old.yaml")
///     .trailer("Release-Id", "r-17")
///     .time("2025-01-02T03:04:05Z".parse().unwrap());
/// assert_eq!(req.changes().len(), 2);
/// ```
#[derive(Debug, Clone)]
pub struct CommitRequest {
    branch: String,
    message: String,
    changes: Vec<Change>,
    expected: Expected,
    meta: Meta,
    update_worktree: bool,
}

impl CommitRequest {
    /// A commit on `branch` with `message`, authored (and committed) by `author`.
    ///
    /// ```
    /// let req = idp_core::git::CommitRequest::new("main", "msg", idp_core::git::Identity::new("a", "a@x"));
    /// assert_eq!(req.branch(), "main");
    /// ```
    pub fn new(branch: impl Into<String>, message: impl Into<String>, author: Identity) -> Self {
        Self {
            branch: branch.into(),
            message: message.into(),
            changes: Vec::new(),
            expected: Expected::Current,
            meta: Meta::new(author),
            update_worktree: false,
        }
    }

    /// Add a change.
    ///
    /// ```
    /// use idp_core::git::{Change, CommitRequest, Identity};
    /// let req = CommitRequest::new("main", "m", Identity::new("a", "a@x")).change(Change::delete("x"));
    /// assert_eq!(req.changes(), [Change::delete("x")]);
    /// ```
    pub fn change(mut self, change: Change) -> Self {
        self.changes.push(change);
        self
    }

    /// Add many changes.
    ///
    /// ```
    /// use idp_core::git::{Change, CommitRequest, Identity};
    /// let req = CommitRequest::new("main", "m", Identity::new("a", "a@x"))
    ///     .changes_from([Change::put("a", "1"), Change::put("b", "2")]);
    /// assert_eq!(req.changes().len(), 2);
    /// ```
    pub fn changes_from(mut self, changes: impl IntoIterator<Item = Change>) -> Self {
        self.changes.extend(changes);
        self
    }

    /// Add a [`Change::Put`].
    ///
    /// ```
    /// let req = idp_core::git::CommitRequest::new("main", "m", idp_core::git::Identity::new("a", "a@x")).put("f", "x");
    /// assert_eq!(req.changes().len(), 1);
    /// ```
    pub fn put(self, path: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Self {
        self.change(Change::put(path, bytes))
    }

    /// Add a [`Change::Delete`].
    ///
    /// ```
    /// let req = idp_core::git::CommitRequest::new("main", "m", idp_core::git::Identity::new("a", "a@x")).delete("f");
    /// assert_eq!(req.changes().len(), 1);
    /// ```
    pub fn delete(self, path: impl Into<String>) -> Self {
        self.change(Change::delete(path))
    }

    /// Add a [`Change::DeleteTree`].
    ///
    /// ```
    /// let req = idp_core::git::CommitRequest::new("main", "m", idp_core::git::Identity::new("a", "a@x")).delete_tree("d");
    /// assert_eq!(req.changes().len(), 1);
    /// ```
    pub fn delete_tree(self, path: impl Into<String>) -> Self {
        self.change(Change::delete_tree(path))
    }

    /// Append a `Key: value` trailer (e.g. `Release-Id`, `Component`, `Environment`)
    /// after a blank line at the end of the message. Keys are letters, digits and `-`;
    /// values one line.
    ///
    /// ```
    /// let req = idp_core::git::CommitRequest::new("main", "m", idp_core::git::Identity::new("a", "a@x"))
    ///     .trailer("Environment", "prod");
    /// # let _ = req;
    /// ```
    pub fn trailer(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.meta.trailers.push((key.into(), value.into()));
        self
    }

    /// A committer different from the author.
    ///
    /// ```
    /// use idp_core::git::{CommitRequest, Identity};
    /// let req = CommitRequest::new("main", "m", Identity::new("Ann", "ann@x")).committer(Identity::new("bot", "bot@x"));
    /// # let _ = req;
    /// ```
    pub fn committer(mut self, committer: Identity) -> Self {
        self.meta.committer = Some(committer);
        self
    }

    /// The author and committer time (UTC); the current time when not given. Useful for
    /// deterministic commit ids in tests.
    ///
    /// ```
    /// let req = idp_core::git::CommitRequest::new("main", "m", idp_core::git::Identity::new("a", "a@x"))
    ///     .time(jiff::Timestamp::UNIX_EPOCH);
    /// # let _ = req;
    /// ```
    pub fn time(mut self, time: jiff::Timestamp) -> Self {
        self.meta.time = Some(time);
        self
    }

    /// Make a commit even when the tree does not change.
    ///
    /// ```
    /// let req = idp_core::git::CommitRequest::new("main", "marker", idp_core::git::Identity::new("a", "a@x"))
    ///     .allow_empty(true);
    /// # let _ = req;
    /// ```
    pub fn allow_empty(mut self, allow: bool) -> Self {
        self.meta.allow_empty = allow;
        self
    }

    /// Build on exactly this parent: [`GitRepo::commit`] fails with
    /// [`ErrorKind::Conflict`] unless the branch still points at it. (The retrying
    /// helpers ignore this and build on the fresh tip each attempt.)
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let me = Identity::new("a", "a@x");
    /// let first = repo.commit(CommitRequest::new("main", "1", me.clone()).put("f", "1")).await?.id;
    /// repo.commit(CommitRequest::new("main", "2", me.clone()).put("f", "2")).await?;
    /// let stale = CommitRequest::new("main", "3", me).put("f", "3").parent(first);
    /// assert_eq!(repo.commit(stale).await.unwrap_err().kind(), idp_core::ErrorKind::Conflict);
    /// # Ok(()) }
    /// ```
    pub fn parent(mut self, parent: ObjectId) -> Self {
        self.expected = Expected::Commit(parent.raw());
        self
    }

    /// Require the branch not to exist yet (the commit will be its first).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let me = Identity::new("a", "a@x");
    /// repo.commit(CommitRequest::new("main", "1", me.clone()).put("f", "1").unborn()).await?;
    /// let again = repo.commit(CommitRequest::new("main", "1", me).put("f", "1").unborn()).await;
    /// assert_eq!(again.unwrap_err().kind(), idp_core::ErrorKind::Conflict);
    /// # Ok(()) }
    /// ```
    pub fn unborn(mut self) -> Self {
        self.expected = Expected::Unborn;
        self
    }

    /// After the branch moved, bring the working tree and index along when the
    /// repository has one with this branch checked out (off by default: writes touch
    /// only refs and objects). Only the paths this commit changed are written or
    /// removed, only their index entries replaced, and the index is written once; when
    /// a changed path has local changes (a file edited or deleted by hand, an untracked
    /// file where a new one goes, another version staged) nothing is touched. Other
    /// files, tracked or not, are never read or written. The outcome says what happened
    /// in [`CommitOutcome::worktree`]; a working tree that could not be updated never
    /// fails the commit.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// use idp_core::git::{CommitRequest, GitRepo, Identity, InitOptions, WorktreeUpdate};
    /// let dir = tempfile::tempdir()?;
    /// let repo = GitRepo::init(dir.path(), InitOptions::with_worktree("main")).await?;
    /// let req = CommitRequest::new("main", "add app", Identity::new("a", "a@x"))
    ///     .put("envs/prod/app.yaml", "replicas: 2\n")
    ///     .update_worktree(true);
    /// let out = repo.commit(req).await?;
    /// assert_eq!(out.worktree, Some(WorktreeUpdate::Updated { files: 1 }));
    /// assert_eq!(std::fs::read(dir.path().join("envs/prod/app.yaml"))?, b"replicas: 2\n");
    /// # Ok(()) }
    /// ```
    pub fn update_worktree(mut self, update: bool) -> Self {
        self.update_worktree = update;
        self
    }

    /// Whether [`update_worktree`](Self::update_worktree) was asked for.
    ///
    /// ```
    /// let req = idp_core::git::CommitRequest::new("main", "m", idp_core::git::Identity::new("a", "a@x"));
    /// assert!(!req.updates_worktree());
    /// ```
    pub fn updates_worktree(&self) -> bool {
        self.update_worktree
    }

    /// The message with the trailers appended.
    pub(crate) fn full_message(&self) -> Result<String> {
        self.meta.full_message(&self.message)
    }

    /// The target branch.
    ///
    /// ```
    /// let req = idp_core::git::CommitRequest::new("gitops", "m", idp_core::git::Identity::new("a", "a@x"));
    /// assert_eq!(req.branch(), "gitops");
    /// ```
    pub fn branch(&self) -> &str {
        &self.branch
    }

    /// The changes, in order.
    ///
    /// ```
    /// let req = idp_core::git::CommitRequest::new("main", "m", idp_core::git::Identity::new("a", "a@x"));
    /// assert!(req.changes().is_empty());
    /// ```
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }
}

/// A revert to make with [`GitRepo::revert`] or [`GitRepo::revert_with_retry`]: a new
/// commit on `branch` whose tree is the branch tip's tree with the changes of `commit`
/// undone (merge commits are reverted relative to their first parent).
///
/// ```
/// use idp_core::git::{Identity, RevertRequest};
/// let req = RevertRequest::new("main", "HEAD~1", Identity::new("bot", "bot@x")).trailer("Release-Id", "r-3");
/// # let _ = req;
/// ```
#[derive(Debug, Clone)]
pub struct RevertRequest {
    branch: String,
    commit: String,
    message: Option<String>,
    meta: Meta,
}

impl RevertRequest {
    /// Revert `commit` (any revision) on `branch`, as `author`.
    ///
    /// ```
    /// let req = idp_core::git::RevertRequest::new("main", "main", idp_core::git::Identity::new("a", "a@x"));
    /// # let _ = req;
    /// ```
    pub fn new(branch: impl Into<String>, commit: impl Into<String>, author: Identity) -> Self {
        Self {
            branch: branch.into(),
            commit: commit.into(),
            message: None,
            meta: Meta::new(author),
        }
    }

    /// The message; by default `Revert "<summary>"` and `This reverts commit <id>.`
    ///
    /// ```
    /// let req = idp_core::git::RevertRequest::new("main", "main", idp_core::git::Identity::new("a", "a@x"))
    ///     .message("rollback cart");
    /// # let _ = req;
    /// ```
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Append a `Key: value` trailer (see [`CommitRequest::trailer`]).
    ///
    /// ```
    /// let req = idp_core::git::RevertRequest::new("main", "main", idp_core::git::Identity::new("a", "a@x"))
    ///     .trailer("Environment", "prod");
    /// # let _ = req;
    /// ```
    pub fn trailer(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.meta.trailers.push((key.into(), value.into()));
        self
    }

    /// A committer different from the author.
    ///
    /// ```
    /// use idp_core::git::{Identity, RevertRequest};
    /// let req = RevertRequest::new("main", "main", Identity::new("a", "a@x")).committer(Identity::new("b", "b@x"));
    /// # let _ = req;
    /// ```
    pub fn committer(mut self, committer: Identity) -> Self {
        self.meta.committer = Some(committer);
        self
    }

    /// The commit time (see [`CommitRequest::time`]).
    ///
    /// ```
    /// let req = idp_core::git::RevertRequest::new("main", "main", idp_core::git::Identity::new("a", "a@x"))
    ///     .time(jiff::Timestamp::UNIX_EPOCH);
    /// # let _ = req;
    /// ```
    pub fn time(mut self, time: jiff::Timestamp) -> Self {
        self.meta.time = Some(time);
        self
    }

    /// Make the commit even if the revert changes nothing (the change was undone
    /// already); by default nothing is committed then.
    ///
    /// ```
    /// let req = idp_core::git::RevertRequest::new("main", "main", idp_core::git::Identity::new("a", "a@x"))
    ///     .allow_empty(true);
    /// # let _ = req;
    /// ```
    pub fn allow_empty(mut self, allow: bool) -> Self {
        self.meta.allow_empty = allow;
        self
    }
}

/// What a commit or revert did.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
/// # use idp_core::git::*;
/// # let dir = tempfile::tempdir()?;
/// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
/// let me = Identity::new("a", "a@x");
/// let first = repo.commit(CommitRequest::new("main", "1", me.clone()).put("f", "1")).await?;
/// assert!(first.created && first.parent.is_none());
/// // Writing the same content again is a no-op: nothing is committed.
/// let same = repo.commit(CommitRequest::new("main", "again", me).put("f", "1")).await?;
/// assert!(!same.created);
/// assert_eq!(same.id, first.id);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CommitOutcome {
    /// The branch tip after the operation: the new commit, or the unchanged tip when
    /// nothing was committed.
    pub id: ObjectId,
    /// The commit the new one was built on (`None` for a branch's first commit).
    pub parent: Option<ObjectId>,
    /// The tree of [`id`](Self::id).
    pub tree: ObjectId,
    /// Whether a commit was made (false for a no-op).
    pub created: bool,
    /// How many attempts it took (1 without contention).
    pub attempts: u32,
    /// What happened to the working tree and index, when the request asked for
    /// [`CommitRequest::update_worktree`] and the branch moved; `None` otherwise.
    pub worktree: Option<super::WorktreeUpdate>,
}

impl CommitOutcome {
    pub(crate) fn new(
        id: ObjectId,
        parent: Option<ObjectId>,
        tree: ObjectId,
        created: bool,
    ) -> Self {
        Self {
            id,
            parent,
            tree,
            created,
            attempts: 1,
            worktree: None,
        }
    }
}

/// Bounded retries with exponential backoff and full jitter, for the retrying helpers.
///
/// Attempt `n` (from 1) that loses a race waits a random time in
/// `[0, min(max_delay, base_delay * 2^(n-1))]` before attempt `n + 1`.
///
/// ```
/// use std::time::Duration;
/// let policy = idp_core::git::RetryPolicy::new(20, Duration::from_millis(5), Duration::from_millis(200));
/// assert_eq!(policy.max_attempts(), 20);
/// assert_eq!(idp_core::git::RetryPolicy::default().max_attempts(), 16);
/// assert_eq!(idp_core::git::RetryPolicy::no_retry().max_attempts(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    max_attempts: u32,
    base_delay: Duration,
    max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 16 attempts, 10 ms base delay, 1 s cap.
    fn default() -> Self {
        Self::new(16, Duration::from_millis(10), Duration::from_secs(1))
    }
}

impl RetryPolicy {
    /// At most `max_attempts` attempts (at least 1).
    ///
    /// ```
    /// let p = idp_core::git::RetryPolicy::new(0, std::time::Duration::ZERO, std::time::Duration::ZERO);
    /// assert_eq!(p.max_attempts(), 1);
    /// ```
    pub fn new(max_attempts: u32, base_delay: Duration, max_delay: Duration) -> Self {
        Self {
            max_attempts: max_attempts.max(1),
            base_delay,
            max_delay,
        }
    }

    /// One attempt, no retry.
    ///
    /// ```
    /// assert_eq!(idp_core::git::RetryPolicy::no_retry().max_attempts(), 1);
    /// ```
    pub fn no_retry() -> Self {
        Self::new(1, Duration::ZERO, Duration::ZERO)
    }

    /// The attempt budget.
    ///
    /// ```
    /// assert!(idp_core::git::RetryPolicy::default().max_attempts() > 1);
    /// ```
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// A jittered delay after failed attempt `attempt` (from 1).
    pub(crate) fn delay(&self, attempt: u32) -> Duration {
        let exp = self
            .base_delay
            .saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
        let cap = exp.min(self.max_delay);
        let nanos = u64::try_from(cap.as_nanos()).unwrap_or(u64::MAX);
        if nanos == 0 {
            return Duration::ZERO;
        }
        Duration::from_nanos(rand::rng().random_range(0..=nanos))
    }
}

/// The result of one attempt: done, or lost a race (retry on fresh state).
pub(crate) enum Step<T> {
    Done(T),
    Moved(Error),
}

/// Run `attempt` until it is done, fails for real, or the policy is exhausted.
pub(crate) async fn retry_loop<T, F, Fut>(
    policy: &RetryPolicy,
    what: &str,
    mut attempt: F,
) -> Result<T>
where
    F: FnMut(u32) -> Fut,
    Fut: Future<Output = Result<Step<T>>>,
{
    let mut n = 1;
    loop {
        match attempt(n).await? {
            Step::Done(value) => return Ok(value),
            Step::Moved(err) => {
                if n >= policy.max_attempts {
                    return Err(err.context(format!(
                        "{what}: gave up after {n} attempts because other writers kept moving the branch"
                    )));
                }
                let delay = policy.delay(n);
                tracing::debug!(attempt = n, ?delay, "lost a race on the branch, retrying");
                tokio::time::sleep(delay).await;
                n += 1;
            }
        }
    }
}

impl GitRepo {
    /// Make one commit on `req.branch`, atomically: the new tree is built from the
    /// parent's tree in the object database, the commit is written, and the branch is
    /// moved **only if it still points at that parent** (compare-and-swap). If another
    /// writer moved it in between, nothing changes and the error is
    /// [`ErrorKind::Conflict`]; use [`commit_with_retry`](Self::commit_with_retry) to
    /// re-apply the change on the new tip instead. Invalid paths, messages, identities or
    /// trailers are [`ErrorKind::InvalidInput`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// use idp_core::git::{CommitRequest, GitRepo, Identity, InitOptions};
    /// let dir = tempfile::tempdir()?;
    /// let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let me = Identity::new("Ann", "ann@example.com");
    /// let out = repo.commit(CommitRequest::new("main", "add app", me.clone()).put("app.yaml", "a: 1")).await?;
    /// assert!(out.created);
    /// let bad = repo.commit(CommitRequest::new("main", "escape", me).put("../x", "no")).await;
    /// assert_eq!(bad.unwrap_err().kind(), idp_core::ErrorKind::InvalidInput);
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display(), branch = %req.branch, changes = req.changes.len()))]
    pub async fn commit(&self, req: CommitRequest) -> Result<CommitOutcome> {
        self.with_repo("commit", move |repo, ctx| {
            match commit_once(repo, ctx, &req, req.expected)? {
                Step::Done(out) => Ok(out),
                Step::Moved(err) => Err(err),
            }
        })
        .await
    }

    /// Like [`commit`](Self::commit), but when another writer moved the branch first,
    /// re-read the tip, re-apply the same changes on top of it (a rebase of this change)
    /// and try again, up to `policy`'s attempt budget, with jittered backoff. Any
    /// [`CommitRequest::parent`] / [`CommitRequest::unborn`] expectation is ignored.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// use idp_core::git::{CommitRequest, GitRepo, Identity, InitOptions, RetryPolicy};
    /// let dir = tempfile::tempdir()?;
    /// let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let tasks: Vec<_> = (0..4)
    ///     .map(|i| {
    ///         let repo = repo.clone();
    ///         tokio::spawn(async move {
    ///             let req = CommitRequest::new("main", format!("add {i}"), Identity::new("bot", "bot@x"))
    ///                 .put(format!("f{i}.txt"), "x");
    ///             repo.commit_with_retry(req, &RetryPolicy::default()).await
    ///         })
    ///     })
    ///     .collect();
    /// for t in tasks {
    ///     t.await.unwrap()?;
    /// }
    /// assert_eq!(repo.read_tree("main", "").await?.len(), 4);
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display(), branch = %req.branch, changes = req.changes.len()))]
    pub async fn commit_with_retry(
        &self,
        req: CommitRequest,
        policy: &RetryPolicy,
    ) -> Result<CommitOutcome> {
        let req = std::sync::Arc::new(req);
        retry_loop(policy, "commit", |attempt| {
            let req = req.clone();
            self.with_repo("commit", move |repo, ctx| {
                Ok(match commit_once(repo, ctx, &req, Expected::Current)? {
                    Step::Done(out) => Step::Done(CommitOutcome {
                        attempts: attempt,
                        ..out
                    }),
                    moved @ Step::Moved(_) => moved,
                })
            })
        })
        .await
    }

    /// Revert a commit onto a branch with compare-and-swap (see
    /// [`commit`](Self::commit)). If the revert does not apply cleanly to the branch tip
    /// the error is [`ErrorKind::Conflict`] naming the conflicting paths (retrying will
    /// not help; a person must resolve it). Reverting a root commit is
    /// [`ErrorKind::InvalidInput`]. A revert that changes nothing is skipped unless
    /// [`RevertRequest::allow_empty`] is set.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// use idp_core::git::{CommitRequest, GitRepo, Identity, InitOptions, RevertRequest};
    /// let dir = tempfile::tempdir()?;
    /// let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let me = Identity::new("a", "a@x");
    /// repo.commit(CommitRequest::new("main", "v1", me.clone()).put("app.yaml", "v: 1")).await?;
    /// let good = repo.tree_id("main").await?;
    /// repo.commit(CommitRequest::new("main", "v2", me.clone()).put("app.yaml", "v: 2")).await?;
    /// let out = repo.revert(RevertRequest::new("main", "main", me)).await?;
    /// assert_eq!(out.tree, good);
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display(), branch = %req.branch, commit = %req.commit))]
    pub async fn revert(&self, req: RevertRequest) -> Result<CommitOutcome> {
        self.with_repo("revert", move |repo, ctx| {
            match revert_once(repo, ctx, &req)? {
                Step::Done(out) => Ok(out),
                Step::Moved(err) => Err(err),
            }
        })
        .await
    }

    /// [`revert`](Self::revert), retried on the fresh tip when another writer moved the
    /// branch first (content conflicts are not retried).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let me = Identity::new("a", "a@x");
    /// repo.commit(CommitRequest::new("main", "base", me.clone()).put("a", "1")).await?;
    /// let bad = repo.commit(CommitRequest::new("main", "bad", me.clone()).put("b", "oops")).await?.id;
    /// repo.commit(CommitRequest::new("main", "later", me.clone()).put("c", "3")).await?;
    /// repo.revert_with_retry(RevertRequest::new("main", bad.to_hex(), me), &RetryPolicy::default()).await?;
    /// assert_eq!(repo.try_read_file("main", "b").await?, None);
    /// assert_eq!(repo.read_file("main", "c").await?, b"3");
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display(), branch = %req.branch, commit = %req.commit))]
    pub async fn revert_with_retry(
        &self,
        req: RevertRequest,
        policy: &RetryPolicy,
    ) -> Result<CommitOutcome> {
        let req = std::sync::Arc::new(req);
        retry_loop(policy, "revert", |attempt| {
            let req = req.clone();
            self.with_repo("revert", move |repo, ctx| {
                Ok(match revert_once(repo, ctx, &req)? {
                    Step::Done(out) => Step::Done(CommitOutcome {
                        attempts: attempt,
                        ..out
                    }),
                    moved @ Step::Moved(_) => moved,
                })
            })
        })
        .await
    }
}

/// The commit a ref points at, `None` when the ref does not exist.
pub(crate) fn ref_commit<'r>(
    repo: &'r Repository,
    ctx: Ctx<'_>,
    refname: &str,
) -> Result<Option<git2::Commit<'r>>> {
    match repo.find_reference(refname) {
        Ok(r) => r.peel_to_commit().map(Some).map_err(ctx.git(refname)),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(None),
        Err(e) => Err(ctx.git_error(refname, e)),
    }
}

fn short(oid: Option<Oid>) -> String {
    oid.map_or_else(|| "(no commit)".to_owned(), |o| ObjectId::from(o).short(10))
}

/// The error for a branch that moved under us.
fn moved(ctx: Ctx<'_>, refname: &str, expected: Option<Oid>, actual: Option<Oid>) -> Error {
    ctx.error(
        ErrorKind::Conflict,
        refname,
        format!(
            "the branch moved: expected {}, found {}; another writer committed first, re-read the branch and retry",
            short(expected),
            short(actual)
        ),
    )
}

/// Move `refname` from `expected` (None: must not exist) to `new`, atomically.
pub(crate) fn update_ref_cas(
    repo: &Repository,
    ctx: Ctx<'_>,
    refname: &str,
    new: Oid,
    expected: Option<Oid>,
    log_message: &str,
) -> Result<Step<()>> {
    // "Absent" is the zero id: libgit2 checks the old value under the ref's lock, while a
    // plain create (`force = false`) checks for an existing ref before taking the lock,
    // so two writers creating the branch at once could both succeed, the second
    // silently replacing the first's commit.
    let old = expected.unwrap_or(Oid::ZERO_SHA1);
    let result = repo.reference_matching(refname, new, true, old, log_message);
    match result {
        Ok(_) => Ok(Step::Done(())),
        Err(e)
            if matches!(
                e.code(),
                git2::ErrorCode::Modified
                    | git2::ErrorCode::Locked
                    | git2::ErrorCode::Exists
                    | git2::ErrorCode::NotFound
            ) =>
        {
            let actual = repo.refname_to_id(refname).ok();
            Ok(Step::Moved(
                moved(ctx, refname, expected, actual).with_source(e),
            ))
        }
        Err(e) => Err(ctx.git_error(refname, e)),
    }
}

/// Build the new tree from `base` and the changes, write the commit (not moving any
/// ref). Returns `None` for a no-op.
pub(crate) fn write_commit(
    repo: &Repository,
    ctx: Ctx<'_>,
    base: Option<&git2::Commit<'_>>,
    changes: &[Change],
    message: &str,
    meta_source: &CommitRequest,
) -> Result<Option<(Oid, Oid)>> {
    let base_tree = match base {
        Some(c) => Some(c.tree().map_err(ctx.git(c.id()))?),
        None => None,
    };
    let tree_id = apply_changes(repo, ctx, base_tree.as_ref(), changes)?;
    if let Some(parent) = base
        && parent.tree_id() == tree_id
        && !meta_source.meta.allow_empty
    {
        return Ok(None);
    }
    let tree = repo.find_tree(tree_id).map_err(ctx.git("new tree"))?;
    let (author, committer) = meta_source.meta.signatures()?;
    let parents: Vec<&git2::Commit<'_>> = base.into_iter().collect();
    let oid = repo
        .commit(None, &author, &committer, message, &tree, &parents)
        .map_err(ctx.git("write commit"))?;
    Ok(Some((oid, tree_id)))
}

fn commit_once(
    repo: &Repository,
    ctx: Ctx<'_>,
    req: &CommitRequest,
    expected: Expected,
) -> Result<Step<CommitOutcome>> {
    let refname = branch_ref(&req.branch)?;
    let message = req.meta.full_message(&req.message)?;
    let current = ref_commit(repo, ctx, &refname)?;
    let current_id = current.as_ref().map(git2::Commit::id);
    let base = match expected {
        Expected::Current => current,
        Expected::Unborn => {
            if current.is_some() {
                return Ok(Step::Moved(moved(ctx, &refname, None, current_id)));
            }
            None
        }
        Expected::Commit(id) => {
            if current_id != Some(id) {
                return Ok(Step::Moved(moved(ctx, &refname, Some(id), current_id)));
            }
            current
        }
    };
    let written = write_commit(repo, ctx, base.as_ref(), &req.changes, &message, req)?;
    let (oid, tree) = match (written, &base) {
        (Some(w), _) => w,
        // A no-op needs a parent, so `base` is set here.
        (None, None) => {
            return Err(ctx.error(
                ErrorKind::Internal,
                &refname,
                "no-op commit without a parent",
            ));
        }
        (None, Some(b)) => {
            return Ok(Step::Done(CommitOutcome::new(
                b.id().into(),
                b.parent_ids().next().map(ObjectId::from),
                b.tree_id().into(),
                false,
            )));
        }
    };
    let summary = message.lines().next().unwrap_or_default();
    let log = format!("commit: {summary}");
    Ok(
        match update_ref_cas(repo, ctx, &refname, oid, current_id, &log)? {
            Step::Done(()) => {
                tracing::debug!(commit = %oid, "branch moved to new commit");
                let worktree = req.update_worktree.then(|| {
                    let old_tree = base.as_ref().map(git2::Commit::tree_id);
                    super::worktree::update(repo, ctx, &refname, old_tree, tree)
                });
                Step::Done(CommitOutcome {
                    id: oid.into(),
                    parent: current_id.map(ObjectId::from),
                    tree: tree.into(),
                    created: true,
                    attempts: 1,
                    worktree,
                })
            }
            Step::Moved(e) => Step::Moved(e),
        },
    )
}

fn revert_once(
    repo: &Repository,
    ctx: Ctx<'_>,
    req: &RevertRequest,
) -> Result<Step<CommitOutcome>> {
    let refname = branch_ref(&req.branch)?;
    let Some(tip) = ref_commit(repo, ctx, &refname)? else {
        return Err(ctx.error(ErrorKind::NotFound, &refname, "the branch does not exist"));
    };
    let target = resolve_commit(repo, ctx, &req.commit)?;
    let what = format!(
        "revert {} on {refname}",
        ObjectId::from(target.id()).short(10)
    );
    if target.parent_count() == 0 {
        return Err(ctx.error(
            ErrorKind::InvalidInput,
            &what,
            "cannot revert a root commit (it has no parent to go back to)",
        ));
    }
    let mainline = u32::from(target.parent_count() > 1);
    let mut index = repo
        .revert_commit(&target, &tip, mainline, None)
        .map_err(ctx.git(&what))?;
    if index.has_conflicts() {
        let mut paths = Vec::new();
        for conflict in index.conflicts().map_err(ctx.git(&what))? {
            let conflict = conflict.map_err(ctx.git(&what))?;
            if let Some(entry) = conflict.our.or(conflict.their).or(conflict.ancestor) {
                paths.push(String::from_utf8_lossy(&entry.path).into_owned());
            }
        }
        return Err(ctx.error(
            ErrorKind::Conflict,
            &what,
            format!(
                "the revert conflicts with later changes in: {}; revert by hand or revert the later commits first",
                paths.join(", ")
            ),
        ));
    }
    let tree_id = index.write_tree_to(repo).map_err(ctx.git(&what))?;
    if tree_id == tip.tree_id() && !req.meta.allow_empty {
        return Ok(Step::Done(CommitOutcome {
            id: tip.id().into(),
            parent: tip.parent_ids().next().map(ObjectId::from),
            tree: tree_id.into(),
            created: false,
            attempts: 1,
            worktree: None,
        }));
    }
    let message = if let Some(m) = &req.message {
        req.meta.full_message(m)?
    } else {
        let summary = String::from_utf8_lossy(target.message_bytes())
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned();
        req.meta.full_message(&format!(
            "Revert \"{summary}\"\n\nThis reverts commit {}.",
            target.id()
        ))?
    };
    let tree = repo.find_tree(tree_id).map_err(ctx.git(&what))?;
    let (author, committer) = req.meta.signatures()?;
    let oid = repo
        .commit(None, &author, &committer, &message, &tree, &[&tip])
        .map_err(ctx.git(&what))?;
    let log = format!("revert: {}", target.id());
    Ok(
        match update_ref_cas(repo, ctx, &refname, oid, Some(tip.id()), &log)? {
            Step::Done(()) => Step::Done(CommitOutcome {
                id: oid.into(),
                parent: Some(tip.id().into()),
                tree: tree_id.into(),
                created: true,
                attempts: 1,
                worktree: None,
            }),
            Step::Moved(e) => Step::Moved(e),
        },
    )
}

/// A node of the edit trie built from a change list.
enum Node<'c> {
    Blob(&'c [u8]),
    Remove {
        recursive: bool,
    },
    Dir {
        replace: bool,
        children: BTreeMap<String, Node<'c>>,
    },
}

fn insert<'c>(node: &mut Node<'c>, parts: &[&str], leaf: Node<'c>) {
    let Node::Dir { children, .. } = node else {
        return;
    };
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    if rest.is_empty() {
        children.insert((*first).to_owned(), leaf);
        return;
    }
    let child = children
        .entry((*first).to_owned())
        .or_insert_with(|| Node::Dir {
            replace: false,
            children: BTreeMap::new(),
        });
    if !matches!(child, Node::Dir { .. }) {
        // An earlier change put a file here or removed this path: whatever the base had
        // is gone, so the directory starts empty.
        *child = Node::Dir {
            replace: true,
            children: BTreeMap::new(),
        };
    }
    insert(child, rest, leaf);
}

/// Apply `changes` to `base` (None: empty tree) and write the resulting tree.
///
/// Only the trees along changed paths are read and written; a file whose content is
/// already there (same blob id, found by hashing in memory) is neither written to the
/// object database nor re-inserted, so re-writing a whole folder where one file changed
/// costs one blob write.
pub(crate) fn apply_changes(
    repo: &Repository,
    ctx: Ctx<'_>,
    base: Option<&git2::Tree<'_>>,
    changes: &[Change],
) -> Result<Oid> {
    let mut root = Node::Dir {
        replace: false,
        children: BTreeMap::new(),
    };
    for change in changes {
        let parts = path::components(change.path(), false)?;
        let leaf = match change {
            Change::Put { bytes, .. } => Node::Blob(bytes),
            Change::Delete { .. } => Node::Remove { recursive: false },
            Change::DeleteTree { .. } => Node::Remove { recursive: true },
        };
        insert(&mut root, &parts, leaf);
    }
    let Node::Dir { children, .. } = &root else {
        return Err(Error::internal("the edit trie lost its root"));
    };
    match write_dir(repo, ctx, base, false, children, "")? {
        Some(id) => Ok(id),
        None => repo
            .treebuilder(None)
            .and_then(|b| b.write())
            .map_err(ctx.git("write empty tree")),
    }
}

/// Write one directory level; `None` when it ends up empty. With `replace`, `base` is
/// only a source of entries to reuse: anything in it that `children` does not name is
/// dropped.
fn write_dir(
    repo: &Repository,
    ctx: Ctx<'_>,
    base: Option<&git2::Tree<'_>>,
    replace: bool,
    children: &BTreeMap<String, Node<'_>>,
    prefix: &str,
) -> Result<Option<Oid>> {
    let mut builder = repo
        .treebuilder(base)
        .map_err(ctx.git(format_args!("read tree {prefix}")))?;
    let mut changed = false;
    if replace && let Some(base) = base {
        for entry in base {
            let keep = entry
                .name()
                .is_ok_and(|n| matches!(children.get(n), Some(Node::Blob(_) | Node::Dir { .. })));
            if !keep {
                let name = entry.name_bytes();
                builder
                    .remove(name)
                    .map_err(ctx.git(format_args!("{prefix}{}", String::from_utf8_lossy(name))))?;
                changed = true;
            }
        }
    }
    for (name, node) in children {
        let path = format!("{prefix}{name}");
        let existing = builder
            .get(name.as_str())
            .map_err(ctx.git(&path))?
            .map(|e| (e.id(), e.kind(), e.filemode()));
        match node {
            Node::Blob(bytes) => {
                // A file put into a replaced folder is new: it does not inherit a mode.
                let mode = match existing {
                    Some((_, _, 0o100_755)) if !replace => 0o100_755,
                    _ => 0o100_644,
                };
                let id = Oid::hash_object(ObjectType::Blob, bytes)
                    .map_err(ctx.git(format_args!("hash {path}")))?;
                let same = matches!(
                    existing,
                    Some((old, Some(ObjectType::Blob), old_mode)) if old == id && old_mode == mode
                );
                if !same {
                    let written = repo
                        .blob(bytes)
                        .map_err(ctx.git(format_args!("write {path}")))?;
                    builder
                        .insert(name.as_str(), written, mode)
                        .map_err(ctx.git(&path))?;
                    changed = true;
                }
            }
            Node::Remove { recursive } => {
                if let Some((_, kind, _)) = existing {
                    if kind == Some(ObjectType::Tree) && !recursive {
                        return Err(ctx.error(
                            ErrorKind::InvalidInput,
                            &path,
                            "this is a directory; use Change::DeleteTree to remove it with everything in it",
                        ));
                    }
                    builder.remove(name.as_str()).map_err(ctx.git(&path))?;
                    changed = true;
                }
            }
            Node::Dir {
                replace: replace_sub,
                children,
            } => {
                let sub = match existing {
                    Some((id, Some(ObjectType::Tree), _)) => {
                        Some(repo.find_tree(id).map_err(ctx.git(&path))?)
                    }
                    _ => None,
                };
                // Inside a replaced folder every folder is replaced too.
                let replace_sub = replace || *replace_sub;
                let prefix = format!("{path}/");
                match write_dir(repo, ctx, sub.as_ref(), replace_sub, children, &prefix)? {
                    Some(id) => {
                        if sub.as_ref().map(git2::Tree::id) != Some(id) {
                            builder
                                .insert(name.as_str(), id, 0o040_000)
                                .map_err(ctx.git(&path))?;
                            changed = true;
                        }
                    }
                    None => {
                        if existing.is_some() {
                            builder.remove(name.as_str()).map_err(ctx.git(&path))?;
                            changed = true;
                        }
                    }
                }
            }
        }
    }
    if builder.is_empty() {
        return Ok(None);
    }
    if !changed && let Some(base) = base {
        // Nothing changed at this level: the tree is already in the database.
        return Ok(Some(base.id()));
    }
    builder
        .write()
        .map(Some)
        .map_err(ctx.git(format_args!("write tree {prefix}")))
}
