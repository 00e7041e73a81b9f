//! RFC 6902 JSON Patch: the difference between an object before and after mutation, as
//! a mutating webhook returns it. See [`JsonPatch`].

use serde::Serialize;
use serde_json::{Map, Value};

/// How deep [`JsonPatch::diff`] recurses before it replaces a whole subtree instead (the
/// patch stays exact, only coarser).
const MAX_DIFF_DEPTH: usize = 256;

/// One operation of a [`JsonPatch`].
///
/// ```
/// use idp_policy::admission::PatchOperation;
/// let op = PatchOperation::Remove { path: "/a".into() };
/// assert_eq!(serde_json::to_value(&op).unwrap(), serde_json::json!({"op": "remove", "path": "/a"}));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum PatchOperation {
    /// Add `value` at `path` (insert into an array, set a new key).
    Add {
        /// JSON Pointer.
        path: String,
        /// The new value.
        value: Value,
    },
    /// Remove what is at `path`.
    Remove {
        /// JSON Pointer.
        path: String,
    },
    /// Replace what is at `path` with `value`.
    Replace {
        /// JSON Pointer.
        path: String,
        /// The new value.
        value: Value,
    },
}

/// An RFC 6902 JSON Patch: a list of operations applied in order.
///
/// [`JsonPatch::diff`] walks both documents together:
///
/// - mappings: a `remove` for each key that went away, a recursive diff for each key in
///   both, an `add` for each new key (keys in their map order);
/// - arrays, **index by index**: a recursive diff for every index both have, then `add`s
///   at the end for the new elements (in order) or `remove`s of the surplus from the
///   back (so every index is valid when its operation is applied). Appending an env var
///   or a sidecar container therefore gives one small `add`; inserting at the front
///   gives a `replace` per shifted element — longer, still exact;
/// - anything else that differs: a `replace`.
///
/// Paths are JSON Pointers (RFC 6901) with `~` written `~0` and `/` written `~1`, so a
/// label key like `app.kubernetes.io/name` becomes `app.kubernetes.io~1name`. Applying
/// the patch to the first document gives exactly the second one.
///
/// ```
/// use idp_policy::admission::JsonPatch;
/// let before = serde_json::json!({"metadata": {"labels": {"a": "1"}}});
/// let after = serde_json::json!({"metadata": {"labels": {"a": "1", "app.kubernetes.io/name": "cart"}}});
/// let patch = JsonPatch::diff(&before, &after);
/// assert_eq!(patch.to_json(), r#"[{"op":"add","path":"/metadata/labels/app.kubernetes.io~1name","value":"cart"}]"#);
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[serde(transparent)]
pub struct JsonPatch {
    operations: Vec<PatchOperation>,
}

impl JsonPatch {
    /// The operations that turn `before` into `after`. See [`JsonPatch`] for how.
    ///
    /// ```
    /// let v = serde_json::json!({"a": [1, 2]});
    /// assert!(idp_policy::admission::JsonPatch::diff(&v, &v).is_empty());
    /// ```
    pub fn diff(before: &Value, after: &Value) -> Self {
        let mut patch = Self::default();
        let mut path = String::new();
        diff_into(before, after, &mut path, 0, &mut patch.operations);
        patch
    }

    /// The operations, in order.
    ///
    /// ```
    /// let p = idp_policy::admission::JsonPatch::diff(&serde_json::json!(1), &serde_json::json!(2));
    /// assert_eq!(p.operations().len(), 1);
    /// ```
    pub fn operations(&self) -> &[PatchOperation] {
        &self.operations
    }

    /// Whether there is nothing to do.
    ///
    /// ```
    /// assert!(idp_policy::admission::JsonPatch::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.operations.is_empty()
    }

    /// Number of operations.
    ///
    /// ```
    /// assert_eq!(idp_policy::admission::JsonPatch::default().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.operations.len()
    }

    /// The patch as compact JSON (an array of operations).
    ///
    /// ```
    /// assert_eq!(idp_policy::admission::JsonPatch::default().to_json(), "[]");
    /// ```
    pub fn to_json(&self) -> String {
        // Serialising strings and `Value`s into a String cannot fail.
        serde_json::to_string(&self.operations).unwrap_or_else(|_| "[]".to_owned())
    }
}

/// Append one reference token to a JSON Pointer, escaping `~` as `~0` and `/` as `~1`
/// (RFC 6901 section 3).
///
/// ```
/// let mut p = String::from("/metadata/labels");
/// idp_policy::admission::push_pointer_token(&mut p, "a~b/c");
/// assert_eq!(p, "/metadata/labels/a~0b~1c");
/// ```
pub fn push_pointer_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    for ch in token.chars() {
        match ch {
            '~' => pointer.push_str("~0"),
            '/' => pointer.push_str("~1"),
            c => pointer.push(c),
        }
    }
}

fn diff_into(
    before: &Value,
    after: &Value,
    path: &mut String,
    depth: usize,
    out: &mut Vec<PatchOperation>,
) {
    if before == after {
        return;
    }
    if depth >= MAX_DIFF_DEPTH {
        out.push(PatchOperation::Replace {
            path: path.clone(),
            value: after.clone(),
        });
        return;
    }
    match (before, after) {
        (Value::Object(a), Value::Object(b)) => diff_maps(a, b, path, depth, out),
        (Value::Array(a), Value::Array(b)) => {
            let len = path.len();
            let common = a.len().min(b.len());
            for i in 0..common {
                push_pointer_token(path, &i.to_string());
                diff_into(&a[i], &b[i], path, depth + 1, out);
                path.truncate(len);
            }
            for (i, value) in b.iter().enumerate().skip(common) {
                push_pointer_token(path, &i.to_string());
                out.push(PatchOperation::Add {
                    path: path.clone(),
                    value: value.clone(),
                });
                path.truncate(len);
            }
            for i in (common..a.len()).rev() {
                push_pointer_token(path, &i.to_string());
                out.push(PatchOperation::Remove { path: path.clone() });
                path.truncate(len);
            }
        }
        _ => out.push(PatchOperation::Replace {
            path: path.clone(),
            value: after.clone(),
        }),
    }
}

fn diff_maps(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    path: &mut String,
    depth: usize,
    out: &mut Vec<PatchOperation>,
) {
    let len = path.len();
    for key in a.keys().filter(|k| !b.contains_key(*k)) {
        push_pointer_token(path, key);
        out.push(PatchOperation::Remove { path: path.clone() });
        path.truncate(len);
    }
    for (key, new) in b {
        push_pointer_token(path, key);
        match a.get(key) {
            Some(old) => diff_into(old, new, path, depth + 1, out),
            None => out.push(PatchOperation::Add {
                path: path.clone(),
                value: new.clone(),
            }),
        }
        path.truncate(len);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arrays_grow_and_shrink_at_the_end() {
        let p = JsonPatch::diff(&json!({"l": [1, 2, 3]}), &json!({"l": [1, 9]}));
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!([{"op": "replace", "path": "/l/1", "value": 9}, {"op": "remove", "path": "/l/2"}])
        );
        let p = JsonPatch::diff(&json!([1]), &json!([1, 2, 3]));
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!([{"op": "add", "path": "/1", "value": 2}, {"op": "add", "path": "/2", "value": 3}])
        );
        let p = JsonPatch::diff(&json!([1, 2, 3]), &json!([]));
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!([{"op": "remove", "path": "/2"}, {"op": "remove", "path": "/1"}, {"op": "remove", "path": "/0"}])
        );
    }

    #[test]
    fn root_and_type_changes_replace() {
        let p = JsonPatch::diff(&json!({"a": 1}), &json!([1]));
        assert_eq!(
            serde_json::to_value(&p).unwrap(),
            json!([{"op": "replace", "path": "", "value": [1]}])
        );
        let p = JsonPatch::diff(&json!({"a": {"b": 1}}), &json!({"a": "x"}));
        assert_eq!(p.len(), 1);
    }

    #[test]
    fn empty_keys_and_escapes() {
        let p = JsonPatch::diff(&json!({}), &json!({"": 1, "~/": 2}));
        assert_eq!(
            p.to_json(),
            r#"[{"op":"add","path":"/","value":1},{"op":"add","path":"/~0~1","value":2}]"#
        );
    }
}
