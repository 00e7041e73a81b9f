//! Load: 200 previews opened and closed concurrently against the fake API server leave
//! zero objects behind. (No timing assertions: performance lives in the bench.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{destroy, ensure, event};
use idp_preview::event::PullRequestAction;
use idp_preview::status::PreviewPhase;

const PREVIEWS: u64 = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_previews_opened_and_closed_concurrently_leak_nothing() {
    let cluster = common::cluster().await;
    let (controller, reporter) = common::controller(&cluster);

    let tasks: Vec<_> = (1..=PREVIEWS)
        .map(|n| {
            let controller = controller.clone();
            tokio::spawn(async move {
                let sha = format!("{n:040x}");
                let opened = controller
                    .apply(&event(PullRequestAction::Opened, n, &sha, 1), &ensure(n))
                    .await
                    .unwrap();
                let closed = controller
                    .apply(
                        &event(PullRequestAction::Closed { merged: n % 2 == 0 }, n, &sha, 2),
                        &destroy(n),
                    )
                    .await
                    .unwrap();
                (opened, closed)
            })
        })
        .collect();
    let mut ready = 0;
    for task in futures::future::join_all(tasks).await {
        let (opened, closed) = task.unwrap();
        assert_eq!(closed.phase, PreviewPhase::Gone, "{closed}");
        if opened.phase == PreviewPhase::Ready {
            ready += 1;
        } else {
            panic!("preview did not become ready: {opened}");
        }
    }
    assert_eq!(ready, PREVIEWS);
    assert_eq!(reporter.statuses().len() as u64, PREVIEWS * 4);

    // Every resource type, every namespace: nothing with our labels, nothing in a preview
    // namespace, no preview namespace.
    assert_eq!(common::leftovers(&cluster), Vec::<String>::new());
    let reaper = idp_preview::reaper::Reaper::new(
        controller.provider().clone(),
        std::sync::Arc::new(idp_preview::reaper::MemoryPullRequests::new()),
    );
    assert_eq!(
        reaper.sweep().await.unwrap().examined,
        0,
        "the provider lists nothing either"
    );
}
