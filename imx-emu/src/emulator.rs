//! The device the QEMU board's trap handler talks to.

use crate::caam::{BusMemory, CaamModel};
use crate::fusefile::FuseFile;
use crate::ocotp::{self, OCOTP_BASE, OCOTP_SIZE};
use crate::trap::{EmuError, MmioDevice};

/// Physical base of the CAAM.
pub const CAAM_BASE: u64 = 0x3090_0000;
/// Size of the CAAM window (controller page, JR pages 1..3, and pages the
/// model does not implement).
pub const CAAM_SIZE: u64 = 0x4_0000;

/// The emulated CAAM and OCOTP of one virtual chip.
///
/// Accesses are 32-bit; a 64-bit access is split into two 32-bit ones (low
/// word at the lower address). Byte/halfword accesses and unmodelled offsets
/// are refused with an [`EmuError`].
pub struct Emulator<M: BusMemory> {
    fuses: FuseFile,
    mem: M,
    caam: CaamModel,
}

impl<M: BusMemory> Emulator<M> {
    /// A chip with fuses `fuses` whose CAAM DMA goes through `mem`.
    pub fn new(fuses: FuseFile, mem: M) -> Self {
        let caam = CaamModel::new(&fuses);
        Self { fuses, mem, caam }
    }

    /// The chip's fuses.
    pub fn fuses(&self) -> &FuseFile {
        &self.fuses
    }

    /// The DMA memory (for tests and the board).
    pub fn mem(&mut self) -> &mut M {
        &mut self.mem
    }

    /// Mixes a nonce (e.g. a timer value) into the RNG so that runs differ.
    pub fn reseed(&mut self, nonce: &[u8]) {
        self.caam.reseed(nonce);
    }

    /// Fault injection for tests: while stalled, jobs added with IRJAR stay
    /// in the input ring and never complete. Un-stalling runs them.
    pub fn set_stalled(&mut self, stalled: bool) {
        self.caam.set_stalled(stalled, &mut self.mem, &self.fuses);
    }

    /// Fault injection for tests (the QEMU board's fault plan): arms
    /// `fault` for this power-on. See [`crate::fusefile::Fault`].
    pub fn set_fault(&mut self, fault: Option<crate::fusefile::Fault>) {
        self.caam.set_fault(fault);
    }

    /// A TRNG that needs a longer entropy delay: RNG instantiation fails
    /// (CCB RNG "instantiate" error) while RTSDCTL.ENT_DLY < `ent_dly`.
    pub fn set_rng_min_entropy_delay(&mut self, ent_dly: u32) {
        self.caam.set_rng_min_entropy_delay(ent_dly);
    }

    /// RNG state handles in `mask` (bit 0: SH0, bit 1: SH1) are live, as if
    /// an earlier boot stage had instantiated them. Call right after power-on.
    pub fn preinstantiate_rng(&mut self, mask: u32) {
        self.caam.preinstantiate_rng(mask);
    }

    fn read32(&mut self, addr: u64) -> Result<u32, EmuError> {
        if (CAAM_BASE..CAAM_BASE + CAAM_SIZE).contains(&addr) {
            self.caam.read(offset(addr, CAAM_BASE), &self.fuses)
        } else if (OCOTP_BASE..OCOTP_BASE + OCOTP_SIZE).contains(&addr) {
            ocotp::read(&self.fuses, offset(addr, OCOTP_BASE))
        } else {
            Err(EmuError::NoDevice { addr })
        }
    }

    fn write32(&mut self, addr: u64, v: u32) -> Result<(), EmuError> {
        if (CAAM_BASE..CAAM_BASE + CAAM_SIZE).contains(&addr) {
            self.caam
                .write(offset(addr, CAAM_BASE), v, &mut self.mem, &self.fuses)
        } else if (OCOTP_BASE..OCOTP_BASE + OCOTP_SIZE).contains(&addr) {
            Err(ocotp::write(offset(addr, OCOTP_BASE)))
        } else {
            Err(EmuError::NoDevice { addr })
        }
    }
}

fn offset(addr: u64, base: u64) -> u32 {
    // Callers check that `addr` is inside a window smaller than 4 GiB.
    u32::try_from(addr - base).unwrap_or(u32::MAX)
}

fn check(addr: u64, size: u8) -> Result<(), EmuError> {
    match size {
        4 | 8 if addr.is_multiple_of(u64::from(size)) => Ok(()),
        4 | 8 => Err(EmuError::Unaligned { addr, size }),
        _ => Err(EmuError::BadSize { addr, size }),
    }
}

impl<M: BusMemory> MmioDevice for Emulator<M> {
    fn read(&mut self, addr: u64, size: u8) -> Result<u64, EmuError> {
        check(addr, size)?;
        let lo = self.read32(addr)?;
        if size == 4 {
            return Ok(u64::from(lo));
        }
        let hi = self.read32(addr + 4)?;
        Ok(u64::from(lo) | (u64::from(hi) << 32))
    }

    fn write(&mut self, addr: u64, size: u8, value: u64) -> Result<(), EmuError> {
        check(addr, size)?;
        // Truncation to the low word is the point here.
        let lo = (value & 0xFFFF_FFFF) as u32;
        self.write32(addr, lo)?;
        if size == 8 {
            self.write32(addr + 4, (value >> 32) as u32)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fusefile::{DEFAULT_FAMILY_SECRET, FuseFile};
    use crate::trap::{RegFile, TrapReason, emulate};
    use std::format;
    use std::vec;
    use std::vec::Vec;

    use crate::test_ram::Ram;

    fn fuses(open: bool) -> FuseFile {
        FuseFile {
            uid: [1; 16],
            srk_hash: [2; 32],
            otpmk: [3; 32],
            family_secret: DEFAULT_FAMILY_SECRET,
            open,
            options: Default::default(),
        }
    }

    fn emu(open: bool) -> Emulator<Ram> {
        Emulator::new(fuses(open), Ram(vec![0; 0x3_0000]))
    }

    fn rd(e: &mut Emulator<Ram>, addr: u64) -> u32 {
        u32::try_from(e.read(addr, 4).unwrap()).unwrap()
    }

    fn wr(e: &mut Emulator<Ram>, addr: u64, v: u32) {
        e.write(addr, 4, u64::from(v)).unwrap();
    }

    const C: u64 = CAAM_BASE;
    const JR1: u64 = CAAM_BASE + 0x2000;

    #[test]
    fn version_registers_and_jr_page_alias() {
        let mut e = emu(false);
        for page in [C, C + 0x1000, JR1, C + 0x3000] {
            assert_eq!(rd(&mut e, page + 0xFF8), 0x0A16_0401);
            assert_eq!(rd(&mut e, page + 0xFE4) >> 24, 9, "era");
            assert_eq!(rd(&mut e, page + 0xFF0) >> 28, 3, "job rings");
            assert_eq!((rd(&mut e, page + 0xFD4) >> 8) & 3, 1, "MOO secure");
        }
        assert_eq!((rd(&mut emu(true), C + 0xFD4) >> 8) & 3, 0, "MOO open");
        assert_eq!(rd(&mut e, C + 0xC) >> 28, 3, "MPCURVE P-256");
    }

    #[test]
    fn access_sizes_and_unmodelled_offsets_are_refused_clearly() {
        let mut e = emu(false);
        assert_eq!(
            e.read(C + 0xFF8, 1),
            Err(EmuError::BadSize {
                addr: C + 0xFF8,
                size: 1
            })
        );
        assert!(e.write(C + 0x380, 2, 0).is_err());
        assert_eq!(
            e.read(C + 0xFFA, 4),
            Err(EmuError::Unaligned {
                addr: C + 0xFFA,
                size: 4
            })
        );
        assert_eq!(e.read(C + 0xFF8, 8), Ok(0x0A16_0401));
        let err = e.read(C + 0x8, 4).unwrap_err();
        assert_eq!(
            format!("{err}"),
            "CAAM register at offset 0x008 not modelled (read)"
        );
        assert!(e.read(C + 0x4000, 4).is_err(), "page 4");
        assert!(e.write(JR1 + 0x100, 4, 0).is_err());
        assert_eq!(
            e.read(0x3036_0000, 4),
            Err(EmuError::NoDevice { addr: 0x3036_0000 })
        );
        assert!(matches!(
            e.write(crate::ocotp::OCOTP_BASE + 0x420, 4, 0),
            Err(EmuError::ReadOnly { .. })
        ));
        assert!(e.read(crate::ocotp::OCOTP_BASE + 0x424, 4).is_err());
        // 96 banks on the i.MX8M Plus: bank 95 word 3 is the last shadow.
        assert_eq!(e.read(crate::ocotp::OCOTP_BASE + 0x1BF0, 4), Ok(0));
        assert!(e.read(crate::ocotp::OCOTP_BASE + 0x1C00, 4).is_err());
        assert!(matches!(
            e.write(C + 0xFF8, 4, 0),
            Err(EmuError::ReadOnly { .. })
        ));
        // MCFGR.PS is stored for the driver to see (and refuse); the model
        // runs no job while it is set.
        e.write(C + 0x4, 4, 1 << 16).unwrap();
        assert_eq!(rd(&mut e, C + 0x4), 1 << 16);
        e.write(C + 0x4, 4, 0).unwrap();
        assert!(matches!(
            e.write(JR1, 4, 1),
            Err(EmuError::Unsupported { .. })
        ));
    }

    #[test]
    fn mpmr_byte_order_lock_and_mpcurve() {
        let mut e = emu(false);
        // A 64-bit store writes words 0 (low) and 1 (high).
        e.write(C + 0x380, 8, 0x0807_0605_0403_0201).unwrap();
        assert_eq!(rd(&mut e, C + 0x380), 0x0102_0304);
        assert_eq!(rd(&mut e, C + 0x384), 0x0506_0708);
        let scfgr = rd(&mut e, C + 0xC);
        // MPCURVE is read-only; set MPMRL.
        wr(&mut e, C + 0xC, (scfgr & 0x0FFF_FFFF) | (1 << 26));
        assert_eq!(rd(&mut e, C + 0xC), scfgr | (1 << 26));
        wr(&mut e, C + 0x380, 0xFFFF_FFFF);
        assert_eq!(
            rd(&mut e, C + 0x380),
            0x0102_0304,
            "locked MPMR ignores writes"
        );
        wr(&mut e, C + 0xC, 0);
        assert_ne!(rd(&mut e, C + 0xC) & (1 << 26), 0, "MPMRL is sticky");
    }

    #[test]
    fn trng_registers_need_program_mode() {
        let mut e = emu(false);
        assert!(matches!(
            e.write(C + 0x610, 4, 5),
            Err(EmuError::Unsupported { .. })
        ));
        wr(&mut e, C + 0x600, 1 << 16);
        assert_eq!(
            rd(&mut e, C + 0xFD4) & 4,
            0,
            "TRNG not idle while programming"
        );
        wr(&mut e, C + 0x610, 5);
        assert_eq!(rd(&mut e, C + 0x610), 5);
    }

    #[test]
    fn job_ring_reset_is_two_step_and_ring_errors_are_reported() {
        let mut e = emu(false);
        wr(&mut e, JR1 + 0x6C, 1);
        assert_eq!(rd(&mut e, JR1 + 0x6C), 1);
        assert_eq!((rd(&mut e, JR1 + 0x4C) >> 2) & 3, 2, "halt done");
        wr(&mut e, JR1 + 0x6C, 1);
        assert_eq!(rd(&mut e, JR1 + 0x6C), 0);
        assert_eq!(rd(&mut e, JR1 + 0x4C), 0);
        // IRJAR before the rings are set up: add overflow (ERR_TYPE 9).
        wr(&mut e, JR1 + 0x1C, 1);
        let i = rd(&mut e, JR1 + 0x4C);
        assert_eq!(i & 2, 2);
        assert_eq!((i >> 8) & 0xF, 9);
    }

    #[test]
    fn a_job_through_the_raw_ring_registers() {
        let mut e = emu(false);
        // Input ring at RAM, output ring at RAM+0x100, descriptor at +0x200.
        wr(&mut e, JR1, 0);
        wr(&mut e, JR1 + 4, 0x4000_0000);
        wr(&mut e, JR1 + 0x20, 0);
        wr(&mut e, JR1 + 0x24, 0x4000_0100);
        wr(&mut e, JR1 + 0x2C, 2);
        wr(&mut e, JR1 + 0xC, 2);
        assert_eq!(rd(&mut e, JR1 + 0x14), 2, "IRSAR");
        let desc = [0xB083_0004u32, 0x0006_0000, 0x4000_0300, 0x8614_0000];
        let mut bytes = Vec::new();
        for w in desc {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        e.mem().write(0x4000_0200, &bytes).unwrap();
        e.mem()
            .write(0x4000_0000, &0x4000_0200u32.to_le_bytes())
            .unwrap();
        wr(&mut e, JR1 + 0x1C, 1);
        assert_eq!(rd(&mut e, JR1 + 0x3C), 1, "ORSFR");
        assert_eq!(rd(&mut e, JR1 + 0x5C), 4, "IRRIR in bytes");
        assert_eq!(rd(&mut e, JR1 + 0x64), 8, "ORWIR in bytes");
        let mut out = [0u8; 8];
        e.mem().read(0x4000_0100, &mut out).unwrap();
        assert_eq!(out, [0x00, 0x02, 0x00, 0x40, 0, 0, 0, 0]);
        let mut key = [0u8; 64];
        e.mem().read(0x4000_0300, &mut key).unwrap();
        assert_ne!(key, [0; 64]);
        wr(&mut e, JR1 + 0x34, 1);
        assert_eq!(rd(&mut e, JR1 + 0x3C), 0);
        // ORJRR beyond what is full: remove overflow (ERR_TYPE 8).
        wr(&mut e, JR1 + 0x34, 1);
        assert_eq!((rd(&mut e, JR1 + 0x4C) >> 8) & 0xF, 8);
    }

    struct Regs([u64; 31]);
    impl RegFile for Regs {
        fn get(&self, n: u8) -> u64 {
            self.0[usize::from(n)]
        }
        fn set(&mut self, n: u8, v: u64) {
            self.0[usize::from(n)] = v;
        }
    }

    #[test]
    fn trapped_instructions_reach_the_model() {
        let mut e = emu(false);
        let mut r = Regs([0; 31]);
        r.0[2] = C + 0xFF8;
        emulate(0xb9400041, C + 0xFF8, &mut r, &mut e).unwrap(); // ldr w1, [x2]
        assert_eq!(r.0[1], 0x0A16_0401);
        // stp w1, w2, [x3, #-8] into MPMR words 0 and 1.
        r.0[3] = C + 0x388;
        r.0[1] = 0x4433_2211;
        r.0[2] = 0x8877_6655;
        emulate(0x293f0861, C + 0x380, &mut r, &mut e).unwrap();
        assert_eq!(rd(&mut e, C + 0x384), 0x5566_7788);
        // ldrb is refused by the model with a clear message.
        r.0[2] = C + 0xFF8;
        let err = emulate(0x39c00041, C + 0xFF8, &mut r, &mut e).unwrap_err(); // ldrsb w1, [x2]
        assert!(matches!(
            err.reason,
            TrapReason::Device(EmuError::BadSize { size: 1, .. })
        ));
        let text = format!("{err}");
        assert!(
            text.contains("0x30900ff8") && text.contains("1-byte read"),
            "{text}"
        );
        // OCOTP through the trap path.
        r.0[2] = crate::ocotp::OCOTP_BASE + 0x470;
        emulate(0xb9400041, r.0[2], &mut r, &mut e).unwrap();
        assert_eq!(r.0[1], 0x0200_0000, "closed");
    }

    #[test]
    fn model_stack_use_stays_small() {
        // Run the heaviest jobs (64 KiB blob encap/decap, MP sign) on a
        // thread with a 16 KiB stack: an overflow aborts the test binary.
        let h = std::thread::Builder::new()
            .stack_size(16 * 1024)
            .spawn(|| {
                let mut e = Emulator::new(fuses(false), Ram(vec![0; 0x3_0000]));
                e.preinstantiate_rng(1);
                let blob_in = 0x4000_1000u32;
                let blob_out = 0x4001_2000u32;
                let words = [
                    0xB080_000Au32,
                    0x0480_0010,
                    0x1111_1111,
                    0x2222_2222,
                    0x3333_3333,
                    0x4444_4444,
                    0xF040_0000,
                    blob_in,
                    0x1_0000,
                    0xF840_0000,
                    blob_out,
                    0x1_0030,
                    0x870D_0000,
                ];
                let mut enc = words;
                enc[0] = 0xB080_000D;
                assert_eq!(run(&mut e, &enc), 0, "encap");
                let mut dec = enc;
                (dec[7], dec[8], dec[10], dec[11], dec[12]) =
                    (blob_out, 0x1_0030, blob_in, 0x1_0000, 0x860D_0000);
                assert_eq!(run(&mut e, &dec), 0, "decap");
                let sign = [
                    0xB087_0008u32,
                    0x0006_0000,
                    blob_in,
                    0x4000_0400,
                    0x4000_0420,
                    0x4000_0440,
                    4096,
                    0x8615_0000,
                ];
                run(&mut e, &sign)
            })
            .unwrap();
        assert_eq!(h.join().unwrap(), 0);
    }

    #[test]
    fn descriptor_variants_of_linux_and_op_tee() {
        let mut e = emu(false);
        e.preinstantiate_rng(1);
        let (src, blob, back) = (0x4000_1000u32, 0x4000_2000u32, 0x4000_3000u32);
        e.mem().write(u64::from(src), &[0x5A; 40]).unwrap();
        // Linux blob_gen: immediate key modifier, 16-bit SEQ lengths.
        let km = [0x6261_6161u32, 0x6463_6362, 0x6665_6564, 0x6867_6766];
        let enc = [
            0xB080_000B,
            0x0480_0010,
            km[0],
            km[1],
            km[2],
            km[3],
            0xF000_0028,
            src,
            0xF800_0058,
            blob,
            0x870D_0000,
        ];
        assert_eq!(run(&mut e, &enc), 0);
        let dec = [
            0xB080_000B,
            0x0480_0010,
            km[0],
            km[1],
            km[2],
            km[3],
            0xF000_0058,
            blob,
            0xF800_0028,
            back,
            0x860D_0000,
        ];
        assert_eq!(run(&mut e, &dec), 0);
        let mut out = [0u8; 40];
        e.mem().read(u64::from(back), &mut out).unwrap();
        assert_eq!(out, [0x5A; 40]);
        // The same blob with the key modifier by reference (U-Boot form).
        let km_bytes: Vec<u8> = km.iter().flat_map(|w| w.to_le_bytes()).collect();
        e.mem().write(0x4000_0F00, &km_bytes).unwrap();
        let ub = [
            0xB080_000A,
            0x0400_0010,
            0x4000_0F00,
            0xF040_0000,
            blob,
            88,
            0xF840_0000,
            back,
            40,
            0x860D_0000,
        ];
        assert_eq!(run(&mut e, &ub), 0);
        // Black / secure-memory blobs are not modelled: undefined mode.
        let mut black = ub;
        black[9] = 0x860D_0004;
        assert_eq!(run(&mut e, &black), 0x4000_09C1);
        // A blob operation without any key modifier.
        let nokm = [
            0xB080_0008,
            0xF040_0000,
            blob,
            88,
            0xF840_0000,
            back,
            40,
            0x860D_0000,
        ];
        assert_eq!(run(&mut e, &nokm), 0x4000_0709);
        // OP-TEE MP public key with its output-length word, and a short one.
        let pk = 0x4000_4000u32;
        assert_eq!(
            run(&mut e, &[0xB084_0005, 0x0006_0000, pk, 0x40, 0x8614_0000]),
            0
        );
        // It is the point of `mp_private_key` (what the RAM-scan tests look for).
        let mut xy = [0u8; 64];
        e.mem().read(u64::from(pk), &mut xy).unwrap();
        let d = crate::mp_private_key(e.fuses());
        let k = p256::ecdsa::SigningKey::from_slice(&d).unwrap();
        let point = k.verifying_key().to_sec1_point(false);
        assert_eq!(&point.as_bytes()[1..], &xy[..]);
        assert_eq!(
            run(&mut e, &[0xB084_0005, 0x0006_0000, pk, 0x20, 0x8614_0000]),
            0x4000_0482
        );
        // OP-TEE MP private key generation is refused while a key is there
        // (MPCURVE = 3 from the ROM): DECO invalid OPERATION.
        assert_eq!(
            run(&mut e, &[0xB084_0005, 0x0006_0000, src, 24, 0x8714_0000]),
            0x4000_0409
        );
        // RNG on a fresh chip: generate before instantiation, instantiate,
        // twice, Linux HALT.
        let mut e = emu(false);
        assert_eq!(
            run(&mut e, &[0xB080_0004, 0x8250_0002, 0x6034_0010, pk]),
            0x2000_0154
        );
        assert_eq!(
            run(&mut e, &[0xB080_0003, 0x8250_0006, 0xA280_0000]),
            0x7000_0000
        );
        assert_eq!(rd(&mut e, C + 0x6C0) & 0x11, 0x11, "IF0 and PR0");
        assert_eq!(run(&mut e, &[0xB080_0002, 0x8250_0006]), 0x2000_0153);
        assert_eq!(run(&mut e, &[0xB080_0002, 0x8250_0016]), 0);
        assert_eq!(rd(&mut e, C + 0x6C0) & 0x33, 0x33);
        assert_eq!(
            run(&mut e, &[0xB080_0002, 0x8250_001C]),
            0,
            "uninstantiate SH1"
        );
        assert_eq!(rd(&mut e, C + 0x6C0) & 0x33, 0x11);
        // FIFO STORE of RNG data without a preceding generate.
        assert_eq!(run(&mut e, &[0xB080_0003, 0x6034_0010, pk]), 0x4000_010B);
        assert_eq!(run(&mut e, &[0xB080_0004, 0x8250_0002, 0x6034_0010, pk]), 0);
        // JUMP with a user halt status; a backwards jump before START.
        assert_eq!(run(&mut e, &[0xB080_0002, 0xA0C0_0042]), 0x3000_0042);
        assert_eq!(run(&mut e, &[0xB080_0002, 0xA000_00FF]), 0x4000_010D);
        // Class-1 KEY (not modelled) and a LOAD to the context register.
        assert_eq!(run(&mut e, &[0xB080_0003, 0x0200_0010, pk]), 0x4000_0106);
        assert_eq!(run(&mut e, &[0xB080_0003, 0x10A0_0004, 0]), 0x4000_0107);
        // SEQ IN PTR with scatter/gather.
        assert_eq!(run(&mut e, &[0xB080_0003, 0xF100_0010, pk]), 0x4000_0110);
    }

    fn blob_jobs(src: u32, blob: u32, back: u32) -> ([u32; 11], [u32; 11]) {
        let km = [0x6261_6161u32, 0x6463_6362, 0x6665_6564, 0x6867_6766];
        let head = [0xB080_000B, 0x0480_0010, km[0], km[1], km[2], km[3]];
        let mut enc = [0u32; 11];
        enc[..6].copy_from_slice(&head);
        enc[6..].copy_from_slice(&[0xF000_0028, src, 0xF800_0058, blob, 0x870D_0000]);
        let mut dec = [0u32; 11];
        dec[..6].copy_from_slice(&head);
        dec[6..].copy_from_slice(&[0xF000_0058, blob, 0xF800_0028, back, 0x860D_0000]);
        (enc, dec)
    }

    #[test]
    fn fault_deco_error_and_icv_hit_exactly_the_planned_job() {
        use crate::fusefile::Fault;
        let (src, blob, back) = (0x4000_1000u32, 0x4000_2000u32, 0x4000_3000u32);
        let (enc, dec) = blob_jobs(src, blob, back);
        let mut e = emu(false);
        e.preinstantiate_rng(1);
        e.set_fault(Some(Fault::DecoError(2)));
        e.mem().write(u64::from(src), &[0x5A; 40]).unwrap();
        assert_eq!(run(&mut e, &enc), 0, "job 1 runs");
        assert_eq!(run(&mut e, &dec), 0x4000_0016, "job 2: DECO DMA error");
        assert_eq!(run(&mut e, &dec), 0, "job 3 runs again");

        let mut e = emu(false);
        e.preinstantiate_rng(1);
        e.set_fault(Some(Fault::IcvFailure(2)));
        e.mem().write(u64::from(src), &[0x5A; 40]).unwrap();
        assert_eq!(run(&mut e, &enc), 0, "encap does not count");
        e.mem().write(u64::from(back), &[0; 40]).unwrap();
        assert_eq!(run(&mut e, &dec), 0, "decap 1");
        e.mem().write(u64::from(back), &[0; 40]).unwrap();
        assert_eq!(run(&mut e, &dec), 0x2000_0A1A, "decap 2: ICV (index 10)");
        let mut out = [0u8; 40];
        e.mem().read(u64::from(back), &mut out).unwrap();
        assert_eq!(out, [0; 40], "no plaintext released on ICV failure");
        assert_eq!(run(&mut e, &dec), 0, "decap 3");
    }

    /// The model's own blob MAC check: a blob with any changed byte (the
    /// wrapped blob key, the ciphertext or the MAC), a truncated blob or
    /// another key modifier is refused with the CCB ICV error, and no
    /// plaintext reaches the output buffer.
    #[test]
    fn tampered_blob_is_refused_by_the_model() {
        let (src, blob, back) = (0x4000_1000u32, 0x4000_2000u32, 0x4000_3000u32);
        let (enc, dec) = blob_jobs(src, blob, back);
        let secret: Vec<u8> = (0..40u8).map(|i| i ^ 0xA5).collect();
        let mut e = emu(false);
        // Encapsulation needs an instantiated RNG, as on silicon.
        e.preinstantiate_rng(1);
        e.mem().write(u64::from(src), &secret).unwrap();
        assert_eq!(run(&mut e, &enc), 0, "encapsulate");
        let mut good = [0u8; 88];
        e.mem().read(u64::from(blob), &mut good).unwrap();
        assert!(!good.windows(8).any(|w| secret.windows(8).any(|s| s == w)));
        let decap = |e: &mut Emulator<Ram>, b: &[u8], desc: &[u32]| {
            e.mem().write(u64::from(blob), b).unwrap();
            e.mem().write(u64::from(back), &[0; 40]).unwrap();
            let st = run(e, desc);
            let mut out = [0u8; 40];
            e.mem().read(u64::from(back), &mut out).unwrap();
            (st, out)
        };
        assert_eq!(
            decap(&mut e, &good, &dec),
            (0, secret.clone().try_into().unwrap())
        );
        const ICV: u32 = 0x2000_0A1A;
        // Every byte of the blob: key (0..32), ciphertext (32..72), MAC (72..88).
        for i in 0..good.len() {
            for x in [0x01u8, 0x80] {
                let mut b = good;
                b[i] ^= x;
                assert_eq!(decap(&mut e, &b, &dec), (ICV, [0; 40]), "byte {i} ^ {x:#x}");
            }
        }
        // Another key modifier (word 2 of the descriptor) derives another
        // blob key-encryption key.
        let mut other_km = dec;
        other_km[2] ^= 1;
        assert_eq!(decap(&mut e, &good, &other_km), (ICV, [0; 40]));
        // A blob one byte shorter (input length 0x57, output 0x27).
        let mut short = dec;
        short[6] = 0xF000_0057;
        short[8] = 0xF800_0027;
        assert_eq!(decap(&mut e, &good, &short).0, ICV);
        // Another device (other OTPMK) cannot open it either.
        let mut f = fuses(false);
        f.otpmk[0] ^= 1;
        let mut other = Emulator::new(f, Ram(vec![0; 0x3_0000]));
        assert_eq!(decap(&mut other, &good, &dec), (ICV, [0; 40]));
        // The untouched blob still opens.
        assert_eq!(decap(&mut e, &good, &dec).0, 0);
    }

    #[test]
    fn fault_job_timeout_leaves_the_job_in_the_ring() {
        use crate::fusefile::Fault;
        let mut e = emu(false);
        e.set_fault(Some(Fault::JobTimeout(1)));
        wr(&mut e, JR1, 0);
        wr(&mut e, JR1 + 4, 0x4000_0000);
        wr(&mut e, JR1 + 0x20, 0);
        wr(&mut e, JR1 + 0x24, 0x4000_0100);
        wr(&mut e, JR1 + 0x2C, 1);
        wr(&mut e, JR1 + 0xC, 1);
        let desc = [0xB080_0002u32, 0xA000_00FF];
        let bytes: Vec<u8> = desc.iter().flat_map(|w| w.to_le_bytes()).collect();
        e.mem().write(0x4000_0200, &bytes).unwrap();
        e.mem()
            .write(0x4000_0000, &0x4000_0200u32.to_le_bytes())
            .unwrap();
        wr(&mut e, JR1 + 0x1C, 1);
        assert_eq!(rd(&mut e, JR1 + 0x3C), 0, "ORSFR: nothing completed");
        assert_eq!(rd(&mut e, JR1 + 0x14), 0, "IRSAR: the slot stays taken");
        assert_eq!(rd(&mut e, JR1 + 0x4C) & 1, 0, "no JRI");
    }

    #[test]
    fn fault_rng_mpmr_and_security_state() {
        use crate::fusefile::{Fault, LOCKED_MPMR};
        let mut e = emu(false);
        e.set_fault(Some(Fault::RngNotInstantiable));
        assert_eq!(run(&mut e, &[0xB080_0002, 0x8250_0006]), 0x2000_0153);
        assert_eq!(rd(&mut e, C + 0x6C0) & 1, 0, "RDSTA.IF0 stays clear");

        let mut e = emu(false);
        e.set_fault(Some(Fault::MpmrLocked));
        assert_ne!(rd(&mut e, C + 0xC) & (1 << 26), 0, "MPMRL set at boot");
        let mut got = [0u8; 32];
        for k in 0..8u64 {
            let w = rd(&mut e, C + 0x380 + 4 * k).to_be_bytes();
            got[4 * usize::try_from(k).unwrap()..][..4].copy_from_slice(&w);
        }
        assert_eq!(got, LOCKED_MPMR);
        wr(&mut e, C + 0x380, 0);
        assert_eq!(rd(&mut e, C + 0x380).to_be_bytes(), LOCKED_MPMR[..4]);

        let mut e = emu(false);
        e.set_fault(Some(Fault::SecurityFail));
        assert_eq!((rd(&mut e, C + 0xFD4) >> 8) & 3, 3, "MOO fail");
        e.set_fault(None);
        assert_eq!((rd(&mut e, C + 0xFD4) >> 8) & 3, 1, "MOO secure");
    }

    fn run(e: &mut Emulator<Ram>, desc: &[u32]) -> u32 {
        let mut bytes = Vec::new();
        for w in desc {
            bytes.extend_from_slice(&w.to_le_bytes());
        }
        e.mem().write(0x4000_0200, &bytes).unwrap();
        e.mem()
            .write(0x4000_0000, &0x4000_0200u32.to_le_bytes())
            .unwrap();
        wr(e, JR1, 0);
        wr(e, JR1 + 4, 0x4000_0000);
        wr(e, JR1 + 0x20, 0);
        wr(e, JR1 + 0x24, 0x4000_0100);
        wr(e, JR1 + 0x2C, 1);
        wr(e, JR1 + 0xC, 1);
        wr(e, JR1 + 0x1C, 1);
        assert_eq!(rd(e, JR1 + 0x3C), 1);
        wr(e, JR1 + 0x34, 1);
        // Fresh ring for the next job.
        wr(e, JR1 + 0x6C, 1);
        wr(e, JR1 + 0x6C, 1);
        let mut st = [0u8; 4];
        e.mem().read(0x4000_0104, &mut st).unwrap();
        u32::from_le_bytes(st)
    }
}
