//! idp-preview (being written).
