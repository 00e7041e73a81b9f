//! A rule's `context`: named values its `{{ }}` variables can read, computed in order
//! before the rule's preconditions.
//!
//! - `variable`: `value` (with variables filled in), then `jmesPath` applied to it (or,
//!   without a `value`, to all the data), else `default` when that gives nothing.
//! - `configMap`: the ConfigMap `namespace`/`name` (variables allowed) among the ones
//!   given to the policy with [`KyvernoPolicy::add_yaml`](super::KyvernoPolicy::add_yaml),
//!   as the object (`{{ cm.data.key }}`). One that was not given is an error naming it:
//!   evaluation reads no cluster ([`cluster::ClusterPolicies`](super::cluster::ClusterPolicies)
//!   reads the ConfigMaps the policies kept in a cluster name, with them).
//!
//! `apiCall`, `imageRegistry` and `globalReference` entries need the cluster or a
//! registry and are refused when loaded, unless the policy set's
//! [`Values`](super::Values) may give them a value; one whose value is then missing
//! when a rule runs is an error naming it.
//!
//! With values, an entry whose name they give (`name` or `name.<path>`) keeps the
//! value given instead of being computed, as the Kyverno CLI mocks context entries.

use std::collections::BTreeMap;

use idp_core::{Error, Result};
use jmespath::{Rcvar, ToJmespath, Variable};
use serde_json::Value;

use super::mutate::{fill, substitute};

/// Where an entry's value comes from.
#[derive(Clone)]
enum Source {
    Variable {
        value: Option<Value>,
        jmes_path: Option<Box<jmespath::Expression<'static>>>,
        default: Option<Value>,
    },
    ConfigMap {
        name: String,
        namespace: String,
    },
    /// `apiCall`, `imageRegistry` or `globalReference` (the key): accepted because values
    /// may give it; it has no value of its own.
    Mocked(&'static str),
}

/// One `context` entry.
#[derive(Clone)]
pub(super) struct Entry {
    name: String,
    source: Source,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match &self.source {
            Source::Variable { .. } => "variable",
            Source::ConfigMap { .. } => "configMap",
            Source::Mocked(key) => key,
        };
        write!(f, "{}: {kind}", self.name)
    }
}

/// The ConfigMaps given to a policy, by namespace and name.
pub(super) type ConfigMaps = BTreeMap<(String, String), Value>;

impl Entry {
    /// Read a rule's `context` list at `field`. `mockable` says whether values may give
    /// an entry of that name its value: an `apiCall`, `imageRegistry` or
    /// `globalReference` entry is refused unless it does.
    pub(super) fn parse_list(
        value: &Value,
        field: &str,
        here: &str,
        mockable: &dyn Fn(&str) -> bool,
    ) -> Result<Vec<Self>> {
        let bad = |what: String| Error::invalid_input(format!("{here}{what}"));
        let items = value
            .as_array()
            .ok_or_else(|| bad(format!("{field} must be a list of entries")))?;
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let at = format!("{field}[{i}]");
            let name = item
                .get("name")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .ok_or_else(|| bad(format!("{at}.name is required")))?
                .to_owned();
            let at = format!("{at} ({name})");
            let mut mocked = None;
            for (key, why) in [
                ("apiCall", "API calls need the cluster"),
                ("imageRegistry", "image registry lookups need the registry"),
                ("globalReference", "global context entries need the cluster"),
            ] {
                if item.get(key).is_some_and(|v| !v.is_null()) {
                    if mockable(&name) {
                        mocked = Some(key);
                        break;
                    }
                    return Err(bad(format!(
                        "{at}.{key}: {why} and are not supported; use a variable or a configMap entry (give the ConfigMap with the policies), or give its value in a values file"
                    )));
                }
            }
            let source = if let Some(key) = mocked {
                Source::Mocked(key)
            } else if let Some(v) = item.get("variable").filter(|v| !v.is_null()) {
                let jmes_path = match v.get("jmesPath").and_then(Value::as_str) {
                    None => None,
                    Some(expr) => Some(Box::new(super::functions::compile(expr).map_err(|e| {
                        bad(format!(
                            "{at}.variable.jmesPath: {expr:?} is not valid JMESPath: {e}"
                        ))
                    })?)),
                };
                let value = v.get("value").cloned();
                if value.is_none() && jmes_path.is_none() {
                    return Err(bad(format!(
                        "{at}.variable: give a value, a jmesPath or both"
                    )));
                }
                Source::Variable {
                    value,
                    jmes_path,
                    default: v.get("default").cloned(),
                }
            } else if let Some(cm) = item.get("configMap").filter(|v| !v.is_null()) {
                let text = |key: &str| {
                    cm.get(key)
                        .and_then(Value::as_str)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                };
                Source::ConfigMap {
                    name: text("name")
                        .ok_or_else(|| bad(format!("{at}.configMap.name is required")))?,
                    namespace: text("namespace").unwrap_or_else(|| "default".to_owned()),
                }
            } else {
                return Err(bad(format!(
                    "{at}: give a variable or a configMap (apiCall, imageRegistry and globalReference are not supported)"
                )));
            };
            out.push(Self { name, source });
        }
        Ok(out)
    }

    fn value(&self, data: &Rcvar, config_maps: &ConfigMaps) -> std::result::Result<Value, String> {
        match &self.source {
            Source::Variable {
                value,
                jmes_path,
                default,
            } => {
                let filled = value.as_ref().map(|v| substitute(v, data, 0)).transpose()?;
                let found = match (jmes_path, &filled) {
                    (None, Some(v)) => v.clone(),
                    (Some(expr), input) => {
                        let input = match input {
                            Some(v) => v
                                .to_jmespath()
                                .map_err(|e| format!("context {}: {e}", self.name))?,
                            None => data.clone(),
                        };
                        let out = expr
                            .search(input)
                            .map_err(|e| format!("context {}: jmesPath failed: {e}", self.name))?;
                        serde_json::to_value(&*out)
                            .map_err(|e| format!("context {}: {e}", self.name))?
                    }
                    (None, None) => Value::Null,
                };
                match (found, default) {
                    (Value::Null, Some(d)) => substitute(d, data, 0),
                    (Value::Null, None) => Err(format!(
                        "context {}: the variable has no value and no default",
                        self.name
                    )),
                    (v, _) => Ok(v),
                }
            }
            Source::ConfigMap { name, namespace } => {
                let text = |t: &str| -> std::result::Result<String, String> {
                    Ok(match fill(t, data)? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    })
                };
                let (name, namespace) = (text(name)?, text(namespace)?);
                config_maps
                    .get(&(namespace.clone(), name.clone()))
                    .cloned()
                    .ok_or_else(|| {
                        format!(
                            "context {}: ConfigMap {namespace}/{name} was not given with the policies (add its YAML to the policy files; with policies read from a cluster, it is not there)",
                            self.name
                        )
                    })
            }
            Source::Mocked(key) => Err(format!(
                "context {}: the {key} entry has no value for this rule and resource (nothing here reads the cluster or a registry): give its value in a values file (the rule's values, the resource's or globalValues)",
                self.name
            )),
        }
    }
}

/// `data` with the mocked `values` merged in (a tree of variables, see
/// [`Values`](super::Values)), then each entry's value added under its name, in order (an
/// entry may read the ones before it, and the values). An entry whose name the values
/// give keeps their value.
pub(super) fn with_context(
    data: &Rcvar,
    entries: &[Entry],
    config_maps: &ConfigMaps,
    values: Option<&Value>,
) -> std::result::Result<Rcvar, String> {
    let values = values.and_then(Value::as_object).filter(|v| !v.is_empty());
    if entries.is_empty() && values.is_none() {
        return Ok(data.clone());
    }
    let _span =
        values.map(|v| tracing::trace_span!("kyverno.values", variables = v.len()).entered());
    let mut map: BTreeMap<String, Rcvar> = data.as_object().cloned().unwrap_or_default();
    for (key, value) in values.into_iter().flatten() {
        let mut merged = match map.get(key) {
            Some(old) => serde_json::to_value(&**old).map_err(|e| format!("values: {key}: {e}"))?,
            None => Value::Null,
        };
        super::values::merge(&mut merged, value.clone());
        let merged = merged
            .to_jmespath()
            .map_err(|e| format!("values: {key}: {e}"))?;
        map.insert(key.clone(), merged);
    }
    for entry in entries {
        if values.is_some_and(|v| v.contains_key(&entry.name)) {
            tracing::trace!(entry = %entry.name, "context entry given by values");
            continue;
        }
        let current = Rcvar::new(Variable::Object(map.clone()));
        let value = entry.value(&current, config_maps)?;
        let value = value
            .to_jmespath()
            .map_err(|e| format!("context {}: {e}", entry.name))?;
        map.insert(entry.name.clone(), value);
    }
    Ok(Rcvar::new(Variable::Object(map)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data() -> Rcvar {
        json!({"request": {"object": {"metadata": {"name": "web", "namespace": "shop"},
            "spec": {"replicas": 3}}}})
        .to_jmespath()
        .unwrap()
    }

    #[test]
    fn variables_and_config_maps_in_order() {
        let entries = Entry::parse_list(
            &json!([
                {"name": "replicas", "variable": {"jmesPath": "request.object.spec.replicas"}},
                {"name": "double", "variable": {"value": "{{ replicas }}", "jmesPath": "@"}},
                {"name": "missing", "variable": {"jmesPath": "request.object.nope", "default": "none"}},
                {"name": "limits", "configMap": {"name": "limits-{{ request.object.metadata.namespace }}", "namespace": "platform"}},
            ]),
            "context",
            "",
            &|_| false,
        )
        .unwrap();
        let mut cms = ConfigMaps::new();
        cms.insert(
            ("platform".into(), "limits-shop".into()),
            json!({"data": {"max": "5"}}),
        );
        let d = with_context(&data(), &entries, &cms, None).unwrap();
        let v: Value = serde_json::to_value(&*d).unwrap();
        assert_eq!(v["replicas"], 3);
        assert_eq!(v["double"], 3);
        assert_eq!(v["missing"], "none");
        assert_eq!(v["limits"]["data"]["max"], "5");

        let err = with_context(&data(), &entries, &ConfigMaps::new(), None).unwrap_err();
        assert!(
            err.contains("ConfigMap platform/limits-shop was not given"),
            "{err}"
        );
    }

    #[test]
    fn values_mock_entries_and_cluster_entries_need_them() {
        let list = json!([
            {"name": "nodes", "apiCall": {"urlPath": "/api/v1/nodes"}},
            {"name": "replicas", "variable": {"jmesPath": "request.object.spec.replicas"}},
            {"name": "twice", "variable": {"value": "{{ nodes.count }}", "jmesPath": "@"}},
        ]);
        // Without values that may give it, the apiCall entry is refused when loaded.
        let err = Entry::parse_list(&list, "context", "", &|_| false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("context[0] (nodes).apiCall"), "{err}");
        assert!(err.contains("give its value in a values file"), "{err}");
        let entries = Entry::parse_list(&list, "context", "", &|n| n == "nodes").unwrap();
        let values =
            json!({"nodes": {"count": 4}, "replicas": 9, "request": {"operation": "UPDATE"}});
        let d = with_context(&data(), &entries, &ConfigMaps::new(), Some(&values)).unwrap();
        let v: Value = serde_json::to_value(&*d).unwrap();
        assert_eq!(v["nodes"]["count"], 4);
        // A mocked entry keeps the value given; later entries read it.
        assert_eq!(v["replicas"], 9);
        assert_eq!(v["twice"], 4);
        // Values merge into the request rather than replacing it.
        assert_eq!(v["request"]["operation"], "UPDATE");
        assert_eq!(v["request"]["object"]["metadata"]["name"], "web");
        // Values without the entry's value: an error naming it, when the rule runs.
        let err = with_context(
            &data(),
            &entries,
            &ConfigMaps::new(),
            Some(&json!({"x": 1})),
        )
        .unwrap_err();
        assert!(
            err.contains("context nodes: the apiCall entry has no value"),
            "{err}"
        );
    }

    #[test]
    fn refused_entries_name_the_field() {
        for (entry, want) in [
            (
                json!([{"name": "x", "apiCall": {"urlPath": "/api/v1/pods"}}]),
                "context[0] (x).apiCall",
            ),
            (
                json!([{"name": "x", "imageRegistry": {"reference": "a"}}]),
                "imageRegistry",
            ),
            (json!([{"name": "x"}]), "give a variable or a configMap"),
            (
                json!([{"name": "x", "variable": {}}]),
                "give a value, a jmesPath or both",
            ),
            (
                json!([{"variable": {"value": 1}}]),
                "context[0].name is required",
            ),
        ] {
            let err = Entry::parse_list(&entry, "context", "", &|_| false)
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{entry}: {err}");
        }
    }
}
