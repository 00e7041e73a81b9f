//! The periodic audit (`policy.audit`): the server's policies over what already runs
//! in its cluster, every `intervalSeconds`, the findings kept in the cluster as
//! `wgpolicyk8s.io` PolicyReports, as Kyverno's background scans keep theirs. Only the
//! replica holding the reconcilers' Lease audits.

use std::sync::Arc;
use std::time::Duration;

use idp_core::PolicyContext;
use idp_core::cluster::{Cluster, GroupKind, Inventory};
use idp_policy::PolicyOptions;
use idp_policy::audit::{Audit, REPORT_INVENTORY, publish_reports};
use idp_policy::kyverno::cluster::ClusterPolicies;
use idp_policy::kyverno::{KyvernoPolicy, ValidateRules};
use idp_policy::policy_report::PolicyReports;
use idp_policy::rego::cluster::ConstraintStatuses;
use idp_policy::report::{ReportBuilder, ReportLimits};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tracing::Instrument;

use crate::server::config::AuditConfig;
use crate::server::routes::policy::{Checked, build_set};
use crate::server::state::{AppState, AuditOutcome};

/// What one audit is, checked at start so that a bad kind stops the server.
pub(crate) struct Planned {
    config: AuditConfig,
    kinds: Vec<GroupKind>,
    inventory: Inventory,
}

/// Check `config`: every kind parses, the report namespace makes an inventory.
pub(crate) fn plan(config: &AuditConfig) -> idp_core::Result<Planned> {
    let kinds = parse_kinds("policy.audit.kinds", &config.kinds)?;
    let inventory = Inventory::new(&config.report_namespace, REPORT_INVENTORY)
        .map_err(|e| e.context("policy.audit.reportNamespace"))?;
    Ok(Planned {
        config: config.clone(),
        kinds,
        inventory,
    })
}

impl Planned {
    /// Leave `kyvernoFromCluster` to `policy.kyvernoSync`, whose set (run by every audit)
    /// holds the cluster's Kyverno policies already: reading them here too would apply
    /// them twice.
    pub(crate) fn use_synced_kyverno(&mut self) {
        if self.config.kyverno_from_cluster {
            tracing::info!(
                "policy.audit.kyvernoFromCluster: the Kyverno policies in the cluster come with policy.kyvernoSync's set"
            );
            self.config.kyverno_from_cluster = false;
        }
    }
}

/// `Kind.group` words as group-kinds; an error names `field`, the index and the word.
pub(crate) fn parse_kinds(field: &str, kinds: &[String]) -> idp_core::Result<Vec<GroupKind>> {
    kinds
        .iter()
        .enumerate()
        .map(|(i, k)| {
            k.parse::<GroupKind>()
                .map_err(|e| e.context(format!("{field}[{i}] {k:?}")))
        })
        .collect()
}

/// Run the audit now and every interval after, until `stop` turns true.
pub(crate) fn spawn(
    state: Arc<AppState>,
    planned: Planned,
    stop: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let every = Duration::from_secs(planned.config.interval_seconds.max(1));
    let planned = Arc::new(planned);
    crate::server::periodically(every, stop, move || {
        let (state, planned) = (state.clone(), planned.clone());
        async move { once(state, planned).await }
    })
}

/// One audit, its outcome logged; on the blocking pool, since checking every object of
/// the cluster keeps a thread busy.
async fn once(state: Arc<AppState>, planned: Arc<Planned>) {
    let span = tracing::info_span!("server.audit");
    let audit = async move { audit_once(&state, &planned).await }.instrument(span);
    if let Err(e) = crate::server::on_blocking_pool(audit).await {
        tracing::error!(error = %e.report(), "the audit stopped");
    }
}

async fn audit_once(state: &AppState, planned: &Planned) {
    // One replica audits: the one holding the Lease the reconcilers elect by, so two
    // never write (and prune) the same reports at once.
    if state.delivery.get().is_some_and(|d| !d.is_leader()) {
        tracing::debug!("not the leader: another replica audits");
        return;
    }
    let cluster = Cluster::new(state.cluster.client.clone());
    let mut policies = build_set(
        state.policy.pss,
        state.policy.guardrails,
        state.kyverno.get(),
        state.audit_files.get().map_or(&[][..], Vec::as_slice),
        Checked::Stored,
    );
    if planned.config.kyverno_from_cluster {
        match ClusterPolicies::read(&cluster).await {
            Ok(found) => {
                let loaded = found.load_into(KyvernoPolicy::new("kyverno-cluster"));
                // Background scans: the validate rules of the policies that ask for them.
                policies.push(
                    Arc::new(ValidateRules::background(Arc::new(loaded.policy))),
                    PolicyOptions::new(),
                );
            }
            Err(e) => {
                tracing::warn!(error = %e.report(), "the audit could not read the Kyverno policies in the cluster; trying again next time");
                return;
            }
        }
    }
    if planned.config.admission_policies_from_cluster {
        match idp_policy::cel::cluster::ClusterPolicies::read(&cluster).await {
            Ok(found) => {
                let loaded = found.load_into(idp_policy::cel::CelPolicy::new(
                    "admission-policies-cluster",
                ));
                policies.push(
                    Arc::new(loaded.policy.for_background()),
                    PolicyOptions::new(),
                );
            }
            Err(e) => {
                tracing::warn!(error = %e.report(), "the audit could not read the admission policies in the cluster; trying again next time");
                return;
            }
        }
    }
    let ctx = PolicyContext::new();
    let started = std::time::Instant::now();
    let mut reports = PolicyReports::new("idp", std::time::SystemTime::now())
        .with_layout(planned.config.report_layout);
    // Counts and per-rule summaries for the metrics; no sample is kept.
    let mut tally = ReportBuilder::new(ReportLimits {
        max_violations: 0,
        max_objects: 0,
    });
    // The findings of the constraints read from the cluster, for their status.
    let constraints = state.gatekeeper_constraints();
    let mut statuses = ConstraintStatuses::new("gatekeeper", &constraints);
    let audit = Audit::new(cluster.clone())
        .with_kinds(planned.kinds.iter().cloned())
        .excluding_namespaces(planned.config.exclude_namespaces.iter().cloned())
        .skipping_controlled(planned.config.skip_controlled);
    let listing = audit
        .run(&policies, &ctx, |object, result| {
            tally.add_ref(result);
            statuses.add(object, &result.violations);
            if planned.config.write_reports {
                reports.add(object, result, &policies.applicable_policies(object, &ctx));
            }
        })
        .await;
    let listing = match listing {
        Ok(listing) => listing,
        Err(e) => {
            tracing::warn!(error = %e.report(), "the audit could not read the cluster; trying again next time");
            return;
        }
    };
    for kind in listing.failed() {
        tracing::warn!(kind = %kind.kind, error = kind.error.as_deref().unwrap_or_default(), "the audit could not read a kind");
    }
    let report = tally.finish();
    tracing::info!(
        objects = report.objects_checked,
        denied = report.denied,
        kinds = listing.kinds.len(),
        "audit done"
    );
    state.record_audit(AuditOutcome {
        finished: std::time::SystemTime::now(),
        duration: started.elapsed(),
        unreadable_kinds: listing.failed().count(),
        report,
        runs: 0,
    });
    if listing.failed().next().is_some() {
        // Reports of an incomplete read would drop the findings of the kinds not read.
        tracing::warn!(
            "policy reports and constraint status not written: some kinds could not be read"
        );
        return;
    }
    if !constraints.is_empty() {
        // Failures are logged as they happen.
        let _ = statuses.write(&cluster, jiff::Timestamp::now()).await;
    }
    if !planned.config.write_reports {
        return;
    }
    match publish_reports(&cluster, planned.inventory.clone(), &reports.finish()).await {
        Ok(p) => tracing::info!(
            written = p.written,
            unchanged = p.unchanged,
            deleted = p.deleted,
            "policy reports written"
        ),
        Err(e) => tracing::warn!(error = %e.report(), "policy reports not written"),
    }
}
