//! The acceptance bench of the native policies: parse versus native check versus Rego.
//!
//! Over 10,000 mixed Pods and Deployments (see `common/mod.rs`: two in three compliant,
//! the others privileged, without resources or probes, some with port 22), per object:
//!
//! - `parse`: `serde_json::from_slice` of the object's JSON bytes, into a
//!   `serde_json::Value` and into the [`Object`] the policies take;
//! - `native`: [`Policy::evaluate`] of a [`PolicySet`] holding PSS restricted (latest),
//!   every guardrail with its defaults and a registry allowlist, in the `prod`
//!   environment;
//! - `rego/policy`: a [`RegoPolicy`] with the privileged, cpu/memory-limits and
//!   sensitive-port rules as conftest `deny` rules, compiled once, evaluated per object
//!   (including the conversion of the object to a regorus value, as any caller pays);
//! - `rego/engine`: the bare regorus engine (its interpreter) with every input converted
//!   beforehand;
//! - `rego/rvm`: the same rules compiled to regorus' Rego VM (`Compiler::compile_from_policy`,
//!   `RegoVM`), inputs converted beforehand: the most favourable setting for Rego, about
//!   twice as fast as the interpreter.
//!
//! Each is measured in two settings:
//!
//! - **a batch**: the 10,000 objects parsed beforehand, then checked one after the
//!   other. They take ~250 MB as `serde_json` trees, far more than the caches, so each
//!   check starts with cache misses on its object (as when a large manifest set is
//!   loaded first and checked after);
//! - **just parsed**: each object is parsed and then checked at once, as in an
//!   admission review or `idpctl policy check` reading a file; only the check is timed
//!   (a clock read around it, the clock's own cost subtracted).
//!
//! Before criterion runs, a warm measurement (median of several passes) prints
//! nanoseconds per object, the ratios and PASS/FAIL against the targets of the policy
//! issue: native below 1× the parse cost (against the cheaper of the two parses) and
//! Rego at least 50× native (against the fastest Rego setting). It also
//! prints a floor: a set whose one built-in policy reads every container and finds
//! nothing, i.e. the cost of walking the object's fields that any native check must
//! read. A second floor checks the three Rego rules alone, written by hand over the
//! objects parsed into typed k8s-openapi structs (no lookup by key, no matching, no
//! report): what those rules cost at the least in Rust. The same figures follow for a corpus where every object passes and one where
//! every object violates, and each line also gives Rego against the three rules alone
//! done natively (PSS baseline, limits, sensitive ports), rule for rule. Run with
//! `cargo bench -p idp-policy --features rego --bench native_vs_rego`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::hint::black_box;
use std::sync::Arc;

use common::{
    Mix, OBJECTS, RULES, clock, corpus, just_parsed, native, native_three_rules, ns_per,
    typed_corpus, typed_three_rules, walk_only,
};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use idp_core::{Object, Policy, PolicyContext};
use idp_policy::rego::RegoPolicy;
use idp_policy::{PolicyOptions, PolicySet, guardrails, pss::PodSecurity};
use serde_json::Value;

/// The same policies as [`native`](common::native), pushed as `Arc<dyn Policy>`: the set cannot tell
/// they are built-ins, so each reads the object on its own.
fn native_trait_objects() -> PolicySet {
    let mut set = PolicySet::new();
    let mut policies: Vec<Arc<dyn Policy>> = vec![Arc::new(PodSecurity::restricted())];
    policies.extend(guardrails::all());
    policies.push(Arc::new(guardrails::AllowedRegistries::new([
        "ghcr.io/acme",
    ])));
    for p in policies {
        set.push(p, PolicyOptions::default());
    }
    set
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

/// The three rules compiled to regorus' Rego VM, ready to execute.
fn rego_vm() -> regorus::rvm::vm::RegoVM {
    let mut engine = rego_engine();
    let entry: regorus::Rc<str> = "data.bench.deny".into();
    let compiled = engine.compile_with_entrypoint(&entry).unwrap();
    let program = regorus::languages::rego::compiler::Compiler::compile_from_policy(
        &compiled,
        &["data.bench.deny"],
    )
    .unwrap();
    let mut vm = regorus::rvm::vm::RegoVM::new();
    vm.load_program(program);
    vm
}

fn verdict(pass: bool) -> &'static str {
    if pass { "PASS" } else { "FAIL" }
}

/// Measure and print one corpus; returns whether both targets are met.
fn report(label: &str, mix: Mix, ctx: &PolicyContext) -> bool {
    const ROUNDS: usize = 11;
    let (docs, objects) = corpus(mix);
    let set = native();
    let three_rules = native_three_rules();
    let trait_objects = native_trait_objects();
    let rego = rego_policy();
    let mut engine = rego_engine();
    let mut vm = rego_vm();
    let inputs: Vec<regorus::Value> = objects
        .iter()
        .map(|o| regorus::Value::from(o.to_value()))
        .collect();

    // The two sides find the same problems: objects with a privileged container, a
    // missing cpu/memory limit or a sensitive container port.
    let three = ["privileged", "limits", "container-port"];
    let native_denied = objects
        .iter()
        .filter(|o| {
            set.evaluate(o, ctx)
                .iter()
                .any(|v| three.contains(&v.rule.as_ref()))
        })
        .count();
    let three_denied = objects
        .iter()
        .filter(|o| {
            three_rules
                .evaluate(o, ctx)
                .iter()
                .any(|v| three.contains(&v.rule.as_ref()))
        })
        .count();
    assert_eq!(native_denied, three_denied);
    let rego_denied = objects
        .iter()
        .filter(|o| !rego.evaluate(o, ctx).is_empty())
        .count();
    let violations: usize = objects.iter().map(|o| set.evaluate(o, ctx).len()).sum();
    let denied = objects
        .iter()
        .filter(|o| !set.check_object(o, ctx).allowed)
        .count();
    assert_eq!(native_denied, rego_denied, "native and Rego disagree");
    let rvm_denied = inputs
        .iter()
        .filter(|input| {
            vm.set_input((*input).clone());
            vm.execute().unwrap().as_set().is_ok_and(|s| !s.is_empty())
        })
        .count();
    assert_eq!(
        rvm_denied, rego_denied,
        "the Rego VM and the interpreter disagree"
    );
    let bytes: usize = docs.iter().map(Vec::len).sum();

    let parse_value = ns_per(ROUNDS, OBJECTS, || {
        for d in &docs {
            black_box(serde_json::from_slice::<Value>(d).unwrap());
        }
    });
    let parse_object = ns_per(ROUNDS, OBJECTS, || {
        for d in &docs {
            black_box(serde_json::from_slice::<Object>(d).unwrap());
        }
    });
    let native_ns = ns_per(ROUNDS, OBJECTS, || {
        for o in &objects {
            black_box(set.evaluate(o, ctx));
        }
    });
    let trait_objects_ns = ns_per(ROUNDS, OBJECTS, || {
        for o in &objects {
            black_box(trait_objects.evaluate(o, ctx));
        }
    });
    let three_ns = ns_per(ROUNDS, OBJECTS, || {
        for o in &objects {
            black_box(three_rules.evaluate(o, ctx));
        }
    });
    let check_object_ns = ns_per(ROUNDS, OBJECTS, || {
        for o in &objects {
            black_box(set.check_object(o, ctx));
        }
    });
    let rego_ns = ns_per(3, OBJECTS, || {
        for o in &objects {
            black_box(rego.evaluate(o, ctx));
        }
    });
    let engine_ns = ns_per(3, OBJECTS, || {
        for input in &inputs {
            engine.set_input(input.clone());
            black_box(engine.eval_rule("data.bench.deny".to_owned()).unwrap());
        }
    });

    let rvm_ns = ns_per(3, OBJECTS, || {
        for input in &inputs {
            vm.set_input(input.clone());
            black_box(vm.execute().unwrap());
        }
    });

    let walk = walk_only();
    let walk_ns = ns_per(ROUNDS, OBJECTS, || {
        for o in &objects {
            black_box(walk.evaluate(o, ctx));
        }
    });

    // The typed floor: the three rules by hand over k8s-openapi structs.
    let typed = typed_corpus(&docs);
    let typed_violations: usize = typed.iter().map(|o| typed_three_rules(o).len()).sum();
    let typed_denied = typed
        .iter()
        .filter(|o| !typed_three_rules(o).is_empty())
        .count();
    assert_eq!(typed_denied, rego_denied, "typed and Rego disagree");
    let typed_ns = ns_per(ROUNDS, OBJECTS, || {
        for o in &typed {
            black_box(typed_three_rules(o));
        }
    });
    drop(typed);

    // Just parsed: parse each object, then time only its check.
    let fresh_native = just_parsed(ROUNDS, &docs, |o| black_box(set.evaluate(o, ctx)).len());
    let fresh_three = just_parsed(ROUNDS, &docs, |o| {
        black_box(three_rules.evaluate(o, ctx)).len()
    });
    let fresh_walk = just_parsed(ROUNDS, &docs, |o| black_box(walk.evaluate(o, ctx)).len());
    let fresh_engine = just_parsed(3, &docs, |o| {
        // The conversion is what a caller pays; the engine's evaluation is timed apart.
        let input = regorus::Value::from(o.to_value());
        let start = std::time::Instant::now();
        engine.set_input(input);
        black_box(engine.eval_rule("data.bench.deny".to_owned()).unwrap());
        start.elapsed().as_nanos() as usize
    });
    let fresh_rvm = just_parsed(3, &docs, |o| {
        let input = regorus::Value::from(o.to_value());
        let start = std::time::Instant::now();
        vm.set_input(input);
        black_box(vm.execute().unwrap());
        start.elapsed().as_nanos() as usize
    });

    let parse = parse_value.min(parse_object);
    let rego_best = rego_ns.min(engine_ns).min(rvm_ns);
    let parse_ratio = native_ns / parse;
    let rego_ratio = rego_best / native_ns;
    let rego_three_ratio = rego_best / three_ns;
    println!(
        "\n== {label}: {OBJECTS} objects, {} bytes of JSON each on average; {denied} denied, \
         {violations} violations in all; {rego_denied} objects break the three Rego rules (native agrees)",
        bytes / OBJECTS
    );
    println!("-- a batch (the objects parsed beforehand, then checked one after the other):");
    println!("parse  serde_json::from_slice -> Value          {parse_value:>10.0} ns/object");
    println!("parse  serde_json::from_slice -> Object         {parse_object:>10.0} ns/object");
    println!(
        "native PSS restricted + all guardrails (evaluate) {native_ns:>9.0} ns/object  ({parse_ratio:.3}x parse)"
    );
    println!(
        "native   the same, check_object (+ object refs)  {check_object_ns:>9.0} ns/object  ({:.3}x parse)",
        check_object_ns / parse
    );
    println!(
        "native   the same pushed as Arc<dyn Policy>     {trait_objects_ns:>10.0} ns/object  ({:.3}x parse)",
        trait_objects_ns / parse
    );
    println!(
        "native the 3 Rego rules natively (baseline, limits, ports) {three_ns:>5.0} ns/object"
    );
    println!(
        "rego   RegoPolicy, 3 rules (input per object)    {rego_ns:>10.0} ns/object  ({:.1}x native, {:.1}x the 3 rules natively)",
        rego_ns / native_ns,
        rego_ns / three_ns
    );
    println!(
        "rego   bare engine, inputs converted beforehand  {engine_ns:>10.0} ns/object  ({:.1}x native, {:.1}x the 3 rules natively)",
        engine_ns / native_ns,
        engine_ns / three_ns
    );
    println!(
        "rego   Rego VM (compiled), inputs converted beforehand {rvm_ns:>5.0} ns/object  ({:.1}x native, {:.1}x the 3 rules natively)",
        rvm_ns / native_ns,
        rvm_ns / three_ns
    );
    println!(
        "floor  walk only (1 built-in, reads every container) {walk_ns:>5.0} ns/object  (Rego bare engine is {:.1}x this, Rego VM {:.1}x)",
        engine_ns / walk_ns,
        rvm_ns / walk_ns
    );
    println!(
        "floor  typed: the 3 rules by hand over k8s-openapi structs {typed_ns:>5.0} ns/object  (Rego bare engine is {:.1}x this, Rego VM {:.1}x; {typed_violations} violations)",
        engine_ns / typed_ns,
        rvm_ns / typed_ns
    );
    println!("-- just parsed (each object parsed, then checked at once; only the check timed):");
    println!(
        "native PSS restricted + all guardrails (evaluate) {:>9.0} ns/object  ({:.3}x parse)",
        fresh_native.0,
        fresh_native.0 / parse
    );
    println!(
        "native the 3 Rego rules natively (baseline, limits, ports) {:>5.0} ns/object",
        fresh_three.0
    );
    println!(
        "floor  walk only (1 built-in, reads every container) {:>5.0} ns/object",
        fresh_walk.0
    );
    println!(
        "rego   bare engine (conversion not timed)        {:>10.0} ns/object  ({:.1}x native, {:.1}x the 3 rules natively, {:.1}x the walk)",
        fresh_engine.1,
        fresh_engine.1 / fresh_native.0,
        fresh_engine.1 / fresh_three.0,
        fresh_engine.1 / fresh_walk.0
    );
    println!(
        "rego   Rego VM (conversion not timed)            {:>10.0} ns/object  ({:.1}x native, {:.1}x the 3 rules natively, {:.1}x the walk)",
        fresh_rvm.1,
        fresh_rvm.1 / fresh_native.0,
        fresh_rvm.1 / fresh_three.0,
        fresh_rvm.1 / fresh_walk.0
    );
    let fresh_parse_ratio = fresh_native.0 / parse;
    let fresh_rego_ratio = fresh_engine.1.min(fresh_rvm.1) / fresh_native.0;
    println!(
        "target native < 1x parse, just parsed:           {fresh_parse_ratio:.3}x  {}",
        verdict(fresh_parse_ratio < 1.0)
    );
    println!(
        "target rego >= 50x native, just parsed:          {fresh_rego_ratio:.1}x  {}",
        verdict(fresh_rego_ratio >= 50.0)
    );
    println!("-- the batch targets:");
    let parse_ok = parse_ratio < 1.0;
    let rego_ok = rego_ratio >= 50.0;
    println!(
        "target native < 1x parse (cheaper parse):        {parse_ratio:.3}x  {}",
        verdict(parse_ok)
    );
    println!(
        "target rego >= 50x native (fastest rego):        {rego_ratio:.1}x  {}",
        verdict(rego_ok)
    );
    println!(
        "  rule for rule (fastest rego / the 3 rules natively): {rego_three_ratio:.1}x  {}",
        verdict(rego_three_ratio >= 50.0)
    );
    parse_ok && rego_ok
}

fn bench(c: &mut Criterion) {
    let ctx = PolicyContext::new().with_environment("prod".parse().unwrap());
    println!("\ntimes: median pass, {}", clock());
    let mixed = report("mixed corpus (the acceptance figures)", Mix::Mixed, &ctx);
    report(
        "every object compliant (the passing path)",
        Mix::Compliant,
        &ctx,
    );
    report("every object violating", Mix::Violating, &ctx);
    println!("\nacceptance (mixed corpus): {}\n", verdict(mixed));

    let (docs, objects) = corpus(Mix::Mixed);
    let set = native();
    let rego = rego_policy();
    let mut group = c.benchmark_group("10k-pods-and-deployments");
    group.throughput(Throughput::Elements(OBJECTS as u64));
    group.sample_size(10);
    group.bench_function("parse/serde_json-value", |b| {
        b.iter(|| {
            for d in &docs {
                black_box(serde_json::from_slice::<Value>(d).unwrap());
            }
        });
    });
    group.bench_function("native/pss-restricted+guardrails", |b| {
        b.iter(|| {
            for o in &objects {
                black_box(set.evaluate(o, &ctx));
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
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
