//! Metadata guardrails: required labels.

use idp_core::{Object, Policy, PolicyContext, Severity, Violation};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::podspec::POD_KINDS;
use crate::view::{NativePolicy, ObjectView, text};

fn owner() -> Vec<String> {
    vec!["idp.dev/owner".to_owned()]
}

fn workload_kinds() -> Vec<String> {
    POD_KINDS
        .iter()
        .chain(&["Service", "Ingress"])
        .map(|k| (*k).to_owned())
        .collect()
}

/// Objects must carry the required labels (default `idp.dev/owner`), with a non-empty
/// value. Applies to the listed kinds (default: Pods, pod controllers, Services and
/// Ingresses; empty list: every kind). Rule: `missing-label`.
///
/// ```
/// use idp_core::{Object, Policy, PolicyContext};
/// use idp_policy::guardrails::RequireLabels;
/// let p = RequireLabels::new(["idp.dev/owner", "team"]);
/// let d = Object::from_value(serde_json::json!({"apiVersion": "apps/v1", "kind": "Deployment",
///     "metadata": {"name": "d", "labels": {"team": "payments"}}})).unwrap();
/// let v = p.evaluate(&d, &PolicyContext::new());
/// assert_eq!(v.len(), 1);
/// assert_eq!(v[0].path.as_deref(), Some("metadata.labels[\"idp.dev/owner\"]"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct RequireLabels {
    /// The label keys that must be present.
    #[serde(default = "owner")]
    pub labels: Vec<String>,
    /// The kinds checked (empty: every kind).
    #[serde(default = "workload_kinds")]
    pub kinds: Vec<String>,
}

impl Default for RequireLabels {
    fn default() -> Self {
        Self {
            labels: owner(),
            kinds: workload_kinds(),
        }
    }
}

impl RequireLabels {
    /// The policy name.
    pub const NAME: &'static str = "require-labels";

    /// Require these labels on the default kinds.
    ///
    /// ```
    /// assert_eq!(idp_policy::guardrails::RequireLabels::new(["team"]).labels, ["team"]);
    /// ```
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(labels: I) -> Self {
        Self {
            labels: labels.into_iter().map(Into::into).collect(),
            kinds: workload_kinds(),
        }
    }
}

impl Policy for RequireLabels {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn evaluate(&self, object: &Object, ctx: &PolicyContext) -> Vec<Violation> {
        let mut out = Vec::new();
        self.check(&ObjectView::without_pod(object), ctx, &mut out);
        out
    }
}

impl NativePolicy for RequireLabels {
    fn applies(&self, view: &ObjectView<'_>) -> bool {
        self.kinds.is_empty() || self.kinds.iter().any(|k| k == view.kind)
    }

    fn check(&self, view: &ObjectView<'_>, _ctx: &PolicyContext, out: &mut Vec<Violation>) {
        let object = view.object;
        if !self.kinds.is_empty() && !self.kinds.iter().any(|k| k == view.kind) {
            return;
        }
        // Borrowed: `Object::labels` would copy every label of every object.
        let labels = object
            .as_map()
            .get("metadata")
            .and_then(|m| m.get("labels"))
            .and_then(serde_json::Value::as_object);
        for key in &self.labels {
            let present = labels
                .and_then(|l| l.get(key.as_str()))
                .and_then(serde_json::Value::as_str)
                .is_some_and(|v| !v.is_empty());
            if present {
                continue;
            }
            out.push(
                Violation::from_static(
                    Self::NAME,
                    "missing-label",
                    text!(
                        "{} has no label \"{key}\"; add it to metadata.labels",
                        view.kind
                    ),
                )
                .with_path(text!("metadata.labels[\"{key}\"]"))
                .with_severity(Severity::Low),
            );
        }
    }
}
