//! The delivery area: deployments as commits to a GitOps repository (idp-deploy's
//! [`GitOpsDeployer`]), checked by idp-policy before anything is committed, applied by one
//! reconciler per environment ([`background`]), with rollback, promotion, DORA metrics and
//! cost estimates read back from the Git history.
//!
//! Where to start: [`Delivery::open`] builds it from the `deliver` section of `idp.yaml`;
//! [`Delivery::deploy`] is the golden path (render → mutate → policy → commit →
//! reconcile). `routes/deliver.rs` is the HTTP face, `portal_deliver.rs` the HTML one.

pub mod background;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use idp_core::cluster::health::HealthStatus;
use idp_core::git::{CommitRequest, GitRepo, Identity, InitOptions};
use idp_core::model::Enforcement;
use idp_core::ports::Mutation as _;
use idp_core::{
    DeploymentStatus, EntityRef, EnvironmentName, Error, ManifestSet, PolicyContext, Release,
    Result,
};
use idp_deploy::cost::{self, PriceSheet};
use idp_deploy::dora;
use idp_deploy::gitops::{GitOpsDeployer, GitOpsOutcome, ReleaseRecord};
use idp_deploy::reconcile::{ReconcileStatus, StallReason};
use idp_deploy::workload::{self, CompositeProvisioner, EnvironmentProfile, RenderContext};
use idp_policy::PolicySet;
use idp_policy::mutate::{
    ATTR_OWNER, ATTR_SYSTEM, DefaultResources, Mutations, SecureDefaults, StandardLabels,
};
use schemars::JsonSchema;
use serde::Serialize;

use crate::server::config::DeliverConfig;
use background::{Background, EnvTarget};

/// One configured environment.
#[derive(Debug, Clone)]
pub struct EnvSpec {
    /// Its name.
    pub name: EnvironmentName,
    /// The namespace its objects land in.
    pub namespace: String,
    /// The profile Score workloads are rendered with.
    pub profile: EnvironmentProfile,
}

/// What to deploy, checked and resolved (the route validates the request body).
#[derive(Debug, Clone)]
pub struct DeployInput {
    /// The catalog component.
    pub component: EntityRef,
    /// Its owner (`spec.owner`), for labels and DORA teams.
    pub owner: Option<String>,
    /// Its system (`spec.system`).
    pub system: Option<String>,
    /// The target environment (configured).
    pub environment: EnvironmentName,
    /// The image for Score containers whose image is `.`.
    pub image: Option<String>,
    /// Plain manifests or a Score workload.
    pub source: Source,
    /// The source commit built.
    pub source_revision: Option<String>,
    /// When that commit was made (lead time for changes).
    pub source_committed_at: Option<jiff::Timestamp>,
    /// Who deploys.
    pub author: Option<String>,
    /// Why.
    pub message: Option<String>,
}

/// Where the objects come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// Kubernetes manifests, YAML text (several documents).
    Manifests(String),
    /// A Score workload, YAML text, rendered with the environment's profile.
    Workload(String),
}

/// One policy finding.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PolicyFinding {
    /// `Kind/name` of the object.
    pub object: String,
    /// The policy.
    pub policy: String,
    /// The rule within the policy.
    pub rule: String,
    /// The field path, when known.
    pub path: Option<String>,
    /// What is wrong and how to fix it.
    pub message: String,
    /// `deny`, `warn` or `audit`.
    pub action: String,
}

/// A monthly cost estimate.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CostSummary {
    /// Estimated monthly cost.
    pub monthly: f64,
    /// The price sheet's currency.
    pub currency: String,
}

/// A deployment (one release of a component in an environment) as the API shows it.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeploymentView {
    /// The release id (also accepted: 7+ hex digits of the commit).
    pub id: String,
    /// The GitOps commit.
    pub commit: String,
    /// The component's entity reference.
    pub component: String,
    /// The environment.
    pub environment: String,
    /// The namespace its objects land in.
    pub namespace: String,
    /// The first container image, as the version deployed.
    pub version: Option<String>,
    /// Every container image.
    pub images: Vec<String>,
    /// `current`, `superseded` or `rolled-back` (from the Git history).
    pub status: String,
    /// For the current release: `Synced`, `OutOfSync`, `Pending` (not reconciled yet),
    /// `Stalled` or `Unknown`; `-` for earlier releases.
    pub sync: String,
    /// For the current release: the worst health of its objects in the cluster.
    pub health: Option<String>,
    /// Why, when the reconciler says more (a stall, a denial, a rollout in progress).
    pub health_message: Option<String>,
    /// When it was committed (RFC 3339).
    pub created_at: String,
    /// Who deployed it.
    pub author: Option<String>,
    /// The source commit built.
    pub source_revision: Option<String>,
    /// When the source commit was made.
    pub source_committed_at: Option<String>,
    /// The commit summary.
    pub summary: String,
    /// Set on a rollback: the release it undid.
    pub rollback_of: Option<String>,
    /// Set on a rollback: the release it restored.
    pub rollback_to: Option<String>,
    /// Set on a promotion: `<environment>/<release id>` it was copied from.
    pub promoted_from: Option<String>,
    /// Policy findings that did not block (only on the response that created it).
    pub warnings: Vec<PolicyFinding>,
    /// Estimated monthly cost of its objects.
    pub cost: Option<CostSummary>,
    /// False when the environment already held exactly this content (nothing committed).
    pub created: bool,
}

/// What a write did.
#[derive(Debug)]
pub enum Verdict {
    /// Committed (or already there); the deployment.
    Deployed(Box<DeploymentView>),
    /// A policy denied it; nothing was committed.
    Denied(Vec<PolicyFinding>),
}

/// The delivery service; see the [module docs](self).
#[derive(Debug)]
pub struct Delivery {
    deployer: GitOpsDeployer,
    environments: Vec<EnvSpec>,
    policies: Arc<PolicySet>,
    mutations: Arc<Mutations>,
    prices: PriceSheet,
    background: Background,
    /// The catalog repository and branch, for workloads named by the `idp.dev/workload`
    /// annotation.
    catalog: (PathBuf, String),
    /// Where releases are committed (shown in the portal).
    pub gitops_label: String,
}

/// The catalog annotation naming a component's Score workload: a path in the catalog
/// repository, used when a deployment request gives neither manifests nor a workload.
pub const WORKLOAD_ANNOTATION: &str = "idp.dev/workload";

fn status_word(s: DeploymentStatus) -> &'static str {
    match s {
        DeploymentStatus::Pending | DeploymentStatus::Progressing => "current",
        DeploymentStatus::RolledBack => "rolled-back",
        DeploymentStatus::Superseded => "superseded",
        DeploymentStatus::Succeeded => "succeeded",
        DeploymentStatus::Failed => "failed",
    }
}

/// Every container image of the pod templates (and Pods) in `set`.
pub fn images(set: &ManifestSet) -> Vec<String> {
    let mut out = Vec::new();
    for object in set {
        for pointer in [
            "/spec/template/spec/containers",
            "/spec/jobTemplate/spec/template/spec/containers",
            "/spec/containers",
        ] {
            if let Some(containers) = object.pointer(pointer).and_then(|v| v.as_array()) {
                for c in containers {
                    if let Some(image) = c.get("image").and_then(|i| i.as_str())
                        && !out.iter().any(|x| x == image)
                    {
                        out.push(image.to_owned());
                    }
                }
            }
        }
    }
    out
}

/// The policy files of `idp.yaml`'s `policy` section, loaded once at start: deployments
/// are checked by the Kyverno validate rules and mutated by the Kyverno mutate rules and
/// the Gatekeeper mutators, as the cluster's webhooks would.
#[derive(Debug, Clone, Default)]
pub struct LoadedPolicies {
    /// `policy.kyverno`, as `policy.kyvernoSync` keeps it up to date.
    pub kyverno: Option<Arc<idp_policy::Swappable<idp_policy::kyverno::KyvernoPolicy>>>,
    /// `policy.gatekeeperMutators`.
    pub gatekeeper_mutators:
        Option<Arc<idp_policy::Swappable<idp_policy::gatekeeper::mutation::GatekeeperMutators>>>,
    /// `policy.gatekeeper`, `policy.rego` and `policy.admissionPolicies`.
    pub files: Vec<Arc<dyn idp_core::Policy>>,
}

impl Delivery {
    /// Open the GitOps repository (creating `<data>/gitops.git` on first start when no
    /// remote is configured), build the policies, and start one reconciler per
    /// environment with the leader election.
    ///
    /// # Errors
    /// An unusable repository, environment name, profile or price sheet.
    // No span here: the background tasks started inside would inherit it for their life.
    pub async fn open(
        config: &DeliverConfig,
        data: &Path,
        client: kube::Client,
        catalog: (PathBuf, String),
        loaded: &LoadedPolicies,
    ) -> Result<Self> {
        let mut environments = Vec::new();
        for env in &config.environments {
            let name = EnvironmentName::new(&env.name).map_err(|e| {
                Error::invalid_input(format!(
                    "deliver.environments: {:?} is not an environment name ({}); use a DNS label such as dev",
                    env.name,
                    e.message()
                ))
            })?;
            let profile = match &env.profile {
                Some(path) => EnvironmentProfile::from_file(path).map_err(|e| {
                    e.context(format_args!("deliver.environments[{}].profile", env.name))
                })?,
                None => EnvironmentProfile::default(),
            };
            environments.push(EnvSpec {
                name,
                namespace: env.namespace().to_owned(),
                profile,
            });
        }
        if environments.is_empty() {
            return Err(Error::invalid_input(
                "deliver.environments is empty; name at least one environment (dev, staging, prod)",
            ));
        }
        let prices = match &config.prices {
            Some(path) => PriceSheet::from_file(path)?,
            None => PriceSheet::default(),
        };
        let branch = config.branch.clone();
        let (repo, source_url, label) = if let Some(remote) = &config.gitops_remote {
            let path = data.join("gitops-mirror.git");
            let repo = if path.join("HEAD").exists() {
                GitRepo::open(&path).await?
            } else {
                GitRepo::init(&path, InitOptions::bare(&branch)).await?
            };
            (repo, remote.clone(), format!("{remote} ({branch})"))
        } else {
            let path = data.join("gitops.git");
            let repo = ensure_local_repo(&path, &branch, &environments).await?;
            let url = path.to_string_lossy().into_owned();
            (repo, url, format!("{} ({branch})", path.display()))
        };
        let mut deployer = GitOpsDeployer::new(repo)
            .branch(branch.clone())
            .identity(Identity::new("idp-server", "idp-server@localhost"));
        if let Some(remote) = &config.gitops_remote {
            deployer = deployer.remote(remote.clone());
        }
        let policies = Arc::new(crate::server::routes::policy::build_set(
            config.pss,
            config.guardrails,
            loaded.kyverno.as_ref(),
            &loaded.files,
            // Deployments are checked after the mutations below.
            crate::server::routes::policy::Checked::Mutated,
        ));
        let mut mutations = Mutations::new()
            .with(StandardLabels::default())
            .with(DefaultResources::default())
            .with(SecureDefaults::default());
        // The policy files' mutators, as the cluster's webhooks would apply them.
        if let Some(g) = &loaded.gatekeeper_mutators {
            mutations.push(g.clone());
        }
        if let Some(k) = &loaded.kyverno {
            mutations.push(k.clone());
        }
        let mutations = Arc::new(mutations);
        let mut targets = Vec::new();
        for env in &environments {
            targets.push(EnvTarget {
                name: env.name.clone(),
                namespace: env.namespace.clone(),
                folder: format!("envs/{}", env.name),
            });
        }
        let workdir: PathBuf = data.join("reconcile");
        let background = background::start(background::Settings {
            client,
            source_url,
            branch,
            environments: &targets,
            interval: Duration::from_secs(config.reconcile_seconds.max(1)),
            lease: (config.lease_namespace.clone(), config.lease_name.clone()),
            workdir: &workdir,
            mutations: mutations.clone(),
            policies: policies.clone(),
        })
        .await?;
        tracing::info!(gitops = %label, environments = environments.len(), "deployments ready");
        Ok(Self {
            deployer,
            environments,
            policies,
            mutations,
            prices,
            background,
            catalog,
            gitops_label: label,
        })
    }

    /// The Score workload the component's [`WORKLOAD_ANNOTATION`] names. A relative path
    /// is read beside the entity's own `catalog-info.yaml` when its `location`
    /// (`backstage.io/managed-by-location`: `git:<repository>@<branch>:<file>` or
    /// `file:<repository>/<file>`) is in a local Git repository — a scaffolded service's own repository, say — and otherwise from the
    /// catalog repository.
    ///
    /// # Errors
    /// No such file in either place (400, naming the annotation).
    #[tracing::instrument(skip(self))]
    pub async fn catalog_workload(
        &self,
        component: &EntityRef,
        location: Option<&str>,
        path: &str,
    ) -> Result<String> {
        let (catalog_repo, catalog_branch) = &self.catalog;
        let mut places: Vec<(PathBuf, Option<String>, String)> = Vec::new();
        if let Some((repo, branch, file)) = location.and_then(local_repository_of) {
            let dir = file.rsplit_once('/').map_or("", |(dir, _)| dir);
            let joined = if path.starts_with('/') || dir.is_empty() {
                path.trim_start_matches('/').to_owned()
            } else {
                format!("{dir}/{path}")
            };
            places.push((repo, branch, joined));
        }
        places.push((
            catalog_repo.clone(),
            Some(catalog_branch.clone()),
            path.trim_start_matches('/').to_owned(),
        ));
        for (repo, branch, file) in places {
            if !repo.join("HEAD").exists() && !repo.join(".git").exists() {
                continue;
            }
            let repo = GitRepo::open(&repo).await?;
            let branch = match branch {
                Some(b) => b,
                None => match repo.head_branch().await? {
                    Some(b) => b,
                    None => continue,
                },
            };
            if let Ok(Some(bytes)) = repo.try_read_file(&branch, &file).await {
                return String::from_utf8(bytes).map_err(|_| {
                    Error::invalid_input(format!(
                        "{component}: the workload {path} named by {WORKLOAD_ANNOTATION} is not UTF-8 text"
                    ))
                });
            }
        }
        Err(Error::invalid_input(format!(
            "{component}: its annotation {WORKLOAD_ANNOTATION} names {path:?}, which is not a file beside its catalog-info.yaml nor on branch {catalog_branch} of the catalog repository; fix the annotation or give manifests or workload in the request"
        )))
    }

    /// Stop the reconcilers (finishing their passes) and release the Lease.
    pub async fn shutdown(&self) {
        self.background.shutdown().await;
    }

    /// The configured environments, in promotion order.
    pub fn environments(&self) -> &[EnvSpec] {
        &self.environments
    }

    /// The configured environment called `name`.
    pub fn environment(&self, name: &str) -> Option<&EnvSpec> {
        self.environments.iter().find(|e| e.name.as_str() == name)
    }

    /// An environment by name, or an input error naming `field` and the choices.
    ///
    /// # Errors
    /// `field` names no configured environment.
    pub fn require_environment(&self, field: &str, name: &str) -> Result<&EnvSpec> {
        self.environment(name).ok_or_else(|| {
            let known: Vec<&str> = self.environments.iter().map(|e| e.name.as_str()).collect();
            Error::invalid_input(format!(
                "{field}: unknown environment {name:?}; configured: {}",
                known.join(", ")
            ))
        })
    }

    /// Whether this replica applies (holds the Lease).
    pub fn is_leader(&self) -> bool {
        self.background.is_leader()
    }

    /// The environment's reconciler status.
    pub fn reconcile_status(&self, environment: &str) -> Option<ReconcileStatus> {
        self.background.status(environment)
    }

    fn context(
        env: &EnvSpec,
        component: &EntityRef,
        owner: Option<&str>,
        system: Option<&str>,
    ) -> PolicyContext {
        let mut ctx = PolicyContext::new()
            .with_environment(env.name.clone())
            .with_namespace(env.namespace.clone())
            .with_component(component.clone());
        if let Some(owner) = owner {
            ctx.attributes.insert(ATTR_OWNER.into(), owner_name(owner));
        }
        if let Some(system) = system {
            ctx.attributes.insert(ATTR_SYSTEM.into(), system.to_owned());
        }
        ctx
    }

    /// Render the input's objects for its environment.
    async fn render(&self, input: &DeployInput, env: &EnvSpec) -> Result<ManifestSet> {
        match &input.source {
            Source::Manifests(text) => {
                let set = ManifestSet::parse(text.as_bytes(), Some(Path::new("manifests")))
                    .map_err(|e| Error::invalid_input(format!("manifests: {}", e.report())))?;
                if set.is_empty() {
                    return Err(Error::invalid_input(
                        "manifests: holds no Kubernetes object; give at least one (YAML documents separated by ---)",
                    ));
                }
                for object in &set {
                    if let Some(ns) = object.namespace()
                        && ns != env.namespace
                    {
                        return Err(Error::invalid_input(format!(
                            "manifests: {}/{} names namespace {ns:?}, but environment {} deploys into namespace {:?}; remove metadata.namespace",
                            object.kind(),
                            object.name(),
                            env.name,
                            env.namespace
                        )));
                    }
                }
                Ok(set)
            }
            Source::Workload(text) => {
                let parsed = workload::Workload::from_yaml(text, Some(Path::new("workload")))
                    .map_err(|e| Error::invalid_input(format!("workload: {}", e.report())))?;
                let mut ctx = RenderContext::new()
                    .with_environment(env.name.as_str())
                    .with_namespace(env.namespace.clone());
                if let Some(owner) = &input.owner {
                    ctx = ctx.with_owner(owner.clone());
                }
                if let Some(system) = &input.system {
                    ctx = ctx.with_part_of(system.clone());
                }
                if let Some(image) = &input.image {
                    ctx = ctx.with_image(image.clone());
                }
                workload::render(
                    &parsed,
                    &env.profile,
                    &CompositeProvisioner::with_defaults(),
                    &ctx,
                )
                .await
                .map_err(|e| Error::invalid_input(format!("workload: {}", e.report())))
            }
        }
    }

    /// Mutate every object, then check it: the mutated set, the blocking findings and the
    /// others.
    fn mutate_and_check(
        &self,
        set: &ManifestSet,
        ctx: &PolicyContext,
    ) -> Result<(ManifestSet, Vec<PolicyFinding>, Vec<PolicyFinding>)> {
        let _span = tracing::info_span!("policy_check", objects = set.len()).entered();
        let mut out = ManifestSet::new();
        let mut denied = Vec::new();
        let mut warnings = Vec::new();
        for object in set {
            let mut object = object.clone();
            self.mutations.mutate(&mut object, ctx)?;
            let result = self.policies.check_object(&object, ctx);
            let name = format!("{}/{}", object.kind(), object.name());
            for v in result.violations {
                let finding = PolicyFinding {
                    object: name.clone(),
                    policy: v.policy.into_owned(),
                    rule: v.rule.into_owned(),
                    path: v.path,
                    message: v.message,
                    action: v.enforcement.as_str().to_owned(),
                };
                if v.enforcement == Enforcement::Deny {
                    denied.push(finding);
                } else {
                    warnings.push(finding);
                }
            }
            out.push(object);
        }
        Ok((out, denied, warnings))
    }

    /// The golden path: render, mutate, check, and commit when every policy allows.
    ///
    /// # Errors
    /// Bad input (400, naming the field), Git failures.
    #[tracing::instrument(skip_all, fields(component = %input.component, environment = %input.environment))]
    pub async fn deploy(&self, input: DeployInput) -> Result<Verdict> {
        let env = self.require_environment("environment", input.environment.as_str())?;
        let set = self.render(&input, env).await?;
        let ctx = Self::context(
            env,
            &input.component,
            input.owner.as_deref(),
            input.system.as_deref(),
        );
        let (set, denied, warnings) = self.mutate_and_check(&set, &ctx)?;
        if !denied.is_empty() {
            let mut all = denied;
            all.extend(warnings);
            tracing::info!(
                violations = all.len(),
                "deployment denied by policy; nothing committed"
            );
            return Ok(Verdict::Denied(all));
        }
        let mut release = Release::new(input.component.clone(), env.name.clone(), set);
        if let Some(rev) = input.source_revision {
            release = release.with_source_revision(rev);
        }
        if let Some(author) = input.author {
            release = release.with_author(author);
        }
        if let Some(message) = input.message {
            release = release.with_message(message);
        }
        let outcome = self
            .deployer
            .deploy_release_with(&release, input.source_committed_at)
            .await?;
        Ok(Verdict::Deployed(Box::new(
            self.after_write(&outcome, warnings).await?,
        )))
    }

    /// Trigger the environment's reconciler and describe the outcome.
    async fn after_write(
        &self,
        outcome: &GitOpsOutcome,
        warnings: Vec<PolicyFinding>,
    ) -> Result<DeploymentView> {
        self.background
            .reconcile_now(outcome.record.environment.as_str());
        let all = self.deployer.all_releases(None).await?;
        let record = all
            .iter()
            .find(|r| r.commit == outcome.record.commit)
            .unwrap_or(&outcome.record);
        let mut view = self.view(record, &all).await;
        view.warnings = warnings;
        view.created = outcome.created;
        Ok(view)
    }

    /// Wait up to `timeout` until the environment's reconciler applied `commit` and it is
    /// synced and healthy; the deployment as it is then.
    ///
    /// # Errors
    /// Git failures.
    pub async fn wait_converged(
        &self,
        id: &str,
        timeout: Duration,
    ) -> Result<Option<DeploymentView>> {
        let all = self.deployer.all_releases(None).await?;
        let Some(record) = all.iter().find(|r| matches(r, id)) else {
            return Ok(None);
        };
        let head = all
            .first()
            .map_or(record.commit.as_str(), |r| r.commit.as_str());
        self.background
            .wait_for_revision(record.environment.as_str(), head, timeout)
            .await;
        Ok(Some(self.view(record, &all).await))
    }

    /// The objects a release wrote.
    async fn manifests(&self, record: &ReleaseRecord) -> ManifestSet {
        let Ok(folder) = self.deployer.folder(&record.component, &record.environment) else {
            return ManifestSet::new();
        };
        let files = match self
            .deployer
            .repo()
            .read_tree(&record.commit, &folder)
            .await
        {
            Ok(files) => files,
            Err(e) => {
                tracing::debug!(error = %e.report(), "cannot read the release folder");
                return ManifestSet::new();
            }
        };
        let mut set = ManifestSet::new();
        for (path, bytes) in files {
            match ManifestSet::parse(&bytes, Some(Path::new(&path))) {
                Ok(part) => set.extend(part.iter().cloned()),
                Err(e) => {
                    tracing::warn!(file = %path, error = %e.report(), "unreadable file in the GitOps repository");
                }
            }
        }
        set
    }

    /// The API view of `record`; `all` is the whole history, newest first (for whether
    /// the reconciler has reached it).
    async fn view(&self, record: &ReleaseRecord, all: &[ReleaseRecord]) -> DeploymentView {
        let set = self.manifests(record).await;
        let imgs = images(&set);
        let namespace = self
            .environment(record.environment.as_str())
            .map_or_else(|| record.environment.to_string(), |e| e.namespace.clone());
        let (sync, health, health_message) = if record.is_current() {
            self.cluster_state(record, &set, all)
        } else {
            ("-".to_owned(), None, None)
        };
        let cost = cost::estimate(&set, &self.prices)
            .ok()
            .map(|c| CostSummary {
                monthly: round2(c.total),
                currency: c.currency,
            });
        DeploymentView {
            id: record.release_id.clone(),
            commit: record.commit.clone(),
            component: record.component.to_string(),
            environment: record.environment.to_string(),
            namespace,
            version: imgs.first().cloned(),
            images: imgs,
            status: status_word(record.status).to_owned(),
            sync,
            health,
            health_message,
            created_at: record.time.to_string(),
            author: record.author.clone(),
            source_revision: record.source_revision.clone(),
            source_committed_at: record.source_committed_at.map(|t| t.to_string()),
            summary: record.summary.clone(),
            rollback_of: record.rollback_of.clone(),
            rollback_to: record.rollback_to.clone(),
            promoted_from: record.promoted_from.clone(),
            warnings: Vec::new(),
            cost,
            created: true,
        }
    }

    /// Sync and health of the current release from its environment's reconciler.
    fn cluster_state(
        &self,
        record: &ReleaseRecord,
        set: &ManifestSet,
        all: &[ReleaseRecord],
    ) -> (String, Option<String>, Option<String>) {
        let Some(status) = self.background.status(record.environment.as_str()) else {
            return ("Unknown".into(), None, None);
        };
        // Has the reconciler fetched a revision at or after this release? History is
        // newest first, so a smaller index is a later commit.
        let reached = status.revision.as_deref().is_some_and(|rev| {
            let at = all.iter().position(|r| r.commit == rev);
            let mine = all.iter().position(|r| r.commit == record.commit);
            matches!((at, mine), (Some(a), Some(m)) if a <= m)
        });
        if !reached {
            let why = status.stalled.as_ref().map_or_else(
                || "the reconciler has not applied this release yet".to_owned(),
                |s| format!("{s:?}"),
            );
            return (
                "Pending".into(),
                Some(HealthStatus::Progressing.as_str().into()),
                Some(why),
            );
        }
        // Another replica leads and applies; this one still sees the live objects.
        if let Some(stall) = status
            .stalled
            .as_ref()
            .filter(|s| !matches!(s, StallReason::NotLeader))
        {
            return (
                "Stalled".into(),
                Some(HealthStatus::Unknown.as_str().into()),
                Some(format!("{stall:?}")),
            );
        }
        let mut healths = Vec::new();
        let mut messages = Vec::new();
        let mut synced = true;
        for object in set {
            if let Some(o) = status.object(object.kind(), object.name()) {
                if o.reason.is_some() {
                    synced = false;
                }
                if let Some(h) = &o.health {
                    healths.push(h.status);
                    if !h.message.is_empty() && h.status != HealthStatus::Healthy {
                        messages.push(format!(
                            "{}/{}: {}",
                            object.kind(),
                            object.name(),
                            h.message
                        ));
                    }
                }
            } else {
                synced = false;
                healths.push(HealthStatus::Missing);
            }
        }
        let health = HealthStatus::worst(healths);
        (
            if synced { "Synced" } else { "OutOfSync" }.into(),
            Some(health.as_str().into()),
            (!messages.is_empty()).then(|| messages.join("; ")),
        )
    }

    /// Deployment history, newest first: of one component and/or environment, at most
    /// `limit`.
    ///
    /// # Errors
    /// Git failures.
    #[tracing::instrument(skip(self))]
    pub async fn history(
        &self,
        component: Option<&EntityRef>,
        environment: Option<&str>,
        limit: usize,
    ) -> Result<Vec<DeploymentView>> {
        let all = self.deployer.all_releases(None).await?;
        let mut out = Vec::new();
        for r in all.iter().filter(|r| {
            component.is_none_or(|c| &r.component == c)
                && environment.is_none_or(|e| r.environment.as_str() == e)
        }) {
            if out.len() >= limit {
                break;
            }
            out.push(self.view(r, &all).await);
        }
        Ok(out)
    }

    /// What runs now: the current release of every component in every environment.
    ///
    /// # Errors
    /// Git failures.
    #[tracing::instrument(skip(self))]
    pub async fn current(&self) -> Result<Vec<DeploymentView>> {
        let all = self.deployer.all_releases(None).await?;
        let mut out = Vec::new();
        for r in all.iter().filter(|r| r.is_current()) {
            out.push(self.view(r, &all).await);
        }
        Ok(out)
    }

    /// One deployment by release id or 7+ hex digits of its commit.
    ///
    /// # Errors
    /// Git failures.
    #[tracing::instrument(skip(self))]
    pub async fn get(&self, id: &str) -> Result<Option<DeploymentView>> {
        let all = self.deployer.all_releases(None).await?;
        match all.iter().find(|r| matches(r, id)) {
            Some(r) => Ok(Some(self.view(r, &all).await)),
            None => Ok(None),
        }
    }

    /// Roll the environment of deployment `id` back: to `to` when given, else to the
    /// release before `id`. A new commit; the reconciler converges.
    ///
    /// # Errors
    /// Unknown ids (404), no earlier release (409), Git failures.
    #[tracing::instrument(skip(self))]
    pub async fn rollback(
        &self,
        id: &str,
        to: Option<&str>,
        author: Option<&str>,
    ) -> Result<DeploymentView> {
        let all = self.deployer.all_releases(None).await?;
        let Some(record) = all.iter().find(|r| matches(r, id)) else {
            return Err(Error::not_found(format!(
                "no deployment {id}; list them with GET /api/deployments"
            )));
        };
        let stream: Vec<&ReleaseRecord> = all
            .iter()
            .filter(|r| r.component == record.component && r.environment == record.environment)
            .collect();
        let target = if let Some(to) = to {
            stream
                .iter()
                .find(|r| matches(r, to))
                .copied()
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "to: {to} is not a release of {} in {}",
                        record.component, record.environment
                    ))
                })?
        } else {
            let at = stream
                .iter()
                .position(|r| r.commit == record.commit)
                .unwrap_or(0);
            stream.get(at + 1).copied().ok_or_else(|| {
                Error::new(
                    idp_core::ErrorKind::Conflict,
                    format!(
                        "{} is the first release of {} in {}; there is nothing earlier to roll back to",
                        record.release_id, record.component, record.environment
                    ),
                )
            })?
        };
        let outcome = self
            .deployer
            .rollback_to(
                &record.component,
                &record.environment,
                &target.release_id,
                author,
            )
            .await?;
        self.after_write(&outcome, Vec::new()).await
    }

    /// Promote the current release of `component` from one environment to another, after
    /// checking it against the policies in the target environment.
    ///
    /// # Errors
    /// Unknown environments (400), nothing to promote (404), Git failures.
    #[tracing::instrument(skip(self, owner, system))]
    pub async fn promote(
        &self,
        component: &EntityRef,
        owner: Option<&str>,
        system: Option<&str>,
        from: &str,
        to: &str,
        author: Option<&str>,
    ) -> Result<Verdict> {
        let from_env = self.require_environment("from", from)?.clone();
        let to_env = self.require_environment("to", to)?.clone();
        if from_env.name == to_env.name {
            return Err(Error::invalid_input(format!(
                "to: cannot promote from {from} to itself; give two different environments"
            )));
        }
        let all = self.deployer.all_releases(None).await?;
        let Some(source) = all
            .iter()
            .find(|r| &r.component == component && r.environment == from_env.name)
        else {
            return Err(Error::not_found(format!(
                "{component} has no release in {from}; deploy it there before promoting it"
            )));
        };
        let set = self.manifests(source).await;
        let ctx = Self::context(&to_env, component, owner, system);
        let mut denied = Vec::new();
        let mut warnings = Vec::new();
        for object in &set {
            for v in self.policies.check_object(object, &ctx).violations {
                let finding = PolicyFinding {
                    object: format!("{}/{}", object.kind(), object.name()),
                    policy: v.policy.into_owned(),
                    rule: v.rule.into_owned(),
                    path: v.path,
                    message: v.message,
                    action: v.enforcement.as_str().to_owned(),
                };
                if v.enforcement == Enforcement::Deny {
                    denied.push(finding);
                } else {
                    warnings.push(finding);
                }
            }
        }
        if !denied.is_empty() {
            denied.extend(warnings);
            return Ok(Verdict::Denied(denied));
        }
        let outcome = self
            .deployer
            .promote(component, &from_env.name, &to_env.name, author)
            .await?;
        Ok(Verdict::Deployed(Box::new(
            self.after_write(&outcome, warnings).await?,
        )))
    }

    /// The DORA metrics over the last `days` days, of one component and/or environment;
    /// `teams` maps component names to owners.
    ///
    /// # Errors
    /// A window that cannot be computed, Git failures.
    #[tracing::instrument(skip(self, teams))]
    pub async fn dora(
        &self,
        component: Option<&EntityRef>,
        environment: Option<&str>,
        days: u32,
        teams: &HashMap<String, String>,
    ) -> Result<DoraView> {
        let now = jiff::Timestamp::now();
        let window = dora::Window::last_days(now, days)?;
        let releases: Vec<ReleaseRecord> = self
            .deployer
            .all_releases(Some(window.start))
            .await?
            .into_iter()
            .filter(|r| {
                component.is_none_or(|c| &r.component == c)
                    && environment.is_none_or(|e| r.environment.as_str() == e)
            })
            .collect();
        let records: Vec<dora::DeploymentRecord> = idp_deploy::gitops::dora_records(&releases)
            .into_iter()
            .map(|mut r| {
                if let Some(team) = teams.get(&r.component) {
                    r.team = Some(team.clone());
                }
                r
            })
            .collect();
        let report = dora::compute(&records, &[], &window);
        Ok(DoraView::new(
            &report,
            &records,
            days,
            component,
            environment,
        ))
    }

    /// The estimated monthly cost of what is deployed now, per component and
    /// environment.
    ///
    /// # Errors
    /// Git failures, unparsable quantities in the deployed objects.
    #[tracing::instrument(skip(self))]
    pub async fn cost(
        &self,
        component: Option<&EntityRef>,
        environment: Option<&str>,
    ) -> Result<CostView> {
        let all = self.deployer.all_releases(None).await?;
        let mut items = Vec::new();
        let mut total = 0.0;
        for r in all.iter().filter(|r| {
            r.is_current()
                && component.is_none_or(|c| &r.component == c)
                && environment.is_none_or(|e| r.environment.as_str() == e)
        }) {
            let set = self.manifests(r).await;
            let report = cost::estimate(&set, &self.prices)?;
            total += report.total;
            items.push(CostItem {
                component: r.component.to_string(),
                environment: r.environment.to_string(),
                release_id: r.release_id.clone(),
                monthly: round2(report.total),
                lines: report
                    .lines
                    .iter()
                    .map(|l| CostLineView {
                        kind: l.kind.clone(),
                        name: l.name.clone(),
                        replicas: l.replicas,
                        cpu_cores: l.cpu_cores,
                        memory_gib: l.memory_gib,
                        monthly: round2(l.total),
                    })
                    .collect(),
            });
        }
        Ok(CostView {
            currency: self.prices.currency.clone(),
            total: round2(total),
            items,
        })
    }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `group:default/team-a` → `team-a`; a plain name stays.
fn owner_name(owner: &str) -> String {
    let tail = owner.rsplit('/').next().unwrap_or(owner);
    tail.rsplit(':').next().unwrap_or(tail).to_owned()
}

/// Whether `id` names `r`: its release id or 7+ hex digits of its commit.
fn matches(r: &ReleaseRecord, id: &str) -> bool {
    r.release_id == id
        || (id.len() >= 7
            && id.bytes().all(|b| b.is_ascii_hexdigit())
            && r.commit.starts_with(&id.to_ascii_lowercase()))
}

/// Create the local GitOps repository with a README and a folder per environment.
async fn ensure_local_repo(path: &Path, branch: &str, envs: &[EnvSpec]) -> Result<GitRepo> {
    if path.join("HEAD").exists() {
        return GitRepo::open(path).await;
    }
    let repo = GitRepo::init(path, InitOptions::bare(branch)).await?;
    let mut request = CommitRequest::new(
        branch,
        "GitOps repository of idp-server",
        Identity::new("idp-server", "idp-server@localhost"),
    )
    .put(
        "README.md",
        b"# GitOps repository\n\nidp-server commits one release per commit under envs/<environment>/<component>/; \
one reconciler per environment applies envs/<environment>/ into the cluster.\n"
            .as_slice(),
    );
    for env in envs {
        request = request.put(format!("envs/{}/.keep", env.name), b"".as_slice());
    }
    repo.commit(request).await?;
    tracing::info!(repo = %path.display(), "created the local GitOps repository");
    Ok(repo)
}

/// The cost of one current deployment.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CostItem {
    /// The component's reference.
    pub component: String,
    /// The environment.
    pub environment: String,
    /// The current release.
    pub release_id: String,
    /// Its estimated monthly cost.
    pub monthly: f64,
    /// Per object.
    pub lines: Vec<CostLineView>,
}

/// One object's estimate.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CostLineView {
    /// Kind.
    pub kind: String,
    /// Name.
    pub name: String,
    /// Pods priced.
    pub replicas: f64,
    /// CPU cores per pod.
    pub cpu_cores: f64,
    /// GiB of memory per pod.
    pub memory_gib: f64,
    /// Monthly cost.
    pub monthly: f64,
}

/// `GET /api/cost`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CostView {
    /// The price sheet's currency.
    pub currency: String,
    /// The sum of every item.
    pub total: f64,
    /// One per current deployment.
    pub items: Vec<CostItem>,
}

/// The four metrics with their levels.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DoraSummary {
    /// Deployments in the window.
    pub deployments: usize,
    /// Per day.
    pub deployments_per_day: f64,
    /// Per week.
    pub deployments_per_week: f64,
    /// Median lead time for changes (source commit → deployment), in seconds.
    pub median_lead_time_seconds: Option<f64>,
    /// Deployments that knew their source commit time.
    pub changes_with_lead_time: usize,
    /// Failed deployments (rolled back, failed, degraded).
    pub failures: usize,
    /// Failures ÷ deployments.
    pub change_failure_rate: Option<f64>,
    /// Failures restored by a later release.
    pub restored: usize,
    /// Median time to restore, in seconds.
    pub median_time_to_restore_seconds: Option<f64>,
    /// The DORA 2023 level of each metric (`elite`, `high`, `medium`, `low`).
    pub levels: BTreeMap<String, Option<String>>,
}

impl From<&dora::Metrics> for DoraSummary {
    fn from(m: &dora::Metrics) -> Self {
        let level = |l: Option<dora::Level>| l.map(|l| l.as_str().to_owned());
        Self {
            deployments: m.deployments,
            deployments_per_day: m.deployments_per_day,
            deployments_per_week: m.deployments_per_week,
            median_lead_time_seconds: m.median_lead_time.map(|d| d.as_secs_f64()),
            changes_with_lead_time: m.changes_with_lead_time,
            failures: m.failures,
            change_failure_rate: m.change_failure_rate,
            restored: m.restored,
            median_time_to_restore_seconds: m.median_time_to_restore.map(|d| d.as_secs_f64()),
            levels: BTreeMap::from([
                (
                    "deploymentFrequency".to_owned(),
                    level(m.levels.deployment_frequency),
                ),
                ("leadTime".to_owned(), level(m.levels.lead_time)),
                (
                    "changeFailureRate".to_owned(),
                    level(m.levels.change_failure_rate),
                ),
                ("timeToRestore".to_owned(), level(m.levels.time_to_restore)),
            ]),
        }
    }
}

/// One day of the DORA window.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DoraDay {
    /// The UTC date.
    pub date: String,
    /// Deployments that day.
    pub deployments: usize,
    /// Failed deployments that day.
    pub failures: usize,
    /// Median lead time of that day's deployments, in seconds.
    pub median_lead_time_seconds: Option<f64>,
}

/// `GET /api/dora`.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DoraView {
    /// The window's length in days.
    pub days: u32,
    /// First instant counted.
    pub start: String,
    /// End of the window (now).
    pub end: String,
    /// The component filter, if any.
    pub component: Option<String>,
    /// The environment filter, if any.
    pub environment: Option<String>,
    /// Everything in scope.
    pub overall: DoraSummary,
    /// Per environment.
    pub by_environment: BTreeMap<String, DoraSummary>,
    /// Per component.
    pub by_component: BTreeMap<String, DoraSummary>,
    /// Per team (catalog owner).
    pub by_team: BTreeMap<String, DoraSummary>,
    /// Day by day, oldest first (for charts).
    pub daily: Vec<DoraDay>,
}

impl DoraView {
    fn new(
        report: &dora::DoraReport,
        records: &[dora::DeploymentRecord],
        days: u32,
        component: Option<&EntityRef>,
        environment: Option<&str>,
    ) -> Self {
        let map = |m: &BTreeMap<String, dora::Metrics>| {
            m.iter()
                .map(|(k, v)| (k.clone(), DoraSummary::from(v)))
                .collect()
        };
        let failed: std::collections::HashSet<&str> = records
            .iter()
            .filter(|r| r.status.is_failure())
            .filter_map(|r| r.id.as_deref())
            .collect();
        let mut daily = Vec::new();
        let tz = jiff::tz::TimeZone::UTC;
        let end_date = report.window.end.to_zoned(tz.clone()).date();
        for back in (0..days.min(366)).rev() {
            let Ok(date) = end_date.checked_sub(jiff::Span::new().days(i64::from(back))) else {
                continue;
            };
            let todays: Vec<&dora::DeploymentRecord> = records
                .iter()
                .filter(|r| {
                    r.deployed_at >= report.window.start
                        && r.deployed_at.to_zoned(tz.clone()).date() == date
                })
                .collect();
            let mut leads: Vec<f64> = todays
                .iter()
                .filter_map(|r| {
                    r.source_committed_at
                        .map(|c| r.deployed_at.duration_since(c).as_secs_f64().max(0.0))
                })
                .collect();
            leads.sort_by(f64::total_cmp);
            let median = if leads.is_empty() {
                None
            } else if leads.len() % 2 == 1 {
                Some(leads[leads.len() / 2])
            } else {
                Some(f64::midpoint(
                    leads[leads.len() / 2 - 1],
                    leads[leads.len() / 2],
                ))
            };
            daily.push(DoraDay {
                date: date.to_string(),
                deployments: todays.len(),
                failures: todays
                    .iter()
                    .filter(|r| r.id.as_deref().is_some_and(|id| failed.contains(id)))
                    .count(),
                median_lead_time_seconds: median,
            });
        }
        Self {
            days,
            start: report.window.start.to_string(),
            end: report.window.end.to_string(),
            component: component.map(ToString::to_string),
            environment: environment.map(str::to_owned),
            overall: DoraSummary::from(&report.overall),
            by_environment: map(&report.by_environment),
            by_component: map(&report.by_component),
            by_team: map(&report.by_team),
            daily,
        }
    }
}

/// Split a location into the local Git repository that holds it, the branch when the
/// location names one, and the file's path inside the repository. Two forms are read:
/// `git:<repository>@<branch>:<path>` (what idp-catalog's Git provider records) and
/// `file:<path>` (the longest leading directory with a `HEAD` or `.git` is the
/// repository). `None` for anything else, such as remote URLs.
fn local_repository_of(location: &str) -> Option<(PathBuf, Option<String>, String)> {
    if let Some(rest) = location.strip_prefix("git:") {
        let (repo, branch_and_path) = rest.rsplit_once('@')?;
        let (branch, file) = branch_and_path.split_once(':')?;
        let repo = PathBuf::from(repo.strip_prefix("file://").unwrap_or(repo));
        return repo
            .is_absolute()
            .then(|| (repo, Some(branch.to_owned()), file.to_owned()));
    }
    let path = location.strip_prefix("file:")?;
    let path = path.strip_prefix("//").unwrap_or(path);
    let full = std::path::Path::new(path);
    let mut dir = full.parent();
    while let Some(d) = dir {
        if d.join("HEAD").is_file() || d.join(".git").exists() {
            let rel = full
                .strip_prefix(d)
                .ok()?
                .to_string_lossy()
                .replace('\\', "/");
            return Some((d.to_path_buf(), None, rel));
        }
        dir = d.parent();
    }
    None
}
