//! The one error type that crosses port boundaries.
//!
//! Every port returns [`Error`]. Callers branch on [`Error::kind`] (like
//! [`std::io::ErrorKind`]); humans read the message, which says what was wrong, where,
//! and what to do. The underlying cause is kept as [`std::error::Error::source`].

use std::fmt;

use crate::model::Violation;

/// A specialised `Result` for idp operations.
///
/// ```
/// fn check(n: u32) -> idp_core::Result<u32> {
///     if n == 0 {
///         return Err(idp_core::Error::invalid_input("n must be positive"));
///     }
///     Ok(n)
/// }
/// assert!(check(0).is_err());
/// ```
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in a form a program can branch on.
///
/// ```
/// use idp_core::{Error, ErrorKind};
/// let err = Error::not_found("component \"cart\" does not exist");
/// assert_eq!(err.kind(), ErrorKind::NotFound);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller gave input that can never succeed as given (bad YAML, a bad name).
    InvalidInput,
    /// The thing asked for does not exist.
    NotFound,
    /// The thing to create exists already.
    AlreadyExists,
    /// Someone else changed the same thing first (a moved Git ref, a stale
    /// `resourceVersion`); retrying on fresh state may succeed.
    Conflict,
    /// A policy or an authority refused the operation; see [`Error::violations`].
    Denied,
    /// A backend (Git remote, Kubernetes API server) could not be reached or answered
    /// with a transient failure; retrying later may succeed.
    Unavailable,
    /// The operation did not finish in the time allowed.
    Timeout,
    /// A bug or an unexpected state inside idp or a backend.
    Internal,
}

impl ErrorKind {
    /// A short lower-case name, stable for logs and JSON output.
    ///
    /// ```
    /// assert_eq!(idp_core::ErrorKind::AlreadyExists.as_str(), "already_exists");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Denied => "denied",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Internal => "internal",
        }
    }

    /// Whether an operation that failed with this kind may succeed if retried unchanged.
    ///
    /// ```
    /// assert!(idp_core::ErrorKind::Unavailable.is_retryable());
    /// assert!(!idp_core::ErrorKind::InvalidInput.is_retryable());
    /// ```
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Unavailable | ErrorKind::Timeout | ErrorKind::Conflict
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The error returned by every port and by [`Platform`](crate::Platform).
///
/// It carries a [`ErrorKind`], a message for humans, an optional cause (kept in the
/// [`source`](std::error::Error::source) chain) and, for [`ErrorKind::Denied`], the policy
/// violations that caused the refusal.
///
/// ```
/// use std::error::Error as _;
/// let io = std::io::Error::new(std::io::ErrorKind::Other, "disk on fire");
/// let err = idp_core::Error::unavailable("cannot write the GitOps repository").with_source(io);
/// assert_eq!(err.to_string(), "cannot write the GitOps repository");
/// assert_eq!(err.source().unwrap().to_string(), "disk on fire");
/// ```
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<BoxError>,
    violations: Vec<Violation>,
}

impl Error {
    /// An error of `kind` with a message for humans.
    ///
    /// ```
    /// let e = idp_core::Error::new(idp_core::ErrorKind::Timeout, "rollout did not finish in 5m");
    /// assert_eq!(e.kind(), idp_core::ErrorKind::Timeout);
    /// ```
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            source: None,
            violations: Vec::new(),
        }
    }

    /// Shorthand for [`ErrorKind::InvalidInput`].
    ///
    /// ```
    /// let e = idp_core::Error::invalid_input("bad name");
    /// assert_eq!(e.kind(), idp_core::ErrorKind::InvalidInput);
    /// ```
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// Shorthand for [`ErrorKind::NotFound`].
    ///
    /// ```
    /// assert_eq!(idp_core::Error::not_found("x").kind(), idp_core::ErrorKind::NotFound);
    /// ```
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// Shorthand for [`ErrorKind::AlreadyExists`].
    ///
    /// ```
    /// assert_eq!(idp_core::Error::already_exists("x").kind(), idp_core::ErrorKind::AlreadyExists);
    /// ```
    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::AlreadyExists, message)
    }

    /// Shorthand for [`ErrorKind::Conflict`].
    ///
    /// ```
    /// assert_eq!(idp_core::Error::conflict("x").kind(), idp_core::ErrorKind::Conflict);
    /// ```
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }

    /// Shorthand for [`ErrorKind::Unavailable`].
    ///
    /// ```
    /// assert_eq!(idp_core::Error::unavailable("x").kind(), idp_core::ErrorKind::Unavailable);
    /// ```
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Shorthand for [`ErrorKind::Timeout`].
    ///
    /// ```
    /// assert_eq!(idp_core::Error::timeout("x").kind(), idp_core::ErrorKind::Timeout);
    /// ```
    pub fn timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Timeout, message)
    }

    /// Shorthand for [`ErrorKind::Internal`].
    ///
    /// ```
    /// assert_eq!(idp_core::Error::internal("x").kind(), idp_core::ErrorKind::Internal);
    /// ```
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// A [`ErrorKind::Denied`] error carrying every violation that caused it.
    ///
    /// ```
    /// use idp_core::{Error, Severity, Violation};
    /// let v = Violation::new("pss-baseline", "privileged", "container \"app\" must not be privileged")
    ///     .with_path("spec.containers[0].securityContext.privileged")
    ///     .with_severity(Severity::High);
    /// let err = Error::denied(vec![v]);
    /// assert_eq!(err.violations().len(), 1);
    /// assert!(err.to_string().contains("privileged"));
    /// ```
    pub fn denied(violations: Vec<Violation>) -> Self {
        let message = match violations.as_slice() {
            [] => "denied by policy".to_owned(),
            [one] => format!("denied by policy: {one}"),
            [first, rest @ ..] => format!(
                "denied by policy: {first} (and {} more violation{})",
                rest.len(),
                if rest.len() == 1 { "" } else { "s" }
            ),
        };
        Self {
            kind: ErrorKind::Denied,
            message,
            source: None,
            violations,
        }
    }

    /// Attach the underlying cause; it becomes this error's `source()`.
    ///
    /// ```
    /// use std::error::Error as _;
    /// let e = idp_core::Error::internal("x").with_source(std::fmt::Error);
    /// assert!(e.source().is_some());
    /// ```
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Prefix the message with where or what was being done (`"deploy cart to prod: …"`).
    ///
    /// ```
    /// let e = idp_core::Error::not_found("no such file").context("read envs/prod/app.yaml");
    /// assert_eq!(e.to_string(), "read envs/prod/app.yaml: no such file");
    /// ```
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// What went wrong, for programs.
    ///
    /// ```
    /// assert_eq!(idp_core::Error::conflict("moved").kind(), idp_core::ErrorKind::Conflict);
    /// ```
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message for humans, without the cause chain.
    ///
    /// ```
    /// assert_eq!(idp_core::Error::conflict("moved").message(), "moved");
    /// ```
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The policy violations behind a [`ErrorKind::Denied`] error (empty otherwise).
    ///
    /// ```
    /// assert!(idp_core::Error::conflict("moved").violations().is_empty());
    /// ```
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// The message followed by every cause in the chain, `": "`-separated, for logs and
    /// command-line output.
    ///
    /// ```
    /// let io = std::io::Error::new(std::io::ErrorKind::Other, "permission denied");
    /// let e = idp_core::Error::unavailable("write /repo").with_source(io);
    /// assert_eq!(e.report(), "write /repo: permission denied");
    /// ```
    pub fn report(&self) -> String {
        let mut out = self.message.clone();
        let mut next = std::error::Error::source(self);
        while let Some(cause) = next {
            let text = cause.to_string();
            if !out.ends_with(&text) {
                out.push_str(": ");
                out.push_str(&text);
            }
            next = cause.source();
        }
        out
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Error");
        s.field("kind", &self.kind).field("message", &self.message);
        if let Some(source) = &self.source {
            s.field("source", source);
        }
        if !self.violations.is_empty() {
            s.field("violations", &self.violations);
        }
        s.finish()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<std::io::Error> for Error {
    fn from(err: std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::AlreadyExists => ErrorKind::AlreadyExists,
            std::io::ErrorKind::PermissionDenied => ErrorKind::Denied,
            std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
            std::io::ErrorKind::InvalidInput | std::io::ErrorKind::InvalidData => {
                ErrorKind::InvalidInput
            }
            std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::NotConnected
            | std::io::ErrorKind::BrokenPipe
            | std::io::ErrorKind::Interrupted => ErrorKind::Unavailable,
            _ => ErrorKind::Internal,
        };
        Error::new(kind, err.to_string()).with_source(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_walks_the_chain_without_repeating() {
        let inner = std::io::Error::other("inner");
        let e = Error::unavailable("outer").with_source(inner);
        assert_eq!(e.report(), "outer: inner");
        let io: Error = std::io::Error::new(std::io::ErrorKind::NotFound, "gone").into();
        assert_eq!(io.kind(), ErrorKind::NotFound);
        assert_eq!(io.report(), "gone");
    }

    #[test]
    fn error_is_send_sync_static() {
        fn assert_bounds<T: Send + Sync + 'static>() {}
        assert_bounds::<Error>();
    }
}
