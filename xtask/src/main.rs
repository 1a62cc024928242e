//! The one build, run, test and bench entry point

fn main() {}
