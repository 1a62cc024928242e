//! eMMC fault injection on the uSDHC register window (QEMU board only).
//!
//! QEMU's SD card never fails on its own. The QEMU board hands the uSDHC
//! driver its register window wrapped in [`FaultyUsdhc`], which passes every
//! access through to QEMU's controller, except for the data commands the
//! fault plan ([`MmcFault`]) names. Those are failed the way a controller
//! reports real failures, so the unchanged driver sees what silicon shows:
//!
//! - command timeout: the command never reaches the card; INT_STATUS reports
//!   CTOE;
//! - data CRC error: the transfer runs, and its transfer-complete (TC) reads
//!   as a data CRC error (DCE);
//! - write cut: the block count is halved before the command starts, so only
//!   the first half of a multi-block write reaches the card, then DCE;
//! - card removed: from that command on nothing reaches the card, every
//!   command times out and PRES_STATE.CINST reads 0;
//! - hold until removed: the command waits until QEMU's monitor really
//!   removes the card (`eject -f`), then goes to the empty slot.
//!
//! Data commands are recognised by CMD_XFR_TYP.DPSEL; their direction by the
//! MIX_CTRL.DTDSEL the driver wrote just before (QEMU reads MIX_CTRL back as
//! 0, so the last written value is kept here).

use crate::fusefile::{MmcFault, MmcFaultKind, MmcOp};
use core::cell::Cell;
use hal::RegisterIo;
use usdhc::regs::offsets as o;
use usdhc::regs::{CMD_XFR_TYP, INT_STATUS, MIX_CTRL, PRES_STATE, SYS_CTRL};

/// How long [`MmcFaultKind::HoldUntilRemoved`] waits for the card to go.
pub const HOLD_US: u64 = 60_000_000;

const CTOE: u32 = INT_STATUS::CTOE::SET.value;
const DCE: u32 = INT_STATUS::DCE::SET.value;
const TC: u32 = INT_STATUS::TC::SET.value;
const CINST: u32 = PRES_STATE::CINST::SET.value;
const RESETS: u32 =
    SYS_CTRL::RSTA::SET.value | SYS_CTRL::RSTC::SET.value | SYS_CTRL::RSTD::SET.value;

/// The uSDHC window `R` with an optional [`MmcFault`] applied.
pub struct FaultyUsdhc<R> {
    inner: R,
    plan: Option<MmcFault>,
    now_us: fn() -> u64,
    st: Cell<State>,
}

#[derive(Clone, Copy, Default)]
struct State {
    /// Data commands from the card / to the card since power-on.
    reads: u32,
    writes: u32,
    /// Last values written (QEMU reads MIX_CTRL back as 0).
    mix_ctrl: u32,
    blk_att: u32,
    /// Interrupt status bits this layer raised (write-1-to-clear).
    raised: u32,
    /// The running transfer's TC reads as DCE.
    tc_is_crc_error: bool,
    /// The card is gone until power-on.
    removed: bool,
    /// Commands failed so far.
    hits: u32,
}

impl<R: RegisterIo> FaultyUsdhc<R> {
    /// Wraps `inner`; `now_us` is a microsecond clock for the hold.
    pub fn new(inner: R, plan: Option<MmcFault>, now_us: fn() -> u64) -> Self {
        Self {
            inner,
            plan,
            now_us,
            st: Cell::new(State::default()),
        }
    }

    /// How many commands the plan has failed (or held) so far.
    pub fn hits(&self) -> u32 {
        self.st.get().hits
    }

    /// Whether the plan hits the data command just counted.
    fn hit(&self, op: MmcOp, count: u32) -> Option<MmcFaultKind> {
        let p = self.plan?;
        let first = u32::from(p.nth);
        (p.op == op && count >= first && count < first + u32::from(p.times)).then_some(p.kind)
    }

    /// A write of CMD_XFR_TYP: the command starts, unless the plan fails it.
    fn start_command(&self, xfr: u32) {
        let mut st = self.st.get();
        if st.removed {
            st.raised |= CTOE;
            self.st.set(st);
            return;
        }
        let mut forward = true;
        if xfr & CMD_XFR_TYP::DPSEL::SET.value != 0 {
            let (op, count) = if st.mix_ctrl & MIX_CTRL::DTDSEL::SET.value != 0 {
                st.reads += 1;
                (MmcOp::Read, st.reads)
            } else {
                st.writes += 1;
                (MmcOp::Write, st.writes)
            };
            if let Some(kind) = self.hit(op, count) {
                st.hits += 1;
                match kind {
                    MmcFaultKind::CommandTimeout => {
                        st.raised |= CTOE;
                        forward = false;
                    }
                    MmcFaultKind::Removed => {
                        st.removed = true;
                        st.raised |= CTOE;
                        forward = false;
                    }
                    MmcFaultKind::DataCrc => st.tc_is_crc_error = true,
                    MmcFaultKind::WriteCut => {
                        let blocks = st.blk_att >> 16;
                        if op == MmcOp::Write && blocks >= 2 {
                            let half = (st.blk_att & 0xFFFF) | (blocks / 2) << 16;
                            self.inner.write(o::BLK_ATT, half);
                        }
                        st.tc_is_crc_error = true;
                    }
                    MmcFaultKind::HoldUntilRemoved => self.hold_until_removed(),
                }
            }
        }
        self.st.set(st);
        if forward {
            self.inner.write(o::CMD_XFR_TYP, xfr);
        }
    }

    fn hold_until_removed(&self) {
        let start = (self.now_us)();
        while self.inner.read(o::PRES_STATE) & CINST != 0
            && (self.now_us)().wrapping_sub(start) < HOLD_US
        {
            core::hint::spin_loop();
        }
    }
}

impl<R: RegisterIo> RegisterIo for FaultyUsdhc<R> {
    fn read(&self, offset: usize) -> u32 {
        let st = self.st.get();
        match offset {
            o::INT_STATUS => {
                let mut s = self.inner.read(offset);
                if st.tc_is_crc_error && s & TC != 0 {
                    s = (s & !TC) | DCE;
                }
                s | st.raised
            }
            o::PRES_STATE if st.removed => self.inner.read(offset) & !CINST,
            _ => self.inner.read(offset),
        }
    }

    fn write(&self, offset: usize, value: u32) {
        let mut st = self.st.get();
        match offset {
            o::CMD_XFR_TYP => return self.start_command(value),
            o::MIX_CTRL => st.mix_ctrl = value,
            o::BLK_ATT => st.blk_att = value,
            o::INT_STATUS => {
                st.raised &= !value;
                let mut v = value;
                if st.tc_is_crc_error && value & DCE != 0 {
                    // Clearing the reported DCE clears the hidden TC.
                    v |= TC;
                    st.tc_is_crc_error = false;
                }
                self.st.set(st);
                return self.inner.write(offset, v);
            }
            o::SYS_CTRL if value & RESETS != 0 => {
                st.raised = 0;
                st.tc_is_crc_error = false;
            }
            _ => {}
        }
        self.st.set(st);
        self.inner.write(offset, value);
    }
}

#[cfg(test)]
mod tests {
    //! The unchanged uSDHC driver on the host card model, through this
    //! layer: each fault gives the driver's specific error, a single hit is
    //! absorbed by the driver's one retry, a cut write leaves exactly its
    //! first half on the medium.

    use super::*;
    use std::boxed::Box;
    use std::vec::Vec;
    use usdhc::fake::{CardSpec, CardType, Fake, FakeClock, FakeDma, FakeRegs};
    use usdhc::{Config, MmcError, Usdhc};

    type Regs = &'static FaultyUsdhc<FakeRegs>;
    type Dev = Usdhc<Regs, FakeDma, FakeClock>;

    fn zero() -> u64 {
        0
    }

    /// An SD card as on QEMU (its init has no data commands, so the
    /// counts start with the test's first transfer).
    fn setup_with(plan: Option<MmcFault>, now_us: fn() -> u64) -> (Fake, Regs, Dev) {
        let f = Fake::new(Some(CardSpec::sd(CardType::SdHc, 1 << 16)));
        let regs: Regs = Box::leak(Box::new(FaultyUsdhc::new(f.regs(), plan, now_us)));
        let mut d = Usdhc::new(regs, f.dma(), Fake::clock(), f.dma_mem(), Config::QEMU_SD);
        d.init().expect("init");
        (f, regs, d)
    }

    fn setup(plan: Option<MmcFault>) -> (Fake, Regs, Dev) {
        setup_with(plan, zero)
    }

    fn plan(kind: MmcFaultKind, op: MmcOp, nth: u16, times: u8) -> Option<MmcFault> {
        Some(MmcFault {
            kind,
            op,
            nth,
            times,
        })
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect()
    }

    #[test]
    fn no_plan_is_transparent() {
        let (f, r, mut d) = setup(None);
        let data = pattern(8 * 512, 1);
        d.write(100, &data).expect("write");
        let mut back = std::vec![0u8; data.len()];
        d.read(100, &mut back).expect("read");
        assert_eq!(back, data);
        assert_eq!(f.medium(0, 100, 8), data);
        assert_eq!(r.hits(), 0);
    }

    #[test]
    fn command_timeout_once_is_retried_twice_fails() {
        let (f, _, mut d) = setup(plan(MmcFaultKind::CommandTimeout, MmcOp::Write, 2, 1));
        let a = pattern(1024, 2);
        d.write(10, &a).expect("first write untouched");
        d.write(20, &a).expect("second write: one timeout, retried");
        assert_eq!(d.retries(), 1);
        assert_eq!(f.medium(0, 20, 2), a);

        let (f, r, mut d) = setup(plan(MmcFaultKind::CommandTimeout, MmcOp::Write, 1, 2));
        let before = f.medium(0, 30, 2);
        let e = d.write(30, &a).expect_err("both attempts time out");
        assert!(
            matches!(e, MmcError::NoResponse(at) if at.cmd == 25),
            "{e:?}"
        );
        assert_eq!(f.medium(0, 30, 2), before, "nothing written");
        assert_eq!(r.hits(), 2);
        d.write(30, &a).expect("the card answers again");
        assert_eq!(f.medium(0, 30, 2), a);
    }

    #[test]
    fn data_crc_error_on_reads() {
        let (f, _, mut d) = setup(plan(MmcFaultKind::DataCrc, MmcOp::Read, 1, 2));
        let a = pattern(2048, 3);
        d.write(40, &a).expect("writes are not counted");
        let mut back = std::vec![0u8; a.len()];
        let e = d.read(40, &mut back).expect_err("CRC error twice");
        assert!(matches!(e, MmcError::DataCrc(at) if at.cmd == 18), "{e:?}");
        d.read(40, &mut back).expect("third read is clean");
        assert_eq!(back, a);
        assert_eq!(f.medium(0, 40, 4), a);
    }

    #[test]
    fn write_cut_leaves_the_first_half() {
        let (f, _, mut d) = setup(plan(MmcFaultKind::WriteCut, MmcOp::Write, 1, 2));
        let a = pattern(8 * 512, 4);
        let before = f.medium(0, 54, 4);
        let e = d.write(50, &a).expect_err("cut twice");
        // The card model also flags the descriptors' extra length (ADMA
        // length mismatch), as the SDHCI spec says a controller may.
        assert!(
            matches!(e, MmcError::DataCrc(at) | MmcError::Adma { at, .. } if at.cmd == 25),
            "{e:?}"
        );
        assert_eq!(f.medium(0, 50, 4), a[..4 * 512], "first half landed");
        assert_eq!(f.medium(0, 54, 4), before, "second half not");

        // Cut once: the retry writes the whole range.
        let (f, _, mut d) = setup(plan(MmcFaultKind::WriteCut, MmcOp::Write, 1, 1));
        d.write(50, &a).expect("retried");
        assert_eq!(f.medium(0, 50, 8), a);
    }

    #[test]
    fn removed_card_fails_everything_after() {
        let (f, r, mut d) = setup(plan(MmcFaultKind::Removed, MmcOp::Write, 2, 1));
        let a = pattern(512, 5);
        d.write(60, &a).expect("before the removal");
        let before = f.medium(0, 61, 1);
        let e = d.write(61, &a).expect_err("the card is gone");
        assert!(
            matches!(e, MmcError::NoResponse(_) | MmcError::NoCard),
            "{e:?}"
        );
        let mut back = std::vec![0u8; 512];
        let e = d.read(60, &mut back).expect_err("reads fail too");
        assert!(matches!(e, MmcError::NoCard), "{e:?}");
        assert_eq!(r.read(o::PRES_STATE) & CINST, 0);
        assert_eq!(f.medium(0, 61, 1), before);
    }

    #[test]
    fn hold_gives_up_after_the_deadline() {
        // The fake card never leaves; with a clock that jumps past the
        // deadline the hold ends and the command goes through.
        fn late() -> u64 {
            static T: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            T.fetch_add(HOLD_US / 4, std::sync::atomic::Ordering::Relaxed)
        }
        let p = plan(MmcFaultKind::HoldUntilRemoved, MmcOp::Write, 1, 1);
        let (f, r, mut d) = setup_with(p, late);
        let a = pattern(512, 6);
        d.write(70, &a).expect("held, then written");
        assert_eq!(f.medium(0, 70, 1), a);
        assert_eq!(r.hits(), 1);
    }
}
