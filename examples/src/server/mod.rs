//! `idp-server` as a library: everything the binary runs, startable in-process.
//!
//! The binary (`cargo run -p idp-examples --bin idp-server`) parses flags, sets up logging
//! and calls [`start`]; tests and other binaries call [`start`] directly and get a
//! [`RunningServer`] with its bound address.
//!
//! With embedded defaults the server keeps a data directory (`./.idp`) whose catalog Git
//! repository is seeded with a demo organisation, and, when no kubeconfig is found, runs an
//! in-process simulated cluster (idp-testkit's `FakeCluster`). The catalog API follows
//! Backstage's, so Backstage clients work against it; the portal at `/` is plain HTML.
//!
//! Where to start reading: [`start`] wires everything; `routes/` holds one router per area
//! (catalog, search, policy, ops) and `portal` the HTML pages. To add an area, give
//! `state::AppState` its port and merge a router in `app`.

mod audit;
mod cache;
pub mod config;
mod create;
mod deliver;
mod error;
mod gatekeeper_sync;
mod kyverno_sync;
#[cfg(feature = "otel")]
pub mod otel;
mod portal;
mod portal_create;
mod portal_deliver;
mod previews;
mod remote;
mod routes;
mod scaffolder;
mod seed;
mod state;
mod templates;
mod tls;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use idp_catalog::provider::GitProvider;
use idp_catalog::{EntityInput, Mutation};
use idp_core::git::{GitRepo, InitOptions};
use remote::FetchingProvider;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use config::Config;
use config::DEFAULT_LISTEN;
use state::{AppState, ClusterInfo};

/// What to start: the config file's settings plus the command line's overrides.
///
/// ```
/// use idp_examples::server::{Config, ServerOptions};
///
/// let options = ServerOptions {
///     listen: Some("127.0.0.1:0".into()),
///     data: Some(std::env::temp_dir().join("idp-doc")),
///     ..ServerOptions::new(Config::default())
/// };
/// assert!(options.kubeconfig.is_none());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// The configuration file's content ([`Config::default`] for embedded defaults).
    pub config: Config,
    /// `ADDR:PORT` to listen on; wins over the config (default `127.0.0.1:7007`).
    pub listen: Option<String>,
    /// The data directory; wins over the config (default `./.idp`).
    pub data: Option<PathBuf>,
    /// A kubeconfig file; wins over the config. Without any (nor `$KUBECONFIG`,
    /// `~/.kube/config`) the cluster is simulated in-process.
    pub kubeconfig: Option<PathBuf>,
    /// Never look for a kubeconfig: always run the simulated cluster (tests use this).
    pub simulated_cluster: bool,
    /// Also load this many generated entities (demos and benchmarks).
    pub generate: Option<usize>,
}

impl ServerOptions {
    /// Options from a config with no command-line overrides.
    ///
    /// ```
    /// use idp_examples::server::{Config, ServerOptions};
    /// let options = ServerOptions::new(Config::default());
    /// assert!(options.listen.is_none());
    /// ```
    #[must_use]
    pub fn new(config: Config) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }
}

/// A started server: its address, and the handle that stops it.
///
/// ```no_run
/// # async fn demo() -> idp_core::Result<()> {
/// use idp_examples::server::{Config, ServerOptions, start};
///
/// let server = start(ServerOptions {
///     listen: Some("127.0.0.1:0".into()),
///     data: Some("/tmp/idp-demo".into()),
///     simulated_cluster: true,
///     ..ServerOptions::new(Config::default())
/// })
/// .await?;
/// println!("portal at {}", server.url());
/// server.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<idp_core::Result<()>>,
    startup: Duration,
    simulated_kubeconfig: Option<PathBuf>,
    tls_addr: Option<SocketAddr>,
}

impl RunningServer {
    /// The bound address (the real port when `:0` was asked for).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The bound HTTPS address, when `tls` is configured.
    #[must_use]
    pub fn tls_addr(&self) -> Option<SocketAddr> {
        self.tls_addr
    }

    /// `http://ADDR:PORT`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How long [`start`] took, from its call to accepting connections.
    #[must_use]
    pub fn startup(&self) -> Duration {
        self.startup
    }

    /// The kubeconfig file of the in-process simulated cluster (`<data>/simulated.kubeconfig`),
    /// when the server runs one: `kubectl --kubeconfig` it to look inside.
    #[must_use]
    pub fn simulated_kubeconfig(&self) -> Option<&Path> {
        self.simulated_kubeconfig.as_deref()
    }

    /// Stop gracefully: stop accepting, finish in-flight requests and background work,
    /// then release what the server holds (the simulated cluster, leader leases).
    ///
    /// # Errors
    /// What the server task failed with, if it failed.
    pub async fn shutdown(self) -> idp_core::Result<()> {
        let _ = self.stop.send(true);
        self.wait().await
    }

    /// Wait until the server stops (after [`RunningServer::shutdown`] from elsewhere, or
    /// a failure).
    ///
    /// # Errors
    /// What the server task failed with.
    pub async fn wait(self) -> idp_core::Result<()> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(idp_core::Error::internal("the server task panicked").with_source(e)),
        }
    }
}

/// Find a kubeconfig: the option, the config file, `$KUBECONFIG`, `~/.kube/config`.
fn find_kubeconfig(options: &ServerOptions) -> Option<PathBuf> {
    if options.simulated_cluster {
        return None;
    }
    let candidates = [
        options.kubeconfig.clone(),
        options.config.kubeconfig.clone(),
        std::env::var_os("KUBECONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        std::env::var_os("HOME").map(|h| Path::new(&h).join(".kube/config")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

/// Inside a Kubernetes pod (`KUBERNETES_SERVICE_HOST` set, no kubeconfig found): a client
/// from the pod's service account.
fn in_cluster_client(options: &ServerOptions) -> idp_core::Result<Option<kube::Client>> {
    if options.simulated_cluster || std::env::var_os("KUBERNETES_SERVICE_HOST").is_none() {
        return Ok(None);
    }
    let mut config = kube::Config::incluster().map_err(|e| {
        idp_core::Error::unavailable(
            "KUBERNETES_SERVICE_HOST is set but the in-cluster config is unusable (is a service account token mounted?)",
        )
        .with_source(e)
    })?;
    // Retries are the `Cluster`'s policy's (see `idp_core::cluster::client_from_kubeconfig`).
    config.default_retry = false;
    kube::Client::try_from(config).map(Some).map_err(|e| {
        idp_core::Error::unavailable("cannot build the in-cluster Kubernetes client").with_source(e)
    })
}

/// Run `tick` now and every `every` after it finishes, until `stop` turns true (a tick
/// under way when it does is dropped): the loop of the periodic audit and of the
/// Gatekeeper sync.
pub(crate) fn periodically<F, Fut>(
    every: Duration,
    mut stop: watch::Receiver<bool>,
    mut tick: F,
) -> JoinHandle<()>
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tick() => {}
                _ = stop.wait_for(|s| *s) => break,
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
    })
}

/// Run `work` to its end on the runtime's blocking pool and hand back its output: a
/// check of many objects against Rego, CEL or Kyverno policies takes the CPU for long
/// stretches, which must not hold up the workers answering requests (the admission
/// webhooks among them). The async calls inside `work` (listing the cluster) still go
/// through the runtime, from that thread. A panic inside is an error here.
pub(crate) async fn on_blocking_pool<T: Send + 'static>(
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> idp_core::Result<T> {
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(work))
        .await
        .map_err(|e| idp_core::Error::internal("a policy check failed").with_source(e))
}

/// The whole application router over `state`.
fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(routes::catalog::router())
        .merge(routes::search::router())
        .merge(routes::policy::router())
        .merge(routes::deliver::router())
        .merge(routes::ops::router())
        .merge(routes::scaffolder::router())
        .merge(routes::previews::router())
        .merge(routes::admission::router())
        .merge(portal::router())
        .merge(portal_create::router())
        .merge(portal_deliver::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            error::layer,
        ))
        .with_state(state)
}

/// Start the server: prepare the data directory, the catalog and the cluster, bind the
/// listener, start the background work, and serve until [`RunningServer::shutdown`].
///
/// # Errors
/// An unusable data directory or listen address, an unreachable catalog remote, or a
/// simulated cluster that cannot start. Each error says what to change.
pub async fn start(options: ServerOptions) -> idp_core::Result<RunningServer> {
    let started = Instant::now();
    let config = options.config.clone();
    let listen = options
        .listen
        .clone()
        .or_else(|| config.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let addr: SocketAddr = config::parse_listen(&listen)?;
    let data = options
        .data
        .clone()
        .or_else(|| config.data_dir.clone())
        .unwrap_or_else(|| PathBuf::from(".idp"));
    std::fs::create_dir_all(&data).map_err(|e| {
        idp_core::Error::invalid_input(format!(
            "cannot create the data directory {}; pass --data DIR",
            data.display()
        ))
        .with_source(e)
    })?;

    // The cluster: a real one from a kubeconfig, or a simulated one in-process.
    let mut simulated = None;
    let mut simulated_kubeconfig = None;
    let cluster = if let Some(path) = find_kubeconfig(&options) {
        tracing::info!(kubeconfig = %path.display(), "using the cluster from the kubeconfig");
        ClusterInfo {
            label: format!("cluster: {}", path.display()),
            simulated: false,
            client: idp_core::cluster::client_from_kubeconfig(Some(&path)).await?,
        }
    } else if let Some(client) = in_cluster_client(&options)? {
        tracing::info!("using the cluster this pod runs in (service account)");
        ClusterInfo {
            label: "in-cluster (service account)".to_owned(),
            simulated: false,
            client,
        }
    } else {
        let fake = idp_testkit::FakeCluster::start().await?;
        tracing::warn!(url = %fake.url(), "no kubeconfig found: running an in-process SIMULATED cluster (idp-testkit); pass --kubeconfig or set kubeconfig in idp.yaml for a real one");
        let info = ClusterInfo {
            label: format!("simulated cluster at {}", fake.url()),
            simulated: true,
            client: fake.client(),
        };
        let kubeconfig = data.join("simulated.kubeconfig");
        match fake.write_kubeconfig(&kubeconfig) {
            Ok(()) => {
                tracing::info!(kubeconfig = %kubeconfig.display(), "kubectl reaches the simulated cluster with --kubeconfig {}", kubeconfig.display());
                simulated_kubeconfig = Some(kubeconfig);
            }
            Err(e) => {
                tracing::warn!(error = %e.report(), "cannot write the simulated cluster's kubeconfig");
            }
        }
        simulated = Some(fake);
        info
    };

    let state = Arc::new(AppState::new(config.policy.clone(), cluster, data.clone()));
    let kyverno_plan = config
        .policy
        .kyverno_sync
        .as_ref()
        .map(|sync| kyverno_sync::plan(sync, &config.policy.kyverno))
        .transpose()?;
    if !config.policy.kyverno.is_empty() || kyverno_plan.is_some() {
        let kyverno = kyverno_sync::load_files(&config.policy.kyverno)?;
        tracing::info!(rules = kyverno.rules().len(), "Kyverno policies loaded");
        // Shared as one Swappable, which `policy.kyvernoSync` replaces for every holder.
        let _ = state
            .kyverno
            .set(Arc::new(idp_policy::Swappable::new("kyverno", kyverno)));
    }
    let gatekeeper_from_cluster = config
        .policy
        .gatekeeper_sync
        .as_ref()
        .is_some_and(|s| s.from_cluster);
    let mut mutators = None;
    if !config.policy.gatekeeper_mutators.is_empty() || gatekeeper_from_cluster {
        let loaded = gatekeeper_sync::load_mutator_files(&config.policy.gatekeeper_mutators)?;
        tracing::info!(
            mutators = loaded.mutators().len(),
            "Gatekeeper mutators loaded"
        );
        mutators = Some(loaded);
    }
    let files = load_policy_files(&config.policy, &state)?;
    if let Some(mut mutators) = mutators {
        // A Gatekeeper Config among the policy.gatekeeper files also tells the
        // mutation webhook which namespaces to leave alone.
        if let Some(gatekeeper_config) = &files.gatekeeper_config {
            mutators.use_config(gatekeeper_config.clone());
        }
        // Shared as one Swappable, which the Gatekeeper sync replaces when it reads the
        // mutators kept in the cluster.
        let _ = state
            .gatekeeper_mutators
            .set(Arc::new(idp_policy::Swappable::new("gatekeeper", mutators)));
    }
    let _ = state.policy_files.set(files.all);
    let _ = state.audit_files.set(files.audit);
    let mut audit_plan = config.policy.audit.as_ref().map(audit::plan).transpose()?;
    if let (Some(audit), Some(sync)) = (&mut audit_plan, &kyverno_plan)
        && sync.reads_cluster()
    {
        // The synced set holds the cluster's Kyverno policies already.
        audit.use_synced_kyverno();
    }
    let sync_plan = files
        .sync
        .then(|| {
            gatekeeper_sync::plan(
                &config.policy.gatekeeper_sync.clone().unwrap_or_default(),
                &config.policy.gatekeeper,
                &config.policy.gatekeeper_mutators,
                files
                    .gatekeeper_config
                    .as_ref()
                    .map_or(&[][..], |c| c.sync_only()),
            )
        })
        .transpose()?;
    let delivery = Arc::new(
        deliver::Delivery::open(
            &config.deliver,
            &data,
            state.cluster.client.clone(),
            (
                data.join(if config.catalog.remote.is_some() {
                    "catalog-mirror.git"
                } else {
                    "catalog.git"
                }),
                config.catalog.branch.clone(),
            ),
            &deliver::LoadedPolicies {
                kyverno: state.kyverno.get().cloned(),
                gatekeeper_mutators: state.gatekeeper_mutators.get().cloned(),
                files: state.policy_files.get().cloned().unwrap_or_default(),
            },
        )
        .await?,
    );
    let _ = state.delivery.set(delivery.clone());

    // The catalog: a Git remote from the config, or the seeded local repository.
    let branch = config.catalog.branch.clone();
    if let Some(remote) = &config.catalog.remote {
        let mirror =
            GitRepo::init(data.join("catalog-mirror.git"), InitOptions::bare(&branch)).await?;
        let inner =
            GitProvider::new("catalog", mirror.clone(), &branch).with_glob(&config.catalog.glob);
        tracing::info!(%remote, %branch, "reading the catalog from a Git remote");
        state.add_provider(Arc::new(FetchingProvider::new(
            inner,
            mirror,
            remote.clone(),
            branch.clone(),
        )));
    } else {
        let repo = seed::ensure_repo(&data.join("catalog.git"), &branch).await?;
        tracing::info!(repo = %repo.path().display(), %branch, "reading the catalog from the local repository");
        state.add_provider(Arc::new(
            GitProvider::new("catalog", repo, &branch).with_glob(&config.catalog.glob),
        ));
    }
    create::install(&state, &config).await?;
    if let Some(n) = options.generate {
        let inputs: Vec<EntityInput> = idp_catalog::generate::org(n, 42)
            .into_iter()
            .map(EntityInput::from)
            .collect();
        let report = state.apply("generated", Mutation::Full(inputs));
        tracing::info!(
            added = report.added.len(),
            rejected = report.rejected.len(),
            "loaded generated entities"
        );
    }
    match state.refresh().await {
        Ok(reports) => {
            let rejected: usize = reports.iter().map(|r| r.rejected.len()).sum();
            tracing::info!(
                entities = state.view().snapshot.len(),
                rejected,
                "catalog loaded"
            );
        }
        Err(e) => {
            tracing::warn!(error = %e.report(), "the first catalog refresh failed; serving an empty catalog and retrying");
        }
    }

    let listener = TcpListener::bind(addr).await.map_err(|e| {
        idp_core::Error::unavailable(format!(
            "cannot listen on {addr}; is another server running? pass --listen ADDR:PORT (port 0 picks a free one)"
        ))
        .with_source(e)
    })?;
    let bound = listener
        .local_addr()
        .map_err(|e| idp_core::Error::internal("cannot read the bound address").with_source(e))?;
    let startup = started.elapsed();
    tracing::info!(
        startup_ms = u64::try_from(startup.as_millis()).unwrap_or(u64::MAX),
        "idp-server listening on http://{bound}"
    );

    // Background work: the catalog refresh loop.
    let (stop_tx, stop_rx) = watch::channel(false);
    let every = Duration::from_secs(config.catalog.refresh_seconds.max(1));
    let loop_state = state.clone();
    let mut refresh_stop = stop_rx.clone();
    let refresher = tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {
                    if let Err(e) = loop_state.refresh().await {
                        tracing::warn!(error = %e.report(), "catalog refresh failed");
                    }
                }
                _ = refresh_stop.changed() => break,
            }
        }
    });

    // The HTTPS listener, when configured: the same API, for callers that only speak
    // TLS (the API server calling the admission webhooks).
    let mut tls_addr = None;
    let mut tls_server = None;
    if let Some(tls) = &config.tls {
        let listener = tls::TlsListener::bind(tls).await?;
        tls_addr = Some(listener.local());
        tracing::info!("idp-server listening on https://{}", listener.local());
        let mut stop = stop_rx.clone();
        let router = app(state.clone());
        tls_server = Some(tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                })
                .await
        }));
    }

    let auditor = audit_plan.map(|plan| audit::spawn(state.clone(), plan, stop_rx.clone()));
    // Not ready until each sync has taken effect once.
    if let Some(plan) = &sync_plan {
        state.await_sync("gatekeeper");
        if plan.reads_cluster() && state.gatekeeper_mutators.get().is_some() {
            state.await_sync("gatekeeper-mutation");
        }
    }
    if kyverno_plan.is_some() {
        state.await_sync("kyverno");
    }
    let syncer =
        sync_plan.and_then(|plan| gatekeeper_sync::spawn(state.clone(), plan, stop_rx.clone()));
    let kyverno_syncer =
        kyverno_plan.and_then(|plan| kyverno_sync::spawn(state.clone(), plan, stop_rx.clone()));
    let create_background = create::spawn_background(&state, stop_rx.clone());
    let mut serve_stop = stop_rx;
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app(state))
            .with_graceful_shutdown(async move {
                let _ = serve_stop.wait_for(|stop| *stop).await;
                tracing::info!("shutting down: finishing in-flight requests");
            })
            .await;
        if let Some(tls) = tls_server
            && let Ok(Err(e)) = tls.await
        {
            tracing::warn!(error = %e, "the HTTPS listener failed");
        }
        let _ = refresher.await;
        if let Some(auditor) = auditor {
            let _ = auditor.await;
        }
        if let Some(syncer) = syncer {
            let _ = syncer.await;
        }
        if let Some(syncer) = kyverno_syncer {
            let _ = syncer.await;
        }
        let _ = create_background.await;
        delivery.shutdown().await;
        if let Some(fake) = simulated {
            fake.shutdown().await;
        }
        tracing::info!("idp-server stopped");
        served.map_err(|e| idp_core::Error::internal("the HTTP server failed").with_source(e))
    });
    Ok(RunningServer {
        addr: bound,
        stop: stop_tx,
        task,
        startup,
        simulated_kubeconfig,
        tls_addr,
    })
}

/// The text of a policy file named in `idp.yaml` (`field` says where).
fn read_policy_file(field: &str, path: &std::path::Path) -> idp_core::Result<String> {
    std::fs::read_to_string(path).map_err(|e| {
        idp_core::Error::invalid_input(format!("{field}: cannot read {}: {e}", path.display()))
    })
}

/// The policies of `policy.gatekeeper` (one set), `policy.rego` (one policy per module)
/// and `policy.admissionPolicies` (one set, last), and the same as an audit of what
/// runs applies them. An error names the field and the file. When the Gatekeeper set is
/// to be synced (`policy.gatekeeperSync`, or a `Config` among its files naming
/// `syncOnly` kinds), both of its forms are put in `state`'s slots for the sync to
/// replace.
fn load_policy_files(
    config: &config::PolicyConfig,
    state: &AppState,
) -> idp_core::Result<PolicyFiles> {
    let mut out: Vec<Arc<dyn idp_core::Policy>> = Vec::new();
    let mut audit: Vec<Arc<dyn idp_core::Policy>> = Vec::new();
    let mut gatekeeper_config = None;
    let mut sync = false;
    let from_cluster = config
        .gatekeeper_sync
        .as_ref()
        .is_some_and(|s| s.from_cluster);
    if !config.gatekeeper.is_empty() || from_cluster {
        let mut gatekeeper = idp_policy::rego::RegoPolicy::new("gatekeeper");
        for path in &config.gatekeeper {
            let text = read_policy_file("policy.gatekeeper", path)?;
            gatekeeper = gatekeeper
                .with_gatekeeper_yaml(&text, Some(path))
                .map_err(|e| e.context(format_args!("policy.gatekeeper: {}", path.display())))?;
        }
        tracing::info!(
            constraints = gatekeeper.constraints().len(),
            config = gatekeeper.gatekeeper_config().is_some(),
            "Gatekeeper constraints loaded"
        );
        gatekeeper_config = gatekeeper.gatekeeper_config().cloned();
        sync = config.gatekeeper_sync.is_some()
            || gatekeeper_config
                .as_ref()
                .is_some_and(|c| !c.sync_only().is_empty());
        let audited = gatekeeper.clone().for_audit();
        if sync {
            // Rebuilt with the cluster's objects by the sync; every holder sees the new one.
            let shared = Arc::new(idp_policy::Swappable::new("gatekeeper", gatekeeper));
            let shared_audit = Arc::new(idp_policy::Swappable::new("gatekeeper", audited));
            let _ = state.gatekeeper.set(shared.clone());
            let _ = state.gatekeeper_audit.set(shared_audit.clone());
            out.push(shared);
            audit.push(shared_audit);
        } else {
            out.push(Arc::new(gatekeeper));
            audit.push(Arc::new(audited));
        }
    } else if config.gatekeeper_sync.is_some() {
        return Err(idp_core::Error::invalid_input(
            "policy.gatekeeperSync: there are no policy.gatekeeper files whose templates could read the objects; list them, set fromCluster to read the templates kept in the cluster, or remove gatekeeperSync",
        ));
    }
    for path in &config.rego {
        let text = read_policy_file("policy.rego", path)?;
        let name = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        let mut rego = idp_policy::rego::RegoPolicy::new(name);
        rego.add_module(&path.display().to_string(), &text)
            .map_err(|e| e.context(format_args!("policy.rego: {}", path.display())))?;
        let rego: Arc<dyn idp_core::Policy> = Arc::new(rego);
        out.push(rego.clone());
        audit.push(rego);
    }
    if !config.admission_policies.is_empty() {
        let mut cel = idp_policy::cel::CelPolicy::new("admission-policies");
        for path in &config.admission_policies {
            let text = read_policy_file("policy.admissionPolicies", path)?;
            cel.add_yaml(&text, Some(path)).map_err(|e| {
                e.context(format_args!("policy.admissionPolicies: {}", path.display()))
            })?;
        }
        tracing::info!(
            policies = cel.policies().len(),
            bindings = cel.bindings().len(),
            exceptions = cel.exceptions().len(),
            "ValidatingAdmissionPolicies loaded"
        );
        // The audit's: as background scans apply them.
        audit.push(Arc::new(cel.clone().for_background()));
        out.push(Arc::new(cel));
    }
    if config.kyverno_sync.as_ref().is_some_and(|s| s.from_cluster) {
        // Kyverno's CEL ValidatingPolicies kept in the cluster: filled and replaced by
        // the Kyverno sync, as the webhook runs them and as the audit does.
        let name = kyverno_sync::VALIDATING_POLICIES;
        let webhook = Arc::new(idp_policy::Swappable::new(
            name,
            idp_policy::cel::CelPolicy::new(name),
        ));
        let background = Arc::new(idp_policy::Swappable::new(
            name,
            idp_policy::cel::CelPolicy::new(name).for_background(),
        ));
        out.push(webhook.clone());
        audit.push(background.clone());
        let _ = state.kyverno_validating.set([webhook, background]);
    }
    Ok(PolicyFiles {
        all: out,
        audit,
        gatekeeper_config,
        sync,
    })
}

/// What [`load_policy_files`] loads: the policies, and the same as an audit of what
/// runs applies them.
struct PolicyFiles {
    all: Vec<Arc<dyn idp_core::Policy>>,
    audit: Vec<Arc<dyn idp_core::Policy>>,
    /// The Gatekeeper `Config` among the `policy.gatekeeper` files.
    gatekeeper_config: Option<idp_policy::gatekeeper::config::GatekeeperConfig>,
    /// Whether the Gatekeeper set is synced with the cluster.
    sync: bool,
}
