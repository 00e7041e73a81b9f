//! # idp-catalog
//!
//! A Backstage-compatible software catalog (entities, validation, relations, search) and the scaffolder that runs Backstage-format templates.
//!
//! Part of [idp](https://github.com/idp-rs/idp). It depends only on `idp-core` and
//! implements its ports, so a platform can use it or replace it with its own
//! implementation of the same trait.
//!
//! **Status:** this crate is being built; this release has no public API yet.
