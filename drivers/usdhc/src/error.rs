//! The uSDHC driver's error type.

use block::RangeError;
use core::fmt;

/// What a timed-out wait was waiting for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// The controller's reset bits to clear.
    Reset,
    /// The SD clock to become stable.
    ClockStable,
    /// The command line (CIHB) / data line (CDIHB) to be free.
    LinesFree,
    /// Command complete.
    CommandComplete,
    /// The PIO buffer to be ready.
    BufferReady,
    /// Transfer complete.
    TransferComplete,
    /// The card to release DAT0 busy.
    CardBusy,
    /// The card to finish power-up (OCR busy bit).
    PowerUp,
    /// The card to return to transfer state (CMD13).
    TransferState,
}

impl fmt::Display for Wait {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Reset => "controller reset",
            Self::ClockStable => "clock stable",
            Self::LinesFree => "command/data lines free",
            Self::CommandComplete => "command complete",
            Self::BufferReady => "buffer ready",
            Self::TransferComplete => "transfer complete",
            Self::CardBusy => "card busy to end",
            Self::PowerUp => "card power-up",
            Self::TransferState => "card to return to transfer state",
        })
    }
}

/// Where an error happened: the command and, for data commands, the first
/// block of the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct At {
    /// Command index (CMDn).
    pub cmd: u8,
    /// First block of the request.
    pub lba: Option<u64>,
}

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(CMD{}", self.cmd)?;
        if let Some(lba) = self.lba {
            write!(f, ", lba {lba:#x}")?;
        }
        f.write_str(")")
    }
}

/// uSDHC / card errors. Messages are stable and start with `mmc: `.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmcError {
    /// The slot reports no card.
    NoCard,
    /// `init` has not succeeded yet.
    NotInitialized,
    /// The controller did not finish a reset or clock change.
    HostTimeout(Wait),
    /// A bounded wait ran out.
    Timeout {
        /// What was awaited.
        wait: Wait,
        /// Where.
        at: At,
    },
    /// The card did not answer the command (CTOE).
    NoResponse(At),
    /// Response CRC, end bit or index error (CCE/CEBE/CIE).
    ResponseError {
        /// INT_STATUS bits.
        status: u32,
        /// Where.
        at: At,
    },
    /// Data CRC error (DCE).
    DataCrc(At),
    /// Data timeout (DTOE).
    DataTimeout(At),
    /// Data end bit error (DEBE).
    DataEndBit(At),
    /// The automatic CMD12 failed.
    AutoCmd12 {
        /// AUTOCMD12_ERR_STATUS.
        status: u32,
        /// Where.
        at: At,
    },
    /// ADMA error (DMAE).
    Adma {
        /// ADMA_ERR_STATUS.
        status: u32,
        /// Where.
        at: At,
    },
    /// The card's R1 status has error bits set.
    CardStatus {
        /// R1 card status.
        status: u32,
        /// Where.
        at: At,
    },
    /// The card rejected a CMD6 switch (SWITCH_ERROR).
    SwitchRejected {
        /// EXT_CSD index.
        index: u8,
        /// Value written.
        value: u8,
    },
    /// The card does not support the host's voltage window / CMD8 pattern.
    Voltage,
    /// The card's registers make no sense (unknown CSD structure).
    BadCard,
    /// Hardware partitions and partition switches are eMMC-only.
    NotEmmc,
    /// The card has no such hardware partition.
    NoSuchPartition,
    /// An erase on a card without TRIM that is not aligned to its erase group.
    EraseUnaligned {
        /// Erase group size in blocks.
        group: u32,
    },
    /// The driver's descriptor table is not reachable by the controller.
    DmaUnreachable,
    /// The request was refused before reaching the card.
    Range(RangeError),
}

impl From<RangeError> for MmcError {
    fn from(e: RangeError) -> Self {
        Self::Range(e)
    }
}

impl fmt::Display for MmcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoCard => f.write_str("mmc: no card present"),
            Self::NotInitialized => f.write_str("mmc: card not initialised"),
            Self::HostTimeout(wait) => write!(f, "mmc: timeout waiting for {wait}"),
            Self::Timeout { wait, at } => write!(f, "mmc: timeout waiting for {wait} {at}"),
            Self::NoResponse(at) => write!(f, "mmc: no response from card {at}"),
            Self::ResponseError { status, at } => {
                write!(f, "mmc: bad response (status {status:#010x}) {at}")
            }
            Self::DataCrc(at) => write!(f, "mmc: data CRC error {at}"),
            Self::DataTimeout(at) => write!(f, "mmc: data timeout {at}"),
            Self::DataEndBit(at) => write!(f, "mmc: data end bit error {at}"),
            Self::AutoCmd12 { status, at } => {
                write!(f, "mmc: auto-CMD12 failed (status {status:#x}) {at}")
            }
            Self::Adma { status, at } => write!(f, "mmc: ADMA error (status {status:#x}) {at}"),
            Self::CardStatus { status, at } => {
                write!(f, "mmc: card reported error status {status:#010x} {at}")
            }
            Self::SwitchRejected { index, value } => write!(
                f,
                "mmc: card rejected switch of EXT_CSD[{index}] to {value:#x}"
            ),
            Self::Voltage => f.write_str("mmc: card does not support the host voltage"),
            Self::BadCard => f.write_str("mmc: card registers not understood"),
            Self::NotEmmc => f.write_str("mmc: hardware partitions need an eMMC card"),
            Self::NoSuchPartition => f.write_str("mmc: card has no such hardware partition"),
            Self::EraseUnaligned { group } => write!(
                f,
                "mmc: erase must be aligned to the erase group ({group:#x} blocks) on this card"
            ),
            Self::DmaUnreachable => {
                f.write_str("mmc: ADMA descriptor table not reachable by the controller")
            }
            Self::Range(e) => write!(f, "mmc: {e}"),
        }
    }
}
