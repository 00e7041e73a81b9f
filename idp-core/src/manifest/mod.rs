//! Kubernetes objects and multi-document manifest sets.
//!
//! Start with [`ManifestSet::parse`] (bytes), [`ManifestSet::from_file`] or
//! [`ManifestSet::from_dir`]: they read multi-document YAML or JSON into [`Object`]s —
//! dynamic, [`kube::api::DynamicObject`]-compatible JSON with typed accessors — and
//! every error says which file, which document (0-based) and which line (1-based) was
//! wrong. Then:
//!
//! - [`ManifestSet::apply_order`] / [`ManifestSet::delete_order`]: a deterministic order
//!   to send the objects to a cluster (Namespaces, then CustomResourceDefinitions, then
//!   the rest by kind; see [`APPLY_ORDER`]).
//! - [`ManifestSet::to_yaml`] / [`ManifestSet::to_json`]: write them back.
//! - [`ParseLimits`]: bounds on input size, nesting depth, document count and YAML alias
//!   expansion, so hostile input (a "billion laughs" alias bomb, a 10,000-deep nesting)
//!   is rejected with a clear error instead of exhausting memory, stack or time.
//!
//! ```
//! use idp_core::ManifestSet;
//!
//! let yaml = b"
//! apiVersion: apps/v1
//! kind: Deployment
//! metadata: {name: cart, namespace: shop}
//! ---
//! apiVersion: v1
//! kind: Namespace
//! metadata: {name: shop}
//! ";
//! let set = ManifestSet::parse(yaml, None)?;
//! let order: Vec<&str> = set.apply_order().iter().map(|o| o.kind()).collect();
//! assert_eq!(order, ["Namespace", "Deployment"]);
//! assert_eq!(ManifestSet::parse(set.to_yaml()?.as_bytes(), None)?, set);
//! # Ok::<(), idp_core::Error>(())
//! ```

mod object;
mod order;
mod parse;
mod set;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

pub use object::Object;
pub use order::{APPLY_LAST, APPLY_ORDER, CLUSTER_SCOPED_KINDS, apply_rank, is_cluster_scoped};
pub use parse::{ParseError, ParseLimits};
pub use set::ManifestSet;

/// Where an object came from: file, 0-based document index, 1-based line.
///
/// Parsing fills it in ([`Object::source`]); it is informational only and ignored by
/// `Object`'s equality.
///
/// ```
/// use std::path::Path;
/// use idp_core::ManifestSet;
///
/// let set = ManifestSet::parse(
///     b"---\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n",
///     Some(Path::new("app.yaml")),
/// )?;
/// let source = set.objects()[0].source().unwrap();
/// assert_eq!(source.file.as_deref(), Some(Path::new("app.yaml")));
/// assert_eq!(source.document, 1);
/// assert_eq!(source.line, 2);
/// assert_eq!(source.to_string(), "app.yaml:2 (document 1)");
/// # Ok::<(), idp_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Source {
    /// The file, when the object was read from one.
    pub file: Option<PathBuf>,
    /// 0-based index of the YAML document in the file (empty documents count).
    pub document: usize,
    /// 1-based line where the document starts (or, in an error, where it went wrong).
    pub line: usize,
}

impl Source {
    /// A source in `file` (or in unnamed input), at `document` and `line`.
    ///
    /// ```
    /// let s = idp_core::manifest::Source::new(None, 0, 1);
    /// assert_eq!(s.to_string(), "<input>:1 (document 0)");
    /// ```
    pub fn new(file: Option<PathBuf>, document: usize, line: usize) -> Self {
        Self {
            file,
            document,
            line,
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.file {
            Some(file) => write!(f, "{}", file.display())?,
            None => f.write_str("<input>")?,
        }
        write!(f, ":{} (document {})", self.line, self.document)
    }
}
