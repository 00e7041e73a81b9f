//! Validated names and references: [`EntityRef`], [`ObjectRef`], [`EnvironmentName`],
//! [`DnsLabel`], [`DnsSubdomain`], and [`slugify`].
//!
//! Every type here is checked when it is built ([`FromStr`], `new`, [`TryFrom`]) and
//! (de)serialises as a plain string, so a value you hold is always valid.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// Maximum length of a DNS-1123 label (RFC 1123, as Kubernetes applies it).
pub const DNS_LABEL_MAX_LEN: usize = 63;
/// Maximum length of a DNS-1123 subdomain.
pub const DNS_SUBDOMAIN_MAX_LEN: usize = 253;

fn label_problem(s: &str) -> Option<String> {
    if s.is_empty() {
        return Some("must not be empty".into());
    }
    if s.len() > DNS_LABEL_MAX_LEN {
        return Some(format!(
            "must be at most {DNS_LABEL_MAX_LEN} characters (is {})",
            s.len()
        ));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Some(format!(
            "must consist of lower-case letters, digits and '-' (found {c:?})"
        ));
    }
    if s.starts_with('-') || s.ends_with('-') {
        return Some("must start and end with a letter or digit".into());
    }
    None
}

macro_rules! string_newtype_impls {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl std::ops::Deref for $ty {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<&str> for $ty {
            type Error = Error;
            fn try_from(s: &str) -> Result<Self> {
                s.parse()
            }
        }
        impl TryFrom<String> for $ty {
            type Error = Error;
            fn try_from(s: String) -> Result<Self> {
                s.parse()
            }
        }
        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.0
            }
        }
        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
        impl schemars::JsonSchema for $ty {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($ty).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string" })
            }
        }
    };
}

/// A DNS-1123 label: 1–63 characters of `[a-z0-9-]`, starting and ending with an
/// alphanumeric. Kubernetes uses it for namespace names and most label-like names.
///
/// ```
/// use idp_core::DnsLabel;
/// assert!("cart-pr-42".parse::<DnsLabel>().is_ok());
/// let err = "Cart_PR".parse::<DnsLabel>().unwrap_err();
/// assert!(err.to_string().contains("lower-case"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsLabel(String);

impl DnsLabel {
    /// Check `s` and wrap it.
    ///
    /// ```
    /// assert_eq!(idp_core::DnsLabel::new("web").unwrap().as_str(), "web");
    /// ```
    pub fn new(s: impl Into<String>) -> Result<Self> {
        let s = s.into();
        match label_problem(&s) {
            None => Ok(Self(s)),
            Some(p) => Err(Error::invalid_input(format!(
                "invalid DNS-1123 label {s:?}: {p}"
            ))),
        }
    }

    /// Turn arbitrary text into a label with [`slugify`], or fail when nothing usable is left.
    ///
    /// ```
    /// let l = idp_core::DnsLabel::slugify("Feature/JIRA-123_Add Login").unwrap();
    /// assert_eq!(l.as_str(), "feature-jira-123-add-login");
    /// ```
    pub fn slugify(text: &str) -> Result<Self> {
        let slug = slugify(text, DNS_LABEL_MAX_LEN);
        if slug.is_empty() {
            return Err(Error::invalid_input(format!(
                "{text:?} has no letters or digits to build a DNS-1123 label from"
            )));
        }
        Self::new(slug)
    }

    /// The label as a string slice.
    ///
    /// ```
    /// assert_eq!(idp_core::DnsLabel::new("a1").unwrap().as_str(), "a1");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DnsLabel {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}
string_newtype_impls!(DnsLabel);

/// A DNS-1123 subdomain: dot-separated DNS-1123 labels, at most 253 characters.
/// Kubernetes uses it for most object names.
///
/// ```
/// use idp_core::DnsSubdomain;
/// assert!("cart.payments.example".parse::<DnsSubdomain>().is_ok());
/// assert!("cart..payments".parse::<DnsSubdomain>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DnsSubdomain(String);

impl DnsSubdomain {
    /// Check `s` and wrap it.
    ///
    /// ```
    /// assert!(idp_core::DnsSubdomain::new("a.b").is_ok());
    /// ```
    pub fn new(s: impl Into<String>) -> Result<Self> {
        let s = s.into();
        let problem = if s.is_empty() {
            Some("must not be empty".to_owned())
        } else if s.len() > DNS_SUBDOMAIN_MAX_LEN {
            Some(format!(
                "must be at most {DNS_SUBDOMAIN_MAX_LEN} characters (is {})",
                s.len()
            ))
        } else {
            s.split('.').enumerate().find_map(|(i, part)| {
                label_problem(part).map(|p| format!("part {} ({part:?}) {p}", i + 1))
            })
        };
        match problem {
            None => Ok(Self(s)),
            Some(p) => Err(Error::invalid_input(format!(
                "invalid DNS-1123 subdomain {s:?}: {p}"
            ))),
        }
    }

    /// The subdomain as a string slice.
    ///
    /// ```
    /// assert_eq!(idp_core::DnsSubdomain::new("a.b").unwrap().as_str(), "a.b");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for DnsSubdomain {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}
string_newtype_impls!(DnsSubdomain);

/// Turn arbitrary text (a branch name, a title) into a DNS-1123 label candidate of at
/// most `max_len` characters (capped at 63), keeping as much of the text as possible.
///
/// The rules follow Argo CD's `branch_slug`: lower-case; every character that is not an
/// ASCII letter or digit becomes `-`; leading and trailing `-` are trimmed; the result is
/// cut to the length limit and never ends in `-`. Runs of `-` are kept, so distinct
/// inputs stay distinct where they can. The result is empty when the text has no ASCII
/// letter or digit.
///
/// ```
/// use idp_core::slugify;
/// assert_eq!(slugify("Feature/Add_Login", 63), "feature-add-login");
/// assert_eq!(slugify("--x--", 63), "x");
/// assert_eq!(slugify("abc-def", 4), "abc");
/// assert_eq!(slugify("äöü", 63), "");
/// ```
pub fn slugify(text: &str, max_len: usize) -> String {
    let max_len = max_len.min(DNS_LABEL_MAX_LEN);
    let mapped: String = text
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = mapped.trim_matches('-');
    // Every character is ASCII now, so byte slicing is on char boundaries.
    let cut = &trimmed[..trimmed.len().min(max_len)];
    cut.trim_end_matches('-').to_owned()
}

/// The name of a deployment environment (`dev`, `staging`, `prod`, `pr-cart-42`): a
/// DNS-1123 label, so it can name a namespace or a folder.
///
/// ```
/// use idp_core::EnvironmentName;
/// let env: EnvironmentName = "staging".parse().unwrap();
/// assert_eq!(env.as_str(), "staging");
/// assert!("Prod!".parse::<EnvironmentName>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EnvironmentName(String);

impl EnvironmentName {
    /// Check `s` and wrap it.
    ///
    /// ```
    /// assert!(idp_core::EnvironmentName::new("prod").is_ok());
    /// ```
    pub fn new(s: impl Into<String>) -> Result<Self> {
        let s = s.into();
        match label_problem(&s) {
            None => Ok(Self(s)),
            Some(p) => Err(Error::invalid_input(format!(
                "invalid environment name {s:?}: {p} (environment names are DNS-1123 labels, like \"staging\" or \"pr-42\")"
            ))),
        }
    }

    /// The name as a string slice.
    ///
    /// ```
    /// assert_eq!(idp_core::EnvironmentName::new("dev").unwrap().as_str(), "dev");
    /// ```
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for EnvironmentName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Self::new(s)
    }
}
impl From<DnsLabel> for EnvironmentName {
    fn from(l: DnsLabel) -> Self {
        Self(l.0)
    }
}
string_newtype_impls!(EnvironmentName);

/// The namespace Backstage gives entities that name none.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A reference to a catalog entity in Backstage's form `[kind:][namespace/]name`.
///
/// Parsing follows Backstage's `parseEntityRef`: the kind is what comes before the first
/// `:` (when that `:` comes before any `/`), the namespace what comes before the first `/`
/// after it, and the rest is the name (which may itself contain `:` or `/`). A missing
/// namespace becomes the context's default (`default` unless told otherwise); a missing
/// kind takes the context's default kind, and is an error when there is none.
/// Comparison is case-insensitive, as in Backstage; [`Display`](fmt::Display) prints the
/// canonical form `kind:namespace/name` with kind and namespace lower-cased.
///
/// ```
/// use idp_core::EntityRef;
/// let r = EntityRef::parse_with_defaults("payments/cart", Some("Component"), "default").unwrap();
/// assert_eq!(r.kind(), "Component");
/// assert_eq!(r.namespace(), "payments");
/// assert_eq!(r.to_string(), "component:payments/cart");
///
/// let full: EntityRef = "group:default/team-a".parse().unwrap();
/// assert_eq!(full, EntityRef::new("Group", "default", "team-a").unwrap());
/// assert!("cart".parse::<EntityRef>().is_err()); // no kind and no default kind
/// ```
#[derive(Debug, Clone, Eq)]
pub struct EntityRef {
    kind: String,
    namespace: String,
    name: String,
}

impl EntityRef {
    /// Build a reference from its three parts; none may be empty.
    ///
    /// ```
    /// let r = idp_core::EntityRef::new("User", "default", "jane").unwrap();
    /// assert_eq!(r.name(), "jane");
    /// ```
    pub fn new(
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Result<Self> {
        let (kind, namespace, name) = (kind.into(), namespace.into(), name.into());
        for (what, value) in [("kind", &kind), ("namespace", &namespace), ("name", &name)] {
            if value.is_empty() {
                return Err(Error::invalid_input(format!(
                    "entity reference has an empty {what}"
                )));
            }
        }
        Ok(Self {
            kind,
            namespace,
            name,
        })
    }

    /// Parse `[kind:][namespace/]name`, filling a missing kind with `default_kind` and a
    /// missing namespace with `default_namespace`, as Backstage does for relation fields
    /// (for example `spec.owner` defaults to kind `Group` and the entity's own namespace).
    ///
    /// ```
    /// use idp_core::EntityRef;
    /// let owner = EntityRef::parse_with_defaults("team-a", Some("Group"), "payments").unwrap();
    /// assert_eq!(owner.to_string(), "group:payments/team-a");
    /// let err = EntityRef::parse_with_defaults("team-a", None, "default").unwrap_err();
    /// assert!(err.to_string().contains("kind"));
    /// ```
    pub fn parse_with_defaults(
        text: &str,
        default_kind: Option<&str>,
        default_namespace: &str,
    ) -> Result<Self> {
        let text_trimmed = text.trim();
        if text_trimmed.is_empty() {
            return Err(Error::invalid_input("entity reference must not be empty"));
        }
        let colon = text_trimmed.find(':');
        let slash = text_trimmed.find('/');
        let (kind, rest) = match colon {
            Some(c) if slash.is_none_or(|s| c < s) => {
                (Some(&text_trimmed[..c]), &text_trimmed[c + 1..])
            }
            _ => (None, text_trimmed),
        };
        let (namespace, name) = match rest.find('/') {
            Some(s) => (Some(&rest[..s]), &rest[s + 1..]),
            None => (None, rest),
        };
        let kind = match kind {
            Some("") => {
                return Err(Error::invalid_input(format!(
                    "entity reference {text:?} has an empty kind before ':'"
                )));
            }
            Some(k) => k,
            None => default_kind.ok_or_else(|| {
                Error::invalid_input(format!(
                    "entity reference {text:?} has no kind and none can be inferred here; write it as kind:namespace/name, e.g. \"component:default/{name}\""
                ))
            })?,
        };
        let namespace = match namespace {
            Some("") => {
                return Err(Error::invalid_input(format!(
                    "entity reference {text:?} has an empty namespace before '/'"
                )));
            }
            Some(n) => n,
            None => default_namespace,
        };
        if name.is_empty() {
            return Err(Error::invalid_input(format!(
                "entity reference {text:?} has an empty name"
            )));
        }
        Self::new(kind, namespace, name)
    }

    /// The kind as written (compare case-insensitively).
    ///
    /// ```
    /// assert_eq!(idp_core::EntityRef::new("API", "default", "x").unwrap().kind(), "API");
    /// ```
    pub fn kind(&self) -> &str {
        &self.kind
    }

    /// The namespace.
    ///
    /// ```
    /// assert_eq!(idp_core::EntityRef::new("API", "ns", "x").unwrap().namespace(), "ns");
    /// ```
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// The name.
    ///
    /// ```
    /// assert_eq!(idp_core::EntityRef::new("API", "ns", "x").unwrap().name(), "x");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The canonical lower-case key used for indexing and equality
    /// (`kind:namespace/name`, all lower-case).
    ///
    /// ```
    /// let r = idp_core::EntityRef::new("Component", "Default", "Cart").unwrap();
    /// assert_eq!(r.key(), "component:default/cart");
    /// ```
    pub fn key(&self) -> String {
        format!(
            "{}:{}/{}",
            self.kind.to_lowercase(),
            self.namespace.to_lowercase(),
            self.name.to_lowercase()
        )
    }
}

impl PartialEq for EntityRef {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl PartialOrd for EntityRef {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for EntityRef {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl std::hash::Hash for EntityRef {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.key().hash(state);
    }
}

impl fmt::Display for EntityRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}/{}",
            self.kind.to_lowercase(),
            self.namespace.to_lowercase(),
            self.name
        )
    }
}

impl FromStr for EntityRef {
    type Err = Error;
    /// Parse a reference; the kind is required, the namespace defaults to `default`.
    fn from_str(s: &str) -> Result<Self> {
        Self::parse_with_defaults(s, None, DEFAULT_NAMESPACE)
    }
}

impl Serialize for EntityRef {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EntityRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for EntityRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "EntityRef".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "A Backstage entity reference, kind:namespace/name",
        })
    }
}

/// The identity of a Kubernetes object: apiVersion, kind, optional namespace and name.
///
/// ```
/// use idp_core::ObjectRef;
/// let r = ObjectRef::new("apps/v1", "Deployment", Some("shop"), "cart");
/// assert_eq!(r.group(), "apps");
/// assert_eq!(r.version(), "v1");
/// assert_eq!(r.to_string(), "apps/v1 Deployment shop/cart");
/// ```
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "camelCase")]
pub struct ObjectRef {
    /// `apiVersion`, e.g. `apps/v1` or `v1`.
    pub api_version: String,
    /// `kind`, e.g. `Deployment`.
    pub kind: String,
    /// `metadata.namespace`; `None` for cluster-scoped objects (or not yet defaulted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: String,
}

impl ObjectRef {
    /// Build a reference.
    ///
    /// ```
    /// let r = idp_core::ObjectRef::new("v1", "Namespace", None, "shop");
    /// assert_eq!(r.namespace, None);
    /// ```
    pub fn new(
        api_version: impl Into<String>,
        kind: impl Into<String>,
        namespace: Option<&str>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            api_version: api_version.into(),
            kind: kind.into(),
            namespace: namespace.map(str::to_owned),
            name: name.into(),
        }
    }

    /// The API group (`""` for the core group).
    ///
    /// ```
    /// assert_eq!(idp_core::ObjectRef::new("v1", "Pod", Some("a"), "b").group(), "");
    /// ```
    pub fn group(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map_or("", |(group, _)| group)
    }

    /// The API version without the group.
    ///
    /// ```
    /// assert_eq!(idp_core::ObjectRef::new("batch/v1", "Job", Some("a"), "b").version(), "v1");
    /// ```
    pub fn version(&self) -> &str {
        self.api_version
            .rsplit_once('/')
            .map_or(self.api_version.as_str(), |(_, v)| v)
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {} {ns}/{}", self.api_version, self.kind, self.name),
            None => write!(f, "{} {} {}", self.api_version, self.kind, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn entity_ref_parsing_matches_backstage() {
        let r: EntityRef = "component:default/foo:bar".parse().unwrap();
        assert_eq!(
            (r.kind(), r.namespace(), r.name()),
            ("component", "default", "foo:bar")
        );
        let r = EntityRef::parse_with_defaults("foo:bar", None, "default").unwrap();
        assert_eq!((r.kind(), r.name()), ("foo", "bar"));
        let r = EntityRef::parse_with_defaults("ns/a/b", Some("Component"), "default").unwrap();
        assert_eq!((r.namespace(), r.name()), ("ns", "a/b"));
        assert!(":x".parse::<EntityRef>().is_err());
        assert!("k:/x".parse::<EntityRef>().is_err());
        assert!("k:ns/".parse::<EntityRef>().is_err());
        assert!("".parse::<EntityRef>().is_err());
        let a: EntityRef = "Component:Default/Cart".parse().unwrap();
        let b: EntityRef = "component:default/cart".parse().unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn entity_ref_serde_round_trip() {
        let r: EntityRef = "group:org/team".parse().unwrap();
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(json, "\"group:org/team\"");
        let back: EntityRef = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
        assert!(serde_json::from_str::<EntityRef>("\"nokind\"").is_err());
    }

    #[test]
    fn dns_label_rules() {
        assert!(DnsLabel::new("a").is_ok());
        assert!(DnsLabel::new("a".repeat(63)).is_ok());
        assert!(DnsLabel::new("a".repeat(64)).is_err());
        assert!(DnsLabel::new("-a").is_err());
        assert!(DnsLabel::new("a-").is_err());
        assert!(DnsLabel::new("a.b").is_err());
        assert!(DnsSubdomain::new("a.b-c.d").is_ok());
        assert!(DnsSubdomain::new(".a").is_err());
    }

    #[test]
    fn slugify_examples() {
        assert_eq!(slugify("feat/ABC__def", 63), "feat-abc--def");
        assert_eq!(slugify(&"x".repeat(100), 63).len(), 63);
        assert_eq!(
            slugify(&format!("{}-{}", "a".repeat(62), "b"), 63),
            "a".repeat(62)
        );
        assert_eq!(slugify("", 63), "");
    }

    proptest! {
        #[test]
        fn slugify_is_always_a_label_or_empty(text in ".{0,200}", max in 1usize..80) {
            let slug = slugify(&text, max);
            prop_assert!(slug.len() <= max.min(63));
            if !slug.is_empty() {
                prop_assert!(DnsLabel::new(slug.clone()).is_ok(), "{slug:?}");
            }
            // idempotent
            prop_assert_eq!(slugify(&slug, max), slug);
        }

        #[test]
        fn entity_ref_parse_never_panics_and_round_trips(text in ".{0,80}") {
            if let Ok(r) = EntityRef::parse_with_defaults(&text, Some("Component"), "default") {
                let again: EntityRef = r.to_string().parse().unwrap();
                prop_assert_eq!(again, r);
            }
        }
    }
}
