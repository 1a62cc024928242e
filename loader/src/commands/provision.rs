//! `provision`: run the manufacturing-protection flow, show its state,
//! verify the blobs.

use super::{CmdError, Command};
use crate::arch::Scrub;
use crate::machine::{Machine, outln};
use crate::provisioning::{self, Outcome};
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
        ProvisionRequest::Run => run(m).map(|_| ()),
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

/// Runs the flow; prints the outcome.
pub fn run(m: &mut Machine) -> Result<Outcome, CmdError> {
    // Once the flow returned, its frames (bundle key, plaintext secrets,
    // and the CAAM model's derived keys on the exception stack) are zeroed.
    let r = crate::arch::scrubbing(Scrub::All, || provisioning::run(m));
    match r {
        Ok(Outcome::AlreadyProvisioned) => {
            outln!(m, "provision: already provisioned; nothing to do")
        }
        Ok(Outcome::NoBundle) => outln!(m, "provision: blank device and no bundle; nothing to do"),
        Ok(Outcome::Provisioned) => {}
        Err(ref e) => return Err(CmdError::msg(format_args!("refused: {e}"))),
    }
    r.map_err(|e| CmdError::msg(format_args!("{e}")))
}
