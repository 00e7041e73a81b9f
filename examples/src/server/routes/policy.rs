//! `POST /api/policy/check`: Kubernetes manifests (YAML or JSON, several documents) in
//! the body, one verdict row per object back (the shape of `idpctl policy check --format
//! json`). Query parameters `pss=baseline|restricted|none` and `guardrails=true|false`
//! override the server's defaults; `format=policy-report` answers with
//! `wgpolicyk8s.io/v1alpha2` PolicyReports in a `v1` `List` instead (the shape of
//! `idpctl policy check --policy-report`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use idp_core::{ManifestSet, PolicyContext};
use idp_policy::kyverno::{KyvernoPolicy, ValidateRules};
use idp_policy::policy_report::PolicyReports;
use idp_policy::pss::PodSecurity;
use idp_policy::{PolicyOptions, PolicySet};

use crate::server::config::PssSetting;
use crate::server::error::ApiError;
use crate::server::state::AppState;

/// The policy routes.
pub fn router() -> Router<Arc<AppState>> {
    Router::new().route("/api/policy/check", post(check))
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
}

pub(crate) fn build_set(
    pss: PssSetting,
    guardrails: bool,
    kyverno: Option<&Arc<KyvernoPolicy>>,
    files: &[Arc<dyn idp_core::Policy>],
    checked: Checked,
) -> PolicySet {
    let mut set = PolicySet::new().named("idp-server");
    for policy in files {
        set.push(policy.clone(), PolicyOptions::new());
    }
    if let Some(kyverno) = kyverno {
        match checked {
            Checked::AsWritten => set.push(kyverno.clone(), PolicyOptions::new()),
            Checked::Mutated => set.push(
                Arc::new(ValidateRules::new(kyverno.clone())),
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

async fn check(
    State(state): State<Arc<AppState>>,
    Query(params): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let mut pss = state.policy.pss;
    let mut guardrails = state.policy.guardrails;
    let mut policy_report = false;
    for (k, v) in &params {
        match k.as_str() {
            "pss" => {
                pss = match v.as_str() {
                    "none" => PssSetting::None,
                    "baseline" => PssSetting::Baseline,
                    "restricted" => PssSetting::Restricted,
                    _ => {
                        return Err(ApiError::input(format!(
                            "Invalid pss {v:?}: use baseline, restricted or none"
                        )));
                    }
                }
            }
            "guardrails" => {
                guardrails = v.parse().map_err(|_| {
                    ApiError::input(format!("Invalid guardrails {v:?}: use true or false"))
                })?;
            }
            "format" => {
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
            _ => {}
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
    let set = ManifestSet::parse(&body, Some(std::path::Path::new("request")))
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
