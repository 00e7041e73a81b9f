//! Kubernetes plumbing: server-side apply with an ownership inventory, prune, health and
//! waiting, against any API server the `kube` client can reach.
//!
//! Start with a [`Cluster`] (a `kube::Client` plus a shared discovery cache and a retry
//! policy) and an [`Applier`] for one [`Inventory`]:
//!
//! ```no_run
//! # async fn demo(client: kube::Client, manifests: idp_core::ManifestSet) -> idp_core::Result<()> {
//! use std::time::Duration;
//! use idp_core::cluster::{Applier, Cluster, Inventory, PruneOptions, wait_healthy};
//!
//! let cluster = Cluster::new(client);
//! let applier = Applier::new(cluster.clone(), Inventory::new("platform", "shop-prod")?)
//!     .with_default_namespace("shop");
//! let report = applier.apply(&manifests).await?;      // Namespaces, CRDs, then the rest
//! applier.prune(&manifests, &PruneOptions::default()).await?; // delete what left the set
//! wait_healthy(&cluster, &report.refs(), Duration::from_secs(300)).await?;
//! # Ok(()) }
//! ```
//!
//! The parts, each usable on its own:
//!
//! - [`apply`]: [`Applier`], server-side apply that skips unchanged objects without a
//!   write, and [`ApplyReport`].
//! - [`diff`]: compare a set with the live cluster without writing (in sync, missing,
//!   which fields differ), from one list per resource type or from a watch cache.
//! - [`prune`]: delete the inventory's objects that are no longer in the set.
//! - [`inventory`]: [`Inventory`], ApplySet-style ownership (see [`labels`]).
//! - [`health`]: Argo CD–compatible health of live objects ([`health::assess`]).
//! - [`wait`]: [`wait_healthy`], watch objects until they are healthy.
//! - [`discovery`]: the discovery cache resolving kinds to resources.
//! - [`list`]: [`list::Pages`], live objects of one resource type, page by page.
//! - [`retry`]: [`RetryPolicy`], backoff for transient API failures; [`errors`] maps
//!   kube errors into [`Error`] kinds.

use std::sync::Arc;

use tracing::Instrument;

use crate::error::{Error, Result};

pub mod apply;
pub mod diff;
pub mod discovery;
pub mod errors;
pub mod health;
pub mod inventory;
pub mod labels;
pub mod list;
pub mod prune;
pub mod retry;
pub mod wait;

pub use apply::{AppliedObject, Applier, ApplyOutcome, ApplyReport};
pub use discovery::{DiscoveryCache, GroupKind, Resolved};
pub use health::{Health, HealthStatus};
pub use inventory::Inventory;
pub use prune::{PruneOptions, PruneReport};
pub use retry::RetryPolicy;
pub use wait::{ObjectHealth, wait_healthy};

/// A connection to one Kubernetes cluster: the `kube` client, a discovery cache shared by
/// every clone, and the retry policy used for every request.
///
/// Cloning is cheap and clones share the discovery cache.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// let client = kube::Client::try_default().await?;
/// let cluster = idp_core::cluster::Cluster::new(client)
///     .with_retry(idp_core::cluster::RetryPolicy::default().with_max_attempts(8));
/// let pods = cluster.discovery().resolve("v1", "Pod").await?;
/// assert!(pods.namespaced);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    discovery: Arc<DiscoveryCache>,
    retry: RetryPolicy,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("discovery", &self.discovery)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// A Kubernetes client for the current context of the kubeconfig at `path`, or, with
/// no path, for the cluster found the way `kubectl` finds it (`KUBECONFIG`,
/// `~/.kube/config`, or the in-cluster service account).
///
/// kube's own retry layer is off: retries are the [`Cluster`]'s [`RetryPolicy`]'s to make.
///
/// Errors name the file and say what to do: an unreadable or malformed file and a
/// file without a usable current context are [`InvalidInput`](crate::ErrorKind::InvalidInput);
/// no configuration at all, or a client that cannot be built, is
/// [`Unavailable`](crate::ErrorKind::Unavailable).
///
/// ```no_run
/// # async fn demo() -> idp_core::Result<()> {
/// let client = idp_core::cluster::client_from_kubeconfig(Some("kind.kubeconfig".as_ref())).await?;
/// let cluster = idp_core::cluster::Cluster::new(client);
/// # Ok(()) }
/// ```
pub async fn client_from_kubeconfig(path: Option<&std::path::Path>) -> Result<kube::Client> {
    use tracing::Instrument;
    let span = tracing::debug_span!("cluster.client_from_kubeconfig", path = ?path);
    let mut config = async { config_from_kubeconfig(path).await }
        .instrument(span)
        .await?;
    // Every request goes through a `Cluster`'s `RetryPolicy`. kube's own retry layer
    // under it (15 tries of 429/503/504 with backoff up to 1,000 s) would multiply the
    // tries and stall for minutes on an aggregated API that is down (a discovery of
    // `metrics.k8s.io` answering 503) where the policy says to give up.
    config.default_retry = false;
    kube::Client::try_from(config).map_err(|e| {
        Error::unavailable(match path {
            Some(path) => format!("cannot build a Kubernetes client from {}", path.display()),
            None => "cannot build a Kubernetes client".to_owned(),
        })
        .with_source(e)
    })
}

async fn config_from_kubeconfig(path: Option<&std::path::Path>) -> Result<kube::Config> {
    Ok(match path {
        Some(path) => {
            let kubeconfig = kube::config::Kubeconfig::read_from(path).map_err(|e| {
                Error::invalid_input(format!(
                    "cannot read the kubeconfig {}: fix it or give another file",
                    path.display()
                ))
                .with_source(e)
            })?;
            kube::Config::from_custom_kubeconfig(
                kubeconfig,
                &kube::config::KubeConfigOptions::default(),
            )
            .await
            .map_err(|e| {
                Error::invalid_input(format!(
                    "the kubeconfig {} has no usable current context: set one with \
                     `kubectl config use-context`",
                    path.display()
                ))
                .with_source(e)
            })?
        }
        None => kube::Config::infer().await.map_err(|e| {
            Error::unavailable(
                "no Kubernetes cluster is configured: give a kubeconfig file, set KUBECONFIG, \
                 or run inside a cluster",
            )
            .with_source(e)
        })?,
    })
}

impl Cluster {
    /// A cluster reached through `client`, with the default [`RetryPolicy`].
    ///
    /// ```no_run
    /// # async fn demo(client: kube::Client) {
    /// let cluster = idp_core::cluster::Cluster::new(client);
    /// # }
    /// ```
    pub fn new(client: kube::Client) -> Self {
        let retry = RetryPolicy::default();
        Self {
            discovery: Arc::new(DiscoveryCache::new(client.clone(), retry.clone())),
            client,
            retry,
        }
    }

    /// Use `retry` for every request (discovery included); starts a fresh discovery cache.
    ///
    /// ```no_run
    /// # async fn demo(client: kube::Client) {
    /// let cluster = idp_core::cluster::Cluster::new(client)
    ///     .with_retry(idp_core::cluster::RetryPolicy::none());
    /// # }
    /// ```
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.discovery = Arc::new(DiscoveryCache::new(self.client.clone(), retry.clone()));
        self.retry = retry;
        self
    }

    /// The `kube` client.
    ///
    /// ```no_run
    /// # async fn demo(cluster: idp_core::cluster::Cluster) {
    /// let client: &kube::Client = cluster.client();
    /// # }
    /// ```
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// The shared discovery cache.
    ///
    /// ```no_run
    /// # fn demo(cluster: idp_core::cluster::Cluster) {
    /// cluster.discovery().invalidate("example.com/v1");
    /// # }
    /// ```
    pub fn discovery(&self) -> &DiscoveryCache {
        &self.discovery
    }

    /// The retry policy.
    ///
    /// ```no_run
    /// # fn demo(cluster: idp_core::cluster::Cluster) {
    /// assert!(cluster.retry().max_attempts() >= 1);
    /// # }
    /// ```
    pub fn retry(&self) -> &RetryPolicy {
        &self.retry
    }

    /// Merge `status` into the `status` subresource of the object `name` of `kind` (in
    /// `namespace`, for a namespaced kind), as a controller reports what it found: the
    /// kind is resolved through discovery, and the request is retried as the
    /// [`RetryPolicy`] says. A kind the cluster does not serve, or an object that is
    /// not there, is a `NotFound` error naming it.
    ///
    /// ```no_run
    /// # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
    /// let kind = idp_core::cluster::GroupKind::new("constraints.gatekeeper.sh", "K8sRequiredLabels");
    /// cluster.patch_status(&kind, None, "must-have-owner", &serde_json::json!({"totalViolations": 0})).await?;
    /// # Ok(()) }
    /// ```
    pub async fn patch_status(
        &self,
        kind: &GroupKind,
        namespace: Option<&str>,
        name: &str,
        status: &serde_json::Value,
    ) -> Result<()> {
        let span = tracing::debug_span!("cluster.patch_status", %kind, name);
        async {
            let resolved = self
                .discovery
                .resolve_group_kind(kind)
                .await?
                .ok_or_else(|| Error::not_found(format!("the cluster serves no kind {kind}")))?;
            let api: kube::Api<kube::api::DynamicObject> = match namespace {
                Some(ns) if resolved.namespaced => {
                    kube::Api::namespaced_with(self.client.clone(), ns, &resolved.resource)
                }
                _ => kube::Api::all_with(self.client.clone(), &resolved.resource),
            };
            let patch = kube::api::Patch::Merge(serde_json::json!({ "status": status }));
            let params = kube::api::PatchParams::default();
            let what = format!("patch the status of {kind} {name}");
            self.retry
                .run(&what, || api.patch_status(name, &params, &patch))
                .await?;
            Ok(())
        }
        .instrument(span)
        .await
    }
}
