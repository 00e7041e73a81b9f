//! Where a preview stands, and how that is reported back to the pull request.
//!
//! The controller reports every phase change through a [`StatusReporter`]: a platform
//! plugs in a forge adapter (a GitHub commit status or deployment, a GitLab pipeline
//! status, a PR comment). Shipped here: [`LoggingStatusReporter`] (tracing) and
//! [`RecordingStatusReporter`] (in memory, for tests).
//!
//! ```
//! use idp_preview::status::{PreviewPhase, PreviewStatus};
//! let s = PreviewStatus::new("acme/cart#42".parse().unwrap(), PreviewPhase::Pending);
//! assert_eq!(serde_json::to_value(&s).unwrap()["phase"], "pending");
//! ```

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use idp_core::{DeploymentId, EnvironmentName, Result};
use serde::{Deserialize, Serialize};

use crate::labels::PreviewId;

/// The phases of a preview's life.
///
/// ```
/// use idp_preview::status::PreviewPhase;
/// assert_eq!(PreviewPhase::Ready.to_string(), "ready");
/// assert!(PreviewPhase::Gone.is_terminal());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PreviewPhase {
    /// Being created or updated to a new head.
    Pending,
    /// Deployed and healthy at the head SHA; the URLs work.
    Ready,
    /// Creating or deploying failed; the message says why.
    Failed,
    /// Being torn down.
    Destroying,
    /// Torn down: nothing of it is left.
    Gone,
    /// The event changed nothing (a duplicate, a stale or out-of-order event).
    Ignored,
}

impl PreviewPhase {
    /// Stable lower-case name.
    ///
    /// ```
    /// assert_eq!(idp_preview::status::PreviewPhase::Destroying.as_str(), "destroying");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            PreviewPhase::Pending => "pending",
            PreviewPhase::Ready => "ready",
            PreviewPhase::Failed => "failed",
            PreviewPhase::Destroying => "destroying",
            PreviewPhase::Gone => "gone",
            PreviewPhase::Ignored => "ignored",
        }
    }

    /// Whether the phase ends an operation (everything but pending and destroying).
    ///
    /// ```
    /// assert!(!idp_preview::status::PreviewPhase::Pending.is_terminal());
    /// ```
    pub fn is_terminal(self) -> bool {
        !matches!(self, PreviewPhase::Pending | PreviewPhase::Destroying)
    }
}

impl fmt::Display for PreviewPhase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One preview's status, as reported and as returned by the controller.
///
/// ```
/// use idp_preview::status::{PreviewPhase, PreviewStatus};
/// let s = PreviewStatus::new("a/b#1".parse().unwrap(), PreviewPhase::Ready)
///     .with_head_sha("abc123")
///     .with_url("https://pr-b-1.preview.example.com");
/// assert_eq!(s.urls.len(), 1);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewStatus {
    /// The pull request, `owner/repo#number`.
    #[serde(with = "preview_id_string")]
    pub preview: PreviewId,
    /// The environment, when the event concerned one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentName>,
    /// The phase.
    pub phase: PreviewPhase,
    /// The head commit the preview is (being) deployed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head_sha: Option<String>,
    /// Where people reach the preview.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    /// The namespace, when the provider has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The deployer's id for the deployment made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<DeploymentId>,
    /// Why: the error of a failure, the reason an event was ignored or a preview removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the preview expires unless it sees activity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<jiff::Timestamp>,
}

mod preview_id_string {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::labels::PreviewId;

    pub(super) fn serialize<S: Serializer>(id: &PreviewId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(id)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<PreviewId, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl PreviewStatus {
    /// A status with only the preview, environment and phase.
    ///
    /// ```
    /// # use idp_preview::status::*;
    /// let s = PreviewStatus::new("a/b#1".parse().unwrap(), PreviewPhase::Gone);
    /// assert!(s.message.is_none());
    /// ```
    pub fn new(preview: PreviewId, phase: PreviewPhase) -> Self {
        Self {
            preview,
            environment: None,
            phase,
            head_sha: None,
            urls: Vec::new(),
            namespace: None,
            deployment: None,
            message: None,
            expires_at: None,
        }
    }

    /// Set the environment.
    ///
    /// ```
    /// # use idp_preview::status::*;
    /// let s = PreviewStatus::new("a/b#1".parse().unwrap(), PreviewPhase::Pending).with_environment("pr-b-1".parse().unwrap());
    /// assert_eq!(s.environment.unwrap().as_str(), "pr-b-1");
    /// ```
    pub fn with_environment(mut self, environment: EnvironmentName) -> Self {
        self.environment = Some(environment);
        self
    }

    /// Set the head SHA.
    ///
    /// ```
    /// # use idp_preview::status::*;
    /// let s = PreviewStatus::new("a/b#1".parse().unwrap(), PreviewPhase::Pending).with_head_sha("f00");
    /// assert_eq!(s.head_sha.as_deref(), Some("f00"));
    /// ```
    pub fn with_head_sha(mut self, sha: impl Into<String>) -> Self {
        self.head_sha = Some(sha.into());
        self
    }

    /// Add a URL.
    ///
    /// ```
    /// # use idp_preview::status::*;
    /// let s = PreviewStatus::new("a/b#1".parse().unwrap(), PreviewPhase::Ready).with_url("https://x");
    /// assert_eq!(s.urls, vec!["https://x".to_string()]);
    /// ```
    pub fn with_url(mut self, url: impl Into<String>) -> Self {
        self.urls.push(url.into());
        self
    }

    /// Set the message.
    ///
    /// ```
    /// # use idp_preview::status::*;
    /// let s = PreviewStatus::new("a/b#1".parse().unwrap(), PreviewPhase::Ignored).with_message("duplicate");
    /// assert_eq!(s.message.as_deref(), Some("duplicate"));
    /// ```
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// The same status in another phase (the message is cleared).
    ///
    /// ```
    /// # use idp_preview::status::*;
    /// let s = PreviewStatus::new("a/b#1".parse().unwrap(), PreviewPhase::Pending).with_message("x");
    /// let r = s.in_phase(PreviewPhase::Ready);
    /// assert_eq!(r.phase, PreviewPhase::Ready);
    /// assert!(r.message.is_none());
    /// ```
    pub fn in_phase(&self, phase: PreviewPhase) -> Self {
        Self {
            phase,
            message: None,
            ..self.clone()
        }
    }
}

impl fmt::Display for PreviewStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.preview)?;
        if let Some(env) = &self.environment {
            write!(f, " ({env})")?;
        }
        write!(f, ": {}", self.phase)?;
        if let Some(sha) = &self.head_sha {
            write!(f, " at {sha}")?;
        }
        if let Some(message) = &self.message {
            write!(f, ": {message}")?;
        }
        Ok(())
    }
}

/// Tells the pull request (or anyone) how its preview is doing.
///
/// Object-safe and async. A reporter's failure never fails the preview: the controller
/// logs it and carries on, so an unreachable forge does not stop environments.
///
/// ```
/// use idp_preview::status::{PreviewStatus, StatusReporter};
///
/// #[derive(Debug)]
/// struct Stdout;
/// #[async_trait::async_trait]
/// impl StatusReporter for Stdout {
///     async fn report(&self, status: &PreviewStatus) -> idp_core::Result<()> {
///         println!("{status}");
///         Ok(())
///     }
/// }
/// let _reporter: std::sync::Arc<dyn StatusReporter> = std::sync::Arc::new(Stdout);
/// ```
#[async_trait]
pub trait StatusReporter: Send + Sync + fmt::Debug {
    /// Report one status change.
    async fn report(&self, status: &PreviewStatus) -> Result<()>;
}

/// A [`StatusReporter`] writing each status as a `tracing` event (`WARN` for failures).
///
/// ```
/// use idp_preview::status::{LoggingStatusReporter, StatusReporter};
/// let _r: &dyn StatusReporter = &LoggingStatusReporter;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct LoggingStatusReporter;

#[async_trait]
impl StatusReporter for LoggingStatusReporter {
    async fn report(&self, status: &PreviewStatus) -> Result<()> {
        let urls = status.urls.join(" ");
        let sha = status.head_sha.as_deref().unwrap_or("");
        let message = status.message.as_deref().unwrap_or("");
        if status.phase == PreviewPhase::Failed {
            tracing::warn!(target: "idp::preview", preview = %status.preview, environment = status.environment.as_ref().map_or("", EnvironmentName::as_str),
                phase = %status.phase, head_sha = sha, message, "preview failed");
        } else {
            tracing::info!(target: "idp::preview", preview = %status.preview, environment = status.environment.as_ref().map_or("", EnvironmentName::as_str),
                phase = %status.phase, head_sha = sha, urls, message, "preview status");
        }
        Ok(())
    }
}

/// A [`StatusReporter`] keeping every status in memory, in order (for tests).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use idp_preview::status::*;
/// let r = RecordingStatusReporter::new();
/// r.report(&PreviewStatus::new("a/b#1".parse().unwrap(), PreviewPhase::Pending)).await.unwrap();
/// assert_eq!(r.phases(), vec![PreviewPhase::Pending]);
/// # });
/// ```
#[derive(Debug, Clone, Default)]
pub struct RecordingStatusReporter {
    statuses: Arc<Mutex<Vec<PreviewStatus>>>,
}

impl RecordingStatusReporter {
    /// An empty recorder.
    ///
    /// ```
    /// assert!(idp_preview::status::RecordingStatusReporter::new().statuses().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Every status reported so far, oldest first.
    ///
    /// ```
    /// assert!(idp_preview::status::RecordingStatusReporter::new().statuses().is_empty());
    /// ```
    pub fn statuses(&self) -> Vec<PreviewStatus> {
        self.statuses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The phases reported so far, oldest first.
    ///
    /// ```
    /// assert!(idp_preview::status::RecordingStatusReporter::new().phases().is_empty());
    /// ```
    pub fn phases(&self) -> Vec<PreviewPhase> {
        self.statuses().iter().map(|s| s.phase).collect()
    }

    /// The statuses reported for one preview, oldest first.
    ///
    /// ```
    /// let r = idp_preview::status::RecordingStatusReporter::new();
    /// assert!(r.for_preview(&"a/b#1".parse().unwrap()).is_empty());
    /// ```
    pub fn for_preview(&self, preview: &PreviewId) -> Vec<PreviewStatus> {
        self.statuses()
            .into_iter()
            .filter(|s| &s.preview == preview)
            .collect()
    }
}

#[async_trait]
impl StatusReporter for RecordingStatusReporter {
    async fn report(&self, status: &PreviewStatus) -> Result<()> {
        self.statuses
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(status.clone());
        Ok(())
    }
}
