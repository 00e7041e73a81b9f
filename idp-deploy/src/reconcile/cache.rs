//! A watch-backed cache of the inventory's live objects, one watch per resource type and
//! namespace, used to compare without requests and to notice drift.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use idp_core::cluster::diff::LiveLookup;
use idp_core::cluster::retry::WatchBackoff;
use idp_core::cluster::{Cluster, Resolved};
use kube::api::{Api, DynamicObject};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// (apiVersion, kind, namespace).
pub(crate) type ScopeKey = (String, String, Option<String>);

#[derive(Debug, Default)]
struct State {
    objects: HashMap<ScopeKey, HashMap<String, Value>>,
    synced: HashSet<ScopeKey>,
    /// resourceVersions our own writes produced; a cached copy older than that is stale.
    expected: HashMap<(ScopeKey, String), String>,
}

/// The cache. Cloning shares it.
#[derive(Debug, Clone)]
pub(crate) struct WatchCache {
    state: Arc<Mutex<State>>,
    tasks: Arc<Mutex<HashMap<ScopeKey, JoinHandle<()>>>>,
    events: mpsc::UnboundedSender<()>,
}

impl WatchCache {
    /// A cache that sends `()` on `events` whenever a watched object changes after the
    /// initial list.
    pub(crate) fn new(events: mpsc::UnboundedSender<()>) -> Self {
        Self {
            state: Arc::default(),
            tasks: Arc::default(),
            events,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Start watching `scopes` (those not watched yet) with `selector`.
    pub(crate) fn watch(
        &self,
        cluster: &Cluster,
        scopes: &[(Resolved, Option<String>)],
        selector: &str,
    ) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        for (resolved, namespace) in scopes {
            let key: ScopeKey = (
                resolved.resource.api_version.clone(),
                resolved.resource.kind.clone(),
                namespace.clone(),
            );
            if tasks.get(&key).is_some_and(|t| !t.is_finished()) {
                continue;
            }
            let api: Api<DynamicObject> = match namespace {
                Some(ns) if resolved.namespaced => {
                    Api::namespaced_with(cluster.client().clone(), ns, &resolved.resource)
                }
                _ => Api::all_with(cluster.client().clone(), &resolved.resource),
            };
            let config = watcher::Config::default().labels(selector);
            let backoff = WatchBackoff::new(cluster.retry().clone());
            let state = self.state.clone();
            let events = self.events.clone();
            let scope = key.clone();
            let task = tokio::spawn(async move {
                let mut stream = watcher::watcher(api, config).backoff(backoff).boxed();
                let mut buffer: HashMap<String, Value> = HashMap::new();
                while let Some(event) = stream.next().await {
                    let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
                    match event {
                        Ok(Event::Init) => buffer.clear(),
                        Ok(Event::InitApply(o)) => {
                            if let Some((name, v)) = as_entry(&o) {
                                buffer.insert(name, v);
                            }
                        }
                        Ok(Event::InitDone) => {
                            st.objects
                                .insert(scope.clone(), std::mem::take(&mut buffer));
                            st.synced.insert(scope.clone());
                            drop(st);
                            let _ = events.send(());
                        }
                        Ok(Event::Apply(o)) => {
                            if let Some((name, v)) = as_entry(&o) {
                                st.objects.entry(scope.clone()).or_default().insert(name, v);
                            }
                            drop(st);
                            let _ = events.send(());
                        }
                        Ok(Event::Delete(o)) => {
                            if let Some((name, _)) = as_entry(&o) {
                                st.objects.entry(scope.clone()).or_default().remove(&name);
                            }
                            drop(st);
                            let _ = events.send(());
                        }
                        Err(err) => {
                            tracing::debug!(error = %err, scope = ?scope, "watch failed; the cache lists this scope until the watch recovers");
                            st.synced.remove(&scope);
                        }
                    }
                }
            });
            tasks.insert(key, task);
        }
    }

    /// Remember the resourceVersion our write produced, so an older cached copy is not
    /// trusted.
    pub(crate) fn expect(&self, scope: ScopeKey, name: String, resource_version: String) {
        self.lock().expected.insert((scope, name), resource_version);
    }

    /// Forget what our writes expected of `name` in `scope` (it was deleted).
    pub(crate) fn forget(&self, scope: &ScopeKey, name: &str) {
        self.lock()
            .expected
            .retain(|(s, n), _| !(s == scope && n == name));
    }

    /// Stop every watch.
    pub(crate) fn stop(&self) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        for (_, task) in tasks.drain() {
            task.abort();
        }
    }
}

fn as_entry(o: &DynamicObject) -> Option<(String, Value)> {
    let name = o.metadata.name.clone()?;
    serde_json::to_value(o).ok().map(|v| (name, v))
}

fn newer_or_equal(cached: Option<&str>, expected: &str) -> bool {
    match cached {
        None => false,
        Some(c) if c == expected => true,
        Some(c) => match (c.parse::<u64>(), expected.parse::<u64>()) {
            (Ok(c), Ok(e)) => c >= e,
            _ => false,
        },
    }
}

impl LiveLookup for WatchCache {
    fn scope(&self, resolved: &Resolved, namespace: Option<&str>) -> Option<Vec<Value>> {
        let key: ScopeKey = (
            resolved.resource.api_version.clone(),
            resolved.resource.kind.clone(),
            namespace.map(str::to_owned),
        );
        let mut st = self.lock();
        if !st.synced.contains(&key) {
            return None;
        }
        let state = &mut *st;
        let objects = state.objects.get(&key)?;
        let mut stale = false;
        state.expected.retain(|(scope, name), rv| {
            if scope != &key {
                return true;
            }
            let cached = objects
                .get(name)
                .and_then(|o| o.pointer("/metadata/resourceVersion"))
                .and_then(Value::as_str);
            let fresh = newer_or_equal(cached, rv);
            stale |= !fresh;
            !fresh
        });
        if stale {
            return None;
        }
        Some(objects.values().cloned().collect())
    }
}
