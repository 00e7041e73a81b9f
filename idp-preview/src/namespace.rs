//! [`NamespaceProvider`]: one Kubernetes namespace per preview environment.
//!
//! `ensure` creates (or updates) the namespace with our labels and annotations, then
//! applies the guard rails from [`NamespaceConfig`]: a `ResourceQuota`, a `LimitRange`, a
//! `NetworkPolicy` that denies ingress except from the same namespace and from the
//! ingress controller's namespace, and an `Ingress` whose host comes from a template
//! (the URL goes into [`Environment::url`]). The workloads themselves are applied by a
//! [`Deployer`](idp_core::Deployer). `destroy` deletes the namespace and waits until it
//! is gone; `list` selects by label only.
//!
//! **Ownership.** A namespace is ours only when it carries the label
//! [`labels::MANAGED_BY`]`=`[`labels::MANAGED_BY_VALUE`] *and* the annotation
//! [`ENVIRONMENT_ANNOTATION`] naming the environment. A namespace without both is never
//! adopted (`ensure` fails with `AlreadyExists`) nor deleted (`destroy` leaves it and
//! returns `false`). Two pull requests colliding on one name fail with `Conflict`.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> idp_core::Result<()> {
//! use idp_core::{EnvironmentProvider, model::EnvironmentSpec};
//! use idp_preview::namespace::{NamespaceConfig, NamespaceProvider};
//! let provider = NamespaceProvider::new(
//!     idp_core::cluster::Cluster::new(client),
//!     NamespaceConfig::default().with_ingress("{env}.preview.example.com", "web", 80),
//! );
//! let env = provider.ensure(&EnvironmentSpec::new("pr-cart-42".parse()?)).await?;
//! println!("{:?}", env.url);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use idp_core::cluster::{Applier, Cluster, Inventory, PruneOptions, errors::from_kube};
use idp_core::model::EnvironmentSpec;
use idp_core::{
    EntityRef, Environment, EnvironmentName, EnvironmentProvider, Error, ErrorKind, ManifestSet,
    Object, Result,
};
use kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::labels;

/// Annotation on our namespaces: the environment's exact name (ownership proof together
/// with the [`labels::MANAGED_BY`] label).
pub const ENVIRONMENT_ANNOTATION: &str = "idp.dev/environment";
/// Annotation on our namespaces: the environment owner's entity reference.
pub const OWNER_ANNOTATION: &str = "idp.dev/owner-ref";
/// The name of the inventory (ConfigMap) the provider's own objects belong to, in the
/// preview namespace.
pub const INVENTORY_NAME: &str = "idp-preview-env";

/// The default `LimitRange` for containers.
///
/// ```
/// let l = idp_preview::namespace::LimitRangeConfig::default();
/// assert_eq!(l.default_limits["memory"], "512Mi");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LimitRangeConfig {
    /// Limits given to containers that set none (`default`).
    pub default_limits: BTreeMap<String, String>,
    /// Requests given to containers that set none (`defaultRequest`).
    pub default_requests: BTreeMap<String, String>,
    /// The most a container may ask for (`max`).
    pub max: BTreeMap<String, String>,
}

impl Default for LimitRangeConfig {
    fn default() -> Self {
        let map = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        Self {
            default_limits: map(&[("cpu", "500m"), ("memory", "512Mi")]),
            default_requests: map(&[("cpu", "100m"), ("memory", "128Mi")]),
            max: map(&[("cpu", "2"), ("memory", "2Gi")]),
        }
    }
}

/// How the preview is reached: one Ingress host per preview.
///
/// ```
/// let i = idp_preview::namespace::IngressConfig::new("{env}.preview.example.com", "web", 80);
/// assert_eq!(i.scheme, "https");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IngressConfig {
    /// The host, with `{env}` (the environment name), `{namespace}` and `{pr}` (the
    /// pull-request number, when known) replaced.
    pub host_template: String,
    /// The Service the Ingress routes to (deployed by the deployer).
    pub service: String,
    /// The Service port.
    pub port: u16,
    /// `spec.ingressClassName`, when the cluster needs one.
    #[serde(default)]
    pub class: Option<String>,
    /// The URL scheme reported (`https` by default).
    #[serde(default = "https")]
    pub scheme: String,
}

fn https() -> String {
    "https".to_owned()
}

impl IngressConfig {
    /// Route `host_template` to `service`:`port`.
    ///
    /// ```
    /// let i = idp_preview::namespace::IngressConfig::new("{env}.example.com", "web", 8080);
    /// assert_eq!(i.port, 8080);
    /// ```
    pub fn new(host_template: impl Into<String>, service: impl Into<String>, port: u16) -> Self {
        Self {
            host_template: host_template.into(),
            service: service.into(),
            port,
            class: None,
            scheme: https(),
        }
    }

    /// The host for one environment.
    ///
    /// ```
    /// let i = idp_preview::namespace::IngressConfig::new("{env}.preview.example.com", "web", 80);
    /// assert_eq!(i.host("pr-cart-42", "pr-cart-42", Some("42")), "pr-cart-42.preview.example.com");
    /// ```
    pub fn host(&self, env: &str, namespace: &str, pr: Option<&str>) -> String {
        self.host_template
            .replace("{env}", env)
            .replace("{namespace}", namespace)
            .replace("{pr}", pr.unwrap_or(env))
    }
}

/// What every preview namespace gets.
///
/// ```
/// let c = idp_preview::namespace::NamespaceConfig::default();
/// assert!(c.quota.contains_key("pods"));
/// assert_eq!(c.ingress_namespace_selector["kubernetes.io/metadata.name"], "ingress-nginx");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NamespaceConfig {
    /// `ResourceQuota` `spec.hard`; empty: no quota.
    pub quota: BTreeMap<String, String>,
    /// The `LimitRange`; `None`: no limit range.
    pub limits: Option<LimitRangeConfig>,
    /// Whether to create the ingress-restricting `NetworkPolicy`.
    pub network_policy: bool,
    /// Labels selecting the ingress controller's namespace, allowed in by the policy.
    pub ingress_namespace_selector: BTreeMap<String, String>,
    /// The Ingress; `None`: no Ingress, no URL.
    pub ingress: Option<IngressConfig>,
    /// How long `destroy` waits for the namespace to be gone.
    #[serde(with = "secs")]
    pub destroy_timeout: Duration,
    /// The server-side apply field manager.
    pub field_manager: String,
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_secs())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs(u64::deserialize(d)?))
    }
}

impl Default for NamespaceConfig {
    fn default() -> Self {
        Self {
            quota: [
                ("pods", "20"),
                ("requests.cpu", "2"),
                ("requests.memory", "4Gi"),
                ("limits.cpu", "4"),
                ("limits.memory", "8Gi"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
            limits: Some(LimitRangeConfig::default()),
            network_policy: true,
            ingress_namespace_selector: BTreeMap::from([(
                "kubernetes.io/metadata.name".to_owned(),
                "ingress-nginx".to_owned(),
            )]),
            ingress: None,
            destroy_timeout: Duration::from_secs(120),
            field_manager: labels::MANAGED_BY_VALUE.to_owned(),
        }
    }
}

impl NamespaceConfig {
    /// No quota, limit range, network policy nor Ingress: a bare namespace.
    ///
    /// ```
    /// assert!(idp_preview::namespace::NamespaceConfig::bare().quota.is_empty());
    /// ```
    pub fn bare() -> Self {
        Self {
            quota: BTreeMap::new(),
            limits: None,
            network_policy: false,
            ..Self::default()
        }
    }

    /// Add an Ingress routing `host_template` to `service`:`port`.
    ///
    /// ```
    /// let c = idp_preview::namespace::NamespaceConfig::default().with_ingress("{env}.p.example.com", "web", 80);
    /// assert!(c.ingress.is_some());
    /// ```
    pub fn with_ingress(mut self, host_template: &str, service: &str, port: u16) -> Self {
        self.ingress = Some(IngressConfig::new(host_template, service, port));
        self
    }

    /// Allow ingress from namespaces with these labels (the ingress controller's).
    ///
    /// ```
    /// let c = idp_preview::namespace::NamespaceConfig::default()
    ///     .with_ingress_namespace_selector([("kubernetes.io/metadata.name", "traefik")]);
    /// assert_eq!(c.ingress_namespace_selector.len(), 1);
    /// ```
    pub fn with_ingress_namespace_selector<'a>(
        mut self,
        labels: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        self.ingress_namespace_selector = labels
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        self
    }

    /// Wait at most this long for a deleted namespace to be gone.
    ///
    /// ```
    /// let c = idp_preview::namespace::NamespaceConfig::default().with_destroy_timeout(std::time::Duration::from_secs(5));
    /// assert_eq!(c.destroy_timeout.as_secs(), 5);
    /// ```
    pub fn with_destroy_timeout(mut self, timeout: Duration) -> Self {
        self.destroy_timeout = timeout;
        self
    }
}

/// An [`EnvironmentProvider`] making one namespace per environment; see the
/// [module documentation](self).
///
/// ```no_run
/// # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
/// use idp_core::EnvironmentProvider;
/// let p = idp_preview::namespace::NamespaceProvider::new(cluster, Default::default());
/// for env in p.list().await? {
///     println!("{} expires {:?}", env.name, env.expires_at);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct NamespaceProvider {
    cluster: Cluster,
    config: NamespaceConfig,
}

fn namespace_resource() -> ApiResource {
    ApiResource {
        group: String::new(),
        version: "v1".to_owned(),
        api_version: "v1".to_owned(),
        kind: "Namespace".to_owned(),
        plural: "namespaces".to_owned(),
    }
}

/// Whether `text` is a valid Kubernetes label value.
fn label_value_ok(text: &str) -> bool {
    text.len() <= 63
        && (text.is_empty()
            || (text.starts_with(|c: char| c.is_ascii_alphanumeric())
                && text.ends_with(|c: char| c.is_ascii_alphanumeric())
                && text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))))
}

fn meta_map(object: &DynamicObject, annotations: bool) -> BTreeMap<String, String> {
    let map = if annotations {
        object.metadata.annotations.as_ref()
    } else {
        object.metadata.labels.as_ref()
    };
    map.cloned().unwrap_or_default()
}

impl NamespaceProvider {
    /// A provider making namespaces on `cluster` as `config` says.
    ///
    /// ```no_run
    /// # fn demo(cluster: idp_core::cluster::Cluster) {
    /// let p = idp_preview::namespace::NamespaceProvider::new(cluster, idp_preview::namespace::NamespaceConfig::bare());
    /// # }
    /// ```
    pub fn new(cluster: Cluster, config: NamespaceConfig) -> Self {
        Self { cluster, config }
    }

    /// The configuration.
    ///
    /// ```no_run
    /// # fn demo(p: idp_preview::namespace::NamespaceProvider) {
    /// assert!(p.config().destroy_timeout.as_secs() > 0);
    /// # }
    /// ```
    pub fn config(&self) -> &NamespaceConfig {
        &self.config
    }

    /// The namespace an environment lives in (its name).
    ///
    /// ```no_run
    /// # fn demo(p: idp_preview::namespace::NamespaceProvider) {
    /// assert_eq!(p.namespace_of(&"pr-1".parse().unwrap()), "pr-1");
    /// # }
    /// ```
    pub fn namespace_of(&self, name: &EnvironmentName) -> String {
        name.as_str().to_owned()
    }

    fn api(&self) -> Api<DynamicObject> {
        Api::all_with(self.cluster.client().clone(), &namespace_resource())
    }

    async fn get_namespace(&self, name: &str) -> Result<Option<DynamicObject>> {
        let api = self.api();
        self.cluster
            .retry()
            .run(format!("get namespace {name}"), || api.get_opt(name))
            .await
    }

    /// Whether a live namespace is ours for `name`: label and annotation.
    fn owns(namespace: &DynamicObject, name: &str) -> bool {
        let l = meta_map(namespace, false);
        let a = meta_map(namespace, true);
        l.get(labels::MANAGED_BY).map(String::as_str) == Some(labels::MANAGED_BY_VALUE)
            && a.get(ENVIRONMENT_ANNOTATION).map(String::as_str) == Some(name)
    }

    /// Split a spec's labels into namespace labels and annotations, add ours, validate.
    fn metadata_for(
        spec: &EnvironmentSpec,
        expires_at: Option<jiff::Timestamp>,
    ) -> Result<(BTreeMap<String, String>, BTreeMap<String, String>)> {
        let mut label_map = BTreeMap::new();
        let mut annotations = BTreeMap::new();
        for (key, value) in &spec.labels {
            if labels::ANNOTATION_KEYS.contains(&key.as_str()) {
                annotations.insert(key.clone(), value.clone());
            } else if label_value_ok(value) {
                label_map.insert(key.clone(), value.clone());
            } else {
                return Err(Error::invalid_input(format!(
                    "environment {}: label {key}={value:?} is not a valid Kubernetes label value \
                     (at most 63 characters: letters, digits, `-`, `_`, `.`, starting and ending with a letter or digit)",
                    spec.name
                )));
            }
        }
        label_map.insert(labels::PREVIEW.to_owned(), labels::PREVIEW_VALUE.to_owned());
        label_map.insert(
            labels::MANAGED_BY.to_owned(),
            labels::MANAGED_BY_VALUE.to_owned(),
        );
        label_map.insert(
            idp_core::cluster::labels::MANAGED_BY.to_owned(),
            idp_core::cluster::labels::MANAGED_BY_VALUE.to_owned(),
        );
        label_map.insert(
            idp_core::cluster::labels::ENVIRONMENT.to_owned(),
            spec.name.as_str().to_owned(),
        );
        annotations.insert(
            ENVIRONMENT_ANNOTATION.to_owned(),
            spec.name.as_str().to_owned(),
        );
        if let Some(owner) = &spec.owner {
            annotations.insert(OWNER_ANNOTATION.to_owned(), owner.to_string());
        }
        if let Some(at) = expires_at {
            annotations.insert(labels::EXPIRES_AT.to_owned(), at.to_string());
        }
        Ok((label_map, annotations))
    }

    /// Create the namespace, or check it is ours and update its metadata.
    async fn ensure_namespace(
        &self,
        spec: &EnvironmentSpec,
        label_map: &BTreeMap<String, String>,
        annotations: &BTreeMap<String, String>,
    ) -> Result<DynamicObject> {
        let name = spec.name.as_str();
        let api = self.api();
        let existing = if let Some(ns) = self.get_namespace(name).await? {
            ns
        } else {
            let mut ns = DynamicObject::new(name, &namespace_resource());
            ns.metadata.labels = Some(label_map.clone());
            ns.metadata.annotations = Some(annotations.clone());
            let params = PostParams {
                field_manager: Some(self.config.field_manager.clone()),
                ..PostParams::default()
            };
            match api.create(&params, &ns).await {
                Ok(created) => return Ok(created),
                Err(err)
                    if idp_core::cluster::errors::kind_of(&err) == ErrorKind::AlreadyExists =>
                {
                    // Someone created it between our read and our write: judge it as found.
                    self.get_namespace(name).await?.ok_or_else(|| {
                        Error::conflict(format!(
                            "namespace {name} appeared and vanished while creating it; retry"
                        ))
                    })?
                }
                Err(err) => return Err(from_kube(err, format!("create namespace {name}"))),
            }
        };
        if !Self::owns(&existing, name) {
            return Err(Error::already_exists(format!(
                "namespace {name} already exists and was not created by idp-preview (it lacks the label \
                 {}={} and the annotation {ENVIRONMENT_ANNOTATION}={name}); it is left untouched: \
                 choose another environment name or remove that namespace yourself",
                labels::MANAGED_BY,
                labels::MANAGED_BY_VALUE
            )));
        }
        if existing.metadata.deletion_timestamp.is_some() {
            return Err(Error::conflict(format!(
                "namespace {name} is being deleted; retry once it is gone"
            )));
        }
        let live_id = meta_map(&existing, true).get(labels::PREVIEW_ID).cloned();
        let want_id = annotations.get(labels::PREVIEW_ID);
        if let (Some(live), Some(want)) = (&live_id, want_id)
            && live != want
        {
            return Err(Error::conflict(format!(
                "namespace {name} belongs to the preview of {live}, not {want}: two pull requests map to one \
                 environment name; change the naming prefix"
            )));
        }
        let patch = json!({"metadata": {"labels": label_map, "annotations": annotations}});
        let params = PatchParams {
            field_manager: Some(self.config.field_manager.clone()),
            ..PatchParams::default()
        };
        let patch = Patch::Merge(&patch);
        self.cluster
            .retry()
            .run(format!("update namespace {name}"), || {
                api.patch(name, &params, &patch)
            })
            .await
    }

    /// The provider's own objects in the namespace.
    fn guard_rails(
        &self,
        namespace: &str,
        label_map: &BTreeMap<String, String>,
        host: Option<&str>,
    ) -> Result<ManifestSet> {
        let mut set = ManifestSet::new();
        let meta = |name: &str| json!({"name": name, "namespace": namespace, "labels": label_map});
        let c = &self.config;
        if !c.quota.is_empty() {
            set.push(Object::from_value(json!({
                "apiVersion": "v1", "kind": "ResourceQuota", "metadata": meta("preview-quota"),
                "spec": {"hard": c.quota},
            }))?);
        }
        if let Some(limits) = &c.limits {
            let mut item = serde_json::Map::new();
            item.insert("type".into(), json!("Container"));
            if !limits.default_limits.is_empty() {
                item.insert("default".into(), json!(limits.default_limits));
            }
            if !limits.default_requests.is_empty() {
                item.insert("defaultRequest".into(), json!(limits.default_requests));
            }
            if !limits.max.is_empty() {
                item.insert("max".into(), json!(limits.max));
            }
            set.push(Object::from_value(json!({
                "apiVersion": "v1", "kind": "LimitRange", "metadata": meta("preview-limits"),
                "spec": {"limits": [Value::Object(item)]},
            }))?);
        }
        if c.network_policy {
            let mut from = vec![json!({"podSelector": {}})];
            if !c.ingress_namespace_selector.is_empty() {
                from.push(
                    json!({"namespaceSelector": {"matchLabels": c.ingress_namespace_selector}}),
                );
            }
            set.push(Object::from_value(json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
                "metadata": meta("preview-ingress"),
                "spec": {"podSelector": {}, "policyTypes": ["Ingress"], "ingress": [{"from": from}]},
            }))?);
        }
        if let (Some(ingress), Some(host)) = (&c.ingress, host) {
            let mut spec = json!({"rules": [{"host": host, "http": {"paths": [{
                "path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": ingress.service, "port": {"number": ingress.port}}},
            }]}}]});
            if let Some(class) = &ingress.class {
                spec["ingressClassName"] = json!(class);
            }
            set.push(Object::from_value(json!({
                "apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta("preview"),
                "spec": spec,
            }))?);
        }
        Ok(set)
    }

    fn environment_from(&self, namespace: &DynamicObject) -> Option<Environment> {
        let ns_name = namespace.metadata.name.clone()?;
        let annotations = meta_map(namespace, true);
        let name = annotations
            .get(ENVIRONMENT_ANNOTATION)
            .and_then(|n| EnvironmentName::new(n.clone()).ok())?;
        let mut label_map = meta_map(namespace, false);
        for key in labels::ANNOTATION_KEYS {
            if let Some(value) = annotations.get(*key) {
                label_map.insert((*key).to_owned(), value.clone());
            }
        }
        let url = self.config.ingress.as_ref().map(|i| {
            let pr = label_map.get(labels::PR_NUMBER).map(String::as_str);
            format!("{}://{}", i.scheme, i.host(name.as_str(), &ns_name, pr))
        });
        let mut env = Environment::new(name);
        env.namespace = Some(ns_name);
        env.owner = annotations
            .get(OWNER_ANNOTATION)
            .and_then(|o| o.parse::<EntityRef>().ok());
        env.labels = label_map;
        env.url = url;
        env.created_at = namespace
            .metadata
            .creation_timestamp
            .as_ref()
            .and_then(|t| t.0.to_string().parse().ok());
        env.expires_at = annotations
            .get(labels::EXPIRES_AT)
            .and_then(|t| t.parse().ok());
        Some(env)
    }

    async fn wait_gone(&self, name: &str, uid: Option<&str>) -> Result<()> {
        let deadline = tokio::time::Instant::now() + self.config.destroy_timeout;
        let mut delay = Duration::from_millis(10);
        loop {
            match self.get_namespace(name).await? {
                None => return Ok(()),
                Some(ns) if uid.is_some() && ns.metadata.uid.as_deref() != uid => return Ok(()),
                Some(ns) => {
                    if tokio::time::Instant::now() >= deadline {
                        let finalizers = ns
                            .data
                            .pointer("/spec/finalizers")
                            .map(ToString::to_string)
                            .unwrap_or_default();
                        return Err(Error::timeout(format!(
                            "namespace {name} is still terminating after {:?} (finalizers: {}); \
                             check what blocks it with `kubectl get namespace {name} -o yaml` and retry destroy",
                            self.config.destroy_timeout,
                            if finalizers.is_empty() {
                                "none".to_owned()
                            } else {
                                finalizers
                            }
                        )));
                    }
                }
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(500));
        }
    }
}

#[async_trait]
impl EnvironmentProvider for NamespaceProvider {
    #[tracing::instrument(name = "preview.namespace.ensure", skip_all, fields(environment = %spec.name))]
    async fn ensure(&self, spec: &EnvironmentSpec) -> Result<Environment> {
        let expires_at = match spec.ttl {
            Some(ttl) => {
                let span = jiff::SignedDuration::try_from(ttl).map_err(|e| {
                    Error::invalid_input(format!(
                        "environment {}: ttl {ttl:?} is too long",
                        spec.name
                    ))
                    .with_source(e)
                })?;
                Some(jiff::Timestamp::now().checked_add(span).map_err(|e| {
                    Error::invalid_input(format!(
                        "environment {}: ttl {ttl:?} is too long",
                        spec.name
                    ))
                    .with_source(e)
                })?)
            }
            None => None,
        };
        let (label_map, annotations) = Self::metadata_for(spec, expires_at)?;
        let namespace = self.namespace_of(&spec.name);
        let live = self
            .ensure_namespace(spec, &label_map, &annotations)
            .await
            .map_err(|e| e.context(format_args!("ensure environment {}", spec.name)))?;

        let pr = label_map.get(labels::PR_NUMBER).map(String::as_str);
        let host = self
            .config
            .ingress
            .as_ref()
            .map(|i| i.host(spec.name.as_str(), &namespace, pr));
        let set = self.guard_rails(&namespace, &label_map, host.as_deref())?;
        let applier = Applier::new(
            self.cluster.clone(),
            Inventory::new(&namespace, INVENTORY_NAME)?,
        )
        .with_default_namespace(&namespace)
        .with_field_manager(&self.config.field_manager)
        .with_force(true);
        if !set.is_empty() {
            applier
                .apply(&set)
                .await
                .map_err(|e| e.context(format_args!("ensure environment {}", spec.name)))?;
        }
        applier
            .prune(&set, &PruneOptions::default().allow_empty(true))
            .await
            .map_err(|e| e.context(format_args!("ensure environment {}", spec.name)))?;

        let mut env = self.environment_from(&live).ok_or_else(|| {
            Error::internal(format!(
                "namespace {namespace} lost its annotations while ensuring it"
            ))
        })?;
        // The live object may predate this call's metadata patch in a racing reader;
        // report what this call wrote.
        env.labels = label_map;
        for (key, value) in &annotations {
            if labels::ANNOTATION_KEYS.contains(&key.as_str()) {
                env.labels.insert(key.clone(), value.clone());
            }
        }
        env.expires_at = expires_at;
        env.owner.clone_from(&spec.owner);
        tracing::info!(namespace, url = ?env.url, "preview environment ensured");
        Ok(env)
    }

    #[tracing::instrument(name = "preview.namespace.destroy", skip_all, fields(environment = %name))]
    async fn destroy(&self, name: &EnvironmentName) -> Result<bool> {
        let ns_name = self.namespace_of(name);
        let Some(live) = self.get_namespace(&ns_name).await? else {
            return Ok(false);
        };
        if !Self::owns(&live, name.as_str()) {
            tracing::warn!(
                namespace = ns_name,
                "namespace exists but is not ours: left untouched"
            );
            return Ok(false);
        }
        let uid = live.metadata.uid.clone();
        if live.metadata.deletion_timestamp.is_none() {
            let api = self.api();
            let params = DeleteParams {
                preconditions: uid.clone().map(|uid| kube::api::Preconditions {
                    uid: Some(uid),
                    resource_version: None,
                }),
                ..DeleteParams::background()
            };
            match api.delete(&ns_name, &params).await {
                Ok(_) => {}
                Err(err) if idp_core::cluster::errors::kind_of(&err) == ErrorKind::NotFound => {
                    return Ok(true);
                }
                Err(err) => {
                    return Err(from_kube(err, format!("delete namespace {ns_name}")));
                }
            }
        }
        self.wait_gone(&ns_name, uid.as_deref()).await?;
        tracing::info!(namespace = ns_name, "preview environment destroyed");
        Ok(true)
    }

    #[tracing::instrument(name = "preview.namespace.list", skip_all)]
    async fn list(&self) -> Result<Vec<Environment>> {
        let api = self.api();
        let mut out = Vec::new();
        let mut params = ListParams::default().labels(&labels::selector()).limit(500);
        loop {
            let page = self
                .cluster
                .retry()
                .run("list preview namespaces", || api.list(&params))
                .await?;
            for ns in &page.items {
                let Some(name) = ns.metadata.name.as_deref() else {
                    continue;
                };
                let env_name = meta_map(ns, true).get(ENVIRONMENT_ANNOTATION).cloned();
                let Some(env_name) = env_name else { continue };
                if !Self::owns(ns, &env_name) || name != env_name {
                    continue;
                }
                if let Some(env) = self.environment_from(ns) {
                    out.push(env);
                }
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values() {
        assert!(label_value_ok("abc-1.2_x"));
        assert!(label_value_ok(""));
        assert!(!label_value_ok("a/b"));
        assert!(!label_value_ok("-a"));
        assert!(!label_value_ok(&"a".repeat(64)));
    }

    #[test]
    fn annotation_keys_go_to_annotations() {
        let spec = EnvironmentSpec::new("pr-1".parse().unwrap())
            .with_label(labels::PREVIEW_ID, "a/b#1")
            .with_label("team", "x");
        let (l, a) = NamespaceProvider::metadata_for(&spec, None).unwrap();
        assert_eq!(a[labels::PREVIEW_ID], "a/b#1");
        assert_eq!(l["team"], "x");
        assert!(!l.contains_key(labels::PREVIEW_ID));
        let bad = EnvironmentSpec::new("pr-1".parse().unwrap()).with_label("x", "a/b");
        assert_eq!(
            NamespaceProvider::metadata_for(&bad, None)
                .unwrap_err()
                .kind(),
            ErrorKind::InvalidInput
        );
    }
}
