//! The reconciler's request budget, counted by FakeCluster (deterministic): a no-op pass
//! over 1,000 objects makes no write and no per-object request; one changed object
//! costs exactly one write.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use idp_core::cluster::{Cluster, Inventory};
use idp_deploy::reconcile::{GitSource, Reconciler, SyncStatus};
use idp_testkit::fixtures::GitFixture;
use idp_testkit::{FakeCluster, Verb};

fn many_config_maps(n: usize, changed: Option<usize>) -> String {
    (0..n)
        .map(|i| {
            let value = if Some(i) == changed { "changed" } else { "v1" };
            format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:04}\ndata:\n  value: {value}\n")
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

#[tokio::test]
async fn a_noop_pass_over_1000_objects_makes_no_write_and_no_per_object_request() {
    let cluster = FakeCluster::start().await.unwrap();
    let git = GitFixture::with_files(&[("app/all.yaml", &many_config_maps(1000, None))]).unwrap();
    let r = Reconciler::builder(
        Cluster::new(cluster.client()),
        GitSource::new(git.remote_url(), "main", "app"),
        Inventory::new("default", "bulk").unwrap(),
    )
    .build()
    .unwrap();
    let first = r.reconcile_once().await;
    assert_eq!(first.writes, 1000);

    // Let the watch cache sync with what we wrote.
    let mut warm = None;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        cluster.reset_counters();
        let s = r.reconcile_once().await;
        let lists = cluster.requests().count_verb(Verb::List);
        if s.sync == SyncStatus::Synced && lists <= 2 {
            warm = Some(s);
            break;
        }
    }
    let s = warm.expect("the watch cache warms up");
    let requests = cluster.requests();
    assert_eq!(s.writes, 0);
    assert_eq!(requests.writes(), 0, "a no-op pass must not write");
    let per_object_gets = requests.count(|q| {
        q.verb == Verb::Get && q.resource == "configmaps" && q.name.as_deref() != Some("bulk")
    });
    assert_eq!(per_object_gets, 0, "no per-object GET");
    // What remains: prune's inventory read and one paged list of the one kind.
    assert!(
        requests.count_verb(Verb::Get) <= 1,
        "{:?}",
        requests.iter().collect::<Vec<_>>()
    );
    assert!(
        requests.count_verb(Verb::List) <= 2,
        "{:?}",
        requests.iter().collect::<Vec<_>>()
    );

    // One changed object: exactly one write.
    git.commit_files(
        &[("app/all.yaml", &many_config_maps(1000, Some(7)))],
        "change one",
    )
    .unwrap();
    cluster.reset_counters();
    let s = r.reconcile_once().await;
    assert_eq!(s.sync, SyncStatus::Synced);
    assert_eq!(s.writes, 1);
    assert_eq!(cluster.requests().writes(), 1);
    assert_eq!(
        cluster
            .object("", "configmaps", "default", "cm-0007")
            .unwrap()["data"]["value"],
        "changed"
    );
}
