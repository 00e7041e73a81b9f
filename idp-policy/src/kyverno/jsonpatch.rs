//! Kyverno `mutate.patchesJson6902`: an RFC 6902 JSON Patch written as a YAML (or JSON)
//! list of operations.
//!
//! `add`, `remove`, `replace`, `move`, `copy` and `test`, with RFC 6901 pointers (`~0` is
//! `~`, `~1` is `/`), plus what Kyverno documents beyond the RFC:
//!
//! - `add` creates the missing parents of its path: a list when the next step is `-` or
//!   an index, else a map ("adding non-existent paths/arrays");
//! - in a list, `-` and, for `add`, the index `-1` append; other negative indexes count
//!   from the end (`-1` is the last element for `remove`, `replace`, `test`, `move` and
//!   `copy`; `-2` inserts before the last element for `add`);
//! - `remove` of a path that does not exist changes nothing.
//!
//! [`parse`] reads the text once; [`apply`] applies the operations in order to a copy, so
//! a failing operation leaves the resource as it was. The text, the nesting of its values
//! and the growth of the document are bounded.

use std::fmt;

use serde_json::{Map, Number, Value};

use super::overlay::PatchError;
use super::pattern::{describe, quoted};

/// Longest patch text read, in bytes.
const MAX_TEXT: usize = 1 << 20;

/// Most operations in one patch.
const MAX_OPERATIONS: usize = 10_000;

/// Deepest nesting of the patch text.
const MAX_DEPTH: usize = 100;

/// Most YAML nodes in the patch text.
const MAX_NODES: usize = 250_000;

/// Most values (nodes) the operations of one patch may add to the document.
const MAX_GROWTH: usize = 1_000_000;

/// Deepest nesting the operations may give the document (a deeper resource is accepted
/// as it is, but not made deeper).
const MAX_DOC_DEPTH: usize = 200;

/// The kind of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Op {
    /// Add a value (insert into a list, set in a map).
    Add,
    /// Remove a value (nothing when it does not exist).
    Remove,
    /// Replace an existing value.
    Replace,
    /// Move a value from `from` to `path`.
    Move,
    /// Copy the value at `from` to `path`.
    Copy,
    /// Require the value at `path` to equal `value`.
    Test,
}

impl Op {
    /// The name as written in a patch.
    fn name(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Remove => "remove",
            Op::Replace => "replace",
            Op::Move => "move",
            Op::Copy => "copy",
            Op::Test => "test",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One operation of a JSON patch.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Operation {
    /// What to do.
    pub(super) op: Op,
    /// Where: the JSON pointer, parsed into unescaped segments (empty: the whole document).
    pub(super) path: Vec<String>,
    /// The value of `add`, `replace` and `test`.
    pub(super) value: Option<Value>,
    /// The source of `move` and `copy`.
    pub(super) from: Option<Vec<String>>,
}

/// Parse the patch text (a YAML or JSON list of operations, as written under
/// `patchesJson6902`) — errors name the operation index and field.
pub(super) fn parse(text: &str) -> Result<Vec<Operation>, PatchError> {
    if text.len() > MAX_TEXT {
        return Err(top_error(format!(
            "the patch is {} bytes long, more than the {MAX_TEXT} read",
            text.len()
        )));
    }
    let doc: Value = serde_saphyr::from_str_with_options(text, saphyr_options())
        .map_err(|e| top_error(format!("the patch is not valid YAML or JSON: {e}")))?;
    let items = match doc {
        Value::Null => return Ok(Vec::new()),
        Value::Array(items) => items,
        other => {
            return Err(top_error(format!(
                "the patch is a list of operations, found {}",
                describe(&other)
            )));
        }
    };
    if items.len() > MAX_OPERATIONS {
        return Err(top_error(format!(
            "the patch has {} operations, more than the {MAX_OPERATIONS} applied",
            items.len()
        )));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| parse_operation(i, item))
        .collect()
}

/// Apply in order; on error nothing is changed (work on a copy).
pub(super) fn apply(resource: &Value, ops: &[Operation]) -> Result<Value, PatchError> {
    let mut doc = resource.clone();
    let mut growth = 0usize;
    // An upper bound of the document's depth, kept without walking it again.
    let mut depth = depth_of(&doc);
    for (i, op) in ops.iter().enumerate() {
        deepen(&mut depth, op)
            .and_then(|()| apply_one(&mut doc, op, &mut growth))
            .map_err(|message| PatchError {
                field: format!("[{i}]"),
                message: format!(
                    "operation {i} ({} {}) cannot be applied: {message}",
                    op.op,
                    quoted(&render_pointer(&op.path))
                ),
            })?;
    }
    Ok(doc)
}

// ---------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------

/// The YAML reader's limits.
fn saphyr_options() -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_DEPTH;
    budget.max_documents = 1;
    budget.max_nodes = MAX_NODES;
    budget.max_events = MAX_NODES.saturating_mul(2);
    budget.max_aliases = 1_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = MAX_NODES;
    options.with_snippet = false;
    options
}

/// An error about the whole text.
fn top_error(message: String) -> PatchError {
    PatchError {
        field: String::new(),
        message,
    }
}

/// An error about one field of operation `i`.
fn field_error(i: usize, field: &str, message: impl fmt::Display) -> PatchError {
    PatchError {
        field: if field.is_empty() {
            format!("[{i}]")
        } else {
            format!("[{i}].{field}")
        },
        message: format!("operation {i}: {message}"),
    }
}

/// Reads operation `i`.
fn parse_operation(i: usize, item: Value) -> Result<Operation, PatchError> {
    let Value::Object(mut map) = item else {
        return Err(field_error(
            i,
            "",
            format!(
                "an operation is a map with op, path and value or from, found {}",
                describe(&item)
            ),
        ));
    };
    let op = match map.get("op") {
        None => return Err(field_error(i, "op", "`op` is required")),
        Some(Value::String(name)) => match name.as_str() {
            "add" => Op::Add,
            "remove" => Op::Remove,
            "replace" => Op::Replace,
            "move" => Op::Move,
            "copy" => Op::Copy,
            "test" => Op::Test,
            other => {
                return Err(field_error(
                    i,
                    "op",
                    format!(
                        "unknown operation {}: one of add, remove, replace, move, copy, test",
                        quoted(other)
                    ),
                ));
            }
        },
        Some(other) => {
            return Err(field_error(
                i,
                "op",
                format!("`op` is a string, found {}", describe(other)),
            ));
        }
    };
    let path = pointer_field(i, &map, "path")?
        .ok_or_else(|| field_error(i, "path", format!("`path` is required by {op}")))?;
    let value = match op {
        Op::Add | Op::Replace | Op::Test => Some(
            map.remove("value")
                .ok_or_else(|| field_error(i, "value", format!("`value` is required by {op}")))?,
        ),
        Op::Remove | Op::Move | Op::Copy => None,
    };
    let from = match op {
        Op::Move | Op::Copy => Some(
            pointer_field(i, &map, "from")?
                .ok_or_else(|| field_error(i, "from", format!("`from` is required by {op}")))?,
        ),
        Op::Add | Op::Remove | Op::Replace | Op::Test => None,
    };
    Ok(Operation {
        op,
        path,
        value,
        from,
    })
}

/// Reads the pointer in field `name` of operation `i` (`None` when absent).
fn pointer_field(
    i: usize,
    map: &Map<String, Value>,
    name: &str,
) -> Result<Option<Vec<String>>, PatchError> {
    match map.get(name) {
        None => Ok(None),
        Some(Value::String(text)) => match parse_pointer(text) {
            Ok(path) if path.len() > MAX_DEPTH => Err(field_error(
                i,
                name,
                format!(
                    "the JSON pointer has {} steps, more than {MAX_DEPTH}",
                    path.len()
                ),
            )),
            Ok(path) => Ok(Some(path)),
            Err(message) => Err(field_error(i, name, message)),
        },
        Some(other) => Err(field_error(
            i,
            name,
            format!(
                "`{name}` is a JSON pointer string, found {}",
                describe(other)
            ),
        )),
    }
}

/// Parses an RFC 6901 JSON pointer into unescaped segments.
fn parse_pointer(text: &str) -> Result<Vec<String>, String> {
    if text.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = text.strip_prefix('/') else {
        return Err(format!(
            "the JSON pointer {} does not start with `/` (the empty pointer is the whole \
             document)",
            quoted(text)
        ));
    };
    rest.split('/')
        .map(|segment| {
            let mut out = String::with_capacity(segment.len());
            let mut chars = segment.chars();
            while let Some(c) = chars.next() {
                if c != '~' {
                    out.push(c);
                    continue;
                }
                match chars.next() {
                    Some('0') => out.push('~'),
                    Some('1') => out.push('/'),
                    _ => {
                        return Err(format!(
                            "in the JSON pointer {}, `~` is written `~0` and `/` is written \
                             `~1`; `~` followed by anything else is invalid",
                            quoted(text)
                        ));
                    }
                }
            }
            Ok(out)
        })
        .collect()
}

/// Writes segments back as a JSON pointer.
fn render_pointer(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        out.push('/');
        out.push_str(&segment.replace('~', "~0").replace('/', "~1"));
    }
    out
}

// ---------------------------------------------------------------------------------------
// Applying
// ---------------------------------------------------------------------------------------

/// Applies one operation to `doc`; `growth` counts the values added so far.
fn apply_one(doc: &mut Value, op: &Operation, growth: &mut usize) -> Result<(), String> {
    let value = || {
        op.value
            .clone()
            .ok_or_else(|| format!("{} needs a value", op.op))
    };
    let from = || {
        op.from
            .as_deref()
            .ok_or_else(|| format!("{} needs `from`", op.op))
    };
    match op.op {
        Op::Add => {
            let value = value()?;
            grow(growth, &value)?;
            add(doc, &op.path, value)
        }
        Op::Remove => {
            if op.path.is_empty() {
                return Err("the whole document cannot be removed".to_owned());
            }
            // A path that does not exist: nothing to remove.
            let _ = take(doc, &op.path);
            Ok(())
        }
        Op::Replace => {
            let value = value()?;
            grow(growth, &value)?;
            let slot = get_mut(doc, &op.path).ok_or_else(|| missing(&op.path))?;
            *slot = value;
            Ok(())
        }
        Op::Move => {
            let from = from()?;
            if from == op.path.as_slice() {
                return get(doc, from).map(|_| ()).ok_or_else(|| missing(from));
            }
            if op.path.starts_with(from) {
                return Err(format!(
                    "a value cannot be moved into itself ({} is inside {})",
                    quoted(&render_pointer(&op.path)),
                    quoted(&render_pointer(from))
                ));
            }
            let value = take(doc, from)?;
            add(doc, &op.path, value)
        }
        Op::Copy => {
            let from = from()?;
            let value = get(doc, from).ok_or_else(|| missing(from))?.clone();
            grow(growth, &value)?;
            add(doc, &op.path, value)
        }
        Op::Test => {
            let value = value()?;
            let found = get(doc, &op.path).ok_or_else(|| missing(&op.path))?;
            if json_equal(found, &value, 0) {
                Ok(())
            } else {
                Err(format!(
                    "test failed: the value is {}, the test wants {}",
                    describe(found),
                    describe(&value)
                ))
            }
        }
    }
}

/// The message for a path that does not exist.
fn missing(path: &[String]) -> String {
    format!(
        "{} does not exist in the resource",
        quoted(&render_pointer(path))
    )
}

/// Raises the bound `depth` of the document's depth to cover what `op` writes; an error
/// when that could exceed [`MAX_DOC_DEPTH`].
fn deepen(depth: &mut usize, op: &Operation) -> Result<(), String> {
    let landing = match op.op {
        Op::Add | Op::Replace => op.path.len() + op.value.as_ref().map_or(0, depth_of),
        // The moved or copied value sits below `from`: no deeper than the rest.
        Op::Move | Op::Copy => {
            let from = op.from.as_ref().map_or(0, Vec::len);
            op.path.len() + depth.saturating_sub(from)
        }
        Op::Remove | Op::Test => 0,
    };
    if landing > *depth {
        if landing > MAX_DOC_DEPTH {
            return Err(format!(
                "the resource could be nested deeper than {MAX_DOC_DEPTH} levels"
            ));
        }
        *depth = landing;
    }
    Ok(())
}

/// The nesting depth of a value (a scalar is 0). Iterative: no recursion on the depth.
fn depth_of(value: &Value) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, level)) = stack.pop() {
        deepest = deepest.max(level);
        match v {
            Value::Array(items) => stack.extend(items.iter().map(|i| (i, level + 1))),
            Value::Object(map) => stack.extend(map.values().map(|i| (i, level + 1))),
            _ => {}
        }
    }
    deepest
}

/// Counts the values `value` adds against [`MAX_GROWTH`].
fn grow(growth: &mut usize, value: &Value) -> Result<(), String> {
    let left = MAX_GROWTH.saturating_sub(*growth);
    let nodes = count_nodes(value, left.saturating_add(1));
    if nodes > left {
        return Err(format!(
            "the operations of this patch would add more than {MAX_GROWTH} values to the \
             resource"
        ));
    }
    *growth += nodes;
    Ok(())
}

/// The number of values in `value` (itself included), counting stops at `limit`. Iterative:
/// no recursion on the depth of the value.
fn count_nodes(value: &Value, limit: usize) -> usize {
    let mut count = 0usize;
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        count += 1;
        if count >= limit {
            return count;
        }
        match v {
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    count
}

/// Where a pointer segment falls in a list of `len` elements: `None` when it names no
/// position. For `add` (`insert`), `len` is valid, `-` and `-1` are `len`, `-n` is
/// `len + 1 - n`; otherwise the index must name an element and `-n` is `len - n`.
fn list_index(segment: &str, len: usize, insert: bool) -> Option<usize> {
    if segment == "-" {
        return insert.then_some(len);
    }
    let (negative, digits) = match segment.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, segment),
    };
    if digits.is_empty()
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || (digits.len() > 1 && digits.starts_with('0'))
    {
        return None;
    }
    let n: usize = digits.parse().ok()?;
    let size = if insert { len + 1 } else { len };
    let index = if negative {
        if n == 0 {
            return None;
        }
        size.checked_sub(n)?
    } else {
        n
    };
    (index < size).then_some(index)
}

/// Whether a segment names a list position (so a missing parent is created as a list).
fn is_list_segment(segment: &str) -> bool {
    segment == "-" || list_index(segment, usize::MAX - 1, true).is_some()
}

/// The value at `path`.
fn get<'v>(doc: &'v Value, path: &[String]) -> Option<&'v Value> {
    let mut current = doc;
    for segment in path {
        current = match current {
            Value::Object(map) => map.get(segment)?,
            Value::Array(items) => items.get(list_index(segment, items.len(), false)?)?,
            _ => return None,
        };
    }
    Some(current)
}

/// The value at `path`, mutable.
fn get_mut<'v>(doc: &'v mut Value, path: &[String]) -> Option<&'v mut Value> {
    let mut current = doc;
    for segment in path {
        current = match current {
            Value::Object(map) => map.get_mut(segment)?,
            Value::Array(items) => {
                let index = list_index(segment, items.len(), false)?;
                items.get_mut(index)?
            }
            _ => return None,
        };
    }
    Some(current)
}

/// Removes and returns the value at `path` (not the whole document).
fn take(doc: &mut Value, path: &[String]) -> Result<Value, String> {
    let Some((last, parent_path)) = path.split_last() else {
        return Err("the whole document cannot be removed".to_owned());
    };
    let parent = get_mut(doc, parent_path).ok_or_else(|| missing(path))?;
    match parent {
        Value::Object(map) => map.remove(last).ok_or_else(|| missing(path)),
        Value::Array(items) => {
            let index = list_index(last, items.len(), false).ok_or_else(|| missing(path))?;
            Ok(items.remove(index))
        }
        _ => Err(missing(path)),
    }
}

/// Adds `value` at `path`, creating missing parents.
fn add(doc: &mut Value, path: &[String], value: Value) -> Result<(), String> {
    let Some((last, parent_path)) = path.split_last() else {
        *doc = value;
        return Ok(());
    };
    let mut current = doc;
    for (j, segment) in parent_path.iter().enumerate() {
        // The segment after this one decides what a missing parent is created as.
        let next = path.get(j + 1).map_or("", String::as_str);
        let fresh = || {
            if is_list_segment(next) {
                Value::Array(Vec::new())
            } else {
                Value::Object(Map::new())
            }
        };
        current = match current {
            Value::Object(map) => {
                let slot = map.entry(segment.clone()).or_insert_with(fresh);
                if slot.is_null() {
                    *slot = fresh();
                }
                slot
            }
            Value::Array(items) => {
                let len = items.len();
                // One past the end (`-`, `-1` or the length) creates the element.
                let index = match list_index(segment, len, false) {
                    Some(index) => index,
                    None if list_index(segment, len, true) == Some(len) => {
                        items.push(Value::Null);
                        len
                    }
                    None => {
                        return Err(format!(
                            "{} is not an element of a list of {len}",
                            quoted(&render_pointer(&path[..=j]))
                        ));
                    }
                };
                let slot = items.get_mut(index).ok_or_else(|| missing(&path[..=j]))?;
                if slot.is_null() {
                    *slot = fresh();
                }
                slot
            }
            other => {
                return Err(format!(
                    "{} is {}, which has no fields or elements",
                    quoted(&render_pointer(&path[..j])),
                    describe(other)
                ));
            }
        };
    }
    match current {
        Value::Object(map) => {
            map.insert(last.clone(), value);
            Ok(())
        }
        Value::Array(items) => {
            let len = items.len();
            let index = list_index(last, len, true).ok_or_else(|| {
                format!(
                    "{} is not a position in a list of {len} (0 to {len}, `-` or a negative \
                     index counting from the end)",
                    quoted(last)
                )
            })?;
            items.insert(index, value);
            Ok(())
        }
        other => Err(format!(
            "{} is {}, which has no fields or elements",
            quoted(&render_pointer(parent_path)),
            describe(other)
        )),
    }
}

/// JSON equality as RFC 6902's `test` defines it: numbers by value (`1` equals `1.0`).
/// Nesting beyond [`MAX_DEPTH`] is compared structurally.
fn json_equal(a: &Value, b: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return a == b;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => numbers_equal(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| json_equal(p, q, depth + 1))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w, depth + 1)))
        }
        _ => a == b,
    }
}

/// Numeric equality across integer and float representations.
fn numbers_equal(x: &Number, y: &Number) -> bool {
    if let (Some(p), Some(q)) = (x.as_i64(), y.as_i64()) {
        return p == q;
    }
    if let (Some(p), Some(q)) = (x.as_u64(), y.as_u64()) {
        return p == q;
    }
    match (x.as_f64(), y.as_f64()) {
        (Some(p), Some(q)) => p.partial_cmp(&q) == Some(std::cmp::Ordering::Equal),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Parses and applies, expecting success.
    fn patched(resource: &Value, text: &str) -> Value {
        let ops = parse(text).unwrap_or_else(|e| panic!("parse {text}: {e}"));
        apply(resource, &ops).unwrap_or_else(|e| panic!("apply {text}: {e}"))
    }

    /// Parses (expecting success) and applies, expecting an error.
    fn fails(resource: &Value, text: &str) -> PatchError {
        let ops = parse(text).unwrap_or_else(|e| panic!("parse {text}: {e}"));
        match apply(resource, &ops) {
            Err(e) => e,
            Ok(v) => panic!("{text} should fail, gave {v}"),
        }
    }

    /// The parse error.
    fn unparsable(text: &str) -> PatchError {
        match parse(text) {
            Err(e) => e,
            Ok(ops) => panic!("{text} should not parse, gave {ops:?}"),
        }
    }

    #[test]
    fn parses_yaml_and_json_lists() {
        let yaml = "- op: add\n  path: /a/b~1c~0d\n  value: {x: 1}\n- op: move\n  from: /a\n  path: /b\n- {op: remove, path: ''}\n";
        let ops = parse(yaml).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            ops,
            vec![
                Operation {
                    op: Op::Add,
                    path: vec!["a".into(), "b/c~d".into()],
                    value: Some(json!({"x": 1})),
                    from: None
                },
                Operation {
                    op: Op::Move,
                    path: vec!["b".into()],
                    value: None,
                    from: Some(vec!["a".into()])
                },
                Operation {
                    op: Op::Remove,
                    path: vec![],
                    value: None,
                    from: None
                },
            ]
        );
        let json_text = r#"[{"op": "test", "path": "/a", "value": null}, {"op": "copy", "from": "/a", "path": "/c"}]"#;
        let ops = parse(json_text).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(ops[0].value, Some(Value::Null));
        assert_eq!(ops[1].from, Some(vec!["a".to_owned()]));
        assert_eq!(parse(""), Ok(Vec::new()));
        assert_eq!(parse("[]"), Ok(Vec::new()));
    }

    #[test]
    fn parse_errors_name_the_operation_and_field() {
        for (text, field, needle) in [
            ("{op: add}", "", "list of operations"),
            ("- 3", "[0]", "is a map"),
            ("- {path: /a}", "[0].op", "`op` is required"),
            (
                "- {op: add, path: /a, value: 1}\n- {op: frob, path: /a}",
                "[1].op",
                "unknown operation \"frob\"",
            ),
            ("- {op: [add], path: /a}", "[0].op", "is a string"),
            ("- {op: remove}", "[0].path", "`path` is required"),
            (
                "- {op: add, path: /a}",
                "[0].value",
                "`value` is required by add",
            ),
            (
                "- {op: replace, path: /a}",
                "[0].value",
                "`value` is required by replace",
            ),
            (
                "- {op: test, path: /a}",
                "[0].value",
                "`value` is required by test",
            ),
            (
                "- {op: move, path: /a}",
                "[0].from",
                "`from` is required by move",
            ),
            (
                "- {op: copy, path: /a, from: 3}",
                "[0].from",
                "JSON pointer string",
            ),
            (
                "- {op: add, path: a, value: 1}",
                "[0].path",
                "does not start with `/`",
            ),
            ("- {op: add, path: /a~2, value: 1}", "[0].path", "`~0`"),
            ("- {op: add, path: /a~, value: 1}", "[0].path", "`~1`"),
            ("- [unclosed", "", "not valid YAML"),
        ] {
            let e = unparsable(text);
            assert_eq!(e.field, field, "{text}: {e:?}");
            assert!(e.message.contains(needle), "{text}: {}", e.message);
        }
        let e = unparsable("- {op: add, path: /a, value: 1}\n- {path: /b}");
        assert!(e.message.starts_with("operation 1:"), "{}", e.message);
    }

    #[test]
    fn the_docs_config_map_examples() {
        let cm =
            json!({"kind": "ConfigMap", "metadata": {"name": "config-game"}, "data": {"a": "1"}});
        let text = "- path: \"/data/ship.properties\"\n  op: add\n  value: |\n    type=starship\n    owner=utany.corp\n- path: \"/data/newKey1\"\n  op: add\n  value: newValue1\n";
        assert_eq!(
            patched(&cm, text)["data"],
            json!({"a": "1", "ship.properties": "type=starship\nowner=utany.corp\n", "newKey1": "newValue1"})
        );
        let empty = json!({"kind": "ConfigMap", "metadata": {"name": "config-game"}});
        let text = "- path: \"/data\"\n  op: add\n  value:\n    ship.properties: '{\"type\": \"starship\", \"owner\": \"utany.corp\"}'\n";
        assert_eq!(
            patched(&empty, text)["data"],
            json!({"ship.properties": "{\"type\": \"starship\", \"owner\": \"utany.corp\"}"})
        );
    }

    #[test]
    fn the_docs_remove_label_and_linkerd_annotation_examples() {
        let secret = json!({"metadata": {"labels": {"purpose": "x", "keep": "y"}}});
        assert_eq!(
            patched(
                &secret,
                "- path: \"/metadata/labels/purpose\"\n  op: remove\n"
            ),
            json!({"metadata": {"labels": {"keep": "y"}}})
        );
        let deploy = json!({"spec": {"template": {"metadata": {}}}});
        let text = "- op: add\n  path: /spec/template/metadata/annotations/config.linkerd.io~1skip-outbound-ports\n  value: \"8200\"\n";
        assert_eq!(
            patched(&deploy, text)["spec"]["template"]["metadata"]["annotations"],
            json!({"config.linkerd.io/skip-outbound-ports": "8200"})
        );
    }

    #[test]
    fn the_docs_insert_container_and_append_toleration_examples() {
        let pod = json!({"spec": {"containers": [{"name": "a"}, {"name": "b"}]}});
        let text = "- op: add\n  path: \"/spec/containers/1\"\n  value:\n    name: busybox\n    image: busybox:latest\n- op: add\n  path: \"/spec/containers/1/command\"\n  value:\n  - ls\n";
        assert_eq!(
            patched(&pod, text)["spec"]["containers"],
            json!([{"name": "a"}, {"name": "busybox", "image": "busybox:latest", "command": ["ls"]}, {"name": "b"}])
        );
        let text = "- op: add\n  path: \"/spec/tolerations/-\"\n  value:\n    key: networkzone\n    operator: Equal\n    value: dmz\n    effect: NoSchedule\n";
        let with = json!({"spec": {"tolerations": [{"key": "a"}]}});
        assert_eq!(
            patched(&with, text)["spec"]["tolerations"],
            json!([{"key": "a"}, {"key": "networkzone", "operator": "Equal", "value": "dmz", "effect": "NoSchedule"}])
        );
        // A missing list is created.
        let without = json!({"spec": {}});
        assert_eq!(
            patched(&without, text)["spec"]["tolerations"],
            json!([{"key": "networkzone", "operator": "Equal", "value": "dmz", "effect": "NoSchedule"}])
        );
    }

    #[test]
    fn add_creates_missing_parents_as_maps_or_lists() {
        assert_eq!(
            patched(&json!({}), "- {op: add, path: /a/b/c, value: 1}"),
            json!({"a": {"b": {"c": 1}}})
        );
        assert_eq!(
            patched(&json!({"a": null}), "- {op: add, path: /a/0/x, value: 1}"),
            json!({"a": [{"x": 1}]})
        );
        assert_eq!(
            patched(&json!({}), "- {op: add, path: /a/-1, value: 1}"),
            json!({"a": [1]})
        );
        // A missing element of an existing list is not created.
        let e = fails(&json!({"a": []}), "- {op: add, path: /a/3/x, value: 1}");
        assert_eq!(e.field, "[0]");
        assert!(e.message.contains("not an element"), "{}", e.message);
        // Below a scalar there is nothing to add to.
        let e = fails(&json!({"a": 1}), "- {op: add, path: /a/b, value: 1}");
        assert!(e.message.contains("no fields or elements"), "{}", e.message);
    }

    #[test]
    fn list_indexes_dash_and_negative() {
        let doc = json!({"l": [1, 2, 3]});
        assert_eq!(
            patched(&doc, "- {op: add, path: /l/-, value: 9}")["l"],
            json!([1, 2, 3, 9])
        );
        assert_eq!(
            patched(&doc, "- {op: add, path: /l/-1, value: 9}")["l"],
            json!([1, 2, 3, 9])
        );
        assert_eq!(
            patched(&doc, "- {op: add, path: /l/-2, value: 9}")["l"],
            json!([1, 2, 9, 3])
        );
        assert_eq!(
            patched(&doc, "- {op: add, path: /l/-4, value: 9}")["l"],
            json!([9, 1, 2, 3])
        );
        assert_eq!(
            patched(&doc, "- {op: add, path: /l/3, value: 9}")["l"],
            json!([1, 2, 3, 9])
        );
        assert_eq!(
            patched(&doc, "- {op: add, path: /l/0, value: 9}")["l"],
            json!([9, 1, 2, 3])
        );
        assert_eq!(
            patched(&doc, "- {op: remove, path: /l/-1}")["l"],
            json!([1, 2])
        );
        assert_eq!(
            patched(&doc, "- {op: replace, path: /l/-3, value: 0}")["l"],
            json!([0, 2, 3])
        );
        for bad in ["/l/4", "/l/-5", "/l/01", "/l/x", "/l/-0"] {
            let e = fails(&doc, &format!("- {{op: add, path: {bad}, value: 9}}"));
            assert!(e.message.contains("not a position"), "{bad}: {}", e.message);
        }
        fails(&doc, "- {op: replace, path: /l/-, value: 0}");
        fails(&doc, "- {op: replace, path: /l/3, value: 0}");
    }

    #[test]
    fn remove_of_a_missing_path_is_a_no_op() {
        let doc = json!({"a": {"b": 1}, "l": [1]});
        for path in ["/a/c", "/x/y/z", "/l/5", "/l/-", "/a/b/c", "/l/x"] {
            assert_eq!(
                patched(&doc, &format!("- {{op: remove, path: {path}}}")),
                doc,
                "{path}"
            );
        }
        let e = fails(&doc, "- {op: remove, path: ''}");
        assert!(e.message.contains("whole document"), "{}", e.message);
    }

    #[test]
    fn replace_needs_an_existing_value_and_may_replace_the_root() {
        let doc = json!({"a": 1});
        assert_eq!(
            patched(&doc, "- {op: replace, path: /a, value: [2]}"),
            json!({"a": [2]})
        );
        assert_eq!(
            patched(&doc, "- {op: replace, path: '', value: 5}"),
            json!(5)
        );
        let e = fails(&doc, "- {op: replace, path: /b, value: 2}");
        assert!(e.message.contains("\"/b\" does not exist"), "{}", e.message);
        assert_eq!(
            patched(&doc, "- {op: add, path: '', value: {z: 1}}"),
            json!({"z": 1})
        );
    }

    #[test]
    fn move_and_copy() {
        let doc = json!({"a": {"x": 1}, "l": [1, 2, 3]});
        assert_eq!(
            patched(&doc, "- {op: move, from: /a/x, path: /b}"),
            json!({"a": {}, "b": 1, "l": [1, 2, 3]})
        );
        assert_eq!(
            patched(&doc, "- {op: move, from: /l/0, path: /l/-}")["l"],
            json!([2, 3, 1])
        );
        assert_eq!(
            patched(&doc, "- {op: copy, from: /a, path: /c/d}"),
            json!({"a": {"x": 1}, "c": {"d": {"x": 1}}, "l": [1, 2, 3]})
        );
        assert_eq!(patched(&doc, "- {op: move, from: /a, path: /a}"), doc);
        let e = fails(&doc, "- {op: move, from: /a, path: /a/y}");
        assert!(e.message.contains("into itself"), "{}", e.message);
        let e = fails(&doc, "- {op: copy, from: /nope, path: /b}");
        assert!(
            e.message.contains("\"/nope\" does not exist"),
            "{}",
            e.message
        );
        fails(&doc, "- {op: move, from: /nope, path: /b}");
        fails(&doc, "- {op: move, from: '', path: /b}");
    }

    #[test]
    fn test_compares_json_values() {
        let doc = json!({"a": {"n": 1, "s": "x", "l": [1.0, null]}});
        assert_eq!(patched(&doc, "- {op: test, path: /a/n, value: 1.0}"), doc);
        assert_eq!(
            patched(
                &doc,
                "- {op: test, path: /a, value: {l: [1, null], s: x, n: 1}}"
            ),
            doc
        );
        let e = fails(&doc, "- {op: test, path: /a/s, value: y}");
        assert!(e.message.contains("test failed"), "{}", e.message);
        fails(&doc, "- {op: test, path: /a/missing, value: null}");
        fails(&doc, "- {op: test, path: /a/n, value: \"1\"}");
    }

    #[test]
    fn a_failing_operation_changes_nothing_and_is_named() {
        let doc = json!({"a": 1});
        let ops = parse("- {op: add, path: /b, value: 2}\n- {op: test, path: /a, value: 2}")
            .unwrap_or_else(|e| panic!("{e}"));
        let e = apply(&doc, &ops)
            .err()
            .unwrap_or_else(|| panic!("should fail"));
        assert_eq!(e.field, "[1]");
        assert!(
            e.message.starts_with("operation 1 (test \"/a\")"),
            "{}",
            e.message
        );
        assert_eq!(doc, json!({"a": 1}));
    }

    #[test]
    fn limits_bound_text_depth_and_growth() {
        let long = format!(
            "- {{op: add, path: /a, value: \"{}\"}}",
            "x".repeat(MAX_TEXT)
        );
        assert!(unparsable(&long).message.contains("bytes long"));
        let deep = format!(
            "- {{op: add, path: /a, value: {}1{}}}",
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(unparsable(&deep).message.contains("not valid YAML"));
        let many = "- {op: remove, path: /a}\n".repeat(MAX_OPERATIONS + 1);
        assert!(unparsable(&many).message.contains("operations"));
        // Copying the document into itself doubles it: stopped before it explodes.
        let doubling = "- {op: copy, from: /l, path: /l/-}\n".repeat(40);
        let e = fails(&json!({"l": [1, 2, 3, 4]}), &doubling);
        assert!(
            e.message.contains("more than 1000000 values"),
            "{}",
            e.message
        );
        // Nesting the document into itself is stopped at the depth limit.
        let nesting = "- {op: copy, from: '', path: /a}\n".repeat(300);
        let e = fails(&json!({"seed": 1}), &nesting);
        assert!(e.message.contains("deeper than 200"), "{}", e.message);
        let long_path = format!(
            "- {{op: add, path: '{}', value: 1}}",
            "/a".repeat(MAX_DEPTH + 1)
        );
        assert_eq!(unparsable(&long_path).field, "[0].path");
        // A billion laughs in YAML aliases is refused by the reader.
        let mut laughs = String::from("- &a [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 0..9 {
            let prev = if i == 0 {
                "a".to_owned()
            } else {
                format!("a{}", i - 1)
            };
            let refs = vec![format!("*{prev}"); 10].join(", ");
            laughs.push_str("- &a");
            laughs.push_str(&i.to_string());
            laughs.push_str(" [");
            laughs.push_str(&refs);
            laughs.push_str("]\n");
        }
        assert!(parse(&laughs).is_err());
    }

    #[test]
    fn pointers_round_trip() {
        for text in ["", "/", "/a", "/a/b", "/~0~1/x", "//"] {
            let parsed = parse_pointer(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(render_pointer(&parsed), text);
        }
        assert_eq!(parse_pointer("/"), Ok(vec![String::new()]));
    }

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..4).prop_map(Value::from),
            prop::sample::select(vec!["a", "b", "0", "-", "-1", "x"]).prop_map(Value::from),
        ]
    }

    fn tree() -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop::sample::select(vec!["a", "b", "0", "x"]),
                    inner,
                    0..4
                )
                .prop_map(|m| Value::Object(
                    m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
                )),
            ]
        })
    }

    fn pointer() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!["a", "b", "0", "1", "-", "-1", "-2", "x", "~0", "~1"]),
            0..4,
        )
        .prop_map(|segs| segs.iter().flat_map(|s| ["/", s]).collect())
    }

    fn operation() -> impl Strategy<Value = Value> {
        (
            prop::sample::select(vec!["add", "remove", "replace", "move", "copy", "test", "nope"]),
            pointer(),
            pointer(),
            tree(),
        )
            .prop_map(|(op, path, from, value)| json!({"op": op, "path": path, "from": from, "value": value}))
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_any_text(text in "\\PC{0,200}") {
            let _ = parse(&text);
        }

        #[test]
        fn parse_never_panics_on_yaml_like_text(text in "[-\\[\\]{}:,&*!|>'\" \\nopathvlueadfrm/~0-9]{0,120}") {
            let _ = parse(&text);
        }

        #[test]
        fn apply_never_panics_and_errors_change_nothing(resource in tree(), ops in prop::collection::vec(operation(), 0..6)) {
            let text = Value::Array(ops).to_string();
            if let Ok(parsed) = parse(&text) {
                let before = resource.clone();
                let _ = apply(&resource, &parsed);
                prop_assert_eq!(before, resource);
            }
        }

        #[test]
        fn add_then_remove_restores_a_map(
            resource in prop::collection::btree_map("[a-z]{1,2}", tree(), 0..4),
            key in "[a-z]{3}",
            value in tree(),
        ) {
            let resource = Value::Object(resource.into_iter().collect());
            let ops = vec![
                Operation { op: Op::Add, path: vec![key.clone()], value: Some(value), from: None },
                Operation { op: Op::Remove, path: vec![key], value: None, from: None },
            ];
            prop_assert_eq!(apply(&resource, &ops), Ok(resource.clone()));
        }
    }
}
