//! Cost of checking objects natively versus the cost of merely parsing them.
//!
//! 10,000 mixed Pods and Deployments (see `common/mod.rs`: two in three compliant, the
//! others not). Measures:
//!
//! - `native/pss-restricted+guardrails`: a [`PolicySet`] with PSS restricted and every
//!   guardrail (and a registry allowlist), over already-parsed objects;
//! - `parse/serde_json`: `serde_json::from_slice::<Object>` of each object's JSON — the
//!   same `Object` type the engine takes, so the baseline is what any caller pays to get
//!   an object to check.
//!
//! Criterion reports both per element (throughput); before that, a short warm measurement
//! prints the per-object figures and their ratio.
//!
//! The acceptance figures (parse, native and Rego side by side, with PASS/FAIL) are
//! printed by the `native_vs_rego` bench. Run with `cargo bench -p idp-policy --bench policy`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::manual_is_multiple_of,
    clippy::range_plus_one,
    missing_docs
)]

mod common;

use std::hint::black_box;
use std::time::{Duration, Instant};

use common::{Mix, OBJECTS, corpus, native};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use idp_core::{Object, Policy, PolicyContext};
use idp_policy::{PolicySet, guardrails, pss::PodSecurity};

fn parse_all(docs: &[Vec<u8>]) -> usize {
    docs.iter()
        .map(|d| {
            let o: Object = serde_json::from_slice(d).unwrap();
            black_box(&o);
            1
        })
        .sum()
}

fn parse_and_check_all(set: &PolicySet, docs: &[Vec<u8>], ctx: &PolicyContext) -> usize {
    docs.iter()
        .map(|d| {
            let o: Object = serde_json::from_slice(d).unwrap();
            black_box(set.evaluate(&o, ctx)).len()
        })
        .sum()
}

fn check_all(set: &PolicySet, objects: &[Object], ctx: &PolicyContext) -> usize {
    objects
        .iter()
        .map(|o| black_box(set.evaluate(o, ctx)).len())
        .sum()
}

/// Median per-object time of `f` over `rounds` passes.
fn per_object(rounds: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[rounds / 2] / OBJECTS as u32
}

fn bench(c: &mut Criterion) {
    let (docs, objects) = corpus(Mix::Mixed);
    let set = native();
    let ctx = PolicyContext::new().with_environment("prod".parse().unwrap());
    let violations = check_all(&set, &objects, &ctx);
    let bytes: usize = docs.iter().map(Vec::len).sum();

    let native = per_object(15, || {
        black_box(check_all(&set, &objects, &ctx));
    });
    let parse = per_object(15, || {
        black_box(parse_all(&docs));
    });
    let parse_and_check = per_object(15, || {
        black_box(parse_and_check_all(&set, &docs, &ctx));
    });
    let marginal = parse_and_check.saturating_sub(parse);
    println!(
        "\n{OBJECTS} objects ({} bytes of JSON on average), {violations} violations in all",
        bytes / OBJECTS
    );
    println!("serde_json::from_slice into Object:            {parse:?} per object");
    println!(
        "check, objects parsed earlier (cache-cold):    {native:?} per object, {:.3}x parse",
        native.as_secs_f64() / parse.as_secs_f64()
    );
    println!("parse then check each object at once:         {parse_and_check:?} per object");
    println!(
        "  of which checking (the pipeline's own cost): {marginal:?} per object, {:.3}x parse",
        marginal.as_secs_f64() / parse.as_secs_f64()
    );
    println!("(below 1x: checking an object costs less than parsing it)\n");

    println!("per policy:");
    let mut each: Vec<std::sync::Arc<dyn Policy>> =
        vec![std::sync::Arc::new(PodSecurity::restricted())];
    each.extend(guardrails::all());
    for p in &each {
        let t = per_object(5, || {
            for o in &objects {
                black_box(p.evaluate(o, &ctx));
            }
        });
        println!("  {:<24} {t:?} per object", p.name());
    }
    println!();

    let mut group = c.benchmark_group("10k-pods-and-deployments");
    group.throughput(Throughput::Elements(OBJECTS as u64));
    group.sample_size(20);
    group.bench_function("native/pss-restricted+guardrails", |b| {
        b.iter(|| check_all(&set, &objects, &ctx));
    });
    group.bench_function("parse/serde_json", |b| b.iter(|| parse_all(&docs)));
    group.bench_function("parse+check", |b| {
        b.iter(|| parse_and_check_all(&set, &docs, &ctx));
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
