//! Errors in Backstage's shape:
//! `{"error":{"name","message"},"request":{"method","url"},"response":{"statusCode"}}`.
//!
//! Handlers return [`ApiError`]; the [`layer`] middleware (which knows the request)
//! writes the body, and also turns axum's own rejections (unknown route, wrong method,
//! unreadable query) into the same shape. It records metrics and opens a tracing span
//! per request too.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use idp_core::ErrorKind;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;
use tracing::Instrument;

use crate::server::state::AppState;

/// An API error: a status, Backstage's error `name` and a message.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// `InputError`, `NotFoundError`, `ConflictError`...
    pub name: &'static str,
    /// What went wrong and what to do.
    pub message: String,
}

/// The JSON body of every error response (documented in the OpenAPI document).
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    /// `name` and `message`.
    pub error: ErrorDetail,
    /// The request that failed.
    pub request: RequestInfo,
    /// The response's status code.
    pub response: ResponseInfo,
}

/// `error` in [`ErrorBody`].
#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorDetail {
    /// Error class, e.g. `NotFoundError`.
    pub name: String,
    /// Human-readable message.
    pub message: String,
}

/// `request` in [`ErrorBody`].
#[derive(Debug, Serialize, JsonSchema)]
pub struct RequestInfo {
    /// HTTP method.
    pub method: String,
    /// Path and query.
    pub url: String,
}

/// `response` in [`ErrorBody`].
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseInfo {
    /// HTTP status.
    pub status_code: u16,
}

impl ApiError {
    /// 400 `InputError`.
    pub fn input(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            name: "InputError",
            message: message.into(),
        }
    }

    /// 404 `NotFoundError`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            name: "NotFoundError",
            message: message.into(),
        }
    }

    /// 409 `ConflictError`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            name: "ConflictError",
            message: message.into(),
        }
    }
}

impl From<idp_core::Error> for ApiError {
    fn from(e: idp_core::Error) -> Self {
        let (status, name) = match e.kind() {
            ErrorKind::InvalidInput => (StatusCode::BAD_REQUEST, "InputError"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, "NotFoundError"),
            ErrorKind::AlreadyExists | ErrorKind::Conflict => {
                (StatusCode::CONFLICT, "ConflictError")
            }
            ErrorKind::Denied => (StatusCode::FORBIDDEN, "NotAllowedError"),
            ErrorKind::Unavailable | ErrorKind::Timeout => {
                (StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailableError")
            }
            _ => (StatusCode::INTERNAL_SERVER_ERROR, "Error"),
        };
        Self {
            status,
            name,
            message: e.report(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        response.extensions_mut().insert(self);
        response
    }
}

fn name_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 | 413 | 415 | 422 => "InputError",
        401 => "AuthenticationError",
        403 => "NotAllowedError",
        404 => "NotFoundError",
        405 => "MethodNotAllowedError",
        409 => "ConflictError",
        _ => "Error",
    }
}

fn error_response(
    method: &str,
    url: &str,
    status: StatusCode,
    name: &str,
    message: &str,
) -> Response {
    let body = json!({
        "error": {"name": name, "message": message},
        "request": {"method": method, "url": url},
        "response": {"statusCode": status.as_u16()},
    });
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// The per-request middleware: a tracing span, metrics, and Backstage-shaped errors.
pub async fn layer(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_owned();
    let url = request.uri().path_and_query().map_or_else(
        || request.uri().path().to_owned(),
        |p| p.as_str().to_owned(),
    );
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let span = tracing::info_span!(
        "request",
        %method,
        %route,
        url = %url,
        status = tracing::field::Empty,
        latency_ms = tracing::field::Empty
    );
    let mut response = next.run(request).instrument(span.clone()).await;
    let status = response.status();
    if let Some(err) = response.extensions_mut().remove::<ApiError>() {
        response = error_response(&method, &url, err.status, err.name, &err.message);
    } else if (status.is_client_error() || status.is_server_error())
        && !response
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/html"))
    {
        // axum's own rejections: keep their text as the message.
        let bytes = axum::body::to_bytes(
            std::mem::replace(response.body_mut(), Body::empty()),
            64 * 1024,
        )
        .await
        .unwrap_or_default();
        let mut message = String::from_utf8_lossy(&bytes).into_owned();
        if message.is_empty() {
            message = match status {
                StatusCode::NOT_FOUND => {
                    format!("no route for {method} {url}; see /api/openapi.json")
                }
                StatusCode::METHOD_NOT_ALLOWED => format!("{method} is not allowed on {url}"),
                _ => status.canonical_reason().unwrap_or("error").to_owned(),
            };
        }
        response = error_response(&method, &url, status, name_for(status), &message);
    }
    let status = response.status().as_u16();
    span.record("status", status);
    let elapsed = start.elapsed();
    span.record("latency_ms", elapsed.as_secs_f64() * 1000.0);
    state.metrics.observe(&method, &route, status, elapsed);
    span.in_scope(|| {
        tracing::debug!(
            status,
            elapsed_ms = elapsed.as_secs_f64() * 1000.0,
            "request done"
        );
    });
    response
}
