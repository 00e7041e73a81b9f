//! The admission endpoint over real HTTP on loopback: hyper serves the tower service, a
//! plain TCP client speaks HTTP/1.1 to it, full AdmissionReview round trips.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;

use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use idp_core::PolicyContext;
use idp_core::ports::Mutation;
use idp_policy::admission::{
    AdmissionHandler, AdmissionRequest, AdmissionReview, AdmissionService, Operation,
};
use idp_policy::mutate::{DefaultResources, Mutations, StandardLabels};
use idp_policy::{Action, PolicyOptions, PolicySet, guardrails, pss::PodSecurity};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn mutations() -> Mutations {
    Mutations::new()
        .with(StandardLabels::default())
        .with(DefaultResources::default())
}

async fn serve(handler: AdmissionHandler) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = AdmissionService::new(handler);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let service = TowerToHyperService::new(service.clone());
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// One HTTP/1.1 request on a fresh connection; returns (status, content type, body).
async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: webhook\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // A server refusing a too-large body may answer and close before reading all of it:
    // a failed write is not the test's concern, the answer is.
    let _ = stream.write_all(body).await;
    let mut raw = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => raw.extend_from_slice(&chunk[..n]),
        }
    }
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8(raw[..split].to_vec()).unwrap();
    let body = raw[split + 4..].to_vec();
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-type")
                .then(|| v.trim().to_owned())
        })
        .unwrap_or_default();
    assert!(
        head.lines()
            .any(|l| l.to_ascii_lowercase().starts_with("content-length:")),
        "responses are not chunked: {head}"
    );
    (status, content_type, body)
}

async fn review(addr: SocketAddr, path: &str, request: AdmissionRequest) -> AdmissionReview {
    let body = serde_json::to_vec(&AdmissionReview::ask(request)).unwrap();
    let (status, content_type, body) = call(addr, "POST", path, "application/json", &body).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "application/json");
    serde_json::from_slice(&body).unwrap()
}

fn handler() -> AdmissionHandler {
    let set = PolicySet::new()
        .with_policy(PodSecurity::restricted())
        .with_policy_options(
            guardrails::RequireProbes::default(),
            PolicyOptions::new().action(Action::Warn),
        );
    AdmissionHandler::new()
        .with_policy(set)
        .with_mutation(mutations())
        .with_context(PolicyContext::new().with_environment("staging".parse().unwrap()))
        .with_max_body_bytes(64 * 1024)
}

fn deployment(secure: bool) -> Value {
    let security = if secure {
        json!({"allowPrivilegeEscalation": false, "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}})
    } else {
        json!({"privileged": true})
    };
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "cart", "namespace": "shop"},
        "spec": {"template": {"metadata": {"labels": {"app": "cart"}},
            "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/cart:1.4", "securityContext": security}]}}}})
}

#[tokio::test]
async fn validate_denies_over_http() {
    let addr = serve(handler()).await;
    let answer = review(
        addr,
        "/validate?timeout=10s",
        AdmissionRequest::new("uid-deny", Operation::Create, deployment(false))
            .with_namespace("shop"),
    )
    .await;
    let r = answer.response.unwrap();
    assert_eq!(r.uid, "uid-deny");
    assert!(!r.allowed);
    let status = r.status.unwrap();
    assert_eq!(status.code, Some(403));
    let message = status.message.unwrap();
    assert!(
        message.starts_with("Deployment shop/cart was refused by "),
        "{message}"
    );
    assert!(message.contains("pod-security/privileged"), "{message}");
    assert!(message.contains("spec.template.spec.containers[0].securityContext.privileged"));
}

#[tokio::test]
async fn validate_allows_with_warnings_over_http() {
    let addr = serve(handler()).await;
    let answer = review(
        addr,
        "/validate",
        AdmissionRequest::new("uid-ok", Operation::Create, deployment(true)).with_namespace("shop"),
    )
    .await;
    let r = answer.response.unwrap();
    assert!(r.allowed, "{r:?}");
    assert_eq!(r.uid, "uid-ok");
    assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.starts_with("require-probes/liveness: "))
    );
}

#[tokio::test]
async fn mutate_patch_applies_back_to_the_mutated_object() {
    let addr = serve(handler()).await;
    let object = deployment(true);
    let answer = review(
        addr,
        "/mutate",
        AdmissionRequest::new("uid-mut", Operation::Create, object.clone()).with_namespace("shop"),
    )
    .await;
    let r = answer.response.unwrap();
    assert!(r.allowed);
    assert_eq!(r.patch_type.as_deref(), Some("JSONPatch"));
    let patch: json_patch::Patch =
        serde_json::from_value(r.decoded_patch().unwrap().unwrap()).unwrap();
    let mut patched = object.clone();
    json_patch::patch(&mut patched, &patch).unwrap();

    let mut expected = idp_core::Object::from_value(object).unwrap();
    let ctx = PolicyContext::new()
        .with_environment("staging".parse().unwrap())
        .with_namespace("shop");
    assert!(mutations().mutate(&mut expected, &ctx).unwrap());
    assert_eq!(patched, expected.into_value());
    assert!(
        patched
            .pointer("/spec/template/spec/containers/0/resources/limits/memory")
            .is_some()
    );

    // The patched object needs nothing more.
    let again = review(
        addr,
        "/mutate",
        AdmissionRequest::new("uid-mut-2", Operation::Create, patched).with_namespace("shop"),
    )
    .await;
    assert!(again.response.unwrap().patch.is_none());
}

#[tokio::test]
async fn bad_requests_get_clear_answers() {
    let addr = serve(handler()).await;
    let (status, _, body) = call(addr, "GET", "/healthz", "text/plain", b"").await;
    assert_eq!((status, body.as_slice()), (200, b"ok".as_slice()));
    let (status, _, _) = call(addr, "POST", "/elsewhere", "application/json", b"{}").await;
    assert_eq!(status, 404);
    let (status, _, _) = call(addr, "GET", "/validate", "application/json", b"").await;
    assert_eq!(status, 405);

    let (status, _, body) = call(
        addr,
        "POST",
        "/validate",
        "application/json",
        b"{\"request\": 7",
    )
    .await;
    assert_eq!(status, 200);
    let r = serde_json::from_slice::<AdmissionReview>(&body)
        .unwrap()
        .response
        .unwrap();
    assert!(!r.allowed);
    assert!(
        r.status
            .unwrap()
            .message
            .unwrap()
            .contains("not a valid AdmissionReview")
    );

    let (status, _, body) = call(addr, "POST", "/mutate", "text/yaml", b"a: 1").await;
    assert_eq!(status, 200);
    let r = serde_json::from_slice::<AdmissionReview>(&body)
        .unwrap()
        .response
        .unwrap();
    assert_eq!(r.status.unwrap().code, Some(415));

    let huge = vec![b' '; 80 * 1024];
    let (status, _, body) = call(addr, "POST", "/validate", "application/json", &huge).await;
    assert_eq!(status, 200);
    let r = serde_json::from_slice::<AdmissionReview>(&body)
        .unwrap()
        .response
        .unwrap();
    assert!(!r.allowed);
    assert_eq!(r.status.unwrap().code, Some(413));
}
