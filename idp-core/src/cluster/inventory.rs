//! Inventories: who owns which objects, ApplySet-style (KEP-3659).
//!
//! An [`Inventory`] is named by its *parent*, a ConfigMap (`namespace/name`). Its id,
//! [`Inventory::id`], is computed as ApplySet specifies
//! (`applyset-<base64url(sha256("<name>.<namespace>.ConfigMap."))>-v1`) and goes into
//! the label [`APPLYSET_PART_OF`](super::labels::APPLYSET_PART_OF) of every member.
//! The parent records the group-kinds and namespaces of its members
//! ([`InventoryRecord`]), so that prune lists only those resource types. The applier
//! widens the record *before* it applies members (so an interrupted apply leaves no
//! member prune cannot find) and narrows it after a successful prune.
//!
//! ```
//! use idp_core::cluster::Inventory;
//! let inv = Inventory::new("platform", "shop-prod")?;
//! assert!(inv.id().starts_with("applyset-") && inv.id().ends_with("-v1"));
//! assert_eq!(inv.selector(), format!("applyset.kubernetes.io/part-of={}", inv.id()));
//! # Ok::<(), idp_core::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use base64::Engine as _;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::Cluster;
use super::discovery::GroupKind;
use super::labels;
use crate::error::{Error, ErrorKind, Result};
use crate::ids::{DnsLabel, DnsSubdomain, ObjectRef};

/// The identity of a set of objects applied and pruned together, named by its parent
/// ConfigMap.
///
/// ```
/// let inv = idp_core::cluster::Inventory::new("platform", "cart")?;
/// assert_eq!(inv.to_string(), "platform/cart");
/// assert!(idp_core::cluster::Inventory::new("Not A Namespace", "x").is_err());
/// # Ok::<(), idp_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Inventory {
    namespace: String,
    name: String,
    id: String,
}

impl Inventory {
    /// The inventory whose parent is the ConfigMap `namespace/name` (both validated as
    /// Kubernetes names).
    ///
    /// ```
    /// let inv = idp_core::cluster::Inventory::new("platform", "shop")?;
    /// assert_eq!(inv.name(), "shop");
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn new(namespace: &str, name: &str) -> Result<Self> {
        DnsLabel::new(namespace)
            .map_err(|e| e.context(format_args!("inventory namespace {namespace:?}")))?;
        DnsSubdomain::new(name).map_err(|e| e.context(format_args!("inventory name {name:?}")))?;
        let digest = ring::digest::digest(
            &ring::digest::SHA256,
            format!("{name}.{namespace}.ConfigMap.").as_bytes(),
        );
        let id = format!(
            "applyset-{}-v1",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest.as_ref())
        );
        Ok(Self {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            id,
        })
    }

    /// The parent's namespace.
    ///
    /// ```
    /// assert_eq!(idp_core::cluster::Inventory::new("a", "b")?.namespace(), "a");
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The parent's name.
    ///
    /// ```
    /// assert_eq!(idp_core::cluster::Inventory::new("a", "b")?.name(), "b");
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The ApplySet id: the value of the members' `applyset.kubernetes.io/part-of`
    /// label (55 characters, a valid label value).
    ///
    /// ```
    /// let inv = idp_core::cluster::Inventory::new("a", "b")?;
    /// assert!(inv.id().len() <= 63);
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The label selector matching exactly this inventory's members.
    ///
    /// ```
    /// let inv = idp_core::cluster::Inventory::new("a", "b")?;
    /// assert!(inv.selector().ends_with(inv.id()));
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn selector(&self) -> String {
        format!("{}={}", labels::APPLYSET_PART_OF, self.id)
    }

    /// The parent object.
    ///
    /// ```
    /// let inv = idp_core::cluster::Inventory::new("a", "b")?;
    /// assert_eq!(inv.parent().to_string(), "v1 ConfigMap a/b");
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn parent(&self) -> ObjectRef {
        ObjectRef::new("v1", "ConfigMap", Some(&self.namespace), &self.name)
    }

    /// Whether a live object's labels say it belongs to this inventory.
    ///
    /// ```
    /// let inv = idp_core::cluster::Inventory::new("a", "b")?;
    /// let mut labels = std::collections::BTreeMap::new();
    /// assert!(!inv.owns(&labels));
    /// labels.insert("applyset.kubernetes.io/part-of".to_owned(), inv.id().to_owned());
    /// assert!(inv.owns(&labels));
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn owns(&self, labels: &BTreeMap<String, String>) -> bool {
        labels
            .get(labels::APPLYSET_PART_OF)
            .is_some_and(|v| v == &self.id)
    }
}

impl fmt::Display for Inventory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// What an inventory's parent records about its members: their group-kinds and the
/// namespaces they live in.
///
/// ```
/// use idp_core::cluster::inventory::InventoryRecord;
/// let mut r = InventoryRecord::default();
/// r.group_kinds.insert("Deployment.apps".parse()?);
/// r.namespaces.insert("shop".into());
/// assert!(!r.is_empty());
/// # Ok::<(), idp_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InventoryRecord {
    /// Group-kinds of the members.
    pub group_kinds: BTreeSet<GroupKind>,
    /// Namespaces of namespaced members (including the parent's own when used).
    pub namespaces: BTreeSet<String>,
}

impl InventoryRecord {
    /// Whether nothing is recorded.
    ///
    /// ```
    /// assert!(idp_core::cluster::inventory::InventoryRecord::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.group_kinds.is_empty() && self.namespaces.is_empty()
    }

    /// Add everything `other` records.
    ///
    /// ```
    /// use idp_core::cluster::inventory::InventoryRecord;
    /// let mut a = InventoryRecord::default();
    /// let mut b = InventoryRecord::default();
    /// b.namespaces.insert("x".into());
    /// a.extend(&b);
    /// assert_eq!(a, b);
    /// ```
    pub fn extend(&mut self, other: &InventoryRecord) {
        self.group_kinds.extend(other.group_kinds.iter().cloned());
        self.namespaces.extend(other.namespaces.iter().cloned());
    }

    fn from_annotations(annotations: &BTreeMap<String, String>, parent_namespace: &str) -> Self {
        let list = |key: &str| -> Vec<String> {
            annotations
                .get(key)
                .map(|v| {
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let group_kinds = list(labels::APPLYSET_CONTAINS_GROUP_KINDS)
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        let mut namespaces: BTreeSet<String> = list(labels::APPLYSET_ADDITIONAL_NAMESPACES)
            .into_iter()
            .collect();
        namespaces.insert(parent_namespace.to_owned());
        Self {
            group_kinds,
            namespaces,
        }
    }

    fn annotations(&self, parent_namespace: &str) -> (String, String) {
        let kinds = self
            .group_kinds
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let namespaces = self
            .namespaces
            .iter()
            .filter(|ns| *ns != parent_namespace)
            .cloned()
            .collect::<Vec<_>>()
            .join(",");
        (kinds, namespaces)
    }
}

fn config_maps(cluster: &Cluster, inventory: &Inventory) -> Api<DynamicObject> {
    let gvk = kube::api::GroupVersionKind::gvk("", "v1", "ConfigMap");
    Api::namespaced_with(
        cluster.client().clone(),
        &inventory.namespace,
        &kube::discovery::ApiResource::from_gvk(&gvk),
    )
}

/// Read the record from the inventory's parent; `None` when there is no parent yet.
///
/// Fails with [`Conflict`](ErrorKind::Conflict) when a ConfigMap of that name exists but
/// is not an idp inventory (no ApplySet id, or another tool's), rather than take it over.
///
/// ```no_run
/// # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
/// use idp_core::cluster::{inventory, Inventory};
/// let inv = Inventory::new("platform", "shop")?;
/// if let Some(record) = inventory::read(&cluster, &inv).await? {
///     println!("{} kinds recorded", record.group_kinds.len());
/// }
/// # Ok(()) }
/// ```
pub async fn read(cluster: &Cluster, inventory: &Inventory) -> Result<Option<InventoryRecord>> {
    let api = config_maps(cluster, inventory);
    let what = format!("read inventory {inventory}");
    let parent = cluster
        .retry()
        .run(&what, || api.get_opt(&inventory.name))
        .await?;
    let Some(parent) = parent else {
        return Ok(None);
    };
    check_parent(inventory, &parent)?;
    let annotations: BTreeMap<String, String> = parent
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    Ok(Some(InventoryRecord::from_annotations(
        &annotations,
        &inventory.namespace,
    )))
}

fn check_parent(inventory: &Inventory, parent: &DynamicObject) -> Result<()> {
    let labels = parent.metadata.labels.clone().unwrap_or_default();
    let annotations = parent.metadata.annotations.clone().unwrap_or_default();
    let id_ok = labels.get(labels::APPLYSET_ID) == Some(&inventory.id);
    let tooling_ok = annotations
        .get(labels::APPLYSET_TOOLING)
        .is_some_and(|t| t.starts_with("idp/"));
    if id_ok && tooling_ok {
        return Ok(());
    }
    Err(Error::conflict(format!(
        "ConfigMap {inventory} exists but is not the parent of an idp inventory (label {}={} and annotation {}=idp/… expected); choose another inventory name or delete that ConfigMap",
        labels::APPLYSET_ID,
        inventory.id,
        labels::APPLYSET_TOOLING,
    )))
}

/// Write `record` to the inventory's parent with server-side apply (creating it when
/// needed). The parent's namespace must exist.
///
/// ```no_run
/// # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
/// use idp_core::cluster::{inventory, Inventory};
/// let inv = Inventory::new("platform", "shop")?;
/// inventory::write(&cluster, &inv, &inventory::InventoryRecord::default(), "idp").await?;
/// # Ok(()) }
/// ```
pub async fn write(
    cluster: &Cluster,
    inventory: &Inventory,
    record: &InventoryRecord,
    field_manager: &str,
) -> Result<()> {
    let (kinds, namespaces) = record.annotations(&inventory.namespace);
    let body: Value = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": inventory.name,
            "namespace": inventory.namespace,
            "labels": {
                labels::APPLYSET_ID: inventory.id,
                labels::MANAGED_BY: labels::MANAGED_BY_VALUE,
            },
            "annotations": {
                labels::APPLYSET_TOOLING: concat!("idp/", env!("CARGO_PKG_VERSION")),
                labels::APPLYSET_CONTAINS_GROUP_KINDS: kinds,
                labels::APPLYSET_ADDITIONAL_NAMESPACES: namespaces,
            },
        },
    });
    let api = config_maps(cluster, inventory);
    let params = PatchParams::apply(field_manager).force();
    let what = format!("write inventory {inventory}");
    let patch = Patch::Apply(&body);
    let written = cluster
        .retry()
        .run(&what, || api.patch(&inventory.name, &params, &patch))
        .await;
    match written {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == ErrorKind::NotFound => Err(err.context(format_args!(
            "namespace {:?} of the inventory must exist; create it first or include it in the manifests",
            inventory.namespace
        ))),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_follows_the_applyset_format() {
        let inv = Inventory::new("ns", "name").unwrap();
        // sha256("name.ns.ConfigMap.") is 32 bytes: 43 characters of unpadded base64url.
        let id = inv.id();
        assert_eq!(id.len(), "applyset-".len() + 43 + "-v1".len());
        let middle = &id["applyset-".len()..id.len() - 3];
        assert!(
            middle
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(Inventory::new("ns", "other").unwrap().id(), id);
        assert_ne!(Inventory::new("ns2", "name").unwrap().id(), id);
        assert_eq!(Inventory::new("ns", "name").unwrap().id(), id);
    }

    #[test]
    fn record_round_trips_through_annotations() {
        let mut record = InventoryRecord::default();
        record
            .group_kinds
            .insert("Deployment.apps".parse().unwrap());
        record.group_kinds.insert("ConfigMap".parse().unwrap());
        record.namespaces.insert("home".into());
        record.namespaces.insert("shop".into());
        let (kinds, namespaces) = record.annotations("home");
        assert_eq!(kinds, "ConfigMap,Deployment.apps");
        assert_eq!(namespaces, "shop");
        let mut annotations = BTreeMap::new();
        annotations.insert(labels::APPLYSET_CONTAINS_GROUP_KINDS.to_owned(), kinds);
        annotations.insert(
            labels::APPLYSET_ADDITIONAL_NAMESPACES.to_owned(),
            namespaces,
        );
        assert_eq!(
            InventoryRecord::from_annotations(&annotations, "home"),
            record
        );
    }
}
