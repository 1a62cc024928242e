//! The tool's error type and exit codes.

use std::fmt;

/// Exit codes (documented in `mfgtool --help` and docs/formats.md).
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// I/O error or other failure.
    pub const FAILURE: u8 = 1;
    /// Command-line usage error (clap's code).
    pub const USAGE: u8 = 2;
    /// Authentication failed: bundle tag or ID-record signature.
    pub const AUTH: u8 = 3;
    /// Refused by ledger policy (duplicate UID, quota, SRK hash, state, range,
    /// unknown bundle); for `ledger register`: some input line was refused
    /// or malformed (the others were processed).
    pub const REFUSED: u8 = 4;
    /// Malformed, truncated or inconsistent input.
    pub const FORMAT: u8 = 5;
}

/// An error with the exit code it maps to.
#[derive(Debug)]
pub struct Fail {
    /// Process exit code.
    pub code: u8,
    /// Message printed as `mfgtool: <msg>`.
    pub msg: String,
}

impl Fail {
    pub fn new(code: u8, msg: impl Into<String>) -> Self {
        Self {
            code,
            msg: msg.into(),
        }
    }
    pub fn io(what: &str, e: std::io::Error) -> Self {
        Self::new(exit::FAILURE, format!("{what}: {e}"))
    }
    pub fn format(msg: impl Into<String>) -> Self {
        Self::new(exit::FORMAT, msg)
    }
    pub fn usage(msg: impl Into<String>) -> Self {
        Self::new(exit::USAGE, msg)
    }
}

impl fmt::Display for Fail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl From<mfg_formats::FormatError> for Fail {
    fn from(e: mfg_formats::FormatError) -> Self {
        let code = if e == mfg_formats::FormatError::AuthenticationFailed {
            exit::AUTH
        } else {
            exit::FORMAT
        };
        Self::new(code, e.to_string())
    }
}

impl From<rusqlite::Error> for Fail {
    fn from(e: rusqlite::Error) -> Self {
        Self::new(exit::FAILURE, format!("ledger database: {e}"))
    }
}

pub type Result<T> = std::result::Result<T, Fail>;

/// Reads a whole file with a message naming it.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Fail::io(&path.display().to_string(), e))
}

/// Writes a whole file with a message naming it.
pub fn write_file(path: &std::path::Path, data: &[u8]) -> Result<()> {
    std::fs::write(path, data).map_err(|e| Fail::io(&path.display().to_string(), e))
}
