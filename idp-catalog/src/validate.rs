//! Validation with Backstage's verdicts.
//!
//! [`Validator::validate`] applies, to one freshly read entity (placeholders already
//! resolved), the rules Backstage's catalog applies: envelope and field formats
//! (`apiVersion`, `kind`, name, namespace, labels, annotations, tags, links), no foreign
//! root fields, the per-kind spec schema, and well-formed entity references in the fields
//! that become relations. Unknown kinds are rejected unless registered with
//! [`Validator::register_kind`] and a JSON Schema.
//!
//! ```
//! use idp_catalog::validate::Validator;
//! let v = Validator::new();
//! let problems = v.validate(&serde_json::json!({
//!     "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
//!     "metadata": {"name": "cart", "tags": ["Java"]},
//!     "spec": {"type": "service", "lifecycle": "production"}
//! }));
//! let paths: Vec<_> = problems.iter().map(|p| p.path.as_str()).collect();
//! assert_eq!(paths, ["metadata.tags[0]", "spec.owner"]);
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value};

use crate::kinds::BuiltinKind;
use crate::relations;
use crate::rules;

/// One reason an entity is rejected: where (`path`), which rule, and what to do.
///
/// ```
/// let p = idp_catalog::validate::Problem::new("metadata.name", "name-format", "must not be empty");
/// assert_eq!(p.to_string(), "metadata.name: must not be empty [name-format]");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The field path, e.g. `metadata.labels.tier` or `spec.owner`; empty for the root.
    pub path: String,
    /// A stable rule id, e.g. `name-format`, `required`, `unknown-kind`.
    pub rule: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

impl Problem {
    /// Build a problem.
    ///
    /// ```
    /// let p = idp_catalog::validate::Problem::new("spec", "required", "missing");
    /// assert_eq!(p.rule, "required");
    /// ```
    pub fn new(path: impl Into<String>, rule: &'static str, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            rule,
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{} [{}]", self.message, self.rule)
        } else {
            write!(f, "{}: {} [{}]", self.path, self.message, self.rule)
        }
    }
}

/// A kind registered by the platform, checked against its JSON Schema.
#[derive(Clone)]
struct CustomKind {
    api_versions: Vec<String>,
    schema: Arc<jsonschema::Validator>,
}

/// Validates entity envelopes; holds the registered custom kinds.
///
/// ```
/// use idp_catalog::validate::Validator;
/// let mut v = Validator::new();
/// v.register_kind("Pipeline", &["example.com/v1"], &serde_json::json!({
///     "type": "object",
///     "properties": {"spec": {"type": "object", "required": ["repo"]}}
/// })).unwrap();
/// let ok = serde_json::json!({"apiVersion": "example.com/v1", "kind": "Pipeline",
///     "metadata": {"name": "build"}, "spec": {"repo": "x"}});
/// assert!(v.validate(&ok).is_empty());
/// let bad = serde_json::json!({"apiVersion": "example.com/v1", "kind": "Pipeline",
///     "metadata": {"name": "build"}, "spec": {}});
/// assert_eq!(v.validate(&bad)[0].rule, "schema");
/// ```
#[derive(Clone, Default)]
pub struct Validator {
    custom: HashMap<String, CustomKind>,
}

impl fmt::Debug for Validator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validator")
            .field("custom_kinds", &self.custom.keys().collect::<Vec<_>>())
            .finish()
    }
}

const ROOT_FIELDS: [&str; 6] = [
    "apiVersion",
    "kind",
    "metadata",
    "spec",
    "relations",
    "status",
];

impl Validator {
    /// A validator for the built-in kinds.
    ///
    /// ```
    /// assert!(idp_catalog::validate::Validator::new().custom_kinds().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Accept `kind` with these `apiVersion`s, checking the whole envelope against
    /// `schema` (JSON Schema; the envelope rules still apply). An invalid schema is an
    /// error.
    ///
    /// ```
    /// let mut v = idp_catalog::validate::Validator::new();
    /// assert!(v.register_kind("Thing", &["x.io/v1"], &serde_json::json!({"type": 12})).is_err());
    /// ```
    pub fn register_kind(
        &mut self,
        kind: &str,
        api_versions: &[&str],
        schema: &Value,
    ) -> idp_core::Result<()> {
        if !rules::is_valid_kind(kind) {
            return Err(idp_core::Error::invalid_input(format!(
                "cannot register kind {kind:?}: a kind is a letter followed by letters and digits, at most 63 characters"
            )));
        }
        let compiled = jsonschema::validator_for(schema).map_err(|e| {
            idp_core::Error::invalid_input(format!(
                "the JSON Schema for kind {kind} is invalid: {e}"
            ))
        })?;
        self.custom.insert(
            kind.to_owned(),
            CustomKind {
                api_versions: api_versions.iter().map(|s| (*s).to_owned()).collect(),
                schema: Arc::new(compiled),
            },
        );
        Ok(())
    }

    /// The registered custom kinds.
    ///
    /// ```
    /// assert!(idp_catalog::validate::Validator::new().custom_kinds().is_empty());
    /// ```
    pub fn custom_kinds(&self) -> Vec<&str> {
        let mut kinds: Vec<&str> = self.custom.keys().map(String::as_str).collect();
        kinds.sort_unstable();
        kinds
    }

    /// Every problem with `entity`; empty when Backstage would accept it.
    ///
    /// ```
    /// let v = idp_catalog::validate::Validator::new();
    /// let p = v.validate(&serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Widget", "metadata": {"name": "a"}}));
    /// assert_eq!(p[0].rule, "unknown-kind");
    /// ```
    pub fn validate(&self, entity: &Value) -> Vec<Problem> {
        self.validate_and_derive(entity, None)
    }

    /// [`Validator::validate`], also handing back the relations of a valid built-in
    /// entity (derived once, for the reference checks) in `relations`.
    pub(crate) fn validate_and_derive(
        &self,
        entity: &Value,
        relations: Option<&mut Vec<(relations::RelationType, idp_core::EntityRef)>>,
    ) -> Vec<Problem> {
        let mut out = Vec::new();
        let Some(root) = entity.as_object() else {
            out.push(Problem::new(
                "",
                "envelope",
                format!(
                    "an entity must be a mapping with apiVersion, kind, metadata and spec, not {}",
                    type_name(entity)
                ),
            ));
            return out;
        };
        for key in root.keys() {
            if !ROOT_FIELDS.contains(&key.as_str()) {
                out.push(Problem::new(
                    key.clone(),
                    "foreign-root-field",
                    format!(
                        "unknown root field {key:?}; only apiVersion, kind, metadata, spec, relations and status are allowed (did you mean to put it under spec?)"
                    ),
                ));
            }
        }
        let api_version = required_str(root, "apiVersion", "", &mut out);
        if let Some(v) = api_version
            && !rules::is_valid_api_version(v)
        {
            out.push(Problem::new(
                "apiVersion",
                "api-version-format",
                format!("{v:?} is not a valid apiVersion; write group/version, e.g. backstage.io/v1alpha1"),
            ));
        }
        let kind = required_str(root, "kind", "", &mut out);
        if let Some(k) = kind
            && !rules::is_valid_kind(k)
        {
            out.push(Problem::new(
                "kind",
                "kind-format",
                format!("{k:?} is not a valid kind; a kind is a letter followed by letters and digits, at most 63 characters"),
            ));
        }
        let namespace = validate_metadata(root.get("metadata"), &mut out);
        if let Some(spec) = root.get("spec")
            && !spec.is_object()
        {
            out.push(Problem::new(
                "spec",
                "type",
                format!("spec must be a mapping, not {}", type_name(spec)),
            ));
        }
        if let Some(rel) = root.get("relations")
            && !rel.is_array()
        {
            out.push(Problem::new(
                "relations",
                "type",
                "relations must be a list",
            ));
        }
        if let Some(status) = root.get("status")
            && !status.is_object()
        {
            out.push(Problem::new("status", "type", "status must be a mapping"));
        }
        let (Some(api_version), Some(kind)) = (api_version, kind) else {
            return out;
        };
        if let Some(builtin) = BuiltinKind::from_kind(kind) {
            if !builtin.api_versions().contains(&api_version) {
                out.push(Problem::new(
                    "apiVersion",
                    "unknown-kind",
                    format!(
                        "kind {kind} is not known with apiVersion {api_version}; use {}",
                        builtin.api_versions().join(" or ")
                    ),
                ));
                return out;
            }
            let spec = root.get("spec");
            validate_spec(builtin, spec, &mut out);
            if out.is_empty()
                && let Some(spec) = spec.and_then(Value::as_object)
            {
                let (rels, problems) = relations::derive(builtin, spec, &namespace);
                out.extend(problems);
                if let Some(r) = relations {
                    *r = rels;
                }
            }
        } else if let Some(custom) = self.custom.get(kind) {
            if !custom.api_versions.iter().any(|v| v == api_version) {
                out.push(Problem::new(
                    "apiVersion",
                    "unknown-kind",
                    format!(
                        "kind {kind} is registered with apiVersion {}, not {api_version}",
                        custom.api_versions.join(" or ")
                    ),
                ));
                return out;
            }
            for e in custom.schema.iter_errors(entity) {
                let ptr = e.instance_path().to_string();
                out.push(Problem::new(pointer_to_path(&ptr), "schema", e.to_string()));
            }
        } else {
            let hint = BuiltinKind::from_kind_ignore_case(kind)
                .map(|b| format!(" (kinds are case-sensitive: did you mean {b}?)"))
                .unwrap_or_default();
            out.push(Problem::new(
                "kind",
                "unknown-kind",
                format!(
                    "unknown kind {kind} with apiVersion {api_version}{hint}; register it with a JSON Schema to accept it"
                ),
            ));
        }
        out
    }
}

/// `/spec/steps/0/action` → `spec.steps[0].action`.
fn pointer_to_path(ptr: &str) -> String {
    let mut out = String::new();
    for part in ptr.split('/').skip(1) {
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            out.push('[');
            out.push_str(part);
            out.push(']');
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(&part.replace("~1", "/").replace("~0", "~"));
        }
    }
    out
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn join(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

fn required_str<'a>(
    map: &'a Map<String, Value>,
    field: &str,
    parent: &str,
    out: &mut Vec<Problem>,
) -> Option<&'a str> {
    match map.get(field) {
        None | Some(Value::Null) => {
            out.push(Problem::new(
                join(parent, field),
                "required",
                format!("{field} is required"),
            ));
            None
        }
        Some(Value::String(s)) if s.is_empty() => {
            out.push(Problem::new(
                join(parent, field),
                "required",
                format!("{field} must not be empty"),
            ));
            None
        }
        Some(Value::String(s)) => Some(s),
        Some(other) => {
            out.push(Problem::new(
                join(parent, field),
                "type",
                format!("{field} must be a string, not {}", type_name(other)),
            ));
            None
        }
    }
}

/// Checks `metadata`; returns the namespace to resolve references in.
fn validate_metadata(metadata: Option<&Value>, out: &mut Vec<Problem>) -> String {
    let mut namespace = idp_core::DEFAULT_NAMESPACE.to_owned();
    let Some(metadata) = metadata else {
        out.push(Problem::new(
            "metadata",
            "required",
            "metadata is required (with at least a name)",
        ));
        return namespace;
    };
    let Some(meta) = metadata.as_object() else {
        out.push(Problem::new(
            "metadata",
            "type",
            format!("metadata must be a mapping, not {}", type_name(metadata)),
        ));
        return namespace;
    };
    if let Some(name) = required_str(meta, "name", "metadata", out)
        && !rules::is_valid_entity_name(name)
    {
        out.push(Problem::new(
            "metadata.name",
            "name-format",
            format!(
                "{name:?} is not a valid name: use 1-63 characters of [a-zA-Z0-9] separated by [-_.], starting and ending with a letter or digit"
            ),
        ));
    }
    match meta.get("namespace") {
        None => {}
        Some(Value::String(ns)) if rules::is_valid_namespace(ns) => namespace.clone_from(ns),
        Some(Value::String(ns)) => out.push(Problem::new(
            "metadata.namespace",
            "namespace-format",
            format!(
                "{ns:?} is not a valid namespace: use 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit"
            ),
        )),
        Some(other) => out.push(Problem::new(
            "metadata.namespace",
            "type",
            format!("metadata.namespace must be a string, not {}", type_name(other)),
        )),
    }
    for field in ["title", "description", "uid", "etag"] {
        if let Some(v) = meta.get(field)
            && !v.is_string()
        {
            out.push(Problem::new(
                format!("metadata.{field}"),
                "type",
                format!("metadata.{field} must be a string, not {}", type_name(v)),
            ));
        }
    }
    check_key_values(meta.get("labels"), "labels", true, out);
    check_key_values(meta.get("annotations"), "annotations", false, out);
    if let Some(tags) = meta.get("tags") {
        match tags.as_array() {
            None => out.push(Problem::new(
                "metadata.tags",
                "type",
                "metadata.tags must be a list of strings",
            )),
            Some(items) => {
                for (i, t) in items.iter().enumerate() {
                    match t.as_str() {
                        Some(s) if rules::is_valid_tag(s) => {}
                        Some(s) => out.push(Problem::new(
                            format!("metadata.tags[{i}]"),
                            "tag-format",
                            format!(
                                "{s:?} is not a valid tag: use 1-63 lower-case letters, digits and ':+#', groups joined by single '-'"
                            ),
                        )),
                        None => out.push(Problem::new(
                            format!("metadata.tags[{i}]"),
                            "type",
                            format!("a tag must be a string, not {}", type_name(t)),
                        )),
                    }
                }
            }
        }
    }
    if let Some(links) = meta.get("links") {
        match links.as_array() {
            None => out.push(Problem::new(
                "metadata.links",
                "type",
                "metadata.links must be a list of {url, title, icon, type}",
            )),
            Some(items) => {
                for (i, link) in items.iter().enumerate() {
                    let path = format!("metadata.links[{i}]");
                    let Some(l) = link.as_object() else {
                        out.push(Problem::new(
                            path,
                            "type",
                            "a link must be a mapping with a url",
                        ));
                        continue;
                    };
                    required_str(l, "url", &path, out);
                    for f in ["title", "icon", "type"] {
                        match l.get(f) {
                            None => {}
                            Some(Value::String(s)) if !s.is_empty() => {}
                            Some(_) => out.push(Problem::new(
                                format!("{path}.{f}"),
                                "type",
                                format!("link {f} must be a non-empty string"),
                            )),
                        }
                    }
                }
            }
        }
    }
    namespace
}

fn check_key_values(v: Option<&Value>, field: &str, labels: bool, out: &mut Vec<Problem>) {
    let Some(v) = v else { return };
    let Some(map) = v.as_object() else {
        out.push(Problem::new(
            format!("metadata.{field}"),
            "type",
            format!("metadata.{field} must be a mapping of strings"),
        ));
        return;
    };
    for (key, value) in map {
        // Formatted only for a problem.
        let path = || format!("metadata.{field}.{key}");
        if !rules::is_valid_label_key(key) {
            out.push(Problem::new(
                path(),
                if labels { "label-key-format" } else { "annotation-key-format" },
                format!(
                    "{key:?} is not a valid key: an optional DNS-subdomain prefix and '/', then 1-63 characters of [a-zA-Z0-9] separated by [-_.]"
                ),
            ));
        }
        match value.as_str() {
            None => out.push(Problem::new(
                path(),
                "type",
                format!("the value must be a string, not {}", type_name(value)),
            )),
            Some(s) if labels && !rules::is_valid_label_value(s) => out.push(Problem::new(
                path(),
                "label-value-format",
                format!(
                    "{s:?} is not a valid label value: empty, or 1-63 characters of [a-zA-Z0-9] separated by [-_.]"
                ),
            )),
            Some(_) => {}
        }
    }
}

#[derive(Clone, Copy)]
enum Field {
    ReqStr,
    OptStr,
    OptStrList,
    ReqStrList,
    Object,
    Steps,
    Parameters,
}

fn spec_fields(kind: BuiltinKind) -> &'static [(&'static str, Field)] {
    use Field::{Object, OptStr, OptStrList, Parameters, ReqStr, ReqStrList, Steps};
    match kind {
        BuiltinKind::Component => &[
            ("type", ReqStr),
            ("lifecycle", ReqStr),
            ("owner", ReqStr),
            ("system", OptStr),
            ("subcomponentOf", OptStr),
            ("providesApis", OptStrList),
            ("consumesApis", OptStrList),
            ("dependsOn", OptStrList),
            ("dependencyOf", OptStrList),
        ],
        BuiltinKind::Api => &[
            ("type", ReqStr),
            ("lifecycle", ReqStr),
            ("owner", ReqStr),
            ("definition", ReqStr),
            ("system", OptStr),
        ],
        BuiltinKind::Resource => &[
            ("type", ReqStr),
            ("owner", ReqStr),
            ("dependsOn", OptStrList),
            ("dependencyOf", OptStrList),
            ("system", OptStr),
        ],
        BuiltinKind::System => &[("owner", ReqStr), ("domain", OptStr), ("type", OptStr)],
        BuiltinKind::Domain => &[("owner", ReqStr), ("subdomainOf", OptStr), ("type", OptStr)],
        BuiltinKind::Group => &[
            ("type", ReqStr),
            ("profile", Object),
            ("parent", OptStr),
            ("children", ReqStrList),
            ("members", OptStrList),
        ],
        BuiltinKind::User => &[("profile", Object), ("memberOf", ReqStrList)],
        BuiltinKind::Location => &[
            ("type", OptStr),
            ("target", OptStr),
            ("targets", OptStrList),
            ("presence", OptStr),
        ],
        BuiltinKind::Template => &[
            ("type", ReqStr),
            ("owner", OptStr),
            ("parameters", Parameters),
            ("steps", Steps),
            ("output", Object),
        ],
        BuiltinKind::Environment => &[("owner", ReqStr), ("type", OptStr), ("system", OptStr)],
    }
}

fn validate_spec(kind: BuiltinKind, spec: Option<&Value>, out: &mut Vec<Problem>) {
    let empty = Map::new();
    let spec = match spec {
        Some(Value::Object(m)) => m,
        Some(_) => return, // reported by the envelope check
        None => {
            out.push(Problem::new(
                "spec",
                "required",
                format!("a {kind} needs a spec"),
            ));
            &empty
        }
    };
    for &(field, rule) in spec_fields(kind) {
        let path = || format!("spec.{field}");
        let value = spec.get(field);
        match rule {
            Field::ReqStr => {
                required_str(spec, field, "spec", out);
            }
            Field::OptStr => match value {
                None => {}
                Some(Value::String(s)) if !s.is_empty() => {}
                Some(Value::String(_)) => {
                    out.push(Problem::new(
                        path(),
                        "required",
                        format!("{field} must not be empty"),
                    ));
                }
                Some(v) => out.push(Problem::new(
                    path(),
                    "type",
                    format!("{field} must be a string, not {}", type_name(v)),
                )),
            },
            Field::ReqStrList | Field::OptStrList => match value {
                None if matches!(rule, Field::ReqStrList) => out.push(Problem::new(
                    path(),
                    "required",
                    format!("{field} is required (a list, may be empty)"),
                )),
                None => {}
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        match item {
                            Value::String(s) if !s.is_empty() => {}
                            other => out.push(Problem::new(
                                format!("spec.{field}[{i}]"),
                                "type",
                                format!(
                                    "each entry of {field} must be a non-empty string, not {}",
                                    type_name(other)
                                ),
                            )),
                        }
                    }
                }
                Some(v) => out.push(Problem::new(
                    path(),
                    "type",
                    format!("{field} must be a list of strings, not {}", type_name(v)),
                )),
            },
            Field::Object => {
                if let Some(v) = value
                    && !v.is_object()
                {
                    out.push(Problem::new(
                        path(),
                        "type",
                        format!("{field} must be a mapping, not {}", type_name(v)),
                    ));
                }
            }
            Field::Parameters => match value {
                None | Some(Value::Object(_)) => {}
                Some(Value::Array(pages)) => {
                    for (i, page) in pages.iter().enumerate() {
                        if !page.is_object() {
                            out.push(Problem::new(
                                format!("spec.{field}[{i}]"),
                                "type",
                                "each parameters page must be a mapping (a JSON Schema object)",
                            ));
                        }
                    }
                }
                Some(v) => out.push(Problem::new(
                    path(),
                    "type",
                    format!(
                        "parameters must be a mapping or a list of mappings, not {}",
                        type_name(v)
                    ),
                )),
            },
            Field::Steps => match value {
                None => out.push(Problem::new(
                    path(),
                    "required",
                    "steps is required (a list)",
                )),
                Some(Value::Array(steps)) => {
                    for (i, step) in steps.iter().enumerate() {
                        let sp = format!("spec.{field}[{i}]");
                        match step.as_object() {
                            Some(s) => {
                                required_str(s, "action", &sp, out);
                                for f in ["id", "name"] {
                                    if let Some(v) = s.get(f)
                                        && !v.is_string()
                                    {
                                        out.push(Problem::new(
                                            format!("{sp}.{f}"),
                                            "type",
                                            format!("step {f} must be a string"),
                                        ));
                                    }
                                }
                                if let Some(v) = s.get("input")
                                    && !v.is_object()
                                {
                                    out.push(Problem::new(
                                        format!("{sp}.input"),
                                        "type",
                                        "step input must be a mapping",
                                    ));
                                }
                            }
                            None => out.push(Problem::new(
                                sp,
                                "type",
                                "a step must be a mapping with an action",
                            )),
                        }
                    }
                }
                Some(v) => out.push(Problem::new(
                    path(),
                    "type",
                    format!("steps must be a list, not {}", type_name(v)),
                )),
            },
        }
    }
    if kind == BuiltinKind::Location
        && !spec.contains_key("target")
        && !spec.contains_key("targets")
    {
        out.push(Problem::new(
            "spec.target",
            "required",
            "a Location needs spec.target or spec.targets",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pointer_paths() {
        assert_eq!(
            pointer_to_path("/spec/steps/0/action"),
            "spec.steps[0].action"
        );
        assert_eq!(pointer_to_path(""), "");
        assert_eq!(
            pointer_to_path("/metadata/annotations/a~1b"),
            "metadata.annotations.a/b"
        );
    }

    #[test]
    fn non_mapping_is_rejected() {
        let v = Validator::new();
        assert_eq!(v.validate(&json!([1])).len(), 1);
        assert_eq!(v.validate(&json!(null))[0].rule, "envelope");
    }
}
