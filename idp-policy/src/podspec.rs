//! Pod-controller autogen: find the pod spec inside any pod-bearing object, once.
//!
//! Every pod-level rule in this crate (Pod Security Standards, resources, probes, images,
//! ports) is written against a [`PodSpec`], never against a kind. [`PodSpec::of`] finds
//! the pod spec of a `Pod` (`spec`), of the template-bearing controllers `Deployment`,
//! `StatefulSet`, `DaemonSet`, `ReplicaSet`, `ReplicationController` and `Job`
//! (`spec.template.spec`) and of a `CronJob` (`spec.jobTemplate.spec.template.spec`),
//! together with the path prefix to it and the pod's metadata (for annotations). So a
//! rule written once reports `spec.template.spec.containers[0].securityContext.privileged`
//! for a Deployment and `spec.containers[0].securityContext.privileged` for a Pod.
//!
//! ```
//! use idp_core::Object;
//! use idp_policy::podspec::PodSpec;
//!
//! let deploy = Object::from_value(serde_json::json!({
//!     "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
//!     "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}}}
//! })).unwrap();
//! let pod = PodSpec::of(&deploy).unwrap();
//! assert_eq!(pod.path(), "spec.template.spec");
//! let c = pod.containers().next().unwrap();
//! assert_eq!(c.name(), "app");
//! assert_eq!(c.path(), "spec.template.spec.containers[0]");
//! ```

use std::fmt;

use crate::view::{Digits, text};
use idp_core::Object;
use serde_json::{Map, Value};

/// Kinds whose pod spec sits at `spec.template.spec`.
pub const TEMPLATE_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
];

/// Every kind that carries a pod spec: `Pod`, the [`TEMPLATE_KINDS`] and `CronJob`.
///
/// ```
/// assert!(idp_policy::podspec::POD_KINDS.contains(&"CronJob"));
/// ```
pub const POD_KINDS: &[&str] = &[
    "Pod",
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "ReplicationController",
    "Job",
    "CronJob",
];

/// Where the pod template of `kind` lives, as JSON keys from the root (the mapping
/// holding the pod's `spec` and `metadata`; the root itself for a Pod), and the dotted
/// path of the pod spec.
fn layout(kind: &str) -> Option<(&'static [&'static str], &'static str)> {
    match kind {
        "Pod" => Some((&[], "spec")),
        "CronJob" => Some((
            &["spec", "jobTemplate", "spec", "template"],
            "spec.jobTemplate.spec.template.spec",
        )),
        k if TEMPLATE_KINDS.contains(&k) => Some((&["spec", "template"], "spec.template.spec")),
        _ => None,
    }
}

/// Whether objects of `kind` carry a pod spec.
///
/// ```
/// assert!(idp_policy::podspec::is_pod_kind("StatefulSet"));
/// assert!(!idp_policy::podspec::is_pod_kind("Service"));
/// ```
pub fn is_pod_kind(kind: &str) -> bool {
    POD_KINDS.contains(&kind)
}

/// The dotted path of the pod metadata for `kind` (`metadata` for a Pod,
/// `spec.template.metadata` for a Deployment, …).
///
/// ```
/// assert_eq!(idp_policy::podspec::metadata_path("Job"), Some("spec.template.metadata"));
/// ```
pub fn metadata_path(kind: &str) -> Option<&'static str> {
    match kind {
        "Pod" => Some("metadata"),
        "CronJob" => Some("spec.jobTemplate.spec.template.metadata"),
        k if TEMPLATE_KINDS.contains(&k) => Some("spec.template.metadata"),
        _ => None,
    }
}

fn walk<'a>(root: &'a Map<String, Value>, keys: &[&str]) -> Option<&'a Map<String, Value>> {
    let mut cur = root;
    for key in keys {
        cur = cur.get(*key)?.as_object()?;
    }
    Some(cur)
}

fn walk_mut<'a>(
    root: &'a mut Map<String, Value>,
    keys: &[&str],
) -> Option<&'a mut Map<String, Value>> {
    let mut cur = root;
    for key in keys {
        cur = cur.get_mut(*key)?.as_object_mut()?;
    }
    Some(cur)
}

/// Walk `keys` from `root`, creating empty mappings where they are missing. `None` when
/// an existing value on the way is not a mapping (the object is left as it is).
pub(crate) fn walk_create<'a>(
    root: &'a mut Map<String, Value>,
    keys: &[&str],
) -> Option<&'a mut Map<String, Value>> {
    let mut cur = root;
    for key in keys {
        cur = cur
            .entry((*key).to_owned())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()?;
    }
    Some(cur)
}

/// The pod spec of one object, with its path and the pod's metadata.
///
/// ```
/// use idp_core::Object;
/// use idp_policy::podspec::PodSpec;
/// let cron = Object::from_value(serde_json::json!({
///     "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
///     "spec": {"jobTemplate": {"spec": {"template": {
///         "metadata": {"annotations": {"a": "b"}},
///         "spec": {"containers": [{"name": "job"}]}}}}}
/// })).unwrap();
/// let pod = PodSpec::of(&cron).unwrap();
/// assert_eq!(pod.path(), "spec.jobTemplate.spec.template.spec");
/// assert_eq!(pod.annotation("a"), Some("b"));
/// ```
#[derive(Clone, Copy)]
pub struct PodSpec<'a> {
    spec: &'a Map<String, Value>,
    metadata: Option<&'a Map<String, Value>>,
    path: &'static str,
    metadata_path: &'static str,
}

impl fmt::Debug for PodSpec<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PodSpec")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl<'a> PodSpec<'a> {
    /// The pod spec of `object`, when its kind carries one and the spec is a mapping.
    ///
    /// ```
    /// let svc = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Service"})).unwrap();
    /// assert!(idp_policy::podspec::PodSpec::of(&svc).is_none());
    /// ```
    pub fn of(object: &'a Object) -> Option<Self> {
        Self::of_kind(object, object.kind())
    }

    /// [`PodSpec::of`] with the kind already read.
    pub(crate) fn of_kind(object: &'a Object, kind: &str) -> Option<Self> {
        let (template_keys, path) = layout(kind)?;
        // The spec and the metadata sit side by side: walk to them once.
        let template = walk(object.as_map(), template_keys)?;
        Some(Self {
            spec: template.get("spec")?.as_object()?,
            metadata: template.get("metadata").and_then(Value::as_object),
            path,
            metadata_path: metadata_path(kind).unwrap_or("metadata"),
        })
    }

    /// The pod spec as JSON.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"hostPID": true}})).unwrap();
    /// let pod = idp_policy::podspec::PodSpec::of(&o).unwrap();
    /// assert_eq!(pod.spec()["hostPID"], true);
    /// ```
    pub fn spec(&self) -> &'a Map<String, Value> {
        self.spec
    }

    /// The dotted path of the pod spec (`spec`, `spec.template.spec`, …).
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {}})).unwrap();
    /// assert_eq!(idp_policy::podspec::PodSpec::of(&o).unwrap().path(), "spec");
    /// ```
    pub fn path(&self) -> &'static str {
        self.path
    }

    /// The dotted path of the pod metadata (`metadata`, `spec.template.metadata`, …).
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "spec": {"template": {"spec": {}}}})).unwrap();
    /// assert_eq!(idp_policy::podspec::PodSpec::of(&o).unwrap().metadata_path(), "spec.template.metadata");
    /// ```
    pub fn metadata_path(&self) -> &'static str {
        self.metadata_path
    }

    /// The pod's metadata (the template's for controllers), when present.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": {}})).unwrap();
    /// assert!(idp_policy::podspec::PodSpec::of(&o).unwrap().metadata().is_some());
    /// ```
    pub fn metadata(&self) -> Option<&'a Map<String, Value>> {
        self.metadata
    }

    /// The pod's annotations as (key, string value) pairs; non-string values are skipped.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"annotations": {"k": "v"}}, "spec": {}})).unwrap();
    /// let pod = idp_policy::podspec::PodSpec::of(&o).unwrap();
    /// assert_eq!(pod.annotations().collect::<Vec<_>>(), vec![("k", "v")]);
    /// ```
    pub fn annotations(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.metadata
            .and_then(|m| m.get("annotations"))
            .and_then(Value::as_object)
            .into_iter()
            .flat_map(|m| m.iter())
            .filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)))
    }

    /// One annotation of the pod.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {}})).unwrap();
    /// assert_eq!(idp_policy::podspec::PodSpec::of(&o).unwrap().annotation("x"), None);
    /// ```
    pub fn annotation(&self, key: &str) -> Option<&'a str> {
        self.metadata?.get("annotations")?.get(key)?.as_str()
    }

    /// The pod-level `securityContext`, when it is a mapping.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"securityContext": {"runAsNonRoot": true}}})).unwrap();
    /// let pod = idp_policy::podspec::PodSpec::of(&o).unwrap();
    /// assert_eq!(pod.security_context().unwrap()["runAsNonRoot"], true);
    /// ```
    pub fn security_context(&self) -> Option<&'a Map<String, Value>> {
        self.spec.get("securityContext")?.as_object()
    }

    /// Whether `spec.os.name` is `windows`.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"os": {"name": "windows"}}})).unwrap();
    /// assert!(idp_policy::podspec::PodSpec::of(&o).unwrap().is_windows());
    /// ```
    pub fn is_windows(&self) -> bool {
        self.spec
            .get("os")
            .and_then(|os| os.get("name"))
            .and_then(Value::as_str)
            == Some("windows")
    }

    /// Whether the pod runs in a user namespace (`spec.hostUsers: false`).
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"hostUsers": false}})).unwrap();
    /// assert!(idp_policy::podspec::PodSpec::of(&o).unwrap().user_namespaced());
    /// ```
    pub fn user_namespaced(&self) -> bool {
        self.spec.get("hostUsers").and_then(Value::as_bool) == Some(false)
    }

    /// The pod's volumes with their index (non-mapping entries are skipped).
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"volumes": [{"name": "v", "emptyDir": {}}]}})).unwrap();
    /// assert_eq!(idp_policy::podspec::PodSpec::of(&o).unwrap().volumes().count(), 1);
    /// ```
    pub fn volumes(&self) -> impl Iterator<Item = (usize, &'a Map<String, Value>)> + 'a {
        self.spec
            .get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
            .filter_map(|(i, v)| Some((i, v.as_object()?)))
    }

    /// Every container: init containers, then containers, then ephemeral containers (the
    /// order the pod-security-admission library visits them in).
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {
    /// #   "containers": [{"name": "app"}], "initContainers": [{"name": "init"}]}})).unwrap();
    /// let pod = idp_policy::podspec::PodSpec::of(&o).unwrap();
    /// let names: Vec<_> = pod.containers().map(|c| c.name()).collect();
    /// assert_eq!(names, ["init", "app"]);
    /// ```
    pub fn containers(&self) -> impl Iterator<Item = Container<'a>> + 'a {
        let spec = self.spec;
        let prefix = self.path;
        ContainerKind::ALL.into_iter().flat_map(move |kind| {
            spec.get(kind.field())
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
                .filter_map(move |(index, v)| {
                    let value = v.as_object()?;
                    Some(Container {
                        value,
                        security_context: value.get("securityContext").and_then(Value::as_object),
                        kind,
                        index,
                        prefix,
                    })
                })
        })
    }
}

/// `{prefix}.{list}[` for the pod spec paths of [`layout`]: the constant start of a
/// container's field paths.
fn list_head(prefix: &str, kind: ContainerKind) -> Option<&'static str> {
    use ContainerKind::{Ephemeral, Init, Regular};
    Some(match (prefix, kind) {
        ("spec", Init) => "spec.initContainers[",
        ("spec", Regular) => "spec.containers[",
        ("spec", Ephemeral) => "spec.ephemeralContainers[",
        ("spec.template.spec", Init) => "spec.template.spec.initContainers[",
        ("spec.template.spec", Regular) => "spec.template.spec.containers[",
        ("spec.template.spec", Ephemeral) => "spec.template.spec.ephemeralContainers[",
        ("spec.jobTemplate.spec.template.spec", Init) => {
            "spec.jobTemplate.spec.template.spec.initContainers["
        }
        ("spec.jobTemplate.spec.template.spec", Regular) => {
            "spec.jobTemplate.spec.template.spec.containers["
        }
        ("spec.jobTemplate.spec.template.spec", Ephemeral) => {
            "spec.jobTemplate.spec.template.spec.ephemeralContainers["
        }
        _ => return None,
    })
}

/// Which list of the pod spec a container is in.
///
/// ```
/// use idp_policy::podspec::ContainerKind;
/// assert_eq!(ContainerKind::Init.field(), "initContainers");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ContainerKind {
    /// `initContainers` (including native sidecars).
    Init,
    /// `containers`.
    Regular,
    /// `ephemeralContainers`.
    Ephemeral,
}

impl ContainerKind {
    /// All kinds, in visiting order.
    pub const ALL: [ContainerKind; 3] = [Self::Init, Self::Regular, Self::Ephemeral];

    /// The pod-spec field holding this list.
    ///
    /// ```
    /// assert_eq!(idp_policy::podspec::ContainerKind::Ephemeral.field(), "ephemeralContainers");
    /// ```
    pub fn field(self) -> &'static str {
        match self {
            Self::Init => "initContainers",
            Self::Regular => "containers",
            Self::Ephemeral => "ephemeralContainers",
        }
    }
}

/// One container of a pod spec, with its position.
///
/// ```
/// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {
/// #   "containers": [{"name": "app", "image": "nginx", "securityContext": {"privileged": true}}]}})).unwrap();
/// let pod = idp_policy::podspec::PodSpec::of(&o).unwrap();
/// let c = pod.containers().next().unwrap();
/// assert_eq!(c.field_path("securityContext.privileged"), "spec.containers[0].securityContext.privileged");
/// assert_eq!(c.security_context().unwrap()["privileged"], true);
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Container<'a> {
    value: &'a Map<String, Value>,
    security_context: Option<&'a Map<String, Value>>,
    kind: ContainerKind,
    index: usize,
    prefix: &'static str,
}

impl<'a> Container<'a> {
    /// A container at `index` of the `kind` list of the pod spec at `prefix`, with its
    /// `securityContext` already looked up.
    pub(crate) fn new(
        value: &'a Map<String, Value>,
        security_context: Option<&'a Map<String, Value>>,
        kind: ContainerKind,
        index: usize,
        prefix: &'static str,
    ) -> Self {
        Self {
            value,
            security_context,
            kind,
            index,
            prefix,
        }
    }

    /// The container as JSON.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"name": "a"}]}})).unwrap();
    /// # let pod = idp_policy::podspec::PodSpec::of(&o).unwrap();
    /// assert_eq!(pod.containers().next().unwrap().value()["name"], "a");
    /// ```
    pub fn value(&self) -> &'a Map<String, Value> {
        self.value
    }

    /// `name` (empty when absent).
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{}]}})).unwrap();
    /// # let pod = idp_policy::podspec::PodSpec::of(&o).unwrap();
    /// assert_eq!(pod.containers().next().unwrap().name(), "");
    /// ```
    pub fn name(&self) -> &'a str {
        self.value
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// Which list it is in.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{}]}})).unwrap();
    /// # let pod = idp_policy::podspec::PodSpec::of(&o).unwrap();
    /// assert_eq!(pod.containers().next().unwrap().kind(), idp_policy::podspec::ContainerKind::Regular);
    /// ```
    pub fn kind(&self) -> ContainerKind {
        self.kind
    }

    /// Its index in that list.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{}]}})).unwrap();
    /// # let pod = idp_policy::podspec::PodSpec::of(&o).unwrap();
    /// assert_eq!(pod.containers().next().unwrap().index(), 0);
    /// ```
    pub fn index(&self) -> usize {
        self.index
    }

    /// The dotted path of the container (`spec.template.spec.initContainers[1]`).
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"initContainers": [{}]}})).unwrap();
    /// # let pod = idp_policy::podspec::PodSpec::of(&o).unwrap();
    /// assert_eq!(pod.containers().next().unwrap().path(), "spec.initContainers[0]");
    /// ```
    pub fn path(&self) -> String {
        text!("{}.{}[{}]", self.prefix, self.kind.field(), self.index)
    }

    /// The dotted path of a field below the container.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{}]}})).unwrap();
    /// # let pod = idp_policy::podspec::PodSpec::of(&o).unwrap();
    /// assert_eq!(pod.containers().next().unwrap().field_path("image"), "spec.containers[0].image");
    /// ```
    pub fn field_path(&self, field: &str) -> String {
        self.field_path_pieces(&[field])
    }

    /// Like [`Container::field_path`] with the field given as pieces, joined in one
    /// string without the formatting machinery.
    pub(crate) fn field_path_pieces(&self, field: &[&str]) -> String {
        let index = Digits::new(self.index);
        let index = index.as_str();
        // The part before the index is one constant for every pod layout and list, so
        // a path is built from four or five copies rather than nine (this is most of
        // the cost of a violation after its allocations).
        let head = list_head(self.prefix, self.kind);
        let mut len = index.len() + 2;
        len += head.map_or(self.prefix.len() + self.kind.field().len() + 2, str::len);
        for p in field {
            len += p.len();
        }
        let mut out = String::with_capacity(len);
        if let Some(head) = head {
            out.push_str(head);
        } else {
            out.push_str(self.prefix);
            out.push('.');
            out.push_str(self.kind.field());
            out.push('[');
        }
        out.push_str(index);
        out.push_str("].");
        for p in field {
            out.push_str(p);
        }
        out
    }

    /// Like [`Container::field_path`] with the field given as format arguments, built in
    /// one string (the field is only formatted when a violation needs its path).
    pub(crate) fn field_path_args(&self, field: fmt::Arguments<'_>) -> String {
        text!(
            "{}.{}[{}].{field}",
            self.prefix,
            self.kind.field(),
            self.index
        )
    }

    /// The container's `securityContext`, when it is a mapping.
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{}]}})).unwrap();
    /// # let pod = idp_policy::podspec::PodSpec::of(&o).unwrap();
    /// assert!(pod.containers().next().unwrap().security_context().is_none());
    /// ```
    pub fn security_context(&self) -> Option<&'a Map<String, Value>> {
        self.security_context
    }

    /// `image` (empty when absent).
    ///
    /// ```
    /// # let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": [{"image": "nginx"}]}})).unwrap();
    /// # let pod = idp_policy::podspec::PodSpec::of(&o).unwrap();
    /// assert_eq!(pod.containers().next().unwrap().image(), "nginx");
    /// ```
    pub fn image(&self) -> &'a str {
        self.value
            .get("image")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }
}

/// The mutable pod spec of an object; `None` when the object carries no pod spec.
pub(crate) fn pod_spec_mut(object: &mut Object) -> Option<&mut Map<String, Value>> {
    let (template_keys, _) = layout(object.kind())?;
    walk_mut(object.as_map_mut(), template_keys)?
        .get_mut("spec")?
        .as_object_mut()
}

/// The mutable pod metadata of an object, created when missing; `None` when the object
/// carries no pod spec or something on the way is not a mapping.
pub(crate) fn pod_metadata_mut(object: &mut Object) -> Option<&mut Map<String, Value>> {
    let (template_keys, _) = layout(object.kind())?;
    let template = walk_mut(object.as_map_mut(), template_keys)?;
    template.get("spec")?.as_object()?;
    walk_create(template, &["metadata"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_heads_are_the_prefix_and_list() {
        for kind in [Some("Pod"), Some("Deployment"), Some("CronJob")] {
            let (_, prefix) = layout(kind.unwrap()).unwrap();
            for list in ContainerKind::ALL {
                assert_eq!(
                    list_head(prefix, list).unwrap(),
                    format!("{prefix}.{}[", list.field())
                );
            }
        }
        assert_eq!(list_head("other", ContainerKind::Regular), None);
        // Paths are the same with or without a constant head.
        let value = Map::new();
        for prefix in ["spec.template.spec", "other.spec"] {
            let c = Container::new(&value, None, ContainerKind::Init, 12, prefix);
            assert_eq!(
                c.field_path_pieces(&["securityContext.", "privileged"]),
                format!("{prefix}.initContainers[12].securityContext.privileged")
            );
        }
    }
}
