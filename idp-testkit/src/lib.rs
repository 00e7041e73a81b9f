//! idp-testkit (being written).

pub mod conformance;
pub mod doubles;
pub mod fixtures;
