//! # idp-policy
//!
//! Policy-as-code guardrails that run before commit and at admission: Pod Security Standards, guardrails, Rego and CEL policies, and mutations.
//!
//! Part of [idp](https://github.com/idp-rs/idp). It depends only on `idp-core` and
//! implements its ports, so a platform can use it or replace it with its own
//! implementation of the same trait.
//!
//! **Status:** this crate is being built; this release has no public API yet.
