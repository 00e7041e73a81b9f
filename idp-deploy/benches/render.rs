//! Rendering a realistic Score workload for one environment, and estimating the cost of
//! 1,000 Deployments.
//!
//! `cargo bench -p idp-deploy --bench render`
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use idp_core::{ManifestSet, Object};
use idp_deploy::cost::{PriceSheet, estimate};
use idp_deploy::workload::{
    CompositeProvisioner, EnvironmentProfile, RenderContext, StaticOutputs, Workload, render,
};
use serde_json::json;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/cart")
        .join(name)
}

fn bench_render(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let text = std::fs::read_to_string(data("score.yaml")).unwrap();
    let profile = EnvironmentProfile::from_file(data("prod.yaml")).unwrap();
    let provisioner = CompositeProvisioner::with_defaults()
        .with_fallback(StaticOutputs::from_file(data("outputs.yaml")).unwrap());
    let ctx = RenderContext::new()
        .with_owner("team-a")
        .with_image("ghcr.io/acme/cart-worker:7.0.1")
        .with_base_dir(data(""));
    let workload = Workload::from_yaml(&text, None).unwrap();

    c.bench_function("parse the cart Score file", |b| {
        b.iter(|| Workload::from_yaml(std::hint::black_box(&text), None).unwrap());
    });
    c.bench_function("render the cart workload for prod", |b| {
        b.iter(|| {
            runtime
                .block_on(render(&workload, &profile, &provisioner, &ctx))
                .unwrap()
        });
    });
}

fn bench_cost(c: &mut Criterion) {
    let set: ManifestSet = (0..1_000)
        .map(|i| {
            Object::from_value(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": format!("app-{i}"), "namespace": "shop",
                             "labels": {"idp.dev/owner": format!("team-{}", i % 10),
                                        "idp.dev/environment": "prod"}},
                "spec": {"replicas": 3, "template": {"spec": {"containers": [
                    {"name": "app", "image": "i",
                     "resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                                   "limits": {"memory": "1Gi"}}},
                ]}}},
            }))
            .unwrap()
        })
        .collect();
    let prices = PriceSheet::default();
    let mut group = c.benchmark_group("cost");
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("estimate 1,000 Deployments", |b| {
        b.iter(|| estimate(std::hint::black_box(&set), &prices).unwrap());
    });
    group.finish();
}

criterion_group!(benches, bench_render, bench_cost);
criterion_main!(benches);
