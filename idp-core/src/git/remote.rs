//! Fetch, push and the commit-push-retry loop.

use std::cell::RefCell;

use git2::{Direction, Repository};
use tracing::instrument;

use super::commit::{
    CommitOutcome, CommitRequest, RetryPolicy, Step, ref_commit, retry_loop, update_ref_cas,
    write_commit,
};
use super::error::Ctx;
use super::{GitRepo, ObjectId, branch_ref};
use crate::{ErrorKind, Result};

/// The transport a URL needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transport {
    Local,
    Https,
    Ssh,
    Git,
}

fn transport_of(url: &str) -> Transport {
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        Transport::Https
    } else if lower.starts_with("ssh://")
        || lower.starts_with("git+ssh://")
        || lower.starts_with("ssh+git://")
    {
        Transport::Ssh
    } else if lower.starts_with("git://") {
        Transport::Git
    } else if lower.starts_with("file://") || url.starts_with('/') || url.starts_with('.') {
        Transport::Local
    } else if let Some(colon) = url.find(':') {
        // scp-like `user@host:path` (but not a Windows drive `C:\`).
        let before = &url[..colon];
        if colon > 1 && !before.contains('/') {
            Transport::Ssh
        } else {
            Transport::Local
        }
    } else {
        Transport::Local
    }
}

/// Refuse URLs whose transport was not compiled in, naming the cargo feature.
pub(crate) fn check_transport(url: &str, ctx: Ctx<'_>) -> Result<()> {
    let missing = match transport_of(url) {
        Transport::Https if !cfg!(feature = "https") => Some("https"),
        Transport::Ssh if !cfg!(feature = "ssh") => Some("ssh"),
        _ => None,
    };
    match missing {
        Some(feature) => Err(ctx.error(
            ErrorKind::InvalidInput,
            url,
            format!(
                "this URL needs the `{feature}` cargo feature of idp-core, which is off; \
                 enable it with `idp-core = {{ version = \"…\", features = [\"{feature}\"] }}` \
                 or use a file:// URL"
            ),
        )),
        None => Ok(()),
    }
}

/// What remote callbacks observed.
#[derive(Default)]
pub(crate) struct CallbackState {
    /// Refs the server refused, with its reason.
    rejected: RefCell<Vec<(String, String)>>,
    /// How many times credentials were asked for (to stop libgit2 from looping).
    #[cfg_attr(not(any(feature = "https", feature = "ssh")), allow(dead_code))]
    credential_calls: RefCell<u32>,
}

pub(crate) fn callbacks(state: &CallbackState) -> git2::RemoteCallbacks<'_> {
    let mut cb = git2::RemoteCallbacks::new();
    cb.push_update_reference(move |refname, status| {
        if let Some(status) = status {
            state
                .rejected
                .borrow_mut()
                .push((refname.to_owned(), status.to_owned()));
        }
        Ok(())
    });
    #[cfg(any(feature = "https", feature = "ssh"))]
    cb.credentials(move |url, username, allowed| credentials(state, url, username, allowed));
    cb
}

/// Credentials from the ssh agent, Git's credential helpers, or the platform default.
#[cfg(any(feature = "https", feature = "ssh"))]
fn credentials(
    state: &CallbackState,
    url: &str,
    username: Option<&str>,
    allowed: git2::CredentialType,
) -> std::result::Result<git2::Cred, git2::Error> {
    let mut calls = state.credential_calls.borrow_mut();
    *calls += 1;
    if *calls > 3 {
        return Err(git2::Error::from_str(
            "authentication failed: no usable credentials (tried the ssh agent and git credential helpers)",
        ));
    }
    if allowed.contains(git2::CredentialType::USERNAME) {
        return git2::Cred::username(username.unwrap_or("git"));
    }
    if allowed.contains(git2::CredentialType::SSH_KEY) {
        return git2::Cred::ssh_key_from_agent(username.unwrap_or("git"));
    }
    if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT)
        && let Ok(config) = git2::Config::open_default()
        && let Ok(cred) = git2::Cred::credential_helper(&config, url, username)
    {
        return Ok(cred);
    }
    git2::Cred::default()
}

/// A named remote, or an anonymous one for a URL / path.
fn open_remote<'r>(repo: &'r Repository, ctx: Ctx<'_>, remote: &str) -> Result<git2::Remote<'r>> {
    if remote.is_empty() {
        return Err(ctx.error(
            ErrorKind::InvalidInput,
            "remote \"\"",
            "give a remote name (origin) or a URL",
        ));
    }
    if git2::Remote::is_valid_name(remote) {
        match repo.find_remote(remote) {
            Ok(r) => {
                if let Ok(url) = r.url() {
                    check_transport(url, ctx)?;
                }
                return Ok(r);
            }
            Err(e) if e.code() == git2::ErrorCode::NotFound => {
                if !remote.contains([':', '/']) {
                    return Err(ctx.error(
                        ErrorKind::NotFound,
                        format_args!("remote {remote:?}"),
                        "no such remote; give a configured remote name or a URL",
                    ));
                }
            }
            Err(e) => return Err(ctx.git_error(remote, e)),
        }
    }
    check_transport(remote, ctx)?;
    repo.remote_anonymous(remote).map_err(ctx.git(remote))
}

fn specs(refspecs: &[&str]) -> Vec<String> {
    refspecs.iter().map(|s| (*s).to_owned()).collect()
}

fn do_fetch(repo: &Repository, ctx: Ctx<'_>, remote: &str, refspecs: &[String]) -> Result<()> {
    let mut r = open_remote(repo, ctx, remote)?;
    if r.name_bytes().is_none() && refspecs.is_empty() {
        return Err(ctx.error(
            ErrorKind::InvalidInput,
            remote,
            "fetching from a URL needs refspecs, e.g. \"+refs/heads/main:refs/remotes/upstream/main\"",
        ));
    }
    let state = CallbackState::default();
    let mut opts = git2::FetchOptions::new();
    opts.remote_callbacks(callbacks(&state));
    r.fetch(refspecs, Some(&mut opts), None)
        .map_err(ctx.git(format_args!("fetch {} from {remote}", refspecs.join(" "))))
}

/// Push; a non-fast-forward is `Step::Moved`, other refusals are errors.
fn do_push(repo: &Repository, ctx: Ctx<'_>, remote: &str, refspecs: &[String]) -> Result<Step<()>> {
    if refspecs.is_empty() {
        return Err(ctx.error(
            ErrorKind::InvalidInput,
            remote,
            "push needs refspecs, e.g. \"refs/heads/main:refs/heads/main\"",
        ));
    }
    let mut r = open_remote(repo, ctx, remote)?;
    let state = CallbackState::default();
    let what = format!("push {} to {remote}", refspecs.join(" "));
    {
        let mut opts = git2::PushOptions::new();
        opts.remote_callbacks(callbacks(&state));
        if let Err(e) = r.push(refspecs, Some(&mut opts)) {
            if e.code() == git2::ErrorCode::NotFastForward {
                return Ok(Step::Moved(ctx.error(
                    ErrorKind::Conflict,
                    &what,
                    "rejected: not a fast-forward (the remote has commits we do not); fetch, rebase and push again, \
                     or use GitRepo::commit_and_push which does this",
                )
                .with_source(e)));
            }
            return Err(ctx.git_error(&what, e));
        }
    }
    let rejected = state.rejected.into_inner();
    if rejected.is_empty() {
        return Ok(Step::Done(()));
    }
    let list = rejected
        .iter()
        .map(|(r, why)| format!("{r} ({why})"))
        .collect::<Vec<_>>()
        .join(", ");
    let stale = rejected.iter().all(|(_, why)| {
        let why = why.to_ascii_lowercase();
        why.contains("fast-forward")
            || why.contains("fetch first")
            || why.contains("stale")
            || why.contains("already exists")
            || why.contains("lock")
            || why.contains("failed to update ref")
    });
    if stale {
        Ok(Step::Moved(ctx.error(
            ErrorKind::Conflict,
            &what,
            format!("rejected refs: {list}; fetch, rebase and push again"),
        )))
    } else {
        Err(ctx.error(
            ErrorKind::Denied,
            &what,
            format!("the remote refused refs: {list}"),
        ))
    }
}

/// The ref a fetched remote branch is kept in.
fn tracking_ref(remote: &str, named: bool, branch: &str) -> String {
    if named {
        format!("refs/remotes/{remote}/{branch}")
    } else {
        format!("refs/idp/fetched/{branch}")
    }
}

impl GitRepo {
    /// Fetch from a remote (a configured name like `origin`, or a URL / path) with the
    /// given refspecs (`+refs/heads/main:refs/remotes/origin/main`); an empty list uses
    /// the named remote's configured refspecs. Transport failures are
    /// [`ErrorKind::Unavailable`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// use idp_core::git::*;
    /// let dir = tempfile::tempdir()?;
    /// let upstream = GitRepo::init(dir.path().join("up.git"), InitOptions::bare("main")).await?;
    /// upstream.commit(CommitRequest::new("main", "1", Identity::new("a", "a@x")).put("f", "1")).await?;
    /// let mirror = GitRepo::init(dir.path().join("mirror.git"), InitOptions::bare("main")).await?;
    /// let url = format!("file://{}", dir.path().join("up.git").display());
    /// mirror.fetch(&url, &["+refs/heads/main:refs/heads/main"]).await?;
    /// assert_eq!(mirror.resolve("main").await?, upstream.resolve("main").await?);
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display(), remote = %remote, refspecs = ?refspecs))]
    pub async fn fetch(&self, remote: &str, refspecs: &[&str]) -> Result<()> {
        let remote = remote.to_owned();
        let refspecs = specs(refspecs);
        self.with_repo("fetch", move |repo, ctx| {
            do_fetch(repo, ctx, &remote, &refspecs)
        })
        .await
    }

    /// Push refspecs (`refs/heads/main:refs/heads/main`, `+` to force) to a remote (name
    /// or URL). A ref the remote refuses because it is not a fast-forward is
    /// [`ErrorKind::Conflict`] naming the ref; other refusals (hooks, permissions) are
    /// [`ErrorKind::Denied`].
    ///
    /// A plain push is only as atomic as the transport: real Git servers update the ref
    /// with a compare-and-swap, but libgit2's local (`file://`) transport checks for a
    /// fast-forward and then overwrites the ref, so two pushes racing to one local remote
    /// can lose a commit. [`commit_and_push`](Self::commit_and_push) does a true
    /// compare-and-swap on local remotes; prefer it for machine writers.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// use idp_core::git::*;
    /// let dir = tempfile::tempdir()?;
    /// let remote = GitRepo::init(dir.path().join("remote.git"), InitOptions::bare("main")).await?;
    /// let local = GitRepo::init(dir.path().join("local.git"), InitOptions::bare("main")).await?;
    /// local.commit(CommitRequest::new("main", "1", Identity::new("a", "a@x")).put("f", "1")).await?;
    /// let url = format!("file://{}", dir.path().join("remote.git").display());
    /// local.push(&url, &["refs/heads/main:refs/heads/main"]).await?;
    /// assert_eq!(remote.read_file("main", "f").await?, b"1");
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display(), remote = %remote, refspecs = ?refspecs))]
    pub async fn push(&self, remote: &str, refspecs: &[&str]) -> Result<()> {
        let remote = remote.to_owned();
        let refspecs = specs(refspecs);
        self.with_repo("push", move |repo, ctx| {
            match do_push(repo, ctx, &remote, &refspecs)? {
                Step::Done(()) => Ok(()),
                Step::Moved(e) => Err(e),
            }
        })
        .await
    }

    /// Commit `req` on the **remote's** branch and push it, never losing another
    /// writer's commit: fetch the remote branch, build the commit on its tip (re-applying
    /// the changes), push without force; when the push is refused as a non-fast-forward
    /// (someone pushed first), fetch again and retry, up to `policy`'s attempts.
    ///
    /// The fetched tip is kept in `refs/remotes/<remote>/<branch>` (named remotes) or
    /// `refs/idp/fetched/<branch>` (URLs). After a successful push the local branch of the
    /// same name is moved to the pushed commit when that is a fast-forward from where it
    /// was (it is left alone otherwise). A no-op change pushes nothing and returns
    /// `created == false`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// use idp_core::git::*;
    /// let dir = tempfile::tempdir()?;
    /// let remote = GitRepo::init(dir.path().join("remote.git"), InitOptions::bare("main")).await?;
    /// let url = format!("file://{}", dir.path().join("remote.git").display());
    /// let a = GitRepo::init(dir.path().join("a.git"), InitOptions::bare("main")).await?;
    /// let b = GitRepo::init(dir.path().join("b.git"), InitOptions::bare("main")).await?;
    /// let me = Identity::new("a", "a@x");
    /// a.commit_and_push(&url, CommitRequest::new("main", "a", me.clone()).put("a.txt", "a"), &RetryPolicy::default()).await?;
    /// b.commit_and_push(&url, CommitRequest::new("main", "b", me).put("b.txt", "b"), &RetryPolicy::default()).await?;
    /// let files = remote.read_tree("main", "").await?;
    /// assert!(files.contains_key("a.txt") && files.contains_key("b.txt"));
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(repo = %self.path.display(), remote = %remote, branch = %req.branch()))]
    pub async fn commit_and_push(
        &self,
        remote: &str,
        req: CommitRequest,
        policy: &RetryPolicy,
    ) -> Result<CommitOutcome> {
        let req = std::sync::Arc::new(req);
        let remote: std::sync::Arc<str> = remote.into();
        retry_loop(policy, "commit and push", |attempt| {
            let req = req.clone();
            let remote = remote.clone();
            self.with_repo("commit-and-push", move |repo, ctx| {
                Ok(match push_once(repo, ctx, &remote, &req)? {
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

fn push_once(
    repo: &Repository,
    ctx: Ctx<'_>,
    remote: &str,
    req: &CommitRequest,
) -> Result<Step<CommitOutcome>> {
    let branch = req.branch();
    let refname = branch_ref(branch)?;
    let short = refname
        .strip_prefix("refs/heads/")
        .unwrap_or(&refname)
        .to_owned();
    let named = open_remote(repo, ctx, remote)?.name_bytes().is_some();
    let tracking = tracking_ref(remote, named, &short);
    let local = local_remote_path(repo, remote);
    // A local remote: read its branch directly and copy the objects we lack.
    let base = if let Some(remote_path) = &local {
        let target =
            Repository::open(remote_path).map_err(ctx.git(format_args!("open remote {remote}")))?;
        match target.refname_to_id(&refname) {
            Ok(tip) => {
                copy_objects(&target, repo, tip)
                    .map_err(ctx.git(format_args!("fetch {refname} from {remote}")))?;
                let _ = repo.reference(&tracking, tip, true, "idp: fetched");
                Some(repo.find_commit(tip).map_err(ctx.git(&tracking))?)
            }
            Err(e) if e.code() == git2::ErrorCode::NotFound => None,
            Err(e) => return Err(ctx.git_error(&format!("{refname} in {remote}"), e)),
        }
    } else {
        // Is the branch on the remote at all? (Fetching a missing ref is an error.)
        let exists = {
            let mut r = open_remote(repo, ctx, remote)?;
            let state = CallbackState::default();
            let conn = r
                .connect_auth(Direction::Fetch, Some(callbacks(&state)), None)
                .map_err(ctx.git(format_args!("connect to {remote}")))?;
            let heads = conn
                .list()
                .map_err(ctx.git(format_args!("list refs of {remote}")))?;
            heads.iter().any(|h| h.name() == refname)
        };
        if exists {
            match do_fetch(repo, ctx, remote, &[format!("+{refname}:{tracking}")]) {
                Ok(()) => {}
                // Another task in this process is fetching into the same repository.
                Err(e) if e.kind() == ErrorKind::Conflict => return Ok(Step::Moved(e)),
                Err(e) => return Err(e),
            }
            ref_commit(repo, ctx, &tracking)?
        } else {
            None
        }
    };
    let base_id = base.as_ref().map(git2::Commit::id);
    let message = req.full_message()?;
    let written = write_commit(repo, ctx, base.as_ref(), req.changes(), &message, req)?;
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
            let moved = advance_local(repo, ctx, &refname, b.id());
            let mut out = CommitOutcome::new(
                b.id().into(),
                b.parent_ids().next().map(ObjectId::from),
                b.tree_id().into(),
                false,
            );
            // Nothing committed, but a fast-forwarded local branch still takes its
            // working tree along.
            if req.updates_worktree() && matches!(moved, LocalMove::From(_)) {
                out.worktree = Some(follow_worktree(repo, ctx, &refname, &moved, b.tree_id()));
            }
            return Ok(Step::Done(out));
        }
    };
    let pushed = if let Some(remote_path) = &local {
        push_local_cas(repo, ctx, remote, remote_path, &refname, oid, base_id)
    } else {
        // libgit2 pushes refs, not bare commits: park the commit under a private ref.
        let temp = format!("refs/idp/push/{}", rand::random::<u64>());
        repo.reference(&temp, oid, true, "idp: commit to push")
            .map_err(ctx.git(&temp))?;
        let pushed = do_push(repo, ctx, remote, &[format!("{temp}:{refname}")]);
        if let Ok(mut r) = repo.find_reference(&temp) {
            let _ = r.delete();
        }
        pushed
    };
    match pushed? {
        Step::Moved(e) => Ok(Step::Moved(e)),
        Step::Done(()) => {
            // Best effort: the remote is the truth, these are caches.
            let _ = update_ref_cas(repo, ctx, &tracking, oid, base_id, "idp: pushed");
            let moved = advance_local(repo, ctx, &refname, oid);
            let mut out =
                CommitOutcome::new(oid.into(), base_id.map(ObjectId::from), tree.into(), true);
            if req.updates_worktree() {
                out.worktree = Some(follow_worktree(repo, ctx, &refname, &moved, tree));
            }
            Ok(Step::Done(out))
        }
    }
}

/// The filesystem path of a remote reached by the local transport (`file://` or a path).
fn local_remote_path(repo: &Repository, remote: &str) -> Option<std::path::PathBuf> {
    let url = match repo.find_remote(remote) {
        Ok(r) => r.url().ok()?.to_owned(),
        Err(_) => remote.to_owned(),
    };
    if transport_of(&url) != Transport::Local {
        return None;
    }
    Some(std::path::PathBuf::from(
        url.strip_prefix("file://").unwrap_or(&url),
    ))
}

/// Push to a local remote with a real compare-and-swap.
///
/// libgit2's local transport checks fast-forward against the remote ref it read when
/// connecting, then overwrites the ref without re-checking it, so two concurrent local
/// pushes could both "win" and one commit would be lost. Instead we copy the new
/// objects into the remote's object database and move the branch there ourselves, only
/// if it still points at `base`.
fn push_local_cas(
    repo: &Repository,
    ctx: Ctx<'_>,
    remote: &str,
    remote_path: &std::path::Path,
    refname: &str,
    oid: git2::Oid,
    base: Option<git2::Oid>,
) -> Result<Step<()>> {
    let what = format!("push {refname} to {remote}");
    let target = Repository::open(remote_path).map_err(ctx.git(&what))?;
    copy_objects(repo, &target, oid).map_err(ctx.git(&what))?;
    update_ref_cas(
        &target,
        Ctx::new(ctx.op, remote_path),
        refname,
        oid,
        base,
        "idp: push",
    )
}

/// Copy `commit` and every object it needs that `dst` lacks from `src` to `dst`.
///
/// Objects are written children first, so that whenever an object exists in `dst`
/// everything it references exists too — concurrent copies into the same repository
/// rely on that to stop early.
fn copy_objects(
    src: &Repository,
    dst: &Repository,
    commit: git2::Oid,
) -> std::result::Result<(), git2::Error> {
    let src_odb = src.odb()?;
    let dst_odb = dst.odb()?;
    let mut seen = std::collections::HashSet::new();
    let mut order = Vec::new();
    let mut stack = vec![(commit, false)];
    while let Some((oid, children_done)) = stack.pop() {
        if children_done {
            order.push(oid);
            continue;
        }
        if !seen.insert(oid) || dst_odb.exists(oid) {
            continue;
        }
        stack.push((oid, true));
        match src_odb.read_header(oid)?.1 {
            git2::ObjectType::Commit => {
                let c = src.find_commit(oid)?;
                stack.push((c.tree_id(), false));
                stack.extend(c.parent_ids().map(|p| (p, false)));
            }
            git2::ObjectType::Tree => {
                let t = src.find_tree(oid)?;
                stack.extend(
                    t.iter()
                        .filter(|e| e.kind() != Some(git2::ObjectType::Commit))
                        .map(|e| (e.id(), false)),
                );
            }
            _ => {}
        }
    }
    for oid in order {
        let object = src_odb.read(oid)?;
        dst_odb.write(object.kind(), object.data())?;
    }
    Ok(())
}

/// What [`advance_local`] did to the local branch.
enum LocalMove {
    /// It stayed where it was (already there, or not a fast-forward).
    Stayed,
    /// It moved from this commit (`None`: it did not exist).
    From(Option<git2::Oid>),
}

/// Move the local branch to `to` if that is a fast-forward (or it does not exist).
fn advance_local(repo: &Repository, ctx: Ctx<'_>, refname: &str, to: git2::Oid) -> LocalMove {
    let current = repo.refname_to_id(refname).ok();
    let ff = match current {
        None => true,
        Some(c) if c == to => false,
        Some(c) => repo.graph_descendant_of(to, c).unwrap_or(false),
    };
    if !ff {
        return LocalMove::Stayed;
    }
    match update_ref_cas(
        repo,
        ctx,
        refname,
        to,
        current,
        "idp: fast-forward to pushed commit",
    ) {
        Ok(Step::Done(())) => LocalMove::From(current),
        _ => LocalMove::Stayed,
    }
}

/// After the local branch moved from `from` to `to`, bring a checked-out working tree
/// along (see [`CommitRequest::update_worktree`]).
fn follow_worktree(
    repo: &Repository,
    ctx: Ctx<'_>,
    refname: &str,
    moved: &LocalMove,
    to_tree: git2::Oid,
) -> super::WorktreeUpdate {
    match moved {
        LocalMove::From(old) => {
            let old_tree = old
                .and_then(|c| repo.find_commit(c).ok())
                .map(|c| c.tree_id());
            super::worktree::update(repo, ctx, refname, old_tree, to_tree)
        }
        // The local branch did not move (or went its own way): leave its working tree.
        LocalMove::Stayed => super::WorktreeUpdate::NotCheckedOut,
    }
}

#[cfg(test)]
mod tests {
    use super::{Transport, transport_of};

    #[test]
    fn transports() {
        assert_eq!(transport_of("file:///tmp/x.git"), Transport::Local);
        assert_eq!(transport_of("/tmp/x.git"), Transport::Local);
        assert_eq!(transport_of("https://github.com/a/b.git"), Transport::Https);
        assert_eq!(transport_of("ssh://git@github.com/a/b.git"), Transport::Ssh);
        assert_eq!(transport_of("git@github.com:a/b.git"), Transport::Ssh);
        assert_eq!(transport_of("git://host/x"), Transport::Git);
    }
}
