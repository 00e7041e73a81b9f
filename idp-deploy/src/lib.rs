//! idp-deploy (being written).
