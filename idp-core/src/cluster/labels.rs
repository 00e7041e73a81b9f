//! The labels and annotations idp puts on the objects it applies.
//!
//! Ownership follows ApplySet (KEP-3659) where it fits:
//!
//! - every applied object (a *member*) carries the label [`APPLYSET_PART_OF`] with the
//!   inventory's ApplySet id ([`Inventory::id`](super::Inventory::id)); this label is
//!   the **only** thing prune selects on, so an object without it, or with another
//!   inventory's id, is never deleted, whatever its name;
//! - the inventory's *parent* object (a ConfigMap) carries [`APPLYSET_ID`] and records
//!   the group-kinds and namespaces of its members in [`APPLYSET_CONTAINS_GROUP_KINDS`]
//!   and [`APPLYSET_ADDITIONAL_NAMESPACES`], so prune knows where to look without
//!   scanning every resource type of the cluster.
//!
//! We add [`MANAGED_BY`]`=`[`MANAGED_BY_VALUE`] (the recommended label, for people and
//! dashboards), the annotation [`INVENTORY`] pointing at the parent (`namespace/name`,
//! readable where the hashed id is not) and [`APPLIED_HASH`], the hash of the
//! configuration we last applied, used to skip writes of unchanged objects.
//!
//! ```
//! use idp_core::cluster::labels;
//! assert_eq!(labels::MANAGED_BY, "app.kubernetes.io/managed-by");
//! assert!(labels::APPLIED_HASH.starts_with(labels::IDP_PREFIX));
//! ```

/// `app.kubernetes.io/name`: the name of the application.
pub const NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/instance`: a unique name for this instance of the application.
pub const INSTANCE: &str = "app.kubernetes.io/instance";
/// `app.kubernetes.io/part-of`: the higher-level application this is part of.
pub const PART_OF: &str = "app.kubernetes.io/part-of";
/// `app.kubernetes.io/managed-by`: the tool managing the object.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The value idp puts in [`MANAGED_BY`].
pub const MANAGED_BY_VALUE: &str = "idp";

/// The prefix of idp's own labels and annotations.
pub const IDP_PREFIX: &str = "idp.dev/";
/// Annotation on members: `namespace/name` of the inventory's parent ConfigMap.
pub const INVENTORY: &str = "idp.dev/inventory";
/// Annotation on members: hash of the configuration idp last applied to the object.
pub const APPLIED_HASH: &str = "idp.dev/applied-hash";
/// Label: the team that owns the object.
pub const OWNER: &str = "idp.dev/owner";
/// Label: the environment the object belongs to.
pub const ENVIRONMENT: &str = "idp.dev/environment";
/// Label: the preview environment (pull request) the object belongs to.
pub const PREVIEW: &str = "idp.dev/preview";

/// ApplySet label on members: the id of the ApplySet (inventory) they belong to.
pub const APPLYSET_PART_OF: &str = "applyset.kubernetes.io/part-of";
/// ApplySet label on the parent: its id.
pub const APPLYSET_ID: &str = "applyset.kubernetes.io/id";
/// ApplySet annotation on the parent: the tool that manages the set (`idp/<version>`).
pub const APPLYSET_TOOLING: &str = "applyset.kubernetes.io/tooling";
/// ApplySet annotation on the parent: sorted, comma-separated `Kind.group` of members.
pub const APPLYSET_CONTAINS_GROUP_KINDS: &str = "applyset.kubernetes.io/contains-group-kinds";
/// ApplySet annotation on the parent: namespaces of members other than the parent's.
pub const APPLYSET_ADDITIONAL_NAMESPACES: &str = "applyset.kubernetes.io/additional-namespaces";
