//! Backstage's field-format rules, as plain predicates.
//!
//! These are the checks Backstage's catalog applies to names, namespaces, kinds,
//! `apiVersion`, label and annotation keys and values, and tags. Each function returns
//! `true` when Backstage would accept the value.
//!
//! ```
//! use idp_catalog::rules;
//! assert!(rules::is_valid_entity_name("my.service_v2"));
//! assert!(!rules::is_valid_entity_name("-leading-dash"));
//! assert!(rules::is_valid_namespace("team-a"));
//! assert!(!rules::is_valid_namespace("Team_A"));
//! ```

/// Maximum length of a name, namespace, kind, label value and tag.
pub const MAX_NAME_LEN: usize = 63;
/// Maximum length of a DNS subdomain (label and annotation key prefixes).
pub const MAX_SUBDOMAIN_LEN: usize = 253;

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// An entity name (`metadata.name`), also used for label values and key names:
/// 1–63 characters, `[A-Za-z0-9]` at both ends and `[-_.A-Za-z0-9]` in between.
///
/// ```
/// use idp_catalog::rules::is_valid_entity_name;
/// assert!(is_valid_entity_name("a"));
/// assert!(is_valid_entity_name("cart.v2_beta-1"));
/// assert!(!is_valid_entity_name("trailing."));
/// assert!(!is_valid_entity_name(&"a".repeat(64)));
/// ```
pub fn is_valid_entity_name(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > MAX_NAME_LEN {
        return false;
    }
    if !is_alnum(b[0]) || !is_alnum(b[b.len() - 1]) {
        return false;
    }
    b.iter()
        .all(|&c| is_alnum(c) || c == b'-' || c == b'_' || c == b'.')
}

/// A DNS label as Backstage checks it: 1–63 characters of `[a-z0-9]` groups joined by
/// dashes (`^[a-z0-9]+(-+[a-z0-9]+)*$`). Namespaces must be DNS labels.
///
/// ```
/// use idp_catalog::rules::is_valid_dns_label;
/// assert!(is_valid_dns_label("team-a"));
/// assert!(!is_valid_dns_label("team.a"));
/// assert!(!is_valid_dns_label("-a"));
/// ```
pub fn is_valid_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > MAX_NAME_LEN {
        return false;
    }
    let ok_char = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    ok_char(b[0]) && ok_char(b[b.len() - 1]) && b.iter().all(|&c| ok_char(c) || c == b'-')
}

/// A DNS subdomain: at most 253 characters of DNS labels separated by dots.
///
/// ```
/// use idp_catalog::rules::is_valid_dns_subdomain;
/// assert!(is_valid_dns_subdomain("backstage.io"));
/// assert!(!is_valid_dns_subdomain("backstage..io"));
/// ```
pub fn is_valid_dns_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_SUBDOMAIN_LEN && s.split('.').all(is_valid_dns_label)
}

/// A namespace (`metadata.namespace`): a DNS label.
///
/// ```
/// assert!(idp_catalog::rules::is_valid_namespace("default"));
/// assert!(!idp_catalog::rules::is_valid_namespace("Default"));
/// ```
pub fn is_valid_namespace(s: &str) -> bool {
    is_valid_dns_label(s)
}

/// A kind: 1–63 characters, a letter followed by letters and digits.
///
/// ```
/// assert!(idp_catalog::rules::is_valid_kind("Component"));
/// assert!(!idp_catalog::rules::is_valid_kind("My-Kind"));
/// ```
pub fn is_valid_kind(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_NAME_LEN
        && b[0].is_ascii_alphabetic()
        && b.iter().all(u8::is_ascii_alphanumeric)
}

/// Split `value` at `/` into an optional DNS-subdomain prefix and a suffix checked by
/// `suffix_ok`; more than one `/` is invalid.
fn prefix_and_suffix(value: &str, suffix_ok: impl Fn(&str) -> bool) -> bool {
    let mut parts = value.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(suffix), None, None) => suffix_ok(suffix),
        (Some(prefix), Some(suffix), None) => is_valid_dns_subdomain(prefix) && suffix_ok(suffix),
        _ => false,
    }
}

/// An `apiVersion`: an optional DNS-subdomain group, `/`, and a version of 1–63
/// letters and digits.
///
/// ```
/// assert!(idp_catalog::rules::is_valid_api_version("backstage.io/v1alpha1"));
/// assert!(!idp_catalog::rules::is_valid_api_version("backstage.io/v1/x"));
/// ```
pub fn is_valid_api_version(s: &str) -> bool {
    prefix_and_suffix(s, |v| {
        !v.is_empty() && v.len() <= MAX_NAME_LEN && v.bytes().all(|c| c.is_ascii_alphanumeric())
    })
}

/// A label or annotation key: an optional DNS-subdomain prefix and `/`, then a name
/// following [`is_valid_entity_name`].
///
/// ```
/// use idp_catalog::rules::is_valid_label_key;
/// assert!(is_valid_label_key("backstage.io/techdocs-ref"));
/// assert!(is_valid_label_key("tier"));
/// assert!(!is_valid_label_key("a/b/c"));
/// ```
pub fn is_valid_label_key(s: &str) -> bool {
    prefix_and_suffix(s, is_valid_entity_name)
}

/// A label value: empty, or a name following [`is_valid_entity_name`].
///
/// ```
/// use idp_catalog::rules::is_valid_label_value;
/// assert!(is_valid_label_value(""));
/// assert!(is_valid_label_value("gold"));
/// assert!(!is_valid_label_value("gold plated"));
/// ```
pub fn is_valid_label_value(s: &str) -> bool {
    s.is_empty() || is_valid_entity_name(s)
}

/// An annotation key (same rule as a label key).
///
/// ```
/// assert!(idp_catalog::rules::is_valid_annotation_key("github.com/project-slug"));
/// ```
pub fn is_valid_annotation_key(s: &str) -> bool {
    is_valid_label_key(s)
}

/// A tag: 1–63 characters, groups of `[a-z0-9:+#]` joined by single dashes.
///
/// ```
/// use idp_catalog::rules::is_valid_tag;
/// assert!(is_valid_tag("java"));
/// assert!(is_valid_tag("c++"));
/// assert!(is_valid_tag("c#"));
/// assert!(!is_valid_tag("Java"));
/// assert!(!is_valid_tag("a--b"));
/// ```
pub fn is_valid_tag(s: &str) -> bool {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > MAX_NAME_LEN {
        return false;
    }
    let ok_char =
        |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b':' || c == b'+' || c == b'#';
    s.split('-')
        .all(|part| !part.is_empty() && part.bytes().all(ok_char))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_backstage() {
        for ok in [
            "a",
            "A",
            "a-b",
            "a_b",
            "a.b",
            "a--b",
            "a..b",
            "0",
            "my-service.v2_x",
            &"x".repeat(63),
        ] {
            assert!(is_valid_entity_name(ok), "{ok}");
        }
        for bad in [
            "",
            "-a",
            "a-",
            "_a",
            ".a",
            "a.",
            "a b",
            "a/b",
            "a:b",
            "ä",
            &"x".repeat(64),
        ] {
            assert!(!is_valid_entity_name(bad), "{bad}");
        }
    }

    #[test]
    fn namespaces_are_dns_labels() {
        assert!(is_valid_namespace("a"));
        assert!(is_valid_namespace("a-b-c"));
        assert!(is_valid_namespace(&"a".repeat(63)));
        assert!(!is_valid_namespace(&"a".repeat(64)));
        assert!(!is_valid_namespace("A"));
        assert!(!is_valid_namespace("a_b"));
        assert!(!is_valid_namespace("a.b"));
        assert!(!is_valid_namespace(""));
    }

    #[test]
    fn label_keys_and_values() {
        assert!(is_valid_label_key("a.b/c-d"));
        assert!(!is_valid_label_key("A.b/c"));
        assert!(!is_valid_label_key("/c"));
        assert!(!is_valid_label_key("a/"));
        assert!(is_valid_label_key(&format!(
            "{}/{}",
            "a".repeat(63),
            "b".repeat(63)
        )));
        assert!(!is_valid_label_key(&format!("a/{}", "b".repeat(64))));
        assert!(is_valid_label_value(""));
        assert!(!is_valid_label_value("-"));
        assert!(is_valid_label_value(&"v".repeat(63)));
        assert!(!is_valid_label_value(&"v".repeat(64)));
    }

    #[test]
    fn kinds_and_api_versions() {
        assert!(is_valid_kind("API"));
        assert!(!is_valid_kind("1Api"));
        assert!(!is_valid_kind(""));
        assert!(is_valid_api_version("v1"));
        assert!(is_valid_api_version("scaffolder.backstage.io/v1beta3"));
        assert!(!is_valid_api_version("backstage.io/"));
        assert!(!is_valid_api_version("Backstage.io/v1"));
    }

    #[test]
    fn tags() {
        assert!(is_valid_tag("a:b+c#d-e"));
        assert!(!is_valid_tag("-a"));
        assert!(!is_valid_tag("a-"));
        assert!(!is_valid_tag("a_b"));
        assert!(!is_valid_tag(&"t".repeat(64)));
    }
}
