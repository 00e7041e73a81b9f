//! # idp-catalog
//!
//! A Backstage-compatible software catalog: it reads `catalog-info.yaml` files as
//! Backstage does (same kinds, same validation verdicts, same relations) and stays fast
//! at hundreds of thousands of entities.
//!
//! Start with [`InMemoryCatalog`] (idp-core's [`Catalog`](idp_core::Catalog) port) and
//! feed it with a provider such as [`provider::FileProvider`]. Every part is usable on
//! its own:
//!
//! - [`kinds`]: typed views and JSON Schemas of the built-in kinds.
//! - [`rules`]: Backstage's field-format rules (names, namespaces, labels, tags).
//! - [`validate`]: the [`Validator`](validate::Validator), with custom kinds by JSON Schema.
//! - [`parse`] and [`placeholder`]: multi-document YAML and `$text`/`$json`/`$yaml`.
//! - [`load`]: file-level validation reports (`idpctl catalog validate`).
//! - [`relations`]: relations derived from spec fields.
//! - [`catalog`]: the indexed, copy-on-write [`InMemoryCatalog`] and its [`Snapshot`]s.
//! - [`filter`]: Backstage filter strings (`kind=component,spec.type=service`).
//! - [`provider`]: the [`EntityProvider`](provider::EntityProvider) trait and providers.
//! - [`processor`]: [`EntityProcessor`](processor::EntityProcessor)s, steps every entity
//!   goes through before validation (a `metadata.uid`, defaults).
//! - [`search`]: ranked full-text search (BM25, field boosts, typo tolerance, `Embedder`).
//! - [`generate`]: a synthetic organisation for benchmarks and demos.
//! - [`scaffolder`]: run Backstage `scaffolder.backstage.io/v1beta3` templates (golden
//!   paths, self-service infrastructure) with pluggable actions.
//!
//! ```
//! use idp_catalog::{InMemoryCatalog, generate};
//! let catalog = InMemoryCatalog::new();
//! let inputs = generate::org(200, 7).into_iter().map(idp_catalog::EntityInput::from).collect();
//! let report = catalog.apply("demo", idp_catalog::Mutation::Full(inputs));
//! assert!(report.rejected.is_empty());
//! assert_eq!(catalog.snapshot().len(), 200);
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod catalog;
mod cow;
mod fastyaml;
pub mod filter;
pub mod generate;
pub mod kinds;
pub mod load;
pub mod parse;
pub mod placeholder;
pub mod processor;
pub mod provider;
pub mod relations;
pub mod rules;
pub mod scaffolder;
pub mod search;
pub mod validate;

pub use catalog::{
    DanglingRelation, EntityInput, InMemoryCatalog, IngestReport, JsonPage, Mutation,
    ProjectedPage, QueryOptions, Rejection, Snapshot, Stage, Staged, StagedMutation,
};
