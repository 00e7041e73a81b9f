//! Where a preview's manifests come from: the [`PreviewSource`] port, and
//! [`ManifestSource`], which takes a directory (or a [`ManifestSet`]) and points it at
//! the pull request's head.
//!
//! ```
//! use idp_preview::source::ManifestSource;
//! let source = ManifestSource::from_set(idp_core::ManifestSet::new()).with_image("registry.example.com/cart");
//! assert_eq!(source.images().len(), 1);
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use async_trait::async_trait;
use idp_core::{Environment, Error, ManifestSet, Result};
use serde_json::Value;

use crate::event::PullRequestEvent;
use crate::labels::{self, PreviewId};

/// Produces the Kubernetes objects of a pull request's preview at its head SHA.
///
/// The platform supplies this: render a Helm chart or a Score file at the head commit,
/// read manifests a CI job built, or use [`ManifestSource`].
///
/// ```
/// use idp_preview::{event::PullRequestEvent, source::PreviewSource};
///
/// #[derive(Debug)]
/// struct Nothing;
/// #[async_trait::async_trait]
/// impl PreviewSource for Nothing {
///     async fn manifests(&self, _: &PullRequestEvent, _: &idp_core::Environment) -> idp_core::Result<idp_core::ManifestSet> {
///         Ok(idp_core::ManifestSet::new())
///     }
/// }
/// let _s: std::sync::Arc<dyn PreviewSource> = std::sync::Arc::new(Nothing);
/// ```
#[async_trait]
pub trait PreviewSource: Send + Sync + fmt::Debug {
    /// The objects to deploy into `environment` for the event's head SHA.
    async fn manifests(
        &self,
        event: &PullRequestEvent,
        environment: &Environment,
    ) -> Result<ManifestSet>;
}

#[derive(Debug, Clone)]
enum Origin {
    Set(ManifestSet),
    Dir(PathBuf),
}

/// A [`PreviewSource`] over fixed manifests (a directory read on every call, or a set).
///
/// For each preview it:
/// - sets the tag of every container image listed with [`with_image`](Self::with_image)
///   to the head SHA (or the [tag template](Self::with_tag_template));
/// - replaces `${PREVIEW_SHA}`, `${PREVIEW_SHORT_SHA}`, `${PREVIEW_ENV}`,
///   `${PREVIEW_NAMESPACE}`, `${PREVIEW_PR}` and `${PREVIEW_URL}` in every string;
/// - puts the objects in the environment's namespace and labels them as the preview's;
/// - refuses cluster-scoped kinds, which would outlive the preview's namespace.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use idp_preview::event::{Forge, PullRequestAction, PullRequestEvent};
/// use idp_preview::source::{ManifestSource, PreviewSource};
/// let set = idp_core::ManifestSet::parse(br#"
/// apiVersion: apps/v1
/// kind: Deployment
/// metadata: {name: web}
/// spec:
///   selector: {matchLabels: {app: web}}
///   template:
///     metadata: {labels: {app: web}}
///     spec: {containers: [{name: web, image: "registry.example.com/cart:main"}]}
/// "#, None).unwrap();
/// let source = ManifestSource::from_set(set).with_image("registry.example.com/cart");
/// let event = PullRequestEvent::new(Forge::GitHub, PullRequestAction::Opened, "acme/cart", 42).with_head("f", "9f1c2e7d");
/// let mut env = idp_core::Environment::new("pr-cart-42".parse().unwrap());
/// env.namespace = Some("pr-cart-42".into());
/// let out = source.manifests(&event, &env).await.unwrap();
/// let image = out.objects()[0].pointer("/spec/template/spec/containers/0/image").unwrap();
/// assert_eq!(image, "registry.example.com/cart:9f1c2e7d");
/// assert_eq!(out.objects()[0].namespace(), Some("pr-cart-42"));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct ManifestSource {
    origin: Origin,
    images: Vec<String>,
    tag_template: String,
}

impl ManifestSource {
    /// Use `set` for every preview.
    ///
    /// ```
    /// let s = idp_preview::source::ManifestSource::from_set(idp_core::ManifestSet::new());
    /// assert!(s.images().is_empty());
    /// ```
    pub fn from_set(set: ManifestSet) -> Self {
        Self {
            origin: Origin::Set(set),
            images: Vec::new(),
            tag_template: "{sha}".to_owned(),
        }
    }

    /// Read `dir` (recursively, `*.yaml`/`*.yml`/`*.json`) for every preview.
    ///
    /// ```
    /// let s = idp_preview::source::ManifestSource::from_dir("deploy/preview");
    /// # let _ = s;
    /// ```
    pub fn from_dir(dir: impl Into<PathBuf>) -> Self {
        Self {
            origin: Origin::Dir(dir.into()),
            images: Vec::new(),
            tag_template: "{sha}".to_owned(),
        }
    }

    /// Retag this image (`registry/name`, without tag) to the head.
    ///
    /// ```
    /// let s = idp_preview::source::ManifestSource::from_set(Default::default()).with_image("ghcr.io/acme/cart");
    /// assert_eq!(s.images(), ["ghcr.io/acme/cart"]);
    /// ```
    pub fn with_image(mut self, image: impl Into<String>) -> Self {
        self.images.push(image.into());
        self
    }

    /// The tag given to retagged images: `{sha}` (default) and `{short_sha}` (7 characters)
    /// are replaced.
    ///
    /// ```
    /// let s = idp_preview::source::ManifestSource::from_set(Default::default()).with_tag_template("sha-{short_sha}");
    /// # let _ = s;
    /// ```
    pub fn with_tag_template(mut self, template: impl Into<String>) -> Self {
        self.tag_template = template.into();
        self
    }

    /// The images retagged.
    ///
    /// ```
    /// assert!(idp_preview::source::ManifestSource::from_set(Default::default()).images().is_empty());
    /// ```
    pub fn images(&self) -> &[String] {
        &self.images
    }

    fn load(&self) -> Result<ManifestSet> {
        match &self.origin {
            Origin::Set(set) => Ok(set.clone()),
            Origin::Dir(dir) => ManifestSet::from_dir(dir),
        }
    }
}

/// The image without its tag or digest: `reg:5000/a/b:tag` → `reg:5000/a/b`.
fn image_name(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rfind(':') {
        Some(colon) if !without_digest[colon..].contains('/') => &without_digest[..colon],
        _ => without_digest,
    }
}

fn substitute(value: &mut Value, vars: &BTreeMap<&str, String>) {
    match value {
        Value::String(s) if s.contains("${PREVIEW_") => {
            for (key, replacement) in vars {
                *s = s.replace(key, replacement);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, vars)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, vars)),
        _ => {}
    }
}

fn retag(value: &mut Value, images: &[String], tag: &str) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if matches!(
                    key.as_str(),
                    "containers" | "initContainers" | "ephemeralContainers"
                ) && let Value::Array(containers) = child
                {
                    for container in containers {
                        if let Some(Value::String(image)) = container.get_mut("image") {
                            let name = image_name(image);
                            if images.iter().any(|i| i == name) {
                                *image = format!("{name}:{tag}");
                            }
                        }
                    }
                } else {
                    retag(child, images, tag);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| retag(v, images, tag)),
        _ => {}
    }
}

#[async_trait]
impl PreviewSource for ManifestSource {
    #[tracing::instrument(name = "preview.source.manifests", skip_all, fields(repo = %event.repo, pr = event.number, sha = %event.head_sha))]
    async fn manifests(
        &self,
        event: &PullRequestEvent,
        environment: &Environment,
    ) -> Result<ManifestSet> {
        let this = self.clone();
        let set = tokio::task::spawn_blocking(move || this.load())
            .await
            .map_err(|e| Error::internal("reading preview manifests panicked").with_source(e))??;
        let namespace = environment
            .namespace
            .clone()
            .unwrap_or_else(|| environment.name.as_str().to_owned());
        let sha = event.head_sha.clone();
        let short: String = sha.chars().take(7).collect();
        let tag = self
            .tag_template
            .replace("{short_sha}", &short)
            .replace("{sha}", &sha);
        let vars = BTreeMap::from([
            ("${PREVIEW_SHA}", sha.clone()),
            ("${PREVIEW_SHORT_SHA}", short),
            ("${PREVIEW_ENV}", environment.name.as_str().to_owned()),
            ("${PREVIEW_NAMESPACE}", namespace.clone()),
            ("${PREVIEW_PR}", event.number.to_string()),
            (
                "${PREVIEW_URL}",
                environment.url.clone().unwrap_or_default(),
            ),
        ]);
        let id = PreviewId::new(&event.repo, event.number)?;
        let mut preview_labels = id.labels();
        for key in labels::ANNOTATION_KEYS {
            preview_labels.remove(*key);
        }
        let mut out = ManifestSet::new();
        for object in set {
            if idp_core::manifest::is_cluster_scoped(object.kind()) {
                return Err(Error::invalid_input(format!(
                    "{}: {} is cluster-scoped and would outlive the preview's namespace; \
                     a preview may only hold namespaced objects",
                    object
                        .source()
                        .map_or_else(|| object.object_ref().to_string(), ToString::to_string),
                    object.kind()
                )));
            }
            let mut value = object.into_value();
            substitute(&mut value, &vars);
            if !self.images.is_empty() && !sha.is_empty() {
                retag(&mut value, &self.images, &tag);
            }
            let mut object = idp_core::Object::from_value(value)?;
            object.set_namespace(namespace.clone());
            for (key, v) in &preview_labels {
                object.set_label(key.clone(), v.clone());
            }
            if !sha.is_empty() {
                object.set_label(labels::HEAD_SHA, sha.clone());
            }
            out.push(object);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_names() {
        assert_eq!(image_name("nginx:1.27"), "nginx");
        assert_eq!(image_name("reg:5000/a/b:t"), "reg:5000/a/b");
        assert_eq!(image_name("reg:5000/a/b"), "reg:5000/a/b");
        assert_eq!(image_name("a/b@sha256:abc"), "a/b");
    }
}
