//! The delivery area of idp-server, over HTTP against a server started in-process: deploy
//! (policy allowed and denied), history with health from the cluster, rollback, promotion,
//! DORA, cost, the portal pages and the 400/404 answers. The cluster is idp-testkit's
//! `FakeCluster`, given to the server through a kubeconfig so the tests can look at what
//! the reconcilers applied.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use idp_core::git::{CommitRequest, GitRepo, Identity, InitOptions, LogOptions};
use idp_examples::server::config::DeliverConfig;
use idp_examples::server::{Config, RunningServer, ServerOptions, start};
use idp_testkit::FakeCluster;
use serde_json::{Value, json};

/// One HTTP response.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn call(
    server: &RunningServer,
    method: &str,
    path: &str,
    body: Option<(&str, &[u8])>,
) -> Reply {
    let (headers, bytes): (&[(&str, &str)], &[u8]) = match body {
        Some((ct, bytes)) => (&[("Content-Type", ct)], bytes),
        None => (&[], b""),
    };
    let r = idp_testkit::http::send(&server.addr().to_string(), method, path, headers, bytes)
        .await
        .unwrap();
    Reply {
        status: r.status,
        body: r.text(),
        headers: r.headers,
    }
}

async fn get(server: &RunningServer, path: &str) -> Reply {
    call(server, "GET", path, None).await
}

async fn post(server: &RunningServer, path: &str, value: &Value) -> Reply {
    let bytes = serde_json::to_vec(value).unwrap();
    call(server, "POST", path, Some(("application/json", &bytes))).await
}

/// A Deployment that meets PSS restricted and every default guardrail.
fn compliant(image: &str) -> String {
    format!(
        r"apiVersion: apps/v1
kind: Deployment
metadata:
  name: cart-service
spec:
  replicas: 1
  selector:
    matchLabels: {{app: cart-service}}
  template:
    metadata:
      labels: {{app: cart-service}}
    spec:
      securityContext:
        runAsNonRoot: true
        seccompProfile: {{type: RuntimeDefault}}
      containers:
        - name: app
          image: {image}
          ports: [{{containerPort: 8080}}]
          resources:
            requests: {{cpu: 250m, memory: 256Mi}}
            limits: {{cpu: 500m, memory: 512Mi}}
          livenessProbe: {{httpGet: {{path: /healthz, port: 8080}}}}
          readinessProbe: {{httpGet: {{path: /readyz, port: 8080}}}}
          securityContext:
            allowPrivilegeEscalation: false
            runAsNonRoot: true
            runAsUser: 10001
            capabilities: {{drop: [ALL]}}
"
    )
}

struct Harness {
    server: RunningServer,
    cluster: FakeCluster,
    data: tempfile::TempDir,
}

async fn harness(deliver: DeliverConfig) -> Harness {
    harness_with(deliver, |_, _| {}).await
}

/// [`harness`], with `configure` given the config and the data directory (to write policy
/// files into) before the server starts.
async fn harness_with(
    deliver: DeliverConfig,
    configure: impl FnOnce(&mut Config, &Path),
) -> Harness {
    let cluster = FakeCluster::start().await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let kubeconfig = data.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let mut config = Config {
        deliver,
        ..Config::default()
    };
    configure(&mut config, data.path());
    let server = start(ServerOptions {
        listen: Some("127.0.0.1:0".into()),
        data: Some(data.path().join("idp")),
        kubeconfig: Some(kubeconfig),
        ..ServerOptions::new(config)
    })
    .await
    .unwrap();
    Harness {
        server,
        cluster,
        data,
    }
}

fn fast() -> DeliverConfig {
    DeliverConfig {
        reconcile_seconds: 2,
        ..DeliverConfig::default()
    }
}

async fn gitops_commits(data: &Path) -> usize {
    let repo = GitRepo::open(data.join("idp/gitops.git")).await.unwrap();
    repo.log("main", &LogOptions::default())
        .await
        .unwrap()
        .len()
}

/// Poll `check` every 50 ms for up to 60 s.
async fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn live_image(cluster: &FakeCluster, namespace: &str) -> Option<String> {
    let d = cluster.object("apps", "deployments", namespace, "cart-service")?;
    d.pointer("/spec/template/spec/containers/0/image")?
        .as_str()
        .map(str::to_owned)
}

fn ready(cluster: &FakeCluster, namespace: &str) -> bool {
    cluster
        .object("apps", "deployments", namespace, "cart-service")
        .and_then(|d| d.pointer("/status/readyReplicas")?.as_u64())
        == Some(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_deny_rollback_promote_dora_cost_and_portal() {
    let h = harness(fast()).await;
    let s = &h.server;
    let t0 = jiff::Timestamp::now();
    let two_hours_ago = (t0 - jiff::SignedDuration::from_hours(2)).to_string();
    let one_hour_ago = (t0 - jiff::SignedDuration::from_hours(1)).to_string();

    // The leader Lease is taken.
    eventually("the reconciler lease", || {
        h.cluster
            .object(
                "coordination.k8s.io",
                "leases",
                "idp-system",
                "idp-reconciler",
            )
            .and_then(|l| {
                l.pointer("/spec/holderIdentity")?
                    .as_str()
                    .map(str::to_owned)
            })
            .filter(|id| !id.is_empty())
    })
    .await;

    // A compliant deployment: 201, committed, applied, healthy.
    let v1 = post(
        s,
        "/api/deployments",
        &json!({
            "component": "cart-service",
            "environment": "dev",
            "manifests": compliant("ghcr.io/acme/cart-service:1.0.0"),
            "sourceRevision": "a1b2c3d",
            "sourceCommittedAt": two_hours_ago,
            "author": "jane",
            "wait": 60,
        }),
    )
    .await;
    assert_eq!(v1.status, 201, "{}", v1.body);
    let v1 = v1.json();
    assert_eq!(v1["component"], "component:default/cart-service");
    assert_eq!(v1["environment"], "dev");
    assert_eq!(v1["version"], "ghcr.io/acme/cart-service:1.0.0");
    assert_eq!(v1["status"], "current");
    assert_eq!(v1["sync"], "Synced", "{v1}");
    assert_eq!(v1["health"], "Healthy", "{v1}");
    assert!(v1["cost"]["monthly"].as_f64().unwrap() > 0.0, "{v1}");
    let v1_id = v1["id"].as_str().unwrap().to_owned();
    assert_eq!(
        live_image(&h.cluster, "dev").as_deref(),
        Some("ghcr.io/acme/cart-service:1.0.0")
    );
    assert!(ready(&h.cluster, "dev"));
    // The mutations labelled it with the catalog owner and the environment.
    let live = h
        .cluster
        .object("apps", "deployments", "dev", "cart-service")
        .unwrap();
    assert_eq!(
        live["metadata"]["labels"]["idp.dev/owner"],
        "storefront-team"
    );
    assert_eq!(live["metadata"]["labels"]["idp.dev/environment"], "dev");

    // It shows in the history, with health from the cluster.
    let history = get(s, "/api/deployments?component=cart-service&env=dev").await;
    assert_eq!(history.status, 200, "{}", history.body);
    let history = history.json();
    assert_eq!(history.as_array().unwrap().len(), 1);
    assert_eq!(history[0]["id"], v1_id.as_str());
    assert_eq!(history[0]["health"], "Healthy");
    let one = get(s, &format!("/api/deployments/{v1_id}")).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.json()["author"], "jane");

    // A privileged variant: denied with every reason, nothing committed.
    let commits = gitops_commits(h.data.path()).await;
    let privileged = compliant("ghcr.io/acme/cart-service:1.0.1").replace(
        "allowPrivilegeEscalation: false",
        "allowPrivilegeEscalation: false\n            privileged: true",
    );
    let denied = post(
        s,
        "/api/deployments",
        &json!({"component": "cart-service", "environment": "dev", "manifests": privileged}),
    )
    .await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    let denied = denied.json();
    assert_eq!(denied["error"]["name"], "NotAllowedError");
    assert_eq!(denied["response"]["statusCode"], 403);
    let violations = denied["violations"].as_array().unwrap();
    let rule = violations
        .iter()
        .find(|v| v["rule"] == "privileged")
        .unwrap_or_else(|| panic!("no privileged violation in {denied}"));
    assert_eq!(rule["action"], "deny");
    assert_eq!(rule["object"], "Deployment/cart-service");
    assert_eq!(
        rule["path"],
        "spec.template.spec.containers[0].securityContext.privileged"
    );
    assert!(!rule["message"].as_str().unwrap().is_empty());
    assert_eq!(gitops_commits(h.data.path()).await, commits);
    let history = get(s, "/api/deployments?component=cart-service&env=dev")
        .await
        .json();
    assert_eq!(history.as_array().unwrap().len(), 1);

    // v2, then roll it back: the cluster converges to v1's image again.
    let v2 = post(
        s,
        "/api/deployments",
        &json!({
            "component": "component:default/cart-service",
            "environment": "dev",
            "manifests": compliant("ghcr.io/acme/cart-service:2.0.0"),
            "sourceCommittedAt": one_hour_ago,
        }),
    )
    .await;
    assert_eq!(v2.status, 201, "{}", v2.body);
    let v2_id = v2.json()["id"].as_str().unwrap().to_owned();
    eventually("v2 in the cluster", || {
        (live_image(&h.cluster, "dev").as_deref() == Some("ghcr.io/acme/cart-service:2.0.0"))
            .then_some(())
    })
    .await;
    let back = post(
        s,
        &format!("/api/deployments/{v2_id}/rollback"),
        &json!({"wait": 60}),
    )
    .await;
    assert_eq!(back.status, 201, "{}", back.body);
    let back = back.json();
    assert_eq!(back["rollbackTo"], v1_id.as_str());
    assert_eq!(back["rollbackOf"], v2_id.as_str());
    assert_eq!(back["version"], "ghcr.io/acme/cart-service:1.0.0");
    assert_eq!(back["health"], "Healthy", "{back}");
    assert_eq!(
        live_image(&h.cluster, "dev").as_deref(),
        Some("ghcr.io/acme/cart-service:1.0.0")
    );
    let history = get(s, "/api/deployments?component=cart-service&env=dev")
        .await
        .json();
    let statuses: Vec<&str> = history
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["current", "rolled-back", "superseded"]);
    // The first release has nothing before it.
    let first = post(s, &format!("/api/deployments/{v1_id}/rollback"), &json!({})).await;
    assert_eq!(first.status, 409, "{}", first.body);

    // Promotion dev → staging.
    let promoted = post(
        s,
        "/api/promotions",
        &json!({"component": "cart-service", "from": "dev", "to": "staging", "wait": 60}),
    )
    .await;
    assert_eq!(promoted.status, 201, "{}", promoted.body);
    let promoted = promoted.json();
    assert_eq!(promoted["environment"], "staging");
    assert!(
        promoted["promotedFrom"]
            .as_str()
            .unwrap()
            .starts_with("dev/")
    );
    eventually("the promotion in the cluster", || {
        (live_image(&h.cluster, "staging").as_deref() == Some("ghcr.io/acme/cart-service:1.0.0"))
            .then_some(())
    })
    .await;

    // Promotion to prod is checked against prod's policies: one replica is too few there.
    let commits = gitops_commits(h.data.path()).await;
    let to_prod = post(
        s,
        "/api/promotions",
        &json!({"component": "cart-service", "from": "staging", "to": "prod"}),
    )
    .await;
    assert_eq!(to_prod.status, 403, "{}", to_prod.body);
    let to_prod = to_prod.json();
    assert!(
        to_prod["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["policy"] == "min-replicas" && v["action"] == "deny"),
        "{to_prod}"
    );
    assert_eq!(gitops_commits(h.data.path()).await, commits);

    // DORA: 3 deployments in dev (v1, v2, the rollback), 1 in staging; v2 failed (rolled
    // back) and was restored by the rollback.
    let dora = get(s, "/api/dora?env=dev&days=7").await;
    assert_eq!(dora.status, 200, "{}", dora.body);
    let dora = dora.json();
    let dev = &dora["overall"];
    assert_eq!(dev["deployments"], 3, "{dora}");
    assert_eq!(dev["failures"], 1);
    assert_eq!(dev["restored"], 1);
    let rate = dev["changeFailureRate"].as_f64().unwrap();
    assert!((rate - 1.0 / 3.0).abs() < 1e-9, "{rate}");
    let per_day = dev["deploymentsPerDay"].as_f64().unwrap();
    assert!((per_day - 3.0 / 7.0).abs() < 1e-9, "{per_day}");
    // Lead times: v1 ~2 h, v2 ~1 h, the rollback carries v1's commit (~2 h): median ~2 h
    // (commit times have one-second resolution, hence the second of slack below).
    let lead = dev["medianLeadTimeSeconds"].as_f64().unwrap();
    assert!((7200.0 - 1.0..7200.0 + 120.0).contains(&lead), "{lead}");
    let restore = dev["medianTimeToRestoreSeconds"].as_f64().unwrap();
    assert!((0.0..120.0).contains(&restore), "{restore}");
    let today: usize = dora["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| usize::try_from(d["deployments"].as_u64().unwrap()).unwrap())
        .sum();
    assert_eq!(today, 3);
    let all = get(s, "/api/dora?component=cart-service").await.json();
    assert_eq!(all["overall"]["deployments"], 4);
    assert_eq!(all["byEnvironment"]["staging"]["deployments"], 1);
    assert_eq!(all["byTeam"]["storefront-team"]["deployments"], 4);

    // Cost: what runs now in dev and staging.
    let cost = get(s, "/api/cost?component=cart-service").await;
    assert_eq!(cost.status, 200, "{}", cost.body);
    let cost = cost.json();
    let items = cost["items"].as_array().unwrap();
    let mut envs: Vec<&str> = items
        .iter()
        .map(|i| i["environment"].as_str().unwrap())
        .collect();
    envs.sort_unstable();
    assert_eq!(envs, ["dev", "staging"]);
    let sum: f64 = items.iter().map(|i| i["monthly"].as_f64().unwrap()).sum();
    assert!(sum > 0.0);
    assert!(
        (cost["total"].as_f64().unwrap() - sum).abs() < 0.011,
        "{cost}"
    );
    let dev_cost = get(s, "/api/cost?component=cart-service&env=dev")
        .await
        .json();
    assert_eq!(dev_cost["items"].as_array().unwrap().len(), 1);
    assert_eq!(dev_cost["items"][0]["lines"][0]["kind"], "Deployment");

    // Portal: the entity page, the history with rollback forms, the DORA dashboard.
    let entity = get(s, "/catalog/default/component/cart-service").await;
    assert_eq!(entity.status, 200);
    assert!(
        entity.body.contains("ghcr.io/acme/cart-service:1.0.0"),
        "{}",
        entity.body
    );
    assert!(
        entity
            .body
            .contains("/deployments/default/cart-service/dev")
    );
    let page = get(s, "/deployments/default/cart-service/dev").await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains(&format!("value=\"{v2_id}\"")),
        "{}",
        page.body
    );
    assert!(page.body.contains("<form method=\"post\""));
    let dora_page = get(s, "/dora?env=dev").await;
    assert_eq!(dora_page.status, 200);
    assert!(dora_page.body.contains("<svg"));
    let overview = get(s, "/deployments").await;
    assert_eq!(overview.status, 200);
    assert!(overview.body.contains("staging"));
    assert!(!overview.body.contains("&lt;span"), "{}", overview.body);
    // Every environment reports: prod holds nothing yet, which is in sync.
    let envs = get(s, "/api/environments").await.json();
    let prod = envs
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "prod")
        .unwrap();
    assert_eq!(prod["sync"], "Synced", "{envs}");
    assert_eq!(prod["leader"], true);
    // The rollback button (a form POST) restores v2 and redirects to the history.
    let form = format!("to={v2_id}");
    let clicked = call(
        s,
        "POST",
        "/deployments/default/cart-service/dev/rollback",
        Some(("application/x-www-form-urlencoded", form.as_bytes())),
    )
    .await;
    assert_eq!(clicked.status, 303, "{}", clicked.body);
    assert_eq!(
        clicked.header("location"),
        Some("/deployments/default/cart-service/dev")
    );
    eventually("the portal rollback in the cluster", || {
        (live_image(&h.cluster, "dev").as_deref() == Some("ghcr.io/acme/cart-service:2.0.0"))
            .then_some(())
    })
    .await;

    // The OpenAPI document knows the routes and their bodies.
    let doc = get(s, "/api/openapi.json").await.json();
    assert!(doc["paths"]["/api/deployments"]["post"]["requestBody"].is_object());
    assert!(doc["components"]["schemas"]["DeploymentRequest"].is_object());
    assert!(doc["components"]["schemas"]["Dora"].is_object());

    // Shutdown stops the reconcilers and releases the Lease.
    h.server.shutdown().await.unwrap();
    let lease = h
        .cluster
        .object(
            "coordination.k8s.io",
            "leases",
            "idp-system",
            "idp-reconciler",
        )
        .unwrap();
    let holder = lease
        .pointer("/spec/holderIdentity")
        .and_then(Value::as_str);
    assert!(holder.is_none_or(str::is_empty), "{lease}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kyverno_policies_gate_and_mutate_deployments() {
    let h = harness_with(fast(), |config, dir| {
        let policy = dir.join("kyverno.yaml");
        std::fs::write(
            &policy,
            r#"apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: shop-rules}
spec:
  validationFailureAction: Enforce
  rules:
    - name: cost-center
      match: {any: [{resources: {kinds: [Deployment]}}]}
      mutate:
        patchStrategicMerge:
          metadata:
            labels:
              +(acme.dev/cost-center): shop
    - name: trusted-registry
      match: {any: [{resources: {kinds: [Pod]}}]}
      validate:
        message: "images come from ghcr.io/acme"
        pattern:
          spec:
            containers:
              - image: "ghcr.io/acme/*"
"#,
        )
        .unwrap();
        config.policy.kyverno = vec![policy];
    })
    .await;

    // An image from elsewhere: the auto-generated rule denies it, nothing is committed.
    let denied = post(
        &h.server,
        "/api/deployments",
        &json!({"component": "cart-service", "environment": "dev",
            "manifests": compliant("docker.io/library/nginx:1.27")}),
    )
    .await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    let denied = denied.json();
    assert!(
        denied["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["rule"] == "shop-rules/autogen-trusted-registry"),
        "{denied}"
    );

    // A trusted image: committed with the mutate rule's label, and live with it.
    let ok = post(
        &h.server,
        "/api/deployments",
        &json!({"component": "cart-service", "environment": "dev",
            "manifests": compliant("ghcr.io/acme/cart-service:1.0.0"), "wait": 60}),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    let live = h
        .cluster
        .object("apps", "deployments", "dev", "cart-service")
        .unwrap();
    assert_eq!(
        live["metadata"]["labels"]["acme.dev/cost-center"], "shop",
        "{live}"
    );
    h.server.shutdown().await.unwrap();
}

/// `policy.gatekeeper` constraints gate deployments too: a Pod constraint, through an
/// ExpansionTemplate, denies a Deployment before anything is committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gatekeeper_constraints_gate_deployments() {
    let h = harness_with(fast(), |config, dir| {
        let policy = dir.join("gatekeeper.yaml");
        std::fs::write(
            &policy,
            r#"apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata: {name: k8sallowedrepos}
spec:
  crd: {spec: {names: {kind: K8sAllowedRepos}}}
  targets:
    - target: admission.k8s.gatekeeper.sh
      rego: |
        package k8sallowedrepos
        violation[{"msg": msg}] {
          c := input.review.object.spec.containers[_]
          not startswith(c.image, input.parameters.repo)
          msg := sprintf("image %v is not from %v", [c.image, input.parameters.repo])
        }
---
apiVersion: constraints.gatekeeper.sh/v1beta1
kind: K8sAllowedRepos
metadata: {name: acme-only}
spec:
  match: {kinds: [{apiGroups: [""], kinds: [Pod]}]}
  parameters: {repo: "ghcr.io/acme/"}
---
apiVersion: expansion.gatekeeper.sh/v1beta1
kind: ExpansionTemplate
metadata: {name: expand-deployments}
spec:
  applyTo: [{groups: [apps], kinds: [Deployment], versions: [v1]}]
  templateSource: spec.template
  generatedGVK: {group: "", version: v1, kind: Pod}
"#,
        )
        .unwrap();
        config.policy.gatekeeper = vec![policy];
    })
    .await;
    let before = gitops_commits(h.data.path()).await;
    let denied = post(
        &h.server,
        "/api/deployments",
        &json!({"component": "cart-service", "environment": "dev",
            "manifests": compliant("docker.io/library/nginx:1.27")}),
    )
    .await;
    assert_eq!(denied.status, 403, "{}", denied.body);
    let denied = denied.json();
    assert!(
        denied["violations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["rule"] == "K8sAllowedRepos/acme-only"
                && v["message"].as_str().unwrap().starts_with(
                    "[Implied by expand-deployments] image docker.io/library/nginx:1.27"
                )),
        "{denied}"
    );
    assert_eq!(gitops_commits(h.data.path()).await, before);
    let ok = post(
        &h.server,
        "/api/deployments",
        &json!({"component": "cart-service", "environment": "dev",
            "manifests": compliant("ghcr.io/acme/cart-service:1.0.0")}),
    )
    .await;
    assert_eq!(ok.status, 201, "{}", ok.body);
    h.server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_and_unknown_components() {
    let h = harness(fast()).await;
    let s = &h.server;
    let manifests = compliant("ghcr.io/acme/cart-service:1.0.0");
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "component"),
        (
            json!({"component": 5, "environment": "dev", "manifests": manifests}),
            "component: must be a string",
        ),
        (
            json!({"component": "cart-service", "manifests": manifests}),
            "environment",
        ),
        (
            json!({"component": "cart-service", "environment": "qa", "manifests": manifests}),
            "environment: unknown environment \"qa\"",
        ),
        (
            json!({"component": "cart-service", "environment": "dev"}),
            "manifests",
        ),
        (
            json!({"component": "cart-service", "environment": "dev", "manifests": manifests, "workload": "x"}),
            "manifests, workload",
        ),
        (
            json!({"component": "cart-service", "environment": "dev", "manifests": manifests, "replicas": 3}),
            "replicas: unknown field",
        ),
        (
            json!({"component": "cart-service", "environment": "dev", "manifests": "kind: [\n"}),
            "manifests:",
        ),
        (
            json!({"component": "cart-service", "environment": "dev", "workload": "apiVersion: score.dev/v1b1\nbogus: 1\n"}),
            "workload:",
        ),
        (
            json!({"component": "cart-service", "environment": "dev", "manifests": manifests, "sourceCommittedAt": "yesterday"}),
            "sourceCommittedAt",
        ),
        (
            json!({"component": "cart-service", "environment": "dev", "manifests": manifests, "wait": 1000}),
            "wait",
        ),
        (
            json!({"component": "cart-service", "environment": "dev", "manifests": manifests.replace("metadata:\n  name: cart-service", "metadata:\n  name: cart-service\n  namespace: kube-system")}),
            "namespace",
        ),
        (json!("just a string"), "JSON object"),
    ];
    for (body, needle) in &cases {
        let r = post(s, "/api/deployments", body).await;
        assert_eq!(r.status, 400, "{body} → {}", r.body);
        let e = r.json();
        assert_eq!(e["error"]["name"], "InputError");
        let message = e["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(needle),
            "{body}: {message:?} should name {needle:?}"
        );
    }
    let broken = call(
        s,
        "POST",
        "/api/deployments",
        Some(("application/json", b"{\"component\":")),
    )
    .await;
    assert_eq!(broken.status, 400);
    assert!(
        broken.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON")
    );
    assert_eq!(
        gitops_commits(h.data.path()).await,
        1,
        "nothing was committed"
    );

    // Unknown components and deployments: 404 naming them.
    let r = post(
        s,
        "/api/deployments",
        &json!({"component": "nope", "environment": "dev", "manifests": manifests}),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["error"]["name"], "NotFoundError");
    assert!(r.body.contains("component:default/nope"), "{}", r.body);
    assert_eq!(get(s, "/api/deployments?component=nope").await.status, 404);
    assert_eq!(get(s, "/api/deployments/r-nope").await.status, 404);
    assert_eq!(
        post(s, "/api/deployments/r-nope/rollback", &json!({}))
            .await
            .status,
        404
    );
    let r = post(
        s,
        "/api/promotions",
        &json!({"component": "cart-service", "from": "dev"}),
    )
    .await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("to: missing"), "{}", r.body);
    let r = post(
        s,
        "/api/promotions",
        &json!({"component": "cart-service", "from": "dev", "to": "staging"}),
    )
    .await;
    assert_eq!(r.status, 404, "nothing in dev yet: {}", r.body);
    let r = get(s, "/api/dora?days=0").await;
    assert_eq!(r.status, 400);
    assert!(r.body.contains("days"), "{}", r.body);
    assert_eq!(get(s, "/api/cost?env=qa").await.status, 400);

    // A Score workload renders with the environment's profile, gets the restricted
    // security context from the mutations (Score cannot express one) and deploys.
    let score = "apiVersion: score.dev/v1b1
metadata: {name: cart-service}
containers:
  app:
    image: .
    livenessProbe: {httpGet: {path: /healthz, port: 8080}}
    readinessProbe: {httpGet: {path: /readyz, port: 8080}}
service:
  ports:
    http: {port: 80, targetPort: 8080}
";
    let r = post(
        s,
        "/api/deployments",
        &json!({"component": "cart-service", "environment": "dev", "workload": score, "image": "ghcr.io/acme/cart-service:3.1.0", "wait": 60}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let d = r.json();
    assert_eq!(d["version"], "ghcr.io/acme/cart-service:3.1.0");
    assert_eq!(d["health"], "Healthy", "{d}");
    assert!(
        h.cluster
            .object("", "services", "dev", "cart-service")
            .is_some()
    );
    // Deploying the same again commits nothing: 200, created false.
    let again = post(
        s,
        "/api/deployments",
        &json!({"component": "cart-service", "environment": "dev", "workload": score, "image": "ghcr.io/acme/cart-service:3.1.0"}),
    )
    .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json()["created"], false);
    assert_eq!(again.json()["id"], d["id"]);
    let live = h
        .cluster
        .object("apps", "deployments", "dev", "cart-service")
        .unwrap();
    assert_eq!(
        live["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
        true
    );

    // A component whose catalog entry names its Score file (idp.dev/workload) deploys with
    // no manifests in the request; a wrong path is a 400 naming the annotation.
    let catalog = GitRepo::open(h.data.path().join("idp/catalog.git"))
        .await
        .unwrap();
    let entity = "apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: score-demo
  annotations:
    idp.dev/workload: services/score-demo/score.yaml
spec: {type: service, lifecycle: experimental, owner: storefront-team}
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: score-missing
  annotations:
    idp.dev/workload: services/nowhere/score.yaml
spec: {type: service, lifecycle: experimental, owner: storefront-team}
";
    catalog
        .commit(
            CommitRequest::new(
                "main",
                "add score-demo",
                Identity::new("t", "t@example.com"),
            )
            .put("services/score-demo/catalog-info.yaml", entity.as_bytes())
            .put(
                "services/score-demo/score.yaml",
                score.replace("cart-service", "score-demo").as_bytes(),
            ),
        )
        .await
        .unwrap();
    let refreshed = call(s, "POST", "/api/catalog/refresh", None).await;
    assert!(refreshed.status < 300, "{}", refreshed.body);
    let r = post(
        s,
        "/api/deployments",
        &json!({"component": "score-demo", "environment": "dev", "image": "ghcr.io/acme/score-demo:0.1.0"}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["version"], "ghcr.io/acme/score-demo:0.1.0");
    let r = post(
        s,
        "/api/deployments",
        &json!({"component": "score-missing", "environment": "dev", "image": "ghcr.io/acme/x:1.0"}),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("idp.dev/workload"), "{}", r.body);
    h.server.shutdown().await.unwrap();
}

async fn leader(server: &RunningServer) -> bool {
    let envs = get(server, "/api/environments").await.json();
    envs[0]["leader"] == true
}

async fn eventually_async<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Two replicas share a GitOps remote (`file://`) and the cluster: only the Lease holder
/// applies, a release committed through the other replica reaches the cluster anyway, and
/// when the holder shuts down (releasing the Lease) the other takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_a_gitops_remote_and_one_lease() {
    let cluster = FakeCluster::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let remote_path = dir.path().join("gitops-remote.git");
    let remote_repo = GitRepo::init(&remote_path, InitOptions::bare("main"))
        .await
        .unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&kubeconfig).unwrap();
    let replica = |name: &str| {
        let config = Config {
            deliver: DeliverConfig {
                gitops_remote: Some(format!("file://{}", remote_path.display())),
                reconcile_seconds: 1,
                ..DeliverConfig::default()
            },
            ..Config::default()
        };
        start(ServerOptions {
            listen: Some("127.0.0.1:0".into()),
            data: Some(dir.path().join(name)),
            kubeconfig: Some(kubeconfig.clone()),
            ..ServerOptions::new(config)
        })
    };
    let a = replica("a").await.unwrap();
    eventually_async("replica a to lead", || leader(&a)).await;
    let b = replica("b").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!leader(&b).await, "only one replica leads");

    // A release committed through b (not leading) lands in the remote, and a applies it.
    let r = post(
        &b,
        "/api/deployments",
        &json!({"component": "cart-service", "environment": "dev", "manifests": compliant("ghcr.io/acme/cart-service:1.0.0")}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let log = remote_repo
        .log("main", &LogOptions::default())
        .await
        .unwrap();
    assert_eq!(log[0].trailer("Release-Id"), Some(id.as_str()));
    eventually("replica a to apply b's release", || {
        live_image(&cluster, "dev").filter(|i| i.ends_with(":1.0.0"))
    })
    .await;
    // a sees the same history.
    let seen = get(&a, &format!("/api/deployments/{id}")).await;
    assert_eq!(seen.status, 200, "{}", seen.body);

    // a stops and releases the Lease; b takes over and applies the next release.
    a.shutdown().await.unwrap();
    eventually_async("replica b to lead", || leader(&b)).await;
    let r = post(
        &b,
        "/api/deployments",
        &json!({"component": "cart-service", "environment": "dev", "manifests": compliant("ghcr.io/acme/cart-service:2.0.0")}),
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    eventually("replica b to apply its release", || {
        live_image(&cluster, "dev").filter(|i| i.ends_with(":2.0.0"))
    })
    .await;
    b.shutdown().await.unwrap();
}

/// The `deliver` section of `idp.yaml`: defaults, overrides, unknown fields and bad
/// environment names are reported with the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_deliver_section_of_idp_yaml() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idp.yaml");
    std::fs::write(
        &path,
        "deliver:
  gitopsRemote: https://git.example/platform/gitops.git
  reconcileSeconds: 10
  pss: baseline
  environments:
    - {name: dev, namespace: team-dev}
    - {name: prod}
",
    )
    .unwrap();
    let config = Config::load(&path).unwrap();
    let d = &config.deliver;
    assert_eq!(
        d.gitops_remote.as_deref(),
        Some("https://git.example/platform/gitops.git")
    );
    assert_eq!(d.reconcile_seconds, 10);
    assert_eq!(d.branch, "main");
    assert_eq!(d.lease_namespace, "idp-system");
    assert_eq!(d.environments.len(), 2);
    assert_eq!(d.environments[0].namespace(), "team-dev");
    assert_eq!(d.environments[1].namespace(), "prod");
    let defaults = Config::default().deliver;
    let names: Vec<&str> = defaults
        .environments
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(names, ["dev", "staging", "prod"]);
    assert!(Config::schema_json().contains("reconcileSeconds"));

    std::fs::write(&path, "deliver:\n  reconcileEvery: 3\n").unwrap();
    let e = Config::load(&path).unwrap_err();
    assert!(e.report().contains("reconcileEvery"), "{}", e.report());

    let bad = Config {
        deliver: DeliverConfig {
            environments: vec![idp_examples::server::config::EnvironmentConfig::named(
                "Not An Env",
            )],
            ..DeliverConfig::default()
        },
        ..Config::default()
    };
    let e = start(ServerOptions {
        listen: Some("127.0.0.1:0".into()),
        data: Some(dir.path().join("data")),
        simulated_cluster: true,
        ..ServerOptions::new(bad)
    })
    .await
    .unwrap_err();
    assert!(
        e.report().contains("deliver.environments"),
        "{}",
        e.report()
    );
}
