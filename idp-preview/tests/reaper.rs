//! The reaper: expired previews and orphans, found by listing, rate-limited, never
//! touching what is not ours.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{ensure, event};
use idp_core::EnvironmentProvider;
use idp_core::model::EnvironmentSpec;
use idp_preview::controller::ControllerConfig;
use idp_preview::event::PullRequestAction;
use idp_preview::reaper::{MemoryPullRequests, ReapReason, Reaper, ReaperConfig};
use idp_preview::status::PreviewPhase;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};

#[derive(Debug)]
struct Down;

#[async_trait::async_trait]
impl idp_preview::reaper::PullRequestLookup for Down {
    async fn pull_request(
        &self,
        _: &str,
        _: u64,
    ) -> idp_core::Result<Option<idp_preview::event::PullRequestEvent>> {
        Err(idp_core::Error::unavailable("forge unreachable"))
    }
}

const SHA: &str = "abcdef0123456789abcdef0123456789abcdef01";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_that_missed_closed_still_cleans_up_after_restart() {
    let cluster = common::cluster().await;
    let prs = MemoryPullRequests::new();
    let (first, _) = common::controller(&cluster);
    for n in [1, 2] {
        let open = event(PullRequestAction::Opened, n, SHA, 1);
        prs.upsert(open.clone());
        assert_eq!(
            first.apply(&open, &ensure(n)).await.unwrap().phase,
            PreviewPhase::Ready
        );
    }
    // The controller goes down; meanwhile #1 is closed (the webhook is lost).
    drop(first);
    prs.close("acme/cart", 1);

    let (second, _) = common::controller(&cluster);
    assert_eq!(second.recover().await.unwrap(), 2);
    let reaper = Reaper::new(second.provider().clone(), Arc::new(prs.clone()));
    let report = reaper.sweep().await.unwrap();
    assert_eq!(report.examined, 2);
    assert_eq!(report.kept, 1);
    assert_eq!(report.reaped.len(), 1, "{report:?}");
    assert_eq!(report.reaped[0].environment.as_str(), "pr-cart-1");
    assert_eq!(report.reaped[0].preview.as_deref(), Some("acme/cart#1"));
    assert_eq!(report.reaped[0].reason, ReapReason::PullRequestClosed);
    assert!(cluster.object("", "namespaces", "", "pr-cart-1").is_none());
    assert!(cluster.object("", "namespaces", "", "pr-cart-2").is_some());
    assert!(
        common::leftovers(&cluster)
            .iter()
            .all(|l| !l.contains("pr-cart-1"))
    );

    // A deleted pull request is an orphan too.
    prs.remove("acme/cart", 2);
    let report = reaper.sweep().await.unwrap();
    assert_eq!(report.reaped[0].reason, ReapReason::PullRequestMissing);
    assert_eq!(common::leftovers(&cluster), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_previews_go_and_activity_extends_the_expiry() {
    let cluster = common::cluster().await;
    let prs = MemoryPullRequests::new();
    let (controller, _) = common::controller(&cluster);
    let controller = Arc::try_unwrap(controller)
        .unwrap()
        .with_config(ControllerConfig::default().with_ttl(Duration::from_secs(3600)));
    let open = event(PullRequestAction::Opened, 4, SHA, 1);
    prs.upsert(open.clone());
    let first = controller.apply(&open, &ensure(4)).await.unwrap();
    let reaper = Reaper::new(controller.provider().clone(), Arc::new(prs.clone()));

    let half = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(30);
    assert!(
        reaper.sweep_at(half).await.unwrap().reaped.is_empty(),
        "not expired yet"
    );

    // Activity (a push) pushes the expiry out.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let pushed = controller
        .apply(
            &event(PullRequestAction::Synchronize, 4, "ffff", 2),
            &ensure(4),
        )
        .await
        .unwrap();
    assert!(pushed.expires_at.unwrap() > first.expires_at.unwrap());
    let just_after_first = first.expires_at.unwrap() + jiff::SignedDuration::from_millis(5);
    assert!(
        reaper
            .sweep_at(just_after_first)
            .await
            .unwrap()
            .reaped
            .is_empty()
    );

    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(2);
    let report = reaper.sweep_at(later).await.unwrap();
    assert_eq!(report.reaped.len(), 1);
    assert!(matches!(
        report.reaped[0].reason,
        ReapReason::Expired { .. }
    ));
    assert!(cluster.object("", "namespaces", "", "pr-cart-4").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaping_is_rate_limited_dry_runs_and_skips_what_is_not_ours() {
    let cluster = common::cluster().await;
    let provider = common::provider(&cluster);
    let prs = MemoryPullRequests::new(); // knows no pull request: all are orphans
    for n in 1..=5 {
        let mut spec = EnvironmentSpec::new(common::env_name(n));
        spec.labels.extend(
            idp_preview::labels::PreviewId::new("acme/cart", n)
                .unwrap()
                .labels(),
        );
        provider.ensure(&spec).await.unwrap();
    }
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    let mut foreign = Namespace::default();
    foreign.metadata.name = Some("pr-cart-99".into());
    namespaces
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();

    let dry = Reaper::new(provider.clone(), Arc::new(prs.clone()))
        .with_config(ReaperConfig::default().with_dry_run(true));
    let report = dry.sweep().await.unwrap();
    assert!(report.dry_run);
    assert_eq!(report.reaped.len(), 5);
    assert_eq!(
        provider.list().await.unwrap().len(),
        5,
        "a dry run deletes nothing"
    );

    let reaper = Reaper::new(provider.clone(), Arc::new(prs.clone()))
        .with_config(ReaperConfig::default().with_limits(2, 3));
    let first = reaper.sweep().await.unwrap();
    assert_eq!(
        (first.reaped.len(), first.deferred.len()),
        (2, 3),
        "{first:?}"
    );
    let second = reaper.sweep().await.unwrap();
    assert_eq!(
        (second.reaped.len(), second.deferred.len()),
        (1, 2),
        "per-minute budget: {second:?}"
    );
    assert_eq!(provider.list().await.unwrap().len(), 2);
    assert!(
        cluster.object("", "namespaces", "", "pr-cart-99").is_some(),
        "foreign namespace untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_that_no_longer_match_go_and_lookup_failures_keep_them() {
    let cluster = common::cluster().await;
    let provider = common::provider(&cluster);
    for n in [1, 2] {
        let mut spec = EnvironmentSpec::new(common::env_name(n));
        spec.labels.extend(
            idp_preview::labels::PreviewId::new("acme/cart", n)
                .unwrap()
                .labels(),
        );
        provider.ensure(&spec).await.unwrap();
    }
    let prs = MemoryPullRequests::new();
    let mut draft = event(PullRequestAction::ConvertedToDraft, 1, SHA, 1);
    draft.draft = true;
    prs.upsert(draft);
    prs.upsert(event(PullRequestAction::Opened, 2, SHA, 1));
    let reaper = Reaper::new(provider.clone(), Arc::new(prs)).with_still_wanted(Arc::new(
        |pr: &idp_preview::event::PullRequestEvent| {
            pr.draft.then(|| "drafts get no preview".to_owned())
        },
    ));
    let report = reaper.sweep().await.unwrap();
    assert_eq!(report.reaped.len(), 1);
    assert_eq!(
        report.reaped[0].reason,
        ReapReason::NoLongerMatches {
            detail: "drafts get no preview".into()
        }
    );

    let report = Reaper::new(provider.clone(), Arc::new(Down))
        .sweep()
        .await
        .unwrap();
    assert_eq!(report.failed.len(), 1);
    assert!(report.reaped.is_empty());
    assert_eq!(provider.list().await.unwrap().len(), 1, "kept on doubt");
}
