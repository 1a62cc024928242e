//! The loader

fn main() {}
