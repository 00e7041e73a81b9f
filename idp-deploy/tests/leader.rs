//! Leader election on a coordination.k8s.io/v1 Lease, and two reconciler replicas that
//! never both apply.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use idp_core::cluster::{Cluster, Inventory};
use idp_deploy::ha::{LeaderElector, LeaseConfig};
use idp_deploy::reconcile::{GitSource, Reconciler, StallReason};
use idp_testkit::FakeCluster;
use idp_testkit::fixtures::GitFixture;

fn config(identity: &str) -> LeaseConfig {
    LeaseConfig::new("default", "idp-reconciler", identity).with_timings(
        Duration::from_secs(2),
        Duration::from_secs(1),
        Duration::from_millis(100),
    )
}

fn lease(cluster: &FakeCluster) -> serde_json::Value {
    cluster
        .object("coordination.k8s.io", "leases", "default", "idp-reconciler")
        .expect("lease exists")
}

#[tokio::test]
async fn acquire_renew_block_take_over_and_release() {
    let cluster = FakeCluster::start().await.unwrap();
    let a = LeaderElector::new(cluster.client(), config("a")).unwrap();
    let b = LeaderElector::new(cluster.client(), config("b")).unwrap();

    assert!(a.try_acquire_or_renew().await.unwrap());
    let l = lease(&cluster);
    assert_eq!(l["spec"]["holderIdentity"], "a");
    assert_eq!(l["spec"]["leaseDurationSeconds"], 2);
    assert_eq!(l["spec"]["leaseTransitions"], 0);
    let first_renew = l["spec"]["renewTime"].clone();

    assert!(
        !b.try_acquire_or_renew().await.unwrap(),
        "b must not take a live lease"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert_ne!(
        lease(&cluster)["spec"]["renewTime"],
        first_renew,
        "renewing moves renewTime"
    );

    // a stops renewing: after the lease duration b takes over.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert!(b.try_acquire_or_renew().await.unwrap());
    let l = lease(&cluster);
    assert_eq!(l["spec"]["holderIdentity"], "b");
    assert_eq!(l["spec"]["leaseTransitions"], 1);
    assert!(!a.try_acquire_or_renew().await.unwrap());

    // Release: the holder empties the lease and the other may take it at once.
    b.release().await.unwrap();
    assert!(
        lease(&cluster)["spec"]
            .get("holderIdentity")
            .is_none_or(serde_json::Value::is_null)
    );
    assert!(a.try_acquire_or_renew().await.unwrap());
    assert_eq!(lease(&cluster)["spec"]["leaseTransitions"], 2);
}

#[tokio::test]
async fn a_leader_that_cannot_renew_stops_leading() {
    let cluster = FakeCluster::start().await.unwrap();
    let handle = LeaderElector::new(cluster.client(), config("a"))
        .unwrap()
        .spawn();
    let mut leading = handle.subscribe();
    tokio::time::timeout(Duration::from_secs(5), leading.wait_for(|l| *l))
        .await
        .unwrap()
        .unwrap();
    cluster
        .faults()
        .inject(idp_testkit::Fault::status(500).resource("leases"));
    tokio::time::timeout(Duration::from_secs(5), leading.wait_for(|l| !*l))
        .await
        .unwrap()
        .unwrap();
    cluster.faults().clear();
    tokio::time::timeout(Duration::from_secs(5), leading.wait_for(|l| *l))
        .await
        .unwrap()
        .unwrap();
    handle.shutdown().await;
}

/// Writes made by one replica, recognised by its field manager in the query string.
fn writes_by(cluster: &FakeCluster, manager: &str) -> usize {
    let needle = format!("fieldManager={manager}");
    cluster
        .requests()
        .count(|r| r.is_write() && r.resource != "leases" && r.query.contains(&needle))
}

#[tokio::test]
async fn two_replicas_with_leader_election_never_both_apply() {
    let cluster = FakeCluster::start().await.unwrap();
    let git = GitFixture::with_files(&[(
        "app/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: blue}\n",
    )])
    .unwrap();
    let elector_a = LeaderElector::new(cluster.client(), config("replica-a"))
        .unwrap()
        .spawn();
    let mut lead_a = elector_a.subscribe();
    tokio::time::timeout(Duration::from_secs(5), lead_a.wait_for(|l| *l))
        .await
        .unwrap()
        .unwrap();
    let elector_b = LeaderElector::new(cluster.client(), config("replica-b"))
        .unwrap()
        .spawn();

    let replica = |manager: &str, leader: tokio::sync::watch::Receiver<bool>| {
        Reconciler::builder(
            Cluster::new(cluster.client()),
            GitSource::new(git.remote_url(), "main", "app"),
            Inventory::new("default", "shop").unwrap(),
        )
        .field_manager(manager)
        .interval(Duration::from_millis(200))
        .leader(leader)
        .build()
        .unwrap()
        .spawn()
    };
    let a = replica("replica-a", elector_a.subscribe());
    let b = replica("replica-b", elector_b.subscribe());

    a.wait_for(
        idp_deploy::reconcile::ReconcileStatus::is_ready,
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let sb = b
        .wait_for(
            |s| s.stalled == Some(StallReason::NotLeader),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert!(
        sb.revision.is_some(),
        "the follower still fetches and compares"
    );
    let head = git
        .commit_files(
            &[("app/cm.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: green}\n")],
            "green",
        )
        .unwrap();
    a.reconcile_now();
    b.reconcile_now();
    a.wait_for(
        |s| s.revision.as_deref() == Some(head.as_str()) && s.is_ready(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(writes_by(&cluster, "replica-a") >= 2, "the leader applied");
    assert_eq!(
        writes_by(&cluster, "replica-b"),
        0,
        "the follower never applies"
    );

    // Hand over: a releases, b takes over and applies the next change; a no longer writes.
    elector_a.shutdown().await;
    let mut lead_b = elector_b.subscribe();
    tokio::time::timeout(Duration::from_secs(5), lead_b.wait_for(|l| *l))
        .await
        .unwrap()
        .unwrap();
    let a_before = writes_by(&cluster, "replica-a");
    let head = git
        .commit_files(
            &[(
                "app/cm.yaml",
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: settings}\ndata: {color: red}\n",
            )],
            "red",
        )
        .unwrap();
    b.reconcile_now();
    a.reconcile_now();
    b.wait_for(
        |s| s.revision.as_deref() == Some(head.as_str()) && s.is_ready(),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    a.wait_for(
        |s| s.revision.as_deref() == Some(head.as_str()),
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    assert!(
        writes_by(&cluster, "replica-b") >= 1,
        "the new leader applied"
    );
    assert_eq!(
        writes_by(&cluster, "replica-a"),
        a_before,
        "the old leader stopped applying"
    );
    assert_eq!(
        cluster
            .object("", "configmaps", "default", "settings")
            .unwrap()["data"]["color"],
        "red"
    );
    a.shutdown().await;
    b.shutdown().await;
    elector_b.shutdown().await;
}
