//! Preview environments over HTTP: `POST /webhooks/github` (`X-Hub-Signature-256`),
//! `POST /webhooks/gitlab` (`X-Gitlab-Token`) — verified before anything is parsed —
//! and `GET /api/previews`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use idp_preview::event::Forge;
use schemars::JsonSchema;
use serde::Serialize;

use crate::server::create::area;
use crate::server::error::ApiError;
use crate::server::previews::{PreviewRow, WebhookError, WebhookOutcome};
use crate::server::state::AppState;

/// The preview routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/webhooks/github", post(github))
        .route("/webhooks/gitlab", post(gitlab))
        .route("/api/previews", get(list))
}

/// `GET /api/previews` answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct PreviewList {
    /// Every preview in the cluster.
    pub items: Vec<PreviewRow>,
}

fn refused(e: WebhookError) -> ApiError {
    match e {
        WebhookError::Unauthorized(message) => ApiError {
            status: StatusCode::UNAUTHORIZED,
            name: "AuthenticationError",
            message: format!("Webhook refused: {message}"),
        },
        WebhookError::BadRequest(message) => {
            ApiError::input(format!("Malformed webhook delivery: {message}"))
        }
        WebhookError::TooLarge(message) => ApiError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            name: "InputError",
            message,
        },
        WebhookError::NotConfigured(message) => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            name: "ServiceUnavailableError",
            message,
        },
    }
}

async fn deliver(
    state: &AppState,
    forge: Forge,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(StatusCode, Json<WebhookOutcome>), ApiError> {
    let area = area(state)?;
    let span = tracing::info_span!("webhook", forge = ?forge, bytes = body.len());
    let outcome =
        tracing::Instrument::instrument(area.previews.webhook(forge, headers, body), span)
            .await
            .map_err(refused)?;
    let status = if outcome.result == "accepted" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(outcome)))
}

async fn github(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<WebhookOutcome>), ApiError> {
    deliver(&state, Forge::GitHub, &headers, &body).await
}

async fn gitlab(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<WebhookOutcome>), ApiError> {
    deliver(&state, Forge::GitLab, &headers, &body).await
}

async fn list(State(state): State<Arc<AppState>>) -> Result<Json<PreviewList>, ApiError> {
    let area = area(&state)?;
    Ok(Json(PreviewList {
        items: area.previews.list().await?,
    }))
}
