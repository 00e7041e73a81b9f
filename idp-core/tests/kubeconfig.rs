//! `cluster::client_from_kubeconfig`: a working client from a kubeconfig file, and
//! errors that name the file for every way the file can be wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use idp_core::ErrorKind;
use idp_core::cluster::client_from_kubeconfig;
use idp_testkit::FakeCluster;

#[tokio::test]
async fn a_kubeconfig_file_reaches_its_cluster() {
    let cluster = FakeCluster::start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    cluster.write_kubeconfig(&path).unwrap();
    let client = client_from_kubeconfig(Some(&path)).await.unwrap();
    let version = client.apiserver_version().await.unwrap();
    assert!(!version.git_version.is_empty());
}

#[tokio::test]
async fn bad_files_are_named_in_the_error() {
    async fn error_of(path: &std::path::Path) -> idp_core::Error {
        match client_from_kubeconfig(Some(path)).await {
            Ok(_) => panic!("{} gave a client", path.display()),
            Err(e) => e,
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.kubeconfig");
    let err = error_of(&missing).await;
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.report().contains("missing.kubeconfig"),
        "{}",
        err.report()
    );

    let malformed = dir.path().join("malformed.kubeconfig");
    std::fs::write(&malformed, "clusters: [unclosed").unwrap();
    let err = error_of(&malformed).await;
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(
        err.report().contains("malformed.kubeconfig"),
        "{}",
        err.report()
    );

    let no_context = dir.path().join("empty.kubeconfig");
    std::fs::write(
        &no_context,
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
    )
    .unwrap();
    let err = error_of(&no_context).await;
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.report().contains("current context"), "{}", err.report());
}
