//! The built-in entity kinds: typed views of their specs and their JSON Schemas.
//!
//! The catalog stores every entity as its JSON envelope ([`idp_core::model::Entity`]),
//! so unknown fields survive a round trip. The types here are *views*: deserialize an
//! entity into [`TypedEntity<ComponentSpec>`] to work with named fields, and use
//! [`schema`] to export a kind's JSON Schema (`idpctl catalog schema KIND`).
//!
//! ```
//! use idp_catalog::kinds::{BuiltinKind, ComponentSpec, TypedEntity};
//! let e: TypedEntity<ComponentSpec> = serde_json::from_value(serde_json::json!({
//!     "apiVersion": "backstage.io/v1alpha1", "kind": "Component",
//!     "metadata": {"name": "cart"},
//!     "spec": {"type": "service", "lifecycle": "production", "owner": "team-a", "x-extra": 1}
//! })).unwrap();
//! assert_eq!(e.spec.owner, "team-a");
//! assert_eq!(e.spec.extra["x-extra"], 1);
//! let schema = idp_catalog::kinds::schema(BuiltinKind::Component);
//! assert_eq!(schema["properties"]["kind"]["const"], "Component");
//! ```

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The kinds the catalog knows without registration.
///
/// ```
/// use idp_catalog::kinds::BuiltinKind;
/// assert_eq!(BuiltinKind::from_kind("API"), Some(BuiltinKind::Api));
/// assert_eq!(BuiltinKind::from_kind("api"), None); // kinds are case-sensitive, as in Backstage
/// assert!(BuiltinKind::Template.api_versions().contains(&"scaffolder.backstage.io/v1beta3"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BuiltinKind {
    /// A piece of software: a service, website, library.
    Component,
    /// An interface a component provides or consumes.
    Api,
    /// Infrastructure a component needs at run time (database, bucket).
    Resource,
    /// A collection of components, APIs and resources.
    System,
    /// A business area grouping systems.
    Domain,
    /// A team or organisational unit.
    Group,
    /// A person.
    User,
    /// A pointer to more catalog files.
    Location,
    /// A scaffolder template (`scaffolder.backstage.io/v1beta3`).
    Template,
    /// A deployment environment.
    Environment,
}

impl BuiltinKind {
    /// Every built-in kind.
    ///
    /// ```
    /// assert_eq!(idp_catalog::kinds::BuiltinKind::ALL.len(), 10);
    /// ```
    pub const ALL: [BuiltinKind; 10] = [
        BuiltinKind::Component,
        BuiltinKind::Api,
        BuiltinKind::Resource,
        BuiltinKind::System,
        BuiltinKind::Domain,
        BuiltinKind::Group,
        BuiltinKind::User,
        BuiltinKind::Location,
        BuiltinKind::Template,
        BuiltinKind::Environment,
    ];

    /// The kind exactly as written in `kind:` (`Component`, `API`, ...).
    ///
    /// ```
    /// assert_eq!(idp_catalog::kinds::BuiltinKind::Api.as_str(), "API");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            BuiltinKind::Component => "Component",
            BuiltinKind::Api => "API",
            BuiltinKind::Resource => "Resource",
            BuiltinKind::System => "System",
            BuiltinKind::Domain => "Domain",
            BuiltinKind::Group => "Group",
            BuiltinKind::User => "User",
            BuiltinKind::Location => "Location",
            BuiltinKind::Template => "Template",
            BuiltinKind::Environment => "Environment",
        }
    }

    /// The kind for a `kind:` value, compared exactly as Backstage does.
    ///
    /// ```
    /// assert!(idp_catalog::kinds::BuiltinKind::from_kind("Group").is_some());
    /// ```
    pub fn from_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The kind for a name in any case (`component`, `API`), for CLI arguments.
    ///
    /// ```
    /// use idp_catalog::kinds::BuiltinKind;
    /// assert_eq!(BuiltinKind::from_kind_ignore_case("api"), Some(BuiltinKind::Api));
    /// ```
    pub fn from_kind_ignore_case(kind: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str().eq_ignore_ascii_case(kind))
    }

    /// The `apiVersion`s this kind is accepted with.
    ///
    /// ```
    /// assert_eq!(idp_catalog::kinds::BuiltinKind::Component.api_versions(), &["backstage.io/v1alpha1", "backstage.io/v1beta1"]);
    /// ```
    pub fn api_versions(self) -> &'static [&'static str] {
        match self {
            BuiltinKind::Template => &["scaffolder.backstage.io/v1beta3"],
            _ => &["backstage.io/v1alpha1", "backstage.io/v1beta1"],
        }
    }
}

impl std::fmt::Display for BuiltinKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An entity envelope with a typed `spec`; unknown root fields are kept in `extra`.
///
/// ```
/// use idp_catalog::kinds::{TypedEntity, SystemSpec};
/// let s: TypedEntity<SystemSpec> = serde_json::from_value(serde_json::json!({
///     "apiVersion": "backstage.io/v1alpha1", "kind": "System",
///     "metadata": {"name": "shop"}, "spec": {"owner": "team-a"}})).unwrap();
/// assert_eq!(s.metadata.name, "shop");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TypedEntity<S> {
    /// `group/version`, e.g. `backstage.io/v1alpha1`.
    pub api_version: String,
    /// The kind, e.g. `Component`.
    pub kind: String,
    /// Name, namespace, labels, annotations and the rest.
    pub metadata: Metadata,
    /// The kind-specific part.
    pub spec: S,
    /// Relations computed by the catalog (ignored on input).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub relations: Vec<RelationEntry>,
    /// Status computed by the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Value>,
}

/// `metadata` of every entity.
///
/// ```
/// let m: idp_catalog::kinds::Metadata = serde_json::from_value(serde_json::json!({"name": "a", "tags": ["java"]})).unwrap();
/// assert_eq!(m.tags, vec!["java"]);
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// 1–63 characters: `[A-Za-z0-9]` at both ends, `[-_.A-Za-z0-9]` in between.
    pub name: String,
    /// A DNS label; `default` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// A display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// A human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Identifying key/value pairs (values: empty or a name).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Non-identifying key/value pairs (values: any string).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Lower-case tags, e.g. `java`, `c++`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// External links.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<Link>,
    /// Set by the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// Set by the catalog.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub etag: Option<String>,
    /// Unknown fields, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One `metadata.links` entry.
///
/// ```
/// let l: idp_catalog::kinds::Link = serde_json::from_value(serde_json::json!({"url": "https://x"})).unwrap();
/// assert!(l.title.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Link {
    /// The target URL (required).
    pub url: String,
    /// A display title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// An icon name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// A link type, e.g. `dashboard`.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub link_type: Option<String>,
}

/// One entry of an entity's `relations`.
///
/// ```
/// let r: idp_catalog::kinds::RelationEntry = serde_json::from_value(serde_json::json!({"type": "ownedBy", "targetRef": "group:default/a"})).unwrap();
/// assert_eq!(r.relation_type, "ownedBy");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RelationEntry {
    /// The relation type, e.g. `ownedBy`.
    #[serde(rename = "type")]
    pub relation_type: String,
    /// The target's reference, `kind:namespace/name`.
    pub target_ref: String,
}

macro_rules! spec_struct {
    ($(#[$doc:meta])* $name:ident { $($(#[$fdoc:meta])* $(@$attr:meta)? $field:ident : $ty:ty),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "camelCase")]
        pub struct $name {
            $($(#[$fdoc])* $(#[$attr])? pub $field: $ty,)*
            /// Unknown fields, kept.
            #[serde(flatten)]
            pub extra: Map<String, Value>,
        }
    };
}

spec_struct! {
    /// `spec` of a Component.
    ///
    /// ```
    /// let s: idp_catalog::kinds::ComponentSpec = serde_json::from_value(serde_json::json!({"type": "service", "lifecycle": "production", "owner": "a"})).unwrap();
    /// assert_eq!(s.component_type, "service");
    /// ```
    ComponentSpec {
        /// e.g. `service`, `website`, `library`.
        @serde(rename = "type") component_type: String,
        /// e.g. `experimental`, `production`, `deprecated`.
        lifecycle: String,
        /// Owner reference (default kind Group).
        owner: String,
        /// The system it belongs to (default kind System).
        @serde(default, skip_serializing_if = "Option::is_none") system: Option<String>,
        /// The component it is part of (default kind Component).
        @serde(default, skip_serializing_if = "Option::is_none") subcomponent_of: Option<String>,
        /// APIs it provides (default kind API).
        @serde(default, skip_serializing_if = "Vec::is_empty") provides_apis: Vec<String>,
        /// APIs it consumes (default kind API).
        @serde(default, skip_serializing_if = "Vec::is_empty") consumes_apis: Vec<String>,
        /// Entities it depends on (kind required).
        @serde(default, skip_serializing_if = "Vec::is_empty") depends_on: Vec<String>,
        /// Entities that depend on it (kind required).
        @serde(default, skip_serializing_if = "Vec::is_empty") dependency_of: Vec<String>,
    }
}

spec_struct! {
    /// `spec` of an API.
    ///
    /// ```
    /// let s: idp_catalog::kinds::ApiSpec = serde_json::from_value(serde_json::json!({"type": "openapi", "lifecycle": "production", "owner": "a", "definition": "openapi: 3.0.0"})).unwrap();
    /// assert_eq!(s.api_type, "openapi");
    /// ```
    ApiSpec {
        /// e.g. `openapi`, `asyncapi`, `graphql`, `grpc`.
        @serde(rename = "type") api_type: String,
        /// e.g. `production`.
        lifecycle: String,
        /// Owner reference (default kind Group).
        owner: String,
        /// The definition text (often a `$text` placeholder).
        definition: String,
        /// The system it belongs to.
        @serde(default, skip_serializing_if = "Option::is_none") system: Option<String>,
    }
}

spec_struct! {
    /// `spec` of a Resource.
    ///
    /// ```
    /// let s: idp_catalog::kinds::ResourceSpec = serde_json::from_value(serde_json::json!({"type": "database", "owner": "a"})).unwrap();
    /// assert_eq!(s.resource_type, "database");
    /// ```
    ResourceSpec {
        /// e.g. `database`, `s3-bucket`.
        @serde(rename = "type") resource_type: String,
        /// Owner reference.
        owner: String,
        /// Entities it depends on.
        @serde(default, skip_serializing_if = "Vec::is_empty") depends_on: Vec<String>,
        /// Entities that depend on it.
        @serde(default, skip_serializing_if = "Vec::is_empty") dependency_of: Vec<String>,
        /// The system it belongs to.
        @serde(default, skip_serializing_if = "Option::is_none") system: Option<String>,
    }
}

spec_struct! {
    /// `spec` of a System.
    ///
    /// ```
    /// let s: idp_catalog::kinds::SystemSpec = serde_json::from_value(serde_json::json!({"owner": "a", "domain": "shop"})).unwrap();
    /// assert_eq!(s.domain.as_deref(), Some("shop"));
    /// ```
    SystemSpec {
        /// Owner reference.
        owner: String,
        /// The domain it belongs to (default kind Domain).
        @serde(default, skip_serializing_if = "Option::is_none") domain: Option<String>,
        /// An optional type.
        @serde(default, rename = "type", skip_serializing_if = "Option::is_none") system_type: Option<String>,
    }
}

spec_struct! {
    /// `spec` of a Domain.
    ///
    /// ```
    /// let s: idp_catalog::kinds::DomainSpec = serde_json::from_value(serde_json::json!({"owner": "a"})).unwrap();
    /// assert!(s.subdomain_of.is_none());
    /// ```
    DomainSpec {
        /// Owner reference.
        owner: String,
        /// The parent domain.
        @serde(default, skip_serializing_if = "Option::is_none") subdomain_of: Option<String>,
        /// An optional type.
        @serde(default, rename = "type", skip_serializing_if = "Option::is_none") domain_type: Option<String>,
    }
}

/// `spec.profile` of a Group or User.
///
/// ```
/// let p: idp_catalog::kinds::Profile = serde_json::from_value(serde_json::json!({"displayName": "A"})).unwrap();
/// assert_eq!(p.display_name.as_deref(), Some("A"));
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Picture URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
}

spec_struct! {
    /// `spec` of a Group.
    ///
    /// ```
    /// let s: idp_catalog::kinds::GroupSpec = serde_json::from_value(serde_json::json!({"type": "team", "children": []})).unwrap();
    /// assert!(s.children.is_empty());
    /// ```
    GroupSpec {
        /// e.g. `team`, `business-unit`.
        @serde(rename = "type") group_type: String,
        /// Display information.
        @serde(default, skip_serializing_if = "Option::is_none") profile: Option<Profile>,
        /// The parent group.
        @serde(default, skip_serializing_if = "Option::is_none") parent: Option<String>,
        /// Child groups (required, may be empty).
        children: Vec<String>,
        /// Member users.
        @serde(default, skip_serializing_if = "Vec::is_empty") members: Vec<String>,
    }
}

spec_struct! {
    /// `spec` of a User.
    ///
    /// ```
    /// let s: idp_catalog::kinds::UserSpec = serde_json::from_value(serde_json::json!({"memberOf": ["team-a"]})).unwrap();
    /// assert_eq!(s.member_of, vec!["team-a"]);
    /// ```
    UserSpec {
        /// Display information.
        @serde(default, skip_serializing_if = "Option::is_none") profile: Option<Profile>,
        /// Groups the user is a member of (required, may be empty).
        member_of: Vec<String>,
    }
}

spec_struct! {
    /// `spec` of a Location.
    ///
    /// ```
    /// let s: idp_catalog::kinds::LocationSpec = serde_json::from_value(serde_json::json!({"targets": ["./a.yaml"]})).unwrap();
    /// assert_eq!(s.targets.len(), 1);
    /// ```
    LocationSpec {
        /// Location type, e.g. `url` or `file`.
        @serde(default, rename = "type", skip_serializing_if = "Option::is_none") location_type: Option<String>,
        /// One target.
        @serde(default, skip_serializing_if = "Option::is_none") target: Option<String>,
        /// Several targets.
        @serde(default, skip_serializing_if = "Vec::is_empty") targets: Vec<String>,
        /// `required` (default) or `optional`.
        @serde(default, skip_serializing_if = "Option::is_none") presence: Option<String>,
    }
}

/// One step of a Template.
///
/// ```
/// let s: idp_catalog::kinds::TemplateStep = serde_json::from_value(serde_json::json!({"id": "fetch", "action": "fetch:template"})).unwrap();
/// assert_eq!(s.action, "fetch:template");
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateStep {
    /// Step id, referenced as `steps['id'].output`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The action to run, e.g. `fetch:template`.
    pub action: String,
    /// The action's input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
    /// A condition; the step is skipped when it is false.
    #[serde(default, rename = "if", skip_serializing_if = "Option::is_none")]
    pub condition: Option<Value>,
    /// Unknown fields, kept.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

spec_struct! {
    /// `spec` of a Template (`scaffolder.backstage.io/v1beta3`).
    ///
    /// ```
    /// let s: idp_catalog::kinds::TemplateSpec = serde_json::from_value(serde_json::json!({
    ///     "type": "service", "parameters": [{"title": "Name", "properties": {}}],
    ///     "steps": [{"action": "fetch:template"}]})).unwrap();
    /// assert_eq!(s.steps.len(), 1);
    /// ```
    TemplateSpec {
        /// What the template creates, e.g. `service`.
        @serde(rename = "type") template_type: String,
        /// Owner reference.
        @serde(default, skip_serializing_if = "Option::is_none") owner: Option<String>,
        /// Form parameters: one JSON Schema object or an array of them (one per form page).
        @serde(default, skip_serializing_if = "Option::is_none") parameters: Option<Value>,
        /// The steps to run.
        steps: Vec<TemplateStep>,
        /// Outputs shown at the end (links, text).
        @serde(default, skip_serializing_if = "Option::is_none") output: Option<Value>,
    }
}

spec_struct! {
    /// `spec` of an Environment.
    ///
    /// ```
    /// let s: idp_catalog::kinds::EnvironmentSpec = serde_json::from_value(serde_json::json!({"owner": "a", "type": "production"})).unwrap();
    /// assert_eq!(s.environment_type.as_deref(), Some("production"));
    /// ```
    EnvironmentSpec {
        /// Owner reference.
        owner: String,
        /// e.g. `production`, `staging`, `preview`.
        @serde(default, rename = "type", skip_serializing_if = "Option::is_none") environment_type: Option<String>,
        /// The system it serves.
        @serde(default, skip_serializing_if = "Option::is_none") system: Option<String>,
    }
}

/// The JSON Schema (draft 2020-12) of a built-in kind's whole envelope, with
/// `apiVersion` and `kind` pinned to the accepted values.
///
/// ```
/// use idp_catalog::kinds::{schema, BuiltinKind};
/// let s = schema(BuiltinKind::Group);
/// assert!(s["required"].as_array().unwrap().iter().any(|r| r == "spec"));
/// ```
pub fn schema(kind: BuiltinKind) -> Value {
    let schema = match kind {
        BuiltinKind::Component => schemars::schema_for!(TypedEntity<ComponentSpec>),
        BuiltinKind::Api => schemars::schema_for!(TypedEntity<ApiSpec>),
        BuiltinKind::Resource => schemars::schema_for!(TypedEntity<ResourceSpec>),
        BuiltinKind::System => schemars::schema_for!(TypedEntity<SystemSpec>),
        BuiltinKind::Domain => schemars::schema_for!(TypedEntity<DomainSpec>),
        BuiltinKind::Group => schemars::schema_for!(TypedEntity<GroupSpec>),
        BuiltinKind::User => schemars::schema_for!(TypedEntity<UserSpec>),
        BuiltinKind::Location => schemars::schema_for!(TypedEntity<LocationSpec>),
        BuiltinKind::Template => schemars::schema_for!(TypedEntity<TemplateSpec>),
        BuiltinKind::Environment => schemars::schema_for!(TypedEntity<EnvironmentSpec>),
    };
    let mut value = schema.to_value();
    if let Some(props) = value.get_mut("properties").and_then(Value::as_object_mut) {
        props.insert(
            "apiVersion".into(),
            serde_json::json!({"type": "string", "enum": kind.api_versions()}),
        );
        props.insert(
            "kind".into(),
            serde_json::json!({"type": "string", "const": kind.as_str()}),
        );
    }
    if let Some(obj) = value.as_object_mut() {
        obj.insert(
            "title".into(),
            Value::String(format!("Backstage {} entity", kind.as_str())),
        );
        obj.insert("additionalProperties".into(), Value::Bool(false));
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_schema_pins_kind_and_requires_spec_fields() {
        for kind in BuiltinKind::ALL {
            let s = schema(kind);
            assert_eq!(s["properties"]["kind"]["const"], kind.as_str());
            let text = s.to_string();
            assert!(text.contains("\"metadata\""), "{kind}");
        }
        let component = schema(BuiltinKind::Component).to_string();
        assert!(component.contains("lifecycle"));
    }

    #[test]
    fn typed_view_round_trips_unknown_fields() {
        let raw = serde_json::json!({
            "apiVersion": "backstage.io/v1alpha1", "kind": "Group",
            "metadata": {"name": "t", "custom": {"a": 1}},
            "spec": {"type": "team", "children": [], "weird": true}
        });
        let g: TypedEntity<GroupSpec> = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(serde_json::to_value(&g).unwrap(), raw);
    }
}
