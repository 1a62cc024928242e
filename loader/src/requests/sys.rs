//! `help`, `echo`, and the commands without arguments (`version`,
//! `bdinfo`, `reset`, `poweroff`).

use super::{CmdError, arity, operands};

/// A parsed `help [COMMAND...]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HelpRequest<'a, 'b> {
    /// `help`: one line per command.
    All,
    /// `help CMD...`: these commands' usage, in order.
    Commands(&'a [&'b str]),
}

/// Parses `help [COMMAND...]` (the names are looked up when it runs).
pub fn parse_help<'a, 'b>(args: &'a [&'b str]) -> Result<HelpRequest<'a, 'b>, CmdError> {
    let names = operands(args)?;
    Ok(if names.is_empty() {
        HelpRequest::All
    } else {
        HelpRequest::Commands(names)
    })
}

/// Parses `echo [ARGS...]`: the words to print, separated by one space.
pub fn parse_echo<'a, 'b>(args: &'a [&'b str]) -> Result<&'a [&'b str], CmdError> {
    operands(args)
}

/// Parses a command that takes no arguments (`version`, `bdinfo`, `reset`,
/// `poweroff`).
pub fn parse_bare(args: &[&str]) -> Result<(), CmdError> {
    arity(args, 0, 0)
}
