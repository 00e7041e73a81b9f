//! The image strings of `AssignImage`: `[domain/]path[:tag|@digest]`, split the way
//! Gatekeeper splits them, and the load-time checks that keep a mutator convergent.

use regex::Regex;

/// The parts an `AssignImage` sets; unset parts keep the image's own.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ImageParts {
    pub(crate) domain: Option<String>,
    pub(crate) path: Option<String>,
    /// With its leading `:` (tag) or `@` (digest).
    pub(crate) tag: Option<String>,
}

/// `(domain, rest)`: the domain is the first `/`-separated component when it contains
/// `.` or `:` or is `localhost`; otherwise there is none.
pub(crate) fn split_domain(image: &str) -> (&str, &str) {
    match image.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => ("", image),
    }
}

/// `(domain, path, tag)` of an image; the tag keeps its `:` or `@`. The tag or digest
/// starts in the last `/`-separated component, so that a malformed image (`/:/`) never
/// splits into a tag holding a `/`, which would read as a domain once a path is put
/// before it.
pub(crate) fn split(image: &str) -> (&str, &str, &str) {
    let (domain, rest) = split_domain(image);
    let last = rest.rfind('/').map_or(0, |i| i + 1);
    match rest[last..].find([':', '@']) {
        Some(i) => (domain, &rest[..last + i], &rest[last + i..]),
        None => (domain, rest, ""),
    }
}

impl ImageParts {
    /// `image` with this mutator's parts in place of its own.
    pub(crate) fn apply(&self, image: &str) -> String {
        let (domain, path, tag) = split(image);
        let domain = self.domain.as_deref().unwrap_or(domain);
        let path = self.path.as_deref().unwrap_or(path);
        let tag = self.tag.as_deref().unwrap_or(tag);
        if domain.is_empty() {
            format!("{path}{tag}")
        } else {
            format!("{domain}/{path}{tag}")
        }
    }

    /// Gatekeeper's checks: at least one part; each part well formed, so that it cannot
    /// leak into its neighbour the next time the image is split; a path that starts
    /// like a domain needs `assignDomain`. The error names the parameter.
    pub(crate) fn validate(&self) -> Result<(), String> {
        let compile = |pattern: &str| {
            Regex::new(pattern).map_err(|e| format!("internal pattern {pattern:?}: {e}"))
        };
        if self.domain.is_none() && self.path.is_none() && self.tag.is_none() {
            return Err(
                "one of assignDomain, assignPath and assignTag must be set (and not empty)"
                    .to_owned(),
            );
        }
        if let Some(domain) = &self.domain {
            let re = compile(
                r"^(?:[A-Za-z0-9_][A-Za-z0-9_\-]*\.[A-Za-z0-9_\-.]*[A-Za-z0-9_](?::[0-9]+)?|localhost(?::[0-9]+)?)$",
            )?;
            if !re.is_match(domain) {
                return Err(format!(
                    "assignDomain {domain:?} is not a registry domain (a host name with a '.', or localhost, and an optional :port)"
                ));
            }
        }
        if let Some(path) = &self.path {
            let re = compile(r"^[a-z0-9]+(?:(?:[._/]|__|-*)[a-z0-9]+)*$")?;
            if !re.is_match(path) {
                return Err(format!(
                    "assignPath {path:?} is not an image path (lowercase letters and digits, separated by '.', '_', '__', dashes or '/')"
                ));
            }
            if self.domain.is_none() && !split_domain(path).0.is_empty() {
                return Err(format!(
                    "assignPath {path:?} starts with what reads as a domain: set assignDomain too"
                ));
            }
        }
        if let Some(tag) = &self.tag {
            let re = compile(
                r"^(?::[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}|@[A-Za-z][A-Za-z0-9]*(?:[\-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,})$",
            )?;
            if !re.is_match(tag) {
                return Err(format!(
                    "assignTag {tag:?} is neither a tag (':' and up to 128 characters) nor a digest ('@sha256:' and hex digits)"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parts(domain: Option<&str>, path: Option<&str>, tag: Option<&str>) -> ImageParts {
        ImageParts {
            domain: domain.map(str::to_owned),
            path: path.map(str::to_owned),
            tag: tag.map(str::to_owned),
        }
    }

    #[test]
    fn splits_like_gatekeeper() {
        assert_eq!(
            split("my.registry.io:2000/repo/app:latest"),
            ("my.registry.io:2000", "repo/app", ":latest")
        );
        assert_eq!(split("nginx"), ("", "nginx", ""));
        assert_eq!(split("library/nginx:1.25"), ("", "library/nginx", ":1.25"));
        assert_eq!(split("localhost/app"), ("localhost", "app", ""));
        assert_eq!(split("localhost:5000/app"), ("localhost:5000", "app", ""));
        assert_eq!(split("app@sha256:abcd"), ("", "app", "@sha256:abcd"));
        assert_eq!(split(""), ("", "", ""));
        // Found by the idempotence property: the tag never holds a `/`.
        assert_eq!(split("/:/"), ("", "/:/", ""));
        assert_eq!(parts(None, Some("a"), None).apply("/:/"), "a");
    }

    #[test]
    fn replaces_the_parts_it_sets() {
        let mirror = parts(Some("mirror.acme.io"), None, None);
        assert_eq!(mirror.apply("nginx:1.25"), "mirror.acme.io/nginx:1.25");
        assert_eq!(
            mirror.apply("docker.io/library/nginx"),
            "mirror.acme.io/library/nginx"
        );
        let digest = "@sha256:abcde67890123456789abc345678901a";
        let all = parts(Some("my.registry.io"), Some("repo/app"), Some(digest));
        assert_eq!(
            all.apply("my.registry.io:2000/repo/app:latest"),
            format!("my.registry.io/repo/app{digest}")
        );
        assert_eq!(parts(None, None, Some(":v2")).apply(""), ":v2");
        assert_eq!(
            parts(None, Some("app"), None).apply("x.io/old:1"),
            "x.io/app:1"
        );
    }

    #[test]
    fn validation_refuses_what_gatekeeper_refuses() {
        let bad = [
            (parts(None, None, None), "must be set"),
            (parts(Some("registry"), None, None), "assignDomain"),
            (parts(Some("a.io/x"), None, None), "assignDomain"),
            (parts(None, Some("Repo/App"), None), "assignPath"),
            (parts(None, Some("repo/"), None), "assignPath"),
            (
                parts(None, Some("my.repo.lib/app"), None),
                "set assignDomain too",
            ),
            (parts(None, None, Some("latest")), "assignTag"),
            (parts(None, None, Some("@sha256:abc")), "assignTag"),
            (parts(None, None, Some(":a:b")), "assignTag"),
        ];
        for (p, want) in bad {
            let err = p.validate().unwrap_err();
            assert!(err.contains(want), "{p:?}: {err}");
        }
        for good in [
            parts(Some("localhost:5000"), None, None),
            parts(Some("my.registry.io:2000"), Some("repo/app"), Some(":v1.2")),
            parts(Some("a.io"), Some("my.repo.lib/app"), None),
            parts(
                None,
                Some("a__b-c/d.e"),
                Some("@sha256:abcde67890123456789abc345678901a"),
            ),
        ] {
            good.validate().unwrap();
        }
    }

    proptest! {
        /// A valid mutator reaches a fixed point in one application: applying it to its
        /// own output changes nothing.
        #[test]
        fn valid_parts_are_idempotent(
            domain in prop::option::of("[a-z]{1,5}\\.[a-z]{2,3}(:[0-9]{1,4})?"),
            path in prop::option::of("[a-z0-9]{1,4}(/[a-z0-9]{1,4}){0,2}"),
            tag in prop::option::of(":[a-z0-9][a-z0-9.-]{0,6}"),
            image in "[a-zA-Z0-9./:@_-]{0,30}",
        ) {
            let p = ImageParts { domain, path, tag };
            prop_assume!(p.validate().is_ok());
            let once = p.apply(&image);
            prop_assert_eq!(p.apply(&once), once);
        }
    }
}
