//! Kubernetes admission webhooks: `POST /admission/validate` and `POST
//! /admission/mutate` take and return `admission.k8s.io/v1` `AdmissionReview`s, answered
//! by idp-policy's `AdmissionHandler` with the server's policy set (the one
//! `POST /api/policy/check` uses) and the default mutations (standard labels, default
//! resources). As Kubernetes expects, refusals — a malformed review included — are
//! `200 OK` reviews with `allowed: false` and a status saying why.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use idp_policy::admission::{AdmissionReview, ReviewKind};

use crate::server::create::area;
use crate::server::error::ApiError;
use crate::server::state::AppState;

/// The admission routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/admission/validate", post(validate))
        .route("/admission/mutate", post(mutate))
}

fn answer(
    state: &AppState,
    kind: ReviewKind,
    body: &[u8],
) -> Result<Json<AdmissionReview>, ApiError> {
    let area = area(state)?;
    let span = tracing::info_span!("admission", kind = ?kind, bytes = body.len());
    let review = span.in_scope(|| area.admission.handle(kind, body));
    if let Some(response) = &review.response {
        tracing::info!(uid = %response.uid, allowed = response.allowed, "admission review answered");
    }
    Ok(Json(review))
}

async fn validate(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<AdmissionReview>, ApiError> {
    answer(&state, ReviewKind::Validate, &body)
}

async fn mutate(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<AdmissionReview>, ApiError> {
    answer(&state, ReviewKind::Mutate, &body)
}
