//! idp-server's creation area end to end, on a server started in-process with embedded
//! defaults (a seeded catalog in a temporary data directory, the simulated cluster):
//! templates, the scaffolder API and its portal form, previews driven by signed GitHub and
//! GitLab webhooks, and the admission webhooks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use idp_examples::server::{Config, RunningServer, ServerOptions, start};
use k8s_openapi::api::core::v1::Namespace;
use serde_json::{Value, json};

struct Harness {
    server: RunningServer,
    data: tempfile::TempDir,
}

async fn harness() -> Harness {
    harness_at(std::path::Path::to_path_buf).await
}

/// A server whose data directory is `path(tempdir)`.
async fn harness_at(path: impl Fn(&std::path::Path) -> std::path::PathBuf) -> Harness {
    harness_with(Config::default(), path).await
}

async fn harness_with(
    config: Config,
    path: impl Fn(&std::path::Path) -> std::path::PathBuf,
) -> Harness {
    let data = tempfile::tempdir().unwrap();
    let server = start(ServerOptions {
        listen: Some("127.0.0.1:0".into()),
        data: Some(path(data.path())),
        simulated_cluster: true,
        ..ServerOptions::new(config)
    })
    .await
    .unwrap();
    Harness { server, data }
}

use idp_testkit::http::HttpResponse as Resp;

impl Harness {
    async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        idp_testkit::http::send(&self.server.addr().to_string(), method, path, headers, body)
            .await
            .unwrap()
    }

    async fn get(&self, path: &str) -> Resp {
        self.request("GET", path, &[], b"").await
    }

    async fn post_json(&self, path: &str, value: &Value) -> Resp {
        let body = serde_json::to_vec(value).unwrap();
        self.request("POST", path, &[("Content-Type", "application/json")], &body)
            .await
    }

    async fn wait_task(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let task = self
                .get(&format!("/api/scaffolder/v2/tasks/{id}"))
                .await
                .json();
            if task["status"] == "completed" || task["status"] == "failed" {
                return task;
            }
            assert!(Instant::now() < deadline, "task still running: {task}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A client for the server's simulated cluster (its URL is on every portal page).
    async fn cluster(&self) -> kube::Client {
        let html = self.get("/").await.text();
        let at = html
            .find("simulated cluster at ")
            .expect("a simulated cluster")
            + 21;
        let url: String = html[at..]
            .chars()
            .take_while(|c| !matches!(c, '<' | '"' | ' '))
            .collect();
        kube::Client::try_from(kube::Config::new(url.parse::<hyper::Uri>().unwrap())).unwrap()
    }

    fn secret(&self) -> String {
        std::fs::read_to_string(self.data.path().join("webhook-secret"))
            .unwrap()
            .trim()
            .to_owned()
    }
}

async fn namespace_exists(client: &kube::Client, name: &str) -> bool {
    kube::Api::<Namespace>::all(client.clone())
        .get_opt(name)
        .await
        .unwrap()
        .is_some()
}

async fn preview_namespaces(client: &kube::Client) -> Vec<String> {
    kube::Api::<Namespace>::all(client.clone())
        .list(&kube::api::ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|n| n.metadata.name)
        .filter(|n| n.starts_with("pr-"))
        .collect()
}

fn names(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_are_in_the_catalog_with_their_parameter_schemas() {
    let h = harness().await;
    let templates = h.get("/api/catalog/entities?filter=kind=template").await;
    assert_eq!(templates.status, 200);
    let mut found = names(&templates.json());
    found.sort();
    assert_eq!(
        found,
        ["object-bucket", "postgres-database", "rust-service"]
    );

    let schema = h
        .get("/api/scaffolder/v2/templates/default/template/rust-service/parameter-schema")
        .await;
    assert_eq!(schema.status, 200, "{}", schema.text());
    let schema = schema.json();
    assert_eq!(schema["title"], "Rust service");
    assert!(schema["description"].as_str().unwrap().contains("Rust"));
    let steps = schema["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    assert_eq!(steps[0]["title"], "About the service");
    assert_eq!(
        steps[0]["schema"]["properties"]["name"]["type"], "string",
        "{schema}"
    );
    assert!(
        steps[0]["schema"]["required"]
            .as_array()
            .unwrap()
            .contains(&json!("name"))
    );
    assert_eq!(steps[1]["schema"]["properties"]["port"]["default"], 8080);
    // The server fills repoUrl, so the schema no longer requires it.
    assert!(
        !steps[2]["schema"]["required"]
            .as_array()
            .unwrap()
            .contains(&json!("repoUrl"))
    );

    let missing = h
        .get("/api/scaffolder/v2/templates/default/template/nope/parameter-schema")
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"]["name"], "NotFoundError");

    let actions = h.get("/api/scaffolder/v2/actions").await.json();
    let publish = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "publish:git")
        .expect("publish:git is listed");
    assert!(publish["schema"]["input"]["properties"]["repoUrl"].is_object());

    let doc = h.get("/api/openapi.json").await.json();
    for path in [
        "/api/scaffolder/v2/tasks",
        "/api/scaffolder/v2/tasks/{id}/eventstream",
        "/api/previews",
        "/webhooks/github",
        "/admission/validate",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert!(doc["components"]["schemas"]["TaskRequest"]["properties"]["templateRef"].is_object());

    // The portal lists them and generates a form from the schema.
    let create = h.get("/create").await.text();
    assert!(
        create.contains("/create/default/rust-service") && create.contains("Object storage bucket")
    );
    let form = h.get("/create/default/rust-service").await.text();
    assert!(form.contains("<form method=\"post\""));
    assert!(form.contains("name=\"name\"") && form.contains("required"));
    assert!(form.contains("type=\"number\"") && form.contains("value=\"8080\""));
    assert!(form.contains("<option value=\"gitlab-ci\">GitLab CI</option>"));
    h.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rust_service_task_completes_and_the_component_is_in_the_catalog() {
    let h = harness().await;
    let created = h
        .post_json(
            "/api/scaffolder/v2/tasks",
            &json!({
                "templateRef": "template:default/rust-service",
                "values": {"name": "orders-api", "owner": "group:default/payments-team", "description": "Takes orders"}
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_owned();

    let task = h.wait_task(&id).await;
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(
        task["spec"]["templateInfo"]["entityRef"],
        "template:default/rust-service"
    );
    let links = task["output"]["links"].as_array().unwrap();
    assert!(
        links
            .iter()
            .any(|l| l["entityRef"] == "component:default/orders-api"),
        "{task}"
    );

    // The new component is in the catalog, with its owner, read from the new repository.
    let entity = h
        .get("/api/catalog/entities/by-name/component/default/orders-api")
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
    assert!(h.data.path().join("repos/orders-api.git/HEAD").is_file());

    // Step logs as events, with an `after` cursor.
    let events = h
        .get(&format!("/api/scaffolder/v2/tasks/{id}/events"))
        .await
        .json();
    let events = events.as_array().unwrap();
    for step in ["fetch", "publish", "register"] {
        assert!(
            events.iter().any(|e| e["body"]["stepId"] == step),
            "no events of step {step}: {events:?}"
        );
    }
    // In order: each step begins, logs and finishes before the next begins.
    let position = |step: &str, prefix: &str| {
        events
            .iter()
            .position(|e| {
                e["body"]["stepId"] == step
                    && e["body"]["message"].as_str().unwrap().starts_with(prefix)
            })
            .unwrap_or_else(|| panic!("no {prefix:?} event for {step}: {events:?}"))
    };
    assert!(position("fetch", "Beginning step") < position("fetch", "fetch:template"));
    assert!(position("fetch", "fetch:template") < position("fetch", "Finished step"));
    assert!(position("fetch", "Finished step") < position("publish", "Beginning step"));
    assert!(position("publish", "Finished step") < position("register", "Beginning step"));
    let last = events.last().unwrap();
    assert_eq!(last["type"], "completion");
    assert_eq!(last["body"]["status"], "completed");
    let ids: Vec<u64> = events.iter().map(|e| e["id"].as_u64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
    let later = h
        .get(&format!(
            "/api/scaffolder/v2/tasks/{id}/events?after={}",
            ids[2]
        ))
        .await
        .json();
    assert_eq!(later.as_array().unwrap().len(), events.len() - 3);
    let bad_cursor = h
        .get(&format!("/api/scaffolder/v2/tasks/{id}/events?after=x"))
        .await;
    assert_eq!(bad_cursor.status, 400);

    // The same events as Server-Sent Events; the stream ends with the completion.
    let sse = h
        .get(&format!("/api/scaffolder/v2/tasks/{id}/eventstream"))
        .await;
    assert_eq!(sse.status, 200);
    assert!(
        sse.header("content-type")
            .unwrap()
            .starts_with("text/event-stream")
    );
    let text = sse.text();
    assert!(
        text.contains("event: log") && text.contains("event: completion"),
        "{text}"
    );
    assert_eq!(
        text.matches("\ndata: ").count() + usize::from(text.starts_with("data: ")),
        events.len(),
        "{text}"
    );

    // The task page shows the step logs.
    let page = h.get(&format!("/tasks/{id}")).await.text();
    assert!(page.contains("publish") && page.contains("component:default/orders-api"));

    // The same name again: the repository exists.
    let again = h
        .post_json(
            "/api/scaffolder/v2/tasks",
            &json!({"templateRef": "template:default/rust-service", "values": {"name": "orders-api", "owner": "payments-team"}}),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.text());
    assert!(
        again.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("values.name")
    );

    let list = h.get("/api/scaffolder/v2/tasks").await.json();
    assert_eq!(list["totalTasks"], 1);
    let cancel = h
        .request(
            "POST",
            &format!("/api/scaffolder/v2/tasks/{id}/cancel"),
            &[],
            b"",
        )
        .await;
    assert_eq!(cancel.status, 409, "{}", cancel.text());
    let unknown = h
        .request("POST", "/api/scaffolder/v2/tasks/nope/cancel", &[], b"")
        .await;
    assert_eq!(unknown.status, 404);
    h.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relative_data_directory_publishes_and_registers() {
    // `--data .idp` is relative to the working directory: new repositories still get
    // usable file:// URLs.
    let cwd = std::env::current_dir().unwrap();
    let h = harness_at(|p| {
        let up = "../".repeat(cwd.components().count() - 1);
        std::path::PathBuf::from(up).join(p.strip_prefix("/").unwrap())
    })
    .await;
    let created = h
        .post_json(
            "/api/scaffolder/v2/tasks",
            &json!({"templateRef": "template:default/rust-service", "values": {"name": "stock", "owner": "platform-team"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let task = h.wait_task(created.json()["id"].as_str().unwrap()).await;
    assert_eq!(task["status"], "completed", "{task}");
    let entity = h
        .get("/api/catalog/entities/by-name/component/default/stock")
        .await;
    assert_eq!(entity.status, 200);
    h.server.shutdown().await.unwrap();
}

const BROKEN: &str = r#"apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: broken-service
  title: Broken service
spec:
  type: service
  owner: group:default/platform-team
  parameters:
    - required: [name, repoUrl]
      properties:
        name: {type: string}
        repoUrl: {type: string}
  steps:
    - id: write
      action: catalog:write
      input:
        entity:
          apiVersion: backstage.io/v1alpha1
          kind: Component
          metadata: {name: "${{ parameters.name }}"}
          spec: {type: service, owner: platform-team, lifecycle: experimental}
    - id: publish
      action: publish:git
      input: {repoUrl: "${{ parameters.repoUrl }}"}
    - id: boom
      action: debug:log
      input: {message: "${{ parameters.nothing.here }}"}
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_task_reports_its_step_and_leaves_no_repository() {
    let h = harness().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("template.yaml");
    std::fs::write(&file, BROKEN).unwrap();
    let registered = h
        .post_json(
            "/api/catalog/locations",
            &json!({"type": "file", "target": file.display().to_string()}),
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.text());
    let created = h
        .post_json(
            "/api/scaffolder/v2/tasks",
            &json!({"templateRef": "template:default/broken-service", "values": {"name": "fragile"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let task = h.wait_task(&id).await;
    assert_eq!(task["status"], "failed", "{task}");
    assert!(task["error"].as_str().unwrap().contains("boom"), "{task}");
    let events = h
        .get(&format!("/api/scaffolder/v2/tasks/{id}/events"))
        .await
        .json();
    let events = events.as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["body"]["stepId"] == "publish" && e["body"]["status"] == "completed")
    );
    assert!(
        events
            .iter()
            .any(|e| e["body"]["stepId"] == "boom" && e["body"]["status"] == "failed")
    );
    assert_eq!(events.last().unwrap()["body"]["status"], "failed");
    // The repository the task created is gone, and nothing was registered.
    assert!(!h.data.path().join("repos/fragile.git").exists());
    assert_eq!(
        h.get("/api/catalog/entities/by-name/component/default/fragile")
            .await
            .status,
        404
    );
    let page = h.get(&format!("/tasks/{id}")).await.text();
    assert!(page.contains("Failed:") && page.contains("boom"));
    h.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_task_requests_are_400_naming_the_field() {
    let h = harness().await;
    let post = |body: Value| {
        let h = &h;
        async move { h.post_json("/api/scaffolder/v2/tasks", &body).await }
    };
    let missing = post(json!({"templateRef": "template:default/rust-service", "values": {"owner": "payments-team"}})).await;
    assert_eq!(missing.status, 400);
    let message = missing.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("values.name"), "{message}");
    assert_eq!(missing.json()["error"]["name"], "InputError");

    let bad_pattern = post(json!({"templateRef": "template:default/rust-service", "values": {"name": "Not A Name", "owner": "payments-team"}})).await;
    assert_eq!(bad_pattern.status, 400);
    let message = bad_pattern.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("values.name"), "{message}");

    let bad_type = post(json!({"templateRef": "template:default/rust-service", "values": {"name": "cart", "owner": "payments-team", "port": "eighty"}})).await;
    assert_eq!(bad_type.status, 400);
    let message = bad_type.json()["error"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(message.contains("values.port"), "{message}");

    let outside = post(json!({"templateRef": "template:default/rust-service", "values": {"name": "cart", "owner": "payments-team", "repoUrl": "file:///tmp/elsewhere.git"}})).await;
    assert_eq!(outside.status, 400);
    assert!(
        outside.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("values.repoUrl")
    );

    let no_ref = post(json!({"values": {}})).await;
    assert_eq!(no_ref.status, 400);
    assert!(
        no_ref.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("templateRef")
    );

    let values_not_object =
        post(json!({"templateRef": "template:default/rust-service", "values": [1]})).await;
    assert_eq!(values_not_object.status, 400);
    assert!(
        values_not_object.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("values")
    );

    let not_json = h
        .request(
            "POST",
            "/api/scaffolder/v2/tasks",
            &[("Content-Type", "application/json")],
            b"{nope",
        )
        .await;
    assert_eq!(not_json.status, 400);
    assert!(
        not_json.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );

    let unknown = post(json!({"templateRef": "template:default/nope", "values": {}})).await;
    assert_eq!(unknown.status, 404);

    // Nothing ran.
    assert_eq!(
        h.get("/api/scaffolder/v2/tasks").await.json()["totalTasks"],
        0
    );
    assert!(!h.data.path().join("repos/cart.git").exists());

    // The portal form shows the problems next to the fields and keeps what was typed.
    let form = h
        .request(
            "POST",
            "/create/default/rust-service",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"name=Bad+Name%21&owner=payments-team&port=80x&replicas=2",
        )
        .await;
    assert_eq!(form.status, 400);
    let html = form.text();
    assert!(html.contains("must be a whole number"), "{html}");
    assert!(html.contains("value=\"Bad Name!\""), "{html}");
    let form = h
        .request(
            "POST",
            "/create/default/rust-service",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"name=Bad+Name%21&owner=payments-team&port=8080",
        )
        .await;
    assert_eq!(form.status, 400);
    assert!(form.text().contains("class=\"error\""));

    // A valid form starts a task and redirects to its page.
    let ok = h
        .request(
            "POST",
            "/create/default/rust-service",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"name=cart-api&owner=storefront-team&port=8081&ci=gitlab-ci&repoUrl=",
        )
        .await;
    assert_eq!(ok.status, 303, "{}", ok.text());
    let location = ok.header("location").unwrap().to_owned();
    let id = location.strip_prefix("/tasks/").unwrap();
    let task = h.wait_task(id).await;
    assert_eq!(task["status"], "completed", "{task}");
    assert_eq!(task["spec"]["parameters"]["port"], 8081);
    let entity = h
        .get("/api/catalog/entities/by-name/component/default/cart-api")
        .await
        .json();
    assert_eq!(entity["spec"]["owner"], "storefront-team");
    h.server.shutdown().await.unwrap();
}

fn github_sign(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let hex = tag.as_ref().iter().fold(String::new(), |mut acc, b| {
        let _ = write!(acc, "{b:02x}");
        acc
    });
    format!("sha256={hex}")
}

fn pull_request(action: &str, number: u64, sha: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "action": action,
        "number": number,
        "repository": {"full_name": "acme/web-shop"},
        "pull_request": {
            "number": number,
            "state": if action == "closed" { "closed" } else { "open" },
            "title": "Faster checkout",
            "draft": false,
            "merged": false,
            "user": {"login": "jane"},
            "labels": [],
            "head": {"ref": "feature/fast", "sha": sha, "repo": {"full_name": "acme/web-shop"}},
            "base": {"ref": "main"}
        }
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_pull_requests_open_and_close_previews() {
    let h = harness().await;
    let secret = h.secret();
    assert_eq!(secret.len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(h.data.path().join("webhook-secret"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let cluster = h.cluster().await;
    assert!(preview_namespaces(&cluster).await.is_empty());

    // A bad signature: 401 and nothing created.
    let body = pull_request("opened", 7, "0123456789abcdef");
    let forged = h
        .request(
            "POST",
            "/webhooks/github",
            &[
                ("X-GitHub-Event", "pull_request"),
                ("X-Hub-Signature-256", &github_sign("not-the-secret", &body)),
                ("Content-Type", "application/json"),
            ],
            &body,
        )
        .await;
    assert_eq!(forged.status, 401, "{}", forged.text());
    assert_eq!(forged.json()["error"]["name"], "AuthenticationError");
    let unsigned = h
        .request(
            "POST",
            "/webhooks/github",
            &[("X-GitHub-Event", "pull_request")],
            &body,
        )
        .await;
    assert_eq!(unsigned.status, 401);
    assert!(preview_namespaces(&cluster).await.is_empty());
    assert_eq!(h.get("/api/previews").await.json()["items"], json!([]));

    // Signed but malformed: 400 with a message, nothing created.
    let garbage = b"{\"action\": \"opened\"";
    let malformed = h
        .request(
            "POST",
            "/webhooks/github",
            &[
                ("X-GitHub-Event", "pull_request"),
                ("X-Hub-Signature-256", &github_sign(&secret, garbage)),
            ],
            garbage,
        )
        .await;
    assert_eq!(malformed.status, 400);
    assert!(
        malformed.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("JSON")
    );
    let no_repo = br#"{"action": "opened", "number": 3, "pull_request": {}}"#;
    let missing_field = h
        .request(
            "POST",
            "/webhooks/github",
            &[
                ("X-GitHub-Event", "pull_request"),
                ("X-Hub-Signature-256", &github_sign(&secret, no_repo)),
            ],
            no_repo,
        )
        .await;
    assert_eq!(missing_field.status, 400);
    assert!(
        missing_field.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("repository.full_name")
    );
    assert!(preview_namespaces(&cluster).await.is_empty());

    // A ping is fine and ignored.
    let ping = h
        .request(
            "POST",
            "/webhooks/github",
            &[
                ("X-GitHub-Event", "ping"),
                ("X-Hub-Signature-256", &github_sign(&secret, b"{}")),
            ],
            b"{}",
        )
        .await;
    assert_eq!(ping.status, 200);
    assert_eq!(ping.json()["result"], "ignored");

    // Opened: the preview's namespace exists and the preview is ready.
    let opened = h
        .request(
            "POST",
            "/webhooks/github",
            &[
                ("X-GitHub-Event", "pull_request"),
                ("X-Hub-Signature-256", &github_sign(&secret, &body)),
            ],
            &body,
        )
        .await;
    assert_eq!(opened.status, 200, "{}", opened.text());
    let outcome = opened.json();
    assert_eq!(outcome["preview"]["phase"], "ready", "{outcome}");
    let namespace = outcome["preview"]["namespace"].as_str().unwrap().to_owned();
    assert!(namespace_exists(&cluster, &namespace).await);
    assert_eq!(
        preview_namespaces(&cluster).await,
        std::slice::from_ref(&namespace)
    );

    let previews = h.get("/api/previews").await.json();
    let items = previews["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{previews}");
    assert_eq!(items[0]["preview"], "acme/web-shop#7");
    assert_eq!(items[0]["status"], "ready");
    assert_eq!(items[0]["namespace"], namespace.as_str());
    assert_eq!(items[0]["component"], "component:default/web-shop");
    assert!(items[0]["expiresAt"].as_str().unwrap().starts_with("20"));
    let page = h.get("/previews").await.text();
    assert!(page.contains("acme/web-shop#7") && page.contains("ready"));
    // The component's page lists it too.
    let entity_page = h.get("/catalog/default/component/web-shop").await.text();
    assert!(entity_page.contains("acme/web-shop#7"), "{entity_page}");
    assert!(
        !h.get("/catalog/default/component/cart-service")
            .await
            .text()
            .contains("acme/web-shop#7")
    );

    // Closed: the preview is gone, with nothing left behind.
    let closed = pull_request("closed", 7, "0123456789abcdef");
    let gone = h
        .request(
            "POST",
            "/webhooks/github",
            &[
                ("X-GitHub-Event", "pull_request"),
                ("X-Hub-Signature-256", &github_sign(&secret, &closed)),
            ],
            &closed,
        )
        .await;
    assert_eq!(gone.status, 200, "{}", gone.text());
    assert_eq!(gone.json()["preview"]["phase"], "gone", "{}", gone.text());
    assert!(!namespace_exists(&cluster, &namespace).await);
    assert!(preview_namespaces(&cluster).await.is_empty());
    assert_eq!(h.get("/api/previews").await.json()["items"], json!([]));
    h.server.shutdown().await.unwrap();
}

fn merge_request(action: &str, state: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object_kind": "merge_request",
        "user": {"username": "jane"},
        "project": {"id": 5, "path_with_namespace": "acme/payments/ledger"},
        "object_attributes": {
            "iid": 12,
            "action": action,
            "state": state,
            "title": "Ledger v2",
            "source_branch": "feature/v2",
            "target_branch": "main",
            "source_project_id": 5,
            "target_project_id": 5,
            "last_commit": {"id": "feedfacecafebeef"}
        },
        "labels": []
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitlab_merge_requests_use_the_token() {
    let h = harness().await;
    let token = h.secret();
    let cluster = h.cluster().await;
    let open = merge_request("open", "opened");
    let wrong = h
        .request(
            "POST",
            "/webhooks/gitlab",
            &[
                ("X-Gitlab-Event", "Merge Request Hook"),
                ("X-Gitlab-Token", "guess"),
            ],
            &open,
        )
        .await;
    assert_eq!(wrong.status, 401);
    assert!(preview_namespaces(&cluster).await.is_empty());

    let opened = h
        .request(
            "POST",
            "/webhooks/gitlab",
            &[
                ("X-Gitlab-Event", "Merge Request Hook"),
                ("X-Gitlab-Token", &token),
            ],
            &open,
        )
        .await;
    assert_eq!(opened.status, 200, "{}", opened.text());
    assert_eq!(
        opened.json()["preview"]["phase"],
        "ready",
        "{}",
        opened.text()
    );
    let namespace = opened.json()["preview"]["namespace"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(namespace_exists(&cluster, &namespace).await);
    assert_eq!(
        h.get("/api/previews").await.json()["items"][0]["preview"],
        "acme/payments/ledger#12"
    );

    let close = merge_request("close", "closed");
    let closed = h
        .request(
            "POST",
            "/webhooks/gitlab",
            &[
                ("X-Gitlab-Event", "Merge Request Hook"),
                ("X-Gitlab-Token", &token),
            ],
            &close,
        )
        .await;
    assert_eq!(closed.status, 200, "{}", closed.text());
    assert!(!namespace_exists(&cluster, &namespace).await);
    assert!(preview_namespaces(&cluster).await.is_empty());
    h.server.shutdown().await.unwrap();
}

fn review(object: &Value) -> Value {
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": object["kind"]},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": object["metadata"]["name"],
            "namespace": "shop",
            "operation": "CREATE",
            "userInfo": {"username": "jane"},
            "object": object
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_reviews_round_trip() {
    use base64::Engine as _;
    let h = harness().await;
    let privileged = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "root-shell", "namespace": "shop"},
        "spec": {"hostNetwork": true, "containers": [{"name": "sh", "image": "busybox:1.36",
            "securityContext": {"privileged": true}}]}
    });
    let answer = h
        .post_json("/admission/validate", &review(&privileged))
        .await;
    assert_eq!(answer.status, 200);
    let answer = answer.json();
    assert_eq!(answer["kind"], "AdmissionReview");
    assert_eq!(
        answer["response"]["uid"],
        "705ab4f5-6393-11e8-b7cc-42010a800002"
    );
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    let message = answer["response"]["status"]["message"].as_str().unwrap();
    assert!(message.contains("privileged"), "{message}");
    assert!(message.to_lowercase().contains("host"), "{message}");

    let plain = json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "shop"},
        "data": {"a": "b"}
    });
    let allowed = h
        .post_json("/admission/validate", &review(&plain))
        .await
        .json();
    assert_eq!(allowed["response"]["allowed"], true, "{allowed}");

    let mutated = h
        .post_json("/admission/mutate", &review(&plain))
        .await
        .json();
    let response = &mutated["response"];
    assert_eq!(response["allowed"], true, "{mutated}");
    assert_eq!(response["patchType"], "JSONPatch");
    let patch = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().unwrap())
        .unwrap();
    let patch: Value = serde_json::from_slice(&patch).unwrap();
    let ops = patch.as_array().unwrap();
    assert!(!ops.is_empty());
    assert!(
        ops.iter()
            .all(|op| op["op"].is_string() && op["path"].as_str().unwrap().starts_with('/')),
        "{patch}"
    );
    assert!(patch.to_string().contains("labels"), "{patch}");

    // A malformed review is refused in the review itself, as Kubernetes expects.
    let broken = h
        .request(
            "POST",
            "/admission/validate",
            &[("Content-Type", "application/json")],
            b"{oops",
        )
        .await;
    assert_eq!(broken.status, 200);
    let broken = broken.json();
    assert_eq!(broken["response"]["allowed"], false);
    assert_eq!(broken["response"]["status"]["code"], 400);
    h.server.shutdown().await.unwrap();
}

const KYVERNO: &str = r#"
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: team}
spec:
  validationFailureAction: Enforce
  rules:
    - name: default-team
      match: {any: [{resources: {kinds: [ConfigMap]}}]}
      mutate:
        patchStrategicMerge:
          metadata:
            labels:
              +(acme.dev/team): platform
    - name: no-scratch-team
      match: {any: [{resources: {kinds: [ConfigMap]}}]}
      validate:
        message: "the scratch team is gone"
        pattern:
          metadata:
            =(labels):
              =(acme.dev/team): "!scratch"
    # Appending is not idempotent: the validating webhook must not mutate again.
    - name: audit-finalizer
      match: {any: [{resources: {kinds: [ConfigMap]}}]}
      mutate:
        patchesJson6902: |-
          - op: add
            path: /metadata/finalizers/-
            value: acme.dev/audit
    - name: one-finalizer
      match: {any: [{resources: {kinds: [ConfigMap]}}]}
      validate:
        message: "at most one finalizer"
        deny:
          conditions:
            any:
              - key: "{{ length(request.object.metadata.finalizers || `[]`) }}"
                operator: GreaterThan
                value: 1
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kyverno_policies_from_the_config_validate_and_mutate() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("team.yaml");
    std::fs::write(&file, KYVERNO).unwrap();
    let assign = dir.path().join("assign.yaml");
    std::fs::write(
        &assign,
        "apiVersion: mutations.gatekeeper.sh/v1\nkind: AssignMetadata\nmetadata: {name: tier}\nspec:\n  location: metadata.labels.tier\n  parameters: {assign: {value: backend}}\n",
    )
    .unwrap();
    let mut config = Config::default();
    config.policy.kyverno = vec![file];
    config.policy.gatekeeper_mutators = vec![assign];
    let h = harness_with(config, std::path::Path::to_path_buf).await;

    let scratch = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "shop", "labels": {"acme.dev/team": "scratch"}}});
    let rows = h
        .post_json("/api/policy/check?guardrails=false", &scratch)
        .await;
    assert_eq!(rows.status, 200, "{}", rows.text());
    let rows = rows.json();
    assert_eq!(rows[0]["allowed"], false, "{rows}");
    assert_eq!(
        rows[0]["violations"][0]["rule"], "team/no-scratch-team",
        "{rows}"
    );
    let denied = h
        .post_json("/admission/validate", &review(&scratch))
        .await
        .json();
    assert_eq!(denied["response"]["allowed"], false, "{denied}");

    let plain = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "shop"}});
    let mutated = h
        .post_json("/admission/mutate", &review(&plain))
        .await
        .json();
    let patch = base64::engine::general_purpose::STANDARD
        .decode(mutated["response"]["patch"].as_str().unwrap())
        .unwrap();
    let patch = String::from_utf8(patch).unwrap();
    // With idp's default labels, the labels map is added whole.
    assert!(patch.contains("\"acme.dev/team\":\"platform\""), "{patch}");
    assert!(patch.contains("\"tier\":\"backend\""), "{patch}");
    // The API server sends what the mutating webhook produced to the validating one,
    // which checks it as given: one finalizer, allowed.
    let patch: json_patch::Patch = serde_json::from_str(&patch).unwrap();
    let mut admitted = plain.clone();
    json_patch::patch(&mut admitted, &patch).unwrap();
    assert_eq!(
        admitted["metadata"]["finalizers"],
        json!(["acme.dev/audit"])
    );
    let allowed = h
        .post_json("/admission/validate", &review(&admitted))
        .await
        .json();
    assert_eq!(allowed["response"]["allowed"], true, "{allowed}");
    h.server.shutdown().await.unwrap();

    // A policy file that cannot be loaded stops the start, naming it.
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, KYVERNO.replace("mutate:", "generate:")).unwrap();
    let mut config = Config::default();
    config.policy.kyverno = vec![bad];
    let text = start_error(config).await;
    assert!(
        text.contains("bad.yaml") && text.contains("generate"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_reaper_removes_expired_previews() {
    let config = Config {
        previews: idp_examples::server::config::PreviewsConfig {
            reap_seconds: 1,
            ..Default::default()
        },
        ..Config::default()
    };
    let h = harness_with(config, std::path::Path::to_path_buf).await;
    let secret = h.secret();
    let cluster = h.cluster().await;
    let mut namespaces = Vec::new();
    for number in [8, 9] {
        let body = pull_request("opened", number, "00aa11bb");
        let opened = h
            .request(
                "POST",
                "/webhooks/github",
                &[
                    ("X-GitHub-Event", "pull_request"),
                    ("X-Hub-Signature-256", &github_sign(&secret, &body)),
                ],
                &body,
            )
            .await;
        assert_eq!(
            opened.json()["preview"]["phase"],
            "ready",
            "{}",
            opened.text()
        );
        namespaces.push(
            opened.json()["preview"]["namespace"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Preview 8 expired an hour ago (as if nobody pushed for the whole TTL).
    let past = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1)).to_string();
    kube::Api::<Namespace>::all(cluster.clone())
        .patch(
            &namespaces[0],
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(
                json!({"metadata": {"annotations": {"idp.dev/expires-at": past}}}),
            ),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while namespace_exists(&cluster, &namespaces[0]).await {
        assert!(
            Instant::now() < deadline,
            "the reaper did not remove the expired preview"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The other one is kept: its pull request is open and it has not expired.
    assert!(namespace_exists(&cluster, &namespaces[1]).await);
    let items = h.get("/api/previews").await.json()["items"].clone();
    assert_eq!(items.as_array().unwrap().len(), 1, "{items}");
    assert_eq!(items[0]["preview"], "acme/web-shop#9");
    h.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaffolding_a_name_the_catalog_already_has_fails_and_leaves_it_alone() {
    let h = harness().await;
    let before = h
        .get("/api/catalog/entities/by-name/component/default/ledger")
        .await
        .json();
    assert!(
        before["metadata"]["annotations"]["backstage.io/managed-by-location"]
            .as_str()
            .unwrap()
            .contains("catalog.git@"),
        "the seed holds a component named ledger: {before}"
    );
    let created = h
        .post_json(
            "/api/scaffolder/v2/tasks",
            &json!({"templateRef": "template:default/rust-service", "values": {"name": "ledger", "owner": "payments-team"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text());
    let task = h.wait_task(created.json()["id"].as_str().unwrap()).await;
    assert_eq!(task["status"], "failed", "{task}");
    assert!(
        task.to_string().contains("already in the catalog"),
        "{task}"
    );
    // The seed's entity is untouched and the new repository is gone again.
    let after = h
        .get("/api/catalog/entities/by-name/component/default/ledger")
        .await
        .json();
    assert_eq!(after, before);
    assert!(!h.data.path().join("repos/ledger.git").exists());
    h.server.shutdown().await.unwrap();
}

/// `policy.gatekeeper`, `policy.rego` and `policy.admissionPolicies`: loaded at start and
/// applied by the check route and the validating webhook; a bad file stops the start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatekeeper_rego_and_admission_policy_files_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("template.yaml");
    std::fs::write(
        &template,
        "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: k8snoprivileged}\nspec:\n  crd: {spec: {names: {kind: K8sNoPrivileged}}}\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      rego: |\n        package k8snoprivileged\n        violation[{\"msg\": msg}] {\n          c := input.review.object.spec.containers[_]\n          c.securityContext.privileged\n          msg := sprintf(\"privileged container %v\", [c.name])\n        }\n",
    )
    .unwrap();
    let constraints = dir.path().join("constraints.yaml");
    std::fs::write(
        &constraints,
        "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: K8sNoPrivileged\nmetadata: {name: no-privileged}\nspec:\n  match: {kinds: [{apiGroups: [''], kinds: [Pod]}]}\n---\napiVersion: expansion.gatekeeper.sh/v1beta1\nkind: ExpansionTemplate\nmetadata: {name: expand-deployments}\nspec:\n  applyTo: [{groups: [apps], kinds: [Deployment], versions: [v1]}]\n  templateSource: spec.template\n  generatedGVK: {group: '', version: v1, kind: Pod}\n",
    )
    .unwrap();
    let rego = dir.path().join("team.rego");
    std::fs::write(
        &rego,
        "package main\n\ndeny contains msg if {\n\tinput.kind == \"Deployment\"\n\tnot input.metadata.labels.team\n\tmsg := \"deployments need a team label\"\n}\n",
    )
    .unwrap();
    let vap = dir.path().join("vap.yaml");
    std::fs::write(
        &vap,
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicy\nmetadata: {name: max-replicas}\nspec:\n  matchConstraints:\n    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}]\n  validations:\n    - expression: object.spec.replicas <= 5\n      message: at most 5 replicas\n---\napiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingAdmissionPolicyBinding\nmetadata: {name: max-replicas}\nspec:\n  policyName: max-replicas\n  validationActions: [Deny]\n",
    )
    .unwrap();
    let mut config = Config::default();
    config.policy.gatekeeper = vec![template.clone(), constraints];
    config.policy.rego = vec![rego];
    config.policy.admission_policies = vec![vap];
    let h = harness_with(config, std::path::Path::to_path_buf).await;

    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop"},
        "spec": {"replicas": 9, "template": {"metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "app", "image": "app:1",
                "securityContext": {"privileged": true}}]}}}});
    let rows = h
        .post_json("/api/policy/check?guardrails=false&pss=none", &deployment)
        .await;
    assert_eq!(rows.status, 200, "{}", rows.text());
    let rows = rows.json();
    assert_eq!(rows[0]["allowed"], false, "{rows}");
    let messages: Vec<&str> = rows[0]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["message"].as_str().unwrap())
        .collect();
    for want in [
        "[Implied by expand-deployments] privileged container app",
        "deployments need a team label",
        "at most 5 replicas",
    ] {
        assert!(messages.iter().any(|m| m.contains(want)), "{want}: {rows}");
    }
    let denied = h
        .post_json("/admission/validate", &review(&deployment))
        .await
        .json();
    assert_eq!(denied["response"]["allowed"], false, "{denied}");
    h.server.shutdown().await.unwrap();

    // A template whose Rego does not compile stops the start, naming the field and file.
    let lonely = dir.path().join("lonely.yaml");
    std::fs::write(&lonely, "apiVersion: templates.gatekeeper.sh/v1\nkind: ConstraintTemplate\nmetadata: {name: broken}\nspec:\n  crd: {spec: {names: {kind: K8sBroken}}}\n  targets:\n    - target: admission.k8s.gatekeeper.sh\n      rego: 'package broken\n\n        violation[{\"msg\": m}] { m := }'\n").unwrap();
    let mut config = Config::default();
    config.policy.gatekeeper = vec![lonely];
    let text = start_error(config).await;
    assert!(
        text.contains("policy.gatekeeper") && text.contains("lonely.yaml"),
        "{text}"
    );
}

/// `policy.admissionPolicies` reads Kyverno ValidatingPolicies and their PolicyExceptions
/// (policies.kyverno.io) from separate files, the exceptions listed first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admission_policy_files_carry_kyverno_exceptions_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let exception = dir.path().join("polex.yaml");
    std::fs::write(
        &exception,
        "apiVersion: policies.kyverno.io/v1\nkind: PolicyException\nmetadata: {name: batch, namespace: kyverno}\nspec:\n  policyRefs: [{name: max-replicas, kind: ValidatingPolicy}]\n  matchConditions:\n    - {name: batch, expression: \"request.namespace == 'batch'\"}\n",
    )
    .unwrap();
    let vpol = dir.path().join("vpol.yaml");
    std::fs::write(
        &vpol,
        "apiVersion: policies.kyverno.io/v1\nkind: ValidatingPolicy\nmetadata: {name: max-replicas}\nspec:\n  validationActions: [Deny]\n  matchConstraints:\n    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}]\n  validations:\n    - expression: object.spec.replicas <= 5\n      message: at most 5 replicas\n",
    )
    .unwrap();
    let mut config = Config::default();
    config.policy.admission_policies = vec![exception, vpol];
    let h = harness_with(config, std::path::Path::to_path_buf).await;
    let deployment = |namespace: &str| {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": namespace},
            "spec": {"replicas": 9, "template": {"spec": {"containers": [{"name": "app", "image": "app:1"}]}}}})
    };
    let check = |namespace: &'static str| {
        let h = &h;
        let body = deployment(namespace);
        async move {
            let rows = h
                .post_json("/api/policy/check?guardrails=false&pss=none", &body)
                .await;
            assert_eq!(rows.status, 200, "{}", rows.text());
            rows.json()
        }
    };
    let shop = check("shop").await;
    assert_eq!(shop[0]["allowed"], false, "{shop}");
    assert_eq!(
        shop[0]["violations"][0]["message"], "at most 5 replicas",
        "{shop}"
    );
    let batch = check("batch").await;
    assert_eq!(batch[0]["allowed"], true, "{batch}");
    h.server.shutdown().await.unwrap();
}

/// Start a server with `config`, which must fail: the error's report.
async fn start_error(config: Config) -> String {
    let data = tempfile::tempdir().unwrap();
    let Err(err) = start(ServerOptions {
        listen: Some("127.0.0.1:0".into()),
        data: Some(data.path().to_path_buf()),
        simulated_cluster: true,
        ..ServerOptions::new(config)
    })
    .await
    else {
        panic!("the server started with a policy file it cannot load");
    };
    err.report()
}

#[tokio::test]
async fn policy_audit_checks_what_runs_in_the_cluster() {
    let h = harness().await;
    let client = h.cluster().await;
    let ns = "audited";
    kube::Api::<Namespace>::all(client.clone())
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    let pods = kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client, ns);
    for (name, privileged) in [("debug", true), ("web", false)] {
        let pod = json!({"metadata": {"name": name},
            "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/app:1.0",
                "securityContext": {"privileged": privileged}}]}});
        pods.create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(pod).unwrap(),
        )
        .await
        .unwrap();
    }

    let found = h
        .get(&format!(
            "/api/policy/audit?kind=Pod&namespace={ns}&guardrails=false"
        ))
        .await;
    assert_eq!(found.status, 200, "{}", found.text());
    let found = found.json();
    assert_eq!(found["report"]["objectsChecked"], 2, "{found}");
    assert_eq!(found["report"]["denied"], 1, "{found}");
    let sample = &found["report"]["sample"][0];
    assert_eq!(sample["rule"], "privileged", "{found}");
    assert_eq!(sample["object"]["name"], "debug", "{found}");
    assert_eq!(found["listing"]["kinds"][0]["kind"], "Pod");
    assert_eq!(found["listing"]["kinds"][0]["objects"], 2);

    // Without Pod Security Standards, nothing is denied.
    let found = h
        .get(&format!(
            "/api/policy/audit?kind=Pod&namespace={ns}&guardrails=false&pss=none"
        ))
        .await
        .json();
    assert_eq!(found["report"]["denied"], 0, "{found}");

    let unknown = h.get("/api/policy/audit?kind=Widget.example.com").await;
    assert_eq!(unknown.status, 404, "{}", unknown.text());
    assert!(
        unknown.text().contains("Widget.example.com"),
        "{}",
        unknown.text()
    );
    let bad = h.get("/api/policy/audit?pss=strict").await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    let bad = h
        .get("/api/policy/audit?kind=Pod&skipControlled=maybe")
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("skipControlled"), "{}", bad.text());
}

#[tokio::test]
async fn the_periodic_audit_can_write_one_report_per_object() {
    let mut config = Config::default();
    config.policy.guardrails = false;
    config.policy.audit = Some(
        serde_saphyr::from_str(
            "intervalSeconds: 1\nkinds: [Pod]\nexcludeNamespaces: [kube-system]\nreportLayout: perResource\nskipControlled: true\n",
        )
        .unwrap(),
    );
    let h = harness_with(config, std::path::Path::to_path_buf).await;
    let client = h.cluster().await;
    create_crds(&client, idp_testkit::policy_report_crds()).await;
    let pods = kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), "default");
    let pod = json!({"metadata": {"name": "debug"},
        "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/app:1.0",
            "securityContext": {"privileged": true}}]}});
    let pod = pods
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(pod).unwrap(),
        )
        .await
        .unwrap();
    let uid = pod.metadata.uid.unwrap();
    let reports = dynamic(
        &client,
        "wgpolicyk8s.io/v1alpha2",
        "PolicyReport",
        Some("default"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        if let Some(r) = reports.get_opt(&uid).await.unwrap() {
            break serde_json::to_value(&r).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "no policy report named by the Pod's UID"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(report["scope"]["name"], "debug", "{report}");
    assert_eq!(
        report["metadata"]["ownerReferences"][0]["uid"],
        uid.as_str()
    );
    assert_eq!(report["summary"]["fail"], 1, "{report}");
    assert!(
        reports.get_opt("idp-policy").await.unwrap().is_none(),
        "no per-namespace report"
    );
}

/// Create `crds` in the server's cluster.
async fn create_crds(client: &kube::Client, crds: impl IntoIterator<Item = Value>) {
    let api = dynamic(
        client,
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        None,
    );
    for crd in crds {
        api.create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(crd).unwrap(),
        )
        .await
        .unwrap();
    }
}

fn dynamic(
    client: &kube::Client,
    api_version: &str,
    kind: &str,
    namespace: Option<&str>,
) -> kube::Api<kube::api::DynamicObject> {
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    let resource = kube::discovery::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        group, version, kind,
    ));
    match namespace {
        Some(ns) => kube::Api::namespaced_with(client.clone(), ns, &resource),
        None => kube::Api::all_with(client.clone(), &resource),
    }
}

#[tokio::test]
async fn the_periodic_audit_keeps_policy_reports_in_the_cluster() {
    let mut config = Config::default();
    config.policy.guardrails = false;
    config.policy.audit = Some(
        serde_saphyr::from_str(
            "intervalSeconds: 1\nkinds: [Pod]\nexcludeNamespaces: [kube-system]\n",
        )
        .unwrap(),
    );
    let h = harness_with(config, std::path::Path::to_path_buf).await;
    let client = h.cluster().await;
    create_crds(&client, idp_testkit::policy_report_crds()).await;
    let ns = "audited";
    kube::Api::<Namespace>::all(client.clone())
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}})).unwrap(),
        )
        .await
        .unwrap();
    let pods = kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), ns);
    let pod = json!({"metadata": {"name": "debug"},
        "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/app:1.0",
            "securityContext": {"privileged": true}}]}});
    pods.create(
        &kube::api::PostParams::default(),
        &serde_json::from_value(pod).unwrap(),
    )
    .await
    .unwrap();
    // Someone else's report, which the audit must leave alone.
    let foreign = json!({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
        "metadata": {"name": "someone-else", "namespace": ns}, "results": []});
    let reports = dynamic(&client, "wgpolicyk8s.io/v1alpha2", "PolicyReport", Some(ns));
    reports
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(foreign).unwrap(),
        )
        .await
        .unwrap();

    // The next audit writes the finding.
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        if let Some(r) = reports.get_opt("idp-policy").await.unwrap() {
            let value = serde_json::to_value(&r).unwrap();
            if value["summary"]["fail"].as_u64().unwrap_or(0) > 0 {
                break value;
            }
        }
        assert!(
            Instant::now() < deadline,
            "no policy report with the finding"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let failed: Vec<&Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["result"] == "fail")
        .collect();
    assert_eq!(failed[0]["rule"], "privileged", "{report}");
    assert_eq!(failed[0]["resources"][0]["name"], "debug", "{report}");
    // The metrics tell the same, for alerts.
    let metrics = h.get("/metrics").await.text();
    assert!(
        metrics.contains(
            "idp_policy_audit_violations{policy=\"pod-security\",rule=\"privileged\",action=\"deny\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("idp_policy_audit_objects{verdict=\"denied\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("idp_policy_audit_unreadable_kinds 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("idp_policy_audit_runs_total "),
        "{metrics}"
    );

    // Once the Pod is gone, the report is deleted; the other one stays.
    pods.delete("debug", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while reports.get_opt("idp-policy").await.unwrap().is_some() {
        assert!(
            Instant::now() < deadline,
            "the report of a namespace with nothing to report stays"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(reports.get_opt("someone-else").await.unwrap().is_some());
}

use crate::common::UNIQUE_INGRESS_HOST;

#[tokio::test]
async fn gatekeeper_templates_see_the_synced_cluster_as_their_inventory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("unique-host.yaml");
    std::fs::write(&file, UNIQUE_INGRESS_HOST).unwrap();
    let mut config = Config::default();
    config.policy.gatekeeper = vec![file];
    config.policy.gatekeeper_sync = Some(
        serde_saphyr::from_str("kinds: [Ingress.networking.k8s.io]\nintervalSeconds: 1\n").unwrap(),
    );
    let h = harness_with(config, std::path::Path::to_path_buf).await;
    let client = h.cluster().await;
    let ingress = |namespace: &str, name: &str, host: &str| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"rules": [{"host": host}]}})
    };
    dynamic(&client, "networking.k8s.io/v1", "Ingress", Some("default"))
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(ingress("default", "old-shop", "shop.example.com")).unwrap(),
        )
        .await
        .unwrap();

    // Once synced, a second Ingress for the host is denied, naming the first.
    let new = ingress("shop", "storefront", "shop.example.com");
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let rows = h
            .post_json("/api/policy/check?pss=none&guardrails=false", &new)
            .await
            .json();
        if rows[0]["allowed"] == false {
            break rows;
        }
        assert!(Instant::now() < deadline, "never denied: {rows}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let message = rows[0]["violations"][0]["message"].as_str().unwrap();
    assert!(
        message.contains("already served by Ingress default/old-shop"),
        "{rows}"
    );
    // Another host is fine.
    let rows = h
        .post_json(
            "/api/policy/check?pss=none&guardrails=false",
            &ingress("shop", "docs", "docs.example.com"),
        )
        .await
        .json();
    assert_eq!(rows[0]["allowed"], true, "{rows}");
}

#[tokio::test]
async fn a_gatekeeper_config_names_the_synced_kinds_and_the_namespaces_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("unique-host.yaml");
    std::fs::write(&template, UNIQUE_INGRESS_HOST).unwrap();
    let gk_config = dir.path().join("config.yaml");
    std::fs::write(
        &gk_config,
        "apiVersion: config.gatekeeper.sh/v1alpha1\nkind: Config\nmetadata: {name: config, namespace: gatekeeper-system}\nspec:\n  sync:\n    syncOnly: [{group: networking.k8s.io, version: v1, kind: Ingress}]\n  match:\n    - {excludedNamespaces: ['kube-*'], processes: ['*']}\n    - {excludedNamespaces: [default], processes: [audit]}\n",
    )
    .unwrap();
    let mut config = Config::default();
    config.policy.gatekeeper = vec![template, gk_config];
    // No kinds: the Config's syncOnly.
    config.policy.gatekeeper_sync = Some(serde_saphyr::from_str("intervalSeconds: 1\n").unwrap());
    let h = harness_with(config, std::path::Path::to_path_buf).await;
    let client = h.cluster().await;
    let ingress = |namespace: &str, name: &str, host: &str| {
        json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"rules": [{"host": host}]}})
    };
    for (ns, name, host) in [
        ("kube-system", "dashboard", "docs.example.com"),
        ("default", "old-shop", "shop.example.com"),
    ] {
        dynamic(&client, "networking.k8s.io/v1", "Ingress", Some(ns))
            .create(
                &kube::api::PostParams::default(),
                &serde_json::from_value(ingress(ns, name, host)).unwrap(),
            )
            .await
            .unwrap();
    }
    let check = |object: Value| {
        let h = &h;
        async move {
            h.post_json("/api/policy/check?pss=none&guardrails=false", &object)
                .await
                .json()
        }
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = check(ingress("shop", "storefront", "shop.example.com")).await;
        if rows[0]["allowed"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "never synced: {rows}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Synced in the same read, kube-system's Ingress was left out of the inventory...
    let rows = check(ingress("shop", "docs", "docs.example.com")).await;
    assert_eq!(rows[0]["allowed"], true, "{rows}");
    // ... and objects in kube-system are not checked by the constraints.
    let rows = check(ingress("kube-system", "copy", "shop.example.com")).await;
    assert_eq!(rows[0]["allowed"], true, "{rows}");

    // The audit leaves out default (its Config entry names the audit only): with a
    // second Ingress for the shop's host synced, only that one is reported.
    kube::Api::<Namespace>::all(client.clone())
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "shop"}})).unwrap(),
        )
        .await
        .unwrap();
    dynamic(&client, "networking.k8s.io/v1", "Ingress", Some("shop"))
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(ingress("shop", "storefront", "shop.example.com")).unwrap(),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let found = h
        .get("/api/policy/audit?kind=Ingress.networking.k8s.io&pss=none&guardrails=false")
        .await
        .json();
    assert_eq!(found["report"]["denied"], 1, "{found}");
    assert_eq!(
        found["report"]["sample"][0]["object"]["name"], "storefront",
        "{found}"
    );
}

#[tokio::test]
async fn gatekeeper_policies_kept_in_the_cluster_apply_and_their_constraints_get_audit_status() {
    let mut config = Config::default();
    config.policy.guardrails = false;
    config.policy.gatekeeper_sync =
        Some(serde_saphyr::from_str("fromCluster: true\nintervalSeconds: 1\n").unwrap());
    config.policy.audit = Some(
        serde_saphyr::from_str("intervalSeconds: 1\nkinds: [Namespace]\nwriteReports: false\n")
            .unwrap(),
    );
    let h = harness_with(config, std::path::Path::to_path_buf).await;
    let client = h.cluster().await;
    // Gatekeeper's CRDs: templates, Config and the constraint kind, as Gatekeeper
    // creates it (with its status subresource).
    create_crds(
        &client,
        idp_testkit::gatekeeper_crds(&["K8sRequiredLabels"]),
    )
    .await;
    let templates = dynamic(
        &client,
        "templates.gatekeeper.sh/v1",
        "ConstraintTemplate",
        None,
    );
    let template = |name: &str, kind: &str, rego: &str| {
        json!({"apiVersion": "templates.gatekeeper.sh/v1", "kind": "ConstraintTemplate",
            "metadata": {"name": name},
            "spec": {"crd": {"spec": {"names": {"kind": kind}}},
                "targets": [{"target": "admission.k8s.gatekeeper.sh", "rego": rego}]}})
    };
    for t in [
        // A template that does not compile: left out, the other still applies.
        template("k8sbroken", "K8sBroken", "package k8sbroken\nviolation[{"),
        template(
            "k8srequiredlabels",
            "K8sRequiredLabels",
            "package k8srequiredlabels\nviolation[{\"msg\": msg}] {\n  required := input.parameters.labels[_]\n  not input.review.object.metadata.labels[required]\n  msg := sprintf(\"you must provide label %v\", [required])\n}\n",
        ),
    ] {
        templates
            .create(
                &kube::api::PostParams::default(),
                &serde_json::from_value(t).unwrap(),
            )
            .await
            .unwrap();
    }
    // Gatekeeper names a constraint kind's plural by its lower-cased kind.
    let mut resource = kube::discovery::ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk(
        "constraints.gatekeeper.sh",
        "v1beta1",
        "K8sRequiredLabels",
    ));
    resource.plural = "k8srequiredlabels".to_owned();
    let constraints: kube::Api<kube::api::DynamicObject> =
        kube::Api::all_with(client.clone(), &resource);
    constraints
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "constraints.gatekeeper.sh/v1beta1", "kind": "K8sRequiredLabels",
                "metadata": {"name": "namespaces-have-an-owner"},
                "spec": {"match": {"kinds": [{"apiGroups": [""], "kinds": ["Namespace"]}]},
                    "parameters": {"labels": ["owner"]}}}))
            .unwrap(),
        )
        .await
        .unwrap();

    // Once synced, the check route applies the constraint.
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
    let deadline = Instant::now() + Duration::from_secs(30);
    let rows = loop {
        let rows = h
            .post_json("/api/policy/check?pss=none&guardrails=false", &namespace)
            .await
            .json();
        if rows[0]["allowed"] == false {
            break rows;
        }
        assert!(Instant::now() < deadline, "never applied: {rows}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        rows[0]["violations"][0]["message"], "you must provide label owner",
        "{rows}"
    );

    // The audit writes what it found into the constraint's status.
    let status = loop {
        let c = constraints.get("namespaces-have-an-owner").await.unwrap();
        let value = serde_json::to_value(&c).unwrap();
        if value["status"]["totalViolations"].as_u64().unwrap_or(0) > 0 {
            break value["status"].clone();
        }
        assert!(Instant::now() < deadline, "no status: {value}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let violation = &status["violations"][0];
    assert_eq!(violation["kind"], "Namespace", "{status}");
    assert_eq!(violation["version"], "v1", "{status}");
    assert_eq!(violation["enforcementAction"], "deny", "{status}");
    assert_eq!(
        violation["message"], "you must provide label owner",
        "{status}"
    );
    assert!(status["auditTimestamp"].is_string(), "{status}");
    assert_eq!(
        status["totalViolations"].as_u64(),
        Some(status["violations"].as_array().unwrap().len() as u64),
        "{status}"
    );
}

#[tokio::test]
async fn the_periodic_audit_scans_with_the_kyverno_policies_kept_in_the_cluster() {
    let mut config = Config::default();
    config.policy.guardrails = false;
    config.policy.audit = Some(
        serde_saphyr::from_str(
            "intervalSeconds: 1\nkinds: [Namespace]\nwriteReports: false\nkyvernoFromCluster: true\n",
        )
        .unwrap(),
    );
    let h = harness_with(config, std::path::Path::to_path_buf).await;
    let client = h.cluster().await;
    create_crds(&client, idp_testkit::kyverno_crds()).await;
    dynamic(&client, "kyverno.io/v1", "ClusterPolicy", None)
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(
                json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
                "metadata": {"name": "namespaces-have-an-owner"},
                "spec": {"validationFailureAction": "Audit", "background": true,
                    "rules": [{"name": "check-owner",
                        "match": {"any": [{"resources": {"kinds": ["Namespace"]}}]},
                        "validate": {"message": "label owner is required",
                            "pattern": {"metadata": {"labels": {"owner": "?*"}}}}}]}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    // The next audit reads the policy and scans the Namespaces with it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = h.get("/metrics").await.text();
        // Audit is the policy's action: reported, not denied.
        if metrics.contains(
            "idp_policy_audit_violations{policy=\"kyverno-cluster\",rule=\"namespaces-have-an-owner/check-owner\",action=\"audit\"}",
        ) {
            break;
        }
        assert!(Instant::now() < deadline, "never scanned: {metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `policy.audit.admissionPoliciesFromCluster`: a ValidatingAdmissionPolicy added to the
/// cluster after a Deployment was admitted finds it at the next audit.
#[tokio::test]
async fn the_periodic_audit_scans_with_the_admission_policies_kept_in_the_cluster() {
    let mut config = Config::default();
    config.policy.guardrails = false;
    config.policy.audit = Some(
        serde_saphyr::from_str(
            "intervalSeconds: 1\nkinds: [Deployment.apps]\nwriteReports: false\nadmissionPoliciesFromCluster: true\n",
        )
        .unwrap(),
    );
    let h = harness_with(config, std::path::Path::to_path_buf).await;
    let client = h.cluster().await;
    dynamic(&client, "apps/v1", "Deployment", Some("default"))
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web", "namespace": "default"},
                "spec": {"replicas": 6, "selector": {"matchLabels": {"app": "web"}},
                    "template": {"metadata": {"labels": {"app": "web"}},
                        "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/app:1.0"}]}}}}))
            .unwrap(),
        )
        .await
        .unwrap();
    for (kind, object) in [
        (
            "ValidatingAdmissionPolicy",
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": "max-replicas"},
            "spec": {"matchConstraints": {"resourceRules": [{"apiGroups": ["apps"], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}]},
                "validations": [{"expression": "object.spec.replicas <= 4", "message": "at most 4 replicas"}]}}),
        ),
        (
            "ValidatingAdmissionPolicyBinding",
            json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": "max-replicas"},
            "spec": {"policyName": "max-replicas", "validationActions": ["Deny"]}}),
        ),
    ] {
        dynamic(&client, "admissionregistration.k8s.io/v1", kind, None)
            .create(
                &kube::api::PostParams::default(),
                &serde_json::from_value(object).unwrap(),
            )
            .await
            .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = h.get("/metrics").await.text();
        if metrics.contains("idp_policy_audit_violations{policy=\"admission-policies-cluster\"") {
            break;
        }
        assert!(Instant::now() < deadline, "never scanned: {metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `policy.gatekeeperSync.fromCluster`: an AssignMetadata applied to the cluster joins
/// the mutating webhook at the next sync, with a Gatekeeper Config's mutation exclusions;
/// deleted, it stops.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatekeeper_mutators_kept_in_the_cluster_mutate_at_admission() {
    use base64::Engine as _;
    let mut config = Config::default();
    config.policy.guardrails = false;
    config.policy.gatekeeper_sync =
        Some(serde_saphyr::from_str("fromCluster: true\nintervalSeconds: 1\n").unwrap());
    let h = harness_with(config, std::path::Path::to_path_buf).await;
    let client = h.cluster().await;
    create_crds(&client, idp_testkit::gatekeeper_crds(&[])).await;
    create_crds(&client, idp_testkit::gatekeeper_mutation_crds()).await;
    dynamic(&client, "v1", "Namespace", None)
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "gatekeeper-system"}}))
                .unwrap(),
        )
        .await
        .unwrap();
    dynamic(&client, "config.gatekeeper.sh/v1alpha1", "Config", Some("gatekeeper-system"))
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(json!({"apiVersion": "config.gatekeeper.sh/v1alpha1", "kind": "Config",
                "metadata": {"name": "config", "namespace": "gatekeeper-system"},
                "spec": {"match": [{"excludedNamespaces": ["lab"], "processes": ["mutation-webhook"]}]}}))
            .unwrap(),
        )
        .await
        .unwrap();
    // Gatekeeper's plural is the lower-cased kind, not kube's guess.
    let assigns: kube::Api<kube::api::DynamicObject> = kube::Api::all_with(
        client.clone(),
        &kube::discovery::ApiResource {
            group: "mutations.gatekeeper.sh".into(),
            version: "v1".into(),
            api_version: "mutations.gatekeeper.sh/v1".into(),
            kind: "AssignMetadata".into(),
            plural: "assignmetadata".into(),
        },
    );
    assigns
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(
                json!({"apiVersion": "mutations.gatekeeper.sh/v1", "kind": "AssignMetadata",
                "metadata": {"name": "owner"},
                "spec": {"location": "metadata.annotations.owner",
                    "parameters": {"assign": {"value": "platform"}}}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let config_map = |ns: &str| {
        let mut r = review(&json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "settings", "namespace": ns}}));
        r["request"]["namespace"] = json!(ns);
        r
    };
    let patch_of = |review: &Value| {
        review["response"]["patch"].as_str().map(|p| {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(p).unwrap()).unwrap()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mutated = h
            .post_json("/admission/mutate", &config_map("shop"))
            .await
            .json();
        if patch_of(&mutated).is_some_and(|p| p.contains("\"owner\":\"platform\"")) {
            break;
        }
        assert!(Instant::now() < deadline, "never applied: {mutated}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let syncs = h.get("/api/policy/sync").await.json();
    let engines: Vec<&str> = syncs
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["engine"].as_str().unwrap())
        .collect();
    assert_eq!(engines, ["gatekeeper", "gatekeeper-mutation"], "{syncs}");
    assert_eq!(syncs[1]["loaded"], 1, "{syncs}");
    // The Config leaves lab alone.
    let lab = h
        .post_json("/admission/mutate", &config_map("lab"))
        .await
        .json();
    assert!(
        !patch_of(&lab).is_some_and(|p| p.contains("owner")),
        "{lab}"
    );

    assigns
        .delete("owner", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mutated = h
            .post_json("/admission/mutate", &config_map("shop"))
            .await
            .json();
        if !patch_of(&mutated).is_some_and(|p| p.contains("owner")) {
            break;
        }
        assert!(Instant::now() < deadline, "never removed: {mutated}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    h.server.shutdown().await.unwrap();
}

/// `policy.kyvernoSync.fromCluster`: a ClusterPolicy applied to the cluster validates at
/// the check route and the validating webhook and mutates at the mutating webhook, from
/// the next rebuild on; deleted, it stops. The audit runs the synced set instead of
/// reading the cluster's policies a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kyverno_policies_kept_in_the_cluster_apply_at_admission() {
    use base64::Engine as _;
    let mut config = Config::default();
    config.policy.guardrails = false;
    config.policy.kyverno_sync =
        Some(serde_saphyr::from_str("intervalSeconds: 1\nfromCluster: true\n").unwrap());
    config.policy.audit = Some(
        serde_saphyr::from_str(
            "intervalSeconds: 1\nkinds: [ConfigMap]\nwriteReports: false\nkyvernoFromCluster: true\n",
        )
        .unwrap(),
    );
    let h = harness_with(config, std::path::Path::to_path_buf).await;
    // Ready only once the first sync has taken effect.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = h.get("/readyz").await;
        if ready.status == 200 {
            break;
        }
        let text = ready.text();
        assert!(
            text.contains("catalog") || text.contains("policies not synced yet: kyverno"),
            "{text}"
        );
        assert!(Instant::now() < deadline, "never ready: {text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let syncs = h.get("/api/policy/sync").await.json();
    assert!(syncs[0]["lastSuccess"].is_string(), "{syncs}");
    let client = h.cluster().await;
    create_crds(&client, idp_testkit::kyverno_crds()).await;
    let scratch = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "default", "labels": {"acme.dev/team": "scratch"}}});
    dynamic(&client, "v1", "ConfigMap", Some("default"))
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(scratch.clone()).unwrap(),
        )
        .await
        .unwrap();

    // Before the policy is applied, nothing denies the ConfigMap.
    let rows = h
        .post_json("/api/policy/check?pss=none&guardrails=false", &scratch)
        .await
        .json();
    assert_eq!(rows[0]["allowed"], true, "{rows}");

    let policy: Value = serde_saphyr::from_str(KYVERNO).unwrap();
    let policies = dynamic(&client, "kyverno.io/v1", "ClusterPolicy", None);
    policies
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(policy).unwrap(),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows = h
            .post_json("/api/policy/check?pss=none&guardrails=false", &scratch)
            .await
            .json();
        if rows[0]["allowed"] == false {
            assert_eq!(
                rows[0]["violations"][0]["rule"], "team/no-scratch-team",
                "{rows}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never applied: {rows}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let denied = h
        .post_json("/admission/validate", &review(&scratch))
        .await
        .json();
    assert_eq!(denied["response"]["allowed"], false, "{denied}");
    assert!(
        denied["response"]["status"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("the scratch team is gone")),
        "{denied}"
    );
    let plain = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "shop"}});
    let mutated = h
        .post_json("/admission/mutate", &review(&plain))
        .await
        .json();
    let patch = base64::engine::general_purpose::STANDARD
        .decode(mutated["response"]["patch"].as_str().unwrap())
        .unwrap();
    let patch = String::from_utf8(patch).unwrap();
    assert!(patch.contains("\"acme.dev/team\":\"platform\""), "{patch}");

    // The audit scans with the synced set, under its name, and not a second time.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = h.get("/metrics").await.text();
        if metrics.contains(
            "idp_policy_audit_violations{policy=\"kyverno\",rule=\"team/no-scratch-team\"",
        ) {
            assert!(!metrics.contains("kyverno-cluster"), "{metrics}");
            break;
        }
        assert!(Instant::now() < deadline, "never audited: {metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A policy that does not load is left out, and said so.
    policies
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(
                json!({"apiVersion": "kyverno.io/v1", "kind": "ClusterPolicy",
                "metadata": {"name": "broken"}, "spec": {"rules": "none"}}),
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let syncs = h.get("/api/policy/sync").await.json();
        let kyverno = syncs
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["engine"] == "kyverno")
            .cloned()
            .unwrap_or_default();
        if kyverno["leftOut"][0]["object"] == "ClusterPolicy broken" {
            assert!(kyverno["loaded"].as_u64().unwrap() >= 2, "{kyverno}");
            assert!(kyverno["lastSuccess"].is_string(), "{kyverno}");
            assert!(
                kyverno["leftOut"][0]["error"]
                    .as_str()
                    .unwrap()
                    .contains("rules"),
                "{kyverno}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never said: {syncs}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = h.get("/metrics").await.text();
    assert!(
        metrics.contains("idp_policy_sync_left_out{engine=\"kyverno\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("idp_policy_sync_last_success_timestamp_seconds{engine=\"kyverno\"}"),
        "{metrics}"
    );
    // The good policy still applies.
    let denied = h
        .post_json("/admission/validate", &review(&scratch))
        .await
        .json();
    assert_eq!(denied["response"]["allowed"], false, "{denied}");

    // Deleted from the cluster, the policy stops applying at the next rebuild.
    policies
        .delete("team", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let allowed = h
            .post_json("/admission/validate", &review(&scratch))
            .await
            .json();
        if allowed["response"]["allowed"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "never removed: {allowed}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    h.server.shutdown().await.unwrap();
}

/// `policy.kyvernoSync.fromCluster` also reads Kyverno's CEL ValidatingPolicies kept in
/// the cluster (with their PolicyExceptions): they apply at the validating webhook and
/// the check route, and the audit scans with them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kyverno_validating_policies_kept_in_the_cluster_apply_at_admission() {
    let mut config = Config::default();
    config.policy.guardrails = false;
    config.policy.kyverno_sync =
        Some(serde_saphyr::from_str("intervalSeconds: 1\nfromCluster: true\n").unwrap());
    config.policy.audit = Some(
        serde_saphyr::from_str("intervalSeconds: 1\nkinds: [ConfigMap]\nwriteReports: false\n")
            .unwrap(),
    );
    let h = harness_with(config, std::path::Path::to_path_buf).await;
    let client = h.cluster().await;
    create_crds(&client, idp_testkit::kyverno_crds()).await;
    create_crds(&client, idp_testkit::kyverno_cel_crds()).await;
    for (api_version, kind, namespace, object) in [
        (
            "policies.kyverno.io/v1",
            "ValidatingPolicy",
            None,
            json!({
            "apiVersion": "policies.kyverno.io/v1", "kind": "ValidatingPolicy",
            "metadata": {"name": "configmaps-have-an-app"},
            "spec": {"validationActions": ["Deny"],
                "matchConstraints": {"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
                    "operations": ["CREATE", "UPDATE"], "resources": ["configmaps"]}]},
                "validations": [{"expression": "has(object.metadata.labels) && 'app' in object.metadata.labels",
                    "message": "an app label is required"}]}}),
        ),
        (
            "policies.kyverno.io/v1",
            "PolicyException",
            Some("default"),
            json!({
            "apiVersion": "policies.kyverno.io/v1", "kind": "PolicyException",
            "metadata": {"name": "legacy", "namespace": "default"},
            "spec": {"policyRefs": [{"name": "configmaps-have-an-app", "kind": "ValidatingPolicy"}],
                "matchConditions": [{"name": "legacy", "expression": "object.metadata.name == 'legacy'"}]}}),
        ),
        (
            "v1",
            "ConfigMap",
            Some("default"),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "bare", "namespace": "default"}}),
        ),
    ] {
        dynamic(&client, api_version, kind, namespace)
            .create(
                &kube::api::PostParams::default(),
                &serde_json::from_value(object).unwrap(),
            )
            .await
            .unwrap();
    }
    let bare = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "bare", "namespace": "shop"}});
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let denied = h
            .post_json("/admission/validate", &review(&bare))
            .await
            .json();
        if denied["response"]["allowed"] == false {
            assert!(
                denied["response"]["status"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("an app label is required")),
                "{denied}"
            );
            break;
        }
        assert!(Instant::now() < deadline, "never applied: {denied}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let legacy = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "legacy", "namespace": "shop"}});
    let allowed = h
        .post_json("/admission/validate", &review(&legacy))
        .await
        .json();
    assert_eq!(allowed["response"]["allowed"], true, "{allowed}");
    let rows = h
        .post_json("/api/policy/check?pss=none&guardrails=false", &bare)
        .await
        .json();
    assert_eq!(
        rows[0]["violations"][0]["policy"], "kyverno-validating-policies",
        "{rows}"
    );
    // The audit finds the ConfigMap already stored without the label.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let metrics = h.get("/metrics").await.text();
        if metrics.contains("idp_policy_audit_violations{policy=\"kyverno-validating-policies\"") {
            break;
        }
        assert!(Instant::now() < deadline, "never audited: {metrics}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    h.server.shutdown().await.unwrap();
}

#[tokio::test]
async fn kyverno_sync_without_files_or_cluster_stops_the_start() {
    let mut config = Config::default();
    config.policy.kyverno_sync = Some(serde_saphyr::from_str("intervalSeconds: 5\n").unwrap());
    let text = start_error(config).await;
    assert!(
        text.contains("policy.kyvernoSync") && text.contains("fromCluster"),
        "{text}"
    );
}

#[tokio::test]
async fn gatekeeper_sync_without_gatekeeper_files_stops_the_start() {
    let mut config = Config::default();
    config.policy.gatekeeper_sync = Some(serde_saphyr::from_str("kinds: [Namespace]\n").unwrap());
    let data = tempfile::tempdir().unwrap();
    let Err(err) = start(ServerOptions {
        listen: Some("127.0.0.1:0".into()),
        data: Some(data.path().to_path_buf()),
        simulated_cluster: true,
        ..ServerOptions::new(config)
    })
    .await
    else {
        panic!("the start fails");
    };
    assert!(err.to_string().contains("policy.gatekeeperSync"), "{err}");
}

#[tokio::test]
async fn the_audit_leaves_out_validating_policies_kept_from_background_scans() {
    let dir = tempfile::tempdir().unwrap();
    let vpol = dir.path().join("team.yaml");
    std::fs::write(
        &vpol,
        "apiVersion: policies.kyverno.io/v1\nkind: ValidatingPolicy\nmetadata: {name: team}\nspec:\n  validationActions: [Deny]\n  evaluation: {background: {enabled: false}}\n  matchConstraints:\n    resourceRules: [{apiGroups: [''], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]\n  validations:\n    - expression: has(object.metadata.labels) && 'team' in object.metadata.labels\n      message: a team label is required\n",
    )
    .unwrap();
    let mut config = Config::default();
    config.policy.admission_policies = vec![vpol];
    let h = harness_with(config, std::path::Path::to_path_buf).await;
    let client = h.cluster().await;
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/app:1.0"}]}});
    kube::Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client, "default")
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(pod.clone()).unwrap(),
        )
        .await
        .unwrap();
    // At admission (the check route), the policy applies ...
    let rows = h
        .post_json("/api/policy/check?pss=none&guardrails=false", &pod)
        .await
        .json();
    assert_eq!(rows[0]["allowed"], false, "{rows}");
    // ... while the audit leaves it out.
    let found = h
        .get("/api/policy/audit?kind=Pod&namespace=default&pss=none&guardrails=false")
        .await
        .json();
    assert_eq!(found["report"]["objectsChecked"], 1, "{found}");
    assert_eq!(found["report"]["denied"], 0, "{found}");
}
