//! Kyverno `validate.foreach`: a check run for every element of a list.
//!
//! Each entry has a `list` (JMESPath, without braces, such as
//! `request.object.spec.containers`) and one of `pattern`, `anyPattern`, `deny` or a
//! nested `foreach`, with optional `preconditions` (outermost loop only, as in Kyverno)
//! and `elementScope` (default true: a pattern is matched against the element; false:
//! against the whole object). Expressions see `element`, `elementIndex`, and for nested
//! loops `elementIndex0`, `elementIndex1`… by depth.

use std::collections::BTreeMap;

use idp_core::{Error, Result};
use jmespath::{Expression, Rcvar, ToJmespath, Variable};
use serde_json::Value;

use super::conditions::Conditions;
use super::pattern::{self, Outcome};

/// Deeper nesting of `foreach` than this is refused.
const MAX_DEPTH: usize = 8;

/// What one entry checks per element.
#[derive(Debug, Clone)]
enum Each {
    Pattern(Value),
    AnyPattern(Vec<Value>),
    Deny(Conditions),
    Nested(Vec<ForEach>),
}

/// One `foreach` entry.
#[derive(Clone)]
pub(super) struct ForEach {
    list: Box<Expression<'static>>,
    /// Where the list is, when `list` is a plain path, for the paths of findings.
    at: Option<At>,
    preconditions: Option<Conditions>,
    element_scope: bool,
    each: Each,
}

impl std::fmt::Debug for ForEach {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForEach")
            .field("list", &self.list.as_str())
            .field("each", &self.each)
            .finish_non_exhaustive()
    }
}

/// A finding: where (when known) and why.
pub(super) struct Finding {
    pub(super) path: Option<String>,
    pub(super) why: String,
}

/// Where a list is: a dotted path from the object, or from the outer loop's element.
#[derive(Debug, Clone, PartialEq, Eq)]
enum At {
    Object(String),
    Element(String),
}

/// `request.object.spec.containers` → the object's `spec.containers`;
/// `element.hosts` → the element's `hosts`; anything else → `None`.
fn plain_path(list: &str) -> Option<At> {
    let list = list.trim();
    let (from_element, rest) = match list.strip_prefix("request.object.") {
        Some(rest) => (false, rest),
        None => (true, list.strip_prefix("element.")?),
    };
    let rest = rest.strip_suffix("[]").unwrap_or(rest);
    let plain = rest
        .split('.')
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    plain.then(|| {
        if from_element {
            At::Element(rest.to_owned())
        } else {
            At::Object(rest.to_owned())
        }
    })
}

impl ForEach {
    /// Read the `foreach` list at `field`.
    pub(super) fn parse_list(value: &Value, field: &str, here: &str) -> Result<Vec<Self>> {
        Self::parse_at(value, field, here, 0)
    }

    fn parse_at(value: &Value, field: &str, here: &str, depth: usize) -> Result<Vec<Self>> {
        parse_entries(value, field, here, depth, Self::parse_one)
    }

    fn parse_one(item: &Value, field: &str, here: &str, depth: usize) -> Result<Self> {
        let bad = |what: String| Error::invalid_input(format!("{here}{what}"));
        let (list, expr, preconditions) = parse_head(item, field, here, depth)?;
        let expr = expr.as_str();
        let each = if let Some(p) = item.get("pattern").filter(|p| !p.is_null()) {
            check_pattern(p, &format!("{field}.pattern"), here)?;
            Each::Pattern(p.clone())
        } else if let Some(list) = item.get("anyPattern").filter(|p| !p.is_null()) {
            let patterns = list
                .as_array()
                .filter(|l| !l.is_empty())
                .ok_or_else(|| bad(format!("{field}.anyPattern must be a non-empty list")))?;
            for (i, p) in patterns.iter().enumerate() {
                check_pattern(p, &format!("{field}.anyPattern[{i}]"), here)?;
            }
            Each::AnyPattern(patterns.clone())
        } else if let Some(deny) = item.get("deny").filter(|p| !p.is_null()) {
            Each::Deny(match deny.get("conditions") {
                None | Some(Value::Null) => Conditions::default(),
                Some(c) => Conditions::parse(c, &format!("{field}.deny.conditions"), here)?,
            })
        } else if let Some(nested) = item.get("foreach").filter(|p| !p.is_null()) {
            Each::Nested(Self::parse_at(
                nested,
                &format!("{field}.foreach"),
                here,
                depth + 1,
            )?)
        } else {
            return Err(bad(format!(
                "{field}: give pattern, anyPattern, deny or a nested foreach"
            )));
        };
        Ok(Self {
            list: Box::new(list),
            at: plain_path(expr),
            preconditions,
            element_scope: item
                .get("elementScope")
                .and_then(Value::as_bool)
                .unwrap_or(true),
            each,
        })
    }

    /// Run every entry of `list` over `data`; `object` is the object (or Pod template
    /// view) patterns without element scope match; `prefix` is put before the paths of
    /// findings (`spec.template.` for an auto-generated rule).
    pub(super) fn run_all(
        list: &[Self],
        data: &Rcvar,
        object: &Value,
        prefix: &str,
        out: &mut Vec<Finding>,
    ) -> std::result::Result<(), String> {
        for entry in list {
            entry.run(data, object, prefix, 0, None, out)?;
        }
        Ok(())
    }

    fn run(
        &self,
        data: &Rcvar,
        object: &Value,
        prefix: &str,
        depth: usize,
        outer_path: Option<&str>,
        out: &mut Vec<Finding>,
    ) -> std::result::Result<(), String> {
        let items = self
            .list
            .search(data.clone())
            .map_err(|e| format!("foreach list {:?} failed: {e}", self.list.as_str()))?;
        let items: Vec<Rcvar> = match &*items {
            Variable::Null => Vec::new(),
            Variable::Array(items) => items.clone(),
            _ => {
                return Err(format!(
                    "foreach list {:?} is not a list",
                    self.list.as_str()
                ));
            }
        };
        let base = match (&self.at, outer_path) {
            (Some(At::Object(at)), _) => Some(format!("{prefix}{at}")),
            (Some(At::Element(at)), Some(outer)) => Some(format!("{outer}.{at}")),
            _ => None,
        };
        for (i, item) in items.iter().enumerate() {
            let element_data = with_element(data, item, i, depth)?;
            if let Some(pre) = &self.preconditions
                && !pre.evaluate(&element_data)?.holds
            {
                continue;
            }
            let here = base.as_ref().map(|b| format!("{b}[{i}]"));
            let join = |inner: &str| match (&here, inner.is_empty()) {
                (Some(h), true) => Some(h.clone()),
                (Some(h), false) => Some(format!("{h}.{inner}")),
                (None, _) => None,
            };
            let element: Value =
                serde_json::to_value(&**item).map_err(|e| format!("foreach element: {e}"))?;
            let scope = if self.element_scope { &element } else { object };
            match &self.each {
                Each::Pattern(p) => {
                    let p = if super::mutate::has_variables(p) {
                        std::borrow::Cow::Owned(super::mutate::substitute(p, &element_data, 0)?)
                    } else {
                        std::borrow::Cow::Borrowed(p)
                    };
                    if let Outcome::Fail { path, message } = pattern::validate(scope, &p) {
                        let path = if self.element_scope {
                            join(&path)
                        } else {
                            Some(format!("{prefix}{path}"))
                        };
                        out.push(Finding { path, why: message });
                    }
                }
                Each::AnyPattern(list) => {
                    let mut failures = Vec::new();
                    for (k, p) in list.iter().enumerate() {
                        let p = if super::mutate::has_variables(p) {
                            std::borrow::Cow::Owned(super::mutate::substitute(p, &element_data, 0)?)
                        } else {
                            std::borrow::Cow::Borrowed(p)
                        };
                        match pattern::validate(scope, &p) {
                            Outcome::Fail { path, message } => {
                                failures.push(format!("anyPattern[{k}]: {path}: {message}"));
                            }
                            Outcome::Pass | Outcome::Skip { .. } => {
                                failures.clear();
                                break;
                            }
                        }
                    }
                    if !failures.is_empty() {
                        out.push(Finding {
                            path: here.clone(),
                            why: format!("no pattern holds: {}", failures.join("; ")),
                        });
                    }
                }
                Each::Deny(conditions) => {
                    let verdict = conditions.evaluate(&element_data)?;
                    if verdict.holds {
                        let said = &verdict.messages;
                        out.push(Finding {
                            path: here.clone(),
                            why: if said.is_empty() {
                                "the deny conditions hold".to_owned()
                            } else {
                                said.join("; ")
                            },
                        });
                    }
                }
                Each::Nested(list) => {
                    for entry in list {
                        entry.run(
                            &element_data,
                            object,
                            prefix,
                            depth + 1,
                            here.as_deref(),
                            out,
                        )?;
                    }
                }
            }
        }
        Ok(())
    }
}

fn check_pattern(p: &Value, field: &str, here: &str) -> Result<()> {
    pattern::check(p).map_err(|e| {
        let at = if e.field.is_empty() {
            field.to_owned()
        } else {
            format!("{field}.{}", e.field)
        };
        Error::invalid_input(format!("{here}{at}: {}", e.message))
    })
}

/// The entries of a `foreach` list at `depth`, each read by `parse_one(item, field,
/// here, depth)`: a non-empty list, nested no deeper than [`MAX_DEPTH`].
pub(super) fn parse_entries<T>(
    value: &Value,
    field: &str,
    here: &str,
    depth: usize,
    parse_one: impl Fn(&Value, &str, &str, usize) -> Result<T>,
) -> Result<Vec<T>> {
    if depth > MAX_DEPTH {
        return Err(Error::invalid_input(format!(
            "{here}{field}: foreach nested deeper than {MAX_DEPTH} levels"
        )));
    }
    let items = value.as_array().filter(|l| !l.is_empty()).ok_or_else(|| {
        Error::invalid_input(format!("{here}{field} must be a non-empty list of entries"))
    })?;
    items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_one(item, &format!("{field}[{i}]"), here, depth))
        .collect()
}

/// What every `foreach` entry (validate or mutate) has: its `list` (compiled, and the
/// expression as written without braces) and its `preconditions` (outermost loop only).
/// `context` entries in a loop are refused.
pub(super) fn parse_head(
    item: &Value,
    field: &str,
    here: &str,
    depth: usize,
) -> Result<(Expression<'static>, String, Option<Conditions>)> {
    let bad = |what: String| Error::invalid_input(format!("{here}{what}"));
    if item.get("context").is_some_and(|v| !v.is_null()) {
        return Err(bad(format!(
            "{field}.context: context entries in a foreach are not supported (put them on the rule)"
        )));
    }
    let text = item
        .get("list")
        .and_then(Value::as_str)
        .filter(|l| !l.trim().is_empty())
        .ok_or_else(|| bad(format!("{field}.list is required: the JMESPath of the list to iterate (request.object.spec.containers)")))?;
    let expr = text
        .trim()
        .trim_start_matches("{{")
        .trim_end_matches("}}")
        .trim();
    let list = super::functions::compile(expr)
        .map_err(|e| bad(format!("{field}.list: {expr:?} is not valid JMESPath: {e}")))?;
    let preconditions = match item.get("preconditions").filter(|p| !p.is_null()) {
        None => None,
        Some(_) if depth > 0 => {
            return Err(bad(format!(
                "{field}.preconditions: Kyverno allows preconditions only on the outermost foreach"
            )));
        }
        Some(p) => Some(Conditions::parse(
            p,
            &format!("{field}.preconditions"),
            here,
        )?),
    };
    Ok((list, expr.to_owned(), preconditions))
}

/// `data` with `element`, `elementIndex` and `elementIndex<depth>` set.
pub(super) fn with_element(
    data: &Rcvar,
    item: &Rcvar,
    index: usize,
    depth: usize,
) -> std::result::Result<Rcvar, String> {
    let mut map: BTreeMap<String, Rcvar> = data.as_object().cloned().unwrap_or_default();
    let index = index
        .to_jmespath()
        .map_err(|e| format!("foreach index: {e}"))?;
    map.insert("element".to_owned(), item.clone());
    map.insert("elementIndex".to_owned(), index.clone());
    map.insert(format!("elementIndex{depth}"), index);
    Ok(Rcvar::new(Variable::Object(map)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths() {
        assert_eq!(
            plain_path("request.object.spec.containers"),
            Some(At::Object("spec.containers".into()))
        );
        assert_eq!(
            plain_path("request.object.spec.tls[]"),
            Some(At::Object("spec.tls".into()))
        );
        assert_eq!(
            plain_path("request.object.spec.[containers, initContainers][]"),
            None
        );
        assert_eq!(
            plain_path("element.hosts"),
            Some(At::Element("hosts".into()))
        );
        assert_eq!(plain_path("images.containers"), None);
    }
}
