//! The request log: every request the fake cluster served, for assertions like
//! "the deployer made exactly one write".

use std::sync::{Arc, Mutex, PoisonError};

/// The Kubernetes verb of a request.
///
/// ```
/// assert!(idp_testkit::Verb::Patch.is_write());
/// assert!(!idp_testkit::Verb::Watch.is_write());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET of one object.
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection with `watch=true`.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH (any patch type, including server-side apply).
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
    /// Discovery, `/version`, OpenAPI and other non-resource paths.
    NonResource,
}

impl Verb {
    /// Whether the verb changes state.
    ///
    /// ```
    /// assert!(idp_testkit::Verb::DeleteCollection.is_write());
    /// ```
    pub fn is_write(self) -> bool {
        matches!(
            self,
            Verb::Create | Verb::Update | Verb::Patch | Verb::Delete | Verb::DeleteCollection
        )
    }

    /// The lower-case name Kubernetes uses (`deletecollection`, `get`, …).
    ///
    /// ```
    /// assert_eq!(idp_testkit::Verb::DeleteCollection.as_str(), "deletecollection");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
            Verb::NonResource => "nonresource",
        }
    }
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One served request.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idp_core::Result<()> {
/// let cluster = idp_testkit::FakeCluster::start().await?;
/// let client = cluster.client();
/// let cms: kube::Api<k8s_openapi::api::core::v1::ConfigMap> = kube::Api::namespaced(client, "default");
/// cms.list(&Default::default()).await.map_err(|e| idp_core::Error::internal(e.to_string()))?;
/// let list = cluster.requests().into_iter().find(|r| r.verb == idp_testkit::Verb::List).unwrap();
/// assert_eq!(list.resource, "configmaps");
/// assert_eq!(list.namespace.as_deref(), Some("default"));
/// assert_eq!(list.status, 200);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The Kubernetes verb.
    pub verb: Verb,
    /// The HTTP method.
    pub method: String,
    /// The URL path.
    pub path: String,
    /// The raw query string ("" if none).
    pub query: String,
    /// API group ("" for core and non-resource paths).
    pub group: String,
    /// Resource plural ("" for non-resource paths).
    pub resource: String,
    /// Subresource, e.g. `status`.
    pub subresource: Option<String>,
    /// Namespace from the URL.
    pub namespace: Option<String>,
    /// Object name from the URL.
    pub name: Option<String>,
    /// The request's Content-Type, if any.
    pub content_type: Option<String>,
    /// The HTTP status code answered.
    pub status: u16,
}

impl Request {
    /// Whether the request was a write (create/update/patch/delete/deletecollection).
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// assert_eq!(c.requests().count(idp_testkit::Request::is_write), 0);
    /// # Ok(()) }
    /// ```
    pub fn is_write(&self) -> bool {
        self.verb.is_write()
    }

    /// Whether the request was server-side apply.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// assert_eq!(c.requests().count(idp_testkit::Request::is_apply), 0);
    /// # Ok(()) }
    /// ```
    pub fn is_apply(&self) -> bool {
        self.content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/apply-patch"))
    }
}

/// A snapshot of the request log.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idp_core::Result<()> {
/// let cluster = idp_testkit::FakeCluster::start().await?;
/// assert_eq!(cluster.requests().count(|r| r.is_write()), 0);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requests {
    items: Vec<Request>,
}

impl Requests {
    /// How many requests satisfy `pred`.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// assert_eq!(c.requests().count(|r| r.status >= 500), 0);
    /// # Ok(()) }
    /// ```
    pub fn count(&self, pred: impl Fn(&Request) -> bool) -> usize {
        self.items.iter().filter(|r| pred(r)).count()
    }

    /// How many requests used `verb`.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// assert_eq!(c.requests().count_verb(idp_testkit::Verb::Get), 0);
    /// # Ok(()) }
    /// ```
    pub fn count_verb(&self, verb: Verb) -> usize {
        self.count(|r| r.verb == verb)
    }

    /// The number of writes.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// assert_eq!(c.requests().writes(), 0);
    /// # Ok(()) }
    /// ```
    pub fn writes(&self) -> usize {
        self.count(Request::is_write)
    }

    /// All requests, oldest first.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// assert!(c.requests().iter().all(|r| r.status > 0));
    /// # Ok(()) }
    /// ```
    pub fn iter(&self) -> std::slice::Iter<'_, Request> {
        self.items.iter()
    }

    /// The number of requests.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// assert_eq!(c.requests().len(), 0);
    /// # Ok(()) }
    /// ```
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no request was served.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// assert!(c.requests().is_empty());
    /// # Ok(()) }
    /// ```
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

impl IntoIterator for Requests {
    type Item = Request;
    type IntoIter = std::vec::IntoIter<Request>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

impl<'a> IntoIterator for &'a Requests {
    type Item = &'a Request;
    type IntoIter = std::slice::Iter<'a, Request>;
    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}

/// The shared, append-only log.
#[derive(Debug, Clone, Default)]
pub(crate) struct RequestLog {
    inner: Arc<Mutex<Vec<Request>>>,
}

impl RequestLog {
    pub(crate) fn push(&self, r: Request) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(r);
    }

    pub(crate) fn snapshot(&self) -> Requests {
        Requests {
            items: self
                .inner
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    pub(crate) fn clear(&self) {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
