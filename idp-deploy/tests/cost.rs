//! Cost estimates checked against hand-computed figures, and Kubernetes quantity parsing
//! (unit cases and property tests).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::float_cmp)]

use idp_core::ManifestSet;
use idp_deploy::cost::{CostReport, PriceSheet, estimate, parse_quantity};
use proptest::prelude::*;

const PRICES: &str = "
currency: EUR
cpuHour: 0.04
memoryGibHour: 0.005
gpuHour: {default: 2.0, nvidia-l4: 1.0}
storageGbMonth: 0.1
daemonsetNodes: 4
";

const MANIFESTS: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop, labels: {idp.dev/owner: team-a, idp.dev/environment: prod}}
spec:
  replicas: 3
  template:
    spec:
      initContainers:
      - {name: init, image: i, resources: {requests: {cpu: "2", memory: 128Mi}}}
      containers:
      - {name: c1, image: i, resources: {requests: {cpu: 500m, memory: 1Gi}}}
      - {name: c2, image: i, resources: {requests: {cpu: 250m}, limits: {memory: 512Mi}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker, namespace: shop, labels: {team: team-b}}
spec:
  template:
    metadata: {labels: {idp.dev/environment: staging}}
    spec:
      nodeSelector: {cloud.google.com/gke-accelerator: nvidia-l4}
      containers:
      - {name: w, image: i, resources: {requests: {cpu: "1"}, limits: {nvidia.com/gpu: 1}}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: worker, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: worker}
  minReplicas: 2
  maxReplicas: 10
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop, labels: {idp.dev/owner: team-a, idp.dev/environment: prod}}
spec:
  replicas: 2
  template:
    spec:
      containers:
      - {name: pg, image: postgres, resources: {requests: {cpu: "1", memory: 4Gi}}}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec: {resources: {requests: {storage: 50Gi}}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent, namespace: kube-system}
spec:
  template:
    spec:
      containers:
      - {name: a, image: i, resources: {requests: {cpu: 100m, memory: 200Mi}}}
---
apiVersion: batch/v1
kind: Job
metadata: {name: migrate, namespace: shop, labels: {idp.dev/owner: team-a, idp.dev/environment: prod}}
spec:
  parallelism: 2
  template:
    spec:
      containers:
      - {name: m, image: i, resources: {requests: {cpu: 500m}}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {name: report, namespace: shop, labels: {idp.dev/owner: team-b, idp.dev/environment: prod}}
spec:
  schedule: "0 * * * *"
  jobTemplate:
    spec:
      template:
        spec:
          containers:
          - {name: r, image: i, resources: {limits: {cpu: "1.5", memory: 512Mi}}}
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: uploads, namespace: shop, labels: {idp.dev/owner: team-a, idp.dev/environment: prod}}
spec: {resources: {requests: {storage: 20Gi}}}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec: {ports: [{port: 80}]}
"#;

fn report() -> CostReport {
    let set = ManifestSet::parse(MANIFESTS.as_bytes(), None).unwrap();
    estimate(&set, &PriceSheet::from_yaml(PRICES, None).unwrap()).unwrap()
}

fn close(actual: f64, expected: f64) -> bool {
    (actual - expected).abs() <= 1e-9 * expected.abs().max(1.0)
}

macro_rules! assert_close {
    ($actual:expr, $expected:expr) => {{
        let (a, e) = ($actual, $expected);
        assert!(close(a, e), "{} = {a}, expected {e}", stringify!($actual));
    }};
}

#[test]
fn every_object_is_priced_by_hand() {
    let r = report();
    assert_eq!(r.currency, "EUR");
    assert_eq!(r.hours_per_month, 730.0);
    let names: Vec<&str> = r.lines.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "api", "worker", "db", "agent", "migrate", "report", "uploads"
        ],
        "Services and HPAs cost nothing and get no line"
    );
    let line = |name: &str| r.lines.iter().find(|l| l.name == name).unwrap();

    // api: 3 replicas. Containers: cpu 0.5 + 0.25 = 0.75, memory 1 GiB + 0.5 GiB (c2's
    // limit, no request) = 1.5 GiB. The init container asks cpu 2 > 0.75, so the pod
    // needs 2 cores; its 128Mi < 1.5 GiB.
    let api = line("api");
    assert_eq!(api.replicas, 3.0);
    assert_close!(api.cpu_cores, 2.0);
    assert_close!(api.memory_gib, 1.5);
    assert_close!(api.cpu_cost, 3.0 * 2.0 * 0.04 * 730.0); // 175.2
    assert_close!(api.memory_cost, 3.0 * 1.5 * 0.005 * 730.0); // 16.425
    assert_close!(api.total, 175.2 + 16.425);
    assert_eq!(
        (api.team.as_str(), api.environment.as_str()),
        ("team-a", "prod")
    );

    // worker: no spec.replicas, the HPA's minReplicas (2) counts. 1 cpu, 1 GPU priced as
    // nvidia-l4 (node selector) at 1.0/h.
    let worker = line("worker");
    assert_eq!(worker.replicas, 2.0);
    assert_close!(worker.cpu_cost, 2.0 * 1.0 * 0.04 * 730.0); // 58.4
    assert_close!(worker.gpus, 1.0);
    assert_eq!(worker.gpu_type.as_deref(), Some("nvidia-l4"));
    assert_close!(worker.gpu_cost, 2.0 * 1.0 * 1.0 * 730.0); // 1460
    assert_close!(worker.total, 58.4 + 1460.0);
    assert_eq!(worker.team, "team-b", "from the `team` label");
    assert_eq!(
        worker.environment, "staging",
        "from the pod template's labels"
    );

    // db: 2 replicas × (1 cpu, 4 GiB) + 2 × 50 GiB of claims.
    let db = line("db");
    assert_close!(db.cpu_cost, 2.0 * 1.0 * 0.04 * 730.0); // 58.4
    assert_close!(db.memory_cost, 2.0 * 4.0 * 0.005 * 730.0); // 29.2
    assert_close!(db.storage_gib, 100.0);
    assert_close!(db.storage_cost, 100.0 * 0.1); // 10
    assert_close!(db.total, 58.4 + 29.2 + 10.0);

    // agent: a DaemonSet on 4 nodes, 0.1 cpu and 200Mi = 200/1024 GiB.
    let agent = line("agent");
    assert_eq!(agent.replicas, 4.0);
    assert_close!(agent.cpu_cost, 4.0 * 0.1 * 0.04 * 730.0); // 11.68
    assert_close!(agent.memory_cost, 4.0 * (200.0 / 1024.0) * 0.005 * 730.0); // 2.8515625
    assert_eq!(agent.team, "unattributed");
    assert_eq!(agent.environment, "none");

    // migrate: a Job with parallelism 2 × 0.5 cpu.
    assert_close!(line("migrate").total, 2.0 * 0.5 * 0.04 * 730.0); // 29.2

    // report: a CronJob, parallelism 1, limits only: 1.5 cpu and 0.5 GiB.
    let rep = line("report");
    assert_eq!(rep.replicas, 1.0);
    assert_close!(rep.total, 1.5 * 0.04 * 730.0 + 0.5 * 0.005 * 730.0); // 43.8 + 1.825

    // uploads: a 20 GiB claim.
    assert_close!(line("uploads").total, 20.0 * 0.1); // 2
}

#[test]
fn totals_per_team_and_environment() {
    let r = report();
    let api = 175.2 + 16.425;
    let worker = 58.4 + 1460.0;
    let db = 58.4 + 29.2 + 10.0;
    let agent = 11.68 + 2.851_562_5;
    let migrate = 29.2;
    let report = 43.8 + 1.825;
    let uploads = 2.0;

    assert_eq!(r.by_team.len(), 3);
    assert_close!(r.by_team["team-a"], api + db + migrate + uploads); // 320.425
    assert_close!(r.by_team["team-b"], worker + report); // 1564.025
    assert_close!(r.by_team["unattributed"], agent); // 14.5315625
    assert_close!(
        r.by_environment["prod"],
        api + db + migrate + uploads + report
    );
    assert_close!(r.by_environment["staging"], worker);
    assert_close!(r.by_environment["none"], agent);
    let pairs: Vec<(&str, &str)> = r
        .by_team_environment
        .iter()
        .map(|p| (p.team.as_str(), p.environment.as_str()))
        .collect();
    assert_eq!(
        pairs,
        [
            ("team-a", "prod"),
            ("team-b", "prod"),
            ("team-b", "staging"),
            ("unattributed", "none")
        ]
    );
    assert_close!(r.by_team_environment[1].monthly, report);
    assert_close!(
        r.total,
        api + worker + db + agent + migrate + report + uploads
    ); // 1898.9815625
    let json = serde_json::to_value(&r).unwrap();
    assert_eq!(json["lines"][1]["gpuType"], "nvidia-l4");
    assert!(json["byTeam"]["team-a"].is_number());
}

#[test]
fn bad_quantities_and_price_sheets_are_reported() {
    let set = ManifestSet::parse(
        b"apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, namespace: ns}\nspec:\n  template:\n    spec:\n      containers: [{name: c, image: i, resources: {limits: {memory: 5GB}}}]\n",
        Some("app.yaml".as_ref()),
    )
    .unwrap();
    let err = estimate(&set, &PriceSheet::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("Deployment ns/a (app.yaml:1 (document 0))"),
        "{err}"
    );
    assert!(
        err.contains("spec.template.spec.containers[0].resources.limits.memory"),
        "{err}"
    );
    assert!(err.contains("`5GB` is not a Kubernetes quantity"), "{err}");

    let err = PriceSheet::from_yaml("cpuHour: -1\n", None)
        .unwrap_err()
        .to_string();
    assert!(err.contains("cpuHour"), "{err}");
    let err = PriceSheet::from_yaml("gpu: 1\n", Some("p.yaml".as_ref()))
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("p.yaml:1:1:") && err.contains("unknown field `gpu`"),
        "{err}"
    );
}

#[test]
fn defaults_are_usable_and_documented_as_illustrative() {
    let p = PriceSheet::default();
    assert_eq!(p.currency, "USD");
    assert!(p.cpu_hour > 0.0 && p.memory_gib_hour > 0.0 && p.storage_gb_month > 0.0);
    assert!(p.gpu_hour["default"] > 0.0);
    // A partial sheet keeps the other defaults.
    let partial = PriceSheet::from_yaml("cpuHour: 1\n", None).unwrap();
    assert_eq!(partial.memory_gib_hour, p.memory_gib_hour);
}

// ---- quantities ---------------------------------------------------------------------

#[test]
fn quantities_parse_like_kubernetes() {
    let cases: &[(&str, f64)] = &[
        ("0", 0.0),
        ("1", 1.0),
        ("250m", 0.25),
        ("1.5", 1.5),
        (".5", 0.5),
        ("5.", 5.0),
        ("+2", 2.0),
        ("-2", -2.0),
        ("100n", 100e-9),
        ("100u", 100e-6),
        ("1k", 1e3),
        ("1M", 1e6),
        ("1G", 1e9),
        ("1T", 1e12),
        ("1P", 1e15),
        ("1E", 1e18),
        ("1Ki", 1024.0),
        ("1Mi", 1_048_576.0),
        ("1.5Gi", 1.5 * 1_073_741_824.0),
        ("2Ti", 2.0 * 1_099_511_627_776.0),
        ("1Pi", 1_125_899_906_842_624.0),
        ("1Ei", 1_152_921_504_606_846_976.0),
        ("1e3", 1e3),
        ("1E3", 1e3),
        ("12e-3", 0.012),
        ("5e+2", 500.0),
    ];
    for (text, expected) in cases {
        let got = parse_quantity(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert!(close(got, *expected), "{text}: {got} != {expected}");
    }
    for bad in [
        "",
        " 1",
        "1 ",
        "Gi",
        "1KB",
        "1K",
        "1gi",
        "1.2.3",
        "--1",
        "1e",
        "1e+",
        "1ee3",
        "1Gi3",
        "m",
        ".",
        "+",
        "1e999999999999",
    ] {
        assert!(parse_quantity(bad).is_err(), "`{bad}` should be rejected");
    }
}

const SUFFIXES: &[(&str, f64)] = &[
    ("", 1.0),
    ("m", 1e-3),
    ("k", 1e3),
    ("M", 1e6),
    ("G", 1e9),
    ("T", 1e12),
    ("Ki", 1024.0),
    ("Mi", 1_048_576.0),
    ("Gi", 1_073_741_824.0),
    ("Ti", 1_099_511_627_776.0),
];

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,24}") {
        let _ = parse_quantity(&text);
    }

    #[test]
    fn number_and_suffix(whole in 0u64..1_000_000, frac in prop::option::of(0u32..1000), suffix in prop::sample::select(SUFFIXES)) {
        let (unit, multiplier) = suffix;
        let number = match frac {
            Some(f) => format!("{whole}.{f:03}"),
            None => whole.to_string(),
        };
        let value: f64 = number.parse().unwrap();
        let parsed = parse_quantity(&format!("{number}{unit}")).unwrap();
        prop_assert!(close(parsed, value * multiplier), "{}{}: {} vs {}", number, unit, parsed, value * multiplier);
    }

    #[test]
    fn decimal_exponents(mantissa in 0u32..100_000, exponent in -9i32..12) {
        let parsed = parse_quantity(&format!("{mantissa}e{exponent}")).unwrap();
        let expected = f64::from(mantissa) * 10f64.powi(exponent);
        prop_assert!(close(parsed, expected), "{} vs {}", parsed, expected);
    }
}
