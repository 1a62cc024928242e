//! `mfgprot`, `blob`, `fuse read` and `caam info`.
//!
//! Numbers: `mfgprot sign ADDR SIZE` takes ADDR in hex and SIZE in decimal
//! (or hex with `0x`); `blob` takes hex; `fuse read` takes decimal (or hex
//! with `0x`), as U-Boot's `fuse` does.

use super::{CmdError, arity, unknown_subcommand};
use crate::console::args::{dec_or_hex, hex};

/// A parsed `mfgprot` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MfgprotRequest {
    /// `mfgprot pubk` (absent from the production build: the MP public key
    /// is the secret the bundle key derives from).
    #[cfg(not(feature = "production"))]
    Pubk,
    /// `mfgprot sign ADDR SIZE`.
    Sign {
        /// Message address.
        addr: u64,
        /// Message length, `1..=caam::MAX_MP_MESSAGE`.
        size: u64,
    },
}

/// Parses `mfgprot pubk` / `mfgprot sign ADDR SIZE`.
pub fn parse_mfgprot(args: &[&str]) -> Result<MfgprotRequest, CmdError> {
    arity(args, 1, 3)?;
    match args[1] {
        #[cfg(not(feature = "production"))]
        "pubk" => arity(args, 1, 1).map(|()| MfgprotRequest::Pubk),
        "sign" => {
            arity(args, 3, 3)?;
            let addr = hex(args[2])?;
            let size = dec_or_hex(args[3])?;
            if size == 0 || size > caam::MAX_MP_MESSAGE as u64 {
                return Err(CmdError::msg(format_args!(
                    "message size must be 1..{} bytes",
                    caam::MAX_MP_MESSAGE
                )));
            }
            Ok(MfgprotRequest::Sign { addr, size })
        }
        other => Err(unknown_subcommand(other)),
    }
}

/// A parsed `blob enc|dec SRC DST LEN KM [KMLEN]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobRequest {
    /// `enc` (encapsulate) rather than `dec`.
    pub encap: bool,
    /// Input address.
    pub src: u64,
    /// Output address.
    pub dst: u64,
    /// Payload length, `1..=caam::MAX_BLOB_PAYLOAD`.
    pub len: u64,
    /// Address of the key modifier.
    pub km: u64,
    /// Its length, 1..=16 (16 when not given, as U-Boot's `blob`; Linux's
    /// trusted keys use the 10 bytes `SECURE_KEY`).
    pub km_len: u64,
}

/// Bytes of a key modifier when KMLEN is not given (U-Boot's `blob`).
pub const KEY_MODIFIER_LEN: u64 = 16;

impl BlobRequest {
    /// Bytes of the blob (payload plus CAAM's key and MAC).
    pub fn blob_len(&self) -> u64 {
        self.len + caam::BLOB_OVERHEAD as u64
    }

    /// Bytes read at SRC.
    pub fn src_len(&self) -> u64 {
        if self.encap {
            self.len
        } else {
            self.blob_len()
        }
    }

    /// Bytes written at DST.
    pub fn dst_len(&self) -> u64 {
        if self.encap {
            self.blob_len()
        } else {
            self.len
        }
    }
}

/// Parses `blob enc|dec SRC DST LEN KM [KMLEN]`.
pub fn parse_blob(args: &[&str]) -> Result<BlobRequest, CmdError> {
    arity(args, 5, 6)?;
    let encap = match args[1] {
        "enc" => true,
        "dec" => false,
        other => return Err(unknown_subcommand(other)),
    };
    let (src, dst, len, km) = (hex(args[2])?, hex(args[3])?, hex(args[4])?, hex(args[5])?);
    if len == 0 || len > caam::MAX_BLOB_PAYLOAD as u64 {
        return Err(CmdError::msg(format_args!(
            "LEN must be 1..0x{:x}",
            caam::MAX_BLOB_PAYLOAD
        )));
    }
    let km_len = match args.get(6) {
        Some(w) => hex(w)?,
        None => KEY_MODIFIER_LEN,
    };
    if km_len == 0 || km_len > KEY_MODIFIER_LEN {
        return Err(CmdError::msg(format_args!(
            "KMLEN must be 1..0x{KEY_MODIFIER_LEN:x}"
        )));
    }
    Ok(BlobRequest {
        encap,
        src,
        dst,
        len,
        km,
        km_len,
    })
}

/// A parsed `fuse read BANK WORD [CNT]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FuseRead {
    /// Bank (the driver checks it against the fuse map).
    pub bank: u32,
    /// First word in the bank.
    pub word: u32,
    /// Words, at least 1, ending inside the bank.
    pub count: u32,
}

/// Parses `fuse read BANK WORD [CNT]`.
pub fn parse_fuse(args: &[&str]) -> Result<FuseRead, CmdError> {
    arity(args, 3, 4)?;
    if args[1] != "read" {
        return Err(CmdError::msg(format_args!(
            "unknown subcommand '{}' (only 'read')",
            args[1]
        )));
    }
    let bank = u32::try_from(dec_or_hex(args[2])?)
        .map_err(|_| CmdError::msg(format_args!("bank out of range")))?;
    let word = u32::try_from(dec_or_hex(args[3])?)
        .map_err(|_| CmdError::msg(format_args!("word out of range")))?;
    let count = match args.get(4) {
        Some(c) => u32::try_from(dec_or_hex(c)?)
            .map_err(|_| CmdError::msg(format_args!("count out of range")))?,
        None => 1,
    };
    if count == 0
        || word
            .checked_add(count)
            .is_none_or(|end| end > ocotp::WORDS_PER_BANK)
    {
        return Err(CmdError::msg(format_args!(
            "words {word}..{} outside the bank's {} words",
            word.saturating_add(count),
            ocotp::WORDS_PER_BANK
        )));
    }
    Ok(FuseRead { bank, word, count })
}

/// Parses `caam info` (its only form).
pub fn parse_caam(args: &[&str]) -> Result<(), CmdError> {
    arity(args, 1, 1)?;
    if args[1] != "info" {
        return Err(CmdError::msg(format_args!(
            "unknown subcommand '{}' (only 'info')",
            args[1]
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::test_message as msg;

    #[test]
    fn sign_size_is_decimal_or_0x() {
        assert_eq!(
            parse_mfgprot(&["mfgprot", "sign", "50000000", "10"]),
            Ok(MfgprotRequest::Sign {
                addr: 0x5000_0000,
                size: 10
            })
        );
        assert_eq!(
            parse_mfgprot(&["mfgprot", "sign", "0x50000000", "0x10"]),
            Ok(MfgprotRequest::Sign {
                addr: 0x5000_0000,
                size: 16
            })
        );
        assert_eq!(
            msg(parse_mfgprot(&["mfgprot", "sign", "0", "1a"])),
            "bad number '1a'"
        );
        assert_eq!(
            msg(parse_mfgprot(&["mfgprot", "sign", "0", "4097"])),
            "message size must be 1..4096 bytes"
        );
    }

    #[test]
    fn pubk_only_outside_production() {
        let r = parse_mfgprot(&["mfgprot", "pubk"]);
        #[cfg(not(feature = "production"))]
        assert_eq!(r, Ok(MfgprotRequest::Pubk));
        #[cfg(feature = "production")]
        assert_eq!(msg(r), "unknown subcommand 'pubk'");
    }

    #[test]
    fn blob_lengths() {
        let b = parse_blob(&["blob", "dec", "1000", "2000", "20", "3000"]).unwrap();
        assert_eq!((b.src_len(), b.dst_len()), (0x20 + 48, 0x20));
        assert_eq!(
            msg(parse_blob(&["blob", "enc", "0", "0", "10001", "0"])),
            "LEN must be 1..0x10000"
        );
        // KMLEN: 16 unless given (U-Boot), 1..=0x10 (Linux trusted keys: a).
        assert_eq!(b.km_len, 16);
        let b = parse_blob(&["blob", "dec", "1000", "2000", "20", "3000", "a"]).unwrap();
        assert_eq!((b.km, b.km_len), (0x3000, 10));
        for bad in ["0", "11", "ffffffffffffffff"] {
            assert_eq!(
                msg(parse_blob(&["blob", "enc", "0", "0", "10", "0", bad])),
                "KMLEN must be 1..0x10"
            );
        }
    }

    #[test]
    fn fuse_words_stay_in_the_bank() {
        assert_eq!(
            parse_fuse(&["fuse", "read", "1", "0x2", "2"]),
            Ok(FuseRead {
                bank: 1,
                word: 2,
                count: 2
            })
        );
        assert_eq!(
            msg(parse_fuse(&["fuse", "read", "1", "3", "2"])),
            "words 3..5 outside the bank's 4 words"
        );
        assert_eq!(
            msg(parse_fuse(&["fuse", "read", "4294967296", "0"])),
            "bank out of range"
        );
        assert_eq!(
            msg(parse_fuse(&["fuse", "prog", "1", "0"])),
            "unknown subcommand 'prog' (only 'read')"
        );
    }
}
