//! Conformance suites for idp-core's ports.
//!
//! Each function takes an implementation and checks the behaviour every implementation
//! of that port must have — the same rules the shipped implementations follow — so a
//! platform team's own `Deployer`, `Catalog` or `EnvironmentProvider` can prove it is a
//! drop-in replacement. Call them from your tests; each **panics** with a message naming
//! the rule that was broken (like `assert!`).
//!
//! ```
//! use idp_testkit::{conformance, doubles::MemoryDeployer};
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! conformance::deployer(&MemoryDeployer::new(), &conformance::DeployerFixtures::default()).await;
//! # });
//! ```

use std::collections::BTreeSet;
use std::fmt::Display;

use idp_core::model::{Entity, EnvironmentSpec};
use idp_core::ports::{EntityQuery, FilterCondition, HistoryQuery};
use idp_core::{
    Catalog, CatalogExt, Deployer, DeployerExt, DeploymentId, EntityRef, EnvironmentName,
    EnvironmentProvider, ErrorKind, ManifestSet, Object, Release,
};

/// Unwrap a port result or panic with the rule being checked and the error's report.
#[track_caller]
fn must<T>(result: idp_core::Result<T>, what: impl Display) -> T {
    match result {
        Ok(v) => v,
        Err(e) => panic!(
            "conformance: {what}: unexpected error ({}): {}",
            e.kind(),
            e.report()
        ),
    }
}

/// What the [`deployer`] suite deploys.
#[derive(Debug, Clone)]
pub struct DeployerFixtures {
    /// The component deployed.
    pub component: EntityRef,
    /// The environment deployed to.
    pub environment: EnvironmentName,
    /// A second environment, which must stay independent of the first.
    pub other_environment: EnvironmentName,
    /// Three successive versions of the component's manifests.
    pub versions: [ManifestSet; 3],
}

fn config_map(namespace: &str, name: &str, version: u32) -> ManifestSet {
    let object = Object::from_value(serde_json::json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": {"version": version.to_string()}
    }))
    .unwrap_or_else(|e| panic!("fixture object: {e}"));
    std::iter::once(object).collect()
}

impl Default for DeployerFixtures {
    /// A ConfigMap `conformance` in namespace `conformance`, versions 1, 2 and 3, for
    /// component `component:default/conformance` in environments `conf-a` and `conf-b`.
    fn default() -> Self {
        Self {
            component: EntityRef::new("Component", "default", "conformance")
                .unwrap_or_else(|e| panic!("fixture ref: {e}")),
            environment: EnvironmentName::new("conf-a")
                .unwrap_or_else(|e| panic!("fixture env: {e}")),
            other_environment: EnvironmentName::new("conf-b")
                .unwrap_or_else(|e| panic!("fixture env: {e}")),
            versions: [1, 2, 3].map(|v| config_map("conformance", "conformance", v)),
        }
    }
}

/// Check a [`Deployer`]: deploy records, history is newest first and per environment,
/// `limit` is honoured, rollback to an earlier deployment creates a new newest record,
/// an unknown id is `NotFound`.
///
/// The deployer should start empty for `fixtures.component`.
pub async fn deployer(deployer: &dyn Deployer, fixtures: &DeployerFixtures) {
    let c = &fixtures.component;
    let env = &fixtures.environment;
    let mut ids: Vec<DeploymentId> = Vec::new();
    for (i, manifests) in fixtures.versions.iter().enumerate() {
        let release = Release::new(c.clone(), env.clone(), manifests.clone())
            .with_author("conformance@example.com")
            .with_source_revision(format!("rev{i}"));
        let d = must(
            deployer.deploy(&release).await,
            format!("deploy version {i}"),
        );
        assert_eq!(
            &d.component, c,
            "conformance: deployment names its component"
        );
        assert_eq!(
            &d.environment, env,
            "conformance: deployment names its environment"
        );
        assert!(
            !d.id.as_str().is_empty(),
            "conformance: deployment id is empty"
        );
        assert!(
            !ids.contains(&d.id),
            "conformance: deployment id {} was reused",
            d.id
        );
        ids.push(d.id);
    }

    let history = must(
        deployer
            .history(&HistoryQuery::new(c.clone(), env.clone()))
            .await,
        "history",
    );
    let got: Vec<_> = history.iter().map(|d| d.id.clone()).collect();
    let want: Vec<_> = ids.iter().rev().cloned().collect();
    assert_eq!(
        got, want,
        "conformance: history lists every deployment, newest first"
    );
    assert_eq!(
        history[0].source_revision.as_deref(),
        Some("rev2"),
        "conformance: history keeps the source revision"
    );

    let limited = must(
        deployer
            .history(&HistoryQuery::new(c.clone(), env.clone()).limit(2))
            .await,
        "history with limit",
    );
    assert_eq!(limited.len(), 2, "conformance: history honours limit");

    let other = must(
        deployer
            .history(&HistoryQuery::new(
                c.clone(),
                fixtures.other_environment.clone(),
            ))
            .await,
        "history of another environment",
    );
    assert!(
        other.is_empty(),
        "conformance: environments are independent"
    );

    let rolled = must(
        deployer.rollback(c, env, &ids[0]).await,
        "rollback to the first deployment",
    );
    assert!(
        !ids.contains(&rolled.id),
        "conformance: a rollback is a new deployment record"
    );
    let current = must(deployer.current(c, env).await, "current after rollback");
    assert_eq!(
        current.map(|d| d.id),
        Some(rolled.id),
        "conformance: the rollback is the newest deployment"
    );

    let missing = deployer
        .rollback(c, env, &DeploymentId::new("no-such-deployment"))
        .await;
    match missing {
        Err(e) => assert_eq!(
            e.kind(),
            ErrorKind::NotFound,
            "conformance: rollback to an unknown id is NotFound, got {}",
            e.report()
        ),
        Ok(d) => panic!("conformance: rollback to an unknown id succeeded: {}", d.id),
    }
}

/// A Component or API entity that Backstage's validation accepts.
fn entity(kind: &str, name: &str, spec_type: &str) -> Entity {
    let mut spec = serde_json::json!({
        "type": spec_type, "owner": "group:conformance/team", "lifecycle": "production"
    });
    if kind == "API" {
        spec["definition"] = serde_json::json!("openapi: 3.0.0");
    }
    Entity::from_value(serde_json::json!({
        "apiVersion": "backstage.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name, "namespace": "conformance"},
        "spec": spec
    }))
    .unwrap_or_else(|e| panic!("fixture entity: {e}"))
}

/// Check a [`Catalog`]: upsert then get (case-insensitively), replace on upsert, remove
/// once, filters (AND within a group, OR across groups), and cursor paging that visits
/// every match exactly once with a correct total.
///
/// The catalog should start with no entities in namespace `conformance`.
pub async fn catalog(catalog: &dyn Catalog) {
    let n = 25;
    for i in 0..n {
        let kind = if i % 5 == 0 { "API" } else { "Component" };
        let spec_type = if i % 2 == 0 { "service" } else { "website" };
        must(
            catalog
                .upsert(entity(kind, &format!("e{i:02}"), spec_type))
                .await,
            "upsert",
        );
    }
    let r: EntityRef = must(
        EntityRef::parse_with_defaults("COMPONENT:Conformance/E01", None, "default"),
        "ref",
    );
    let got = must(catalog.get(&r).await, "get");
    assert!(
        got.is_some_and(|e| e.name() == "e01"),
        "conformance: get is case-insensitive on kind, namespace and name"
    );

    must(
        catalog.upsert(entity("Component", "e01", "library")).await,
        "upsert again",
    );
    let replaced = must(catalog.require(&r).await, "get after replace");
    assert_eq!(
        replaced.spec_str("type"),
        Some("library"),
        "conformance: upsert replaces"
    );

    let in_ns = FilterCondition::equals("metadata.namespace", "conformance");
    let q = EntityQuery::new().any_of(vec![
        in_ns.clone(),
        FilterCondition::equals("kind", "component"),
        FilterCondition::equals("spec.type", "service"),
    ]);
    let services = must(catalog.query_all(&q).await, "filtered query");
    // Components are the i % 5 != 0; services i % 2 == 0 (e01 became a library).
    let expected = (0..n).filter(|i| i % 5 != 0 && i % 2 == 0).count();
    assert_eq!(
        services.len(),
        expected,
        "conformance: conditions in one group are ANDed"
    );

    let either = EntityQuery::new()
        .any_of(vec![in_ns.clone(), FilterCondition::equals("kind", "api")])
        .any_of(vec![
            in_ns.clone(),
            FilterCondition::equals("spec.type", "library"),
        ]);
    let found = must(catalog.query_all(&either).await, "OR query");
    assert_eq!(found.len(), 5 + 1, "conformance: groups are ORed");

    let all = EntityQuery::new().any_of(vec![in_ns.clone()]).limit(7);
    let mut seen = BTreeSet::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut q = all.clone();
        q.cursor.clone_from(&cursor);
        let page = must(catalog.query(&q).await, "paged query");
        assert_eq!(page.total, n, "conformance: total counts every match");
        assert!(page.entities.len() <= 7, "conformance: page honours limit");
        for e in &page.entities {
            assert!(
                seen.insert(e.entity_ref().key()),
                "conformance: {} returned twice while paging",
                e.entity_ref()
            );
        }
        pages += 1;
        assert!(pages <= n, "conformance: paging does not end");
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), n, "conformance: paging visits every match");

    assert!(
        must(catalog.remove(&r).await, "remove"),
        "conformance: remove of a present entity returns true"
    );
    assert!(
        !must(catalog.remove(&r).await, "remove again"),
        "conformance: remove of an absent entity returns false"
    );
    assert!(
        must(catalog.get(&r).await, "get after remove").is_none(),
        "conformance: a removed entity is gone"
    );
}

/// Check an [`EnvironmentProvider`]: `ensure` is idempotent and returns the environment
/// with its labels, `list` shows it once, `destroy` returns true once and then false,
/// and destroying one environment leaves the others.
///
/// The provider should start without environments named `conf-env-1` or `conf-env-2`.
pub async fn environment_provider(provider: &dyn EnvironmentProvider) {
    let name = |s: &str| must(EnvironmentName::new(s), "fixture name");
    let spec = EnvironmentSpec::new(name("conf-env-1")).with_label("idp.dev/conformance", "yes");
    let first = must(provider.ensure(&spec).await, "ensure");
    assert_eq!(
        first.name, spec.name,
        "conformance: ensure returns the environment"
    );
    assert_eq!(
        first.labels.get("idp.dev/conformance").map(String::as_str),
        Some("yes"),
        "conformance: ensure keeps the spec's labels"
    );
    let again = must(provider.ensure(&spec).await, "ensure again");
    assert_eq!(again.name, first.name, "conformance: ensure is idempotent");
    must(
        provider
            .ensure(&EnvironmentSpec::new(name("conf-env-2")))
            .await,
        "ensure a second environment",
    );

    let listed = must(provider.list().await, "list");
    let count = listed.iter().filter(|e| e.name == spec.name).count();
    assert_eq!(
        count, 1,
        "conformance: list shows an ensured environment once"
    );

    assert!(
        must(provider.destroy(&spec.name).await, "destroy"),
        "conformance: destroy of an existing environment returns true"
    );
    assert!(
        !must(provider.destroy(&spec.name).await, "destroy again"),
        "conformance: destroy of a missing environment returns false"
    );
    let listed = must(provider.list().await, "list after destroy");
    assert!(
        listed.iter().all(|e| e.name != spec.name),
        "conformance: a destroyed environment is not listed"
    );
    assert!(
        listed.iter().any(|e| e.name.as_str() == "conf-env-2"),
        "conformance: destroying one environment leaves the others"
    );
    must(provider.destroy(&name("conf-env-2")).await, "cleanup");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doubles::{MapCatalog, MemoryDeployer, MemoryEnvironments};

    #[tokio::test]
    async fn doubles_pass_their_suites() {
        deployer(&MemoryDeployer::new(), &DeployerFixtures::default()).await;
        catalog(&MapCatalog::new()).await;
        environment_provider(&MemoryEnvironments::new()).await;
    }

    #[tokio::test]
    async fn rollback_restores_content_in_memory_deployer() {
        let d = MemoryDeployer::new();
        let f = DeployerFixtures::default();
        deployer(&d, &f).await;
        let now = d.manifests(&f.component, &f.environment).unwrap();
        assert_eq!(
            now, f.versions[0],
            "rollback to the first restores version 1"
        );
    }

    #[derive(Debug, Default)]
    struct ForgetfulDeployer(MemoryDeployer);

    #[async_trait::async_trait]
    impl Deployer for ForgetfulDeployer {
        async fn deploy(&self, r: &Release) -> idp_core::Result<idp_core::Deployment> {
            self.0.deploy(r).await
        }
        async fn history(&self, q: &HistoryQuery) -> idp_core::Result<Vec<idp_core::Deployment>> {
            // Oldest first: wrong order.
            let mut h = self.0.history(q).await?;
            h.reverse();
            Ok(h)
        }
        async fn rollback(
            &self,
            c: &EntityRef,
            e: &EnvironmentName,
            to: &DeploymentId,
        ) -> idp_core::Result<idp_core::Deployment> {
            self.0.rollback(c, e, to).await
        }
    }

    #[tokio::test]
    #[should_panic(expected = "newest first")]
    async fn suite_catches_wrong_history_order() {
        deployer(&ForgetfulDeployer::default(), &DeployerFixtures::default()).await;
    }
}
