//! Placeholders: `$text`, `$json` and `$yaml`, resolved before validation as Backstage's
//! placeholder processor does.
//!
//! A mapping with exactly one key, `$text`, `$json` or `$yaml`, is replaced by the content
//! of the file or URL it names: as a string (`$text`), or parsed (`$json`, `$yaml`).
//! Relative paths resolve against the entity file's directory and must stay inside the
//! source root (the Git repository or the directory being read): `../` beyond it is an
//! error. Absolute URLs go through a [`UrlReader`]; with none configured the value becomes
//! an empty string and the entity carries a warning.
//!
//! ```
//! use idp_catalog::placeholder::{resolve, MemorySource, PlaceholderContext};
//! let source = MemorySource::new([("docs/api.yaml", "openapi: 3.0.0\n")]);
//! let ctx = PlaceholderContext::new(&source, "catalog-info.yaml");
//! let mut entity = serde_json::json!({"spec": {"definition": {"$text": "./docs/api.yaml"}}});
//! let warnings = resolve(&mut entity, &ctx).unwrap();
//! assert!(warnings.is_empty());
//! assert_eq!(entity["spec"]["definition"], "openapi: 3.0.0\n");
//! ```

use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use idp_core::{Error, Result};
use serde_json::Value;

/// Reads absolute URLs named by placeholders (`$text: https://...`).
///
/// Implementations are called synchronously while a file is being read; a network
/// reader should have its own timeout.
///
/// ```
/// use idp_catalog::placeholder::UrlReader;
/// #[derive(Debug)]
/// struct Fixed;
/// impl UrlReader for Fixed {
///     fn read_url(&self, url: &str) -> idp_core::Result<String> { Ok(format!("from {url}")) }
/// }
/// assert_eq!(Fixed.read_url("https://x").unwrap(), "from https://x");
/// ```
pub trait UrlReader: Send + Sync + fmt::Debug {
    /// The content at `url`.
    fn read_url(&self, url: &str) -> Result<String>;
}

/// Reads files of a source (a directory, a Git tree) by their `/`-separated path
/// relative to the source root.
///
/// ```
/// use idp_catalog::placeholder::{MemorySource, SourceReader};
/// let s = MemorySource::new([("a.txt", "hi")]);
/// assert_eq!(s.read_file("a.txt").unwrap(), "hi");
/// assert!(s.read_file("b.txt").is_err());
/// ```
pub trait SourceReader: Send + Sync + fmt::Debug {
    /// The content of `path` (relative to the root, already normalised, never `..`).
    fn read_file(&self, path: &str) -> Result<String>;
}

/// A [`SourceReader`] over a local directory; symlinks leading outside it are refused.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("a.txt"), "hi").unwrap();
/// let s = idp_catalog::placeholder::DirSource::new(dir.path());
/// use idp_catalog::placeholder::SourceReader;
/// assert_eq!(s.read_file("a.txt").unwrap(), "hi");
/// ```
#[derive(Debug, Clone)]
pub struct DirSource {
    root: PathBuf,
}

impl DirSource {
    /// A source rooted at `root`.
    ///
    /// ```
    /// let s = idp_catalog::placeholder::DirSource::new("/tmp");
    /// assert_eq!(s.root(), std::path::Path::new("/tmp"));
    /// ```
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The root directory.
    ///
    /// ```
    /// assert_eq!(idp_catalog::placeholder::DirSource::new("x").root(), std::path::Path::new("x"));
    /// ```
    pub fn root(&self) -> &Path {
        &self.root
    }
}

impl SourceReader for DirSource {
    fn read_file(&self, path: &str) -> Result<String> {
        let full = self.root.join(path);
        let root = self.root.canonicalize().map_err(|e| {
            Error::not_found(format!("cannot open {}", self.root.display())).with_source(e)
        })?;
        let real = full.canonicalize().map_err(|e| {
            Error::not_found(format!(
                "placeholder file {} does not exist",
                full.display()
            ))
            .with_source(e)
        })?;
        if !real.starts_with(&root) {
            return Err(Error::invalid_input(format!(
                "placeholder file {path} leads outside {} (through a symlink); only files inside the source can be referenced",
                root.display()
            )));
        }
        std::fs::read_to_string(&real).map_err(|e| {
            Error::invalid_input(format!("cannot read placeholder file {}", real.display()))
                .with_source(e)
        })
    }
}

/// A [`SourceReader`] over files held in memory (tests, Git trees read up front).
///
/// ```
/// let s = idp_catalog::placeholder::MemorySource::new([("x", "1")]);
/// # use idp_catalog::placeholder::SourceReader;
/// assert_eq!(s.read_file("x").unwrap(), "1");
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    files: HashMap<String, String>,
}

impl MemorySource {
    /// A source with these `(path, content)` files.
    ///
    /// ```
    /// let s = idp_catalog::placeholder::MemorySource::new([("a", "b")]);
    /// # let _ = s;
    /// ```
    pub fn new<P: Into<String>, C: Into<String>>(files: impl IntoIterator<Item = (P, C)>) -> Self {
        Self {
            files: files
                .into_iter()
                .map(|(p, c)| (p.into(), c.into()))
                .collect(),
        }
    }
}

impl SourceReader for MemorySource {
    fn read_file(&self, path: &str) -> Result<String> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| Error::not_found(format!("placeholder file {path} does not exist")))
    }
}

/// Where placeholders of one entity file resolve.
///
/// ```
/// use idp_catalog::placeholder::{MemorySource, PlaceholderContext};
/// let s = MemorySource::default();
/// let ctx = PlaceholderContext::new(&s, "services/cart/catalog-info.yaml");
/// assert_eq!(ctx.file(), "services/cart/catalog-info.yaml");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct PlaceholderContext<'a> {
    source: &'a dyn SourceReader,
    file: &'a str,
    url_reader: Option<&'a dyn UrlReader>,
}

impl<'a> PlaceholderContext<'a> {
    /// Placeholders of the entity file `file` (relative to the source root).
    ///
    /// ```
    /// # let s = idp_catalog::placeholder::MemorySource::default();
    /// let ctx = idp_catalog::placeholder::PlaceholderContext::new(&s, "a.yaml");
    /// # let _ = ctx;
    /// ```
    pub fn new(source: &'a dyn SourceReader, file: &'a str) -> Self {
        Self {
            source,
            file,
            url_reader: None,
        }
    }

    /// Read absolute URLs through `reader`.
    ///
    /// ```
    /// # #[derive(Debug)] struct R;
    /// # impl idp_catalog::placeholder::UrlReader for R { fn read_url(&self, _: &str) -> idp_core::Result<String> { Ok(String::new()) } }
    /// # let s = idp_catalog::placeholder::MemorySource::default();
    /// let ctx = idp_catalog::placeholder::PlaceholderContext::new(&s, "a.yaml").with_url_reader(Some(&R));
    /// # let _ = ctx;
    /// ```
    pub fn with_url_reader(mut self, reader: Option<&'a dyn UrlReader>) -> Self {
        self.url_reader = reader;
        self
    }

    /// The entity file.
    ///
    /// ```
    /// # let s = idp_catalog::placeholder::MemorySource::default();
    /// assert_eq!(idp_catalog::placeholder::PlaceholderContext::new(&s, "x.yaml").file(), "x.yaml");
    /// ```
    pub fn file(&self) -> &str {
        self.file
    }
}

/// Join `target` to the directory of `file` and normalise; `None` when it climbs above
/// the root.
///
/// ```
/// use idp_catalog::placeholder::resolve_relative;
/// assert_eq!(resolve_relative("a/b/catalog.yaml", "../c.txt").as_deref(), Some("a/c.txt"));
/// assert_eq!(resolve_relative("a/catalog.yaml", "/docs/x.md").as_deref(), Some("docs/x.md"));
/// assert_eq!(resolve_relative("catalog.yaml", "../../etc/passwd"), None);
/// ```
pub fn resolve_relative(file: &str, target: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    if !target.starts_with('/') {
        parts.extend(file.split('/').filter(|p| !p.is_empty() && *p != "."));
        parts.pop(); // the file name
    }
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        None
    } else {
        Some(parts.join("/"))
    }
}

fn is_url(s: &str) -> bool {
    s.split_once("://").is_some_and(|(scheme, _)| {
        !scheme.is_empty()
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.')
    })
}

/// Replace every placeholder in `value`; returns the warnings (unreadable URLs). A
/// placeholder that cannot be resolved (missing file, escaping the root, bad JSON/YAML)
/// is an error naming its field path.
///
/// ```
/// use idp_catalog::placeholder::{resolve, MemorySource, PlaceholderContext};
/// let s = MemorySource::default();
/// let ctx = PlaceholderContext::new(&s, "catalog-info.yaml");
/// let mut v = serde_json::json!({"spec": {"definition": {"$text": "https://example.com/api.yaml"}}});
/// let warnings = resolve(&mut v, &ctx).unwrap();
/// assert_eq!(v["spec"]["definition"], "");
/// assert!(warnings[0].contains("no URL reader"));
/// let mut v = serde_json::json!({"spec": {"definition": {"$text": "../outside.yaml"}}});
/// assert!(resolve(&mut v, &ctx).unwrap_err().to_string().contains("spec.definition"));
/// ```
pub fn resolve(value: &mut Value, ctx: &PlaceholderContext<'_>) -> Result<Vec<String>> {
    let mut warnings = Vec::new();
    walk(value, ctx, &mut String::new(), &mut warnings)?;
    Ok(warnings)
}

/// Whether `value` holds a placeholder anywhere (a mapping whose only key is `$text`,
/// `$json` or `$yaml`): most entities have none, and this looks without building the
/// field paths that [`resolve`] keeps for its messages.
pub(crate) fn has_placeholders(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            if map.len() == 1
                && let Some((key, _)) = map.iter().next()
                && matches!(key.as_str(), "$text" | "$json" | "$yaml")
            {
                return true;
            }
            map.values().any(has_placeholders)
        }
        Value::Array(items) => items.iter().any(has_placeholders),
        _ => false,
    }
}

fn walk(
    value: &mut Value,
    ctx: &PlaceholderContext<'_>,
    path: &mut String,
    warnings: &mut Vec<String>,
) -> Result<()> {
    match value {
        Value::Object(map) => {
            if map.len() == 1
                && let Some((key, arg)) = map.iter().next()
                && matches!(key.as_str(), "$text" | "$json" | "$yaml")
            {
                let key = key.clone();
                let Some(arg) = arg.as_str() else {
                    return Err(Error::invalid_input(format!(
                        "{path}: placeholder {key} must name a file or URL as a string"
                    )));
                };
                let arg = arg.to_owned();
                *value = substitute(&key, &arg, ctx, path, warnings)?;
                return Ok(());
            }
            for (k, v) in map.iter_mut() {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                walk(v, ctx, path, warnings)?;
                path.truncate(len);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter_mut().enumerate() {
                let len = path.len();
                let _ = write!(path, "[{i}]");
                walk(v, ctx, path, warnings)?;
                path.truncate(len);
            }
        }
        _ => {}
    }
    Ok(())
}

fn substitute(
    key: &str,
    arg: &str,
    ctx: &PlaceholderContext<'_>,
    path: &str,
    warnings: &mut Vec<String>,
) -> Result<Value> {
    let content = if is_url(arg) {
        if let Some(reader) = ctx.url_reader {
            reader
                .read_url(arg)
                .map_err(|e| e.context(format!("{path}: {key} {arg}")))?
        } else {
            warnings.push(format!(
                "{path}: {key} {arg} was not read (no URL reader is configured); the value is empty"
            ));
            return Ok(Value::String(String::new()));
        }
    } else {
        let Some(rel) = resolve_relative(ctx.file, arg) else {
            return Err(Error::invalid_input(format!(
                "{path}: {key} {arg:?} points outside the source root; placeholders may only read files inside the repository or directory of {}",
                ctx.file
            )));
        };
        ctx.source
            .read_file(&rel)
            .map_err(|e| e.context(format!("{path}: {key} {arg}")))?
    };
    match key {
        "$text" => Ok(Value::String(content)),
        "$json" => serde_json::from_str(&content).map_err(|e| {
            Error::invalid_input(format!("{path}: {key} {arg} is not valid JSON: {e}"))
        }),
        _ => {
            let docs = crate::parse::parse_documents(&content).map_err(|e| {
                Error::invalid_input(format!("{path}: {key} {arg} is not valid YAML: {e}"))
            })?;
            // Placeholders inside the included YAML are not expanded, as in Backstage.
            Ok(docs.into_iter().next().map_or(Value::Null, |d| d.value))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_and_yaml_are_parsed() {
        let s = MemorySource::new([("a/x.json", r#"{"k": [1]}"#), ("a/y.yaml", "k: v\n")]);
        let ctx = PlaceholderContext::new(&s, "a/catalog-info.yaml");
        let mut v = json!({"spec": {"j": {"$json": "x.json"}, "y": [{"$yaml": "./y.yaml"}]}});
        resolve(&mut v, &ctx).unwrap();
        assert_eq!(v, json!({"spec": {"j": {"k": [1]}, "y": [{"k": "v"}]}}));
    }

    #[test]
    fn other_dollar_keys_are_left_alone() {
        let s = MemorySource::default();
        let ctx = PlaceholderContext::new(&s, "c.yaml");
        let mut v = json!({"a": {"$ref": "x"}, "b": {"$text": "x", "other": 1}});
        let before = v.clone();
        resolve(&mut v, &ctx).unwrap();
        assert_eq!(v, before);
    }

    #[test]
    fn escaping_and_missing_files_are_errors() {
        let s = MemorySource::default();
        let ctx = PlaceholderContext::new(&s, "dir/c.yaml");
        let mut v = json!({"spec": {"d": {"$text": "../../x"}}});
        assert!(resolve(&mut v, &ctx).is_err());
        let mut v = json!({"spec": {"d": {"$text": "missing.txt"}}});
        let err = resolve(&mut v, &ctx).unwrap_err().to_string();
        assert!(err.contains("spec.d"), "{err}");
        let mut v = json!({"spec": {"d": {"$text": 5}}});
        assert!(resolve(&mut v, &ctx).is_err());
    }

    #[test]
    fn dir_source_refuses_symlink_escape() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        let root = tempfile::tempdir().unwrap();
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("link"))
                .unwrap();
            let s = DirSource::new(root.path());
            assert!(s.read_file("link").is_err());
        }
    }
}
