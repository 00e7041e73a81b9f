//! Policy reports in the `wgpolicyk8s.io/v1alpha2` format: the `PolicyReport` and
//! `ClusterPolicyReport` resources Kyverno writes its results into and tools such as
//! Policy Reporter read. A platform can apply them to a cluster, archive them from CI, or
//! feed them to whatever already reads Kyverno's reports.
//!
//! [`PolicyReports`] collects the verdicts of a [`PolicySet`](crate::PolicySet) object by
//! object: every violation becomes a `fail` result (`warn` for the warn action), and
//! every policy that applied to an object and found nothing becomes a `pass` result for
//! it. By default ([`ReportLayout::PerNamespace`]) objects are grouped into one
//! `PolicyReport` per namespace and one `ClusterPolicyReport` for cluster-scoped
//! objects; [`ReportLayout::PerResource`] gives each object its own report, as Kyverno's
//! reports controller does since Kyverno 1.10: named by the object's UID, with the
//! object as its `scope` and as its owner, so that Kubernetes deletes the report with
//! the object.
//!
//! ```
//! use idp_core::{Object, PolicyContext};
//! use idp_policy::{PolicySet, policy_report::PolicyReports, pss::PodSecurity};
//!
//! let set = PolicySet::new().with_policy(PodSecurity::baseline());
//! let pod = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
//!     "metadata": {"name": "web", "namespace": "shop"},
//!     "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "nginx:1.27"}]}})).unwrap();
//! let ctx = PolicyContext::new();
//! let mut reports = PolicyReports::new("idp", std::time::SystemTime::UNIX_EPOCH);
//! reports.add(&pod, &set.check_object(&pod, &ctx), &set.applicable_policies(&pod, &ctx));
//! let reports = reports.finish();
//! assert_eq!(reports[0].kind, "PolicyReport");
//! assert_eq!(reports[0].metadata.namespace.as_deref(), Some("shop"));
//! assert_eq!(reports[0].summary.fail, 1);
//! assert_eq!(reports[0].results[0].result, idp_policy::policy_report::Outcome::Fail);
//! ```

use std::collections::BTreeMap;
use std::time::SystemTime;

use idp_core::model::Enforcement;
use idp_core::{Object, ObjectRef};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::report::ObjectResult;

/// The API version of the reports.
pub const API_VERSION: &str = "wgpolicyk8s.io/v1alpha2";

/// The name every report gets (one per namespace, so the name can be the same).
pub const REPORT_NAME: &str = "idp-policy";

/// A `PolicyReport` (namespaced) or `ClusterPolicyReport`.
///
/// ```
/// let r = idp_policy::policy_report::PolicyReports::new("idp", std::time::SystemTime::UNIX_EPOCH).finish();
/// assert!(r.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PolicyReport {
    /// [`API_VERSION`].
    pub api_version: String,
    /// `PolicyReport` or `ClusterPolicyReport`.
    pub kind: String,
    /// Its name and, for a `PolicyReport`, namespace.
    pub metadata: ReportMetadata,
    /// The one object the report is about ([`ReportLayout::PerResource`]); its results
    /// then name no `resources` of their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<ResourceRef>,
    /// Counts of the results by outcome.
    pub summary: Summary,
    /// One entry per policy (and rule) and object.
    pub results: Vec<ReportResult>,
}

/// A report's `metadata`.
///
/// ```
/// let m = idp_policy::policy_report::ReportMetadata::new("idp-policy", None);
/// assert_eq!(serde_json::to_value(&m).unwrap(),
///     serde_json::json!({"name": "idp-policy", "labels": {"app.kubernetes.io/managed-by": "idp"}}));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportMetadata {
    /// The report's name.
    pub name: String,
    /// Its namespace (none for a `ClusterPolicyReport`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its labels: [`MANAGED_BY_LABEL`] is `idp` on every report built here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The object a per-resource report is about, when its UID is known: Kubernetes'
    /// garbage collector deletes the report when that object is deleted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owner_references: Vec<OwnerReference>,
}

/// The label naming the tool that manages a report (Kyverno sets it to `kyverno`, and
/// report readers such as Policy Reporter filter on it).
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";

impl ReportMetadata {
    /// A report's metadata: `name`, `namespace` (none for a `ClusterPolicyReport`) and
    /// [`MANAGED_BY_LABEL`] `idp`.
    ///
    /// ```
    /// let m = idp_policy::policy_report::ReportMetadata::new("idp-policy", Some("shop".into()));
    /// assert_eq!(m.labels["app.kubernetes.io/managed-by"], "idp");
    /// ```
    pub fn new(name: impl Into<String>, namespace: Option<String>) -> Self {
        Self {
            name: name.into(),
            namespace,
            labels: BTreeMap::from([(MANAGED_BY_LABEL.to_owned(), "idp".to_owned())]),
            owner_references: Vec::new(),
        }
    }
}

/// An owner of a report (`metav1.OwnerReference`, the fields set here).
///
/// ```
/// let o = idp_policy::policy_report::OwnerReference { api_version: "v1".into(), kind: "Pod".into(),
///     name: "web".into(), uid: "6f1c0f4e-2a8e-4c47-9d7e-0c1d2e3f4a5b".into() };
/// assert_eq!(serde_json::to_value(&o).unwrap()["apiVersion"], "v1");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OwnerReference {
    /// The owner's `apiVersion`.
    pub api_version: String,
    /// Its `kind`.
    pub kind: String,
    /// Its `metadata.name`.
    pub name: String,
    /// Its `metadata.uid`.
    pub uid: String,
}

/// How [`PolicyReports`] groups results into reports.
///
/// ```
/// use idp_policy::policy_report::ReportLayout;
/// assert_eq!("resource".parse::<ReportLayout>().unwrap(), ReportLayout::PerResource);
/// assert_eq!(ReportLayout::default(), ReportLayout::PerNamespace);
/// assert!("nodes".parse::<ReportLayout>().unwrap_err().to_string().contains("namespace"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ReportLayout {
    /// One `PolicyReport` named [`REPORT_NAME`] per namespace (split at
    /// [`PolicyReports::with_max_results`]) and one `ClusterPolicyReport` for the
    /// cluster-scoped objects: few objects to write, fit for a CI archive.
    #[default]
    PerNamespace,
    /// One report per object, in the object's namespace (a `ClusterPolicyReport` for a
    /// cluster-scoped object), as Kyverno lays its reports out: named by the object's
    /// `metadata.uid` (objects without one, as read from files, by `idp-` and a hash of
    /// their kind, namespace and name), the object as its `scope` and, when the UID is
    /// known, as its owner. Objects no policy applies to get no report.
    PerResource,
}

impl std::str::FromStr for ReportLayout {
    type Err = idp_core::Error;

    fn from_str(s: &str) -> idp_core::Result<Self> {
        match s {
            "namespace" | "perNamespace" => Ok(Self::PerNamespace),
            "resource" | "perResource" => Ok(Self::PerResource),
            other => Err(idp_core::Error::invalid_input(format!(
                "unknown report layout {other:?}: use namespace (one report per namespace) or resource (one report per object, as Kyverno)"
            ))),
        }
    }
}

/// How many results of each outcome a report holds.
///
/// ```
/// let s = idp_policy::policy_report::Summary::default();
/// assert_eq!(serde_json::to_value(&s).unwrap()["pass"], 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Summary {
    /// Policies whose requirements were met.
    pub pass: u64,
    /// Policy rules whose requirements were not met.
    pub fail: u64,
    /// Unscored policy rules whose requirements were not met (the warn action).
    pub warn: u64,
    /// Policies that could not be evaluated.
    pub error: u64,
    /// Policies not selected for evaluation.
    pub skip: u64,
}

/// The outcome of one result.
///
/// ```
/// assert_eq!(serde_json::to_value(idp_policy::policy_report::Outcome::Fail).unwrap(), "fail");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The requirements are met.
    Pass,
    /// The requirements are not met.
    Fail,
    /// The requirements are not met and the policy is not scored.
    Warn,
    /// The policy could not be evaluated.
    Error,
    /// The policy was not selected.
    Skip,
}

/// When a result was found (`metav1.Timestamp`).
///
/// ```
/// let t = idp_policy::policy_report::Timestamp::from(std::time::SystemTime::UNIX_EPOCH);
/// assert_eq!((t.seconds, t.nanos), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Timestamp {
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Nanoseconds within the second.
    pub nanos: i32,
}

impl From<SystemTime> for Timestamp {
    fn from(at: SystemTime) -> Self {
        let since = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            seconds: i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            nanos: i32::try_from(since.subsec_nanos()).unwrap_or(0),
        }
    }
}

/// The object a result is about (`corev1.ObjectReference`, the fields set here).
///
/// ```
/// let r = idp_policy::policy_report::ResourceRef::from(&idp_core::ObjectRef::new("v1", "Pod", Some("shop".into()), "web"));
/// assert_eq!(r.namespace.as_deref(), Some("shop"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceRef {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, for namespaced objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.uid`, when known (set in a per-resource report's `scope`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

impl From<&ObjectRef> for ResourceRef {
    fn from(r: &ObjectRef) -> Self {
        Self {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            name: r.name.clone(),
            namespace: r.namespace.clone(),
            uid: None,
        }
    }
}

/// One result: a policy (and rule) on one object.
///
/// ```
/// # use idp_policy::policy_report::*;
/// let r = ReportResult { source: "idp".into(), policy: "p".into(), rule: None, resources: vec![],
///     message: None, result: Outcome::Pass, scored: true, properties: Default::default(),
///     timestamp: Timestamp::default(), category: None, severity: None };
/// assert_eq!(serde_json::to_value(&r).unwrap()["result"], "pass");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReportResult {
    /// The engine that produced it.
    pub source: String,
    /// The policy.
    pub policy: String,
    /// The rule within the policy (none for a pass of the whole policy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The object checked.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resources: Vec<ResourceRef>,
    /// What was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The outcome.
    pub result: Outcome,
    /// Whether the result counts towards compliance (`false` for warnings).
    #[serde(default)]
    pub scored: bool,
    /// More detail: the offending field's `path` and the policy's `action`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub properties: BTreeMap<String, String>,
    /// When it was found.
    pub timestamp: Timestamp,
    /// The policy's category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    /// `critical`, `high`, `medium`, `low` or `info`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
}

/// Collects object verdicts into reports. See the [module documentation](self).
///
/// ```
/// let reports = idp_policy::policy_report::PolicyReports::new("ci", std::time::SystemTime::now())
///     .with_default_namespace("apps");
/// assert!(reports.finish().is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct PolicyReports {
    source: String,
    timestamp: Timestamp,
    default_namespace: String,
    /// By namespace (`None` is cluster-scoped) and name.
    reports: BTreeMap<(Option<String>, String), PolicyReport>,
    max_results: usize,
    layout: ReportLayout,
}

/// How many results one report holds at most by default (see
/// [`PolicyReports::with_max_results`]).
pub const DEFAULT_MAX_RESULTS: usize = 200;

impl PolicyReports {
    /// Reports whose results name `source` as their engine and `at` as their time.
    ///
    /// ```
    /// let r = idp_policy::policy_report::PolicyReports::new("idp", std::time::SystemTime::UNIX_EPOCH);
    /// assert!(r.finish().is_empty());
    /// ```
    pub fn new(source: impl Into<String>, at: SystemTime) -> Self {
        Self {
            source: source.into(),
            timestamp: at.into(),
            default_namespace: "default".to_owned(),
            reports: BTreeMap::new(),
            max_results: DEFAULT_MAX_RESULTS,
            layout: ReportLayout::default(),
        }
    }

    /// Group the results as `layout` says (default [`ReportLayout::PerNamespace`]).
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// use idp_policy::{PolicySet, policy_report::{PolicyReports, ReportLayout}, pss::PodSecurity};
    /// let set = PolicySet::new().with_policy(PodSecurity::baseline());
    /// let ctx = PolicyContext::new();
    /// let pod = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
    ///     "metadata": {"name": "web", "namespace": "shop", "uid": "0b6f5d2c-7d1e-4f0a-9a43-2f6f1c9e8d11"},
    ///     "spec": {"hostPID": true, "containers": [{"name": "c", "image": "nginx:1.27"}]}})).unwrap();
    /// let mut reports = PolicyReports::new("idp", std::time::SystemTime::UNIX_EPOCH)
    ///     .with_layout(ReportLayout::PerResource);
    /// reports.add(&pod, &set.check_object(&pod, &ctx), &set.applicable_policies(&pod, &ctx));
    /// let report = &reports.finish()[0];
    /// assert_eq!(report.metadata.name, "0b6f5d2c-7d1e-4f0a-9a43-2f6f1c9e8d11");
    /// assert_eq!(report.metadata.owner_references[0].name, "web");
    /// assert_eq!(report.scope.as_ref().unwrap().kind, "Pod");
    /// assert!(report.results[0].resources.is_empty(), "the scope names the object");
    /// ```
    #[must_use]
    pub fn with_layout(mut self, layout: ReportLayout) -> Self {
        self.layout = layout;
        self
    }

    /// At most `max` results per report (at least 1; default [`DEFAULT_MAX_RESULTS`]):
    /// a namespace with more gets several reports, `idp-policy`, `idp-policy-2`, … each
    /// with the summary of its own results. A report is one Kubernetes object, and
    /// objects are bounded: `kubectl apply` keeps the whole object in an annotation of
    /// at most 256 KiB, and the API server refuses objects over about 1.5 MiB; 200
    /// results stay well under the first.
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// use idp_policy::{PolicySet, policy_report::PolicyReports, pss::PodSecurity};
    /// let set = PolicySet::new().with_policy(PodSecurity::baseline());
    /// let ctx = PolicyContext::new();
    /// let mut reports = PolicyReports::new("idp", std::time::SystemTime::UNIX_EPOCH).with_max_results(2);
    /// for i in 0..5 {
    ///     let pod = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
    ///         "metadata": {"name": format!("p{i}"), "namespace": "shop"}, "spec": {"containers": []}})).unwrap();
    ///     reports.add(&pod, &set.check_object(&pod, &ctx), &set.applicable_policies(&pod, &ctx));
    /// }
    /// let names: Vec<String> = reports.finish().into_iter().map(|r| r.metadata.name).collect();
    /// assert_eq!(names, ["idp-policy", "idp-policy-2", "idp-policy-3"]);
    /// ```
    #[must_use]
    pub fn with_max_results(mut self, max: usize) -> Self {
        self.max_results = max.max(1);
        self
    }

    /// The namespace of namespaced objects that name none (default `default`, as
    /// `kubectl apply` would place them).
    ///
    /// ```
    /// let r = idp_policy::policy_report::PolicyReports::new("idp", std::time::SystemTime::UNIX_EPOCH).with_default_namespace("apps");
    /// # let _ = r;
    /// ```
    #[must_use]
    pub fn with_default_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.default_namespace = namespace.into();
        self
    }

    /// Add the verdict on `object`: its violations, and a pass for each policy in
    /// `applicable` (see [`PolicySet::applicable_policies`](crate::PolicySet::applicable_policies))
    /// that found nothing on it.
    ///
    /// ```
    /// use idp_core::{Object, PolicyContext};
    /// let set = idp_policy::PolicySet::new().with_policy(idp_policy::pss::PodSecurity::baseline());
    /// let ns = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}})).unwrap();
    /// let mut reports = idp_policy::policy_report::PolicyReports::new("idp", std::time::SystemTime::UNIX_EPOCH);
    /// reports.add(&ns, &set.check_object(&ns, &PolicyContext::new()), &set.applicable_policies(&ns, &PolicyContext::new()));
    /// let reports = reports.finish();
    /// assert_eq!(reports[0].kind, "ClusterPolicyReport");
    /// assert!(reports[0].results.is_empty(), "pod security does not apply to a Namespace");
    /// ```
    pub fn add(&mut self, object: &Object, result: &ObjectResult, applicable: &[&str]) {
        let mut resource = ResourceRef::from(&result.object);
        let namespace = if resource.namespace.is_some() {
            resource.namespace.clone()
        } else if idp_core::manifest::is_cluster_scoped(object.kind()) {
            None
        } else {
            resource.namespace = Some(self.default_namespace.clone());
            resource.namespace.clone()
        };
        let (name, scope, owner) = match self.layout {
            ReportLayout::PerNamespace => (REPORT_NAME.to_owned(), None, None),
            ReportLayout::PerResource => {
                if result.violations.is_empty() && applicable.is_empty() {
                    return;
                }
                let uid = object
                    .pointer("/metadata/uid")
                    .and_then(serde_json::Value::as_str)
                    .filter(|uid| idp_core::ids::DnsSubdomain::new(*uid).is_ok());
                let owner = uid.map(|uid| OwnerReference {
                    api_version: resource.api_version.clone(),
                    kind: resource.kind.clone(),
                    name: resource.name.clone(),
                    uid: uid.to_owned(),
                });
                let name = uid.map_or_else(|| unnamed_report(&resource), str::to_owned);
                let mut scope = resource.clone();
                scope.uid = uid.map(str::to_owned);
                (name, Some(scope), owner)
            }
        };
        // A per-resource report names its object once, in its scope.
        let resources = if scope.is_some() {
            Vec::new()
        } else {
            vec![resource]
        };
        let (source, timestamp) = (self.source.clone(), self.timestamp);
        let report = self
            .reports
            .entry((namespace.clone(), name.clone()))
            .or_insert_with(|| {
                let mut metadata = ReportMetadata::new(name, namespace.clone());
                metadata.owner_references.extend(owner);
                PolicyReport {
                    api_version: API_VERSION.to_owned(),
                    kind: if namespace.is_some() {
                        "PolicyReport"
                    } else {
                        "ClusterPolicyReport"
                    }
                    .to_owned(),
                    metadata,
                    scope,
                    summary: Summary::default(),
                    results: Vec::new(),
                }
            });
        for v in &result.violations {
            let (outcome, scored) = match v.enforcement {
                Enforcement::Warn => (Outcome::Warn, false),
                Enforcement::Deny | Enforcement::Audit => (Outcome::Fail, true),
            };
            let mut properties = BTreeMap::new();
            if let Some(path) = &v.path {
                properties.insert("path".to_owned(), path.clone());
            }
            properties.insert("action".to_owned(), v.enforcement.as_str().to_owned());
            report.push(ReportResult {
                source: source.clone(),
                policy: v.policy.to_string(),
                rule: Some(v.rule.to_string()),
                resources: resources.clone(),
                message: Some(v.message.clone()),
                result: outcome,
                scored,
                properties,
                timestamp,
                category: category(&v.policy),
                severity: Some(v.severity.as_str().to_owned()),
            });
        }
        for policy in applicable {
            if result.violations.iter().any(|v| v.policy == *policy) {
                continue;
            }
            report.push(ReportResult {
                source: source.clone(),
                policy: (*policy).to_owned(),
                rule: None,
                resources: resources.clone(),
                message: Some("no violations".to_owned()),
                result: Outcome::Pass,
                scored: true,
                properties: BTreeMap::new(),
                timestamp,
                category: category(policy),
                severity: None,
            });
        }
    }

    /// The reports: the cluster-scoped ones first, then the namespaced ones, by
    /// namespace and name (per namespace: one `ClusterPolicyReport`, if any
    /// cluster-scoped object was added, then one `PolicyReport` per namespace); a report
    /// with more results than [`Self::with_max_results`] allows is split, in order, into
    /// `idp-policy`, `idp-policy-2`, … (a per-resource report into `<uid>`, `<uid>-2`, …)
    ///
    /// ```
    /// assert!(idp_policy::policy_report::PolicyReports::new("idp", std::time::SystemTime::UNIX_EPOCH).finish().is_empty());
    /// ```
    pub fn finish(self) -> Vec<PolicyReport> {
        let max = self.max_results;
        let mut out = Vec::with_capacity(self.reports.len());
        for report in self.reports.into_values() {
            if report.results.len() <= max {
                out.push(report);
                continue;
            }
            let PolicyReport {
                api_version,
                kind,
                metadata,
                scope,
                results,
                ..
            } = report;
            let mut results = results.into_iter().peekable();
            let mut part = 1;
            while results.peek().is_some() {
                let mut piece = PolicyReport {
                    api_version: api_version.clone(),
                    kind: kind.clone(),
                    metadata: ReportMetadata {
                        name: if part == 1 {
                            metadata.name.clone()
                        } else {
                            format!("{}-{part}", metadata.name)
                        },
                        ..metadata.clone()
                    },
                    scope: scope.clone(),
                    summary: Summary::default(),
                    results: Vec::with_capacity(max),
                };
                for result in results.by_ref().take(max) {
                    piece.push(result);
                }
                out.push(piece);
                part += 1;
            }
        }
        out
    }
}

impl PolicyReport {
    fn push(&mut self, result: ReportResult) {
        let counter = match result.result {
            Outcome::Pass => &mut self.summary.pass,
            Outcome::Fail => &mut self.summary.fail,
            Outcome::Warn => &mut self.summary.warn,
            Outcome::Error => &mut self.summary.error,
            Outcome::Skip => &mut self.summary.skip,
        };
        *counter += 1;
        self.results.push(result);
    }
}

/// The name of a per-resource report on an object without a UID (read from a file):
/// `idp-` and 16 hex digits of a 64-bit FNV-1a hash of its API version, kind, namespace
/// and name, the same on every run.
fn unnamed_report(resource: &ResourceRef) -> String {
    let mut hash = idp_core::hash::Fnv1a64::new();
    let parts = [
        resource.api_version.as_str(),
        resource.kind.as_str(),
        resource.namespace.as_deref().unwrap_or_default(),
        resource.name.as_str(),
    ];
    for part in parts {
        hash.write(part.as_bytes());
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        hash.write(&[0]);
    }
    format!("idp-{:016x}", hash.finish())
}

/// The category of the built-in policies, by name.
fn category(policy: &str) -> Option<String> {
    let category = match policy {
        "pod-security" => "Pod Security Standards",
        "require-resources" | "require-probes" | "min-replicas" => "Workload Guardrails",
        "forbid-sensitive-ports" | "restrict-service-types" | "require-ingress-tls" => {
            "Network Guardrails"
        }
        "allowed-registries" | "disallow-latest-tag" => "Image Guardrails",
        "require-labels" => "Metadata Guardrails",
        _ => return None,
    };
    Some(category.to_owned())
}
