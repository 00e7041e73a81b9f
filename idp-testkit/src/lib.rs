//! idp-testkit (being written).
