//! [`FakeCluster`]: start, connect, inspect, stop.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::faults::Faults;
use crate::requests::Requests;
use crate::shared::{Options, Shared};
use crate::store::{EventType, ObjKey};

/// An in-process Kubernetes API server on a loopback port.
///
/// The real [`kube::Client`] (from [`FakeCluster::client`]) and `kubectl` (with
/// [`FakeCluster::write_kubeconfig`]) talk to it over HTTP unchanged. Dropping it stops the
/// server and closes every connection, including open watches.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use k8s_openapi::api::core::v1::ConfigMap;
/// use kube::api::{Api, PostParams};
///
/// let cluster = idp_testkit::FakeCluster::start().await?;
/// let cms: Api<ConfigMap> = Api::namespaced(cluster.client(), "default");
/// let mut cm = ConfigMap::default();
/// cm.metadata.name = Some("settings".into());
/// cms.create(&PostParams::default(), &cm).await?;
/// assert!(cms.get("settings").await?.metadata.uid.is_some());
/// assert_eq!(cluster.requests().writes(), 1);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct FakeCluster {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

/// Options for [`FakeCluster`]; get one from [`FakeCluster::builder`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idp_core::Result<()> {
/// use std::time::Duration;
/// let cluster = idp_testkit::FakeCluster::builder()
///     .seed(42)
///     .rollout_delay(Duration::from_millis(1))
///     .namespace_deletion_delay(Duration::ZERO)
///     .namespace("team-a")
///     .start()
///     .await?;
/// assert!(cluster.url().starts_with("http://127.0.0.1:"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct FakeClusterBuilder {
    options: Options,
}

impl FakeClusterBuilder {
    /// Listen on this port (default 0: any free port).
    pub fn port(mut self, port: u16) -> Self {
        self.options.port = port;
        self
    }

    /// Seed for generated names, UIDs and fractional faults (same seed → same run).
    pub fn seed(mut self, seed: u64) -> Self {
        self.options.seed = seed;
        self
    }

    /// How long a deleted namespace stays `Terminating` before its contents are deleted
    /// (default 20ms).
    pub fn namespace_deletion_delay(mut self, delay: Duration) -> Self {
        self.options.namespace_deletion_delay = delay;
        self
    }

    /// Turn the rollout simulator on (default) or off.
    pub fn rollout_simulation(mut self, enabled: bool) -> Self {
        self.options.rollout.enabled = enabled;
        self
    }

    /// How long after a workload change its rolled-out status appears (default 20ms).
    pub fn rollout_delay(mut self, delay: Duration) -> Self {
        self.options.rollout.delay = delay;
        self
    }

    /// Images matching this glob (`*` matches anything) never become ready
    /// (default `*:broken`).
    pub fn broken_image_pattern(mut self, pattern: &str) -> Self {
        self.options.rollout.broken_image = pattern.to_owned();
        self
    }

    /// How many nodes DaemonSets schedule onto (default 1).
    pub fn nodes(mut self, nodes: u32) -> Self {
        self.options.rollout.nodes = nodes;
        self
    }

    /// How often watches with `allowWatchBookmarks=true` get a BOOKMARK (default 1s).
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.options.bookmark_interval = interval;
        self
    }

    /// How many events are kept for watch resumption (default 10,000); watches from an
    /// older resourceVersion get `410 Gone`.
    pub fn watch_window(mut self, events: usize) -> Self {
        self.options.watch_window = events.max(1);
        self
    }

    /// Another namespace that exists from the start (besides `default`, `kube-system`,
    /// `kube-public` and `kube-node-lease`).
    pub fn namespace(mut self, name: &str) -> Self {
        self.options.namespaces.push(name.to_owned());
        self
    }

    /// Binds the port and starts serving.
    pub async fn start(self) -> idp_core::Result<FakeCluster> {
        FakeCluster::start_with(self.options).await
    }
}

impl FakeCluster {
    /// Starts a cluster with default options on a free loopback port.
    pub async fn start() -> idp_core::Result<Self> {
        Self::builder().start().await
    }

    /// A builder for non-default options.
    ///
    /// ```
    /// let builder = idp_testkit::FakeCluster::builder().seed(7);
    /// # let _ = builder;
    /// ```
    pub fn builder() -> FakeClusterBuilder {
        FakeClusterBuilder::default()
    }

    #[tracing::instrument(name = "fake_cluster.start", skip_all, fields(port = options.port))]
    async fn start_with(options: Options) -> idp_core::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
            .await
            .map_err(|e| {
                idp_core::Error::unavailable(format!(
                    "fake cluster could not listen on 127.0.0.1:{}; pick another port or use 0 for any free port",
                    options.port
                ))
                .with_source(e)
            })?;
        let addr = listener.local_addr().map_err(|e| {
            idp_core::Error::internal("fake cluster listener has no local address").with_source(e)
        })?;
        let namespaces = options.namespaces.clone();
        let shared = Shared::new(options, addr.to_string());
        shared.write(|s| {
            for ns in namespaces {
                let key: ObjKey = (
                    String::new(),
                    "namespaces".into(),
                    String::new(),
                    ns.clone(),
                );
                if s.get(&key).is_some() {
                    continue;
                }
                let uid = crate::meta::uid(&mut s.rng);
                let obj = json!({
                    "apiVersion": "v1", "kind": "Namespace",
                    "metadata": {"name": ns, "uid": uid, "creationTimestamp": crate::meta::now(),
                                 "labels": {"kubernetes.io/metadata.name": ns}},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                });
                s.put(key, obj, EventType::Added);
            }
        });
        let task = tokio::spawn(crate::server::serve(listener, shared.clone()));
        tracing::debug!(%addr, "fake cluster listening");
        Ok(Self { shared, addr, task })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A [`kube::Client`] for this cluster (plain HTTP, no auth, default namespace
    /// `default`).
    pub fn client(&self) -> kube::Client {
        let uri: http::Uri = self
            .url()
            .parse()
            .unwrap_or_else(|_| http::Uri::from_static("http://127.0.0.1"));
        let config = kube::Config::new(uri);
        // Building a client from a plain-HTTP config cannot fail; fall back defensively.
        kube::Client::try_from(config)
            .unwrap_or_else(|_| unreachable!("a plain-HTTP kube::Config always builds a client"))
    }

    /// A kubeconfig YAML document whose current context points at this cluster.
    pub fn kubeconfig(&self) -> String {
        crate::kubeconfig::kubeconfig_yaml(&self.url(), "idp-testkit", "default")
    }

    /// Writes [`FakeCluster::kubeconfig`] to `path` (for `kubectl --kubeconfig`).
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> idp_core::Result<()> {
        let path = path.as_ref();
        std::fs::write(path, self.kubeconfig()).map_err(|e| {
            idp_core::Error::internal(format!(
                "could not write kubeconfig to {}; check the directory exists and is writable",
                path.display()
            ))
            .with_source(e)
        })
    }

    /// Every request served so far (since the last [`FakeCluster::reset_counters`]).
    pub fn requests(&self) -> Requests {
        self.shared.requests.snapshot()
    }

    /// Forgets the requests served so far.
    pub fn reset_counters(&self) {
        self.shared.requests.clear();
    }

    /// The fault injector.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The current global resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.read(crate::store::Store::rv)
    }

    /// Stops serving and closes all connections.
    pub async fn shutdown(self) {
        self.task.abort();
        let _ = (&mut { self }.task).await;
    }
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        self.task.abort();
    }
}
