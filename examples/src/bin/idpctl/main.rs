//! `idpctl`: the command-line face of the idp SDK.
//!
//! A starting point to copy: every subcommand is a thin layer over a library call, and the
//! conventions are the ones scripts rely on — `--format table|json|yaml`, no colour when
//! `NO_COLOR` is set or stdout is not a terminal, and exit codes 0 (ok), 1 (findings: a
//! lint error, an unhealthy object) and 2 (usage or I/O error).
//!
//! Subcommands: `version`, `manifests lint`, `health`, `catalog validate|list|search|graph|
//! generate|schema` and `scaffold` (idp-catalog), `policy check|audit|mutate|test` (idp-policy),
//! `preview plan|verify` (idp-preview), and `deploy`, `history`, `rollback`, `promote`,
//! `reconcile`, `cost` (idp-deploy).

/// `println!` that returns a [`Failure`] instead of panicking when stdout is gone (for
/// example `idpctl … | head`); `main` ends quietly on a closed pipe.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*).map_err($crate::Failure::from)?
    }};
}

mod catalog;
mod cost;
mod deploy;
mod files;
mod health;
mod lint;
mod output;
mod policy;
mod policy_audit;
mod policy_test;
mod preview;
mod preview_env;
mod reconcile;
mod scaffold;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use output::{Format, Out};

/// idpctl — work with an Internal Developer Platform built on the idp SDK.
///
/// Every command reads local files or talks to the platform's Git repositories and
/// Kubernetes clusters; nothing is stored anywhere else.
#[derive(Debug, Parser)]
#[command(
    name = "idpctl",
    version,
    after_help = "EXIT CODES:\n  0  everything is fine\n  1  findings (a manifest error, an unhealthy object, an invalid entity, a denied object)\n  2  usage or I/O error\n\nEXAMPLES:\n  idpctl manifests lint deploy/               # check every *.yaml under deploy/\n  idpctl manifests lint app.yaml --format json\n  idpctl health live.yaml                     # Argo CD health of saved objects\n  idpctl catalog validate catalog/            # Backstage catalog files\n  idpctl catalog list catalog/ --filter kind=component,spec.type=service\n  idpctl policy check k8s/ --pss restricted --guardrails\n  idpctl policy mutate k8s/ --otel-endpoint http://otel-collector:4317\n  NO_COLOR=1 idpctl version"
)]
struct Cli {
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, default_value_t = Format::Table)]
    format: Format,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the versions of idpctl and the SDK crates it is built from.
    Version,
    /// Work with Kubernetes manifests.
    #[command(subcommand)]
    Manifests(ManifestsCommand),
    /// Work with Backstage catalog files (catalog-info.yaml).
    #[command(subcommand)]
    Catalog(CatalogCommand),
    /// Check manifests against policies and apply the standard mutations.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Preview environments: plan from webhooks, verify signatures, up/down/list/reap.
    #[command(subcommand)]
    Preview(preview::PreviewCommand),
    /// Assess the health of objects saved with their status (`kubectl get -o yaml`).
    ///
    /// Uses Argo CD's health rules (Healthy, Progressing, Degraded, Suspended, Missing,
    /// Unknown) for Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, Pod, Service,
    /// Ingress, PersistentVolumeClaim, HorizontalPodAutoscaler and APIService; other kinds
    /// have no rule (`null` in JSON). Exits 1 when any object is Degraded, Missing or Unknown.
    #[command(
        after_help = "EXAMPLES:\n  kubectl get deploy -n shop -o yaml > live.yaml && idpctl health live.yaml\n  idpctl health live/ --format json"
    )]
    Health {
        /// Files or directories with objects (*.yaml, *.yml, *.json).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Estimate the monthly cost of manifests, per object, team and environment.
    Cost(cost::Args),
    /// Converge a Git branch and folder into a cluster and print the status (idp-deploy).
    Reconcile(reconcile::Args),
    /// Run a Backstage software template (golden path) locally; `scaffold actions` lists actions.
    Scaffold(scaffold::ScaffoldArgs),
    #[command(flatten)]
    Deploy(deploy::DeployCommand),
}

#[derive(Debug, Subcommand)]
enum ManifestsCommand {
    /// Parse manifests and report every error with file, line and document.
    ///
    /// Accepts multi-document YAML, JSON objects, JSON arrays and `kind: List`.
    /// Directories are searched recursively for *.yaml, *.yml and *.json.
    /// Exits 1 when any file has an error.
    #[command(
        after_help = "EXAMPLES:\n  idpctl manifests lint k8s/\n  idpctl manifests lint a.yaml b.json --format json"
    )]
    Lint {
        /// Files or directories to check.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum CatalogCommand {
    /// Validate catalog files as Backstage would, document by document.
    ///
    /// Every *.yaml and *.yml file under the paths is read; each YAML document is one
    /// entity. A file that is not valid YAML gets one row with no document number and
    /// the parse error with its line. Exits 1 when any document is invalid.
    #[command(
        after_help = "EXAMPLES:\n  idpctl catalog validate catalog-info.yaml\n  idpctl catalog validate services/ --format json   # [{file, document, kind, ref, valid, errors}]"
    )]
    Validate {
        /// Files or directories to check.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// List the entities of catalog files, optionally filtered.
    ///
    /// A filter is Backstage's syntax: comma-separated `key=value` (equals, any case) or
    /// `key` (exists) conditions that must all hold. Several --filter options are ORed.
    /// Invalid entities are skipped with a warning on stderr.
    #[command(
        after_help = "EXAMPLES:\n  idpctl catalog list catalog/\n  idpctl catalog list catalog/ --filter kind=component,spec.type=service\n  idpctl catalog list catalog/ --filter kind=api --filter kind=resource --format json"
    )]
    List {
        /// Files or directories with catalog files.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// `key=value,key2=value2` (AND); repeat for OR.
        #[arg(long, value_name = "FILTER")]
        filter: Vec<String>,
    },
    /// Full-text search over the entities, best match first.
    ///
    /// Ranks by BM25 over name, title, tags, owner, type and description (name counts
    /// most) and tolerates small typos.
    #[command(
        after_help = "EXAMPLES:\n  idpctl catalog search \"payment api\" catalog/\n  idpctl catalog search checkout catalog/ --limit 5 --format json"
    )]
    Search {
        /// What to look for.
        query: String,
        /// Files or directories with catalog files.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// At most this many results.
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Show the relations of one entity, in both directions.
    ///
    /// Outgoing relations (ownedBy, dependsOn...) and incoming ones seen from this entity
    /// (ownerOf, dependencyOf...). Targets missing from the catalog are marked.
    #[command(
        after_help = "EXAMPLES:\n  idpctl catalog graph component:default/cart catalog/\n  idpctl catalog graph group:default/team-a catalog/ --format json"
    )]
    Graph {
        /// The entity: kind:namespace/name (namespace defaults to `default`).
        #[arg(value_name = "REF")]
        entity: String,
        /// Files or directories with catalog files.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// Write a synthetic organisation (groups, users, systems, components, APIs).
    ///
    /// The same seed gives the same files. The root catalog-info.yaml is a Location
    /// pointing at the rest.
    #[command(
        after_help = "EXAMPLES:\n  idpctl catalog generate --count 1000 --out /tmp/org\n  idpctl catalog generate --count 50 --out demo --seed 7 && idpctl catalog validate demo"
    )]
    Generate {
        /// How many entities.
        #[arg(long)]
        count: usize,
        /// Directory to write (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Random seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
    /// Print the JSON Schema of a built-in kind.
    ///
    /// Kinds: Component, API, Resource, System, Domain, Group, User, Location, Template,
    /// Environment (any case). JSON unless --format yaml.
    #[command(
        after_help = "EXAMPLES:\n  idpctl catalog schema component > component.schema.json\n  idpctl catalog schema group --format yaml"
    )]
    Schema {
        /// The kind.
        kind: String,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Check every object of the manifests against policies.
    ///
    /// With no policy flag, checks the Pod Security Standards at the baseline level.
    /// --pss restricted is stricter; --pss-version pins the standard to a Kubernetes
    /// release (v1.30, 1.30 or latest). --guardrails adds the built-in guardrails
    /// (resources, sensitive ports, registries, latest tags, labels, Service types, Ingress
    /// TLS, probes, replicas). --policy FILE adds a policy file, recognised by its content:
    /// a Rego module (.rego, conftest deny/violation/warn rules), Gatekeeper
    /// ConstraintTemplate/constraint YAML (with ExpansionTemplates, which check
    /// workloads by the Pods they would create, and the mutators that shape those mock
    /// Pods), ValidatingAdmissionPolicy/Binding YAML (with
    /// their param objects) and Kyverno ValidatingPolicy YAML (CEL, auto-generated for
    /// Pod controllers; with the policies.kyverno.io PolicyExceptions of the same file), Kyverno ClusterPolicy/Policy/PolicyException YAML (validate
    /// rules: pattern, anyPattern, deny, foreach, podSecurity, cel; all Kyverno files form one policy named
    /// kyverno), or an idp policy-set YAML file (kind: PolicySet). Gatekeeper
    /// templates see every manifest checked as their replicated `data.inventory`, so
    /// referential constraints (a unique Ingress host) check the change as a whole; a
    /// Gatekeeper Config (config.gatekeeper.sh) in any of the files applies to all of
    /// them (the namespaces its webhook and sync processes leave out, its syncOnly
    /// kinds). Every
    /// object gets a row; exits 1 when any object is denied
    /// (warn and audit findings are reported but do not fail).
    #[command(
        after_help = "EXAMPLES:\n  idpctl policy check k8s/                            # PSS baseline\n  idpctl policy check k8s/ --pss restricted --pss-version v1.30\n  idpctl policy check k8s/ --guardrails --policy platform/policies.yaml\n  idpctl policy check k8s/ --policy policy/deny.rego --policy gatekeeper/templates.yaml --policy vap.yaml\n  idpctl policy check k8s/ --policy kyverno/best-practices.yaml   # Kyverno ClusterPolicies\n  idpctl policy check app.yaml --format json          # [{file, document, apiVersion, kind, namespace, name, allowed, violations}]\n  idpctl policy check k8s/ --guardrails --policy-report | kubectl apply -f -   # wgpolicyk8s.io PolicyReports\n  idpctl policy check k8s/ --kyverno-from-cluster --gatekeeper-from-cluster --admission-policies-from-cluster   # what the cluster would say, before commit"
    )]
    Check {
        /// Files or directories with manifests.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        flags: policy::PolicyFlags,
        /// Also check with the Gatekeeper policies kept in a cluster, as its admission
        /// webhook would: every ConstraintTemplate, the constraints of their kinds and
        /// the Config named config (the namespaces its webhook leaves out). Their
        /// data.inventory is the cluster's objects of the Config's syncOnly kinds, with
        /// the manifests checked in place of the objects they change. A template that
        /// does not compile is named on stderr and left out with its constraints.
        #[arg(long)]
        gatekeeper_from_cluster: bool,
        /// Also check with the Kyverno ClusterPolicies, Policies and PolicyExceptions
        /// kept in a cluster, as its admission webhook would: mutate rules first, then
        /// validate rules; and with its CEL ValidatingPolicies (policies.kyverno.io). A
        /// policy that does not load is named on stderr and left out.
        #[arg(long)]
        kyverno_from_cluster: bool,
        /// Also check with the ValidatingAdmissionPolicies and their bindings kept in a
        /// cluster (with the param objects they name), as its API server would admit the
        /// manifests, and with Kyverno's ValidatingPolicies and their PolicyExceptions
        /// (policies.kyverno.io) there (one that does not load is named on stderr and
        /// left out).
        #[arg(long)]
        admission_policies_from_cluster: bool,
        /// The kubeconfig of that cluster (default: as kubectl finds it: KUBECONFIG,
        /// ~/.kube/config, in-cluster).
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
    },
    /// Check what already runs in a cluster, as Gatekeeper's audit and Kyverno's
    /// background scans do.
    ///
    /// Lists the live objects of every resource type that supports list (Events
    /// excepted), or of the --kind ones, page by page, and checks each with the policies
    /// `policy check` takes (the same flags; --pss baseline when none is given). Objects
    /// are checked as the API server stores them: Kyverno policies run their validate
    /// rules only, nothing is mutated first. With Gatekeeper files, every object is read
    /// before the first is checked, and they are the templates' data.inventory. A
    /// Gatekeeper Config among the files leaves out the namespaces of its audit process.
    /// Prints the objects with findings (a summary with --format json, PolicyReports
    /// with --policy-report). Exits 1 when any object is denied, 2 when a resource type
    /// could not be read (it is named on stderr; the rest is still audited).
    #[command(
        after_help = "EXAMPLES:\n  idpctl policy audit --pss restricted --exclude-namespace kube-system\n  idpctl policy audit --kubeconfig kind.kubeconfig --kind Deployment.apps --kind Pod -n shop --guardrails\n  idpctl policy audit --policy kyverno/best-practices.yaml --format json   # {objects, denied, warned, kinds, findings}\n  idpctl policy audit --policy gatekeeper/unique-ingress-host.yaml --policy-report | kubectl apply -f -\n  idpctl policy audit --pss restricted --exclude-namespace kube-system --write-reports platform   # a CronJob keeping PolicyReports\n  idpctl policy audit --guardrails --skip-controlled --report-layout resource --write-reports platform   # Kyverno's report layout, one finding per workload"
    )]
    Audit {
        /// The kubeconfig to use (default: as kubectl finds it: KUBECONFIG,
        /// ~/.kube/config, in-cluster).
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
        /// Only this kind, as Kind.group (Deployment.apps; Pod for the core group)
        /// (repeatable).
        #[arg(long = "kind", value_name = "KIND")]
        kinds: Vec<String>,
        /// Only objects in this namespace; cluster-scoped objects are then left out
        /// (repeatable).
        #[arg(long = "namespace", short = 'n', value_name = "NAMESPACE")]
        namespaces: Vec<String>,
        /// Leave out the objects in this namespace and the namespace itself (repeatable; a
        /// `*` matches any run of characters: kube-*).
        #[arg(long = "exclude-namespace", value_name = "NAMESPACE")]
        excluded: Vec<String>,
        /// Objects per list request.
        #[arg(long, value_name = "N", default_value_t = idp_core::cluster::list::DEFAULT_PAGE_SIZE)]
        page_size: u32,
        /// Also write the findings into the cluster as PolicyReports (wgpolicyk8s.io,
        /// whose CRDs Kyverno or Policy Reporter install), replacing those an earlier
        /// --write-reports wrote; the record of which reports that is lives in this
        /// namespace. Nothing is written when a kind could not be read.
        #[arg(long, value_name = "NAMESPACE")]
        write_reports: Option<String>,
        /// Leave out the objects a pod controller made when that controller is audited
        /// too (the Pods of a ReplicaSet, the ReplicaSets of a Deployment, the Jobs of a
        /// CronJob...): its pod template is checked, so each finding is reported once,
        /// on the object to change. A Pod a webhook changed after it was made is then
        /// not seen.
        #[arg(long)]
        skip_controlled: bool,
        /// Also run the Gatekeeper policies kept in the cluster, as Gatekeeper's audit
        /// does: every ConstraintTemplate, the constraints of their kinds and the Config
        /// named config (a template that does not compile is named on stderr and left
        /// out with its constraints).
        #[arg(long)]
        gatekeeper_from_cluster: bool,
        /// With --gatekeeper-from-cluster: write what the audit found into each
        /// constraint's status (totalViolations, the first 20 violations,
        /// auditTimestamp), as Gatekeeper's audit does. Not when a kind could not be read.
        #[arg(long, requires = "gatekeeper_from_cluster")]
        write_constraint_status: bool,
        /// Also scan with the Kyverno ClusterPolicies, Policies and PolicyExceptions
        /// kept in the cluster, and its CEL ValidatingPolicies, as Kyverno's background
        /// scans do (a policy that does not load is named on stderr and left out).
        #[arg(long)]
        kyverno_from_cluster: bool,
        /// Also check with the ValidatingAdmissionPolicies and their bindings kept in
        /// the cluster (with the param objects they name), which the API server applies
        /// only to what is admitted after them, and with Kyverno's ValidatingPolicies
        /// there (those with background scans enabled), as its background scans do.
        #[arg(long)]
        admission_policies_from_cluster: bool,
        #[command(flatten)]
        flags: policy::PolicyFlags,
    },
    /// Print the manifests with the platform's standard mutations applied.
    ///
    /// Fills in default resource requests and limits and the standard labels
    /// (app.kubernetes.io/*); with --otel-endpoint also injects the OpenTelemetry SDK
    /// environment into workloads. Only missing values are added. With --policy, applies
    /// the mutate rules of Kyverno policies (as Kyverno's admission webhook would, rules
    /// in order, auto-generated for Pod controllers) and Gatekeeper mutators (in
    /// Gatekeeper's order, until the object stops changing) instead of the standard
    /// defaults; after each object come the objects the Kyverno generate rules create
    /// from it (a NetworkPolicy for a new Namespace...), labelled as Kyverno labels them.
    /// A generate rule that fails is reported on stderr and the exit code is 1. Prints
    /// YAML documents (a JSON array with --format json).
    #[command(
        after_help = "EXAMPLES:\n  idpctl policy mutate deploy.yaml\n  idpctl policy mutate k8s/ --otel-endpoint http://otel-collector.observability:4317 > mutated.yaml\n  idpctl policy mutate k8s/ --policy kyverno/add-defaults.yaml\n  idpctl policy mutate k8s/ --gatekeeper-from-cluster --kyverno-from-cluster   # what the cluster's webhooks would make of them"
    )]
    Mutate {
        /// Files or directories with manifests.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// OTLP endpoint to configure in workloads.
        #[arg(long, value_name = "URL")]
        otel_endpoint: Option<String>,
        /// A Kyverno ClusterPolicy/Policy (and PolicyException) file whose mutate rules,
        /// or a Gatekeeper mutator file (Assign, AssignMetadata, ModifySet, AssignImage)
        /// whose mutators, to apply instead of the standard defaults (repeatable).
        #[arg(long = "policy", value_name = "FILE")]
        policies: Vec<PathBuf>,
        /// Also apply the Gatekeeper mutators kept in a cluster (with the namespaces its
        /// Config leaves to the mutation webhook left alone), as its mutating webhook
        /// would; after those of --policy files.
        #[arg(long)]
        gatekeeper_from_cluster: bool,
        /// Also apply the mutate rules of the Kyverno ClusterPolicies and Policies kept
        /// in a cluster, as its mutating webhook would (its generate rules' objects
        /// follow each object).
        #[arg(long)]
        kyverno_from_cluster: bool,
        /// The kubeconfig of that cluster (default: as kubectl finds it).
        #[arg(long, value_name = "FILE")]
        kubeconfig: Option<PathBuf>,
    },
    /// Run Kyverno CLI test suites (kyverno-test.yaml) and Gatekeeper gator verify suites.
    ///
    /// Finds every kyverno-test.yaml and every YAML file declaring a gator suite (kind:
    /// Suite, apiVersion: test.gatekeeper.sh/v1alpha1) under the paths (a file is taken as
    /// one). For Kyverno, loads the policies, exceptions and resources and compares each
    /// expected result (pass, fail, skip, error) with what idp-policy's Kyverno engine
    /// finds; a rule named as written also matches its auto-generated form for
    /// controllers. Kyverno ValidatingPolicies (CEL) in a suite answer the rows marked
    /// isValidatingPolicy: true, skipped where a policies.kyverno.io PolicyException
    /// (listed in exceptions or policies) exempts the resource. For gator, loads each test's template, constraint and optional
    /// expansion file (ExpansionTemplates and mutators) and checks each
    /// case's assertions (violations: yes, no or a count, of the messages matching a
    /// regular expression), with the case's inventory as data.inventory. Exits 1 when any
    /// result is not as expected. A gator case's object may be an AdmissionReview (its
    /// request's object, operation and user are used). A Kyverno suite's values file
    /// (`variables: values.yaml`, or `values:` in the test file) gives variables, mocked
    /// context entries (apiCall, globalReference, imageRegistry…), request.operation and
    /// namespace labels, as the Kyverno CLI applies it; suites that set user info are
    /// reported as errors.
    #[command(
        after_help = "EXAMPLES:\n  idpctl policy test policies/\n  idpctl policy test policies/require-limits/kyverno-test.yaml --format json\n  idpctl policy test gatekeeper-library/library/general/requiredlabels/suite.yaml"
    )]
    Test {
        /// Test files, or directories to search for kyverno-test.yaml.
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
}

/// What the process exits with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// Everything is fine.
    Ok = 0,
    /// The command worked and found problems.
    Findings = 1,
    /// Bad usage or an I/O error.
    Error = 2,
}

/// A failure that stops the command (exit code 2).
#[derive(Debug)]
pub struct Failure {
    message: String,
    /// stdout was closed by the reader (`| head`): nothing to report.
    closed_pipe: bool,
}

impl Failure {
    /// An I/O problem (a file that cannot be read).
    pub fn io(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            closed_pipe: false,
        }
    }

    /// A usage problem.
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            closed_pipe: false,
        }
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Self {
            closed_pipe: e.kind() == std::io::ErrorKind::BrokenPipe,
            ..Self::io(e.to_string())
        }
    }
}

impl From<idp_core::Error> for Failure {
    fn from(e: idp_core::Error) -> Self {
        Self::io(e.report())
    }
}

#[derive(serde::Serialize)]
struct Versions {
    idpctl: &'static str,
    #[serde(rename = "idp-core")]
    idp_core: &'static str,
    #[serde(rename = "kubernetesApi")]
    kubernetes_api: String,
}

/// The Kubernetes API version k8s-openapi was built for (the binary picks it).
#[allow(clippy::vec_init_then_push)] // each push exists only for the enabled version
fn kubernetes_api_version() -> &'static str {
    let mut versions: Vec<&'static str> = Vec::new();
    k8s_openapi::k8s_if_1_33! { versions.push("1.33"); }
    k8s_openapi::k8s_if_1_34! { versions.push("1.34"); }
    k8s_openapi::k8s_if_1_35! { versions.push("1.35"); }
    k8s_openapi::k8s_if_1_36! { versions.push("1.36"); }
    k8s_openapi::k8s_if_1_37! { versions.push("1.37"); }
    versions.first().copied().unwrap_or("unknown")
}

fn version(out: &Out) -> Result<ExitCode, Failure> {
    let versions = Versions {
        idpctl: env!("CARGO_PKG_VERSION"),
        idp_core: env!("CARGO_PKG_VERSION"),
        kubernetes_api: kubernetes_api_version().to_owned(),
    };
    match out.format {
        Format::Table => {
            say!("idpctl {}", versions.idpctl);
            say!("idp-core {}", versions.idp_core);
            say!("Kubernetes API {}", versions.kubernetes_api);
        }
        _ => out.data(&versions)?,
    }
    Ok(ExitCode::Ok)
}

fn run_catalog(command: &CatalogCommand, out: &Out) -> Result<ExitCode, Failure> {
    match command {
        CatalogCommand::Validate { paths } => catalog::validate(paths, out),
        CatalogCommand::List { paths, filter } => catalog::list(paths, filter, out),
        CatalogCommand::Search {
            query,
            paths,
            limit,
        } => catalog::search(query, paths, *limit, out),
        CatalogCommand::Graph { entity, paths } => catalog::graph(entity, paths, out),
        CatalogCommand::Generate {
            count,
            out: dir,
            seed,
        } => catalog::generate(*count, dir, *seed, out),
        CatalogCommand::Schema { kind } => catalog::schema(kind, out),
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let out = Out::new(cli.format);
    let result = match &cli.command {
        Command::Version => version(&out),
        Command::Manifests(ManifestsCommand::Lint { paths }) => lint::run(paths, &out),
        Command::Health { paths } => health::run(paths, &out),
        Command::Cost(args) => cost::run(args, &out),
        Command::Reconcile(args) => reconcile::run(args, &out),
        Command::Catalog(c) => run_catalog(c, &out),
        Command::Preview(c) => preview::run(c, &out),
        Command::Scaffold(args) => scaffold::run(args, &out),
        Command::Deploy(c) => deploy::run(c, &out),
        Command::Policy(PolicyCommand::Check {
            paths,
            flags,
            gatekeeper_from_cluster,
            kyverno_from_cluster,
            admission_policies_from_cluster,
            kubeconfig,
        }) => policy::check(
            paths,
            &flags.options(),
            &policy::FromCluster {
                kubeconfig: kubeconfig.as_ref(),
                gatekeeper: *gatekeeper_from_cluster,
                kyverno: *kyverno_from_cluster,
                admission_policies: *admission_policies_from_cluster,
            },
            &out,
        ),
        Command::Policy(PolicyCommand::Audit {
            kubeconfig,
            kinds,
            namespaces,
            excluded,
            page_size,
            write_reports,
            skip_controlled,
            gatekeeper_from_cluster,
            write_constraint_status,
            kyverno_from_cluster,
            admission_policies_from_cluster,
            flags,
        }) => policy_audit::audit(
            &flags.options(),
            &policy_audit::AuditOptions {
                kubeconfig: kubeconfig.as_ref(),
                kinds,
                namespaces,
                excluded,
                page_size: *page_size,
                write_reports: write_reports.as_deref(),
                skip_controlled: *skip_controlled,
                gatekeeper_from_cluster: *gatekeeper_from_cluster,
                write_constraint_status: *write_constraint_status,
                kyverno_from_cluster: *kyverno_from_cluster,
                admission_policies_from_cluster: *admission_policies_from_cluster,
            },
            &out,
        ),
        Command::Policy(PolicyCommand::Mutate {
            paths,
            otel_endpoint,
            policies,
            gatekeeper_from_cluster,
            kyverno_from_cluster,
            kubeconfig,
        }) => policy::mutate(
            paths,
            otel_endpoint.as_deref(),
            policies,
            &policy::FromCluster {
                kubeconfig: kubeconfig.as_ref(),
                gatekeeper: *gatekeeper_from_cluster,
                kyverno: *kyverno_from_cluster,
                admission_policies: false,
            },
            &out,
        ),
        Command::Policy(PolicyCommand::Test { paths }) => policy_test::test(paths, &out),
    };
    match result {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(failure) if failure.closed_pipe => std::process::ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!(
                "{} {}",
                out.paint("error:", output::Color::Red),
                failure.message
            );
            std::process::ExitCode::from(ExitCode::Error as u8)
        }
    }
}
