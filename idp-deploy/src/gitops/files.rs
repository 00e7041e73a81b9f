//! A release's objects as files: one deterministic YAML file per object.

use std::collections::{BTreeMap, HashMap};

use idp_core::{Error, ManifestSet, Object, Result};
use serde_json::{Map, Value};

/// The files a release writes into its folder: `file name → YAML bytes`, one file per
/// object, named `<kind>-<name>.yaml` (lower-case; characters other than `a-z 0-9 . -`
/// become `_`).
///
/// When two objects would get the same name (same kind and name in two namespaces), both
/// are qualified with their namespace (`<kind>-<namespace>-<name>.yaml`, `_cluster` for
/// cluster-scoped objects), and if that still clashes (same kind in two API groups) with
/// the API group too (`<kind>.<group>-<namespace>-<name>.yaml`). The same object twice is
/// an error (as are two objects whose names differ only in case), as is an object with
/// only `generateName` (GitOps files need stable names).
///
/// The YAML is canonical: `apiVersion`, `kind`, `metadata` first, then every mapping's
/// keys sorted, so the same objects always give the same bytes, whatever order their
/// fields were written in.
///
/// ```
/// use idp_core::ManifestSet;
/// let set = ManifestSet::parse(b"
/// kind: Service
/// apiVersion: v1
/// metadata: {name: cart, namespace: shop}
/// spec: {selector: {app: cart}, ports: [{port: 80}]}
/// ", None)?;
/// let files = idp_deploy::gitops::manifest_files(&set)?;
/// let text = String::from_utf8(files["service-cart.yaml"].clone()).unwrap();
/// assert!(text.starts_with("apiVersion: v1\nkind: Service\nmetadata:\n"));
/// # Ok::<(), idp_core::Error>(())
/// ```
pub fn manifest_files(set: &ManifestSet) -> Result<BTreeMap<String, Vec<u8>>> {
    let keys: Vec<FileKey> = set.iter().map(FileKey::of).collect::<Result<_>>()?;
    let mut names: Vec<String> = keys.iter().map(|k| k.name(0)).collect();
    for level in 1..=2 {
        let clashes = clashing(&names);
        if clashes.is_empty() {
            break;
        }
        for (i, key) in keys.iter().enumerate() {
            if clashes.contains_key(&names[i]) {
                names[i] = key.name(level);
            }
        }
    }
    let clashes = clashing(&names);
    if let Some((name, _)) = clashes.iter().next() {
        let objects: Vec<String> = keys
            .iter()
            .zip(&names)
            .filter(|(_, n)| *n == name)
            .map(|(k, _)| k.describe())
            .collect();
        return Err(Error::invalid_input(format!(
            "objects would be written to the same file {name} ({}): an object is listed twice, or their kinds and names differ only in case or punctuation; remove the duplicate or rename one",
            objects.join(", ")
        )));
    }
    let mut out = BTreeMap::new();
    for (object, name) in set.iter().zip(names) {
        out.insert(name, object_yaml(object)?);
    }
    Ok(out)
}

/// One object as canonical YAML (see [`manifest_files`]).
///
/// ```
/// let o = idp_core::Object::from_value(serde_json::json!({
///     "metadata": {"name": "a", "labels": {"z": "1", "a": "2"}}, "kind": "ConfigMap", "apiVersion": "v1"
/// }))?;
/// let yaml = String::from_utf8(idp_deploy::gitops::object_yaml(&o)?).unwrap();
/// assert_eq!(yaml, "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels:\n    a: \"2\"\n    z: \"1\"\n  name: a\n");
/// # Ok::<(), idp_core::Error>(())
/// ```
pub fn object_yaml(object: &Object) -> Result<Vec<u8>> {
    let sorted = sort_keys(object.to_value());
    let canonical = Object::from_value(sorted)?;
    let set: ManifestSet = std::iter::once(canonical).collect();
    Ok(set.to_yaml()?.into_bytes())
}

fn sort_keys(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            let mut out = Map::new();
            for (k, v) in entries {
                out.insert(k, sort_keys(v));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sort_keys).collect()),
        other => other,
    }
}

fn clashing(names: &[String]) -> HashMap<String, usize> {
    let mut counts: HashMap<String, usize> = HashMap::new();
    for n in names {
        *counts.entry(n.clone()).or_default() += 1;
    }
    counts.retain(|_, c| *c > 1);
    counts
}

struct FileKey {
    kind: String,
    group: String,
    namespace: Option<String>,
    name: String,
}

impl FileKey {
    fn of(object: &Object) -> Result<Self> {
        let name = object.name();
        if name.is_empty() {
            let what = object
                .generate_name()
                .map(|g| format!(" (generateName {g:?})"))
                .unwrap_or_default();
            return Err(Error::invalid_input(format!(
                "a {} {} object has no metadata.name{what}; objects written to a GitOps repository need a fixed name",
                object.api_version(),
                object.kind()
            )));
        }
        let group = object
            .api_version()
            .rsplit_once('/')
            .map_or("core", |(g, _)| g);
        Ok(Self {
            kind: object.kind().to_owned(),
            group: group.to_owned(),
            namespace: object.namespace().map(str::to_owned),
            name: name.to_owned(),
        })
    }

    fn name(&self, level: u8) -> String {
        let kind = clean(&self.kind);
        let name = clean(&self.name);
        let ns = self
            .namespace
            .as_deref()
            .map_or_else(|| "_cluster".to_owned(), clean);
        match level {
            0 => format!("{kind}-{name}.yaml"),
            1 => format!("{kind}-{ns}-{name}.yaml"),
            _ => format!("{kind}.{}-{ns}-{name}.yaml", clean(&self.group)),
        }
    }

    fn describe(&self) -> String {
        format!(
            "{} {}/{}",
            self.kind,
            self.namespace.as_deref().unwrap_or("(cluster)"),
            self.name
        )
    }
}

fn clean(text: &str) -> String {
    text.chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(ns: Option<&str>, name: &str, api: &str) -> Object {
        let mut meta = serde_json::json!({"name": name});
        if let Some(ns) = ns {
            meta["namespace"] = ns.into();
        }
        Object::from_value(
            serde_json::json!({"apiVersion": api, "kind": "ConfigMap", "metadata": meta}),
        )
        .unwrap()
    }

    #[test]
    fn names_are_qualified_only_on_clash() {
        let set: ManifestSet = [
            cm(Some("a"), "x", "v1"),
            cm(Some("b"), "x", "v1"),
            cm(Some("a"), "y", "v1"),
        ]
        .into_iter()
        .collect();
        let files = manifest_files(&set).unwrap();
        let names: Vec<_> = files.keys().cloned().collect();
        assert_eq!(
            names,
            [
                "configmap-a-x.yaml",
                "configmap-b-x.yaml",
                "configmap-y.yaml"
            ]
        );
    }

    #[test]
    fn group_qualifies_last_and_duplicates_fail() {
        let set: ManifestSet = [
            cm(Some("a"), "x", "v1"),
            cm(Some("a"), "x", "example.com/v1"),
        ]
        .into_iter()
        .collect();
        let files = manifest_files(&set).unwrap();
        assert!(files.contains_key("configmap.core-a-x.yaml"));
        assert!(files.contains_key("configmap.example.com-a-x.yaml"));
        let dup: ManifestSet = [cm(None, "x", "v1"), cm(None, "x", "v1")]
            .into_iter()
            .collect();
        let err = manifest_files(&dup).unwrap_err();
        assert!(err.to_string().contains("same file"), "{err}");
    }

    #[test]
    fn yaml_ignores_field_order() {
        let a = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "namespace": "n"}, "data": {"b": "1", "a": "2"}})).unwrap();
        let b = Object::from_value(serde_json::json!({"data": {"a": "2", "b": "1"}, "metadata": {"namespace": "n", "name": "a"}, "kind": "ConfigMap", "apiVersion": "v1"})).unwrap();
        assert_eq!(object_yaml(&a).unwrap(), object_yaml(&b).unwrap());
    }
}
