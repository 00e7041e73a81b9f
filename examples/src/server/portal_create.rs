//! Portal pages of the creation area, plain HTML without JavaScript: `/create` lists the
//! templates, `/create/{namespace}/{name}` is a form generated from the template's
//! parameter JSON Schema (POSTed as a classic form; invalid input shows the form again
//! with a message per field), `/tasks/{id}` shows a task's step logs (refreshing itself
//! while it runs), and `/previews` the preview environments.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use idp_catalog::scaffolder::Template;
use idp_core::EntityRef;
use serde_json::{Map, Value};

use crate::server::create::area;
use crate::server::portal::{entity_url, esc, page, pct, str_at};
use crate::server::scaffolder::{SubmitError, TaskPhase};
use crate::server::state::AppState;

/// The creation pages.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/create", get(templates))
        .route("/create/{namespace}/{name}", get(form).post(submit))
        .route("/tasks/{id}", get(task_page))
        .route("/tasks/{id}/cancel", axum::routing::post(cancel_task))
        .route("/previews", get(previews_page))
}

fn unavailable(state: &AppState, what: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        page(
            state,
            what,
            "<h1>Not available</h1><p class=\"muted\">The scaffolder, previews and admission are not wired in this server.</p>",
        ),
    )
        .into_response()
}

async fn templates(State(state): State<Arc<AppState>>) -> Response {
    let view = state.view();
    let mut list: Vec<_> = view
        .snapshot
        .entities()
        .filter(|e| e.kind().eq_ignore_ascii_case("template"))
        .collect();
    list.sort_by(|a, b| a.name().cmp(b.name()));
    let mut body = String::from(
        "<h1>Create something new</h1><p class=\"muted\">Golden paths: each template creates a repository or resource and registers it in the catalog.</p>",
    );
    if list.is_empty() {
        body.push_str("<p class=\"muted\">No templates in the catalog.</p>");
    }
    for t in &list {
        let v = t.to_value();
        let title = str_at(&v, &["metadata", "title"]);
        let _ = write!(
            body,
            "<section><h2><a href=\"/create/{}/{}\">{}</a></h2><p>{}</p><p class=\"muted\">{} · owner {}</p></section>",
            esc(&pct(t.namespace())),
            esc(&pct(t.name())),
            esc(if title.is_empty() { t.name() } else { title }),
            esc(str_at(&v, &["metadata", "description"])),
            esc(str_at(&v, &["spec", "type"])),
            esc(str_at(&v, &["spec", "owner"])),
        );
    }
    page(&state, "Create", &body).into_response()
}

/// Decode an `application/x-www-form-urlencoded` body (every portal form).
pub(crate) fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    fn decode(part: &[u8]) -> String {
        let mut out = Vec::with_capacity(part.len());
        let mut i = 0;
        while i < part.len() {
            match part[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < part.len() => {
                    let hex = std::str::from_utf8(&part[i + 1..i + 3])
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok());
                    if let Some(b) = hex {
                        out.push(b);
                        i += 2;
                    } else {
                        out.push(b'%');
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    body.split(|b| *b == b'&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let mut it = pair.splitn(2, |b| *b == b'=');
            let k = decode(it.next().unwrap_or_default());
            let v = decode(it.next().unwrap_or_default());
            (k, v)
        })
        .collect()
}

fn prop_type(prop: &Value) -> &str {
    match &prop["type"] {
        Value::String(s) => s,
        Value::Array(a) => a
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("string"),
        _ => "string",
    }
}

fn default_text(prop: &Value) -> Option<String> {
    match prop.get("default")? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        v => Some(v.to_string()),
    }
}

/// One input generated from a property's schema.
fn field_html(
    name: &str,
    prop: &Value,
    required: bool,
    submitted: Option<&BTreeMap<String, String>>,
    error: Option<&str>,
) -> String {
    let title = prop.get("title").and_then(Value::as_str).unwrap_or(name);
    let id = format!("f-{}", pct(name));
    let value = match submitted {
        Some(form) => form.get(name).cloned(),
        None => default_text(prop),
    };
    let value_attr = value
        .as_deref()
        .map(|v| format!(" value=\"{}\"", esc(v)))
        .unwrap_or_default();
    let req = if required { " required" } else { "" };
    let star = if required {
        " <span title=\"required\">*</span>"
    } else {
        ""
    };
    let ty = prop_type(prop);
    let secret = prop.get("ui:widget").and_then(Value::as_str) == Some("password")
        || prop.get("ui:field").and_then(Value::as_str) == Some("Secret");
    let input = if let Some(options) = prop.get("enum").and_then(Value::as_array) {
        let names = prop.get("enumNames").and_then(Value::as_array);
        let mut html = format!("<select id=\"{id}\" name=\"{}\"{req}>", esc(name));
        if !required {
            html.push_str("<option value=\"\"></option>");
        }
        for (i, option) in options.iter().enumerate() {
            let raw = match option {
                Value::String(s) => s.clone(),
                v => v.to_string(),
            };
            let label = names
                .and_then(|n| n.get(i))
                .and_then(Value::as_str)
                .map_or_else(|| raw.clone(), str::to_owned);
            let selected = if value.as_deref() == Some(raw.as_str()) {
                " selected"
            } else {
                ""
            };
            let _ = write!(
                html,
                "<option value=\"{}\"{selected}>{}</option>",
                esc(&raw),
                esc(&label)
            );
        }
        html.push_str("</select>");
        html
    } else {
        match ty {
            "boolean" => {
                let on = matches!(value.as_deref(), Some("true" | "on"));
                format!(
                    "<input type=\"hidden\" name=\"{0}\" value=\"false\"><input id=\"{id}\" type=\"checkbox\" name=\"{0}\" value=\"true\"{1}>",
                    esc(name),
                    if on { " checked" } else { "" }
                )
            }
            "integer" | "number" => {
                let mut bounds = String::new();
                for key in ["minimum", "maximum"] {
                    if let Some(n) = prop.get(key).filter(|v| v.is_number()) {
                        let _ = write!(bounds, " {}=\"{n}\"", &key[..3]);
                    }
                }
                let step = if ty == "integer" { "1" } else { "any" };
                format!(
                    "<input id=\"{id}\" type=\"number\" step=\"{step}\" name=\"{}\"{value_attr}{bounds}{req}>",
                    esc(name)
                )
            }
            "array" | "object" => format!(
                "<textarea id=\"{id}\" name=\"{}\" rows=\"3\" cols=\"50\" placeholder=\"JSON\"{req}>{}</textarea>",
                esc(name),
                esc(value.as_deref().unwrap_or_default())
            ),
            _ => format!(
                "<input id=\"{id}\" type=\"{}\" name=\"{}\"{value_attr}{req} size=\"50\">",
                if secret { "password" } else { "text" },
                esc(name)
            ),
        }
    };
    let description = prop
        .get("description")
        .and_then(Value::as_str)
        .map(|d| format!("<br><small class=\"muted\">{}</small>", esc(d)))
        .unwrap_or_default();
    let error = error
        .map(|e| format!("<br><strong class=\"error\">{}</strong>", esc(e)))
        .unwrap_or_default();
    format!(
        "<p><label for=\"{id}\">{}{star}</label><br>{input}{description}{error}</p>",
        esc(title)
    )
}

fn form_html(
    state: &AppState,
    r: &EntityRef,
    schema: &Value,
    submitted: Option<&BTreeMap<String, String>>,
    errors: &BTreeMap<String, String>,
    message: Option<&str>,
) -> String {
    let mut body = format!(
        "<p class=\"muted\"><a href=\"/create\">Create</a> / {}</p><h1>{}</h1><p>{}</p>",
        esc(&r.to_string()),
        esc(schema["title"].as_str().unwrap_or_default()),
        esc(schema["description"].as_str().unwrap_or_default())
    );
    if let Some(message) = message {
        let _ = write!(
            body,
            "<section class=\"errors\"><strong>The form has problems:</strong> {}</section>",
            esc(message)
        );
    }
    let _ = write!(
        body,
        "<form method=\"post\" action=\"/create/{}/{}\">",
        esc(&pct(r.namespace())),
        esc(&pct(r.name()))
    );
    let mut shown = std::collections::BTreeSet::new();
    for step in schema["steps"].as_array().into_iter().flatten() {
        let _ = write!(
            body,
            "<section><h2>{}</h2>",
            esc(step["title"].as_str().unwrap_or_default())
        );
        if let Some(d) = step["description"].as_str() {
            let _ = write!(body, "<p class=\"muted\">{}</p>", esc(d));
        }
        let required: Vec<&str> = step["schema"]["required"]
            .as_array()
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if let Some(props) = step["schema"]["properties"].as_object() {
            for (name, prop) in props {
                shown.insert(name.clone());
                body.push_str(&field_html(
                    name,
                    prop,
                    required.contains(&name.as_str()),
                    submitted,
                    errors.get(name).map(String::as_str),
                ));
            }
        }
        body.push_str("</section>");
    }
    // Problems with fields the form does not show (the whole object, nested paths).
    let other: Vec<String> = errors
        .iter()
        .filter(|(k, _)| !shown.contains(k.as_str()))
        .map(|(k, v)| {
            if k.is_empty() {
                esc(v)
            } else {
                format!("{}: {}", esc(k), esc(v))
            }
        })
        .collect();
    if !other.is_empty() {
        let _ = write!(
            body,
            "<p><strong class=\"error\">{}</strong></p>",
            other.join("<br>")
        );
    }
    body.push_str("<p><button type=\"submit\">Create</button></p></form>");
    let _ = state;
    body
}

#[allow(clippy::result_large_err)] // the error is the page to answer with, built once
fn template_of(
    state: &AppState,
    namespace: &str,
    name: &str,
) -> Result<(EntityRef, Template, Value), Response> {
    let Ok(area) = area(state) else {
        return Err(unavailable(state, "Create"));
    };
    let not_found = |message: String| {
        (
            StatusCode::NOT_FOUND,
            page(
                state,
                "Not found",
                &format!(
                    "<h1>Not found</h1><p>{}</p><p><a href=\"/create\">All templates</a></p>",
                    esc(&message)
                ),
            ),
        )
            .into_response()
    };
    let r = EntityRef::new("template", namespace, name).map_err(|e| not_found(e.report()))?;
    let template = area
        .scaffolding
        .template(state, &r)
        .map_err(|e| not_found(e.message().to_owned()))?;
    let schema = area.scaffolding.parameter_schema(&template);
    Ok((r, template, schema))
}

async fn form(
    State(state): State<Arc<AppState>>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    match template_of(&state, &namespace, &name) {
        Ok((r, _, schema)) => {
            let body = form_html(&state, &r, &schema, None, &BTreeMap::new(), None);
            page(&state, &format!("Create: {name}"), &body).into_response()
        }
        Err(response) => response,
    }
}

/// Turn form strings into JSON values by the schema's property types.
fn form_values(
    schema: &Value,
    form: &BTreeMap<String, String>,
) -> (Map<String, Value>, BTreeMap<String, String>) {
    let mut values = Map::new();
    let mut errors = BTreeMap::new();
    for step in schema["steps"].as_array().into_iter().flatten() {
        let Some(props) = step["schema"]["properties"].as_object() else {
            continue;
        };
        for (name, prop) in props {
            let raw = form.get(name).map(|s| s.trim().to_owned());
            let ty = prop_type(prop);
            if ty == "boolean" {
                if let Some(raw) = raw {
                    values.insert(name.clone(), Value::Bool(raw == "true" || raw == "on"));
                }
                continue;
            }
            let Some(raw) = raw.filter(|r| !r.is_empty()) else {
                continue; // empty: the schema's default, or a "required" message
            };
            let value = match ty {
                "integer" => raw
                    .parse::<i64>()
                    .map(Value::from)
                    .map_err(|_| "must be a whole number".to_owned()),
                "number" => raw
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| "must be a number".to_owned()),
                "array" | "object" => {
                    serde_json::from_str(&raw).map_err(|e| format!("must be JSON ({ty}): {e}"))
                }
                _ => Ok(Value::String(raw)),
            };
            match value {
                Ok(v) => {
                    values.insert(name.clone(), v);
                }
                Err(e) => {
                    errors.insert(name.clone(), e);
                }
            }
        }
    }
    (values, errors)
}

async fn submit(
    State(state): State<Arc<AppState>>,
    Path((namespace, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (r, _template, schema) = match template_of(&state, &namespace, &name) {
        Ok(found) => found,
        Err(response) => return response,
    };
    let Ok(area) = area(&state) else {
        return unavailable(&state, "Create");
    };
    // Later duplicates (a checked checkbox after its hidden "false") win.
    let submitted: BTreeMap<String, String> = parse_form(&body).into_iter().collect();
    let (values, errors) = form_values(&schema, &submitted);
    let shown_again = |status: StatusCode, errors: &BTreeMap<String, String>, message: &str| {
        let body = form_html(&state, &r, &schema, Some(&submitted), errors, Some(message));
        (status, page(&state, &format!("Create: {name}"), &body)).into_response()
    };
    if !errors.is_empty() {
        return shown_again(
            StatusCode::BAD_REQUEST,
            &errors,
            "some values have the wrong type",
        );
    }
    match area.scaffolding.submit(
        &state,
        &r.to_string(),
        &Value::Object(values),
        crate::server::routes::scaffolder::GUEST,
    ) {
        Ok(id) => (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, format!("/tasks/{}", pct(&id)))],
        )
            .into_response(),
        Err(e) => {
            let status = match e {
                SubmitError::NotFound(_) => StatusCode::NOT_FOUND,
                SubmitError::Conflict { .. } => StatusCode::CONFLICT,
                SubmitError::Input { .. } => StatusCode::BAD_REQUEST,
            };
            let errors: BTreeMap<String, String> = e.fields().iter().cloned().collect();
            shown_again(status, &errors, e.message())
        }
    }
}

async fn task_page(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    let Ok(area) = area(&state) else {
        return unavailable(&state, "Task");
    };
    let Some(task) = area.scaffolding.task(&id) else {
        return (
            StatusCode::NOT_FOUND,
            page(
                &state,
                "Not found",
                &format!(
                    "<h1>Not found</h1><p>No task {}. Tasks are kept in memory until the server restarts.</p>",
                    esc(&id)
                ),
            ),
        )
            .into_response();
    };
    let view = task.view();
    let (events, done) = task.events_after(0);
    let template = view.spec["templateInfo"]["entityRef"]
        .as_str()
        .unwrap_or_default();
    let mut body = format!(
        "<p class=\"muted\"><a href=\"/create\">Create</a> / task</p><h1>Task {}</h1><dl><dt>Template</dt><dd>{}</dd><dt>Status</dt><dd><span class=\"badge\">{}</span></dd><dt>Created</dt><dd>{} by {}</dd></dl>",
        esc(&view.id),
        esc(template),
        esc(view.status.as_str()),
        esc(&view.created_at),
        esc(&view.created_by)
    );
    if !done {
        let _ = write!(
            body,
            "<form method=\"post\" action=\"/tasks/{}/cancel\"><button type=\"submit\">Cancel</button></form>",
            esc(&pct(&view.id))
        );
    }
    if let Some(error) = &view.error {
        let _ = write!(
            body,
            "<section class=\"errors\"><strong>Failed:</strong> {}</section>",
            esc(error)
        );
    }
    if view.status == TaskPhase::Completed {
        body.push_str("<section><h2>Output</h2><ul>");
        for link in view.output["links"].as_array().into_iter().flatten() {
            let title = link["title"].as_str().unwrap_or("link");
            if let Some(r) = link["entityRef"]
                .as_str()
                .and_then(|r| r.parse::<EntityRef>().ok())
            {
                let _ = write!(
                    body,
                    "<li>{}: <a href=\"{}\">{}</a></li>",
                    esc(title),
                    esc(&entity_url(&r)),
                    esc(&r.to_string())
                );
            } else if let Some(url) = link["url"].as_str() {
                let target = if url.starts_with("https://") || url.starts_with("http://") {
                    format!("<a href=\"{0}\" rel=\"noopener\">{0}</a>", esc(url))
                } else {
                    format!("<code>{}</code>", esc(url))
                };
                let _ = write!(body, "<li>{}: {target}</li>", esc(title));
            }
        }
        body.push_str("</ul>");
        for text in view.output["text"].as_array().into_iter().flatten() {
            let _ = write!(
                body,
                "<h3>{}</h3><pre>{}</pre>",
                esc(text["title"].as_str().unwrap_or("Text")),
                esc(text["content"].as_str().unwrap_or_default())
            );
        }
        body.push_str("</section>");
    }
    body.push_str("<section><h2>Steps</h2>");
    let mut current: Option<String> = None;
    let mut open = false;
    for event in &events {
        let step = event.body.step_id.clone();
        if step != current || !open {
            if open {
                body.push_str("</pre>");
            }
            let heading = step.as_deref().unwrap_or("task");
            let status = event
                .body
                .status
                .as_deref()
                .map(|s| format!(" <span class=\"badge\">{}</span>", esc(s)))
                .unwrap_or_default();
            let _ = write!(body, "<h3>{}{status}</h3><pre>", esc(heading));
            open = true;
            current = step;
        }
        let _ = writeln!(body, "{}", esc(&event.body.message));
    }
    if open {
        body.push_str("</pre>");
    }
    body.push_str("</section>");
    let _ = write!(
        body,
        "<p class=\"muted\">JSON: <a href=\"/api/scaffolder/v2/tasks/{0}\">task</a>, <a href=\"/api/scaffolder/v2/tasks/{0}/events\">events</a></p>",
        esc(&pct(&view.id))
    );
    let mut html = page(&state, &format!("Task {}", view.id), &body).0;
    if !done {
        // No JavaScript: the page reloads itself until the task is finished.
        html = html.replacen(
            "<head>",
            "<head><meta http-equiv=\"refresh\" content=\"2\">",
            1,
        );
    }
    axum::response::Html(html).into_response()
}

async fn cancel_task(State(state): State<Arc<AppState>>, Path(id): Path<String>) -> Response {
    if let Ok(area) = area(&state)
        && let Some(task) = area.scaffolding.task(&id)
    {
        task.cancel();
    }
    (
        StatusCode::SEE_OTHER,
        [(header::LOCATION, format!("/tasks/{}", pct(&id)))],
    )
        .into_response()
}

async fn previews_page(State(state): State<Arc<AppState>>) -> Response {
    let Ok(area) = area(&state) else {
        return unavailable(&state, "Previews");
    };
    let mut body = String::from(
        "<h1>Preview environments</h1><p class=\"muted\">One per open pull request, created by signed webhooks (<code>POST /webhooks/github</code>, <code>POST /webhooks/gitlab</code>) and removed when it closes or expires.</p>",
    );
    if let Some(file) = &area.previews.secret_file {
        let _ = write!(
            body,
            "<p class=\"muted\">Webhook secret: <code>{}</code></p>",
            esc(&file.display().to_string())
        );
    }
    match area.previews.list().await {
        Err(e) => {
            let _ = write!(
                body,
                "<section class=\"errors\">Cannot list previews: {}</section>",
                esc(&e.report())
            );
        }
        Ok(rows) if rows.is_empty() => body.push_str("<p class=\"muted\">No previews.</p>"),
        Ok(rows) => {
            body.push_str("<table><tr><th>Pull request</th><th>Component</th><th>Status</th><th>Namespace</th><th>URL</th><th>Expires</th><th>Commit</th></tr>");
            for row in &rows {
                let component = row
                    .component
                    .parse::<EntityRef>()
                    .ok()
                    .filter(|r| state.view().snapshot.contains(r))
                    .map_or_else(
                        || esc(&row.component),
                        |r| format!("<a href=\"{}\">{}</a>", esc(&entity_url(&r)), esc(r.name())),
                    );
                let url = row.url.as_deref().map_or_else(String::new, |u| {
                    if u.starts_with("https://") || u.starts_with("http://") {
                        format!("<a href=\"{0}\" rel=\"noopener\">{0}</a>", esc(u))
                    } else {
                        esc(u)
                    }
                });
                let _ = write!(
                    body,
                    "<tr><td>{}</td><td>{component}</td><td><span class=\"badge\">{}</span></td><td>{}</td><td>{url}</td><td>{}</td><td><code>{}</code></td></tr>",
                    esc(&row.preview),
                    esc(&row.status),
                    esc(row.namespace.as_deref().unwrap_or_default()),
                    esc(row.expires_at.as_deref().unwrap_or_default()),
                    esc(row
                        .head_sha
                        .as_deref()
                        .map_or("", |s| &s[..s.len().min(12)])),
                );
            }
            body.push_str("</table>");
        }
    }
    page(&state, "Previews", &body).into_response()
}

/// The previews of one component (pull requests of its repository), for its entity page.
pub(crate) async fn entity_previews(state: &AppState, entity: &EntityRef) -> String {
    let Ok(area) = area(state) else {
        return "<p class=\"muted\">Previews: not configured.</p>".to_owned();
    };
    let wanted = entity.to_string();
    let rows = match area.previews.list().await {
        Ok(rows) => rows,
        Err(e) => {
            return format!(
                "<p class=\"muted\">Cannot list previews: {}</p>",
                esc(&e.report())
            );
        }
    };
    let mine: Vec<_> = rows.iter().filter(|r| r.component == wanted).collect();
    if mine.is_empty() {
        return "<p class=\"muted\">No open previews. <a href=\"/previews\">All previews</a></p>"
            .to_owned();
    }
    let mut html = String::from(
        "<table><tr><th>Pull request</th><th>Status</th><th>Namespace</th><th>URL</th><th>Expires</th></tr>",
    );
    for row in mine {
        let url = row.url.as_deref().map_or_else(String::new, |u| {
            if u.starts_with("https://") || u.starts_with("http://") {
                format!("<a href=\"{0}\" rel=\"noopener\">{0}</a>", esc(u))
            } else {
                esc(u)
            }
        });
        let _ = write!(
            html,
            "<tr><td>{}</td><td><span class=\"badge\">{}</span></td><td>{}</td><td>{url}</td><td>{}</td></tr>",
            esc(&row.preview),
            esc(&row.status),
            esc(row.namespace.as_deref().unwrap_or_default()),
            esc(row.expires_at.as_deref().unwrap_or_default()),
        );
    }
    html.push_str("</table>");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_bodies_decode() {
        let pairs = parse_form(
            b"name=orders-api&description=A+new%20one&flag=false&flag=true&bad=%zz&empty=",
        );
        let map: BTreeMap<_, _> = pairs.into_iter().collect();
        assert_eq!(map["name"], "orders-api");
        assert_eq!(map["description"], "A new one");
        assert_eq!(map["flag"], "true");
        assert_eq!(map["bad"], "%zz");
        assert_eq!(map["empty"], "");
    }

    #[test]
    fn form_values_follow_the_schema() {
        let schema = serde_json::json!({"steps": [{"schema": {"properties": {
            "port": {"type": "integer"}, "name": {"type": "string"}, "on": {"type": "boolean"}
        }}}]});
        let form: BTreeMap<String, String> = [("port", "80x"), ("name", "a"), ("on", "true")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let (values, errors) = form_values(&schema, &form);
        assert_eq!(errors["port"], "must be a whole number");
        assert_eq!(values["name"], "a");
        assert_eq!(values["on"], true);
    }
}
