//! In-memory implementations of idp-core's ports, for tests.
//!
//! They behave like the real ones where a test can observe it (history newest first,
//! rollback restores content, `NotFound` for unknown ids, idempotent `ensure`), pass the
//! [`conformance`](crate::conformance) suites, and keep everything in memory so a test
//! can look inside. They are not for production: nothing survives the process.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use idp_core::model::{Entity, EnvironmentSpec};
use idp_core::ports::{EntityPage, EntityQuery, HistoryQuery};
use idp_core::{
    Catalog, Deployer, Deployment, DeploymentId, DeploymentStatus, EntityRef, Environment,
    EnvironmentName, EnvironmentProvider, Error, EventSink, ManifestSet, PlatformEvent, Release,
    Result,
};

pub use crate::apply_deployer::ApplyDeployer;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A test that panicked while holding the lock must not hide the original failure
    // behind a poison error in the next test step.
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

type Key = (String, EnvironmentName);

fn key(component: &EntityRef, environment: &EnvironmentName) -> Key {
    (component.key(), environment.clone())
}

#[derive(Debug, Default)]
struct DeployerState {
    next_id: u64,
    /// Oldest first.
    history: BTreeMap<Key, Vec<(Deployment, ManifestSet)>>,
}

/// A [`Deployer`] that keeps every deployment in memory.
///
/// ```
/// use idp_core::{Deployer, DeployerExt, ManifestSet, Release};
/// use idp_testkit::doubles::MemoryDeployer;
///
/// # tokio_test_block(async {
/// let deployer = MemoryDeployer::new();
/// let release = Release::new("component:default/cart".parse()?, "dev".parse()?, ManifestSet::new());
/// let d = deployer.deploy(&release).await?;
/// assert_eq!(deployer.current(&release.component, &release.environment).await?.unwrap().id, d.id);
/// # Ok::<(), idp_core::Error>(())
/// # });
/// # fn tokio_test_block<F: std::future::Future<Output = idp_core::Result<()>>>(f: F) {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f).unwrap();
/// # }
/// ```
#[derive(Debug, Default, Clone)]
pub struct MemoryDeployer {
    state: Arc<Mutex<DeployerState>>,
}

impl MemoryDeployer {
    /// An empty deployer.
    ///
    /// ```
    /// let d = idp_testkit::doubles::MemoryDeployer::new();
    /// assert_eq!(d.deployment_count(), 0);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The manifests the environment holds now for a component (after the newest
    /// deployment or rollback).
    ///
    /// ```
    /// let d = idp_testkit::doubles::MemoryDeployer::new();
    /// assert!(d.manifests(&"component:default/a".parse().unwrap(), &"dev".parse().unwrap()).is_none());
    /// ```
    pub fn manifests(
        &self,
        component: &EntityRef,
        environment: &EnvironmentName,
    ) -> Option<ManifestSet> {
        lock(&self.state)
            .history
            .get(&key(component, environment))
            .and_then(|h| h.last())
            .map(|(_, m)| m.clone())
    }

    /// How many deployments (including rollbacks) were made in all.
    ///
    /// ```
    /// assert_eq!(idp_testkit::doubles::MemoryDeployer::new().deployment_count(), 0);
    /// ```
    pub fn deployment_count(&self) -> usize {
        lock(&self.state).history.values().map(Vec::len).sum()
    }

    fn record(
        &self,
        component: &EntityRef,
        environment: &EnvironmentName,
        manifests: ManifestSet,
        make: impl FnOnce(DeploymentId) -> Deployment,
    ) -> Deployment {
        let mut state = lock(&self.state);
        state.next_id += 1;
        let id = DeploymentId::new(format!("mem-{}", state.next_id));
        let deployment = make(id);
        let history = state
            .history
            .entry(key(component, environment))
            .or_default();
        if let Some((previous, _)) = history.last_mut() {
            previous.status = DeploymentStatus::Superseded;
        }
        history.push((deployment.clone(), manifests));
        deployment
    }
}

#[async_trait]
impl Deployer for MemoryDeployer {
    async fn deploy(&self, release: &Release) -> Result<Deployment> {
        Ok(self.record(
            &release.component,
            &release.environment,
            release.manifests.clone(),
            |id| Deployment {
                revision: id.to_string(),
                id,
                component: release.component.clone(),
                environment: release.environment.clone(),
                source_revision: release.source_revision.clone(),
                author: release.author.clone(),
                message: release.message.clone(),
                status: DeploymentStatus::Succeeded,
                created_at: release.created_at,
            },
        ))
    }

    async fn history(&self, query: &HistoryQuery) -> Result<Vec<Deployment>> {
        let state = lock(&self.state);
        let history = state
            .history
            .get(&key(&query.component, &query.environment))
            .map(|h| {
                h.iter()
                    .rev()
                    .take(query.limit.unwrap_or(usize::MAX))
                    .map(|(d, _)| d.clone())
                    .collect()
            })
            .unwrap_or_default();
        Ok(history)
    }

    async fn rollback(
        &self,
        component: &EntityRef,
        environment: &EnvironmentName,
        to: &DeploymentId,
    ) -> Result<Deployment> {
        let target = lock(&self.state)
            .history
            .get(&key(component, environment))
            .and_then(|h| h.iter().find(|(d, _)| &d.id == to).cloned());
        let Some((target, manifests)) = target else {
            return Err(Error::not_found(format!(
                "deployment {to} of {component} in {environment} does not exist"
            )));
        };
        Ok(
            self.record(component, environment, manifests, |id| Deployment {
                revision: id.to_string(),
                id,
                component: component.clone(),
                environment: environment.clone(),
                source_revision: target.source_revision.clone(),
                author: target.author.clone(),
                message: Some(format!("rollback to {to}")),
                status: DeploymentStatus::Succeeded,
                created_at: jiff::Timestamp::now(),
            }),
        )
    }
}

/// An [`EnvironmentProvider`] that keeps environments in memory.
///
/// ```
/// use idp_core::{EnvironmentProvider, model::EnvironmentSpec};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let p = idp_testkit::doubles::MemoryEnvironments::new();
/// p.ensure(&EnvironmentSpec::new("pr-1".parse()?)).await?;
/// assert_eq!(p.list().await?.len(), 1);
/// # Ok::<(), idp_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Default, Clone)]
pub struct MemoryEnvironments {
    envs: Arc<Mutex<BTreeMap<EnvironmentName, Environment>>>,
}

impl MemoryEnvironments {
    /// No environments.
    ///
    /// ```
    /// let _ = idp_testkit::doubles::MemoryEnvironments::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl EnvironmentProvider for MemoryEnvironments {
    async fn ensure(&self, spec: &EnvironmentSpec) -> Result<Environment> {
        let now = jiff::Timestamp::now();
        let mut envs = lock(&self.envs);
        let env = envs
            .entry(spec.name.clone())
            .or_insert_with(|| Environment {
                namespace: Some(spec.name.to_string()),
                created_at: Some(now),
                ..Environment::new(spec.name.clone())
            });
        env.owner.clone_from(&spec.owner);
        env.labels.clone_from(&spec.labels);
        env.expires_at = spec
            .ttl
            .and_then(|ttl| jiff::SignedDuration::try_from(ttl).ok())
            .and_then(|ttl| now.checked_add(ttl).ok());
        Ok(env.clone())
    }

    async fn destroy(&self, name: &EnvironmentName) -> Result<bool> {
        Ok(lock(&self.envs).remove(name).is_some())
    }

    async fn list(&self) -> Result<Vec<Environment>> {
        Ok(lock(&self.envs).values().cloned().collect())
    }
}

/// An [`EventSink`] that keeps every event, for assertions.
///
/// ```
/// use idp_core::{EventSink, PlatformEvent};
/// let sink = idp_testkit::doubles::RecordingSink::new();
/// sink.record(&PlatformEvent::EnvironmentDestroyed { name: "dev".parse().unwrap() });
/// assert_eq!(sink.events().len(), 1);
/// ```
#[derive(Debug, Default, Clone)]
pub struct RecordingSink {
    events: Arc<Mutex<Vec<PlatformEvent>>>,
}

impl RecordingSink {
    /// An empty sink.
    ///
    /// ```
    /// assert!(idp_testkit::doubles::RecordingSink::new().events().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event recorded so far, oldest first.
    ///
    /// ```
    /// assert!(idp_testkit::doubles::RecordingSink::new().events().is_empty());
    /// ```
    pub fn events(&self) -> Vec<PlatformEvent> {
        lock(&self.events).clone()
    }
}

impl EventSink for RecordingSink {
    fn record(&self, event: &PlatformEvent) {
        lock(&self.events).push(event.clone());
    }
}

/// A [`Catalog`] over a plain map, with linear-scan queries: simple enough to trust as a
/// reference in tests. (The indexed catalog is `idp-catalog`'s `InMemoryCatalog`.)
///
/// Filter keys are dotted paths into the entity JSON (`kind`, `metadata.name`,
/// `spec.type`); values compare case-insensitively; a condition without values means
/// "exists". Cursors are offsets.
///
/// ```
/// use idp_core::{Catalog, model::Entity};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let c = idp_testkit::doubles::MapCatalog::new();
/// c.upsert(Entity::from_value(serde_json::json!({
///     "apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "team-a"}
/// }))?).await?;
/// assert!(c.get(&"group:default/team-a".parse()?).await?.is_some());
/// # Ok::<(), idp_core::Error>(())
/// # }).unwrap();
/// ```
#[derive(Debug, Default, Clone)]
pub struct MapCatalog {
    entities: Arc<Mutex<BTreeMap<String, Entity>>>,
}

impl MapCatalog {
    /// An empty catalog.
    ///
    /// ```
    /// let _ = idp_testkit::doubles::MapCatalog::new();
    /// ```
    pub fn new() -> Self {
        Self::default()
    }
}

fn field_values(value: &serde_json::Value, key: &str) -> Vec<String> {
    let mut current = vec![value];
    for part in key.split('.') {
        current = current
            .into_iter()
            .flat_map(|v| match v {
                serde_json::Value::Array(items) => {
                    items.iter().filter_map(|i| i.get(part)).collect::<Vec<_>>()
                }
                other => other.get(part).into_iter().collect(),
            })
            .collect();
    }
    current
        .into_iter()
        .flat_map(|v| match v {
            serde_json::Value::Array(items) => items.iter().collect::<Vec<_>>(),
            other => vec![other],
        })
        .map(|v| match v {
            serde_json::Value::String(s) => s.to_lowercase(),
            other => other.to_string().to_lowercase(),
        })
        .collect()
}

fn matches(entity: &Entity, query: &EntityQuery) -> bool {
    let value = entity.to_value();
    let filter_ok = query.filter.is_empty()
        || query.filter.iter().any(|all_of| {
            all_of.iter().all(|cond| {
                let found = field_values(&value, &cond.key);
                if cond.values.is_empty() {
                    !found.is_empty()
                } else {
                    cond.values
                        .iter()
                        .any(|wanted| found.contains(&wanted.to_lowercase()))
                }
            })
        });
    let text_ok = query.text.as_ref().is_none_or(|term| {
        value
            .to_string()
            .to_lowercase()
            .contains(&term.to_lowercase())
    });
    filter_ok && text_ok
}

#[async_trait]
impl Catalog for MapCatalog {
    async fn get(&self, entity: &EntityRef) -> Result<Option<Entity>> {
        Ok(lock(&self.entities).get(&entity.key()).cloned())
    }

    async fn query(&self, query: &EntityQuery) -> Result<EntityPage> {
        let entities = lock(&self.entities);
        let all: Vec<&Entity> = entities.values().filter(|e| matches(e, query)).collect();
        let offset = match &query.cursor {
            Some(c) => c.parse::<usize>().map_err(|_| {
                Error::invalid_input(format!("cursor {c:?} was not issued by this catalog"))
            })?,
            None => 0,
        };
        let limit = query.limit.unwrap_or(usize::MAX);
        let page: Vec<Entity> = all
            .iter()
            .skip(offset)
            .take(limit)
            .map(|e| (*e).clone())
            .collect();
        let end = offset.saturating_add(page.len());
        Ok(EntityPage {
            total: all.len(),
            next_cursor: (end < all.len()).then(|| end.to_string()),
            entities: page,
        })
    }

    async fn upsert(&self, entity: Entity) -> Result<()> {
        lock(&self.entities).insert(entity.entity_ref().key(), entity);
        Ok(())
    }

    async fn remove(&self, entity: &EntityRef) -> Result<bool> {
        Ok(lock(&self.entities).remove(&entity.key()).is_some())
    }
}
