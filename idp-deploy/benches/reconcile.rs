//! Reconciler efficiency: the initial apply of 1,000 objects (wall time, printed) and a
//! no-op pass over them (wall time, plus the request counts FakeCluster recorded, which
//! are deterministic: zero writes, no per-object GET).
//!
//! `cargo bench -p idp-deploy --bench reconcile`

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use idp_core::cluster::{Cluster, Inventory};
use idp_deploy::reconcile::{GitSource, Reconciler, SyncStatus};
use idp_testkit::fixtures::GitFixture;
use idp_testkit::{FakeCluster, Verb};

const OBJECTS: usize = 1000;

fn config_maps(n: usize) -> String {
    (0..n)
        .map(|i| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:04}\ndata:\n  value: v1\n"))
        .collect::<Vec<_>>()
        .join("---\n")
}

fn reconciler(cluster: &FakeCluster, git: &GitFixture) -> Reconciler {
    Reconciler::builder(
        Cluster::new(cluster.client()),
        GitSource::new(git.remote_url(), "main", "app"),
        Inventory::new("default", "bench").expect("valid inventory"),
    )
    .build()
    .expect("reconciler")
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let git =
        GitFixture::with_files(&[("app/all.yaml", &config_maps(OBJECTS))]).expect("git fixture");

    let mut group = c.benchmark_group("reconcile");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));

    let mut initial: Vec<(Duration, usize)> = Vec::new();
    group.bench_function("initial_apply_1000_objects", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let cluster = FakeCluster::start().await.expect("fake cluster");
                    let r = reconciler(&cluster, &git);
                    let start = Instant::now();
                    let status = r.reconcile_once().await;
                    let took = start.elapsed();
                    assert_eq!(status.writes, OBJECTS);
                    initial.push((took, cluster.requests().writes()));
                    total += took;
                    cluster.shutdown().await;
                }
                total
            })
        });
    });

    let (cluster, r) = rt.block_on(async {
        let cluster = FakeCluster::start().await.expect("fake cluster");
        let r = reconciler(&cluster, &git);
        r.reconcile_once().await;
        // Let the watch cache catch up with the initial writes.
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            cluster.reset_counters();
            let s = r.reconcile_once().await;
            if s.sync == SyncStatus::Synced && cluster.requests().count_verb(Verb::List) <= 2 {
                break;
            }
        }
        (cluster, r)
    });
    group.bench_function("noop_reconcile_1000_objects", |b| {
        b.iter(|| rt.block_on(r.reconcile_once()));
    });
    cluster.reset_counters();
    let status = rt.block_on(r.reconcile_once());
    let requests = cluster.requests();
    println!(
        "no-op pass over {OBJECTS} objects: sync={:?}, writes={}, GET={} (per-object GET={}), LIST={}, total requests={}",
        status.sync,
        requests.writes(),
        requests.count_verb(Verb::Get),
        requests.count(|q| q.verb == Verb::Get && q.name.as_deref() != Some("bench")),
        requests.count_verb(Verb::List),
        requests.len(),
    );
    group.finish();
    initial.sort();
    if let Some((median, writes)) = initial.get(initial.len() / 2) {
        println!(
            "initial apply of {OBJECTS} objects: median {:.1} ms over {} runs (min {:.1} ms, max {:.1} ms), {writes} write requests",
            median.as_secs_f64() * 1000.0,
            initial.len(),
            initial[0].0.as_secs_f64() * 1000.0,
            initial[initial.len() - 1].0.as_secs_f64() * 1000.0,
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
