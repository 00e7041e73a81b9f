//! Portal pages for delivery, plain HTML that works without JavaScript:
//!
//! - `/deployments`: the environments (reconciler status) and what runs in each;
//! - `/deployments/{namespace}/{name}/{env}`: one component's history in one
//!   environment, with a rollback button per earlier release (a form POST to
//!   `/deployments/{namespace}/{name}/{env}/rollback`, answered with a redirect back);
//! - `/dora`: the DORA dashboard with inline-SVG charts (deployments per day, lead time);
//! - [`entity_section`]: deployments per environment with health and cost, on the entity
//!   page.
//!
//! Every value goes through [`esc`].

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use idp_core::EntityRef;

use crate::server::deliver::{DeploymentView, DoraDay, DoraSummary};
use crate::server::portal::{entity_url, esc, page, pct};
use crate::server::routes::deliver::{delivery, teams};
use crate::server::state::AppState;

/// The delivery pages.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/deployments", get(overview))
        .route("/deployments/{namespace}/{name}/{env}", get(history))
        .route(
            "/deployments/{namespace}/{name}/{env}/rollback",
            post(rollback),
        )
        .route("/dora", get(dora_page))
}

/// The history page of a component in an environment.
pub fn history_url(component: &str, env: &str) -> String {
    let r = EntityRef::parse_with_defaults(component, Some("Component"), "default").ok();
    let (ns, name) = r
        .as_ref()
        .map_or(("default", component), |r| (r.namespace(), r.name()));
    format!("/deployments/{}/{}/{}", pct(ns), pct(name), pct(env))
}

fn message_page(state: &AppState, status: StatusCode, title: &str, text: &str) -> Response {
    let body = format!(
        "<h1>{}</h1><p>{}</p><p><a href=\"/deployments\">Deployments</a></p>",
        esc(title),
        esc(text)
    );
    (status, page(state, title, &body)).into_response()
}

fn health_badge(d: &DeploymentView) -> String {
    let health = d.health.as_deref().unwrap_or("-");
    let color = match health {
        "Healthy" => "#c8efd4",
        "Progressing" | "Suspended" => "#ffe08a",
        "Degraded" | "Missing" => "#f7c1c1",
        _ => "#e8eaef",
    };
    let title = d.health_message.as_deref().unwrap_or("");
    format!(
        "<span class=\"badge\" style=\"background:{color}\" title=\"{}\">{}</span> <span class=\"muted\">{}</span>",
        esc(title),
        esc(health),
        esc(&d.sync)
    )
}

fn cost_text(d: &DeploymentView) -> String {
    d.cost.as_ref().map_or_else(
        || "-".to_owned(),
        |c| format!("{:.2} {}/month", c.monthly, c.currency),
    )
}

/// The deployments section of a component's entity page.
pub async fn entity_section(state: &AppState, entity: &EntityRef) -> String {
    if !entity.kind().eq_ignore_ascii_case("component") {
        return String::new();
    }
    let Ok(d) = delivery(state) else {
        return "<section><h2>Deployments</h2><p class=\"muted\">Deployments: not configured.</p></section>".to_owned();
    };
    let mut body = String::from(
        "<section><h2>Deployments</h2><table><thead><tr><th>Environment</th><th>Version</th><th>Health</th><th>Cost</th><th>Deployed</th><th></th></tr></thead><tbody>",
    );
    let mut total = 0.0;
    let mut currency = String::new();
    for env in d.environments() {
        let current = d
            .history(Some(entity), Some(env.name.as_str()), 1)
            .await
            .ok()
            .and_then(|mut v| v.pop());
        let link = history_url(&entity.to_string(), env.name.as_str());
        match current {
            Some(c) => {
                if let Some(cost) = &c.cost {
                    total += cost.monthly;
                    currency.clone_from(&cost.currency);
                }
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td><a href=\"{}\">history</a></td></tr>",
                    esc(env.name.as_str()),
                    esc(c.version.as_deref().unwrap_or("-")),
                    health_badge(&c),
                    esc(&cost_text(&c)),
                    esc(&c.created_at),
                    esc(&link)
                );
            }
            None => {
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td class=\"muted\" colspan=\"4\">not deployed</td><td></td></tr>",
                    esc(env.name.as_str())
                );
            }
        }
    }
    body.push_str("</tbody></table>");
    if !currency.is_empty() {
        let _ = write!(
            body,
            "<p>Estimated cost across environments: <strong>{total:.2} {}</strong> per month.</p>",
            esc(&currency)
        );
    }
    let _ = write!(
        body,
        "<p class=\"muted\"><a href=\"/dora?component={}\">DORA metrics of this component</a></p></section>",
        esc(&pct(&entity.to_string()))
    );
    body
}

async fn overview(State(state): State<Arc<AppState>>) -> Response {
    let d = match delivery(&state) {
        Ok(d) => d.clone(),
        Err(e) => {
            return message_page(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                "Deployments",
                &e.message,
            );
        }
    };
    let mut body = format!(
        "<h1>Deployments</h1><p class=\"muted\">GitOps repository: <code>{}</code>. {}</p>",
        esc(&d.gitops_label),
        if d.is_leader() {
            "This replica holds the reconciler Lease and applies."
        } else {
            "Another replica holds the reconciler Lease; this one only reads."
        }
    );
    body.push_str("<section><h2>Environments</h2><table><thead><tr><th>Environment</th><th>Namespace</th><th>Sync</th><th>Health</th><th>Revision</th><th>Reconciled</th></tr></thead><tbody>");
    for env in d.environments() {
        let s = d.reconcile_status(env.name.as_str()).unwrap_or_default();
        let stalled = s
            .stalled
            .as_ref()
            .map(|r| format!(" <span class=\"muted\">({})</span>", esc(&format!("{r:?}"))))
            .unwrap_or_default();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{:?}{stalled}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            esc(env.name.as_str()),
            esc(&env.namespace),
            s.sync,
            esc(s.health.as_str()),
            esc(s
                .revision
                .as_deref()
                .map_or("-", |r| r.get(..10).unwrap_or(r))),
            esc(&s.reconciled_at.map(|t| t.to_string()).unwrap_or_default())
        );
    }
    body.push_str("</tbody></table></section>");
    let rows = d.current().await.unwrap_or_default();
    body.push_str("<section><h2>Running now</h2>");
    let current: Vec<&DeploymentView> = rows.iter().collect();
    if current.is_empty() {
        body.push_str(
            "<p class=\"muted\">Nothing deployed yet: <code>POST /api/deployments</code>.</p>",
        );
    } else {
        body.push_str("<table><thead><tr><th>Component</th><th>Environment</th><th>Version</th><th>Health</th><th>Cost</th><th>Deployed</th></tr></thead><tbody>");
        for c in current {
            let component = c.component.parse::<EntityRef>().ok();
            let name = component
                .as_ref()
                .map_or(c.component.as_str(), |r| r.name());
            let _ = write!(
                body,
                "<tr><td>{}</td><td><a href=\"{}\">{}</a></td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                component.as_ref().map_or_else(
                    || esc(name),
                    |r| format!("<a href=\"{}\">{}</a>", esc(&entity_url(r)), esc(name))
                ),
                esc(&history_url(&c.component, &c.environment)),
                esc(&c.environment),
                esc(c.version.as_deref().unwrap_or("-")),
                health_badge(c),
                esc(&cost_text(c)),
                esc(&c.created_at)
            );
        }
        body.push_str("</tbody></table>");
    }
    body.push_str("</section><p><a href=\"/dora\">DORA dashboard</a></p>");
    page(&state, "Deployments", &body).into_response()
}

async fn history(
    State(state): State<Arc<AppState>>,
    Path((namespace, name, env)): Path<(String, String, String)>,
) -> Response {
    let d = match delivery(&state) {
        Ok(d) => d.clone(),
        Err(e) => {
            return message_page(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                "Deployments",
                &e.message,
            );
        }
    };
    let Ok(component) = EntityRef::new("Component", &namespace, &name) else {
        return message_page(
            &state,
            StatusCode::BAD_REQUEST,
            "Not a component",
            &format!("{namespace}/{name} is not a component reference"),
        );
    };
    if d.environment(&env).is_none() {
        return message_page(
            &state,
            StatusCode::NOT_FOUND,
            "Unknown environment",
            &format!("no environment called {env}"),
        );
    }
    let rows = match d.history(Some(&component), Some(&env), 100).await {
        Ok(rows) => rows,
        Err(e) => {
            return message_page(
                &state,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Deployments",
                &e.report(),
            );
        }
    };
    let mut body = format!(
        "<p class=\"muted\"><a href=\"/deployments\">Deployments</a> / {}</p><h1>{} in {}</h1>",
        esc(&component.to_string()),
        esc(&name),
        esc(&env)
    );
    let _ = write!(
        body,
        "<p>Environment: {} ",
        d.environments()
            .iter()
            .map(|e| {
                if e.name.as_str() == env {
                    format!("<strong>{}</strong>", esc(e.name.as_str()))
                } else {
                    format!(
                        "<a href=\"{}\">{}</a>",
                        esc(&history_url(&component.to_string(), e.name.as_str())),
                        esc(e.name.as_str())
                    )
                }
            })
            .collect::<Vec<_>>()
            .join(" · ")
    );
    let _ = write!(
        body,
        "· <a href=\"{}\">catalog entry</a></p>",
        esc(&entity_url(&component))
    );
    if rows.is_empty() {
        body.push_str("<p class=\"muted\">No deployment yet.</p>");
        return page(&state, &name, &body).into_response();
    }
    body.push_str("<table><thead><tr><th>Release</th><th>Status</th><th>Version</th><th>Health</th><th>Cost</th><th>When</th><th>Who</th><th>Note</th><th></th></tr></thead><tbody>");
    let action = format!(
        "/deployments/{}/{}/{}/rollback",
        pct(&namespace),
        pct(&name),
        pct(&env)
    );
    for r in &rows {
        let note = match (&r.rollback_to, &r.promoted_from) {
            (Some(to), _) => format!("rollback to {to}"),
            (None, Some(from)) => format!("promoted from {from}"),
            _ => r.source_revision.clone().unwrap_or_default(),
        };
        let button = if r.status == "current" {
            String::new()
        } else {
            format!(
                "<form method=\"post\" action=\"{}\"><input type=\"hidden\" name=\"to\" value=\"{}\"><button title=\"Commit this release's content again\">Roll back to this</button></form>",
                esc(&action),
                esc(&r.id)
            )
        };
        let _ = write!(
            body,
            "<tr><td><code>{}</code><br><span class=\"muted\">{}</span></td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{button}</td></tr>",
            esc(&r.id),
            esc(r.commit.get(..10).unwrap_or(&r.commit)),
            esc(&r.status),
            esc(r.version.as_deref().unwrap_or("-")),
            if r.status == "current" {
                health_badge(r)
            } else {
                String::new()
            },
            esc(&cost_text(r)),
            esc(&r.created_at),
            esc(r.author.as_deref().unwrap_or("-")),
            esc(&note)
        );
    }
    body.push_str("</tbody></table>");
    page(&state, &name, &body).into_response()
}

async fn rollback(
    State(state): State<Arc<AppState>>,
    Path((namespace, name, env)): Path<(String, String, String)>,
    body: Bytes,
) -> Response {
    let d = match delivery(&state) {
        Ok(d) => d.clone(),
        Err(e) => {
            return message_page(
                &state,
                StatusCode::SERVICE_UNAVAILABLE,
                "Deployments",
                &e.message,
            );
        }
    };
    let fields = crate::server::portal_create::parse_form(&body);
    let Some(to) = fields
        .iter()
        .find(|(k, _)| k == "to")
        .map(|(_, v)| v.clone())
        .filter(|v| !v.is_empty())
    else {
        return message_page(
            &state,
            StatusCode::BAD_REQUEST,
            "Rollback",
            "to: missing; the form names the release to restore",
        );
    };
    let back = format!(
        "/deployments/{}/{}/{}",
        pct(&namespace),
        pct(&name),
        pct(&env)
    );
    match d.rollback(&to, Some(&to), Some("portal")).await {
        Ok(_) => (StatusCode::SEE_OTHER, [(header::LOCATION, back)]).into_response(),
        Err(e) => {
            let report = e.report();
            let status = crate::server::error::ApiError::from(e).status;
            message_page(&state, status, "Rollback failed", &report)
        }
    }
}

/// An inline-SVG bar chart of `values` (one bar per day), labelled with `unit`.
fn bar_chart(title: &str, days: &[DoraDay], values: &[f64], unit: &str) -> String {
    let width = 720.0_f64;
    let height = 160.0_f64;
    let top = 20.0;
    let bottom = 24.0;
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    let n = values.len().max(1);
    #[allow(clippy::cast_precision_loss)] // at most 366 bars
    let step = width / n as f64;
    let mut svg = format!(
        "<figure><figcaption>{}</figcaption><svg role=\"img\" aria-label=\"{}\" viewBox=\"0 0 {width} {height}\" width=\"100%\" style=\"max-width:{width}px;background:#fff;border:1px solid #e3e5ea\">",
        esc(title),
        esc(title)
    );
    for (i, v) in values.iter().enumerate() {
        let h = if max > 0.0 {
            (height - top - bottom) * v / max
        } else {
            0.0
        };
        #[allow(clippy::cast_precision_loss)]
        let x = i as f64 * step + 1.0;
        let y = height - bottom - h;
        let label = days.get(i).map_or("", |d| d.date.as_str());
        let _ = write!(
            svg,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"#2451b7\"><title>{}: {v:.1} {}</title></rect>",
            (step - 2.0).max(1.0),
            esc(label),
            esc(unit)
        );
    }
    let first = days.first().map_or("", |d| d.date.as_str());
    let last = days.last().map_or("", |d| d.date.as_str());
    let _ = write!(
        svg,
        "<text x=\"2\" y=\"{:.0}\" font-size=\"11\" fill=\"#5b6272\">{}</text><text x=\"{:.0}\" y=\"{:.0}\" font-size=\"11\" text-anchor=\"end\" fill=\"#5b6272\">{}</text><text x=\"2\" y=\"13\" font-size=\"11\" fill=\"#5b6272\">max {max:.1} {}</text></svg></figure>",
        height - 6.0,
        esc(first),
        width - 2.0,
        height - 6.0,
        esc(last),
        esc(unit)
    );
    svg
}

fn hours(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "-".to_owned(), |s| format!("{:.1} h", s / 3600.0))
}

fn summary_row(scope: &str, m: &DoraSummary) -> String {
    let level = |k: &str| {
        m.levels
            .get(k)
            .and_then(Clone::clone)
            .unwrap_or_else(|| "-".to_owned())
    };
    format!(
        "<tr><td>{}</td><td>{}</td><td>{:.2}</td><td>{} <span class=\"muted\">{}</span></td><td>{} <span class=\"muted\">{}</span></td><td>{} <span class=\"muted\">{}</span></td></tr>",
        esc(scope),
        m.deployments,
        m.deployments_per_day,
        esc(&hours(m.median_lead_time_seconds)),
        esc(&level("leadTime")),
        m.change_failure_rate
            .map_or_else(|| "-".to_owned(), |r| format!("{:.0}%", r * 100.0)),
        esc(&level("changeFailureRate")),
        esc(&hours(m.median_time_to_restore_seconds)),
        esc(&level("timeToRestore"))
    )
}

async fn dora_page(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Response {
    let d = match delivery(&state) {
        Ok(d) => d.clone(),
        Err(e) => {
            return message_page(&state, StatusCode::SERVICE_UNAVAILABLE, "DORA", &e.message);
        }
    };
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let env = get("env").filter(|e| d.environment(e).is_some());
    let days = get("days")
        .and_then(|v| v.parse::<u32>().ok())
        .filter(|n| (1..=365).contains(n))
        .unwrap_or(30);
    let component = get("component")
        .and_then(|c| EntityRef::parse_with_defaults(&c, Some("Component"), "default").ok());
    let view = match d
        .dora(component.as_ref(), env.as_deref(), days, &teams(&state))
        .await
    {
        Ok(v) => v,
        Err(e) => {
            return message_page(
                &state,
                StatusCode::INTERNAL_SERVER_ERROR,
                "DORA",
                &e.report(),
            );
        }
    };
    let mut body = String::from("<h1>DORA metrics</h1><form method=\"get\" action=\"/dora\">");
    if let Some(c) = &component {
        let _ = write!(
            body,
            "<input type=\"hidden\" name=\"component\" value=\"{}\">Component <strong>{}</strong> · ",
            esc(&c.to_string()),
            esc(&c.to_string())
        );
    }
    body.push_str("Environment <select name=\"env\"><option value=\"\">all</option>");
    for e in d.environments() {
        let selected = if env.as_deref() == Some(e.name.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(body, "<option{selected}>{}</option>", esc(e.name.as_str()));
    }
    let _ = write!(
        body,
        "</select> Days <input name=\"days\" size=\"4\" value=\"{days}\"> <button>Show</button></form>"
    );
    body.push_str("<section><table><thead><tr><th>Scope</th><th>Deployments</th><th>Per day</th><th>Lead time</th><th>Change failure rate</th><th>Time to restore</th></tr></thead><tbody>");
    body.push_str(&summary_row("all", &view.overall));
    for (env, m) in &view.by_environment {
        body.push_str(&summary_row(&format!("environment {env}"), m));
    }
    for (team, m) in &view.by_team {
        body.push_str(&summary_row(&format!("team {team}"), m));
    }
    body.push_str("</tbody></table><p class=\"muted\">Levels follow the 2023 Accelerate State of DevOps report. A rolled-back release counts as a failed change; it is restored by the next release.</p></section>");
    #[allow(clippy::cast_precision_loss)] // small counts
    let per_day: Vec<f64> = view.daily.iter().map(|d| d.deployments as f64).collect();
    let lead: Vec<f64> = view
        .daily
        .iter()
        .map(|d| d.median_lead_time_seconds.unwrap_or(0.0) / 3600.0)
        .collect();
    body.push_str("<section>");
    body.push_str(&bar_chart(
        "Deployments per day",
        &view.daily,
        &per_day,
        "deployments",
    ));
    body.push_str(&bar_chart(
        "Median lead time for changes per day",
        &view.daily,
        &lead,
        "hours",
    ));
    body.push_str("</section>");
    page(&state, "DORA", &body).into_response()
}
