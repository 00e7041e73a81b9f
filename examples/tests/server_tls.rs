//! The HTTPS listener: the same API over TLS (what the Kubernetes API server needs to call
//! the admission webhooks), with a certificate made by the `openssl` CLI and requests made
//! by `curl` (each test skips with a message when a tool is missing).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use idp_examples::server::config::TlsConfig;
use idp_examples::server::{Config, ServerOptions, start};

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        || Command::new(tool)
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// A self-signed certificate for `localhost` and 127.0.0.1.
fn self_signed(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let cert = dir.join("tls.crt");
    let key = dir.join("tls.key");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    (cert, key)
}

fn curl(ca: &Path, args: &[&str]) -> (String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30", "--cacert"])
        .arg(ca)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or((&text, ""));
    (
        body.to_owned(),
        format!("{code}{}", String::from_utf8_lossy(&out.stderr)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_and_the_admission_webhook_answer_over_https() {
    if !have("openssl") || !have("curl") {
        eprintln!("skipped: needs the openssl and curl command-line tools");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = self_signed(dir.path());
    let config = Config {
        tls: Some(TlsConfig {
            listen: "127.0.0.1:0".into(),
            cert_file: cert.clone(),
            key_file: key,
        }),
        ..Config::default()
    };
    let server = start(ServerOptions {
        listen: Some("127.0.0.1:0".into()),
        data: Some(dir.path().join("idp")),
        simulated_cluster: true,
        ..ServerOptions::new(config)
    })
    .await
    .unwrap();
    let https = server.tls_addr().expect("an HTTPS address");
    let base = format!("https://localhost:{}", https.port());
    let resolve = format!("localhost:{}:127.0.0.1", https.port());

    let cert2 = cert.clone();
    let url = format!("{base}/healthz");
    let resolve2 = resolve.clone();
    let (body, code) =
        tokio::task::spawn_blocking(move || curl(&cert2, &["--resolve", &resolve2, &url]))
            .await
            .unwrap();
    assert!(code.starts_with("200"), "{code} {body}");

    // An AdmissionReview of a privileged pod over HTTPS: denied, with the reason.
    let review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "jane"},
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "debug", "namespace": "shop"},
                "spec": {"containers": [{"name": "sh", "image": "busybox:1.36",
                    "securityContext": {"privileged": true}}]}
            }
        }
    })
    .to_string();
    let url = format!("{base}/admission/validate");
    let (body, code) = tokio::task::spawn_blocking(move || {
        curl(
            &cert,
            &[
                "--resolve",
                &resolve,
                "-H",
                "Content-Type: application/json",
                "--data-binary",
                &review,
                &url,
            ],
        )
    })
    .await
    .unwrap();
    assert!(code.starts_with("200"), "{code} {body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    assert_eq!(
        answer["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    assert!(answer.to_string().contains("privileged"), "{answer}");

    // Plain HTTP on the TLS port is refused, not answered.
    let plain = format!("http://127.0.0.1:{}/healthz", https.port());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("curl")
            .args(["-sS", "--max-time", "5", &plain])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ok"));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_certificate_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("tls.crt");
    std::fs::write(&cert, "not a certificate\n").unwrap();
    let config = Config {
        tls: Some(TlsConfig {
            listen: "127.0.0.1:0".into(),
            cert_file: cert,
            key_file: dir.path().join("missing.key"),
        }),
        ..Config::default()
    };
    let err = start(ServerOptions {
        listen: Some("127.0.0.1:0".into()),
        data: Some(dir.path().join("idp")),
        simulated_cluster: true,
        ..ServerOptions::new(config)
    })
    .await
    .unwrap_err();
    let message = err.report();
    assert!(message.contains("tls.certFile"), "{message}");
}
