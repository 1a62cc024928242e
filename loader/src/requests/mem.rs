//! `md` and `mw` (U-Boot syntax: `md[.b|.w|.l|.q] ADDR [COUNT]`,
//! `mw[.b|.w|.l|.q] ADDR VALUE [COUNT]`, every number hex).
//!
//! What is checked here: the count (at least 1, and `COUNT * width` bytes
//! must be expressible), the address alignment and that the range does not
//! run past the end of the address space. Whether the range is mapped is
//! the target's question (`commands::mem`).

use super::{CmdError, arity, nonzero_count};
use crate::console::args::{hex, width_suffix};

/// `md`'s default count (U-Boot's).
pub const MD_DEFAULT_COUNT: u64 = 0x40;

/// A checked `md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MdRequest {
    /// Unit size in bytes: 1, 2, 4 or 8.
    pub width: usize,
    /// First address (aligned to `width`).
    pub addr: u64,
    /// Units to show (at least 1).
    pub count: u64,
}

/// A checked `mw`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MwRequest {
    /// Unit size in bytes: 1, 2, 4 or 8.
    pub width: usize,
    /// First address (aligned to `width`).
    pub addr: u64,
    /// Value stored in every unit (fits in `width` bytes).
    pub value: u64,
    /// Units to write (at least 1).
    pub count: u64,
}

impl MdRequest {
    /// Bytes covered.
    pub fn len(&self) -> u64 {
        bytes(self.count, self.width)
    }
}

impl MwRequest {
    /// Bytes covered.
    pub fn len(&self) -> u64 {
        bytes(self.count, self.width)
    }
}

fn bytes(count: u64, width: usize) -> u64 {
    count.saturating_mul(width as u64)
}

/// The unit width the typed name asks for (`md.w` is 2, `md` is 4).
fn width(typed: &str) -> Result<usize, CmdError> {
    width_suffix(typed).map(|(_, w)| w).ok_or_else(|| {
        CmdError::msg(format_args!(
            "unknown size suffix in '{typed}' (.b, .w, .l or .q)"
        ))
    })
}

/// The byte length of `count` units, refused when it cannot be expressed.
fn length(count: u64, width: usize) -> Result<u64, CmdError> {
    nonzero_count(count)?;
    count
        .checked_mul(width as u64)
        .ok_or_else(|| CmdError::msg(format_args!("count too large")))
}

/// Checks that `[addr, addr + len)` is aligned to `width` and inside the
/// address space (its exclusive end a `u64`); returns its end.
pub fn span(addr: u64, len: u64, width: usize) -> Result<u64, CmdError> {
    if !addr.is_multiple_of(width as u64) {
        return Err(CmdError::msg(format_args!(
            "address 0x{addr:x} is not aligned to {width} bytes"
        )));
    }
    addr.checked_add(len)
        .ok_or_else(|| CmdError::msg(format_args!("range past the end of the address space")))
}

/// Parses `md[.SIZE] ADDR [COUNT]`.
pub fn parse_md(args: &[&str]) -> Result<MdRequest, CmdError> {
    arity(args, 1, 2)?;
    let width = width(args[0])?;
    let addr = hex(args[1])?;
    let count = args
        .get(2)
        .map(|c| hex(c))
        .transpose()?
        .unwrap_or(MD_DEFAULT_COUNT);
    let len = length(count, width)?;
    span(addr, len, width)?;
    Ok(MdRequest { width, addr, count })
}

/// Parses `mw[.SIZE] ADDR VALUE [COUNT]`.
pub fn parse_mw(args: &[&str]) -> Result<MwRequest, CmdError> {
    arity(args, 2, 3)?;
    let width = width(args[0])?;
    let addr = hex(args[1])?;
    let value = hex(args[2])?;
    if width < 8 && value >> (8 * width) != 0 {
        return Err(CmdError::msg(format_args!(
            "value 0x{value:x} does not fit in {width} byte(s)"
        )));
    }
    let count = args.get(3).map(|c| hex(c)).transpose()?.unwrap_or(1);
    let len = length(count, width)?;
    span(addr, len, width)?;
    Ok(MwRequest {
        width,
        addr,
        value,
        count,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::test_message as msg;

    #[test]
    fn md_defaults_and_suffixes() {
        assert_eq!(
            parse_md(&["md", "40200000"]),
            Ok(MdRequest {
                width: 4,
                addr: 0x4020_0000,
                count: 0x40
            })
        );
        assert_eq!(
            parse_md(&["md.q", "0x40200008", "10"]),
            Ok(MdRequest {
                width: 8,
                addr: 0x4020_0008,
                count: 0x10
            })
        );
        assert_eq!(
            msg(parse_md(&["md.l", "50000002", "1"])),
            "address 0x50000002 is not aligned to 4 bytes"
        );
        assert_eq!(msg(parse_md(&["md", "0", "0"])), "count must be at least 1");
        assert_eq!(
            msg(parse_md(&["md.q", "0", "2000000000000000"])),
            "count too large"
        );
        assert_eq!(
            msg(parse_md(&["md.b", "ffffffffffffffff", "2"])),
            "range past the end of the address space"
        );
        // The end is exclusive and must be a u64: the very last byte of the
        // address space is out of reach (it is never mapped anyway).
        assert_eq!(
            parse_md(&["md.b", "fffffffffffffffe", "1"]).map(|r| r.len()),
            Ok(1)
        );
        assert_eq!(
            msg(parse_md(&["md.b", "ffffffffffffffff", "1"])),
            "range past the end of the address space"
        );
        assert_eq!(
            msg(parse_md(&["md.x", "0"])),
            "unknown size suffix in 'md.x' (.b, .w, .l or .q)"
        );
    }

    #[test]
    fn mw_value_must_fit() {
        assert_eq!(
            msg(parse_mw(&["mw.b", "50000000", "100"])),
            "value 0x100 does not fit in 1 byte(s)"
        );
        assert_eq!(
            parse_mw(&["mw.q", "8", "ffffffffffffffff"]),
            Ok(MwRequest {
                width: 8,
                addr: 8,
                value: u64::MAX,
                count: 1
            })
        );
        assert_eq!(parse_mw(&["mw", "0"]), Err(CmdError::MissingArgument));
        assert_eq!(
            parse_mw(&["mw", "0", "1", "2", "3"]),
            Err(CmdError::TooManyArguments)
        );
    }
}
