//! The in-memory catalog: ingestion, relations, queries, providers.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::needless_pass_by_value
)]

use idp_catalog::provider::{EntityProvider, FileProvider, refresh};
use idp_catalog::relations::RelationType;
use idp_catalog::{EntityInput, InMemoryCatalog, Mutation, QueryOptions, filter};
use idp_core::{Catalog, CatalogExt, EntityRef, ports::EntityQuery};
use serde_json::{Value, json};

fn r(s: &str) -> EntityRef {
    s.parse().unwrap()
}

fn group(name: &str, parent: Option<&str>, children: &[&str]) -> Value {
    let mut spec = json!({"type": "team", "children": children});
    if let Some(p) = parent {
        spec["parent"] = json!(p);
    }
    json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": name}, "spec": spec})
}

fn component(name: &str, owner: &str, extra: Value) -> Value {
    let mut v = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Component",
        "metadata": {"name": name, "labels": {"tier": "gold"}},
        "spec": {"type": "service", "lifecycle": "production", "owner": owner}});
    for (k, val) in extra.as_object().unwrap() {
        if k == "metadata" {
            for (mk, mv) in val.as_object().unwrap() {
                v["metadata"][mk] = mv.clone();
            }
        } else {
            v["spec"][k] = val.clone();
        }
    }
    v
}

fn org() -> Vec<EntityInput> {
    [
        group("org", None, &["platform"]),
        group("platform", Some("org"), &[]),
        group("payments", Some("org"), &[]),
        component("cart", "platform", json!({"dependsOn": ["component:pricing"], "system": "shop"})),
        component("pricing", "payments", json!({"dependsOn": ["resource:db"], "metadata": {"annotations": {"backstage.io/techdocs-ref": "dir:."}}})),
        component("web", "group:default/org", json!({"type": "website", "dependsOn": ["component:cart"], "metadata": {"title": "Storefront", "description": "Sells payments things"}})),
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Resource", "metadata": {"name": "db"},
               "spec": {"type": "database", "owner": "payments"}}),
    ]
    .into_iter()
    .map(EntityInput::new)
    .collect()
}

fn loaded() -> InMemoryCatalog {
    let c = InMemoryCatalog::new();
    let report = c.apply("test", Mutation::Full(org()));
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.added.len(), 7);
    // `shop` does not exist: reported, not fatal.
    assert_eq!(report.dangling.len(), 1);
    assert_eq!(report.dangling[0].target, "system:default/shop");
    c
}

#[tokio::test]
async fn relations_exist_in_both_directions() {
    let c = loaded();
    let cart = c.require(&r("component:default/cart")).await.unwrap();
    let rels: Vec<(String, String)> = cart
        .relations()
        .into_iter()
        .map(|r| (r.relation_type, r.target.to_string()))
        .collect();
    assert!(rels.contains(&("ownedBy".into(), "group:default/platform".into())));
    assert!(rels.contains(&("dependsOn".into(), "component:default/pricing".into())));
    assert!(rels.contains(&("dependencyOf".into(), "component:default/web".into())));
    assert!(rels.contains(&("partOf".into(), "system:default/shop".into())));
    let platform = c.require(&r("group:default/platform")).await.unwrap();
    let rels: Vec<(String, String)> = platform
        .relations()
        .into_iter()
        .map(|r| (r.relation_type, r.target.to_string()))
        .collect();
    assert!(rels.contains(&("ownerOf".into(), "component:default/cart".into())));
    assert!(rels.contains(&("childOf".into(), "group:default/org".into())));
    let org = c.snapshot();
    // org lists platform as a child and platform names org as parent: one relation each way.
    assert_eq!(
        org.related(&r("group:default/org"), RelationType::ParentOf)
            .len(),
        2
    );
}

#[tokio::test]
async fn filters_follow_backstage_semantics() {
    let c = loaded();
    let count = |filters: &[&str]| -> usize {
        c.snapshot().count(&filter::parse_filters(filters).unwrap())
    };
    assert_eq!(count(&["kind=component"]), 3);
    assert_eq!(count(&["kind=Component,spec.type=service"]), 2);
    assert_eq!(
        count(&["kind=component,spec.type=website", "kind=resource"]),
        2
    );
    assert_eq!(
        count(&["metadata.annotations.backstage.io/techdocs-ref"]),
        1
    );
    assert_eq!(count(&["metadata.labels.tier=GOLD"]), 3);
    assert_eq!(count(&["metadata.labels.tier"]), 3);
    assert_eq!(count(&["spec.owner=payments"]), 2);
    assert_eq!(count(&["relations.ownedBy=group:default/payments"]), 2);
    assert_eq!(count(&["relations.ownerOf=component:default/cart"]), 1);
    assert_eq!(count(&["relations.dependsOn"]), 3);
    assert_eq!(count(&["metadata.name=cart,kind=component"]), 1);
    assert_eq!(count(&["kind=component,kind=resource"]), 4);
    assert_eq!(count(&["spec.lifecycle=production"]), 3);
    assert_eq!(count(&["metadata.title=storefront"]), 1);
    assert_eq!(count(&["kind=nothing"]), 0);
    let text = EntityQuery::new().text("payments");
    assert_eq!(c.snapshot().count(&text), 2); // the group by name, web by description
}

#[tokio::test]
async fn pagination_ordering_projection() {
    let c = loaded();
    let all = c.query_all(&EntityQuery::new().limit(2)).await.unwrap();
    assert_eq!(all.len(), 7);
    let page = c.query(&EntityQuery::new().limit(3)).await.unwrap();
    assert_eq!((page.entities.len(), page.total), (3, 7));
    let bad = c.query(&EntityQuery::new().after("garbage")).await;
    assert!(bad.is_err());
    let snap = c.snapshot();
    let q = filter::parse_filters(&["kind=component"]).unwrap().limit(2);
    let opts = QueryOptions::default()
        .order_by("metadata.name", true)
        .fields(["metadata.name"]);
    let p1 = snap.query_with(&q, &opts).unwrap();
    assert_eq!(
        p1.items,
        [
            json!({"metadata": {"name": "web"}}),
            json!({"metadata": {"name": "pricing"}})
        ]
    );
    let p2 = snap
        .query_with(&q.clone().after(p1.next_cursor.unwrap()), &opts)
        .unwrap();
    assert_eq!(p2.items, [json!({"metadata": {"name": "cart"}})]);
    assert!(p2.next_cursor.is_none());
    // Relations appear in a projection only when asked for (unordered: the fast path).
    let q = filter::parse_filters(&["kind=component"]).unwrap().limit(1);
    let bare = snap
        .query_with(&q, &QueryOptions::default().fields(["metadata.name"]))
        .unwrap();
    assert!(bare.items[0].get("relations").is_none());
    let with = snap
        .query_with(
            &q,
            &QueryOptions::default().fields(["metadata.name", "relations"]),
        )
        .unwrap();
    let whole = snap.query(&q).unwrap();
    assert_eq!(
        with.items[0]["relations"],
        whole.entities[0].to_value()["relations"]
    );
    assert!(!with.items[0]["relations"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn graph_queries() {
    let c = loaded();
    let snap = c.snapshot();
    let owned: Vec<String> = snap
        .owned_by_transitive(&r("group:default/org"))
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        owned,
        [
            "component:default/cart",
            "component:default/pricing",
            "component:default/web",
            "resource:default/db"
        ]
    );
    let owned = snap.owned_by_transitive(&r("group:default/platform"));
    assert_eq!(owned, [r("component:default/cart")]);
    assert_eq!(
        snap.dependencies(&r("component:default/web")),
        [
            "component:default/cart",
            "component:default/pricing",
            "resource:default/db"
        ]
    );
    assert_eq!(snap.dangling().len(), 1);
}

#[tokio::test]
async fn full_and_delta_mutations() {
    let c = loaded();
    let before = c.snapshot();
    // Full again with one entity changed, one removed: only the change is re-validated.
    let mut inputs = org();
    inputs.retain(|i| i.value["metadata"]["name"] != "web");
    inputs[3].value["metadata"]["description"] = json!("new");
    let report = c.apply("test", Mutation::Full(inputs));
    assert_eq!(report.updated, [r("component:default/cart")]);
    assert_eq!(report.unchanged, 5);
    assert_eq!(report.removed, [r("component:default/web")]);
    // The old snapshot is untouched.
    assert!(before.contains(&r("component:default/web")));
    assert!(!c.snapshot().contains(&r("component:default/web")));
    assert_eq!(
        c.snapshot()
            .dependencies(&r("component:default/cart"))
            .len(),
        2
    );
    // cart's dependencyOf web is gone with web.
    assert!(
        c.snapshot()
            .related(&r("component:default/cart"), RelationType::DependencyOf)
            .is_empty()
    );

    // A rejected update keeps the last good version.
    let mut broken = component("cart", "platform", json!({}));
    broken["metadata"]["tags"] = json!(["NOT VALID"]);
    let report = c.apply(
        "test",
        Mutation::Delta {
            upserts: vec![EntityInput::new(broken)],
            removals: vec![],
        },
    );
    assert_eq!(report.rejected.len(), 1);
    assert!(report.rejected[0].to_string().contains("metadata.tags[0]"));
    assert_eq!(
        c.get(&r("component:default/cart"))
            .await
            .unwrap()
            .unwrap()
            .spec_str("owner"),
        Some("platform")
    );

    // Another provider cannot take over an entity.
    let report = c.apply(
        "other",
        Mutation::Delta {
            upserts: vec![EntityInput::new(component("cart", "x", json!({})))],
            removals: vec![],
        },
    );
    assert_eq!(report.rejected[0].problems[0].rule, "conflict");
    // ... and a full mutation from it does not remove ours.
    let report = c.apply("other", Mutation::Full(vec![]));
    assert!(report.removed.is_empty());

    let report = c.apply(
        "test",
        Mutation::Delta {
            upserts: vec![],
            removals: vec![r("resource:default/db")],
        },
    );
    assert_eq!(report.removed, [r("resource:default/db")]);
    assert_eq!(c.snapshot().dangling().len(), 2);
}

#[tokio::test]
async fn port_upsert_and_remove() {
    let c = InMemoryCatalog::new();
    let e = idp_core::model::Entity::from_value(group("team", None, &[])).unwrap();
    c.upsert(e).await.unwrap();
    assert!(c.get(&r("group:default/team")).await.unwrap().is_some());
    let bad = idp_core::model::Entity::from_value(
        json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Group", "metadata": {"name": "x"}}),
    )
    .unwrap();
    let err = c.upsert(bad).await.unwrap_err();
    assert_eq!(err.kind(), idp_core::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("spec"), "{err}");
    assert!(c.remove(&r("group:default/team")).await.unwrap());
    assert!(!c.remove(&r("group:default/team")).await.unwrap());
}

#[tokio::test]
async fn file_provider_follows_locations_and_resolves_placeholders() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("apis")).unwrap();
    std::fs::write(root.join("apis/cart.openapi.yaml"), "openapi: 3.0.0\n").unwrap();
    std::fs::write(
        root.join("catalog-info.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: root}\nspec:\n  targets: [./apis/apis.yaml, ./missing.yaml]\n",
    )
    .unwrap();
    std::fs::write(
        root.join("apis/apis.yaml"),
        "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {name: cart-api}\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team\n  definition:\n    $text: ./cart.openapi.yaml\n---\napiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: remote-api\n  description:\n    $text: https://example.com/remote.md\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team\n  definition: x\n---\napiVersion: backstage.io/v1alpha1\nkind: API\nmetadata: {name: escaping-api}\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team\n  definition:\n    $text: ../../etc/passwd\n",
    )
    .unwrap();
    let c = InMemoryCatalog::new();
    let p = FileProvider::new("files", root);
    let report = refresh(&c, &p).await.unwrap();
    assert_eq!(report.added.len(), 3, "{report:?}");
    // The missing target and the escaping placeholder are rejected with their location.
    assert_eq!(report.rejected.len(), 2, "{:?}", report.rejected);
    let text: Vec<String> = report.rejected.iter().map(ToString::to_string).collect();
    assert!(text.iter().any(|t| t.contains("missing.yaml")), "{text:?}");
    assert!(
        text.iter().any(|t| t.contains("apis/apis.yaml document 2")),
        "{text:?}"
    );
    // A URL without a reader: empty value and a warning, not a rejection.
    assert_eq!(report.warnings.len(), 1);
    let remote = c.require(&r("api:default/remote-api")).await.unwrap();
    assert_eq!(remote.as_map()["metadata"]["description"], "");
    let api = c.require(&r("api:default/cart-api")).await.unwrap();
    assert_eq!(api.spec_str("definition"), Some("openapi: 3.0.0\n"));
    let ann = &api.as_map()["metadata"]["annotations"];
    assert!(
        ann["backstage.io/managed-by-location"]
            .as_str()
            .unwrap()
            .ends_with("apis/apis.yaml")
    );
    assert!(
        ann["backstage.io/managed-by-origin-location"]
            .as_str()
            .unwrap()
            .ends_with("catalog-info.yaml")
    );

    // Delete the file: a full refresh removes its entities and reports them.
    std::fs::remove_file(root.join("apis/apis.yaml")).unwrap();
    let out = p.read().await.unwrap();
    let report = c.apply("files", out.mutation);
    assert_eq!(report.removed.len(), 2);
}

#[tokio::test]
async fn git_provider_reads_a_revision_and_records_it() {
    use idp_catalog::provider::GitProvider;
    use idp_core::git::{CommitRequest, GitRepo, Identity, InitOptions};
    let dir = tempfile::tempdir().unwrap();
    let repo = GitRepo::init(dir.path(), InitOptions::bare("main"))
        .await
        .unwrap();
    let who = Identity::new("t", "t@example.com");
    let first = repo
        .commit(
            CommitRequest::new("main", "one", who.clone())
                .put("catalog-info.yaml", "apiVersion: backstage.io/v1alpha1\nkind: Location\nmetadata: {name: root}\nspec: {targets: [./teams/teams.yaml]}\n")
                .put("teams/teams.yaml", "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata: {name: a, description: {$text: ./a.md}}\nspec: {type: team, children: []}\n")
                .put("teams/a.md", "Team A"),
        )
        .await
        .unwrap();
    let _ = first;
    let head = repo.resolve("main").await.unwrap().to_hex();
    let catalog = InMemoryCatalog::new();
    let provider = GitProvider::new("git", repo.clone(), "main");
    let report = refresh(&catalog, &provider).await.unwrap();
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    assert_eq!(report.added.len(), 2);
    let a = catalog.snapshot().get(&r("group:default/a")).unwrap();
    assert_eq!(a.as_map()["metadata"]["description"], "Team A");
    assert_eq!(
        a.as_map()["metadata"]["annotations"]["idp.dev/source-revision"],
        head.as_str()
    );

    // The file disappears in the next commit: the group is removed as an orphan.
    repo.commit(CommitRequest::new("main", "two", who).delete("teams/teams.yaml"))
        .await
        .unwrap();
    let report = refresh(&catalog, &provider).await.unwrap();
    assert_eq!(report.removed, [r("group:default/a")]);
    // The Location's target is now missing: reported.
    assert_eq!(report.rejected.len(), 1);
}

#[test]
fn search_ranks_names_above_descriptions_and_tolerates_typos() {
    use idp_catalog::search::SearchIndex;
    let c = loaded();
    let mut index = SearchIndex::build(&c.snapshot());
    assert_eq!(index.len(), 7);
    // "payments" names a group, owns pricing and db, and is a word in web's description:
    // name beats owner beats description.
    let hits = index.search("payments", 10);
    let names: Vec<&str> = hits.iter().map(|h| h.entity_ref.name()).collect();
    assert_eq!(names.len(), 4);
    assert_eq!((names[0], names[3]), ("payments", "web"));
    assert!(hits[0].score > hits[1].score && hits[2].score > hits[3].score);
    // One typo still finds it; very short words need an exact match.
    assert_eq!(
        index.search("paymants", 10)[0].entity_ref.name(),
        "payments"
    );
    assert!(index.search("crt", 10).is_empty());
    // Extra text (TechDocs) is searchable, with a lower weight.
    index.add_text(
        &r("component:default/cart"),
        "Checkout basket for the storefront",
    );
    assert_eq!(index.search("basket", 10)[0].entity_ref.name(), "cart");
    // Restricted to a filter's result.
    let groups = c
        .snapshot()
        .refs(&filter::parse_filters(&["kind=group"]).unwrap());
    let hits = index.search_within("payments", 10, &groups);
    assert_eq!(hits.len(), 1);
}

/// Each entity's JSON text, as `serde_json` writes its value.
fn texts(c: &InMemoryCatalog) -> Vec<(EntityRef, String, String)> {
    let s = c.snapshot();
    s.refs(&EntityQuery::new())
        .into_iter()
        .map(|r| {
            let text = s.get_json(&r).unwrap().to_string();
            let value = s.get(&r).unwrap().to_value().to_string();
            (r, text, value)
        })
        .collect()
}

#[test]
fn json_text_is_the_value_written_and_follows_relation_changes() {
    let c = loaded();
    for (r, text, value) in texts(&c) {
        assert_eq!(text, value, "{r}");
    }
    let s = c.snapshot();
    let payments = r("group:default/payments");
    let before = s.get_json(&payments).unwrap();
    assert!(before.contains("component:default/pricing"), "{before}");
    // Read twice: the same shared text.
    assert!(std::sync::Arc::ptr_eq(
        &before,
        &s.get_json(&payments).unwrap()
    ));
    // A related entity changes (pricing moves to platform): payments' record was not
    // touched, yet its relations must follow.
    let moved = component("pricing", "platform", json!({"dependsOn": ["resource:db"]}));
    let report = c.apply(
        "test",
        Mutation::Delta {
            upserts: vec![EntityInput::new(moved)],
            removals: vec![],
        },
    );
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let after = c.snapshot();
    let now = after.get_json(&payments).unwrap();
    assert!(!now.contains("component:default/pricing"), "{now}");
    let platform = after.get_json(&r("group:default/platform")).unwrap();
    assert!(platform.contains("component:default/pricing"), "{platform}");
    // The old snapshot still reads the old text.
    assert_eq!(s.get_json(&payments).unwrap(), before);
    // A related entity is removed: the db no longer lists pricing as depending on it.
    assert!(
        after
            .get_json(&r("resource:default/db"))
            .unwrap()
            .contains("component:default/pricing")
    );
    c.apply(
        "test",
        Mutation::Delta {
            upserts: vec![],
            removals: vec![r("component:default/pricing")],
        },
    );
    let db = c.snapshot().get_json(&r("resource:default/db")).unwrap();
    assert!(!db.contains("component:default/pricing"), "{db}");
    for (r, text, value) in texts(&c) {
        assert_eq!(text, value, "{r}");
    }
}

#[test]
fn json_pages_are_the_values_written() {
    let c = loaded();
    let s = c.snapshot();
    let queries = [
        EntityQuery::new(),
        filter::parse_filters(&["kind=component"]).unwrap().limit(2),
    ];
    let options = [
        QueryOptions::default(),
        QueryOptions::default().order_by("metadata.name", true),
        QueryOptions::default().order_by("spec.owner", false),
        QueryOptions::default().fields(["kind", "metadata.name", "relations"]),
    ];
    for q in &queries {
        for o in &options {
            let values = s.query_with(q, o).unwrap();
            let texts = s.query_json(q, o).unwrap();
            assert_eq!(texts.total, values.total);
            assert_eq!(texts.next_cursor, values.next_cursor);
            assert_eq!(texts.json_array(), Value::Array(values.items).to_string());
        }
    }
}

/// The dangling relations a mutation reports are exactly those of its changed entities
/// in the snapshot it publishes: targets missing from the start, targets the same
/// mutation removes (full and delta), targets it adds, and mixed-case names.
#[test]
fn reported_dangling_matches_the_snapshot() {
    let dangling_of = |c: &InMemoryCatalog, changed: &[EntityRef]| -> Vec<String> {
        let mut all: Vec<String> = c
            .snapshot()
            .dangling()
            .into_iter()
            .filter(|d| changed.contains(&d.source))
            .map(|d| d.to_string())
            .collect();
        all.sort();
        all
    };
    let reported = |r: &idp_catalog::IngestReport| -> Vec<String> {
        let mut all: Vec<String> = r.dangling.iter().map(ToString::to_string).collect();
        all.sort();
        all
    };
    let c = InMemoryCatalog::new();
    let first = vec![
        group("Team-A", None, &[]),
        component(
            "Api-Gw",
            "team-a",
            json!({"dependsOn": ["component:Billing", "resource:DB"]}),
        ),
        component(
            "billing",
            "Team-A",
            json!({"dependsOn": ["component:ghost"]}),
        ),
    ];
    let r1 = c.apply(
        "p",
        Mutation::Full(first.into_iter().map(EntityInput::new).collect()),
    );
    assert!(r1.rejected.is_empty(), "{:?}", r1.rejected);
    let changed: Vec<EntityRef> = r1.added.clone();
    assert_eq!(reported(&r1), dangling_of(&c, &changed));
    assert_eq!(r1.dangling.len(), 2, "{:?}", r1.dangling);

    // A full mutation that drops billing and changes Api-Gw: its dependency on billing
    // now dangles (removed by the same mutation), DB still does.
    let second = vec![
        group("Team-A", None, &[]),
        component(
            "Api-Gw",
            "team-a",
            json!({"dependsOn": ["component:Billing", "resource:DB"], "metadata": {"description": "changed"}}),
        ),
    ];
    let r2 = c.apply(
        "p",
        Mutation::Full(second.into_iter().map(EntityInput::new).collect()),
    );
    assert_eq!(r2.removed.len(), 1);
    assert_eq!(reported(&r2), dangling_of(&c, &r2.updated));
    assert_eq!(r2.dangling.len(), 2, "{:?}", r2.dangling);

    // A delta that adds the database and removes the group: DB resolves, the owner
    // of the upserted component dangles.
    let db = json!({"apiVersion": "backstage.io/v1alpha1", "kind": "Resource", "metadata": {"name": "db"},
                    "spec": {"type": "database", "owner": "team-a"}});
    let r3 = c.apply(
        "p",
        Mutation::Delta {
            upserts: vec![
                EntityInput::new(db),
                EntityInput::new(component(
                    "api-gw",
                    "team-a",
                    json!({"dependsOn": ["resource:DB"]}),
                )),
            ],
            removals: vec![r("group:default/team-a")],
        },
    );
    assert_eq!(r3.removed.len(), 1, "{r3:?}");
    let mut changed = r3.added.clone();
    changed.extend(r3.updated.clone());
    assert_eq!(reported(&r3), dangling_of(&c, &changed));
    let targets: Vec<&str> = r3.dangling.iter().map(|d| d.target.as_str()).collect();
    assert!(targets.contains(&"group:default/team-a"), "{targets:?}");
    assert!(
        !targets.iter().any(|t| t.starts_with("resource:")),
        "{targets:?}"
    );
}

/// A large mutation indexes terms and stitches relations on two threads; what it
/// publishes reads exactly like the same entities applied as small deltas (one thread).
#[test]
fn large_mutations_read_like_small_ones() {
    let mut entities = idp_catalog::generate::org(6000, 9);
    entities.push(component(
        "Orphan-X",
        "Team-Nobody",
        json!({"dependsOn": ["component:Missing-One", "resource:db-gone"]}),
    ));
    let big = InMemoryCatalog::new();
    let report = big.apply(
        "p",
        Mutation::Full(entities.iter().cloned().map(EntityInput::new).collect()),
    );
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let small = InMemoryCatalog::new();
    for chunk in entities.chunks(700) {
        let r = small.apply(
            "p",
            Mutation::Delta {
                upserts: chunk.iter().cloned().map(EntityInput::new).collect(),
                removals: vec![],
            },
        );
        assert!(r.rejected.is_empty(), "{:?}", r.rejected);
    }
    let (a, b) = (big.snapshot(), small.snapshot());
    let all = EntityQuery::default();
    let refs = a.refs(&all);
    assert_eq!(refs.len(), entities.len());
    assert_eq!(refs, b.refs(&all));
    for r in &refs {
        assert_eq!(a.get_json(r), b.get_json(r), "{r}");
    }
    let dangling = |s: &idp_catalog::Snapshot| -> Vec<String> {
        let mut d: Vec<String> = s.dangling().iter().map(ToString::to_string).collect();
        d.sort();
        d
    };
    assert_eq!(dangling(&a), dangling(&b));
    assert_eq!(dangling(&a).len(), 3, "{:?}", dangling(&a));
    let mut reported: Vec<String> = report.dangling.iter().map(ToString::to_string).collect();
    reported.sort();
    assert_eq!(reported, dangling(&a));
    for f in [
        "kind=component,spec.type=service",
        "spec.owner=team-nobody",
        "kind=api",
    ] {
        let q = filter::parse_filters(&[f]).unwrap();
        assert_eq!(a.refs(&q), b.refs(&q), "{f}");
        assert_eq!(a.count(&q), b.count(&q), "{f}");
    }
    let owner: EntityRef = refs
        .iter()
        .find(|r| r.kind().eq_ignore_ascii_case("group"))
        .unwrap()
        .clone();
    assert_eq!(a.owned_by_transitive(&owner), b.owned_by_transitive(&owner));
}
