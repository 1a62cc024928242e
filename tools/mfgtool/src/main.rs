//! OEM host tool: seal bundles, verify device IDs, ledger, disk images

fn main() {}
