//! Backstage's catalog REST API (`/api/catalog/...`): same paths, parameters, JSON shapes,
//! status codes and error bodies as Backstage's catalog backend.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use idp_catalog::provider::{EntityProvider, FileProvider};
use idp_catalog::{Mutation, QueryOptions, Snapshot};
use idp_core::EntityRef;
use idp_core::ports::EntityQuery;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::server::error::ApiError;
use crate::server::state::{AppState, Location, stable_id};

/// Default page size of `by-query` when no `limit` is given.
pub const DEFAULT_QUERY_LIMIT: usize = 20;

/// The catalog routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/catalog/entities", get(list_entities))
        .route(
            "/api/catalog/entities/by-name/{kind}/{namespace}/{name}",
            get(by_name),
        )
        .route(
            "/api/catalog/entities/by-uid/{uid}",
            get(by_uid).delete(delete_by_uid),
        )
        .route("/api/catalog/entities/by-refs", post(by_refs))
        .route("/api/catalog/entities/by-query", get(by_query))
        .route("/api/catalog/entity-facets", get(facets))
        .route(
            "/api/catalog/locations",
            post(add_location).get(list_locations),
        )
        .route(
            "/api/catalog/locations/{id}",
            get(get_location).delete(delete_location),
        )
        .route("/api/catalog/refresh", post(refresh))
        .route("/api/catalog/validate-entity", post(validate_entity))
}

/// Query parameters in order, repeated keys kept (`filter=a&filter=b`).
pub struct Params(Vec<(String, String)>);

impl Params {
    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == key || k.strip_suffix("[]") == Some(key))
            .map(|(_, v)| v.as_str())
    }

    fn one(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key || k.strip_suffix("[]") == Some(key))
            .map(|(_, v)| v.as_str())
    }

    fn usize(&self, key: &str) -> Result<Option<usize>, ApiError> {
        self.one(key)
            .map(|v| {
                v.parse::<usize>().map_err(|_| {
                    ApiError::input(format!(
                        "Invalid {key} parameter {v:?}: expected a non-negative integer"
                    ))
                })
            })
            .transpose()
    }

    /// `fields=a,b&fields=c` → `[a, b, c]`.
    fn fields(&self) -> Vec<String> {
        self.all("fields")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn filters(&self) -> Vec<String> {
        self.all("filter").map(str::to_owned).collect()
    }
}

/// What a cursor remembers: the query it continues, and where.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Cursor {
    filter: Vec<String>,
    order: Vec<(String, bool)>,
    #[serde(default)]
    term: Option<String>,
    /// The catalog's own cursor.
    inner: Option<String>,
    /// The page size of the request that made it (used when the next request gives none).
    #[serde(default)]
    limit: Option<usize>,
}

impl Cursor {
    fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    fn decode(text: &str) -> Result<Self, ApiError> {
        let bad = || {
            ApiError::input(format!(
                "Malformed cursor {text:?}: pass a cursor exactly as a previous response returned it, or start again without one"
            ))
        };
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map_err(|_| bad())
    }
}

fn build_query(filters: &[String], term: Option<&str>) -> Result<EntityQuery, ApiError> {
    let mut query = if filters.is_empty() {
        EntityQuery::new()
    } else {
        idp_catalog::filter::parse_filters(filters)
            .map_err(|e| ApiError::input(format!("Invalid filter: {}", e.report())))?
    };
    if let Some(t) = term.filter(|t| !t.trim().is_empty()) {
        query.text = Some(t.trim().to_owned());
    }
    Ok(query)
}

/// `asc:metadata.name` (list) → `(metadata.name, false)`.
fn parse_order_list(text: &str) -> Result<(String, bool), ApiError> {
    match text.split_once(':') {
        Some(("asc", f)) if !f.is_empty() => Ok((f.to_owned(), false)),
        Some(("desc", f)) if !f.is_empty() => Ok((f.to_owned(), true)),
        _ => Err(ApiError::input(format!(
            "Invalid order parameter {text:?}: expected asc:<field> or desc:<field>, e.g. asc:metadata.name"
        ))),
    }
}

/// `metadata.name,asc` (by-query) → `(metadata.name, false)`.
fn parse_order_field(text: &str) -> Result<(String, bool), ApiError> {
    let (field, dir) = text.split_once(',').unwrap_or((text, "asc"));
    let field = field.trim();
    if field.is_empty() {
        return Err(ApiError::input(format!(
            "Invalid orderField {text:?}: expected <field>,asc or <field>,desc"
        )));
    }
    match dir.trim() {
        "asc" => Ok((field.to_owned(), false)),
        "desc" => Ok((field.to_owned(), true)),
        other => Err(ApiError::input(format!(
            "Invalid orderField {text:?}: the order {other:?} must be asc or desc"
        ))),
    }
}

fn options(order: &[(String, bool)], fields: Vec<String>) -> QueryOptions {
    let mut o = QueryOptions::default().fields(fields);
    for (f, d) in order {
        o = o.order_by(f.clone(), *d);
    }
    o
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    raw_json_response(status, value.to_string())
}

/// A response whose body is JSON text already written.
fn raw_json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    r
}

/// `GET /api/catalog/entities`: a JSON array; `limit` pages with a `Link: <...>; rel="next"`
/// header carrying `after`.
async fn list_entities(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let p = Params(params);
    let view = state.view();
    let fields = p.fields();
    let limit = p.usize("limit")?;
    let offset = p.usize("offset")?.unwrap_or(0);
    let (filters, order, inner) = if let Some(after) = p.one("after") {
        let c = Cursor::decode(after)?;
        (c.filter, c.order, c.inner)
    } else {
        let order = p
            .all("order")
            .map(parse_order_list)
            .collect::<Result<Vec<_>, _>>()?;
        let inner = (offset > 0 && !order.is_empty()).then(|| format!("offset:{offset}"));
        (p.filters(), order, inner)
    };
    let mut query = build_query(&filters, None)?;
    let everything = view.snapshot.len().max(1);
    let skip = if order.is_empty() && p.one("after").is_none() {
        offset
    } else {
        0
    };
    query.limit = Some(limit.unwrap_or(everything).saturating_add(skip).max(1));
    query.cursor = inner;
    let page = view
        .snapshot
        .query_json(&query, &options(&order, fields))
        .map_err(ApiError::from)?;
    let items = idp_catalog::catalog::write_json_array(page.items.iter().skip(skip).map(|s| &**s));
    let mut response = raw_json_response(StatusCode::OK, items);
    if let (Some(limit), Some(next)) = (limit, page.next_cursor) {
        let cursor = Cursor {
            filter: filters,
            order,
            term: None,
            inner: Some(next),
            limit: Some(limit),
        };
        let link = format!(
            "</api/catalog/entities?after={}&limit={limit}>; rel=\"next\"",
            cursor.encode()
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            response.headers_mut().insert(header::LINK, v);
        }
    }
    Ok(response)
}

fn entity_value(snapshot: &Snapshot, r: &EntityRef) -> Option<Value> {
    snapshot.get(r).map(|e| e.to_value())
}

fn find_by_uid(snapshot: &Snapshot, uid: &str) -> Option<EntityRef> {
    let query = EntityQuery::new()
        .any_of(vec![idp_core::ports::FilterCondition::equals(
            "metadata.uid",
            uid,
        )])
        .limit(1);
    snapshot.refs(&query).into_iter().next()
}

async fn by_name(
    State(state): State<Arc<AppState>>,
    UrlPath((kind, namespace, name)): UrlPath<(String, String, String)>,
) -> Result<Response, ApiError> {
    let not_found = || {
        ApiError::not_found(format!(
            "No entity named '{name}' found, with kind '{kind}' in namespace '{namespace}'"
        ))
    };
    let r = EntityRef::new(&kind, &namespace, &name).map_err(|_| not_found())?;
    let view = state.view();
    let text = view.snapshot.get_json(&r).ok_or_else(not_found)?;
    Ok(raw_json_response(StatusCode::OK, text.to_string()))
}

async fn by_uid(
    State(state): State<Arc<AppState>>,
    UrlPath(uid): UrlPath<String>,
) -> Result<Response, ApiError> {
    let view = state.view();
    let text = find_by_uid(&view.snapshot, &uid)
        .and_then(|r| view.snapshot.get_json(&r))
        .ok_or_else(|| ApiError::not_found(format!("No entity with uid {uid}")))?;
    Ok(raw_json_response(StatusCode::OK, text.to_string()))
}

async fn delete_by_uid(
    State(state): State<Arc<AppState>>,
    UrlPath(uid): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    let view = state.view();
    let r = find_by_uid(&view.snapshot, &uid)
        .ok_or_else(|| ApiError::not_found(format!("No entity with uid {uid}")))?;
    let provider = view.snapshot.provider_of(&r).unwrap_or_default();
    state.apply(
        &provider,
        Mutation::Delta {
            upserts: vec![],
            removals: vec![r.clone()],
        },
    );
    tracing::info!(entity = %r, "deleted; its provider adds it back on the next refresh if its source still has it");
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/catalog/entities/by-refs`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ByRefsRequest {
    /// Entity references (`kind:namespace/name`).
    pub entity_refs: Vec<String>,
    /// Fields to keep (dotted paths).
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}

/// Parse a JSON body into `T`, with a 400 that names the field on failure.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::input(
            "The request body is empty: send a JSON object (Content-Type: application/json)",
        ));
    }
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error(de)
}

fn serde_path_to_error<'de, T: serde::Deserialize<'de>>(
    de: &mut serde_json::Deserializer<serde_json::de::SliceRead<'de>>,
) -> Result<T, ApiError> {
    T::deserialize(de).map_err(|e| {
        ApiError::input(format!(
            "Malformed request body: {e} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })
}

async fn by_refs(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: ByRefsRequest = parse_json(&body)?;
    let mut fields = request.fields.unwrap_or_default();
    fields.extend(Params(params).fields());
    let view = state.view();
    let mut items: Vec<Arc<str>> = Vec::with_capacity(request.entity_refs.len());
    for (i, text) in request.entity_refs.iter().enumerate() {
        let r: EntityRef = text.parse().map_err(|e: idp_core::Error| {
            ApiError::input(format!("entityRefs[{i}]: {}", e.report()))
        })?;
        items.push(if fields.is_empty() {
            view.snapshot
                .get_json(&r)
                .unwrap_or_else(|| Arc::from("null"))
        } else {
            entity_value(&view.snapshot, &r)
                .map_or(Value::Null, |v| project(&v, &fields))
                .to_string()
                .into()
        });
    }
    Ok(raw_json_response(
        StatusCode::OK,
        with_items(&json!({ "items": [] }), &items),
    ))
}

/// `envelope` written as JSON with its empty `"items":[]` filled with `items` (JSON
/// texts): the bytes `serde_json` writes for the envelope holding those items, without
/// building them as values. (An empty array is written `[]` wherever its key sorts, and
/// no string in the envelope can hold `"items":[]` unescaped.)
fn with_items(envelope: &Value, items: &[Arc<str>]) -> String {
    let text = envelope.to_string();
    let marker = "\"items\":[]";
    let Some(at) = text.find(marker) else {
        return text;
    };
    let array = idp_catalog::catalog::write_json_array(items.iter().map(|s| &**s));
    let mut out = String::with_capacity(text.len() + array.len());
    out.push_str(&text[..at]);
    out.push_str("\"items\":");
    out.push_str(&array);
    out.push_str(&text[at + marker.len()..]);
    out
}

/// Keep only `fields` (dotted paths) of `value`.
fn project(value: &Value, fields: &[String]) -> Value {
    let mut out = serde_json::Map::new();
    for f in fields {
        let parts: Vec<&str> = f.split('.').collect();
        copy_path(value, &parts, &mut out);
    }
    Value::Object(out)
}

fn copy_path(value: &Value, parts: &[&str], out: &mut serde_json::Map<String, Value>) {
    let Some(map) = value.as_object() else { return };
    // Try the longest key first so `metadata.annotations.backstage.io/x` works.
    for n in (1..=parts.len()).rev() {
        let key = parts[..n].join(".");
        if let Some(v) = map.get(&key) {
            if n == parts.len() {
                out.insert(key, v.clone());
            } else {
                let entry = out
                    .entry(key)
                    .or_insert_with(|| Value::Object(serde_json::Map::new()));
                if let Some(inner) = entry.as_object_mut() {
                    copy_path(v, &parts[n..], inner);
                }
            }
            return;
        }
    }
}

async fn by_query(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let p = Params(params);
    let asked = p.usize("limit")?;
    let mut cursor = if let Some(text) = p.one("cursor") {
        Cursor::decode(text)?
    } else {
        Cursor {
            filter: p.filters(),
            order: p
                .all("orderField")
                .map(parse_order_field)
                .collect::<Result<Vec<_>, _>>()?,
            term: p.one("fullTextFilterTerm").map(str::to_owned),
            inner: None,
            limit: None,
        }
    };
    let limit = asked.or(cursor.limit).unwrap_or(DEFAULT_QUERY_LIMIT).max(1);
    cursor.limit = Some(limit);
    let mut query = build_query(&cursor.filter, cursor.term.as_deref())?;
    query.limit = Some(limit);
    query.cursor.clone_from(&cursor.inner);
    let view = state.view();
    let page = view
        .snapshot
        .query_json(&query, &options(&cursor.order, p.fields()))
        .map_err(ApiError::from)?;
    let mut page_info = serde_json::Map::new();
    if let Some(next) = page.next_cursor {
        let c = Cursor {
            inner: Some(next),
            ..cursor.clone()
        };
        page_info.insert("nextCursor".into(), Value::String(c.encode()));
    }
    // Ordered queries page by offset, so they can also go back.
    if let Some(offset) = cursor
        .inner
        .as_deref()
        .and_then(|c| c.strip_prefix("offset:"))
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n > 0)
    {
        let c = Cursor {
            inner: Some(format!("offset:{}", offset.saturating_sub(limit))),
            ..cursor.clone()
        };
        page_info.insert("prevCursor".into(), Value::String(c.encode()));
    }
    Ok(raw_json_response(
        StatusCode::OK,
        with_items(
            &json!({"items": [], "totalItems": page.total, "pageInfo": page_info}),
            &page.items,
        ),
    ))
}

/// Values at a dotted path (keys may contain dots; arrays fan out), as strings.
pub fn values_at(value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => {
            for item in items {
                values_at(item, path, out);
            }
        }
        Value::Object(map) if !path.is_empty() => {
            if let Some(v) = map.get(path) {
                values_at(v, "", out);
                return;
            }
            for (k, v) in map {
                if path.len() > k.len()
                    && path.as_bytes()[k.len()] == b'.'
                    && path.starts_with(k.as_str())
                {
                    values_at(v, &path[k.len() + 1..], out);
                }
            }
        }
        Value::String(s) if path.is_empty() => out.push(s.clone()),
        Value::Bool(b) if path.is_empty() => out.push(b.to_string()),
        Value::Number(n) if path.is_empty() => out.push(n.to_string()),
        _ => {}
    }
}

async fn facets(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let p = Params(params);
    let facets: Vec<String> = p.all("facet").map(str::to_owned).collect();
    if facets.is_empty() {
        return Err(ApiError::input(
            "Missing facet parameter: pass at least one, e.g. ?facet=kind&facet=spec.type",
        ));
    }
    let filters = p.filters();
    let query = build_query(&filters, None)?;
    let view = state.view();
    // Facets read every matching entity: compute them once per view, off the async
    // workers so small requests are not queued behind them.
    let key = format!("entity-facets\n{facets:?}\n{filters:?}");
    if let Some(hit) = view.cache.get(&key) {
        return Ok(json_response(StatusCode::OK, &hit));
    }
    let computing = view.clone();
    // The blocking thread stays inside the request's span.
    let span = tracing::info_span!("catalog.facets", entities = view.snapshot.len());
    let body = tokio::task::spawn_blocking(move || {
        span.in_scope(|| compute_facets(&computing, query, &facets))
    })
    .await
    .map_err(|e| {
        ApiError::from(idp_core::Error::internal(format!(
            "facet computation failed: {e}"
        )))
    })??;
    let body = view.cache.insert(key, body);
    Ok(json_response(StatusCode::OK, &body))
}

fn compute_facets(
    view: &crate::server::state::View,
    mut query: EntityQuery,
    facets: &[String],
) -> Result<Value, ApiError> {
    query.limit = Some(view.snapshot.len().max(1));
    let page = view
        .snapshot
        .query_with(&query, &QueryOptions::default().fields(facets.to_vec()))
        .map_err(ApiError::from)?;
    let mut out = serde_json::Map::new();
    for facet in facets {
        let mut counts: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        for item in &page.items {
            let mut values = Vec::new();
            values_at(item, facet, &mut values);
            values.sort();
            values.dedup();
            for v in values {
                *counts.entry(v).or_default() += 1;
            }
        }
        let mut rows: Vec<(String, usize)> = counts.into_iter().collect();
        rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out.insert(
            facet.clone(),
            Value::Array(
                rows.into_iter()
                    .map(|(value, count)| json!({"value": value, "count": count}))
                    .collect(),
            ),
        );
    }
    Ok(json!({ "facets": out }))
}

/// Body of `POST /api/catalog/locations`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationRequest {
    /// `url` (a `file://` URL) or `file` (a path on the server).
    #[serde(rename = "type")]
    pub kind: String,
    /// Where the catalog file (or a directory of `catalog-info.yaml` files) is.
    pub target: String,
}

fn location_path(request: &LocationRequest) -> Result<PathBuf, ApiError> {
    let path = match request.kind.as_str() {
        "url" => request.target.strip_prefix("file://").map(PathBuf::from).ok_or_else(|| {
            ApiError::input(format!(
                "Unsupported location target {:?}: this server reads file:// URLs; put remote repositories in idp.yaml (catalog.remote)",
                request.target
            ))
        })?,
        "file" => PathBuf::from(&request.target),
        other => {
            return Err(ApiError::input(format!(
                "Unsupported location type {other:?}: use \"url\" (file://...) or \"file\""
            )));
        }
    };
    if !path.is_absolute() {
        return Err(ApiError::input(format!(
            "Location target {:?} must be an absolute path",
            request.target
        )));
    }
    if !path.exists() {
        return Err(ApiError::not_found(format!(
            "Location target {} does not exist",
            path.display()
        )));
    }
    Ok(path)
}

fn provider_for(path: &Path, id: &str) -> FileProvider {
    let name = format!("location:{id}");
    if path.is_dir() {
        FileProvider::new(name, path)
    } else {
        let root = path.parent().unwrap_or(Path::new("/"));
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        FileProvider::new(name, root).with_glob(file)
    }
}

async fn add_location(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: LocationRequest = parse_json(&body)?;
    let dry_run = Params(params).one("dryRun") == Some("true");
    let path = location_path(&request)?;
    let id = stable_id(&format!("{}:{}", request.kind, request.target));
    let location = Location {
        id: id.clone(),
        kind: request.kind.clone(),
        target: request.target.clone(),
    };
    let exists = state
        .locations
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .any(|l| l.id == id);
    let provider = provider_for(&path, &id);
    let out = provider.read().await.map_err(ApiError::from)?;
    let entities: Vec<Value> = match &out.mutation {
        Mutation::Full(inputs) => inputs.iter().map(|i| i.value.clone()).collect(),
        Mutation::Delta { upserts, .. } => upserts.iter().map(|i| i.value.clone()).collect(),
    };
    if dry_run {
        return Ok(json_response(
            StatusCode::CREATED,
            &json!({"location": location, "entities": entities, "exists": exists}),
        ));
    }
    if exists {
        return Err(ApiError::conflict(format!(
            "Location {}:{} already exists",
            request.kind, request.target
        )));
    }
    if !out.rejected.is_empty() && entities.is_empty() {
        let reasons: Vec<String> = out.rejected.iter().map(ToString::to_string).collect();
        return Err(ApiError::input(format!(
            "Location {} has no readable entities: {}",
            request.target,
            reasons.join("; ")
        )));
    }
    state.apply(&format!("location:{id}"), out.mutation);
    state.add_provider(Arc::new(provider));
    state
        .locations
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(location.clone());
    Ok(json_response(
        StatusCode::CREATED,
        &json!({"location": location, "entities": entities}),
    ))
}

async fn list_locations(State(state): State<Arc<AppState>>) -> Json<Value> {
    let locations = state
        .locations
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone();
    Json(Value::Array(
        locations
            .into_iter()
            .map(|l| json!({ "data": l }))
            .collect(),
    ))
}

async fn get_location(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<Location>, ApiError> {
    state
        .locations
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .iter()
        .find(|l| l.id == id)
        .cloned()
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("Found no location with ID {id}")))
}

async fn delete_location(
    State(state): State<Arc<AppState>>,
    UrlPath(id): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    let removed = {
        let mut locations = state
            .locations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let before = locations.len();
        locations.retain(|l| l.id != id);
        before != locations.len()
    };
    if !removed {
        return Err(ApiError::not_found(format!(
            "Found no location with ID {id}"
        )));
    }
    let name = format!("location:{id}");
    state.remove_provider(&name);
    state.apply(&name, Mutation::Full(vec![]));
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST /api/catalog/refresh`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    /// The entity to refresh (this server re-reads every provider).
    pub entity_ref: Option<String>,
}

async fn refresh(State(state): State<Arc<AppState>>, body: Bytes) -> Result<StatusCode, ApiError> {
    if !body.iter().all(u8::is_ascii_whitespace) {
        let request: RefreshRequest = parse_json(&body)?;
        tracing::info!(entity = ?request.entity_ref, "refresh requested; re-reading every provider");
    }
    state.refresh().await.map_err(ApiError::from)?;
    Ok(StatusCode::OK)
}

/// Body of `POST /api/catalog/validate-entity` (Backstage's `validateEntity`).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ValidateEntityRequest {
    /// The entity, as it would be in a catalog file (placeholders resolved).
    pub entity: Value,
    /// Where it would be read from, as a location ref (`url:https://…`, `file:/…`).
    pub location: String,
}

/// Backstage's `POST /validate-entity`: 200 with no body when the catalog would accept
/// the entity, 400 `{"errors": [{"name": "InputError", "message": …}]}` with one error
/// per problem (field path, what is wrong, the rule) otherwise.
async fn validate_entity(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: ValidateEntityRequest = parse_json(&body)?;
    match request.location.split_once(':') {
        Some((kind, target)) if !kind.is_empty() && !target.is_empty() => {}
        _ => {
            return Err(ApiError::input(format!(
                "Invalid location ref {:?}: write it as type:target, e.g. url:https://github.com/org/repo/blob/main/catalog-info.yaml",
                request.location
            )));
        }
    }
    let problems = state.catalog.validator().validate(&request.entity);
    if problems.is_empty() {
        return Ok(StatusCode::OK.into_response());
    }
    let errors: Vec<Value> = problems
        .iter()
        .map(|p| json!({"name": "InputError", "message": p.to_string()}))
        .collect();
    Ok((StatusCode::BAD_REQUEST, Json(json!({ "errors": errors }))).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_spliced_into_an_envelope_are_the_envelope_written() {
        let items = vec![json!({"kind": "A", "n": [1, 2]}), Value::Null, json!("x")];
        let texts: Vec<Arc<str>> = items.iter().map(|v| v.to_string().into()).collect();
        let info = json!({"nextCursor": "eyJhIjoxfQ=="});
        assert_eq!(
            with_items(
                &json!({"items": [], "totalItems": 3, "pageInfo": info}),
                &texts
            ),
            json!({"items": items, "totalItems": 3, "pageInfo": info}).to_string()
        );
        assert_eq!(
            with_items(&json!({"items": []}), &[]),
            json!({"items": []}).to_string()
        );
    }
}
