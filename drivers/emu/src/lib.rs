//! Emulated CAAM and OCOTP for the QEMU board, the virtual-chip fuse file,
//! and the A64 load/store decoder that MMIO traps go through.
#![no_std]

#[cfg(test)]
extern crate std;

pub mod fusefile;
