//! Turning a checked-out source directory into Kubernetes objects: the [`Renderer`] trait
//! and the default [`PlainYamlRenderer`].

use std::fmt::Debug;
use std::path::Path;

use idp_core::{ManifestSet, Result};

/// Renders the directory a [`Reconciler`](super::Reconciler) checked out into the objects
/// to apply.
///
/// Implement it to plug in another format (a workload spec such as Score, Kustomize,
/// a template engine). It is object-safe and synchronous: the reconciler calls it on a
/// blocking thread. A renderer must be deterministic (same directory, same set) and
/// must fail — never return a partial set — when any input is invalid, because the
/// reconciler prunes whatever the set no longer contains. Errors should name the file
/// and line.
///
/// ```
/// use std::path::Path;
/// use idp_core::{ManifestSet, Result};
/// use idp_deploy::reconcile::Renderer;
///
/// /// Only `*.yaml` files directly in the directory.
/// #[derive(Debug)]
/// struct TopLevelOnly;
///
/// impl Renderer for TopLevelOnly {
///     fn name(&self) -> &str { "top-level-yaml" }
///     fn render(&self, dir: &Path) -> Result<ManifestSet> {
///         let mut set = ManifestSet::new();
///         for entry in std::fs::read_dir(dir)? {
///             let path = entry?.path();
///             if path.extension().is_some_and(|e| e == "yaml") {
///                 set.extend(ManifestSet::from_file(&path)?);
///             }
///         }
///         Ok(set)
///     }
/// }
/// let dir = tempfile::tempdir()?;
/// assert!(TopLevelOnly.render(dir.path())?.is_empty());
/// # Ok::<(), idp_core::Error>(())
/// ```
pub trait Renderer: Send + Sync + Debug {
    /// A stable name, for logs and status messages.
    fn name(&self) -> &str;
    /// Render every object the directory `dir` describes.
    fn render(&self, dir: &Path) -> Result<ManifestSet>;
}

/// The default renderer: every `*.yaml`, `*.yml` and `*.json` file under the directory,
/// recursively, in sorted path order, multi-document YAML and `kind: List` included.
/// Parse errors name the file (relative to the checkout) and line.
///
/// ```
/// use idp_deploy::reconcile::{PlainYamlRenderer, Renderer};
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n")?;
/// assert_eq!(PlainYamlRenderer.render(dir.path())?.len(), 1);
/// std::fs::write(dir.path().join("bad.yaml"), "kind: [\n")?;
/// assert!(PlainYamlRenderer.render(dir.path()).is_err());
/// # Ok::<(), idp_core::Error>(())
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainYamlRenderer;

impl Renderer for PlainYamlRenderer {
    fn name(&self) -> &str {
        "plain-yaml"
    }

    fn render(&self, dir: &Path) -> Result<ManifestSet> {
        ManifestSet::from_dir(dir)
    }
}

/// Renders a tree that mixes Score workloads and plain manifests: every YAML/JSON file
/// whose `apiVersion` is `score.dev/v1b1` is rendered for the environment with
/// [`crate::workload::render`] (its `files` resolved relative to the Score file), every
/// other file is read as plain manifests, as [`PlainYamlRenderer`] does.
///
/// Rendering runs on the reconciler's blocking thread; resource outputs come from the
/// provisioner, whose futures are driven there to completion (the shipped provisioners do
/// no I/O; one that does must not need a current-thread runtime of its own).
///
/// ```
/// use idp_deploy::reconcile::{Renderer, ScoreRenderer};
/// use idp_deploy::workload::EnvironmentProfile;
/// let dir = tempfile::tempdir()?;
/// std::fs::write(dir.path().join("score.yaml"),
///     "apiVersion: score.dev/v1b1\nmetadata: {name: cart}\ncontainers:\n  web: {image: .}\n")?;
/// std::fs::write(dir.path().join("cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\n")?;
/// let renderer = ScoreRenderer::new(EnvironmentProfile::default())
///     .environment("dev")
///     .image("ghcr.io/acme/cart:1.0");
/// let set = renderer.render(dir.path())?;
/// assert!(set.iter().any(|o| o.kind() == "Deployment"));
/// assert!(set.iter().any(|o| o.kind() == "ConfigMap" && o.name() == "extra"));
/// # Ok::<(), idp_core::Error>(())
/// ```
#[derive(Clone)]
pub struct ScoreRenderer {
    profile: crate::workload::EnvironmentProfile,
    provisioner: std::sync::Arc<dyn crate::workload::ResourceProvisioner>,
    environment: Option<String>,
    namespace: Option<String>,
    image: Option<String>,
}

impl Debug for ScoreRenderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScoreRenderer")
            .field("environment", &self.environment)
            .field("namespace", &self.namespace)
            .field("image", &self.image)
            .finish_non_exhaustive()
    }
}

impl ScoreRenderer {
    /// A renderer for `profile`, with the default provisioners
    /// ([`CompositeProvisioner::with_defaults`](crate::workload::CompositeProvisioner::with_defaults)).
    ///
    /// ```
    /// let r = idp_deploy::reconcile::ScoreRenderer::new(Default::default());
    /// assert_eq!(idp_deploy::reconcile::Renderer::name(&r), "score");
    /// ```
    pub fn new(profile: crate::workload::EnvironmentProfile) -> Self {
        Self {
            profile,
            provisioner: std::sync::Arc::new(crate::workload::CompositeProvisioner::with_defaults()),
            environment: None,
            namespace: None,
            image: None,
        }
    }

    /// Use `provisioner` for `${resources.*}` outputs.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let r = idp_deploy::reconcile::ScoreRenderer::new(Default::default())
    ///     .provisioner(Arc::new(idp_deploy::workload::CompositeProvisioner::with_defaults()));
    /// ```
    pub fn provisioner(
        mut self,
        provisioner: std::sync::Arc<dyn crate::workload::ResourceProvisioner>,
    ) -> Self {
        self.provisioner = provisioner;
        self
    }

    /// The environment the workloads are rendered for (labels, profile lookups).
    ///
    /// ```
    /// let r = idp_deploy::reconcile::ScoreRenderer::new(Default::default()).environment("prod");
    /// ```
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// The namespace the workloads are rendered into.
    ///
    /// ```
    /// let r = idp_deploy::reconcile::ScoreRenderer::new(Default::default()).namespace("shop");
    /// ```
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// The image for containers whose image is `.`.
    ///
    /// ```
    /// let r = idp_deploy::reconcile::ScoreRenderer::new(Default::default()).image("ghcr.io/acme/cart:1.0");
    /// ```
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }

    /// Render one Score file with this renderer's profile, provisioner, environment,
    /// namespace and image (its `files` resolved relative to the file).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> idp_core::Result<()> {
    /// let dir = tempfile::tempdir()?;
    /// let file = dir.path().join("score.yaml");
    /// std::fs::write(&file, "apiVersion: score.dev/v1b1\nmetadata: {name: cart}\ncontainers:\n  web: {image: .}\n")?;
    /// let set = idp_deploy::reconcile::ScoreRenderer::new(Default::default())
    ///     .image("ghcr.io/acme/cart:1.0")
    ///     .render_file(&file)
    ///     .await?;
    /// assert!(set.iter().any(|o| o.kind() == "Deployment"));
    /// # Ok(()) }
    /// ```
    pub async fn render_file(&self, path: &Path) -> Result<ManifestSet> {
        let workload = crate::workload::Workload::from_file(path)?;
        let mut ctx = crate::workload::RenderContext::new();
        ctx.environment.clone_from(&self.environment);
        ctx.namespace.clone_from(&self.namespace);
        ctx.image.clone_from(&self.image);
        ctx.base_dir = path.parent().map(Path::to_path_buf);
        crate::workload::render(&workload, &self.profile, self.provisioner.as_ref(), &ctx).await
    }
}

/// Whether a manifest file is a Score workload (`apiVersion: score.dev/v1b1` at the top
/// level of its first document).
fn is_score(text: &str) -> bool {
    text.lines().any(|line| {
        line.strip_prefix("apiVersion:").is_some_and(|v| {
            v.trim().trim_matches(['"', '\'']) == crate::workload::SCORE_API_VERSION
        })
    }) || text.contains("\"apiVersion\":\"score.dev/v1b1\"")
        || text.contains("\"apiVersion\": \"score.dev/v1b1\"")
}

/// The manifest files under `dir`, recursively, sorted, hidden entries skipped.
fn manifest_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    let read = std::fs::read_dir(dir).map_err(|e| {
        idp_core::Error::invalid_input(format!("cannot read {}: {e}", dir.display()))
    })?;
    let mut entries: Vec<_> = read.filter_map(std::result::Result::ok).collect();
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if path.is_dir() {
            manifest_files(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|e| e == "yaml" || e == "yml" || e == "json")
        {
            out.push(path);
        }
    }
    Ok(())
}

impl Renderer for ScoreRenderer {
    fn name(&self) -> &str {
        "score"
    }

    fn render(&self, dir: &Path) -> Result<ManifestSet> {
        let mut files = Vec::new();
        manifest_files(dir, &mut files)?;
        let mut set = ManifestSet::new();
        for path in files {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                idp_core::Error::invalid_input(format!("cannot read {}: {e}", path.display()))
            })?;
            let part = if is_score(&text) {
                futures::executor::block_on(self.render_file(&path))?
            } else {
                ManifestSet::parse(text.as_bytes(), Some(&path))?
            };
            set.extend(part);
        }
        Ok(set)
    }
}
