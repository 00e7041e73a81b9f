//! Prune: delete the inventory's members that are no longer in the set.
//!
//! [`Applier::prune`] lists, for every group-kind the inventory's parent records (plus
//! those of the new set), the objects labelled
//! `applyset.kubernetes.io/part-of=<this inventory's id>`, in the namespaces the parent
//! records, and deletes those that are not in the new set — rest first, then CRDs, then
//! Namespaces (the reverse of the apply order), with propagation `Background` and a
//! `uid` precondition, so that an object replaced since we listed it is left alone.
//!
//! Safety rules:
//!
//! - only objects carrying **this** inventory's id are candidates; objects without the
//!   label, or with another inventory's id, are never deleted, whatever their name (the
//!   label is checked again on every listed object, not only in the selector);
//! - an **empty** new set is refused unless [`PruneOptions::allow_empty`] says so (an
//!   empty render is far more often a bug than a wish to delete everything — Argo CD's
//!   `allowEmpty`);
//! - without a parent (nothing recorded), every resource type the cluster serves with
//!   `list` and `delete` is searched, which is slower but finds everything.
//!
//! ```no_run
//! # async fn demo(applier: idp_core::cluster::Applier, set: idp_core::ManifestSet) -> idp_core::Result<()> {
//! use idp_core::cluster::PruneOptions;
//! let report = applier.prune(&set, &PruneOptions::default()).await?;
//! for gone in &report.deleted {
//!     println!("deleted {gone}");
//! }
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};

use futures::StreamExt;
use kube::api::{DeleteParams, Preconditions};
use serde_json::Value;

use super::apply::{Applier, dynamic_api, list_members, phase_of};
use super::discovery::{GroupKind, Resolved};
use super::inventory;
use crate::error::{Error, ErrorKind, Result};
use crate::ids::ObjectRef;
use crate::manifest::ManifestSet;

/// Options for [`Applier::prune`].
///
/// ```
/// let opts = idp_core::cluster::PruneOptions::default().allow_empty(true).dry_run(true);
/// assert!(opts.is_dry_run());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneOptions {
    allow_empty: bool,
    dry_run: bool,
}

impl PruneOptions {
    /// Allow pruning with an empty new set, which deletes every member.
    ///
    /// ```
    /// let opts = idp_core::cluster::PruneOptions::default().allow_empty(true);
    /// ```
    pub fn allow_empty(mut self, allow: bool) -> Self {
        self.allow_empty = allow;
        self
    }

    /// Report what would be deleted without deleting it.
    ///
    /// ```
    /// assert!(idp_core::cluster::PruneOptions::default().dry_run(true).is_dry_run());
    /// ```
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.dry_run = dry_run;
        self
    }

    /// Whether this is a dry run.
    ///
    /// ```
    /// assert!(!idp_core::cluster::PruneOptions::default().is_dry_run());
    /// ```
    pub fn is_dry_run(&self) -> bool {
        self.dry_run
    }
}

/// What [`Applier::prune`] deleted (or, in a dry run, would delete), in deletion order.
///
/// ```
/// assert!(idp_core::cluster::PruneReport::default().deleted.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PruneReport {
    /// The objects deleted, rest first, then CRDs, then Namespaces.
    pub deleted: Vec<ObjectRef>,
    /// Whether nothing was actually deleted because this was a dry run.
    pub dry_run: bool,
}

struct Candidate {
    phase: usize,
    reference: ObjectRef,
    resolved: Resolved,
    namespace: Option<String>,
    name: String,
    uid: Option<String>,
}

impl Applier {
    /// Delete the members of this applier's inventory that are not in `keep`.
    ///
    /// Refuses (with [`InvalidInput`](ErrorKind::InvalidInput)) when `keep` is empty
    /// unless `options` [allow it](PruneOptions::allow_empty). After a complete prune the
    /// inventory's record is narrowed to `keep`.
    ///
    /// ```no_run
    /// # async fn demo(applier: idp_core::cluster::Applier) -> idp_core::Result<()> {
    /// use idp_core::cluster::PruneOptions;
    /// let empty = idp_core::ManifestSet::new();
    /// assert!(applier.prune(&empty, &PruneOptions::default()).await.is_err());
    /// applier.prune(&empty, &PruneOptions::default().allow_empty(true)).await?;
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(name = "cluster.prune", skip_all, fields(inventory = %self.inventory, keep = keep.len(), dry_run = options.dry_run))]
    pub async fn prune(&self, keep: &ManifestSet, options: &PruneOptions) -> Result<PruneReport> {
        if keep.is_empty() && !options.allow_empty {
            return Err(Error::invalid_input(format!(
                "refusing to prune inventory {}: the new set of objects is empty, so every object the inventory owns would be deleted; \
                 if that is intended, prune with PruneOptions::default().allow_empty(true)",
                self.inventory
            )));
        }
        let discovery = self.cluster.discovery();
        let mut resolved: HashMap<(String, String), Option<Resolved>> = HashMap::new();
        for object in keep {
            let key = (object.api_version().to_owned(), object.kind().to_owned());
            if resolved.contains_key(&key) {
                continue;
            }
            let found = match discovery.resolve(&key.0, &key.1).await {
                Ok(r) => Some(r),
                Err(err) if err.kind() == ErrorKind::NotFound => None,
                Err(err) => return Err(err),
            };
            resolved.insert(key, found);
        }
        let kept: HashSet<(GroupKind, Option<String>, String)> = keep
            .iter()
            .map(|o| {
                let key = (o.api_version().to_owned(), o.kind().to_owned());
                let namespaced = resolved
                    .get(&key)
                    .and_then(Option::as_ref)
                    .map(|r| r.namespaced);
                let namespace = match namespaced {
                    Some(false) => None,
                    _ => Some(
                        o.namespace()
                            .filter(|ns| !ns.is_empty())
                            .unwrap_or(&self.default_namespace)
                            .to_owned(),
                    ),
                };
                (
                    GroupKind::of(o.api_version(), o.kind()),
                    namespace,
                    o.name().to_owned(),
                )
            })
            .collect();
        let wanted = self.record_of(keep.objects(), &resolved);
        let recorded = inventory::read(&self.cluster, &self.inventory).await?;

        // Which resource types and namespaces to search.
        let (types, namespaces): (Vec<Resolved>, Option<Vec<String>>) = match &recorded {
            Some(record) => {
                let mut group_kinds = record.group_kinds.clone();
                group_kinds.extend(wanted.group_kinds.iter().cloned());
                let mut types = Vec::new();
                for gk in &group_kinds {
                    if let Some(r) = discovery.resolve_group_kind(gk).await? {
                        types.push(r);
                    } else {
                        tracing::debug!(group_kind = %gk, "recorded kind no longer served; nothing to prune there");
                    }
                }
                let mut namespaces = record.namespaces.clone();
                namespaces.extend(wanted.namespaces.iter().cloned());
                (types, Some(namespaces.into_iter().collect()))
            }
            None => (discovery.prunable_resources().await?, None),
        };

        let mut candidates = Vec::new();
        let selector = self.inventory.selector();
        for resolved in types {
            if !resolved.supports("list") || !resolved.supports("delete") {
                continue;
            }
            let scopes: Vec<Option<String>> = match (&namespaces, resolved.namespaced) {
                (Some(list), true) => list.iter().cloned().map(Some).collect(),
                _ => vec![None],
            };
            for namespace in scopes {
                let items =
                    list_members(&self.cluster, &resolved, namespace.as_deref(), &selector).await?;
                for item in items {
                    if let Some(c) = self.candidate(&resolved, &item, &kept) {
                        candidates.push(c);
                    }
                }
            }
        }
        candidates.sort_by(|a, b| {
            b.phase
                .cmp(&a.phase)
                .then_with(|| a.reference.cmp(&b.reference))
        });

        let mut report = PruneReport {
            deleted: Vec::new(),
            dry_run: options.dry_run,
        };
        if options.dry_run {
            report.deleted = candidates.into_iter().map(|c| c.reference).collect();
            return Ok(report);
        }
        let mut by_phase: BTreeMap<std::cmp::Reverse<usize>, Vec<Candidate>> = BTreeMap::new();
        for c in candidates {
            by_phase
                .entry(std::cmp::Reverse(c.phase))
                .or_default()
                .push(c);
        }
        for (_, batch) in by_phase {
            let results: Vec<(ObjectRef, Result<bool>)> = futures::stream::iter(batch)
                .map(|c| async move {
                    let deleted = self.delete(&c).await;
                    (c.reference, deleted)
                })
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
            let mut first_error = None;
            let mut failures = 0usize;
            let mut deleted: Vec<ObjectRef> = Vec::new();
            for (reference, result) in results {
                match result {
                    Ok(true) => deleted.push(reference),
                    Ok(false) => {}
                    Err(err) => {
                        failures += 1;
                        first_error.get_or_insert(err);
                    }
                }
            }
            deleted.sort();
            report.deleted.extend(deleted);
            if let Some(err) = first_error {
                return Err(if failures > 1 {
                    err.context(format_args!(
                        "prune {}: {failures} deletions failed; the first",
                        self.inventory
                    ))
                } else {
                    err.context(format_args!("prune {}", self.inventory))
                });
            }
        }
        if recorded.as_ref() != Some(&wanted) {
            inventory::write(&self.cluster, &self.inventory, &wanted, &self.field_manager).await?;
        }
        if report.deleted.is_empty() {
            tracing::debug!("pruned nothing");
        } else {
            tracing::info!(deleted = report.deleted.len(), "pruned");
        }
        Ok(report)
    }

    fn candidate(
        &self,
        resolved: &Resolved,
        item: &Value,
        kept: &HashSet<(GroupKind, Option<String>, String)>,
    ) -> Option<Candidate> {
        let metadata = item.get("metadata")?;
        let labels: BTreeMap<String, String> = metadata
            .get("labels")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        if !self.inventory.owns(&labels) {
            return None;
        }
        if metadata
            .get("deletionTimestamp")
            .is_some_and(|t| !t.is_null())
        {
            return None;
        }
        let name = metadata.get("name")?.as_str()?.to_owned();
        let namespace = if resolved.namespaced {
            metadata
                .get("namespace")
                .and_then(Value::as_str)
                .map(str::to_owned)
        } else {
            None
        };
        let group_kind = resolved.group_kind();
        if kept.contains(&(group_kind, namespace.clone(), name.clone())) {
            return None;
        }
        Some(Candidate {
            phase: phase_of(&resolved.resource.api_version, &resolved.resource.kind),
            reference: ObjectRef::new(
                &resolved.resource.api_version,
                &resolved.resource.kind,
                namespace.as_deref(),
                &name,
            ),
            resolved: resolved.clone(),
            namespace,
            name,
            uid: metadata
                .get("uid")
                .and_then(Value::as_str)
                .map(str::to_owned),
        })
    }

    /// Delete one candidate; `Ok(false)` when it was already gone or replaced.
    async fn delete(&self, c: &Candidate) -> Result<bool> {
        let api = dynamic_api(&self.cluster, &c.resolved, c.namespace.as_deref());
        let mut params = DeleteParams::background();
        if let Some(uid) = &c.uid {
            params = params.preconditions(Preconditions {
                uid: Some(uid.clone()),
                resource_version: None,
            });
        }
        let what = format!("delete {}", c.reference);
        match self
            .cluster
            .retry()
            .run(&what, || api.delete(&c.name, &params))
            .await
        {
            Ok(_) => {
                tracing::debug!(object = %c.reference, "deleted");
                Ok(true)
            }
            Err(err) if err.kind() == ErrorKind::NotFound => Ok(false),
            Err(err) if err.kind() == ErrorKind::Conflict => {
                tracing::warn!(object = %c.reference, error = %err, "not pruned: replaced since it was listed");
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }
}
