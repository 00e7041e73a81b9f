//! Cost attribution: what a set of manifests costs per month, per object, team and
//! environment.
//!
//! Start with [`estimate`]: it reads each workload's pod template, sums the containers'
//! requests (a container without a request for a resource falls back to its limit),
//! multiplies by the replicas, and prices CPU, memory, GPUs and persistent storage with a
//! [`PriceSheet`] over a month of 730 hours. Each object is attributed to the team in its
//! `idp.dev/owner` label (else its `team` label, else its pod template's) and to the
//! environment in its `idp.dev/environment` label.
//!
//! What counts as replicas:
//!
//! | kind | pods |
//! |---|---|
//! | Deployment, StatefulSet, ReplicaSet | `spec.replicas` (1 when unset; an HPA in the same set targeting it gives `minReplicas`) |
//! | DaemonSet | [`PriceSheet::daemonset_nodes`] |
//! | Job | `spec.parallelism` (1 when unset), running all month |
//! | CronJob | `spec.jobTemplate.spec.parallelism` (1 when unset), running all month |
//! | Pod | 1 |
//!
//! PersistentVolumeClaims are priced by `spec.resources.requests.storage`, and a
//! StatefulSet's `volumeClaimTemplates` once per replica. Jobs and CronJobs are priced as
//! if they ran all month: an upper bound.
//!
//! Quantities are parsed as Kubernetes does ([`parse_quantity`]): `250m`, `1.5`, `512Mi`,
//! `2Gi`, `1G`, `1e3`.
//!
//! ```
//! use idp_core::ManifestSet;
//! use idp_deploy::cost::{estimate, PriceSheet};
//!
//! let set = ManifestSet::parse(br#"
//! apiVersion: apps/v1
//! kind: Deployment
//! metadata: {name: cart, namespace: shop, labels: {idp.dev/owner: team-a, idp.dev/environment: prod}}
//! spec:
//!   replicas: 2
//!   template:
//!     spec:
//!       containers:
//!       - {name: app, image: cart, resources: {requests: {cpu: 500m, memory: 1Gi}}}
//! "#, None)?;
//! let prices = PriceSheet { cpu_hour: 0.04, memory_gib_hour: 0.005, ..PriceSheet::default() };
//! let report = estimate(&set, &prices)?;
//! // 2 pods × (0.5 CPU × 0.04 + 1 GiB × 0.005) × 730 h = 2 × 0.025 × 730 = 36.5
//! assert!((report.total - 36.5).abs() < 1e-9);
//! assert!((report.by_team["team-a"] - 36.5).abs() < 1e-9);
//! # Ok::<(), idp_core::Error>(())
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use idp_core::cluster::labels;
use idp_core::{Error, ManifestSet, Object, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Hours in the month the estimate covers (365 × 24 / 12).
///
/// ```
/// assert_eq!(idp_deploy::cost::HOURS_PER_MONTH, 730.0);
/// ```
pub const HOURS_PER_MONTH: f64 = 730.0;

/// The team an object with no owner label is attributed to.
///
/// ```
/// assert_eq!(idp_deploy::cost::UNATTRIBUTED, "unattributed");
/// ```
pub const UNATTRIBUTED: &str = "unattributed";

/// The environment of an object with no `idp.dev/environment` label.
///
/// ```
/// assert_eq!(idp_deploy::cost::NO_ENVIRONMENT, "none");
/// ```
pub const NO_ENVIRONMENT: &str = "none";

/// Prices, in one currency.
///
/// The defaults are **illustrative only** — round numbers near public on-demand cloud
/// list prices at the time of writing, not a quote: load your own with
/// [`PriceSheet::from_yaml`]:
///
/// ```yaml
/// currency: EUR
/// cpuHour: 0.03            # per vCPU-hour
/// memoryGibHour: 0.004     # per GiB-hour of memory
/// gpuHour:                 # per GPU-hour, by GPU type
///   default: 2.50
///   nvidia.com/gpu: 2.50   # by extended resource name
///   nvidia-a100: 3.20      # by node-selector value (see PriceSheet::gpu_price)
/// storageGbMonth: 0.08     # per GiB-month of persistent volume
/// daemonsetNodes: 12
/// ```
///
/// ```
/// let p = idp_deploy::cost::PriceSheet::from_yaml("cpuHour: 0.05\n", None)?;
/// assert_eq!(p.cpu_hour, 0.05);
/// assert_eq!(p.currency, "USD");
/// # Ok::<(), idp_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PriceSheet {
    /// The currency code, for display (`USD` by default).
    pub currency: String,
    /// Price of one CPU core for one hour (default 0.0316).
    pub cpu_hour: f64,
    /// Price of one GiB of memory for one hour (default 0.0042).
    pub memory_gib_hour: f64,
    /// Price of one GPU for one hour, by GPU type; `default` covers unknown types
    /// (default: `default: 2.50`).
    pub gpu_hour: BTreeMap<String, f64>,
    /// Price of one GiB of persistent storage for a month (default 0.10). Cloud disk
    /// price lists call this a "GB-month" and mean 2^30 bytes.
    pub storage_gb_month: f64,
    /// How many nodes a DaemonSet runs on (default 3).
    pub daemonset_nodes: u32,
}

impl Default for PriceSheet {
    fn default() -> Self {
        Self {
            currency: "USD".to_owned(),
            cpu_hour: 0.0316,
            memory_gib_hour: 0.0042,
            gpu_hour: BTreeMap::from([("default".to_owned(), 2.50)]),
            storage_gb_month: 0.10,
            daemonset_nodes: 3,
        }
    }
}

/// Node-selector labels whose value names a GPU model, tried in this order.
const GPU_PRODUCT_LABELS: &[&str] = &[
    "nvidia.com/gpu.product",
    "cloud.google.com/gke-accelerator",
    "karpenter.k8s.aws/instance-gpu-name",
    "accelerator",
];

impl PriceSheet {
    /// Parse a price sheet (YAML or JSON); unset fields keep their defaults.
    ///
    /// ```
    /// let err = idp_deploy::cost::PriceSheet::from_yaml("cpu_hour: 1\n", Some("prices.yaml".as_ref())).unwrap_err();
    /// assert!(err.to_string().contains("prices.yaml:1"), "{err}");
    /// assert!(err.to_string().contains("cpu_hour"), "{err}");
    /// ```
    pub fn from_yaml(text: &str, file: Option<&Path>) -> Result<Self> {
        let sheet: Self = crate::workload::parse_yaml(text, file, "price sheet")?;
        let place = file.map_or_else(|| "<input>".to_owned(), |f| f.display().to_string());
        let prices = [
            ("cpuHour", sheet.cpu_hour),
            ("memoryGibHour", sheet.memory_gib_hour),
            ("storageGbMonth", sheet.storage_gb_month),
        ]
        .into_iter()
        .chain(sheet.gpu_hour.iter().map(|(k, v)| (k.as_str(), *v)));
        for (field, price) in prices {
            if !price.is_finite() || price < 0.0 {
                return Err(Error::invalid_input(format!(
                    "{place}: invalid price sheet: {field}: a price must be a finite number \
                     of at least 0, found {price}"
                )));
            }
        }
        Ok(sheet)
    }

    /// Read a price sheet file.
    ///
    /// ```no_run
    /// let p = idp_deploy::cost::PriceSheet::from_file("prices.yaml")?;
    /// # Ok::<(), idp_core::Error>(())
    /// ```
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::from(e).context(format!("cannot read the price sheet {}", path.display()))
        })?;
        Self::from_yaml(&text, Some(path))
    }

    /// The hourly price of one GPU and the type it was priced as.
    ///
    /// The type is the first of: a node-selector value of a known GPU-model label
    /// (`nvidia.com/gpu.product`, `cloud.google.com/gke-accelerator`,
    /// `karpenter.k8s.aws/instance-gpu-name`, `accelerator`) that has a price; the
    /// resource name (`nvidia.com/gpu`) if it has a price; else `default` (0 when the
    /// sheet has no `default`).
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// let mut p = idp_deploy::cost::PriceSheet::default();
    /// p.gpu_hour.insert("nvidia-a100".into(), 3.2);
    /// let selector = BTreeMap::from([("cloud.google.com/gke-accelerator".to_owned(), "nvidia-a100".to_owned())]);
    /// assert_eq!(p.gpu_price("nvidia.com/gpu", &selector), (3.2, "nvidia-a100".to_owned()));
    /// assert_eq!(p.gpu_price("nvidia.com/gpu", &BTreeMap::new()), (2.5, "default".to_owned()));
    /// ```
    pub fn gpu_price(
        &self,
        resource: &str,
        node_selector: &BTreeMap<String, String>,
    ) -> (f64, String) {
        let by_model = GPU_PRODUCT_LABELS
            .iter()
            .filter_map(|label| node_selector.get(*label))
            .find_map(|model| self.gpu_hour.get(model).map(|p| (*p, model.clone())));
        by_model
            .or_else(|| {
                self.gpu_hour
                    .get(resource)
                    .map(|p| (*p, resource.to_owned()))
            })
            .unwrap_or_else(|| {
                (
                    self.gpu_hour.get("default").copied().unwrap_or(0.0),
                    "default".to_owned(),
                )
            })
    }
}

/// The estimated monthly cost of one object.
///
/// ```
/// # let set = idp_core::ManifestSet::parse(b"{apiVersion: v1, kind: PersistentVolumeClaim, metadata: {name: d}, spec: {resources: {requests: {storage: 10Gi}}}}", None).unwrap();
/// let report = idp_deploy::cost::estimate(&set, &idp_deploy::cost::PriceSheet::default()).unwrap();
/// let line = &report.lines[0];
/// assert_eq!(line.storage_gib, 10.0);
/// assert!((line.total - 1.0).abs() < 1e-9); // 10 GiB × 0.10
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostLine {
    /// The object's kind.
    pub kind: String,
    /// Its namespace, when it has one.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
    /// The team it is attributed to ([`UNATTRIBUTED`] when none).
    pub team: String,
    /// Its environment ([`NO_ENVIRONMENT`] when none).
    pub environment: String,
    /// Pods priced.
    pub replicas: f64,
    /// CPU cores per pod.
    pub cpu_cores: f64,
    /// GiB of memory per pod.
    pub memory_gib: f64,
    /// GPUs per pod.
    pub gpus: f64,
    /// The GPU type the GPUs were priced as, when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu_type: Option<String>,
    /// GiB of persistent storage in total (all replicas).
    pub storage_gib: f64,
    /// Monthly CPU cost.
    pub cpu_cost: f64,
    /// Monthly memory cost.
    pub memory_cost: f64,
    /// Monthly GPU cost.
    pub gpu_cost: f64,
    /// Monthly storage cost.
    pub storage_cost: f64,
    /// The sum of the four.
    pub total: f64,
}

/// The monthly cost of one team in one environment.
///
/// ```
/// let t = idp_deploy::cost::TeamEnvironmentCost { team: "a".into(), environment: "prod".into(), monthly: 1.0 };
/// assert_eq!(t.team, "a");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamEnvironmentCost {
    /// The team.
    pub team: String,
    /// The environment.
    pub environment: String,
    /// Its monthly cost.
    pub monthly: f64,
}

/// The estimate for a manifest set.
///
/// ```
/// let r = idp_deploy::cost::estimate(&idp_core::ManifestSet::new(), &Default::default()).unwrap();
/// assert_eq!(r.total, 0.0);
/// assert!(r.lines.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CostReport {
    /// The price sheet's currency.
    pub currency: String,
    /// The hours a month counts ([`HOURS_PER_MONTH`]).
    pub hours_per_month: f64,
    /// One line per object that costs something, in input order.
    pub lines: Vec<CostLine>,
    /// Monthly cost per team.
    pub by_team: BTreeMap<String, f64>,
    /// Monthly cost per environment.
    pub by_environment: BTreeMap<String, f64>,
    /// Monthly cost per team and environment, sorted by team then environment.
    pub by_team_environment: Vec<TeamEnvironmentCost>,
    /// Monthly cost of everything.
    pub total: f64,
}

/// Estimate the monthly cost of `set` with `prices` (see the [module docs](self) for
/// what is counted).
///
/// Objects that cost nothing (Services, ConfigMaps, …) get no line. A quantity that cannot
/// be parsed is an error naming the object and the field.
///
/// ```
/// let set = idp_core::ManifestSet::parse(br#"
/// apiVersion: apps/v1
/// kind: Deployment
/// metadata: {name: a}
/// spec:
///   template:
///     spec:
///       containers: [{name: c, image: i, resources: {requests: {cpu: lots}}}]
/// "#, None).unwrap();
/// let err = idp_deploy::cost::estimate(&set, &Default::default()).unwrap_err();
/// assert!(err.to_string().contains("containers[0].resources.requests.cpu"), "{err}");
/// ```
pub fn estimate(set: &ManifestSet, prices: &PriceSheet) -> Result<CostReport> {
    let _span = tracing::debug_span!("cost_estimate", objects = set.len()).entered();
    let hpa_min = hpa_min_replicas(set);
    let mut lines = Vec::new();
    for object in set {
        if let Some(line) = price_object(object, prices, &hpa_min).map_err(|e| {
            let at = object
                .source()
                .map_or_else(String::new, |s| format!(" ({s})"));
            e.context(format!(
                "{} {}{at}",
                object.kind(),
                object.namespace().map_or_else(
                    || object.name().to_owned(),
                    |ns| format!("{ns}/{}", object.name())
                )
            ))
        })? {
            lines.push(line);
        }
    }
    let mut by_team = BTreeMap::new();
    let mut by_environment = BTreeMap::new();
    let mut pairs: BTreeMap<(String, String), f64> = BTreeMap::new();
    let mut total = 0.0;
    for line in &lines {
        *by_team.entry(line.team.clone()).or_insert(0.0) += line.total;
        *by_environment
            .entry(line.environment.clone())
            .or_insert(0.0) += line.total;
        *pairs
            .entry((line.team.clone(), line.environment.clone()))
            .or_insert(0.0) += line.total;
        total += line.total;
    }
    Ok(CostReport {
        currency: prices.currency.clone(),
        hours_per_month: HOURS_PER_MONTH,
        lines,
        by_team,
        by_environment,
        by_team_environment: pairs
            .into_iter()
            .map(|((team, environment), monthly)| TeamEnvironmentCost {
                team,
                environment,
                monthly,
            })
            .collect(),
        total,
    })
}

/// `(namespace, kind, name)` of each HPA target → its `minReplicas`.
fn hpa_min_replicas(set: &ManifestSet) -> BTreeMap<(String, String, String), f64> {
    set.iter()
        .filter(|o| o.kind() == "HorizontalPodAutoscaler")
        .filter_map(|o| {
            let kind = o.pointer("/spec/scaleTargetRef/kind")?.as_str()?;
            let name = o.pointer("/spec/scaleTargetRef/name")?.as_str()?;
            let min = o
                .pointer("/spec/minReplicas")
                .and_then(Value::as_f64)
                .unwrap_or(1.0);
            Some((
                (
                    o.namespace().unwrap_or_default().to_owned(),
                    kind.to_owned(),
                    name.to_owned(),
                ),
                min,
            ))
        })
        .collect()
}

fn label_of(object: &Object, template: Option<&Value>, keys: &[&str]) -> Option<String> {
    let own = object.labels();
    let template_labels = template
        .and_then(|t| t.pointer("/metadata/labels"))
        .and_then(Value::as_object);
    keys.iter().find_map(|key| {
        own.get(*key).cloned().or_else(|| {
            template_labels
                .and_then(|l| l.get(*key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    })
}

fn count(value: Option<&Value>, default: f64) -> f64 {
    value.and_then(Value::as_f64).unwrap_or(default)
}

fn price_object(
    object: &Object,
    prices: &PriceSheet,
    hpa_min: &BTreeMap<(String, String, String), f64>,
) -> Result<Option<CostLine>> {
    let (template_pointer, replicas) = match object.kind() {
        "Deployment" | "StatefulSet" | "ReplicaSet" => {
            let key = (
                object.namespace().unwrap_or_default().to_owned(),
                object.kind().to_owned(),
                object.name().to_owned(),
            );
            let replicas = match object.pointer("/spec/replicas") {
                Some(v) => count(Some(v), 1.0),
                None => hpa_min.get(&key).copied().unwrap_or(1.0),
            };
            ("/spec/template", replicas)
        }
        "DaemonSet" => ("/spec/template", f64::from(prices.daemonset_nodes)),
        "Job" => (
            "/spec/template",
            count(object.pointer("/spec/parallelism"), 1.0),
        ),
        "CronJob" => (
            "/spec/jobTemplate/spec/template",
            count(object.pointer("/spec/jobTemplate/spec/parallelism"), 1.0),
        ),
        "Pod" => ("", 1.0),
        "PersistentVolumeClaim" => {
            let storage = match object.pointer("/spec/resources/requests/storage") {
                Some(q) => quantity_field(q, "spec.resources.requests.storage")?,
                None => 0.0,
            } / GIB;
            let mut line = empty_line(object, None);
            line.replicas = 1.0;
            line.storage_gib = storage;
            line.storage_cost = storage * prices.storage_gb_month;
            line.total = line.storage_cost;
            return Ok(Some(line));
        }
        _ => return Ok(None),
    };
    let template = if template_pointer.is_empty() {
        Some(object.to_value())
    } else {
        object.pointer(template_pointer).cloned()
    };
    let Some(template) = template else {
        return Ok(None);
    };
    let spec_field = if template_pointer.is_empty() {
        "spec".to_owned()
    } else {
        format!(
            "{}.spec",
            template_pointer.trim_start_matches('/').replace('/', ".")
        )
    };
    let pod = pod_resources(template.get("spec").unwrap_or(&Value::Null), &spec_field)?;
    let node_selector: BTreeMap<String, String> = template
        .pointer("/spec/nodeSelector")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();

    let mut line = empty_line(object, Some(&template));
    line.replicas = replicas;
    line.cpu_cores = pod.cpu;
    line.memory_gib = pod.memory / GIB;
    line.cpu_cost = replicas * pod.cpu * prices.cpu_hour * HOURS_PER_MONTH;
    line.memory_cost = replicas * line.memory_gib * prices.memory_gib_hour * HOURS_PER_MONTH;
    for (resource, gpus) in &pod.gpus {
        let (price, kind) = prices.gpu_price(resource, &node_selector);
        line.gpus += gpus;
        line.gpu_cost += replicas * gpus * price * HOURS_PER_MONTH;
        line.gpu_type = Some(kind);
    }
    if object.kind() == "StatefulSet"
        && let Some(claims) = object
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
    {
        for (i, claim) in claims.iter().enumerate() {
            if let Some(q) = claim.pointer("/spec/resources/requests/storage") {
                let field =
                    format!("spec.volumeClaimTemplates[{i}].spec.resources.requests.storage");
                line.storage_gib += replicas * quantity_field(q, &field)? / GIB;
            }
        }
        line.storage_cost = line.storage_gib * prices.storage_gb_month;
    }
    line.total = line.cpu_cost + line.memory_cost + line.gpu_cost + line.storage_cost;
    Ok(Some(line))
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

fn empty_line(object: &Object, template: Option<&Value>) -> CostLine {
    CostLine {
        kind: object.kind().to_owned(),
        namespace: object.namespace().map(str::to_owned),
        name: object.name().to_owned(),
        team: label_of(object, template, &[labels::OWNER, "team"])
            .unwrap_or_else(|| UNATTRIBUTED.to_owned()),
        environment: label_of(object, template, &[labels::ENVIRONMENT])
            .unwrap_or_else(|| NO_ENVIRONMENT.to_owned()),
        replicas: 0.0,
        cpu_cores: 0.0,
        memory_gib: 0.0,
        gpus: 0.0,
        gpu_type: None,
        storage_gib: 0.0,
        cpu_cost: 0.0,
        memory_cost: 0.0,
        gpu_cost: 0.0,
        storage_cost: 0.0,
        total: 0.0,
    }
}

/// What one pod asks for: CPU cores, memory bytes, GPUs by resource name.
#[derive(Default)]
struct PodResources {
    cpu: f64,
    memory: f64,
    gpus: BTreeMap<String, f64>,
}

/// Whether an extended resource name is a GPU (`nvidia.com/gpu`, `amd.com/gpu`,
/// `gpu.intel.com/i915`).
fn is_gpu(resource: &str) -> bool {
    resource.contains('/') && resource.to_ascii_lowercase().contains("gpu")
}

/// One container's effective amounts: request, else limit, per resource.
fn container_resources(container: &Value, field: &str) -> Result<PodResources> {
    let mut out = PodResources::default();
    let requests = container
        .pointer("/resources/requests")
        .and_then(Value::as_object);
    let limits = container
        .pointer("/resources/limits")
        .and_then(Value::as_object);
    let mut names: Vec<&String> = requests
        .into_iter()
        .chain(limits)
        .flat_map(|m| m.keys())
        .collect();
    names.sort();
    names.dedup();
    for name in names {
        let (value, which) = match requests.and_then(|r| r.get(name)) {
            Some(v) => (v, "requests"),
            None => match limits.and_then(|l| l.get(name)) {
                Some(v) => (v, "limits"),
                None => continue,
            },
        };
        let amount = quantity_field(value, &format!("{field}.resources.{which}.{name}"))?;
        match name.as_str() {
            "cpu" => out.cpu += amount,
            "memory" => out.memory += amount,
            gpu if is_gpu(gpu) => *out.gpus.entry(gpu.to_owned()).or_insert(0.0) += amount,
            _ => {}
        }
    }
    Ok(out)
}

/// A pod's effective amounts, as the scheduler counts them: the sum over containers,
/// or the largest init container when that is more.
fn pod_resources(spec: &Value, field: &str) -> Result<PodResources> {
    let mut sum = PodResources::default();
    if let Some(containers) = spec.get("containers").and_then(Value::as_array) {
        for (i, c) in containers.iter().enumerate() {
            let r = container_resources(c, &format!("{field}.containers[{i}]"))?;
            sum.cpu += r.cpu;
            sum.memory += r.memory;
            for (k, v) in r.gpus {
                *sum.gpus.entry(k).or_insert(0.0) += v;
            }
        }
    }
    if let Some(inits) = spec.get("initContainers").and_then(Value::as_array) {
        for (i, c) in inits.iter().enumerate() {
            let r = container_resources(c, &format!("{field}.initContainers[{i}]"))?;
            sum.cpu = sum.cpu.max(r.cpu);
            sum.memory = sum.memory.max(r.memory);
            for (k, v) in r.gpus {
                let e = sum.gpus.entry(k).or_insert(0.0);
                *e = e.max(v);
            }
        }
    }
    Ok(sum)
}

fn quantity_field(value: &Value, field: &str) -> Result<f64> {
    let parsed = match value {
        Value::String(s) => parse_quantity(s),
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| Error::invalid_input(format!("`{n}` is not a number"))),
        other => Err(Error::invalid_input(format!(
            "a quantity must be a string or a number, found `{other}`"
        ))),
    };
    parsed.map_err(|e| e.context(field))
}

/// Parse a Kubernetes resource quantity into a plain number (cores, bytes, GPUs).
///
/// The grammar is Kubernetes': an optionally signed decimal number followed by a binary
/// suffix (`Ki`, `Mi`, `Gi`, `Ti`, `Pi`, `Ei`), a decimal suffix (`n`, `u`, `m`, `k`,
/// `M`, `G`, `T`, `P`, `E`) or a decimal exponent (`e3`, `E-2`); surrounding whitespace is
/// not allowed.
///
/// ```
/// use idp_deploy::cost::parse_quantity;
/// assert_eq!(parse_quantity("250m")?, 0.25);
/// assert_eq!(parse_quantity("1.5")?, 1.5);
/// assert_eq!(parse_quantity("512Mi")?, 512.0 * 1024.0 * 1024.0);
/// assert_eq!(parse_quantity("1G")?, 1e9);
/// assert_eq!(parse_quantity("1e3")?, 1000.0);
/// assert_eq!(parse_quantity("2E")?, 2e18);
/// assert!(parse_quantity("1.5.5").is_err());
/// assert!(parse_quantity("5 Gi").is_err());
/// # Ok::<(), idp_core::Error>(())
/// ```
pub fn parse_quantity(text: &str) -> Result<f64> {
    let bad = |why: &str| {
        Error::invalid_input(format!(
            "`{text}` is not a Kubernetes quantity ({why}); write e.g. `250m`, `1.5`, `512Mi`, \
             `2Gi` or `1e3`"
        ))
    };
    let bytes = text.as_bytes();
    let mut end = 0;
    if matches!(bytes.first(), Some(b'+' | b'-')) {
        end = 1;
    }
    let mut seen_dot = false;
    let mut digits = 0;
    while let Some(&b) = bytes.get(end) {
        if b.is_ascii_digit() {
            digits += 1;
        } else if b == b'.' && !seen_dot {
            seen_dot = true;
        } else {
            break;
        }
        end += 1;
    }
    if digits == 0 {
        return Err(bad("no digits"));
    }
    let number: f64 = text[..end]
        .parse()
        .map_err(|_| bad("the number is malformed"))?;
    let suffix = &text[end..];
    let multiplier = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "Ei" => 1024f64.powi(6),
        "n" => 1e-9,
        "u" => 1e-6,
        "m" => 1e-3,
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "E" => 1e18,
        exp if exp.starts_with(['e', 'E']) => {
            let power = &exp[1..];
            let unsigned = power.strip_prefix(['+', '-']).unwrap_or(power);
            if unsigned.is_empty() || !unsigned.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("unknown suffix"));
            }
            let power: i32 = power
                .parse()
                .map_err(|_| bad("the exponent is too large"))?;
            10f64.powi(power)
        }
        _ => return Err(bad("unknown suffix")),
    };
    let value = number * multiplier;
    if value.is_finite() {
        Ok(value)
    } else {
        Err(bad("the value is too large"))
    }
}
