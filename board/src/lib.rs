//! Board support: the QEMU imx8mp-evk machine and the real i.MX8M Plus EVK
#![no_std]
