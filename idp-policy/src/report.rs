//! What a check found: per object ([`ObjectResult`]) and in aggregate ([`Report`]).
//!
//! A [`Report`] stays bounded however many objects are checked: it keeps counters, one
//! [`RuleSummary`] per policy/rule, and at most [`ReportLimits::max_violations`]
//! violations and [`ReportLimits::max_objects`] object results as a sample. To see every
//! object, stream them with [`PolicySet::check_each`](crate::PolicySet::check_each).
//!
//! ```
//! use idp_core::{Object, PolicyContext};
//! use idp_policy::{PolicySet, pss::PodSecurity, report::ReportLimits};
//!
//! let set = PolicySet::new().with_policy(PodSecurity::baseline());
//! let pods = (0..100).map(|i| Object::from_value(serde_json::json!({
//!     "apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("p{i}")},
//!     "spec": {"hostNetwork": true, "containers": [{"name": "c"}]}})).unwrap());
//! let report = set.check_with_limits(pods, &PolicyContext::new(), ReportLimits { max_violations: 10, max_objects: 5 });
//! assert_eq!(report.objects_checked, 100);
//! assert_eq!(report.denied, 100);
//! assert_eq!(report.sample.len(), 10);
//! assert_eq!(report.rules[0].count, 100);
//! assert!(report.truncated);
//! ```

use std::collections::BTreeMap;

use idp_core::model::Enforcement;
use idp_core::{ObjectRef, Violation};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The verdict on one object.
///
/// ```
/// let r = idp_policy::report::ObjectResult::new(idp_core::ObjectRef::new("v1", "Pod", None, "p"), vec![]);
/// assert!(r.allowed);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ObjectResult {
    /// The object.
    pub object: ObjectRef,
    /// `false` when any violation has [`Enforcement::Deny`].
    pub allowed: bool,
    /// Every violation, in policy order.
    pub violations: Vec<Violation>,
}

/// One violation as a row of a check's output: `{policy, rule, message, path, action}`.
///
/// ```
/// let row = idp_policy::report::ViolationRow::from(idp_core::Violation::new("p", "r", "m"));
/// assert_eq!(serde_json::to_value(&row).unwrap()["action"], "deny");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ViolationRow {
    /// The policy that found it.
    pub policy: String,
    /// The rule within the policy.
    pub rule: String,
    /// What is wrong and how to fix it.
    pub message: String,
    /// The path of the offending field, when known.
    pub path: Option<String>,
    /// `deny`, `warn` or `audit`.
    pub action: Enforcement,
}

impl From<Violation> for ViolationRow {
    fn from(v: Violation) -> Self {
        Self {
            policy: v.policy.into_owned(),
            rule: v.rule.into_owned(),
            message: v.message,
            path: v.path,
            action: v.enforcement,
        }
    }
}

/// One object's verdict as a row of a check's output, the shape `idpctl policy check
/// --format json` prints and the server's policy check returns: `{file, document,
/// apiVersion, kind, namespace, name, allowed, violations: [..]}`.
///
/// ```
/// use idp_core::{Object, PolicyContext};
/// use idp_policy::{PolicySet, pss::PodSecurity, report::CheckRow};
/// let pod = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
///     "metadata": {"name": "p"}, "spec": {"hostPID": true}})).unwrap();
/// let set = PolicySet::new().with_policy(PodSecurity::baseline());
/// let row = CheckRow::new("pod.yaml", &pod, set.check_object(&pod, &PolicyContext::new()));
/// let json = serde_json::to_value(&row).unwrap();
/// assert_eq!((json["apiVersion"].as_str(), json["allowed"].as_bool()), (Some("v1"), Some(false)));
/// assert_eq!(json["violations"][0]["rule"], "hostNamespaces");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckRow {
    /// The file the object came from (or another name for its source).
    pub file: String,
    /// The 0-based index of the YAML document in its file.
    pub document: usize,
    /// The object's `apiVersion`.
    pub api_version: String,
    /// The object's kind.
    pub kind: String,
    /// The object's namespace, when it has one.
    pub namespace: Option<String>,
    /// The object's name.
    pub name: String,
    /// `false` when any violation denies.
    pub allowed: bool,
    /// Every violation, in policy order.
    pub violations: Vec<ViolationRow>,
}

impl CheckRow {
    /// The row of `object`, read from `file`, with its `result`.
    ///
    /// ```
    /// # let pod = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}})).unwrap();
    /// # let result = idp_policy::PolicySet::new().check_object(&pod, &idp_core::PolicyContext::new());
    /// let row = idp_policy::report::CheckRow::new("request", &pod, result);
    /// assert!(row.allowed && row.violations.is_empty());
    /// ```
    pub fn new(file: impl Into<String>, object: &idp_core::Object, result: ObjectResult) -> Self {
        Self {
            file: file.into(),
            document: object.source().map_or(0, |s| s.document),
            api_version: object.api_version().to_owned(),
            kind: object.kind().to_owned(),
            namespace: object.namespace().map(str::to_owned),
            name: object.name().to_owned(),
            allowed: result.allowed,
            violations: result
                .violations
                .into_iter()
                .map(ViolationRow::from)
                .collect(),
        }
    }
}

impl ObjectResult {
    /// A result; `allowed` is computed from the violations.
    ///
    /// ```
    /// use idp_core::{ObjectRef, Violation};
    /// let r = idp_policy::report::ObjectResult::new(ObjectRef::new("v1", "Pod", None, "p"), vec![Violation::new("p", "r", "m")]);
    /// assert!(!r.allowed);
    /// ```
    pub fn new(object: ObjectRef, violations: Vec<Violation>) -> Self {
        let allowed = !violations.iter().any(|v| v.enforcement.blocks());
        Self {
            object,
            allowed,
            violations,
        }
    }

    /// The violations that only warn.
    ///
    /// ```
    /// # use idp_core::{ObjectRef, Violation, model::Enforcement};
    /// let r = idp_policy::report::ObjectResult::new(ObjectRef::new("v1", "Pod", None, "p"),
    ///     vec![Violation::new("p", "r", "m").with_enforcement(Enforcement::Warn)]);
    /// assert_eq!(r.warnings().count(), 1);
    /// ```
    pub fn warnings(&self) -> impl Iterator<Item = &Violation> {
        self.violations
            .iter()
            .filter(|v| v.enforcement == Enforcement::Warn)
    }
}

/// Aggregate of one policy/rule over every object checked.
///
/// ```
/// let s = idp_policy::report::RuleSummary { policy: "p".into(), rule: "r".into(), count: 3, objects: 2, deny: 3, warn: 0, audit: 0 };
/// assert_eq!(s.count, 3);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RuleSummary {
    /// The policy.
    pub policy: String,
    /// The rule.
    pub rule: String,
    /// Violations found.
    pub count: u64,
    /// Objects with at least one violation of this rule.
    pub objects: u64,
    /// Violations with enforcement deny.
    pub deny: u64,
    /// Violations with enforcement warn.
    pub warn: u64,
    /// Violations with enforcement audit.
    pub audit: u64,
}

/// How much detail a [`Report`] keeps.
///
/// ```
/// let l = idp_policy::report::ReportLimits::default();
/// assert_eq!(l.max_violations, 1000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReportLimits {
    /// At most this many violations are kept in [`Report::sample`].
    pub max_violations: usize,
    /// At most this many not-clean objects are kept in [`Report::objects`].
    pub max_objects: usize,
}

impl Default for ReportLimits {
    fn default() -> Self {
        Self {
            max_violations: 1000,
            max_objects: 1000,
        }
    }
}

/// The outcome of checking many objects, bounded in memory.
///
/// ```
/// let r = idp_policy::report::Report::default();
/// assert!(r.is_allowed());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Objects checked.
    pub objects_checked: u64,
    /// Objects allowed (no deny violation).
    pub allowed: u64,
    /// Objects denied.
    pub denied: u64,
    /// Allowed objects with at least one warn violation.
    pub warned: u64,
    /// Violations found in all.
    pub violations: u64,
    /// One summary per policy/rule, sorted by policy then rule.
    pub rules: Vec<RuleSummary>,
    /// The first violations found (at most `limits.max_violations`), each naming its object.
    pub sample: Vec<Violation>,
    /// The first objects with violations (at most `limits.max_objects`).
    pub objects: Vec<ObjectResult>,
    /// Whether the sample or the object list left something out.
    pub truncated: bool,
    /// The limits this report was built with.
    #[serde(default)]
    pub limits: ReportLimits,
}

impl Report {
    /// Whether nothing was denied.
    ///
    /// ```
    /// assert!(idp_policy::report::Report::default().is_allowed());
    /// ```
    pub fn is_allowed(&self) -> bool {
        self.denied == 0
    }
}

/// Builds a [`Report`] one object at a time in bounded memory.
///
/// ```
/// use idp_core::{ObjectRef, Violation};
/// use idp_policy::report::{ObjectResult, ReportBuilder, ReportLimits};
/// let mut b = ReportBuilder::new(ReportLimits::default());
/// b.add(ObjectResult::new(ObjectRef::new("v1", "Pod", None, "p"), vec![Violation::new("p", "r", "m")]));
/// let report = b.finish();
/// assert_eq!(report.denied, 1);
/// ```
#[derive(Debug, Default)]
pub struct ReportBuilder {
    report: Report,
    rules: BTreeMap<(String, String), RuleSummary>,
}

impl ReportBuilder {
    /// An empty builder.
    ///
    /// ```
    /// let b = idp_policy::report::ReportBuilder::new(Default::default());
    /// assert_eq!(b.finish().objects_checked, 0);
    /// ```
    pub fn new(limits: ReportLimits) -> Self {
        Self {
            report: Report {
                limits,
                ..Report::default()
            },
            rules: BTreeMap::new(),
        }
    }

    /// Account for one object.
    ///
    /// ```
    /// # use idp_policy::report::{ObjectResult, ReportBuilder};
    /// let mut b = ReportBuilder::new(Default::default());
    /// b.add(ObjectResult::new(idp_core::ObjectRef::new("v1", "Pod", None, "p"), vec![]));
    /// assert_eq!(b.finish().allowed, 1);
    /// ```
    pub fn add(&mut self, result: ObjectResult) {
        if self.tally(&result) {
            self.report.objects.push(result);
        }
    }

    /// Account for one object the caller keeps: as [`Self::add`], cloning the result
    /// only when the report keeps it among [`Report::objects`].
    ///
    /// ```
    /// # use idp_policy::report::{ObjectResult, ReportBuilder, ReportLimits};
    /// let mut b = ReportBuilder::new(ReportLimits { max_violations: 0, max_objects: 0 });
    /// let r = ObjectResult::new(idp_core::ObjectRef::new("v1", "Pod", None, "p"), vec![idp_core::Violation::new("p", "r", "m")]);
    /// b.add_ref(&r);
    /// let report = b.finish();
    /// assert_eq!((report.denied, report.rules[0].count), (1, 1));
    /// assert!(report.objects.is_empty() && report.truncated);
    /// ```
    pub fn add_ref(&mut self, result: &ObjectResult) {
        if self.tally(result) {
            self.report.objects.push(result.clone());
        }
    }

    /// Count `result` in; whether the report keeps it among its objects.
    fn tally(&mut self, result: &ObjectResult) -> bool {
        let r = &mut self.report;
        r.objects_checked += 1;
        if result.allowed {
            r.allowed += 1;
            if result.warnings().next().is_some() {
                r.warned += 1;
            }
        } else {
            r.denied += 1;
        }
        r.violations += result.violations.len() as u64;
        let mut seen: Vec<(&str, &str)> = Vec::new();
        for v in &result.violations {
            let key = (v.policy.to_string(), v.rule.to_string());
            let s = self.rules.entry(key).or_insert_with(|| RuleSummary {
                policy: v.policy.to_string(),
                rule: v.rule.to_string(),
                count: 0,
                objects: 0,
                deny: 0,
                warn: 0,
                audit: 0,
            });
            s.count += 1;
            match v.enforcement {
                Enforcement::Deny => s.deny += 1,
                Enforcement::Warn => s.warn += 1,
                Enforcement::Audit => s.audit += 1,
            }
            if !seen.contains(&(&*v.policy, &*v.rule)) {
                seen.push((&*v.policy, &*v.rule));
                s.objects += 1;
            }
        }
        for v in &result.violations {
            if r.sample.len() < r.limits.max_violations {
                let mut v = v.clone();
                if v.object.is_none() {
                    v.object = Some(result.object.clone());
                }
                r.sample.push(v);
            } else {
                r.truncated = true;
                break;
            }
        }
        if result.violations.is_empty() {
            return false;
        }
        if r.objects.len() < r.limits.max_objects {
            true
        } else {
            r.truncated = true;
            false
        }
    }

    /// The report.
    ///
    /// ```
    /// assert!(idp_policy::report::ReportBuilder::new(Default::default()).finish().rules.is_empty());
    /// ```
    pub fn finish(mut self) -> Report {
        self.report.rules = self.rules.into_values().collect();
        self.report
    }
}
