//! `PreviewController::handle`: planning from the provider's own list, then applying.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use idp_core::EnvironmentProvider;
use idp_preview::controller::PreviewController;
use idp_preview::event::{Forge, PullRequestAction, PullRequestEvent};
use idp_preview::plan::PreviewConfig;
use idp_preview::status::PreviewPhase;
use idp_testkit::doubles::{MemoryDeployer, MemoryEnvironments};

fn pr(action: PullRequestAction, number: u64, sha: &str, secs: i64) -> PullRequestEvent {
    PullRequestEvent::new(Forge::GitHub, action, "acme/cart", number)
        .with_head(format!("feature/{number}"), sha)
        .with_base("main")
        .at(jiff::Timestamp::from_second(1_700_000_000 + secs).unwrap())
}

#[tokio::test]
async fn the_cap_counts_what_the_provider_lists_and_never_evicts() {
    let envs = Arc::new(MemoryEnvironments::new());
    let controller = PreviewController::new(
        envs.clone(),
        Arc::new(MemoryDeployer::new()),
        Arc::new(idp_preview::source::ManifestSource::from_set(
            idp_core::ManifestSet::default(),
        )),
    );
    let config = PreviewConfig {
        max_previews_per_repo: Some(1),
        ..PreviewConfig::default()
    };

    let first = controller
        .handle(&pr(PullRequestAction::Opened, 1, "aaaa111", 0), &config)
        .await
        .unwrap();
    assert_eq!(first.phase, PreviewPhase::Ready, "{first:?}");
    assert_eq!(envs.list().await.unwrap().len(), 1);

    // A second pull request is over the cap: ignored with a reason, the first untouched.
    let second = controller
        .handle(&pr(PullRequestAction::Opened, 2, "bbbb222", 1), &config)
        .await
        .unwrap();
    assert_eq!(second.phase, PreviewPhase::Ignored, "{second:?}");
    assert!(
        second.message.as_deref().unwrap_or("").contains('1'),
        "{second:?}"
    );
    assert_eq!(envs.list().await.unwrap().len(), 1);

    // The first one still updates at the cap: it already has a preview.
    let push = controller
        .handle(
            &pr(PullRequestAction::Synchronize, 1, "cccc333", 2),
            &config,
        )
        .await
        .unwrap();
    assert_eq!(push.phase, PreviewPhase::Ready, "{push:?}");
    assert_eq!(push.head_sha.as_deref(), Some("cccc333"));

    // Closing frees the slot; the second pull request then gets one on its next push.
    let closed = controller
        .handle(
            &pr(PullRequestAction::Closed { merged: true }, 1, "cccc333", 3),
            &config,
        )
        .await
        .unwrap();
    assert_eq!(closed.phase, PreviewPhase::Gone, "{closed:?}");
    let again = controller
        .handle(
            &pr(PullRequestAction::Synchronize, 2, "dddd444", 4),
            &config,
        )
        .await
        .unwrap();
    assert_eq!(again.phase, PreviewPhase::Ready, "{again:?}");
    assert_eq!(envs.list().await.unwrap().len(), 1);
}
