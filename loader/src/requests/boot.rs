//! `booti`, `boot` and `bootargs`.
// `booti` is a development command; the production loader leaves it out.
#![cfg_attr(feature = "production", allow(dead_code))]

use super::{CmdError, arity, operands};
use crate::console::args::hex;

/// An initramfs as `booti` names it: `ADDR:SIZE` (both hex).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Initrd {
    /// Address.
    pub addr: u64,
    /// Bytes.
    pub size: u64,
}

/// A parsed `booti KERNEL INITRD:SIZE|- FDT` (all hex).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BootiRequest {
    /// Address of the arm64 Image.
    pub kernel: u64,
    /// The initramfs, or none (`-`).
    pub initrd: Option<Initrd>,
    /// Address of the device tree.
    pub fdt: u64,
}

/// Parses `booti KERNEL_ADDR INITRD_ADDR:SIZE|- FDT_ADDR`.
pub fn parse_booti(args: &[&str]) -> Result<BootiRequest, CmdError> {
    arity(args, 3, 3)?;
    let kernel = hex(args[1])?;
    let initrd = match args[2] {
        "-" => None,
        spec => {
            let (a, s) = spec
                .split_once(':')
                .ok_or_else(|| CmdError::msg(format_args!("initrd must be ADDR:SIZE or '-'")))?;
            Some(Initrd {
                addr: hex(a)?,
                size: hex(s)?,
            })
        }
    };
    let fdt = hex(args[3])?;
    Ok(BootiRequest {
        kernel,
        initrd,
        fdt,
    })
}

/// Parses `boot` (no arguments).
pub fn parse_boot(args: &[&str]) -> Result<(), CmdError> {
    arity(args, 0, 0)
}

/// The longest kernel command line, in bytes (one byte of the 512 stays
/// for the terminating NUL in the device tree, as in a C buffer).
pub const MAX_BOOTARGS: usize = 511;

/// A kernel command line.
pub type Bootargs = heapless::String<512>;

/// A parsed `bootargs [VALUE...]`. It lives on the stack for one command,
/// as the line it replaces does.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BootargsRequest {
    /// `bootargs`: print it.
    Show,
    /// `bootargs VALUE...`: the words joined by single spaces.
    Set(Bootargs),
}

/// Parses `bootargs [VALUE...]`.
pub fn parse_bootargs(args: &[&str]) -> Result<BootargsRequest, CmdError> {
    let words = operands(args)?;
    if words.is_empty() {
        return Ok(BootargsRequest::Show);
    }
    let mut s = Bootargs::new();
    for (i, a) in words.iter().enumerate() {
        if (i > 0 && s.push(' ').is_err()) || s.push_str(a).is_err() || s.len() > MAX_BOOTARGS {
            return Err(CmdError::msg(format_args!(
                "command line longer than {MAX_BOOTARGS} bytes"
            )));
        }
    }
    Ok(BootargsRequest::Set(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booti_initrd_forms() {
        assert_eq!(
            parse_booti(&["booti", "40480000", "-", "43000000"]),
            Ok(BootiRequest {
                kernel: 0x4048_0000,
                initrd: None,
                fdt: 0x4300_0000
            })
        );
        assert_eq!(
            parse_booti(&["booti", "0", "44000000:1000", "0x1"]).map(|r| r.initrd),
            Ok(Some(Initrd {
                addr: 0x4400_0000,
                size: 0x1000
            }))
        );
        let e = parse_booti(&["booti", "0", "44000000", "1"]).unwrap_err();
        assert_eq!(std::format!("{e}"), "initrd must be ADDR:SIZE or '-'");
    }

    /// Found while writing the property oracle: a 512-byte line was
    /// accepted although the message says the limit is 511 bytes.
    #[test]
    fn regression_bootargs_limit_is_511_bytes() {
        let w = "a".repeat(511);
        assert!(matches!(
            parse_bootargs(&["bootargs", &w]),
            Ok(BootargsRequest::Set(s)) if s.len() == 511
        ));
        let w = "a".repeat(512);
        let e = parse_bootargs(&["bootargs", &w]).unwrap_err();
        assert_eq!(std::format!("{e}"), "command line longer than 511 bytes");
        assert_eq!(parse_bootargs(&["bootargs"]), Ok(BootargsRequest::Show));
    }
}
