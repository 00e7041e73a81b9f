//! idp-policy (being written).
