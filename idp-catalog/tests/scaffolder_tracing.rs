//! Secrets never reach the `tracing` output. In a binary of its own: `tracing` caches
//! per-callsite interest process-wide, so a thread-scoped subscriber is only reliable
//! when no other test runs at the same time.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use idp_catalog::scaffolder::{
    ActionRegistry, RunOptions, Scaffolder, StepStatus, Task, TaskStatus, Template, User,
};
use serde_json::json;

fn template(dir: &Path, steps: &str) -> Template {
    Template::from_yaml(&format!(
        "apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {{name: t}}\nspec:\n  type: test\n  parameters:\n    properties:\n      token: {{type: string, 'ui:field': Secret}}\n  steps:\n{steps}"
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
        .run(t, &values, &User::anonymous(), opts)
        .await
        .unwrap()
}

/// Collects everything a `tracing` subscriber writes.
#[derive(Clone, Default)]
struct Capture(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

#[tokio::test(flavor = "current_thread")]
async fn secrets_never_reach_the_tracing_logs() {
    const TOKEN: &str = "tok-1234567890ab";
    const API_KEY: &str = "key-ba0987654321";
    let capture = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(capture.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let tpl = tempfile::tempdir().unwrap();
    write(tpl.path(), "skel/app.txt", "token=${{ values.token }}\n");
    let remote = tpl.path().join("remote.git");
    let steps = format!(
        "    - {{id: log, action: 'debug:log', input: {{message: 'token ${{{{ parameters.token }}}} key ${{{{ secrets.apiKey }}}}'}}}}
    - {{id: fetch, action: 'fetch:template', input: {{url: ./skel, values: {{token: '${{{{ parameters.token }}}}'}}}}}}
    - {{id: publish, action: 'publish:git', input: {{repoUrl: 'file://{}'}}}}
    - {{id: fail, action: 'debug:log', input: {{message: '${{{{ secrets.apiKey | parseEntityRef }}}}'}}}}
",
        remote.display()
    );
    let t = template(tpl.path(), &steps);
    let task = run(
        &t,
        json!({"token": TOKEN}),
        RunOptions::new().secret("apiKey", API_KEY),
    )
    .await;
    assert_eq!(task.status, TaskStatus::Failed, "{task:?}");
    assert_eq!(task.steps[2].status, StepStatus::Completed, "{task:?}");
    let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("token *** key ***"), "{text}");
    assert!(text.contains("scaffolder.step"), "{text}");
    for secret in [TOKEN, API_KEY] {
        for line in text.lines() {
            assert!(
                !line.contains(secret),
                "a tracing line leaks {secret}: {line}"
            );
        }
    }
}
