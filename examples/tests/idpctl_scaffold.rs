//! `idpctl scaffold ...` through the real binary: the shipped templates, dry runs,
//! validation errors and the action list.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use std::path::Path;

use common::{idpctl, json, write};

fn template(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("templates")
        .join(name)
        .join("template.yaml")
        .display()
        .to_string()
}

#[test]
fn actions_lists_ids_and_input_schemas() {
    let out = idpctl(&["scaffold", "actions", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let list = json(&out);
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap())
        .collect();
    for id in [
        "fetch:template",
        "publish:git",
        "catalog:register",
        "debug:log",
    ] {
        assert!(ids.contains(&id), "{ids:?}");
    }
    let fetch = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "fetch:template")
        .unwrap();
    assert_eq!(fetch["inputSchema"]["required"][0], "url");
    let table = idpctl(&["scaffold", "actions"]);
    assert!(String::from_utf8_lossy(&table.stdout).contains("url: string (required)"));
}

#[test]
fn scaffold_a_rust_service_into_a_folder_and_a_remote() {
    let dir = tempfile::tempdir().unwrap();
    let remote = dir.path().join("orders.git");
    let output = dir.path().join("out");
    let out = idpctl(&[
        "scaffold",
        "--template",
        &template("rust-service"),
        "--set",
        "name=orders",
        "--set",
        "owner=group:default/team-a",
        "--set",
        &format!("repoUrl=file://{}", remote.display()),
        "--set",
        "port=9000",
        "--output",
        output.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let task = json(&out);
    assert_eq!(task["status"], "completed");
    assert_eq!(
        task["output"]["links"][1]["entityRef"],
        "component:default/orders"
    );
    let score = std::fs::read_to_string(output.join("score.yaml")).unwrap();
    assert!(score.contains("targetPort: 9000"), "{score}");
    assert!(
        remote.join("HEAD").exists(),
        "publish:git created the remote"
    );

    // The folder is now not empty: refused.
    let again = idpctl(&[
        "scaffold",
        "--template",
        &template("rust-service"),
        "--set",
        "name=orders",
        "--set",
        "owner=team-a",
        "--set",
        "repoUrl=file:///tmp/x.git",
        "--output",
        output.to_str().unwrap(),
    ]);
    assert_eq!(again.status.code(), Some(2));
}

#[test]
fn dry_run_with_a_values_file_prints_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let values = write(
        dir.path(),
        "values.yaml",
        "name: orders-db\nowner: team-a\nenvironment: dev\nprovisioner: kubernetes\ngitopsRepoUrl: file:///nonexistent/gitops.git\n",
    );
    let out = idpctl(&[
        "scaffold",
        "--template",
        &template("postgres-database"),
        "--values",
        &values,
        "--dry-run",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let task = json(&out);
    let files = task["files"].as_object().unwrap();
    assert!(files.contains_key("gitops/statefulset.yaml"), "{files:?}");
    assert!(files.contains_key("catalog/resource.yaml"));
    assert!(!Path::new("/nonexistent/gitops.git").exists());

    let table = idpctl(&[
        "scaffold",
        "--template",
        &template("postgres-database"),
        "--values",
        &values,
        "--dry-run",
    ]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("gitops/service.yaml"), "{text}");
    assert!(text.contains("skipped"), "{text}");
}

#[test]
fn invalid_values_exit_2_with_every_field() {
    let out = idpctl(&[
        "scaffold",
        "--template",
        &template("object-bucket"),
        "--set",
        "name=Bad_Name",
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("parameters.name"), "{err}");
    assert!(err.contains("parameters.owner: is required"), "{err}");
    assert!(
        err.contains("parameters.gitopsRepoUrl: is required"),
        "{err}"
    );
    let bad = idpctl(&[
        "scaffold",
        "--template",
        &template("rust-service"),
        "--set",
        "port=eighty",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not an integer"));
}
