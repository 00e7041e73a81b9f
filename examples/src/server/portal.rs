//! The portal: server-rendered HTML, no JavaScript. `/` browses and searches the
//! catalog; `/catalog/{namespace}/{kind}/{name}` shows one entity. Every value from the
//! catalog goes through [`esc`].

use std::fmt::Write as _;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use idp_core::EntityRef;
use serde_json::Value;

use crate::server::state::AppState;

/// The portal routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(home))
        .route("/catalog/{namespace}/{kind}/{name}", get(entity_page))
}

/// Escape text for HTML element content and quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encode one URL path segment or query value.
pub fn pct(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The portal page of an entity.
pub fn entity_url(r: &EntityRef) -> String {
    format!(
        "/catalog/{}/{}/{}",
        pct(r.namespace()),
        pct(&r.kind().to_ascii_lowercase()),
        pct(r.name())
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}\
header{background:#1d2330;color:#fff;padding:.7rem 1.5rem;display:flex;gap:1.5rem;align-items:center}\
header a{color:#fff;text-decoration:none;font-weight:600}.badge{font-size:.8rem;padding:.15rem .5rem;border-radius:.6rem;background:#e8eaef;color:#1d2330}\
.sim{background:#ffe08a}main{max-width:1100px;margin:1.5rem auto;padding:0 1.5rem}\
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.45rem .6rem;border-bottom:1px solid #e3e5ea;vertical-align:top}\
th{background:#eef0f4;font-size:.85rem}a{color:#2451b7}nav.kinds a{margin-right:.8rem}nav.kinds a.on{font-weight:700;text-decoration:none;color:#1d2330}\
section{background:#fff;border:1px solid #e3e5ea;border-radius:6px;padding:.8rem 1.2rem;margin:1rem 0}\
dl{display:grid;grid-template-columns:10rem 1fr;gap:.3rem 1rem}dt{color:#5b6272}dd{margin:0}\
pre{background:#f1f2f5;padding:.8rem;overflow:auto;max-height:24rem}.muted{color:#5b6272}\
input[type=search]{padding:.35rem .5rem;width:18rem}";

pub(crate) fn page(state: &AppState, title: &str, body: &str) -> Html<String> {
    let cluster = if state.cluster.simulated {
        format!(
            "<span class=\"badge sim\" title=\"no kubeconfig found: an in-process simulated cluster\">{}</span>",
            esc(&state.cluster.label)
        )
    } else {
        format!("<span class=\"badge\">{}</span>", esc(&state.cluster.label))
    };
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{} · idp</title><style>{STYLE}</style></head>\
<body><header><a href=\"/\">idp portal</a><a href=\"/create\">Create</a><a href=\"/deployments\">Deployments</a><a href=\"/previews\">Previews</a><a href=\"/dora\">DORA</a><a href=\"/api/openapi.json\">API</a>{cluster}</header><main>{body}</main></body></html>",
        esc(title)
    ))
}

pub(crate) fn str_at<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    let mut cur = v;
    for p in path {
        match cur.get(p) {
            Some(next) => cur = next,
            None => return "",
        }
    }
    cur.as_str().unwrap_or("")
}

/// A link to an entity given as a (possibly short) reference in `spec.owner` style.
fn ref_link(text: &str, default_kind: &str, namespace: &str) -> String {
    match EntityRef::parse_with_defaults(text, Some(default_kind), namespace) {
        Ok(r) => format!("<a href=\"{}\">{}</a>", esc(&entity_url(&r)), esc(text)),
        Err(_) => esc(text),
    }
}

const MAX_ROWS: usize = 500;

async fn home(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Html<String> {
    let get = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let kind = get("kind");
    let term = get("q");
    let view = state.view();
    // Kind counts for the tabs.
    let mut kinds: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
    for e in view.snapshot.entities() {
        *kinds.entry(e.kind().to_owned()).or_default() += 1;
    }
    let mut body = String::new();
    body.push_str("<h1>Catalog</h1><form method=\"get\" action=\"/\">");
    if let Some(k) = &kind {
        let _ = write!(
            body,
            "<input type=\"hidden\" name=\"kind\" value=\"{}\">",
            esc(k)
        );
    }
    let _ = write!(
        body,
        "<input type=\"search\" name=\"q\" placeholder=\"Search the catalog\" value=\"{}\"> <button>Search</button></form>",
        esc(term.as_deref().unwrap_or(""))
    );
    let q_param = term
        .as_deref()
        .map_or(String::new(), |t| format!("&q={}", pct(t)));
    let _ = write!(
        body,
        "<nav class=\"kinds\"><p><a href=\"/?{}\"{}>All ({})</a>",
        esc(q_param.trim_start_matches('&')),
        if kind.is_none() { " class=\"on\"" } else { "" },
        view.snapshot.len()
    );
    for (k, n) in &kinds {
        let on = kind.as_deref().is_some_and(|x| x.eq_ignore_ascii_case(k));
        let _ = write!(
            body,
            "<a href=\"/?kind={}{}\"{}>{} ({n})</a>",
            esc(&pct(&k.to_ascii_lowercase())),
            esc(&q_param),
            if on { " class=\"on\"" } else { "" },
            esc(k)
        );
    }
    body.push_str("</p></nav>");
    // The rows: search hits in rank order, or the filtered catalog.
    let entities: Vec<idp_core::model::Entity> = if let Some(t) = &term {
        view.search
            .search(t, MAX_ROWS)
            .into_iter()
            .filter_map(|h| view.snapshot.get(&h.entity_ref))
            .filter(|e| {
                kind.as_deref()
                    .is_none_or(|k| e.kind().eq_ignore_ascii_case(k))
            })
            .collect()
    } else {
        view.snapshot
            .entities()
            .filter(|e| {
                kind.as_deref()
                    .is_none_or(|k| e.kind().eq_ignore_ascii_case(k))
            })
            .take(MAX_ROWS)
            .collect()
    };
    if entities.is_empty() {
        body.push_str("<p class=\"muted\">No entities match.</p>");
    } else {
        body.push_str("<table><thead><tr><th>Name</th><th>Kind</th><th>Type</th><th>Owner</th><th>System</th><th>Lifecycle</th><th>Description</th></tr></thead><tbody>");
        for e in &entities {
            let v = e.to_value();
            let title = str_at(&v, &["metadata", "title"]);
            let owner = str_at(&v, &["spec", "owner"]);
            let system = str_at(&v, &["spec", "system"]);
            let _ = write!(
                body,
                "<tr><td><a href=\"{}\">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&entity_url(e.entity_ref())),
                esc(if title.is_empty() { e.name() } else { title }),
                esc(e.kind()),
                esc(str_at(&v, &["spec", "type"])),
                if owner.is_empty() {
                    String::new()
                } else {
                    ref_link(owner, "group", e.namespace())
                },
                if system.is_empty() {
                    String::new()
                } else {
                    ref_link(system, "system", e.namespace())
                },
                esc(str_at(&v, &["spec", "lifecycle"])),
                esc(str_at(&v, &["metadata", "description"])),
            );
        }
        body.push_str("</tbody></table>");
        if entities.len() == MAX_ROWS {
            let _ = write!(
                body,
                "<p class=\"muted\">Showing the first {MAX_ROWS}; narrow by kind or search.</p>"
            );
        }
    }
    page(&state, "Catalog", &body)
}

async fn entity_page(
    State(state): State<Arc<AppState>>,
    Path((namespace, kind, name)): Path<(String, String, String)>,
) -> Response {
    let view = state.view();
    let entity = EntityRef::new(&kind, &namespace, &name)
        .ok()
        .and_then(|r| view.snapshot.get(&r));
    let Some(entity) = entity else {
        let body = format!(
            "<h1>Not found</h1><p>No entity named {} of kind {} in namespace {}. <a href=\"/\">Back to the catalog</a></p>",
            esc(&name),
            esc(&kind),
            esc(&namespace)
        );
        return (StatusCode::NOT_FOUND, page(&state, "Not found", &body)).into_response();
    };
    let v = entity.to_value();
    let ns = entity.namespace();
    let title = str_at(&v, &["metadata", "title"]);
    let mut body = String::new();
    let _ = write!(
        body,
        "<p class=\"muted\"><a href=\"/?kind={}\">{}</a> / {}</p><h1>{}</h1><p>{}</p>",
        esc(&pct(&entity.kind().to_ascii_lowercase())),
        esc(entity.kind()),
        esc(&entity.entity_ref().to_string()),
        esc(if title.is_empty() {
            entity.name()
        } else {
            title
        }),
        esc(str_at(&v, &["metadata", "description"]))
    );
    body.push_str("<section><h2>About</h2><dl>");
    let mut row = |label: &str, html: String| {
        if !html.is_empty() {
            let _ = write!(body, "<dt>{}</dt><dd>{html}</dd>", esc(label));
        }
    };
    let owner = str_at(&v, &["spec", "owner"]);
    row(
        "Owner",
        if owner.is_empty() {
            String::new()
        } else {
            ref_link(owner, "group", ns)
        },
    );
    let system = str_at(&v, &["spec", "system"]);
    row(
        "System",
        if system.is_empty() {
            String::new()
        } else {
            ref_link(system, "system", ns)
        },
    );
    let domain = str_at(&v, &["spec", "domain"]);
    row(
        "Domain",
        if domain.is_empty() {
            String::new()
        } else {
            ref_link(domain, "domain", ns)
        },
    );
    row("Type", esc(str_at(&v, &["spec", "type"])));
    row("Lifecycle", esc(str_at(&v, &["spec", "lifecycle"])));
    let tags: Vec<String> = v
        .pointer("/metadata/tags")
        .and_then(Value::as_array)
        .map(|t| {
            t.iter()
                .filter_map(Value::as_str)
                .map(|s| format!("<span class=\"badge\">{}</span>", esc(s)))
                .collect()
        })
        .unwrap_or_default();
    row("Tags", tags.join(" "));
    let links: Vec<String> = v
        .pointer("/metadata/links")
        .and_then(Value::as_array)
        .map(|l| {
            l.iter()
                .filter_map(|link| {
                    let url = link.get("url")?.as_str()?;
                    let text = link.get("title").and_then(Value::as_str).unwrap_or(url);
                    // Only http(s) links become anchors.
                    Some(
                        if url.starts_with("https://") || url.starts_with("http://") {
                            format!(
                                "<a href=\"{}\" rel=\"noopener\">{}</a>",
                                esc(url),
                                esc(text)
                            )
                        } else {
                            esc(text)
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    row("Links", links.join(", "));
    row(
        "Reference",
        format!("<code>{}</code>", esc(&entity.entity_ref().to_string())),
    );
    body.push_str("</dl></section>");
    // Relations, grouped by type.
    let mut relations: std::collections::BTreeMap<String, Vec<String>> =
        std::collections::BTreeMap::new();
    if let Some(rels) = v.get("relations").and_then(Value::as_array) {
        for rel in rels {
            let (Some(t), Some(target)) = (
                rel.get("type").and_then(Value::as_str),
                rel.get("targetRef").and_then(Value::as_str),
            ) else {
                continue;
            };
            let link = match target.parse::<EntityRef>() {
                Ok(r) if view.snapshot.contains(&r) => {
                    format!("<a href=\"{}\">{}</a>", esc(&entity_url(&r)), esc(target))
                }
                _ => format!(
                    "{} <span class=\"muted\">(not in the catalog)</span>",
                    esc(target)
                ),
            };
            relations.entry(t.to_owned()).or_default().push(link);
        }
    }
    body.push_str("<section><h2>Relations</h2>");
    if relations.is_empty() {
        body.push_str("<p class=\"muted\">None.</p>");
    } else {
        body.push_str("<dl>");
        for (t, links) in &relations {
            let _ = write!(body, "<dt>{}</dt><dd>{}</dd>", esc(t), links.join("<br>"));
        }
        body.push_str("</dl>");
    }
    body.push_str("</section>");
    // APIs: the definition of an API entity.
    if entity.kind().eq_ignore_ascii_case("api") {
        let _ = write!(
            body,
            "<section><h2>Definition</h2><pre>{}</pre></section>",
            esc(str_at(&v, &["spec", "definition"]))
        );
    }
    // Areas other crates provide, wired later.
    let deployments =
        crate::server::portal_deliver::entity_section(&state, entity.entity_ref()).await;
    let previews = crate::server::portal_create::entity_previews(&state, entity.entity_ref()).await;
    let _ = write!(
        body,
        "{deployments}<section><h2>Previews</h2>{previews}</section>"
    );
    let _ = write!(
        body,
        "<p class=\"muted\">JSON: <a href=\"/api/catalog/entities/by-name/{}/{}/{}\">by-name</a></p>",
        esc(&pct(&entity.kind().to_ascii_lowercase())),
        esc(&pct(ns)),
        esc(&pct(entity.name()))
    );
    page(&state, entity.name(), &body).into_response()
}
