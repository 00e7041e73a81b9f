//! `debug:log`.

use async_trait::async_trait;
use serde_json::{Value, json};

use idp_core::Result;

use crate::scaffolder::action::{Action, ActionContext};

/// `debug:log`: log `message` and, with `listWorkspace`, the workspace's files
/// (`true` / `with-filenames`: names; `with-contents`: names and contents).
///
/// ```
/// use idp_catalog::scaffolder::Action;
/// assert_eq!(idp_catalog::scaffolder::builtin::DebugLog.id(), "debug:log");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DebugLog;

#[async_trait]
impl Action for DebugLog {
    fn id(&self) -> &str {
        "debug:log"
    }
    fn description(&self) -> &str {
        "Writes a message, and optionally the workspace's files, to the task log."
    }
    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "message": {"description": "What to log (strings as is, anything else as JSON)."},
                "listWorkspace": {"type": ["boolean", "string"], "enum": [true, false, "with-filenames", "with-contents"]}
            }
        })
    }
    async fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        match ctx.input.get("message").cloned() {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) => ctx.log(s),
            Some(other) => ctx.log(other.to_string()),
        }
        let mode = match ctx.input.get("listWorkspace") {
            Some(Value::Bool(true)) => Some("with-filenames"),
            Some(Value::String(s)) if s == "with-filenames" => Some("with-filenames"),
            Some(Value::String(s)) if s == "with-contents" => Some("with-contents"),
            _ => None,
        };
        if let Some(mode) = mode {
            let files = ctx.workspace.files("")?;
            for (path, bytes) in files {
                if mode == "with-contents" {
                    ctx.log(format!("{path}:\n{}", String::from_utf8_lossy(&bytes)));
                } else {
                    ctx.log(path);
                }
            }
        }
        Ok(())
    }
}
