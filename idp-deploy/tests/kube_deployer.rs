//! KubeDeployer against FakeCluster: the deployer conformance suite, bounded history in
//! release Secrets, health outcome, rollback with prune.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use idp_core::cluster::Cluster;
use idp_core::ports::HistoryQuery;
use idp_core::{Deployer, DeploymentStatus, ManifestSet, Release};
use idp_deploy::KubeDeployer;
use idp_deploy::kube_deployer::{RELEASE_OF_LABEL, RELEASE_SECRET_TYPE};
use idp_testkit::{FakeCluster, conformance};

async fn cluster() -> FakeCluster {
    FakeCluster::builder()
        .namespace("platform")
        .namespace("conformance")
        .namespace("shop")
        .start()
        .await
        .unwrap()
}

fn deployer(cluster: &FakeCluster) -> KubeDeployer {
    KubeDeployer::new(Cluster::new(cluster.client()), "platform")
        .default_namespace("shop")
        .health_timeout(Duration::from_secs(10))
}

fn manifests(yaml: &str) -> ManifestSet {
    ManifestSet::parse(yaml.as_bytes(), None).unwrap()
}

fn web(image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: web}}\nspec:\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    spec: {{containers: [{{name: web, image: \"{image}\"}}]}}\n"
    )
}

#[tokio::test]
async fn passes_the_deployer_conformance_suite() {
    let cluster = cluster().await;
    conformance::deployer(
        &deployer(&cluster),
        &conformance::DeployerFixtures::default(),
    )
    .await;
}

#[tokio::test]
async fn keeps_a_bounded_history_of_compressed_release_secrets() {
    let cluster = cluster().await;
    let d = deployer(&cluster).keep_history(2);
    let c: idp_core::EntityRef = "component:default/cart".parse().unwrap();
    let env: idp_core::EnvironmentName = "prod".parse().unwrap();
    let mut ids = Vec::new();
    for v in 1..=3 {
        let m = manifests(&format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cart}}\ndata: {{v: \"{v}\"}}\n"
        ));
        ids.push(
            d.deploy(&Release::new(c.clone(), env.clone(), m))
                .await
                .unwrap()
                .id,
        );
    }
    let history = d
        .history(&HistoryQuery::new(c.clone(), env.clone()))
        .await
        .unwrap();
    assert_eq!(
        history.iter().map(|h| h.id.clone()).collect::<Vec<_>>(),
        [ids[2].clone(), ids[1].clone()]
    );
    assert_eq!(history[0].status, DeploymentStatus::Succeeded);
    assert_eq!(history[1].status, DeploymentStatus::Superseded);
    let secrets = cluster.objects("", "secrets", Some("platform"));
    let records: Vec<_> = secrets
        .iter()
        .filter(|s| s["type"] == RELEASE_SECRET_TYPE)
        .collect();
    assert_eq!(records.len(), 2);
    assert!(records[0]["metadata"]["labels"][RELEASE_OF_LABEL].is_string());
    // gzip magic bytes 1f 8b, base64 "H4s".
    assert!(
        records[0]["data"]["release"]
            .as_str()
            .unwrap()
            .starts_with("H4s")
    );
}

#[tokio::test]
async fn a_broken_image_fails_and_rollback_restores_and_prunes() {
    let cluster = cluster().await;
    let d = deployer(&cluster).health_timeout(Duration::from_secs(5));
    let c: idp_core::EntityRef = "component:default/web".parse().unwrap();
    let env: idp_core::EnvironmentName = "prod".parse().unwrap();
    let v1 = d
        .deploy(&Release::new(
            c.clone(),
            env.clone(),
            manifests(&web("shop/web:1")),
        ))
        .await
        .unwrap();
    assert_eq!(v1.status, DeploymentStatus::Succeeded);
    let extra = format!(
        "{}---\napiVersion: v1\nkind: ConfigMap\nmetadata: {{name: extra}}\n",
        web("shop/web:broken")
    );
    let v2 = d
        .deploy(&Release::new(c.clone(), env.clone(), manifests(&extra)))
        .await
        .unwrap();
    assert_eq!(v2.status, DeploymentStatus::Failed);
    assert!(cluster.object("", "configmaps", "shop", "extra").is_some());

    let back = d.rollback(&c, &env, &v1.id).await.unwrap();
    assert_eq!(back.status, DeploymentStatus::Succeeded);
    assert!(
        cluster.object("", "configmaps", "shop", "extra").is_none(),
        "rollback prunes what v1 did not have"
    );
    let image = cluster
        .object("apps", "deployments", "shop", "web")
        .unwrap()["spec"]["template"]["spec"]["containers"][0]["image"]
        .clone();
    assert_eq!(image, "shop/web:1");
}
