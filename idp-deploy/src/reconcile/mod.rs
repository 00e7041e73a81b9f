//! The [`Reconciler`]: converge a folder of a Git branch into a Kubernetes cluster, the
//! way Flux's kustomize-controller does, with the status an Argo CD user expects.
//!
//! One pass: **fetch** the branch → **render** the folder (a [`Renderer`], by default
//! [`PlainYamlRenderer`]) → **mutate** (`Arc<dyn Mutation>`) → **policy check**
//! (`Arc<dyn Policy>`: any denial and nothing is applied) → **compare** with the live
//! objects and **apply only what changed** (server-side apply) → **prune** what left the
//! source (never after a fetch or render error, never to empty unless
//! [allowed](ReconcilerBuilder::allow_empty_prune)) → **assess health** → publish a
//! [`ReconcileStatus`].
//!
//! Start with [`Reconciler::builder`], then either call [`Reconciler::reconcile_once`]
//! or [`Reconciler::spawn`] a loop that reconciles on an interval, on demand
//! ([`ReconcilerHandle::reconcile_now`]) and whenever a watched live object changes
//! (drift detection with self-heal).
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> idp_core::Result<()> {
//! use std::time::Duration;
//! use idp_core::cluster::{Cluster, Inventory};
//! use idp_deploy::reconcile::{GitSource, Reconciler};
//!
//! let reconciler = Reconciler::builder(
//!     Cluster::new(client),
//!     GitSource::new("https://git.example/shop/deploy.git", "main", "envs/prod"),
//!     Inventory::new("platform", "shop-prod")?,
//! )
//! .default_namespace("shop")
//! .interval(Duration::from_secs(60))
//! .self_heal(true)
//! .build()?;
//! let handle = reconciler.spawn();
//! handle.reconcile_now();
//! let status = handle.wait_for(|s| s.is_ready(), Duration::from_secs(120)).await?;
//! println!("{}", serde_json::to_string_pretty(&status).unwrap_or_default());
//! handle.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! ## Efficiency
//!
//! Live objects come from a watch per resource type and namespace of the set (the
//! inventory's label selector), so a pass that finds nothing to do makes **no write and
//! no per-object request**: the comparison runs against the cache (falling back to one
//! list per type and namespace until the watch is synced), and prune lists each type
//! once. A changed object costs exactly one write.
//!
//! ## Drift and self-heal
//!
//! A live object whose applied-configuration hash is ours but whose fields differ was
//! edited in the cluster. With self-heal on it is re-applied, at most once per
//! [`self_heal_interval`](ReconcilerBuilder::self_heal_interval) per object; with it off
//! it is reported as [`OutOfSyncReason::SelfHealDisabled`].

mod cache;
mod render;
mod source;
mod status;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use idp_core::cluster::diff::{LiveState, ObjectDiff};
use idp_core::cluster::health::{self, HealthStatus};
use idp_core::cluster::{Applier, Cluster, Inventory, PruneOptions};
use idp_core::ports::Mutation;
use idp_core::{
    Error, ErrorKind, ManifestSet, Object, ObjectRef, Policy, PolicyContext, Result, Violation,
};
use tokio::sync::{mpsc, watch};
use tracing::Instrument as _;

use self::cache::WatchCache;
pub use self::render::{PlainYamlRenderer, Renderer, ScoreRenderer};
pub use self::source::GitSource;
use self::source::Mirror;
pub use self::status::{
    ObjectResult, ObjectStatus, OutOfSyncReason, ReconcileStatus, StallReason, SyncStatus,
};

/// The field manager the reconciler applies with unless told otherwise.
pub const DEFAULT_FIELD_MANAGER: &str = "idp-reconciler";

/// Builds a [`Reconciler`]; see [`Reconciler::builder`].
#[derive(Debug)]
pub struct ReconcilerBuilder {
    cluster: Cluster,
    source: GitSource,
    inventory: Inventory,
    renderer: Arc<dyn Renderer>,
    mutations: Vec<Arc<dyn Mutation>>,
    policies: Vec<Arc<dyn Policy>>,
    context: PolicyContext,
    interval: Duration,
    self_heal: bool,
    self_heal_interval: Duration,
    prune: bool,
    allow_empty_prune: bool,
    default_namespace: Option<String>,
    field_manager: String,
    workdir: Option<PathBuf>,
    leader: Option<watch::Receiver<bool>>,
}

impl ReconcilerBuilder {
    /// Render with `renderer` instead of [`PlainYamlRenderer`].
    ///
    /// ```no_run
    /// # fn demo(b: idp_deploy::reconcile::ReconcilerBuilder) {
    /// let b = b.renderer(std::sync::Arc::new(idp_deploy::reconcile::PlainYamlRenderer));
    /// # }
    /// ```
    pub fn renderer(mut self, renderer: Arc<dyn Renderer>) -> Self {
        self.renderer = renderer;
        self
    }

    /// Add a mutation, run on every object after rendering, in the order added.
    ///
    /// ```no_run
    /// # fn demo(b: idp_deploy::reconcile::ReconcilerBuilder, m: std::sync::Arc<dyn idp_core::ports::Mutation>) {
    /// let b = b.mutation(m);
    /// # }
    /// ```
    pub fn mutation(mut self, mutation: Arc<dyn Mutation>) -> Self {
        self.mutations.push(mutation);
        self
    }

    /// Add a policy; any violation it reports with a blocking enforcement denies the
    /// whole set (nothing is applied).
    ///
    /// ```no_run
    /// # fn demo(b: idp_deploy::reconcile::ReconcilerBuilder, p: std::sync::Arc<dyn idp_core::Policy>) {
    /// let b = b.policy(p);
    /// # }
    /// ```
    pub fn policy(mut self, policy: Arc<dyn Policy>) -> Self {
        self.policies.push(policy);
        self
    }

    /// The context mutations and policies see (environment, component, user).
    ///
    /// ```no_run
    /// # fn demo(b: idp_deploy::reconcile::ReconcilerBuilder) {
    /// let b = b.policy_context(idp_core::PolicyContext::new().with_namespace("shop"));
    /// # }
    /// ```
    pub fn policy_context(mut self, context: PolicyContext) -> Self {
        self.context = context;
        self
    }

    /// How often the loop fetches the source (default 60 s).
    ///
    /// ```no_run
    /// # fn demo(b: idp_deploy::reconcile::ReconcilerBuilder) {
    /// let b = b.interval(std::time::Duration::from_secs(30));
    /// # }
    /// ```
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// Re-apply objects edited in the cluster (default on); off, drift is only reported.
    ///
    /// ```no_run
    /// # fn demo(b: idp_deploy::reconcile::ReconcilerBuilder) {
    /// let b = b.self_heal(false);
    /// # }
    /// ```
    pub fn self_heal(mut self, on: bool) -> Self {
        self.self_heal = on;
        self
    }

    /// The least time between two self-heals of one object (default 5 s), so a fight
    /// with another writer cannot become a write storm.
    ///
    /// ```no_run
    /// # fn demo(b: idp_deploy::reconcile::ReconcilerBuilder) {
    /// let b = b.self_heal_interval(std::time::Duration::from_secs(10));
    /// # }
    /// ```
    pub fn self_heal_interval(mut self, interval: Duration) -> Self {
        self.self_heal_interval = interval;
        self
    }

    /// Delete objects that left the source (default on).
    ///
    /// ```no_run
    /// # fn demo(b: idp_deploy::reconcile::ReconcilerBuilder) {
    /// let b = b.prune(false);
    /// # }
    /// ```
    pub fn prune(mut self, on: bool) -> Self {
        self.prune = on;
        self
    }

    /// Allow a source that renders to no object to prune everything (default off).
    ///
    /// ```no_run
    /// # fn demo(b: idp_deploy::reconcile::ReconcilerBuilder) {
    /// let b = b.allow_empty_prune(true);
    /// # }
    /// ```
    pub fn allow_empty_prune(mut self, allow: bool) -> Self {
        self.allow_empty_prune = allow;
        self
    }

    /// The namespace of namespaced objects that name none (default `default`).
    ///
    /// ```no_run
    /// # fn demo(b: idp_deploy::reconcile::ReconcilerBuilder) {
    /// let b = b.default_namespace("shop");
    /// # }
    /// ```
    pub fn default_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.default_namespace = Some(namespace.into());
        self
    }

    /// The server-side apply field manager (default [`DEFAULT_FIELD_MANAGER`]).
    ///
    /// ```no_run
    /// # fn demo(b: idp_deploy::reconcile::ReconcilerBuilder) {
    /// let b = b.field_manager("platform-reconciler");
    /// # }
    /// ```
    pub fn field_manager(mut self, manager: impl Into<String>) -> Self {
        self.field_manager = manager.into();
        self
    }

    /// Where to keep the Git mirror and checkouts (default: a temporary directory
    /// removed with the reconciler).
    ///
    /// ```no_run
    /// # fn demo(b: idp_deploy::reconcile::ReconcilerBuilder) {
    /// let b = b.workdir("/var/cache/idp/shop-prod");
    /// # }
    /// ```
    pub fn workdir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workdir = Some(dir.into());
        self
    }

    /// Only write while `leading` says `true` (see
    /// [`LeaderElector`](crate::ha::LeaderElector)); without it the reconciler always
    /// writes.
    ///
    /// ```no_run
    /// # fn demo(b: idp_deploy::reconcile::ReconcilerBuilder, leader: &idp_deploy::ha::LeaderHandle) {
    /// let b = b.leader(leader.subscribe());
    /// # }
    /// ```
    pub fn leader(mut self, leading: watch::Receiver<bool>) -> Self {
        self.leader = Some(leading);
        self
    }

    /// The reconciler.
    ///
    /// ```no_run
    /// # fn demo(b: idp_deploy::reconcile::ReconcilerBuilder) -> idp_core::Result<()> {
    /// let reconciler = b.build()?;
    /// # Ok(()) }
    /// ```
    pub fn build(self) -> Result<Reconciler> {
        let (workdir, tempdir) = if let Some(dir) = self.workdir {
            std::fs::create_dir_all(&dir).map_err(|e| {
                Error::from(e).context(format_args!("create reconciler workdir {}", dir.display()))
            })?;
            (dir, None)
        } else {
            let dir = tempfile::Builder::new()
                .prefix("idp-reconcile-")
                .tempdir()?;
            (dir.path().to_path_buf(), Some(dir))
        };
        let mut applier = Applier::new(self.cluster.clone(), self.inventory.clone())
            .with_field_manager(self.field_manager.clone())
            .with_force(true);
        if let Some(ns) = &self.default_namespace {
            applier = applier.with_default_namespace(ns.clone());
        }
        let (events_tx, events_rx) = mpsc::unbounded_channel();
        let (status_tx, _) = watch::channel(ReconcileStatus::default());
        Ok(Reconciler {
            inner: Arc::new(Inner {
                mirror: Mirror::new(self.source.clone(), &workdir),
                source: self.source,
                cluster: self.cluster,
                applier,
                renderer: self.renderer,
                mutations: self.mutations,
                policies: self.policies,
                context: self.context,
                interval: self.interval,
                self_heal: self.self_heal,
                self_heal_interval: self.self_heal_interval,
                prune: self.prune,
                allow_empty_prune: self.allow_empty_prune,
                leader: self.leader,
                cache: WatchCache::new(events_tx),
                events: Mutex::new(Some(events_rx)),
                memory: tokio::sync::Mutex::new(Memory::default()),
                suspended: watch::channel(false).0,
                status: status_tx,
                _tempdir: tempdir,
            }),
        })
    }
}

/// Converges a [`GitSource`] into a cluster; see the [module docs](self).
///
/// Cloning is cheap; clones share the state (cache, last revision, status).
#[derive(Debug, Clone)]
pub struct Reconciler {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    source: GitSource,
    mirror: Mirror,
    cluster: Cluster,
    applier: Applier,
    renderer: Arc<dyn Renderer>,
    mutations: Vec<Arc<dyn Mutation>>,
    policies: Vec<Arc<dyn Policy>>,
    context: PolicyContext,
    interval: Duration,
    self_heal: bool,
    self_heal_interval: Duration,
    prune: bool,
    allow_empty_prune: bool,
    leader: Option<watch::Receiver<bool>>,
    cache: WatchCache,
    events: Mutex<Option<mpsc::UnboundedReceiver<()>>>,
    memory: tokio::sync::Mutex<Memory>,
    suspended: watch::Sender<bool>,
    status: watch::Sender<ReconcileStatus>,
    _tempdir: Option<tempfile::TempDir>,
}

/// What one revision rendered to.
#[derive(Debug, Clone)]
enum Desired {
    Ready(ManifestSet),
    Denied(ManifestSet, Vec<Violation>),
    Failed(StallReason),
}

#[derive(Debug, Default)]
struct Memory {
    revision: Option<String>,
    desired: Option<Desired>,
    healed: HashMap<ObjectRef, Instant>,
    /// The revision the last prune (or prune preview) ran for, and what the preview
    /// found; drift passes of the same revision reuse it instead of listing again.
    pruned: Option<String>,
    pending_prune: Vec<ObjectRef>,
    generation: u64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.cache.stop();
    }
}

impl Reconciler {
    /// Start building a reconciler of `source` into `cluster`, owning the objects of
    /// `inventory`.
    ///
    /// ```no_run
    /// # async fn demo(client: kube::Client) -> idp_core::Result<()> {
    /// use idp_deploy::reconcile::{GitSource, Reconciler};
    /// let r = Reconciler::builder(
    ///     idp_core::cluster::Cluster::new(client),
    ///     GitSource::new("/srv/git/deploy.git", "main", "apps/web"),
    ///     idp_core::cluster::Inventory::new("platform", "web")?,
    /// )
    /// .build()?;
    /// let status = r.reconcile_once().await;
    /// # Ok(()) }
    /// ```
    pub fn builder(cluster: Cluster, source: GitSource, inventory: Inventory) -> ReconcilerBuilder {
        ReconcilerBuilder {
            cluster,
            source,
            inventory,
            renderer: Arc::new(PlainYamlRenderer),
            mutations: Vec::new(),
            policies: Vec::new(),
            context: PolicyContext::new(),
            interval: Duration::from_secs(60),
            self_heal: true,
            self_heal_interval: Duration::from_secs(5),
            prune: true,
            allow_empty_prune: false,
            default_namespace: None,
            field_manager: DEFAULT_FIELD_MANAGER.to_owned(),
            workdir: None,
            leader: None,
        }
    }

    /// The source this reconciler follows.
    ///
    /// ```no_run
    /// # fn demo(r: idp_deploy::reconcile::Reconciler) {
    /// println!("{}", r.source().url);
    /// # }
    /// ```
    pub fn source(&self) -> &GitSource {
        &self.inner.source
    }

    /// The last published status.
    ///
    /// ```no_run
    /// # fn demo(r: idp_deploy::reconcile::Reconciler) {
    /// println!("{:?}", r.status().sync);
    /// # }
    /// ```
    pub fn status(&self) -> ReconcileStatus {
        self.inner.status.borrow().clone()
    }

    /// Stop writing (passes still compare and report, with
    /// [`StallReason::Suspended`]) until [`resume`](Self::resume).
    ///
    /// ```no_run
    /// # fn demo(r: idp_deploy::reconcile::Reconciler) {
    /// r.suspend();
    /// r.resume();
    /// # }
    /// ```
    pub fn suspend(&self) {
        self.inner.suspended.send_replace(true);
    }

    /// Resume after [`suspend`](Self::suspend).
    ///
    /// ```no_run
    /// # fn demo(r: idp_deploy::reconcile::Reconciler) {
    /// r.resume();
    /// # }
    /// ```
    pub fn resume(&self) {
        self.inner.suspended.send_replace(false);
    }

    /// Whether it is suspended.
    ///
    /// ```no_run
    /// # fn demo(r: idp_deploy::reconcile::Reconciler) {
    /// assert!(!r.is_suspended());
    /// # }
    /// ```
    pub fn is_suspended(&self) -> bool {
        *self.inner.suspended.borrow()
    }

    /// One full pass: fetch, render, mutate, check, apply what changed, prune, assess.
    /// Never fails: problems are in the returned status.
    ///
    /// ```no_run
    /// # async fn demo(r: idp_deploy::reconcile::Reconciler) {
    /// let status = r.reconcile_once().await;
    /// println!("{:?} {:?} at {:?}", status.sync, status.health, status.revision);
    /// # }
    /// ```
    pub async fn reconcile_once(&self) -> ReconcileStatus {
        self.pass(true).await
    }

    /// Run the loop in the background: a full pass now and every interval, on
    /// [`ReconcilerHandle::reconcile_now`], and a comparison pass (no fetch) whenever a
    /// watched live object changes. Spawn one loop per reconciler: only the first gets
    /// the watch events. The loop stops when the handle is shut down or dropped.
    ///
    /// ```no_run
    /// # async fn demo(r: idp_deploy::reconcile::Reconciler) {
    /// let handle = r.spawn();
    /// handle.shutdown().await;
    /// # }
    /// ```
    pub fn spawn(&self) -> ReconcilerHandle {
        let (now_tx, mut now_rx) = mpsc::unbounded_channel::<()>();
        let (stop_tx, mut stop_rx) = watch::channel(false);
        let this = self.clone();
        let mut events = self
            .inner
            .events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let span = tracing::info_span!("reconciler", url = %self.inner.source.url, branch = %self.inner.source.branch, path = %self.inner.source.path);
        let task = tokio::spawn(
            async move {
                let mut tick = tokio::time::interval(this.inner.interval);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut leader = this.inner.leader.clone();
                let mut suspended = this.inner.suspended.subscribe();
                loop {
                    let full = tokio::select! {
                        _ = stop_rx.changed() => break,
                        _ = tick.tick() => true,
                        Some(()) = now_rx.recv() => true,
                        Some(()) = recv_opt(&mut events) => {
                            // Let a burst of watch events settle into one pass.
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            if let Some(rx) = events.as_mut() {
                                while rx.try_recv().is_ok() {}
                            }
                            false
                        }
                        Ok(()) = changed_opt(&mut leader) => true,
                        Ok(()) = suspended.changed() => true,
                    };
                    this.pass(full).await;
                }
            }
            .instrument(span),
        );
        ReconcilerHandle {
            reconciler: self.clone(),
            now: now_tx,
            stop: stop_tx,
            task: Mutex::new(Some(task)),
        }
    }

    fn leading(&self) -> bool {
        self.inner.leader.as_ref().is_none_or(|l| *l.borrow())
    }

    #[tracing::instrument(name = "reconcile", skip_all, fields(full = full))]
    async fn pass(&self, full: bool) -> ReconcileStatus {
        let inner = &self.inner;
        let mut memory = inner.memory.lock().await;
        memory.generation += 1;
        let generation = memory.generation;
        if full || memory.desired.is_none() {
            match inner.mirror.fetch().await {
                Ok(revision) => {
                    if memory.revision.as_deref() != Some(revision.as_str())
                        || memory.desired.is_none()
                    {
                        let desired = self.render(&revision).await;
                        memory.revision = Some(revision);
                        memory.desired = Some(desired);
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e.report(), "fetch failed; nothing applied or pruned");
                    let status = ReconcileStatus {
                        revision: memory.revision.clone(),
                        stalled: Some(StallReason::FetchFailed {
                            message: e.report(),
                        }),
                        generation,
                        reconciled_at: Some(jiff::Timestamp::now()),
                        ..ReconcileStatus::default()
                    };
                    return self.publish(status);
                }
            }
        }
        let revision = memory.revision.clone();
        let base = ReconcileStatus {
            revision: revision.clone(),
            generation,
            reconciled_at: Some(jiff::Timestamp::now()),
            ..ReconcileStatus::default()
        };
        let set = match memory.desired.clone() {
            Some(Desired::Ready(set)) => set,
            Some(Desired::Denied(set, violations)) => {
                return self.publish(denied_status(base, &set, &violations));
            }
            Some(Desired::Failed(reason)) => {
                return self.publish(ReconcileStatus {
                    stalled: Some(reason),
                    ..base
                });
            }
            None => return self.publish(base),
        };
        let status = self.converge(base, &set, &mut memory, full).await;
        drop(memory);
        self.publish(status)
    }

    fn publish(&self, status: ReconcileStatus) -> ReconcileStatus {
        // A pass that wrote nothing and changed no verdict is routine: debug, so a quiet
        // environment does not fill the log every interval.
        let changed = {
            let last = self.inner.status.borrow();
            status.writes > 0
                || last.revision != status.revision
                || last.sync != status.sync
                || last.health != status.health
                || last.stalled != status.stalled
        };
        if changed {
            tracing::info!(
                revision = status.revision.as_deref().unwrap_or("-"),
                sync = ?status.sync,
                health = ?status.health,
                writes = status.writes,
                stalled = ?status.stalled,
                "reconciled"
            );
        } else {
            tracing::debug!(
                revision = status.revision.as_deref().unwrap_or("-"),
                "reconciled: nothing changed"
            );
        }
        self.inner.status.send_replace(status.clone());
        status
    }

    /// Check out, render, mutate and policy-check one revision.
    #[tracing::instrument(name = "reconcile.render", skip_all, fields(revision = %revision))]
    async fn render(&self, revision: &str) -> Desired {
        let inner = &self.inner;
        let dir = match inner.mirror.checkout(revision).await {
            Ok(dir) => dir,
            Err(e) => {
                return Desired::Failed(StallReason::RenderFailed {
                    message: e.report(),
                });
            }
        };
        let renderer = inner.renderer.clone();
        let rendered = tokio::task::spawn_blocking(move || renderer.render(&dir))
            .await
            .map_err(|e| Error::internal("render task failed").with_source(e))
            .and_then(|r| r);
        let set = match rendered {
            Ok(set) => set,
            Err(e) => {
                return Desired::Failed(StallReason::RenderFailed {
                    message: format!("{} renderer: {}", inner.renderer.name(), e.report()),
                });
            }
        };
        let mut objects: Vec<Object> = set.objects().to_vec();
        for object in &mut objects {
            for m in &inner.mutations {
                if let Err(e) = m.mutate(object, &inner.context) {
                    return Desired::Failed(StallReason::MutationFailed {
                        message: format!(
                            "mutation {} on {}: {}",
                            m.name(),
                            object.object_ref(),
                            e.report()
                        ),
                    });
                }
            }
        }
        let mut denied = Vec::new();
        for object in &objects {
            for p in &inner.policies {
                for v in p.evaluate(object, &inner.context) {
                    if v.enforcement.blocks() {
                        let v = if v.object.is_none() {
                            v.with_object(object.object_ref())
                        } else {
                            v
                        };
                        denied.push(v);
                    }
                }
            }
        }
        let set: ManifestSet = objects.into_iter().collect();
        if denied.is_empty() {
            Desired::Ready(set)
        } else {
            Desired::Denied(set, denied)
        }
    }

    /// Compare, apply what changed, prune, assess.
    async fn converge(
        &self,
        base: ReconcileStatus,
        set: &ManifestSet,
        memory: &mut Memory,
        full: bool,
    ) -> ReconcileStatus {
        let inner = &self.inner;
        let suspended = self.is_suspended();
        let leading = self.leading();
        let diff = match inner.applier.diff_with(set, &inner.cache).await {
            Ok(d) => d,
            Err(e) => {
                return ReconcileStatus {
                    stalled: Some(StallReason::ClusterError {
                        message: e.report(),
                    }),
                    ..base
                };
            }
        };
        inner.cache.watch(
            &inner.cluster,
            &diff.scopes,
            &inner.applier.inventory().selector(),
        );

        let mut statuses: Vec<ObjectStatus> = Vec::with_capacity(diff.objects.len());
        let mut to_apply: Vec<usize> = Vec::new();
        let now = Instant::now();
        for d in &diff.objects {
            let (result, reason, apply) = self.decide(
                d,
                suspended || (!full && !inner.self_heal),
                leading,
                &memory.healed,
                now,
            );
            if apply {
                to_apply.push(statuses.len());
            }
            statuses.push(ObjectStatus {
                object: d.object.clone(),
                result,
                health: None,
                reason,
            });
        }
        let mut writes = 0usize;
        let mut stalled = None;
        let mut apply_ok = true;
        if !to_apply.is_empty() {
            let subset: ManifestSet = to_apply
                .iter()
                .map(|i| set.objects()[diff.objects[*i].index].clone())
                .collect();
            match inner.applier.apply(&subset).await {
                Ok(report) => {
                    for (slot, applied) in to_apply.iter().zip(&report.objects) {
                        let d = &diff.objects[*slot];
                        writes +=
                            self.record_applied(&mut statuses[*slot], d, applied, memory, now);
                    }
                }
                Err(e) => {
                    // Find out which objects failed: apply them one by one (only on this
                    // failure path), so every object gets its own result and message.
                    tracing::warn!(error = %e.report(), "applying the changed objects failed; retrying them one by one");
                    let mut first_error = None;
                    for slot in &to_apply {
                        let d = &diff.objects[*slot];
                        let single: ManifestSet =
                            std::iter::once(set.objects()[d.index].clone()).collect();
                        match inner.applier.apply(&single).await {
                            Ok(report) => {
                                if let Some(applied) = report.objects.first() {
                                    // It differed before this pass and is in line now: the
                                    // batch wrote it even if this second apply did not.
                                    let mut applied = applied.clone();
                                    applied.written = true;
                                    let applied = &applied;
                                    writes += self.record_applied(
                                        &mut statuses[*slot],
                                        d,
                                        applied,
                                        memory,
                                        now,
                                    );
                                }
                            }
                            Err(e) => {
                                let message = e.report();
                                let st = &mut statuses[*slot];
                                st.result = ObjectResult::Failed;
                                st.reason = Some(OutOfSyncReason::ApplyFailed {
                                    message: message.clone(),
                                });
                                first_error.get_or_insert(message);
                            }
                        }
                    }
                    if let Some(message) = first_error {
                        apply_ok = false;
                        stalled = Some(StallReason::ClusterError { message });
                    }
                }
            }
        }
        // Prune: never after an error, never while suspended or not leading, never to
        // empty unless allowed.
        // A drift pass (no fetch) of a revision already pruned does not list again.
        let prune_due = full || memory.pruned != base.revision;
        if inner.prune && apply_ok && !suspended && leading && prune_due {
            if set.is_empty() && !inner.allow_empty_prune {
                stalled = Some(StallReason::EmptySource);
            } else {
                let options = PruneOptions::default().allow_empty(inner.allow_empty_prune);
                match inner.applier.prune(set, &options).await {
                    Ok(report) => {
                        memory.pruned.clone_from(&base.revision);
                        memory.pending_prune.clear();
                        for object in report.deleted {
                            writes += 1;
                            inner.cache.forget(&scope_of(&object), &object.name);
                            memory.healed.remove(&object);
                            statuses.push(ObjectStatus {
                                object,
                                result: ObjectResult::Pruned,
                                health: None,
                                reason: None,
                            });
                        }
                    }
                    Err(e) => {
                        stalled = Some(StallReason::ClusterError {
                            message: e.report(),
                        });
                    }
                }
            }
        }
        // Not writing: say what a prune would delete.
        if inner.prune && (suspended || !leading) && !set.is_empty() {
            if prune_due {
                let options = PruneOptions::default().dry_run(true);
                match inner.applier.prune(set, &options).await {
                    Ok(report) => {
                        memory.pruned.clone_from(&base.revision);
                        memory.pending_prune = report.deleted;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e.report(), "could not list what a prune would delete");
                    }
                }
            }
            for object in &memory.pending_prune {
                statuses.push(ObjectStatus {
                    object: object.clone(),
                    result: ObjectResult::Skipped,
                    health: None,
                    reason: Some(OutOfSyncReason::PendingPrune),
                });
            }
        }
        if stalled.is_none() {
            if suspended {
                stalled = Some(StallReason::Suspended);
            } else if !leading {
                stalled = Some(StallReason::NotLeader);
            }
        }
        // Health from the live copies we compared against.
        for (st, d) in statuses.iter_mut().zip(&diff.objects) {
            if st.health.is_some() || st.result == ObjectResult::Applied {
                continue;
            }
            st.health = match &d.live {
                None => Some(health::Health::new(
                    HealthStatus::Missing,
                    "not in the cluster",
                )),
                Some(live) => Object::from_value(live.clone())
                    .ok()
                    .and_then(|o| health::assess(&o)),
            };
        }
        let health = if statuses.is_empty() {
            HealthStatus::Healthy
        } else {
            HealthStatus::worst(
                statuses
                    .iter()
                    .filter(|s| s.result != ObjectResult::Pruned)
                    .map(|s| {
                        s.health
                            .as_ref()
                            .map_or(HealthStatus::Healthy, |h| h.status)
                    }),
            )
        };
        let in_sync = statuses.iter().all(|s| s.reason.is_none())
            && !matches!(
                stalled,
                Some(StallReason::ClusterError { .. } | StallReason::EmptySource)
            );
        ReconcileStatus {
            sync: if in_sync {
                SyncStatus::Synced
            } else {
                SyncStatus::OutOfSync
            },
            health,
            objects: statuses,
            stalled,
            writes,
            ..base
        }
    }

    /// Record one applied object in its status; returns 1 when it was written.
    fn record_applied(
        &self,
        st: &mut ObjectStatus,
        d: &ObjectDiff,
        applied: &idp_core::cluster::AppliedObject,
        memory: &mut Memory,
        now: Instant,
    ) -> usize {
        if applied.written
            && let Some(rv) = &applied.resource_version
        {
            self.inner
                .cache
                .expect(scope_of(&d.object), d.object.name.clone(), rv.clone());
        }
        if matches!(d.state, LiveState::Differs { drift: true, .. }) {
            memory.healed.insert(d.object.clone(), now);
        }
        st.result = if applied.written {
            ObjectResult::Applied
        } else {
            ObjectResult::Unchanged
        };
        st.reason = None;
        // Kinds with a health rule wait for the watch to report their status; the
        // others are healthy once written.
        let group = d.object.api_version.rsplit_once('/').map_or("", |(g, _)| g);
        st.health = health::has_rule(group, &d.object.kind).then(|| {
            health::Health::new(
                HealthStatus::Progressing,
                "applied; waiting for the live object's status",
            )
        });
        usize::from(applied.written)
    }

    fn decide(
        &self,
        d: &ObjectDiff,
        suspended: bool,
        leading: bool,
        healed: &HashMap<ObjectRef, Instant>,
        now: Instant,
    ) -> (ObjectResult, Option<OutOfSyncReason>, bool) {
        let inner = &self.inner;
        let reason = match &d.state {
            LiveState::InSync => return (ObjectResult::Unchanged, None, false),
            LiveState::Missing => OutOfSyncReason::Missing,
            LiveState::Differs {
                fields,
                drift: true,
            } => {
                if !inner.self_heal {
                    return (
                        ObjectResult::Skipped,
                        Some(OutOfSyncReason::SelfHealDisabled {
                            fields: fields.clone(),
                        }),
                        false,
                    );
                }
                if healed
                    .get(&d.object)
                    .is_some_and(|t| now.duration_since(*t) < inner.self_heal_interval)
                {
                    return (
                        ObjectResult::Skipped,
                        Some(OutOfSyncReason::SelfHealThrottled {
                            fields: fields.clone(),
                        }),
                        false,
                    );
                }
                OutOfSyncReason::LiveDiffers {
                    fields: fields.clone(),
                    drift: true,
                }
            }
            LiveState::Differs { fields, drift } => OutOfSyncReason::LiveDiffers {
                fields: fields.clone(),
                drift: *drift,
            },
        };
        if suspended {
            return (ObjectResult::Skipped, Some(reason), false);
        }
        if !leading {
            return (ObjectResult::Skipped, Some(reason), false);
        }
        (ObjectResult::Applied, Some(reason), true)
    }
}

fn denied_status(
    base: ReconcileStatus,
    set: &ManifestSet,
    violations: &[Violation],
) -> ReconcileStatus {
    let objects = set
        .iter()
        .map(|o| {
            let r = o.object_ref();
            let mine: Vec<Violation> = violations
                .iter()
                .filter(|v| {
                    v.object.as_ref().is_some_and(|vo| {
                        vo.kind == r.kind && vo.name == r.name && vo.api_version == r.api_version
                    })
                })
                .cloned()
                .collect();
            ObjectStatus {
                object: r,
                result: ObjectResult::Denied,
                health: None,
                reason: Some(OutOfSyncReason::DeniedByPolicy { violations: mine }),
            }
        })
        .collect();
    ReconcileStatus {
        sync: SyncStatus::OutOfSync,
        objects,
        stalled: Some(StallReason::DeniedByPolicy {
            violations: violations.len(),
        }),
        ..base
    }
}

fn scope_of(object: &ObjectRef) -> cache::ScopeKey {
    (
        object.api_version.clone(),
        object.kind.clone(),
        object.namespace.clone(),
    )
}

async fn recv_opt(rx: &mut Option<mpsc::UnboundedReceiver<()>>) -> Option<()> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

async fn changed_opt(rx: &mut Option<watch::Receiver<bool>>) -> std::result::Result<(), ()> {
    match rx {
        Some(rx) => rx.changed().await.map_err(|_| ()),
        None => std::future::pending().await,
    }
}

/// Controls a [`Reconciler`] loop started with [`Reconciler::spawn`].
#[derive(Debug)]
pub struct ReconcilerHandle {
    reconciler: Reconciler,
    now: mpsc::UnboundedSender<()>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ReconcilerHandle {
    /// Ask for a full pass now (fetch included), like `flux reconcile --with-source`.
    ///
    /// ```no_run
    /// # fn demo(h: idp_deploy::reconcile::ReconcilerHandle) {
    /// h.reconcile_now();
    /// # }
    /// ```
    pub fn reconcile_now(&self) {
        let _ = self.now.send(());
    }

    /// The reconciler (for [`suspend`](Reconciler::suspend), [`status`](Reconciler::status)).
    ///
    /// ```no_run
    /// # fn demo(h: idp_deploy::reconcile::ReconcilerHandle) {
    /// h.reconciler().suspend();
    /// # }
    /// ```
    pub fn reconciler(&self) -> &Reconciler {
        &self.reconciler
    }

    /// The last published status.
    ///
    /// ```no_run
    /// # fn demo(h: idp_deploy::reconcile::ReconcilerHandle) {
    /// let s = h.status();
    /// # }
    /// ```
    pub fn status(&self) -> ReconcileStatus {
        self.reconciler.status()
    }

    /// Every status as it is published.
    ///
    /// ```no_run
    /// # async fn demo(h: idp_deploy::reconcile::ReconcilerHandle) {
    /// let mut rx = h.subscribe();
    /// rx.changed().await.ok();
    /// # }
    /// ```
    pub fn subscribe(&self) -> watch::Receiver<ReconcileStatus> {
        self.reconciler.inner.status.subscribe()
    }

    /// Wait until a published status satisfies `done`; [`ErrorKind::Timeout`] with the
    /// last status otherwise.
    ///
    /// ```no_run
    /// # async fn demo(h: idp_deploy::reconcile::ReconcilerHandle) -> idp_core::Result<()> {
    /// let s = h.wait_for(|s| s.is_ready(), std::time::Duration::from_secs(60)).await?;
    /// # Ok(()) }
    /// ```
    pub async fn wait_for(
        &self,
        mut done: impl FnMut(&ReconcileStatus) -> bool,
        timeout: Duration,
    ) -> Result<ReconcileStatus> {
        let mut rx = self.subscribe();
        let wait = async {
            loop {
                {
                    let s = rx.borrow_and_update();
                    if done(&s) {
                        return Ok(s.clone());
                    }
                }
                if rx.changed().await.is_err() {
                    return Err(Error::unavailable("the reconciler stopped"));
                }
            }
        };
        if let Ok(r) = tokio::time::timeout(timeout, wait).await {
            r
        } else {
            let last = self.status();
            Err(Error::new(
                ErrorKind::Timeout,
                format!(
                    "the reconciler did not reach the expected status within {timeout:?}; last status: {}",
                    serde_json::to_string(&last).unwrap_or_default()
                ),
            ))
        }
    }

    /// Stop the loop and its watches, and wait for the current pass to end.
    ///
    /// ```no_run
    /// # async fn demo(h: idp_deploy::reconcile::ReconcilerHandle) {
    /// h.shutdown().await;
    /// # }
    /// ```
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.reconciler.inner.cache.stop();
    }
}

impl Drop for ReconcilerHandle {
    /// Dropping the handle stops the loop (without waiting for it).
    fn drop(&mut self) {
        self.stop.send_replace(true);
    }
}
