//! [`PreviewController`]: applies planned decisions to preview environments,
//! idempotently and in pull-request order.
//!
//! For an [`Ensure`](Decision::Ensure) it asks the [`EnvironmentProvider`] for the
//! environment (with our labels and a TTL, so every ensure pushes the expiry out), asks
//! the [`PreviewSource`] for the manifests at the head SHA and deploys them through the
//! [`Deployer`]; for a [`Destroy`](Decision::Destroy) it destroys the environment. Every
//! phase (pending → ready | failed, destroying → gone) is reported through a
//! [`StatusReporter`].
//!
//! **Ordering.** Per pull request (repository and number) the controller remembers
//! whether it is open, its head SHA and the forge's `updated_at` of the last event
//! applied. An event older than that is dropped as stale; once a pull request is closed
//! only a `reopened` event brings its preview back, so a `synchronize` delivered after
//! `closed` never resurrects it; the same event twice is a no-op. Events without a time
//! are ordered by arrival. Events of one pull request are applied one at a time; different
//! pull requests proceed concurrently.
//!
//! **Restarts.** The head SHA and event time are written into the environment's labels,
//! so [`PreviewController::recover`] rebuilds the open previews from the provider. What
//! is not rebuilt is the memory of *closed* pull requests: a stale event for a pull
//! request closed before the restart could recreate its preview — the
//! [`Reaper`](crate::reaper::Reaper), which asks the forge, removes it again.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use idp_preview::controller::PreviewController;
//! use idp_preview::decision::Decision;
//! use idp_preview::event::{Forge, PullRequestAction, PullRequestEvent};
//! use idp_preview::source::ManifestSource;
//! use idp_preview::status::PreviewPhase;
//! use idp_testkit::doubles::{MemoryDeployer, MemoryEnvironments};
//!
//! let controller = PreviewController::new(
//!     Arc::new(MemoryEnvironments::new()),
//!     Arc::new(MemoryDeployer::new()),
//!     Arc::new(ManifestSource::from_set(idp_core::ManifestSet::new())),
//! );
//! let open = PullRequestEvent::new(Forge::GitHub, PullRequestAction::Opened, "acme/cart", 42).with_head("f", "abc1234");
//! let ensure = Decision::Ensure { environment: "pr-cart-42".parse().unwrap() };
//! assert_eq!(controller.apply(&open, &ensure).await.unwrap().phase, PreviewPhase::Ready);
//! // The same event again changes nothing.
//! assert_eq!(controller.apply(&open, &ensure).await.unwrap().phase, PreviewPhase::Ignored);
//! # });
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use idp_core::model::EnvironmentSpec;
use idp_core::{
    Deployer, DeploymentStatus, EntityRef, Environment, EnvironmentName, EnvironmentProvider,
    Error, Release, Result,
};

use crate::decision::Decision;
use crate::event::{PullRequestAction, PullRequestEvent};
use crate::labels::{self, PreviewId};
use crate::source::PreviewSource;
use crate::status::{LoggingStatusReporter, PreviewPhase, PreviewStatus, StatusReporter};

/// How the controller shapes environments and releases.
///
/// ```
/// let c = idp_preview::controller::ControllerConfig::default();
/// assert_eq!(c.ttl.as_secs(), 72 * 3600);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControllerConfig {
    /// How long a preview lives without activity; every ensure starts it again.
    pub ttl: Duration,
    /// The catalog component deployed; `None`: `component:default/<repository name>`.
    pub component: Option<EntityRef>,
    /// The owner recorded on the environments.
    pub owner: Option<EntityRef>,
    /// Extra labels for every environment.
    pub labels: std::collections::BTreeMap<String, String>,
}

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(72 * 3600),
            component: None,
            owner: None,
            labels: std::collections::BTreeMap::new(),
        }
    }
}

impl ControllerConfig {
    /// Set the TTL.
    ///
    /// ```
    /// let c = idp_preview::controller::ControllerConfig::default().with_ttl(std::time::Duration::from_secs(3600));
    /// assert_eq!(c.ttl.as_secs(), 3600);
    /// ```
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// Deploy this component.
    ///
    /// ```
    /// let c = idp_preview::controller::ControllerConfig::default().with_component("component:default/cart".parse().unwrap());
    /// assert!(c.component.is_some());
    /// ```
    pub fn with_component(mut self, component: EntityRef) -> Self {
        self.component = Some(component);
        self
    }

    /// The component a pull request of `repo` deploys.
    ///
    /// ```
    /// let c = idp_preview::controller::ControllerConfig::default();
    /// assert_eq!(c.component_for("acme/Cart.UI").unwrap().to_string(), "component:default/cart-ui");
    /// ```
    pub fn component_for(&self, repo: &str) -> Result<EntityRef> {
        if let Some(c) = &self.component {
            return Ok(c.clone());
        }
        let last = repo.rsplit('/').next().unwrap_or(repo);
        let slug = idp_core::slugify(last, 63);
        let name = if slug.is_empty() {
            "preview"
        } else {
            slug.as_str()
        };
        format!("component:default/{name}").parse()
    }
}

/// What the controller knows about one pull request.
#[derive(Debug, Default)]
struct Tracked {
    open: bool,
    head_sha: Option<String>,
    updated_at: Option<jiff::Timestamp>,
    environment: Option<EnvironmentName>,
    last: Option<PreviewStatus>,
    last_action: Option<PullRequestAction>,
}

/// Applies [`Decision`]s to preview environments; see the [module documentation](self).
///
/// Cheap to share: put it in an `Arc` and call [`apply`](Self::apply) from as many tasks
/// as events arrive on.
#[derive(Debug)]
pub struct PreviewController {
    provider: Arc<dyn EnvironmentProvider>,
    deployer: Arc<dyn Deployer>,
    source: Arc<dyn PreviewSource>,
    reporter: Arc<dyn StatusReporter>,
    config: ControllerConfig,
    state: Mutex<HashMap<PreviewId, Arc<tokio::sync::Mutex<Tracked>>>>,
}

impl PreviewController {
    /// A controller over a provider, a deployer and a manifest source, reporting through
    /// [`LoggingStatusReporter`] with the default [`ControllerConfig`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// let c = idp_preview::controller::PreviewController::new(
    ///     Arc::new(idp_testkit::doubles::MemoryEnvironments::new()),
    ///     Arc::new(idp_testkit::doubles::MemoryDeployer::new()),
    ///     Arc::new(idp_preview::source::ManifestSource::from_set(Default::default())),
    /// );
    /// assert_eq!(c.config().ttl.as_secs(), 72 * 3600);
    /// ```
    pub fn new(
        provider: Arc<dyn EnvironmentProvider>,
        deployer: Arc<dyn Deployer>,
        source: Arc<dyn PreviewSource>,
    ) -> Self {
        Self {
            provider,
            deployer,
            source,
            reporter: Arc::new(LoggingStatusReporter),
            config: ControllerConfig::default(),
            state: Mutex::new(HashMap::new()),
        }
    }

    /// Report through `reporter`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let c = idp_preview::controller::PreviewController::new(
    /// #     Arc::new(idp_testkit::doubles::MemoryEnvironments::new()),
    /// #     Arc::new(idp_testkit::doubles::MemoryDeployer::new()),
    /// #     Arc::new(idp_preview::source::ManifestSource::from_set(Default::default())));
    /// let c = c.with_reporter(Arc::new(idp_preview::status::RecordingStatusReporter::new()));
    /// ```
    pub fn with_reporter(mut self, reporter: Arc<dyn StatusReporter>) -> Self {
        self.reporter = reporter;
        self
    }

    /// Use `config`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let c = idp_preview::controller::PreviewController::new(
    /// #     Arc::new(idp_testkit::doubles::MemoryEnvironments::new()),
    /// #     Arc::new(idp_testkit::doubles::MemoryDeployer::new()),
    /// #     Arc::new(idp_preview::source::ManifestSource::from_set(Default::default())));
    /// let c = c.with_config(idp_preview::controller::ControllerConfig::default().with_ttl(std::time::Duration::from_secs(60)));
    /// assert_eq!(c.config().ttl.as_secs(), 60);
    /// ```
    pub fn with_config(mut self, config: ControllerConfig) -> Self {
        self.config = config;
        self
    }

    /// The configuration.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let c = idp_preview::controller::PreviewController::new(
    /// #     Arc::new(idp_testkit::doubles::MemoryEnvironments::new()),
    /// #     Arc::new(idp_testkit::doubles::MemoryDeployer::new()),
    /// #     Arc::new(idp_preview::source::ManifestSource::from_set(Default::default())));
    /// assert!(c.config().component.is_none());
    /// ```
    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// The provider previews live in.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let c = idp_preview::controller::PreviewController::new(
    /// #     Arc::new(idp_testkit::doubles::MemoryEnvironments::new()),
    /// #     Arc::new(idp_testkit::doubles::MemoryDeployer::new()),
    /// #     Arc::new(idp_preview::source::ManifestSource::from_set(Default::default())));
    /// let _p: &Arc<dyn idp_core::EnvironmentProvider> = c.provider();
    /// ```
    pub fn provider(&self) -> &Arc<dyn EnvironmentProvider> {
        &self.provider
    }

    fn entry(&self, id: &PreviewId) -> Arc<tokio::sync::Mutex<Tracked>> {
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        state.entry(id.clone()).or_default().clone()
    }

    /// Rebuild what the controller knows about open previews from the provider's
    /// environments (after a restart). Returns how many previews were found.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # let c = idp_preview::controller::PreviewController::new(
    /// #     Arc::new(idp_testkit::doubles::MemoryEnvironments::new()),
    /// #     Arc::new(idp_testkit::doubles::MemoryDeployer::new()),
    /// #     Arc::new(idp_preview::source::ManifestSource::from_set(Default::default())));
    /// assert_eq!(c.recover().await.unwrap(), 0);
    /// # });
    /// ```
    #[tracing::instrument(name = "preview.controller.recover", skip_all)]
    pub async fn recover(&self) -> Result<usize> {
        let mut found = 0;
        for env in self.provider.list().await? {
            if !labels::is_ours(&env.labels) {
                continue;
            }
            let Some(id) = PreviewId::from_labels(&env.labels) else {
                continue;
            };
            let entry = self.entry(&id);
            let mut tracked = entry.lock().await;
            if tracked.last.is_some() || tracked.updated_at.is_some() {
                continue; // events already arrived since the start: they know better
            }
            tracked.open = true;
            tracked.head_sha = env.labels.get(labels::HEAD_SHA).cloned();
            tracked.updated_at = env
                .labels
                .get(labels::PR_UPDATED_AT)
                .and_then(|t| t.parse().ok());
            tracked.environment = Some(env.name.clone());
            found += 1;
        }
        tracing::info!(found, "recovered previews from the provider");
        Ok(found)
    }

    /// The last status of every preview the controller has seen since it started (or
    /// recovered), ordered by preview id.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # let c = idp_preview::controller::PreviewController::new(
    /// #     Arc::new(idp_testkit::doubles::MemoryEnvironments::new()),
    /// #     Arc::new(idp_testkit::doubles::MemoryDeployer::new()),
    /// #     Arc::new(idp_preview::source::ManifestSource::from_set(Default::default())));
    /// assert!(c.statuses().await.is_empty());
    /// # });
    /// ```
    pub async fn statuses(&self) -> Vec<PreviewStatus> {
        let entries: Vec<_> = {
            let state = self
                .state
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            state.values().cloned().collect()
        };
        let mut out = Vec::new();
        for entry in entries {
            if let Some(last) = entry.lock().await.last.clone() {
                out.push(last);
            }
        }
        out.sort_by(|a, b| a.preview.cmp(&b.preview));
        out
    }

    async fn report(&self, status: &PreviewStatus) {
        if let Err(err) = self.reporter.report(status).await {
            tracing::warn!(preview = %status.preview, phase = %status.phase, error = %err.report(),
                "status reporter failed; the preview carries on");
        }
    }

    /// Why `event` must not change the preview, if it must not.
    fn stale_reason(
        tracked: &Tracked,
        event: &PullRequestEvent,
        decision: &Decision,
    ) -> Option<String> {
        if let (Some(seen), Some(at)) = (tracked.updated_at, event.updated_at)
            && at < seen
        {
            return Some(format!(
                "stale event: the pull request was updated at {at}, before the last event applied ({seen})"
            ));
        }
        let closed = tracked
            .last_action
            .as_ref()
            .is_some_and(PullRequestAction::is_close)
            || (!tracked.open && tracked.last_action.is_some());
        if closed && matches!(decision, Decision::Ensure { .. }) {
            if event.action != PullRequestAction::Reopened {
                return Some(format!(
                    "the pull request is closed; a late `{}` event does not bring its preview back (reopen it)",
                    action_name(&event.action)
                ));
            }
            if event.updated_at.is_some() && event.updated_at == tracked.updated_at {
                return Some("duplicate event: already applied".to_owned());
            }
        }
        if matches!(decision, Decision::Ensure { .. }) && !event.is_open() {
            return Some("the event says the pull request is closed; nothing to ensure".to_owned());
        }
        let same_time = event.updated_at.is_none() || event.updated_at == tracked.updated_at;
        let last_phase = tracked.last.as_ref().map(|s| s.phase);
        match decision {
            Decision::Ensure { environment }
                if same_time
                    && tracked.open
                    && last_phase == Some(PreviewPhase::Ready)
                    && tracked.head_sha.as_deref() == Some(event.head_sha.as_str())
                    && tracked.environment.as_ref() == Some(environment)
                    && tracked.last_action.as_ref() == Some(&event.action) =>
            {
                Some(format!(
                    "duplicate event: the preview is already ready at {}",
                    event.head_sha
                ))
            }
            Decision::Destroy { environment, .. }
                if same_time
                    && last_phase == Some(PreviewPhase::Gone)
                    && tracked.environment.as_ref() == Some(environment) =>
            {
                Some("duplicate event: the preview is already gone".to_owned())
            }
            _ => None,
        }
    }

    /// Plan `event` under `config` and apply the decision: the one call a webhook
    /// endpoint makes after [`WebhookHandler`](crate::webhook::WebhookHandler) has
    /// verified and parsed a delivery.
    ///
    /// The per-repository cap and "already has a preview" are judged from the
    /// provider's list of our environments (never from memory), so a restarted
    /// controller plans exactly as before.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// use std::sync::Arc;
    /// use idp_preview::{controller::PreviewController, event::*, plan::PreviewConfig, status::PreviewPhase};
    /// let c = PreviewController::new(
    ///     Arc::new(idp_testkit::doubles::MemoryEnvironments::new()),
    ///     Arc::new(idp_testkit::doubles::MemoryDeployer::new()),
    ///     Arc::new(idp_preview::source::ManifestSource::from_set(Default::default())),
    /// );
    /// let opened = PullRequestEvent::new(Forge::GitHub, PullRequestAction::Opened, "acme/cart", 42)
    ///     .with_head("feature/login", "9f1c2e7d").with_base("main");
    /// let status = c.handle(&opened, &PreviewConfig::default()).await.unwrap();
    /// assert_eq!(status.phase, PreviewPhase::Ready);
    /// # });
    /// ```
    #[tracing::instrument(name = "preview.controller.handle", skip_all,
        fields(repo = %event.repo, pr = event.number, action = action_name(&event.action)))]
    pub async fn handle(
        &self,
        event: &PullRequestEvent,
        config: &crate::plan::PreviewConfig,
    ) -> Result<PreviewStatus> {
        let mut ctx = crate::plan::PlanContext::default();
        for env in self.provider.list().await? {
            let Some(id) = PreviewId::from_labels(&env.labels) else {
                continue;
            };
            if id.repo().eq_ignore_ascii_case(&event.repo) {
                ctx.open_previews += 1;
                if id.number() == event.number {
                    ctx.has_preview = true;
                }
            }
        }
        let decision = crate::plan::plan_with(event, config, &ctx);
        self.apply(event, &decision).await
    }

    /// Apply one planned decision for `event` and return the preview's resulting status.
    ///
    /// A failure to create or deploy the preview is **not** an `Err`: it is reported and
    /// returned as a status in phase [`Failed`](PreviewPhase::Failed) with the error as
    /// message. `Err` is returned only when the event itself is unusable (no valid
    /// repository).
    #[tracing::instrument(name = "preview.controller.apply", skip_all,
        fields(repo = %event.repo, pr = event.number, action = action_name(&event.action), sha = %event.head_sha))]
    pub async fn apply(
        &self,
        event: &PullRequestEvent,
        decision: &Decision,
    ) -> Result<PreviewStatus> {
        let id = PreviewId::new(&event.repo, event.number)
            .map_err(|e| e.context(format_args!("pull request event for {}", event.repo)))?;
        let entry = self.entry(&id);
        let mut tracked = entry.lock().await;

        if let Some(reason) = Self::stale_reason(&tracked, event, decision) {
            tracing::info!(preview = %id, reason, "event ignored");
            let mut status = PreviewStatus::new(id, PreviewPhase::Ignored).with_message(reason);
            status.environment = decision
                .environment()
                .cloned()
                .or_else(|| tracked.environment.clone());
            status.head_sha.clone_from(&tracked.head_sha);
            return Ok(status);
        }

        let status = match decision {
            Decision::Ignore { reason } => {
                let mut status =
                    PreviewStatus::new(id, PreviewPhase::Ignored).with_message(reason.clone());
                status.environment.clone_from(&tracked.environment);
                // Record time and state, so an older event cannot win later.
                tracked.open = event.is_open();
                tracked.last_action = Some(event.action.clone());
                if event.updated_at.is_some() {
                    tracked.updated_at = event.updated_at;
                }
                return Ok(status);
            }
            Decision::Ensure { environment } => self.ensure(&id, event, environment).await,
            Decision::Destroy {
                environment,
                reason,
            } => self.destroy(&id, event, environment, reason).await,
        };
        tracked.open = event.is_open();
        if event.updated_at.is_some() {
            tracked.updated_at = event.updated_at;
        }
        if matches!(decision, Decision::Ensure { .. }) {
            tracked.head_sha = Some(event.head_sha.clone());
        }
        tracked.environment = decision.environment().cloned();
        tracked.last_action = Some(event.action.clone());
        tracked.last = Some(status.clone());
        Ok(status)
    }

    fn spec_for(
        &self,
        id: &PreviewId,
        event: &PullRequestEvent,
        environment: &EnvironmentName,
    ) -> EnvironmentSpec {
        let mut spec = EnvironmentSpec::new(environment.clone()).with_ttl(self.config.ttl);
        spec.owner.clone_from(&self.config.owner);
        spec.labels.extend(self.config.labels.clone());
        spec.labels.extend(id.labels());
        if !event.head_sha.is_empty() {
            spec.labels
                .insert(labels::HEAD_SHA.to_owned(), event.head_sha.clone());
        }
        if let Some(at) = event.updated_at {
            spec.labels
                .insert(labels::PR_UPDATED_AT.to_owned(), at.to_string());
        }
        spec
    }

    async fn ensure(
        &self,
        id: &PreviewId,
        event: &PullRequestEvent,
        environment: &EnvironmentName,
    ) -> PreviewStatus {
        let pending = PreviewStatus::new(id.clone(), PreviewPhase::Pending)
            .with_environment(environment.clone())
            .with_head_sha(event.head_sha.clone());
        self.report(&pending).await;
        match self.ensure_inner(id, event, environment, &pending).await {
            Ok(ready) => {
                self.report(&ready).await;
                ready
            }
            Err(err) => {
                let failed = pending
                    .in_phase(PreviewPhase::Failed)
                    .with_message(err.report());
                tracing::warn!(preview = %id, error = %err.report(), "preview failed");
                self.report(&failed).await;
                failed
            }
        }
    }

    async fn ensure_inner(
        &self,
        id: &PreviewId,
        event: &PullRequestEvent,
        environment: &EnvironmentName,
        pending: &PreviewStatus,
    ) -> Result<PreviewStatus> {
        let spec = self.spec_for(id, event, environment);
        let env: Environment = self.provider.ensure(&spec).await?;
        let manifests = self
            .source
            .manifests(event, &env)
            .await
            .map_err(|e| e.context(format_args!("manifests of {id} at {}", event.head_sha)))?;
        let mut release = Release::new(
            self.config.component_for(&event.repo)?,
            environment.clone(),
            manifests,
        )
        .with_source_revision(event.head_sha.clone())
        .with_message(format!("preview of {id} at {}", event.head_sha));
        if !event.author.is_empty() {
            release = release.with_author(event.author.clone());
        }
        let deployment = self
            .deployer
            .deploy(&release)
            .await
            .map_err(|e| e.context(format_args!("deploy {id} at {}", event.head_sha)))?;
        if deployment.status == DeploymentStatus::Failed {
            return Err(Error::unavailable(format!(
                "deployment {} of {id} at {} failed",
                deployment.id, event.head_sha
            )));
        }
        let mut ready = pending.in_phase(PreviewPhase::Ready);
        ready.urls = env.url.iter().cloned().collect();
        ready.namespace.clone_from(&env.namespace);
        ready.deployment = Some(deployment.id);
        ready.expires_at = env.expires_at;
        Ok(ready)
    }

    async fn destroy(
        &self,
        id: &PreviewId,
        event: &PullRequestEvent,
        environment: &EnvironmentName,
        reason: &str,
    ) -> PreviewStatus {
        let destroying = PreviewStatus::new(id.clone(), PreviewPhase::Destroying)
            .with_environment(environment.clone())
            .with_message(reason.to_owned());
        let destroying = if event.head_sha.is_empty() {
            destroying
        } else {
            destroying.with_head_sha(event.head_sha.clone())
        };
        self.report(&destroying).await;
        match self.provider.destroy(environment).await {
            Ok(existed) => {
                let gone = destroying
                    .in_phase(PreviewPhase::Gone)
                    .with_message(if existed {
                        format!("removed: {reason}")
                    } else {
                        format!("nothing to remove ({reason})")
                    });
                self.report(&gone).await;
                gone
            }
            Err(err) => {
                let failed = destroying
                    .in_phase(PreviewPhase::Failed)
                    .with_message(err.report());
                tracing::warn!(preview = %id, error = %err.report(), "preview teardown failed");
                self.report(&failed).await;
                failed
            }
        }
    }
}

fn action_name(action: &PullRequestAction) -> &'static str {
    match action {
        PullRequestAction::Opened => "opened",
        PullRequestAction::Reopened => "reopened",
        PullRequestAction::Synchronize => "synchronize",
        PullRequestAction::Closed { .. } => "closed",
        PullRequestAction::Labeled { .. } => "labeled",
        PullRequestAction::Unlabeled { .. } => "unlabeled",
        PullRequestAction::ReadyForReview => "ready_for_review",
        PullRequestAction::ConvertedToDraft => "converted_to_draft",
        PullRequestAction::Edited => "edited",
    }
}
