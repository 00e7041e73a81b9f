//! The scaffolder API, shaped like Backstage's scaffolder backend (`/api/scaffolder/v2`):
//! a template's parameter schema, the actions, tasks (created with `POST /tasks`, run in
//! the background) and their step events as JSON pages or Server-Sent Events.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use idp_core::EntityRef;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::server::create::area;
use crate::server::error::ApiError;
use crate::server::scaffolder::{TaskEntry, TaskEvent, TaskView};
use crate::server::state::AppState;

/// The user tasks are created for (the server has no sign-in).
pub const GUEST: &str = "user:default/guest";

/// The scaffolder routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/api/scaffolder/v2/templates/{namespace}/{kind}/{name}/parameter-schema",
            get(parameter_schema),
        )
        .route("/api/scaffolder/v2/actions", get(actions))
        .route(
            "/api/scaffolder/v2/tasks",
            post(create_task).get(list_tasks),
        )
        .route("/api/scaffolder/v2/tasks/{id}", get(get_task))
        .route("/api/scaffolder/v2/tasks/{id}/cancel", post(cancel_task))
        .route("/api/scaffolder/v2/tasks/{id}/events", get(events))
        .route(
            "/api/scaffolder/v2/tasks/{id}/eventstream",
            get(eventstream),
        )
}

/// `POST /api/scaffolder/v2/tasks` body.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskRequest {
    /// The template, e.g. `template:default/rust-service`.
    pub template_ref: String,
    /// Parameter values, validated against the template's JSON Schema.
    pub values: Value,
}

/// `POST /api/scaffolder/v2/tasks` answer.
#[derive(Debug, Serialize, JsonSchema)]
pub struct TaskCreated {
    /// The task id.
    pub id: String,
}

/// `GET /api/scaffolder/v2/tasks` answer.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskList {
    /// Tasks, newest first.
    pub tasks: Vec<TaskView>,
    /// How many.
    pub total_tasks: usize,
}

async fn parameter_schema(
    State(state): State<Arc<AppState>>,
    Path((namespace, kind, name)): Path<(String, String, String)>,
) -> Result<Json<Value>, ApiError> {
    let area = area(&state)?;
    let r = EntityRef::new(&kind, &namespace, &name)
        .map_err(|e| ApiError::input(format!("Invalid template reference: {}", e.report())))?;
    let template = area.scaffolding.template(&state, &r)?;
    Ok(Json(area.scaffolding.parameter_schema(&template)))
}

async fn actions(State(state): State<Arc<AppState>>) -> Result<Json<Vec<Value>>, ApiError> {
    let area = area(&state)?;
    Ok(Json(
        area.scaffolding
            .actions()
            .list()
            .iter()
            .map(|a| {
                json!({
                    "id": a.id(),
                    "description": a.description(),
                    "schema": {"input": a.input_schema(), "output": a.output_schema()},
                })
            })
            .collect(),
    ))
}

fn parse_request(body: &[u8]) -> Result<TaskRequest, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::input(
            "The request body is empty: send {\"templateRef\": \"template:default/rust-service\", \"values\": {...}}",
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::input(format!(
            "The request body is not valid JSON (line {}, column {}): {e}",
            e.line(),
            e.column()
        ))
    })?;
    let Value::Object(map) = value else {
        return Err(ApiError::input("The request body must be a JSON object"));
    };
    let template_ref = match map.get("templateRef") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) | None => {
            return Err(ApiError::input(
                "templateRef is required, e.g. \"template:default/rust-service\"",
            ));
        }
        Some(_) => return Err(ApiError::input("templateRef must be a string")),
    };
    let values = match map.get("values") {
        None | Some(Value::Null) => json!({}),
        Some(v @ Value::Object(_)) => v.clone(),
        Some(_) => {
            return Err(ApiError::input(
                "values must be a JSON object of parameter names to values",
            ));
        }
    };
    Ok(TaskRequest {
        template_ref,
        values,
    })
}

async fn create_task(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let area = area(&state)?;
    let request = parse_request(&body)?;
    let id = area
        .scaffolding
        .submit(&state, &request.template_ref, &request.values, GUEST)?;
    Ok((StatusCode::CREATED, Json(TaskCreated { id })).into_response())
}

async fn list_tasks(State(state): State<Arc<AppState>>) -> Result<Json<TaskList>, ApiError> {
    let area = area(&state)?;
    let tasks: Vec<TaskView> = area.scaffolding.tasks().iter().map(|t| t.view()).collect();
    Ok(Json(TaskList {
        total_tasks: tasks.len(),
        tasks,
    }))
}

fn find(state: &AppState, id: &str) -> Result<Arc<TaskEntry>, ApiError> {
    area(state)?
        .scaffolding
        .task(id)
        .ok_or_else(|| ApiError::not_found(format!("No task with id {id}")))
}

async fn get_task(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<TaskView>, ApiError> {
    Ok(Json(find(&state, &id)?.view()))
}

async fn cancel_task(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let task = find(&state, &id)?;
    if task.cancel() {
        Ok(Json(json!({"status": "cancelled"})))
    } else {
        Err(ApiError::conflict(format!(
            "Task {id} has finished ({}); there is nothing to cancel",
            task.view().status.as_str()
        )))
    }
}

/// `?after=N`.
#[derive(Debug, Deserialize)]
struct After {
    after: Option<String>,
}

fn after_of(q: &After) -> Result<u64, ApiError> {
    match q.after.as_deref() {
        None | Some("") => Ok(0),
        Some(t) => t.parse().map_err(|_| {
            ApiError::input(format!(
                "Invalid after {t:?}: use the id of the last event seen (a number)"
            ))
        }),
    }
}

async fn events(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<After>,
) -> Result<Json<Vec<TaskEvent>>, ApiError> {
    let after = after_of(&q)?;
    Ok(Json(find(&state, &id)?.events_after(after).0))
}

async fn eventstream(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(q): Query<After>,
) -> Result<Response, ApiError> {
    let after = after_of(&q)?;
    let task = find(&state, &id)?;
    let rx = task.subscribe();
    let stream = futures::stream::unfold(
        (task, rx, after, false),
        |(task, mut rx, cursor, done)| async move {
            if done {
                return None;
            }
            loop {
                let (events, finished) = task.events_after(cursor);
                if !events.is_empty() {
                    let next = events.last().map_or(cursor, |e| e.id);
                    let out: Vec<Result<Event, Infallible>> = events
                        .iter()
                        .map(|e| {
                            Ok(Event::default()
                                .event(e.kind.clone())
                                .id(e.id.to_string())
                                .data(serde_json::to_string(e).unwrap_or_default()))
                        })
                        .collect();
                    let all_sent = finished;
                    return Some((futures::stream::iter(out), (task, rx, next, all_sent)));
                }
                if finished {
                    return None;
                }
                if rx.changed().await.is_err() {
                    return None;
                }
            }
        },
    );
    let stream = futures::StreamExt::flatten(stream);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
