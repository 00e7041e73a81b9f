//! [`Object`]: one Kubernetes object as dynamic JSON.

use std::collections::BTreeMap;

use kube::api::DynamicObject;
use serde_json::{Map, Value};

use super::Source;
use crate::error::{Error, Result};
use crate::ids::ObjectRef;

/// One Kubernetes object as dynamic JSON, [`DynamicObject`]-compatible.
///
/// An `Object` always is a JSON mapping with a non-empty string `apiVersion` and `kind`,
/// and a mapping (or nothing) under `metadata`. It (de)serialises as that plain mapping.
/// Equality compares the JSON only: the [`Source`] it was read from is ignored.
///
/// ```
/// use idp_core::Object;
///
/// let mut cm = Object::from_value(serde_json::json!({
///     "apiVersion": "v1",
///     "kind": "ConfigMap",
///     "metadata": {"name": "settings"},
///     "data": {"mode": "fast"},
/// }))?;
/// cm.set_namespace("shop");
/// cm.set_label("app.kubernetes.io/name", "cart");
/// assert_eq!(cm.object_ref().to_string(), "v1 ConfigMap shop/settings");
/// assert_eq!(cm.pointer("/data/mode"), Some(&serde_json::json!("fast")));
/// # Ok::<(), idp_core::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Object {
    value: Map<String, Value>,
    source: Option<Source>,
}

impl PartialEq for Object {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl Eq for Object {}

/// What is wrong with `value` as an object, as (field path, problem).
pub(super) fn shape_problem(map: &Map<String, Value>) -> Option<(&'static str, String)> {
    for field in ["apiVersion", "kind"] {
        match map.get(field) {
            Some(Value::String(s)) if !s.is_empty() => {}
            Some(Value::String(_)) => return Some((field, format!("`{field}` is empty"))),
            Some(other) => {
                return Some((
                    field,
                    format!("`{field}` must be a string, found {}", type_name(other)),
                ));
            }
            None => return Some((field, format!("missing field `{field}`"))),
        }
    }
    match map.get("metadata") {
        None | Some(Value::Object(_)) => None,
        Some(other) => Some((
            "metadata",
            format!("`metadata` must be a mapping, found {}", type_name(other)),
        )),
    }
}

/// What is wrong with the identity (`metadata.name` / `generateName`) of `map`.
pub(super) fn name_problem(map: &Map<String, Value>) -> Option<(&'static str, String)> {
    let metadata = map.get("metadata").and_then(Value::as_object);
    let field = |key: &str| metadata.and_then(|m| m.get(key));
    let non_empty_string =
        |v: Option<&Value>| v.and_then(Value::as_str).is_some_and(|s| !s.is_empty());
    match field("name") {
        Some(Value::String(s)) if !s.is_empty() => None,
        Some(v) if !v.is_string() && !v.is_null() => Some((
            "metadata.name",
            format!("`metadata.name` must be a string, found {}", type_name(v)),
        )),
        _ if non_empty_string(field("generateName")) => None,
        _ => Some((
            "metadata.name",
            "missing `metadata.name`: every object needs a name (or `metadata.generateName`)"
                .to_owned(),
        )),
    }
}

/// A short name for the JSON type of `v`, for error messages.
pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a sequence",
        Value::Object(_) => "a mapping",
    }
}

impl Object {
    /// Wrap a JSON value; it must be a mapping with non-empty string `apiVersion` and
    /// `kind`, and `metadata`, when present, must be a mapping.
    ///
    /// A missing `metadata.name` is accepted here (a mutation may fill it in), but
    /// [`ManifestSet::parse`](super::ManifestSet::parse) rejects objects that have neither
    /// `metadata.name` nor `metadata.generateName`.
    ///
    /// ```
    /// use idp_core::Object;
    /// let ok = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod"}));
    /// assert!(ok.is_ok());
    /// let err = Object::from_value(serde_json::json!({"kind": "Pod"})).unwrap_err();
    /// assert!(err.to_string().contains("apiVersion"));
    /// ```
    pub fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Object(map) => match shape_problem(&map) {
                Some((_, problem)) => Err(Error::invalid_input(format!(
                    "not a Kubernetes object: {problem}"
                ))),
                None => Ok(Self {
                    value: map,
                    source: None,
                }),
            },
            other => Err(Error::invalid_input(format!(
                "a Kubernetes object must be a mapping, found {}",
                type_name(&other)
            ))),
        }
    }

    /// Wrap a mapping already checked by [`shape_problem`].
    pub(super) fn from_checked(value: Map<String, Value>, source: Source) -> Self {
        Self {
            value,
            source: Some(source),
        }
    }

    /// `apiVersion`, e.g. `apps/v1`.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment"})).unwrap();
    /// assert_eq!(o.api_version(), "apps/v1");
    /// ```
    pub fn api_version(&self) -> &str {
        self.value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// `kind`, e.g. `Deployment`.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment"})).unwrap();
    /// assert_eq!(o.kind(), "Deployment");
    /// ```
    pub fn kind(&self) -> &str {
        self.value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// `metadata.name` (empty when absent).
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}})).unwrap();
    /// assert_eq!(o.name(), "web");
    /// ```
    pub fn name(&self) -> &str {
        self.metadata_str("name").unwrap_or_default()
    }

    /// `metadata.generateName`, the prefix the API server completes into a name.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"generateName": "migrate-"}})).unwrap();
    /// assert_eq!(o.generate_name(), Some("migrate-"));
    /// assert_eq!(o.name(), "");
    /// ```
    pub fn generate_name(&self) -> Option<&str> {
        self.metadata_str("generateName")
    }

    /// `metadata.namespace`, when set.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"}})).unwrap();
    /// assert_eq!(o.namespace(), Some("shop"));
    /// ```
    pub fn namespace(&self) -> Option<&str> {
        self.metadata_str("namespace")
    }

    fn metadata_str(&self, key: &str) -> Option<&str> {
        self.value.get("metadata")?.get(key)?.as_str()
    }

    /// `metadata.labels` (entries whose value is not a string are left out).
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"app": "web"}}})).unwrap();
    /// assert_eq!(o.labels()["app"], "web");
    /// ```
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.string_map("labels")
    }

    /// `metadata.annotations` (entries whose value is not a string are left out).
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "annotations": {"owner": "team-a"}}})).unwrap();
    /// assert_eq!(o.annotations()["owner"], "team-a");
    /// ```
    pub fn annotations(&self) -> BTreeMap<String, String> {
        self.string_map("annotations")
    }

    fn string_map(&self, key: &str) -> BTreeMap<String, String> {
        self.value
            .get("metadata")
            .and_then(|m| m.get(key))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The identity of this object: apiVersion, kind, namespace and name.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"}})).unwrap();
    /// assert_eq!(o.object_ref().to_string(), "v1 Pod shop/web");
    /// ```
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::new(
            self.api_version(),
            self.kind(),
            self.namespace(),
            self.name(),
        )
    }

    /// `metadata` as a mutable mapping, created (or replaced, if it was not a mapping).
    fn metadata_mut(&mut self) -> Option<&mut Map<String, Value>> {
        ensure_map(self.value.entry("metadata").or_insert(Value::Null))
    }

    fn string_map_mut(&mut self, key: &str) -> Option<&mut Map<String, Value>> {
        ensure_map(self.metadata_mut()?.entry(key).or_insert(Value::Null))
    }

    /// Set `metadata.namespace`.
    ///
    /// ```
    /// # let mut o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}})).unwrap();
    /// o.set_namespace("shop");
    /// assert_eq!(o.namespace(), Some("shop"));
    /// ```
    pub fn set_namespace(&mut self, namespace: impl Into<String>) {
        if let Some(metadata) = self.metadata_mut() {
            metadata.insert("namespace".into(), Value::String(namespace.into()));
        }
    }

    /// Set the label `key` to `value` in `metadata.labels`.
    ///
    /// ```
    /// # let mut o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}})).unwrap();
    /// o.set_label("app.kubernetes.io/managed-by", "idp");
    /// assert_eq!(o.labels()["app.kubernetes.io/managed-by"], "idp");
    /// ```
    pub fn set_label(&mut self, key: impl Into<String>, value: impl Into<String>) {
        if let Some(map) = self.string_map_mut("labels") {
            map.insert(key.into(), Value::String(value.into()));
        }
    }

    /// Set the annotation `key` to `value` in `metadata.annotations`.
    ///
    /// ```
    /// # let mut o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}})).unwrap();
    /// o.set_annotation("idp.dev/owner", "team-a");
    /// assert_eq!(o.annotations()["idp.dev/owner"], "team-a");
    /// ```
    pub fn set_annotation(&mut self, key: impl Into<String>, value: impl Into<String>) {
        if let Some(map) = self.string_map_mut("annotations") {
            map.insert(key.into(), Value::String(value.into()));
        }
    }

    /// The value at a JSON Pointer (RFC 6901) such as `/spec/replicas` or
    /// `/spec/template/spec/containers/0/image`.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 3}})).unwrap();
    /// assert_eq!(o.pointer("/spec/replicas").and_then(|v| v.as_u64()), Some(3));
    /// assert_eq!(o.pointer("/spec/missing"), None);
    /// ```
    pub fn pointer(&self, pointer: &str) -> Option<&Value> {
        if pointer.is_empty() {
            return None;
        }
        let (first, rest) = split_pointer(pointer)?;
        let value = self.value.get(&first)?;
        if rest.is_empty() {
            Some(value)
        } else {
            value.pointer(rest)
        }
    }

    /// The value at a JSON Pointer, mutable. Changing `apiVersion` or `kind` to something
    /// that is not a non-empty string breaks the object's invariant; don't.
    ///
    /// ```
    /// # let mut o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "spec": {"replicas": 3}})).unwrap();
    /// *o.pointer_mut("/spec/replicas").unwrap() = 5.into();
    /// assert_eq!(o.pointer("/spec/replicas"), Some(&5.into()));
    /// ```
    pub fn pointer_mut(&mut self, pointer: &str) -> Option<&mut Value> {
        if pointer.is_empty() {
            return None;
        }
        let (first, rest) = split_pointer(pointer)?;
        let value = self.value.get_mut(&first)?;
        if rest.is_empty() {
            Some(value)
        } else {
            value.pointer_mut(rest)
        }
    }

    /// The JSON mapping.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod"})).unwrap();
    /// assert!(o.as_map().contains_key("kind"));
    /// ```
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.value
    }

    /// The JSON mapping, mutable. Keep `apiVersion` and `kind` non-empty strings.
    ///
    /// ```
    /// # let mut o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap"})).unwrap();
    /// o.as_map_mut().insert("data".into(), serde_json::json!({"a": "1"}));
    /// assert_eq!(o.pointer("/data/a"), Some(&"1".into()));
    /// ```
    pub fn as_map_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.value
    }

    /// The object as a JSON value.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod"})).unwrap();
    /// assert_eq!(o.to_value()["kind"], "Pod");
    /// ```
    pub fn to_value(&self) -> Value {
        Value::Object(self.value.clone())
    }

    /// Consume into a JSON value.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod"})).unwrap();
    /// assert_eq!(o.into_value()["apiVersion"], "v1");
    /// ```
    pub fn into_value(self) -> Value {
        Value::Object(self.value)
    }

    /// Where it was read from, when it was parsed.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod"})).unwrap();
    /// assert!(o.source().is_none());
    /// ```
    pub fn source(&self) -> Option<&Source> {
        self.source.as_ref()
    }

    /// Set where it was read from.
    ///
    /// ```
    /// use idp_core::manifest::Source;
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod"})).unwrap();
    /// let o = o.with_source(Source::new(Some("pod.yaml".into()), 0, 1));
    /// assert_eq!(o.source().unwrap().line, 1);
    /// ```
    pub fn with_source(mut self, source: Source) -> Self {
        self.source = Some(source);
        self
    }

    /// Convert into a [`DynamicObject`] (for `kube::Api<DynamicObject>`).
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}})).unwrap();
    /// let dynamic = o.to_dynamic()?;
    /// assert_eq!(dynamic.metadata.name.as_deref(), Some("c"));
    /// assert_eq!(dynamic.data["data"]["a"], "1");
    /// assert_eq!(idp_core::Object::try_from(dynamic)?, o);
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn to_dynamic(&self) -> Result<DynamicObject> {
        serde_json::from_value(self.to_value()).map_err(|e| {
            Error::invalid_input(format!(
                "{} is not a valid Kubernetes object: {e}",
                self.object_ref()
            ))
            .with_source(e)
        })
    }
}

/// Make `slot` a mapping (keeping it if it is one) and return it.
fn ensure_map(slot: &mut Value) -> Option<&mut Map<String, Value>> {
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// Split `/first/rest…` into the unescaped first token and the remaining pointer.
fn split_pointer(pointer: &str) -> Option<(String, &str)> {
    let tail = pointer.strip_prefix('/')?;
    let (first, rest) = match tail.find('/') {
        Some(i) => (&tail[..i], &tail[i..]),
        None => (tail, ""),
    };
    Some((first.replace("~1", "/").replace("~0", "~"), rest))
}

impl TryFrom<DynamicObject> for Object {
    type Error = Error;

    /// Convert from a [`DynamicObject`]; it must carry `apiVersion` and `kind`
    /// (`DynamicObject::types`).
    ///
    /// ```
    /// use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
    /// let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "ConfigMap"));
    /// let d = DynamicObject::new("c", &ar);
    /// let o = idp_core::Object::try_from(d)?;
    /// assert_eq!(o.object_ref().to_string(), "v1 ConfigMap c");
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    fn try_from(object: DynamicObject) -> Result<Self> {
        let value = serde_json::to_value(&object).map_err(|e| {
            Error::invalid_input(format!("cannot serialise the DynamicObject: {e}")).with_source(e)
        })?;
        Object::from_value(value)
    }
}

impl From<Object> for Value {
    /// The plain JSON mapping.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod"})).unwrap();
    /// let v: serde_json::Value = o.into();
    /// assert_eq!(v["kind"], "Pod");
    /// ```
    fn from(object: Object) -> Self {
        object.into_value()
    }
}

impl TryFrom<Value> for Object {
    type Error = Error;

    /// Same as [`Object::from_value`].
    ///
    /// ```
    /// let o = idp_core::Object::try_from(serde_json::json!({"apiVersion": "v1", "kind": "Pod"}))?;
    /// assert_eq!(o.kind(), "Pod");
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    fn try_from(value: Value) -> Result<Self> {
        Object::from_value(value)
    }
}

/// Fields written first, in this order, so YAML and JSON output reads like a manifest.
const LEADING_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

impl serde::Serialize for Object {
    /// The plain JSON mapping, with `apiVersion`, `kind` and `metadata` first and the
    /// other fields in their map order.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.value.len()))?;
        for key in LEADING_FIELDS {
            if let Some(value) = self.value.get(key) {
                map.serialize_entry(key, value)?;
            }
        }
        for (key, value) in &self.value {
            if !LEADING_FIELDS.contains(&key.as_str()) {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

impl<'de> serde::Deserialize<'de> for Object {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Object::from_value(value).map_err(|e| serde::de::Error::custom(e.message()))
    }
}
