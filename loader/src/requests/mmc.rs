//! `mmc` subcommands (U-Boot syntax, every number hex).
//!
//! `read`/`write`/`erase` counts and block ranges are checked by the
//! [`Transfer`] and [`Erase`] methods the target calls after printing its
//! `MMC read: ...` header, so that their refusals keep U-Boot's
//! `0 blocks read: ERROR` framing.

use super::{CmdError, arity, nonzero_count, unknown_subcommand};
use crate::console::args::hex;
use usdhc::{HwPart, TransferMode};

/// Block size of every transfer.
pub const BLOCK: u64 = usdhc::BLOCK as u64;

/// A parsed `mmc` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MmcRequest {
    /// `mmc list`.
    List,
    /// `mmc rescan`.
    Rescan,
    /// `mmc dev [N] [PART]`: the slot (if given) is the board's; switch to
    /// `part` if given.
    Dev {
        /// Hardware partition to select.
        part: Option<HwPart>,
    },
    /// `mmc info`.
    Info,
    /// `mmc read|write ADDR BLK CNT`.
    Transfer(Transfer),
    /// `mmc erase BLK CNT`.
    Erase(Erase),
    /// `mmc part`.
    Part,
    /// `mmc mode adma2|pio [multi|single]`.
    Mode {
        /// Data path.
        mode: TransferMode,
        /// Multi-block commands (the default) or one block per command.
        multi: bool,
    },
}

/// `mmc read` or `mmc write`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transfer {
    /// `write` (RAM to card) rather than `read`.
    pub write: bool,
    /// RAM address.
    pub addr: u64,
    /// First block.
    pub blk: u64,
    /// Blocks.
    pub cnt: u64,
}

/// `mmc erase`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Erase {
    /// First block.
    pub blk: u64,
    /// Blocks.
    pub cnt: u64,
}

impl Transfer {
    /// The subcommand as typed: `read` or `write`.
    pub fn name(&self) -> &'static str {
        if self.write { "write" } else { "read" }
    }

    /// The past participle U-Boot prints: `read` or `written`.
    pub fn verb(&self) -> &'static str {
        if self.write { "written" } else { "read" }
    }

    /// Refuses a zero count (checked before the card is touched).
    pub fn check_count(&self) -> Result<(), CmdError> {
        nonzero_count(self.cnt)
    }

    /// Checks the block range against a device of `device_blocks` blocks
    /// and returns the RAM length in bytes.
    pub fn check_blocks(&self, device_blocks: u64) -> Result<u64, CmdError> {
        self.check_count()?;
        let (blk, last) = (self.blk, device_blocks);
        let end = blk
            .checked_add(self.cnt)
            .ok_or_else(|| CmdError::msg(format_args!("block range overflows")))?;
        if end > last {
            return Err(CmdError::msg(format_args!(
                "blocks 0x{blk:x}..0x{end:x} are past the end of the device (0x{last:x} blocks)"
            )));
        }
        self.cnt
            .checked_mul(BLOCK)
            .ok_or_else(|| CmdError::msg(format_args!("count too large")))
    }
}

impl Erase {
    /// Refuses a zero count.
    pub fn check_count(&self) -> Result<(), CmdError> {
        nonzero_count(self.cnt)
    }
}

/// The name `mmc mode` takes and prints for a transfer mode.
pub fn mode_name(mode: TransferMode) -> &'static str {
    match mode {
        TransferMode::Adma2 => "adma2",
        TransferMode::Pio => "pio",
    }
}

/// Parses `mmc SUBCOMMAND ...`; `dev` is the board's only slot number.
pub fn parse(args: &[&str], dev: u8) -> Result<MmcRequest, CmdError> {
    arity(args, 1, 4)?;
    match args[1] {
        "list" => arity(args, 1, 1).map(|()| MmcRequest::List),
        "rescan" => arity(args, 1, 1).map(|()| MmcRequest::Rescan),
        "info" => arity(args, 1, 1).map(|()| MmcRequest::Info),
        "part" => arity(args, 1, 1).map(|()| MmcRequest::Part),
        "dev" => {
            arity(args, 1, 3)?;
            if let Some(n) = args.get(2) {
                let n = hex(n)?;
                if n != u64::from(dev) {
                    return Err(CmdError::msg(format_args!(
                        "no mmc device at slot {n:x} (only {dev})"
                    )));
                }
            }
            let part = match args.get(3) {
                None => None,
                Some(p) => Some(
                    u8::try_from(hex(p)?)
                        .ok()
                        .and_then(HwPart::from_number)
                        .ok_or_else(|| {
                            CmdError::msg(format_args!(
                                "partition must be 0 (user), 1 (boot0) or 2 (boot1)"
                            ))
                        })?,
                ),
            };
            Ok(MmcRequest::Dev { part })
        }
        sub @ ("read" | "write") => {
            arity(args, 4, 4)?;
            Ok(MmcRequest::Transfer(Transfer {
                write: sub == "write",
                addr: hex(args[2])?,
                blk: hex(args[3])?,
                cnt: hex(args[4])?,
            }))
        }
        "erase" => {
            arity(args, 3, 3)?;
            Ok(MmcRequest::Erase(Erase {
                blk: hex(args[2])?,
                cnt: hex(args[3])?,
            }))
        }
        "mode" => {
            arity(args, 2, 3)?;
            let mode = match args[2] {
                "adma2" => TransferMode::Adma2,
                "pio" => TransferMode::Pio,
                other => {
                    return Err(CmdError::msg(format_args!(
                        "unknown transfer mode '{other}' (adma2 or pio)"
                    )));
                }
            };
            let multi = match args.get(3) {
                None | Some(&"multi") => true,
                Some(&"single") => false,
                Some(other) => {
                    return Err(CmdError::msg(format_args!(
                        "unknown block mode '{other}' (multi or single)"
                    )));
                }
            };
            Ok(MmcRequest::Mode { mode, multi })
        }
        other => Err(unknown_subcommand(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::test_message as msg;

    #[test]
    fn dev_slot_and_partition() {
        assert_eq!(
            parse(&["mmc", "dev"], 2),
            Ok(MmcRequest::Dev { part: None })
        );
        assert_eq!(
            parse(&["mmc", "dev", "2", "1"], 2),
            Ok(MmcRequest::Dev {
                part: Some(HwPart::Boot0)
            })
        );
        assert_eq!(
            msg(parse(&["mmc", "dev", "1"], 2)),
            "no mmc device at slot 1 (only 2)"
        );
        assert_eq!(
            msg(parse(&["mmc", "dev", "2", "100"], 2)),
            "partition must be 0 (user), 1 (boot0) or 2 (boot1)"
        );
    }

    #[test]
    fn transfer_checks() {
        let t = |blk, cnt| Transfer {
            write: true,
            addr: 0,
            blk,
            cnt,
        };
        assert_eq!(t(0x7fff, 1).check_blocks(0x8000), Ok(512));
        assert_eq!(
            msg(t(0x7fff, 2).check_blocks(0x8000)),
            "blocks 0x7fff..0x8001 are past the end of the device (0x8000 blocks)"
        );
        assert_eq!(
            msg(t(u64::MAX, 2).check_blocks(u64::MAX)),
            "block range overflows"
        );
        assert_eq!(msg(t(0, 1 << 60).check_blocks(u64::MAX)), "count too large");
        assert_eq!(msg(t(5, 0).check_blocks(10)), "count must be at least 1");
        assert_eq!(
            msg(parse(&["mmc", "read", "0", "0"], 2)),
            "missing argument"
        );
        assert_eq!(
            msg(parse(&["mmc", "read", "0", "0", "1", "2"], 2)),
            "too many arguments"
        );
        assert_eq!(msg(parse(&["mmc", "frob"], 2)), "unknown subcommand 'frob'");
    }
}
