//! [`InMemoryCatalog`]: an indexed, copy-on-write implementation of idp-core's
//! [`Catalog`] port.
//!
//! Entities are stored as compact JSON text (their envelope without `relations`), with
//! indexes by reference, kind, namespace, owner, label, tag, `spec.type`,
//! `spec.lifecycle` and relation, and a relation graph in both directions. Every change
//! builds a new [`Snapshot`] that shares all untouched parts with the previous one, so
//! readers take a snapshot and never wait for ingestion, and a change of one entity costs
//! microseconds whatever the catalog size.
//!
//! ```
//! use idp_catalog::{InMemoryCatalog, Mutation, EntityInput};
//! use idp_core::{Catalog, ports::EntityQuery};
//!
//! # tokio_test();
//! # fn tokio_test() { tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let catalog = InMemoryCatalog::new();
//! let report = catalog.apply("example", Mutation::Full(vec![
//!     EntityInput::new(serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
//!         "metadata": {"name": "team-a"}, "spec": {"type": "team", "children": []}})),
//!     EntityInput::new(serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
//!         "metadata": {"name": "cart"}, "spec": {"type": "service", "lifecycle": "production", "owner": "team-a"}})),
//! ]));
//! assert_eq!(report.added.len(), 2);
//! let team = catalog.get(&"group:default/team-a".parse().unwrap()).await.unwrap().unwrap();
//! assert_eq!(team.relations()[0].relation_type, "ownerOf");
//! let page = catalog.query(&idp_catalog::filter::parse_filters(&["kind=component,spec.owner=team-a"]).unwrap()).await.unwrap();
//! assert_eq!(page.total, 1);
//! # }) }
//! ```

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use async_trait::async_trait;
use idp_core::model::Entity;
use idp_core::ports::{EntityPage, EntityQuery, FilterCondition};
use idp_core::{Catalog, EntityRef, Error, Result};
use serde_json::{Map, Value};

use crate::cow::{CowMap, CowMapPart, FastMap, FastState, Postings, Slots};
use crate::processor::EntityProcessor;
use crate::relations::{self, RelationType};
use crate::validate::{Problem, Validator};

/// Annotation naming where an entity was read from (`file:/path` or `url:https://...`).
pub const MANAGED_BY_LOCATION: &str = "backstage.io/managed-by-location";
/// Annotation naming the location that led to it (the root location).
pub const MANAGED_BY_ORIGIN_LOCATION: &str = "backstage.io/managed-by-origin-location";
/// Annotation naming the source revision (a Git commit) the entity was read at.
pub const SOURCE_REVISION: &str = "idp.dev/source-revision";

const DEFAULT_PAGE: usize = 500;

/// One entity handed to the catalog by a provider, before validation.
///
/// ```
/// let input = idp_catalog::EntityInput::new(serde_json::json!({"kind": "Group"}))
///     .with_location("file:/repo/catalog-info.yaml")
///     .with_revision("4f2a9c1");
/// assert_eq!(input.revision.as_deref(), Some("4f2a9c1"));
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EntityInput {
    /// The envelope, placeholders resolved.
    pub value: Value,
    /// Where it was read from, e.g. `file:/repo/catalog-info.yaml`.
    pub location: Option<String>,
    /// The location that led there (defaults to `location`).
    pub origin_location: Option<String>,
    /// The revision (Git commit) it was read at.
    pub revision: Option<String>,
    /// Its 0-based document index in the file.
    pub document: Option<usize>,
    /// Warnings from reading it (unread placeholder URLs...).
    pub warnings: Vec<String>,
}

impl EntityInput {
    /// An input with no origin information.
    ///
    /// ```
    /// assert!(idp_catalog::EntityInput::new(serde_json::json!({})).location.is_none());
    /// ```
    pub fn new(value: Value) -> Self {
        Self {
            value,
            ..Self::default()
        }
    }

    /// Record where it was read from.
    ///
    /// ```
    /// let i = idp_catalog::EntityInput::new(serde_json::json!({})).with_location("file:/a.yaml");
    /// assert_eq!(i.location.as_deref(), Some("file:/a.yaml"));
    /// ```
    pub fn with_location(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    /// Record the revision it was read at.
    ///
    /// ```
    /// let i = idp_catalog::EntityInput::new(serde_json::json!({})).with_revision("abc");
    /// assert_eq!(i.revision.as_deref(), Some("abc"));
    /// ```
    pub fn with_revision(mut self, revision: impl Into<String>) -> Self {
        self.revision = Some(revision.into());
        self
    }
}

impl From<Value> for EntityInput {
    fn from(value: Value) -> Self {
        Self::new(value)
    }
}

/// What a provider asks the catalog to do (Backstage's `applyMutation`).
///
/// ```
/// let m = idp_catalog::Mutation::Delta { upserts: vec![], removals: vec!["component:default/old".parse().unwrap()] };
/// assert!(matches!(m, idp_catalog::Mutation::Delta { .. }));
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum Mutation {
    /// The provider's complete set: entities it provided before and not now are removed.
    Full(Vec<EntityInput>),
    /// Changes only.
    Delta {
        /// Entities added or changed.
        upserts: Vec<EntityInput>,
        /// Entities gone from the source.
        removals: Vec<EntityRef>,
    },
}

/// An entity the catalog refused, with every reason.
///
/// ```
/// let r = idp_catalog::Rejection { location: Some("file:/a.yaml".into()), document: Some(0), entity_ref: None,
///     problems: vec![idp_catalog::validate::Problem::new("kind", "required", "kind is required")] };
/// assert!(r.to_string().contains("file:/a.yaml document 0: kind: kind is required"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rejection {
    /// Where it was read from.
    pub location: Option<String>,
    /// Its document index.
    pub document: Option<usize>,
    /// Its reference, when it could be determined.
    pub entity_ref: Option<String>,
    /// Why it was refused.
    pub problems: Vec<Problem>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut prefix = String::new();
        if let Some(l) = &self.location {
            prefix.push_str(l);
        }
        if let Some(d) = self.document {
            let _ = write!(prefix, " document {d}");
        }
        if let Some(r) = &self.entity_ref {
            let _ = write!(prefix, " ({r})");
        }
        let problems: Vec<String> = self.problems.iter().map(ToString::to_string).collect();
        write!(f, "{}: {}", prefix.trim(), problems.join("; "))
    }
}

/// Heap bytes held by a [`Snapshot`], by part (see [`Snapshot::memory_estimate`]).
///
/// ```
/// let m = idp_catalog::catalog::MemoryEstimate::default();
/// assert_eq!(m.total(), 0);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// The entities' JSON text (the source, re-encoded compactly).
    pub entity_text: usize,
    /// Per-entity records: reference, relations, index terms.
    pub entities: usize,
    /// The reference → id table.
    pub ref_index: usize,
    /// Field indexes (kind, owner, labels...).
    pub field_indexes: usize,
    /// Incoming relation lists.
    pub relation_graph: usize,
}

impl MemoryEstimate {
    /// Everything.
    ///
    /// ```
    /// assert_eq!(idp_catalog::catalog::MemoryEstimate { entity_text: 1, ..Default::default() }.total(), 1);
    /// ```
    pub fn total(&self) -> usize {
        self.entity_text + self.entities + self.ref_index + self.field_indexes + self.relation_graph
    }
}

/// A relation whose target is not in the catalog.
///
/// ```
/// let d = idp_catalog::DanglingRelation { source: "component:default/a".parse().unwrap(),
///     relation: idp_catalog::relations::RelationType::OwnedBy, target: "group:default/ghost".into() };
/// assert_eq!(d.to_string(), "component:default/a ownedBy group:default/ghost (not in the catalog)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DanglingRelation {
    /// The entity holding the reference.
    pub source: EntityRef,
    /// The relation type.
    pub relation: RelationType,
    /// The missing target, `kind:namespace/name`.
    pub target: String,
}

impl fmt::Display for DanglingRelation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} (not in the catalog)",
            self.source, self.relation, self.target
        )
    }
}

/// What a mutation did.
///
/// ```
/// let r = idp_catalog::IngestReport::default();
/// assert!(r.is_clean());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IngestReport {
    /// New entities.
    pub added: Vec<EntityRef>,
    /// Changed entities (re-validated, relations re-stitched).
    pub updated: Vec<EntityRef>,
    /// Entities that did not change (not re-validated).
    pub unchanged: usize,
    /// Entities removed: gone from the provider's source (orphans) or removed by a delta.
    pub removed: Vec<EntityRef>,
    /// Entities refused; a refused entity that was in the catalog keeps its last good version.
    pub rejected: Vec<Rejection>,
    /// Relations from changed entities to entities not in the catalog.
    pub dangling: Vec<DanglingRelation>,
    /// Warnings (unread URLs...), each naming its entity.
    pub warnings: Vec<String>,
}

impl IngestReport {
    /// No rejections and no dangling relations.
    ///
    /// ```
    /// assert!(idp_catalog::IngestReport::default().is_clean());
    /// ```
    pub fn is_clean(&self) -> bool {
        self.rejected.is_empty() && self.dangling.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Field {
    Kind,
    Namespace,
    Owner,
    Type,
    Lifecycle,
    Tag,
    Label,
    LabelKey,
    Provider,
}

type Term = (Field, Box<str>);

#[derive(Debug)]
struct Stored {
    entity_ref: EntityRef,
    json: Arc<str>,
    outgoing: Arc<[(RelationType, Box<str>)]>,
    terms: Arc<[Term]>,
    /// The entity's JSON text with its relations, written on its first read. It can
    /// never go stale: a changed entity is a new record, and an entity whose incoming
    /// relations change gets a new record too ([`State::refresh`]).
    rendered: OnceLock<Arc<str>>,
}

impl Stored {
    /// The same record with an empty rendering (its relations changed).
    fn refreshed(&self) -> Self {
        Self {
            entity_ref: self.entity_ref.clone(),
            json: Arc::clone(&self.json),
            outgoing: Arc::clone(&self.outgoing),
            terms: Arc::clone(&self.terms),
            rendered: OnceLock::new(),
        }
    }

    fn provider(&self) -> Option<&str> {
        self.terms
            .iter()
            .find(|(f, _)| *f == Field::Provider)
            .map(|(_, v)| &**v)
    }
}

#[derive(Debug, Clone)]
struct State {
    /// Counts the mutations applied: a staged entity prepared against another
    /// generation is re-checked at commit.
    generation: u64,
    next_id: u32,
    ids: CowMap<Box<str>, u32>,
    slots: Slots<Arc<Stored>>,
    /// Each list behind its own `Arc`: copying a shard for a change copies pointers.
    index: CowMap<Term, Arc<Postings>>,
    incoming: CowMap<Box<str>, Vec<(RelationType, u32)>>,
    counts: CountCache,
}

/// Exact match counts of indexed queries, computed once per state (a state never
/// changes, so a count never goes stale; a clone starts empty).
#[derive(Debug, Default)]
struct CountCache(Mutex<std::collections::HashMap<String, usize>>);

/// Most distinct queries whose counts one state remembers.
const COUNT_CACHE_LIMIT: usize = 4096;

impl Clone for CountCache {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl CountCache {
    fn get_or(&self, key: String, compute: impl FnOnce() -> usize) -> usize {
        if let Some(&n) = lock(&self.0).get(&key) {
            return n;
        }
        let n = compute();
        let mut map = lock(&self.0);
        if map.len() >= COUNT_CACHE_LIMIT {
            map.clear();
        }
        map.insert(key, n);
        n
    }
}

/// Lock a mutex, also when a panicking thread poisoned it (the data is a cache).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

/// A page of ids, the exact total, and the next cursor.
type FastPage = (Vec<u32>, usize, Option<String>);

/// The ids one indexed condition accepts.
enum IdSet<'a> {
    /// The union of these posting lists.
    Postings(Vec<&'a Postings>),
    /// A sorted, deduplicated list.
    List(Vec<u32>),
}

impl IdSet<'_> {
    /// An upper bound of its size.
    fn len_hint(&self) -> usize {
        match self {
            IdSet::Postings(ps) => ps.iter().map(|p| p.len()).sum(),
            IdSet::List(l) => l.len(),
        }
    }

    fn contains(&self, id: u32) -> bool {
        match self {
            IdSet::Postings(ps) => ps.iter().any(|p| p.contains(id)),
            IdSet::List(l) => l.binary_search(&id).is_ok(),
        }
    }

    /// Its ids greater than `after`, ascending.
    fn iter_after(&self, after: Option<u32>) -> Box<dyn Iterator<Item = u32> + '_> {
        match self {
            IdSet::Postings(ps) if ps.len() == 1 => Box::new(ps[0].iter_after(after)),
            IdSet::Postings(ps) => {
                let mut all: Vec<u32> = ps.iter().flat_map(|p| p.iter_after(after)).collect();
                all.sort_unstable();
                all.dedup();
                Box::new(all.into_iter())
            }
            IdSet::List(l) => {
                let start = after.map_or(0, |a| l.partition_point(|&x| x <= a));
                Box::new(l[start..].iter().copied())
            }
        }
    }
}

impl State {
    fn new() -> Self {
        Self {
            generation: 0,
            next_id: 0,
            ids: CowMap::new(8192),
            slots: Slots::new(),
            index: CowMap::new(1024),
            incoming: CowMap::new(8192),
            counts: CountCache::default(),
        }
    }
}

/// A read-only view of the catalog at one moment; cheap to take and to keep.
///
/// ```
/// let catalog = idp_catalog::InMemoryCatalog::new();
/// let snapshot = catalog.snapshot();
/// assert_eq!(snapshot.len(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct Snapshot {
    state: Arc<State>,
}

/// Field projection and ordering for [`Snapshot::query_with`].
///
/// ```
/// let o = idp_catalog::QueryOptions::default().order_by("metadata.name", false).fields(["kind", "metadata.name"]);
/// assert_eq!(o.fields.len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// Dotted paths to keep (empty: whole entities).
    pub fields: Vec<String>,
    /// `(dotted path, descending)` sort keys; empty: catalog order (insertion).
    pub order: Vec<(String, bool)>,
}

impl QueryOptions {
    /// Add a sort key.
    ///
    /// ```
    /// let o = idp_catalog::QueryOptions::default().order_by("metadata.name", true);
    /// assert!(o.order[0].1);
    /// ```
    pub fn order_by(mut self, field: impl Into<String>, descending: bool) -> Self {
        self.order.push((field.into(), descending));
        self
    }

    /// Keep only these fields in the result.
    ///
    /// ```
    /// let o = idp_catalog::QueryOptions::default().fields(["metadata.name"]);
    /// assert_eq!(o.fields, vec!["metadata.name"]);
    /// ```
    pub fn fields<S: Into<String>>(mut self, fields: impl IntoIterator<Item = S>) -> Self {
        self.fields = fields.into_iter().map(Into::into).collect();
        self
    }
}

/// One page of [`Snapshot::query_with`]: projected JSON values.
///
/// ```
/// let p = idp_catalog::ProjectedPage::default();
/// assert!(p.items.is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectedPage {
    /// The (projected) entities.
    pub items: Vec<Value>,
    /// How many match in all.
    pub total: usize,
    /// Cursor for the next page.
    pub next_cursor: Option<String>,
}

/// A page of entities as JSON text ([`Snapshot::query_json`]).
///
/// ```
/// let p = idp_catalog::JsonPage::default();
/// assert_eq!(p.json_array(), "[]");
/// ```
#[derive(Debug, Clone, Default)]
pub struct JsonPage {
    /// Each item's JSON text.
    pub items: Vec<Arc<str>>,
    /// How many match in all.
    pub total: usize,
    /// Cursor for the next page.
    pub next_cursor: Option<String>,
}

impl JsonPage {
    /// The items as one JSON array (`[a,b]`, as `serde_json` writes an array).
    ///
    /// ```
    /// let p = idp_catalog::JsonPage { items: vec!["1".into(), "{}".into()], total: 2, next_cursor: None };
    /// assert_eq!(p.json_array(), "[1,{}]");
    /// ```
    pub fn json_array(&self) -> String {
        write_json_array(self.items.iter().map(|s| &**s))
    }
}

/// JSON texts joined into one JSON array (`[a,b]`, as `serde_json` writes an array).
///
/// ```
/// assert_eq!(idp_catalog::catalog::write_json_array(["1", "null"]), "[1,null]");
/// ```
pub fn write_json_array<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let items = items.into_iter();
    let mut out = String::with_capacity(2 + items.size_hint().0 * 1024);
    out.push('[');
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(item);
    }
    out.push(']');
    out
}

/// Whether a dotted path starts at `relations`.
fn is_relations(path: &str) -> bool {
    path.split('.')
        .next()
        .is_some_and(|first| first.eq_ignore_ascii_case("relations"))
}

/// `entity.key()` with one allocation for ASCII references.
fn key_of(entity: &EntityRef) -> String {
    relations::ref_key(entity)
}

/// `s` in lower case, borrowed when it already is.
fn lower_cow(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) || !s.is_ascii() {
        std::borrow::Cow::Owned(s.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

fn lower(s: &str) -> Box<str> {
    if s.bytes().any(|b| b.is_ascii_uppercase()) || !s.is_ascii() {
        s.to_lowercase().into_boxed_str()
    } else {
        s.into()
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_lowercase()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Resolve a dotted path, allowing keys that contain dots
/// (`metadata.annotations.backstage.io/techdocs-ref`); arrays fan out.
fn lookup<'a>(value: &'a Value, path: &str, out: &mut Vec<&'a Value>) {
    if path.is_empty() {
        match value {
            Value::Array(items) => out.extend(items.iter()),
            v => out.push(v),
        }
        return;
    }
    match value {
        Value::Object(map) => {
            if let Some(v) = map.get(path) {
                lookup(v, "", out);
                return;
            }
            for (k, v) in map {
                if path.len() > k.len()
                    && path.as_bytes()[k.len()] == b'.'
                    && path[..k.len()].eq_ignore_ascii_case(k)
                {
                    lookup(v, &path[k.len() + 1..], out);
                } else if path.eq_ignore_ascii_case(k) {
                    lookup(v, "", out);
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                lookup(item, path, out);
            }
        }
        _ => {}
    }
}

impl Snapshot {
    /// Number of entities.
    ///
    /// ```
    /// assert!(idp_catalog::InMemoryCatalog::new().snapshot().is_empty());
    /// ```
    pub fn len(&self) -> usize {
        self.state.ids.len()
    }

    /// Whether the catalog is empty.
    ///
    /// ```
    /// assert!(idp_catalog::InMemoryCatalog::new().snapshot().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn id_of(&self, key: &str) -> Option<u32> {
        self.state.ids.get(key).copied()
    }

    fn stored(&self, id: u32) -> Option<&Arc<Stored>> {
        self.state.slots.get(id)
    }

    /// Whether an entity with this reference exists.
    ///
    /// ```
    /// let s = idp_catalog::InMemoryCatalog::new().snapshot();
    /// assert!(!s.contains(&"component:default/a".parse().unwrap()));
    /// ```
    pub fn contains(&self, entity: &EntityRef) -> bool {
        self.id_of(&key_of(entity)).is_some()
    }

    /// The entity with this reference, relations included.
    ///
    /// ```
    /// let s = idp_catalog::InMemoryCatalog::new().snapshot();
    /// assert!(s.get(&"component:default/a".parse().unwrap()).is_none());
    /// ```
    pub fn get(&self, entity: &EntityRef) -> Option<Entity> {
        let id = self.id_of(&key_of(entity))?;
        self.materialize(id)
    }

    fn relations_of(&self, id: u32, stored: &Stored) -> Vec<(RelationType, String)> {
        let mut rels: Vec<(RelationType, String)> = stored
            .outgoing
            .iter()
            .map(|(t, target)| (*t, target.to_string()))
            .collect();
        let key = key_of(&stored.entity_ref);
        if let Some(incoming) = self.state.incoming.get(key.as_str()) {
            for (t, source) in incoming {
                if *source == id {
                    continue;
                }
                if let Some(s) = self.stored(*source) {
                    rels.push((t.inverse(), relations::ref_string(&s.entity_ref)));
                }
            }
        }
        rels.sort_by(|a, b| (a.0.as_str(), &a.1).cmp(&(b.0.as_str(), &b.1)));
        rels.dedup();
        rels
    }

    fn materialize_value(&self, id: u32) -> Option<Value> {
        self.materialize_value_with(id, true)
    }

    /// The entity's JSON value; its `relations` only when `with_relations` (a projection
    /// without them skips gathering and formatting them).
    fn materialize_value_with(&self, id: u32, with_relations: bool) -> Option<Value> {
        let stored = self.stored(id)?;
        if with_relations && let Some(text) = stored.rendered.get() {
            return serde_json::from_str(text).ok();
        }
        let mut value: Value = serde_json::from_str(&stored.json).ok()?;
        if !with_relations {
            return Some(value);
        }
        let rels = self.relations_of(id, stored);
        if let Value::Object(map) = &mut value {
            map.insert(
                "relations".into(),
                Value::Array(
                    rels.into_iter()
                        .map(|(t, target)| {
                            serde_json::json!({"type": t.as_str(), "targetRef": target})
                        })
                        .collect(),
                ),
            );
        }
        Some(value)
    }

    /// The entity's JSON text with its relations, rendered once per record.
    fn rendered(&self, id: u32) -> Option<Arc<str>> {
        let stored = self.stored(id)?;
        if let Some(text) = stored.rendered.get() {
            return Some(Arc::clone(text));
        }
        let text: Arc<str> = self.materialize_value_with(id, true)?.to_string().into();
        Some(Arc::clone(stored.rendered.get_or_init(|| text)))
    }

    /// The entity with this reference as JSON text, relations included: the bytes
    /// `serde_json` writes for [`Snapshot::get`]'s value, written once per version of the
    /// entity and shared (a server can send it as it is).
    ///
    /// ```
    /// use idp_catalog::{EntityInput, InMemoryCatalog, Mutation};
    /// let c = InMemoryCatalog::new();
    /// c.apply("p", Mutation::Full(vec![EntityInput::new(serde_json::json!({
    ///     "apiVersion": "backstage.io/v1alpha1", "kind": "Group",
    ///     "metadata": {"name": "team-a"}, "spec": {"type": "team", "children": []}}))]));
    /// let r = "group:default/team-a".parse().unwrap();
    /// let s = c.snapshot();
    /// let text = s.get_json(&r).unwrap();
    /// assert_eq!(&*text, s.get(&r).unwrap().to_value().to_string());
    /// ```
    pub fn get_json(&self, entity: &EntityRef) -> Option<Arc<str>> {
        self.rendered(self.id_of(&key_of(entity))?)
    }

    fn materialize(&self, id: u32) -> Option<Entity> {
        Entity::from_value(self.materialize_value(id)?).ok()
    }

    fn postings(&self, field: Field, value: &str) -> Vec<u32> {
        self.state
            .index
            .get(&(field, lower(value)))
            .map(|p| p.iter().collect())
            .unwrap_or_default()
    }

    /// Ids for an indexable condition; `None` when it needs a scan.
    fn condition_ids(&self, c: &FilterCondition) -> Option<Vec<u32>> {
        let key = c.key.to_ascii_lowercase();
        let field = match key.as_str() {
            "kind" => Some(Field::Kind),
            "metadata.namespace" => Some(Field::Namespace),
            "spec.owner" => Some(Field::Owner),
            "spec.type" => Some(Field::Type),
            "spec.lifecycle" => Some(Field::Lifecycle),
            "metadata.tags" => Some(Field::Tag),
            _ => None,
        };
        if c.values.is_empty() {
            if let Some(label) = key.strip_prefix("metadata.labels.") {
                return Some(self.postings(Field::LabelKey, label));
            }
            return None;
        }
        let mut ids: Vec<u32> = Vec::new();
        if let Some(field) = field {
            for v in &c.values {
                ids.extend(self.postings(field, v));
            }
        } else if let Some(label) = key.strip_prefix("metadata.labels.") {
            for v in &c.values {
                ids.extend(self.postings(Field::Label, &format!("{label}={}", v.to_lowercase())));
            }
        } else if let Some(rel) = key.strip_prefix("relations.") {
            let rel = RelationType::from_name(rel)?;
            for v in &c.values {
                let target = v.to_lowercase();
                // Held by the entity: the target's incoming list, filtered by type.
                if let Some(incoming) = self.state.incoming.get(target.as_str()) {
                    ids.extend(
                        incoming
                            .iter()
                            .filter(|(t, _)| *t == rel)
                            .map(|(_, id)| *id),
                    );
                }
                // The inverse, held by the target: `relations.ownerOf=component:x` is x's ownedBy.
                if let Some(tid) = self.id_of(&target)
                    && let Some(t) = self.stored(tid)
                {
                    for (rt, back) in t.outgoing.iter() {
                        if *rt == rel.inverse()
                            && let Some(id) = self.id_of(&back.to_lowercase())
                        {
                            ids.push(id);
                        }
                    }
                }
            }
        } else {
            return None;
        }
        // One posting list is sorted and unique already; unions need sorting.
        if c.values.len() > 1 || key.starts_with("relations.") {
            ids.sort_unstable();
            ids.dedup();
        }
        Some(ids)
    }

    /// The posting lists of an indexable condition, without copying them; `None` when
    /// it needs a scan.
    fn condition_set(&self, c: &FilterCondition) -> Option<IdSet<'_>> {
        let key = c.key.to_ascii_lowercase();
        let field = match key.as_str() {
            "kind" => Field::Kind,
            "metadata.namespace" => Field::Namespace,
            "spec.owner" => Field::Owner,
            "spec.type" => Field::Type,
            "spec.lifecycle" => Field::Lifecycle,
            "metadata.tags" => Field::Tag,
            _ => {
                if let Some(label) = key.strip_prefix("metadata.labels.") {
                    let terms: Vec<Term> = if c.values.is_empty() {
                        vec![(Field::LabelKey, label.into())]
                    } else {
                        c.values
                            .iter()
                            .map(|v| (Field::Label, format!("{label}={}", v.to_lowercase()).into()))
                            .collect()
                    };
                    return Some(IdSet::Postings(
                        terms
                            .iter()
                            .filter_map(|t| self.state.index.get(t).map(|p| &**p))
                            .collect(),
                    ));
                }
                return self.condition_ids(c).map(IdSet::List);
            }
        };
        if c.values.is_empty() {
            return None;
        }
        Some(IdSet::Postings(
            c.values
                .iter()
                .filter_map(|v| self.state.index.get(&(field, lower(v))).map(|p| &**p))
                .collect(),
        ))
    }

    /// The sets of a single filter group whose every condition is indexed; `None` when
    /// the query needs the general path (several groups, scans, free text).
    fn indexed_sets(&self, query: &EntityQuery) -> Option<Vec<IdSet<'_>>> {
        if query.text.as_deref().is_some_and(|t| !t.trim().is_empty()) {
            return None;
        }
        let [group] = query.filter.as_slice() else {
            return None;
        };
        if group.is_empty() {
            return None;
        }
        let mut sets = group
            .iter()
            .map(|c| self.condition_set(c))
            .collect::<Option<Vec<_>>>()?;
        sets.sort_by_key(IdSet::len_hint);
        Some(sets)
    }

    /// Up to `limit` ids after `after` in every set, and whether there are more: walks
    /// the smallest set and probes the others, stopping after the page.
    fn page_of_sets(sets: &[IdSet<'_>], after: Option<u32>, limit: usize) -> (Vec<u32>, bool) {
        let Some((driver, rest)) = sets.split_first() else {
            return (Vec::new(), false);
        };
        let mut page = Vec::with_capacity(limit.min(64));
        for id in driver.iter_after(after) {
            if rest.iter().all(|s| s.contains(id)) {
                if page.len() == limit {
                    return (page, true);
                }
                page.push(id);
            }
        }
        (page, false)
    }

    /// The exact number of ids in every set.
    fn count_of_sets(sets: &[IdSet<'_>]) -> usize {
        match sets {
            [] => 0,
            [IdSet::Postings(ps)] if ps.len() <= 1 => ps.first().map_or(0, |p| p.len()),
            [IdSet::Postings(a), IdSet::Postings(b)] if a.len() == 1 && b.len() == 1 => {
                a[0].intersection_len(b[0])
            }
            [driver, rest @ ..] => driver
                .iter_after(None)
                .filter(|&id| rest.iter().all(|s| s.contains(id)))
                .count(),
        }
    }

    /// The cursor's id (`after:N`), if any.
    fn cursor_after(query: &EntityQuery) -> Result<Option<u32>> {
        query
            .cursor
            .as_deref()
            .map(|c| {
                c.strip_prefix("after:")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| {
                        Error::invalid_input(format!(
                            "cursor {c:?} was not returned by this catalog; start again without a cursor"
                        ))
                    })
            })
            .transpose()
    }

    /// One page of ids and the exact total without building the whole match list, for
    /// queries the indexes answer alone; `None` for the general path.
    fn fast_page(&self, query: &EntityQuery) -> Option<Result<FastPage>> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE).max(1);
        let after = match Self::cursor_after(query) {
            Ok(a) => a,
            Err(e) => return Some(Err(e)),
        };
        let blank = query.text.as_deref().is_none_or(|t| t.trim().is_empty());
        let (page, more, total) = if query.filter.is_empty() && blank {
            let mut page: Vec<u32> = self
                .state
                .slots
                .iter_after(after)
                .map(|(id, _)| id)
                .take(limit + 1)
                .collect();
            let more = page.len() > limit;
            page.truncate(limit);
            (page, more, self.len())
        } else {
            let sets = self.indexed_sets(query)?;
            let (page, more) = Self::page_of_sets(&sets, after, limit);
            let key = format!("{:?}", query.filter);
            let total = self.state.counts.get_or(key, || Self::count_of_sets(&sets));
            (page, more, total)
        };
        let next = if more {
            page.last().map(|id| format!("after:{id}"))
        } else {
            None
        };
        Some(Ok((page, total, next)))
    }

    /// Whether entity `id` satisfies `c` (the slow path, by reading the entity).
    fn condition_matches(
        &self,
        id: u32,
        stored: &Stored,
        value: &mut Option<Value>,
        c: &FilterCondition,
    ) -> bool {
        let key = c.key.to_ascii_lowercase();
        let direct: Option<Vec<String>> = match key.as_str() {
            "kind" => Some(vec![stored.entity_ref.kind().to_lowercase()]),
            "metadata.namespace" => Some(vec![stored.entity_ref.namespace().to_lowercase()]),
            "metadata.name" => Some(vec![stored.entity_ref.name().to_lowercase()]),
            _ => None,
        };
        let candidates: Vec<String> = if let Some(d) = direct {
            d
        } else if let Some(rel) = key.strip_prefix("relations.") {
            self.relations_of(id, stored)
                .into_iter()
                .filter(|(t, _)| t.as_str().eq_ignore_ascii_case(rel))
                .map(|(_, target)| target.to_lowercase())
                .collect()
        } else {
            if value.is_none() {
                *value = serde_json::from_str(&stored.json).ok();
            }
            let Some(v) = value.as_ref() else {
                return false;
            };
            let mut found = Vec::new();
            lookup(v, &c.key, &mut found);
            if c.values.is_empty() {
                return found.iter().any(|v| !v.is_null());
            }
            found.into_iter().filter_map(scalar_text).collect()
        };
        if c.values.is_empty() {
            return !candidates.is_empty();
        }
        c.values.iter().any(|want| {
            candidates
                .iter()
                .any(|have| have.eq_ignore_ascii_case(want))
        })
    }

    fn text_matches(stored: &Stored, value: &mut Option<Value>, term: &str) -> bool {
        let term = term.to_lowercase();
        if stored.entity_ref.name().to_lowercase().contains(&term) {
            return true;
        }
        if value.is_none() {
            *value = serde_json::from_str(&stored.json).ok();
        }
        let Some(v) = value.as_ref() else {
            return false;
        };
        ["title", "description"].iter().any(|f| {
            v.get("metadata")
                .and_then(|m| m.get(*f))
                .and_then(Value::as_str)
                .is_some_and(|s| s.to_lowercase().contains(&term))
        })
    }

    fn all_ids(&self) -> Vec<u32> {
        self.state.slots.iter().map(|(id, _)| id).collect()
    }

    fn group_ids(&self, group: &[FilterCondition]) -> Vec<u32> {
        let mut indexed: Vec<Vec<u32>> = Vec::new();
        let mut scans: Vec<&FilterCondition> = Vec::new();
        for c in group {
            match self.condition_ids(c) {
                Some(ids) => indexed.push(ids),
                None => scans.push(c),
            }
        }
        indexed.sort_by_key(Vec::len);
        let mut ids = match indexed.split_first() {
            Some((first, rest)) => {
                let mut acc = first.clone();
                for other in rest {
                    acc = intersect(&acc, other);
                }
                acc
            }
            None => self.all_ids(),
        };
        if !scans.is_empty() {
            ids.retain(|&id| {
                let Some(stored) = self.stored(id) else {
                    return false;
                };
                let mut cache = None;
                scans
                    .iter()
                    .all(|c| self.condition_matches(id, stored, &mut cache, c))
            });
        }
        ids
    }

    /// Ids of every entity matching `query` (cursor and limit ignored), in catalog order.
    fn matching_ids(&self, query: &EntityQuery) -> Vec<u32> {
        let mut ids = if query.filter.is_empty() {
            self.all_ids()
        } else if query.filter.len() == 1 {
            self.group_ids(&query.filter[0])
        } else {
            let mut all: Vec<u32> = query
                .filter
                .iter()
                .flat_map(|g| self.group_ids(g))
                .collect();
            all.sort_unstable();
            all.dedup();
            all
        };
        if let Some(term) = query.text.as_deref().filter(|t| !t.trim().is_empty()) {
            ids.retain(|&id| {
                self.stored(id)
                    .is_some_and(|s| Self::text_matches(s, &mut None, term.trim()))
            });
        }
        ids
    }

    /// Count the entities matching `query`.
    ///
    /// ```
    /// let s = idp_catalog::InMemoryCatalog::new().snapshot();
    /// assert_eq!(s.count(&idp_core::ports::EntityQuery::new()), 0);
    /// ```
    pub fn count(&self, query: &EntityQuery) -> usize {
        let blank = query.text.as_deref().is_none_or(|t| t.trim().is_empty());
        if query.filter.is_empty() && blank {
            return self.len();
        }
        if let Some(sets) = self.indexed_sets(query) {
            let key = format!("{:?}", query.filter);
            return self.state.counts.get_or(key, || Self::count_of_sets(&sets));
        }
        self.matching_ids(query).len()
    }

    /// References of the entities matching `query`, in catalog order (no paging).
    ///
    /// ```
    /// let s = idp_catalog::InMemoryCatalog::new().snapshot();
    /// assert!(s.refs(&idp_core::ports::EntityQuery::new()).is_empty());
    /// ```
    pub fn refs(&self, query: &EntityQuery) -> Vec<EntityRef> {
        self.matching_ids(query)
            .into_iter()
            .filter_map(|id| self.stored(id).map(|s| s.entity_ref.clone()))
            .collect()
    }

    fn page_ids(query: &EntityQuery, ids: &[u32]) -> Result<(Vec<u32>, Option<String>)> {
        let limit = query.limit.unwrap_or(DEFAULT_PAGE).max(1);
        let start = match query.cursor.as_deref() {
            None => 0,
            Some(c) => {
                let after: u32 = c
                    .strip_prefix("after:")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(|| {
                        Error::invalid_input(format!(
                            "cursor {c:?} was not returned by this catalog; start again without a cursor"
                        ))
                    })?;
                ids.partition_point(|&id| id <= after)
            }
        };
        let page: Vec<u32> = ids[start..].iter().take(limit).copied().collect();
        let next = if start + page.len() < ids.len() {
            page.last().map(|id| format!("after:{id}"))
        } else {
            None
        };
        Ok((page, next))
    }

    /// One page of entities matching `query`, relations included.
    ///
    /// ```
    /// let s = idp_catalog::InMemoryCatalog::new().snapshot();
    /// assert_eq!(s.query(&idp_core::ports::EntityQuery::new()).unwrap().total, 0);
    /// ```
    pub fn query(&self, query: &EntityQuery) -> Result<EntityPage> {
        if let Some(fast) = self.fast_page(query) {
            let (page, total, next_cursor) = fast?;
            let mut entities = Vec::with_capacity(page.len());
            entities.extend(page.into_iter().filter_map(|id| self.materialize(id)));
            return Ok(EntityPage {
                entities,
                total,
                next_cursor,
            });
        }
        let ids = self.matching_ids(query);
        let (page, next_cursor) = Self::page_ids(query, &ids)?;
        Ok(EntityPage {
            entities: page
                .into_iter()
                .filter_map(|id| self.materialize(id))
                .collect(),
            total: ids.len(),
            next_cursor,
        })
    }

    /// Like [`Snapshot::query`], with ordering and field projection (Backstage's
    /// `order` and `fields` parameters). With an order, the cursor is an offset.
    ///
    /// ```
    /// use idp_catalog::QueryOptions;
    /// let s = idp_catalog::InMemoryCatalog::new().snapshot();
    /// let page = s.query_with(&idp_core::ports::EntityQuery::new(), &QueryOptions::default().order_by("metadata.name", false)).unwrap();
    /// assert!(page.items.is_empty());
    /// ```
    pub fn query_with(&self, query: &EntityQuery, options: &QueryOptions) -> Result<ProjectedPage> {
        let with_relations = options.fields.is_empty()
            || options.fields.iter().any(|f| is_relations(f))
            || options.order.iter().any(|(f, _)| is_relations(f));
        let (page, total, next_cursor) = self.select(query, options)?;
        let values = page
            .into_iter()
            .filter_map(|id| self.materialize_value_with(id, with_relations));
        let items = if options.fields.is_empty() {
            values.collect()
        } else {
            values.map(|v| project(&v, &options.fields)).collect()
        };
        Ok(ProjectedPage {
            items,
            total,
            next_cursor,
        })
    }

    /// Like [`Snapshot::query_with`], each item as JSON text (the bytes `serde_json`
    /// writes for the item of [`Snapshot::query_with`]). Whole entities are rendered
    /// once per version and shared, so a server can write a page without building
    /// values; projections are built and written per call.
    ///
    /// ```
    /// use idp_catalog::QueryOptions;
    /// let s = idp_catalog::InMemoryCatalog::new().snapshot();
    /// let page = s.query_json(&idp_core::ports::EntityQuery::new(), &QueryOptions::default()).unwrap();
    /// assert_eq!(page.json_array(), "[]");
    /// ```
    pub fn query_json(&self, query: &EntityQuery, options: &QueryOptions) -> Result<JsonPage> {
        if !options.fields.is_empty() {
            let page = self.query_with(query, options)?;
            return Ok(JsonPage {
                items: page
                    .items
                    .iter()
                    .map(|v| Arc::from(v.to_string()))
                    .collect(),
                total: page.total,
                next_cursor: page.next_cursor,
            });
        }
        let (page, total, next_cursor) = self.select(query, options)?;
        Ok(JsonPage {
            items: page
                .into_iter()
                .filter_map(|id| self.rendered(id))
                .collect(),
            total,
            next_cursor,
        })
    }

    /// The ids of one page for `query` in `options`' order, the total and the next cursor.
    fn select(
        &self,
        query: &EntityQuery,
        options: &QueryOptions,
    ) -> Result<(Vec<u32>, usize, Option<String>)> {
        if options.order.is_empty()
            && let Some(fast) = self.fast_page(query)
        {
            return fast;
        }
        let ids = self.matching_ids(query);
        let total = ids.len();
        if options.order.is_empty() {
            let (page, next) = Self::page_ids(query, &ids)?;
            return Ok((page, total, next));
        }
        let order_relations = options.order.iter().any(|(f, _)| is_relations(f));
        let mut rows: Vec<(Vec<Option<String>>, u32)> = ids
            .iter()
            .filter_map(|&id| Some((self.sort_keys(id, &options.order, order_relations)?, id)))
            .collect();
        rows.sort_by(|a, b| {
            for (i, (_, desc)) in options.order.iter().enumerate() {
                // Entities without the field sort last either way, as in Backstage.
                let ord = match (&a.0[i], &b.0[i]) {
                    (Some(x), Some(y)) if *desc => y.cmp(x),
                    (Some(x), Some(y)) => x.cmp(y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                };
                if ord != std::cmp::Ordering::Equal {
                    return ord;
                }
            }
            a.1.cmp(&b.1)
        });
        let start = match query.cursor.as_deref() {
            None => 0,
            Some(c) => c
                .strip_prefix("offset:")
                .and_then(|n| n.parse().ok())
                .ok_or_else(|| {
                    Error::invalid_input(format!(
                        "cursor {c:?} was not returned by an ordered query; start again without a cursor"
                    ))
                })?,
        };
        let limit = query.limit.unwrap_or(DEFAULT_PAGE).max(1);
        let end = (start + limit).min(rows.len());
        let start = start.min(end);
        let next = (end < rows.len()).then(|| format!("offset:{end}"));
        Ok((
            rows[start..end].iter().map(|(_, id)| *id).collect(),
            total,
            next,
        ))
    }

    /// The values entity `id` sorts by; `kind` and `metadata.name` come from its
    /// reference (the same text, lower-cased) without reading its JSON.
    fn sort_keys(
        &self,
        id: u32,
        order: &[(String, bool)],
        with_relations: bool,
    ) -> Option<Vec<Option<String>>> {
        let stored = self.stored(id)?;
        let from_ref = |f: &str| {
            if f.eq_ignore_ascii_case("kind") {
                Some(stored.entity_ref.kind())
            } else if f.eq_ignore_ascii_case("metadata.name") {
                Some(stored.entity_ref.name())
            } else {
                None
            }
        };
        if order.iter().all(|(f, _)| from_ref(f).is_some()) {
            return Some(
                order
                    .iter()
                    .map(|(f, _)| from_ref(f).map(str::to_lowercase))
                    .collect(),
            );
        }
        let v = self.materialize_value_with(id, with_relations)?;
        Some(
            order
                .iter()
                .map(|(f, _)| {
                    let mut found = Vec::new();
                    lookup(&v, f, &mut found);
                    found.first().and_then(|x| scalar_text(x))
                })
                .collect(),
        )
    }

    /// Targets of `entity`'s relations of type `relation` (both stored directions).
    ///
    /// ```
    /// use idp_catalog::relations::RelationType;
    /// let s = idp_catalog::InMemoryCatalog::new().snapshot();
    /// assert!(s.related(&"group:default/a".parse().unwrap(), RelationType::OwnerOf).is_empty());
    /// ```
    pub fn related(&self, entity: &EntityRef, relation: RelationType) -> Vec<String> {
        let Some(id) = self.id_of(&key_of(entity)) else {
            return Vec::new();
        };
        let Some(stored) = self.stored(id) else {
            return Vec::new();
        };
        self.relations_of(id, stored)
            .into_iter()
            .filter(|(t, _)| *t == relation)
            .map(|(_, target)| target)
            .collect()
    }

    fn related_keys(&self, key: &str, relation: RelationType) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(id) = self.id_of(key)
            && let Some(s) = self.stored(id)
        {
            for (t, target) in s.outgoing.iter() {
                if *t == relation {
                    out.push(target.to_lowercase());
                }
            }
        }
        if let Some(incoming) = self.state.incoming.get(key) {
            for (t, source) in incoming {
                if t.inverse() == relation
                    && let Some(s) = self.stored(*source)
                {
                    out.push(key_of(&s.entity_ref));
                }
            }
        }
        out
    }

    /// Every entity reachable from `start` through `relation`, breadth-first, without
    /// `start` itself (targets not in the catalog included).
    ///
    /// ```
    /// use idp_catalog::relations::RelationType;
    /// let s = idp_catalog::InMemoryCatalog::new().snapshot();
    /// assert!(s.closure(&"component:default/a".parse().unwrap(), RelationType::DependsOn).is_empty());
    /// ```
    pub fn closure(&self, start: &EntityRef, relation: RelationType) -> Vec<String> {
        let start_key = key_of(start);
        let mut seen: HashSet<String> = HashSet::from([start_key.clone()]);
        let mut queue = VecDeque::from([start_key]);
        let mut out = Vec::new();
        while let Some(key) = queue.pop_front() {
            for next in self.related_keys(&key, relation) {
                if seen.insert(next.clone()) {
                    out.push(next.clone());
                    queue.push_back(next);
                }
            }
        }
        out
    }

    /// The dependency closure of an entity: everything it depends on, transitively.
    ///
    /// ```
    /// let s = idp_catalog::InMemoryCatalog::new().snapshot();
    /// assert!(s.dependencies(&"component:default/a".parse().unwrap()).is_empty());
    /// ```
    pub fn dependencies(&self, entity: &EntityRef) -> Vec<String> {
        self.closure(entity, RelationType::DependsOn)
    }

    /// Entities owned by `group` or by any group below it (through `parentOf`), in
    /// catalog order.
    ///
    /// ```
    /// let s = idp_catalog::InMemoryCatalog::new().snapshot();
    /// assert!(s.owned_by_transitive(&"group:default/org".parse().unwrap()).is_empty());
    /// ```
    pub fn owned_by_transitive(&self, group: &EntityRef) -> Vec<EntityRef> {
        let mut groups = vec![key_of(group)];
        groups.extend(self.closure(group, RelationType::ParentOf));
        let mut ids: Vec<u32> = Vec::new();
        for g in &groups {
            if let Some(incoming) = self.state.incoming.get(g.as_str()) {
                ids.extend(
                    incoming
                        .iter()
                        .filter(|(t, _)| *t == RelationType::OwnedBy)
                        .map(|(_, id)| *id),
                );
            }
            if let Some(gid) = self.id_of(g)
                && let Some(s) = self.stored(gid)
            {
                for (t, target) in s.outgoing.iter() {
                    if *t == RelationType::OwnerOf
                        && let Some(id) = self.id_of(&target.to_lowercase())
                    {
                        ids.push(id);
                    }
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter()
            .filter_map(|id| self.stored(id).map(|s| s.entity_ref.clone()))
            .collect()
    }

    /// Every relation whose target is not in the catalog.
    ///
    /// ```
    /// assert!(idp_catalog::InMemoryCatalog::new().snapshot().dangling().is_empty());
    /// ```
    pub fn dangling(&self) -> Vec<DanglingRelation> {
        let mut out = Vec::new();
        for (_, s) in self.state.slots.iter() {
            self.dangling_of(s, &mut out);
        }
        out
    }

    /// Dangling relations of these entities, whose targets (if missing) are all among
    /// the keys `absent`; checked in parallel for large sets.
    fn dangling_of_ids(&self, ids: &[u32], absent: &[Box<str>]) -> Vec<DanglingRelation> {
        if absent.is_empty() {
            return Vec::new();
        }
        let absent: HashSet<&str, FastState> = absent.iter().map(|k| &**k).collect();
        let check = |ids: &[u32]| {
            let mut out = Vec::new();
            for &id in ids {
                if let Some(s) = self.stored(id) {
                    for (t, target) in s.outgoing.iter() {
                        if absent.contains(&*lower_cow(target)) {
                            out.push(DanglingRelation {
                                source: s.entity_ref.clone(),
                                relation: *t,
                                target: target.to_string(),
                            });
                        }
                    }
                }
            }
            out
        };
        let n = workers(ids.len());
        if n <= 1 {
            return check(ids);
        }
        std::thread::scope(|scope| {
            let handles: Vec<_> = ids
                .chunks(ids.len().div_ceil(n))
                .map(|c| scope.spawn(move || check(c)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        })
    }

    fn dangling_of(&self, s: &Stored, out: &mut Vec<DanglingRelation>) {
        for (t, target) in s.outgoing.iter() {
            if self.id_of(&lower_cow(target)).is_none() {
                out.push(DanglingRelation {
                    source: s.entity_ref.clone(),
                    relation: *t,
                    target: target.to_string(),
                });
            }
        }
    }

    /// Every entity, in catalog order.
    ///
    /// ```
    /// assert_eq!(idp_catalog::InMemoryCatalog::new().snapshot().entities().count(), 0);
    /// ```
    pub fn entities(&self) -> impl Iterator<Item = Entity> + '_ {
        self.state
            .slots
            .iter()
            .filter_map(|(id, _)| self.materialize(id))
    }

    /// An approximate account of the heap this snapshot holds, by structure (string
    /// and vector capacities, hash-table slots, index postings). Shared parts are counted
    /// once per snapshot.
    ///
    /// ```
    /// let m = idp_catalog::InMemoryCatalog::new().snapshot().memory_estimate();
    /// assert_eq!(m.entity_text, 0);
    /// ```
    pub fn memory_estimate(&self) -> MemoryEstimate {
        use std::mem::size_of;
        let mut m = MemoryEstimate::default();
        // Hash tables: one slot (key + value + control byte) per entry at ~7/8 load.
        let slot = |k: usize, v: usize| (k + v + 1) * 8 / 7;
        for (_, s) in self.state.slots.iter() {
            m.entity_text += s.json.len();
            m.entities += size_of::<Stored>()
                + 16 // Arc counts
                + size_of::<Option<Arc<Stored>>>()
                + s.entity_ref.kind().len()
                + s.entity_ref.namespace().len()
                + s.entity_ref.name().len()
                + s.outgoing.len() * size_of::<(RelationType, Box<str>)>()
                + s.outgoing.iter().map(|(_, t)| t.len()).sum::<usize>()
                + s.terms.len() * size_of::<Term>()
                + s.terms.iter().map(|(_, t)| t.len()).sum::<usize>();
            m.ref_index +=
                slot(size_of::<Box<str>>(), size_of::<u32>()) + key_of(&s.entity_ref).len();
        }
        for (term, postings) in self.state.index.iter() {
            m.field_indexes += slot(size_of::<Term>(), size_of::<Postings>())
                + term.1.len()
                + postings.heap_bytes();
        }
        for (key, list) in self.state.incoming.iter() {
            m.relation_graph += slot(size_of::<Box<str>>(), size_of::<Vec<(RelationType, u32)>>())
                + key.len()
                + list.capacity() * size_of::<(RelationType, u32)>();
        }
        m
    }

    /// The name of the provider that supplied `entity`.
    ///
    /// ```
    /// let s = idp_catalog::InMemoryCatalog::new().snapshot();
    /// assert!(s.provider_of(&"component:default/a".parse().unwrap()).is_none());
    /// ```
    pub fn provider_of(&self, entity: &EntityRef) -> Option<String> {
        let id = self.id_of(&key_of(entity))?;
        self.stored(id)?.provider().map(str::to_owned)
    }
}

/// Intersection of two sorted id lists: galloping through the longer one.
fn intersect(small: &[u32], large: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(small.len().min(large.len()));
    let mut rest = large;
    for &id in small {
        let pos = rest.partition_point(|&x| x < id);
        rest = &rest[pos..];
        match rest.first() {
            None => break,
            Some(&x) if x == id => out.push(id),
            Some(_) => {}
        }
    }
    out
}

fn project(value: &Value, fields: &[String]) -> Value {
    let mut out = Map::new();
    for f in fields {
        let parts: Vec<&str> = f.split('.').collect();
        let mut src = value;
        let mut ok = true;
        for p in &parts {
            if let Some(v) = src.get(*p) {
                src = v;
            } else {
                ok = false;
                break;
            }
        }
        if !ok {
            continue;
        }
        let mut dst = &mut out;
        for (i, p) in parts.iter().enumerate() {
            if i + 1 == parts.len() {
                dst.insert((*p).to_owned(), src.clone());
            } else {
                let next = dst
                    .entry((*p).to_owned())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !next.is_object() {
                    *next = Value::Object(Map::new());
                }
                let Value::Object(m) = next else { break };
                dst = m;
            }
        }
    }
    Value::Object(out)
}

/// Outcome of preparing one input, before it touches the state.
#[derive(Debug)]
enum Prepared {
    /// Identical to `existing`, the record in the snapshot it was compared with (kept
    /// so that a commit against a newer snapshot can tell whether it still is).
    Unchanged {
        key: Box<str>,
        existing: Arc<Stored>,
    },
    Ready(Ready),
    Rejected {
        key: Option<Box<str>>,
        rejection: Rejection,
    },
}

/// A valid entity, ready to be put in the catalog.
#[derive(Debug)]
struct Ready {
    key: Box<str>,
    /// Allocated here (in parallel) rather than in the serial apply.
    stored: Arc<Stored>,
    warnings: Vec<String>,
    /// A copy of the ref for the report, made here (in parallel) rather than in the
    /// serial apply.
    reported: EntityRef,
    /// Where it was read from, for a conflict found at commit.
    location: Option<String>,
    document: Option<usize>,
}

/// The rejection of an entity that another provider already supplies.
fn conflict(
    existing: &Stored,
    entity_ref: Option<&EntityRef>,
    location: Option<String>,
    document: Option<usize>,
) -> Prepared {
    Prepared::Rejected {
        key: None,
        rejection: Rejection {
            location,
            document,
            entity_ref: entity_ref.map(ToString::to_string),
            problems: vec![Problem::new(
                "metadata.name",
                "conflict",
                format!(
                    "{} is already provided by {}; an entity can have only one source (rename it or remove the other copy)",
                    existing.entity_ref,
                    existing.provider().unwrap_or("another provider")
                ),
            )],
        },
    }
}

/// Decide again, against `snapshot`, what a prepared entity is: the catalog changed
/// between staging and commit, so an entity may have become unchanged, changed, or
/// another provider's.
fn resettle(snapshot: &Snapshot, provider: &str, prepared: Prepared) -> Prepared {
    let now = |key: &str| {
        snapshot
            .id_of(key)
            .and_then(|id| snapshot.stored(id))
            .cloned()
    };
    match prepared {
        Prepared::Unchanged { key, existing } => match now(&key) {
            Some(current) if Arc::ptr_eq(&current, &existing) => {
                Prepared::Unchanged { key, existing }
            }
            // Changed or removed since: the source still says what `existing` says.
            _ => {
                let stored = Arc::new(existing.refreshed());
                let reported = stored.entity_ref.clone();
                resettle(
                    snapshot,
                    provider,
                    Prepared::Ready(Ready {
                        key,
                        stored,
                        warnings: Vec::new(),
                        reported,
                        location: None,
                        document: None,
                    }),
                )
            }
        },
        Prepared::Ready(ready) => match now(&ready.key) {
            Some(current) if current.provider() != Some(provider) => conflict(
                &current,
                Some(&ready.reported),
                ready.location,
                ready.document,
            ),
            Some(current) if *current.json == *ready.stored.json => Prepared::Unchanged {
                key: ready.key,
                existing: current,
            },
            _ => Prepared::Ready(ready),
        },
        rejected @ Prepared::Rejected { .. } => rejected,
    }
}

fn ref_of(value: &Value) -> Option<EntityRef> {
    let kind = value.get("kind")?.as_str()?;
    let meta = value.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let ns = match meta.get("namespace") {
        None => idp_core::DEFAULT_NAMESPACE,
        Some(v) => v.as_str()?,
    };
    EntityRef::new(kind, ns, name).ok()
}

fn annotate(
    value: &mut Value,
    location: Option<&str>,
    origin_location: Option<&str>,
    revision: Option<&str>,
) {
    if let Value::Object(root) = value {
        root.remove("relations");
        if location.is_none() && revision.is_none() {
            return;
        }
        let Some(Value::Object(meta)) = root.get_mut("metadata") else {
            return;
        };
        let ann = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(ann) = ann else { return };
        if let Some(loc) = location {
            ann.entry(MANAGED_BY_LOCATION)
                .or_insert_with(|| Value::String(loc.to_owned()));
            let origin = origin_location.unwrap_or(loc);
            ann.entry(MANAGED_BY_ORIGIN_LOCATION)
                .or_insert_with(|| Value::String(origin.to_owned()));
        }
        if let Some(rev) = revision {
            ann.insert(SOURCE_REVISION.into(), Value::String(rev.to_owned()));
        }
    }
}

fn terms_of(entity_ref: &EntityRef, value: &Value, provider: &str) -> Vec<Term> {
    let mut terms: Vec<Term> = vec![
        (Field::Kind, lower(entity_ref.kind())),
        (Field::Namespace, lower(entity_ref.namespace())),
        (Field::Provider, provider.into()),
    ];
    let spec = value.get("spec");
    for (field, name) in [
        (Field::Owner, "owner"),
        (Field::Type, "type"),
        (Field::Lifecycle, "lifecycle"),
    ] {
        match spec.and_then(|s| s.get(name)) {
            Some(Value::String(s)) => terms.push((field, lower(s))),
            Some(Value::Array(items)) => {
                for s in items.iter().filter_map(Value::as_str) {
                    terms.push((field, lower(s)));
                }
            }
            _ => {}
        }
    }
    let meta = value.get("metadata");
    if let Some(Value::Array(tags)) = meta.and_then(|m| m.get("tags")) {
        for t in tags.iter().filter_map(Value::as_str) {
            terms.push((Field::Tag, lower(t)));
        }
    }
    if let Some(Value::Object(labels)) = meta.and_then(|m| m.get("labels")) {
        for (k, v) in labels {
            let k = k.to_lowercase();
            if let Some(v) = scalar_text(v) {
                terms.push((Field::Label, format!("{k}={v}").into()));
            }
            terms.push((Field::LabelKey, k.into()));
        }
    }
    terms.sort_by(|a, b| (a.0 as u8, &a.1).cmp(&(b.0 as u8, &b.1)));
    terms.dedup();
    terms
}

fn prepare(
    snapshot: &Snapshot,
    validator: &Validator,
    processors: &[Arc<dyn EntityProcessor>],
    provider: &str,
    input: EntityInput,
) -> Prepared {
    let EntityInput {
        mut value,
        location,
        origin_location,
        revision,
        document,
        warnings,
    } = input;
    annotate(
        &mut value,
        location.as_deref(),
        origin_location.as_deref(),
        revision.as_deref(),
    );
    let refused = processors.iter().find_map(|processor| {
        let _span =
            tracing::trace_span!("catalog.processor", processor = processor.name()).entered();
        let outcome = processor.pre_process(&mut value, location.as_deref());
        outcome.err().map(|e| {
            Problem::new(
                "",
                "processor",
                format!("{}: {}", processor.name(), e.report()),
            )
        })
    });
    let entity_ref = ref_of(&value);
    let key: Option<Box<str>> = entity_ref.as_ref().map(|r| key_of(r).into_boxed_str());
    let rejection = |problems: Vec<Problem>| Rejection {
        location: location.clone(),
        document,
        entity_ref: entity_ref.as_ref().map(ToString::to_string),
        problems,
    };
    if let Some(problem) = refused {
        return Prepared::Rejected {
            key,
            rejection: rejection(vec![problem]),
        };
    }
    // Sized for a typical entity, so the text is not regrown a few times per entity.
    let mut buf = Vec::with_capacity(1024);
    let json: Arc<str> =
        match serde_json::to_writer(&mut buf, &value).map(|()| String::from_utf8(buf)) {
            Ok(Ok(j)) => j.into(),
            Ok(Err(e)) => {
                return Prepared::Rejected {
                    key,
                    rejection: rejection(vec![Problem::new("", "envelope", e.to_string())]),
                };
            }
            Err(e) => {
                return Prepared::Rejected {
                    key,
                    rejection: rejection(vec![Problem::new("", "envelope", e.to_string())]),
                };
            }
        };
    if let Some(k) = &key
        && let Some(id) = snapshot.id_of(k)
        && let Some(existing) = snapshot.stored(id)
    {
        if existing.provider() != Some(provider) {
            return conflict(existing, entity_ref.as_ref(), location.clone(), document);
        }
        if *existing.json == *json {
            return Prepared::Unchanged {
                key: k.clone(),
                existing: Arc::clone(existing),
            };
        }
    }
    let mut rels = Vec::new();
    let problems = validator.validate_and_derive(&value, Some(&mut rels));
    let (Some(entity_ref), Some(key), true) =
        (entity_ref.clone(), key.clone(), problems.is_empty())
    else {
        return Prepared::Rejected {
            key,
            rejection: rejection(problems),
        };
    };
    // The validator derived the relations of a valid built-in entity already.
    let outgoing: Vec<(RelationType, Box<str>)> = rels
        .into_iter()
        .map(|(t, r)| (t, relations::ref_string(&r).into_boxed_str()))
        .collect();
    let terms = terms_of(&entity_ref, &value, provider);
    let warnings = warnings
        .iter()
        .map(|w| format!("{entity_ref}: {w}"))
        .collect();
    Prepared::Ready(Ready {
        key,
        reported: entity_ref.clone(),
        stored: Arc::new(Stored {
            entity_ref,
            json,
            outgoing: outgoing.into(),
            terms: terms.into(),
            rendered: OnceLock::new(),
        }),
        warnings,
        location,
        document,
    })
}

/// Mutations with at least this many changed entities index terms and relations on two
/// threads.
const PARALLEL_LINK: usize = 4096;

/// [`State::refresh`] on the parts of a state; records with ids from `fresh_from` on are
/// left as they are (created by the running mutation, not shared with any snapshot).
fn refresh_in(
    ids: &CowMap<Box<str>, u32>,
    slots: &mut Slots<Arc<Stored>>,
    key: &str,
    fresh_from: u32,
) {
    if let Some(&id) = ids.get(key)
        && id < fresh_from
        && let Some(old) = slots.get(id)
    {
        let fresh = Arc::new(old.refreshed());
        slots.set(id, Some(fresh));
    }
}

/// Add these entities' ids to the posting lists of their terms.
fn link_terms(index: &mut CowMap<Term, Arc<Postings>>, items: &[(u32, Arc<Stored>)]) {
    let mut by_term: FastMap<&Term, Vec<u32>> = FastMap::default();
    for (id, stored) in items {
        for term in stored.terms.iter() {
            by_term.entry(term).or_default().push(*id);
        }
    }
    for (term, mut ids) in by_term {
        ids.sort_unstable();
        if let Some(p) = index.get_or_default_with(term, Clone::clone) {
            Arc::make_mut(p).extend_sorted(&ids);
        }
    }
}

/// [`link_relations`] for the targets in one part of the incoming map, on its own
/// thread: returns the missing targets and the targets whose records need a
/// [`refresh_in`] (done by the caller, which holds the slots).
fn link_relations_part(
    ids: &CowMap<Box<str>, u32>,
    incoming: &mut CowMapPart<'_, Box<str>, Vec<(RelationType, u32)>>,
    items: &[(u32, Arc<Stored>)],
    fresh_from: u32,
) -> (Vec<Box<str>>, Vec<Box<str>>) {
    // Sized for about one target per entity in this half, so it is not regrown.
    let mut by_target: FastMap<std::borrow::Cow<'_, str>, Vec<(RelationType, u32)>> =
        FastMap::with_capacity_and_hasher(items.len() / 2, FastState::default());
    for (id, stored) in items {
        for (t, target) in stored.outgoing.iter() {
            let key = lower_cow(target);
            if incoming.owns(&*key) {
                by_target.entry(key).or_default().push((*t, *id));
            }
        }
    }
    let (mut missing, mut refresh) = (Vec::new(), Vec::new());
    for (key, sources) in by_target {
        if let Some(list) = incoming.get_or_default_with(&*key, |k: &str| k.into()) {
            list.extend(sources);
        }
        match ids.get(&*key) {
            None => missing.push(key.into_owned().into_boxed_str()),
            Some(&id) if id < fresh_from => refresh.push(key.into_owned().into_boxed_str()),
            Some(_) => {}
        }
    }
    (missing, refresh)
}

/// Add these entities' outgoing relations to the incoming lists of their targets,
/// replace the targets' records (their relations changed), and return the targets
/// that are not in the catalog.
fn link_relations(
    ids: &CowMap<Box<str>, u32>,
    slots: &mut Slots<Arc<Stored>>,
    incoming: &mut CowMap<Box<str>, Vec<(RelationType, u32)>>,
    items: &[(u32, Arc<Stored>)],
    fresh_from: u32,
) -> Vec<Box<str>> {
    let mut by_target: FastMap<std::borrow::Cow<'_, str>, Vec<(RelationType, u32)>> =
        FastMap::default();
    for (id, stored) in items {
        for (t, target) in stored.outgoing.iter() {
            by_target
                .entry(lower_cow(target))
                .or_default()
                .push((*t, *id));
        }
    }
    let mut missing = Vec::new();
    for (key, sources) in by_target {
        if let Some(list) = incoming.get_or_default_with(&*key, |k: &str| k.into()) {
            list.extend(sources);
        }
        if ids.get(&*key).is_none() {
            missing.push(key.into_owned().into_boxed_str());
        } else {
            refresh_in(ids, slots, &key, fresh_from);
        }
    }
    missing
}

impl State {
    fn unlink(&mut self, id: u32, stored: &Stored) {
        for term in stored.terms.iter() {
            if let Some(p) = self.index.get_mut(term) {
                Arc::make_mut(p).remove(id);
                if p.is_empty() {
                    self.index.remove(term);
                }
            }
        }
        for (t, target) in stored.outgoing.iter() {
            let tk = lower_cow(target);
            if let Some(list) = self.incoming.get_mut(&*tk) {
                list.retain(|(rt, sid)| !(*rt == *t && *sid == id));
                if list.is_empty() {
                    self.incoming.remove(&*tk);
                }
            }
            self.refresh(&tk);
        }
    }

    /// Replace the record of the entity `key` (if present) by one with an empty
    /// rendering: a relation pointing at it was added or removed. (Always, even when
    /// nothing is rendered yet: a reader of an older snapshot sharing the record may be
    /// rendering it right now.)
    fn refresh(&mut self, key: &str) {
        refresh_in(&self.ids, &mut self.slots, key, u32::MAX);
    }

    /// Index these entities (in bulk: each index list and incoming list is touched once);
    /// returns the relation targets (keys) that are not in the catalog.
    ///
    /// Ids from `fresh_from` on were created by this mutation: no older snapshot shares
    /// their records, so a new incoming relation does not need to replace them. Large
    /// batches build the field index on a second thread while the relations are stitched.
    fn link_many(&mut self, items: &[(u32, Arc<Stored>)], fresh_from: u32) -> Vec<Box<str>> {
        let State {
            ids,
            slots,
            index,
            incoming,
            ..
        } = self;
        if items.len() < PARALLEL_LINK || workers(items.len()) < 2 {
            link_terms(index, items);
            return link_relations(ids, slots, incoming, items, fresh_from);
        }
        // Two threads: one indexes the terms and stitches the relations whose targets
        // fall in the first half of the incoming map's shards, the other the rest.
        let ids_ro: &CowMap<Box<str>, u32> = ids;
        let (mut first, mut second) = incoming.split_in_two();
        let ((mut missing, refresh, added_a), (missing_b, refresh_b, added_b)) =
            std::thread::scope(|scope| {
                let other = scope.spawn(|| {
                    link_terms(index, items);
                    let (m, r) = link_relations_part(ids_ro, &mut first, items, fresh_from);
                    (m, r, first.added)
                });
                let (m, r) = link_relations_part(ids_ro, &mut second, items, fresh_from);
                match other.join() {
                    Ok(a) => (a, (m, r, second.added)),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            });
        incoming.add_len(added_a + added_b);
        for key in refresh.iter().chain(&refresh_b) {
            refresh_in(ids, slots, key, fresh_from);
        }
        missing.extend(missing_b);
        missing
    }

    /// Insert or replace without indexing (the caller indexes with
    /// [`State::link_many`]); `existing` is the id of `key` in this state, if any.
    /// Returns whether it was new, its id and the stored entity.
    fn put(
        &mut self,
        key: Box<str>,
        existing: Option<u32>,
        stored: Arc<Stored>,
    ) -> (bool, u32, Arc<Stored>) {
        if let Some(id) = existing {
            if let Some(old) = self.slots.get(id).cloned() {
                self.unlink(id, &old);
            }
            self.slots.set(id, Some(Arc::clone(&stored)));
            (false, id, stored)
        } else {
            let id = self.next_id;
            self.next_id += 1;
            self.slots.set(id, Some(Arc::clone(&stored)));
            self.ids.insert(key, id);
            (true, id, stored)
        }
    }

    fn delete(&mut self, key: &str) -> Option<EntityRef> {
        let id = self.ids.remove(key)?;
        let old = self.slots.get(id).cloned()?;
        self.unlink(id, &old);
        self.slots.set(id, None);
        Some(old.entity_ref.clone())
    }
}

/// The entities one mutation named: ids of entities in the catalog, keys of new ones
/// that were rejected (so a later copy in the same source is still a duplicate).
/// (A set, not a bitmap over all ids: a delta of one entity must not cost O(catalog).)
#[derive(Default)]
struct Touched {
    /// Ids from here on were created by this mutation, and so are all touched: they
    /// are not stored (a first ingest of 250,000 entities would fill the set for
    /// nothing).
    fresh_from: u32,
    ids: HashSet<u32, FastState>,
    new_keys: HashSet<Box<str>>,
}

impl Touched {
    fn mark_id(&mut self, id: u32) {
        if id < self.fresh_from {
            self.ids.insert(id);
        }
    }

    fn has_id(&self, id: u32) -> bool {
        id >= self.fresh_from || self.ids.contains(&id)
    }

    fn mark(&mut self, state: &State, key: Box<str>) {
        match state.ids.get(&key) {
            Some(&id) => self.mark_id(id),
            None => {
                self.new_keys.insert(key);
            }
        }
    }
}

/// The default [`Catalog`]: in memory, indexed, copy-on-write, fed by providers.
///
/// ```
/// let catalog = idp_catalog::InMemoryCatalog::new();
/// assert!(catalog.snapshot().is_empty());
/// ```
pub struct InMemoryCatalog {
    state: RwLock<Arc<State>>,
    writer: Mutex<()>,
    validator: Arc<Validator>,
    processors: Arc<[Arc<dyn EntityProcessor>]>,
    /// Counts the stages (part of their identity: a commit refuses entities staged by
    /// another stage).
    stages: AtomicU64,
}

impl fmt::Debug for InMemoryCatalog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InMemoryCatalog")
            .field("entities", &self.snapshot().len())
            .finish_non_exhaustive()
    }
}

impl Default for InMemoryCatalog {
    fn default() -> Self {
        Self::new()
    }
}

/// Inputs per unit of work when validating in parallel.
const PREPARE_CHUNK: usize = 1024;

/// The parallelism used to validate large mutations.
fn workers(n: usize) -> usize {
    if n < 2048 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |p| p.get().min(8))
    }
}

impl InMemoryCatalog {
    /// An empty catalog for the built-in kinds.
    ///
    /// ```
    /// let _ = idp_catalog::InMemoryCatalog::new();
    /// ```
    pub fn new() -> Self {
        Self::with_validator(Validator::new())
    }

    /// An empty catalog validating with `validator` (custom kinds registered).
    ///
    /// ```
    /// let c = idp_catalog::InMemoryCatalog::with_validator(idp_catalog::validate::Validator::new());
    /// # let _ = c;
    /// ```
    pub fn with_validator(validator: Validator) -> Self {
        Self {
            state: RwLock::new(Arc::new(State::new())),
            writer: Mutex::new(()),
            validator: Arc::new(validator),
            processors: Arc::new([]),
            stages: AtomicU64::new(0),
        }
    }

    /// Run `processor` on every entity before validation, after the processors added
    /// before it (see [`processor`](crate::processor)).
    ///
    /// ```
    /// # use idp_catalog::processor::EntityProcessor;
    /// # #[derive(Debug)] struct Uid;
    /// # impl EntityProcessor for Uid {
    /// #     fn name(&self) -> &str { "uid" }
    /// #     fn pre_process(&self, e: &mut serde_json::Value, _: Option<&str>) -> idp_core::Result<()> {
    /// #         e["metadata"]["uid"] = "0000".into(); Ok(())
    /// #     }
    /// # }
    /// let catalog = idp_catalog::InMemoryCatalog::new().with_processor(Uid);
    /// # let _ = catalog;
    /// ```
    #[must_use]
    pub fn with_processor(mut self, processor: impl EntityProcessor + 'static) -> Self {
        let mut all: Vec<Arc<dyn EntityProcessor>> = self.processors.iter().cloned().collect();
        all.push(Arc::new(processor));
        self.processors = all.into();
        self
    }

    /// The current snapshot; keep it as long as you like, it never changes.
    ///
    /// ```
    /// let s = idp_catalog::InMemoryCatalog::new().snapshot();
    /// assert_eq!(s.len(), 0);
    /// ```
    pub fn snapshot(&self) -> Snapshot {
        let state = match self.state.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        };
        Snapshot { state }
    }

    fn publish(&self, state: State) {
        let state = Arc::new(state);
        match self.state.write() {
            Ok(mut guard) => *guard = state,
            Err(poisoned) => *poisoned.into_inner() = state,
        }
    }

    /// Apply a provider's mutation: validate what changed, re-stitch its relations,
    /// remove what disappeared (full mutations), and publish a new snapshot.
    ///
    /// This is [`stage`](Self::stage), [`Stage::prepare_all`] and
    /// [`commit`](Self::commit) in one call, holding the writer lock throughout.
    ///
    /// ```
    /// use idp_catalog::{InMemoryCatalog, Mutation, EntityInput};
    /// let c = InMemoryCatalog::new();
    /// let r = c.apply("p", Mutation::Full(vec![EntityInput::new(serde_json::json!({"kind": "Nope"}))]));
    /// assert_eq!(r.rejected.len(), 1);
    /// ```
    pub fn apply(&self, provider: &str, mutation: Mutation) -> IngestReport {
        let _span = tracing::info_span!("catalog.apply", provider).entered();
        let _writer = lock(&self.writer);
        let stage = self.stage(provider);
        let (inputs, removals, full) = match mutation {
            Mutation::Full(inputs) => (inputs, Vec::new(), true),
            Mutation::Delta { upserts, removals } => (upserts, removals, false),
        };
        let started = std::time::Instant::now();
        let prepared = stage.prepare_inputs(inputs);
        self.commit_prepared(&stage.snapshot, provider, prepared, removals, full, started)
    }

    /// Start reading a provider's entities into the catalog: the [`Stage`] validates
    /// each entity as soon as the provider has read it, on the provider's own threads,
    /// and [`commit`](Self::commit) applies them all at once. A provider that hands its
    /// entities over file by file this way never holds its whole source parsed in
    /// memory ([`provider::refresh`](crate::provider::refresh) does this).
    ///
    /// ```
    /// use idp_catalog::{EntityInput, InMemoryCatalog, StagedMutation};
    /// let catalog = InMemoryCatalog::new();
    /// let stage = catalog.stage("example");
    /// let staged = stage.prepare(EntityInput::new(serde_json::json!({
    ///     "apiVersion": "backstage.io/v1alpha1", "kind": "Group",
    ///     "metadata": {"name": "team-a"}, "spec": {"type": "team", "children": []}})));
    /// let report = catalog.commit(&stage, StagedMutation::Full(vec![staged]));
    /// assert_eq!(report.added.len(), 1);
    /// ```
    pub fn stage(&self, provider: &str) -> Stage {
        // Unique across catalogs too: the count of this catalog's stages, hashed with
        // fresh random keys.
        let n = self.stages.fetch_add(1, Ordering::Relaxed);
        let id =
            std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), n);
        Stage {
            id,
            snapshot: self.snapshot(),
            validator: Arc::clone(&self.validator),
            processors: Arc::clone(&self.processors),
            provider: provider.into(),
        }
    }

    /// Apply what `stage` prepared, like [`apply`](Self::apply) applies a
    /// [`Mutation`]. Entities staged before another mutation changed the catalog are
    /// checked again (unchanged, changed, or now another provider's); entities staged by
    /// a different [`Stage`] are rejected.
    ///
    /// ```
    /// use idp_catalog::{EntityInput, InMemoryCatalog, StagedMutation};
    /// let catalog = InMemoryCatalog::new();
    /// let stage = catalog.stage("example");
    /// let report = catalog.commit(&stage, StagedMutation::Delta {
    ///     upserts: vec![],
    ///     removals: vec!["component:default/gone".parse().unwrap()],
    /// });
    /// assert!(report.removed.is_empty());
    /// ```
    pub fn commit(&self, stage: &Stage, mutation: StagedMutation) -> IngestReport {
        let _span = tracing::info_span!("catalog.commit", provider = &*stage.provider).entered();
        let _writer = lock(&self.writer);
        let started = std::time::Instant::now();
        let snapshot = self.snapshot();
        let (staged, removals, full) = match mutation {
            StagedMutation::Full(staged) => (staged, Vec::new(), true),
            StagedMutation::Delta { upserts, removals } => (upserts, removals, false),
        };
        let generation = snapshot.state.generation;
        let prepared = staged
            .into_iter()
            .map(|s| {
                if s.stage != stage.id {
                    s.foreign()
                } else if s.generation == generation {
                    s.prepared
                } else {
                    resettle(&snapshot, &stage.provider, s.prepared)
                }
            })
            .collect();
        self.commit_prepared(
            &snapshot,
            &stage.provider,
            prepared,
            removals,
            full,
            started,
        )
    }

    /// The serial part of a mutation (the caller holds the writer lock and `snapshot`
    /// is current): put, link, remove, publish.
    fn commit_prepared(
        &self,
        snapshot: &Snapshot,
        provider: &str,
        prepared: Vec<Prepared>,
        removals: Vec<EntityRef>,
        full: bool,
        started: std::time::Instant,
    ) -> IngestReport {
        let prepared_at = started.elapsed();
        let mut state = (*snapshot.state).clone();
        state.generation += 1;
        let fresh_from = state.next_id;
        let mut report = IngestReport::default();
        // Entities of this mutation, by id (and by key for rejected new ones).
        let mut touched = Touched {
            fresh_from,
            ..Touched::default()
        };
        let mut changed: Vec<u32> = Vec::with_capacity(prepared.len());
        let mut pending: Vec<(u32, Arc<Stored>)> = Vec::with_capacity(prepared.len());
        for p in prepared {
            match p {
                Prepared::Unchanged { key, .. } => {
                    report.unchanged += 1;
                    touched.mark(&state, key);
                }
                Prepared::Rejected { key, rejection } => {
                    if let Some(k) = key {
                        touched.mark(&state, k);
                    }
                    report.rejected.push(rejection);
                }
                Prepared::Ready(Ready {
                    key,
                    stored,
                    warnings,
                    reported,
                    ..
                }) => {
                    let existing = state.ids.get(&*key).copied();
                    let duplicate = match existing {
                        Some(id) => touched.has_id(id),
                        None => touched.new_keys.contains(&key),
                    };
                    if duplicate {
                        let r = &stored.entity_ref;
                        report.rejected.push(Rejection {
                            location: None,
                            document: None,
                            entity_ref: Some(r.to_string()),
                            problems: vec![Problem::new(
                                "metadata.name",
                                "duplicate",
                                format!(
                                    "{r} is defined twice in this source; the first definition wins"
                                ),
                            )],
                        });
                        continue;
                    }
                    report.warnings.extend(warnings);
                    let r = reported;
                    let (new, id, stored) = state.put(key, existing, stored);
                    pending.push((id, stored));
                    touched.mark_id(id);
                    if new {
                        report.added.push(r);
                    } else {
                        report.updated.push(r);
                    }
                    changed.push(id);
                }
            }
        }
        let put_at = started.elapsed();
        let mut absent = state.link_many(&pending, fresh_from);
        drop(pending);
        let linked_at = started.elapsed();
        if full {
            let provider_key: Term = (Field::Provider, provider.into());
            let gone: Vec<Box<str>> = state
                .index
                .get(&provider_key)
                .map(|p| {
                    p.iter()
                        .filter(|&id| !touched.has_id(id))
                        .filter_map(|id| state.slots.get(id))
                        .map(|s| key_of(&s.entity_ref).into_boxed_str())
                        .collect()
                })
                .unwrap_or_default();
            for key in gone {
                if let Some(r) = state.delete(&key) {
                    report.removed.push(r);
                    absent.push(key);
                }
            }
        }
        for r in removals {
            let key = key_of(&r);
            let owned = state
                .ids
                .get(key.as_str())
                .and_then(|&id| state.slots.get(id))
                .is_some_and(|s| s.provider() == Some(provider));
            if owned && let Some(r) = state.delete(&key) {
                report.removed.push(r);
                absent.push(key.into_boxed_str());
            }
        }
        let after = Snapshot {
            state: Arc::new(state),
        };
        let removed_at = started.elapsed();
        // A changed entity's relation dangles when its target was missing when the
        // relations were stitched, or was removed afterwards, and is not there now.
        absent.retain(|k| after.id_of(k).is_none());
        report.dangling = after.dangling_of_ids(&changed, &absent);
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        tracing::debug!(
            prepare_ms = ms(prepared_at),
            put_ms = ms(put_at.saturating_sub(prepared_at)),
            link_ms = ms(linked_at.saturating_sub(put_at)),
            remove_ms = ms(removed_at.saturating_sub(linked_at)),
            dangling_ms = ms(started.elapsed().saturating_sub(removed_at)),
            added = report.added.len(),
            updated = report.updated.len(),
            unchanged = report.unchanged,
            removed = report.removed.len(),
            rejected = report.rejected.len(),
            "catalog mutation applied"
        );
        let state = Arc::try_unwrap(after.state).unwrap_or_else(|arc| (*arc).clone());
        self.publish(state);
        report
    }

    /// The validator in use.
    ///
    /// ```
    /// assert!(idp_catalog::InMemoryCatalog::new().validator().custom_kinds().is_empty());
    /// ```
    pub fn validator(&self) -> &Validator {
        &self.validator
    }
}

/// A provider's read in progress, from [`InMemoryCatalog::stage`]: it validates entities
/// against the catalog as it was when the stage started, on whichever thread calls it,
/// and [`InMemoryCatalog::commit`] applies the result. Cheap to clone and `Send`, so a
/// provider can hand it to its reader threads.
///
/// ```
/// use idp_catalog::{EntityInput, InMemoryCatalog, StagedMutation};
/// let catalog = InMemoryCatalog::new();
/// let stage = catalog.stage("example");
/// let staged = std::thread::scope(|s| {
///     let stage = &stage;
///     let reader = s.spawn(move || stage.prepare(EntityInput::new(serde_json::json!({
///         "apiVersion": "backstage.io/v1alpha1", "kind": "System",
///         "metadata": {"name": "payments"}, "spec": {"owner": "team-a"}}))));
///     reader.join().unwrap()
/// });
/// let report = catalog.commit(&stage, StagedMutation::Full(vec![staged]));
/// assert_eq!(report.added.len(), 1);
/// assert_eq!(report.dangling.len(), 1); // group:default/team-a is not in the catalog
/// ```
#[derive(Debug, Clone)]
pub struct Stage {
    id: u64,
    snapshot: Snapshot,
    validator: Arc<Validator>,
    processors: Arc<[Arc<dyn EntityProcessor>]>,
    provider: Arc<str>,
}

/// One entity validated by a [`Stage`] (accepted, rejected or unchanged), waiting for
/// [`InMemoryCatalog::commit`]. It holds the entity's compact JSON text, not its
/// parsed tree.
///
/// ```
/// let catalog = idp_catalog::InMemoryCatalog::new();
/// let staged = catalog.stage("p").prepare(idp_catalog::EntityInput::new(serde_json::json!({"kind": "Nope"})));
/// assert!(staged.is_rejected());
/// ```
#[derive(Debug)]
pub struct Staged {
    prepared: Prepared,
    stage: u64,
    generation: u64,
}

impl Staged {
    /// Whether validation refused it (the commit reports why).
    ///
    /// ```
    /// let catalog = idp_catalog::InMemoryCatalog::new();
    /// let staged = catalog.stage("p").prepare(idp_catalog::EntityInput::new(serde_json::json!({"kind": "Nope"})));
    /// assert!(staged.is_rejected());
    /// ```
    pub fn is_rejected(&self) -> bool {
        matches!(self.prepared, Prepared::Rejected { .. })
    }

    /// What a commit makes of an entity staged by another stage.
    fn foreign(self) -> Prepared {
        match self.prepared {
            rejected @ Prepared::Rejected { .. } => rejected,
            Prepared::Unchanged { existing, .. } => Prepared::Rejected {
                key: None,
                rejection: Rejection {
                    location: None,
                    document: None,
                    entity_ref: Some(existing.entity_ref.to_string()),
                    problems: vec![foreign_problem()],
                },
            },
            Prepared::Ready(Ready {
                reported,
                location,
                document,
                ..
            }) => Prepared::Rejected {
                key: None,
                rejection: Rejection {
                    location,
                    document,
                    entity_ref: Some(reported.to_string()),
                    problems: vec![foreign_problem()],
                },
            },
        }
    }
}

fn foreign_problem() -> Problem {
    Problem::new(
        "",
        "stage",
        "this entity was staged by another Stage (of another catalog or read); commit it with the Stage that prepared it",
    )
}

/// A [`Mutation`] whose entities a [`Stage`] has prepared.
///
/// ```
/// let m = idp_catalog::StagedMutation::Full(vec![]);
/// assert!(matches!(m, idp_catalog::StagedMutation::Full(v) if v.is_empty()));
/// ```
#[derive(Debug)]
pub enum StagedMutation {
    /// The provider's complete set: entities it provided before and not now are removed.
    Full(Vec<Staged>),
    /// Changes only.
    Delta {
        /// Entities added or changed.
        upserts: Vec<Staged>,
        /// Entities gone from the source.
        removals: Vec<EntityRef>,
    },
}

impl Stage {
    /// The provider this stage reads for.
    ///
    /// ```
    /// assert_eq!(idp_catalog::InMemoryCatalog::new().stage("git").provider(), "git");
    /// ```
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Validate one entity now, on this thread: placeholders must already be resolved.
    /// Its parsed tree is dropped here; the result keeps the compact JSON text.
    ///
    /// ```
    /// let catalog = idp_catalog::InMemoryCatalog::new();
    /// let staged = catalog.stage("p").prepare(idp_catalog::EntityInput::new(serde_json::json!({
    ///     "apiVersion": "backstage.io/v1alpha1", "kind": "Group",
    ///     "metadata": {"name": "team-a"}, "spec": {"type": "team", "children": []}})));
    /// assert!(!staged.is_rejected());
    /// ```
    pub fn prepare(&self, input: EntityInput) -> Staged {
        self.staged(self.prepare_one(input))
    }

    /// Validate `inputs`, on every core when there are many; the result is in the same
    /// order.
    ///
    /// ```
    /// let catalog = idp_catalog::InMemoryCatalog::new();
    /// let inputs = idp_catalog::generate::org(50, 1).into_iter().map(idp_catalog::EntityInput::from).collect();
    /// let staged = catalog.stage("p").prepare_all(inputs);
    /// assert_eq!(staged.len(), 50);
    /// ```
    pub fn prepare_all(&self, inputs: Vec<EntityInput>) -> Vec<Staged> {
        self.prepare_inputs(inputs)
            .into_iter()
            .map(|p| self.staged(p))
            .collect()
    }

    /// Validate a provider's [`Mutation`].
    ///
    /// ```
    /// let catalog = idp_catalog::InMemoryCatalog::new();
    /// let stage = catalog.stage("p");
    /// let staged = stage.prepare_mutation(idp_catalog::Mutation::Full(vec![]));
    /// assert!(catalog.commit(&stage, staged).is_clean());
    /// ```
    pub fn prepare_mutation(&self, mutation: Mutation) -> StagedMutation {
        match mutation {
            Mutation::Full(inputs) => StagedMutation::Full(self.prepare_all(inputs)),
            Mutation::Delta { upserts, removals } => StagedMutation::Delta {
                upserts: self.prepare_all(upserts),
                removals,
            },
        }
    }

    fn staged(&self, prepared: Prepared) -> Staged {
        Staged {
            prepared,
            stage: self.id,
            generation: self.snapshot.state.generation,
        }
    }

    fn prepare_one(&self, input: EntityInput) -> Prepared {
        prepare(
            &self.snapshot,
            &self.validator,
            &self.processors,
            &self.provider,
            input,
        )
    }

    /// Prepare `inputs` in order, on every core for large batches.
    fn prepare_inputs(&self, inputs: Vec<EntityInput>) -> Vec<Prepared> {
        let n = workers(inputs.len());
        if n <= 1 {
            return inputs.into_iter().map(|i| self.prepare_one(i)).collect();
        }
        // Workers take the next chunk as they finish one (on a shared machine one thread
        // may get less CPU than the other), and the results are put back in order.
        let mut chunks: Vec<Mutex<Vec<EntityInput>>> = Vec::new();
        let mut iter = inputs.into_iter();
        loop {
            let c: Vec<EntityInput> = iter.by_ref().take(PREPARE_CHUNK).collect();
            if c.is_empty() {
                break;
            }
            chunks.push(Mutex::new(c));
        }
        let next = AtomicUsize::new(0);
        let work = || {
            let mut done = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(chunk) = chunks.get(i) else {
                    return done;
                };
                let inputs = std::mem::take(&mut *lock(chunk));
                let prepared: Vec<Prepared> = inputs
                    .into_iter()
                    .map(|input| self.prepare_one(input))
                    .collect();
                done.push((i, prepared));
            }
        };
        let mut done: Vec<(usize, Vec<Prepared>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..n).map(|_| scope.spawn(work)).collect();
            handles
                .into_iter()
                .flat_map(|h| match h.join() {
                    Ok(done) => done,
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        });
        done.sort_unstable_by_key(|(i, _)| *i);
        let mut out = Vec::with_capacity(done.iter().map(|(_, p)| p.len()).sum());
        for (_, prepared) in done {
            out.extend(prepared);
        }
        out
    }
}

/// The provider name used for entities written through [`Catalog::upsert`].
pub const API_PROVIDER: &str = "api";

#[async_trait]
impl Catalog for InMemoryCatalog {
    async fn get(&self, entity: &EntityRef) -> Result<Option<Entity>> {
        let _span = tracing::debug_span!("catalog.get", entity = %entity).entered();
        Ok(self.snapshot().get(entity))
    }

    async fn query(&self, query: &EntityQuery) -> Result<EntityPage> {
        let _span = tracing::debug_span!("catalog.query", groups = query.filter.len()).entered();
        self.snapshot().query(query)
    }

    async fn upsert(&self, entity: Entity) -> Result<()> {
        let _span = tracing::debug_span!("catalog.upsert", entity = %entity.entity_ref()).entered();
        let provider = self
            .snapshot()
            .provider_of(entity.entity_ref())
            .unwrap_or_else(|| API_PROVIDER.to_owned());
        let report = self.apply(
            &provider,
            Mutation::Delta {
                upserts: vec![EntityInput::new(entity.into())],
                removals: Vec::new(),
            },
        );
        match report.rejected.first() {
            Some(r) => Err(Error::invalid_input(format!("entity rejected: {r}"))),
            None => Ok(()),
        }
    }

    async fn remove(&self, entity: &EntityRef) -> Result<bool> {
        let _span = tracing::debug_span!("catalog.remove", entity = %entity).entered();
        let Some(provider) = self.snapshot().provider_of(entity) else {
            return Ok(false);
        };
        let report = self.apply(
            &provider,
            Mutation::Delta {
                upserts: Vec::new(),
                removals: vec![entity.clone()],
            },
        );
        Ok(!report.removed.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lookup_handles_dotted_keys() {
        let v = json!({"metadata": {"annotations": {"backstage.io/techdocs-ref": "dir:."}, "tags": ["a", "b"]}});
        let mut out = Vec::new();
        lookup(
            &v,
            "metadata.annotations.backstage.io/techdocs-ref",
            &mut out,
        );
        assert_eq!(out, [&json!("dir:.")]);
        out.clear();
        lookup(&v, "metadata.tags", &mut out);
        assert_eq!(out.len(), 2);
    }

    /// The fast page path agrees with the general one (whole match list, then a page)
    /// on every page of every query, totals included.
    #[test]
    fn fast_pages_match_the_full_match_list() {
        let catalog = InMemoryCatalog::new();
        let inputs = crate::generate::org(1500, 3)
            .into_iter()
            .map(EntityInput::from)
            .collect();
        let report = catalog.apply("p", Mutation::Full(inputs));
        assert!(report.rejected.is_empty());
        let snap = catalog.snapshot();
        let filters: &[&[&str]] = &[
            &["kind=component,spec.type=service"],
            &["kind=component,spec.type=service,spec.lifecycle=production"],
            &["spec.owner=team-7"],
            &["kind=component,spec.type=service,website"],
            &["kind=api,kind=resource"],
            &["kind=group,relations.parentOf=group:default/team-1"],
            &["kind=nope"],
            &["metadata.labels.tier=gold,kind=component"],
            &["metadata.labels.tier", "kind=system"],
            &["metadata.labels.TIER=Gold,metadata.labels.tier=silver"],
            &["kind=component,spec.type=nope"],
            &["kind=system"],
        ];
        let mut fast_used = 0;
        for f in filters {
            for limit in [1, 7, 500] {
                let mut q = crate::filter::parse_filters(f).unwrap().limit(limit);
                let all = snap.matching_ids(&q);
                let mut seen = Vec::new();
                for _ in 0..2000 {
                    if snap.fast_page(&q).is_some() {
                        fast_used += 1;
                    }
                    let page = snap.query(&q).unwrap();
                    assert_eq!(page.total, all.len(), "{f:?}");
                    assert_eq!(snap.count(&q), all.len(), "{f:?}");
                    let (ids, next) = Snapshot::page_ids(&q, &all).unwrap();
                    assert_eq!(page.next_cursor, next, "{f:?} limit {limit}");
                    let want: Vec<String> = ids
                        .iter()
                        .map(|&id| snap.stored(id).unwrap().entity_ref.to_string())
                        .collect();
                    let got: Vec<String> = page
                        .entities
                        .iter()
                        .map(|e| e.entity_ref().to_string())
                        .collect();
                    assert_eq!(got, want, "{f:?} limit {limit}");
                    seen.extend(got);
                    match page.next_cursor {
                        Some(c) => q.cursor = Some(c),
                        None => break,
                    }
                }
                assert_eq!(seen.len(), all.len(), "{f:?}");
            }
        }
        assert!(fast_used > 0);
        // No filter at all: every entity, paged.
        let q = EntityQuery::new().limit(400);
        let page = snap.query(&q).unwrap();
        assert_eq!((page.total, page.entities.len()), (snap.len(), 400));
        let p2 = snap
            .query(&EntityQuery {
                cursor: page.next_cursor.clone(),
                ..q.clone()
            })
            .unwrap();
        assert_ne!(p2.entities[0].entity_ref(), page.entities[399].entity_ref());
        assert!(
            snap.query(&EntityQuery {
                cursor: Some("x".into()),
                ..q
            })
            .is_err()
        );
    }

    #[test]
    fn intersection_of_sorted_lists() {
        assert_eq!(intersect(&[1, 3, 5, 9], &[2, 3, 4, 5, 6, 10]), [3, 5]);
        assert!(intersect(&[], &[1]).is_empty());
        assert!(intersect(&[7], &[]).is_empty());
    }

    #[test]
    fn projection_keeps_only_fields() {
        let v = json!({"kind": "A", "metadata": {"name": "n", "title": "t"}});
        assert_eq!(
            project(
                &v,
                &["metadata.name".into(), "kind".into(), "nope.x".into()]
            ),
            json!({"kind": "A", "metadata": {"name": "n"}})
        );
    }
}
