//! i.MX UART driver: polled transmit and receive, nothing else.
//!
//! The baud rate and pins are set up by the boot ROM / TF-A on silicon; this
//! driver enables the transmitter and receiver and moves bytes. It works on
//! any [`RegisterIo`] window, so host tests run it on a fake register block.
#![no_std]

#[cfg(test)]
extern crate std;

use core::mem::offset_of;
use hal::RegisterIo;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};
use tock_registers::{LocalRegisterCopy, register_bitfields, register_structs};

register_bitfields! [u32,
    /// Control register 1.
    pub UCR1 [
        /// UART enable.
        UARTEN OFFSET(0) NUMBITS(1) []
    ],
    /// Control register 2.
    pub UCR2 [
        /// Software reset, active low: 0 resets the UART.
        SRST OFFSET(0) NUMBITS(1) [],
        /// Receiver enable.
        RXEN OFFSET(1) NUMBITS(1) [],
        /// Transmitter enable.
        TXEN OFFSET(2) NUMBITS(1) [],
        /// 8-bit words.
        WS OFFSET(5) NUMBITS(1) [],
        /// Ignore RTS.
        IRTS OFFSET(14) NUMBITS(1) []
    ],
    /// Control register 3.
    pub UCR3 [
        /// RXD muxed input selected (must be 1 on i.MX).
        RXDMUXSEL OFFSET(2) NUMBITS(1) [],
        /// DCD, RI, DSR outputs high.
        MODEM OFFSET(8) NUMBITS(3) []
    ],
    /// FIFO control register.
    pub UFCR [
        /// Receiver trigger level.
        RXTL OFFSET(0) NUMBITS(6) [],
        /// Reference frequency divider (0b101 = divide by 1).
        RFDIV OFFSET(7) NUMBITS(3) [],
        /// Transmitter trigger level.
        TXTL OFFSET(10) NUMBITS(6) []
    ],
    /// Status register 2.
    pub USR2 [
        /// Receive data ready.
        RDR OFFSET(0) NUMBITS(1) [],
        /// Transmit complete.
        TXDC OFFSET(3) NUMBITS(1) []
    ],
    /// Test register.
    pub UTS [
        /// Transmit FIFO full.
        TXFULL OFFSET(4) NUMBITS(1) []
    ],
    /// Receiver register.
    pub URXD [
        /// Received byte.
        DATA OFFSET(0) NUMBITS(8) [],
        /// Parity error.
        PRERR OFFSET(10) NUMBITS(1) [],
        /// Break detected.
        BRK OFFSET(11) NUMBITS(1) [],
        /// Framing error.
        FRMERR OFFSET(12) NUMBITS(1) [],
        /// The receiver overran after this character; the character is good.
        OVRRUN OFFSET(13) NUMBITS(1) [],
        /// Some error flag is set.
        ERR OFFSET(14) NUMBITS(1) []
    ]
];

register_structs! {
    /// The UART register window (i.MX8M reference manual, UART chapter).
    pub Registers {
        (0x00 => pub urxd: ReadOnly<u32, URXD::Register>),
        (0x04 => _r0),
        (0x40 => pub utxd: WriteOnly<u32>),
        (0x44 => _r1),
        (0x80 => pub ucr1: ReadWrite<u32, UCR1::Register>),
        (0x84 => pub ucr2: ReadWrite<u32, UCR2::Register>),
        (0x88 => pub ucr3: ReadWrite<u32, UCR3::Register>),
        (0x8c => pub ucr4: ReadWrite<u32>),
        (0x90 => pub ufcr: ReadWrite<u32, UFCR::Register>),
        (0x94 => pub usr1: ReadWrite<u32>),
        (0x98 => pub usr2: ReadWrite<u32, USR2::Register>),
        (0x9c => _r2),
        (0xb4 => pub uts: ReadWrite<u32, UTS::Register>),
        (0xb8 => @END),
    }
}

/// Size of the register window the driver touches.
pub const WINDOW_LEN: usize = size_of::<Registers>();

const URXD_OFF: usize = offset_of!(Registers, urxd);
const UTXD_OFF: usize = offset_of!(Registers, utxd);
const UCR1_OFF: usize = offset_of!(Registers, ucr1);
const UCR2_OFF: usize = offset_of!(Registers, ucr2);
const UCR3_OFF: usize = offset_of!(Registers, ucr3);
const UFCR_OFF: usize = offset_of!(Registers, ufcr);
const USR2_OFF: usize = offset_of!(Registers, usr2);
const UTS_OFF: usize = offset_of!(Registers, uts);

/// A polled i.MX UART.
pub struct Uart<R> {
    regs: R,
}

impl<R: RegisterIo> Uart<R> {
    /// Wraps the register window without touching the hardware.
    pub const fn new(regs: R) -> Self {
        Self { regs }
    }

    /// Enables the UART for 8N1 polled use, keeping the baud rate that the
    /// earlier boot stage programmed.
    pub fn init(&mut self) {
        self.regs.write(UCR1_OFF, UCR1::UARTEN::SET.value);
        self.regs.write(
            UCR2_OFF,
            (UCR2::SRST::SET + UCR2::RXEN::SET + UCR2::TXEN::SET + UCR2::WS::SET + UCR2::IRTS::SET)
                .value,
        );
        self.regs.write(
            UCR3_OFF,
            (UCR3::RXDMUXSEL::SET + UCR3::MODEM.val(0b111)).value,
        );
        self.regs.modify(
            UFCR_OFF,
            (UFCR::RXTL::SET + UFCR::TXTL::SET).mask(),
            (UFCR::RXTL.val(1) + UFCR::TXTL.val(2)).value,
        );
    }

    /// Sends one byte, waiting while the transmit FIFO is full.
    pub fn write_byte(&mut self, b: u8) {
        while LocalRegisterCopy::<u32, UTS::Register>::new(self.regs.read(UTS_OFF))
            .is_set(UTS::TXFULL)
        {
            core::hint::spin_loop();
        }
        self.regs.write(UTXD_OFF, u32::from(b));
    }

    /// Sends bytes.
    pub fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_byte(b);
        }
    }

    /// Returns a received byte if one is waiting. Characters received with a
    /// framing or parity error, or a break, are dropped. An overrun flag only
    /// says that data *after* this character was lost, so it is kept.
    pub fn try_read_byte(&mut self) -> Option<u8> {
        loop {
            let usr2 = LocalRegisterCopy::<u32, USR2::Register>::new(self.regs.read(USR2_OFF));
            if !usr2.is_set(USR2::RDR) {
                return None;
            }
            let rx = LocalRegisterCopy::<u32, URXD::Register>::new(self.regs.read(URXD_OFF));
            if !rx.is_set(URXD::PRERR) && !rx.is_set(URXD::BRK) && !rx.is_set(URXD::FRMERR) {
                // The field is 8 bits wide.
                return Some(rx.read(URXD::DATA) as u8);
            }
        }
    }

    /// Waits until everything written has left the shift register.
    pub fn flush(&mut self) {
        while !LocalRegisterCopy::<u32, USR2::Register>::new(self.regs.read(USR2_OFF))
            .is_set(USR2::TXDC)
        {
            core::hint::spin_loop();
        }
    }
}

impl<R: RegisterIo> core::fmt::Write for Uart<R> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        self.write_bytes(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::RefCell;
    use std::collections::VecDeque;
    use std::vec::Vec;

    /// A fake UART: records writes, serves a receive queue.
    #[derive(Default)]
    struct Fake {
        regs: RefCell<Vec<u32>>,
        tx: RefCell<Vec<u8>>,
        rx: RefCell<VecDeque<u32>>,
        full_polls: RefCell<u32>,
    }

    impl RegisterIo for Fake {
        fn read(&self, offset: usize) -> u32 {
            match offset {
                USR2_OFF => u32::from(!self.rx.borrow().is_empty()) | 1 << 3,
                URXD_OFF => self.rx.borrow_mut().pop_front().unwrap_or(0),
                UTS_OFF => {
                    let mut n = self.full_polls.borrow_mut();
                    if *n > 0 {
                        *n -= 1;
                        1 << 4
                    } else {
                        0
                    }
                }
                _ => self.regs.borrow()[offset / 4],
            }
        }
        fn write(&self, offset: usize, value: u32) {
            if offset == UTXD_OFF {
                self.tx.borrow_mut().push(value as u8);
            } else {
                self.regs.borrow_mut()[offset / 4] = value;
            }
        }
    }

    #[test]
    fn register_offsets_match_the_reference_manual() {
        assert_eq!(URXD_OFF, 0x00);
        assert_eq!(UTXD_OFF, 0x40);
        assert_eq!(UCR1_OFF, 0x80);
        assert_eq!(UCR2_OFF, 0x84);
        assert_eq!(UCR3_OFF, 0x88);
        assert_eq!(UFCR_OFF, 0x90);
        assert_eq!(USR2_OFF, 0x98);
        assert_eq!(UTS_OFF, 0xb4);
        assert_eq!(WINDOW_LEN, 0xb8);
    }

    #[test]
    fn init_writes_the_known_good_values() {
        // Values from the QEMU facts sheet (a working init) and the manual:
        // UCR1 = 0x1, UCR2 = 0x4027, UCR3 = 0x704, RXTL 1 and TXTL 2.
        let fake = Fake::default();
        fake.regs.borrow_mut().resize(WINDOW_LEN / 4, 0);
        fake.regs.borrow_mut()[UFCR_OFF / 4] = 0b101 << 7;
        Uart::new(&fake).init();
        let r = fake.regs.borrow();
        assert_eq!(r[UCR1_OFF / 4], 0x1);
        assert_eq!(r[UCR2_OFF / 4], 0x4027);
        assert_eq!(r[UCR3_OFF / 4], 0x704);
        assert_eq!(r[UFCR_OFF / 4], 1 | 0b101 << 7 | 2 << 10);
    }

    #[test]
    fn write_waits_for_fifo_space() {
        let fake = Fake::default();
        *fake.full_polls.borrow_mut() = 3;
        let mut u = Uart::new(&fake);
        core::fmt::Write::write_str(&mut u, "=> ").unwrap();
        assert_eq!(*fake.tx.borrow(), b"=> ");
        assert_eq!(*fake.full_polls.borrow(), 0);
    }

    #[test]
    fn read_drops_error_characters_but_keeps_overrun_ones() {
        let fake = Fake::default();
        let err = 1 << 14;
        fake.rx.borrow_mut().extend([
            err | 1 << 12 | u32::from(b'x'),
            err | 1 << 10 | u32::from(b'y'),
            err | 1 << 11,
            u32::from(b'a'),
            err | 1 << 13 | u32::from(b'b'),
        ]);
        let mut u = Uart::new(&fake);
        assert_eq!(u.try_read_byte(), Some(b'a'));
        assert_eq!(u.try_read_byte(), Some(b'b'));
        assert_eq!(u.try_read_byte(), None);
    }
}
