//! Git plumbing (being written).
