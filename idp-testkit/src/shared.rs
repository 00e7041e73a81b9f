//! The state every connection, watch and background task shares.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::faults::Faults;
use crate::requests::RequestLog;
use crate::store::{Effect, Store};

/// How the rollout simulator behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RolloutOptions {
    /// Whether workloads get a simulated status at all.
    pub(crate) enabled: bool,
    /// How long after a change the status is reported.
    pub(crate) delay: Duration,
    /// Images matching this glob (`*` wildcards) never become ready.
    pub(crate) broken_image: String,
    /// Nodes a DaemonSet schedules onto.
    pub(crate) nodes: u32,
}

/// Options fixed at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) port: u16,
    pub(crate) seed: u64,
    pub(crate) namespace_deletion_delay: Duration,
    pub(crate) bookmark_interval: Duration,
    pub(crate) watch_window: usize,
    pub(crate) rollout: RolloutOptions,
    pub(crate) namespaces: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            port: 0,
            seed: 0x1d9_7e57,
            namespace_deletion_delay: Duration::from_millis(20),
            bookmark_interval: Duration::from_secs(1),
            watch_window: 10_000,
            rollout: RolloutOptions {
                enabled: true,
                delay: Duration::from_millis(20),
                broken_image: "*:broken".to_owned(),
                nodes: 1,
            },
            namespaces: vec![
                "default".to_owned(),
                "kube-system".to_owned(),
                "kube-public".to_owned(),
                "kube-node-lease".to_owned(),
            ],
        }
    }
}

/// Shared server state.
#[derive(Debug)]
pub(crate) struct Shared {
    store: Mutex<Store>,
    rv_tx: tokio::sync::watch::Sender<u64>,
    pub(crate) requests: RequestLog,
    pub(crate) faults: Faults,
    pub(crate) options: Options,
    pub(crate) address: String,
}

impl Shared {
    pub(crate) fn new(options: Options, address: String) -> Arc<Self> {
        let store = Store::new(options.watch_window, options.seed);
        let (rv_tx, _) = tokio::sync::watch::channel(0);
        Arc::new(Self {
            store: Mutex::new(store),
            rv_tx,
            requests: RequestLog::default(),
            faults: Faults::new(options.seed),
            options,
            address,
        })
    }

    /// Reads the store.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&Store) -> R) -> R {
        f(&self.store.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Changes the store, then wakes watchers and runs the follow-up work it asked for.
    pub(crate) fn write<R>(self: &Arc<Self>, f: impl FnOnce(&mut Store) -> R) -> R {
        let (out, rv, effects) = {
            let mut store = self.store.lock().unwrap_or_else(PoisonError::into_inner);
            let out = f(&mut store);
            (out, store.rv(), std::mem::take(&mut store.effects))
        };
        self.rv_tx.send_if_modified(|cur| {
            let changed = *cur != rv;
            *cur = rv;
            changed
        });
        for e in effects {
            self.schedule(e);
        }
        out
    }

    /// A receiver that wakes when the resourceVersion moves.
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.rv_tx.subscribe()
    }

    fn schedule(self: &Arc<Self>, effect: Effect) {
        let weak = Arc::downgrade(self);
        match effect {
            Effect::Rollout(key) => {
                if !self.options.rollout.enabled {
                    return;
                }
                let delay = self.options.rollout.delay;
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    if let Some(shared) = weak.upgrade() {
                        let rollout = shared.options.rollout.clone();
                        shared.write(|s| crate::simulator::reconcile(s, &key, &rollout));
                    }
                });
            }
            Effect::NamespaceCascade(ns) => {
                let delay = self.options.namespace_deletion_delay;
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    loop {
                        let Some(shared) = weak.upgrade() else { return };
                        if shared.write(|s| crate::delete::cascade_namespace(s, &ns)) {
                            return;
                        }
                        drop(shared);
                        tokio::time::sleep(delay.max(Duration::from_millis(10))).await;
                    }
                });
            }
        }
    }
}
