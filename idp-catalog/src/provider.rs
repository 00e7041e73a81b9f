//! Entity providers: where entities come from.
//!
//! A provider reads its source and hands the catalog a [`Mutation`]: `Full` (its whole
//! set; what it no longer has is removed) or `Delta` (changes only). The catalog
//! re-validates only what changed. [`refresh`] runs one provider against a catalog,
//! streaming: it opens a [`Stage`] and calls [`EntityProvider::read_staged`], so each
//! entity is validated as soon as it is read (on the reader's thread, its parsed tree
//! dropped at once) and the whole read is committed as one mutation.
//!
//! [`FileProvider`] reads a local directory: files matching a glob (default
//! `**/catalog-info.yaml`), then the files named by `Location` entities' `target` /
//! `targets`, relative to the file that names them and confined to the directory.
//! [`GitProvider`] does the same in a Git repository at a branch or revision.
//!
//! ```
//! use idp_catalog::{InMemoryCatalog, provider::{FileProvider, refresh}};
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let dir = tempfile::tempdir().unwrap();
//! idp_catalog::generate::write_org(dir.path(), 300, 1).unwrap();
//! let catalog = InMemoryCatalog::new();
//! let provider = FileProvider::new("local", dir.path());
//! let report = refresh(&catalog, &provider).await.unwrap();
//! assert!(report.rejected.is_empty(), "{:?}", report.rejected);
//! assert_eq!(catalog.snapshot().len(), 301); // the org and its root Location
//! # });
//! ```

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use idp_core::{EntityRef, Error, Result};
use serde_json::Value;
use tracing::Instrument;

use crate::catalog::{
    EntityInput, InMemoryCatalog, IngestReport, Mutation, Rejection, Stage, StagedMutation,
};
use crate::load::{LoadedDocument, input_of, load_each, relative_to};
use crate::placeholder::{DirSource, SourceReader, UrlReader, resolve_relative};
use crate::validate::Problem;

/// What a provider read: the mutation for the catalog and what it could not read.
///
/// ```
/// let out = idp_catalog::provider::ProviderOutput { mutation: idp_catalog::Mutation::Full(vec![]), rejected: vec![] };
/// assert!(out.rejected.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderOutput {
    /// The change to apply.
    pub mutation: Mutation,
    /// Files or documents that could not be read (bad YAML, bad placeholders, missing
    /// required Location targets).
    pub rejected: Vec<Rejection>,
}

/// What a provider read, validated by a [`Stage`]: the staged mutation and what it
/// could not read.
///
/// ```
/// let out = idp_catalog::provider::StagedOutput { mutation: idp_catalog::StagedMutation::Full(vec![]), rejected: vec![] };
/// assert!(out.rejected.is_empty());
/// ```
#[derive(Debug)]
pub struct StagedOutput {
    /// The change to commit.
    pub mutation: StagedMutation,
    /// Files or documents that could not be read.
    pub rejected: Vec<Rejection>,
}

/// A source of entities (Backstage's `EntityProvider`).
///
/// ```
/// use idp_catalog::provider::{EntityProvider, ProviderOutput};
/// #[derive(Debug)]
/// struct Static;
/// #[async_trait::async_trait]
/// impl EntityProvider for Static {
///     fn name(&self) -> &str { "static" }
///     async fn read(&self) -> idp_core::Result<ProviderOutput> {
///         Ok(ProviderOutput { mutation: idp_catalog::Mutation::Full(vec![]), rejected: vec![] })
///     }
/// }
/// # let _ = Static;
/// ```
#[async_trait]
pub trait EntityProvider: Send + Sync + fmt::Debug {
    /// A stable name; the catalog remembers which provider supplied each entity.
    fn name(&self) -> &str;
    /// Read the whole source (a full mutation).
    async fn read(&self) -> Result<ProviderOutput>;
    /// Read the whole source into `stage`, which validates each entity as soon as it is
    /// read ([`Stage::prepare`], callable from any thread), so that a large source is
    /// never held parsed all at once. [`refresh`] reads this way.
    ///
    /// The default calls [`read`](Self::read) and stages its mutation; [`FileProvider`]
    /// and [`GitProvider`] validate each file's entities on the thread that parsed it.
    ///
    /// ```
    /// # use idp_catalog::provider::{EntityProvider, FileProvider};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// idp_catalog::generate::write_org(dir.path(), 100, 1).unwrap();
    /// let catalog = idp_catalog::InMemoryCatalog::new();
    /// let stage = catalog.stage("local");
    /// let out = FileProvider::new("local", dir.path()).read_staged(&stage).await.unwrap();
    /// let report = catalog.commit(&stage, out.mutation);
    /// assert_eq!(report.added.len(), 101);
    /// # });
    /// ```
    async fn read_staged(&self, stage: &Stage) -> Result<StagedOutput> {
        let out = self.read().await?;
        Ok(StagedOutput {
            mutation: stage.prepare_mutation(out.mutation),
            rejected: out.rejected,
        })
    }
}

/// Read `provider` into `catalog`: each entity is validated as it is read
/// ([`EntityProvider::read_staged`]) and the whole read is committed as one full
/// mutation; the report includes what the provider could not read.
///
/// ```
/// # use idp_catalog::provider::{refresh, FileProvider};
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let report = refresh(&idp_catalog::InMemoryCatalog::new(), &FileProvider::new("p", dir.path())).await.unwrap();
/// assert!(report.added.is_empty());
/// # });
/// ```
pub async fn refresh(
    catalog: &InMemoryCatalog,
    provider: &dyn EntityProvider,
) -> Result<IngestReport> {
    let span = tracing::info_span!("catalog.refresh", provider = provider.name());
    let stage = catalog.stage(provider.name());
    let out = provider
        .read_staged(&stage)
        .instrument(span.clone())
        .await?;
    let _guard = span.enter();
    let mut report = catalog.commit(&stage, out.mutation);
    report.rejected.splice(0..0, out.rejected);
    Ok(report)
}

/// The conversion of a plain read: the input itself.
fn keep(input: EntityInput) -> EntityInput {
    input
}

/// A tiny glob matcher over `/`-separated paths: `**` (any number of directories), `*`
/// and `?` (within one segment).
///
/// ```
/// use idp_catalog::provider::glob_match;
/// assert!(glob_match("**/catalog-info.yaml", "catalog-info.yaml"));
/// assert!(glob_match("**/catalog-info.yaml", "a/b/catalog-info.yaml"));
/// assert!(glob_match("services/*.yaml", "services/cart.yaml"));
/// assert!(!glob_match("services/*.yaml", "services/a/cart.yaml"));
/// ```
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    match_segments(&pat, &segs)
}

fn match_segments(pat: &[&str], segs: &[&str]) -> bool {
    match pat.split_first() {
        None => segs.is_empty(),
        Some((&"**", rest)) => (0..=segs.len()).any(|i| match_segments(rest, &segs[i..])),
        Some((p, rest)) => {
            !segs.is_empty()
                && match_segment(p.as_bytes(), segs[0].as_bytes())
                && match_segments(rest, &segs[1..])
        }
    }
}

fn match_segment(p: &[u8], s: &[u8]) -> bool {
    // Iterative wildcard match with backtracking on the last '*'.
    let (mut pi, mut si) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            mark = si;
            pi += 1;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

/// Files of a source tree, by `/`-separated relative path.
pub(crate) trait Tree: SourceReader {
    /// Every file path in the tree.
    fn list(&self) -> Vec<String>;
}

impl Tree for DirSource {
    fn list(&self) -> Vec<String> {
        let mut out = Vec::new();
        list_dir(self.root(), self.root(), &mut out);
        out.sort();
        out
    }
}

fn list_dir(root: &Path, dir: &Path, out: &mut Vec<String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "node_modules" || name == "target" {
            continue;
        }
        match entry.file_type() {
            Ok(t) if t.is_dir() => list_dir(root, &entry.path(), out),
            Ok(t) if t.is_file() => out.push(relative_to(&entry.path(), root)),
            _ => {}
        }
    }
}

/// The result of discovering and reading a tree.
#[derive(Debug)]
pub(crate) struct TreeRead<T = EntityInput> {
    /// The entities read, in file and document order, each converted as soon as its
    /// file was parsed.
    pub(crate) inputs: Vec<T>,
    pub(crate) rejected: Vec<Rejection>,
    /// Entity keys per file, for deltas.
    pub(crate) by_file: HashMap<String, Vec<EntityRef>>,
}

/// How many Location hops deep URL targets are followed (a chain of remote Locations
/// naming further remote Locations); deeper targets are rejected.
pub const MAX_URL_LOCATION_DEPTH: usize = 8;

/// One file to read: a tree path or an absolute URL, the location that named it, and
/// how many URL Location hops led to it.
type WaveItem = (String, Option<String>, usize);

/// Turns each entity read into what the reader returns: the input itself, or the
/// entity validated by a [`Stage`] (so that its parsed tree is dropped at once).
type Convert<'a, T> = &'a (dyn Fn(EntityInput) -> T + Sync);

/// What a file's parse leaves for the serial part of a wave.
enum Slot<T> {
    /// An entity, converted on the reader thread.
    Ready(T),
    /// A Location: its targets are followed (in order, serially) before it is converted.
    Location(LoadedDocument),
}

/// One file, parsed: its documents in order, the rejections of documents whose
/// placeholders failed, and the refs of its entities.
struct FileRead<T> {
    slots: Vec<Slot<T>>,
    rejected: Vec<Rejection>,
    refs: Vec<EntityRef>,
}

/// What the files of one wave have in common.
struct WaveContext<'a, T> {
    tree: &'a dyn SourceReader,
    url_reader: Option<&'a dyn UrlReader>,
    location_prefix: &'a str,
    revision: Option<&'a str>,
    convert: Convert<'a, T>,
}

impl<T> WaveContext<'_, T> {
    fn location_of(&self, file: &str) -> String {
        if is_url(file) {
            format!("url:{file}")
        } else {
            format!("{}{file}", self.location_prefix)
        }
    }
}

/// Read `start` files and every file their Locations lead to, in waves, parsing each
/// wave in parallel. URL targets are read through `url_reader`. Every entity is passed
/// through `convert` on the thread that parsed it.
pub(crate) fn read_tree<T: Send>(
    tree: &dyn SourceReader,
    start: Vec<String>,
    location_prefix: &str,
    revision: Option<&str>,
    url_reader: Option<&dyn UrlReader>,
    convert: Convert<'_, T>,
) -> TreeRead<T> {
    let cx = WaveContext {
        tree,
        url_reader,
        location_prefix,
        revision,
        convert,
    };
    let mut out = TreeRead {
        inputs: Vec::new(),
        rejected: Vec::new(),
        by_file: HashMap::new(),
    };
    let mut seen: HashSet<String> = start.iter().cloned().collect();
    let mut wave: Vec<WaveItem> = start.into_iter().map(|f| (f, None, 0)).collect();
    while !wave.is_empty() {
        let started = std::time::Instant::now();
        let loaded = load_wave(&cx, &wave);
        let loaded_at = started.elapsed();
        // One allocation for this wave's entities (regrowing a vector of 250,000 of them
        // copies it several times, into fresh pages).
        out.inputs.reserve(
            loaded
                .iter()
                .map(|r| r.as_ref().map_or(0, |f| f.slots.len()))
                .sum(),
        );
        let mut next = Vec::new();
        for ((file, origin, depth), result) in wave.iter().zip(loaded) {
            let location = cx.location_of(file);
            let read = match result {
                Ok(read) => read,
                Err(problem) => {
                    out.rejected.push(Rejection {
                        location: Some(location),
                        document: None,
                        entity_ref: None,
                        problems: vec![problem],
                    });
                    continue;
                }
            };
            let mut slots = read.slots;
            for slot in &mut slots {
                if let Slot::Location(d) = slot {
                    let from = Follow {
                        file,
                        location: &location,
                        depth: *depth,
                        url_reader: url_reader.is_some(),
                    };
                    let warnings =
                        follow_location(d, &from, tree, &mut seen, &mut next, &mut out.rejected);
                    d.warnings.extend(warnings);
                }
            }
            out.rejected.extend(read.rejected);
            for slot in slots {
                match slot {
                    Slot::Ready(t) => out.inputs.push(t),
                    Slot::Location(d) => match input_of(d, &location, revision) {
                        Ok(mut input) => {
                            input.origin_location.clone_from(origin);
                            out.inputs.push(convert(input));
                        }
                        Err(rejection) => out.rejected.push(rejection),
                    },
                }
            }
            // The refs of the documents that became inputs (computed by the reader).
            out.by_file
                .entry(file.clone())
                .or_default()
                .extend(read.refs);
        }
        tracing::debug!(
            files = wave.len(),
            load_ms = loaded_at.as_secs_f64() * 1e3,
            assemble_ms = started.elapsed().saturating_sub(loaded_at).as_secs_f64() * 1e3,
            "catalog files read"
        );
        wave = next;
    }
    out
}

fn entity_ref_of(value: &Value) -> Option<EntityRef> {
    let kind = value.get("kind")?.as_str()?;
    let meta = value.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let ns = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or(idp_core::DEFAULT_NAMESPACE);
    EntityRef::new(kind, ns, name).ok()
}

/// Whether `s` is an absolute URL (`scheme://...`).
fn is_url(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme.starts_with(|c: char| c.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
    })
}

/// Resolve `target` against the URL `base` (the file naming it): absolute URLs stay,
/// `/path` replaces the path, anything else is relative to the base's directory, with
/// `.` and `..` segments removed. `None` when `..` climbs above the host.
pub(crate) fn join_url(base: &str, target: &str) -> Option<String> {
    if is_url(target) {
        return Some(target.to_owned());
    }
    let (scheme, rest) = base.split_once("://")?;
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let mut parts: Vec<&str> = Vec::new();
    if !target.starts_with('/') {
        parts.extend(path.split('/'));
        parts.pop(); // the file name
    }
    let (target_path, suffix) = match target.find(['?', '#']) {
        Some(i) => target.split_at(i),
        None => (target, ""),
    };
    for part in target_path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    parts.retain(|p| !p.is_empty());
    Some(format!("{scheme}://{host}/{}{suffix}", parts.join("/")))
}

/// The file whose Location is being followed.
struct Follow<'a> {
    file: &'a str,
    location: &'a str,
    depth: usize,
    url_reader: bool,
}

/// Queue the targets of a Location document; returns warnings for the document (URL
/// targets with no `UrlReader` configured).
fn follow_location(
    doc: &LoadedDocument,
    from: &Follow<'_>,
    tree: &dyn SourceReader,
    seen: &mut HashSet<String>,
    next: &mut Vec<WaveItem>,
    rejected: &mut Vec<Rejection>,
) -> Vec<String> {
    let mut warnings = Vec::new();
    let spec = doc.value.get("spec");
    let optional = spec.and_then(|s| s.get("presence")).and_then(Value::as_str) == Some("optional");
    let remote_file = is_url(from.file);
    let mut targets: Vec<&str> = Vec::new();
    if let Some(t) = spec.and_then(|s| s.get("target")).and_then(Value::as_str) {
        targets.push(t);
    }
    if let Some(Value::Array(ts)) = spec.and_then(|s| s.get("targets")) {
        targets.extend(ts.iter().filter_map(Value::as_str));
    }
    let reject = |message: String| Rejection {
        location: Some(from.location.to_owned()),
        document: Some(doc.index),
        entity_ref: None,
        problems: vec![Problem::new("spec.targets", "location-target", message)],
    };
    for target in targets {
        if is_url(target) || remote_file {
            let Some(url) = (if remote_file {
                join_url(from.file, target)
            } else {
                Some(target.to_owned())
            }) else {
                rejected.push(reject(format!(
                    "target {target:?} climbs above the host of {}; fix the path",
                    from.file
                )));
                continue;
            };
            if !from.url_reader {
                warnings.push(format!(
                    "Location target {url} was not read: no UrlReader is configured (give the provider one with with_url_reader)"
                ));
                continue;
            }
            if seen.contains(&url) {
                continue;
            }
            let depth = from.depth + 1;
            if depth > MAX_URL_LOCATION_DEPTH {
                rejected.push(reject(format!(
                    "target {url} is more than {MAX_URL_LOCATION_DEPTH} URL Locations deep; flatten the chain of Locations"
                )));
                continue;
            }
            seen.insert(url.clone());
            next.push((url, Some(from.location.to_owned()), depth));
            continue;
        }
        let Some(rel) = resolve_relative(from.file, target) else {
            rejected.push(reject(format!(
                "target {target:?} points outside the source root; a Location may only name files inside its repository or directory"
            )));
            continue;
        };
        if seen.contains(&rel) {
            continue;
        }
        if !optional && tree.read_file(&rel).is_err() {
            rejected.push(reject(format!(
                "target {target:?} ({rel}) does not exist; fix the path or set spec.presence: optional"
            )));
            continue;
        }
        seen.insert(rel.clone());
        next.push((rel, Some(from.location.to_owned()), from.depth));
    }
    warnings
}

/// The source of a file read from a URL: relative placeholders in it are refused
/// (only absolute URLs are read for such files).
#[derive(Debug)]
struct NoRelativeFiles;

impl SourceReader for NoRelativeFiles {
    fn read_file(&self, path: &str) -> Result<String> {
        Err(Error::invalid_input(format!(
            "{path}: a file read from a URL can only use absolute URLs in placeholders; write the full URL"
        )))
    }
}

/// Read, parse and convert the files of one wave, in parallel.
fn load_wave<T: Send>(
    cx: &WaveContext<'_, T>,
    wave: &[WaveItem],
) -> Vec<std::result::Result<FileRead<T>, Problem>> {
    let load_one = |(file, origin, _): &WaveItem| -> std::result::Result<FileRead<T>, Problem> {
        let (text, source): (String, &dyn SourceReader) = if is_url(file) {
            let reader = cx.url_reader.ok_or_else(|| {
                Problem::new("", "read", format!("{file}: no UrlReader is configured"))
            })?;
            let text = reader
                .read_url(file)
                .map_err(|e| Problem::new("", "read", format!("{file}: {e}")))?;
            (text, &NoRelativeFiles as &dyn SourceReader)
        } else {
            let text = cx
                .tree
                .read_file(file)
                .map_err(|e| Problem::new("", "read", e.to_string()))?;
            (text, cx.tree)
        };
        let location = cx.location_of(file);
        let mut read = FileRead {
            slots: Vec::new(),
            rejected: Vec::new(),
            refs: Vec::new(),
        };
        // Each document is converted before the next is parsed: only one parsed tree
        // is alive at a time, and its memory is reused for the next.
        load_each(file, &text, source, cx.url_reader, |d| {
            if d.error.is_none() {
                read.refs.extend(entity_ref_of(&d.value));
                if d.value.get("kind").and_then(Value::as_str) == Some("Location") {
                    read.slots.push(Slot::Location(d));
                    return;
                }
            }
            match input_of(d, &location, cx.revision) {
                Ok(mut input) => {
                    input.origin_location.clone_from(origin);
                    read.slots.push(Slot::Ready((cx.convert)(input)));
                }
                Err(rejection) => read.rejected.push(rejection),
            }
        })
        .map_err(|e| Problem::new("", "yaml", e.to_string()))?;
        Ok(read)
    };
    let workers = if wave.len() < 8 {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |p| p.get().min(8))
    };
    if workers <= 1 {
        return wave.iter().map(load_one).collect();
    }
    // Files differ a lot in size (one org file, many parts): workers take the next file
    // as they finish one instead of fixed halves.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let Some(item) = wave.get(i) else {
                return done;
            };
            done.push((i, load_one(item)));
        }
    };
    let mut done: Vec<_> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers).map(|_| scope.spawn(work)).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    done.sort_unstable_by_key(|(i, _)| *i);
    let mut out = Vec::with_capacity(wave.len());
    let mut results = done.into_iter().peekable();
    for i in 0..wave.len() {
        match results.next_if(|(j, _)| *j == i) {
            Some((_, r)) => out.push(r),
            None => out.push(Err(Problem::new(
                "",
                "internal",
                "a reader thread panicked",
            ))),
        }
    }
    out
}

/// Reads catalog files from a local directory.
///
/// ```
/// let p = idp_catalog::provider::FileProvider::new("local", "/srv/catalog").with_glob("**/*.yaml");
/// # use idp_catalog::provider::EntityProvider;
/// assert_eq!(p.name(), "local");
/// ```
#[derive(Debug, Clone)]
pub struct FileProvider {
    name: String,
    source: DirSource,
    glob: String,
    url_reader: Option<Arc<dyn UrlReader>>,
    last: Arc<Mutex<HashMap<String, Vec<EntityRef>>>>,
}

impl FileProvider {
    /// Read `root`, discovering `**/catalog-info.yaml`.
    ///
    /// ```
    /// let _ = idp_catalog::provider::FileProvider::new("local", ".");
    /// ```
    pub fn new(name: impl Into<String>, root: impl Into<PathBuf>) -> Self {
        Self {
            name: name.into(),
            source: DirSource::new(root),
            glob: "**/catalog-info.yaml".into(),
            url_reader: None,
            last: Arc::default(),
        }
    }

    /// Discover files matching `glob` (relative to the root) instead.
    ///
    /// ```
    /// let _ = idp_catalog::provider::FileProvider::new("local", ".").with_glob("catalog/*.yaml");
    /// ```
    pub fn with_glob(mut self, glob: impl Into<String>) -> Self {
        self.glob = glob.into();
        self
    }

    /// Read `$text: https://...` placeholders through `reader`.
    ///
    /// ```
    /// # #[derive(Debug)] struct R;
    /// # impl idp_catalog::placeholder::UrlReader for R { fn read_url(&self, _: &str) -> idp_core::Result<String> { Ok(String::new()) } }
    /// let _ = idp_catalog::provider::FileProvider::new("local", ".").with_url_reader(std::sync::Arc::new(R));
    /// ```
    pub fn with_url_reader(mut self, reader: Arc<dyn UrlReader>) -> Self {
        self.url_reader = Some(reader);
        self
    }

    fn location_prefix(&self) -> String {
        let root = self
            .source
            .root()
            .canonicalize()
            .unwrap_or_else(|_| self.source.root().to_path_buf());
        format!("file:{}/", root.display())
    }

    fn remember(&self, by_file: HashMap<String, Vec<EntityRef>>, replace: bool) {
        let mut last = match self.last.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if replace {
            *last = by_file;
        } else {
            last.extend(by_file);
        }
    }

    /// Read only `changed` files (relative to the root, or absolute inside it) and
    /// return a delta: their entities as upserts, and the entities they held at the
    /// previous read but no longer do as removals. A deleted file removes its entities.
    ///
    /// ```
    /// # use idp_catalog::provider::{FileProvider, refresh};
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let file = dir.path().join("catalog-info.yaml");
    /// std::fs::write(&file, "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: a}\nspec: {type: team, children: []}\n").unwrap();
    /// let catalog = idp_catalog::InMemoryCatalog::new();
    /// let p = FileProvider::new("local", dir.path());
    /// refresh(&catalog, &p).await.unwrap();
    /// std::fs::write(&file, "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: b}\nspec: {type: team, children: []}\n").unwrap();
    /// let out = p.read_changed(&[file]).await.unwrap();
    /// let report = catalog.apply("local", out.mutation);
    /// assert_eq!((report.added.len(), report.removed.len()), (1, 1));
    /// # });
    /// ```
    pub async fn read_changed(&self, changed: &[PathBuf]) -> Result<ProviderOutput> {
        let this = self.clone();
        let changed = changed.to_vec();
        tokio::task::spawn_blocking(move || this.read_changed_blocking(&changed))
            .await
            .map_err(|e| Error::internal("the file reader task failed").with_source(e))?
    }

    fn read_changed_blocking(&self, changed: &[PathBuf]) -> Result<ProviderOutput> {
        let root = self.source.root();
        let mut present = Vec::new();
        let mut files = Vec::new();
        for path in changed {
            let rel = if path.is_absolute() {
                let canon_root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
                let p = path
                    .strip_prefix(root)
                    .or_else(|_| path.strip_prefix(&canon_root));
                match p {
                    Ok(r) => relative_to(r, Path::new("")),
                    Err(_) => {
                        return Err(Error::invalid_input(format!(
                            "{} is not inside {}",
                            path.display(),
                            root.display()
                        )));
                    }
                }
            } else {
                relative_to(path, Path::new(""))
            };
            if root.join(&rel).is_file() {
                present.push(rel.clone());
            }
            files.push(rel);
        }
        let read = read_tree(
            &self.source,
            present,
            &self.location_prefix(),
            None,
            self.url_reader.as_deref(),
            &keep,
        );
        let previous: Vec<EntityRef> = {
            let last = match self.last.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            files
                .iter()
                .filter_map(|f| last.get(f))
                .flatten()
                .cloned()
                .collect()
        };
        let now: HashSet<EntityRef> = read.by_file.values().flatten().cloned().collect();
        let removals = previous.into_iter().filter(|r| !now.contains(r)).collect();
        let mut by_file = read.by_file;
        for f in files {
            by_file.entry(f).or_default();
        }
        self.remember(by_file, false);
        Ok(ProviderOutput {
            mutation: Mutation::Delta {
                upserts: read.inputs,
                removals,
            },
            rejected: read.rejected,
        })
    }

    /// Read the whole directory, converting each entity with `convert`.
    fn read_full<T: Send>(&self, convert: Convert<'_, T>) -> (Vec<T>, Vec<Rejection>) {
        let start: Vec<String> = self
            .source
            .list()
            .into_iter()
            .filter(|f| glob_match(&self.glob, f))
            .collect();
        let read = read_tree(
            &self.source,
            start,
            &self.location_prefix(),
            None,
            self.url_reader.as_deref(),
            convert,
        );
        self.remember(read.by_file, true);
        (read.inputs, read.rejected)
    }
}

#[async_trait]
impl EntityProvider for FileProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn read(&self) -> Result<ProviderOutput> {
        let span = tracing::info_span!("file_provider.read", provider = %self.name);
        let this = self.clone();
        let (inputs, rejected) = tokio::task::spawn_blocking(move || this.read_full(&keep))
            .instrument(span)
            .await
            .map_err(|e| Error::internal("the file reader task failed").with_source(e))?;
        Ok(ProviderOutput {
            mutation: Mutation::Full(inputs),
            rejected,
        })
    }

    async fn read_staged(&self, stage: &Stage) -> Result<StagedOutput> {
        let span = tracing::info_span!("file_provider.read_staged", provider = %self.name);
        let this = self.clone();
        let stage = stage.clone();
        let (staged, rejected) =
            tokio::task::spawn_blocking(move || this.read_full(&|input| stage.prepare(input)))
                .instrument(span)
                .await
                .map_err(|e| Error::internal("the file reader task failed").with_source(e))?;
        Ok(StagedOutput {
            mutation: StagedMutation::Full(staged),
            rejected,
        })
    }
}

/// Reads catalog files from a Git repository at a branch or revision, through
/// idp-core's [`GitRepo`](idp_core::git::GitRepo): files matching a glob (default
/// `**/catalog-info.yaml`), then the files named by `Location` targets, relative to the
/// file and confined to the repository. Every entity records the commit it was read at
/// (`idp.dev/source-revision`).
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use idp_core::git::{CommitRequest, GitRepo, Identity, InitOptions};
/// use idp_catalog::provider::{GitProvider, refresh};
/// let dir = tempfile::tempdir().unwrap();
/// let repo = GitRepo::init(dir.path(), InitOptions::bare("main")).await.unwrap();
/// repo.commit(CommitRequest::new("main", "add catalog", Identity::new("a", "a@example.com"))
///     .put("catalog-info.yaml", "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: team}\nspec: {type: team, children: []}\n"))
///     .await.unwrap();
/// let catalog = idp_catalog::InMemoryCatalog::new();
/// let report = refresh(&catalog, &GitProvider::new("repo", repo, "main")).await.unwrap();
/// assert_eq!(report.added.len(), 1);
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct GitProvider {
    name: String,
    repo: idp_core::git::GitRepo,
    rev: String,
    glob: String,
    url_reader: Option<Arc<dyn UrlReader>>,
}

impl GitProvider {
    /// Read `repo` at `rev` (a branch, tag or commit).
    ///
    /// ```
    /// # async fn f(repo: idp_core::git::GitRepo) {
    /// let p = idp_catalog::provider::GitProvider::new("platform", repo, "main");
    /// # }
    /// ```
    pub fn new(
        name: impl Into<String>,
        repo: idp_core::git::GitRepo,
        rev: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            repo,
            rev: rev.into(),
            glob: "**/catalog-info.yaml".into(),
            url_reader: None,
        }
    }

    /// Discover files matching `glob` instead.
    ///
    /// ```
    /// # async fn f(repo: idp_core::git::GitRepo) {
    /// let p = idp_catalog::provider::GitProvider::new("p", repo, "main").with_glob("catalog/*.yaml");
    /// # }
    /// ```
    pub fn with_glob(mut self, glob: impl Into<String>) -> Self {
        self.glob = glob.into();
        self
    }

    /// Read `$text: https://...` placeholders through `reader`.
    ///
    /// ```
    /// # #[derive(Debug)] struct R;
    /// # impl idp_catalog::placeholder::UrlReader for R { fn read_url(&self, _: &str) -> idp_core::Result<String> { Ok(String::new()) } }
    /// # async fn f(repo: idp_core::git::GitRepo) {
    /// let p = idp_catalog::provider::GitProvider::new("p", repo, "main").with_url_reader(std::sync::Arc::new(R));
    /// # }
    /// ```
    pub fn with_url_reader(mut self, reader: Arc<dyn UrlReader>) -> Self {
        self.url_reader = Some(reader);
        self
    }
}

#[async_trait]
impl EntityProvider for GitProvider {
    fn name(&self) -> &str {
        &self.name
    }

    async fn read(&self) -> Result<ProviderOutput> {
        let span = tracing::info_span!("git_provider.read", provider = %self.name, rev = %self.rev);
        let (inputs, rejected) = self.read_full(keep).instrument(span).await?;
        Ok(ProviderOutput {
            mutation: Mutation::Full(inputs),
            rejected,
        })
    }

    async fn read_staged(&self, stage: &Stage) -> Result<StagedOutput> {
        let span =
            tracing::info_span!("git_provider.read_staged", provider = %self.name, rev = %self.rev);
        let stage = stage.clone();
        let (staged, rejected) = self
            .read_full(move |input| stage.prepare(input))
            .instrument(span)
            .await?;
        Ok(StagedOutput {
            mutation: StagedMutation::Full(staged),
            rejected,
        })
    }
}

impl GitProvider {
    /// Read the tree at the revision, converting each entity with `convert` on the
    /// reader threads.
    async fn read_full<T, F>(&self, convert: F) -> Result<(Vec<T>, Vec<Rejection>)>
    where
        T: Send + 'static,
        F: Fn(EntityInput) -> T + Send + Sync + 'static,
    {
        let commit = self.repo.resolve(&self.rev).await?.to_hex();
        let files = self.repo.read_tree(&commit, "").await?;
        let mut texts: Vec<(String, String)> = Vec::new();
        for (path, bytes) in files {
            if let Ok(text) = String::from_utf8(bytes) {
                texts.push((path, text));
            }
        }
        let start: Vec<String> = texts
            .iter()
            .map(|(p, _)| p.clone())
            .filter(|p| glob_match(&self.glob, p))
            .collect();
        let source = crate::placeholder::MemorySource::new(texts);
        let prefix = format!("git:{}@{}:", self.repo.path().display(), self.rev);
        let url_reader = self.url_reader.clone();
        let read = tokio::task::spawn_blocking(move || {
            read_tree(
                &source,
                start,
                &prefix,
                Some(&commit),
                url_reader.as_deref(),
                &convert,
            )
        })
        .await
        .map_err(|e| Error::internal("the git reader task failed").with_source(e))?;
        Ok((read.inputs, read.rejected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placeholder::MemorySource;

    /// A fake remote: fixed documents by URL, recording every read.
    #[derive(Debug, Default)]
    struct FakeUrls {
        files: HashMap<String, String>,
        reads: Mutex<Vec<String>>,
    }

    impl FakeUrls {
        fn new<'a>(files: impl IntoIterator<Item = (&'a str, String)>) -> Self {
            Self {
                files: files.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                reads: Mutex::default(),
            }
        }

        fn reads(&self) -> Vec<String> {
            self.reads.lock().unwrap().clone()
        }
    }

    impl UrlReader for FakeUrls {
        fn read_url(&self, url: &str) -> Result<String> {
            self.reads.lock().unwrap().push(url.to_owned());
            self.files
                .get(url)
                .cloned()
                .ok_or_else(|| Error::not_found(format!("{url}: 404")))
        }
    }

    fn location(name: &str, targets: &[&str]) -> String {
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata:\n  name: {name}\nspec:\n  type: url\n  targets: [{}]\n",
            targets
                .iter()
                .map(|t| format!("\"{t}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }

    fn group(name: &str) -> String {
        format!(
            "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: {name}\nspec:\n  type: team\n  children: []\n"
        )
    }

    fn names(read: &TreeRead) -> Vec<(String, String, Option<String>)> {
        let mut out: Vec<_> = read
            .inputs
            .iter()
            .map(|i| {
                (
                    i.value["metadata"]["name"].as_str().unwrap().to_owned(),
                    i.location.clone().unwrap(),
                    i.origin_location.clone(),
                )
            })
            .collect();
        out.sort();
        out
    }

    #[test]
    fn url_targets_are_read_through_the_url_reader() {
        let root = "https://git.example/org/repo/blob/main/catalog.yaml";
        let tree = MemorySource::new([
            (
                "catalog-info.yaml",
                location("root", &[root, "./local.yaml"]).as_str(),
            ),
            ("local.yaml", group("local").as_str()),
        ]);
        let urls = FakeUrls::new([
            (
                root,
                format!(
                    "{}---\n{}",
                    group("remote"),
                    // A relative target (resolved against the URL) and a cycle back.
                    location("remote-loc", &["./teams/b.yaml", "../main/catalog.yaml"])
                ),
            ),
            (
                "https://git.example/org/repo/blob/main/teams/b.yaml",
                group("b"),
            ),
        ]);
        let read = read_tree(
            &tree,
            vec!["catalog-info.yaml".into()],
            "file:/r/",
            None,
            Some(&urls),
            &keep,
        );
        assert!(read.rejected.is_empty(), "{:?}", read.rejected);
        let b_url = "https://git.example/org/repo/blob/main/teams/b.yaml";
        assert_eq!(
            names(&read),
            [
                (
                    "b".to_owned(),
                    format!("url:{b_url}"),
                    Some(format!("url:{root}"))
                ),
                (
                    "local".to_owned(),
                    "file:/r/local.yaml".to_owned(),
                    Some("file:/r/catalog-info.yaml".to_owned())
                ),
                (
                    "remote".to_owned(),
                    format!("url:{root}"),
                    Some("file:/r/catalog-info.yaml".to_owned())
                ),
                (
                    "remote-loc".to_owned(),
                    format!("url:{root}"),
                    Some("file:/r/catalog-info.yaml".to_owned())
                ),
                (
                    "root".to_owned(),
                    "file:/r/catalog-info.yaml".to_owned(),
                    None
                ),
            ]
        );
        // Each URL read once: the cycle back to the root URL is not followed again.
        assert_eq!(urls.reads(), [root, b_url]);
        assert!(read.inputs.iter().all(|i| i.warnings.is_empty()));
    }

    #[test]
    fn url_targets_without_a_reader_are_a_warning() {
        let tree = MemorySource::new([(
            "catalog-info.yaml",
            location("root", &["https://example.com/x.yaml"]).as_str(),
        )]);
        let read = read_tree(
            &tree,
            vec!["catalog-info.yaml".into()],
            "file:/",
            None,
            None,
            &keep,
        );
        assert!(read.rejected.is_empty());
        assert_eq!(read.inputs.len(), 1);
        let w = &read.inputs[0].warnings;
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("https://example.com/x.yaml") && w[0].contains("UrlReader"),
            "{w:?}"
        );
        // And the catalog accepts the Location, carrying the warning.
        let catalog = InMemoryCatalog::new();
        let report = catalog.apply("p", Mutation::Full(read.inputs));
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        assert_eq!(report.warnings.len(), 1);
    }

    #[test]
    fn url_location_chains_are_bounded_and_failures_reported() {
        let n = MAX_URL_LOCATION_DEPTH + 5;
        let url = |i: usize| format!("https://h.example/l{i}.yaml");
        let urls = FakeUrls::new(
            (0..n)
                .map(|i| (url(i), location(&format!("l{i}"), &[url(i + 1).as_str()])))
                .collect::<Vec<_>>()
                .iter()
                .map(|(k, v)| (k.as_str(), v.clone()))
                .collect::<Vec<_>>(),
        );
        let tree = MemorySource::new([(
            "catalog-info.yaml",
            location("root", &[url(0).as_str()]).as_str(),
        )]);
        let read = read_tree(
            &tree,
            vec!["catalog-info.yaml".into()],
            "file:/",
            None,
            Some(&urls),
            &keep,
        );
        assert_eq!(urls.reads().len(), MAX_URL_LOCATION_DEPTH);
        assert_eq!(read.rejected.len(), 1, "{:?}", read.rejected);
        assert!(
            read.rejected[0].to_string().contains("deep"),
            "{}",
            read.rejected[0]
        );
        // A target the reader cannot read is a rejection of that file, not a panic.
        let tree = MemorySource::new([(
            "catalog-info.yaml",
            location("root", &["https://h.example/missing.yaml"]).as_str(),
        )]);
        let read = read_tree(
            &tree,
            vec!["catalog-info.yaml".into()],
            "file:/",
            None,
            Some(&urls),
            &keep,
        );
        assert_eq!(read.rejected.len(), 1);
        assert!(
            read.rejected[0].to_string().contains("404"),
            "{}",
            read.rejected[0]
        );
        assert_eq!(read.inputs.len(), 1);
    }

    #[test]
    fn relative_placeholders_in_url_files_are_refused() {
        let root = "https://h.example/a/c.yaml";
        let urls = FakeUrls::new([(
            root,
            "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: x\nspec:\n  type: openapi\n  lifecycle: production\n  owner: t\n  definition:\n    $text: ./api.yaml\n".to_owned(),
        )]);
        let tree = MemorySource::new([("catalog-info.yaml", location("root", &[root]).as_str())]);
        let read = read_tree(
            &tree,
            vec!["catalog-info.yaml".into()],
            "file:/",
            None,
            Some(&urls),
            &keep,
        );
        assert_eq!(read.rejected.len(), 1, "{:?}", read.rejected);
        assert!(
            read.rejected[0].to_string().contains("absolute URLs"),
            "{}",
            read.rejected[0]
        );
    }

    #[test]
    fn urls_join_like_browsers() {
        let base = "https://h.example/a/b/c.yaml?ref=main";
        assert_eq!(
            join_url(base, "./d.yaml").unwrap(),
            "https://h.example/a/b/d.yaml"
        );
        assert_eq!(
            join_url(base, "../d.yaml").unwrap(),
            "https://h.example/a/d.yaml"
        );
        assert_eq!(
            join_url(base, "/x/y.yaml").unwrap(),
            "https://h.example/x/y.yaml"
        );
        assert_eq!(join_url(base, "http://o/z").unwrap(), "http://o/z");
        assert!(join_url(base, "../../../x").is_none());
        assert!(is_url("https://x") && !is_url("./a://b") && !is_url("://x"));
    }

    #[test]
    fn glob_cases() {
        assert!(glob_match("*.yaml", "a.yaml"));
        assert!(!glob_match("*.yaml", "d/a.yaml"));
        assert!(glob_match("**", "a/b/c"));
        assert!(glob_match("a/**/c.yaml", "a/c.yaml"));
        assert!(glob_match("a/**/c.yaml", "a/x/y/c.yaml"));
        assert!(glob_match("catalog-?.yaml", "catalog-1.yaml"));
        assert!(!glob_match("catalog-?.yaml", "catalog-12.yaml"));
        assert!(glob_match("*-info.*", "catalog-info.yaml"));
    }
}
