//! `policy.gatekeeperSync`: the objects of the kinds listed, read from the cluster every
//! `intervalSeconds`, become the `data.inventory` of the `policy.gatekeeper` templates,
//! as Gatekeeper's `Config` (`spec.sync.syncOnly`) replicates them. Each read rebuilds
//! the Gatekeeper set with the new inventory and puts it in place of the old one
//! ([`Swappable`]), which the check route, the validating webhook and the deployments
//! all hold. A read that fails, or misses a kind, keeps the inventory as it was. The
//! files are read again for each rebuild, so an edited file takes effect at the next
//! sync (one that no longer loads is logged and the set stays as it was).
//!
//! With `fromCluster`, each sync also reads the Gatekeeper policies kept in the cluster,
//! as Gatekeeper itself does: every `ConstraintTemplate`, the constraints of each
//! template's kind, and the `Config` named `config` (whose `syncOnly` kinds are synced
//! when `kinds` names none). A template that does not compile is logged and left out
//! with its constraints; the others still apply. The constraints read are kept in the
//! state, for the audit to write its findings into their `status`. The mutators kept in
//! the cluster (`Assign`, `AssignMetadata`, `ModifySet`, `AssignImage`) are read too and
//! join those of `policy.gatekeeperMutators` at the mutating webhook and in the
//! deployments, with the `Config`'s mutation exclusions (a mutator that does not load is
//! logged and left out).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use idp_core::cluster::{Cluster, GroupKind};
use idp_policy::Swappable;
use idp_policy::audit::Audit;
use idp_policy::gatekeeper::mutation::GatekeeperMutators;
use idp_policy::gatekeeper::mutation::cluster::ClusterMutators;
use idp_policy::rego::RegoPolicy;
use idp_policy::rego::cluster::{ClusterPolicies, ConstraintRef};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::server::config::GatekeeperSyncConfig;
use crate::server::state::AppState;

/// What the sync reads and rebuilds, checked at start.
pub(crate) struct Planned {
    kinds: Vec<GroupKind>,
    every: Duration,
    /// The `policy.gatekeeper` files, read again for each rebuild.
    files: Vec<PathBuf>,
    /// Whether the Gatekeeper policies kept in the cluster are read too.
    from_cluster: bool,
    /// The `policy.gatekeeperMutators` files, read again for each rebuild of the
    /// mutators (with `from_cluster`).
    mutator_files: Vec<PathBuf>,
}

impl Planned {
    /// Whether each sync reads the Gatekeeper policies kept in the cluster.
    pub(crate) fn reads_cluster(&self) -> bool {
        self.from_cluster
    }
}

/// Check `config`: every kind parses. The kinds are those of `config`, or else
/// `sync_only` (the `spec.sync.syncOnly` of a Gatekeeper `Config` among the files);
/// there must be some, unless the policies are read from the cluster, whose `Config`
/// may name them at each sync.
pub(crate) fn plan(
    config: &GatekeeperSyncConfig,
    files: &[PathBuf],
    mutator_files: &[PathBuf],
    sync_only: &[GroupKind],
) -> idp_core::Result<Planned> {
    let mut kinds =
        crate::server::audit::parse_kinds("policy.gatekeeperSync.kinds", &config.kinds)?;
    if kinds.is_empty() {
        kinds = sync_only.to_vec();
    }
    if kinds.is_empty() && !config.from_cluster {
        return Err(idp_core::Error::invalid_input(
            "policy.gatekeeperSync.kinds is empty: list the kinds the templates read from data.inventory (Ingress.networking.k8s.io, Namespace) there or in the spec.sync.syncOnly of a Gatekeeper Config among the policy.gatekeeper files",
        ));
    }
    Ok(Planned {
        kinds,
        every: Duration::from_secs(config.interval_seconds.max(1)),
        files: files.to_vec(),
        from_cluster: config.from_cluster,
        mutator_files: mutator_files.to_vec(),
    })
}

/// The Gatekeeper mutators of `files`, one after the other. An error names the field and
/// the file.
pub(crate) fn load_mutator_files(files: &[PathBuf]) -> idp_core::Result<GatekeeperMutators> {
    let mut mutators = GatekeeperMutators::new("gatekeeper");
    for path in files {
        let text = crate::server::read_policy_file("policy.gatekeeperMutators", path)?;
        mutators.add_yaml(&text, Some(path)).map_err(|e| {
            e.context(format_args!(
                "policy.gatekeeperMutators: {}",
                path.display()
            ))
        })?;
    }
    Ok(mutators)
}

/// Sync now and every interval after, until `stop` turns true. The set is replaced in
/// both of `state`'s slots: as the webhook runs it and as the audit does
/// ([`RegoPolicy::for_audit`]).
pub(crate) fn spawn(
    state: Arc<AppState>,
    planned: Planned,
    stop: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    let webhook = state.gatekeeper.get()?.clone();
    let audit = state.gatekeeper_audit.get()?.clone();
    let every = planned.every;
    let planned = Arc::new(planned);
    Some(crate::server::periodically(every, stop, move || {
        let (state, planned) = (state.clone(), planned.clone());
        let policies = [webhook.clone(), audit.clone()];
        async move {
            // Compiling the templates and converting the inventory keep a thread busy.
            let sync = async move { once(&state, &policies, &planned).await }
                .instrument(tracing::info_span!("server.gatekeeper_sync"));
            if let Err(e) = crate::server::on_blocking_pool(sync).await {
                tracing::error!(error = %e.report(), "the Gatekeeper sync stopped");
            }
        }
    }))
}

async fn once(state: &AppState, policies: &[Arc<Swappable<RegoPolicy>>; 2], planned: &Planned) {
    match rebuild(state, planned).await {
        Ok((
            Loaded {
                set,
                constraints,
                skipped,
            },
            objects,
        )) => {
            let [webhook, audit] = policies;
            let loaded = set.constraints().len();
            audit.replace(set.clone().for_audit());
            webhook.replace(set);
            tracing::debug!(
                objects,
                cluster_constraints = constraints.len(),
                "Gatekeeper set synced"
            );
            state.set_gatekeeper_constraints(constraints);
            state.record_sync("gatekeeper", loaded, &skipped);
        }
        Err(e) => {
            tracing::warn!(error = %e.report(), "Gatekeeper sync could not rebuild the set; it and its inventory stay as they were");
            state.record_sync_failure("gatekeeper", &e);
        }
    }
}

/// The Gatekeeper set of the files and the cluster.
struct Loaded {
    set: RegoPolicy,
    /// The constraints read from the cluster.
    constraints: Vec<ConstraintRef>,
    /// What of the cluster's policies did not load.
    skipped: Vec<(String, idp_core::Error)>,
}

/// The set rebuilt, with its inventory, and how many objects that holds.
async fn rebuild(state: &AppState, planned: &Planned) -> idp_core::Result<(Loaded, usize)> {
    // A fresh discovery each time: Gatekeeper's CRDs may have come (or gone) since.
    let cluster = Cluster::new(state.cluster.client.clone());
    let from_cluster = if planned.from_cluster {
        Some(
            ClusterPolicies::read(&cluster)
                .await
                .map_err(|e| e.context("reading the Gatekeeper policies in the cluster"))?,
        )
    } else {
        None
    };
    let Loaded {
        set,
        constraints,
        skipped,
    } = load(&planned.files, from_cluster.as_ref())?;
    if planned.from_cluster
        && let Some(shared) = state.gatekeeper_mutators.get()
    {
        sync_mutators(state, &cluster, shared, &set, &planned.mutator_files).await;
    }
    // The kinds named in idp.yaml, or else the syncOnly of the set's Config (the
    // files', or the cluster's).
    let kinds = if planned.kinds.is_empty() {
        set.gatekeeper_config()
            .map(|c| c.sync_only().to_vec())
            .unwrap_or_default()
    } else {
        planned.kinds.clone()
    };
    let mut objects = Vec::new();
    if !kinds.is_empty() {
        let listing = Audit::new(cluster.clone())
            .with_kinds(kinds)
            .for_each_object(|o| objects.push(o))
            .await
            .map_err(|e| e.context("reading the inventory"))?;
        if let Some(kind) = listing.failed().next() {
            return Err(idp_core::Error::unavailable(format!(
                "cannot read the {} objects of the inventory: {}",
                kind.kind,
                kind.error.as_deref().unwrap_or_default()
            )));
        }
    }
    let set = set
        .with_inventory(objects.iter())
        .map_err(|e| e.context("giving the templates their inventory"))?;
    Ok((
        Loaded {
            set,
            constraints,
            skipped,
        },
        objects.len(),
    ))
}

/// Rebuild the mutators: those of `files` and those kept in the cluster, with the
/// `Config` of `set` (the files' or the cluster's). A failure keeps them as they were.
async fn sync_mutators(
    state: &AppState,
    cluster: &Cluster,
    shared: &Swappable<GatekeeperMutators>,
    set: &RegoPolicy,
    files: &[PathBuf],
) {
    let rebuilt = async {
        let found = ClusterMutators::read(cluster)
            .await
            .map_err(|e| e.context("reading the Gatekeeper mutators in the cluster"))?;
        let mut mutators = load_mutator_files(files)?;
        if let Some(config) = set.gatekeeper_config() {
            mutators.use_config(config.clone());
        }
        Ok::<_, idp_core::Error>(found.load_into(mutators))
    };
    match rebuilt.await {
        Ok(loaded) => {
            for (what, error) in &loaded.skipped {
                tracing::warn!(%what, error = %error.report(), "left out of the Gatekeeper mutators read from the cluster");
            }
            let count = loaded.mutators.mutators().len();
            tracing::debug!(mutators = count, "Gatekeeper mutators synced");
            state.record_sync("gatekeeper-mutation", count, &loaded.skipped);
            shared.replace(loaded.mutators);
        }
        Err(e) => {
            tracing::warn!(error = %e.report(), "Gatekeeper sync could not rebuild the mutators; they stay as they were");
            state.record_sync_failure("gatekeeper-mutation", &e);
        }
    }
}

/// The Gatekeeper set of `files` and of the policies read from the cluster, without
/// its inventory yet (its `Config` names what to sync); and the cluster's constraints
/// it holds.
fn load(files: &[PathBuf], cluster: Option<&ClusterPolicies>) -> idp_core::Result<Loaded> {
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
    let mut constraints = Vec::new();
    let mut skipped = Vec::new();
    if let Some(cluster) = cluster {
        if cluster.config.is_some() && gatekeeper.gatekeeper_config().is_some() {
            tracing::warn!(
                "a Gatekeeper Config in the policy.gatekeeper files and one in the cluster: the files' is used"
            );
        }
        let loaded = cluster.load_into(gatekeeper)?;
        for (what, error) in &loaded.skipped {
            tracing::warn!(%what, error = %error.report(), "left out of the Gatekeeper policies read from the cluster");
        }
        gatekeeper = loaded.policy;
        constraints = loaded.constraints;
        skipped = loaded.skipped;
    }
    Ok(Loaded {
        set: gatekeeper,
        constraints,
        skipped,
    })
}
