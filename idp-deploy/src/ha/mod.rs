//! High availability: leader election on a `coordination.k8s.io/v1` Lease
//! ([`LeaderElector`]) and sharding of many applications across replicas by a stable
//! hash ([`Shard`]).
//!
//! Run N replicas of a process that embeds reconcilers. **One application, many
//! replicas**: each replica runs a [`LeaderElector`] on the same Lease and passes
//! [`LeaderHandle::subscribe`] to its reconciler
//! ([`ReconcilerBuilder::leader`](crate::reconcile::ReconcilerBuilder::leader)); only the
//! holder writes, the others keep their watch caches warm and take over when the holder
//! stops renewing. **Many applications**: give each replica a [`Shard`] (its index out
//! of N, e.g. a StatefulSet ordinal) and let it reconcile only the applications whose
//! stable hash lands on its index — combine both (a Lease per shard) for failover.
//!
//! We wrote the election ourselves (about 300 lines) rather than depend on
//! `kube-lease-manager`: its published releases we could check were built against an
//! older `kube` than the `kube` 5 this workspace uses.

mod lease;
mod shard;

pub use lease::{LeaderElector, LeaderHandle, LeaseConfig};
pub use shard::{Shard, shard_of};
