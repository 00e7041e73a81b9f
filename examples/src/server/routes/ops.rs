//! Operations: `/healthz`, `/readyz`, `/metrics` (Prometheus text) and
//! `/api/openapi.json` (generated from the route table and the request/response types).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::server::state::{AppState, BUCKETS};

/// The operations routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready once the catalog is loaded and every policy sync has taken effect once: until
/// then the webhooks would answer without the policies kept in the cluster, so the
/// Service sends them nowhere (as Gatekeeper's and Kyverno's readiness wait for their
/// policies).
async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if !state.is_ready() {
        return (StatusCode::SERVICE_UNAVAILABLE, "catalog not loaded yet\n").into_response();
    }
    let awaited = state.syncs_awaited();
    if !awaited.is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "policies not synced yet: {} (see GET /api/policy/sync)\n",
                awaited.join(", ")
            ),
        )
            .into_response();
    }
    (StatusCode::OK, "ready\n").into_response()
}

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The Prometheus text exposition of the server's metrics.
pub fn render_metrics(state: &AppState) -> String {
    let mut out = String::new();
    let routes = state.metrics.snapshot();
    out.push_str("# HELP idp_http_requests_total HTTP requests by method, route and status.\n# TYPE idp_http_requests_total counter\n");
    for ((method, route), stats) in &routes {
        let mut statuses: Vec<_> = stats.by_status.iter().collect();
        statuses.sort();
        for (status, n) in statuses {
            let _ = writeln!(
                out,
                "idp_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape_label(method),
                escape_label(route)
            );
        }
    }
    out.push_str("# HELP idp_http_request_duration_seconds HTTP request latency by method and route.\n# TYPE idp_http_request_duration_seconds histogram\n");
    for ((method, route), stats) in &routes {
        let labels = format!(
            "method=\"{}\",route=\"{}\"",
            escape_label(method),
            escape_label(route)
        );
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(stats.buckets) {
            cumulative += n;
            let _ = writeln!(
                out,
                "idp_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "idp_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
            stats.count
        );
        let _ = writeln!(
            out,
            "idp_http_request_duration_seconds_sum{{{labels}}} {}",
            stats.sum_seconds
        );
        let _ = writeln!(
            out,
            "idp_http_request_duration_seconds_count{{{labels}}} {}",
            stats.count
        );
    }
    let _ = writeln!(
        out,
        "# HELP idp_catalog_entities Entities in the catalog.\n# TYPE idp_catalog_entities gauge\nidp_catalog_entities {}",
        state.view().snapshot.len()
    );
    let _ = writeln!(
        out,
        "# HELP idp_uptime_seconds Seconds since the server started.\n# TYPE idp_uptime_seconds gauge\nidp_uptime_seconds {}",
        state.started.elapsed().as_secs_f64()
    );
    if let Some(audit) = state.last_audit() {
        render_audit(&mut out, &audit);
    }
    render_syncs(&mut out, &state.syncs());
    out
}

/// The `idp_policy_sync_*` metrics of `policy.kyvernoSync` and `policy.gatekeeperSync`.
fn render_syncs(out: &mut String, syncs: &[crate::server::state::SyncOutcome]) {
    if syncs.is_empty() {
        return;
    }
    out.push_str("# HELP idp_policy_sync_runs_total Rebuilds of a synced policy set since the start, by engine and result.\n# TYPE idp_policy_sync_runs_total counter\n");
    for s in syncs {
        let engine = escape_label(&s.engine);
        let _ = writeln!(
            out,
            "idp_policy_sync_runs_total{{engine=\"{engine}\",result=\"ok\"}} {}\nidp_policy_sync_runs_total{{engine=\"{engine}\",result=\"failed\"}} {}",
            s.runs - s.failures,
            s.failures
        );
    }
    out.push_str("# HELP idp_policy_sync_last_success_timestamp_seconds When a rebuild of the set last took effect (Unix time).\n# TYPE idp_policy_sync_last_success_timestamp_seconds gauge\n");
    for s in syncs {
        if let Some(at) = s.last_success {
            let _ = writeln!(
                out,
                "idp_policy_sync_last_success_timestamp_seconds{{engine=\"{}\"}} {}",
                escape_label(&s.engine),
                at.as_millisecond() as f64 / 1000.0
            );
        }
    }
    out.push_str("# HELP idp_policy_sync_left_out Policies kept in the cluster that the last rebuild left out because they do not load.\n# TYPE idp_policy_sync_left_out gauge\n");
    for s in syncs {
        let _ = writeln!(
            out,
            "idp_policy_sync_left_out{{engine=\"{}\"}} {}",
            escape_label(&s.engine),
            s.left_out.len()
        );
    }
}

/// The `idp_policy_audit_*` metrics of the last periodic audit (`policy.audit`).
fn render_audit(out: &mut String, audit: &crate::server::state::AuditOutcome) {
    let finished = audit
        .finished
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    let r = &audit.report;
    let _ = writeln!(
        out,
        "# HELP idp_policy_audit_runs_total Audits of the cluster finished since the start.\n# TYPE idp_policy_audit_runs_total counter\nidp_policy_audit_runs_total {}",
        audit.runs
    );
    let _ = writeln!(
        out,
        "# HELP idp_policy_audit_last_run_timestamp_seconds When the last audit finished (Unix time).\n# TYPE idp_policy_audit_last_run_timestamp_seconds gauge\nidp_policy_audit_last_run_timestamp_seconds {finished}"
    );
    let _ = writeln!(
        out,
        "# HELP idp_policy_audit_duration_seconds How long the last audit took.\n# TYPE idp_policy_audit_duration_seconds gauge\nidp_policy_audit_duration_seconds {}",
        audit.duration.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "# HELP idp_policy_audit_objects Objects the last audit checked, by verdict.\n# TYPE idp_policy_audit_objects gauge\nidp_policy_audit_objects{{verdict=\"allowed\"}} {}\nidp_policy_audit_objects{{verdict=\"denied\"}} {}",
        r.allowed, r.denied
    );
    let _ = writeln!(
        out,
        "# HELP idp_policy_audit_unreadable_kinds Kinds the last audit could not read.\n# TYPE idp_policy_audit_unreadable_kinds gauge\nidp_policy_audit_unreadable_kinds {}",
        audit.unreadable_kinds
    );
    out.push_str("# HELP idp_policy_audit_violations Violations the last audit found, by policy, rule and action.\n# TYPE idp_policy_audit_violations gauge\n");
    for rule in &r.rules {
        for (action, n) in [
            ("deny", rule.deny),
            ("warn", rule.warn),
            ("audit", rule.audit),
        ] {
            if n > 0 {
                let _ = writeln!(
                    out,
                    "idp_policy_audit_violations{{policy=\"{}\",rule=\"{}\",action=\"{action}\"}} {n}",
                    escape_label(&rule.policy),
                    escape_label(&rule.rule)
                );
            }
        }
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        render_metrics(&state),
    )
}

/// `(method, path, summary, request body schema name)` for every API route; the
/// OpenAPI document is built from this table, and a test checks that each route answers.
pub const ROUTES: &[(&str, &str, &str, Option<&str>)] = &[
    (
        "get",
        "/api/catalog/entities",
        "List entities (filter, fields, offset, limit, after, order); a JSON array",
        None,
    ),
    (
        "get",
        "/api/catalog/entities/by-name/{kind}/{namespace}/{name}",
        "One entity by kind, namespace and name",
        None,
    ),
    (
        "get",
        "/api/catalog/entities/by-uid/{uid}",
        "One entity by metadata.uid",
        None,
    ),
    (
        "delete",
        "/api/catalog/entities/by-uid/{uid}",
        "Remove an entity (its provider adds it back on refresh if its source still has it)",
        None,
    ),
    (
        "post",
        "/api/catalog/entities/by-refs",
        "Entities by reference, null for unknown ones",
        Some("ByRefsRequest"),
    ),
    (
        "get",
        "/api/catalog/entities/by-query",
        "Cursor-paged query: items, totalItems, pageInfo",
        None,
    ),
    (
        "get",
        "/api/catalog/entity-facets",
        "Value counts of fields (facet=kind&facet=spec.type)",
        None,
    ),
    (
        "post",
        "/api/catalog/locations",
        "Register a location (file:// URL or path); dryRun=true reads without storing",
        Some("LocationRequest"),
    ),
    (
        "get",
        "/api/catalog/locations",
        "Registered locations",
        None,
    ),
    (
        "get",
        "/api/catalog/locations/{id}",
        "One registered location",
        None,
    ),
    (
        "delete",
        "/api/catalog/locations/{id}",
        "Unregister a location and remove its entities",
        None,
    ),
    (
        "post",
        "/api/catalog/refresh",
        "Re-read every catalog provider now",
        Some("RefreshRequest"),
    ),
    (
        "post",
        "/api/catalog/validate-entity",
        "Validate an entity as the catalog would on ingest (200, or 400 with every problem)",
        Some("ValidateEntityRequest"),
    ),
    (
        "get",
        "/api/search/query",
        "Ranked full-text search (term=)",
        None,
    ),
    (
        "post",
        "/api/policy/check",
        "Check Kubernetes manifests (YAML or JSON body) against Pod Security Standards and guardrails (format=policy-report: wgpolicyk8s.io PolicyReports)",
        None,
    ),
    (
        "get",
        "/api/policy/audit",
        "Check what already runs in the cluster with the server's policies, as stored (kind=Kind.group, namespace=, excludeNamespace=, skipControlled=, pss=, guardrails=)",
        None,
    ),
    (
        "get",
        "/api/policy/sync",
        "How the rebuilds of the synced policy sets went, per engine (kyverno, gatekeeper, gatekeeper-mutation): when, what is in place, the cluster's policies left out and why, the last error",
        None,
    ),
    (
        "post",
        "/api/deployments",
        "Deploy a component to an environment: render, mutate, policy check, GitOps commit (201; 403 with violations when denied)",
        Some("DeploymentRequest"),
    ),
    (
        "get",
        "/api/deployments",
        "Deployment history, newest first, with sync and health from the cluster (component=, env=, limit=)",
        None,
    ),
    (
        "get",
        "/api/deployments/{id}",
        "One deployment by release id or commit",
        None,
    ),
    (
        "post",
        "/api/deployments/{id}/rollback",
        "Restore the release before {id} (or `to`) as a new commit",
        Some("RollbackRequest"),
    ),
    (
        "post",
        "/api/promotions",
        "Copy a component's current release from one environment to another",
        Some("PromotionRequest"),
    ),
    (
        "get",
        "/api/dora",
        "DORA metrics from the GitOps history (component=, env=, days=)",
        None,
    ),
    (
        "get",
        "/api/cost",
        "Estimated monthly cost of what is deployed (component=, env=)",
        None,
    ),
    (
        "get",
        "/api/environments",
        "The environments and their reconcilers",
        None,
    ),
    (
        "get",
        "/api/scaffolder/v2/templates/{namespace}/{kind}/{name}/parameter-schema",
        "A template's title, description and parameter pages (JSON Schemas)",
        None,
    ),
    (
        "get",
        "/api/scaffolder/v2/actions",
        "The scaffolder's actions with their input and output schemas",
        None,
    ),
    (
        "post",
        "/api/scaffolder/v2/tasks",
        "Run a template in the background (201 {id}); values are validated against its schema",
        Some("TaskRequest"),
    ),
    (
        "get",
        "/api/scaffolder/v2/tasks",
        "Scaffolder tasks, newest first",
        None,
    ),
    (
        "get",
        "/api/scaffolder/v2/tasks/{id}",
        "One task: spec, status (open, processing, completed, failed), output",
        None,
    ),
    (
        "post",
        "/api/scaffolder/v2/tasks/{id}/cancel",
        "Cancel a running task (409 when it has finished)",
        None,
    ),
    (
        "get",
        "/api/scaffolder/v2/tasks/{id}/events",
        "The task's step log events after the `after` cursor",
        None,
    ),
    (
        "get",
        "/api/scaffolder/v2/tasks/{id}/eventstream",
        "The task's events as Server-Sent Events, until it completes",
        None,
    ),
    (
        "get",
        "/api/previews",
        "Preview environments with status, URL and expiry",
        None,
    ),
    (
        "post",
        "/webhooks/github",
        "GitHub pull_request deliveries (X-Hub-Signature-256 verified first)",
        None,
    ),
    (
        "post",
        "/webhooks/gitlab",
        "GitLab merge request deliveries (X-Gitlab-Token verified first)",
        None,
    ),
    (
        "post",
        "/admission/validate",
        "Validating admission webhook (admission.k8s.io/v1 AdmissionReview)",
        Some("AdmissionReview"),
    ),
    (
        "post",
        "/admission/mutate",
        "Mutating admission webhook; the answer carries a base64 JSONPatch",
        Some("AdmissionReview"),
    ),
    ("get", "/healthz", "Liveness", None),
    (
        "get",
        "/readyz",
        "Readiness (the catalog has been loaded)",
        None,
    ),
    ("get", "/metrics", "Prometheus metrics", None),
    ("get", "/api/openapi.json", "This document", None),
];

/// The OpenAPI 3.1 document.
pub fn openapi_document() -> Value {
    let mut schemas = serde_json::Map::new();
    let mut add = |name: &str, schema: schemars::Schema| {
        schemas.insert(name.to_owned(), schema.to_value());
    };
    add(
        "Error",
        schemars::schema_for!(crate::server::error::ErrorBody),
    );
    add(
        "ByRefsRequest",
        schemars::schema_for!(crate::server::routes::catalog::ByRefsRequest),
    );
    add(
        "LocationRequest",
        schemars::schema_for!(crate::server::routes::catalog::LocationRequest),
    );
    add(
        "RefreshRequest",
        schemars::schema_for!(crate::server::routes::catalog::RefreshRequest),
    );
    add(
        "ValidateEntityRequest",
        schemars::schema_for!(crate::server::routes::catalog::ValidateEntityRequest),
    );
    add(
        "PolicyCheckResult",
        schemars::schema_for!(Vec<crate::server::routes::policy::CheckRow>),
    );
    add(
        "AuditReport",
        schemars::schema_for!(idp_policy::audit::AuditReport),
    );
    add(
        "TaskRequest",
        schemars::schema_for!(crate::server::routes::scaffolder::TaskRequest),
    );
    add(
        "TaskCreated",
        schemars::schema_for!(crate::server::routes::scaffolder::TaskCreated),
    );
    add(
        "Task",
        schemars::schema_for!(crate::server::scaffolder::TaskView),
    );
    add(
        "TaskEvents",
        schemars::schema_for!(Vec<crate::server::scaffolder::TaskEvent>),
    );
    add(
        "PreviewList",
        schemars::schema_for!(crate::server::routes::previews::PreviewList),
    );
    add(
        "WebhookOutcome",
        schemars::schema_for!(crate::server::previews::WebhookOutcome),
    );
    crate::server::routes::deliver::schemas(&mut add);
    schemas.insert(
        "AdmissionReview".to_owned(),
        json!({"type": "object", "description": "admission.k8s.io/v1 AdmissionReview", "required": ["apiVersion", "kind"], "properties": {"apiVersion": {"const": "admission.k8s.io/v1"}, "kind": {"const": "AdmissionReview"}, "request": {"type": "object"}, "response": {"type": "object"}}}),
    );
    let mut paths = serde_json::Map::new();
    for (method, path, summary, body) in ROUTES {
        let params: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        let mut op = json!({
            "summary": summary,
            "parameters": params,
            "responses": {
                "200": {"description": "Success"},
                "default": {"description": "Error", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
            }
        });
        if let Some(body) = body {
            op["requestBody"] = json!({
                "required": *body != "RefreshRequest",
                "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{body}")}}}
            });
        }
        if *path == "/api/policy/check" {
            op["requestBody"] = json!({"required": true, "content": {
                "application/yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": {}}
            }});
            op["responses"]["200"] = json!({"description": "One row per object", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PolicyCheckResult"}}}});
        }
        let answer = match *path {
            "/api/scaffolder/v2/tasks" if *method == "post" => Some(("201", "TaskCreated")),
            "/api/scaffolder/v2/tasks/{id}" => Some(("200", "Task")),
            "/api/scaffolder/v2/tasks/{id}/events" => Some(("200", "TaskEvents")),
            "/api/previews" => Some(("200", "PreviewList")),
            "/webhooks/github" | "/webhooks/gitlab" => Some(("200", "WebhookOutcome")),
            "/admission/validate" | "/admission/mutate" => Some(("200", "AdmissionReview")),
            "/api/policy/audit" => Some(("200", "AuditReport")),
            _ => None,
        };
        if let Some((code, schema)) = answer {
            op["responses"][code] = json!({"description": "Success", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}});
        }
        crate::server::routes::deliver::document(method, path, &mut op);
        let entry = paths.entry((*path).to_owned()).or_insert_with(|| json!({}));
        entry[*method] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "idp-server",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "idp's example platform server. The /api/catalog routes follow Backstage's catalog REST API."
        },
        "paths": paths,
        "components": {"schemas": schemas},
    })
}

async fn openapi() -> Json<Value> {
    Json(openapi_document())
}
