//! `idpctl preview up|down|list|reap`: preview environments against a cluster.
//!
//! Each subcommand has its clap `Args` struct and a `run_*` function, so the `preview`
//! command group can embed them. `--kubeconfig` uses the `NamespaceProvider` (a
//! namespace per preview) and deploys the manifests with server-side apply;
//! With `--kubeconfig` a preview is a namespace (idp-preview's `NamespaceProvider`) and
//! its workloads are applied to the cluster; with `--gitops-repo` it is a folder
//! `previews/<env>/` of the GitOps repository (`GitOpsEnvironmentProvider`) and its
//! manifests are committed under `previews/<env>/<component>/` by idp-deploy's
//! `GitOpsDeployer`, for Argo CD or Flux to sync.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use idp_core::cluster::{Applier, Cluster, Inventory, PruneOptions, wait_healthy};
use idp_core::ports::HistoryQuery;
use idp_core::{
    Deployer, Deployment, DeploymentId, DeploymentStatus, EntityRef, EnvironmentName, Release,
};
use idp_preview::controller::{ControllerConfig, PreviewController};
use idp_preview::decision::Decision;
use idp_preview::event::{Forge, PullRequestAction, PullRequestEvent};
use idp_preview::labels::{self, PreviewId};
use idp_preview::namespace::{NamespaceConfig, NamespaceProvider};
use idp_preview::reaper::{PullRequestLookup, Reaper, ReaperConfig};
use idp_preview::source::ManifestSource;
use idp_preview::status::{PreviewPhase, PreviewStatus};
use serde::Serialize;

use crate::output::{Color, Format, Out};
use crate::{ExitCode, Failure};

/// Where previews live: a cluster or a GitOps repository.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct Target {
    /// Kubeconfig of the cluster: a namespace per preview.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The GitOps repository (bare or a clone): a folder per preview, `previews/<env>/`.
    #[arg(long, value_name = "PATH")]
    pub gitops_repo: Option<PathBuf>,
}

/// How preview namespaces are reached.
#[derive(Debug, Clone, clap::Args)]
pub struct IngressArgs {
    /// Host of each preview's Ingress; `{env}`, `{namespace}` and `{pr}` are replaced.
    #[arg(long, value_name = "TEMPLATE")]
    pub host_template: Option<String>,
    /// The Service the Ingress routes to.
    #[arg(long, default_value = "web")]
    pub service: String,
    /// The Service port.
    #[arg(long, default_value_t = 80)]
    pub port: u16,
}

/// `preview up`: create or update the preview of one pull request.
#[derive(Debug, Clone, clap::Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub target: Target,
    /// The repository, `owner/name`.
    #[arg(long)]
    pub repo: String,
    /// The pull-request number.
    #[arg(long)]
    pub pr: u64,
    /// The head commit SHA to deploy.
    #[arg(long)]
    pub sha: String,
    /// Directory with the preview's manifests (*.yaml, *.yml, *.json).
    #[arg(long, value_name = "DIR")]
    pub manifests: PathBuf,
    /// Retag this image (`registry/name`, no tag) to the SHA (repeatable).
    #[arg(long = "image", value_name = "IMAGE")]
    pub images: Vec<String>,
    /// The environment name (default `pr-<repository name>-<pr>`).
    #[arg(long)]
    pub env: Option<String>,
    /// Time to live without activity: `90m`, `72h`, `7d`.
    #[arg(long, default_value = "72h")]
    pub ttl: String,
    /// How long to wait for the workloads to become healthy.
    #[arg(long, default_value = "5m")]
    pub timeout: String,
    #[command(flatten)]
    pub ingress: IngressArgs,
}

/// `preview down`: remove the preview of one pull request.
#[derive(Debug, Clone, clap::Args)]
pub struct DownArgs {
    #[command(flatten)]
    pub target: Target,
    /// The repository, `owner/name`.
    #[arg(long)]
    pub repo: String,
    /// The pull-request number.
    #[arg(long)]
    pub pr: u64,
    /// The environment name (default `pr-<repository name>-<pr>`).
    #[arg(long)]
    pub env: Option<String>,
}

/// `preview list`: the previews that exist.
#[derive(Debug, Clone, clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub ingress: IngressArgs,
}

/// `preview reap`: remove expired previews and those of closed pull requests.
#[derive(Debug, Clone, clap::Args)]
pub struct ReapArgs {
    #[command(flatten)]
    pub target: Target,
    /// Report what would be removed, remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// A pull request known to be closed, `owner/repo#N` (repeatable). Without a forge
    /// client, other pull requests count as open and only expiry applies to them.
    #[arg(long = "closed", value_name = "OWNER/REPO#N")]
    pub closed: Vec<String>,
    /// At most this many removals in this run.
    #[arg(long, default_value_t = 20)]
    pub max_deletions: usize,
}

/// The preview-environment commands (`idpctl preview up|down|list|reap`), flattened into
/// `idpctl preview`.
#[derive(Debug, clap::Subcommand)]
pub enum PreviewEnvCommand {
    /// Create or update the preview of a pull request and wait until it is ready.
    ///
    /// Creates the namespace (labels, ResourceQuota, LimitRange, NetworkPolicy, Ingress),
    /// applies the manifests with images retagged to the SHA, and waits for health.
    /// Exits 1 when the preview failed.
    #[command(
        after_help = "EXAMPLES:\n  idpctl preview up --kubeconfig ~/.kube/config --repo acme/cart --pr 42 --sha 9f1c2e7 \\\n      --manifests deploy/preview --image ghcr.io/acme/cart --host-template '{env}.preview.example.com'\n  idpctl preview up ... --format json   # {preview, environment, phase, headSha, urls, ...}"
    )]
    Up(UpArgs),
    /// Remove the preview of a pull request and wait until its namespace is gone.
    #[command(
        after_help = "EXAMPLES:\n  idpctl preview down --kubeconfig ~/.kube/config --repo acme/cart --pr 42"
    )]
    Down(DownArgs),
    /// List the previews (selected by label; namespaces not created by idp are never shown).
    #[command(
        after_help = "EXAMPLES:\n  idpctl preview list --kubeconfig ~/.kube/config\n  idpctl preview list --kubeconfig kc --format json   # [{environment, preview, headSha, url, expiresAt, ...}]"
    )]
    List(ListArgs),
    /// Remove expired previews and those of closed pull requests (rate-limited).
    #[command(
        after_help = "EXAMPLES:\n  idpctl preview reap --kubeconfig kc --dry-run\n  idpctl preview reap --kubeconfig kc --closed acme/cart#41 --max-deletions 5"
    )]
    Reap(ReapArgs),
}

/// Run one preview-environment command.
pub fn run(command: &PreviewEnvCommand, out: &Out) -> Result<ExitCode, Failure> {
    match command {
        PreviewEnvCommand::Up(args) => run_up(args, out),
        PreviewEnvCommand::Down(args) => run_down(args, out),
        PreviewEnvCommand::List(args) => run_list(args, out),
        PreviewEnvCommand::Reap(args) => run_reap(args, out),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(Failure::from)
}

/// `90s`, `90m`, `72h`, `7d` or plain seconds.
fn parse_duration(text: &str) -> Result<Duration, Failure> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => text.split_at(i),
        None => (text, "s"),
    };
    let n: u64 = number.parse().map_err(|_| {
        Failure::usage(format!(
            "invalid duration {text:?}: expected a number with s, m, h or d, like 72h"
        ))
    })?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => {
            return Err(Failure::usage(format!(
                "invalid duration {text:?}: the unit must be s, m, h or d"
            )));
        }
    };
    Ok(Duration::from_secs(secs))
}

fn env_name(repo: &str, pr: u64, env: Option<&str>) -> Result<EnvironmentName, Failure> {
    if let Some(env) = env {
        return EnvironmentName::new(env).map_err(|e| Failure::usage(e.report()));
    }
    // The same name the webhook planner gives this pull request.
    idp_preview::plan::environment_name(
        &idp_preview::plan::PreviewConfig::default().prefix,
        repo,
        pr,
    )
    .map_err(|e| Failure::usage(e.report()))
}

/// Where previews go: a provider for the environments and a deployer for what runs in
/// them.
struct Backend {
    provider: Arc<dyn idp_core::EnvironmentProvider>,
    deployer: Arc<dyn idp_core::Deployer>,
}

async fn backend(
    target: &Target,
    ingress: Option<&IngressArgs>,
    timeout: Duration,
) -> Result<Backend, Failure> {
    if let Some(path) = &target.gitops_repo {
        let repo = idp_core::git::GitRepo::open(path).await.map_err(|e| {
            Failure::usage(format!(
                "--gitops-repo {}: not a Git repository ({}); create one with `git init --bare {}`",
                path.display(),
                e.message(),
                path.display()
            ))
        })?;
        let branch = repo
            .head_branch()
            .await?
            .unwrap_or_else(|| "main".to_owned());
        let provider = idp_preview::gitops::GitOpsEnvironmentProvider::new(repo.clone(), &branch);
        let layout = idp_deploy::gitops::Layout::new(format!(
            "{}/{{env}}/{{component}}",
            idp_preview::gitops::DEFAULT_ROOT
        ))
        .map_err(|e| Failure::usage(e.report()))?;
        let deployer = idp_deploy::gitops::GitOpsDeployer::new(repo)
            .branch(branch)
            .layout(layout);
        return Ok(Backend {
            provider: Arc::new(provider),
            deployer: Arc::new(deployer),
        });
    }
    let cluster = cluster(target).await?;
    let config = ingress.map_or_else(NamespaceConfig::default, namespace_config);
    Ok(Backend {
        provider: Arc::new(NamespaceProvider::new(cluster.clone(), config)),
        deployer: Arc::new(ApplyDeployer { cluster, timeout }),
    })
}

async fn cluster(target: &Target) -> Result<Cluster, Failure> {
    let Some(path) = &target.kubeconfig else {
        return Err(Failure::usage(
            "give --kubeconfig FILE or --gitops-repo PATH",
        ));
    };
    let client = idp_core::cluster::client_from_kubeconfig(Some(path)).await?;
    Ok(Cluster::new(client))
}

fn namespace_config(ingress: &IngressArgs) -> NamespaceConfig {
    let mut config = NamespaceConfig::default();
    if let Some(template) = &ingress.host_template {
        config = config.with_ingress(template, &ingress.service, ingress.port);
    }
    config
}

fn print_status(status: &PreviewStatus, out: &Out) -> Result<ExitCode, Failure> {
    match out.format {
        Format::Json | Format::Yaml => out.data(status)?,
        Format::Table => {
            let phase = match status.phase {
                PreviewPhase::Failed => out.paint(status.phase.as_str(), Color::Red),
                _ => out.paint(status.phase.as_str(), Color::Green),
            };
            let env = status
                .environment
                .as_ref()
                .map_or("-", EnvironmentName::as_str);
            say!("{}  {env}  {phase}", status.preview);
            for url in &status.urls {
                say!("  {url}");
            }
            if let Some(message) = &status.message {
                say!("  {message}");
            }
        }
    }
    Ok(if status.phase == PreviewPhase::Failed {
        ExitCode::Findings
    } else {
        ExitCode::Ok
    })
}

/// `preview up`.
pub fn run_up(args: &UpArgs, out: &Out) -> Result<ExitCode, Failure> {
    let environment = env_name(&args.repo, args.pr, args.env.as_deref())?;
    let id = PreviewId::new(&args.repo, args.pr).map_err(|e| Failure::usage(e.report()))?;
    let ttl = parse_duration(&args.ttl)?;
    let timeout = parse_duration(&args.timeout)?;
    if !args.manifests.is_dir() {
        return Err(Failure::usage(format!(
            "--manifests {}: not a directory",
            args.manifests.display()
        )));
    }
    let rt = runtime()?;
    let status = rt.block_on(async {
        let backend = backend(&args.target, Some(&args.ingress), timeout).await?;
        let mut source = ManifestSource::from_dir(&args.manifests);
        for image in &args.images {
            source = source.with_image(image.clone());
        }
        let controller =
            PreviewController::new(backend.provider, backend.deployer, Arc::new(source))
                .with_config(ControllerConfig::default().with_ttl(ttl));
        controller.recover().await?;
        let event = PullRequestEvent::new(
            Forge::GitHub,
            PullRequestAction::Opened,
            id.repo(),
            id.number(),
        )
        .with_head("", args.sha.clone());
        Ok::<_, Failure>(
            controller
                .apply(&event, &Decision::Ensure { environment })
                .await?,
        )
    })?;
    print_status(&status, out)
}

/// `preview down`.
pub fn run_down(args: &DownArgs, out: &Out) -> Result<ExitCode, Failure> {
    let environment = env_name(&args.repo, args.pr, args.env.as_deref())?;
    let id = PreviewId::new(&args.repo, args.pr).map_err(|e| Failure::usage(e.report()))?;
    let rt = runtime()?;
    let status = rt.block_on(async {
        let backend = backend(&args.target, None, Duration::from_secs(60)).await?;
        let controller = PreviewController::new(
            backend.provider,
            backend.deployer,
            Arc::new(ManifestSource::from_set(idp_core::ManifestSet::new())),
        );
        let event = PullRequestEvent::new(
            Forge::GitHub,
            PullRequestAction::Closed { merged: false },
            id.repo(),
            id.number(),
        );
        let decision = Decision::Destroy {
            environment,
            reason: "idpctl preview down".into(),
        };
        Ok::<_, Failure>(controller.apply(&event, &decision).await?)
    })?;
    print_status(&status, out)
}

/// One row of `preview list`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ListRow {
    environment: String,
    namespace: Option<String>,
    preview: Option<String>,
    head_sha: Option<String>,
    url: Option<String>,
    created_at: Option<jiff::Timestamp>,
    expires_at: Option<jiff::Timestamp>,
}

/// `preview list`.
pub fn run_list(args: &ListArgs, out: &Out) -> Result<ExitCode, Failure> {
    let rt = runtime()?;
    let envs = rt.block_on(async {
        let backend = backend(&args.target, Some(&args.ingress), Duration::from_secs(60)).await?;
        Ok::<_, Failure>(backend.provider.list().await?)
    })?;
    let rows: Vec<ListRow> = envs
        .into_iter()
        .map(|e| ListRow {
            environment: e.name.to_string(),
            namespace: e.namespace,
            preview: e.labels.get(labels::PREVIEW_ID).cloned(),
            head_sha: e.labels.get(labels::HEAD_SHA).cloned(),
            url: e.url,
            created_at: e.created_at,
            expires_at: e.expires_at,
        })
        .collect();
    match out.format {
        Format::Json | Format::Yaml => out.data(&rows)?,
        Format::Table => {
            if rows.is_empty() {
                say!("no previews");
            }
            for r in &rows {
                let sha: String = r
                    .head_sha
                    .as_deref()
                    .unwrap_or("-")
                    .chars()
                    .take(12)
                    .collect();
                say!(
                    "{:<32} {:<28} {:<12} {}  expires {}",
                    r.environment,
                    r.preview.as_deref().unwrap_or("-"),
                    sha,
                    r.url.as_deref().unwrap_or("-"),
                    r.expires_at
                        .map_or_else(|| "never".to_owned(), |t| t.to_string()),
                );
            }
        }
    }
    Ok(ExitCode::Ok)
}

/// A lookup that knows only the pull requests given as closed; the rest count as open.
#[derive(Debug)]
struct ClosedList(BTreeSet<PreviewId>);

#[async_trait]
impl PullRequestLookup for ClosedList {
    async fn pull_request(
        &self,
        repo: &str,
        number: u64,
    ) -> idp_core::Result<Option<PullRequestEvent>> {
        let id = PreviewId::new(repo, number)?;
        let action = if self.0.contains(&id) {
            PullRequestAction::Closed { merged: false }
        } else {
            PullRequestAction::Opened
        };
        Ok(Some(PullRequestEvent::new(
            Forge::GitHub,
            action,
            repo,
            number,
        )))
    }
}

/// `preview reap`.
pub fn run_reap(args: &ReapArgs, out: &Out) -> Result<ExitCode, Failure> {
    let closed = args
        .closed
        .iter()
        .map(|c| {
            c.parse::<PreviewId>()
                .map_err(|e| Failure::usage(format!("--closed: {}", e.report())))
        })
        .collect::<Result<BTreeSet<_>, _>>()?;
    let rt = runtime()?;
    let report = rt.block_on(async {
        let backend = backend(&args.target, None, Duration::from_secs(60)).await?;
        let reaper = Reaper::new(backend.provider, Arc::new(ClosedList(closed))).with_config(
            ReaperConfig::default()
                .with_limits(args.max_deletions, args.max_deletions.max(60))
                .with_dry_run(args.dry_run),
        );
        Ok::<_, Failure>(reaper.sweep().await?)
    })?;
    match out.format {
        Format::Json | Format::Yaml => out.data(&report)?,
        Format::Table => {
            let verb = if report.dry_run {
                "would reap"
            } else {
                "reaped"
            };
            for r in &report.reaped {
                say!(
                    "{verb} {} ({}): {}",
                    r.environment,
                    r.preview.as_deref().unwrap_or("-"),
                    r.reason
                );
            }
            for r in &report.deferred {
                say!("deferred {} (rate limit): {}", r.environment, r.reason);
            }
            for f in &report.failed {
                say!(
                    "{} {}: {}",
                    out.paint("failed", Color::Red),
                    f.environment,
                    f.error
                );
            }
            say!(
                "{} examined, {} kept, {} {verb}, {} deferred",
                report.examined,
                report.kept,
                report.reaped.len(),
                report.deferred.len()
            );
        }
    }
    Ok(if report.failed.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Findings
    })
}

/// Applies a release with server-side apply and waits for health. A stand-in until the
/// `KubeDeployer` of idp-deploy is wired here; history is not kept between runs.
#[derive(Debug)]
struct ApplyDeployer {
    cluster: Cluster,
    timeout: Duration,
}

#[async_trait]
impl Deployer for ApplyDeployer {
    async fn deploy(&self, release: &Release) -> idp_core::Result<Deployment> {
        let namespace = release.environment.as_str();
        let inventory = idp_core::slugify(&format!("idp-release-{}", release.component.name()), 63);
        let applier = Applier::new(self.cluster.clone(), Inventory::new(namespace, &inventory)?)
            .with_default_namespace(namespace)
            .with_force(true);
        let report = applier.apply(&release.manifests).await?;
        applier
            .prune(
                &release.manifests,
                &PruneOptions::default().allow_empty(true),
            )
            .await?;
        wait_healthy(&self.cluster, &report.refs(), self.timeout).await?;
        let id = DeploymentId::new(format!("{namespace}-{}", release.created_at.as_second()));
        Ok(Deployment {
            revision: id.to_string(),
            id,
            component: release.component.clone(),
            environment: release.environment.clone(),
            source_revision: release.source_revision.clone(),
            author: release.author.clone(),
            message: release.message.clone(),
            status: DeploymentStatus::Succeeded,
            created_at: release.created_at,
        })
    }

    async fn history(&self, _: &HistoryQuery) -> idp_core::Result<Vec<Deployment>> {
        Ok(Vec::new())
    }

    async fn rollback(
        &self,
        c: &EntityRef,
        e: &EnvironmentName,
        to: &DeploymentId,
    ) -> idp_core::Result<Deployment> {
        Err(idp_core::Error::not_found(format!(
            "deployment {to} of {c} in {e}: idpctl keeps no deployment history"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert!(parse_duration("3w").is_err());
        assert!(parse_duration("h").is_err());
    }

    #[test]
    fn default_environment_names() {
        // The planner's names: prefix, repository slug, a short hash of the full
        // repository (so shop/cart and acme/cart differ), the number.
        let name = env_name("acme/Cart.UI", 42, None).unwrap();
        assert!(
            name.as_str().starts_with("pr-cart-ui-") && name.as_str().ends_with("-42"),
            "{name}"
        );
        assert_ne!(name, env_name("shop/Cart.UI", 42, None).unwrap());
        assert_eq!(
            env_name("acme/cart", 1, Some("mine")).unwrap().as_str(),
            "mine"
        );
        let long = env_name(&format!("a/{}", "x".repeat(100)), 7, None).unwrap();
        assert!(long.as_str().len() <= 63 && long.as_str().ends_with("-7"));
    }
}
