//! A host model of a uSDHC with an eMMC or SD card behind it, for tests.
//!
//! [`Fake::new`] returns the shared model; [`Fake::regs`], [`Fake::dma`] and
//! [`Fake::clock`] give the three things [`crate::Usdhc::new`] takes. The
//! model behaves like QEMU's SDHCI where QEMU is peculiar (MIX_CTRL reads 0,
//! R1b raises no TC, commands only run with SYS_CTRL bits 0 and 2 set,
//! status bits only latch when enabled in INT_STATUS_EN) and like the cards'
//! specs otherwise (state machine, OCR busy, EXT_CSD, CMD6, boot partitions).
//!
//! DMA: memory is reachable by the "controller" only through windows the
//! test maps ([`Fake::dma_mem`], [`Fake::alloc`]); each window gets a made-up
//! bus address. The model checks cache discipline: every byte the device
//! reads must have been cleaned since the last transfer, every byte it
//! writes must be invalidated afterwards ([`Fake::cache_violations`]).
//!
//! Faults can be injected through [`Faults`].

use crate::DmaMem;
use crate::regs::offsets as o;
use hal::{Clock, Dma, RegisterIo};
use std::boxed::Box;
use std::cell::{Cell, RefCell};
use std::format;
use std::rc::Rc;
use std::string::String;
use std::vec;
use std::vec::Vec;

/// Which card is in the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardType {
    /// eMMC, sector addressed, with boot partitions and RPMB.
    Emmc,
    /// eMMC small enough for byte addressing.
    EmmcByte,
    /// SDHC (block addressed).
    SdHc,
    /// SDSC (byte addressed), answers CMD8 (v2.0).
    SdSc,
}

/// Card parameters.
#[derive(Clone, Copy, Debug)]
pub struct CardSpec {
    /// Kind.
    pub kind: CardType,
    /// User-area blocks.
    pub user_blocks: u64,
    /// BOOT_SIZE_MULT (128 KiB units; 0 = no boot partitions).
    pub boot_mult: u8,
    /// RPMB_SIZE_MULT.
    pub rpmb_mult: u8,
    /// CARD_TYPE bit 1 (52 MHz).
    pub hs52: bool,
    /// TRIM support.
    pub trim: bool,
    /// Power-up polls (CMD1/ACMD41) answered busy.
    pub busy_polls: u32,
    /// PARTITION_CONFIG at power-up.
    pub partition_config: u8,
}

impl CardSpec {
    /// A 4096-block eMMC 5.1 with two 128 KiB boot partitions and RPMB.
    pub fn emmc() -> Self {
        Self {
            kind: CardType::Emmc,
            user_blocks: 4096,
            boot_mult: 1,
            rpmb_mult: 1,
            hs52: true,
            trim: true,
            busy_polls: 3,
            partition_config: 0x48,
        }
    }
    /// An SD card of `blocks` blocks.
    pub fn sd(kind: CardType, blocks: u64) -> Self {
        Self {
            kind,
            user_blocks: blocks,
            boot_mult: 0,
            rpmb_mult: 0,
            hs52: false,
            trim: false,
            busy_polls: 2,
            partition_config: 0,
        }
    }
    fn is_mmc(&self) -> bool {
        matches!(self.kind, CardType::Emmc | CardType::EmmcByte)
    }
    fn block_addressed(&self) -> bool {
        matches!(self.kind, CardType::Emmc | CardType::SdHc)
    }
}

/// Faults to inject. Counters count down as they fire.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// The card does not answer this command index (CTOE), `n` times.
    pub no_response: Option<(u8, u32)>,
    /// The controller never completes this command index.
    pub hang_cmd: Option<u8>,
    /// The next `n` data transfers end in a data CRC error.
    pub data_crc: u32,
    /// The next write stops with a data timeout after this many blocks
    /// reached the medium.
    pub write_fail_after: Option<u32>,
    /// The OCR never reports power-up done.
    pub never_ready: bool,
    /// R1b busy never ends.
    pub busy_forever: bool,
    /// After a write the card stays in programming state for this many CMD13s.
    pub program_polls: u32,
    /// The card stays programming forever.
    pub stuck_programming: bool,
    /// TC never comes after a data transfer.
    pub no_transfer_complete: bool,
    /// The card rejects every CMD6 switch (SWITCH_ERROR).
    pub reject_switch: bool,
    /// The next response to this command index has a CRC error (once).
    pub rsp_crc: Option<u8>,
    /// RSTA never clears.
    pub reset_stuck: bool,
    /// SDSTB never sets.
    pub clock_unstable: bool,
    /// The command line stays inhibited.
    pub lines_stuck: bool,
    /// The next `n` ADMA transfers end in an ADMA error.
    pub adma_errors: u32,
    /// The next `n` auto-CMD12s fail.
    pub auto12_errors: u32,
    /// The next `n` data transfers end in a data end-bit error.
    pub data_end_bit: u32,
    /// R1 responses to this command carry these status bits.
    pub r1_error: Option<(u8, u32)>,
    /// Data commands are accepted but no data ever moves.
    pub hang_data: bool,
    /// The SD card echoes a wrong CMD8 check pattern.
    pub cmd8_bad_echo: bool,
    /// The SD card's CSD has an unknown structure version.
    pub bad_csd: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    Idle,
    Ready,
    Ident,
    Stby,
    Tran,
    Data,
    Rcv,
    Prg,
}

impl State {
    fn code(self) -> u32 {
        match self {
            Self::Idle => 0,
            Self::Ready => 1,
            Self::Ident => 2,
            Self::Stby => 3,
            Self::Tran => 4,
            Self::Data => 5,
            Self::Rcv => 6,
            Self::Prg => 7,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Src {
    ExtCsd,
    Blocks(u64),
}

struct Stream {
    write: bool,
    src: Src,
    left: u32,
    multi: bool,
    auto12: bool,
    /// PIO: current block and position in words.
    buf: [u8; 512],
    pos: usize,
    blocks_done: u32,
}

struct Card {
    spec: CardSpec,
    state: State,
    rca: u16,
    app: bool,
    busy_left: u32,
    user: Vec<u8>,
    boot: [Vec<u8>; 2],
    ext: [u8; 512],
    switch_error: bool,
    erase: (Option<u64>, Option<u64>),
    bus_width: u8,
    program_left: u32,
}

struct Window {
    host: usize,
    len: usize,
    bus: u64,
}

struct Model {
    card: Option<Card>,
    present: bool,
    sys_ctrl: u32,
    prot_ctrl: u32,
    blk_att: u32,
    arg: u32,
    xfr: u32,
    rsp: [u32; 4],
    int_status: u32,
    int_en: u32,
    mix: u32,
    /// MIX_CTRL reads back (silicon) instead of 0 (QEMU), and RSTA keeps
    /// it: set by [`Fake::left_by_spl`].
    silicon_mix: bool,
    vend_spec: u32,
    mmc_boot: u32,
    dll_ctrl: u32,
    clk_tune: u32,
    tuning_ctrl: u32,
    wtmk: u32,
    adma_addr: u32,
    adma_err: u32,
    ac12_err: u32,
    busy_reads: u32,
    cmd_hung: bool,
    stream: Option<Stream>,
    windows: Vec<Window>,
    next_bus: u64,
    cleaned: Vec<(usize, usize)>,
    pending_invalidate: Vec<(usize, usize)>,
    violations: Vec<String>,
    faults: Faults,
    log: Vec<(u8, u32)>,
    reg_reads: u64,
    reg_writes: u64,
}

/// The shared model. Clone it freely (all clones are the same model).
#[derive(Clone)]
pub struct Fake(Rc<RefCell<Model>>);

/// [`RegisterIo`] into the model.
pub struct FakeRegs(Rc<RefCell<Model>>);
/// [`Dma`] into the model.
pub struct FakeDma(Rc<RefCell<Model>>);

/// A clock that advances `step` ticks (µs) on every read.
pub struct FakeClock {
    now: Cell<u64>,
    /// Ticks added per read.
    pub step: Cell<u64>,
}

impl Clock for FakeClock {
    fn ticks(&self) -> u64 {
        let t = self.now.get();
        self.now.set(t + self.step.get());
        t
    }
    fn frequency(&self) -> u64 {
        1_000_000
    }
}

impl FakeClock {
    /// Microseconds of fake time so far.
    pub fn now_us(&self) -> u64 {
        self.now.get()
    }
}

fn cid(spec: &CardSpec) -> [u32; 4] {
    // 128-bit register, CRC byte dropped, as the controller stores it:
    // rsp[3] = bits 127:104 (in 23:0), ..., rsp[0] = bits 39:8.
    let mut r = 0u128;
    let mut put = |hi: u32, lo: u32, v: u128| {
        let n = hi - lo + 1;
        let m = (1u128 << n) - 1;
        r |= (v & m) << lo;
    };
    put(127, 120, 0x15);
    if spec.is_mmc() {
        put(111, 104, 0x01);
        for (i, c) in b"FAKEMC".iter().enumerate() {
            let hi = 103 - 8 * u32::try_from(i).unwrap();
            put(hi, hi - 7, u128::from(*c));
        }
        put(55, 48, 0x10);
        put(47, 16, 0xCAFE_F00D);
    } else {
        put(119, 104, u128::from(u16::from_be_bytes(*b"QM")));
        for (i, c) in b"FAKSD".iter().enumerate() {
            let hi = 103 - 8 * u32::try_from(i).unwrap();
            put(hi, hi - 7, u128::from(*c));
        }
        put(63, 56, 0x20);
        put(55, 24, 0x1234_5678);
    }
    split(r)
}

fn csd(spec: &CardSpec) -> [u32; 4] {
    let mut r = 0u128;
    let mut put = |hi: u32, lo: u32, v: u128| {
        let n = hi - lo + 1;
        let m = (1u128 << n) - 1;
        r |= (v & m) << lo;
    };
    match spec.kind {
        CardType::SdHc => {
            put(127, 126, 1);
            put(69, 48, u128::from(spec.user_blocks / 1024 - 1));
        }
        _ => {
            // v1 formula with READ_BL_LEN 9, C_SIZE_MULT 7 (x512):
            // blocks = (C_SIZE + 1) * 512.
            put(127, 126, if spec.is_mmc() { 3 } else { 0 });
            put(83, 80, 9);
            put(73, 62, u128::from(spec.user_blocks / 512 - 1));
            put(49, 47, 7);
            put(46, 42, 3); // erase group: (3+1)*(1+1) = 8 blocks
            put(41, 37, 1);
        }
    }
    split(r)
}

fn split(r: u128) -> [u32; 4] {
    let v = r >> 8;
    [0, 1, 2, 3].map(|i| u32::try_from((v >> (32 * i)) & 0xFFFF_FFFF).unwrap())
}

impl Card {
    fn new(spec: CardSpec) -> Self {
        let mut ext = [0u8; 512];
        if spec.is_mmc() {
            let sec = u32::try_from(spec.user_blocks).unwrap().to_le_bytes();
            ext[212..216].copy_from_slice(&sec);
            ext[226] = spec.boot_mult;
            ext[168] = spec.rpmb_mult;
            ext[192] = 8;
            ext[196] = if spec.hs52 { 0x3 } else { 0x1 };
            ext[179] = spec.partition_config;
            ext[231] = if spec.trim { 0x10 } else { 0 };
            ext[224] = 1;
        }
        let boot = usize::from(spec.boot_mult) * 128 * 1024;
        Self {
            spec,
            state: State::Idle,
            rca: 0,
            app: false,
            busy_left: spec.busy_polls,
            user: (0..usize::try_from(spec.user_blocks).unwrap() * 512)
                .map(|i| u8::try_from((i / 512) % 251).unwrap())
                .collect(),
            boot: [vec![0xB0; boot], vec![0xB1; boot]],
            ext,
            switch_error: false,
            erase: (None, None),
            bus_width: 1,
            program_left: 0,
        }
    }

    fn medium(&mut self) -> &mut Vec<u8> {
        match self.ext[179] & 7 {
            1 => &mut self.boot[0],
            2 => &mut self.boot[1],
            _ => &mut self.user,
        }
    }

    fn r1(&self, extra: u32) -> Resp {
        let mut s = self.state.code() << 9 | 1 << 8 | extra;
        if self.app {
            s |= 1 << 5;
        }
        if self.switch_error {
            s |= 1 << 7;
        }
        Resp::R48(s)
    }

    fn block_of(&self, arg: u32) -> u64 {
        if self.spec.block_addressed() {
            u64::from(arg)
        } else {
            u64::from(arg) / 512
        }
    }
}

enum Resp {
    None,
    R48(u32),
    R136([u32; 4]),
}

const SIG: &str = "fake uSDHC";

impl Fake {
    /// A controller with `card` in the slot (`None`: empty slot).
    pub fn new(card: Option<CardSpec>) -> Self {
        Self(Rc::new(RefCell::new(Model {
            present: card.is_some(),
            card: card.map(Card::new),
            sys_ctrl: 0,
            prot_ctrl: 0,
            blk_att: 0,
            arg: 0,
            xfr: 0,
            rsp: [0; 4],
            int_status: 0,
            int_en: 0,
            mix: 0,
            silicon_mix: false,
            vend_spec: 0,
            mmc_boot: 0,
            dll_ctrl: 0,
            clk_tune: 0,
            tuning_ctrl: 0,
            wtmk: 0,
            adma_addr: 0,
            adma_err: 0,
            ac12_err: 0,
            busy_reads: 0,
            cmd_hung: false,
            stream: None,
            windows: Vec::new(),
            next_bus: 0x4000_0000,
            cleaned: Vec::new(),
            pending_invalidate: Vec::new(),
            violations: Vec::new(),
            faults: Faults::default(),
            log: Vec::new(),
            reg_reads: 0,
            reg_writes: 0,
        })))
    }

    /// The register window.
    pub fn regs(&self) -> FakeRegs {
        FakeRegs(self.0.clone())
    }
    /// The DMA mapper.
    pub fn dma(&self) -> FakeDma {
        FakeDma(self.0.clone())
    }
    /// A clock advancing 10 µs per read.
    pub fn clock() -> FakeClock {
        FakeClock {
            now: Cell::new(0),
            step: Cell::new(10),
        }
    }

    /// A leaked, mapped [`DmaMem`] (below 4 GiB on the fake bus).
    pub fn dma_mem(&self) -> &'static mut DmaMem {
        let m: &'static mut DmaMem = Box::leak(Box::new(DmaMem::new()));
        let p: *mut DmaMem = m;
        self.map(p.cast::<u8>(), core::mem::size_of::<DmaMem>(), false);
        m
    }

    /// A leaked buffer of `len` bytes starting `offset` bytes past a 64-byte
    /// boundary; mapped on the bus (below 4 GiB, or above when `high`) if
    /// `mapped`.
    pub fn alloc(&self, len: usize, offset: usize, mapped: bool, high: bool) -> &'static mut [u8] {
        let raw: &'static mut [u8] = Box::leak(vec![0u8; len + offset + 64].into_boxed_slice());
        let skip = raw.as_ptr().align_offset(64) + offset;
        let b = &mut raw[skip..skip + len];
        if mapped {
            self.map(b.as_mut_ptr(), len, high);
        }
        b
    }

    fn map(&self, p: *mut u8, len: usize, high: bool) {
        let host = p.expose_provenance();
        let mut m = self.0.borrow_mut();
        let base = if high {
            0x1_0000_0000 + m.next_bus
        } else {
            m.next_bus
        };
        let bus = base + u64::try_from(host & 0xFFF).unwrap();
        m.next_bus += u64::try_from((len + 0xFFF) & !0xFFF).unwrap() + 0x1000;
        m.windows.push(Window { host, len, bus });
    }

    /// Edits the injected faults.
    pub fn faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut self.0.borrow_mut().faults);
    }

    /// Takes the card out (or puts it back).
    pub fn set_present(&self, present: bool) {
        self.0.borrow_mut().present = present;
    }

    /// Commands the card saw (index, argument), and clears the log.
    pub fn take_log(&self) -> Vec<(u8, u32)> {
        core::mem::take(&mut self.0.borrow_mut().log)
    }

    /// Register (reads, writes) since creation.
    pub fn reg_accesses(&self) -> (u64, u64) {
        let m = self.0.borrow();
        (m.reg_reads, m.reg_writes)
    }

    /// Cache-discipline problems seen so far (empty when all is well).
    pub fn cache_violations(&self) -> Vec<String> {
        let m = self.0.borrow();
        let mut v = m.violations.clone();
        for (h, l) in &m.pending_invalidate {
            v.push(format!("device wrote {h:#x}+{l:#x}, never invalidated"));
        }
        v
    }

    /// A copy of `count` blocks from `lba` of medium `part` (0 user, 1/2 boot).
    pub fn medium(&self, part: u8, lba: u64, count: usize) -> Vec<u8> {
        let m = self.0.borrow();
        let c = m.card.as_ref().expect("card");
        let d = match part {
            1 => &c.boot[0],
            2 => &c.boot[1],
            _ => &c.user,
        };
        let s = usize::try_from(lba).unwrap() * 512;
        d[s..s + count * 512].to_vec()
    }

    /// EXT_CSD byte `i` as the card holds it.
    pub fn ext_csd(&self, i: usize) -> u8 {
        self.0.borrow().card.as_ref().expect("card").ext[i]
    }

    /// The card's bus width as set by ACMD6/CMD6.
    pub fn card_bus_width(&self) -> u8 {
        self.0.borrow().card.as_ref().expect("card").bus_width
    }

    /// PROT_CTRL as the driver left it.
    pub fn prot_ctrl(&self) -> u32 {
        self.0.borrow().prot_ctrl
    }

    /// The controller as an SPL that booted from the eMMC boot partition in
    /// a DDR mode may leave it: boot mode on in MMC_BOOT, DDR_EN in
    /// MIX_CTRL, tuning and delay-line settings, the card clock running
    /// (VEND_SPEC.CKEN). RSTA does not reset MMC_BOOT (U-Boot
    /// `esdhc_init_common`); the model lets it keep all of these, and
    /// MIX_CTRL reads back as on silicon.
    pub fn left_by_spl(&self) {
        let mut m = self.0.borrow_mut();
        m.silicon_mix = true;
        m.mix = 1 << 3;
        m.mmc_boot = 0x0000_0071;
        m.dll_ctrl = 0x0000_0011;
        m.clk_tune = 0x0000_0101;
        m.tuning_ctrl = 0x0100_2201;
        m.vend_spec = 0x2000_7809 | (1 << 8);
        m.sys_ctrl = 0x000E_01FF;
    }

    /// (MIX_CTRL, VEND_SPEC, MMC_BOOT, DLL_CTRL, CLK_TUNE_CTRL_STATUS,
    /// TUNING_CTRL) as the driver left them.
    pub fn vendor_regs(&self) -> [u32; 6] {
        let m = self.0.borrow();
        [
            m.mix,
            m.vend_spec,
            m.mmc_boot,
            m.dll_ctrl,
            m.clk_tune,
            m.tuning_ctrl,
        ]
    }
}

impl RegisterIo for FakeRegs {
    fn read(&self, offset: usize) -> u32 {
        let mut m = self.0.borrow_mut();
        m.reg_reads += 1;
        m.read(offset)
    }
    fn write(&self, offset: usize, value: u32) {
        let mut m = self.0.borrow_mut();
        m.reg_writes += 1;
        m.write(offset, value);
    }
}

impl Dma for FakeDma {
    fn bus_addr(&self, ptr: *const u8, len: usize) -> Option<u64> {
        let host = ptr.expose_provenance();
        let m = self.0.borrow();
        m.windows
            .iter()
            .find(|w| host >= w.host && host + len <= w.host + w.len)
            .map(|w| w.bus + u64::try_from(host - w.host).unwrap())
    }
    fn clean(&self, ptr: *const u8, len: usize) {
        self.0
            .borrow_mut()
            .cleaned
            .push((ptr.expose_provenance(), len));
    }
    fn invalidate(&self, ptr: *const u8, len: usize) {
        let host = ptr.expose_provenance();
        self.0
            .borrow_mut()
            .pending_invalidate
            .retain(|&(h, l)| !(h >= host && h + l <= host + len));
    }
}

const CC: u32 = 1;
const TC: u32 = 1 << 1;
const BWR: u32 = 1 << 4;
const BRR: u32 = 1 << 5;
const CTOE: u32 = 1 << 16;
const DTOE: u32 = 1 << 20;
const DCE: u32 = 1 << 21;
const DEBE: u32 = 1 << 22;
const AC12E: u32 = 1 << 24;
const DMAE: u32 = 1 << 28;

impl Model {
    fn raise(&mut self, bits: u32) {
        self.int_status |= bits & self.int_en;
    }

    fn read(&mut self, off: usize) -> u32 {
        match off {
            o::BLK_ATT => self.blk_att,
            o::CMD_ARG => self.arg,
            o::CMD_XFR_TYP => self.xfr,
            o::CMD_RSP0 => self.rsp[0],
            o::CMD_RSP1 => self.rsp[1],
            o::CMD_RSP2 => self.rsp[2],
            o::CMD_RSP3 => self.rsp[3],
            o::DATA_BUFF => self.pio_read(),
            o::PRES_STATE => {
                let mut v = 1 << 3; // SDSTB
                if self.sys_ctrl & 0x5 != 0x5 || self.faults.clock_unstable {
                    v = 0;
                }
                if self.cmd_hung || self.faults.lines_stuck {
                    v |= 1;
                }
                if self.busy_reads > 0 {
                    if self.busy_reads != u32::MAX {
                        self.busy_reads -= 1;
                    }
                    v |= 2;
                }
                if let Some(s) = &self.stream
                    && self.mix & 1 == 0
                {
                    v |= 2;
                    v |= if s.write { 1 << 10 } else { 1 << 11 };
                }
                if self.present {
                    v |= 1 << 16;
                }
                v
            }
            o::PROT_CTRL => self.prot_ctrl,
            o::SYS_CTRL if self.faults.reset_stuck => self.sys_ctrl | 1 << 24,
            o::SYS_CTRL => self.sys_ctrl,
            o::AUTOCMD12_ERR_STATUS => self.ac12_err,
            o::INT_STATUS => self.int_status,
            o::INT_STATUS_EN => self.int_en,
            o::WTMK_LVL => self.wtmk,
            o::MIX_CTRL if self.silicon_mix => self.mix,
            o::MIX_CTRL => 0, // QEMU quirk
            o::VEND_SPEC => self.vend_spec,
            o::MMC_BOOT => self.mmc_boot,
            o::DLL_CTRL => self.dll_ctrl,
            o::CLK_TUNE_CTRL_STATUS => self.clk_tune,
            o::TUNING_CTRL => self.tuning_ctrl,
            o::ADMA_ERR_STATUS => self.adma_err,
            o::ADMA_SYS_ADDR => self.adma_addr,
            _ => 0,
        }
    }

    fn write(&mut self, off: usize, v: u32) {
        match off {
            o::BLK_ATT => self.blk_att = v,
            o::CMD_ARG => self.arg = v,
            o::CMD_XFR_TYP => {
                self.xfr = v;
                self.command(v);
            }
            o::DATA_BUFF => self.pio_write(v),
            o::PROT_CTRL => self.prot_ctrl = v,
            o::SYS_CTRL => {
                if v & (1 << 24) != 0 {
                    // RSTA: host registers back to reset values.
                    self.sys_ctrl = 0;
                    self.prot_ctrl = 0;
                    self.int_status = 0;
                    self.int_en = 0;
                    if !self.silicon_mix {
                        self.mix = 0;
                    }
                    self.stream = None;
                    self.cmd_hung = false;
                    self.busy_reads = 0;
                    return;
                }
                if v & (1 << 25) != 0 {
                    self.cmd_hung = false;
                }
                if v & (1 << 26) != 0 {
                    self.stream = None;
                    self.busy_reads = 0;
                }
                // The clock divider (SDCLKFS, DVS) changes only with the
                // card clock gated (U-Boot `set_sysctl` clears VEND_SPEC.CKEN
                // first on uSDHC).
                if (v ^ self.sys_ctrl) & 0xFFF0 != 0 && self.vend_spec & (1 << 14) != 0 {
                    self.violations.push(format!(
                        "clock divider changed {:#x} -> {v:#x} with VEND_SPEC.CKEN set",
                        self.sys_ctrl
                    ));
                }
                // Reset and INITA bits self-clear.
                self.sys_ctrl = v & !(0xF << 24);
            }
            o::INT_STATUS => self.int_status &= !v,
            o::INT_STATUS_EN => self.int_en = v,
            o::WTMK_LVL => self.wtmk = v,
            o::MIX_CTRL => self.mix = v,
            o::VEND_SPEC => self.vend_spec = v,
            o::MMC_BOOT => self.mmc_boot = v,
            o::DLL_CTRL => self.dll_ctrl = v,
            o::CLK_TUNE_CTRL_STATUS => self.clk_tune = v,
            o::TUNING_CTRL => self.tuning_ctrl = v,
            o::ADMA_SYS_ADDR => self.adma_addr = v,
            _ => {}
        }
    }

    fn command(&mut self, xfr: u32) {
        let idx = u8::try_from((xfr >> 24) & 0x3F).unwrap();
        let arg = self.arg;
        self.log.push((idx, arg));
        if self.sys_ctrl & 0x5 != 0x5 {
            // QEMU: without clock bits 0 and 2 nothing completes.
            self.cmd_hung = true;
            return;
        }
        if self.faults.hang_cmd == Some(idx) {
            self.cmd_hung = true;
            return;
        }
        if let Some((c, n)) = self.faults.no_response
            && c == idx
            && n > 0
        {
            self.faults.no_response = if n > 1 { Some((c, n - 1)) } else { None };
            self.raise(CTOE);
            return;
        }
        let data = xfr & (1 << 21) != 0;
        let busy = (xfr >> 16) & 3 == 3;
        let resp = if self.present {
            self.card_command(idx, arg, data)
        } else {
            Resp::None
        };
        let rsptyp = (xfr >> 16) & 3;
        if self.faults.rsp_crc == Some(idx) {
            self.faults.rsp_crc = None;
            self.stream = None;
            self.raise(1 << 17);
            return;
        }
        let resp = match (resp, self.faults.r1_error) {
            (Resp::R48(r), Some((c, bits))) if c == idx => Resp::R48(r | bits),
            (r, _) => r,
        };
        match (resp, rsptyp) {
            (Resp::None, 0) => self.raise(CC),
            (Resp::None, _) => {
                // Card stayed silent.
                self.stream = None;
                self.raise(CTOE);
                return;
            }
            (Resp::R48(r), _) => {
                self.rsp = [r, 0, 0, 0];
                self.raise(CC);
            }
            (Resp::R136(r), _) => {
                self.rsp = r;
                self.raise(CC);
            }
        }
        if busy {
            // QEMU quirk: no TC for R1b; busy shows as CDIHB for a while.
            self.busy_reads = if self.faults.busy_forever {
                u32::MAX
            } else {
                3
            };
        }
        if data && self.stream.is_some() {
            if self.faults.hang_data {
                self.stream = None;
            } else if self.mix & 1 != 0 {
                self.run_adma();
            } else {
                self.pio_start();
            }
        }
    }

    fn card_command(&mut self, idx: u8, arg: u32, data: bool) -> Resp {
        let blk_att = self.blk_att;
        let mix = self.mix;
        let never_ready = self.faults.never_ready;
        let program_polls = self.faults.program_polls;
        let stuck = self.faults.stuck_programming;
        let reject_switch = self.faults.reject_switch;
        let bad_echo = self.faults.cmd8_bad_echo;
        let bad_csd = self.faults.bad_csd;
        let Some(c) = self.card.as_mut() else {
            return Resp::None;
        };
        let mmc = c.spec.is_mmc();
        let app = core::mem::take(&mut c.app);
        let mut stream = None;
        let r = match (idx, c.state) {
            (0, _) => {
                c.state = State::Idle;
                c.rca = 0;
                c.busy_left = c.spec.busy_polls;
                Resp::None
            }
            (1, State::Idle | State::Ready) if mmc => {
                let sector = if c.spec.block_addressed() { 2 << 29 } else { 0 };
                if c.busy_left > 0 || never_ready {
                    c.busy_left = c.busy_left.saturating_sub(1);
                    Resp::R48(0x00FF_8080 | sector)
                } else {
                    c.state = State::Ready;
                    Resp::R48(1 << 31 | 0x00FF_8080 | sector)
                }
            }
            (41, State::Idle | State::Ready) if app && !mmc => {
                let ccs = if c.spec.block_addressed() && arg & (1 << 30) != 0 {
                    1 << 30
                } else {
                    0
                };
                if c.busy_left > 0 || never_ready {
                    c.busy_left = c.busy_left.saturating_sub(1);
                    Resp::R48(0x00FF_8000)
                } else {
                    c.state = State::Ready;
                    Resp::R48(1 << 31 | ccs | 0x00FF_8000)
                }
            }
            (2, State::Ready) => {
                c.state = State::Ident;
                Resp::R136(cid(&c.spec))
            }
            (3, State::Ident) => {
                c.state = State::Stby;
                if mmc {
                    c.rca = u16::try_from(arg >> 16).unwrap();
                    c.r1(0)
                } else {
                    c.rca = 0xB368;
                    Resp::R48(u32::from(c.rca) << 16 | State::Ident.code() << 9)
                }
            }
            (9, State::Stby) if arg >> 16 == u32::from(c.rca) => {
                let mut r = csd(&c.spec);
                if bad_csd {
                    r[3] |= 0xC0_0000; // CSD_STRUCTURE 3
                }
                Resp::R136(r)
            }
            (7, State::Stby) if arg >> 16 == u32::from(c.rca) => {
                let r = c.r1(0);
                c.state = State::Tran;
                r
            }
            (8, State::Idle) if !mmc => Resp::R48(if bad_echo { 0x155 } else { arg & 0xFFF }),
            (8, State::Tran) if mmc && data => {
                stream = Some((false, Src::ExtCsd, 1, false));
                let r = c.r1(0);
                c.state = State::Data;
                r
            }
            (13, _) if arg >> 16 == u32::from(c.rca) && c.state != State::Idle => {
                if c.state == State::Prg {
                    if stuck {
                        return c.r1(0) /* still programming */;
                    }
                    if c.program_left == 0 {
                        c.state = State::Tran;
                    } else {
                        c.program_left -= 1;
                    }
                }
                let mut r = c.r1(0);
                if c.state == State::Prg
                    && let Resp::R48(s) = &mut r
                {
                    *s &= !(1 << 8);
                }
                c.switch_error = false;
                r
            }
            (55, _) => {
                c.app = true;
                c.r1(1 << 5)
            }
            (6, State::Tran) if app && !mmc => {
                c.bus_width = if arg & 3 == 2 { 4 } else { 1 };
                c.r1(0)
            }
            (6, State::Tran) if mmc => {
                let index = usize::try_from((arg >> 16) & 0xFF).unwrap();
                let value = u8::try_from((arg >> 8) & 0xFF).unwrap();
                let ok = !reject_switch
                    && arg >> 24 == 3
                    && match index {
                        183 => value <= 2,
                        185 => value <= 1,
                        179 => match value & 7 {
                            0 => true,
                            1 | 2 => c.spec.boot_mult > 0,
                            3 => c.spec.rpmb_mult > 0,
                            _ => false,
                        },
                        _ => false,
                    };
                let r = c.r1(0);
                if ok {
                    c.ext[index] = value;
                    if index == 183 {
                        c.bus_width = [1, 4, 8][usize::from(value)];
                    }
                } else {
                    c.switch_error = true;
                }
                r
            }
            (12, State::Data | State::Rcv) => {
                let r = c.r1(0);
                c.state = State::Tran;
                r
            }
            (16, State::Tran) => c.r1(0),
            (17 | 18 | 24 | 25, State::Tran) => {
                let b = c.block_of(arg);
                let count = if idx == 18 || idx == 25 {
                    if mix & 2 != 0 {
                        blk_att >> 16
                    } else {
                        u32::MAX
                    }
                } else {
                    1
                };
                let len = u64::try_from(c.medium().len() / 512).unwrap();
                if b >= len || (count != u32::MAX && b + u64::from(count) > len) {
                    c.r1(1 << 31)
                } else {
                    let write = idx >= 24;
                    stream = Some((write, Src::Blocks(b), count, idx == 18 || idx == 25));
                    let r = c.r1(0);
                    c.state = if write { State::Rcv } else { State::Data };
                    r
                }
            }
            (32 | 35, State::Tran) if (idx == 35) == mmc => {
                c.erase.0 = Some(c.block_of(arg));
                c.r1(0)
            }
            (33 | 36, State::Tran) if (idx == 36) == mmc => {
                c.erase.1 = Some(c.block_of(arg));
                c.r1(0)
            }
            (38, State::Tran) => match c.erase {
                (Some(s), Some(e)) if s <= e => {
                    let (s, e) = (usize::try_from(s).unwrap(), usize::try_from(e).unwrap());
                    let r = c.r1(0);
                    c.medium()[s * 512..(e + 1) * 512].fill(0);
                    c.erase = (None, None);
                    c.state = State::Prg;
                    c.program_left = program_polls;
                    r
                }
                _ => c.r1(1 << 28),
            },
            _ => Resp::None,
        };
        if let Some((write, src, left, multi)) = stream {
            self.stream = Some(Stream {
                write,
                src,
                left,
                multi,
                auto12: mix & 4 != 0,
                buf: [0; 512],
                pos: 0,
                blocks_done: 0,
            });
            if !data || blk_att & 0x1FFF != 512 {
                self.violations
                    .push(format!("CMD{idx}: data flags/block size wrong"));
            }
        }
        r
    }

    /// Next block to send to the host.
    fn next_read_block(&mut self) -> Result<[u8; 512], u32> {
        let crc = self.faults.data_crc > 0;
        let s = self.stream.as_mut().expect("stream");
        let c = self.card.as_mut().expect("card");
        if crc {
            self.faults.data_crc -= 1;
            return Err(DCE);
        }
        if self.faults.data_end_bit > 0 {
            self.faults.data_end_bit -= 1;
            return Err(DEBE);
        }
        let mut b = [0u8; 512];
        match s.src {
            Src::ExtCsd => b = c.ext,
            Src::Blocks(n) => {
                let i = usize::try_from(n).unwrap() * 512;
                b.copy_from_slice(&c.medium()[i..i + 512]);
                s.src = Src::Blocks(n + 1);
            }
        }
        Ok(b)
    }

    fn store_block(&mut self, b: &[u8; 512]) -> Result<(), u32> {
        if self.faults.data_crc > 0 {
            self.faults.data_crc -= 1;
            return Err(DCE);
        }
        if self.faults.data_end_bit > 0 {
            self.faults.data_end_bit -= 1;
            return Err(DEBE);
        }
        let s = self.stream.as_mut().expect("stream");
        if let Some(n) = self.faults.write_fail_after
            && s.blocks_done >= n
        {
            self.faults.write_fail_after = None;
            return Err(DTOE);
        }
        let c = self.card.as_mut().expect("card");
        if let Src::Blocks(n) = s.src {
            let i = usize::try_from(n).unwrap() * 512;
            c.medium()[i..i + 512].copy_from_slice(b);
            s.src = Src::Blocks(n + 1);
        }
        Ok(())
    }

    /// One block done; finishes the transfer after the last.
    fn block_done(&mut self) {
        let s = self.stream.as_mut().expect("stream");
        s.blocks_done += 1;
        if s.left != u32::MAX {
            s.left -= 1;
        }
        if s.left == 0 {
            let s = self.stream.take().expect("stream");
            self.cleaned.clear();
            if s.multi && s.auto12 && self.faults.auto12_errors > 0 {
                // The automatic CMD12 got no response: the card stays in
                // its data state and no TC comes.
                self.faults.auto12_errors -= 1;
                self.ac12_err = 1;
                self.raise(AC12E);
                return;
            }
            let c = self.card.as_mut().expect("card");
            if !s.multi || s.auto12 {
                c.state = if s.write { State::Prg } else { State::Tran };
                c.program_left = self.faults.program_polls;
            }
            if s.multi && !s.auto12 {
                self.violations
                    .push("multi-block without auto-CMD12".into());
            }
            if !self.faults.no_transfer_complete {
                self.raise(TC);
            }
            self.cleaned.clear();
        }
    }

    fn fail_data(&mut self, err: u32) {
        self.stream = None;
        self.raise(err);
        self.cleaned.clear();
    }

    fn pio_start(&mut self) {
        let write = self.stream.as_ref().expect("stream").write;
        if write {
            self.raise(BWR);
        } else {
            self.pio_load();
        }
    }

    fn pio_load(&mut self) {
        match self.next_read_block() {
            Ok(b) => {
                let s = self.stream.as_mut().expect("stream");
                s.buf = b;
                s.pos = 0;
                self.raise(BRR);
            }
            Err(e) => self.fail_data(e),
        }
    }

    fn pio_read(&mut self) -> u32 {
        let Some(s) = self.stream.as_mut().filter(|s| !s.write) else {
            self.violations
                .push("DATA_BUFF read with no read under way".into());
            return 0;
        };
        let p = s.pos;
        let w = u32::from_le_bytes([s.buf[p], s.buf[p + 1], s.buf[p + 2], s.buf[p + 3]]);
        s.pos += 4;
        if s.pos == 512 {
            self.block_done();
            if self.stream.is_some() {
                self.pio_load();
            }
        }
        w
    }

    fn pio_write(&mut self, v: u32) {
        let Some(s) = self.stream.as_mut().filter(|s| s.write) else {
            self.violations
                .push("DATA_BUFF write with no write under way".into());
            return;
        };
        let p = s.pos;
        s.buf[p..p + 4].copy_from_slice(&v.to_le_bytes());
        s.pos += 4;
        if s.pos == 512 {
            let b = s.buf;
            s.pos = 0;
            match self.store_block(&b) {
                Ok(()) => {
                    self.block_done();
                    if self.stream.is_some() {
                        self.raise(BWR);
                    }
                }
                Err(e) => self.fail_data(e),
            }
        }
    }

    fn host_of(&self, bus: u64, len: usize) -> Option<usize> {
        self.windows
            .iter()
            .find(|w| {
                bus >= w.bus
                    && bus + u64::try_from(len).unwrap() <= w.bus + u64::try_from(w.len).unwrap()
            })
            .map(|w| w.host + usize::try_from(bus - w.bus).unwrap())
    }

    fn check_clean(&mut self, host: usize, len: usize, what: &str) {
        let ok = self
            .cleaned
            .iter()
            .any(|&(h, l)| h <= host && host + len <= h + l);
        if !ok {
            self.violations.push(format!(
                "device read {what} at {host:#x}+{len:#x} not cleaned"
            ));
        }
    }

    fn run_adma(&mut self) {
        if self.faults.adma_errors > 0 {
            self.faults.adma_errors -= 1;
            self.adma_err = 1;
            return self.fail_data(DMAE);
        }
        let mut desc_bus = u64::from(self.adma_addr);
        let mut block = [0u8; 512];
        let mut fill = 0usize;
        for _ in 0..1024 {
            let Some(dh) = self.host_of(desc_bus, 8) else {
                self.adma_err = 1;
                return self.fail_data(DMAE);
            };
            self.check_clean(dh, 8, "descriptor");
            let p: *const u64 = core::ptr::with_exposed_provenance(dh);
            // SAFETY: `dh` lies in a window mapped by `Fake::dma_mem`/`alloc`,
            // whose memory is leaked (lives forever); 8 bytes fit in it.
            let d = unsafe { p.read_unaligned() };
            let attr = d & 0xFFFF;
            let len = usize::try_from((d >> 16) & 0xFFFF).unwrap();
            let addr = d >> 32;
            if attr & 0x1 == 0 || attr & 0x30 != 0x20 || len == 0 {
                self.adma_err = 2;
                return self.fail_data(DMAE);
            }
            let Some(host) = self.host_of(addr, len) else {
                self.adma_err = 1;
                return self.fail_data(DMAE);
            };
            let write = self.stream.as_ref().expect("stream").write;
            if write {
                self.check_clean(host, len, "data");
            } else {
                self.pending_invalidate.push((host, len));
            }
            let mut off = 0;
            while off < len {
                if self.stream.is_none() {
                    self.adma_err = 3;
                    return self.fail_data(DMAE);
                }
                let n = (512 - fill).min(len - off);
                let mem: *mut u8 = core::ptr::with_exposed_provenance_mut(host + off);
                if write {
                    // SAFETY: `host + off .. + n` is inside the mapped, leaked window
                    // (`host_of` checked `len`), and `block[fill..]` has `n` bytes.
                    unsafe { core::ptr::copy_nonoverlapping(mem, block[fill..].as_mut_ptr(), n) };
                } else {
                    if fill == 0 {
                        match self.next_read_block() {
                            Ok(b) => block = b,
                            Err(e) => return self.fail_data(e),
                        }
                    }
                    // SAFETY: as above, in the other direction.
                    unsafe { core::ptr::copy_nonoverlapping(block[fill..].as_ptr(), mem, n) };
                }
                fill += n;
                off += n;
                if fill == 512 {
                    fill = 0;
                    if write && let Err(e) = self.store_block(&block) {
                        return self.fail_data(e);
                    }
                    self.block_done();
                }
            }
            if attr & 0x2 != 0 {
                if self.stream.is_some() || fill != 0 {
                    self.adma_err = 4;
                    self.fail_data(DMAE);
                }
                return;
            }
            desc_bus += 8;
        }
        self.fail_data(DMAE);
    }
}

impl core::fmt::Debug for Fake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(SIG)
    }
}
