//! The virtual chip's fuse file.
//!
//! QEMU has no OCOTP and no CAAM key material, so each virtual chip is a small
//! file that QEMU loads into the reserved page below the loader
//! (`-device loader,file=chip.fuses,addr=0x40100000,force-raw=on`). The QEMU
//! board parses it once at start-up.
//!
//! Layout (all integers little-endian), 132 bytes:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `IMXFUSE1` |
//! | 8 | 2 | format version, 1 |
//! | 10 | 2 | flags: bit 0 = open part (not closed); bit 1 = no MP key at power-on (SCFGR.MPCURVE reads 0 until MPPRIVK); bits 2..3 = CAAM controller page (page 0) as the secure world leaves it when OP-TEE owns the CAAM: 0 accessible, 1 reads 0 / writes ignored, 2 reads all-ones / writes ignored, 3 every access aborts; other bits 0 |
//! | 12 | 4 | reserved, 0 |
//! | 16 | 16 | 128-bit unique ID, big-endian (see below) |
//! | 32 | 32 | SRK hash (SHA-256 of the SRK table), as burnt in banks 6 and 7 |
//! | 64 | 32 | OTPMK: the chip's master key (blob keys derive from it) |
//! | 96 | 32 | MP family secret: with the SRK hash and security state it makes the MP key |
//! | 128 | 4 | CRC-32 (IEEE) of bytes 0..128 |
//!
//! The UID bytes are the UID as a 128-bit big-endian number, i.e. the hex the
//! user types with `--uid`. The emulated OCOTP serves it as i.MX8MP does:
//! bytes 12..16 (big-endian word) at bank 0 word 2 (0x420), bytes 8..12 at
//! bank 0 word 3 (0x430), bytes 4..8 at 0xE00 and bytes 0..4 at 0xE10 (see
//! [`crate::ocotp`]), so Linux's `%016llX%016llX` serial prints the same hex.

use crc::{CRC_32_ISO_HDLC, Crc};

/// Size of a fuse file in bytes.
pub const FUSE_FILE_LEN: usize = 132;
/// The magic at offset 0.
pub const MAGIC: [u8; 8] = *b"IMXFUSE1";
/// The only format version.
pub const VERSION: u16 = 1;
/// Flag bit: the part is open (not closed).
pub const FLAG_OPEN: u16 = 1;
/// Flag bit: SCFGR.MPCURVE reads 0 at power-on (no MP key from the ROM).
pub const FLAG_MPCURVE_ZERO: u16 = 1 << 1;
/// Flag field (bits 2..3): how the CAAM controller page answers.
pub const FLAG_PAGE0_SHIFT: u16 = 2;
const FLAGS_KNOWN: u16 = 0xF;

/// How the CAAM controller page (page 0) answers the loader. On silicon a
/// page the secure world keeps (OP-TEE owns the CAAM) is refused; which of
/// these a refusal looks like on the i.MX8M Plus is not public, so the model
/// offers each (see `docs/caam.md`).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Page0 {
    /// Accessible (no OP-TEE).
    #[default]
    Open,
    /// Reads return 0, writes are ignored.
    ReadsZero,
    /// Reads return 0xFFFF_FFFF, writes are ignored.
    ReadsOnes,
    /// Every access is refused by the bus (an external abort).
    Aborts,
}

/// Power-on options of a virtual chip beyond its fuses (flag bits 1..3).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ChipOptions {
    /// SCFGR.MPCURVE reads 0 at power-on: the ROM left no MP key, the
    /// loader must generate one with MPPRIVK (open parts).
    pub mp_curve_zero: bool,
    /// How the controller page answers.
    pub page0: Page0,
}

impl ChipOptions {
    fn flags(self) -> u16 {
        let page0 = match self.page0 {
            Page0::Open => 0,
            Page0::ReadsZero => 1,
            Page0::ReadsOnes => 2,
            Page0::Aborts => 3,
        };
        (if self.mp_curve_zero {
            FLAG_MPCURVE_ZERO
        } else {
            0
        }) | (page0 << FLAG_PAGE0_SHIFT)
    }

    fn from_flags(f: u16) -> Self {
        Self {
            mp_curve_zero: f & FLAG_MPCURVE_ZERO != 0,
            page0: match (f >> FLAG_PAGE0_SHIFT) & 3 {
                0 => Page0::Open,
                1 => Page0::ReadsZero,
                2 => Page0::ReadsOnes,
                _ => Page0::Aborts,
            },
        }
    }
}

/// The default MP family secret: the one every virtual i.MX8MP shares unless a
/// test asks for another silicon family.
pub const DEFAULT_FAMILY_SECRET: [u8; 32] = *b"imx8mp virtual MP family secret!";

/// A virtual chip's fuses.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FuseFile {
    /// 128-bit unique ID, big-endian.
    pub uid: [u8; 16],
    /// SRK hash.
    pub srk_hash: [u8; 32],
    /// One-time-programmable master key.
    pub otpmk: [u8; 32],
    /// MP family secret.
    pub family_secret: [u8; 32],
    /// Whether the part is open (security configuration not closed).
    pub open: bool,
    /// Power-on options (MP key, controller page access).
    pub options: ChipOptions,
}

/// Why a fuse file was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FuseFileError {
    /// Fewer than [`FUSE_FILE_LEN`] bytes.
    Truncated,
    /// The magic is not `IMXFUSE1` (no fuse file loaded?).
    BadMagic,
    /// A version this loader does not know.
    UnsupportedVersion(u16),
    /// Reserved flag bits or reserved bytes set.
    ReservedBitsSet,
    /// The CRC does not match: the file is corrupt.
    BadCrc,
}

impl core::fmt::Display for FuseFileError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated => write!(f, "fuse file truncated (need {FUSE_FILE_LEN} bytes)"),
            Self::BadMagic => write!(f, "no fuse file (bad magic)"),
            Self::UnsupportedVersion(v) => write!(f, "fuse file version {v} not supported"),
            Self::ReservedBitsSet => write!(f, "fuse file has reserved bits set"),
            Self::BadCrc => write!(f, "fuse file corrupt (CRC mismatch)"),
        }
    }
}

const CRC32: Crc<u32> = Crc::<u32>::new(&CRC_32_ISO_HDLC);

impl FuseFile {
    /// Serialises the fuse file.
    pub fn to_bytes(&self) -> [u8; FUSE_FILE_LEN] {
        let mut b = [0u8; FUSE_FILE_LEN];
        b[0..8].copy_from_slice(&MAGIC);
        b[8..10].copy_from_slice(&VERSION.to_le_bytes());
        let flags = if self.open { FLAG_OPEN } else { 0 } | self.options.flags();
        b[10..12].copy_from_slice(&flags.to_le_bytes());
        b[16..32].copy_from_slice(&self.uid);
        b[32..64].copy_from_slice(&self.srk_hash);
        b[64..96].copy_from_slice(&self.otpmk);
        b[96..128].copy_from_slice(&self.family_secret);
        let crc = CRC32.checksum(&b[..128]);
        b[128..132].copy_from_slice(&crc.to_le_bytes());
        b
    }

    /// Parses and checks a fuse file. Extra bytes after the 132 are ignored
    /// (QEMU's loader page may hold anything there).
    pub fn parse(b: &[u8]) -> Result<Self, FuseFileError> {
        let b = b.get(..FUSE_FILE_LEN).ok_or(FuseFileError::Truncated)?;
        if b[0..8] != MAGIC {
            return Err(FuseFileError::BadMagic);
        }
        let version = u16::from_le_bytes([b[8], b[9]]);
        if version != VERSION {
            return Err(FuseFileError::UnsupportedVersion(version));
        }
        let crc = u32::from_le_bytes([b[128], b[129], b[130], b[131]]);
        if CRC32.checksum(&b[..128]) != crc {
            return Err(FuseFileError::BadCrc);
        }
        let flags = u16::from_le_bytes([b[10], b[11]]);
        if flags & !FLAGS_KNOWN != 0 || b[12..16] != [0; 4] {
            return Err(FuseFileError::ReservedBitsSet);
        }
        let mut f = Self {
            uid: [0; 16],
            srk_hash: [0; 32],
            otpmk: [0; 32],
            family_secret: [0; 32],
            open: flags & FLAG_OPEN != 0,
            options: ChipOptions::from_flags(flags),
        };
        f.uid.copy_from_slice(&b[16..32]);
        f.srk_hash.copy_from_slice(&b[32..64]);
        f.otpmk.copy_from_slice(&b[64..96]);
        f.family_secret.copy_from_slice(&b[96..128]);
        Ok(f)
    }
}

/// The framing of the 16-byte records after the fuse file (test plan,
/// fault plan): an 8-byte magic, 4 bytes of payload, a CRC-32 (IEEE) of the
/// first 12 bytes, little-endian.
fn seal_record(magic: [u8; 8], payload: [u8; 4]) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..8].copy_from_slice(&magic);
    b[8..12].copy_from_slice(&payload);
    let crc = CRC32.checksum(&b[..12]);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    b
}

/// The payload of a [`seal_record`] record with `magic` at the start of
/// `b`; `None` when it is absent, short or corrupt.
fn open_record(b: &[u8], magic: [u8; 8]) -> Option<[u8; 4]> {
    let b = b.get(..16)?;
    if b[0..8] != magic {
        return None;
    }
    let crc = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
    if CRC32.checksum(&b[..12]) != crc {
        return None;
    }
    Some([b[8], b[9], b[10], b[11]])
}

/// An optional test plan right after the fuse file (QEMU board only, for
/// tests): 16 bytes, little-endian.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `IMXPLAN1` |
/// | 8 | 4 | power cut: stop the machine right after this eMMC write of the provisioning flow (0 = never) |
/// | 12 | 4 | CRC-32 (IEEE) of bytes 0..12 |
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TestPlan {
    /// Stop after the n-th flow write (`None`: never).
    pub cut_after_write: Option<u32>,
}

/// Size of a test plan.
pub const TEST_PLAN_LEN: usize = 16;
/// Its magic.
pub const TEST_PLAN_MAGIC: [u8; 8] = *b"IMXPLAN1";

impl TestPlan {
    /// Serialises the plan (append it to the fuse file).
    pub fn to_bytes(&self) -> [u8; TEST_PLAN_LEN] {
        seal_record(
            TEST_PLAN_MAGIC,
            self.cut_after_write.unwrap_or(0).to_le_bytes(),
        )
    }

    /// Parses a plan; `None` when there is none (no magic) or it is corrupt.
    pub fn parse(b: &[u8]) -> Option<Self> {
        let n = u32::from_le_bytes(open_record(b, TEST_PLAN_MAGIC)?);
        Some(Self {
            cut_after_write: (n != 0).then_some(n),
        })
    }
}

/// An optional fault plan right after the test plan (QEMU board only, for
/// the fault-injection tests; the `imx8mp-evk` build never reads it): 16
/// bytes at offset [`FUSE_FILE_LEN`] + [`TEST_PLAN_LEN`], little-endian.
/// Kinds 1..=6 are faults of the emulated CAAM, 7..=11 of the eMMC path (see
/// [`crate::usdhc_faults`]). A fuse file that wants a fault plan but no power
/// cut carries a default (all-zero) `IMXPLAN1` record first.
///
/// | offset | size | field |
/// |---|---|---|
/// | 0 | 8 | magic `IMXFALT1` |
/// | 8 | 1 | fault kind: 1 job timeout, 2 DECO error, 3 ICV failure, 4 RNG not instantiable, 5 MPMR locked at boot, 6 security state fail, 7 eMMC command timeout, 8 eMMC data CRC error, 9 eMMC write cut half-way, 10 eMMC card removed, 11 eMMC held until the card is removed (QEMU monitor `eject`) |
/// | 9 | 1 | kinds 1..=6: 0. Kinds 7..=11: bit 7 counts read commands (else write commands); bits 0..=6 how many consecutive commands the fault hits (1..=127; 1 for kinds 10 and 11) |
/// | 10 | 2 | n: the job (kinds 1, 2), blob decapsulation (kind 3) or eMMC read/write command (kinds 7..=11) it hits first, counted from 1 since power-on; 0 for kinds 4..=6 |
/// | 12 | 4 | CRC-32 (IEEE) of bytes 0..12 |
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Fault {
    /// The n-th job never completes (stays in the input ring; the CAAM is
    /// wedged until power-on).
    JobTimeout(u16),
    /// The n-th job ends with a DECO DMA error (`0x4000_0016`) without running.
    DecoError(u16),
    /// The n-th blob decapsulation fails its ICV check (`0x2000_001A` with
    /// the command index), as a corrupted blob would.
    IcvFailure(u16),
    /// RNG instantiation fails (`0x2000_ii_53`); RDSTA stays 0.
    RngNotInstantiable,
    /// An earlier boot stage locked the MPMR with [`LOCKED_MPMR`].
    MpmrLocked,
    /// CSTA.MOO reads 3 (security state fail).
    SecurityFail,
    /// A fault of the eMMC path.
    Mmc(MmcFault),
}

/// A fault of the eMMC path, injected on the uSDHC register window by
/// [`crate::usdhc_faults::FaultyUsdhc`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct MmcFault {
    /// What goes wrong.
    pub kind: MmcFaultKind,
    /// Which commands are counted: data reads (CMD17/18) or writes (CMD24/25).
    pub op: MmcOp,
    /// The first command hit, counted from 1 since power-on.
    pub nth: u16,
    /// How many consecutive counted commands are hit (the driver retries a
    /// failed transfer once, so 2 makes a request fail).
    pub times: u8,
}

/// What an [`MmcFault`] does to the commands it hits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MmcFaultKind {
    /// The card does not answer: command timeout (CTOE); nothing moves.
    CommandTimeout,
    /// The transfer runs, then ends with a data CRC error (DCE).
    DataCrc,
    /// A multi-block write stops after half its blocks reached the card and
    /// ends with a data CRC error (a single-block write lands and fails).
    WriteCut,
    /// The card is gone from this command on, until power-on: every command
    /// times out and the card-inserted bit reads 0.
    Removed,
    /// The command waits (up to a minute) until the card is really removed,
    /// through QEMU's monitor (`eject -f`), then goes to the empty slot.
    HoldUntilRemoved,
}

/// Which data commands an [`MmcFault`] counts.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum MmcOp {
    /// CMD17/CMD18 (any command with data from the card).
    Read,
    /// CMD24/CMD25 (any command with data to the card).
    Write,
}

impl MmcFaultKind {
    fn code(self) -> u8 {
        match self {
            Self::CommandTimeout => 7,
            Self::DataCrc => 8,
            Self::WriteCut => 9,
            Self::Removed => 10,
            Self::HoldUntilRemoved => 11,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        Some(match c {
            7 => Self::CommandTimeout,
            8 => Self::DataCrc,
            9 => Self::WriteCut,
            10 => Self::Removed,
            11 => Self::HoldUntilRemoved,
            _ => return None,
        })
    }
}

const FLAG_READS: u8 = 0x80;

/// The MPMR content of a [`Fault::MpmrLocked`] chip.
pub const LOCKED_MPMR: [u8; 32] = *b"MPMR locked by an earlier stage!";

/// Size of a fault plan.
pub const FAULT_PLAN_LEN: usize = 16;
/// Its magic.
pub const FAULT_PLAN_MAGIC: [u8; 8] = *b"IMXFALT1";

impl Fault {
    /// Kind, flags byte and n of the record.
    fn fields(self) -> (u8, u8, u16) {
        match self {
            Self::JobTimeout(n) => (1, 0, n),
            Self::DecoError(n) => (2, 0, n),
            Self::IcvFailure(n) => (3, 0, n),
            Self::RngNotInstantiable => (4, 0, 0),
            Self::MpmrLocked => (5, 0, 0),
            Self::SecurityFail => (6, 0, 0),
            Self::Mmc(m) => {
                let reads = if m.op == MmcOp::Read { FLAG_READS } else { 0 };
                (m.kind.code(), reads | (m.times & !FLAG_READS), m.nth)
            }
        }
    }

    /// Serialises the fault record (append it after a test plan).
    pub fn to_bytes(self) -> [u8; FAULT_PLAN_LEN] {
        let (kind, flags, n) = self.fields();
        let [n0, n1] = n.to_le_bytes();
        seal_record(FAULT_PLAN_MAGIC, [kind, flags, n0, n1])
    }

    /// Parses a fault record; `None` when there is none, it is corrupt, the
    /// kind is unknown, or a field is out of range for the kind (n = 0 for a
    /// counted kind, n != 0 or flags for the others, a write cut counting
    /// reads, a removal hitting more than one command).
    pub fn parse(b: &[u8]) -> Option<Self> {
        let [kind, flags, n0, n1] = open_record(b, FAULT_PLAN_MAGIC)?;
        let n = u16::from_le_bytes([n0, n1]);
        let f = match (kind, flags, n) {
            (1, 0, 1..) => Self::JobTimeout(n),
            (2, 0, 1..) => Self::DecoError(n),
            (3, 0, 1..) => Self::IcvFailure(n),
            (4, 0, 0) => Self::RngNotInstantiable,
            (5, 0, 0) => Self::MpmrLocked,
            (6, 0, 0) => Self::SecurityFail,
            (7..=11, _, 1..) => {
                let kind = MmcFaultKind::from_code(kind)?;
                let op = if flags & FLAG_READS != 0 {
                    MmcOp::Read
                } else {
                    MmcOp::Write
                };
                let times = flags & !FLAG_READS;
                let once = matches!(kind, MmcFaultKind::Removed | MmcFaultKind::HoldUntilRemoved);
                if times == 0
                    || (once && times != 1)
                    || (kind == MmcFaultKind::WriteCut && op == MmcOp::Read)
                {
                    return None;
                }
                Self::Mmc(MmcFault {
                    kind,
                    op,
                    nth: n,
                    times,
                })
            }
            _ => return None,
        };
        Some(f)
    }

    /// The eMMC part of the plan, if it is one.
    pub fn mmc(self) -> Option<MmcFault> {
        match self {
            Self::Mmc(m) => Some(m),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> FuseFile {
        FuseFile {
            uid: [0x11; 16],
            srk_hash: [0x22; 32],
            otpmk: [0x33; 32],
            family_secret: DEFAULT_FAMILY_SECRET,
            open: false,
            options: ChipOptions::default(),
        }
    }

    #[test]
    fn round_trips() {
        let f = sample();
        assert_eq!(FuseFile::parse(&f.to_bytes()), Ok(f.clone()));
        let open = FuseFile { open: true, ..f };
        assert_eq!(FuseFile::parse(&open.to_bytes()), Ok(open.clone()));
        for page0 in [
            Page0::Open,
            Page0::ReadsZero,
            Page0::ReadsOnes,
            Page0::Aborts,
        ] {
            for mp_curve_zero in [false, true] {
                let g = FuseFile {
                    options: ChipOptions {
                        mp_curve_zero,
                        page0,
                    },
                    ..open.clone()
                };
                assert_eq!(FuseFile::parse(&g.to_bytes()), Ok(g));
            }
        }
        // The default chip keeps the version-1 flags word (only bit 0).
        assert_eq!(sample().to_bytes()[10..12], [0, 0]);
        // Bit 4 and above stay reserved.
        let mut b = sample().to_bytes();
        b[10] = 0x10;
        let crc = CRC32.checksum(&b[..128]);
        b[128..132].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(FuseFile::parse(&b), Err(FuseFileError::ReservedBitsSet));
    }

    #[test]
    fn test_plan_round_trips_and_rejects_corruption() {
        let p = TestPlan {
            cut_after_write: Some(7),
        };
        assert_eq!(TestPlan::parse(&p.to_bytes()), Some(p));
        assert_eq!(
            TestPlan::parse(&TestPlan::default().to_bytes()),
            Some(TestPlan::default())
        );
        let mut b = p.to_bytes();
        b[9] ^= 1;
        assert_eq!(TestPlan::parse(&b), None);
        assert_eq!(TestPlan::parse(&[0u8; 16]), None);
    }

    #[test]
    fn fault_plan_round_trips_and_rejects_corruption() {
        let all = [
            Fault::JobTimeout(3),
            Fault::DecoError(1),
            Fault::IcvFailure(65535),
            Fault::RngNotInstantiable,
            Fault::MpmrLocked,
            Fault::SecurityFail,
            Fault::Mmc(MmcFault {
                kind: MmcFaultKind::CommandTimeout,
                op: MmcOp::Write,
                nth: 2,
                times: 2,
            }),
            Fault::Mmc(MmcFault {
                kind: MmcFaultKind::DataCrc,
                op: MmcOp::Read,
                nth: 300,
                times: 127,
            }),
            Fault::Mmc(MmcFault {
                kind: MmcFaultKind::WriteCut,
                op: MmcOp::Write,
                nth: 9,
                times: 1,
            }),
            Fault::Mmc(MmcFault {
                kind: MmcFaultKind::Removed,
                op: MmcOp::Write,
                nth: 5,
                times: 1,
            }),
            Fault::Mmc(MmcFault {
                kind: MmcFaultKind::HoldUntilRemoved,
                op: MmcOp::Read,
                nth: 1,
                times: 1,
            }),
        ];
        for f in all {
            let b = f.to_bytes();
            assert_eq!(Fault::parse(&b), Some(f));
            for i in 0..FAULT_PLAN_LEN {
                let mut c = b;
                c[i] ^= 0x08;
                assert_eq!(Fault::parse(&c), None, "{f:?}: flip at {i} accepted");
            }
        }
        // Out-of-range fields are refused even with a good CRC: a counted
        // kind with n = 0, n or flags on a plain kind, unknown kinds, an eMMC
        // fault hitting 0 commands, a write cut counting reads, a removal
        // hitting twice.
        for (kind, flags, n) in [
            (1u8, 0u8, 0u16),
            (3, 0, 0),
            (4, 0, 1),
            (2, 1, 1),
            (12, 1, 1),
            (0, 0, 0),
            (7, 1, 0),
            (8, 0, 1),
            (9, 0x81, 1),
            (10, 2, 1),
            (11, 0x82, 1),
        ] {
            let [n0, n1] = n.to_le_bytes();
            let b = seal_record(FAULT_PLAN_MAGIC, [kind, flags, n0, n1]);
            assert_eq!(Fault::parse(&b), None, "kind {kind} flags {flags} n {n}");
        }
        // The test plan does not parse as a fault record and vice versa.
        assert_eq!(Fault::parse(&TestPlan::default().to_bytes()), None);
        assert_eq!(TestPlan::parse(&Fault::MpmrLocked.to_bytes()), None);
    }

    #[test]
    fn refuses_every_corruption() {
        let good = sample().to_bytes();
        assert_eq!(FuseFile::parse(&good[..131]), Err(FuseFileError::Truncated));
        assert_eq!(FuseFile::parse(&[0u8; 132]), Err(FuseFileError::BadMagic));
        for i in 8..FUSE_FILE_LEN {
            let mut b = good;
            b[i] ^= 0x40;
            assert!(FuseFile::parse(&b).is_err(), "flip at byte {i} accepted");
        }
    }
}
