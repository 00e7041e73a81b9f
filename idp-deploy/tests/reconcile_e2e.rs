//! End-to-end tests of the Reconciler against idp-testkit's FakeCluster (real HTTP, the
//! real kube::Client) and real Git repositories in temp dirs (bare remotes over file://).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use idp_core::cluster::{Cluster, HealthStatus, Inventory, RetryPolicy};
use idp_core::git::{Identity, RevertRequest};
use idp_deploy::reconcile::{
    GitSource, ObjectResult, OutOfSyncReason, ReconcileStatus, Reconciler, StallReason, SyncStatus,
};
use idp_testkit::fixtures::GitFixture;
use idp_testkit::{FakeCluster, Fault, Verb};
use kube::api::{Api, DynamicObject, Patch, PatchParams};

const WAIT: Duration = Duration::from_secs(20);

fn deployment(name: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n    spec:\n      containers:\n        - name: app\n          image: {image}\n"
    )
}

fn config_map(name: &str, color: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  color: {color}\n")
}

fn reconciler(cluster: &FakeCluster, git: &GitFixture, self_heal: bool) -> Reconciler {
    Reconciler::builder(
        Cluster::new(cluster.client()),
        GitSource::new(git.remote_url(), "main", "app"),
        Inventory::new("default", "shop").unwrap(),
    )
    .interval(Duration::from_secs(3600))
    .self_heal(self_heal)
    .self_heal_interval(Duration::from_millis(50))
    .build()
    .unwrap()
}

fn configmaps(cluster: &FakeCluster) -> Vec<String> {
    cluster
        .objects("", "configmaps", Some("default"))
        .into_iter()
        .filter(|o| {
            o.pointer("/metadata/labels/app.kubernetes.io~1managed-by")
                .is_some()
        })
        .map(|o| o["metadata"]["name"].as_str().unwrap().to_owned())
        .filter(|n| n != "shop")
        .collect()
}

fn image_of(cluster: &FakeCluster, name: &str) -> String {
    cluster
        .object("apps", "deployments", "default", name)
        .unwrap()
        .pointer("/spec/template/spec/containers/0/image")
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned()
}

fn at(revision: &str) -> impl Fn(&ReconcileStatus) -> bool + '_ {
    move |s| s.revision.as_deref() == Some(revision)
}

#[tokio::test]
async fn deploy_v1_healthy_v2_broken_is_degraded_and_a_revert_restores_v1() {
    let cluster = FakeCluster::start().await.unwrap();
    let git = GitFixture::with_files(&[
        ("app/web.yaml", &deployment("web", "shop/web:1.0")),
        ("app/settings.yaml", &config_map("settings", "blue")),
    ])
    .unwrap();
    let v1 = git.remote_head().unwrap();
    let handle = reconciler(&cluster, &git, true).spawn();

    let s = handle
        .wait_for(|s| at(&v1)(s) && s.is_ready(), WAIT)
        .await
        .unwrap();
    assert_eq!(s.sync, SyncStatus::Synced);
    assert_eq!(image_of(&cluster, "web"), "shop/web:1.0");

    let v2 = git
        .commit_files(
            &[("app/web.yaml", &deployment("web", "shop/web:broken"))],
            "v2",
        )
        .unwrap();
    handle.reconcile_now();
    let s = handle
        .wait_for(|s| at(&v2)(s) && s.health == HealthStatus::Degraded, WAIT)
        .await
        .unwrap();
    let web = s.object("Deployment", "web").unwrap();
    assert_eq!(web.health.as_ref().unwrap().status, HealthStatus::Degraded);
    assert!(!web.health.as_ref().unwrap().message.is_empty());
    assert_eq!(image_of(&cluster, "web"), "shop/web:broken");

    // Roll back the Git way: a revert commit in the source repository.
    let repo = git.remote_repo().await.unwrap();
    let reverted = repo
        .revert(RevertRequest::new(
            "main",
            v2.clone(),
            Identity::new("ops", "ops@example.com"),
        ))
        .await
        .unwrap();
    let v3 = reverted.id.to_hex();
    handle.reconcile_now();
    let s = handle
        .wait_for(|s| at(&v3)(s) && s.is_ready(), WAIT)
        .await
        .unwrap();
    assert_eq!(s.health, HealthStatus::Healthy);
    assert_eq!(image_of(&cluster, "web"), "shop/web:1.0");
    handle.shutdown().await;
}

#[tokio::test]
async fn a_hand_edit_is_reverted_by_self_heal() {
    let cluster = FakeCluster::start().await.unwrap();
    let git =
        GitFixture::with_files(&[("app/settings.yaml", &config_map("settings", "blue"))]).unwrap();
    let handle = reconciler(&cluster, &git, true).spawn();
    handle
        .wait_for(ReconcileStatus::is_ready, WAIT)
        .await
        .unwrap();

    let api: Api<DynamicObject> = Api::default_namespaced_with(
        cluster.client(),
        &kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
    );
    api.patch(
        "settings",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"color": "red"}})),
    )
    .await
    .unwrap();

    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let color = cluster
            .object("", "configmaps", "default", "settings")
            .unwrap()["data"]["color"]
            .clone();
        if color == "blue" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "self-heal did not revert the edit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    handle
        .wait_for(ReconcileStatus::is_ready, WAIT)
        .await
        .unwrap();
    handle.shutdown().await;
}

#[tokio::test]
async fn with_self_heal_off_a_hand_edit_is_only_reported() {
    let cluster = FakeCluster::start().await.unwrap();
    let git =
        GitFixture::with_files(&[("app/settings.yaml", &config_map("settings", "blue"))]).unwrap();
    let handle = reconciler(&cluster, &git, false).spawn();
    handle
        .wait_for(ReconcileStatus::is_ready, WAIT)
        .await
        .unwrap();

    let api: Api<DynamicObject> = Api::default_namespaced_with(
        cluster.client(),
        &kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
    );
    api.patch(
        "settings",
        &PatchParams::default(),
        &Patch::Merge(serde_json::json!({"data": {"color": "red"}})),
    )
    .await
    .unwrap();
    let s = handle
        .wait_for(|s| s.sync == SyncStatus::OutOfSync, WAIT)
        .await
        .unwrap();
    let settings = s.object("ConfigMap", "settings").unwrap();
    assert_eq!(settings.result, ObjectResult::Skipped);
    assert_eq!(
        settings.reason,
        Some(OutOfSyncReason::SelfHealDisabled {
            fields: vec!["data.color".to_owned()]
        })
    );
    // The reason is machine-readable in JSON.
    let json = serde_json::to_value(&s).unwrap();
    assert!(
        json["objects"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["reason"]["type"] == "SelfHealDisabled")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        cluster
            .object("", "configmaps", "default", "settings")
            .unwrap()["data"]["color"],
        "red"
    );
    handle.shutdown().await;
}

#[tokio::test]
async fn deleting_a_manifest_from_git_prunes_exactly_that_object() {
    let cluster = FakeCluster::start().await.unwrap();
    let git = GitFixture::with_files(&[
        ("app/a.yaml", &config_map("a", "1")),
        ("app/b.yaml", &config_map("b", "2")),
        ("app/c.yaml", &config_map("c", "3")),
        ("other/d.yaml", &config_map("d", "4")),
    ])
    .unwrap();
    let r = reconciler(&cluster, &git, true);
    let s = r.reconcile_once().await;
    assert_eq!(s.stalled, None, "{s:?}");
    assert_eq!(configmaps(&cluster), ["a", "b", "c"]);

    git.delete_files(&["app/b.yaml"], "drop b").unwrap();
    cluster.reset_counters();
    let s = r.reconcile_once().await;
    let pruned: Vec<&str> = s
        .objects
        .iter()
        .filter(|o| o.result == ObjectResult::Pruned)
        .map(|o| o.object.name.as_str())
        .collect();
    assert_eq!(pruned, ["b"]);
    assert_eq!(configmaps(&cluster), ["a", "c"]);
    assert_eq!(cluster.requests().count_verb(Verb::Delete), 1);
    assert_eq!(s.sync, SyncStatus::Synced);
}

#[tokio::test]
async fn an_unparsable_missing_or_empty_source_never_prunes() {
    let cluster = FakeCluster::start().await.unwrap();
    let git = GitFixture::with_files(&[
        ("app/a.yaml", &config_map("a", "1")),
        ("app/b.yaml", &config_map("b", "2")),
    ])
    .unwrap();
    let r = reconciler(&cluster, &git, true);
    r.reconcile_once().await;
    assert_eq!(configmaps(&cluster), ["a", "b"]);

    // Unparsable: the error names the file and line, nothing is deleted.
    git.commit_files(
        &[(
            "app/b.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: [\n",
        )],
        "broken",
    )
    .unwrap();
    cluster.reset_counters();
    let s = r.reconcile_once().await;
    match &s.stalled {
        Some(StallReason::RenderFailed { message }) => {
            assert!(message.contains("b.yaml"), "{message}");
        }
        other => panic!("expected RenderFailed, got {other:?}"),
    }
    assert_eq!(s.sync, SyncStatus::Unknown);
    assert_eq!(cluster.requests().writes(), 0);

    // Empty: only a comment left; empty prunes are not allowed by default.
    git.commit_files(
        &[("app/b.yaml", "# nothing\n"), ("app/a.yaml", "# nothing\n")],
        "empty",
    )
    .unwrap();
    let s = r.reconcile_once().await;
    assert_eq!(s.stalled, Some(StallReason::EmptySource));
    assert_eq!(cluster.requests().count_verb(Verb::Delete), 0);

    // Missing folder: the source path is gone.
    git.delete_files(&["app/a.yaml", "app/b.yaml"], "remove folder")
        .unwrap();
    let s = r.reconcile_once().await;
    assert!(
        matches!(s.stalled, Some(StallReason::RenderFailed { .. })),
        "{s:?}"
    );
    assert_eq!(cluster.requests().count_verb(Verb::Delete), 0);
    assert_eq!(configmaps(&cluster), ["a", "b"]);
}

#[tokio::test]
async fn a_policy_denial_applies_nothing_and_says_why() {
    #[derive(Debug)]
    struct NoRed;
    impl idp_core::Policy for NoRed {
        fn name(&self) -> &str {
            "no-red"
        }
        fn evaluate(
            &self,
            object: &idp_core::Object,
            _: &idp_core::PolicyContext,
        ) -> Vec<idp_core::Violation> {
            if object.pointer("/data/color").and_then(|c| c.as_str()) == Some("red") {
                vec![
                    idp_core::Violation::new("no-red", "color", "red is not allowed")
                        .with_path("data.color"),
                ]
            } else {
                vec![]
            }
        }
    }
    let cluster = FakeCluster::start().await.unwrap();
    let git = GitFixture::with_files(&[
        ("app/a.yaml", &config_map("a", "blue")),
        ("app/b.yaml", &config_map("b", "red")),
    ])
    .unwrap();
    let r = Reconciler::builder(
        Cluster::new(cluster.client()),
        GitSource::new(git.remote_url(), "main", "app"),
        Inventory::new("default", "shop").unwrap(),
    )
    .policy(std::sync::Arc::new(NoRed))
    .build()
    .unwrap();
    let s = r.reconcile_once().await;
    assert_eq!(
        s.stalled,
        Some(StallReason::DeniedByPolicy { violations: 1 })
    );
    assert_eq!(cluster.requests().writes(), 0);
    let b = s.object("ConfigMap", "b").unwrap();
    match &b.reason {
        Some(OutOfSyncReason::DeniedByPolicy { violations }) => {
            assert_eq!(violations[0].rule, "color");
        }
        other => panic!("{other:?}"),
    }
    assert!(configmaps(&cluster).is_empty());
}

#[tokio::test]
async fn ten_percent_api_faults_still_converge() {
    let cluster = FakeCluster::start().await.unwrap();
    let files: Vec<(String, String)> = (0..20)
        .map(|i| {
            (
                format!("app/cm-{i}.yaml"),
                config_map(&format!("cm-{i}"), "blue"),
            )
        })
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let git = GitFixture::with_files(&refs).unwrap();
    cluster.faults().inject(Fault::status(500).fraction(0.1));
    let r = Reconciler::builder(
        Cluster::new(cluster.client()).with_retry(
            RetryPolicy::default()
                .with_max_attempts(6)
                .with_base_delay(Duration::from_millis(5))
                .with_max_delay(Duration::from_millis(50)),
        ),
        GitSource::new(git.remote_url(), "main", "app"),
        Inventory::new("default", "shop").unwrap(),
    )
    .build()
    .unwrap();
    let mut last = None;
    for _ in 0..10 {
        let s = r.reconcile_once().await;
        if s.is_ready() {
            last = Some(s);
            break;
        }
    }
    let s = last.expect("converged within 10 passes despite faults");
    assert_eq!(s.objects.len(), 20);
    assert_eq!(configmaps(&cluster).len(), 20);
    assert!(
        cluster.requests().count(|r| r.status == 500) > 0,
        "the fault injector should have failed some requests"
    );
}

#[tokio::test]
async fn suspend_stops_writes_and_resume_catches_up() {
    let cluster = FakeCluster::start().await.unwrap();
    let git = GitFixture::with_files(&[
        ("app/a.yaml", &config_map("a", "blue")),
        ("app/b.yaml", &config_map("b", "blue")),
    ])
    .unwrap();
    let r = reconciler(&cluster, &git, true);
    r.reconcile_once().await;
    r.suspend();
    git.commit_files(&[("app/a.yaml", &config_map("a", "green"))], "green")
        .unwrap();
    git.delete_files(&["app/b.yaml"], "drop b").unwrap();
    cluster.reset_counters();
    let s = r.reconcile_once().await;
    assert_eq!(s.stalled, Some(StallReason::Suspended));
    assert_eq!(s.sync, SyncStatus::OutOfSync);
    assert_eq!(cluster.requests().writes(), 0);
    assert_eq!(
        s.object("ConfigMap", "a").unwrap().reason,
        Some(OutOfSyncReason::LiveDiffers {
            fields: vec!["data.color".to_owned()],
            drift: false
        })
    );
    assert_eq!(
        s.object("ConfigMap", "b").unwrap().reason,
        Some(OutOfSyncReason::PendingPrune)
    );
    r.resume();
    let s = r.reconcile_once().await;
    assert_eq!(s.sync, SyncStatus::Synced);
    assert_eq!(configmaps(&cluster), ["a"]);
    assert_eq!(
        cluster.object("", "configmaps", "default", "a").unwrap()["data"]["color"],
        "green"
    );
}

#[tokio::test]
async fn a_hand_deleted_object_is_recreated_by_self_heal_and_only_reported_without() {
    for self_heal in [true, false] {
        let cluster = FakeCluster::start().await.unwrap();
        let git = GitFixture::with_files(&[("app/settings.yaml", &config_map("settings", "blue"))])
            .unwrap();
        let handle = reconciler(&cluster, &git, self_heal).spawn();
        handle
            .wait_for(ReconcileStatus::is_ready, WAIT)
            .await
            .unwrap();
        let api: Api<DynamicObject> = Api::default_namespaced_with(
            cluster.client(),
            &kube::discovery::ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&()),
        );
        api.delete("settings", &kube::api::DeleteParams::default())
            .await
            .unwrap();
        if self_heal {
            let deadline = tokio::time::Instant::now() + WAIT;
            while cluster
                .object("", "configmaps", "default", "settings")
                .is_none()
            {
                assert!(tokio::time::Instant::now() < deadline, "not recreated");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        } else {
            let s = handle
                .wait_for(|s| s.sync == SyncStatus::OutOfSync, WAIT)
                .await
                .unwrap();
            assert_eq!(
                s.object("ConfigMap", "settings").unwrap().reason,
                Some(OutOfSyncReason::Missing)
            );
            tokio::time::sleep(Duration::from_millis(300)).await;
            assert!(
                cluster
                    .object("", "configmaps", "default", "settings")
                    .is_none()
            );
        }
        handle.shutdown().await;
    }
}

#[tokio::test]
async fn an_unreachable_source_or_branch_changes_nothing() {
    let cluster = FakeCluster::start().await.unwrap();
    let git = GitFixture::with_files(&[("app/a.yaml", &config_map("a", "1"))]).unwrap();
    reconciler(&cluster, &git, true).reconcile_once().await;
    cluster.reset_counters();
    for source in [
        GitSource::new(git.remote_url(), "no-such-branch", "app"),
        GitSource::new("/nonexistent/idp/repo.git", "main", "app"),
    ] {
        let r = Reconciler::builder(
            Cluster::new(cluster.client()),
            source,
            Inventory::new("default", "shop").unwrap(),
        )
        .allow_empty_prune(true)
        .build()
        .unwrap();
        let s = r.reconcile_once().await;
        assert!(
            matches!(s.stalled, Some(StallReason::FetchFailed { .. })),
            "{s:?}"
        );
        assert_eq!(s.sync, SyncStatus::Unknown);
    }
    assert_eq!(
        cluster.requests().len(),
        0,
        "a failed fetch talks to no cluster"
    );
    assert_eq!(configmaps(&cluster), ["a"]);
}

#[tokio::test]
async fn a_rejected_object_fails_alone_with_its_own_message_and_blocks_prune() {
    let cluster = FakeCluster::start().await.unwrap();
    let git = GitFixture::with_files(&[
        ("app/a.yaml", &config_map("a", "1")),
        ("app/b.yaml", &config_map("b", "2")),
        ("app/old.yaml", &config_map("old", "3")),
    ])
    .unwrap();
    let r = reconciler(&cluster, &git, true);
    r.reconcile_once().await;
    git.commit_files(
        &[
            ("app/a.yaml", &config_map("a", "10")),
            ("app/b.yaml", &config_map("b", "20")),
        ],
        "v2",
    )
    .unwrap();
    git.delete_files(&["app/old.yaml"], "drop old").unwrap();
    cluster
        .faults()
        .inject(Fault::status(422).verb(Verb::Patch).name("b"));
    let s = r.reconcile_once().await;
    let a = s.object("ConfigMap", "a").unwrap();
    let b = s.object("ConfigMap", "b").unwrap();
    assert_eq!(a.result, ObjectResult::Applied);
    assert_eq!(b.result, ObjectResult::Failed);
    match &b.reason {
        Some(OutOfSyncReason::ApplyFailed { message }) => {
            assert!(message.contains('b'), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.sync, SyncStatus::OutOfSync);
    assert!(matches!(s.stalled, Some(StallReason::ClusterError { .. })));
    assert_eq!(
        configmaps(&cluster),
        ["a", "b", "old"],
        "no prune after a failed apply"
    );

    cluster.faults().clear();
    let s = r.reconcile_once().await;
    assert_eq!(s.sync, SyncStatus::Synced);
    assert_eq!(configmaps(&cluster), ["a", "b"]);
}
