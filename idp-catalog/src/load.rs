//! Reading catalog files: YAML documents → placeholders resolved → entity inputs, and
//! the file-level validation report behind `idpctl catalog validate`.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let file = dir.path().join("catalog-info.yaml");
//! std::fs::write(&file, "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-a\nspec:\n  type: team\n  children: []\n---\nkind: Component\n").unwrap();
//! let reports = idp_catalog::load::validate_file(&file);
//! assert_eq!(reports.len(), 2);
//! assert!(reports[0].valid);
//! assert_eq!(reports[0].entity_ref.as_deref(), Some("group:default/team-a"));
//! assert!(!reports[1].valid);
//! ```

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::catalog::EntityInput;
use crate::placeholder::{
    DirSource, PlaceholderContext, SourceReader, UrlReader, has_placeholders, resolve,
};
use crate::validate::Validator;

/// The verdict on one YAML document (`idpctl catalog validate --format json` prints an
/// array of these).
///
/// ```
/// let r = idp_catalog::load::DocumentReport { file: "a.yaml".into(), document: None, kind: None,
///     entity_ref: None, valid: false, errors: vec!["line 1: bad".into()], warnings: vec![] };
/// assert_eq!(serde_json::to_value(&r).unwrap()["ref"], serde_json::Value::Null);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DocumentReport {
    /// The file, as given.
    pub file: String,
    /// 0-based document index; `None` when the file is not valid YAML.
    pub document: Option<usize>,
    /// The document's `kind`, when it has one.
    pub kind: Option<String>,
    /// The entity reference, when it can be formed.
    #[serde(rename = "ref")]
    pub entity_ref: Option<String>,
    /// Whether Backstage would accept it.
    pub valid: bool,
    /// Why not, each as `path: message [rule]` (or `line N: ...` for YAML errors).
    pub errors: Vec<String>,
    /// Non-fatal findings (unread placeholder URLs).
    pub warnings: Vec<String>,
}

/// A document read from a file, placeholders resolved, ready for validation.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedDocument {
    /// 0-based document index.
    pub index: usize,
    /// 1-based line where it starts.
    pub line: usize,
    /// The content (placeholders resolved when `error` is `None`).
    pub value: Value,
    /// Warnings from placeholder resolution.
    pub warnings: Vec<String>,
    /// A placeholder that could not be resolved.
    pub error: Option<String>,
}

/// Parse `text` (the file `file`, relative to `source`'s root) and resolve
/// placeholders; a YAML error fails the whole file.
///
/// ```
/// use idp_catalog::{load::load_text, placeholder::MemorySource};
/// let src = MemorySource::new([("api.yaml", "openapi: 3.0.0")]);
/// let docs = load_text("catalog-info.yaml", "spec:\n  definition:\n    $text: ./api.yaml\n", &src, None).unwrap();
/// assert_eq!(docs[0].value["spec"]["definition"], "openapi: 3.0.0");
/// ```
pub fn load_text(
    file: &str,
    text: &str,
    source: &dyn SourceReader,
    url_reader: Option<&dyn UrlReader>,
) -> Result<Vec<LoadedDocument>, crate::parse::ParseError> {
    let mut out = Vec::new();
    load_each(file, text, source, url_reader, |d| out.push(d))?;
    Ok(out)
}

/// [`load_text`], handing each document to `each` as soon as it is parsed and its
/// placeholders resolved. On a YAML error the documents before it have been handed over
/// already; the caller discards them (the error fails the whole file).
pub(crate) fn load_each(
    file: &str,
    text: &str,
    source: &dyn SourceReader,
    url_reader: Option<&dyn UrlReader>,
    mut each: impl FnMut(LoadedDocument),
) -> Result<(), crate::parse::ParseError> {
    let ctx = PlaceholderContext::new(source, file).with_url_reader(url_reader);
    crate::parse::for_each_document(text, |d| {
        let mut value = d.value;
        let (warnings, error) = if has_placeholders(&value) {
            match resolve(&mut value, &ctx) {
                Ok(w) => (w, None),
                Err(e) => (Vec::new(), Some(e.to_string())),
            }
        } else {
            (Vec::new(), None)
        };
        each(LoadedDocument {
            index: d.index,
            line: d.line,
            value,
            warnings,
            error,
        });
    })
}

fn entity_ref_text(value: &Value) -> Option<String> {
    let kind = value.get("kind")?.as_str()?;
    let meta = value.get("metadata")?;
    let name = meta.get("name")?.as_str()?;
    let ns = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or(idp_core::DEFAULT_NAMESPACE);
    idp_core::EntityRef::new(kind, ns, name)
        .ok()
        .map(|r| r.to_string())
}

/// Validate the text of one file; `label` names it in the reports.
///
/// ```
/// use idp_catalog::{load::validate_text, placeholder::MemorySource, validate::Validator};
/// let r = validate_text("x.yaml", "x.yaml", "a: [", &MemorySource::default(), None, &Validator::new());
/// assert_eq!(r[0].document, None);
/// assert!(r[0].errors[0].starts_with("line 1"));
/// ```
pub fn validate_text(
    label: &str,
    file: &str,
    text: &str,
    source: &dyn SourceReader,
    url_reader: Option<&dyn UrlReader>,
    validator: &Validator,
) -> Vec<DocumentReport> {
    match load_text(file, text, source, url_reader) {
        Err(e) => vec![DocumentReport {
            file: label.to_owned(),
            document: None,
            kind: None,
            entity_ref: None,
            valid: false,
            errors: vec![e.to_string()],
            warnings: Vec::new(),
        }],
        Ok(docs) => docs
            .into_iter()
            .map(|d| {
                let mut errors: Vec<String> = Vec::new();
                if let Some(e) = &d.error {
                    errors.push(e.clone());
                } else {
                    errors.extend(validator.validate(&d.value).iter().map(ToString::to_string));
                }
                DocumentReport {
                    file: label.to_owned(),
                    document: Some(d.index),
                    kind: d
                        .value
                        .get("kind")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                    entity_ref: entity_ref_text(&d.value),
                    valid: errors.is_empty(),
                    errors,
                    warnings: d.warnings,
                }
            })
            .collect(),
    }
}

/// The directory placeholders of `file` may read: the enclosing Git working tree (a
/// parent with `.git`), else the file's own directory.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::create_dir(dir.path().join(".git")).unwrap();
/// std::fs::create_dir(dir.path().join("svc")).unwrap();
/// let root = idp_catalog::load::source_root(&dir.path().join("svc/catalog-info.yaml"));
/// assert_eq!(root, dir.path());
/// ```
pub fn source_root(file: &Path) -> PathBuf {
    let dir = file
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    let mut cur = Some(dir.as_path());
    while let Some(d) = cur {
        if d.join(".git").exists() {
            return d.to_path_buf();
        }
        cur = d.parent();
    }
    dir
}

/// Validate one file with the built-in kinds and no URL reader.
///
/// ```
/// let r = idp_catalog::load::validate_file(std::path::Path::new("/does/not/exist.yaml"));
/// assert!(!r[0].valid);
/// ```
pub fn validate_file(path: &Path) -> Vec<DocumentReport> {
    validate_file_with(path, &Validator::new(), None)
}

/// Validate one file with a validator (custom kinds) and an optional URL reader.
///
/// ```
/// let r = idp_catalog::load::validate_file_with(std::path::Path::new("/nope.yaml"), &idp_catalog::validate::Validator::new(), None);
/// assert_eq!(r.len(), 1);
/// ```
pub fn validate_file_with(
    path: &Path,
    validator: &Validator,
    url_reader: Option<&dyn UrlReader>,
) -> Vec<DocumentReport> {
    let label = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => {
            return vec![DocumentReport {
                file: label,
                document: None,
                kind: None,
                entity_ref: None,
                valid: false,
                errors: vec![format!("cannot read the file: {e}")],
                warnings: Vec::new(),
            }];
        }
    };
    let root = source_root(path);
    let rel = relative_to(path, &root);
    validate_text(
        &label,
        &rel,
        &text,
        &DirSource::new(root),
        url_reader,
        validator,
    )
}

/// `path` relative to `root`, `/`-separated.
pub(crate) fn relative_to(path: &Path, root: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .filter_map(|c| match c {
            std::path::Component::Normal(s) => Some(s.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Every `.yaml`/`.yml` file under `paths` (files are taken as given), sorted.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("a.yaml"), "").unwrap();
/// std::fs::write(dir.path().join("b.txt"), "").unwrap();
/// assert_eq!(idp_catalog::load::yaml_files(&[dir.path()]).len(), 1);
/// ```
pub fn yaml_files<P: AsRef<Path>>(paths: &[P]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        let p = p.as_ref();
        if p.is_dir() {
            walk(p, &mut out);
        } else {
            out.push(p.to_path_buf());
        }
    }
    out.sort();
    out.dedup();
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "node_modules" || name == "target" {
            continue;
        }
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&path, out),
            Ok(t) if t.is_file() && (name.ends_with(".yaml") || name.ends_with(".yml")) => {
                out.push(path);
            }
            _ => {}
        }
    }
}

/// Validate every YAML file under `paths` (what `idpctl catalog validate PATH...` runs).
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// std::fs::write(dir.path().join("a.yaml"), "kind: Nope\n").unwrap();
/// let r = idp_catalog::load::validate_paths(&[dir.path()]);
/// assert!(!r[0].valid);
/// ```
pub fn validate_paths<P: AsRef<Path>>(paths: &[P]) -> Vec<DocumentReport> {
    let validator = Validator::new();
    yaml_files(paths)
        .iter()
        .flat_map(|f| validate_file_with(f, &validator, None))
        .collect()
}

/// Turn a loaded document into a catalog input located at `location`, or the
/// rejection of its unresolved placeholder.
pub(crate) fn input_of(
    d: LoadedDocument,
    location: &str,
    revision: Option<&str>,
) -> Result<EntityInput, crate::catalog::Rejection> {
    if let Some(e) = d.error {
        return Err(crate::catalog::Rejection {
            location: Some(location.to_owned()),
            document: Some(d.index),
            entity_ref: entity_ref_text(&d.value),
            problems: vec![crate::validate::Problem::new("", "placeholder", e)],
        });
    }
    Ok(EntityInput {
        value: d.value,
        location: Some(location.to_owned()),
        origin_location: None,
        revision: revision.map(str::to_owned),
        document: Some(d.index),
        warnings: d.warnings,
    })
}
