//! The DRAM plan: every fixed place the loader, QEMU or a command puts
//! something, in one table. Offsets from [`BASE`] (0x4000_0000):
//!
//! | offset        | size     | what |
//! |---------------|----------|------|
//! | `0x0010_0000` | 4 KiB    | QEMU only: the fuse file (`-device loader`), scrubbed at boot |
//! | `0x0020_0000` | image    | the loader (BL33 link address, `linker/loader.ld`) |
//! | `0x0100_0000` | 8 MiB    | provisioning scratch: bundle and blob buffers, zeroed after every run |
//! | `0x0700_0000` | 16 MiB   | `boot`: the device tree read from the eMMC |
//! | `0x0800_0000` | 128 MiB  | `boot`: the initramfs read from the eMMC |
//! | `0x1000_0000` | 256 MiB  | `boot`: the FIT read to be verified |
//!
//! The kernel itself goes where its Image header says (2 MiB aligned above
//! the loader, `linux::image`), and the fixed-up device tree right after it.

/// The first byte of DRAM on i.MX8M (U-Boot `CFG_SYS_SDRAM_BASE`).
pub const BASE: u64 = 0x4000_0000;

/// Where QEMU's `-device loader` puts the fuse file: the page below the
/// loader's 2 MiB, which QEMU leaves alone.
pub const FUSE_PAGE: u64 = BASE + 0x0010_0000;
/// Its size.
pub const FUSE_PAGE_LEN: u64 = 0x1000;

/// Where TF-A (and QEMU) load BL33: the loader's link address.
pub const LOAD_ADDR: u64 = BASE + 0x0020_0000;

/// DRAM the provisioning flow uses for the bundle and blob buffers
/// (outside the loader image, below where QEMU puts a DTB), zeroed at
/// boot and after every run.
pub const PROVISION_SCRATCH: u64 = BASE + 0x0100_0000;
/// Its length.
pub const PROVISION_SCRATCH_LEN: u64 = 0x0080_0000;

/// Where `boot` reads the device tree from the eMMC.
pub const FDT_LOAD: u64 = BASE + 0x0700_0000;
/// Where `boot` reads the initramfs from the eMMC.
pub const INITRD_LOAD: u64 = BASE + 0x0800_0000;
/// Where `boot` reads the FIT to verify it.
pub const FIT_LOAD: u64 = BASE + 0x1000_0000;
/// The largest FIT `boot` reads.
pub const FIT_MAX: u64 = 0x1000_0000;

/// Room the device tree gets to grow for the loader's fix-ups.
pub const FDT_SLACK: u64 = 0x1_0000;

// The fixed areas are in the order of the table and do not overlap.
const _: () = assert!(FUSE_PAGE + FUSE_PAGE_LEN <= LOAD_ADDR);
const _: () = assert!(LOAD_ADDR < PROVISION_SCRATCH);
const _: () = assert!(PROVISION_SCRATCH + PROVISION_SCRATCH_LEN <= FDT_LOAD);
const _: () = assert!(FDT_LOAD < INITRD_LOAD && INITRD_LOAD < FIT_LOAD);
