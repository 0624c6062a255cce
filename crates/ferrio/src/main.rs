//! The ferrio gateway.
fn main() {}
