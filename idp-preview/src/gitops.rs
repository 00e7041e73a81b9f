//! Preview environments as folders in the GitOps repository: [`GitOpsEnvironmentProvider`].
//!
//! A preview named `pr-cart-3f2a1c-42` is the folder `previews/pr-cart-3f2a1c-42/`
//! (the root is configurable) on the GitOps branch, holding:
//!
//! - `namespace.json`: the preview's `Namespace`, with our labels and the spec's;
//! - `idp-environment.json`: a `ConfigMap` named `idp-environment` whose
//!   `data["environment.json"]` is our record of the environment (name, owner, labels,
//!   TTL, creation and expiry times). It is a valid Kubernetes object, so a GitOps tool
//!   syncing the folder applies it harmlessly; it is also **the ownership mark**: a folder
//!   without it was not made by this provider and is never changed or deleted;
//! - optionally, outside the folder, an Argo CD `Application` or a Flux `Kustomization`
//!   pointing at it (`preview-apps/<name>.json` by default), for an app-of-apps or a
//!   parent Kustomization to pick up.
//!
//! The workloads themselves are written into the folder by a deployer; this provider only
//! makes the folder exist and go away.
//!
//! Every write is one commit built on the tip the provider read (compare-and-swap on
//! the branch): when another writer moved the branch, the provider re-reads and tries
//! again, so the ownership check always holds for the commit that lands. `ensure` with
//! nothing to change makes no commit. `destroy` removes the folder and the app manifest
//! in one commit. With [`push_to`](GitOpsEnvironmentProvider::push_to) the repository is a
//! local cache of a remote: reads fetch first and writes go through
//! [`GitRepo::commit_and_push`], which never loses another writer's commit but re-applies
//! the change on a remote tip that moved after the read (the ownership check is then as
//! old as that read); the remote branch must already exist.
//!
//! **Expiry.** With a TTL, `expiresAt` is `now + ttl` when the preview is created or when
//! `ensure` finds less than half of the TTL left, so an active preview keeps living
//! without a commit on every `ensure`; a reaper compares `expires_at` with the clock.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
//! use idp_core::git::{GitRepo, InitOptions};
//! use idp_core::model::EnvironmentSpec;
//! use idp_core::EnvironmentProvider;
//! use idp_preview::gitops::GitOpsEnvironmentProvider;
//!
//! let dir = tempfile::tempdir()?;
//! let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
//! let provider = GitOpsEnvironmentProvider::new(repo.clone(), "main");
//! let spec = EnvironmentSpec::new("pr-cart-42".parse()?)
//!     .with_label("idp.dev/pr", "42")
//!     .with_ttl(std::time::Duration::from_secs(3600));
//! let env = provider.ensure(&spec).await?;
//! assert_eq!(env.labels["idp.dev/pr"], "42");
//! assert!(env.expires_at.is_some());
//! assert!(repo.try_read_file("main", "previews/pr-cart-42/idp-environment.json").await?.is_some());
//! assert_eq!(provider.list().await?, vec![env]);
//! assert!(provider.destroy(&spec.name).await?);
//! assert!(provider.list().await?.is_empty());
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tracing::instrument;

use idp_core::git::{CommitRequest, GitRepo, Identity, ObjectId, RetryPolicy};
use idp_core::model::EnvironmentSpec;
use idp_core::{
    EntityRef, Environment, EnvironmentName, EnvironmentProvider, Error, ErrorKind, Result,
};

/// The file that marks a folder as ours and records the environment.
pub const METADATA_FILE: &str = "idp-environment.json";
/// The file holding the preview's `Namespace`.
pub const NAMESPACE_FILE: &str = "namespace.json";
/// The key of the record inside the metadata `ConfigMap`'s data.
pub const RECORD_KEY: &str = "environment.json";
/// The folder previews live in by default.
pub const DEFAULT_ROOT: &str = "previews";
/// The folder app manifests (Argo CD / Flux) go to by default.
pub const DEFAULT_APPS_DIR: &str = "preview-apps";

/// What we keep about an environment in its metadata file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    name: EnvironmentName,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<EntityRef>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl_seconds: Option<u64>,
    created_at: jiff::Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<jiff::Timestamp>,
}

/// An Argo CD `Application` per preview (`argoproj.io/v1alpha1`), syncing the preview's
/// folder into its namespace with automated sync, prune and self-heal, and
/// `CreateNamespace=true`. The resources finalizer makes Argo CD delete what it synced
/// when the Application goes.
///
/// ```
/// use idp_preview::gitops::ArgoCdApplication;
/// let app = ArgoCdApplication::new("https://git.example.com/platform/gitops.git");
/// assert_eq!(app.namespace, "argocd");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgoCdApplication {
    /// The GitOps repository's URL, as Argo CD knows it.
    pub repo_url: String,
    /// The Argo CD project (default `default`).
    pub project: String,
    /// The namespace Argo CD watches for Applications (default `argocd`).
    pub namespace: String,
    /// The destination cluster's API server (default `https://kubernetes.default.svc`).
    pub server: String,
}

impl ArgoCdApplication {
    /// Defaults for everything but the repository URL.
    ///
    /// ```
    /// let app = idp_preview::gitops::ArgoCdApplication::new("https://g/x.git");
    /// assert_eq!(app.server, "https://kubernetes.default.svc");
    /// ```
    pub fn new(repo_url: impl Into<String>) -> Self {
        Self {
            repo_url: repo_url.into(),
            project: "default".into(),
            namespace: "argocd".into(),
            server: "https://kubernetes.default.svc".into(),
        }
    }
}

/// A Flux `Kustomization` per preview (`kustomize.toolkit.fluxcd.io/v1`), applying the
/// preview's folder from a `GitRepository` source with pruning, into the preview's
/// namespace (the folder's `namespace.json` creates it).
///
/// ```
/// use idp_preview::gitops::FluxKustomization;
/// let k = FluxKustomization::new("gitops");
/// assert_eq!((k.namespace.as_str(), k.interval.as_str()), ("flux-system", "5m"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FluxKustomization {
    /// The name of the `GitRepository` source holding the GitOps repository.
    pub source_name: String,
    /// The namespace of the source and of the Kustomization (default `flux-system`).
    pub namespace: String,
    /// How often Flux reconciles (default `5m`).
    pub interval: String,
}

impl FluxKustomization {
    /// Defaults for everything but the source name.
    ///
    /// ```
    /// assert_eq!(idp_preview::gitops::FluxKustomization::new("gitops").source_name, "gitops");
    /// ```
    pub fn new(source_name: impl Into<String>) -> Self {
        Self {
            source_name: source_name.into(),
            namespace: "flux-system".into(),
            interval: "5m".into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AppKind {
    Argo(ArgoCdApplication),
    Flux(FluxKustomization),
}

type Clock = Arc<dyn Fn() -> jiff::Timestamp + Send + Sync>;

/// An [`EnvironmentProvider`] that keeps each environment as a folder in a GitOps
/// repository (see the [module docs](self) for the layout and guarantees).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
/// use idp_core::git::{GitRepo, Identity, InitOptions};
/// use idp_preview::gitops::{ArgoCdApplication, GitOpsEnvironmentProvider};
/// let dir = tempfile::tempdir()?;
/// let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
/// let provider = GitOpsEnvironmentProvider::new(repo, "main")
///     .root("envs/previews")
///     .author(Identity::new("preview bot", "previews@example.com"))
///     .argo_cd(ArgoCdApplication::new("https://git.example.com/platform/gitops.git"))
///     .url_template("https://{name}.preview.example.com");
/// assert_eq!(provider.folder(&"pr-1".parse()?), "envs/previews/pr-1");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct GitOpsEnvironmentProvider {
    repo: GitRepo,
    branch: String,
    root: String,
    apps_dir: String,
    remote: Option<String>,
    author: Identity,
    retry: RetryPolicy,
    app: Option<AppKind>,
    url_template: Option<String>,
    clock: Clock,
}

impl fmt::Debug for GitOpsEnvironmentProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GitOpsEnvironmentProvider")
            .field("repo", &self.repo.path())
            .field("branch", &self.branch)
            .field("root", &self.root)
            .field("apps_dir", &self.apps_dir)
            .field("remote", &self.remote)
            .field("app", &self.app)
            .finish_non_exhaustive()
    }
}

fn clean_dir(dir: &str) -> String {
    dir.trim().trim_matches('/').to_owned()
}

impl GitOpsEnvironmentProvider {
    /// A provider writing to `branch` of `repo` (a bare repository, or one whose working
    /// tree does not have `branch` checked out), folders under [`DEFAULT_ROOT`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let p = idp_preview::gitops::GitOpsEnvironmentProvider::new(repo, "main");
    /// assert_eq!(p.folder(&"pr-7".parse()?), "previews/pr-7");
    /// # Ok(()) }
    /// ```
    pub fn new(repo: GitRepo, branch: impl Into<String>) -> Self {
        Self {
            repo,
            branch: branch.into(),
            root: DEFAULT_ROOT.into(),
            apps_dir: DEFAULT_APPS_DIR.into(),
            remote: None,
            author: Identity::new("idp previews", "previews@idp.invalid"),
            retry: RetryPolicy::default(),
            app: None,
            url_template: None,
            clock: Arc::new(jiff::Timestamp::now),
        }
    }

    /// Put preview folders under `dir` instead of [`DEFAULT_ROOT`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let p = idp_preview::gitops::GitOpsEnvironmentProvider::new(repo, "main").root("/clusters/dev/previews/");
    /// assert_eq!(p.folder(&"pr-7".parse()?), "clusters/dev/previews/pr-7");
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn root(mut self, dir: &str) -> Self {
        self.root = clean_dir(dir);
        self
    }

    /// Put Argo CD / Flux manifests under `dir` instead of [`DEFAULT_APPS_DIR`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let p = idp_preview::gitops::GitOpsEnvironmentProvider::new(repo, "main").apps_dir("apps/previews");
    /// # let _ = p;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn apps_dir(mut self, dir: &str) -> Self {
        self.apps_dir = clean_dir(dir);
        self
    }

    /// Treat the repository as a local cache of `remote` (a URL or a configured remote
    /// name): fetch before reading, commit and push when writing.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let p = idp_preview::gitops::GitOpsEnvironmentProvider::new(repo, "main")
    ///     .push_to("https://git.example.com/platform/gitops.git");
    /// # let _ = p;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn push_to(mut self, remote: impl Into<String>) -> Self {
        self.remote = Some(remote.into());
        self
    }

    /// Commit as `author`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let p = idp_preview::gitops::GitOpsEnvironmentProvider::new(repo, "main")
    ///     .author(Identity::new("bot", "bot@example.com"));
    /// # let _ = p;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn author(mut self, author: Identity) -> Self {
        self.author = author;
        self
    }

    /// How often to retry when other writers keep moving the branch.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let p = idp_preview::gitops::GitOpsEnvironmentProvider::new(repo, "main").retry(RetryPolicy::no_retry());
    /// # let _ = p;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// Also write an Argo CD `Application` per preview.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// use idp_preview::gitops::{ArgoCdApplication, GitOpsEnvironmentProvider};
    /// let p = GitOpsEnvironmentProvider::new(repo, "main").argo_cd(ArgoCdApplication::new("https://g/x.git"));
    /// assert_eq!(p.app_file(&"pr-1".parse()?).as_deref(), Some("preview-apps/pr-1.json"));
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn argo_cd(mut self, app: ArgoCdApplication) -> Self {
        self.app = Some(AppKind::Argo(app));
        self
    }

    /// Also write a Flux `Kustomization` per preview.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// use idp_preview::gitops::{FluxKustomization, GitOpsEnvironmentProvider};
    /// let p = GitOpsEnvironmentProvider::new(repo, "main").flux(FluxKustomization::new("gitops"));
    /// assert!(p.app_file(&"pr-1".parse()?).is_some());
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn flux(mut self, kustomization: FluxKustomization) -> Self {
        self.app = Some(AppKind::Flux(kustomization));
        self
    }

    /// Report `url` for each environment: `{name}` in `template` becomes its name.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let p = idp_preview::gitops::GitOpsEnvironmentProvider::new(repo, "main")
    ///     .url_template("https://{name}.preview.example.com");
    /// # let _ = p;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn url_template(mut self, template: impl Into<String>) -> Self {
        self.url_template = Some(template.into());
        self
    }

    /// Use `clock` for creation and expiry times (tests use a fixed or stepping clock).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let p = idp_preview::gitops::GitOpsEnvironmentProvider::new(repo, "main")
    ///     .clock(|| jiff::Timestamp::UNIX_EPOCH);
    /// # let _ = p;
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn clock(mut self, clock: impl Fn() -> jiff::Timestamp + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// The folder of environment `name`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let p = idp_preview::gitops::GitOpsEnvironmentProvider::new(repo, "main");
    /// assert_eq!(p.folder(&"pr-9".parse()?), "previews/pr-9");
    /// # Ok(()) }
    /// ```
    pub fn folder(&self, name: &EnvironmentName) -> String {
        join(&self.root, name.as_str())
    }

    /// The app manifest file of environment `name`, when an Argo CD or Flux manifest is
    /// configured.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::git::*;
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let p = idp_preview::gitops::GitOpsEnvironmentProvider::new(repo, "main");
    /// assert_eq!(p.app_file(&"pr-9".parse()?), None);
    /// # Ok(()) }
    /// ```
    pub fn app_file(&self, name: &EnvironmentName) -> Option<String> {
        self.app
            .as_ref()
            .map(|_| join(&self.apps_dir, &format!("{name}.json")))
    }

    /// The ref reads go to: the branch, or the fetched copy of the remote's branch.
    fn read_ref(&self) -> String {
        if self.remote.is_some() {
            format!("refs/idp/fetched/{}", self.branch)
        } else {
            self.branch.clone()
        }
    }

    /// Fetch the remote branch (remote mode) and return the tip to read, `None` when
    /// the branch does not exist yet.
    async fn tip(&self) -> Result<Option<ObjectId>> {
        if let Some(remote) = &self.remote {
            let spec = format!("+refs/heads/{}:{}", self.branch, self.read_ref());
            self.repo.fetch(remote, &[spec.as_str()]).await?;
        }
        match self.repo.resolve(&self.read_ref()).await {
            Ok(id) => Ok(Some(id)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The folder's state at `tip`: absent, foreign (no metadata file), or ours.
    async fn folder_state(&self, tip: ObjectId, name: &EnvironmentName) -> Result<FolderState> {
        let rev = tip.to_hex();
        let folder = self.folder(name);
        let meta = join(&folder, METADATA_FILE);
        match self.repo.try_read_file(&rev, &meta).await? {
            Some(bytes) => Ok(FolderState::Ours(Box::new(parse_metadata(&bytes, &meta)?))),
            None => match self.repo.list_dir(&rev, &folder).await {
                Ok(_) => Ok(FolderState::Foreign),
                Err(e) if e.kind() == ErrorKind::NotFound => Ok(FolderState::Absent),
                // A file where the folder should be: not ours either.
                Err(e) if e.kind() == ErrorKind::InvalidInput => Ok(FolderState::Foreign),
                Err(e) => Err(e),
            },
        }
    }

    fn foreign(&self, name: &EnvironmentName) -> Error {
        Error::conflict(format!(
            "{} exists in the GitOps repository but has no {METADATA_FILE}: it was not created by this provider, so it is left alone; pick another environment name or remove the folder by hand",
            self.folder(name)
        ))
    }

    /// Make one commit on top of `tip` (or push it, in remote mode). `Ok(None)` when the
    /// branch moved and the caller should re-read.
    async fn write(&self, tip: Option<ObjectId>, req: CommitRequest) -> Result<Option<bool>> {
        if let Some(remote) = &self.remote {
            let out = self.repo.commit_and_push(remote, req, &self.retry).await?;
            return Ok(Some(out.created));
        }
        let req = match tip {
            Some(parent) => req.parent(parent),
            None => req.unborn(),
        };
        match self.repo.commit(req).await {
            Ok(out) => Ok(Some(out.created)),
            Err(e) if e.kind() == ErrorKind::Conflict => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn environment(&self, record: &Record) -> Environment {
        let mut env = Environment::new(record.name.clone());
        env.namespace = Some(record.name.to_string());
        env.owner.clone_from(&record.owner);
        env.labels.clone_from(&record.labels);
        env.created_at = Some(record.created_at);
        env.expires_at = record.expires_at;
        env.url = self
            .url_template
            .as_ref()
            .map(|t| t.replace("{name}", record.name.as_str()));
        env
    }

    /// The record `ensure` should leave, given what is there now.
    fn next_record(&self, spec: &EnvironmentSpec, existing: Option<&Record>) -> Result<Record> {
        let now = (self.clock)();
        let ttl_seconds = spec.ttl.map(|d| d.as_secs().max(1));
        let expires_at = match ttl_seconds {
            None => None,
            Some(secs) => {
                let fresh = now
                    .checked_add(jiff::SignedDuration::from_secs(
                        i64::try_from(secs).unwrap_or(i64::MAX),
                    ))
                    .map_err(|e| {
                        Error::invalid_input(format!(
                            "the TTL of {} ({secs}s) is too large: {e}",
                            spec.name
                        ))
                    })?;
                let keep = existing.and_then(|r| {
                    let old = r.expires_at?;
                    let left = now.duration_until(old);
                    let half = jiff::SignedDuration::from_secs(
                        i64::try_from(secs / 2).unwrap_or(i64::MAX),
                    );
                    (r.ttl_seconds == ttl_seconds && left >= half).then_some(old)
                });
                Some(keep.unwrap_or(fresh))
            }
        };
        Ok(Record {
            name: spec.name.clone(),
            owner: spec.owner.clone(),
            labels: spec.labels.clone(),
            ttl_seconds,
            created_at: existing.map_or(now, |r| r.created_at),
            expires_at,
        })
    }

    fn files(&self, record: &Record) -> Result<Vec<(String, Vec<u8>)>> {
        let folder = self.folder(&record.name);
        let name = record.name.as_str();
        // Every label is kept in the record; only valid Kubernetes labels go on objects
        // (a value like `acme/cart` would make the manifests fail to apply).
        let mut labels: BTreeMap<String, String> = record
            .labels
            .iter()
            .filter(|(k, v)| {
                let ok = is_label_key(k) && is_label_value(v);
                if !ok {
                    tracing::debug!(key = %k, value = %v, "not a valid Kubernetes label; kept in the record only");
                }
                ok
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        labels.insert("app.kubernetes.io/managed-by".into(), "idp".into());
        labels.insert("idp.dev/environment".into(), name.into());
        let record_json = serde_json::to_string(record)
            .map_err(|e| Error::internal(format!("cannot serialise environment record: {e}")))?;
        let mut annotations = BTreeMap::new();
        if let Some(at) = record.expires_at {
            annotations.insert("idp.dev/expires-at".to_owned(), at.to_string());
        }
        if let Some(owner) = &record.owner {
            annotations.insert("idp.dev/owner".to_owned(), owner.to_string());
        }
        let metadata = json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "idp-environment",
                "namespace": name,
                "labels": labels,
                "annotations": annotations,
            },
            "data": { RECORD_KEY: record_json },
        });
        let namespace = json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": { "name": name, "labels": labels, "annotations": annotations },
        });
        let mut files = vec![
            (join(&folder, METADATA_FILE), pretty(&metadata)?),
            (join(&folder, NAMESPACE_FILE), pretty(&namespace)?),
        ];
        if let (Some(app), Some(path)) = (&self.app, self.app_file(&record.name)) {
            files.push((
                path,
                pretty(&self.app_manifest(app, &folder, name, &labels))?,
            ));
        }
        Ok(files)
    }

    fn app_manifest(
        &self,
        app: &AppKind,
        folder: &str,
        name: &str,
        labels: &BTreeMap<String, String>,
    ) -> Value {
        match app {
            AppKind::Argo(a) => json!({
                "apiVersion": "argoproj.io/v1alpha1",
                "kind": "Application",
                "metadata": {
                    "name": name,
                    "namespace": a.namespace,
                    "labels": labels,
                    "finalizers": ["resources-finalizer.argocd.argoproj.io"],
                },
                "spec": {
                    "project": a.project,
                    "source": { "repoURL": a.repo_url, "targetRevision": self.branch, "path": folder },
                    "destination": { "server": a.server, "namespace": name },
                    "syncPolicy": {
                        "automated": { "prune": true, "selfHeal": true },
                        "syncOptions": ["CreateNamespace=true"],
                    },
                },
            }),
            AppKind::Flux(f) => json!({
                "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
                "kind": "Kustomization",
                "metadata": { "name": name, "namespace": f.namespace, "labels": labels },
                "spec": {
                    "interval": f.interval,
                    "path": format!("./{folder}"),
                    "prune": true,
                    "targetNamespace": name,
                    "sourceRef": { "kind": "GitRepository", "name": f.source_name },
                },
            }),
        }
    }

    async fn list_at(&self, tip: ObjectId) -> Result<Vec<Environment>> {
        let rev = tip.to_hex();
        let entries = match self.repo.list_dir(&rev, &self.root).await {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for entry in entries {
            if entry.kind != idp_core::git::EntryKind::Dir {
                continue;
            }
            let meta = join(&entry.path, METADATA_FILE);
            let Some(bytes) = self.repo.try_read_file(&rev, &meta).await? else {
                continue; // not ours
            };
            match parse_metadata(&bytes, &meta) {
                Ok(record) if record.name.as_str() == entry.name => {
                    out.push(self.environment(&record));
                }
                Ok(record) => {
                    tracing::warn!(
                        folder = %entry.path,
                        recorded = %record.name,
                        "skipping a preview folder whose record names another environment"
                    );
                }
                Err(e) => {
                    tracing::warn!(
                        folder = %entry.path,
                        error = %e,
                        "skipping an unreadable preview record"
                    );
                }
            }
        }
        Ok(out)
    }
}

enum FolderState {
    Absent,
    Foreign,
    Ours(Box<Record>),
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// A Kubernetes label value: empty, or at most 63 characters of `[A-Za-z0-9._-]`
/// starting and ending with an alphanumeric.
fn is_label_value(v: &str) -> bool {
    v.is_empty()
        || (v.len() <= 63
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            && v.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
            && v.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric()))
}

/// A Kubernetes label key: an optional DNS-subdomain prefix and `/`, then a non-empty
/// name with the value rules.
fn is_label_key(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    !name.is_empty()
        && is_label_value(name)
        && prefix.is_none_or(|p| idp_core::DnsSubdomain::new(p).is_ok())
}

fn pretty(value: &Value) -> Result<Vec<u8>> {
    let mut bytes = serde_json::to_vec_pretty(value)
        .map_err(|e| Error::internal(format!("cannot serialise manifest: {e}")))?;
    bytes.push(b'\n');
    Ok(bytes)
}

fn parse_metadata(bytes: &[u8], path: &str) -> Result<Record> {
    let bad = |why: String| {
        Error::invalid_input(format!(
            "{path}: not a valid preview record ({why}); fix or remove the file"
        ))
    };
    let value: Value = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    let text = value
        .pointer(&format!(
            "/data/{}",
            RECORD_KEY.replace('~', "~0").replace('/', "~1")
        ))
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("data.{RECORD_KEY} is missing")))?;
    serde_json::from_str(text).map_err(|e| bad(e.to_string()))
}

#[async_trait]
impl EnvironmentProvider for GitOpsEnvironmentProvider {
    #[instrument(skip_all, fields(env = %spec.name, branch = %self.branch))]
    async fn ensure(&self, spec: &EnvironmentSpec) -> Result<Environment> {
        for _ in 0..self.retry.max_attempts() {
            let tip = self.tip().await?;
            let existing = match tip {
                None => None,
                Some(tip) => match self.folder_state(tip, &spec.name).await? {
                    FolderState::Absent => None,
                    FolderState::Foreign => return Err(self.foreign(&spec.name)),
                    FolderState::Ours(record) => Some(*record),
                },
            };
            let record = self.next_record(spec, existing.as_ref())?;
            let verb = if existing.is_some() {
                "update"
            } else {
                "create"
            };
            let mut req = CommitRequest::new(
                self.branch.clone(),
                format!("preview: {verb} {}", spec.name),
                self.author.clone(),
            )
            .trailer("Environment", spec.name.as_str());
            for (path, bytes) in self.files(&record)? {
                req = req.put(path, bytes);
            }
            if let Some(created) = self.write(tip, req).await? {
                tracing::info!(created, "preview folder ensured");
                return Ok(self.environment(&record));
            }
        }
        Err(Error::conflict(format!(
            "ensure {}: gave up after {} attempts because other writers kept moving {}",
            spec.name,
            self.retry.max_attempts(),
            self.branch
        )))
    }

    #[instrument(skip_all, fields(env = %name, branch = %self.branch))]
    async fn destroy(&self, name: &EnvironmentName) -> Result<bool> {
        for _ in 0..self.retry.max_attempts() {
            let Some(tip) = self.tip().await? else {
                return Ok(false);
            };
            match self.folder_state(tip, name).await? {
                FolderState::Absent => return Ok(false),
                FolderState::Foreign => return Err(self.foreign(name)),
                FolderState::Ours(_) => {}
            }
            let mut req = CommitRequest::new(
                self.branch.clone(),
                format!("preview: destroy {name}"),
                self.author.clone(),
            )
            .trailer("Environment", name.as_str())
            .delete_tree(self.folder(name));
            if let Some(app) = self.app_file(name) {
                req = req.delete(app);
            }
            if self.write(Some(tip), req).await?.is_some() {
                tracing::info!("preview folder removed");
                return Ok(true);
            }
        }
        Err(Error::conflict(format!(
            "destroy {name}: gave up after {} attempts because other writers kept moving {}",
            self.retry.max_attempts(),
            self.branch
        )))
    }

    #[instrument(skip_all, fields(branch = %self.branch, root = %self.root))]
    async fn list(&self) -> Result<Vec<Environment>> {
        match self.tip().await? {
            None => Ok(Vec::new()),
            Some(tip) => self.list_at(tip).await,
        }
    }
}
