//! Waiting for objects to become healthy, by watching them (no polling loop).
//!
//! [`wait_healthy`] opens one `kube::runtime::watcher` per resource type and namespace
//! (narrowed to the object's name when there is just one), assesses every update with
//! [`health::assess`], and returns as soon as every object is
//! [`Healthy`](HealthStatus::Healthy). Objects whose kind has no health rule count as
//! healthy once they exist. The watchers re-list and back off on their own when the
//! connection fails; the last such failure is reported if the wait times out.
//!
//! ```no_run
//! # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
//! use std::time::Duration;
//! let web = idp_core::ObjectRef::new("apps/v1", "Deployment", Some("shop"), "web");
//! let healths = idp_core::cluster::wait_healthy(&cluster, &[web], Duration::from_secs(120)).await?;
//! assert!(healths.iter().all(|h| h.health.status == idp_core::cluster::HealthStatus::Healthy));
//! # Ok(()) }
//! ```

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::time::Duration;

use futures::StreamExt;
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher::{self, Event};
use serde_json::Value;

use super::Cluster;
use super::apply::dynamic_api;
use super::discovery::Resolved;
use super::health::{self, Health, HealthStatus};
use super::retry::WatchBackoff;
use crate::error::{Error, Result};
use crate::ids::{DEFAULT_NAMESPACE, ObjectRef};
use crate::manifest::Object;

/// One object's health when the wait ended.
///
/// ```
/// use idp_core::cluster::{ObjectHealth, Health, HealthStatus};
/// let h = ObjectHealth {
///     object: idp_core::ObjectRef::new("apps/v1", "Deployment", Some("shop"), "web"),
///     health: Health::new(HealthStatus::Healthy, ""),
/// };
/// assert_eq!(h.to_string(), "apps/v1 Deployment shop/web: Healthy");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ObjectHealth {
    /// The object (cluster-scoped objects without a namespace).
    pub object: ObjectRef,
    /// Its health.
    pub health: Health,
}

impl fmt::Display for ObjectHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.object, self.health)
    }
}

struct Group {
    resolved: Resolved,
    namespace: Option<String>,
    names: BTreeSet<String>,
    seen_in_init: HashSet<String>,
}

/// Wait until every object in `objects` is Healthy, watching them.
///
/// Returns each object's final health, in input order. Fails with:
/// - [`InvalidInput`](crate::ErrorKind::InvalidInput) as soon as an object is
///   [`Degraded`](HealthStatus::Degraded), naming it and its message (a bad image, a
///   crash loop, a missed progress deadline: retrying the same input rarely helps);
/// - [`Timeout`](crate::ErrorKind::Timeout) when `timeout` passes first, listing the
///   objects not yet healthy with their status and message;
/// - [`NotFound`](crate::ErrorKind::NotFound) when a kind is not served by the cluster.
///
/// Namespaced objects without a namespace are looked for in `default`. Suspended
/// objects are not healthy: waiting for them ends in a timeout that says so.
///
/// ```no_run
/// # async fn demo(cluster: idp_core::cluster::Cluster, report: idp_core::cluster::ApplyReport) -> idp_core::Result<()> {
/// idp_core::cluster::wait_healthy(&cluster, &report.refs(), std::time::Duration::from_secs(300)).await?;
/// # Ok(()) }
/// ```
#[tracing::instrument(name = "cluster.wait_healthy", skip_all, fields(objects = objects.len(), timeout = ?timeout))]
pub async fn wait_healthy(
    cluster: &Cluster,
    objects: &[ObjectRef],
    timeout: Duration,
) -> Result<Vec<ObjectHealth>> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut order = Vec::with_capacity(objects.len());
    let mut state: BTreeMap<ObjectRef, Health> = BTreeMap::new();
    let mut groups: BTreeMap<(String, String, Option<String>), Group> = BTreeMap::new();
    for object in objects {
        let resolved = cluster
            .discovery()
            .resolve(&object.api_version, &object.kind)
            .await
            .map_err(|e| e.context(format_args!("wait for {object}")))?;
        let namespace = resolved.namespaced.then(|| {
            object
                .namespace
                .clone()
                .filter(|ns| !ns.is_empty())
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned())
        });
        let reference = ObjectRef::new(
            &object.api_version,
            &object.kind,
            namespace.as_deref(),
            &object.name,
        );
        order.push(reference.clone());
        state.insert(
            reference,
            Health::new(HealthStatus::Missing, "object does not exist (yet)"),
        );
        let key = (
            resolved.resource.api_version.clone(),
            resolved.resource.kind.clone(),
            namespace.clone(),
        );
        groups
            .entry(key)
            .or_insert_with(|| Group {
                resolved,
                namespace,
                names: BTreeSet::new(),
                seen_in_init: HashSet::new(),
            })
            .names
            .insert(object.name.clone());
    }
    let mut groups: Vec<Group> = groups.into_values().collect();
    let streams = groups.iter().enumerate().map(|(index, group)| {
        let api = dynamic_api(cluster, &group.resolved, group.namespace.as_deref());
        let mut config = watcher::Config::default();
        if let [only] = group.names.iter().collect::<Vec<_>>().as_slice() {
            config = config.fields(&format!("metadata.name={only}"));
        }
        watcher::watcher(api, config)
            .backoff(WatchBackoff::new(cluster.retry().clone()))
            .map(move |event| (index, event))
            .boxed()
    });
    let mut events = futures::stream::select_all(streams);
    let mut last_error: Option<String> = None;

    loop {
        if state.values().all(|h| h.status == HealthStatus::Healthy) {
            tracing::info!("all healthy");
            return Ok(order
                .into_iter()
                .map(|object| {
                    let health = state
                        .get(&object)
                        .cloned()
                        .unwrap_or_else(|| Health::new(HealthStatus::Unknown, ""));
                    ObjectHealth { object, health }
                })
                .collect());
        }
        if let Some((object, health)) = state
            .iter()
            .find(|(_, h)| h.status == HealthStatus::Degraded)
        {
            return Err(Error::invalid_input(format!(
                "{object} is Degraded: {}",
                if health.message.is_empty() {
                    "no message"
                } else {
                    &health.message
                }
            )));
        }
        let next = match tokio::time::timeout_at(deadline, events.next()).await {
            Ok(Some(next)) => next,
            Ok(None) => {
                return Err(Error::internal(
                    "the watch streams ended before the objects were healthy",
                ));
            }
            Err(_) => return Err(timeout_error(&state, timeout, last_error.as_deref())),
        };
        let (index, event) = next;
        let group = &mut groups[index];
        match event {
            Ok(Event::Apply(obj) | Event::InitApply(obj)) => {
                let value = serde_json::to_value(&obj).unwrap_or(Value::Null);
                let name = obj.metadata.name.clone().unwrap_or_default();
                if group.names.contains(&name) {
                    group.seen_in_init.insert(name.clone());
                    let health = assess_live(&group.resolved, value);
                    tracing::debug!(object = %name, %health, "observed");
                    state.insert(group_ref(group, &name), health);
                }
            }
            Ok(Event::Delete(obj)) => {
                let name = obj.metadata.name.clone().unwrap_or_default();
                if group.names.contains(&name) {
                    state.insert(
                        group_ref(group, &name),
                        Health::new(HealthStatus::Missing, "object was deleted"),
                    );
                }
            }
            Ok(Event::Init) => group.seen_in_init.clear(),
            Ok(Event::InitDone) => {
                let missing: Vec<String> = group
                    .names
                    .iter()
                    .filter(|n| !group.seen_in_init.contains(*n))
                    .cloned()
                    .collect();
                for name in missing {
                    state.insert(
                        group_ref(group, &name),
                        Health::new(HealthStatus::Missing, "object does not exist (yet)"),
                    );
                }
            }
            Err(err) => {
                tracing::debug!(error = %err, "watch failed; the watcher retries");
                last_error = Some(err.to_string());
            }
        }
    }
}

fn group_ref(group: &Group, name: &str) -> ObjectRef {
    ObjectRef::new(
        &group.resolved.resource.api_version,
        &group.resolved.resource.kind,
        group.namespace.as_deref(),
        name,
    )
}

/// Health of a live object from a watch; list items may lack `apiVersion`/`kind`, so
/// they are filled in from the resource.
fn assess_live(resolved: &Resolved, mut value: Value) -> Health {
    if let Value::Object(map) = &mut value {
        map.entry("apiVersion")
            .or_insert_with(|| Value::String(resolved.resource.api_version.clone()));
        map.entry("kind")
            .or_insert_with(|| Value::String(resolved.resource.kind.clone()));
    }
    match Object::from_value(value) {
        Ok(object) => {
            health::assess(&object).unwrap_or_else(|| Health::new(HealthStatus::Healthy, ""))
        }
        Err(err) => Health::new(
            HealthStatus::Unknown,
            format!("cannot read the live object: {err}"),
        ),
    }
}

fn timeout_error(
    state: &BTreeMap<ObjectRef, Health>,
    timeout: Duration,
    last_error: Option<&str>,
) -> Error {
    let pending: Vec<String> = state
        .iter()
        .filter(|(_, h)| h.status != HealthStatus::Healthy)
        .map(|(o, h)| format!("{o} ({h})"))
        .collect();
    let mut message = format!(
        "{} of {} objects not healthy after {timeout:?}: {}",
        pending.len(),
        state.len(),
        pending.join(", ")
    );
    if let Some(err) = last_error {
        message = format!("{message}; last watch error: {err}");
    }
    Error::timeout(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployments() -> Resolved {
        let gvk = kube::api::GroupVersionKind::gvk("apps", "v1", "Deployment");
        Resolved::new(kube::discovery::ApiResource::from_gvk(&gvk), true, vec![])
    }

    #[test]
    fn list_items_without_type_are_assessed_by_their_resource() {
        let h = assess_live(
            &deployments(),
            json!({"metadata": {"name": "web"}, "spec": {"paused": true}}),
        );
        assert_eq!(h.status, HealthStatus::Suspended);
    }

    #[test]
    fn timeout_lists_what_is_pending() {
        let mut state = BTreeMap::new();
        state.insert(
            ObjectRef::new("apps/v1", "Deployment", Some("a"), "web"),
            Health::new(HealthStatus::Progressing, "1 of 2"),
        );
        state.insert(
            ObjectRef::new("v1", "ConfigMap", Some("a"), "c"),
            Health::new(HealthStatus::Healthy, ""),
        );
        let e = timeout_error(&state, Duration::from_secs(5), Some("boom"));
        assert_eq!(e.kind(), crate::ErrorKind::Timeout);
        let text = e.to_string();
        assert!(
            text.contains("1 of 2 objects not healthy after 5s"),
            "{text}"
        );
        assert!(
            text.contains("apps/v1 Deployment a/web (Progressing: 1 of 2)"),
            "{text}"
        );
        assert!(text.contains("boom"));
        assert!(!text.contains("ConfigMap"));
    }
}
