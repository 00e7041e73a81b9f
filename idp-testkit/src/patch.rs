//! The three client-side patch formats: JSON merge patch (RFC 7386), JSON patch
//! (RFC 6902) and a strategic merge patch that merges the common Kubernetes list-maps
//! (containers, env, ports, volumes, …) by their merge key.

use serde_json::{Map, Value};

/// The merge key of a list field, if the list is a list-map.
///
/// Known Kubernetes list-maps get their documented key (`volumeMounts` → `mountPath`,
/// container `ports` → `containerPort`, service `ports` → `port`); any other list whose
/// items are all objects with a string `name` is treated as keyed by `name`.
pub(crate) fn list_map_key(field: &str, items: &[Value]) -> Option<&'static str> {
    if items.is_empty() || !items.iter().all(Value::is_object) {
        return None;
    }
    let all_have = |k: &str| items.iter().all(|i| i.get(k).is_some_and(|v| !v.is_null()));
    match field {
        "volumeMounts" | "volumeDevices" if all_have("mountPath") => Some("mountPath"),
        "volumeDevices" if all_have("devicePath") => Some("devicePath"),
        "ports" if all_have("containerPort") => Some("containerPort"),
        "ports" if all_have("port") => Some("port"),
        "finalizers" | "args" | "command" => None,
        "ownerReferences" if all_have("uid") => Some("uid"),
        _ if items
            .iter()
            .all(|i| i.get("name").is_some_and(Value::is_string)) =>
        {
            Some("name")
        }
        _ => None,
    }
}

/// Applies an RFC 7386 JSON merge patch: objects merge recursively, `null` deletes, and
/// everything else (including arrays) replaces.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target_map) = target {
        for (k, v) in patch_map {
            if v.is_null() {
                target_map.remove(k);
            } else {
                merge_patch(target_map.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

/// Applies a strategic merge patch: like a merge patch, but list-maps merge item by item
/// by their merge key (an item `{"name": "x", "$patch": "delete"}` removes item `x`), and
/// a `$retainKeys`/`$patch: replace` directive on an object replaces it.
pub(crate) fn strategic_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replaced = patch.clone();
        if let Some(m) = replaced.as_object_mut() {
            m.remove("$patch");
        }
        *target = replaced;
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else {
        return;
    };
    for (k, v) in patch_map {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            target_map.remove(k);
            continue;
        }
        match v {
            Value::Array(patch_items) => {
                let existing = target_map.get(k).and_then(Value::as_array).cloned();
                let key = list_map_key(k, patch_items).or_else(|| {
                    existing
                        .as_deref()
                        .and_then(|e| list_map_key(k, e))
                        .filter(|key| patch_items.iter().all(|i| i.get(*key).is_some()))
                });
                if let (Some(key), Some(mut items)) = (key, existing) {
                    merge_list_map(&mut items, patch_items, key);
                    target_map.insert(k.clone(), Value::Array(items));
                } else {
                    {
                        let cleaned: Vec<Value> = patch_items
                            .iter()
                            .filter(|i| i.get("$patch").is_none())
                            .cloned()
                            .collect();
                        target_map.insert(k.clone(), Value::Array(cleaned));
                    }
                }
            }
            _ => strategic_merge_patch(target_map.entry(k.clone()).or_insert(Value::Null), v),
        }
    }
}

fn merge_list_map(items: &mut Vec<Value>, patch_items: &[Value], key: &str) {
    for p in patch_items {
        let Some(kv) = p.get(key) else { continue };
        let pos = items.iter().position(|i| i.get(key) == Some(kv));
        let delete = p.get("$patch").and_then(Value::as_str) == Some("delete");
        match (pos, delete) {
            (Some(i), true) => {
                items.remove(i);
            }
            (None, true) => {}
            (Some(i), false) => strategic_merge_patch(&mut items[i], p),
            (None, false) => {
                let mut fresh = Value::Null;
                strategic_merge_patch(&mut fresh, p);
                items.push(fresh);
            }
        }
    }
}

/// Applies an RFC 6902 JSON patch. Returns a message naming the failing operation.
pub(crate) fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops
        .as_array()
        .ok_or("a JSON patch must be an array of operations")?;
    for (i, op) in ops.iter().enumerate() {
        apply_op(target, op).map_err(|e| format!("JSON patch operation {i}: {e}"))?;
    }
    Ok(())
}

fn field<'a>(op: &'a Value, name: &str) -> Result<&'a str, String> {
    op.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string field {name:?}"))
}

fn apply_op(target: &mut Value, op: &Value) -> Result<(), String> {
    let kind = field(op, "op")?;
    let path = field(op, "path")?;
    match kind {
        "add" => add(target, path, value_of(op)?.clone()),
        "remove" => remove(target, path).map(drop),
        "replace" => {
            remove(target, path)?;
            add(target, path, value_of(op)?.clone())
        }
        "move" => {
            let from = field(op, "from")?;
            let v = remove(target, from)?;
            add(target, path, v)
        }
        "copy" => {
            let from = field(op, "from")?;
            let v = target
                .pointer(from)
                .cloned()
                .ok_or_else(|| format!("path {from:?} does not exist"))?;
            add(target, path, v)
        }
        "test" => {
            let actual = target.pointer(path);
            if actual == Some(value_of(op)?) {
                Ok(())
            } else {
                Err(format!("test failed: value at {path:?} differs"))
            }
        }
        other => Err(format!("unknown op {other:?}")),
    }
}

fn value_of(op: &Value) -> Result<&Value, String> {
    op.get("value")
        .ok_or_else(|| "missing field \"value\"".to_owned())
}

fn split_pointer(path: &str) -> Result<(String, String), String> {
    if path.is_empty() {
        return Ok((String::new(), String::new()));
    }
    let (parent, last) = path
        .rsplit_once('/')
        .ok_or_else(|| format!("invalid JSON pointer {path:?}: must start with '/'"))?;
    Ok((
        parent.to_owned(),
        last.replace("~1", "/").replace("~0", "~"),
    ))
}

fn add(target: &mut Value, path: &str, value: Value) -> Result<(), String> {
    if path.is_empty() {
        *target = value;
        return Ok(());
    }
    let (parent, last) = split_pointer(path)?;
    let container = target
        .pointer_mut(&parent)
        .ok_or_else(|| format!("path {parent:?} does not exist"))?;
    match container {
        Value::Object(m) => {
            m.insert(last, value);
            Ok(())
        }
        Value::Array(a) => {
            if last == "-" {
                a.push(value);
                return Ok(());
            }
            let idx: usize = last
                .parse()
                .map_err(|_| format!("invalid array index {last:?}"))?;
            if idx > a.len() {
                return Err(format!("array index {idx} out of bounds"));
            }
            a.insert(idx, value);
            Ok(())
        }
        _ => Err(format!("path {parent:?} is not a container")),
    }
}

fn remove(target: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = split_pointer(path)?;
    let container = target
        .pointer_mut(&parent)
        .ok_or_else(|| format!("path {parent:?} does not exist"))?;
    match container {
        Value::Object(m) => m
            .remove(&last)
            .ok_or_else(|| format!("path {path:?} does not exist")),
        Value::Array(a) => {
            let idx: usize = last
                .parse()
                .map_err(|_| format!("invalid array index {last:?}"))?;
            if idx >= a.len() {
                return Err(format!("array index {idx} out of bounds"));
            }
            Ok(a.remove(idx))
        }
        _ => Err(format!("path {parent:?} is not a container")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            "[a-z/~01-]{0,6}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z$]{1,4}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn patches_never_panic(mut target in arb_json(), patch in arb_json()) {
            let mut t2 = target.clone();
            let mut t3 = target.clone();
            merge_patch(&mut target, &patch);
            strategic_merge_patch(&mut t2, &patch);
            let _ = json_patch(&mut t3, &patch);
        }

        #[test]
        fn merge_patch_with_itself_is_idempotent(target in arb_json(), patch in arb_json()) {
            let mut once = target.clone();
            merge_patch(&mut once, &patch);
            let mut twice = once.clone();
            merge_patch(&mut twice, &patch);
            prop_assert_eq!(once, twice);
        }
    }

    #[test]
    fn merge_patch_rfc7386() {
        let mut t = json!({"a": "b", "c": {"d": "e", "f": "g"}, "l": [1, 2]});
        merge_patch(&mut t, &json!({"a": "z", "c": {"f": null}, "l": [3]}));
        assert_eq!(t, json!({"a": "z", "c": {"d": "e"}, "l": [3]}));
    }

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut t = json!({"spec": {"containers": [
            {"name": "app", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
            {"name": "side", "image": "s:1"}
        ]}});
        strategic_merge_patch(
            &mut t,
            &json!({"spec": {"containers": [
                {"name": "app", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
                {"name": "side", "$patch": "delete"},
                {"name": "new", "image": "n:1"}
            ]}}),
        );
        assert_eq!(
            t,
            json!({"spec": {"containers": [
                {"name": "app", "image": "a:2", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]},
                {"name": "new", "image": "n:1"}
            ]}})
        );
    }

    #[test]
    fn strategic_replaces_plain_lists() {
        let mut t = json!({"args": ["a", "b"]});
        strategic_merge_patch(&mut t, &json!({"args": ["c"]}));
        assert_eq!(t, json!({"args": ["c"]}));
    }

    #[test]
    fn json_patch_ops() {
        let mut t = json!({"a": {"b": 1}, "l": [1, 2, 3]});
        json_patch(
            &mut t,
            &json!([
                {"op": "add", "path": "/a/c", "value": 2},
                {"op": "remove", "path": "/l/0"},
                {"op": "replace", "path": "/a/b", "value": 5},
                {"op": "add", "path": "/l/-", "value": 9},
                {"op": "test", "path": "/a/c", "value": 2},
                {"op": "copy", "from": "/a/c", "path": "/d"},
                {"op": "move", "from": "/d", "path": "/e"}
            ]),
        )
        .unwrap();
        assert_eq!(t, json!({"a": {"b": 5, "c": 2}, "l": [2, 3, 9], "e": 2}));
        assert!(json_patch(&mut t, &json!([{"op": "test", "path": "/e", "value": 3}])).is_err());
        assert!(json_patch(&mut t, &json!([{"op": "remove", "path": "/nope"}])).is_err());
        assert!(json_patch(&mut t, &json!({"op": "add"})).is_err());
    }

    #[test]
    fn list_map_keys() {
        assert_eq!(
            list_map_key("containers", &[json!({"name": "a"})]),
            Some("name")
        );
        assert_eq!(
            list_map_key("ports", &[json!({"containerPort": 80})]),
            Some("containerPort")
        );
        assert_eq!(
            list_map_key("ports", &[json!({"port": 80, "name": "http"})]),
            Some("port")
        );
        assert_eq!(list_map_key("args", &[json!("x")]), None);
    }
}
