//! `policy.gatekeeperSync`: the objects of the kinds listed, read from the cluster every
//! `intervalSeconds`, become the `data.inventory` of the `policy.gatekeeper` templates,
//! as Gatekeeper's `Config` (`spec.sync.syncOnly`) replicates them. Each read rebuilds
//! the Gatekeeper set with the new inventory and puts it in place of the old one
//! ([`Swappable`]), which the check route, the validating webhook and the deployments
//! all hold. A read that fails, or misses a kind, keeps the inventory as it was. The
//! files are read again for each rebuild, so an edited file takes effect at the next
//! sync (one that no longer loads is logged and the set stays as it was).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use idp_core::cluster::{Cluster, GroupKind};
use idp_policy::Swappable;
use idp_policy::audit::Audit;
use idp_policy::rego::RegoPolicy;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::server::config::GatekeeperSyncConfig;

/// What the sync reads and rebuilds, checked at start.
pub(crate) struct Planned {
    kinds: Vec<GroupKind>,
    every: Duration,
    /// The `policy.gatekeeper` files, read again for each rebuild.
    files: Vec<PathBuf>,
}

/// Check `config`: every kind parses, and there is at least one: those of `config`, or
/// else `sync_only` (the `spec.sync.syncOnly` of a Gatekeeper `Config` among the files).
pub(crate) fn plan(
    config: &GatekeeperSyncConfig,
    files: &[PathBuf],
    sync_only: &[GroupKind],
) -> idp_core::Result<Planned> {
    let mut kinds =
        crate::server::audit::parse_kinds("policy.gatekeeperSync.kinds", &config.kinds)?;
    if kinds.is_empty() {
        kinds = sync_only.to_vec();
    }
    if kinds.is_empty() {
        return Err(idp_core::Error::invalid_input(
            "policy.gatekeeperSync.kinds is empty: list the kinds the templates read from data.inventory (Ingress.networking.k8s.io, Namespace) there or in the spec.sync.syncOnly of a Gatekeeper Config among the policy.gatekeeper files",
        ));
    }
    Ok(Planned {
        kinds,
        every: Duration::from_secs(config.interval_seconds.max(1)),
        files: files.to_vec(),
    })
}

/// Sync now and every interval after, until `stop` turns true. `policies` are the set
/// as the webhook runs it and as the audit does ([`RegoPolicy::for_audit`]); both are
/// replaced by each rebuild.
pub(crate) fn spawn(
    cluster: Cluster,
    policies: [Arc<Swappable<RegoPolicy>>; 2],
    planned: Planned,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let every = planned.every;
    let planned = Arc::new(planned);
    crate::server::periodically(every, stop, move || {
        let (cluster, policies, planned) = (cluster.clone(), policies.clone(), planned.clone());
        async move {
            once(&cluster, &policies, &planned)
                .instrument(tracing::info_span!("server.gatekeeper_sync"))
                .await;
        }
    })
}

async fn once(cluster: &Cluster, policies: &[Arc<Swappable<RegoPolicy>>; 2], planned: &Planned) {
    let mut objects = Vec::new();
    let listing = Audit::new(cluster.clone())
        .with_kinds(planned.kinds.iter().cloned())
        .for_each_object(|o| objects.push(o))
        .await;
    let listing = match listing {
        Ok(listing) => listing,
        Err(e) => {
            tracing::warn!(error = %e.report(), "Gatekeeper sync could not read the cluster; the inventory stays as it was");
            return;
        }
    };
    if let Some(kind) = listing.failed().next() {
        tracing::warn!(kind = %kind.kind, error = kind.error.as_deref().unwrap_or_default(), "Gatekeeper sync could not read a kind; the inventory stays as it was");
        return;
    }
    match rebuild(&planned.files, &objects) {
        Ok(rebuilt) => {
            let [webhook, audit] = policies;
            audit.replace(rebuilt.clone().for_audit());
            webhook.replace(rebuilt);
            tracing::debug!(objects = objects.len(), "Gatekeeper inventory synced");
        }
        Err(e) => {
            tracing::warn!(error = %e.report(), "Gatekeeper sync could not rebuild the templates; the inventory stays as it was");
        }
    }
}

/// The Gatekeeper set of `files` with `objects` as its inventory.
fn rebuild(files: &[PathBuf], objects: &[idp_core::Object]) -> idp_core::Result<RegoPolicy> {
    let mut gatekeeper = RegoPolicy::new("gatekeeper");
    for path in files {
        let text = std::fs::read_to_string(path).map_err(|e| {
            idp_core::Error::unavailable(format!(
                "policy.gatekeeper: cannot read {}",
                path.display()
            ))
            .with_source(e)
        })?;
        gatekeeper = gatekeeper
            .with_gatekeeper_yaml(&text, Some(path))
            .map_err(|e| e.context(format_args!("policy.gatekeeper: {}", path.display())))?;
    }
    gatekeeper.with_inventory(objects.iter())
}
