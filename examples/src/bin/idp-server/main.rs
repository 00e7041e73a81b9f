//! `idp-server`: a working internal developer platform out of the box.
//!
//! `cargo run -p idp-examples --bin idp-server` starts on <http://127.0.0.1:7007> with
//! embedded defaults: a data directory (`./.idp`) whose catalog Git repository is seeded
//! with a demo organisation, and, when no kubeconfig is found, an in-process simulated
//! cluster (idp-testkit's `FakeCluster`).
//!
//! This file is only the command line: flags, logging, the runtime and signals. The server
//! itself is the library module `idp_examples::server` (examples/src/server/), so tests
//! and other binaries can start it in-process.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use idp_examples::server::config::{Config, LogFormat};
use idp_examples::server::{ServerOptions, start};

/// mimalloc, not glibc malloc: catalog ingest frees on one thread what it parsed on another,
/// which glibc handles slowly and with 10x the RSS (see idp-catalog's README, Performance).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let telemetry = init_tracing(cli.log_format.or(config.log_format).unwrap_or_default());
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
    let code = match runtime.block_on(serve(cli, config)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{}", e.report());
            eprintln!("idp-server: {}", e.report());
            std::process::ExitCode::FAILURE
        }
    };
    telemetry.shutdown();
    code
}

/// What logging holds on to until exit: the OTLP exporter (feature `otel`), which must be
/// flushed.
#[derive(Debug, Default)]
struct Telemetry {
    #[cfg(feature = "otel")]
    otel: Option<idp_examples::server::otel::OtelGuard>,
}

impl Telemetry {
    /// Flush what is still buffered (the last spans) before the process exits.
    #[cfg_attr(
        not(feature = "otel"),
        allow(clippy::unused_self, clippy::needless_pass_by_value)
    )]
    fn shutdown(self) {
        #[cfg(feature = "otel")]
        if let Some(guard) = self.otel
            && let Err(e) = guard.shutdown()
        {
            eprintln!("idp-server: {}", e.report());
        }
    }
}

/// Logging on stderr, filtered by `RUST_LOG` (default `info`), as text or one JSON object
/// per line; with the `otel` feature and `OTEL_EXPORTER_OTLP_ENDPOINT` set, the spans also
/// go to an OTLP collector.
fn init_tracing(format: LogFormat) -> Telemetry {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let (json, text) = match format {
        LogFormat::Json => (
            Some(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_writer(std::io::stderr),
            ),
            None,
        ),
        LogFormat::Text => (
            None,
            Some(
                tracing_subscriber::fmt::layer()
                    .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                    .with_writer(std::io::stderr),
            ),
        ),
    };
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(json)
        .with(text);
    #[cfg(feature = "otel")]
    match idp_examples::server::otel::layer() {
        Ok(Some((layer, guard))) => {
            registry.with(layer).init();
            tracing::info!(
                endpoint = guard.endpoint(),
                "exporting traces over OTLP (service.name idp-server)"
            );
            return Telemetry { otel: Some(guard) };
        }
        Ok(None) => {}
        Err(e) => eprintln!(
            "idp-server: {}; continuing without trace export",
            e.report()
        ),
    }
    registry.init();
    Telemetry::default()
}

async fn serve(cli: Cli, config: Config) -> idp_core::Result<()> {
    // Listen for signals before the server accepts anything, so a SIGTERM that arrives
    // during startup or right after it still shuts down gracefully.
    let signal = shutdown_signal();
    let server = start(ServerOptions {
        config,
        listen: cli.listen,
        data: cli.data,
        kubeconfig: cli.kubeconfig,
        simulated_cluster: false,
        generate: cli.generate,
    })
    .await?;
    signal.await;
    tracing::info!("signal received: shutting down");
    server.shutdown().await
}

/// Registers the Ctrl-C and SIGTERM handlers now; the returned future resolves on either.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()).ok(),
            signal(SignalKind::terminate()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            let (mut interrupt, mut terminate) = handlers;
            let interrupt = async {
                match interrupt.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            let terminate = async {
                match terminate.as_mut() {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = interrupt => {},
                () = terminate => {},
            }
        }
        #[cfg(not(unix))]
        {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}
