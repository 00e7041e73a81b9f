//! idp-server under load: start the real binary on embedded defaults plus 10,000
//! generated entities, then drive catalog queries from an in-process load generator
//! (hyper client, loopback, bounded request count) and print startup time and latency
//! percentiles per query.
//!
//! `cargo bench -p idp-examples --bench idp_server` (set `IDP_BENCH_ENTITIES` /
//! `IDP_BENCH_REQUESTS` to change the size).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;

const CONNECTIONS: usize = 8;

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

fn main() {
    // `cargo test --benches` runs benches with `--bench` absent; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    let entities = env_usize("IDP_BENCH_ENTITIES", if quick { 500 } else { 10_000 });
    let requests = env_usize("IDP_BENCH_REQUESTS", if quick { 200 } else { 2_000 });
    let data = tempfile::tempdir().unwrap();
    let home = data.path().join("home");
    std::fs::create_dir_all(&home).unwrap();

    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_idp-server"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--generate",
            &entities.to_string(),
            "--data",
        ])
        .arg(data.path().join("idp"))
        .env("HOME", &home)
        .env("KUBECONFIG", "")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("idp-server starts");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("the server printed its address")
            .unwrap();
        if let Some(rest) = line.split("listening on http://").nth(1) {
            break rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                .collect::<String>();
        }
    };
    let startup = started.elapsed();
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});

    let queries: Vec<(&str, String)> = vec![
        (
            "by-name",
            "/api/catalog/entities/by-name/component/default/".to_owned(),
        ),
        (
            "by-query kind=component limit 20",
            "/api/catalog/entities/by-query?filter=kind=component&limit=20".to_owned(),
        ),
        (
            "entities filter+fields limit 50",
            "/api/catalog/entities?filter=kind=api&fields=metadata.name,spec.owner&limit=50"
                .to_owned(),
        ),
        (
            "by-query term",
            "/api/catalog/entities/by-query?fullTextFilterTerm=payments&limit=20".to_owned(),
        ),
        ("search", "/api/search/query?term=checkout".to_owned()),
    ];
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // A real component name for by-name.
    let name = rt.block_on(fetch(
        &addr,
        "/api/catalog/entities/by-query?filter=kind=component&limit=1&fields=metadata.name",
    ));
    let v: serde_json::Value = serde_json::from_slice(&name).unwrap();
    let component = v["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();

    println!(
        "idp-server bench: {entities} generated entities, {requests} requests per query, {CONNECTIONS} connections"
    );
    println!(
        "startup (spawn to listening, catalog loaded): {:.0} ms",
        startup.as_secs_f64() * 1000.0
    );
    for (label, path) in &queries {
        let path = if *label == "by-name" {
            format!("{path}{component}")
        } else {
            path.clone()
        };
        let mut latencies = rt.block_on(load(&addr, &path, requests));
        latencies.sort();
        println!(
            "{label:<36} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
            percentile(&latencies, 0.50).as_secs_f64() * 1000.0,
            percentile(&latencies, 0.99).as_secs_f64() * 1000.0,
            latencies.last().copied().unwrap_or_default().as_secs_f64() * 1000.0,
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

async fn connect(addr: &str) -> hyper::client::conn::http1::SendRequest<Empty<Bytes>> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

async fn get(
    sender: &mut hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    addr: &str,
    path: &str,
) -> Bytes {
    sender.ready().await.unwrap();
    let request = hyper::Request::get(path)
        .header("host", addr)
        .body(Empty::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.into_body().collect().await.unwrap().to_bytes()
}

async fn fetch(addr: &str, path: &str) -> Bytes {
    let mut sender = connect(addr).await;
    get(&mut sender, addr, path).await
}

/// `total` requests of `path` over `CONNECTIONS` keep-alive connections; each latency.
async fn load(addr: &str, path: &str, total: usize) -> Vec<Duration> {
    let per = total.div_ceil(CONNECTIONS);
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let addr = addr.to_owned();
        let path = path.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(&addr).await;
            let mut out = Vec::with_capacity(per);
            for _ in 0..per {
                let t = Instant::now();
                let _ = get(&mut sender, &addr, &path).await;
                out.push(t.elapsed());
            }
            out
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all
}
