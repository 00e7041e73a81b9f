//! The golden-path templates shipped in examples/templates, end to end: real bare Git
//! remotes over file://, the InMemoryCatalog, dry runs without side effects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use idp_catalog::InMemoryCatalog;
use idp_catalog::scaffolder::{
    ActionRegistry, RunOptions, Scaffolder, Task, TaskStatus, Template, User,
};
use idp_core::git::{CommitRequest, GitRepo, Identity, InitOptions};
use idp_core::{Catalog, EntityRef};
use serde_json::{Value, json};

fn template(name: &str) -> Template {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/templates")
        .join(name)
        .join("template.yaml");
    Template::load(path).unwrap()
}

fn yaml(bytes: &[u8]) -> Value {
    let docs = idp_catalog::parse::parse_documents(std::str::from_utf8(bytes).unwrap()).unwrap();
    assert_eq!(docs.len(), 1);
    docs.into_iter().next().unwrap().value
}

/// The files under `dir` at `rev`, by path relative to `dir`.
async fn tree(repo: &GitRepo, rev: &str, dir: &str) -> std::collections::BTreeMap<String, Vec<u8>> {
    repo.read_tree(rev, dir)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, v)| {
            (
                k.strip_prefix(&format!("{dir}/")).unwrap_or(&k).to_owned(),
                v,
            )
        })
        .collect()
}

fn url(p: &Path) -> String {
    format!("file://{}", p.display())
}

async fn gitops_remote(dir: &Path) -> (PathBuf, GitRepo) {
    let path = dir.join("gitops.git");
    let repo = GitRepo::init(&path, InitOptions::bare("main"))
        .await
        .unwrap();
    repo.commit(
        CommitRequest::new("main", "bootstrap", Identity::new("ops", "ops@example.com"))
            .put("README.md", "# GitOps\n")
            .put("envs/dev/.keep", ""),
    )
    .await
    .unwrap();
    (path, repo)
}

async fn run(t: &Template, catalog: &Arc<InMemoryCatalog>, values: Value) -> Task {
    Scaffolder::new(ActionRegistry::builtin())
        .with_catalog(catalog.clone())
        .run(
            t,
            &values,
            &User::new("user:default/jane"),
            RunOptions::new(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn rust_service_creates_a_repository_and_registers_the_component() {
    let t = template("rust-service");
    let dir = tempfile::tempdir().unwrap();
    for (ci, present, absent) in [
        (
            "github-actions",
            ".github/workflows/ci.yaml",
            ".gitlab-ci.yml",
        ),
        ("gitlab-ci", ".gitlab-ci.yml", ".github/workflows/ci.yaml"),
    ] {
        let remote = dir.path().join(format!("orders-{ci}.git"));
        let catalog = Arc::new(InMemoryCatalog::new());
        let task = run(
            &t,
            &catalog,
            json!({"name": "orders", "owner": "group:default/team-a", "repoUrl": url(&remote),
                   "ci": ci, "port": 9090}),
        )
        .await;
        assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);

        let repo = GitRepo::open(&remote).await.unwrap();
        let files = repo.read_tree("main", "").await.unwrap();
        assert!(files.contains_key(present), "{ci}: {:?}", files.keys());
        assert!(!files.contains_key(absent), "{ci}: {:?}", files.keys());
        let cargo = String::from_utf8(files["Cargo.toml"].clone()).unwrap();
        assert!(cargo.contains("name = \"orders\""), "{cargo}");
        let main = String::from_utf8(files["src/main.rs"].clone()).unwrap();
        assert!(
            main.contains("unwrap_or(9090)") && main.contains("\"9090\""),
            "{main}"
        );

        let score = yaml(&files["score.yaml"]);
        assert_eq!(score["apiVersion"], "score.dev/v1b1");
        assert_eq!(score["metadata"]["name"], "orders");
        assert_eq!(score["service"]["ports"]["http"]["targetPort"], 9090);
        assert_eq!(score["containers"]["main"]["variables"]["PORT"], "9090");

        let info = yaml(&files["catalog-info.yaml"]);
        assert_eq!(info["spec"]["owner"], "group:default/team-a");
        assert!(info["spec"].get("system").is_none());

        let entity = catalog
            .get(&"component:default/orders".parse::<EntityRef>().unwrap())
            .await
            .unwrap()
            .expect("registered");
        assert_eq!(entity.spec_str("lifecycle"), Some("experimental"));
        assert_eq!(task.output["links"][0]["url"], url(&remote));
        assert_eq!(
            task.output["links"][1]["entityRef"],
            "component:default/orders"
        );
        let head = repo.resolve("main").await.unwrap().to_hex();
        assert!(
            task.output["text"][0]["content"]
                .as_str()
                .unwrap()
                .contains(&head)
        );
    }
}

#[tokio::test]
async fn rust_service_dry_run_has_no_side_effects() {
    let t = template("rust-service");
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("never.git");
    let catalog = Arc::new(InMemoryCatalog::new());
    let task = Scaffolder::new(ActionRegistry::builtin())
        .with_catalog(catalog.clone())
        .dry_run(
            &t,
            &json!({"name": "orders", "owner": "team-a", "repoUrl": url(&remote), "system": "shop"}),
            &User::anonymous(),
        )
        .await
        .unwrap();
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    let files = task.files.unwrap();
    assert!(files["catalog-info.yaml"].contains("system: shop"));
    assert!(files.contains_key("score.yaml"));
    assert!(!remote.exists(), "a dry run created the remote");
    assert_eq!(catalog.snapshot().len(), 0);
    assert_eq!(
        task.steps[2].output["entityRef"],
        "component:default/orders"
    );
}

async fn infra(
    template_name: &str,
    values: Value,
) -> (Task, GitRepo, Arc<InMemoryCatalog>, tempfile::TempDir) {
    let t = template(template_name);
    let dir = tempfile::tempdir().unwrap();
    let (path, repo) = gitops_remote(dir.path()).await;
    let mut values = values;
    values["gitopsRepoUrl"] = Value::String(url(&path));
    let catalog = Arc::new(InMemoryCatalog::new());
    let task = run(&t, &catalog, values).await;
    (task, repo, catalog, dir)
}

#[tokio::test]
async fn postgres_database_as_a_crossplane_claim() {
    let (task, repo, catalog, _dir) = infra(
        "postgres-database",
        json!({"name": "orders-db", "owner": "group:default/team-a", "environment": "dev"}),
    )
    .await;
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    assert_eq!(
        task.steps[1].status,
        idp_catalog::scaffolder::StepStatus::Skipped
    );
    let files = tree(&repo, "main", "envs/dev/databases/orders-db").await;
    assert_eq!(files.keys().collect::<Vec<_>>(), ["claim.yaml"]);
    let claim = yaml(&files["claim.yaml"]);
    assert_eq!(claim["kind"], "PostgreSQLInstance");
    assert_eq!(claim["metadata"]["namespace"], "team-a");
    assert_eq!(claim["spec"]["parameters"]["storageGB"], 10);
    assert_eq!(claim["spec"]["parameters"]["version"], "16");
    // Committed on top of the existing history, which is kept.
    let all = repo.read_tree("main", "").await.unwrap();
    assert!(all.contains_key("README.md"));
    let log = repo
        .log("main", &idp_core::git::LogOptions::default())
        .await
        .unwrap();
    assert_eq!(log.len(), 2);
    assert!(
        log[0].message.contains("requested by user:default/jane"),
        "{}",
        log[0].message
    );

    let r: EntityRef = "resource:default/orders-db-dev".parse().unwrap();
    let entity = catalog.get(&r).await.unwrap().expect("registered");
    assert_eq!(entity.spec_str("owner"), Some("group:default/team-a"));
    assert_eq!(entity.spec_str("type"), Some("database"));
    assert_eq!(
        task.output["links"][0]["entityRef"],
        "resource:default/orders-db-dev"
    );
}

#[tokio::test]
async fn postgres_database_as_kubernetes_manifests_on_a_new_branch() {
    let (task, repo, catalog, _dir) = infra(
        "postgres-database",
        json!({"name": "orders-db", "owner": "team-a", "environment": "staging",
               "provisioner": "kubernetes", "storageGB": 50, "version": "17",
               "gitopsBranch": "add-orders-db"}),
    )
    .await;
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    let main = repo.resolve("main").await.unwrap();
    let log = repo
        .log("add-orders-db", &idp_core::git::LogOptions::default())
        .await
        .unwrap();
    assert_eq!(log[0].parents, [main], "the new branch starts from main");
    let files = tree(&repo, "add-orders-db", "envs/staging/databases/orders-db").await;
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["service.yaml", "statefulset.yaml"]
    );
    let sts = yaml(&files["statefulset.yaml"]);
    assert_eq!(sts["kind"], "StatefulSet");
    assert_eq!(
        sts["spec"]["template"]["spec"]["containers"][0]["image"],
        "postgres:17"
    );
    assert_eq!(
        sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
        "50Gi"
    );
    let set = idp_core::ManifestSet::parse(&files["statefulset.yaml"], None).unwrap();
    assert_eq!(set.len(), 1);
    assert!(
        repo.read_tree("main", "envs/staging")
            .await
            .unwrap_or_default()
            .is_empty()
    );
    let r: EntityRef = "resource:default/orders-db-staging".parse().unwrap();
    assert!(catalog.get(&r).await.unwrap().is_some());
}

#[tokio::test]
async fn infrastructure_parameters_are_checked() {
    let t = template("postgres-database");
    let err = Scaffolder::new(ActionRegistry::builtin())
        .validate(
            &t,
            &json!({"name": "db", "owner": "team-a", "environment": "prod", "storageGB": 5, "gitopsRepoUrl": "file:///x"}),
        )
        .unwrap_err();
    assert!(err.to_string().contains("parameters.storageGB"), "{err}");
    let t = template("object-bucket");
    let err = Scaffolder::new(ActionRegistry::builtin())
        .validate(
            &t,
            &json!({"name": "assets", "owner": "team-a", "environment": "prod", "publicRead": true, "gitopsRepoUrl": "file:///x"}),
        )
        .unwrap_err();
    assert!(err.to_string().contains("parameters.environment"), "{err}");
}

#[tokio::test]
async fn object_bucket_in_both_forms() {
    let (task, repo, catalog, _dir) = infra(
        "object-bucket",
        json!({"name": "assets", "owner": "group:default/team-b", "environment": "prod", "versioning": true}),
    )
    .await;
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    let files = tree(&repo, "main", "envs/prod/buckets/assets").await;
    let claim = yaml(&files["bucket.yaml"]);
    assert_eq!(claim["kind"], "ObjectBucket");
    assert_eq!(claim["spec"]["parameters"]["versioning"], true);
    assert_eq!(claim["metadata"]["namespace"], "team-b");
    let entity = catalog
        .get(&"resource:default/assets-prod".parse::<EntityRef>().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(entity.spec_str("owner"), Some("group:default/team-b"));

    let (task, repo, _catalog, _dir) = infra(
        "object-bucket",
        json!({"name": "assets", "owner": "team-b", "environment": "dev",
               "provisioner": "kubernetes", "publicRead": true}),
    )
    .await;
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    let files = tree(&repo, "main", "envs/dev/buckets/assets").await;
    let obc = yaml(&files["objectbucketclaim.yaml"]);
    assert_eq!(obc["kind"], "ObjectBucketClaim");
    assert_eq!(obc["spec"]["generateBucketName"], "assets-dev");
    assert_eq!(
        obc["spec"]["additionalConfig"]["bucketPolicy"],
        "public-read"
    );
    assert_eq!(obc["spec"]["additionalConfig"]["versioning"], "false");
}

#[test]
fn the_shipped_templates_are_valid_catalog_entities() {
    for name in ["rust-service", "postgres-database", "object-bucket"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../examples/templates")
            .join(name)
            .join("template.yaml");
        let text = std::fs::read_to_string(path).unwrap();
        let value = yaml(text.as_bytes());
        let catalog = InMemoryCatalog::new();
        let report = catalog.apply(
            "templates",
            idp_catalog::Mutation::Full(vec![idp_catalog::EntityInput::new(value)]),
        );
        assert!(report.rejected.is_empty(), "{name}: {:?}", report.rejected);
        let t = template(name);
        assert!(
            Scaffolder::new(ActionRegistry::builtin()).check(&t).is_ok(),
            "{name} uses only built-in actions"
        );
    }
}
