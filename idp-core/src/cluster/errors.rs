//! Turning `kube` client errors into [`idp_core::Error`](crate::Error), and telling
//! transient failures from permanent ones.
//!
//! | HTTP status | [`ErrorKind`] | retried |
//! |---|---|---|
//! | 400, 422, other 4xx | `InvalidInput` | no |
//! | 401, 403 | `Denied` | no |
//! | 404 | `NotFound` | no |
//! | 409 reason `AlreadyExists` | `AlreadyExists` | no |
//! | 409 otherwise, 410 | `Conflict` | no |
//! | 408, 504, reason `Timeout` | `Timeout` | yes |
//! | 429, 500, 502, 503 | `Unavailable` | yes |
//! | connection errors | `Unavailable` (`Timeout` when the transport timed out) | yes |
//!
//! `kube` turns an error response whose body is not a Kubernetes `Status` into one with
//! the HTTP code; a JSON body that is not a `Status` loses the code (it reads as `0`),
//! and then the `reason` decides, or the error is `Unavailable` and retried.

use std::fmt;
use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// The [`ErrorKind`] of a kube client error (see the module table).
///
/// ```
/// use idp_core::cluster::errors::kind_of;
/// let status = kube::core::Status::failure("nope", "Forbidden").with_code(403);
/// assert_eq!(kind_of(&kube::Error::Api(status.boxed())), idp_core::ErrorKind::Denied);
/// ```
pub fn kind_of(err: &kube::Error) -> ErrorKind {
    match err {
        kube::Error::Api(status) => match status.code {
            401 | 403 => ErrorKind::Denied,
            404 => ErrorKind::NotFound,
            409 if status.reason == "AlreadyExists" => ErrorKind::AlreadyExists,
            409 | 410 => ErrorKind::Conflict,
            408 | 504 => ErrorKind::Timeout,
            429 | 500..=599 => ErrorKind::Unavailable,
            0 => kind_of_reason(&status.reason),
            // 400, 422 and any other client error: the request as sent cannot succeed.
            _ => ErrorKind::InvalidInput,
        },
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => {
            if timed_out(err) {
                ErrorKind::Timeout
            } else {
                ErrorKind::Unavailable
            }
        }
        kube::Error::Discovery(_) => ErrorKind::NotFound,
        kube::Error::BuildRequest(_)
        | kube::Error::HttpError(_)
        | kube::Error::InferConfig(_)
        | kube::Error::InferKubeconfig(_) => ErrorKind::InvalidInput,
        kube::Error::Auth(_) => ErrorKind::Denied,
        kube::Error::RustlsTls(_) | kube::Error::TlsRequired => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    }
}

fn kind_of_reason(reason: &str) -> ErrorKind {
    match reason {
        "NotFound" => ErrorKind::NotFound,
        "AlreadyExists" => ErrorKind::AlreadyExists,
        "Conflict" | "Gone" | "Expired" => ErrorKind::Conflict,
        "Invalid" | "BadRequest" | "MethodNotAllowed" | "RequestEntityTooLarge" => {
            ErrorKind::InvalidInput
        }
        "Forbidden" | "Unauthorized" => ErrorKind::Denied,
        "Timeout" | "ServerTimeout" => ErrorKind::Timeout,
        _ => ErrorKind::Unavailable,
    }
}

fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && io.kind() == std::io::ErrorKind::TimedOut
        {
            return true;
        }
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("timed out") || text.contains("deadline has elapsed") {
            return true;
        }
        next = e.source();
    }
    false
}

/// Whether retrying the same request later may succeed: 429, 5xx, server timeouts and
/// connection failures. Validation errors (400, 422), 401/403, 404 and 409 never are.
///
/// ```
/// use idp_core::cluster::errors::is_retryable;
/// let busy = kube::core::Status::failure("slow down", "TooManyRequests").with_code(429);
/// assert!(is_retryable(&kube::Error::Api(busy.boxed())));
/// let invalid = kube::core::Status::failure("bad", "Invalid").with_code(422);
/// assert!(!is_retryable(&kube::Error::Api(invalid.boxed())));
/// ```
pub fn is_retryable(err: &kube::Error) -> bool {
    matches!(kind_of(err), ErrorKind::Unavailable | ErrorKind::Timeout)
        && !matches!(err, kube::Error::RustlsTls(_) | kube::Error::TlsRequired)
}

/// The delay the server asked for, from the `Status` body's `details.retryAfterSeconds`.
///
/// The API server sends it together with the `Retry-After` header on 429 responses
/// (API Priority and Fairness) and some 5xx. kube 5's error does not expose response
/// headers, so a `Retry-After` header without a `Status` body (from a proxy, say) is
/// not seen; the exponential backoff applies then.
///
/// ```
/// use idp_core::cluster::errors::retry_after;
/// let mut status = kube::core::Status::failure("slow down", "TooManyRequests").with_code(429);
/// status.details = Some(serde_json::from_value(serde_json::json!({"retryAfterSeconds": 2}))?);
/// assert_eq!(retry_after(&kube::Error::Api(status.boxed())), Some(std::time::Duration::from_secs(2)));
/// # Ok::<(), serde_json::Error>(())
/// ```
pub fn retry_after(err: &kube::Error) -> Option<Duration> {
    match err {
        kube::Error::Api(status) => status
            .details
            .as_ref()
            .map(|d| d.retry_after_seconds)
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(u64::from(s))),
        _ => None,
    }
}

/// Convert a kube error into an [`Error`] that names what was being done
/// (`"apply v1 ConfigMap shop/settings"`) and, for the common refusals, what to do.
///
/// ```
/// use idp_core::cluster::errors::from_kube;
/// let status = kube::core::Status::failure("configmaps \"a\" not found", "NotFound").with_code(404);
/// let err = from_kube(kube::Error::Api(status.boxed()), "get v1 ConfigMap shop/a");
/// assert_eq!(err.kind(), idp_core::ErrorKind::NotFound);
/// assert!(err.to_string().starts_with("get v1 ConfigMap shop/a: "));
/// ```
pub fn from_kube(err: kube::Error, what: impl fmt::Display) -> Error {
    let kind = kind_of(&err);
    let detail = match &err {
        kube::Error::Api(status) => {
            let text = if status.message.is_empty() {
                "the API server refused the request".to_owned()
            } else {
                status.message.clone()
            };
            let suffix = match (status.code, status.reason.as_str()) {
                (0, "") => String::new(),
                (0, reason) => format!(" ({reason})"),
                (code, "") => format!(" (HTTP {code})"),
                (code, reason) => format!(" (HTTP {code} {reason})"),
            };
            text + &suffix
        }
        other => other.to_string(),
    };
    let hint = match kind {
        ErrorKind::Denied => {
            "; check the RBAC permissions of the identity idp runs as (kubectl auth can-i)"
        }
        ErrorKind::Conflict if matches!(&err, kube::Error::Api(s) if s.code == 409) => {
            "; another field manager owns these fields: change them there, or apply with force to take them over"
        }
        ErrorKind::InvalidInput if matches!(&err, kube::Error::Api(_)) => {
            "; fix the manifest and apply again"
        }
        _ => "",
    };
    Error::new(kind, format!("{what}: {detail}{hint}")).with_source(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Status::failure("msg", reason).with_code(code).boxed())
    }

    #[test]
    fn status_codes_map_to_kinds() {
        let table = [
            (400, "BadRequest", ErrorKind::InvalidInput, false),
            (422, "Invalid", ErrorKind::InvalidInput, false),
            (401, "Unauthorized", ErrorKind::Denied, false),
            (403, "Forbidden", ErrorKind::Denied, false),
            (404, "NotFound", ErrorKind::NotFound, false),
            (409, "AlreadyExists", ErrorKind::AlreadyExists, false),
            (409, "Conflict", ErrorKind::Conflict, false),
            (410, "Expired", ErrorKind::Conflict, false),
            (429, "TooManyRequests", ErrorKind::Unavailable, true),
            (500, "InternalError", ErrorKind::Unavailable, true),
            (502, "", ErrorKind::Unavailable, true),
            (503, "ServiceUnavailable", ErrorKind::Unavailable, true),
            (504, "Timeout", ErrorKind::Timeout, true),
            (0, "ServiceUnavailable", ErrorKind::Unavailable, true),
            (0, "Invalid", ErrorKind::InvalidInput, false),
            (0, "NotFound", ErrorKind::NotFound, false),
            (418, "Teapot", ErrorKind::InvalidInput, false),
        ];
        for (code, reason, kind, retry) in table {
            let err = api(code, reason);
            assert_eq!(kind_of(&err), kind, "{code} {reason}");
            assert_eq!(is_retryable(&err), retry, "{code} {reason}");
        }
    }

    #[test]
    fn messages_name_the_object_and_say_what_to_do() {
        let err = from_kube(api(403, "Forbidden"), "apply v1 Secret a/b");
        assert_eq!(err.kind(), ErrorKind::Denied);
        assert!(
            err.to_string()
                .contains("apply v1 Secret a/b: msg (HTTP 403 Forbidden)")
        );
        assert!(err.to_string().contains("RBAC"));
        let err = from_kube(api(409, "Conflict"), "apply x");
        assert!(err.to_string().contains("force"));
        assert!(std::error::Error::source(&err).is_some());
    }

    #[test]
    fn transport_timeouts_are_timeouts() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "read");
        let err = kube::Error::ReadEvents(io);
        assert_eq!(kind_of(&err), ErrorKind::Timeout);
        assert!(is_retryable(&err));
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(
            kind_of(&kube::Error::ReadEvents(io)),
            ErrorKind::Unavailable
        );
    }

    #[test]
    fn retry_after_reads_status_details() {
        assert_eq!(retry_after(&api(503, "x")), None);
        let mut status = Status::failure("m", "TooManyRequests").with_code(429);
        status.details =
            Some(serde_json::from_value(serde_json::json!({"retryAfterSeconds": 3})).unwrap());
        assert_eq!(
            retry_after(&kube::Error::Api(status.boxed())),
            Some(Duration::from_secs(3))
        );
    }
}
