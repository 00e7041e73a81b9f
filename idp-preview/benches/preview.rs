//! Benchmarks: event → environment-ready latency (rollouts are instant in the fake
//! cluster, so this is our own cost plus the API round trips) and one reaper sweep over
//! 1,000 previews.
//!
//! `cargo bench -p idp-preview --bench preview`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use futures::StreamExt;
use idp_core::cluster::Cluster;
use idp_core::model::EnvironmentSpec;
use idp_core::{EnvironmentProvider, ManifestSet};
use idp_preview::controller::PreviewController;
use idp_preview::decision::Decision;
use idp_preview::event::{Forge, PullRequestAction, PullRequestEvent};
use idp_preview::labels::PreviewId;
use idp_preview::namespace::{NamespaceConfig, NamespaceProvider};
use idp_preview::reaper::{MemoryPullRequests, Reaper};
use idp_preview::source::ManifestSource;
use idp_preview::status::PreviewPhase;
use idp_testkit::FakeCluster;
use idp_testkit::doubles::ApplyDeployer;

const WEB: &str = r"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: 'registry.example.com/cart:main'}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec: {selector: {app: web}, ports: [{port: 80}]}
";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

async fn instant_cluster() -> FakeCluster {
    FakeCluster::builder()
        .rollout_delay(Duration::ZERO)
        .namespace_deletion_delay(Duration::ZERO)
        .start()
        .await
        .expect("fake cluster")
}

fn event(action: PullRequestAction, n: u64) -> PullRequestEvent {
    PullRequestEvent::new(Forge::GitHub, action, "acme/cart", n).with_head("f", format!("{n:040x}"))
}

fn event_to_ready(c: &mut Criterion) {
    let rt = runtime();
    // kube clients need a runtime context when they are built.
    let _guard = rt.enter();
    let cluster = rt.block_on(instant_cluster());
    let provider = Arc::new(NamespaceProvider::new(
        Cluster::new(cluster.client()),
        NamespaceConfig::default().with_ingress("{env}.preview.example.com", "web", 80),
    ));
    let deployer = Arc::new(ApplyDeployer::new(Cluster::new(cluster.client())));
    let source = Arc::new(
        ManifestSource::from_set(ManifestSet::parse(WEB.as_bytes(), None).expect("manifests"))
            .with_image("registry.example.com/cart"),
    );
    let controller = PreviewController::new(provider, deployer, source);
    let next = AtomicU64::new(1);
    let mut group = c.benchmark_group("preview");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("event_to_ready", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            let controller = &controller;
            let next = &next;
            async move {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let env: idp_core::EnvironmentName =
                        format!("pr-cart-{n}").parse().expect("name");
                    let start = Instant::now();
                    let status = controller
                        .apply(
                            &event(PullRequestAction::Opened, n),
                            &Decision::Ensure {
                                environment: env.clone(),
                            },
                        )
                        .await
                        .expect("apply");
                    total += start.elapsed();
                    assert_eq!(status.phase, PreviewPhase::Ready, "{status}");
                    controller
                        .apply(
                            &event(PullRequestAction::Closed { merged: false }, n),
                            &Decision::Destroy {
                                environment: env,
                                reason: "bench".into(),
                            },
                        )
                        .await
                        .expect("destroy");
                }
                total
            }
        });
    });
    group.finish();
}

fn reaper_sweep(c: &mut Criterion) {
    const PREVIEWS: u64 = 1_000;
    let rt = runtime();
    // kube clients need a runtime context when they are built.
    let _guard = rt.enter();
    let cluster = rt.block_on(instant_cluster());
    let provider = Arc::new(NamespaceProvider::new(
        Cluster::new(cluster.client()),
        NamespaceConfig::bare(),
    ));
    let prs = MemoryPullRequests::new();
    rt.block_on(async {
        futures::stream::iter(1..=PREVIEWS)
            .map(|n| {
                let provider = provider.clone();
                prs.upsert(event(PullRequestAction::Opened, n));
                async move {
                    let mut spec =
                        EnvironmentSpec::new(format!("pr-cart-{n}").parse().expect("name"))
                            .with_ttl(Duration::from_secs(3600));
                    spec.labels
                        .extend(PreviewId::new("acme/cart", n).expect("id").labels());
                    provider.ensure(&spec).await.expect("ensure");
                }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await;
    });
    let reaper = Reaper::new(provider, Arc::new(prs));
    let mut group = c.benchmark_group("preview");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.bench_function("reaper_sweep_1000_previews", |b| {
        b.to_async(&rt).iter(|| async {
            let report = reaper.sweep().await.expect("sweep");
            assert_eq!(report.examined as u64, PREVIEWS);
            assert_eq!(report.kept as u64, PREVIEWS);
        });
    });
    group.finish();
}

criterion_group!(benches, event_to_ready, reaper_sweep);
criterion_main!(benches);
