//! Booting Linux like U-Boot's `booti`: validate the Image, place it, fix up
//! the device tree, scrub, and jump.

pub mod image;

#[cfg(target_os = "none")]
pub mod handoff;
