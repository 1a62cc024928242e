//! The console command table and dispatcher. Each command parses its own
//! arguments and reports errors through [`CmdError`]; nothing it refuses
//! changes state.

pub mod boot;
#[cfg(not(feature = "production"))]
mod debug;
mod mem;
pub mod mmc;
pub mod provision;
mod security;
mod sys;

pub use sys::production_tag;

use crate::console::args::{self, ArgError};
use crate::machine::{Machine, outln};
use core::fmt;

/// A console command.
pub struct Command {
    /// Name (without a `.b/.w/.l/.q` suffix for the memory commands).
    pub name: &'static str,
    /// Whether `name.b` etc. are accepted.
    pub sized: bool,
    /// One-line description for `help`.
    pub summary: &'static str,
    /// Usage text for `help CMD` and usage errors (lines without the name).
    pub usage: &'static str,
    /// Runs the command: `args[0]` is the name as typed.
    pub run: fn(&mut Machine, &[&str]) -> Result<(), CmdError>,
}

/// Why a command failed. Printed as `CMD: message`. It lives on the stack
/// for one command; its size (about 256 bytes) buys whole messages.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum CmdError {
    /// Too few arguments (usage is printed).
    MissingArgument,
    /// Too many arguments (usage is printed).
    TooManyArguments,
    /// An argument is not a number.
    BadNumber(heapless::String<24>),
    /// Any other refusal, with its message.
    Msg(heapless::String<240>),
}

impl CmdError {
    /// A refusal with a formatted message (truncated if very long).
    pub fn msg(args: fmt::Arguments<'_>) -> Self {
        let mut s = heapless::String::new();
        let _ = fmt::write(&mut Truncate(&mut s), args);
        Self::Msg(s)
    }
}

/// Writes into a fixed string, dropping what does not fit.
struct Truncate<'a, const N: usize>(&'a mut heapless::String<N>);

impl<const N: usize> fmt::Write for Truncate<'_, N> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.0.push(c).is_err() {
                break;
            }
        }
        Ok(())
    }
}

impl From<ArgError<'_>> for CmdError {
    fn from(e: ArgError<'_>) -> Self {
        match e {
            ArgError::BadNumber(s) => {
                let mut t = heapless::String::new();
                let _ = fmt::write(&mut Truncate(&mut t), format_args!("{s}"));
                Self::BadNumber(t)
            }
            other => Self::msg(format_args!("{other}")),
        }
    }
}

impl fmt::Display for CmdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MissingArgument => f.write_str("missing argument"),
            Self::TooManyArguments => f.write_str("too many arguments"),
            Self::BadNumber(s) => write!(f, "bad number '{s}'"),
            Self::Msg(s) => f.write_str(s),
        }
    }
}

/// Every command, in `help` order.
pub static COMMANDS: &[Command] = &[
    sys::BDINFO,
    security::BLOB,
    boot::BOOT,
    boot::BOOTARGS,
    boot::BOOTI,
    security::CAAM,
    #[cfg(not(feature = "production"))]
    debug::CRASH,
    sys::ECHO,
    security::FUSE,
    sys::HELP,
    mem::MD,
    security::MFGPROT,
    mmc::MMC,
    mem::MW,
    sys::POWEROFF,
    provision::PROVISION,
    sys::RESET,
    sys::VERSION,
];

/// Finds a command by the name as typed (`md.b` finds `md`).
pub fn find(typed: &str) -> Option<&'static Command> {
    let (base, _) = args::width_suffix(typed)?;
    COMMANDS.iter().find(|c| {
        if c.sized {
            c.name == base
        } else {
            c.name == typed
        }
    })
}

/// Checks the argument count (`args[0]` is the command).
pub fn arity(args: &[&str], min: usize, max: usize) -> Result<(), CmdError> {
    if args.len() < min + 1 {
        Err(CmdError::MissingArgument)
    } else if args.len() > max + 1 {
        Err(CmdError::TooManyArguments)
    } else {
        Ok(())
    }
}

/// Prints a command's usage block.
pub fn print_usage(m: &mut Machine, c: &Command) {
    outln!(m, "Usage:");
    for l in c.usage.lines() {
        outln!(m, "{} {}", c.name, l);
    }
}

/// Runs one console line.
pub fn execute(m: &mut Machine, line: &str) {
    let words = match args::split(line) {
        Ok(w) => w,
        Err(e) => {
            outln!(m, "{}", e);
            return;
        }
    };
    let Some(&name) = words.first() else {
        return;
    };
    let Some(cmd) = find(name) else {
        outln!(m, "Unknown command '{}' - try 'help'", name);
        return;
    };
    if let Err(e) = (cmd.run)(m, &words) {
        outln!(m, "{}: {}", name, e);
        if matches!(e, CmdError::MissingArgument | CmdError::TooManyArguments) {
            print_usage(m, cmd);
        }
    }
}
