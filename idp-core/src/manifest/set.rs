//! [`ManifestSet`]: an ordered set of objects read from YAML/JSON.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::Object;
use super::order::apply_rank;
use super::parse::{self, ParseLimits};
use crate::error::{Error, Result};

/// An ordered set of objects parsed from one or more multi-document YAML/JSON inputs.
///
/// The set keeps input order ([`Self::objects`], [`Self::iter`]); [`Self::apply_order`]
/// gives the order to apply them to a cluster. Equality compares the objects in order,
/// ignoring where they were read from.
///
/// ```
/// use idp_core::{ManifestSet, Object};
///
/// let mut set = ManifestSet::parse(b"apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n", None)?;
/// set.push(Object::from_value(serde_json::json!({
///     "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "shop"},
/// }))?);
/// assert_eq!(set.len(), 2);
/// let json = set.to_json()?;
/// assert_eq!(ManifestSet::parse(json.as_bytes(), None)?, set);
/// # Ok::<(), idp_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ManifestSet {
    objects: Vec<Object>,
}

impl ManifestSet {
    /// An empty set.
    ///
    /// ```
    /// assert!(idp_core::ManifestSet::new().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Parse multi-document YAML or JSON with the default [`ParseLimits`].
    ///
    /// Accepted: YAML documents separated by `---` (empty and comment-only documents are
    /// skipped, but still count for document indexes), a JSON object, a JSON array of
    /// objects, a stream of JSON values, and in any of those a `kind: List` (or any
    /// `*List` kind) with `items`, which is flattened into its items.
    ///
    /// Every object needs a string `apiVersion` and `kind` and a `metadata.name` (or a
    /// `metadata.generateName`). Every error names `file` (when given), the 0-based
    /// document index and the 1-based line; its [`source`](std::error::Error::source) is
    /// a [`ParseError`](super::ParseError).
    ///
    /// ```
    /// use std::path::Path;
    /// use idp_core::ManifestSet;
    ///
    /// let yaml = b"# a comment\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\n---\nkind: Secret\n";
    /// let err = ManifestSet::parse(yaml, Some(Path::new("app.yaml"))).unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "app.yaml:7 (document 2): missing field `apiVersion`"
    /// );
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn parse(input: &[u8], file: Option<&Path>) -> Result<Self> {
        Self::parse_with(input, file, &ParseLimits::default())
    }

    /// Parse like [`Self::parse`], within `limits`.
    ///
    /// ```
    /// use idp_core::{ManifestSet, manifest::ParseLimits};
    ///
    /// let limits = ParseLimits::default().with_max_depth(4);
    /// let deep = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\ndata: {a: {b: {c: {d: {e: 1}}}}}\n";
    /// let err = ManifestSet::parse_with(deep, None, &limits).unwrap_err();
    /// assert!(err.to_string().contains("limit"), "{err}");
    /// ```
    pub fn parse_with(input: &[u8], file: Option<&Path>, limits: &ParseLimits) -> Result<Self> {
        let objects = parse::parse(input, file, limits)?;
        Ok(Self { objects })
    }

    /// Read and parse one file (YAML or JSON) with the default [`ParseLimits`].
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("ns.yaml");
    /// std::fs::write(&path, "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n")?;
    /// let set = idp_core::ManifestSet::from_file(&path)?;
    /// assert_eq!(set.objects()[0].source().unwrap().file.as_deref(), Some(path.as_path()));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        Self::from_file_with(path, &ParseLimits::default())
    }

    /// Read and parse one file within `limits`; a file larger than
    /// [`ParseLimits::max_input_bytes`] is refused without reading it all.
    ///
    /// ```
    /// use idp_core::{ManifestSet, manifest::ParseLimits};
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("big.yaml");
    /// std::fs::write(&path, "#".repeat(100))?;
    /// let limits = ParseLimits::default().with_max_input_bytes(10);
    /// assert!(ManifestSet::from_file_with(&path, &limits).is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_file_with(path: impl AsRef<Path>, limits: &ParseLimits) -> Result<Self> {
        let path = path.as_ref();
        let _span = tracing::debug_span!("manifest_from_file", path = %path.display()).entered();
        let bytes = read_limited(path, limits.max_input_bytes)?;
        Self::parse_with(&bytes, Some(path), limits)
    }

    /// Read every `*.yaml`, `*.yml` and `*.json` file under `dir`, recursively, with the
    /// default [`ParseLimits`].
    ///
    /// Files are read in sorted path order, so the result is the same on every machine.
    /// Entries whose name starts with `.` (such as `.git`) are skipped, and symbolic
    /// links to directories are not followed.
    ///
    /// ```
    /// let dir = tempfile::tempdir()?;
    /// std::fs::create_dir(dir.path().join("b"))?;
    /// std::fs::write(dir.path().join("b/cm.yml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n")?;
    /// std::fs::write(dir.path().join("a.json"), r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}}"#)?;
    /// std::fs::write(dir.path().join("notes.txt"), "not a manifest")?;
    /// let set = idp_core::ManifestSet::from_dir(dir.path())?;
    /// let names: Vec<&str> = set.iter().map(|o| o.name()).collect();
    /// assert_eq!(names, ["a", "b"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_dir(dir: impl AsRef<Path>) -> Result<Self> {
        Self::from_dir_with(dir, &ParseLimits::default())
    }

    /// Like [`Self::from_dir`], within `limits` (applied to each file).
    ///
    /// ```
    /// use idp_core::{ManifestSet, manifest::ParseLimits};
    /// let dir = tempfile::tempdir()?;
    /// let set = ManifestSet::from_dir_with(dir.path(), &ParseLimits::default())?;
    /// assert!(set.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn from_dir_with(dir: impl AsRef<Path>, limits: &ParseLimits) -> Result<Self> {
        let dir = dir.as_ref();
        let _span = tracing::debug_span!("manifest_from_dir", dir = %dir.display()).entered();
        let mut set = Self::new();
        for path in manifest_files(dir)? {
            set.extend(Self::from_file_with(&path, limits)?);
        }
        Ok(set)
    }

    /// The objects in input order.
    ///
    /// ```
    /// assert!(idp_core::ManifestSet::new().objects().is_empty());
    /// ```
    pub fn objects(&self) -> &[Object] {
        &self.objects
    }

    /// Iterate the objects in input order.
    ///
    /// ```
    /// assert_eq!(idp_core::ManifestSet::new().iter().count(), 0);
    /// ```
    pub fn iter(&self) -> std::slice::Iter<'_, Object> {
        self.objects.iter()
    }

    /// Add an object at the end.
    ///
    /// ```
    /// let mut set = idp_core::ManifestSet::new();
    /// set.push(idp_core::Object::from_value(serde_json::json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}))?);
    /// assert_eq!(set.len(), 1);
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn push(&mut self, object: Object) {
        self.objects.push(object);
    }

    /// Number of objects.
    ///
    /// ```
    /// assert_eq!(idp_core::ManifestSet::new().len(), 0);
    /// ```
    pub fn len(&self) -> usize {
        self.objects.len()
    }

    /// Whether there are none.
    ///
    /// ```
    /// assert!(idp_core::ManifestSet::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The objects in the order to apply them: by kind rank ([`APPLY_ORDER`]: Namespaces,
    /// then CustomResourceDefinitions, then the rest; unknown kinds by kind name after the
    /// known ones; webhook configurations last), and **within one kind in input order**
    /// (the sort is stable). The result only depends on the set's contents and order.
    ///
    /// [`APPLY_ORDER`]: super::APPLY_ORDER
    ///
    /// ```
    /// let yaml = b"
    /// {apiVersion: apps/v1, kind: Deployment, metadata: {name: web}}
    /// ---
    /// {apiVersion: example.com/v1, kind: Widget, metadata: {name: w}}
    /// ---
    /// {apiVersion: apiextensions.k8s.io/v1, kind: CustomResourceDefinition, metadata: {name: widgets.example.com}}
    /// ---
    /// {apiVersion: v1, kind: Service, metadata: {name: web}}
    /// ---
    /// {apiVersion: v1, kind: Namespace, metadata: {name: shop}}
    /// ";
    /// let set = idp_core::ManifestSet::parse(yaml, None)?;
    /// let kinds: Vec<&str> = set.apply_order().iter().map(|o| o.kind()).collect();
    /// assert_eq!(kinds, ["Namespace", "CustomResourceDefinition", "Service", "Deployment", "Widget"]);
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn apply_order(&self) -> Vec<&Object> {
        let mut ordered: Vec<&Object> = self.objects.iter().collect();
        ordered.sort_by(|a, b| apply_rank(a.kind()).cmp(&apply_rank(b.kind())));
        ordered
    }

    /// The objects in the order to delete them: exactly [`Self::apply_order`] reversed
    /// (workloads before the Services and configuration they use, Namespaces last).
    ///
    /// ```
    /// let yaml = b"{apiVersion: v1, kind: Namespace, metadata: {name: shop}}\n---\n{apiVersion: v1, kind: Pod, metadata: {name: p, namespace: shop}}\n";
    /// let set = idp_core::ManifestSet::parse(yaml, None)?;
    /// let kinds: Vec<&str> = set.delete_order().iter().map(|o| o.kind()).collect();
    /// assert_eq!(kinds, ["Pod", "Namespace"]);
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn delete_order(&self) -> Vec<&Object> {
        let mut ordered = self.apply_order();
        ordered.reverse();
        ordered
    }

    /// Multi-document YAML, one document per object in input order, separated by `---`
    /// (no marker before the first; the empty set gives the empty string).
    ///
    /// ```
    /// let set = idp_core::ManifestSet::parse(br#"[{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}]"#, None)?;
    /// assert_eq!(set.to_yaml()?, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n");
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn to_yaml(&self) -> Result<String> {
        serde_saphyr::to_string_multiple(&self.objects).map_err(|e| {
            Error::internal(format!("cannot write the manifests as YAML: {e}")).with_source(e)
        })
    }

    /// Pretty-printed JSON: a `v1 List` (`{"apiVersion": "v1", "kind": "List", "items":
    /// [...]}`) with the objects in input order, which `kubectl` and [`Self::parse`] read
    /// back.
    ///
    /// ```
    /// let set = idp_core::ManifestSet::parse(b"{apiVersion: v1, kind: Namespace, metadata: {name: a}}", None)?;
    /// let json: serde_json::Value = serde_json::from_str(&set.to_json()?).unwrap();
    /// assert_eq!(json["kind"], "List");
    /// assert_eq!(json["items"][0]["metadata"]["name"], "a");
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn to_json(&self) -> Result<String> {
        serde_json::to_string_pretty(&List::new(&self.objects)).map_err(|e| {
            Error::internal(format!("cannot write the manifests as JSON: {e}")).with_source(e)
        })
    }
}

/// A `v1 List` of objects, for [`ManifestSet::to_json`].
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct List<'a> {
    api_version: &'static str,
    kind: &'static str,
    items: &'a [Object],
}

impl<'a> List<'a> {
    fn new(items: &'a [Object]) -> Self {
        Self {
            api_version: "v1",
            kind: "List",
            items,
        }
    }
}

/// Read at most `max` bytes of `path`, failing when it holds more.
fn read_limited(path: &Path, max: usize) -> Result<Vec<u8>> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::from(e).context(format_args!("read {}", path.display())))?;
    let mut bytes = Vec::new();
    file.take(u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::from(e).context(format_args!("read {}", path.display())))?;
    if bytes.len() > max {
        return Err(Error::invalid_input(format!(
            "{}: the file is larger than the limit of {max} bytes \
             (ParseLimits::max_input_bytes); split it or raise the limit",
            path.display()
        )));
    }
    Ok(bytes)
}

/// Every manifest file under `dir`, sorted, skipping hidden entries and not following
/// symbolic links to directories.
fn manifest_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let read_err = |e: std::io::Error, path: &Path| {
        Error::from(e).context(format_args!("read directory {}", path.display()))
    };
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(current) = pending.pop() {
        for entry in std::fs::read_dir(&current).map_err(|e| read_err(e, &current))? {
            let entry = entry.map_err(|e| read_err(e, &current))?;
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            let path = entry.path();
            let file_type = entry.file_type().map_err(|e| read_err(e, &path))?;
            if file_type.is_dir() {
                pending.push(path);
            } else if is_manifest_file(&path)
                && (file_type.is_file() || (file_type.is_symlink() && path.is_file()))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

fn is_manifest_file(path: &Path) -> bool {
    path.extension().is_some_and(|ext| {
        ["yaml", "yml", "json"]
            .iter()
            .any(|known| ext.eq_ignore_ascii_case(known))
    })
}

impl FromIterator<Object> for ManifestSet {
    /// ```
    /// let set: idp_core::ManifestSet = std::iter::empty().collect();
    /// assert!(set.is_empty());
    /// ```
    fn from_iter<T: IntoIterator<Item = Object>>(iter: T) -> Self {
        Self {
            objects: iter.into_iter().collect(),
        }
    }
}

impl Extend<Object> for ManifestSet {
    /// Append objects (another `ManifestSet`, a `Vec<Object>` …) in their order.
    ///
    /// ```
    /// let a = idp_core::ManifestSet::parse(b"{apiVersion: v1, kind: Namespace, metadata: {name: a}}", None)?;
    /// let mut all = idp_core::ManifestSet::new();
    /// all.extend(a.clone());
    /// all.extend(a);
    /// assert_eq!(all.len(), 2);
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    fn extend<T: IntoIterator<Item = Object>>(&mut self, iter: T) {
        self.objects.extend(iter);
    }
}

impl IntoIterator for ManifestSet {
    type Item = Object;
    type IntoIter = std::vec::IntoIter<Object>;
    fn into_iter(self) -> Self::IntoIter {
        self.objects.into_iter()
    }
}

impl<'a> IntoIterator for &'a ManifestSet {
    type Item = &'a Object;
    type IntoIter = std::slice::Iter<'a, Object>;
    fn into_iter(self) -> Self::IntoIter {
        self.objects.iter()
    }
}
