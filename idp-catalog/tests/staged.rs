//! Staged ingestion: entities validated as they are read ([`Stage`]) and committed at
//! once, and what a commit does when the catalog moved on in between.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use idp_catalog::provider::{EntityProvider, FileProvider, ProviderOutput, refresh};
use idp_catalog::{EntityInput, InMemoryCatalog, IngestReport, Mutation, StagedMutation};
use idp_core::{EntityRef, ports::EntityQuery};
use serde_json::{Value, json};

fn r(s: &str) -> EntityRef {
    s.parse().unwrap()
}

fn group(name: &str) -> Value {
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group",
           "metadata": {"name": name}, "spec": {"type": "team", "children": []}})
}

fn component(name: &str, owner: &str) -> Value {
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
           "metadata": {"name": name},
           "spec": {"type": "service", "lifecycle": "production", "owner": owner}})
}

/// Every entity of the catalog with its JSON text (relations included).
fn contents(c: &InMemoryCatalog) -> Vec<(String, String)> {
    let s = c.snapshot();
    let mut out: Vec<(String, String)> = s
        .refs(&EntityQuery::new())
        .into_iter()
        .map(|r| {
            let value = s.get(&r).unwrap().to_value().to_string();
            (r.to_string(), value)
        })
        .collect();
    out.sort();
    out
}

fn sorted(refs: &[EntityRef]) -> Vec<String> {
    let mut v: Vec<String> = refs.iter().map(ToString::to_string).collect();
    v.sort();
    v
}

/// The parts of two reports that must agree, order included where the catalog
/// defines it (rejections and warnings follow the files and documents).
fn same_report(a: &IngestReport, b: &IngestReport) {
    assert_eq!(sorted(&a.added), sorted(&b.added));
    assert_eq!(sorted(&a.updated), sorted(&b.updated));
    assert_eq!(sorted(&a.removed), sorted(&b.removed));
    assert_eq!(a.unchanged, b.unchanged);
    assert_eq!(a.rejected, b.rejected);
    assert_eq!(a.warnings, b.warnings);
    let dangling = |r: &IngestReport| {
        let mut d: Vec<String> = r.dangling.iter().map(ToString::to_string).collect();
        d.sort();
        d
    };
    assert_eq!(dangling(a), dangling(b));
}

/// A generated organisation plus the awkward cases: placeholders, a Location with a URL
/// target and no URL reader (a warning), a duplicate, a Location to a missing file, a
/// placeholder that escapes the directory, and a file whose second document is not YAML.
fn awkward_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    idp_catalog::generate::write_org(dir.path(), 3_000, 9).unwrap();
    let extra = dir.path().join("extra");
    std::fs::create_dir_all(&extra).unwrap();
    std::fs::write(extra.join("README.md"), "The payments ledger.\n").unwrap();
    std::fs::write(
        extra.join("catalog-info.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: ledger\n  description:\n    $text: ./README.md\nspec: {type: service, lifecycle: production, owner: ledger-team}\n\
         ---\napiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: remote}\nspec:\n  targets: [https://git.example/org/catalog-info.yaml, ./missing.yaml]\n\
         ---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: ledger\nspec: {type: website, lifecycle: production, owner: ledger-team}\n\
         ---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: escapes\n  description:\n    $text: ../../etc/passwd\nspec: {type: service, lifecycle: production, owner: ledger-team}\n\
         ---\napiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata: {name: Not_Valid!}\nspec: {type: service, lifecycle: production, owner: ledger-team}\n",
    )
    .unwrap();
    let broken = dir.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    std::fs::write(
        broken.join("catalog-info.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: kept-out}\nspec: {type: team, children: []}\n---\nkind: [unclosed\n",
    )
    .unwrap();
    dir
}

#[tokio::test]
async fn streamed_refresh_reads_exactly_like_read_then_apply() {
    let dir = awkward_tree();
    let provider = FileProvider::new("local", dir.path());

    let streamed = InMemoryCatalog::new();
    let a = refresh(&streamed, &provider).await.unwrap();

    let plain = InMemoryCatalog::new();
    let out = provider.read().await.unwrap();
    let mut b = plain.apply("local", out.mutation);
    b.rejected.splice(0..0, out.rejected);

    same_report(&a, &b);
    assert_eq!(contents(&streamed), contents(&plain));

    // The awkward cases came through as they should.
    let snap = streamed.snapshot();
    let ledger = snap.get(&r("component:default/ledger")).unwrap().to_value();
    assert_eq!(ledger["metadata"]["description"], "The payments ledger.\n");
    assert_eq!(
        ledger["spec"]["type"], "service",
        "the first definition wins"
    );
    assert!(
        !snap.contains(&r("group:default/kept-out")),
        "a YAML error fails its whole file"
    );
    let problems: Vec<String> = a.rejected.iter().map(ToString::to_string).collect();
    let has = |needle: &str| problems.iter().any(|p| p.contains(needle));
    assert!(has("broken/catalog-info.yaml"), "{problems:#?}");
    assert!(has("defined twice"), "{problems:#?}");
    assert!(has("missing.yaml"), "{problems:#?}");
    assert!(has("escapes") || has("passwd"), "{problems:#?}");
    assert!(has("Not_Valid!"), "{problems:#?}");
    assert!(
        a.warnings.iter().any(|w| w.contains("no UrlReader")),
        "{:?}",
        a.warnings
    );
    assert_eq!(
        snap.len(),
        3_000 + 1 + 2,
        "the org, its root Location, ledger and remote"
    );

    // A second refresh finds nothing changed, streamed or not.
    let again = refresh(&streamed, &provider).await.unwrap();
    assert!(again.added.is_empty() && again.updated.is_empty() && again.removed.is_empty());
    assert_eq!(again.unchanged, snap.len());
}

#[test]
fn a_commit_rechecks_what_changed_since_staging() {
    let catalog = InMemoryCatalog::new();
    let first = catalog.apply(
        "p",
        Mutation::Full(vec![
            EntityInput::new(group("kept")),
            EntityInput::new(group("dropped")),
        ]),
    );
    assert_eq!(first.added.len(), 2);

    let stage = catalog.stage("p");
    let staged = stage.prepare_all(vec![
        // Unchanged when staged, then removed by another mutation: it must come back.
        EntityInput::new(group("dropped")),
        // Unchanged when staged, and still unchanged.
        EntityInput::new(group("kept")),
        // New when staged, then claimed by another provider: a conflict.
        EntityInput::new(component("claimed", "kept").clone()),
        // New when staged, then written identically by this provider: unchanged.
        EntityInput::new(component("twin", "kept")),
        // New, and still new.
        EntityInput::new(component("fresh", "kept")),
    ]);
    assert!(staged.iter().all(|s| !s.is_rejected()));

    let meanwhile = catalog.apply(
        "p",
        Mutation::Delta {
            upserts: vec![EntityInput::new(component("twin", "kept"))],
            removals: vec![r("group:default/dropped")],
        },
    );
    assert_eq!((meanwhile.added.len(), meanwhile.removed.len()), (1, 1));
    let other = catalog.apply(
        "q",
        Mutation::Delta {
            upserts: vec![EntityInput::new(component("claimed", "kept"))],
            removals: vec![],
        },
    );
    assert_eq!(other.added.len(), 1);

    let report = catalog.commit(&stage, StagedMutation::Full(staged));
    assert_eq!(
        sorted(&report.added),
        ["component:default/fresh", "group:default/dropped"]
    );
    assert!(report.updated.is_empty());
    assert_eq!(report.unchanged, 2, "kept and twin");
    assert_eq!(report.rejected.len(), 1, "{:?}", report.rejected);
    let conflict = report.rejected[0].to_string();
    assert!(conflict.contains("already provided by q"), "{conflict}");
    assert!(report.removed.is_empty(), "{:?}", report.removed);

    let snap = catalog.snapshot();
    assert_eq!(
        snap.provider_of(&r("component:default/claimed")).as_deref(),
        Some("q")
    );
    assert!(snap.contains(&r("group:default/dropped")));
    // The group's relations follow the entities that own it now.
    let owner_of = snap.related(
        &r("group:default/kept"),
        idp_catalog::relations::RelationType::OwnerOf,
    );
    assert_eq!(owner_of.len(), 3, "{owner_of:?}");
}

#[test]
fn a_commit_without_concurrent_changes_equals_apply() {
    let inputs = || {
        idp_catalog::generate::org(2_500, 3)
            .into_iter()
            .map(EntityInput::from)
            .collect::<Vec<_>>()
    };
    let applied = InMemoryCatalog::new();
    let a = applied.apply("p", Mutation::Full(inputs()));
    let committed = InMemoryCatalog::new();
    let stage = committed.stage("p");
    let staged = stage.prepare_mutation(Mutation::Full(inputs()));
    let b = committed.commit(&stage, staged);
    same_report(&a, &b);
    assert_eq!(a.added, b.added, "the same order");
    assert_eq!(contents(&applied), contents(&committed));
}

#[test]
fn entities_staged_by_another_stage_are_refused() {
    let catalog = InMemoryCatalog::new();
    let other = InMemoryCatalog::new();
    let foreign = other.stage("p").prepare(EntityInput::new(group("team")));
    let stage = catalog.stage("p");
    let report = catalog.commit(&stage, StagedMutation::Full(vec![foreign]));
    assert!(report.added.is_empty());
    assert_eq!(report.rejected.len(), 1);
    let message = report.rejected[0].to_string();
    assert!(message.contains("another Stage"), "{message}");
    assert!(message.contains("group:default/team"), "{message}");
    assert!(catalog.snapshot().is_empty());
}

/// A provider that only implements `read`: `refresh` stages what it returns.
#[derive(Debug)]
struct Fixed(Vec<Value>);

#[async_trait::async_trait]
impl EntityProvider for Fixed {
    fn name(&self) -> &str {
        "fixed"
    }

    async fn read(&self) -> idp_core::Result<ProviderOutput> {
        Ok(ProviderOutput {
            mutation: Mutation::Full(self.0.iter().cloned().map(EntityInput::new).collect()),
            rejected: vec![],
        })
    }
}

#[tokio::test]
async fn providers_without_read_staged_are_staged_from_read() {
    let catalog = InMemoryCatalog::new();
    let report = refresh(&catalog, &Fixed(vec![group("a"), component("b", "a")]))
        .await
        .unwrap();
    assert_eq!(
        sorted(&report.added),
        ["component:default/b", "group:default/a"]
    );
    let report = refresh(&catalog, &Fixed(vec![group("a")])).await.unwrap();
    assert_eq!(sorted(&report.removed), ["component:default/b"]);
    assert_eq!(report.unchanged, 1);
}

/// Sets `metadata.uid` from the entity's name and refuses entities labelled
/// `refuse: "yes"`.
#[derive(Debug)]
struct Uids;

impl idp_catalog::processor::EntityProcessor for Uids {
    fn name(&self) -> &str {
        "uids"
    }

    fn pre_process(&self, entity: &mut Value, location: Option<&str>) -> idp_core::Result<()> {
        let name = entity["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if entity["metadata"]["labels"]["refuse"] == "yes" {
            return Err(idp_core::Error::invalid_input(format!(
                "{name} is labelled refuse"
            )));
        }
        assert!(
            location.is_none_or(|l| l.starts_with("file:")),
            "{location:?}"
        );
        entity["metadata"]["uid"] = Value::String(format!("uid-{name}"));
        Ok(())
    }
}

#[tokio::test]
async fn processors_run_before_validation_on_every_path() {
    let dir = tempfile::tempdir().unwrap();
    idp_catalog::generate::write_org(dir.path(), 400, 5).unwrap();
    let provider = FileProvider::new("local", dir.path());
    let streamed = InMemoryCatalog::new().with_processor(Uids);
    let report = refresh(&streamed, &provider).await.unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let plain = InMemoryCatalog::new().with_processor(Uids);
    let out = provider.read().await.unwrap();
    let applied = plain.apply("local", out.mutation);
    same_report(&report, &applied);
    assert_eq!(contents(&streamed), contents(&plain));
    let snap = streamed.snapshot();
    for entity in snap.entities() {
        let v = entity.to_value();
        assert_eq!(
            v["metadata"]["uid"],
            format!("uid-{}", v["metadata"]["name"].as_str().unwrap())
        );
    }
    // Deterministic processors keep unchanged entities unchanged.
    let again = refresh(&streamed, &provider).await.unwrap();
    assert_eq!(again.unchanged, snap.len());
    assert!(again.updated.is_empty());

    // A refusal rejects the entity and names the processor; the last good version of
    // an entity already in the catalog stays.
    let catalog = InMemoryCatalog::new().with_processor(Uids);
    catalog.apply("p", Mutation::Full(vec![EntityInput::new(group("team"))]));
    let mut refused = group("team");
    refused["metadata"]["labels"] = json!({"refuse": "yes"});
    let report = catalog.apply(
        "p",
        Mutation::Full(vec![
            EntityInput::new(refused).with_location("file:/repo/catalog-info.yaml"),
        ]),
    );
    assert_eq!(report.rejected.len(), 1);
    let message = report.rejected[0].to_string();
    assert!(
        message.contains("file:/repo/catalog-info.yaml"),
        "{message}"
    );
    assert!(message.contains("group:default/team"), "{message}");
    assert!(message.contains("uids: "), "{message}");
    assert!(message.contains("team is labelled refuse"), "{message}");
    assert!(report.removed.is_empty(), "{:?}", report.removed);
    let kept = catalog
        .snapshot()
        .get(&r("group:default/team"))
        .unwrap()
        .to_value();
    assert_eq!(kept["metadata"]["uid"], "uid-team");
    assert!(kept["metadata"].get("labels").is_none());
}
