//! The GitOps environment provider (being written).
