//! Gatekeeper's `ExpansionTemplate` (expansion.gatekeeper.sh): checking a workload by
//! the objects it would create.
//!
//! A constraint written for Pods does not see a Deployment. Gatekeeper closes that gap
//! with expansion: an `ExpansionTemplate` names the workload kinds (`spec.applyTo`:
//! `groups`, `versions`, `kinds`), the field holding what they create
//! (`spec.templateSource`, `spec.template` for most Pod controllers) and the kind of
//! the created object (`spec.generatedGVK`). A workload it applies to is expanded into
//! a mock object:
//!
//! - its content is the template source, with `apiVersion` and `kind` from
//!   `generatedGVK`;
//! - its namespace is the workload's (or the check's default namespace);
//! - its name is `<workload name>-<kind>` in lower case (`cart-pod` for a Deployment
//!   named `cart`), as Gatekeeper names it.
//!
//! Gatekeeper mutators whose `spec.match.source` is `Generated` or `All` then shape the
//! mock (an injected sidecar, a default the controller sets), and the constraints whose
//! `spec.match.source` is `Generated` or `All` check it. Their violations are reported on
//! the workload, the message prefixed with `[Implied by <template name>]`. When the
//! template sets `spec.enforcementAction` (`deny`, `warn`, `dryrun`), it replaces the
//! constraint's action for them.
//!
//! [`RegoPolicy`](crate::rego::RegoPolicy) reads `ExpansionTemplate` documents (and
//! mutators, for the mocks) with the templates and constraints, and expands each object
//! it evaluates. This module holds the templates and the expansion itself, which need
//! no Rego.
//!
//! ```
//! use idp_core::{Object, PolicyContext};
//! use idp_policy::gatekeeper::expansion::Expansion;
//!
//! let mut expansion = Expansion::new();
//! expansion.add_yaml(r#"
//! apiVersion: expansion.gatekeeper.sh/v1beta1
//! kind: ExpansionTemplate
//! metadata: {name: expand-deployments}
//! spec:
//!   applyTo: [{groups: [apps], kinds: [Deployment], versions: [v1]}]
//!   templateSource: spec.template
//!   generatedGVK: {group: "", version: v1, kind: Pod}
//! "#, None).unwrap();
//! let deploy = Object::from_value(serde_json::json!({
//!     "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cart", "namespace": "shop"},
//!     "spec": {"template": {"metadata": {"labels": {"app": "cart"}},
//!                           "spec": {"containers": [{"name": "app", "image": "cart:1"}]}}}})).unwrap();
//! let mocks = expansion.expand(&deploy, &PolicyContext::new(), None).unwrap();
//! assert_eq!(mocks[0].template, "expand-deployments");
//! assert_eq!((mocks[0].object.kind(), mocks[0].object.name()), ("Pod", "cart-pod"));
//! assert_eq!(mocks[0].object.namespace(), Some("shop"));
//! assert_eq!(mocks[0].object.labels()["app"], "cart");
//! ```

use std::path::Path;

use idp_core::manifest::Source;
use idp_core::model::Enforcement;
use idp_core::{Error, ManifestSet, Object, PolicyContext, Result};
use serde_json::{Map, Value};

use super::mutation::GatekeeperMutators;
use super::{ApplyTo, apply_to, type_name};
use crate::names::{operation_name, source_prefix as at, split_api_version};

/// The API group of `ExpansionTemplate`.
pub const GROUP: &str = "expansion.gatekeeper.sh";

/// `spec.generatedGVK`: what a workload expands into.
///
/// ```
/// let k = idp_policy::gatekeeper::expansion::GeneratedKind { group: "".into(), version: "v1".into(), kind: "Pod".into() };
/// assert_eq!(k.api_version(), "v1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedKind {
    /// API group (`""` is core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
}

impl GeneratedKind {
    /// `group/version`, or `version` for the core group.
    ///
    /// ```
    /// let k = idp_policy::gatekeeper::expansion::GeneratedKind { group: "batch".into(), version: "v1".into(), kind: "Job".into() };
    /// assert_eq!(k.api_version(), "batch/v1");
    /// ```
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// One `ExpansionTemplate`.
///
/// ```
/// use idp_policy::gatekeeper::expansion::ExpansionTemplate;
/// let err = ExpansionTemplate::from_value(&serde_json::json!({
///     "apiVersion": "expansion.gatekeeper.sh/v1beta1", "kind": "ExpansionTemplate",
///     "metadata": {"name": "x"},
///     "spec": {"applyTo": [{"groups": ["apps"], "versions": ["v1"], "kinds": ["Deployment"]}],
///              "generatedGVK": {"version": "v1", "kind": "Pod"}}}), None).unwrap_err();
/// assert!(err.to_string().contains("ExpansionTemplate x: spec.templateSource"), "{err}");
/// ```
#[derive(Debug, Clone)]
pub struct ExpansionTemplate {
    /// `metadata.name`, which prefixes the messages of what its mocks break.
    pub name: String,
    apply_to: Vec<ApplyTo>,
    /// `spec.templateSource`, split at the dots.
    template_source: Vec<String>,
    /// `spec.generatedGVK`.
    pub generated: GeneratedKind,
    /// `spec.enforcementAction`: replaces the constraints' action for the mocks'
    /// violations when set.
    pub enforcement: Option<Enforcement>,
    /// Where it was read from.
    pub source: Option<Source>,
}

impl ExpansionTemplate {
    /// Read a template from its JSON/YAML value. Errors name the file, the template
    /// and the field.
    ///
    /// # Errors
    /// A missing name, `applyTo`, `templateSource` or `generatedGVK.kind`/`version`,
    /// an unknown `enforcementAction`.
    ///
    /// ```
    /// use idp_policy::gatekeeper::expansion::ExpansionTemplate;
    /// let t = ExpansionTemplate::from_value(&serde_json::json!({
    ///     "apiVersion": "expansion.gatekeeper.sh/v1beta1", "kind": "ExpansionTemplate",
    ///     "metadata": {"name": "jobs"},
    ///     "spec": {"applyTo": [{"groups": ["batch"], "versions": ["v1"], "kinds": ["CronJob"]}],
    ///              "templateSource": "spec.jobTemplate", "enforcementAction": "warn",
    ///              "generatedGVK": {"group": "batch", "version": "v1", "kind": "Job"}}}), None).unwrap();
    /// assert_eq!(t.generated.kind, "Job");
    /// assert_eq!(t.enforcement, Some(idp_core::model::Enforcement::Warn));
    /// ```
    pub fn from_value(value: &Value, source: Option<Source>) -> Result<Self> {
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let here = format!("{}ExpansionTemplate {name}: ", at(source.as_ref()));
        let fail = |field: &str, message: String| {
            Error::invalid_input(format!("{here}{field}: {message}"))
        };
        if name.is_empty() {
            return Err(fail(
                "metadata.name",
                "is required: it names the template in the messages of what its mocks break"
                    .to_owned(),
            ));
        }
        let spec = match value.get("spec") {
            Some(Value::Object(spec)) => spec,
            Some(other) => {
                return Err(fail(
                    "spec",
                    format!("is {}, not a mapping", type_name(other)),
                ));
            }
            None => return Err(fail("spec", "is missing".to_owned())),
        };
        let apply_to = apply_to(spec.get("applyTo"), &fail)?;
        let template_source = match spec.get("templateSource") {
            Some(Value::String(s)) if !s.is_empty() => {
                s.split('.').map(str::to_owned).collect::<Vec<_>>()
            }
            None | Some(Value::Null) => {
                return Err(fail(
                    "spec.templateSource",
                    "is required: the field of the workload that holds what it creates, such as spec.template".to_owned(),
                ));
            }
            Some(Value::String(_)) => {
                return Err(fail(
                    "spec.templateSource",
                    "is empty: name the field of the workload that holds what it creates, such as spec.template".to_owned(),
                ));
            }
            Some(other) => {
                return Err(fail(
                    "spec.templateSource",
                    format!("is {}, not a string", type_name(other)),
                ));
            }
        };
        if template_source.iter().any(String::is_empty) {
            return Err(fail(
                "spec.templateSource",
                "has an empty field name: write dotted field names such as spec.template"
                    .to_owned(),
            ));
        }
        let gvk = match spec.get("generatedGVK") {
            Some(Value::Object(gvk)) => gvk,
            None | Some(Value::Null) => {
                return Err(fail(
                    "spec.generatedGVK",
                    "is required: the group, version and kind the workload creates".to_owned(),
                ));
            }
            Some(other) => {
                return Err(fail(
                    "spec.generatedGVK",
                    format!("is {}, not a mapping", type_name(other)),
                ));
            }
        };
        let text = |field: &str| -> Result<String> {
            match gvk.get(field) {
                None | Some(Value::Null) => Ok(String::new()),
                Some(Value::String(s)) => Ok(s.clone()),
                Some(other) => Err(fail(
                    &format!("spec.generatedGVK.{field}"),
                    format!("is {}, not a string", type_name(other)),
                )),
            }
        };
        let generated = GeneratedKind {
            group: text("group")?,
            version: text("version")?,
            kind: text("kind")?,
        };
        for (field, v) in [("kind", &generated.kind), ("version", &generated.version)] {
            if v.is_empty() {
                return Err(fail(
                    &format!("spec.generatedGVK.{field}"),
                    "is required".to_owned(),
                ));
            }
        }
        let enforcement = match spec.get("enforcementAction") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if s.is_empty() => None,
            Some(Value::String(s)) => Some(super::action(s).ok_or_else(|| {
                fail(
                    "spec.enforcementAction",
                    format!("{s:?} is not one of deny, warn, dryrun"),
                )
            })?),
            Some(other) => {
                return Err(fail(
                    "spec.enforcementAction",
                    format!("is {}, not a string", type_name(other)),
                ));
            }
        };
        Ok(Self {
            name,
            apply_to,
            template_source,
            generated,
            enforcement,
            source,
        })
    }

    /// Whether `object`'s group, version and kind are in `spec.applyTo`.
    ///
    /// ```
    /// use idp_policy::gatekeeper::expansion::ExpansionTemplate;
    /// let t = ExpansionTemplate::from_value(&serde_json::json!({"metadata": {"name": "t"},
    ///     "spec": {"applyTo": [{"groups": ["apps"], "versions": ["v1"], "kinds": ["Deployment"]}],
    ///              "templateSource": "spec.template", "generatedGVK": {"version": "v1", "kind": "Pod"}}}), None).unwrap();
    /// let deploy = idp_core::Object::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}})).unwrap();
    /// assert!(t.applies_to(&deploy));
    /// ```
    pub fn applies_to(&self, object: &Object) -> bool {
        self.apply_to.iter().any(|a| a.matches(object, ""))
    }

    /// The mock object `object` expands into (see the [module documentation](self)),
    /// before any mutator. `default_namespace` is used when the object names none.
    ///
    /// # Errors
    /// The object has no mapping at `spec.templateSource`; the template source makes
    /// no object.
    ///
    /// ```
    /// use idp_policy::gatekeeper::expansion::ExpansionTemplate;
    /// let t = ExpansionTemplate::from_value(&serde_json::json!({"metadata": {"name": "t"},
    ///     "spec": {"applyTo": [{"groups": ["apps"], "versions": ["v1"], "kinds": ["Deployment"]}],
    ///              "templateSource": "spec.template", "generatedGVK": {"version": "v1", "kind": "Pod"}}}), None).unwrap();
    /// let deploy = idp_core::Object::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}, "spec": {}})).unwrap();
    /// let err = t.expand(&deploy, None).unwrap_err();
    /// assert!(err.to_string().contains("spec.template"), "{err}");
    /// ```
    pub fn expand(&self, object: &Object, default_namespace: Option<&str>) -> Result<Object> {
        let mut at_path: Option<&Value> = None;
        let mut map: &Map<String, Value> = object.as_map();
        for (i, field) in self.template_source.iter().enumerate() {
            let next = map.get(field).filter(|v| !v.is_null());
            match next {
                Some(Value::Object(m)) => {
                    map = m;
                    at_path = next;
                }
                found => {
                    let seen = self.template_source[..=i].join(".");
                    return Err(Error::invalid_input(format!(
                        "{}ExpansionTemplate {}: {} {} has {} at {seen}, where spec.templateSource {:?} needs a mapping",
                        at(self.source.as_ref()),
                        self.name,
                        object.kind(),
                        object.name(),
                        found.map_or("nothing", type_name),
                        self.template_source.join("."),
                    )));
                }
            }
        }
        let mut content = at_path
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        content.insert(
            "apiVersion".to_owned(),
            Value::String(self.generated.api_version()),
        );
        content.insert(
            "kind".to_owned(),
            Value::String(self.generated.kind.clone()),
        );
        let metadata = content
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if !metadata.is_object() {
            *metadata = Value::Object(Map::new());
        }
        if let Some(metadata) = metadata.as_object_mut() {
            metadata.insert(
                "name".to_owned(),
                Value::String(format!("{}-{}", object.name(), self.generated.kind).to_lowercase()),
            );
            match object.namespace().or(default_namespace) {
                Some(ns) => {
                    metadata.insert("namespace".to_owned(), Value::String(ns.to_owned()));
                }
                None => {
                    metadata.remove("namespace");
                }
            }
        }
        Object::from_value(Value::Object(content)).map_err(|e| {
            Error::invalid_input(format!(
                "{}ExpansionTemplate {}: {} {} does not expand into an object: {e}",
                at(self.source.as_ref()),
                self.name,
                object.kind(),
                object.name()
            ))
        })
    }
}

/// A mock object and the template that made it.
///
/// ```
/// let r = idp_policy::gatekeeper::expansion::Resultant {
///     object: idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "d-pod"}})).unwrap(),
///     template: "t".into(), enforcement: None };
/// assert_eq!(r.message("no privileged containers"), "[Implied by t] no privileged containers");
/// ```
#[derive(Debug, Clone)]
pub struct Resultant {
    /// The mock object, after the mutators.
    pub object: Object,
    /// The `ExpansionTemplate` that made it.
    pub template: String,
    /// The template's `enforcementAction`, replacing the constraints' when set.
    pub enforcement: Option<Enforcement>,
}

impl Resultant {
    /// A violation message of the mock as reported on the workload.
    ///
    /// ```
    /// # let r = idp_policy::gatekeeper::expansion::Resultant {
    /// #     object: idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "d-pod"}})).unwrap(),
    /// #     template: "expand".into(), enforcement: None };
    /// assert!(r.message("x").starts_with("[Implied by expand]"));
    /// ```
    pub fn message(&self, message: &str) -> String {
        format!("[Implied by {}] {message}", self.template)
    }
}

/// The `ExpansionTemplate`s loaded, applied together.
///
/// ```
/// assert!(idp_policy::gatekeeper::expansion::Expansion::new().is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Expansion {
    templates: Vec<ExpansionTemplate>,
}

impl Expansion {
    /// No templates.
    ///
    /// ```
    /// assert!(idp_policy::gatekeeper::expansion::Expansion::new().templates().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Add the `ExpansionTemplate` documents of a YAML text; anything else is an error
    /// naming the document, as is a template name given twice.
    ///
    /// # Errors
    /// Unreadable YAML, another kind of document, an invalid template.
    ///
    /// ```
    /// let mut e = idp_policy::gatekeeper::expansion::Expansion::new();
    /// let err = e.add_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n", None).unwrap_err();
    /// assert!(err.to_string().contains("is not an ExpansionTemplate"), "{err}");
    /// ```
    pub fn add_yaml(&mut self, yaml: &str, file: Option<&Path>) -> Result<()> {
        let set = ManifestSet::parse(yaml.as_bytes(), file)?;
        for object in &set {
            if !is_template(object) {
                return Err(Error::invalid_input(format!(
                    "{}{} {} {} is not an ExpansionTemplate ({GROUP})",
                    at(object.source()),
                    object.api_version(),
                    object.kind(),
                    object.name()
                )));
            }
            self.push(ExpansionTemplate::from_value(
                &object.to_value(),
                object.source().cloned(),
            )?)?;
        }
        Ok(())
    }

    /// Add one template.
    ///
    /// # Errors
    /// A template of the same name is already loaded.
    ///
    /// ```
    /// use idp_policy::gatekeeper::expansion::{Expansion, ExpansionTemplate};
    /// let t = ExpansionTemplate::from_value(&serde_json::json!({"metadata": {"name": "t"},
    ///     "spec": {"applyTo": [{"groups": ["apps"], "versions": ["v1"], "kinds": ["Deployment"]}],
    ///              "templateSource": "spec.template", "generatedGVK": {"version": "v1", "kind": "Pod"}}}), None).unwrap();
    /// let mut e = Expansion::new();
    /// e.push(t.clone()).unwrap();
    /// assert!(e.push(t).unwrap_err().to_string().contains("twice"));
    /// ```
    pub fn push(&mut self, template: ExpansionTemplate) -> Result<()> {
        if self.templates.iter().any(|t| t.name == template.name) {
            return Err(Error::invalid_input(format!(
                "{}ExpansionTemplate {} is defined twice",
                at(template.source.as_ref()),
                template.name
            )));
        }
        self.templates.push(template);
        Ok(())
    }

    /// The templates, in the order loaded.
    ///
    /// ```
    /// assert!(idp_policy::gatekeeper::expansion::Expansion::new().templates().is_empty());
    /// ```
    pub fn templates(&self) -> &[ExpansionTemplate] {
        &self.templates
    }

    /// Whether no template is loaded.
    ///
    /// ```
    /// assert!(idp_policy::gatekeeper::expansion::Expansion::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// The mock objects `object` expands into, one per template that applies to it,
    /// each shaped by `mutators` (those matching generated objects; see
    /// [`GatekeeperMutators::mutate_generated`]). An object no template applies to
    /// expands into nothing.
    ///
    /// # Errors
    /// A template cannot expand the object (see [`ExpansionTemplate::expand`]); a
    /// mutator cannot apply to the mock.
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// let e = idp_policy::gatekeeper::expansion::Expansion::new();
    /// let pod = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})).unwrap();
    /// assert!(e.expand(&pod, &PolicyContext::new(), None).unwrap().is_empty());
    /// ```
    pub fn expand(
        &self,
        object: &Object,
        ctx: &PolicyContext,
        mutators: Option<&GatekeeperMutators>,
    ) -> Result<Vec<Resultant>> {
        let _span = tracing::trace_span!(
            "gatekeeper.expand",
            kind = object.kind(),
            name = object.name(),
            operation = operation_name(ctx.operation)
        )
        .entered();
        let mut out = Vec::new();
        for template in self.templates.iter().filter(|t| t.applies_to(object)) {
            let mut mock = template.expand(object, ctx.namespace.as_deref())?;
            if let Some(mutators) = mutators {
                mutators.mutate_generated(&mut mock, ctx).map_err(|e| {
                    e.context(format!(
                        "ExpansionTemplate {}: the mock {} of {} {}",
                        template.name,
                        mock.kind(),
                        object.kind(),
                        object.name()
                    ))
                })?;
            }
            out.push(Resultant {
                object: mock,
                template: template.name.clone(),
                enforcement: template.enforcement,
            });
        }
        Ok(out)
    }
}

/// Whether a document is an `ExpansionTemplate`.
pub(crate) fn is_template(object: &Object) -> bool {
    object.kind() == "ExpansionTemplate" && split_api_version(object.api_version()).0 == GROUP
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const TEMPLATE: &str = r#"
apiVersion: expansion.gatekeeper.sh/v1beta1
kind: ExpansionTemplate
metadata: {name: expand-workloads}
spec:
  applyTo:
    - groups: [apps]
      kinds: [DaemonSet, Deployment, ReplicaSet, StatefulSet]
      versions: [v1]
    - groups: [batch]
      kinds: [Job]
      versions: [v1]
  templateSource: spec.template
  enforcementAction: dryrun
  generatedGVK: {kind: Pod, group: "", version: v1}
"#;

    fn deployment() -> Object {
        Object::from_value(json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "Cart", "labels": {"app": "cart"}},
            "spec": {"replicas": 2, "template": {
                "metadata": {"labels": {"app": "cart"}, "namespace": "elsewhere", "name": "ignored"},
                "spec": {"containers": [{"name": "app", "image": "cart:1"}]}}}
        }))
        .unwrap()
    }

    #[test]
    fn a_deployment_expands_into_its_pod() {
        let mut e = Expansion::new();
        e.add_yaml(TEMPLATE, None).unwrap();
        let ctx = PolicyContext::new().with_namespace("shop");
        let mocks = e.expand(&deployment(), &ctx, None).unwrap();
        assert_eq!(mocks.len(), 1);
        let pod = &mocks[0];
        assert_eq!(pod.enforcement, Some(Enforcement::Audit));
        assert_eq!(
            pod.object.to_value(),
            json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"labels": {"app": "cart"}, "namespace": "shop", "name": "cart-pod"},
                "spec": {"containers": [{"name": "app", "image": "cart:1"}]}})
        );
        // Not in applyTo: a CronJob, a Deployment of another version.
        let cron = Object::from_value(
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
            "spec": {"jobTemplate": {}}}),
        )
        .unwrap();
        assert!(e.expand(&cron, &ctx, None).unwrap().is_empty());
        let beta = Object::from_value(
            json!({"apiVersion": "apps/v1beta1", "kind": "Deployment", "metadata": {"name": "d"}}),
        )
        .unwrap();
        assert!(e.expand(&beta, &ctx, None).unwrap().is_empty());
    }

    #[test]
    fn mutators_shape_the_mock_by_their_source() {
        let mut e = Expansion::new();
        e.add_yaml(TEMPLATE, None).unwrap();
        let mutators = GatekeeperMutators::from_yaml(
            "gk",
            r#"
apiVersion: mutations.gatekeeper.sh/v1
kind: Assign
metadata: {name: sidecar}
spec:
  applyTo: [{groups: [""], kinds: [Pod], versions: [v1]}]
  match: {source: Generated}
  location: "spec.containers[name: proxy]"
  parameters: {assign: {value: {name: proxy, image: "proxy:1"}}}
---
apiVersion: mutations.gatekeeper.sh/v1
kind: AssignMetadata
metadata: {name: real-only}
spec:
  match: {source: Original}
  location: metadata.labels.real
  parameters: {assign: {value: "yes"}}
---
apiVersion: mutations.gatekeeper.sh/v1
kind: AssignMetadata
metadata: {name: everywhere}
spec:
  location: metadata.labels.tier
  parameters: {assign: {value: backend}}
"#,
            None,
        )
        .unwrap();
        let mocks = e
            .expand(&deployment(), &PolicyContext::new(), Some(&mutators))
            .unwrap();
        let pod = mocks[0].object.to_value();
        assert_eq!(pod["spec"]["containers"][1]["name"], "proxy", "{pod}");
        assert_eq!(pod["metadata"]["labels"]["tier"], "backend", "{pod}");
        assert!(pod["metadata"]["labels"].get("real").is_none(), "{pod}");
        assert!(pod["metadata"].get("namespace").is_none(), "{pod}");
    }

    #[test]
    fn errors_name_the_template_and_the_field() {
        let cases = [
            (
                TEMPLATE.replace("templateSource: spec.template", "templateSource: 5"),
                "spec.templateSource: is a number",
            ),
            (
                TEMPLATE.replace(
                    "templateSource: spec.template",
                    "templateSource: spec..template",
                ),
                "spec.templateSource: has an empty field name",
            ),
            (
                TEMPLATE.replace("enforcementAction: dryrun", "enforcementAction: block"),
                "spec.enforcementAction: \"block\" is not one of",
            ),
            (
                TEMPLATE.replace("kind: Pod, ", ""),
                "spec.generatedGVK.kind: is required",
            ),
            (
                TEMPLATE.replace(
                    "      versions: [v1]\n    - groups: [batch]",
                    "    - groups: [batch]",
                ),
                "spec.applyTo[0].versions",
            ),
            (
                TEMPLATE.replace("name: expand-workloads", "name: ''"),
                "metadata.name",
            ),
        ];
        for (yaml, want) in cases {
            let err = Expansion::new()
                .add_yaml(&yaml, Some(Path::new("expand.yaml")))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("expand.yaml") && err.contains(want),
                "{want}: {err}"
            );
        }
        let mut e = Expansion::new();
        e.add_yaml(TEMPLATE, None).unwrap();
        let err = e.add_yaml(TEMPLATE, None).unwrap_err().to_string();
        assert!(err.contains("defined twice"), "{err}");
        // A workload without the template source: an error naming both.
        let bare = Object::from_value(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": "oops"}}),
        )
        .unwrap();
        let err = e
            .expand(&bare, &PolicyContext::new(), None)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("Deployment d has a string at spec.template"),
            "{err}"
        );
    }

    proptest! {
        /// Any template source and any workload content: a mock or an error, never a
        /// panic; a mock always has the generated kind and the mock name.
        #[test]
        fn expansion_never_panics(
            source in prop::sample::select(vec!["spec.template", "spec", "spec.x.y", "metadata", "a.b.c.d"]),
            content in prop::collection::btree_map("[a-z]{1,3}", prop_oneof![Just(json!(null)), Just(json!({})), Just(json!([1])), Just(json!("s")), Just(json!({"metadata": 3}))], 0..4),
        ) {
            let yaml = TEMPLATE.replace("templateSource: spec.template", &format!("templateSource: {source}"));
            let mut e = Expansion::new();
            e.add_yaml(&yaml, None).unwrap();
            let mut spec: Map<String, Value> = content.into_iter().collect();
            spec.insert("template".into(), json!({"metadata": "not a mapping", "spec": {}}));
            let d = Object::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"}, "spec": spec})).unwrap();
            if let Ok(mocks) = e.expand(&d, &PolicyContext::new(), None) {
                prop_assert_eq!(mocks.len(), 1);
                prop_assert_eq!(mocks[0].object.kind(), "Pod");
                prop_assert_eq!(mocks[0].object.name(), "w-pod");
            }
        }
    }
}
