//! `idpctl preview plan|verify`: what would the preview controller do with this webhook,
//! and is this delivery really signed with our secret? Thin layers over idp-preview's
//! parsers, planner and verifier; nothing touches a cluster or a repository.

use std::io::Read as _;
use std::path::{Path, PathBuf};

use clap::Subcommand;
use idp_preview::decision::Decision;
use idp_preview::event::Forge;
use idp_preview::plan::{PlanContext, PreviewConfig, plan_with};
use idp_preview::verify::{DEFAULT_MAX_BODY, WebhookVerifier};
use idp_preview::webhook::Delivery;
use serde::Serialize;

use crate::output::{Color, Format, Out};
use crate::{ExitCode, Failure};

/// The forge a payload comes from (`--provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Provider {
    /// GitHub `pull_request` webhooks (X-GitHub-Event, X-Hub-Signature-256).
    Github,
    /// GitLab merge request hooks (X-Gitlab-Event, X-Gitlab-Token).
    Gitlab,
}

impl Provider {
    fn forge(self) -> Forge {
        match self {
            Provider::Github => Forge::GitHub,
            Provider::Gitlab => Forge::GitLab,
        }
    }

    fn default_event(self) -> &'static str {
        match self {
            Provider::Github => "pull_request",
            Provider::Gitlab => "Merge Request Hook",
        }
    }
}

/// `idpctl preview ...`.
#[derive(Debug, Subcommand)]
pub enum PreviewCommand {
    /// Create, update, remove, list and reap preview environments on a cluster.
    #[command(flatten)]
    Env(crate::preview_env::PreviewEnvCommand),
    /// Show what a webhook payload would do to previews: ensure, destroy or ignore.
    ///
    /// Parses a saved GitHub `pull_request` or GitLab merge request payload, applies the
    /// preview config (repos, required labels, branch patterns, drafts, forks, the
    /// per-repository cap) and prints the decision with the environment name. Nothing is
    /// created or deleted. The signature is not checked (see `preview verify`). Exits 0
    /// for every decision, 2 when the payload or config is invalid.
    #[command(
        after_help = "OUTPUT (--format json):\n  {action: \"ensure\"|\"destroy\"|\"ignore\", environment, namespace, repo, pr, head_sha, reason}\n\nEXAMPLES:\n  idpctl preview plan --provider github --event pull_request --payload opened.json\n  idpctl preview plan --provider gitlab --payload mr.json --config preview.yaml --format json\n  idpctl preview plan --provider github --payload - --open-previews 10 < delivery.json"
    )]
    Plan {
        /// The forge that sent the payload.
        #[arg(long, value_enum)]
        provider: Provider,
        /// The event header's value (X-GitHub-Event / X-Gitlab-Event); defaults to
        /// `pull_request` (GitHub) or `Merge Request Hook` (GitLab).
        #[arg(long, value_name = "NAME")]
        event: Option<String>,
        /// The payload file (`-` reads stdin).
        #[arg(long, value_name = "FILE")]
        payload: PathBuf,
        /// A preview config YAML file (repos, requiredLabels, headBranches, baseBranches,
        /// skipDrafts, allowForks, maxPreviewsPerRepo, prefix); default: every open,
        /// non-draft, non-fork pull request.
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// How many previews the repository has now (for maxPreviewsPerRepo).
        #[arg(long, value_name = "N", default_value_t = 0)]
        open_previews: usize,
        /// This pull request already has a preview (it is updated even at the cap).
        #[arg(long)]
        has_preview: bool,
    },
    /// Check a webhook delivery's signature against the secret.
    ///
    /// GitHub: --signature is the X-Hub-Signature-256 header (`sha256=<hex>`), the
    /// HMAC-SHA256 of the payload's exact bytes under the secret. GitLab: --signature is
    /// the X-Gitlab-Token header, compared with the secret. Both comparisons are constant
    /// time, and bodies larger than --max-body are rejected first. Exits 0 when valid, 1
    /// when invalid (the reason on stderr), 2 on usage or I/O errors.
    #[command(
        after_help = "EXAMPLES:\n  idpctl preview verify --provider github --secret \"$SECRET\" --signature \"sha256=757107ea...\" --payload body.json\n  IDP_WEBHOOK_SECRET=s3cret idpctl preview verify --provider gitlab --signature s3cret --payload mr.json"
    )]
    Verify {
        /// The forge that sent the delivery.
        #[arg(long, value_enum)]
        provider: Provider,
        /// The webhook secret (or set IDP_WEBHOOK_SECRET, which keeps it out of the
        /// process list).
        #[arg(long, env = "IDP_WEBHOOK_SECRET", hide_env_values = true)]
        secret: String,
        /// The signature header's value (GitHub) or the token header's value (GitLab).
        #[arg(long, value_name = "SIG")]
        signature: String,
        /// The payload file, byte for byte as received (`-` reads stdin).
        #[arg(long, value_name = "FILE")]
        payload: PathBuf,
        /// The largest accepted body in bytes.
        #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_BODY)]
        max_body: usize,
    },
}

/// Run a `preview` subcommand.
pub fn run(command: &PreviewCommand, out: &Out) -> Result<ExitCode, Failure> {
    match command {
        PreviewCommand::Env(c) => crate::preview_env::run(c, out),
        PreviewCommand::Plan {
            provider,
            event,
            payload,
            config,
            open_previews,
            has_preview,
        } => plan(
            *provider,
            event.as_deref(),
            payload,
            config.as_deref(),
            PlanContext {
                open_previews: *open_previews,
                has_preview: *has_preview,
            },
            out,
        ),
        PreviewCommand::Verify {
            provider,
            secret,
            signature,
            payload,
            max_body,
        } => verify(*provider, secret, signature, payload, *max_body, out),
    }
}

fn read_payload(path: &Path) -> Result<Vec<u8>, Failure> {
    if path.as_os_str() == "-" {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::io(format!("cannot read the payload from stdin: {e}")))?;
        return Ok(bytes);
    }
    std::fs::read(path)
        .map_err(|e| Failure::io(format!("cannot read payload {}: {e}", path.display())))
}

/// One line of `preview plan` output.
#[derive(Debug, Serialize)]
struct PlanRow {
    action: &'static str,
    environment: Option<String>,
    namespace: Option<String>,
    repo: Option<String>,
    pr: Option<u64>,
    head_sha: Option<String>,
    reason: Option<String>,
}

fn plan(
    provider: Provider,
    event: Option<&str>,
    payload: &Path,
    config: Option<&Path>,
    ctx: PlanContext,
    out: &Out,
) -> Result<ExitCode, Failure> {
    let config = match config {
        Some(path) => PreviewConfig::load(path)?,
        None => PreviewConfig::default(),
    };
    let body = read_payload(payload)?;
    let event_name = event.unwrap_or(provider.default_event());
    let parsed = match provider {
        Provider::Github => idp_preview::github::parse(event_name, &body),
        Provider::Gitlab => idp_preview::gitlab::parse(event_name, &body),
    }
    .map_err(|e| Failure::usage(format!("{}: {}", payload.display(), e.report())))?;
    let row = match parsed {
        Delivery::Ignored { reason } => PlanRow {
            action: "ignore",
            environment: None,
            namespace: None,
            repo: None,
            pr: None,
            head_sha: None,
            reason: Some(reason),
        },
        Delivery::Event(e) => {
            let decision = plan_with(&e, &config, &ctx);
            let environment = decision.environment().map(ToString::to_string);
            let (action, reason) = match decision {
                Decision::Ensure { .. } => ("ensure", None),
                Decision::Destroy { reason, .. } => ("destroy", Some(reason)),
                Decision::Ignore { reason } => ("ignore", Some(reason)),
            };
            PlanRow {
                action,
                namespace: environment.clone(),
                environment,
                repo: Some(e.repo.clone()),
                pr: Some(e.number),
                head_sha: Some(e.head_sha.clone()),
                reason,
            }
        }
    };
    if out.format == Format::Table {
        let color = if row.action == "ensure" {
            Color::Green
        } else {
            Color::Red
        };
        let what = match (&row.repo, row.pr) {
            (Some(repo), Some(pr)) => format!(" {repo}#{pr}"),
            _ => String::new(),
        };
        let at = row
            .head_sha
            .as_deref()
            .map(|s| format!(" at {}", s.get(..12).unwrap_or(s)))
            .unwrap_or_default();
        let env = row
            .environment
            .as_deref()
            .map(|e| format!(" → {e}"))
            .unwrap_or_default();
        say!("{}{what}{at}{env}", out.paint(row.action, color));
        if let Some(reason) = &row.reason {
            say!("  {reason}");
        }
    } else {
        out.data(&row)?;
    }
    Ok(ExitCode::Ok)
}

fn verify(
    provider: Provider,
    secret: &str,
    signature: &str,
    payload: &Path,
    max_body: usize,
    out: &Out,
) -> Result<ExitCode, Failure> {
    let verifier = WebhookVerifier::new(provider.forge(), secret)
        .map_err(|e| Failure::usage(e.to_string()))?
        .max_body(max_body);
    let body = read_payload(payload)?;
    match verifier.verify(Some(signature), &body) {
        Ok(()) => {
            eprintln!(
                "{} the {} matches the payload ({} bytes)",
                out.paint("valid:", Color::Green),
                verifier.header_name(),
                body.len()
            );
            Ok(ExitCode::Ok)
        }
        Err(e) => {
            eprintln!("{} {e}", out.paint("invalid:", Color::Red));
            Ok(ExitCode::Findings)
        }
    }
}
