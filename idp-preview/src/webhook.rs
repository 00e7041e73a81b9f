//! From an HTTP delivery to a [`PullRequestEvent`], whatever server you run: verify the
//! size and signature, then parse.
//!
//! [`WebhookHandler::handle`] takes the request headers (anything implementing
//! [`HeaderLookup`]: an `http::HeaderMap`, a slice of pairs, a `BTreeMap`) and the raw
//! body, and returns a [`Delivery`]: an event to plan, or an ignored delivery with the
//! reason (a `ping`, an `assigned` action…). Errors mean the delivery was rejected: the
//! body is too large or unsigned or wrongly signed (checked before the body is parsed),
//! or the payload is not what the forge documents (the message names the JSON field).
//!
//! ```
//! use idp_preview::event::Forge;
//! use idp_preview::verify::{github_signature, WebhookVerifier};
//! use idp_preview::webhook::{Delivery, WebhookHandler};
//!
//! let handler = WebhookHandler::new(WebhookVerifier::new(Forge::GitHub, "s3cret").unwrap());
//! let body = br#"{"zen": "Keep it logically awesome.", "hook_id": 1}"#;
//! let sig = github_signature(b"s3cret", body);
//! let headers = [("X-GitHub-Event", "ping"), ("X-Hub-Signature-256", sig.as_str())];
//! match handler.handle(&headers[..], body).unwrap() {
//!     Delivery::Ignored { reason } => assert!(reason.contains("ping")),
//!     Delivery::Event(_) => unreachable!(),
//! }
//! // The same body with a wrong signature never reaches the parser.
//! let bad = [("X-GitHub-Event", "ping"), ("X-Hub-Signature-256", "sha256=00")];
//! assert!(handler.handle(&bad[..], body).is_err());
//! ```

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use idp_core::{Error, Result};

use crate::event::{Forge, PullRequestEvent};
use crate::verify::WebhookVerifier;

/// The header GitHub names the event in (`pull_request`, `ping`, `push`…).
pub const GITHUB_EVENT_HEADER: &str = "X-GitHub-Event";
/// The header GitLab names the event in (`Merge Request Hook`, `Push Hook`…).
pub const GITLAB_EVENT_HEADER: &str = "X-Gitlab-Event";

/// What a verified delivery turned out to be.
///
/// ```
/// use idp_preview::webhook::Delivery;
/// let d = Delivery::Ignored { reason: "not a pull request event".into() };
/// assert!(d.event().is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A pull-request event to plan.
    Event(Box<PullRequestEvent>),
    /// A delivery we do not act on (another event type, an action that does not concern
    /// previews), with the reason.
    Ignored {
        /// Why it is ignored.
        reason: String,
    },
}

impl Delivery {
    /// The event, when there is one.
    ///
    /// ```
    /// use idp_preview::{event::*, webhook::Delivery};
    /// let e = PullRequestEvent::new(Forge::GitHub, PullRequestAction::Opened, "a/b", 1);
    /// assert_eq!(Delivery::Event(Box::new(e)).event().unwrap().number, 1);
    /// ```
    pub fn event(&self) -> Option<&PullRequestEvent> {
        match self {
            Delivery::Event(e) => Some(e),
            Delivery::Ignored { .. } => None,
        }
    }

    /// An ignored delivery.
    pub(crate) fn ignored(reason: impl Into<String>) -> Self {
        Delivery::Ignored {
            reason: reason.into(),
        }
    }
}

/// Read request headers by name, case-insensitively, whatever HTTP library holds them.
///
/// ```
/// use idp_preview::webhook::HeaderLookup;
/// let headers = [("x-github-event", "pull_request")];
/// assert_eq!(headers[..].header("X-GitHub-Event"), Some("pull_request"));
/// ```
pub trait HeaderLookup {
    /// The first value of header `name` (any case), when present and valid UTF-8.
    fn header(&self, name: &str) -> Option<&str>;
}

impl HeaderLookup for http::HeaderMap {
    fn header(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(|v| v.to_str().ok())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for [(K, V)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.as_ref().eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> HeaderLookup for Vec<(K, V)> {
    fn header(&self, name: &str) -> Option<&str> {
        self.as_slice().header(name)
    }
}

impl HeaderLookup for BTreeMap<String, String> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl<S: std::hash::BuildHasher> HeaderLookup for HashMap<String, String, S> {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Verifies, then parses, deliveries from one forge.
///
/// ```
/// use idp_preview::{event::Forge, verify::WebhookVerifier, webhook::WebhookHandler};
/// let h = WebhookHandler::new(WebhookVerifier::new(Forge::GitLab, "t0ken").unwrap());
/// let headers = [("X-Gitlab-Event", "Push Hook")]; // no token
/// assert!(h.handle(&headers[..], b"{}").is_err());
/// ```
#[derive(Debug, Clone)]
pub struct WebhookHandler {
    verifier: WebhookVerifier,
}

impl WebhookHandler {
    /// A handler for the verifier's forge.
    ///
    /// ```
    /// use idp_preview::{event::Forge, verify::WebhookVerifier, webhook::WebhookHandler};
    /// let h = WebhookHandler::new(WebhookVerifier::new(Forge::GitHub, "s").unwrap());
    /// assert_eq!(h.forge(), Forge::GitHub);
    /// ```
    pub fn new(verifier: WebhookVerifier) -> Self {
        Self { verifier }
    }

    /// The forge this handler accepts deliveries from.
    ///
    /// ```
    /// # use idp_preview::{event::Forge, verify::WebhookVerifier, webhook::WebhookHandler};
    /// # let h = WebhookHandler::new(WebhookVerifier::new(Forge::GitLab, "s").unwrap());
    /// assert_eq!(h.forge(), Forge::GitLab);
    /// ```
    pub fn forge(&self) -> Forge {
        self.verifier.forge()
    }

    /// Check the body size and signature, then parse the body according to the event
    /// header. Rejections are errors (`InvalidInput` for a too-large body or a malformed
    /// payload, `Denied` for a missing or wrong signature); deliveries that are fine but
    /// not for us are [`Delivery::Ignored`].
    ///
    /// ```
    /// use idp_preview::{event::Forge, verify::WebhookVerifier, webhook::{Delivery, WebhookHandler}};
    /// let h = WebhookHandler::new(WebhookVerifier::new(Forge::GitLab, "t0ken").unwrap());
    /// let headers = [("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", "t0ken")];
    /// assert!(matches!(h.handle(&headers[..], b"{}").unwrap(), Delivery::Ignored { .. }));
    /// ```
    pub fn handle<H: HeaderLookup + ?Sized>(&self, headers: &H, body: &[u8]) -> Result<Delivery> {
        let signature = headers.header(self.verifier.header_name());
        self.verifier.verify(signature, body)?;
        let event_header = match self.forge() {
            Forge::GitHub => GITHUB_EVENT_HEADER,
            Forge::GitLab => GITLAB_EVENT_HEADER,
        };
        let Some(event) = headers.header(event_header) else {
            return Err(Error::invalid_input(format!(
                "the {event_header} header is missing: cannot tell what kind of event this delivery is"
            )));
        };
        match self.forge() {
            Forge::GitHub => crate::github::parse(event, body),
            Forge::GitLab => crate::gitlab::parse(event, body),
        }
    }
}

/// A JSON payload read field by field, with errors that name the field's path.
pub(crate) struct Payload<'a> {
    what: &'static str,
    root: &'a Value,
}

impl<'a> Payload<'a> {
    /// Parse `body` as a JSON object; `what` names the payload in errors.
    pub(crate) fn parse(what: &'static str, body: &[u8]) -> Result<Value> {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            Error::invalid_input(format!(
                "{what}: the body is not valid JSON (line {}, column {}): {e}",
                e.line(),
                e.column()
            ))
        })?;
        if !value.is_object() {
            return Err(Error::invalid_input(format!(
                "{what}: the body must be a JSON object, found {}",
                type_name(&value)
            )));
        }
        Ok(value)
    }

    pub(crate) fn new(what: &'static str, root: &'a Value) -> Self {
        Self { what, root }
    }

    /// The value at a dotted path; `None` when missing or `null`.
    pub(crate) fn get(&self, path: &str) -> Option<&'a Value> {
        let mut v = self.root;
        for part in path.split('.') {
            v = v.get(part)?;
        }
        if v.is_null() { None } else { Some(v) }
    }

    fn missing(&self, path: &str, expected: &str) -> Error {
        Error::invalid_input(format!(
            "{}: field `{path}` is missing (expected {expected}); is this really the payload the header says?",
            self.what
        ))
    }

    fn wrong(&self, path: &str, expected: &str, found: &Value) -> Error {
        Error::invalid_input(format!(
            "{}: field `{path}` must be {expected}, found {}",
            self.what,
            type_name(found)
        ))
    }

    /// A required string.
    pub(crate) fn str(&self, path: &str) -> Result<&'a str> {
        self.opt_str(path)?
            .ok_or_else(|| self.missing(path, "a string"))
    }

    /// An optional string (missing or `null` → `None`).
    pub(crate) fn opt_str(&self, path: &str) -> Result<Option<&'a str>> {
        match self.get(path) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong(path, "a string", other)),
        }
    }

    /// A required non-negative integer.
    pub(crate) fn u64(&self, path: &str) -> Result<u64> {
        match self.get(path) {
            None => Err(self.missing(path, "a positive integer")),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| self.wrong(path, "a positive integer", v)),
        }
    }

    /// An optional boolean (missing or `null` → `default`).
    pub(crate) fn bool_or(&self, path: &str, default: bool) -> Result<bool> {
        match self.get(path) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.wrong(path, "true or false", other)),
        }
    }

    /// The strings at `key` of every object in the array at `path` (missing → empty).
    pub(crate) fn names(&self, path: &str, key: &str) -> Result<Vec<String>> {
        match self.get(path) {
            None => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, item)| match item.get(key) {
                    Some(Value::String(s)) => Ok(s.clone()),
                    Some(other) => {
                        Err(self.wrong(&format!("{path}[{i}].{key}"), "a string", other))
                    }
                    None => Err(self.missing(&format!("{path}[{i}].{key}"), "a string")),
                })
                .collect(),
            Some(other) => Err(self.wrong(path, "an array", other)),
        }
    }

    /// An optional timestamp (RFC 3339, or GitLab's older `2013-12-03 17:23:34 UTC`);
    /// unreadable → `None`.
    pub(crate) fn time(&self, path: &str) -> Option<jiff::Timestamp> {
        let s = self.get(path)?.as_str()?;
        if let Ok(t) = s.parse::<jiff::Timestamp>() {
            return Some(t);
        }
        let trimmed = s.strip_suffix(" UTC")?;
        let civil: jiff::civil::DateTime = trimmed.parse().ok()?;
        civil
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp())
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
