//! The verbs: get, list, create, update, patch (merge, JSON, strategic, apply), delete
//! and deletecollection, applied to the [`Store`] under the server's lock.

use serde_json::{Value, json};

use crate::meta::{self, meta_mut, str_at};
use crate::patch;
use crate::registry::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::ssa::{self, Scope, Writer};
use crate::status::ApiError;
use crate::store::{Effect, EventType, ObjKey, Store};

/// Parsed query parameters.
#[derive(Debug, Clone, Default)]
pub(crate) struct Query {
    pairs: Vec<(String, String)>,
}

impl Query {
    pub(crate) fn parse(raw: Option<&str>) -> Self {
        let pairs = raw
            .unwrap_or("")
            .split('&')
            .filter(|s| !s.is_empty())
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        Self { pairs }
    }

    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn flag(&self, name: &str) -> bool {
        matches!(self.get(name), Some("true" | "1" | ""))
    }
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                if let Ok(b) = u8::from_str_radix(hex, 16) {
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

/// What a request addresses.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) rt: ResourceType,
    pub(crate) namespace: Option<String>,
    pub(crate) name: Option<String>,
    /// Whether the `/status` subresource is addressed.
    pub(crate) status: bool,
}

impl Target {
    pub(crate) fn key(&self, name: &str) -> ObjKey {
        (
            self.rt.group.clone(),
            self.rt.plural.clone(),
            self.namespace.clone().unwrap_or_default(),
            name.to_owned(),
        )
    }

    pub(crate) fn name(&self) -> &str {
        self.name.as_deref().unwrap_or("")
    }

    fn scope(&self) -> Scope {
        if self.status {
            Scope::Status
        } else if self.rt.has_status {
            Scope::Main
        } else {
            Scope::All
        }
    }
}

/// Per-request write options.
#[derive(Debug, Clone)]
pub(crate) struct WriteOpts {
    pub(crate) manager: String,
    pub(crate) dry_run: bool,
}

type ApiResult<T> = Result<T, ApiError>;

/// The object as served at the requested version.
pub(crate) fn present(rt: &ResourceType, obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.as_object_mut() {
        m.insert("apiVersion".to_owned(), json!(rt.api_version()));
        m.insert("kind".to_owned(), json!(rt.kind));
    }
    o
}

pub(crate) fn parse_json(body: &[u8]) -> ApiResult<Value> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the request body is not valid JSON: {e}")))
}

pub(crate) fn check_namespace(store: &Store, t: &Target, creating: bool) -> ApiResult<()> {
    let Some(ns) = t.namespace.as_deref() else {
        return Ok(());
    };
    let key: ObjKey = (String::new(), "namespaces".into(), String::new(), ns.into());
    let Some(nsobj) = store.get(&key) else {
        return Err(ApiError::namespace_not_found(ns));
    };
    if creating && nsobj.pointer("/metadata/deletionTimestamp").is_some() {
        return Err(ApiError::forbidden(format!(
            "{} {:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
            t.rt.qualified_plural(),
            t.name()
        ))
        .with_details(json!({"name": t.name(), "group": t.rt.group, "kind": t.rt.plural,
            "causes": [{"reason": "NamespaceTerminating", "message": format!("namespace {ns} is being terminated"), "field": "metadata.namespace"}]})));
    }
    Ok(())
}

/// Checks the body's apiVersion/kind/namespace/name against the URL, filling gaps.
fn check_identity(t: &Target, obj: &mut Value, name_from_url: bool) -> ApiResult<()> {
    if !obj.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    let api_version = str_at(obj, "/apiVersion").to_owned();
    if !api_version.is_empty() && api_version != t.rt.api_version() {
        return Err(ApiError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            t.rt.api_version()
        )));
    }
    let kind = str_at(obj, "/kind").to_owned();
    if !kind.is_empty() && kind != t.rt.kind {
        return Err(ApiError::bad_request(format!(
            "the kind in the data ({kind}) does not match the expected kind ({}) for {}",
            t.rt.kind,
            t.rt.qualified_plural()
        )));
    }
    obj["apiVersion"] = json!(t.rt.api_version());
    obj["kind"] = json!(t.rt.kind);
    let body_ns = str_at(obj, "/metadata/namespace").to_owned();
    match &t.namespace {
        Some(ns) => {
            if !body_ns.is_empty() && &body_ns != ns {
                return Err(ApiError::bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request",
                ));
            }
            meta_mut(obj).insert("namespace".into(), json!(ns));
        }
        None => {
            meta_mut(obj).remove("namespace");
        }
    }
    if name_from_url {
        let body_name = str_at(obj, "/metadata/name").to_owned();
        if !body_name.is_empty() && body_name != t.name() {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({body_name}) does not match the name on the URL ({})",
                t.name()
            )));
        }
        meta_mut(obj).insert("name".into(), json!(t.name()));
    }
    Ok(())
}

fn validate_name(rt: &ResourceType, name: &str) -> ApiResult<()> {
    let check = match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces" | "services") => meta::check_label(name),
        ("rbac.authorization.k8s.io", _) => {
            if name.is_empty() || name == "." || name == ".." || name.contains(['/', '%']) {
                Err(format!(
                    "Invalid value: {name:?}: may not be '.' or '..' and may not contain '/' or '%'"
                ))
            } else {
                Ok(())
            }
        }
        _ => meta::check_subdomain(name),
    };
    check.map_err(|detail| {
        ApiError::invalid(rt, name, "metadata.name", "FieldValueInvalid", &detail)
    })
}

// ---------------------------------------------------------------- read verbs

pub(crate) fn get(store: &Store, t: &Target) -> ApiResult<Value> {
    // The real server answers a get in a missing namespace with the object's 404.
    check_namespace(store, t, false).map_err(|e| {
        if e.code == 404 {
            ApiError::not_found(&t.rt, t.name())
        } else {
            e
        }
    })?;
    store
        .get(&t.key(t.name()))
        .map(|o| present(&t.rt, o))
        .ok_or_else(|| ApiError::not_found(&t.rt, t.name()))
}

/// Parsed list filters shared by list, watch and deletecollection.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filters {
    pub(crate) labels: LabelSelector,
    pub(crate) fields: FieldSelector,
}

impl Filters {
    pub(crate) fn from_query(q: &Query) -> ApiResult<Self> {
        let labels = LabelSelector::parse(q.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("unable to parse labelSelector: {e}")))?;
        let fields = FieldSelector::parse(q.get("fieldSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(format!("unable to parse fieldSelector: {e}")))?;
        Ok(Self { labels, fields })
    }

    pub(crate) fn matches(&self, obj: &Value) -> bool {
        self.labels.matches_object(obj) && self.fields.matches_object(obj)
    }
}

fn encode_continue(rv: u64, key: &ObjKey) -> String {
    use std::fmt::Write;
    let raw = format!("{rv}\n{}\n{}", key.2, key.3);
    raw.bytes().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

fn decode_continue(token: &str) -> Option<(String, String)> {
    if !token.len().is_multiple_of(2) {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let raw = String::from_utf8(bytes?).ok()?;
    let mut parts = raw.splitn(3, '\n');
    let _rv = parts.next()?;
    Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
}

pub(crate) fn list(store: &Store, t: &Target, q: &Query) -> ApiResult<Value> {
    let filters = Filters::from_query(q)?;
    let limit: usize = match q.get("limit") {
        None | Some("" | "0") => usize::MAX,
        Some(l) => l.parse().map_err(|_| {
            ApiError::bad_request(format!("limit must be a non-negative integer, got {l:?}"))
        })?,
    };
    let after = match q.get("continue").filter(|c| !c.is_empty()) {
        Some(token) => Some(decode_continue(token).ok_or_else(|| {
            ApiError::bad_request(
                "continue key is not valid: the token was not issued by this server",
            )
        })?),
        None => None,
    };
    let mut items = Vec::new();
    let mut remaining = 0usize;
    let mut last_key = None;
    for (key, obj) in store.list(&t.rt.group, &t.rt.plural, t.namespace.as_deref()) {
        if let Some((ns, name)) = &after
            && (&key.2, &key.3) <= (ns, name)
        {
            continue;
        }
        if !filters.matches(obj) {
            continue;
        }
        if items.len() < limit {
            items.push(present(&t.rt, obj));
            last_key = Some(key.clone());
        } else {
            remaining += 1;
        }
    }
    let mut metadata = json!({"resourceVersion": store.rv().to_string()});
    if remaining > 0
        && let Some(k) = last_key
    {
        metadata["continue"] = json!(encode_continue(store.rv(), &k));
        metadata["remainingItemCount"] = json!(remaining);
    }
    Ok(json!({
        "kind": format!("{}List", t.rt.kind),
        "apiVersion": t.rt.api_version(),
        "metadata": metadata,
        "items": items,
    }))
}

// ---------------------------------------------------------------- create

/// Validates and fills in a new object (uid, timestamps, defaults). Does not store it.
fn prepare_create(store: &mut Store, t: &Target, obj: &mut Value) -> ApiResult<ObjKey> {
    let generate = str_at(obj, "/metadata/generateName").to_owned();
    let mut name = str_at(obj, "/metadata/name").to_owned();
    if name.is_empty() {
        if generate.is_empty() {
            return Err(ApiError::invalid(
                &t.rt,
                "",
                "metadata.name",
                "FieldValueRequired",
                "Required value: name or generateName is required",
            ));
        }
        name = meta::generate_name(&generate, &mut store.rng);
    }
    validate_name(&t.rt, &name)?;
    let t = Target {
        name: Some(name.clone()),
        ..t.clone()
    };
    check_namespace(store, &t, true)?;
    let key = t.key(&name);
    if store.get(&key).is_some() {
        return Err(ApiError::already_exists(&t.rt, &name));
    }
    let uid = meta::uid(&mut store.rng);
    {
        let m = meta_mut(obj);
        m.insert("name".into(), json!(name));
        m.insert("uid".into(), json!(uid));
        m.insert("creationTimestamp".into(), json!(meta::now()));
        m.insert("generation".into(), json!(1));
        for k in [
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ] {
            m.remove(k);
        }
    }
    apply_defaults(store, &t.rt, obj)?;
    Ok(key)
}

/// Server-side defaults and status resets for new objects.
fn apply_defaults(store: &mut Store, rt: &ResourceType, obj: &mut Value) -> ApiResult<()> {
    if rt.has_status
        && let Some(m) = obj.as_object_mut()
    {
        m.remove("status");
    }
    let name = str_at(obj, "/metadata/name").to_owned();
    match (rt.group.as_str(), rt.plural.as_str()) {
        ("", "namespaces") => {
            let m = meta_mut(obj);
            let labels = m.entry("labels").or_insert_with(|| json!({}));
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
            obj["spec"] = json!({"finalizers": ["kubernetes"]});
            obj["status"] = json!({"phase": "Active"});
        }
        ("", "pods") => obj["status"] = json!({"phase": "Pending", "qosClass": "BestEffort"}),
        ("", "services") => {
            if obj.get("spec").is_none() {
                obj["spec"] = json!({});
            }
            let spec = &mut obj["spec"];
            if spec.get("type").is_none() {
                spec["type"] = json!("ClusterIP");
            }
            if spec.get("clusterIP").is_none() && spec["type"] != "ExternalName" {
                let a: u8 = rand::Rng::random_range(&mut store.rng, 1..255);
                let b: u8 = rand::Rng::random_range(&mut store.rng, 1..255);
                spec["clusterIP"] = json!(format!("10.96.{a}.{b}"));
                spec["clusterIPs"] = json!([format!("10.96.{a}.{b}")]);
            }
            obj["status"] = json!({"loadBalancer": {}});
        }
        ("apps", "deployments" | "statefulsets" | "replicasets") => {
            if let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) {
                spec.entry("replicas").or_insert(json!(1));
            }
        }
        ("apiextensions.k8s.io", "customresourcedefinitions") => {
            let types = store.registry.register_crd(obj).map_err(|detail| {
                ApiError::invalid(rt, &name, "spec", "FieldValueInvalid", &detail)
            })?;
            obj["status"] = crd_status(obj, types.first().map(|t| t.version.clone()));
        }
        _ => {}
    }
    Ok(())
}

fn crd_status(crd: &Value, stored: Option<String>) -> Value {
    let now = meta::now();
    let stored_versions: Vec<String> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .map(|vs| {
            vs.iter()
                .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .filter_map(|v| v.get("name").and_then(Value::as_str).map(ToOwned::to_owned))
                .collect()
        })
        .filter(|v: &Vec<String>| !v.is_empty())
        .unwrap_or_else(|| stored.into_iter().collect());
    json!({
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
             "message": "no conflicts found", "lastTransitionTime": now},
            {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
             "message": "the initial names have been accepted", "lastTransitionTime": now},
        ],
        "acceptedNames": crd.pointer("/spec/names").cloned().unwrap_or(json!({})),
        "storedVersions": stored_versions,
    })
}

fn effects_for(store: &mut Store, key: &ObjKey, status_write: bool) {
    let workload = matches!(
        (key.0.as_str(), key.1.as_str()),
        ("apps", "deployments" | "statefulsets" | "daemonsets") | ("batch", "jobs")
    );
    if workload && !status_write {
        store.effects.push(Effect::Rollout(key.clone()));
    }
}

pub(crate) fn create(
    store: &mut Store,
    t: &Target,
    body: &[u8],
    opts: &WriteOpts,
) -> ApiResult<Value> {
    if t.status {
        return Err(ApiError::method_not_allowed(
            "create is not supported on the status subresource",
        ));
    }
    let mut obj = parse_json(body)?;
    check_identity(t, &mut obj, false)?;
    meta_mut(&mut obj).remove("managedFields");
    let key = prepare_create(store, t, &mut obj)?;
    let api_version = t.rt.api_version();
    let now = meta::now();
    let writer = Writer {
        manager: &opts.manager,
        api_version: &api_version,
        scope: t.scope(),
        now: &now,
    };
    ssa::track_update(None, &mut obj, &writer);
    if opts.dry_run {
        return Ok(present(&t.rt, &obj));
    }
    effects_for(store, &key, false);
    Ok(present(&t.rt, &store.put(key, obj, EventType::Added)))
}

// ---------------------------------------------------------------- update / patch

/// Stores a changed object: preserves server-owned metadata, restricts the write to its
/// scope, bumps generation on spec changes, finishes deletions whose finalizers are gone.
/// `managed` says whether `new` already carries its managedFields (apply) or they must be
/// tracked as an Update.
fn commit(
    store: &mut Store,
    t: &Target,
    old: &Value,
    mut new: Value,
    opts: &WriteOpts,
    managed: bool,
) -> ApiResult<Value> {
    let key = t.key(t.name());
    // Server-owned metadata comes from the stored object.
    {
        let old_meta = old.get("metadata").cloned().unwrap_or(json!({}));
        let m = meta_mut(&mut new);
        for k in [
            "uid",
            "creationTimestamp",
            "generation",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "name",
            "namespace",
        ] {
            match old_meta.get(k) {
                Some(v) => {
                    m.insert(k.to_owned(), v.clone());
                }
                None => {
                    m.remove(k);
                }
            }
        }
        if old_meta.get("deletionTimestamp").is_some()
            && m.get("finalizers")
                .and_then(Value::as_array)
                .is_some_and(|f| {
                    let old_f = old_meta.get("finalizers").and_then(Value::as_array);
                    f.iter().any(|x| !old_f.is_some_and(|o| o.contains(x)))
                })
        {
            return Err(ApiError::forbidden(format!(
                "{} {:?} is forbidden: no new finalizers can be added if the object is being deleted",
                t.rt.qualified_plural(),
                t.name()
            )));
        }
    }
    // Scope: a status write changes only status; a main write never changes status.
    if t.status {
        let status = new.get("status").cloned();
        let mut base = old.clone();
        match status {
            Some(s) => base["status"] = s,
            None => {
                if let Some(m) = base.as_object_mut() {
                    m.remove("status");
                }
            }
        }
        if managed {
            if let Some(mf) = new.pointer("/metadata/managedFields").cloned() {
                meta_mut(&mut base).insert("managedFields".into(), mf);
            } else {
                meta_mut(&mut base).remove("managedFields");
            }
        }
        new = base;
    } else if t.rt.has_status {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(m) = new.as_object_mut() {
                    m.remove("status");
                }
            }
        }
    }
    if !managed {
        if let Some(m) = old.pointer("/metadata/managedFields").cloned() {
            meta_mut(&mut new).insert("managedFields".into(), m);
        } else {
            meta_mut(&mut new).remove("managedFields");
        }
        let api_version = t.rt.api_version();
        let now = meta::now();
        let writer = Writer {
            manager: &opts.manager,
            api_version: &api_version,
            scope: t.scope(),
            now: &now,
        };
        ssa::track_update(Some(old), &mut new, &writer);
    }
    if meta::spec_part(old, t.rt.has_status) != meta::spec_part(&new, t.rt.has_status) && !t.status
    {
        let generation = old
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        meta_mut(&mut new).insert("generation".into(), json!(generation + 1));
    }
    meta_mut(&mut new).insert(
        "resourceVersion".into(),
        old.pointer("/metadata/resourceVersion")
            .cloned()
            .unwrap_or(Value::Null),
    );
    if new == *old {
        return Ok(present(&t.rt, old));
    }
    if t.rt.group == "apiextensions.k8s.io" && !t.status {
        let types = store.registry.register_crd(&new).map_err(|detail| {
            ApiError::invalid(&t.rt, t.name(), "spec", "FieldValueInvalid", &detail)
        })?;
        new["status"] = crd_status(&new, types.first().map(|t| t.version.clone()));
    }
    if opts.dry_run {
        return Ok(present(&t.rt, &new));
    }
    let deleting = new.pointer("/metadata/deletionTimestamp").is_some();
    let no_finalizers = new
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty);
    if deleting && no_finalizers && t.rt.plural != "namespaces" {
        store.put(key.clone(), new, EventType::Modified);
        let gone = crate::delete::finish_delete(store, &key).unwrap_or(Value::Null);
        return Ok(present(&t.rt, &gone));
    }
    effects_for(store, &key, t.status);
    Ok(present(&t.rt, &store.put(key, new, EventType::Modified)))
}

pub(crate) fn existing(store: &Store, t: &Target) -> ApiResult<Value> {
    store
        .get(&t.key(t.name()))
        .cloned()
        .ok_or_else(|| ApiError::not_found(&t.rt, t.name()))
}

pub(crate) fn check_rv(t: &Target, old: &Value, new: &Value) -> ApiResult<()> {
    let want = str_at(new, "/metadata/resourceVersion");
    if !want.is_empty() && want != str_at(old, "/metadata/resourceVersion") {
        return Err(ApiError::stale(&t.rt, t.name()));
    }
    Ok(())
}

pub(crate) fn update(
    store: &mut Store,
    t: &Target,
    body: &[u8],
    opts: &WriteOpts,
) -> ApiResult<Value> {
    let mut obj = parse_json(body)?;
    check_identity(t, &mut obj, true)?;
    check_namespace(store, t, false)?;
    let old = existing(store, t)?;
    check_rv(t, &old, &obj)?;
    commit(store, t, &old, obj, opts, false)
}

/// The patch formats, by request Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    Merge,
    Json,
    Strategic,
    Apply,
}

impl PatchKind {
    pub(crate) fn from_content_type(ct: &str) -> Option<Self> {
        let base = ct.split(';').next().unwrap_or("").trim();
        match base {
            "application/merge-patch+json" => Some(Self::Merge),
            "application/json-patch+json" => Some(Self::Json),
            "application/strategic-merge-patch+json" => Some(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+json" => Some(Self::Apply),
            _ => None,
        }
    }
}

pub(crate) fn patch(
    store: &mut Store,
    t: &Target,
    body: &[u8],
    kind: PatchKind,
    q: &Query,
    opts: &WriteOpts,
) -> ApiResult<(u16, Value)> {
    check_namespace(store, t, false)?;
    if kind == PatchKind::Apply {
        return apply(store, t, body, q, opts);
    }
    let old = existing(store, t)?;
    let p = parse_json(body)?;
    let mut new = old.clone();
    match kind {
        PatchKind::Merge => patch::merge_patch(&mut new, &p),
        PatchKind::Strategic => patch::strategic_merge_patch(&mut new, &p),
        PatchKind::Json => patch::json_patch(&mut new, &p).map_err(|e| {
            ApiError::new(
                422,
                "Invalid",
                format!("the JSON patch could not be applied: {e}"),
            )
        })?,
        PatchKind::Apply => unreachable!("handled above"),
    }
    check_identity(t, &mut new, true)?;
    check_rv(t, &old, &new)?;
    Ok((200, commit(store, t, &old, new, opts, false)?))
}

fn parse_apply_body(body: &[u8]) -> ApiResult<Value> {
    if let Ok(v) = serde_json::from_slice::<Value>(body) {
        return Ok(v);
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the apply body is not UTF-8"))?;
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| ApiError::bad_request(format!("error decoding YAML apply configuration: {e}")))
}

fn apply(
    store: &mut Store,
    t: &Target,
    body: &[u8],
    q: &Query,
    opts: &WriteOpts,
) -> ApiResult<(u16, Value)> {
    let Some(manager) = q.get("fieldManager").filter(|m| !m.is_empty()) else {
        return Err(ApiError::new(
            422,
            "Invalid",
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch",
        ));
    };
    let mut applied = parse_apply_body(body)?;
    if str_at(&applied, "/apiVersion").is_empty() || str_at(&applied, "/kind").is_empty() {
        return Err(ApiError::bad_request(
            "invalid object type: apply configurations must set apiVersion and kind",
        ));
    }
    check_identity(t, &mut applied, true)?;
    let force = q.flag("force");
    let api_version = t.rt.api_version();
    let now = meta::now();
    let writer = Writer {
        manager,
        api_version: &api_version,
        scope: t.scope(),
        now: &now,
    };
    let opts = WriteOpts {
        manager: manager.to_owned(),
        ..opts.clone()
    };
    let to_conflict = |conflicts: Vec<ssa::Conflict>| {
        let causes: Vec<Value> = conflicts
            .iter()
            .map(|c| json!({"reason": "FieldManagerConflict", "message": format!("conflict with {}", c.manager), "field": c.path}))
            .collect();
        ApiError::new(409, "Conflict", ssa::conflict_message(&conflicts))
            .with_details(json!({"causes": causes}))
    };
    if let Some(old) = store.get(&t.key(t.name())).cloned() {
        check_rv(t, &old, &applied)?;
        let merged = ssa::apply(&old, &applied, &writer, force).map_err(to_conflict)?;
        Ok((200, commit(store, t, &old, merged, &opts, true)?))
    } else {
        {
            if t.status {
                return Err(ApiError::not_found(&t.rt, t.name()));
            }
            let mut base = json!({
                "apiVersion": t.rt.api_version(),
                "kind": t.rt.kind,
                "metadata": {"name": t.name()},
            });
            if let Some(ns) = &t.namespace {
                base["metadata"]["namespace"] = json!(ns);
            }
            let mut obj = ssa::apply(&base, &applied, &writer, force).map_err(to_conflict)?;
            let key = prepare_create(store, t, &mut obj)?;
            if opts.dry_run {
                return Ok((201, present(&t.rt, &obj)));
            }
            effects_for(store, &key, false);
            Ok((201, present(&t.rt, &store.put(key, obj, EventType::Added))))
        }
    }
}

// ---------------------------------------------------------------- scale

fn scale_of(obj: &Value) -> Value {
    let selector = obj
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default();
    let mut metadata = json!({});
    for k in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = obj.pointer(&format!("/metadata/{k}")) {
            metadata[k] = v.clone();
        }
    }
    json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": {"replicas": obj.pointer("/spec/replicas").cloned().unwrap_or(json!(1))},
        "status": {
            "replicas": obj.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
            "selector": selector,
        },
    })
}

/// `GET …/scale`: the `autoscaling/v1` Scale view of a workload.
pub(crate) fn get_scale(store: &Store, t: &Target) -> ApiResult<Value> {
    let obj = existing(store, t)?;
    Ok(scale_of(&obj))
}

/// `PUT`/`PATCH …/scale`: changes only `spec.replicas` of the workload.
pub(crate) fn write_scale(
    store: &mut Store,
    t: &Target,
    body: &[u8],
    patch_kind: Option<PatchKind>,
    opts: &WriteOpts,
) -> ApiResult<Value> {
    check_namespace(store, t, false)?;
    let old = existing(store, t)?;
    let current = scale_of(&old);
    let p = parse_json(body)?;
    let scale = match patch_kind {
        None => p,
        Some(kind) => {
            let mut s = current.clone();
            match kind {
                PatchKind::Json => patch::json_patch(&mut s, &p).map_err(|e| {
                    ApiError::new(
                        422,
                        "Invalid",
                        format!("the JSON patch could not be applied: {e}"),
                    )
                })?,
                _ => patch::merge_patch(&mut s, &p),
            }
            s
        }
    };
    check_rv(t, &old, &scale)?;
    let replicas = scale
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .filter(|r| *r >= 0)
        .ok_or_else(|| {
            ApiError::invalid(
                &t.rt,
                t.name(),
                "spec.replicas",
                "FieldValueInvalid",
                "Invalid value: must be a non-negative integer",
            )
        })?;
    let mut new = old.clone();
    new["spec"]["replicas"] = json!(replicas);
    let main = Target {
        status: false,
        ..t.clone()
    };
    let updated = commit(store, &main, &old, new, opts, false)?;
    Ok(scale_of(&updated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_decoding() {
        let q = Query::parse(Some("labelSelector=app%3Dweb%2Ctier+in+(a)&watch=1&x"));
        assert_eq!(q.get("labelSelector"), Some("app=web,tier in (a)"));
        assert!(q.flag("watch"));
        assert!(q.flag("x"));
        assert!(!q.flag("missing"));
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
    }

    #[test]
    fn continue_token_round_trip() {
        let key: ObjKey = (String::new(), "configmaps".into(), "ns".into(), "a".into());
        let tok = encode_continue(5, &key);
        assert_eq!(decode_continue(&tok), Some(("ns".into(), "a".into())));
        assert_eq!(decode_continue("zz"), None);
        assert_eq!(decode_continue("abc"), None);
    }
}
