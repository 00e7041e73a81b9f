//! `POST /api/policy/check`: Kubernetes manifests (YAML or JSON, several documents) in
//! the body, one verdict row per object back (the shape of `idpctl policy check --format
//! json`). Query parameters `pss=baseline|restricted|none` and `guardrails=true|false`
//! override the server's defaults; `format=policy-report` answers with
//! `wgpolicyk8s.io/v1alpha2` PolicyReports in a `v1` `List` instead (the shape of
//! `idpctl policy check --policy-report`).
//!
//! `GET /api/policy/audit`: the same policies over what already runs in the server's
//! cluster, as Gatekeeper's audit does (see `idp_policy::audit`).
//!
//! `GET /api/policy/sync`: how the rebuilds of the synced policy sets went.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use idp_core::cluster::{Cluster, GroupKind};
use idp_core::{ManifestSet, PolicyContext};
use idp_policy::audit::Audit;
use idp_policy::kyverno::{KyvernoPolicy, ValidateRules};
use idp_policy::policy_report::PolicyReports;
use idp_policy::pss::PodSecurity;
use idp_policy::{PolicyOptions, PolicySet, Swappable};

use crate::server::config::PssSetting;
use crate::server::error::ApiError;
use crate::server::state::AppState;

/// The policy routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/policy/check", post(check))
        .route("/api/policy/audit", get(audit))
        .route("/api/policy/sync", get(sync))
}

/// `GET /api/policy/sync`: how the rebuilds of the synced policy sets went
/// (`policy.kyvernoSync`, `policy.gatekeeperSync`), one entry per engine: when, how many
/// rules, constraints or mutators are in place, which policies kept in the cluster were
/// left out and why, and the error of a rebuild that failed. Empty until a sync ran.
async fn sync(State(state): State<Arc<AppState>>) -> Json<Vec<crate::server::state::SyncOutcome>> {
    Json(state.syncs())
}

/// Largest manifest body accepted.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// One object's verdict (the shape shared with `idpctl policy check --format json`).
pub use idp_policy::report::CheckRow;

/// Which objects a set built by [`build_set`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Checked {
    /// Manifests as written: the Kyverno mutate rules run before the validate rules,
    /// predicting admission.
    AsWritten,
    /// Objects the Kyverno mutate rules have already changed (the validating webhook
    /// after the mutating one, a deployment after its mutations): the validate rules
    /// check them as given, since mutating twice is not idempotent for every patch.
    Mutated,
    /// Objects stored in the cluster (an audit): the validate rules as given, of the
    /// Kyverno policies background scans apply (`spec.background` not false).
    Stored,
}

pub(crate) fn build_set(
    pss: PssSetting,
    guardrails: bool,
    kyverno: Option<&Arc<Swappable<KyvernoPolicy>>>,
    files: &[Arc<dyn idp_core::Policy>],
    checked: Checked,
) -> PolicySet {
    let mut set = PolicySet::new().named("idp-server");
    for policy in files {
        set.push(policy.clone(), PolicyOptions::new());
    }
    // The set in place at each evaluation: `policy.kyvernoSync` may replace it.
    if let Some(kyverno) = kyverno {
        match checked {
            Checked::AsWritten => set.push(kyverno.clone(), PolicyOptions::new()),
            Checked::Mutated => set.push(
                Arc::new(ValidateRules::following(kyverno.clone())),
                PolicyOptions::new(),
            ),
            Checked::Stored => set.push(
                Arc::new(ValidateRules::following(kyverno.clone()).for_background()),
                PolicyOptions::new(),
            ),
        }
    }
    match pss {
        PssSetting::None => {}
        PssSetting::Baseline => set = set.with_policy(PodSecurity::baseline()),
        PssSetting::Restricted => set = set.with_policy(PodSecurity::restricted()),
    }
    if guardrails {
        // Added as built-ins, so they share the set's one walk of each object.
        for policy in idp_policy::config::BuiltinPolicy::guardrails() {
            set.add_builtin(policy, PolicyOptions::new());
        }
    }
    set
}

/// Apply the query parameter `key=value` when it is `pss` or `guardrails`; whether it was.
fn policy_override(
    key: &str,
    value: &str,
    pss: &mut PssSetting,
    guardrails: &mut bool,
) -> Result<bool, ApiError> {
    match key {
        "pss" => {
            *pss = match value {
                "none" => PssSetting::None,
                "baseline" => PssSetting::Baseline,
                "restricted" => PssSetting::Restricted,
                _ => {
                    return Err(ApiError::input(format!(
                        "Invalid pss {value:?}: use baseline, restricted or none"
                    )));
                }
            };
        }
        "guardrails" => {
            *guardrails = value.parse().map_err(|_| {
                ApiError::input(format!("Invalid guardrails {value:?}: use true or false"))
            })?;
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// `GET /api/policy/audit`: the server's policies over the live objects of its cluster
/// (see [`idp_policy::audit`]), as stored: the Kyverno validate rules alone, nothing
/// mutated, of the policies whose `spec.background` is not false. Query parameters: `kind=Kind.group` (repeatable; default every listable
/// kind but Events), `namespace` and `excludeNamespace` (repeatable), `skipControlled`
/// (`true` leaves out what a pod controller that is read made, see
/// [`Audit::skipping_controlled`]), `pss` and `guardrails` as for the check. Answers an [`AuditReport`](idp_policy::audit::AuditReport):
/// counts, per-rule summaries, a capped sample, and what was read of each kind (with
/// the error of a kind that could not be listed).
async fn audit(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let mut pss = state.policy.pss;
    let mut guardrails = state.policy.guardrails;
    let (mut kinds, mut namespaces, mut excluded) = (Vec::new(), Vec::new(), Vec::new());
    let mut skip_controlled = false;
    for (k, v) in &params {
        if policy_override(k, v, &mut pss, &mut guardrails)? {
            continue;
        }
        match k.as_str() {
            "kind" => kinds.push(
                v.parse::<GroupKind>()
                    .map_err(|e| ApiError::input(format!("Invalid kind {v:?}: {}", e.report())))?,
            ),
            "namespace" => namespaces.push(v.clone()),
            "excludeNamespace" => excluded.push(v.clone()),
            "skipControlled" => {
                skip_controlled = v.parse().map_err(|_| {
                    ApiError::input(format!("Invalid skipControlled {v:?}: use true or false"))
                })?;
            }
            _ => {}
        }
    }
    let policies = build_set(
        pss,
        guardrails,
        state.kyverno.get(),
        state.audit_files.get().map_or(&[][..], Vec::as_slice),
        Checked::Stored,
    );
    let audit = Audit::new(Cluster::new(state.cluster.client.clone()))
        .with_kinds(kinds)
        .with_namespaces(namespaces)
        .excluding_namespaces(excluded)
        .skipping_controlled(skip_controlled);
    // Every object of the cluster checked: off the workers answering requests.
    let found = crate::server::on_blocking_pool(async move {
        audit.report(&policies, &PolicyContext::new()).await
    })
    .await??;
    Ok(Json(found).into_response())
}

async fn check(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut pss = state.policy.pss;
    let mut guardrails = state.policy.guardrails;
    let mut policy_report = false;
    for (k, v) in &params {
        if policy_override(k, v, &mut pss, &mut guardrails)? {
            continue;
        }
        if k == "format" {
            policy_report = match v.as_str() {
                "rows" => false,
                "policy-report" => true,
                _ => {
                    return Err(ApiError::input(format!(
                        "Invalid format {v:?}: use rows (the default) or policy-report"
                    )));
                }
            }
        }
    }
    if body.len() > MAX_BODY {
        return Err(ApiError::input(format!(
            "The manifests are {} bytes; the limit is {MAX_BODY}",
            body.len()
        )));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::input(
            "The request body is empty: send Kubernetes manifests as YAML (several documents separated by ---) or JSON",
        ));
    }
    // Up to MAX_BODY of manifests parsed and checked: off the workers answering requests.
    crate::server::on_blocking_pool(async move {
        check_body(&state, &body, pss, guardrails, policy_report)
    })
    .await?
}

/// The parse and check of [`check`]'s body.
fn check_body(
    state: &AppState,
    body: &[u8],
    pss: PssSetting,
    guardrails: bool,
    policy_report: bool,
) -> Result<Response, ApiError> {
    let set = ManifestSet::parse(body, Some(std::path::Path::new("request")))
        .map_err(|e| ApiError::input(format!("Malformed manifests: {}", e.report())))?;
    if set.is_empty() {
        return Err(ApiError::input("The body holds no Kubernetes objects"));
    }
    let policies = build_set(
        pss,
        guardrails,
        state.kyverno.get(),
        state.policy_files.get().map_or(&[][..], Vec::as_slice),
        Checked::AsWritten,
    );
    let ctx = PolicyContext::new();
    if policy_report {
        let mut reports = PolicyReports::new("idp-server", std::time::SystemTime::now());
        for object in &set {
            let result = policies.check_object(object, &ctx);
            reports.add(object, &result, &policies.applicable_policies(object, &ctx));
        }
        let list =
            serde_json::json!({"apiVersion": "v1", "kind": "List", "items": reports.finish()});
        return Ok(Json(list).into_response());
    }
    let rows: Vec<CheckRow> = set
        .iter()
        .map(|object| CheckRow::new("request", object, policies.check_object(object, &ctx)))
        .collect();
    Ok(Json(rows).into_response())
}
