//! idpctl (being written).
fn main() {}
