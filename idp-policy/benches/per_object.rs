//! One configuration of the native-versus-Rego comparison, run over a few objects many
//! times: the harness for counting instructions per object, which other processes on
//! the machine cannot disturb (unlike times).
//!
//! `IDP_POLICY_BENCH` picks what runs per object: `native` (PSS restricted, every
//! guardrail and a registry allowlist, as in `native_vs_rego`), `walk` (the floor: one
//! built-in policy that walks every container and finds nothing), `three` (the three
//! Rego rules done natively: PSS baseline, limits, sensitive ports), `rego` (the bare
//! regorus engine with the three rules, inputs converted beforehand) or `rego-policy`
//! (`RegoPolicy::evaluate` with the three rules: each object converted to a regorus
//! value, then the engine, as `idpctl policy check --policy` runs it). `MIX` is `mixed`
//! (default), `compliant` or `violating`; `OBJECTS` (default 100) objects are checked
//! `ROUNDS` (default 1,000) times, so they stay in the caches. It prints thread CPU
//! time per object; for instructions, run it under cachegrind twice and divide the
//! difference by `ROUNDS × OBJECTS`:
//!
//! ```text
//! cargo bench -p idp-policy --features rego --bench per_object --no-run
//! B=$(ls -t target/release/deps/per_object-* | grep -v '\.d$' | head -1)
//! for r in 0 50; do IDP_POLICY_BENCH=native ROUNDS=$r valgrind --tool=cachegrind \
//!   --cache-sim=no --cachegrind-out-file=/dev/null $B 2>&1 | grep 'I *refs'; done
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::hint::black_box;

use common::{Mix, RULES, cpu_ns, native, native_three_rules, walk_only};
use idp_core::{Object, Policy, PolicyContext};

fn var(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let what = std::env::var("IDP_POLICY_BENCH").unwrap_or_else(|_| "native".to_owned());
    let mix = match std::env::var("MIX").as_deref() {
        Ok("compliant") => Mix::Compliant,
        Ok("violating") => Mix::Violating,
        _ => Mix::Mixed,
    };
    let (count, rounds) = (var("OBJECTS", 100), var("ROUNDS", 1_000));
    let objects: Vec<Object> = (0..count)
        .map(|i| Object::from_value(common::object(i, mix)).unwrap())
        .collect();
    let ctx = PolicyContext::new().with_environment("prod".parse().unwrap());
    let start = cpu_ns();
    let wall = std::time::Instant::now();
    if what == "rego" {
        let mut engine = regorus::Engine::new();
        engine
            .add_policy("bench.rego".to_owned(), RULES.to_owned())
            .unwrap();
        let inputs: Vec<regorus::Value> = objects
            .iter()
            .map(|o| regorus::Value::from(o.to_value()))
            .collect();
        for _ in 0..rounds {
            for input in &inputs {
                engine.set_input(input.clone());
                black_box(engine.eval_rule("data.bench.deny".to_owned()).unwrap());
            }
        }
    } else if what == "rego-policy" {
        // What `idpctl policy check --policy bench.rego` runs per object: the object
        // converted to a regorus value, then the engine.
        let rego = idp_policy::rego::RegoPolicy::new("bench")
            .with_module("bench.rego", RULES)
            .unwrap();
        for _ in 0..rounds {
            for o in &objects {
                black_box(rego.evaluate(o, &ctx));
            }
        }
    } else {
        let set = match what.as_str() {
            "walk" => walk_only(),
            "three" => native_three_rules(),
            _ => native(),
        };
        for _ in 0..rounds {
            for o in &objects {
                black_box(set.evaluate(o, &ctx));
            }
        }
    }
    let ns = match (start, cpu_ns()) {
        (Some(a), Some(b)) => (b - a) as f64,
        _ => wall.elapsed().as_nanos() as f64,
    };
    let per = (rounds * count).max(1) as f64;
    println!(
        "{what} {mix:?}: {count} objects x {rounds} rounds: {:.0} ns/object (CPU time)",
        ns / per
    );
}
