//! Where a reconciler reads from: a branch and folder of a Git repository
//! ([`GitSource`]), fetched into a local bare mirror and checked out per revision.

use std::path::{Path, PathBuf};

use idp_core::git::{GitRepo, InitOptions};
use idp_core::{Error, ErrorKind, Result};

/// A Git repository URL (or local path), a branch and a folder in it.
///
/// ```
/// let s = idp_deploy::reconcile::GitSource::new("https://git.example/shop/deploy.git", "main", "envs/prod");
/// assert_eq!(s.path, "envs/prod");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GitSource {
    /// `file://`, `https://` or `ssh://` URL, or a local path.
    pub url: String,
    /// The branch to follow.
    pub branch: String,
    /// The folder within the repository (`""` or `"."` for the root).
    pub path: String,
}

impl GitSource {
    /// A source following `branch` of `url` at folder `path`.
    ///
    /// ```
    /// let s = idp_deploy::reconcile::GitSource::new("/srv/git/deploy.git", "main", ".");
    /// assert_eq!(s.branch, "main");
    /// ```
    pub fn new(url: impl Into<String>, branch: impl Into<String>, path: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            branch: branch.into(),
            path: path.into(),
        }
    }

    /// The folder as a repository path without leading/trailing slashes (`""` = root).
    pub(crate) fn dir(&self) -> String {
        let trimmed = self.path.trim_matches('/');
        if trimmed == "." {
            String::new()
        } else {
            trimmed.trim_start_matches("./").to_owned()
        }
    }

    /// The URL git understands: local paths become absolute `file://` URLs.
    pub(crate) fn fetch_url(&self) -> String {
        let url = &self.url;
        if url.contains("://") || (url.contains('@') && url.contains(':')) {
            return url.clone();
        }
        let path = Path::new(url);
        let absolute = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        format!("file://{}", absolute.display())
    }
}

/// A local bare mirror of a [`GitSource`].
#[derive(Debug, Clone)]
pub(crate) struct Mirror {
    source: GitSource,
    dir: PathBuf,
}

impl Mirror {
    pub(crate) fn new(source: GitSource, workdir: &Path) -> Self {
        Self {
            source,
            dir: workdir.to_path_buf(),
        }
    }

    async fn repo(&self) -> Result<GitRepo> {
        let path = self.dir.join("mirror.git");
        if path.join("HEAD").exists() {
            GitRepo::open(&path).await
        } else {
            GitRepo::init(&path, InitOptions::bare(self.source.branch.clone())).await
        }
    }

    /// Fetch the branch; returns the commit it points at (full SHA).
    #[tracing::instrument(name = "reconcile.fetch", skip_all, fields(url = %self.source.url, branch = %self.source.branch))]
    pub(crate) async fn fetch(&self) -> Result<String> {
        let repo = self.repo().await?;
        let branch = &self.source.branch;
        let spec = format!("+refs/heads/{branch}:refs/heads/{branch}");
        repo.fetch(&self.source.fetch_url(), &[spec.as_str()])
            .await
            .map_err(|e| e.context(format_args!("fetch branch {branch} of {}", self.source.url)))?;
        let id = repo
            .resolve(&format!("refs/heads/{branch}"))
            .await
            .map_err(|e| {
                e.context(format_args!(
                    "branch {branch} of {} (does the branch exist?)",
                    self.source.url
                ))
            })?;
        Ok(id.to_hex())
    }

    /// Write the source folder at `revision` into a fresh directory under the workdir;
    /// returns the folder to render.
    #[tracing::instrument(name = "reconcile.checkout", skip_all, fields(revision = %revision))]
    pub(crate) async fn checkout(&self, revision: &str) -> Result<PathBuf> {
        let repo = self.repo().await?;
        let dir = self.source.dir();
        let files = repo.read_tree(revision, &dir).await.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                Error::not_found(format!(
                    "folder {:?} does not exist at revision {revision} of {}; check the source path",
                    self.source.path, self.source.url
                ))
                .with_source(e)
            } else {
                e
            }
        })?;
        let root = self.dir.join("checkout");
        let revision = revision.to_owned();
        let out = tokio::task::spawn_blocking(move || -> Result<PathBuf> {
            if root.exists() {
                std::fs::remove_dir_all(&root)?;
            }
            let base = root.join(&revision);
            std::fs::create_dir_all(&base)?;
            for (path, bytes) in files {
                let target = base.join(&path);
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&target, bytes)?;
            }
            Ok(if dir.is_empty() { base } else { base.join(dir) })
        })
        .await
        .map_err(|e| Error::internal("checkout task failed").with_source(e))??;
        Ok(out)
    }
}
