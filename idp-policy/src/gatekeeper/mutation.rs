//! OPA Gatekeeper's mutators (`mutations.gatekeeper.sh`), applied client-side:
//! `Assign`, `AssignMetadata`, `ModifySet` and `AssignImage`.
//!
//! Start with [`GatekeeperMutators::from_yaml`]: give it the mutators as written for a
//! cluster (and the `Namespace` objects whose labels `namespaceSelector` reads); as a
//! [`Mutation`] it changes objects the way Gatekeeper's mutating webhook would.
//!
//! - **which objects**: `spec.match` as constraints have it ([`GatekeeperMatch`]:
//!   `kinds`, `scope`, `namespaces`, `excludedNamespaces`, `labelSelector`,
//!   `namespaceSelector`, `name`; `source: Generated` mutators shape only the mock
//!   objects of [expansion](super::expansion), see
//!   [`GatekeeperMutators::mutate_generated`]), and for `Assign`, `ModifySet` and `AssignImage` the
//!   required `spec.applyTo` (`groups`, `versions`, `kinds`, no globs, and the optional
//!   `operations`), which must name the object's group, version and kind.
//! - **where**: `spec.location`, a dotted path such as
//!   `spec.containers[name: foo].imagePullPolicy` or
//!   `metadata.labels."app.kubernetes.io/name"`. A list selector `[key: value]` picks the
//!   elements whose `key` is `value` and creates one when none has it; `[key: *]` picks
//!   every existing element and creates none. Missing mappings and lists on the way are
//!   created, and kept only when the mutator changed something below them.
//! - **`Assign`**: `parameters.assign.value` (any value; at a location ending in a list
//!   selector, a mapping whose key field is the selector's value, which replaces or adds
//!   that element) or `parameters.assign.fromMetadata.field` (`name` or `namespace` of the
//!   object). It may not touch `metadata` (that is `AssignMetadata`'s job), change a list
//!   element's key field, or end at a `*` selector.
//! - **`AssignMetadata`**: only `metadata.labels.<key>` and `metadata.annotations.<key>`,
//!   with a string value, and only when the key is absent: an existing label or
//!   annotation is never changed.
//! - **`ModifySet`**: treats the list at the location as a set: `operation: merge` (the
//!   default) appends the `parameters.values.fromList` values it lacks, `prune` removes
//!   them; order is kept.
//! - **`AssignImage`**: `assignDomain`, `assignPath` and `assignTag` (`:tag` or
//!   `@sha256:…`) replace those parts of the image string at the location. The domain is
//!   the first `/`-separated component when it holds a `.` or `:` or is `localhost`. The
//!   parts are checked when loaded as Gatekeeper checks them, so that none can leak into
//!   its neighbour and make the mutator grow the image on every pass.
//! - **conditions**: `parameters.pathTests` (`subPath`, a prefix of the location, with
//!   `MustExist` or `MustNotExist`) and, for `Assign`, `parameters.assignIf` (`in` /
//!   `notIn`: the value now at the location must, or must not, be one of these; an absent
//!   value is in no list).
//!
//! **Order and convergence**, as in Gatekeeper: the mutators are sorted by kind, then by
//! name, and applied in that order, each to the result of the ones before; the whole pass
//! is repeated until a pass changes nothing, at most one more time than there are
//! mutators. A set that still changes the object after that does not converge (two
//! mutators fighting over a field): the mutation fails with a denial naming the mutators
//! that changed it in the last pass. A mutator that cannot apply (a location that meets a
//! string where it needs a list) fails the same way, naming the mutator, and the object
//! is left as it was. Once converged, applying the set again changes nothing.
//!
//! `externalData` (which needs a provider service) is refused when loaded, naming the
//! mutator, as is anything Gatekeeper's own validation refuses and any parameter this
//! module does not know: skipping one would produce objects Gatekeeper would not.
//!
//! ```
//! use idp_core::{Object, PolicyContext, ports::Mutation};
//! use idp_policy::gatekeeper::mutation::GatekeeperMutators;
//!
//! let yaml = r#"
//! apiVersion: mutations.gatekeeper.sh/v1
//! kind: Assign
//! metadata: {name: always-pull}
//! spec:
//!   applyTo: [{groups: [""], versions: [v1], kinds: [Pod]}]
//!   match: {excludedNamespaces: [kube-system]}
//!   location: "spec.containers[name: *].imagePullPolicy"
//!   parameters: {assign: {value: Always}}
//! ---
//! apiVersion: mutations.gatekeeper.sh/v1
//! kind: AssignMetadata
//! metadata: {name: team}
//! spec:
//!   location: metadata.labels.team
//!   parameters: {assign: {value: platform}}
//! "#;
//! let mutators = GatekeeperMutators::from_yaml("gatekeeper", yaml, None).unwrap();
//! let mut pod = Object::from_value(serde_json::json!({
//!     "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "shop"},
//!     "spec": {"containers": [{"name": "app", "image": "app:1"}]}})).unwrap();
//! assert!(mutators.mutate(&mut pod, &PolicyContext::new()).unwrap());
//! assert_eq!(pod.pointer("/spec/containers/0/imagePullPolicy"), Some(&"Always".into()));
//! assert_eq!(pod.labels()["team"], "platform");
//! // Applying the set again changes nothing.
//! assert!(!mutators.mutate(&mut pod, &PolicyContext::new()).unwrap());
//! ```

pub mod cluster;
mod image;
mod path;

use std::collections::BTreeMap;
use std::path::Path;

use idp_core::ports::Mutation;
use idp_core::{Error, ManifestSet, Object, PolicyContext, Result, Violation};
use serde_json::{Map, Value};

use super::{ApplyTo, GatekeeperMatch, apply_to, type_name};
use crate::names::{operation_name, source_prefix as at, split_api_version};
use image::ImageParts;
use path::{Location, Node};

const GROUP: &str = "mutations.gatekeeper.sh";

/// The four mutator kinds, in Gatekeeper's order (by kind name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Assign,
    AssignImage,
    AssignMetadata,
    ModifySet,
}

impl Kind {
    fn from_name(kind: &str) -> Option<Self> {
        match kind {
            "Assign" => Some(Self::Assign),
            "AssignImage" => Some(Self::AssignImage),
            "AssignMetadata" => Some(Self::AssignMetadata),
            "ModifySet" => Some(Self::ModifySet),
            _ => None,
        }
    }

    fn word(self) -> &'static str {
        match self {
            Self::Assign => "Assign",
            Self::AssignImage => "AssignImage",
            Self::AssignMetadata => "AssignMetadata",
            Self::ModifySet => "ModifySet",
        }
    }

    /// The keys `spec.parameters` may hold.
    fn parameters(self) -> &'static [&'static str] {
        match self {
            Self::Assign => &["assign", "assignIf", "pathTests"],
            Self::AssignImage => &["assignDomain", "assignPath", "assignTag", "pathTests"],
            Self::AssignMetadata => &["assign"],
            Self::ModifySet => &["operation", "values", "pathTests"],
        }
    }
}

/// `MustExist` / `MustNotExist`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Condition {
    MustExist,
    MustNotExist,
}

/// Where a value comes from.
#[derive(Debug, Clone)]
enum Source {
    Value(Value),
    Name,
    Namespace,
}

/// `assignIf`.
#[derive(Debug, Clone, Default)]
struct AssignIf {
    within: Option<Vec<Value>>,
    not_in: Option<Vec<Value>>,
}

impl AssignIf {
    fn holds(&self, current: Option<&Value>) -> bool {
        let within = self
            .within
            .as_ref()
            .is_none_or(|list| current.is_some_and(|v| list.contains(v)));
        let outside = self
            .not_in
            .as_ref()
            .is_none_or(|list| current.is_none_or(|v| !list.contains(v)));
        within && outside
    }
}

#[derive(Debug, Clone)]
enum Action {
    Assign { source: Source, assign_if: AssignIf },
    Metadata { source: Source },
    ModifySet { prune: bool, values: Vec<Value> },
    Image(ImageParts),
}

/// The object's name and namespace, for `fromMetadata`.
struct Meta {
    name: String,
    namespace: String,
}

impl Source {
    fn value(&self, meta: &Meta) -> Value {
        match self {
            Self::Value(v) => v.clone(),
            Self::Name => Value::String(meta.name.clone()),
            Self::Namespace => Value::String(meta.namespace.clone()),
        }
    }
}

/// One loaded mutator.
#[derive(Debug, Clone)]
struct Mutator {
    kind: Kind,
    name: String,
    /// `"<file>: <Kind> <name>: "`, before error messages.
    here: String,
    matcher: GatekeeperMatch,
    /// `None` for `AssignMetadata`, which has no `applyTo`.
    apply_to: Option<Vec<ApplyTo>>,
    location: Location,
    /// The path tests, by the index of the segment they test.
    tests: BTreeMap<usize, Condition>,
    action: Action,
}

/// Whether a list element's `key` field is `value` (a scalar compares by its text:
/// `[containerPort: 80]` selects `containerPort: 80`).
fn key_matches(element: &Value, key: &str, value: &str) -> bool {
    match element.get(key) {
        Some(Value::String(s)) => s == value,
        Some(v @ (Value::Number(_) | Value::Bool(_))) => {
            let text = v.to_string();
            text == value
        }
        _ => false,
    }
}

/// A mapping field, with `null` read as absent.
fn present<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

impl Mutator {
    fn id(&self) -> String {
        format!("{}/{}", self.kind.word(), self.name)
    }

    fn from_object(object: &Object, kind: Kind) -> Result<Self> {
        let name = object.name().to_owned();
        let here = format!("{}{} {name}: ", at(object.source()), kind.word());
        let fail = |field: &str, message: String| {
            Error::invalid_input(format!("{here}{field}: {message}"))
        };
        let spec = match object.as_map().get("spec") {
            Some(Value::Object(spec)) => spec,
            Some(other) => {
                return Err(fail(
                    "spec",
                    format!("is {}, not a mapping", type_name(other)),
                ));
            }
            None => return Err(fail("spec", "is missing".to_owned())),
        };
        if kind == Kind::AssignImage && name.chars().count() > 63 {
            return Err(fail(
                "metadata.name",
                "is longer than 63 characters, which Gatekeeper refuses for AssignImage".to_owned(),
            ));
        }
        let matcher = GatekeeperMatch::from_value(spec.get("match"), &here)?;
        let text = match spec.get("location") {
            Some(Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(fail(
                    "spec.location",
                    format!("is {}, not a string", type_name(other)),
                ));
            }
            None => return Err(fail("spec.location", "is missing".to_owned())),
        };
        let location =
            Location::parse(text).map_err(|e| fail("spec.location", format!("{text:?}: {e}")))?;
        let empty = Map::new();
        let parameters = match spec.get("parameters") {
            Some(Value::Object(p)) => p,
            None | Some(Value::Null) => &empty,
            Some(other) => {
                return Err(fail(
                    "spec.parameters",
                    format!("is {}, not a mapping", type_name(other)),
                ));
            }
        };
        let known = kind.parameters();
        if let Some(unknown) = parameters.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(fail(
                &format!("spec.parameters.{unknown}"),
                format!(
                    "is not a parameter of {} ({})",
                    kind.word(),
                    known.join(", ")
                ),
            ));
        }
        let apply_to = if kind == Kind::AssignMetadata {
            if spec.contains_key("applyTo") {
                return Err(fail(
                    "spec.applyTo",
                    "AssignMetadata has no applyTo (spec.match selects the objects)".to_owned(),
                ));
            }
            None
        } else {
            Some(apply_to(spec.get("applyTo"), &fail)?)
        };
        let first_is_metadata =
            matches!(location.nodes.first(), Some(Node::Field(f)) if f == "metadata");
        let ends_in_list = matches!(location.last(), Some(Node::List { .. }));
        match kind {
            Kind::AssignMetadata => {
                let valid = matches!(
                    location.nodes.as_slice(),
                    [Node::Field(m), Node::Field(group), Node::Field(_)]
                        if m == "metadata" && (group == "labels" || group == "annotations")
                );
                if !valid {
                    return Err(fail(
                        "spec.location",
                        format!(
                            "{text:?}: AssignMetadata can only add metadata.labels.<key> or metadata.annotations.<key>"
                        ),
                    ));
                }
            }
            Kind::Assign | Kind::ModifySet | Kind::AssignImage => {
                if first_is_metadata {
                    return Err(fail(
                        "spec.location",
                        format!(
                            "{text:?}: {} cannot change metadata (AssignMetadata adds labels and annotations)",
                            kind.word()
                        ),
                    ));
                }
                if ends_in_list && kind != Kind::Assign {
                    return Err(fail(
                        "spec.location",
                        format!(
                            "{text:?}: a {} location cannot end with a list selector",
                            kind.word()
                        ),
                    ));
                }
                if let [.., Node::List { key, .. }, Node::Field(last)] = location.nodes.as_slice()
                    && key == last
                    && kind != Kind::ModifySet
                {
                    return Err(fail(
                        "spec.location",
                        format!(
                            "{text:?}: it would change {key:?}, the key of the list element it selects"
                        ),
                    ));
                }
            }
        }
        let tests = if kind == Kind::AssignMetadata {
            // Only ever adds: the label or annotation must not exist yet.
            BTreeMap::from([(2, Condition::MustNotExist)])
        } else {
            path_tests(parameters.get("pathTests"), &location, &fail)?
        };
        let action = match kind {
            Kind::Assign => {
                let source = assign_source(parameters.get("assign"), &fail)?;
                match (&source, location.last()) {
                    (_, Some(Node::List { value: None, .. })) => {
                        return Err(fail(
                            "spec.location",
                            format!(
                                "{text:?}: Assign cannot end with a '*' list selector (it would not know which element to set)"
                            ),
                        ));
                    }
                    (
                        Source::Value(v),
                        Some(Node::List {
                            key,
                            value: Some(want),
                        }),
                    ) if !v.is_object() || !key_matches(v, key, want) => {
                        return Err(fail(
                            "spec.parameters.assign.value",
                            format!(
                                "a location ending with [{key}: {want}] takes a mapping whose {key:?} is {want:?}"
                            ),
                        ));
                    }
                    (Source::Name | Source::Namespace, Some(Node::List { .. })) => {
                        return Err(fail(
                            "spec.parameters.assign.fromMetadata",
                            "cannot be assigned to a list element".to_owned(),
                        ));
                    }
                    _ => {}
                }
                Action::Assign {
                    source,
                    assign_if: assign_if(parameters.get("assignIf"), &fail)?,
                }
            }
            Kind::AssignMetadata => {
                let source = assign_source(parameters.get("assign"), &fail)?;
                if let Source::Value(v) = &source
                    && !v.is_string()
                {
                    return Err(fail(
                        "spec.parameters.assign.value",
                        format!("is {}; labels and annotations are strings", type_name(v)),
                    ));
                }
                Action::Metadata { source }
            }
            Kind::ModifySet => {
                let prune = match parameters.get("operation") {
                    None | Some(Value::Null) => false,
                    Some(Value::String(op)) if op == "merge" => false,
                    Some(Value::String(op)) if op == "prune" => true,
                    Some(other) => {
                        return Err(fail(
                            "spec.parameters.operation",
                            format!("{other} is not merge or prune"),
                        ));
                    }
                };
                let values = match parameters.get("values") {
                    None | Some(Value::Null) => Vec::new(),
                    Some(Value::Object(v)) => {
                        if let Some(unknown) = v.keys().find(|k| *k != "fromList") {
                            return Err(fail(
                                &format!("spec.parameters.values.{unknown}"),
                                "is not known (fromList holds the values)".to_owned(),
                            ));
                        }
                        match v.get("fromList") {
                            None | Some(Value::Null) => Vec::new(),
                            Some(Value::Array(items)) => items.clone(),
                            Some(other) => {
                                return Err(fail(
                                    "spec.parameters.values.fromList",
                                    format!("is {}, not a list", type_name(other)),
                                ));
                            }
                        }
                    }
                    Some(other) => {
                        return Err(fail(
                            "spec.parameters.values",
                            format!("is {}, not a mapping", type_name(other)),
                        ));
                    }
                };
                Action::ModifySet { prune, values }
            }
            Kind::AssignImage => {
                let part = |field: &str| -> Result<Option<String>> {
                    match parameters.get(field) {
                        None | Some(Value::Null) => Ok(None),
                        Some(Value::String(s)) if s.is_empty() => Ok(None),
                        Some(Value::String(s)) => Ok(Some(s.clone())),
                        Some(other) => Err(fail(
                            &format!("spec.parameters.{field}"),
                            format!("is {}, not a string", type_name(other)),
                        )),
                    }
                };
                let parts = ImageParts {
                    domain: part("assignDomain")?,
                    path: part("assignPath")?,
                    tag: part("assignTag")?,
                };
                parts.validate().map_err(|e| fail("spec.parameters", e))?;
                Action::Image(parts)
            }
        };
        Ok(Self {
            kind,
            name,
            here,
            matcher,
            apply_to,
            location,
            tests,
            action,
        })
    }

    /// Whether the mutator applies to `object` (applyTo, then match).
    fn applies(
        &self,
        object: &Object,
        ctx: &PolicyContext,
        namespaces: &BTreeMap<String, BTreeMap<String, String>>,
        generated: bool,
    ) -> bool {
        if let Some(apply_to) = &self.apply_to {
            let operation = operation_name(ctx.operation);
            if !apply_to.iter().any(|a| a.matches(object, operation)) {
                return false;
            }
        }
        let namespace = ctx.namespace.as_deref();
        if generated {
            self.matcher
                .matches_generated(object, namespace, namespaces)
        } else {
            self.matcher.matches(object, namespace, namespaces)
        }
    }

    /// Whether the path tests allow segment `depth` to exist (or not).
    fn allows(&self, depth: usize, exists: bool) -> bool {
        match self.tests.get(&depth) {
            None => true,
            Some(Condition::MustExist) => exists,
            Some(Condition::MustNotExist) => !exists,
        }
    }

    /// Apply to the object's mapping; `Ok(true)` when it changed.
    fn apply(
        &self,
        root: &mut Map<String, Value>,
        meta: &Meta,
    ) -> std::result::Result<bool, String> {
        let mut value = Value::Object(std::mem::take(root));
        let result = self.walk(&mut value, 0, meta);
        if let Value::Object(map) = value {
            *root = map;
        }
        result
    }

    /// Follow the location from segment `depth` in `current`. The recursion is bounded
    /// by the location's length ([`path::MAX_NODES`]).
    fn walk(
        &self,
        current: &mut Value,
        depth: usize,
        meta: &Meta,
    ) -> std::result::Result<bool, String> {
        let nodes = &self.location.nodes;
        let Some(node) = nodes.get(depth) else {
            return Ok(false);
        };
        let last = depth + 1 == nodes.len();
        let mismatch = |what: &str, found: &Value| {
            let at = if depth == 0 {
                "the object".to_owned()
            } else {
                self.location.prefix(depth)
            };
            format!("{at} is {}, not {what}", type_name(found))
        };
        match node {
            Node::Field(name) => {
                let Value::Object(map) = current else {
                    return Err(mismatch("a mapping", current));
                };
                let exists = present(map, name).is_some();
                if !self.allows(depth, exists) {
                    return Ok(false);
                }
                if last {
                    return self.set_field(map, name, meta);
                }
                if exists && let Some(child) = map.get_mut(name) {
                    return self.walk(child, depth + 1, meta);
                }
                let mut child = match nodes.get(depth + 1) {
                    Some(Node::List { .. }) => Value::Array(Vec::new()),
                    _ => Value::Object(Map::new()),
                };
                let changed = self.walk(&mut child, depth + 1, meta)?;
                if changed {
                    map.insert(name.clone(), child);
                }
                Ok(changed)
            }
            Node::List { key, value } => {
                let Value::Array(items) = current else {
                    return Err(mismatch("a list", current));
                };
                if last {
                    return self.set_element(items, key, value.as_deref(), depth, meta);
                }
                let Some(want) = value else {
                    // A glob selects what exists; it cannot satisfy MustNotExist.
                    if !self.allows(depth, true) {
                        return Ok(false);
                    }
                    let mut changed = false;
                    for item in items.iter_mut() {
                        changed |= self.walk(item, depth + 1, meta)?;
                    }
                    return Ok(changed);
                };
                let mut found = false;
                let mut changed = false;
                for item in items.iter_mut() {
                    if key_matches(item, key, want) {
                        if !self.allows(depth, true) {
                            return Ok(false);
                        }
                        found = true;
                        changed |= self.walk(item, depth + 1, meta)?;
                    }
                }
                if !found {
                    if !self.allows(depth, false) {
                        return Ok(false);
                    }
                    let mut item =
                        Value::Object(Map::from_iter([(key.clone(), Value::String(want.clone()))]));
                    if self.walk(&mut item, depth + 1, meta)? {
                        items.push(item);
                        changed = true;
                    }
                }
                Ok(changed)
            }
        }
    }

    /// The end of the location: field `name` of `map`.
    fn set_field(
        &self,
        map: &mut Map<String, Value>,
        name: &str,
        meta: &Meta,
    ) -> std::result::Result<bool, String> {
        let current = present(map, name);
        let new = match &self.action {
            Action::Assign { source, assign_if } => {
                if !assign_if.holds(current) {
                    return Ok(false);
                }
                source.value(meta)
            }
            Action::Metadata { source } => source.value(meta),
            Action::Image(parts) => {
                let image = match current {
                    None => "",
                    Some(Value::String(s)) => s.as_str(),
                    Some(other) => {
                        return Err(format!(
                            "{} is {}, not an image string",
                            self.location,
                            type_name(other)
                        ));
                    }
                };
                Value::String(parts.apply(image))
            }
            Action::ModifySet { prune, values } => {
                let items = match current {
                    None if *prune => return Ok(false),
                    None => Vec::new(),
                    Some(Value::Array(items)) => items.clone(),
                    Some(other) => {
                        return Err(format!(
                            "{} is {}, not a list",
                            self.location,
                            type_name(other)
                        ));
                    }
                };
                let mut next = items;
                if *prune {
                    next.retain(|v| !values.contains(v));
                } else {
                    for v in values {
                        if !next.contains(v) {
                            next.push(v.clone());
                        }
                    }
                }
                Value::Array(next)
            }
        };
        if current == Some(&new) {
            return Ok(false);
        }
        map.insert(name.to_owned(), new);
        Ok(true)
    }

    /// The end of an `Assign` location at a list selector: replace or add the element.
    fn set_element(
        &self,
        items: &mut Vec<Value>,
        key: &str,
        want: Option<&str>,
        depth: usize,
        meta: &Meta,
    ) -> std::result::Result<bool, String> {
        let (Action::Assign { source, assign_if }, Some(want)) = (&self.action, want) else {
            return Err(format!(
                "{} cannot end with {}",
                self.kind.word(),
                self.location
            ));
        };
        let new = source.value(meta);
        let Some(i) = items.iter().position(|item| key_matches(item, key, want)) else {
            if !self.allows(depth, false) || !assign_if.holds(None) {
                return Ok(false);
            }
            items.push(new);
            return Ok(true);
        };
        if !self.allows(depth, true) || !assign_if.holds(items.get(i)) {
            return Ok(false);
        }
        match items.get_mut(i) {
            Some(item) if *item != new => {
                *item = new;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

fn path_tests(
    value: Option<&Value>,
    location: &Location,
    fail: &impl Fn(&str, String) -> Error,
) -> Result<BTreeMap<usize, Condition>> {
    let items = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(fail(
                "spec.parameters.pathTests",
                format!("is {}, not a list", type_name(other)),
            ));
        }
    };
    let mut tests = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("spec.parameters.pathTests[{i}]");
        let Some(sub_path) = item.get("subPath").and_then(Value::as_str) else {
            return Err(fail(
                &format!("{field}.subPath"),
                "is required (a string)".to_owned(),
            ));
        };
        let sub = Location::parse(sub_path)
            .map_err(|e| fail(&format!("{field}.subPath"), format!("{sub_path:?}: {e}")))?;
        if !location.starts_with(&sub) {
            return Err(fail(
                &format!("{field}.subPath"),
                format!("{sub_path:?} is not a prefix of the location {location}"),
            ));
        }
        let condition = match item.get("condition").and_then(Value::as_str) {
            Some("MustExist") => Condition::MustExist,
            Some("MustNotExist") => Condition::MustNotExist,
            _ => {
                return Err(fail(
                    &format!("{field}.condition"),
                    "must be MustExist or MustNotExist".to_owned(),
                ));
            }
        };
        let depth = sub.nodes.len().saturating_sub(1);
        if tests
            .insert(depth, condition)
            .is_some_and(|c| c != condition)
        {
            return Err(fail(
                &format!("{field}.condition"),
                format!("conflicts with another test of {sub_path:?}"),
            ));
        }
    }
    Ok(tests)
}

fn assign_source(value: Option<&Value>, fail: &impl Fn(&str, String) -> Error) -> Result<Source> {
    let Some(Value::Object(assign)) = value else {
        return Err(fail(
            "spec.parameters.assign",
            "is required (a mapping with value or fromMetadata)".to_owned(),
        ));
    };
    if assign.contains_key("externalData") {
        return Err(fail(
            "spec.parameters.assign.externalData",
            "is not supported client-side: it needs a running external data provider".to_owned(),
        ));
    }
    if let Some(unknown) = assign
        .keys()
        .find(|k| *k != "value" && *k != "fromMetadata")
    {
        return Err(fail(
            &format!("spec.parameters.assign.{unknown}"),
            "is not known (value or fromMetadata)".to_owned(),
        ));
    }
    match (assign.get("value"), assign.get("fromMetadata")) {
        (Some(v), None) => Ok(Source::Value(v.clone())),
        (None, Some(from)) => match from.get("field").and_then(Value::as_str) {
            Some("name") => Ok(Source::Name),
            Some("namespace") => Ok(Source::Namespace),
            other => Err(fail(
                "spec.parameters.assign.fromMetadata.field",
                format!(
                    "{}: must be name or namespace",
                    other.map_or_else(|| "missing".to_owned(), |o| format!("{o:?}"))
                ),
            )),
        },
        (Some(_), Some(_)) => Err(fail(
            "spec.parameters.assign",
            "has both value and fromMetadata; give one".to_owned(),
        )),
        (None, None) => Err(fail(
            "spec.parameters.assign",
            "needs value or fromMetadata".to_owned(),
        )),
    }
}

fn assign_if(value: Option<&Value>, fail: &impl Fn(&str, String) -> Error) -> Result<AssignIf> {
    let map = match value {
        None | Some(Value::Null) => return Ok(AssignIf::default()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(fail(
                "spec.parameters.assignIf",
                format!("is {}, not a mapping", type_name(other)),
            ));
        }
    };
    let list = |field: &str| -> Result<Option<Vec<Value>>> {
        match map.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Array(items)) => Ok(Some(items.clone())),
            Some(other) => Err(fail(
                &format!("spec.parameters.assignIf.{field}"),
                format!("is {}, not a list", type_name(other)),
            )),
        }
    };
    if let Some(unknown) = map.keys().find(|k| *k != "in" && *k != "notIn") {
        return Err(fail(
            &format!("spec.parameters.assignIf.{unknown}"),
            "is not known (in or notIn)".to_owned(),
        ));
    }
    Ok(AssignIf {
        within: list("in")?,
        not_in: list("notIn")?,
    })
}

/// Gatekeeper mutators (`Assign`, `AssignMetadata`, `ModifySet`, `AssignImage`) as one
/// [`Mutation`]. See the [module documentation](self).
///
/// ```
/// let m = idp_policy::gatekeeper::mutation::GatekeeperMutators::new("gatekeeper");
/// assert!(m.mutators().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct GatekeeperMutators {
    name: String,
    /// Sorted as Gatekeeper applies them: by kind, then name.
    mutators: Vec<Mutator>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// A Gatekeeper `Config` among the files: the namespaces the mutation webhook
    /// leaves alone.
    config: Option<super::config::GatekeeperConfig>,
}

impl GatekeeperMutators {
    /// An empty set named `name` (the `policy` of its denials, and its [`Mutation::name`]).
    ///
    /// ```
    /// use idp_core::ports::Mutation;
    /// let m = idp_policy::gatekeeper::mutation::GatekeeperMutators::new("gatekeeper");
    /// assert_eq!(m.name(), "gatekeeper");
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            mutators: Vec::new(),
            namespaces: BTreeMap::new(),
            config: None,
        }
    }

    /// Use `config` (read from another file) for the namespaces the mutation webhook
    /// leaves alone, unless a `Config` was among this set's own documents.
    ///
    /// ```
    /// use idp_policy::gatekeeper::{config::GatekeeperConfig, mutation::GatekeeperMutators};
    /// let mut m = GatekeeperMutators::new("gk");
    /// m.use_config(GatekeeperConfig::default());
    /// assert!(m.config().is_some());
    /// ```
    pub fn use_config(&mut self, config: super::config::GatekeeperConfig) {
        self.config.get_or_insert(config);
    }

    /// The Gatekeeper `Config` in use, if any.
    ///
    /// ```
    /// assert!(idp_policy::gatekeeper::mutation::GatekeeperMutators::new("gk").config().is_none());
    /// ```
    pub fn config(&self) -> Option<&super::config::GatekeeperConfig> {
        self.config.as_ref()
    }

    /// Read multi-document YAML: `Assign`, `AssignMetadata`, `ModifySet` and
    /// `AssignImage` documents (`mutations.gatekeeper.sh`, any version), and `Namespace`
    /// objects (their labels feed `namespaceSelector`). Errors name the file, the
    /// mutator and the field.
    ///
    /// ```
    /// let err = idp_policy::gatekeeper::mutation::GatekeeperMutators::from_yaml("gk",
    ///     "apiVersion: mutations.gatekeeper.sh/v1\nkind: Assign\nmetadata: {name: m}\nspec:\n  applyTo: [{groups: [''], versions: [v1], kinds: [Pod]}]\n  location: metadata.labels.x\n  parameters: {assign: {value: y}}\n",
    ///     Some(std::path::Path::new("m.yaml"))).unwrap_err();
    /// assert!(err.to_string().contains("m.yaml"), "{err}");
    /// assert!(err.to_string().contains("Assign m: spec.location"), "{err}");
    /// assert!(err.to_string().contains("cannot change metadata"), "{err}");
    /// ```
    pub fn from_yaml(name: impl Into<String>, yaml: &str, file: Option<&Path>) -> Result<Self> {
        let mut set = Self::new(name);
        set.add_yaml(yaml, file)?;
        Ok(set)
    }

    /// Add the documents of a YAML text (see [`Self::from_yaml`]); anything else is an
    /// error naming the document, as is a mutator defined twice.
    ///
    /// ```
    /// let mut m = idp_policy::gatekeeper::mutation::GatekeeperMutators::new("gk");
    /// let err = m.add_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", None).unwrap_err();
    /// assert!(err.to_string().contains("is not a Gatekeeper mutator"), "{err}");
    /// m.add_yaml("apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, labels: {team: a}}\n", None).unwrap();
    /// ```
    pub fn add_yaml(&mut self, yaml: &str, file: Option<&Path>) -> Result<()> {
        let set = ManifestSet::parse(yaml.as_bytes(), file)?;
        for object in &set {
            if !self.take(object)? {
                return Err(Error::invalid_input(format!(
                    "{}{} {} {} is not a Gatekeeper mutator (Assign, AssignMetadata, ModifySet or AssignImage of {GROUP}), a Gatekeeper Config or a Namespace",
                    at(object.source()),
                    object.api_version(),
                    object.kind(),
                    object.name()
                )));
            }
        }
        Ok(())
    }

    /// Record the labels of a namespace (for `namespaceSelector`) unless known already.
    #[cfg_attr(not(feature = "rego"), allow(dead_code))]
    pub(crate) fn remember_namespace(&mut self, name: &str, labels: BTreeMap<String, String>) {
        self.namespaces.entry(name.to_owned()).or_insert(labels);
    }

    /// Take one document if it is a mutator (or a `Namespace`, whose labels feed
    /// `namespaceSelector`): `false` for any other document.
    pub(crate) fn take(&mut self, object: &Object) -> Result<bool> {
        let (group, _) = split_api_version(object.api_version());
        match (group, Kind::from_name(object.kind())) {
            (GROUP, Some(kind)) => {
                let mutator = Mutator::from_object(object, kind)?;
                if self
                    .mutators
                    .iter()
                    .any(|m| m.kind == kind && m.name == mutator.name)
                {
                    return Err(Error::invalid_input(format!(
                        "{}{} {} is defined twice",
                        at(object.source()),
                        kind.word(),
                        mutator.name
                    )));
                }
                self.mutators.push(mutator);
                self.mutators
                    .sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
                Ok(true)
            }
            ("", None) if object.kind() == "Namespace" => {
                self.namespaces
                    .insert(object.name().to_owned(), object.labels());
                Ok(true)
            }
            _ if super::config::GatekeeperConfig::is_config(object) => {
                super::config::GatekeeperConfig::load_once(&mut self.config, object)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Every mutator loaded, as `Kind/name`, in the order they are applied.
    ///
    /// ```
    /// let m = idp_policy::gatekeeper::mutation::GatekeeperMutators::from_yaml("gk",
    ///     "apiVersion: mutations.gatekeeper.sh/v1\nkind: AssignMetadata\nmetadata: {name: owner}\nspec:\n  location: metadata.annotations.owner\n  parameters: {assign: {value: admin}}\n", None).unwrap();
    /// assert_eq!(m.mutators(), ["AssignMetadata/owner"]);
    /// ```
    pub fn mutators(&self) -> Vec<String> {
        self.mutators.iter().map(Mutator::id).collect()
    }

    fn denial(&self, mutator: &str, message: String) -> Error {
        Error::denied(vec![Violation::new(self.name.clone(), mutator, message)])
    }

    /// Apply the mutators to a mock object an
    /// [`ExpansionTemplate`](super::expansion::ExpansionTemplate) generated from a
    /// workload, as Gatekeeper shapes its mock resources: the mutators whose
    /// `spec.match.source` is `Generated` or `All` (the default) apply, those with
    /// `Original` do not. [`Mutation::mutate`] is the other way round: real objects,
    /// and never the `Generated` mutators.
    ///
    /// # Errors
    /// As [`Mutation::mutate`]: a mutator that cannot apply, or a set that does not
    /// converge.
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext, ports::Mutation};
    /// use idp_policy::gatekeeper::mutation::GatekeeperMutators;
    /// let m = GatekeeperMutators::from_yaml("gk", "apiVersion: mutations.gatekeeper.sh/v1\nkind: AssignMetadata\nmetadata: {name: mock}\nspec:\n  match: {source: Generated}\n  location: metadata.labels.mock\n  parameters: {assign: {value: 'yes'}}\n", None).unwrap();
    /// let mut pod = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})).unwrap();
    /// assert!(!m.mutate(&mut pod, &PolicyContext::new()).unwrap());
    /// assert!(m.mutate_generated(&mut pod, &PolicyContext::new()).unwrap());
    /// assert_eq!(pod.labels()["mock"], "yes");
    /// ```
    pub fn mutate_generated(&self, object: &mut Object, ctx: &PolicyContext) -> Result<bool> {
        let _span = tracing::trace_span!("gatekeeper.mutate_generated", mutators = %self.name, kind = object.kind(), name = object.name()).entered();
        self.run(object, ctx, true)
    }

    /// Apply the mutators that match (see the [module documentation](self)).
    fn run(&self, object: &mut Object, ctx: &PolicyContext, generated: bool) -> Result<bool> {
        if self.mutators.is_empty() {
            return Ok(false);
        }
        let limit = self.mutators.len() + 1;
        let mut current = object.clone();
        let mut last_pass = Vec::new();
        for pass in 0..limit {
            let mut changed = Vec::new();
            for m in &self.mutators {
                if !m.applies(&current, ctx, &self.namespaces, generated) {
                    continue;
                }
                let meta = Meta {
                    name: current.name().to_owned(),
                    namespace: current
                        .namespace()
                        .or(ctx.namespace.as_deref())
                        .unwrap_or_default()
                        .to_owned(),
                };
                let applied = m.apply(current.as_map_mut(), &meta).map_err(|e| {
                    self.denial(
                        &m.id(),
                        format!("{}spec.location {}: {e}", m.here, m.location),
                    )
                })?;
                if !applied {
                    continue;
                }
                for (what, before, after) in [
                    ("apiVersion", object.api_version(), current.api_version()),
                    ("kind", object.kind(), current.kind()),
                ] {
                    if before != after {
                        return Err(self.denial(
                            &m.id(),
                            format!("{}it changes {what} from {before:?} to {after:?}, which Kubernetes does not allow", m.here),
                        ));
                    }
                }
                tracing::trace!(mutator = %m.id(), pass, "mutator changed the object");
                changed.push(m.id());
            }
            if changed.is_empty() {
                let any = current.as_map() != object.as_map();
                *object = current;
                return Ok(any);
            }
            last_pass = changed;
        }
        Err(self.denial(
            &last_pass.join(", "),
            format!(
                "the mutators do not converge on {} {}: after {limit} passes, {} still change it",
                object.kind(),
                object.name(),
                last_pass.join(", ")
            ),
        ))
    }
}

/// The mutators applied as Gatekeeper's webhook applies them: sorted, repeated until the
/// object stops changing (see the [module documentation](self)). A mutator that cannot
/// apply, or a set that does not converge, fails with a denial and leaves the object
/// as it was.
impl Mutation for GatekeeperMutators {
    fn name(&self) -> &str {
        &self.name
    }

    fn mutate(&self, object: &mut Object, ctx: &PolicyContext) -> Result<bool> {
        let _span = tracing::trace_span!("gatekeeper.mutate", mutators = %self.name, kind = object.kind(), name = object.name()).entered();
        if self
            .config
            .as_ref()
            .is_some_and(|c| c.excludes(super::config::Process::MutationWebhook, object))
        {
            return Ok(false);
        }
        self.run(object, ctx, false)
    }
}

#[cfg(test)]
mod tests;
