//! Relations derived from spec fields, as Backstage's built-in processor derives them.
//!
//! Each field that names another entity yields a relation from the entity to the target
//! ([`derive()`]); the catalog adds the inverse on the target ([`RelationType::inverse`]),
//! so both directions are always present. References resolve relative to the entity's
//! namespace and the field's default kind (`spec.owner` → `Group`, `spec.system` →
//! `System`, `spec.providesApis` → `API`...); `dependsOn`/`dependencyOf` have no default
//! kind and must name one.
//!
//! ```
//! use idp_catalog::relations::{derive, RelationType};
//! use idp_catalog::kinds::BuiltinKind;
//! let spec = serde_json::json!({"type": "service", "lifecycle": "production", "owner": "team-a", "system": "shop"});
//! let (rels, problems) = derive(BuiltinKind::Component, spec.as_object().unwrap(), "payments");
//! assert!(problems.is_empty());
//! assert_eq!(rels[0].0, RelationType::OwnedBy);
//! assert_eq!(rels[0].1.to_string(), "group:payments/team-a");
//! assert_eq!(rels[1].1.to_string(), "system:payments/shop");
//! ```

use idp_core::EntityRef;
use serde_json::{Map, Value};

use crate::kinds::BuiltinKind;
use crate::validate::Problem;

/// The well-known relation types, in pairs.
///
/// ```
/// use idp_catalog::relations::RelationType;
/// assert_eq!(RelationType::OwnedBy.inverse(), RelationType::OwnerOf);
/// assert_eq!(RelationType::from_name("apiProvidedBy"), Some(RelationType::ApiProvidedBy));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum RelationType {
    /// The entity is owned by the target.
    OwnedBy,
    /// The entity owns the target.
    OwnerOf,
    /// The entity is part of the target (component → system, system → domain...).
    PartOf,
    /// The target is part of the entity.
    HasPart,
    /// The entity provides the target API.
    ProvidesApi,
    /// The target provides the entity (an API).
    ApiProvidedBy,
    /// The entity consumes the target API.
    ConsumesApi,
    /// The target consumes the entity (an API).
    ApiConsumedBy,
    /// The entity depends on the target.
    DependsOn,
    /// The target depends on the entity.
    DependencyOf,
    /// The entity is the parent group of the target.
    ParentOf,
    /// The entity is a child group of the target.
    ChildOf,
    /// The entity (a user) is a member of the target group.
    MemberOf,
    /// The target (a user) is a member of the entity (a group).
    HasMember,
}

impl RelationType {
    /// Every relation type.
    ///
    /// ```
    /// assert_eq!(idp_catalog::relations::RelationType::ALL.len(), 14);
    /// ```
    pub const ALL: [RelationType; 14] = [
        RelationType::OwnedBy,
        RelationType::OwnerOf,
        RelationType::PartOf,
        RelationType::HasPart,
        RelationType::ProvidesApi,
        RelationType::ApiProvidedBy,
        RelationType::ConsumesApi,
        RelationType::ApiConsumedBy,
        RelationType::DependsOn,
        RelationType::DependencyOf,
        RelationType::ParentOf,
        RelationType::ChildOf,
        RelationType::MemberOf,
        RelationType::HasMember,
    ];

    /// The name Backstage uses (`ownedBy`, `apiProvidedBy`...).
    ///
    /// ```
    /// assert_eq!(idp_catalog::relations::RelationType::HasPart.as_str(), "hasPart");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            RelationType::OwnedBy => "ownedBy",
            RelationType::OwnerOf => "ownerOf",
            RelationType::PartOf => "partOf",
            RelationType::HasPart => "hasPart",
            RelationType::ProvidesApi => "providesApi",
            RelationType::ApiProvidedBy => "apiProvidedBy",
            RelationType::ConsumesApi => "consumesApi",
            RelationType::ApiConsumedBy => "apiConsumedBy",
            RelationType::DependsOn => "dependsOn",
            RelationType::DependencyOf => "dependencyOf",
            RelationType::ParentOf => "parentOf",
            RelationType::ChildOf => "childOf",
            RelationType::MemberOf => "memberOf",
            RelationType::HasMember => "hasMember",
        }
    }

    /// The type for a Backstage name, compared case-insensitively.
    ///
    /// ```
    /// assert!(idp_catalog::relations::RelationType::from_name("OWNEDBY").is_some());
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(name))
    }

    /// The same relation seen from the target.
    ///
    /// ```
    /// use idp_catalog::relations::RelationType;
    /// for t in RelationType::ALL { assert_eq!(t.inverse().inverse(), t); }
    /// ```
    pub fn inverse(self) -> Self {
        match self {
            RelationType::OwnedBy => RelationType::OwnerOf,
            RelationType::OwnerOf => RelationType::OwnedBy,
            RelationType::PartOf => RelationType::HasPart,
            RelationType::HasPart => RelationType::PartOf,
            RelationType::ProvidesApi => RelationType::ApiProvidedBy,
            RelationType::ApiProvidedBy => RelationType::ProvidesApi,
            RelationType::ConsumesApi => RelationType::ApiConsumedBy,
            RelationType::ApiConsumedBy => RelationType::ConsumesApi,
            RelationType::DependsOn => RelationType::DependencyOf,
            RelationType::DependencyOf => RelationType::DependsOn,
            RelationType::ParentOf => RelationType::ChildOf,
            RelationType::ChildOf => RelationType::ParentOf,
            RelationType::MemberOf => RelationType::HasMember,
            RelationType::HasMember => RelationType::MemberOf,
        }
    }
}

impl std::fmt::Display for RelationType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `(spec field, relation type, default kind)` for each kind.
fn fields(kind: BuiltinKind) -> &'static [(&'static str, RelationType, Option<&'static str>)] {
    use RelationType::{
        ChildOf, ConsumesApi, DependencyOf, DependsOn, HasMember, MemberOf, OwnedBy, ParentOf,
        PartOf, ProvidesApi,
    };
    match kind {
        BuiltinKind::Component => &[
            ("owner", OwnedBy, Some("Group")),
            ("system", PartOf, Some("System")),
            ("subcomponentOf", PartOf, Some("Component")),
            ("providesApis", ProvidesApi, Some("API")),
            ("consumesApis", ConsumesApi, Some("API")),
            ("dependsOn", DependsOn, None),
            ("dependencyOf", DependencyOf, None),
        ],
        BuiltinKind::Resource => &[
            ("owner", OwnedBy, Some("Group")),
            ("system", PartOf, Some("System")),
            ("dependsOn", DependsOn, None),
            ("dependencyOf", DependencyOf, None),
        ],
        BuiltinKind::System => &[
            ("owner", OwnedBy, Some("Group")),
            ("domain", PartOf, Some("Domain")),
        ],
        BuiltinKind::Domain => &[
            ("owner", OwnedBy, Some("Group")),
            ("subdomainOf", PartOf, Some("Domain")),
        ],
        BuiltinKind::Group => &[
            ("parent", ChildOf, Some("Group")),
            ("children", ParentOf, Some("Group")),
            ("members", HasMember, Some("User")),
        ],
        BuiltinKind::User => &[("memberOf", MemberOf, Some("Group"))],
        BuiltinKind::Location => &[],
        BuiltinKind::Api | BuiltinKind::Template | BuiltinKind::Environment => &[
            ("owner", OwnedBy, Some("Group")),
            ("system", PartOf, Some("System")),
        ],
    }
}

/// `kind:namespace/name` of `r`, its kind and namespace lower-cased and the name lower-cased
/// too when `lower_name` (the key) or kept (the display form): one allocation for ASCII
/// references instead of four.
fn ref_text(r: &EntityRef, lower_name: bool) -> String {
    let (k, ns, n) = (r.kind(), r.namespace(), r.name());
    if !(k.is_ascii() && ns.is_ascii() && n.is_ascii()) {
        return if lower_name { r.key() } else { r.to_string() };
    }
    let mut out = String::with_capacity(k.len() + ns.len() + n.len() + 2);
    out.push_str(k);
    out.push(':');
    out.push_str(ns);
    out.make_ascii_lowercase();
    out.push('/');
    let start = out.len();
    out.push_str(n);
    if lower_name {
        out[start..].make_ascii_lowercase();
    }
    out
}

/// `r.key()` (lower case), cheaply.
pub(crate) fn ref_key(r: &EntityRef) -> String {
    ref_text(r, true)
}

/// `r.to_string()`, cheaply.
pub(crate) fn ref_string(r: &EntityRef) -> String {
    ref_text(r, false)
}

/// The outgoing relations of an entity of `kind` with this `spec`, in field order, and
/// a problem for every reference that cannot be parsed. Duplicates are removed.
///
/// ```
/// use idp_catalog::{kinds::BuiltinKind, relations::derive};
/// let spec = serde_json::json!({"type": "service", "lifecycle": "x", "owner": "a", "dependsOn": ["db"]});
/// let (_, problems) = derive(BuiltinKind::Component, spec.as_object().unwrap(), "default");
/// assert_eq!(problems[0].path, "spec.dependsOn[0]");
/// ```
pub fn derive(
    kind: BuiltinKind,
    spec: &Map<String, Value>,
    namespace: &str,
) -> (Vec<(RelationType, EntityRef)>, Vec<Problem>) {
    let mut rels: Vec<(RelationType, EntityRef)> = Vec::new();
    // The keys of `rels`, computed once each (comparing `EntityRef`s builds both keys).
    let mut keys: Vec<String> = Vec::new();
    let mut problems = Vec::new();
    for &(field, rel, default_kind) in fields(kind) {
        // The field path is only formatted for an error.
        let mut add = |text: &str, index: Option<usize>| match EntityRef::parse_with_defaults(
            text,
            default_kind,
            namespace,
        ) {
            Ok(target) => {
                let key = ref_key(&target);
                if !rels
                    .iter()
                    .zip(&keys)
                    .any(|((t, _), k)| *t == rel && *k == key)
                {
                    rels.push((rel, target));
                    keys.push(key);
                }
            }
            Err(e) => problems.push(Problem::new(
                match index {
                    Some(i) => format!("spec.{field}[{i}]"),
                    None => format!("spec.{field}"),
                },
                "reference",
                format!("{text:?} is not a valid entity reference: {}", e.message()),
            )),
        };
        match spec.get(field) {
            Some(Value::String(s)) => add(s, None),
            Some(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(s) = item.as_str() {
                        add(s, Some(i));
                    }
                }
            }
            _ => {}
        }
    }
    (rels, problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn refs(kind: BuiltinKind, spec: &Value, ns: &str) -> Vec<String> {
        let (rels, problems) = derive(kind, spec.as_object().unwrap(), ns);
        assert!(problems.is_empty(), "{problems:?}");
        rels.iter().map(|(t, r)| format!("{t} {r}")).collect()
    }

    #[test]
    fn component_relations_with_defaults() {
        let spec = json!({
            "owner": "user:jane", "system": "other/shop", "subcomponentOf": "cart",
            "providesApis": ["cart-api"], "consumesApis": ["api:pay/pay-api"],
            "dependsOn": ["resource:db", "Component:ns2/x"], "dependencyOf": ["component:y"]
        });
        assert_eq!(
            refs(BuiltinKind::Component, &spec, "team"),
            [
                "ownedBy user:team/jane",
                "partOf system:other/shop",
                "partOf component:team/cart",
                "providesApi api:team/cart-api",
                "consumesApi api:pay/pay-api",
                "dependsOn resource:team/db",
                "dependsOn component:ns2/x",
                "dependencyOf component:team/y",
            ]
        );
    }

    #[test]
    fn group_and_user_relations() {
        let spec =
            json!({"type": "team", "parent": "org", "children": ["a", "a"], "members": ["jane"]});
        assert_eq!(
            refs(BuiltinKind::Group, &spec, "default"),
            [
                "childOf group:default/org",
                "parentOf group:default/a",
                "hasMember user:default/jane"
            ]
        );
        let spec = json!({"memberOf": ["team-a", "group:x/team-b"]});
        assert_eq!(
            refs(BuiltinKind::User, &spec, "default"),
            ["memberOf group:default/team-a", "memberOf group:x/team-b"]
        );
    }

    #[test]
    fn system_and_domain() {
        assert_eq!(
            refs(
                BuiltinKind::System,
                &json!({"owner": "a", "domain": "d"}),
                "n"
            ),
            ["ownedBy group:n/a", "partOf domain:n/d"]
        );
        assert_eq!(
            refs(
                BuiltinKind::Domain,
                &json!({"owner": "a", "subdomainOf": "d"}),
                "n"
            ),
            ["ownedBy group:n/a", "partOf domain:n/d"]
        );
    }
}
