//! The production console lock (principle 2 of the provisioning design):
//! which commands a locked console runs, and the unlock state of this boot.
//!
//! Default deny: a command is free only if it is in [`FREE`] (or is
//! `provision status`); any other command runs only once a token naming it
//! was accepted this boot ([`mfg_formats::unlock`]), and a command the
//! token format cannot name is never available. Development builds do not
//! lock (the dispatcher does not ask).

use mfg_formats::unlock::{self, NONCE_LEN, Token, UnlockError};

/// Commands a locked production console runs: they cannot read memory,
/// run CAAM jobs or write the eMMC (argued in `docs/threat-model.md`).
pub const FREE: [&str; 7] = [
    "help", "version", "bdinfo", "echo", "reset", "poweroff", "unlock",
];

/// The refusal printed for a locked command.
pub const LOCKED: &str = "locked: `unlock` first (production build)";

/// What a command needs on a locked console.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    /// Always available.
    Free,
    /// Available once a token grants this bit.
    Unlockable(u32),
    /// Never available in a production build (no token can name it).
    Never,
}

/// The access rule for a command (`name` without a `.b/.w/...` suffix;
/// `args[0]` is the name as typed).
pub fn access(name: &str, args: &[&str]) -> Access {
    if FREE.contains(&name) {
        return Access::Free;
    }
    if name == "provision" && args.len() == 2 && args[1] == "status" {
        return Access::Free;
    }
    match unlock::command_bit(name) {
        Some(bit) => Access::Unlockable(bit),
        None => Access::Never,
    }
}

/// This boot's unlock state: the one outstanding challenge and the
/// commands granted so far. Never stored: a reset locks again.
#[derive(Default, Debug)]
pub struct Lock {
    challenge: Option<[u8; NONCE_LEN]>,
    granted: u32,
}

impl Lock {
    /// A locked console.
    pub const fn new() -> Self {
        Self {
            challenge: None,
            granted: 0,
        }
    }

    /// Whether a command with this access may run.
    pub fn allows(&self, a: Access) -> bool {
        match a {
            Access::Free => true,
            Access::Unlockable(bit) => self.granted & bit == bit,
            Access::Never => false,
        }
    }

    /// Records a new challenge; any earlier one is no longer accepted.
    pub fn issue(&mut self, nonce: [u8; NONCE_LEN]) {
        self.challenge = Some(nonce);
    }

    /// Checks a token's base64 line against this boot's challenge, the UID
    /// and the authority key; on success grants its commands, consumes the
    /// challenge (a token is good once) and returns the granted mask.
    pub fn unlock(
        &mut self,
        text: &str,
        uid: &[u8; 16],
        authority: Option<&[u8; 64]>,
    ) -> Result<u32, UnlockError> {
        let authority = authority.ok_or(UnlockError::NoAuthorityKey)?;
        let token = Token::from_base64(text).map_err(UnlockError::BadFormat)?;
        let mask = token.verify(uid, self.challenge.as_ref(), authority)?;
        self.challenge = None;
        self.granted |= mask;
        Ok(mask)
    }

    /// The commands granted this boot.
    pub fn granted(&self) -> u32 {
        self.granted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mfg_formats::unlock::{Challenge, TOKEN_B64_LEN};
    use p256::ecdsa::{Signature, SigningKey, signature::Signer};

    const UID: [u8; 16] = [0x42; 16];

    fn key() -> (SigningKey, [u8; 64]) {
        let k = SigningKey::from_slice(&[0x31; 32]).unwrap();
        let p = k.verifying_key().to_sec1_point(false);
        (k, p.as_bytes()[1..].try_into().unwrap())
    }

    fn token(k: &SigningKey, uid: [u8; 16], nonce: [u8; 16], mask: u32) -> std::string::String {
        let c = Challenge { uid, nonce };
        let sig: Signature = k.sign(&Token::signed_bytes(&c, mask));
        let t = Token {
            challenge: c,
            commands: mask,
            signature: sig.to_bytes().as_slice().try_into().unwrap(),
        };
        let mut b = [0u8; TOKEN_B64_LEN];
        mfg_formats::base64::encode(&t.to_bytes(), &mut b).unwrap();
        std::string::String::from_utf8(b.to_vec()).unwrap()
    }

    #[test]
    fn the_rules() {
        for c in FREE {
            assert_eq!(access(c, &[c]), Access::Free);
        }
        assert_eq!(access("provision", &["provision", "status"]), Access::Free);
        assert!(matches!(
            access("provision", &["provision"]),
            Access::Unlockable(_)
        ));
        assert!(matches!(
            access("provision", &["provision", "verify"]),
            Access::Unlockable(_)
        ));
        assert!(matches!(
            access("provision", &["provision", "status", "x"]),
            Access::Unlockable(_)
        ));
        for c in [
            "md", "mw", "mmc", "blob", "mfgprot", "fuse", "caam", "boot", "booti", "bootargs",
        ] {
            assert!(matches!(access(c, &[c]), Access::Unlockable(_)), "{c}");
        }
        // Unknown to the token format: never.
        assert_eq!(access("crash", &["crash"]), Access::Never);
        let l = Lock::new();
        assert!(l.allows(Access::Free));
        assert!(!l.allows(Access::Never));
        assert!(!l.allows(access("md", &["md"])));
    }

    #[test]
    fn unlock_grants_exactly_the_named_commands_once() {
        let (k, pk) = key();
        let mut l = Lock::new();
        let t = token(&k, UID, [1; 16], 1);
        assert_eq!(l.unlock(&t, &UID, Some(&pk)), Err(UnlockError::NoChallenge));
        l.issue([1; 16]);
        assert_eq!(l.unlock(&t, &UID, None), Err(UnlockError::NoAuthorityKey));
        assert_eq!(l.unlock(&t, &UID, Some(&pk)), Ok(1));
        assert!(l.allows(access("md", &["md"])));
        assert!(!l.allows(access("mw", &["mw"])));
        // The challenge was consumed: the same token does not work twice.
        assert_eq!(l.unlock(&t, &UID, Some(&pk)), Err(UnlockError::NoChallenge));
    }

    #[test]
    fn a_new_challenge_invalidates_the_old_one() {
        let (k, pk) = key();
        let mut l = Lock::new();
        l.issue([1; 16]);
        let t1 = token(&k, UID, [1; 16], 2);
        l.issue([2; 16]);
        assert_eq!(
            l.unlock(&t1, &UID, Some(&pk)),
            Err(UnlockError::StaleChallenge)
        );
        let other = token(&k, [0x43; 16], [2; 16], 2);
        assert_eq!(
            l.unlock(&other, &UID, Some(&pk)),
            Err(UnlockError::WrongUid)
        );
        assert!(matches!(
            l.unlock("xyz", &UID, Some(&pk)),
            Err(UnlockError::BadFormat(_))
        ));
        assert_eq!(l.granted(), 0);
        let t2 = token(&k, UID, [2; 16], 2);
        assert_eq!(l.unlock(&t2, &UID, Some(&pk)), Ok(2));
        assert!(l.allows(access("mw", &["mw"])));
        assert!(!l.allows(access("md", &["md"])));
    }
}
