//! Kubernetes plumbing: health assessment (more being written).

pub mod health;
