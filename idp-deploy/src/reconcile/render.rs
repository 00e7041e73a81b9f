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
