//! Reading live objects page by page: what an audit of a whole cluster needs, in memory
//! bounded by one page however many objects a resource type holds.
//!
//! [`Pages`] lists one resource type (in one namespace or in all), `limit` objects per
//! request, following the API server's `continue` token; each object comes back as an
//! [`Object`] with its `apiVersion` and `kind` filled in (list responses leave them out
//! of their items). [`DiscoveryCache::listable_resources`](super::DiscoveryCache::listable_resources)
//! gives every resource type there is to list.
//!
//! ```no_run
//! # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
//! use idp_core::cluster::list::Pages;
//!
//! let deployments = cluster.discovery().resolve("apps/v1", "Deployment").await?;
//! let mut pages = Pages::new(&cluster, &deployments, None).with_page_size(200);
//! while let Some(page) = pages.next_page().await? {
//!     for deployment in &page {
//!         println!("{}", deployment.object_ref());
//!     }
//! }
//! # Ok(()) }
//! ```

use kube::Api;
use kube::api::{DynamicObject, ListParams};
use serde_json::Value;

use super::Cluster;
use super::apply::dynamic_api;
use super::discovery::Resolved;
use crate::error::{Error, Result};
use crate::manifest::Object;

/// The page size of [`Pages`] unless [`Pages::with_page_size`] sets another: what
/// Gatekeeper's audit asks for by default.
pub const DEFAULT_PAGE_SIZE: u32 = 500;

/// The objects of one resource type, read one page at a time.
///
/// A page that fails after the retry policy's attempts is an error naming the resource
/// and the namespace; the pages before it have been handed out already. A `continue`
/// token the server no longer knows (`410 Gone`, after a long pause between pages) is
/// such an error too: start a new `Pages` to read the type again.
///
/// ```no_run
/// # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
/// let pods = cluster.discovery().resolve("v1", "Pod").await?;
/// let mut pages = idp_core::cluster::list::Pages::new(&cluster, &pods, Some("shop"))
///     .with_selector("app.kubernetes.io/part-of=shop");
/// let mut count = 0;
/// while let Some(page) = pages.next_page().await? {
///     count += page.len();
/// }
/// # Ok(()) }
/// ```
pub struct Pages {
    cluster: Cluster,
    api: Api<DynamicObject>,
    api_version: String,
    kind: String,
    what: String,
    selector: Option<String>,
    page_size: u32,
    token: Option<String>,
    done: bool,
}

impl std::fmt::Debug for Pages {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pages")
            .field("what", &self.what)
            .field("selector", &self.selector)
            .field("page_size", &self.page_size)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Pages {
    /// The objects of `resolved` in `namespace`, or in every namespace with `None` (a
    /// cluster-scoped type ignores the namespace).
    ///
    /// ```no_run
    /// # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
    /// let namespaces = cluster.discovery().resolve("v1", "Namespace").await?;
    /// let pages = idp_core::cluster::list::Pages::new(&cluster, &namespaces, None);
    /// # let _ = pages; Ok(()) }
    /// ```
    pub fn new(cluster: &Cluster, resolved: &Resolved, namespace: Option<&str>) -> Self {
        let namespace = namespace.filter(|_| resolved.namespaced);
        let where_ = namespace.map_or_else(
            || {
                if resolved.namespaced {
                    " in all namespaces".to_owned()
                } else {
                    String::new()
                }
            },
            |ns| format!(" in namespace {ns}"),
        );
        let group = if resolved.resource.group.is_empty() {
            String::new()
        } else {
            format!(".{}", resolved.resource.group)
        };
        Self {
            cluster: cluster.clone(),
            api: dynamic_api(cluster, resolved, namespace),
            api_version: resolved.resource.api_version.clone(),
            kind: resolved.resource.kind.clone(),
            what: format!("list {}{group}{where_}", resolved.resource.plural),
            selector: None,
            page_size: DEFAULT_PAGE_SIZE,
            token: None,
            done: false,
        }
    }

    /// Only the objects matching a label selector (`app=web,tier!=db`).
    ///
    /// ```no_run
    /// # async fn demo(cluster: idp_core::cluster::Cluster, r: idp_core::cluster::Resolved) {
    /// let pages = idp_core::cluster::list::Pages::new(&cluster, &r, None).with_selector("team=payments");
    /// # }
    /// ```
    #[must_use]
    pub fn with_selector(mut self, selector: impl Into<String>) -> Self {
        self.selector = Some(selector.into());
        self
    }

    /// At most `size` objects per request (at least 1; default [`DEFAULT_PAGE_SIZE`]).
    ///
    /// ```no_run
    /// # async fn demo(cluster: idp_core::cluster::Cluster, r: idp_core::cluster::Resolved) {
    /// let pages = idp_core::cluster::list::Pages::new(&cluster, &r, None).with_page_size(100);
    /// # }
    /// ```
    #[must_use]
    pub fn with_page_size(mut self, size: u32) -> Self {
        self.page_size = size.max(1);
        self
    }

    /// The next page, or `None` once every object has been read. A page may be empty
    /// while more follow (the server decides).
    ///
    /// ```no_run
    /// # async fn demo(mut pages: idp_core::cluster::list::Pages) -> idp_core::Result<()> {
    /// while let Some(page) = pages.next_page().await? {
    ///     println!("{} objects", page.len());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn next_page(&mut self) -> Result<Option<Vec<Object>>> {
        if self.done {
            return Ok(None);
        }
        let mut params = ListParams::default().limit(self.page_size);
        if let Some(selector) = &self.selector {
            params = params.labels(selector);
        }
        if let Some(token) = &self.token {
            params = params.continue_token(token);
        }
        let page = self
            .cluster
            .retry()
            .run(&self.what, || self.api.list(&params))
            .await?;
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => self.token = Some(token),
            _ => self.done = true,
        }
        let mut out = Vec::with_capacity(page.items.len());
        for item in page.items {
            let mut value = serde_json::to_value(&item).map_err(|e| {
                Error::internal(format!("{}: cannot read the server's answer", self.what))
                    .with_source(e)
            })?;
            if let Some(map) = value.as_object_mut() {
                for (field, given) in [("apiVersion", &self.api_version), ("kind", &self.kind)] {
                    if !map.get(field).is_some_and(Value::is_string) {
                        map.insert(field.to_owned(), Value::String(given.clone()));
                    }
                }
            }
            out.push(Object::from_value(value).map_err(|e| {
                Error::internal(format!(
                    "{}: the server answered with an object that is not one",
                    self.what
                ))
                .with_source(e)
            })?);
        }
        Ok(Some(out))
    }
}
