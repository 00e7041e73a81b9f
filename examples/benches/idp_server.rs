//! idp-server under load, in one process: start the server with
//! `idp_examples::server::start` on embedded defaults (a fresh temp data directory and the
//! simulated cluster), then again with 10,000 generated entities, and drive a bounded mix
//! of catalog queries from concurrent client tasks over loopback (hyper HTTP/1.1 client,
//! keep-alive connections). Prints startup times and p50/p95/p99/max latency per kind of
//! query and overall, and PASS/FAIL against the targets of issue #9: startup under 2 s,
//! catalog queries at p99 under 10 ms.
//!
//! `nice cargo bench -p idp-examples --bench idp_server`. Knobs (environment):
//! `IDP_BENCH_ENTITIES` (default 10000), `IDP_BENCH_REQUESTS` (total, default 20000),
//! `IDP_BENCH_CLIENTS` (concurrent connections, default 8), `IDP_BENCH_SECONDS` (time bound
//! of the load phase, default 120). Built as a test (`cargo test --benches`, no `--bench`
//! argument) it runs a quick smoke pass over a small catalog.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use idp_examples::server::{Config, RunningServer, ServerOptions, start};

/// Startup target, from `start()` to listening.
const STARTUP_TARGET: Duration = Duration::from_secs(2);
/// p99 target for catalog queries.
const P99_TARGET: Duration = Duration::from_millis(10);

type Sender = hyper::client::conn::http1::SendRequest<Empty<Bytes>>;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A small deterministic generator (xorshift), so every run sends the same mix.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

async fn start_server(
    data: &std::path::Path,
    generate: Option<usize>,
) -> (RunningServer, Duration) {
    let t = Instant::now();
    let server = start(ServerOptions {
        listen: Some("127.0.0.1:0".into()),
        data: Some(data.to_path_buf()),
        simulated_cluster: true,
        generate,
        ..ServerOptions::new(Config::default())
    })
    .await
    .expect("the server starts");
    (server, t.elapsed())
}

async fn connect(addr: &str) -> Sender {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn get(sender: &mut Sender, addr: &str, path: &str) -> Bytes {
    sender.ready().await.unwrap();
    let request = hyper::Request::get(path)
        .header("host", addr)
        .body(Empty::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert!(
        status.is_success(),
        "{path}: {status}: {}",
        String::from_utf8_lossy(&body)
    );
    body
}

async fn get_json(sender: &mut Sender, addr: &str, path: &str) -> serde_json::Value {
    serde_json::from_slice(&get(sender, addr, path).await).unwrap()
}

/// What the load generator picks from: real names, owners and words of the catalog.
struct Material {
    components: Vec<String>,
    owners: Vec<String>,
    terms: Vec<String>,
}

async fn material(addr: &str) -> Material {
    let mut s = connect(addr).await;
    let page = get_json(
        &mut s,
        addr,
        "/api/catalog/entities?filter=kind=component&fields=metadata.name,spec.owner,metadata.tags&limit=500",
    )
    .await;
    let items = page.as_array().unwrap();
    let components: Vec<String> = items
        .iter()
        .filter_map(|e| e["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    let mut owners: Vec<String> = items
        .iter()
        .filter_map(|e| e["spec"]["owner"].as_str().map(str::to_owned))
        .collect();
    owners.sort();
    owners.dedup();
    // Search terms: name parts of components (each matches a handful of entities).
    let mut terms: Vec<String> = components
        .iter()
        .filter_map(|n| n.split('-').next().map(str::to_owned))
        .collect();
    terms.sort();
    terms.dedup();
    assert!(
        !components.is_empty() && !owners.is_empty() && !terms.is_empty(),
        "the catalog has components with owners"
    );
    Material {
        components,
        owners,
        terms,
    }
}

/// The kinds of query in the mix, with their weights.
const MIX: [(&str, usize); 8] = [
    ("by-name", 30),
    ("entities filter page", 15),
    ("entities filter+fields", 10),
    ("by-query first page", 10),
    ("by-query cursor", 10),
    ("entity-facets", 2),
    ("entity-facets by owner", 3),
    ("search", 20),
];

fn pick_kind(rng: &mut Rng) -> &'static str {
    let total: usize = MIX.iter().map(|(_, w)| w).sum();
    let mut x = rng.below(total);
    for (kind, w) in MIX {
        if x < w {
            return kind;
        }
        x -= w;
    }
    MIX[0].0
}

fn path_for(kind: &str, m: &Material, rng: &mut Rng, cursor: Option<&str>) -> String {
    match kind {
        "by-name" => format!(
            "/api/catalog/entities/by-name/component/default/{}",
            m.components[rng.below(m.components.len())]
        ),
        "entities filter page" => format!(
            "/api/catalog/entities?filter=kind=component,spec.owner={}&limit=20",
            m.owners[rng.below(m.owners.len())]
        ),
        "entities filter+fields" => {
            "/api/catalog/entities?filter=kind=api&fields=metadata.name,spec.owner,spec.type&limit=50"
                .to_owned()
        }
        "by-query first page" => format!(
            "/api/catalog/entities/by-query?filter=kind=component,spec.owner={}&orderField=metadata.name,asc&limit=20",
            m.owners[rng.below(m.owners.len())]
        ),
        "by-query cursor" => match cursor {
            Some(c) => format!("/api/catalog/entities/by-query?cursor={c}"),
            None => "/api/catalog/entities/by-query?filter=kind=resource&limit=20".to_owned(),
        },
        "entity-facets" => "/api/catalog/entity-facets?facet=kind&facet=spec.lifecycle".to_owned(),
        "entity-facets by owner" => format!(
            "/api/catalog/entity-facets?facet=spec.type&facet=metadata.tags&filter=spec.owner={}",
            m.owners[rng.below(m.owners.len())]
        ),
        _ => format!(
            "/api/search/query?term={}",
            m.terms[rng.below(m.terms.len())]
        ),
    }
}

/// One client: `count` requests over one keep-alive connection, stopping at `deadline`.
async fn client(
    addr: String,
    m: std::sync::Arc<Material>,
    seed: u64,
    count: usize,
    deadline: Instant,
) -> Vec<(&'static str, Duration)> {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut sender = connect(&addr).await;
    let mut out = Vec::with_capacity(count);
    let mut cursor: Option<String> = None;
    for _ in 0..count {
        if Instant::now() >= deadline {
            break;
        }
        let kind = pick_kind(&mut rng);
        let path = path_for(kind, &m, &mut rng, cursor.as_deref());
        let t = Instant::now();
        let body = get(&mut sender, &addr, &path).await;
        let elapsed = t.elapsed();
        if kind.starts_with("by-query") {
            // Follow the pages: the next by-query-cursor request continues from here,
            // and starts over at the end.
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            cursor = v["pageInfo"]["nextCursor"].as_str().map(str::to_owned);
        }
        out.push((kind, elapsed));
    }
    out
}

fn row(label: &str, mut lat: Vec<Duration>) -> Duration {
    lat.sort();
    let p99 = percentile(&lat, 0.99);
    println!(
        "{label:<24} n {:>6}  p50 {:>7.2} ms  p95 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
        lat.len(),
        ms(percentile(&lat, 0.50)),
        ms(percentile(&lat, 0.95)),
        ms(p99),
        ms(lat.last().copied().unwrap_or_default()),
    );
    p99
}

fn main() {
    // `cargo test --benches` runs benches without `--bench`: keep that a quick smoke pass.
    let quick = !std::env::args().any(|a| a == "--bench");
    let entities = env_usize("IDP_BENCH_ENTITIES", if quick { 300 } else { 10_000 });
    let requests = env_usize("IDP_BENCH_REQUESTS", if quick { 200 } else { 20_000 });
    let clients = env_usize("IDP_BENCH_CLIENTS", 8).max(1);
    let seconds = env_usize("IDP_BENCH_SECONDS", 120) as u64;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    // 1. Startup on embedded defaults: a fresh data directory (seeds the catalog repo).
    let (fresh, fresh_startup) = rt.block_on(start_server(&dir.path().join("fresh"), None));
    rt.block_on(fresh.shutdown()).unwrap();
    // The same data directory again (the repo exists): a restart.
    let (again, restart) = rt.block_on(start_server(&dir.path().join("fresh"), None));
    rt.block_on(again.shutdown()).unwrap();

    // 2. Startup with the generated catalog, then the load.
    let (server, big_startup) = rt.block_on(start_server(&dir.path().join("big"), Some(entities)));
    let addr = server.addr().to_string();
    let m = std::sync::Arc::new(rt.block_on(material(&addr)));

    println!(
        "idp-server bench: {entities} generated entities (+ the demo org), {requests} requests, {clients} concurrent clients, in-process, loopback"
    );
    println!(
        "startup, embedded defaults, fresh data dir   {:>8.1} ms",
        ms(fresh_startup)
    );
    println!(
        "startup, embedded defaults, existing data    {:>8.1} ms",
        ms(restart)
    );
    println!(
        "startup, + {entities} generated entities       {:>8.1} ms",
        ms(big_startup)
    );

    // Warm up (connections, caches), not counted.
    rt.block_on(client(
        addr.clone(),
        m.clone(),
        999,
        200.min(requests),
        Instant::now() + Duration::from_secs(30),
    ));

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let per = requests.div_ceil(clients);
    let t = Instant::now();
    let results = rt.block_on(async {
        let tasks: Vec<_> = (0..clients)
            .map(|i| tokio::spawn(client(addr.clone(), m.clone(), i as u64 + 1, per, deadline)))
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });
    let wall = t.elapsed();
    rt.block_on(server.shutdown()).unwrap();

    let mut by_kind: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for (kind, d) in &results {
        by_kind.entry(kind).or_default().push(*d);
    }
    println!(
        "load: {} requests in {:.1} s ({:.0} req/s)",
        results.len(),
        wall.as_secs_f64(),
        results.len() as f64 / wall.as_secs_f64()
    );
    for (kind, lat) in by_kind {
        row(kind, lat);
    }
    let overall = row("overall", results.iter().map(|(_, d)| *d).collect());

    let verdict = |ok: bool| if ok { "PASS" } else { "FAIL" };
    println!(
        "{} startup on embedded defaults {:.0} ms (target < {} ms)",
        verdict(fresh_startup < STARTUP_TARGET),
        ms(fresh_startup),
        STARTUP_TARGET.as_millis()
    );
    println!(
        "{} catalog queries p99 {:.2} ms over {entities} entities (target < {} ms)",
        verdict(overall < P99_TARGET),
        ms(overall),
        P99_TARGET.as_millis()
    );
}
