//! Kubernetes `ValidatingAdmissionPolicy` (admissionregistration.k8s.io/v1) evaluated
//! client-side with CEL, through [kube-cel](https://docs.rs/kube-cel) (feature `cel`).
//!
//! Start with [`CelPolicy::from_yaml`]: give it policies, bindings and the param objects
//! the bindings refer to; it evaluates every binding whose policy matches the object, the
//! way the API server does:
//!
//! 1. `spec.matchConstraints` of the policy, then `spec.matchResources` of the binding:
//!    `resourceRules` (`apiGroups`, `apiVersions`, `resources` — plural names, see
//!    [`resource_for_kind`] —, `operations`, `resourceNames`, `scope`),
//!    `excludeResourceRules`, `namespaceSelector` (against the labels of `Namespace`
//!    objects you supply; a namespace you did not supply has no labels) and
//!    `objectSelector`. The context's [`Operation`](idp_core::model::Operation) `Apply`
//!    matches rules for `CREATE` or `UPDATE`, and is presented to CEL as `CREATE`.
//! 2. Params: with `spec.paramKind`, the binding's `paramRef` (`name`, `namespace`,
//!    `selector`) selects param objects of that kind among those supplied; without
//!    `namespace`, a namespaced param must be in the object's namespace. The policy is
//!    evaluated once per param; none found → `parameterNotFoundAction` (`Deny`, the
//!    default, or `Allow`).
//! 3. `spec.matchConditions` (all must be true), `spec.variables` (`variables.name`, in
//!    order, each may use the previous ones), then `spec.validations`: `expression`,
//!    `message`, `messageExpression`, `reason`, `fieldPath` (the violation's path).
//! 4. The binding's `validationActions` (`Deny`, `Warn`, `Audit`) give the enforcement;
//!    with several, the strongest is used.
//!
//! CEL sees `object`, `oldObject` (`null`), `request` (`operation`, `name`, `namespace`,
//! `dryRun`, `kind`, `resource`, `userInfo.username`), `params` (`null` without params),
//! `namespaceObject` (when the namespace was supplied) and `variables`. `authorizer` is
//! not available. `spec.auditAnnotations` are read but not evaluated: they only annotate
//! audit events, which a client-side check does not produce.
//!
//! Kyverno's `ValidatingPolicy` and `NamespacedValidatingPolicy` (policies.kyverno.io)
//! are read too: a policy with its `validationActions` and no binding, auto-generated
//! for the Pod templates of controllers as Kyverno does, and the `PolicyException`s
//! (policies.kyverno.io) that exempt objects from them (see [`kyverno`];
//! [`CelPolicy::results`] reports an exempted policy as skipped).
//!
//! The CEL engine does not parse optional field syntax (`object.?field`,
//! `.orValue(...)`). An expression using it is refused when loaded; write
//! `has(object.field) ? object.field : default` instead.
//!
//! Errors (an expression that fails, returns a non-boolean, or is over its [cost
//! budget](cost)) follow `spec.failurePolicy`: `Fail` (the default) reports a violation
//! with the error under the binding's actions, `Ignore` skips it.
//!
//! ```
//! use idp_core::{Object, Policy, PolicyContext};
//! use idp_policy::cel::CelPolicy;
//!
//! let yaml = r#"
//! apiVersion: admissionregistration.k8s.io/v1
//! kind: ValidatingAdmissionPolicy
//! metadata: {name: max-replicas}
//! spec:
//!   matchConstraints:
//!     resourceRules:
//!       - {apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}
//!   validations:
//!     - expression: "object.spec.replicas <= 5"
//!       messageExpression: "'replicas must be at most 5, got ' + string(object.spec.replicas)"
//!       fieldPath: spec.replicas
//! ---
//! apiVersion: admissionregistration.k8s.io/v1
//! kind: ValidatingAdmissionPolicyBinding
//! metadata: {name: max-replicas}
//! spec: {policyName: max-replicas, validationActions: [Deny]}
//! "#;
//! let policy = CelPolicy::from_yaml("vap", yaml, None).unwrap();
//! let deploy = Object::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
//!     "metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 8}})).unwrap();
//! let v = policy.evaluate(&deploy, &PolicyContext::new());
//! assert_eq!(v[0].message, "replicas must be at most 5, got 8");
//! assert_eq!(v[0].path.as_deref(), Some("spec.replicas"));
//! ```

pub mod cluster;
pub mod cost;
pub mod kyverno;
mod resources;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use idp_core::manifest::Source;
use idp_core::model::Enforcement;
use idp_core::{Error, ManifestSet, Object, Policy, PolicyContext, Result, Violation};
use kube_cel::KubeCelExt;
use kube_cel::cel::objects::{Key, Map};
use kube_cel::cel::{Context, Program, Value as CelValue};
use serde_json::{Value, json};

use crate::matching::LabelSelector;
use crate::names::{operation_name, source_prefix as at, split_api_version};
use resources::MatchResources;
pub use resources::resource_for_kind;

const ADMISSION_GROUP: &str = "admissionregistration.k8s.io";

/// The deepest object we convert for CEL; deeper input is an error, not a stack overflow.
const MAX_DEPTH: usize = 200;

/// One compiled CEL expression with where it came from.
#[derive(Clone)]
struct Expression {
    text: String,
    /// `spec.validations[0].expression`.
    field: String,
    program: Arc<Program>,
}

impl fmt::Debug for Expression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Expression {
    /// `label` names what holds the expression (`ValidatingAdmissionPolicy max-replicas`).
    fn compile(text: &str, field: String, here: &str, label: &str) -> Result<Self> {
        let program = Program::compile(text).map_err(|e| {
            Error::invalid_input(format!("{here}{label}: {field} is not valid CEL: {e}"))
        })?;
        Ok(Self {
            text: text.to_owned(),
            field,
            program: Arc::new(program),
        })
    }
}

#[derive(Debug, Clone)]
struct Validation {
    expression: Expression,
    message: Option<String>,
    message_expression: Option<Expression>,
    reason: Option<String>,
    field_path: Option<String>,
}

/// A parsed `ValidatingAdmissionPolicy` (or the CEL code of a Gatekeeper template).
#[derive(Debug, Clone)]
struct AdmissionPolicy {
    name: String,
    /// The policy as written: its own name, or for a Kyverno `ValidatingPolicy`'s
    /// auto-generated variant, the policy it was generated from.
    origin: String,
    /// The kind of a Kyverno policy (`ValidatingPolicy`…), which its exceptions name;
    /// `None` for a `ValidatingAdmissionPolicy`, which takes no exceptions.
    kyverno_kind: Option<String>,
    /// What errors call it: `ValidatingAdmissionPolicy max-replicas`.
    label: String,
    fail_closed: bool,
    param_kind: Option<(String, String)>,
    match_constraints: MatchResources,
    match_conditions: Vec<(String, Expression)>,
    variables: Vec<(String, Expression)>,
    validations: Vec<Validation>,
    source: Option<Source>,
    /// Whether background scans apply it: false for a Kyverno `ValidatingPolicy` with
    /// `spec.evaluation.background.enabled: false`.
    background: bool,
}

fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

impl AdmissionPolicy {
    fn from_value(value: &Value, source: Option<Source>) -> Result<Self> {
        let here = at(source.as_ref());
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let label = format!("ValidatingAdmissionPolicy {name}");
        let spec = value.get("spec").cloned().unwrap_or_else(|| json!({}));
        let param_kind = spec.get("paramKind").map(|p| {
            (
                text(p, "apiVersion").unwrap_or_default().to_owned(),
                text(p, "kind").unwrap_or_default().to_owned(),
            )
        });
        let match_constraints = match spec.get("matchConstraints") {
            Some(m) => MatchResources::from_value(m, "spec.matchConstraints")
                .map_err(|e| e.context(format!("{here}{label}")))?,
            None => {
                return Err(Error::invalid_input(format!(
                    "{here}{label}: spec.matchConstraints is required (list the resourceRules the policy applies to)"
                )));
            }
        };
        let mut policy = Self::parse(&spec, "spec", "validations", name, label, &[], source)?;
        policy.param_kind = param_kind;
        policy.match_constraints = match_constraints;
        Ok(policy)
    }

    /// The expressions of `spec` (`failurePolicy`, `matchConditions`, `variables`, and
    /// the validations under `list_key`), their fields named under `prefix`; `given`
    /// variables come first, as if written before the others. Matches everything and
    /// takes no params.
    fn parse(
        spec: &Value,
        prefix: &str,
        list_key: &str,
        name: String,
        label: String,
        given: &[(&str, &str)],
        source: Option<Source>,
    ) -> Result<Self> {
        let here = at(source.as_ref());
        let fail_closed = match text(spec, "failurePolicy") {
            None | Some("Fail") => true,
            Some("Ignore") => false,
            Some(other) => {
                return Err(Error::invalid_input(format!(
                    "{here}{label}: {prefix}.failurePolicy {other:?} is not Fail or Ignore"
                )));
            }
        };
        let list = |key: &str| {
            spec.get(key)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        let named = |key: &str| -> Result<Vec<(String, Expression)>> {
            list(key)
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let expr = text(item, "expression").unwrap_or_default();
                    let item_name = text(item, "name").unwrap_or_default().to_owned();
                    Ok((
                        item_name,
                        Expression::compile(
                            expr,
                            format!("{prefix}.{key}[{i}].expression"),
                            &here,
                            &label,
                        )?,
                    ))
                })
                .collect()
        };
        let match_conditions = named("matchConditions")?;
        let mut variables = given
            .iter()
            .map(|(variable, expr)| {
                Ok((
                    (*variable).to_owned(),
                    Expression::compile(
                        expr,
                        format!("variables.{variable} (provided)"),
                        &here,
                        &label,
                    )?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        variables.extend(named("variables")?);
        let mut validations = Vec::new();
        for (i, item) in list(list_key).iter().enumerate() {
            let expression = Expression::compile(
                text(item, "expression").unwrap_or_default(),
                format!("{prefix}.{list_key}[{i}].expression"),
                &here,
                &label,
            )?;
            let message_expression = text(item, "messageExpression")
                .map(|m| {
                    Expression::compile(
                        m,
                        format!("{prefix}.{list_key}[{i}].messageExpression"),
                        &here,
                        &label,
                    )
                })
                .transpose()?;
            validations.push(Validation {
                expression,
                message: text(item, "message").map(str::to_owned),
                message_expression,
                reason: text(item, "reason").map(str::to_owned),
                field_path: text(item, "fieldPath").map(|p| p.trim_start_matches('.').to_owned()),
            });
        }
        if spec.get("auditAnnotations").is_some() {
            tracing::debug!(policy = %name, "auditAnnotations are not evaluated client-side");
        }
        Ok(Self {
            background: true,
            origin: name.clone(),
            kyverno_kind: None,
            name,
            label,
            fail_closed,
            param_kind: None,
            match_constraints: MatchResources::default(),
            match_conditions,
            variables,
            validations,
            source,
        })
    }
}

#[derive(Debug, Clone)]
struct ParamRef {
    name: Option<String>,
    namespace: Option<String>,
    selector: Option<LabelSelector>,
    deny_when_missing: bool,
}

/// A parsed `ValidatingAdmissionPolicyBinding`.
#[derive(Debug, Clone)]
struct Binding {
    name: String,
    policy_name: String,
    param_ref: Option<ParamRef>,
    match_resources: Option<MatchResources>,
    enforcement: Enforcement,
    /// Only objects in this namespace (a Kyverno `NamespacedValidatingPolicy`).
    namespace: Option<String>,
    source: Option<Source>,
}

impl Binding {
    fn from_value(value: &Value, source: Option<Source>) -> Result<Self> {
        let here = at(source.as_ref());
        let name = value
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let spec = value.get("spec").cloned().unwrap_or_else(|| json!({}));
        let policy_name = text(&spec, "policyName")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "{here}ValidatingAdmissionPolicyBinding {name}: spec.policyName is required"
                ))
            })?
            .to_owned();
        let enforcement = kyverno::validation_actions(&spec, "spec", &|message| {
            Error::invalid_input(format!(
                "{here}ValidatingAdmissionPolicyBinding {name}: {message}"
            ))
        })?;
        let param_ref = match spec.get("paramRef") {
            None | Some(Value::Null) => None,
            Some(p) => Some(ParamRef {
                name: text(p, "name").map(str::to_owned),
                namespace: text(p, "namespace").map(str::to_owned),
                selector: match p.get("selector") {
                    None | Some(Value::Null) => None,
                    Some(s) => Some(serde_json::from_value(s.clone()).map_err(|e| {
                        Error::invalid_input(format!(
                            "{here}ValidatingAdmissionPolicyBinding {name}: spec.paramRef.selector is not a label selector: {e}"
                        ))
                    })?),
                },
                deny_when_missing: text(p, "parameterNotFoundAction") != Some("Allow"),
            }),
        };
        let match_resources = spec
            .get("matchResources")
            .map(|m| MatchResources::from_value(m, "spec.matchResources"))
            .transpose()
            .map_err(|e| e.context(format!("{here}ValidatingAdmissionPolicyBinding {name}")))?;
        Ok(Self {
            name,
            policy_name,
            param_ref,
            match_resources,
            enforcement,
            namespace: None,
            source,
        })
    }
}

/// ValidatingAdmissionPolicies with their bindings and params, as one [`Policy`]. See the
/// [module documentation](self).
///
/// ```
/// let p = idp_policy::cel::CelPolicy::new("cel");
/// assert!(p.policies().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct CelPolicy {
    name: String,
    policies: Vec<AdmissionPolicy>,
    bindings: Vec<Binding>,
    params: Vec<Object>,
    namespaces: BTreeMap<String, Object>,
    exceptions: Vec<kyverno::Exception>,
    /// Only the policies background scans apply ([`CelPolicy::for_background`]).
    background_only: bool,
}

impl CelPolicy {
    /// An empty set named `name` (the `policy` of its violations).
    ///
    /// ```
    /// assert!(idp_policy::cel::CelPolicy::new("cel").bindings().is_empty());
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            policies: Vec::new(),
            bindings: Vec::new(),
            params: Vec::new(),
            namespaces: BTreeMap::new(),
            exceptions: Vec::new(),
            background_only: false,
        }
    }

    /// The set as background scans apply it to what already runs in a cluster (see
    /// [`crate::audit`]): Kyverno `ValidatingPolicy`s with
    /// `spec.evaluation.background.enabled: false` are left out. Every
    /// `ValidatingAdmissionPolicy` still applies; Kubernetes has no such setting.
    ///
    /// ```
    /// use idp_core::{Object, Policy, PolicyContext};
    /// use idp_policy::cel::CelPolicy;
    /// let yaml = "apiVersion: policies.kyverno.io/v1\nkind: ValidatingPolicy\nmetadata: {name: team}\nspec:\n  validationActions: [Deny]\n  evaluation: {background: {enabled: false}}\n  matchConstraints:\n    resourceRules: [{apiGroups: [''], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}]\n  validations:\n    - expression: has(object.metadata.labels) && 'team' in object.metadata.labels\n      message: a team label is required\n";
    /// let cm = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})).unwrap();
    /// let ctx = PolicyContext::new();
    /// assert_eq!(CelPolicy::from_yaml("cel", yaml, None).unwrap().evaluate(&cm, &ctx).len(), 1);
    /// assert!(CelPolicy::from_yaml("cel", yaml, None).unwrap().for_background().evaluate(&cm, &ctx).is_empty());
    /// ```
    #[must_use]
    pub fn for_background(mut self) -> Self {
        self.background_only = true;
        self
    }

    /// Read multi-document YAML: `ValidatingAdmissionPolicy` and
    /// `ValidatingAdmissionPolicyBinding` documents, Kyverno `ValidatingPolicy`,
    /// `NamespacedValidatingPolicy` and `PolicyException` documents (an exception may
    /// come before or after the policies it names, in any text added); `Namespace` objects (for
    /// `namespaceSelector` and `namespaceObject`); every other document is a param object.
    ///
    /// ```
    /// let err = idp_policy::cel::CelPolicy::from_yaml("cel", "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {name: p}\nspec:\n  matchConstraints: {resourceRules: []}\n  validations: [{expression: 'object.spec.replicas <'}]\n", None).unwrap_err();
    /// assert!(err.to_string().contains("spec.validations[0].expression is not valid CEL"), "{err}");
    /// ```
    pub fn from_yaml(name: impl Into<String>, yaml: &str, file: Option<&Path>) -> Result<Self> {
        let mut policy = Self::new(name);
        policy.add_yaml(yaml, file)?;
        Ok(policy)
    }

    /// Add the documents of a YAML text (see [`Self::from_yaml`]).
    ///
    /// ```
    /// let mut p = idp_policy::cel::CelPolicy::new("cel");
    /// p.add_yaml("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: limits}\ndata: {max: '3'}\n", None).unwrap();
    /// assert!(p.policies().is_empty());
    /// ```
    pub fn add_yaml(&mut self, yaml: &str, file: Option<&Path>) -> Result<()> {
        let set = ManifestSet::parse(yaml.as_bytes(), file)?;
        for object in &set {
            self.add_object(object.clone())?;
        }
        Ok(())
    }

    /// Add one document: a policy, a binding, a Kyverno exception, a Namespace or a param
    /// object.
    ///
    /// ```
    /// let ns = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
    ///     "metadata": {"name": "shop"}})).unwrap();
    /// let p = idp_policy::cel::CelPolicy::new("cel").with_object(ns).unwrap();
    /// # let _ = p;
    /// ```
    pub fn with_object(mut self, object: Object) -> Result<Self> {
        self.add_object(object)?;
        Ok(self)
    }

    /// Add one document in place (see [`Self::with_object`]). On an error the set is as
    /// it was: the document is not added.
    ///
    /// ```
    /// let mut p = idp_policy::cel::CelPolicy::new("cel");
    /// let bad = idp_core::Object::from_value(serde_json::json!({"apiVersion": "policies.kyverno.io/v1",
    ///     "kind": "MutatingPolicy", "metadata": {"name": "m"}})).unwrap();
    /// assert!(p.add_object(bad).is_err());
    /// assert!(p.policies().is_empty());
    /// ```
    pub fn add_object(&mut self, object: Object) -> Result<()> {
        let (group, _) = split_api_version(object.api_version());
        let source = object.source().cloned();
        match (group, object.kind()) {
            (ADMISSION_GROUP, "ValidatingAdmissionPolicy") => {
                let policy = AdmissionPolicy::from_value(&object.to_value(), source)?;
                self.policies.push(policy);
            }
            (ADMISSION_GROUP, "ValidatingAdmissionPolicyBinding") => {
                let binding = Binding::from_value(&object.to_value(), source)?;
                self.bindings.push(binding);
            }
            (kyverno::GROUP, "ValidatingPolicy" | "NamespacedValidatingPolicy") => {
                for (policy, binding) in kyverno::read(&object.to_value(), source.as_ref())? {
                    self.policies.push(policy);
                    self.bindings.push(binding);
                }
            }
            (kyverno::GROUP, "PolicyException") => {
                self.exceptions.push(kyverno::read_exception(
                    &object.to_value(),
                    source.as_ref(),
                )?);
            }
            (kyverno::GROUP, other) => {
                return Err(Error::invalid_input(format!(
                    "{}{other} {}: only ValidatingPolicy, NamespacedValidatingPolicy and PolicyException of {} are read here; for mutation use a Kyverno ClusterPolicy's mutate rules",
                    at(source.as_ref()),
                    object.name(),
                    kyverno::GROUP
                )));
            }
            ("", "Namespace") => {
                self.namespaces
                    .insert(object.name().to_owned(), object.clone());
                self.params.push(object);
            }
            _ => self.params.push(object),
        }
        Ok(())
    }

    /// The names of the policies loaded.
    ///
    /// ```
    /// assert!(idp_policy::cel::CelPolicy::new("cel").policies().is_empty());
    /// ```
    pub fn policies(&self) -> Vec<&str> {
        self.policies.iter().map(|p| p.name.as_str()).collect()
    }

    /// The names of the bindings loaded.
    ///
    /// ```
    /// assert!(idp_policy::cel::CelPolicy::new("cel").bindings().is_empty());
    /// ```
    pub fn bindings(&self) -> Vec<&str> {
        self.bindings.iter().map(|b| b.name.as_str()).collect()
    }

    /// The Kyverno `PolicyException`s loaded, `namespace/name` (or `name` without a
    /// namespace).
    ///
    /// ```
    /// let p = idp_policy::cel::CelPolicy::from_yaml("kyverno", "apiVersion: policies.kyverno.io/v1\nkind: PolicyException\nmetadata: {name: legacy, namespace: ops}\nspec:\n  policyRefs: [{name: replicas, kind: ValidatingPolicy}]\n", None).unwrap();
    /// assert_eq!(p.exceptions(), ["ops/legacy"]);
    /// ```
    pub fn exceptions(&self) -> Vec<&str> {
        self.exceptions.iter().map(|e| e.key.as_str()).collect()
    }

    /// Evaluate like [`Policy::evaluate`], but report input CEL cannot take (an object
    /// nested deeper than 200 levels) as an error.
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// let p = idp_policy::cel::CelPolicy::new("cel");
    /// let o = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})).unwrap();
    /// assert!(p.try_evaluate(&o, &PolicyContext::new()).unwrap().is_empty());
    /// ```
    pub fn try_evaluate(&self, object: &Object, ctx: &PolicyContext) -> Result<Vec<Violation>> {
        let _span = tracing::trace_span!("cel.evaluate", policy = %self.name, kind = object.kind(), name = object.name()).entered();
        self.evaluate_into(object, ctx, &mut Vec::new())
    }

    /// The policies that apply to `object` — matched by their constraints and bindings,
    /// and their match conditions hold — each with its violations (none: it passes),
    /// keyed by the policy's name. A Kyverno `ValidatingPolicy`'s auto-generated variants
    /// count under the policy's own name, as the Kyverno CLI reports them. A policy
    /// that is not in the map does not apply (a skip); so is a policy a Kyverno
    /// `PolicyException` exempts the object from, unless the exception says
    /// `reportResult: pass` (then it is in the map with no violations).
    /// [`Self::results`] tells the exceptions apart.
    ///
    /// # Errors
    /// As [`Self::try_evaluate`].
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// let p = idp_policy::cel::CelPolicy::from_yaml("kyverno", "apiVersion: policies.kyverno.io/v1\nkind: ValidatingPolicy\nmetadata: {name: replicas}\nspec:\n  validationActions: [Audit]\n  matchConstraints:\n    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]\n  validations: [{expression: 'object.spec.replicas <= 5'}]\n", None).unwrap();
    /// let deploy = |n: i64| Object::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": n}})).unwrap();
    /// assert!(p.outcomes(&deploy(2), &PolicyContext::new()).unwrap()["replicas"].is_empty());
    /// assert_eq!(p.outcomes(&deploy(9), &PolicyContext::new()).unwrap()["replicas"].len(), 1);
    /// let pod = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})).unwrap();
    /// assert!(p.outcomes(&pod, &PolicyContext::new()).unwrap().is_empty());
    /// ```
    pub fn outcomes(
        &self,
        object: &Object,
        ctx: &PolicyContext,
    ) -> Result<BTreeMap<String, Vec<Violation>>> {
        Ok(self
            .results(object, ctx)?
            .into_iter()
            .filter_map(|(name, result)| match result {
                PolicyResult::Checked(v) => Some((name, v)),
                PolicyResult::Excepted(e) if e.pass => Some((name, Vec::new())),
                PolicyResult::Excepted(_) => None,
            })
            .collect())
    }

    /// Like [`Self::outcomes`], and the policies a Kyverno `PolicyException` exempted the
    /// object from are in the map too, as [`PolicyResult::Excepted`] with the exceptions
    /// that did it.
    ///
    /// # Errors
    /// As [`Self::try_evaluate`].
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// use idp_policy::cel::{CelPolicy, PolicyResult};
    /// let p = CelPolicy::from_yaml("kyverno", r#"
    /// apiVersion: policies.kyverno.io/v1
    /// kind: ValidatingPolicy
    /// metadata: {name: replicas}
    /// spec:
    ///   validationActions: [Deny]
    ///   matchConstraints:
    ///     resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE], resources: [deployments]}]
    ///   validations: [{expression: 'object.spec.replicas <= 5'}]
    /// ---
    /// apiVersion: policies.kyverno.io/v1
    /// kind: PolicyException
    /// metadata: {name: batch-jobs, namespace: ops}
    /// spec:
    ///   policyRefs: [{name: replicas, kind: ValidatingPolicy}]
    ///   matchConditions: [{name: batch, expression: "object.metadata.name.startsWith('batch-')"}]
    /// "#, None).unwrap();
    /// let deploy = |name: &str| Object::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
    ///     "metadata": {"name": name, "namespace": "shop"}, "spec": {"replicas": 9}})).unwrap();
    /// let results = p.results(&deploy("batch-nightly"), &PolicyContext::new()).unwrap();
    /// let PolicyResult::Excepted(e) = &results["replicas"] else { panic!("{results:?}") };
    /// assert_eq!((e.exceptions.as_slice(), e.word()), (["ops/batch-jobs".to_owned()].as_slice(), "skip"));
    /// let results = p.results(&deploy("web"), &PolicyContext::new()).unwrap();
    /// assert!(matches!(&results["replicas"], PolicyResult::Checked(v) if v.len() == 1));
    /// ```
    pub fn results(
        &self,
        object: &Object,
        ctx: &PolicyContext,
    ) -> Result<BTreeMap<String, PolicyResult>> {
        let _span = tracing::trace_span!("cel.results", policy = %self.name, kind = object.kind(), name = object.name()).entered();
        let mut settled = Vec::new();
        let mut violations = self
            .evaluate_into(object, ctx, &mut settled)?
            .into_iter()
            .map(Some)
            .collect::<Vec<_>>();
        let mut out: BTreeMap<String, PolicyResult> = BTreeMap::new();
        for s in settled {
            match s {
                Settled::Ran(origin, range) => {
                    let found = violations
                        .get_mut(range)
                        .into_iter()
                        .flatten()
                        .filter_map(Option::take);
                    match out.get_mut(&origin) {
                        Some(PolicyResult::Checked(v)) => v.extend(found),
                        _ => {
                            out.insert(origin, PolicyResult::Checked(found.collect()));
                        }
                    }
                }
                Settled::Excepted(origin, excepted) => {
                    out.entry(origin)
                        .or_insert(PolicyResult::Excepted(excepted));
                }
            }
        }
        Ok(out)
    }

    /// The violations of `object`; `settled` gets, for each policy run on it whose match
    /// conditions held, its origin and the range of its violations, and for each policy
    /// an exception exempted it from, its origin and the exceptions.
    fn evaluate_into(
        &self,
        object: &Object,
        ctx: &PolicyContext,
        settled: &mut Vec<Settled>,
    ) -> Result<Vec<Violation>> {
        let mut out = Vec::new();
        let namespace = object.namespace().or(ctx.namespace.as_deref());
        let mut inputs: Option<Inputs> = None;
        for binding in &self.bindings {
            let Some(policy) = self.policies.iter().find(|p| p.name == binding.policy_name) else {
                tracing::debug!(binding = %binding.name, policy = %binding.policy_name, "binding names a policy that is not loaded");
                continue;
            };
            if self.background_only && !policy.background {
                continue;
            }
            if binding
                .namespace
                .as_deref()
                .is_some_and(|own| namespace != Some(own))
            {
                continue;
            }
            if !policy.match_constraints.matches(
                object,
                namespace,
                ctx.operation,
                &self.namespaces,
                true,
            ) {
                continue;
            }
            if let Some(m) = &binding.match_resources
                && !m.matches(object, namespace, ctx.operation, &self.namespaces, false)
            {
                continue;
            }
            if inputs.is_none() {
                inputs = Some(Inputs::new(object, namespace, ctx, &self.namespaces)?);
            }
            let Some(inputs) = inputs.as_ref() else {
                continue;
            };
            let mut run = Run {
                set_name: &self.name,
                policy,
                rule: None,
                through: format!("binding {}", binding.name),
                through_source: binding.source.as_ref(),
                enforcement: binding.enforcement,
                inputs,
                exceptions: None,
            };
            // Kyverno weighs a policy's exceptions after its matchConstraints and before
            // its own matchConditions.
            if let Some(kind) = &policy.kyverno_kind {
                let held = match self.exceptions_holding(policy, kind, inputs, ctx.now) {
                    Ok(held) => held,
                    Err(e) => {
                        let from = out.len();
                        run.failure(&e, &mut out);
                        settled.push(Settled::Ran(policy.origin.clone(), from..out.len()));
                        continue;
                    }
                };
                if !held.is_empty() && !held.iter().any(|e| e.gives_values()) {
                    settled.push(Settled::Excepted(
                        policy.origin.clone(),
                        Excepted {
                            exceptions: held.iter().map(|e| e.key.clone()).collect(),
                            pass: held[0].report_pass,
                        },
                    ));
                    continue;
                }
                let allowed = |list: fn(&kyverno::Exception) -> &Vec<String>| {
                    held.iter()
                        .flat_map(|e| list(e).iter().cloned())
                        .collect::<Vec<_>>()
                };
                let value = json!({
                    "allowedImages": allowed(|e| &e.images),
                    "allowedValues": allowed(|e| &e.allowed_values),
                });
                run.exceptions = Some((json_to_cel(&value, 0)?, value));
            }
            match &policy.param_kind {
                None => {
                    let from = out.len();
                    if run.evaluate(None, &mut out) {
                        settled.push(Settled::Ran(policy.origin.clone(), from..out.len()));
                    }
                }
                Some(kind) => {
                    let Some(param_ref) = &binding.param_ref else {
                        run.failure(
                            &format!(
                                "the policy has spec.paramKind {}/{} but the binding has no spec.paramRef",
                                kind.0, kind.1
                            ),
                            &mut out,
                        );
                        continue;
                    };
                    let params = self.params_for(kind, param_ref, namespace);
                    if params.is_empty() {
                        if param_ref.deny_when_missing {
                            out.push(run.violation(
                                "params",
                                format!(
                                    "no params found for binding {}: no {}/{} object matches its paramRef (parameterNotFoundAction: Deny)",
                                    binding.name, kind.0, kind.1
                                ),
                                None,
                            ));
                        }
                        continue;
                    }
                    for param in params {
                        let value = json_to_cel(&param.to_value(), 0)?;
                        let from = out.len();
                        if run.evaluate(Some((value, param.to_value())), &mut out) {
                            settled.push(Settled::Ran(policy.origin.clone(), from..out.len()));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// The exceptions naming the Kyverno policy (`kind`, as written) that are in force
    /// at `now` and whose match conditions all hold for the object, in the order loaded.
    /// As in Kyverno, a condition that fails or is not a boolean is an error under the
    /// policy's `failurePolicy`: with `Fail` the policy reports it (`Err`), with `Ignore`
    /// that exception does not apply. A condition that is false wins over an error.
    fn exceptions_holding(
        &self,
        policy: &AdmissionPolicy,
        kind: &str,
        inputs: &Inputs,
        now: jiff::Timestamp,
    ) -> std::result::Result<Vec<&kyverno::Exception>, String> {
        let mut held = Vec::new();
        let mut named = self
            .exceptions
            .iter()
            .filter(|e| e.applies_to(kind, &policy.origin, now))
            .peekable();
        if named.peek().is_none() {
            return Ok(held);
        }
        let context = inputs.context();
        let bindings = cost::Bindings::new(inputs.sized());
        for exception in named {
            let mut budget = cost::MATCH_CONDITIONS_BUDGET as f64;
            let mut errors = Vec::new();
            let mut holds = true;
            for (name, condition) in &exception.match_conditions {
                match run(
                    condition,
                    &context,
                    &bindings,
                    &mut budget,
                    cost::MATCH_CONDITIONS_BUDGET,
                ) {
                    Outcome::Value(CelValue::Bool(true)) => {}
                    Outcome::Value(CelValue::Bool(false)) => {
                        holds = false;
                        break;
                    }
                    Outcome::Value(other) => errors.push(format!(
                        "match condition {name:?} ({}) returned {other:?}, not a boolean",
                        condition.field
                    )),
                    Outcome::Error(e) => errors.push(format!("match condition {name:?}: {e}")),
                }
            }
            if !holds {
                continue;
            }
            if errors.is_empty() {
                held.push(exception);
            } else if policy.fail_closed {
                return Err(format!(
                    "{}{}: {}",
                    at(exception.source.as_ref()),
                    exception.label,
                    errors.join("; ")
                ));
            } else {
                tracing::debug!(exception = %exception.key, errors = ?errors, "exception not applied under failurePolicy: Ignore");
            }
        }
        Ok(held)
    }

    fn params_for(
        &self,
        (api_version, kind): &(String, String),
        param_ref: &ParamRef,
        namespace: Option<&str>,
    ) -> Vec<&Object> {
        self.params
            .iter()
            .filter(|p| p.api_version() == api_version && p.kind() == kind)
            .filter(|p| param_ref.name.as_deref().is_none_or(|n| p.name() == n))
            .filter(|p| match (&param_ref.namespace, p.namespace()) {
                (Some(want), got) => got == Some(want.as_str()),
                (None, None) => true,
                (None, Some(got)) => Some(got) == namespace,
            })
            .filter(|p| {
                param_ref
                    .selector
                    .as_ref()
                    .is_none_or(|s| s.matches(&p.labels()))
            })
            .collect()
    }
}

/// What became of one policy run on an object (see [`CelPolicy::results`]).
enum Settled {
    /// It ran: its origin and the range of its violations.
    Ran(String, std::ops::Range<usize>),
    /// Exceptions exempted the object from it.
    Excepted(String, Excepted),
}

/// What one policy did with an object, as [`CelPolicy::results`] reports it.
///
/// ```
/// use idp_policy::cel::{Excepted, PolicyResult};
/// let r = PolicyResult::Excepted(Excepted { exceptions: vec!["ops/batch".into()], pass: false });
/// assert_eq!(r.word(), "skip");
/// assert_eq!(PolicyResult::Checked(Vec::new()).word(), "pass");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PolicyResult {
    /// It was checked: its violations (none: it passed). Its errors are violations
    /// whose rule ends in `/error`.
    Checked(Vec<Violation>),
    /// A Kyverno `PolicyException` exempted the object: the policy was not checked.
    Excepted(Excepted),
}

impl PolicyResult {
    /// The word a Kyverno report gives it: `pass`, `fail`, `error` (every violation is
    /// an evaluation error), or for an exception `skip` (`pass` with
    /// `reportResult: pass`).
    ///
    /// ```
    /// use idp_core::Violation;
    /// use idp_policy::cel::PolicyResult;
    /// let v = Violation::new("kyverno", "replicas/validations[0]", "too many");
    /// assert_eq!(PolicyResult::Checked(vec![v]).word(), "fail");
    /// ```
    pub fn word(&self) -> &'static str {
        match self {
            Self::Checked(v) if v.is_empty() => "pass",
            Self::Checked(v) if v.iter().all(|v| v.rule.ends_with("/error")) => "error",
            Self::Checked(_) => "fail",
            Self::Excepted(e) => e.word(),
        }
    }
}

/// Kyverno `PolicyException`s exempted an object from a policy.
///
/// ```
/// let e = idp_policy::cel::Excepted { exceptions: vec!["ops/batch".into()], pass: true };
/// assert_eq!(e.word(), "pass");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excepted {
    /// The exceptions whose match conditions held (`namespace/name`), in the order
    /// loaded.
    pub exceptions: Vec<String>,
    /// The first of them says `reportResult: pass`: the policy is reported as passed
    /// rather than skipped.
    pub pass: bool,
}

impl Excepted {
    /// `skip`, or `pass` with `reportResult: pass`.
    ///
    /// ```
    /// let e = idp_policy::cel::Excepted { exceptions: vec!["allow-web".into()], pass: false };
    /// assert_eq!(e.word(), "skip");
    /// ```
    pub fn word(&self) -> &'static str {
        if self.pass { "pass" } else { "skip" }
    }
}

/// The CEL values every expression of one object sees.
struct Inputs {
    object_json: Value,
    namespace_json: Option<Value>,
    request_json: Value,
    object: CelValue,
    request: CelValue,
    namespace_object: Option<CelValue>,
}

impl Inputs {
    fn new(
        object: &Object,
        namespace: Option<&str>,
        ctx: &PolicyContext,
        namespaces: &BTreeMap<String, Object>,
    ) -> Result<Self> {
        let object_json = object.to_value();
        let (group, version) = split_api_version(object.api_version());
        let request_json = json!({
            "operation": operation_name(ctx.operation),
            "name": object.name(),
            "namespace": namespace.unwrap_or(""),
            "dryRun": ctx.dry_run,
            "kind": {"group": group, "version": version, "kind": object.kind()},
            "resource": {"group": group, "version": version, "resource": resource_for_kind(object.kind())},
            "userInfo": {"username": ctx.user.clone().unwrap_or_default()},
        });
        let namespace_json = namespace
            .and_then(|ns| namespaces.get(ns))
            .map(Object::to_value);
        let converted = json_to_cel(&object_json, 0)
            .map_err(|e| e.context(format!("{} {}", object.kind(), object.name())))?;
        Ok(Self {
            object: converted,
            request: json_to_cel(&request_json, 0)?,
            namespace_object: namespace_json
                .as_ref()
                .map(|n| json_to_cel(n, 0))
                .transpose()?,
            object_json,
            namespace_json,
            request_json,
        })
    }

    /// A context with `object`, `oldObject` (`null`), `request` and `namespaceObject`
    /// (when the namespace was supplied).
    fn context(&self) -> Context<'static> {
        let mut context = Context::default();
        context.register_all();
        context.add_variable_from_value("object", self.object.clone());
        context.add_variable_from_value("oldObject", CelValue::Null);
        context.add_variable_from_value("request", self.request.clone());
        if let Some(ns) = &self.namespace_object {
            context.add_variable_from_value("namespaceObject", ns.clone());
        }
        context
    }

    /// The JSON of what [`Self::context`] binds, to size the paths that read it.
    fn sized(&self) -> Vec<(&'static str, &Value)> {
        let mut sized = vec![
            ("object", &self.object_json),
            ("request", &self.request_json),
        ];
        if let Some(ns) = &self.namespace_json {
            sized.push(("namespaceObject", ns));
        }
        sized
    }
}

/// One evaluation of a policy through a binding (or of a Gatekeeper template for one
/// constraint).
struct Run<'a> {
    /// The `policy` of the violations.
    set_name: &'a str,
    policy: &'a AdmissionPolicy,
    /// The rule of every violation, when fixed (`K8sRequiredLabels/need-team`); otherwise
    /// `<policy>/<validations[i]>`.
    rule: Option<&'a str>,
    /// What put the policy in force, for error messages: `binding max-replicas`.
    through: String,
    through_source: Option<&'a Source>,
    enforcement: Enforcement,
    inputs: &'a Inputs,
    /// For a Kyverno policy, what CEL sees as `exceptions` (`allowedImages`,
    /// `allowedValues`), as CEL and as JSON.
    exceptions: Option<(CelValue, Value)>,
}

enum Outcome {
    Value(CelValue),
    Error(String),
}

impl Run<'_> {
    fn violation(&self, rule: &str, message: String, path: Option<String>) -> Violation {
        let rule = match self.rule {
            Some(fixed) => fixed.to_owned(),
            None => format!("{}/{rule}", self.policy.name),
        };
        let mut v = Violation::new(self.set_name.to_owned(), rule, message)
            .with_enforcement(self.enforcement);
        if let Some(p) = path {
            v = v.with_path(p);
        }
        v
    }

    /// An error under `failurePolicy`.
    fn failure(&self, error: &str, out: &mut Vec<Violation>) {
        if self.policy.fail_closed {
            out.push(self.violation(
                "error",
                format!(
                    "{}{} ({}): {error} (failurePolicy: Fail)",
                    at(self.policy.source.as_ref().or(self.through_source)),
                    self.policy.label,
                    self.through
                ),
                None,
            ));
        } else {
            tracing::debug!(policy = %self.policy.name, error, "ignored under failurePolicy: Ignore");
        }
    }

    /// Run the policy; `false` when its match conditions leave the object out.
    fn evaluate(&self, params: Option<(CelValue, Value)>, out: &mut Vec<Violation>) -> bool {
        let (params_cel, params_json) = match params {
            Some((c, j)) => (c, Some(j)),
            None => (CelValue::Null, None),
        };
        let null = Value::Null;
        let mut sized = self.inputs.sized();
        sized.push(("params", params_json.as_ref().unwrap_or(&null)));
        let mut context = self.inputs.context();
        context.add_variable_from_value("params", params_cel);
        if let Some((cel, json)) = &self.exceptions {
            sized.push(("exceptions", json));
            context.add_variable_from_value("exceptions", cel.clone());
        }
        let mut bindings = cost::Bindings::new(sized.clone());
        let mut variables: HashMap<Key, CelValue> = HashMap::new();
        context.add_variable_from_value("variables", map_value(&variables));

        let mut match_budget = cost::MATCH_CONDITIONS_BUDGET as f64;
        for (name, condition) in &self.policy.match_conditions {
            match run(
                condition,
                &context,
                &bindings,
                &mut match_budget,
                cost::MATCH_CONDITIONS_BUDGET,
            ) {
                Outcome::Value(CelValue::Bool(true)) => {}
                Outcome::Value(CelValue::Bool(false)) => return false,
                Outcome::Value(other) => {
                    self.failure(
                        &format!(
                            "match condition {name:?} ({}) returned {other:?}, not a boolean",
                            condition.field
                        ),
                        out,
                    );
                    return true;
                }
                Outcome::Error(e) => {
                    self.failure(&format!("match condition {name:?}: {e}"), out);
                    return true;
                }
            }
        }

        let mut budget = cost::RUNTIME_BUDGET as f64;
        let mut variable_errors: Vec<(String, String)> = Vec::new();
        // The variables' values as JSON, so that the cost of a path through one
        // (`variables.containers.all(...)`) is sized by what it holds, as `object.…` is.
        let mut sized_variables = Value::Object(serde_json::Map::new());
        for (name, expression) in &self.policy.variables {
            match run(
                expression,
                &context,
                &bindings,
                &mut budget,
                cost::RUNTIME_BUDGET,
            ) {
                Outcome::Value(v) => {
                    if let Value::Object(map) = &mut sized_variables {
                        map.insert(name.clone(), cel_to_json(&v, 0));
                    }
                    variables.insert(Key::String(Arc::new(name.clone())), v);
                    context.add_variable_from_value("variables", map_value(&variables));
                    let mut with_variables = sized.clone();
                    with_variables.push(("variables", &sized_variables));
                    bindings = cost::Bindings::new(with_variables);
                }
                Outcome::Error(e) => variable_errors.push((name.clone(), e)),
            }
        }

        for (i, validation) in self.policy.validations.iter().enumerate() {
            let rule = format!("validations[{i}]");
            if let Some((name, e)) = variable_errors.iter().find(|(name, _)| {
                validation
                    .expression
                    .text
                    .contains(&format!("variables.{name}"))
            }) {
                self.failure(
                    &format!(
                        "variable {name:?} used by {}: {e}",
                        validation.expression.field
                    ),
                    out,
                );
                continue;
            }
            match run(
                &validation.expression,
                &context,
                &bindings,
                &mut budget,
                cost::RUNTIME_BUDGET,
            ) {
                Outcome::Value(CelValue::Bool(true)) => {}
                Outcome::Value(CelValue::Bool(false)) => {
                    let message = validation
                        .message_expression
                        .as_ref()
                        .and_then(|m| {
                            match run(m, &context, &bindings, &mut budget, cost::RUNTIME_BUDGET) {
                                Outcome::Value(CelValue::String(s)) if !s.trim().is_empty() => {
                                    Some(s.trim().to_owned())
                                }
                                _ => None,
                            }
                        })
                        .or_else(|| validation.message.clone())
                        .unwrap_or_else(|| {
                            format!("failed expression: {}", validation.expression.text)
                        });
                    let message = match &validation.reason {
                        Some(reason) if reason != "Invalid" => {
                            format!("{message} (reason: {reason})")
                        }
                        _ => message,
                    };
                    out.push(self.violation(&rule, message, validation.field_path.clone()));
                }
                Outcome::Value(other) => self.failure(
                    &format!(
                        "{} returned {other:?}, not a boolean",
                        validation.expression.field
                    ),
                    out,
                ),
                Outcome::Error(e) => self.failure(&e, out),
            }
        }
        true
    }
}

/// Check the cost bound, then run.
fn run(
    expression: &Expression,
    context: &Context<'_>,
    bindings: &cost::Bindings<'_>,
    budget: &mut f64,
    budget_limit: u64,
) -> Outcome {
    let (estimate, _) = cost::estimate(expression.program.expression(), bindings);
    if estimate > cost::PER_CALL_LIMIT as f64 {
        return Outcome::Error(format!(
            "{} ({}) has an estimated cost of {estimate:.0} over this input, more than the per-expression limit of {} that Kubernetes applies; iterate over fewer elements or avoid nested comprehensions",
            expression.field,
            expression.text,
            cost::PER_CALL_LIMIT
        ));
    }
    if estimate > *budget {
        return Outcome::Error(format!(
            "{} ({}) would exceed the remaining cost budget of this evaluation ({budget_limit} in all): estimated {estimate:.0}, {:.0} left",
            expression.field, expression.text, *budget
        ));
    }
    *budget -= estimate;
    match expression.program.execute(context) {
        Ok(v) => Outcome::Value(v),
        Err(e) => Outcome::Error(format!("{} ({}): {e}", expression.field, expression.text)),
    }
}

fn map_value(entries: &HashMap<Key, CelValue>) -> CelValue {
    CelValue::Map(Map {
        map: Arc::new(entries.clone()),
    })
}

/// A CEL value as JSON, to size the paths that read it: lists, maps and strings keep
/// their lengths; what JSON cannot hold (durations, functions…) becomes `null`.
fn cel_to_json(value: &CelValue, depth: usize) -> Value {
    if depth > MAX_DEPTH {
        return Value::Null;
    }
    match value {
        CelValue::List(items) => {
            Value::Array(items.iter().map(|v| cel_to_json(v, depth + 1)).collect())
        }
        CelValue::Map(m) => Value::Object(
            m.map
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Key::String(s) => s.to_string(),
                        Key::Int(i) => i.to_string(),
                        Key::Uint(u) => u.to_string(),
                        Key::Bool(b) => b.to_string(),
                    };
                    (key, cel_to_json(v, depth + 1))
                })
                .collect(),
        ),
        CelValue::String(s) => Value::String(s.to_string()),
        CelValue::Bytes(b) => Value::String(String::from_utf8_lossy(b).into_owned()),
        CelValue::Int(i) => json!(i),
        CelValue::UInt(u) => json!(u),
        CelValue::Float(f) => json!(f),
        CelValue::Bool(b) => Value::Bool(*b),
        _ => Value::Null,
    }
}

/// JSON to CEL: integers are `int` (or `uint` above `i64::MAX`), other numbers `double`.
fn json_to_cel(value: &Value, depth: usize) -> Result<CelValue> {
    if depth > MAX_DEPTH {
        return Err(Error::invalid_input(format!(
            "the object is nested deeper than {MAX_DEPTH} levels; CEL policies refuse such input"
        )));
    }
    Ok(match value {
        Value::Null => CelValue::Null,
        Value::Bool(b) => CelValue::Bool(*b),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                CelValue::Int(i)
            } else if let Some(u) = n.as_u64() {
                CelValue::UInt(u)
            } else {
                CelValue::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Value::String(s) => CelValue::String(Arc::new(s.clone())),
        Value::Array(items) => CelValue::List(Arc::new(
            items
                .iter()
                .map(|v| json_to_cel(v, depth + 1))
                .collect::<Result<Vec<_>>>()?,
        )),
        Value::Object(map) => {
            let mut entries = HashMap::with_capacity(map.len());
            for (k, v) in map {
                entries.insert(Key::String(Arc::new(k.clone())), json_to_cel(v, depth + 1)?);
            }
            CelValue::Map(Map {
                map: Arc::new(entries),
            })
        }
    })
}

impl Policy for CelPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn evaluate(&self, object: &Object, ctx: &PolicyContext) -> Vec<Violation> {
        match self.try_evaluate(object, ctx) {
            Ok(v) => v,
            Err(e) => vec![Violation::new(self.name.clone(), "error", e.report())],
        }
    }
}

/// CEL validations outside a `ValidatingAdmissionPolicy`, compiled: the
/// `K8sNativeValidation` code of a Gatekeeper `ConstraintTemplate`, or a Kyverno rule's
/// `validate.cel`. The same CEL as a policy, run for an object already matched, with
/// `params` given by the caller.
///
/// For Gatekeeper, its two variables come first: `variables.params` (the constraint's
/// `spec.parameters`, `{}` when it has none, as Rego's `input.parameters`) and
/// `variables.anyObject` (the object reviewed).
#[derive(Debug, Clone)]
pub(crate) struct NativeValidation {
    policy: AdmissionPolicy,
}

impl NativeValidation {
    /// Compile the `source` mapping found at `field` of what `label` names
    /// (`ConstraintTemplate k8srequiredlabels`); its validations are under `list_key`
    /// (`validations`, or Kyverno's `expressions`); `given` variables come first.
    pub(crate) fn compile(
        label: &str,
        source: &Value,
        field: &str,
        list_key: &str,
        given: &[(&str, &str)],
        from: Option<Source>,
    ) -> Result<Self> {
        let here = at(from.as_ref());
        if !source.is_object() {
            return Err(Error::invalid_input(format!(
                "{here}{label}: {field} is not a mapping: give it {list_key} (and optionally variables, matchConditions, failurePolicy)"
            )));
        }
        let policy = AdmissionPolicy::parse(
            source,
            field,
            list_key,
            label.to_owned(),
            label.to_owned(),
            given,
            from,
        )?;
        if policy.validations.is_empty() {
            return Err(Error::invalid_input(format!(
                "{here}{label}: {field} has no {list_key}: list the CEL expressions that must hold"
            )));
        }
        Ok(Self { policy })
    }

    /// Run for one object (already matched), pushing a violation per failed validation
    /// with `rule` and `enforcement`; `through` names what applied it in error messages
    /// (`constraint K8sRequiredLabels/need-team`); `params` is what CEL sees as `params`
    /// (`null` without). An object CEL cannot take (nested too deep) is an error.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn evaluate(
        &self,
        set_name: &str,
        rule: &str,
        through: &str,
        params: Option<&Value>,
        enforcement: Enforcement,
        object: &Object,
        ctx: &PolicyContext,
        out: &mut Vec<Violation>,
    ) -> Result<()> {
        let namespace = object.namespace().or(ctx.namespace.as_deref());
        let inputs = Inputs::new(object, namespace, ctx, &BTreeMap::new())?;
        let run = Run {
            set_name,
            policy: &self.policy,
            rule: Some(rule),
            through: through.to_owned(),
            through_source: None,
            enforcement,
            inputs: &inputs,
            exceptions: None,
        };
        let params = match params {
            Some(p) => Some((json_to_cel(p, 0)?, p.clone())),
            None => None,
        };
        let _ = run.evaluate(params, out);
        Ok(())
    }
}
