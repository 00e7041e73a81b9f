//! Apply throughput against the in-process API server of `idp-testkit`, and the number
//! of requests per object for a first apply and for an unchanged re-apply.
//!
//! `cargo bench -p idp-core --bench apply`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use idp_core::cluster::{Applier, Cluster, Inventory};
use idp_core::{ManifestSet, Object};
use idp_testkit::FakeCluster;
use serde_json::json;

const OBJECTS: usize = 500;

fn manifests() -> ManifestSet {
    let namespaces = ["bench-a", "bench-b", "bench-c"];
    let mut set: ManifestSet = namespaces
        .iter()
        .map(|ns| {
            Object::from_value(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
            )
            .unwrap()
        })
        .collect();
    for i in 0..OBJECTS - namespaces.len() {
        let ns = namespaces[i % namespaces.len()];
        set.push(
            Object::from_value(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": format!("cm-{i}"), "namespace": ns},
                "data": {"index": i.to_string(), "payload": "x".repeat(256)},
            }))
            .unwrap(),
        );
    }
    set
}

async fn fresh() -> (FakeCluster, Applier) {
    let fake = FakeCluster::builder().seed(1).start().await.unwrap();
    let cluster = Cluster::new(fake.client());
    let applier = Applier::new(cluster, Inventory::new("default", "bench").unwrap());
    (fake, applier)
}

fn apply(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let set = manifests();

    // Request counts, reported once.
    rt.block_on(async {
        let (fake, applier) = fresh().await;
        applier.apply(&set).await.unwrap();
        let first = fake.requests();
        fake.reset_counters();
        applier.apply(&set).await.unwrap();
        let again = fake.requests();
        #[allow(clippy::cast_precision_loss)]
        let per_object = |n: usize| n as f64 / OBJECTS as f64;
        println!(
            "first apply of {OBJECTS} objects: {} requests ({:.3}/object), {} writes ({:.3}/object)",
            first.len(),
            per_object(first.len()),
            first.writes(),
            per_object(first.writes())
        );
        println!(
            "unchanged re-apply: {} requests ({:.3}/object), {} writes ({:.3}/object)",
            again.len(),
            per_object(again.len()),
            again.writes(),
            per_object(again.writes())
        );
    });

    let mut group = c.benchmark_group("apply");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(OBJECTS as u64));

    group.bench_function("first_apply_500", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let (_fake, applier) = fresh().await;
                    let start = Instant::now();
                    applier.apply(&set).await.unwrap();
                    total += start.elapsed();
                }
                total
            })
        });
    });

    let (fake, applier) = rt.block_on(fresh());
    rt.block_on(applier.apply(&set)).unwrap();
    group.bench_function("unchanged_reapply_500", |b| {
        b.to_async(&rt)
            .iter(|| async { applier.apply(&set).await.unwrap() });
    });
    group.finish();
    drop(fake);
}

criterion_group!(benches, apply);
criterion_main!(benches);
