//! `idpctl policy ...`: check manifests against Pod Security Standards, guardrails and
//! policy-set files, and apply the standard mutations. Thin layers over idp-policy.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use idp_core::ports::Mutation;
use idp_core::{ManifestSet, Object, Policy, PolicyContext};
use idp_policy::cel::CelPolicy;
use idp_policy::config::PolicySetConfig;
use idp_policy::gatekeeper::config::GatekeeperConfig;
use idp_policy::gatekeeper::mutation::GatekeeperMutators;
use idp_policy::kyverno::{KyvernoPolicy, ValidateRules};
use idp_policy::mutate::{DefaultResources, Mutations, OtelInjection, StandardLabels};
use idp_policy::policy_report::{PolicyReports, ReportLayout};
use idp_policy::pss::{PodSecurity, PssVersion};
use idp_policy::rego::RegoPolicy;
use idp_policy::report::CheckRow;
use idp_policy::{PolicyOptions, PolicySet};

use crate::files::collect;
use crate::output::{Color, Format, Out};
use crate::{ExitCode, Failure};

/// A Pod Security Standards level for `--pss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PssLevel {
    /// Blocks known privilege escalations (host namespaces, privileged, hostPath...).
    Baseline,
    /// Baseline plus hardening (non-root, no capabilities, seccomp, read-only...).
    Restricted,
}

/// What `policy check` evaluates.
#[derive(Debug)]
pub struct CheckOptions<'a> {
    /// `--pss`.
    pub pss: Option<PssLevel>,
    /// `--pss-version`.
    pub pss_version: Option<&'a str>,
    /// `--guardrails`.
    pub guardrails: bool,
    /// `--policy FILE`.
    pub policies: &'a [PathBuf],
    /// `--policy-report`.
    pub policy_report: bool,
    /// `--report-layout`.
    pub report_layout: ReportLayout,
}

/// `--report-layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LayoutArg {
    /// One PolicyReport per namespace, a ClusterPolicyReport for cluster-scoped objects.
    Namespace,
    /// One report per object, as Kyverno: named by its UID, owned by it.
    Resource,
}

impl CheckOptions<'_> {
    /// Whether the flags name no policy at all (no --pss, --pss-version, --guardrails
    /// or --policy): `policy check` then checks PSS baseline.
    pub fn names_no_policy(&self) -> bool {
        self.pss.is_none()
            && self.pss_version.is_none()
            && !self.guardrails
            && self.policies.is_empty()
    }

    /// The report collector `--policy-report` (and `--write-reports`) fill.
    pub fn reports(&self) -> PolicyReports {
        PolicyReports::new("idp", std::time::SystemTime::now()).with_layout(self.report_layout)
    }
}

/// The policy flags `policy check` and `policy audit` share.
#[derive(Debug, clap::Args)]
pub struct PolicyFlags {
    /// Pod Security Standards level.
    #[arg(long, value_enum)]
    pub pss: Option<PssLevel>,
    /// Pod Security Standards version (`v1.<minor>` or `latest`; default latest).
    #[arg(long, value_name = "VERSION")]
    pub pss_version: Option<String>,
    /// Add the built-in guardrails.
    #[arg(long)]
    pub guardrails: bool,
    /// A policy file: .rego, Gatekeeper, ValidatingAdmissionPolicy, Kyverno or policy-set YAML (repeatable).
    #[arg(long = "policy", value_name = "FILE")]
    pub policies: Vec<PathBuf>,
    /// Print wgpolicyk8s.io/v1alpha2 PolicyReports (laid out as --report-layout says)
    /// as a v1 List instead of rows: YAML, or JSON with --format json.
    #[arg(long)]
    pub policy_report: bool,
    /// How the PolicyReports are laid out: one per namespace, or one per object as
    /// Kyverno does (named by the object's UID and owned by it, so that it is deleted
    /// with the object; objects read from files are named by a hash).
    #[arg(long, value_enum, value_name = "LAYOUT", default_value = "namespace")]
    pub report_layout: LayoutArg,
}

impl PolicyFlags {
    /// The flags as the check reads them.
    pub fn options(&self) -> CheckOptions<'_> {
        CheckOptions {
            pss: self.pss,
            pss_version: self.pss_version.as_deref(),
            guardrails: self.guardrails,
            policies: &self.policies,
            policy_report: self.policy_report,
            report_layout: match self.report_layout {
                LayoutArg::Namespace => ReportLayout::PerNamespace,
                LayoutArg::Resource => ReportLayout::PerResource,
            },
        }
    }
}

/// `v1.30`, `1.30` or `latest`.
fn parse_version(text: &str) -> Result<PssVersion, Failure> {
    let normalised = if text.starts_with(|c: char| c.is_ascii_digit()) {
        format!("v{text}")
    } else {
        text.to_owned()
    };
    normalised
        .parse()
        .map_err(|e: idp_core::Error| Failure::usage(format!("--pss-version: {}", e.report())))
}

/// What a `--policy` file holds, recognised by its content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PolicyFormat {
    Rego,
    Gatekeeper,
    AdmissionPolicy,
    Kyverno,
    /// Gatekeeper mutators (`mutations.gatekeeper.sh`): for `policy mutate` only.
    GatekeeperMutators,
    /// Only Gatekeeper's `Config` (`config.gatekeeper.sh`): it applies to the other
    /// Gatekeeper files.
    GatekeeperConfig,
    PolicySet,
}

/// A Rego module starts (after comments and blank lines) with its `package` line.
fn looks_like_rego(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l.starts_with("package "))
}

/// Classify a YAML policy file by the apiVersion/kind of its documents (`None` when they
/// are not Kubernetes-shaped: the policy-set reader then gives the better error).
fn yaml_format(path: &Path, objects: Option<&ManifestSet>) -> Result<PolicyFormat, Failure> {
    let Some(objects) = objects else {
        return Ok(PolicyFormat::PolicySet);
    };
    let mut found = None;
    for object in objects {
        let group = object.api_version().rsplit_once('/').map_or("", |(g, _)| g);
        let format = match (group, object.kind()) {
            ("templates.gatekeeper.sh" | "constraints.gatekeeper.sh", _)
            | ("expansion.gatekeeper.sh", "ExpansionTemplate") => PolicyFormat::Gatekeeper,
            (
                "admissionregistration.k8s.io",
                "ValidatingAdmissionPolicy" | "ValidatingAdmissionPolicyBinding",
            )
            | (
                "policies.kyverno.io",
                "ValidatingPolicy" | "NamespacedValidatingPolicy" | "PolicyException",
            ) => PolicyFormat::AdmissionPolicy,
            ("kyverno.io", "ClusterPolicy" | "Policy" | "PolicyException") => PolicyFormat::Kyverno,
            ("mutations.gatekeeper.sh", _) => PolicyFormat::GatekeeperMutators,
            ("config.gatekeeper.sh", "Config") => PolicyFormat::GatekeeperConfig,
            (_, "PolicySet") => PolicyFormat::PolicySet,
            _ => continue,
        };
        // Mutators next to constraints or expansion templates shape the mock objects
        // of expansion: the file is a Gatekeeper one. A Config goes with either.
        let format = match (found, format) {
            (Some(PolicyFormat::Gatekeeper), PolicyFormat::GatekeeperMutators)
            | (Some(PolicyFormat::GatekeeperMutators), PolicyFormat::Gatekeeper) => {
                PolicyFormat::Gatekeeper
            }
            (
                Some(f @ (PolicyFormat::Gatekeeper | PolicyFormat::GatekeeperMutators)),
                PolicyFormat::GatekeeperConfig,
            )
            | (
                Some(PolicyFormat::GatekeeperConfig),
                f @ (PolicyFormat::Gatekeeper | PolicyFormat::GatekeeperMutators),
            ) => f,
            _ => format,
        };
        if found.is_some_and(|f| {
            f != format
                && f != PolicyFormat::GatekeeperMutators
                && f != PolicyFormat::GatekeeperConfig
        }) {
            return Err(Failure::usage(format!(
                "{}: mixes Gatekeeper, ValidatingAdmissionPolicy, Kyverno and policy-set documents; put each kind in its own file",
                path.display()
            )));
        }
        found = Some(format);
    }
    found.ok_or_else(|| {
        Failure::usage(format!(
            "{}: no policy found (no ConstraintTemplate, constraint, ValidatingAdmissionPolicy/Binding, Kyverno ClusterPolicy/Policy/ValidatingPolicy or PolicySet document); --policy accepts .rego modules and those YAML kinds",
            path.display()
        ))
    })
}

/// A `--policy` file, read once: its text and what it holds.
pub(crate) struct PolicyFile {
    path: PathBuf,
    text: String,
    format: PolicyFormat,
    /// Its documents, when it is YAML of Kubernetes objects.
    objects: Option<ManifestSet>,
}

/// Read every `--policy` file and recognise what it holds, once for all the uses.
pub(crate) fn read_policy_files(paths: &[PathBuf]) -> Result<Vec<PolicyFile>, Failure> {
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::io(format!("cannot read {}: {e}", path.display())))?;
            let rego =
                path.extension().and_then(|e| e.to_str()) == Some("rego") || looks_like_rego(&text);
            let (format, objects) = if rego {
                (PolicyFormat::Rego, None)
            } else {
                let objects = ManifestSet::parse(text.as_bytes(), Some(path)).ok();
                (yaml_format(path, objects.as_ref())?, objects)
            };
            Ok(PolicyFile {
                path: path.clone(),
                text,
                format,
                objects,
            })
        })
        .collect()
}

/// Read a `--policy` file: a Rego module, Gatekeeper templates and constraints,
/// ValidatingAdmissionPolicies with bindings and params, Kyverno ClusterPolicies,
/// Policies and PolicyExceptions, or an idp policy-set file. Kyverno files all go into
/// `kyverno` (one policy named `kyverno`), so that exceptions in one file waive rules
/// of policies in another; for them this returns `None`.
/// Gatekeeper templates get `inventory` (the manifests being checked) as their
/// replicated `data.inventory`.
fn load_policy_file(
    file: &PolicyFile,
    inventory: &[&Object],
    kyverno: &mut Option<KyvernoPolicy>,
    gatekeeper_config: Option<&GatekeeperConfig>,
    as_stored: bool,
) -> Result<Option<Arc<dyn Policy>>, Failure> {
    let (path, text) = (file.path.as_path(), file.text.as_str());
    let name = path.file_stem().map_or_else(
        || path.display().to_string(),
        |s| s.to_string_lossy().into_owned(),
    );
    let failed = |e: idp_core::Error| Failure::usage(format!("{}: {}", path.display(), e.report()));
    Ok(Some(match file.format {
        PolicyFormat::Rego => {
            let mut policy = RegoPolicy::new(name);
            policy
                .add_module(&path.display().to_string(), text)
                .map_err(failed)?;
            Arc::new(policy)
        }
        PolicyFormat::Gatekeeper => {
            let mut policy = RegoPolicy::new(name)
                .with_gatekeeper_yaml(text, Some(path))
                .map_err(failed)?;
            // The Config may be in another file; it shapes the inventory, so first.
            if let Some(config) = gatekeeper_config {
                policy = policy
                    .with_gatekeeper_config(config.clone())
                    .map_err(failed)?;
            }
            if as_stored {
                // Objects read from the cluster: the Config's audit exclusions apply.
                policy = policy.for_audit();
            }
            Arc::new(
                policy
                    .with_inventory(inventory.iter().copied())
                    .map_err(failed)?,
            )
        }
        PolicyFormat::GatekeeperConfig => return Ok(None),
        PolicyFormat::AdmissionPolicy => {
            let cel = CelPolicy::from_yaml(name, text, Some(path)).map_err(failed)?;
            if cel.policies().is_empty() && !cel.exceptions().is_empty() {
                return Err(Failure::usage(format!(
                    "{}: PolicyExceptions (policies.kyverno.io) but no ValidatingPolicy: an exception applies to the ValidatingPolicies of its own --policy file; put them in one file",
                    path.display()
                )));
            }
            if as_stored {
                Arc::new(cel.for_background())
            } else {
                Arc::new(cel)
            }
        }
        PolicyFormat::Kyverno => {
            kyverno
                .get_or_insert_with(|| KyvernoPolicy::new("kyverno"))
                .add_yaml(text, Some(path))
                .map_err(failed)?;
            return Ok(None);
        }
        PolicyFormat::GatekeeperMutators => {
            return Err(Failure::usage(format!(
                "{}: Gatekeeper mutators change objects rather than check them: use `idpctl policy mutate --policy`",
                path.display()
            )));
        }
        PolicyFormat::PolicySet => {
            let config = PolicySetConfig::from_yaml(text).map_err(failed)?;
            Arc::new(config.build())
        }
    }))
}

/// Build the policy set the flags ask for (`--pss baseline` when none is given), with
/// the `--policy` files read by [`read_policy_files`]; `inventory` is what referential
/// Gatekeeper templates see of the cluster. With
/// `as_stored` (objects read from a cluster, admitted already), Kyverno policies run
/// their validate rules on the objects as given, as a background scan (policies with
/// `spec.background: false` left out); otherwise their mutate rules come first, as at
/// admission.
pub(crate) fn build_set(
    options: &CheckOptions<'_>,
    files: &[PolicyFile],
    inventory: &[&Object],
    as_stored: bool,
) -> Result<PolicySet, Failure> {
    let version = options.pss_version.map(parse_version).transpose()?;
    let level = match options.pss {
        Some(level) => Some(level),
        None if options.names_no_policy() || version.is_some() => Some(PssLevel::Baseline),
        None => None,
    };
    let mut set = PolicySet::new().named("idpctl");
    if let Some(level) = level {
        let mut pss = match level {
            PssLevel::Baseline => PodSecurity::baseline(),
            PssLevel::Restricted => PodSecurity::restricted(),
        };
        if let Some(v) = version {
            pss = pss.at(v);
        }
        set = set.with_policy(pss);
    }
    if options.guardrails {
        // Added as built-ins, so they share the set's one walk of each object.
        for policy in idp_policy::config::BuiltinPolicy::guardrails() {
            set.add_builtin(policy, PolicyOptions::new());
        }
    }
    let mut kyverno = None;
    let gatekeeper_config = shared_gatekeeper_config(files)?;
    for file in files {
        if let Some(policy) = load_policy_file(
            file,
            inventory,
            &mut kyverno,
            gatekeeper_config.as_ref(),
            as_stored,
        )? {
            set.push(policy, PolicyOptions::new());
        }
    }
    if let Some(kyverno) = kyverno {
        if as_stored {
            set.push(
                Arc::new(ValidateRules::background(Arc::new(kyverno))),
                PolicyOptions::new(),
            );
        } else {
            set.push(Arc::new(kyverno), PolicyOptions::new());
        }
    }
    Ok(set)
}

/// The Gatekeeper `Config` among the policy files (in a file of its own or with the
/// templates), which applies to every Gatekeeper file: Gatekeeper reads one. A Config
/// without any Gatekeeper templates to apply to is refused, as a mistake.
fn shared_gatekeeper_config(files: &[PolicyFile]) -> Result<Option<GatekeeperConfig>, Failure> {
    let mut found: Option<(GatekeeperConfig, &Path)> = None;
    let mut gatekeeper_files = 0;
    for file in files {
        match file.format {
            PolicyFormat::Gatekeeper => gatekeeper_files += 1,
            PolicyFormat::GatekeeperConfig => {}
            _ => continue,
        }
        let Some(objects) = &file.objects else {
            continue;
        };
        for object in objects.iter().filter(|o| GatekeeperConfig::is_config(o)) {
            if let Some((_, first)) = &found {
                return Err(Failure::usage(format!(
                    "{}: a second Gatekeeper Config (the first is in {}): Gatekeeper reads one, named config; merge them",
                    file.path.display(),
                    first.display()
                )));
            }
            let config =
                GatekeeperConfig::from_object(object).map_err(|e| Failure::usage(e.report()))?;
            found = Some((config, &file.path));
        }
    }
    if let Some((_, path)) = &found
        && gatekeeper_files == 0
    {
        return Err(Failure::usage(format!(
            "{}: a Gatekeeper Config, but no Gatekeeper templates or constraints among the --policy files for it to apply to",
            path.display()
        )));
    }
    Ok(found.map(|(config, _)| config))
}

/// Whether any of the policy files is a Gatekeeper file, whose templates may read
/// `data.inventory` (the objects checked, all of them, before the first is checked).
pub(crate) fn wants_inventory(files: &[PolicyFile]) -> bool {
    files.iter().any(|f| f.format == PolicyFormat::Gatekeeper)
}

/// The violations of one object, a line each, under its verdict line.
pub(crate) fn print_violations(
    violations: &[idp_policy::report::ViolationRow],
) -> Result<(), Failure> {
    for v in violations {
        let path = v
            .path
            .as_deref()
            .map_or(String::new(), |p| format!(" at {p}"));
        let action = v.action.as_str();
        say!(
            "    {action:<5} {}/{}{path}: {}",
            v.policy,
            v.rule,
            v.message
        );
    }
    Ok(())
}

/// The flags of `policy check`, `mutate` and `audit` for the policies kept in a cluster.
#[derive(Debug, Default)]
pub struct FromCluster<'a> {
    /// `--kubeconfig`.
    pub kubeconfig: Option<&'a PathBuf>,
    /// `--gatekeeper-from-cluster`.
    pub gatekeeper: bool,
    /// `--kyverno-from-cluster`.
    pub kyverno: bool,
    /// `--admission-policies-from-cluster`.
    pub admission_policies: bool,
}

/// What `policy check` read from the cluster.
struct ClusterSide {
    /// The Gatekeeper set, without its inventory yet, and the cluster's objects of the
    /// kinds its Config syncs.
    gatekeeper: Option<(RegoPolicy, Vec<Object>)>,
    kyverno: Option<KyvernoPolicy>,
    admission_policies: Option<CelPolicy>,
}

impl FromCluster<'_> {
    fn any(&self) -> bool {
        self.gatekeeper || self.kyverno || self.admission_policies
    }

    /// Read the policies the flags ask for, and what Gatekeeper's sync would replicate.
    fn read(&self) -> Result<ClusterSide, Failure> {
        on_cluster(self.kubeconfig, async |cluster| {
            let mut side = ClusterSide {
                gatekeeper: None,
                kyverno: None,
                admission_policies: None,
            };
            if self.gatekeeper {
                let loaded = read_gatekeeper(&cluster).await?;
                let kinds = loaded
                    .policy
                    .gatekeeper_config()
                    .map(|c| c.sync_only().to_vec())
                    .unwrap_or_default();
                let mut synced = Vec::new();
                if !kinds.is_empty() {
                    let listing = idp_policy::audit::Audit::new(cluster.clone())
                        .with_kinds(kinds)
                        .for_each_object(|o| synced.push(o))
                        .await?;
                    if let Some(kind) = listing.failed().next() {
                        // The referential constraints would miss what could not be read.
                        return Err(Failure::io(format!(
                            "cannot read the {} objects the cluster's Gatekeeper Config syncs: {}",
                            kind.kind,
                            kind.error.as_deref().unwrap_or_default()
                        )));
                    }
                }
                side.gatekeeper = Some((loaded.policy, synced));
            }
            if self.kyverno {
                side.kyverno = Some(read_kyverno(&cluster).await?);
            }
            if let Some(loaded) = read_cel_policies(&cluster, self).await? {
                side.admission_policies = Some(loaded);
            }
            Ok(side)
        })
    }
}

/// Run `work` on the cluster of `kubeconfig` (as kubectl finds it when `None`), in an
/// async runtime of its own.
pub(crate) fn on_cluster<T>(
    kubeconfig: Option<&PathBuf>,
    work: impl AsyncFnOnce(idp_core::cluster::Cluster) -> Result<T, Failure>,
) -> Result<T, Failure> {
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| Failure::io(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(async {
        let client =
            idp_core::cluster::client_from_kubeconfig(kubeconfig.map(PathBuf::as_path)).await?;
        work(idp_core::cluster::Cluster::new(client)).await
    })
}

/// The Gatekeeper templates, constraints and Config kept in the cluster, in a set of
/// their own; what does not load is named on stderr.
pub(crate) async fn read_gatekeeper(
    cluster: &idp_core::cluster::Cluster,
) -> Result<idp_policy::rego::cluster::Loaded, Failure> {
    let loaded = idp_policy::rego::cluster::ClusterPolicies::read(cluster)
        .await?
        .load_into(RegoPolicy::new("gatekeeper"))?;
    crate::policy_audit::say_left_out("Gatekeeper", &loaded.skipped);
    Ok(loaded)
}

/// The Kyverno ClusterPolicies, Policies and PolicyExceptions kept in the cluster (with
/// the ConfigMaps their context entries read), as the set `kyverno-cluster`; what does
/// not load is named on stderr.
pub(crate) async fn read_kyverno(
    cluster: &idp_core::cluster::Cluster,
) -> Result<KyvernoPolicy, Failure> {
    let loaded = idp_policy::kyverno::cluster::ClusterPolicies::read(cluster)
        .await?
        .load_into(KyvernoPolicy::new("kyverno-cluster"));
    crate::policy_audit::say_left_out("Kyverno", &loaded.skipped);
    Ok(loaded.policy)
}

/// The CEL policies kept in the cluster that the flags ask for: with
/// `--admission-policies-from-cluster`, the ValidatingAdmissionPolicies and Kyverno's
/// ValidatingPolicies; with `--kyverno-from-cluster` alone, Kyverno's ValidatingPolicies
/// (which Kyverno applies as it does its ClusterPolicies).
pub(crate) async fn read_cel_policies(
    cluster: &idp_core::cluster::Cluster,
    flags: &FromCluster<'_>,
) -> Result<Option<CelPolicy>, Failure> {
    use idp_policy::cel::cluster::ClusterPolicies;
    let (found, name) = if flags.admission_policies {
        (
            ClusterPolicies::read(cluster).await?,
            "admission-policies-cluster",
        )
    } else if flags.kyverno {
        (
            ClusterPolicies::read_kyverno(cluster).await?,
            "kyverno-validating-policies",
        )
    } else {
        return Ok(None);
    };
    let loaded = found.load_into(CelPolicy::new(name));
    crate::policy_audit::say_left_out("CEL", &loaded.skipped);
    Ok(Some(loaded.policy))
}

/// The mutations `policy mutate` reads from the cluster: Gatekeeper's mutators (with its
/// Config) and the Kyverno policies, as the flags ask.
struct ClusterMutations {
    gatekeeper: Option<GatekeeperMutators>,
    kyverno: Option<KyvernoPolicy>,
}

impl FromCluster<'_> {
    fn read_mutations(&self) -> Result<ClusterMutations, Failure> {
        on_cluster(self.kubeconfig, async |cluster| {
            let mut found = ClusterMutations {
                gatekeeper: None,
                kyverno: None,
            };
            if self.gatekeeper {
                let mut mutators = GatekeeperMutators::new("gatekeeper-cluster");
                // The Config named config: the namespaces the mutation webhook leaves alone.
                let policies = idp_policy::rego::cluster::ClusterPolicies::read(&cluster).await?;
                if let Some(config) = policies.gatekeeper_config()? {
                    mutators.use_config(config);
                }
                let loaded =
                    idp_policy::gatekeeper::mutation::cluster::ClusterMutators::read(&cluster)
                        .await?
                        .load_into(mutators);
                crate::policy_audit::say_left_out("Gatekeeper", &loaded.skipped);
                found.gatekeeper = Some(loaded.mutators);
            }
            if self.kyverno {
                found.kyverno = Some(read_kyverno(&cluster).await?);
            }
            Ok(found)
        })
    }
}

fn read_objects(file: &Path) -> Result<ManifestSet, Failure> {
    ManifestSet::from_file(file).map_err(Failure::from)
}

/// `policy check`: exit 1 when any object is denied.
pub fn check(
    paths: &[PathBuf],
    options: &CheckOptions<'_>,
    from_cluster: &FromCluster<'_>,
    out: &Out,
) -> Result<ExitCode, Failure> {
    let files = collect(paths)?;
    if files.is_empty() {
        return Err(Failure::usage(
            "no manifest files found (looked for *.yaml, *.yml and *.json)",
        ));
    }
    // Every manifest is read first: together they are the cluster state referential
    // Gatekeeper templates (a unique Ingress host) check each object against.
    let manifests = files
        .iter()
        .map(|file| Ok((file, read_objects(file)?)))
        .collect::<Result<Vec<_>, Failure>>()?;
    let inventory: Vec<&Object> = manifests.iter().flat_map(|(_, set)| set.iter()).collect();
    let policy_files = read_policy_files(options.policies)?;
    let cluster = from_cluster
        .any()
        .then(|| from_cluster.read())
        .transpose()?;
    let mut set = if cluster.is_some() && options.names_no_policy() {
        // Only the cluster's policies were asked for.
        PolicySet::new().named("idpctl")
    } else {
        build_set(options, &policy_files, &inventory, false)?
    };
    if let Some(cluster) = cluster {
        if let Some((gatekeeper, synced)) = cluster.gatekeeper {
            // A manifest takes the place of the object of the same identity it changes.
            let policy =
                gatekeeper.with_inventory(synced.iter().chain(inventory.iter().copied()))?;
            set.push(Arc::new(policy), PolicyOptions::new());
        }
        if let Some(kyverno) = cluster.kyverno {
            // As at admission: the mutate rules first.
            set.push(Arc::new(kyverno), PolicyOptions::new());
        }
        if let Some(cel) = cluster.admission_policies {
            set.push(Arc::new(cel), PolicyOptions::new());
        }
    }
    let ctx = PolicyContext::new();
    let mut rows = Vec::new();
    let mut reports = options.policy_report.then(|| options.reports());
    for (file, objects) in &manifests {
        for object in objects {
            let result = set.check_object(object, &ctx);
            if let Some(reports) = reports.as_mut() {
                reports.add(object, &result, &set.applicable_policies(object, &ctx));
            }
            rows.push(CheckRow::new(file.display().to_string(), object, result));
        }
    }
    let denied = rows.iter().filter(|r| !r.allowed).count();
    if let Some(reports) = reports {
        // A `List`, which `kubectl apply -f -` takes as it is.
        out.data(&serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": reports.finish(),
        }))?;
        return Ok(if denied > 0 {
            ExitCode::Findings
        } else {
            ExitCode::Ok
        });
    }
    match out.format {
        Format::Json | Format::Yaml => out.data(&rows)?,
        Format::Table => {
            for r in &rows {
                let verdict = if r.allowed {
                    out.paint("allowed", Color::Green)
                } else {
                    out.paint("denied ", Color::Red)
                };
                let ns = r
                    .namespace
                    .as_deref()
                    .map_or(String::new(), |n| format!("{n}/"));
                say!(
                    "{verdict} {} (document {}) {} {ns}{}",
                    r.file,
                    r.document,
                    r.kind,
                    r.name
                );
                print_violations(&r.violations)?;
            }
            say!("{} object(s), {denied} denied", rows.len());
        }
    }
    Ok(if denied > 0 {
        ExitCode::Findings
    } else {
        ExitCode::Ok
    })
}

/// `policy mutate`: print the objects with default resources and standard labels, or
/// with the mutate rules of the Kyverno `policies` (and OpenTelemetry settings with an
/// endpoint); after each object, what the Kyverno generate rules create from it. A
/// generate rule that fails is reported on stderr and the exit code is 1.
pub fn mutate(
    paths: &[PathBuf],
    otel_endpoint: Option<&str>,
    policies: &[PathBuf],
    from_cluster: &FromCluster<'_>,
    out: &Out,
) -> Result<ExitCode, Failure> {
    let mut mutations = Mutations::new();
    // The Kyverno policies, whose generate rules run on each mutated object.
    let mut generators: Vec<Arc<KyvernoPolicy>> = Vec::new();
    let cluster = from_cluster
        .any()
        .then(|| from_cluster.read_mutations())
        .transpose()?;
    if policies.is_empty() && cluster.is_none() {
        mutations = mutations
            .with(StandardLabels::default())
            .with(DefaultResources::default());
    } else {
        let mut kyverno: Option<KyvernoPolicy> = None;
        let mut gatekeeper: Option<GatekeeperMutators> = None;
        for file in read_policy_files(policies)? {
            let (path, text) = (file.path.as_path(), file.text.as_str());
            let failed =
                |e: idp_core::Error| Failure::usage(format!("{}: {}", path.display(), e.report()));
            match file.format {
                PolicyFormat::Kyverno => kyverno
                    .get_or_insert_with(|| KyvernoPolicy::new("kyverno"))
                    .add_yaml(text, Some(path))
                    .map_err(failed)?,
                PolicyFormat::GatekeeperMutators | PolicyFormat::GatekeeperConfig => gatekeeper
                    .get_or_insert_with(|| GatekeeperMutators::new("gatekeeper"))
                    .add_yaml(text, Some(path))
                    .map_err(failed)?,
                _ => {
                    return Err(Failure::usage(format!(
                        "{}: only Kyverno policies (ClusterPolicy, Policy, PolicyException) and Gatekeeper mutators (Assign, AssignMetadata, ModifySet, AssignImage) mutate; check other kinds with `idpctl policy check --policy`",
                        path.display()
                    )));
                }
            }
        }
        // The cluster's policies after the files'.
        let (cluster_gatekeeper, cluster_kyverno) =
            cluster.map_or((None, None), |c| (c.gatekeeper, c.kyverno));
        // Gatekeeper's mutating webhook and Kyverno's are separate; Gatekeeper's first.
        for g in [gatekeeper, cluster_gatekeeper].into_iter().flatten() {
            mutations = mutations.with(g);
        }
        for k in [kyverno, cluster_kyverno].into_iter().flatten() {
            let k = Arc::new(k);
            mutations.push(k.clone());
            generators.push(k);
        }
    }
    if let Some(endpoint) = otel_endpoint {
        mutations = mutations.with(OtelInjection::new(endpoint));
    }
    let files = collect(paths)?;
    if files.is_empty() {
        return Err(Failure::usage(
            "no manifest files found (looked for *.yaml, *.yml and *.json)",
        ));
    }
    let ctx = PolicyContext::new();
    let mut objects: Vec<Object> = Vec::new();
    let mut failed_rules = 0;
    for file in &files {
        for object in &read_objects(file)? {
            let mut object = object.clone();
            mutations.mutate(&mut object, &ctx).map_err(|e| {
                Failure::io(format!(
                    "{}: cannot mutate {} {}: {}",
                    file.display(),
                    object.kind(),
                    object.name(),
                    e.report()
                ))
            })?;
            let mut generated = Vec::new();
            for k in &generators {
                generated.extend(generate(k, file, &object, &ctx, &mut failed_rules)?);
            }
            objects.push(object);
            objects.extend(generated);
        }
    }
    match out.format {
        Format::Json => {
            let values: Vec<serde_json::Value> = objects.iter().map(Object::to_value).collect();
            out.data(&values)?;
        }
        Format::Yaml | Format::Table => {
            let set: ManifestSet = objects.into_iter().collect();
            let text = set.to_yaml()?;
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
        }
    }
    Ok(if failed_rules > 0 {
        ExitCode::Findings
    } else {
        ExitCode::Ok
    })
}

/// What the generate rules of `kyverno` create from `trigger` (as admitted). A rule
/// that fails is written to stderr, naming the file, the object and the rule, and
/// counted in `failed`.
fn generate(
    kyverno: &KyvernoPolicy,
    file: &Path,
    trigger: &Object,
    ctx: &PolicyContext,
    failed: &mut usize,
) -> Result<Vec<Object>, Failure> {
    let (objects, results) = kyverno.generate_results(trigger, ctx).map_err(|e| {
        Failure::io(format!(
            "{}: cannot run the generate rules on {} {}: {}",
            file.display(),
            trigger.kind(),
            trigger.name(),
            e.report()
        ))
    })?;
    for r in results {
        if let idp_policy::kyverno::RuleOutcome::Error(violations) = r.outcome {
            for v in violations {
                *failed += 1;
                eprintln!(
                    "{}: {} {}: generate rule {}/{}: {}",
                    file.display(),
                    trigger.kind(),
                    trigger.name(),
                    r.policy,
                    r.rule,
                    v.message
                );
            }
        }
    }
    Ok(objects)
}
