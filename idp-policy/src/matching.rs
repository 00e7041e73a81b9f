//! Which objects a policy looks at: kinds, namespaces, names and label selectors.
//!
//! A [`ResourceFilter`] is what Kyverno calls a `match`/`exclude` block and Gatekeeper a
//! constraint's `match`: every field that is set must match (AND), each list matches
//! when any of its entries does (OR), an empty filter matches everything. Names and
//! namespaces accept `*` wildcards. A filter naming `Pod` among its kinds also matches
//! the pod controllers (autogen, as in Kyverno) unless `autogen: false`.
//!
//! ```
//! use idp_policy::matching::{LabelSelector, ResourceFilter};
//! let filter: ResourceFilter = serde_json::from_value(serde_json::json!({
//!     "kinds": ["Pod"],
//!     "namespaces": ["shop-*"],
//!     "selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]}
//! })).unwrap();
//! let deploy = idp_core::Object::from_value(serde_json::json!({
//!     "apiVersion": "apps/v1", "kind": "Deployment",
//!     "metadata": {"name": "cart", "namespace": "shop-eu", "labels": {"tier": "web"}}
//! })).unwrap();
//! assert!(filter.matches(&deploy, None));
//! ```

use std::collections::BTreeMap;

use idp_core::Object;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::podspec::POD_KINDS;

/// `*` matches any run of characters (including none); everything else literally.
///
/// ```
/// assert!(idp_policy::matching::wildcard("kube-*", "kube-system"));
/// assert!(!idp_policy::matching::wildcard("kube-*", "shop"));
/// assert!(idp_policy::matching::wildcard("*", ""));
/// ```
pub fn wildcard(pattern: &str, text: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut remaining) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('*').collect();
    let last = parts.len() - 1;
    for (i, part) in parts.iter().enumerate() {
        if i == last {
            return remaining.ends_with(part);
        }
        match remaining.find(part) {
            Some(at) => remaining = &remaining[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// The operator of a set-based label requirement.
///
/// ```
/// let op: idp_policy::matching::SelectorOperator = serde_json::from_str("\"NotIn\"").unwrap();
/// assert_eq!(op, idp_policy::matching::SelectorOperator::NotIn);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum SelectorOperator {
    /// The label is set to one of the values.
    In,
    /// The label is absent or set to none of the values.
    NotIn,
    /// The label is set.
    Exists,
    /// The label is absent.
    DoesNotExist,
}

/// One set-based requirement of a [`LabelSelector`].
///
/// ```
/// use idp_policy::matching::{SelectorOperator, SelectorRequirement};
/// let r = SelectorRequirement::new("env", SelectorOperator::In, ["prod", "staging"]);
/// assert_eq!(r.values.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SelectorRequirement {
    /// The label key.
    pub key: String,
    /// How the values are compared.
    pub operator: SelectorOperator,
    /// The values (`In`/`NotIn`; ignored by `Exists`/`DoesNotExist`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

impl SelectorRequirement {
    /// A requirement.
    ///
    /// ```
    /// use idp_policy::matching::{SelectorOperator, SelectorRequirement};
    /// let r = SelectorRequirement::new("team", SelectorOperator::Exists, [] as [&str; 0]);
    /// assert!(r.values.is_empty());
    /// ```
    pub fn new<I, S>(key: impl Into<String>, operator: SelectorOperator, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            key: key.into(),
            operator,
            values: values.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether `labels` satisfy this requirement (Kubernetes semantics: `NotIn` holds
    /// when the label is absent).
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use idp_policy::matching::{SelectorOperator, SelectorRequirement};
    /// let r = SelectorRequirement::new("env", SelectorOperator::NotIn, ["prod"]);
    /// assert!(r.matches(&BTreeMap::new()));
    /// ```
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        let value = labels.get(&self.key);
        match self.operator {
            SelectorOperator::In => value.is_some_and(|v| self.values.contains(v)),
            SelectorOperator::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            SelectorOperator::Exists => value.is_some(),
            SelectorOperator::DoesNotExist => value.is_none(),
        }
    }
}

/// A Kubernetes label selector: equality (`matchLabels`) and set-based
/// (`matchExpressions`) requirements, all of which must hold. Empty: everything.
///
/// ```
/// use std::collections::BTreeMap;
/// use idp_policy::matching::LabelSelector;
/// let sel = LabelSelector::new().with_label("app", "cart");
/// let labels = BTreeMap::from([("app".to_string(), "cart".to_string())]);
/// assert!(sel.matches(&labels));
/// assert!(!sel.matches(&BTreeMap::new()));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelSelector {
    /// Labels that must be present with exactly these values.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
    /// Set-based requirements.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub match_expressions: Vec<SelectorRequirement>,
}

impl LabelSelector {
    /// The empty selector (matches everything).
    ///
    /// ```
    /// assert!(idp_policy::matching::LabelSelector::new().matches(&Default::default()));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Require `key=value`.
    ///
    /// ```
    /// let s = idp_policy::matching::LabelSelector::new().with_label("a", "b");
    /// assert_eq!(s.match_labels.len(), 1);
    /// ```
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.match_labels.insert(key.into(), value.into());
        self
    }

    /// Add a set-based requirement.
    ///
    /// ```
    /// use idp_policy::matching::{LabelSelector, SelectorOperator, SelectorRequirement};
    /// let s = LabelSelector::new().with_expression(SelectorRequirement::new("a", SelectorOperator::Exists, [""; 0]));
    /// assert_eq!(s.match_expressions.len(), 1);
    /// ```
    pub fn with_expression(mut self, requirement: SelectorRequirement) -> Self {
        self.match_expressions.push(requirement);
        self
    }

    /// Whether `labels` satisfy every requirement.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// let s = idp_policy::matching::LabelSelector::new().with_label("a", "b");
    /// assert!(!s.matches(&BTreeMap::from([("a".into(), "c".into())])));
    /// ```
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels
            .iter()
            .all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|r| r.matches(labels))
    }

    /// Whether the selector has no requirement.
    ///
    /// ```
    /// assert!(idp_policy::matching::LabelSelector::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.match_labels.is_empty() && self.match_expressions.is_empty()
    }
}

fn yes() -> bool {
    true
}

#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_true(b: &bool) -> bool {
    *b
}

/// Which objects something applies to. Every field that is set must match; an empty
/// filter matches every object.
///
/// ```
/// use idp_policy::matching::ResourceFilter;
/// let f = ResourceFilter::new().kinds(["Service"]).namespaces(["shop"]);
/// let svc = idp_core::Object::from_value(serde_json::json!({
///     "apiVersion": "v1", "kind": "Service", "metadata": {"name": "s", "namespace": "shop"}})).unwrap();
/// assert!(f.matches(&svc, None));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceFilter {
    /// Kinds (`Deployment`) or `group/Kind` (`apps/Deployment`); `*` for any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// Namespaces, with `*` wildcards. A cluster-scoped object has no namespace and does
    /// not match a namespace list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub namespaces: Vec<String>,
    /// Object names, with `*` wildcards.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// A selector over the object's labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// When `kinds` names `Pod`, also match the pod controllers (default `true`).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub autogen: bool,
}

impl Default for ResourceFilter {
    fn default() -> Self {
        Self {
            kinds: Vec::new(),
            namespaces: Vec::new(),
            names: Vec::new(),
            selector: None,
            autogen: true,
        }
    }
}

impl ResourceFilter {
    /// The filter that matches everything.
    ///
    /// ```
    /// assert!(idp_policy::matching::ResourceFilter::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Restrict to these kinds.
    ///
    /// ```
    /// assert_eq!(idp_policy::matching::ResourceFilter::new().kinds(["Pod"]).kinds, ["Pod"]);
    /// ```
    pub fn kinds<I: IntoIterator<Item = S>, S: Into<String>>(mut self, kinds: I) -> Self {
        self.kinds = kinds.into_iter().map(Into::into).collect();
        self
    }

    /// Restrict to these namespaces (wildcards allowed).
    ///
    /// ```
    /// assert_eq!(idp_policy::matching::ResourceFilter::new().namespaces(["kube-*"]).namespaces, ["kube-*"]);
    /// ```
    pub fn namespaces<I: IntoIterator<Item = S>, S: Into<String>>(mut self, namespaces: I) -> Self {
        self.namespaces = namespaces.into_iter().map(Into::into).collect();
        self
    }

    /// Restrict to these names (wildcards allowed).
    ///
    /// ```
    /// assert_eq!(idp_policy::matching::ResourceFilter::new().names(["legacy-*"]).names, ["legacy-*"]);
    /// ```
    pub fn names<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.names = names.into_iter().map(Into::into).collect();
        self
    }

    /// Restrict to objects whose labels match `selector`.
    ///
    /// ```
    /// use idp_policy::matching::{LabelSelector, ResourceFilter};
    /// let f = ResourceFilter::new().selector(LabelSelector::new().with_label("a", "b"));
    /// assert!(f.selector.is_some());
    /// ```
    pub fn selector(mut self, selector: LabelSelector) -> Self {
        self.selector = Some(selector);
        self
    }

    /// Whether nothing is restricted.
    ///
    /// ```
    /// assert!(!idp_policy::matching::ResourceFilter::new().kinds(["Pod"]).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.kinds.is_empty()
            && self.namespaces.is_empty()
            && self.names.is_empty()
            && self.selector.as_ref().is_none_or(LabelSelector::is_empty)
    }

    /// Whether `object` matches. `default_namespace` is used for namespaced objects that
    /// name none (usually the context's namespace).
    ///
    /// ```
    /// use idp_policy::matching::ResourceFilter;
    /// let f = ResourceFilter::new().namespaces(["shop"]);
    /// let cm = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})).unwrap();
    /// assert!(f.matches(&cm, Some("shop")));
    /// assert!(!f.matches(&cm, None));
    /// ```
    pub fn matches(&self, object: &Object, default_namespace: Option<&str>) -> bool {
        self.matches_kind(object)
            && (self.namespaces.is_empty()
                || object
                    .namespace()
                    .or(default_namespace)
                    .is_some_and(|ns| self.namespaces.iter().any(|p| wildcard(p, ns))))
            && (self.names.is_empty() || self.names.iter().any(|p| wildcard(p, object.name())))
            && self
                .selector
                .as_ref()
                .is_none_or(|s| s.is_empty() || s.matches(&object.labels()))
    }

    fn matches_kind(&self, object: &Object) -> bool {
        if self.kinds.is_empty() {
            return true;
        }
        let kind = object.kind();
        let group = object.api_version().rsplit_once('/').map_or("", |(g, _)| g);
        self.kinds.iter().any(|k| {
            let (want_group, want_kind) = match k.rsplit_once('/') {
                Some((g, k)) => (Some(g), k),
                None => (None, k.as_str()),
            };
            let group_ok = want_group.is_none_or(|g| g == "*" || g == group);
            let kind_ok = want_kind == "*"
                || want_kind == kind
                || (self.autogen && want_kind == "Pod" && POD_KINDS.contains(&kind));
            group_ok && kind_ok
        })
    }
}

/// A match block and the exclusions carved out of it.
///
/// ```
/// use idp_policy::matching::{MatchRules, ResourceFilter};
/// let rules = MatchRules::default().exclude(ResourceFilter::new().namespaces(["kube-system"]));
/// let pod = idp_core::Object::from_value(serde_json::json!({
///     "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "kube-system"}})).unwrap();
/// assert!(!rules.matches(&pod, None));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MatchRules {
    /// Objects must match one of these (empty: every object).
    #[serde(default, rename = "match", skip_serializing_if = "Vec::is_empty")]
    pub any: Vec<ResourceFilter>,
    /// Objects matching any of these are skipped.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<ResourceFilter>,
}

impl MatchRules {
    /// Add an alternative the object may match.
    ///
    /// ```
    /// use idp_policy::matching::{MatchRules, ResourceFilter};
    /// assert_eq!(MatchRules::default().include(ResourceFilter::new().kinds(["Pod"])).any.len(), 1);
    /// ```
    pub fn include(mut self, filter: ResourceFilter) -> Self {
        self.any.push(filter);
        self
    }

    /// Add an exclusion.
    ///
    /// ```
    /// use idp_policy::matching::{MatchRules, ResourceFilter};
    /// assert_eq!(MatchRules::default().exclude(ResourceFilter::new()).exclude.len(), 1);
    /// ```
    pub fn exclude(mut self, filter: ResourceFilter) -> Self {
        self.exclude.push(filter);
        self
    }

    /// Whether `object` is matched and not excluded.
    ///
    /// ```
    /// let o = idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod"})).unwrap();
    /// assert!(idp_policy::matching::MatchRules::default().matches(&o, None));
    /// ```
    pub fn matches(&self, object: &Object, default_namespace: Option<&str>) -> bool {
        (self.any.is_empty()
            || self
                .any
                .iter()
                .any(|f| f.matches(object, default_namespace)))
            && !self
                .exclude
                .iter()
                .any(|f| f.matches(object, default_namespace))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: serde_json::Value) -> Object {
        Object::from_value(v).unwrap()
    }

    #[test]
    fn wildcards() {
        assert!(wildcard("a*c", "abc"));
        assert!(wildcard("a*c", "ac"));
        assert!(!wildcard("a*c", "ab"));
        assert!(wildcard("*-prod", "shop-prod"));
        assert!(wildcard("a*b*c", "axxbyyc"));
        assert!(!wildcard("a*b*c", "axxcyyb"));
        assert!(wildcard("exact", "exact"));
        assert!(!wildcard("exact", "exactly"));
    }

    #[test]
    fn selector_semantics() {
        let labels = BTreeMap::from([("env".to_string(), "prod".to_string())]);
        let r = |op, vals: &[&str]| SelectorRequirement::new("env", op, vals.iter().copied());
        assert!(r(SelectorOperator::In, &["prod", "dev"]).matches(&labels));
        assert!(!r(SelectorOperator::In, &["dev"]).matches(&labels));
        assert!(!r(SelectorOperator::NotIn, &["prod"]).matches(&labels));
        assert!(r(SelectorOperator::NotIn, &["dev"]).matches(&labels));
        assert!(r(SelectorOperator::Exists, &[]).matches(&labels));
        assert!(!r(SelectorOperator::DoesNotExist, &[]).matches(&labels));
        assert!(!r(SelectorOperator::In, &["prod"]).matches(&BTreeMap::new()));
        assert!(r(SelectorOperator::DoesNotExist, &[]).matches(&BTreeMap::new()));
    }

    #[test]
    fn kinds_with_group_and_autogen() {
        let deploy =
            obj(json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}}));
        assert!(
            ResourceFilter::new()
                .kinds(["apps/Deployment"])
                .matches(&deploy, None)
        );
        assert!(
            !ResourceFilter::new()
                .kinds(["batch/Deployment"])
                .matches(&deploy, None)
        );
        assert!(ResourceFilter::new().kinds(["Pod"]).matches(&deploy, None));
        let mut no_autogen = ResourceFilter::new().kinds(["Pod"]);
        no_autogen.autogen = false;
        assert!(!no_autogen.matches(&deploy, None));
        let svc = obj(json!({"apiVersion": "v1", "kind": "Service"}));
        assert!(!ResourceFilter::new().kinds(["Pod"]).matches(&svc, None));
        assert!(ResourceFilter::new().kinds(["*"]).matches(&svc, None));
    }

    #[test]
    fn match_and_exclude_from_yaml() {
        let rules: MatchRules = serde_saphyr::from_str(
            "match:\n  - kinds: [Deployment]\n    selector:\n      matchLabels: {tier: web}\nexclude:\n  - names: [legacy-*]\n",
        )
        .unwrap();
        let web = obj(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "cart", "labels": {"tier": "web"}}}));
        let legacy = obj(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "legacy-cart", "labels": {"tier": "web"}}}));
        let db = obj(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "db", "labels": {"tier": "db"}}}));
        assert!(rules.matches(&web, None));
        assert!(!rules.matches(&legacy, None));
        assert!(!rules.matches(&db, None));
    }
}
