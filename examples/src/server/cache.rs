//! Answers computed once per catalog view.
//!
//! A [`View`](crate::server::state::View) never changes after it is published, so an answer
//! computed from it (entity facets, which read every matching entity) stays exact for the
//! view's whole life; a refresh that changes the catalog publishes a new view with an
//! empty cache. The cache is bounded: past [`MAX_ENTRIES`] answers it starts over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use serde_json::Value;

/// How many answers one view keeps.
pub const MAX_ENTRIES: usize = 512;

/// Answers keyed by the normalised request (route and parameters).
#[derive(Debug, Default)]
pub struct ViewCache {
    entries: Mutex<HashMap<String, Arc<Value>>>,
}

impl ViewCache {
    /// The cached answer for `key`, if any.
    pub fn get(&self, key: &str) -> Option<Arc<Value>> {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(key)
            .cloned()
    }

    /// Remember `value` for `key`; returns it shared.
    pub fn insert(&self, key: String, value: Value) -> Arc<Value> {
        let value = Arc::new(value);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, value.clone());
        value
    }
}
