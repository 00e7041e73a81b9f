//! Running idp-server: `--log-format json` writes one JSON object per line, `RUST_LOG`
//! filters, every request gets a span with method, route, status and latency, and (with
//! the `otel` feature) spans reach an OTLP collector, flushed on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary with its stderr in a file, so the test can read every line it wrote.
struct Logged {
    child: Child,
    addr: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Logged {
    fn start(rust_log: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("stderr.log");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_idp-server"))
            .args(["--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("idp"))
            .args(args)
            .env("HOME", &home)
            .env("KUBECONFIG", "")
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .envs(env.iter().copied())
            .env("RUST_LOG", rust_log)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("idp-server starts");
        let deadline = Instant::now() + Duration::from_secs(120);
        let addr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(rest) = text.split("listening on http://").nth(1) {
                break rest
                    .chars()
                    .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ':')
                    .collect::<String>();
            }
            assert!(
                Instant::now() < deadline,
                "idp-server did not report its address; log:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Self {
            child,
            addr,
            log,
            _dir: dir,
        }
    }

    /// GET `path`; the status code.
    fn get(&self, path: &str) -> u16 {
        let mut stream = TcpStream::connect(&self.addr).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).unwrap();
        raw.split(' ').nth(1).unwrap().parse().unwrap()
    }

    /// SIGTERM, then wait for the exit; the exit code.
    fn terminate(&mut self) -> Option<i32> {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("idp-server did not stop within 60 s of SIGTERM");
    }

    fn lines(&self) -> Vec<String> {
        read_lines(&self.log)
    }
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn parse_all(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("a log line is not JSON ({e}): {l}"));
            assert!(v.is_object(), "{l}");
            assert!(v["timestamp"].is_string() && v["level"].is_string(), "{l}");
            v
        })
        .collect()
}

/// Wait until the log holds a line matching `pred` (the server writes after answering).
fn wait_for_line(server: &Logged, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = parse_all(&server.lines()).into_iter().find(|v| pred(v)) {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "no such log line; log:\n{}",
            server.lines().join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn json_logs_parse_and_every_request_has_a_span() {
    let mut server = Logged::start(
        "info,idp_examples::server::error=debug",
        &["--log-format", "json"],
        &[],
    );
    assert_eq!(
        server.get("/api/catalog/entities/by-name/component/default/web-shop"),
        200
    );
    assert_eq!(
        server.get("/api/catalog/entities/by-name/component/default/nope"),
        404
    );
    assert_eq!(server.get("/no/such/route"), 404);

    let done = |route: &'static str, status: u64| {
        move |v: &Value| {
            v["fields"]["message"] == "request done"
                && v["span"]["name"] == "request"
                && v["span"]["route"] == route
                && v["span"]["status"] == status
        }
    };
    let by_name = "/api/catalog/entities/by-name/{kind}/{namespace}/{name}";
    let ok = wait_for_line(&server, done(by_name, 200));
    let span = &ok["span"];
    assert_eq!(span["method"], "GET");
    assert_eq!(
        span["url"],
        "/api/catalog/entities/by-name/component/default/web-shop"
    );
    let latency = span["latency_ms"].as_f64().expect("latency_ms is a number");
    assert!(latency > 0.0 && latency < 60_000.0, "{span}");
    assert_eq!(ok["level"], "DEBUG");
    wait_for_line(&server, done(by_name, 404));
    wait_for_line(&server, done("unmatched", 404));

    // The startup lines are JSON too, and say where the server listens.
    let all = parse_all(&server.lines());
    assert!(all.iter().any(|v| {
        v["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("listening on http://"))
    }));
    assert!(
        all.iter().any(|v| v["level"] == "WARN"
            && v["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("SIMULATED"))),
        "the simulated cluster is announced"
    );

    assert_eq!(server.terminate(), Some(0));
    let all = parse_all(&server.lines());
    assert!(
        all.iter()
            .any(|v| v["fields"]["message"] == "idp-server stopped"),
        "graceful shutdown is logged"
    );
}

#[test]
fn rust_log_filters_by_level_and_target() {
    // Only warnings, except the server's own info lines.
    let server = Logged::start("warn,idp_examples=info", &["--log-format", "json"], &[]);
    assert_eq!(server.get("/healthz"), 200);
    assert_eq!(server.get("/api/catalog/entities?limit=1"), 200);
    // Give the server a moment to write anything it would write.
    std::thread::sleep(Duration::from_millis(300));
    let all = parse_all(&server.lines());
    assert!(!all.is_empty());
    for v in &all {
        let level = v["level"].as_str().unwrap();
        let target = v["target"].as_str().unwrap();
        assert!(
            matches!(level, "WARN" | "ERROR")
                || (level == "INFO" && target.starts_with("idp_examples")),
            "RUST_LOG let through: {v}"
        );
        assert_ne!(v["fields"]["message"], "request done", "{v}");
    }
    assert!(all.iter().any(|v| v["level"] == "INFO"));

    // The default text format is not JSON, and debug lines show with RUST_LOG=debug for
    // the request layer.
    let text = Logged::start("info,idp_examples::server::error=debug", &[], &[]);
    assert_eq!(text.get("/healthz"), 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let lines = text.lines();
        if let Some(line) = lines.iter().find(|l| l.contains("request done")) {
            assert!(serde_json::from_str::<Value>(line).is_err(), "{line}");
            assert!(line.contains("route=/healthz"), "{line}");
            assert!(line.contains("status=200"), "{line}");
            assert!(line.contains("latency_ms="), "{line}");
            break;
        }
        assert!(Instant::now() < deadline, "{}", lines.join("\n"));
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// With the `otel` feature: a fake OTLP/HTTP collector on loopback receives the request
/// spans, with service.name idp-server, at the latest when the server stops.
#[cfg(feature = "otel")]
#[test]
fn otel_exports_spans_to_the_otlp_endpoint() {
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// Request lines and bodies the fake collector received.
    type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

    let collector = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", collector.local_addr().unwrap());
    let received: Received = Arc::default();
    let sink = received.clone();
    std::thread::spawn(move || {
        for stream in collector.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut raw = Vec::new();
            let mut buf = [0u8; 8192];
            // Read the head, then Content-Length bytes of body.
            let (head, body_start) = loop {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break (String::new(), 0);
                }
                raw.extend_from_slice(&buf[..n]);
                if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    break (String::from_utf8_lossy(&raw[..i]).into_owned(), i + 4);
                }
            };
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while raw.len() < body_start + length {
                let n = stream.read(&mut buf).unwrap_or(0);
                if n == 0 {
                    break;
                }
                raw.extend_from_slice(&buf[..n]);
            }
            let first = head.lines().next().unwrap_or_default().to_owned();
            sink.lock()
                .unwrap()
                .push((first, raw[body_start.min(raw.len())..].to_vec()));
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
        }
    });

    let mut server = Logged::start(
        "info",
        &[],
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "60000"),
        ],
    );
    assert_eq!(server.get("/healthz"), 200);
    assert_eq!(
        server.get("/api/catalog/entities/by-name/component/default/web-shop"),
        200
    );
    // The batch is only due in a minute: SIGTERM must flush it.
    assert_eq!(server.terminate(), Some(0));
    let got = received.lock().unwrap().clone();
    assert!(!got.is_empty(), "the collector received nothing");
    let (line, body) = got
        .iter()
        .find(|(l, _)| l.starts_with("POST /v1/traces"))
        .unwrap_or_else(|| panic!("no POST /v1/traces: {got:?}"));
    let contains = |needle: &[u8]| body.windows(needle.len()).any(|w| w == needle);
    assert!(contains(b"idp-server"), "{line}: service.name missing");
    assert!(
        contains(b"/api/catalog/entities/by-name/{kind}/{namespace}/{name}"),
        "{line}: the request span's route is missing"
    );
}

/// One blocking HTTP/1.1 request (Connection: close): status and body.
fn http(addr: std::net::SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, body.to_owned())
}

async fn http_async(addr: std::net::SocketAddr, method: &'static str, path: &str) -> (u16, String) {
    let path = path.to_owned();
    tokio::task::spawn_blocking(move || http(addr, method, &path))
        .await
        .unwrap()
}

fn component_count(facets: &str) -> u64 {
    let v: Value = serde_json::from_str(facets).unwrap();
    v["facets"]["kind"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["value"] == "Component")
        .map_or(0, |row| row["count"].as_u64().unwrap())
}

/// Facets are cached per catalog view: a refresh that changes the catalog must show the
/// change; one that changes nothing keeps the same answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn facet_answers_follow_catalog_changes() {
    use idp_examples::server::{Config, ServerOptions, start};

    let dir = tempfile::tempdir().unwrap();
    let server = start(ServerOptions {
        listen: Some("127.0.0.1:0".into()),
        data: Some(dir.path().join("idp")),
        simulated_cluster: true,
        ..ServerOptions::new(Config::default())
    })
    .await
    .unwrap();
    let addr = server.addr();
    let facets = "/api/catalog/entity-facets?facet=kind";
    let (status, body) = http_async(addr, "GET", facets).await;
    assert_eq!(status, 200, "{body}");
    let before = component_count(&body);
    assert!(before > 0, "{body}");
    // Served again from the cache: the same answer.
    assert_eq!(http_async(addr, "GET", facets).await.1, body);
    // A refresh with no change keeps it.
    assert_eq!(
        http_async(addr, "POST", "/api/catalog/refresh").await.0 / 100,
        2
    );
    assert_eq!(
        component_count(&http_async(addr, "GET", facets).await.1),
        before
    );

    // Two new components in the catalog repository, then a refresh.
    let repo = idp_core::git::GitRepo::open(dir.path().join("idp/catalog.git"))
        .await
        .unwrap();
    let mut text = String::new();
    for i in 0..2 {
        std::fmt::Write::write_fmt(
            &mut text,
            format_args!("---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: facet-{i}\nspec:\n  type: service\n  lifecycle: production\n  owner: platform-team\n"),
        )
        .unwrap();
    }
    repo.commit(
        idp_core::git::CommitRequest::new(
            "main",
            "two more",
            idp_core::git::Identity::new("t", "t@example.com"),
        )
        .put("more/catalog-info.yaml", text),
    )
    .await
    .unwrap();
    assert_eq!(
        http_async(addr, "POST", "/api/catalog/refresh").await.0 / 100,
        2
    );
    let (status, body) = http_async(addr, "GET", facets).await;
    assert_eq!(status, 200);
    assert_eq!(component_count(&body), before + 2, "{body}");
    server.shutdown().await.unwrap();
}
