//! `idp-server`: a working internal developer platform out of the box.
//!
//! `cargo run -p idp-examples --bin idp-server` starts on <http://127.0.0.1:7007> with
//! embedded defaults: a data directory (`./.idp`) whose catalog Git repository is seeded
//! with a demo organisation, and, when no kubeconfig is found, an in-process simulated
//! cluster (idp-testkit's `FakeCluster`). The catalog API follows Backstage's, so
//! Backstage clients work against it; the portal at `/` is plain HTML.
//!
//! Where to start reading: [`serve`] wires everything; `routes/` holds one router per
//! area (catalog, search, policy, ops) and [`portal`] the HTML pages. To add an area
//! (deployments, scaffolder, previews, admission), give [`state::AppState`] its port and
//! merge a router in [`app`].

mod config;
mod error;
mod portal;
mod remote;
mod routes;
mod seed;
mod state;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use clap::{Parser, Subcommand};
use idp_catalog::provider::GitProvider;
use idp_catalog::{EntityInput, Mutation};
use idp_core::git::{GitRepo, InitOptions};
use remote::FetchingProvider;
use tokio::net::TcpListener;

use crate::config::{Config, DEFAULT_LISTEN, LogFormat};
use crate::state::{AppState, ClusterInfo};

/// idp's example platform server: Backstage-compatible catalog API, search, policy
/// checks and a portal, on embedded defaults or a config file.
#[derive(Debug, Parser)]
#[command(name = "idp-server", version, about, long_about = None)]
struct Cli {
    /// Listen on ADDR:PORT (default 127.0.0.1:7007; port 0 picks a free port).
    #[arg(long, value_name = "ADDR:PORT", global = true)]
    listen: Option<String>,
    /// Data directory (default ./.idp): holds the local catalog repository.
    #[arg(long, value_name = "DIR", global = true)]
    data: Option<PathBuf>,
    /// Configuration file (see `idp-server config-schema`).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// Log format; RUST_LOG filters (default info).
    #[arg(long, value_enum, global = true)]
    log_format: Option<LogFormat>,
    /// A kubeconfig file (default: $KUBECONFIG, then ~/.kube/config; none: simulated).
    #[arg(long, value_name = "FILE", global = true)]
    kubeconfig: Option<PathBuf>,
    /// Also load N generated entities (idp_catalog::generate) — for demos and benchmarks.
    #[arg(long, value_name = "N", global = true)]
    generate: Option<usize>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Print the JSON Schema of the config file.
    ConfigSchema,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::ConfigSchema)) {
        println!("{}", Config::schema_json());
        return std::process::ExitCode::SUCCESS;
    }
    let config = match &cli.config {
        Some(path) => match Config::load(path) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("idp-server: {}", e.report());
                return std::process::ExitCode::from(2);
            }
        },
        None => Config::default(),
    };
    init_tracing(cli.log_format.or(config.log_format).unwrap_or_default());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("idp-server: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(cli, config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{}", e.report());
            eprintln!("idp-server: {}", e.report());
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_current_span(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// Find a kubeconfig: the flag, the config file, `$KUBECONFIG`, `~/.kube/config`.
fn find_kubeconfig(cli: &Cli, config: &Config) -> Option<PathBuf> {
    let candidates = [
        cli.kubeconfig.clone(),
        config.kubeconfig.clone(),
        std::env::var_os("KUBECONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from),
        std::env::var_os("HOME").map(|h| Path::new(&h).join(".kube/config")),
    ];
    candidates.into_iter().flatten().find(|p| p.is_file())
}

/// The whole application router over `state`.
fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(routes::catalog::router())
        .merge(routes::search::router())
        .merge(routes::policy::router())
        .merge(routes::ops::router())
        .merge(portal::router())
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            error::layer,
        ))
        .with_state(state)
}

async fn serve(cli: Cli, config: Config) -> idp_core::Result<()> {
    let started = Instant::now();
    let listen = cli
        .listen
        .clone()
        .or_else(|| config.listen.clone())
        .unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
    let addr: SocketAddr = config::parse_listen(&listen)?;
    let data = cli
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
    let cluster = if let Some(path) = find_kubeconfig(&cli, &config) {
        tracing::info!(kubeconfig = %path.display(), "using the cluster from the kubeconfig");
        ClusterInfo {
            label: format!("cluster: {}", path.display()),
            simulated: false,
        }
    } else {
        let fake = idp_testkit::FakeCluster::start().await?;
        tracing::warn!(url = %fake.url(), "no kubeconfig found: running an in-process SIMULATED cluster (idp-testkit); pass --kubeconfig or set kubeconfig in idp.yaml for a real one");
        let info = ClusterInfo {
            label: format!("simulated cluster at {}", fake.url()),
            simulated: true,
        };
        simulated = Some(fake);
        info
    };

    let state = Arc::new(AppState::new(config.policy.clone(), cluster));

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
    if let Some(n) = cli.generate {
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
    tracing::info!(
        startup_ms = started.elapsed().as_millis() as u64,
        "idp-server listening on http://{bound}"
    );

    // Background work: the catalog refresh loop.
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let every = Duration::from_secs(config.catalog.refresh_seconds.max(1));
    let loop_state = state.clone();
    let refresher = tokio::spawn(async move {
        loop {
            tokio::select! {
                () = tokio::time::sleep(every) => {
                    if let Err(e) = loop_state.refresh().await {
                        tracing::warn!(error = %e.report(), "catalog refresh failed");
                    }
                }
                _ = stop_rx.changed() => break,
            }
        }
    });

    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await;
    let _ = stop_tx.send(true);
    let _ = refresher.await;
    if let Some(fake) = simulated {
        fake.shutdown().await;
    }
    tracing::info!("idp-server stopped");
    served.map_err(|e| idp_core::Error::internal("the HTTP server failed").with_source(e))
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
