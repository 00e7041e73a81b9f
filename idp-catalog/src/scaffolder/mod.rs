//! The scaffolder: golden paths and self-service infrastructure from Backstage
//! `scaffolder.backstage.io/v1beta3` templates.
//!
//! Start with [`Scaffolder::run`]: load a [`Template`], build a [`Scaffolder`] over an
//! [`ActionRegistry`] (the built-ins from [`ActionRegistry::builtin`], plus your own
//! [`Action`]s), and run it with the user's values. The pieces are usable on their own:
//!
//! - [`template`](Template): the v1beta3 model — parameters (one schema or form pages,
//!   `ui:*` hints kept), steps (`id`, `name`, `action`, `input`, `if`, `each`), output.
//! - [`validate_parameters`]: every page's JSON Schema over the values, defaults filled,
//!   errors per field, secrets (`ui:field: Secret`, `ui:widget: password`) never quoted.
//! - [`Renderer`]: minijinja configured like Backstage's Nunjucks (`${{ }}`, Jinja blocks,
//!   no escaping, undefined is an error, fuel) with `parseRepoUrl`, `parseEntityRef`,
//!   `pick` and `projectSlug`.
//! - [`Workspace`]: every file write confined to the task folder (`..`, absolute paths
//!   and symlinks refused).
//! - [`builtin`]: `fetch:template`, `fetch:plain`, `fetch:plain:file`, `fs:rename`,
//!   `fs:delete`, `publish:git`, `catalog:register`, `catalog:write`, `debug:log`.
//!
//! Expressions see `parameters`, `steps['id'].output`, `user.ref` / `user.entity`,
//! `secrets` and, in `each` steps, `each.key` / `each.value`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
//! use std::sync::Arc;
//! use idp_catalog::scaffolder::{ActionRegistry, RunOptions, Scaffolder, Template, TaskStatus, User};
//!
//! let template = Template::from_yaml(r#"
//! apiVersion: scaffolder.backstage.io/v1beta3
//! kind: Template
//! metadata: {name: register-bucket}
//! spec:
//!   owner: team-platform
//!   type: resource
//!   parameters:
//!     - title: Bucket
//!       required: [name, owner]
//!       properties:
//!         name: {type: string, pattern: '^[a-z0-9-]+$'}
//!         owner: {type: string, ui:field: OwnerPicker}
//!   steps:
//!     - id: write
//!       action: catalog:write
//!       input:
//!         entity:
//!           apiVersion: backstage.io/v1alpha1
//!           kind: Resource
//!           metadata: {name: "${{ parameters.name }}"}
//!           spec: {type: s3-bucket, owner: "${{ parameters.owner | parseEntityRef({defaultKind: 'group'}) | pick('name') }}"}
//!     - id: register
//!       action: catalog:register
//!   output:
//!     links:
//!       - {title: Bucket, entityRef: "${{ steps.register.output.entityRef }}"}
//! "#)?;
//! let catalog = Arc::new(idp_catalog::InMemoryCatalog::new());
//! let scaffolder = Scaffolder::new(ActionRegistry::builtin()).with_catalog(catalog.clone());
//! let values = serde_json::json!({"name": "orders-archive", "owner": "team-a"});
//! let task = scaffolder.run(&template, &values, &User::new("user:default/jane"), RunOptions::new()).await?;
//! assert_eq!(task.status, TaskStatus::Completed, "{:?}", task.error);
//! assert_eq!(task.output["links"][0]["entityRef"], "resource:default/orders-archive");
//! assert_eq!(catalog.snapshot().len(), 1);
//! # Ok(()) }
//! ```

mod action;
pub mod builtin;
mod params;
mod render;
mod run;
mod secrets;
mod template;
mod workspace;

pub use action::{Action, ActionContext, ActionRegistry};
pub use params::{FieldError, property_type, validate_parameters};
pub use render::{DEFAULT_FUEL, Renderer, parse_entity_ref, parse_repo_url};
pub use run::{
    LogLine, Progress, RunOptions, Scaffolder, StepReport, StepStatus, Task, TaskStatus, User,
};
pub use secrets::{CancelToken, REDACTED, Redactor};
pub use template::{API_VERSION, ParameterStep, Step, Template, TemplateOutput};
pub use workspace::Workspace;
