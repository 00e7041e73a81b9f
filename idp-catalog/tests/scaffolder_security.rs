//! The scaffolder's safety: writes confined to the workspace, hostile templates stopped
//! by fuel, and secrets absent from every log line, output and error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use idp_catalog::scaffolder::{
    ActionRegistry, RunOptions, Scaffolder, StepStatus, Task, TaskStatus, Template, User,
};
use serde_json::json;

fn template(dir: &Path, steps: &str) -> Template {
    Template::from_yaml(&format!(
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {{name: hostile}}\nspec:\n  type: test\n  parameters:\n    properties:\n      evil: {{type: string}}\n      token: {{type: string, 'ui:field': Secret}}\n      password: {{type: string, 'ui:widget': password, pattern: '^[a-z]+$'}}\n  steps:\n{steps}"
    ))
    .unwrap()
    .with_base_dir(dir)
}

fn write(root: &Path, rel: &str, text: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

async fn run(t: &Template, values: serde_json::Value, opts: RunOptions) -> Task {
    Scaffolder::new(ActionRegistry::builtin())
        .with_fuel(50_000)
        .run(t, &values, &User::anonymous(), opts)
        .await
        .unwrap()
}

/// Nothing may appear next to the workspace (in its parent folder) but the workspace.
fn assert_nothing_escaped(parent: &Path) {
    let names: Vec<String> = std::fs::read_dir(parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["ws"], "files escaped the workspace: {names:?}");
}

#[tokio::test]
async fn traversal_in_a_skeleton_file_name_is_refused() {
    let tpl = tempfile::tempdir().unwrap();
    write(tpl.path(), "skel/${{ values.evil }}", "pwned\n");
    let t = template(
        tpl.path(),
        "    - {id: fetch, action: 'fetch:template', input: {url: ./skel, values: {evil: '${{ parameters.evil }}'}}}\n",
    );
    for evil in [
        "../escape.txt",
        "../../escape.txt",
        "/tmp/idp-scaffolder-escape.txt",
    ] {
        let parent = tempfile::tempdir().unwrap();
        let task = run(
            &t,
            json!({"evil": evil}),
            RunOptions::new().workspace(parent.path().join("ws")),
        )
        .await;
        assert_eq!(task.status, TaskStatus::Failed, "{evil}");
        assert_eq!(task.steps[0].status, StepStatus::Failed);
        let err = task.error.unwrap();
        assert!(
            err.contains("leaves the workspace") || err.contains("absolute"),
            "{err}"
        );
        assert_nothing_escaped(parent.path());
        assert!(!Path::new("/tmp/idp-scaffolder-escape.txt").exists());
    }
}

#[tokio::test]
async fn traversal_in_target_path_is_refused() {
    let tpl = tempfile::tempdir().unwrap();
    write(tpl.path(), "skel/a.txt", "a\n");
    for target in ["../out", "./sub/../../out", "/tmp/idp-scaffolder-target"] {
        let t = template(
            tpl.path(),
            &format!(
                "    - {{id: fetch, action: 'fetch:template', input: {{url: ./skel, targetPath: '{target}'}}}}\n"
            ),
        );
        let parent = tempfile::tempdir().unwrap();
        let task = run(
            &t,
            json!({}),
            RunOptions::new().workspace(parent.path().join("ws")),
        )
        .await;
        assert_eq!(task.status, TaskStatus::Failed, "{target}");
        assert_nothing_escaped(parent.path());
    }
    assert!(!Path::new("/tmp/idp-scaffolder-target").exists());
    // Reading outside the template folder is refused too.
    let t = template(
        tpl.path(),
        "    - {id: fetch, action: 'fetch:plain', input: {url: ../../etc}}\n",
    );
    let task = run(&t, json!({}), RunOptions::new()).await;
    assert_eq!(task.status, TaskStatus::Failed);
}

#[cfg(unix)]
#[tokio::test]
async fn symlinks_cannot_lead_out_of_the_workspace() {
    let tpl = tempfile::tempdir().unwrap();
    write(tpl.path(), "skel/a.txt", "a\n");
    let outside = tempfile::tempdir().unwrap();
    let parent = tempfile::tempdir().unwrap();
    let ws = parent.path().join("ws");
    std::fs::create_dir_all(&ws).unwrap();
    std::os::unix::fs::symlink(outside.path(), ws.join("link")).unwrap();
    std::os::unix::fs::symlink(outside.path().join("f.txt"), ws.join("file-link")).unwrap();

    for steps in [
        "    - {id: s, action: 'fetch:template', input: {url: ./skel, targetPath: link}}\n",
        "    - {id: s, action: 'fetch:plain', input: {url: ./skel, targetPath: link/deeper}}\n",
        "    - {id: s, action: 'fetch:plain:file', input: {url: ./skel/a.txt, targetPath: file-link}}\n",
        "    - {id: s, action: 'catalog:write', input: {filePath: link/catalog-info.yaml, entity: {apiVersion: backstage.io/v1alpha1, kind: Group, metadata: {name: g}, spec: {type: team}}}}\n",
        "    - {id: s, action: 'fs:rename', input: {files: [{from: link, to: moved}]}}\n    - {id: t, action: 'fetch:plain', input: {url: ./skel, targetPath: moved}}\n",
    ] {
        let t = template(tpl.path(), steps);
        let task = run(&t, json!({}), RunOptions::new().workspace(&ws)).await;
        assert_eq!(task.status, TaskStatus::Failed, "{steps}: {:?}", task.steps);
        assert!(
            std::fs::read_dir(outside.path()).unwrap().next().is_none(),
            "{steps} wrote outside the workspace"
        );
    }

    // A skeleton that contains a link is refused rather than copied or followed.
    std::os::unix::fs::symlink("/etc/passwd", tpl.path().join("skel/passwd")).unwrap();
    let t = template(
        tpl.path(),
        "    - {id: s, action: 'fetch:template', input: {url: ./skel}}\n",
    );
    let task = run(&t, json!({}), RunOptions::new().dry_run(true)).await;
    assert_eq!(task.status, TaskStatus::Failed);
    assert!(task.error.unwrap().contains("symbolic link"));
}

#[tokio::test]
async fn a_template_that_loops_forever_runs_out_of_fuel() {
    let tpl = tempfile::tempdir().unwrap();
    write(
        tpl.path(),
        "skel/boom.txt",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% for c in range(100000) %}x{% endfor %}{% endfor %}{% endfor %}",
    );
    let t = template(
        tpl.path(),
        "    - {id: spin, action: 'fetch:template', input: {url: ./skel}}\n",
    );
    let task = run(&t, json!({}), RunOptions::new().dry_run(true)).await;
    assert_eq!(task.status, TaskStatus::Failed);
    let err = task.error.unwrap();
    assert!(err.contains("fuel") && err.contains("step spin"), "{err}");

    // The same in a step input, and through recursion.
    let t = template(
        tpl.path(),
        "    - {id: spin, action: 'debug:log', input: {message: '{% for a in range(100000) %}{% for b in range(100000) %}x{% endfor %}{% endfor %}'}}\n",
    );
    let task = run(&t, json!({}), RunOptions::new()).await;
    assert!(task.error.unwrap().contains("fuel"));
    let t = template(
        tpl.path(),
        "    - {id: deep, action: 'debug:log', input: {message: '{% macro f(n) %}${{ f(n + 1) }}{% endmacro %}${{ f(0) }}'}}\n",
    );
    let task = run(&t, json!({}), RunOptions::new()).await;
    assert_eq!(task.status, TaskStatus::Failed);
}

#[tokio::test]
async fn secrets_never_appear_in_logs_outputs_or_errors() {
    const TOKEN: &str = "tok-9f8e7d6c5b4a";
    const PASSWORD: &str = "hunter";
    const API_KEY: &str = "key-0a1b2c3d4e5f";
    let tpl = tempfile::tempdir().unwrap();
    write(tpl.path(), "skel/config.txt", "token=${{ values.token }}\n");
    let steps = "    - {id: log, action: 'debug:log', input: {message: 'token ${{ parameters.token }} pw ${{ parameters.password }} key ${{ secrets.apiKey }}'}}
    - {id: fetch, action: 'fetch:template', input: {url: ./skel, values: {token: '${{ parameters.token }}'}}}
    - {id: list, action: 'debug:log', input: {listWorkspace: with-contents}}
    - {id: write, action: 'catalog:write', input: {entity: {apiVersion: backstage.io/v1alpha1, kind: Group, metadata: {name: g, annotations: {leak: '${{ secrets.apiKey }}'}}, spec: {type: team}}}}
    - {id: publish, action: 'publish:git', input: {repoUrl: 'file:///nonexistent-dir-for-dry-run.git', gitCommitMessage: 'with ${{ parameters.token }}'}}
    - {id: fail, action: 'debug:log', input: {message: '${{ parameters.token | parseEntityRef }}'}}
";
    let t = template(tpl.path(), steps);
    let values = json!({"token": TOKEN, "password": PASSWORD});
    let task = run(
        &t,
        values,
        RunOptions::new().dry_run(true).secret("apiKey", API_KEY),
    )
    .await;
    // The last step fails with an error about the (secret) value: it must be redacted too.
    assert_eq!(task.status, TaskStatus::Failed, "{task:?}");
    assert_eq!(task.steps[4].status, StepStatus::Completed, "{task:?}");
    let everything = serde_json::to_string(&task).unwrap();
    for secret in [TOKEN, PASSWORD, API_KEY] {
        for line in &task.log {
            assert!(
                !line.message.contains(secret),
                "log line leaks: {}",
                line.message
            );
        }
        assert!(
            !everything.contains(secret),
            "task leaks {secret}: {everything}"
        );
    }
    assert!(
        task.log
            .iter()
            .any(|l| l.message == "token *** pw *** key ***")
    );
    assert!(everything.contains("***"));

    // Validation errors never quote a secret field's value.
    let err = Scaffolder::new(ActionRegistry::builtin())
        .run(
            &t,
            &json!({"password": "Not-Lower-Case-Secret"}),
            &User::anonymous(),
            RunOptions::new(),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("parameters.password"), "{err}");
    assert!(!err.to_string().contains("Not-Lower-Case-Secret"), "{err}");
}
