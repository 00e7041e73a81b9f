//! The server's configuration file (`--config idp.yaml`); every field is optional and
//! command-line flags win over the file. `idp-server config-schema` prints its JSON Schema.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The address the server listens on when nothing else says.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7007";

/// The whole `idp.yaml`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// `ADDR:PORT` to listen on (default `127.0.0.1:7007`; port 0 picks a free port).
    pub listen: Option<String>,
    /// The data directory (default `./.idp`): the local catalog repository lives there.
    pub data_dir: Option<PathBuf>,
    /// Where catalog entities come from.
    #[serde(default)]
    pub catalog: CatalogConfig,
    /// A kubeconfig file; without one (and without `$KUBECONFIG` or `~/.kube/config`)
    /// the server runs an in-process simulated cluster.
    pub kubeconfig: Option<PathBuf>,
    /// Policy settings for `POST /api/policy/check`.
    #[serde(default)]
    pub policy: PolicyConfig,
    /// `text` (default) or `json`.
    pub log_format: Option<LogFormat>,
    /// Preview environments: webhook secrets, planning and the reaper.
    #[serde(default)]
    pub previews: PreviewsConfig,
    /// Deployments: the GitOps repository, the environments, the reconcilers.
    #[serde(default)]
    pub deliver: DeliverConfig,
    /// An HTTPS listener beside the plain one, serving the same API — what the Kubernetes
    /// API server needs to call the admission webhooks.
    pub tls: Option<TlsConfig>,
}

/// The HTTPS listener.
///
/// ```
/// let c: idp_examples::server::config::TlsConfig = serde_saphyr::from_str(
///     "certFile: /etc/idp/tls/tls.crt\nkeyFile: /etc/idp/tls/tls.key\n",
/// ).unwrap();
/// assert_eq!(c.listen, "0.0.0.0:8443");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TlsConfig {
    /// `ADDR:PORT` for HTTPS (default `0.0.0.0:8443`; port 0 picks a free port).
    #[serde(default = "default_tls_listen")]
    pub listen: String,
    /// The PEM certificate chain (server certificate first), e.g. a cert-manager
    /// Certificate's `tls.crt`.
    pub cert_file: PathBuf,
    /// The PEM private key of that certificate (`tls.key`).
    pub key_file: PathBuf,
}

fn default_tls_listen() -> String {
    "0.0.0.0:8443".into()
}

/// Catalog sources.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CatalogConfig {
    /// A Git remote (`https://`, `ssh://` or `file://`) holding `catalog-info.yaml` files.
    /// Without one, the server seeds a local repository with a demo organisation.
    pub remote: Option<String>,
    /// The branch to read.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// Which files to read (a glob over repository paths).
    #[serde(default = "default_glob")]
    pub glob: String,
    /// Seconds between refreshes.
    #[serde(default = "default_refresh")]
    pub refresh_seconds: u64,
}

impl Default for CatalogConfig {
    fn default() -> Self {
        Self {
            remote: None,
            branch: default_branch(),
            glob: default_glob(),
            refresh_seconds: default_refresh(),
        }
    }
}

fn default_branch() -> String {
    "main".into()
}

fn default_glob() -> String {
    "**/catalog-info.yaml".into()
}

fn default_refresh() -> u64 {
    30
}

/// Which policies `POST /api/policy/check` applies by default (query parameters can
/// override per request).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyConfig {
    /// Pod Security Standards level: `baseline` (default), `restricted` or `none`.
    #[serde(default = "default_pss")]
    pub pss: PssSetting,
    /// Also apply idp's guardrails (image tags, probes, resources...).
    #[serde(default = "default_true")]
    pub guardrails: bool,
    /// Kyverno files (`ClusterPolicy`, `Policy`, `PolicyException`, and the `ConfigMap`s
    /// their `context` reads), read at start: their validate rules join
    /// `POST /api/policy/check`, the validating webhook and the check of every
    /// deployment before it is committed; their mutate rules join the mutating webhook and
    /// the mutations of deployments (after idp's default mutations). A file that cannot be
    /// loaded stops the server with an error naming it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kyverno: Vec<PathBuf>,
    /// Gatekeeper mutator files (`Assign`, `AssignMetadata`, `ModifySet`, `AssignImage`,
    /// and `Namespace`s for `namespaceSelector`), read at start and applied by the
    /// mutating webhook and to deployments, after idp's default mutations and before
    /// Kyverno's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gatekeeper_mutators: Vec<PathBuf>,
    /// Gatekeeper files (`ConstraintTemplate`s with Rego or CEL code, their constraints,
    /// `ExpansionTemplate`s with the mutators that shape their mock Pods, and
    /// `Namespace`s for `namespaceSelector`), read at start as one set, so templates and
    /// constraints may sit in different files. The constraints join
    /// `POST /api/policy/check`, the validating webhook and the check of every deployment
    /// before it is committed. A file that cannot be loaded stops the server with an
    /// error naming it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gatekeeper: Vec<PathBuf>,
    /// Rego modules in conftest's conventions (`deny`/`violation` rules deny, `warn` rules
    /// warn, `input` is the object), each a policy named after its file, checked where
    /// the Gatekeeper constraints are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rego: Vec<PathBuf>,
    /// `ValidatingAdmissionPolicy` and `ValidatingAdmissionPolicyBinding` files (with the
    /// param objects the bindings name) and Kyverno `ValidatingPolicy` files (CEL, no
    /// binding needed), read at start as one set and evaluated with
    /// Kubernetes' CEL cost limits, checked where the Gatekeeper constraints are.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admission_policies: Vec<PathBuf>,
    /// Replicate objects of the cluster into the `data.inventory` of the
    /// `policy.gatekeeper` templates, as Gatekeeper's `Config` (`spec.sync.syncOnly`)
    /// does, so that referential constraints (a unique Ingress host) see what the
    /// cluster holds at admission and in the checks before commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gatekeeper_sync: Option<GatekeeperSyncConfig>,
    /// Rebuild the Kyverno set every `intervalSeconds`: the `policy.kyverno` files read
    /// again and, with `fromCluster`, the Kyverno `ClusterPolicy`, `Policy` and
    /// `PolicyException` objects kept in the cluster added, as Kyverno applies what
    /// users `kubectl apply`. The rebuilt set takes the place of the old one wherever it
    /// runs: `POST /api/policy/check`, both webhooks, the deployments and the audit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kyverno_sync: Option<KyvernoSyncConfig>,
    /// Audit what already runs in the cluster on a schedule, with the policies above
    /// (as Kyverno's background scans: validate rules only, nothing mutated), and keep
    /// `wgpolicyk8s.io` PolicyReports in the cluster up to date with the findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditConfig>,
}

/// What `policy.gatekeeperSync` replicates, and how often.
///
/// ```
/// let c: idp_examples::server::config::GatekeeperSyncConfig = serde_saphyr::from_str(
///     "kinds: [Ingress.networking.k8s.io, Namespace]\n",
/// ).unwrap();
/// assert_eq!(c.interval_seconds, 60);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GatekeeperSyncConfig {
    /// The kinds to replicate, as `Kind.group` (`Ingress.networking.k8s.io`,
    /// `Namespace`), as Gatekeeper's `syncOnly` lists them; default the
    /// `spec.sync.syncOnly` of a Gatekeeper `Config` among the `policy.gatekeeper` files
    /// (such a Config starts the sync by itself, every 60 seconds).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// Seconds between two reads of the cluster, the first at start (default 60).
    #[serde(default = "default_sync_interval")]
    pub interval_seconds: u64,
    /// Also read the Gatekeeper policies kept in the cluster at each sync, as
    /// Gatekeeper does: every `ConstraintTemplate`, the constraints of their kinds and
    /// the `Config` named `config` (default false). They apply with the
    /// `policy.gatekeeper` files, and the audit (`policy.audit`) writes its findings
    /// into those constraints' `status` (`totalViolations`, `violations`,
    /// `auditTimestamp`), as Gatekeeper's audit does. The mutators kept in the cluster
    /// (`Assign`, `AssignMetadata`, `ModifySet`, `AssignImage`) join those of
    /// `policy.gatekeeperMutators` at the mutating webhook and in the deployments.
    #[serde(default)]
    pub from_cluster: bool,
}

fn default_sync_interval() -> u64 {
    60
}

impl Default for GatekeeperSyncConfig {
    fn default() -> Self {
        Self {
            kinds: Vec::new(),
            interval_seconds: default_sync_interval(),
            from_cluster: false,
        }
    }
}

/// What `policy.kyvernoSync` reads, and how often.
///
/// ```
/// let c: idp_examples::server::config::KyvernoSyncConfig = serde_saphyr::from_str(
///     "fromCluster: true\n",
/// ).unwrap();
/// assert_eq!(c.interval_seconds, 60);
/// assert!(c.from_cluster);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct KyvernoSyncConfig {
    /// Seconds between two rebuilds, the first at start (default 60).
    #[serde(default = "default_sync_interval")]
    pub interval_seconds: u64,
    /// Also read the Kyverno policies and exceptions kept in the cluster at each rebuild
    /// (default false: only the files are read again): `ClusterPolicy`, `Policy` and
    /// `PolicyException` (`kyverno.io`), and the CEL `ValidatingPolicy`,
    /// `NamespacedValidatingPolicy` and `PolicyException` (`policies.kyverno.io`), as the
    /// set `kyverno-validating-policies`. One that does not load is logged and left out
    /// (`GET /api/policy/sync` names it); the others apply. A cluster that cannot be read
    /// keeps the sets as they were.
    #[serde(default)]
    pub from_cluster: bool,
}

impl Default for KyvernoSyncConfig {
    fn default() -> Self {
        Self {
            interval_seconds: default_sync_interval(),
            from_cluster: false,
        }
    }
}

/// The periodic audit (`policy.audit`).
///
/// ```
/// let c: idp_examples::server::config::AuditConfig = serde_saphyr::from_str(
///     "excludeNamespaces: [kube-system]\n",
/// ).unwrap();
/// assert_eq!(c.interval_seconds, 3600);
/// assert_eq!(c.report_namespace, "default");
/// assert_eq!(c.report_layout, idp_policy::policy_report::ReportLayout::PerNamespace);
/// assert!(!c.skip_controlled);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditConfig {
    /// Seconds between audits, the first right after the start (default 3600, the
    /// period of Kyverno's background scans).
    #[serde(default = "default_audit_interval")]
    pub interval_seconds: u64,
    /// The kinds to read, as `Kind.group` (`Deployment.apps`, `Pod`); default every
    /// kind the cluster lists but Events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// Namespaces left out, their `Namespace` objects included (a `*` matches any run
    /// of characters: `kube-*`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_namespaces: Vec<String>,
    /// Write the findings as PolicyReports into the cluster (default true; the cluster
    /// needs the wgpolicyk8s.io CRDs, which Kyverno and Policy Reporter install).
    #[serde(default = "default_true")]
    pub write_reports: bool,
    /// How the reports are laid out: `perNamespace` (the default: one PolicyReport per
    /// namespace, a ClusterPolicyReport) or `perResource` (one per object, as Kyverno:
    /// named by its UID and owned by it, so that Kubernetes deletes it with the object).
    #[serde(default)]
    pub report_layout: idp_policy::policy_report::ReportLayout,
    /// Leave out the objects made by a pod controller that is audited too (Pods of
    /// ReplicaSets, ReplicaSets of Deployments, Jobs of CronJobs...): the controller's
    /// pod template is checked instead, so a finding is reported once, on the object to
    /// change (default false).
    #[serde(default)]
    pub skip_controlled: bool,
    /// Also scan with the Kyverno `ClusterPolicy`, `Policy` and `PolicyException`
    /// objects kept in the cluster, read again for each audit, as Kyverno's background
    /// scans do (default false; a policy that does not load is logged and left out).
    /// For them to apply at admission too, use `policy.kyvernoSync.fromCluster`, whose
    /// set the audit then runs (without reading them a second time).
    #[serde(default)]
    pub kyverno_from_cluster: bool,
    /// Also scan with the ValidatingAdmissionPolicies and bindings kept in the cluster
    /// (with the param objects they name), read again for each audit: the API server
    /// applies them only to what is admitted after them; and with Kyverno's
    /// ValidatingPolicies there (those with background scans enabled). Default false; a
    /// policy that does not load is logged and left out.
    #[serde(default)]
    pub admission_policies_from_cluster: bool,
    /// The namespace of the record of the reports written (default `default`): reports
    /// an earlier audit wrote and this one does not are deleted, and only those.
    #[serde(default = "default_report_namespace")]
    pub report_namespace: String,
}

fn default_audit_interval() -> u64 {
    3600
}

fn default_report_namespace() -> String {
    "default".to_owned()
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            pss: default_pss(),
            guardrails: true,
            kyverno: Vec::new(),
            gatekeeper_mutators: Vec::new(),
            gatekeeper: Vec::new(),
            rego: Vec::new(),
            admission_policies: Vec::new(),
            gatekeeper_sync: None,
            kyverno_sync: None,
            audit: None,
        }
    }
}

fn default_pss() -> PssSetting {
    PssSetting::Baseline
}

fn default_true() -> bool {
    true
}

/// Preview environments per pull request (`POST /webhooks/github`, `/webhooks/gitlab`).
///
/// ```
/// let c = idp_examples::server::config::PreviewsConfig::default();
/// assert_eq!(c.github_secret_env, "IDP_GITHUB_WEBHOOK_SECRET");
/// assert_eq!(c.reap_seconds, 300);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PreviewsConfig {
    /// The environment variable holding the GitHub webhook secret (`X-Hub-Signature-256`).
    /// When neither variable is set, a random secret is generated once into
    /// `<data>/webhook-secret` and used for both forges.
    #[serde(default = "default_github_env")]
    pub github_secret_env: String,
    /// The environment variable holding the GitLab webhook token (`X-Gitlab-Token`).
    #[serde(default = "default_gitlab_env")]
    pub gitlab_token_env: String,
    /// Which pull requests get previews: idp-preview's `PreviewConfig` (`repos`,
    /// `requiredLabels`, `headBranches`, `baseBranches`, `skipDrafts`, `allowForks`,
    /// `maxPreviewsPerRepo`, `prefix`). Default: every non-draft pull request.
    #[serde(default)]
    pub plan: Option<serde_json::Value>,
    /// The namespace each preview gets: idp-preview's `NamespaceConfig` (`quota`,
    /// `limits`, `networkPolicy`, `ingress`, `destroyTimeout`...). Default: its defaults.
    #[serde(default)]
    pub namespace: Option<serde_json::Value>,
    /// A folder of Kubernetes manifests deployed into every preview. Default: none (the
    /// preview is its namespace).
    pub manifests: Option<PathBuf>,
    /// How long a preview lives without activity, in hours.
    #[serde(default = "default_ttl_hours")]
    pub ttl_hours: u64,
    /// Seconds between reaper sweeps (expired previews, previews of closed pull requests).
    #[serde(default = "default_reap_seconds")]
    pub reap_seconds: u64,
}

impl Default for PreviewsConfig {
    fn default() -> Self {
        Self {
            github_secret_env: default_github_env(),
            gitlab_token_env: default_gitlab_env(),
            plan: None,
            namespace: None,
            manifests: None,
            ttl_hours: default_ttl_hours(),
            reap_seconds: default_reap_seconds(),
        }
    }
}

fn default_github_env() -> String {
    "IDP_GITHUB_WEBHOOK_SECRET".into()
}

fn default_gitlab_env() -> String {
    "IDP_GITLAB_WEBHOOK_TOKEN".into()
}

fn default_ttl_hours() -> u64 {
    72
}

fn default_reap_seconds() -> u64 {
    300
}

/// A Pod Security Standards level, or none.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum PssSetting {
    /// No Pod Security Standards check.
    None,
    /// Blocks known privilege escalations.
    Baseline,
    /// Baseline plus hardening.
    Restricted,
}

/// Log line format.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Config {
    /// Read and check a config file; errors name the file and the field.
    pub fn load(path: &Path) -> idp_core::Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            idp_core::Error::invalid_input(format!("cannot read config file {}", path.display()))
                .with_source(e)
        })?;
        let config: Self = serde_saphyr::from_str(&text).map_err(|e| {
            idp_core::Error::invalid_input(format!(
                "{}: {e}; run `idp-server config-schema` for the accepted fields",
                path.display()
            ))
        })?;
        if let Some(listen) = &config.listen {
            parse_listen(listen)?;
        }
        Ok(config)
    }

    /// The JSON Schema of the file, pretty-printed.
    pub fn schema_json() -> String {
        let schema = schemars::schema_for!(Config);
        serde_json::to_string_pretty(&schema).unwrap_or_default()
    }
}

/// Parse `ADDR:PORT`.
pub fn parse_listen(text: &str) -> idp_core::Result<SocketAddr> {
    text.parse().map_err(|e| {
        idp_core::Error::invalid_input(format!(
            "listen address {text:?} is not ADDR:PORT (for example 127.0.0.1:7007, or port 0 for a free port)"
        ))
        .with_source(e)
    })
}

/// Deployments (`/api/deployments`, promotions, DORA, cost) and the GitOps reconcilers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeliverConfig {
    /// A GitOps Git remote (`https://`, `ssh://` or `file://`) to commit releases to and
    /// reconcile from. Without one, the server keeps a local repository
    /// (`<data>/gitops.git`).
    pub gitops_remote: Option<String>,
    /// The GitOps branch.
    #[serde(default = "default_branch")]
    pub branch: String,
    /// The environments, in promotion order (default dev, staging, prod).
    #[serde(default = "default_environments")]
    pub environments: Vec<EnvironmentConfig>,
    /// Seconds between two reconciliations of an environment (each deployment, rollback
    /// and promotion also triggers one at once).
    #[serde(default = "default_reconcile")]
    pub reconcile_seconds: u64,
    /// Pod Security Standards level deployments must meet (default `restricted`).
    #[serde(default = "default_deliver_pss")]
    pub pss: PssSetting,
    /// Also apply idp's guardrails to deployments.
    #[serde(default = "default_true")]
    pub guardrails: bool,
    /// The namespace of the leader-election Lease: only the replica holding it applies.
    #[serde(default = "default_lease_namespace")]
    pub lease_namespace: String,
    /// The Lease's name.
    #[serde(default = "default_lease_name")]
    pub lease_name: String,
    /// A price sheet (YAML, see idp-deploy's `cost::PriceSheet`); default prices without.
    pub prices: Option<PathBuf>,
}

impl Default for DeliverConfig {
    fn default() -> Self {
        Self {
            gitops_remote: None,
            branch: default_branch(),
            environments: default_environments(),
            reconcile_seconds: default_reconcile(),
            pss: default_deliver_pss(),
            guardrails: true,
            lease_namespace: default_lease_namespace(),
            lease_name: default_lease_name(),
            prices: None,
        }
    }
}

/// One deployment environment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvironmentConfig {
    /// Its name (a DNS label: `dev`, `staging`, `prod`).
    pub name: String,
    /// The namespace its objects land in (default: the name).
    pub namespace: Option<String>,
    /// An environment profile for Score workloads (YAML: replicas, resources, ingress...).
    pub profile: Option<PathBuf>,
}

impl EnvironmentConfig {
    /// An environment whose namespace is its name.
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            namespace: None,
            profile: None,
        }
    }

    /// The namespace its objects land in.
    pub fn namespace(&self) -> &str {
        self.namespace.as_deref().unwrap_or(&self.name)
    }
}

fn default_environments() -> Vec<EnvironmentConfig> {
    ["dev", "staging", "prod"]
        .into_iter()
        .map(EnvironmentConfig::named)
        .collect()
}

fn default_reconcile() -> u64 {
    30
}

fn default_deliver_pss() -> PssSetting {
    PssSetting::Restricted
}

fn default_lease_namespace() -> String {
    "idp-system".into()
}

fn default_lease_name() -> String {
    "idp-reconciler".into()
}
