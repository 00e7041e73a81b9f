//! Server-side apply and field ownership (`metadata.managedFields`).
//!
//! Every write records which manager owns which fields, as sets of paths encoded in the
//! `FieldsV1` format (`f:spec` → `f:replicas`, list-map items as `k:{"name":"x"}`).
//! An apply conflicts when another manager owns a field with a different value; `force`
//! takes the field over; fields a manager stops applying are removed unless another
//! manager still owns them. Non-apply writes (`Update` operations) take over the fields
//! whose values they change.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

use crate::patch::list_map_key;

/// One step of a field path.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Elem {
    /// A map field.
    Field(String),
    /// A list-map item: key field name and the JSON encoding of its value.
    Key(String, String),
}

pub(crate) type Path = Vec<Elem>;
pub(crate) type FieldSet = BTreeSet<Path>;

/// Renders a path the way the real server does in conflict messages: `.spec.replicas`,
/// `.spec.template.spec.containers[name="app"].image`.
pub(crate) fn display_path(path: &[Elem]) -> String {
    let mut s = String::new();
    for e in path {
        match e {
            Elem::Field(f) => {
                s.push('.');
                s.push_str(f);
            }
            Elem::Key(k, v) => {
                s.push('[');
                s.push_str(k);
                s.push('=');
                s.push_str(v);
                s.push(']');
            }
        }
    }
    s
}

/// Which part of an object a write covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
    /// The main resource of a kind without a status subresource: everything.
    All,
    /// The main resource of a kind with a status subresource: everything but `.status`.
    Main,
    /// The `/status` subresource: only `.status`.
    Status,
}

const OWNED_METADATA: &[&str] = &["labels", "annotations", "finalizers", "ownerReferences"];

/// The set of field paths an object sets within `scope`.
pub(crate) fn field_set(obj: &Value, scope: Scope) -> FieldSet {
    let mut out = FieldSet::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (k, v) in map {
        let include = match k.as_str() {
            "apiVersion" | "kind" => false,
            "status" => scope != Scope::Main,
            _ => scope != Scope::Status,
        };
        if !include {
            continue;
        }
        let path = vec![Elem::Field(k.clone())];
        if k == "metadata" {
            if let Some(meta) = v.as_object() {
                for key in OWNED_METADATA {
                    if let Some(child) = meta.get(*key) {
                        let mut p = path.clone();
                        p.push(Elem::Field((*key).to_owned()));
                        walk_value(key, child, p, &mut out);
                    }
                }
            }
            continue;
        }
        walk_value(k, v, path, &mut out);
    }
    out
}

fn walk_value(name: &str, v: &Value, path: Path, out: &mut FieldSet) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, c) in m {
                let mut p = path.clone();
                p.push(Elem::Field(k.clone()));
                walk_value(k, c, p, out);
            }
        }
        Value::Array(items) => match list_map_key(name, items) {
            Some(key) => {
                for item in items {
                    let Some(kv) = item.get(key) else { continue };
                    let mut p = path.clone();
                    p.push(Elem::Key(key.to_owned(), kv.to_string()));
                    out.insert(p.clone());
                    walk_value("", item, p, out);
                }
            }
            None => {
                out.insert(path);
            }
        },
        _ => {
            out.insert(path);
        }
    }
}

/// Whether a list item's key value has this JSON encoding.
fn key_matches(value: &Value, encoded: &str) -> bool {
    serde_json::from_str::<Value>(encoded).is_ok_and(|decoded| decoded == *value)
}

/// The value at `path`, if present.
pub(crate) fn value_at<'a>(obj: &'a Value, path: &[Elem]) -> Option<&'a Value> {
    let mut cur = obj;
    for e in path {
        cur = match e {
            Elem::Field(f) => cur.get(f)?,
            Elem::Key(k, v) => cur
                .as_array()?
                .iter()
                .find(|i| i.get(k).is_some_and(|x| key_matches(x, v)))?,
        };
    }
    Some(cur)
}

fn value_at_mut<'a>(obj: &'a mut Value, path: &[Elem]) -> Option<&'a mut Value> {
    let mut cur = obj;
    for e in path {
        cur = match e {
            Elem::Field(f) => cur.get_mut(f)?,
            Elem::Key(k, v) => cur
                .as_array_mut()?
                .iter_mut()
                .find(|i| i.get(k).is_some_and(|x| key_matches(x, v)))?,
        };
    }
    Some(cur)
}

/// Removes the field or list item at `path`, if present.
fn remove_at(obj: &mut Value, path: &[Elem]) {
    let Some((last, parent)) = path.split_last() else {
        return;
    };
    let Some(container) = value_at_mut(obj, parent) else {
        return;
    };
    match last {
        Elem::Field(f) => {
            if let Some(m) = container.as_object_mut() {
                m.remove(f);
            }
        }
        Elem::Key(k, v) => {
            if let Some(a) = container.as_array_mut() {
                a.retain(|i| i.get(k).is_none_or(|x| !key_matches(x, v)));
            }
        }
    }
}

/// Encodes a field set as a `FieldsV1` tree.
pub(crate) fn to_fields_v1(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        insert_path(&mut root, path);
    }
    Value::Object(root)
}

fn elem_key(e: &Elem) -> String {
    match e {
        Elem::Field(f) => format!("f:{f}"),
        Elem::Key(k, v) => {
            let value: Value = serde_json::from_str(v).unwrap_or(Value::Null);
            format!("k:{}", json!({ k: value }))
        }
    }
}

fn insert_path(node: &mut Map<String, Value>, path: &[Elem]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let child = node
        .entry(elem_key(first))
        .or_insert_with(|| Value::Object(Map::new()));
    if !child.is_object() {
        *child = Value::Object(Map::new());
    }
    if let Value::Object(m) = child {
        if rest.is_empty() {
            if matches!(first, Elem::Key(..)) {
                m.insert(".".to_owned(), json!({}));
            }
        } else {
            insert_path(m, rest);
        }
    }
}

/// Decodes a `FieldsV1` tree into a field set (unknown key forms are skipped).
pub(crate) fn from_fields_v1(tree: &Value) -> FieldSet {
    let mut out = FieldSet::new();
    decode(tree, &mut Vec::new(), &mut out);
    out
}

fn decode(node: &Value, path: &mut Path, out: &mut FieldSet) {
    let Some(m) = node.as_object() else { return };
    for (k, child) in m {
        let elem = if let Some(f) = k.strip_prefix("f:") {
            Elem::Field(f.to_owned())
        } else if let Some(key) = k.strip_prefix("k:") {
            let Ok(Value::Object(km)) = serde_json::from_str::<Value>(key) else {
                continue;
            };
            let Some((kf, kv)) = km.into_iter().next() else {
                continue;
            };
            Elem::Key(kf, kv.to_string())
        } else {
            continue;
        };
        path.push(elem);
        let children = child.as_object();
        if children.is_none_or(|c| c.is_empty() || c.contains_key(".")) {
            out.insert(path.clone());
        }
        decode(child, path, out);
        path.pop();
    }
}

/// One `managedFields` entry.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Entry {
    pub(crate) manager: String,
    pub(crate) operation: String,
    pub(crate) api_version: String,
    pub(crate) time: String,
    pub(crate) subresource: Option<String>,
    pub(crate) fields: FieldSet,
}

impl Entry {
    fn is(&self, manager: &str, operation: &str, subresource: Option<&str>) -> bool {
        self.manager == manager
            && self.operation == operation
            && self.subresource.as_deref() == subresource
    }

    /// How conflict messages name the manager.
    pub(crate) fn display(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s = format!("{s} with subresource {sub:?}");
        }
        if self.operation == "Update" {
            s = format!("{s} using {}", self.api_version);
        }
        s
    }
}

/// The entries recorded on an object.
pub(crate) fn entries_of(obj: &Value) -> Vec<Entry> {
    let Some(list) = obj
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|e| {
            let s = |k: &str| e.get(k).and_then(Value::as_str).map(ToOwned::to_owned);
            Some(Entry {
                manager: s("manager")?,
                operation: s("operation")?,
                api_version: s("apiVersion").unwrap_or_default(),
                time: s("time").unwrap_or_default(),
                subresource: s("subresource"),
                fields: e.get("fieldsV1").map(from_fields_v1).unwrap_or_default(),
            })
        })
        .collect()
}

/// Writes entries into `metadata.managedFields`, dropping empty ones.
pub(crate) fn set_entries(obj: &mut Value, entries: &[Entry]) {
    let list: Vec<Value> = entries
        .iter()
        .filter(|e| !e.fields.is_empty())
        .map(|e| {
            let mut v = json!({
                "manager": e.manager,
                "operation": e.operation,
                "apiVersion": e.api_version,
                "time": e.time,
                "fieldsType": "FieldsV1",
                "fieldsV1": to_fields_v1(&e.fields),
            });
            if let Some(sub) = &e.subresource {
                v["subresource"] = json!(sub);
            }
            v
        })
        .collect();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        if list.is_empty() {
            meta.remove("managedFields");
        } else {
            meta.insert("managedFields".to_owned(), Value::Array(list));
        }
    }
}

/// Who is writing and how.
#[derive(Clone, Debug)]
pub(crate) struct Writer<'a> {
    pub(crate) manager: &'a str,
    pub(crate) api_version: &'a str,
    pub(crate) scope: Scope,
    pub(crate) now: &'a str,
}

impl Writer<'_> {
    fn subresource(&self) -> Option<&'static str> {
        (self.scope == Scope::Status).then_some("status")
    }
}

/// A field another manager owns with a different value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Conflict {
    pub(crate) manager: String,
    pub(crate) path: String,
}

/// Formats conflicts like the real server's apply conflict message.
pub(crate) fn conflict_message(conflicts: &[Conflict]) -> String {
    let n = conflicts.len();
    let plural = if n == 1 { "" } else { "s" };
    let body = if let [only] = conflicts {
        format!("conflict with {}: {}", only.manager, only.path)
    } else {
        let mut managers: Vec<&str> = conflicts.iter().map(|c| c.manager.as_str()).collect();
        managers.sort_unstable();
        managers.dedup();
        let mut lines = Vec::new();
        for m in managers {
            lines.push(format!("conflicts with {m}:"));
            for c in conflicts.iter().filter(|c| c.manager == m) {
                lines.push(format!("- {}", c.path));
            }
        }
        lines.join("\n")
    };
    format!("Apply failed with {n} conflict{plural}: {body}")
}

/// Server-side apply of `applied` onto `existing` (an empty object for creates).
/// Returns the merged object with updated `managedFields`, or the conflicts.
pub(crate) fn apply(
    existing: &Value,
    applied: &Value,
    writer: &Writer<'_>,
    force: bool,
) -> Result<Value, Vec<Conflict>> {
    let sub = writer.subresource();
    let new_fields = field_set(applied, writer.scope);
    let mut entries = entries_of(existing);
    let mut conflicts = Vec::new();
    for e in &mut entries {
        if e.is(writer.manager, "Apply", sub) {
            continue;
        }
        let clashing: Vec<Path> = e
            .fields
            .intersection(&new_fields)
            .filter(|p| !matches!(p.last(), Some(Elem::Key(..))))
            .filter(|p| value_at(existing, p) != value_at(applied, p))
            .cloned()
            .collect();
        for p in clashing {
            conflicts.push(Conflict {
                manager: e.display(),
                path: display_path(&p),
            });
            if force {
                e.fields.remove(&p);
            }
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    let old_mine: FieldSet = entries
        .iter()
        .find(|e| e.is(writer.manager, "Apply", sub))
        .map(|e| e.fields.clone())
        .unwrap_or_default();

    let mut merged = existing.clone();
    merge_applied(&mut merged, applied, writer.scope);

    let others: Vec<&Path> = entries
        .iter()
        .filter(|e| !e.is(writer.manager, "Apply", sub))
        .flat_map(|e| e.fields.iter())
        .collect();
    let mut dropped: Vec<&Path> = old_mine.difference(&new_fields).collect();
    dropped.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in dropped {
        let still_owned = others.iter().any(|q| q.starts_with(p) || p.starts_with(q))
            || new_fields.iter().any(|q| q.starts_with(p));
        if !still_owned {
            remove_at(&mut merged, p);
        }
    }

    let previous_time = entries
        .iter()
        .find(|e| e.is(writer.manager, "Apply", sub))
        .map(|e| e.time.clone());
    entries.retain(|e| !e.is(writer.manager, "Apply", sub));
    entries.push(Entry {
        manager: writer.manager.to_owned(),
        operation: "Apply".to_owned(),
        api_version: writer.api_version.to_owned(),
        time: writer.now.to_owned(),
        subresource: sub.map(ToOwned::to_owned),
        fields: new_fields.clone(),
    });
    set_entries(&mut merged, &entries);

    // An identical apply is a no-op: keep the old timestamp so nothing changes.
    if let Some(t) = previous_time
        && strip_managed(&merged) == strip_managed(existing)
        && old_mine == new_fields
        && conflicts.is_empty()
    {
        if let Some(e) = entries.last_mut() {
            e.time = t;
        }
        set_entries(&mut merged, &entries);
    }
    Ok(merged)
}

fn strip_managed(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        m.remove("managedFields");
    }
    o
}

/// Merges an applied configuration into an object (list-maps by key, other lists
/// replaced), within the scope of the write.
fn merge_applied(target: &mut Value, applied: &Value, scope: Scope) {
    let Some(src) = applied.as_object() else {
        return;
    };
    if !target.is_object() {
        *target = json!({});
    }
    let Some(dst) = target.as_object_mut() else {
        return;
    };
    for (k, v) in src {
        match k.as_str() {
            "status" if scope == Scope::Main => {}
            "status" => merge_value(dst.entry(k.clone()).or_insert(Value::Null), v, k),
            _ if scope == Scope::Status => {}
            "metadata" => {
                let meta = dst.entry("metadata").or_insert_with(|| json!({}));
                for key in OWNED_METADATA {
                    if let Some(mv) = v.get(*key)
                        && let Some(mm) = meta.as_object_mut()
                    {
                        merge_value(mm.entry(*key).or_insert(Value::Null), mv, key);
                    }
                }
            }
            _ => merge_value(dst.entry(k.clone()).or_insert(Value::Null), v, k),
        }
    }
}

fn merge_value(target: &mut Value, applied: &Value, name: &str) {
    match applied {
        Value::Object(src) if target.is_object() => {
            if let Some(dst) = target.as_object_mut() {
                for (k, v) in src {
                    merge_value(dst.entry(k.clone()).or_insert(Value::Null), v, k);
                }
            }
        }
        Value::Array(items) => {
            let key = list_map_key(name, items);
            match (key, target.as_array_mut()) {
                (Some(key), Some(existing)) => {
                    for item in items {
                        let kv = item.get(key);
                        if let Some(slot) = existing.iter_mut().find(|e| e.get(key) == kv) {
                            merge_value(slot, item, "");
                        } else {
                            existing.push(item.clone());
                        }
                    }
                }
                _ => *target = applied.clone(),
            }
        }
        _ => *target = applied.clone(),
    }
}

/// Records a non-apply write (create, update, patch): `writer` takes over the fields whose
/// values changed; removed fields leave every manager. Updates `new`'s managedFields.
pub(crate) fn track_update(old: Option<&Value>, new: &mut Value, writer: &Writer<'_>) {
    let sub = writer.subresource();
    let null = Value::Null;
    let old_obj = old.unwrap_or(&null);
    let old_fields = field_set(old_obj, writer.scope);
    let new_fields = field_set(new, writer.scope);
    let changed: FieldSet = new_fields
        .iter()
        .filter(|p| {
            if matches!(p.last(), Some(Elem::Key(..))) {
                value_at(old_obj, p).is_none()
            } else {
                value_at(old_obj, p) != value_at(new, p)
            }
        })
        .cloned()
        .collect();
    let removed: Vec<&Path> = old_fields.difference(&new_fields).collect();
    let mut entries = old.map(entries_of).unwrap_or_default();
    if changed.is_empty() && removed.is_empty() {
        set_entries(new, &entries);
        return;
    }
    for e in &mut entries {
        e.fields
            .retain(|p| !changed.contains(p) && !removed.iter().any(|r| p.starts_with(r)));
    }
    if let Some(mine) = entries
        .iter_mut()
        .find(|e| e.is(writer.manager, "Update", sub))
    {
        mine.fields.extend(changed);
        writer.now.clone_into(&mut mine.time);
        writer.api_version.clone_into(&mut mine.api_version);
    } else {
        entries.push(Entry {
            manager: writer.manager.to_owned(),
            operation: "Update".to_owned(),
            api_version: writer.api_version.to_owned(),
            time: writer.now.to_owned(),
            subresource: sub.map(ToOwned::to_owned),
            fields: changed,
        });
    }
    set_entries(new, &entries);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(manager: &str) -> Writer<'_> {
        Writer {
            manager,
            api_version: "apps/v1",
            scope: Scope::Main,
            now: "2025-01-01T00:00:00Z",
        }
    }

    fn deploy(replicas: i64, image: &str) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "labels": {"app": "web"}},
               "spec": {"replicas": replicas, "template": {"spec": {"containers": [
                   {"name": "app", "image": image}]}}}})
    }

    #[test]
    fn fields_v1_round_trip() {
        let set = field_set(&deploy(2, "a:1"), Scope::Main);
        let tree = to_fields_v1(&set);
        assert!(
            tree.pointer("/f:spec/f:template/f:spec/f:containers/k:{\"name\":\"app\"}/f:image")
                .is_some()
        );
        assert!(tree.pointer("/f:metadata/f:labels/f:app").is_some());
        assert_eq!(from_fields_v1(&tree), set);
    }

    #[test]
    fn conflict_then_force() {
        let base = apply(&json!({}), &deploy(2, "a:1"), &w("alice"), false).unwrap();
        let mut cfg = deploy(3, "a:1");
        cfg["spec"].as_object_mut().unwrap().remove("template");
        let err = apply(&base, &cfg, &w("bob"), false).unwrap_err();
        assert_eq!(
            conflict_message(&err),
            "Apply failed with 1 conflict: conflict with \"alice\": .spec.replicas"
        );
        let forced = apply(&base, &cfg, &w("bob"), true).unwrap();
        assert_eq!(forced["spec"]["replicas"], 3);
        let alice = entries_of(&forced)
            .into_iter()
            .find(|e| e.manager == "alice")
            .unwrap();
        assert!(!alice.fields.contains(&vec![
            Elem::Field("spec".into()),
            Elem::Field("replicas".into())
        ]));
    }

    #[test]
    fn same_value_is_shared_not_conflicting() {
        let base = apply(&json!({}), &deploy(2, "a:1"), &w("alice"), false).unwrap();
        assert!(apply(&base, &deploy(2, "a:1"), &w("bob"), false).is_ok());
    }

    #[test]
    fn dropped_fields_are_removed_unless_shared() {
        let base = apply(&json!({}), &deploy(2, "a:1"), &w("alice"), false).unwrap();
        let mut cfg = deploy(2, "a:1");
        cfg["metadata"].as_object_mut().unwrap().remove("labels");
        let out = apply(&base, &cfg, &w("alice"), false).unwrap();
        assert!(out.pointer("/metadata/labels/app").is_none());
    }

    #[test]
    fn identical_apply_is_a_no_op() {
        let base = apply(&json!({}), &deploy(2, "a:1"), &w("alice"), false).unwrap();
        let later = Writer {
            now: "2030-01-01T00:00:00Z",
            ..w("alice")
        };
        let again = apply(&base, &deploy(2, "a:1"), &later, false).unwrap();
        assert_eq!(again, base);
    }

    #[test]
    fn update_takes_over_changed_fields() {
        let base = apply(&json!({}), &deploy(2, "a:1"), &w("alice"), false).unwrap();
        let mut new = base.clone();
        new["spec"]["replicas"] = json!(5);
        track_update(Some(&base), &mut new, &w("kubectl-scale"));
        let entries = entries_of(&new);
        let scale = entries
            .iter()
            .find(|e| e.manager == "kubectl-scale")
            .unwrap();
        assert_eq!(scale.operation, "Update");
        let err = apply(&new, &deploy(2, "a:1"), &w("alice"), false).unwrap_err();
        assert_eq!(err[0].manager, "\"kubectl-scale\" using apps/v1");
    }
}
