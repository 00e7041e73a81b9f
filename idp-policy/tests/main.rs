//! idp-policy's integration tests: Pod Security Standards, guardrails, Rego, CEL, mutation and admission.
//!
//! One test binary for the whole crate: each module is one file of `tests/`, so the
//! dependencies are linked once rather than once per file.

mod admission;
#[cfg(feature = "admission")]
mod admission_http;
mod audit;
#[cfg(feature = "cel")]
mod cel;
#[cfg(feature = "cel")]
mod cel_cluster;
mod engine;
#[cfg(all(feature = "rego", feature = "cel"))]
mod gatekeeper_cel;
#[cfg(feature = "rego")]
mod gatekeeper_cluster;
#[cfg(feature = "rego")]
mod gatekeeper_config;
#[cfg(feature = "rego")]
mod gatekeeper_expansion;
mod gatekeeper_mutation;
mod guardrails;
mod hostile;
mod hostile_native;
mod kyverno;
mod kyverno_cluster;
mod kyverno_generate;
mod kyverno_mutate;
mod kyverno_values;
mod mutate;
mod policy_report;
mod pss;
mod pss_exclusions;
#[cfg(feature = "rego")]
mod rego;
