//! The golden paths end to end over HTTP, against an `idp-server` started in-process with
//! embedded defaults (a seeded local catalog repository, a local GitOps repository and the
//! simulated cluster):
//!
//! scaffold a service from `rust-service` → it is in the catalog with its owner → deploy it
//! to `dev` (policy passes; a privileged variant is denied with the reasons) → DORA counts
//! the deployment → a signed GitHub `pull_request` `opened` webhook → the preview becomes
//! ready → `closed` → it is gone with nothing left behind → rolling `dev` back restores the
//! previous release.
//!
//! Plus: a bad signature is refused with 401 and creates nothing; malformed bodies get 400
//! with a message; 100 concurrent catalog reads during a refresh never see a half-updated
//! catalog.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::too_many_lines,
    clippy::format_push_string,
    clippy::format_collect
)]

use std::time::Duration;

use idp_examples::server::{Config, RunningServer, ServerOptions, start};
use serde_json::{Value, json};

use idp_testkit::http::HttpResponse as Reply;

/// One HTTP/1.1 request with `Connection: close`.
async fn request(
    server: &RunningServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    idp_testkit::http::send(&server.addr().to_string(), method, path, headers, body)
        .await
        .unwrap()
}

async fn get(server: &RunningServer, path: &str) -> Reply {
    request(server, "GET", path, &[], b"").await
}

async fn post(server: &RunningServer, path: &str, value: &Value) -> Reply {
    let body = serde_json::to_vec(value).unwrap();
    request(
        server,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        &body,
    )
    .await
}

/// `sha256=<hex>` of HMAC-SHA256 over `body`, as GitHub signs webhooks.
fn github_signature(secret: &[u8], body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

async fn github_webhook(server: &RunningServer, secret: &[u8], body: &[u8], id: &str) -> Reply {
    let signature = github_signature(secret, body);
    request(
        server,
        "POST",
        "/webhooks/github",
        &[
            ("Content-Type", "application/json"),
            ("X-GitHub-Event", "pull_request"),
            ("X-GitHub-Delivery", id),
            ("X-Hub-Signature-256", &signature),
        ],
        body,
    )
    .await
}

/// Poll `check` every 100 ms until it returns `Some`, for at most `limit`.
async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn embedded(data: &std::path::Path) -> RunningServer {
    start(ServerOptions {
        listen: Some("127.0.0.1:0".into()),
        data: Some(data.to_path_buf()),
        simulated_cluster: true,
        ..ServerOptions::new(Config::default())
    })
    .await
    .expect("idp-server starts on embedded defaults")
}

const OPENED: &str = include_str!("../../idp-preview/tests/fixtures/github/opened.json");
const CLOSED: &str = include_str!("../../idp-preview/tests/fixtures/github/closed_merged.json");

/// A client for the server's simulated cluster, from the kubeconfig it writes.
async fn cluster_client(server: &RunningServer) -> kube::Client {
    let path = server
        .simulated_kubeconfig()
        .expect("embedded defaults run the simulated cluster");
    let kubeconfig = kube::config::Kubeconfig::read_from(path).unwrap();
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// Names of the preview namespaces (`pr-…`) in the cluster.
async fn preview_namespaces(client: &kube::Client) -> Vec<String> {
    use k8s_openapi::api::core::v1::Namespace;
    let api: kube::Api<Namespace> = kube::Api::all(client.clone());
    let list = api.list(&kube::api::ListParams::default()).await.unwrap();
    list.items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .filter(|n| n.starts_with("pr-"))
        .collect()
}

/// The first container image of Deployment `name` in `namespace`, if it exists.
async fn live_image(client: &kube::Client, namespace: &str, name: &str) -> Option<String> {
    use k8s_openapi::api::apps::v1::Deployment;
    let api: kube::Api<Deployment> = kube::Api::namespaced(client.clone(), namespace);
    let live = api.get_opt(name).await.unwrap()?;
    let live = serde_json::to_value(live).unwrap();
    live.pointer("/spec/template/spec/containers/0/image")?
        .as_str()
        .map(str::to_owned)
}

/// A GitHub `pull_request` delivery for the scaffolded service's repository.
fn pull_request(template: &str, repo: &str) -> Vec<u8> {
    let mut event: Value = serde_json::from_str(template).unwrap();
    event["repository"]["full_name"] = json!(repo);
    event["repository"]["name"] = json!(repo.rsplit('/').next().unwrap());
    event["pull_request"]["head"]["repo"]["full_name"] = json!(repo);
    event["pull_request"]["base"]["repo"]["full_name"] = json!(repo);
    serde_json::to_vec(&event).unwrap()
}

const PRIVILEGED: &str = r"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: ledger-service
spec:
  replicas: 2
  selector: {matchLabels: {app: ledger-service}}
  template:
    metadata: {labels: {app: ledger-service}}
    spec:
      containers:
      - name: main
        image: ghcr.io/acme/ledger-service:1.0.0
        securityContext: {privileged: true}
        resources: {limits: {cpu: 500m, memory: 128Mi}}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_path_scaffold_deploy_preview_rollback() {
    let data = tempfile::tempdir().unwrap();
    let server = embedded(&data.path().join("idp")).await;
    let cluster = cluster_client(&server).await;

    // The golden-path template is in the catalog, with its parameter schema.
    let schema = get(
        &server,
        "/api/scaffolder/v2/templates/default/template/rust-service/parameter-schema",
    )
    .await;
    assert_eq!(schema.status, 200, "{}", schema.text());
    let schema = schema.json();
    assert!(
        schema["steps"][0]["schema"]["properties"]["name"].is_object(),
        "{schema}"
    );

    // 1. Scaffold a new service from `rust-service`.
    let task = post(
        &server,
        "/api/scaffolder/v2/tasks",
        &json!({
            "templateRef": "template:default/rust-service",
            "values": {
                "name": "ledger-service",
                "owner": "group:default/payments-team",
                "description": "Keeps the ledger"
            }
        }),
    )
    .await;
    assert_eq!(task.status, 201, "{}", task.text());
    let id = task.json()["id"].as_str().unwrap().to_owned();
    let finished = eventually("the scaffolder task", Duration::from_secs(120), || {
        let server = &server;
        let id = id.clone();
        async move {
            let task = get(server, &format!("/api/scaffolder/v2/tasks/{id}"))
                .await
                .json();
            matches!(task["status"].as_str(), Some("completed" | "failed")).then_some(task)
        }
    })
    .await;
    assert_eq!(finished["status"], "completed", "{finished}");
    let events = get(&server, &format!("/api/scaffolder/v2/tasks/{id}/events"))
        .await
        .json();
    assert!(
        events
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["type"] == "log"),
        "the task logged its steps: {events}"
    );

    // 2. It is in the catalog, with its owner.
    let entity = get(
        &server,
        "/api/catalog/entities/by-name/component/default/ledger-service",
    )
    .await;
    assert_eq!(entity.status, 200, "{}", entity.text());
    let entity = entity.json();
    assert_eq!(entity["spec"]["owner"], "group:default/payments-team");
    assert!(
        entity["relations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["type"] == "ownedBy" && r["targetRef"] == "group:default/payments-team"),
        "{entity}"
    );

    // 3. Deploy it to dev from its own Score workload: policy passes, the cluster runs it.
    let v1 = post(
        &server,
        "/api/deployments",
        &json!({
            "component": "ledger-service",
            "environment": "dev",
            "image": "ghcr.io/acme/ledger-service:1.0.0",
            "wait": 90
        }),
    )
    .await;
    assert_eq!(v1.status, 201, "{}\n{entity}", v1.text());
    let v1 = v1.json();
    assert_eq!(v1["component"], "component:default/ledger-service");
    assert_eq!(v1["health"], "Healthy", "{v1}");
    let v1_id = v1["id"].as_str().unwrap().to_owned();
    assert_eq!(
        live_image(&cluster, "dev", "ledger-service")
            .await
            .as_deref(),
        Some("ghcr.io/acme/ledger-service:1.0.0")
    );

    // A privileged variant is denied with the reasons, and nothing is committed.
    let denied = post(
        &server,
        "/api/deployments",
        &json!({"component": "ledger-service", "environment": "dev", "manifests": PRIVILEGED}),
    )
    .await;
    assert_eq!(denied.status, 403, "{}", denied.text());
    let reasons = denied.text();
    assert!(reasons.contains("privileged"), "{reasons}");
    let history = get(&server, "/api/deployments?component=ledger-service&env=dev")
        .await
        .json();
    assert_eq!(history.as_array().unwrap().len(), 1, "{history}");

    // 4. DORA shows the deployment.
    let dora = get(&server, "/api/dora?component=ledger-service").await;
    assert_eq!(dora.status, 200, "{}", dora.text());
    assert_eq!(dora.json()["overall"]["deployments"], 1, "{}", dora.text());

    // 5. A signed GitHub pull_request `opened` webhook: the preview becomes ready.
    let secret = std::fs::read(data.path().join("idp/webhook-secret")).unwrap();
    let secret = String::from_utf8(secret).unwrap();
    let secret = secret.trim().as_bytes();
    assert!(preview_namespaces(&cluster).await.is_empty());
    let opened = pull_request(OPENED, "acme/ledger-service");
    let reply = github_webhook(&server, secret, &opened, "delivery-1").await;
    assert!(
        reply.status == 200 || reply.status == 202,
        "{} {}",
        reply.status,
        reply.text()
    );
    let namespace = eventually("the preview to be ready", Duration::from_secs(60), || {
        let server = &server;
        async move {
            let previews = get(server, "/api/previews").await.json();
            let item = previews["items"].as_array()?.first()?.clone();
            (item["status"] == "ready").then(|| item["namespace"].as_str().map(str::to_owned))?
        }
    })
    .await;
    assert_eq!(
        preview_namespaces(&cluster).await,
        std::slice::from_ref(&namespace)
    );

    // 6. `closed`: the preview is gone, with nothing left behind.
    let closed = pull_request(CLOSED, "acme/ledger-service");
    let reply = github_webhook(&server, secret, &closed, "delivery-2").await;
    assert!(
        reply.status == 200 || reply.status == 202,
        "{} {}",
        reply.status,
        reply.text()
    );
    eventually("the preview to be gone", Duration::from_secs(60), || {
        let server = &server;
        let cluster = &cluster;
        async move {
            let previews = get(server, "/api/previews").await.json();
            let none = previews["items"].as_array().is_some_and(Vec::is_empty);
            (none && preview_namespaces(cluster).await.is_empty()).then_some(())
        }
    })
    .await;

    // 7. Deploy v2, then roll dev back: the previous release is restored in the cluster.
    let v2 = post(
        &server,
        "/api/deployments",
        &json!({
            "component": "ledger-service",
            "environment": "dev",
            "image": "ghcr.io/acme/ledger-service:2.0.0",
            "wait": 90
        }),
    )
    .await;
    assert_eq!(v2.status, 201, "{}", v2.text());
    let v2_id = v2.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        live_image(&cluster, "dev", "ledger-service")
            .await
            .as_deref(),
        Some("ghcr.io/acme/ledger-service:2.0.0")
    );
    let back = post(
        &server,
        &format!("/api/deployments/{v2_id}/rollback"),
        &json!({"wait": 90}),
    )
    .await;
    assert_eq!(back.status, 201, "{}", back.text());
    let back = back.json();
    assert_eq!(back["rollbackTo"], v1_id.as_str(), "{back}");
    assert_eq!(back["health"], "Healthy", "{back}");
    assert_eq!(
        live_image(&cluster, "dev", "ledger-service")
            .await
            .as_deref(),
        Some("ghcr.io/acme/ledger-service:1.0.0")
    );
    let dora = get(&server, "/api/dora?component=ledger-service&env=dev")
        .await
        .json();
    assert_eq!(dora["overall"]["deployments"], 3, "{dora}");
    assert_eq!(dora["overall"]["failures"], 1, "{dora}");

    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_signatures_and_malformed_bodies_are_refused() {
    let data = tempfile::tempdir().unwrap();
    let server = embedded(&data.path().join("idp")).await;
    let cluster = cluster_client(&server).await;

    // A bad signature: 401, and nothing is created.
    let opened = pull_request(OPENED, "acme/cart");
    let forged = github_webhook(&server, b"not-the-secret", &opened, "forged").await;
    assert_eq!(forged.status, 401, "{}", forged.text());
    let unsigned = request(
        &server,
        "POST",
        "/webhooks/github",
        &[("X-GitHub-Event", "pull_request")],
        &opened,
    )
    .await;
    assert_eq!(unsigned.status, 401, "{}", unsigned.text());
    let gitlab = request(
        &server,
        "POST",
        "/webhooks/gitlab",
        &[
            ("X-Gitlab-Event", "Merge Request Hook"),
            ("X-Gitlab-Token", "wrong"),
        ],
        b"{}",
    )
    .await;
    assert_eq!(gitlab.status, 401, "{}", gitlab.text());
    assert!(preview_namespaces(&cluster).await.is_empty());
    assert_eq!(
        get(&server, "/api/previews").await.json()["items"],
        json!([])
    );

    // Malformed bodies: 400 with a message that says what is wrong.
    let secret = std::fs::read_to_string(data.path().join("idp/webhook-secret")).unwrap();
    let garbage = b"{\"action\": \"opened\"";
    let malformed = github_webhook(&server, secret.trim().as_bytes(), garbage, "bad").await;
    assert_eq!(malformed.status, 400, "{}", malformed.text());
    assert!(
        !malformed.json()["error"]["message"]
            .as_str()
            .unwrap()
            .is_empty()
    );

    for (path, body, mention) in [
        ("/api/deployments", &b"{not json"[..], "JSON"),
        ("/api/deployments", br#"{"environment": "dev"}"#, "component"),
        ("/api/scaffolder/v2/tasks", br#"{"values": {}}"#, "templateRef"),
        (
            "/api/scaffolder/v2/tasks",
            br#"{"templateRef": "template:default/rust-service", "values": {"name": "Bad Name", "owner": "x"}}"#,
            "values.name",
        ),
        ("/api/catalog/entities/by-refs", br#"{"entityRefs": 5}"#, "invalid type"),
        ("/api/promotions", br#"{"component": "x"}"#, ""),
    ] {
        let reply = request(
            &server,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body,
        )
        .await;
        assert_eq!(reply.status, 400, "{path}: {}", reply.text());
        let message = reply.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_owned();
        assert!(!message.is_empty(), "{path}");
        assert!(message.contains(mention), "{path}: {message}");
    }
    assert!(preview_namespaces(&cluster).await.is_empty());
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_during_a_refresh_see_all_or_nothing() {
    const WAVE: usize = 60;
    let data = tempfile::tempdir().unwrap();
    let server = std::sync::Arc::new(embedded(&data.path().join("idp")).await);

    // A commit adding WAVE components to the catalog repository; a refresh picks it up.
    let mut text = String::new();
    for i in 0..WAVE {
        text.push_str(&format!(
            "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: wave-{i}\n  tags: [wave]\nspec:\n  type: service\n  lifecycle: production\n  owner: platform-team\n"
        ));
    }
    let repo = idp_core::git::GitRepo::open(data.path().join("idp/catalog.git"))
        .await
        .unwrap();
    repo.commit(
        idp_core::git::CommitRequest::new(
            "main",
            "a wave",
            idp_core::git::Identity::new("t", "t@x"),
        )
        .put("wave/catalog-info.yaml", text),
    )
    .await
    .unwrap();

    let s = server.clone();
    let refresher = tokio::spawn(async move {
        request(&s, "POST", "/api/catalog/refresh", &[], b"")
            .await
            .status
    });
    let mut readers = Vec::new();
    for _ in 0..100 {
        let s = server.clone();
        readers.push(tokio::spawn(async move {
            for _ in 0..2000 {
                let list = get(
                    &s,
                    "/api/catalog/entities?filter=metadata.tags=wave&fields=metadata.name",
                )
                .await
                .json();
                let n = list.as_array().unwrap().len();
                assert!(
                    n == 0 || n == WAVE,
                    "a reader saw {n} of {WAVE} new entities"
                );
                if n == WAVE {
                    return true;
                }
            }
            false
        }));
    }
    for r in readers {
        assert!(r.await.unwrap(), "the refresh never became visible");
    }
    assert_eq!(refresher.await.unwrap(), 200);
}
