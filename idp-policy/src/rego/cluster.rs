//! Gatekeeper policies kept in a cluster: read them as Gatekeeper does, and write what
//! an audit found into each constraint's `status`, as Gatekeeper's audit does.
//!
//! Gatekeeper users keep their policies as cluster objects: `ConstraintTemplate`s
//! (`templates.gatekeeper.sh`), the constraints of each template's kind
//! (`constraints.gatekeeper.sh`) and one `Config` named `config`
//! (`config.gatekeeper.sh`). [`ClusterPolicies::read`] lists them;
//! [`ClusterPolicies::load_into`] adds them to a [`RegoPolicy`] (beside templates read
//! from files), leaving out, with the reason, a template that does not compile together
//! with its constraints, so that one broken template does not stop the others.
//!
//! After an audit, [`ConstraintStatuses`] gathers each constraint's violations and
//! [`ConstraintStatuses::write`] merges them into the constraint's `status`:
//! `auditTimestamp`, `totalViolations` and the first [`STATUS_VIOLATIONS_LIMIT`]
//! `violations` (`enforcementAction`, `group`, `version`, `kind`, `namespace`, `name`,
//! `message`), which is what `kubectl get <constraint kind>` shows.
//!
//! ```no_run
//! # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
//! use idp_core::PolicyContext;
//! use idp_policy::audit::Audit;
//! use idp_policy::rego::RegoPolicy;
//! use idp_policy::rego::cluster::{ClusterPolicies, ConstraintStatuses};
//!
//! let loaded = ClusterPolicies::read(&cluster).await?.load_into(RegoPolicy::new("gatekeeper"))?;
//! for (what, error) in &loaded.skipped {
//!     eprintln!("left out {what}: {error}");
//! }
//! let policy = loaded.policy.for_audit();
//! let mut statuses = ConstraintStatuses::new("gatekeeper", &loaded.constraints);
//! Audit::new(cluster.clone())
//!     .run(&policy, &PolicyContext::new(), |object, result| statuses.add(object, &result.violations))
//!     .await?;
//! for (constraint, error) in statuses.write(&cluster, jiff::Timestamp::now()).await {
//!     eprintln!("{}: {error}", constraint.rule());
//! }
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;

use idp_core::cluster::{Cluster, GroupKind};
use idp_core::model::Enforcement;
use idp_core::{Error, Object, Result, Violation};
use serde_json::{Value, json};
use tracing::Instrument;

use super::{Constraint, ConstraintTemplate, RegoPolicy};
use crate::audit::list_served;
use crate::gatekeeper::config::{self, GatekeeperConfig};
use crate::names::split_api_version;

/// The API group of Gatekeeper's constraint kinds.
pub const CONSTRAINTS_GROUP: &str = "constraints.gatekeeper.sh";

/// The API group of `ConstraintTemplate`.
pub const TEMPLATES_GROUP: &str = "templates.gatekeeper.sh";

/// How many violations a constraint's `status.violations` lists, as Gatekeeper's
/// `--constraint-violations-limit` defaults to.
pub const STATUS_VIOLATIONS_LIMIT: usize = 20;

/// The Gatekeeper policies read from a cluster.
///
/// ```
/// let p = idp_policy::rego::cluster::ClusterPolicies::default();
/// assert!(p.templates.is_empty() && p.config.is_none());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClusterPolicies {
    /// Every `ConstraintTemplate`.
    pub templates: Vec<Object>,
    /// The constraints of the templates' kinds.
    pub constraints: Vec<Object>,
    /// The `Config` named `config`, if there is one (the first, when several
    /// namespaces hold one).
    pub config: Option<Object>,
}

/// A constraint kept in the cluster (cluster-scoped, `constraints.gatekeeper.sh`).
///
/// ```
/// let c = idp_policy::rego::cluster::ConstraintRef { kind: "K8sRequiredLabels".into(), name: "owner".into() };
/// assert_eq!(c.rule(), "K8sRequiredLabels/owner");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConstraintRef {
    /// Its kind (its template's).
    pub kind: String,
    /// Its name.
    pub name: String,
}

impl ConstraintRef {
    /// The rule its violations carry in a [`RegoPolicy`]: `Kind/name`.
    ///
    /// ```
    /// let c = idp_policy::rego::cluster::ConstraintRef { kind: "K".into(), name: "n".into() };
    /// assert_eq!(c.rule(), "K/n");
    /// ```
    pub fn rule(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// What [`ClusterPolicies::load_into`] made.
#[derive(Debug)]
pub struct Loaded {
    /// The policy with the cluster's templates, constraints and `Config` added.
    pub policy: RegoPolicy,
    /// The cluster's constraints it holds.
    pub constraints: Vec<ConstraintRef>,
    /// What was left out (`ConstraintTemplate k8sbroken`, `Config config`, …) and why.
    pub skipped: Vec<(String, Error)>,
}

impl ClusterPolicies {
    /// List the templates, the constraints of their kinds and the `Config` named
    /// `config`. Kinds the cluster does not serve give nothing; a kind that cannot be
    /// listed (forbidden) is an error.
    ///
    /// ```no_run
    /// # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
    /// let found = idp_policy::rego::cluster::ClusterPolicies::read(&cluster).await?;
    /// println!("{} templates, {} constraints", found.templates.len(), found.constraints.len());
    /// # Ok(()) }
    /// ```
    pub async fn read(cluster: &Cluster) -> Result<Self> {
        let span = tracing::info_span!("policy.gatekeeper.read_cluster");
        async {
            let mut found = Self {
                templates: list_served(cluster, GroupKind::new(TEMPLATES_GROUP, "ConstraintTemplate"))
                    .await?,
                ..Self::default()
            };
            for template in &found.templates {
                let Some(kind) = template
                    .pointer("/spec/crd/spec/names/kind")
                    .and_then(Value::as_str)
                else {
                    continue;
                };
                found
                    .constraints
                    .extend(list_served(cluster, GroupKind::new(CONSTRAINTS_GROUP, kind)).await?);
            }
            let mut configs: Vec<Object> = list_served(cluster, GroupKind::new(config::GROUP, "Config"))
                .await?
                .into_iter()
                .filter(|c| c.name() == config::NAME)
                .collect();
            if configs.len() > 1 {
                tracing::warn!(
                    namespaces = ?configs.iter().map(|c| c.namespace().unwrap_or_default().to_owned()).collect::<Vec<_>>(),
                    "several Gatekeeper Configs named config; the first is used"
                );
            }
            found.config = (!configs.is_empty()).then(|| configs.remove(0));
            tracing::debug!(
                templates = found.templates.len(),
                constraints = found.constraints.len(),
                config = found.config.is_some(),
                "Gatekeeper policies read from the cluster"
            );
            Ok(found)
        }
        .instrument(span)
        .await
    }

    /// The `Config`, read (`None` when there is none).
    ///
    /// ```
    /// let p = idp_policy::rego::cluster::ClusterPolicies::default();
    /// assert!(p.gatekeeper_config().unwrap().is_none());
    /// ```
    pub fn gatekeeper_config(&self) -> Result<Option<GatekeeperConfig>> {
        self.config
            .as_ref()
            .map(GatekeeperConfig::from_object)
            .transpose()
    }

    /// Add the templates, their constraints and the `Config` to `policy` (which may
    /// hold templates from files already; give it no inventory yet, since the `Config`
    /// shapes the inventory). A template that does not compile is left out with its
    /// constraints, a constraint or `Config` that does not read is left out, each
    /// recorded in [`Loaded::skipped`]; a `Config` already in `policy` wins over the
    /// cluster's. Constraints of a kind no template defines are left out silently, as
    /// Gatekeeper has no CRD for them.
    ///
    /// ```
    /// use idp_policy::rego::{RegoPolicy, cluster::ClusterPolicies};
    /// let template = idp_core::Object::from_value(serde_json::json!({
    ///     "apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate", "metadata": {"name": "k8sbroken"},
    ///     "spec": {"crd": {"spec": {"names": {"kind": "K8sBroken"}}},
    ///         "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": "package k8sbroken\nviolation[{"}]}})).unwrap();
    /// let found = ClusterPolicies { templates: vec![template], ..ClusterPolicies::default() };
    /// let loaded = found.load_into(RegoPolicy::new("gatekeeper")).unwrap();
    /// assert_eq!(loaded.skipped[0].0, "ConstraintTemplate k8sbroken");
    /// assert!(loaded.policy.templates().is_empty());
    /// ```
    pub fn load_into(&self, mut policy: RegoPolicy) -> Result<Loaded> {
        let mut skipped = Vec::new();
        if let Some(object) = &self.config {
            match GatekeeperConfig::from_object(object) {
                Ok(found) => policy = policy.with_gatekeeper_config(found)?,
                Err(e) => skipped.push((format!("Config {}", object.name()), e)),
            }
        }
        for template in &self.templates {
            let loaded = ConstraintTemplate::from_value(&template.to_value(), None)
                .and_then(|t| policy.add_template(t));
            if let Err(e) = loaded {
                tracing::warn!(template = template.name(), error = %e.report(), "a ConstraintTemplate in the cluster does not load; it and its constraints are left out");
                skipped.push((format!("ConstraintTemplate {}", template.name()), e));
            }
        }
        let kinds: Vec<String> = policy.templates().iter().map(|k| (*k).to_owned()).collect();
        let mut constraints = Vec::new();
        for object in &self.constraints {
            if !kinds.iter().any(|k| k == object.kind()) {
                continue;
            }
            match Constraint::from_value(&object.to_value(), None) {
                Ok(constraint) => {
                    policy.add_constraint(constraint);
                    constraints.push(ConstraintRef {
                        kind: object.kind().to_owned(),
                        name: object.name().to_owned(),
                    });
                }
                Err(e) => {
                    skipped.push((format!("{} {}", object.kind(), object.name()), e));
                }
            }
        }
        Ok(Loaded {
            policy,
            constraints,
            skipped,
        })
    }
}

/// One constraint's findings.
#[derive(Debug, Clone, Default)]
struct Found {
    total: u64,
    violations: Vec<Value>,
}

/// The findings of an audit per constraint, for their `status`. See the
/// [module documentation](self).
///
/// ```
/// use idp_policy::rego::cluster::{ConstraintRef, ConstraintStatuses};
/// let owner = ConstraintRef { kind: "K8sRequiredLabels".into(), name: "owner".into() };
/// let mut statuses = ConstraintStatuses::new("gatekeeper", &[owner.clone()]);
/// let ns = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})).unwrap();
/// statuses.add(&ns, &[idp_core::Violation::new("gatekeeper", "K8sRequiredLabels/owner", "label owner")]);
/// assert_eq!(statuses.total(&owner), 1);
/// assert_eq!(statuses.status(&owner)["violations"][0]["kind"], "Namespace");
/// ```
#[derive(Debug, Clone)]
pub struct ConstraintStatuses {
    policy: String,
    found: BTreeMap<String, (ConstraintRef, Found)>,
}

impl ConstraintStatuses {
    /// Gather for `constraints`, from the violations of the [`RegoPolicy`] named
    /// `policy`.
    ///
    /// ```
    /// let s = idp_policy::rego::cluster::ConstraintStatuses::new("gatekeeper", &[]);
    /// # let _ = s;
    /// ```
    pub fn new(policy: impl Into<String>, constraints: &[ConstraintRef]) -> Self {
        Self {
            policy: policy.into(),
            found: constraints
                .iter()
                .map(|c| (c.rule(), (c.clone(), Found::default())))
                .collect(),
        }
    }

    /// Count the violations of `object` that belong to the constraints.
    ///
    /// ```
    /// let mut s = idp_policy::rego::cluster::ConstraintStatuses::new("gatekeeper", &[]);
    /// let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})).unwrap();
    /// s.add(&o, &[]);
    /// ```
    pub fn add(&mut self, object: &Object, violations: &[Violation]) {
        for v in violations {
            if v.policy != self.policy.as_str() {
                continue;
            }
            let Some((_, found)) = self.found.get_mut(v.rule.as_ref()) else {
                continue;
            };
            found.total += 1;
            if found.violations.len() >= STATUS_VIOLATIONS_LIMIT {
                continue;
            }
            let (group, version) = split_api_version(object.api_version());
            // Gatekeeper's names for the actions: dryrun is its audit-only one.
            let action = match v.enforcement {
                Enforcement::Deny => "deny",
                Enforcement::Warn => "warn",
                Enforcement::Audit => "dryrun",
            };
            let mut entry = json!({
                "enforcementAction": action,
                "group": group,
                "version": version,
                "kind": object.kind(),
                "name": object.name(),
                "message": v.message,
            });
            if let Some(ns) = object.namespace() {
                entry["namespace"] = Value::from(ns);
            }
            found.violations.push(entry);
        }
    }

    /// How many violations of `constraint` were counted.
    ///
    /// ```
    /// use idp_policy::rego::cluster::{ConstraintRef, ConstraintStatuses};
    /// let c = ConstraintRef { kind: "K".into(), name: "n".into() };
    /// assert_eq!(ConstraintStatuses::new("gatekeeper", &[c.clone()]).total(&c), 0);
    /// ```
    pub fn total(&self, constraint: &ConstraintRef) -> u64 {
        self.found
            .get(&constraint.rule())
            .map_or(0, |(_, found)| found.total)
    }

    /// The `status` fields for `constraint` (without `auditTimestamp`, which
    /// [`Self::write`] adds).
    ///
    /// ```
    /// use idp_policy::rego::cluster::{ConstraintRef, ConstraintStatuses};
    /// let c = ConstraintRef { kind: "K".into(), name: "n".into() };
    /// assert_eq!(ConstraintStatuses::new("gatekeeper", &[c.clone()]).status(&c)["totalViolations"], 0);
    /// ```
    pub fn status(&self, constraint: &ConstraintRef) -> Value {
        let found = self
            .found
            .get(&constraint.rule())
            .map(|(_, found)| found.clone())
            .unwrap_or_default();
        json!({"totalViolations": found.total, "violations": found.violations})
    }

    /// Merge each constraint's findings into its `status`, stamped `at`; the
    /// constraints that could not be written, with the error (the others are written
    /// all the same).
    ///
    /// ```no_run
    /// # async fn demo(cluster: idp_core::cluster::Cluster, s: idp_policy::rego::cluster::ConstraintStatuses) {
    /// for (constraint, error) in s.write(&cluster, jiff::Timestamp::now()).await {
    ///     eprintln!("{}: {error}", constraint.rule());
    /// }
    /// # }
    /// ```
    pub async fn write(
        &self,
        cluster: &Cluster,
        at: jiff::Timestamp,
    ) -> Vec<(ConstraintRef, Error)> {
        let span = tracing::info_span!(
            "policy.gatekeeper.write_status",
            constraints = self.found.len()
        );
        async {
            let stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
            let mut failed = Vec::new();
            for (constraint, _) in self.found.values() {
                let mut status = self.status(constraint);
                status["auditTimestamp"] = Value::from(stamp.as_str());
                let kind = GroupKind::new(CONSTRAINTS_GROUP, &constraint.kind);
                if let Err(e) = cluster
                    .patch_status(&kind, None, &constraint.name, &status)
                    .await
                {
                    tracing::warn!(constraint = %constraint.rule(), error = %e.report(), "constraint status not written");
                    failed.push((constraint.clone(), e));
                }
            }
            failed
        }
        .instrument(span)
        .await
    }
}
