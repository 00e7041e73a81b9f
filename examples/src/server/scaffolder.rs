//! Scaffolder tasks: idp-catalog's [`Scaffolder`] run in the background, one task per
//! `POST /api/scaffolder/v2/tasks`, with Backstage-shaped task records and step events.
//!
//! A task is `open` when accepted, `processing` while its template runs, then
//! `completed` or `failed`. Its events (`log` lines per step, then one `completion`)
//! are numbered from 1 so clients page with `after=`. Publishing goes to a local bare
//! repository under `<data>/repos/` unless the values name a remote; registration adds a
//! catalog provider for the published repository and refreshes the catalog, so the new
//! entity is in the catalog (with its owner) when the task completes. Repositories under
//! `<data>/repos/` are read again at every start.
//!
//! Tasks live in memory: a restart forgets them (what they created stays in Git).

use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use idp_catalog::InMemoryCatalog;
use idp_catalog::provider::GitProvider;
use idp_catalog::scaffolder::{
    ActionRegistry, CancelToken, FieldError, Progress, RunOptions, Scaffolder, StepStatus, Task,
    TaskStatus, Template, User, validate_parameters,
};
use idp_core::EntityRef;
use idp_core::git::{GitRepo, InitOptions};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tracing::Instrument;

use crate::server::remote::FetchingProvider;
use crate::server::state::{AppState, stable_id};

/// Where a task is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TaskPhase {
    /// Accepted, not started.
    Open,
    /// Running.
    Processing,
    /// Every step succeeded and the result is registered.
    Completed,
    /// A step, the output or the registration failed.
    Failed,
    /// Cancelled through `POST /tasks/{id}/cancel`.
    Cancelled,
}

impl TaskPhase {
    /// `open`, `processing`, `completed`, `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Processing => "processing",
            Self::Completed => "completed",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Completed or failed.
    pub fn is_done(self) -> bool {
        matches!(self, Self::Completed | Self::Failed | Self::Cancelled)
    }
}

/// The body of a task event.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventBody {
    /// The log text.
    pub message: String,
    /// The step that wrote it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_id: Option<String>,
    /// A step's or the task's status when it changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The task's output (completion events).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<Value>,
}

/// One task event (Backstage's shape).
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskEvent {
    /// 1, 2, …: page with `after=`.
    pub id: u64,
    /// The task.
    pub task_id: String,
    /// `log` or `completion`.
    #[serde(rename = "type")]
    pub kind: String,
    /// When it happened (RFC 3339).
    pub created_at: String,
    /// What happened.
    pub body: EventBody,
}

/// A task as `GET /api/scaffolder/v2/tasks/{id}` shows it.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskView {
    /// The task id.
    pub id: String,
    /// What was asked: template, parameters (secrets redacted), steps, user.
    pub spec: Value,
    /// `open`, `processing`, `completed` or `failed`.
    pub status: TaskPhase,
    /// When it was created.
    pub created_at: String,
    /// When it last changed.
    pub last_heartbeat_at: String,
    /// Who asked.
    pub created_by: String,
    /// The template's rendered output (`links`, `text`), once it ran.
    pub output: Value,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug)]
struct TaskInner {
    status: TaskPhase,
    events: Vec<TaskEvent>,
    output: Value,
    error: Option<String>,
    heartbeat: jiff::Timestamp,
}

/// One task: immutable spec, mutable progress, and a channel that ticks on every event.
#[derive(Debug)]
pub struct TaskEntry {
    /// The task id.
    pub id: String,
    spec: Value,
    created_at: jiff::Timestamp,
    created_by: String,
    inner: Mutex<TaskInner>,
    changed: watch::Sender<u64>,
    cancel: CancelToken,
}

impl TaskEntry {
    fn lock(&self) -> std::sync::MutexGuard<'_, TaskInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, kind: &str, body: EventBody) {
        let count = {
            let mut inner = self.lock();
            let now = jiff::Timestamp::now();
            inner.heartbeat = now;
            let id = inner.events.len() as u64 + 1;
            inner.events.push(TaskEvent {
                id,
                task_id: self.id.clone(),
                kind: kind.to_owned(),
                created_at: now.to_string(),
                body,
            });
            id
        };
        self.changed.send_replace(count);
    }

    fn log(&self, step: Option<&str>, message: impl Into<String>, status: Option<&str>) {
        self.push(
            "log",
            EventBody {
                message: message.into(),
                step_id: step.map(str::to_owned),
                status: status.map(str::to_owned),
                output: None,
            },
        );
    }

    fn set_status(&self, status: TaskPhase) {
        self.lock().status = status;
        let n = self.lock().events.len() as u64;
        self.changed.send_replace(n);
    }

    #[allow(clippy::needless_pass_by_value)] // reads better at the call sites
    fn finish(&self, status: TaskPhase, output: Value, error: Option<String>) {
        {
            let mut inner = self.lock();
            inner.status = status;
            inner.output = output.clone();
            inner.error.clone_from(&error);
        }
        let message = match &error {
            Some(e) => format!("Run failed: {e}"),
            None => format!("Run completed with status: {}", status.as_str()),
        };
        self.push(
            "completion",
            EventBody {
                message,
                step_id: None,
                status: Some(status.as_str().to_owned()),
                output: Some(output),
            },
        );
    }

    /// The task as the API shows it.
    pub fn view(&self) -> TaskView {
        let inner = self.lock();
        TaskView {
            id: self.id.clone(),
            spec: self.spec.clone(),
            status: inner.status,
            created_at: self.created_at.to_string(),
            last_heartbeat_at: inner.heartbeat.to_string(),
            created_by: self.created_by.clone(),
            output: inner.output.clone(),
            error: inner.error.clone(),
        }
    }

    /// Events with an id greater than `after`, and whether the task is finished.
    pub fn events_after(&self, after: u64) -> (Vec<TaskEvent>, bool) {
        let inner = self.lock();
        let events = inner
            .events
            .iter()
            .filter(|e| e.id > after)
            .cloned()
            .collect();
        (events, inner.status.is_done())
    }

    /// Ask a running task to stop (between steps, or inside actions that check). `false`
    /// when it has finished already.
    pub fn cancel(&self) -> bool {
        if self.lock().status.is_done() {
            return false;
        }
        self.cancel.cancel();
        self.log(None, "Cancellation requested", None);
        true
    }

    /// A receiver that sees every new event (its value is the event count).
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }
}

/// Why a task was not created.
#[derive(Debug, Clone)]
pub enum SubmitError {
    /// The request or the values are wrong; `fields` pairs a value's path with its problem.
    Input {
        /// The whole message.
        message: String,
        /// `(field, problem)` pairs, for forms.
        fields: Vec<(String, String)>,
    },
    /// No such template.
    NotFound(String),
    /// The target repository exists already.
    Conflict {
        /// The whole message.
        message: String,
        /// `(field, problem)` pairs, for forms.
        fields: Vec<(String, String)>,
    },
}

impl SubmitError {
    fn input(message: impl Into<String>) -> Self {
        Self::Input {
            message: message.into(),
            fields: Vec::new(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        match self {
            Self::Input { message, .. }
            | Self::Conflict { message, .. }
            | Self::NotFound(message) => message,
        }
    }

    /// `(field, problem)` pairs.
    pub fn fields(&self) -> &[(String, String)] {
        match self {
            Self::Input { fields, .. } | Self::Conflict { fields, .. } => fields,
            Self::NotFound(_) => &[],
        }
    }
}

impl From<SubmitError> for crate::server::error::ApiError {
    fn from(e: SubmitError) -> Self {
        match e {
            SubmitError::Input { message, .. } => Self::input(message),
            SubmitError::NotFound(message) => Self::not_found(message),
            SubmitError::Conflict { message, .. } => Self::conflict(message),
        }
    }
}

/// The scaffolder area: the runner, where templates and new repositories live, and the
/// tasks.
#[derive(Debug)]
pub struct Scaffolding {
    scaffolder: Scaffolder,
    templates_dir: PathBuf,
    repos_dir: PathBuf,
    mirrors_dir: PathBuf,
    glob: String,
    tasks: Mutex<Vec<Arc<TaskEntry>>>,
}

/// How many finished tasks are kept in memory.
const KEEP_TASKS: usize = 500;

impl Scaffolding {
    /// The area over a data directory: embedded templates are written to
    /// `<data>/templates`, and repositories already published under `<data>/repos` are
    /// added to the catalog's providers.
    pub async fn start(state: &AppState, data: &Path, glob: &str) -> idp_core::Result<Self> {
        // Absolute, so file:// URLs of new repositories work from any working directory.
        let data = std::path::absolute(data).map_err(|e| {
            idp_core::Error::invalid_input(format!(
                "cannot make the data directory {} absolute",
                data.display()
            ))
            .with_source(e)
        })?;
        let data = data.as_path();
        let templates_dir = data.join("templates");
        crate::server::templates::materialize(&templates_dir)?;
        let repos_dir = data.join("repos");
        std::fs::create_dir_all(&repos_dir).map_err(|e| {
            idp_core::Error::unavailable(format!("cannot create {}", repos_dir.display()))
                .with_source(e)
        })?;
        let this = Self {
            scaffolder: Scaffolder::new(ActionRegistry::builtin()),
            templates_dir,
            repos_dir: repos_dir.clone(),
            mirrors_dir: data.join("mirrors"),
            glob: glob.to_owned(),
            tasks: Mutex::new(Vec::new()),
        };
        let mut found = 0;
        if let Ok(dir) = std::fs::read_dir(&repos_dir) {
            for entry in dir.flatten() {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "git") && path.join("HEAD").exists() {
                    match GitRepo::open(&path).await {
                        Ok(repo) => {
                            let branch = repo
                                .head_branch()
                                .await
                                .ok()
                                .flatten()
                                .unwrap_or_else(|| "main".to_owned());
                            state.add_provider(Arc::new(
                                GitProvider::new(provider_name(&path), repo, branch)
                                    .with_glob(&this.glob),
                            ));
                            found += 1;
                        }
                        Err(e) => {
                            tracing::warn!(repo = %path.display(), error = %e.report(), "cannot open a scaffolded repository; skipping it");
                        }
                    }
                }
            }
        }
        if found > 0 {
            tracing::info!(
                repositories = found,
                "reading scaffolded repositories into the catalog"
            );
        }
        Ok(this)
    }

    /// The actions the scaffolder runs.
    pub fn actions(&self) -> &ActionRegistry {
        self.scaffolder.registry()
    }

    /// A template from the catalog, ready to run (relative URLs resolve against the
    /// embedded copy when there is one).
    pub fn template(&self, state: &AppState, r: &EntityRef) -> Result<Template, SubmitError> {
        if !r.kind().eq_ignore_ascii_case("template") {
            return Err(SubmitError::NotFound(format!(
                "{r} is not a template; template references look like template:default/rust-service"
            )));
        }
        let Some(entity) = state.view().snapshot.get(r) else {
            return Err(SubmitError::NotFound(format!(
                "No template {r} in the catalog; GET /api/catalog/entities?filter=kind=template lists them"
            )));
        };
        let template = Template::from_value(&entity.to_value()).map_err(|e| {
            SubmitError::input(format!("Template {r} is not usable: {}", e.report()))
        })?;
        let dir = self.templates_dir.join(&template.name);
        Ok(if dir.join("template.yaml").is_file() {
            template.with_base_dir(dir)
        } else {
            template
        })
    }

    /// One task by id.
    pub fn task(&self, id: &str) -> Option<Arc<TaskEntry>> {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .find(|t| t.id == id)
            .cloned()
    }

    /// Every task in memory, newest first.
    pub fn tasks(&self) -> Vec<Arc<TaskEntry>> {
        let mut tasks = self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        tasks.reverse();
        tasks
    }

    /// Whether `template` asks for a `repoUrl`.
    pub fn wants_repo_url(template: &Template) -> bool {
        template
            .parameters
            .iter()
            .any(|p| p.schema.pointer("/properties/repoUrl").is_some())
    }

    /// The template's parameter pages as `parameter-schema` shows them: `repoUrl` is
    /// optional here because the server fills it with a local repository.
    pub fn parameter_schema(&self, template: &Template) -> Value {
        let steps: Vec<Value> = template
            .parameters
            .iter()
            .map(|page| {
                let mut schema = page.schema.clone();
                if let Some(prop) = schema.pointer_mut("/properties/repoUrl") {
                    let text = prop
                        .get("description")
                        .and_then(Value::as_str)
                        .unwrap_or("Git URL of the new repository.");
                    let text = format!(
                        "{text} Leave empty for a new local repository under {}.",
                        self.repos_dir.display()
                    );
                    prop["description"] = Value::String(text);
                    if let Some(required) =
                        schema.get_mut("required").and_then(Value::as_array_mut)
                    {
                        required.retain(|v| v != "repoUrl");
                    }
                }
                json!({
                    "title": page.title.clone().or_else(|| schema.get("title").and_then(Value::as_str).map(str::to_owned)).unwrap_or_default(),
                    "description": page.description.clone().or_else(|| schema.get("description").and_then(Value::as_str).map(str::to_owned)),
                    "schema": schema,
                })
            })
            .collect();
        json!({
            "title": template.title.clone().unwrap_or_else(|| template.name.clone()),
            "description": template.description.clone().unwrap_or_default(),
            "steps": steps,
        })
    }

    /// Fill `repoUrl` when the template wants one and the values have none, and refuse
    /// local paths outside `<data>/repos`.
    fn publish_target(
        &self,
        template: &Template,
        values: &mut Map<String, Value>,
    ) -> Result<Publish, SubmitError> {
        if !Self::wants_repo_url(template) {
            return Ok(Publish::Elsewhere);
        }
        let given = values
            .get("repoUrl")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned);
        let field_error = |message: String| SubmitError::Input {
            message: format!("Invalid values: values.repoUrl: {message}"),
            fields: vec![("repoUrl".into(), message)],
        };
        let path = if let Some(url) = given {
            if url.contains("://") && !url.starts_with("file://") {
                return Ok(Publish::Elsewhere); // a remote: publish:git pushes there
            }
            let path = PathBuf::from(url.strip_prefix("file://").unwrap_or(&url));
            let inside = path.is_absolute()
                && !path.components().any(|c| matches!(c, Component::ParentDir))
                && path.starts_with(&self.repos_dir)
                && path != self.repos_dir;
            if !inside {
                return Err(field_error(format!(
                    "local repositories must be under {}; leave repoUrl empty to get one there",
                    self.repos_dir.display()
                )));
            }
            path
        } else {
            let Some(name) = values
                .get("name")
                .and_then(Value::as_str)
                .map(|n| idp_core::slugify(n, 63))
                .filter(|n| !n.is_empty())
            else {
                // Validation reports the missing name; the repository is named after it.
                return Ok(Publish::Unnamed);
            };
            let path = self.repos_dir.join(format!("{name}.git"));
            values.insert(
                "repoUrl".into(),
                Value::String(format!("file://{}", path.display())),
            );
            path
        };
        if path.exists() {
            let message = format!(
                "a repository already exists at {}; choose another name",
                path.display()
            );
            return Err(SubmitError::Conflict {
                message: format!("Invalid values: values.name: {message}"),
                fields: vec![("name".into(), message)],
            });
        }
        Ok(Publish::Local(path))
    }

    /// Validate a request and start its task in the background; returns the task id.
    ///
    /// `values` must be a JSON object; the template's schema decides the rest. Errors
    /// name the field (`values.name: ...`).
    pub fn submit(
        self: &Arc<Self>,
        state: &Arc<AppState>,
        template_ref: &str,
        values: &Value,
        user: &str,
    ) -> Result<String, SubmitError> {
        let r = EntityRef::parse_with_defaults(template_ref, Some("template"), "default").map_err(
            |e| {
                SubmitError::input(format!(
                    "Invalid templateRef {template_ref:?}: {}; use template:default/rust-service",
                    e.report()
                ))
            },
        )?;
        let template = self.template(state, &r)?;
        self.scaffolder
            .check(&template)
            .map_err(|e| SubmitError::input(e.report()))?;
        let Value::Object(map) = values else {
            return Err(SubmitError::input(
                "Invalid values: `values` must be a JSON object of parameter names to values",
            ));
        };
        let mut map = map.clone();
        let publish = self.publish_target(&template, &mut map)?;
        let values =
            validate_parameters(&template, &Value::Object(map)).map_err(|mut errors| {
                if matches!(publish, Publish::Unnamed) {
                    // The server would have filled repoUrl; only the name is missing.
                    errors.retain(|e| e.field != "repoUrl");
                }
                field_errors(&r, &errors)
            })?;
        let id = {
            let nanos = jiff::Timestamp::now().as_nanosecond();
            let count = self
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .len();
            stable_id(&format!("{r}/{nanos}/{count}/{}", std::process::id()))
        };
        let secrets = template.secret_fields();
        let mut shown = values.clone();
        for field in &secrets {
            if let Some(v) = shown.pointer_mut(&format!("/{}", field.replace('.', "/"))) {
                *v = Value::String(idp_catalog::scaffolder::REDACTED.to_owned());
            }
        }
        let spec = json!({
            "apiVersion": idp_catalog::scaffolder::API_VERSION,
            "templateInfo": {"entityRef": r.to_string()},
            "parameters": shown,
            "steps": template.steps.iter().map(|s| json!({"id": s.id, "name": s.name, "action": s.action})).collect::<Vec<_>>(),
            "output": {"links": template.output.links, "text": template.output.text},
            "user": {"ref": user},
        });
        let now = jiff::Timestamp::now();
        let (changed, _) = watch::channel(0);
        let entry = Arc::new(TaskEntry {
            id: id.clone(),
            spec,
            created_at: now,
            created_by: user.to_owned(),
            inner: Mutex::new(TaskInner {
                status: TaskPhase::Open,
                events: Vec::new(),
                output: json!({}),
                error: None,
                heartbeat: now,
            }),
            changed,
            cancel: CancelToken::new(),
        });
        {
            let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
            tasks.push(entry.clone());
            if tasks.len() > KEEP_TASKS
                && let Some(pos) = tasks.iter().position(|t| t.lock().status.is_done())
            {
                tasks.remove(pos);
            }
        }
        tracing::info!(task = %id, template = %r, "scaffolder task accepted");
        let span = tracing::info_span!("scaffolder.task", task = %id, template = %r);
        tokio::spawn(
            run_task(
                state.clone(),
                self.clone(),
                entry,
                template,
                values,
                User::new(user),
                match publish {
                    Publish::Local(path) => Some(path),
                    Publish::Elsewhere | Publish::Unnamed => None,
                },
            )
            .instrument(span),
        );
        Ok(id)
    }

    /// Make the published repository a catalog source and refresh; returns the
    /// registered entity once the catalog holds it.
    async fn register(
        &self,
        state: &AppState,
        task: &Task,
        entry: &TaskEntry,
    ) -> idp_core::Result<Option<EntityRef>> {
        let Some(publish) = task
            .steps
            .iter()
            .find(|s| s.action == "publish:git" && s.status == StepStatus::Completed)
        else {
            return Ok(None);
        };
        let url = publish
            .output
            .get("remoteUrl")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let branch = publish
            .output
            .get("branch")
            .and_then(Value::as_str)
            .unwrap_or("main")
            .to_owned();
        let wanted = task
            .steps
            .iter()
            .filter(|s| s.action == "catalog:register")
            .find_map(|s| s.output.get("entityRef").and_then(Value::as_str))
            .and_then(|r| r.parse::<EntityRef>().ok());
        let local = if url.contains("://") {
            url.strip_prefix("file://").map(PathBuf::from)
        } else {
            Some(PathBuf::from(&url))
        };
        let name = match &local {
            Some(path) => provider_name(path),
            None => format!("scaffolded:{}", stable_id(&url)),
        };
        state.remove_provider(&name);
        let source: PathBuf;
        if let Some(path) = local {
            let repo = GitRepo::open(&path).await?;
            source = repo.path().to_path_buf();
            state.add_provider(Arc::new(
                GitProvider::new(&name, repo, &branch).with_glob(&self.glob),
            ));
        } else {
            let mirror_path = self.mirrors_dir.join(format!("{}.git", stable_id(&url)));
            let mirror = if mirror_path.join("HEAD").exists() {
                GitRepo::open(&mirror_path).await?
            } else {
                GitRepo::init(&mirror_path, InitOptions::bare(&branch)).await?
            };
            source = mirror.path().to_path_buf();
            let inner = GitProvider::new(&name, mirror.clone(), &branch).with_glob(&self.glob);
            state.add_provider(Arc::new(FetchingProvider::new(
                inner,
                mirror,
                url.clone(),
                branch.clone(),
            )));
        }
        entry.log(
            None,
            format!("Added {url} (branch {branch}) to the catalog's sources; refreshing"),
            None,
        );
        state.refresh().await?;
        let from_here = format!("git:{}@", source.display());
        match wanted {
            Some(r) => match state.view().snapshot.get(&r) {
                Some(entity) if managed_by(&entity).is_some_and(|l| l.starts_with(&from_here)) => {
                    Ok(Some(r))
                }
                Some(entity) => {
                    // Another location already holds this entity: take the new source
                    // away again so the catalog keeps reporting no conflict.
                    state.remove_provider(&name);
                    state.refresh().await?;
                    Err(idp_core::Error::conflict(format!(
                        "{r} is already in the catalog from {}; choose another name",
                        managed_by(&entity).unwrap_or("another location")
                    )))
                }
                None => Err(idp_core::Error::unavailable(format!(
                    "published to {url}, but the catalog found no {r} there; check that catalog-info.yaml matches the catalog glob {:?}",
                    self.glob
                ))),
            },
            None => Ok(None),
        }
    }
}

/// Where a task publishes.
#[derive(Debug)]
enum Publish {
    /// A new local repository at this path (removed again if the task fails).
    Local(PathBuf),
    /// A remote, or nothing to publish.
    Elsewhere,
    /// Cannot tell yet: the values have no name.
    Unnamed,
}

/// The entity's `backstage.io/managed-by-location` annotation.
fn managed_by(entity: &idp_core::model::Entity) -> Option<&str> {
    entity
        .as_map()
        .get("metadata")?
        .get("annotations")?
        .get("backstage.io/managed-by-location")?
        .as_str()
}

fn provider_name(path: &Path) -> String {
    format!(
        "scaffolded:{}",
        path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned()
        )
    )
}

fn field_errors(r: &EntityRef, errors: &[FieldError]) -> SubmitError {
    let fields: Vec<(String, String)> = errors
        .iter()
        .map(|e| (e.field.clone(), e.message.clone()))
        .collect();
    let list: Vec<String> = errors
        .iter()
        .map(|e| {
            if e.field.is_empty() {
                format!("values: {}", e.message)
            } else {
                format!("values.{}: {}", e.field, e.message)
            }
        })
        .collect();
    SubmitError::Input {
        message: format!("Invalid values for {r}: {}", list.join("; ")),
        fields,
    }
}

fn step_status(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Completed => "completed",
        StepStatus::Skipped => "skipped",
        StepStatus::Failed => "failed",
        StepStatus::Cancelled => "cancelled",
        StepStatus::NotRun => "not run",
    }
}

async fn run_task(
    state: Arc<AppState>,
    area: Arc<Scaffolding>,
    entry: Arc<TaskEntry>,
    template: Template,
    values: Value,
    user: User,
    new_repo: Option<PathBuf>,
) {
    let failed = |entry: &TaskEntry, output: Value, error: String, phase: TaskPhase| {
        // A failed task leaves no repository behind, so the same name can be tried again.
        if let Some(path) = &new_repo
            && path.exists()
        {
            state.remove_provider(&provider_name(path));
            match std::fs::remove_dir_all(path) {
                Ok(()) => entry.log(
                    None,
                    format!("Removed the partly created repository {}", path.display()),
                    None,
                ),
                Err(e) => {
                    tracing::warn!(repo = %path.display(), error = %e, "cannot remove the repository of a failed task");
                }
            }
        }
        entry.finish(phase, output, Some(error));
    };
    entry.set_status(TaskPhase::Processing);
    entry.log(
        None,
        format!(
            "Starting task {} from {} with {} steps",
            entry.id,
            template.name,
            template.steps.len()
        ),
        Some("processing"),
    );
    // catalog:register writes into a scratch catalog; the server's catalog learns about
    // the entity from its new source (register below), like any other entity.
    let scaffolder = area
        .scaffolder
        .clone()
        .with_catalog(Arc::new(InMemoryCatalog::new()));
    // Step events go out while the task runs: the scaffolder reports each step's start,
    // log lines and end through a channel that closes when the run ends.
    let (progress, mut updates) = tokio::sync::mpsc::unbounded_channel();
    let names: std::collections::HashMap<String, (String, String)> = template
        .steps
        .iter()
        .map(|s| {
            let name = s.name.clone().unwrap_or_else(|| s.id.clone());
            (s.id.clone(), (name, s.action.clone()))
        })
        .collect();
    let forward = entry.clone();
    let forwarder = tokio::spawn(async move {
        while let Some(update) = updates.recv().await {
            match update {
                Progress::StepStarted { id } => {
                    let (name, action) = names.get(&id).cloned().unwrap_or_default();
                    forward.log(
                        Some(&id),
                        format!("Beginning step {name} ({action})"),
                        Some("processing"),
                    );
                }
                Progress::Log(line) => forward.log(line.step.as_deref(), line.message, None),
                Progress::StepFinished(step) => {
                    let name = step.name.clone().unwrap_or_else(|| step.id.clone());
                    forward.log(
                        Some(&step.id),
                        format!(
                            "Finished step {name}: {} in {} ms",
                            step_status(step.status),
                            step.duration_ms
                        ),
                        Some(step_status(step.status)),
                    );
                }
            }
        }
    });
    let run = scaffolder
        .run(
            &template,
            &values,
            &user,
            RunOptions::new()
                .cancel_token(entry.cancel.clone())
                .progress(progress),
        )
        .await;
    let _ = forwarder.await;
    let task = match run {
        Ok(task) => task,
        Err(e) => {
            tracing::warn!(error = %e.report(), "scaffolder task failed before its steps");
            failed(&entry, json!({}), e.report(), TaskPhase::Failed);
            return;
        }
    };
    for step in task.steps.iter().filter(|s| s.status == StepStatus::NotRun) {
        let name = step.name.clone().unwrap_or_else(|| step.id.clone());
        entry.log(
            Some(&step.id),
            format!("Skipping step {name}: an earlier step did not complete"),
            Some(step_status(step.status)),
        );
    }
    if task.status != TaskStatus::Completed {
        let error = task
            .error
            .clone()
            .unwrap_or_else(|| "the task did not complete".to_owned());
        tracing::warn!(%error, "scaffolder task failed");
        let phase = if task.status == TaskStatus::Cancelled {
            TaskPhase::Cancelled
        } else {
            TaskPhase::Failed
        };
        failed(&entry, task.output.clone(), error, phase);
        return;
    }
    match area.register(&state, &task, &entry).await {
        Ok(Some(r)) => {
            entry.log(None, format!("Registered {r} in the catalog"), None);
            tracing::info!(entity = %r, "scaffolded entity registered");
            entry.finish(TaskPhase::Completed, task.output.clone(), None);
        }
        Ok(None) => entry.finish(TaskPhase::Completed, task.output.clone(), None),
        Err(e) => {
            tracing::warn!(error = %e.report(), "registering the scaffolded repository failed");
            failed(
                &entry,
                task.output.clone(),
                format!("registration failed: {}", e.report()),
                TaskPhase::Failed,
            );
        }
    }
}
