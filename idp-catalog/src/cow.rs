//! Copy-on-write building blocks for catalog snapshots.
//!
//! A snapshot is cloned for every change; these structures make that clone cost a few
//! microseconds whatever the catalog size: data is split into shards behind `Arc`s, and a
//! change copies only the shard it touches (`Arc::make_mut`).

use std::borrow::Borrow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

/// A fast, deterministic hasher for catalog keys (refs, index terms): a word-at-a-time
/// multiply-rotate mix with a final avalanche, so both the low bits (shard choice) and the
/// high bits (hash-table control bytes) are well spread. Not DoS-resistant — neither was
/// the fixed-key SipHash it replaces; keys come from the platform's own catalog files.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FastHasher(u64);

const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

impl FastHasher {
    #[inline]
    fn mix(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl std::hash::Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.mix(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.mix(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.mix(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.mix(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.mix(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // Avalanche (the murmur3 finaliser).
        let mut z = self.0;
        z = (z ^ (z >> 33)).wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        z = (z ^ (z >> 33)).wrapping_mul(0xC4CE_B9FE_1A85_EC53);
        z ^ (z >> 33)
    }
}

/// Builds [`FastHasher`]s.
pub(crate) type FastState = std::hash::BuildHasherDefault<FastHasher>;

/// A `HashMap` with the [`FastHasher`].
pub(crate) type FastMap<K, V> = HashMap<K, V, FastState>;

/// One group of shards.
type Group<K, V> = Vec<Arc<FastMap<K, V>>>;

/// A hash map split into `Arc`-shared shards, themselves grouped behind `Arc`s: a clone
/// copies one pointer per group (not per shard), and a change copies one group's
/// pointer table and one shard.
#[derive(Debug)]
pub(crate) struct CowMap<K, V> {
    groups: Vec<Arc<Group<K, V>>>,
    per_group: usize,
    hasher: FastState,
    len: usize,
}

impl<K, V> Clone for CowMap<K, V> {
    fn clone(&self) -> Self {
        Self {
            groups: self.groups.clone(),
            per_group: self.per_group,
            hasher: self.hasher.clone(),
            len: self.len,
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> CowMap<K, V> {
    /// A map of about `shards` shards (rounded to a square number of groups × shards).
    pub(crate) fn new(shards: usize) -> Self {
        let shards = shards.max(1);
        let mut per_group = shards.isqrt();
        if per_group * per_group < shards {
            per_group += 1;
        }
        let groups = shards.div_ceil(per_group);
        Self {
            groups: (0..groups)
                .map(|_| {
                    Arc::new(
                        (0..per_group)
                            .map(|_| Arc::new(FastMap::default()))
                            .collect(),
                    )
                })
                .collect(),
            per_group,
            hasher: std::hash::BuildHasherDefault::default(),
            len: 0,
        }
    }

    /// (group, shard in group) of a key.
    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> (usize, usize) {
        shard_of(&self.hasher, key, self.groups.len(), self.per_group)
    }

    fn shard_ref<Q: Hash + ?Sized>(&self, key: &Q) -> &FastMap<K, V> {
        let (g, s) = self.shard(key);
        &self.groups[g][s]
    }

    /// The shard of `key`, made unique (copied if shared).
    fn shard_mut<Q: Hash + ?Sized>(&mut self, key: &Q) -> &mut FastMap<K, V> {
        let (g, s) = self.shard(key);
        Arc::make_mut(&mut Arc::make_mut(&mut self.groups[g])[s])
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get<Q>(&self, key: &Q) -> Option<&V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.shard_ref(key).get(key)
    }

    pub(crate) fn get_mut<Q>(&mut self, key: &Q) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if !self.shard_ref(key).contains_key(key) {
            return None;
        }
        self.shard_mut(key).get_mut(key)
    }

    pub(crate) fn insert(&mut self, key: K, value: V) -> Option<V> {
        let old = self.shard_mut(&key).insert(key, value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    /// The value of `key`, inserting a default (with the key made by `owned`) when
    /// absent; allocates a key only for a new entry. (Always `Some`.)
    pub(crate) fn get_or_default_with<Q>(
        &mut self,
        key: &Q,
        owned: impl FnOnce(&Q) -> K,
    ) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Default,
    {
        let (g, s) = self.shard(key);
        let shard = Arc::make_mut(&mut Arc::make_mut(&mut self.groups[g])[s]);
        if insert_default(shard, key, owned) {
            self.len += 1;
        }
        shard.get_mut(key)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.groups
            .iter()
            .flat_map(|g| g.iter())
            .flat_map(|s| s.iter())
    }

    pub(crate) fn remove<Q>(&mut self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if !self.shard_ref(key).contains_key(key) {
            return None;
        }
        let old = self.shard_mut(key).remove(key);
        if old.is_some() {
            self.len -= 1;
        }
        old
    }
}

impl<K: Hash + Eq + Clone, V: Clone> CowMap<K, V> {
    /// Split the map into two disjoint parts (the even and the odd shard groups), each
    /// changeable on its own thread. Add up the parts' [`CowMapPart::added`] with
    /// [`CowMap::add_len`] afterwards.
    pub(crate) fn split_in_two(&mut self) -> (CowMapPart<'_, K, V>, CowMapPart<'_, K, V>) {
        let total_groups = self.groups.len();
        let part = |part: usize, hasher: FastState| CowMapPart {
            groups: Vec::new(),
            parts: 2,
            part,
            per_group: self.per_group,
            total_groups,
            hasher,
            added: 0,
        };
        let (mut even, mut odd) = (part(0, self.hasher.clone()), part(1, self.hasher.clone()));
        for (i, g) in self.groups.iter_mut().enumerate() {
            if i % 2 == 0 {
                even.groups.push(g);
            } else {
                odd.groups.push(g);
            }
        }
        (even, odd)
    }

    /// Count `n` entries inserted through parts.
    pub(crate) fn add_len(&mut self, n: usize) {
        self.len += n;
    }
}

/// Some of a [`CowMap`]'s shard groups, borrowed for changes ([`CowMap::split_in_two`]).
pub(crate) struct CowMapPart<'a, K, V> {
    /// `groups[i]` is the map's group `i * parts + part`.
    groups: Vec<&'a mut Arc<Group<K, V>>>,
    parts: usize,
    part: usize,
    per_group: usize,
    total_groups: usize,
    hasher: FastState,
    /// Entries inserted through this part.
    pub(crate) added: usize,
}

impl<K: Hash + Eq + Clone, V: Clone> CowMapPart<'_, K, V> {
    /// (group, shard in group) of a key, as [`CowMap`] computes it.
    fn shard<Q: Hash + ?Sized>(&self, key: &Q) -> (usize, usize) {
        shard_of(&self.hasher, key, self.total_groups, self.per_group)
    }

    /// Whether `key` lives in this part.
    pub(crate) fn owns<Q: Hash + ?Sized>(&self, key: &Q) -> bool {
        self.shard(key).0 % self.parts == self.part
    }

    /// [`CowMap::get_or_default_with`] for a key this part [owns](Self::owns); `None`
    /// for any other key.
    pub(crate) fn get_or_default_with<Q>(
        &mut self,
        key: &Q,
        owned: impl FnOnce(&Q) -> K,
    ) -> Option<&mut V>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
        V: Default,
    {
        let (g, s) = self.shard(key);
        if g % self.parts != self.part {
            return None;
        }
        let group = self.groups.get_mut(g / self.parts)?;
        let shard = Arc::make_mut(Arc::make_mut(group).get_mut(s)?);
        if insert_default(shard, key, owned) {
            self.added += 1;
        }
        shard.get_mut(key)
    }
}

/// (group, shard in group) of a key in a map of `groups` groups of `per_group` shards.
fn shard_of<Q: Hash + ?Sized>(
    hasher: &FastState,
    key: &Q,
    groups: usize,
    per_group: usize,
) -> (usize, usize) {
    // Bits 32..56: the shard maps use the low bits (bucket) and the top seven (control
    // bytes) of the same hash.
    let h = ((hasher.hash_one(key) >> 32) & 0xFF_FFFF) as usize % (groups * per_group);
    (h / per_group, h % per_group)
}

/// Insert a default value for `key` into `shard` unless it is there (the key made by
/// `owned`, so nothing is allocated for a key already present); whether it inserted.
fn insert_default<K, V, Q>(shard: &mut FastMap<K, V>, key: &Q, owned: impl FnOnce(&Q) -> K) -> bool
where
    K: Borrow<Q> + Hash + Eq,
    Q: Hash + Eq + ?Sized,
    V: Default,
{
    if shard.contains_key(key) {
        return false;
    }
    shard.insert(owned(key), V::default());
    true
}

/// Ids per postings chunk: 1024 (4 KB), so a change copies at most 4 KB of a dense list.
const CHUNK_BITS: u32 = 10;

/// A sorted set of entity ids, chunked by id range so a change copies one chunk.
#[derive(Debug, Clone, Default)]
pub(crate) struct Postings {
    chunks: BTreeMap<u32, Arc<Vec<u32>>>,
    len: usize,
}

impl Postings {
    #[cfg(test)]
    pub(crate) fn insert(&mut self, id: u32) {
        let chunk = Arc::make_mut(self.chunks.entry(id >> CHUNK_BITS).or_default());
        if let Err(pos) = chunk.binary_search(&id) {
            chunk.insert(pos, id);
            self.len += 1;
        }
    }

    /// Insert ascending `ids` (bulk ingestion): appends in place when they come after
    /// what a chunk holds, which is the common case for new entities.
    pub(crate) fn extend_sorted(&mut self, ids: &[u32]) {
        let mut i = 0;
        while i < ids.len() {
            let key = ids[i] >> CHUNK_BITS;
            let end = i + ids[i..].partition_point(|&x| x >> CHUNK_BITS == key);
            let chunk = Arc::make_mut(self.chunks.entry(key).or_default());
            for &id in &ids[i..end] {
                match chunk.last() {
                    Some(&last) if last >= id => {
                        if let Err(pos) = chunk.binary_search(&id) {
                            chunk.insert(pos, id);
                            self.len += 1;
                        }
                    }
                    _ => {
                        chunk.push(id);
                        self.len += 1;
                    }
                }
            }
            i = end;
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

    /// Ids greater than `after` (all ids when `None`), ascending.
    pub(crate) fn iter_after(&self, after: Option<u32>) -> impl Iterator<Item = u32> + '_ {
        let from = after.map_or(0, |a| a >> CHUNK_BITS);
        self.chunks.range(from..).flat_map(move |(_, c)| {
            let start = after.map_or(0, |a| c.partition_point(|&x| x <= a));
            c[start..].iter().copied()
        })
    }

    /// How many ids both sets hold, walking the chunks they share.
    pub(crate) fn intersection_len(&self, other: &Self) -> usize {
        let (small, large) = if self.chunks.len() <= other.chunks.len() {
            (self, other)
        } else {
            (other, self)
        };
        let mut n = 0;
        for (key, a) in &small.chunks {
            let Some(b) = large.chunks.get(key) else {
                continue;
            };
            let (mut i, mut j) = (0, 0);
            while i < a.len() && j < b.len() {
                match a[i].cmp(&b[j]) {
                    std::cmp::Ordering::Less => i += 1,
                    std::cmp::Ordering::Greater => j += 1,
                    std::cmp::Ordering::Equal => {
                        n += 1;
                        i += 1;
                        j += 1;
                    }
                }
            }
        }
        n
    }

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

    /// Every present value with an id greater than `after`, in id order.
    pub(crate) fn iter_after(&self, after: Option<u32>) -> impl Iterator<Item = (u32, &T)> {
        let first = after.map_or(0, |a| a + 1);
        let skip_chunks = (first >> SLOT_BITS) as usize;
        self.iter_from_chunk(skip_chunks)
            .skip_while(move |(id, _)| *id < first)
    }

    fn iter_from_chunk(&self, skip: usize) -> impl Iterator<Item = (u32, &T)> {
        self.chunks
            .iter()
            .enumerate()
            .skip(skip)
            .flat_map(|(c, chunk)| {
                chunk.iter().enumerate().filter_map(move |(i, v)| {
                    v.as_ref()
                        .map(|v| (((c as u32) << SLOT_BITS) | i as u32, v))
                })
            })
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
        *a.get_or_default_with("z", |k: &str| k.to_owned()).unwrap() += 5;
        *a.get_or_default_with("z", |_: &str| unreachable!())
            .unwrap() += 1;
        assert_eq!((a.get("z"), a.len(), b.get("z")), (Some(&6), 2, None));
        assert_eq!(a.iter().count(), 2);
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
        assert_eq!(p.iter_after(Some(5)).collect::<Vec<_>>(), [9000, 100_000]);
        assert_eq!(p.iter_after(Some(9000)).collect::<Vec<_>>(), [100_000]);
        assert_eq!(p.iter_after(None).count(), 3);
        let mut r = Postings::default();
        for id in [3, 4, 9000, 100_001] {
            r.insert(id);
        }
        assert_eq!(p.intersection_len(&r), 2);
        let mut e = Postings::default();
        e.extend_sorted(&[3, 5, 9000, 100_000]);
        e.extend_sorted(&[1, 5, 2000, 100_001]);
        assert_eq!(
            e.iter().collect::<Vec<_>>(),
            [1, 3, 5, 2000, 9000, 100_000, 100_001]
        );
        assert_eq!(e.len(), 7);
        assert_eq!(r.intersection_len(&q), 2);
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
        s.set(2001, Some(8));
        s.set(5000, Some(9));
        assert_eq!(
            s.iter_after(Some(2000)).map(|(i, _)| i).collect::<Vec<_>>(),
            [2001, 5000]
        );
        assert_eq!(s.iter_after(None).count(), 3);
        assert_eq!(s.iter_after(Some(5000)).count(), 0);
    }
}
