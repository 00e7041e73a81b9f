//! Watch: events, selectors, resume from a resourceVersion, 410 Gone, bookmarks, timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::Duration;

use common::{cluster, cm_resource, configmap};
use futures::{StreamExt, TryStreamExt};
use idp_testkit::FakeCluster;
use kube::api::{
    Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use serde_json::json;

async fn next_event(
    stream: &mut (impl futures::Stream<Item = kube::Result<WatchEvent<DynamicObject>>> + Unpin),
) -> WatchEvent<DynamicObject> {
    tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .expect("watch event within 5s")
        .unwrap()
        .expect("stream still open")
}

fn name_of(e: &WatchEvent<DynamicObject>) -> (String, String) {
    match e {
        WatchEvent::Added(o) => ("ADDED".into(), o.metadata.name.clone().unwrap()),
        WatchEvent::Modified(o) => ("MODIFIED".into(), o.metadata.name.clone().unwrap()),
        WatchEvent::Deleted(o) => ("DELETED".into(), o.metadata.name.clone().unwrap()),
        WatchEvent::Bookmark(_) => ("BOOKMARK".into(), String::new()),
        WatchEvent::Error(e) => ("ERROR".into(), e.message.clone()),
    }
}

#[tokio::test]
async fn watch_sees_changes_in_order_with_selectors() {
    let c = cluster().await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &cm_resource());
    let rv = c.resource_version().to_string();
    let mut stream = api
        .watch(
            &WatchParams::default().labels("app=web").disable_bookmarks(),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    api.create(
        &PostParams::default(),
        &configmap("other", &[("app", "db")]),
    )
    .await
    .unwrap();
    api.create(&PostParams::default(), &configmap("a", &[("app", "web")]))
        .await
        .unwrap();
    api.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"k": "v2"}})),
    )
    .await
    .unwrap();
    api.delete("a", &DeleteParams::default()).await.unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        seen.push(name_of(&next_event(&mut stream).await));
    }
    assert_eq!(
        seen,
        vec![
            ("ADDED".into(), "a".into()),
            ("MODIFIED".into(), "a".into()),
            ("DELETED".into(), "a".into())
        ]
    );
}

#[tokio::test]
async fn objects_moving_in_and_out_of_a_selector_are_added_and_deleted() {
    let c = cluster().await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &cm_resource());
    api.create(&PostParams::default(), &configmap("a", &[("app", "db")]))
        .await
        .unwrap();
    let rv = c.resource_version().to_string();
    let mut stream = api
        .watch(
            &WatchParams::default().labels("app=web").disable_bookmarks(),
            &rv,
        )
        .await
        .unwrap()
        .boxed();
    let relabel = |app: &str| Patch::Merge(json!({"metadata": {"labels": {"app": app}}}));
    api.patch("a", &PatchParams::default(), &relabel("web"))
        .await
        .unwrap();
    api.patch("a", &PatchParams::default(), &relabel("db"))
        .await
        .unwrap();
    assert_eq!(
        name_of(&next_event(&mut stream).await),
        ("ADDED".into(), "a".into())
    );
    assert_eq!(
        name_of(&next_event(&mut stream).await),
        ("DELETED".into(), "a".into())
    );
}

#[tokio::test]
async fn watch_from_zero_lists_current_objects_first() {
    let c = cluster().await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &cm_resource());
    api.create(&PostParams::default(), &configmap("existing", &[]))
        .await
        .unwrap();
    let mut stream = api
        .watch(&WatchParams::default().disable_bookmarks(), "0")
        .await
        .unwrap()
        .boxed();
    assert_eq!(
        name_of(&next_event(&mut stream).await),
        ("ADDED".into(), "existing".into())
    );
}

#[tokio::test]
async fn watch_resumes_after_a_resource_version() {
    let c = cluster().await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &cm_resource());
    api.create(&PostParams::default(), &configmap("one", &[]))
        .await
        .unwrap();
    let two = api
        .create(&PostParams::default(), &configmap("two", &[]))
        .await
        .unwrap();
    api.create(&PostParams::default(), &configmap("three", &[]))
        .await
        .unwrap();
    let rv = two.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await
        .unwrap()
        .boxed();
    assert_eq!(
        name_of(&next_event(&mut stream).await),
        ("ADDED".into(), "three".into())
    );
}

#[tokio::test]
async fn too_old_resource_version_is_gone() {
    let c = FakeCluster::builder()
        .watch_window(2)
        .start()
        .await
        .unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &cm_resource());
    let first = api
        .create(&PostParams::default(), &configmap("a", &[]))
        .await
        .unwrap();
    for n in ["b", "c", "d"] {
        api.create(&PostParams::default(), &configmap(n, &[]))
            .await
            .unwrap();
    }
    let rv = first.metadata.resource_version.unwrap();
    let mut stream = api
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert!(
                e.message.starts_with("too old resource version"),
                "{}",
                e.message
            );
        }
        other => panic!("expected 410, got {other:?}"),
    }
    assert!(stream.next().await.is_none(), "the stream ends after 410");
}

#[tokio::test]
async fn bookmarks_arrive_when_asked_for() {
    let c = cluster().await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &cm_resource());
    let rv = c.resource_version().to_string();
    let mut stream = api
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut stream).await {
        WatchEvent::Bookmark(b) => assert_eq!(b.metadata.resource_version, rv),
        other => panic!("expected a bookmark, got {other:?}"),
    }
}

#[tokio::test]
async fn watch_ends_after_timeout_seconds() {
    let c = cluster().await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &cm_resource());
    let rv = c.resource_version().to_string();
    let mut stream = api
        .watch(&WatchParams::default().timeout(1).disable_bookmarks(), &rv)
        .await
        .unwrap()
        .boxed();
    let end = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap();
    assert!(end.is_none());
}

#[tokio::test]
async fn kube_runtime_watcher_works() {
    use kube::runtime::{WatchStreamExt, watcher};
    let c = cluster().await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &cm_resource());
    api.create(&PostParams::default(), &configmap("a", &[]))
        .await
        .unwrap();
    let mut objects = watcher(api.clone(), watcher::Config::default())
        .applied_objects()
        .boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), objects.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("a"));
    api.create(&PostParams::default(), &configmap("b", &[]))
        .await
        .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(5), objects.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(second.metadata.name.as_deref(), Some("b"));
}
