//! Policy reports in the `wgpolicyk8s.io/v1alpha2` format: the `PolicyReport` and
//! `ClusterPolicyReport` resources Kyverno writes its results into and tools such as
//! Policy Reporter read. A platform can apply them to a cluster, archive them from CI, or
//! feed them to whatever already reads Kyverno's reports.
//!
//! [`PolicyReports`] collects the verdicts of a [`PolicySet`](crate::PolicySet) object by
//! object: every violation becomes a `fail` result (`warn` for the warn action), and
//! every policy that applied to an object and found nothing becomes a `pass` result for
//! it. Objects are grouped into one `PolicyReport` per namespace and one
//! `ClusterPolicyReport` for cluster-scoped objects.
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
    /// Counts of the results by outcome.
    pub summary: Summary,
    /// One entry per policy (and rule) and object.
    pub results: Vec<ReportResult>,
}

/// A report's `metadata`.
///
/// ```
/// let m = idp_policy::policy_report::ReportMetadata { name: "idp-policy".into(), namespace: None };
/// assert_eq!(serde_json::to_value(&m).unwrap(), serde_json::json!({"name": "idp-policy"}));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ReportMetadata {
    /// The report's name.
    pub name: String,
    /// Its namespace (none for a `ClusterPolicyReport`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
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
}

impl From<&ObjectRef> for ResourceRef {
    fn from(r: &ObjectRef) -> Self {
        Self {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            name: r.name.clone(),
            namespace: r.namespace.clone(),
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
    /// By namespace; `None` is the cluster report.
    reports: BTreeMap<Option<String>, PolicyReport>,
    max_results: usize,
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
        }
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
        let scope = if resource.namespace.is_some() {
            resource.namespace.clone()
        } else if idp_core::manifest::is_cluster_scoped(object.kind()) {
            None
        } else {
            resource.namespace = Some(self.default_namespace.clone());
            resource.namespace.clone()
        };
        let (source, timestamp) = (self.source.clone(), self.timestamp);
        let report = self
            .reports
            .entry(scope.clone())
            .or_insert_with(|| PolicyReport {
                api_version: API_VERSION.to_owned(),
                kind: if scope.is_some() {
                    "PolicyReport"
                } else {
                    "ClusterPolicyReport"
                }
                .to_owned(),
                metadata: ReportMetadata {
                    name: REPORT_NAME.to_owned(),
                    namespace: scope.clone(),
                },
                summary: Summary::default(),
                results: Vec::new(),
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
                resources: vec![resource.clone()],
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
                resources: vec![resource.clone()],
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

    /// The reports: the `ClusterPolicyReport` (if any cluster-scoped object was added)
    /// first, then one `PolicyReport` per namespace in name order; a report with more
    /// results than [`Self::with_max_results`] allows is split, in order, into
    /// `idp-policy`, `idp-policy-2`, …
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
                        namespace: metadata.namespace.clone(),
                    },
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
