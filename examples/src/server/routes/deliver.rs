//! Deployments, rollbacks, promotions, DORA metrics and cost (`/api/deployments`,
//! `/api/promotions`, `/api/dora`, `/api/cost`, `/api/environments`), over the
//! [`Delivery`](crate::server::deliver::Delivery) service.
//!
//! Request bodies are JSON objects; every field is checked by name, so a 400 says which
//! field is wrong and what it should hold. A deployment that a policy denies answers 403
//! with every violation (`violations`) in the usual error body, and nothing is committed.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use idp_core::EntityRef;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::server::deliver::{
    CostView, Delivery, DeployInput, DeploymentView, DoraView, PolicyFinding, Source, Verdict,
    WORKLOAD_ANNOTATION,
};
use crate::server::error::ApiError;
use crate::server::state::AppState;

/// The delivery routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/deployments", post(create).get(list))
        .route("/api/deployments/{id}", get(one))
        .route("/api/deployments/{id}/rollback", post(rollback))
        .route("/api/promotions", post(promote))
        .route("/api/dora", get(dora_metrics))
        .route("/api/cost", get(cost))
        .route("/api/environments", get(environments))
}

/// `POST /api/deployments` (documentation of the body; the handler checks each field).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // documents the body in the OpenAPI document; the handler reads fields one by one
pub struct DeploymentRequest {
    /// `component:default/name`, `default/name` or `name`; must be in the catalog.
    pub component: String,
    /// A configured environment (`dev`, `staging`, `prod`).
    pub environment: String,
    /// The image for Score containers whose image is `.`.
    pub image: Option<String>,
    /// Kubernetes manifests, YAML text (several documents separated by `---`).
    pub manifests: Option<String>,
    /// Or a Score workload (`score.dev/v1b1`), YAML text, rendered with the environment's
    /// profile.
    pub workload: Option<String>,
    /// The source commit that was built.
    pub source_revision: Option<String>,
    /// When that commit was made (RFC 3339), for the lead time for changes.
    pub source_committed_at: Option<String>,
    /// Who deploys.
    pub author: Option<String>,
    /// Why (added to the commit message).
    pub message: Option<String>,
    /// Seconds (up to 120) to wait for the cluster to converge before answering.
    pub wait: Option<u64>,
}

/// `POST /api/deployments/{id}/rollback` (the body is optional).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // documents the body in the OpenAPI document; the handler reads fields one by one
pub struct RollbackRequest {
    /// The release to restore (default: the one before `{id}`).
    pub to: Option<String>,
    /// Who rolls back.
    pub author: Option<String>,
    /// Seconds (up to 120) to wait for the cluster to converge before answering.
    pub wait: Option<u64>,
}

/// `POST /api/promotions`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(dead_code)] // documents the body in the OpenAPI document; the handler reads fields one by one
pub struct PromotionRequest {
    /// The component (as in deployments).
    pub component: String,
    /// The environment whose current release is copied.
    pub from: String,
    /// The environment it is copied to.
    pub to: String,
    /// Who promotes.
    pub author: Option<String>,
    /// Seconds (up to 120) to wait for the cluster to converge before answering.
    pub wait: Option<u64>,
}

/// One environment and its reconciler.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentView {
    /// Its name.
    pub name: String,
    /// Its namespace.
    pub namespace: String,
    /// The reconciler's last sync status.
    pub sync: String,
    /// The worst health of its objects.
    pub health: String,
    /// The revision last reconciled.
    pub revision: Option<String>,
    /// When.
    pub reconciled_at: Option<String>,
    /// Why it stopped early, if it did.
    pub stalled: Option<String>,
    /// Whether this replica holds the Lease (and so applies).
    pub leader: bool,
}

/// The delivery service, or 503 while it is not configured.
pub(crate) fn delivery(state: &AppState) -> Result<&Arc<Delivery>, ApiError> {
    state.delivery.get().ok_or_else(|| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        name: "ServiceUnavailableError",
        message: "deployments are not configured on this server".into(),
    })
}

/// Parse a JSON object body, rejecting fields not in `allowed`.
fn object(body: &Bytes, allowed: &[&str], optional: bool) -> Result<Map<String, Value>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        if optional {
            return Ok(Map::new());
        }
        return Err(ApiError::input(format!(
            "The request body is empty: send a JSON object with {}",
            allowed.join(", ")
        )));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::input(format!("The request body is not valid JSON: {e}")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::input(format!(
            "The request body must be a JSON object with {}",
            allowed.join(", ")
        )));
    };
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::input(format!(
            "{unknown}: unknown field; accepted fields: {}",
            allowed.join(", ")
        )));
    }
    Ok(map)
}

/// An optional string field; empty strings count as absent.
fn opt_str(map: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::input(format!(
            "{field}: must be a string, not {}",
            type_name(other)
        ))),
    }
}

/// A required string field.
fn req_str(map: &Map<String, Value>, field: &str, example: &str) -> Result<String, ApiError> {
    opt_str(map, field)?.ok_or_else(|| {
        ApiError::input(format!(
            "{field}: missing; give it as a string, for example {example:?}"
        ))
    })
}

fn opt_wait(map: &Map<String, Value>) -> Result<Option<Duration>, ApiError> {
    match map.get("wait") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n <= 120 => Ok(Some(Duration::from_secs(n))),
            _ => Err(ApiError::input(
                "wait: must be a whole number of seconds from 0 to 120",
            )),
        },
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A catalog component and what the catalog says about it: its owner and system.
pub(crate) struct Resolved {
    pub component: EntityRef,
    pub owner: Option<String>,
    pub system: Option<String>,
    /// The `idp.dev/workload` annotation: a Score file beside the entity's own
    /// `catalog-info.yaml` (or in the catalog repository).
    pub workload: Option<String>,
    /// The `backstage.io/managed-by-location` annotation: where the entity was read.
    pub location: Option<String>,
}

/// Resolve `text` (a component reference or name) in the catalog: 400 when it is not a
/// component reference, 404 when the catalog has no such component.
pub(crate) fn resolve_component(
    state: &AppState,
    field: &str,
    text: &str,
) -> Result<Resolved, ApiError> {
    let component =
        EntityRef::parse_with_defaults(text, Some("Component"), idp_core::DEFAULT_NAMESPACE)
            .map_err(|e| ApiError::input(format!("{field}: {}", e.message())))?;
    if !component.kind().eq_ignore_ascii_case("component") {
        return Err(ApiError::input(format!(
            "{field}: {component} is a {}, not a Component",
            component.kind()
        )));
    }
    let Some(entity) = state.view().snapshot.get(&component) else {
        return Err(ApiError::not_found(format!(
            "{component} is not in the catalog; register it (POST /api/catalog/locations) before deploying it"
        )));
    };
    let value = entity.to_value();
    let text_at = |p: &str| {
        value
            .pointer(p)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(Resolved {
        component,
        owner: text_at("/spec/owner"),
        system: text_at("/spec/system"),
        workload: text_at("/metadata/annotations/idp.dev~1workload"),
        location: text_at("/metadata/annotations/backstage.io~1managed-by-location"),
    })
}

/// The 403 answer for a policy denial: the usual error body plus every violation.
fn denied(method: &Method, uri: &OriginalUri, findings: &[PolicyFinding]) -> Response {
    let blocking = findings.iter().filter(|f| f.action == "deny").count();
    let first: Vec<String> = findings
        .iter()
        .filter(|f| f.action == "deny")
        .take(3)
        .map(|f| format!("{} {}: {}", f.object, f.rule, f.message))
        .collect();
    let body = json!({
        "error": {
            "name": "NotAllowedError",
            "message": format!(
                "Denied by policy ({blocking} violation{}); nothing was committed: {}",
                if blocking == 1 { "" } else { "s" },
                first.join("; ")
            ),
        },
        "request": {"method": method.as_str(), "url": uri.0.to_string()},
        "response": {"statusCode": 403},
        "violations": findings,
    });
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
        body.to_string(),
    )
        .into_response()
}

async fn answer(
    d: &Delivery,
    method: &Method,
    uri: &OriginalUri,
    verdict: Verdict,
    wait: Option<Duration>,
) -> Result<Response, ApiError> {
    match verdict {
        Verdict::Denied(findings) => Ok(denied(method, uri, &findings)),
        Verdict::Deployed(view) => {
            let status = if view.created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            let mut view = *view;
            if let Some(wait) = wait.filter(|w| !w.is_zero())
                && let Some(now) = d.wait_converged(&view.id, wait).await?
            {
                view = DeploymentView {
                    warnings: view.warnings,
                    created: view.created,
                    ..now
                };
            }
            Ok((status, Json(view)).into_response())
        }
    }
}

async fn create(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: OriginalUri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let d = delivery(&state)?;
    let map = object(
        &body,
        &[
            "component",
            "environment",
            "image",
            "manifests",
            "workload",
            "sourceRevision",
            "sourceCommittedAt",
            "author",
            "message",
            "wait",
        ],
        false,
    )?;
    let component = req_str(&map, "component", "component:default/cart-service")?;
    let environment = req_str(&map, "environment", "dev")?;
    let image = opt_str(&map, "image")?;
    let manifests = opt_str(&map, "manifests")?;
    let workload = opt_str(&map, "workload")?;
    let source_revision = opt_str(&map, "sourceRevision")?;
    let source_committed_at = opt_str(&map, "sourceCommittedAt")?
        .map(|t| {
            t.parse::<jiff::Timestamp>().map_err(|e| {
                ApiError::input(format!(
                    "sourceCommittedAt: {t:?} is not an RFC 3339 time such as 2026-01-02T03:04:05Z ({e})"
                ))
            })
        })
        .transpose()?;
    let author = opt_str(&map, "author")?;
    let message = opt_str(&map, "message")?;
    let wait = opt_wait(&map)?;
    let env = d
        .require_environment("environment", &environment)?
        .name
        .clone();
    let resolved = resolve_component(&state, "component", &component)?;
    let source = match (manifests, workload) {
        (Some(_), Some(_)) => {
            return Err(ApiError::input(
                "manifests, workload: give one of them, not both",
            ));
        }
        (Some(m), None) => Source::Manifests(m),
        (None, Some(w)) => Source::Workload(w),
        (None, None) => {
            let Some(path) = &resolved.workload else {
                return Err(ApiError::input(format!(
                    "manifests: missing; give Kubernetes manifests (YAML text) in manifests or a Score workload in workload, or annotate the component with {WORKLOAD_ANNOTATION}: <path of its Score file in the catalog repository>"
                )));
            };
            Source::Workload(
                d.catalog_workload(&resolved.component, resolved.location.as_deref(), path)
                    .await?,
            )
        }
    };
    let verdict = d
        .deploy(DeployInput {
            component: resolved.component,
            owner: resolved.owner,
            system: resolved.system,
            environment: env,
            image,
            source,
            source_revision,
            source_committed_at,
            author,
            message,
        })
        .await?;
    answer(d, &method, &uri, verdict, wait).await
}

fn query_value<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

fn query_component(
    state: &AppState,
    params: &[(String, String)],
) -> Result<Option<EntityRef>, ApiError> {
    query_value(params, "component")
        .map(|c| resolve_component(state, "component", c).map(|r| r.component))
        .transpose()
}

fn query_env<'a>(
    d: &Delivery,
    params: &'a [(String, String)],
) -> Result<Option<&'a str>, ApiError> {
    let env = query_value(params, "env").or_else(|| query_value(params, "environment"));
    if let Some(e) = env {
        d.require_environment("env", e)?;
    }
    Ok(env)
}

fn query_number(
    params: &[(String, String)],
    key: &str,
    default: u32,
    max: u32,
) -> Result<u32, ApiError> {
    match query_value(params, key) {
        None => Ok(default),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::input(format!(
                "{key}: {v:?} is not a whole number from 1 to {max}"
            ))),
        },
    }
}

async fn list(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<Vec<DeploymentView>>, ApiError> {
    let d = delivery(&state)?;
    let component = query_component(&state, &params)?;
    let env = query_env(d, &params)?;
    let limit = query_number(&params, "limit", 50, 500)?;
    let rows = d
        .history(
            component.as_ref(),
            env,
            usize::try_from(limit).unwrap_or(50),
        )
        .await?;
    Ok(Json(rows))
}

async fn one(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<DeploymentView>, ApiError> {
    let d = delivery(&state)?;
    d.get(&id).await?.map(Json).ok_or_else(|| {
        ApiError::not_found(format!(
            "no deployment {id}; list them with GET /api/deployments"
        ))
    })
}

async fn rollback(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    method: Method,
    uri: OriginalUri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let d = delivery(&state)?;
    let map = object(&body, &["to", "author", "wait"], true)?;
    let to = opt_str(&map, "to")?;
    let author = opt_str(&map, "author")?;
    let wait = opt_wait(&map)?;
    let view = d.rollback(&id, to.as_deref(), author.as_deref()).await?;
    answer(d, &method, &uri, Verdict::Deployed(Box::new(view)), wait).await
}

async fn promote(
    State(state): State<Arc<AppState>>,
    method: Method,
    uri: OriginalUri,
    body: Bytes,
) -> Result<Response, ApiError> {
    let d = delivery(&state)?;
    let map = object(&body, &["component", "from", "to", "author", "wait"], false)?;
    let component = req_str(&map, "component", "component:default/cart-service")?;
    let from = req_str(&map, "from", "dev")?;
    let to = req_str(&map, "to", "staging")?;
    let author = opt_str(&map, "author")?;
    let wait = opt_wait(&map)?;
    d.require_environment("from", &from)?;
    d.require_environment("to", &to)?;
    let resolved = resolve_component(&state, "component", &component)?;
    let verdict = d
        .promote(
            &resolved.component,
            resolved.owner.as_deref(),
            resolved.system.as_deref(),
            &from,
            &to,
            author.as_deref(),
        )
        .await?;
    answer(d, &method, &uri, verdict, wait).await
}

/// Component name → owner, from the catalog (DORA's per-team view).
pub(crate) fn teams(state: &AppState) -> HashMap<String, String> {
    let view = state.view();
    view.snapshot
        .entities()
        .filter(|e| e.kind().eq_ignore_ascii_case("component"))
        .filter_map(|e| {
            let v = e.to_value();
            let owner = v.pointer("/spec/owner")?.as_str()?.to_owned();
            Some((e.name().to_owned(), owner))
        })
        .collect()
}

async fn dora_metrics(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<DoraView>, ApiError> {
    let d = delivery(&state)?;
    let component = query_component(&state, &params)?;
    let env = query_env(d, &params)?;
    let days = query_number(&params, "days", 30, 365)?;
    let view = d
        .dora(component.as_ref(), env, days, &teams(&state))
        .await?;
    Ok(Json(view))
}

async fn cost(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Json<CostView>, ApiError> {
    let d = delivery(&state)?;
    let component = query_component(&state, &params)?;
    let env = query_env(d, &params)?;
    Ok(Json(d.cost(component.as_ref(), env).await?))
}

async fn environments(
    State(state): State<Arc<AppState>>,
) -> Result<Json<Vec<EnvironmentView>>, ApiError> {
    let d = delivery(&state)?;
    let leader = d.is_leader();
    let rows = d
        .environments()
        .iter()
        .map(|e| {
            let s = d.reconcile_status(e.name.as_str()).unwrap_or_default();
            EnvironmentView {
                name: e.name.to_string(),
                namespace: e.namespace.clone(),
                sync: format!("{:?}", s.sync),
                health: s.health.as_str().to_owned(),
                revision: s.revision.clone(),
                reconciled_at: s.reconciled_at.map(|t| t.to_string()),
                stalled: s.stalled.as_ref().map(|r| format!("{r:?}")),
                leader,
            }
        })
        .collect();
    Ok(Json(rows))
}

/// Add the delivery schemas to the OpenAPI document's components.
pub fn schemas(add: &mut impl FnMut(&str, schemars::Schema)) {
    add(
        "DeploymentRequest",
        schemars::schema_for!(DeploymentRequest),
    );
    add("RollbackRequest", schemars::schema_for!(RollbackRequest));
    add("PromotionRequest", schemars::schema_for!(PromotionRequest));
    add("Deployment", schemars::schema_for!(DeploymentView));
    add("Deployments", schemars::schema_for!(Vec<DeploymentView>));
    add("PolicyFinding", schemars::schema_for!(PolicyFinding));
    add("Dora", schemars::schema_for!(DoraView));
    add("Cost", schemars::schema_for!(CostView));
    add("Environments", schemars::schema_for!(Vec<EnvironmentView>));
}

/// Set the responses of the delivery routes in the OpenAPI document.
pub fn document(method: &str, path: &str, op: &mut Value) {
    let schema = |name: &str| json!({"content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{name}")}}}});
    let ok = |description: &str, name: &str| {
        let mut r = schema(name);
        r["description"] = json!(description);
        r
    };
    match (method, path) {
        ("post", "/api/deployments" | "/api/promotions" | "/api/deployments/{id}/rollback") => {
            op["responses"]["201"] = ok("A new release was committed", "Deployment");
            op["responses"]["200"] = ok("The environment already held this content", "Deployment");
            op["responses"]["403"] = json!({"description": "Denied by policy: the error body plus `violations` (PolicyFinding[]); nothing committed"});
        }
        ("get", "/api/deployments") => op["responses"]["200"] = ok("Newest first", "Deployments"),
        ("get", "/api/deployments/{id}") => {
            op["responses"]["200"] = ok("The deployment", "Deployment");
        }
        ("get", "/api/dora") => op["responses"]["200"] = ok("The metrics", "Dora"),
        ("get", "/api/cost") => op["responses"]["200"] = ok("The estimate", "Cost"),
        ("get", "/api/environments") => {
            op["responses"]["200"] = ok("Every environment", "Environments");
        }
        _ => {}
    }
}
