//! Kubernetes objects and multi-document manifest sets.
//!
//! PLACEHOLDER: being replaced by the full implementation (YAML parsing with limits,
//! apply order, serialisation).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::ids::ObjectRef;

/// Where an object came from: file, 0-based document index, 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Source {
    /// The file, when the object was read from one.
    pub file: Option<PathBuf>,
    /// 0-based index of the YAML document in the file.
    pub document: usize,
    /// 1-based line where the document starts.
    pub line: usize,
}

/// One Kubernetes object as dynamic JSON, `DynamicObject`-compatible.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    value: Map<String, Value>,
    source: Option<Source>,
}

impl Object {
    /// Wrap a JSON value; it must be a mapping with string `apiVersion` and `kind`.
    pub fn from_value(value: Value) -> Result<Self> {
        match value {
            Value::Object(map) => {
                for field in ["apiVersion", "kind"] {
                    if !map.get(field).is_some_and(Value::is_string) {
                        return Err(Error::invalid_input(format!(
                            "object has no string field `{field}`"
                        )));
                    }
                }
                Ok(Self {
                    value: map,
                    source: None,
                })
            }
            _ => Err(Error::invalid_input(
                "a Kubernetes object must be a mapping",
            )),
        }
    }
    /// `apiVersion`.
    pub fn api_version(&self) -> &str {
        self.value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    /// `kind`.
    pub fn kind(&self) -> &str {
        self.value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
    /// `metadata.name` (empty when absent).
    pub fn name(&self) -> &str {
        self.metadata_str("name").unwrap_or_default()
    }
    /// `metadata.namespace`.
    pub fn namespace(&self) -> Option<&str> {
        self.metadata_str("namespace")
    }
    fn metadata_str(&self, key: &str) -> Option<&str> {
        self.value.get("metadata")?.get(key)?.as_str()
    }
    /// `metadata.labels`.
    pub fn labels(&self) -> BTreeMap<String, String> {
        self.string_map("labels")
    }
    /// `metadata.annotations`.
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
    /// The identity of this object.
    pub fn object_ref(&self) -> ObjectRef {
        ObjectRef::new(
            self.api_version(),
            self.kind(),
            self.namespace(),
            self.name(),
        )
    }
    /// The JSON mapping.
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.value
    }
    /// The JSON mapping, mutable.
    pub fn as_map_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.value
    }
    /// The object as a JSON value.
    pub fn to_value(&self) -> Value {
        Value::Object(self.value.clone())
    }
    /// Consume into a JSON value.
    pub fn into_value(self) -> Value {
        Value::Object(self.value)
    }
    /// Where it was read from.
    pub fn source(&self) -> Option<&Source> {
        self.source.as_ref()
    }
    /// Set where it was read from.
    pub fn with_source(mut self, source: Source) -> Self {
        self.source = Some(source);
        self
    }
}

/// An ordered set of objects parsed from one or more multi-document YAML/JSON inputs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManifestSet {
    objects: Vec<Object>,
}

impl ManifestSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }
    /// Parse multi-document YAML or JSON.
    pub fn parse(input: &[u8], file: Option<&Path>) -> Result<Self> {
        let _ = (input, file);
        Err(Error::internal("not yet implemented"))
    }
    /// The objects in input order.
    pub fn objects(&self) -> &[Object] {
        &self.objects
    }
    /// Iterate the objects in input order.
    pub fn iter(&self) -> std::slice::Iter<'_, Object> {
        self.objects.iter()
    }
    /// Add an object.
    pub fn push(&mut self, object: Object) {
        self.objects.push(object);
    }
    /// Number of objects.
    pub fn len(&self) -> usize {
        self.objects.len()
    }
    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }
}

impl FromIterator<Object> for ManifestSet {
    fn from_iter<T: IntoIterator<Item = Object>>(iter: T) -> Self {
        Self {
            objects: iter.into_iter().collect(),
        }
    }
}

impl IntoIterator for ManifestSet {
    type Item = Object;
    type IntoIter = std::vec::IntoIter<Object>;
    fn into_iter(self) -> Self::IntoIter {
        self.objects.into_iter()
    }
}

impl<'a> IntoIterator for &'a ManifestSet {
    type Item = &'a Object;
    type IntoIter = std::slice::Iter<'a, Object>;
    fn into_iter(self) -> Self::IntoIter {
        self.objects.iter()
    }
}
