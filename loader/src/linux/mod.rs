//! Booting Linux like U-Boot: from the eMMC (a signed FIT, or on
//! development builds the raw partitions), validate the Image, place it,
//! fix up the device tree, scrub, and jump.

pub mod image;

#[cfg(target_os = "none")]
pub mod autoboot;
#[cfg(target_os = "none")]
pub mod disk;
#[cfg(target_os = "none")]
pub mod handoff;
#[cfg(target_os = "none")]
pub mod place;
#[cfg(target_os = "none")]
pub mod verified;

/// Boots what the eMMC holds: the signed FIT in the `boot` partition (the
/// only choice of a production loader), else the raw `kernel`, `dtb` and
/// `initrd` partitions. Returns only on an error.
#[cfg(target_os = "none")]
pub fn boot(m: &mut crate::machine::Machine) -> Result<(), crate::requests::CmdError> {
    if cfg!(feature = "production") || disk::fit_partition(m)?.is_some() {
        return verified::boot(m);
    }
    let t0 = crate::arch::cycles();
    let l = disk::load_from_mmc(m)?;
    defmt::info!("bench linux_load={=u64}", crate::arch::cycles() - t0);
    place::start(m, l.kernel, l.initrd, l.fdt)
}
