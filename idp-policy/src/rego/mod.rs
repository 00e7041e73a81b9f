//! Rego policies evaluated in process by [regorus](https://docs.rs/regorus) (feature
//! `rego`).
//!
//! Start with [`RegoPolicy`]: one value holds any number of
//!
//! - **conftest-style modules** — `.rego` files whose packages declare `deny`,
//!   `violation` or `warn` rules (or `deny_…`, `violation_…`, `warn_…` variants) over
//!   `input` = the object. `deny`/`violation` results become [`Enforcement::Deny`]
//!   violations, `warn` results [`Enforcement::Warn`]. A result is a message string or an
//!   object with a `msg` field. Every package that declares such a rule is evaluated (like
//!   `conftest test --all-namespaces`); [`RegoPolicy::namespaces`] restricts the list;
//! - **Gatekeeper constraint templates and constraints** — see [`gatekeeper`]: the
//!   template's Rego (`spec.targets[].rego` and `libs`) runs for every constraint whose
//!   `match` selects the object, with `input.review` and `input.parameters` as Gatekeeper
//!   builds them, and the constraint's `enforcementAction` decides the enforcement. A
//!   template's `K8sNativeValidation` (CEL) code runs instead when the `cel` feature is
//!   on, as Gatekeeper gives it priority.
//!
//! Data documents (JSON or YAML) are merged under `data` for the conftest modules.
//!
//! # Safety
//!
//! - No network: regorus is built without its `http` builtins (`http.send` is unknown at
//!   load time), and there is no `opa.runtime` (no environment).
//! - Every evaluation runs under a wall-clock **time limit** (regorus' cooperative
//!   execution timer, checked while the interpreter iterates; default
//!   [`DEFAULT_TIME_LIMIT`]). A policy that loops over a huge product of ranges is
//!   stopped with an [`ErrorKind::Timeout`](idp_core::ErrorKind::Timeout) error naming
//!   the policy and the rule. A single builtin call is not interrupted, so a builtin
//!   asked to build something enormous (`numbers.range(1, 1e12)`) is refused by regorus'
//!   own argument checks rather than by the timer.
//! - Policy source is bounded by regorus' policy length limits (file size, lines).
//!
//! [`Policy::evaluate`] cannot return an error, so an evaluation that fails (time limit,
//! runtime error) becomes a `rego-error` violation — [`Enforcement::Deny`] unless
//! [`RegoPolicy::fail_open`] is set, in which case it is reported as
//! [`Enforcement::Audit`]. [`RegoPolicy::try_evaluate`] returns the error itself.
//!
//! ```
//! use idp_core::{Object, Policy, PolicyContext};
//! use idp_policy::rego::RegoPolicy;
//!
//! let policy = RegoPolicy::new("no-privileged")
//!     .with_module("privileged.rego", r#"
//!         package main
//!         deny contains msg if {
//!             some c in input.spec.containers
//!             c.securityContext.privileged
//!             msg := sprintf("container %q must not be privileged", [c.name])
//!         }
//!     "#).unwrap();
//! let pod = Object::from_value(serde_json::json!({
//!     "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
//!     "spec": {"containers": [{"name": "app", "securityContext": {"privileged": true}}]}
//! })).unwrap();
//! let violations = policy.evaluate(&pod, &PolicyContext::new());
//! assert_eq!(violations[0].message, "container \"app\" must not be privileged");
//! assert_eq!(violations[0].rule, "main.deny");
//! ```

pub mod cluster;
pub mod gatekeeper;

use std::fmt;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use idp_core::model::Enforcement;
use idp_core::{Error, Object, Policy, PolicyContext, Result, Violation};
use regorus::{Engine, LimitError};

pub use gatekeeper::{Constraint, ConstraintTemplate, GatekeeperMatch};

/// The per-evaluation time limit when none is set: 100 ms.
///
/// ```
/// assert_eq!(idp_policy::rego::DEFAULT_TIME_LIMIT.as_millis(), 100);
/// ```
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_millis(100);

/// How many interpreter work units pass between two clock reads.
const CHECK_INTERVAL: u32 = 64;

/// OPA's deprecated built-ins that regorus leaves out but Rego v0 policies (the
/// gatekeeper-library's among them) still call: `re_match(pattern, value)`,
/// `any(collection)`, `all(collection)` and `set_diff(a, b)`, with OPA's meaning. Names a
/// policy defines itself take precedence, so registering them cannot break a policy.
fn add_deprecated_builtins(engine: &mut Engine) {
    use regorus::Value;
    fn items(v: &Value) -> anyhow::Result<Vec<Value>> {
        if let Ok(a) = v.as_array() {
            return Ok(a.iter().cloned().collect());
        }
        if let Ok(s) = v.as_set() {
            return Ok(s.iter().cloned().collect());
        }
        anyhow::bail!("expected an array or a set")
    }
    let re_match = |args: Vec<Value>| -> anyhow::Result<Value> {
        let [pattern, value] = args.as_slice() else {
            anyhow::bail!("re_match takes a pattern and a string");
        };
        let re = regex::RegexBuilder::new(pattern.as_string()?.as_ref())
            .size_limit(1 << 20)
            .build()?;
        Ok(Value::from(re.is_match(value.as_string()?.as_ref())))
    };
    let any = |args: Vec<Value>| -> anyhow::Result<Value> {
        let [c] = args.as_slice() else {
            anyhow::bail!("any takes one collection");
        };
        Ok(Value::from(
            items(c)?.iter().any(|v| *v == Value::from(true)),
        ))
    };
    let all = |args: Vec<Value>| -> anyhow::Result<Value> {
        let [c] = args.as_slice() else {
            anyhow::bail!("all takes one collection");
        };
        Ok(Value::from(
            items(c)?.iter().all(|v| *v == Value::from(true)),
        ))
    };
    let set_diff = |args: Vec<Value>| -> anyhow::Result<Value> {
        let [a, b] = args.as_slice() else {
            anyhow::bail!("set_diff takes two sets");
        };
        let (a, b) = (a.as_set()?, b.as_set()?);
        let kept: std::collections::BTreeSet<Value> =
            a.iter().filter(|v| !b.contains(v)).cloned().collect();
        Ok(Value::from(kept))
    };
    // Registering fails only for a name taken twice, which these are not.
    let _ = engine.add_extension("re_match".to_owned(), 2, Box::new(re_match));
    let _ = engine.add_extension("any".to_owned(), 1, Box::new(any));
    let _ = engine.add_extension("all".to_owned(), 1, Box::new(all));
    let _ = engine.add_extension("set_diff".to_owned(), 2, Box::new(set_diff));
}

/// A regorus engine behind a lock: evaluation needs `&mut Engine` (it sets the input),
/// a [`Policy`] is `&self` and `Sync`.
pub(crate) struct LockedEngine(Mutex<Engine>);

impl LockedEngine {
    pub(crate) fn new(time_limit: Duration) -> Self {
        let mut engine = Engine::new();
        set_time_limit(&mut engine, time_limit);
        add_deprecated_builtins(&mut engine);
        Self(Mutex::new(engine))
    }

    pub(crate) fn with<T>(&self, f: impl FnOnce(&mut Engine) -> T) -> T {
        let mut guard = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }
}

impl Clone for LockedEngine {
    fn clone(&self) -> Self {
        Self(Mutex::new(self.with(|e| e.clone())))
    }
}

fn set_time_limit(engine: &mut Engine, limit: Duration) {
    engine.set_execution_timer_config(regorus::utils::limits::ExecutionTimerConfig {
        limit,
        check_interval: NonZeroU32::new(CHECK_INTERVAL).unwrap_or(NonZeroU32::MIN),
    });
}

/// Add one module, in Rego v1 syntax when it parses as such, else in v0 syntax
/// (Gatekeeper templates and older conftest policies are v0). Returns the package
/// (`data.main`).
pub(crate) fn add_module(engine: &mut Engine, path: &str, source: &str) -> Result<String> {
    engine.set_rego_v0(false);
    match engine.add_policy(path.to_owned(), source.to_owned()) {
        Ok(package) => Ok(package),
        Err(v1_error) => {
            engine.set_rego_v0(true);
            let v0 = engine.add_policy(path.to_owned(), source.to_owned());
            engine.set_rego_v0(false);
            v0.map_err(|_| {
                Error::invalid_input(format!(
                    "{path}: not a valid Rego module: {v1_error}\n(tried Rego v1 syntax, then v0 syntax; fix the module or check its `package` line)"
                ))
            })
        }
    }
}

/// Turn a regorus evaluation error into ours: a time limit is a [`Timeout`](idp_core::ErrorKind::Timeout).
pub(crate) fn eval_error(policy: &str, what: &str, error: &anyhow::Error) -> Error {
    let limit = error.downcast_ref::<LimitError>().copied().or_else(|| {
        error
            .chain()
            .find_map(|cause| cause.downcast_ref::<LimitError>().copied())
    });
    match limit {
        Some(LimitError::TimeLimitExceeded { elapsed, limit }) => Error::timeout(format!(
            "rego policy {policy}: evaluating {what} was stopped after {} ms (limit {} ms): the policy loops or explodes over its input; simplify it or raise the limit with RegoPolicy::time_limit",
            elapsed.as_millis(),
            limit.as_millis()
        )),
        Some(other) => Error::timeout(format!(
            "rego policy {policy}: evaluating {what} hit a limit: {other}"
        )),
        None => Error::invalid_input(format!(
            "rego policy {policy}: evaluating {what} failed: {error}"
        )),
    }
}

/// Messages from a rule's value: a set/array of strings or `{"msg": ...}` objects (a
/// single string or object is accepted too). Anything else is shown as JSON.
pub(crate) fn messages(value: &regorus::Value) -> Vec<(String, Option<serde_json::Value>)> {
    if *value == regorus::Value::Undefined {
        return Vec::new();
    }
    let json = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    let items = match json {
        serde_json::Value::Array(items) => items,
        serde_json::Value::Null | serde_json::Value::Bool(false) => Vec::new(),
        other => vec![other],
    };
    items
        .into_iter()
        .map(|item| match item {
            serde_json::Value::String(s) => (s, None),
            serde_json::Value::Object(mut map) => {
                let details = map.remove("details");
                let msg = match map.remove("msg") {
                    Some(serde_json::Value::String(s)) => s,
                    Some(other) => other.to_string(),
                    None => serde_json::Value::Object(map).to_string(),
                };
                (msg, details)
            }
            other => (other.to_string(), None),
        })
        .collect()
}

/// A conftest-convention rule found in a module: `deny`, `violation`, `warn` or one of
/// their `_suffix` variants.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ConftestRule {
    /// `data.main`.
    package: String,
    /// `deny_latest`.
    name: String,
    enforcement: Enforcement,
}

/// The conftest rule names a module declares, found by scanning its rule heads.
fn conftest_rule_names(source: &str) -> Vec<(String, Enforcement)> {
    let mut out: Vec<(String, Enforcement)> = Vec::new();
    for line in source.lines() {
        let line = line.trim_start();
        let name: String = line
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let enforcement = if name == "deny"
            || name == "violation"
            || name.starts_with("deny_")
            || name.starts_with("violation_")
        {
            Enforcement::Deny
        } else if name == "warn" || name.starts_with("warn_") {
            Enforcement::Warn
        } else {
            continue;
        };
        let rest = line[name.len()..].trim_start();
        let is_head = rest.starts_with('[')
            || rest.starts_with('{')
            || rest.starts_with('=')
            || rest.starts_with(":=")
            || rest.starts_with("contains ")
            || rest.starts_with("if ")
            || rest.starts_with("if{");
        if is_head && !out.iter().any(|(n, _)| *n == name) {
            out.push((name, enforcement));
        }
    }
    out
}

/// A Rego policy: conftest-style modules plus Gatekeeper templates and constraints. See
/// the [module documentation](self).
///
/// ```
/// use idp_policy::rego::RegoPolicy;
/// let policy = RegoPolicy::new("team-rules")
///     .with_module("a.rego", "package main\nwarn contains \"always\" if { true }\n").unwrap();
/// assert_eq!(idp_core::Policy::name(&policy), "team-rules");
/// ```
#[derive(Clone)]
pub struct RegoPolicy {
    name: String,
    engine: LockedEngine,
    rules: Vec<ConftestRule>,
    namespaces: Option<Vec<String>>,
    gatekeeper: gatekeeper::Gatekeeper,
    time_limit: Duration,
    fail_open: bool,
}

impl fmt::Debug for RegoPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RegoPolicy")
            .field("name", &self.name)
            .field("rules", &self.rules)
            .field("namespaces", &self.namespaces)
            .field("gatekeeper", &self.gatekeeper)
            .field("time_limit", &self.time_limit)
            .field("fail_open", &self.fail_open)
            .finish_non_exhaustive()
    }
}

impl RegoPolicy {
    /// An empty policy named `name` (the `policy` of its violations).
    ///
    /// ```
    /// let p = idp_policy::rego::RegoPolicy::new("rego");
    /// assert!(p.rules().is_empty());
    /// ```
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            engine: LockedEngine::new(DEFAULT_TIME_LIMIT),
            rules: Vec::new(),
            namespaces: None,
            gatekeeper: gatekeeper::Gatekeeper::default(),
            time_limit: DEFAULT_TIME_LIMIT,
            fail_open: false,
        }
    }

    /// Add a conftest-style module (`path` names it in errors).
    ///
    /// ```
    /// use idp_policy::rego::RegoPolicy;
    /// let err = RegoPolicy::new("p").with_module("bad.rego", "package\n").unwrap_err();
    /// assert!(err.to_string().contains("bad.rego"));
    /// ```
    pub fn with_module(mut self, path: impl AsRef<str>, source: impl AsRef<str>) -> Result<Self> {
        self.add_module(path.as_ref(), source.as_ref())?;
        Ok(self)
    }

    /// Add a conftest-style module in place.
    ///
    /// ```
    /// let mut p = idp_policy::rego::RegoPolicy::new("p");
    /// p.add_module("a.rego", "package k8s\ndeny_latest contains \"x\" if { false }\n").unwrap();
    /// assert_eq!(p.rules(), vec!["k8s.deny_latest".to_string()]);
    /// ```
    pub fn add_module(&mut self, path: &str, source: &str) -> Result<()> {
        let package = self.engine.with(|e| add_module(e, path, source))?;
        for (name, enforcement) in conftest_rule_names(source) {
            let rule = ConftestRule {
                package: package.clone(),
                name,
                enforcement,
            };
            if !self.rules.contains(&rule) {
                self.rules.push(rule);
            }
        }
        Ok(())
    }

    /// Read a `.rego` file and add it.
    ///
    /// ```
    /// let file = std::env::temp_dir().join(format!("idp-policy-doc-{}.rego", std::process::id()));
    /// std::fs::write(&file, "package main\ndeny contains \"no\" if { input.kind == \"Secret\" }\n").unwrap();
    /// let p = idp_policy::rego::RegoPolicy::new("p").with_file(&file).unwrap();
    /// assert_eq!(p.rules().len(), 1);
    /// std::fs::remove_file(&file).unwrap();
    /// ```
    pub fn with_file(mut self, path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let source = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid_input(format!("cannot read Rego module {}", path.display()))
                .with_source(e)
        })?;
        self.add_module(&path.display().to_string(), &source)?;
        Ok(self)
    }

    /// Merge a JSON or YAML data document under `data`.
    ///
    /// ```
    /// use idp_core::{Object, Policy, PolicyContext};
    /// let p = idp_policy::rego::RegoPolicy::new("p")
    ///     .with_data("registries: [ghcr.io/acme]").unwrap()
    ///     .with_module("r.rego", r#"package main
    /// deny contains msg if {
    ///     not startswith(input.spec.image, data.registries[0])
    ///     msg := "untrusted registry"
    /// }"#).unwrap();
    /// let o = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "X",
    ///     "metadata": {"name": "x"}, "spec": {"image": "docker.io/x"}})).unwrap();
    /// assert_eq!(p.evaluate(&o, &PolicyContext::new()).len(), 1);
    /// ```
    pub fn with_data(self, text: &str) -> Result<Self> {
        let value: serde_json::Value = if text.trim_start().starts_with('{') {
            serde_json::from_str(text)
                .map_err(|e| Error::invalid_input("Rego data is not valid JSON").with_source(e))?
        } else {
            serde_saphyr::from_str(text)
                .map_err(|e| Error::invalid_input("Rego data is not valid YAML").with_source(e))?
        };
        if !value.is_object() {
            return Err(Error::invalid_input(
                "Rego data must be an object (its keys land under `data`)",
            ));
        }
        self.engine
            .with(|e| e.add_data(regorus::Value::from(value)))
            .map_err(|e| Error::invalid_input(format!("cannot merge Rego data: {e}")))?;
        Ok(self)
    }

    /// Load Gatekeeper `ConstraintTemplate` and constraint documents (multi-document
    /// YAML), plus `Namespace` objects used by `namespaceSelector`, and the
    /// `ExpansionTemplate`s and mutators of expansion. See [`gatekeeper`].
    ///
    /// ```
    /// let p = idp_policy::rego::RegoPolicy::new("gk").with_gatekeeper_yaml("", None).unwrap();
    /// assert!(p.constraints().is_empty());
    /// ```
    pub fn with_gatekeeper_yaml(mut self, text: &str, file: Option<&Path>) -> Result<Self> {
        self.gatekeeper.load_yaml(text, file, self.time_limit)?;
        Ok(self)
    }

    /// Add one template.
    ///
    /// ```
    /// # use idp_policy::rego::{RegoPolicy, ConstraintTemplate};
    /// let t = ConstraintTemplate::from_value(&serde_json::json!({
    ///   "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
    ///   "metadata": {"name": "k8sdeny"},
    ///   "spec": {"crd": {"spec": {"names": {"kind": "K8sDeny"}}},
    ///     "targets": [{"target": "admission.k8s.gatekeeper.sh",
    ///       "rego": "package k8sdeny\nviolation[{\"msg\": \"no\"}] { true }"}]}
    /// }), None).unwrap();
    /// let p = RegoPolicy::new("gk").with_template(t).unwrap();
    /// assert_eq!(p.templates(), vec!["K8sDeny"]);
    /// ```
    pub fn with_template(mut self, template: ConstraintTemplate) -> Result<Self> {
        self.gatekeeper.add_template(template, self.time_limit)?;
        Ok(self)
    }

    /// [`Self::with_template`] in place: a template that does not compile is an error
    /// and leaves the policy as it was, so that a caller loading templates one by one
    /// (as read from a cluster) can skip the broken one and keep the others.
    ///
    /// ```
    /// # use idp_policy::rego::{RegoPolicy, ConstraintTemplate};
    /// let broken = ConstraintTemplate::from_value(&serde_json::json!({
    ///   "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
    ///   "metadata": {"name": "k8sbroken"},
    ///   "spec": {"crd": {"spec": {"names": {"kind": "K8sBroken"}}},
    ///     "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": "package k8sbroken\nviolation[{"}]}
    /// }), None).unwrap();
    /// let mut p = RegoPolicy::new("gk");
    /// assert!(p.add_template(broken).is_err());
    /// assert!(p.templates().is_empty());
    /// ```
    pub fn add_template(&mut self, template: ConstraintTemplate) -> Result<()> {
        self.gatekeeper.add_template(template, self.time_limit)
    }

    /// Add one constraint (its template must be added first or later; a constraint of
    /// an unknown kind is an error at evaluation time).
    ///
    /// ```
    /// # use idp_policy::rego::{RegoPolicy, Constraint};
    /// let c = Constraint::from_value(&serde_json::json!({
    ///   "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sDeny",
    ///   "metadata": {"name": "deny-all"}, "spec": {}}), None).unwrap();
    /// assert_eq!(RegoPolicy::new("gk").with_constraint(c).constraints(), vec!["K8sDeny/deny-all"]);
    /// ```
    pub fn with_constraint(mut self, constraint: Constraint) -> Self {
        self.gatekeeper.constraints.push(constraint);
        self
    }

    /// [`Self::with_constraint`] in place.
    ///
    /// ```
    /// # use idp_policy::rego::{RegoPolicy, Constraint};
    /// let c = Constraint::from_value(&serde_json::json!({
    ///   "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sDeny",
    ///   "metadata": {"name": "deny-all"}}), None).unwrap();
    /// let mut p = RegoPolicy::new("gk");
    /// p.add_constraint(c);
    /// assert_eq!(p.constraints(), vec!["K8sDeny/deny-all"]);
    /// ```
    pub fn add_constraint(&mut self, constraint: Constraint) {
        self.gatekeeper.constraints.push(constraint);
    }

    /// Fill Gatekeeper's `data.inventory` with `objects` (replacing what an earlier call
    /// gave), laid out as Gatekeeper replicates cluster state:
    /// `data.inventory.namespace[<namespace>][<apiVersion>][<kind>][<name>]`, and
    /// `data.inventory.cluster[<apiVersion>][<kind>][<name>]` for cluster-scoped kinds.
    /// Give it the manifests of a change (and, if you have them, the objects already in
    /// the cluster) and referential templates — a unique Ingress host, a unique Service
    /// selector — check the change as a whole. `Namespace` objects among them also
    /// give `namespaceSelector` its labels.
    ///
    /// # Errors
    ///
    /// The data cannot be added to a template's engine.
    ///
    /// ```
    /// use idp_core::{Object, Policy, PolicyContext};
    /// let yaml = r#"
    /// apiVersion: templates.gatekeeper.sh/v1
    /// kind: ConstraintTemplate
    /// metadata: {name: uniquename}
    /// spec:
    ///   crd: {spec: {names: {kind: UniqueName}}}
    ///   targets:
    ///     - target: admission.k8s.gatekeeper.sh
    ///       rego: |
    ///         package uniquename
    ///         violation[{"msg": msg}] {
    ///           other := data.inventory.namespace[ns][_][input.review.kind.kind][input.review.name]
    ///           ns != input.review.namespace
    ///           msg := sprintf("the name is taken in namespace %v", [ns])
    ///         }
    /// ---
    /// apiVersion: constraints.gatekeeper.sh/v1beta1
    /// kind: UniqueName
    /// metadata: {name: unique-names}
    /// "#;
    /// let a = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "a"}}))?;
    /// let b = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "b"}}))?;
    /// let policy = idp_policy::rego::RegoPolicy::new("gk")
    ///     .with_gatekeeper_yaml(yaml, None)?
    ///     .with_inventory([&a, &b])?;
    /// let found = policy.evaluate(&a, &PolicyContext::new());
    /// assert_eq!(found[0].message, "the name is taken in namespace b");
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn with_inventory<'o, I>(mut self, objects: I) -> Result<Self>
    where
        I: IntoIterator<Item = &'o Object>,
        I::IntoIter: Clone,
    {
        self.gatekeeper.set_inventory(objects.into_iter())?;
        Ok(self)
    }

    /// Give a `Namespace` object, whose labels `namespaceSelector` matches against.
    ///
    /// ```
    /// let ns = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Namespace",
    ///     "metadata": {"name": "shop", "labels": {"env": "prod"}}})).unwrap();
    /// let _p = idp_policy::rego::RegoPolicy::new("gk").with_namespace(&ns);
    /// ```
    pub fn with_namespace(mut self, namespace: &Object) -> Self {
        self.gatekeeper
            .namespaces
            .insert(namespace.name().to_owned(), namespace.labels());
        self
    }

    /// Evaluate conftest rules only in these packages (`main`, `kubernetes.admission`;
    /// with or without the `data.` prefix). Default: every package.
    ///
    /// ```
    /// let p = idp_policy::rego::RegoPolicy::new("p").namespaces(["main"]);
    /// # let _ = p;
    /// ```
    pub fn namespaces<I, S>(mut self, namespaces: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.namespaces = Some(
            namespaces
                .into_iter()
                .map(|n| {
                    let n: String = n.into();
                    if n.starts_with("data.") {
                        n
                    } else {
                        format!("data.{n}")
                    }
                })
                .collect(),
        );
        self
    }

    /// Set the per-evaluation time limit (default [`DEFAULT_TIME_LIMIT`]); applies to the
    /// modules and templates already loaded and to those loaded later.
    ///
    /// ```
    /// use std::time::Duration;
    /// let p = idp_policy::rego::RegoPolicy::new("p").time_limit(Duration::from_millis(20));
    /// # let _ = p;
    /// ```
    pub fn time_limit(mut self, limit: Duration) -> Self {
        self.time_limit = limit;
        self.engine.with(|e| set_time_limit(e, limit));
        self.gatekeeper.set_time_limit(limit);
        self
    }

    /// Report evaluation failures as [`Enforcement::Audit`] violations instead of
    /// denying (Gatekeeper's `failurePolicy: Ignore`). Default: fail closed.
    ///
    /// ```
    /// let p = idp_policy::rego::RegoPolicy::new("p").fail_open(true);
    /// # let _ = p;
    /// ```
    pub fn fail_open(mut self, fail_open: bool) -> Self {
        self.fail_open = fail_open;
        self
    }

    /// The conftest rules found, as `package.rule` (without `data.`).
    ///
    /// ```
    /// assert!(idp_policy::rego::RegoPolicy::new("p").rules().is_empty());
    /// ```
    pub fn rules(&self) -> Vec<String> {
        self.rules
            .iter()
            .map(|r| {
                format!(
                    "{}.{}",
                    r.package.strip_prefix("data.").unwrap_or(&r.package),
                    r.name
                )
            })
            .collect()
    }

    /// The template kinds loaded.
    ///
    /// ```
    /// assert!(idp_policy::rego::RegoPolicy::new("p").templates().is_empty());
    /// ```
    pub fn templates(&self) -> Vec<&str> {
        self.gatekeeper
            .templates
            .iter()
            .map(|t| t.template.kind.as_str())
            .collect()
    }

    /// The constraints loaded, as `Kind/name`.
    ///
    /// ```
    /// assert!(idp_policy::rego::RegoPolicy::new("p").constraints().is_empty());
    /// ```
    pub fn constraints(&self) -> Vec<String> {
        self.gatekeeper
            .constraints
            .iter()
            .map(|c| format!("{}/{}", c.kind, c.name))
            .collect()
    }

    /// Run the Gatekeeper constraints as Gatekeeper's audit does rather than its webhook:
    /// the namespaces a Gatekeeper `Config` among the files leaves out of the `audit`
    /// process are skipped, instead of those it leaves out of the `webhook` process
    /// (see [`crate::gatekeeper::config`]). Conftest rules are not affected.
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// use idp_policy::rego::RegoPolicy;
    /// let yaml = r#"
    /// apiVersion: templates.gatekeeper.sh/v1
    /// kind: ConstraintTemplate
    /// metadata: {name: k8sdenyall}
    /// spec:
    ///   crd: {spec: {names: {kind: K8sDenyAll}}}
    ///   targets:
    ///     - target: admission.k8s.gatekeeper.sh
    ///       rego: |
    ///         package k8sdenyall
    ///         violation[{"msg": "denied"}] { true }
    /// ---
    /// apiVersion: constraints.gatekeeper.sh/v1beta1
    /// kind: K8sDenyAll
    /// metadata: {name: all}
    /// ---
    /// apiVersion: config.gatekeeper.sh/v1alpha1
    /// kind: Config
    /// metadata: {name: config, namespace: gatekeeper-system}
    /// spec:
    ///   match:
    ///     - {excludedNamespaces: [legacy], processes: [audit]}
    /// "#;
    /// let webhook = RegoPolicy::new("gk").with_gatekeeper_yaml(yaml, None).unwrap();
    /// let audit = webhook.clone().for_audit();
    /// let pod = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
    ///     "metadata": {"name": "old", "namespace": "legacy"}})).unwrap();
    /// let ctx = PolicyContext::new();
    /// assert_eq!(webhook.try_evaluate(&pod, &ctx).unwrap().len(), 1);
    /// assert!(audit.try_evaluate(&pod, &ctx).unwrap().is_empty());
    /// ```
    #[must_use]
    pub fn for_audit(mut self) -> Self {
        self.gatekeeper.process = Some(crate::gatekeeper::config::Process::Audit);
        self
    }

    /// Use `config` (read from another file) as the Gatekeeper `Config`, unless one was
    /// loaded with the constraints. Like a `Config` document, it must come before the
    /// inventory, which it shapes.
    ///
    /// ```
    /// use idp_policy::{gatekeeper::config::GatekeeperConfig, rego::RegoPolicy};
    /// let p = RegoPolicy::new("gk").with_gatekeeper_config(GatekeeperConfig::default()).unwrap();
    /// assert!(p.gatekeeper_config().is_some());
    /// ```
    pub fn with_gatekeeper_config(
        mut self,
        config: crate::gatekeeper::config::GatekeeperConfig,
    ) -> Result<Self> {
        if self.gatekeeper.config.is_none() {
            if self.gatekeeper.has_inventory() {
                return Err(Error::invalid_input(
                    "a Gatekeeper Config given after the inventory: give the Config before the inventory, which it shapes",
                ));
            }
            self.gatekeeper.config = Some(config);
        }
        Ok(self)
    }

    /// The Gatekeeper `Config` loaded with the constraints, if one was.
    ///
    /// ```
    /// assert!(idp_policy::rego::RegoPolicy::new("gk").gatekeeper_config().is_none());
    /// ```
    pub fn gatekeeper_config(&self) -> Option<&crate::gatekeeper::config::GatekeeperConfig> {
        self.gatekeeper.config.as_ref()
    }

    /// Evaluate, returning evaluation failures (time limit, runtime error, a constraint
    /// without its template) as errors instead of violations.
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// use idp_policy::rego::RegoPolicy;
    /// let p = RegoPolicy::new("p").with_module("a.rego",
    ///     "package main\ndeny contains x if { x := 1 / 0 }").unwrap();
    /// let o = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "X", "metadata": {"name": "x"}})).unwrap();
    /// let err = p.try_evaluate(&o, &PolicyContext::new()).unwrap_err();
    /// assert!(err.to_string().contains("divide by zero"), "{err}");
    /// ```
    pub fn try_evaluate(&self, object: &Object, ctx: &PolicyContext) -> Result<Vec<Violation>> {
        let _span = tracing::trace_span!("rego.evaluate", policy = %self.name, kind = object.kind(), name = object.name()).entered();
        let mut out = Vec::new();
        if !self.rules.is_empty() {
            let input = regorus::Value::from(object.to_value());
            self.engine.with(|engine| -> Result<()> {
                engine.set_input(input);
                for rule in &self.rules {
                    if let Some(namespaces) = &self.namespaces
                        && !namespaces.contains(&rule.package)
                    {
                        continue;
                    }
                    let path = format!("{}.{}", rule.package, rule.name);
                    let value = engine
                        .eval_rule(path.clone())
                        .map_err(|e| eval_error(&self.name, &path, &e))?;
                    let rule_name = path.strip_prefix("data.").unwrap_or(&path);
                    for (message, _) in messages(&value) {
                        out.push(
                            Violation::new(self.name.clone(), rule_name.to_owned(), message)
                                .with_enforcement(rule.enforcement),
                        );
                    }
                }
                Ok(())
            })?;
        }
        self.gatekeeper
            .evaluate(&self.name, object, ctx, &mut out)?;
        Ok(out)
    }
}

impl Policy for RegoPolicy {
    fn name(&self) -> &str {
        &self.name
    }

    fn evaluate(&self, object: &Object, ctx: &PolicyContext) -> Vec<Violation> {
        match self.try_evaluate(object, ctx) {
            Ok(violations) => violations,
            Err(error) => {
                tracing::warn!(policy = %self.name, error = %error.report(), "rego evaluation failed");
                let enforcement = if self.fail_open {
                    Enforcement::Audit
                } else {
                    Enforcement::Deny
                };
                vec![
                    Violation::new(self.name.clone(), "rego-error", error.report())
                        .with_enforcement(enforcement),
                ]
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_conftest_rule_heads() {
        let names = conftest_rule_names(
            "package main\ndeny[msg] { true }\nwarn_x contains m if { true }\ndenylist := []\nviolation := 1\n# deny comment\n",
        );
        assert_eq!(
            names,
            vec![
                ("deny".to_owned(), Enforcement::Deny),
                ("warn_x".to_owned(), Enforcement::Warn),
                ("violation".to_owned(), Enforcement::Deny),
            ]
        );
    }
}
