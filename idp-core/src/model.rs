//! The domain model shared by every port: what to deploy ([`Release`]), what happened
//! ([`Deployment`]), where ([`Environment`]), what a policy found ([`Violation`]) and what
//! a policy is told ([`PolicyContext`]), plus the catalog's [`Entity`] envelope.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::ids::{DEFAULT_NAMESPACE, EntityRef, EnvironmentName, ObjectRef};
use crate::manifest::ManifestSet;

/// How serious a [`Violation`] is.
///
/// ```
/// use idp_core::Severity;
/// assert!(Severity::Critical > Severity::Low);
/// assert_eq!(Severity::default(), Severity::Medium);
/// ```
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing to fix.
    Info,
    /// Low risk.
    Low,
    /// Medium risk (the default).
    #[default]
    Medium,
    /// High risk.
    High,
    /// Critical risk.
    Critical,
}

impl Severity {
    /// The lower-case word, as serialized: `info`, `low`, `medium`, `high` or
    /// `critical`.
    ///
    /// ```
    /// assert_eq!(idp_core::Severity::High.as_str(), "high");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

/// What happens when a policy finds a violation.
///
/// ```
/// use idp_core::model::Enforcement;
/// assert!(Enforcement::Deny.blocks());
/// assert!(!Enforcement::Warn.blocks());
/// ```
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Enforcement {
    /// Refuse the change (the default).
    #[default]
    Deny,
    /// Let the change through, tell the author.
    Warn,
    /// Let the change through, record it for the platform team only.
    Audit,
}

impl Enforcement {
    /// Whether a violation with this enforcement refuses the change.
    ///
    /// ```
    /// assert!(idp_core::model::Enforcement::Deny.blocks());
    /// ```
    pub fn blocks(self) -> bool {
        self == Enforcement::Deny
    }

    /// The lower-case word, as serialized: `deny`, `warn` or `audit`.
    ///
    /// ```
    /// assert_eq!(idp_core::model::Enforcement::Warn.as_str(), "warn");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Deny => "deny",
            Enforcement::Warn => "warn",
            Enforcement::Audit => "audit",
        }
    }
}

/// One finding of a policy about one object.
///
/// ```
/// use idp_core::{ObjectRef, Severity, Violation};
/// let v = Violation::new("guardrails", "require-limits", "container \"app\" has no memory limit")
///     .with_path("spec.template.spec.containers[0].resources.limits.memory")
///     .with_object(ObjectRef::new("apps/v1", "Deployment", Some("shop"), "cart"))
///     .with_severity(Severity::High);
/// assert_eq!(v.to_string(),
///     "apps/v1 Deployment shop/cart: guardrails/require-limits: container \"app\" has no memory limit \
///      (at spec.template.spec.containers[0].resources.limits.memory)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Violation {
    /// The policy that found it. Borrowed when the name is a constant, as the
    /// built-in policies' names are, so that a violation costs no allocation for it.
    pub policy: Cow<'static, str>,
    /// The rule inside the policy (borrowed when constant, like `policy`).
    pub rule: Cow<'static, str>,
    /// What is wrong and, where possible, what to do.
    pub message: String,
    /// Path of the offending field, dotted with `[i]` indices
    /// (`spec.containers[0].securityContext.privileged`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// How serious it is.
    #[serde(default)]
    pub severity: Severity,
    /// What happens because of it.
    #[serde(default)]
    pub enforcement: Enforcement,
    /// The object it is about, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<ObjectRef>,
}

impl Violation {
    /// A violation with medium severity and [`Enforcement::Deny`].
    ///
    /// ```
    /// let v = idp_core::Violation::new("p", "r", "m");
    /// assert_eq!(v.rule, "r");
    /// ```
    pub fn new(
        policy: impl Into<String>,
        rule: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            policy: Cow::Owned(policy.into()),
            rule: Cow::Owned(rule.into()),
            message: message.into(),
            path: None,
            severity: Severity::default(),
            enforcement: Enforcement::default(),
            object: None,
        }
    }

    /// Like [`Violation::new`] for a policy and rule named by constants, which the
    /// violation borrows instead of copying: what a policy that reports many violations
    /// uses to keep each one cheap.
    ///
    /// ```
    /// let v = idp_core::Violation::from_static("guardrails", "require-limits", "no memory limit");
    /// assert!(matches!(v.policy, std::borrow::Cow::Borrowed("guardrails")));
    /// assert_eq!(v, idp_core::Violation::new("guardrails", "require-limits", "no memory limit"));
    /// ```
    pub fn from_static(
        policy: &'static str,
        rule: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self {
            policy: Cow::Borrowed(policy),
            rule: Cow::Borrowed(rule),
            message: message.into(),
            path: None,
            severity: Severity::default(),
            enforcement: Enforcement::default(),
            object: None,
        }
    }

    /// Set the path of the offending field.
    ///
    /// ```
    /// let v = idp_core::Violation::new("p", "r", "m").with_path("spec.replicas");
    /// assert_eq!(v.path.as_deref(), Some("spec.replicas"));
    /// ```
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// Set the severity.
    ///
    /// ```
    /// let v = idp_core::Violation::new("p", "r", "m").with_severity(idp_core::Severity::Low);
    /// assert_eq!(v.severity, idp_core::Severity::Low);
    /// ```
    pub fn with_severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// Set the enforcement.
    ///
    /// ```
    /// use idp_core::model::Enforcement;
    /// let v = idp_core::Violation::new("p", "r", "m").with_enforcement(Enforcement::Warn);
    /// assert!(!v.enforcement.blocks());
    /// ```
    pub fn with_enforcement(mut self, enforcement: Enforcement) -> Self {
        self.enforcement = enforcement;
        self
    }

    /// Set the object it is about.
    ///
    /// ```
    /// let o = idp_core::ObjectRef::new("v1", "Pod", Some("a"), "b");
    /// let v = idp_core::Violation::new("p", "r", "m").with_object(o.clone());
    /// assert_eq!(v.object, Some(o));
    /// ```
    pub fn with_object(mut self, object: ObjectRef) -> Self {
        self.object = Some(object);
        self
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(object) = &self.object {
            write!(f, "{object}: ")?;
        }
        write!(f, "{}/{}: {}", self.policy, self.rule, self.message)?;
        if let Some(path) = &self.path {
            write!(f, " (at {path})")?;
        }
        Ok(())
    }
}

/// What is being done to an object when a policy looks at it.
///
/// ```
/// assert_eq!(idp_core::model::Operation::default(), idp_core::model::Operation::Apply);
/// ```
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Create or update, as a deploy does (the default).
    #[default]
    Apply,
    /// Create (admission `CREATE`).
    Create,
    /// Update (admission `UPDATE`).
    Update,
    /// Delete (admission `DELETE`).
    Delete,
}

/// What a [`Policy`](crate::Policy) is told besides the object: where it goes, for whom,
/// and when. Policies are pure, so the time is given, not read from a clock.
///
/// ```
/// use idp_core::PolicyContext;
/// let ctx = PolicyContext::new()
///     .with_environment("prod".parse().unwrap())
///     .with_component("component:default/cart".parse().unwrap())
///     .with_user("jane@example.com");
/// assert_eq!(ctx.environment.as_ref().map(|e| e.as_str()), Some("prod"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyContext {
    /// The target environment, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment: Option<EnvironmentName>,
    /// The catalog component the object belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<EntityRef>,
    /// The namespace the object will land in when it names none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// What is being done.
    #[serde(default)]
    pub operation: Operation,
    /// Who asks (user name or entity ref).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Whether the change will not be persisted.
    #[serde(default)]
    pub dry_run: bool,
    /// "Now", for rules and exceptions that expire.
    pub now: jiff::Timestamp,
    /// Free-form attributes a platform passes to its own policies.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

impl Default for PolicyContext {
    fn default() -> Self {
        Self::new()
    }
}

impl PolicyContext {
    /// A context with nothing set and `now` read from the system clock.
    ///
    /// ```
    /// assert!(idp_core::PolicyContext::new().environment.is_none());
    /// ```
    pub fn new() -> Self {
        Self {
            environment: None,
            component: None,
            namespace: None,
            operation: Operation::default(),
            user: None,
            dry_run: false,
            now: jiff::Timestamp::now(),
            attributes: BTreeMap::new(),
        }
    }

    /// The context a [`Release`] is checked in.
    ///
    /// ```
    /// # use idp_core::{Release, ManifestSet, PolicyContext};
    /// let r = Release::new("component:default/cart".parse().unwrap(), "dev".parse().unwrap(), ManifestSet::new());
    /// let ctx = PolicyContext::for_release(&r);
    /// assert_eq!(ctx.environment, Some(r.environment.clone()));
    /// ```
    pub fn for_release(release: &Release) -> Self {
        Self {
            environment: Some(release.environment.clone()),
            component: Some(release.component.clone()),
            user: release.author.clone(),
            now: release.created_at,
            ..Self::new()
        }
    }

    /// Set the environment.
    ///
    /// ```
    /// let c = idp_core::PolicyContext::new().with_environment("dev".parse().unwrap());
    /// assert!(c.environment.is_some());
    /// ```
    pub fn with_environment(mut self, environment: EnvironmentName) -> Self {
        self.environment = Some(environment);
        self
    }

    /// Set the component.
    ///
    /// ```
    /// let c = idp_core::PolicyContext::new().with_component("component:default/a".parse().unwrap());
    /// assert!(c.component.is_some());
    /// ```
    pub fn with_component(mut self, component: EntityRef) -> Self {
        self.component = Some(component);
        self
    }

    /// Set the default namespace.
    ///
    /// ```
    /// let c = idp_core::PolicyContext::new().with_namespace("shop");
    /// assert_eq!(c.namespace.as_deref(), Some("shop"));
    /// ```
    pub fn with_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Set the operation.
    ///
    /// ```
    /// use idp_core::model::Operation;
    /// let c = idp_core::PolicyContext::new().with_operation(Operation::Delete);
    /// assert_eq!(c.operation, Operation::Delete);
    /// ```
    pub fn with_operation(mut self, operation: Operation) -> Self {
        self.operation = operation;
        self
    }

    /// Set who asks.
    ///
    /// ```
    /// let c = idp_core::PolicyContext::new().with_user("jane");
    /// assert_eq!(c.user.as_deref(), Some("jane"));
    /// ```
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Set "now".
    ///
    /// ```
    /// let t = jiff::Timestamp::UNIX_EPOCH;
    /// assert_eq!(idp_core::PolicyContext::new().at(t).now, t);
    /// ```
    pub fn at(mut self, now: jiff::Timestamp) -> Self {
        self.now = now;
        self
    }
}

/// What to deploy: a component's rendered manifests for one environment, with where they
/// came from.
///
/// Rendering (Score files, Helm-like templates) happens before a release is made, in
/// `idp-deploy`; a release always carries concrete Kubernetes objects, so policies can
/// check exactly what will be applied.
///
/// ```
/// use idp_core::{ManifestSet, Release};
/// let release = Release::new(
///     "component:default/cart".parse().unwrap(),
///     "staging".parse().unwrap(),
///     ManifestSet::new(),
/// )
/// .with_source_revision("3f2c1a9")
/// .with_author("jane@example.com");
/// assert_eq!(release.source_revision.as_deref(), Some("3f2c1a9"));
/// ```
#[derive(Debug, Clone)]
pub struct Release {
    /// The catalog component being deployed.
    pub component: EntityRef,
    /// Where it goes.
    pub environment: EnvironmentName,
    /// The Kubernetes objects to apply.
    pub manifests: ManifestSet,
    /// The developer-facing workload spec the manifests were rendered from, kept for the
    /// record (for example a Score file as JSON).
    pub workload: Option<Value>,
    /// The source commit the release was built from.
    pub source_revision: Option<String>,
    /// Who asked for it.
    pub author: Option<String>,
    /// Why (a commit message, a change ticket).
    pub message: Option<String>,
    /// When it was made.
    pub created_at: jiff::Timestamp,
}

impl Release {
    /// A release made now, with no provenance yet.
    ///
    /// ```
    /// # use idp_core::{ManifestSet, Release};
    /// let r = Release::new("component:default/a".parse().unwrap(), "dev".parse().unwrap(), ManifestSet::new());
    /// assert!(r.author.is_none());
    /// ```
    pub fn new(component: EntityRef, environment: EnvironmentName, manifests: ManifestSet) -> Self {
        Self {
            component,
            environment,
            manifests,
            workload: None,
            source_revision: None,
            author: None,
            message: None,
            created_at: jiff::Timestamp::now(),
        }
    }

    /// Set the source revision.
    ///
    /// ```
    /// # use idp_core::{ManifestSet, Release};
    /// let r = Release::new("component:default/a".parse().unwrap(), "dev".parse().unwrap(), ManifestSet::new())
    ///     .with_source_revision("abc");
    /// assert_eq!(r.source_revision.as_deref(), Some("abc"));
    /// ```
    pub fn with_source_revision(mut self, revision: impl Into<String>) -> Self {
        self.source_revision = Some(revision.into());
        self
    }

    /// Set the author.
    ///
    /// ```
    /// # use idp_core::{ManifestSet, Release};
    /// let r = Release::new("component:default/a".parse().unwrap(), "dev".parse().unwrap(), ManifestSet::new())
    ///     .with_author("jane");
    /// assert_eq!(r.author.as_deref(), Some("jane"));
    /// ```
    pub fn with_author(mut self, author: impl Into<String>) -> Self {
        self.author = Some(author.into());
        self
    }

    /// Set the message.
    ///
    /// ```
    /// # use idp_core::{ManifestSet, Release};
    /// let r = Release::new("component:default/a".parse().unwrap(), "dev".parse().unwrap(), ManifestSet::new())
    ///     .with_message("fix checkout");
    /// assert_eq!(r.message.as_deref(), Some("fix checkout"));
    /// ```
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Set the workload spec kept for the record.
    ///
    /// ```
    /// # use idp_core::{ManifestSet, Release};
    /// let r = Release::new("component:default/a".parse().unwrap(), "dev".parse().unwrap(), ManifestSet::new())
    ///     .with_workload(serde_json::json!({"apiVersion": "score.dev/v1b1"}));
    /// assert!(r.workload.is_some());
    /// ```
    pub fn with_workload(mut self, workload: Value) -> Self {
        self.workload = Some(workload);
        self
    }

    /// Set the creation time.
    ///
    /// ```
    /// # use idp_core::{ManifestSet, Release};
    /// let r = Release::new("component:default/a".parse().unwrap(), "dev".parse().unwrap(), ManifestSet::new())
    ///     .at(jiff::Timestamp::UNIX_EPOCH);
    /// assert_eq!(r.created_at, jiff::Timestamp::UNIX_EPOCH);
    /// ```
    pub fn at(mut self, created_at: jiff::Timestamp) -> Self {
        self.created_at = created_at;
        self
    }
}

/// The identifier a [`Deployer`](crate::Deployer) gives a deployment (a commit id for the
/// GitOps deployer, a generated id for others).
///
/// ```
/// let id = idp_core::DeploymentId::new("9f1c2e7");
/// assert_eq!(id.as_str(), "9f1c2e7");
/// ```
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(transparent)]
pub struct DeploymentId(String);

impl DeploymentId {
    /// Wrap an identifier.
    ///
    /// ```
    /// assert_eq!(idp_core::DeploymentId::new("x").to_string(), "x");
    /// ```
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The identifier as a string slice.
    ///
    /// ```
    /// assert_eq!(idp_core::DeploymentId::new("x").as_str(), "x");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeploymentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a deployment stands.
///
/// ```
/// use idp_core::DeploymentStatus;
/// assert!(DeploymentStatus::Succeeded.is_terminal());
/// assert!(!DeploymentStatus::Progressing.is_terminal());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum DeploymentStatus {
    /// Recorded, not yet acted on (a GitOps commit no cluster has synced yet).
    Pending,
    /// Being rolled out.
    Progressing,
    /// Rolled out and healthy.
    Succeeded,
    /// Did not become healthy, or could not be applied.
    Failed,
    /// Replaced by a rollback to an earlier deployment.
    RolledBack,
    /// Replaced by a later deployment.
    Superseded,
}

impl DeploymentStatus {
    /// Whether the status will not change any more by itself.
    ///
    /// ```
    /// assert!(idp_core::DeploymentStatus::Failed.is_terminal());
    /// ```
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            DeploymentStatus::Pending | DeploymentStatus::Progressing
        )
    }
}

/// The record of one release deployed to one environment.
///
/// ```
/// use idp_core::{Deployment, DeploymentId, DeploymentStatus};
/// let d = Deployment {
///     id: DeploymentId::new("9f1c2e7"),
///     component: "component:default/cart".parse().unwrap(),
///     environment: "prod".parse().unwrap(),
///     revision: "9f1c2e7".into(),
///     source_revision: Some("3f2c1a9".into()),
///     author: Some("jane".into()),
///     message: None,
///     status: DeploymentStatus::Pending,
///     created_at: jiff::Timestamp::UNIX_EPOCH,
/// };
/// assert_eq!(serde_json::to_value(&d).unwrap()["status"], "pending");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Deployment {
    /// The deployer's identifier for it.
    pub id: DeploymentId,
    /// The component deployed.
    pub component: EntityRef,
    /// The environment deployed to.
    pub environment: EnvironmentName,
    /// What the target now holds: a GitOps commit, a cluster inventory revision.
    pub revision: String,
    /// The source commit the release was built from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_revision: Option<String>,
    /// Who deployed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Where it stands.
    pub status: DeploymentStatus,
    /// When it was made.
    #[schemars(with = "String")]
    pub created_at: jiff::Timestamp,
}

/// What an [`EnvironmentProvider`](crate::EnvironmentProvider) is asked to make exist.
///
/// ```
/// use idp_core::model::EnvironmentSpec;
/// let spec = EnvironmentSpec::new("pr-cart-42".parse().unwrap())
///     .with_label("idp.dev/preview", "true")
///     .with_ttl(std::time::Duration::from_secs(7 * 24 * 3600));
/// assert_eq!(spec.labels["idp.dev/preview"], "true");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EnvironmentSpec {
    /// The environment's name.
    pub name: EnvironmentName,
    /// Who owns it (a catalog group or user).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<EntityRef>,
    /// Labels to put on everything the provider creates for it.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// How long it may live without being ensured again; `None` lives until destroyed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<std::time::Duration>,
}

impl EnvironmentSpec {
    /// A spec with only a name.
    ///
    /// ```
    /// let s = idp_core::model::EnvironmentSpec::new("dev".parse().unwrap());
    /// assert!(s.ttl.is_none());
    /// ```
    pub fn new(name: EnvironmentName) -> Self {
        Self {
            name,
            owner: None,
            labels: BTreeMap::new(),
            ttl: None,
        }
    }

    /// Set the owner.
    ///
    /// ```
    /// let s = idp_core::model::EnvironmentSpec::new("dev".parse().unwrap())
    ///     .with_owner("group:default/team-a".parse().unwrap());
    /// assert!(s.owner.is_some());
    /// ```
    pub fn with_owner(mut self, owner: EntityRef) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Add a label.
    ///
    /// ```
    /// let s = idp_core::model::EnvironmentSpec::new("dev".parse().unwrap()).with_label("a", "b");
    /// assert_eq!(s.labels.len(), 1);
    /// ```
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Set the time to live.
    ///
    /// ```
    /// let s = idp_core::model::EnvironmentSpec::new("dev".parse().unwrap())
    ///     .with_ttl(std::time::Duration::from_secs(60));
    /// assert!(s.ttl.is_some());
    /// ```
    pub fn with_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
}

/// An environment that exists, as a provider reports it.
///
/// ```
/// use idp_core::Environment;
/// let env = Environment::new("dev".parse().unwrap());
/// assert_eq!(env.name.as_str(), "dev");
/// assert!(env.namespace.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Environment {
    /// Its name.
    pub name: EnvironmentName,
    /// The Kubernetes namespace it lives in, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Who owns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<EntityRef>,
    /// Its labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Where people reach it, when it has an address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// When it was created, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub created_at: Option<jiff::Timestamp>,
    /// When it expires unless ensured again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<String>")]
    pub expires_at: Option<jiff::Timestamp>,
}

impl Environment {
    /// An environment with only a name.
    ///
    /// ```
    /// assert!(idp_core::Environment::new("dev".parse().unwrap()).url.is_none());
    /// ```
    pub fn new(name: EnvironmentName) -> Self {
        Self {
            name,
            namespace: None,
            owner: None,
            labels: BTreeMap::new(),
            url: None,
            created_at: None,
            expires_at: None,
        }
    }
}

/// A catalog entity in its envelope form (`apiVersion`, `kind`, `metadata`, `spec`,
/// `relations`, `status`), kept as JSON so unknown fields survive a round trip.
/// Typed views of the built-in kinds live in `idp-catalog`.
///
/// ```
/// use idp_core::model::Entity;
/// let e = Entity::from_value(serde_json::json!({
///     "apiVersion": "backstage.io/v1alpha1",
///     "kind": "Component",
///     "metadata": {"name": "cart"},
///     "spec": {"type": "service", "owner": "team-a", "lifecycle": "production"}
/// })).unwrap();
/// assert_eq!(e.entity_ref().to_string(), "component:default/cart");
/// assert_eq!(e.spec_str("owner"), Some("team-a"));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Value", into = "Value")]
pub struct Entity {
    value: Map<String, Value>,
    entity_ref: EntityRef,
}

impl Entity {
    /// Wrap an envelope; it needs string `apiVersion`, `kind` and `metadata.name`
    /// (`metadata.namespace` defaults to `default`).
    ///
    /// ```
    /// let err = idp_core::model::Entity::from_value(serde_json::json!({"kind": "Component"})).unwrap_err();
    /// assert!(err.to_string().contains("apiVersion"));
    /// ```
    pub fn from_value(value: Value) -> Result<Self> {
        let Value::Object(map) = value else {
            return Err(Error::invalid_input(
                "a catalog entity must be a mapping with apiVersion, kind and metadata",
            ));
        };
        let field = |path: &[&str]| -> Option<&str> {
            let mut v = map.get(path[0])?;
            for p in &path[1..] {
                v = v.get(p)?;
            }
            v.as_str()
        };
        if field(&["apiVersion"]).is_none() {
            return Err(Error::invalid_input(
                "catalog entity has no string field `apiVersion`",
            ));
        }
        let kind = field(&["kind"])
            .ok_or_else(|| Error::invalid_input("catalog entity has no string field `kind`"))?;
        let name = field(&["metadata", "name"]).ok_or_else(|| {
            Error::invalid_input("catalog entity has no string field `metadata.name`")
        })?;
        let namespace = field(&["metadata", "namespace"]).unwrap_or(DEFAULT_NAMESPACE);
        let entity_ref = EntityRef::new(kind, namespace, name)?;
        Ok(Self {
            value: map,
            entity_ref,
        })
    }

    /// The entity's own reference.
    ///
    /// ```
    /// # let e = idp_core::model::Entity::from_value(serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "a", "namespace": "org"}})).unwrap();
    /// assert_eq!(e.entity_ref().to_string(), "group:org/a");
    /// ```
    pub fn entity_ref(&self) -> &EntityRef {
        &self.entity_ref
    }

    /// `kind`.
    ///
    /// ```
    /// # let e = idp_core::model::Entity::from_value(serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "a"}})).unwrap();
    /// assert_eq!(e.kind(), "Group");
    /// ```
    pub fn kind(&self) -> &str {
        self.entity_ref.kind()
    }

    /// `metadata.name`.
    ///
    /// ```
    /// # let e = idp_core::model::Entity::from_value(serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "a"}})).unwrap();
    /// assert_eq!(e.name(), "a");
    /// ```
    pub fn name(&self) -> &str {
        self.entity_ref.name()
    }

    /// `metadata.namespace` (`default` when absent).
    ///
    /// ```
    /// # let e = idp_core::model::Entity::from_value(serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "a"}})).unwrap();
    /// assert_eq!(e.namespace(), "default");
    /// ```
    pub fn namespace(&self) -> &str {
        self.entity_ref.namespace()
    }

    /// `metadata.uid`, set by the catalog.
    ///
    /// ```
    /// # let e = idp_core::model::Entity::from_value(serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "a", "uid": "u1"}})).unwrap();
    /// assert_eq!(e.uid(), Some("u1"));
    /// ```
    pub fn uid(&self) -> Option<&str> {
        self.value.get("metadata")?.get("uid")?.as_str()
    }

    /// A string field of `spec`.
    ///
    /// ```
    /// # let e = idp_core::model::Entity::from_value(serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "a"}, "spec": {"type": "team"}})).unwrap();
    /// assert_eq!(e.spec_str("type"), Some("team"));
    /// ```
    pub fn spec_str(&self, field: &str) -> Option<&str> {
        self.value.get("spec")?.get(field)?.as_str()
    }

    /// The relations the catalog computed, as `(type, target)` pairs.
    ///
    /// ```
    /// # let e = idp_core::model::Entity::from_value(serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component", "metadata": {"name": "a"},
    /// #   "relations": [{"type": "ownedBy", "targetRef": "group:default/t"}]})).unwrap();
    /// let rels = e.relations();
    /// assert_eq!(rels[0].relation_type, "ownedBy");
    /// ```
    pub fn relations(&self) -> Vec<Relation> {
        self.value
            .get("relations")
            .and_then(Value::as_array)
            .map(|rels| {
                rels.iter()
                    .filter_map(|r| {
                        let relation_type = r.get("type")?.as_str()?.to_owned();
                        let target = r.get("targetRef")?.as_str()?.parse().ok()?;
                        Some(Relation {
                            relation_type,
                            target,
                        })
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The whole envelope.
    ///
    /// ```
    /// # let e = idp_core::model::Entity::from_value(serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "a"}})).unwrap();
    /// assert!(e.as_map().contains_key("metadata"));
    /// ```
    pub fn as_map(&self) -> &Map<String, Value> {
        &self.value
    }

    /// The envelope as JSON.
    ///
    /// ```
    /// # let e = idp_core::model::Entity::from_value(serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "a"}})).unwrap();
    /// assert_eq!(e.to_value()["kind"], "Group");
    /// ```
    pub fn to_value(&self) -> Value {
        Value::Object(self.value.clone())
    }
}

impl TryFrom<Value> for Entity {
    type Error = Error;
    fn try_from(value: Value) -> Result<Self> {
        Self::from_value(value)
    }
}

impl From<Entity> for Value {
    fn from(e: Entity) -> Value {
        Value::Object(e.value)
    }
}

/// A directed relation between two catalog entities (`ownedBy`, `partOf`, `providesApi`…).
///
/// ```
/// let r = idp_core::model::Relation {
///     relation_type: "ownedBy".into(),
///     target: "group:default/team-a".parse().unwrap(),
/// };
/// assert_eq!(r.target.name(), "team-a");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Relation {
    /// The relation type, as Backstage names it.
    #[serde(rename = "type")]
    pub relation_type: String,
    /// The entity it points to.
    #[serde(rename = "targetRef")]
    pub target: EntityRef,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn violation_serialises_camel_case() {
        let v = Violation::new("p", "r", "m").with_path("a.b");
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["path"], "a.b");
        assert_eq!(json["enforcement"], "deny");
        let back: Violation = serde_json::from_value(json).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn entity_round_trips_unknown_fields() {
        let raw = serde_json::json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "a", "x-custom": {"k": 1}}, "spec": {"weird": [1, 2]}
        });
        let e: Entity = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(serde_json::to_value(&e).unwrap(), raw);
    }
}
