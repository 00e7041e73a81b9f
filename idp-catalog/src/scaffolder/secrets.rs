//! Secret redaction and cancellation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;

/// What secrets are replaced with.
pub const REDACTED: &str = "***";

/// Replaces every known secret value in text and JSON with `***`.
///
/// ```
/// let r = idp_catalog::scaffolder::Redactor::new(vec!["hunter2".into()]);
/// assert_eq!(r.redact("password=hunter2"), "password=***");
/// assert_eq!(r.redact_value(&serde_json::json!({"a": ["xhunter2"]})), serde_json::json!({"a": ["x***"]}));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor for these values (empty strings are ignored; longest replaced first).
    ///
    /// ```
    /// assert!(idp_catalog::scaffolder::Redactor::new(vec![String::new()]).is_empty());
    /// ```
    pub fn new(secrets: Vec<String>) -> Self {
        let mut secrets: Vec<String> = secrets.into_iter().filter(|s| !s.is_empty()).collect();
        secrets.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        secrets.dedup();
        Self { secrets }
    }

    /// Whether there is nothing to redact.
    ///
    /// ```
    /// assert!(idp_catalog::scaffolder::Redactor::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.secrets.is_empty()
    }

    /// `text` with every secret replaced.
    ///
    /// ```
    /// let r = idp_catalog::scaffolder::Redactor::new(vec!["s3cr3t".into()]);
    /// assert!(!r.redact("token s3cr3t").contains("s3cr3t"));
    /// ```
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in &self.secrets {
            if out.contains(s.as_str()) {
                out = out.replace(s.as_str(), REDACTED);
            }
        }
        out
    }

    /// `value` with every secret replaced in every string (keys included).
    ///
    /// ```
    /// let r = idp_catalog::scaffolder::Redactor::new(vec!["k".into()]);
    /// assert_eq!(r.redact_value(&serde_json::json!("k")), serde_json::json!("***"));
    /// ```
    pub fn redact_value(&self, value: &Value) -> Value {
        if self.is_empty() {
            return value.clone();
        }
        match value {
            Value::String(s) => Value::String(self.redact(s)),
            Value::Array(items) => {
                Value::Array(items.iter().map(|v| self.redact_value(v)).collect())
            }
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (self.redact(k), self.redact_value(v)))
                    .collect(),
            ),
            Value::Number(n) if self.secrets.contains(&n.to_string()) => {
                Value::String(REDACTED.to_owned())
            }
            other => other.clone(),
        }
    }
}

/// A cancellation signal shared by the caller and a running task.
///
/// ```
/// let token = idp_catalog::scaffolder::CancelToken::new();
/// let clone = token.clone();
/// token.cancel();
/// assert!(clone.is_cancelled());
/// ```
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<CancelInner>);

#[derive(Debug, Default)]
struct CancelInner {
    cancelled: AtomicBool,
    notify: tokio::sync::Notify,
}

impl CancelToken {
    /// A token that is not cancelled.
    ///
    /// ```
    /// assert!(!idp_catalog::scaffolder::CancelToken::new().is_cancelled());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask every holder to stop.
    ///
    /// ```
    /// let t = idp_catalog::scaffolder::CancelToken::new();
    /// t.cancel();
    /// assert!(t.is_cancelled());
    /// ```
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        self.0.notify.notify_waiters();
    }

    /// Whether [`cancel`](Self::cancel) was called.
    ///
    /// ```
    /// assert!(!idp_catalog::scaffolder::CancelToken::default().is_cancelled());
    /// ```
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Resolves once the token is cancelled.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let t = idp_catalog::scaffolder::CancelToken::new();
    /// t.cancel();
    /// t.cancelled().await;
    /// # }
    /// ```
    pub async fn cancelled(&self) {
        loop {
            let notified = self.0.notify.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.is_cancelled() {
                return;
            }
            notified.await;
        }
    }
}
