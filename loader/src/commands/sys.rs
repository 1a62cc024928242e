//! help, version, bdinfo, echo, reset, poweroff.

use super::{COMMANDS, CmdError, Command, find, print_usage};
use crate::arch::{layout, psci};
use crate::console::lock;
use crate::machine::{Machine, outln};
use crate::requests::sys::{HelpRequest, parse_bare, parse_echo, parse_help};
use board::{Current, Platform};

pub const HELP: Command = Command {
    name: "help",
    sized: false,
    summary: "print command description/usage",
    usage: "\n    - print brief description of all commands\nhelp command ...\n    - print detailed usage of 'command'",
    run: help,
};

fn help(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    let names = match parse_help(args)? {
        HelpRequest::All => {
            for c in COMMANDS {
                // A locked production console says which commands need a token.
                let locked =
                    cfg!(feature = "production") && !m.lock.allows(lock::access(c.name, &[c.name]));
                let tag = if locked { " [locked]" } else { "" };
                outln!(m, "{:<10}- {}{}", c.name, c.summary, tag);
            }
            return Ok(());
        }
        HelpRequest::Commands(names) => names,
    };
    for &name in names {
        match find(name) {
            Some(c) => {
                outln!(m, "{} - {}", c.name, c.summary);
                outln!(m);
                print_usage(m, c);
            }
            None => {
                return Err(CmdError::msg(format_args!(
                    "Unknown command '{name}' - try 'help'"
                )));
            }
        }
    }
    Ok(())
}

pub const VERSION: Command = Command {
    name: "version",
    sized: false,
    summary: "print the loader version",
    usage: "",
    run: version,
};

fn version(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    parse_bare(args)?;
    outln!(
        m,
        "{} {} ({}{})",
        crate::NAME,
        crate::VERSION,
        Current::ID,
        production_tag()
    );
    Ok(())
}

/// `, production` in production builds.
pub fn production_tag() -> &'static str {
    if cfg!(feature = "production") {
        ", production"
    } else {
        ""
    }
}

pub const BDINFO: Command = Command {
    name: "bdinfo",
    sized: false,
    summary: "print board info structure",
    usage: "",
    run: bdinfo,
};

fn bdinfo(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    parse_bare(args)?;
    let (start, end) = m.dram();
    let el: u64;
    // SAFETY: reading CurrentEL has no side effects.
    unsafe { core::arch::asm!("mrs {}, CurrentEL", out(reg) el, options(nomem, nostack)) };
    let dtb = m.dtb;
    outln!(m, "boardname   = {}", Current::NAME);
    outln!(m, "DRAM bank   = 0x0000000000000000");
    outln!(m, "-> start    = 0x{:016x}", start);
    outln!(m, "-> size     = 0x{:016x}", end - start);
    outln!(m, "current el  = {}", (el >> 2) & 3);
    outln!(m, "load addr   = 0x{:016x}", layout::image_start());
    outln!(
        m,
        "image size  = 0x{:x}",
        layout::image_end() - layout::image_start()
    );
    outln!(m, "fdt addr    = 0x{:016x}", dtb);
    outln!(m, "loader ver  = {} {}", crate::NAME, crate::VERSION);
    Ok(())
}

pub const ECHO: Command = Command {
    name: "echo",
    sized: false,
    summary: "echo args to console",
    usage: "[args..]\n    - echo args to console",
    run: echo,
};

fn echo(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    for (i, a) in parse_echo(args)?.iter().enumerate() {
        if i > 0 {
            m.console.write_byte(b' ');
        }
        m.console.write_bytes(a.as_bytes());
    }
    outln!(m);
    Ok(())
}

pub const RESET: Command = Command {
    name: "reset",
    sized: false,
    summary: "Perform RESET of the CPU",
    usage: "",
    run: reset,
};

fn reset(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    parse_bare(args)?;
    outln!(m, "resetting ...");
    m.console.flush();
    psci::system_reset();
    Err(CmdError::msg(format_args!("PSCI SYSTEM_RESET refused")))
}

pub const POWEROFF: Command = Command {
    name: "poweroff",
    sized: false,
    summary: "Perform POWEROFF of the device",
    usage: "",
    run: poweroff,
};

fn poweroff(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    parse_bare(args)?;
    outln!(m, "poweroff ...");
    m.console.flush();
    psci::system_off();
    Err(CmdError::msg(format_args!("PSCI SYSTEM_OFF refused")))
}
