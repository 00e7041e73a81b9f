//! GitOps deployment: a release is a commit in a Git repository that a cluster-side agent
//! (our reconciler, Argo CD, Flux) applies. Merging is deploying; history is `git log`.
//!
//! Start with [`GitOpsDeployer::new`] on a [`GitRepo`]. It implements idp-core's
//! [`Deployer`] port:
//!
//! - **deploy** writes the release's objects into the component's folder (by default
//!   `envs/<env>/<component>/`, see [`Layout`]), one canonical YAML file per object
//!   ([`manifest_files`]) and nothing else, replacing the folder's previous content
//!   exactly, in **one commit** with structured [`trailers`] (`Release-Id`, `Component`,
//!   `Environment`, `Source-Revision`, `Source-Committed-At`, `Author`). A release
//!   identical to what the folder holds makes no commit.
//! - **history** is `git log` filtered by those trailers, newest first
//!   ([`ReleaseRecord`]); no database.
//! - **rollback** makes a commit whose folder is byte for byte the target release's
//!   (`Rollback-Of` / `Rollback-To` trailers); the releases it undoes show as
//!   `RolledBack`.
//! - [`promote`](GitOpsDeployer::promote) copies the current release of one environment
//!   to another (`Promoted-From`).
//!
//! With a [`remote`](GitOpsDeployer::remote) every write is committed on top of the
//! remote branch and pushed; when another writer pushed first, the change is re-applied
//! on their commit and pushed again, so no writer's commit is ever lost.
//!
//! Commits are built in the object database by editing only the trees on the path to the
//! component's folder (see `idp_core::git`), so their cost does not grow with the size of
//! the repository. A non-bare repository with the branch checked out has its working
//! tree and index brought along incrementally after each commit
//! ([`CommitRequest::update_worktree`](idp_core::git::CommitRequest::update_worktree)):
//! only the files the commit changed are written or removed and only their index
//! entries replaced, so `git status` stays clean and the cost follows the change, not
//! the repository. Nothing a person left there is overwritten: files and folders
//! elsewhere (untracked, ignored or edited) are never read or written, and when a
//! changed path itself has local changes (an edited or deleted file, an untracked file
//! where a new one goes, another version staged) the working tree and index are left
//! exactly as they were, the commit is made all the same, and
//! [`GitOpsOutcome::worktree_warning`] says which paths were in the way. For
//! machine-written state a bare repository or a dedicated clone is the better home.
//!
//! Teams that already run Argo CD or Flux can have the hand-over objects generated and
//! committed next to each release ([`Handover`]).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
//! use idp_core::git::{GitRepo, InitOptions};
//! use idp_core::{Deployer, ManifestSet, Release};
//! use idp_deploy::gitops::GitOpsDeployer;
//!
//! let dir = tempfile::tempdir()?;
//! let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
//! let deployer = GitOpsDeployer::new(repo.clone());
//! let manifests = ManifestSet::parse(b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cart}\ndata: {v: '1'}\n", None)?;
//! let release = Release::new("component:default/cart".parse()?, "prod".parse()?, manifests)
//!     .with_source_revision("3f2c1a9");
//! let deployment = deployer.deploy(&release).await?;
//! assert!(repo.read_file("main", "envs/prod/cart/configmap-cart.yaml").await?.starts_with(b"apiVersion: v1"));
//! let log = repo.log("main", &Default::default()).await?;
//! assert_eq!(log[0].trailer("Release-Id"), Some(deployment.id.as_str()));
//! # Ok(()) }
//! ```

mod files;
mod handover;
mod layout;
mod record;

use std::collections::BTreeMap;

use async_trait::async_trait;
use idp_core::ManifestSet;
use idp_core::git::{CommitOutcome, CommitRequest, GitRepo, Identity, LogOptions, RetryPolicy};
use idp_core::ports::HistoryQuery;
use idp_core::{
    Deployer, Deployment, DeploymentId, DeploymentStatus, EntityRef, EnvironmentName, Error,
    ErrorKind, Release, Result,
};
use tracing::instrument;

use crate::cost::{self, CostReport, PriceSheet};

pub use files::{manifest_files, object_yaml};
pub use handover::{ArgoCdOptions, FluxOptions, Handover, argo_cd_application, flux_objects};
pub use layout::Layout;
pub use record::{ReleaseRecord, trailers};

/// What a GitOps write did: the release record it made (or the current one when nothing
/// changed), whether a commit was made, and a sentence saying so.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
/// # use idp_core::{git::{GitRepo, InitOptions}, ManifestSet, Release};
/// # let dir = tempfile::tempdir()?;
/// let deployer = idp_deploy::gitops::GitOpsDeployer::new(GitRepo::init(dir.path(), InitOptions::bare("main")).await?);
/// let release = Release::new("component:default/cart".parse()?, "dev".parse()?, ManifestSet::new());
/// let first = deployer.deploy_release(&release).await?;
/// let again = deployer.deploy_release(&release).await?;
/// assert!(first.created && !again.created);
/// assert_eq!(again.record.release_id, first.record.release_id);
/// assert!(again.message.starts_with("unchanged"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GitOpsOutcome {
    /// The new release, or the current one when nothing changed.
    pub record: ReleaseRecord,
    /// Whether a commit was made.
    pub created: bool,
    /// How many attempts the commit (and push) took.
    pub attempts: u32,
    /// One sentence for people: what happened.
    pub message: String,
    /// Set when the commit was made but a checked-out working tree could not be updated.
    pub worktree_warning: Option<String>,
    /// The estimated monthly cost of what the folder now holds (see [`crate::cost`]),
    /// priced with the deployer's [`prices`](GitOpsDeployer::prices); the
    /// [`message`](Self::message) ends with its total. `None` when it could not be
    /// estimated (a resource quantity that does not parse; the reason is logged).
    pub cost: Option<CostReport>,
}

impl GitOpsOutcome {
    /// The port's record, with [`message`](Self::message) as its message.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// # let d = idp_deploy::gitops::GitOpsDeployer::new(idp_core::git::GitRepo::init(dir.path(), idp_core::git::InitOptions::bare("main")).await?);
    /// # let r = idp_core::Release::new("component:default/a".parse()?, "dev".parse()?, idp_core::ManifestSet::new());
    /// let out = d.deploy_release(&r).await?;
    /// assert_eq!(out.to_deployment().revision, out.record.commit);
    /// # Ok(()) }
    /// ```
    pub fn to_deployment(&self) -> Deployment {
        let mut d = self.record.to_deployment();
        d.message = Some(self.message.clone());
        d
    }
}

/// The DORA input of a release history: one [`DeploymentRecord`](crate::dora::DeploymentRecord)
/// per release (its id, component name, environment, commit time, status as an
/// [`Outcome`](crate::dora::Outcome) and `Source-Committed-At`), oldest first.
///
/// `releases` is newest first, as [`GitOpsDeployer::all_releases`] returns them. Git
/// times have one-second resolution: within a component and environment, a release made
/// in the same second as the one before it is placed a nanosecond after it, so the
/// metrics see the releases in their Git order.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
/// # let dir = tempfile::tempdir()?;
/// # let d = idp_deploy::gitops::GitOpsDeployer::new(idp_core::git::GitRepo::init(dir.path(), idp_core::git::InitOptions::bare("main")).await?);
/// let v = |n: u32| idp_core::ManifestSet::parse(format!("{{apiVersion: v1, kind: ConfigMap, metadata: {{name: c}}, data: {{v: '{n}'}}}}").as_bytes(), None);
/// let (c, env): (idp_core::EntityRef, idp_core::EnvironmentName) = ("component:default/a".parse()?, "dev".parse()?);
/// d.deploy_release(&idp_core::Release::new(c.clone(), env.clone(), v(1)?)).await?;
/// d.deploy_release(&idp_core::Release::new(c.clone(), env.clone(), v(2)?)).await?;
/// let records = idp_deploy::gitops::dora_records(&d.all_releases(None).await?);
/// assert_eq!(records.len(), 2);
/// assert!(records[0].deployed_at < records[1].deployed_at);
/// assert_eq!(records[1].status, idp_deploy::dora::Outcome::Pending);
/// # Ok(()) }
/// ```
pub fn dora_records(releases: &[ReleaseRecord]) -> Vec<crate::dora::DeploymentRecord> {
    let mut last: std::collections::HashMap<(String, String), jiff::Timestamp> =
        std::collections::HashMap::new();
    let mut records = Vec::with_capacity(releases.len());
    for r in releases.iter().rev() {
        let key = (r.component.to_string(), r.environment.to_string());
        let mut at = r.time;
        if let Some(prev) = last.get(&key)
            && at <= *prev
        {
            at = prev
                .checked_add(jiff::SignedDuration::from_nanos(1))
                .unwrap_or(*prev);
        }
        last.insert(key, at);
        let mut rec = crate::dora::DeploymentRecord::new(
            r.component.name(),
            r.environment.as_str(),
            at,
            r.status.into(),
        )
        .with_id(r.release_id.clone());
        if let Some(committed) = r.source_committed_at {
            rec = rec.with_source_committed_at(committed);
        }
        records.push(rec);
    }
    records
}

/// The [`Deployer`] that deploys by committing to a GitOps repository. See the
/// [module docs](self).
///
/// ```
/// use idp_core::git::{GitRepo, Identity, RetryPolicy};
/// use idp_deploy::gitops::{GitOpsDeployer, Layout};
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
/// # let dir = tempfile::tempdir()?;
/// # let repo = GitRepo::init(dir.path(), idp_core::git::InitOptions::bare("main")).await?;
/// let deployer = GitOpsDeployer::new(repo)
///     .branch("main")
///     .layout(Layout::new("apps/{env}/{namespace}/{component}")?)
///     .identity(Identity::new("idp deployer", "deployer@example.com"))
///     .retry(RetryPolicy::default());
/// assert_eq!(deployer.folder(&"component:shop/cart".parse()?, &"prod".parse()?)?, "apps/prod/shop/cart");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct GitOpsDeployer {
    repo: GitRepo,
    branch: Option<String>,
    layout: Layout,
    remote: Option<String>,
    identity: Identity,
    retry: RetryPolicy,
    handover: Option<Handover>,
    source_repo: Option<GitRepo>,
    prices: PriceSheet,
}

impl GitOpsDeployer {
    /// A deployer writing to `repo`: the branch `HEAD` names (`main` if none), layout
    /// `envs/{env}/{component}`, no remote, committer `idp <idp@localhost>`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// let repo = idp_core::git::GitRepo::init(dir.path(), idp_core::git::InitOptions::bare("main")).await?;
    /// let deployer = idp_deploy::gitops::GitOpsDeployer::new(repo);
    /// assert_eq!(deployer.target_branch().await?, "main");
    /// # Ok(()) }
    /// ```
    pub fn new(repo: GitRepo) -> Self {
        Self {
            repo,
            branch: None,
            layout: Layout::default(),
            remote: None,
            identity: Identity::new("idp", "idp@localhost"),
            retry: RetryPolicy::default(),
            handover: None,
            source_repo: None,
            prices: PriceSheet::default(),
        }
    }

    /// The price sheet each release's estimated monthly cost is computed with
    /// ([`GitOpsOutcome::cost`]); [`PriceSheet::default`] when not given.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::{git::{GitRepo, InitOptions}, ManifestSet, Release};
    /// # let dir = tempfile::tempdir()?;
    /// let prices = idp_deploy::cost::PriceSheet::from_yaml("cpuHour: 0.10\ncurrency: EUR\n", None)?;
    /// let deployer = idp_deploy::gitops::GitOpsDeployer::new(GitRepo::init(dir.path(), InitOptions::bare("main")).await?)
    ///     .prices(prices);
    /// let set = ManifestSet::parse(b"{apiVersion: apps/v1, kind: Deployment, metadata: {name: cart}, spec: {replicas: 2, template: {spec: {containers: [{name: c, image: i, resources: {requests: {cpu: '1'}}}]}}}}", None)?;
    /// let out = deployer.deploy_release(&Release::new("component:default/cart".parse()?, "dev".parse()?, set)).await?;
    /// let cost = out.cost.unwrap();
    /// assert!((cost.total - 2.0 * 0.10 * 730.0).abs() < 1e-6);
    /// assert!(out.message.ends_with("estimated cost 146.00 EUR/month"), "{}", out.message);
    /// # Ok(()) }
    /// ```
    pub fn prices(mut self, prices: PriceSheet) -> Self {
        self.prices = prices;
        self
    }

    /// Write to this branch.
    ///
    /// ```
    /// # fn f(d: idp_deploy::gitops::GitOpsDeployer) { let _ = d.branch("gitops"); }
    /// ```
    pub fn branch(mut self, branch: impl Into<String>) -> Self {
        self.branch = Some(branch.into());
        self
    }

    /// Put each component's folder where `layout` says.
    ///
    /// ```
    /// # fn f(d: idp_deploy::gitops::GitOpsDeployer) -> idp_core::Result<()> {
    /// let d = d.layout(idp_deploy::gitops::Layout::new("{env}/{component}")?);
    /// # let _ = d; Ok(()) }
    /// ```
    pub fn layout(mut self, layout: Layout) -> Self {
        self.layout = layout;
        self
    }

    /// Commit on top of this remote's branch and push every write (a configured remote
    /// name like `origin`, or a URL / path such as `file:///srv/gitops.git`). Reads
    /// (history, rollback targets) fetch the remote branch first.
    ///
    /// ```
    /// # fn f(d: idp_deploy::gitops::GitOpsDeployer) { let _ = d.remote("origin"); }
    /// ```
    pub fn remote(mut self, remote: impl Into<String>) -> Self {
        self.remote = Some(remote.into());
        self
    }

    /// Commit as `identity` (the release's author goes into the `Author` trailer).
    ///
    /// ```
    /// # fn f(d: idp_deploy::gitops::GitOpsDeployer) { let _ = d.identity(idp_core::git::Identity::new("bot", "bot@example.com")); }
    /// ```
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    /// Retry budget when other writers move the branch first.
    ///
    /// ```
    /// # fn f(d: idp_deploy::gitops::GitOpsDeployer) { let _ = d.retry(idp_core::git::RetryPolicy::no_retry()); }
    /// ```
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Also write Argo CD or Flux hand-over objects with every release.
    ///
    /// ```
    /// # fn f(d: idp_deploy::gitops::GitOpsDeployer) {
    /// use idp_deploy::gitops::{Handover, FluxOptions};
    /// let d = d.handover(Handover::flux(FluxOptions::new("https://git.example.com/gitops.git")));
    /// # let _ = d; }
    /// ```
    pub fn handover(mut self, handover: Handover) -> Self {
        self.handover = Some(handover);
        self
    }

    /// The application's source repository: the commit time of a release's
    /// `source_revision` is looked up there and recorded as `Source-Committed-At` (for
    /// lead-time metrics).
    ///
    /// ```
    /// # fn f(d: idp_deploy::gitops::GitOpsDeployer, src: idp_core::git::GitRepo) { let _ = d.source_repo(src); }
    /// ```
    pub fn source_repo(mut self, repo: GitRepo) -> Self {
        self.source_repo = Some(repo);
        self
    }

    /// The GitOps repository.
    ///
    /// ```
    /// # fn f(d: &idp_deploy::gitops::GitOpsDeployer) { let _ = d.repo().path(); }
    /// ```
    pub fn repo(&self) -> &GitRepo {
        &self.repo
    }

    /// The folder of `component` in `environment`.
    ///
    /// ```
    /// # fn f(d: &idp_deploy::gitops::GitOpsDeployer) -> idp_core::Result<()> {
    /// assert_eq!(d.folder(&"component:default/a".parse()?, &"dev".parse()?)?, "envs/dev/a");
    /// # Ok(()) }
    /// ```
    pub fn folder(&self, component: &EntityRef, environment: &EnvironmentName) -> Result<String> {
        self.layout.folder(component, environment)
    }

    /// The branch written: the configured one, else the one `HEAD` names, else `main`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// # let d = idp_deploy::gitops::GitOpsDeployer::new(idp_core::git::GitRepo::init(dir.path(), idp_core::git::InitOptions::bare("main")).await?);
    /// # let r = idp_core::Release::new("component:default/a".parse()?, "dev".parse()?, idp_core::ManifestSet::new());
    /// let out = d.deploy_release(&r).await?;
    /// assert_eq!(d.target_branch().await?, "main");
    /// # Ok(()) }
    /// ```
    pub async fn target_branch(&self) -> Result<String> {
        if let Some(b) = &self.branch {
            return Ok(b.clone());
        }
        Ok(self
            .repo
            .head_branch()
            .await?
            .unwrap_or_else(|| "main".to_owned()))
    }

    /// Deploy a release and say what happened (see [`GitOpsOutcome`]).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// # let d = idp_deploy::gitops::GitOpsDeployer::new(idp_core::git::GitRepo::init(dir.path(), idp_core::git::InitOptions::bare("main")).await?);
    /// # let r = idp_core::Release::new("component:default/a".parse()?, "dev".parse()?, idp_core::ManifestSet::new());
    /// let out = d.deploy_release(&r).await?;
    /// assert!(out.created);
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(component = %release.component, environment = %release.environment))]
    pub async fn deploy_release(&self, release: &Release) -> Result<GitOpsOutcome> {
        self.deploy_release_with(release, None).await
    }

    /// [`deploy_release`](Self::deploy_release) recording when the source revision was
    /// committed (`Source-Committed-At`); `None` looks it up in the
    /// [`source_repo`](Self::source_repo) when one is set.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::{git::{GitRepo, InitOptions}, ManifestSet, Release};
    /// # let dir = tempfile::tempdir()?;
    /// # let deployer = idp_deploy::gitops::GitOpsDeployer::new(GitRepo::init(dir.path(), InitOptions::bare("main")).await?);
    /// let release = Release::new("component:default/cart".parse()?, "dev".parse()?, ManifestSet::new())
    ///     .with_source_revision("abc1234");
    /// let at: jiff::Timestamp = "2026-01-02T03:04:05Z".parse().unwrap();
    /// let out = deployer.deploy_release_with(&release, Some(at)).await?;
    /// assert_eq!(out.record.source_committed_at, Some(at));
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(component = %release.component, environment = %release.environment))]
    pub async fn deploy_release_with(
        &self,
        release: &Release,
        source_committed_at: Option<jiff::Timestamp>,
    ) -> Result<GitOpsOutcome> {
        let folder = self.folder(&release.component, &release.environment)?;
        let files: BTreeMap<String, Vec<u8>> = manifest_files(&release.manifests)?
            .into_iter()
            .map(|(name, bytes)| (format!("{folder}/{name}"), bytes))
            .collect();
        let source_revision = non_empty(release.source_revision.as_deref());
        let source_committed_at = match (source_committed_at, &source_revision) {
            (Some(t), _) => Some(t),
            (None, Some(rev)) => self.source_time(rev).await,
            (None, None) => None,
        };
        let time = now();
        let record = ReleaseRecord {
            release_id: new_release_id(time),
            commit: String::new(),
            time,
            author: Some(self.author_or_default(release.author.as_deref())),
            source_revision,
            source_committed_at,
            component: release.component.clone(),
            environment: release.environment.clone(),
            summary: format!(
                "deploy {} to {}",
                release.component.name(),
                release.environment
            ),
            rollback_of: None,
            rollback_to: None,
            promoted_from: None,
            status: DeploymentStatus::Pending,
        };
        let cost = self.cost_of(&release.manifests);
        self.commit_release(record, files, release.message.as_deref(), &folder, cost)
            .await
    }

    /// Every release of `component` in `environment`, newest first, at most `limit`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// # let d = idp_deploy::gitops::GitOpsDeployer::new(idp_core::git::GitRepo::init(dir.path(), idp_core::git::InitOptions::bare("main")).await?);
    /// # let r = idp_core::Release::new("component:default/a".parse()?, "dev".parse()?, idp_core::ManifestSet::new());
    /// let out = d.deploy_release(&r).await?;
    /// assert_eq!(d.releases(&r.component, &r.environment, Some(10)).await?[0], out.record);
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(component = %component, environment = %environment, limit = ?limit))]
    pub async fn releases(
        &self,
        component: &EntityRef,
        environment: &EnvironmentName,
        limit: Option<usize>,
    ) -> Result<Vec<ReleaseRecord>> {
        let Some(rev) = self.read_rev().await? else {
            return Ok(Vec::new());
        };
        let parse = |entries: &[idp_core::git::LogEntry]| -> Vec<ReleaseRecord> {
            entries
                .iter()
                .filter_map(|e| ReleaseRecord::from_entry(e, component, environment))
                .collect()
        };
        // History is `git log` filtered by trailers. With a limit, read a window of the
        // log first and the whole log only when the window holds too few releases.
        let window = limit.map(|n| n.saturating_mul(20).max(200));
        let mut options = LogOptions::default();
        if let Some(w) = window {
            options = options.limit(w);
        }
        let entries = self.repo.log(&rev, &options).await?;
        let mut records = parse(&entries);
        if let (Some(n), Some(w)) = (limit, window)
            && records.len() < n
            && entries.len() == w
        {
            records = parse(&self.repo.log(&rev, &LogOptions::default()).await?);
        }
        record::assign_statuses(&mut records);
        if let Some(n) = limit {
            records.truncate(n);
        }
        Ok(records)
    }

    /// Every release in the repository, of every component in every environment, newest
    /// first, with statuses assigned per component and environment as in
    /// [`releases`](Self::releases), in Git order (which also orders commits made within
    /// the same second). Commits older than `since` are not read. This is the
    /// input DORA metrics need (see `idp_deploy::dora`).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # let dir = tempfile::tempdir()?;
    /// # let d = idp_deploy::gitops::GitOpsDeployer::new(idp_core::git::GitRepo::init(dir.path(), idp_core::git::InitOptions::bare("main")).await?);
    /// let a = idp_core::Release::new("component:default/a".parse()?, "dev".parse()?, idp_core::ManifestSet::new());
    /// let b = idp_core::Release::new("component:default/b".parse()?, "prod".parse()?, idp_core::ManifestSet::new());
    /// d.deploy_release(&a).await?;
    /// d.deploy_release(&b).await?;
    /// let all = d.all_releases(None).await?;
    /// assert_eq!(all.len(), 2);
    /// assert_eq!(all[0].component.name(), "b");
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(since = ?since))]
    pub async fn all_releases(&self, since: Option<jiff::Timestamp>) -> Result<Vec<ReleaseRecord>> {
        let Some(rev) = self.read_rev().await? else {
            return Ok(Vec::new());
        };
        let entries = self.repo.log(&rev, &LogOptions::default()).await?;
        // In Git order (newest first), which also orders commits made within one second.
        let mut all: Vec<ReleaseRecord> = entries
            .iter()
            .filter(|e| since.is_none_or(|s| e.time >= s))
            .filter_map(ReleaseRecord::from_any_entry)
            .collect();
        let mut streams: std::collections::BTreeMap<(String, String), Vec<usize>> =
            std::collections::BTreeMap::new();
        for (i, r) in all.iter().enumerate() {
            streams
                .entry((r.component.to_string(), r.environment.to_string()))
                .or_default()
                .push(i);
        }
        for indices in streams.values() {
            let mut stream: Vec<ReleaseRecord> = indices.iter().map(|&i| all[i].clone()).collect();
            record::assign_statuses(&mut stream);
            for (&i, r) in indices.iter().zip(stream) {
                all[i].status = r.status;
            }
        }
        Ok(all)
    }

    /// Roll back to the release `to` (a release id, or 7+ hex digits of its commit),
    /// recording `author`. The folder becomes byte for byte what that release wrote.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::{git::{GitRepo, InitOptions}, ManifestSet, Release};
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let deployer = idp_deploy::gitops::GitOpsDeployer::new(repo.clone());
    /// let (c, env): (idp_core::EntityRef, idp_core::EnvironmentName) = ("component:default/cart".parse()?, "dev".parse()?);
    /// let v = |n: u32| ManifestSet::parse(format!("{{apiVersion: v1, kind: ConfigMap, metadata: {{name: c}}, data: {{v: '{n}'}}}}").as_bytes(), None);
    /// let v1 = deployer.deploy_release(&Release::new(c.clone(), env.clone(), v(1)?)).await?;
    /// deployer.deploy_release(&Release::new(c.clone(), env.clone(), v(2)?)).await?;
    /// let back = deployer.rollback_to(&c, &env, &v1.record.release_id, Some("jane")).await?;
    /// assert_eq!(back.record.rollback_to.as_deref(), Some(v1.record.release_id.as_str()));
    /// let unknown = deployer.rollback_to(&c, &env, "r-nope", None).await.unwrap_err();
    /// assert_eq!(unknown.kind(), idp_core::ErrorKind::NotFound);
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(component = %component, environment = %environment, to = %to))]
    pub async fn rollback_to(
        &self,
        component: &EntityRef,
        environment: &EnvironmentName,
        to: &str,
        author: Option<&str>,
    ) -> Result<GitOpsOutcome> {
        let records = self.releases(component, environment, None).await?;
        let Some(target) = records.iter().find(|r| r.matches(to)) else {
            return Err(unknown_release(to, component, environment, &records));
        };
        let current = &records[0];
        let folder = self.folder(component, environment)?;
        let files = self.read_folder(&target.commit, &folder).await?;
        let time = now();
        let record = ReleaseRecord {
            release_id: new_release_id(time),
            commit: String::new(),
            time,
            author: Some(self.author_or_default(author)),
            source_revision: target.source_revision.clone(),
            source_committed_at: target.source_committed_at,
            component: component.clone(),
            environment: environment.clone(),
            summary: format!(
                "rollback {} in {} to {}",
                component.name(),
                environment,
                target.release_id
            ),
            rollback_of: Some(current.release_id.clone()),
            rollback_to: Some(target.release_id.clone()),
            promoted_from: None,
            status: DeploymentStatus::Pending,
        };
        let cost = self.cost_of_files(&files);
        self.commit_release(record, files, None, &folder, cost)
            .await
    }

    /// Copy the current release of `component` in `from` to `to` (a new release there,
    /// with a `Promoted-From: <from>/<release id>` trailer), recording `author`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// # use idp_core::{git::{GitRepo, InitOptions}, ManifestSet, Release};
    /// # let dir = tempfile::tempdir()?;
    /// # let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await?;
    /// let deployer = idp_deploy::gitops::GitOpsDeployer::new(repo.clone());
    /// let c: idp_core::EntityRef = "component:default/cart".parse()?;
    /// let set = ManifestSet::parse(b"{apiVersion: v1, kind: ConfigMap, metadata: {name: c}}", None)?;
    /// let staged = deployer.deploy_release(&Release::new(c.clone(), "staging".parse()?, set)).await?;
    /// let prod = deployer.promote(&c, &"staging".parse()?, &"prod".parse()?, None).await?;
    /// assert_eq!(prod.record.promoted_from, Some(format!("staging/{}", staged.record.release_id)));
    /// assert_eq!(repo.read_file("main", "envs/prod/cart/configmap-c.yaml").await?,
    ///            repo.read_file("main", "envs/staging/cart/configmap-c.yaml").await?);
    /// # Ok(()) }
    /// ```
    #[instrument(skip_all, fields(component = %component, from = %from, to = %to))]
    pub async fn promote(
        &self,
        component: &EntityRef,
        from: &EnvironmentName,
        to: &EnvironmentName,
        author: Option<&str>,
    ) -> Result<GitOpsOutcome> {
        if from == to {
            return Err(Error::invalid_input(format!(
                "cannot promote {component} from {from} to itself; give two different environments"
            )));
        }
        let Some(source) = self
            .releases(component, from, Some(1))
            .await?
            .into_iter()
            .next()
        else {
            return Err(Error::not_found(format!(
                "{component} has no release in environment {from}; deploy it there before promoting it"
            )));
        };
        let from_folder = self.folder(component, from)?;
        let to_folder = self.folder(component, to)?;
        let files = self
            .read_folder(&source.commit, &from_folder)
            .await?
            .into_iter()
            .map(|(path, bytes)| {
                let rest = path
                    .strip_prefix(&from_folder)
                    .unwrap_or(&path)
                    .trim_start_matches('/');
                (format!("{to_folder}/{rest}"), bytes)
            })
            .collect();
        let time = now();
        let record = ReleaseRecord {
            release_id: new_release_id(time),
            commit: String::new(),
            time,
            author: Some(self.author_or_default(author)),
            source_revision: source.source_revision.clone(),
            source_committed_at: source.source_committed_at,
            component: component.clone(),
            environment: to.clone(),
            summary: format!("promote {} from {from} to {to}", component.name()),
            rollback_of: None,
            rollback_to: None,
            promoted_from: Some(format!("{from}/{}", source.release_id)),
            status: DeploymentStatus::Pending,
        };
        let cost = self.cost_of_files(&files);
        self.commit_release(record, files, None, &to_folder, cost)
            .await
    }

    /// The estimated monthly cost of `set`; `None` (logged) when it cannot be estimated.
    fn cost_of(&self, set: &ManifestSet) -> Option<CostReport> {
        match cost::estimate(set, &self.prices) {
            Ok(report) => Some(report),
            Err(e) => {
                tracing::warn!(error = %e, "cannot estimate the release's cost");
                None
            }
        }
    }

    /// [`cost_of`](Self::cost_of) the objects in a folder's files.
    fn cost_of_files(&self, files: &BTreeMap<String, Vec<u8>>) -> Option<CostReport> {
        let mut set = ManifestSet::new();
        for (path, bytes) in files {
            match ManifestSet::parse(bytes, Some(std::path::Path::new(path))) {
                Ok(objects) => set.extend(objects),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot estimate the release's cost");
                    return None;
                }
            }
        }
        self.cost_of(&set)
    }

    fn author_or_default(&self, author: Option<&str>) -> String {
        non_empty(author).unwrap_or_else(|| self.identity.name.clone())
    }

    /// When `rev` was committed in the source repository, if known.
    async fn source_time(&self, rev: &str) -> Option<jiff::Timestamp> {
        let repo = self.source_repo.as_ref()?;
        match repo.log(rev, &LogOptions::default().limit(1)).await {
            Ok(entries) => entries.first().map(|e| e.time),
            Err(e) => {
                tracing::warn!(revision = %rev, error = %e, "cannot read the source revision's commit time");
                None
            }
        }
    }

    /// The files under `folder` at `commit` (full paths); none when it is absent.
    async fn read_folder(&self, commit: &str, folder: &str) -> Result<BTreeMap<String, Vec<u8>>> {
        match self.repo.read_tree(commit, folder).await {
            Ok(files) => Ok(files),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(e),
        }
    }

    /// The revision history is read from: the local branch, or the fetched remote branch.
    /// `None` when there is no branch yet.
    async fn read_rev(&self) -> Result<Option<String>> {
        let branch = self.target_branch().await?;
        let rev = match &self.remote {
            None => format!("refs/heads/{branch}"),
            Some(remote) => {
                let tracking = tracking_ref(remote, &branch);
                let spec = format!("+refs/heads/{branch}:{tracking}");
                match self.repo.fetch(remote, &[spec.as_str()]).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e),
                }
                tracking
            }
        };
        match self.repo.resolve(&rev).await {
            Ok(_) => Ok(Some(rev)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Commit `files` as the folder's whole content with `record`'s trailers; when that
    /// changes nothing, answer with the current release instead.
    async fn commit_release(
        &self,
        mut record: ReleaseRecord,
        files: BTreeMap<String, Vec<u8>>,
        body: Option<&str>,
        folder: &str,
        cost: Option<CostReport>,
    ) -> Result<GitOpsOutcome> {
        let priced = |message: String| match &cost {
            Some(c) => format!(
                "{message}; estimated cost {:.2} {}/month",
                c.total, c.currency
            ),
            None => message,
        };
        let (out, warning) = self.write(&record, &files, body, folder, false).await?;
        let (out, warning) = if out.created {
            (out, warning)
        } else {
            let current = self
                .releases(&record.component, &record.environment, Some(1))
                .await?
                .into_iter()
                .next();
            if let Some(current) = current {
                let message = format!(
                    "unchanged: {folder} already holds this content (release {}, commit {}); nothing was committed",
                    current.release_id,
                    short(&current.commit)
                );
                tracing::info!(release = %current.release_id, "{message}");
                return Ok(GitOpsOutcome {
                    record: current,
                    created: false,
                    attempts: out.attempts,
                    message: priced(message),
                    worktree_warning: None,
                    cost,
                });
            }
            // The content is there but no release says so (written by hand): record it.
            self.write(&record, &files, body, folder, true).await?
        };
        record.commit = out.id.to_hex();
        record.status = DeploymentStatus::Pending;
        let message = format!(
            "{}: release {}, commit {}",
            record.summary,
            record.release_id,
            short(&record.commit)
        );
        tracing::info!(release = %record.release_id, commit = %record.commit, attempts = out.attempts, "committed release");
        Ok(GitOpsOutcome {
            record,
            created: true,
            attempts: out.attempts,
            message: priced(message),
            worktree_warning: warning,
            cost,
        })
    }

    /// One commit (and push) replacing `folder` with `files`.
    async fn write(
        &self,
        record: &ReleaseRecord,
        files: &BTreeMap<String, Vec<u8>>,
        body: Option<&str>,
        folder: &str,
        allow_empty: bool,
    ) -> Result<(CommitOutcome, Option<String>)> {
        let branch = self.target_branch().await?;
        let mut message = record.summary.clone();
        if let Some(body) = non_empty(body) {
            message.push_str("\n\n");
            message.push_str(&body);
        }
        let mut req = CommitRequest::new(branch.clone(), message, self.identity.clone())
            .time(record.time)
            .allow_empty(allow_empty)
            .delete_tree(folder);
        for (path, bytes) in files {
            req = req.put(path.clone(), bytes.clone());
        }
        if let Some(handover) = &self.handover {
            let (path, bytes) = Self::handover_file(handover, record, folder, &branch)?;
            req = req.put(path, bytes);
        }
        for (key, value) in trailer_list(record) {
            req = req.trailer(key, value);
        }
        // A checked-out branch takes its working tree and index along, incrementally
        // (only the paths this commit changed; local edits there stop the update).
        let req = req.update_worktree(!self.repo.is_bare());
        let out = match &self.remote {
            Some(remote) => self.repo.commit_and_push(remote, req, &self.retry).await?,
            None => self.repo.commit_with_retry(req, &self.retry).await?,
        };
        let warning = out
            .worktree
            .as_ref()
            .and_then(|w| w.warning())
            .map(str::to_owned);
        Ok((out, warning))
    }

    fn handover_file(
        handover: &Handover,
        record: &ReleaseRecord,
        folder: &str,
        branch: &str,
    ) -> Result<(String, Vec<u8>)> {
        let dir = handover
            .folder_layout()
            .folder(&record.component, &record.environment)?;
        if dir == folder
            || dir.starts_with(&format!("{folder}/"))
            || folder.starts_with(&format!("{dir}/"))
        {
            return Err(Error::invalid_input(format!(
                "the hand-over folder {dir} overlaps the release folder {folder}; give the hand-over a layout of its own (default {})",
                Handover::DEFAULT_LAYOUT
            )));
        }
        let objects = handover.objects(&record.component, &record.environment, folder, branch)?;
        let set: idp_core::ManifestSet = objects.into_iter().collect();
        let mut text = String::new();
        for (i, o) in set.iter().enumerate() {
            if i > 0 {
                text.push_str("---\n");
            }
            text.push_str(&String::from_utf8_lossy(&object_yaml(o)?));
        }
        Ok((format!("{dir}/{}", handover.file_name()), text.into_bytes()))
    }
}

#[async_trait]
impl Deployer for GitOpsDeployer {
    #[instrument(skip_all, fields(deployer = "gitops", component = %release.component, environment = %release.environment))]
    async fn deploy(&self, release: &Release) -> Result<Deployment> {
        Ok(self.deploy_release(release).await?.to_deployment())
    }

    #[instrument(skip_all, fields(deployer = "gitops", component = %query.component, environment = %query.environment))]
    async fn history(&self, query: &HistoryQuery) -> Result<Vec<Deployment>> {
        Ok(self
            .releases(&query.component, &query.environment, query.limit)
            .await?
            .iter()
            .map(ReleaseRecord::to_deployment)
            .collect())
    }

    #[instrument(skip_all, fields(deployer = "gitops", component = %component, environment = %environment, to = %to))]
    async fn rollback(
        &self,
        component: &EntityRef,
        environment: &EnvironmentName,
        to: &DeploymentId,
    ) -> Result<Deployment> {
        Ok(self
            .rollback_to(component, environment, to.as_str(), None)
            .await?
            .to_deployment())
    }
}

fn trailer_list(r: &ReleaseRecord) -> Vec<(&'static str, String)> {
    let mut out = vec![
        (trailers::RELEASE_ID, r.release_id.clone()),
        (trailers::COMPONENT, r.component.to_string()),
        (trailers::ENVIRONMENT, r.environment.to_string()),
    ];
    let optional = [
        (trailers::SOURCE_REVISION, r.source_revision.clone()),
        (
            trailers::SOURCE_COMMITTED_AT,
            r.source_committed_at.map(|t| t.to_string()),
        ),
        (trailers::AUTHOR, r.author.clone()),
        (trailers::ROLLBACK_OF, r.rollback_of.clone()),
        (trailers::ROLLBACK_TO, r.rollback_to.clone()),
        (trailers::PROMOTED_FROM, r.promoted_from.clone()),
    ];
    out.extend(optional.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))));
    out
}

/// The NotFound error for an unknown release, listing recent ones.
fn unknown_release(
    id: &str,
    component: &EntityRef,
    environment: &EnvironmentName,
    records: &[ReleaseRecord],
) -> Error {
    if records.is_empty() {
        return Error::not_found(format!(
            "release {id:?} not found: {component} has no release in environment {environment}"
        ));
    }
    let recent: Vec<String> = records
        .iter()
        .take(5)
        .map(|r| format!("{} (commit {}, {})", r.release_id, short(&r.commit), r.time))
        .collect();
    Error::not_found(format!(
        "release {id:?} is not in the history of {component} in {environment}; recent releases, newest first: {}",
        recent.join(", ")
    ))
}

/// Where fetched remote branches are kept: like `idp_core::git`'s commit-and-push.
fn tracking_ref(remote: &str, branch: &str) -> String {
    if remote.contains([':', '/', '\\']) {
        format!("refs/idp/fetched/{branch}")
    } else {
        format!("refs/remotes/{remote}/{branch}")
    }
}

fn non_empty(text: Option<&str>) -> Option<String> {
    text.map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

fn short(commit: &str) -> &str {
    commit.get(..10).unwrap_or(commit)
}

/// Now, to the second (what a commit records).
fn now() -> jiff::Timestamp {
    let now = jiff::Timestamp::now();
    jiff::Timestamp::from_second(now.as_second()).unwrap_or(now)
}

/// `r<yyyymmdd>-<hhmmss>-<6 hex>`: sorts by time, unique enough across writers.
fn new_release_id(time: jiff::Timestamp) -> String {
    let random: u32 = rand::random::<u32>() & 0x00ff_ffff;
    format!("r{}-{random:06x}", time.strftime("%Y%m%d-%H%M%S"))
}
