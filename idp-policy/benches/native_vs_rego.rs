//! Native policies versus the same rules in Rego evaluated by regorus.
//!
//! 10,000 Pods and Deployments, generated deterministically (a fixed-seed linear
//! congruential generator decides kind, container count, privileged flags, missing
//! limits and ports). Three rules: privileged containers, missing cpu/memory limits,
//! sensitive ports.
//!
//! - `native`: a [`PolicySet`] with PSS baseline (which includes the privileged check,
//!   and does more: host namespaces, capabilities, volumes, ...),
//!   [`guardrails::RequireResources`] and [`guardrails::ForbidSensitivePorts`];
//! - `rego/policy`: one [`RegoPolicy`] with the three rules as `deny` — the engine is
//!   compiled once and reused, the input is set per object (this includes converting the
//!   object to a regorus value, as any caller must);
//! - `rego/engine`: the bare regorus engine with inputs converted ahead of time, the most
//!   favourable setting for Rego.
//!
//! Before criterion runs, a warm pass prints the per-object cost of each and the ratio
//! (target: native at least 50× faster). Run with
//! `cargo bench -p idp-policy --features rego --bench native_vs_rego`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use idp_core::{Object, Policy, PolicyContext};
use idp_policy::rego::RegoPolicy;
use idp_policy::{PolicySet, guardrails, pss::PodSecurity};
use serde_json::{Value, json};

const OBJECTS: usize = 10_000;

const RULES: &str = r#"package bench

sensitive_ports := {22, 23, 2375, 2376, 3389, 5900, 6443, 10250, 10255, 2379, 2380}

pod_spec := input.spec if input.kind == "Pod"

pod_spec := input.spec.template.spec if input.kind == "Deployment"

containers contains c if {
	some c in pod_spec.containers
}

containers contains c if {
	some c in pod_spec.initContainers
}

deny contains msg if {
	some c in containers
	c.securityContext.privileged == true
	msg := sprintf("privileged (container %q must not set securityContext.privileged=true)", [c.name])
}

deny contains msg if {
	some c in containers
	some resource in ["cpu", "memory"]
	not c.resources.limits[resource]
	msg := sprintf("container %q has no %s limit", [c.name, resource])
}

deny contains msg if {
	some c in containers
	some p in c.ports
	p.containerPort in sensitive_ports
	msg := sprintf("container %q exposes sensitive port %d", [c.name, p.containerPort])
}
"#;

/// A fixed-seed linear congruential generator: the same objects on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

fn container(rng: &mut Lcg, j: u64) -> Value {
    let mut c = json!({
        "name": format!("c{j}"),
        "image": format!("ghcr.io/acme/svc{}:1.{}", rng.next(40), rng.next(9)),
        "ports": [{"containerPort": if rng.next(10) == 0 { 22 } else { 8080 + j }}],
        "env": [{"name": "MODE", "value": "prod"}],
    });
    match rng.next(4) {
        0 => c["securityContext"] = json!({"privileged": true}),
        1 => c["securityContext"] = json!({"privileged": false, "runAsNonRoot": true}),
        _ => {}
    }
    c["resources"] = match rng.next(3) {
        0 => json!({"requests": {"cpu": "100m"}}),
        1 => json!({"limits": {"memory": "256Mi"}}),
        _ => {
            json!({"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "256Mi"}})
        }
    };
    c
}

fn objects() -> Vec<Object> {
    let mut rng = Lcg(0x1d_5eed);
    (0..OBJECTS)
        .map(|i| {
            let count = rng.next(3);
            let containers: Vec<Value> = (0..=count).map(|j| container(&mut rng, j)).collect();
            let spec = json!({"containers": containers});
            let meta = json!({"name": format!("obj-{i}"), "namespace": "shop", "labels": {"app": "x"}});
            let value = if rng.next(2) == 0 {
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
            } else {
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                    "spec": {"replicas": 2, "template": {"metadata": {"labels": {"app": "x"}}, "spec": spec}}})
            };
            Object::from_value(value).unwrap()
        })
        .collect()
}

fn native() -> PolicySet {
    PolicySet::new()
        .with_policy(PodSecurity::baseline())
        .with_policy(guardrails::RequireResources::default())
        .with_policy(guardrails::ForbidSensitivePorts::default())
}

fn rego_policy() -> RegoPolicy {
    RegoPolicy::new("bench")
        .with_module("bench.rego", RULES)
        .unwrap()
}

fn rego_engine() -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    engine
        .add_policy("bench.rego".to_owned(), RULES.to_owned())
        .unwrap();
    engine
}

fn per_object(mut f: impl FnMut()) -> Duration {
    f(); // warm up
    let start = Instant::now();
    f();
    start.elapsed() / OBJECTS as u32
}

fn bench(c: &mut Criterion) {
    let objects = objects();
    let inputs: Vec<regorus::Value> = objects
        .iter()
        .map(|o| regorus::Value::from(o.to_value()))
        .collect();
    let ctx = PolicyContext::new();
    let native = native();
    let rego = rego_policy();
    let mut engine = rego_engine();

    // The two sides find the same problems (counted per object: denied or not).
    let native_denied = objects
        .iter()
        .filter(|o| !native.check_object(o, &ctx).allowed)
        .count();
    let rego_denied = objects
        .iter()
        .filter(|o| !rego.evaluate(o, &ctx).is_empty())
        .count();
    println!("denied objects: native {native_denied}, rego {rego_denied} (of {OBJECTS})");

    let native_cost = per_object(|| {
        for o in &objects {
            black_box(native.evaluate(o, &ctx));
        }
    });
    let rego_cost = per_object(|| {
        for o in &objects {
            black_box(rego.evaluate(o, &ctx));
        }
    });
    let engine_cost = per_object(|| {
        for input in &inputs {
            engine.set_input(input.clone());
            black_box(engine.eval_rule("data.bench.deny".to_owned()).unwrap());
        }
    });
    println!(
        "per object: native {native_cost:?}, rego (RegoPolicy) {rego_cost:?}, rego (bare engine, inputs pre-converted) {engine_cost:?}"
    );
    println!(
        "native is {:.0}x faster than RegoPolicy and {:.0}x faster than the bare engine (target: >= 50x)",
        rego_cost.as_secs_f64() / native_cost.as_secs_f64(),
        engine_cost.as_secs_f64() / native_cost.as_secs_f64()
    );

    let mut group = c.benchmark_group("native_vs_rego");
    group.throughput(Throughput::Elements(OBJECTS as u64));
    group.sample_size(10);
    group.bench_function("native", |b| {
        b.iter(|| {
            for o in &objects {
                black_box(native.evaluate(o, &ctx));
            }
        });
    });
    group.bench_function("rego/policy", |b| {
        b.iter(|| {
            for o in &objects {
                black_box(rego.evaluate(o, &ctx));
            }
        });
    });
    group.bench_function("rego/engine", |b| {
        b.iter(|| {
            for input in &inputs {
                engine.set_input(input.clone());
                black_box(engine.eval_rule("data.bench.deny".to_owned()).unwrap());
            }
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
