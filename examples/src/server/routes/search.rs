//! `GET /api/search/query?term=`: ranked full-text search over the catalog, in
//! Backstage's search response shape (`results[].type/document/rank`).

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::server::error::ApiError;
use crate::server::state::AppState;

/// The search routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/search/query", get(query))
}

const MAX_RESULTS: usize = 100;

async fn query(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Value>, ApiError> {
    let term = params
        .iter()
        .find(|(k, _)| k == "term")
        .map_or("", |(_, v)| v.as_str());
    let limit = match params
        .iter()
        .find(|(k, _)| k == "pageLimit" || k == "limit")
    {
        Some((k, v)) => v
            .parse::<usize>()
            .map_err(|_| {
                ApiError::input(format!("Invalid {k} {v:?}: expected a positive integer"))
            })?
            .clamp(1, MAX_RESULTS),
        None => 25,
    };
    let view = state.view();
    let hits = if term.trim().is_empty() {
        Vec::new()
    } else {
        view.search.search(term, limit)
    };
    let results: Vec<Value> = hits
        .into_iter()
        .enumerate()
        .filter_map(|(i, hit)| {
            let entity = view.snapshot.get(&hit.entity_ref)?;
            let v = entity.to_value();
            let meta = v.get("metadata");
            let text = |k: &str| {
                meta.and_then(|m| m.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            };
            let spec = |k: &str| {
                v.get("spec")
                    .and_then(|s| s.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or("")
            };
            let title = if text("title").is_empty() {
                text("name")
            } else {
                text("title")
            };
            Some(json!({
                "type": "software-catalog",
                "document": {
                    "title": title,
                    "text": text("description"),
                    "location": crate::server::portal::entity_url(&hit.entity_ref),
                    "kind": entity.kind(),
                    "namespace": entity.namespace(),
                    "name": entity.name(),
                    "componentType": spec("type"),
                    "lifecycle": spec("lifecycle"),
                    "owner": spec("owner"),
                    "entityRef": hit.entity_ref.to_string(),
                },
                "rank": i + 1,
                "score": hit.score,
            }))
        })
        .collect();
    Ok(Json(
        json!({ "results": results, "numberOfResults": results.len() }),
    ))
}
