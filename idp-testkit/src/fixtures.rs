//! Git fixtures (being written).
