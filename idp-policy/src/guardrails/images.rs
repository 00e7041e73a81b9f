//! Image guardrails: a registry allowlist and pinned tags/digests.

use idp_core::{Object, Policy, PolicyContext, Severity, Violation};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::view::{NativePolicy, ObjectView, evaluate_native, text};

/// A container image reference split into registry, repository, tag and digest, with
/// Docker Hub defaults (`nginx` is `docker.io/library/nginx`).
///
/// ```
/// use idp_policy::guardrails::ImageRef;
/// let r = ImageRef::parse("ghcr.io/acme/cart:1.4@sha256:abcd");
/// assert_eq!(r.registry, "ghcr.io");
/// assert_eq!(r.repository, "acme/cart");
/// assert_eq!(r.tag.as_deref(), Some("1.4"));
/// assert_eq!(r.digest.as_deref(), Some("sha256:abcd"));
/// let hub = ImageRef::parse("nginx");
/// assert_eq!((hub.registry.as_str(), hub.repository.as_str(), hub.tag), ("docker.io", "library/nginx", None));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// The registry host (with port), `docker.io` when none is named.
    pub registry: String,
    /// The repository path.
    pub repository: String,
    /// The tag, when there is one.
    pub tag: Option<String>,
    /// The digest (`sha256:…`), when there is one.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Split an image reference. Never fails: odd input gives odd parts, which the
    /// guardrails then reject.
    ///
    /// ```
    /// let r = idp_policy::guardrails::ImageRef::parse("localhost:5000/app");
    /// assert_eq!(r.registry, "localhost:5000");
    /// assert_eq!(r.tag, None);
    /// ```
    pub fn parse(image: &str) -> Self {
        let parts = ImageParts::parse(image);
        Self {
            registry: parts.registry.to_owned(),
            repository: text!("{}{}", parts.repository_prefix, parts.repository),
            tag: parts.tag.map(str::to_owned),
            digest: parts.digest.map(str::to_owned),
        }
    }

    /// `registry/repository`, the part an allowlist entry is a prefix of.
    ///
    /// ```
    /// assert_eq!(idp_policy::guardrails::ImageRef::parse("redis:7").name(), "docker.io/library/redis");
    /// ```
    pub fn name(&self) -> String {
        text!("{}/{}", self.registry, self.repository)
    }
}

/// The parts of an image reference, borrowed from it: what the guardrails read on the
/// hot path, where [`ImageRef`] would allocate four strings per container.
#[derive(Debug, Clone, Copy)]
struct ImageParts<'a> {
    registry: &'a str,
    /// `library/` for an official Docker Hub image named without a path, else empty.
    repository_prefix: &'static str,
    repository: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

impl<'a> ImageParts<'a> {
    fn parse(image: &'a str) -> Self {
        let (rest, digest) = match image.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (image, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        let (registry, repository_prefix, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first, "", path)
            }
            Some(_) => ("docker.io", "", name),
            None => ("docker.io", "library/", name),
        };
        Self {
            registry,
            repository_prefix,
            repository,
            tag,
            digest,
        }
    }

    /// Whether `entry` equals `registry/repository` or is a path prefix of it (followed
    /// by `/`), compared without building the name.
    fn name_has_path_prefix(&self, entry: &str) -> bool {
        let mut name = [self.registry, "/", self.repository_prefix, self.repository]
            .into_iter()
            .flat_map(str::bytes);
        entry.bytes().all(|b| name.next() == Some(b)) && matches!(name.next(), None | Some(b'/'))
    }
}

/// Images must come from one of the allowed registries (or registry paths).
///
/// An entry allows an image when it equals the image's registry, or is a path prefix of
/// `registry/repository` (`ghcr.io/acme` allows `ghcr.io/acme/cart`, not
/// `ghcr.io/acme-evil/x`). Docker Hub images without a registry count as `docker.io`.
/// No entry: every registry is allowed.
///
/// ```
/// use idp_core::{Object, Policy, PolicyContext};
/// use idp_policy::guardrails::AllowedRegistries;
/// let p = AllowedRegistries::new(["ghcr.io/acme", "registry.internal:5000"]);
/// let pod = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
///     "spec": {"containers": [{"name": "a", "image": "docker.io/library/nginx:1.27"}]}})).unwrap();
/// assert_eq!(p.evaluate(&pod, &PolicyContext::new())[0].rule, "registry");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AllowedRegistries {
    /// Allowed registries or registry paths.
    #[serde(default)]
    pub registries: Vec<String>,
}

impl AllowedRegistries {
    /// The policy name.
    pub const NAME: &'static str = "allowed-registries";

    /// Allow these registries.
    ///
    /// ```
    /// assert_eq!(idp_policy::guardrails::AllowedRegistries::new(["ghcr.io"]).registries, ["ghcr.io"]);
    /// ```
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(registries: I) -> Self {
        Self {
            registries: registries.into_iter().map(Into::into).collect(),
        }
    }

    fn allows(&self, image: &ImageParts<'_>) -> bool {
        self.registries.iter().any(|entry| {
            let entry = entry.trim_end_matches('/');
            entry == image.registry || image.name_has_path_prefix(entry)
        })
    }
}

impl Policy for AllowedRegistries {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn evaluate(&self, object: &Object, ctx: &PolicyContext) -> Vec<Violation> {
        if self.registries.is_empty() {
            return Vec::new();
        }
        evaluate_native(self, object, ctx)
    }
}

impl NativePolicy for AllowedRegistries {
    fn check(&self, view: &ObjectView<'_>, _ctx: &PolicyContext, out: &mut Vec<Violation>) {
        let Some(pod) = &view.pod else {
            return;
        };
        if self.registries.is_empty() {
            return;
        }
        for c in pod.containers() {
            if self.allows(&ImageParts::parse(c.image)) {
                continue;
            }
            out.push(
                Violation::new(
                    Self::NAME,
                    "registry",
                    text!(
                        "container \"{}\" uses image \"{}\" from a registry that is not allowed; use one of: {}",
                        c.name,
                        c.image,
                        self.registries.join(", ")
                    ),
                )
                .with_path(c.field_path("image"))
                .with_severity(Severity::High),
            );
        }
    }
}

/// Images must be pinned: no `:latest`, no missing tag, and optionally a digest.
///
/// ```
/// use idp_core::{Object, Policy, PolicyContext};
/// use idp_policy::guardrails::DisallowLatestTag;
/// let pod = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod",
///     "spec": {"containers": [{"name": "a", "image": "nginx"}, {"name": "b", "image": "nginx:latest"}]}})).unwrap();
/// let v = DisallowLatestTag::default().evaluate(&pod, &PolicyContext::new());
/// assert_eq!(v.iter().map(|v| v.rule.as_str()).collect::<Vec<_>>(), ["untagged", "latest-tag"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DisallowLatestTag {
    /// Also require every image to name a digest (`@sha256:…`).
    #[serde(default)]
    pub require_digest: bool,
}

impl DisallowLatestTag {
    /// The policy name.
    pub const NAME: &'static str = "disallow-latest-tag";

    /// Require digests as well.
    ///
    /// ```
    /// assert!(idp_policy::guardrails::DisallowLatestTag::with_digests().require_digest);
    /// ```
    pub fn with_digests() -> Self {
        Self {
            require_digest: true,
        }
    }
}

impl Policy for DisallowLatestTag {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn evaluate(&self, object: &Object, ctx: &PolicyContext) -> Vec<Violation> {
        evaluate_native(self, object, ctx)
    }
}

impl NativePolicy for DisallowLatestTag {
    fn check(&self, view: &ObjectView<'_>, _ctx: &PolicyContext, out: &mut Vec<Violation>) {
        let Some(pod) = &view.pod else {
            return;
        };
        for c in pod.containers() {
            let image = ImageParts::parse(c.image);
            let (rule, why) = if self.require_digest && image.digest.is_none() {
                ("digest", "names no digest; pin it as image@sha256:…")
            } else if image.digest.is_some() {
                continue;
            } else if image.tag == Some("latest") {
                ("latest-tag", "uses the mutable tag :latest; pin a version")
            } else if image.tag.is_none() {
                ("untagged", "has no tag, which means :latest; pin a version")
            } else {
                continue;
            };
            out.push(
                Violation::new(
                    Self::NAME,
                    rule,
                    text!("container \"{}\" image \"{}\" {why}", c.name, c.image),
                )
                .with_path(c.field_path("image")),
            );
        }
    }
}
