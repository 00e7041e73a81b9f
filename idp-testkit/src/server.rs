//! The HTTP side: accepts connections on the loopback listener, routes each request to
//! discovery or a verb, applies injected faults and records every request.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpListener;
use tracing::Instrument;

use crate::api::{self, PatchKind, Query, Target, WriteOpts};
use crate::faults::RequestInfo;
use crate::requests::{Request, Verb};
use crate::route::{self, ObjectPath, Route};
use crate::shared::Shared;
use crate::status::ApiError;
use crate::watch::{self, BoxError, WatchParams};
use crate::{delete, discovery, openapi, protobuf, table};

type Body = BoxBody<Bytes, BoxError>;

/// Accepts connections until the task is aborted; aborting it drops every connection
/// (and the watch streams they carry) with it.
pub(crate) async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors or similar: back off instead of spinning.
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                };
                let shared = shared.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req| {
                        let shared = shared.clone();
                        async move { Ok::<_, Infallible>(handle(shared, req).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

fn json_response(code: u16, v: &Value) -> Response<Body> {
    let mut resp = Response::new(full(v.to_string()));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn error_response(e: &ApiError) -> Response<Body> {
    let mut resp = json_response(e.code, &e.to_status());
    if let Some(secs) = e.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn header_str(req: &http::Request<Incoming>, name: header::HeaderName) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(ToOwned::to_owned)
}

/// The field manager for non-apply writes: `fieldManager`, else the User-Agent's
/// program name (what the real server does), else "unknown".
fn manager_for(q: &Query, user_agent: Option<&str>) -> String {
    if let Some(m) = q.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.to_owned();
    }
    user_agent
        .and_then(|ua| ua.split('/').next())
        .filter(|s| !s.is_empty())
        .unwrap_or("unknown")
        .to_owned()
}

fn verb_for(method: &Method, op: &ObjectPath, q: &Query) -> Option<Verb> {
    let named = op.name.is_some();
    Some(match *method {
        Method::GET if named => Verb::Get,
        Method::GET if op.watch_prefix || q.flag("watch") => Verb::Watch,
        Method::GET => Verb::List,
        Method::POST if !named => Verb::Create,
        Method::PUT if named => Verb::Update,
        Method::PATCH if named => Verb::Patch,
        Method::DELETE if named => Verb::Delete,
        Method::DELETE => Verb::DeleteCollection,
        _ => return None,
    })
}

async fn handle(shared: Arc<Shared>, req: http::Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let raw_query = req.uri().query().unwrap_or("").to_owned();
    let span = tracing::debug_span!("fake_cluster.request", %method, %path);
    async move {
        let content_type = header_str(&req, header::CONTENT_TYPE);
        let accept = header_str(&req, header::ACCEPT);
        let user_agent = header_str(&req, header::USER_AGENT);
        let (body, mut early_error) = match req.into_body().collect().await {
            Ok(b) => (b.to_bytes(), None),
            Err(e) => (
                Bytes::new(),
                Some(ApiError::bad_request(format!(
                    "could not read the request body: {e}"
                ))),
            ),
        };
        let body = if content_type
            .as_deref()
            .is_some_and(|c| c.starts_with(protobuf::MEDIA_TYPE))
        {
            match protobuf::decode(&body) {
                Ok(v) => Bytes::from(v.to_string()),
                Err(e) => {
                    let err =
                        ApiError::unsupported_media_type(content_type.as_deref().unwrap_or(""));
                    early_error.get_or_insert(ApiError {
                        message: format!("{e} ({})", err.message),
                        ..err
                    });
                    Bytes::new()
                }
            }
        } else {
            body
        };
        let q = Query::parse(Some(&raw_query));
        let route = route::parse(&path);
        let mut record = Request {
            verb: Verb::NonResource,
            method: method.to_string(),
            path: path.clone(),
            query: raw_query.clone(),
            group: String::new(),
            resource: String::new(),
            subresource: None,
            namespace: None,
            name: None,
            content_type: content_type.clone(),
            status: 0,
        };
        if let Route::Object(op) = &route {
            record.group.clone_from(&op.group);
            record.resource.clone_from(&op.plural);
            record.subresource.clone_from(&op.subresource);
            record.namespace.clone_from(&op.namespace);
            record.name.clone_from(&op.name);
            if let Some(v) = verb_for(&method, op, &q) {
                record.verb = v;
            }
        }
        let decision = shared.faults.decide(&RequestInfo {
            verb: record.verb,
            resource: &record.resource,
            namespace: record.namespace.as_deref(),
            name: record.name.as_deref(),
            path: &record.path,
        });
        if !decision.latency.is_zero() {
            tokio::time::sleep(decision.latency).await;
        }
        let response = if let Some(e) = early_error.or(decision.error) {
            error_response(&e)
        } else {
            {
                let ctx = Ctx {
                    method: &method,
                    q: &q,
                    body: &body,
                    content_type: content_type.as_deref().unwrap_or(""),
                    user_agent: user_agent.as_deref(),
                    accept: accept.as_deref(),
                    drop_watch_after: decision.drop_watch_after,
                };
                match dispatch(&shared, &route, record.verb, &ctx) {
                    Ok(r) => r,
                    Err(e) => error_response(&e),
                }
            }
        };
        record.status = response.status().as_u16();
        tracing::debug!(status = record.status, verb = %record.verb, "served");
        shared.requests.push(record);
        response
    }
    .instrument(span)
    .await
}

struct Ctx<'a> {
    method: &'a Method,
    q: &'a Query,
    body: &'a Bytes,
    content_type: &'a str,
    user_agent: Option<&'a str>,
    accept: Option<&'a str>,
    drop_watch_after: Option<usize>,
}

fn dispatch(
    shared: &Arc<Shared>,
    route: &Route,
    verb: Verb,
    ctx: &Ctx<'_>,
) -> Result<Response<Body>, ApiError> {
    let get_only = || {
        if *ctx.method == Method::GET {
            Ok(())
        } else {
            Err(ApiError::method_not_allowed(format!(
                "the server does not allow this method on the requested resource ({})",
                ctx.method
            )))
        }
    };
    match route {
        Route::Version => {
            get_only()?;
            Ok(json_response(200, &discovery::version()))
        }
        Route::CoreVersions => {
            get_only()?;
            Ok(json_response(
                200,
                &discovery::core_versions(&shared.address),
            ))
        }
        Route::Groups => {
            get_only()?;
            Ok(json_response(
                200,
                &shared.read(|s| discovery::group_list(&s.registry)),
            ))
        }
        Route::Group(g) => {
            get_only()?;
            shared
                .read(|s| discovery::group_doc(&s.registry, g))
                .map(|v| json_response(200, &v))
                .ok_or_else(ApiError::path_not_found)
        }
        Route::Resources { group, version } => {
            get_only()?;
            shared
                .read(|s| discovery::resource_list(&s.registry, group, version))
                .map(|v| json_response(200, &v))
                .ok_or_else(ApiError::path_not_found)
        }
        Route::OpenApiRoot => {
            get_only()?;
            Ok(json_response(
                200,
                &shared.read(|s| openapi::root(&s.registry)),
            ))
        }
        Route::OpenApi { group, version } => {
            get_only()?;
            shared
                .read(|s| openapi::group_version(&s.registry, group, version))
                .map(|v| json_response(200, &v))
                .ok_or_else(ApiError::path_not_found)
        }
        Route::Unknown => Err(ApiError::path_not_found()),
        Route::Object(op) => object(shared, op, verb, ctx),
    }
}

fn object(
    shared: &Arc<Shared>,
    op: &ObjectPath,
    verb: Verb,
    ctx: &Ctx<'_>,
) -> Result<Response<Body>, ApiError> {
    let rt = shared
        .read(|s| s.registry.get(&op.group, &op.version, &op.plural).cloned())
        .ok_or_else(ApiError::path_not_found)?;
    if rt.namespaced != op.namespace.is_some()
        && !(rt.namespaced && op.name.is_none() && matches!(verb, Verb::List | Verb::Watch))
    {
        return Err(ApiError::path_not_found());
    }
    let (status, scale) = match op.subresource.as_deref() {
        None => (false, false),
        Some("status") if rt.has_status => (true, false),
        Some("scale") if rt.has_scale => (false, true),
        Some(_) => return Err(ApiError::path_not_found()),
    };
    let target = Target {
        rt,
        namespace: op.namespace.clone(),
        name: op.name.clone(),
        status,
    };
    if scale {
        let opts = WriteOpts {
            manager: manager_for(ctx.q, ctx.user_agent),
            dry_run: ctx.q.get("dryRun").is_some(),
        };
        let out = match verb {
            Verb::Get => shared.read(|s| api::get_scale(s, &target))?,
            Verb::Update => {
                shared.write(|s| api::write_scale(s, &target, ctx.body, None, &opts))?
            }
            Verb::Patch => {
                let kind = PatchKind::from_content_type(ctx.content_type)
                    .filter(|k| *k != PatchKind::Apply)
                    .ok_or_else(|| ApiError::unsupported_media_type(ctx.content_type))?;
                shared.write(|s| api::write_scale(s, &target, ctx.body, Some(kind), &opts))?
            }
            _ => {
                return Err(ApiError::method_not_allowed(
                    "the scale subresource supports get, update and patch",
                ));
            }
        };
        return Ok(json_response(200, &out));
    }
    let opts = WriteOpts {
        manager: manager_for(ctx.q, ctx.user_agent),
        dry_run: ctx.q.get("dryRun").is_some(),
    };
    let not_allowed = || {
        ApiError::method_not_allowed(format!(
            "the server does not allow this method on the requested resource ({})",
            ctx.method
        ))
    };
    match verb {
        Verb::Get => {
            let obj = shared.read(|s| api::get(s, &target))?;
            if table::wants_table(ctx.accept) {
                let rv = obj
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                return Ok(json_response(
                    200,
                    &table::table(
                        &target.rt,
                        std::slice::from_ref(&obj),
                        rv,
                        None,
                        ctx.q.get("includeObject"),
                    ),
                ));
            }
            Ok(json_response(200, &obj))
        }
        Verb::List => {
            let list = shared.read(|s| api::list(s, &target, ctx.q))?;
            if table::wants_table(ctx.accept) {
                let items = list["items"].as_array().cloned().unwrap_or_default();
                let rv = list
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                return Ok(json_response(
                    200,
                    &table::table(
                        &target.rt,
                        &items,
                        rv,
                        list.pointer("/metadata/continue"),
                        ctx.q.get("includeObject"),
                    ),
                ));
            }
            Ok(json_response(200, &list))
        }
        Verb::Watch => watch_response(shared, target, ctx),
        Verb::Create => Ok(json_response(
            201,
            &shared.write(|s| api::create(s, &target, ctx.body, &opts))?,
        )),
        Verb::Update => Ok(json_response(
            200,
            &shared.write(|s| api::update(s, &target, ctx.body, &opts))?,
        )),
        Verb::Patch => {
            let kind = PatchKind::from_content_type(ctx.content_type)
                .ok_or_else(|| ApiError::unsupported_media_type(ctx.content_type))?;
            let (code, obj) =
                shared.write(|s| api::patch(s, &target, ctx.body, kind, ctx.q, &opts))?;
            Ok(json_response(code, &obj))
        }
        Verb::Delete => Ok(json_response(
            200,
            &shared.write(|s| delete::delete(s, &target, ctx.body, opts.dry_run))?,
        )),
        Verb::DeleteCollection => Ok(json_response(
            200,
            &shared.write(|s| delete::delete_collection(s, &target, ctx.q))?,
        )),
        Verb::NonResource => Err(not_allowed()),
    }
}

fn watch_response(
    shared: &Arc<Shared>,
    target: Target,
    ctx: &Ctx<'_>,
) -> Result<Response<Body>, ApiError> {
    let filters = api::Filters::from_query(ctx.q)?;
    let resource_version = match ctx.q.get("resourceVersion").filter(|s| !s.is_empty()) {
        None => None,
        Some(rv) => Some(rv.parse::<u64>().map_err(|_| {
            ApiError::bad_request(format!(
                "invalid resourceVersion {rv:?}: must be an integer"
            ))
        })?),
    };
    let params = WatchParams {
        target,
        filters,
        resource_version,
        bookmarks: ctx.q.flag("allowWatchBookmarks"),
        timeout: watch::timeout_from(ctx.q.get("timeoutSeconds")),
        drop_after: ctx.drop_watch_after,
        render: if table::wants_table(ctx.accept) {
            watch::Render::Table(ctx.q.get("includeObject").map(ToOwned::to_owned))
        } else {
            watch::Render::Object
        },
    };
    let body = StreamBody::new(watch::stream(shared.clone(), params));
    let mut resp = Response::new(BodyExt::boxed(body));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
