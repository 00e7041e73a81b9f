//! OPA Gatekeeper conventions: `ConstraintTemplate` (templates.gatekeeper.sh/v1) and
//! constraints (constraints.gatekeeper.sh/v1beta1), evaluated client-side.
//!
//! A template names a constraint kind (`spec.crd.spec.names.kind`) and carries Rego in
//! `spec.targets[].rego` (plus `libs`; the newer `spec.targets[].code[]` with
//! `engine: Rego` is read too). Each constraint of that kind runs the template's
//! `violation` rule with the input Gatekeeper builds:
//!
//! | input | value |
//! |---|---|
//! | `input.review.object` | the object |
//! | `input.review.kind` | `{group, version, kind}` from its `apiVersion`/`kind` |
//! | `input.review.name` / `namespace` | from its metadata (namespace: the context's default when unset) |
//! | `input.review.operation` | `CREATE` (apply and create), `UPDATE` or `DELETE` from the context |
//! | `input.review.oldObject` | `null` |
//! | `input.review.userInfo.username` | the context's user, when set |
//! | `input.review.dryRun` | the context's `dry_run` |
//! | `input.parameters` | the constraint's `spec.parameters` |
//!
//! Each result (`violation[{"msg": m, "details": d}]`) is one violation whose rule is
//! `Kind/constraint-name`. The constraint's `spec.enforcementAction` maps `deny` →
//! deny, `warn` → warn, `dryrun` → audit; `scoped` takes the strongest action listed in
//! `scopedEnforcementActions`.
//!
//! `spec.match` is honoured: `kinds` (`apiGroups` × `kinds`, `*` wildcards),
//! `namespaces` and `excludedNamespaces` (with `prefix*`/`*suffix` globs), `labelSelector`,
//! `namespaceSelector` (matched against the labels of `Namespace` objects you supply, or
//! against no labels when the namespace was not supplied — an `In` requirement then does
//! not match), `scope` (`*`, `Cluster`, `Namespaced`) and `name`. As in Gatekeeper,
//! cluster-scoped objects other than Namespaces are not filtered by the namespace
//! criteria, and a `Namespace` object is matched by its own name and labels.
//!
//! `spec.match.source` is honoured too: expansion checks workloads by the objects they
//! would create. `ExpansionTemplate` documents (expansion.gatekeeper.sh) loaded with the
//! constraints expand each object they apply to into a mock (a Deployment into the Pod
//! of its `spec.template`). The mutators (mutations.gatekeeper.sh) loaded with them shape
//! the mock, and the constraints whose `source` is not `Original` check it. Its violations
//! are reported on the object, prefixed `[Implied by <template>]`, with the template's
//! `enforcementAction` when it sets one. See [`crate::gatekeeper::expansion`].
//!
//! Referential data: [`RegoPolicy::with_inventory`](super::RegoPolicy::with_inventory)
//! fills `data.inventory` as Gatekeeper's replication does
//! (`data.inventory.namespace[<namespace>][<apiVersion>][<kind>][<name>]`, and
//! `data.inventory.cluster[<apiVersion>][<kind>][<name>]` for cluster-scoped kinds), so
//! templates such as a unique Ingress host work on the manifests of a change; without
//! it `data.inventory` is empty. Not supported: external data.
//!
//! CEL: a template may carry a `spec.targets[].code[]` block with
//! `engine: K8sNativeValidation`, whose `source` is written like a
//! `ValidatingAdmissionPolicy` spec (`validations` with `expression`, `message`,
//! `messageExpression`, `fieldPath`; `variables`; `matchConditions`; `failurePolicy`).
//! With the `cel` feature, that block is what runs, as in Gatekeeper, where it takes
//! priority over the template's Rego (one engine per template, no fallback). It sees
//! `object`, `oldObject` (`null`), `request`, `params` (the constraint) and Gatekeeper's
//! variables `variables.params` (the constraint's `spec.parameters`, `{}` when unset)
//! and `variables.anyObject` (the object), under the cost limits of
//! [`cel`](crate::cel); each failed validation is one violation with the same rule
//! (`Kind/constraint-name`) and action as the Rego would give. Without the `cel`
//! feature the Rego runs, and a template with CEL only is refused when loaded. CEL
//! templates do not read `data.inventory` (in Gatekeeper too, referential policies are
//! Rego only).
//!
//! ```
//! use idp_core::{Object, Policy, PolicyContext};
//! use idp_policy::rego::RegoPolicy;
//!
//! let yaml = r#"
//! apiVersion: templates.gatekeeper.sh/v1
//! kind: ConstraintTemplate
//! metadata: {name: k8srequiredlabels}
//! spec:
//!   crd: {spec: {names: {kind: K8sRequiredLabels}}}
//!   targets:
//!     - target: admission.k8s.gatekeeper.sh
//!       rego: |
//!         package k8srequiredlabels
//!         violation[{"msg": msg}] {
//!           required := {l | l := input.parameters.labels[_]}
//!           provided := {l | input.review.object.metadata.labels[l]}
//!           missing := required - provided
//!           count(missing) > 0
//!           msg := sprintf("missing labels: %v", [missing])
//!         }
//! ---
//! apiVersion: constraints.gatekeeper.sh/v1beta1
//! kind: K8sRequiredLabels
//! metadata: {name: need-team}
//! spec:
//!   enforcementAction: warn
//!   match: {kinds: [{apiGroups: ["apps"], kinds: ["Deployment"]}]}
//!   parameters: {labels: [team]}
//! "#;
//! let policy = RegoPolicy::new("gatekeeper").with_gatekeeper_yaml(yaml, None).unwrap();
//! let deploy = Object::from_value(serde_json::json!({
//!     "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cart"}})).unwrap();
//! let v = policy.evaluate(&deploy, &PolicyContext::new());
//! assert_eq!(v[0].rule, "K8sRequiredLabels/need-team");
//! assert_eq!(v[0].message, "missing labels: {\"team\"}");
//! assert_eq!(v[0].enforcement, idp_core::model::Enforcement::Warn);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

use idp_core::cluster::GroupKind;
use idp_core::manifest::Source;
use idp_core::model::Enforcement;
use idp_core::{Error, ManifestSet, Object, PolicyContext, Result, Violation};
use serde_json::{Value, json};

use super::{LockedEngine, add_module, eval_error, messages, set_time_limit};
use crate::gatekeeper::config::{GatekeeperConfig, Process};
use crate::gatekeeper::expansion::{self, Expansion, ExpansionTemplate};
use crate::gatekeeper::mutation::GatekeeperMutators;
use crate::gatekeeper::strings;
pub use crate::gatekeeper::{GatekeeperMatch, KindMatch};
use crate::names::{operation_name, source_prefix as at, split_api_version};

fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// A `K8sNativeValidation` code block of a template (`spec.targets[].code[]`): CEL in
/// the shape of a `ValidatingAdmissionPolicy` spec (`validations`, `variables`,
/// `matchConditions`, `failurePolicy`).
///
/// ```
/// use idp_policy::rego::ConstraintTemplate;
/// let t = ConstraintTemplate::from_value(&serde_json::json!({
///   "metadata": {"name": "t"}, "spec": {"crd": {"spec": {"names": {"kind": "T"}}},
///   "targets": [{"target": "admission.k8s.gatekeeper.sh", "code": [{"engine": "K8sNativeValidation",
///     "source": {"validations": [{"expression": "has(object.metadata.labels)"}]}}]}]}}), None).unwrap();
/// let cel = t.cel.unwrap();
/// assert_eq!(cel.field, "spec.targets[0].code[0].source");
/// assert!(t.rego.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CelCode {
    /// Where it is in the template: `spec.targets[0].code[0].source`.
    pub field: String,
    /// The `source` mapping as written.
    pub source: Value,
}

/// A Gatekeeper `ConstraintTemplate`: the constraint kind it defines and its code —
/// Rego, CEL (`K8sNativeValidation`) or both.
///
/// ```
/// use idp_policy::rego::ConstraintTemplate;
/// let err = ConstraintTemplate::from_value(&serde_json::json!({"kind": "ConstraintTemplate",
///     "metadata": {"name": "t"}, "spec": {}}), None).unwrap_err();
/// assert!(err.to_string().contains("spec.crd.spec.names.kind"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstraintTemplate {
    /// `metadata.name`.
    pub name: String,
    /// The constraint kind (`spec.crd.spec.names.kind`).
    pub kind: String,
    /// The main Rego module (must declare `violation`), when the template has Rego.
    pub rego: Option<String>,
    /// Library modules (`libs`).
    pub libs: Vec<String>,
    /// The first `K8sNativeValidation` code block, when the template has one. With the
    /// `cel` feature it is what runs, as in Gatekeeper, where that engine takes priority
    /// over Rego; without it the Rego runs, and a template without Rego is an error.
    pub cel: Option<CelCode>,
    /// Where it was read from.
    pub source: Option<Source>,
}

impl ConstraintTemplate {
    /// Read a template from its JSON/YAML value.
    ///
    /// ```
    /// use idp_policy::rego::ConstraintTemplate;
    /// let t = ConstraintTemplate::from_value(&serde_json::json!({
    ///   "metadata": {"name": "t"}, "spec": {"crd": {"spec": {"names": {"kind": "T"}}},
    ///   "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": "package t\nviolation[{\"msg\": \"x\"}] { false }"}]}}), None).unwrap();
    /// assert_eq!(t.kind, "T");
    /// assert!(t.rego.is_some() && t.cel.is_none());
    /// ```
    pub fn from_value(value: &Value, source: Option<Source>) -> Result<Self> {
        let name = str_at(value, "/metadata/name")
            .unwrap_or_default()
            .to_owned();
        let here = at(source.as_ref());
        let kind = str_at(value, "/spec/crd/spec/names/kind")
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "{here}ConstraintTemplate {name:?} has no spec.crd.spec.names.kind: set the constraint kind it defines"
                ))
            })?
            .to_owned();
        let targets = value
            .pointer("/spec/targets")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let mut rego = None;
        let mut libs = Vec::new();
        let mut cel = None;
        for (t, target) in targets.iter().enumerate() {
            if let Some(text) = target.get("rego").and_then(Value::as_str) {
                rego.get_or_insert_with(|| text.to_owned());
                libs.extend(strings(target.get("libs")));
            }
            for (c, code) in target
                .get("code")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
            {
                match code.get("engine").and_then(Value::as_str) {
                    Some("Rego") => {
                        if let Some(text) = str_at(code, "/source/rego") {
                            rego.get_or_insert_with(|| text.to_owned());
                            libs.extend(strings(code.pointer("/source/libs")));
                        }
                    }
                    Some("K8sNativeValidation") if cel.is_none() => {
                        cel = Some(CelCode {
                            field: format!("spec.targets[{t}].code[{c}].source"),
                            source: code.get("source").cloned().unwrap_or(Value::Null),
                        });
                    }
                    _ => {}
                }
            }
        }
        if rego.is_none() && cel.is_none() {
            return Err(Error::invalid_input(format!(
                "{here}ConstraintTemplate {name:?} has no code: put Rego in spec.targets[].rego, or CEL in spec.targets[].code[] with engine: K8sNativeValidation"
            )));
        }
        Ok(Self {
            name,
            kind,
            rego,
            libs,
            cel,
            source,
        })
    }
}

/// A Gatekeeper constraint: an instance of a template's kind with parameters, match
/// rules and an enforcement action.
///
/// ```
/// use idp_policy::rego::Constraint;
/// let c = Constraint::from_value(&serde_json::json!({"kind": "K8sX", "metadata": {"name": "x"},
///     "spec": {"enforcementAction": "dryrun"}}), None).unwrap();
/// assert_eq!(c.enforcement, idp_core::model::Enforcement::Audit);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    /// The template kind.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// From `spec.enforcementAction`.
    pub enforcement: Enforcement,
    /// `spec.parameters` (`input.parameters`), `{}` when unset.
    pub parameters: Value,
    /// `spec.match`.
    pub matcher: GatekeeperMatch,
    /// Where it was read from.
    pub source: Option<Source>,
}

fn action(word: &str, here: &str) -> Result<Enforcement> {
    crate::gatekeeper::action(word).ok_or_else(|| {
        Error::invalid_input(format!(
            "{here}spec.enforcementAction {:?} is not one of deny, warn, dryrun, scoped",
            word.to_ascii_lowercase()
        ))
    })
}

impl Constraint {
    /// Read a constraint from its JSON/YAML value.
    ///
    /// ```
    /// use idp_policy::rego::Constraint;
    /// let err = Constraint::from_value(&serde_json::json!({"kind": "K8sX", "metadata": {"name": "x"},
    ///     "spec": {"enforcementAction": "block"}}), None).unwrap_err();
    /// assert!(err.to_string().contains("enforcementAction"));
    /// ```
    pub fn from_value(value: &Value, source: Option<Source>) -> Result<Self> {
        let here = at(source.as_ref());
        let kind = str_at(value, "/kind").unwrap_or_default().to_owned();
        let name = str_at(value, "/metadata/name")
            .unwrap_or_default()
            .to_owned();
        let enforcement = match str_at(value, "/spec/enforcementAction") {
            None | Some("") => Enforcement::Deny,
            Some(word) if word.eq_ignore_ascii_case("scoped") => {
                let mut strongest: Option<Enforcement> = None;
                for scoped in value
                    .pointer("/spec/scopedEnforcementActions")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let a = action(
                        scoped
                            .get("action")
                            .and_then(Value::as_str)
                            .unwrap_or("deny"),
                        &here,
                    )?;
                    strongest = Some(match (strongest, a) {
                        (Some(Enforcement::Deny), _) | (_, Enforcement::Deny) => Enforcement::Deny,
                        (Some(Enforcement::Warn), _) | (_, Enforcement::Warn) => Enforcement::Warn,
                        _ => Enforcement::Audit,
                    });
                }
                strongest.unwrap_or(Enforcement::Deny)
            }
            Some(word) => action(word, &here)?,
        };
        Ok(Self {
            kind,
            name,
            enforcement,
            parameters: value
                .pointer("/spec/parameters")
                .cloned()
                .unwrap_or_else(|| json!({})),
            matcher: GatekeeperMatch::from_value(value.pointer("/spec/match"), &here)?,
            source,
        })
    }
}

/// Gatekeeper's variables for templates' CEL: the constraint's parameters and the
/// object reviewed.
#[cfg(feature = "cel")]
const GATEKEEPER_VARIABLES: &[(&str, &str)] = &[
    (
        "params",
        "has(params.spec) && has(params.spec.parameters) ? params.spec.parameters : {}",
    ),
    ("anyObject", "object"),
];

/// What runs a template's constraints.
#[derive(Clone)]
enum Code {
    /// Its Rego: the engine and the package holding `violation`.
    Rego {
        package: String,
        engine: Box<LockedEngine>,
    },
    /// Its `K8sNativeValidation` CEL.
    #[cfg(feature = "cel")]
    Cel(Box<crate::cel::NativeValidation>),
}

#[derive(Clone)]
pub(crate) struct LoadedTemplate {
    pub(crate) template: ConstraintTemplate,
    code: Code,
}

impl LoadedTemplate {
    #[cfg_attr(not(feature = "cel"), allow(clippy::unnecessary_wraps))]
    fn engine(&self) -> Option<&LockedEngine> {
        match &self.code {
            Code::Rego { engine, .. } => Some(engine),
            #[cfg(feature = "cel")]
            Code::Cel(_) => None,
        }
    }
}

impl fmt::Debug for LoadedTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("LoadedTemplate");
        d.field("kind", &self.template.kind);
        match &self.code {
            Code::Rego { package, .. } => d.field("package", package),
            #[cfg(feature = "cel")]
            Code::Cel(_) => d.field("engine", &"K8sNativeValidation"),
        };
        d.finish_non_exhaustive()
    }
}

/// Templates, constraints, known namespaces and the replicated objects.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gatekeeper {
    pub(crate) templates: Vec<LoadedTemplate>,
    pub(crate) constraints: Vec<Constraint>,
    pub(crate) namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// `data.inventory` as Gatekeeper lays it out, when objects were given.
    inventory: Option<regorus::Value>,
    /// `ExpansionTemplate`s: workloads are also checked by the mocks they expand into.
    pub(crate) expansion: Expansion,
    /// Mutators loaded with the constraints, which shape the mocks.
    mutators: Option<GatekeeperMutators>,
    /// The `Config` loaded with them: the namespaces each process leaves out, the kinds
    /// `data.inventory` holds.
    pub(crate) config: Option<GatekeeperConfig>,
    /// The process the constraints run as (the webhook unless set to the audit).
    pub(crate) process: Option<Process>,
}

/// `data.inventory` for `objects`, as Gatekeeper replicates them:
/// `cluster[<apiVersion>][<kind>][<name>]` for cluster-scoped kinds and
/// `namespace[<namespace>][<apiVersion>][<kind>][<name>]` for the others (`default` when
/// an object names no namespace, as the API server would file it).
pub(crate) fn inventory<'o>(objects: impl IntoIterator<Item = &'o Object>) -> Value {
    // Nested maps keyed by strings, built with the keys in order.
    type Tree = BTreeMap<String, BTreeMap<String, BTreeMap<String, Value>>>;
    let mut cluster: Tree = BTreeMap::new();
    let mut namespaced: BTreeMap<String, Tree> = BTreeMap::new();
    for object in objects {
        let kind = object.kind();
        let tree = if idp_core::manifest::is_cluster_scoped(kind) {
            &mut cluster
        } else {
            let ns = object.namespace().unwrap_or("default");
            namespaced.entry(ns.to_owned()).or_default()
        };
        tree.entry(object.api_version().to_owned())
            .or_default()
            .entry(kind.to_owned())
            .or_default()
            .insert(object.name().to_owned(), object.to_value());
    }
    json!({"cluster": cluster, "namespace": namespaced})
}

/// `{"inventory": inventory}`: what a template engine's data holds.
fn inventory_data(inventory: &regorus::Value) -> regorus::Value {
    let mut data = std::collections::BTreeMap::new();
    data.insert(regorus::Value::from("inventory"), inventory.clone());
    regorus::Value::from(data)
}

impl Gatekeeper {
    pub(crate) fn add_template(
        &mut self,
        template: ConstraintTemplate,
        limit: Duration,
    ) -> Result<()> {
        let here = at(template.source.as_ref());
        if self
            .templates
            .iter()
            .any(|t| t.template.kind == template.kind)
        {
            return Err(Error::already_exists(format!(
                "{here}a ConstraintTemplate for kind {} is already loaded",
                template.kind
            )));
        }
        #[cfg(feature = "cel")]
        if let Some(cel) = &template.cel {
            let code = crate::cel::NativeValidation::compile(
                &format!("ConstraintTemplate {}", template.name),
                &cel.source,
                &cel.field,
                "validations",
                GATEKEEPER_VARIABLES,
                template.source.clone(),
            )?;
            self.templates.push(LoadedTemplate {
                template,
                code: Code::Cel(Box::new(code)),
            });
            return Ok(());
        }
        let Some(rego) = &template.rego else {
            return Err(Error::invalid_input(format!(
                "{here}ConstraintTemplate {:?} has only K8sNativeValidation (CEL) code: build idp-policy with its `cel` feature to run it, or add its Rego",
                template.name
            )));
        };
        let engine = LockedEngine::new(limit);
        let package = engine.with(|e| -> Result<String> {
            for (i, lib) in template.libs.iter().enumerate() {
                add_module(e, &format!("{here}{}/libs[{i}]", template.name), lib)?;
            }
            add_module(e, &format!("{here}{}/rego", template.name), rego)
        })?;
        if let Some(inventory) = &self.inventory {
            engine
                .with(|e| e.add_data(inventory_data(inventory)))
                .map_err(|e| {
                    Error::invalid_input(format!("{here}cannot add data.inventory: {e}"))
                })?;
        }
        self.templates.push(LoadedTemplate {
            template,
            code: Code::Rego {
                package,
                engine: Box::new(engine),
            },
        });
        Ok(())
    }

    /// Replace `data.inventory` in every template, loaded or to come, with `objects`;
    /// `Namespace` objects among them also give `namespaceSelector` its labels (where
    /// the Gatekeeper YAML named none for them).
    pub(crate) fn set_inventory<'o>(
        &mut self,
        objects: impl IntoIterator<Item = &'o Object> + Clone,
    ) -> Result<()> {
        // What Gatekeeper would have replicated: the `syncOnly` kinds when the Config
        // names any, outside the namespaces it keeps from the sync.
        let config = self.config.clone();
        let synced = move |o: &&Object| {
            config.as_ref().is_none_or(|c| {
                !c.excludes(Process::Sync, o)
                    && (c.sync_only().is_empty()
                        || c.sync_only()
                            .contains(&GroupKind::of(o.api_version(), o.kind())))
            })
        };
        for ns in objects
            .clone()
            .into_iter()
            .filter(|o| o.kind() == "Namespace" && split_api_version(o.api_version()).0.is_empty())
        {
            self.namespaces
                .entry(ns.name().to_owned())
                .or_insert_with(|| ns.labels());
            if let Some(m) = &mut self.mutators {
                m.remember_namespace(ns.name(), ns.labels());
            }
        }
        let inventory = regorus::Value::from(inventory(objects.into_iter().filter(synced)));
        for (t, engine) in self.templates.iter().filter_map(|t| Some((t, t.engine()?))) {
            engine
                .with(|e| {
                    // Templates hold no other data: replacing it all replaces the inventory.
                    e.clear_data();
                    e.add_data(inventory_data(&inventory))
                })
                .map_err(|e| {
                    Error::invalid_input(format!(
                        "{}: cannot add data.inventory: {e}",
                        t.template.name
                    ))
                })?;
        }
        self.inventory = Some(inventory);
        Ok(())
    }

    pub(crate) fn has_inventory(&self) -> bool {
        self.inventory.is_some()
    }

    pub(crate) fn set_time_limit(&mut self, limit: Duration) {
        for engine in self.templates.iter().filter_map(LoadedTemplate::engine) {
            engine.with(|e| set_time_limit(e, limit));
        }
    }

    pub(crate) fn load_yaml(
        &mut self,
        text: &str,
        file: Option<&Path>,
        limit: Duration,
    ) -> Result<()> {
        let set = ManifestSet::parse(text.as_bytes(), file)?;
        let mut constraints = Vec::new();
        for object in &set {
            let source = object.source().cloned();
            let value = object.to_value();
            let (group, _) = split_api_version(object.api_version());
            if object.kind() == "ConstraintTemplate" && group == "templates.gatekeeper.sh" {
                self.add_template(ConstraintTemplate::from_value(&value, source)?, limit)?;
            } else if group == "constraints.gatekeeper.sh" {
                constraints.push(Constraint::from_value(&value, source)?);
            } else if expansion::is_template(object) {
                self.expansion
                    .push(ExpansionTemplate::from_value(&value, source)?)?;
            } else if group == "mutations.gatekeeper.sh" {
                let namespaces = &self.namespaces;
                let mutators = self.mutators.get_or_insert_with(|| {
                    let mut m = GatekeeperMutators::new("gatekeeper");
                    for (name, labels) in namespaces {
                        m.remember_namespace(name, labels.clone());
                    }
                    m
                });
                if !mutators.take(object)? {
                    return Err(Error::invalid_input(format!(
                        "{}{} {} is not a Gatekeeper mutator",
                        at(source.as_ref()),
                        object.api_version(),
                        object.kind()
                    )));
                }
            } else if GatekeeperConfig::is_config(object) {
                // A second Config is the error to report first (in load_once).
                if self.config.is_none() && self.inventory.is_some() {
                    return Err(Error::invalid_input(format!(
                        "{}a Gatekeeper Config given after the inventory: give the Config before the inventory, which it shapes",
                        at(source.as_ref())
                    )));
                }
                GatekeeperConfig::load_once(&mut self.config, object)?;
            } else if object.kind() == "Namespace" && group.is_empty() {
                self.namespaces
                    .insert(object.name().to_owned(), object.labels());
                if let Some(m) = &mut self.mutators {
                    m.remember_namespace(object.name(), object.labels());
                }
            } else {
                return Err(Error::invalid_input(format!(
                    "{}{} {} is not a Gatekeeper ConstraintTemplate (templates.gatekeeper.sh), constraint (constraints.gatekeeper.sh), ExpansionTemplate (expansion.gatekeeper.sh), mutator (mutations.gatekeeper.sh), Config (config.gatekeeper.sh) or Namespace",
                    at(source.as_ref()),
                    object.api_version(),
                    object.kind()
                )));
            }
        }
        self.constraints.extend(constraints);
        Ok(())
    }

    /// The violations of `object`, then those of the mocks it expands into (their
    /// messages prefixed with the template, their action the template's when it sets
    /// one).
    pub(crate) fn evaluate(
        &self,
        policy: &str,
        object: &Object,
        ctx: &PolicyContext,
        out: &mut Vec<Violation>,
    ) -> Result<()> {
        if self.constraints.is_empty() {
            return Ok(());
        }
        let process = self.process.unwrap_or(Process::Webhook);
        if self
            .config
            .as_ref()
            .is_some_and(|c| c.excludes(process, object))
        {
            return Ok(());
        }
        self.check(policy, object, ctx, false, out)?;
        if self.expansion.is_empty() {
            return Ok(());
        }
        for mock in self.expansion.expand(object, ctx, self.mutators.as_ref())? {
            let from = out.len();
            self.check(policy, &mock.object, ctx, true, out)?;
            for v in out.iter_mut().skip(from) {
                v.message = mock.message(&v.message);
                if let Some(action) = mock.enforcement {
                    v.enforcement = action;
                }
            }
        }
        Ok(())
    }

    /// Run the constraints that match `object` (a mock of expansion when `generated`).
    fn check(
        &self,
        policy: &str,
        object: &Object,
        ctx: &PolicyContext,
        generated: bool,
        out: &mut Vec<Violation>,
    ) -> Result<()> {
        let default_ns = ctx.namespace.as_deref();
        let mut review: Option<Value> = None;
        for constraint in &self.constraints {
            let matches = if generated {
                constraint
                    .matcher
                    .matches_generated(object, default_ns, &self.namespaces)
            } else {
                constraint
                    .matcher
                    .matches(object, default_ns, &self.namespaces)
            };
            if !matches {
                continue;
            }
            let template = self
                .templates
                .iter()
                .find(|t| t.template.kind == constraint.kind)
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "{}constraint {}/{}: no ConstraintTemplate defines kind {}; load the template with its constraints",
                        at(constraint.source.as_ref()),
                        constraint.kind,
                        constraint.name,
                        constraint.kind
                    ))
                })?;
            let (package, engine) = match &template.code {
                Code::Rego { package, engine } => (package, engine),
                #[cfg(feature = "cel")]
                Code::Cel(code) => {
                    let rule = format!("{}/{}", constraint.kind, constraint.name);
                    let params = json!({
                        "apiVersion": "constraints.gatekeeper.sh/v1beta1",
                        "kind": constraint.kind,
                        "metadata": {"name": constraint.name},
                        "spec": {"parameters": constraint.parameters},
                    });
                    code.evaluate(
                        policy,
                        &rule,
                        &format!("constraint {rule}"),
                        Some(&params),
                        constraint.enforcement,
                        object,
                        ctx,
                        out,
                    )
                    .map_err(|e| e.context(format!("constraint {rule}")))?;
                    continue;
                }
            };
            let review = review.get_or_insert_with(|| {
                let (group, version) = split_api_version(object.api_version());
                json!({
                    "kind": {"group": group, "version": version, "kind": object.kind()},
                    "name": object.name(),
                    "namespace": object.namespace().or(default_ns).unwrap_or(""),
                    "operation": operation_name(ctx.operation),
                    "object": object.to_value(),
                    "oldObject": Value::Null,
                    "userInfo": {"username": ctx.user.clone().unwrap_or_default()},
                    "dryRun": ctx.dry_run,
                })
            });
            let input = json!({"review": review, "parameters": constraint.parameters});
            let rule = format!("{package}.violation");
            let value = engine.with(|e| {
                e.set_input(regorus::Value::from(input));
                e.eval_rule(rule.clone())
            });
            let value = value.map_err(|e| {
                eval_error(
                    policy,
                    &format!(
                        "constraint {}/{} ({rule})",
                        constraint.kind, constraint.name
                    ),
                    &e,
                )
            })?;
            for (message, _details) in messages(&value) {
                out.push(
                    Violation::new(
                        policy.to_owned(),
                        format!("{}/{}", constraint.kind, constraint.name),
                        message,
                    )
                    .with_enforcement(constraint.enforcement),
                );
            }
        }
        Ok(())
    }
}
