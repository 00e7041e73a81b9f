//! PreviewController against the fake API server: the whole lifecycle of a pull request.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{destroy, ensure, event, health};
use idp_core::cluster::{Cluster, HealthStatus};
use idp_preview::controller::PreviewController;
use idp_preview::event::PullRequestAction;
use idp_preview::labels;
use idp_preview::status::PreviewPhase;
use idp_testkit::doubles::ApplyDeployer;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};

const SHA1: &str = "1111111111111111111111111111111111111111";
const SHA2: &str = "2222222222222222222222222222222222222222";

fn image(cluster: &idp_testkit::FakeCluster, ns: &str) -> String {
    let d = cluster
        .object("apps", "deployments", ns, "web")
        .expect("deployment exists");
    d["spec"]["template"]["spec"]["containers"][0]["image"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_push_close() {
    let cluster = common::cluster().await;
    let (controller, reporter) = common::controller(&cluster);

    // open → namespace, guard rails and healthy workloads at the head SHA
    let ready = controller
        .apply(&event(PullRequestAction::Opened, 42, SHA1, 1), &ensure(42))
        .await
        .unwrap();
    assert_eq!(ready.phase, PreviewPhase::Ready, "{ready}");
    assert_eq!(
        ready.urls,
        vec!["https://pr-cart-42.preview.example.com".to_string()]
    );
    assert_eq!(ready.namespace.as_deref(), Some("pr-cart-42"));
    assert!(ready.expires_at.is_some() && ready.deployment.is_some());
    let ns = "pr-cart-42";
    assert!(cluster.object("", "namespaces", "", ns).is_some());
    assert!(
        cluster
            .object("", "resourcequotas", ns, "preview-quota")
            .is_some()
    );
    assert!(
        cluster
            .object("", "limitranges", ns, "preview-limits")
            .is_some()
    );
    assert!(
        cluster
            .object(
                "networking.k8s.io",
                "networkpolicies",
                ns,
                "preview-ingress"
            )
            .is_some()
    );
    assert!(
        cluster
            .object("networking.k8s.io", "ingresses", ns, "preview")
            .is_some()
    );
    assert_eq!(
        health(&cluster, "apps", "deployments", ns, "web"),
        Some(HealthStatus::Healthy)
    );
    assert_eq!(
        health(&cluster, "", "services", ns, "web"),
        Some(HealthStatus::Healthy)
    );
    assert_eq!(image(&cluster, ns), format!("{}:{SHA1}", common::IMAGE));
    let d = cluster.object("apps", "deployments", ns, "web").unwrap();
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["env"][0]["value"],
        SHA1
    );
    assert_eq!(d["metadata"]["labels"][labels::PREVIEW], "true");
    assert_eq!(
        reporter.phases(),
        vec![PreviewPhase::Pending, PreviewPhase::Ready]
    );

    // push → the new SHA everywhere
    let pushed = controller
        .apply(
            &event(PullRequestAction::Synchronize, 42, SHA2, 2),
            &ensure(42),
        )
        .await
        .unwrap();
    assert_eq!(pushed.phase, PreviewPhase::Ready, "{pushed}");
    assert_eq!(pushed.head_sha.as_deref(), Some(SHA2));
    assert_eq!(image(&cluster, ns), format!("{}:{SHA2}", common::IMAGE));
    assert_eq!(
        health(&cluster, "apps", "deployments", ns, "web"),
        Some(HealthStatus::Healthy)
    );
    let live_ns = cluster.object("", "namespaces", "", ns).unwrap();
    assert_eq!(live_ns["metadata"]["labels"][labels::HEAD_SHA], SHA2);

    // close → nothing left
    let gone = controller
        .apply(
            &event(PullRequestAction::Closed { merged: true }, 42, SHA2, 3),
            &destroy(42),
        )
        .await
        .unwrap();
    assert_eq!(gone.phase, PreviewPhase::Gone, "{gone}");
    assert!(cluster.object("", "namespaces", "", ns).is_none());
    assert_eq!(common::leftovers(&cluster), Vec::<String>::new());
    assert_eq!(
        reporter.phases(),
        vec![
            PreviewPhase::Pending,
            PreviewPhase::Ready,
            PreviewPhase::Pending,
            PreviewPhase::Ready,
            PreviewPhase::Destroying,
            PreviewPhase::Gone,
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_events_are_no_ops() {
    let cluster = common::cluster().await;
    let (controller, reporter) = common::controller(&cluster);
    let open = event(PullRequestAction::Opened, 1, SHA1, 1);
    assert_eq!(
        controller.apply(&open, &ensure(1)).await.unwrap().phase,
        PreviewPhase::Ready
    );
    let writes = cluster.requests().writes();
    let again = controller.apply(&open, &ensure(1)).await.unwrap();
    assert_eq!(again.phase, PreviewPhase::Ignored);
    assert!(again.message.unwrap().contains("duplicate"));
    assert_eq!(
        cluster.requests().writes(),
        writes,
        "a duplicate writes nothing"
    );
    assert_eq!(reporter.statuses().len(), 2, "and reports nothing");

    let close = event(PullRequestAction::Closed { merged: false }, 1, SHA1, 2);
    assert_eq!(
        controller.apply(&close, &destroy(1)).await.unwrap().phase,
        PreviewPhase::Gone
    );
    let writes = cluster.requests().writes();
    assert_eq!(
        controller.apply(&close, &destroy(1)).await.unwrap().phase,
        PreviewPhase::Ignored
    );
    assert_eq!(cluster.requests().writes(), writes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_events_never_resurrect_or_roll_back() {
    let cluster = common::cluster().await;
    let (controller, _) = common::controller(&cluster);
    controller
        .apply(&event(PullRequestAction::Opened, 5, SHA1, 1), &ensure(5))
        .await
        .unwrap();
    controller
        .apply(
            &event(PullRequestAction::Synchronize, 5, SHA2, 3),
            &ensure(5),
        )
        .await
        .unwrap();

    // An older push delivered late does not roll the preview back.
    let late = controller
        .apply(
            &event(PullRequestAction::Synchronize, 5, SHA1, 2),
            &ensure(5),
        )
        .await
        .unwrap();
    assert_eq!(late.phase, PreviewPhase::Ignored);
    assert!(late.message.as_deref().unwrap().contains("stale"), "{late}");
    assert_eq!(
        image(&cluster, "pr-cart-5"),
        format!("{}:{SHA2}", common::IMAGE)
    );

    controller
        .apply(
            &event(PullRequestAction::Closed { merged: false }, 5, SHA2, 4),
            &destroy(5),
        )
        .await
        .unwrap();
    // A synchronize after closed (even one stamped later, as the forge may) is ignored.
    for second in [3, 5] {
        let after = controller
            .apply(
                &event(PullRequestAction::Synchronize, 5, SHA1, second),
                &ensure(5),
            )
            .await
            .unwrap();
        assert_eq!(after.phase, PreviewPhase::Ignored, "{after}");
    }
    assert!(
        cluster.object("", "namespaces", "", "pr-cart-5").is_none(),
        "not resurrected"
    );

    // Without timestamps, arrival order decides, and close still sticks.
    let mut untimed = event(PullRequestAction::Synchronize, 5, SHA2, 0);
    untimed.updated_at = None;
    assert_eq!(
        controller.apply(&untimed, &ensure(5)).await.unwrap().phase,
        PreviewPhase::Ignored
    );

    // Reopening does bring it back.
    let reopened = controller
        .apply(&event(PullRequestAction::Reopened, 5, SHA2, 6), &ensure(5))
        .await
        .unwrap();
    assert_eq!(reopened.phase, PreviewPhase::Ready, "{reopened}");
    assert!(cluster.object("", "namespaces", "", "pr-cart-5").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_namespace_with_the_same_name_is_untouched() {
    let cluster = common::cluster().await;
    let namespaces: Api<Namespace> = Api::all(cluster.client());
    let mut foreign = Namespace::default();
    foreign.metadata.name = Some("pr-cart-9".into());
    namespaces
        .create(&PostParams::default(), &foreign)
        .await
        .unwrap();
    let before = cluster.object("", "namespaces", "", "pr-cart-9").unwrap();

    let (controller, _) = common::controller(&cluster);
    let failed = controller
        .apply(&event(PullRequestAction::Opened, 9, SHA1, 1), &ensure(9))
        .await
        .unwrap();
    assert_eq!(failed.phase, PreviewPhase::Failed);
    assert!(
        failed
            .message
            .as_deref()
            .unwrap()
            .contains("not created by idp-preview"),
        "{failed}"
    );
    let closed = controller
        .apply(
            &event(PullRequestAction::Closed { merged: false }, 9, SHA1, 2),
            &destroy(9),
        )
        .await
        .unwrap();
    assert_eq!(closed.phase, PreviewPhase::Gone);
    assert!(
        closed
            .message
            .as_deref()
            .unwrap()
            .contains("nothing to remove")
    );
    assert_eq!(
        cluster.object("", "namespaces", "", "pr-cart-9").unwrap(),
        before
    );
    assert!(
        cluster
            .objects("apps", "deployments", Some("pr-cart-9"))
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_rollout_fails_with_the_reason() {
    let cluster = common::cluster().await;
    let deployer =
        ApplyDeployer::new(Cluster::new(cluster.client())).with_timeout(Duration::from_secs(2));
    let source = idp_preview::source::ManifestSource::from_set(
        idp_core::ManifestSet::parse(common::WEB.as_bytes(), None).unwrap(),
    )
    .with_image(common::IMAGE)
    .with_tag_template("broken");
    let controller = PreviewController::new(
        common::provider(&cluster),
        Arc::new(deployer),
        Arc::new(source),
    );
    let failed = controller
        .apply(&event(PullRequestAction::Opened, 3, SHA1, 1), &ensure(3))
        .await
        .unwrap();
    assert_eq!(failed.phase, PreviewPhase::Failed, "{failed}");
    assert!(
        failed.message.as_deref().unwrap().contains("failed"),
        "{failed}"
    );
    // A retry of the same event is not swallowed as a duplicate.
    let retried = controller
        .apply(&event(PullRequestAction::Opened, 3, SHA1, 1), &ensure(3))
        .await
        .unwrap();
    assert_eq!(retried.phase, PreviewPhase::Failed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recover_rebuilds_open_previews_from_labels() {
    let cluster = common::cluster().await;
    let (first, _) = common::controller(&cluster);
    first
        .apply(&event(PullRequestAction::Opened, 11, SHA2, 5), &ensure(11))
        .await
        .unwrap();
    drop(first);

    let (second, _) = common::controller(&cluster);
    assert_eq!(second.recover().await.unwrap(), 1);
    // The stored event time orders events after the restart: an older push is stale.
    let stale = second
        .apply(
            &event(PullRequestAction::Synchronize, 11, SHA1, 4),
            &ensure(11),
        )
        .await
        .unwrap();
    assert_eq!(stale.phase, PreviewPhase::Ignored, "{stale}");
    assert_eq!(
        image(&cluster, "pr-cart-11"),
        format!("{}:{SHA2}", common::IMAGE)
    );
}
