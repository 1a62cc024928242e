//! CAAM register layouts (i.MX8M, Era 9); offsets and fields with their
//! sources in `docs/caam.md` (U-Boot `struct ccsr_sec` / `struct jr_regs`,
//! Linux `regs.h`, OP-TEE `registers/*.h`).

use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite, WriteOnly};

register_bitfields![u32,
    /// Master configuration.
    pub MCFGR [
        /// Software reset.
        SWRST OFFSET(31) NUMBITS(1) [],
        /// 64-bit pointers (LONG_PTR / PS); must stay 0 on i.MX8M.
        PS OFFSET(16) NUMBITS(1) []
    ],
    /// Compile-time parameters, most significant word.
    pub CTPR_MS [
        /// 64-bit pointers supported.
        PS OFFSET(17) NUMBITS(1) [],
        /// Virtualisation enabled at power-on.
        VIRT_EN_POR OFFSET(1) NUMBITS(1) [],
        /// Virtualisation (JRSTARTR) included.
        VIRT_EN_INCL OFFSET(0) NUMBITS(1) []
    ],
    /// CHA version ids, least significant word.
    pub CHAVID_LS [
        /// MDHA version id (0 = LP256: SHA-256 is the longest hash).
        MDVID OFFSET(12) NUMBITS(4) []
    ],
    /// Security configuration.
    pub SCFGR [
        /// Manufacturing Protection curve (3 = P-256).
        MPCURVE OFFSET(28) NUMBITS(4) [],
        /// MPMR lock.
        MPMRL OFFSET(26) NUMBITS(1) [],
        /// Virtualisation enabled (job rings must be started in JRSTARTR).
        VIRT_EN OFFSET(15) NUMBITS(1) [],
        /// RNG deskew / "RDB enable", set after instantiation.
        RDBENABLE OFFSET(10) NUMBITS(1) [],
        /// Private blob selection.
        PRIBLOB OFFSET(0) NUMBITS(2) []
    ],
    /// RNG TRNG miscellaneous control.
    pub RTMCTL [
        /// Program mode.
        PRGM OFFSET(16) NUMBITS(1) [],
        /// Sample mode (1 = raw entropy + statistical check).
        SAMP_MODE OFFSET(0) NUMBITS(2) []
    ],
    /// RNG TRNG seed control.
    pub RTSDCTL [
        /// Entropy delay.
        ENT_DLY OFFSET(16) NUMBITS(16) [],
        /// Sample size.
        SAMP_SIZE OFFSET(0) NUMBITS(16) []
    ],
    /// RNG DRNG status.
    pub RDSTA [
        /// State handle 0 instantiated.
        IF0 OFFSET(0) NUMBITS(1) [],
        /// State handle 1 instantiated.
        IF1 OFFSET(1) NUMBITS(1) [],
        /// State handle 0 with prediction resistance.
        PR0 OFFSET(4) NUMBITS(1) [],
        /// State handle 1 with prediction resistance.
        PR1 OFFSET(5) NUMBITS(1) [],
        /// Secure keys (JDKEK/TDKEK/TDSK) generated.
        SKVN OFFSET(30) NUMBITS(1) []
    ],
    /// CAAM status.
    pub CSTA [
        /// Mode of operation: 0 non-secure, 1 secure, 2 trusted, 3 fail.
        MOO OFFSET(8) NUMBITS(2) []
    ],
    /// CCB version.
    pub CCBVID [
        /// CAAM era.
        ERA OFFSET(24) NUMBITS(8) []
    ],
    /// CHA numbers, most significant word.
    pub CHANUM_MS [
        /// Number of job rings.
        JRNUM OFFSET(28) NUMBITS(4) []
    ],
    /// SEC version, most significant word.
    pub SECVID_MS [
        /// IP identifier (0x0A16).
        IPID OFFSET(16) NUMBITS(16) [],
        /// Major revision.
        MAJ_REV OFFSET(8) NUMBITS(8) []
    ],
    /// Job ring interrupt status.
    pub JRINTR [
        /// Job ring interrupt (completion).
        JRI OFFSET(0) NUMBITS(1) [],
        /// Job ring error.
        JRE OFFSET(1) NUMBITS(1) [],
        /// Halt state: 1 in progress, 2 done.
        HALT OFFSET(2) NUMBITS(2) [],
        /// Error type when JRE is set.
        ERR_TYPE OFFSET(8) NUMBITS(4) []
    ],
    /// Job ring configuration, least significant word.
    pub JRCFGR_LS [
        /// Mask the job ring interrupt.
        IMSK OFFSET(0) NUMBITS(1) []
    ],
    /// Job ring command.
    pub JRCR [
        /// Reset (two-step protocol).
        RESET OFFSET(0) NUMBITS(1) []
    ]
];

register_structs! {
    /// The controller ("global") page at the CAAM base.
    pub CtrlRegs {
        (0x000 => _reserved0),
        (0x004 => pub mcfgr: ReadWrite<u32, MCFGR::Register>),
        (0x008 => _reserved1),
        (0x00C => pub scfgr: ReadWrite<u32, SCFGR::Register>),
        (0x010 => pub jrdid: [ReadWrite<u32>; 6]),
        (0x028 => _reserved2),
        (0x05C => pub jrstartr: ReadWrite<u32>),
        (0x060 => _reserved3),
        (0x380 => pub mpmr: [ReadWrite<u32>; 8]),
        (0x3A0 => _reserved4),
        (0x600 => pub rtmctl: ReadWrite<u32, RTMCTL::Register>),
        (0x604 => pub rtscmisc: ReadWrite<u32>),
        (0x608 => pub rtpkrrng: ReadWrite<u32>),
        (0x60C => pub rtpkrmax: ReadWrite<u32>),
        (0x610 => pub rtsdctl: ReadWrite<u32, RTSDCTL::Register>),
        (0x614 => pub rtsblim: ReadWrite<u32>),
        (0x618 => pub rtfrqmin: ReadWrite<u32>),
        (0x61C => pub rtfrqmax: ReadWrite<u32>),
        (0x620 => pub rtscml: ReadWrite<u32>),
        (0x624 => pub rtscrl: [ReadWrite<u32>; 6]),
        (0x63C => _reserved5),
        (0x6C0 => pub rdsta: ReadOnly<u32, RDSTA::Register>),
        (0x6C4 => _reserved6),
        (0xFA8 => pub ctpr_ms: ReadOnly<u32, CTPR_MS::Register>),
        (0xFAC => pub ctpr_ls: ReadOnly<u32>),
        (0xFB0 => _reserved7),
        (0xFD4 => pub csta: ReadOnly<u32, CSTA::Register>),
        (0xFD8 => _reserved8),
        (0xFE4 => pub ccbvid: ReadOnly<u32, CCBVID::Register>),
        (0xFE8 => pub chavid_ms: ReadOnly<u32>),
        (0xFEC => pub chavid_ls: ReadOnly<u32, CHAVID_LS::Register>),
        (0xFF0 => pub chanum_ms: ReadOnly<u32, CHANUM_MS::Register>),
        (0xFF4 => pub chanum_ls: ReadOnly<u32>),
        (0xFF8 => pub secvid_ms: ReadOnly<u32, SECVID_MS::Register>),
        (0xFFC => pub secvid_ls: ReadOnly<u32>),
        (0x1000 => @END),
    },

    /// One job ring page (JR `x` at CAAM base + 0x1000 * (x + 1)).
    pub JrRegs {
        (0x00 => pub irbar_hi: ReadWrite<u32>),
        (0x04 => pub irbar_lo: ReadWrite<u32>),
        (0x08 => _reserved0),
        (0x0C => pub irsr: ReadWrite<u32>),
        (0x10 => _reserved1),
        (0x14 => pub irsar: ReadOnly<u32>),
        (0x18 => _reserved2),
        (0x1C => pub irjar: WriteOnly<u32>),
        (0x20 => pub orbar_hi: ReadWrite<u32>),
        (0x24 => pub orbar_lo: ReadWrite<u32>),
        (0x28 => _reserved3),
        (0x2C => pub orsr: ReadWrite<u32>),
        (0x30 => _reserved4),
        (0x34 => pub orjrr: WriteOnly<u32>),
        (0x38 => _reserved5),
        (0x3C => pub orsfr: ReadOnly<u32>),
        (0x40 => _reserved6),
        (0x44 => pub jrstar: ReadOnly<u32>),
        (0x48 => _reserved7),
        (0x4C => pub jrintr: ReadWrite<u32, JRINTR::Register>),
        (0x50 => pub jrcfgr_ms: ReadWrite<u32>),
        (0x54 => pub jrcfgr_ls: ReadWrite<u32, JRCFGR_LS::Register>),
        (0x58 => _reserved8),
        (0x5C => pub irrir: ReadOnly<u32>),
        (0x60 => _reserved9),
        (0x64 => pub orwir: ReadOnly<u32>),
        (0x68 => _reserved10),
        (0x6C => pub jrcr: ReadWrite<u32, JRCR::Register>),
        (0x70 => _reserved11),
        (0x1000 => @END),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::mem::{offset_of, size_of};

    #[test]
    fn controller_offsets_match_docs_caam_md() {
        assert_eq!(size_of::<CtrlRegs>(), 0x1000);
        assert_eq!(offset_of!(CtrlRegs, mcfgr), 0x004);
        assert_eq!(offset_of!(CtrlRegs, scfgr), 0x00C);
        assert_eq!(offset_of!(CtrlRegs, jrdid), 0x010);
        assert_eq!(offset_of!(CtrlRegs, jrstartr), 0x05C);
        assert_eq!(offset_of!(CtrlRegs, mpmr), 0x380);
        assert_eq!(offset_of!(CtrlRegs, rtmctl), 0x600);
        assert_eq!(offset_of!(CtrlRegs, rtsdctl), 0x610);
        assert_eq!(offset_of!(CtrlRegs, rtfrqmin), 0x618);
        assert_eq!(offset_of!(CtrlRegs, rtfrqmax), 0x61C);
        assert_eq!(offset_of!(CtrlRegs, rtscml), 0x620);
        assert_eq!(offset_of!(CtrlRegs, rtscrl), 0x624);
        assert_eq!(offset_of!(CtrlRegs, rdsta), 0x6C0);
        assert_eq!(offset_of!(CtrlRegs, ctpr_ms), 0xFA8);
        assert_eq!(offset_of!(CtrlRegs, csta), 0xFD4);
        assert_eq!(offset_of!(CtrlRegs, ccbvid), 0xFE4);
        assert_eq!(offset_of!(CtrlRegs, chanum_ms), 0xFF0);
        assert_eq!(offset_of!(CtrlRegs, secvid_ms), 0xFF8);
    }

    #[test]
    fn job_ring_offsets_match_docs_caam_md() {
        assert_eq!(size_of::<JrRegs>(), 0x1000);
        let want = [
            (offset_of!(JrRegs, irbar_hi), 0x00),
            (offset_of!(JrRegs, irbar_lo), 0x04),
            (offset_of!(JrRegs, irsr), 0x0C),
            (offset_of!(JrRegs, irsar), 0x14),
            (offset_of!(JrRegs, irjar), 0x1C),
            (offset_of!(JrRegs, orbar_hi), 0x20),
            (offset_of!(JrRegs, orbar_lo), 0x24),
            (offset_of!(JrRegs, orsr), 0x2C),
            (offset_of!(JrRegs, orjrr), 0x34),
            (offset_of!(JrRegs, orsfr), 0x3C),
            (offset_of!(JrRegs, jrstar), 0x44),
            (offset_of!(JrRegs, jrintr), 0x4C),
            (offset_of!(JrRegs, jrcfgr_ms), 0x50),
            (offset_of!(JrRegs, jrcfgr_ls), 0x54),
            (offset_of!(JrRegs, irrir), 0x5C),
            (offset_of!(JrRegs, orwir), 0x64),
            (offset_of!(JrRegs, jrcr), 0x6C),
        ];
        for (got, want) in want {
            assert_eq!(got, want);
        }
    }

    #[test]
    fn bitfields_match_docs_caam_md() {
        assert_eq!(SCFGR::MPMRL::SET.value, 1 << 26);
        assert_eq!(SCFGR::MPCURVE.read(0x3000_0000), 3);
        assert_eq!(SCFGR::RDBENABLE::SET.value, 1 << 10);
        assert_eq!(CSTA::MOO.read(0x100), 1);
        assert_eq!(RDSTA::SKVN::SET.value, 1 << 30);
        assert_eq!(RTMCTL::PRGM::SET.value, 1 << 16);
        assert_eq!(JRINTR::HALT.read(0x8), 2);
        assert_eq!(MCFGR::PS::SET.value, 1 << 16);
        assert_eq!(SCFGR::VIRT_EN::SET.value, 1 << 15);
        assert_eq!(CTPR_MS::PS::SET.value, 1 << 17);
        assert_eq!(CTPR_MS::VIRT_EN_POR::SET.value, 1 << 1);
        assert_eq!(CTPR_MS::VIRT_EN_INCL::SET.value, 1);
        assert_eq!(CHAVID_LS::MDVID.read(0xF000), 0xF);
    }
}
