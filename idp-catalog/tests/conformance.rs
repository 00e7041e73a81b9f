//! `InMemoryCatalog` passes the `Catalog` conformance suite every implementation must pass.

#[tokio::test]
async fn in_memory_catalog_is_a_conforming_catalog() {
    let catalog = idp_catalog::InMemoryCatalog::new();
    idp_testkit::conformance::catalog(&catalog).await;
}
