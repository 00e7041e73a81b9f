//! Bring a checked-out working tree and its index along with a branch a commit moved.
//!
//! Commits are built in the object database; a non-bare repository that has the
//! committed branch checked out would then show the change as a local modification.
//! [`CommitRequest::update_worktree`](super::CommitRequest::update_worktree) asks the
//! commit to bring the working tree and the index along, **incrementally**: only the
//! paths that differ between the old and the new tree are written or removed, only their
//! index entries are replaced (with the blob ids the commit already knows, so no file is
//! hashed again), and the index is written once. The index file is locked as Git locks
//! it (`index.lock`) and edited directly at entry boundaries, without parsing or
//! re-hashing the entries it keeps; forms of index that edit does not handle (version
//! 4, split or sparse indexes) go through libgit2. The cost follows the size of the
//! change, not the size of the repository: no checkout, no scan of the whole index or
//! working tree.
//!
//! The update is *safe*: before touching anything it checks every changed path; when a
//! file there differs from the old commit (edited by hand, deleted by hand, an untracked
//! file or folder where a new file would go, or a different version staged in the
//! index), nothing at all is written and the outcome is [`WorktreeUpdate::Skipped`],
//! naming those paths. Files and folders elsewhere (untracked, ignored or edited) are
//! never read or written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use git2::{Oid, Repository};

use super::error::Ctx;
use super::index_file::{IndexLock, NewEntry, RawIndex};

/// What happened to the working tree and index after a commit that asked for
/// [`CommitRequest::update_worktree`](super::CommitRequest::update_worktree).
///
/// ```
/// use idp_core::git::WorktreeUpdate;
/// let up = WorktreeUpdate::Updated { files: 2 };
/// assert!(up.is_updated());
/// assert!(!WorktreeUpdate::NotCheckedOut.is_updated());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WorktreeUpdate {
    /// Nothing to do: the repository is bare, `HEAD` is detached or names another
    /// branch.
    NotCheckedOut,
    /// The changed files were written or removed and their index entries updated.
    Updated {
        /// How many paths were written or removed.
        files: usize,
    },
    /// Local changes on paths the commit changed: the working tree and index were left
    /// exactly as they were (the commit is made all the same).
    Skipped {
        /// The paths in the way, from the repository root.
        paths: Vec<String>,
        /// What happened and what to do, for a person.
        reason: String,
    },
    /// Writing the working tree or the index failed part-way (the commit is made all
    /// the same); the message says what failed and what to do.
    Failed {
        /// What failed and what to do, for a person.
        reason: String,
    },
}

impl WorktreeUpdate {
    /// Whether the working tree and index now match the new commit on the changed
    /// paths.
    ///
    /// ```
    /// assert!(idp_core::git::WorktreeUpdate::Updated { files: 0 }.is_updated());
    /// ```
    pub fn is_updated(&self) -> bool {
        matches!(self, Self::Updated { .. })
    }

    /// The message for a person when the working tree was not brought along (`None`
    /// when it was, or when there is none to update).
    ///
    /// ```
    /// use idp_core::git::WorktreeUpdate;
    /// assert_eq!(WorktreeUpdate::NotCheckedOut.warning(), None);
    /// let failed = WorktreeUpdate::Failed { reason: "disk full".into() };
    /// assert_eq!(failed.warning(), Some("disk full"));
    /// ```
    pub fn warning(&self) -> Option<&str> {
        match self {
            Self::Skipped { reason, .. } | Self::Failed { reason } => Some(reason),
            Self::NotCheckedOut | Self::Updated { .. } => None,
        }
    }
}

/// One changed path: the blob (id, mode) before and after.
struct Delta {
    path: PathBuf,
    before: Option<(Oid, u32)>,
    after: Option<(Oid, u32)>,
}

impl Delta {
    /// Whether the old file must go before the new one is written: it is deleted, or a
    /// symbolic link becomes a file or the reverse (writing through a link would change
    /// its target instead).
    fn needs_removal(&self) -> bool {
        match (self.before, self.after) {
            (Some(_), None) => true,
            (Some((_, a)), Some((_, b))) => (a == SYMLINK) != (b == SYMLINK),
            (None, _) => false,
        }
    }
}

const GITLINK: u32 = 0o160_000;
const TREE: u32 = 0o040_000;
const SYMLINK: u32 = 0o120_000;
#[cfg(unix)]
const EXECUTABLE: u32 = 0o100_755;

/// Update the working tree and index of `repo` for the paths that differ between
/// `old_tree` and `new_tree`, when `refname` is the branch `HEAD` names. Never fails:
/// problems are reported in the outcome (the commit is made already).
pub(crate) fn update(
    repo: &Repository,
    ctx: Ctx<'_>,
    refname: &str,
    old_tree: Option<Oid>,
    new_tree: Oid,
) -> WorktreeUpdate {
    match try_update(repo, ctx, refname, old_tree, new_tree) {
        Ok(up) => up,
        Err(e) => {
            let reason = format!(
                "the branch moved but the working tree of {} was not fully updated: {}; keep any changes of your own with `git stash` there, then run `git reset --hard` to bring the working tree and index to the branch (untracked files are kept)",
                repo.workdir().unwrap_or_else(|| repo.path()).display(),
                e.report()
            );
            tracing::warn!("{reason}");
            WorktreeUpdate::Failed { reason }
        }
    }
}

fn try_update(
    repo: &Repository,
    ctx: Ctx<'_>,
    refname: &str,
    old_tree: Option<Oid>,
    new_tree: Oid,
) -> crate::Result<WorktreeUpdate> {
    if repo.is_bare() {
        return Ok(WorktreeUpdate::NotCheckedOut);
    }
    let head = repo.find_reference("HEAD").map_err(ctx.git("HEAD"))?;
    if head.symbolic_target_bytes() != Some(refname.as_bytes()) {
        return Ok(WorktreeUpdate::NotCheckedOut);
    }
    let Some(workdir) = repo.workdir().map(Path::to_path_buf) else {
        return Ok(WorktreeUpdate::NotCheckedOut);
    };
    if old_tree == Some(new_tree) {
        return Ok(WorktreeUpdate::Updated { files: 0 });
    }
    let deltas = changed_paths(repo, ctx, old_tree, new_tree)?;
    if deltas.is_empty() {
        return Ok(WorktreeUpdate::Updated { files: 0 });
    }
    let git_dir = repo.path().to_path_buf();
    // Lock the index the way Git does, then read it split at entry boundaries only.
    let lock = IndexLock::acquire(&git_dir).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            crate::Error::conflict(format!(
                "{} exists: another git process is using the index; wait for it to finish, or remove the file if no git process is running",
                git_dir.join("index.lock").display()
            ))
        } else {
            io_err(&git_dir.join("index.lock"), e)
        }
    })?;
    // The direct edit knows SHA-1 indexes only; others go through libgit2.
    let raw = if repo.object_format() == git2::ObjectFormat::Sha1 {
        RawIndex::read(&git_dir).map_err(|e| io_err(&git_dir.join("index"), e))?
    } else {
        None
    };
    let in_the_way = if let Some(raw) = &raw {
        local_changes(ctx, |p| raw.staged(&path_bytes(p)), &workdir, &deltas)?
    } else {
        let index = repo.index().map_err(ctx.git("read the index"))?;
        let staged = |p: &Path| index.get_path(p, 0).map(|e| e.id);
        local_changes(ctx, staged, &workdir, &deltas)?
    };
    if !in_the_way.is_empty() {
        drop(lock);
        let reason = format!(
            "local changes in the working tree of {} are in the way ({}); the branch moved but the working tree and index were left as they were: keep them with `git stash` (or discard them), then run `git reset --hard` there to bring the working tree and index to the branch (untracked files are kept)",
            workdir.display(),
            in_the_way.join(", ")
        );
        tracing::warn!("{reason}");
        return Ok(WorktreeUpdate::Skipped {
            paths: in_the_way,
            reason,
        });
    }
    let entries = write_files(repo, ctx, &workdir, &deltas)?;
    let edits: BTreeMap<Vec<u8>, Option<NewEntry>> = entries
        .into_iter()
        .map(|(path, entry)| (path_bytes(&path), entry))
        .collect();
    if let Some(bytes) = raw.as_ref().and_then(|raw| raw.edited(&edits)) {
        lock.commit(&bytes)
            .map_err(|e| io_err(&git_dir.join("index"), e))?;
    } else {
        // A form of index the direct edit leaves alone: through libgit2.
        drop(lock);
        let mut index = repo.index().map_err(ctx.git("read the index"))?;
        for (path, entry) in &edits {
            let rel = bytes_path(path);
            match entry {
                Some(e) => index
                    .add(&index_entry(&rel, e.id, e.mode, &e.meta))
                    .map_err(ctx.git(format_args!("index entry for {}", rel.display())))?,
                None => {
                    let _ = index.remove(&rel, 0);
                }
            }
        }
        index.write().map_err(ctx.git("write the index"))?;
    }
    Ok(WorktreeUpdate::Updated {
        files: deltas.len(),
    })
}

/// Remove and write the changed files; the index entry each path gets (`None`: none).
fn write_files(
    repo: &Repository,
    ctx: Ctx<'_>,
    workdir: &Path,
    deltas: &[Delta],
) -> crate::Result<Vec<(PathBuf, Option<NewEntry>)>> {
    let mut entries = Vec::with_capacity(deltas.len());
    // Removals first, so that a file replacing a folder (or the reverse) finds its
    // place free.
    for d in deltas.iter().filter(|d| d.needs_removal()) {
        let file = workdir.join(&d.path);
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err(&file, e)),
        }
        // Git keeps no empty folders: remove the ones this left empty.
        let mut dir = file.parent();
        while let Some(parent) = dir {
            if parent == workdir || std::fs::remove_dir(parent).is_err() {
                break;
            }
            dir = parent.parent();
        }
        if d.after.is_none() {
            entries.push((d.path.clone(), None));
        }
    }
    for d in deltas {
        let Some((id, mode)) = d.after else {
            continue;
        };
        let file = workdir.join(&d.path);
        let blob = repo
            .find_blob(id)
            .map_err(ctx.git(format_args!("blob of {}", d.path.display())))?;
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io_err(parent, e))?;
        }
        write_file(&file, blob.content(), mode)?;
        let meta = std::fs::symlink_metadata(&file).map_err(|e| io_err(&file, e))?;
        entries.push((d.path.clone(), Some(NewEntry { id, mode, meta })));
    }
    Ok(entries)
}

/// The blobs that differ between two trees, by walking both side by side: subtrees
/// with the same id are skipped without being read, so only the folders along changed
/// paths are visited.
fn changed_paths(
    repo: &Repository,
    ctx: Ctx<'_>,
    old_tree: Option<Oid>,
    new_tree: Oid,
) -> crate::Result<Vec<Delta>> {
    let mut out = Vec::new();
    walk(repo, ctx, old_tree, Some(new_tree), Path::new(""), &mut out)?;
    Ok(out)
}

type Side = Option<(Oid, u32)>;

fn walk(
    repo: &Repository,
    ctx: Ctx<'_>,
    old: Option<Oid>,
    new: Option<Oid>,
    prefix: &Path,
    out: &mut Vec<Delta>,
) -> crate::Result<()> {
    let mut names: BTreeMap<Vec<u8>, (Side, Side)> = BTreeMap::new();
    for (tree, is_new) in [(old, false), (new, true)] {
        let Some(id) = tree else { continue };
        let tree = repo
            .find_tree(id)
            .map_err(ctx.git(format_args!("tree {}", prefix.display())))?;
        for entry in &tree {
            let side = Some((entry.id(), u32::try_from(entry.filemode()).unwrap_or(0)));
            let slot = names.entry(entry.name_bytes().to_vec()).or_default();
            if is_new {
                slot.1 = side;
            } else {
                slot.0 = side;
            }
        }
    }
    for (name, (before, after)) in names {
        if before == after {
            continue;
        }
        let path = prefix.join(bytes_path(&name));
        let tree_of = |s: Side| s.filter(|(_, m)| *m == TREE).map(|(id, _)| id);
        let blob_of = |s: Side| s.filter(|(_, m)| *m != TREE && *m != GITLINK);
        let (old_sub, new_sub) = (tree_of(before), tree_of(after));
        if old_sub.is_some() || new_sub.is_some() {
            walk(repo, ctx, old_sub, new_sub, &path, out)?;
        }
        let (before, after) = (blob_of(before), blob_of(after));
        if before != after {
            out.push(Delta {
                path,
                before,
                after,
            });
        }
    }
    Ok(())
}

/// A repository path from index or tree bytes.
fn bytes_path(bytes: &[u8]) -> PathBuf {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        PathBuf::from(std::ffi::OsStr::from_bytes(bytes))
    }
    #[cfg(not(unix))]
    {
        PathBuf::from(String::from_utf8_lossy(bytes).into_owned())
    }
}

/// The changed paths whose working-tree file or index entry differs from the old
/// commit.
fn local_changes(
    ctx: Ctx<'_>,
    staged: impl Fn(&Path) -> Option<Oid>,
    workdir: &Path,
    deltas: &[Delta],
) -> crate::Result<Vec<String>> {
    let mut in_the_way = Vec::new();
    for d in deltas {
        let before_id = d.before.map(|(id, _)| id);
        let staged = staged(&d.path);
        let file = workdir.join(&d.path);
        let on_disk = match std::fs::symlink_metadata(&file) {
            Ok(m) if m.is_file() => Some(
                Oid::hash_file(git2::ObjectType::Blob, &file)
                    .map_err(ctx.git(format_args!("hash {}", d.path.display())))?,
            ),
            Ok(m) if m.file_type().is_symlink() => {
                std::fs::read_link(&file).ok().and_then(|target| {
                    Oid::hash_object(
                        git2::ObjectType::Blob,
                        target.as_os_str().as_encoded_bytes(),
                    )
                    .ok()
                })
            }
            // A folder the update empties (its files are deleted by this same change)
            // is not in the way of a file replacing it.
            Ok(m) if m.is_dir() && before_id.is_none() && emptied(&d.path, deltas) => None,
            // A folder (or something else) where the old commit has a file or nothing.
            Ok(_) => Some(Oid::ZERO_SHA1),
            Err(_) => None,
        };
        if staged != before_id || on_disk != before_id {
            in_the_way.push(d.path.display().to_string());
        }
    }
    Ok(in_the_way)
}

/// Whether `dir` held files of the old tree that this update deletes.
fn emptied(dir: &Path, deltas: &[Delta]) -> bool {
    deltas.iter().any(|d| {
        d.before.is_some() && d.after.is_none() && d.path.starts_with(dir) && d.path != dir
    })
}

fn write_file(file: &Path, bytes: &[u8], mode: u32) -> crate::Result<()> {
    #[cfg(unix)]
    {
        if mode == SYMLINK {
            use std::os::unix::ffi::OsStrExt;
            let target = std::ffi::OsStr::from_bytes(bytes);
            return std::os::unix::fs::symlink(target, file).map_err(|e| io_err(file, e));
        }
    }
    std::fs::write(file, bytes).map_err(|e| io_err(file, e))?;
    #[cfg(not(unix))]
    let _ = mode;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let perm = if mode == EXECUTABLE { 0o755 } else { 0o644 };
        let current = std::fs::metadata(file)
            .map_err(|e| io_err(file, e))?
            .permissions();
        if current.mode() & 0o111 != perm & 0o111 {
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(perm))
                .map_err(|e| io_err(file, e))?;
        }
    }
    Ok(())
}

/// An index entry for a file just written, with its stat data so that `git status`
/// sees it as clean without hashing it.
#[cfg_attr(not(unix), allow(unused_mut, unused_variables))]
fn index_entry(path: &Path, id: Oid, mode: u32, meta: &std::fs::Metadata) -> git2::IndexEntry {
    let size = u32::try_from(meta.len()).unwrap_or(u32::MAX);
    let mut entry = git2::IndexEntry {
        ctime: git2::IndexTime::new(0, 0),
        mtime: git2::IndexTime::new(0, 0),
        dev: 0,
        ino: 0,
        mode,
        uid: 0,
        gid: 0,
        file_size: size,
        id,
        flags: 0,
        flags_extended: 0,
        path: path_bytes(path),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        // The index keeps 32-bit fields; Git truncates the same way.
        let low = |v: u64| u32::try_from(v & 0xFFFF_FFFF).unwrap_or(0);
        let secs = |v: i64| i32::try_from(v).unwrap_or(0);
        let nanos = |v: i64| u32::try_from(v).unwrap_or(0);
        entry.ctime = git2::IndexTime::new(secs(meta.ctime()), nanos(meta.ctime_nsec()));
        entry.mtime = git2::IndexTime::new(secs(meta.mtime()), nanos(meta.mtime_nsec()));
        entry.dev = low(meta.dev());
        entry.ino = low(meta.ino());
        entry.uid = meta.uid();
        entry.gid = meta.gid();
    }
    entry
}

/// A repository path as index bytes (`/`-separated).
fn path_bytes(path: &Path) -> Vec<u8> {
    let text = path.as_os_str().as_encoded_bytes().to_vec();
    if std::path::MAIN_SEPARATOR == '/' {
        text
    } else {
        text.into_iter()
            .map(|b| if b == b'\\' { b'/' } else { b })
            .collect()
    }
}

fn io_err(path: &Path, e: std::io::Error) -> crate::Error {
    crate::Error::unavailable(format!("{}: {e}", path.display())).with_source(e)
}
