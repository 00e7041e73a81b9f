//! `fs:rename`, `fs:delete`.

use async_trait::async_trait;
use globset::Glob;
use serde_json::{Value, json};

use idp_core::{Error, Result};

use crate::scaffolder::action::{Action, ActionContext};

/// `fs:rename`: move files inside the workspace. Input `files: [{from, to, overwrite}]`.
///
/// ```
/// use idp_catalog::scaffolder::Action;
/// assert_eq!(idp_catalog::scaffolder::builtin::FsRename.id(), "fs:rename");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FsRename;

/// `fs:delete`: delete files or folders from the workspace. Input `files: [path or glob]`.
///
/// ```
/// use idp_catalog::scaffolder::Action;
/// assert_eq!(idp_catalog::scaffolder::builtin::FsDelete.id(), "fs:delete");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FsDelete;

#[async_trait]
impl Action for FsRename {
    fn id(&self) -> &str {
        "fs:rename"
    }
    fn description(&self) -> &str {
        "Renames (moves) files and folders inside the workspace."
    }
    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["files"],
            "properties": {
                "files": {"type": "array", "items": {
                    "type": "object", "required": ["from", "to"],
                    "properties": {
                        "from": {"type": "string"},
                        "to": {"type": "string"},
                        "overwrite": {"type": "boolean"}
                    }
                }}
            }
        })
    }
    async fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let files = ctx
            .input
            .get("files")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for f in files {
            let from = f.get("from").and_then(Value::as_str).unwrap_or_default();
            let to = f.get("to").and_then(Value::as_str).unwrap_or_default();
            let overwrite = f.get("overwrite").and_then(Value::as_bool).unwrap_or(false);
            ctx.workspace.rename(from, to, overwrite)?;
            ctx.log(format!("fs:rename: {from} -> {to}"));
        }
        Ok(())
    }
}

#[async_trait]
impl Action for FsDelete {
    fn id(&self) -> &str {
        "fs:delete"
    }
    fn description(&self) -> &str {
        "Deletes files and folders (paths or globs) from the workspace."
    }
    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["files"],
            "properties": {"files": {"type": "array", "items": {"type": "string"}}}
        })
    }
    async fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let files: Vec<String> = ctx
            .input
            .get("files")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        for pattern in files {
            let p = pattern.trim_start_matches("./");
            if p.contains(['*', '?', '[', '{']) {
                let glob = Glob::new(p)
                    .map_err(|e| Error::invalid_input(format!("fs:delete: bad glob {p:?}: {e}")))?
                    .compile_matcher();
                let all = ctx.workspace.files("")?;
                let mut n = 0;
                for path in all.keys().filter(|k| glob.is_match(k.as_str())) {
                    ctx.workspace.remove(path)?;
                    n += 1;
                }
                ctx.log(format!("fs:delete: {pattern} matched {n} file(s)"));
            } else {
                let removed = ctx.workspace.remove(p)?;
                ctx.log(format!(
                    "fs:delete: {pattern}{}",
                    if removed { "" } else { " (not there)" }
                ));
            }
        }
        Ok(())
    }
}
