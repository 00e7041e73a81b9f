//! idp-server end to end: the real binary on a free port with a temporary data directory
//! (embedded defaults, simulated cluster), exercised over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::server_common;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;

use serde_json::{Value, json};
use server_common::{Server, start};

fn names(items: &Value) -> Vec<String> {
    items
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["metadata"]["name"].as_str().unwrap().to_owned())
        .collect()
}

fn assert_error_body(
    r: &server_common::Response,
    status: u16,
    name: &str,
    method: &str,
    url: &str,
) {
    assert_eq!(r.status, status, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"]["name"], name, "{body}");
    assert!(
        !body["error"]["message"].as_str().unwrap().is_empty(),
        "{body}"
    );
    assert_eq!(body["request"]["method"], method);
    assert_eq!(body["request"]["url"], url);
    assert_eq!(body["response"]["statusCode"], status);
}

#[test]
fn catalog_api_matches_backstage_shapes() {
    let server = start(&[]);
    // List: a JSON array of whole entities with uid and relations.
    let all = server.get("/api/catalog/entities").json();
    let list = all.as_array().unwrap();
    assert!(
        list.len() >= 30,
        "the demo org has a few dozen entities: {}",
        list.len()
    );
    for e in list {
        assert!(e["apiVersion"].is_string() && e["kind"].is_string(), "{e}");
        assert!(e["metadata"]["uid"].is_string(), "{e}");
    }
    let cart = list
        .iter()
        .find(|e| e["metadata"]["name"] == "cart-service")
        .unwrap();
    assert!(
        cart["relations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["type"] == "ownedBy" && r["targetRef"] == "group:default/storefront-team"),
        "{cart}"
    );

    // filter and fields.
    let components = server
        .get("/api/catalog/entities?filter=kind=component&fields=kind,metadata.name")
        .json();
    let components = components.as_array().unwrap();
    assert!(components.len() >= 8);
    for e in components {
        assert_eq!(e["kind"], "Component");
        assert_eq!(
            e.as_object().unwrap().len(),
            2,
            "only the asked fields: {e}"
        );
        assert_eq!(e["metadata"].as_object().unwrap().len(), 1, "{e}");
    }
    let or = server
        .get("/api/catalog/entities?filter=kind=api&filter=kind=resource&fields=kind")
        .json();
    assert!(
        or.as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] == "API" || e["kind"] == "Resource")
    );
    assert!(or.as_array().unwrap().iter().any(|e| e["kind"] == "API"));
    assert!(
        or.as_array()
            .unwrap()
            .iter()
            .any(|e| e["kind"] == "Resource")
    );

    // order, offset and limit.
    let sorted = names(
        &server
            .get("/api/catalog/entities?order=asc:metadata.name&fields=metadata.name")
            .json(),
    );
    let mut expected = sorted.clone();
    expected.sort();
    assert_eq!(sorted, expected);
    let desc = names(
        &server
            .get("/api/catalog/entities?order=desc:metadata.name&fields=metadata.name&limit=3")
            .json(),
    );
    assert_eq!(
        desc,
        sorted.iter().rev().take(3).cloned().collect::<Vec<_>>()
    );
    let offset = names(&server.get("/api/catalog/entities?order=asc:metadata.name&fields=metadata.name&offset=2&limit=3").json());
    assert_eq!(offset, sorted[2..5].to_vec());

    // limit pages with a Link header carrying `after`.
    let first = server.get("/api/catalog/entities?filter=kind=component&limit=3");
    assert_eq!(first.json().as_array().unwrap().len(), 3);
    let link = first.header("link").expect("a Link header").to_owned();
    let next_url = link.trim_start_matches('<').split('>').next().unwrap();
    let second = server.get(next_url).json();
    let a: HashSet<String> = names(&first.json()).into_iter().collect();
    let b: HashSet<String> = names(&second).into_iter().collect();
    assert_eq!(b.len(), 3);
    assert!(a.is_disjoint(&b));
    assert!(
        second
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["kind"] == "Component")
    );

    // by-name and by-uid.
    let shop = server.get("/api/catalog/entities/by-name/component/default/web-shop");
    assert_eq!(shop.status, 200);
    let shop = shop.json();
    assert_eq!(shop["spec"]["owner"], "storefront-team");
    let uid = shop["metadata"]["uid"].as_str().unwrap().to_owned();
    let by_uid = server
        .get(&format!("/api/catalog/entities/by-uid/{uid}"))
        .json();
    assert_eq!(by_uid["metadata"]["name"], "web-shop");
    let url = "/api/catalog/entities/by-name/component/default/no-such-thing";
    let missing = server.get(url);
    assert_error_body(&missing, 404, "NotFoundError", "GET", url);
    assert_eq!(
        missing.json()["error"]["message"],
        "No entity named 'no-such-thing' found, with kind 'component' in namespace 'default'"
    );
    let url = "/api/catalog/entities/by-uid/00000000-0000-0000-0000-000000000000";
    assert_error_body(&server.get(url), 404, "NotFoundError", "GET", url);

    // by-refs: entities in order, null for unknown.
    let refs = server
        .post_json(
            "/api/catalog/entities/by-refs",
            &json!({"entityRefs": ["component:default/cart-service", "component:default/nope", "group:storefront-team"], "fields": ["metadata.name"]}),
        )
        .json();
    let items = refs["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0], json!({"metadata": {"name": "cart-service"}}));
    assert!(items[1].is_null());
    assert_eq!(items[2]["metadata"]["name"], "storefront-team");

    // facets.
    let facets = server
        .get("/api/catalog/entity-facets?facet=kind&facet=metadata.tags")
        .json();
    let kinds = facets["facets"]["kind"].as_array().unwrap();
    let component = kinds.iter().find(|f| f["value"] == "Component").unwrap();
    assert_eq!(
        component["count"].as_u64().unwrap() as usize,
        components.len()
    );
    assert!(
        facets["facets"]["metadata.tags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["value"] == "pci")
    );
    let filtered = server
        .get("/api/catalog/entity-facets?facet=kind&filter=spec.owner=payments-team")
        .json();
    assert!(
        filtered["facets"]["kind"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["value"] != "Group")
    );

    // delete by uid: gone, then back after a refresh (its source still has it).
    let d = server.request(
        "DELETE",
        &format!("/api/catalog/entities/by-uid/{uid}"),
        None,
    );
    assert_eq!(d.status, 204, "{}", d.text());
    assert_eq!(
        server
            .get("/api/catalog/entities/by-name/component/default/web-shop")
            .status,
        404
    );
    assert_eq!(
        server.request("POST", "/api/catalog/refresh", None).status,
        200
    );
    assert_eq!(
        server
            .get("/api/catalog/entities/by-name/component/default/web-shop")
            .status,
        200
    );
}

#[test]
fn by_query_pages_with_cursors() {
    let server = start(&[]);
    let total_expected = server
        .get("/api/catalog/entities?fields=kind")
        .json()
        .as_array()
        .unwrap()
        .len();
    let mut seen = Vec::new();
    let mut url = "/api/catalog/entities/by-query?limit=7&fields=metadata.name,kind".to_owned();
    let mut pages = 0;
    loop {
        let page = server.get(&url).json();
        assert_eq!(
            page["totalItems"].as_u64().unwrap() as usize,
            total_expected,
            "{page}"
        );
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 7);
        seen.extend(names(&page["items"]));
        pages += 1;
        match page["pageInfo"]["nextCursor"].as_str() {
            Some(c) => {
                url = format!(
                    "/api/catalog/entities/by-query?limit=7&fields=metadata.name,kind&cursor={c}"
                );
            }
            None => break,
        }
        assert!(pages < 100);
    }
    assert_eq!(seen.len(), total_expected);
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        total_expected,
        "no duplicates"
    );

    // Ordered, filtered, with a full-text term; prevCursor goes back.
    let first = server
        .get("/api/catalog/entities/by-query?filter=kind=component&orderField=metadata.name,desc&limit=2")
        .json();
    let first_names = names(&first["items"]);
    let mut sorted = first_names.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(first_names, sorted);
    let next = first["pageInfo"]["nextCursor"].as_str().unwrap();
    let second = server
        .get(&format!("/api/catalog/entities/by-query?cursor={next}"))
        .json();
    assert!(names(&second["items"])[0] < first_names[1]);
    let prev = second["pageInfo"]["prevCursor"].as_str().unwrap();
    let back = server
        .get(&format!("/api/catalog/entities/by-query?cursor={prev}"))
        .json();
    assert_eq!(names(&back["items"]), first_names);
    let term = server
        .get("/api/catalog/entities/by-query?fullTextFilterTerm=payments&filter=kind=component")
        .json();
    assert!(
        names(&term["items"]).contains(&"payments-gateway".to_owned()),
        "{term}"
    );

    // Bad input: 400 with Backstage's body.
    let url = "/api/catalog/entities/by-query?cursor=not-a-cursor";
    assert_error_body(&server.get(url), 400, "InputError", "GET", url);
    let url = "/api/catalog/entities/by-query?limit=-1";
    assert_error_body(&server.get(url), 400, "InputError", "GET", url);
    let url = "/api/catalog/entities/by-query?orderField=metadata.name,sideways";
    assert_error_body(&server.get(url), 400, "InputError", "GET", url);
}

#[test]
fn malformed_bodies_are_400_with_a_message() {
    let server = start(&[]);
    let url = "/api/catalog/entities/by-refs";
    for body in [
        &b"{not json"[..],
        b"",
        b"{\"entityRefs\": 3}",
        b"{\"refs\": []}",
    ] {
        let r = server.request("POST", url, Some(("application/json", body)));
        assert_error_body(&r, 400, "InputError", "POST", url);
    }
    let r = server.post_json(url, &json!({"entityRefs": ["::"]}));
    assert_error_body(&r, 400, "InputError", "POST", url);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("entityRefs[0]")
    );
    let url = "/api/catalog/locations";
    let r = server.post_json(url, &json!({"type": "github", "target": "x"}));
    assert_error_body(&r, 400, "InputError", "POST", url);
    let url = "/api/policy/check";
    let r = server.request("POST", url, Some(("application/yaml", b"kind: [unclosed")));
    assert_error_body(&r, 400, "InputError", "POST", url);
    let url = "/api/no/such/route";
    assert_error_body(&server.get(url), 404, "NotFoundError", "GET", url);
}

#[test]
fn search_policy_ops_and_openapi() {
    let server = start(&[]);
    let hits = server.get("/api/search/query?term=payments").json();
    let results = hits["results"].as_array().unwrap();
    assert!(!results.is_empty());
    assert!(results.iter().all(|r| r["type"] == "software-catalog"));
    assert!(
        results
            .iter()
            .any(|r| r["document"]["name"] == "payments-gateway"),
        "{hits}"
    );
    assert_eq!(
        server.get("/api/search/query?term=zzzqqq").json()["results"],
        json!([])
    );

    // Policy: a privileged pod is denied with reasons; a hardened one is allowed.
    let privileged = b"apiVersion: v1
kind: Pod
metadata:
  name: root-shell
  namespace: dev
spec:
  hostNetwork: true
  containers:
    - name: shell
      image: busybox:1.36
      securityContext:
        privileged: true
";
    let rows = server
        .request(
            "POST",
            "/api/policy/check?guardrails=false",
            Some(("application/yaml", privileged)),
        )
        .json();
    let row = &rows.as_array().unwrap()[0];
    assert_eq!(row["kind"], "Pod");
    assert_eq!(row["name"], "root-shell");
    assert_eq!(row["allowed"], false);
    let violations = row["violations"].as_array().unwrap();
    assert!(
        violations.iter().any(|v| v["action"] == "deny"
            && v["message"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("privileged")),
        "{row}"
    );
    let ok = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "fine"},
        "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]}});
    let rows = server
        .post_json("/api/policy/check?guardrails=false", &ok)
        .json();
    assert_eq!(rows[0]["allowed"], true, "{rows}");
    // The same verdicts as PolicyReports.
    let list = server
        .request(
            "POST",
            "/api/policy/check?guardrails=false&format=policy-report",
            Some(("application/yaml", privileged)),
        )
        .json();
    assert_eq!(list["kind"], "List", "{list}");
    let report = &list["items"][0];
    assert_eq!(report["apiVersion"], "wgpolicyk8s.io/v1alpha2");
    assert_eq!(report["metadata"]["namespace"], "dev");
    assert_eq!(report["results"][0]["source"], "idp-server");
    assert_eq!(report["results"][0]["resources"][0]["name"], "root-shell");
    assert!(report["summary"]["fail"].as_u64().unwrap() >= 2, "{report}");
    let r = server.request(
        "POST",
        "/api/policy/check?format=sarif",
        Some(("application/yaml", privileged)),
    );
    assert_eq!(r.status, 400);

    assert_eq!(server.get("/healthz").status, 200);
    assert_eq!(server.get("/readyz").status, 200);
    let metrics = server.get("/metrics").text();
    assert!(
        metrics.contains(
            "idp_http_requests_total{method=\"GET\",route=\"/api/search/query\",status=\"200\"} 2"
        ),
        "{metrics}"
    );
    assert!(metrics.contains("idp_http_request_duration_seconds_bucket{method=\"GET\",route=\"/healthz\",le=\"+Inf\"} 1"), "{metrics}");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("idp_catalog_entities ") && !l.ends_with(" 0")),
        "{metrics}"
    );

    // Backstage's validate-entity: 200 when valid, 400 with every problem otherwise.
    let valid = json!({"location": "url:https://git.example/org/repo/blob/main/catalog-info.yaml",
        "entity": {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "new-svc"},
            "spec": {"type": "service", "lifecycle": "experimental", "owner": "payments-team"}}});
    let r = server.post_json("/api/catalog/validate-entity", &valid);
    assert_eq!(r.status, 200, "{}", r.text());
    let invalid = json!({"location": "url:https://git.example/x.yaml",
        "entity": {"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
            "metadata": {"name": "Bad Name!"}, "spec": {"type": "service"}}});
    let r = server.post_json("/api/catalog/validate-entity", &invalid);
    assert_eq!(r.status, 400, "{}", r.text());
    let errors = r.json()["errors"].as_array().unwrap().clone();
    let messages: Vec<&str> = errors
        .iter()
        .map(|e| e["message"].as_str().unwrap())
        .collect();
    assert!(
        messages.iter().any(|m| m.starts_with("metadata.name")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("spec.lifecycle")),
        "{messages:?}"
    );
    assert!(errors.iter().all(|e| e["name"] == "InputError"));
    let r = server.post_json(
        "/api/catalog/validate-entity",
        &json!({"location": "nowhere", "entity": {}}),
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("type:target"), "{}", r.text());

    let doc = server.get("/api/openapi.json").json();
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/api/catalog/entities",
        "/api/catalog/entities/by-query",
        "/api/policy/check",
        "/api/catalog/validate-entity",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    assert!(doc["components"]["schemas"]["ByRefsRequest"]["properties"]["entityRefs"].is_object());
}

#[test]
fn portal_renders_and_escapes() {
    let server = start(&[]);
    let home = server.get("/");
    assert_eq!(home.status, 200);
    let html = home.text();
    assert!(html.contains("Web shop") && html.contains("Payments gateway"));
    assert!(html.contains("simulated cluster"));
    let apis = server.get("/?kind=api").text();
    assert!(apis.contains("Cart API") && !apis.contains("Web shop"));
    let found = server.get("/?q=fraud").text();
    assert!(found.contains("Fraud detector"));
    let page = server
        .get("/catalog/default/component/checkout-service")
        .text();
    assert!(
        page.contains("href=\"/catalog/default/group/storefront-team\""),
        "{page}"
    );
    assert!(
        page.contains("href=\"/catalog/default/api/payments-api\""),
        "{page}"
    );
    assert!(page.contains("<h2>Deployments</h2>") && page.contains("not deployed"));
    assert!(page.contains("No open previews"));
    assert_eq!(server.get("/catalog/default/component/nope").status, 404);

    // A location whose entity carries markup: registered, shown escaped.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog-info.yaml");
    std::fs::write(
        &file,
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: evil\n  title: \"<script>alert(1)</script>\"\n  description: \"a & b <b>bold</b>\"\nspec:\n  type: service\n  lifecycle: experimental\n  owner: storefront-team\n",
    )
    .unwrap();
    let r = server.post_json(
        "/api/catalog/locations",
        &json!({"type": "url", "target": format!("file://{}", file.display())}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let body = r.json();
    assert_eq!(body["location"]["type"], "url");
    assert_eq!(body["entities"][0]["metadata"]["name"], "evil");
    let again = server.post_json(
        "/api/catalog/locations",
        &json!({"type": "url", "target": format!("file://{}", file.display())}),
    );
    assert_eq!(again.status, 409);
    let page = server.get("/catalog/default/component/evil").text();
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(page.contains("a &amp; b &lt;b&gt;bold&lt;/b&gt;"));
    let home = server.get("/?q=evil").text();
    assert!(!home.contains("<script>alert"));
}

/// Commit `count` new components tagged `wave` to the server's catalog repository.
fn commit_wave(server: &Server, count: usize) {
    let mut text = String::new();
    for i in 0..count {
        let _ = write!(
            text,
            "---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: wave-{i}\n  tags: [wave]\nspec:\n  type: service\n  lifecycle: production\n  owner: platform-team\n"
        );
    }
    let repo_path = server.data.path().join("idp/catalog.git");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let repo = idp_core::git::GitRepo::open(&repo_path).await.unwrap();
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
    });
}

#[test]
fn concurrent_reads_during_a_refresh_see_all_or_nothing() {
    const WAVE: usize = 60;
    let server = Arc::new(start(&[]));
    commit_wave(&server, WAVE);
    let s = server.clone();
    let refresher =
        std::thread::spawn(move || s.request("POST", "/api/catalog/refresh", None).status);
    let mut readers = Vec::new();
    for _ in 0..100 {
        let s = server.clone();
        readers.push(std::thread::spawn(move || {
            // Read until the new wave shows up, so the reads overlap the refresh.
            for _ in 0..2000 {
                let list = s
                    .get("/api/catalog/entities?filter=kind=component&fields=metadata.tags")
                    .json();
                let n = list
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|e| {
                        e["metadata"]["tags"]
                            .as_array()
                            .is_some_and(|t| t.contains(&json!("wave")))
                    })
                    .count();
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
        assert!(r.join().unwrap(), "the refresh never became visible");
    }
    assert_eq!(refresher.join().unwrap(), 200);
    let after = server
        .get("/api/catalog/entities?filter=metadata.tags=wave&fields=kind")
        .json();
    assert_eq!(after.as_array().unwrap().len(), WAVE);
}

#[test]
fn config_schema_and_bad_config() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_idp-server"))
        .arg("config-schema")
        .output()
        .unwrap();
    assert!(out.status.success());
    let schema: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(schema["properties"]["catalog"].is_object(), "{schema}");
    assert!(schema["properties"]["listen"].is_object());

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("idp.yaml");
    std::fs::write(&path, "listen: nowhere\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_idp-server"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("nowhere") && err.contains("ADDR:PORT"),
        "{err}"
    );
    std::fs::write(&path, "catalog:\n  brnach: main\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_idp-server"))
        .arg("--config")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("brnach"));
}

#[cfg(unix)]
#[test]
fn sigterm_shuts_down_gracefully() {
    let mut server = start(&[]);
    assert_eq!(server.get("/healthz").status, 200);
    let pid = server.pid();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let code = server.wait_exit(std::time::Duration::from_secs(30));
    assert_eq!(code, Some(0), "exit after SIGTERM");
}
