//! Kyverno `ClusterPolicy` and `Policy` (kyverno.io/v1) validate, mutate and generate
//! rules, evaluated client-side.
//!
//! Start with [`KyvernoPolicy::from_yaml`]: give it the policies as written for a
//! cluster; it checks objects the way Kyverno's admission webhook would:
//!
//! - **match / exclude**: `any` and `all` lists of resource filters (or the older single
//!   `resources` block) with `kinds` (`Kind`, `Version/Kind`, `Group/Version/Kind`,
//!   `*` wildcards), `names` and `namespaces` (`*`/`?` wildcards), `annotations`,
//!   `selector`, `namespaceSelector` (labels of the `Namespace` objects you supply) and
//!   `operations`. A namespaced `Policy` applies only in its own namespace.
//! - **validate**: `pattern` and `anyPattern` (wildcards, operators such as `>=2`,
//!   `!default`, `1-10`, `a | b`, quantities, and the anchors `(key)`, `=(key)`,
//!   `X(key)`, `^(key)`, `<(key)`), `podSecurity` (`level`, `version`, `exclude` with
//!   `controlName`, `images`, `restrictedField`, `values`: the
//!   [native Pod Security Standards](crate::pss)), and `cel` (`expressions`,
//!   `variables`; feature `cel`).
//! - **auto-gen**: a rule that matches only Pods also applies to the Pod template of
//!   `DaemonSet`, `Deployment`, `Job`, `StatefulSet`, `ReplicaSet` and
//!   `ReplicationController` (rule `autogen-<name>`, pattern under `spec.template`) and
//!   of `CronJob` (`autogen-cronjob-<name>`, under `spec.jobTemplate.spec.template`), as
//!   Kyverno generates them. The `pod-policies.kyverno.io/autogen-controllers`
//!   annotation narrows the list (`none` turns it off), and a rule whose filters use
//!   `names`, `selector` or `annotations` is not auto-generated, as in Kyverno. In an
//!   auto-generated rule, JMESPath and CEL expressions see the Pod template as the
//!   object (its `metadata` and `spec`), as Kyverno's rewriting of
//!   `object.spec` to `object.spec.template.spec` gives.
//! - **exceptions**: `PolicyException` (kyverno.io/v2) documents waive the rules they
//!   name (`ruleNames` with `*` wildcards; `autogen-<rule>` for controllers, as in
//!   Kyverno; `<namespace>/<name>` for a namespaced Policy) for the objects their
//!   `match`/`exclude` select. With `podSecurity` entries, they only exclude those
//!   controls from the podSecurity rules they name.
//! - **actions**: `validate.failureAction` of the rule, else the policy's
//!   `validationFailureAction` (`Audit` by default): `Enforce` denies, `Audit` reports.
//!   `validationFailureActionOverrides` (or the rule's `failureActionOverrides`)
//!   change it per namespace.
//!
//! Each failure is one violation: policy = this set's name, rule = `<policy>/<rule>`,
//! the rule's `message` followed by why the object failed (in parentheses), and the JSON path
//! of the offending field. `{{request.object.<path>}}`, `{{request.operation}}` and
//! `{{request.namespace}}` in messages are filled in.
//!
//! - **foreach**: `validate.foreach` entries (`list` in JMESPath, then `pattern`,
//!   `anyPattern`, `deny` or a nested `foreach`, with `preconditions` and `elementScope`),
//!   `element` and `elementIndex` in expressions; findings point at the element
//!   (`spec.containers[1].image`) when the list is a plain path.
//! - **conditions**: a rule's `preconditions` and `validate.deny.conditions` (`any`/`all`
//!   of `key`, `operator`, `value`) with `{{ }}` JMESPath variables over `request`
//!   (`object`, `operation`, `namespace`, `name`, `kind`, `userInfo`) and every
//!   operator (`Equals`, `AnyIn`, `AllNotIn`, `GreaterThan` on quantities,
//!   `DurationLessThan`…; wildcards in values). In an auto-generated rule,
//!   `request.object.spec` and `.metadata` are the Pod template's, as in the rules Kyverno
//!   generates. Kyverno's common JMESPath functions are there beside the standard ones
//!   (`to_upper`, `split`, `regex_match`, `pattern_match`, `label_match`,
//!   `base64_decode`, `parse_yaml`…); an expression calling one that is not (the
//!   `time_*` family, arithmetic on quantities) is reported as an error. `deny: {}`
//!   denies whatever the rule matches.
//!
//! - **mutate** ([`KyvernoPolicy::mutate_results`], and [`Mutation`] for the whole set):
//!   `patchStrategicMerge` with Kubernetes' merge keys (`containers` by `name`,
//!   `volumeMounts` by `mountPath`…), `$patch` directives and the mutate anchors
//!   (conditional `(key)`, which in a list selects the elements it patches;
//!   add-if-not-present `+(key)`; global `<(key)`), `patchesJson6902` (RFC 6902, with
//!   Kyverno's additions: missing parents are created, `-`/`-1` append, removing a
//!   missing path is a no-op) and `foreach` (`list`, `order`, nested loops,
//!   `elementIndex0`…). `{{ }}` variables are filled in from the object as the rules
//!   before left it, innermost first. Rules apply in order, each to the result of the
//!   ones before (cascading), and strategic merge rules on Pods are auto-generated for
//!   controllers as validate rules are (JSON patches are not, as in Kyverno). Mutation
//!   happens before validation: [`KyvernoPolicy::results`] and [`Policy::evaluate`]
//!   check the validate rules against the mutated object, as the admission webhook does.
//!   A failing mutate rule denies, unless the policy's `failurePolicy` is `Ignore`.
//!   Where the mutate rules have already run — the validating webhook after the
//!   mutating one, a check after [`Mutation::mutate`] — use [`ValidateRules`], which
//!   checks the object as given: mutating it a second time would validate a JSON patch
//!   that appends to a list on a list appended twice.
//!
//! - **variables and context**: `{{ }}` variables are filled in wherever Kyverno fills
//!   them — messages, patterns, conditions, patches — over `request`, `images` (each
//!   container's image split into `registry`, `path`, `name`, `tag`, `digest`,
//!   `reference`) and the rule's `context`: `variable` entries (`value`, `jmesPath`,
//!   `default`) and `configMap` entries, read from the ConfigMaps given with the
//!   policies (evaluation reads no cluster; one that was not given is an error naming
//!   it; [`cluster::ClusterPolicies`] reads those the policies kept in a cluster name).
//!
//! - **values** ([`Values`], [`KyvernoPolicy::with_values`]): what a Kyverno CLI test's
//!   values file mocks — variables from `globalValues`, a resource's values and a rule's
//!   values (a `context` entry whose name they give keeps that value, which is how an
//!   `apiCall`, `globalReference` or `imageRegistry` entry gets one), `request.operation`
//!   and the namespace labels of `namespaceSelector`.
//!
//! - **generate** ([`KyvernoPolicy::generate_results`]): the objects a generate rule
//!   creates for a trigger it matches (match/exclude, preconditions, context and
//!   exceptions as for other rules; never auto-generated for controllers, as in
//!   Kyverno), with `apiVersion`, `kind`, `name` and `namespace` (variables allowed) and
//!   one of `data` (the content, its variables filled in as in mutate patches),
//!   `clone` (`namespace`, `name`: a copy of an object given with the policies) or
//!   `cloneList` (`namespace`, `kinds`, `selector`: a copy of every given object that
//!   matches), or `foreach` (entries of `list`, `context`, `preconditions` and the
//!   fields above, one generation per element, with `element` and `elementIndex`; a
//!   foreach that generates nothing is a skip). Objects of any kind but the policy kinds can be given with the policies
//!   for that; a clone source that was not given is an error naming it. Generated
//!   objects carry the labels Kyverno puts on them (`app.kubernetes.io/managed-by:
//!   kyverno`, `generate.kyverno.io/policy-name`, `rule-name`, `trigger-kind`…).
//!   `synchronize`, `orphanDownstreamOnPolicyDelete` and `generateExisting` are accepted
//!   and change nothing here (they govern what Kyverno does later in the cluster).
//!   [`KyvernoPolicy::results`], [`KyvernoPolicy::apply`] and
//!   [`KyvernoPolicy::mutate_results`] leave generate rules alone.
//!
//! `context` entries that need the cluster or a registry (`apiCall`, `imageRegistry`,
//! `globalReference`; unless [`Values`] given first may give their value), `verifyImages` rules, nested `generate.foreach` entries and any
//! other `generate` field not listed above, mutate `targets` (mutating existing resources) and exceptions'
//! `conditions` are refused when loaded, naming the rule, rather than skipped: skipping
//! one would pass objects Kyverno denies. A `validate.cel` with
//! `paramKind` is refused too (write a `ValidatingAdmissionPolicy` with its binding
//! instead).
//!
//! ```
//! use idp_core::{Object, Policy, PolicyContext};
//! use idp_policy::kyverno::KyvernoPolicy;
//!
//! let yaml = r#"
//! apiVersion: kyverno.io/v1
//! kind: ClusterPolicy
//! metadata: {name: require-limits}
//! spec:
//!   validationFailureAction: Enforce
//!   rules:
//!     - name: memory-limit
//!       match: {any: [{resources: {kinds: [Pod]}}]}
//!       validate:
//!         message: "Containers need a memory limit."
//!         pattern:
//!           spec:
//!             containers:
//!               - resources: {limits: {memory: "?*"}}
//! "#;
//! let policy = KyvernoPolicy::from_yaml("kyverno", yaml, None).unwrap();
//! let deploy = Object::from_value(serde_json::json!({
//!     "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
//!     "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:1"}]}}}})).unwrap();
//! let v = policy.evaluate(&deploy, &PolicyContext::new());
//! assert_eq!(v[0].rule, "require-limits/autogen-memory-limit");
//! assert_eq!(v[0].path.as_deref(), Some("spec.template.spec.containers[0].resources"));
//! assert!(v[0].message.starts_with("Containers need a memory limit."));
//! ```

pub mod cluster;
mod conditions;
mod context;
mod foreach;
mod functions;
mod generate;
mod jsonpatch;
mod mutate;
mod overlay;
mod pattern;
mod values;

pub use values::Values;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use idp_core::manifest::Source;
use idp_core::model::Enforcement;
use idp_core::ports::Mutation;
use idp_core::{Error, ManifestSet, Object, Policy, PolicyContext, Result, Violation};
use jmespath::Rcvar;
use serde_json::{Value, json};

use crate::Swappable;
use crate::matching::LabelSelector;
use crate::names::{operation_name, source_prefix as at, split_api_version};
use crate::pss::{ControlExclusion, Level, PodSecurity, PssVersion};

const GROUP: &str = "kyverno.io";
/// The annotation naming the controllers rules are auto-generated for.
const AUTOGEN_ANNOTATION: &str = "pod-policies.kyverno.io/autogen-controllers";
/// The controllers whose Pod template sits at `spec.template`.
const TEMPLATE_CONTROLLERS: [&str; 6] = [
    "DaemonSet",
    "Deployment",
    "Job",
    "StatefulSet",
    "ReplicaSet",
    "ReplicationController",
];

/// `*` and `?` wildcards, as Kyverno matches names, namespaces and annotations.
fn glob(pattern: &str, text: &str) -> bool {
    pattern::wildcard(pattern, text)
}

fn strings(value: Option<&Value>, field: &str, here: &str) -> Result<Vec<String>> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str().map(str::to_owned).ok_or_else(|| {
                    Error::invalid_input(format!("{here}{field}: {i} is not a string"))
                })
            })
            .collect(),
        Some(other) => Err(Error::invalid_input(format!(
            "{here}{field}: {other} is not a list of strings"
        ))),
    }
}

fn selector(value: Option<&Value>, field: &str, here: &str) -> Result<Option<LabelSelector>> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v.clone()).map(Some).map_err(|e| {
            Error::invalid_input(format!("{here}{field} is not a label selector: {e}"))
        }),
    }
}

/// An action word: `Enforce`/`enforce` or `Audit`/`audit`.
fn action(word: &str, field: &str, here: &str) -> Result<Enforcement> {
    if word.eq_ignore_ascii_case("enforce") {
        Ok(Enforcement::Deny)
    } else if word.eq_ignore_ascii_case("audit") {
        Ok(Enforcement::Audit)
    } else {
        Err(Error::invalid_input(format!(
            "{here}{field} {word:?} is not Enforce or Audit"
        )))
    }
}

/// One `kinds` entry: `Kind`, `Version/Kind` or `Group/Version/Kind`.
#[derive(Debug, Clone)]
struct KindSpec {
    group: Option<String>,
    version: Option<String>,
    kind: String,
}

impl KindSpec {
    fn parse(text: &str) -> Self {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [group, version, kind, ..] => Self {
                group: Some((*group).to_owned()),
                version: Some((*version).to_owned()),
                kind: (*kind).to_owned(),
            },
            [version, kind] => Self {
                group: None,
                version: Some((*version).to_owned()),
                kind: (*kind).to_owned(),
            },
            _ => Self {
                group: None,
                version: None,
                kind: text.to_owned(),
            },
        }
    }

    fn matches(&self, group: &str, version: &str, kind: &str) -> bool {
        glob(&self.kind, kind)
            && self.version.as_deref().is_none_or(|v| glob(v, version))
            && self.group.as_deref().is_none_or(|g| glob(g, group))
    }

    fn is_pod(&self) -> bool {
        self.kind == "Pod" && self.group.as_deref().is_none_or(str::is_empty)
    }
}

/// One resource filter (`match.any[i]`, `match.all[i]`, or the older `match`).
#[derive(Debug, Clone, Default)]
struct Filter {
    kinds: Vec<KindSpec>,
    names: Vec<String>,
    namespaces: Vec<String>,
    annotations: BTreeMap<String, String>,
    selector: Option<LabelSelector>,
    namespace_selector: Option<LabelSelector>,
    operations: Vec<String>,
}

impl Filter {
    fn from_value(value: &Value, field: &str, here: &str) -> Result<Self> {
        for unsupported in ["subjects", "roles", "clusterRoles"] {
            if value.get(unsupported).is_some_and(|v| !v.is_null()) {
                return Err(Error::invalid_input(format!(
                    "{here}{field}.{unsupported}: matching on the requesting user is not supported client-side; match on resources only"
                )));
            }
        }
        let resources = value.get("resources").cloned().unwrap_or_else(|| json!({}));
        let r = &resources;
        let f = |key: &str| format!("{field}.resources.{key}");
        let mut names = strings(r.get("names"), &f("names"), here)?;
        if let Some(name) = r.get("name").and_then(Value::as_str) {
            names.push(name.to_owned());
        }
        let annotations = match r.get("annotations") {
            None | Some(Value::Null) => BTreeMap::new(),
            Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
                Error::invalid_input(format!(
                    "{here}{}: not a map of strings: {e}",
                    f("annotations")
                ))
            })?,
        };
        Ok(Self {
            kinds: strings(r.get("kinds"), &f("kinds"), here)?
                .iter()
                .map(|k| KindSpec::parse(k))
                .collect(),
            names,
            namespaces: strings(r.get("namespaces"), &f("namespaces"), here)?,
            annotations,
            selector: selector(r.get("selector"), &f("selector"), here)?,
            namespace_selector: selector(
                r.get("namespaceSelector"),
                &f("namespaceSelector"),
                here,
            )?,
            operations: strings(r.get("operations"), &f("operations"), here)?,
        })
    }

    /// Whether the filter selects `object`. With `as_pod`, the kinds are checked as if
    /// the object were a Pod (an auto-generated rule on a Pod controller).
    fn matches(&self, object: &Object, request: &Request<'_>, as_pod: bool) -> bool {
        let (group, version) = split_api_version(object.api_version());
        let kind_ok = self.kinds.is_empty()
            || self.kinds.iter().any(|k| {
                if as_pod {
                    k.matches("", "v1", "Pod")
                } else {
                    k.matches(group, version, object.kind())
                }
            });
        let name_ok = self.names.is_empty() || self.names.iter().any(|n| glob(n, object.name()));
        let namespace = request.namespace;
        let namespace_ok = self.namespaces.is_empty()
            || (object.kind() == "Namespace"
                && self.namespaces.iter().any(|n| glob(n, object.name())))
            || namespace.is_some_and(|ns| self.namespaces.iter().any(|n| glob(n, ns)));
        let annotations_ok = self.annotations.is_empty() || {
            let have = object.annotations();
            self.annotations
                .iter()
                .all(|(k, v)| have.iter().any(|(hk, hv)| glob(k, hk) && glob(v, hv)))
        };
        let selector_ok = self
            .selector
            .as_ref()
            .is_none_or(|s| s.matches(&object.labels()));
        let namespace_selector_ok = self.namespace_selector.as_ref().is_none_or(|s| {
            let empty = BTreeMap::new();
            let labels = namespace
                .and_then(|ns| request.namespaces.get(ns))
                .unwrap_or(&empty);
            s.matches(labels)
        });
        let operation_ok = self.operations.is_empty()
            || self
                .operations
                .iter()
                .any(|o| o.eq_ignore_ascii_case(request.operation));
        kind_ok
            && name_ok
            && namespace_ok
            && annotations_ok
            && selector_ok
            && namespace_selector_ok
            && operation_ok
    }

    /// Filters that do not carry over to Pod controllers (Kyverno skips auto-gen).
    fn blocks_autogen(&self) -> bool {
        !self.names.is_empty() || self.selector.is_some() || !self.annotations.is_empty()
    }
}

/// `match` or `exclude`: any of / all of the filters.
#[derive(Debug, Clone, Default)]
struct Matcher {
    any: Vec<Filter>,
    all: Vec<Filter>,
}

impl Matcher {
    fn from_value(value: Option<&Value>, field: &str, here: &str) -> Result<Option<Self>> {
        let Some(value) = value.filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let list = |key: &str| -> Result<Vec<Filter>> {
            value
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .enumerate()
                .map(|(i, f)| Filter::from_value(f, &format!("{field}.{key}[{i}]"), here))
                .collect()
        };
        let mut m = Self {
            any: list("any")?,
            all: list("all")?,
        };
        let legacy = value
            .get("resources")
            .is_some_and(|r| r.as_object().is_some_and(|r| !r.is_empty()));
        if legacy {
            m.all.push(Filter::from_value(value, field, here)?);
        }
        if m.any.is_empty() && m.all.is_empty() {
            return Ok(None);
        }
        Ok(Some(m))
    }

    fn matches(&self, object: &Object, request: &Request<'_>, as_pod: bool) -> bool {
        (self.any.is_empty() || self.any.iter().any(|f| f.matches(object, request, as_pod)))
            && self.all.iter().all(|f| f.matches(object, request, as_pod))
    }

    fn filters(&self) -> impl Iterator<Item = &Filter> {
        self.any.iter().chain(&self.all)
    }
}

/// `validationFailureActionOverrides` / `failureActionOverrides` entry.
#[derive(Debug, Clone)]
struct Override {
    action: Enforcement,
    namespaces: Vec<String>,
    namespace_selector: Option<LabelSelector>,
}

fn overrides(value: Option<&Value>, field: &str, here: &str) -> Result<Vec<Override>> {
    value
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, o)| {
            let f = format!("{field}[{i}]");
            Ok(Override {
                action: action(
                    o.get("action").and_then(Value::as_str).unwrap_or_default(),
                    &format!("{f}.action"),
                    here,
                )?,
                namespaces: strings(o.get("namespaces"), &format!("{f}.namespaces"), here)?,
                namespace_selector: selector(
                    o.get("namespaceSelector"),
                    &format!("{f}.namespaceSelector"),
                    here,
                )?,
            })
        })
        .collect()
}

/// What a rule checks (or, for a mutate rule, does).
#[derive(Debug, Clone)]
enum Check {
    /// `pattern`, with its auto-generated forms.
    Pattern(Patterns),
    /// `anyPattern`: one of them must hold.
    AnyPattern(Vec<Patterns>),
    /// `podSecurity`.
    PodSecurity(Box<PodSecurity>),
    /// `cel`.
    #[cfg(feature = "cel")]
    Cel(Box<crate::cel::NativeValidation>),
    /// `deny.conditions`: denied when they hold.
    Deny(conditions::Conditions),
    /// `foreach`: a check per element of lists.
    ForEach(Vec<foreach::ForEach>),
    /// Not a check: a `mutate` rule, applied before the validate rules.
    Mutate(Box<mutate::Mutate>),
    /// Not a check: a `generate` rule, run by [`KyvernoPolicy::generate_results`].
    Generate(Box<generate::Generate>),
}

/// A pattern as written (for Pods and anything matched directly) and wrapped for the
/// Pod templates of controllers.
#[derive(Debug, Clone)]
struct Patterns {
    direct: Value,
    template: Value,
    cronjob: Value,
    /// Some string or key holds `{{ }}`: filled in per object before matching.
    variables: bool,
}

impl Patterns {
    fn new(pattern: &Value, field: &str, here: &str) -> Result<Self> {
        pattern::check(pattern).map_err(|e| {
            let at_field = if e.field.is_empty() {
                field.to_owned()
            } else {
                format!("{field}.{}", e.field)
            };
            Error::invalid_input(format!("{here}{at_field}: {}", e.message))
        })?;
        Ok(Self {
            direct: pattern.clone(),
            template: json!({"spec": {"template": pattern}}),
            cronjob: json!({"spec": {"jobTemplate": {"spec": {"template": pattern}}}}),
            variables: mutate::has_variables(pattern),
        })
    }

    /// The pattern for `form`, its variables filled in from `data`.
    fn get(
        &self,
        form: Form,
        data: Option<&Rcvar>,
    ) -> std::result::Result<std::borrow::Cow<'_, Value>, String> {
        use std::borrow::Cow;
        if !self.variables {
            return Ok(Cow::Borrowed(match form {
                Form::Direct => &self.direct,
                Form::Template => &self.template,
                Form::CronJob => &self.cronjob,
            }));
        }
        let data = data.ok_or("no data to fill the pattern's variables from")?;
        let filled = mutate::substitute(&self.direct, data, 0)?;
        Ok(Cow::Owned(match form {
            Form::Direct => filled,
            Form::Template => json!({"spec": {"template": filled}}),
            Form::CronJob => json!({"spec": {"jobTemplate": {"spec": {"template": filled}}}}),
        }))
    }
}

/// How a rule applies to an object: as written, or auto-generated for a controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    Direct,
    Template,
    CronJob,
}

impl Form {
    /// Where the Pod template is, before a Pod-relative path.
    fn prefix(self) -> &'static str {
        match self {
            Self::Direct => "",
            Self::Template => "spec.template.",
            Self::CronJob => "spec.jobTemplate.spec.template.",
        }
    }
}

/// One validate rule.
#[derive(Debug, Clone)]
struct Rule {
    name: String,
    matcher: Matcher,
    exclude: Option<Matcher>,
    message: String,
    action: Option<Enforcement>,
    overrides: Vec<Override>,
    check: Check,
    /// `context`: named values for its variables.
    context: Vec<context::Entry>,
    /// `preconditions`: the rule applies only when they hold.
    preconditions: Option<conditions::Conditions>,
    /// The controllers it is auto-generated for (may include `CronJob`).
    autogen: Vec<String>,
}

/// The request facts matching and messages read.
struct Request<'a> {
    namespace: Option<&'a str>,
    operation: &'static str,
    namespaces: &'a BTreeMap<String, BTreeMap<String, String>>,
}

/// A loaded `ClusterPolicy` or `Policy`.
#[derive(Debug, Clone)]
struct LoadedPolicy {
    name: String,
    /// A namespaced `Policy`'s namespace.
    namespace: Option<String>,
    action: Enforcement,
    overrides: Vec<Override>,
    /// `spec.failurePolicy: Ignore`: a mutate rule that fails is skipped rather than
    /// failing the request.
    ignore_failures: bool,
    /// `spec.background` (default true): whether background scans, which check what
    /// already runs in a cluster, apply it ([`ValidateRules::background`]).
    background: bool,
    rules: Vec<Rule>,
}

impl LoadedPolicy {
    /// Whether it applies in `namespace`: a namespaced `Policy` only in its own.
    fn applies_in(&self, namespace: Option<&str>) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| namespace == Some(ns))
    }

    /// How exceptions name it: `<namespace>/<name>` for a namespaced `Policy`.
    fn key(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }

    /// Read a policy; `values` may give its `apiCall`, `imageRegistry` and
    /// `globalReference` context entries their values (see [`Values`]).
    fn from_object(object: &Object, values: &Values) -> Result<Self> {
        let source = object.source().cloned();
        let here = at(source.as_ref());
        let kind = object.kind();
        let name = object.name().to_owned();
        let what = format!("{kind} {name}");
        let value = object.to_value();
        let spec = value.get("spec").cloned().unwrap_or_else(|| json!({}));
        let action = match spec.get("validationFailureAction").and_then(Value::as_str) {
            None => Enforcement::Audit,
            Some(word) => action(
                word,
                &format!("{what}: spec.validationFailureAction"),
                &here,
            )?,
        };
        let overrides = overrides(
            spec.get("validationFailureActionOverrides"),
            &format!("{what}: spec.validationFailureActionOverrides"),
            &here,
        )?;
        let ignore_failures = match spec.get("failurePolicy").and_then(Value::as_str) {
            None | Some("Fail") => false,
            Some("Ignore") => true,
            Some(other) => {
                return Err(Error::invalid_input(format!(
                    "{here}{what}: spec.failurePolicy: {other:?} is not a failure policy: Fail or Ignore"
                )));
            }
        };
        let background = match spec.get("background") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(Error::invalid_input(format!(
                    "{here}{what}: spec.background: {other} is not a boolean: true (the default) or false"
                )));
            }
        };
        let annotations = object.annotations();
        let autogen: Vec<String> = match annotations.get(AUTOGEN_ANNOTATION).map(String::as_str) {
            None | Some("" | "all") => TEMPLATE_CONTROLLERS
                .iter()
                .map(|c| (*c).to_owned())
                .chain(std::iter::once("CronJob".to_owned()))
                .collect(),
            Some("none") => Vec::new(),
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
        };
        let rules = spec
            .get("rules")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if rules.is_empty() {
            return Err(Error::invalid_input(format!(
                "{here}{what}: spec.rules is empty: a policy needs at least one rule"
            )));
        }
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Rule::from_value(
                    r,
                    &format!("{what}: spec.rules[{i}]"),
                    &here,
                    &autogen,
                    source.clone(),
                    &|rule, entry| values.may_give(&name, rule, entry),
                )
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            name,
            namespace: (kind == "Policy")
                .then(|| object.namespace().unwrap_or("default").to_owned()),
            action,
            overrides,
            ignore_failures,
            background,
            rules,
        })
    }
}

impl Rule {
    fn from_value(
        value: &Value,
        field: &str,
        here: &str,
        controllers: &[String],
        source: Option<Source>,
        mockable: &dyn Fn(&str, &str) -> bool,
    ) -> Result<Self> {
        let name = value
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Error::invalid_input(format!("{here}{field}.name is required")))?
            .to_owned();
        let field = format!("{field} ({name})");
        if value.get("verifyImages").is_some_and(|v| !v.is_null()) {
            return Err(Error::invalid_input(format!(
                "{here}{field}.verifyImages: verifyImages rules are not supported (they need registry access)"
            )));
        }
        let kinds: Vec<&str> = ["validate", "mutate", "generate"]
            .into_iter()
            .filter(|k| value.get(*k).is_some_and(|v| !v.is_null()))
            .collect();
        if kinds.len() > 1 {
            return Err(Error::invalid_input(format!(
                "{here}{field}: a rule has one of validate, mutate or generate, and this one has {}: split it into one rule each",
                kinds.join(" and ")
            )));
        }
        let matcher = Matcher::from_value(value.get("match"), &format!("{field}.match"), here)?
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "{here}{field}.match is required: list the resources the rule applies to (match.any[].resources.kinds)"
                ))
            })?;
        let exclude = Matcher::from_value(value.get("exclude"), &format!("{field}.exclude"), here)?;
        let context = match value.get("context").filter(|c| !c.is_null()) {
            None => Vec::new(),
            Some(c) => {
                context::Entry::parse_list(c, &format!("{field}.context"), here, &|entry| {
                    mockable(&name, entry)
                })?
            }
        };
        let preconditions = value
            .get("preconditions")
            .filter(|p| !p.is_null())
            .map(|p| conditions::Conditions::parse(p, &format!("{field}.preconditions"), here))
            .transpose()?;
        if let Some(g) = value.get("generate").filter(|g| !g.is_null()) {
            let generate = generate::Generate::parse(g, &format!("{field}.generate"), here)?;
            return Ok(Self {
                name,
                matcher,
                exclude,
                message: String::new(),
                action: None,
                overrides: Vec::new(),
                check: Check::Generate(Box::new(generate)),
                context,
                preconditions,
                // Kyverno's auto-gen rewrites validate, mutate and verifyImages rules for
                // Pod controllers; a generate rule applies to the kinds it names only.
                autogen: Vec::new(),
            });
        }
        if let Some(m) = value.get("mutate").filter(|m| !m.is_null()) {
            let mutate = mutate::Mutate::parse(m, &format!("{field}.mutate"), here)?;
            let autogen = if mutate.autogen() {
                autogen_for(&matcher, exclude.as_ref(), controllers)
            } else {
                Vec::new()
            };
            return Ok(Self {
                name,
                matcher,
                exclude,
                message: String::new(),
                action: None,
                overrides: Vec::new(),
                check: Check::Mutate(Box::new(mutate)),
                context,
                preconditions,
                autogen,
            });
        }
        let validate = value
            .get("validate")
            .filter(|v| v.is_object())
            .ok_or_else(|| {
                Error::invalid_input(format!(
                    "{here}{field}: only validate, mutate and generate rules are supported, and this rule is none of them"
                ))
            })?;
        let vfield = format!("{field}.validate");
        for (key, why) in [("manifests", "manifest signature checks are not supported")] {
            if validate.get(key).is_some_and(|v| !v.is_null()) {
                return Err(Error::invalid_input(format!("{here}{vfield}.{key}: {why}")));
            }
        }
        let check = if let Some(p) = validate.get("pattern").filter(|p| !p.is_null()) {
            Check::Pattern(Patterns::new(p, &format!("{vfield}.pattern"), here)?)
        } else if let Some(list) = validate.get("anyPattern").filter(|p| !p.is_null()) {
            let items = list.as_array().filter(|l| !l.is_empty()).ok_or_else(|| {
                Error::invalid_input(format!(
                    "{here}{vfield}.anyPattern must be a non-empty list of patterns"
                ))
            })?;
            Check::AnyPattern(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, p)| Patterns::new(p, &format!("{vfield}.anyPattern[{i}]"), here))
                    .collect::<Result<_>>()?,
            )
        } else if let Some(pss) = validate.get("podSecurity").filter(|p| !p.is_null()) {
            Check::PodSecurity(Box::new(pod_security(
                pss,
                &format!("{vfield}.podSecurity"),
                here,
                &name,
            )?))
        } else if let Some(cel) = validate.get("cel").filter(|p| !p.is_null()) {
            cel_check(cel, &format!("{vfield}.cel"), here, &field, source)?
        } else if let Some(deny) = validate.get("deny").filter(|p| !p.is_null()) {
            // `deny: {}` denies whatever the rule matches.
            Check::Deny(match deny.get("conditions") {
                None | Some(Value::Null) => conditions::Conditions::default(),
                Some(c) => {
                    conditions::Conditions::parse(c, &format!("{vfield}.deny.conditions"), here)?
                }
            })
        } else if let Some(list) = validate.get("foreach").filter(|p| !p.is_null()) {
            Check::ForEach(foreach::ForEach::parse_list(
                list,
                &format!("{vfield}.foreach"),
                here,
            )?)
        } else {
            return Err(Error::invalid_input(format!(
                "{here}{vfield}: give pattern, anyPattern, deny, foreach, podSecurity or cel"
            )));
        };
        let action = validate
            .get("failureAction")
            .and_then(Value::as_str)
            .map(|w| action(w, &format!("{vfield}.failureAction"), here))
            .transpose()?;
        let overrides = overrides(
            validate.get("failureActionOverrides"),
            &format!("{vfield}.failureActionOverrides"),
            here,
        )?;
        let autogen = autogen_for(&matcher, exclude.as_ref(), controllers);
        Ok(Self {
            name,
            matcher,
            exclude,
            message: validate
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            action,
            overrides,
            check,
            context,
            preconditions,
            autogen,
        })
    }

    /// How the rule applies to `object`, if at all: as written, or auto-generated.
    fn applies(&self, object: &Object, request: &Request<'_>) -> Option<Form> {
        let excluded = |as_pod| {
            self.exclude
                .as_ref()
                .is_some_and(|e| e.matches(object, request, as_pod))
        };
        if self.matcher.matches(object, request, false) && !excluded(false) {
            return Some(Form::Direct);
        }
        let kind = object.kind();
        if !self.autogen.iter().any(|c| c == kind) {
            return None;
        }
        let form = if kind == "CronJob" {
            Form::CronJob
        } else {
            Form::Template
        };
        (self.matcher.matches(object, request, true) && !excluded(true)).then_some(form)
    }

    fn rule_name(&self, form: Form) -> String {
        match form {
            Form::Direct => self.name.clone(),
            Form::Template => format!("autogen-{}", self.name),
            Form::CronJob => format!("autogen-cronjob-{}", self.name),
        }
    }
}

/// The controllers a rule is auto-generated for: all of `controllers` when its match and
/// exclude name no kind but Pod and use no filter that would not carry over to a
/// controller, else none. Expressions (JMESPath and CEL) in a generated rule see the Pod
/// template as the object (see `pod_view`).
fn autogen_for(
    matcher: &Matcher,
    exclude: Option<&Matcher>,
    controllers: &[String],
) -> Vec<String> {
    let filters: Vec<&Filter> = matcher
        .filters()
        .chain(exclude.into_iter().flat_map(Matcher::filters))
        .collect();
    let pods_only = matcher.filters().any(|f| !f.kinds.is_empty())
        && filters.iter().all(|f| f.kinds.iter().all(KindSpec::is_pod));
    let carries_over = !filters.iter().any(|f| f.blocks_autogen());
    if pods_only && carries_over {
        controllers.to_vec()
    } else {
        Vec::new()
    }
}

fn pod_security(value: &Value, field: &str, here: &str, rule: &str) -> Result<PodSecurity> {
    let level: Level = match value.get("level") {
        None | Some(Value::Null) => {
            return Err(Error::invalid_input(format!(
                "{here}{field}.level is required: baseline, restricted or privileged"
            )));
        }
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| {
            Error::invalid_input(format!(
                "{here}{field}.level: {e} (baseline, restricted or privileged)"
            ))
        })?,
    };
    let version: PssVersion = match value.get("version").and_then(Value::as_str) {
        None => PssVersion::default(),
        Some(v) => v.parse().map_err(|e: Error| {
            Error::invalid_input(format!("{here}{field}.version: {}", e.report()))
        })?,
    };
    let mut pss = PodSecurity::new(level).at(version).named(rule);
    for (i, e) in value
        .get("exclude")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
    {
        let exclusion: ControlExclusion = serde_json::from_value(e.clone())
            .map_err(|err| Error::invalid_input(format!("{here}{field}.exclude[{i}]: {err}")))?;
        pss = pss.with_exclusion(exclusion).map_err(|err| {
            Error::invalid_input(format!("{here}{field}.exclude[{i}]: {}", err.report()))
        })?;
    }
    Ok(pss)
}

#[cfg(feature = "cel")]
fn cel_check(
    value: &Value,
    field: &str,
    here: &str,
    rule: &str,
    source: Option<Source>,
) -> Result<Check> {
    if value.get("paramKind").is_some_and(|v| !v.is_null()) {
        return Err(Error::invalid_input(format!(
            "{here}{field}.paramKind: CEL params are not supported in Kyverno rules; write a ValidatingAdmissionPolicy with a binding and its params instead"
        )));
    }
    let code =
        crate::cel::NativeValidation::compile(rule, value, field, "expressions", &[], source)
            .map_err(|e| Error::invalid_input(e.report()))?;
    Ok(Check::Cel(Box::new(code)))
}

#[cfg(not(feature = "cel"))]
fn cel_check(
    _value: &Value,
    field: &str,
    here: &str,
    _rule: &str,
    _source: Option<Source>,
) -> Result<Check> {
    Err(Error::invalid_input(format!(
        "{here}{field}: CEL rules need idp-policy's `cel` feature"
    )))
}

/// The object as a rule applied in `form` sees it: itself, or for an auto-generated
/// rule its Pod template as `metadata` and `spec` (under the object's `apiVersion` and
/// `kind`), as Kyverno rewrites `request.object.spec…` to
/// `request.object.spec.template.spec…` in the rules it generates.
fn pod_view<'v>(value: &'v Value, form: Form, object: &Object) -> std::borrow::Cow<'v, Value> {
    let template = match form {
        Form::Direct => return std::borrow::Cow::Borrowed(value),
        Form::Template => value.pointer("/spec/template"),
        Form::CronJob => value.pointer("/spec/jobTemplate/spec/template"),
    };
    let t = template.unwrap_or(&Value::Null);
    std::borrow::Cow::Owned(json!({
        "apiVersion": object.api_version(),
        "kind": object.kind(),
        "metadata": t.get("metadata").cloned().unwrap_or_else(|| json!({})),
        "spec": t.get("spec").cloned().unwrap_or_else(|| json!({})),
    }))
}

/// The JMESPath data for a rule applied in `form` (see [`pod_view`]).
fn jmes_data(
    value: &Value,
    form: Form,
    object: &Object,
    request: &Request<'_>,
    ctx: &PolicyContext,
) -> std::result::Result<Rcvar, String> {
    conditions::data(
        &pod_view(value, form, object),
        &conditions::RequestInfo {
            api_version: object.api_version(),
            kind: object.kind(),
            name: object.name(),
            namespace: request.namespace,
            operation: request.operation,
            user: ctx.user.as_deref(),
            dry_run: ctx.dry_run,
        },
    )
}

/// Fill in `{{request.object.<path>}}`, `{{request.operation}}` and
/// `{{request.namespace}}`; anything else between braces is left as written.
fn fill_message(message: &str, object: &Value, request: &Request<'_>) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let expr = after[..end].trim();
        let filled = match expr {
            "request.operation" => Some(request.operation.to_owned()),
            "request.namespace" => Some(request.namespace.unwrap_or_default().to_owned()),
            _ => expr.strip_prefix("request.object.").and_then(|path| {
                let mut v = object;
                for key in path.split('.') {
                    v = v.get(key)?;
                }
                Some(match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
            }),
        };
        match filled {
            Some(text) => out.push_str(&text),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// A Kyverno `PolicyException` (kyverno.io/v2): rules of named policies waived for
/// the objects it matches, or, with `podSecurity`, only some Pod Security controls.
#[derive(Debug, Clone)]
struct Exception {
    /// `(policyName, ruleNames)`; a namespaced Policy is named `<namespace>/<name>`.
    entries: Vec<(String, Vec<String>)>,
    matcher: Matcher,
    exclude: Option<Matcher>,
    pod_security: Vec<ControlExclusion>,
}

impl Exception {
    fn from_object(object: &Object) -> Result<Self> {
        let here = at(object.source());
        let what = format!("PolicyException {}", object.name());
        let value = object.to_value();
        let spec = value.get("spec").cloned().unwrap_or_else(|| json!({}));
        if spec.get("conditions").is_some_and(|v| !v.is_null()) {
            return Err(Error::invalid_input(format!(
                "{here}{what}: spec.conditions are JMESPath and not supported: narrow the exception with spec.match instead"
            )));
        }
        let mut entries = Vec::new();
        for (i, e) in spec
            .get("exceptions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let field = format!("{what}: spec.exceptions[{i}]");
            let policy = e
                .get("policyName")
                .and_then(Value::as_str)
                .filter(|p| !p.is_empty())
                .ok_or_else(|| {
                    Error::invalid_input(format!("{here}{field}.policyName is required"))
                })?;
            let rules = strings(e.get("ruleNames"), &format!("{field}.ruleNames"), &here)?;
            if rules.is_empty() {
                return Err(Error::invalid_input(format!(
                    "{here}{field}.ruleNames is required: list the rules waived (`*` for all, and autogen-<rule> for controllers)"
                )));
            }
            entries.push((policy.to_owned(), rules));
        }
        if entries.is_empty() {
            return Err(Error::invalid_input(format!(
                "{here}{what}: spec.exceptions is empty: name the policies and rules it waives"
            )));
        }
        let matcher = Matcher::from_value(
            spec.get("match"),
            &format!("{what}: spec.match"),
            &here,
        )?
        .ok_or_else(|| {
            Error::invalid_input(format!(
                "{here}{what}: spec.match is required: select the resources the exception is for"
            ))
        })?;
        let exclude =
            Matcher::from_value(spec.get("exclude"), &format!("{what}: spec.exclude"), &here)?;
        let mut pod_security = Vec::new();
        for (i, e) in spec
            .get("podSecurity")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            let field = format!("{what}: spec.podSecurity[{i}]");
            let exclusion: ControlExclusion = serde_json::from_value(e.clone())
                .map_err(|err| Error::invalid_input(format!("{here}{field}: {err}")))?;
            // Checked against a set with every control, as the rule it meets may have any.
            PodSecurity::restricted()
                .with_exclusion(exclusion.clone())
                .map_err(|err| Error::invalid_input(format!("{here}{field}: {}", err.report())))?;
            pod_security.push(exclusion);
        }
        Ok(Self {
            entries,
            matcher,
            exclude,
            pod_security,
        })
    }

    /// Whether it names the rule (`rule` as applied: `autogen-…` for controllers).
    fn names(&self, policy: &str, rule: &str) -> bool {
        self.entries
            .iter()
            .any(|(p, rules)| p == policy && rules.iter().any(|r| glob(r, rule)))
    }

    fn selects(&self, object: &Object, request: &Request<'_>) -> bool {
        self.matcher.matches(object, request, false)
            && !self
                .exclude
                .as_ref()
                .is_some_and(|e| e.matches(object, request, false))
    }
}

/// What one rule found for one object ([`KyvernoPolicy::results`]).
///
/// ```
/// let r = idp_policy::kyverno::RuleResult {
///     policy: "p".into(), rule: "autogen-r".into(), base_rule: "r".into(),
///     outcome: idp_policy::kyverno::RuleOutcome::Pass,
/// };
/// assert_eq!(r.outcome.word(), "pass");
/// ```
#[derive(Debug, Clone)]
pub struct RuleResult {
    /// The policy's name.
    pub policy: String,
    /// The rule as applied: `autogen-<rule>` or `autogen-cronjob-<rule>` for a
    /// controller.
    pub rule: String,
    /// The rule's name as written.
    pub base_rule: String,
    /// What it found.
    pub outcome: RuleOutcome,
}

/// The outcome of a rule, in Kyverno's report terms.
///
/// ```
/// assert_eq!(idp_policy::kyverno::RuleOutcome::Skip("preconditions not met".into()).word(), "skip");
/// ```
#[derive(Debug, Clone)]
pub enum RuleOutcome {
    /// The object complies.
    Pass,
    /// The object violates the rule.
    Fail(Vec<Violation>),
    /// The rule was not checked: its preconditions do not hold, or an exception waives it.
    Skip(String),
    /// The rule could not be evaluated (an expression failed); the violations say why.
    Error(Vec<Violation>),
}

impl RuleOutcome {
    /// `pass`, `fail`, `skip` or `error`.
    ///
    /// ```
    /// assert_eq!(idp_policy::kyverno::RuleOutcome::Fail(vec![]).word(), "fail");
    /// ```
    pub fn word(&self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail(_) => "fail",
            Self::Skip(_) => "skip",
            Self::Error(_) => "error",
        }
    }
}

/// Kyverno `ClusterPolicy` and `Policy` rules as one [`Policy`] (validate rules, checked
/// after the mutate rules) and one [`Mutation`] (the mutate rules). See the
/// [module documentation](self).
///
/// ```
/// let p = idp_policy::kyverno::KyvernoPolicy::new("kyverno");
/// assert!(p.rules().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct KyvernoPolicy {
    name: String,
    policies: Vec<LoadedPolicy>,
    namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// ConfigMaps given with the policies, for `context` entries.
    config_maps: context::ConfigMaps,
    /// Every object given with the policies that is not a policy or an exception
    /// (Namespaces and ConfigMaps included): the sources of generate rules' clones.
    given: Vec<Object>,
    exceptions: Vec<Exception>,
    /// Mocked values, as a Kyverno CLI test gives them.
    values: Values,
}

impl KyvernoPolicy {
    /// An empty set named `name` (the `policy` of its violations).
    ///
    /// ```
    /// use idp_core::Policy;
    /// assert_eq!(idp_policy::kyverno::KyvernoPolicy::new("kyverno").name(), "kyverno");
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            policies: Vec::new(),
            namespaces: BTreeMap::new(),
            config_maps: context::ConfigMaps::new(),
            given: Vec::new(),
            exceptions: Vec::new(),
            values: Values::default(),
        }
    }

    /// This set with mocked `values`, as a Kyverno CLI test's values file gives them
    /// (see [`Self::set_values`]). Give them before the policies: a context entry that
    /// needs the cluster (`apiCall`, `imageRegistry`, `globalReference`) is accepted
    /// when loaded only if the values may give it its value.
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// use idp_policy::kyverno::{KyvernoPolicy, Values};
    ///
    /// let values = Values::from_yaml("policies:\n  - name: p\n    rules:\n      - name: r\n        values:\n          nodes.count: 2\n", None).unwrap();
    /// let mut p = KyvernoPolicy::new("k").with_values(values);
    /// p.add_yaml("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  validationFailureAction: Enforce\n  rules:\n    - name: r\n      match: {any: [{resources: {kinds: [ConfigMap]}}]}\n      context:\n        - name: nodes\n          apiCall: {urlPath: /api/v1/nodes, jmesPath: 'items | length(@)'}\n      validate:\n        message: 'needs 3 nodes, has {{ nodes.count }}'\n        deny: {conditions: {any: [{key: '{{ nodes.count }}', operator: LessThan, value: 3}]}}\n", None).unwrap();
    /// let o = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})).unwrap();
    /// let results = p.results(&o, &PolicyContext::new()).unwrap();
    /// assert_eq!(results[0].outcome.word(), "fail");
    /// ```
    #[must_use]
    pub fn with_values(mut self, values: Values) -> Self {
        self.set_values(values);
        self
    }

    /// Give the set mocked `values`, replacing any given before, as the Kyverno CLI
    /// applies a values file:
    ///
    /// - a rule's variables are the global values, then those of the resource checked
    ///   (by its `metadata.name`, for that policy), then the rule's own, each merged over
    ///   the one before;
    /// - a `context` entry whose name they give keeps that value instead of being
    ///   computed (a mocked `apiCall`, `configMap`, `imageRegistry`…);
    /// - `request.operation` in the global or the resource's values is the operation
    ///   the policy sees (its `match.operations`, `{{ request.operation }}`);
    /// - `namespaceSelector` entries give namespaces their labels (over those of a
    ///   `Namespace` given with the policies).
    ///
    /// Policies loaded before keep their context entries as read then: give the values
    /// first for an entry that needs the cluster. One whose value the values do not give
    /// for a rule and resource is an error naming it when the rule runs.
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// use idp_policy::kyverno::{KyvernoPolicy, Values};
    ///
    /// let mut p = KyvernoPolicy::from_yaml("k", "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: no-delete\n      match: {any: [{resources: {kinds: [ConfigMap], operations: [DELETE]}}]}\n      validate: {deny: {}}\n", None).unwrap();
    /// let o = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})).unwrap();
    /// assert!(p.results(&o, &PolicyContext::new()).unwrap().is_empty());
    /// p.set_values(Values::from_yaml("globalValues: {request.operation: DELETE}\n", None).unwrap());
    /// assert_eq!(p.results(&o, &PolicyContext::new()).unwrap()[0].outcome.word(), "fail");
    /// ```
    pub fn set_values(&mut self, values: Values) {
        for (name, labels) in values.namespaces() {
            self.namespaces.insert(name.clone(), labels.clone());
        }
        self.values = values;
    }

    /// The policies in force for `object` (a namespaced `Policy` only in its own
    /// namespace), in order, each with the request its rules see (values may set the
    /// operation per policy and resource) and its key.
    fn in_force<'a>(
        &'a self,
        object: &'a Object,
        ctx: &'a PolicyContext,
    ) -> impl Iterator<Item = (&'a LoadedPolicy, Request<'a>, String)> + 'a {
        let base = self.request(object, ctx);
        self.policies
            .iter()
            .filter(move |p| p.applies_in(base.namespace))
            .map(move |policy| {
                let request = Request {
                    operation: self
                        .values
                        .operation(&policy.name, object.name())
                        .unwrap_or(base.operation),
                    ..base
                };
                (policy, request, policy.key())
            })
    }

    /// The request for `object` as given, before values set an operation per policy.
    fn request<'a>(&'a self, object: &'a Object, ctx: &'a PolicyContext) -> Request<'a> {
        Request {
            namespace: object.namespace().or(ctx.namespace.as_deref()),
            operation: operation_name(ctx.operation),
            namespaces: &self.namespaces,
        }
    }

    /// The mocked variables of a rule (`rule` as applied, `base_rule` as written) for
    /// the resource named `resource`; `None` without values.
    fn mocked(&self, policy: &str, rule: &str, base_rule: &str, resource: &str) -> Option<Value> {
        if self.values.is_empty() {
            return None;
        }
        let _span = tracing::trace_span!("kyverno.mocked", policy, rule, resource).entered();
        self.values.for_rule(policy, rule, base_rule, resource)
    }

    /// Read multi-document YAML: `ClusterPolicy` and `Policy` (kyverno.io/v1 or v2beta1)
    /// documents, `PolicyException` documents, and any other Kubernetes object, kept as
    /// what the cluster would hold: `Namespace` objects (their labels feed
    /// `namespaceSelector`), `ConfigMap` objects (for `context` entries) and any object a
    /// generate rule's `clone` or `cloneList` copies. Other Kyverno kinds (`*.kyverno.io`)
    /// and admission policies (`admissionregistration.k8s.io`) are refused.
    ///
    /// ```
    /// let err = idp_policy::kyverno::KyvernoPolicy::from_yaml("k", "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: r\n      match: {any: [{resources: {kinds: [Pod]}}]}\n      context: [{name: cm, apiCall: {urlPath: /api/v1/namespaces}}]\n      validate: {pattern: {spec: {}}}\n", None).unwrap_err();
    /// assert!(err.to_string().contains("spec.rules[0] (r).context[0] (cm).apiCall"), "{err}");
    /// ```
    pub fn from_yaml(name: impl Into<String>, yaml: &str, file: Option<&Path>) -> Result<Self> {
        let mut policy = Self::new(name);
        policy.add_yaml(yaml, file)?;
        Ok(policy)
    }

    /// Add the documents of a YAML text (see [`Self::from_yaml`]). An object of the same
    /// apiVersion, kind, namespace and name as one given before replaces it.
    ///
    /// ```
    /// let mut p = idp_policy::kyverno::KyvernoPolicy::new("k");
    /// // A Secret is kept, as a source for generate rules that clone it.
    /// p.add_yaml("apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: default}\n", None).unwrap();
    /// let err = p.add_yaml("apiVersion: kyverno.io/v2\nkind: CleanupPolicy\nmetadata: {name: c}\n", None).unwrap_err();
    /// assert!(err.to_string().contains("is not a Kyverno ClusterPolicy"), "{err}");
    /// ```
    pub fn add_yaml(&mut self, yaml: &str, file: Option<&Path>) -> Result<()> {
        let set = ManifestSet::parse(yaml.as_bytes(), file)?;
        for object in &set {
            let (group, _) = split_api_version(object.api_version());
            match (group, object.kind()) {
                (GROUP, "ClusterPolicy" | "Policy") => {
                    self.policies
                        .push(LoadedPolicy::from_object(object, &self.values)?);
                    continue;
                }
                (GROUP, "PolicyException") => {
                    self.exceptions.push(Exception::from_object(object)?);
                    continue;
                }
                // Policies of other engines or kinds, which are not objects to clone.
                (g, _)
                    if g == GROUP
                        || g.ends_with(".kyverno.io")
                        || g == "admissionregistration.k8s.io" =>
                {
                    return Err(Error::invalid_input(format!(
                        "{}{} {} is not a Kyverno ClusterPolicy, Policy or PolicyException (kyverno.io), the policy kinds read here",
                        at(object.source()),
                        object.api_version(),
                        object.kind()
                    )));
                }
                // Labels the values give a namespace win over its object's.
                ("", "Namespace") if !self.values.namespaces().contains_key(object.name()) => {
                    self.namespaces
                        .insert(object.name().to_owned(), object.labels());
                }
                ("", "ConfigMap") => {
                    self.config_maps.insert(
                        (
                            object.namespace().unwrap_or("default").to_owned(),
                            object.name().to_owned(),
                        ),
                        object.to_value(),
                    );
                }
                _ => {}
            }
            let same = |o: &Object| {
                o.api_version() == object.api_version()
                    && o.kind() == object.kind()
                    && o.namespace() == object.namespace()
                    && o.name() == object.name()
            };
            match self.given.iter_mut().find(|o| same(o)) {
                Some(slot) => *slot = object.clone(),
                None => self.given.push(object.clone()),
            }
        }
        Ok(())
    }

    /// Every rule loaded, as `<policy>/<rule>`.
    ///
    /// ```
    /// let p = idp_policy::kyverno::KyvernoPolicy::from_yaml("k", "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: r\n      match: {any: [{resources: {kinds: [Pod]}}]}\n      validate: {pattern: {spec: {hostNetwork: 'false'}}}\n", None).unwrap();
    /// assert_eq!(p.rules(), ["p/r"]);
    /// ```
    pub fn rules(&self) -> Vec<String> {
        self.policies
            .iter()
            .flat_map(|p| {
                p.rules
                    .iter()
                    .map(move |r| format!("{}/{}", p.name, r.name))
            })
            .collect()
    }

    /// Evaluate like [`Policy::evaluate`], but report input a check cannot take (an
    /// object nested too deep for CEL) as an error.
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// let p = idp_policy::kyverno::KyvernoPolicy::new("k");
    /// let o = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})).unwrap();
    /// assert!(p.try_evaluate(&o, &PolicyContext::new()).unwrap().is_empty());
    /// ```
    pub fn try_evaluate(&self, object: &Object, ctx: &PolicyContext) -> Result<Vec<Violation>> {
        Ok(violations(self.results(object, ctx)?))
    }

    /// The result of every rule that matches `object`, as Kyverno reports them: pass,
    /// fail (with the violations), skip (preconditions not met, or waived by a
    /// `PolicyException`) or error. Rules that do not match the object give no result.
    /// The mutate rules' results come first (see [`Self::mutate_results`]); the validate
    /// rules then check the object as mutated.
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// use idp_policy::kyverno::{KyvernoPolicy, RuleOutcome};
    /// let p = KyvernoPolicy::from_yaml("k", "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: r\n      match: {any: [{resources: {kinds: [Pod]}}]}\n      validate: {pattern: {spec: {=(hostNetwork): false}}}\n", None).unwrap();
    /// let o = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}, "spec": {}})).unwrap();
    /// let results = p.results(&o, &PolicyContext::new()).unwrap();
    /// assert_eq!((results[0].policy.as_str(), results[0].rule.as_str()), ("p", "r"));
    /// assert!(matches!(results[0].outcome, RuleOutcome::Pass));
    /// ```
    pub fn results(&self, object: &Object, ctx: &PolicyContext) -> Result<Vec<RuleResult>> {
        let _span = tracing::trace_span!("kyverno.evaluate", policy = %self.name, kind = object.kind(), name = object.name()).entered();
        if !self.has_mutate_rules() {
            return self.validate_results(object, ctx);
        }
        self.apply(object, ctx).map(|(_, results)| results)
    }

    /// What admission does with `object`: the mutate rules, then the validate rules on
    /// the mutated object. The mutated object, and every result as [`Self::results`]
    /// gives them (which this saves computing twice when both are wanted, as a Kyverno
    /// CLI test with `patchedResource` does).
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// let p = idp_policy::kyverno::KyvernoPolicy::from_yaml("k", "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: team\n      match: {any: [{resources: {kinds: [ConfigMap]}}]}\n      mutate: {patchStrategicMerge: {metadata: {labels: {+(team): platform}}}}\n    - name: has-team\n      match: {any: [{resources: {kinds: [ConfigMap]}}]}\n      validate: {pattern: {metadata: {labels: {team: '?*'}}}}\n", None).unwrap();
    /// let o = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})).unwrap();
    /// let (mutated, results) = p.apply(&o, &PolicyContext::new()).unwrap();
    /// assert_eq!(mutated.labels()["team"], "platform");
    /// assert_eq!(results.iter().map(|r| r.outcome.word()).collect::<Vec<_>>(), ["pass", "pass"]);
    /// ```
    pub fn apply(&self, object: &Object, ctx: &PolicyContext) -> Result<(Object, Vec<RuleResult>)> {
        let (mutated, mut results) = self.mutate_results(object, ctx)?;
        results.extend(self.validate_results(&mutated, ctx)?);
        Ok((mutated, results))
    }

    /// Whether some loaded rule is a mutate rule.
    fn has_mutate_rules(&self) -> bool {
        self.policies
            .iter()
            .flat_map(|p| &p.rules)
            .any(|r| matches!(r.check, Check::Mutate(_)))
    }

    /// Whether a `PolicyException` waives the rule (`rule` as applied) for the object.
    fn waived(&self, policy_key: &str, rule: &str, object: &Object, request: &Request<'_>) -> bool {
        self.exceptions
            .iter()
            .any(|e| e.names(policy_key, rule) && e.selects(object, request))
    }

    /// Apply the mutate rules, policy by policy and rule by rule, each to the object as
    /// the rules before it left it (so a later rule matches on what an earlier one
    /// wrote, as Kyverno cascades mutations): the object after them, and the result of
    /// each mutate rule that matches it — pass (the patch changed the object), skip (an
    /// anchor or the preconditions did not hold, a `PolicyException` waives it, or the
    /// patch changed nothing) or error (a
    /// variable without a value, a patch that cannot apply; with the policy's
    /// `failurePolicy: Ignore`, a skip instead). A rule may not change the object's
    /// `apiVersion`, `kind`, name or namespace, which Kubernetes does not allow either.
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// use idp_policy::kyverno::{KyvernoPolicy, RuleOutcome};
    /// let p = KyvernoPolicy::from_yaml("k", "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: team\n      match: {any: [{resources: {kinds: [ConfigMap]}}]}\n      mutate:\n        patchStrategicMerge:\n          metadata:\n            labels:\n              +(team): platform\n", None).unwrap();
    /// let o = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})).unwrap();
    /// let (mutated, results) = p.mutate_results(&o, &PolicyContext::new()).unwrap();
    /// assert_eq!(mutated.labels()["team"], "platform");
    /// assert!(matches!(results[0].outcome, RuleOutcome::Pass));
    /// ```
    pub fn mutate_results(
        &self,
        object: &Object,
        ctx: &PolicyContext,
    ) -> Result<(Object, Vec<RuleResult>)> {
        let _span = tracing::trace_span!("kyverno.mutate", policy = %self.name, kind = object.kind(), name = object.name()).entered();
        let mut current = object.clone();
        let mut results = Vec::new();
        for (policy, request, policy_key) in self.in_force(object, ctx) {
            for rule in &policy.rules {
                let Check::Mutate(mutate) = &rule.check else {
                    continue;
                };
                let Some(form) = rule.applies(&current, &request) else {
                    continue;
                };
                let rule_name = rule.rule_name(form);
                let rule_id = format!("{}/{rule_name}", policy.name);
                let result = |outcome| RuleResult {
                    policy: policy.name.clone(),
                    rule: rule_name.clone(),
                    base_rule: rule.name.clone(),
                    outcome,
                };
                let failed = |e: String| {
                    let message = format!("mutate rule {rule_id}: {e}");
                    if policy.ignore_failures {
                        tracing::debug!(rule = %rule_id, error = %e, "mutate rule failed; failurePolicy Ignore");
                        RuleOutcome::Skip(format!("{message} (ignored: failurePolicy Ignore)"))
                    } else {
                        RuleOutcome::Error(vec![
                            Violation::new(self.name.clone(), rule_id.clone(), message)
                                .with_enforcement(Enforcement::Deny),
                        ])
                    }
                };
                let value = current.to_value();
                let mocked = self.mocked(&policy.name, &rule_name, &rule.name, current.name());
                let data_of = |v: &Value| {
                    jmes_data(v, form, &current, &request, ctx).and_then(|d| {
                        context::with_context(&d, &rule.context, &self.config_maps, mocked.as_ref())
                    })
                };
                match unmet_preconditions(rule.preconditions.as_ref(), || data_of(&value)) {
                    Ok(None) => {}
                    Ok(Some(skip)) => {
                        results.push(result(skip));
                        continue;
                    }
                    Err(e) => {
                        results.push(result(failed(format!("preconditions: {e}"))));
                        continue;
                    }
                }
                if self.waived(&policy_key, &rule_name, &current, &request) {
                    tracing::debug!(policy = %policy_key, rule = %rule_name, "waived by a PolicyException");
                    results.push(result(RuleOutcome::Skip(
                        "waived by a PolicyException".to_owned(),
                    )));
                    continue;
                }
                match mutate.apply(&value, form, &data_of) {
                    // As Kyverno reports it: a patch that changes nothing is a skip.
                    Ok(mutate::Outcome::Patched(patched)) if patched == value => {
                        results.push(result(RuleOutcome::Skip("no patches applied".to_owned())));
                    }
                    Ok(mutate::Outcome::Patched(patched)) => {
                        match Self::patched_object(&current, patched) {
                            Ok(next) => {
                                current = next;
                                results.push(result(RuleOutcome::Pass));
                            }
                            Err(e) => results.push(result(failed(e))),
                        }
                    }
                    Ok(mutate::Outcome::Skipped(why)) => {
                        results.push(result(RuleOutcome::Skip(why)));
                    }
                    Err(e) => results.push(result(failed(e))),
                }
            }
        }
        Ok((current, results))
    }

    /// Run the generate rules for `trigger`: the objects they create, and the result of
    /// each generate rule that matches it (`match`/`exclude`, in a namespaced `Policy`'s
    /// own namespace only) — pass (it generated its objects), skip (its preconditions do
    /// not hold, a `PolicyException` waives it, or its `foreach` generated nothing) or error (a variable without a value,
    /// a clone source not given with the policies, an object that is not valid). Generate
    /// rules are not auto-generated for Pod controllers, as in Kyverno.
    ///
    /// Each generated object carries the labels Kyverno puts on what it generates:
    /// `app.kubernetes.io/managed-by: kyverno` (unless the object names another manager),
    /// `generate.kyverno.io/policy-name`, `policy-namespace`, `rule-name`,
    /// `trigger-group`, `trigger-version`, `trigger-kind`, `trigger-namespace`,
    /// `trigger-name` (and `trigger-uid` when the trigger has one), and for clones
    /// `source-group`, `source-version`, `source-kind`, `source-namespace` and
    /// `source-name`. Kyverno generates after admission, from the object as admitted:
    /// give the object [`Self::apply`] returns to see what the cluster would get. An
    /// error never denies the trigger (Kyverno creates the objects in the background);
    /// its violation is an audit.
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// use idp_policy::kyverno::{KyvernoPolicy, RuleOutcome};
    /// let p = KyvernoPolicy::from_yaml("k", "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: netpol}\nspec:\n  rules:\n    - name: default-deny\n      match: {any: [{resources: {kinds: [Namespace]}}]}\n      generate:\n        apiVersion: networking.k8s.io/v1\n        kind: NetworkPolicy\n        name: default-deny\n        namespace: '{{request.object.metadata.name}}'\n        data: {spec: {podSelector: {}, policyTypes: [Ingress, Egress]}}\n", None).unwrap();
    /// let ns = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})).unwrap();
    /// let (objects, results) = p.generate_results(&ns, &PolicyContext::new()).unwrap();
    /// assert_eq!((objects[0].kind(), objects[0].name(), objects[0].namespace()), ("NetworkPolicy", "default-deny", Some("shop")));
    /// assert_eq!(objects[0].labels()["generate.kyverno.io/rule-name"], "default-deny");
    /// assert!(matches!(results[0].outcome, RuleOutcome::Pass));
    /// // Validate and mutate rules leave generate rules alone.
    /// assert!(p.results(&ns, &PolicyContext::new()).unwrap().is_empty());
    /// ```
    pub fn generate_results(
        &self,
        trigger: &Object,
        ctx: &PolicyContext,
    ) -> Result<(Vec<Object>, Vec<RuleResult>)> {
        let _span = tracing::trace_span!("kyverno.generate", policy = %self.name, kind = trigger.kind(), name = trigger.name()).entered();
        let mut objects = Vec::new();
        let mut results = Vec::new();
        let mut value: Option<Value> = None;
        for (policy, request, policy_key) in self.in_force(trigger, ctx) {
            for rule in &policy.rules {
                let Check::Generate(generate) = &rule.check else {
                    continue;
                };
                let Some(form) = rule.applies(trigger, &request) else {
                    continue;
                };
                let rule_id = format!("{}/{}", policy.name, rule.name);
                let result = |outcome| RuleResult {
                    policy: policy.name.clone(),
                    rule: rule.name.clone(),
                    base_rule: rule.name.clone(),
                    outcome,
                };
                let error = |e: String| {
                    result(RuleOutcome::Error(vec![
                        Violation::new(
                            self.name.clone(),
                            rule_id.clone(),
                            format!("generate rule {rule_id}: {e}"),
                        )
                        .with_enforcement(Enforcement::Audit),
                    ]))
                };
                let value = value.get_or_insert_with(|| trigger.to_value());
                let mocked = self.mocked(&policy.name, &rule.name, &rule.name, trigger.name());
                let data = match jmes_data(value, form, trigger, &request, ctx).and_then(|d| {
                    context::with_context(&d, &rule.context, &self.config_maps, mocked.as_ref())
                }) {
                    Ok(d) => d,
                    Err(e) => {
                        results.push(error(e));
                        continue;
                    }
                };
                match unmet_preconditions(rule.preconditions.as_ref(), || Ok(data.clone())) {
                    Ok(None) => {}
                    Ok(Some(skip)) => {
                        results.push(result(skip));
                        continue;
                    }
                    Err(e) => {
                        results.push(error(format!("preconditions: {e}")));
                        continue;
                    }
                }
                if self.waived(&policy_key, &rule.name, trigger, &request) {
                    tracing::debug!(policy = %policy_key, rule = %rule.name, "waived by a PolicyException");
                    results.push(result(RuleOutcome::Skip(
                        "waived by a PolicyException".to_owned(),
                    )));
                    continue;
                }
                let origin = generate::Origin {
                    policy: &policy.name,
                    policy_namespace: policy.namespace.as_deref().unwrap_or_default(),
                    rule: &rule.name,
                    trigger,
                };
                let made = generate.run(&data, &self.given, &self.config_maps).and_then(|values| {
                    values
                        .into_iter()
                        .map(|mut v| {
                            generate::label(&mut v, &origin);
                            let o = Object::from_value(v).map_err(|e| {
                                format!("the generated object is not valid: {}", e.report())
                            })?;
                            match (&policy.namespace, o.namespace()) {
                                (Some(own), ns) if ns != Some(own.as_str()) => Err(format!(
                                    "a namespaced Policy generates only in its own namespace {own}, and this {} {} is in {}",
                                    o.kind(),
                                    o.name(),
                                    ns.unwrap_or("no namespace")
                                )),
                                _ => Ok(o),
                            }
                        })
                        .collect::<std::result::Result<Vec<_>, String>>()
                });
                match made {
                    Ok(made) if made.is_empty() && generate.is_foreach() => {
                        results.push(result(RuleOutcome::Skip(
                            "no element of the foreach lists generated an object (empty lists or preconditions not met)".to_owned(),
                        )));
                    }
                    Ok(made) => {
                        objects.extend(made);
                        results.push(result(RuleOutcome::Pass));
                    }
                    Err(e) => results.push(error(e)),
                }
            }
        }
        Ok((objects, results))
    }

    /// The object a patch gave, with the source of the one it was applied to; an error
    /// when it is not an object or its identity changed.
    fn patched_object(before: &Object, patched: Value) -> std::result::Result<Object, String> {
        let after = Object::from_value(patched)
            .map_err(|e| format!("the patched object is not valid: {}", e.report()))?;
        for (what, a, b) in [
            ("apiVersion", before.api_version(), after.api_version()),
            ("kind", before.kind(), after.kind()),
            ("metadata.name", before.name(), after.name()),
            (
                "metadata.namespace",
                before.namespace().unwrap_or_default(),
                after.namespace().unwrap_or_default(),
            ),
        ] {
            if a != b {
                return Err(format!(
                    "the patch changes {what} from {a:?} to {b:?}, which Kubernetes does not allow"
                ));
            }
        }
        Ok(match before.source() {
            Some(source) => after.with_source(source.clone()),
            None => after,
        })
    }

    /// The results of the validate rules for `object` (see [`Self::results`]).
    fn validate_results(&self, object: &Object, ctx: &PolicyContext) -> Result<Vec<RuleResult>> {
        self.validate_results_of(object, ctx, false)
    }

    /// [`Self::validate_results`]; with `background`, only of the policies that
    /// background scans apply (`spec.background` not false).
    fn validate_results_of(
        &self,
        object: &Object,
        ctx: &PolicyContext,
        background: bool,
    ) -> Result<Vec<RuleResult>> {
        let base = self.request(object, ctx);
        let mut value: Option<Value> = None;
        // JMESPath data per form (as written, Pod template, CronJob's Pod template).
        let mut jmes: [Option<Rcvar>; 3] = [None, None, None];
        let mut results = Vec::new();
        for (policy, request, policy_key) in self.in_force(object, ctx) {
            if background && !policy.background {
                continue;
            }
            for rule in &policy.rules {
                if matches!(rule.check, Check::Mutate(_) | Check::Generate(_)) {
                    continue;
                }
                let Some(form) = rule.applies(object, &request) else {
                    continue;
                };
                let rule_name = rule.rule_name(form);
                let result = |outcome| RuleResult {
                    policy: policy.name.clone(),
                    rule: rule_name.clone(),
                    base_rule: rule.name.clone(),
                    outcome,
                };
                let enforcement = Self::action(policy, rule, &request);
                let rule_id = format!("{}/{rule_name}", policy.name);
                // The rule could not be evaluated: one violation saying why.
                let error = |message: String| {
                    result(RuleOutcome::Error(vec![
                        Violation::new(self.name.clone(), rule_id.clone(), message)
                            .with_enforcement(enforcement),
                    ]))
                };
                let value = value.get_or_insert_with(|| object.to_value());
                let needs_jmes = rule.preconditions.is_some()
                    || !rule.context.is_empty()
                    || rule.message.contains("{{")
                    || matches!(rule.check, Check::Deny(_) | Check::ForEach(_))
                    || matches!(&rule.check, Check::Pattern(p) if p.variables)
                    || matches!(&rule.check, Check::AnyPattern(list) if list.iter().any(|p| p.variables));
                let data = if needs_jmes {
                    let slot = &mut jmes[form as usize];
                    if slot.is_none() {
                        // With the request as given: values setting the operation for one
                        // policy put it in that policy's mocked variables, not here.
                        match jmes_data(value, form, object, &base, ctx) {
                            Ok(d) => *slot = Some(d),
                            Err(e) => {
                                results.push(error(e));
                                continue;
                            }
                        }
                    }
                    let mocked = self.mocked(&policy.name, &rule_name, &rule.name, object.name());
                    match slot
                        .as_ref()
                        .map(|d| {
                            context::with_context(
                                d,
                                &rule.context,
                                &self.config_maps,
                                mocked.as_ref(),
                            )
                        })
                        .transpose()
                    {
                        Ok(d) => d,
                        Err(e) => {
                            results.push(error(format!("context of {rule_id}: {e}")));
                            continue;
                        }
                    }
                } else {
                    None
                };
                if let (Some(pre), Some(data)) = (&rule.preconditions, &data) {
                    match pre.evaluate(data) {
                        Ok(v) if v.holds => {}
                        Ok(_) => {
                            results.push(result(RuleOutcome::Skip(
                                "preconditions not met".to_owned(),
                            )));
                            continue;
                        }
                        Err(e) => {
                            results.push(error(format!("preconditions of {rule_id}: {e}")));
                            continue;
                        }
                    }
                }
                // Exceptions: one without podSecurity waives the rule; podSecurity
                // entries only add exclusions to a podSecurity rule.
                let mut waived = false;
                let mut pss_exclusions: Vec<&ControlExclusion> = Vec::new();
                for e in &self.exceptions {
                    if !e.names(&policy_key, &rule_name) || !e.selects(object, &request) {
                        continue;
                    }
                    if e.pod_security.is_empty() || !matches!(rule.check, Check::PodSecurity(_)) {
                        waived = true;
                        break;
                    }
                    pss_exclusions.extend(&e.pod_security);
                }
                if waived {
                    tracing::debug!(policy = %policy_key, rule = %rule_name, "waived by a PolicyException");
                    results.push(result(RuleOutcome::Skip(
                        "waived by a PolicyException".to_owned(),
                    )));
                    continue;
                }
                let mut out = Vec::new();
                let mut failed = false;
                // Variables beyond `request.object` paths need JMESPath; a message whose
                // variables cannot be filled in keeps them as written.
                let message = match (&data, rule.message.contains("{{")) {
                    (Some(d), true) => match mutate::fill(&rule.message, d) {
                        Ok(Value::String(text)) => text,
                        Ok(other) => other.to_string(),
                        Err(_) => fill_message(&rule.message, value, &request),
                    },
                    _ => fill_message(&rule.message, value, &request),
                };
                let violation = |text: String, path: Option<String>| {
                    let mut v = Violation::new(self.name.clone(), rule_id.clone(), text)
                        .with_enforcement(enforcement);
                    if let Some(p) = path.filter(|p| !p.is_empty()) {
                        v = v.with_path(p);
                    }
                    v
                };
                let joined = |detail: &str| {
                    if message.is_empty() {
                        detail.to_owned()
                    } else {
                        format!("{message} ({detail})")
                    }
                };
                match &rule.check {
                    Check::Pattern(patterns) => match patterns.get(form, data.as_ref()) {
                        Ok(p) => {
                            if let pattern::Outcome::Fail { path, message: why } =
                                pattern::validate(value, &p)
                            {
                                // The path is the violation's own; the text says what failed.
                                out.push(violation(joined(&why), Some(path)));
                            }
                        }
                        Err(e) => {
                            failed = true;
                            out.push(violation(format!("pattern of {rule_id}: {e}"), None));
                        }
                    },
                    Check::AnyPattern(list) => {
                        let mut failures = Vec::new();
                        let mut held = false;
                        for (i, patterns) in list.iter().enumerate() {
                            let p = match patterns.get(form, data.as_ref()) {
                                Ok(p) => p,
                                Err(e) => {
                                    failures.push((i, String::new(), e));
                                    continue;
                                }
                            };
                            match pattern::validate(value, &p) {
                                pattern::Outcome::Fail { path, message: why } => {
                                    failures.push((i, path, why));
                                }
                                pattern::Outcome::Pass | pattern::Outcome::Skip { .. } => {
                                    held = true;
                                    break;
                                }
                            }
                        }
                        if !held {
                            let detail = failures
                                .iter()
                                .map(|(i, path, why)| format!("anyPattern[{i}]: {path}: {why}"))
                                .collect::<Vec<_>>()
                                .join("; ");
                            let path = failures.first().map(|(_, p, _)| p.clone());
                            out.push(violation(
                                joined(&format!("no pattern holds: {detail}")),
                                path,
                            ));
                        }
                    }
                    Check::Deny(conditions) => {
                        // `data` is there for every deny rule (`needs_jmes`).
                        let verdict = match &data {
                            Some(data) => conditions.evaluate(data),
                            None => Err("no data to evaluate the conditions over".to_owned()),
                        };
                        match verdict {
                            Ok(v) if v.holds => {
                                // The rule's message alone, unless conditions have their own.
                                let text = match (v.messages.is_empty(), message.is_empty()) {
                                    (false, _) => joined(&v.messages.join("; ")),
                                    (true, false) => message.clone(),
                                    (true, true) => {
                                        "denied by the rule's deny conditions".to_owned()
                                    }
                                };
                                out.push(violation(text, None));
                            }
                            Ok(_) => {}
                            Err(e) => {
                                failed = true;
                                out.push(violation(
                                    format!("deny conditions of {rule_id}: {e}"),
                                    None,
                                ));
                            }
                        }
                    }
                    Check::ForEach(list) => {
                        let view = pod_view(value, form, object);
                        let mut findings = Vec::new();
                        // `data` is there for every foreach rule (`needs_jmes`).
                        let ran = match &data {
                            Some(data) => foreach::ForEach::run_all(
                                list,
                                data,
                                &view,
                                form.prefix(),
                                &mut findings,
                            ),
                            None => Err("no data to iterate over".to_owned()),
                        };
                        match ran {
                            Ok(()) => out.extend(
                                findings
                                    .into_iter()
                                    .map(|f| violation(joined(&f.why), f.path)),
                            ),
                            Err(e) => {
                                failed = true;
                                out.push(violation(format!("foreach of {rule_id}: {e}"), None));
                            }
                        }
                    }
                    Check::PodSecurity(pss) => {
                        let mut pss = std::borrow::Cow::Borrowed(pss.as_ref());
                        for exclusion in pss_exclusions {
                            // Validated when the exception was loaded.
                            pss = std::borrow::Cow::Owned(
                                pss.into_owned().with_exclusion(exclusion.clone())?,
                            );
                        }
                        for finding in pss.evaluate(object, ctx) {
                            out.push(violation(joined(&finding.message), finding.path));
                        }
                    }
                    #[cfg(feature = "cel")]
                    Check::Cel(code) => {
                        let mut found = Vec::new();
                        // An auto-generated rule's CEL sees the Pod template as `object`.
                        let viewed = match form {
                            Form::Direct => None,
                            Form::Template | Form::CronJob => Some(Object::from_value(
                                pod_view(value, form, object).into_owned(),
                            )?),
                        };
                        // …in the controller's namespace.
                        let in_namespace;
                        let ctx = match (&viewed, request.namespace) {
                            (Some(_), Some(ns)) => {
                                in_namespace = PolicyContext {
                                    namespace: Some(ns.to_owned()),
                                    ..ctx.clone()
                                };
                                &in_namespace
                            }
                            _ => ctx,
                        };
                        code.evaluate(
                            &self.name,
                            &rule_id,
                            &format!("rule {rule_id}"),
                            None,
                            enforcement,
                            viewed.as_ref().unwrap_or(object),
                            ctx,
                            &mut found,
                        )?;
                        out.extend(found.into_iter().map(|mut v| {
                            v.message = joined(&v.message);
                            v
                        }));
                    }
                    // Applied by `mutate_results` and `generate_results`, and skipped above.
                    Check::Mutate(_) | Check::Generate(_) => {}
                }
                let outcome = if failed {
                    RuleOutcome::Error(out)
                } else if out.is_empty() {
                    RuleOutcome::Pass
                } else {
                    RuleOutcome::Fail(out)
                };
                results.push(result(outcome));
            }
        }
        Ok(results)
    }

    /// The rule's action, then the policy's, each with its namespace overrides.
    fn action(policy: &LoadedPolicy, rule: &Rule, request: &Request<'_>) -> Enforcement {
        let overridden = |list: &[Override]| {
            list.iter()
                .find(|o| {
                    let ns = request.namespace.unwrap_or_default();
                    let by_name = o.namespaces.iter().any(|n| glob(n, ns));
                    let by_labels = o
                        .namespace_selector
                        .as_ref()
                        .is_some_and(|s| request.namespaces.get(ns).is_some_and(|l| s.matches(l)));
                    by_name || by_labels
                })
                .map(|o| o.action)
        };
        overridden(&rule.overrides)
            .or(rule.action)
            .or_else(|| overridden(&policy.overrides))
            .unwrap_or(policy.action)
    }
}

/// The violations of failed and errored rules, in the order of the results.
/// What a rule's preconditions say before it runs: `Ok(None)` to run it (there are
/// none, or they hold), `Ok(Some(skip))` when they do not hold, and the error from
/// computing the rule's `data` or evaluating them otherwise.
fn unmet_preconditions(
    preconditions: Option<&conditions::Conditions>,
    data: impl FnOnce() -> std::result::Result<Rcvar, String>,
) -> std::result::Result<Option<RuleOutcome>, String> {
    let Some(pre) = preconditions else {
        return Ok(None);
    };
    let verdict = data().and_then(|d| pre.evaluate(&d))?;
    Ok((!verdict.holds).then(|| RuleOutcome::Skip("preconditions not met".to_owned())))
}

fn violations(results: Vec<RuleResult>) -> Vec<Violation> {
    results
        .into_iter()
        .flat_map(|r| match r.outcome {
            RuleOutcome::Fail(v) | RuleOutcome::Error(v) => v,
            RuleOutcome::Pass | RuleOutcome::Skip(_) => Vec::new(),
        })
        .collect()
}

/// The validate rules of a [`KyvernoPolicy`] alone, checking each object as it is given:
/// the [`Policy`] for objects the policy's mutate rules have already changed.
///
/// [`KyvernoPolicy`]'s own [`Policy::evaluate`] applies the mutate rules first, which is
/// right for manifests as written (`idpctl policy check` predicts what admission will
/// decide). The validating admission webhook, though, receives the object after the
/// mutating webhook changed it, and a delivery pipeline checks what its mutations left.
/// Mutating there a second time is harmless for add-if-not-present anchors and merges,
/// but a JSON patch that appends to a list would be validated on a list appended twice.
/// Both share one loaded policy set.
///
/// ```
/// use std::sync::Arc;
/// use idp_core::{Object, Policy, PolicyContext};
/// use idp_policy::kyverno::{KyvernoPolicy, ValidateRules};
/// let p = Arc::new(KyvernoPolicy::from_yaml("kyverno", "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: team\n      match: {any: [{resources: {kinds: [ConfigMap]}}]}\n      mutate: {patchStrategicMerge: {metadata: {labels: {+(team): platform}}}}\n    - name: has-team\n      match: {any: [{resources: {kinds: [ConfigMap]}}]}\n      validate: {message: a team label is required, pattern: {metadata: {labels: {team: '?*'}}}}\n", None).unwrap());
/// let bare = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})).unwrap();
/// let ctx = PolicyContext::new();
/// // The whole policy mutates first, so the bare object passes ...
/// assert!(p.evaluate(&bare, &ctx).is_empty());
/// // ... while the validate rules alone see it as given.
/// let validate = ValidateRules::new(p.clone());
/// assert_eq!(validate.evaluate(&bare, &ctx)[0].rule, "p/has-team");
/// ```
#[derive(Debug, Clone)]
pub struct ValidateRules {
    policy: Rules,
    /// Only the policies background scans apply.
    background: bool,
}

/// Where [`ValidateRules`] take their policy from.
#[derive(Debug, Clone)]
enum Rules {
    /// One loaded set.
    Fixed(Arc<KyvernoPolicy>),
    /// The set in place in a [`Swappable`] at each evaluation.
    Following(Arc<Swappable<KyvernoPolicy>>),
}

impl ValidateRules {
    /// The validate rules of `policy`.
    ///
    /// ```
    /// use idp_core::Policy;
    /// let p = std::sync::Arc::new(idp_policy::kyverno::KyvernoPolicy::new("kyverno"));
    /// assert_eq!(idp_policy::kyverno::ValidateRules::new(p).name(), "kyverno");
    /// ```
    pub fn new(policy: Arc<KyvernoPolicy>) -> Self {
        Self {
            policy: Rules::Fixed(policy),
            background: false,
        }
    }

    /// The validate rules of whatever set `shared` holds at each evaluation: the set a
    /// server rebuilds as the policies kept in the cluster change, whose mutate rules
    /// the same [`Swappable`] applies as a [`Mutation`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use idp_core::{Object, Policy, PolicyContext};
    /// use idp_policy::Swappable;
    /// use idp_policy::kyverno::{KyvernoPolicy, ValidateRules};
    /// let shared = Arc::new(Swappable::new("kyverno", KyvernoPolicy::new("kyverno")));
    /// let rules = ValidateRules::following(shared.clone());
    /// let bare = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})).unwrap();
    /// let ctx = PolicyContext::new();
    /// assert!(rules.evaluate(&bare, &ctx).is_empty());
    /// shared.replace(KyvernoPolicy::from_yaml("kyverno", "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  rules:\n    - name: has-team\n      match: {any: [{resources: {kinds: [ConfigMap]}}]}\n      validate: {message: a team label is required, pattern: {metadata: {labels: {team: '?*'}}}}\n", None).unwrap());
    /// assert_eq!(rules.evaluate(&bare, &ctx)[0].rule, "p/has-team");
    /// ```
    pub fn following(shared: Arc<Swappable<KyvernoPolicy>>) -> Self {
        Self {
            policy: Rules::Following(shared),
            background: false,
        }
    }

    /// The validate rules of `policy` as Kyverno's background scans apply them to what
    /// already runs in a cluster (see [`crate::audit`]): those of the policies whose
    /// `spec.background` is not `false`. A policy that sets it false is meant for
    /// admission only (it reads the request's user, say, which a stored object has not).
    ///
    /// ```
    /// use idp_core::{Object, Policy, PolicyContext};
    /// use idp_policy::kyverno::{KyvernoPolicy, ValidateRules};
    /// let p = std::sync::Arc::new(KyvernoPolicy::from_yaml("kyverno", "apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata: {name: p}\nspec:\n  background: false\n  rules:\n    - name: has-team\n      match: {any: [{resources: {kinds: [ConfigMap]}}]}\n      validate: {message: a team label is required, pattern: {metadata: {labels: {team: '?*'}}}}\n", None).unwrap());
    /// let bare = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})).unwrap();
    /// let ctx = PolicyContext::new();
    /// assert_eq!(ValidateRules::new(p.clone()).evaluate(&bare, &ctx).len(), 1);
    /// assert!(ValidateRules::background(p).evaluate(&bare, &ctx).is_empty());
    /// ```
    pub fn background(policy: Arc<KyvernoPolicy>) -> Self {
        Self::new(policy).for_background()
    }

    /// These rules as background scans apply them (see [`ValidateRules::background`]):
    /// only the policies whose `spec.background` is not `false`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use idp_policy::Swappable;
    /// use idp_policy::kyverno::{KyvernoPolicy, ValidateRules};
    /// let shared = Arc::new(Swappable::new("kyverno", KyvernoPolicy::new("kyverno")));
    /// let scan = ValidateRules::following(shared).for_background();
    /// # let _ = scan;
    /// ```
    #[must_use]
    pub fn for_background(mut self) -> Self {
        self.background = true;
        self
    }

    /// The result of every validate rule that matches `object`, checked as given (see
    /// [`KyvernoPolicy::results`] for the outcomes).
    ///
    /// # Errors
    /// Input a check cannot take (an object nested too deep for CEL).
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// let p = std::sync::Arc::new(idp_policy::kyverno::KyvernoPolicy::new("kyverno"));
    /// let o = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})).unwrap();
    /// assert!(idp_policy::kyverno::ValidateRules::new(p).results(&o, &PolicyContext::new()).unwrap().is_empty());
    /// ```
    pub fn results(&self, object: &Object, ctx: &PolicyContext) -> Result<Vec<RuleResult>> {
        let policy = self.policy();
        let _span = tracing::trace_span!("kyverno.validate", policy = %policy.name, kind = object.kind(), name = object.name()).entered();
        policy.validate_results_of(object, ctx, self.background)
    }

    /// The policy these rules belong to: the one given, or the one in place now in the
    /// [`Swappable`] they follow.
    ///
    /// ```
    /// let p = std::sync::Arc::new(idp_policy::kyverno::KyvernoPolicy::new("kyverno"));
    /// let v = idp_policy::kyverno::ValidateRules::new(p.clone());
    /// assert!(std::sync::Arc::ptr_eq(&v.policy(), &p));
    /// ```
    pub fn policy(&self) -> Arc<KyvernoPolicy> {
        match &self.policy {
            Rules::Fixed(policy) => policy.clone(),
            Rules::Following(shared) => shared.current(),
        }
    }
}

impl Policy for ValidateRules {
    fn name(&self) -> &str {
        match &self.policy {
            Rules::Fixed(policy) => &policy.name,
            Rules::Following(shared) => Policy::name(shared.as_ref()),
        }
    }

    fn evaluate(&self, object: &Object, ctx: &PolicyContext) -> Vec<Violation> {
        match self.results(object, ctx) {
            Ok(results) => violations(results),
            Err(e) => vec![Violation::new(self.name().to_owned(), "error", e.report())],
        }
    }
}

/// The mutate rules as a [`Mutation`]: the object after [`KyvernoPolicy::mutate_results`].
/// A rule that fails (without `failurePolicy: Ignore`) fails the whole mutation with a
/// denial naming it, as Kyverno's webhook refuses the request; the object is then left as
/// it was. Whether applying twice equals applying once depends on the patches:
/// add-if-not-present anchors and merges are, a JSON patch appending to a list is not.
impl Mutation for KyvernoPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn mutate(&self, object: &mut Object, ctx: &PolicyContext) -> Result<bool> {
        if !self.has_mutate_rules() {
            return Ok(false);
        }
        let (mutated, results) = self.mutate_results(object, ctx)?;
        let errors: Vec<Violation> = results
            .into_iter()
            .filter_map(|r| match r.outcome {
                RuleOutcome::Error(v) => Some(v),
                _ => None,
            })
            .flatten()
            .collect();
        if !errors.is_empty() {
            return Err(Error::denied(errors));
        }
        let changed = mutated.as_map() != object.as_map();
        *object = mutated;
        Ok(changed)
    }
}

impl Policy for KyvernoPolicy {
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// JSON shaped like policies: keys and strings from Kyverno's vocabulary, so random
    /// documents reach deep into the reader.
    fn arb_policy_json() -> impl Strategy<Value = Value> {
        let words = vec![
            "match",
            "exclude",
            "any",
            "all",
            "resources",
            "kinds",
            "names",
            "namespaces",
            "selector",
            "namespaceSelector",
            "operations",
            "annotations",
            "validate",
            "pattern",
            "anyPattern",
            "podSecurity",
            "level",
            "version",
            "controlName",
            "images",
            "cel",
            "expressions",
            "expression",
            "message",
            "failureAction",
            "name",
            "matchLabels",
            "failureActionOverrides",
            "action",
            "spec",
            "containers",
            "=(hostNetwork)",
            "(image)",
            "^(containers)",
            "X(hostPath)",
            "<(name)",
            "generate",
            "apiVersion",
            "kind",
            "namespace",
            "data",
            "clone",
            "cloneList",
            "synchronize",
            "orphanDownstreamOnPolicyDelete",
            "foreach",
            "list",
        ];
        let values = vec![
            "Pod",
            "Deployment",
            "apps/v1/Deployment",
            "*",
            "Enforce",
            "Audit",
            "restricted",
            "baseline",
            "privileged",
            "v1.30",
            "latest",
            "?*",
            "kube-*",
            "!default",
            ">=2",
            "1-3",
            "true",
            "object.spec.replicas > 1",
            "Capabilities",
            "CREATE",
            "",
            "v1",
            "ConfigMap",
            "v1/Secret",
            "default",
            "{{request.object.metadata.name}}",
            "{{ request.object.nope }}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-3i64..5).prop_map(Value::from),
            prop::sample::select(values).prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(6, 64, 5, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop::sample::select(words.clone()).prop_map(str::to_owned),
                        inner
                    ),
                    0..5
                )
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn reading_any_policy_never_panics(rule in arb_policy_json(), spec in arb_policy_json()) {
            let mut spec = match spec {
                Value::Object(m) => m,
                _ => serde_json::Map::new(),
            };
            let mut rule = rule;
            if let Value::Object(r) = &mut rule {
                r.insert("name".into(), json!("r"));
                // A valid match where the random one is missing, so that random
                // validate blocks are read and run too.
                // Generate rules are tried on a Namespace too.
                let kinds = if r.contains_key("generate") {
                    json!(["Pod", "Deployment", "Namespace"])
                } else {
                    json!(["Pod", "Deployment"])
                };
                r.entry("match").or_insert_with(|| json!({"any": [{"resources": {"kinds": kinds}}]}));
            }
            spec.insert("rules".into(), json!([rule]));
            let doc = json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
                "metadata": {"name": "p"}, "spec": spec});
            let Ok(object) = Object::from_value(doc) else { return Ok(()); };
            if let Ok(loaded) = LoadedPolicy::from_object(&object, &Values::default()) {
                let policy = KyvernoPolicy { policies: vec![loaded], ..KyvernoPolicy::new("k") };
                for target in [
                    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a", "namespace": "kube-x"},
                        "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "i:latest"}]}}),
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                        "spec": {"replicas": 1, "template": {"spec": {"containers": []}}}}),
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}}),
                ] {
                    let o = Object::from_value(target).unwrap();
                    let _ = policy.evaluate(&o, &PolicyContext::new());
                    let _ = policy.generate_results(&o, &PolicyContext::new());
                }
            }
        }
    }

    #[test]
    fn globs() {
        assert!(glob("kube-*", "kube-system"));
        assert!(glob("*-system", "kube-system"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*", ""));
        assert!(!glob("prod", "production"));
        // Many stars do not backtrack without bound.
        assert!(!glob(&"*a".repeat(40), &"a".repeat(30)));
    }

    #[test]
    fn kinds() {
        let k = KindSpec::parse("apps/v1/Deployment");
        assert!(k.matches("apps", "v1", "Deployment"));
        assert!(!k.matches("", "v1", "Deployment"));
        let k = KindSpec::parse("v1/Pod");
        assert!(k.matches("", "v1", "Pod") && k.is_pod());
        assert!(KindSpec::parse("*").matches("apps", "v1", "StatefulSet"));
    }

    #[test]
    fn messages_fill_request_variables() {
        let object = json!({"metadata": {"name": "web", "labels": {"team": "cart"}}});
        let namespaces = BTreeMap::new();
        let request = Request {
            namespace: Some("shop"),
            operation: "CREATE",
            namespaces: &namespaces,
        };
        assert_eq!(
            fill_message(
                "{{request.object.metadata.name}} in {{ request.namespace }} ({{request.operation}}), {{ images.containers }}",
                &object,
                &request
            ),
            "web in shop (CREATE), {{ images.containers }}"
        );
        assert_eq!(
            fill_message("open {{ end", &object, &request),
            "open {{ end"
        );
    }
}
