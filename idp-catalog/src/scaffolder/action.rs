//! The [`Action`] trait, the context an action runs in, and the [`ActionRegistry`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value};

use idp_core::{Catalog, Error, Result};

use super::render::Renderer;
use super::secrets::{CancelToken, Redactor};
use super::workspace::Workspace;

/// One step kind (`fetch:template`, `publish:git`, …). Implement it to add your own and
/// register it in an [`ActionRegistry`].
///
/// ```
/// use async_trait::async_trait;
/// use idp_catalog::scaffolder::{Action, ActionContext, ActionRegistry};
///
/// #[derive(Debug)]
/// struct Hello;
///
/// #[async_trait]
/// impl Action for Hello {
///     fn id(&self) -> &str { "acme:hello" }
///     fn description(&self) -> &str { "Says hello and outputs a greeting." }
///     fn input_schema(&self) -> serde_json::Value {
///         serde_json::json!({"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}})
///     }
///     async fn run(&self, ctx: &mut ActionContext) -> idp_core::Result<()> {
///         let name = ctx.input_str("name")?.to_owned();
///         ctx.log(format!("hello {name}"));
///         ctx.output("greeting", format!("hello {name}"));
///         Ok(())
///     }
/// }
///
/// let mut registry = ActionRegistry::builtin();
/// registry.register(std::sync::Arc::new(Hello));
/// assert!(registry.get("acme:hello").is_some());
/// ```
#[async_trait]
pub trait Action: Send + Sync + fmt::Debug {
    /// The id templates name in `action:`.
    fn id(&self) -> &str;
    /// What the action does (for `idpctl scaffold actions` and UIs).
    fn description(&self) -> &str;
    /// JSON Schema of `input`; the rendered input is validated against it before
    /// [`run`](Self::run).
    fn input_schema(&self) -> Value;
    /// JSON Schema of the outputs.
    fn output_schema(&self) -> Value {
        serde_json::json!({"type": "object"})
    }
    /// Do the work. Read [`ActionContext::input`], write through
    /// [`ActionContext::workspace`], report with [`ActionContext::log`] and
    /// [`ActionContext::output`]. In a dry run ([`ActionContext::dry_run`]) an action
    /// must not touch anything outside the workspace.
    async fn run(&self, ctx: &mut ActionContext) -> Result<()>;
}

/// Everything an action gets for one run (one iteration of an `each` step).
///
/// ```
/// # let dir = tempfile::tempdir().unwrap();
/// use idp_catalog::scaffolder::{ActionContext, Workspace};
/// let mut ctx = ActionContext::new(serde_json::json!({"message": "hi"}), Workspace::new(dir.path()).unwrap());
/// assert_eq!(ctx.input_str("message").unwrap(), "hi");
/// ctx.output("x", 1);
/// assert_eq!(ctx.outputs()["x"], 1);
/// ```
#[derive(Debug)]
pub struct ActionContext {
    /// The rendered `input`.
    pub input: Value,
    /// The task's workspace.
    pub workspace: Workspace,
    /// The template's folder (for relative `fetch:*` URLs).
    pub template_dir: Option<PathBuf>,
    /// True in a dry run: no side effects outside the workspace.
    pub dry_run: bool,
    /// The step id.
    pub step_id: String,
    /// The requesting user's entity reference (`user.ref`), if known.
    pub user_ref: Option<String>,
    /// The catalog, for `catalog:*` actions.
    pub catalog: Option<Arc<dyn Catalog>>,
    /// Cancellation: long actions should check it.
    pub cancel: CancelToken,
    pub(crate) renderer: Option<Arc<Renderer>>,
    pub(crate) redactor: Arc<Redactor>,
    logs: Vec<String>,
    outputs: Map<String, Value>,
}

impl ActionContext {
    /// A context with `input` over `workspace` (everything else empty), for tests and
    /// for running an action on its own.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// let ctx = idp_catalog::scaffolder::ActionContext::new(serde_json::json!({}), idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap());
    /// assert!(!ctx.dry_run);
    /// ```
    pub fn new(input: Value, workspace: Workspace) -> Self {
        Self {
            input,
            workspace,
            template_dir: None,
            dry_run: false,
            step_id: String::new(),
            user_ref: None,
            catalog: None,
            cancel: CancelToken::new(),
            renderer: None,
            redactor: Arc::new(Redactor::default()),
            logs: Vec::new(),
            outputs: Map::new(),
        }
    }

    /// Add a log line (secrets are redacted before it is stored or traced).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let mut ctx = idp_catalog::scaffolder::ActionContext::new(serde_json::json!({}), idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap());
    /// ctx.log("writing 3 files");
    /// assert_eq!(ctx.logs(), ["writing 3 files"]);
    /// ```
    pub fn log(&mut self, line: impl Into<String>) {
        let line = self.redactor.redact(&line.into());
        tracing::info!(step = %self.step_id, "{line}");
        self.logs.push(line);
    }

    /// Set an output (visible to later steps as `steps['id'].output.<name>`).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let mut ctx = idp_catalog::scaffolder::ActionContext::new(serde_json::json!({}), idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap());
    /// ctx.output("remoteUrl", "file:///tmp/x.git");
    /// assert_eq!(ctx.outputs()["remoteUrl"], "file:///tmp/x.git");
    /// ```
    pub fn output(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.outputs.insert(name.into(), value.into());
    }

    /// The log lines so far.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let ctx = idp_catalog::scaffolder::ActionContext::new(serde_json::json!({}), idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap());
    /// assert!(ctx.logs().is_empty());
    /// ```
    pub fn logs(&self) -> &[String] {
        &self.logs
    }

    /// The outputs so far.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let ctx = idp_catalog::scaffolder::ActionContext::new(serde_json::json!({}), idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap());
    /// assert!(ctx.outputs().is_empty());
    /// ```
    pub fn outputs(&self) -> &Map<String, Value> {
        &self.outputs
    }

    pub(crate) fn take(self) -> (Vec<String>, Map<String, Value>) {
        (self.logs, self.outputs)
    }

    /// A required string input.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let ctx = idp_catalog::scaffolder::ActionContext::new(serde_json::json!({"a": 1}), idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap());
    /// assert!(ctx.input_str("a").is_err());
    /// ```
    pub fn input_str(&self, key: &str) -> Result<&str> {
        self.input.get(key).and_then(Value::as_str).ok_or_else(|| {
            Error::invalid_input(format!(
                "step {}: input `{key}` must be a string",
                self.step_id
            ))
        })
    }

    /// An optional string input.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let ctx = idp_catalog::scaffolder::ActionContext::new(serde_json::json!({"a": "x"}), idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap());
    /// assert_eq!(ctx.input_opt_str("a"), Some("x"));
    /// assert_eq!(ctx.input_opt_str("b"), None);
    /// ```
    pub fn input_opt_str(&self, key: &str) -> Option<&str> {
        self.input.get(key).and_then(Value::as_str)
    }

    /// An optional boolean input (`false` when absent).
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let ctx = idp_catalog::scaffolder::ActionContext::new(serde_json::json!({"a": true}), idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap());
    /// assert!(ctx.input_bool("a") && !ctx.input_bool("b"));
    /// ```
    pub fn input_bool(&self, key: &str) -> bool {
        self.input
            .get(key)
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// An error (kind `Conflict`) when the task was cancelled; long actions call it
    /// between units of work.
    ///
    /// ```
    /// # let dir = tempfile::tempdir().unwrap();
    /// # let ctx = idp_catalog::scaffolder::ActionContext::new(serde_json::json!({}), idp_catalog::scaffolder::Workspace::new(dir.path()).unwrap());
    /// ctx.cancel.cancel();
    /// assert!(ctx.check_cancelled().is_err());
    /// ```
    pub fn check_cancelled(&self) -> Result<()> {
        if self.cancel.is_cancelled() {
            Err(Error::new(
                idp_core::ErrorKind::Conflict,
                format!("step {} was cancelled", self.step_id),
            ))
        } else {
            Ok(())
        }
    }

    /// The renderer of the running task (one with default fuel when run alone).
    pub(crate) fn renderer(&mut self) -> Result<Arc<Renderer>> {
        if let Some(r) = &self.renderer {
            return Ok(r.clone());
        }
        let r = Arc::new(Renderer::new(super::render::DEFAULT_FUEL)?);
        self.renderer = Some(r.clone());
        Ok(r)
    }
}

/// The actions a scaffolder can run, by id.
///
/// ```
/// let registry = idp_catalog::scaffolder::ActionRegistry::builtin();
/// let ids: Vec<&str> = registry.list().iter().map(|a| a.id()).collect();
/// assert!(ids.contains(&"fetch:template") && ids.contains(&"publish:git"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ActionRegistry {
    actions: BTreeMap<String, Arc<dyn Action>>,
}

impl ActionRegistry {
    /// An empty registry.
    ///
    /// ```
    /// assert!(idp_catalog::scaffolder::ActionRegistry::new().list().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-in actions: `fetch:template`, `fetch:plain`, `fetch:plain:file`,
    /// `fs:rename`, `fs:delete`, `publish:git`, `catalog:register`, `catalog:write`,
    /// `debug:log`.
    ///
    /// ```
    /// assert_eq!(idp_catalog::scaffolder::ActionRegistry::builtin().list().len(), 9);
    /// ```
    pub fn builtin() -> Self {
        let mut r = Self::new();
        for a in super::builtin::all() {
            r.register(a);
        }
        r
    }

    /// Add (or replace) an action under its id.
    ///
    /// ```
    /// let mut r = idp_catalog::scaffolder::ActionRegistry::new();
    /// r.register(std::sync::Arc::new(idp_catalog::scaffolder::builtin::DebugLog));
    /// assert!(r.get("debug:log").is_some());
    /// ```
    pub fn register(&mut self, action: Arc<dyn Action>) {
        self.actions.insert(action.id().to_owned(), action);
    }

    /// The action with this id.
    ///
    /// ```
    /// assert!(idp_catalog::scaffolder::ActionRegistry::builtin().get("publish:github").is_none());
    /// ```
    pub fn get(&self, id: &str) -> Option<&Arc<dyn Action>> {
        self.actions.get(id)
    }

    /// Every action, by id.
    ///
    /// ```
    /// let r = idp_catalog::scaffolder::ActionRegistry::builtin();
    /// assert_eq!(r.list()[0].id(), "catalog:register");
    /// ```
    pub fn list(&self) -> Vec<&Arc<dyn Action>> {
        self.actions.values().collect()
    }
}
