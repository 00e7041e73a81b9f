//! `idpctl policy audit`: check what already runs in a cluster with the policies
//! `policy check` takes, as Gatekeeper's audit and Kyverno's background scans do.

use std::path::PathBuf;

use idp_core::cluster::{Cluster, GroupKind, Inventory};
use idp_core::{Object, PolicyContext};
use idp_policy::PolicyOptions;
use idp_policy::PolicySet;
use idp_policy::audit::{Audit, KindListing, Listing, REPORT_INVENTORY, publish_reports};
use idp_policy::kyverno::ValidateRules;
use idp_policy::policy_report::{PolicyReport, PolicyReports};
use idp_policy::rego::cluster::ConstraintStatuses;
use idp_policy::report::{ObjectResult, ViolationRow};
use serde::Serialize;
use std::sync::Arc;

use crate::output::{Color, Format, Out};
use crate::policy::{
    CheckOptions, build_set, print_violations, read_policy_files, wants_inventory,
};
use crate::{ExitCode, Failure};

/// Where and what `policy audit` reads.
#[derive(Debug)]
pub struct AuditOptions<'a> {
    /// `--kubeconfig`.
    pub kubeconfig: Option<&'a PathBuf>,
    /// `--kind`.
    pub kinds: &'a [String],
    /// `--namespace`.
    pub namespaces: &'a [String],
    /// `--exclude-namespace`.
    pub excluded: &'a [String],
    /// `--page-size`.
    pub page_size: u32,
    /// `--write-reports NAMESPACE`.
    pub write_reports: Option<&'a str>,
    /// `--skip-controlled`.
    pub skip_controlled: bool,
    /// `--gatekeeper-from-cluster`.
    pub gatekeeper_from_cluster: bool,
    /// `--write-constraint-status`.
    pub write_constraint_status: bool,
    /// `--kyverno-from-cluster`.
    pub kyverno_from_cluster: bool,
    /// `--admission-policies-from-cluster`.
    pub admission_policies_from_cluster: bool,
}

/// One object with findings: the row of `policy check` without file and document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Finding {
    api_version: String,
    kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    namespace: Option<String>,
    name: String,
    allowed: bool,
    violations: Vec<ViolationRow>,
}

/// What `--format json` prints.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary<'a> {
    objects: u64,
    denied: u64,
    warned: u64,
    kinds: &'a [KindListing],
    findings: &'a [Finding],
}

/// The verdicts, gathered as the objects are checked.
struct Gathered {
    findings: Vec<Finding>,
    denied: u64,
    warned: u64,
    reports: Option<PolicyReports>,
}

impl Gathered {
    fn add(
        &mut self,
        set: &PolicySet,
        ctx: &PolicyContext,
        object: &Object,
        result: &ObjectResult,
    ) {
        if let Some(reports) = self.reports.as_mut() {
            reports.add(object, result, &set.applicable_policies(object, ctx));
        }
        if !result.allowed {
            self.denied += 1;
        } else if result.warnings().next().is_some() {
            self.warned += 1;
        }
        if result.violations.is_empty() {
            return;
        }
        self.findings.push(Finding {
            api_version: object.api_version().to_owned(),
            kind: object.kind().to_owned(),
            namespace: object.namespace().map(str::to_owned),
            name: object.name().to_owned(),
            allowed: result.allowed,
            violations: result
                .violations
                .iter()
                .cloned()
                .map(ViolationRow::from)
                .collect(),
        });
    }
}

/// `policy audit`: exit 1 when any live object is denied, 2 when a resource type could
/// not be read (the audit is then incomplete) or the cluster cannot be reached.
pub fn audit(
    check: &CheckOptions<'_>,
    options: &AuditOptions<'_>,
    out: &Out,
) -> Result<ExitCode, Failure> {
    let kinds = options
        .kinds
        .iter()
        .map(|k| {
            k.parse::<GroupKind>()
                .map_err(|e| Failure::usage(format!("--kind {k}: {}", e.report())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let policy_files = read_policy_files(check.policies)?;
    crate::policy::on_cluster(options.kubeconfig, async |cluster| {
        let audit = Audit::new(cluster.clone())
            .with_kinds(kinds)
            .with_namespaces(options.namespaces.iter().cloned())
            .excluding_namespaces(options.excluded.iter().cloned())
            .with_page_size(options.page_size)
            .skipping_controlled(options.skip_controlled);
        let ctx = PolicyContext::new();
        let mut gathered = Gathered {
            findings: Vec::new(),
            denied: 0,
            warned: 0,
            reports: (check.policy_report || options.write_reports.is_some())
                .then(|| check.reports()),
        };
        // The Gatekeeper policies kept in the cluster, as Gatekeeper's audit runs them.
        let from_cluster = if options.gatekeeper_from_cluster {
            Some(crate::policy::read_gatekeeper(&cluster).await?)
        } else {
            None
        };
        // The Kyverno policies kept in the cluster, as its background scans run them.
        let kyverno = if options.kyverno_from_cluster {
            let policy = crate::policy::read_kyverno(&cluster).await?;
            Some(Arc::new(ValidateRules::background(Arc::new(policy))))
        } else {
            None
        };
        // The CEL admission policies kept in the cluster, as background scans run them.
        let admission_policies = crate::policy::read_cel_policies(
            &cluster,
            &crate::policy::FromCluster {
                kubeconfig: None,
                gatekeeper: false,
                kyverno: options.kyverno_from_cluster,
                admission_policies: options.admission_policies_from_cluster,
            },
        )
        .await?
        .map(|cel| Arc::new(cel.for_background()));
        let only_cluster = check.names_no_policy()
            && (from_cluster.is_some() || kyverno.is_some() || admission_policies.is_some());
        // The policies the flags ask for, with those kept in the cluster.
        let policy_set = |inventory: &[&Object]| -> Result<idp_policy::PolicySet, Failure> {
            let mut set = if only_cluster {
                // Only the cluster's policies were asked for.
                idp_policy::PolicySet::new().named("idpctl")
            } else {
                build_set(check, &policy_files, inventory, true)?
            };
            if let Some(kyverno) = &kyverno {
                set.push(kyverno.clone(), PolicyOptions::new());
            }
            if let Some(cel) = &admission_policies {
                set.push(cel.clone(), PolicyOptions::new());
            }
            Ok(set)
        };
        let mut statuses = ConstraintStatuses::new(
            "gatekeeper",
            from_cluster
                .as_ref()
                .map_or(&[][..], |l| l.constraints.as_slice()),
        );
        let listing = if from_cluster.is_some() || wants_inventory(&policy_files) {
            // Gatekeeper templates may read data.inventory: every object is read
            // before the first is checked, as Gatekeeper's audit reads its synced cache.
            let mut objects = Vec::new();
            let listing = audit.for_each_object(|o| objects.push(o)).await?;
            let inventory: Vec<&Object> = objects.iter().collect();
            let mut set = policy_set(&inventory)?;
            if let Some(loaded) = from_cluster {
                let policy = loaded
                    .policy
                    .for_audit()
                    .with_inventory(inventory.iter().copied())?;
                set.push(Arc::new(policy), PolicyOptions::new());
            }
            for object in &objects {
                let result = set.check_object(object, &ctx);
                statuses.add(object, &result.violations);
                gathered.add(&set, &ctx, object, &result);
            }
            listing
        } else {
            let set = policy_set(&[])?;
            audit
                .run(&set, &ctx, |object, result| {
                    gathered.add(&set, &ctx, object, result);
                })
                .await?
        };
        let reports = gathered.reports.take().map(PolicyReports::finish);
        let mut exit = ExitCode::Ok;
        if let (Some(namespace), Some(reports)) = (options.write_reports, &reports) {
            exit = write(&cluster, namespace, reports, &listing).await?;
        }
        if options.write_constraint_status {
            if listing.failed().next().is_some() {
                eprintln!("constraint status not written: some kinds could not be read");
                exit = ExitCode::Error;
            } else {
                let failed = statuses.write(&cluster, jiff::Timestamp::now()).await;
                for (constraint, error) in &failed {
                    eprintln!(
                        "constraint status of {} not written: {}",
                        constraint.rule(),
                        error.report()
                    );
                }
                if failed.is_empty() {
                    eprintln!("constraint status written");
                } else {
                    exit = ExitCode::Error;
                }
            }
        }
        let printed = print(
            &gathered,
            reports.filter(|_| check.policy_report),
            &listing,
            out,
        )?;
        Ok(if exit == ExitCode::Error {
            exit
        } else {
            printed
        })
    })
}

/// Name on stderr what of an engine's policies kept in the cluster did not load.
pub(crate) fn say_left_out(engine: &str, skipped: &[(String, idp_core::Error)]) {
    for (what, error) in skipped {
        eprintln!(
            "left out of the cluster's {engine} policies: {what}: {}",
            error.report()
        );
    }
}

/// `--write-reports`: publish the reports under the inventory in `namespace`, unless
/// some kind could not be read (the reports would then drop its findings).
async fn write(
    cluster: &Cluster,
    namespace: &str,
    reports: &[PolicyReport],
    listing: &Listing,
) -> Result<ExitCode, Failure> {
    if listing.failed().next().is_some() {
        eprintln!("policy reports not written: some kinds could not be read");
        return Ok(ExitCode::Error);
    }
    let inventory = Inventory::new(namespace, REPORT_INVENTORY)
        .map_err(|e| Failure::usage(format!("--write-reports {namespace}: {}", e.report())))?;
    let published = publish_reports(cluster, inventory, reports).await?;
    eprintln!(
        "policy reports: {} written, {} unchanged, {} deleted",
        published.written, published.unchanged, published.deleted
    );
    Ok(ExitCode::Ok)
}

fn print(
    gathered: &Gathered,
    reports: Option<Vec<PolicyReport>>,
    listing: &Listing,
    out: &Out,
) -> Result<ExitCode, Failure> {
    for kind in listing.failed() {
        eprintln!(
            "not audited: {}: {}",
            kind.kind,
            kind.error.as_deref().unwrap_or_default()
        );
    }
    if let Some(reports) = reports {
        out.data(&serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "items": reports,
        }))?;
    } else {
        match out.format {
            Format::Json | Format::Yaml => out.data(&Summary {
                objects: listing.objects(),
                denied: gathered.denied,
                warned: gathered.warned,
                kinds: &listing.kinds,
                findings: &gathered.findings,
            })?,
            Format::Table => {
                for f in &gathered.findings {
                    let verdict = if f.allowed {
                        out.paint("allowed", Color::Green)
                    } else {
                        out.paint("denied ", Color::Red)
                    };
                    let ns = f
                        .namespace
                        .as_deref()
                        .map_or(String::new(), |n| format!("{n}/"));
                    say!("{verdict} {} {ns}{}", f.kind, f.name);
                    print_violations(&f.violations)?;
                }
                say!(
                    "{} object(s) of {} kind(s) audited, {} denied, {} warned{}",
                    listing.objects(),
                    listing.kinds.len(),
                    gathered.denied,
                    gathered.warned,
                    match listing.failed().count() {
                        0 => String::new(),
                        n => format!(", {n} kind(s) not audited"),
                    }
                );
            }
        }
    }
    Ok(if listing.failed().next().is_some() {
        ExitCode::Error
    } else if gathered.denied > 0 {
        ExitCode::Findings
    } else {
        ExitCode::Ok
    })
}
