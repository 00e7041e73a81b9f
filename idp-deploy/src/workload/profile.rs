//! Per-environment parameters: what differs between `dev` and `prod` for the same workload.

use std::collections::BTreeMap;
use std::path::Path;

use idp_core::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::score::ResourceList;
use super::yaml;

/// What an environment adds to a workload when it is rendered: replicas, resource
/// overrides, extra variables, ingress, autoscaling, disruption budget and scheduling.
///
/// Every field is optional; an empty profile renders the Score file as written with one
/// replica. Load one with [`EnvironmentProfile::from_yaml`] / [`EnvironmentProfile::from_file`]:
///
/// ```yaml
/// name: prod                      # the environment (label idp.dev/environment)
/// namespace: shop
/// replicas: 3
/// containers:
///   app:
///     resources:
///       requests: {cpu: 500m, memory: 512Mi}
///       limits: {memory: 1Gi, nvidia.com/gpu: "1"}
/// variables: {LOG_LEVEL: info}    # added to every container
/// env: {REGION: eu-west-1}        # served by resources of type `environment`
/// ingress:
///   hosts: [cart.example.com]
///   className: nginx
///   tlsSecret: cart-tls
/// autoscaling: {minReplicas: 3, maxReplicas: 10, targetCPUUtilizationPercentage: 70}
/// podDisruptionBudget: {minAvailable: 2}
/// nodeSelector: {kubernetes.io/arch: amd64}
/// tolerations: [{key: gpu, operator: Exists, effect: NoSchedule}]
/// labels: {cost-center: cc-42}
/// annotations: {example.com/on-call: team-a}
/// ```
///
/// ```
/// use idp_deploy::workload::EnvironmentProfile;
/// let p = EnvironmentProfile::from_yaml("name: prod\nreplicas: 3\ningress: {hosts: [a.example.com]}\n", None)?;
/// assert_eq!(p.replicas, Some(3));
/// assert_eq!(p.ingress.unwrap().hosts, ["a.example.com"]);
/// # Ok::<(), idp_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentProfile {
    /// The environment's name, put in the `idp.dev/environment` label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The namespace to render into (a [`RenderContext`](super::RenderContext) namespace
    /// wins; `default` when neither is set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Pod replicas (1 when not set). Ignored when `autoscaling` is set: the
    /// HorizontalPodAutoscaler owns the replica count and the Deployment leaves it unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u32>,
    /// Per-container overrides, by container name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub containers: BTreeMap<String, ContainerOverride>,
    /// Extra environment variables for every container; they win over the Score file's.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub variables: BTreeMap<String, String>,
    /// The values resources of type `environment` expose (`${resources.env.REGION}`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    /// An Ingress in front of the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<IngressProfile>,
    /// A HorizontalPodAutoscaler on CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<Autoscaling>,
    /// A PodDisruptionBudget.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pod_disruption_budget: Option<DisruptionBudget>,
    /// Node labels the pods must run on (GPU node pools, architectures).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub node_selector: BTreeMap<String, String>,
    /// Taints the pods tolerate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tolerations: Vec<Toleration>,
    /// Labels for every rendered object (ours — `app.kubernetes.io/*`, `idp.dev/*` — win).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Annotations for every rendered object.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// Overrides for one container.
///
/// ```
/// let o: idp_deploy::workload::ContainerOverride = serde_json::from_value(
///     serde_json::json!({"resources": {"limits": {"nvidia.com/gpu": "2"}}})).unwrap();
/// assert_eq!(o.resources.unwrap().limits["nvidia.com/gpu"], "2");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContainerOverride {
    /// Requests and limits merged over the Score file's, key by key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceOverride>,
    /// Replace the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
}

/// Requests and limits to merge over a container's.
///
/// ```
/// let r = idp_deploy::workload::ResourceOverride::default();
/// assert!(r.requests.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceOverride {
    /// Requests, by resource name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requests: ResourceList,
    /// Limits, by resource name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: ResourceList,
}

/// How to expose the Service through an Ingress.
///
/// ```
/// let i: idp_deploy::workload::IngressProfile = serde_json::from_value(
///     serde_json::json!({"hosts": ["a.example.com"], "tlsSecret": "a-tls"})).unwrap();
/// assert_eq!(i.path(), "/");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct IngressProfile {
    /// Host names; no Ingress is rendered when empty.
    #[serde(default)]
    pub hosts: Vec<String>,
    /// `spec.ingressClassName`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_name: Option<String>,
    /// A TLS Secret covering every host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_secret: Option<String>,
    /// The path prefix (`/` when not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The Service port name to route to (the first by name when not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<String>,
    /// Annotations for the Ingress only (controller settings).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl IngressProfile {
    /// The path prefix, `/` by default.
    ///
    /// ```
    /// assert_eq!(idp_deploy::workload::IngressProfile::default().path(), "/");
    /// ```
    pub fn path(&self) -> &str {
        self.path.as_deref().unwrap_or("/")
    }
}

/// A HorizontalPodAutoscaler on average CPU utilisation.
///
/// ```
/// let a: idp_deploy::workload::Autoscaling = serde_json::from_value(
///     serde_json::json!({"maxReplicas": 5})).unwrap();
/// assert_eq!(a.min_replicas(), 1);
/// assert_eq!(a.target_cpu(), 80);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Autoscaling {
    /// Fewest replicas (1 when not set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_replicas: Option<u32>,
    /// Most replicas.
    pub max_replicas: u32,
    /// Target average CPU utilisation in percent of requests (80 when not set).
    #[serde(
        default,
        rename = "targetCPUUtilizationPercentage",
        skip_serializing_if = "Option::is_none"
    )]
    pub target_cpu_utilization_percentage: Option<u32>,
}

impl Autoscaling {
    /// `minReplicas`, 1 by default.
    ///
    /// ```
    /// let a = idp_deploy::workload::Autoscaling { min_replicas: Some(2), max_replicas: 4, target_cpu_utilization_percentage: None };
    /// assert_eq!(a.min_replicas(), 2);
    /// ```
    pub fn min_replicas(&self) -> u32 {
        self.min_replicas.unwrap_or(1)
    }

    /// The CPU target in percent, 80 by default.
    ///
    /// ```
    /// let a = idp_deploy::workload::Autoscaling { min_replicas: None, max_replicas: 4, target_cpu_utilization_percentage: Some(60) };
    /// assert_eq!(a.target_cpu(), 60);
    /// ```
    pub fn target_cpu(&self) -> u32 {
        self.target_cpu_utilization_percentage.unwrap_or(80)
    }
}

/// A PodDisruptionBudget.
///
/// ```
/// let b: idp_deploy::workload::DisruptionBudget = serde_json::from_value(
///     serde_json::json!({"minAvailable": "50%"})).unwrap();
/// assert_eq!(b.min_available_value(), serde_json::json!("50%"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DisruptionBudget {
    /// A number of pods (`2`) or a percentage (`50%`).
    pub min_available: String,
}

impl DisruptionBudget {
    /// `minAvailable` as Kubernetes wants it: an integer, or a percentage string.
    ///
    /// ```
    /// let b = idp_deploy::workload::DisruptionBudget { min_available: "2".into() };
    /// assert_eq!(b.min_available_value(), serde_json::json!(2));
    /// ```
    pub fn min_available_value(&self) -> Value {
        self.min_available
            .parse::<u64>()
            .map_or_else(|_| Value::from(self.min_available.clone()), Value::from)
    }
}

/// A toleration, as in a pod spec.
///
/// ```
/// let t: idp_deploy::workload::Toleration = serde_json::from_value(
///     serde_json::json!({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"})).unwrap();
/// assert_eq!(t.operator.as_deref(), Some("Exists"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Toleration {
    /// The taint key (empty with `Exists` matches every taint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// `Equal` (default) or `Exists`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator: Option<String>,
    /// The taint value for `Equal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// `NoSchedule`, `PreferNoSchedule` or `NoExecute` (all when empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect: Option<String>,
    /// How long a `NoExecute` taint is tolerated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub toleration_seconds: Option<i64>,
}

impl EnvironmentProfile {
    /// Parse a profile (YAML or JSON); errors give `file:line:column` and the field.
    ///
    /// ```
    /// let err = idp_deploy::workload::EnvironmentProfile::from_yaml("replica: 3\n", Some("prod.yaml".as_ref())).unwrap_err();
    /// assert!(err.to_string().contains("prod.yaml:1"), "{err}");
    /// assert!(err.to_string().contains("replica"), "{err}");
    /// ```
    pub fn from_yaml(text: &str, file: Option<&Path>) -> Result<Self> {
        let profile: Self = yaml::parse(text, file, "environment profile")?;
        profile.validate(text, file)?;
        Ok(profile)
    }

    /// Read and parse a profile file.
    ///
    /// ```no_run
    /// let p = idp_deploy::workload::EnvironmentProfile::from_file("envs/prod.yaml")?;
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = yaml::read(path, "environment profile")?;
        Self::from_yaml(&text, Some(path))
    }

    fn validate(&self, text: &str, file: Option<&Path>) -> Result<()> {
        let place = file.map_or_else(|| "<input>".to_owned(), |f| f.display().to_string());
        let fail = |key: &str, problem: &str| {
            Error::invalid_input(format!(
                "{place}:{}: invalid environment profile: {problem}",
                yaml::line_of_key(text, key)
            ))
        };
        if let Some(a) = &self.autoscaling {
            if a.max_replicas == 0 || a.min_replicas() > a.max_replicas {
                return Err(fail(
                    "autoscaling",
                    "autoscaling: maxReplicas must be at least 1 and at least minReplicas",
                ));
            }
            if a.min_replicas == Some(0) {
                return Err(fail(
                    "minReplicas",
                    "autoscaling.minReplicas must be at least 1",
                ));
            }
        }
        if let Some(b) = &self.pod_disruption_budget {
            let m = &b.min_available;
            let ok = m.parse::<u64>().is_ok()
                || m.strip_suffix('%')
                    .and_then(|p| p.parse::<u8>().ok())
                    .is_some_and(|p| p <= 100);
            if !ok {
                return Err(fail(
                    "minAvailable",
                    &format!(
                        "podDisruptionBudget.minAvailable `{m}` must be a number of pods or a \
                         percentage such as `50%`"
                    ),
                ));
            }
        }
        if let Some(ingress) = &self.ingress
            && ingress.hosts.iter().any(String::is_empty)
        {
            return Err(fail(
                "hosts",
                "ingress.hosts: a host name must not be empty",
            ));
        }
        Ok(())
    }
}
