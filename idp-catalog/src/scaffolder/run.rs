//! Running a template: the [`Scaffolder`], its options and the resulting [`Task`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use serde_json::{Map, Value, json};
use tracing::Instrument;

use idp_core::{Catalog, Error, ErrorKind, Result};

use super::action::{ActionContext, ActionRegistry};
use super::params::{validate_or_error, values_at};
use super::render::{DEFAULT_FUEL, Renderer};
use super::secrets::{CancelToken, Redactor};
use super::template::Template;
use super::workspace::Workspace;

/// Who runs the template: available to expressions as `user.ref` and `user.entity`.
///
/// ```
/// let u = idp_catalog::scaffolder::User::new("user:default/jane")
///     .with_entity(serde_json::json!({"kind": "User", "metadata": {"name": "jane"}}));
/// assert_eq!(u.entity_ref.as_deref(), Some("user:default/jane"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct User {
    /// The user's entity reference, e.g. `user:default/jane`.
    pub entity_ref: Option<String>,
    /// The user's catalog entity, if the caller has it.
    pub entity: Option<Value>,
}

impl User {
    /// A user known by entity reference.
    ///
    /// ```
    /// assert!(idp_catalog::scaffolder::User::new("user:default/a").entity.is_none());
    /// ```
    pub fn new(entity_ref: impl Into<String>) -> Self {
        Self {
            entity_ref: Some(entity_ref.into()),
            entity: None,
        }
    }

    /// Nobody in particular (`user.ref` is undefined).
    ///
    /// ```
    /// assert!(idp_catalog::scaffolder::User::anonymous().entity_ref.is_none());
    /// ```
    pub fn anonymous() -> Self {
        Self::default()
    }

    /// Attach the user's catalog entity (`user.entity`).
    ///
    /// ```
    /// let u = idp_catalog::scaffolder::User::new("user:default/a").with_entity(serde_json::json!({}));
    /// assert!(u.entity.is_some());
    /// ```
    pub fn with_entity(mut self, entity: Value) -> Self {
        self.entity = Some(entity);
        self
    }

    fn context(&self) -> Value {
        let mut m = Map::new();
        if let Some(r) = &self.entity_ref {
            m.insert("ref".into(), Value::String(r.clone()));
        }
        if let Some(e) = &self.entity {
            m.insert("entity".into(), e.clone());
        }
        Value::Object(m)
    }
}

/// How to run a template.
///
/// ```
/// let opts = idp_catalog::scaffolder::RunOptions::new()
///     .dry_run(true)
///     .secret("token", "s3cr3t");
/// assert!(opts.dry_run);
/// ```
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Return the would-be files and outputs; nothing leaves the workspace (no push,
    /// no catalog write).
    pub dry_run: bool,
    /// Use this folder as the workspace (kept afterwards). Default: a private temporary
    /// folder, deleted when the run ends.
    pub workspace: Option<PathBuf>,
    /// Secrets for `${{ secrets.x }}`; their values are redacted everywhere.
    pub secrets: BTreeMap<String, String>,
    /// Cancel the run from elsewhere.
    pub cancel: CancelToken,
    /// Receives [`Progress`] while the task runs (a step starts, its log lines, its
    /// report), for servers that stream step logs; `None`: nothing is sent.
    pub progress: Option<tokio::sync::mpsc::UnboundedSender<Progress>>,
}

impl RunOptions {
    /// The defaults: a real run in a private temporary workspace.
    ///
    /// ```
    /// assert!(!idp_catalog::scaffolder::RunOptions::new().dry_run);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Set [`dry_run`](Self::dry_run).
    ///
    /// ```
    /// assert!(idp_catalog::scaffolder::RunOptions::new().dry_run(true).dry_run);
    /// ```
    pub fn dry_run(mut self, yes: bool) -> Self {
        self.dry_run = yes;
        self
    }

    /// Keep the workspace in `dir`.
    ///
    /// ```
    /// assert!(idp_catalog::scaffolder::RunOptions::new().workspace("/tmp/out").workspace.is_some());
    /// ```
    pub fn workspace(mut self, dir: impl Into<PathBuf>) -> Self {
        self.workspace = Some(dir.into());
        self
    }

    /// Add a secret.
    ///
    /// ```
    /// assert_eq!(idp_catalog::scaffolder::RunOptions::new().secret("a", "b").secrets["a"], "b");
    /// ```
    pub fn secret(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.secrets.insert(name.into(), value.into());
        self
    }

    /// Use this cancellation token.
    ///
    /// ```
    /// let t = idp_catalog::scaffolder::CancelToken::new();
    /// let o = idp_catalog::scaffolder::RunOptions::new().cancel_token(t.clone());
    /// t.cancel();
    /// assert!(o.cancel.is_cancelled());
    /// ```
    pub fn cancel_token(mut self, token: CancelToken) -> Self {
        self.cancel = token;
        self
    }

    /// Send [`Progress`] to `sender` while the task runs. A closed receiver is ignored.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// use idp_catalog::scaffolder::*;
    /// let t = Template::from_yaml("apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: t}\nspec:\n  type: x\n  steps:\n    - {id: hi, action: debug:log, input: {message: hello}}")?;
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let options = RunOptions::new().progress(tx);
    /// Scaffolder::new(ActionRegistry::builtin()).run(&t, &serde_json::json!({}), &User::anonymous(), options).await?;
    /// assert_eq!(rx.recv().await, Some(Progress::StepStarted { id: "hi".into() }));
    /// assert!(matches!(rx.recv().await, Some(Progress::Log(line)) if line.message == "hello"));
    /// assert!(matches!(rx.recv().await, Some(Progress::StepFinished(r)) if r.status == StepStatus::Completed));
    /// assert_eq!(rx.recv().await, None, "the sender is dropped when the run ends");
    /// # Ok(()) }
    /// ```
    pub fn progress(mut self, sender: tokio::sync::mpsc::UnboundedSender<Progress>) -> Self {
        self.progress = Some(sender);
        self
    }

    fn send(&self, progress: Progress) {
        if let Some(tx) = &self.progress {
            let _ = tx.send(progress);
        }
    }
}

/// What a running task reports through [`RunOptions::progress`], in order: for each step
/// that runs, `StepStarted`, its `Log` lines, then `StepFinished`.
///
/// ```
/// let p = idp_catalog::scaffolder::Progress::StepStarted { id: "fetch".into() };
/// assert_eq!(serde_json::to_value(&p).unwrap()["type"], "stepStarted");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Progress {
    /// A step is about to run.
    StepStarted {
        /// The step id.
        id: String,
    },
    /// A log line (secrets redacted).
    Log(LogLine),
    /// A step ended (completed, skipped, failed or cancelled).
    StepFinished(StepReport),
}

/// How a task ended.
///
/// ```
/// assert_eq!(serde_json::to_value(idp_catalog::scaffolder::TaskStatus::Completed).unwrap(), "completed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TaskStatus {
    /// Every step completed or was skipped.
    Completed,
    /// A step (or the output) failed; see [`Task::error`].
    Failed,
    /// The cancellation token fired.
    Cancelled,
}

/// How one step ended.
///
/// ```
/// assert_eq!(serde_json::to_value(idp_catalog::scaffolder::StepStatus::Skipped).unwrap(), "skipped");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum StepStatus {
    /// It ran and succeeded.
    Completed,
    /// Its `if` was false.
    Skipped,
    /// It failed.
    Failed,
    /// It was running when the task was cancelled.
    Cancelled,
    /// An earlier step failed or the task was cancelled before it.
    NotRun,
}

/// One step of a finished task.
///
/// ```
/// let r = idp_catalog::scaffolder::StepReport {
///     id: "log".into(), name: None, action: "debug:log".into(),
///     status: idp_catalog::scaffolder::StepStatus::Completed, output: Default::default(),
///     iterations: 1, duration_ms: 0, error: None };
/// assert_eq!(r.iterations, 1);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    /// Step id.
    pub id: String,
    /// Step name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Action id.
    pub action: String,
    /// How it ended.
    pub status: StepStatus,
    /// Its outputs (secrets redacted); for `each` steps every output is a list.
    pub output: Map<String, Value>,
    /// How many times it ran (`each` entries; 0 when skipped).
    pub iterations: usize,
    /// Wall time.
    pub duration_ms: u64,
    /// Why it failed (secrets redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One log line of a task (secrets already redacted).
///
/// ```
/// let l = idp_catalog::scaffolder::LogLine { step: Some("log".into()), message: "hi".into() };
/// assert_eq!(l.message, "hi");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// The step that wrote it (`None` for the runner itself).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The text.
    pub message: String,
}

/// A finished run.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
/// use idp_catalog::scaffolder::*;
/// let t = Template::from_yaml(r#"
/// apiVersion: scaffolder.backstage.io/v1beta3
/// kind: Template
/// metadata: {name: hello}
/// spec:
///   type: demo
///   parameters: {required: [name], properties: {name: {type: string}}}
///   steps:
///     - {id: log, action: debug:log, input: {message: "hello ${{ parameters.name }}"}}
///   output:
///     text: [{title: Greeting, content: "said hello to ${{ parameters.name }}"}]
/// "#)?;
/// let scaffolder = Scaffolder::new(ActionRegistry::builtin());
/// let task = scaffolder.run(&t, &serde_json::json!({"name": "world"}), &User::anonymous(), RunOptions::new()).await?;
/// assert_eq!(task.status, TaskStatus::Completed);
/// assert!(task.log.iter().any(|l| l.message == "hello world"));
/// assert_eq!(task.output["text"][0]["content"], "said hello to world");
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    /// A unique id for this run.
    pub id: String,
    /// `namespace/name` of the template.
    pub template: String,
    /// How it ended.
    pub status: TaskStatus,
    /// Every step, in order.
    pub steps: Vec<StepReport>,
    /// The log (secrets redacted).
    pub log: Vec<LogLine>,
    /// The rendered `spec.output` (`links`, `text`, other keys; secrets redacted).
    pub output: Value,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Dry runs: the workspace's files at the end (UTF-8, lossy for binary files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub files: Option<BTreeMap<String, String>>,
    /// The workspace folder when it was kept ([`RunOptions::workspace`]).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workspace: Option<PathBuf>,
}

impl Task {
    /// `Ok(self)` when completed, otherwise an error with the reason.
    ///
    /// ```
    /// # let task = idp_catalog::scaffolder::Task { id: "t".into(), template: "default/x".into(),
    /// #   status: idp_catalog::scaffolder::TaskStatus::Failed, steps: vec![], log: vec![],
    /// #   output: serde_json::json!({}), error: Some("boom".into()), files: None, workspace: None };
    /// assert!(task.into_result().unwrap_err().to_string().contains("boom"));
    /// ```
    pub fn into_result(self) -> Result<Self> {
        match self.status {
            TaskStatus::Completed => Ok(self),
            TaskStatus::Cancelled => Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "task {} for template {} was cancelled",
                    self.id, self.template
                ),
            )),
            TaskStatus::Failed => Err(Error::invalid_input(format!(
                "template {} failed: {}",
                self.template,
                self.error.as_deref().unwrap_or("unknown error")
            ))),
        }
    }
}

/// Runs templates with a registry of actions and, for `catalog:register`, a catalog.
///
/// ```
/// use std::sync::Arc;
/// use idp_catalog::scaffolder::{ActionRegistry, Scaffolder};
/// let catalog = Arc::new(idp_catalog::InMemoryCatalog::new());
/// let scaffolder = Scaffolder::new(ActionRegistry::builtin()).with_catalog(catalog).with_fuel(500_000);
/// assert!(scaffolder.registry().get("catalog:register").is_some());
/// ```
#[derive(Debug, Clone)]
pub struct Scaffolder {
    registry: ActionRegistry,
    catalog: Option<Arc<dyn Catalog>>,
    fuel: u64,
}

fn task_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let probe = 0u8;
    let addr = std::ptr::addr_of!(probe).addr() as u128;
    format!(
        "task-{:x}",
        nanos ^ (addr << 20) ^ u128::from(std::process::id())
    )
}

impl Scaffolder {
    /// A scaffolder with these actions, no catalog and the default fuel.
    ///
    /// ```
    /// let s = idp_catalog::scaffolder::Scaffolder::new(idp_catalog::scaffolder::ActionRegistry::builtin());
    /// assert!(s.registry().get("debug:log").is_some());
    /// ```
    pub fn new(registry: ActionRegistry) -> Self {
        Self {
            registry,
            catalog: None,
            fuel: DEFAULT_FUEL,
        }
    }

    /// Give `catalog:register` a catalog to write to.
    ///
    /// ```
    /// let s = idp_catalog::scaffolder::Scaffolder::new(Default::default())
    ///     .with_catalog(std::sync::Arc::new(idp_catalog::InMemoryCatalog::new()));
    /// # let _ = s;
    /// ```
    pub fn with_catalog(mut self, catalog: Arc<dyn Catalog>) -> Self {
        self.catalog = Some(catalog);
        self
    }

    /// Set the fuel (instructions) each render may use.
    ///
    /// ```
    /// let s = idp_catalog::scaffolder::Scaffolder::new(Default::default()).with_fuel(10_000);
    /// # let _ = s;
    /// ```
    pub fn with_fuel(mut self, fuel: u64) -> Self {
        self.fuel = fuel;
        self
    }

    /// The actions.
    ///
    /// ```
    /// assert!(idp_catalog::scaffolder::Scaffolder::new(Default::default()).registry().list().is_empty());
    /// ```
    pub fn registry(&self) -> &ActionRegistry {
        &self.registry
    }

    /// Check that every action the template uses is registered; the error lists all
    /// that are missing.
    ///
    /// ```
    /// # use idp_catalog::scaffolder::*;
    /// let t = Template::from_yaml("apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: t}\nspec: {type: x, steps: [{action: publish:github}, {action: github:actions:dispatch}]}").unwrap();
    /// let err = Scaffolder::new(ActionRegistry::builtin()).check(&t).unwrap_err();
    /// assert!(err.to_string().contains("publish:github") && err.to_string().contains("github:actions:dispatch"));
    /// ```
    pub fn check(&self, template: &Template) -> Result<()> {
        let missing: Vec<&str> = template
            .action_ids()
            .into_iter()
            .filter(|id| self.registry.get(id).is_none())
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(Error::invalid_input(format!(
            "template {} uses action{} that {} not registered: {}; register an implementation in the ActionRegistry (`idpctl scaffold actions` lists the available ones)",
            template.name,
            if missing.len() == 1 { "" } else { "s" },
            if missing.len() == 1 { "is" } else { "are" },
            missing.join(", ")
        )))
    }

    /// [`check`](Self::check) the actions and validate `values`; returns the values with
    /// schema defaults filled in.
    ///
    /// ```
    /// # use idp_catalog::scaffolder::*;
    /// let t = Template::from_yaml("apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: t}\nspec: {type: x, steps: [], parameters: {required: [a], properties: {a: {type: string}}}}").unwrap();
    /// let err = Scaffolder::new(ActionRegistry::builtin()).validate(&t, &serde_json::json!({})).unwrap_err();
    /// assert!(err.to_string().contains("parameters.a: is required"));
    /// ```
    pub fn validate(&self, template: &Template, values: &Value) -> Result<Value> {
        self.check(template)?;
        validate_or_error(template, values)
    }

    /// Run `template` with `values` for `user`. Invalid parameters and missing actions
    /// are errors before anything runs; a failing step gives a task with
    /// [`TaskStatus::Failed`].
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// use idp_catalog::scaffolder::*;
    /// let t = Template::from_yaml("apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: t}\nspec:\n  type: x\n  steps:\n    - {id: hi, action: debug:log, input: {message: '${{ user.ref }}'}}")?;
    /// let task = Scaffolder::new(ActionRegistry::builtin())
    ///     .run(&t, &serde_json::json!({}), &User::new("user:default/jane"), RunOptions::new())
    ///     .await?;
    /// assert_eq!(task.log[0].message, "user:default/jane");
    /// # Ok(()) }
    /// ```
    pub async fn run(
        &self,
        template: &Template,
        values: &Value,
        user: &User,
        options: RunOptions,
    ) -> Result<Task> {
        let span = tracing::info_span!(
            "scaffolder.run",
            template = %template.name,
            dry_run = options.dry_run
        );
        self.run_inner(template, values, user, options)
            .instrument(span)
            .await
    }

    /// [`run`](Self::run) as a dry run: the task's [`files`](Task::files) hold the
    /// would-be file tree; nothing is pushed or registered.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// use idp_catalog::scaffolder::*;
    /// let t = Template::from_yaml("apiVersion: scaffolder.backstage.io/v1beta3\nkind: Template\nmetadata: {name: t}\nspec:\n  type: x\n  steps:\n    - {id: w, action: catalog:write, input: {entity: {apiVersion: backstage.io/v1alpha1, kind: Component, metadata: {name: a}, spec: {type: service, owner: t, lifecycle: experimental}}}}")?;
    /// let task = Scaffolder::new(ActionRegistry::builtin()).dry_run(&t, &serde_json::json!({}), &User::anonymous()).await?;
    /// assert!(task.files.unwrap()["catalog-info.yaml"].contains("kind: Component"));
    /// # Ok(()) }
    /// ```
    pub async fn dry_run(&self, template: &Template, values: &Value, user: &User) -> Result<Task> {
        self.run(template, values, user, RunOptions::new().dry_run(true))
            .await
    }

    #[allow(clippy::too_many_lines)]
    async fn run_inner(
        &self,
        template: &Template,
        values: &Value,
        user: &User,
        options: RunOptions,
    ) -> Result<Task> {
        let values = self.validate(template, values)?;
        let secret_fields = template.secret_fields();
        let mut secret_values = values_at(&values, &secret_fields);
        secret_values.extend(options.secrets.values().cloned());
        let redactor = Arc::new(Redactor::new(secret_values));
        let renderer = Arc::new(Renderer::new(self.fuel)?);

        let (_temp, ws_dir) = if let Some(dir) = &options.workspace {
            (None, dir.clone())
        } else {
            let t = tempfile::Builder::new()
                .prefix("idp-scaffolder-")
                .tempdir()
                .map_err(|e| Error::unavailable(format!("cannot create a workspace: {e}")))?;
            let p = t.path().to_path_buf();
            (Some(t), p)
        };
        let workspace = Workspace::new(&ws_dir)?;

        let mut secrets_ctx: Map<String, Value> = options
            .secrets
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        for field in &secret_fields {
            let vals = values_at(&values, std::slice::from_ref(field));
            if let [one] = vals.as_slice() {
                secrets_ctx
                    .entry(field.clone())
                    .or_insert_with(|| Value::String(one.clone()));
            }
        }
        let mut ctx = json!({
            "parameters": values,
            "steps": {},
            "user": user.context(),
            "secrets": secrets_ctx,
        });

        let mut task = Task {
            id: task_id(),
            template: format!("{}/{}", template.namespace, template.name),
            status: TaskStatus::Completed,
            steps: template
                .steps
                .iter()
                .map(|s| StepReport {
                    id: s.id.clone(),
                    name: s.name.clone(),
                    action: s.action.clone(),
                    status: StepStatus::NotRun,
                    output: Map::new(),
                    iterations: 0,
                    duration_ms: 0,
                    error: None,
                })
                .collect(),
            log: Vec::new(),
            output: json!({}),
            error: None,
            files: None,
            workspace: options.workspace.clone(),
        };
        let cancel = options.cancel.clone();

        for (i, step) in template.steps.iter().enumerate() {
            if cancel.is_cancelled() {
                task.status = TaskStatus::Cancelled;
                break;
            }
            let started = Instant::now();
            let log_from = task.log.len();
            options.send(Progress::StepStarted {
                id: step.id.clone(),
            });
            let what = format!("step `{}`", step.id);
            let span =
                tracing::info_span!("scaffolder.step", step = %step.id, action = %step.action);
            let result = self
                .run_step(
                    step,
                    &ctx,
                    &what,
                    &renderer,
                    &redactor,
                    &workspace,
                    template,
                    user,
                    &options,
                    &mut task.log,
                )
                .instrument(span)
                .await;
            let report = &mut task.steps[i];
            report.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            match result {
                Ok(None) => {
                    report.status = StepStatus::Skipped;
                    task.log.push(LogLine {
                        step: Some(step.id.clone()),
                        message: format!("skipped: the `if` of {what} is false"),
                    });
                }
                Ok(Some((iterations, output))) => {
                    report.status = StepStatus::Completed;
                    report.iterations = iterations;
                    report.output = match redactor.redact_value(&Value::Object(output.clone())) {
                        Value::Object(m) => m,
                        _ => Map::new(),
                    };
                    if let Some(steps) = ctx.get_mut("steps").and_then(Value::as_object_mut) {
                        steps.insert(step.id.clone(), json!({ "output": output }));
                    }
                }
                Err(e) => {
                    let message = redactor.redact(&e.report());
                    if cancel.is_cancelled() {
                        report.status = StepStatus::Cancelled;
                        task.status = TaskStatus::Cancelled;
                    } else {
                        report.status = StepStatus::Failed;
                        task.status = TaskStatus::Failed;
                    }
                    report.error = Some(message.clone());
                    tracing::warn!(step = %step.id, "{message}");
                    task.log.push(LogLine {
                        step: Some(step.id.clone()),
                        message: format!("failed: {message}"),
                    });
                    task.error = Some(format!("{what} ({}): {message}", step.action));
                }
            }
            for line in &task.log[log_from..] {
                options.send(Progress::Log(line.clone()));
            }
            options.send(Progress::StepFinished(task.steps[i].clone()));
            if task.status != TaskStatus::Completed {
                break;
            }
        }

        if task.status == TaskStatus::Completed {
            match render_output(template, &ctx, &renderer) {
                Ok(out) => task.output = redactor.redact_value(&out),
                Err(e) => {
                    let message = redactor.redact(&e.report());
                    task.status = TaskStatus::Failed;
                    task.error = Some(format!("output: {message}"));
                }
            }
        }
        if options.dry_run {
            let files = workspace.files("")?;
            task.files = Some(
                files
                    .into_iter()
                    .map(|(k, v)| {
                        let text = String::from_utf8_lossy(&v).into_owned();
                        (redactor.redact(&k), redactor.redact(&text))
                    })
                    .collect(),
            );
        }
        tracing::info!(task = %task.id, status = ?task.status, "scaffolder task finished");
        Ok(task)
    }

    /// One step: `Ok(None)` when skipped, else (iterations, merged outputs).
    #[allow(clippy::too_many_arguments)]
    async fn run_step(
        &self,
        step: &super::template::Step,
        ctx: &Value,
        what: &str,
        renderer: &Arc<Renderer>,
        redactor: &Arc<Redactor>,
        workspace: &Workspace,
        template: &Template,
        user: &User,
        options: &RunOptions,
        log: &mut Vec<LogLine>,
    ) -> Result<Option<(usize, Map<String, Value>)>> {
        if let Some(cond) = &step.condition
            && !renderer.condition(cond, ctx, what)?
        {
            return Ok(None);
        }
        let action = self
            .registry
            .get(&step.action)
            .ok_or_else(|| {
                Error::invalid_input(format!("{what}: action {} is not registered", step.action))
            })?
            .clone();
        let iterations: Vec<Option<(Value, Value)>> = match &step.each {
            None => vec![None],
            Some(each) => match renderer.render_value(each, ctx, &format!("{what} each"))? {
                Value::Array(items) => items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| Some((Value::String(i.to_string()), v)))
                    .collect(),
                Value::Object(m) => m
                    .into_iter()
                    .map(|(k, v)| Some((Value::String(k), v)))
                    .collect(),
                other => {
                    return Err(Error::invalid_input(format!(
                        "{what}: `each` must render to a list or an object, got {}",
                        redactor.redact(&other.to_string())
                    )));
                }
            },
        };
        let schema = action.input_schema();
        let validator = jsonschema::validator_for(&schema).map_err(|e| {
            Error::internal(format!(
                "action {} has an invalid input schema: {e}",
                step.action
            ))
        })?;
        let mut merged = Map::new();
        let count = iterations.len();
        for iteration in iterations {
            let mut it_ctx = ctx.clone();
            if let (Some((key, value)), Some(obj)) = (&iteration, it_ctx.as_object_mut()) {
                obj.insert("each".into(), json!({"key": key, "value": value}));
            }
            let input = renderer.render_value(&step.input, &it_ctx, what)?;
            let problems: Vec<String> = validator
                .iter_errors(&input)
                .map(|e| {
                    let path = e.instance_path().to_string();
                    let at = if path.is_empty() {
                        "input".to_owned()
                    } else {
                        format!("input{}", path.replace('/', "."))
                    };
                    redactor.redact(&format!("{at}: {}", e.masked()))
                })
                .collect();
            if !problems.is_empty() {
                return Err(Error::invalid_input(format!(
                    "{what}: the input does not match {}'s schema: {}",
                    step.action,
                    problems.join("; ")
                )));
            }
            let mut actx = ActionContext::new(input, workspace.clone());
            actx.template_dir.clone_from(&template.base_dir);
            actx.dry_run = options.dry_run;
            actx.step_id.clone_from(&step.id);
            actx.user_ref.clone_from(&user.entity_ref);
            actx.catalog.clone_from(&self.catalog);
            actx.cancel = options.cancel.clone();
            actx.renderer = Some(renderer.clone());
            actx.redactor = redactor.clone();
            let result = tokio::select! {
                r = action.run(&mut actx) => r,
                () = options.cancel.cancelled() => Err(Error::new(ErrorKind::Conflict, format!("{what} was cancelled"))),
            };
            let (logs, outputs) = actx.take();
            log.extend(logs.into_iter().map(|message| LogLine {
                step: Some(step.id.clone()),
                message,
            }));
            result?;
            for (k, v) in outputs {
                if step.each.is_some() {
                    match merged.entry(k).or_insert_with(|| Value::Array(Vec::new())) {
                        Value::Array(list) => list.push(v),
                        other => *other = Value::Array(vec![v]),
                    }
                } else {
                    merged.insert(k, v);
                }
            }
        }
        Ok(Some((count, merged)))
    }
}

fn render_output(template: &Template, ctx: &Value, renderer: &Renderer) -> Result<Value> {
    let mut out = Map::new();
    let mut links = Vec::new();
    for (i, l) in template.output.links.iter().enumerate() {
        links.push(renderer.render_value(l, ctx, &format!("output.links[{i}]"))?);
    }
    let mut text = Vec::new();
    for (i, t) in template.output.text.iter().enumerate() {
        text.push(renderer.render_value(t, ctx, &format!("output.text[{i}]"))?);
    }
    out.insert("links".into(), Value::Array(links));
    out.insert("text".into(), Value::Array(text));
    for (k, v) in &template.output.extra {
        out.insert(
            k.clone(),
            renderer.render_value(v, ctx, &format!("output.{k}"))?,
        );
    }
    Ok(Value::Object(out))
}
