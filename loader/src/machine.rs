//! The loader's view of the machine: the drivers the console commands and
//! the provisioning flow work with, built once at boot.

use crate::arch::cache::IdentityDma;
use crate::arch::{layout, mmu};
use crate::requests::CmdError;
use board::timer::GenericTimer;
use board::{Current, Platform};
use core::fmt;
use hal::MmioRegion;
use imx_uart::Uart;
use ocotp::Ocotp;

/// The CAAM driver as the loader instantiates it.
pub type LoaderCaam = caam::Caam<MmioRegion, IdentityDma, GenericTimer>;

/// The eMMC driver as the loader instantiates it.
pub type LoaderMmc = usdhc::Usdhc<board::MmcRegs, IdentityDma, GenericTimer>;

/// Everything commands may touch.
pub struct Machine {
    /// The console.
    pub console: Uart<MmioRegion>,
    /// What TF-A/QEMU passed in x0 (the DTB address, or 0).
    pub dtb: u64,
    /// Console input read ahead while looking for Ctrl-C.
    pub typeahead: heapless::Deque<u8, 256>,
    /// The kernel command line for the next boot.
    pub bootargs: heapless::String<512>,
    /// The CAAM and the fuses, or why they are unavailable (QEMU: no fuse
    /// file).
    pub security: Result<Security, &'static str>,
    /// The eMMC (an SD card stands in on QEMU).
    pub mmc: LoaderMmc,
    /// The production console's unlock state for this boot.
    pub lock: crate::console::lock::Lock,
}

/// The security hardware.
pub struct Security {
    /// The CAAM (its `info()` says whether `init` succeeded).
    pub caam: LoaderCaam,
    /// The fuses.
    pub ocotp: Ocotp<MmioRegion>,
}

/// A checked range of DRAM outside the loader's own image: what commands
/// may read and write when the user names an address.
#[derive(Clone, Copy, Debug)]
pub struct RamRange {
    /// First byte.
    pub addr: u64,
    /// Length in bytes.
    pub len: u64,
}

impl RamRange {
    /// One past the last byte.
    pub fn end(&self) -> u64 {
        self.addr + self.len
    }

    /// Whether the two ranges share a byte.
    pub fn overlaps(&self, o: &RamRange) -> bool {
        self.addr < o.end() && o.addr < self.end()
    }

    /// The range as a slice.
    ///
    /// # Safety
    /// No other reference to any byte of the range may be live while the
    /// returned one is (the loader keeps none: its own data is outside every
    /// `RamRange`).
    pub unsafe fn slice_mut(&self) -> &'static mut [u8] {
        // SAFETY: `Machine::ram` checked that the range is mapped read/write
        // DRAM outside the loader image; exclusivity is the caller's promise.
        unsafe { core::slice::from_raw_parts_mut(self.addr as *mut u8, self.len as usize) }
    }
}

impl Machine {
    /// Whether Ctrl-C is waiting on the console. Other input read meanwhile
    /// is kept for the shell (type-ahead); on Ctrl-C it is dropped, as the
    /// user asked to stop.
    pub fn ctrlc(&mut self) -> bool {
        while !self.typeahead.is_full() {
            match self.console.try_read_byte() {
                Some(0x03) => {
                    self.typeahead.clear();
                    return true;
                }
                Some(b) => {
                    let _ = self.typeahead.push_back(b);
                }
                None => break,
            }
        }
        false
    }

    /// The next console input byte, if any (type-ahead first).
    pub fn try_read_byte(&mut self) -> Option<u8> {
        self.typeahead
            .pop_front()
            .or_else(|| self.console.try_read_byte())
    }

    /// Checks that `[addr, addr + len)` is mapped read/write DRAM that does
    /// not overlap the loader's own image, and returns it.
    pub fn ram(&self, addr: u64, len: u64) -> Result<RamRange, CmdError> {
        let (start, end) = self.dram();
        let r_end = addr
            .checked_add(len)
            .filter(|&e| addr >= start && e <= end)
            .ok_or_else(|| {
                CmdError::msg(format_args!(
                    "range 0x{addr:x}+0x{len:x} is outside RAM (0x{start:x}..0x{end:x})"
                ))
            })?;
        let image = RamRange {
            addr: layout::image_start(),
            len: layout::image_end() - layout::image_start(),
        };
        let r = RamRange { addr, len };
        if r.overlaps(&image) {
            return Err(CmdError::msg(format_args!(
                "range 0x{addr:x}+0x{len:x} overlaps the loader (0x{:x}..0x{:x})",
                image.addr,
                image.end()
            )));
        }
        let mut a = addr;
        while a < r_end {
            let (perm, end) = mmu::span(a);
            if perm != mmu::Perm::ReadWrite {
                return Err(CmdError::msg(format_args!(
                    "address 0x{a:x} is not usable RAM"
                )));
            }
            a = end;
        }
        Ok(r)
    }

    /// DRAM as mapped: `[start, end)`.
    pub fn dram(&self) -> (u64, u64) {
        (board::dram::BASE, board::dram::BASE + Current::DRAM_SIZE)
    }
}

impl fmt::Write for Machine {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.console.write_str(s)
    }
}

/// `println!` for the console: formats, then `\r\n`.
macro_rules! outln {
    ($m:expr) => {{
        let _ = core::fmt::Write::write_str($m, "\r\n");
    }};
    ($m:expr, $($arg:tt)*) => {{
        let _ = core::fmt::Write::write_fmt($m, format_args!($($arg)*));
        let _ = core::fmt::Write::write_str($m, "\r\n");
    }};
}
pub(crate) use outln;

/// U-Boot's name for a card kind (`mmc list`, the `MMC:` boot line).
pub fn card_kind(k: usdhc::CardKind) -> &'static str {
    match k {
        usdhc::CardKind::Sd => "SD",
        _ => "eMMC",
    }
}
