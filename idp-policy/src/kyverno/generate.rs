//! A rule's `generate`: the objects Kyverno would create when the rule matches a
//! trigger, computed without a cluster.
//!
//! - `data`: the object as written in the rule, its `{{ }}` variables filled in (as in
//!   mutate patches), under the rule's `apiVersion`, `kind`, `name` and `namespace`.
//! - `clone`: a copy of the object `clone.namespace`/`clone.name` of the rule's
//!   `apiVersion` and `kind`, taken from the objects given with the policies (nothing
//!   here reads the cluster), renamed to the rule's `name` in its `namespace`.
//! - `cloneList`: a copy of every given object in `cloneList.namespace` whose kind is one
//!   of `cloneList.kinds` and whose labels match `cloneList.selector`, each keeping its
//!   name, in the rule's `namespace`.
//!
//! - `foreach`: entries of `list` (JMESPath), optional `context` and `preconditions`,
//!   and the fields above; each element of the list generates as its entry says, with
//!   `element` and `elementIndex` set (and the entry's `context` computed) for its
//!   variables. Entries do not nest.
//!
//! A copy loses what the API server sets on an object (`uid`, `resourceVersion`,
//! `creationTimestamp`, `generation`, `managedFields`, `ownerReferences`, `selfLink`,
//! the deletion fields). `synchronize`, `orphanDownstreamOnPolicyDelete` and
//! `generateExisting` only change what Kyverno does later in a cluster (keeping copies in
//! step, deleting them): they are read, checked and otherwise have no effect here.
//! Any other field is refused when loaded.

use idp_core::{Error, Result};
use jmespath::{Expression, Rcvar, Variable};
use serde_json::{Map, Value};

use super::conditions::Conditions;
use super::context::{ConfigMaps, Entry};
use super::foreach::{parse_entries, parse_head, with_element};
use super::mutate::{fill_text, substitute};
use super::{KindSpec, selector, strings};
use crate::matching::LabelSelector;
use crate::names::split_api_version;

/// The fields a `generate` block may have.
const FIELDS: [&str; 11] = [
    "apiVersion",
    "kind",
    "name",
    "namespace",
    "synchronize",
    "orphanDownstreamOnPolicyDelete",
    "generateExisting",
    "data",
    "clone",
    "cloneList",
    "foreach",
];

/// What the API server sets on an object, which a clone does not carry over.
const SERVER_FIELDS: [&str; 9] = [
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "ownerReferences",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// The label prefix of the labels Kyverno puts on what it generates.
pub(super) const LABEL_PREFIX: &str = "generate.kyverno.io/";
/// The label naming the manager of a generated object.
pub(super) const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Where the generated content comes from.
#[derive(Debug, Clone)]
enum Source {
    Data(Value),
    Clone {
        namespace: Option<String>,
        name: String,
    },
    CloneList {
        namespace: String,
        kinds: Vec<KindSpec>,
        selector: Option<LabelSelector>,
    },
}

/// A `generate` block, read: one object (or list of clones), or a `foreach`.
#[derive(Debug, Clone)]
pub(super) enum Generate {
    One(Target),
    ForEach(Vec<Each>),
}

/// What to generate: where, and from what.
#[derive(Debug, Clone)]
pub(super) struct Target {
    api_version: Option<String>,
    kind: Option<String>,
    name: Option<String>,
    namespace: Option<String>,
    source: Source,
}

/// One `generate.foreach` entry.
#[derive(Clone)]
pub(super) struct Each {
    list: Box<Expression<'static>>,
    context: Vec<Entry>,
    preconditions: Option<Conditions>,
    target: Target,
}

impl std::fmt::Debug for Each {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "foreach {}: {:?}", self.list.as_str(), self.target)
    }
}

/// What made a generated object: the labels Kyverno puts on it.
pub(super) struct Origin<'a> {
    pub(super) policy: &'a str,
    /// A namespaced `Policy`'s namespace; empty for a `ClusterPolicy`.
    pub(super) policy_namespace: &'a str,
    pub(super) rule: &'a str,
    pub(super) trigger: &'a idp_core::Object,
}

fn text_field(value: &Value, key: &str, field: &str, here: &str) -> Result<Option<String>> {
    match value.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(other) => Err(Error::invalid_input(format!(
            "{here}{field}.{key}: {other} is not a non-empty string"
        ))),
    }
}

impl Generate {
    /// Read a rule's `generate` block at `field`.
    pub(super) fn parse(value: &Value, field: &str, here: &str) -> Result<Self> {
        let bad = |what: String| Error::invalid_input(format!("{here}{what}"));
        let map = value
            .as_object()
            .ok_or_else(|| bad(format!("{field} must be a mapping")))?;
        if let Some(key) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
            return Err(bad(format!(
                "{field}.{key}: not a generate field that is supported (give apiVersion, kind, name, namespace and one of data, clone, cloneList or foreach)"
            )));
        }
        for key in [
            "synchronize",
            "orphanDownstreamOnPolicyDelete",
            "generateExisting",
        ] {
            if let Some(v) = value.get(key).filter(|v| !v.is_null() && !v.is_boolean()) {
                return Err(bad(format!("{field}.{key}: {v} is not true or false")));
            }
        }
        let Some(list) = value.get("foreach").filter(|v| !v.is_null()) else {
            return Target::parse(value, field, here).map(Self::One);
        };
        if let Some(key) = [
            "apiVersion",
            "kind",
            "name",
            "namespace",
            "data",
            "clone",
            "cloneList",
        ]
        .into_iter()
        .find(|k| value.get(*k).is_some_and(|v| !v.is_null()))
        {
            return Err(bad(format!(
                "{field}.{key}: with foreach, each entry says what it generates; move {key} into the entries"
            )));
        }
        let foreach = format!("{field}.foreach");
        parse_entries(list, &foreach, here, 0, |item, at, here, depth| {
            let mut body = item
                .as_object()
                .cloned()
                .ok_or_else(|| bad(format!("{at} must be a mapping")))?;
            let context = match body.remove("context").filter(|c| !c.is_null()) {
                None => Vec::new(),
                Some(c) => Entry::parse_list(&c, &format!("{at}.context"), here, &|_| false)?,
            };
            let (list, _, preconditions) = parse_head(&Value::Object(body.clone()), at, here, depth)?;
            body.remove("list");
            body.remove("preconditions");
            if body.contains_key("foreach") {
                return Err(bad(format!(
                    "{at}.foreach: generate foreach entries do not nest"
                )));
            }
            if let Some(key) = body.keys().find(|k| !FIELDS.contains(&k.as_str())) {
                return Err(bad(format!(
                    "{at}.{key}: not a field of a generate foreach entry (give list, context, preconditions, apiVersion, kind, name, namespace and one of data, clone or cloneList)"
                )));
            }
            Ok(Each {
                list: Box::new(list),
                context,
                preconditions,
                target: Target::parse(&Value::Object(body), at, here)?,
            })
        })
        .map(Self::ForEach)
    }

    /// The generated objects (without Kyverno's labels, see [`label`]), their variables
    /// filled in from `data` (with, in a `foreach`, each element and the entry's
    /// `context`), clones taken from `given`. Empty only for a `foreach` whose lists are
    /// empty or whose elements' preconditions do not hold.
    pub(super) fn run(
        &self,
        data: &Rcvar,
        given: &[idp_core::Object],
        config_maps: &ConfigMaps,
    ) -> std::result::Result<Vec<Value>, String> {
        let entries = match self {
            Self::One(target) => return target.run(data, given),
            Self::ForEach(entries) => entries,
        };
        let mut out = Vec::new();
        for (e, entry) in entries.iter().enumerate() {
            let at = format!("generate.foreach[{e}]");
            let items = entry
                .list
                .search(data.clone())
                .map_err(|err| format!("{at}.list {:?} failed: {err}", entry.list.as_str()))?;
            let items: Vec<Rcvar> = match &*items {
                Variable::Null => Vec::new(),
                Variable::Array(items) => items.clone(),
                _ => {
                    return Err(format!("{at}.list {:?} is not a list", entry.list.as_str()));
                }
            };
            for (i, item) in items.iter().enumerate() {
                let element = with_element(data, item, i, 0)
                    .and_then(|d| {
                        super::context::with_context(&d, &entry.context, config_maps, None)
                    })
                    .map_err(|err| format!("{at}, element {i}: {err}"))?;
                if let Some(pre) = &entry.preconditions
                    && !pre
                        .evaluate(&element)
                        .map_err(|err| format!("{at}.preconditions, element {i}: {err}"))?
                        .holds
                {
                    continue;
                }
                out.extend(
                    entry
                        .target
                        .run(&element, given)
                        .map_err(|err| format!("{at}, element {i}: {err}"))?,
                );
            }
        }
        Ok(out)
    }

    /// Whether it is a `foreach`, which may generate nothing.
    pub(super) fn is_foreach(&self) -> bool {
        matches!(self, Self::ForEach(_))
    }
}

impl Target {
    /// Read the fields of what to generate at `field` (a `generate` block or a
    /// `foreach` entry, checked for unknown fields by the caller).
    fn parse(value: &Value, field: &str, here: &str) -> Result<Self> {
        let bad = |what: String| Error::invalid_input(format!("{here}{what}"));
        let api_version = text_field(value, "apiVersion", field, here)?;
        let kind = text_field(value, "kind", field, here)?;
        let name = text_field(value, "name", field, here)?;
        let namespace = text_field(value, "namespace", field, here)?;
        let given: Vec<&str> = ["data", "clone", "cloneList"]
            .into_iter()
            .filter(|k| value.get(*k).is_some_and(|v| !v.is_null()))
            .collect();
        let source = match given.as_slice() {
            [] => {
                return Err(bad(format!(
                    "{field}: give data, clone or cloneList (what to generate)"
                )));
            }
            [_, _, ..] => {
                return Err(bad(format!(
                    "{field}: {} exclude each other: give one",
                    given.join(" and ")
                )));
            }
            ["data"] => {
                let data = &value["data"];
                if !data.is_object() {
                    return Err(bad(format!("{field}.data must be a mapping")));
                }
                Source::Data(data.clone())
            }
            ["clone"] => {
                let clone = &value["clone"];
                if !clone.is_object() {
                    return Err(bad(format!(
                        "{field}.clone must be a mapping with namespace and name"
                    )));
                }
                let cfield = format!("{field}.clone");
                Source::Clone {
                    namespace: text_field(clone, "namespace", &cfield, here)?,
                    name: text_field(clone, "name", &cfield, here)?.ok_or_else(|| {
                        bad(format!("{cfield}.name is required: the object to copy"))
                    })?,
                }
            }
            _ => {
                let list = &value["cloneList"];
                let lfield = format!("{field}.cloneList");
                if !list.is_object() {
                    return Err(bad(format!(
                        "{lfield} must be a mapping with namespace, kinds and an optional selector"
                    )));
                }
                for key in ["apiVersion", "kind", "name"] {
                    if value.get(key).is_some_and(|v| !v.is_null()) {
                        return Err(bad(format!(
                            "{field}.{key}: a cloneList copies objects under their own kinds and names; remove {key}"
                        )));
                    }
                }
                let kinds = strings(list.get("kinds"), &format!("{lfield}.kinds"), here)?;
                if kinds.is_empty() {
                    return Err(bad(format!(
                        "{lfield}.kinds is required: the kinds to copy (v1/Secret, v1/ConfigMap…)"
                    )));
                }
                Source::CloneList {
                    namespace: text_field(list, "namespace", &lfield, here)?.ok_or_else(|| {
                        bad(format!(
                            "{lfield}.namespace is required: where the objects to copy are"
                        ))
                    })?,
                    kinds: kinds.iter().map(|k| KindSpec::parse(k)).collect(),
                    selector: selector(list.get("selector"), &format!("{lfield}.selector"), here)?,
                }
            }
        };
        if !matches!(source, Source::CloneList { .. }) {
            for (key, v) in [
                ("apiVersion", &api_version),
                ("kind", &kind),
                ("name", &name),
            ] {
                if v.is_none() {
                    return Err(bad(format!(
                        "{field}.{key} is required: the {key} of the generated object"
                    )));
                }
            }
        }
        Ok(Self {
            api_version,
            kind,
            name,
            namespace,
            source,
        })
    }

    /// The objects it generates, their variables filled in from `data`, clones taken
    /// from `given`.
    fn run(
        &self,
        data: &Rcvar,
        given: &[idp_core::Object],
    ) -> std::result::Result<Vec<Value>, String> {
        let text = |what: &str, t: Option<&str>| -> std::result::Result<Option<String>, String> {
            t.map(|t| {
                fill_text(t, data)
                    .map_err(|e| format!("generate.{what}: {e}"))
                    .and_then(|s| {
                        if s.is_empty() {
                            Err(format!(
                                "generate.{what} is empty once its variables are filled in"
                            ))
                        } else {
                            Ok(s)
                        }
                    })
            })
            .transpose()
        };
        let namespace = text("namespace", self.namespace.as_deref())?;
        match &self.source {
            Source::Data(content) => {
                let filled =
                    substitute(content, data, 0).map_err(|e| format!("generate.data: {e}"))?;
                let Value::Object(mut object) = filled else {
                    return Err(
                        "generate.data is not a mapping once its variables are filled in"
                            .to_owned(),
                    );
                };
                let api_version =
                    text("apiVersion", self.api_version.as_deref())?.unwrap_or_default();
                let kind = text("kind", self.kind.as_deref())?.unwrap_or_default();
                let name = text("name", self.name.as_deref())?.unwrap_or_default();
                object.insert("apiVersion".to_owned(), Value::String(api_version));
                object.insert("kind".to_owned(), Value::String(kind));
                place(&mut object, &name, namespace.as_deref());
                Ok(vec![Value::Object(object)])
            }
            Source::Clone {
                namespace: from_ns,
                name: from_name,
            } => {
                let api_version =
                    text("apiVersion", self.api_version.as_deref())?.unwrap_or_default();
                let kind = text("kind", self.kind.as_deref())?.unwrap_or_default();
                let name = text("name", self.name.as_deref())?.unwrap_or_default();
                let from_ns = text("clone.namespace", from_ns.as_deref())?;
                let from_name = text("clone.name", Some(from_name))?.unwrap_or_default();
                let source = given
                    .iter()
                    .find(|o| {
                        o.api_version() == api_version
                            && o.kind() == kind
                            && o.name() == from_name
                            && o.namespace() == from_ns.as_deref()
                    })
                    .ok_or_else(|| {
                        format!(
                            "generate.clone: the source {api_version} {kind} {} was not given with the policies (nothing here reads the cluster: add its YAML to the policy files, or to cloneSourceResource in a Kyverno CLI test)",
                            match &from_ns {
                                Some(ns) => format!("{ns}/{from_name}"),
                                None => from_name.clone(),
                            }
                        )
                    })?;
                Ok(vec![copy(source, &name, namespace.as_deref())])
            }
            Source::CloneList {
                namespace: from_ns,
                kinds,
                selector,
            } => {
                let from_ns = text("cloneList.namespace", Some(from_ns))?.unwrap_or_default();
                let copies: Vec<Value> = given
                    .iter()
                    .filter(|o| {
                        let (group, version) = split_api_version(o.api_version());
                        o.namespace() == Some(from_ns.as_str())
                            && kinds.iter().any(|k| k.matches(group, version, o.kind()))
                            && selector.as_ref().is_none_or(|s| s.matches(&o.labels()))
                    })
                    .map(|o| copy(o, o.name(), namespace.as_deref()))
                    .collect();
                if copies.is_empty() {
                    return Err(format!(
                        "generate.cloneList: no object of the kinds listed in namespace {from_ns} (and matching the selector) was given with the policies (nothing here reads the cluster: add their YAML to the policy files, or to cloneSourceResource in a Kyverno CLI test)"
                    ));
                }
                Ok(copies)
            }
        }
    }
}

/// Name the object and put it in `namespace` (cluster-scoped without one).
fn place(object: &mut Map<String, Value>, name: &str, namespace: Option<&str>) {
    let metadata = object
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    if let Value::Object(m) = metadata {
        m.insert("name".to_owned(), Value::String(name.to_owned()));
        match namespace {
            Some(ns) => {
                m.insert("namespace".to_owned(), Value::String(ns.to_owned()));
            }
            None => {
                m.remove("namespace");
            }
        }
    }
}

/// A copy of `source` named `name` in `namespace`, without what the API server set on
/// it, and with the `generate.kyverno.io/source-*` labels naming it.
fn copy(source: &idp_core::Object, name: &str, namespace: Option<&str>) -> Value {
    let mut object = source.as_map().clone();
    object.remove("status");
    if let Some(Value::Object(m)) = object.get_mut("metadata") {
        for key in SERVER_FIELDS {
            m.remove(key);
        }
    }
    place(&mut object, name, namespace);
    let (group, version) = split_api_version(source.api_version());
    let mut value = Value::Object(object);
    for (key, v) in [
        ("source-group", group),
        ("source-version", version),
        ("source-kind", source.kind()),
        ("source-namespace", source.namespace().unwrap_or_default()),
        ("source-name", source.name()),
    ] {
        set_label(&mut value, &format!("{LABEL_PREFIX}{key}"), v);
    }
    value
}

fn set_label(object: &mut Value, key: &str, value: &str) {
    let Value::Object(map) = object else { return };
    let metadata = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    let Value::Object(metadata) = metadata else {
        return;
    };
    let labels = metadata
        .entry("labels")
        .or_insert_with(|| Value::Object(Map::new()));
    if !labels.is_object() {
        *labels = Value::Object(Map::new());
    }
    if let Value::Object(labels) = labels {
        labels.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

/// Put on `object` the labels Kyverno puts on what it generates:
/// `app.kubernetes.io/managed-by: kyverno` (unless the object names another manager),
/// `generate.kyverno.io/policy-name`, `policy-namespace`, `rule-name`, and the
/// trigger's `trigger-group`, `trigger-version`, `trigger-kind`, `trigger-namespace`,
/// `trigger-name` (and `trigger-uid` when the trigger has a `metadata.uid`).
pub(super) fn label(object: &mut Value, origin: &Origin<'_>) {
    let has_manager = object
        .pointer("/metadata/labels")
        .and_then(|l| l.get(MANAGED_BY))
        .is_some_and(Value::is_string);
    if !has_manager {
        set_label(object, MANAGED_BY, "kyverno");
    }
    let trigger = origin.trigger;
    let (group, version) = split_api_version(trigger.api_version());
    for (key, v) in [
        ("policy-name", origin.policy),
        ("policy-namespace", origin.policy_namespace),
        ("rule-name", origin.rule),
        ("trigger-group", group),
        ("trigger-version", version),
        ("trigger-kind", trigger.kind()),
        ("trigger-namespace", trigger.namespace().unwrap_or_default()),
        ("trigger-name", trigger.name()),
    ] {
        set_label(object, &format!("{LABEL_PREFIX}{key}"), v);
    }
    if let Some(uid) = trigger.pointer("/metadata/uid").and_then(Value::as_str) {
        set_label(object, &format!("{LABEL_PREFIX}trigger-uid"), uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use idp_core::Object;
    use jmespath::ToJmespath;
    use serde_json::json;

    fn data() -> Rcvar {
        json!({"request": {"object": {"metadata": {"name": "shop"}}}})
            .to_jmespath()
            .unwrap()
    }

    fn parse(v: &Value) -> Result<Generate> {
        Generate::parse(v, "generate", "")
    }

    fn run(g: &Generate, given: &[Object]) -> std::result::Result<Vec<Value>, String> {
        g.run(&data(), given, &ConfigMaps::new())
    }

    #[test]
    fn data_fills_variables_and_places_the_object() {
        let g = parse(&json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "cm-{{request.object.metadata.name}}",
            "namespace": "{{request.object.metadata.name}}",
            "data": {"kind": "Ignored", "metadata": {"name": "x", "labels": {"a": "b"}}, "data": {"ns": "{{request.object.metadata.name}}"}}}))
        .unwrap();
        let out = run(&g, &[]).unwrap();
        assert_eq!(
            out,
            vec![json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "cm-shop", "namespace": "shop", "labels": {"a": "b"}},
                "data": {"ns": "shop"}})]
        );
    }

    #[test]
    fn clone_copies_without_server_fields_and_names_the_source() {
        let source = Object::from_value(json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "regcred", "namespace": "default", "uid": "u", "resourceVersion": "9", "labels": {"t": "x"}},
            "type": "kubernetes.io/dockerconfigjson", "data": {"k": "dg=="}}))
        .unwrap();
        let g = parse(&json!({"apiVersion": "v1", "kind": "Secret", "name": "pull",
            "namespace": "{{request.object.metadata.name}}", "clone": {"namespace": "default", "name": "regcred"}}))
        .unwrap();
        let out = run(&g, std::slice::from_ref(&source)).unwrap();
        let meta = &out[0]["metadata"];
        assert_eq!(meta["name"], "pull");
        assert_eq!(meta["namespace"], "shop");
        assert!(meta.get("uid").is_none() && meta.get("resourceVersion").is_none());
        assert_eq!(meta["labels"]["t"], "x");
        assert_eq!(meta["labels"]["generate.kyverno.io/source-name"], "regcred");
        assert_eq!(out[0]["data"]["k"], "dg==");

        let err = run(&g, &[]).unwrap_err();
        assert!(
            err.contains("v1 Secret default/regcred was not given"),
            "{err}"
        );
    }

    #[test]
    fn foreach_generates_per_element_with_its_context_and_preconditions() {
        let g = parse(&json!({"foreach": [{
            "list": "request.object.metadata.name | split(@, '-')",
            "context": [{"name": "ns", "variable": {"jmesPath": "element"}}],
            "preconditions": {"all": [{"key": "{{ ns }}", "operator": "NotEquals", "value": "skip"}]},
            "apiVersion": "v1", "kind": "ConfigMap", "name": "cm-{{ elementIndex }}", "namespace": "{{ ns }}",
            "data": {"data": {"from": "{{ request.object.metadata.name }}"}}}]}))
        .unwrap();
        assert!(g.is_foreach());
        let d = json!({"request": {"object": {"metadata": {"name": "a-skip-b"}}}})
            .to_jmespath()
            .unwrap();
        let out = g.run(&d, &[], &ConfigMaps::new()).unwrap();
        let placed: Vec<(String, String)> = out
            .iter()
            .map(|o| {
                (
                    o["metadata"]["namespace"].as_str().unwrap().to_owned(),
                    o["metadata"]["name"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            placed,
            [("a".into(), "cm-0".into()), ("b".into(), "cm-2".into())]
        );
        assert_eq!(out[0]["data"]["from"], "a-skip-b");
        // A list that is not one is an error naming the entry.
        let g = parse(
            &json!({"foreach": [{"list": "request.object.metadata", "apiVersion": "v1",
            "kind": "ConfigMap", "name": "c", "data": {}}]}),
        )
        .unwrap();
        let err = g.run(&d, &[], &ConfigMaps::new()).unwrap_err();
        assert!(err.contains("generate.foreach[0].list"), "{err}");
    }

    #[test]
    fn labels_name_policy_rule_and_trigger_and_keep_another_manager() {
        let trigger = Object::from_value(
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}}),
        )
        .unwrap();
        let origin = Origin {
            policy: "p",
            policy_namespace: "",
            rule: "r",
            trigger: &trigger,
        };
        let mut o = json!({"metadata": {"name": "x"}});
        label(&mut o, &origin);
        let l = &o["metadata"]["labels"];
        assert_eq!(l[MANAGED_BY], "kyverno");
        assert_eq!(l["generate.kyverno.io/policy-name"], "p");
        assert_eq!(l["generate.kyverno.io/rule-name"], "r");
        assert_eq!(l["generate.kyverno.io/trigger-kind"], "Namespace");
        assert_eq!(l["generate.kyverno.io/trigger-name"], "shop");
        assert_eq!(l["generate.kyverno.io/trigger-version"], "v1");
        assert!(l.get("generate.kyverno.io/trigger-uid").is_none());
        let mut o = json!({"metadata": {"labels": {MANAGED_BY: "helm"}}});
        label(&mut o, &origin);
        assert_eq!(o["metadata"]["labels"][MANAGED_BY], "helm");
    }

    #[test]
    fn refused_fields_are_named() {
        for (g, want) in [
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "data": {}, "uid": "x"}),
                "generate.uid",
            ),
            (
                json!({"name": "c", "foreach": [{"list": "x"}]}),
                "generate.name: with foreach",
            ),
            (
                json!({"foreach": []}),
                "generate.foreach must be a non-empty list",
            ),
            (
                json!({"foreach": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "data": {}}]}),
                "generate.foreach[0].list is required",
            ),
            (
                json!({"foreach": [{"list": "a", "foreach": []}]}),
                "generate.foreach[0].foreach: generate foreach entries do not nest",
            ),
            (
                json!({"foreach": [{"list": "a", "patchStrategicMerge": {}}]}),
                "generate.foreach[0].patchStrategicMerge",
            ),
            (
                json!({"foreach": [{"list": "a", "kind": "ConfigMap", "name": "c", "data": {}}]}),
                "generate.foreach[0].apiVersion is required",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "c"}),
                "give data, clone or cloneList",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "data": {}, "clone": {"name": "a"}}),
                "data and clone exclude",
            ),
            (
                json!({"kind": "ConfigMap", "name": "c", "data": {}}),
                "generate.apiVersion is required",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "clone": {"namespace": "d"}}),
                "generate.clone.name is required",
            ),
            (
                json!({"namespace": "n", "cloneList": {"namespace": "d"}}),
                "generate.cloneList.kinds is required",
            ),
            (
                json!({"name": "n", "cloneList": {"namespace": "d", "kinds": ["v1/Secret"]}}),
                "generate.name: a cloneList",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "data": [1]}),
                "generate.data must be a mapping",
            ),
            (
                json!({"apiVersion": "v1", "kind": "ConfigMap", "name": "c", "data": {}, "synchronize": "yes"}),
                "generate.synchronize",
            ),
            (
                json!({"apiVersion": 1, "kind": "ConfigMap", "name": "c", "data": {}}),
                "generate.apiVersion: 1",
            ),
            (json!([]), "generate must be a mapping"),
        ] {
            let err = parse(&g).unwrap_err().to_string();
            assert!(err.contains(want), "{g}: {err}");
        }
    }
}
