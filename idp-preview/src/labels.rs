//! The labels and annotations preview environments carry, and how a preview is named
//! in them.
//!
//! Ownership is checked on **both** a label and an annotation: a namespace is ours only
//! when it carries [`MANAGED_BY`]`=`[`MANAGED_BY_VALUE`] *and* the annotation
//! [`PREVIEW_ID`] (`owner/repo#42`). Selecting (listing, reaping) uses the labels only;
//! the annotation keeps the exact pull request, which a label value cannot hold.
//!
//! ```
//! use idp_preview::labels::{self, PreviewId};
//! let id: PreviewId = "acme/cart#42".parse().unwrap();
//! assert_eq!(id.repo_slug(), "acme-cart");
//! assert!(labels::selector().contains("idp.dev/preview=true"));
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use idp_core::{Error, Result};

/// Label: marks everything belonging to a preview environment (value [`PREVIEW_VALUE`]).
pub const PREVIEW: &str = idp_core::cluster::labels::PREVIEW;
/// The value of [`PREVIEW`].
pub const PREVIEW_VALUE: &str = "true";
/// Label: which controller owns the preview.
pub const MANAGED_BY: &str = "idp.dev/managed-by";
/// The value of [`MANAGED_BY`] this crate writes.
pub const MANAGED_BY_VALUE: &str = "idp-preview";
/// Label: the pull request's repository as a label value (`acme-cart` for `acme/cart`).
pub const REPO: &str = "idp.dev/pr-repo";
/// Label: the pull-request number.
pub const PR_NUMBER: &str = "idp.dev/pr-number";
/// Label: the head commit SHA the preview was last deployed from.
pub const HEAD_SHA: &str = "idp.dev/head-sha";

/// Annotation: the exact preview id, `owner/repo#42`.
pub const PREVIEW_ID: &str = "idp.dev/preview-id";
/// Annotation: when the preview expires unless it is ensured again (RFC 3339).
pub const EXPIRES_AT: &str = "idp.dev/expires-at";
/// Annotation: the forge's `updated_at` of the last event applied (RFC 3339), which
/// orders later events after a controller restart.
pub const PR_UPDATED_AT: &str = "idp.dev/pr-updated-at";

/// Keys of [`EnvironmentSpec::labels`](idp_core::model::EnvironmentSpec) that a
/// Kubernetes-backed provider stores as **annotations** (their values are not valid label
/// values) and gives back in [`Environment::labels`](idp_core::Environment) from `list`.
pub const ANNOTATION_KEYS: &[&str] = &[PREVIEW_ID, PR_UPDATED_AT];

/// The label selector matching every preview this crate manages.
///
/// ```
/// assert_eq!(idp_preview::labels::selector(), "idp.dev/preview=true,idp.dev/managed-by=idp-preview");
/// ```
pub fn selector() -> String {
    format!("{PREVIEW}={PREVIEW_VALUE},{MANAGED_BY}={MANAGED_BY_VALUE}")
}

/// Whether `labels` mark a preview this crate manages (both ownership labels present).
///
/// ```
/// use std::collections::BTreeMap;
/// let mut l = BTreeMap::new();
/// assert!(!idp_preview::labels::is_ours(&l));
/// l.insert("idp.dev/preview".to_string(), "true".to_string());
/// l.insert("idp.dev/managed-by".to_string(), "idp-preview".to_string());
/// assert!(idp_preview::labels::is_ours(&l));
/// ```
pub fn is_ours(labels: &BTreeMap<String, String>) -> bool {
    labels.get(PREVIEW).map(String::as_str) == Some(PREVIEW_VALUE)
        && labels.get(MANAGED_BY).map(String::as_str) == Some(MANAGED_BY_VALUE)
}

/// Which pull request a preview belongs to: `owner/repo#number`.
///
/// ```
/// let id = idp_preview::labels::PreviewId::new("acme/cart", 42).unwrap();
/// assert_eq!(id.to_string(), "acme/cart#42");
/// assert_eq!(id.to_string().parse::<idp_preview::labels::PreviewId>().unwrap(), id);
/// assert!("acme/cart".parse::<idp_preview::labels::PreviewId>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PreviewId {
    repo: String,
    number: u64,
}

impl PreviewId {
    /// The preview of pull request `number` in `repo` (`owner/name`, GitLab groups may
    /// nest: `group/sub/project`).
    ///
    /// ```
    /// assert!(idp_preview::labels::PreviewId::new("", 1).is_err());
    /// ```
    pub fn new(repo: impl Into<String>, number: u64) -> Result<Self> {
        let repo = repo.into();
        if repo.trim().is_empty() || repo.contains('#') || repo.chars().any(char::is_whitespace) {
            return Err(Error::invalid_input(format!(
                "invalid repository {repo:?} for a preview id: expected `owner/name` without spaces or `#`"
            )));
        }
        Ok(Self { repo, number })
    }

    /// The repository, `owner/name`.
    ///
    /// ```
    /// assert_eq!(idp_preview::labels::PreviewId::new("a/b", 1).unwrap().repo(), "a/b");
    /// ```
    pub fn repo(&self) -> &str {
        &self.repo
    }

    /// The pull-request number.
    ///
    /// ```
    /// assert_eq!(idp_preview::labels::PreviewId::new("a/b", 7).unwrap().number(), 7);
    /// ```
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The repository as a label value: lower-case, `/` and other characters as `-`,
    /// at most 63 characters.
    ///
    /// ```
    /// assert_eq!(idp_preview::labels::PreviewId::new("Acme/Cart.UI", 1).unwrap().repo_slug(), "acme-cart-ui");
    /// ```
    pub fn repo_slug(&self) -> String {
        idp_core::slugify(&self.repo, 63)
    }

    /// The labels and annotation entries identifying this preview, as
    /// [`EnvironmentSpec`](idp_core::model::EnvironmentSpec) labels (the preview id is
    /// one of the [`ANNOTATION_KEYS`]).
    ///
    /// ```
    /// let l = idp_preview::labels::PreviewId::new("a/b", 3).unwrap().labels();
    /// assert_eq!(l["idp.dev/pr-number"], "3");
    /// assert_eq!(l["idp.dev/preview-id"], "a/b#3");
    /// ```
    pub fn labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (PREVIEW.to_owned(), PREVIEW_VALUE.to_owned()),
            (MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
            (REPO.to_owned(), self.repo_slug()),
            (PR_NUMBER.to_owned(), self.number.to_string()),
            (PREVIEW_ID.to_owned(), self.to_string()),
        ])
    }

    /// The preview id recorded in an environment's labels, if there is a valid one.
    ///
    /// ```
    /// let id = idp_preview::labels::PreviewId::new("a/b", 3).unwrap();
    /// assert_eq!(idp_preview::labels::PreviewId::from_labels(&id.labels()), Some(id));
    /// ```
    pub fn from_labels(labels: &BTreeMap<String, String>) -> Option<Self> {
        labels.get(PREVIEW_ID).and_then(|v| v.parse().ok())
    }
}

impl fmt::Display for PreviewId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.repo, self.number)
    }
}

impl FromStr for PreviewId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let (repo, number) = s.rsplit_once('#').ok_or_else(|| {
            Error::invalid_input(format!(
                "invalid preview id {s:?}: expected `owner/repo#number`"
            ))
        })?;
        let number = number.parse::<u64>().map_err(|e| {
            Error::invalid_input(format!(
                "invalid preview id {s:?}: the part after `#` must be a pull-request number"
            ))
            .with_source(e)
        })?;
        Self::new(repo, number)
    }
}
