//! One router per area. The lead wires more here as the crates land: deployments
//! (`idp-deploy`), the scaffolder, previews and admission each get a module with a
//! `router()` and optional ports in [`AppState`](crate::server::state::AppState).

pub mod admission;
pub mod catalog;
pub mod deliver;
pub mod ops;
pub mod policy;
pub mod previews;
pub mod scaffolder;
pub mod search;
