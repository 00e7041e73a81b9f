//! DORA metrics from deployment history alone: deployment frequency, lead time for
//! changes, change failure rate and time to restore, with a performance level for each.
//!
//! Start with [`compute`]: give it the [`DeploymentRecord`]s (from Git trailers, from
//! cluster history, or from [`idp_core::Deployment`]s through `From`), optional
//! [`Incident`] markers and a [`Window`]. It returns one [`Metrics`] for everything and one
//! per component, team and environment.
//!
//! # Definitions
//!
//! Records are ordered per component and environment (a *stream*). A record counts in a
//! window when `window.start <= deployed_at < window.end`.
//!
//! - **Deployment frequency**: records in the window ÷ the window's length in days (and
//!   × 7 for a week). Every deployment counts, failed ones included, so the change
//!   failure rate has the same denominator.
//! - **Lead time for changes**: median of `deployed_at − source_committed_at` over the
//!   records in the window that know their commit time (negative values, from clock skew,
//!   count as zero).
//! - **Change failure rate**: failed records ÷ records. A record failed when its status is
//!   [`Outcome::Failed`], [`Outcome::Degraded`] or [`Outcome::RolledBack`], or when an
//!   incident in its scope started while it was the live release (from its `deployed_at`
//!   until the next record of its stream).
//! - **Time to restore**: per failed record, from the failure (its `deployed_at`, or the
//!   incident's start for a failure found only by an incident) to the next record of its
//!   stream that did not fail — or the incident's `resolved` time when that is earlier.
//!   Median over the failed records in the window that were restored; the others are
//!   counted as `unrestored`. [`Outcome::Pending`] records count as not failed: a GitOps
//!   history often has no health feedback.
//!
//! # Performance levels
//!
//! From the performance clusters of the **2023 Accelerate State of DevOps Report**
//! (DORA, Google Cloud). The report gives ranges per cluster and its low cluster overlaps
//! the medium one for frequency and lead time, so each range's bound is used as a
//! threshold:
//!
//! | metric | elite | high | medium | low |
//! |---|---|---|---|---|
//! | deployment frequency | ≥ 1 per day (on demand) | ≥ 1 per week | ≥ 1 per month (30 days) | less |
//! | lead time for changes | < 1 day | ≤ 1 week | ≤ 1 month (30 days) | more |
//! | change failure rate | ≤ 5 % | ≤ 10 % | ≤ 15 % | more (the report's low cluster: 64 %) |
//! | time to restore | < 1 hour | < 1 day | ≤ 1 week | more |
//!
//! ```
//! use idp_deploy::dora::{compute, DeploymentRecord, Outcome, Window, Level};
//! use jiff::{SignedDuration, Timestamp};
//!
//! let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
//! let hour = SignedDuration::from_hours(1);
//! let records = vec![
//!     DeploymentRecord::new("cart", "prod", t0 + hour, Outcome::Succeeded).with_source_committed_at(t0),
//!     DeploymentRecord::new("cart", "prod", t0 + hour * 25, Outcome::Failed),
//!     DeploymentRecord::new("cart", "prod", t0 + hour * 26, Outcome::Succeeded),
//! ];
//! let window = Window::new(t0, t0 + SignedDuration::from_hours(24 * 7)).unwrap();
//! let report = compute(&records, &[], &window);
//! assert_eq!(report.overall.deployments, 3);
//! assert_eq!(report.overall.median_lead_time, Some(hour));
//! assert_eq!(report.overall.change_failure_rate, Some(1.0 / 3.0));
//! assert_eq!(report.overall.median_time_to_restore, Some(hour));
//! assert_eq!(report.overall.levels.time_to_restore, Some(Level::High));
//! ```

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

/// The team of a record that names none.
///
/// ```
/// assert_eq!(idp_deploy::dora::UNASSIGNED, "unassigned");
/// ```
pub const UNASSIGNED: &str = "unassigned";

/// How a deployment turned out.
///
/// ```
/// use idp_deploy::dora::Outcome;
/// assert!(Outcome::RolledBack.is_failure());
/// assert!(!Outcome::Pending.is_failure());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Rolled out and healthy.
    Succeeded,
    /// Healthy, later replaced by a newer release.
    Superseded,
    /// Not known yet (or never reported, as in a GitOps history with no health feedback).
    Pending,
    /// Could not be applied or never became healthy.
    Failed,
    /// Rolled out but unhealthy.
    Degraded,
    /// Replaced by a rollback to an earlier release.
    RolledBack,
}

impl Outcome {
    /// Whether the status alone makes the deployment a failed change.
    ///
    /// ```
    /// assert!(idp_deploy::dora::Outcome::Degraded.is_failure());
    /// ```
    pub fn is_failure(self) -> bool {
        matches!(
            self,
            Outcome::Failed | Outcome::Degraded | Outcome::RolledBack
        )
    }
}

impl From<idp_core::DeploymentStatus> for Outcome {
    fn from(status: idp_core::DeploymentStatus) -> Self {
        use idp_core::DeploymentStatus as S;
        match status {
            S::Succeeded => Outcome::Succeeded,
            S::Superseded => Outcome::Superseded,
            S::Failed => Outcome::Failed,
            S::RolledBack => Outcome::RolledBack,
            _ => Outcome::Pending,
        }
    }
}

/// One deployment of one component to one environment.
///
/// ```
/// use idp_deploy::dora::{DeploymentRecord, Outcome};
/// let r = DeploymentRecord::new("cart", "prod", jiff::Timestamp::UNIX_EPOCH, Outcome::Succeeded)
///     .with_team("team-a");
/// assert_eq!(r.team.as_deref(), Some("team-a"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentRecord {
    /// The deployer's identifier (a commit, a release id), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The component deployed.
    pub component: String,
    /// The environment deployed to.
    pub environment: String,
    /// The owning team, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// When it was deployed.
    pub deployed_at: Timestamp,
    /// When the source commit it carries was made, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_committed_at: Option<Timestamp>,
    /// How it turned out.
    pub status: Outcome,
}

impl DeploymentRecord {
    /// A record with no id, team or commit time.
    ///
    /// ```
    /// let r = idp_deploy::dora::DeploymentRecord::new("a", "dev", jiff::Timestamp::UNIX_EPOCH, idp_deploy::dora::Outcome::Pending);
    /// assert!(r.id.is_none());
    /// ```
    pub fn new(
        component: impl Into<String>,
        environment: impl Into<String>,
        deployed_at: Timestamp,
        status: Outcome,
    ) -> Self {
        Self {
            id: None,
            component: component.into(),
            environment: environment.into(),
            team: None,
            deployed_at,
            source_committed_at: None,
            status,
        }
    }

    /// Set the id.
    ///
    /// ```
    /// let r = idp_deploy::dora::DeploymentRecord::new("a", "dev", jiff::Timestamp::UNIX_EPOCH, idp_deploy::dora::Outcome::Pending).with_id("9f1c");
    /// assert_eq!(r.id.as_deref(), Some("9f1c"));
    /// ```
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Set the team.
    ///
    /// ```
    /// let r = idp_deploy::dora::DeploymentRecord::new("a", "dev", jiff::Timestamp::UNIX_EPOCH, idp_deploy::dora::Outcome::Pending).with_team("t");
    /// assert_eq!(r.team.as_deref(), Some("t"));
    /// ```
    pub fn with_team(mut self, team: impl Into<String>) -> Self {
        self.team = Some(team.into());
        self
    }

    /// Set the source commit time.
    ///
    /// ```
    /// let t = jiff::Timestamp::UNIX_EPOCH;
    /// let r = idp_deploy::dora::DeploymentRecord::new("a", "dev", t, idp_deploy::dora::Outcome::Pending).with_source_committed_at(t);
    /// assert_eq!(r.source_committed_at, Some(t));
    /// ```
    pub fn with_source_committed_at(mut self, at: Timestamp) -> Self {
        self.source_committed_at = Some(at);
        self
    }
}

/// A record from the deployer's history. [`idp_core::Deployment`] knows no commit time
/// and no team: set them afterwards when another source knows them.
///
/// ```
/// use idp_core::{Deployment, DeploymentId, DeploymentStatus};
/// let d = Deployment {
///     id: DeploymentId::new("9f1c2e7"),
///     component: "component:default/cart".parse().unwrap(),
///     environment: "prod".parse().unwrap(),
///     revision: "9f1c2e7".into(),
///     source_revision: None,
///     author: None,
///     message: None,
///     status: DeploymentStatus::RolledBack,
///     created_at: jiff::Timestamp::UNIX_EPOCH,
/// };
/// let r = idp_deploy::dora::DeploymentRecord::from(&d);
/// assert_eq!(r.environment, "prod");
/// assert_eq!(r.status, idp_deploy::dora::Outcome::RolledBack);
/// assert!(r.source_committed_at.is_none());
/// ```
impl From<&idp_core::Deployment> for DeploymentRecord {
    fn from(d: &idp_core::Deployment) -> Self {
        Self {
            id: Some(d.id.to_string()),
            component: d.component.to_string(),
            environment: d.environment.to_string(),
            team: None,
            deployed_at: d.created_at,
            source_committed_at: None,
            status: d.status.into(),
        }
    }
}

/// An incident: something broke at `start` and was fixed at `resolved`. With no
/// component or environment it covers every stream.
///
/// ```
/// use idp_deploy::dora::Incident;
/// let t = jiff::Timestamp::UNIX_EPOCH;
/// let i = Incident::new(t).resolved_at(t).for_component("cart").in_environment("prod");
/// assert_eq!(i.component.as_deref(), Some("cart"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Incident {
    /// The affected component, or every one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<String>,
    /// The affected environment, or every one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// When it started.
    pub start: Timestamp,
    /// When it was resolved, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<Timestamp>,
}

impl Incident {
    /// An unresolved incident covering everything.
    ///
    /// ```
    /// assert!(idp_deploy::dora::Incident::new(jiff::Timestamp::UNIX_EPOCH).resolved.is_none());
    /// ```
    pub fn new(start: Timestamp) -> Self {
        Self {
            component: None,
            environment: None,
            start,
            resolved: None,
        }
    }

    /// Set when it was resolved.
    ///
    /// ```
    /// let t = jiff::Timestamp::UNIX_EPOCH;
    /// assert_eq!(idp_deploy::dora::Incident::new(t).resolved_at(t).resolved, Some(t));
    /// ```
    pub fn resolved_at(mut self, at: Timestamp) -> Self {
        self.resolved = Some(at);
        self
    }

    /// Limit it to one component.
    ///
    /// ```
    /// let i = idp_deploy::dora::Incident::new(jiff::Timestamp::UNIX_EPOCH).for_component("cart");
    /// assert!(i.component.is_some());
    /// ```
    pub fn for_component(mut self, component: impl Into<String>) -> Self {
        self.component = Some(component.into());
        self
    }

    /// Limit it to one environment.
    ///
    /// ```
    /// let i = idp_deploy::dora::Incident::new(jiff::Timestamp::UNIX_EPOCH).in_environment("prod");
    /// assert!(i.environment.is_some());
    /// ```
    pub fn in_environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    fn covers(&self, record: &DeploymentRecord) -> bool {
        self.component
            .as_ref()
            .is_none_or(|c| *c == record.component)
            && self
                .environment
                .as_ref()
                .is_none_or(|e| *e == record.environment)
    }
}

/// The time span metrics are computed over: `start` inclusive, `end` exclusive.
///
/// ```
/// use idp_deploy::dora::Window;
/// let end: jiff::Timestamp = "2026-02-01T00:00:00Z".parse().unwrap();
/// let w = Window::last_days(end, 30).unwrap();
/// assert_eq!(w.days(), 30.0);
/// assert!(Window::new(end, end).is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// First instant included.
    pub start: Timestamp,
    /// First instant excluded.
    pub end: Timestamp,
}

impl Window {
    /// The window `[start, end)`; `end` must be after `start`.
    ///
    /// ```
    /// let t = jiff::Timestamp::UNIX_EPOCH;
    /// assert!(idp_deploy::dora::Window::new(t, t + jiff::SignedDuration::from_secs(1)).is_ok());
    /// ```
    pub fn new(start: Timestamp, end: Timestamp) -> idp_core::Result<Self> {
        if end <= start {
            return Err(idp_core::Error::invalid_input(format!(
                "a DORA window must end after it starts (start {start}, end {end})"
            )));
        }
        Ok(Self { start, end })
    }

    /// The `days` days before `end`.
    ///
    /// ```
    /// let w = idp_deploy::dora::Window::last_days(jiff::Timestamp::now(), 7).unwrap();
    /// assert_eq!(w.days(), 7.0);
    /// ```
    pub fn last_days(end: Timestamp, days: u32) -> idp_core::Result<Self> {
        let start = end
            .checked_sub(SignedDuration::from_hours(24 * i64::from(days)))
            .map_err(|e| {
                idp_core::Error::invalid_input(format!("a window of {days} days is too long"))
                    .with_source(e)
            })?;
        Self::new(start, end)
    }

    /// Its length in days.
    ///
    /// ```
    /// let t = jiff::Timestamp::UNIX_EPOCH;
    /// let w = idp_deploy::dora::Window::new(t, t + jiff::SignedDuration::from_hours(36)).unwrap();
    /// assert_eq!(w.days(), 1.5);
    /// ```
    pub fn days(&self) -> f64 {
        self.end.duration_since(self.start).as_secs_f64() / 86_400.0
    }

    fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && at < self.end
    }
}

/// A DORA performance level.
///
/// ```
/// use idp_deploy::dora::Level;
/// assert!(Level::Elite > Level::Low);
/// assert_eq!(Level::High.as_str(), "high");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The low performance cluster.
    Low,
    /// The medium performance cluster.
    Medium,
    /// The high performance cluster.
    High,
    /// The elite performance cluster.
    Elite,
}

impl Level {
    /// `elite`, `high`, `medium` or `low`.
    ///
    /// ```
    /// assert_eq!(idp_deploy::dora::Level::Elite.as_str(), "elite");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Elite => "elite",
        }
    }

    /// The level of a deployment frequency (deployments per day).
    ///
    /// ```
    /// use idp_deploy::dora::Level;
    /// assert_eq!(Level::for_deployment_frequency(3.0), Level::Elite);
    /// assert_eq!(Level::for_deployment_frequency(1.0 / 7.0), Level::High);
    /// assert_eq!(Level::for_deployment_frequency(1.0 / 30.0), Level::Medium);
    /// assert_eq!(Level::for_deployment_frequency(0.01), Level::Low);
    /// ```
    pub fn for_deployment_frequency(per_day: f64) -> Self {
        // A small tolerance so "exactly once a week" over a float division still counts.
        const EPS: f64 = 1e-9;
        if per_day + EPS >= 1.0 {
            Level::Elite
        } else if per_day * 7.0 + EPS >= 1.0 {
            Level::High
        } else if per_day * 30.0 + EPS >= 1.0 {
            Level::Medium
        } else {
            Level::Low
        }
    }

    /// The level of a (median) lead time for changes.
    ///
    /// ```
    /// use idp_deploy::dora::Level;
    /// assert_eq!(Level::for_lead_time(jiff::SignedDuration::from_hours(23)), Level::Elite);
    /// assert_eq!(Level::for_lead_time(jiff::SignedDuration::from_hours(24)), Level::High);
    /// ```
    pub fn for_lead_time(lead_time: SignedDuration) -> Self {
        let day = SignedDuration::from_hours(24);
        if lead_time < day {
            Level::Elite
        } else if lead_time <= day * 7 {
            Level::High
        } else if lead_time <= day * 30 {
            Level::Medium
        } else {
            Level::Low
        }
    }

    /// The level of a change failure rate (0.0–1.0).
    ///
    /// ```
    /// use idp_deploy::dora::Level;
    /// assert_eq!(Level::for_change_failure_rate(0.05), Level::Elite);
    /// assert_eq!(Level::for_change_failure_rate(0.2), Level::Low);
    /// ```
    pub fn for_change_failure_rate(rate: f64) -> Self {
        const EPS: f64 = 1e-9;
        if rate <= 0.05 + EPS {
            Level::Elite
        } else if rate <= 0.10 + EPS {
            Level::High
        } else if rate <= 0.15 + EPS {
            Level::Medium
        } else {
            Level::Low
        }
    }

    /// The level of a (median) time to restore.
    ///
    /// ```
    /// use idp_deploy::dora::Level;
    /// assert_eq!(Level::for_time_to_restore(jiff::SignedDuration::from_mins(30)), Level::Elite);
    /// assert_eq!(Level::for_time_to_restore(jiff::SignedDuration::from_hours(48)), Level::Medium);
    /// ```
    pub fn for_time_to_restore(time: SignedDuration) -> Self {
        let hour = SignedDuration::from_hours(1);
        if time < hour {
            Level::Elite
        } else if time < hour * 24 {
            Level::High
        } else if time <= hour * 24 * 7 {
            Level::Medium
        } else {
            Level::Low
        }
    }
}

/// The level of each metric; `None` where the metric has no data.
///
/// ```
/// let l = idp_deploy::dora::Levels::default();
/// assert!(l.lead_time.is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Levels {
    /// Deployment frequency.
    pub deployment_frequency: Option<Level>,
    /// Lead time for changes.
    pub lead_time: Option<Level>,
    /// Change failure rate.
    pub change_failure_rate: Option<Level>,
    /// Time to restore.
    pub time_to_restore: Option<Level>,
}

/// The four metrics for one group of records over the window.
///
/// ```
/// let m = idp_deploy::dora::Metrics::default();
/// assert_eq!(m.deployments, 0);
/// assert!(m.change_failure_rate.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metrics {
    /// Deployments in the window.
    pub deployments: usize,
    /// Deployments per day.
    pub deployments_per_day: f64,
    /// Deployments per week.
    pub deployments_per_week: f64,
    /// Deployments that knew their source commit time.
    pub changes_with_lead_time: usize,
    /// Median lead time for changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_lead_time: Option<SignedDuration>,
    /// Failed deployments.
    pub failures: usize,
    /// Failed ÷ all deployments (`None` with no deployment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_failure_rate: Option<f64>,
    /// Failures later restored.
    pub restored: usize,
    /// Failures not restored (yet).
    pub unrestored: usize,
    /// Median time to restore.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub median_time_to_restore: Option<SignedDuration>,
    /// The performance level of each metric.
    pub levels: Levels,
}

/// The metrics overall and per component, team and environment.
///
/// ```
/// let t = jiff::Timestamp::UNIX_EPOCH;
/// let w = idp_deploy::dora::Window::new(t, t + jiff::SignedDuration::from_hours(24)).unwrap();
/// let r = idp_deploy::dora::compute(&[], &[], &w);
/// assert!(r.by_team.is_empty());
/// assert_eq!(r.overall.deployments, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DoraReport {
    /// The window.
    pub window: Window,
    /// Every record.
    pub overall: Metrics,
    /// Per component.
    pub by_component: BTreeMap<String, Metrics>,
    /// Per team ([`UNASSIGNED`] for records with none).
    pub by_team: BTreeMap<String, Metrics>,
    /// Per environment.
    pub by_environment: BTreeMap<String, Metrics>,
}

/// What the history says about one record.
struct Assessed<'a> {
    record: &'a DeploymentRecord,
    failed: bool,
    restore: Option<SignedDuration>,
}

/// Compute the DORA metrics (see the [module docs](self) for the definitions).
///
/// ```
/// use idp_deploy::dora::{compute, DeploymentRecord, Incident, Outcome, Window};
/// use jiff::{SignedDuration, Timestamp};
/// let t0 = Timestamp::UNIX_EPOCH;
/// let h = SignedDuration::from_hours(1);
/// // The release at t0+1h is live when an incident starts at t0+2h, resolved at t0+2h30.
/// let records = [DeploymentRecord::new("cart", "prod", t0 + h, Outcome::Succeeded)];
/// let incidents = [Incident::new(t0 + h * 2).resolved_at(t0 + h * 2 + SignedDuration::from_mins(30))];
/// let r = compute(&records, &incidents, &Window::new(t0, t0 + h * 24).unwrap());
/// assert_eq!(r.overall.failures, 1);
/// assert_eq!(r.overall.median_time_to_restore, Some(SignedDuration::from_mins(30)));
/// ```
pub fn compute(
    records: &[DeploymentRecord],
    incidents: &[Incident],
    window: &Window,
) -> DoraReport {
    let _span = tracing::debug_span!("dora_compute", records = records.len()).entered();
    let mut streams: BTreeMap<(&str, &str), Vec<&DeploymentRecord>> = BTreeMap::new();
    for record in records {
        streams
            .entry((&record.component, &record.environment))
            .or_default()
            .push(record);
    }
    let mut assessed = Vec::new();
    for stream in streams.values_mut() {
        stream.sort_by(|a, b| {
            a.deployed_at
                .cmp(&b.deployed_at)
                .then_with(|| a.id.cmp(&b.id))
        });
        assess_stream(stream, incidents, &mut assessed);
    }

    let in_window: Vec<&Assessed<'_>> = assessed
        .iter()
        .filter(|a| window.contains(a.record.deployed_at))
        .collect();
    let mut by_component: BTreeMap<String, Vec<&Assessed<'_>>> = BTreeMap::new();
    let mut by_team: BTreeMap<String, Vec<&Assessed<'_>>> = BTreeMap::new();
    let mut by_environment: BTreeMap<String, Vec<&Assessed<'_>>> = BTreeMap::new();
    for a in &in_window {
        by_component
            .entry(a.record.component.clone())
            .or_default()
            .push(a);
        by_team
            .entry(
                a.record
                    .team
                    .clone()
                    .unwrap_or_else(|| UNASSIGNED.to_owned()),
            )
            .or_default()
            .push(a);
        by_environment
            .entry(a.record.environment.clone())
            .or_default()
            .push(a);
    }
    let summarize_all = |groups: BTreeMap<String, Vec<&Assessed<'_>>>| {
        groups
            .into_iter()
            .map(|(k, v)| (k, summarize(&v, window)))
            .collect()
    };
    DoraReport {
        window: *window,
        overall: summarize(&in_window, window),
        by_component: summarize_all(by_component),
        by_team: summarize_all(by_team),
        by_environment: summarize_all(by_environment),
    }
}

/// Decide which records of one sorted stream failed and when each failure was restored.
fn assess_stream<'a>(
    stream: &[&'a DeploymentRecord],
    incidents: &[Incident],
    out: &mut Vec<Assessed<'a>>,
) {
    // First pass: failures, and the incident that found each one, if any.
    let mut flags = Vec::with_capacity(stream.len());
    for (i, record) in stream.iter().enumerate() {
        let live_until = stream.get(i + 1).map(|next| next.deployed_at);
        let incident = incidents
            .iter()
            .filter(|inc| {
                inc.covers(record)
                    && inc.start >= record.deployed_at
                    && live_until.is_none_or(|end| inc.start < end)
            })
            .min_by_key(|inc| inc.start);
        flags.push((record.status.is_failure() || incident.is_some(), incident));
    }
    // Second pass: time to restore.
    for (i, record) in stream.iter().enumerate() {
        let (failed, incident) = flags[i];
        let mut restore = None;
        if failed {
            let began = if record.status.is_failure() {
                record.deployed_at
            } else {
                incident.map_or(record.deployed_at, |inc| inc.start)
            };
            let next_good = stream
                .iter()
                .zip(&flags)
                .skip(i + 1)
                .find(|(_, (f, _))| !f)
                .map(|(r, _)| r.deployed_at);
            let resolved = incident.and_then(|inc| inc.resolved);
            let restored_at = match (next_good, resolved) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            restore = restored_at.map(|at| at.duration_since(began).max(SignedDuration::ZERO));
        }
        out.push(Assessed {
            record,
            failed,
            restore,
        });
    }
}

fn median(mut values: Vec<SignedDuration>) -> Option<SignedDuration> {
    if values.is_empty() {
        return None;
    }
    values.sort();
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        Some(values[mid])
    } else {
        let sum = values[mid - 1].as_nanos() + values[mid].as_nanos();
        i64::try_from(sum / 2)
            .ok()
            .map(SignedDuration::from_nanos)
            .or(Some(values[mid]))
    }
}

fn summarize(group: &[&Assessed<'_>], window: &Window) -> Metrics {
    let deployments = group.len();
    let days = window.days();
    let per_day = deployments as f64 / days;
    let lead_times: Vec<SignedDuration> = group
        .iter()
        .filter_map(|a| {
            a.record.source_committed_at.map(|c| {
                a.record
                    .deployed_at
                    .duration_since(c)
                    .max(SignedDuration::ZERO)
            })
        })
        .collect();
    let changes_with_lead_time = lead_times.len();
    let median_lead_time = median(lead_times);
    let failures = group.iter().filter(|a| a.failed).count();
    let restores: Vec<SignedDuration> = group.iter().filter_map(|a| a.restore).collect();
    let restored = restores.len();
    let median_time_to_restore = median(restores);
    let change_failure_rate = (deployments > 0).then(|| failures as f64 / deployments as f64);
    Metrics {
        deployments,
        deployments_per_day: per_day,
        deployments_per_week: per_day * 7.0,
        changes_with_lead_time,
        median_lead_time,
        failures,
        change_failure_rate,
        restored,
        unrestored: failures - restored,
        median_time_to_restore,
        levels: Levels {
            deployment_frequency: Some(Level::for_deployment_frequency(per_day)),
            lead_time: median_lead_time.map(Level::for_lead_time),
            change_failure_rate: change_failure_rate.map(Level::for_change_failure_rate),
            time_to_restore: median_time_to_restore.map(Level::for_time_to_restore),
        },
    }
}
