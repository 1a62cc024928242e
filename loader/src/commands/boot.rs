//! booti, boot (from the eMMC) and bootargs.

use super::{CmdError, Command};
use crate::linux;
use crate::machine::{Machine, outln};
#[cfg(not(feature = "production"))]
use crate::requests::boot::parse_booti;
use crate::requests::boot::{BootargsRequest, parse_boot, parse_bootargs};

#[cfg(not(feature = "production"))]
pub const BOOTI: Command = Command {
    name: "booti",
    sized: false,
    summary: "boot Linux 'Image' format from memory",
    usage: "KERNEL_ADDR INITRD_ADDR:SIZE|- FDT_ADDR\n    - boot the arm64 Image at KERNEL_ADDR with the device tree at FDT_ADDR,\n      and an initramfs at INITRD_ADDR (SIZE bytes), or none with '-'",
    run: booti,
};

pub const BOOTARGS: Command = Command {
    name: "bootargs",
    sized: false,
    summary: "print or set the kernel command line",
    usage: "\n    - print the kernel command line\nbootargs VALUE...\n    - set it for the next boot",
    run: bootargs,
};

#[cfg(feature = "production")]
pub const BOOT: Command = Command {
    name: "boot",
    sized: false,
    summary: "boot the signed FIT in the eMMC's 'boot' partition",
    usage: "\n    - verify the FIT in the 'boot' partition against the built-in boot key and boot it",
    run: boot,
};

#[cfg(not(feature = "production"))]
pub const BOOT: Command = Command {
    name: "boot",
    sized: false,
    summary: "boot Linux from the eMMC (signed FIT, else raw partitions)",
    usage: "\n    - boot the signed FIT in the 'boot' partition if there is one, else load the\n      partitions 'kernel', 'dtb' and, if present, 'initrd' and boot them",
    run: boot,
};

fn bootargs(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    match parse_bootargs(args)? {
        BootargsRequest::Show => {
            let b = m.bootargs.clone();
            outln!(m, "bootargs={}", b.as_str());
        }
        #[cfg(feature = "production")]
        BootargsRequest::Set(_) => {
            return Err(CmdError::msg(format_args!(
                "refused: a production loader takes the kernel command line only from the signed FIT configuration"
            )));
        }
        #[cfg(not(feature = "production"))]
        BootargsRequest::Set(s) => m.bootargs = s,
    }
    Ok(())
}

fn boot(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    parse_boot(args)?;
    linux::boot(m)
}

#[cfg(not(feature = "production"))]
fn booti(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    let r = parse_booti(args)?;
    let initrd = match r.initrd {
        Some(rd) => Some(m.ram(rd.addr, rd.size)?),
        None => None,
    };
    linux::place::start(m, r.kernel, initrd, r.fdt)
}
