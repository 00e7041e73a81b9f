//! idp-catalog (being written).
