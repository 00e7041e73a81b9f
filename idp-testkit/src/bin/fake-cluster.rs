//! `fake-cluster`: the idp-testkit Kubernetes API server as a standalone process.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

/// Run an in-memory Kubernetes API server for tests and demos.
///
/// It speaks the real Kubernetes HTTP/JSON API on 127.0.0.1 (plain HTTP, no auth):
/// discovery, CRUD, server-side apply, watch, namespaces, finalizers, CRDs, and a rollout
/// simulator that marks Deployments ready (images ending in `:broken` never become ready).
/// State lives in memory and is gone when the process exits.
///
/// Example:
///   fake-cluster --port 0 --kubeconfig-out /tmp/fake.kubeconfig &
///   kubectl --kubeconfig /tmp/fake.kubeconfig create namespace demo
#[derive(Debug, Parser)]
#[command(name = "fake-cluster", version, verbatim_doc_comment)]
struct Args {
    /// Port to listen on (0 picks a free one; the chosen address is printed).
    #[arg(long, default_value_t = 0, env = "FAKE_CLUSTER_PORT")]
    port: u16,
    /// Write a kubeconfig for this server to PATH (use with `kubectl --kubeconfig PATH`).
    #[arg(long, value_name = "PATH")]
    kubeconfig_out: Option<PathBuf>,
    /// Seed for generated names, UIDs and fractional faults.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Milliseconds before a changed workload reports its rolled-out status.
    #[arg(long, default_value_t = 500, value_name = "MS")]
    rollout_delay_ms: u64,
    /// Disable the rollout simulator (workload status stays empty).
    #[arg(long)]
    no_rollout: bool,
    /// Images matching this glob never become ready.
    #[arg(long, default_value = "*:broken", value_name = "GLOB")]
    broken_image: String,
    /// Milliseconds a deleted namespace stays Terminating before its contents go.
    #[arg(long, default_value_t = 100, value_name = "MS")]
    namespace_deletion_delay_ms: u64,
    /// Extra namespaces to create at start (repeatable).
    #[arg(long = "namespace", value_name = "NAME")]
    namespaces: Vec<String>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let mut builder = idp_testkit::FakeCluster::builder()
        .port(args.port)
        .seed(args.seed)
        .rollout_simulation(!args.no_rollout)
        .rollout_delay(Duration::from_millis(args.rollout_delay_ms))
        .broken_image_pattern(&args.broken_image)
        .namespace_deletion_delay(Duration::from_millis(args.namespace_deletion_delay_ms));
    for ns in &args.namespaces {
        builder = builder.namespace(ns);
    }
    let cluster = match builder.start().await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {}", e.report());
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Some(path) = &args.kubeconfig_out {
        if let Err(e) = cluster.write_kubeconfig(path) {
            eprintln!("error: {}", e.report());
            return std::process::ExitCode::FAILURE;
        }
        eprintln!("kubeconfig written to {}", path.display());
    }
    println!("{}", cluster.url());
    eprintln!("fake-cluster serving at {} (Ctrl-C to stop)", cluster.url());
    let _ = tokio::signal::ctrl_c().await;
    cluster.shutdown().await;
    std::process::ExitCode::SUCCESS
}
