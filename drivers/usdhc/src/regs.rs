//! uSDHC register block (i.MX8M Plus reference manual, chapter "Ultra Secured
//! Digital Host Controller"; offsets as in U-Boot's `fsl_esdhc_imx.c` and
//! QEMU's `hw/sd/sdhci.c` uSDHC variant). The window is 0x100 bytes.

use tock_registers::register_bitfields;
use tock_registers::register_structs;
use tock_registers::registers::{ReadOnly, ReadWrite};

register_bitfields![u32,
    pub BLK_ATT [
        BLKSIZE OFFSET(0) NUMBITS(13) [],
        BLKCNT OFFSET(16) NUMBITS(16) []
    ],
    pub CMD_XFR_TYP [
        /// Response type: 0 none, 1 136-bit, 2 48-bit, 3 48-bit with busy.
        RSPTYP OFFSET(16) NUMBITS(2) [None = 0, L136 = 1, L48 = 2, L48Busy = 3],
        CCCEN OFFSET(19) NUMBITS(1) [],
        CICEN OFFSET(20) NUMBITS(1) [],
        DPSEL OFFSET(21) NUMBITS(1) [],
        CMDTYP OFFSET(22) NUMBITS(2) [Normal = 0, Abort = 3],
        CMDINX OFFSET(24) NUMBITS(6) []
    ],
    pub PRES_STATE [
        CIHB OFFSET(0) NUMBITS(1) [],
        CDIHB OFFSET(1) NUMBITS(1) [],
        DLA OFFSET(2) NUMBITS(1) [],
        SDSTB OFFSET(3) NUMBITS(1) [],
        BWEN OFFSET(10) NUMBITS(1) [],
        BREN OFFSET(11) NUMBITS(1) [],
        CINST OFFSET(16) NUMBITS(1) [],
        DLSL OFFSET(24) NUMBITS(8) []
    ],
    pub PROT_CTRL [
        LCTL OFFSET(0) NUMBITS(1) [],
        DTW OFFSET(1) NUMBITS(2) [Bit1 = 0, Bit4 = 1, Bit8 = 2],
        EMODE OFFSET(4) NUMBITS(2) [LittleEndian = 2],
        DMASEL OFFSET(8) NUMBITS(2) [NoneOrSdma = 0, Adma1 = 1, Adma2 = 2]
    ],
    pub SYS_CTRL [
        /// Bits 3:0 are reserved-as-ones on uSDHC; QEMU's SDHCI needs bits
        /// 0 (internal clock enable) and 2 (SD clock enable) written as 1.
        CLK_ON OFFSET(0) NUMBITS(4) [],
        DVS OFFSET(4) NUMBITS(4) [],
        SDCLKFS OFFSET(8) NUMBITS(8) [],
        DTOCV OFFSET(16) NUMBITS(4) [],
        RSTA OFFSET(24) NUMBITS(1) [],
        RSTC OFFSET(25) NUMBITS(1) [],
        RSTD OFFSET(26) NUMBITS(1) [],
        INITA OFFSET(27) NUMBITS(1) []
    ],
    pub INT_STATUS [
        CC OFFSET(0) NUMBITS(1) [],
        TC OFFSET(1) NUMBITS(1) [],
        BGE OFFSET(2) NUMBITS(1) [],
        DINT OFFSET(3) NUMBITS(1) [],
        BWR OFFSET(4) NUMBITS(1) [],
        BRR OFFSET(5) NUMBITS(1) [],
        CTOE OFFSET(16) NUMBITS(1) [],
        CCE OFFSET(17) NUMBITS(1) [],
        CEBE OFFSET(18) NUMBITS(1) [],
        CIE OFFSET(19) NUMBITS(1) [],
        DTOE OFFSET(20) NUMBITS(1) [],
        DCE OFFSET(21) NUMBITS(1) [],
        DEBE OFFSET(22) NUMBITS(1) [],
        AC12E OFFSET(24) NUMBITS(1) [],
        DMAE OFFSET(28) NUMBITS(1) []
    ],
    pub WTMK_LVL [
        RD_WML OFFSET(0) NUMBITS(8) [],
        RD_BRST_LEN OFFSET(8) NUMBITS(5) [],
        WR_WML OFFSET(16) NUMBITS(8) [],
        WR_BRST_LEN OFFSET(24) NUMBITS(5) []
    ],
    pub MIX_CTRL [
        DMAEN OFFSET(0) NUMBITS(1) [],
        BCEN OFFSET(1) NUMBITS(1) [],
        AC12EN OFFSET(2) NUMBITS(1) [],
        DDR_EN OFFSET(3) NUMBITS(1) [],
        DTDSEL OFFSET(4) NUMBITS(1) [],
        MSBSEL OFFSET(5) NUMBITS(1) []
    ]
];

register_structs! {
    /// The uSDHC register window.
    pub UsdhcRegs {
        (0x00 => pub ds_addr: ReadWrite<u32>),
        (0x04 => pub blk_att: ReadWrite<u32, BLK_ATT::Register>),
        (0x08 => pub cmd_arg: ReadWrite<u32>),
        (0x0C => pub cmd_xfr_typ: ReadWrite<u32, CMD_XFR_TYP::Register>),
        (0x10 => pub cmd_rsp0: ReadOnly<u32>),
        (0x14 => pub cmd_rsp1: ReadOnly<u32>),
        (0x18 => pub cmd_rsp2: ReadOnly<u32>),
        (0x1C => pub cmd_rsp3: ReadOnly<u32>),
        (0x20 => pub data_buff: ReadWrite<u32>),
        (0x24 => pub pres_state: ReadOnly<u32, PRES_STATE::Register>),
        (0x28 => pub prot_ctrl: ReadWrite<u32, PROT_CTRL::Register>),
        (0x2C => pub sys_ctrl: ReadWrite<u32, SYS_CTRL::Register>),
        (0x30 => pub int_status: ReadWrite<u32, INT_STATUS::Register>),
        (0x34 => pub int_status_en: ReadWrite<u32, INT_STATUS::Register>),
        (0x38 => pub int_signal_en: ReadWrite<u32, INT_STATUS::Register>),
        (0x3C => pub autocmd12_err_status: ReadOnly<u32>),
        (0x40 => pub host_ctrl_cap: ReadOnly<u32>),
        (0x44 => pub wtmk_lvl: ReadWrite<u32, WTMK_LVL::Register>),
        (0x48 => pub mix_ctrl: ReadWrite<u32, MIX_CTRL::Register>),
        (0x4C => _reserved0),
        (0x50 => pub force_event: ReadWrite<u32>),
        (0x54 => pub adma_err_status: ReadOnly<u32>),
        (0x58 => pub adma_sys_addr: ReadWrite<u32>),
        (0x5C => _reserved1),
        (0x60 => pub dll_ctrl: ReadWrite<u32>),
        (0x64 => pub dll_status: ReadOnly<u32>),
        (0x68 => pub clk_tune_ctrl_status: ReadWrite<u32>),
        (0x6C => _reserved2),
        (0xC0 => pub vend_spec: ReadWrite<u32>),
        (0xC4 => pub mmc_boot: ReadWrite<u32>),
        (0xC8 => pub vend_spec2: ReadWrite<u32>),
        (0xCC => pub tuning_ctrl: ReadWrite<u32>),
        (0xD0 => _reserved3),
        (0x100 => @END),
    }
}

macro_rules! off {
    ($f:ident) => {
        core::mem::offset_of!(UsdhcRegs, $f)
    };
}

/// Byte offsets of the registers the driver uses.
pub mod offsets {
    use super::UsdhcRegs;
    /// Block attributes.
    pub const BLK_ATT: usize = off!(blk_att);
    /// Command argument.
    pub const CMD_ARG: usize = off!(cmd_arg);
    /// Command transfer type (writing it starts the command).
    pub const CMD_XFR_TYP: usize = off!(cmd_xfr_typ);
    /// Response words 0..=3.
    pub const CMD_RSP0: usize = off!(cmd_rsp0);
    /// Response word 1.
    pub const CMD_RSP1: usize = off!(cmd_rsp1);
    /// Response word 2.
    pub const CMD_RSP2: usize = off!(cmd_rsp2);
    /// Response word 3.
    pub const CMD_RSP3: usize = off!(cmd_rsp3);
    /// PIO data port.
    pub const DATA_BUFF: usize = off!(data_buff);
    /// Present state.
    pub const PRES_STATE: usize = off!(pres_state);
    /// Protocol control.
    pub const PROT_CTRL: usize = off!(prot_ctrl);
    /// System control (clock, resets).
    pub const SYS_CTRL: usize = off!(sys_ctrl);
    /// Interrupt status (write 1 to clear).
    pub const INT_STATUS: usize = off!(int_status);
    /// Interrupt status enable.
    pub const INT_STATUS_EN: usize = off!(int_status_en);
    /// Interrupt signal enable.
    pub const INT_SIGNAL_EN: usize = off!(int_signal_en);
    /// Auto-CMD12 error status.
    pub const AUTOCMD12_ERR_STATUS: usize = off!(autocmd12_err_status);
    /// Watermark levels.
    pub const WTMK_LVL: usize = off!(wtmk_lvl);
    /// Mixer control (data transfer flags on uSDHC).
    pub const MIX_CTRL: usize = off!(mix_ctrl);
    /// ADMA error status.
    pub const ADMA_ERR_STATUS: usize = off!(adma_err_status);
    /// ADMA descriptor table address.
    pub const ADMA_SYS_ADDR: usize = off!(adma_sys_addr);
    /// Vendor specific.
    pub const VEND_SPEC: usize = off!(vend_spec);
    /// Delay line control.
    pub const DLL_CTRL: usize = off!(dll_ctrl);
    /// Clock tuning control and status.
    pub const CLK_TUNE_CTRL_STATUS: usize = off!(clk_tune_ctrl_status);
    /// Boot control (not reset by RSTA).
    pub const MMC_BOOT: usize = off!(mmc_boot);
    /// Tuning control.
    pub const TUNING_CTRL: usize = off!(tuning_ctrl);
}

/// VEND_SPEC bits (U-Boot `fsl_esdhc_imx.c` / `fsl_esdhc_imx.h`).
pub mod vend_spec {
    /// Card clock enable: cleared around divider changes.
    pub const CKEN: u32 = 1 << 14;
    /// Peripheral clock enable.
    pub const PEREN: u32 = 1 << 13;
    /// U-Boot's `VENDORSPEC_INIT` (the reset value it restores after RSTA).
    pub const INIT: u32 = 0x2000_7809;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_reference() {
        assert_eq!(core::mem::size_of::<UsdhcRegs>(), 0x100);
        assert_eq!(offsets::BLK_ATT, 0x04);
        assert_eq!(offsets::CMD_XFR_TYP, 0x0C);
        assert_eq!(offsets::CMD_RSP3, 0x1C);
        assert_eq!(offsets::DATA_BUFF, 0x20);
        assert_eq!(offsets::PRES_STATE, 0x24);
        assert_eq!(offsets::SYS_CTRL, 0x2C);
        assert_eq!(offsets::INT_STATUS, 0x30);
        assert_eq!(offsets::WTMK_LVL, 0x44);
        assert_eq!(offsets::MIX_CTRL, 0x48);
        assert_eq!(offsets::ADMA_SYS_ADDR, 0x58);
        assert_eq!(offsets::VEND_SPEC, 0xC0);
    }

    #[test]
    fn field_positions() {
        // The 400 kHz identification clock QEMU accepts: DTOCV 0xE, SDCLKFS 0x80, bits 3:0.
        let v = SYS_CTRL::DTOCV.val(0xE) + SYS_CTRL::SDCLKFS.val(0x80) + SYS_CTRL::CLK_ON.val(0xF);
        assert_eq!(v.value, 0x000E_800F);
        assert_eq!(
            (CMD_XFR_TYP::CMDINX.val(18) + CMD_XFR_TYP::RSPTYP::L48 + CMD_XFR_TYP::DPSEL::SET)
                .value,
            0x1222_0000
        );
        assert_eq!(PROT_CTRL::DMASEL::Adma2.value, 2 << 8);
        assert_eq!(INT_STATUS::DMAE::SET.value, 1 << 28);
        assert_eq!(PRES_STATE::CINST::SET.value, 1 << 16);
    }
}
