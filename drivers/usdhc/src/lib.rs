//! i.MX uSDHC driver: SD and eMMC cards, ADMA2 (default) and PIO transfers.
//!
//! The board builds a [`Usdhc`] from the controller's register window (any
//! [`RegisterIo`]), a [`Dma`] for bus addresses and cache maintenance, a
//! [`Clock`] for timeouts and a [`DmaMem`] (ADMA2 descriptor table and bounce
//! buffer) placed in memory the controller can reach (below 4 GiB):
//!
//! ```ignore
//! let mut mmc = Usdhc::new(regs, dma, clock, dma_mem, Config::IMX8MP_EVK_EMMC);
//! let info = mmc.init()?;
//! mmc.read(0, &mut buf)?;
//! ```
//!
//! Every wait is bounded by a [`hal::Deadline`]; after a data error the
//! driver resets the command and data lines, stops the card and retries the
//! request once. Writes report success only after CMD13 shows the card back
//! in transfer state. The driver also runs on QEMU's SDHCI model (which
//! needs clock-control bits 0 and 2 set, gives no transfer-complete for R1b
//! commands, and reads MIX_CTRL back as 0).
#![no_std]

#[cfg(any(test, feature = "fakes"))]
extern crate std;

pub mod card;
mod error;
#[cfg(any(test, feature = "fakes"))]
pub mod fake;
pub mod regs;
#[cfg(test)]
mod tests;

pub use card::{BusMode, BusWidth, CardInfo, CardKind, Version};
pub use error::{At, MmcError, Wait};

use block::{BlockDevice, check_range};
use card::ext_csd;
use hal::{CACHE_LINE, Clock, Dma, RegisterIo};
use regs::offsets as o;
use regs::{CMD_XFR_TYP, INT_STATUS, MIX_CTRL, PRES_STATE, PROT_CTRL, SYS_CTRL, WTMK_LVL};
use zeroize::Zeroize;

pub use block::BLOCK;
/// ADMA2 descriptors in [`DmaMem`].
pub const ADMA_DESCS: usize = 64;
/// Bytes moved by one ADMA2 descriptor (at most 0xFFFF fit the length field).
pub const ADMA_SEGMENT: usize = 0x8000;
/// Size of the bounce buffer in [`DmaMem`].
pub const BOUNCE: usize = 0x1_0000;

const DIRECT_MAX_BLOCKS: usize = ADMA_DESCS * ADMA_SEGMENT / BLOCK;
const BOUNCE_MAX_BLOCKS: usize = BOUNCE / BLOCK;
const PIO_MAX_BLOCKS: usize = 0xFFFF;

// ADMA2 descriptor attributes: valid, end, "tran" action.
const ADMA_VALID: u64 = 0x01;
const ADMA_END: u64 = 0x02;
const ADMA_TRAN: u64 = 0x20;

const RESET_US: u64 = 100_000;
const CMD_US: u64 = 100_000;
const BUSY_US: u64 = 1_000_000;
const SWITCH_US: u64 = 3_000_000;
const ERASE_US: u64 = 60_000_000;
const POWER_UP_US: u64 = 1_000_000;
const BUFFER_US: u64 = 1_000_000;
const DATA_US: u64 = 5_000_000;
const PROGRAM_US: u64 = 5_000_000;

/// R1 card status error bits (out of range ... erase skip).
const R1_ERRORS: u32 = 0xFDF9_8000;
/// Of those, the ones that describe the previous command (not checked on CMD13).
const R1_PREVIOUS: u32 = (1 << 23) | (1 << 22);
const R1_SWITCH_ERROR: u32 = 1 << 7;
const R1_READY_FOR_DATA: u32 = 1 << 8;
const STATE_TRAN: u32 = 4;

const CMD_ERRORS: u32 = INT_STATUS::CTOE::SET.value
    | INT_STATUS::CCE::SET.value
    | INT_STATUS::CEBE::SET.value
    | INT_STATUS::CIE::SET.value;
const DATA_ERRORS: u32 = INT_STATUS::DTOE::SET.value
    | INT_STATUS::DCE::SET.value
    | INT_STATUS::DEBE::SET.value
    | INT_STATUS::AC12E::SET.value
    | INT_STATUS::DMAE::SET.value;
const INT_ENABLE: u32 = INT_STATUS::CC::SET.value
    | INT_STATUS::TC::SET.value
    | INT_STATUS::DINT::SET.value
    | INT_STATUS::BWR::SET.value
    | INT_STATUS::BRR::SET.value
    | CMD_ERRORS
    | DATA_ERRORS;

/// Memory the controller reads and writes by DMA: the ADMA2 descriptor table
/// and a bounce buffer for caller buffers that are misaligned or out of the
/// controller's reach. The board places it (in .bss) below 4 GiB.
#[repr(C, align(64))]
pub struct DmaMem {
    adma: [u64; ADMA_DESCS],
    bounce: [u8; BOUNCE],
}

impl DmaMem {
    /// A zeroed table and buffer.
    pub const fn new() -> Self {
        Self {
            adma: [0; ADMA_DESCS],
            bounce: [0; BOUNCE],
        }
    }
}

impl Default for DmaMem {
    fn default() -> Self {
        Self::new()
    }
}

/// How data moves between memory and the controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferMode {
    /// ADMA2 descriptors (default).
    Adma2,
    /// The CPU moves words through DATA_BUFF.
    Pio,
}

/// eMMC hardware partition (U-Boot's `mmc dev N PART`: 0, 1, 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HwPart {
    /// User data area.
    User = 0,
    /// Boot partition 1.
    Boot0 = 1,
    /// Boot partition 2.
    Boot1 = 2,
}

impl HwPart {
    /// From U-Boot's partition number.
    pub fn from_number(n: u8) -> Option<Self> {
        match n {
            0 => Some(Self::User),
            1 => Some(Self::Boot0),
            2 => Some(Self::Boot1),
            _ => None,
        }
    }
}

/// Board facts the driver needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// Frequency of the uSDHC root clock (the divider input), in Hz.
    pub base_clock_hz: u32,
    /// Widest data bus wired to the card.
    pub max_bus_width: BusWidth,
    /// The card is soldered (no card-detect line): assume it present.
    pub non_removable: bool,
    /// Allow eMMC high-speed (52 MHz) timing.
    pub high_speed: bool,
}

impl Config {
    /// EVK USDHC3: 8-bit eMMC, 400 MHz root clock.
    pub const IMX8MP_EVK_EMMC: Self = Self {
        base_clock_hz: 400_000_000,
        max_bus_width: BusWidth::Bit8,
        non_removable: true,
        high_speed: true,
    };
    /// QEMU `imx8mp-evk`: an SD card (or none) on any uSDHC, card detect works.
    pub const QEMU_SD: Self = Self {
        base_clock_hz: 400_000_000,
        max_bus_width: BusWidth::Bit4,
        non_removable: false,
        high_speed: false,
    };
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Rsp {
    None,
    /// 48-bit with CRC and index checks (R1, R5, R6, R7).
    R1,
    /// R1 with busy on DAT0.
    R1b,
    /// 136-bit (CID, CSD).
    R2,
    /// 48-bit without checks (OCR).
    R3,
}

#[derive(Clone, Copy)]
struct DataSpec {
    read: bool,
    blocks: u32,
    dma: bool,
}

/// A caller buffer, by direction.
enum Buf<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

impl Buf<'_> {
    fn len(&self) -> usize {
        match self {
            Self::Read(b) => b.len(),
            Self::Write(b) => b.len(),
        }
    }
    fn ptr(&self) -> *const u8 {
        match self {
            Self::Read(b) => b.as_ptr(),
            Self::Write(b) => b.as_ptr(),
        }
    }
    fn is_read(&self) -> bool {
        matches!(self, Self::Read(_))
    }
    fn reborrow(&mut self) -> Buf<'_> {
        match self {
            Self::Read(b) => Buf::Read(b),
            Self::Write(b) => Buf::Write(b),
        }
    }
}

struct CardState {
    info: CardInfo,
    part: HwPart,
    blocks: u64,
}

/// A uSDHC controller and the card in its slot.
pub struct Usdhc<R, D, C> {
    regs: R,
    dma: D,
    clock: C,
    mem: &'static mut DmaMem,
    cfg: Config,
    mode: TransferMode,
    multi_block: bool,
    card: Option<CardState>,
    retries: u32,
}

impl<R: RegisterIo, D: Dma, C: Clock> Usdhc<R, D, C> {
    /// Takes the controller. Nothing touches the hardware until [`init`](Self::init).
    pub fn new(regs: R, dma: D, clock: C, mem: &'static mut DmaMem, cfg: Config) -> Self {
        Self {
            regs,
            dma,
            clock,
            mem,
            cfg,
            mode: TransferMode::Adma2,
            multi_block: true,
            card: None,
            retries: 0,
        }
    }

    /// Whether a card is in the slot (always true for `non_removable`).
    pub fn card_present(&self) -> bool {
        self.cfg.non_removable || PRES_STATE::CINST.is_set(self.regs.read(o::PRES_STATE))
    }

    /// The card found by the last successful [`init`](Self::init).
    pub fn info(&self) -> Option<&CardInfo> {
        self.card.as_ref().map(|c| &c.info)
    }

    /// The selected hardware partition.
    pub fn partition(&self) -> HwPart {
        self.card.as_ref().map_or(HwPart::User, |c| c.part)
    }

    /// Chooses ADMA2 (default) or PIO for data transfers.
    pub fn set_transfer_mode(&mut self, mode: TransferMode) {
        self.mode = mode;
    }

    /// The current transfer mode.
    pub fn transfer_mode(&self) -> TransferMode {
        self.mode
    }

    /// With `false`, requests are sent as single-block commands (CMD17/24)
    /// only (for benches); default `true` (CMD18/25 with auto-CMD12).
    pub fn set_multi_block(&mut self, on: bool) {
        self.multi_block = on;
    }

    /// Requests retried after an error since `new` (one retry per request).
    pub fn retries(&self) -> u32 {
        self.retries
    }

    #[cfg(test)]
    fn bounce(&self) -> &[u8] {
        &self.mem.bounce
    }

    // ---- Controller basics -------------------------------------------------

    fn wait_reg(&self, us: u64, offset: usize, mask: u32, want: u32) -> bool {
        self.clock
            .deadline_us(us)
            .poll(&self.clock, || {
                (self.regs.read(offset) & mask == want).then_some(())
            })
            .is_some()
    }

    fn reset_all(&mut self) -> Result<(), MmcError> {
        // RSTA as a write of its own (QEMU and the RM agree).
        self.regs.write(o::SYS_CTRL, SYS_CTRL::RSTA::SET.value);
        if !self.wait_reg(RESET_US, o::SYS_CTRL, SYS_CTRL::RSTA::SET.value, 0) {
            return Err(MmcError::HostTimeout(Wait::Reset));
        }
        Ok(())
    }

    /// U-Boot `esdhc_init_common` after RSTA: "RSTA doesn't reset MMC_BOOT
    /// register", so a boot stage before the loader (SPL reading the eMMC
    /// boot partition, possibly in DDR or tuned HS modes) can leave boot
    /// mode, DDR_EN, tuning and delay-line settings behind. Clear them and
    /// put VEND_SPEC back to its default.
    fn clear_what_rsta_keeps(&mut self) {
        self.regs.write(o::TUNING_CTRL, 0);
        self.regs.write(o::CLK_TUNE_CTRL_STATUS, 0);
        self.regs.write(o::MMC_BOOT, 0);
        self.regs.write(o::MIX_CTRL, 0);
        self.regs.write(o::VEND_SPEC, regs::vend_spec::INIT);
        self.regs.write(o::DLL_CTRL, 0);
    }

    fn reset_lines(&mut self) {
        let bits = SYS_CTRL::RSTC::SET.value | SYS_CTRL::RSTD::SET.value;
        self.regs.modify(o::SYS_CTRL, 0, bits);
        // Bounded; a controller that keeps the bits set fails the next command.
        self.wait_reg(RESET_US, o::SYS_CTRL, bits, 0);
        self.regs.write(o::INT_STATUS, u32::MAX);
    }

    fn set_clock(&mut self, hz: u32) -> Result<(), MmcError> {
        let base = self.cfg.base_clock_hz.max(1);
        let mut pre = 1u32;
        while base / (16 * pre) > hz && pre < 256 {
            pre *= 2;
        }
        let mut div = 1u32;
        while base / (div * pre) > hz && div < 16 {
            div += 1;
        }
        let v = SYS_CTRL::DTOCV.val(0xE)
            + SYS_CTRL::SDCLKFS.val(pre >> 1)
            + SYS_CTRL::DVS.val(div - 1)
            + SYS_CTRL::CLK_ON.val(0xF);
        // As U-Boot `set_sysctl` on uSDHC: gate the card clock while the
        // divider changes, ungate it once the internal clock is stable.
        use regs::vend_spec::{CKEN, PEREN};
        self.regs.modify(o::VEND_SPEC, CKEN, 0);
        self.regs.write(o::SYS_CTRL, v.value);
        if !self.wait_reg(
            RESET_US,
            o::PRES_STATE,
            PRES_STATE::SDSTB::SET.value,
            PRES_STATE::SDSTB::SET.value,
        ) {
            return Err(MmcError::HostTimeout(Wait::ClockStable));
        }
        self.regs.modify(o::VEND_SPEC, 0, PEREN | CKEN);
        Ok(())
    }

    fn set_bus_width(&mut self, w: BusWidth) {
        let dtw = match w {
            BusWidth::Bit1 => PROT_CTRL::DTW::Bit1,
            BusWidth::Bit4 => PROT_CTRL::DTW::Bit4,
            BusWidth::Bit8 => PROT_CTRL::DTW::Bit8,
        };
        self.regs.modify(
            o::PROT_CTRL,
            PROT_CTRL::DTW.mask << PROT_CTRL::DTW.shift,
            dtw.value,
        );
    }

    // ---- Commands ----------------------------------------------------------

    /// Sends one command; returns the response (48-bit responses in the low
    /// 32 bits, R2 as the 128-bit register with the CRC byte zero).
    fn send(
        &mut self,
        idx: u8,
        arg: u32,
        rsp: Rsp,
        data: Option<DataSpec>,
        at: At,
    ) -> Result<u128, MmcError> {
        let mut inhibit = PRES_STATE::CIHB::SET.value;
        if data.is_some() || rsp == Rsp::R1b {
            inhibit |= PRES_STATE::CDIHB::SET.value;
        }
        if !self.wait_reg(CMD_US, o::PRES_STATE, inhibit, 0) {
            self.reset_lines();
            return Err(MmcError::Timeout {
                wait: Wait::LinesFree,
                at,
            });
        }
        self.regs.write(o::INT_STATUS, u32::MAX);

        // MIX_CTRL carries the transfer flags and must be written before
        // CMD_XFR_TYP (it reads back as 0 on QEMU, so only its low byte is
        // owned here).
        let mut mix = 0;
        if let Some(d) = data {
            self.regs.write(
                o::BLK_ATT,
                (regs::BLK_ATT::BLKSIZE.val(512) + regs::BLK_ATT::BLKCNT.val(d.blocks)).value,
            );
            if d.read {
                mix |= MIX_CTRL::DTDSEL::SET.value;
            }
            if d.blocks > 1 {
                mix |= MIX_CTRL::BCEN::SET.value
                    | MIX_CTRL::MSBSEL::SET.value
                    | MIX_CTRL::AC12EN::SET.value;
            }
            if d.dma {
                mix |= MIX_CTRL::DMAEN::SET.value;
            }
        }
        // U-Boot's MIXCTRL_TRANSFER_MASK (0x7F): DDR_EN (bit 3) included, the
        // driver never runs DDR modes.
        self.regs.modify(o::MIX_CTRL, 0x7F, mix);

        let mut xfr = CMD_XFR_TYP::CMDINX.val(u32::from(idx)).value;
        xfr |= match rsp {
            Rsp::None => 0,
            Rsp::R1 => {
                (CMD_XFR_TYP::RSPTYP::L48 + CMD_XFR_TYP::CCCEN::SET + CMD_XFR_TYP::CICEN::SET).value
            }
            Rsp::R1b => {
                (CMD_XFR_TYP::RSPTYP::L48Busy + CMD_XFR_TYP::CCCEN::SET + CMD_XFR_TYP::CICEN::SET)
                    .value
            }
            Rsp::R2 => (CMD_XFR_TYP::RSPTYP::L136 + CMD_XFR_TYP::CCCEN::SET).value,
            Rsp::R3 => CMD_XFR_TYP::RSPTYP::L48.value,
        };
        if data.is_some() {
            xfr |= CMD_XFR_TYP::DPSEL::SET.value;
        }
        if idx == 12 {
            xfr |= CMD_XFR_TYP::CMDTYP::Abort.value;
        }
        self.regs.write(o::CMD_ARG, arg);
        self.regs.write(o::CMD_XFR_TYP, xfr);

        let done = INT_STATUS::CC::SET.value | CMD_ERRORS;
        let status = self.clock.deadline_us(CMD_US).poll(&self.clock, || {
            let s = self.regs.read(o::INT_STATUS);
            (s & done != 0).then_some(s)
        });
        let Some(status) = status else {
            self.reset_lines();
            return Err(MmcError::Timeout {
                wait: Wait::CommandComplete,
                at,
            });
        };
        if status & CMD_ERRORS != 0 {
            self.reset_lines();
            return Err(if INT_STATUS::CTOE.is_set(status) {
                MmcError::NoResponse(at)
            } else {
                MmcError::ResponseError { status, at }
            });
        }
        self.regs.write(o::INT_STATUS, INT_STATUS::CC::SET.value);

        let r0 = self.regs.read(o::CMD_RSP0);
        let resp = if rsp == Rsp::R2 {
            let r = u128::from(r0)
                | u128::from(self.regs.read(o::CMD_RSP1)) << 32
                | u128::from(self.regs.read(o::CMD_RSP2)) << 64
                | u128::from(self.regs.read(o::CMD_RSP3)) << 96;
            r << 8
        } else {
            u128::from(r0)
        };
        if rsp == Rsp::R1b {
            let us = match idx {
                6 => SWITCH_US,
                38 => ERASE_US,
                _ => BUSY_US,
            };
            // QEMU raises no TC for R1b: wait for the data inhibit to drop.
            if !self.wait_reg(us, o::PRES_STATE, PRES_STATE::CDIHB::SET.value, 0) {
                self.reset_lines();
                return Err(MmcError::Timeout {
                    wait: Wait::CardBusy,
                    at,
                });
            }
            self.regs.write(o::INT_STATUS, INT_STATUS::TC::SET.value);
        }
        Ok(resp)
    }

    /// A command with an R1/R1b response whose error bits are checked.
    fn send_r1(&mut self, idx: u8, arg: u32, rsp: Rsp, at: At) -> Result<u32, MmcError> {
        let r = self.send(idx, arg, rsp, None, at)?;
        let status = u32::try_from(r & 0xFFFF_FFFF).unwrap_or(0);
        if status & R1_ERRORS != 0 {
            return Err(MmcError::CardStatus { status, at });
        }
        Ok(status)
    }

    fn rca_arg(&self) -> u32 {
        self.card
            .as_ref()
            .map_or(0, |c| u32::from(c.info.rca) << 16)
    }

    fn send_status(&mut self, at: At) -> Result<u32, MmcError> {
        let arg = self.rca_arg();
        let r = self.send(13, arg, Rsp::R1, None, At { cmd: 13, ..at })?;
        let status = u32::try_from(r & 0xFFFF_FFFF).unwrap_or(0);
        if status & R1_ERRORS & !R1_PREVIOUS != 0 {
            return Err(MmcError::CardStatus { status, at });
        }
        Ok(status)
    }

    /// Polls CMD13 until the card is in transfer state and ready for data.
    fn wait_transfer_state(&mut self, us: u64, at: At) -> Result<u32, MmcError> {
        let deadline = self.clock.deadline_us(us);
        loop {
            let expired = deadline.expired(&self.clock);
            let s = self.send_status(at)?;
            if (s >> 9) & 0xF == STATE_TRAN && s & R1_READY_FOR_DATA != 0 {
                return Ok(s);
            }
            if expired {
                return Err(MmcError::Timeout {
                    wait: Wait::TransferState,
                    at,
                });
            }
        }
    }

    /// eMMC CMD6 (write byte) and a check that the card accepted it.
    fn switch(&mut self, index: u8, value: u8) -> Result<(), MmcError> {
        let arg = (3 << 24) | u32::from(index) << 16 | u32::from(value) << 8;
        let at = At { cmd: 6, lba: None };
        self.send_r1(6, arg, Rsp::R1b, at)?;
        let s = self.wait_transfer_state(SWITCH_US, at)?;
        if s & R1_SWITCH_ERROR != 0 {
            return Err(MmcError::SwitchRejected { index, value });
        }
        Ok(())
    }

    // ---- Identification ----------------------------------------------------

    /// Resets the controller, identifies the card (SD or eMMC), sets the bus
    /// width and speed, and selects the user area.
    pub fn init(&mut self) -> Result<CardInfo, MmcError> {
        self.card = None;
        if !self.card_present() {
            return Err(MmcError::NoCard);
        }
        self.reset_all()?;
        self.clear_what_rsta_keeps();
        self.regs.write(
            o::PROT_CTRL,
            (PROT_CTRL::EMODE::LittleEndian + PROT_CTRL::DMASEL::Adma2).value,
        );
        self.regs.write(
            o::WTMK_LVL,
            (WTMK_LVL::RD_WML.val(128)
                + WTMK_LVL::RD_BRST_LEN.val(16)
                + WTMK_LVL::WR_WML.val(128)
                + WTMK_LVL::WR_BRST_LEN.val(16))
            .value,
        );
        self.regs.write(o::INT_STATUS_EN, INT_ENABLE);
        self.regs.write(o::INT_SIGNAL_EN, 0);
        self.regs.write(o::INT_STATUS, u32::MAX);
        self.set_clock(400_000)?;
        // 80 identification clocks; not every controller model clears INITA,
        // so this wait is bounded and its outcome not fatal.
        self.regs.modify(o::SYS_CTRL, 0, SYS_CTRL::INITA::SET.value);
        self.wait_reg(1000, o::SYS_CTRL, SYS_CTRL::INITA::SET.value, 0);

        let at = |cmd| At { cmd, lba: None };
        self.send(0, 0, Rsp::None, None, at(0))?;
        let v2 = match self.send(8, 0x1AA, Rsp::R1, None, at(8)) {
            Ok(r) if r & 0xFFF == 0x1AA => true,
            Ok(_) => return Err(MmcError::Voltage),
            Err(MmcError::NoResponse(_)) => false,
            Err(e) => return Err(e),
        };
        let sd_ocr = match self.send(55, 0, Rsp::R1, None, at(55)) {
            Ok(_) => {
                let hcs = if v2 { 1 << 30 } else { 0 };
                match self.send(41, hcs | 0x00FF_8000, Rsp::R3, None, at(41)) {
                    Ok(r) => Some(u32::try_from(r & 0xFFFF_FFFF).unwrap_or(0)),
                    Err(MmcError::NoResponse(_)) => None,
                    Err(e) => return Err(e),
                }
            }
            Err(MmcError::NoResponse(_)) => None,
            Err(e) => return Err(e),
        };
        let info = match sd_ocr {
            Some(ocr) => self.init_sd(v2, ocr)?,
            None => self.init_mmc()?,
        };
        let blocks = info.user_blocks;
        self.card = Some(CardState {
            info,
            part: HwPart::User,
            blocks,
        });
        Ok(info)
    }

    fn blank_info(kind: CardKind) -> CardInfo {
        CardInfo {
            kind,
            manufacturer_id: 0,
            oem_id: 0,
            name_bytes: [0; 6],
            revision: 0,
            serial: 0,
            version: Version { major: 0, minor: 0 },
            high_capacity: false,
            user_blocks: 0,
            boot_size: 0,
            rpmb_size: 0,
            partition_config: 0,
            bus_width: BusWidth::Bit1,
            mode: BusMode::SdLegacy,
            erase_group_blocks: 1,
            trim: false,
            rca: 0,
        }
    }

    fn power_up(&mut self, cmd: u8, arg: u32, mut ocr: u32) -> Result<u32, MmcError> {
        let at = At { cmd, lba: None };
        let deadline = self.clock.deadline_us(POWER_UP_US);
        while ocr & (1 << 31) == 0 {
            if deadline.expired(&self.clock) {
                return Err(MmcError::Timeout {
                    wait: Wait::PowerUp,
                    at,
                });
            }
            if cmd == 41 {
                self.send(55, 0, Rsp::R1, None, At { cmd: 55, lba: None })?;
            }
            let r = self.send(cmd, arg, Rsp::R3, None, at)?;
            ocr = u32::try_from(r & 0xFFFF_FFFF).unwrap_or(0);
        }
        Ok(ocr)
    }

    fn identify(&mut self, info: &mut CardInfo) -> Result<u128, MmcError> {
        let at = |cmd| At { cmd, lba: None };
        let cid = self.send(2, 0, Rsp::R2, None, at(2))?;
        card::parse_cid(cid, info.kind, info);
        match info.kind {
            CardKind::Sd => {
                let r = self.send(3, 0, Rsp::R1, None, at(3))?;
                info.rca = u16::try_from((r >> 16) & 0xFFFF).unwrap_or(0);
            }
            CardKind::Mmc => {
                info.rca = 1;
                self.send(3, 1 << 16, Rsp::R1, None, at(3))?;
            }
        }
        let rca = u32::from(info.rca) << 16;
        let csd = self.send(9, rca, Rsp::R2, None, at(9))?;
        self.send(7, rca, Rsp::R1b, None, at(7))?;
        Ok(csd)
    }

    fn init_sd(&mut self, v2: bool, ocr: u32) -> Result<CardInfo, MmcError> {
        let hcs = if v2 { 1 << 30 } else { 0 };
        let ocr = self.power_up(41, hcs | 0x00FF_8000, ocr)?;
        if ocr & 0x00FF_8000 == 0 {
            return Err(MmcError::Voltage);
        }
        let mut info = Self::blank_info(CardKind::Sd);
        info.high_capacity = ocr & (1 << 30) != 0;
        info.version = Version {
            major: if v2 { 2 } else { 1 },
            minor: 0,
        };
        let csd = self.identify(&mut info)?;
        info.user_blocks = card::csd_blocks(csd, CardKind::Sd).ok_or(MmcError::BadCard)?;
        self.card = Some(CardState {
            info,
            part: HwPart::User,
            blocks: info.user_blocks,
        });
        self.set_clock(BusMode::SdLegacy.hz())?;
        self.send_r1(16, 512, Rsp::R1, At { cmd: 16, lba: None })?;
        if self.cfg.max_bus_width >= BusWidth::Bit4 {
            let rca = self.rca_arg();
            self.send(55, rca, Rsp::R1, None, At { cmd: 55, lba: None })?;
            self.send_r1(6, 2, Rsp::R1, At { cmd: 6, lba: None })?;
            self.set_bus_width(BusWidth::Bit4);
            info.bus_width = BusWidth::Bit4;
        }
        info.mode = BusMode::SdLegacy;
        Ok(info)
    }

    fn init_mmc(&mut self) -> Result<CardInfo, MmcError> {
        let at = |cmd| At { cmd, lba: None };
        self.send(0, 0, Rsp::None, None, at(0))?;
        // Sector mode, 2.7-3.6 V and 1.70-1.95 V.
        let ocr = self.power_up(1, 0x40FF_8080, 0)?;
        let mut info = Self::blank_info(CardKind::Mmc);
        info.high_capacity = ocr & (0x3 << 29) == 0x2 << 29;
        let csd = self.identify(&mut info)?;
        self.card = Some(CardState {
            info,
            part: HwPart::User,
            blocks: 0,
        });
        self.set_clock(BusMode::MmcLegacy.hz())?;
        self.send_r1(16, 512, Rsp::R1, at(16))?;

        let mut ext = [0u8; BLOCK];
        self.data_cmd_retry(8, 0, None, Buf::Read(&mut ext))?;
        info.user_blocks = if info.high_capacity {
            let s = ext_csd::SEC_COUNT;
            u64::from(u32::from_le_bytes([
                ext[s],
                ext[s + 1],
                ext[s + 2],
                ext[s + 3],
            ]))
        } else {
            card::csd_blocks(csd, CardKind::Mmc).ok_or(MmcError::BadCard)?
        };
        info.version = card::mmc_version(ext[ext_csd::EXT_CSD_REV]);
        info.boot_size = u64::from(ext[ext_csd::BOOT_SIZE_MULT]) * 128 * 1024;
        info.rpmb_size = u64::from(ext[ext_csd::RPMB_SIZE_MULT]) * 128 * 1024;
        info.trim = ext[ext_csd::SEC_FEATURE_SUPPORT] & (1 << 4) != 0;
        info.erase_group_blocks = if ext[ext_csd::ERASE_GROUP_DEF] & 1 != 0 {
            u32::from(ext[ext_csd::HC_ERASE_GRP_SIZE]) * 1024
        } else {
            card::csd_mmc_erase_group(csd)
        };
        info.partition_config = ext[ext_csd::PARTITION_CONFIG];

        let width = self.cfg.max_bus_width;
        if width != BusWidth::Bit1 {
            let v = if width == BusWidth::Bit8 { 2 } else { 1 };
            self.switch(ext_csd::BUS_WIDTH as u8, v)?;
            self.set_bus_width(width);
            info.bus_width = width;
        }
        info.mode = BusMode::MmcLegacy;
        if self.cfg.high_speed && ext[ext_csd::CARD_TYPE] & 0x2 != 0 {
            self.switch(ext_csd::HS_TIMING as u8, 1)?;
            self.set_clock(BusMode::MmcHs52.hz())?;
            info.mode = BusMode::MmcHs52;
        }
        if info.partition_config & 0x7 != 0 {
            let v = info.partition_config & !0x7;
            self.switch(ext_csd::PARTITION_CONFIG as u8, v)?;
            info.partition_config = v;
        }
        Ok(info)
    }

    // ---- Hardware partitions ----------------------------------------------

    /// Selects the eMMC user area or a boot partition (CMD6 on
    /// PARTITION_CONFIG). Block numbers and `num_blocks` then refer to it.
    pub fn select_partition(&mut self, part: HwPart) -> Result<(), MmcError> {
        let card = self.ensure_card()?;
        if card.info.kind != CardKind::Mmc {
            return if part == HwPart::User {
                Ok(())
            } else {
                Err(MmcError::NotEmmc)
            };
        }
        let blocks = match part {
            HwPart::User => card.info.user_blocks,
            HwPart::Boot0 | HwPart::Boot1 => card.info.boot_size / 512,
        };
        if blocks == 0 {
            return Err(MmcError::NoSuchPartition);
        }
        let v = (card.info.partition_config & !0x7) | part as u8;
        self.switch(ext_csd::PARTITION_CONFIG as u8, v)?;
        if let Some(c) = self.card.as_mut() {
            c.info.partition_config = v;
            c.part = part;
            c.blocks = blocks;
        }
        Ok(())
    }

    // ---- Data --------------------------------------------------------------

    fn block_addressed(&self) -> bool {
        self.card.as_ref().is_some_and(|c| c.info.high_capacity)
    }

    fn card_addr(&self, lba: u64) -> Result<u32, MmcError> {
        let a = if self.block_addressed() {
            Some(lba)
        } else {
            lba.checked_mul(512)
        };
        a.and_then(|a| u32::try_from(a).ok())
            .ok_or(MmcError::Range(block::RangeError::PastEnd {
                lba,
                count: 1,
                num_blocks: self.num_blocks(),
            }))
    }

    /// The initialised card is still in the slot (a removed card needs a
    /// new `init`).
    fn ensure_card(&mut self) -> Result<&CardState, MmcError> {
        // An empty slot is reported as such, also after the removal has
        // already dropped the card state.
        if !self.card_present() {
            self.card = None;
            return Err(MmcError::NoCard);
        }
        self.card.as_ref().ok_or(MmcError::NotInitialized)
    }

    /// Range check of a request against the selected partition.
    fn checked(&mut self, lba: u64, len: usize) -> Result<u64, MmcError> {
        let blocks = self.ensure_card()?.blocks;
        Ok(check_range(BLOCK, blocks, lba, len)?)
    }

    /// Reads `buf.len() / 512` blocks from `lba` of the selected partition.
    /// Any buffer alignment works (misaligned buffers go through the bounce
    /// buffer in ADMA2 mode).
    pub fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), MmcError> {
        self.checked(lba, buf.len())?;
        self.transfer(lba, Buf::Read(buf))
    }

    /// Writes `buf.len() / 512` blocks at `lba` of the selected partition;
    /// returns once the card is back in transfer state.
    pub fn write(&mut self, lba: u64, buf: &[u8]) -> Result<(), MmcError> {
        self.checked(lba, buf.len())?;
        self.transfer(lba, Buf::Write(buf))
    }

    /// Blocks the next command moves: limited by the descriptor table for
    /// in-place ADMA2, by the bounce buffer otherwise, by BLKCNT for PIO.
    fn chunk_blocks(&self, ptr: *const u8, len: usize, read: bool) -> usize {
        let blocks = len / BLOCK;
        if !self.multi_block {
            return 1;
        }
        match self.mode {
            TransferMode::Pio => blocks.min(PIO_MAX_BLOCKS),
            TransferMode::Adma2 => {
                let n = blocks.min(DIRECT_MAX_BLOCKS);
                if self.direct_bus(ptr, n * BLOCK, read).is_some() {
                    n
                } else {
                    blocks.min(BOUNCE_MAX_BLOCKS)
                }
            }
        }
    }

    fn transfer(&mut self, lba: u64, mut buf: Buf<'_>) -> Result<(), MmcError> {
        let total = buf.len();
        let mut done = 0;
        while done < total {
            let n = self.chunk_blocks(buf.ptr().wrapping_add(done), total - done, buf.is_read());
            let bytes = n * BLOCK;
            let at_lba = lba + u64::try_from(done / BLOCK).unwrap_or(0);
            let read = buf.is_read();
            let (single, multi) = if read { (17, 18) } else { (24, 25) };
            let cmd = if n > 1 { multi } else { single };
            let arg = self.card_addr(at_lba)?;
            let part = match buf.reborrow() {
                Buf::Read(b) => Buf::Read(&mut b[done..done + bytes]),
                Buf::Write(b) => Buf::Write(&b[done..done + bytes]),
            };
            self.data_cmd_retry(cmd, arg, Some(at_lba), part)?;
            done += bytes;
        }
        Ok(())
    }

    /// The controller's 32-bit bus address of a caller buffer if ADMA2 can
    /// use it in place (reads also need whole cache lines).
    fn direct_bus(&self, ptr: *const u8, len: usize, read: bool) -> Option<u32> {
        let align = if read { CACHE_LINE } else { 4 };
        if !ptr.addr().is_multiple_of(align) || (read && !len.is_multiple_of(CACHE_LINE)) {
            return None;
        }
        let bus = self.dma.bus_addr(ptr, len)?;
        let end = bus.checked_add(u64::try_from(len).ok()?)?;
        if bus % 4 != 0 || end > 1 << 32 {
            return None;
        }
        u32::try_from(bus).ok()
    }

    fn data_cmd_retry(
        &mut self,
        cmd: u8,
        arg: u32,
        lba: Option<u64>,
        mut buf: Buf<'_>,
    ) -> Result<(), MmcError> {
        match self.data_cmd(cmd, arg, lba, buf.reborrow()) {
            Ok(()) => Ok(()),
            Err(e) if !retryable(&e) => {
                self.recover();
                Err(e)
            }
            Err(_) => {
                self.recover();
                self.retries += 1;
                self.data_cmd(cmd, arg, lba, buf)
                    .inspect_err(|_| self.recover())
            }
        }
    }

    /// After a failed transfer: reset the CMD and DAT lines, stop the card
    /// (CMD12; a card already in transfer state does not answer it) and
    /// wait for it to be ready again. Best effort: errors are dropped, the
    /// caller reports the original one.
    fn recover(&mut self) {
        self.reset_lines();
        let at = At { cmd: 12, lba: None };
        let _ = self.send(12, 0, Rsp::R1b, None, at);
        self.reset_lines();
        let _ = self.wait_transfer_state(BUSY_US, at);
        self.regs.write(o::INT_STATUS, u32::MAX);
    }

    /// One data command: ADMA2 (in place or bounced) or PIO.
    fn data_cmd(
        &mut self,
        cmd: u8,
        arg: u32,
        lba: Option<u64>,
        buf: Buf<'_>,
    ) -> Result<(), MmcError> {
        let at = At { cmd, lba };
        let len = buf.len();
        let blocks = u32::try_from(len / BLOCK).unwrap_or(u32::MAX);
        let read = buf.is_read();
        let r1_check = |r: u128| {
            let status = u32::try_from(r & 0xFFFF_FFFF).unwrap_or(0);
            if status & R1_ERRORS != 0 {
                Err(MmcError::CardStatus { status, at })
            } else {
                Ok(())
            }
        };
        let spec = DataSpec {
            read,
            blocks,
            dma: self.mode == TransferMode::Adma2,
        };
        match self.mode {
            TransferMode::Pio => {
                let r = self.send(cmd, arg, Rsp::R1, Some(spec), at)?;
                r1_check(r)?;
                self.pio(buf, at)?;
                self.wait_data(at)?;
            }
            TransferMode::Adma2 => {
                let direct = self.direct_bus(buf.ptr(), len, read);
                let (ptr, bus) = match direct {
                    Some(bus) => (buf.ptr(), bus),
                    None => {
                        debug_assert!(len <= BOUNCE);
                        if let Buf::Write(b) = &buf {
                            self.mem.bounce[..len].copy_from_slice(b);
                        }
                        let p = self.mem.bounce.as_ptr();
                        let bus = self.bus32(p, len)?;
                        (p, bus)
                    }
                };
                self.build_adma(bus, len)?;
                if read {
                    self.dma.invalidate(ptr, len);
                } else {
                    self.dma.clean(ptr, len);
                }
                let done = self
                    .send(cmd, arg, Rsp::R1, Some(spec), at)
                    .and_then(r1_check)
                    .and_then(|()| self.wait_data(at));
                if read {
                    // Also after a failure: the device may have written part of it.
                    self.dma.invalidate(ptr, len);
                }
                if direct.is_none() {
                    if done.is_ok()
                        && let Buf::Read(b) = buf
                    {
                        b.copy_from_slice(&self.mem.bounce[..len]);
                    }
                    // The data may be secret: leave no copy behind.
                    self.mem.bounce[..len].zeroize();
                }
                done?;
            }
        }
        self.regs.write(o::INT_STATUS, u32::MAX);
        if !read {
            self.wait_transfer_state(PROGRAM_US, at)?;
        }
        Ok(())
    }

    fn bus32(&self, p: *const u8, len: usize) -> Result<u32, MmcError> {
        let bus = self.dma.bus_addr(p, len).ok_or(MmcError::DmaUnreachable)?;
        let end = bus.saturating_add(u64::try_from(len).unwrap_or(u64::MAX));
        if end > 1 << 32 {
            return Err(MmcError::DmaUnreachable);
        }
        u32::try_from(bus).map_err(|_| MmcError::DmaUnreachable)
    }

    /// Fills the descriptor table for `[bus, bus + len)`, cleans it and
    /// points the controller at it.
    fn build_adma(&mut self, bus: u32, len: usize) -> Result<(), MmcError> {
        let segs = len.div_ceil(ADMA_SEGMENT);
        debug_assert!(segs <= ADMA_DESCS);
        let mut addr = u64::from(bus);
        let mut left = len;
        for (i, d) in self.mem.adma.iter_mut().take(segs).enumerate() {
            let n = left.min(ADMA_SEGMENT);
            let mut attr = ADMA_VALID | ADMA_TRAN;
            if i + 1 == segs {
                attr |= ADMA_END;
            }
            *d = attr | u64::try_from(n).unwrap_or(0) << 16 | addr << 32;
            addr += u64::try_from(n).unwrap_or(0);
            left -= n;
        }
        let table = self.mem.adma.as_ptr().cast::<u8>();
        let table_len = segs * 8;
        let table_bus = self.bus32(table, table_len)?;
        self.dma.clean(table, table_len);
        self.regs.write(o::ADMA_SYS_ADDR, table_bus);
        Ok(())
    }

    fn pio(&mut self, mut buf: Buf<'_>, at: At) -> Result<(), MmcError> {
        let len = buf.len();
        let ready = if buf.is_read() {
            PRES_STATE::BREN::SET.value
        } else {
            PRES_STATE::BWEN::SET.value
        };
        for blk in 0..len / BLOCK {
            let ok = self.clock.deadline_us(BUFFER_US).poll(&self.clock, || {
                let s = self.regs.read(o::INT_STATUS);
                if s & DATA_ERRORS != 0 {
                    return Some(Err(data_error(&self.regs, s, at)));
                }
                (self.regs.read(o::PRES_STATE) & ready != 0).then_some(Ok(()))
            });
            match ok {
                None => {
                    return Err(MmcError::Timeout {
                        wait: Wait::BufferReady,
                        at,
                    });
                }
                Some(Err(e)) => return Err(e),
                Some(Ok(())) => {}
            }
            let range = blk * BLOCK..(blk + 1) * BLOCK;
            match &mut buf {
                Buf::Read(b) => {
                    for w in b[range].as_chunks_mut::<4>().0 {
                        *w = self.regs.read(o::DATA_BUFF).to_le_bytes();
                    }
                }
                Buf::Write(b) => {
                    for w in b[range].as_chunks::<4>().0 {
                        self.regs.write(o::DATA_BUFF, u32::from_le_bytes(*w));
                    }
                }
            }
        }
        Ok(())
    }

    fn wait_data(&self, at: At) -> Result<(), MmcError> {
        let r = self.clock.deadline_us(DATA_US).poll(&self.clock, || {
            let s = self.regs.read(o::INT_STATUS);
            if s & DATA_ERRORS != 0 {
                Some(Err(data_error(&self.regs, s, at)))
            } else {
                (s & INT_STATUS::TC::SET.value != 0).then_some(Ok(()))
            }
        });
        r.unwrap_or(Err(MmcError::Timeout {
            wait: Wait::TransferComplete,
            at,
        }))
    }

    // ---- Erase -------------------------------------------------------------

    /// Erases `count` blocks from `lba` of the selected partition (eMMC:
    /// CMD35/36/38 with TRIM when the card has it; otherwise the range must
    /// be erase-group aligned. SD: CMD32/33/38).
    pub fn erase(&mut self, lba: u64, count: u64) -> Result<(), MmcError> {
        let len = usize::try_from(count)
            .ok()
            .and_then(|c| c.checked_mul(BLOCK))
            .ok_or(MmcError::Range(block::RangeError::PastEnd {
                lba,
                count,
                num_blocks: self.num_blocks(),
            }))?;
        self.checked(lba, len)?;
        let info = self
            .card
            .as_ref()
            .map(|c| c.info)
            .ok_or(MmcError::NotInitialized)?;
        let (start_cmd, end_cmd, arg) = match info.kind {
            CardKind::Sd => (32, 33, 0),
            CardKind::Mmc if info.trim => (35, 36, 1),
            CardKind::Mmc => {
                let g = u64::from(info.erase_group_blocks.max(1));
                if !lba.is_multiple_of(g) || !count.is_multiple_of(g) {
                    return Err(MmcError::EraseUnaligned {
                        group: info.erase_group_blocks,
                    });
                }
                (35, 36, 0)
            }
        };
        let first = self.card_addr(lba)?;
        let last = self.card_addr(lba + count - 1)?;
        let at = |cmd| At {
            cmd,
            lba: Some(lba),
        };
        self.send_r1(start_cmd, first, Rsp::R1, at(start_cmd))?;
        self.send_r1(end_cmd, last, Rsp::R1, at(end_cmd))?;
        self.send_r1(38, arg, Rsp::R1b, at(38))?;
        self.wait_transfer_state(ERASE_US, at(38))?;
        Ok(())
    }
}

fn retryable(e: &MmcError) -> bool {
    !matches!(
        e,
        MmcError::Range(_)
            | MmcError::NoCard
            | MmcError::NotInitialized
            | MmcError::DmaUnreachable
            | MmcError::CardStatus { .. }
            // The data reached the card; it is still programming.
            | MmcError::Timeout {
                wait: Wait::TransferState,
                ..
            }
    )
}

fn data_error(regs: &impl RegisterIo, s: u32, at: At) -> MmcError {
    if INT_STATUS::DMAE.is_set(s) {
        MmcError::Adma {
            status: regs.read(o::ADMA_ERR_STATUS),
            at,
        }
    } else if INT_STATUS::AC12E.is_set(s) {
        MmcError::AutoCmd12 {
            status: regs.read(o::AUTOCMD12_ERR_STATUS),
            at,
        }
    } else if INT_STATUS::DCE.is_set(s) {
        MmcError::DataCrc(at)
    } else if INT_STATUS::DEBE.is_set(s) {
        MmcError::DataEndBit(at)
    } else {
        MmcError::DataTimeout(at)
    }
}

impl<R: RegisterIo, D: Dma, C: Clock> BlockDevice for Usdhc<R, D, C> {
    type Error = MmcError;
    fn block_size(&self) -> usize {
        BLOCK
    }
    fn num_blocks(&self) -> u64 {
        self.card.as_ref().map_or(0, |c| c.blocks)
    }
    fn read_blocks(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), MmcError> {
        self.read(lba, buf)
    }
    fn write_blocks(&mut self, lba: u64, buf: &[u8]) -> Result<(), MmcError> {
        self.write(lba, buf)
    }
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;
    pub fn blank_info(kind: CardKind) -> CardInfo {
        Usdhc::<&hal::MmioRegion, NoDma, NoClock>::blank_info(kind)
    }
    pub struct NoDma;
    impl Dma for NoDma {
        fn bus_addr(&self, _: *const u8, _: usize) -> Option<u64> {
            None
        }
        fn clean(&self, _: *const u8, _: usize) {}
        fn invalidate(&self, _: *const u8, _: usize) {}
    }
    pub struct NoClock;
    impl Clock for NoClock {
        fn ticks(&self) -> u64 {
            0
        }
        fn frequency(&self) -> u64 {
            1
        }
    }
}
