//! Provider-neutral pull-request events.
//!
//! Webhook parsers for each forge turn their payloads into a [`PullRequestEvent`]; the
//! planner and the controller only ever see this type.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

/// The code-hosting service an event came from.
///
/// ```
/// use idp_preview::event::Forge;
/// assert_eq!(serde_json::to_value(Forge::GitLab).unwrap(), "gitlab");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Forge {
    /// GitHub (`pull_request` webhooks).
    GitHub,
    /// GitLab (merge request hooks).
    GitLab,
}

/// What happened to the pull request.
///
/// ```
/// use idp_preview::event::PullRequestAction;
/// assert!(PullRequestAction::Closed { merged: true }.is_close());
/// assert!(!PullRequestAction::Synchronize.is_close());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum PullRequestAction {
    /// The pull request was opened.
    Opened,
    /// A closed pull request was reopened.
    Reopened,
    /// New commits were pushed to the head branch.
    Synchronize,
    /// The pull request was closed, merged or not.
    Closed {
        /// Whether it was merged.
        merged: bool,
    },
    /// A label was added.
    Labeled {
        /// The label added.
        label: String,
    },
    /// A label was removed.
    Unlabeled {
        /// The label removed.
        label: String,
    },
    /// A draft was marked ready for review.
    ReadyForReview,
    /// The pull request was turned back into a draft.
    ConvertedToDraft,
    /// The pull request changed in a way that neither adds commits nor changes its state
    /// (title, description, target branch edits).
    Edited,
}

impl PullRequestAction {
    /// Whether this action closes the pull request.
    ///
    /// ```
    /// assert!(idp_preview::event::PullRequestAction::Closed { merged: false }.is_close());
    /// ```
    pub fn is_close(&self) -> bool {
        matches!(self, PullRequestAction::Closed { .. })
    }
}

/// One pull-request (or merge-request) event, whatever forge sent it.
///
/// ```
/// use idp_preview::event::{Forge, PullRequestAction, PullRequestEvent};
/// let e = PullRequestEvent::new(Forge::GitHub, PullRequestAction::Opened, "acme/cart", 42)
///     .with_head("feature/login", "9f1c2e7d")
///     .with_base("main");
/// assert_eq!(e.number, 42);
/// assert!(e.is_open());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestEvent {
    /// The forge that sent it.
    pub forge: Forge,
    /// What happened.
    pub action: PullRequestAction,
    /// The base repository, `owner/name` (GitHub `full_name`, GitLab `path_with_namespace`).
    pub repo: String,
    /// The pull-request number (GitLab: the merge request `iid`).
    pub number: u64,
    /// The title.
    pub title: String,
    /// The login of the author.
    pub author: String,
    /// The head (source) branch.
    pub head_branch: String,
    /// The head commit SHA.
    pub head_sha: String,
    /// The repository the head branch lives in when it differs from `repo` (a fork).
    pub head_repo: Option<String>,
    /// The base (target) branch.
    pub base_branch: String,
    /// The labels on the pull request after the event.
    pub labels: BTreeSet<String>,
    /// Whether it is a draft after the event.
    pub draft: bool,
    /// Whether the pull request is open after the event.
    pub open: bool,
    /// When the forge says the pull request was last updated (orders events that arrive
    /// out of order); `None` when the payload has no usable time.
    pub updated_at: Option<jiff::Timestamp>,
}

impl PullRequestEvent {
    /// A new event with empty title, author, branches and labels; `open` follows the action.
    ///
    /// ```
    /// use idp_preview::event::{Forge, PullRequestAction, PullRequestEvent};
    /// let e = PullRequestEvent::new(Forge::GitLab, PullRequestAction::Closed { merged: true }, "g/p", 7);
    /// assert!(!e.is_open());
    /// ```
    pub fn new(
        forge: Forge,
        action: PullRequestAction,
        repo: impl Into<String>,
        number: u64,
    ) -> Self {
        let open = !action.is_close();
        Self {
            forge,
            action,
            repo: repo.into(),
            number,
            title: String::new(),
            author: String::new(),
            head_branch: String::new(),
            head_sha: String::new(),
            head_repo: None,
            base_branch: String::new(),
            labels: BTreeSet::new(),
            draft: false,
            open,
            updated_at: None,
        }
    }

    /// Set the head branch and SHA.
    ///
    /// ```
    /// # use idp_preview::event::*;
    /// let e = PullRequestEvent::new(Forge::GitHub, PullRequestAction::Opened, "a/b", 1).with_head("f", "abc");
    /// assert_eq!(e.head_sha, "abc");
    /// ```
    pub fn with_head(mut self, branch: impl Into<String>, sha: impl Into<String>) -> Self {
        self.head_branch = branch.into();
        self.head_sha = sha.into();
        self
    }

    /// Set the base branch.
    ///
    /// ```
    /// # use idp_preview::event::*;
    /// let e = PullRequestEvent::new(Forge::GitHub, PullRequestAction::Opened, "a/b", 1).with_base("main");
    /// assert_eq!(e.base_branch, "main");
    /// ```
    pub fn with_base(mut self, branch: impl Into<String>) -> Self {
        self.base_branch = branch.into();
        self
    }

    /// Add a label.
    ///
    /// ```
    /// # use idp_preview::event::*;
    /// let e = PullRequestEvent::new(Forge::GitHub, PullRequestAction::Opened, "a/b", 1).with_label("preview");
    /// assert!(e.labels.contains("preview"));
    /// ```
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.labels.insert(label.into());
        self
    }

    /// Set the time the forge last updated the pull request.
    ///
    /// ```
    /// # use idp_preview::event::*;
    /// let e = PullRequestEvent::new(Forge::GitHub, PullRequestAction::Opened, "a/b", 1)
    ///     .at(jiff::Timestamp::UNIX_EPOCH);
    /// assert!(e.updated_at.is_some());
    /// ```
    pub fn at(mut self, time: jiff::Timestamp) -> Self {
        self.updated_at = Some(time);
        self
    }

    /// Whether the pull request is open after this event.
    ///
    /// ```
    /// # use idp_preview::event::*;
    /// assert!(PullRequestEvent::new(Forge::GitHub, PullRequestAction::Opened, "a/b", 1).is_open());
    /// ```
    pub fn is_open(&self) -> bool {
        self.open
    }
}
