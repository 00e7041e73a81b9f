//! The ports: the traits a platform is assembled from, each replaceable.
//!
//! Every port is object-safe, `Send + Sync`, and used as `Arc<dyn Port>`. Required
//! methods are few and take option structs; conveniences live in an extension trait
//! (`CatalogExt`, `DeployerExt`, `PolicyExt`) implemented for every implementation.
//! Cross-cutting behaviour (retry, dry-run, audit) is a wrapper that implements the same
//! trait, so a port never needs flags for it.
//!
//! | port | answers |
//! |---|---|
//! | [`Catalog`] | get / query / upsert / remove entities |
//! | [`Deployer`] | deploy a [`Release`], status, history, rollback |
//! | [`Policy`] | evaluate one object in a context (pure, sync) |
//! | [`Mutation`] | rewrite one object before it is checked (idempotent) |
//! | [`EnvironmentProvider`] | ensure / destroy / list environments |
//! | [`EventSink`] | record what the platform did |

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;

use crate::error::Result;
use crate::ids::{EntityRef, EnvironmentName};
use crate::manifest::{ManifestSet, Object};
use crate::model::{
    Deployment, DeploymentId, Entity, Environment, EnvironmentSpec, PolicyContext, Release,
    Violation,
};
use crate::platform::PlatformEvent;

/// One condition of an entity filter: the field at `key` (a dotted path such as
/// `kind`, `metadata.name`, `spec.type`, `relations.ownedBy`) equals one of `values`
/// (compared case-insensitively, as Backstage does), or, when `values` is empty, exists.
///
/// ```
/// use idp_core::ports::FilterCondition;
/// let c = FilterCondition::equals("kind", "component");
/// assert_eq!(c.values, vec!["component".to_string()]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilterCondition {
    /// Dotted field path.
    pub key: String,
    /// Accepted values; empty means "the field exists".
    pub values: Vec<String>,
}

impl FilterCondition {
    /// `key` equals `value`.
    ///
    /// ```
    /// let c = idp_core::ports::FilterCondition::equals("spec.type", "service");
    /// assert_eq!(c.key, "spec.type");
    /// ```
    pub fn equals(key: impl Into<String>, value: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            values: vec![value.into()],
        }
    }

    /// `key` exists.
    ///
    /// ```
    /// assert!(idp_core::ports::FilterCondition::exists("spec.owner").values.is_empty());
    /// ```
    pub fn exists(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            values: Vec::new(),
        }
    }
}

/// Which entities a [`Catalog::query`] returns, in Backstage's filter semantics: the
/// entity matches when **any** of the groups matches, and a group matches when **all** of
/// its conditions do. No groups: every entity.
///
/// ```
/// use idp_core::ports::{EntityQuery, FilterCondition};
/// let q = EntityQuery::new()
///     .any_of(vec![FilterCondition::equals("kind", "component"), FilterCondition::equals("spec.type", "service")])
///     .any_of(vec![FilterCondition::equals("kind", "api")])
///     .limit(50);
/// assert_eq!(q.filter.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EntityQuery {
    /// OR of AND-groups.
    pub filter: Vec<Vec<FilterCondition>>,
    /// Free-text term matched against names, titles and descriptions.
    pub text: Option<String>,
    /// Maximum number of entities to return (`None`: the implementation's default page).
    pub limit: Option<usize>,
    /// Opaque cursor from a previous [`EntityPage::next_cursor`].
    pub cursor: Option<String>,
}

impl EntityQuery {
    /// Every entity.
    ///
    /// ```
    /// assert!(idp_core::ports::EntityQuery::new().filter.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Add an AND-group of conditions, ORed with the others.
    ///
    /// ```
    /// # use idp_core::ports::{EntityQuery, FilterCondition};
    /// let q = EntityQuery::new().any_of(vec![FilterCondition::equals("kind", "group")]);
    /// assert_eq!(q.filter.len(), 1);
    /// ```
    pub fn any_of(mut self, all_of: Vec<FilterCondition>) -> Self {
        self.filter.push(all_of);
        self
    }

    /// Set the page size.
    ///
    /// ```
    /// assert_eq!(idp_core::ports::EntityQuery::new().limit(5).limit, Some(5));
    /// ```
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = Some(limit);
        self
    }

    /// Continue after a previous page.
    ///
    /// ```
    /// assert!(idp_core::ports::EntityQuery::new().after("c1").cursor.is_some());
    /// ```
    pub fn after(mut self, cursor: impl Into<String>) -> Self {
        self.cursor = Some(cursor.into());
        self
    }

    /// Set a free-text term.
    ///
    /// ```
    /// assert!(idp_core::ports::EntityQuery::new().text("cart").text.is_some());
    /// ```
    pub fn text(mut self, term: impl Into<String>) -> Self {
        self.text = Some(term.into());
        self
    }
}

/// One page of a [`Catalog::query`].
///
/// ```
/// let page = idp_core::ports::EntityPage { entities: vec![], total: 0, next_cursor: None };
/// assert!(page.next_cursor.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EntityPage {
    /// The entities in this page, in a stable order.
    pub entities: Vec<Entity>,
    /// How many entities match in all.
    pub total: usize,
    /// Cursor for the next page, when there is one.
    pub next_cursor: Option<String>,
}

/// The software catalog: entities by reference, by query, and their changes.
///
/// The default implementation (`InMemoryCatalog` in `idp-catalog`) is indexed and fed by
/// entity providers; a platform can put its own store behind this trait.
///
/// ```
/// use std::sync::Arc;
/// use idp_core::{Catalog, CatalogExt, EntityRef};
///
/// async fn owner_of(catalog: Arc<dyn Catalog>, component: &EntityRef) -> idp_core::Result<Option<String>> {
///     let entity = catalog.require(component).await?;
///     Ok(entity.spec_str("owner").map(str::to_owned))
/// }
/// ```
#[async_trait]
pub trait Catalog: Send + Sync + Debug {
    /// The entity with this reference, if any.
    async fn get(&self, entity: &EntityRef) -> Result<Option<Entity>>;
    /// The entities matching `query`, one page at a time.
    async fn query(&self, query: &EntityQuery) -> Result<EntityPage>;
    /// Insert or replace an entity (by its reference).
    async fn upsert(&self, entity: Entity) -> Result<()>;
    /// Remove an entity; `Ok(false)` when it was not there.
    async fn remove(&self, entity: &EntityRef) -> Result<bool>;
}

/// Conveniences on top of [`Catalog`], for every implementation.
///
/// ```
/// use idp_core::{Catalog, CatalogExt};
/// async fn all(c: &dyn Catalog) -> idp_core::Result<usize> {
///     Ok(c.query_all(&idp_core::ports::EntityQuery::new()).await?.len())
/// }
/// ```
#[async_trait]
pub trait CatalogExt: Catalog {
    /// Like [`Catalog::get`], but a missing entity is an error of kind `NotFound`.
    async fn require(&self, entity: &EntityRef) -> Result<Entity> {
        self.get(entity).await?.ok_or_else(|| {
            crate::Error::not_found(format!("entity {entity} is not in the catalog"))
        })
    }

    /// Every entity matching `query`, following cursors to the end.
    async fn query_all(&self, query: &EntityQuery) -> Result<Vec<Entity>> {
        let mut out = Vec::new();
        let mut q = query.clone();
        loop {
            let page = self.query(&q).await?;
            out.extend(page.entities);
            match page.next_cursor {
                Some(next) if q.cursor.as_deref() != Some(next.as_str()) => q.cursor = Some(next),
                _ => return Ok(out),
            }
        }
    }
}

impl<T: Catalog + ?Sized> CatalogExt for T {}

/// Which deployments [`Deployer::history`] returns, newest first.
///
/// ```
/// let q = idp_core::ports::HistoryQuery::new("component:default/cart".parse().unwrap(), "prod".parse().unwrap()).limit(10);
/// assert_eq!(q.limit, Some(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The component.
    pub component: EntityRef,
    /// The environment.
    pub environment: EnvironmentName,
    /// At most this many (`None`: all).
    pub limit: Option<usize>,
}

impl HistoryQuery {
    /// History of one component in one environment.
    ///
    /// ```
    /// let q = idp_core::ports::HistoryQuery::new("component:default/a".parse().unwrap(), "dev".parse().unwrap());
    /// assert!(q.limit.is_none());
    /// ```
    pub fn new(component: EntityRef, environment: EnvironmentName) -> Self {
        Self {
            component,
            environment,
            limit: None,
        }
    }

    /// Return at most `n`.
    ///
    /// ```
    /// # let q = idp_core::ports::HistoryQuery::new("component:default/a".parse().unwrap(), "dev".parse().unwrap());
    /// assert_eq!(q.limit(3).limit, Some(3));
    /// ```
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = Some(n);
        self
    }
}

/// Puts releases into environments and remembers what it did.
///
/// Defaults in `idp-deploy`: `GitOpsDeployer` (a commit per release, rollback is a
/// revert, history is `git log`) and `KubeDeployer` (server-side apply).
///
/// ```
/// use idp_core::{Deployer, DeployerExt, EntityRef, EnvironmentName};
/// async fn undo_last(d: &dyn Deployer, c: EntityRef, env: EnvironmentName) -> idp_core::Result<()> {
///     let history = d.history(&idp_core::ports::HistoryQuery::new(c.clone(), env.clone()).limit(2)).await?;
///     if let Some(previous) = history.get(1) {
///         d.rollback(&c, &env, &previous.id).await?;
///     }
///     Ok(())
/// }
/// ```
#[async_trait]
pub trait Deployer: Send + Sync + Debug {
    /// Deploy a release; returns the deployment record.
    async fn deploy(&self, release: &Release) -> Result<Deployment>;
    /// The deployment history of a component in an environment, newest first.
    async fn history(&self, query: &HistoryQuery) -> Result<Vec<Deployment>>;
    /// Make the environment hold what deployment `to` deployed again; returns the new
    /// deployment record the rollback created.
    async fn rollback(
        &self,
        component: &EntityRef,
        environment: &EnvironmentName,
        to: &DeploymentId,
    ) -> Result<Deployment>;
}

/// Conveniences on top of [`Deployer`].
///
/// ```
/// use idp_core::{Deployer, DeployerExt};
/// async fn current(d: &dyn Deployer) -> idp_core::Result<bool> {
///     Ok(d.current(&"component:default/a".parse().unwrap(), &"dev".parse().unwrap()).await?.is_some())
/// }
/// ```
#[async_trait]
pub trait DeployerExt: Deployer {
    /// The newest deployment of a component in an environment, if any.
    async fn current(
        &self,
        component: &EntityRef,
        environment: &EnvironmentName,
    ) -> Result<Option<Deployment>> {
        let query = HistoryQuery::new(component.clone(), environment.clone()).limit(1);
        Ok(self.history(&query).await?.into_iter().next())
    }
}

impl<T: Deployer + ?Sized> DeployerExt for T {}

/// A policy: looks at one object in a context and returns what is wrong with it.
///
/// Policies are **pure and synchronous**: no I/O, no clock (the time is in the
/// [`PolicyContext`]), so the same set can run before commit, in CI and at admission,
/// and give the same answer. An empty result means the object passes.
///
/// ```
/// use idp_core::{Object, Policy, PolicyContext, Violation};
///
/// #[derive(Debug)]
/// struct NoLatestTag;
///
/// impl Policy for NoLatestTag {
///     fn name(&self) -> &str { "no-latest-tag" }
///     fn evaluate(&self, object: &Object, _ctx: &PolicyContext) -> Vec<Violation> {
///         let image = object.as_map().get("spec")
///             .and_then(|s| s.pointer("/containers/0/image"))
///             .and_then(|i| i.as_str()).unwrap_or("");
///         if image.ends_with(":latest") {
///             vec![Violation::new(self.name(), "tag", "image uses :latest; pin a version")
///                 .with_path("spec.containers[0].image")]
///         } else {
///             vec![]
///         }
///     }
/// }
///
/// let pod = Object::from_value(serde_json::json!({
///     "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
///     "spec": {"containers": [{"name": "app", "image": "nginx:latest"}]}
/// })).unwrap();
/// assert_eq!(NoLatestTag.evaluate(&pod, &PolicyContext::new()).len(), 1);
/// ```
pub trait Policy: Send + Sync + Debug {
    /// A stable name, used in violations and reports.
    fn name(&self) -> &str;
    /// The violations of `object`; empty when it passes.
    fn evaluate(&self, object: &Object, ctx: &PolicyContext) -> Vec<Violation>;
}

/// Conveniences on top of [`Policy`].
///
/// ```
/// use idp_core::{ManifestSet, PolicyContext, PolicyExt};
/// # #[derive(Debug)] struct Allow;
/// # impl idp_core::Policy for Allow { fn name(&self) -> &str { "allow" }
/// #   fn evaluate(&self, _: &idp_core::Object, _: &PolicyContext) -> Vec<idp_core::Violation> { vec![] } }
/// assert!(Allow.evaluate_set(&ManifestSet::new(), &PolicyContext::new()).is_empty());
/// ```
pub trait PolicyExt: Policy {
    /// Evaluate every object of a set; each violation names its object.
    fn evaluate_set(&self, set: &ManifestSet, ctx: &PolicyContext) -> Vec<Violation> {
        set.iter()
            .flat_map(|object| {
                let object_ref = object.object_ref();
                self.evaluate(object, ctx).into_iter().map(move |v| {
                    if v.object.is_some() {
                        v
                    } else {
                        v.with_object(object_ref.clone())
                    }
                })
            })
            .collect()
    }
}

impl<T: Policy + ?Sized> PolicyExt for T {}

impl<P: Policy + ?Sized> Policy for Arc<P> {
    fn name(&self) -> &str {
        (**self).name()
    }
    fn evaluate(&self, object: &Object, ctx: &PolicyContext) -> Vec<Violation> {
        (**self).evaluate(object, ctx)
    }
}

/// A mutation: the policy's twin, which rewrites one object before policies check it
/// (default resources, standard labels, sidecar injection).
///
/// Mutations must be **idempotent**: applying one twice gives the same object as once.
///
/// ```
/// use idp_core::{Object, PolicyContext, ports::Mutation};
///
/// #[derive(Debug)]
/// struct ManagedBy;
/// impl Mutation for ManagedBy {
///     fn name(&self) -> &str { "managed-by" }
///     fn mutate(&self, object: &mut Object, _: &PolicyContext) -> idp_core::Result<bool> {
///         let meta = object.as_map_mut().entry("metadata").or_insert_with(|| serde_json::json!({}));
///         let labels = meta.as_object_mut().unwrap().entry("labels").or_insert_with(|| serde_json::json!({}));
///         let labels = labels.as_object_mut().unwrap();
///         let changed = labels.get("app.kubernetes.io/managed-by").and_then(|v| v.as_str()) != Some("idp");
///         labels.insert("app.kubernetes.io/managed-by".into(), "idp".into());
///         Ok(changed)
///     }
/// }
/// let mut o = Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})).unwrap();
/// assert!(ManagedBy.mutate(&mut o, &PolicyContext::new()).unwrap());
/// assert!(!ManagedBy.mutate(&mut o, &PolicyContext::new()).unwrap());
/// ```
pub trait Mutation: Send + Sync + Debug {
    /// A stable name, used in logs.
    fn name(&self) -> &str;
    /// Rewrite `object` in place; `Ok(true)` when it changed.
    fn mutate(&self, object: &mut Object, ctx: &PolicyContext) -> Result<bool>;
}

/// Makes environments exist and go away (a namespace per preview, a folder per
/// environment in the GitOps repository).
///
/// ```
/// use idp_core::{EnvironmentProvider, model::EnvironmentSpec};
/// async fn preview(p: &dyn EnvironmentProvider) -> idp_core::Result<()> {
///     let env = p.ensure(&EnvironmentSpec::new("pr-cart-42".parse().unwrap())).await?;
///     println!("preview at {:?}", env.url);
///     p.destroy(&env.name).await?;
///     Ok(())
/// }
/// ```
#[async_trait]
pub trait EnvironmentProvider: Send + Sync + Debug {
    /// Create the environment, or bring an existing one in line with `spec`
    /// (idempotent). Returns it as it now is.
    async fn ensure(&self, spec: &EnvironmentSpec) -> Result<Environment>;
    /// Destroy the environment and everything the provider created for it; `Ok(false)`
    /// when it did not exist. Only what this provider owns is deleted.
    async fn destroy(&self, name: &EnvironmentName) -> Result<bool>;
    /// Every environment this provider owns.
    async fn list(&self) -> Result<Vec<Environment>>;
}

/// Where the platform records what it did (audit log, metrics, a UI's event stream).
///
/// Recording must not fail the operation it reports on, so it returns nothing; an
/// implementation that can lose events logs that itself.
///
/// ```
/// use idp_core::{EventSink, PlatformEvent};
/// let (tx, mut rx) = tokio::sync::broadcast::channel(16);
/// let sink: &dyn EventSink = &tx;
/// sink.record(&PlatformEvent::Denied {
///     component: "component:default/a".parse().unwrap(),
///     environment: "dev".parse().unwrap(),
///     violations: vec![],
/// });
/// assert!(matches!(rx.try_recv(), Ok(PlatformEvent::Denied { .. })));
/// ```
pub trait EventSink: Send + Sync + Debug {
    /// Record one event.
    fn record(&self, event: &PlatformEvent);
}

/// An [`EventSink`] that writes each event as a `tracing` event at INFO level
/// (`WARN` for denials and failures).
///
/// ```
/// use idp_core::{EventSink, ports::TracingEventSink};
/// let sink = TracingEventSink;
/// # let _ = &sink as &dyn EventSink;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct TracingEventSink;

impl EventSink for TracingEventSink {
    fn record(&self, event: &PlatformEvent) {
        match serde_json::to_string(event) {
            Ok(json) if event.is_failure() => tracing::warn!(target: "idp::events", event = %json),
            Ok(json) => tracing::info!(target: "idp::events", event = %json),
            Err(err) => {
                tracing::warn!(target: "idp::events", error = %err, "cannot serialise event");
            }
        }
    }
}

impl EventSink for tokio::sync::broadcast::Sender<PlatformEvent> {
    fn record(&self, event: &PlatformEvent) {
        // No receiver is not an error: nobody is listening right now.
        let _ = self.send(event.clone());
    }
}

impl<S: EventSink + ?Sized> EventSink for Arc<S> {
    fn record(&self, event: &PlatformEvent) {
        (**self).record(event);
    }
}
