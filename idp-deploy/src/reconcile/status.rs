//! What a reconciliation found and did: [`ReconcileStatus`], serde-serializable.
//!
//! Every object that is not in sync carries a machine-readable [`OutOfSyncReason`], so
//! "OutOfSync" always says why.

use idp_core::ObjectRef;
use idp_core::Violation;
use idp_core::cluster::{Health, HealthStatus};
use serde::{Deserialize, Serialize};

/// Whether the cluster holds what the source says.
///
/// ```
/// use idp_deploy::reconcile::SyncStatus;
/// assert_eq!(serde_json::to_value(SyncStatus::OutOfSync).unwrap(), "OutOfSync");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SyncStatus {
    /// Every desired object is applied as configured and nothing is waiting to be pruned.
    Synced,
    /// At least one object differs, is missing, failed, was denied or waits to be pruned.
    OutOfSync,
    /// Nothing could be compared (the source could not be fetched or rendered).
    Unknown,
}

/// What happened to one object in the last reconciliation.
///
/// ```
/// use idp_deploy::reconcile::ObjectResult;
/// assert_eq!(serde_json::to_value(ObjectResult::Pruned).unwrap(), "pruned");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ObjectResult {
    /// Written (created or changed).
    Applied,
    /// Already as configured: no write.
    Unchanged,
    /// Deleted because it left the source.
    Pruned,
    /// The write failed.
    Failed,
    /// A policy denied the set; nothing was written.
    Denied,
    /// Not written on purpose (self-heal off or throttled, not the leader, suspended).
    Skipped,
}

/// Why an object is out of sync (tagged by `type` in JSON).
///
/// ```
/// use idp_deploy::reconcile::OutOfSyncReason;
/// let r = OutOfSyncReason::LiveDiffers { fields: vec!["spec.replicas".into()], drift: true };
/// assert_eq!(serde_json::to_value(&r).unwrap()["type"], "LiveDiffers");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum OutOfSyncReason {
    /// The live object differs from the source in these fields; `drift` is true when it
    /// was edited in the cluster (rather than changed in the source).
    LiveDiffers {
        /// Dotted paths of the differing fields.
        fields: Vec<String>,
        /// Edited in the cluster since we applied it.
        drift: bool,
    },
    /// The object does not exist in the cluster.
    Missing,
    /// The object is in the inventory but no longer in the source; it will be deleted.
    PendingPrune,
    /// Writing it failed.
    ApplyFailed {
        /// The API server's (or our) message.
        message: String,
    },
    /// A policy denied the set; these are the violations of this object.
    DeniedByPolicy {
        /// What the policies found.
        violations: Vec<Violation>,
    },
    /// It drifted and self-heal is off: reported, not reverted.
    SelfHealDisabled {
        /// The drifted fields.
        fields: Vec<String>,
    },
    /// It drifted again sooner than the per-object self-heal interval allows.
    SelfHealThrottled {
        /// The drifted fields.
        fields: Vec<String>,
    },
    /// This replica is not the leader, so it did not write.
    NotLeader,
    /// The reconciler is suspended.
    Suspended,
}

/// One object of the status.
///
/// ```
/// use idp_deploy::reconcile::{ObjectResult, ObjectStatus, OutOfSyncReason};
/// let o = ObjectStatus {
///     object: idp_core::ObjectRef::new("v1", "ConfigMap", Some("shop"), "settings"),
///     result: ObjectResult::Skipped,
///     health: None,
///     reason: Some(OutOfSyncReason::PendingPrune),
/// };
/// assert_eq!(serde_json::to_value(&o).unwrap()["reason"]["type"], "PendingPrune");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObjectStatus {
    /// The object.
    pub object: ObjectRef,
    /// What happened to it.
    pub result: ObjectResult,
    /// Its health, where a rule applies (see `idp_core::cluster::health`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    /// Why it is out of sync; `None` when it is in sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<OutOfSyncReason>,
}

/// Why a whole reconciliation stopped early or did not write.
///
/// ```
/// use idp_deploy::reconcile::StallReason;
/// assert_eq!(serde_json::to_value(StallReason::EmptySource).unwrap()["type"], "EmptySource");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum StallReason {
    /// The source could not be fetched; nothing was applied or pruned.
    FetchFailed {
        /// What went wrong.
        message: String,
    },
    /// The source could not be rendered; nothing was applied or pruned.
    RenderFailed {
        /// What went wrong (file:line where known).
        message: String,
    },
    /// A mutation failed; nothing was applied.
    MutationFailed {
        /// What went wrong.
        message: String,
    },
    /// At least one policy denied an object; nothing was applied.
    DeniedByPolicy {
        /// How many violations denied the set.
        violations: usize,
    },
    /// The source renders to no object and empty prunes are not allowed, so nothing
    /// was pruned.
    EmptySource,
    /// Comparing with or writing to the cluster failed.
    ClusterError {
        /// What went wrong.
        message: String,
    },
    /// This replica is not the leader.
    NotLeader,
    /// The reconciler is suspended.
    Suspended,
}

/// The outcome of one reconciliation.
///
/// ```
/// let s = idp_deploy::reconcile::ReconcileStatus::default();
/// assert_eq!(s.sync, idp_deploy::reconcile::SyncStatus::Unknown);
/// let json = serde_json::to_value(&s).unwrap();
/// assert_eq!(json["sync"], "Unknown");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReconcileStatus {
    /// The source commit that was reconciled (full SHA), when it could be fetched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Synced or OutOfSync.
    pub sync: SyncStatus,
    /// The worst health of the objects (Healthy when none has a rule).
    pub health: HealthStatus,
    /// Every desired object, then every pruned or pending-prune object.
    pub objects: Vec<ObjectStatus>,
    /// Why the reconciliation stopped early or did not write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stalled: Option<StallReason>,
    /// How many objects were written (applied or pruned).
    pub writes: usize,
    /// How many reconciliations ran so far.
    pub generation: u64,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconciled_at: Option<jiff::Timestamp>,
}

impl Default for ReconcileStatus {
    fn default() -> Self {
        Self {
            revision: None,
            sync: SyncStatus::Unknown,
            health: HealthStatus::Unknown,
            objects: Vec::new(),
            stalled: None,
            writes: 0,
            generation: 0,
            reconciled_at: None,
        }
    }
}

impl ReconcileStatus {
    /// Synced and Healthy.
    ///
    /// ```
    /// assert!(!idp_deploy::reconcile::ReconcileStatus::default().is_ready());
    /// ```
    pub fn is_ready(&self) -> bool {
        self.sync == SyncStatus::Synced && self.health == HealthStatus::Healthy
    }

    /// The status of one object, by kind and name.
    ///
    /// ```
    /// assert!(idp_deploy::reconcile::ReconcileStatus::default().object("ConfigMap", "x").is_none());
    /// ```
    pub fn object(&self, kind: &str, name: &str) -> Option<&ObjectStatus> {
        self.objects
            .iter()
            .find(|o| o.object.kind == kind && o.object.name == name)
    }
}
