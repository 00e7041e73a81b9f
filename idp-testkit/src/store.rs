//! The object store: every object by (group, resource, namespace, name), one global
//! monotonically increasing resourceVersion, and the retained window of watch events.

use std::collections::{BTreeMap, VecDeque};

use serde_json::Value;

use crate::registry::Registry;

/// Where an object lives: (group, plural, namespace or "", name).
pub(crate) type ObjKey = (String, String, String, String);

/// Watch event types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

impl EventType {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            EventType::Added => "ADDED",
            EventType::Modified => "MODIFIED",
            EventType::Deleted => "DELETED",
        }
    }
}

/// One change, as watchers see it.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    pub(crate) rv: u64,
    pub(crate) group: String,
    pub(crate) plural: String,
    pub(crate) namespace: String,
    pub(crate) kind: EventType,
    pub(crate) object: Value,
    /// The object before a MODIFIED change (for selector transitions in watches).
    pub(crate) previous: Option<Value>,
}

/// Follow-up work a write asks for, run outside the lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Effect {
    /// A workload changed: simulate its controller.
    Rollout(ObjKey),
    /// A namespace is terminating: delete its contents.
    NamespaceCascade(String),
}

/// Everything the server keeps, behind one lock.
#[derive(Debug)]
pub(crate) struct Store {
    pub(crate) registry: Registry,
    objects: BTreeMap<ObjKey, Value>,
    rv: u64,
    events: VecDeque<Event>,
    /// The newest resourceVersion no longer in the event window.
    compacted: u64,
    window: usize,
    pub(crate) effects: Vec<Effect>,
    /// Seeded randomness for UIDs and generated names.
    pub(crate) rng: rand::rngs::StdRng,
}

impl Store {
    pub(crate) fn new(window: usize, seed: u64) -> Self {
        Self {
            registry: Registry::new(),
            objects: BTreeMap::new(),
            rv: 0,
            events: VecDeque::new(),
            compacted: 0,
            window: window.max(1),
            effects: Vec::new(),
            rng: rand::SeedableRng::seed_from_u64(seed),
        }
    }

    /// The current (newest) resourceVersion.
    pub(crate) fn rv(&self) -> u64 {
        self.rv
    }

    pub(crate) fn get(&self, key: &ObjKey) -> Option<&Value> {
        self.objects.get(key)
    }

    /// Objects of one resource, optionally in one namespace, ordered by namespace and name.
    pub(crate) fn list<'a>(
        &'a self,
        group: &'a str,
        plural: &'a str,
        namespace: Option<&'a str>,
    ) -> impl Iterator<Item = (&'a ObjKey, &'a Value)> + 'a {
        // Keys sort by (group, plural, namespace, name): one range scan, no full walk.
        let start: ObjKey = (
            group.to_owned(),
            plural.to_owned(),
            namespace.unwrap_or_default().to_owned(),
            String::new(),
        );
        self.objects.range(start..).take_while(move |(k, _)| {
            k.0 == group && k.1 == plural && namespace.is_none_or(|ns| k.2 == ns)
        })
    }

    /// Every key in a namespace (any resource).
    pub(crate) fn keys_in_namespace(&self, namespace: &str) -> Vec<ObjKey> {
        self.objects
            .keys()
            .filter(|k| k.2 == namespace)
            .cloned()
            .collect()
    }

    /// Every key whose object has an owner reference to `uid`.
    pub(crate) fn dependents_of(&self, uid: &str) -> Vec<ObjKey> {
        self.objects
            .iter()
            .filter(|(_, o)| {
                o.pointer("/metadata/ownerReferences")
                    .and_then(Value::as_array)
                    .is_some_and(|refs| {
                        refs.iter()
                            .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
                    })
            })
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Stores an object under a fresh resourceVersion and records the event.
    pub(crate) fn put(&mut self, key: ObjKey, mut obj: Value, kind: EventType) -> Value {
        self.rv += 1;
        crate::meta::meta_mut(&mut obj).insert(
            "resourceVersion".to_owned(),
            Value::String(self.rv.to_string()),
        );
        let previous = self.objects.remove(&key);
        self.record(&key, kind, obj.clone(), previous);
        self.objects.insert(key, obj.clone());
        obj
    }

    /// Removes an object, recording a DELETED event with a fresh resourceVersion.
    pub(crate) fn remove(&mut self, key: &ObjKey) -> Option<Value> {
        let mut obj = self.objects.remove(key)?;
        self.rv += 1;
        crate::meta::meta_mut(&mut obj).insert(
            "resourceVersion".to_owned(),
            Value::String(self.rv.to_string()),
        );
        self.record(key, EventType::Deleted, obj.clone(), None);
        Some(obj)
    }

    fn record(&mut self, key: &ObjKey, kind: EventType, object: Value, previous: Option<Value>) {
        self.events.push_back(Event {
            rv: self.rv,
            group: key.0.clone(),
            plural: key.1.clone(),
            namespace: key.2.clone(),
            kind,
            object,
            previous,
        });
        while self.events.len() > self.window {
            if let Some(old) = self.events.pop_front() {
                self.compacted = old.rv;
            }
        }
    }

    /// Events newer than `rv` for one resource, or `Err(oldest_available)` when `rv` is
    /// older than the retained window (the watch must answer 410 Gone).
    pub(crate) fn events_since(
        &self,
        rv: u64,
        group: &str,
        plural: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Event>, u64> {
        if rv < self.compacted {
            return Err(self.compacted + 1);
        }
        // Events are in resourceVersion order: skip the older ones by binary search.
        let first = self.events.partition_point(|e| e.rv <= rv);
        Ok(self
            .events
            .range(first..)
            .filter(|e| {
                e.rv > rv
                    && e.group == group
                    && e.plural == plural
                    && namespace.is_none_or(|ns| e.namespace == ns)
            })
            .cloned()
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(name: &str) -> ObjKey {
        (
            String::new(),
            "configmaps".into(),
            "default".into(),
            name.into(),
        )
    }

    #[test]
    fn resource_versions_increase_and_events_are_kept() {
        let mut s = Store::new(2, 7);
        let a = s.put(
            key("a"),
            json!({"metadata": {"name": "a"}}),
            EventType::Added,
        );
        assert_eq!(a["metadata"]["resourceVersion"], "1");
        s.put(
            key("b"),
            json!({"metadata": {"name": "b"}}),
            EventType::Added,
        );
        let gone = s.remove(&key("a")).unwrap();
        assert_eq!(gone["metadata"]["resourceVersion"], "3");
        assert_eq!(s.rv(), 3);
        let evs = s.events_since(1, "", "configmaps", None).unwrap();
        assert_eq!(evs.len(), 2);
        assert_eq!(s.events_since(0, "", "configmaps", None).unwrap_err(), 2);
    }
}
