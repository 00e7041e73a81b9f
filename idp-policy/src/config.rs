//! The policy-set file a platform team writes: which built-in policies, with which
//! action and match rules, and which exceptions.
//!
//! ```
//! use idp_policy::config::PolicySetConfig;
//! let config = PolicySetConfig::from_yaml(r#"
//! apiVersion: idp.dev/v1alpha1
//! kind: PolicySet
//! name: production
//! policies:
//!   - type: pod-security
//!     level: restricted
//!     version: v1.30
//!   - type: require-resources
//!     action: warn
//!     exclude:
//!       - namespaces: [kube-system]
//!   - type: forbid-sensitive-ports
//!     ports: [22, 3389]
//!   - type: min-replicas
//!     min: 3
//!     environments: [prod]
//!     match:
//!       - kinds: [Deployment]
//! exceptions:
//!   - name: node-agent
//!     reason: needs the host network until INFRA-42
//!     policies: [{policy: pod-security, rules: [hostNamespaces]}]
//!     match: {namespaces: [monitoring]}
//! "#).unwrap();
//! let set = config.build();
//! assert_eq!(set.len(), 4);
//! assert_eq!(set.exceptions().len(), 1);
//! ```
//!
//! [`PolicySetConfig::schema`] gives the JSON Schema of the file, for editors and CI.

use idp_core::{Error, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::exceptions::PolicyException;
use crate::guardrails::{
    AllowedRegistries, DisallowLatestTag, ForbidSensitivePorts, MinReplicas, RequireIngressTls,
    RequireLabels, RequireProbes, RequireResources, RestrictServiceTypes,
};
use crate::pss::PodSecurity;
use crate::report::ReportLimits;
use crate::set::{PolicyOptions, PolicySet};

/// One built-in policy and its configuration, tagged by `type`.
///
/// ```
/// let b: idp_policy::config::BuiltinPolicy = serde_json::from_value(serde_json::json!({
///     "type": "disallow-latest-tag", "requireDigest": true})).unwrap();
/// assert!(matches!(b, idp_policy::config::BuiltinPolicy::DisallowLatestTag(d) if d.require_digest));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum BuiltinPolicy {
    /// [`PodSecurity`].
    PodSecurity(PodSecurity),
    /// [`RequireResources`].
    RequireResources(RequireResources),
    /// [`ForbidSensitivePorts`].
    ForbidSensitivePorts(ForbidSensitivePorts),
    /// [`AllowedRegistries`].
    AllowedRegistries(AllowedRegistries),
    /// [`DisallowLatestTag`].
    DisallowLatestTag(DisallowLatestTag),
    /// [`RequireLabels`].
    RequireLabels(RequireLabels),
    /// [`RestrictServiceTypes`].
    RestrictServiceTypes(RestrictServiceTypes),
    /// [`RequireIngressTls`].
    RequireIngressTls(RequireIngressTls),
    /// [`RequireProbes`].
    RequireProbes(RequireProbes),
    /// [`MinReplicas`].
    MinReplicas(MinReplicas),
}

impl BuiltinPolicy {
    /// Every guardrail with its default configuration, in the order of
    /// [`guardrails::all`](crate::guardrails::all); give them to
    /// [`PolicySet::add_builtin`] so they share the set's one walk of each object.
    ///
    /// ```
    /// assert_eq!(idp_policy::config::BuiltinPolicy::guardrails().len(), 9);
    /// ```
    pub fn guardrails() -> Vec<Self> {
        vec![
            Self::RequireResources(RequireResources::default()),
            Self::ForbidSensitivePorts(ForbidSensitivePorts::default()),
            Self::AllowedRegistries(AllowedRegistries::default()),
            Self::DisallowLatestTag(DisallowLatestTag::default()),
            Self::RequireLabels(RequireLabels::default()),
            Self::RestrictServiceTypes(RestrictServiceTypes::default()),
            Self::RequireIngressTls(RequireIngressTls::default()),
            Self::RequireProbes(RequireProbes::default()),
            Self::MinReplicas(MinReplicas::default()),
        ]
    }

    /// The policy as a shareable trait object.
    ///
    /// ```
    /// let p = idp_policy::config::BuiltinPolicy::RequireIngressTls(Default::default()).into_policy();
    /// assert_eq!(p.name(), "require-ingress-tls");
    /// ```
    pub fn into_policy(self) -> std::sync::Arc<dyn idp_core::Policy> {
        use std::sync::Arc;
        match self {
            Self::PodSecurity(p) => Arc::new(p),
            Self::RequireResources(p) => Arc::new(p),
            Self::ForbidSensitivePorts(p) => Arc::new(p),
            Self::AllowedRegistries(p) => Arc::new(p),
            Self::DisallowLatestTag(p) => Arc::new(p),
            Self::RequireLabels(p) => Arc::new(p),
            Self::RestrictServiceTypes(p) => Arc::new(p),
            Self::RequireIngressTls(p) => Arc::new(p),
            Self::RequireProbes(p) => Arc::new(p),
            Self::MinReplicas(p) => Arc::new(p),
        }
    }
}

/// One entry of a policy-set file: a built-in policy plus its options.
///
/// ```
/// let e: idp_policy::config::PolicyEntryConfig = serde_json::from_value(serde_json::json!({
///     "type": "require-probes", "action": "audit", "match": [{"kinds": ["Deployment"]}]})).unwrap();
/// assert_eq!(e.options.action, Some(idp_policy::Action::Audit));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyEntryConfig {
    /// The policy.
    #[serde(flatten)]
    pub policy: BuiltinPolicy,
    /// Its action and match rules.
    #[serde(flatten)]
    pub options: PolicyOptions,
}

/// A policy-set file.
///
/// ```
/// let c = idp_policy::config::PolicySetConfig::from_yaml("policies: []").unwrap();
/// assert!(c.build().is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicySetConfig {
    /// `idp.dev/v1alpha1` (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,
    /// `PolicySet` (optional).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The set's name (default `policy-set`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The policies, in evaluation order.
    #[serde(default)]
    pub policies: Vec<PolicyEntryConfig>,
    /// The exceptions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<PolicyException>,
    /// Report limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ReportLimits>,
}

impl PolicySetConfig {
    /// Parse a policy-set file (YAML or JSON). Errors name the line and the field.
    ///
    /// ```
    /// let err = idp_policy::config::PolicySetConfig::from_yaml("policies:\n  - type: no-such-policy\n").unwrap_err();
    /// assert!(err.to_string().contains("no-such-policy"), "{err}");
    /// ```
    pub fn from_yaml(text: &str) -> Result<Self> {
        let config: Self = serde_saphyr::from_str(text).map_err(|e| {
            Error::invalid_input(format!("invalid policy-set file: {e}"))
                .context("check it against PolicySetConfig::schema()")
        })?;
        if let Some(kind) = config.kind.as_deref().filter(|k| *k != "PolicySet") {
            return Err(Error::invalid_input(format!(
                "a policy-set file has kind PolicySet, not `{kind}`"
            )));
        }
        for (i, e) in config.exceptions.iter().enumerate() {
            e.validate()
                .map_err(|err| err.context(format!("exceptions[{i}] ({}): podSecurity", e.name)))?;
        }
        for (i, entry) in config.policies.iter().enumerate() {
            if let BuiltinPolicy::PodSecurity(p) = &entry.policy {
                p.validate()
                    .map_err(|e| e.context(format!("policies[{i}] (type: pod-security)")))?;
            }
        }
        Ok(config)
    }

    /// Build the [`PolicySet`].
    ///
    /// ```
    /// let set = idp_policy::config::PolicySetConfig::from_yaml("name: ci\npolicies: [{type: pod-security}]").unwrap().build();
    /// assert_eq!(idp_core::Policy::name(&set), "ci");
    /// ```
    pub fn build(self) -> PolicySet {
        let mut set = PolicySet::new();
        if let Some(name) = self.name {
            set = set.named(name);
        }
        if let Some(limits) = self.limits {
            set = set.with_limits(limits);
        }
        for entry in self.policies {
            set.add_builtin(entry.policy, entry.options);
        }
        for e in self.exceptions {
            set = set.with_exception(e);
        }
        set
    }

    /// The JSON Schema of a policy-set file.
    ///
    /// ```
    /// let schema = idp_policy::config::PolicySetConfig::schema();
    /// assert!(serde_json::to_string(&schema).unwrap().contains("pod-security"));
    /// ```
    pub fn schema() -> schemars::Schema {
        schemars::schema_for!(PolicySetConfig)
    }
}
