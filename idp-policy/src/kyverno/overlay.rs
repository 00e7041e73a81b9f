//! Kyverno `mutate.patchStrategicMerge`: a partial resource merged into the resource, with
//! the strategic-merge directives and the mutate anchors.
//!
//! - **Maps** merge key by key, recursively. A value of another type replaces the
//!   resource's value; `null` deletes the key.
//! - **Lists of maps** merge element by element when a merge key applies: the Kubernetes
//!   `patchMergeKey` of the core types for the fields named in [`known_merge_key`],
//!   otherwise the first of `mountPath`, `devicePath`, `ip`, `type`, `topologyKey`,
//!   `name`, `containerPort` that every element of the patch gives a scalar value (as
//!   kustomize infers without a schema). An element merges into every resource element
//!   with the same merge-key value, or is appended (so is an element without one).
//!   Without a merge key the patch list replaces the resource list. Lists of scalars are
//!   replaced, except `finalizers` (set union, the resource's order kept, new entries
//!   appended). An empty patch list leaves a merging list (known merge key, finalizers)
//!   as it is and empties any other.
//! - **Directives**: `$patch: delete` deletes the map it is in (in a list element: the
//!   resource elements it names by merge key or selects by anchors); `$patch: replace`
//!   replaces instead of merging (a list element `{$patch: replace}` alone replaces the
//!   whole list); `$patch: merge` is the default. Other `$` keys are refused.
//! - **Anchors**: conditional `(key)` (the key must be present and match, as a validate
//!   pattern), add-if-not-present `+(key)` (its value is written as is when the key is
//!   absent), global `<(key)`. All the global, then all the conditional anchors of a map
//!   are evaluated before anything of it is merged. A conditional anchor that does not
//!   hold skips the whole patch, unless it lies within a list element (at any depth of
//!   maps below it): then that element is not merged into that resource element. A list
//!   element holding conditional or global anchors (at any depth, nested lists included)
//!   is merged into each resource element for which they all hold; its plain fields, the
//!   merge key included, are merged rather than matched (select with `(name)`). No match
//!   is not a skip. A global anchor that does not hold skips the whole patch; in a list
//!   element it holds when some element of the resource list satisfies it (an empty or
//!   absent list does not).
//!
//! A patch is checked once with [`check`] (before variables are substituted) and applied
//! with [`apply`], which works on a copy. Nothing here panics on hostile input: nesting
//! is bounded by [`MAX_DEPTH`], and the values of conditions by the validate pattern's
//! own limit.

use std::collections::HashSet;
use std::fmt;

use serde_json::{Map, Value};

use super::pattern::{self, Seg, describe, quoted, render_with};

/// Deepest nesting of a patch (maps and lists) that is checked or applied.
const MAX_DEPTH: usize = 64;

/// A patch that cannot be applied, or a patch that is invalid: `field` is a dotted path
/// inside the patch (e.g. `spec.containers[0].(image)`), empty for the top.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PatchError {
    /// Where in the patch, keys written as in the patch (anchors included).
    pub(super) field: String,
    /// What is wrong.
    pub(super) message: String,
}

impl fmt::Display for PatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "invalid patch: {}", self.message)
        } else {
            write!(f, "invalid patch at {}: {}", self.field, self.message)
        }
    }
}

impl std::error::Error for PatchError {}

/// What applying a patch did.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Applied {
    /// The patched resource (may equal the input).
    Patched(Value),
    /// A conditional or global anchor did not hold: the rule does not apply; the reason
    /// names the anchor's path.
    Skipped(String),
}

/// Check a patch once at load time (before variables are substituted): anchors
/// well-formed, only the anchors mutate supports.
pub(super) fn check(patch: &Value) -> Result<(), PatchError> {
    let Value::Object(map) = patch else {
        return Err(PatchError {
            field: String::new(),
            message: format!(
                "a strategic merge patch is a map (a partial resource), found {}",
                describe(patch)
            ),
        });
    };
    if let Some(Value::String(directive)) = map.get(PATCH_DIRECTIVE)
        && directive == "delete"
    {
        return Err(PatchError {
            field: PATCH_DIRECTIVE.to_owned(),
            message: "`$patch: delete` at the top would delete the whole resource".to_owned(),
        });
    }
    let mut trail = Vec::new();
    check_node(patch, None, &mut trail, 0)
}

/// Apply `patch` to `resource`. The patch should have passed [`check`]; if it did not, an
/// invalid part is an error, never a panic.
pub(super) fn apply(resource: &Value, patch: &Value) -> Result<Applied, PatchError> {
    if !patch.is_object() {
        return Err(PatchError {
            field: String::new(),
            message: format!(
                "a strategic merge patch is a map (a partial resource), found {}",
                describe(patch)
            ),
        });
    }
    let mut trail = Vec::new();
    match merge(Some(resource), patch, None, &mut trail, 0) {
        Ok(Some(patched)) => Ok(Applied::Patched(patched)),
        Ok(None) => Err(PatchError {
            field: PATCH_DIRECTIVE.to_owned(),
            message: "`$patch: delete` at the top would delete the whole resource".to_owned(),
        }),
        Err(Stop::Cond(reason) | Stop::Global(reason)) => Ok(Applied::Skipped(reason)),
        Err(Stop::Error(error)) => Err(error),
    }
}

// ---------------------------------------------------------------------------------------
// Keys, paths and messages
// ---------------------------------------------------------------------------------------

/// The strategic-merge directive key.
const PATCH_DIRECTIVE: &str = "$patch";

/// The merge keys tried, in order, for a list of maps whose field has no known merge key.
const INFERRED_MERGE_KEYS: [&str; 7] = [
    "mountPath",
    "devicePath",
    "ip",
    "type",
    "topologyKey",
    "name",
    "containerPort",
];

/// How a patch key applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// `key`: merged.
    Plain,
    /// `(key)`: a condition on the resource, never written.
    Conditional,
    /// `+(key)`: written only when the resource lacks the key.
    AddIfAbsent,
    /// `<(key)`: a condition on the resource that, when false, skips the whole patch.
    Global,
    /// `$patch`.
    Directive,
}

/// Splits a patch key into how it applies and the resource key it names.
fn classify(raw: &str) -> Result<(Kind, &str), String> {
    if let Some(rest) = raw.strip_prefix('$') {
        if raw == PATCH_DIRECTIVE {
            return Ok((Kind::Directive, raw));
        }
        return Err(format!(
            "the directive {} is not supported (only `$patch: delete|replace|merge`); \
             `${rest}` would be written into the resource as a key",
            quoted(raw)
        ));
    }
    let (kind, inner) = match split_anchor(raw) {
        Some(split) => split?,
        None => return Ok((Kind::Plain, raw)),
    };
    if inner.is_empty() {
        return Err(format!("the anchor {} has an empty key", quoted(raw)));
    }
    if split_anchor(inner).is_some() {
        return Err(format!(
            "the anchor {} is applied to another anchor: an anchor applies to a plain key",
            quoted(raw)
        ));
    }
    Ok((kind, inner))
}

/// One level of anchor syntax: `None` for a plain key, `Err` for an anchor mutate does
/// not support.
fn split_anchor(raw: &str) -> Option<Result<(Kind, &str), String>> {
    let body = raw.strip_suffix(')')?;
    if let Some(inner) = body.strip_prefix('(') {
        return Some(Ok((Kind::Conditional, inner)));
    }
    let mut chars = body.chars();
    let (Some(modifier), Some('(')) = (chars.next(), chars.next()) else {
        return None;
    };
    let inner = chars.as_str();
    let kind = match modifier {
        '+' => Kind::AddIfAbsent,
        '<' => Kind::Global,
        '=' | 'X' | '^' => {
            let name = match modifier {
                '=' => "equality",
                'X' => "negation",
                _ => "existence",
            };
            return Some(Err(format!(
                "the {name} anchor {} belongs to validate patterns; a mutate patch supports \
                 the conditional (key), add-if-not-present +(key) and global <(key) anchors",
                quoted(raw)
            )));
        }
        _ => return None,
    };
    Some(Ok((kind, inner)))
}

/// The `patchMergeKey` of the Kubernetes core types for a list field, by field name.
fn known_merge_key(field: &str, elements: &[Value]) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets"
        | "resourceClaims" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        "conditions" => "type",
        "ownerReferences" => "uid",
        "readinessGates" => "conditionType",
        // Container ports merge by containerPort, Service ports by port.
        "ports" => {
            if elements.iter().any(|e| {
                e.as_object()
                    .is_some_and(|m| m.contains_key("containerPort"))
            }) {
                "containerPort"
            } else {
                "port"
            }
        }
        _ => return None,
    })
}

/// The merge key of a list of maps: the known one for the field, else the first of
/// [`INFERRED_MERGE_KEYS`] that every element (every element without anchors, if there is
/// one) gives a scalar value under a plain key.
fn merge_key(field: Option<&str>, elements: &[Value], anchored: &[bool]) -> Option<&'static str> {
    if let Some(key) = field.and_then(|f| known_merge_key(f, elements)) {
        return Some(key);
    }
    let plain: Vec<&Value> = elements
        .iter()
        .zip(anchored)
        .filter(|(_, a)| !**a)
        .map(|(e, _)| e)
        .collect();
    let considered: Vec<&Value> = if plain.is_empty() {
        elements.iter().collect()
    } else {
        plain
    };
    INFERRED_MERGE_KEYS
        .into_iter()
        .find(|key| considered.iter().all(|e| key_value(e, key).is_some()))
}

/// The merge-key value of a list element: a string, number or boolean under `key`.
fn key_value<'v>(element: &'v Value, key: &str) -> Option<&'v Value> {
    element
        .get(key)
        .filter(|v| v.is_string() || v.is_number() || v.is_boolean())
}

/// Whether a patch value holds a conditional or global anchor (with `only_global`, a
/// global one), in its maps or in the elements of its lists; anchor values are not looked
/// into. Nesting beyond [`MAX_DEPTH`] is not looked at (it is refused elsewhere).
fn has_selectors(value: &Value, only_global: bool, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match value {
        Value::Object(map) => map.iter().any(|(raw, v)| match classify(raw) {
            Ok((Kind::Global, _)) => true,
            Ok((Kind::Conditional, _)) => !only_global,
            Ok((Kind::Plain, _)) => has_selectors(v, only_global, depth + 1),
            _ => false,
        }),
        Value::Array(items) => items
            .iter()
            .any(|v| has_selectors(v, only_global, depth + 1)),
        _ => false,
    }
}

/// Whether a value holds a `{{ }}` variable anywhere (such a condition is checked only
/// once variables are substituted).
fn has_variables(value: &Value, depth: usize) -> bool {
    if depth > MAX_DEPTH {
        return false;
    }
    match value {
        Value::String(s) => s.contains("{{"),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| k.contains("{{") || has_variables(v, depth + 1)),
        Value::Array(items) => items.iter().any(|v| has_variables(v, depth + 1)),
        _ => false,
    }
}

/// Renders a path: `spec.containers[0].(image)`; a key holding `.`, brackets, quotes or
/// spaces is quoted (`metadata.annotations["a.b/c"]`).
fn render(trail: &[Seg<'_>]) -> String {
    render_with(trail, |key| {
        !key.is_empty()
            && !key.contains(['.', '[', ']', '"', '\''])
            && !key.contains(char::is_whitespace)
    })
}

/// Renders a path for a message, naming the top.
fn render_here(trail: &[Seg<'_>]) -> String {
    if trail.is_empty() {
        "the top of the patch".to_owned()
    } else {
        render(trail)
    }
}

/// The depth bound every walk of a patch checks first.
fn within_depth(trail: &[Seg<'_>], depth: usize) -> Result<(), PatchError> {
    if depth > MAX_DEPTH {
        return Err(error_at(
            trail,
            format!("the patch is nested deeper than {MAX_DEPTH} levels"),
        ));
    }
    Ok(())
}

/// An error at the current path.
fn error_at(trail: &[Seg<'_>], message: impl Into<String>) -> PatchError {
    PatchError {
        field: render(trail),
        message: message.into(),
    }
}

/// A `$patch` directive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Directive {
    /// `merge` (the default).
    Merge,
    /// `replace`: the map replaces the resource's map.
    Replace,
    /// `delete`: the map (or the list element) is deleted.
    Delete,
}

/// Parses the value of `$patch`.
fn directive(value: &Value) -> Result<Directive, String> {
    match value.as_str() {
        Some("merge") => Ok(Directive::Merge),
        Some("replace") => Ok(Directive::Replace),
        Some("delete") => Ok(Directive::Delete),
        _ => Err(format!(
            "`$patch` is `delete`, `replace` or `merge`, found {}",
            describe(value)
        )),
    }
}

/// Whether a list element is the marker `{$patch: replace}` that replaces the whole list.
fn is_replace_marker(element: &Value) -> bool {
    element.as_object().is_some_and(|m| {
        m.len() == 1 && m.get(PATCH_DIRECTIVE).and_then(Value::as_str) == Some("replace")
    })
}

// ---------------------------------------------------------------------------------------
// Checking
// ---------------------------------------------------------------------------------------

/// Checks one node of a patch; `field` is the key the node is the value of.
fn check_node<'a>(
    node: &'a Value,
    field: Option<&str>,
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Result<(), PatchError> {
    within_depth(trail, depth)?;
    match node {
        Value::Object(map) => {
            let mut seen: HashSet<&str> = HashSet::new();
            for (raw, value) in map {
                trail.push(Seg::Key(raw));
                let result = check_entry(raw, value, &mut seen, trail, depth);
                trail.pop();
                result?;
            }
            Ok(())
        }
        Value::Array(items) => check_list(items, field, trail, depth),
        _ => Ok(()),
    }
}

/// Checks one key of a patch map and its value; the current path ends with the key.
fn check_entry<'a>(
    raw: &'a str,
    value: &'a Value,
    seen: &mut HashSet<&'a str>,
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Result<(), PatchError> {
    let (kind, key) = classify(raw).map_err(|message| error_at(trail, message))?;
    if kind != Kind::Directive && !seen.insert(key) {
        return Err(error_at(
            trail,
            format!(
                "the key {} is given more than once in this map (with and without anchors)",
                quoted(key)
            ),
        ));
    }
    match kind {
        Kind::Directive => directive(value)
            .map(|_| ())
            .map_err(|message| error_at(trail, message)),
        Kind::Conditional | Kind::Global => {
            if let Err(e) = pattern::check(value)
                && !has_variables(value, 0)
            {
                let mut field = render(trail);
                if !e.field.is_empty() {
                    if !e.field.starts_with('[') {
                        field.push('.');
                    }
                    field.push_str(&e.field);
                }
                return Err(PatchError {
                    field,
                    message: format!("invalid condition: {}", e.message),
                });
            }
            Ok(())
        }
        Kind::AddIfAbsent => check_literal(value, trail, depth + 1),
        Kind::Plain => check_node(value, Some(key), trail, depth + 1),
    }
}

/// Checks the value of an add-if-not-present anchor: written as is, so no anchors or
/// directives inside.
fn check_literal<'a>(
    value: &'a Value,
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Result<(), PatchError> {
    within_depth(trail, depth)?;
    match value {
        Value::Object(map) => {
            for (raw, v) in map {
                trail.push(Seg::Key(raw));
                let result = match classify(raw) {
                    Ok((Kind::Plain, _)) => check_literal(v, trail, depth + 1),
                    _ => Err(error_at(
                        trail,
                        "the value of an add-if-not-present anchor +(key) is added as is: \
                         anchors and directives inside it are not supported",
                    )),
                };
                trail.pop();
                result?;
            }
            Ok(())
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                trail.push(Seg::Index(i));
                let result = check_literal(v, trail, depth + 1);
                trail.pop();
                result?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Checks a patch list; the current path ends with its key.
fn check_list<'a>(
    items: &'a [Value],
    field: Option<&str>,
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Result<(), PatchError> {
    let all_maps = items.iter().all(Value::is_object);
    let anchored: Vec<bool> = items
        .iter()
        .map(|e| has_selectors(e, false, depth + 1))
        .collect();
    let key = if all_maps {
        merge_key(field, items, &anchored)
    } else {
        None
    };
    let replaced = !all_maps
        || items.iter().any(is_replace_marker)
        || (key.is_none() && !anchored.contains(&true));
    for (i, item) in items.iter().enumerate() {
        trail.push(Seg::Index(i));
        let result = check_element(item, key, anchored[i], replaced, trail, depth);
        trail.pop();
        result?;
    }
    Ok(())
}

/// Checks one element of a patch list; the current path ends with its index.
fn check_element<'a>(
    item: &'a Value,
    key: Option<&str>,
    anchored: bool,
    replaced: bool,
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Result<(), PatchError> {
    check_node(item, None, trail, depth + 1)?;
    let Value::Object(map) = item else {
        return Ok(());
    };
    if replaced && anchored && !is_replace_marker(item) {
        return Err(error_at(
            trail,
            "this list replaces the resource's list (it has no merge key, or holds \
             `$patch: replace`), so conditional and global anchors in its elements would \
             select nothing",
        ));
    }
    let deletes = map.get(PATCH_DIRECTIVE).and_then(Value::as_str) == Some("delete");
    let keyed = key.is_some_and(|k| key_value(item, k).is_some());
    // Anchors deeper in the element, in a list of its own, select nothing here: the
    // element would delete every resource element.
    let selects = anchored
        && map
            .keys()
            .any(|k| matches!(classify(k), Ok((Kind::Conditional | Kind::Global, _))));
    if deletes && !selects && !keyed {
        let wanted = key.map_or_else(
            || "this list has no merge key".to_owned(),
            |k| format!("give its merge key {}", quoted(k)),
        );
        return Err(error_at(
            trail,
            format!(
                "`$patch: delete` in a list element needs the element it deletes to be \
                 named: {wanted}, or select elements with conditional anchors of its own"
            ),
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Applying
// ---------------------------------------------------------------------------------------

/// Why merging stopped.
#[derive(Debug)]
enum Stop {
    /// A conditional anchor did not hold (skips the patch, or deselects a list element).
    Cond(String),
    /// A global anchor did not hold: the whole patch is skipped.
    Global(String),
    /// The patch is invalid or cannot be applied.
    Error(PatchError),
}

/// Merges `patch` into `res` (`None`: absent). `Ok(None)`: the key must not be present
/// afterwards. `field` is the key `patch` is the value of.
fn merge<'a>(
    res: Option<&Value>,
    patch: &'a Value,
    field: Option<&str>,
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Result<Option<Value>, Stop> {
    within_depth(trail, depth).map_err(Stop::Error)?;
    match patch {
        Value::Object(pm) => merge_map(res, pm, trail, depth),
        Value::Array(pl) => merge_list(res, pl, field, trail, depth),
        scalar => Ok(Some(scalar.clone())),
    }
}

/// Evaluates a conditional or global anchor `raw` (naming `key`) against the resource map;
/// the current path ends with the anchor. `Err` says why it does not hold.
fn anchor_holds(
    rm: Option<&Map<String, Value>>,
    key: &str,
    condition: &Value,
    trail: &[Seg<'_>],
    global: bool,
) -> Result<(), String> {
    let what = if global { "global" } else { "conditional" };
    let here = render_here(trail);
    match rm.and_then(|m| m.get(key)) {
        None => Err(format!(
            "{what} anchor {here} does not hold: the resource has no {} here",
            quoted(key)
        )),
        Some(value) => pattern::holds(value, condition)
            .map_err(|why| format!("{what} anchor {here} does not hold: {why}")),
    }
}

/// Merges a patch map into `res`.
fn merge_map<'a>(
    res: Option<&Value>,
    pm: &'a Map<String, Value>,
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Result<Option<Value>, Stop> {
    let rm = res.and_then(Value::as_object);
    let mut entries: Vec<(Kind, &'a str, &'a str, &'a Value)> = Vec::with_capacity(pm.len());
    let mut how = Directive::Merge;
    for (raw, value) in pm {
        trail.push(Seg::Key(raw));
        let parsed = classify(raw).and_then(|(kind, key)| {
            if kind == Kind::Directive {
                how = directive(value)?;
            }
            Ok((kind, key))
        });
        let parsed = parsed.map_err(|message| Stop::Error(error_at(trail, message)));
        trail.pop();
        let (kind, key) = parsed?;
        if kind != Kind::Directive {
            entries.push((kind, raw, key, value));
        }
    }

    // Conditions first, global anchors before conditional ones; none is written.
    for wanted in [Kind::Global, Kind::Conditional] {
        for &(kind, raw, key, condition) in &entries {
            if kind != wanted {
                continue;
            }
            trail.push(Seg::Key(raw));
            let verdict = anchor_holds(rm, key, condition, trail, kind == Kind::Global);
            trail.pop();
            if let Err(reason) = verdict {
                return Err(if kind == Kind::Global {
                    Stop::Global(reason)
                } else {
                    Stop::Cond(reason)
                });
            }
        }
    }

    let (mut out, children) = match how {
        Directive::Delete => return Ok(None),
        Directive::Replace => (Map::new(), None),
        Directive::Merge => (rm.cloned().unwrap_or_default(), rm),
    };
    for (kind, raw, key, value) in entries {
        match kind {
            Kind::Plain if value.is_null() => {
                out.remove(key);
            }
            Kind::Plain => {
                trail.push(Seg::Key(raw));
                let merged = merge(
                    children.and_then(|m| m.get(key)),
                    value,
                    Some(key),
                    trail,
                    depth + 1,
                );
                trail.pop();
                match merged? {
                    Some(v) => {
                        out.insert(key.to_owned(), v);
                    }
                    None => {
                        out.remove(key);
                    }
                }
            }
            Kind::AddIfAbsent => {
                if !children.is_some_and(|m| m.contains_key(key)) {
                    out.insert(key.to_owned(), value.clone());
                }
            }
            Kind::Conditional | Kind::Global | Kind::Directive => {}
        }
    }
    Ok(Some(Value::Object(out)))
}

/// Merges a patch list into `res`; `field` is the key of the list.
fn merge_list<'a>(
    res: Option<&Value>,
    pl: &'a [Value],
    field: Option<&str>,
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Result<Option<Value>, Stop> {
    let res_items = res.and_then(Value::as_array);
    let all_maps = pl.iter().all(Value::is_object);

    if field == Some("finalizers")
        && !pl.is_empty()
        && pl.iter().all(|v| !v.is_object() && !v.is_array())
    {
        // A set: the resource's entries in their order, then the new ones.
        let mut out = res_items.cloned().unwrap_or_default();
        for item in pl {
            if !out.contains(item) {
                out.push(item.clone());
            }
        }
        return Ok(Some(Value::Array(out)));
    }
    if pl.is_empty() {
        // Merging no element changes nothing; a replaced list becomes empty.
        let merging = field.is_some_and(|f| f == "finalizers" || known_merge_key(f, pl).is_some());
        return Ok(Some(match res_items {
            Some(items) if merging => Value::Array(items.clone()),
            _ => Value::Array(Vec::new()),
        }));
    }
    if !all_maps || pl.iter().any(is_replace_marker) {
        return replace_list(pl, trail, depth);
    }
    let anchored: Vec<bool> = pl
        .iter()
        .map(|e| has_selectors(e, false, depth + 1))
        .collect();
    let key = merge_key(field, pl, &anchored);
    if key.is_none() && !anchored.contains(&true) {
        return replace_list(pl, trail, depth);
    }

    let mut items = res_items.cloned().unwrap_or_default();
    for (i, element) in pl.iter().enumerate() {
        trail.push(Seg::Index(i));
        let result = if anchored[i] {
            merge_selected(&mut items, element, trail, depth + 1)
        } else {
            merge_keyed(&mut items, element, key, trail, depth + 1)
        };
        trail.pop();
        result?;
    }
    if res_items.is_none() && items.is_empty() {
        // Nothing was written: leave the resource's value (or its absence) alone.
        return Ok(res.cloned());
    }
    Ok(Some(Value::Array(items)))
}

/// The patch list replaces the resource's: each element is written as a new value.
/// Elements whose conditional anchors cannot hold (there is nothing to select) are left
/// out; a global anchor in them skips the patch.
fn replace_list<'a>(
    pl: &'a [Value],
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Result<Option<Value>, Stop> {
    let mut out = Vec::with_capacity(pl.len());
    for (i, element) in pl.iter().enumerate() {
        if is_replace_marker(element) {
            continue;
        }
        trail.push(Seg::Index(i));
        let merged = merge(None, element, None, trail, depth + 1);
        trail.pop();
        match merged {
            Ok(Some(v)) => out.push(v),
            Ok(None) | Err(Stop::Cond(_)) => {}
            Err(stop) => return Err(stop),
        }
    }
    Ok(Some(Value::Array(out)))
}

/// Merges a list element without anchors: into every resource element with the same
/// merge-key value, else appended.
fn merge_keyed<'a>(
    items: &mut Vec<Value>,
    element: &'a Value,
    key: Option<&'static str>,
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Result<(), Stop> {
    let wanted = key.and_then(|k| key_value(element, k).map(|v| (k, v)));
    let mut found = false;
    if let Some((k, v)) = wanted {
        let mut out = Vec::with_capacity(items.len() + 1);
        for item in items.drain(..) {
            if item.get(k) == Some(v) {
                found = true;
                if let Some(merged) = merge(Some(&item), element, None, trail, depth)? {
                    out.push(merged);
                }
            } else {
                out.push(item);
            }
        }
        *items = out;
    }
    if !found && let Some(new) = merge(None, element, None, trail, depth)? {
        items.push(new);
    }
    Ok(())
}

/// Merges a list element with conditional or global anchors into every resource element
/// that satisfies them; its plain fields, the merge key included, are merged, not matched
/// (select by name with `(name)`). A global anchor in it holds when some resource element
/// satisfies it.
fn merge_selected<'a>(
    items: &mut Vec<Value>,
    element: &'a Value,
    trail: &mut Vec<Seg<'a>>,
    depth: usize,
) -> Result<(), Stop> {
    let mut globals_held = false;
    let mut global_reason: Option<String> = None;
    let count = items.len();
    let mut out = Vec::with_capacity(count);
    for item in std::mem::take(items) {
        match merge(Some(&item), element, None, trail, depth) {
            Ok(merged) => {
                globals_held = true;
                out.extend(merged);
            }
            Err(Stop::Cond(_)) => {
                // Global anchors are evaluated before conditional ones: they held here.
                globals_held = true;
                out.push(item);
            }
            Err(Stop::Global(reason)) => {
                global_reason.get_or_insert(reason);
                out.push(item);
            }
            Err(stop @ Stop::Error(_)) => return Err(stop),
        }
    }
    *items = out;
    if !globals_held && has_selectors(element, true, depth) {
        let global_reason = global_reason.map(|reason| {
            if count > 1 {
                format!("{reason} (the first of {count} elements of the list; none satisfies it)")
            } else {
                reason
            }
        });
        return Err(Stop::Global(global_reason.unwrap_or_else(|| {
            format!(
                "the global anchors of {} hold for no element: the resource's list is \
                 empty or absent",
                render_here(trail)
            )
        })));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Checks the patch, applies it, and returns the patched resource.
    fn patched(resource: &Value, patch: &Value) -> Value {
        assert_eq!(check(patch), Ok(()), "patch {patch} should be valid");
        match apply(resource, patch) {
            Ok(Applied::Patched(value)) => value,
            other => panic!("expected a patched resource, got {other:?}"),
        }
    }

    /// Checks the patch, applies it, and returns why it was skipped.
    fn skipped(resource: &Value, patch: &Value) -> String {
        assert_eq!(check(patch), Ok(()), "patch {patch} should be valid");
        match apply(resource, patch) {
            Ok(Applied::Skipped(reason)) => reason,
            other => panic!("expected a skip, got {other:?}"),
        }
    }

    /// The error `check` gives.
    fn refused(patch: &Value) -> PatchError {
        match check(patch) {
            Err(e) => e,
            Ok(()) => panic!("patch {patch} should be refused"),
        }
    }

    fn pod(containers: &Value) -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": containers}})
    }

    // --- plain keys ---------------------------------------------------------------------

    #[test]
    fn maps_merge_recursively_and_scalars_replace() {
        let resource = json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "2"}}, "spec": {"replicas": 1}});
        let patch = json!({"metadata": {"labels": {"y": "3", "z": "4"}}, "spec": {"replicas": 3}});
        assert_eq!(
            patched(&resource, &patch),
            json!({"metadata": {"name": "a", "labels": {"x": "1", "y": "3", "z": "4"}}, "spec": {"replicas": 3}})
        );
    }

    #[test]
    fn a_value_of_another_type_replaces_and_null_deletes() {
        let resource = json!({"a": "text", "b": {"c": 1}, "c": [1, 2], "d": 1, "e": {"f": 1}});
        let patch = json!({"a": {"x": 1}, "b": "now a string", "c": {"y": [3]}, "d": null, "e": {"f": null}, "absent": null});
        assert_eq!(
            patched(&resource, &patch),
            json!({"a": {"x": 1}, "b": "now a string", "c": {"y": [3]}, "e": {}})
        );
    }

    #[test]
    fn a_new_map_is_written_without_its_null_keys() {
        let patch = json!({"spec": {"a": 1, "b": null, "c": {"d": null, "e": 2}}});
        assert_eq!(
            patched(&json!({}), &patch),
            json!({"spec": {"a": 1, "c": {"e": 2}}})
        );
    }

    #[test]
    fn the_resource_can_be_a_scalar_and_the_patch_must_be_a_map() {
        assert_eq!(patched(&json!("x"), &json!({"a": 1})), json!({"a": 1}));
        assert_eq!(refused(&json!([1])).field, "");
        assert!(apply(&json!({}), &json!("x")).is_err());
    }

    // --- lists --------------------------------------------------------------------------

    #[test]
    fn containers_merge_by_name_and_new_ones_are_appended() {
        let resource = pod(&json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]));
        let patch = json!({"spec": {"containers": [{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}]}});
        assert_eq!(
            patched(&resource, &patch)["spec"]["containers"],
            json!([{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}])
        );
    }

    #[test]
    fn the_docs_strategic_merge_example_adds_a_container_and_a_label() {
        let resource = pod(&json!([{"name": "web", "image": "web:1"}]));
        let patch = json!({
            "metadata": {"labels": {"name": "p"}},
            "spec": {"containers": [{"name": "nginx", "image": "nginx:latest", "imagePullPolicy": "Never", "command": ["ls"]}]}
        });
        let out = patched(&resource, &patch);
        assert_eq!(out["metadata"]["labels"], json!({"name": "p"}));
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "web", "image": "web:1"}, {"name": "nginx", "image": "nginx:latest", "imagePullPolicy": "Never", "command": ["ls"]}])
        );
    }

    #[test]
    fn known_fields_merge_by_their_kubernetes_merge_key() {
        let cases = [
            ("volumeMounts", "mountPath", json!("/a"), json!("/b")),
            (
                "volumeDevices",
                "devicePath",
                json!("/dev/a"),
                json!("/dev/b"),
            ),
            ("hostAliases", "ip", json!("10.0.0.1"), json!("10.0.0.2")),
            (
                "topologySpreadConstraints",
                "topologyKey",
                json!("zone"),
                json!("host"),
            ),
            ("conditions", "type", json!("Ready"), json!("Synced")),
            ("ownerReferences", "uid", json!("u1"), json!("u2")),
            ("readinessGates", "conditionType", json!("a"), json!("b")),
            ("env", "name", json!("A"), json!("B")),
            ("initContainers", "name", json!("i"), json!("j")),
            ("ephemeralContainers", "name", json!("e"), json!("f")),
            ("volumes", "name", json!("v"), json!("w")),
            ("imagePullSecrets", "name", json!("s"), json!("t")),
            ("resourceClaims", "name", json!("r"), json!("q")),
        ];
        for (field, key, first, second) in cases {
            // Where the key is not `name`, `name` is there too: the known key wins over
            // inference.
            let element = |k: &Value, name: &str, x: i64| {
                let mut m = Map::new();
                m.insert("name".to_owned(), json!(name));
                m.insert(key.to_owned(), k.clone());
                m.insert("x".to_owned(), json!(x));
                Value::Object(m)
            };
            let resource = json!({ field: [element(&first, "n1", 1), element(&second, "n2", 2)] });
            let patch = json!({ field: [element(&second, "other", 3)] });
            let want = json!([element(&first, "n1", 1), element(&second, "other", 3)]);
            assert_eq!(
                patched(&resource, &patch)[field],
                want,
                "{field} merges by {key}"
            );
        }
    }

    #[test]
    fn ports_merge_by_container_port_or_by_port() {
        let resource = json!({"ports": [{"containerPort": 80, "name": "http"}, {"containerPort": 443, "name": "https"}]});
        let patch = json!({"ports": [{"containerPort": 443, "protocol": "TCP"}]});
        assert_eq!(
            patched(&resource, &patch)["ports"],
            json!([{"containerPort": 80, "name": "http"}, {"containerPort": 443, "name": "https", "protocol": "TCP"}])
        );
        let service =
            json!({"ports": [{"port": 80, "targetPort": 8080}, {"port": 443, "targetPort": 8443}]});
        let patch = json!({"ports": [{"port": 80, "targetPort": 9090}]});
        assert_eq!(
            patched(&service, &patch)["ports"],
            json!([{"port": 80, "targetPort": 9090}, {"port": 443, "targetPort": 8443}])
        );
    }

    #[test]
    fn other_lists_infer_the_merge_key_or_are_replaced() {
        // `type` comes before `name` in the inference order.
        let resource = json!({"items": [{"type": "a", "name": "x", "v": 1}, {"type": "b", "name": "y", "v": 2}]});
        let patch = json!({"items": [{"type": "b", "name": "z", "v": 3}]});
        assert_eq!(
            patched(&resource, &patch)["items"],
            json!([{"type": "a", "name": "x", "v": 1}, {"type": "b", "name": "z", "v": 3}])
        );
        // Every element must have the key: here only some have `type`, all have `name`.
        let patch = json!({"items": [{"type": "b", "name": "y", "v": 4}, {"name": "w"}]});
        assert_eq!(
            patched(&resource, &patch)["items"],
            json!([{"type": "a", "name": "x", "v": 1}, {"type": "b", "name": "y", "v": 4}, {"name": "w"}])
        );
        // No candidate key: the patch list replaces the resource list.
        let tolerations = json!({"tolerations": [{"key": "a", "operator": "Exists"}]});
        let patch = json!({"tolerations": [{"key": "b", "operator": "Exists"}]});
        assert_eq!(
            patched(&tolerations, &patch)["tolerations"],
            json!([{"key": "b", "operator": "Exists"}])
        );
        // A merge-key value that is not a scalar does not count.
        let patch = json!({"items": [{"name": {"not": "scalar"}}]});
        assert_eq!(
            patched(&resource, &patch)["items"],
            json!([{"name": {"not": "scalar"}}])
        );
    }

    #[test]
    fn an_element_without_its_merge_key_is_appended() {
        let resource = pod(&json!([{"name": "a"}]));
        let patch = json!({"spec": {"containers": [{"image": "x"}]}});
        assert_eq!(
            patched(&resource, &patch)["spec"]["containers"],
            json!([{"name": "a"}, {"image": "x"}])
        );
    }

    #[test]
    fn lists_of_scalars_are_replaced_except_finalizers() {
        let resource = json!({"args": ["a", "b"], "metadata": {"finalizers": ["x", "y"]}});
        let patch = json!({"args": ["c"], "metadata": {"finalizers": ["z", "x", "z"]}});
        assert_eq!(
            patched(&resource, &patch),
            json!({"args": ["c"], "metadata": {"finalizers": ["x", "y", "z"]}})
        );
        assert_eq!(
            patched(&json!({}), &json!({"finalizers": ["a"]})),
            json!({"finalizers": ["a"]})
        );
        // A finalizers list holding maps is no set: replaced, and its maps written
        // without anchors.
        assert_eq!(
            patched(
                &resource,
                &json!({"finalizers": ["a", {"+(b)": 1, "c": null}]})
            ),
            json!({"args": ["a", "b"], "metadata": {"finalizers": ["x", "y"]}, "finalizers": ["a", {"b": 1}]})
        );
    }

    #[test]
    fn an_empty_patch_list_replaces_unless_the_list_merges() {
        let resource = json!({"args": ["a"], "containers": [{"name": "a"}], "finalizers": ["f"]});
        let patch = json!({"args": [], "containers": [], "finalizers": []});
        assert_eq!(
            patched(&resource, &patch),
            json!({"args": [], "containers": [{"name": "a"}], "finalizers": ["f"]})
        );
    }

    // --- directives ---------------------------------------------------------------------

    #[test]
    fn patch_delete_removes_a_list_element_by_its_merge_key() {
        let resource = pod(&json!([{"name": "a"}, {"name": "b"}, {"name": "c"}]));
        let patch = json!({"spec": {"containers": [{"name": "b", "$patch": "delete"}, {"name": "zz", "$patch": "delete"}]}});
        assert_eq!(
            patched(&resource, &patch)["spec"]["containers"],
            json!([{"name": "a"}, {"name": "c"}])
        );
    }

    #[test]
    fn patch_delete_with_conditional_anchors_removes_every_match() {
        let resource = pod(
            &json!([{"name": "a", "image": "x:latest"}, {"name": "b", "image": "x:1"}, {"name": "c", "image": "y:latest"}]),
        );
        let patch = json!({"spec": {"containers": [{"(image)": "*:latest", "$patch": "delete"}]}});
        assert_eq!(
            patched(&resource, &patch)["spec"]["containers"],
            json!([{"name": "b", "image": "x:1"}])
        );
    }

    #[test]
    fn patch_delete_in_a_map_deletes_the_map() {
        let resource = json!({"spec": {"securityContext": {"privileged": true}, "x": 1}});
        let patch = json!({"spec": {"securityContext": {"$patch": "delete"}}});
        assert_eq!(patched(&resource, &patch), json!({"spec": {"x": 1}}));
    }

    #[test]
    fn patch_replace_replaces_a_map_or_a_list_element_or_a_list() {
        let resource = json!({"spec": {"selector": {"a": "1", "b": "2"}}});
        let patch = json!({"spec": {"selector": {"$patch": "replace", "c": "3"}}});
        assert_eq!(
            patched(&resource, &patch),
            json!({"spec": {"selector": {"c": "3"}}})
        );

        let resource = pod(&json!([{"name": "a", "image": "a:1", "args": ["x"]}, {"name": "b"}]));
        let patch =
            json!({"spec": {"containers": [{"name": "a", "$patch": "replace", "image": "a:2"}]}});
        assert_eq!(
            patched(&resource, &patch)["spec"]["containers"],
            json!([{"name": "a", "image": "a:2"}, {"name": "b"}])
        );

        let patch = json!({"spec": {"containers": [{"$patch": "replace"}, {"name": "only"}]}});
        assert_eq!(
            patched(&resource, &patch)["spec"]["containers"],
            json!([{"name": "only"}])
        );
    }

    #[test]
    fn patch_merge_is_the_default() {
        let resource = json!({"a": {"b": 1}});
        assert_eq!(
            patched(&resource, &json!({"a": {"$patch": "merge", "c": 2}})),
            json!({"a": {"b": 1, "c": 2}})
        );
    }

    #[test]
    fn unsupported_directives_are_refused_by_name() {
        for (patch, field) in [
            (json!({"spec": {"$retainKeys": ["a"]}}), "spec.$retainKeys"),
            (
                json!({"spec": {"$setElementOrder/containers": [{"name": "a"}]}}),
                "spec.$setElementOrder/containers",
            ),
            (
                json!({"$deleteFromPrimitiveList/finalizers": ["a"]}),
                "$deleteFromPrimitiveList/finalizers",
            ),
        ] {
            let e = refused(&patch);
            assert_eq!(e.field, field);
            assert!(e.message.contains("is not supported"), "{}", e.message);
            assert!(apply(&json!({}), &patch).is_err());
        }
        let e = refused(&json!({"a": {"$patch": "keep"}}));
        assert_eq!(e.field, "a.$patch");
        assert!(e.message.contains("delete"), "{}", e.message);
        assert!(apply(&json!({}), &json!({"a": {"$patch": 1}})).is_err());
        let e = refused(&json!({"$patch": "delete"}));
        assert!(e.message.contains("whole resource"), "{}", e.message);
        assert!(apply(&json!({}), &json!({"$patch": "delete"})).is_err());
    }

    #[test]
    fn a_delete_that_names_no_element_is_refused() {
        let e = refused(&json!({"spec": {"containers": [{"image": "x", "$patch": "delete"}]}}));
        assert_eq!(e.field, "spec.containers[0]");
        assert!(e.message.contains("\"name\""), "{}", e.message);
        let e = refused(&json!({"tolerations": [{"key": "x", "$patch": "delete"}]}));
        assert!(e.message.contains("no merge key"), "{}", e.message);
        // Anchors only in a nested list would select every element.
        let e = refused(
            &json!({"spec": {"containers": [{"env": [{"(name)": "A"}], "$patch": "delete"}]}}),
        );
        assert_eq!(e.field, "spec.containers[0]");
    }

    // --- conditional anchors ------------------------------------------------------------

    #[test]
    fn the_docs_image_pull_policy_example_sets_it_on_latest_images_only() {
        let resource = pod(&json!([
            {"name": "a", "image": "nginx:latest"},
            {"name": "b", "image": "nginx:1.25"},
            {"name": "c", "image": "busybox:latest", "imagePullPolicy": "Always"}
        ]));
        let patch = json!({"spec": {"containers": [{"(image)": "*:latest", "imagePullPolicy": "IfNotPresent"}]}});
        assert_eq!(
            patched(&resource, &patch)["spec"]["containers"],
            json!([
                {"name": "a", "image": "nginx:latest", "imagePullPolicy": "IfNotPresent"},
                {"name": "b", "image": "nginx:1.25"},
                {"name": "c", "image": "busybox:latest", "imagePullPolicy": "IfNotPresent"}
            ])
        );
        // No match is not a skip, and nothing is created.
        let none = pod(&json!([{"name": "b", "image": "nginx:1.25"}]));
        assert_eq!(patched(&none, &patch), none);
        let no_containers = json!({"kind": "Pod", "spec": {}});
        assert_eq!(patched(&no_containers, &patch), no_containers);
    }

    #[test]
    fn a_wildcard_name_condition_selects_every_element() {
        let resource = pod(&json!([{"name": "a"}, {"name": "b"}, {"image": "nameless"}]));
        let patch = json!({"spec": {"containers": [{"(name)": "*", "securityContext": {"runAsNonRoot": true}}]}});
        assert_eq!(
            patched(&resource, &patch)["spec"]["containers"],
            json!([
                {"name": "a", "securityContext": {"runAsNonRoot": true}},
                {"name": "b", "securityContext": {"runAsNonRoot": true}},
                {"image": "nameless"}
            ])
        );
    }

    #[test]
    fn the_docs_port_example_sets_ports_whose_name_starts_with_secure() {
        let endpoints = json!({"kind": "Endpoints", "subsets": [
            {"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "secure-a", "port": 443}, {"name": "plain", "port": 80}]},
            {"ports": [{"name": "secure-b", "port": 8443}]}
        ]});
        let patch = json!({"subsets": [{"ports": [{"(name)": "secure*", "port": 6443}]}]});
        assert_eq!(
            patched(&endpoints, &patch)["subsets"],
            json!([
                {"addresses": [{"ip": "10.0.0.1"}], "ports": [{"name": "secure-a", "port": 6443}, {"name": "plain", "port": 80}]},
                {"ports": [{"name": "secure-b", "port": 6443}]}
            ])
        );
    }

    #[test]
    fn a_conditional_anchor_in_a_map_skips_the_whole_patch() {
        let patch = json!({"metadata": {"labels": {"a": "b"}}, "(kind)": "Deployment"});
        let reason = skipped(&json!({"kind": "Pod", "metadata": {}}), &patch);
        assert!(reason.contains("conditional anchor (kind)"), "{reason}");
        assert!(reason.contains("does not hold"), "{reason}");
        // Absent is not a match either.
        let reason = skipped(&json!({"metadata": {}}), &patch);
        assert!(reason.contains("has no \"kind\""), "{reason}");
        // When it holds, the anchor itself is not written.
        assert_eq!(
            patched(&json!({"kind": "Deployment"}), &patch),
            json!({"kind": "Deployment", "metadata": {"labels": {"a": "b"}}})
        );
    }

    #[test]
    fn all_conditional_anchors_of_a_map_must_hold() {
        let patch = json!({"spec": {"(hostNetwork)": true, "(dnsPolicy)": "Default", "x": 1}});
        let resource = json!({"spec": {"hostNetwork": true, "dnsPolicy": "ClusterFirst"}});
        let reason = skipped(&resource, &patch);
        assert!(reason.contains("spec.(dnsPolicy)"), "{reason}");
        let resource = json!({"spec": {"hostNetwork": true, "dnsPolicy": "Default"}});
        assert_eq!(
            patched(&resource, &patch),
            json!({"spec": {"hostNetwork": true, "dnsPolicy": "Default", "x": 1}})
        );
    }

    #[test]
    fn the_docs_cascading_containers_condition_skips_the_label() {
        let patch = json!({
            "metadata": {"labels": {"type": "database"}},
            "spec": {"(containers)": [{"(image)": "*cassandra* | *mongo*"}]}
        });
        let mongo =
            pod(&json!([{"name": "a", "image": "nginx"}, {"name": "db", "image": "mongo:7"}]));
        let out = patched(&mongo, &patch);
        assert_eq!(out["metadata"]["labels"], json!({"type": "database"}));
        assert_eq!(out["spec"], mongo["spec"]);

        let web = pod(&json!([{"name": "a", "image": "nginx"}]));
        let reason = skipped(&web, &patch);
        assert!(reason.contains("spec.(containers)"), "{reason}");
        let no_containers = json!({"kind": "Pod", "spec": {}});
        let reason = skipped(&no_containers, &patch);
        assert!(reason.contains("spec.(containers)"), "{reason}");
    }

    #[test]
    fn a_condition_with_a_map_value_must_match_entirely() {
        let patch = json!({"spec": {"(securityContext)": {"runAsNonRoot": true, "runAsUser": ">0"}, "ok": true}});
        assert_eq!(
            patched(
                &json!({"spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 10}}}),
                &patch
            )["spec"]["ok"],
            json!(true)
        );
        skipped(
            &json!({"spec": {"securityContext": {"runAsNonRoot": true, "runAsUser": 0}}}),
            &patch,
        );
    }

    #[test]
    fn a_condition_failing_deeper_in_a_list_element_only_deselects_it() {
        let resource = pod(&json!([
            {"name": "a", "securityContext": {"privileged": true}},
            {"name": "b", "securityContext": {"privileged": false}},
            {"name": "c"}
        ]));
        let patch = json!({"spec": {"containers": [{"(name)": "*", "securityContext": {"(privileged)": true, "allowPrivilegeEscalation": true}}]}});
        assert_eq!(
            patched(&resource, &patch)["spec"]["containers"],
            json!([
                {"name": "a", "securityContext": {"privileged": true, "allowPrivilegeEscalation": true}},
                {"name": "b", "securityContext": {"privileged": false}},
                {"name": "c"}
            ])
        );
    }

    #[test]
    fn a_name_condition_narrows_the_selection() {
        let resource =
            pod(&json!([{"name": "a", "image": "x:latest"}, {"name": "b", "image": "y:latest"}]));
        let patch = json!({"spec": {"containers": [{"(name)": "b", "(image)": "*:latest", "imagePullPolicy": "Always"}]}});
        assert_eq!(
            patched(&resource, &patch)["spec"]["containers"],
            json!([{"name": "a", "image": "x:latest"}, {"name": "b", "image": "y:latest", "imagePullPolicy": "Always"}])
        );
    }

    #[test]
    fn the_foreach_style_security_context_defaults_only_the_web_container() {
        let patch = json!({"spec": {"containers": [{"(name)": "web", "securityContext": {"+(allowPrivilegeEscalation)": false}}]}});
        // securityContext absent: created.
        let absent = pod(&json!([{"name": "web", "image": "w"}, {"name": "side", "image": "s"}]));
        assert_eq!(
            patched(&absent, &patch)["spec"]["containers"],
            json!([{"name": "web", "image": "w", "securityContext": {"allowPrivilegeEscalation": false}}, {"name": "side", "image": "s"}])
        );
        // Present without the field: added beside what is there.
        let present = pod(&json!([{"name": "web", "securityContext": {"runAsNonRoot": true}}]));
        assert_eq!(
            patched(&present, &patch)["spec"]["containers"],
            json!([{"name": "web", "securityContext": {"runAsNonRoot": true, "allowPrivilegeEscalation": false}}])
        );
        // Present with the field: left as it is.
        let set =
            pod(&json!([{"name": "web", "securityContext": {"allowPrivilegeEscalation": true}}]));
        assert_eq!(patched(&set, &patch), set);
    }

    // --- add-if-not-present anchors -----------------------------------------------------

    #[test]
    fn the_docs_add_if_not_present_label() {
        let patch = json!({"metadata": {"labels": {"+(lfx-mentorship)": "kyverno"}}});
        let without = json!({"kind": "ConfigMap", "metadata": {"name": "c", "labels": {"a": "b"}}});
        assert_eq!(
            patched(&without, &patch)["metadata"]["labels"],
            json!({"a": "b", "lfx-mentorship": "kyverno"})
        );
        let with = json!({"kind": "ConfigMap", "metadata": {"name": "c", "labels": {"lfx-mentorship": "someone"}}});
        assert_eq!(patched(&with, &patch), with);
        let no_labels = json!({"kind": "ConfigMap", "metadata": {"name": "c"}});
        assert_eq!(
            patched(&no_labels, &patch)["metadata"]["labels"],
            json!({"lfx-mentorship": "kyverno"})
        );
    }

    #[test]
    fn the_docs_default_security_context_adds_only_what_is_missing() {
        let patch = json!({"spec": {"securityContext": {
            "+(runAsNonRoot)": true, "+(runAsUser)": 1000, "+(runAsGroup)": 3000, "+(fsGroup)": 2000
        }}});
        let resource = json!({"kind": "Pod", "spec": {"securityContext": {"runAsUser": 0}}});
        assert_eq!(
            patched(&resource, &patch)["spec"]["securityContext"],
            json!({"runAsNonRoot": true, "runAsUser": 0, "runAsGroup": 3000, "fsGroup": 2000})
        );
        assert_eq!(
            patched(&json!({"kind": "Pod"}), &patch)["spec"]["securityContext"],
            json!({"runAsNonRoot": true, "runAsUser": 1000, "runAsGroup": 3000, "fsGroup": 2000})
        );
    }

    #[test]
    fn an_add_anchor_does_not_recurse_into_a_present_value() {
        let patch = json!({"spec": {"+(securityContext)": {"runAsNonRoot": true}}});
        let resource = json!({"spec": {"securityContext": {"runAsUser": 5}}});
        assert_eq!(patched(&resource, &patch), resource);
        // A null value is present.
        let resource = json!({"spec": {"securityContext": null}});
        assert_eq!(patched(&resource, &patch), resource);
    }

    #[test]
    fn an_add_anchor_value_is_written_as_is_and_holds_no_anchors() {
        let e = refused(&json!({"spec": {"+(securityContext)": {"+(runAsNonRoot)": true}}}));
        assert_eq!(e.field, "spec.+(securityContext).+(runAsNonRoot)");
        let e = refused(&json!({"+(a)": [{"b": {"$patch": "delete"}}]}));
        assert_eq!(e.field, "+(a)[0].b.$patch");
        assert_eq!(
            patched(&json!({}), &json!({"+(a)": {"b": null, "c": [1]}})),
            json!({"a": {"b": null, "c": [1]}})
        );
    }

    // --- global anchors -----------------------------------------------------------------

    #[test]
    fn the_docs_global_anchor_adds_image_pull_secrets() {
        let patch = json!({"spec": {
            "containers": [{"<(image)": "corp.reg.com/*"}],
            "imagePullSecrets": [{"name": "my-secret"}]
        }});
        let corp = pod(
            &json!([{"name": "a", "image": "docker.io/nginx"}, {"name": "web", "image": "corp.reg.com/nginx"}]),
        );
        let out = patched(&corp, &patch);
        assert_eq!(
            out["spec"]["imagePullSecrets"],
            json!([{"name": "my-secret"}])
        );
        // The containers are untouched: an element of only global anchors writes nothing.
        assert_eq!(out["spec"]["containers"], corp["spec"]["containers"]);

        let other = pod(&json!([{"name": "a", "image": "docker.io/nginx"}]));
        let reason = skipped(&other, &patch);
        assert!(reason.contains("spec.containers[0].<(image)"), "{reason}");
        let reason = skipped(&json!({"kind": "Pod", "spec": {}}), &patch);
        assert!(reason.contains("spec.containers[0]"), "{reason}");
    }

    #[test]
    fn the_docs_empty_dir_safe_to_evict_annotation() {
        let patch = json!({
            "metadata": {"annotations": {"+(cluster-autoscaler.kubernetes.io/safe-to-evict)": "true"}},
            "spec": {"volumes": [{"<(emptyDir)": {}}]}
        });
        let with = json!({"kind": "Pod", "metadata": {"name": "p"}, "spec": {"volumes": [
            {"name": "cfg", "configMap": {"name": "c"}}, {"name": "tmp", "emptyDir": {}}
        ]}});
        let out = patched(&with, &patch);
        assert_eq!(
            out["metadata"]["annotations"],
            json!({"cluster-autoscaler.kubernetes.io/safe-to-evict": "true"})
        );
        assert_eq!(out["spec"], with["spec"]);
        // Already annotated: left alone.
        let annotated = json!({"metadata": {"annotations": {"cluster-autoscaler.kubernetes.io/safe-to-evict": "false"}}, "spec": {"volumes": [{"name": "tmp", "emptyDir": {"medium": "Memory"}}]}});
        assert_eq!(patched(&annotated, &patch), annotated);
        // No emptyDir volume, or no volume: skipped.
        let without = json!({"metadata": {}, "spec": {"volumes": [{"name": "cfg", "configMap": {"name": "c"}}]}});
        let reason = skipped(&without, &patch);
        assert!(reason.contains("spec.volumes[0].<(emptyDir)"), "{reason}");
        skipped(&json!({"metadata": {}, "spec": {}}), &patch);
    }

    #[test]
    fn a_global_anchor_in_a_map_skips_when_false_or_absent() {
        let patch = json!({"metadata": {"<(namespace)": "prod-*", "labels": {"tier": "prod"}}});
        assert_eq!(
            patched(&json!({"metadata": {"namespace": "prod-eu"}}), &patch),
            json!({"metadata": {"namespace": "prod-eu", "labels": {"tier": "prod"}}})
        );
        let reason = skipped(&json!({"metadata": {"namespace": "dev"}}), &patch);
        assert!(
            reason.starts_with("global anchor metadata.<(namespace)"),
            "{reason}"
        );
        skipped(&json!({"metadata": {}}), &patch);
    }

    #[test]
    fn a_global_anchor_beside_other_fields_selects_the_elements_it_holds_for() {
        let resource = pod(
            &json!([{"name": "a", "image": "corp.reg.com/a"}, {"name": "b", "image": "docker.io/b"}]),
        );
        let patch = json!({"spec": {"containers": [{"<(image)": "corp.reg.com/*", "imagePullPolicy": "Always"}]}});
        assert_eq!(
            patched(&resource, &patch)["spec"]["containers"],
            json!([{"name": "a", "image": "corp.reg.com/a", "imagePullPolicy": "Always"}, {"name": "b", "image": "docker.io/b"}])
        );
    }

    #[test]
    fn a_global_anchor_that_fails_skips_even_after_other_changes() {
        // The label would come first, but nothing of a skipped patch is applied.
        let patch = json!({"a": {"x": 1}, "spec": {"<(hostNetwork)": true}});
        let reason = skipped(&json!({"spec": {"hostNetwork": false}}), &patch);
        assert!(reason.contains("spec.<(hostNetwork)"), "{reason}");
    }

    // --- anchors refused ----------------------------------------------------------------

    #[test]
    fn validate_only_and_malformed_anchors_are_refused() {
        for (patch, field, needle) in [
            (
                json!({"spec": {"=(hostNetwork)": false}}),
                "spec.=(hostNetwork)",
                "equality",
            ),
            (
                json!({"spec": {"X(hostPID)": null}}),
                "spec.X(hostPID)",
                "negation",
            ),
            (
                json!({"spec": {"containers": [{"^(name)": "a"}]}}),
                "spec.containers[0].^(name)",
                "existence",
            ),
            (json!({"()": 1}), "()", "empty key"),
            (json!({"+((a))": 1}), "+((a))", "another anchor"),
            (json!({"a": 1, "+(a)": 2}), "a", "more than once"),
        ] {
            let e = refused(&patch);
            assert!(
                e.field == field || e.field.ends_with(field),
                "{field}: {e:?}"
            );
            assert!(e.message.contains(needle), "{needle}: {}", e.message);
            assert!(apply(&json!({"spec": {}}), &patch).is_err() || needle == "more than once");
        }
    }

    #[test]
    fn an_invalid_condition_is_refused_unless_it_holds_variables() {
        let e = refused(&json!({"spec": {"(replicas)": ">"}}));
        assert_eq!(e.field, "spec.(replicas)");
        assert!(e.message.starts_with("invalid condition"), "{}", e.message);
        let e = refused(&json!({"spec": {"(a)": {"b": [">"]}}}));
        assert_eq!(e.field, "spec.(a).b[0]");
        assert_eq!(
            check(&json!({"spec": {"(a)": ">{{request.object.x}}"}})),
            Ok(())
        );
    }

    #[test]
    fn anchors_in_a_replaced_list_are_refused() {
        let e = refused(&json!({"args": ["a", {"(b)": 1}]}));
        assert_eq!(e.field, "args[1]");
        let e = refused(&json!({"containers": [{"$patch": "replace"}, {"(name)": "a"}]}));
        assert_eq!(e.field, "containers[1]");
    }

    #[test]
    fn paths_quote_keys_that_are_not_plain() {
        let e = refused(&json!({"metadata": {"annotations": {"a.b/c": {"=(x)": 1}}}}));
        assert_eq!(e.field, "metadata.annotations[\"a.b/c\"].=(x)");
        assert_eq!(
            e.to_string(),
            format!("invalid patch at {}: {}", e.field, e.message)
        );
    }

    // --- hostile input ------------------------------------------------------------------

    fn nested(depth: usize, list: bool) -> Value {
        let mut value = json!("leaf");
        for _ in 0..depth {
            value = if list {
                json!([value])
            } else {
                json!({ "a": value })
            };
        }
        value
    }

    #[test]
    fn deep_patches_are_refused_not_overflowed() {
        for list in [false, true] {
            let patch = json!({ "a": nested(500, list) });
            let e = refused(&patch);
            assert!(e.message.contains("deeper than 64"), "{}", e.message);
            assert!(apply(&json!({}), &patch).is_err());
            assert!(apply(&json!({ "a": nested(500, list) }), &patch).is_err());
        }
        let ok = json!({ "a": nested(60, false) });
        assert_eq!(check(&ok), Ok(()));
        assert!(apply(&json!({}), &ok).is_ok());
    }

    #[test]
    fn a_deep_resource_under_a_condition_is_not_a_panic() {
        let resource = json!({ "a": nested(120, false) });
        // The condition's value is a validate pattern, bounded by the pattern's own limit.
        let patch = json!({"(a)": nested(120, false), "b": 1});
        assert_eq!(check(&patch), Ok(()));
        assert_eq!(patched(&resource, &patch)["b"], json!(1));
        let patch = json!({"(a)": nested(300, false)});
        assert!(check(&patch).is_err());
        assert!(matches!(apply(&resource, &patch), Ok(Applied::Skipped(_))));
    }

    // --- properties ---------------------------------------------------------------------

    fn leaf() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-2i64..3).prop_map(Value::from),
            prop::sample::select(vec![
                "a", "b", "*", "a*", "x|a", ">1", "delete", "replace", "merge", "{{x}}"
            ])
            .prop_map(Value::from),
        ]
    }

    fn tree(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
        leaf().prop_recursive(4, 40, 4, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(prop::sample::select(keys), inner, 0..4).prop_map(
                    |m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
                ),
            ]
        })
    }

    /// A patch: a map at the top.
    fn patch_tree(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
        prop::collection::btree_map(prop::sample::select(keys), tree(keys), 0..5)
            .prop_map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
    }

    const RESOURCE_KEYS: &[&str] = &[
        "a",
        "b",
        "name",
        "type",
        "image",
        "containers",
        "finalizers",
        "ports",
        "port",
    ];
    const ANY_KEYS: &[&str] = &[
        "a",
        "b",
        "name",
        "type",
        "image",
        "containers",
        "finalizers",
        "ports",
        "port",
        "(a)",
        "(name)",
        "+(a)",
        "+(b)",
        "<(image)",
        "<(a)",
        "$patch",
        "=(a)",
        "X(b)",
        "^(a)",
        "$retainKeys",
        "()",
    ];
    const PLAIN_KEYS: &[&str] = &["a", "b", "name", "type", "ip", "finalizers", "+(c)", "+(d)"];

    proptest! {
        #[test]
        fn apply_and_check_never_panic(resource in tree(RESOURCE_KEYS), patch in tree(ANY_KEYS)) {
            let _ = check(&patch);
            let _ = apply(&resource, &patch);
        }

        #[test]
        fn a_checked_patch_without_directives_or_conditions_is_idempotent(
            resource in tree(RESOURCE_KEYS),
            patch in patch_tree(PLAIN_KEYS),
        ) {
            prop_assume!(check(&patch).is_ok());
            let once = match apply(&resource, &patch) {
                Ok(Applied::Patched(v)) => v,
                other => return Err(TestCaseError::fail(format!("first apply: {other:?}"))),
            };
            let twice = match apply(&once, &patch) {
                Ok(Applied::Patched(v)) => v,
                other => return Err(TestCaseError::fail(format!("second apply: {other:?}"))),
            };
            prop_assert_eq!(once, twice);
        }

        #[test]
        fn anchors_are_never_written(resource in tree(RESOURCE_KEYS), patch in patch_tree(ANY_KEYS)) {
            if check(&patch).is_err() {
                return Ok(());
            }
            if let Ok(Applied::Patched(out)) = apply(&resource, &patch) {
                prop_assert!(!has_anchor_key(&out, &resource), "{out}");
            }
        }
    }

    /// Whether `out` has a key written as an anchor or directive that `resource` did not
    /// have at the same place (add-if-not-present values are written as is, but checked
    /// patches hold no anchors there).
    fn has_anchor_key(out: &Value, resource: &Value) -> bool {
        match out {
            Value::Object(map) => map.iter().any(|(k, v)| {
                let before = resource.get(k);
                (before.is_none() && (k.ends_with(')') || k.starts_with('$')))
                    || has_anchor_key(v, before.unwrap_or(&Value::Null))
            }),
            Value::Array(items) => items.iter().any(|v| has_anchor_key(v, &Value::Null)),
            _ => false,
        }
    }
}
