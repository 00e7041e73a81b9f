//! `catalog:write`, `catalog:register`.

use async_trait::async_trait;
use serde_json::{Value, json};

use idp_core::model::Entity;
use idp_core::{Error, Result};

use crate::scaffolder::action::{Action, ActionContext};

/// `catalog:write`: write `entity` as YAML to `filePath` (default `catalog-info.yaml`).
///
/// ```
/// use idp_catalog::scaffolder::Action;
/// assert_eq!(idp_catalog::scaffolder::builtin::CatalogWrite.id(), "catalog:write");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CatalogWrite;

/// `catalog:register`: read `catalogInfoPath` (default `catalog-info.yaml`) from the
/// workspace and upsert every entity in it into the scaffolder's catalog. With
/// `catalogInfoUrl`, entities get `backstage.io/managed-by-location` and
/// `backstage.io/managed-by-origin-location` annotations pointing at it. Outputs
/// `entityRef` (the first entity that is not a Location) and `catalogInfoUrl`. In a dry
/// run nothing is written to the catalog.
///
/// ```
/// use idp_catalog::scaffolder::Action;
/// assert_eq!(idp_catalog::scaffolder::builtin::CatalogRegister.id(), "catalog:register");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct CatalogRegister;

#[async_trait]
impl Action for CatalogWrite {
    fn id(&self) -> &str {
        "catalog:write"
    }
    fn description(&self) -> &str {
        "Writes a catalog entity as YAML into the workspace."
    }
    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["entity"],
            "properties": {
                "filePath": {"type": "string", "description": "Default catalog-info.yaml."},
                "entity": {"type": "object", "description": "The entity to write."}
            }
        })
    }
    async fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let path = ctx
            .input_opt_str("filePath")
            .unwrap_or("catalog-info.yaml")
            .to_owned();
        let entity = ctx.input.get("entity").cloned().unwrap_or(Value::Null);
        Entity::from_value(entity.clone()).map_err(|e| e.context("catalog:write: entity"))?;
        let yaml = serde_saphyr::to_string(&entity)
            .map_err(|e| Error::internal(format!("catalog:write: cannot write YAML: {e}")))?;
        ctx.workspace.write(&path, yaml)?;
        ctx.log(format!("catalog:write: wrote {path}"));
        Ok(())
    }
}

#[async_trait]
impl Action for CatalogRegister {
    fn id(&self) -> &str {
        "catalog:register"
    }
    fn description(&self) -> &str {
        "Registers the entities of a catalog-info.yaml in the workspace into the catalog."
    }
    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "properties": {
                "catalogInfoPath": {"type": "string", "description": "Path in the workspace (default catalog-info.yaml)."},
                "catalogInfoUrl": {"type": "string", "description": "Where the file will live (recorded as the entities' location)."},
                "repoContentsUrl": {"type": "string", "description": "Base URL; catalogInfoUrl = repoContentsUrl + '/' + catalogInfoPath."},
                "optional": {"type": "boolean", "description": "Do not fail when the file is missing."}
            }
        })
    }
    fn output_schema(&self) -> Value {
        json!({"type": "object", "properties": {"entityRef": {"type": "string"}, "catalogInfoUrl": {"type": "string"}}})
    }
    async fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let path = ctx
            .input_opt_str("catalogInfoPath")
            .unwrap_or("catalog-info.yaml")
            .trim_start_matches('/')
            .to_owned();
        let url = ctx
            .input_opt_str("catalogInfoUrl")
            .map(str::to_owned)
            .or_else(|| {
                ctx.input_opt_str("repoContentsUrl")
                    .map(|base| format!("{}/{}", base.trim_end_matches('/'), path))
            });
        let bytes = match ctx.workspace.read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == idp_core::ErrorKind::NotFound && ctx.input_bool("optional") => {
                ctx.log(format!(
                    "catalog:register: {path} is missing; skipped (optional)"
                ));
                return Ok(());
            }
            Err(e) => return Err(e.context("catalog:register")),
        };
        let text = String::from_utf8(bytes)
            .map_err(|_| Error::invalid_input(format!("catalog:register: {path} is not UTF-8")))?;
        let docs = crate::parse::parse_documents(&text)
            .map_err(|e| Error::invalid_input(format!("catalog:register: {path}: {e}")))?;
        let mut entities = Vec::new();
        for doc in docs {
            let mut value = doc.value;
            if let Some(url) = &url
                && let Some(meta) = value.get_mut("metadata").and_then(Value::as_object_mut)
                && let Some(ann) = meta
                    .entry("annotations")
                    .or_insert_with(|| json!({}))
                    .as_object_mut()
            {
                for key in [
                    "backstage.io/managed-by-location",
                    "backstage.io/managed-by-origin-location",
                ] {
                    ann.entry(key)
                        .or_insert_with(|| Value::String(format!("url:{url}")));
                }
            }
            let entity = Entity::from_value(value)
                .map_err(|e| e.context(format!("catalog:register: {path}:{}", doc.line)))?;
            entities.push(entity);
        }
        let first = entities
            .iter()
            .find(|e| !e.kind().eq_ignore_ascii_case("location"))
            .or(entities.first())
            .map(|e| e.entity_ref().to_string());
        if ctx.dry_run {
            for e in &entities {
                ctx.log(format!(
                    "catalog:register: would register {} (dry run)",
                    e.entity_ref()
                ));
            }
        } else {
            let catalog = ctx.catalog.clone().ok_or_else(|| {
                Error::invalid_input(
                    "catalog:register: the scaffolder has no catalog; build it with Scaffolder::with_catalog",
                )
            })?;
            for e in entities {
                let r = e.entity_ref().to_string();
                catalog
                    .upsert(e)
                    .await
                    .map_err(|err| err.context(format!("catalog:register: {r}")))?;
                ctx.log(format!("catalog:register: registered {r}"));
            }
        }
        if let Some(first) = first {
            ctx.output("entityRef", first);
        }
        if let Some(url) = url {
            ctx.output("catalogInfoUrl", url);
        }
        Ok(())
    }
}
