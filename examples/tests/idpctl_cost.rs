//! `idpctl cost` through the real binary: real manifests in temp dirs, hand-computed
//! totals, exit codes and the JSON shape.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use common::{idpctl, json, write};

const API: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  namespace: shop\n  labels: {idp.dev/owner: team-a, idp.dev/environment: prod}\nspec:\n  replicas: 2\n  template:\n    spec:\n      containers:\n      - {name: c, image: i, resources: {requests: {cpu: 500m, memory: 2Gi}}}\n";
const AGENT: &str = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent, namespace: ops}\nspec:\n  template:\n    spec:\n      containers:\n      - {name: a, image: i, resources: {requests: {cpu: \"1\"}}}\n";
const PVC: &str = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, namespace: shop, labels: {team: team-b}}\nspec: {resources: {requests: {storage: 10Gi}}}\n";
const PRICES: &str =
    "currency: EUR\ncpuHour: 0.1\nmemoryGibHour: 0.01\nstorageGbMonth: 0.5\ndaemonsetNodes: 2\n";

fn close(a: &serde_json::Value, b: f64) -> bool {
    (a.as_f64().unwrap() - b).abs() < 1e-9
}

#[test]
fn json_totals_per_team_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "k8s/api.yaml", API);
    write(dir.path(), "k8s/more.yaml", &format!("{AGENT}---\n{PVC}"));
    let prices = write(dir.path(), "prices.yaml", PRICES);
    let root = dir.path().join("k8s");
    let out = idpctl(&[
        "cost",
        root.to_str().unwrap(),
        "--prices",
        &prices,
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report = json(&out);
    assert_eq!(report["currency"], "EUR");
    // api: 2 × (0.5 × 0.1 + 2 × 0.01) × 730 = 2 × 0.07 × 730 = 102.2
    // agent: 2 nodes × 1 × 0.1 × 730 = 146
    // data: 10 GiB × 0.5 = 5
    assert!(close(&report["byTeam"]["team-a"], 102.2), "{report}");
    assert!(close(&report["byTeam"]["unattributed"], 146.0), "{report}");
    assert!(close(&report["byTeam"]["team-b"], 5.0), "{report}");
    assert!(close(&report["byEnvironment"]["prod"], 102.2), "{report}");
    assert!(close(&report["total"], 253.2), "{report}");
    let names: Vec<&str> = report["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["api", "agent", "data"]);

    // --nodes overrides the sheet: 5 nodes → agent 5 × 73 = 365.
    let out = idpctl(&[
        "cost",
        root.to_str().unwrap(),
        "--prices",
        &prices,
        "--nodes",
        "5",
        "--format",
        "json",
    ]);
    assert!(close(&json(&out)["byTeam"]["unattributed"], 365.0));
}

#[test]
fn table_shows_lines_pairs_and_the_total() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "api.yaml", API);
    let prices = write(dir.path(), "prices.yaml", PRICES);
    let out = idpctl(&["cost", &file, "--prices", &prices]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("OBJECT"), "{text}");
    assert!(text.contains("Deployment shop/api"), "{text}");
    assert!(text.contains("102.20"), "{text}");
    assert!(
        text.contains("total: 102.20 EUR per month (730 h); 1 object(s) priced"),
        "{text}"
    );
}

#[test]
fn errors_exit_2_with_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(
        dir.path(),
        "bad.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i, resources: {requests: {cpu: lots}}}]\n",
    );
    let out = idpctl(&["cost", &bad]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("Pod p"), "{err}");
    assert!(
        err.contains("spec.containers[0].resources.requests.cpu"),
        "{err}"
    );

    let prices = write(dir.path(), "prices.yaml", "cpuHours: 1\n");
    let good = write(dir.path(), "ok.yaml", API);
    let out = idpctl(&["cost", &good, "--prices", &prices]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("prices.yaml:1:1") && err.contains("cpuHours"),
        "{err}"
    );

    let out = idpctl(&["cost", "--help"]);
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("PRICE SHEET")
    );
}
