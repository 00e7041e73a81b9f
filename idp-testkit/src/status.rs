//! Kubernetes `Status` error objects, the body of every non-2xx response.

use serde_json::{Value, json};

use crate::registry::ResourceType;

/// An API error as the real server reports it: an HTTP code, a machine-readable reason
/// and a human message, serialised as a `Status` object.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
    pub(crate) code: u16,
    pub(crate) reason: &'static str,
    pub(crate) message: String,
    pub(crate) details: Option<Value>,
    /// Seconds for a `Retry-After` header (429/503 faults).
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            reason,
            message: message.into(),
            details: None,
            retry_after: None,
        }
    }

    pub(crate) fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    pub(crate) fn not_found(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} {name:?} not found", rt.qualified_plural()),
        )
        .with_details(json!({"name": name, "group": rt.group, "kind": rt.plural}))
    }

    pub(crate) fn namespace_not_found(ns: &str) -> Self {
        Self::new(404, "NotFound", format!("namespaces {ns:?} not found"))
            .with_details(json!({"name": ns, "kind": "namespaces"}))
    }

    pub(crate) fn path_not_found() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
        .with_details(json!({"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]}))
    }

    pub(crate) fn already_exists(rt: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!("{} {name:?} already exists", rt.qualified_plural()),
        )
        .with_details(json!({"name": name, "group": rt.group, "kind": rt.plural}))
    }

    pub(crate) fn conflict(rt: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: {why}",
                rt.qualified_plural()
            ),
        )
        .with_details(json!({"name": name, "group": rt.group, "kind": rt.plural}))
    }

    pub(crate) fn stale(rt: &ResourceType, name: &str) -> Self {
        Self::conflict(
            rt,
            name,
            "the object has been modified; please apply your changes to the latest version and try again",
        )
    }

    /// 422 Invalid with one field cause.
    pub(crate) fn invalid(
        rt: &ResourceType,
        name: &str,
        field: &str,
        cause_type: &str,
        detail: &str,
    ) -> Self {
        Self::new(
            422,
            "Invalid",
            format!("{} {name:?} is invalid: {field}: {detail}", rt.kind),
        )
        .with_details(json!({
            "name": name, "group": rt.group, "kind": rt.kind,
            "causes": [{"reason": cause_type, "message": detail, "field": field}]
        }))
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    pub(crate) fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::new(405, "MethodNotAllowed", message)
    }

    pub(crate) fn forbidden(message: impl Into<String>) -> Self {
        Self::new(403, "Forbidden", message)
    }

    pub(crate) fn unsupported_media_type(content_type: &str) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json (got {content_type:?})"
            ),
        )
    }

    pub(crate) fn gone(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message)
    }

    /// A generic error for an injected fault with this HTTP code.
    pub(crate) fn injected(code: u16) -> Self {
        let (reason, message) = match code {
            409 => ("Conflict", "injected fault: conflict"),
            429 => (
                "TooManyRequests",
                "injected fault: too many requests, please try again later",
            ),
            503 => (
                "ServiceUnavailable",
                "injected fault: the server is currently unable to handle the request",
            ),
            500 => (
                "InternalError",
                "injected fault: an error on the server has prevented the request from succeeding",
            ),
            504 => (
                "Timeout",
                "injected fault: the server was unable to return a response in the time allotted",
            ),
            _ => ("InternalError", "injected fault"),
        };
        Self::new(code, reason, message)
    }

    /// The `Status` object body.
    pub(crate) fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        let mut details = self.details.clone();
        if let Some(secs) = self.retry_after {
            let d = details.get_or_insert_with(|| json!({}));
            d["retryAfterSeconds"] = json!(secs);
        }
        if let Some(d) = details {
            status["details"] = d;
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_status_looks_like_the_real_server() {
        let rt = ResourceType::new("apps", "v1", "Deployment", "deployments", true);
        let s = ApiError::not_found(&rt, "web").to_status();
        assert_eq!(s["message"], "deployments.apps \"web\" not found");
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["code"], 404);
        assert_eq!(s["details"]["kind"], "deployments");
    }

    #[test]
    fn retry_after_lands_in_details() {
        let mut e = ApiError::injected(429);
        e.retry_after = Some(2);
        assert_eq!(e.to_status()["details"]["retryAfterSeconds"], 2);
    }
}
