//! Image guardrails: a registry allowlist and pinned tags/digests.

use idp_core::{Object, Policy, PolicyContext, Severity, Violation};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::view::{NativePolicy, ObjectView, concat, evaluate_native, text, violation};

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
/// hot path, where [`ImageRef`] would allocate four strings per container. Each
/// container's parts are split once, in its [`ContainerView`](crate::view), and
/// shared by every image guardrail.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ImageParts<'a> {
    registry: &'a str,
    /// `library/` for an official Docker Hub image named without a path, else empty.
    repository_prefix: &'static str,
    repository: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

impl<'a> ImageParts<'a> {
    /// Split `image` in one pass over its bytes: the digest after the first `@`; the
    /// tag after the last `:` that follows the last `/`; the registry is the first
    /// `/`-separated component when it looks like a host (has a `.` or `:`, or is
    /// `localhost`).
    pub(crate) fn parse(image: &'a str) -> Self {
        let bytes = image.as_bytes();
        let mut end = bytes.len();
        let mut first_slash = None;
        let mut last_slash = None;
        let mut tag_colon = None;
        let mut host_like = false;
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'@' => {
                    end = i;
                    break;
                }
                b'/' => {
                    first_slash.get_or_insert(i);
                    last_slash = Some(i);
                    tag_colon = None;
                }
                b':' => {
                    tag_colon = Some(i);
                    host_like |= first_slash.is_none();
                }
                b'.' => host_like |= first_slash.is_none(),
                _ => {}
            }
        }
        // Every index found is that of an ASCII byte, so slicing there stays on a
        // character boundary.
        let digest = image.get(end + 1..).filter(|_| end < bytes.len());
        let rest = &image[..end];
        let (name, tag) = match tag_colon {
            Some(i) if last_slash.is_none_or(|s| i > s) => (&rest[..i], Some(&rest[i + 1..])),
            _ => (rest, None),
        };
        let (registry, repository_prefix, repository) = match first_slash {
            // The first `/` lies inside `name`: it comes before any tag colon.
            Some(i) if i < name.len() => {
                let first = &name[..i];
                if host_like || first == "localhost" {
                    (first, "", &name[i + 1..])
                } else {
                    ("docker.io", "", name)
                }
            }
            _ => ("docker.io", "library/", name),
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
    /// by `/`), compared piece by piece without building the name.
    fn name_has_path_prefix(&self, entry: &str) -> bool {
        let mut rest = entry.as_bytes();
        let pieces = [self.registry, "/", self.repository_prefix, self.repository];
        for (i, piece) in pieces.iter().enumerate() {
            let piece = piece.as_bytes();
            if rest.len() <= piece.len() {
                if piece[..rest.len()] != *rest {
                    return false;
                }
                // The entry ends here: the name must end too, or go on with a `/`.
                let next = piece
                    .get(rest.len())
                    .or_else(|| pieces[i + 1..].iter().find_map(|p| p.as_bytes().first()));
                return matches!(next, None | Some(b'/'));
            }
            let (head, tail) = rest.split_at(piece.len());
            if head != piece {
                return false;
            }
            rest = tail;
        }
        // The entry is longer than the name.
        false
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
            if self.allows(&c.image_parts) {
                continue;
            }
            out.push(
                Violation::from_static(
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
/// assert_eq!(v.iter().map(|v| v.rule.as_ref()).collect::<Vec<_>>(), ["untagged", "latest-tag"]);
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
            let image = c.image_parts;
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
            out.push(violation(
                Self::NAME,
                rule,
                concat(&["container \"", c.name, "\" image \"", c.image, "\" ", why]),
                c.field_path("image"),
                Severity::default(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The split as written with `str` searches, to compare the one-pass scan with.
    fn reference(image: &str) -> (&str, &'static str, &str, Option<&str>, Option<&str>) {
        let (rest, digest) = match image.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (image, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
            None => (rest, None),
        };
        let (registry, prefix, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first, "", path)
            }
            Some(_) => ("docker.io", "", name),
            None => ("docker.io", "library/", name),
        };
        (registry, prefix, repository, tag, digest)
    }

    fn split(image: &str) -> (&str, &'static str, &str, Option<&str>, Option<&str>) {
        let p = ImageParts::parse(image);
        (
            p.registry,
            p.repository_prefix,
            p.repository,
            p.tag,
            p.digest,
        )
    }

    #[test]
    fn known_references() {
        for image in [
            "nginx",
            "nginx:1.27",
            "library/nginx:latest",
            "ghcr.io/acme/cart:1.4@sha256:abcd",
            "localhost:5000/app",
            "localhost/app:v1",
            "registry.internal:5000/team/app@sha256:ff",
            "a:b/c:d",
            "@",
            ":",
            "/",
            "",
            "x@y@z",
            "host.io:",
        ] {
            assert_eq!(split(image), reference(image), "{image}");
        }
    }

    /// The prefix test as a walk over the bytes of the whole name.
    fn reference_prefix(p: &ImageParts<'_>, entry: &str) -> bool {
        let mut name = [p.registry, "/", p.repository_prefix, p.repository]
            .into_iter()
            .flat_map(str::bytes);
        entry.bytes().all(|b| name.next() == Some(b)) && matches!(name.next(), None | Some(b'/'))
    }

    #[test]
    fn path_prefixes() {
        let cart = ImageParts::parse("ghcr.io/acme/cart:1");
        for (entry, want) in [
            ("ghcr.io", true),
            ("ghcr.io/acme", true),
            ("ghcr.io/acme/cart", true),
            ("ghcr.io/acme/car", false),
            ("ghcr.io/acme/cart/x", false),
            ("ghcr.io/ac", false),
            ("ghcr.i", false),
            ("", false),
        ] {
            assert_eq!(cart.name_has_path_prefix(entry), want, "{entry}");
            assert_eq!(reference_prefix(&cart, entry), want, "{entry}");
        }
        let hub = ImageParts::parse("nginx");
        assert!(hub.name_has_path_prefix("docker.io/library"));
        assert!(hub.name_has_path_prefix("docker.io/library/nginx"));
        assert!(!hub.name_has_path_prefix("docker.io/lib"));
    }

    proptest! {
        #[test]
        fn prefix_test_matches_the_reference(image in "[a-z./:]{0,16}", entry in "[a-z./:]{0,16}") {
            let p = ImageParts::parse(&image);
            prop_assert_eq!(p.name_has_path_prefix(&entry), reference_prefix(&p, &entry));
        }

        #[test]
        fn one_pass_split_matches_the_reference(image in "[a-z0-9./:@_-]{0,24}|\\PC{0,16}") {
            prop_assert_eq!(split(&image), reference(&image));
        }
    }
}
