//! Copy-on-write building blocks for catalog snapshots.
//!
//! A snapshot is cloned for every change; these structures make that clone cost a few
//! microseconds whatever the catalog size: data is split into shards behind `Arc`s, and a
//! change copies only the shard it touches (`Arc::make_mut`).

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

/// A hash map split into `Arc`-shared shards.
#[derive(Debug)]
pub(crate) struct CowMap<K, V> {
    shards: Vec<Arc<HashMap<K, V>>>,
    hasher: std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher>,
    len: usize,
}

impl<K, V> Clone for CowMap<K, V> {
    fn clone(&self) -> Self {
        Self {
            shards: self.shards.clone(),
            hasher: self.hasher.clone(),
            len: self.len,
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> CowMap<K, V> {
    pub(crate) fn new(shards: usize) -> Self {
        Self {
            shards: (0..shards.max(1))
                .map(|_| Arc::new(HashMap::new()))
                .collect(),
            hasher: std::hash::BuildHasherDefault::default(),
            len: 0,
        }
    }

    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> usize {
        (self.hasher.hash_one(key) as usize) % self.shards.len()
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shards[self.shard(key)].get(key)
    }

    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let s = self.shard(key);
        if !self.shards[s].contains_key(key) {
            return None;
        }
        Arc::make_mut(&mut self.shards[s]).get_mut(key)
    }

    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let s = self.shard(&key);
        let old = Arc::make_mut(&mut self.shards[s]).insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub(crate) fn entry_or_default(&mut self, key: K) -> &mut V
    where
        V: Default,
    {
        let s = self.shard(&key);
        let shard = Arc::make_mut(&mut self.shards[s]);
        if !shard.contains_key(&key) {
            self.len += 1;
        }
        shard.entry(key).or_default()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.shards.iter().flat_map(|s| s.iter())
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let s = self.shard(key);
        if !self.shards[s].contains_key(key) {
            return None;
        }
        let old = Arc::make_mut(&mut self.shards[s]).remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }
}

const CHUNK_BITS: u32 = 12;

/// A sorted set of entity ids, chunked by id range so a change copies one chunk.
#[derive(Debug, Clone, Default)]
pub(crate) struct Postings {
    chunks: BTreeMap<u32, Arc<Vec<u32>>>,
    len: usize,
}

impl Postings {
    pub(crate) fn insert(&mut self, id: u32) {
        let chunk = Arc::make_mut(self.chunks.entry(id >> CHUNK_BITS).or_default());
        if let Err(pos) = chunk.binary_search(&id) {
            chunk.insert(pos, id);
            self.len += 1;
        }
    }

    pub(crate) fn remove(&mut self, id: u32) {
        let key = id >> CHUNK_BITS;
        let Some(chunk) = self.chunks.get_mut(&key) else {
            return;
        };
        if let Ok(pos) = chunk.binary_search(&id) {
            let chunk = Arc::make_mut(chunk);
            chunk.remove(pos);
            self.len -= 1;
            if chunk.is_empty() {
                self.chunks.remove(&key);
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Approximate heap bytes (chunk vectors and tree nodes).
    pub(crate) fn heap_bytes(&self) -> usize {
        self.chunks
            .values()
            .map(|c| c.capacity() * 4 + 16 + 24 + 16)
            .sum()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.chunks.values().flat_map(|c| c.iter().copied())
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.chunks
            .get(&(id >> CHUNK_BITS))
            .is_some_and(|c| c.binary_search(&id).is_ok())
    }
}

/// A growable vector of optional values in `Arc`-shared chunks, indexed by id.
#[derive(Debug)]
pub(crate) struct Slots<T> {
    chunks: Vec<Arc<Vec<Option<T>>>>,
}

impl<T> Clone for Slots<T> {
    fn clone(&self) -> Self {
        Self {
            chunks: self.chunks.clone(),
        }
    }
}

const SLOT_BITS: u32 = 10;

impl<T: Clone> Slots<T> {
    pub(crate) fn new() -> Self {
        Self { chunks: Vec::new() }
    }

    pub(crate) fn get(&self, id: u32) -> Option<&T> {
        self.chunks
            .get((id >> SLOT_BITS) as usize)?
            .get((id & ((1 << SLOT_BITS) - 1)) as usize)?
            .as_ref()
    }

    pub(crate) fn set(&mut self, id: u32, value: Option<T>) {
        let c = (id >> SLOT_BITS) as usize;
        while self.chunks.len() <= c {
            self.chunks.push(Arc::new(Vec::new()));
        }
        let chunk = Arc::make_mut(&mut self.chunks[c]);
        let i = (id & ((1 << SLOT_BITS) - 1)) as usize;
        if chunk.len() <= i {
            chunk.resize(i + 1, None);
        }
        chunk[i] = value;
    }

    /// Every present value with its id, in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk.iter().enumerate().filter_map(move |(i, v)| {
                v.as_ref()
                    .map(|v| (((c as u32) << SLOT_BITS) | i as u32, v))
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cow_map_clone_is_independent() {
        let mut a: CowMap<String, u32> = CowMap::new(4);
        a.insert("x".into(), 1);
        let b = a.clone();
        a.insert("x".into(), 2);
        a.insert("y".into(), 3);
        assert_eq!(b.get("x"), Some(&1));
        assert_eq!(a.get("x"), Some(&2));
        assert_eq!((a.len(), b.len()), (2, 1));
        assert_eq!(a.remove("y"), Some(3));
        assert_eq!(a.remove("y"), None);
        assert_eq!(a.len(), 1);
    }

    #[test]
    fn postings_stay_sorted() {
        let mut p = Postings::default();
        for id in [9000, 3, 5, 3, 100_000] {
            p.insert(id);
        }
        assert_eq!(p.iter().collect::<Vec<_>>(), [3, 5, 9000, 100_000]);
        let q = p.clone();
        p.remove(5);
        assert!(!p.contains(5) && q.contains(5));
        assert_eq!(p.len(), 3);
    }

    #[test]
    fn slots() {
        let mut s: Slots<u32> = Slots::new();
        s.set(2000, Some(7));
        s.set(1, Some(1));
        let t = s.clone();
        s.set(1, None);
        assert_eq!(s.iter().collect::<Vec<_>>(), [(2000, &7)]);
        assert_eq!(t.get(1), Some(&1));
    }
}
