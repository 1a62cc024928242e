//! `unlock`: the production console's challenge and token (see
//! `console::lock` and `docs/threat-model.md`).

use super::{CmdError, Command};
use crate::machine::{Machine, outln};
use mfg_formats::unlock::{self, Challenge, NONCE_LEN};

pub const UNLOCK: Command = Command {
    name: "unlock",
    sized: false,
    summary: "unlock console commands with an OEM-signed token (production)",
    usage: "[TOKEN]\n    - without TOKEN: print a challenge (UID, fresh nonce) for the OEM\n    - TOKEN (mfgtool unlock-token): enable the commands it names, this boot only",
    run: unlock_cmd,
};

fn unlock_cmd(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    crate::requests::arity(args, 0, 1)?;
    if !cfg!(feature = "production") {
        outln!(
            m,
            "development build: the console is not locked; nothing to unlock"
        );
        return Ok(());
    }
    let sec = m
        .security
        .as_mut()
        .map_err(|e| CmdError::msg(format_args!("no CAAM/fuses ({e}): cannot unlock")))?;
    let uid = sec.ocotp.unique_id();
    match args.get(1) {
        None => {
            let mut nonce = [0u8; NONCE_LEN];
            sec.caam
                .rng_fill(&mut nonce)
                .map_err(|e| CmdError::msg(format_args!("CAAM RNG: {e}: no challenge")))?;
            m.lock.issue(nonce);
            if m.lock.granted() != 0 {
                let _ = core::fmt::Write::write_str(m, "already unlocked this boot:");
                for n in unlock::command_names(m.lock.granted()) {
                    let _ = core::fmt::Write::write_fmt(m, format_args!(" {n}"));
                }
                outln!(m);
            }
            let c = Challenge { uid, nonce };
            let _ = c.write_line(m);
            outln!(m);
            outln!(
                m,
                "(send this line to the OEM; `unlock TOKEN` with its answer; a new `unlock` replaces it)"
            );
            Ok(())
        }
        Some(token) => {
            let authority = crate::keys::AUTHORITY_PUBKEY;
            let granted = m
                .lock
                .unlock(token, &uid, authority.as_ref())
                .map_err(|e| CmdError::msg(format_args!("refused: {e}")))?;
            let _ = core::fmt::Write::write_str(m, "unlocked for this boot:");
            for n in unlock::command_names(granted) {
                let _ = core::fmt::Write::write_fmt(m, format_args!(" {n}"));
            }
            outln!(m);
            Ok(())
        }
    }
}
