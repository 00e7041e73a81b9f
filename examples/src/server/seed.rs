//! The demo organisation written into a fresh data directory's catalog repository: a
//! small online shop with its platform team, a few dozen entities of every built-in kind.

use idp_core::git::{CommitRequest, GitRepo, Identity, InitOptions};

/// `(path, YAML)` pairs, committed as the repository's first commit.
pub const FILES: &[(&str, &str)] = &[
    ("org/catalog-info.yaml", ORG),
    ("systems/catalog-info.yaml", SYSTEMS),
    ("services/storefront/catalog-info.yaml", STOREFRONT),
    ("services/payments/catalog-info.yaml", PAYMENTS),
    ("services/platform/catalog-info.yaml", PLATFORM),
    ("resources/catalog-info.yaml", RESOURCES),
    (
        "templates/rust-service/catalog-info.yaml",
        crate::server::templates::RUST_SERVICE,
    ),
    (
        "templates/postgres-database/catalog-info.yaml",
        crate::server::templates::POSTGRES_DATABASE,
    ),
    (
        "templates/object-bucket/catalog-info.yaml",
        crate::server::templates::OBJECT_BUCKET,
    ),
];

/// Create the local catalog repository at `path` with the demo organisation on
/// `branch`, unless it exists already (then it is opened as is).
pub async fn ensure_repo(path: &std::path::Path, branch: &str) -> idp_core::Result<GitRepo> {
    if path.join("HEAD").exists() {
        return GitRepo::open(path).await;
    }
    let repo = GitRepo::init(path, InitOptions::bare(branch)).await?;
    let mut request = CommitRequest::new(
        branch,
        "Seed the demo organisation",
        Identity::new("idp-server", "idp-server@localhost"),
    );
    for (file, text) in FILES {
        request = request.put(*file, text.as_bytes());
    }
    repo.commit(request).await?;
    tracing::info!(repo = %path.display(), entities = entity_count(), "seeded the demo catalog");
    Ok(repo)
}

/// How many entities the demo organisation holds.
pub fn entity_count() -> usize {
    FILES
        .iter()
        .map(|(_, text)| text.lines().filter(|l| l.starts_with("kind: ")).count())
        .sum()
}

const ORG: &str = r"apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: acme
  title: ACME Shop
  description: The whole engineering organisation.
spec:
  type: organization
  profile:
    displayName: ACME Shop Engineering
    email: engineering@acme.example
  children: [storefront-team, payments-team, platform-team]
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: storefront-team
  title: Storefront
  description: Builds the web shop, the cart and checkout.
spec:
  type: team
  parent: acme
  profile:
    email: storefront@acme.example
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: payments-team
  title: Payments
  description: Owns payment processing, fraud detection and the ledger.
spec:
  type: team
  parent: acme
  profile:
    email: payments@acme.example
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: Group
metadata:
  name: platform-team
  title: Platform
  description: Runs the developer platform, CI and the shared infrastructure.
spec:
  type: team
  parent: acme
  profile:
    email: platform@acme.example
  children: []
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: ada.lovelace
spec:
  profile:
    displayName: Ada Lovelace
    email: ada@acme.example
  memberOf: [storefront-team]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: grace.hopper
spec:
  profile:
    displayName: Grace Hopper
    email: grace@acme.example
  memberOf: [storefront-team]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: alan.turing
spec:
  profile:
    displayName: Alan Turing
    email: alan@acme.example
  memberOf: [payments-team]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: katherine.johnson
spec:
  profile:
    displayName: Katherine Johnson
    email: katherine@acme.example
  memberOf: [payments-team]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: linus.torvalds
spec:
  profile:
    displayName: Linus Torvalds
    email: linus@acme.example
  memberOf: [platform-team]
---
apiVersion: backstage.io/v1alpha1
kind: User
metadata:
  name: margaret.hamilton
spec:
  profile:
    displayName: Margaret Hamilton
    email: margaret@acme.example
  memberOf: [platform-team, payments-team]
";

const SYSTEMS: &str = r"apiVersion: backstage.io/v1alpha1
kind: Domain
metadata:
  name: commerce
  title: Commerce
  description: Everything a customer touches between browsing and paying.
spec:
  owner: group:default/acme
---
apiVersion: backstage.io/v1alpha1
kind: Domain
metadata:
  name: engineering-productivity
  title: Engineering productivity
  description: Tools that help the teams ship.
spec:
  owner: platform-team
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: storefront
  title: Storefront
  description: The public web shop, cart and checkout.
  tags: [web, customer-facing]
spec:
  owner: storefront-team
  domain: commerce
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: payments
  title: Payments
  description: Card payments, refunds and fraud screening.
  tags: [pci]
spec:
  owner: payments-team
  domain: commerce
---
apiVersion: backstage.io/v1alpha1
kind: System
metadata:
  name: developer-platform
  title: Developer platform
  description: The internal developer portal, CI runners and deployment tooling.
spec:
  owner: platform-team
  domain: engineering-productivity
";

const STOREFRONT: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: web-shop
  title: Web shop
  description: The customer-facing web shop (server-rendered pages).
  tags: [typescript, web]
  links:
    - url: https://shop.acme.example
      title: Production
  annotations:
    github.com/project-slug: acme/web-shop
spec:
  type: website
  lifecycle: production
  owner: storefront-team
  system: storefront
  consumesApis: [cart-api, checkout-api]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: cart-service
  title: Cart service
  description: Keeps shopping carts and prices them.
  tags: [rust, grpc]
  annotations:
    github.com/project-slug: acme/cart-service
spec:
  type: service
  lifecycle: production
  owner: storefront-team
  system: storefront
  providesApis: [cart-api]
  dependsOn: [resource:orders-db]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: checkout-service
  title: Checkout service
  description: Turns a cart into an order and asks payments to charge it.
  tags: [rust]
spec:
  type: service
  lifecycle: production
  owner: storefront-team
  system: storefront
  providesApis: [checkout-api]
  consumesApis: [payments-api, cart-api]
  dependsOn: [resource:orders-db, component:notification-service]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: recommendations
  title: Recommendations
  description: Suggests products from browsing history (experimental).
  tags: [python, ml]
spec:
  type: service
  lifecycle: experimental
  owner: storefront-team
  system: storefront
  consumesApis: [cart-api]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: cart-api
  title: Cart API
  description: Create, read and change shopping carts.
  tags: [rest]
spec:
  type: openapi
  lifecycle: production
  owner: storefront-team
  system: storefront
  definition: |
    openapi: 3.0.3
    info:
      title: Cart API
      version: 1.4.0
    paths:
      /carts/{id}:
        get:
          summary: Read a cart
          parameters:
            - name: id
              in: path
              required: true
              schema: {type: string}
          responses:
            "200": {description: The cart}
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: checkout-api
  title: Checkout API
  description: Place orders.
spec:
  type: openapi
  lifecycle: production
  owner: storefront-team
  system: storefront
  definition: |
    openapi: 3.0.3
    info:
      title: Checkout API
      version: 2.0.0
    paths:
      /orders:
        post:
          summary: Place an order
          responses:
            "201": {description: The order}
"#;

const PAYMENTS: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments-gateway
  title: Payments gateway
  description: Charges cards through the acquiring bank and records refunds.
  tags: [java, pci]
spec:
  type: service
  lifecycle: production
  owner: payments-team
  system: payments
  providesApis: [payments-api, payment-events]
  consumesApis: [fraud-api]
  dependsOn: [resource:payments-db, resource:events-bus]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: fraud-detector
  title: Fraud detector
  description: Scores payments for fraud risk before they are charged.
  tags: [python, ml, pci]
spec:
  type: service
  lifecycle: production
  owner: payments-team
  system: payments
  providesApis: [fraud-api]
  consumesApis: [payment-events]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ledger
  title: Ledger
  description: Double-entry ledger of every payment and refund.
  tags: [rust]
spec:
  type: service
  lifecycle: production
  owner: payments-team
  system: payments
  consumesApis: [payment-events]
  dependsOn: [resource:payments-db]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: payments-sdk
  title: Payments SDK
  description: Client library other services use to call the payments API.
  tags: [rust, library]
spec:
  type: library
  lifecycle: production
  owner: payments-team
  system: payments
  consumesApis: [payments-api]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: payments-api
  title: Payments API
  description: Authorise, capture and refund payments.
  tags: [rest, pci]
spec:
  type: openapi
  lifecycle: production
  owner: payments-team
  system: payments
  definition: |
    openapi: 3.0.3
    info:
      title: Payments API
      version: 3.1.0
    paths:
      /payments:
        post:
          summary: Authorise a payment
          responses:
            "201": {description: The payment}
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: payment-events
  title: Payment events
  description: Events published when a payment changes state.
  tags: [kafka]
spec:
  type: asyncapi
  lifecycle: production
  owner: payments-team
  system: payments
  definition: |
    asyncapi: 2.6.0
    info:
      title: Payment events
      version: 1.0.0
    channels:
      payments.state-changed:
        subscribe:
          message:
            payload: {type: object}
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: fraud-api
  title: Fraud scoring API
  description: Score a payment for fraud risk.
spec:
  type: grpc
  lifecycle: production
  owner: payments-team
  system: payments
  definition: |
    syntax = "proto3";
    service Fraud { rpc Score (ScoreRequest) returns (ScoreReply); }
    message ScoreRequest { string payment_id = 1; }
    message ScoreReply { double risk = 1; }
"#;

const PLATFORM: &str = r#"apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: idp-portal
  title: Developer portal
  description: "This portal: catalog, scaffolder and deployments (idp-server)."
  tags: [rust, portal]
spec:
  type: website
  lifecycle: production
  owner: platform-team
  system: developer-platform
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: notification-service
  title: Notification service
  description: Sends e-mails and push notifications for every team.
  tags: [go]
spec:
  type: service
  lifecycle: production
  owner: platform-team
  system: developer-platform
  providesApis: [notifications-api]
  dependsOn: [resource:events-bus]
---
apiVersion: backstage.io/v1alpha1
kind: Component
metadata:
  name: ci-runners
  title: CI runners
  description: Autoscaled build runners for every repository.
  tags: [kubernetes]
spec:
  type: service
  lifecycle: production
  owner: platform-team
  system: developer-platform
  dependsOn: [resource:artifact-bucket]
---
apiVersion: backstage.io/v1alpha1
kind: API
metadata:
  name: notifications-api
  title: Notifications API
  description: Send an e-mail or a push notification.
spec:
  type: openapi
  lifecycle: production
  owner: platform-team
  system: developer-platform
  definition: |
    openapi: 3.0.3
    info:
      title: Notifications API
      version: 1.0.0
    paths:
      /notifications:
        post:
          summary: Send a notification
          responses:
            "202": {description: Accepted}
"#;

const RESOURCES: &str = r"apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: orders-db
  title: Orders database
  description: PostgreSQL cluster holding carts and orders.
  tags: [postgres]
spec:
  type: database
  owner: storefront-team
  system: storefront
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: payments-db
  title: Payments database
  description: PostgreSQL cluster holding payments and the ledger (PCI scope).
  tags: [postgres, pci]
spec:
  type: database
  owner: payments-team
  system: payments
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: events-bus
  title: Event bus
  description: Kafka cluster shared by every team.
  tags: [kafka]
spec:
  type: kafka-cluster
  owner: platform-team
  system: developer-platform
---
apiVersion: backstage.io/v1alpha1
kind: Resource
metadata:
  name: artifact-bucket
  title: Artifact bucket
  description: Object storage for build artifacts and container layers.
  tags: [s3]
spec:
  type: s3-bucket
  owner: platform-team
  system: developer-platform
";

#[cfg(test)]
mod tests {
    use super::*;
    use idp_catalog::load::validate_text;
    use idp_catalog::placeholder::MemorySource;
    use idp_catalog::validate::Validator;

    #[test]
    fn every_demo_entity_is_valid() {
        let validator = Validator::new();
        let mut count = 0;
        for (file, text) in FILES {
            for report in
                validate_text(file, file, text, &MemorySource::default(), None, &validator)
            {
                assert!(report.valid, "{file}: {report:?}");
                count += 1;
            }
        }
        assert_eq!(count, entity_count());
        assert!(count >= 30, "a few dozen entities: {count}");
    }
}
