//! The creation area of the server: the scaffolder, preview environments and admission,
//! wired once at start ([`install`]) and kept in `AppState::create`. Background work
//! (the preview reaper) runs in [`spawn_background`] until shutdown.

use std::sync::Arc;

use idp_policy::admission::AdmissionHandler;
use idp_policy::mutate::{DefaultResources, StandardLabels};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::server::config::Config;
use crate::server::error::ApiError;
use crate::server::previews::Previews;
use crate::server::scaffolder::Scaffolding;
use crate::server::state::AppState;

/// Everything the creation routes share.
#[derive(Debug)]
pub struct CreateArea {
    /// Scaffolder tasks.
    pub scaffolding: Arc<Scaffolding>,
    /// Preview environments.
    pub previews: Arc<Previews>,
    /// Answers AdmissionReviews with the server's policy set and default mutations.
    pub admission: AdmissionHandler,
}

/// Build the area and put it into `state`.
///
/// # Errors
/// An unwritable data directory or an invalid `previews` section.
pub async fn install(state: &Arc<AppState>, config: &Config) -> idp_core::Result<()> {
    let scaffolding = Arc::new(Scaffolding::start(state, &state.data, &config.catalog.glob).await?);
    let previews = Arc::new(Previews::start(
        &config.previews,
        state.cluster.client.clone(),
        &state.data,
    )?);
    previews.recover().await;
    let policies = crate::server::routes::policy::build_set(
        state.policy.pss,
        state.policy.guardrails,
        state.kyverno.get(),
        state.policy_files.get().map_or(&[][..], Vec::as_slice),
        // The validating webhook receives what the mutating webhook (below) produced.
        crate::server::routes::policy::Checked::Mutated,
    );
    let mut admission = AdmissionHandler::new()
        .with_policy(policies)
        .with_mutation(StandardLabels::default())
        .with_mutation(DefaultResources::default());
    if let Some(mutators) = state.gatekeeper_mutators.get() {
        admission = admission.with_shared_mutation(mutators.clone());
    }
    if let Some(kyverno) = state.kyverno.get() {
        admission = admission.with_shared_mutation(kyverno.clone());
    }
    let _ = state.create.set(Arc::new(CreateArea {
        scaffolding,
        previews,
        admission,
    }));
    Ok(())
}

/// The area, or 503 when the server started without it.
pub fn area(state: &AppState) -> Result<&Arc<CreateArea>, ApiError> {
    state.create.get().ok_or_else(|| ApiError {
        status: axum::http::StatusCode::SERVICE_UNAVAILABLE,
        name: "ServiceUnavailableError",
        message: "the scaffolder, previews and admission are not wired in this server".into(),
    })
}

/// Start the preview reaper; it sweeps every `previews.reapSeconds` until `stop` turns
/// true.
pub fn spawn_background(state: &Arc<AppState>, mut stop: watch::Receiver<bool>) -> JoinHandle<()> {
    let previews = state.create.get().map(|a| a.previews.clone());
    tokio::spawn(async move {
        let Some(previews) = previews else { return };
        loop {
            tokio::select! {
                () = tokio::time::sleep(previews.reap_every) => previews.sweep().await,
                changed = stop.changed() => {
                    if changed.is_err() || *stop.borrow() {
                        break;
                    }
                }
            }
        }
        tracing::info!("preview reaper stopped");
    })
}
