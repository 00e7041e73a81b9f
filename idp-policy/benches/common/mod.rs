//! The objects both benches check: 10,000 mixed Pods and Deployments.
//!
//! Object `i` has `1 + i % 3` containers, each with an image, a port and two env
//! variables. Two in three objects are compliant with PSS restricted and every
//! guardrail (hardened `securityContext`, requests and limits, probes); the others are
//! not: privileged (every other one), an added capability, no resources, no probes.
//! Every 7th object uses `nginx:latest`, every 11th exposes port 22. Deployments carry
//! 1 to 3 replicas. [`Mix`] picks that corpus or one where every object is of one
//! sort.
#![allow(
    dead_code,
    clippy::cast_precision_loss,
    clippy::unwrap_used,
    clippy::manual_is_multiple_of,
    clippy::range_plus_one
)]

use idp_core::Object;
use idp_policy::{PolicySet, guardrails, pss::PodSecurity};
use serde_json::{Value, json};

pub const OBJECTS: usize = 10_000;

/// The privileged, cpu/memory-limits and sensitive-port rules as conftest `deny` rules
/// (package `bench`): the Rego side of the comparison.
pub const RULES: &str = r#"package bench

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

/// Which objects are compliant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Two in three (the acceptance corpus).
    Mixed,
    /// Every object (the passing path).
    Compliant,
    /// None.
    Violating,
}

fn container(i: usize, j: usize, compliant: bool) -> Value {
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

/// Object `i` as JSON.
pub fn object(i: usize, mix: Mix) -> Value {
    let compliant = match mix {
        Mix::Mixed => i % 3 != 0,
        Mix::Compliant => true,
        Mix::Violating => false,
    };
    let containers: Vec<Value> = (0..1 + i % 3).map(|j| container(i, j, compliant)).collect();
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

/// The objects as JSON bytes and as [`Object`]s parsed from those bytes, one after the
/// other (as a tool reading manifests lays them out in memory).
pub fn corpus(mix: Mix) -> (Vec<Vec<u8>>, Vec<Object>) {
    let docs: Vec<Vec<u8>> = (0..OBJECTS)
        .map(|i| serde_json::to_vec(&object(i, mix)).unwrap())
        .collect();
    let objects = docs
        .iter()
        .map(|d| serde_json::from_slice(d).unwrap())
        .collect();
    (docs, objects)
}

/// Nanoseconds this thread has spent on a CPU (`clock_gettime` with
/// `CLOCK_THREAD_CPUTIME_ID` where the platform has it); `None` elsewhere.
pub fn cpu_ns() -> Option<u64> {
    let t = cpu_time::ThreadTime::try_now().ok()?;
    u64::try_from(t.as_duration().as_nanos()).ok()
}

/// Median over `rounds` passes of `f`, divided by `per`: nanoseconds per object.
///
/// The time is this thread's CPU time where the platform reports it, so that other
/// processes sharing the machine do not inflate the figures (they still share its
/// caches); wall time elsewhere.
pub fn ns_per(rounds: usize, per: usize, mut f: impl FnMut()) -> f64 {
    f(); // warm up
    let mut times: Vec<f64> = (0..rounds)
        .map(|_| {
            let cpu = cpu_ns();
            let start = std::time::Instant::now();
            f();
            let wall = start.elapsed().as_nanos() as f64;
            let ns = match (cpu, cpu_ns()) {
                (Some(a), Some(b)) => (b - a) as f64,
                _ => wall,
            };
            ns / per as f64
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[rounds / 2]
}

/// What [`ns_per`] measures, for the printed figures.
pub fn clock() -> &'static str {
    if cpu_ns().is_some() {
        "thread CPU time (clock_gettime CLOCK_THREAD_CPUTIME_ID)"
    } else {
        "wall time"
    }
}

/// Nanoseconds the clock itself adds to a timed section: the median of many empty
/// timings.
fn clock_overhead() -> f64 {
    let mut t: Vec<u128> = (0..1001)
        .map(|_| {
            let start = std::time::Instant::now();
            std::hint::black_box(());
            start.elapsed().as_nanos()
        })
        .collect();
    t.sort_unstable();
    t[t.len() / 2] as f64
}

/// Objects checked as they arrive: each document is parsed into an [`Object`] and
/// handed at once to `check`, and only the check is timed, with the clock's own cost
/// subtracted. Returns the median over `rounds` passes of nanoseconds per object, as
/// timed here (`.0`) and as `check` reports it when it times itself (`.1`: `check`
/// returns its own nanoseconds, or anything when only `.0` is wanted).
pub fn just_parsed(
    rounds: usize,
    docs: &[Vec<u8>],
    mut check: impl FnMut(&Object) -> usize,
) -> (f64, f64) {
    let overhead = clock_overhead();
    let mut pass = || {
        let (mut timed, mut own) = (0.0, 0.0);
        for d in docs {
            let object: Object = serde_json::from_slice(d).unwrap();
            let start = std::time::Instant::now();
            let reported = check(&object);
            timed += (start.elapsed().as_nanos() as f64 - overhead).max(0.0);
            own += reported as f64;
            drop(object);
        }
        (timed / docs.len() as f64, own / docs.len() as f64)
    };
    pass(); // warm up
    let mut passes: Vec<(f64, f64)> = (0..rounds).map(|_| pass()).collect();
    passes.sort_by(|a, b| a.0.total_cmp(&b.0));
    let timed = passes[rounds / 2].0;
    passes.sort_by(|a, b| a.1.total_cmp(&b.1));
    (timed, passes[rounds / 2].1)
}

/// PSS restricted and every guardrail, plus a registry allowlist (empty by default).
pub fn native() -> PolicySet {
    // Built from the concrete types (`with_policy`), which the set recognises as
    // built-ins; `PolicySet::add_builtin` with `BuiltinPolicy::guardrails()` gives the
    // same set.
    PolicySet::new()
        .with_policy(PodSecurity::restricted())
        .with_policy(guardrails::RequireResources::default())
        .with_policy(guardrails::ForbidSensitivePorts::default())
        .with_policy(guardrails::AllowedRegistries::default())
        .with_policy(guardrails::DisallowLatestTag::default())
        .with_policy(guardrails::RequireLabels::default())
        .with_policy(guardrails::RestrictServiceTypes::default())
        .with_policy(guardrails::RequireIngressTls::default())
        .with_policy(guardrails::RequireProbes::default())
        .with_policy(guardrails::MinReplicas::default())
        .with_policy(guardrails::AllowedRegistries::new(["ghcr.io/acme"]))
}

/// The native counterpart of the three Rego rules, rule for rule: PSS baseline (whose
/// `privileged` check is the Rego `privileged` rule; baseline has ten more checks),
/// cpu/memory limits (no requests) and sensitive container ports.
pub fn native_three_rules() -> PolicySet {
    PolicySet::new()
        .with_policy(PodSecurity::baseline())
        .with_policy(guardrails::RequireResources {
            requests: false,
            ..Default::default()
        })
        .with_policy(guardrails::ForbidSensitivePorts::default())
}

/// The floor: one built-in policy that walks every container (the view every native
/// check reads) and asks for nothing, so it finds nothing.
pub fn walk_only() -> PolicySet {
    PolicySet::new().with_policy(guardrails::RequireProbes {
        liveness: false,
        readiness: false,
        startup: false,
        batch: true,
    })
}

/// An object of the corpus as typed k8s-openapi structs, for the typed floor.
pub enum Typed {
    Pod(k8s_openapi::api::core::v1::Pod),
    Deployment(k8s_openapi::api::apps::v1::Deployment),
}

/// The corpus parsed into typed structs, one after the other.
pub fn typed_corpus(docs: &[Vec<u8>]) -> Vec<Typed> {
    docs.iter()
        .map(|d| {
            let kind: Value = serde_json::from_slice(d).unwrap();
            if kind["kind"] == "Pod" {
                Typed::Pod(serde_json::from_slice(d).unwrap())
            } else {
                Typed::Deployment(serde_json::from_slice(d).unwrap())
            }
        })
        .collect()
}

/// The privileged, cpu/memory-limits and sensitive-port rules written by hand over
/// typed structs: no lookup by key, no autogen, no match or exception, no report; only
/// the violations, with messages and paths as the native policies give them. What the
/// three Rego rules cost at the least, in Rust, on objects parsed into structs.
pub fn typed_three_rules(object: &Typed) -> Vec<idp_core::Violation> {
    use idp_core::Violation;
    const SENSITIVE: [i32; 11] = [
        22, 23, 2375, 2376, 3389, 5900, 6443, 10250, 10255, 2379, 2380,
    ];
    let (spec, prefix) = match object {
        Typed::Pod(p) => (p.spec.as_ref(), "spec"),
        Typed::Deployment(d) => (d.spec.template.spec.as_ref(), "spec.template.spec"),
    };
    let mut out = Vec::new();
    let Some(spec) = spec else { return out };
    let lists = [
        ("containers", spec.containers.as_slice()),
        (
            "initContainers",
            spec.init_containers.as_deref().unwrap_or_default(),
        ),
    ];
    for (list, containers) in lists {
        for (i, c) in containers.iter().enumerate() {
            if c.security_context
                .as_ref()
                .and_then(|s| s.privileged)
                .unwrap_or(false)
            {
                out.push(
                    Violation::new("pss", "privileged", format!("privileged (container \"{}\" must not set securityContext.privileged=true)", c.name))
                        .with_path(format!("{prefix}.{list}[{i}].securityContext.privileged")),
                );
            }
            let limits = c.resources.as_ref().and_then(|r| r.limits.as_ref());
            for resource in ["cpu", "memory"] {
                if !limits.is_some_and(|l| l.contains_key(resource)) {
                    out.push(
                        Violation::new(
                            "resources",
                            "limits",
                            format!("container \"{}\" has no {resource} limit", c.name),
                        )
                        .with_path(format!("{prefix}.{list}[{i}].resources.limits.{resource}")),
                    );
                }
            }
            for (j, p) in c.ports.as_deref().unwrap_or_default().iter().enumerate() {
                if SENSITIVE.contains(&p.container_port) {
                    out.push(
                        Violation::new(
                            "ports",
                            "container-port",
                            format!(
                                "container \"{}\" exposes sensitive port {}",
                                c.name, p.container_port
                            ),
                        )
                        .with_path(format!("{prefix}.{list}[{i}].ports[{j}].containerPort")),
                    );
                }
            }
        }
    }
    out
}
