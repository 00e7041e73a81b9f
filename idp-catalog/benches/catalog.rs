//! Catalog benchmark over a generated organisation.
//!
//! `IDP_CATALOG_BENCH_SIZE` sets the number of entities (default 250,000). Run quickly
//! with `IDP_CATALOG_BENCH_SIZE=20000 cargo bench -p idp-catalog -- --quick`.
//!
//! Besides criterion's measurements it prints one-shot figures: full ingest time
//! (read + parse + placeholders + validate + relations + index), single-entity deltas
//! with a reader holding the previous snapshot, the search index build, and heap bytes
//! per entity beyond the source text (a structural estimate, and RSS growth). Criterion
//! then measures get by ref, filter pages, graph queries, search and a one-entity delta.
//!
//! For profiling and A/B runs: `IDP_CATALOG_BENCH_DIR=/some/dir` writes the generated YAML
//! there once and reuses it in later runs (same size and seed), `IDP_CATALOG_BENCH_ONESHOT=1`
//! stops after the full-ingest figures (and the same-run baseline that reads everything
//! before validating anything; `IDP_CATALOG_BENCH_BASELINE=0` skips it), and `RUST_LOG=idp_catalog=debug` prints the ingest
//! phases (prepare, serial apply, index and relations, dangling check) as tracing events.
#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::many_single_char_names,
    clippy::unchecked_time_subtraction
)]

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use idp_catalog::provider::{EntityProvider, FileProvider};
use idp_catalog::relations::RelationType;
use idp_catalog::search::SearchIndex;
use idp_catalog::{EntityInput, InMemoryCatalog, Mutation, QueryOptions, filter};
use idp_core::EntityRef;

/// The bench binary allocates with mimalloc (the library crates never choose an
/// allocator): ingest allocates each entity on a reader thread and frees it on a
/// validating one, which glibc malloc handles slowly.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Resident set size in bytes (Linux), 0 elsewhere.
fn rss() -> f64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| {
            s.split_whitespace()
                .nth(1)
                .and_then(|p| p.parse::<f64>().ok())
        })
        .map_or(0.0, |pages| pages * 4096.0)
}

/// The catalog size: `IDP_CATALOG_BENCH_SIZE`, else 250,000 under `cargo bench` and
/// 1,000 when the bench runs as a test (`cargo test --all-targets`).
fn size() -> usize {
    let under_bench = std::env::args().any(|a| a == "--bench");
    std::env::var("IDP_CATALOG_BENCH_SIZE")
        .ok()
        .and_then(|s| s.replace('_', "").parse().ok())
        .unwrap_or(if under_bench { 250_000 } else { 1_000 })
}

fn source_bytes(dir: &std::path::Path) -> u64 {
    idp_catalog::load::yaml_files(&[dir])
        .iter()
        .map(|f| std::fs::metadata(f).map_or(0, |m| m.len()))
        .sum()
}

fn bench(c: &mut Criterion) {
    let n = size();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = match std::env::var_os("IDP_CATALOG_BENCH_DIR") {
        Some(d) => std::path::PathBuf::from(d).join(format!("org-{n}-42")),
        None => tmp.path().to_path_buf(),
    };
    if !dir.join("catalog-info.yaml").exists() {
        std::fs::create_dir_all(&dir).unwrap();
        idp_catalog::generate::write_org(&dir, n, 42).unwrap();
    }
    let src = source_bytes(&dir);
    let provider = FileProvider::new("bench", &dir);

    // One-shot figures: full ingest and memory.
    let before = rss();
    let cpu_before = common::cpu_seconds();
    let start = Instant::now();
    let catalog = InMemoryCatalog::new();
    // What `provider::refresh` does: each file's entities are validated on the thread
    // that parsed them, then the whole read is committed.
    let stage = catalog.stage("bench");
    let out = rt.block_on(provider.read_staged(&stage)).unwrap();
    let read = start.elapsed();
    let report = catalog.commit(&stage, out.mutation);
    let total = start.elapsed();
    let cpu = common::cpu_seconds() - cpu_before;
    assert!(report.rejected.is_empty(), "{:?}", &report.rejected[..1]);
    drop(report);
    let rss_per_entity = (rss() - before).max(0.0) / n as f64;
    let snap = catalog.snapshot();
    let mem = snap.memory_estimate();
    let per_entity = mem.total() as f64 / n as f64;
    let beyond = (mem.total() - mem.entity_text) as f64 / n as f64;
    let src_per_entity = src as f64 / n as f64;
    println!(
        "\n== idp-catalog bench: {n} entities, {:.1} MB of YAML ({src_per_entity:.0} B/entity)",
        src as f64 / 1e6
    );
    println!(
        "full ingest: {:.2} s (read+parse+placeholders+validate {:.2} s, relations+index {:.2} s)",
        total.as_secs_f64(),
        read.as_secs_f64(),
        total.checked_sub(read).unwrap().as_secs_f64()
    );
    println!(
        "full ingest CPU time: {cpu:.2} s (user + system, all threads; {:.2} cores busy on average)",
        cpu / total.as_secs_f64()
    );
    println!(
        "memory (structural estimate): {per_entity:.0} B/entity, of which {beyond:.0} B/entity beyond the entity text ({:.0} B/entity stored JSON)",
        mem.entity_text as f64 / n as f64
    );
    println!(
        "memory (RSS growth during ingest, includes allocator slack and freed parse buffers): {rss_per_entity:.0} B/entity"
    );
    println!(
        "memory beyond the source text (YAML {src_per_entity:.0} B/entity): structural {:.0} B/entity, RSS growth {:.0} B/entity",
        per_entity - src_per_entity,
        rss_per_entity - src_per_entity
    );
    println!("{mem:?}");
    // The baseline in the same run: read everything, then validate everything
    // (`IDP_CATALOG_BENCH_BASELINE=0` skips it, e.g. under a profiler).
    if std::env::var_os("IDP_CATALOG_BENCH_BASELINE").is_none_or(|v| v != "0") {
        let cpu_before = common::cpu_seconds();
        let start = Instant::now();
        let baseline = InMemoryCatalog::new();
        let out = rt.block_on(provider.read()).unwrap();
        let base_read = start.elapsed();
        let report = baseline.apply("bench", out.mutation);
        let base_total = start.elapsed();
        let base_cpu = common::cpu_seconds() - cpu_before;
        assert_eq!(report.added.len(), snap.len());
        let dropped = Instant::now();
        drop(report);
        let report_drop = dropped.elapsed();
        drop(baseline);
        let catalog_drop = dropped.elapsed() - report_drop;
        println!(
            "dropping the baseline: its report {:.0} ms, the catalog {:.0} ms",
            report_drop.as_secs_f64() * 1e3,
            catalog_drop.as_secs_f64() * 1e3
        );
        println!(
            "baseline, read all then apply: {:.2} s (read {:.2} s, apply {:.2} s), CPU {base_cpu:.2} s; streamed/baseline: {:.2}x time, {:.2}x CPU",
            base_total.as_secs_f64(),
            base_read.as_secs_f64(),
            base_total.checked_sub(base_read).unwrap().as_secs_f64(),
            total.as_secs_f64() / base_total.as_secs_f64(),
            cpu / base_cpu
        );
    }
    if std::env::var_os("IDP_CATALOG_BENCH_ONESHOT").is_some() {
        return;
    }

    let some_component: EntityRef = snap
        .refs(&filter::parse_filters(&["kind=component"]).unwrap())
        .into_iter()
        .nth(n / 4)
        .unwrap();
    let owner: EntityRef = "group:default/team-1".parse().unwrap();

    // One changed entity, alternating between two versions.
    let entity = snap.get(&some_component).unwrap();
    let mut v1 = entity.to_value();
    v1.as_object_mut().unwrap().remove("relations");
    let mut v2 = v1.clone();
    v2["metadata"]["description"] = serde_json::json!("changed by the bench");
    let start = Instant::now();
    let r = catalog.apply(
        "bench",
        Mutation::Delta {
            upserts: vec![EntityInput::new(v2.clone())],
            removals: vec![],
        },
    );
    let delta = start.elapsed();
    assert_eq!(r.updated.len(), 1, "{r:?}");
    println!(
        "delta of 1 changed entity (one shot): {:.1} µs",
        delta.as_secs_f64() * 1e6
    );
    // More one-shot deltas, each with a reader holding the snapshot before it (so the
    // change copies what it touches): the worst and the median.
    let mut shots: Vec<f64> = (0..21)
        .map(|i| {
            let _reader = catalog.snapshot();
            let v = if i % 2 == 0 { v1.clone() } else { v2.clone() };
            let start = Instant::now();
            let r = catalog.apply(
                "bench",
                Mutation::Delta {
                    upserts: vec![EntityInput::new(v)],
                    removals: vec![],
                },
            );
            let t = start.elapsed().as_secs_f64() * 1e6;
            assert_eq!(r.updated.len(), 1, "{r:?}");
            t
        })
        .collect();
    shots.sort_by(f64::total_cmp);
    println!(
        "delta of 1 changed entity (21 more one-shots, a reader holding the previous snapshot): median {:.1} µs, worst {:.1} µs",
        shots[10], shots[20]
    );
    let owned = snap.owned_by_transitive(&owner).len();
    println!("team-1 owns {owned} entities transitively");
    let start = Instant::now();
    let search = SearchIndex::build(&catalog.snapshot());
    println!(
        "search index build: {:.2} s ({} entities)",
        start.elapsed().as_secs_f64(),
        search.len()
    );

    let mut g = c.benchmark_group(format!("catalog_{n}"));
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    g.bench_function("get_by_ref", |b| {
        b.iter(|| black_box(catalog.snapshot().get(&some_component)));
    });
    let q = filter::parse_filters(&["kind=component,spec.type=service"])
        .unwrap()
        .limit(20);
    g.bench_function("filter_kind_type_page20", |b| {
        b.iter(|| black_box(catalog.snapshot().query(&q).unwrap()));
    });
    let q_owner = filter::parse_filters(&["spec.owner=team-7"])
        .unwrap()
        .limit(20);
    g.bench_function("filter_owner_page20", |b| {
        b.iter(|| black_box(catalog.snapshot().query(&q_owner).unwrap()));
    });
    // The same page projected to kind and name (Backstage's `fields`): the index walk
    // and the stored text, without materialising whole entities and their relations.
    let names = QueryOptions::default().fields(["kind", "metadata.name"]);
    g.bench_function("filter_kind_type_page20_fields_name", |b| {
        b.iter(|| black_box(catalog.snapshot().query_with(&q, &names).unwrap()));
    });
    // The same pages as the JSON text a server writes (each entity rendered once per
    // version and shared, so after the first pass this is the index walk plus a join).
    let whole = QueryOptions::default();
    g.bench_function("filter_kind_type_page20_json", |b| {
        b.iter(|| {
            black_box(
                catalog
                    .snapshot()
                    .query_json(&q, &whole)
                    .unwrap()
                    .json_array(),
            )
        });
    });
    g.bench_function("filter_owner_page20_json", |b| {
        b.iter(|| {
            black_box(
                catalog
                    .snapshot()
                    .query_json(&q_owner, &whole)
                    .unwrap()
                    .json_array(),
            )
        });
    });
    g.bench_function("get_json_by_ref", |b| {
        b.iter(|| black_box(catalog.snapshot().get_json(&some_component)));
    });
    g.bench_function("count_kind_type", |b| {
        b.iter(|| black_box(catalog.snapshot().count(&q)));
    });
    g.bench_function("owned_by_transitive", |b| {
        b.iter(|| black_box(catalog.snapshot().owned_by_transitive(&owner)));
    });
    g.bench_function("dependency_closure", |b| {
        b.iter(|| {
            black_box(
                catalog
                    .snapshot()
                    .closure(&some_component, RelationType::DependsOn),
            )
        });
    });
    g.bench_function("search_payments_checkout_top20", |b| {
        b.iter(|| black_box(search.search("payments checkout", 20)));
    });
    g.bench_function("search_typo_top20", |b| {
        b.iter(|| black_box(search.search("paymnets", 20)));
    });
    let mut flip = false;
    g.bench_function("delta_1_entity", |b| {
        b.iter(|| {
            flip = !flip;
            let v = if flip { v1.clone() } else { v2.clone() };
            black_box(catalog.apply(
                "bench",
                Mutation::Delta {
                    upserts: vec![EntityInput::new(v)],
                    removals: vec![],
                },
            ))
        });
    });
    g.finish();
    let mut g = c.benchmark_group(format!("ingest_{n}"));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    // The catalog and the report are dropped outside the timing (freeing 250,000
    // entities is not part of reading them).
    g.bench_function("full_ingest_files", |b| {
        b.iter_with_large_drop(|| {
            let catalog = InMemoryCatalog::new();
            let report = rt
                .block_on(idp_catalog::provider::refresh(&catalog, &provider))
                .unwrap();
            (catalog, report)
        });
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
