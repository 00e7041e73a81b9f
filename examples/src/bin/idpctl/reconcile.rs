//! `idpctl reconcile`: converge a folder of a Git branch into a cluster (idp-deploy's
//! Reconciler) and print the status.

use std::path::PathBuf;
use std::time::Duration;

use idp_core::cluster::{Cluster, HealthStatus, Inventory};
use idp_deploy::reconcile::{GitSource, ReconcileStatus, Reconciler, SyncStatus};

use crate::output::{Color, Format, Out};
use crate::{ExitCode, Failure};

/// Converge a Git branch and folder into a Kubernetes cluster, like Flux's
/// kustomize-controller: fetch, render every *.yaml/*.yml/*.json, apply only what
/// changed (server-side apply), prune what left Git (never after an error, never to
/// empty), and report sync and health per object with the reason for anything out of
/// sync. Exits 0 when Synced and Healthy, 1 otherwise, 2 on usage or I/O errors.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "EXAMPLES:\n  idpctl reconcile --repo https://git.example/shop/deploy.git --branch main --path envs/prod --once\n  idpctl reconcile --repo ./deploy --path apps/web --kubeconfig kind.yaml --once --format json\n  idpctl reconcile --repo ./deploy --path apps/web --interval 30   # keep converging, print each change"
)]
pub struct Args {
    /// Git repository: a URL (file://, https://, ssh://) or a local path.
    #[arg(long, value_name = "URL_OR_PATH")]
    repo: String,
    /// Branch to follow.
    #[arg(long, default_value = "main")]
    branch: String,
    /// Folder in the repository holding the manifests.
    #[arg(long, default_value = ".")]
    path: String,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config or in-cluster).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Reconcile once and exit (default: keep reconciling until interrupted).
    #[arg(long)]
    once: bool,
    /// Seconds between fetches when not --once.
    #[arg(long, default_value_t = 60)]
    interval: u64,
    /// Namespace for objects that name none.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Name of the inventory that owns the applied objects (default: from --path).
    #[arg(long)]
    inventory: Option<String>,
    /// Report drift instead of reverting it.
    #[arg(long)]
    no_self_heal: bool,
    /// Let a source with no objects prune everything the inventory owns.
    #[arg(long)]
    allow_empty_prune: bool,
    /// Environment profile for Score workloads in the folder (replicas, resources, hosts;
    /// YAML). Files with `apiVersion: score.dev/v1b1` are rendered, all others applied
    /// as they are.
    #[arg(long, value_name = "FILE")]
    profile: Option<PathBuf>,
    /// Environment name Score workloads are rendered for (labels).
    #[arg(long, value_name = "ENV")]
    env: Option<String>,
    /// Image for Score containers whose image is `.`.
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
}

pub fn run(args: &Args, out: &Out) -> Result<ExitCode, Failure> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::io(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(run_async(args, out))
}

async fn client(kubeconfig: Option<&PathBuf>) -> Result<kube::Client, Failure> {
    Ok(idp_core::cluster::client_from_kubeconfig(kubeconfig.map(PathBuf::as_path)).await?)
}

async fn run_async(args: &Args, out: &Out) -> Result<ExitCode, Failure> {
    let client = client(args.kubeconfig.as_ref()).await?;
    let inventory_name = args.inventory.clone().unwrap_or_else(|| {
        let slug = idp_core::slugify(
            &format!("reconcile-{}", args.path.trim_matches(['.', '/'])),
            63,
        );
        slug.trim_end_matches('-').to_owned()
    });
    let inventory =
        Inventory::new(&args.namespace, &inventory_name).map_err(|e| Failure::usage(e.report()))?;
    let profile = match &args.profile {
        Some(path) => idp_deploy::workload::EnvironmentProfile::from_file(path)
            .map_err(|e| Failure::usage(format!("--profile {}: {}", path.display(), e.report())))?,
        None => idp_deploy::workload::EnvironmentProfile::default(),
    };
    let mut renderer =
        idp_deploy::reconcile::ScoreRenderer::new(profile).namespace(args.namespace.clone());
    if let Some(env) = &args.env {
        renderer = renderer.environment(env.clone());
    }
    if let Some(image) = &args.image {
        renderer = renderer.image(image.clone());
    }
    let reconciler = Reconciler::builder(
        Cluster::new(client),
        GitSource::new(args.repo.clone(), args.branch.clone(), args.path.clone()),
        inventory,
    )
    .renderer(std::sync::Arc::new(renderer))
    .default_namespace(args.namespace.clone())
    .interval(Duration::from_secs(args.interval.max(1)))
    .self_heal(!args.no_self_heal)
    .allow_empty_prune(args.allow_empty_prune)
    .build()?;
    if args.once {
        let progress = out.progress(&format!("reconciling {} into the cluster", args.path));
        let status = reconciler.reconcile_once().await;
        drop(progress);
        print(&status, out)?;
        return Ok(exit_code(&status));
    }
    let handle = reconciler.spawn();
    let mut statuses = handle.subscribe();
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            changed = statuses.changed() => {
                if changed.is_err() {
                    break;
                }
                let status = statuses.borrow_and_update().clone();
                print(&status, out)?;
            }
        }
    }
    let last = handle.status();
    handle.shutdown().await;
    Ok(exit_code(&last))
}

fn exit_code(status: &ReconcileStatus) -> ExitCode {
    if status.is_ready() && status.stalled.is_none() {
        ExitCode::Ok
    } else {
        ExitCode::Findings
    }
}

fn print(status: &ReconcileStatus, out: &Out) -> Result<(), Failure> {
    if out.format != Format::Table {
        out.data(status)?;
        return Ok(());
    }
    let sync = match status.sync {
        SyncStatus::Synced => out.paint("Synced", Color::Green),
        SyncStatus::OutOfSync => out.paint("OutOfSync", Color::Red),
        SyncStatus::Unknown => "Unknown".to_owned(),
    };
    let health = match status.health {
        HealthStatus::Healthy => out.paint("Healthy", Color::Green),
        HealthStatus::Degraded | HealthStatus::Missing => {
            out.paint(status.health.as_str(), Color::Red)
        }
        other => other.as_str().to_owned(),
    };
    say!(
        "revision {}  {sync}  {health}  writes {}",
        status.revision.as_deref().unwrap_or("-"),
        status.writes
    );
    if let Some(stalled) = &status.stalled {
        say!(
            "stalled: {}",
            serde_json::to_string(stalled).unwrap_or_default()
        );
    }
    let names: Vec<String> = status
        .objects
        .iter()
        .map(|o| o.object.to_string())
        .collect();
    let width = names.iter().map(String::len).max().unwrap_or(0).max(6);
    say!(
        "{:width$}  {:9}  {:11}  REASON",
        "OBJECT",
        "RESULT",
        "HEALTH"
    );
    for (o, name) in status.objects.iter().zip(&names) {
        let result = serde_json::to_value(o.result)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let health = o.health.as_ref().map_or("-", |h| h.status.as_str());
        let reason = o
            .reason
            .as_ref()
            .map(|r| serde_json::to_string(r).unwrap_or_default())
            .unwrap_or_default();
        say!("{name:width$}  {result:9}  {health:11}  {reason}");
    }
    Ok(())
}
