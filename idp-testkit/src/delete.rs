//! Deletion: single objects (finalizers, preconditions), collections, ownerReference
//! cascades, CRD removal, and the namespace controller's termination sweep.

use serde_json::{Value, json};

use crate::api::{Filters, Query, Target, check_namespace, existing, parse_json, present};
use crate::meta::{self, meta_mut, str_at};
use crate::status::ApiError;
use crate::store::{Effect, EventType, ObjKey, Store};

type ApiResult<T> = Result<T, ApiError>;

/// Removes an object for good, then cascades: CRDs take their custom resources along,
/// dependents (by ownerReferences) are deleted in the background.
pub(crate) fn finish_delete(store: &mut Store, key: &ObjKey) -> Option<Value> {
    let gone = store.remove(key)?;
    if key.0 == "apiextensions.k8s.io" && key.1 == "customresourcedefinitions" {
        let group = str_at(&gone, "/spec/group").to_owned();
        let plural = str_at(&gone, "/spec/names/plural").to_owned();
        store.registry.unregister_crd(&key.3);
        let keys: Vec<ObjKey> = store
            .list(&group, &plural, None)
            .map(|(k, _)| k.clone())
            .collect();
        for k in keys {
            store.remove(&k);
        }
    }
    let uid = str_at(&gone, "/metadata/uid").to_owned();
    if !uid.is_empty() {
        for dep in store.dependents_of(&uid) {
            delete_key(store, &dep);
        }
    }
    Some(gone)
}

/// Deletes one object honouring finalizers: with finalizers it only gets a
/// deletionTimestamp. Returns the object as it is afterwards.
pub(crate) fn delete_key(store: &mut Store, key: &ObjKey) -> Option<Value> {
    let obj = store.get(key)?.clone();
    let has_finalizers = obj
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .is_some_and(|f| !f.is_empty());
    let is_namespace = key.0.is_empty() && key.1 == "namespaces";
    if has_finalizers || is_namespace {
        if obj.pointer("/metadata/deletionTimestamp").is_some() {
            return Some(obj);
        }
        let mut marked = obj;
        let m = meta_mut(&mut marked);
        m.insert("deletionTimestamp".into(), json!(meta::now()));
        m.insert("deletionGracePeriodSeconds".into(), json!(0));
        if is_namespace {
            marked["status"] = json!({"phase": "Terminating"});
            store.effects.push(Effect::NamespaceCascade(key.3.clone()));
        }
        return Some(store.put(key.clone(), marked, EventType::Modified));
    }
    finish_delete(store, key)
}

fn check_preconditions(t: &Target, obj: &Value, body: &[u8]) -> ApiResult<()> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let opts = parse_json(body)?;
    let want_rv = str_at(&opts, "/preconditions/resourceVersion");
    if !want_rv.is_empty() && want_rv != str_at(obj, "/metadata/resourceVersion") {
        return Err(ApiError::conflict(
            &t.rt,
            t.name(),
            &format!(
                "Precondition failed: ResourceVersion in precondition: {want_rv}, ResourceVersion in object meta: {}",
                str_at(obj, "/metadata/resourceVersion")
            ),
        ));
    }
    let want_uid = str_at(&opts, "/preconditions/uid");
    if !want_uid.is_empty() && want_uid != str_at(obj, "/metadata/uid") {
        return Err(ApiError::conflict(
            &t.rt,
            t.name(),
            &format!(
                "Precondition failed: UID in precondition: {want_uid}, UID in object meta: {}",
                str_at(obj, "/metadata/uid")
            ),
        ));
    }
    Ok(())
}

pub(crate) fn delete(
    store: &mut Store,
    t: &Target,
    body: &[u8],
    dry_run: bool,
) -> ApiResult<Value> {
    if t.status {
        return Err(ApiError::method_not_allowed(
            "delete is not supported on the status subresource",
        ));
    }
    check_namespace(store, t, false).map_err(|e| {
        if e.code == 404 {
            ApiError::not_found(&t.rt, t.name())
        } else {
            e
        }
    })?;
    let obj = existing(store, t)?;
    check_preconditions(t, &obj, body)?;
    if dry_run {
        return Ok(present(&t.rt, &obj));
    }
    let after = delete_key(store, &t.key(t.name())).unwrap_or(obj);
    Ok(present(&t.rt, &after))
}

pub(crate) fn delete_collection(store: &mut Store, t: &Target, q: &Query) -> ApiResult<Value> {
    let filters = Filters::from_query(q)?;
    check_namespace(store, t, false)?;
    let keys: Vec<ObjKey> = store
        .list(&t.rt.group, &t.rt.plural, t.namespace.as_deref())
        .filter(|(_, o)| filters.matches(o))
        .map(|(k, _)| k.clone())
        .collect();
    let dry_run = q.get("dryRun").is_some();
    let mut items = Vec::new();
    for k in keys {
        let result = if dry_run {
            store.get(&k).cloned()
        } else {
            delete_key(store, &k)
        };
        if let Some(o) = result {
            items.push(present(&t.rt, &o));
        }
    }
    Ok(json!({
        "kind": format!("{}List", t.rt.kind),
        "apiVersion": t.rt.api_version(),
        "metadata": {"resourceVersion": store.rv().to_string()},
        "items": items,
    }))
}

/// One step of a namespace deletion: deletes what is left in the namespace and removes
/// the namespace once it is empty. Returns true when the namespace is gone.
pub(crate) fn cascade_namespace(store: &mut Store, ns: &str) -> bool {
    let ns_key: ObjKey = (String::new(), "namespaces".into(), String::new(), ns.into());
    if store.get(&ns_key).is_none() {
        return true;
    }
    for k in store.keys_in_namespace(ns) {
        delete_key(store, &k);
    }
    if store.keys_in_namespace(ns).is_empty() {
        store.remove(&ns_key);
        return true;
    }
    false
}
