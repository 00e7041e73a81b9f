//! Gatekeeper mutators kept in a cluster: the `Assign`, `AssignMetadata`, `ModifySet`
//! and `AssignImage` objects (`mutations.gatekeeper.sh`) Gatekeeper users apply with
//! `kubectl`, read into a [`GatekeeperMutators`] for a mutating webhook to apply as
//! Gatekeeper's would. The `Namespace`s are read with them, for `namespaceSelector`.
//!
//! A mutator that does not load is left out, with the reason, and the others still
//! apply, as Gatekeeper reports one mutator's error in its status without stopping the
//! rest.
//!
//! ```no_run
//! # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
//! use idp_policy::gatekeeper::mutation::GatekeeperMutators;
//! use idp_policy::gatekeeper::mutation::cluster::ClusterMutators;
//!
//! let loaded = ClusterMutators::read(&cluster).await?.load_into(GatekeeperMutators::new("gatekeeper"));
//! for (what, error) in &loaded.skipped {
//!     eprintln!("left out {what}: {error}");
//! }
//! println!("{:?}", loaded.mutators.mutators());
//! # Ok(()) }
//! ```

use idp_core::cluster::{Cluster, GroupKind};
use idp_core::{Error, Object, Result};
use tracing::Instrument;

use super::{GROUP, GatekeeperMutators, Kind};
use crate::audit::{add_each, list_served};

/// The Gatekeeper mutators read from a cluster.
///
/// ```
/// let m = idp_policy::gatekeeper::mutation::cluster::ClusterMutators::default();
/// assert!(m.mutators.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClusterMutators {
    /// Every `Assign`, `AssignImage`, `AssignMetadata` and `ModifySet`.
    pub mutators: Vec<Object>,
    /// Every `Namespace`, when there are mutators (their labels feed
    /// `namespaceSelector`).
    pub namespaces: Vec<Object>,
}

/// What [`ClusterMutators::load_into`] made.
#[derive(Debug)]
pub struct Loaded {
    /// The set with the cluster's mutators added.
    pub mutators: GatekeeperMutators,
    /// What was left out (`Assign pull-always`, …) and why.
    pub skipped: Vec<(String, Error)>,
}

impl ClusterMutators {
    /// List the mutators of the four kinds, then the `Namespace`s. Kinds the cluster
    /// does not serve (Gatekeeper's mutation CRDs are not installed) give nothing; a
    /// kind that cannot be listed (forbidden) is an error.
    ///
    /// ```no_run
    /// # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
    /// let found = idp_policy::gatekeeper::mutation::cluster::ClusterMutators::read(&cluster).await?;
    /// println!("{} mutators", found.mutators.len());
    /// # Ok(()) }
    /// ```
    pub async fn read(cluster: &Cluster) -> Result<Self> {
        let span = tracing::info_span!("policy.gatekeeper.read_cluster_mutators");
        async {
            let mut found = Self::default();
            for kind in [
                Kind::Assign,
                Kind::AssignImage,
                Kind::AssignMetadata,
                Kind::ModifySet,
            ] {
                found
                    .mutators
                    .extend(list_served(cluster, GroupKind::new(GROUP, kind.word())).await?);
            }
            if !found.mutators.is_empty() {
                found.namespaces = list_served(cluster, GroupKind::new("", "Namespace")).await?;
            }
            tracing::debug!(
                mutators = found.mutators.len(),
                "Gatekeeper mutators read from the cluster"
            );
            Ok(found)
        }
        .instrument(span)
        .await
    }

    /// Add the namespaces and mutators to `mutators` (which may hold mutators from
    /// files already), one by one: one that does not load (or has the kind and name of
    /// one already there) is left out and recorded in [`Loaded::skipped`].
    ///
    /// ```
    /// use idp_policy::gatekeeper::mutation::{GatekeeperMutators, cluster::ClusterMutators};
    /// let broken = idp_core::Object::from_value(serde_json::json!({
    ///     "apiVersion": "mutations.gatekeeper.sh/v1", "kind": "Assign", "metadata": {"name": "broken"},
    ///     "spec": {"location": "metadata.labels.x"}})).unwrap();
    /// let loaded = ClusterMutators { mutators: vec![broken], ..ClusterMutators::default() }
    ///     .load_into(GatekeeperMutators::new("gatekeeper"));
    /// assert_eq!(loaded.skipped[0].0, "Assign broken");
    /// assert!(loaded.mutators.mutators().is_empty());
    /// ```
    pub fn load_into(&self, mut mutators: GatekeeperMutators) -> Loaded {
        let all = self.namespaces.iter().chain(&self.mutators);
        let skipped = add_each("Gatekeeper mutation", all, |object| {
            mutators.take(object).map(|_| ())
        });
        Loaded { mutators, skipped }
    }
}
