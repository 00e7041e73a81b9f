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
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::builder().port(0).start().await?;
    /// assert_ne!(c.addr().port(), 0);
    /// # Ok(()) }
    /// ```
    pub fn port(mut self, port: u16) -> Self {
        self.options.port = port;
        self
    }

    /// Seed for generated names, UIDs and fractional faults (same seed → same run).
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::builder().seed(7).start().await?;
    /// # let _ = c;
    /// # Ok(()) }
    /// ```
    pub fn seed(mut self, seed: u64) -> Self {
        self.options.seed = seed;
        self
    }

    /// How long a deleted namespace stays `Terminating` before its contents are deleted
    /// (default 20ms).
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::builder()
    ///     .namespace_deletion_delay(std::time::Duration::ZERO)
    ///     .start()
    ///     .await?;
    /// # let _ = c;
    /// # Ok(()) }
    /// ```
    pub fn namespace_deletion_delay(mut self, delay: Duration) -> Self {
        self.options.namespace_deletion_delay = delay;
        self
    }

    /// Turn the rollout simulator on (default) or off.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::builder().rollout_simulation(false).start().await?;
    /// # let _ = c;
    /// # Ok(()) }
    /// ```
    pub fn rollout_simulation(mut self, enabled: bool) -> Self {
        self.options.rollout.enabled = enabled;
        self
    }

    /// How long after a workload change its rolled-out status appears (default 20ms).
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::builder()
    ///     .rollout_delay(std::time::Duration::from_millis(1))
    ///     .start()
    ///     .await?;
    /// # let _ = c;
    /// # Ok(()) }
    /// ```
    pub fn rollout_delay(mut self, delay: Duration) -> Self {
        self.options.rollout.delay = delay;
        self
    }

    /// Images matching this glob (`*` matches anything) never become ready
    /// (default `*:broken`).
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::builder()
    ///     .broken_image_pattern("registry.example/*:bad-*")
    ///     .start()
    ///     .await?;
    /// # let _ = c;
    /// # Ok(()) }
    /// ```
    pub fn broken_image_pattern(mut self, pattern: &str) -> Self {
        pattern.clone_into(&mut self.options.rollout.broken_image);
        self
    }

    /// How many nodes DaemonSets schedule onto (default 1).
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::builder().nodes(3).start().await?;
    /// # let _ = c;
    /// # Ok(()) }
    /// ```
    pub fn nodes(mut self, nodes: u32) -> Self {
        self.options.rollout.nodes = nodes;
        self
    }

    /// How often watches with `allowWatchBookmarks=true` get a BOOKMARK (default 1s).
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::builder()
    ///     .bookmark_interval(std::time::Duration::from_millis(50))
    ///     .start()
    ///     .await?;
    /// # let _ = c;
    /// # Ok(()) }
    /// ```
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.options.bookmark_interval = interval;
        self
    }

    /// How many events are kept for watch resumption (default 10,000); watches from an
    /// older resourceVersion get `410 Gone`.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::builder().watch_window(100).start().await?;
    /// # let _ = c;
    /// # Ok(()) }
    /// ```
    pub fn watch_window(mut self, events: usize) -> Self {
        self.options.watch_window = events.max(1);
        self
    }

    /// Another namespace that exists from the start (besides `default`, `kube-system`,
    /// `kube-public` and `kube-node-lease`).
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::builder().namespace("team-a").start().await?;
    /// # let _ = c;
    /// # Ok(()) }
    /// ```
    pub fn namespace(mut self, name: &str) -> Self {
        self.options.namespaces.push(name.to_owned());
        self
    }

    /// Binds the port and starts serving.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::builder().start().await?;
    /// assert!(c.url().starts_with("http://"));
    /// # Ok(()) }
    /// ```
    pub async fn start(self) -> idp_core::Result<FakeCluster> {
        FakeCluster::start_with(self.options).await
    }
}

impl FakeCluster {
    /// Starts a cluster with default options on a free loopback port.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// assert!(c.resource_version() > 0);
    /// # Ok(()) }
    /// ```
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
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// assert_eq!(c.url(), format!("http://{}", c.addr()));
    /// # Ok(()) }
    /// ```
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The socket address the server listens on.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// assert!(c.addr().ip().is_loopback());
    /// # Ok(()) }
    /// ```
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A [`kube::Client`] for this cluster (plain HTTP, no auth, default namespace
    /// `default`). Call it inside a Tokio runtime, like any `kube::Client` construction.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// let client = c.client();
    /// assert_eq!(client.default_namespace(), "default");
    /// # Ok(()) }
    /// ```
    pub fn client(&self) -> kube::Client {
        let uri: http::Uri = self
            .url()
            .parse()
            .unwrap_or_else(|_| http::Uri::from_static("http://127.0.0.1"));
        let mut config = kube::Config::new(uri);
        // As `idp_core::cluster::client_from_kubeconfig`: retries are the `Cluster`'s.
        config.default_retry = false;
        // Building a client from a plain-HTTP config cannot fail; fall back defensively.
        kube::Client::try_from(config)
            .unwrap_or_else(|_| unreachable!("a plain-HTTP kube::Config always builds a client"))
    }

    /// A kubeconfig YAML document whose current context points at this cluster.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// assert!(c.kubeconfig().contains(&c.url()));
    /// # Ok(()) }
    /// ```
    pub fn kubeconfig(&self) -> String {
        crate::kubeconfig::kubeconfig_yaml(&self.url(), "idp-testkit", "default")
    }

    /// Writes [`FakeCluster::kubeconfig`] to `path` (for `kubectl --kubeconfig`).
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// let dir = tempfile::tempdir().map_err(|e| idp_core::Error::internal(e.to_string()))?;
    /// c.write_kubeconfig(dir.path().join("kubeconfig"))?;
    /// # Ok(()) }
    /// ```
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
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// assert!(c.requests().is_empty());
    /// # Ok(()) }
    /// ```
    pub fn requests(&self) -> Requests {
        self.shared.requests.snapshot()
    }

    /// Forgets the requests served so far.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// c.reset_counters();
    /// assert_eq!(c.requests().len(), 0);
    /// # Ok(()) }
    /// ```
    pub fn reset_counters(&self) {
        self.shared.requests.clear();
    }

    /// The fault injector.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// c.faults().inject(idp_testkit::Fault::status(500).times(1));
    /// # Ok(()) }
    /// ```
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// The stored object `group`/`resource` `namespace`/`name`, read directly (no request
    /// is made or counted). Use `""` for the core group and for cluster-scoped objects.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// let ns = c.object("", "namespaces", "", "default").expect("default exists");
    /// assert_eq!(ns["status"]["phase"], "Active");
    /// assert!(c.object("apps", "deployments", "default", "nope").is_none());
    /// assert!(c.requests().is_empty());
    /// # Ok(()) }
    /// ```
    pub fn object(
        &self,
        group: &str,
        resource: &str,
        namespace: &str,
        name: &str,
    ) -> Option<serde_json::Value> {
        let key: ObjKey = (
            group.to_owned(),
            resource.to_owned(),
            namespace.to_owned(),
            name.to_owned(),
        );
        self.shared.read(|s| s.get(&key).cloned())
    }

    /// Create `object` (any kind the cluster serves, as JSON with `apiVersion`, `kind`
    /// and `metadata`) through the API with the real client, as `kubectl create` does;
    /// the object as stored. The request is made and counted like any other.
    ///
    /// # Errors
    /// The API server's refusal (an unknown kind, a missing namespace, a name taken),
    /// or an object without `apiVersion`/`kind`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// let cm = c.create(serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
    ///     "metadata": {"name": "settings", "namespace": "default"}, "data": {"a": "1"}})).await?;
    /// assert!(cm["metadata"]["uid"].is_string());
    /// assert!(c.object("", "configmaps", "default", "settings").is_some());
    /// # Ok(()) }
    /// ```
    pub async fn create(&self, object: serde_json::Value) -> idp_core::Result<serde_json::Value> {
        use kube::api::{Api, DynamicObject, GroupVersionKind, PostParams};
        let object: DynamicObject = serde_json::from_value(object).map_err(|e| {
            idp_core::Error::invalid_input("not a Kubernetes object").with_source(e)
        })?;
        let Some(types) = object.types.clone() else {
            return Err(idp_core::Error::invalid_input(
                "the object has no apiVersion and kind",
            ));
        };
        let (group, version) = types
            .api_version
            .split_once('/')
            .unwrap_or(("", types.api_version.as_str()));
        // The plural as the API server serves it (a CRD's may not be what kube would
        // guess from the kind: Gatekeeper's `K8sRequiredLabels` is `k8srequiredlabels`).
        let gvk = GroupVersionKind::gvk(group, version, &types.kind);
        let resource = match kube::discovery::pinned_kind(&self.client(), &gvk).await {
            Ok((resource, _)) => resource,
            Err(_) => kube::discovery::ApiResource::from_gvk(&gvk),
        };
        let api: Api<DynamicObject> = match object.metadata.namespace.as_deref() {
            Some(ns) => Api::namespaced_with(self.client(), ns, &resource),
            None => Api::all_with(self.client(), &resource),
        };
        let created = api
            .create(&PostParams::default(), &object)
            .await
            .map_err(|e| {
                idp_core::cluster::errors::from_kube(e, format!("create {}", types.kind))
            })?;
        serde_json::to_value(&created).map_err(|e| {
            idp_core::Error::internal("the created object does not serialize").with_source(e)
        })
    }

    /// All stored objects of `group`/`resource`, in one namespace or (with `None`) in all,
    /// ordered by namespace and name; read directly without a request.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// let namespaces = c.objects("", "namespaces", None);
    /// assert!(namespaces.len() >= 3);
    /// assert!(c.objects("", "configmaps", Some("default")).is_empty());
    /// # Ok(()) }
    /// ```
    pub fn objects(
        &self,
        group: &str,
        resource: &str,
        namespace: Option<&str>,
    ) -> Vec<serde_json::Value> {
        self.shared.read(|s| {
            s.list(group, resource, namespace)
                .map(|(_, o)| o.clone())
                .collect()
        })
    }

    /// The current global resourceVersion.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// let before = c.resource_version();
    /// assert_eq!(c.resource_version(), before);
    /// # Ok(()) }
    /// ```
    pub fn resource_version(&self) -> u64 {
        self.shared.read(crate::store::Store::rv)
    }

    /// Stops serving and closes all connections.
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> idp_core::Result<()> {
    /// let c = idp_testkit::FakeCluster::start().await?;
    /// let addr = c.addr();
    /// c.shutdown().await;
    /// assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    /// # Ok(()) }
    /// ```
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

/// A minimal `CustomResourceDefinition` for `kind` (`plural`) in `group`/`version`,
/// namespaced or cluster-scoped, whose objects keep any fields: enough for a test to
/// create and read custom objects (PolicyReports, Widgets) with [`FakeCluster::create`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idp_core::Result<()> {
/// let c = idp_testkit::FakeCluster::start().await?;
/// c.create(idp_testkit::minimal_crd("example.com", "v1", "Widget", "widgets", true)).await?;
/// c.create(serde_json::json!({"apiVersion": "example.com/v1", "kind": "Widget",
///     "metadata": {"name": "w", "namespace": "default"}, "size": 3})).await?;
/// assert_eq!(c.object("example.com", "widgets", "default", "w").unwrap()["size"], 3);
/// # Ok(()) }
/// ```
pub fn minimal_crd(
    group: &str,
    version: &str,
    kind: &str,
    plural: &str,
    namespaced: bool,
) -> serde_json::Value {
    json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {"group": group, "scope": if namespaced { "Namespaced" } else { "Cluster" },
            "names": {"kind": kind, "listKind": format!("{kind}List"), "plural": plural,
                "singular": kind.to_lowercase()},
            "versions": [{"name": version, "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object",
                    "x-kubernetes-preserve-unknown-fields": true}}}]}})
}

/// The CRDs of the `wgpolicyk8s.io/v1alpha2` report kinds (`PolicyReport`, namespaced;
/// `ClusterPolicyReport`), as [`minimal_crd`]s: what Kyverno or Policy Reporter would
/// have installed.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idp_core::Result<()> {
/// let c = idp_testkit::FakeCluster::start().await?;
/// for crd in idp_testkit::policy_report_crds() {
///     c.create(crd).await?;
/// }
/// # Ok(()) }
/// ```
pub fn policy_report_crds() -> [serde_json::Value; 2] {
    [
        minimal_crd(
            "wgpolicyk8s.io",
            "v1alpha2",
            "PolicyReport",
            "policyreports",
            true,
        ),
        minimal_crd(
            "wgpolicyk8s.io",
            "v1alpha2",
            "ClusterPolicyReport",
            "clusterpolicyreports",
            false,
        ),
    ]
}

/// The CRDs of Gatekeeper: `ConstraintTemplate` (`templates.gatekeeper.sh/v1`),
/// `Config` (`config.gatekeeper.sh/v1alpha1`, namespaced) and each of
/// `constraint_kinds` as Gatekeeper makes a constraint kind's CRD from its template:
/// `constraints.gatekeeper.sh/v1beta1`, cluster-scoped, the plural the lower-cased kind,
/// with a `status` subresource.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idp_core::Result<()> {
/// let c = idp_testkit::FakeCluster::start().await?;
/// for crd in idp_testkit::gatekeeper_crds(&["K8sRequiredLabels"]) {
///     c.create(crd).await?;
/// }
/// c.create(serde_json::json!({"apiVersion": "constraints.gatekeeper.sh/v1beta1",
///     "kind": "K8sRequiredLabels", "metadata": {"name": "owner"}})).await?;
/// assert!(c.object("constraints.gatekeeper.sh", "k8srequiredlabels", "", "owner").is_some());
/// # Ok(()) }
/// ```
pub fn gatekeeper_crds(constraint_kinds: &[&str]) -> Vec<serde_json::Value> {
    let mut crds = vec![
        minimal_crd(
            "templates.gatekeeper.sh",
            "v1",
            "ConstraintTemplate",
            "constrainttemplates",
            false,
        ),
        minimal_crd(
            "config.gatekeeper.sh",
            "v1alpha1",
            "Config",
            "configs",
            true,
        ),
    ];
    for kind in constraint_kinds {
        let mut crd = minimal_crd(
            "constraints.gatekeeper.sh",
            "v1beta1",
            kind,
            &kind.to_lowercase(),
            false,
        );
        crd["spec"]["versions"][0]["subresources"] = json!({"status": {}});
        crds.push(crd);
    }
    crds
}

/// The CRDs of Kyverno's policy kinds (`kyverno.io`): `ClusterPolicy` (`v1`,
/// cluster-scoped), `Policy` (`v1`) and `PolicyException` (`v2`), as [`minimal_crd`]s.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idp_core::Result<()> {
/// let c = idp_testkit::FakeCluster::start().await?;
/// for crd in idp_testkit::kyverno_crds() {
///     c.create(crd).await?;
/// }
/// # Ok(()) }
/// ```
pub fn kyverno_crds() -> [serde_json::Value; 3] {
    [
        minimal_crd(
            "kyverno.io",
            "v1",
            "ClusterPolicy",
            "clusterpolicies",
            false,
        ),
        minimal_crd("kyverno.io", "v1", "Policy", "policies", true),
        minimal_crd(
            "kyverno.io",
            "v2",
            "PolicyException",
            "policyexceptions",
            true,
        ),
    ]
}

/// The CRDs of Gatekeeper's mutators (`mutations.gatekeeper.sh/v1`): `Assign`,
/// `AssignImage`, `AssignMetadata` and `ModifySet`, cluster-scoped, as [`minimal_crd`]s.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idp_core::Result<()> {
/// let c = idp_testkit::FakeCluster::start().await?;
/// for crd in idp_testkit::gatekeeper_mutation_crds() {
///     c.create(crd).await?;
/// }
/// # Ok(()) }
/// ```
pub fn gatekeeper_mutation_crds() -> [serde_json::Value; 4] {
    let crd = |kind: &str| {
        minimal_crd(
            "mutations.gatekeeper.sh",
            "v1",
            kind,
            &kind.to_ascii_lowercase(),
            false,
        )
    };
    [
        crd("Assign"),
        crd("AssignImage"),
        crd("AssignMetadata"),
        crd("ModifySet"),
    ]
}

/// The CRDs of Kyverno's CEL policies (`policies.kyverno.io/v1`): `ValidatingPolicy`
/// (cluster-scoped), `NamespacedValidatingPolicy` and `PolicyException` (namespaced), as
/// [`minimal_crd`]s.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> idp_core::Result<()> {
/// let c = idp_testkit::FakeCluster::start().await?;
/// for crd in idp_testkit::kyverno_cel_crds() {
///     c.create(crd).await?;
/// }
/// # Ok(()) }
/// ```
pub fn kyverno_cel_crds() -> [serde_json::Value; 3] {
    [
        minimal_crd(
            "policies.kyverno.io",
            "v1",
            "ValidatingPolicy",
            "validatingpolicies",
            false,
        ),
        minimal_crd(
            "policies.kyverno.io",
            "v1",
            "NamespacedValidatingPolicy",
            "namespacedvalidatingpolicies",
            true,
        ),
        minimal_crd(
            "policies.kyverno.io",
            "v1",
            "PolicyException",
            "policyexceptions",
            true,
        ),
    ]
}
