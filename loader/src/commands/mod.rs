//! The console command table and dispatcher. Each command parses its
//! arguments into a typed request (`crate::requests`, host-tested), then
//! executes it here; errors are [`CmdError`]s, and nothing refused while
//! parsing changes state.

pub mod boot;
#[cfg(not(feature = "production"))]
mod debug;
mod mem;
pub mod mmc;
pub mod provision;
mod security;
mod sys;
mod unlock;

pub use sys::production_tag;

pub use crate::requests::CmdError;
/// For `crash`, which parses its one word itself (debug builds only).
#[cfg(not(feature = "production"))]
use crate::requests::arity;

use crate::console::{args, lock};
use crate::machine::{Machine, outln};

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

/// Every command, in `help` order.
pub static COMMANDS: &[Command] = &[
    sys::BDINFO,
    security::BLOB,
    boot::BOOT,
    boot::BOOTARGS,
    #[cfg(not(feature = "production"))]
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
    unlock::UNLOCK,
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
    // The production console runs a locked command only once an OEM token
    // unlocked it this boot (`console::lock`); development builds do not lock.
    if cfg!(feature = "production") && !m.lock.allows(lock::access(cmd.name, &words)) {
        outln!(m, "{}: {}", name, lock::LOCKED);
        return;
    }
    if let Err(e) = (cmd.run)(m, &words) {
        outln!(m, "{}: {}", name, e);
        if matches!(e, CmdError::MissingArgument | CmdError::TooManyArguments) {
            print_usage(m, cmd);
        }
    }
}
