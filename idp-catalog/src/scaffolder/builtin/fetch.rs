//! `fetch:template`, `fetch:plain`, `fetch:plain:file`.

use async_trait::async_trait;
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde_json::{Value, json};

use idp_core::{Error, ErrorKind, Result};

use super::join_rel;
use crate::scaffolder::action::{Action, ActionContext};
use crate::scaffolder::render::Renderer;
use crate::scaffolder::workspace::{EntryKind, resolve_source, walk};

/// `fetch:template`: render a skeleton folder into the workspace.
///
/// Inputs: `url` (a folder relative to the template), `targetPath` (default `./`),
/// `values` (the context: `${{ values.x }}`), `copyWithoutTemplating` (globs, relative
/// to the skeleton, whose contents are copied as is; their names are still rendered),
/// `cookiecutterCompat` (`{{ cookiecutter.x }}` syntax), `templateFileExtension` (`true`
/// for `.njk`, or an extension: only such files are rendered, and lose it), `replace`
/// (overwrite existing files; otherwise they are kept). A file whose rendered name is
/// empty is skipped, so `${{ 'ci.yaml' if values.ci }}` makes a file optional.
///
/// ```
/// use idp_catalog::scaffolder::Action;
/// assert_eq!(idp_catalog::scaffolder::builtin::FetchTemplate.id(), "fetch:template");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FetchTemplate;

/// `fetch:plain`: copy a folder into the workspace unchanged (`url`, `targetPath`).
///
/// ```
/// use idp_catalog::scaffolder::Action;
/// assert_eq!(idp_catalog::scaffolder::builtin::FetchPlain.id(), "fetch:plain");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FetchPlain;

/// `fetch:plain:file`: copy one file into the workspace (`url`, `targetPath` = the
/// file's path).
///
/// ```
/// use idp_catalog::scaffolder::Action;
/// assert_eq!(idp_catalog::scaffolder::builtin::FetchPlainFile.id(), "fetch:plain:file");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct FetchPlainFile;

fn build_globs(patterns: &[String]) -> Result<GlobSet> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let p = p.trim_start_matches("./");
        let glob = Glob::new(p).map_err(|e| {
            Error::invalid_input(format!("copyWithoutTemplating: bad glob {p:?}: {e}"))
        })?;
        b.add(glob);
    }
    b.build()
        .map_err(|e| Error::invalid_input(format!("copyWithoutTemplating: {e}")))
}

/// Whether `rel` or one of its parent folders matches.
fn matches_glob(set: &GlobSet, rel: &str) -> bool {
    if set.is_empty() {
        return false;
    }
    if set.is_match(rel) {
        return true;
    }
    let mut p = rel;
    while let Some((parent, _)) = p.rsplit_once('/') {
        if set.is_match(parent) {
            return true;
        }
        p = parent;
    }
    false
}

fn symlink_error(url: &str, rel: &str) -> Error {
    Error::new(
        ErrorKind::Denied,
        format!("{url}: {rel} is a symbolic link; skeletons may not contain links"),
    )
}

#[async_trait]
impl Action for FetchTemplate {
    fn id(&self) -> &str {
        "fetch:template"
    }
    fn description(&self) -> &str {
        "Renders a skeleton folder (file contents and names) with the given values into the workspace."
    }
    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["url"],
            "properties": {
                "url": {"type": "string", "description": "Folder of the skeleton, relative to the template."},
                "targetPath": {"type": "string", "description": "Where to write, relative to the workspace (default ./)."},
                "values": {"type": "object", "description": "Values available as ${{ values.x }}."},
                "copyWithoutTemplating": {"type": "array", "items": {"type": "string"}, "description": "Globs whose contents are copied unrendered."},
                "cookiecutterCompat": {"type": "boolean", "description": "Use {{ cookiecutter.x }} syntax."},
                "templateFileExtension": {"type": ["boolean", "string"], "description": "Only files with this extension (true = .njk) are rendered; it is removed."},
                "replace": {"type": "boolean", "description": "Overwrite files that exist in the workspace."}
            }
        })
    }

    async fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let url = ctx.input_str("url")?.to_owned();
        let target = ctx.input_opt_str("targetPath").unwrap_or("./").to_owned();
        let values = ctx
            .input
            .get("values")
            .cloned()
            .unwrap_or_else(|| json!({}));
        let cookiecutter = ctx.input_bool("cookiecutterCompat");
        let replace = ctx.input_bool("replace");
        let extension: Option<String> = match ctx.input.get("templateFileExtension") {
            Some(Value::Bool(true)) => Some(".njk".into()),
            Some(Value::String(s)) if !s.is_empty() => Some(if s.starts_with('.') {
                s.clone()
            } else {
                format!(".{s}")
            }),
            _ => None,
        };
        let patterns: Vec<String> = ctx
            .input
            .get("copyWithoutTemplating")
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let globs = build_globs(&patterns)?;
        let source = resolve_source(ctx.template_dir.as_deref(), &url)?;
        if !source.is_dir() {
            return Err(Error::invalid_input(format!(
                "fetch:template: {url} is not a folder"
            )));
        }
        let renderer = ctx.renderer()?;
        let mj_ctx = if cookiecutter {
            Renderer::mj_context(&json!({"values": values, "cookiecutter": values}))
        } else {
            Renderer::mj_context(&json!({"values": values}))
        };
        let marker = if cookiecutter { "{{" } else { "${{" };
        let step = ctx.step_id.clone();
        let mut entries = Vec::new();
        walk(&source, "", &mut |path, rel, kind| {
            entries.push((path.to_path_buf(), rel.to_owned(), kind));
            Ok(())
        })?;
        let mut written = 0usize;
        let mut skipped = 0usize;
        for (path, rel, kind) in entries {
            ctx.check_cancelled()?;
            if kind == EntryKind::Symlink {
                return Err(symlink_error(&url, &rel));
            }
            let verbatim = matches_glob(&globs, &rel);
            let (name, render_contents) = match &extension {
                Some(ext) if !verbatim => match rel.strip_suffix(ext.as_str()) {
                    Some(stripped) => (stripped.to_owned(), true),
                    None => (rel.clone(), false),
                },
                Some(_) => (rel.clone(), false),
                None => (rel.clone(), !verbatim),
            };
            // File names are templated component by component.
            let mut out_parts = Vec::new();
            let mut empty = false;
            for part in name.split('/') {
                let rendered = if part.contains(marker) || part.contains("{%") {
                    renderer.render_with(
                        cookiecutter,
                        part,
                        &mj_ctx,
                        &format!("step {step}: file name {rel}"),
                    )?
                } else {
                    part.to_owned()
                };
                if rendered.trim().is_empty() {
                    empty = true;
                    break;
                }
                out_parts.push(rendered);
            }
            if empty {
                skipped += 1;
                continue;
            }
            let dest = join_rel(&target, &out_parts.join("/"));
            if kind == EntryKind::Dir {
                ctx.workspace.create_dir(&dest)?;
                continue;
            }
            if ctx.workspace.exists(&dest) && !replace {
                ctx.workspace.resolve(&dest)?;
                skipped += 1;
                continue;
            }
            let bytes = std::fs::read(&path).map_err(|e| {
                Error::unavailable(format!("fetch:template: cannot read {url}/{rel}: {e}"))
            })?;
            let out = if render_contents {
                match std::str::from_utf8(&bytes) {
                    Ok(text)
                        if text.contains(marker) || text.contains("{%") || text.contains("{#") =>
                    {
                        renderer
                            .render_with(
                                cookiecutter,
                                text,
                                &mj_ctx,
                                &format!("step {step}: file {rel}"),
                            )?
                            .into_bytes()
                    }
                    _ => bytes,
                }
            } else {
                bytes
            };
            ctx.workspace.write(&dest, out)?;
            written += 1;
        }
        ctx.log(format!(
            "fetch:template: rendered {written} file(s) from {url} into {target} ({skipped} skipped)"
        ));
        Ok(())
    }
}

fn copy_tree(ctx: &mut ActionContext, url: &str, target: &str) -> Result<usize> {
    let source = resolve_source(ctx.template_dir.as_deref(), url)?;
    if source.is_file() {
        return Err(Error::invalid_input(format!(
            "fetch:plain: {url} is a file; use fetch:plain:file"
        )));
    }
    let mut entries = Vec::new();
    walk(&source, "", &mut |path, rel, kind| {
        entries.push((path.to_path_buf(), rel.to_owned(), kind));
        Ok(())
    })?;
    let mut n = 0;
    for (path, rel, kind) in entries {
        ctx.check_cancelled()?;
        let dest = join_rel(target, &rel);
        match kind {
            EntryKind::Symlink => return Err(symlink_error(url, &rel)),
            EntryKind::Dir => ctx.workspace.create_dir(&dest)?,
            EntryKind::File => {
                let bytes = std::fs::read(&path)
                    .map_err(|e| Error::unavailable(format!("cannot read {url}/{rel}: {e}")))?;
                ctx.workspace.write(&dest, bytes)?;
                n += 1;
            }
        }
    }
    Ok(n)
}

#[async_trait]
impl Action for FetchPlain {
    fn id(&self) -> &str {
        "fetch:plain"
    }
    fn description(&self) -> &str {
        "Copies a folder, relative to the template, into the workspace unchanged."
    }
    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["url"],
            "properties": {
                "url": {"type": "string", "description": "Folder relative to the template."},
                "targetPath": {"type": "string", "description": "Where to write, relative to the workspace (default ./)."}
            }
        })
    }
    async fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let url = ctx.input_str("url")?.to_owned();
        let target = ctx.input_opt_str("targetPath").unwrap_or("./").to_owned();
        let n = copy_tree(ctx, &url, &target)?;
        ctx.log(format!(
            "fetch:plain: copied {n} file(s) from {url} into {target}"
        ));
        Ok(())
    }
}

#[async_trait]
impl Action for FetchPlainFile {
    fn id(&self) -> &str {
        "fetch:plain:file"
    }
    fn description(&self) -> &str {
        "Copies one file, relative to the template, into the workspace unchanged."
    }
    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["url", "targetPath"],
            "properties": {
                "url": {"type": "string", "description": "File relative to the template."},
                "targetPath": {"type": "string", "description": "The file's path in the workspace."}
            }
        })
    }
    async fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let url = ctx.input_str("url")?.to_owned();
        let target = ctx.input_str("targetPath")?.to_owned();
        let source = resolve_source(ctx.template_dir.as_deref(), &url)?;
        if std::fs::symlink_metadata(&source).is_ok_and(|m| !m.is_file()) {
            return Err(Error::invalid_input(format!(
                "fetch:plain:file: {url} is not a regular file"
            )));
        }
        let bytes = std::fs::read(&source)
            .map_err(|e| Error::unavailable(format!("cannot read {url}: {e}")))?;
        ctx.workspace.write(&target, bytes)?;
        ctx.log(format!("fetch:plain:file: copied {url} to {target}"));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_parents() {
        let set = build_globs(&["./.github/**".into(), "static".into()]).unwrap();
        assert!(matches_glob(&set, ".github/workflows/ci.yaml"));
        assert!(matches_glob(&set, "static/logo.png"));
        assert!(!matches_glob(&set, "src/main.rs"));
    }
}
