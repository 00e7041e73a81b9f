//! Resource provisioning: where `${resources.<name>.<output>}` values come from.
//!
//! A [`ResourceProvisioner`] is asked once per resource a workload declares and answers
//! with its outputs. The defaults cover what needs no infrastructure: [`EnvironmentValues`]
//! (type `environment`: the profile's `env` map), [`ServiceDns`] (type `service`: another
//! workload's in-cluster DNS name) and [`StaticOutputs`] (outputs written by infrastructure
//! templates, keyed by resource name). [`CompositeProvisioner`] dispatches on the
//! resource's `type`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use idp_core::{Error, Result};
use serde_json::{Map, Value};
use tracing::Instrument as _;

use super::score::ResourceSpec;
use super::yaml;

/// What a provisioner is asked: one resource of one workload, in one environment.
///
/// ```
/// use idp_deploy::workload::{ProvisionRequest, ResourceSpec};
/// let spec: ResourceSpec = serde_json::from_value(serde_json::json!({"type": "postgres"})).unwrap();
/// let req = ProvisionRequest::new("cart", "db", spec, "shop");
/// assert_eq!(req.resource_name, "db");
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProvisionRequest {
    /// The workload's name.
    pub workload: String,
    /// The resource's name in the workload (`db`).
    pub resource_name: String,
    /// The resource as declared.
    pub resource: ResourceSpec,
    /// The namespace the workload is rendered into.
    pub namespace: String,
    /// The environment's name, when known.
    pub environment: Option<String>,
    /// The profile's `env` map (for type `environment`).
    pub env: BTreeMap<String, String>,
}

impl ProvisionRequest {
    /// A request with no environment and an empty `env` map.
    ///
    /// ```
    /// # use idp_deploy::workload::{ProvisionRequest, ResourceSpec};
    /// # let spec: ResourceSpec = serde_json::from_value(serde_json::json!({"type": "service"})).unwrap();
    /// let req = ProvisionRequest::new("cart", "backend", spec, "shop");
    /// assert!(req.environment.is_none());
    /// ```
    pub fn new(
        workload: impl Into<String>,
        resource_name: impl Into<String>,
        resource: ResourceSpec,
        namespace: impl Into<String>,
    ) -> Self {
        Self {
            workload: workload.into(),
            resource_name: resource_name.into(),
            resource,
            namespace: namespace.into(),
            environment: None,
            env: BTreeMap::new(),
        }
    }

    /// Set the environment name.
    ///
    /// ```
    /// # use idp_deploy::workload::{ProvisionRequest, ResourceSpec};
    /// # let spec: ResourceSpec = serde_json::from_value(serde_json::json!({"type": "service"})).unwrap();
    /// let req = ProvisionRequest::new("cart", "b", spec, "shop").with_environment("prod");
    /// assert_eq!(req.environment.as_deref(), Some("prod"));
    /// ```
    pub fn with_environment(mut self, environment: impl Into<String>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// Set the `env` map.
    ///
    /// ```
    /// # use idp_deploy::workload::{ProvisionRequest, ResourceSpec};
    /// # let spec: ResourceSpec = serde_json::from_value(serde_json::json!({"type": "environment"})).unwrap();
    /// let req = ProvisionRequest::new("cart", "env", spec, "shop")
    ///     .with_env([("REGION".to_owned(), "eu".to_owned())].into());
    /// assert_eq!(req.env["REGION"], "eu");
    /// ```
    pub fn with_env(mut self, env: BTreeMap<String, String>) -> Self {
        self.env = env;
        self
    }
}

/// The outputs of one resource: a JSON mapping; placeholders walk into it by key
/// (`${resources.db.host}`, `${resources.bucket.tags.team}`).
///
/// ```
/// let mut o = idp_deploy::workload::Outputs::new();
/// o.insert("host".into(), "db.internal".into());
/// assert_eq!(o["host"], "db.internal");
/// ```
pub type Outputs = Map<String, Value>;

/// Supplies the outputs of the resources a workload depends on.
///
/// Object-safe and `Send + Sync`: use it as `Arc<dyn ResourceProvisioner>` or
/// `&dyn ResourceProvisioner`. An implementation may create real infrastructure (a
/// database, a bucket) or only look values up; it must answer the same request with the
/// same outputs, so rendering stays deterministic.
///
/// ```
/// use async_trait::async_trait;
/// use idp_deploy::workload::{Outputs, ProvisionRequest, ResourceProvisioner};
///
/// struct FakeRedis;
///
/// #[async_trait]
/// impl ResourceProvisioner for FakeRedis {
///     async fn provision(&self, request: &ProvisionRequest) -> idp_core::Result<Outputs> {
///         let mut out = Outputs::new();
///         out.insert("host".into(), format!("{}-redis", request.workload).into());
///         Ok(out)
///     }
/// }
/// let _: &dyn ResourceProvisioner = &FakeRedis;
/// ```
#[async_trait]
pub trait ResourceProvisioner: Send + Sync {
    /// The outputs of `request.resource`.
    async fn provision(&self, request: &ProvisionRequest) -> Result<Outputs>;
}

#[async_trait]
impl<T: ResourceProvisioner + ?Sized> ResourceProvisioner for Arc<T> {
    async fn provision(&self, request: &ProvisionRequest) -> Result<Outputs> {
        (**self).provision(request).await
    }
}

fn span(name: &'static str, request: &ProvisionRequest) -> tracing::Span {
    tracing::debug_span!(
        "provision",
        provisioner = name,
        workload = %request.workload,
        resource = %request.resource_name,
        r#type = %request.resource.kind,
    )
}

/// Type `environment`: the outputs are the profile's `env` map, so
/// `${resources.env.REGION}` reads `env: {REGION: ...}`. A missing key fails at
/// placeholder time with the keys that exist.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use idp_deploy::workload::{EnvironmentValues, ProvisionRequest, ResourceProvisioner, ResourceSpec};
/// let spec: ResourceSpec = serde_json::from_value(serde_json::json!({"type": "environment"})).unwrap();
/// let req = ProvisionRequest::new("cart", "env", spec, "shop").with_env([("REGION".into(), "eu".into())].into());
/// let out = EnvironmentValues.provision(&req).await.unwrap();
/// assert_eq!(out["REGION"], "eu");
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct EnvironmentValues;

#[async_trait]
impl ResourceProvisioner for EnvironmentValues {
    async fn provision(&self, request: &ProvisionRequest) -> Result<Outputs> {
        async {
            Ok(request
                .env
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                .collect())
        }
        .instrument(span("environment", request))
        .await
    }
}

/// Type `service`: another workload reached through its Kubernetes Service.
///
/// The Service's name is `params.name`, else the resource's `id`, else the resource's
/// name; its namespace is `params.namespace`, else the workload's. Outputs: `name`,
/// `namespace`, `host` (`<name>.<namespace>.svc.cluster.local`), and `port` and `url`
/// (`http://host:port`) when `params.port` is given.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use idp_deploy::workload::{ProvisionRequest, ResourceProvisioner, ResourceSpec, ServiceDns};
/// let spec: ResourceSpec = serde_json::from_value(serde_json::json!({"type": "service", "params": {"port": 8080}})).unwrap();
/// let out = ServiceDns.provision(&ProvisionRequest::new("cart", "payments", spec, "shop")).await.unwrap();
/// assert_eq!(out["host"], "payments.shop.svc.cluster.local");
/// assert_eq!(out["url"], "http://payments.shop.svc.cluster.local:8080");
/// # });
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct ServiceDns;

#[async_trait]
impl ResourceProvisioner for ServiceDns {
    async fn provision(&self, request: &ProvisionRequest) -> Result<Outputs> {
        async {
            let params = &request.resource.params;
            let text = |key: &str| params.get(key).and_then(Value::as_str).map(str::to_owned);
            let name = text("name")
                .or_else(|| request.resource.id.clone())
                .unwrap_or_else(|| request.resource_name.clone());
            let namespace = text("namespace").unwrap_or_else(|| request.namespace.clone());
            let host = format!("{name}.{namespace}.svc.cluster.local");
            let mut out = Outputs::new();
            out.insert("name".into(), name.into());
            out.insert("namespace".into(), namespace.into());
            if let Some(port) = params.get("port").filter(|p| p.is_u64() || p.is_string()) {
                let port_text = port
                    .as_str()
                    .map_or_else(|| port.to_string(), str::to_owned);
                out.insert("url".into(), format!("http://{host}:{port_text}").into());
                out.insert("port".into(), port.clone());
            }
            out.insert("host".into(), host.into());
            Ok(out)
        }
        .instrument(span("service", request))
        .await
    }
}

/// Outputs written down ahead of time, keyed by resource name — what a scaffolder's
/// infrastructure templates (Terraform outputs, Crossplane connection details) produce.
///
/// ```yaml
/// db:
///   host: cart-db.postgres.example.com
///   port: 5432
///   username: cart
/// cache:
///   host: redis.shop.svc.cluster.local
/// ```
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use idp_deploy::workload::{ProvisionRequest, ResourceProvisioner, ResourceSpec, StaticOutputs};
/// let outputs = StaticOutputs::from_yaml("db: {host: db.example.com, port: 5432}\n", None).unwrap();
/// let spec: ResourceSpec = serde_json::from_value(serde_json::json!({"type": "postgres"})).unwrap();
/// let out = outputs.provision(&ProvisionRequest::new("cart", "db", spec, "shop")).await.unwrap();
/// assert_eq!(out["port"], 5432);
/// # });
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StaticOutputs {
    by_name: BTreeMap<String, Outputs>,
    origin: Option<String>,
}

impl StaticOutputs {
    /// No outputs yet.
    ///
    /// ```
    /// let s = idp_deploy::workload::StaticOutputs::new().with("db", serde_json::Map::new());
    /// assert!(s.get("db").is_some());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Add (or replace) the outputs of one resource.
    ///
    /// ```
    /// let mut o = serde_json::Map::new();
    /// o.insert("host".into(), "db".into());
    /// let s = idp_deploy::workload::StaticOutputs::new().with("db", o);
    /// assert_eq!(s.get("db").unwrap()["host"], "db");
    /// ```
    pub fn with(mut self, resource: impl Into<String>, outputs: Outputs) -> Self {
        self.by_name.insert(resource.into(), outputs);
        self
    }

    /// The outputs of one resource.
    ///
    /// ```
    /// assert!(idp_deploy::workload::StaticOutputs::new().get("db").is_none());
    /// ```
    pub fn get(&self, resource: &str) -> Option<&Outputs> {
        self.by_name.get(resource)
    }

    /// Parse a mapping of resource name → outputs (YAML or JSON).
    ///
    /// ```
    /// let err = idp_deploy::workload::StaticOutputs::from_yaml("db: 5\n", None).unwrap_err();
    /// assert!(err.to_string().contains("<input>:1"), "{err}");
    /// ```
    pub fn from_yaml(text: &str, file: Option<&Path>) -> Result<Self> {
        let by_name: BTreeMap<String, Outputs> = yaml::parse(text, file, "outputs file")?;
        Ok(Self {
            by_name,
            origin: file.map(|f| f.display().to_string()),
        })
    }

    /// Read a file of outputs.
    ///
    /// ```no_run
    /// let s = idp_deploy::workload::StaticOutputs::from_file("infra/outputs.yaml")?;
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = yaml::read(path, "outputs file")?;
        Self::from_yaml(&text, Some(path))
    }
}

#[async_trait]
impl ResourceProvisioner for StaticOutputs {
    async fn provision(&self, request: &ProvisionRequest) -> Result<Outputs> {
        async {
            self.by_name
                .get(&request.resource_name)
                .cloned()
                .ok_or_else(|| {
                    Error::not_found(format!(
                        "no outputs for resource `{}` (type `{}`){}; add a `{}:` entry with its \
                         outputs",
                        request.resource_name,
                        request.resource.kind,
                        self.origin
                            .as_ref()
                            .map_or_else(String::new, |o| format!(" in {o}")),
                        request.resource_name
                    ))
                })
        }
        .instrument(span("static", request))
        .await
    }
}

/// Dispatches each resource to the provisioner registered for its `type`, with an
/// optional fallback for every other type.
///
/// [`CompositeProvisioner::with_defaults`] registers `environment` → [`EnvironmentValues`]
/// and `service` → [`ServiceDns`].
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use idp_deploy::workload::{CompositeProvisioner, ProvisionRequest, ResourceProvisioner, ResourceSpec, StaticOutputs};
/// let statics = StaticOutputs::from_yaml("db: {host: db.example.com}\n", None).unwrap();
/// let p = CompositeProvisioner::with_defaults().with("postgres", statics);
/// let spec: ResourceSpec = serde_json::from_value(serde_json::json!({"type": "postgres"})).unwrap();
/// let out = p.provision(&ProvisionRequest::new("cart", "db", spec, "shop")).await.unwrap();
/// assert_eq!(out["host"], "db.example.com");
///
/// let spec: ResourceSpec = serde_json::from_value(serde_json::json!({"type": "s3"})).unwrap();
/// let err = p.provision(&ProvisionRequest::new("cart", "bucket", spec, "shop")).await.unwrap_err();
/// assert!(err.to_string().contains("no provisioner for resource type `s3`"), "{err}");
/// # });
/// ```
#[derive(Clone, Default)]
pub struct CompositeProvisioner {
    by_type: BTreeMap<String, Arc<dyn ResourceProvisioner>>,
    fallback: Option<Arc<dyn ResourceProvisioner>>,
}

impl std::fmt::Debug for CompositeProvisioner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompositeProvisioner")
            .field("types", &self.by_type.keys().collect::<Vec<_>>())
            .field("fallback", &self.fallback.is_some())
            .finish()
    }
}

impl CompositeProvisioner {
    /// No provisioner registered.
    ///
    /// ```
    /// let p = idp_deploy::workload::CompositeProvisioner::new();
    /// assert!(p.types().is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// `environment` → [`EnvironmentValues`], `service` → [`ServiceDns`].
    ///
    /// ```
    /// let p = idp_deploy::workload::CompositeProvisioner::with_defaults();
    /// assert_eq!(p.types(), ["environment", "service"]);
    /// ```
    pub fn with_defaults() -> Self {
        Self::new()
            .with("environment", EnvironmentValues)
            .with("service", ServiceDns)
    }

    /// Register `provisioner` for resources of `kind` (replacing any earlier one).
    ///
    /// ```
    /// let p = idp_deploy::workload::CompositeProvisioner::new()
    ///     .with("postgres", idp_deploy::workload::StaticOutputs::new());
    /// assert_eq!(p.types(), ["postgres"]);
    /// ```
    pub fn with(
        mut self,
        kind: impl Into<String>,
        provisioner: impl ResourceProvisioner + 'static,
    ) -> Self {
        self.by_type.insert(kind.into(), Arc::new(provisioner));
        self
    }

    /// Use `provisioner` for every type with no provisioner of its own.
    ///
    /// ```
    /// let p = idp_deploy::workload::CompositeProvisioner::with_defaults()
    ///     .with_fallback(idp_deploy::workload::StaticOutputs::new());
    /// # let _ = p;
    /// ```
    pub fn with_fallback(mut self, provisioner: impl ResourceProvisioner + 'static) -> Self {
        self.fallback = Some(Arc::new(provisioner));
        self
    }

    /// The registered types, sorted.
    ///
    /// ```
    /// assert!(idp_deploy::workload::CompositeProvisioner::new().types().is_empty());
    /// ```
    pub fn types(&self) -> Vec<&str> {
        self.by_type.keys().map(String::as_str).collect()
    }
}

#[async_trait]
impl ResourceProvisioner for CompositeProvisioner {
    async fn provision(&self, request: &ProvisionRequest) -> Result<Outputs> {
        let chosen = self
            .by_type
            .get(&request.resource.kind)
            .or(self.fallback.as_ref());
        let Some(provisioner) = chosen else {
            return Err(Error::invalid_input(format!(
                "no provisioner for resource type `{}` (resource `{}` of workload `{}`); \
                 known types: {}. Register one with CompositeProvisioner::with or supply \
                 static outputs",
                request.resource.kind,
                request.resource_name,
                request.workload,
                if self.by_type.is_empty() {
                    "none".to_owned()
                } else {
                    self.types().join(", ")
                }
            )));
        };
        provisioner
            .provision(request)
            .instrument(span("composite", request))
            .await
    }
}
