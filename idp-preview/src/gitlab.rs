//! GitLab merge request hooks → [`PullRequestEvent`].
//!
//! The event name comes from the `X-Gitlab-Event` header: `Merge Request Hook` (project
//! and group hooks) or `System Hook` carrying `object_kind: merge_request`; every other
//! event is [`Delivery::Ignored`]. `object_attributes.action` maps as follows:
//!
//! | GitLab action | event |
//! |---|---|
//! | `open` | [`PullRequestAction::Opened`] |
//! | `reopen` | [`PullRequestAction::Reopened`] |
//! | `update` with `object_attributes.oldrev` (new commits) | [`PullRequestAction::Synchronize`] |
//! | `update` where `changes.labels` added / removed a label | [`PullRequestAction::Labeled`] / [`PullRequestAction::Unlabeled`] |
//! | `update` where `changes.draft` turned on / off | [`PullRequestAction::ConvertedToDraft`] / [`PullRequestAction::ReadyForReview`] |
//! | any other `update` | [`PullRequestAction::Edited`] |
//! | `close` | [`PullRequestAction::Closed`] `{ merged: false }` |
//! | `merge` | [`PullRequestAction::Closed`] `{ merged: true }` |
//!
//! Approval actions (`approved`, `unapproved`, `approval`, `unapproval`) are ignored.
//!
//! Fields read: `object_kind`, `project.path_with_namespace` (the base repository),
//! `user.username` (who triggered the event; GitLab gives the author only as an id), and
//! from `object_attributes`: `iid`, `title`, `source_branch`, `target_branch`,
//! `last_commit.id`, `source.path_with_namespace` (a fork when it differs),
//! `state`, `draft` (or the older `work_in_progress`), `oldrev`, `updated_at`; labels
//! from the top-level `labels[].title`. A missing or mistyped field is an
//! `InvalidInput` error naming it.
//!
//! ```
//! use idp_preview::{event::PullRequestAction, gitlab};
//! let body = br#"{
//!   "object_kind": "merge_request", "event_type": "merge_request",
//!   "user": {"username": "root"},
//!   "project": {"path_with_namespace": "shop/cart"},
//!   "labels": [{"title": "preview"}],
//!   "object_attributes": {
//!     "iid": 7, "title": "Add login", "action": "update", "oldrev": "aaaa", "state": "opened",
//!     "source_branch": "feature/login", "target_branch": "main", "draft": false,
//!     "source": {"path_with_namespace": "shop/cart"}, "target": {"path_with_namespace": "shop/cart"},
//!     "last_commit": {"id": "bbbb"}, "updated_at": "2026-01-02 03:04:05 UTC"
//!   }
//! }"#;
//! let d = gitlab::parse("Merge Request Hook", body).unwrap();
//! let e = d.event().unwrap();
//! assert_eq!(e.action, PullRequestAction::Synchronize);
//! assert_eq!((e.number, e.head_sha.as_str()), (7, "bbbb"));
//! assert!(e.updated_at.is_some());
//! ```

use std::collections::BTreeSet;

use idp_core::Result;

use crate::event::{Forge, PullRequestAction, PullRequestEvent};
use crate::github::UNKNOWN_HEAD_REPO;
use crate::webhook::{Delivery, Payload};

const WHAT: &str = "GitLab merge request hook";

/// Parse a GitLab delivery: `event` is the `X-Gitlab-Event` header, `body` the raw
/// (already verified) body.
///
/// ```
/// use idp_preview::{gitlab, webhook::Delivery};
/// assert!(matches!(gitlab::parse("Push Hook", b"{}").unwrap(), Delivery::Ignored { .. }));
/// let err = gitlab::parse("Merge Request Hook", br#"{"object_kind": "merge_request"}"#).unwrap_err();
/// assert!(err.to_string().contains("`object_attributes.action`"));
/// ```
pub fn parse(event: &str, body: &[u8]) -> Result<Delivery> {
    let event = event.trim();
    if event != "Merge Request Hook" && event != "System Hook" {
        return Ok(Delivery::ignored(format!(
            "a GitLab {event:?}, not a merge request hook"
        )));
    }
    let root = Payload::parse(WHAT, body)?;
    let p = Payload::new(WHAT, &root);
    let kind = p.str("object_kind")?;
    if kind != "merge_request" {
        return Ok(Delivery::ignored(format!(
            "a GitLab {kind:?} event, not a merge request"
        )));
    }
    let action_name = p.str("object_attributes.action")?;
    let labels: BTreeSet<String> = if p.get("labels").is_some() {
        p.names("labels", "title")?
    } else {
        p.names("object_attributes.labels", "title")?
    }
    .into_iter()
    .collect();
    let action = match action_name {
        "open" => PullRequestAction::Opened,
        "reopen" => PullRequestAction::Reopened,
        "close" => PullRequestAction::Closed { merged: false },
        "merge" => PullRequestAction::Closed { merged: true },
        "update" => update_action(&p)?,
        other => {
            return Ok(Delivery::ignored(format!(
                "merge request action {other:?} does not concern previews"
            )));
        }
    };
    let repo = match p.opt_str("project.path_with_namespace")? {
        Some(r) => r,
        None => p.str("object_attributes.target.path_with_namespace")?,
    };
    let number = p.u64("object_attributes.iid")?;
    let mut e = PullRequestEvent::new(Forge::GitLab, action, repo, number)
        .with_head(
            p.str("object_attributes.source_branch")?,
            p.str("object_attributes.last_commit.id")?,
        )
        .with_base(p.str("object_attributes.target_branch")?);
    p.opt_str("object_attributes.title")?
        .unwrap_or_default()
        .clone_into(&mut e.title);
    p.opt_str("user.username")?
        .unwrap_or_default()
        .clone_into(&mut e.author);
    e.head_repo = if let Some(source) = p.opt_str("object_attributes.source.path_with_namespace")? {
        (!source.eq_ignore_ascii_case(repo)).then(|| source.to_owned())
    } else {
        let source = p.get("object_attributes.source_project_id");
        let target = p.get("object_attributes.target_project_id");
        match (source, target) {
            (Some(s), Some(t)) if s != t => Some(UNKNOWN_HEAD_REPO.to_owned()),
            _ => None,
        }
    };
    e.labels = labels;
    e.draft = p.bool_or("object_attributes.draft", false)?
        || p.bool_or("object_attributes.work_in_progress", false)?;
    e.open = match p.opt_str("object_attributes.state")? {
        Some(state) => state == "opened",
        None => !e.action.is_close(),
    };
    if e.action.is_close() {
        e.open = false;
    }
    e.updated_at = p.time("object_attributes.updated_at");
    Ok(Delivery::Event(Box::new(e)))
}

/// What an `update` was: new commits, a label change, a draft change, or an edit.
fn update_action(p: &Payload<'_>) -> Result<PullRequestAction> {
    if p.opt_str("object_attributes.oldrev")?
        .is_some_and(|rev| !rev.is_empty())
    {
        return Ok(PullRequestAction::Synchronize);
    }
    if p.get("changes.labels").is_some() {
        let before: BTreeSet<String> = p
            .names("changes.labels.previous", "title")?
            .into_iter()
            .collect();
        let after: BTreeSet<String> = p
            .names("changes.labels.current", "title")?
            .into_iter()
            .collect();
        // A removal matters more to a preview (it may have to go) than an addition.
        if let Some(removed) = before.difference(&after).next() {
            return Ok(PullRequestAction::Unlabeled {
                label: removed.clone(),
            });
        }
        if let Some(added) = after.difference(&before).next() {
            return Ok(PullRequestAction::Labeled {
                label: added.clone(),
            });
        }
    }
    for field in ["changes.draft.current", "changes.work_in_progress.current"] {
        if p.get(field).is_some() {
            return Ok(if p.bool_or(field, false)? {
                PullRequestAction::ConvertedToDraft
            } else {
                PullRequestAction::ReadyForReview
            });
        }
    }
    Ok(PullRequestAction::Edited)
}
