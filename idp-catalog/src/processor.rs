//! Entity processors: steps every entity goes through before it is validated, the
//! counterpart of `preProcessEntity` in Backstage's catalog processors.
//!
//! A platform registers processors on the catalog
//! ([`InMemoryCatalog::with_processor`](crate::InMemoryCatalog::with_processor)) to fill
//! in what its sources leave out: a `metadata.uid`, a default owner, labels derived
//! from the location. They run wherever entities are prepared — on the provider's
//! reader threads during a streamed [`refresh`](crate::provider::refresh), on the
//! validating threads of [`apply`](crate::InMemoryCatalog::apply) — after the location
//! annotations are set and before validation, so what they write is validated, stored,
//! indexed and compared like the rest of the entity. They must be deterministic (the
//! same input gives the same output), or every refresh reports every entity as updated.
//!
//! ```
//! use idp_catalog::{EntityInput, InMemoryCatalog, Mutation, processor::EntityProcessor};
//! use serde_json::Value;
//!
//! /// Entities without an owner belong to the platform team.
//! #[derive(Debug)]
//! struct DefaultOwner;
//!
//! impl EntityProcessor for DefaultOwner {
//!     fn name(&self) -> &str {
//!         "default-owner"
//!     }
//!     fn pre_process(&self, entity: &mut Value, _location: Option<&str>) -> idp_core::Result<()> {
//!         if let Some(spec) = entity.get_mut("spec").and_then(Value::as_object_mut) {
//!             spec.entry("owner").or_insert_with(|| "group:default/platform".into());
//!         }
//!         Ok(())
//!     }
//! }
//!
//! let catalog = InMemoryCatalog::new().with_processor(DefaultOwner);
//! catalog.apply("p", Mutation::Full(vec![EntityInput::new(serde_json::json!({
//!     "apiVersion": "backstage.io/v1alpha1", "kind": "System", "metadata": {"name": "shop"}, "spec": {}}))]));
//! let shop = catalog.snapshot().get(&"system:shop".parse().unwrap()).unwrap();
//! assert_eq!(shop.to_value()["spec"]["owner"], "group:default/platform");
//! ```

use std::fmt;

use serde_json::Value;

/// A step applied to every entity before validation.
///
/// ```
/// use idp_catalog::processor::EntityProcessor;
/// #[derive(Debug)]
/// struct Nothing;
/// impl EntityProcessor for Nothing {
///     fn name(&self) -> &str { "nothing" }
///     fn pre_process(&self, _: &mut serde_json::Value, _: Option<&str>) -> idp_core::Result<()> { Ok(()) }
/// }
/// let _ = idp_catalog::InMemoryCatalog::new().with_processor(Nothing);
/// ```
pub trait EntityProcessor: Send + Sync + fmt::Debug {
    /// A name for logs and rejections.
    fn name(&self) -> &str;

    /// Change `entity` (its envelope, placeholders resolved, location annotations set)
    /// in place. `location` is where it was read from (`file:/…`, `url:…`), if known.
    /// An error rejects the entity: the report names the processor and the message, and
    /// a version already in the catalog is kept.
    ///
    /// # Errors
    ///
    /// Whatever makes the entity unacceptable to this processor.
    fn pre_process(&self, entity: &mut Value, location: Option<&str>) -> idp_core::Result<()>;
}
