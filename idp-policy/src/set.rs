//! The engine: a [`PolicySet`] evaluates many policies, each with its own enforcement
//! action and match rules, minus exceptions, over one object or a whole manifest set.
//!
//! Any [`Policy`] can join a set — the built-in [Pod Security Standards](crate::pss),
//! the [guardrails], or a Rego/CEL/own implementation — and a set is
//! itself a [`Policy`], so a whole set plugs into `idp_core::Platform`.
//!
//! ```
//! use idp_core::{Object, PolicyContext};
//! use idp_policy::{Action, PolicyOptions, PolicySet, guardrails, pss::PodSecurity};
//! use idp_policy::matching::ResourceFilter;
//!
//! let set = PolicySet::new()
//!     .with_policy(PodSecurity::restricted())
//!     .with_policy_options(guardrails::RequireProbes::default(), PolicyOptions::new()
//!         .action(Action::Warn)
//!         .exclude(ResourceFilter::new().namespaces(["batch-*"])));
//! let pod = Object::from_value(serde_json::json!({
//!     "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "shop"},
//!     "spec": {"containers": [{"name": "app", "image": "shop/cart:1.2"}]}})).unwrap();
//! let result = set.check_object(&pod, &PolicyContext::new());
//! assert!(!result.allowed);
//! assert!(result.warnings().any(|v| v.policy == "require-probes"));
//! ```

use std::any::Any;
use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use idp_core::model::Enforcement;
use idp_core::{Object, Policy, PolicyContext, Severity, Violation};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::config::BuiltinPolicy;
use crate::exceptions::PolicyException;
use crate::guardrails;
use crate::matching::{MatchRules, ResourceFilter};
use crate::pss::PodSecurity;
use crate::report::{ObjectResult, Report, ReportBuilder, ReportLimits};
use crate::view::{NativePolicy, ObjectView};

/// What a policy's violations do: refuse the change, warn its author, or only record it.
///
/// `enforce` is also accepted as `deny`; `audit` as `dryrun` (Gatekeeper's word).
///
/// ```
/// use idp_policy::Action;
/// let a: Action = serde_json::from_str("\"deny\"").unwrap();
/// assert_eq!(a, Action::Enforce);
/// assert_eq!(idp_core::model::Enforcement::from(Action::Audit), idp_core::model::Enforcement::Audit);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Refuse the change.
    #[default]
    #[serde(alias = "deny")]
    Enforce,
    /// Let it through, tell the author.
    Warn,
    /// Let it through, record it.
    #[serde(alias = "dryrun")]
    Audit,
}

impl From<Action> for Enforcement {
    fn from(a: Action) -> Self {
        match a {
            Action::Enforce => Enforcement::Deny,
            Action::Warn => Enforcement::Warn,
            Action::Audit => Enforcement::Audit,
        }
    }
}

/// How a policy takes part in a set: its action, which objects it sees, and an optional
/// severity override.
///
/// ```
/// use idp_policy::{Action, PolicyOptions, matching::ResourceFilter};
/// let o = PolicyOptions::new().action(Action::Audit).only(ResourceFilter::new().kinds(["Service"]));
/// assert_eq!(o.action, Some(Action::Audit));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyOptions {
    /// The action for this policy's violations; `None` keeps what the policy said.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Action>,
    /// Which objects the policy sees.
    #[serde(default, flatten)]
    pub rules: MatchRules,
    /// Override the severity of every violation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
}

impl PolicyOptions {
    /// Keep the policy's own enforcement, see every object.
    ///
    /// ```
    /// assert!(idp_policy::PolicyOptions::new().action.is_none());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Set the action.
    ///
    /// ```
    /// # use idp_policy::{Action, PolicyOptions};
    /// assert_eq!(PolicyOptions::new().action(Action::Warn).action, Some(Action::Warn));
    /// ```
    pub fn action(mut self, action: Action) -> Self {
        self.action = Some(action);
        self
    }

    /// Add an alternative the objects must match (the first call restricts from "every
    /// object" to this filter).
    ///
    /// ```
    /// # use idp_policy::{PolicyOptions, matching::ResourceFilter};
    /// assert_eq!(PolicyOptions::new().only(ResourceFilter::new()).rules.any.len(), 1);
    /// ```
    pub fn only(mut self, filter: ResourceFilter) -> Self {
        self.rules.any.push(filter);
        self
    }

    /// Skip the objects matching `filter`.
    ///
    /// ```
    /// # use idp_policy::{PolicyOptions, matching::ResourceFilter};
    /// assert_eq!(PolicyOptions::new().exclude(ResourceFilter::new()).rules.exclude.len(), 1);
    /// ```
    pub fn exclude(mut self, filter: ResourceFilter) -> Self {
        self.rules.exclude.push(filter);
        self
    }

    /// Override the severity.
    ///
    /// ```
    /// # use idp_policy::PolicyOptions;
    /// assert!(PolicyOptions::new().severity(idp_core::Severity::Low).severity.is_some());
    /// ```
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = Some(severity);
        self
    }
}

#[derive(Clone)]
struct Entry {
    policy: Arc<dyn Policy>,
    /// The same policy as a built-in checking an [`ObjectView`], when it is one.
    native: Option<Arc<dyn NativePolicy>>,
    options: PolicyOptions,
}

/// The built-in policy `policy` is, prepared for [`ObjectView`]s (a Pod Security
/// Standards level with its checks resolved); `None` for any other policy.
fn native_of(policy: &dyn Any) -> Option<Arc<dyn NativePolicy>> {
    fn shared<T: NativePolicy + Clone + 'static>(
        policy: &dyn Any,
    ) -> Option<Arc<dyn NativePolicy>> {
        policy
            .downcast_ref::<T>()
            .map(|p| Arc::new(p.clone()) as Arc<dyn NativePolicy>)
    }
    if let Some(p) = policy.downcast_ref::<PodSecurity>() {
        return Some(Arc::new(p.compile()));
    }
    shared::<guardrails::RequireResources>(policy)
        .or_else(|| shared::<guardrails::ForbidSensitivePorts>(policy))
        .or_else(|| shared::<guardrails::AllowedRegistries>(policy))
        .or_else(|| shared::<guardrails::DisallowLatestTag>(policy))
        .or_else(|| shared::<guardrails::RequireLabels>(policy))
        .or_else(|| shared::<guardrails::RestrictServiceTypes>(policy))
        .or_else(|| shared::<guardrails::RequireIngressTls>(policy))
        .or_else(|| shared::<guardrails::RequireProbes>(policy))
        .or_else(|| shared::<guardrails::MinReplicas>(policy))
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("policy", &self.policy.name())
            .field("native", &self.native.is_some())
            .field("options", &self.options)
            .finish()
    }
}

/// Many policies evaluated together, with per-policy action and match rules and a list
/// of exceptions. See the [module documentation](self).
///
/// ```
/// use idp_core::{Object, Policy, PolicyContext};
/// use idp_policy::{PolicySet, pss::PodSecurity};
/// let set = PolicySet::new().with_policy(PodSecurity::baseline());
/// let cm = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})).unwrap();
/// assert!(set.evaluate(&cm, &PolicyContext::new()).is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct PolicySet {
    name: String,
    entries: Vec<Entry>,
    exceptions: Vec<PolicyException>,
    limits: ReportLimits,
}

impl Default for PolicySet {
    fn default() -> Self {
        Self::new()
    }
}

impl PolicySet {
    /// An empty set named `policy-set`.
    ///
    /// ```
    /// assert!(idp_policy::PolicySet::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self {
            name: "policy-set".to_owned(),
            entries: Vec::new(),
            exceptions: Vec::new(),
            limits: ReportLimits::default(),
        }
    }

    /// Rename the set (its name when used as a [`Policy`]).
    ///
    /// ```
    /// use idp_core::Policy;
    /// assert_eq!(idp_policy::PolicySet::new().named("prod").name(), "prod");
    /// ```
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Add a policy that sees every object and keeps its own enforcement.
    ///
    /// ```
    /// let set = idp_policy::PolicySet::new().with_policy(idp_policy::pss::PodSecurity::baseline());
    /// assert_eq!(set.len(), 1);
    /// ```
    pub fn with_policy(self, policy: impl Policy + 'static) -> Self {
        self.with_policy_options(policy, PolicyOptions::new())
    }

    /// Add a policy with options.
    ///
    /// ```
    /// use idp_policy::{Action, PolicyOptions, PolicySet, pss::PodSecurity};
    /// let set = PolicySet::new().with_policy_options(PodSecurity::restricted(), PolicyOptions::new().action(Action::Warn));
    /// assert_eq!(set.policy_names().collect::<Vec<_>>(), ["pod-security"]);
    /// ```
    pub fn with_policy_options(
        mut self,
        policy: impl Policy + 'static,
        options: PolicyOptions,
    ) -> Self {
        self.add(policy, options);
        self
    }

    /// Add a policy with options (the `&mut` form of
    /// [`with_policy_options`](PolicySet::with_policy_options)).
    ///
    /// The built-in policies ([`PodSecurity`] and every guardrail) added this way share
    /// one walk of each object: the set reads the object's kind, pod spec and containers
    /// once and hands that to each of them. A policy added as an `Arc<dyn Policy>`
    /// through [`push`](PolicySet::push) is evaluated on its own, with the same verdict.
    ///
    /// ```
    /// use idp_policy::{PolicyOptions, PolicySet, guardrails::RequireProbes};
    /// let mut set = PolicySet::new();
    /// set.add(RequireProbes::default(), PolicyOptions::new());
    /// assert_eq!(set.len(), 1);
    /// ```
    pub fn add(&mut self, policy: impl Policy + 'static, options: PolicyOptions) {
        let native = native_of(&policy);
        self.entries.push(Entry {
            policy: Arc::new(policy),
            native,
            options,
        });
    }

    /// Add a built-in policy (as a policy-set file names it) with options; it shares the
    /// set's one walk of each object like every policy given to [`add`](PolicySet::add).
    ///
    /// ```
    /// use idp_policy::{PolicyOptions, PolicySet, config::BuiltinPolicy};
    /// let mut set = PolicySet::new();
    /// for g in BuiltinPolicy::guardrails() {
    ///     set.add_builtin(g, PolicyOptions::new());
    /// }
    /// assert_eq!(set.len(), 9);
    /// ```
    pub fn add_builtin(&mut self, policy: BuiltinPolicy, options: PolicyOptions) {
        match policy {
            BuiltinPolicy::PodSecurity(p) => self.add(p, options),
            BuiltinPolicy::RequireResources(p) => self.add(p, options),
            BuiltinPolicy::ForbidSensitivePorts(p) => self.add(p, options),
            BuiltinPolicy::AllowedRegistries(p) => self.add(p, options),
            BuiltinPolicy::DisallowLatestTag(p) => self.add(p, options),
            BuiltinPolicy::RequireLabels(p) => self.add(p, options),
            BuiltinPolicy::RestrictServiceTypes(p) => self.add(p, options),
            BuiltinPolicy::RequireIngressTls(p) => self.add(p, options),
            BuiltinPolicy::RequireProbes(p) => self.add(p, options),
            BuiltinPolicy::MinReplicas(p) => self.add(p, options),
        }
    }

    /// Add a shared policy (a Rego or CEL policy, another set…) with options.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use idp_core::Policy;
    /// use idp_policy::{PolicyOptions, PolicySet, pss::PodSecurity};
    /// let shared: Arc<dyn Policy> = Arc::new(PodSecurity::baseline());
    /// let mut set = PolicySet::new();
    /// set.push(shared, PolicyOptions::new());
    /// assert_eq!(set.len(), 1);
    /// ```
    pub fn push(&mut self, policy: Arc<dyn Policy>, options: PolicyOptions) {
        self.entries.push(Entry {
            policy,
            native: None,
            options,
        });
    }

    /// Add an exception.
    ///
    /// ```
    /// use idp_policy::{PolicySet, exceptions::{PolicyException, RuleRef}};
    /// let set = PolicySet::new().with_exception(PolicyException::new("e", "why").waive(RuleRef::policy("p")));
    /// assert_eq!(set.exceptions().len(), 1);
    /// ```
    pub fn with_exception(mut self, exception: PolicyException) -> Self {
        self.exceptions.push(exception);
        self
    }

    /// Set the default report limits of [`PolicySet::check`].
    ///
    /// ```
    /// use idp_policy::{PolicySet, report::ReportLimits};
    /// let set = PolicySet::new().with_limits(ReportLimits { max_violations: 5, max_objects: 5 });
    /// assert_eq!(set.limits().max_violations, 5);
    /// ```
    pub fn with_limits(mut self, limits: ReportLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The default report limits.
    ///
    /// ```
    /// assert_eq!(idp_policy::PolicySet::new().limits().max_objects, 1000);
    /// ```
    pub fn limits(&self) -> ReportLimits {
        self.limits
    }

    /// The exceptions.
    ///
    /// ```
    /// assert!(idp_policy::PolicySet::new().exceptions().is_empty());
    /// ```
    pub fn exceptions(&self) -> &[PolicyException] {
        &self.exceptions
    }

    /// The names of the policies, in order.
    ///
    /// ```
    /// assert_eq!(idp_policy::PolicySet::new().policy_names().count(), 0);
    /// ```
    pub fn policy_names(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|e| e.policy.name())
    }

    /// Number of policies.
    ///
    /// ```
    /// assert_eq!(idp_policy::PolicySet::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no policy.
    ///
    /// ```
    /// assert!(idp_policy::PolicySet::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The names of the policies that check `object`: those whose match rules select it
    /// and, for the built-in policies, whose kinds it is (Pod Security Standards and the
    /// pod guardrails apply to pods and pod controllers, the Service and Ingress
    /// guardrails to those kinds). Any other policy counts as checking every object its
    /// match rules select. What a [policy report](crate::policy_report) counts a pass
    /// for.
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// use idp_policy::{PolicySet, guardrails::RestrictServiceTypes, pss::PodSecurity};
    /// let set = PolicySet::new().with_policy(PodSecurity::baseline()).with_policy(RestrictServiceTypes::default());
    /// let svc = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}})).unwrap();
    /// assert_eq!(set.applicable_policies(&svc, &PolicyContext::new()), ["restrict-service-types"]);
    /// ```
    pub fn applicable_policies(&self, object: &Object, ctx: &PolicyContext) -> Vec<&str> {
        let default_ns = ctx.namespace.as_deref();
        let mut view: Option<ObjectView<'_>> = None;
        self.entries
            .iter()
            .filter(|entry| entry.options.rules.matches(object, default_ns))
            .filter(|entry| match &entry.native {
                Some(native) => native.applies(view.get_or_insert_with(|| ObjectView::of(object))),
                None => true,
            })
            .map(|entry| entry.policy.name())
            .collect()
    }

    /// Evaluate one object and give its verdict; every violation names the object.
    ///
    /// ```
    /// use idp_policy::{PolicySet, pss::PodSecurity};
    /// let set = PolicySet::new().with_policy(PodSecurity::baseline());
    /// let pod = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
    ///     "metadata": {"name": "p"}, "spec": {"hostPID": true}})).unwrap();
    /// let r = set.check_object(&pod, &idp_core::PolicyContext::new());
    /// assert!(!r.allowed);
    /// assert_eq!(r.violations[0].object.as_ref().unwrap().name, "p");
    /// ```
    pub fn check_object(&self, object: &Object, ctx: &PolicyContext) -> ObjectResult {
        let object_ref = object.object_ref();
        let mut violations = self.evaluate(object, ctx);
        for v in &mut violations {
            if v.object.is_none() {
                v.object = Some(object_ref.clone());
            }
        }
        ObjectResult::new(object_ref, violations)
    }

    /// Check many objects (a `&ManifestSet`, a `Vec<Object>`, any iterator of objects)
    /// into a bounded [`Report`] with the set's [limits](PolicySet::with_limits).
    ///
    /// ```
    /// use idp_core::{ManifestSet, Object, PolicyContext};
    /// use idp_policy::{PolicySet, pss::PodSecurity};
    /// let set = PolicySet::new().with_policy(PodSecurity::baseline());
    /// let manifests: ManifestSet = [Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
    ///     "metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}})).unwrap()].into_iter().collect();
    /// let report = set.check(&manifests, &PolicyContext::new());
    /// assert!(report.is_allowed());
    /// ```
    pub fn check<I>(&self, objects: I, ctx: &PolicyContext) -> Report
    where
        I: IntoIterator,
        I::Item: Borrow<Object>,
    {
        self.check_with_limits(objects, ctx, self.limits)
    }

    /// Like [`PolicySet::check`] with explicit limits.
    ///
    /// ```
    /// use idp_policy::{PolicySet, report::ReportLimits};
    /// let r = PolicySet::new().check_with_limits(Vec::<idp_core::Object>::new(), &idp_core::PolicyContext::new(), ReportLimits::default());
    /// assert_eq!(r.objects_checked, 0);
    /// ```
    pub fn check_with_limits<I>(
        &self,
        objects: I,
        ctx: &PolicyContext,
        limits: ReportLimits,
    ) -> Report
    where
        I: IntoIterator,
        I::Item: Borrow<Object>,
    {
        self.check_each_with_limits(objects, ctx, limits, |_, _| {})
    }

    /// Check many objects, calling `each` with every object and its full result (to
    /// stream every verdict, e.g. one output row per object), and return the bounded
    /// report.
    ///
    /// ```
    /// use idp_policy::{PolicySet, pss::PodSecurity};
    /// let set = PolicySet::new().with_policy(PodSecurity::baseline());
    /// let pods = vec![idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
    ///     "metadata": {"name": "p"}, "spec": {"hostNetwork": true}})).unwrap()];
    /// let mut rows = Vec::new();
    /// set.check_each(&pods, &idp_core::PolicyContext::new(), |o, r| rows.push((o.name().to_owned(), r.allowed)));
    /// assert_eq!(rows, [("p".to_string(), false)]);
    /// ```
    pub fn check_each<I, F>(&self, objects: I, ctx: &PolicyContext, each: F) -> Report
    where
        I: IntoIterator,
        I::Item: Borrow<Object>,
        F: FnMut(&Object, &ObjectResult),
    {
        self.check_each_with_limits(objects, ctx, self.limits, each)
    }

    fn check_each_with_limits<I, F>(
        &self,
        objects: I,
        ctx: &PolicyContext,
        limits: ReportLimits,
        mut each: F,
    ) -> Report
    where
        I: IntoIterator,
        I::Item: Borrow<Object>,
        F: FnMut(&Object, &ObjectResult),
    {
        let span = tracing::debug_span!("policy_set.check", set = %self.name, policies = self.entries.len());
        let _guard = span.enter();
        let mut builder = ReportBuilder::new(limits);
        for object in objects {
            let object = object.borrow();
            let result = self.check_object(object, ctx);
            each(object, &result);
            builder.add(result);
        }
        let report = builder.finish();
        tracing::debug!(
            objects = report.objects_checked,
            denied = report.denied,
            violations = report.violations,
            "policy check done"
        );
        report
    }
}

impl Policy for PolicySet {
    fn name(&self) -> &str {
        &self.name
    }

    fn evaluate(&self, object: &Object, ctx: &PolicyContext) -> Vec<Violation> {
        let default_ns = ctx.namespace.as_deref();
        let mut out = Vec::new();
        // Built only when a built-in policy sees the object, and then once for all.
        let mut view: Option<ObjectView<'_>> = None;
        // Looked up only once there is a violation to waive.
        let mut exceptions: Option<Vec<&PolicyException>> = None;
        for entry in &self.entries {
            if !entry.options.rules.matches(object, default_ns) {
                continue;
            }
            let start = out.len();
            match &entry.native {
                Some(native) => {
                    let view = view.get_or_insert_with(|| ObjectView::of(object));
                    native.check(view, ctx, &mut out);
                }
                None => out.extend(entry.policy.evaluate(object, ctx)),
            }
            if out.len() == start {
                continue;
            }
            let exceptions = exceptions.get_or_insert_with(|| {
                self.exceptions
                    .iter()
                    .filter(|e| e.may_apply(object, ctx))
                    .collect()
            });
            if exceptions.is_empty()
                && entry.options.action.is_none()
                && entry.options.severity.is_none()
            {
                continue;
            }
            let name = entry.policy.name();
            // The pod view and version of a Pod Security policy, for exceptions that
            // waive its findings by field.
            let pss = match (&view, &entry.native) {
                (Some(ObjectView { pod: Some(pod), .. }), Some(native))
                    if !exceptions.is_empty() =>
                {
                    native.pss_minor().map(|minor| (pod, minor))
                }
                _ => None,
            };
            let mut i = start;
            while i < out.len() {
                let v = &out[i];
                let waived = exceptions
                    .iter()
                    .any(|e| e.waives_for(object, name, v, ctx, pss));
                if waived {
                    tracing::trace!(policy = name, rule = %v.rule, "violation waived by an exception");
                    out.remove(i);
                    continue;
                }
                let v = &mut out[i];
                if let Some(action) = entry.options.action {
                    v.enforcement = action.into();
                }
                if let Some(severity) = entry.options.severity {
                    v.severity = severity;
                }
                i += 1;
            }
        }
        out
    }
}
