//! Fault injection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::time::{Duration, Instant};

use common::{api_err, cm_resource, configmap};
use futures::{StreamExt, TryStreamExt};
use idp_testkit::{FakeCluster, Fault, Verb};
use kube::api::{Api, DynamicObject, ListParams, PostParams, WatchParams};

#[tokio::test]
async fn next_n_requests_fail_then_recover() {
    let c = FakeCluster::start().await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &cm_resource());
    c.faults().inject(
        Fault::status(500)
            .verb(Verb::List)
            .resource("configmaps")
            .times(2),
    );
    for _ in 0..2 {
        let e = api_err(api.list(&ListParams::default()).await.unwrap_err());
        assert_eq!((e.code, e.reason.as_str()), (500, "InternalError"));
    }
    api.list(&ListParams::default()).await.unwrap();
    // Failed requests are recorded with their status.
    assert_eq!(c.requests().count(|r| r.status == 500), 2);
    assert_eq!(c.requests().count_verb(Verb::List), 3);
}

#[tokio::test]
async fn a_503_reaches_the_caller_whose_policy_retries() {
    // The client leaves retries to idp-core's `RetryPolicy` (kube's own layer is off,
    // as in `client_from_kubeconfig`): the 503 comes back, and a second try succeeds.
    let c = FakeCluster::start().await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &cm_resource());
    c.faults()
        .inject(Fault::status(503).verb(Verb::Create).times(1));
    let e = api_err(
        api.create(&PostParams::default(), &configmap("a", &[]))
            .await
            .unwrap_err(),
    );
    assert_eq!(e.code, 503);
    api.create(&PostParams::default(), &configmap("a", &[]))
        .await
        .unwrap();
    let creates: Vec<u16> = c
        .requests()
        .iter()
        .filter(|r| r.verb == Verb::Create)
        .map(|r| r.status)
        .collect();
    assert_eq!(creates, [503, 201]);
}

#[tokio::test]
async fn too_many_requests_carries_retry_after() {
    let c = FakeCluster::start().await.unwrap();
    c.faults().inject(Fault::too_many_requests(3).times(1));
    let resp = reqwest_like_get(&c.url()).await;
    assert!(resp.starts_with("HTTP/1.1 429"), "{resp}");
    assert!(
        resp.to_ascii_lowercase().contains("retry-after: 3"),
        "{resp}"
    );
}

/// A raw HTTP GET so the test can see headers kube does not expose.
async fn reqwest_like_get(url: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET /api/v1/namespaces HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn fractional_faults_repeat_with_the_same_seed() {
    async fn run(seed: u64) -> Vec<bool> {
        let c = FakeCluster::builder().seed(seed).start().await.unwrap();
        let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &cm_resource());
        c.faults()
            .inject(Fault::status(500).verb(Verb::Get).fraction(0.5));
        let mut out = Vec::new();
        for _ in 0..20 {
            out.push(api.get_opt("x").await.is_err());
        }
        out
    }
    let a = run(11).await;
    assert_eq!(a, run(11).await);
    assert!(a.iter().any(|x| *x) && a.iter().any(|x| !*x), "{a:?}");
}

#[tokio::test]
async fn latency_slows_matching_requests() {
    let c = FakeCluster::start().await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "slow", &cm_resource());
    c.faults()
        .inject(Fault::latency(Duration::from_millis(100)).namespace("slow"));
    let start = Instant::now();
    let _ = api.list(&ListParams::default()).await;
    assert!(start.elapsed() >= Duration::from_millis(100));
}

#[tokio::test]
async fn watch_connection_is_dropped_mid_stream() {
    let c = FakeCluster::start().await.unwrap();
    let api: Api<DynamicObject> = Api::namespaced_with(c.client(), "default", &cm_resource());
    c.faults().inject(Fault::drop_watch(1).times(1));
    let rv = c.resource_version().to_string();
    let mut stream = api
        .watch(&WatchParams::default().disable_bookmarks(), &rv)
        .await
        .unwrap()
        .boxed();
    api.create(&PostParams::default(), &configmap("a", &[]))
        .await
        .unwrap();
    api.create(&PostParams::default(), &configmap("b", &[]))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap();
    assert!(first.unwrap().is_some());
    let second = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .unwrap();
    assert!(
        second.is_none() || second.as_ref().is_some_and(Result::is_err),
        "the connection should break, got {second:?}"
    );
}
