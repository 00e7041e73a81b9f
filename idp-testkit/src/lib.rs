//! idp-testkit (being written).

pub mod fixtures;
