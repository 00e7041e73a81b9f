//! `publish:git`.

use async_trait::async_trait;
use serde_json::{Value, json};

use idp_core::git::{CommitRequest, GitRepo, Identity, InitOptions};
use idp_core::{Error, Result};

use super::join_rel;
use crate::scaffolder::action::{Action, ActionContext};

/// `publish:git`: commit the workspace (or `sourcePath` in it) to a Git remote through
/// idp-core's [`GitRepo`].
///
/// - `repoUrl` — a Git URL or path (`file://` always; `https://`/`ssh://` with idp-core's
///   transport features). A local path that does not exist becomes a new bare repository.
/// - `branch` (default: `defaultBranch`) — an existing branch gets a new commit on top; a
///   new branch starts from `defaultBranch` when that exists, and a new repository gets
///   its first commit on `defaultBranch` (default `main`).
/// - `sourcePath` (in the workspace, default all of it), `targetPath` (folder in the
///   repository, default its root — e.g. `envs/prod/databases/orders` in a GitOps repo).
/// - `gitCommitMessage` (default `initial commit`), `gitAuthorName`, `gitAuthorEmail`.
///
/// Outputs `remoteUrl`, `commitHash`, `branch`. In a dry run nothing is pushed and
/// `commitHash` is empty.
///
/// ```
/// use idp_catalog::scaffolder::Action;
/// assert_eq!(idp_catalog::scaffolder::builtin::PublishGit.id(), "publish:git");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PublishGit;

fn local_path(url: &str) -> Option<std::path::PathBuf> {
    if let Some(p) = url.strip_prefix("file://") {
        return Some(p.into());
    }
    if url.contains("://") || url.contains('@') {
        return None;
    }
    Some(url.into())
}

#[async_trait]
impl Action for PublishGit {
    fn id(&self) -> &str {
        "publish:git"
    }
    fn description(&self) -> &str {
        "Commits the workspace to a Git remote: a new repository, a new branch, or a folder of an existing branch (GitOps)."
    }
    fn input_schema(&self) -> Value {
        json!({
            "type": "object",
            "required": ["repoUrl"],
            "properties": {
                "repoUrl": {"type": "string", "description": "Git URL or path of the remote."},
                "branch": {"type": "string", "description": "Branch to commit to (default: defaultBranch)."},
                "defaultBranch": {"type": "string", "description": "Default branch of the repository (default main)."},
                "sourcePath": {"type": "string", "description": "Folder of the workspace to publish (default: all)."},
                "targetPath": {"type": "string", "description": "Folder in the repository to write into (default: root)."},
                "gitCommitMessage": {"type": "string", "description": "Commit message (default: initial commit)."},
                "gitAuthorName": {"type": "string"},
                "gitAuthorEmail": {"type": "string"}
            }
        })
    }
    fn output_schema(&self) -> Value {
        json!({"type": "object", "properties": {
            "remoteUrl": {"type": "string"}, "commitHash": {"type": "string"}, "branch": {"type": "string"}}})
    }

    async fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let url = ctx.input_str("repoUrl")?.to_owned();
        if url.contains('?') {
            return Err(Error::invalid_input(format!(
                "publish:git: repoUrl {url:?} looks like a Backstage host?owner=&repo= URL; publish:git needs a Git URL (file://, https://, ssh://) — hosting-specific publishers are separate actions"
            )));
        }
        let default_branch = ctx
            .input_opt_str("defaultBranch")
            .unwrap_or("main")
            .to_owned();
        let branch = ctx
            .input_opt_str("branch")
            .map_or_else(|| default_branch.clone(), str::to_owned);
        let source = ctx.input_opt_str("sourcePath").unwrap_or("").to_owned();
        let target = ctx.input_opt_str("targetPath").unwrap_or("").to_owned();
        let message = ctx
            .input_opt_str("gitCommitMessage")
            .unwrap_or("initial commit")
            .to_owned();
        let author = Identity::new(
            ctx.input_opt_str("gitAuthorName").unwrap_or("Scaffolder"),
            ctx.input_opt_str("gitAuthorEmail")
                .unwrap_or("scaffolder@idp.invalid"),
        );
        let files = ctx.workspace.files(&source)?;
        if files.is_empty() {
            return Err(Error::invalid_input(format!(
                "publish:git: nothing to publish: {} is empty",
                if source.is_empty() {
                    "the workspace"
                } else {
                    &source
                }
            )));
        }
        ctx.output("remoteUrl", url.clone());
        ctx.output("branch", branch.clone());
        if ctx.dry_run {
            ctx.log(format!(
                "publish:git: would commit {} file(s) to {url} branch {branch}{} (dry run)",
                files.len(),
                if target.is_empty() {
                    String::new()
                } else {
                    format!(" under {target}")
                }
            ));
            ctx.output("commitHash", "");
            return Ok(());
        }
        ctx.check_cancelled()?;
        if let Some(path) = local_path(&url)
            && !path.exists()
        {
            GitRepo::init(&path, InitOptions::bare(default_branch.clone())).await?;
            ctx.log(format!("publish:git: created the bare repository {url}"));
        }
        let tmp = tempfile::tempdir()
            .map_err(|e| Error::unavailable(format!("publish:git: temp folder: {e}")))?;
        let local = GitRepo::init(
            tmp.path().join("publish.git"),
            InitOptions::bare(branch.clone()),
        )
        .await?;
        // Existing branch? Otherwise start from the default branch, or from nothing.
        let _ = local
            .fetch(
                &url,
                &[&format!("+refs/heads/{branch}:refs/heads/{branch}")],
            )
            .await;
        let mut tip = local.resolve(&branch).await.ok();
        if tip.is_none() && branch != default_branch {
            let _ = local
                .fetch(
                    &url,
                    &[&format!("+refs/heads/{default_branch}:refs/heads/{branch}")],
                )
                .await;
            tip = local.resolve(&branch).await.ok();
        }
        let mut req = CommitRequest::new(branch.clone(), message, author);
        for (path, bytes) in files {
            req = req.put(join_rel(&target, &path), bytes);
        }
        req = match tip {
            Some(parent) => req.parent(parent),
            None => req.unborn(),
        };
        let out = local
            .commit(req)
            .await
            .map_err(|e| e.context("publish:git"))?;
        ctx.check_cancelled()?;
        local
            .push(&url, &[&format!("refs/heads/{branch}:refs/heads/{branch}")])
            .await
            .map_err(|e| e.context(format!("publish:git: push to {url}")))?;
        ctx.log(format!(
            "publish:git: pushed {} to {url} branch {branch}",
            out.id.short(12)
        ));
        ctx.output("commitHash", out.id.to_hex());
        Ok(())
    }
}
