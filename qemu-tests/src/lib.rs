//! Host-side tests that boot the loader in QEMU imx8mp-evk
#![no_std]
