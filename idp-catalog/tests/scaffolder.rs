//! The scaffolder: Backstage's documented v1beta3 templates run unmodified, parameters,
//! expressions, `if`, `each`, dry runs, cancellation and custom actions.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::too_many_lines)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use idp_catalog::InMemoryCatalog;
use idp_catalog::scaffolder::builtin::PublishGit;
use idp_catalog::scaffolder::{
    Action, ActionContext, ActionRegistry, CancelToken, RunOptions, Scaffolder, StepStatus,
    TaskStatus, Template, User, parse_repo_url,
};
use idp_core::git::GitRepo;
use idp_core::{Catalog, EntityRef};
use serde_json::{Value, json};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scaffolder")
        .join(name)
}

/// `publish:github` as a platform would register it: here it publishes to a local bare
/// repository per owner/repo, through the built-in `publish:git`.
#[derive(Debug)]
struct FakeGithub {
    root: PathBuf,
}

#[async_trait]
impl Action for FakeGithub {
    fn id(&self) -> &str {
        "publish:github"
    }
    fn description(&self) -> &str {
        "test double"
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "required": ["repoUrl"], "properties": {"repoUrl": {"type": "string"}}})
    }
    async fn run(&self, ctx: &mut ActionContext) -> idp_core::Result<()> {
        let repo = parse_repo_url(ctx.input_str("repoUrl")?)?;
        let (host, owner, name) = (
            repo["host"].as_str().unwrap().to_owned(),
            repo["owner"].as_str().unwrap().to_owned(),
            repo["repo"].as_str().unwrap().to_owned(),
        );
        let description = ctx.input_opt_str("description").unwrap_or("").to_owned();
        let remote = self.root.join(&owner).join(format!("{name}.git"));
        ctx.input = json!({
            "repoUrl": format!("file://{}", remote.display()),
            "gitCommitMessage": description,
        });
        PublishGit.run(ctx).await?;
        ctx.output("remoteUrl", format!("https://{host}/{owner}/{name}"));
        ctx.output(
            "repoContentsUrl",
            format!("https://{host}/{owner}/{name}/blob/main"),
        );
        Ok(())
    }
}

/// `fetch:plain` for remote URLs, served from a fixture folder.
#[derive(Debug)]
struct FixtureFetch {
    dir: PathBuf,
}

#[async_trait]
impl Action for FixtureFetch {
    fn id(&self) -> &str {
        "fetch:plain"
    }
    fn description(&self) -> &str {
        "test double"
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object", "required": ["url"]})
    }
    async fn run(&self, ctx: &mut ActionContext) -> idp_core::Result<()> {
        let target = ctx.input_opt_str("targetPath").unwrap_or(".").to_owned();
        for entry in std::fs::read_dir(&self.dir).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            ctx.workspace.write(
                &format!("{target}/{name}"),
                std::fs::read(entry.path()).unwrap(),
            )?;
        }
        Ok(())
    }
}

#[tokio::test]
async fn backstage_documented_template_runs_unmodified() {
    let template = Template::load(fixture("backstage-demo/template.yaml")).unwrap();
    assert_eq!(template.parameters.len(), 2);
    assert_eq!(
        template.parameters[0].ui_hints()["owner"]["ui:field"],
        "OwnerPicker"
    );

    // Without a publish:github implementation the template is refused up front.
    let plain = Scaffolder::new(ActionRegistry::builtin());
    let err = plain.check(&template).unwrap_err();
    assert!(err.to_string().contains("publish:github"), "{err}");
    assert!(!err.to_string().contains("fetch:template"), "{err}");

    let remotes = tempfile::tempdir().unwrap();
    let mut registry = ActionRegistry::builtin();
    registry.register(Arc::new(FakeGithub {
        root: remotes.path().to_path_buf(),
    }));
    registry.register(Arc::new(FixtureFetch {
        dir: fixture("backstage-demo/community"),
    }));
    let catalog = Arc::new(InMemoryCatalog::new());
    let scaffolder = Scaffolder::new(registry).with_catalog(catalog.clone());
    let values = json!({
        "name": "my-app",
        "owner": "group:default/team-a",
        "repoUrl": "github.com?owner=acme&repo=my-app",
    });
    let task = scaffolder
        .run(
            &template,
            &values,
            &User::new("user:default/jane"),
            RunOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    assert!(task.steps.iter().all(|s| s.status == StepStatus::Completed));

    let repo = GitRepo::open(remotes.path().join("acme/my-app.git"))
        .await
        .unwrap();
    let files = repo.read_tree("main", "").await.unwrap();
    let info = String::from_utf8(files["catalog-info.yaml"].clone()).unwrap();
    assert!(info.contains("name: \"my-app\""), "{info}");
    assert_eq!(
        String::from_utf8(files["index.js"].clone()).unwrap(),
        "console.log('Hello from my-app!');\n"
    );
    assert!(files.contains_key("community/README.md"));
    let log = repo
        .log("main", &idp_core::git::LogOptions::default())
        .await
        .unwrap();
    assert_eq!(log[0].message.trim(), "This is my-app");

    let component: EntityRef = "component:default/my-app".parse().unwrap();
    let entity = catalog.get(&component).await.unwrap().expect("registered");
    assert_eq!(
        entity.to_value()["metadata"]["annotations"]["backstage.io/managed-by-location"],
        "url:https://github.com/acme/my-app/blob/main/catalog-info.yaml"
    );
    assert_eq!(
        task.output["links"][0]["url"],
        "https://github.com/acme/my-app"
    );
    assert_eq!(
        task.output["links"][1]["entityRef"],
        "component:default/my-app"
    );
    assert_eq!(task.output["links"][1]["icon"], "catalog");
}

#[tokio::test]
async fn parameters_are_validated_per_field_over_all_pages() {
    let template = Template::load(fixture("backstage-demo/template.yaml")).unwrap();
    let mut registry = ActionRegistry::builtin();
    registry.register(Arc::new(FakeGithub {
        root: PathBuf::from("/nonexistent"),
    }));
    let scaffolder = Scaffolder::new(registry);
    let err = scaffolder
        .run(
            &template,
            &json!({"owner": 42}),
            &User::anonymous(),
            RunOptions::new(),
        )
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert_eq!(err.kind(), idp_core::ErrorKind::InvalidInput);
    assert!(msg.contains("parameters.name: is required"), "{msg}");
    assert!(msg.contains("parameters.repoUrl: is required"), "{msg}");
    assert!(msg.contains("parameters.owner:"), "{msg}");
    let errors =
        idp_catalog::scaffolder::validate_parameters(&template, &json!({"owner": 42})).unwrap_err();
    let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["name", "owner", "repoUrl"]);
}

async fn run_conditional(include_docs: bool) -> idp_catalog::scaffolder::Task {
    let template = Template::load(fixture("backstage-conditional/template.yaml")).unwrap();
    let scaffolder = Scaffolder::new(ActionRegistry::builtin());
    let values = json!({
        "name": "widgets",
        "repoUrl": "github.com?owner=acme&repo=widgets",
        "includeDocs": include_docs,
        "things": ["apples", "oranges", "bananas"],
        "labels": {"tier": "gold", "zone": "eu"},
    });
    scaffolder
        .dry_run(&template, &values, &User::new("user:default/jane"))
        .await
        .unwrap()
}

#[tokio::test]
async fn if_each_blocks_and_filters_behave_as_in_backstage() {
    let task = run_conditional(false).await;
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    let status = |id: &str| task.steps.iter().find(|s| s.id == id).unwrap().status;
    assert_eq!(status("docs"), StepStatus::Skipped);
    assert_eq!(status("no-docs"), StepStatus::Completed);
    let each = task.steps.iter().find(|s| s.id == "log-message").unwrap();
    assert_eq!(each.iterations, 3);
    let lines: Vec<&str> = task.log.iter().map(|l| l.message.as_str()).collect();
    for thing in ["apples", "oranges", "bananas"] {
        assert!(
            lines.contains(&format!("contents: {thing}!").as_str()),
            "{lines:?}"
        );
    }
    assert!(lines.contains(&"label tier=gold"), "{lines:?}");
    assert!(lines.contains(&"label zone=eu"), "{lines:?}");

    let files = task.files.as_ref().unwrap();
    assert!(!files.contains_key("docs/index.md"), "{:?}", files.keys());
    assert!(files.contains_key("src/widgets.txt"), "{:?}", files.keys());
    let readme = &files["README.md"];
    assert!(
        readme.contains("Repository: acme/widgets on github.com"),
        "{readme}"
    );
    assert!(readme.contains("Owner: group:default/team-a"), "{readme}");
    assert!(
        readme.contains("- apples\n- oranges\n- bananas"),
        "{readme}"
    );
    assert!(readme.contains("{{ github.sha }}"), "{readme}");
    assert!(!readme.contains("Documentation lives"), "{readme}");
    assert_eq!(
        task.output["links"][0]["url"],
        "https://github.com/acme/widgets"
    );
    assert_eq!(task.output["text"][0]["content"], "team-a");

    let with_docs = run_conditional(true).await;
    assert_eq!(
        with_docs.status,
        TaskStatus::Completed,
        "{:?}",
        with_docs.error
    );
    let files = with_docs.files.as_ref().unwrap();
    assert!(files.contains_key("docs/index.md"));
    assert!(files["README.md"].contains("Documentation lives in docs/."));
    let status = |id: &str| with_docs.steps.iter().find(|s| s.id == id).unwrap().status;
    assert_eq!(status("docs"), StepStatus::Completed);
    assert_eq!(status("no-docs"), StepStatus::Skipped);
}

/// Records its input as output `value` and logs it.
#[derive(Debug)]
struct Echo;

#[async_trait]
impl Action for Echo {
    fn id(&self) -> &str {
        "test:echo"
    }
    fn description(&self) -> &str {
        "echoes its input"
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    async fn run(&self, ctx: &mut ActionContext) -> idp_core::Result<()> {
        let v = ctx.input.get("value").cloned().unwrap_or(Value::Null);
        ctx.log(format!("echo {v}"));
        ctx.output("value", v);
        Ok(())
    }
}

fn echo_scaffolder() -> Scaffolder {
    let mut registry = ActionRegistry::builtin();
    registry.register(Arc::new(Echo));
    Scaffolder::new(registry)
}

fn inline(yaml: &str) -> Template {
    Template::from_yaml(&format!(
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {{name: inline}}\nspec:\n  type: test\n{yaml}"
    ))
    .unwrap()
}

#[tokio::test]
async fn expressions_keep_native_types_and_each_collects_outputs() {
    let t = inline(
        r#"  parameters:
    properties:
      replicas: {type: integer, default: 3}
      ports: {type: array, default: [80, 443]}
  steps:
    - id: one
      action: test:echo
      input: {value: '${{ parameters.replicas }}'}
    - id: many
      each: ${{ parameters.ports }}
      action: test:echo
      input: {value: '${{ each.value * 10 }}'}
    - id: after
      action: test:echo
      input:
        value: "${{ steps.many.output.value | join(',') }} / ${{ steps['one'].output.value + 1 }}"
"#,
    );
    let task = echo_scaffolder()
        .run(&t, &json!({}), &User::anonymous(), RunOptions::new())
        .await
        .unwrap();
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    assert_eq!(task.steps[0].output["value"], json!(3));
    assert_eq!(task.steps[1].output["value"], json!([800, 4430]));
    assert_eq!(task.steps[1].iterations, 2);
    assert_eq!(task.steps[2].output["value"], json!("800,4430 / 4"));
}

#[tokio::test]
async fn an_undefined_value_fails_naming_the_expression_and_step() {
    let t = inline(
        r"  parameters: {properties: {name: {type: string}}}
  steps:
    - id: greet
      action: debug:log
      input: {message: 'hello ${{ parameters.nme }}'}
    - id: never
      action: debug:log
      input: {message: x}
",
    );
    let task = Scaffolder::new(ActionRegistry::builtin())
        .run(
            &t,
            &json!({"name": "a"}),
            &User::anonymous(),
            RunOptions::new(),
        )
        .await
        .unwrap();
    assert_eq!(task.status, TaskStatus::Failed);
    let err = task.error.clone().unwrap();
    assert!(err.contains("step `greet`"), "{err}");
    assert!(err.contains("parameters.nme"), "{err}");
    assert!(err.contains("undefined"), "{err}");
    assert_eq!(task.steps[0].status, StepStatus::Failed);
    assert_eq!(task.steps[1].status, StepStatus::NotRun);
    assert!(task.into_result().is_err());
}

#[tokio::test]
async fn user_and_secrets_are_in_the_context() {
    let t = inline(
        r"  steps:
    - id: who
      action: test:echo
      input: {value: '${{ user.ref }} ${{ user.entity.spec.profile.email }} ${{ secrets.token | length }}'}
",
    );
    let user = User::new("user:default/jane")
        .with_entity(json!({"spec": {"profile": {"email": "jane@example.com"}}}));
    let task = echo_scaffolder()
        .run(
            &t,
            &json!({}),
            &user,
            RunOptions::new().secret("token", "abcdef"),
        )
        .await
        .unwrap();
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    assert_eq!(
        task.steps[0].output["value"],
        "user:default/jane jane@example.com 6"
    );
}

#[tokio::test]
async fn fetch_template_options() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |p: &str, s: &str| {
        let path = root.join(p);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, s).unwrap();
    };
    write("skel/a.txt", "a=${{ values.name }}\n");
    write("skel/static/raw.txt", "raw ${{ values.name }}\n");
    write("skel/${{ values.name }}/n.txt", "n\n");
    write("njk/one.txt.njk", "one ${{ values.name }}\n");
    write("njk/two.txt", "two ${{ values.name }}\n");
    write(
        "cookie/{{ cookiecutter.name }}.md",
        "# {{ cookiecutter.name }} {{ values.name }}\n",
    );
    let t = inline(
        r"  steps:
    - id: plain
      action: fetch:template
      input:
        url: ./skel
        targetPath: out
        values: {name: cart}
        copyWithoutTemplating: ['static/*']
    - id: ext
      action: fetch:template
      input: {url: ./njk, targetPath: njk, values: {name: cart}, templateFileExtension: true}
    - id: cookie
      action: fetch:template
      input: {url: ./cookie, targetPath: cc, values: {name: cart}, cookiecutterCompat: true}
    - id: file
      action: fetch:plain:file
      input: {url: ./njk/two.txt, targetPath: copied/two.txt}
    - id: mv
      action: fs:rename
      input: {files: [{from: copied/two.txt, to: moved/two.txt}]}
    - id: rm
      action: fs:delete
      input: {files: ['out/**/n.txt']}
",
    )
    .with_base_dir(root);
    let task = Scaffolder::new(ActionRegistry::builtin())
        .dry_run(&t, &json!({}), &User::anonymous())
        .await
        .unwrap();
    assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
    let files = task.files.unwrap();
    assert_eq!(files["out/a.txt"], "a=cart\n");
    assert_eq!(files["out/static/raw.txt"], "raw ${{ values.name }}\n");
    assert!(!files.contains_key("out/cart/n.txt"), "{:?}", files.keys());
    assert_eq!(files["njk/one.txt"], "one cart\n");
    assert_eq!(files["njk/two.txt"], "two ${{ values.name }}\n");
    assert_eq!(files["cc/cart.md"], "# cart cart\n");
    assert_eq!(files["moved/two.txt"], "two ${{ values.name }}\n");
    assert!(!files.contains_key("copied/two.txt"));
}

/// Waits until cancelled.
#[derive(Debug)]
struct Forever;

#[async_trait]
impl Action for Forever {
    fn id(&self) -> &str {
        "test:forever"
    }
    fn description(&self) -> &str {
        "never ends"
    }
    fn input_schema(&self) -> Value {
        json!({"type": "object"})
    }
    async fn run(&self, ctx: &mut ActionContext) -> idp_core::Result<()> {
        ctx.log("waiting");
        std::future::pending::<()>().await;
        Ok(())
    }
}

#[tokio::test]
async fn a_cancelled_task_stops_the_running_step_and_skips_the_rest() {
    let mut registry = ActionRegistry::builtin();
    registry.register(Arc::new(Forever));
    let t = inline(
        r"  steps:
    - {id: first, action: debug:log, input: {message: one}}
    - {id: wait, action: 'test:forever'}
    - {id: last, action: debug:log, input: {message: never}}
",
    );
    let token = CancelToken::new();
    let canceller = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        canceller.cancel();
    });
    let task = Scaffolder::new(registry)
        .run(
            &t,
            &json!({}),
            &User::anonymous(),
            RunOptions::new().cancel_token(token),
        )
        .await
        .unwrap();
    assert_eq!(task.status, TaskStatus::Cancelled);
    assert_eq!(task.steps[0].status, StepStatus::Completed);
    assert_eq!(task.steps[1].status, StepStatus::Cancelled);
    assert_eq!(task.steps[2].status, StepStatus::NotRun);
    assert!(!task.log.iter().any(|l| l.message == "never"));
}

#[tokio::test]
async fn step_input_is_checked_against_the_action_schema() {
    let t = inline(
        r"  steps:
    - {id: fetch, action: 'fetch:template', input: {targetPath: 3}}
",
    );
    let task = Scaffolder::new(ActionRegistry::builtin())
        .run(&t, &json!({}), &User::anonymous(), RunOptions::new())
        .await
        .unwrap();
    assert_eq!(task.status, TaskStatus::Failed);
    let err = task.error.unwrap();
    assert!(err.contains("url"), "{err}");
    assert!(err.contains("input.targetPath"), "{err}");
}

#[test]
fn entity_ref_and_repo_url_filters_match_backstage() {
    use idp_catalog::scaffolder::parse_entity_ref;
    assert_eq!(
        parse_entity_ref("group:techdocs", None, None).unwrap(),
        json!({"kind": "group", "namespace": "default", "name": "techdocs"})
    );
    assert_eq!(
        parse_entity_ref("techdocs", Some("group"), Some("another-namespace")).unwrap(),
        json!({"kind": "group", "namespace": "another-namespace", "name": "techdocs"})
    );
    assert_eq!(
        parse_entity_ref("user:ops/jane", Some("group"), None).unwrap()["namespace"],
        "ops"
    );
    assert!(parse_entity_ref("component:", None, None).is_err());
    let v = parse_repo_url("dev.azure.com?organization=org&project=proj&repo=r&owner=o").unwrap();
    assert_eq!(v["organization"], "org");
    assert_eq!(v["project"], "proj");
    assert!(v.get("workspace").is_none());
    let r = idp_catalog::scaffolder::Renderer::new(100_000).unwrap();
    let ctx =
        json!({"p": {"repoUrl": "github.com?repo=backstage&owner=backstage", "owner": "techdocs"}});
    assert_eq!(
        r.render_str("${{ p.repoUrl | projectSlug }}", &ctx, "t")
            .unwrap(),
        "backstage/backstage"
    );
    assert_eq!(
        r.render_str(
            "${{ p.owner | parseEntityRef({ defaultKind:\"group\", defaultNamespace:\"another-namespace\" }) | pick('namespace') }}",
            &ctx,
            "t"
        )
        .unwrap(),
        "another-namespace"
    );
    assert_eq!(
        r.render_value(&json!("${{ p.repoUrl | parseRepoUrl }}"), &ctx, "t")
            .unwrap(),
        json!({"host": "github.com", "owner": "backstage", "repo": "backstage"})
    );
}
