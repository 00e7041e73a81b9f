//! `idpctl catalog ...` through the real binary: real files in temp dirs, exit codes and
//! JSON shapes.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{idpctl, json, write};

use serde_json::Value;

const TEAM: &str = "apiVersion: backstage.io/v1alpha1\nkind: Group\nmetadata:\n  name: team-a\nspec:\n  type: team\n  children: []\n";
const CART: &str = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: cart\n  description: Shopping cart checkout service\nspec:\n  type: service\n  lifecycle: production\n  owner: team-a\n  providesApis: [cart-api]\n  dependsOn: [resource:cart-db]\n";
const WEB: &str = "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: web\nspec:\n  type: website\n  lifecycle: experimental\n  owner: team-a\n  consumesApis: [cart-api]\n";
const API: &str = "apiVersion: backstage.io/v1alpha1\nkind: API\nmetadata:\n  name: cart-api\nspec:\n  type: openapi\n  lifecycle: production\n  owner: team-a\n  definition: 'openapi: 3.0.0'\n";

fn catalog_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "org.yaml", TEAM);
    write(
        dir.path(),
        "services/catalog-info.yaml",
        &format!("{CART}---\n{WEB}"),
    );
    write(dir.path(), "apis/cart-api.yml", API);
    dir
}

#[test]
fn validate_reports_every_document_and_yaml_errors() {
    let dir = catalog_dir();
    let root = dir.path().to_str().unwrap();
    let out = idpctl(&["catalog", "validate", root]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 document(s), 0 invalid"));

    let broken = write(
        dir.path(),
        "broken.yaml",
        "kind: Group\nmetadata:\n  name: [x\n",
    );
    let invalid = write(
        dir.path(),
        "invalid.yaml",
        &format!("{TEAM}---\nkind: Component\nmetadata:\n  name: nope\n"),
    );
    let out = idpctl(&["catalog", "validate", &broken, &invalid, "--format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let rows = json(&out);
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(rows[0]["file"], broken.as_str());
    assert_eq!(rows[0]["document"], Value::Null);
    assert_eq!(rows[0]["valid"], false);
    assert!(rows[0]["errors"][0].as_str().unwrap().starts_with("line "));
    assert_eq!(rows[1]["document"], 0);
    assert_eq!(rows[1]["valid"], true);
    assert_eq!(rows[1]["ref"], "group:default/team-a");
    assert_eq!(rows[1]["kind"], "Group");
    assert_eq!(rows[2]["document"], 1);
    assert_eq!(rows[2]["valid"], false);
    assert!(!rows[2]["errors"].as_array().unwrap().is_empty());

    let out = idpctl(&["catalog", "validate", "/definitely/not/here"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/definitely/not/here"));
}

#[test]
fn list_filters_with_backstage_syntax() {
    let dir = catalog_dir();
    let root = dir.path().to_str().unwrap();
    let out = idpctl(&["catalog", "list", root, "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let mut refs: Vec<String> = json(&out)
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["ref"].as_str().unwrap().to_owned())
        .collect();
    refs.sort();
    assert_eq!(
        refs,
        [
            "api:default/cart-api",
            "component:default/cart",
            "component:default/web",
            "group:default/team-a"
        ]
    );

    let out = idpctl(&[
        "catalog",
        "list",
        root,
        "--filter",
        "kind=component,spec.type=service",
        "--format",
        "json",
    ]);
    let rows = json(&out);
    assert_eq!(rows.as_array().unwrap().len(), 1, "{rows}");
    assert_eq!(rows[0]["ref"], "component:default/cart");
    assert_eq!(rows[0]["type"], "service");
    assert_eq!(rows[0]["owner"], "team-a");
    assert_eq!(rows[0]["lifecycle"], "production");

    // Repeated filters are ORed.
    let out = idpctl(&[
        "catalog",
        "list",
        root,
        "--filter",
        "kind=api",
        "--filter",
        "kind=group",
        "-o",
        "json",
    ]);
    assert_eq!(json(&out).as_array().unwrap().len(), 2);

    let out = idpctl(&["catalog", "list", root, "--filter", "kind=component"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["REF", "TYPE", "OWNER", "LIFECYCLE"]);
    assert!(text.contains("component:default/web"), "{text}");
    assert!(!text.contains("group:default/team-a"), "{text}");

    // An invalid entity is skipped with a warning, the rest is listed.
    write(
        dir.path(),
        "broken/catalog-info.yaml",
        "kind: Component\nmetadata:\n  name: half\n",
    );
    let out = idpctl(&["catalog", "list", root, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(json(&out).as_array().unwrap().len(), 4);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("warning: skipped") && err.contains("broken"),
        "{err}"
    );

    let out = idpctl(&["catalog", "list", root, "--filter", "=x"]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a filter without a key is a usage error"
    );
}

#[test]
fn search_ranks_and_graph_shows_both_directions() {
    let dir = catalog_dir();
    let root = dir.path().to_str().unwrap();
    let out = idpctl(&["catalog", "search", "shopping cart", root, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let hits = json(&out);
    let hits = hits.as_array().unwrap();
    assert_eq!(hits[0]["ref"], "component:default/cart", "{hits:?}");
    let scores: Vec<f64> = hits.iter().map(|h| h["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");

    let out = idpctl(&[
        "catalog",
        "graph",
        "api:default/cart-api",
        root,
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let graph = json(&out);
    let edges: Vec<(String, String)> = graph["relations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_owned(),
                e["target"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        edges.contains(&("ownedBy".into(), "group:default/team-a".into())),
        "{edges:?}"
    );
    assert!(
        edges.contains(&("apiProvidedBy".into(), "component:default/cart".into())),
        "{edges:?}"
    );
    assert!(
        edges.contains(&("apiConsumedBy".into(), "component:default/web".into())),
        "{edges:?}"
    );

    let out = idpctl(&["catalog", "graph", "component:default/cart", root]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("resource:default/cart-db  (not in catalog)"),
        "{text}"
    );

    let out = idpctl(&["catalog", "graph", "component:default/nope", root]);
    assert_eq!(out.status.code(), Some(2));
    let out = idpctl(&["catalog", "graph", "not a ref!", root]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn generate_writes_a_valid_org_and_schema_prints() {
    let dir = tempfile::tempdir().unwrap();
    let org = dir.path().join("org");
    let org = org.to_str().unwrap();
    let out = idpctl(&[
        "catalog", "generate", "--count", "40", "--out", org, "--seed", "9", "-o", "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(json(&out)["entities"], 40);

    let out = idpctl(&["catalog", "validate", org, "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let rows = json(&out);
    assert!(rows.as_array().unwrap().len() >= 40);

    let out = idpctl(&["catalog", "list", org, "-o", "json"]);
    assert!(json(&out).as_array().unwrap().len() >= 40);

    let out = idpctl(&["catalog", "schema", "component"]);
    assert_eq!(out.status.code(), Some(0));
    let schema = json(&out);
    assert!(
        schema["required"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "spec")
    );
    let out = idpctl(&["catalog", "schema", "widget"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Component"));
}

#[test]
fn help_has_examples() {
    let top = String::from_utf8(idpctl(&["--help"]).stdout).unwrap();
    assert!(top.contains("catalog") && top.contains("policy"), "{top}");
    for sub in ["validate", "list", "search", "graph", "generate", "schema"] {
        let out = idpctl(&["catalog", sub, "--help"]);
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains("EXAMPLES"), "{sub}: {help}");
    }
}
