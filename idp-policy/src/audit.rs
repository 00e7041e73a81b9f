//! Audit: check what already runs in a cluster, as Gatekeeper's audit and Kyverno's
//! background scans do.
//!
//! Admission and the checks before commit see changes; a policy added today says
//! nothing about the workloads admitted last year. An [`Audit`] lists the live objects
//! of a cluster, resource type by resource type and page by page, and hands each to a
//! [`Policy`] (a [`PolicySet`](crate::PolicySet), a Kyverno, Rego or CEL policy, your
//! own), so that memory stays bounded by one page and the [report](crate::report)'s
//! limits however large the cluster.
//!
//! - **What is read:** every resource type that supports `list`, at its group's
//!   preferred version, except Events ([`SKIPPED_KINDS`]); or only the kinds given to
//!   [`Audit::with_kinds`]. Objects come as the API server stores them, `status` and
//!   all, and are checked as they are: nothing is mutated first.
//! - **Where:** every namespace, or only those given to [`Audit::with_namespaces`]
//!   (each listed with its own requests, which is what a namespace-scoped role allows;
//!   cluster-scoped objects are then left out). Namespaces given to
//!   [`Audit::excluding_namespaces`] are skipped, their `Namespace` objects included
//!   (`kube-system`, whose Pods no Pod Security Standard is meant for).
//! - **Failures:** a resource type that cannot be listed (forbidden to the
//!   credentials) and an API group whose discovery fails (an aggregated API such as
//!   `metrics.k8s.io` whose service is down) are recorded in the [`Listing`] with
//!   their error, and the audit goes on. Only failing to list the API groups, or a
//!   kind given to [`Audit::with_kinds`] that the cluster does not serve, stops it.
//!
//! ```no_run
//! # async fn demo(client: kube::Client) -> idp_core::Result<()> {
//! use idp_core::PolicyContext;
//! use idp_core::cluster::Cluster;
//! use idp_policy::{PolicySet, audit::Audit, pss::PodSecurity};
//!
//! let set = PolicySet::new().with_policy(PodSecurity::restricted());
//! let audit = Audit::new(Cluster::new(client))
//!     .with_kinds(["Pod".parse()?, "Deployment.apps".parse()?])
//!     .excluding_namespaces(["kube-system"]);
//! let found = audit.report(&set, &PolicyContext::new()).await?;
//! println!("{} of {} objects denied", found.report.denied, found.report.objects_checked);
//! for kind in found.listing.failed() {
//!     eprintln!("not audited: {}: {}", kind.kind, kind.error.as_deref().unwrap_or_default());
//! }
//! # Ok(()) }
//! ```

use idp_core::cluster::discovery::Listable;
use idp_core::cluster::list::{DEFAULT_PAGE_SIZE, Pages};
use idp_core::cluster::{
    Applier, ApplyOutcome, Cluster, GroupKind, Inventory, PruneOptions, Resolved,
};
use idp_core::{Error, ErrorKind, ManifestSet, Object, Policy, PolicyContext, Result};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tracing::Instrument;

use crate::policy_report::PolicyReport;
use crate::report::{ObjectResult, Report, ReportBuilder, ReportLimits};

/// Kinds an audit of everything leaves out: Events, which are many, short-lived and
/// what no policy is written for (as `(group, kind)`).
pub const SKIPPED_KINDS: [(&str, &str); 2] = [("", "Event"), ("events.k8s.io", "Event")];

/// Reads the live objects of a cluster for a policy. See the [module docs](self).
///
/// ```no_run
/// # fn demo(cluster: idp_core::cluster::Cluster) {
/// let audit = idp_policy::audit::Audit::new(cluster).with_namespaces(["shop", "payments"]).with_page_size(100);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Audit {
    cluster: Cluster,
    kinds: Vec<GroupKind>,
    namespaces: Vec<String>,
    excluded: Vec<String>,
    page_size: u32,
    limits: ReportLimits,
    skip_controlled: bool,
}

// serde's `skip_serializing_if` passes a reference.
#[allow(clippy::trivially_copy_pass_by_ref)]
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A group and kind, as `("apps", "Deployment")` (`""` for the core group).
type Kind = (&'static str, &'static str);

/// The pod controllers whose objects make other pod-bearing objects, as
/// `(made, made by)` group-kinds: what [`Audit::skipping_controlled`] leaves out.
const CONTROLLED: [(Kind, Kind); 7] = [
    (("", "Pod"), ("apps", "ReplicaSet")),
    (("", "Pod"), ("apps", "StatefulSet")),
    (("", "Pod"), ("apps", "DaemonSet")),
    (("", "Pod"), ("batch", "Job")),
    (("", "Pod"), ("", "ReplicationController")),
    (("apps", "ReplicaSet"), ("apps", "Deployment")),
    (("batch", "Job"), ("batch", "CronJob")),
];

/// How the listing of one resource type went.
///
/// ```
/// let k = idp_policy::audit::KindListing { kind: "Deployment.apps".into(), objects: 3, controlled: 0, error: None };
/// assert!(k.error.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct KindListing {
    /// The group and kind, as `Kind.group` (`Pod` for the core group).
    pub kind: String,
    /// Objects read and checked (those in excluded namespaces not counted).
    pub objects: u64,
    /// Objects read but not checked because their controller's pod template is
    /// checked instead ([`Audit::skipping_controlled`]).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub controlled: u64,
    /// Why the type could not be read to the end, when it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What an audit read: one entry per resource type, in the order read.
///
/// ```
/// use idp_policy::audit::{KindListing, Listing};
/// let l = Listing { kinds: vec![KindListing { kind: "Secret".into(), objects: 0, controlled: 0, error: Some("forbidden".into()) }] };
/// assert_eq!(l.objects(), 0);
/// assert_eq!(l.failed().count(), 1);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Listing {
    /// Every resource type, with its count or its error.
    pub kinds: Vec<KindListing>,
}

impl Listing {
    /// Objects read in all.
    ///
    /// ```
    /// assert_eq!(idp_policy::audit::Listing::default().objects(), 0);
    /// ```
    pub fn objects(&self) -> u64 {
        self.kinds.iter().map(|k| k.objects).sum()
    }

    /// The resource types that could not be read to the end.
    ///
    /// ```
    /// assert_eq!(idp_policy::audit::Listing::default().failed().count(), 0);
    /// ```
    pub fn failed(&self) -> impl Iterator<Item = &KindListing> {
        self.kinds.iter().filter(|k| k.error.is_some())
    }
}

/// The outcome of [`Audit::report`]: the verdicts, bounded by the audit's
/// [`ReportLimits`], and what was read.
///
/// ```
/// let r = idp_policy::audit::AuditReport::default();
/// assert!(r.report.is_allowed());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditReport {
    /// Counts, per-rule summaries and a capped sample of the violations.
    pub report: Report,
    /// The resource types read.
    pub listing: Listing,
}

impl Audit {
    /// An audit of every listable resource type in every namespace of `cluster`.
    ///
    /// ```no_run
    /// # fn demo(client: kube::Client) {
    /// let audit = idp_policy::audit::Audit::new(idp_core::cluster::Cluster::new(client));
    /// # }
    /// ```
    pub fn new(cluster: Cluster) -> Self {
        Self {
            cluster,
            kinds: Vec::new(),
            namespaces: Vec::new(),
            excluded: Vec::new(),
            page_size: DEFAULT_PAGE_SIZE,
            limits: ReportLimits::default(),
            skip_controlled: false,
        }
    }

    /// Leave out the objects a pod controller made when the audit also reads that
    /// controller: a Pod of a ReplicaSet, StatefulSet, DaemonSet, Job or
    /// ReplicationController, a ReplicaSet of a Deployment, a Job of a CronJob (by the
    /// `ownerReferences` entry marked `controller: true`). The policies check the
    /// controller's pod template (pod-controller autogen), so each finding is reported
    /// once, on the object to change, rather than on every Pod it made. Off by
    /// default: a Pod can differ from its template (an admission webhook may have
    /// added a container), and only reading the Pod shows that. Objects left out are
    /// counted in [`KindListing::controlled`].
    ///
    /// ```no_run
    /// # fn demo(cluster: idp_core::cluster::Cluster) {
    /// let audit = idp_policy::audit::Audit::new(cluster).skipping_controlled(true);
    /// # }
    /// ```
    #[must_use]
    pub fn skipping_controlled(mut self, skip: bool) -> Self {
        self.skip_controlled = skip;
        self
    }

    /// Read only these kinds (`"Deployment.apps".parse()`, `GroupKind::new("", "Pod")`),
    /// in this order. Events are read when named here.
    ///
    /// ```no_run
    /// # fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
    /// let audit = idp_policy::audit::Audit::new(cluster).with_kinds(["Ingress.networking.k8s.io".parse()?]);
    /// # Ok(()) }
    /// ```
    #[must_use]
    pub fn with_kinds(mut self, kinds: impl IntoIterator<Item = GroupKind>) -> Self {
        self.kinds = kinds.into_iter().collect();
        self
    }

    /// Read only objects in these namespaces (cluster-scoped objects are then not read).
    ///
    /// ```no_run
    /// # fn demo(cluster: idp_core::cluster::Cluster) {
    /// let audit = idp_policy::audit::Audit::new(cluster).with_namespaces(["shop"]);
    /// # }
    /// ```
    #[must_use]
    pub fn with_namespaces(
        mut self,
        namespaces: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.namespaces = namespaces.into_iter().map(Into::into).collect();
        self
    }

    /// Skip objects in these namespaces, and the `Namespace` objects of that name. A
    /// `*` matches any run of characters (`kube-*`), as in Gatekeeper's exclusions.
    ///
    /// ```no_run
    /// # fn demo(cluster: idp_core::cluster::Cluster) {
    /// let audit = idp_policy::audit::Audit::new(cluster).excluding_namespaces(["kube-*", "*-system"]);
    /// # }
    /// ```
    #[must_use]
    pub fn excluding_namespaces(
        mut self,
        namespaces: impl IntoIterator<Item = impl Into<String>>,
    ) -> Self {
        self.excluded = namespaces.into_iter().map(Into::into).collect();
        self
    }

    /// Objects per list request (default [`DEFAULT_PAGE_SIZE`], as Gatekeeper's audit).
    ///
    /// ```no_run
    /// # fn demo(cluster: idp_core::cluster::Cluster) {
    /// let audit = idp_policy::audit::Audit::new(cluster).with_page_size(100);
    /// # }
    /// ```
    #[must_use]
    pub fn with_page_size(mut self, size: u32) -> Self {
        self.page_size = size.max(1);
        self
    }

    /// How much of the verdicts [`Audit::report`] keeps (counts and per-rule summaries
    /// are always whole).
    ///
    /// ```no_run
    /// # fn demo(cluster: idp_core::cluster::Cluster) {
    /// let limits = idp_policy::report::ReportLimits { max_violations: 100, max_objects: 50 };
    /// let audit = idp_policy::audit::Audit::new(cluster).with_limits(limits);
    /// # }
    /// ```
    #[must_use]
    pub fn with_limits(mut self, limits: ReportLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The resource types the audit reads: the kinds given, resolved on the cluster,
    /// or every listable type but [`SKIPPED_KINDS`], with the API groups whose
    /// discovery failed.
    ///
    /// A kind given that the cluster does not serve is a `NotFound` error naming it;
    /// one that cannot be listed is `InvalidInput`.
    ///
    /// ```no_run
    /// # async fn demo(audit: idp_policy::audit::Audit) -> idp_core::Result<()> {
    /// for r in audit.resources().await?.resources {
    ///     println!("{}", r.group_kind());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn resources(&self) -> Result<Listable> {
        let discovery = self.cluster.discovery();
        if self.kinds.is_empty() {
            let mut all = discovery.listable_resources().await?;
            all.resources.retain(|r| {
                !SKIPPED_KINDS.contains(&(r.resource.group.as_str(), r.resource.kind.as_str()))
            });
            return Ok(all);
        }
        let mut out = Vec::with_capacity(self.kinds.len());
        for kind in &self.kinds {
            let Some(resolved) = discovery.resolve_group_kind(kind).await? else {
                return Err(Error::not_found(format!(
                    "the cluster serves no kind {kind}: name it as Kind.group (Deployment.apps, Pod for the core group), as `kubectl api-resources` lists it"
                )));
            };
            if !resolved.supports("list") {
                return Err(Error::invalid_input(format!(
                    "{kind} cannot be listed on this cluster (verbs: {}): leave it out of the kinds to audit",
                    resolved.verbs.join(", ")
                )));
            }
            out.push(resolved);
        }
        Ok(Listable {
            resources: out,
            unavailable: Vec::new(),
        })
    }

    /// Read every object the audit covers and hand each to `visit`, page by page.
    ///
    /// ```no_run
    /// # async fn demo(audit: idp_policy::audit::Audit) -> idp_core::Result<()> {
    /// let mut names = Vec::new();
    /// let listing = audit.for_each_object(|o| names.push(o.object_ref().to_string())).await?;
    /// assert_eq!(listing.objects() as usize, names.len());
    /// # Ok(()) }
    /// ```
    pub async fn for_each_object(&self, mut visit: impl FnMut(Object)) -> Result<Listing> {
        let span = tracing::info_span!(
            "policy.audit.list",
            kinds = self.kinds.len(),
            namespaces = self.namespaces.len()
        );
        async {
            let mut listing = Listing::default();
            let resources = self.resources().await?;
            for (group_version, error) in resources.unavailable {
                tracing::warn!(%group_version, error = %error, "audit could not discover an API group");
                listing.kinds.push(KindListing {
                    kind: format!("{group_version} (every kind)"),
                    objects: 0,
                    controlled: 0,
                    error: Some(error.to_string()),
                });
            }
            // The controllers read, whose objects the audit may leave out.
            let controllers: Vec<(&str, &str)> = if self.skip_controlled {
                CONTROLLED
                    .iter()
                    .map(|(_, by)| *by)
                    .filter(|(group, kind)| {
                        resources.resources.iter().any(|r| {
                            r.resource.group == *group && r.resource.kind == *kind
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            };
            for resolved in &resources.resources {
                if !resolved.namespaced && !self.namespaces.is_empty() {
                    // Outside the namespaces asked for.
                    continue;
                }
                let made_by: Vec<(&str, &str)> = CONTROLLED
                    .iter()
                    .filter(|(made, by)| {
                        made.0 == resolved.resource.group
                            && made.1 == resolved.resource.kind
                            && controllers.contains(by)
                    })
                    .map(|(_, by)| *by)
                    .collect();
                listing
                    .kinds
                    .push(self.list_kind(resolved, &made_by, &mut visit).await);
            }
            tracing::debug!(
                objects = listing.objects(),
                failed = listing.failed().count(),
                "audit listed the cluster"
            );
            Ok(listing)
        }
        .instrument(span)
        .await
    }

    /// One resource type, in each namespace asked for or in all, leaving out the
    /// objects whose controller is of a kind in `made_by`.
    async fn list_kind(
        &self,
        resolved: &Resolved,
        made_by: &[(&str, &str)],
        visit: &mut impl FnMut(Object),
    ) -> KindListing {
        let mut out = KindListing {
            kind: resolved.group_kind().to_string(),
            objects: 0,
            controlled: 0,
            error: None,
        };
        let scopes: Vec<Option<&str>> = if self.namespaces.is_empty() {
            vec![None]
        } else {
            self.namespaces.iter().map(|n| Some(n.as_str())).collect()
        };
        let is_namespace =
            resolved.resource.group.is_empty() && resolved.resource.kind == "Namespace";
        for scope in scopes {
            let mut pages =
                Pages::new(&self.cluster, resolved, scope).with_page_size(self.page_size);
            loop {
                match pages.next_page().await {
                    Ok(Some(page)) => {
                        for object in page {
                            let namespace = if is_namespace {
                                Some(object.name())
                            } else {
                                object.namespace()
                            };
                            if namespace.is_some_and(|ns| {
                                self.excluded
                                    .iter()
                                    .any(|e| crate::matching::wildcard(e, ns))
                            }) {
                                continue;
                            }
                            if !made_by.is_empty() && controlled_by(&object, made_by) {
                                out.controlled += 1;
                                continue;
                            }
                            out.objects += 1;
                            visit(object);
                        }
                    }
                    Ok(None) => break,
                    Err(err) => {
                        tracing::warn!(kind = %out.kind, error = %err, "audit could not list a resource type");
                        out.error = Some(err.to_string());
                        return out;
                    }
                }
            }
        }
        out
    }

    /// Check every object the audit covers with `policy` and hand each verdict to
    /// `visit` with its object.
    ///
    /// ```no_run
    /// # async fn demo(audit: idp_policy::audit::Audit) -> idp_core::Result<()> {
    /// use idp_core::PolicyContext;
    /// let set = idp_policy::PolicySet::new().with_policy(idp_policy::pss::PodSecurity::baseline());
    /// let mut denied = Vec::new();
    /// audit.run(&set, &PolicyContext::new(), |object, result| {
    ///     if !result.allowed {
    ///         denied.push(object.object_ref());
    ///     }
    /// }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn run<P: Policy + ?Sized>(
        &self,
        policy: &P,
        ctx: &PolicyContext,
        mut visit: impl FnMut(&Object, &ObjectResult),
    ) -> Result<Listing> {
        self.check_each(policy, ctx, |object, result| visit(object, &result))
            .await
    }

    /// [`Audit::run`], handing the verdicts over.
    async fn check_each<P: Policy + ?Sized>(
        &self,
        policy: &P,
        ctx: &PolicyContext,
        mut visit: impl FnMut(&Object, ObjectResult),
    ) -> Result<Listing> {
        let span = tracing::info_span!("policy.audit", policy = policy.name());
        async {
            self.for_each_object(|object| {
                let mut violations = policy.evaluate(&object, ctx);
                let reference = object.object_ref();
                for v in &mut violations {
                    if v.object.is_none() {
                        v.object = Some(reference.clone());
                    }
                }
                visit(&object, ObjectResult::new(reference, violations));
            })
            .await
        }
        .instrument(span)
        .await
    }

    /// Check every object the audit covers with `policy` into a report bounded by the
    /// audit's [`ReportLimits`].
    ///
    /// ```no_run
    /// # async fn demo(audit: idp_policy::audit::Audit) -> idp_core::Result<()> {
    /// let set = idp_policy::PolicySet::new().with_policy(idp_policy::pss::PodSecurity::baseline());
    /// let found = audit.report(&set, &idp_core::PolicyContext::new()).await?;
    /// for rule in &found.report.rules {
    ///     println!("{}/{}: {} objects", rule.policy, rule.rule, rule.objects);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn report<P: Policy + ?Sized>(
        &self,
        policy: &P,
        ctx: &PolicyContext,
    ) -> Result<AuditReport> {
        let mut builder = ReportBuilder::new(self.limits);
        let listing = self
            .check_each(policy, ctx, |_, result| builder.add(result))
            .await?;
        Ok(AuditReport {
            report: builder.finish(),
            listing,
        })
    }
}

/// Every object of `kind` in the cluster; none when the cluster does not serve the kind
/// (an engine's CRDs are not installed). A kind that cannot be listed is an error.
pub(crate) async fn list_served(cluster: &Cluster, kind: GroupKind) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    match Audit::new(cluster.clone())
        .with_kinds([kind])
        .for_each_object(|o| out.push(o))
        .await
    {
        Ok(listing) => match listing.failed().next() {
            Some(failed) => Err(Error::unavailable(format!(
                "cannot list {}: {}",
                failed.kind,
                failed.error.as_deref().unwrap_or_default()
            ))),
            None => Ok(out),
        },
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Add policy objects read from a cluster one by one with `add`. Those it refuses are
/// logged (`engine` says whose policies they are) and returned as (`Kind ns/name`,
/// error), so that one broken policy does not keep the others from applying.
pub(crate) fn add_each<'a>(
    engine: &str,
    objects: impl IntoIterator<Item = &'a Object>,
    mut add: impl FnMut(&'a Object) -> Result<()>,
) -> Vec<(String, Error)> {
    let mut skipped = Vec::new();
    for object in objects {
        if let Err(e) = add(object) {
            let what = match object.namespace() {
                Some(ns) => format!("{} {ns}/{}", object.kind(), object.name()),
                None => format!("{} {}", object.kind(), object.name()),
            };
            tracing::warn!(engine, %what, error = %e.report(), "a policy in the cluster does not load; it is left out");
            skipped.push((what, e));
        }
    }
    skipped
}

/// Whether `object`'s controller (its `ownerReferences` entry with `controller: true`)
/// is of one of these group-kinds.
fn controlled_by(object: &Object, kinds: &[(&str, &str)]) -> bool {
    let Some(owners) = object
        .pointer("/metadata/ownerReferences")
        .and_then(serde_json::Value::as_array)
    else {
        return false;
    };
    owners.iter().any(|owner| {
        let field = |name: &str| owner.get(name).and_then(serde_json::Value::as_str);
        if owner.get("controller").and_then(serde_json::Value::as_bool) != Some(true) {
            return false;
        }
        let (Some(api_version), Some(kind)) = (field("apiVersion"), field("kind")) else {
            return false;
        };
        // `apps/v1` is group `apps`; `v1` is the core group.
        let group = api_version.rsplit_once('/').map_or("", |(group, _)| group);
        kinds.contains(&(group, kind))
    })
}

/// The name of the inventory idpctl and idp-server publish their reports under (in
/// the namespace each is given), so that either can take over from the other.
pub const REPORT_INVENTORY: &str = "idp-policy-reports";

/// The field manager [`publish_reports`] applies with.
pub const REPORT_FIELD_MANAGER: &str = "idp-policy-audit";

/// What [`publish_reports`] changed in the cluster.
///
/// ```
/// let p = idp_policy::audit::Published::default();
/// assert_eq!(p.written + p.unchanged + p.deleted, 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Published {
    /// Reports created or changed.
    pub written: usize,
    /// Reports that were already as given.
    pub unchanged: usize,
    /// Reports an earlier publish wrote that are gone from this one (a namespace with
    /// nothing left to report), deleted.
    pub deleted: usize,
}

/// Write `reports` (from [`PolicyReports`](crate::policy_report::PolicyReports), say
/// over an [`Audit::run`]) into the cluster, as Kyverno's reports controller keeps its
/// `PolicyReport`s: server-side applied as members of `inventory` (an ApplySet-style
/// record in its namespace), and the reports an earlier publish under the same
/// inventory wrote that are not in `reports` any more deleted. Nothing else is ever
/// deleted: only members of that inventory.
///
/// The cluster must serve the `wgpolicyk8s.io/v1alpha2` kinds (Kyverno and Policy
/// Reporter install their CRDs); otherwise the error says so.
///
/// ```no_run
/// # async fn demo(cluster: idp_core::cluster::Cluster) -> idp_core::Result<()> {
/// use idp_core::PolicyContext;
/// use idp_core::cluster::Inventory;
/// use idp_policy::{PolicySet, audit::{Audit, publish_reports}, policy_report::PolicyReports, pss::PodSecurity};
///
/// let set = PolicySet::new().with_policy(PodSecurity::baseline());
/// let ctx = PolicyContext::new();
/// let mut reports = PolicyReports::new("idp", std::time::SystemTime::now());
/// Audit::new(cluster.clone())
///     .run(&set, &ctx, |object, result| reports.add(object, result, &set.applicable_policies(object, &ctx)))
///     .await?;
/// let published = publish_reports(&cluster, Inventory::new("platform", "policy-reports")?, &reports.finish()).await?;
/// println!("{} written, {} deleted", published.written, published.deleted);
/// # Ok(()) }
/// ```
pub async fn publish_reports(
    cluster: &Cluster,
    inventory: Inventory,
    reports: &[PolicyReport],
) -> Result<Published> {
    let span = tracing::info_span!("policy.audit.publish", reports = reports.len());
    async {
        let mut set = ManifestSet::new();
        for report in reports {
            let value = serde_json::to_value(report).map_err(|e| {
                Error::internal("a policy report does not serialize").with_source(e)
            })?;
            set.push(Object::from_value(value)?);
        }
        let applier = Applier::new(cluster.clone(), inventory)
            .with_field_manager(REPORT_FIELD_MANAGER);
        let applied = applier.apply(&set).await.map_err(|e| {
            if e.kind() == ErrorKind::NotFound {
                e.context(
                    "the cluster does not serve the wgpolicyk8s.io/v1alpha2 PolicyReport kinds: install their CRDs (Kyverno and Policy Reporter ship them)",
                )
            } else {
                e
            }
        })?;
        let pruned = applier
            .prune(&set, &PruneOptions::default().allow_empty(true))
            .await?;
        Ok(Published {
            written: applied.count(ApplyOutcome::Created) + applied.count(ApplyOutcome::Configured),
            unchanged: applied.count(ApplyOutcome::Unchanged),
            deleted: pruned.deleted.len(),
        })
    }
    .instrument(span)
    .await
}
