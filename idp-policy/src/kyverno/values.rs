//! Mocked values for a Kyverno CLI test: the values file a `kyverno-test.yaml` names
//! with `variables:` (or gives inline as `values:`), read into [`Values`].
//!
//! A values file has, all optional:
//!
//! - `globalValues`: variables for every rule and resource;
//! - `policies`: per policy `name`, `rules` (`name` and `values`: the variables of that
//!   rule) and `resources` (`name`, the resource's `metadata.name`, and `values`: the
//!   variables when that resource is checked);
//! - `namespaceSelector`: namespaces (`name`) and their `labels`, as a rule's
//!   `namespaceSelector` sees them.
//!
//! A variable's key is its dotted path (`request.operation`, `dictionary.data.env`);
//! its value any YAML. The file may start with `apiVersion: cli.kyverno.io/v1alpha1`
//! and `kind: Values` (or have neither, as older files do). `subresources` and rules'
//! `foreachValues` are refused, naming the field.

use std::collections::BTreeMap;
use std::path::Path;

use idp_core::{Error, Result};
use serde_json::{Map, Value};

/// The values a Kyverno CLI values file gives: variables for all rules
/// (`globalValues`), for one rule of a policy, or for one resource checked by a policy,
/// and namespace labels (`namespaceSelector`). Give them to a policy set with
/// [`KyvernoPolicy::with_values`](super::KyvernoPolicy::with_values).
///
/// ```
/// use idp_policy::kyverno::Values;
///
/// let values = Values::from_yaml(
///     "apiVersion: cli.kyverno.io/v1alpha1\nkind: Values\nglobalValues:\n  request.operation: UPDATE\nnamespaceSelector:\n  - name: shop\n    labels: {team: web}\n",
///     None,
/// )
/// .unwrap();
/// assert!(!values.is_empty());
///
/// let err = Values::from_yaml("policies:\n  - rules: []\n", Some("values.yaml".as_ref())).unwrap_err();
/// assert!(err.to_string().contains("values.yaml: policies[0].name is required"), "{err}");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Values {
    global: Map<String, Value>,
    policies: Vec<PolicyValues>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
}

/// The values of one policy.
#[derive(Debug, Clone, Default)]
struct PolicyValues {
    name: String,
    /// `(rule name, values)`.
    rules: Vec<(String, Map<String, Value>)>,
    /// `(resource name, values)`.
    resources: Vec<(String, Map<String, Value>)>,
}

const API_VERSION: &str = "cli.kyverno.io/v1alpha1";

/// The operations `request.operation` may be.
const OPERATIONS: [&str; 4] = ["CREATE", "UPDATE", "DELETE", "CONNECT"];

impl Values {
    /// Read a values file's YAML. `file` names it in errors.
    ///
    /// ```
    /// use idp_policy::kyverno::Values;
    /// let v = Values::from_yaml("policies:\n  - name: p\n    rules:\n      - name: r\n        values: {registries.data.allowed: ghcr.io}\n", None).unwrap();
    /// assert!(!v.is_empty());
    /// let err = Values::from_yaml("globalValues: [1]\n", None).unwrap_err();
    /// assert!(err.to_string().contains("globalValues must be a mapping"), "{err}");
    /// ```
    pub fn from_yaml(yaml: &str, file: Option<&Path>) -> Result<Self> {
        let here = file.map_or_else(String::new, |f| format!("{}: ", f.display()));
        let doc: Value = serde_saphyr::from_str(yaml).map_err(|e| {
            Error::invalid_input(format!(
                "{here}not a values file: the YAML does not parse: {e}"
            ))
        })?;
        Self::from_value(&doc, file)
    }

    /// Read values already parsed (the `values` mapping of a test file, or a values
    /// file's document). `file` names where they come from in errors.
    ///
    /// ```
    /// use idp_policy::kyverno::Values;
    /// let v = Values::from_value(&serde_json::json!({"globalValues": {"request.operation": "DELETE"}}), None).unwrap();
    /// assert!(!v.is_empty());
    /// let err = Values::from_value(&serde_json::json!({"globalValues": {"request.operation": "PATCH"}}), None).unwrap_err();
    /// assert!(err.to_string().contains("request.operation"), "{err}");
    /// ```
    pub fn from_value(doc: &Value, file: Option<&Path>) -> Result<Self> {
        let here = file.map_or_else(String::new, |f| format!("{}: ", f.display()));
        let bad = |what: String| Error::invalid_input(format!("{here}{what}"));
        let doc = match doc {
            Value::Null => return Ok(Self::default()),
            Value::Object(map) => map,
            _ => {
                return Err(bad(
                    "a values file is a mapping (globalValues, policies, namespaceSelector)"
                        .to_owned(),
                ));
            }
        };
        match doc.get("apiVersion") {
            None | Some(Value::Null) => {}
            Some(Value::String(v)) if v == API_VERSION => {}
            Some(other) => {
                return Err(bad(format!(
                    "apiVersion: {other} is not {API_VERSION}, the values file version read here"
                )));
            }
        }
        match doc.get("kind") {
            None | Some(Value::Null) => {}
            Some(Value::String(k)) if k == "Values" || k == "Value" => {}
            Some(other) => {
                return Err(bad(format!(
                    "kind: {other} is not Values (is this a values file?)"
                )));
            }
        }
        let mut out = Self::default();
        for (key, value) in doc {
            match key.as_str() {
                "apiVersion" | "kind" | "metadata" => {}
                // `subresources: null` or an empty list asks for nothing.
                "subresources"
                    if value.is_null() || value.as_array().is_some_and(Vec::is_empty) => {}
                "globalValues" => out.global = variables(value, "globalValues", &bad)?,
                "policies" => {
                    for (i, p) in list(value, "policies", &bad)?.iter().enumerate() {
                        out.policies
                            .push(policy(p, &format!("policies[{i}]"), &bad)?);
                    }
                }
                "namespaceSelector" => {
                    for (i, n) in list(value, "namespaceSelector", &bad)?.iter().enumerate() {
                        let at = format!("namespaceSelector[{i}]");
                        let name = required_name(n, &at, &bad)?;
                        let labels = match n.get("labels") {
                            None | Some(Value::Null) => BTreeMap::new(),
                            Some(Value::Object(map)) => map
                                .iter()
                                .map(|(k, v)| match v {
                                    Value::String(s) => Ok((k.clone(), s.clone())),
                                    Value::Number(_) | Value::Bool(_) => {
                                        Ok((k.clone(), v.to_string()))
                                    }
                                    _ => Err(bad(format!(
                                        "{at}.labels.{k}: a label's value is a string"
                                    ))),
                                })
                                .collect::<Result<_>>()?,
                            Some(_) => {
                                return Err(bad(format!(
                                    "{at}.labels must be a mapping of label keys to values"
                                )));
                            }
                        };
                        out.namespaces.insert(name, labels);
                    }
                }
                "subresources" => {
                    return Err(bad(
                        "subresources: subresource mappings are not supported (the resources checked here are whole objects); remove the field".to_owned(),
                    ));
                }
                other => {
                    return Err(bad(format!(
                        "{other}: not a field of a values file (globalValues, policies, namespaceSelector)"
                    )));
                }
            }
        }
        Ok(out)
    }

    /// Whether it gives no value and no namespace labels.
    ///
    /// ```
    /// assert!(idp_policy::kyverno::Values::default().is_empty());
    /// ```
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.global.is_empty() && self.policies.is_empty() && self.namespaces.is_empty()
    }

    /// The namespaces `namespaceSelector` gives labels to.
    pub(super) fn namespaces(&self) -> &BTreeMap<String, BTreeMap<String, String>> {
        &self.namespaces
    }

    /// Whether some values of `policy` (global ones, its resources', or those of `rule`
    /// or its auto-generated forms) give `name` a value: a context entry of that name
    /// may then need the cluster, its value coming from these values.
    pub(super) fn may_give(&self, policy: &str, rule: &str, name: &str) -> bool {
        let gives = |map: &Map<String, Value>| map.keys().any(|k| top(k) == name);
        if gives(&self.global) {
            return true;
        }
        self.policies.iter().filter(|p| p.name == policy).any(|p| {
            p.resources.iter().any(|(_, m)| gives(m))
                || p.rules.iter().any(|(r, m)| {
                    (r == rule
                        || r.strip_prefix("autogen-cronjob-") == Some(rule)
                        || r.strip_prefix("autogen-") == Some(rule))
                        && gives(m)
                })
        })
    }

    /// The variables for `rule` (as applied, then as written: `base_rule`) of `policy`
    /// checking the resource named `resource`: global values, then the resource's, then
    /// the rule's, each later one merged over the earlier; `None` when there are none.
    pub(super) fn for_rule(
        &self,
        policy: &str,
        rule: &str,
        base_rule: &str,
        resource: &str,
    ) -> Option<Value> {
        let mut tree = Value::Object(Map::new());
        let mut any = false;
        let mut add = |map: &Map<String, Value>| {
            for (k, v) in map {
                any = true;
                set_path(&mut tree, k, v.clone());
            }
        };
        add(&self.global);
        for p in self.policies.iter().filter(|p| p.name == policy) {
            for (_, m) in p.resources.iter().filter(|(n, _)| n == resource) {
                add(m);
            }
            let rule_values = p
                .rules
                .iter()
                .find(|(r, _)| r == rule)
                .or_else(|| p.rules.iter().find(|(r, _)| r == base_rule));
            if let Some((_, m)) = rule_values {
                add(m);
            }
        }
        any.then_some(tree)
    }

    /// `request.operation` as global values, then `policy`'s values for the resource
    /// named `resource`, set it.
    pub(super) fn operation(&self, policy: &str, resource: &str) -> Option<&'static str> {
        let mut found = operation_in(&self.global);
        for p in self.policies.iter().filter(|p| p.name == policy) {
            for (_, m) in p.resources.iter().filter(|(n, _)| n == resource) {
                found = operation_in(m).or(found);
            }
        }
        found
    }
}

/// The first segment of a dotted variable path.
fn top(key: &str) -> &str {
    key.split('.').next().unwrap_or(key)
}

/// `request.operation` in one map of variables (checked when read).
fn operation_in(map: &Map<String, Value>) -> Option<&'static str> {
    let mut tree = Value::Object(Map::new());
    for (k, v) in map.iter().filter(|(k, _)| top(k) == "request") {
        set_path(&mut tree, k, v.clone());
    }
    let op = tree.pointer("/request/operation")?.as_str()?;
    OPERATIONS.into_iter().find(|o| o.eq_ignore_ascii_case(op))
}

/// Put `value` at the dotted `path` in `tree`, creating the mappings on the way and
/// merging mappings into mappings already there (a later value wins otherwise).
pub(super) fn set_path(tree: &mut Value, path: &str, value: Value) {
    let mut here = tree;
    for segment in path.split('.') {
        if !here.is_object() {
            *here = Value::Object(Map::new());
        }
        let Value::Object(map) = here else {
            return;
        };
        here = map.entry(segment.to_owned()).or_insert(Value::Null);
    }
    merge(here, value);
}

/// Merge `value` into `slot`: mappings key by key, anything else replaces.
pub(super) fn merge(slot: &mut Value, value: Value) {
    match (slot, value) {
        (Value::Object(into), Value::Object(from)) => {
            for (k, v) in from {
                merge(into.entry(k).or_insert(Value::Null), v);
            }
        }
        (slot, value) => *slot = value,
    }
}

fn list<'v>(value: &'v Value, field: &str, bad: &impl Fn(String) -> Error) -> Result<&'v [Value]> {
    match value {
        Value::Null => Ok(&[]),
        Value::Array(items) => Ok(items),
        _ => Err(bad(format!("{field} must be a list"))),
    }
}

fn required_name(item: &Value, at: &str, bad: &impl Fn(String) -> Error) -> Result<String> {
    if !item.is_object() {
        return Err(bad(format!("{at} must be a mapping with a name")));
    }
    match item.get("name") {
        Some(Value::String(n)) if !n.is_empty() => Ok(n.clone()),
        _ => Err(bad(format!("{at}.name is required (a non-empty string)"))),
    }
}

/// A mapping of variables (dotted paths to values), checked: keys are not empty and
/// `request.operation` is an operation.
fn variables(
    value: &Value,
    field: &str,
    bad: &impl Fn(String) -> Error,
) -> Result<Map<String, Value>> {
    let map = match value {
        Value::Null => return Ok(Map::new()),
        Value::Object(map) => map,
        _ => {
            return Err(bad(format!(
                "{field} must be a mapping of variables (dotted paths) to values"
            )));
        }
    };
    for (k, v) in map {
        if k.is_empty() || k.split('.').any(str::is_empty) {
            return Err(bad(format!(
                "{field}: {k:?} is not a variable path (dot-separated names, such as request.operation)"
            )));
        }
        if k == "request.operation" {
            let ok = v
                .as_str()
                .is_some_and(|op| OPERATIONS.iter().any(|o| o.eq_ignore_ascii_case(op)));
            if !ok {
                return Err(bad(format!(
                    "{field}.request.operation: {v} is not an operation ({})",
                    OPERATIONS.join(", ")
                )));
            }
        }
    }
    Ok(map.clone())
}

fn policy(value: &Value, at: &str, bad: &impl Fn(String) -> Error) -> Result<PolicyValues> {
    let name = required_name(value, at, bad)?;
    let mut out = PolicyValues {
        name,
        ..PolicyValues::default()
    };
    let Some(map) = value.as_object() else {
        return Ok(out);
    };
    for (key, v) in map {
        match key.as_str() {
            "name" => {}
            "rules" => {
                for (i, r) in list(v, &format!("{at}.rules"), bad)?.iter().enumerate() {
                    let rat = format!("{at}.rules[{i}]");
                    let rule = required_name(r, &rat, bad)?;
                    if r.get("foreachValues").is_some_and(|f| !f.is_null()) {
                        return Err(bad(format!(
                            "{rat}.foreachValues: per-element foreach values are not supported; give the values in `values`, or compute them with the rule's foreach"
                        )));
                    }
                    if let Some(extra) = r.as_object().and_then(|m| {
                        m.keys()
                            .find(|k| !["name", "values", "foreachValues"].contains(&k.as_str()))
                    }) {
                        return Err(bad(format!(
                            "{rat}.{extra}: not a field of a rule's values (name, values)"
                        )));
                    }
                    let values = variables(
                        r.get("values").unwrap_or(&Value::Null),
                        &format!("{rat}.values"),
                        bad,
                    )?;
                    out.rules.push((rule, values));
                }
            }
            "resources" => {
                for (i, r) in list(v, &format!("{at}.resources"), bad)?.iter().enumerate() {
                    let rat = format!("{at}.resources[{i}]");
                    let resource = required_name(r, &rat, bad)?;
                    if let Some(extra) = r
                        .as_object()
                        .and_then(|m| m.keys().find(|k| !["name", "values"].contains(&k.as_str())))
                    {
                        return Err(bad(format!(
                            "{rat}.{extra}: not a field of a resource's values (name, values)"
                        )));
                    }
                    let values = variables(
                        r.get("values").unwrap_or(&Value::Null),
                        &format!("{rat}.values"),
                        bad,
                    )?;
                    out.resources.push((resource, values));
                }
            }
            other => {
                return Err(bad(format!(
                    "{at}.{other}: not a field of a policy's values (name, rules, resources)"
                )));
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const FILE: &str = "\
apiVersion: cli.kyverno.io/v1alpha1
kind: Values
metadata: {name: values}
globalValues:
  request.operation: UPDATE
  env: prod
policies:
  - name: check-registry
    rules:
      - name: allowed
        values:
          registries.data.allowed: ghcr.io
          env: dev
    resources:
      - name: web
        values:
          request.operation: DELETE
          team.name: shop
namespaceSelector:
  - name: shop
    labels: {team: web, tier: 1}
";

    #[test]
    fn reads_every_section_and_merges_in_order() {
        let v = Values::from_yaml(FILE, None).unwrap();
        assert_eq!(v.namespaces()["shop"]["team"], "web");
        assert_eq!(v.namespaces()["shop"]["tier"], "1");
        let tree = v
            .for_rule("check-registry", "allowed", "allowed", "web")
            .unwrap();
        assert_eq!(tree["registries"]["data"]["allowed"], "ghcr.io");
        // Rule values win over global ones; resource values over global ones.
        assert_eq!(tree["env"], "dev");
        assert_eq!(tree["request"]["operation"], "DELETE");
        assert_eq!(tree["team"]["name"], "shop");
        // Another resource: global values and the rule's only.
        let other = v
            .for_rule("check-registry", "autogen-allowed", "allowed", "db")
            .unwrap();
        assert_eq!(other["request"]["operation"], "UPDATE");
        assert!(other.get("team").is_none());
        assert_eq!(other["registries"]["data"]["allowed"], "ghcr.io");
        assert_eq!(v.operation("check-registry", "web"), Some("DELETE"));
        assert_eq!(v.operation("check-registry", "db"), Some("UPDATE"));
        assert_eq!(v.operation("other", "web"), Some("UPDATE"));
        assert!(v.may_give("check-registry", "allowed", "registries"));
        assert!(v.may_give("check-registry", "allowed", "team"));
        assert!(!v.may_give("check-registry", "allowed", "images"));
        assert!(v.may_give("other", "x", "env"));
        // Nothing at all: no tree.
        assert!(Values::default().for_rule("p", "r", "r", "x").is_none());
    }

    #[test]
    fn older_files_without_api_version_read_the_same() {
        let v = Values::from_yaml(
            "policies:\n  - name: p\n    resources:\n      - name: a\n        values: {request.operation: update}\n",
            None,
        )
        .unwrap();
        assert_eq!(v.operation("p", "a"), Some("UPDATE"));
        assert!(Values::from_yaml("", None).unwrap().is_empty());
    }

    #[test]
    fn errors_name_the_file_and_field() {
        let file = Some(Path::new("dir/values.yaml"));
        for (yaml, want) in [
            ("- 1\n", "a values file is a mapping"),
            (
                "apiVersion: v1\n",
                "apiVersion: \"v1\" is not cli.kyverno.io/v1alpha1",
            ),
            ("kind: Test\n", "kind: \"Test\" is not Values"),
            (
                "globalValue: {}\n",
                "globalValue: not a field of a values file",
            ),
            ("globalValues: 3\n", "globalValues must be a mapping"),
            (
                "globalValues: {request.operation: PATCH}\n",
                "globalValues.request.operation: \"PATCH\" is not an operation",
            ),
            ("globalValues: {a..b: 1}\n", "is not a variable path"),
            ("policies: {}\n", "policies must be a list"),
            (
                "policies: [{name: p, rules: [{values: {}}]}]\n",
                "policies[0].rules[0].name is required",
            ),
            (
                "policies: [{name: p, rules: [{name: r, values: [1]}]}]\n",
                "policies[0].rules[0].values must be a mapping",
            ),
            (
                "policies: [{name: p, rules: [{name: r, foreachValues: {element: [1]}}]}]\n",
                "policies[0].rules[0].foreachValues: per-element foreach values are not supported",
            ),
            (
                "policies: [{name: p, resources: [{name: a, value: {}}]}]\n",
                "policies[0].resources[0].value: not a field",
            ),
            (
                "policies: [{name: p, rule: []}]\n",
                "policies[0].rule: not a field of a policy's values",
            ),
            (
                "namespaceSelector: [{labels: {}}]\n",
                "namespaceSelector[0].name is required",
            ),
            (
                "namespaceSelector: [{name: a, labels: [x]}]\n",
                "namespaceSelector[0].labels must be a mapping",
            ),
            (
                "subresources: [{subresource: {}}]\n",
                "subresources: subresource mappings are not supported",
            ),
            ("globalValues: {a: [1\n", "the YAML does not parse"),
        ] {
            let err = Values::from_yaml(yaml, file).unwrap_err().to_string();
            assert!(err.contains("dir/values.yaml: "), "{yaml}: {err}");
            assert!(err.contains(want), "{yaml}: {err}");
        }
    }

    #[test]
    fn set_path_merges_mappings() {
        let mut tree = json!({});
        set_path(&mut tree, "a.b", json!(1));
        set_path(&mut tree, "a", json!({"c": 2}));
        set_path(&mut tree, "a.b.d", json!(3));
        assert_eq!(tree, json!({"a": {"b": {"d": 3}, "c": 2}}));
    }

    fn arb_yaml_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i32>().prop_map(|n| json!(n)),
            "[a-z.]{0,8}".prop_map(Value::String),
            prop_oneof![
                Just("CREATE"),
                Just("PATCH"),
                Just("name"),
                Just("values"),
                Just("rules"),
                Just("request.operation")
            ]
            .prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            let keys = prop_oneof![
                Just("apiVersion".to_owned()),
                Just("kind".to_owned()),
                Just("globalValues".to_owned()),
                Just("policies".to_owned()),
                Just("rules".to_owned()),
                Just("resources".to_owned()),
                Just("name".to_owned()),
                Just("values".to_owned()),
                Just("labels".to_owned()),
                Just("namespaceSelector".to_owned()),
                Just("foreachValues".to_owned()),
                Just("subresources".to_owned()),
                Just("request.operation".to_owned()),
                "[a-z.]{0,6}",
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(keys, inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn reading_any_values_never_panics(doc in arb_yaml_value(), text in ".{0,64}") {
            // As parsed YAML, and as text (some of it not YAML at all).
            if let Ok(v) = Values::from_value(&doc, None) {
                let _ = v.for_rule("p", "r", "r", "a");
                let _ = v.operation("p", "a");
            }
            let yaml = serde_saphyr::to_string(&doc).unwrap_or_default();
            let _ = Values::from_yaml(&yaml, Some(Path::new("v.yaml")));
            let _ = Values::from_yaml(&text, None);
        }
    }
}
