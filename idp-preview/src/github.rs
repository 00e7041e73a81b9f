//! GitHub `pull_request` webhook payloads → [`PullRequestEvent`].
//!
//! The event name comes from the `X-GitHub-Event` header; only `pull_request` is read,
//! every other event (including the `ping` GitHub sends when a hook is created) is
//! [`Delivery::Ignored`]. Within `pull_request`, these actions become events:
//! `opened`, `reopened`, `synchronize` (new commits on the head branch), `closed` (merged
//! or not, from `pull_request.merged`), `labeled` / `unlabeled` (the label from
//! `label.name`), `ready_for_review`, `converted_to_draft` and `edited`. The others
//! (`assigned`, `review_requested`, `locked`, `auto_merge_enabled`…) do not concern a
//! preview and are ignored with a reason.
//!
//! Fields read: `action`, `number`, `repository.full_name`, and from `pull_request`:
//! `title`, `user.login`, `head.ref`, `head.sha`, `head.repo.full_name` (a fork when it
//! differs from the base repository; `null` when the fork was deleted), `base.ref`,
//! `labels[].name`, `draft`, `state`, `merged`, `updated_at`. A missing or mistyped
//! field is an `InvalidInput` error naming it.
//!
//! ```
//! use idp_preview::event::PullRequestAction;
//! use idp_preview::github;
//! let body = br#"{
//!   "action": "opened", "number": 42,
//!   "repository": {"full_name": "acme/cart"},
//!   "pull_request": {
//!     "number": 42, "title": "Add login", "state": "open", "draft": false,
//!     "user": {"login": "octocat"}, "labels": [{"name": "preview"}],
//!     "head": {"ref": "feature/login", "sha": "9f1c2e7d", "repo": {"full_name": "acme/cart"}},
//!     "base": {"ref": "main", "sha": "1a2b3c", "repo": {"full_name": "acme/cart"}},
//!     "updated_at": "2026-01-02T03:04:05Z"
//!   }
//! }"#;
//! let delivery = github::parse("pull_request", body).unwrap();
//! let e = delivery.event().unwrap();
//! assert_eq!(e.action, PullRequestAction::Opened);
//! assert_eq!((e.repo.as_str(), e.number, e.head_sha.as_str()), ("acme/cart", 42, "9f1c2e7d"));
//! assert!(e.labels.contains("preview") && e.head_repo.is_none());
//! ```

use idp_core::Result;

use crate::event::{Forge, PullRequestAction, PullRequestEvent};
use crate::webhook::{Delivery, Payload};

/// The `head_repo` recorded when GitHub reports the head repository as `null` (the fork
/// was deleted): still a fork, but we cannot say whose.
pub const UNKNOWN_HEAD_REPO: &str = "<deleted fork>";

const WHAT: &str = "GitHub pull_request payload";

/// Parse a GitHub delivery: `event` is the `X-GitHub-Event` header, `body` the raw
/// (already verified) body.
///
/// ```
/// use idp_preview::{github, webhook::Delivery};
/// let d = github::parse("push", b"{}").unwrap();
/// assert!(matches!(d, Delivery::Ignored { .. }));
/// let err = github::parse("pull_request", br#"{"action": "opened"}"#).unwrap_err();
/// assert!(err.to_string().contains("`repository.full_name`"));
/// ```
pub fn parse(event: &str, body: &[u8]) -> Result<Delivery> {
    let event = event.trim();
    if event == "ping" {
        return Ok(Delivery::ignored(
            "a ping: GitHub checks the webhook works (nothing to do)",
        ));
    }
    if event != "pull_request" {
        return Ok(Delivery::ignored(format!(
            "a GitHub {event:?} event, not a pull_request event"
        )));
    }
    let root = Payload::parse(WHAT, body)?;
    let p = Payload::new(WHAT, &root);
    let action_name = p.str("action")?;
    let action = match action_name {
        "opened" => PullRequestAction::Opened,
        "reopened" => PullRequestAction::Reopened,
        "synchronize" => PullRequestAction::Synchronize,
        "closed" => PullRequestAction::Closed {
            merged: p.bool_or("pull_request.merged", false)?,
        },
        "labeled" => PullRequestAction::Labeled {
            label: p.str("label.name")?.to_owned(),
        },
        "unlabeled" => PullRequestAction::Unlabeled {
            label: p.str("label.name")?.to_owned(),
        },
        "ready_for_review" => PullRequestAction::ReadyForReview,
        "converted_to_draft" => PullRequestAction::ConvertedToDraft,
        "edited" => PullRequestAction::Edited,
        other => {
            return Ok(Delivery::ignored(format!(
                "pull_request action {other:?} does not concern previews"
            )));
        }
    };
    let repo = p.str("repository.full_name")?;
    let number = match p.get("number") {
        Some(_) => p.u64("number")?,
        None => p.u64("pull_request.number")?,
    };
    let mut e = PullRequestEvent::new(Forge::GitHub, action, repo, number)
        .with_head(
            p.str("pull_request.head.ref")?,
            p.str("pull_request.head.sha")?,
        )
        .with_base(p.str("pull_request.base.ref")?);
    p.opt_str("pull_request.title")?
        .unwrap_or_default()
        .clone_into(&mut e.title);
    p.opt_str("pull_request.user.login")?
        .unwrap_or_default()
        .clone_into(&mut e.author);
    e.head_repo = if p.get("pull_request.head.repo").is_some() {
        let head = p.str("pull_request.head.repo.full_name")?;
        (!head.eq_ignore_ascii_case(repo)).then(|| head.to_owned())
    } else {
        Some(UNKNOWN_HEAD_REPO.to_owned())
    };
    e.labels = p
        .names("pull_request.labels", "name")?
        .into_iter()
        .collect();
    e.draft = p.bool_or("pull_request.draft", false)?;
    e.open = match p.opt_str("pull_request.state")? {
        Some(state) => state == "open",
        None => !e.action.is_close(),
    };
    if e.action.is_close() {
        e.open = false;
    }
    e.updated_at = p.time("pull_request.updated_at");
    Ok(Delivery::Event(Box::new(e)))
}
