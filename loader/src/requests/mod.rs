//! What each console command asks for: its arguments, parsed and checked
//! into a typed request without touching the hardware.
//!
//! This half of every command is portable and host-tested (see `props.rs`);
//! the other half, `crate::commands`, runs on the target and executes the
//! request. A command's `run` is parse-then-execute, so everything refused
//! here is refused before any state changes. The errors are the ones the
//! console prints (`CMD: message`).

pub mod boot;
pub mod mem;
pub mod mmc;
pub mod provision;
pub mod security;
pub mod sys;

#[cfg(test)]
mod props;

use crate::console::args::ArgError;
use core::fmt;

/// Why a command failed. Printed as `CMD: message`. It lives on the stack
/// for one command; its size (about 256 bytes) buys whole messages.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
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

/// Checks the argument count (`args[0]` is the command): `min..=max`
/// arguments after it.
pub fn arity(args: &[&str], min: usize, max: usize) -> Result<(), CmdError> {
    if args.len() < min.saturating_add(1) {
        Err(CmdError::MissingArgument)
    } else if args.len() > max.saturating_add(1) {
        Err(CmdError::TooManyArguments)
    } else {
        Ok(())
    }
}

/// The arguments after the command name (a list without even the name has
/// none to give: the dispatcher always passes the name).
pub fn operands<'a, 'b>(args: &'a [&'b str]) -> Result<&'a [&'b str], CmdError> {
    args.get(1..).ok_or(CmdError::MissingArgument)
}

/// `count must be at least 1`, the refusal every counted command shares.
pub fn nonzero_count(count: u64) -> Result<(), CmdError> {
    if count == 0 {
        Err(CmdError::msg(format_args!("count must be at least 1")))
    } else {
        Ok(())
    }
}

/// `unknown subcommand 'X'`.
pub fn unknown_subcommand(name: &str) -> CmdError {
    CmdError::msg(format_args!("unknown subcommand '{name}'"))
}

/// The message of a refusal (unit tests of the parsers).
#[cfg(test)]
pub(crate) fn test_message(r: Result<impl core::fmt::Debug, CmdError>) -> std::string::String {
    std::format!("{}", r.unwrap_err())
}
