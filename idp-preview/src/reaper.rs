//! The [`Reaper`]: removes expired previews and orphans, found by listing the provider
//! (never from memory), so previews are cleaned up even when the controller missed the
//! `closed` event.
//!
//! A sweep looks at every environment the provider lists that carries our ownership
//! labels and destroys it when
//! - its expiry ([`labels::EXPIRES_AT`]) has passed, or
//! - its pull request, asked of the forge through [`PullRequestLookup`], is closed or no
//!   longer exists, or
//! - the pull request no longer matches what gets a preview (a check the platform gives,
//!   typically its planner: labels removed, turned into a draft).
//!
//! Deletions are rate-limited (per sweep and per minute); what is over the limit is
//! reported as deferred and goes in a later sweep. A failing lookup keeps the preview
//! (never delete on doubt). Every deletion is logged with its reason.
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use idp_preview::reaper::{MemoryPullRequests, Reaper};
//! let reaper = Reaper::new(
//!     Arc::new(idp_testkit::doubles::MemoryEnvironments::new()),
//!     Arc::new(MemoryPullRequests::new()),
//! );
//! let report = reaper.sweep().await.unwrap();
//! assert_eq!(report.examined, 0);
//! # });
//! ```

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use idp_core::{EnvironmentName, EnvironmentProvider, Result};
use serde::{Deserialize, Serialize};

use crate::event::PullRequestEvent;
use crate::labels::{self, PreviewId};

/// Asks the forge how a pull request is now (the platform's GitHub or GitLab client).
///
/// ```
/// use idp_preview::{event::PullRequestEvent, reaper::PullRequestLookup};
/// #[derive(Debug)]
/// struct AlwaysGone;
/// #[async_trait::async_trait]
/// impl PullRequestLookup for AlwaysGone {
///     async fn pull_request(&self, _: &str, _: u64) -> idp_core::Result<Option<PullRequestEvent>> { Ok(None) }
/// }
/// let _l: std::sync::Arc<dyn PullRequestLookup> = std::sync::Arc::new(AlwaysGone);
/// ```
#[async_trait]
pub trait PullRequestLookup: Send + Sync + fmt::Debug {
    /// The pull request's current state as an event (its `open`, labels, draft flag and
    /// head), or `None` when it does not exist (deleted, repository gone).
    async fn pull_request(&self, repo: &str, number: u64) -> Result<Option<PullRequestEvent>>;
}

/// A [`PullRequestLookup`] over pull requests kept in memory.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use idp_preview::event::{Forge, PullRequestAction, PullRequestEvent};
/// use idp_preview::reaper::{MemoryPullRequests, PullRequestLookup};
/// let prs = MemoryPullRequests::new();
/// prs.upsert(PullRequestEvent::new(Forge::GitHub, PullRequestAction::Opened, "a/b", 1));
/// assert!(prs.pull_request("a/b", 1).await.unwrap().unwrap().open);
/// prs.close("a/b", 1);
/// assert!(!prs.pull_request("a/b", 1).await.unwrap().unwrap().open);
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryPullRequests {
    prs: Arc<Mutex<HashMap<(String, u64), PullRequestEvent>>>,
}

impl MemoryPullRequests {
    /// No pull requests.
    ///
    /// ```
    /// let _ = idp_preview::reaper::MemoryPullRequests::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<(String, u64), PullRequestEvent>> {
        self.prs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Record the pull request's current state.
    ///
    /// ```
    /// # use idp_preview::event::*;
    /// idp_preview::reaper::MemoryPullRequests::new()
    ///     .upsert(PullRequestEvent::new(Forge::GitHub, PullRequestAction::Opened, "a/b", 1));
    /// ```
    pub fn upsert(&self, state: PullRequestEvent) {
        self.map().insert((state.repo.clone(), state.number), state);
    }

    /// Mark a known pull request closed.
    ///
    /// ```
    /// idp_preview::reaper::MemoryPullRequests::new().close("a/b", 1);
    /// ```
    pub fn close(&self, repo: &str, number: u64) {
        if let Some(pr) = self.map().get_mut(&(repo.to_owned(), number)) {
            pr.open = false;
        }
    }

    /// Forget a pull request (as if deleted).
    ///
    /// ```
    /// idp_preview::reaper::MemoryPullRequests::new().remove("a/b", 1);
    /// ```
    pub fn remove(&self, repo: &str, number: u64) {
        self.map().remove(&(repo.to_owned(), number));
    }
}

#[async_trait]
impl PullRequestLookup for MemoryPullRequests {
    async fn pull_request(&self, repo: &str, number: u64) -> Result<Option<PullRequestEvent>> {
        Ok(self.map().get(&(repo.to_owned(), number)).cloned())
    }
}

/// Whether an open pull request still gets a preview: `Some(reason)` when it does not.
pub type StillWanted = Arc<dyn Fn(&PullRequestEvent) -> Option<String> + Send + Sync>;

/// Limits and mode of a [`Reaper`].
///
/// ```
/// let c = idp_preview::reaper::ReaperConfig::default();
/// assert_eq!(c.max_per_sweep, 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaperConfig {
    /// At most this many deletions in one sweep.
    pub max_per_sweep: usize,
    /// At most this many deletions in any 60 seconds, across sweeps.
    pub max_per_minute: usize,
    /// Report what would be deleted, delete nothing.
    pub dry_run: bool,
}

impl Default for ReaperConfig {
    fn default() -> Self {
        Self {
            max_per_sweep: 20,
            max_per_minute: 60,
            dry_run: false,
        }
    }
}

impl ReaperConfig {
    /// Set both rate limits.
    ///
    /// ```
    /// let c = idp_preview::reaper::ReaperConfig::default().with_limits(5, 10);
    /// assert_eq!((c.max_per_sweep, c.max_per_minute), (5, 10));
    /// ```
    pub fn with_limits(mut self, per_sweep: usize, per_minute: usize) -> Self {
        self.max_per_sweep = per_sweep;
        self.max_per_minute = per_minute;
        self
    }

    /// Only report.
    ///
    /// ```
    /// assert!(idp_preview::reaper::ReaperConfig::default().with_dry_run(true).dry_run);
    /// ```
    pub fn with_dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }
}

/// Why a preview is (to be) removed.
///
/// ```
/// use idp_preview::reaper::ReapReason;
/// assert_eq!(ReapReason::PullRequestMissing.to_string(), "the pull request no longer exists");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum ReapReason {
    /// Its expiry passed without activity.
    Expired {
        /// When it expired.
        at: jiff::Timestamp,
    },
    /// Its pull request is closed.
    PullRequestClosed,
    /// Its pull request does not exist.
    PullRequestMissing,
    /// Its pull request no longer gets a preview.
    NoLongerMatches {
        /// Why, as the platform's check says.
        detail: String,
    },
}

impl fmt::Display for ReapReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReapReason::Expired { at } => write!(f, "expired at {at}"),
            ReapReason::PullRequestClosed => f.write_str("the pull request is closed"),
            ReapReason::PullRequestMissing => f.write_str("the pull request no longer exists"),
            ReapReason::NoLongerMatches { detail } => {
                write!(f, "the pull request no longer gets a preview: {detail}")
            }
        }
    }
}

/// One preview a sweep removed (or, deferred or in a dry run, would remove).
///
/// ```
/// let r = idp_preview::reaper::Reaped {
///     environment: "pr-b-1".parse().unwrap(),
///     preview: Some("a/b#1".into()),
///     reason: idp_preview::reaper::ReapReason::PullRequestClosed,
/// };
/// assert_eq!(r.environment.as_str(), "pr-b-1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reaped {
    /// The environment.
    pub environment: EnvironmentName,
    /// Its pull request, `owner/repo#n`, when recorded.
    pub preview: Option<String>,
    /// Why.
    pub reason: ReapReason,
}

/// A preview a sweep could not judge or remove; it is kept.
///
/// ```
/// let f = idp_preview::reaper::ReapFailure { environment: "e".parse().unwrap(), error: "forge down".into() };
/// assert_eq!(f.error, "forge down");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReapFailure {
    /// The environment.
    pub environment: EnvironmentName,
    /// What went wrong.
    pub error: String,
}

/// What one sweep did.
///
/// ```
/// let r = idp_preview::reaper::SweepReport::default();
/// assert!(r.reaped.is_empty() && r.deferred.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    /// How many of our environments were looked at.
    pub examined: usize,
    /// How many were kept (still wanted).
    pub kept: usize,
    /// Removed (in a dry run: would be removed).
    pub reaped: Vec<Reaped>,
    /// Due for removal but over the rate limit: a later sweep removes them.
    pub deferred: Vec<Reaped>,
    /// Could not be judged or removed; kept.
    pub failed: Vec<ReapFailure>,
    /// Whether this was a dry run.
    pub dry_run: bool,
}

/// Sweeps expired and orphaned previews; see the [module documentation](self).
pub struct Reaper {
    provider: Arc<dyn EnvironmentProvider>,
    lookup: Arc<dyn PullRequestLookup>,
    still_wanted: Option<StillWanted>,
    config: ReaperConfig,
    recent: Mutex<VecDeque<Instant>>,
}

impl fmt::Debug for Reaper {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reaper")
            .field("provider", &self.provider)
            .field("lookup", &self.lookup)
            .field("still_wanted", &self.still_wanted.is_some())
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Reaper {
    /// A reaper over `provider`'s environments, asking `lookup` about pull requests,
    /// with the default [`ReaperConfig`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// let r = idp_preview::reaper::Reaper::new(
    ///     Arc::new(idp_testkit::doubles::MemoryEnvironments::new()),
    ///     Arc::new(idp_preview::reaper::MemoryPullRequests::new()),
    /// );
    /// assert!(!r.config().dry_run);
    /// ```
    pub fn new(provider: Arc<dyn EnvironmentProvider>, lookup: Arc<dyn PullRequestLookup>) -> Self {
        Self {
            provider,
            lookup,
            still_wanted: None,
            config: ReaperConfig::default(),
            recent: Mutex::new(VecDeque::new()),
        }
    }

    /// Use `config`.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let r = idp_preview::reaper::Reaper::new(Arc::new(idp_testkit::doubles::MemoryEnvironments::new()), Arc::new(idp_preview::reaper::MemoryPullRequests::new()));
    /// let r = r.with_config(idp_preview::reaper::ReaperConfig::default().with_dry_run(true));
    /// assert!(r.config().dry_run);
    /// ```
    pub fn with_config(mut self, config: ReaperConfig) -> Self {
        self.config = config;
        self
    }

    /// Also remove previews of open pull requests for which `check` returns a reason
    /// (typically: planning the pull request's current state no longer yields Ensure).
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let r = idp_preview::reaper::Reaper::new(Arc::new(idp_testkit::doubles::MemoryEnvironments::new()), Arc::new(idp_preview::reaper::MemoryPullRequests::new()));
    /// let r = r.with_still_wanted(Arc::new(|pr: &idp_preview::event::PullRequestEvent| {
    ///     pr.draft.then(|| "drafts get no preview".to_string())
    /// }));
    /// # let _ = r;
    /// ```
    pub fn with_still_wanted(mut self, check: StillWanted) -> Self {
        self.still_wanted = Some(check);
        self
    }

    /// The configuration.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # let r = idp_preview::reaper::Reaper::new(Arc::new(idp_testkit::doubles::MemoryEnvironments::new()), Arc::new(idp_preview::reaper::MemoryPullRequests::new()));
    /// assert_eq!(r.config().max_per_minute, 60);
    /// ```
    pub fn config(&self) -> &ReaperConfig {
        &self.config
    }

    /// Sweep now.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # let r = idp_preview::reaper::Reaper::new(Arc::new(idp_testkit::doubles::MemoryEnvironments::new()), Arc::new(idp_preview::reaper::MemoryPullRequests::new()));
    /// assert!(r.sweep().await.unwrap().reaped.is_empty());
    /// # });
    /// ```
    pub async fn sweep(&self) -> Result<SweepReport> {
        self.sweep_at(jiff::Timestamp::now()).await
    }

    /// Why a preview should go, or `Ok(None)` to keep it.
    async fn judge(
        &self,
        env: &idp_core::Environment,
        id: Option<&PreviewId>,
        now: jiff::Timestamp,
    ) -> Result<Option<ReapReason>> {
        if let Some(at) = env.expires_at
            && at <= now
        {
            return Ok(Some(ReapReason::Expired { at }));
        }
        let Some(id) = id else {
            return Ok(None); // no pull request recorded: only the expiry applies
        };
        match self.lookup.pull_request(id.repo(), id.number()).await? {
            None => Ok(Some(ReapReason::PullRequestMissing)),
            Some(pr) if !pr.is_open() => Ok(Some(ReapReason::PullRequestClosed)),
            Some(pr) => Ok(self
                .still_wanted
                .as_ref()
                .and_then(|check| check(&pr))
                .map(|detail| ReapReason::NoLongerMatches { detail })),
        }
    }

    /// How many deletions the per-minute window still allows.
    fn budget(&self) -> usize {
        let mut recent = self
            .recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            recent.pop_front();
        }
        self.config
            .max_per_sweep
            .min(self.config.max_per_minute.saturating_sub(recent.len()))
    }

    fn spend(&self) {
        self.recent
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push_back(Instant::now());
    }

    /// Sweep as if the time were `now` (expiry is judged against it).
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// # use std::sync::Arc;
    /// # let r = idp_preview::reaper::Reaper::new(Arc::new(idp_testkit::doubles::MemoryEnvironments::new()), Arc::new(idp_preview::reaper::MemoryPullRequests::new()));
    /// let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * 30);
    /// assert_eq!(r.sweep_at(later).await.unwrap().examined, 0);
    /// # });
    /// ```
    #[tracing::instrument(name = "preview.reaper.sweep", skip_all, fields(dry_run = self.config.dry_run))]
    pub async fn sweep_at(&self, now: jiff::Timestamp) -> Result<SweepReport> {
        let mut report = SweepReport {
            dry_run: self.config.dry_run,
            ..SweepReport::default()
        };
        let mut budget = if self.config.dry_run {
            usize::MAX
        } else {
            self.budget()
        };
        let mut envs = self.provider.list().await?;
        envs.sort_by(|a, b| a.name.cmp(&b.name));
        for env in envs {
            if !labels::is_ours(&env.labels) {
                continue; // never touch what is not ours
            }
            report.examined += 1;
            let id = PreviewId::from_labels(&env.labels);
            let reason = match self.judge(&env, id.as_ref(), now).await {
                Ok(Some(reason)) => reason,
                Ok(None) => {
                    report.kept += 1;
                    continue;
                }
                Err(err) => {
                    tracing::warn!(environment = %env.name, error = %err.report(), "cannot judge preview; keeping it");
                    report.failed.push(ReapFailure {
                        environment: env.name.clone(),
                        error: err.report(),
                    });
                    continue;
                }
            };
            let reaped = Reaped {
                environment: env.name.clone(),
                preview: id.as_ref().map(ToString::to_string),
                reason,
            };
            if budget == 0 {
                report.deferred.push(reaped);
                continue;
            }
            budget -= 1;
            if self.config.dry_run {
                tracing::info!(environment = %reaped.environment, preview = ?reaped.preview, reason = %reaped.reason, "would reap preview (dry run)");
                report.reaped.push(reaped);
                continue;
            }
            self.spend();
            match self.provider.destroy(&reaped.environment).await {
                Ok(_) => {
                    tracing::info!(environment = %reaped.environment, preview = ?reaped.preview, reason = %reaped.reason, "reaped preview");
                    report.reaped.push(reaped);
                }
                Err(err) => {
                    tracing::warn!(environment = %reaped.environment, error = %err.report(), "cannot reap preview");
                    report.failed.push(ReapFailure {
                        environment: reaped.environment,
                        error: err.report(),
                    });
                }
            }
        }
        if !report.deferred.is_empty() {
            tracing::info!(
                deferred = report.deferred.len(),
                "reap rate limit reached; the rest goes in a later sweep"
            );
        }
        Ok(report)
    }
}
