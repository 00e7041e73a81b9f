//! Shared server state: the catalog and its search index, the providers that feed it,
//! request metrics, and the optional ports the other areas plug in.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use idp_catalog::processor::EntityProcessor;
use idp_catalog::provider::EntityProvider;
use idp_catalog::search::SearchIndex;
use idp_catalog::{InMemoryCatalog, IngestReport, Mutation, Snapshot};
use idp_core::EntityRef;
use serde_json::Value;

use crate::server::config::PolicyConfig;

/// One consistent view of the catalog: a snapshot and the search index built from it.
/// Requests take one `Arc<View>` and read only from it, so a refresh never shows them a
/// half-updated catalog.
#[derive(Debug)]
pub struct View {
    /// The catalog at one moment.
    pub snapshot: Snapshot,
    /// Full-text index over `snapshot`.
    pub search: SearchIndex,
    /// Answers computed from this view (entity facets).
    pub cache: crate::server::cache::ViewCache,
}

/// What the server runs against.
#[derive(Clone)]
pub struct ClusterInfo {
    /// Shown in the log and the portal.
    pub label: String,
    /// True when the cluster is idp-testkit's in-process simulation.
    pub simulated: bool,
    /// A client for it (the kubeconfig's, or the simulated cluster's).
    pub client: kube::Client,
}

impl std::fmt::Debug for ClusterInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterInfo")
            .field("label", &self.label)
            .field("simulated", &self.simulated)
            .finish_non_exhaustive()
    }
}

/// How the last periodic audit went (the `idp_policy_audit_*` metrics).
#[derive(Debug, Clone)]
pub struct AuditOutcome {
    /// When it finished.
    pub finished: std::time::SystemTime,
    /// How long it took.
    pub duration: std::time::Duration,
    /// Kinds it could not read.
    pub unreadable_kinds: usize,
    /// Counts and per-rule summaries (no sample).
    pub report: idp_policy::report::Report,
    /// Audits finished since the start, this one included.
    pub runs: u64,
}

/// How the rebuilds of one engine's policies went (`GET /api/policy/sync`, the
/// `idp_policy_sync_*` metrics): `policy.kyvernoSync`, `policy.gatekeeperSync`.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncOutcome {
    /// `kyverno`, `gatekeeper` (templates, constraints and inventory) or
    /// `gatekeeper-mutation`.
    pub engine: String,
    /// When the last rebuild finished (none before the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<jiff::Timestamp>,
    /// When the last rebuild that took effect finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success: Option<jiff::Timestamp>,
    /// Rebuilds since the start, and how many of them failed (the set then stays as it
    /// was).
    pub runs: u64,
    /// Failed rebuilds since the start.
    pub failures: u64,
    /// Why the last rebuild failed, when it did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Rules, constraints or mutators in place after the last rebuild that took effect.
    pub loaded: usize,
    /// The policies of the cluster the last rebuild that took effect left out, because
    /// they do not load.
    pub left_out: Vec<LeftOut>,
}

/// A policy kept in the cluster that does not load.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LeftOut {
    /// `Kind name` or `Kind namespace/name`.
    pub object: String,
    /// Why.
    pub error: String,
}

impl AppState {
    /// Hold readiness until a rebuild of `engine`'s policies has taken effect.
    pub fn await_sync(&self, engine: &str) {
        self.sync_entry(engine, |_| {});
    }

    /// The syncs readiness still waits for: those not yet taken effect once.
    pub fn syncs_awaited(&self) -> Vec<String> {
        self.syncs()
            .into_iter()
            .filter(|s| s.last_success.is_none())
            .map(|s| s.engine)
            .collect()
    }

    /// Count one rebuild of `engine`'s policies that took effect: how many rules,
    /// constraints or mutators it put in place, and the policies it left out.
    pub fn record_sync(&self, engine: &str, loaded: usize, left_out: &[(String, idp_core::Error)]) {
        self.update_sync(engine, |entry, now| {
            entry.last_success = Some(now);
            entry.error = None;
            entry.loaded = loaded;
            entry.left_out = left_out
                .iter()
                .map(|(object, error)| LeftOut {
                    object: object.clone(),
                    error: error.report(),
                })
                .collect();
        });
    }

    /// Count one rebuild of `engine`'s policies that failed (the set stays as it was).
    pub fn record_sync_failure(&self, engine: &str, error: &idp_core::Error) {
        self.update_sync(engine, |entry, _| {
            entry.failures += 1;
            entry.error = Some(error.report());
        });
    }

    /// Count one rebuild of `engine` and `update` its entry.
    fn update_sync(&self, engine: &str, update: impl FnOnce(&mut SyncOutcome, jiff::Timestamp)) {
        let now = jiff::Timestamp::now();
        self.sync_entry(engine, |entry| {
            entry.last_run = Some(now);
            entry.runs += 1;
            update(entry, now);
        });
    }

    /// `change` the entry of `engine`, made first when there is none.
    fn sync_entry(&self, engine: &str, change: impl FnOnce(&mut SyncOutcome)) {
        let mut syncs = self
            .syncs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = syncs
            .entry(engine.to_owned())
            .or_insert_with(|| SyncOutcome {
                engine: engine.to_owned(),
                last_run: None,
                last_success: None,
                runs: 0,
                failures: 0,
                error: None,
                loaded: 0,
                left_out: Vec::new(),
            });
        change(entry);
    }

    /// How each engine's rebuilds went, by engine name.
    pub fn syncs(&self) -> Vec<SyncOutcome> {
        self.syncs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Keep `outcome` as the last audit's, counting it.
    pub fn record_audit(&self, mut outcome: AuditOutcome) {
        let mut last = self
            .last_audit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        outcome.runs = last.as_ref().map_or(0, |l| l.runs) + 1;
        *last = Some(outcome);
    }

    /// Keep the constraints the Gatekeeper sync read from the cluster.
    pub(crate) fn set_gatekeeper_constraints(
        &self,
        constraints: Vec<idp_policy::rego::cluster::ConstraintRef>,
    ) {
        *self
            .gatekeeper_constraints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = constraints;
    }

    /// The constraints the Gatekeeper sync last read from the cluster.
    pub(crate) fn gatekeeper_constraints(&self) -> Vec<idp_policy::rego::cluster::ConstraintRef> {
        self.gatekeeper_constraints
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The last audit's outcome, if one finished.
    pub fn last_audit(&self) -> Option<AuditOutcome> {
        self.last_audit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// A location registered through `POST /api/catalog/locations`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Location {
    /// A stable id (derived from type and target).
    pub id: String,
    /// `file` or `url`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The path or URL.
    pub target: String,
}

/// Everything the handlers share. Ports that other crates provide are optional: the
/// portal and the API say "not configured" until the binary wires them.
#[derive(Debug)]
pub struct AppState {
    /// The catalog the providers feed.
    pub catalog: Arc<InMemoryCatalog>,
    view: RwLock<Arc<View>>,
    providers: Mutex<Vec<Arc<dyn EntityProvider>>>,
    /// Locations added over the API.
    pub locations: Mutex<Vec<Location>>,
    refresh_lock: tokio::sync::Mutex<()>,
    ready: AtomicBool,
    /// Request counters and latency histograms.
    pub metrics: Metrics,
    /// Default policy settings.
    pub policy: PolicyConfig,
    /// The Kyverno policies of `policy.kyverno` (and, with `policy.kyvernoSync.fromCluster`,
    /// those kept in the cluster), once loaded; `policy.kyvernoSync` replaces the set in
    /// place, for every holder.
    pub kyverno: OnceLock<Arc<idp_policy::Swappable<idp_policy::kyverno::KyvernoPolicy>>>,
    /// With `policy.kyvernoSync.fromCluster`, Kyverno's CEL ValidatingPolicies kept in the
    /// cluster, as the webhook and the check route run them and as the audit does (in
    /// `policy_files` and `audit_files`); the sync replaces both.
    pub kyverno_validating: OnceLock<[Arc<idp_policy::Swappable<idp_policy::cel::CelPolicy>>; 2]>,
    /// The Gatekeeper mutators of `policy.gatekeeperMutators`, once loaded.
    /// With `policy.gatekeeperSync.fromCluster`, the sync replaces the set in place with
    /// the files' mutators and those kept in the cluster, for every holder.
    pub gatekeeper_mutators:
        OnceLock<Arc<idp_policy::Swappable<idp_policy::gatekeeper::mutation::GatekeeperMutators>>>,
    /// The policies of `policy.gatekeeper`, `policy.rego` and `policy.admissionPolicies`,
    /// once loaded.
    pub policy_files: OnceLock<Vec<Arc<dyn idp_core::Policy>>>,
    /// The `policy.gatekeeper` set as it is in `policy_files`, when `policy.gatekeeperSync`
    /// rebuilds it with the cluster's objects as its `data.inventory`.
    pub gatekeeper: OnceLock<Arc<idp_policy::Swappable<idp_policy::rego::RegoPolicy>>>,
    /// The same set as the audit runs it (a Gatekeeper `Config`'s audit exclusions
    /// instead of its webhook ones), as it is in `audit_files`; rebuilt with it.
    pub gatekeeper_audit: OnceLock<Arc<idp_policy::Swappable<idp_policy::rego::RegoPolicy>>>,
    /// The Gatekeeper constraints the last sync read from the cluster
    /// (`policy.gatekeeperSync.fromCluster`), whose `status` the audit writes.
    gatekeeper_constraints: std::sync::Mutex<Vec<idp_policy::rego::cluster::ConstraintRef>>,
    /// `policy_files` as an audit of what runs applies them: the Kyverno
    /// ValidatingPolicies with `spec.evaluation.background.enabled: false` left out.
    pub audit_files: OnceLock<Vec<Arc<dyn idp_core::Policy>>>,
    /// The last periodic audit (`policy.audit`), for the metrics.
    pub last_audit: std::sync::Mutex<Option<AuditOutcome>>,
    /// How the policy syncs went, by engine. The server is not ready until each has
    /// taken effect once, so that the webhooks do not answer without the policies kept in
    /// the cluster.
    syncs: std::sync::Mutex<std::collections::BTreeMap<String, SyncOutcome>>,
    /// The cluster the server talks to.
    pub cluster: ClusterInfo,
    /// When the process started.
    pub started: Instant,
    /// The data directory (local repositories, generated secrets).
    pub data: PathBuf,
    /// The scaffolder, previews and admission, once installed.
    pub create: std::sync::OnceLock<Arc<crate::server::create::CreateArea>>,
    /// Deployments, rollbacks, promotions, DORA and cost (set by `start`).
    pub delivery: OnceLock<Arc<crate::server::deliver::Delivery>>,
}

impl AppState {
    /// A state over an empty catalog.
    pub fn new(policy: PolicyConfig, cluster: ClusterInfo, data: PathBuf) -> Self {
        let catalog = Arc::new(InMemoryCatalog::new().with_processor(UidProcessor));
        let snapshot = catalog.snapshot();
        let search = SearchIndex::build(&snapshot);
        Self {
            catalog,
            view: RwLock::new(Arc::new(View {
                snapshot,
                search,
                cache: crate::server::cache::ViewCache::default(),
            })),
            providers: Mutex::new(Vec::new()),
            locations: Mutex::new(Vec::new()),
            refresh_lock: tokio::sync::Mutex::new(()),
            ready: AtomicBool::new(false),
            metrics: Metrics::default(),
            policy,
            kyverno: OnceLock::new(),
            kyverno_validating: OnceLock::new(),
            policy_files: OnceLock::new(),
            gatekeeper: OnceLock::new(),
            gatekeeper_audit: OnceLock::new(),
            gatekeeper_constraints: std::sync::Mutex::new(Vec::new()),
            audit_files: OnceLock::new(),
            last_audit: std::sync::Mutex::new(None),
            syncs: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            gatekeeper_mutators: OnceLock::new(),
            cluster,
            started: Instant::now(),
            data,
            create: std::sync::OnceLock::new(),
            delivery: OnceLock::new(),
        }
    }

    /// The current consistent view.
    pub fn view(&self) -> Arc<View> {
        self.view
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether the first refresh has finished.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }

    /// Add a provider (read on every refresh).
    pub fn add_provider(&self, provider: Arc<dyn EntityProvider>) {
        self.providers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(provider);
    }

    /// Stop reading the provider called `name`.
    pub fn remove_provider(&self, name: &str) {
        self.providers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|p| p.name() != name);
    }

    /// Apply a mutation directly (generated entities, deletions), then publish a new view.
    pub fn apply(&self, provider: &str, mutation: Mutation) -> IngestReport {
        let report = self.catalog.apply(provider, mutation);
        self.publish();
        report
    }

    /// Read every provider and apply what it read, then publish a new view. Refreshes
    /// never overlap.
    pub async fn refresh(&self) -> idp_core::Result<Vec<IngestReport>> {
        let _guard = self.refresh_lock.lock().await;
        let providers: Vec<Arc<dyn EntityProvider>> = self
            .providers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut reports = Vec::new();
        let mut failure = None;
        // Publishing rebuilds the search index: skip it when nothing changed.
        let mut changed = !self.is_ready();
        for provider in providers {
            // Each entity is validated on the provider's reader threads as it is read.
            let stage = self.catalog.stage(provider.name());
            match provider.read_staged(&stage).await {
                Ok(out) => {
                    let mut report = self.catalog.commit(&stage, out.mutation);
                    changed |= !(report.added.is_empty()
                        && report.updated.is_empty()
                        && report.removed.is_empty());
                    report.rejected.splice(0..0, out.rejected);
                    for r in &report.rejected {
                        tracing::warn!(provider = provider.name(), "rejected: {r}");
                    }
                    reports.push(report);
                }
                Err(e) => {
                    tracing::warn!(provider = provider.name(), error = %e.report(), "catalog provider failed; keeping its previous entities");
                    failure = Some(e);
                }
            }
        }
        if changed {
            self.publish();
        }
        self.ready.store(true, Ordering::Release);
        match failure {
            Some(e) if reports.is_empty() => Err(e),
            _ => Ok(reports),
        }
    }

    fn publish(&self) {
        let snapshot = self.catalog.snapshot();
        let search = SearchIndex::build(&snapshot);
        let view = Arc::new(View {
            snapshot,
            search,
            cache: crate::server::cache::ViewCache::default(),
        });
        *self.view.write().unwrap_or_else(PoisonError::into_inner) = view;
    }
}

/// A stable, UUID-shaped id for an entity reference (Backstage's `metadata.uid`): the
/// same entity keeps its uid across refreshes and restarts.
pub fn uid_of(entity: &EntityRef) -> String {
    stable_id(&entity.key())
}

/// A UUID-shaped id derived from `text` (SHA-256).
pub fn stable_id(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let b = digest.as_ref();
    let hex: String = b[..16].iter().fold(String::new(), |mut acc, x| {
        let _ = write!(acc, "{x:02x}");
        acc
    });
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

fn ref_of_value(value: &Value) -> Option<EntityRef> {
    let kind = value.get("kind")?.as_str()?;
    let meta = value.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let namespace = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or("default");
    EntityRef::new(kind, namespace, name).ok()
}

/// Sets every entity's `metadata.uid` ([`uid_of`] its reference) before validation, on
/// whichever thread prepares the entity (the provider's readers during a refresh).
#[derive(Debug)]
struct UidProcessor;

impl EntityProcessor for UidProcessor {
    fn name(&self) -> &str {
        "uid"
    }

    fn pre_process(&self, entity: &mut Value, _location: Option<&str>) -> idp_core::Result<()> {
        if let Some(r) = ref_of_value(entity)
            && let Some(meta) = entity.get_mut("metadata").and_then(Value::as_object_mut)
        {
            meta.insert("uid".into(), Value::String(uid_of(&r)));
        }
        Ok(())
    }
}

/// Latency histogram bucket bounds, in seconds.
pub const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0];

/// Per-route request counts and latency histograms (Prometheus text at `/metrics`).
#[derive(Debug, Default)]
pub struct Metrics {
    routes: Mutex<HashMap<(String, String), RouteStats>>,
}

/// One route's numbers.
#[derive(Debug, Default, Clone)]
pub struct RouteStats {
    /// Requests by status code.
    pub by_status: HashMap<u16, u64>,
    /// Per-bucket counts, not cumulative: index `i` counts latencies up to `BUCKETS[i]`.
    pub buckets: [u64; BUCKETS.len()],
    /// Sum of latencies.
    pub sum_seconds: f64,
    /// Number of observations.
    pub count: u64,
}

impl Metrics {
    /// Record one request.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let secs = elapsed.as_secs_f64();
        let mut routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let stats = routes
            .entry((method.to_owned(), route.to_owned()))
            .or_default();
        *stats.by_status.entry(status).or_default() += 1;
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            stats.buckets[i] += 1;
        }
        stats.sum_seconds += secs;
        stats.count += 1;
    }

    /// A copy of every route's numbers, sorted by route.
    pub fn snapshot(&self) -> Vec<((String, String), RouteStats)> {
        let routes = self.routes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<_> = routes.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readiness_waits_for_each_awaited_sync_to_take_effect() {
        let state = AppState::new(
            crate::server::config::PolicyConfig::default(),
            ClusterInfo {
                label: "none".into(),
                simulated: true,
                client: kube::Client::try_from(kube::Config::new(
                    "http://127.0.0.1:1".parse().unwrap(),
                ))
                .unwrap(),
            },
            std::env::temp_dir(),
        );
        state.await_sync("kyverno");
        state.await_sync("gatekeeper");
        assert_eq!(state.syncs_awaited(), ["gatekeeper", "kyverno"]);
        // Awaited, not yet run.
        assert!(
            state
                .syncs()
                .iter()
                .all(|s| s.runs == 0 && s.last_run.is_none())
        );
        // A failed rebuild does not count.
        state.record_sync_failure("kyverno", &idp_core::Error::unavailable("no cluster"));
        assert_eq!(state.syncs_awaited(), ["gatekeeper", "kyverno"]);
        state.record_sync("kyverno", 3, &[]);
        assert_eq!(state.syncs_awaited(), ["gatekeeper"]);
        let syncs = state.syncs();
        let kyverno = syncs.iter().find(|s| s.engine == "kyverno").unwrap();
        assert_eq!((kyverno.runs, kyverno.failures, kyverno.loaded), (2, 1, 3));
        assert!(kyverno.error.is_none() && kyverno.last_success.is_some());
        state.record_sync("gatekeeper", 0, &[]);
        assert!(state.syncs_awaited().is_empty());
    }
}
