//! `idp_policy::audit` against idp-testkit's in-process API server, through the real
//! `kube::Client`: what already runs is listed page by page and checked.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use idp_core::cluster::{Cluster, GroupKind, RetryPolicy};
use idp_core::{ErrorKind, PolicyContext};
use idp_policy::audit::Audit;
use idp_policy::{PolicySet, guardrails, pss::PodSecurity};
use idp_testkit::{FakeCluster, Fault, Verb};
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use serde_json::{Value, json};

async fn cluster() -> FakeCluster {
    FakeCluster::builder()
        .rollout_simulation(false)
        .namespace("shop")
        .start()
        .await
        .unwrap()
}

async fn create(cluster: &FakeCluster, value: Value) {
    cluster.create(value).await.unwrap();
}

fn pod(namespace: &str, name: &str, privileged: bool) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": namespace},
        "spec": {"containers": [{"name": "app", "image": "ghcr.io/acme/app:1.0",
            "securityContext": {"privileged": privileged}}]}})
}

fn deployment(namespace: &str, name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"hostNetwork": true, "containers": [{"name": "app", "image": "ghcr.io/acme/app:1.0"}]}}}})
}

/// 7 Pods in `shop` (every third privileged), a Deployment on the host network, and a
/// privileged Pod in kube-system.
async fn seeded() -> FakeCluster {
    let c = cluster().await;
    for i in 0..7 {
        create(&c, pod("shop", &format!("web-{i}"), i % 3 == 0)).await;
    }
    create(&c, deployment("shop", "cart")).await;
    create(&c, pod("kube-system", "kube-proxy", true)).await;
    c
}

fn baseline() -> PolicySet {
    PolicySet::new().with_policy(PodSecurity::baseline())
}

#[tokio::test]
async fn an_audit_reads_every_kind_page_by_page_and_checks_what_runs() {
    let c = seeded().await;
    c.reset_counters();
    let audit = Audit::new(Cluster::new(c.client()))
        .with_page_size(2)
        .excluding_namespaces(["kube-system"]);
    let found = audit
        .report(&baseline(), &PolicyContext::new())
        .await
        .unwrap();

    // web-0, web-3, web-6 and the Deployment; kube-proxy is in an excluded namespace.
    assert_eq!(found.report.denied, 4, "{:#?}", found.report.objects);
    let mut denied: Vec<String> = found
        .report
        .objects
        .iter()
        .map(|o| o.object.name.clone())
        .collect();
    denied.sort();
    assert_eq!(denied, ["cart", "web-0", "web-3", "web-6"]);
    let rules: Vec<(&str, u64)> = found
        .report
        .rules
        .iter()
        .map(|r| (r.rule.as_str(), r.objects))
        .collect();
    assert!(rules.contains(&("privileged", 3)), "{rules:?}");
    assert!(rules.contains(&("hostNamespaces", 1)), "{rules:?}");
    // The Deployment's violation points into its template.
    let host = found
        .report
        .sample
        .iter()
        .find(|v| v.rule == "hostNamespaces")
        .unwrap();
    assert_eq!(host.path.as_deref(), Some("spec.template.spec.hostNetwork"));
    assert_eq!(host.object.as_ref().unwrap().kind, "Deployment");

    // Every listable kind was read, Events were not, and nothing failed.
    let pods = found
        .listing
        .kinds
        .iter()
        .find(|k| k.kind == "Pod")
        .unwrap();
    assert_eq!(pods.objects, 7);
    assert!(
        found
            .listing
            .kinds
            .iter()
            .any(|k| k.kind == "Deployment.apps")
    );
    assert!(found.listing.kinds.iter().any(|k| k.kind == "Namespace"));
    assert!(
        !found
            .listing
            .kinds
            .iter()
            .any(|k| k.kind.starts_with("Event"))
    );
    assert_eq!(found.listing.failed().count(), 0, "{:?}", found.listing);
    // The kube-system Namespace object is excluded with its contents.
    let namespaces = found
        .listing
        .kinds
        .iter()
        .find(|k| k.kind == "Namespace")
        .unwrap();
    let all_namespaces = c.objects("", "namespaces", None).len() as u64;
    assert_eq!(namespaces.objects, all_namespaces - 1);

    // 8 Pods (kube-proxy is listed, then left out) in pages of 2: 4 list requests.
    let pod_lists = c
        .requests()
        .count(|r| r.verb == Verb::List && r.resource == "pods");
    assert_eq!(pod_lists, 4);
}

#[tokio::test]
async fn an_audit_checks_the_objects_as_the_server_stores_them() {
    let c = seeded().await;
    // RequireLabels sees the labels the live object has, not a manifest's.
    let set = PolicySet::new().with_policy(guardrails::RequireLabels::new(["team"]));
    let audit =
        Audit::new(Cluster::new(c.client())).with_kinds([GroupKind::new("apps", "Deployment")]);
    let mut seen = Vec::new();
    let listing = audit
        .run(&set, &PolicyContext::new(), |object, result| {
            assert!(
                object
                    .pointer("/metadata/uid")
                    .is_some_and(Value::is_string),
                "a live object"
            );
            seen.push((object.name().to_owned(), result.violations.len()));
        })
        .await
        .unwrap();
    assert_eq!(seen, [("cart".to_owned(), 1)]);
    assert_eq!(listing.objects(), 1);
    assert_eq!(listing.kinds.len(), 1);
}

#[tokio::test]
async fn a_kind_that_cannot_be_listed_is_recorded_and_the_audit_goes_on() {
    let c = seeded().await;
    c.faults()
        .inject(Fault::status(403).verb(Verb::List).resource("secrets"));
    // A pattern, as in Gatekeeper's exclusions.
    let audit = Audit::new(Cluster::new(c.client()).with_retry(RetryPolicy::none()))
        .excluding_namespaces(["kube-*"]);
    let found = audit
        .report(&baseline(), &PolicyContext::new())
        .await
        .unwrap();
    let failed: Vec<_> = found.listing.failed().collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].kind, "Secret");
    let error = failed[0].error.as_deref().unwrap();
    assert!(error.contains("secrets"), "{error}");
    // The rest was still audited.
    assert_eq!(found.report.denied, 4);
}

#[tokio::test]
async fn only_the_namespaces_and_kinds_asked_for() {
    let c = seeded().await;
    let cluster = Cluster::new(c.client());
    let audit = Audit::new(cluster.clone()).with_namespaces(["kube-system"]);
    let found = audit
        .report(&baseline(), &PolicyContext::new())
        .await
        .unwrap();
    assert_eq!(found.report.denied, 1);
    assert_eq!(found.report.objects[0].object.name, "kube-proxy");
    // Cluster-scoped kinds are outside the namespaces asked for.
    assert!(!found.listing.kinds.iter().any(|k| k.kind == "Namespace"));

    let err = Audit::new(cluster.clone())
        .with_kinds(["Widget.example.com".parse().unwrap()])
        .report(&baseline(), &PolicyContext::new())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    assert!(err.to_string().contains("Widget.example.com"), "{err}");

    let audit = Audit::new(cluster)
        .with_kinds([GroupKind::new("", "Pod")])
        .with_namespaces(["shop"]);
    let found = audit
        .report(&baseline(), &PolicyContext::new())
        .await
        .unwrap();
    assert_eq!((found.report.objects_checked, found.report.denied), (7, 3));
}

#[tokio::test]
async fn an_api_group_that_cannot_be_discovered_is_recorded_and_the_audit_goes_on() {
    let c = seeded().await;
    // As an aggregated API whose service is down answers: 503 for its discovery.
    // (kube's own retry layer would wait minutes here; the client leaves retries to
    // the `Cluster`'s policy, which says none.)
    c.faults().inject(Fault::status(503).path("/apis/apps"));
    let audit = Audit::new(Cluster::new(c.client()).with_retry(RetryPolicy::none()))
        .excluding_namespaces(["kube-system"]);
    let found = audit
        .report(&baseline(), &PolicyContext::new())
        .await
        .unwrap();
    let failed: Vec<_> = found.listing.failed().collect();
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert_eq!(failed[0].kind, "apps/v1 (every kind)");
    assert!(
        !found
            .listing
            .kinds
            .iter()
            .any(|k| k.kind == "Deployment.apps")
    );
    // The Pods were still audited; the Deployment could not be.
    assert_eq!(found.report.denied, 3);
}

/// A Kyverno ClusterPolicy and a Kyverno ValidatingPolicy each requiring a `team` label
/// on Pods, one of each kept out of background scans.
#[cfg(feature = "cel")]
const TEAM: &str = r"apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: team-cel}
spec:
  validationActions: [Deny]
  matchConstraints:
    resourceRules: [{apiGroups: [''], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]
  validations:
    - expression: has(object.metadata.labels) && 'team' in object.metadata.labels
      message: a team label is required
---
apiVersion: policies.kyverno.io/v1
kind: ValidatingPolicy
metadata: {name: team-cel-admission-only}
spec:
  validationActions: [Deny]
  evaluation: {background: {enabled: false}}
  matchConstraints:
    resourceRules: [{apiGroups: [''], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [pods]}]
  validations:
    - expression: has(object.metadata.labels) && 'team' in object.metadata.labels
      message: a team label is required
";

const TEAM_KYVERNO: &str = r"apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: team}
spec:
  validationFailureAction: Enforce
  rules:
    - name: has-team
      match: {any: [{resources: {kinds: [Pod]}}]}
      validate: {message: a team label is required, pattern: {metadata: {labels: {team: '?*'}}}}
---
apiVersion: kyverno.io/v1
kind: ClusterPolicy
metadata: {name: team-admission-only}
spec:
  validationFailureAction: Enforce
  background: false
  rules:
    - name: has-team
      match: {any: [{resources: {kinds: [Pod]}}]}
      validate: {message: a team label is required, pattern: {metadata: {labels: {team: '?*'}}}}
";

#[tokio::test]
async fn policies_kept_out_of_background_scans_are_not_audited() {
    use std::sync::Arc;

    use idp_policy::kyverno::{KyvernoPolicy, ValidateRules};

    let c = seeded().await;
    let audit = Audit::new(Cluster::new(c.client()))
        .with_kinds([GroupKind::new("", "Pod")])
        .with_namespaces(["shop"]);
    let kyverno = Arc::new(KyvernoPolicy::from_yaml("kyverno", TEAM_KYVERNO, None).unwrap());
    let policies = |report: &idp_policy::report::Report| -> Vec<String> {
        report.rules.iter().map(|r| r.rule.clone()).collect()
    };
    // As at admission, both policies; as a background scan, only the first.
    let all = audit
        .report(&ValidateRules::new(kyverno.clone()), &PolicyContext::new())
        .await
        .unwrap();
    assert_eq!(
        policies(&all.report),
        ["team-admission-only/has-team", "team/has-team"]
    );
    let scanned = audit
        .report(&ValidateRules::background(kyverno), &PolicyContext::new())
        .await
        .unwrap();
    assert_eq!(policies(&scanned.report), ["team/has-team"]);
    assert_eq!(scanned.report.denied, 7);

    #[cfg(feature = "cel")]
    {
        use idp_policy::cel::CelPolicy;
        let cel = CelPolicy::from_yaml("cel", TEAM, None).unwrap();
        let all = audit.report(&cel, &PolicyContext::new()).await.unwrap();
        assert_eq!(all.report.rules.len(), 2, "{:?}", all.report.rules);
        let scanned = audit
            .report(&cel.for_background(), &PolicyContext::new())
            .await
            .unwrap();
        let rules: Vec<&str> = scanned
            .report
            .rules
            .iter()
            .map(|r| r.rule.as_str())
            .collect();
        assert_eq!(rules.len(), 1, "{rules:?}");
        assert!(rules[0].starts_with("team-cel/"), "{rules:?}");
    }
}

#[test]
fn a_background_setting_that_is_not_a_boolean_is_refused() {
    let err = idp_policy::kyverno::KyvernoPolicy::from_yaml(
        "kyverno",
        &TEAM_KYVERNO.replace("background: false", "background: sometimes"),
        Some(std::path::Path::new("team.yaml")),
    )
    .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("spec.background") && text.contains("team.yaml"),
        "{text}"
    );
}

async fn install_report_crds(c: &FakeCluster) {
    for crd in idp_testkit::policy_report_crds() {
        create(c, crd).await;
    }
}

/// The reports of an audit of `c`'s Pods with PSS baseline.
async fn audited_reports(c: &FakeCluster) -> Vec<idp_policy::policy_report::PolicyReport> {
    audited_reports_laid_out(c, idp_policy::policy_report::ReportLayout::PerNamespace).await
}

/// [`audited_reports`], laid out as `layout` says.
async fn audited_reports_laid_out(
    c: &FakeCluster,
    layout: idp_policy::policy_report::ReportLayout,
) -> Vec<idp_policy::policy_report::PolicyReport> {
    let set = baseline();
    let ctx = PolicyContext::new();
    let mut reports =
        idp_policy::policy_report::PolicyReports::new("idp", std::time::SystemTime::UNIX_EPOCH)
            .with_layout(layout);
    Audit::new(Cluster::new(c.client()))
        .with_kinds([GroupKind::new("", "Pod")])
        .run(&set, &ctx, |object, result| {
            reports.add(object, result, &set.applicable_policies(object, &ctx));
        })
        .await
        .unwrap();
    reports.finish()
}

#[tokio::test]
async fn published_reports_are_kept_up_to_date_and_only_ours_are_deleted() {
    use idp_core::cluster::Inventory;
    use idp_policy::audit::publish_reports;

    let c = seeded().await;
    let cluster = Cluster::new(c.client());
    let inventory = Inventory::new("default", "policy-reports").unwrap();

    // Without the CRDs, the error says what to install.
    let err = publish_reports(&cluster, inventory.clone(), &audited_reports(&c).await)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("install their CRDs"), "{err}");

    install_report_crds(&c).await;
    create(
        &c,
        json!({"apiVersion": "wgpolicyk8s.io/v1alpha2", "kind": "PolicyReport",
        "metadata": {"name": "someone-else", "namespace": "kube-system"}, "results": []}),
    )
    .await;
    let published = publish_reports(&cluster, inventory.clone(), &audited_reports(&c).await)
        .await
        .unwrap();
    assert_eq!(
        (published.written, published.deleted),
        (2, 0),
        "shop and kube-system"
    );
    let shop = c
        .object("wgpolicyk8s.io", "policyreports", "shop", "idp-policy")
        .unwrap();
    assert_eq!(shop["summary"]["fail"], 3, "{shop}");

    // kube-system's Pod goes; its report goes with the next publish, the other stays.
    let api: Api<DynamicObject> = Api::namespaced_with(
        c.client(),
        "kube-system",
        &ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk("", "v1", "Pod")),
    );
    api.delete("kube-proxy", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    let published = publish_reports(&cluster, inventory, &audited_reports(&c).await)
        .await
        .unwrap();
    assert_eq!(published.deleted, 1);
    assert!(
        c.object(
            "wgpolicyk8s.io",
            "policyreports",
            "kube-system",
            "idp-policy"
        )
        .is_none()
    );
    assert!(
        c.object(
            "wgpolicyk8s.io",
            "policyreports",
            "kube-system",
            "someone-else"
        )
        .is_some()
    );
    assert!(
        c.object("wgpolicyk8s.io", "policyreports", "shop", "idp-policy")
            .is_some()
    );
}

#[tokio::test]
async fn per_resource_reports_go_with_their_object_and_are_pruned_when_it_passes() {
    use idp_core::cluster::Inventory;
    use idp_policy::audit::publish_reports;
    use idp_policy::policy_report::ReportLayout;

    let c = seeded().await;
    install_report_crds(&c).await;
    let cluster = Cluster::new(c.client());
    let inventory = Inventory::new("default", "policy-reports").unwrap();
    let audit = || audited_reports_laid_out(&c, ReportLayout::PerResource);
    let reports = audit().await;
    assert_eq!(reports.len(), 8, "7 Pods in shop and kube-proxy");
    let published = publish_reports(&cluster, inventory.clone(), &reports)
        .await
        .unwrap();
    assert_eq!((published.written, published.deleted), (8, 0));

    let pods: Api<DynamicObject> = Api::namespaced_with(
        c.client(),
        "shop",
        &ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk("", "v1", "Pod")),
    );
    let web0 = pods.get("web-0").await.unwrap();
    let uid = web0.metadata.uid.clone().unwrap();
    let stored = c
        .object("wgpolicyk8s.io", "policyreports", "shop", &uid)
        .unwrap();
    assert_eq!(stored["scope"]["name"], "web-0");
    assert_eq!(
        stored["metadata"]["ownerReferences"][0]["uid"],
        uid.as_str()
    );
    assert_eq!(stored["summary"]["fail"], 1, "{stored}");

    // Deleting the Pod deletes its report at once, by the garbage collector.
    pods.delete("web-0", &kube::api::DeleteParams::default())
        .await
        .unwrap();
    assert!(
        c.object("wgpolicyk8s.io", "policyreports", "shop", &uid)
            .is_none()
    );

    // A report the next publish leaves out (as when kube-system is excluded from then
    // on) is pruned; the others are unchanged.
    let system: Api<DynamicObject> = Api::namespaced_with(
        c.client(),
        "kube-system",
        &ApiResource::from_gvk(&kube::api::GroupVersionKind::gvk("", "v1", "Pod")),
    );
    let proxy_uid = system
        .get("kube-proxy")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    let mut without_proxy = audit().await;
    without_proxy.retain(|r| r.metadata.name != proxy_uid);
    let published = publish_reports(&cluster, inventory, &without_proxy)
        .await
        .unwrap();
    assert_eq!(published.deleted, 1, "{published:?}");
    assert_eq!(published.unchanged, 6, "{published:?}");
    assert!(
        c.object("wgpolicyk8s.io", "policyreports", "kube-system", &proxy_uid)
            .is_none()
    );
}

/// `value` with an `ownerReferences` entry naming `owner` (controller or not).
fn owned_by(mut value: Value, owner: &Value, controller: bool) -> Value {
    value["metadata"]["ownerReferences"] = json!([{
        "apiVersion": owner["apiVersion"], "kind": owner["kind"],
        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
        "controller": controller}]);
    value
}

#[tokio::test]
async fn objects_made_by_a_controller_that_is_read_can_be_left_to_it() {
    let c = cluster().await;
    let cart = c.create(deployment("shop", "cart")).await.unwrap();
    let mut rs = deployment("shop", "cart-5d8f");
    rs["kind"] = json!("ReplicaSet");
    let rs = c.create(owned_by(rs, &cart, true)).await.unwrap();
    // The ReplicaSet's Pod, privileged as its template is not (a webhook added it).
    create(&c, owned_by(pod("shop", "cart-5d8f-x1", true), &rs, true)).await;
    // A Pod whose controller is a kind not read (an operator's), and one whose owner
    // is not its controller: both checked.
    let rollout = json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
        "metadata": {"name": "web", "uid": "9a1b2c3d-0000-4000-8000-000000000001"}});
    create(&c, owned_by(pod("shop", "web-7c9d", true), &rollout, true)).await;
    create(&c, owned_by(pod("shop", "web-adopted", true), &rs, false)).await;

    let kinds = [
        GroupKind::new("apps", "Deployment"),
        GroupKind::new("apps", "ReplicaSet"),
        GroupKind::new("", "Pod"),
    ];
    let checked = |audit: Audit| async move {
        let mut names = Vec::new();
        let listing = audit
            .run(&baseline(), &PolicyContext::new(), |object, _| {
                names.push(object.name().to_owned());
            })
            .await
            .unwrap();
        names.sort();
        (names, listing)
    };

    let all = Audit::new(Cluster::new(c.client())).with_kinds(kinds.clone());
    let (names, _) = checked(all).await;
    assert_eq!(names.len(), 5, "{names:?}");

    let skipping = Audit::new(Cluster::new(c.client()))
        .with_kinds(kinds.clone())
        .skipping_controlled(true);
    let (names, listing) = checked(skipping).await;
    assert_eq!(names, ["cart", "web-7c9d", "web-adopted"]);
    let controlled: Vec<(&str, u64, u64)> = listing
        .kinds
        .iter()
        .map(|k| (k.kind.as_str(), k.objects, k.controlled))
        .collect();
    assert_eq!(
        controlled,
        [
            ("Deployment.apps", 1, 0),
            ("ReplicaSet.apps", 0, 1),
            ("Pod", 2, 1)
        ]
    );

    // Without the Deployments read, the ReplicaSet is checked (its Pod still is not).
    let without_deployments = Audit::new(Cluster::new(c.client()))
        .with_kinds(kinds[1..].to_vec())
        .skipping_controlled(true);
    let (names, _) = checked(without_deployments).await;
    assert_eq!(names, ["cart-5d8f", "web-7c9d", "web-adopted"]);
}

/// Against a real cluster: every kind it serves is read (aggregated APIs that are down
/// are recorded, not fatal), and the Pods are checked.
#[tokio::test]
#[ignore = "needs a real cluster: set IDP_E2E_KUBECONFIG"]
async fn e2e_an_audit_of_a_real_cluster() {
    let Some(path) = std::env::var_os("IDP_E2E_KUBECONFIG") else {
        eprintln!("skipped: IDP_E2E_KUBECONFIG is not set");
        return;
    };
    let client = idp_core::cluster::client_from_kubeconfig(Some(path.as_ref()))
        .await
        .unwrap();
    let found = Audit::new(Cluster::new(client))
        .report(&baseline(), &PolicyContext::new())
        .await
        .unwrap();
    for kind in found.listing.failed() {
        eprintln!("not audited: {}: {:?}", kind.kind, kind.error);
    }
    let pods = found
        .listing
        .kinds
        .iter()
        .find(|k| k.kind == "Pod")
        .unwrap();
    assert!(pods.error.is_none() && pods.objects > 0, "{pods:?}");
    assert!(found.report.objects_checked >= pods.objects);
}
