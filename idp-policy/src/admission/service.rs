//! [`AdmissionService`]: the handler as a tower `Service` over HTTP requests (feature
//! `admission`).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};

use super::handler::{AdmissionHandler, ReviewKind};
use super::review::{AdmissionResponse, AdmissionReview, Status};

/// An [`AdmissionHandler`] as a tower [`Service`](tower_service::Service) from
/// `http::Request<B>` (any body: hyper's `Incoming`, axum's `Body`, …) to
/// `http::Response<Full<Bytes>>`. It never fails.
///
/// | request | answer |
/// |---|---|
/// | `POST /validate` (JSON `AdmissionReview`) | 200, the validating review |
/// | `POST /mutate` | 200, the mutating review (JSON Patch) |
/// | `GET /healthz` | 200 `ok` |
/// | another path / method | 404 / 405 |
/// | a body that is not JSON, malformed or larger than [`AdmissionHandler::max_body_bytes`] | 200 with `allowed: false` and a message saying what was wrong (so a user sees it rather than a bare webhook failure) |
///
/// The API server's `?timeout=…` query is ignored. Serve it with hyper
/// (`hyper_util::service::TowerToHyperService`) over TLS as the webhook configuration
/// requires, or mount it in axum with `Router::route_service("/validate", svc.clone())`.
///
/// ```
/// use idp_policy::admission::{AdmissionHandler, AdmissionService};
/// use idp_policy::{PolicySet, pss::PodSecurity};
/// let service = AdmissionService::new(
///     AdmissionHandler::new().with_policy(PolicySet::new().with_policy(PodSecurity::restricted())));
/// let _clone = service.clone(); // cheap: one handler shared by every connection
/// ```
#[derive(Debug, Clone)]
pub struct AdmissionService {
    handler: Arc<AdmissionHandler>,
}

impl AdmissionService {
    /// Serve `handler`.
    ///
    /// ```
    /// let s = idp_policy::admission::AdmissionService::new(idp_policy::admission::AdmissionHandler::new());
    /// assert_eq!(s.handler().max_body_bytes(), idp_policy::admission::DEFAULT_MAX_BODY_BYTES);
    /// ```
    pub fn new(handler: AdmissionHandler) -> Self {
        Self {
            handler: Arc::new(handler),
        }
    }

    /// The handler behind it.
    ///
    /// ```
    /// let s = idp_policy::admission::AdmissionService::new(idp_policy::admission::AdmissionHandler::new());
    /// let _ = s.handler();
    /// ```
    pub fn handler(&self) -> &AdmissionHandler {
        &self.handler
    }
}

/// The future [`AdmissionService`] returns.
pub type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send>>;

impl<B> tower_service::Service<Request<B>> for AdmissionService
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let handler = Arc::clone(&self.handler);
        Box::pin(async move { Ok(respond(&handler, request).await) })
    }
}

async fn respond<B>(handler: &AdmissionHandler, request: Request<B>) -> Response<Full<Bytes>>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: std::error::Error + Send + Sync + 'static,
{
    let path = request.uri().path();
    if path == "/healthz" && request.method() == Method::GET {
        return plain(StatusCode::OK, "ok");
    }
    let Some(kind) = ReviewKind::from_path(path) else {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: POST AdmissionReviews to /validate or /mutate",
        );
    };
    if request.method() != Method::POST {
        return plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: POST an AdmissionReview",
        );
    }
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if !content_type.starts_with("application/json") {
        return review_json(&AdmissionReview::answer(AdmissionResponse::deny(
            "",
            Status::failure(
                415,
                "UnsupportedMediaType",
                format!("content type {content_type} is not supported; send application/json"),
            ),
        )));
    }
    let limit = handler.max_body_bytes();
    let body = match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) => {
            let too_large = err.is::<http_body_util::LengthLimitError>();
            let status = if too_large {
                Status::failure(
                    413,
                    "RequestEntityTooLarge",
                    format!(
                        "the AdmissionReview is larger than the {limit} bytes this webhook reads"
                    ),
                )
            } else {
                Status::bad_request(format!("cannot read the request body: {err}"))
            };
            return review_json(&AdmissionReview::answer(AdmissionResponse::deny(
                "", status,
            )));
        }
    };
    review_json(&handler.handle(kind, &body))
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn review_json(review: &AdmissionReview) -> Response<Full<Bytes>> {
    match serde_json::to_vec(review) {
        Ok(json) => {
            let mut response = Response::new(Full::new(Bytes::from(json)));
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                header::HeaderValue::from_static("application/json"),
            );
            response
        }
        Err(_) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot serialise the AdmissionReview",
        ),
    }
}
