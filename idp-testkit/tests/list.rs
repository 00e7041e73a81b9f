//! Listing: label selectors, field selectors, pagination.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{api_err, cluster, cm_resource, configmap, create_namespace};
use kube::api::{Api, DynamicObject, ListParams, PostParams};

async fn seeded() -> (idp_testkit::FakeCluster, Api<DynamicObject>) {
    let c = cluster().await;
    create_namespace(&c.client(), "sel").await;
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "sel", &cm_resource());
    for (name, labels) in [
        ("a", vec![("app", "web"), ("tier", "front")]),
        ("b", vec![("app", "web"), ("tier", "back")]),
        ("c", vec![("app", "db")]),
        ("d", vec![]),
    ] {
        api.create(&PostParams::default(), &configmap(name, &labels))
            .await
            .unwrap();
    }
    (c, api)
}

async fn names(api: &Api<DynamicObject>, lp: &ListParams) -> Vec<String> {
    api.list(lp)
        .await
        .unwrap()
        .items
        .into_iter()
        .map(|o| o.metadata.name.unwrap())
        .collect()
}

#[tokio::test]
async fn label_selectors() {
    let (_c, api) = seeded().await;
    let cases: &[(&str, &[&str])] = &[
        ("app=web", &["a", "b"]),
        ("app==web,tier=back", &["b"]),
        ("app!=web", &["c", "d"]),
        ("tier in (front, back)", &["a", "b"]),
        ("app notin (web)", &["c", "d"]),
        ("tier", &["a", "b"]),
        ("!tier", &["c", "d"]),
    ];
    for (sel, want) in cases {
        assert_eq!(
            names(&api, &ListParams::default().labels(sel)).await,
            *want,
            "{sel}"
        );
    }
}

#[tokio::test]
async fn bad_selector_is_bad_request() {
    let (_c, api) = seeded().await;
    let err = api_err(
        api.list(&ListParams::default().labels("app in ("))
            .await
            .unwrap_err(),
    );
    assert_eq!((err.code, err.reason.as_str()), (400, "BadRequest"));
}

#[tokio::test]
async fn field_selectors() {
    let (c, api) = seeded().await;
    assert_eq!(
        names(&api, &ListParams::default().fields("metadata.name=c")).await,
        ["c"]
    );
    assert_eq!(
        names(&api, &ListParams::default().fields("metadata.name!=c")).await,
        ["a", "b", "d"]
    );
    let all: Api<DynamicObject> = Api::all_with(c.client(), &cm_resource());
    assert_eq!(
        names(
            &all,
            &ListParams::default().fields("metadata.namespace=sel")
        )
        .await
        .len(),
        4
    );
}

#[tokio::test]
async fn pagination_with_limit_and_continue() {
    let (_c, api) = seeded().await;
    let first = api.list(&ListParams::default().limit(3)).await.unwrap();
    assert_eq!(first.items.len(), 3);
    let token = first.metadata.continue_.clone().unwrap();
    assert_eq!(first.metadata.remaining_item_count, Some(1));
    let second = api
        .list(&ListParams::default().limit(3).continue_token(&token))
        .await
        .unwrap();
    assert_eq!(second.items.len(), 1);
    assert_eq!(second.items[0].metadata.name.as_deref(), Some("d"));
    assert!(
        second
            .metadata
            .continue_
            .as_deref()
            .unwrap_or("")
            .is_empty()
    );
}
