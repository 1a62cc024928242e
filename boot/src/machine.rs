//! The loader's view of the machine: the drivers the console commands and
//! the provisioning flow work with, built once at boot.

use crate::arch::timer::GenericTimer;
use board::{Current, Platform};
use core::fmt;
use hal::MmioRegion;
use imx_uart::Uart;

/// Everything commands may touch.
pub struct Machine {
    /// The console.
    pub console: Uart<MmioRegion>,
    /// The generic timer.
    pub clock: GenericTimer,
    /// What TF-A/QEMU passed in x0 (the DTB address, or 0).
    pub dtb: u64,
    /// Console input read ahead while looking for Ctrl-C.
    pub typeahead: heapless::Deque<u8, 256>,
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

    /// DRAM as mapped: `[start, end)`.
    pub fn dram(&self) -> (u64, u64) {
        (
            board::soc::DRAM_BASE,
            board::soc::DRAM_BASE + Current::DRAM_SIZE,
        )
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
