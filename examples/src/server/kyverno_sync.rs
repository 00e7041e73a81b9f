//! `policy.kyvernoSync`: the Kyverno set rebuilt every `intervalSeconds`, the
//! `policy.kyverno` files read again and, with `fromCluster`, the `ClusterPolicy`,
//! `Policy` and `PolicyException` objects kept in the cluster added, as Kyverno applies
//! what its users `kubectl apply`. With them come Kyverno's CEL `ValidatingPolicy`,
//! `NamespacedValidatingPolicy` and their `PolicyException`s (`policies.kyverno.io`)
//! kept there, as a set of their own beside the `policy.admissionPolicies` files.
//!
//! A rebuilt set takes the place of the old one ([`Swappable`]) wherever it runs: the
//! check route, the validating webhook (its validate rules), the mutating webhook (its
//! mutate rules), the deployments and the audit all hold the same `Swappable`.
//!
//! A rebuild that cannot read the cluster, or whose files no longer load, is logged and
//! the set stays as it was. A policy in the cluster that does not load is logged and
//! left out; the others still apply, as Kyverno marks one policy not ready without
//! stopping the rest.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use idp_core::cluster::Cluster;
use idp_policy::Swappable;
use idp_policy::cel::CelPolicy;
use idp_policy::kyverno::KyvernoPolicy;
use idp_policy::kyverno::cluster::ClusterPolicies;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::server::config::KyvernoSyncConfig;
use crate::server::state::AppState;

/// The name of the set of Kyverno's CEL ValidatingPolicies read from the cluster (the
/// `policy` of their violations).
pub(crate) const VALIDATING_POLICIES: &str = "kyverno-validating-policies";

/// What the sync reads, checked at start.
#[derive(Debug)]
pub(crate) struct Planned {
    every: Duration,
    /// The `policy.kyverno` files, read again for each rebuild.
    files: Vec<PathBuf>,
    /// Whether the Kyverno policies kept in the cluster are read too.
    from_cluster: bool,
}

impl Planned {
    /// Whether each rebuild reads the policies kept in the cluster.
    pub(crate) fn reads_cluster(&self) -> bool {
        self.from_cluster
    }
}

/// Check `config`: a sync must have something to read, files or the cluster.
pub(crate) fn plan(config: &KyvernoSyncConfig, files: &[PathBuf]) -> idp_core::Result<Planned> {
    if files.is_empty() && !config.from_cluster {
        return Err(idp_core::Error::invalid_input(
            "policy.kyvernoSync: there are no policy.kyverno files to read again; list them, set fromCluster: true to read the Kyverno policies kept in the cluster, or remove kyvernoSync",
        ));
    }
    Ok(Planned {
        every: Duration::from_secs(config.interval_seconds.max(1)),
        files: files.to_vec(),
        from_cluster: config.from_cluster,
    })
}

/// The Kyverno set of `files`, one after the other. An error names the field and the
/// file.
pub(crate) fn load_files(files: &[PathBuf]) -> idp_core::Result<KyvernoPolicy> {
    let mut kyverno = KyvernoPolicy::new("kyverno");
    for path in files {
        let text = crate::server::read_policy_file("policy.kyverno", path)?;
        kyverno
            .add_yaml(&text, Some(path))
            .map_err(|e| e.context(format_args!("policy.kyverno: {}", path.display())))?;
    }
    Ok(kyverno)
}

/// Rebuild now and every interval after, until `stop` turns true; `None` when `state`
/// holds no Kyverno set to replace.
pub(crate) fn spawn(
    state: Arc<AppState>,
    planned: Planned,
    stop: watch::Receiver<bool>,
) -> Option<JoinHandle<()>> {
    let shared = state.kyverno.get()?.clone();
    let every = planned.every;
    let planned = Arc::new(planned);
    Some(crate::server::periodically(every, stop, move || {
        let (state, shared, planned) = (state.clone(), shared.clone(), planned.clone());
        async move {
            once(&state, &shared, &planned)
                .instrument(tracing::info_span!("server.kyverno_sync"))
                .await;
        }
    }))
}

async fn once(state: &AppState, shared: &Swappable<KyvernoPolicy>, planned: &Planned) {
    match rebuild(state, planned).await {
        Ok(Rebuilt {
            policy,
            validating,
            skipped,
        }) => {
            for (what, error) in &skipped {
                tracing::warn!(%what, error = %error.report(), "left out of the Kyverno policies read from the cluster");
            }
            let mut loaded = policy.rules().len();
            tracing::debug!(rules = loaded, "Kyverno set rebuilt");
            shared.replace(policy);
            if let (Some(validating), Some([webhook, background])) =
                (validating, state.kyverno_validating.get())
            {
                loaded += validating.policies().len();
                background.replace(validating.clone().for_background());
                webhook.replace(validating);
            }
            state.record_sync("kyverno", loaded, &skipped);
        }
        Err(e) => {
            tracing::warn!(error = %e.report(), "Kyverno sync could not rebuild the set; it stays as it was");
            state.record_sync_failure("kyverno", &e);
        }
    }
}

/// What one rebuild made.
struct Rebuilt {
    /// The set of the files and the cluster's `kyverno.io` policies.
    policy: KyvernoPolicy,
    /// The cluster's `policies.kyverno.io` ValidatingPolicies (with `fromCluster`).
    validating: Option<CelPolicy>,
    /// What of the cluster's policies did not load.
    skipped: Vec<(String, idp_core::Error)>,
}

/// The set of the files and, with `fromCluster`, of the cluster's policies; and what of
/// those did not load.
async fn rebuild(state: &AppState, planned: &Planned) -> idp_core::Result<Rebuilt> {
    let mut found = None;
    if planned.from_cluster {
        // A fresh discovery each time: Kyverno's CRDs may have come (or gone) since.
        let cluster = Cluster::new(state.cluster.client.clone());
        let policies = ClusterPolicies::read(&cluster)
            .await
            .map_err(|e| e.context("reading the Kyverno policies in the cluster"))?;
        let validating = idp_policy::cel::cluster::ClusterPolicies::read_kyverno(&cluster)
            .await
            .map_err(|e| e.context("reading the Kyverno ValidatingPolicies in the cluster"))?;
        found = Some((policies, validating));
    }
    let files = load_files(&planned.files)?;
    Ok(match found {
        Some((policies, validating)) => {
            let loaded = policies.load_into(files);
            let cel = validating.load_into(CelPolicy::new(VALIDATING_POLICIES));
            let mut skipped = loaded.skipped;
            skipped.extend(cel.skipped);
            Rebuilt {
                policy: loaded.policy,
                validating: Some(cel.policy),
                skipped,
            }
        }
        None => Rebuilt {
            policy: files,
            validating: None,
            skipped: Vec::new(),
        },
    })
}
