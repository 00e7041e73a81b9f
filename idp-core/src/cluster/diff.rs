//! Compare a [`ManifestSet`] with the live cluster without writing: which objects are in
//! sync, missing, or differ (and in which fields).
//!
//! [`Applier::diff`] answers with the same rules [`Applier::apply`] uses to skip a write
//! (the applied-configuration hash plus a subset comparison of our configuration against
//! the live object), so "in sync" here means "apply would not write". It lists the
//! inventory's live members once per resource type and namespace, never per object.
//! [`Applier::diff_with`] first asks a [`LiveLookup`] (a watch-backed cache, for example)
//! and lists only the scopes the lookup does not know, so a diff against a warm cache
//! costs **no request at all**.
//!
//! ```no_run
//! # async fn demo(applier: idp_core::cluster::Applier, set: idp_core::ManifestSet) -> idp_core::Result<()> {
//! use idp_core::cluster::diff::LiveState;
//! let report = applier.diff(&set).await?;
//! for o in &report.objects {
//!     if let LiveState::Differs { fields, drift } = &o.state {
//!         println!("{} differs in {fields:?} (edited by hand: {drift})", o.object);
//!     }
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;

use super::apply::{
    Applier, Prepared, check_unique_names, escape_pointer, is_subset, is_subset_top, list_members,
};
use super::discovery::Resolved;
use super::labels;
use crate::error::Result;
use crate::ids::ObjectRef;
use crate::manifest::ManifestSet;

/// How a desired object compares with its live copy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum LiveState {
    /// The live object carries our configuration: applying would not write.
    InSync,
    /// There is no live object (or its kind is not served yet).
    Missing,
    /// The live object differs from what we would apply.
    Differs {
        /// The fields (dotted paths, `[i]` for list items) whose live value differs from
        /// ours; empty when only fields we stopped setting changed.
        fields: Vec<String>,
        /// `true` when the live object was applied from this very configuration and
        /// someone changed it since (drift, a hand edit); `false` when our configuration
        /// changed.
        drift: bool,
    },
}

/// One object of a diff.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectDiff {
    /// The object, with its namespace defaulted as apply would.
    pub object: ObjectRef,
    /// Its position in the diffed set.
    pub index: usize,
    /// How it compares.
    pub state: LiveState,
    /// The live object as JSON, when there is one.
    pub live: Option<Value>,
}

/// The answer of [`Applier::diff`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DiffReport {
    /// One entry per object of the set, in set order.
    pub objects: Vec<ObjectDiff>,
    /// Every (resource type, namespace) the set's objects live in; `None` for
    /// cluster-scoped types. A watch cache watches exactly these.
    pub scopes: Vec<(Resolved, Option<String>)>,
    /// How many scopes had to be listed (those the [`LiveLookup`] did not know).
    pub listed: usize,
}

impl DiffReport {
    /// Whether every object is [`LiveState::InSync`].
    ///
    /// ```
    /// assert!(idp_core::cluster::diff::DiffReport::default().in_sync());
    /// ```
    pub fn in_sync(&self) -> bool {
        self.objects.iter().all(|o| o.state == LiveState::InSync)
    }
}

/// A source of live objects that can answer without a request (a watch cache).
///
/// ```
/// use idp_core::cluster::{Resolved, diff::LiveLookup};
/// #[derive(Debug)]
/// struct Nothing;
/// impl LiveLookup for Nothing {
///     fn scope(&self, _: &Resolved, _: Option<&str>) -> Option<Vec<serde_json::Value>> { None }
/// }
/// ```
pub trait LiveLookup: Send + Sync + std::fmt::Debug {
    /// Every live member of the inventory of resource type `resolved` in `namespace`
    /// (`None`: cluster-scoped), or `None` when this lookup does not know that scope
    /// (then the diff lists it).
    fn scope(&self, resolved: &Resolved, namespace: Option<&str>) -> Option<Vec<Value>>;
}

/// A [`LiveLookup`] that knows nothing: every scope is listed.
///
/// ```
/// use idp_core::cluster::diff::{LiveLookup, NoLookup};
/// let lookup: &dyn LiveLookup = &NoLookup; // Applier::diff uses this one
/// # let _ = lookup;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLookup;

impl LiveLookup for NoLookup {
    fn scope(&self, _: &Resolved, _: Option<&str>) -> Option<Vec<Value>> {
        None
    }
}

impl Applier {
    /// Compare `set` with the live cluster, listing each (resource type, namespace) once.
    ///
    /// ```no_run
    /// # async fn demo(applier: idp_core::cluster::Applier, set: idp_core::ManifestSet) -> idp_core::Result<()> {
    /// let report = applier.diff(&set).await?;
    /// println!("{} of {} objects need a write", report.objects.iter().filter(|o| o.state != idp_core::cluster::diff::LiveState::InSync).count(), set.len());
    /// # Ok(()) }
    /// ```
    pub async fn diff(&self, set: &ManifestSet) -> Result<DiffReport> {
        self.diff_with(set, &NoLookup).await
    }

    /// Like [`Applier::diff`], asking `lookup` first and listing only the scopes it does
    /// not know.
    ///
    /// ```no_run
    /// # async fn demo(applier: idp_core::cluster::Applier, set: idp_core::ManifestSet) -> idp_core::Result<()> {
    /// let report = applier.diff_with(&set, &idp_core::cluster::diff::NoLookup).await?;
    /// assert_eq!(report.objects.len(), set.len());
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(name = "cluster.diff", skip_all, fields(inventory = %self.inventory, objects = set.len()))]
    pub async fn diff_with(
        &self,
        set: &ManifestSet,
        lookup: &dyn LiveLookup,
    ) -> Result<DiffReport> {
        check_unique_names(set)?;
        let resolved = self.resolve_kinds(set, "diff").await?;
        let mut prepared: Vec<Option<Prepared>> = Vec::with_capacity(set.len());
        let mut report = DiffReport::default();
        for (index, object) in set.iter().enumerate() {
            let key = (object.api_version().to_owned(), object.kind().to_owned());
            match resolved.get(&key) {
                Some(Some(r)) => prepared.push(Some(self.prepare(index, object, r.clone())?)),
                _ => prepared.push(None),
            }
        }
        let mut scopes: BTreeSet<(String, String, Option<String>)> = BTreeSet::new();
        let mut live: HashMap<(String, String, Option<String>, String), Value> = HashMap::new();
        let selector = self.inventory.selector();
        for p in prepared.iter().flatten() {
            let scope = (
                p.resolved.resource.api_version.clone(),
                p.resolved.resource.kind.clone(),
                p.namespace.clone(),
            );
            if !scopes.insert(scope.clone()) {
                continue;
            }
            report
                .scopes
                .push((p.resolved.clone(), p.namespace.clone()));
            let items = if let Some(items) = lookup.scope(&p.resolved, p.namespace.as_deref()) {
                items
            } else {
                report.listed += 1;
                list_members(
                    &self.cluster,
                    &p.resolved,
                    p.namespace.as_deref(),
                    &selector,
                )
                .await?
            };
            for item in items {
                let name = item
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                live.insert(
                    (scope.0.clone(), scope.1.clone(), scope.2.clone(), name),
                    item,
                );
            }
        }
        for (index, (object, p)) in set.iter().zip(prepared).enumerate() {
            let Some(p) = p else {
                let ns = object
                    .namespace()
                    .filter(|ns| !ns.is_empty())
                    .unwrap_or(&self.default_namespace);
                report.objects.push(ObjectDiff {
                    object: ObjectRef::new(
                        object.api_version(),
                        object.kind(),
                        Some(ns),
                        object.name(),
                    ),
                    index,
                    state: LiveState::Missing,
                    live: None,
                });
                continue;
            };
            let key = (
                p.resolved.resource.api_version.clone(),
                p.resolved.resource.kind.clone(),
                p.namespace.clone(),
                p.name.clone(),
            );
            let found = live.remove(&key);
            let state = match &found {
                None => LiveState::Missing,
                Some(l) => compare(&p, l),
            };
            report.objects.push(ObjectDiff {
                object: p.reference.clone(),
                index,
                state,
                live: found,
            });
        }
        Ok(report)
    }
}

fn compare(p: &Prepared, live: &Value) -> LiveState {
    let live_hash = live
        .pointer(&format!(
            "/metadata/annotations/{}",
            escape_pointer(labels::APPLIED_HASH)
        ))
        .and_then(Value::as_str);
    let deleting = live
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|t| !t.is_null());
    let same_hash = live_hash == Some(p.hash.as_str());
    if !deleting && same_hash && is_subset_top(&p.body, live) {
        return LiveState::InSync;
    }
    let mut fields = Vec::new();
    if let (Value::Object(d), Value::Object(l)) = (&p.body, live) {
        for (k, dv) in d {
            if k == "apiVersion" || k == "kind" {
                continue;
            }
            differing(dv, l.get(k), k, &mut fields);
        }
    }
    let hash_field = format!("metadata.annotations.{}", labels::APPLIED_HASH);
    fields.retain(|f| f != &hash_field);
    fields.truncate(MAX_FIELDS);
    LiveState::Differs {
        fields,
        drift: same_hash && !deleting,
    }
}

const MAX_FIELDS: usize = 32;

fn differing(desired: &Value, live: Option<&Value>, path: &str, out: &mut Vec<String>) {
    if out.len() > MAX_FIELDS {
        return;
    }
    match (desired, live) {
        (Value::Object(d), Some(Value::Object(l))) => {
            for (k, dv) in d {
                differing(dv, l.get(k), &format!("{path}.{k}"), out);
            }
        }
        (Value::Array(d), Some(Value::Array(l))) if d.len() == l.len() => {
            for (i, (dv, lv)) in d.iter().zip(l).enumerate() {
                differing(dv, Some(lv), &format!("{path}[{i}]"), out);
            }
        }
        (d, Some(l)) => {
            if !is_subset(d, l) {
                out.push(path.to_owned());
            }
        }
        (d, None) => {
            let empty = match d {
                Value::Null => true,
                Value::Object(m) => m.is_empty(),
                Value::Array(a) => a.is_empty(),
                _ => false,
            };
            if !empty {
                out.push(path.to_owned());
            }
        }
    }
}
