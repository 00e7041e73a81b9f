//! Preview environments: verified GitHub/GitLab webhooks drive idp-preview's
//! [`PreviewController`] over a [`NamespaceProvider`] on the server's cluster (the
//! simulated one on embedded defaults), and a [`Reaper`] sweeps in the background.
//!
//! Secrets come from the environment variables named in `idp.yaml` (`previews.
//! githubSecretEnv`, `previews.gitlabTokenEnv`); when neither is set, a random secret is
//! generated once into `<data>/webhook-secret` (mode 0600) and used for both forges.
//!
//! What runs in a preview: the manifests of `previews.manifests` when configured, applied
//! with idp-deploy's `KubeDeployer` inside the preview's namespace (its release records
//! live there too, so closing the pull request leaves nothing behind); otherwise the
//! preview is its namespace (quota, limits, network policy).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use idp_core::cluster::Cluster;
use idp_core::ports::HistoryQuery;
use idp_core::{
    Deployer, Deployment, DeploymentId, EntityRef, EnvironmentName, EnvironmentProvider,
    ManifestSet,
};
use idp_preview::controller::{ControllerConfig, PreviewController};
use idp_preview::event::{Forge, PullRequestAction, PullRequestEvent};
use idp_preview::labels::{self, PreviewId};
use idp_preview::namespace::{NamespaceConfig, NamespaceProvider};
use idp_preview::plan::PreviewConfig;
use idp_preview::reaper::{MemoryPullRequests, PullRequestLookup, Reaper};
use idp_preview::source::{ManifestSource, PreviewSource};
use idp_preview::status::PreviewStatus;
use idp_preview::verify::{VerifyError, WebhookVerifier};
use idp_preview::webhook::{Delivery, WebhookHandler};
use serde::Serialize;

use crate::server::config::PreviewsConfig;

/// How long a webhook delivery waits for its preview before answering `202 Accepted`
/// (the work goes on); below GitHub's 10-second delivery timeout.
pub const ANSWER_WITHIN: Duration = Duration::from_secs(8);

/// The file a generated webhook secret is kept in, under the data directory.
pub const SECRET_FILE: &str = "webhook-secret";

/// One preview as `GET /api/previews` lists it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PreviewRow {
    /// `owner/repo#number`.
    pub preview: String,
    /// The repository.
    pub repo: String,
    /// The pull request number.
    pub number: u64,
    /// The environment name.
    pub environment: String,
    /// The namespace it lives in.
    pub namespace: Option<String>,
    /// `pending`, `ready`, `failed`, `destroying`, or `active` (found in the cluster,
    /// not handled since this server started).
    pub status: String,
    /// Where to open it.
    pub url: Option<String>,
    /// When the reaper removes it unless the pull request moves.
    pub expires_at: Option<String>,
    /// The head commit it runs.
    pub head_sha: Option<String>,
    /// The catalog component it previews.
    pub component: String,
    /// The last message (why it failed).
    pub message: Option<String>,
}

/// Why a webhook delivery was refused.
#[derive(Debug)]
pub enum WebhookError {
    /// Missing or wrong signature/token: 401, nothing done.
    Unauthorized(String),
    /// Too large, malformed, or missing headers: 400/413.
    BadRequest(String),
    /// The body is larger than the limit.
    TooLarge(String),
    /// The forge has no secret configured.
    NotConfigured(String),
}

/// What a verified delivery did.
#[derive(Debug, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookOutcome {
    /// `handled`, `accepted` (still working: answered with 202) or `ignored`.
    pub result: String,
    /// Why it was ignored, or the preview's message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The preview's status after the event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preview: Option<serde_json::Value>,
}

/// The preview area.
#[derive(Debug)]
pub struct Previews {
    controller: Arc<PreviewController>,
    provider: Arc<dyn EnvironmentProvider>,
    plan: PreviewConfig,
    github: Option<(WebhookVerifier, WebhookHandler)>,
    gitlab: Option<(WebhookVerifier, WebhookHandler)>,
    pull_requests: MemoryPullRequests,
    reaper: Reaper,
    /// Where the generated secret is, when one was generated or read.
    pub secret_file: Option<PathBuf>,
    /// Seconds between reaper sweeps.
    pub reap_every: Duration,
}

/// A [`PullRequestLookup`] over the pull requests this server heard about; the ones it
/// never heard about count as open (after a restart only their TTL reaps them).
#[derive(Debug)]
struct HeardPullRequests(MemoryPullRequests);

#[async_trait]
impl PullRequestLookup for HeardPullRequests {
    async fn pull_request(
        &self,
        repo: &str,
        number: u64,
    ) -> idp_core::Result<Option<PullRequestEvent>> {
        if let Some(known) = self.0.pull_request(repo, number).await? {
            return Ok(Some(known));
        }
        Ok(Some(PullRequestEvent::new(
            Forge::GitHub,
            PullRequestAction::Opened,
            repo,
            number,
        )))
    }
}

/// Deploys a preview's release with idp-deploy's `KubeDeployer` inside the preview's
/// namespace (records included), so destroying the namespace removes everything.
#[derive(Debug)]
struct NamespacedDeployer {
    cluster: Cluster,
}

impl NamespacedDeployer {
    fn inner(&self, environment: &EnvironmentName) -> idp_deploy::KubeDeployer {
        let ns = environment.as_str();
        idp_deploy::KubeDeployer::new(self.cluster.clone(), ns)
            .default_namespace(ns)
            .keep_history(3)
            .health_timeout(Duration::from_secs(120))
            .field_manager(labels::MANAGED_BY_VALUE)
    }
}

#[async_trait]
impl Deployer for NamespacedDeployer {
    async fn deploy(&self, release: &idp_core::Release) -> idp_core::Result<Deployment> {
        let span = tracing::info_span!("preview.deploy", environment = %release.environment);
        tracing::Instrument::instrument(self.inner(&release.environment).deploy(release), span)
            .await
    }

    async fn history(&self, query: &HistoryQuery) -> idp_core::Result<Vec<Deployment>> {
        self.inner(&query.environment).history(query).await
    }

    async fn rollback(
        &self,
        component: &EntityRef,
        environment: &EnvironmentName,
        to: &DeploymentId,
    ) -> idp_core::Result<Deployment> {
        self.inner(environment)
            .rollback(component, environment, to)
            .await
    }
}

/// Read or create the generated secret.
fn generated_secret(data: &Path) -> idp_core::Result<(String, PathBuf)> {
    let path = data.join(SECRET_FILE);
    if let Ok(text) = std::fs::read_to_string(&path) {
        let secret = text.trim().to_owned();
        if !secret.is_empty() {
            return Ok((secret, path));
        }
    }
    let mut bytes = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| idp_core::Error::internal("cannot generate a random webhook secret"))?;
    let secret = bytes.iter().fold(String::new(), |mut acc, b| {
        let _ = write!(acc, "{b:02x}");
        acc
    });
    let write_err = |e: std::io::Error| {
        idp_core::Error::unavailable(format!(
            "cannot write the webhook secret to {}; is the data directory writable?",
            path.display()
        ))
        .with_source(e)
    };
    #[cfg(unix)]
    {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&path)
            .map_err(write_err)?;
        file.write_all(secret.as_bytes()).map_err(write_err)?;
    }
    #[cfg(not(unix))]
    std::fs::write(&path, &secret).map_err(write_err)?;
    Ok((secret, path))
}

fn env_secret(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn handler(forge: Forge, secret: &str) -> idp_core::Result<(WebhookVerifier, WebhookHandler)> {
    let verifier = WebhookVerifier::new(forge, secret)?;
    Ok((verifier.clone(), WebhookHandler::new(verifier)))
}

impl Previews {
    /// Wire the area: secrets, the namespace provider on `client`'s cluster, the
    /// controller and the reaper.
    ///
    /// # Errors
    /// An invalid `previews` section, or a secret that cannot be written.
    pub fn start(
        config: &PreviewsConfig,
        client: kube::Client,
        data: &Path,
    ) -> idp_core::Result<Self> {
        let plan: PreviewConfig = match &config.plan {
            None => PreviewConfig::default(),
            Some(value) => serde_json::from_value(value.clone()).map_err(|e| {
                idp_core::Error::invalid_input(format!("idp.yaml: previews.plan: {e}"))
            })?,
        };
        plan.validate()
            .map_err(|e| e.context("idp.yaml: previews.plan"))?;
        let namespace: NamespaceConfig = match &config.namespace {
            None => NamespaceConfig::default(),
            Some(value) => serde_json::from_value(value.clone()).map_err(|e| {
                idp_core::Error::invalid_input(format!("idp.yaml: previews.namespace: {e}"))
            })?,
        };
        let github_env = env_secret(&config.github_secret_env);
        let gitlab_env = env_secret(&config.gitlab_token_env);
        let mut secret_file = None;
        let (github_secret, gitlab_secret) = if github_env.is_none() && gitlab_env.is_none() {
            let (secret, path) = generated_secret(data)?;
            tracing::info!(
                file = %path.display(),
                "webhook secret: neither {} nor {} is set, using the generated secret in this file for GitHub (X-Hub-Signature-256) and GitLab (X-Gitlab-Token)",
                config.github_secret_env,
                config.gitlab_token_env
            );
            secret_file = Some(path);
            (Some(secret.clone()), Some(secret))
        } else {
            (github_env, gitlab_env)
        };
        let github = github_secret
            .as_deref()
            .map(|s| handler(Forge::GitHub, s))
            .transpose()?;
        let gitlab = gitlab_secret
            .as_deref()
            .map(|s| handler(Forge::GitLab, s))
            .transpose()?;
        let cluster = Cluster::new(client);
        let provider: Arc<dyn EnvironmentProvider> =
            Arc::new(NamespaceProvider::new(cluster.clone(), namespace));
        let source: Arc<dyn PreviewSource> = match &config.manifests {
            Some(dir) => Arc::new(ManifestSource::from_dir(dir)),
            None => Arc::new(ManifestSource::from_set(ManifestSet::new())),
        };
        let ttl = Duration::from_secs(config.ttl_hours.max(1).saturating_mul(3600));
        let controller = Arc::new(
            PreviewController::new(
                provider.clone(),
                Arc::new(NamespacedDeployer { cluster }),
                source,
            )
            .with_config(ControllerConfig::default().with_ttl(ttl)),
        );
        let pull_requests = MemoryPullRequests::new();
        // Open pull requests that no longer match the plan (a required label removed,
        // turned into a draft) lose their preview too.
        let wanted_plan = plan.clone();
        let reaper = Reaper::new(
            provider.clone(),
            Arc::new(HeardPullRequests(pull_requests.clone())),
        )
        .with_still_wanted(Arc::new(move |pr: &PullRequestEvent| {
            match idp_preview::plan::plan(pr, &wanted_plan) {
                idp_preview::decision::Decision::Destroy { reason, .. } => Some(reason),
                _ => None,
            }
        }));
        Ok(Self {
            controller,
            provider,
            plan,
            github,
            gitlab,
            pull_requests,
            reaper,
            secret_file,
            reap_every: Duration::from_secs(config.reap_seconds.max(1)),
        })
    }

    /// Learn about open previews already in the cluster (after a restart).
    pub async fn recover(&self) {
        if let Err(e) = self.controller.recover().await {
            tracing::warn!(error = %e.report(), "cannot list existing previews; continuing without them");
        }
    }

    /// Verify, parse and act on one delivery.
    ///
    /// # Errors
    /// A refused delivery; nothing was done.
    pub async fn webhook(
        &self,
        forge: Forge,
        headers: &axum::http::HeaderMap,
        body: &[u8],
    ) -> Result<WebhookOutcome, WebhookError> {
        let (verifier, handler) = match forge {
            Forge::GitHub => self.github.as_ref(),
            Forge::GitLab => self.gitlab.as_ref(),
        }
        .ok_or_else(|| {
            WebhookError::NotConfigured(format!(
                "no {forge:?} webhook secret is configured; set the environment variable named in idp.yaml previews"
            ))
        })?;
        // Verify before parsing: any signature problem is a 401 and nothing happens.
        let signature = headers
            .get(verifier.header_name())
            .and_then(|v| v.to_str().ok());
        if let Err(e) = verifier.verify(signature, body) {
            return Err(match e {
                VerifyError::BodyTooLarge { .. } => WebhookError::TooLarge(e.to_string()),
                _ => WebhookError::Unauthorized(e.to_string()),
            });
        }
        let delivery = handler
            .handle(headers, body)
            .map_err(|e| WebhookError::BadRequest(e.report()))?;
        let event = match delivery {
            Delivery::Ignored { reason } => {
                tracing::info!(%reason, "webhook delivery ignored");
                return Ok(WebhookOutcome {
                    result: "ignored".into(),
                    reason: Some(reason),
                    preview: None,
                });
            }
            Delivery::Event(event) => *event,
        };
        self.pull_requests.upsert(event.clone());
        if !event.is_open() {
            self.pull_requests.close(&event.repo, event.number);
        }
        // The work runs in its own task: a forge that gives up waiting (GitHub waits 10 s)
        // or a dropped connection must not cancel a half-created or half-deleted preview.
        let controller = self.controller.clone();
        let plan = self.plan.clone();
        let span = tracing::Span::current();
        let job = tokio::spawn(tracing::Instrument::instrument(
            async move { controller.handle(&event, &plan).await },
            span,
        ));
        match tokio::time::timeout(ANSWER_WITHIN, job).await {
            Ok(Ok(Ok(status))) => Ok(WebhookOutcome {
                result: "handled".into(),
                reason: status.message.clone(),
                preview: serde_json::to_value(&status).ok(),
            }),
            Ok(Ok(Err(e))) => Err(WebhookError::BadRequest(e.report())),
            Ok(Err(e)) => Err(WebhookError::BadRequest(format!(
                "the preview controller stopped: {e}"
            ))),
            Err(_) => Ok(WebhookOutcome {
                result: "accepted".into(),
                reason: Some(format!(
                    "still working after {} s; GET /api/previews shows the outcome",
                    ANSWER_WITHIN.as_secs()
                )),
                preview: None,
            }),
        }
    }

    /// Every preview in the cluster with its last known status, by preview id.
    ///
    /// # Errors
    /// The cluster cannot be listed.
    pub async fn list(&self) -> idp_core::Result<Vec<PreviewRow>> {
        let span = tracing::info_span!("preview.list");
        let envs = tracing::Instrument::instrument(self.provider.list(), span).await?;
        let statuses: BTreeMap<PreviewId, PreviewStatus> = self
            .controller
            .statuses()
            .await
            .into_iter()
            .map(|s| (s.preview.clone(), s))
            .collect();
        let mut rows = Vec::new();
        for env in envs {
            if !labels::is_ours(&env.labels) {
                continue;
            }
            let Some(id) = PreviewId::from_labels(&env.labels) else {
                continue;
            };
            let last = statuses.get(&id);
            let component = self
                .controller
                .config()
                .component_for(id.repo())
                .map(|c| c.to_string())
                .unwrap_or_default();
            rows.push(PreviewRow {
                preview: id.to_string(),
                repo: id.repo().to_owned(),
                number: id.number(),
                environment: env.name.to_string(),
                namespace: env.namespace.clone(),
                status: last.map_or_else(|| "active".to_owned(), |s| s.phase.as_str().to_owned()),
                url: env
                    .url
                    .clone()
                    .or_else(|| last.and_then(|s| s.urls.first().cloned())),
                expires_at: env.expires_at.map(|t| t.to_string()),
                head_sha: env
                    .labels
                    .get(labels::HEAD_SHA)
                    .cloned()
                    .or_else(|| last.and_then(|s| s.head_sha.clone())),
                component,
                message: last.and_then(|s| s.message.clone()),
            });
        }
        rows.sort_by(|a, b| a.preview.cmp(&b.preview));
        Ok(rows)
    }

    /// One reaper sweep.
    pub async fn sweep(&self) {
        match self.reaper.sweep().await {
            Ok(report) => {
                if !report.reaped.is_empty() || !report.failed.is_empty() {
                    tracing::info!(
                        examined = report.examined,
                        reaped = report.reaped.len(),
                        failed = report.failed.len(),
                        "preview reaper sweep"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e.report(), "preview reaper sweep failed"),
        }
    }
}
