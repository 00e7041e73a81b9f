//! Keep a non-bare GitOps repository's working tree and index in line with the branch
//! the deployer moved.
//!
//! The commit itself is built in the object database (see `idp_core::git`). When the
//! repository has a working tree with the deployed branch checked out, the files that
//! changed between the old and the new tip are checked out, and only those: the cost
//! follows the size of the change, not of the repository. The checkout is *safe*: a file
//! someone edited by hand is not overwritten; the working tree is then left as it was
//! and the caller is told.

use std::path::{Path, PathBuf};

use git2::{Oid, Repository};
use idp_core::git::ObjectId;
use idp_core::{Error, Result};

/// What happened to the working tree after a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sync {
    /// Bare repository, or another branch is checked out: nothing to do.
    NotCheckedOut,
    /// The changed files were checked out.
    Updated(usize),
    /// The checkout was refused (local edits in the way); the reason.
    Skipped(String),
}

fn oid(id: ObjectId) -> Result<Oid> {
    Oid::from_str(&id.to_hex())
        .map_err(|e| Error::internal(format!("bad object id {id}: {}", e.message())))
}

/// Check out what changed between `old` and `new` on `branch` when `branch` is checked
/// out in the repository at `path`.
pub(crate) async fn sync(
    path: PathBuf,
    branch: String,
    old: Option<ObjectId>,
    new: ObjectId,
) -> Result<Sync> {
    let old = old.map(oid).transpose()?;
    let new = oid(new)?;
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(|| sync_blocking(&path, &branch, old, new)))
        .await
        .map_err(|e| Error::internal(format!("working-tree checkout task failed: {e}")))?
}

fn git_err(what: &str) -> impl Fn(git2::Error) -> Error + '_ {
    move |e| {
        Error::unavailable(format!(
            "updating the working tree: {what}: {}",
            e.message()
        ))
        .with_source(e)
    }
}

fn sync_blocking(path: &Path, branch: &str, old: Option<Oid>, new: Oid) -> Result<Sync> {
    let repo = Repository::open(path).map_err(git_err("open"))?;
    if repo.is_bare() {
        return Ok(Sync::NotCheckedOut);
    }
    let head = repo.find_reference("HEAD").map_err(git_err("HEAD"))?;
    let refname = format!("refs/heads/{branch}");
    if head.symbolic_target().ok().flatten() != Some(refname.as_str()) {
        return Ok(Sync::NotCheckedOut);
    }
    let Some(workdir) = repo.workdir().map(Path::to_path_buf) else {
        return Ok(Sync::NotCheckedOut);
    };
    if old == Some(new) {
        return Ok(Sync::Updated(0));
    }
    let new_tree = repo
        .find_commit(new)
        .and_then(|c| c.tree())
        .map_err(git_err("new commit"))?;
    let old_tree = match old {
        Some(o) => Some(
            repo.find_commit(o)
                .and_then(|c| c.tree())
                .map_err(git_err("old commit"))?,
        ),
        None => None,
    };
    let diff = repo
        .diff_tree_to_tree(old_tree.as_ref(), Some(&new_tree), None)
        .map_err(git_err("diff"))?;
    // (path, blob before, blob after)
    let mut changes: Vec<(PathBuf, Option<Oid>, Option<Oid>)> = Vec::new();
    for delta in diff.deltas() {
        let (before, after) = (delta.old_file(), delta.new_file());
        let before_id = (!before.id().is_zero()).then(|| before.id());
        let after_id = (!after.id().is_zero()).then(|| after.id());
        match (before.path(), after.path()) {
            (Some(a), Some(b)) if a != b => {
                changes.push((a.to_path_buf(), before_id, None));
                changes.push((b.to_path_buf(), None, after_id));
            }
            (Some(p), _) | (None, Some(p)) => changes.push((p.to_path_buf(), before_id, after_id)),
            (None, None) => {}
        }
    }
    // Refuse to touch anything when a changed path was edited by hand.
    let mut edited = Vec::new();
    for (rel, before, _) in &changes {
        let file = workdir.join(rel);
        let on_disk = match std::fs::symlink_metadata(&file) {
            Ok(m) if m.is_file() => {
                Some(Oid::hash_file(git2::ObjectType::Blob, &file).map_err(git_err("hash file"))?)
            }
            Ok(_) => {
                edited.push(rel.display().to_string());
                continue;
            }
            Err(_) => None,
        };
        if on_disk != *before {
            edited.push(rel.display().to_string());
        }
    }
    if !edited.is_empty() {
        return Ok(Sync::Skipped(format!(
            "files edited in the working tree of {} are in the way ({}); the branch moved but the working tree was not updated: commit, stash or discard those edits, then run `git checkout -- .` there",
            path.display(),
            edited.join(", ")
        )));
    }
    let mut index = repo.index().map_err(git_err("index"))?;
    for (rel, _, after) in &changes {
        let file = workdir.join(rel);
        if let Some(id) = after {
            let blob = repo.find_blob(*id).map_err(git_err("blob"))?;
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent).map_err(io_err(&file))?;
            }
            std::fs::write(&file, blob.content()).map_err(io_err(&file))?;
            index.add_path(rel).map_err(git_err("index add"))?;
        } else {
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&file)(e)),
            }
            // Git keeps no empty folders: remove the ones this left empty.
            let mut dir = file.parent();
            while let Some(d) = dir {
                if d == workdir || std::fs::remove_dir(d).is_err() {
                    break;
                }
                dir = d.parent();
            }
            index.remove_path(rel).map_err(git_err("index remove"))?;
        }
    }
    index.write().map_err(git_err("index write"))?;
    Ok(Sync::Updated(changes.len()))
}

fn io_err(file: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| {
        Error::unavailable(format!(
            "updating the working tree: {}: {e}",
            file.display()
        ))
        .with_source(e)
    }
}
