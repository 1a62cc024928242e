//! CAAM errors and job status decoding.

/// Why a CAAM operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaamError {
    /// `init()` has not run (or a previous timeout left the ring unusable).
    NotInitialised,
    /// The job ring did not do something in time.
    Timeout {
        /// What was being waited for.
        what: &'static str,
    },
    /// A DMA buffer is not reachable with 32-bit CAAM pointers.
    DmaUnreachable,
    /// The job ring reported an error in JRINTR (ERR_TYPE in bits 11:8).
    RingError {
        /// The JRINTR value.
        jrintr: u32,
    },
    /// The output ring returned a descriptor address we did not submit.
    DescriptorMismatch {
        /// The bus address of our descriptor.
        expected: u32,
        /// The address in the output ring entry.
        got: u32,
    },
    /// Job status with SSRC 6: a job ring error.
    JobRing {
        /// The raw status word.
        status: u32,
    },
    /// Job status with SSRC 4: a DECO error.
    Deco {
        /// Word index of the command that failed.
        index: u8,
        /// The DECO error code.
        code: u8,
    },
    /// Job status with SSRC 2, CCB "ICV check failed": the blob's MAC does
    /// not match (wrong chip, other key modifier, or a corrupted blob).
    BlobMacMismatch,
    /// Another CCB error.
    Ccb {
        /// CHA id (1 AES, 4 MDHA, 5 RNG, 8 PKHA).
        cha: u8,
        /// Error id.
        err: u8,
        /// Word index of the command.
        index: u8,
    },
    /// Any other non-zero status word.
    Status {
        /// The raw status word.
        status: u32,
    },
    /// `mp_sign` with an empty message.
    EmptyMessage,
    /// `mp_sign` message longer than the 4 KiB cap (OP-TEE's).
    MessageTooLong {
        /// The message length.
        len: usize,
    },
    /// Blob payload larger than the bounce buffers.
    PayloadTooLarge {
        /// The payload length.
        len: usize,
    },
    /// A blob shorter than the 48-byte overhead.
    BlobTooShort {
        /// The blob length.
        len: usize,
    },
    /// The caller's output buffer is too small.
    OutputTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        got: usize,
    },
    /// The MPMR is already locked (SCFGR.MPMRL).
    MpmrLocked,
    /// SCFGR.MPCURVE does not select P-256 (the only curve supported), or
    /// the CAAM's hash limit would make OP-TEE pick another curve.
    MpUnsupported {
        /// The MPCURVE value.
        curve: u8,
    },
    /// A closed part whose SCFGR.MPCURVE reads 0: the boot ROM left no MP
    /// key (OP-TEE refuses this case too; the CSF needs `[Unlock] Engine =
    /// CAAM, Features = MFG`).
    MpNoKeyOnClosedPart,
    /// The controller page (page 0) reads back nothing sensible while the
    /// job ring page's alias answers: the secure world owns it.
    ControllerPageRefused {
        /// What SECVID_MS read through page 0.
        secvid: u32,
    },
    /// Neither page 0 nor the job ring page identify a CAAM.
    NoCaam {
        /// What SECVID_MS read through page 0.
        secvid: u32,
    },
    /// The driver's job ring belongs to the secure world (JRnDID_MS.TZ_OWN).
    RingOwnedBySecureWorld {
        /// The ring.
        ring: u8,
        /// Its JRnDID_MS.
        jrdid_ms: u32,
    },
    /// MCFGR.PS (LONG_PTR) is set: the CAAM expects 64-bit pointers and
    /// 12-byte output ring entries, which this driver does not build.
    LongPointers {
        /// The MCFGR value.
        mcfgr: u32,
    },
    /// RNG state handle `handle` was still not instantiated after the last
    /// entropy delay tried.
    RngInstantiateFailed {
        /// The state handle (0 or 1).
        handle: u8,
        /// The last entropy delay programmed (0 when the TRNG was left
        /// alone because another handle was live).
        ent_delay: u32,
    },
    /// RDSTA says RNG state handle 0 is not instantiated after init.
    RngNotInstantiated,
    /// A blob key modifier of 0 or more than 16 bytes.
    BadKeyModifier {
        /// Its length in bytes.
        len: usize,
    },
    /// A raw descriptor that is empty or longer than the 16-word buffer.
    BadDescriptorLength {
        /// Its length in words.
        words: usize,
    },
}

/// A name for a DECO error code (Linux `error.c` `desc_error_list`).
pub fn deco_error_name(code: u8) -> &'static str {
    match code {
        0x01 => "SGT length error",
        0x02 => "SGT null entry",
        0x03 => "job ring control error",
        0x04 => "invalid descriptor command",
        0x06 => "invalid KEY command",
        0x07 => "invalid LOAD command",
        0x08 => "invalid STORE command",
        0x09 => "invalid OPERATION command",
        0x0A => "invalid FIFO LOAD command",
        0x0B => "invalid FIFO STORE command",
        0x0C => "invalid MOVE command",
        0x0D => "invalid JUMP command",
        0x0E => "invalid MATH command",
        0x10 => "invalid sequence command",
        0x13 => "descriptor header error",
        0x16 => "DMA error",
        0x1A => "job failed due to JR reset",
        0x24 => "JDKEK, TDKEK or TDSK not loaded",
        0x80 => "DNR (do not run)",
        0x81 => "undefined protocol command",
        0x82 => "invalid setting in PDB",
        0x86 => "invalid signature",
        0x87 => "DSA sign illegal test descriptor",
        0xC1 => "blob command: undefined mode",
        0xC2 => "blob command: secure memory blob mode error",
        0xC4 => "blob command: black blob key or input size error",
        0xC5 => "blob command: invalid key destination",
        0xC8 => "blob command: trusted/secure mode error",
        _ => "unknown DECO error",
    }
}

fn cha_name(cha: u8) -> &'static str {
    match cha {
        1 => "AES",
        2 => "DES",
        4 => "MDHA",
        5 => "RNG",
        8 => "PKHA",
        _ => "CHA",
    }
}

impl CaamError {
    /// Decodes a job status word; `Ok(())` for success (0).
    pub fn check_status(status: u32) -> Result<(), Self> {
        let idx = ((status >> 8) & 0xFF) as u8;
        let low = (status & 0xFF) as u8;
        match status >> 28 {
            0 if status == 0 => Ok(()),
            2 => {
                let cha = low >> 4;
                let err = low & 0xF;
                if err == 0xA {
                    Err(Self::BlobMacMismatch)
                } else {
                    Err(Self::Ccb {
                        cha,
                        err,
                        index: idx,
                    })
                }
            }
            4 => Err(Self::Deco {
                index: idx,
                code: low,
            }),
            6 => Err(Self::JobRing { status }),
            _ => Err(Self::Status { status }),
        }
    }
}

impl core::fmt::Display for CaamError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            Self::NotInitialised => write!(f, "CAAM not initialised"),
            Self::Timeout { what } => write!(f, "CAAM timeout waiting for {what}"),
            Self::DmaUnreachable => write!(f, "CAAM DMA buffer above 4 GiB"),
            Self::RingError { jrintr } => write!(
                f,
                "CAAM job ring error (JRINTR {jrintr:#010x}, type {})",
                (jrintr >> 8) & 0xF
            ),
            Self::DescriptorMismatch { expected, got } => write!(
                f,
                "CAAM returned descriptor {got:#010x}, expected {expected:#010x}"
            ),
            Self::JobRing { status } => write!(f, "CAAM job ring error, status {status:#010x}"),
            Self::Deco { index, code } => write!(
                f,
                "CAAM DECO error {code:#04x} ({}) at descriptor word {index}",
                deco_error_name(code)
            ),
            Self::BlobMacMismatch => write!(
                f,
                "blob MAC mismatch (ICV check failed: wrong chip, key modifier or corrupted blob)"
            ),
            Self::Ccb {
                cha: 5,
                err: 4,
                index,
            } => write!(
                f,
                "CAAM CCB error: RNG not instantiated (job at descriptor word {index} needs random data)"
            ),
            Self::Ccb { cha, err, index } => write!(
                f,
                "CAAM CCB error: {} error {err:#x} at descriptor word {index}",
                cha_name(cha)
            ),
            Self::Status { status } => write!(f, "CAAM job status {status:#010x}"),
            Self::EmptyMessage => write!(f, "empty message"),
            Self::MessageTooLong { len } => {
                write!(f, "message of {len} bytes exceeds the 4096-byte limit")
            }
            Self::PayloadTooLarge { len } => write!(
                f,
                "blob payload of {len} bytes exceeds the {}-byte limit",
                crate::MAX_BLOB_PAYLOAD
            ),
            Self::BlobTooShort { len } => {
                write!(
                    f,
                    "blob of {len} bytes is shorter than the 48-byte overhead"
                )
            }
            Self::OutputTooSmall { need, got } => {
                write!(f, "output buffer of {got} bytes, need {need}")
            }
            Self::MpmrLocked => write!(f, "MPMR already locked"),
            Self::MpUnsupported { curve } => write!(
                f,
                "manufacturing protection unavailable (SCFGR.MPCURVE = {curve}, need 3 = P-256)"
            ),
            Self::MpNoKeyOnClosedPart => write!(
                f,
                "manufacturing protection unavailable: closed part with SCFGR.MPCURVE = 0 (no MP key from the boot ROM; the CSF needs [Unlock] Features = MFG)"
            ),
            Self::ControllerPageRefused { secvid } => write!(
                f,
                "CAAM controller page not accessible: is OP-TEE in the boot image? (SECVID_MS read {secvid:#010x})"
            ),
            Self::NoCaam { secvid } => write!(
                f,
                "no CAAM answers at the CAAM address (SECVID_MS read {secvid:#010x} on both the controller and the job ring page)"
            ),
            Self::RingOwnedBySecureWorld { ring, jrdid_ms } => write!(
                f,
                "CAAM job ring {ring} belongs to the secure world (JR{ring}DID_MS {jrdid_ms:#010x}, TZ_OWN set): TF-A did not release it"
            ),
            Self::LongPointers { mcfgr } => write!(
                f,
                "CAAM set up for 64-bit pointers (MCFGR {mcfgr:#010x}, PS set); this driver uses 32-bit pointers"
            ),
            Self::RngInstantiateFailed { handle, ent_delay } => write!(
                f,
                "CAAM RNG state handle {handle} could not be instantiated (last entropy delay {ent_delay})"
            ),
            Self::RngNotInstantiated => write!(f, "CAAM RNG state handle 0 not instantiated"),
            Self::BadKeyModifier { len } => {
                write!(f, "blob key modifier of {len} bytes (1..=16 allowed)")
            }
            Self::BadDescriptorLength { words } => {
                write!(f, "raw descriptor of {words} words (1..=16 allowed)")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;

    #[test]
    fn status_words_decode() {
        assert_eq!(CaamError::check_status(0), Ok(()));
        assert_eq!(
            CaamError::check_status(0x4000_0382),
            Err(CaamError::Deco {
                index: 3,
                code: 0x82
            })
        );
        assert_eq!(
            CaamError::check_status(0x2000_091A),
            Err(CaamError::BlobMacMismatch)
        );
        assert_eq!(
            CaamError::check_status(0x2000_0054),
            Err(CaamError::Ccb {
                cha: 5,
                err: 4,
                index: 0
            })
        );
        assert_eq!(
            CaamError::check_status(0x6000_0001),
            Err(CaamError::JobRing {
                status: 0x6000_0001
            })
        );
        assert_eq!(
            CaamError::check_status(0x7000_0000),
            Err(CaamError::Status {
                status: 0x7000_0000
            })
        );
    }

    #[test]
    fn messages_are_specific() {
        let m = format!("{}", CaamError::check_status(0x4000_0381).unwrap_err());
        assert_eq!(
            m,
            "CAAM DECO error 0x81 (undefined protocol command) at descriptor word 3"
        );
        let m = format!("{}", CaamError::BlobMacMismatch);
        assert!(m.starts_with("blob MAC mismatch"));
        let m = format!("{}", CaamError::MessageTooLong { len: 5000 });
        assert!(m.contains("5000") && m.contains("4096"));
    }
}
