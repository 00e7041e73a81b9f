//! Cost of checking objects natively versus the cost of merely parsing them.
//!
//! 10,000 mixed Pods and Deployments (some compliant, some not). Measures:
//!
//! - `native/pss-restricted+guardrails`: a [`PolicySet`] with PSS restricted and every
//!   guardrail, over already-parsed objects;
//! - `parse/serde_json`: `serde_json::from_slice::<Object>` of each object's JSON — the
//!   same `Object` type the engine takes, so the baseline is what any caller pays to get
//!   an object to check.
//!
//! Criterion reports both per element (throughput); before that, a short warm measurement
//! prints the per-object figures and their ratio.
//!
//! Run with `cargo bench -p idp-policy --bench policy`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::manual_is_multiple_of,
    clippy::range_plus_one,
    missing_docs
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use idp_core::{Object, Policy, PolicyContext};
use idp_policy::{PolicyOptions, PolicySet, guardrails, pss::PodSecurity};
use serde_json::{Value, json};

const OBJECTS: usize = 10_000;

fn container(i: usize, j: usize) -> Value {
    let compliant = i % 3 != 0;
    let mut c = json!({
        "name": format!("c{j}"),
        "image": if i % 7 == 0 { "nginx:latest".to_owned() } else { format!("ghcr.io/acme/svc{}:1.{j}", i % 50) },
        "ports": [{"containerPort": if i % 11 == 0 { 22 } else { 8080 + j }}],
        "env": [{"name": "MODE", "value": "prod"}, {"name": "LOG", "value": "info"}],
    });
    if compliant {
        c["securityContext"] = json!({"allowPrivilegeEscalation": false, "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}});
        c["resources"] = json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}});
        c["livenessProbe"] = json!({"httpGet": {"path": "/healthz", "port": 8080}});
        c["readinessProbe"] = json!({"httpGet": {"path": "/ready", "port": 8080}});
    } else {
        c["securityContext"] =
            json!({"privileged": i % 2 == 0, "capabilities": {"add": ["NET_ADMIN"]}});
    }
    c
}

fn object(i: usize) -> Value {
    let containers: Vec<Value> = (0..1 + i % 3).map(|j| container(i, j)).collect();
    let pod_spec = json!({"containers": containers, "volumes": [{"name": "cfg", "configMap": {"name": "cfg"}}]});
    let labels =
        json!({"app.kubernetes.io/name": format!("svc{}", i % 50), "idp.dev/owner": "team-a"});
    if i % 2 == 0 {
        json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("pod-{i}"), "namespace": "shop", "labels": labels}, "spec": pod_spec})
    } else {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": format!("deploy-{i}"), "namespace": "shop", "labels": labels},
            "spec": {"replicas": 1 + i % 3, "selector": {"matchLabels": {"app": "x"}},
                "template": {"metadata": {"labels": labels}, "spec": pod_spec}}})
    }
}

fn policy_set() -> PolicySet {
    let mut set = PolicySet::new().with_policy(PodSecurity::restricted());
    for g in guardrails::all() {
        set.push(g, PolicyOptions::default());
    }
    set.push(
        std::sync::Arc::new(guardrails::AllowedRegistries::new(["ghcr.io/acme"])),
        PolicyOptions::default(),
    );
    set
}

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
    let values: Vec<Value> = (0..OBJECTS).map(object).collect();
    let docs: Vec<Vec<u8>> = values
        .iter()
        .map(|v| serde_json::to_vec(v).unwrap())
        .collect();
    let objects: Vec<Object> = values
        .into_iter()
        .map(|v| Object::from_value(v).unwrap())
        .collect();
    let set = policy_set();
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
