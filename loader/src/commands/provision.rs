//! `provision`: run the manufacturing-protection flow, show its state,
//! verify the blobs.

use super::{CmdError, Command};
use crate::machine::Machine;
use crate::provisioning;
use crate::requests::provision::{ProvisionRequest, parse};

pub const PROVISION: Command = Command {
    name: "provision",
    sized: false,
    summary: "run or inspect the manufacturing-protection provisioning",
    usage: "\n    - run (or resume) sign-ID, decrypt-bundle, blob-encapsulate, consume\nprovision status\n    - state, ID record, blob table, bundle presence\nprovision verify\n    - decapsulate every blob and check it (never prints secrets)",
    run: provision,
};

fn provision(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    match parse(args)? {
        ProvisionRequest::Run => provisioning::run_reported(m).map(|_| ()),
        ProvisionRequest::Status => {
            provisioning::status(m).map_err(|e| CmdError::msg(format_args!("{e}")))
        }
        ProvisionRequest::Verify => match provisioning::verify(m) {
            Ok(0) => Ok(()),
            Ok(n) => Err(CmdError::msg(format_args!(
                "{n} blob(s) failed verification"
            ))),
            Err(e) => Err(CmdError::msg(format_args!("{e}"))),
        },
    }
}
