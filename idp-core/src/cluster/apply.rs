//! Server-side apply of a [`ManifestSet`], skipping unchanged objects without a write.
//!
//! [`Applier::apply`] applies in three phases — Namespaces, then
//! CustomResourceDefinitions (and waits until each new or changed one is Established,
//! then refreshes discovery), then everything else — so that namespaced objects find
//! their namespace and custom resources find their definition. Namespaced objects
//! without a namespace get the applier's [default namespace](Applier::with_default_namespace);
//! cluster-scoped objects lose a namespace they should not have.
//!
//! Every object is labelled as a member of the applier's [`Inventory`] (see
//! [`labels`]) and annotated with [`APPLIED_HASH`](super::labels::APPLIED_HASH),
//! a SHA-256 of the configuration we send.
//!
//! ## Unchanged objects cost no write
//!
//! Before writing, the applier lists the live members of the inventory once per
//! resource type and namespace (a label-selector list, paged), not once per object. An
//! object is **Unchanged without a write** when its live copy carries the same applied
//! hash *and* every field of our configuration still has the value we set (a
//! subset comparison of our configuration against the live object). Otherwise it is
//! applied, and the answer tells Created, Configured, or Unchanged (the server found
//! nothing to change: same `resourceVersion`). The trade-offs:
//!
//! - the hash catches changes of the configuration, including fields we stopped
//!   setting (which server-side apply removes); the field comparison catches drift,
//!   someone else editing a field we manage;
//! - fields the API server normalises (quantities such as `cpu: 0.5` read back as
//!   `500m`, defaulted list entries) never compare equal, so such objects are written
//!   on every apply; the server answers with an unchanged `resourceVersion` and the
//!   outcome is still Unchanged, at the price of one write;
//! - drift in fields we do not set is not our business (another field manager owns them);
//! - `status` is never part of the configuration we apply or compare.
//!
//! ```no_run
//! # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
//! use idp_core::cluster::{Applier, ApplyOutcome, Inventory};
//! use idp_core::{ManifestSet, Object};
//! let cm = Object::from_value(serde_json::json!({
//!     "apiVersion": "v1", "kind": "ConfigMap",
//!     "metadata": {"name": "settings"}, "data": {"color": "blue"},
//! }))?;
//! let set: ManifestSet = [cm].into_iter().collect();
//! let applier = Applier::new(cluster, Inventory::new("platform", "demo")?)
//!     .with_default_namespace("shop")
//!     .with_field_manager("my-platform");
//! let first = applier.apply(&set).await?;
//! assert_eq!(first.objects[0].outcome, ApplyOutcome::Created);
//! let again = applier.apply(&set).await?;
//! assert_eq!(again.writes(), 0);
//! # Ok(()) }
//! ```

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use serde_json::{Map, Value};

use super::discovery::{GroupKind, Resolved, split_api_version};
use super::inventory::{self, Inventory, InventoryRecord};
use super::{Cluster, labels, wait};
use crate::error::{Error, ErrorKind, Result};
use crate::ids::{DEFAULT_NAMESPACE, ObjectRef};
use crate::manifest::{ManifestSet, Object};

/// The field manager idp uses unless told otherwise.
pub const DEFAULT_FIELD_MANAGER: &str = "idp";

/// What applying one object did.
///
/// ```
/// use idp_core::cluster::ApplyOutcome;
/// assert_eq!(ApplyOutcome::Unchanged.to_string(), "unchanged");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApplyOutcome {
    /// The object did not exist and was created.
    Created,
    /// The object existed and was changed (or adopted from another manager).
    Configured,
    /// The object already matched; nothing changed on the server.
    Unchanged,
}

impl fmt::Display for ApplyOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApplyOutcome::Created => "created",
            ApplyOutcome::Configured => "configured",
            ApplyOutcome::Unchanged => "unchanged",
        })
    }
}

/// The result of applying one object.
///
/// ```
/// use idp_core::cluster::{AppliedObject, ApplyOutcome};
/// let a = AppliedObject {
///     object: idp_core::ObjectRef::new("v1", "ConfigMap", Some("shop"), "settings"),
///     outcome: ApplyOutcome::Created,
///     resource_version: Some("42".into()),
///     written: true,
/// };
/// assert_eq!(a.to_string(), "v1 ConfigMap shop/settings created");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AppliedObject {
    /// The object, with its namespace defaulted (or removed for cluster-scoped kinds).
    pub object: ObjectRef,
    /// What happened.
    pub outcome: ApplyOutcome,
    /// The object's `resourceVersion` after the apply.
    pub resource_version: Option<String>,
    /// Whether a write request was sent (an Unchanged object may still have needed one).
    pub written: bool,
}

impl fmt::Display for AppliedObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.object, self.outcome)
    }
}

/// The outcome of [`Applier::apply`], one entry per object in input order.
///
/// ```
/// let report = idp_core::cluster::ApplyReport::default();
/// assert_eq!(report.writes(), 0);
/// assert_eq!(report.count(idp_core::cluster::ApplyOutcome::Created), 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApplyReport {
    /// Per-object results, in the order of the input set.
    pub objects: Vec<AppliedObject>,
}

impl ApplyReport {
    /// How many objects had `outcome`.
    ///
    /// ```
    /// assert_eq!(idp_core::cluster::ApplyReport::default().count(idp_core::cluster::ApplyOutcome::Unchanged), 0);
    /// ```
    pub fn count(&self, outcome: ApplyOutcome) -> usize {
        self.objects.iter().filter(|o| o.outcome == outcome).count()
    }

    /// How many write requests the apply sent for the objects (the inventory's own
    /// bookkeeping is not counted).
    ///
    /// ```
    /// assert_eq!(idp_core::cluster::ApplyReport::default().writes(), 0);
    /// ```
    pub fn writes(&self) -> usize {
        self.objects.iter().filter(|o| o.written).count()
    }

    /// The applied objects' references, namespaces defaulted: what to hand to
    /// [`wait_healthy`](super::wait_healthy).
    ///
    /// ```
    /// assert!(idp_core::cluster::ApplyReport::default().refs().is_empty());
    /// ```
    pub fn refs(&self) -> Vec<ObjectRef> {
        self.objects.iter().map(|o| o.object.clone()).collect()
    }
}

impl fmt::Display for ApplyReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} created, {} configured, {} unchanged",
            self.count(ApplyOutcome::Created),
            self.count(ApplyOutcome::Configured),
            self.count(ApplyOutcome::Unchanged)
        )
    }
}

/// Applies manifest sets to a cluster as members of one [`Inventory`], and prunes them
/// (see [`Applier::prune`]).
///
/// Defaults: field manager [`DEFAULT_FIELD_MANAGER`], no force (a field owned by another
/// manager is a [`Conflict`](ErrorKind::Conflict)), default namespace `default`, 16
/// writes in flight, 2 minutes for CRDs to become Established.
///
/// ```no_run
/// # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
/// let applier = idp_core::cluster::Applier::new(cluster, idp_core::cluster::Inventory::new("platform", "cart")?)
///     .with_force(true)
///     .with_concurrency(32);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Applier {
    pub(super) cluster: Cluster,
    pub(super) inventory: Inventory,
    pub(super) field_manager: String,
    pub(super) force: bool,
    pub(super) default_namespace: String,
    pub(super) concurrency: usize,
    pub(super) crd_timeout: Duration,
}

impl Applier {
    /// An applier for `inventory`'s members on `cluster`.
    ///
    /// ```no_run
    /// # fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
    /// let applier = idp_core::cluster::Applier::new(cluster, idp_core::cluster::Inventory::new("platform", "cart")?);
    /// assert_eq!(applier.inventory().name(), "cart");
    /// # Ok(()) }
    /// ```
    pub fn new(cluster: Cluster, inventory: Inventory) -> Self {
        Self {
            cluster,
            inventory,
            field_manager: DEFAULT_FIELD_MANAGER.to_owned(),
            force: false,
            default_namespace: DEFAULT_NAMESPACE.to_owned(),
            concurrency: 16,
            crd_timeout: Duration::from_secs(120),
        }
    }

    /// The server-side apply field manager.
    ///
    /// ```no_run
    /// # fn demo(a: idp_core::cluster::Applier) {
    /// let a = a.with_field_manager("my-platform");
    /// # }
    /// ```
    pub fn with_field_manager(mut self, manager: impl Into<String>) -> Self {
        self.field_manager = manager.into();
        self
    }

    /// Take over fields owned by other managers instead of failing with a conflict.
    ///
    /// ```no_run
    /// # fn demo(a: idp_core::cluster::Applier) {
    /// let a = a.with_force(true);
    /// # }
    /// ```
    pub fn with_force(mut self, force: bool) -> Self {
        self.force = force;
        self
    }

    /// The namespace given to namespaced objects that name none.
    ///
    /// ```no_run
    /// # fn demo(a: idp_core::cluster::Applier) {
    /// let a = a.with_default_namespace("shop");
    /// # }
    /// ```
    pub fn with_default_namespace(mut self, namespace: impl Into<String>) -> Self {
        self.default_namespace = namespace.into();
        self
    }

    /// How many write requests may be in flight at once (at least 1).
    ///
    /// ```no_run
    /// # fn demo(a: idp_core::cluster::Applier) {
    /// let a = a.with_concurrency(4);
    /// # }
    /// ```
    pub fn with_concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// How long to wait for new or changed CRDs to become Established.
    ///
    /// ```no_run
    /// # fn demo(a: idp_core::cluster::Applier) {
    /// let a = a.with_crd_timeout(std::time::Duration::from_secs(30));
    /// # }
    /// ```
    pub fn with_crd_timeout(mut self, timeout: Duration) -> Self {
        self.crd_timeout = timeout;
        self
    }

    /// The inventory this applier applies and prunes.
    ///
    /// ```no_run
    /// # fn demo(a: idp_core::cluster::Applier) {
    /// println!("{}", a.inventory());
    /// # }
    /// ```
    pub fn inventory(&self) -> &Inventory {
        &self.inventory
    }

    /// The cluster this applier talks to.
    ///
    /// ```no_run
    /// # fn demo(a: idp_core::cluster::Applier) {
    /// let cluster = a.cluster().clone();
    /// # }
    /// ```
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Resolve every (apiVersion, kind) of `set` through discovery, once each. A kind that
    /// is unknown to the cluster but defined by a CRD in `set` resolves to `None` (it is
    /// resolved again after the CRD is applied); any other failure names the object and
    /// the `verb` being done.
    pub(crate) async fn resolve_kinds(
        &self,
        set: &ManifestSet,
        verb: &str,
    ) -> Result<HashMap<(String, String), Option<Resolved>>> {
        let deferred_kinds = crd_defined_kinds(set);
        let mut resolved: HashMap<(String, String), Option<Resolved>> = HashMap::new();
        for object in set {
            let key = (object.api_version().to_owned(), object.kind().to_owned());
            if resolved.contains_key(&key) {
                continue;
            }
            let found = match self.cluster.discovery().resolve(&key.0, &key.1).await {
                Ok(r) => Some(r),
                Err(err)
                    if err.kind() == ErrorKind::NotFound
                        && deferred_kinds.contains(&GroupKind::of(&key.0, &key.1)) =>
                {
                    None
                }
                Err(err) => {
                    return Err(err.context(format_args!("{verb} {}", object.object_ref())));
                }
            };
            resolved.insert(key, found);
        }
        Ok(resolved)
    }

    /// Apply `set`: Namespaces, then CRDs (waiting until Established), then the rest.
    ///
    /// Every kind is resolved before anything is written, so an unknown kind (and no
    /// CRD for it in the set) fails without side effects. Within a phase, objects are
    /// applied concurrently and all are attempted; the first failure is returned
    /// (naming the object, and how many others failed) and later phases are skipped.
    ///
    /// ```no_run
    /// # async fn demo(applier: idp_core::cluster::Applier, set: idp_core::ManifestSet) -> idp_core::Result<()> {
    /// let report = applier.apply(&set).await?;
    /// println!("{report}");
    /// # Ok(()) }
    /// ```
    #[tracing::instrument(name = "cluster.apply", skip_all, fields(inventory = %self.inventory, objects = set.len()))]
    pub async fn apply(&self, set: &ManifestSet) -> Result<ApplyReport> {
        check_unique_names(set)?;
        let mut resolved = self.resolve_kinds(set, "apply").await?;

        let mut phases: [Vec<usize>; 3] = Default::default();
        for (index, object) in set.iter().enumerate() {
            phases[phase_of(object.api_version(), object.kind())].push(index);
        }
        let mut results: Vec<Option<AppliedObject>> = vec![None; set.len()];
        let objects = set.objects();

        // Phase 1: namespaces.
        let prepared = self.prepare_all(objects, &phases[0], &resolved)?;
        self.apply_phase(prepared, &mut results).await?;

        // Record what the set contains before any other member is written.
        self.widen_inventory(objects, &resolved).await?;

        // Phase 2: CRDs, then wait for the new or changed ones.
        let prepared = self.prepare_all(objects, &phases[1], &resolved)?;
        self.apply_phase(prepared, &mut results).await?;
        let changed_crds: Vec<ObjectRef> = phases[1]
            .iter()
            .filter_map(|i| results[*i].as_ref())
            .filter(|r| r.outcome != ApplyOutcome::Unchanged)
            .map(|r| r.object.clone())
            .collect();
        if !changed_crds.is_empty() {
            wait::wait_healthy(&self.cluster, &changed_crds, self.crd_timeout)
                .await
                .map_err(|e| e.context("wait for CustomResourceDefinitions to be established"))?;
        }
        for index in &phases[1] {
            if let Some(group) = objects[*index]
                .as_map()
                .get("spec")
                .and_then(|s| s.get("group"))
                .and_then(Value::as_str)
            {
                self.cluster.discovery().invalidate_group(group);
            }
        }

        // Phase 3: everything else, resolving kinds the CRDs just defined.
        for index in &phases[2] {
            let object = &objects[*index];
            let key = (object.api_version().to_owned(), object.kind().to_owned());
            if matches!(resolved.get(&key), Some(None)) {
                let found = self
                    .cluster
                    .discovery()
                    .resolve(&key.0, &key.1)
                    .await
                    .map_err(|e| e.context(format_args!("apply {}", object.object_ref())))?;
                resolved.insert(key, Some(found));
            }
        }
        let prepared = self.prepare_all(objects, &phases[2], &resolved)?;
        self.apply_phase(prepared, &mut results).await?;

        let report = ApplyReport {
            objects: results.into_iter().flatten().collect(),
        };
        tracing::info!(%report, writes = report.writes(), "applied");
        Ok(report)
    }

    fn prepare_all(
        &self,
        objects: &[Object],
        indices: &[usize],
        resolved: &HashMap<(String, String), Option<Resolved>>,
    ) -> Result<Vec<Prepared>> {
        indices
            .iter()
            .map(|&index| {
                let object = &objects[index];
                let key = (object.api_version().to_owned(), object.kind().to_owned());
                let Some(Some(resolved)) = resolved.get(&key) else {
                    return Err(Error::internal(format!(
                        "apply {}: kind was not resolved before its phase",
                        object.object_ref()
                    )));
                };
                self.prepare(index, object, resolved.clone())
            })
            .collect()
    }

    /// The configuration we send for `object`: namespace defaulted, server-populated
    /// fields and `status` removed, ownership labels and the applied hash added.
    pub(super) fn prepare(
        &self,
        index: usize,
        object: &Object,
        resolved: Resolved,
    ) -> Result<Prepared> {
        let mut body = object.as_map().clone();
        body.remove("status");
        let metadata = body
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(metadata) = metadata else {
            return Err(Error::invalid_input(format!(
                "{}: metadata must be a mapping",
                object.object_ref()
            )));
        };
        for field in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "managedFields",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            metadata.remove(field);
        }
        let name = metadata
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if name.is_empty() {
            return Err(Error::invalid_input(format!(
                "{} {} (object #{} of the set) has no metadata.name; server-side apply needs one (generateName is not supported)",
                object.api_version(),
                object.kind(),
                index + 1
            )));
        }
        let namespace = if resolved.namespaced {
            let ns = metadata
                .get("namespace")
                .and_then(Value::as_str)
                .filter(|ns| !ns.is_empty())
                .unwrap_or(&self.default_namespace)
                .to_owned();
            metadata.insert("namespace".into(), Value::String(ns.clone()));
            Some(ns)
        } else {
            metadata.remove("namespace");
            None
        };
        let labels_map = string_map_entry(metadata, "labels", object)?;
        labels_map.insert(
            labels::MANAGED_BY.into(),
            Value::String(labels::MANAGED_BY_VALUE.into()),
        );
        labels_map.insert(
            labels::APPLYSET_PART_OF.into(),
            Value::String(self.inventory.id().to_owned()),
        );
        let annotations = string_map_entry(metadata, "annotations", object)?;
        annotations.remove(labels::APPLIED_HASH);
        annotations.insert(
            labels::INVENTORY.into(),
            Value::String(self.inventory.to_string()),
        );
        let hash = applied_hash(&body);
        if let Some(Value::Object(annotations)) = body
            .get_mut("metadata")
            .and_then(|m| m.get_mut("annotations"))
        {
            annotations.insert(labels::APPLIED_HASH.into(), Value::String(hash.clone()));
        }
        let reference = ObjectRef::new(
            object.api_version(),
            object.kind(),
            namespace.as_deref(),
            &name,
        );
        Ok(Prepared {
            index,
            resolved,
            namespace,
            name,
            body: Value::Object(body),
            hash,
            reference,
        })
    }

    /// Apply one phase's objects: one list per (resource, namespace), then a write for
    /// each object that differs, `concurrency` at a time.
    async fn apply_phase(
        &self,
        prepared: Vec<Prepared>,
        results: &mut [Option<AppliedObject>],
    ) -> Result<()> {
        if prepared.is_empty() {
            return Ok(());
        }
        let mut scopes: BTreeSet<(String, String, Option<String>)> = BTreeSet::new();
        for p in &prepared {
            scopes.insert((
                p.resolved.resource.api_version.clone(),
                p.resolved.resource.kind.clone(),
                p.namespace.clone(),
            ));
        }
        let mut live: HashMap<LiveKey, Value> = HashMap::new();
        for (api_version, kind, namespace) in scopes {
            let Some(sample) = prepared.iter().find(|p| {
                p.resolved.resource.api_version == api_version
                    && p.resolved.resource.kind == kind
                    && p.namespace == namespace
            }) else {
                continue;
            };
            let items = list_members(
                &self.cluster,
                &sample.resolved,
                namespace.as_deref(),
                &self.inventory.selector(),
            )
            .await?;
            for item in items {
                let name = item
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned();
                live.insert(
                    (api_version.clone(), kind.clone(), namespace.clone(), name),
                    item,
                );
            }
        }
        let live = &live;
        let outcomes: Vec<(usize, Result<AppliedObject>)> = futures::stream::iter(prepared)
            .map(|p| async move {
                let key = (
                    p.resolved.resource.api_version.clone(),
                    p.resolved.resource.kind.clone(),
                    p.namespace.clone(),
                    p.name.clone(),
                );
                let result = self.apply_one(&p, live.get(&key)).await;
                (p.index, result)
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        let mut errors = Vec::new();
        for (index, outcome) in outcomes {
            match outcome {
                Ok(applied) => results[index] = Some(applied),
                Err(err) => errors.push((index, err)),
            }
        }
        errors.sort_by_key(|(index, _)| *index);
        let mut errors = errors.into_iter().map(|(_, e)| e);
        match (errors.next(), errors.count()) {
            (None, _) => Ok(()),
            (Some(first), 0) => Err(first),
            (Some(first), more) => Err(first.context(format_args!(
                "{more} more object{} failed to apply; the first",
                if more == 1 { "" } else { "s" }
            ))),
        }
    }

    async fn apply_one(&self, p: &Prepared, live: Option<&Value>) -> Result<AppliedObject> {
        if let Some(live) = live {
            let live_hash = live
                .pointer(&format!(
                    "/metadata/annotations/{}",
                    escape_pointer(labels::APPLIED_HASH)
                ))
                .and_then(Value::as_str);
            let deleting = live
                .pointer("/metadata/deletionTimestamp")
                .is_some_and(|t| !t.is_null());
            if !deleting && live_hash == Some(p.hash.as_str()) && is_subset_top(&p.body, live) {
                return Ok(AppliedObject {
                    object: p.reference.clone(),
                    outcome: ApplyOutcome::Unchanged,
                    resource_version: resource_version(live),
                    written: false,
                });
            }
        }
        let api = dynamic_api(&self.cluster, &p.resolved, p.namespace.as_deref());
        let mut params = PatchParams::apply(&self.field_manager);
        params.force = self.force;
        let what = format!("apply {}", p.reference);
        let patch = Patch::Apply(&p.body);
        let applied = self
            .cluster
            .retry()
            .run(&what, || api.patch(&p.name, &params, &patch))
            .await?;
        let applied = serde_json::to_value(&applied).map_err(|e| {
            Error::internal(format!("{what}: cannot read the server's answer")).with_source(e)
        })?;
        let new_version = resource_version(&applied);
        let outcome = match live {
            Some(live) if resource_version(live) == new_version => ApplyOutcome::Unchanged,
            Some(_) => ApplyOutcome::Configured,
            None if managed_by_others(&applied, &self.field_manager) => ApplyOutcome::Configured,
            None => ApplyOutcome::Created,
        };
        tracing::debug!(object = %p.reference, %outcome, "applied");
        Ok(AppliedObject {
            object: p.reference.clone(),
            outcome,
            resource_version: new_version,
            written: true,
        })
    }

    /// Widen the inventory's record to cover `objects` before they are applied.
    async fn widen_inventory(
        &self,
        objects: &[Object],
        resolved: &HashMap<(String, String), Option<Resolved>>,
    ) -> Result<()> {
        let wanted = self.record_of(objects, resolved);
        let existing = inventory::read(&self.cluster, &self.inventory).await?;
        let mut record = existing.clone().unwrap_or_default();
        record.extend(&wanted);
        if existing.as_ref() == Some(&record) {
            return Ok(());
        }
        inventory::write(&self.cluster, &self.inventory, &record, &self.field_manager).await
    }

    /// The group-kinds and namespaces of `objects` (namespaces over-approximated for kinds
    /// not resolved yet).
    pub(super) fn record_of(
        &self,
        objects: &[Object],
        resolved: &HashMap<(String, String), Option<Resolved>>,
    ) -> InventoryRecord {
        let mut record = InventoryRecord::default();
        record
            .namespaces
            .insert(self.inventory.namespace().to_owned());
        for object in objects {
            record
                .group_kinds
                .insert(GroupKind::of(object.api_version(), object.kind()));
            let key = (object.api_version().to_owned(), object.kind().to_owned());
            let namespaced = match resolved.get(&key) {
                Some(Some(r)) => r.namespaced,
                _ => true,
            };
            if namespaced {
                record.namespaces.insert(
                    object
                        .namespace()
                        .filter(|ns| !ns.is_empty())
                        .unwrap_or(&self.default_namespace)
                        .to_owned(),
                );
            }
        }
        record
    }
}

type LiveKey = (String, String, Option<String>, String);

pub(super) struct Prepared {
    pub(super) index: usize,
    pub(super) resolved: Resolved,
    pub(super) namespace: Option<String>,
    pub(super) name: String,
    pub(super) body: Value,
    pub(super) hash: String,
    pub(super) reference: ObjectRef,
}

/// 0 for Namespaces, 1 for CRDs, 2 for the rest.
pub(super) fn phase_of(api_version: &str, kind: &str) -> usize {
    match (split_api_version(api_version).0, kind) {
        ("", "Namespace") => 0,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => 1,
        _ => 2,
    }
}

pub(super) fn check_unique_names(set: &ManifestSet) -> Result<()> {
    let mut seen = BTreeSet::new();
    for object in set {
        let key = (
            GroupKind::of(object.api_version(), object.kind()),
            object.namespace().unwrap_or_default().to_owned(),
            object.name().to_owned(),
        );
        if !object.name().is_empty() && !seen.insert(key) {
            return Err(Error::invalid_input(format!(
                "{} appears twice in the set; each object may be applied once",
                object.object_ref()
            )));
        }
    }
    Ok(())
}

/// Kinds that CRDs in `set` define (`spec.group` + `spec.names.kind`).
pub(super) fn crd_defined_kinds(set: &ManifestSet) -> BTreeSet<GroupKind> {
    set.iter()
        .filter(|o| phase_of(o.api_version(), o.kind()) == 1)
        .filter_map(|crd| {
            let spec = crd.as_map().get("spec")?;
            let group = spec.get("group")?.as_str()?;
            let kind = spec.get("names")?.get("kind")?.as_str()?;
            Some(GroupKind::new(group, kind))
        })
        .collect()
}

fn string_map_entry<'a>(
    metadata: &'a mut Map<String, Value>,
    key: &str,
    object: &Object,
) -> Result<&'a mut Map<String, Value>> {
    let entry = metadata
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    if entry.is_null() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(map) => Ok(map),
        _ => Err(Error::invalid_input(format!(
            "{}: metadata.{key} must be a mapping of strings",
            object.object_ref()
        ))),
    }
}

/// `Api<DynamicObject>` for `resolved`, in `namespace` when it is namespaced.
pub(super) fn dynamic_api(
    cluster: &Cluster,
    resolved: &Resolved,
    namespace: Option<&str>,
) -> Api<DynamicObject> {
    match namespace {
        Some(ns) if resolved.namespaced => {
            Api::namespaced_with(cluster.client().clone(), ns, &resolved.resource)
        }
        _ => Api::all_with(cluster.client().clone(), &resolved.resource),
    }
}

/// List the objects of one resource type matching `selector`, in `namespace` (or in all
/// namespaces for `None`), page by page, as JSON.
pub(super) async fn list_members(
    cluster: &Cluster,
    resolved: &Resolved,
    namespace: Option<&str>,
    selector: &str,
) -> Result<Vec<Value>> {
    let api = dynamic_api(cluster, resolved, namespace);
    let where_ = namespace.map_or_else(
        || "all namespaces".to_owned(),
        |ns| format!("namespace {ns}"),
    );
    let what = format!("list {} in {where_}", resolved.resource.plural);
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut params = ListParams::default().labels(selector).limit(500);
        if let Some(t) = &token {
            params = params.continue_token(t);
        }
        let page = cluster.retry().run(&what, || api.list(&params)).await?;
        for item in page.items {
            out.push(serde_json::to_value(&item).map_err(|e| {
                Error::internal(format!("{what}: cannot read the server's answer")).with_source(e)
            })?);
        }
        match page.metadata.continue_ {
            Some(t) if !t.is_empty() => token = Some(t),
            _ => break,
        }
    }
    Ok(out)
}

pub(super) fn resource_version(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Whether someone other than `manager` has written the object (it existed before we
/// applied it, so applying adopted it).
fn managed_by_others(object: &Value, manager: &str) -> bool {
    object
        .pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .is_some_and(|entries| {
            entries.iter().any(|e| {
                e.get("manager")
                    .and_then(Value::as_str)
                    .is_some_and(|m| m != manager)
            })
        })
}

pub(super) fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// SHA-256 over a canonical (sorted-key) JSON rendering, as `sha256:<base64url>`.
fn applied_hash(body: &Map<String, Value>) -> String {
    let mut text = String::new();
    canonical_json(&Value::Object(body.clone()), &mut text);
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    format!(
        "sha256:{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
    )
}

fn canonical_json(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                canonical_json(&map[key], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// `desired ⊆ live` at the top level, where `apiVersion` and `kind` are skipped (list
/// items may omit them).
pub(super) fn is_subset_top(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d
            .iter()
            .filter(|(k, _)| k.as_str() != "apiVersion" && k.as_str() != "kind")
            .all(|(k, dv)| field_matches(dv, l.get(k))),
        _ => false,
    }
}

fn field_matches(desired: &Value, live: Option<&Value>) -> bool {
    match live {
        Some(live) => is_subset(desired, live),
        None => match desired {
            Value::Null => true,
            Value::Object(m) => m.is_empty(),
            Value::Array(a) => a.is_empty(),
            _ => false,
        },
    }
}

/// Every field of `desired` has the same value in `live`: maps by key (extra live
/// keys allowed), lists element by element with equal lengths, numbers by value.
pub(super) fn is_subset(desired: &Value, live: &Value) -> bool {
    match (desired, live) {
        (Value::Object(d), Value::Object(l)) => d.iter().all(|(k, dv)| field_matches(dv, l.get(k))),
        (Value::Array(d), Value::Array(l)) => {
            d.len() == l.len() && d.iter().zip(l).all(|(a, b)| is_subset(a, b))
        }
        (Value::Number(a), Value::Number(b)) => {
            // 1 and 1.0 are the same number to the API server.
            a == b
                || matches!((a.as_f64(), b.as_f64()), (Some(x), Some(y)) if x.total_cmp(&y).is_eq())
        }
        (a, b) => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn subset_ignores_server_added_fields_but_not_changed_ones() {
        let desired = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "v"}});
        let live = json!({"metadata": {"name": "a", "uid": "u", "labels": {"x": "1", "other": "2"}},
            "data": {"k": "v"}});
        assert!(is_subset_top(&desired, &live));
        let drifted =
            json!({"metadata": {"name": "a", "labels": {"x": "1"}}, "data": {"k": "changed"}});
        assert!(!is_subset_top(&desired, &drifted));
        let missing = json!({"metadata": {"name": "a", "labels": {"x": "1"}}});
        assert!(!is_subset_top(&desired, &missing));
    }

    #[test]
    fn subset_compares_lists_by_position_and_numbers_by_value() {
        assert!(is_subset(&json!([{"a": 1}]), &json!([{"a": 1.0, "b": 2}])));
        assert!(!is_subset(&json!([{"a": 1}]), &json!([{"a": 1}, {"a": 2}])));
        assert!(field_matches(&json!({}), None));
        assert!(field_matches(&json!(null), None));
        assert!(!field_matches(&json!(0), None));
    }

    #[test]
    fn hash_is_independent_of_key_order_and_changes_with_content() {
        let a = json!({"b": 1, "a": {"y": [1, 2], "x": "s"}});
        let b = json!({"a": {"x": "s", "y": [1, 2]}, "b": 1});
        let c = json!({"a": {"x": "s", "y": [2, 1]}, "b": 1});
        let h = |v: &Value| applied_hash(v.as_object().unwrap());
        assert_eq!(h(&a), h(&b));
        assert_ne!(h(&a), h(&c));
        assert!(h(&a).starts_with("sha256:"));
    }

    #[test]
    fn phases_put_namespaces_then_crds_first() {
        assert_eq!(phase_of("v1", "Namespace"), 0);
        assert_eq!(
            phase_of("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
            1
        );
        assert_eq!(phase_of("apps/v1", "Deployment"), 2);
        assert_eq!(phase_of("example.com/v1", "Namespace"), 2);
    }

    #[test]
    fn duplicates_are_refused() {
        let cm = Object::from_value(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}),
        )
        .unwrap();
        let set: ManifestSet = [cm.clone(), cm].into_iter().collect();
        let err = check_unique_names(&set).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(err.to_string().contains("appears twice"));
    }

    #[test]
    fn crd_kinds_are_found() {
        let crd = Object::from_value(
            json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "widgets.example.com"},
            "spec": {"group": "example.com", "names": {"kind": "Widget", "plural": "widgets"}}}),
        )
        .unwrap();
        let set: ManifestSet = [crd].into_iter().collect();
        assert!(crd_defined_kinds(&set).contains(&GroupKind::new("example.com", "Widget")));
    }

    #[test]
    fn adoption_is_seen_in_managed_fields() {
        let o =
            json!({"metadata": {"managedFields": [{"manager": "idp"}, {"manager": "kubectl"}]}});
        assert!(managed_by_others(&o, "idp"));
        let o = json!({"metadata": {"managedFields": [{"manager": "idp"}]}});
        assert!(!managed_by_others(&o, "idp"));
    }
}
