//! The task workspace: a folder every action reads and writes through, with each path
//! confined to it.
//!
//! A relative path is accepted only when it is relative, has no `..` component, and does
//! not pass through a symbolic link (checked on every component that exists, and again
//! on the canonical parent right before writing). Files are written without following a
//! symlink at the destination.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use idp_core::{Error, Result};

/// A folder whose paths cannot escape it.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let ws = idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap();
/// ws.write("src/main.rs", b"fn main() {}\n").unwrap();
/// assert_eq!(ws.read("src/main.rs").unwrap(), b"fn main() {}\n");
/// assert!(ws.write("../escape.txt", b"x").is_err());
/// assert!(ws.write("/etc/passwd", b"x").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct Workspace {
    root: PathBuf,
}

/// Check that `rel` is a plain relative path and return its normal components.
fn lexical(rel: &str) -> Result<Vec<String>> {
    if rel.contains('\0') {
        return Err(Error::invalid_input(format!(
            "path {rel:?} contains a NUL byte"
        )));
    }
    let path = Path::new(rel);
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => {
                return Err(Error::new(
                    idp_core::ErrorKind::Denied,
                    format!("path {rel:?} leaves the workspace: `..` is not allowed"),
                ));
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(Error::new(
                    idp_core::ErrorKind::Denied,
                    format!(
                        "path {rel:?} is absolute: only paths inside the workspace are allowed"
                    ),
                ));
            }
        }
    }
    Ok(parts)
}

impl Workspace {
    /// Use `root` (created if missing) as a workspace.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let ws = idp_catalog::scaffolder::Workspace::new(dir.path().join("ws")).unwrap();
    /// assert!(ws.root().is_dir());
    /// ```
    pub fn new(root: impl AsRef<Path>) -> Result<Self> {
        let root = root.as_ref();
        std::fs::create_dir_all(root).map_err(|e| {
            Error::unavailable(format!("cannot create workspace {}: {e}", root.display()))
        })?;
        let root = root.canonicalize().map_err(|e| {
            Error::unavailable(format!("cannot resolve workspace {}: {e}", root.display()))
        })?;
        Ok(Self { root })
    }

    /// The workspace folder (canonical).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ws = idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap();
    /// assert!(ws.root().is_absolute());
    /// ```
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of `rel`, refusing `..`, absolute paths and paths through a
    /// symbolic link. `""` and `"."` are the root.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ws = idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap();
    /// assert_eq!(ws.resolve("./a/b.txt").unwrap(), ws.root().join("a/b.txt"));
    /// assert!(ws.resolve("a/../../b").is_err());
    /// ```
    pub fn resolve(&self, rel: &str) -> Result<PathBuf> {
        let parts = lexical(rel)?;
        let mut path = self.root.clone();
        for part in &parts {
            path.push(part);
            match std::fs::symlink_metadata(&path) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(Error::new(
                        idp_core::ErrorKind::Denied,
                        format!(
                            "path {rel:?} goes through the symbolic link {}; links are not followed in the workspace",
                            path.strip_prefix(&self.root).unwrap_or(&path).display()
                        ),
                    ));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let mut full = self.root.clone();
        full.extend(&parts);
        Ok(full)
    }

    /// Check that the deepest existing ancestor of `path` is inside the root.
    fn check_parent(&self, path: &Path, rel: &str) -> Result<()> {
        let mut existing = path.parent();
        while let Some(p) = existing {
            if p.exists() {
                let canon = p.canonicalize().map_err(|e| {
                    Error::unavailable(format!("cannot resolve {}: {e}", p.display()))
                })?;
                if !canon.starts_with(&self.root) {
                    return Err(Error::new(
                        idp_core::ErrorKind::Denied,
                        format!("path {rel:?} resolves outside the workspace"),
                    ));
                }
                return Ok(());
            }
            existing = p.parent();
        }
        Ok(())
    }

    /// Write a file (creating folders); never follows a symlink at the destination.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ws = idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap();
    /// ws.write("a/b/c.txt", "hi").unwrap();
    /// assert!(ws.root().join("a/b/c.txt").is_file());
    /// ```
    pub fn write(&self, rel: &str, bytes: impl AsRef<[u8]>) -> Result<()> {
        let path = self.resolve(rel)?;
        if path == self.root {
            return Err(Error::invalid_input(format!(
                "cannot write a file at {rel:?}: that is the workspace folder"
            )));
        }
        self.check_parent(&path, rel)?;
        if let Some(parent) = path.parent()
            && !parent.is_dir()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::unavailable(format!("cannot create folder for {rel}: {e}")))?;
            // Re-check after creating folders (a concurrent writer could have swapped one).
            self.check_parent(&path, rel)?;
        }
        if let Ok(meta) = std::fs::symlink_metadata(&path) {
            if meta.file_type().is_symlink() {
                return Err(Error::new(
                    idp_core::ErrorKind::Denied,
                    format!("refusing to write {rel:?}: it is a symbolic link"),
                ));
            }
            if meta.is_dir() {
                return Err(Error::invalid_input(format!(
                    "cannot write file {rel:?}: a folder of that name exists"
                )));
            }
        }
        std::fs::write(&path, bytes)
            .map_err(|e| Error::unavailable(format!("cannot write {rel}: {e}")))
    }

    /// Create a folder (and its parents).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ws = idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap();
    /// ws.create_dir("docs/adr").unwrap();
    /// assert!(ws.root().join("docs/adr").is_dir());
    /// ```
    pub fn create_dir(&self, rel: &str) -> Result<()> {
        let path = self.resolve(rel)?;
        self.check_parent(&path, rel)?;
        std::fs::create_dir_all(&path)
            .map_err(|e| Error::unavailable(format!("cannot create folder {rel}: {e}")))
    }

    /// Read a file.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ws = idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap();
    /// assert_eq!(ws.read("missing").unwrap_err().kind(), idp_core::ErrorKind::NotFound);
    /// ```
    pub fn read(&self, rel: &str) -> Result<Vec<u8>> {
        let path = self.resolve(rel)?;
        std::fs::read(&path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                Error::not_found(format!("{rel} does not exist in the workspace"))
            } else {
                Error::unavailable(format!("cannot read {rel}: {e}"))
            }
        })
    }

    /// Whether `rel` exists (a symlink counts, without following it).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ws = idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap();
    /// assert!(!ws.exists("x"));
    /// ```
    pub fn exists(&self, rel: &str) -> bool {
        lexical(rel).is_ok_and(|parts| {
            let mut p = self.root.clone();
            p.extend(parts);
            std::fs::symlink_metadata(p).is_ok()
        })
    }

    /// Remove a file or folder (a symlink is removed, not followed); `Ok(false)` when
    /// nothing was there.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ws = idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap();
    /// ws.write("a.txt", "x").unwrap();
    /// assert!(ws.remove("a.txt").unwrap());
    /// assert!(!ws.remove("a.txt").unwrap());
    /// ```
    pub fn remove(&self, rel: &str) -> Result<bool> {
        let parts = lexical(rel)?;
        if parts.is_empty() {
            return Err(Error::invalid_input("cannot remove the workspace itself"));
        }
        // Every component but the last must be a real folder inside the root.
        let parent_rel = parts[..parts.len() - 1].join("/");
        let parent = self.resolve(&parent_rel)?;
        let path = parent.join(&parts[parts.len() - 1]);
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            return Ok(false);
        };
        let res = if meta.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        res.map(|()| true)
            .map_err(|e| Error::unavailable(format!("cannot delete {rel}: {e}")))
    }

    /// Move a file or folder inside the workspace.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ws = idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap();
    /// ws.write("a.txt", "x").unwrap();
    /// ws.rename("a.txt", "b/c.txt", false).unwrap();
    /// assert!(ws.exists("b/c.txt") && !ws.exists("a.txt"));
    /// ```
    pub fn rename(&self, from: &str, to: &str, overwrite: bool) -> Result<()> {
        let src = self.resolve(from)?;
        let dst = self.resolve(to)?;
        if std::fs::symlink_metadata(&src).is_err() {
            return Err(Error::not_found(format!(
                "cannot rename {from}: it does not exist in the workspace"
            )));
        }
        if std::fs::symlink_metadata(&dst).is_ok() && !overwrite {
            return Err(Error::already_exists(format!(
                "cannot rename {from} to {to}: {to} exists (set `overwrite: true` to replace it)"
            )));
        }
        self.check_parent(&dst, to)?;
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::unavailable(format!("cannot create folder for {to}: {e}")))?;
        }
        if overwrite && dst.is_dir() {
            let _ = std::fs::remove_dir_all(&dst);
        }
        std::fs::rename(&src, &dst)
            .map_err(|e| Error::unavailable(format!("cannot rename {from} to {to}: {e}")))
    }

    /// Every regular file under `rel` (`""` for all), by path relative to `rel` with `/`
    /// separators. Symbolic links are skipped, never followed.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ws = idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap();
    /// ws.write("b/x.txt", "1").unwrap();
    /// ws.write("a.txt", "2").unwrap();
    /// let files = ws.files("").unwrap();
    /// assert_eq!(files.keys().collect::<Vec<_>>(), ["a.txt", "b/x.txt"]);
    /// ```
    pub fn files(&self, rel: &str) -> Result<BTreeMap<String, Vec<u8>>> {
        let base = self.resolve(rel)?;
        let mut out = BTreeMap::new();
        if base.is_file() {
            let name = base
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = std::fs::read(&base)
                .map_err(|e| Error::unavailable(format!("cannot read {rel}: {e}")))?;
            out.insert(name, bytes);
            return Ok(out);
        }
        walk(&base, "", &mut |path, rel_path, kind| {
            if kind == EntryKind::File {
                let bytes = std::fs::read(path).map_err(|e| {
                    Error::unavailable(format!("cannot read {}: {e}", path.display()))
                })?;
                out.insert(rel_path.to_owned(), bytes);
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// What a walked entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    File,
    Dir,
    Symlink,
}

/// Walk `dir` depth-first in name order without following links, calling `f(path,
/// relative path, kind)` for every entry below it.
pub(crate) fn walk(
    dir: &Path,
    prefix: &str,
    f: &mut dyn FnMut(&Path, &str, EntryKind) -> Result<()>,
) -> Result<()> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    let mut entries: Vec<_> = read.filter_map(std::result::Result::ok).collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let path = entry.path();
        let ft = entry
            .file_type()
            .map_err(|e| Error::unavailable(format!("cannot stat {}: {e}", path.display())))?;
        if ft.is_symlink() {
            f(&path, &rel, EntryKind::Symlink)?;
        } else if ft.is_dir() {
            f(&path, &rel, EntryKind::Dir)?;
            walk(&path, &rel, f)?;
        } else {
            f(&path, &rel, EntryKind::File)?;
        }
    }
    Ok(())
}

/// Resolve a `fetch:*` URL against the template folder: relative paths (and
/// `file://` URLs) that stay inside `base`. Remote URLs are not fetched.
pub(crate) fn resolve_source(base: Option<&Path>, url: &str) -> Result<PathBuf> {
    if url.contains("://") && !url.starts_with("file://") {
        return Err(Error::invalid_input(format!(
            "cannot fetch {url:?}: only paths relative to the template are supported (register a custom fetch action for remote URLs)"
        )));
    }
    let base = base.ok_or_else(|| {
        Error::invalid_input(format!(
            "cannot fetch {url:?}: the template has no base folder (load it from a file or call Template::with_base_dir)"
        ))
    })?;
    let base = base
        .canonicalize()
        .map_err(|e| Error::not_found(format!("template folder {}: {e}", base.display())))?;
    let rel = url.strip_prefix("file://").unwrap_or(url);
    let parts = lexical(rel).map_err(|e| {
        e.context(format!(
            "fetch URL {url:?} must stay inside the template folder"
        ))
    })?;
    let mut path = base.clone();
    path.extend(parts);
    let canon = path
        .canonicalize()
        .map_err(|e| Error::not_found(format!("cannot fetch {url:?} ({}): {e}", path.display())))?;
    if !canon.starts_with(&base) {
        return Err(Error::new(
            idp_core::ErrorKind::Denied,
            format!("fetch URL {url:?} resolves outside the template folder"),
        ));
    }
    Ok(canon)
}
