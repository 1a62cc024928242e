//! `provision [status|verify]`.

use super::{CmdError, arity, unknown_subcommand};

/// A parsed `provision` command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProvisionRequest {
    /// `provision`: run (or resume) the flow.
    Run,
    /// `provision status`.
    Status,
    /// `provision verify`.
    Verify,
}

/// Parses `provision [status|verify]`.
pub fn parse(args: &[&str]) -> Result<ProvisionRequest, CmdError> {
    arity(args, 0, 1)?;
    match args.get(1).copied() {
        None => Ok(ProvisionRequest::Run),
        Some("status") => Ok(ProvisionRequest::Status),
        Some("verify") => Ok(ProvisionRequest::Verify),
        Some(other) => Err(unknown_subcommand(other)),
    }
}
