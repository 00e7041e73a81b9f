//! Ranked full-text search ("what do we have for payments?").
//!
//! [`SearchIndex`] ranks entities with BM25 over their name, title, description, tags,
//! owner and `spec.type` (with field boosts) plus any extra text a provider supplies
//! (TechDocs, README). Query terms of 4+ characters that match nothing exactly are
//! matched with one typo (two for 8+ characters). An optional [`Embedder`] re-ranks the
//! top results semantically; the default is purely lexical (no network, no model).
//!
//! ```
//! use idp_catalog::{InMemoryCatalog, Mutation, EntityInput, search::SearchIndex};
//! let catalog = InMemoryCatalog::new();
//! catalog.apply("p", Mutation::Full(vec![
//!     EntityInput::new(serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
//!         "metadata": {"name": "payments-gateway", "description": "Takes card payments"},
//!         "spec": {"type": "service", "lifecycle": "production", "owner": "team-pay"}})),
//!     EntityInput::new(serde_json::json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
//!         "metadata": {"name": "search-ui"},
//!         "spec": {"type": "website", "lifecycle": "production", "owner": "team-web"}})),
//! ]));
//! let index = SearchIndex::build(&catalog.snapshot());
//! let hits = index.search("paymnets", 10); // one typo
//! assert_eq!(hits[0].entity_ref.name(), "payments-gateway");
//! ```

use std::collections::HashMap;
use std::fmt;

use idp_core::{EntityRef, Result};
use serde_json::Value;

use crate::catalog::Snapshot;

/// Turns texts into vectors for semantic ranking (a team's own model or service).
///
/// ```
/// use idp_catalog::search::Embedder;
/// #[derive(Debug)]
/// struct Length;
/// impl Embedder for Length {
///     fn embed(&self, texts: &[&str]) -> idp_core::Result<Vec<Vec<f32>>> {
///         Ok(texts.iter().map(|t| vec![t.len() as f32, 1.0]).collect())
///     }
/// }
/// assert_eq!(Length.embed(&["ab"]).unwrap()[0][0], 2.0);
/// ```
pub trait Embedder: Send + Sync + fmt::Debug {
    /// One vector per text, all of the same dimension.
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>>;
}

/// One search result.
///
/// ```
/// let h = idp_catalog::search::Hit { entity_ref: "component:default/a".parse().unwrap(), score: 1.0 };
/// assert!(h.score > 0.0);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    /// The entity.
    pub entity_ref: EntityRef,
    /// Higher is better.
    pub score: f32,
}

const FIELDS: [(&str, f32); 7] = [
    ("name", 3.0),
    ("title", 2.5),
    ("tags", 2.0),
    ("owner", 1.5),
    ("type", 1.2),
    ("description", 1.0),
    ("text", 0.5),
];
const K1: f32 = 1.2;
const B: f32 = 0.75;

#[derive(Debug, Clone)]
struct Doc {
    entity_ref: EntityRef,
    lens: [u32; 7],
    summary: String,
}

/// An inverted index over a catalog snapshot.
#[derive(Debug, Clone, Default)]
pub struct SearchIndex {
    docs: Vec<Doc>,
    /// term → (doc, field, term frequency)
    postings: HashMap<String, Vec<(u32, u8, u16)>>,
    avg_len: [f32; 7],
}

fn tokenize(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_lowercase)
}

/// A lower bound of the edit distance of two ASCII words (0 otherwise): the characters
/// one has and the other lacks, counted with multiplicity, on the side with more. Each
/// edit removes at most one of them from each side.
fn letters_apart(a: &str, b: &str) -> usize {
    if !(a.is_ascii() && b.is_ascii()) {
        return 0;
    }
    let mut count = [0i32; 128];
    for c in a.bytes() {
        count[usize::from(c)] += 1;
    }
    for c in b.bytes() {
        count[usize::from(c)] -= 1;
    }
    let (only_a, only_b) = count.iter().fold((0i32, 0i32), |(pa, pb), &n| {
        if n > 0 { (pa + n, pb) } else { (pa, pb - n) }
    });
    usize::try_from(only_a.max(only_b)).unwrap_or(0)
}

/// Levenshtein distance, giving up above `max`.
fn within(a: &str, b: &str, max: usize) -> bool {
    // Most candidates differ in length by more than `max`: decide those without
    // allocating.
    if a.chars().count().abs_diff(b.chars().count()) > max || letters_apart(a, b) > max {
        return false;
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        if cur.iter().min().copied().unwrap_or(0) > max {
            return false;
        }
        prev = cur;
    }
    prev[b.len()] <= max
}

impl SearchIndex {
    /// Index every entity of `snapshot`.
    ///
    /// ```
    /// let idx = idp_catalog::search::SearchIndex::build(&idp_catalog::InMemoryCatalog::new().snapshot());
    /// assert!(idx.is_empty());
    /// ```
    pub fn build(snapshot: &Snapshot) -> Self {
        let mut index = Self::default();
        for entity in snapshot.entities() {
            let v = entity.to_value();
            let meta = v.get("metadata");
            let s = |o: Option<&Value>, k: &str| -> String {
                o.and_then(|m| m.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let tags = meta
                .and_then(|m| m.get("tags"))
                .and_then(Value::as_array)
                .map(|t| {
                    t.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(" ")
                })
                .unwrap_or_default();
            let spec = v.get("spec");
            let texts = [
                entity.name().to_owned(),
                s(meta, "title"),
                tags,
                s(spec, "owner"),
                s(spec, "type"),
                s(meta, "description"),
                String::new(),
            ];
            index.add(entity.entity_ref().clone(), &texts);
        }
        index.finish();
        index
    }

    fn add(&mut self, entity_ref: EntityRef, texts: &[String; 7]) {
        let id = self.docs.len() as u32;
        let mut lens = [0u32; 7];
        for (f, text) in texts.iter().enumerate() {
            let mut counts: HashMap<String, u16> = HashMap::new();
            for t in tokenize(text) {
                lens[f] += 1;
                *counts.entry(t).or_default() += 1;
            }
            for (t, tf) in counts {
                self.postings.entry(t).or_default().push((id, f as u8, tf));
            }
        }
        let summary = format!("{} {} {}", texts[0], texts[1], texts[5]);
        self.docs.push(Doc {
            entity_ref,
            lens,
            summary,
        });
    }

    fn finish(&mut self) {
        let n = self.docs.len().max(1) as f32;
        for f in 0..7 {
            self.avg_len[f] = self.docs.iter().map(|d| d.lens[f] as f32).sum::<f32>() / n;
        }
    }

    /// Add extra text (TechDocs, README) to an indexed entity.
    ///
    /// ```
    /// let mut idx = idp_catalog::search::SearchIndex::default();
    /// idx.add_text(&"component:default/a".parse().unwrap(), "nothing indexed yet");
    /// assert!(idx.is_empty());
    /// ```
    pub fn add_text(&mut self, entity: &EntityRef, text: &str) {
        let Some(id) = self.docs.iter().position(|d| d.entity_ref == *entity) else {
            return;
        };
        let mut counts: HashMap<String, u16> = HashMap::new();
        for t in tokenize(text) {
            self.docs[id].lens[6] += 1;
            *counts.entry(t).or_default() += 1;
        }
        for (t, tf) in counts {
            self.postings.entry(t).or_default().push((id as u32, 6, tf));
        }
        self.finish();
    }

    /// Number of indexed entities.
    ///
    /// ```
    /// assert_eq!(idp_catalog::search::SearchIndex::default().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether nothing is indexed.
    ///
    /// ```
    /// assert!(idp_catalog::search::SearchIndex::default().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    fn expand(&self, term: &str) -> Vec<(&str, f32)> {
        if let Some((k, _)) = self.postings.get_key_value(term) {
            return vec![(k.as_str(), 1.0)];
        }
        let len = term.chars().count();
        let max = match len {
            0..=3 => return Vec::new(),
            4..=7 => 1,
            _ => 2,
        };
        self.postings
            .keys()
            .filter(|k| within(term, k, max))
            .map(|k| (k.as_str(), 0.8))
            .collect()
    }

    /// The `limit` best entities for `query`, best first.
    ///
    /// ```
    /// assert!(idp_catalog::search::SearchIndex::default().search("x", 5).is_empty());
    /// ```
    pub fn search(&self, query: &str, limit: usize) -> Vec<Hit> {
        let n = self.docs.len() as f32;
        let mut scores: HashMap<u32, f32> = HashMap::new();
        for term in tokenize(query) {
            for (t, weight) in self.expand(&term) {
                let Some(postings) = self.postings.get(t) else {
                    continue;
                };
                let mut docs: Vec<u32> = postings.iter().map(|p| p.0).collect();
                docs.dedup();
                let df = docs.len() as f32;
                let idf = ((n - df + 0.5) / (df + 0.5) + 1.0).ln();
                for &(doc, field, tf) in postings {
                    let f = field as usize;
                    let len = self.docs[doc as usize].lens[f] as f32;
                    let avg = self.avg_len[f].max(1.0);
                    let tf = f32::from(tf);
                    let part = tf * (K1 + 1.0) / (tf + K1 * (1.0 - B + B * len / avg));
                    *scores.entry(doc).or_default() += weight * FIELDS[f].1 * idf * part;
                }
            }
        }
        let mut hits: Vec<(u32, f32)> = scores.into_iter().collect();
        hits.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        hits.truncate(limit);
        hits.into_iter()
            .map(|(doc, score)| Hit {
                entity_ref: self.docs[doc as usize].entity_ref.clone(),
                score,
            })
            .collect()
    }

    /// Like [`SearchIndex::search`], restricted to `allowed` entities (e.g. the refs of
    /// a filter query).
    ///
    /// ```
    /// assert!(idp_catalog::search::SearchIndex::default().search_within("x", 5, &[]).is_empty());
    /// ```
    pub fn search_within(&self, query: &str, limit: usize, allowed: &[EntityRef]) -> Vec<Hit> {
        let allowed: std::collections::HashSet<&EntityRef> = allowed.iter().collect();
        let mut hits = self.search(query, usize::MAX);
        hits.retain(|h| allowed.contains(&h.entity_ref));
        hits.truncate(limit);
        hits
    }

    /// Lexical search, then the top `2 × limit` re-ranked by cosine similarity from
    /// `embedder` (blended half and half with the normalised lexical score).
    ///
    /// ```
    /// # #[derive(Debug)] struct E;
    /// # impl idp_catalog::search::Embedder for E { fn embed(&self, t: &[&str]) -> idp_core::Result<Vec<Vec<f32>>> { Ok(t.iter().map(|_| vec![1.0]).collect()) } }
    /// assert!(idp_catalog::search::SearchIndex::default().search_semantic("x", 3, &E).unwrap().is_empty());
    /// ```
    pub fn search_semantic(
        &self,
        query: &str,
        limit: usize,
        embedder: &dyn Embedder,
    ) -> Result<Vec<Hit>> {
        let mut hits = self.search(query, limit.saturating_mul(2));
        if hits.is_empty() {
            return Ok(hits);
        }
        let top = hits.first().map_or(1.0, |h| h.score.max(f32::EPSILON));
        let mut texts: Vec<&str> = vec![query];
        for h in &hits {
            let doc = self.docs.iter().find(|d| d.entity_ref == h.entity_ref);
            texts.push(doc.map_or("", |d| d.summary.as_str()));
        }
        let vectors = embedder.embed(&texts)?;
        let cos = |a: &[f32], b: &[f32]| -> f32 {
            let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
            let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
            let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
            if na == 0.0 || nb == 0.0 {
                0.0
            } else {
                dot / (na * nb)
            }
        };
        if let Some((q, docs)) = vectors.split_first() {
            for (h, v) in hits.iter_mut().zip(docs) {
                h.score = 0.5 * (h.score / top) + 0.5 * cos(q, v);
            }
        }
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(limit);
        Ok(hits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance() {
        assert!(within("payments", "paymnets", 2));
        assert!(within("cart", "card", 1));
        assert!(!within("cart", "search", 1));
        assert!(!within("paymnets", "123456", 2));
        assert_eq!(letters_apart("paymnets", "payments"), 0);
        assert_eq!(letters_apart("cart", "card"), 1);
        assert_eq!(letters_apart("abc", "x"), 3);
    }

    /// Plain Levenshtein distance, for checking the filtered one.
    fn levenshtein(a: &str, b: &str) -> usize {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        let mut prev: Vec<usize> = (0..=b.len()).collect();
        for (i, ca) in a.iter().enumerate() {
            let mut cur = vec![i + 1; b.len() + 1];
            for (j, cb) in b.iter().enumerate() {
                cur[j + 1] = (prev[j] + usize::from(ca != cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1);
            }
            prev = cur;
        }
        prev[b.len()]
    }

    proptest::proptest! {
        /// The letter bound never exceeds the edit distance, so the filter never drops
        /// a match: `within` agrees with the plain distance.
        #[test]
        fn letter_bound_keeps_within_exact(a in "[a-e0-2é]{0,9}", b in "[a-e0-2é]{0,9}") {
            let d = levenshtein(&a, &b);
            proptest::prop_assert!(letters_apart(&a, &b) <= d);
            for max in 0..4 {
                proptest::prop_assert_eq!(within(&a, &b, max), d <= max);
            }
        }
    }
}
