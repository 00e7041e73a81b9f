//! Exceptions: a documented, optionally expiring waiver of some rules for some objects
//! (Kyverno's `PolicyException`).
//!
//! An exception names the policies (and, optionally, the rules inside them) it waives,
//! the objects it covers (a [`ResourceFilter`]: kinds, namespaces, names, labels), a
//! mandatory reason, and an optional expiry compared with [`PolicyContext::now`] — so
//! "until the migration is done" is written down and stops by itself.
//!
//! ```
//! use idp_policy::exceptions::PolicyException;
//! let e: PolicyException = serde_saphyr::from_str(r#"
//! name: legacy-agent
//! reason: the node agent needs the host network until INFRA-42 lands
//! expires: 2030-01-01T00:00:00Z
//! policies:
//!   - policy: pod-security
//!     rules: [hostNamespaces]
//! match:
//!   namespaces: [monitoring]
//!   names: [node-agent*]
//! "#).unwrap();
//! assert_eq!(e.policies[0].rules, ["hostNamespaces"]);
//! ```
//!
//! [`PolicyContext::now`]: idp_core::PolicyContext::now

use idp_core::{Object, PolicyContext, Violation};
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::matching::ResourceFilter;
use crate::pss::ControlExclusion;
use crate::view::PodView;

/// A policy (and optionally some of its rules) an exception waives.
///
/// ```
/// let r = idp_policy::exceptions::RuleRef::policy("require-probes");
/// assert!(r.rules.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RuleRef {
    /// The policy name (`*` for every policy).
    pub policy: String,
    /// Rule names inside it; empty: every rule of the policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<String>,
}

impl RuleRef {
    /// Every rule of one policy.
    ///
    /// ```
    /// assert_eq!(idp_policy::exceptions::RuleRef::policy("p").policy, "p");
    /// ```
    pub fn policy(policy: impl Into<String>) -> Self {
        Self {
            policy: policy.into(),
            rules: Vec::new(),
        }
    }

    /// Some rules of one policy.
    ///
    /// ```
    /// let r = idp_policy::exceptions::RuleRef::rules("pod-security", ["privileged"]);
    /// assert_eq!(r.rules, ["privileged"]);
    /// ```
    pub fn rules<I: IntoIterator<Item = S>, S: Into<String>>(
        policy: impl Into<String>,
        rules: I,
    ) -> Self {
        Self {
            policy: policy.into(),
            rules: rules.into_iter().map(Into::into).collect(),
        }
    }

    fn covers(&self, policy: &str, rule: &str) -> bool {
        (self.policy == "*" || self.policy == policy)
            && (self.rules.is_empty() || self.rules.iter().any(|r| r == "*" || r == rule))
    }
}

/// A waiver of some rules for some objects, with a reason and an optional expiry.
///
/// ```
/// use idp_core::PolicyContext;
/// use idp_policy::exceptions::{PolicyException, RuleRef};
/// use idp_policy::matching::ResourceFilter;
///
/// let e = PolicyException::new("db-root", "the vendor image runs as root; ticket SEC-7")
///     .waive(RuleRef::rules("pod-security", ["runAsNonRoot"]))
///     .for_objects(ResourceFilter::new().names(["vendor-db"]))
///     .until("2030-01-01T00:00:00Z".parse().unwrap());
/// let pod = idp_core::Object::from_value(serde_json::json!({
///     "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "vendor-db"}})).unwrap();
/// let ctx = PolicyContext::new().at("2029-06-01T00:00:00Z".parse().unwrap());
/// assert!(e.applies(&pod, "pod-security", "runAsNonRoot", &ctx));
/// let later = PolicyContext::new().at("2031-01-01T00:00:00Z".parse().unwrap());
/// assert!(!e.applies(&pod, "pod-security", "runAsNonRoot", &later));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyException {
    /// A name for reports and audits.
    pub name: String,
    /// Why the exception exists (required: an exception nobody can explain is a hole).
    pub reason: String,
    /// What it waives.
    pub policies: Vec<RuleRef>,
    /// Which objects it covers (empty: every object).
    #[serde(default, rename = "match")]
    pub objects: ResourceFilter,
    /// When it stops applying (RFC 3339); `None`: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub expires: Option<Timestamp>,
    /// Pod Security Standards controls it waives, as Kyverno's `PolicyException`
    /// `podSecurity` (the same entries as a policy's `excludeControls`, see
    /// [`ControlExclusion`]): when given, only Pod Security findings of these controls
    /// (for these images, fields and values) are waived, and nothing else.
    #[serde(default, rename = "podSecurity", skip_serializing_if = "Vec::is_empty")]
    pub pod_security: Vec<ControlExclusion>,
}

impl PolicyException {
    /// An exception that waives nothing yet and covers every object.
    ///
    /// ```
    /// let e = idp_policy::exceptions::PolicyException::new("e", "because");
    /// assert!(e.policies.is_empty());
    /// ```
    pub fn new(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            reason: reason.into(),
            policies: Vec::new(),
            objects: ResourceFilter::new(),
            expires: None,
            pod_security: Vec::new(),
        }
    }

    /// Waive only the Pod Security findings `control` covers (see
    /// [`PolicyException::pod_security`]).
    ///
    /// # Errors
    ///
    /// As [`PodSecurity::with_exclusion`](crate::pss::PodSecurity::with_exclusion).
    ///
    /// ```
    /// use idp_core::{Object, Policy, PolicyContext};
    /// use idp_policy::{PolicySet, exceptions::{PolicyException, RuleRef}, pss::{ControlExclusion, PodSecurity}};
    /// let mut net_admin = ControlExclusion::new("Capabilities");
    /// net_admin.restricted_field = Some("spec.containers[*].securityContext.capabilities.add".into());
    /// net_admin.values = vec!["NET_ADMIN".into()];
    /// let e = PolicyException::new("vpn", "the VPN gateway manages routes; NET-12")
    ///     .waive(RuleRef::policy("pod-security"))
    ///     .with_pod_security(net_admin).unwrap();
    /// let set = PolicySet::new().with_policy(PodSecurity::baseline()).with_exception(e);
    /// let pod = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "vpn"},
    ///     "spec": {"hostNetwork": true, "containers": [{"name": "vpn", "image": "vpn:1",
    ///         "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}}]}})).unwrap();
    /// let rules: Vec<_> = set.evaluate(&pod, &PolicyContext::new()).into_iter().map(|v| v.rule).collect();
    /// assert_eq!(rules, ["hostNamespaces"]); // NET_ADMIN is waived, the host network is not
    /// ```
    pub fn with_pod_security(mut self, control: ControlExclusion) -> idp_core::Result<Self> {
        crate::pss::validate_exclusion(&control)?;
        self.pod_security.push(control);
        Ok(self)
    }

    /// Check the [`pod_security`](PolicyException::pod_security) entries (what a
    /// policy-set file gives).
    ///
    /// # Errors
    ///
    /// The first entry that names no control or a field the control does not have.
    ///
    /// ```
    /// let mut e = idp_policy::exceptions::PolicyException::new("e", "r");
    /// e.pod_security.push(idp_policy::pss::ControlExclusion::new("Nope"));
    /// assert!(e.validate().is_err());
    /// ```
    pub fn validate(&self) -> idp_core::Result<()> {
        self.pod_security
            .iter()
            .try_for_each(crate::pss::validate_exclusion)
    }

    /// Waive a policy or some of its rules.
    ///
    /// ```
    /// # use idp_policy::exceptions::{PolicyException, RuleRef};
    /// assert_eq!(PolicyException::new("e", "r").waive(RuleRef::policy("p")).policies.len(), 1);
    /// ```
    pub fn waive(mut self, rule: RuleRef) -> Self {
        self.policies.push(rule);
        self
    }

    /// Cover only the objects matching `filter`.
    ///
    /// ```
    /// # use idp_policy::{exceptions::PolicyException, matching::ResourceFilter};
    /// let e = PolicyException::new("e", "r").for_objects(ResourceFilter::new().namespaces(["ci"]));
    /// assert_eq!(e.objects.namespaces, ["ci"]);
    /// ```
    pub fn for_objects(mut self, filter: ResourceFilter) -> Self {
        self.objects = filter;
        self
    }

    /// Stop applying at `expires`.
    ///
    /// ```
    /// # use idp_policy::exceptions::PolicyException;
    /// let e = PolicyException::new("e", "r").until(jiff::Timestamp::UNIX_EPOCH);
    /// assert!(e.expires.is_some());
    /// ```
    pub fn until(mut self, expires: Timestamp) -> Self {
        self.expires = Some(expires);
        self
    }

    /// Whether it has expired at `now` (an exception expiring at `t` no longer applies at `t`).
    ///
    /// ```
    /// # use idp_policy::exceptions::PolicyException;
    /// let e = PolicyException::new("e", "r").until(jiff::Timestamp::UNIX_EPOCH);
    /// assert!(e.is_expired(jiff::Timestamp::UNIX_EPOCH));
    /// ```
    pub fn is_expired(&self, now: Timestamp) -> bool {
        self.expires.is_some_and(|t| now >= t)
    }

    /// Whether it waives `policy`/`rule` for `object` in `ctx`.
    ///
    /// ```
    /// # use idp_policy::exceptions::{PolicyException, RuleRef};
    /// let e = PolicyException::new("e", "r").waive(RuleRef::policy("p"));
    /// let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod"})).unwrap();
    /// assert!(e.applies(&o, "p", "any", &idp_core::PolicyContext::new()));
    /// assert!(!e.applies(&o, "q", "any", &idp_core::PolicyContext::new()));
    /// ```
    pub fn applies(&self, object: &Object, policy: &str, rule: &str, ctx: &PolicyContext) -> bool {
        !self.is_expired(ctx.now)
            && self.policies.iter().any(|r| r.covers(policy, rule))
            && self.objects.matches(object, ctx.namespace.as_deref())
    }

    /// Whether it waives the finding `violation` of `object`: [`PolicyException::applies`]
    /// to its policy and rule and, when the exception lists
    /// [`pod_security`](PolicyException::pod_security) controls, the finding is a Pod
    /// Security one those entries cover.
    ///
    /// ```
    /// # use idp_policy::exceptions::{PolicyException, RuleRef};
    /// let e = PolicyException::new("e", "r").waive(RuleRef::policy("p"));
    /// let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod"})).unwrap();
    /// let v = idp_core::Violation::new("p", "any", "m");
    /// assert!(e.waives(&o, &v, &idp_core::PolicyContext::new()));
    /// ```
    pub fn waives(&self, object: &Object, violation: &Violation, ctx: &PolicyContext) -> bool {
        self.waives_for(object, &violation.policy, violation, ctx, None)
    }

    /// [`PolicyException::waives`] for a finding of the policy named `policy` (a set
    /// may rename its findings' policy), with the pod view and PSS version when known.
    pub(crate) fn waives_for(
        &self,
        object: &Object,
        policy: &str,
        violation: &Violation,
        ctx: &PolicyContext,
        pss: Option<(&PodView<'_>, u32)>,
    ) -> bool {
        let named = self.applies(object, policy, &violation.rule, ctx)
            || (violation.policy != policy
                && self.applies(object, &violation.policy, &violation.rule, ctx));
        named
            && (self.pod_security.is_empty()
                || crate::pss::exclusions_waive(&self.pod_security, violation, object, pss))
    }

    /// Whether it is in force and covers `object` (ignores policy and rule names).
    pub(crate) fn may_apply(&self, object: &Object, ctx: &PolicyContext) -> bool {
        !self.is_expired(ctx.now) && self.objects.matches(object, ctx.namespace.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(ns: &str, name: &str) -> Object {
        Object::from_value(json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": ns, "labels": {"team": "infra"}}}))
        .unwrap()
    }

    #[test]
    fn rules_and_objects_must_both_match() {
        let e = PolicyException::new("e", "r")
            .waive(RuleRef::rules("pss", ["privileged", "hostPorts"]))
            .for_objects(ResourceFilter::new().namespaces(["infra-*"]));
        let ctx = PolicyContext::new();
        assert!(e.applies(&pod("infra-a", "x"), "pss", "privileged", &ctx));
        assert!(e.applies(&pod("infra-a", "x"), "pss", "hostPorts", &ctx));
        assert!(!e.applies(&pod("infra-a", "x"), "pss", "runAsNonRoot", &ctx));
        assert!(!e.applies(&pod("shop", "x"), "pss", "privileged", &ctx));
        assert!(!e.applies(&pod("infra-a", "x"), "other", "privileged", &ctx));
    }

    #[test]
    fn by_labels_and_wildcard_policy() {
        let e: PolicyException = serde_json::from_value(json!({
            "name": "e", "reason": "r", "policies": [{"policy": "*"}],
            "match": {"selector": {"matchLabels": {"team": "infra"}}}
        }))
        .unwrap();
        assert!(e.applies(&pod("a", "b"), "anything", "rule", &PolicyContext::new()));
    }

    #[test]
    fn expiry_is_compared_with_ctx_now() {
        let t: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let e = PolicyException::new("e", "r")
            .waive(RuleRef::policy("p"))
            .until(t);
        let before = PolicyContext::new().at("2025-12-31T23:59:59Z".parse().unwrap());
        let at = PolicyContext::new().at(t);
        assert!(e.applies(&pod("a", "b"), "p", "x", &before));
        assert!(!e.applies(&pod("a", "b"), "p", "x", &at));
    }
}
