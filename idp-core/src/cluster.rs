//! Kubernetes plumbing (being written).
