//! `idpctl deploy | history | rollback | promote`: GitOps deployment with idp-deploy's
//! `GitOpsDeployer` on a local repository (a bare repository or a clone).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use idp_core::git::GitRepo;
use idp_core::{EntityRef, EnvironmentName, ManifestSet, Release};
use idp_deploy::gitops::{GitOpsDeployer, GitOpsOutcome, Layout, ReleaseRecord};

use crate::output::{Color, Format, Out};
use crate::{ExitCode, Failure};

/// The GitOps command group (flattened into idpctl's top-level commands).
#[derive(Debug, Subcommand)]
pub enum DeployCommand {
    /// Commit a release of a component into the GitOps repository.
    ///
    /// Writes one YAML file per object (`<kind>-<name>.yaml`) into the component's folder
    /// for the environment (by default `envs/<env>/<component>/`), replacing what was there,
    /// in one commit whose trailers (Release-Id, Component, Environment, Source-Revision,
    /// Author) make `idpctl history` work without any database. Deploying what the folder
    /// already holds commits nothing. JSON output: {release_id, commit, environment,
    /// component, created}.
    #[command(
        after_help = "EXAMPLES:\n  idpctl deploy --gitops-repo /srv/gitops.git --env staging --component cart --manifests k8s/\n  idpctl deploy --gitops-repo . --env prod --component cart --manifests cart.yaml --source-revision 3f2c1a9 --author jane --format json"
    )]
    Deploy(DeployArgs),
    /// List the releases of a component in an environment, newest first.
    ///
    /// Read from `git log` (the commits' trailers). Status: pending (current), superseded,
    /// rolled-back (undone by a later rollback). JSON output: an array of {release_id,
    /// commit, time, author, source_revision, status}.
    #[command(
        after_help = "EXAMPLES:\n  idpctl history --gitops-repo /srv/gitops.git --env prod --component cart\n  idpctl history --gitops-repo . --env prod --component cart --limit 5 --format json"
    )]
    History(HistoryArgs),
    /// Make an environment hold an earlier release again, exactly.
    ///
    /// Commits the folder content of release --to (a release id, or 7+ hex digits of its
    /// commit) byte for byte, with Rollback-Of and Rollback-To trailers.
    #[command(
        after_help = "EXAMPLES:\n  idpctl rollback --gitops-repo /srv/gitops.git --env prod --component cart --to r20260101-120000-a1b2c3"
    )]
    Rollback(RollbackArgs),
    /// Copy the current release of a component from one environment to another.
    ///
    /// The copy is a new release in the target environment with a Promoted-From trailer.
    #[command(
        after_help = "EXAMPLES:\n  idpctl promote --gitops-repo /srv/gitops.git --component cart --from staging --to prod"
    )]
    Promote(PromoteArgs),
    /// The four DORA metrics of the GitOps repository's deployments, with performance levels.
    ///
    /// Read from the release commits alone: deployment frequency, lead time for changes
    /// (Source-Committed-At → commit time, when recorded), change failure rate (a release
    /// later rolled back) and time to restore (failed release → the next release), over
    /// the window, overall and per component and environment. JSON output: the report
    /// with `overall`, `byComponent`, `byTeam`, `byEnvironment`.
    #[command(
        after_help = "EXAMPLES:\n  idpctl dora --gitops-repo /srv/gitops.git\n  idpctl dora --gitops-repo . --since 90d --env prod --format json"
    )]
    Dora(DoraArgs),
}

/// Where the GitOps repository is and how it is laid out.
#[derive(Debug, Args)]
pub struct RepoArgs {
    /// The GitOps repository: a bare repository or a clone.
    #[arg(long, value_name = "PATH")]
    gitops_repo: PathBuf,
    /// The branch to write and read (default: the branch HEAD names).
    #[arg(long, value_name = "BRANCH")]
    branch: Option<String>,
    /// Folder of a component in an environment ({env}, {component}, {namespace}).
    #[arg(long, value_name = "TEMPLATE", default_value = Layout::DEFAULT)]
    layout: String,
    /// Also push every commit to this remote (a name like origin, or a URL), re-applying
    /// the change on top of other writers' commits when they pushed first.
    #[arg(long, value_name = "REMOTE")]
    remote: Option<String>,
}

/// `idpctl deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The environment (a DNS label: dev, staging, prod, pr-42).
    #[arg(long, value_name = "ENV")]
    env: String,
    /// The component: a name (cart) or an entity reference (component:shop/cart).
    #[arg(long, value_name = "NAME")]
    component: String,
    /// The manifests to deploy: a YAML/JSON file or a directory of them.
    #[arg(
        long,
        value_name = "PATH",
        required_unless_present = "workload",
        conflicts_with = "workload"
    )]
    manifests: Option<PathBuf>,
    /// Or a Score workload (score.dev/v1b1) to render for the environment into a
    /// Deployment, Service, ConfigMaps (and Ingress, HPA, PodDisruptionBudget when the
    /// profile asks for them).
    #[arg(long, value_name = "SCORE_FILE")]
    workload: Option<PathBuf>,
    /// The image for the workload's containers whose image is `.` (Score's "given at
    /// deploy time").
    #[arg(long, value_name = "IMAGE", requires = "workload")]
    image: Option<String>,
    /// The environment profile for the workload: replicas, resource overrides, env vars,
    /// host names, autoscaling (YAML; default: one replica, no ingress).
    #[arg(long, value_name = "FILE", requires = "workload")]
    profile: Option<PathBuf>,
    /// The source commit the manifests were built from.
    #[arg(long, value_name = "SHA")]
    source_revision: Option<String>,
    /// Who deploys (recorded in the Author trailer; default: the committer name).
    #[arg(long, value_name = "AUTHOR")]
    author: Option<String>,
    /// Why (added to the commit message).
    #[arg(long, value_name = "TEXT")]
    message: Option<String>,
}

/// `idpctl history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The environment.
    #[arg(long, value_name = "ENV")]
    env: String,
    /// The component: a name or an entity reference.
    #[arg(long, value_name = "NAME")]
    component: String,
    /// At most this many releases.
    #[arg(long)]
    limit: Option<usize>,
}

/// `idpctl rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The environment.
    #[arg(long, value_name = "ENV")]
    env: String,
    /// The component: a name or an entity reference.
    #[arg(long, value_name = "NAME")]
    component: String,
    /// The release to go back to: its release id or 7+ hex digits of its commit.
    #[arg(long, value_name = "RELEASE_ID")]
    to: String,
    /// Who rolls back.
    #[arg(long, value_name = "AUTHOR")]
    author: Option<String>,
}

/// `idpctl promote`.
#[derive(Debug, Args)]
pub struct PromoteArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The component: a name or an entity reference.
    #[arg(long, value_name = "NAME")]
    component: String,
    /// The environment to copy from.
    #[arg(long, value_name = "ENV")]
    from: String,
    /// The environment to copy to.
    #[arg(long, value_name = "ENV")]
    to: String,
    /// Who promotes.
    #[arg(long, value_name = "AUTHOR")]
    author: Option<String>,
}

/// `idpctl dora`.
#[derive(Debug, Args)]
pub struct DoraArgs {
    #[command(flatten)]
    repo: RepoArgs,
    /// The window, ending now: a number of days (`30d`) or weeks (`4w`).
    #[arg(long, value_name = "DURATION", default_value = "30d")]
    since: String,
    /// Only this environment.
    #[arg(long, value_name = "ENV")]
    env: Option<String>,
}

/// Run one command of the group.
pub fn run(command: &DeployCommand, out: &Out) -> Result<ExitCode, Failure> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::io(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        match command {
            DeployCommand::Deploy(a) => deploy(a, out).await,
            DeployCommand::History(a) => history(a, out).await,
            DeployCommand::Rollback(a) => rollback(a, out).await,
            DeployCommand::Promote(a) => promote(a, out).await,
            DeployCommand::Dora(a) => dora(a, out).await,
        }
    })
}

async fn deployer(args: &RepoArgs) -> Result<GitOpsDeployer, Failure> {
    let path = &args.gitops_repo;
    if !path.exists() {
        return Err(Failure::usage(format!(
            "--gitops-repo {}: no such directory; create the repository with `git init --bare {}` or give the path of a clone",
            path.display(),
            path.display()
        )));
    }
    let repo = GitRepo::open(path).await.map_err(|e| {
        Failure::usage(format!(
            "--gitops-repo {}: not a Git repository ({}); create one with `git init --bare {}` or give the path of a clone",
            path.display(),
            e.message(),
            path.display()
        ))
    })?;
    let layout = Layout::new(args.layout.as_str())
        .map_err(|e| Failure::usage(format!("--layout: {}", e.message())))?;
    let mut d = GitOpsDeployer::new(repo).layout(layout);
    if let Some(b) = &args.branch {
        d = d.branch(b.clone());
    }
    if let Some(r) = &args.remote {
        d = d.remote(r.clone());
    }
    Ok(d)
}

fn component(text: &str) -> Result<EntityRef, Failure> {
    EntityRef::parse_with_defaults(text, Some("Component"), idp_core::DEFAULT_NAMESPACE)
        .map_err(|e| Failure::usage(format!("--component: {}", e.message())))
}

fn environment(flag: &str, text: &str) -> Result<EnvironmentName, Failure> {
    EnvironmentName::new(text).map_err(|e| Failure::usage(format!("{flag}: {}", e.message())))
}

fn read_manifests(path: &Path) -> Result<ManifestSet, Failure> {
    let set = if path.is_dir() {
        ManifestSet::from_dir(path)
    } else if path.exists() {
        ManifestSet::from_file(path)
    } else {
        return Err(Failure::usage(format!(
            "--manifests {}: no such file or directory",
            path.display()
        )));
    };
    set.map_err(|e| Failure::usage(format!("--manifests {}: {}", path.display(), e.report())))
}

#[derive(serde::Serialize)]
struct Written<'a> {
    release_id: &'a str,
    commit: &'a str,
    environment: &'a str,
    component: &'a str,
    component_ref: String,
    created: bool,
    /// The release's estimated monthly cost, when it could be priced.
    #[serde(skip_serializing_if = "Option::is_none")]
    monthly_cost: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'a str>,
}

fn print_outcome(outcome: &GitOpsOutcome, out: &Out) -> Result<ExitCode, Failure> {
    if let Some(warning) = &outcome.worktree_warning {
        eprintln!("{} {warning}", out.paint("warning:", Color::Red));
    }
    let r = &outcome.record;
    match out.format {
        Format::Table => say!("{}", outcome.message),
        _ => out.data(&Written {
            release_id: &r.release_id,
            commit: &r.commit,
            environment: r.environment.as_str(),
            component: r.component.name(),
            component_ref: r.component.to_string(),
            created: outcome.created,
            monthly_cost: outcome.cost.as_ref().map(|c| c.total),
            currency: outcome.cost.as_ref().map(|c| c.currency.as_str()),
        })?,
    }
    Ok(ExitCode::Ok)
}

async fn deploy(a: &DeployArgs, out: &Out) -> Result<ExitCode, Failure> {
    let component = component(&a.component)?;
    let env = environment("--env", &a.env)?;
    let progress = out.progress(&format!("rendering {component} for {env}"));
    let manifests = match (&a.manifests, &a.workload) {
        (Some(path), _) => read_manifests(path)?,
        (None, Some(score)) => render_workload(score, a, &env).await?,
        (None, None) => {
            return Err(Failure::usage(
                "give the manifests to deploy with --manifests PATH, or a Score workload with --workload FILE",
            ));
        }
    };
    let d = deployer(&a.repo).await?;
    let mut release = Release::new(component, env, manifests);
    if let Some(rev) = &a.source_revision {
        release = release.with_source_revision(rev.clone());
    }
    if let Some(author) = &a.author {
        release = release.with_author(author.clone());
    }
    if let Some(message) = &a.message {
        release = release.with_message(message.clone());
    }
    progress.set(&format!(
        "committing the release of {} to the GitOps repository",
        release.component
    ));
    let outcome = d.deploy_release(&release).await?;
    drop(progress);
    print_outcome(&outcome, out)
}

#[derive(serde::Serialize)]
struct HistoryRow<'a> {
    release_id: &'a str,
    commit: &'a str,
    time: String,
    author: Option<&'a str>,
    source_revision: Option<&'a str>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rollback_to: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    promoted_from: Option<&'a str>,
}

fn status(r: &ReleaseRecord) -> &'static str {
    match r.status {
        idp_core::DeploymentStatus::Pending => "current",
        idp_core::DeploymentStatus::RolledBack => "rolled-back",
        idp_core::DeploymentStatus::Superseded => "superseded",
        idp_core::DeploymentStatus::Progressing => "progressing",
        idp_core::DeploymentStatus::Succeeded => "succeeded",
        idp_core::DeploymentStatus::Failed => "failed",
    }
}

async fn history(a: &HistoryArgs, out: &Out) -> Result<ExitCode, Failure> {
    let component = component(&a.component)?;
    let env = environment("--env", &a.env)?;
    let d = deployer(&a.repo).await?;
    let records = d.releases(&component, &env, a.limit).await?;
    let rows: Vec<HistoryRow<'_>> = records
        .iter()
        .map(|r| HistoryRow {
            release_id: &r.release_id,
            commit: &r.commit,
            time: r.time.to_string(),
            author: r.author.as_deref(),
            source_revision: r.source_revision.as_deref(),
            status: status(r),
            rollback_to: r.rollback_to.as_deref(),
            promoted_from: r.promoted_from.as_deref(),
        })
        .collect();
    if out.format != Format::Table {
        out.data(&rows)?;
        return Ok(ExitCode::Ok);
    }
    if rows.is_empty() {
        say!("no releases of {component} in {env}");
        return Ok(ExitCode::Ok);
    }
    let width = rows
        .iter()
        .map(|r| r.release_id.len())
        .max()
        .unwrap_or(7)
        .max(7);
    say!(
        "{:<width$}  {:<10}  {:<20}  {:<11}  {:<12}  {:<20}  NOTE",
        "RELEASE",
        "COMMIT",
        "TIME",
        "STATUS",
        "SOURCE",
        "AUTHOR"
    );
    for r in &rows {
        let note = match (r.rollback_to, r.promoted_from) {
            (Some(to), _) => format!("rollback to {to}"),
            (None, Some(from)) => format!("promoted from {from}"),
            (None, None) => String::new(),
        };
        say!(
            "{:<width$}  {:<10}  {:<20}  {:<11}  {:<12}  {:<20}  {note}",
            r.release_id,
            r.commit.get(..10).unwrap_or(r.commit),
            r.time,
            r.status,
            r.source_revision.unwrap_or("-"),
            r.author.unwrap_or("-")
        );
    }
    Ok(ExitCode::Ok)
}

async fn rollback(a: &RollbackArgs, out: &Out) -> Result<ExitCode, Failure> {
    let component = component(&a.component)?;
    let env = environment("--env", &a.env)?;
    let progress = out.progress(&format!("rolling {component} in {env} back to {}", a.to));
    let d = deployer(&a.repo).await?;
    let outcome = d
        .rollback_to(&component, &env, &a.to, a.author.as_deref())
        .await?;
    drop(progress);
    print_outcome(&outcome, out)
}

async fn promote(a: &PromoteArgs, out: &Out) -> Result<ExitCode, Failure> {
    let component = component(&a.component)?;
    let from = environment("--from", &a.from)?;
    let to = environment("--to", &a.to)?;
    let progress = out.progress(&format!("promoting {component} from {from} to {to}"));
    let d = deployer(&a.repo).await?;
    let outcome = d
        .promote(&component, &from, &to, a.author.as_deref())
        .await?;
    drop(progress);
    print_outcome(&outcome, out)
}

async fn render_workload(
    score: &Path,
    a: &DeployArgs,
    env: &EnvironmentName,
) -> Result<ManifestSet, Failure> {
    use idp_deploy::workload::EnvironmentProfile;
    if !score.is_file() {
        return Err(Failure::usage(format!(
            "--workload {}: no such file",
            score.display()
        )));
    }
    let profile = match &a.profile {
        Some(path) => EnvironmentProfile::from_file(path)
            .map_err(|e| Failure::usage(format!("--profile {}: {}", path.display(), e.report())))?,
        None => EnvironmentProfile::default(),
    };
    let mut renderer =
        idp_deploy::reconcile::ScoreRenderer::new(profile).environment(env.to_string());
    if let Some(image) = &a.image {
        renderer = renderer.image(image.clone());
    }
    renderer
        .render_file(score)
        .await
        .map_err(|e| Failure::usage(format!("--workload {}: {}", score.display(), e.report())))
}

/// `30d`, `4w`, `12h` as a span of time.
fn window_length(text: &str) -> Result<jiff::SignedDuration, Failure> {
    let bad = || {
        Failure::usage(format!(
            "--since {text}: expected a number of days, weeks or hours such as 30d, 4w or 12h"
        ))
    };
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| bad())?;
    if n <= 0 || n > 3650 * 24 {
        return Err(bad());
    }
    let hours = match unit {
        "d" => n * 24,
        "w" => n * 24 * 7,
        "h" => n,
        _ => return Err(bad()),
    };
    Ok(jiff::SignedDuration::from_hours(hours))
}

async fn dora(a: &DoraArgs, out: &Out) -> Result<ExitCode, Failure> {
    use idp_deploy::dora::{Window, compute};
    let length = window_length(&a.since)?;
    let env = a
        .env
        .as_deref()
        .map(|e| environment("--env", e))
        .transpose()?;
    let now = jiff::Timestamp::now();
    let start = now
        .checked_sub(length)
        .map_err(|e| Failure::usage(format!("--since {}: {e}", a.since)))?;
    let window = Window::new(start, now).map_err(|e| Failure::usage(e.report()))?;
    let d = deployer(&a.repo).await?;
    let releases = d.all_releases(Some(start)).await?;
    let filtered: Vec<ReleaseRecord> = releases
        .into_iter()
        .filter(|r| env.as_ref().is_none_or(|e| &r.environment == e))
        .collect();
    let records = idp_deploy::gitops::dora_records(&filtered);
    let report = compute(&records, &[], &window);
    if out.format != Format::Table {
        out.data(&report)?;
        return Ok(ExitCode::Ok);
    }
    let level = |l: Option<idp_deploy::dora::Level>| l.map_or("-", idp_deploy::dora::Level::as_str);
    let hours = |d: Option<jiff::SignedDuration>| {
        d.map_or_else(
            || "-".to_owned(),
            |d| format!("{:.1} h", d.as_secs_f64() / 3600.0),
        )
    };
    say!(
        "{:<24}  {:>11}  {:>9}  {:>10}  {:>9}  {:>10}  LEVELS (frequency/lead/failure/restore)",
        "SCOPE",
        "DEPLOYMENTS",
        "PER WEEK",
        "LEAD TIME",
        "FAILURES",
        "RESTORE"
    );
    let row = |scope: &str, m: &idp_deploy::dora::Metrics| -> Result<(), Failure> {
        say!(
            "{:<24}  {:>11}  {:>9.1}  {:>10}  {:>9}  {:>10}  {}/{}/{}/{}",
            scope,
            m.deployments,
            m.deployments_per_week,
            hours(m.median_lead_time),
            m.change_failure_rate
                .map_or_else(|| "-".to_owned(), |r| format!("{:.0}%", r * 100.0)),
            hours(m.median_time_to_restore),
            level(m.levels.deployment_frequency),
            level(m.levels.lead_time),
            level(m.levels.change_failure_rate),
            level(m.levels.time_to_restore)
        );
        Ok(())
    };
    row("all", &report.overall)?;
    for (component, m) in &report.by_component {
        row(&format!("component {component}"), m)?;
    }
    for (environment, m) in &report.by_environment {
        row(&format!("environment {environment}"), m)?;
    }
    Ok(ExitCode::Ok)
}
