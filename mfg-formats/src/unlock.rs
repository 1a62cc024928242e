//! Console unlock: the device's challenge line and the OEM-signed unlock
//! token that enables named console commands of a production loader for
//! one boot.
//!
//! The production console starts locked (see `docs/threat-model.md`).
//! `unlock` prints a [`Challenge`] (the UID from the fuses and a fresh
//! nonce from the CAAM RNG); the OEM signs a [`Token`] over it with the
//! authority key (`mfgtool unlock-token`); `unlock TOKEN` checks it with
//! [`Token::verify`] against the authority public key built into the
//! loader. Byte layout in `docs/formats.md` ("Unlock token").

use crate::FormatError;
use crate::rd::Rd;

/// Token magic: `MFUT` (MFg Unlock Token).
pub const MAGIC: [u8; 4] = *b"MFUT";
/// The token format version this code reads and writes.
pub const VERSION: u16 = 1;
/// Bytes of the nonce in a challenge.
pub const NONCE_LEN: usize = 16;
/// Bytes covered by the signature (everything before it).
pub const SIGNED_LEN: usize = 44;
/// Bytes of a whole token: the signed part and r || s.
pub const TOKEN_LEN: usize = SIGNED_LEN + 64;
/// Characters of a token in base64 (one console line).
pub const TOKEN_B64_LEN: usize = crate::base64::encoded_len(TOKEN_LEN);
/// What starts the challenge line the device prints.
pub const CHALLENGE_PREFIX: &str = "unlock-challenge:";

/// The console commands a token can unlock, by bit number in
/// [`Token::commands`]. Bit `i` unlocks `UNLOCKABLE[i]`. New names are
/// only ever appended (a bit never changes meaning).
pub const UNLOCKABLE: [&str; 11] = [
    "md",
    "mw",
    "mmc",
    "blob",
    "mfgprot",
    "fuse",
    "caam",
    "provision",
    "boot",
    "booti",
    "bootargs",
];

/// Every bit [`UNLOCKABLE`] defines.
pub const KNOWN_COMMANDS: u32 = (1 << UNLOCKABLE.len()) - 1;

/// The bit of an unlockable command name, if it is one.
pub fn command_bit(name: &str) -> Option<u32> {
    UNLOCKABLE
        .iter()
        .position(|&n| n == name)
        .map(|i| 1u32 << i)
}

/// The command names in a mask, in bit order (unknown bits skipped).
pub fn command_names(mask: u32) -> impl Iterator<Item = &'static str> {
    UNLOCKABLE
        .iter()
        .enumerate()
        .filter(move |(i, _)| mask & (1 << i) != 0)
        .map(|(_, &n)| n)
}

/// The device's challenge: its UID and the nonce it issued this boot.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Challenge {
    /// The 128-bit unique ID as the OCOTP reads it.
    pub uid: [u8; 16],
    /// The nonce from the CAAM RNG.
    pub nonce: [u8; NONCE_LEN],
}

impl Challenge {
    /// Writes the challenge line (without a line end):
    /// `unlock-challenge: <uid, 32 hex digits> <nonce, 32 hex digits>`.
    pub fn write_line(&self, w: &mut impl core::fmt::Write) -> core::fmt::Result {
        write!(w, "{CHALLENGE_PREFIX} ")?;
        for b in self.uid {
            write!(w, "{b:02x}")?;
        }
        w.write_char(' ')?;
        for b in self.nonce {
            write!(w, "{b:02x}")?;
        }
        Ok(())
    }

    /// Parses a challenge line: the device's whole line (any text before
    /// the prefix, e.g. a console log's, is skipped) or just the two hex
    /// fields. Hex in either case; nothing may follow the nonce.
    pub fn parse_line(line: &str) -> Result<Self, FormatError> {
        const WHAT: FormatError = FormatError::BadField {
            what: "unlock challenge",
        };
        let rest = match line.find(CHALLENGE_PREFIX) {
            Some(p) => &line[p + CHALLENGE_PREFIX.len()..],
            None => line,
        };
        let mut words = rest.split_ascii_whitespace();
        let (Some(uid), Some(nonce), None) = (words.next(), words.next(), words.next()) else {
            return Err(WHAT);
        };
        Ok(Self {
            uid: hex_exact(uid).ok_or(WHAT)?,
            nonce: hex_exact(nonce).ok_or(WHAT)?,
        })
    }
}

fn hex_exact<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(b.chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

/// Why `unlock TOKEN` was refused. Each message says what to do.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum UnlockError {
    /// Not a token: bad base64, length, magic or reserved field.
    BadFormat(FormatError),
    /// The token is for another device.
    WrongUid,
    /// No challenge was issued this boot (run `unlock` first).
    NoChallenge,
    /// The token answers another (older or later) challenge.
    StaleChallenge,
    /// The signature does not verify with the built-in authority key.
    BadSignature,
    /// The token names a command this loader does not know.
    UnknownCommand,
    /// The token names no command.
    NoCommands,
    /// The loader has no (valid) authority key built in.
    NoAuthorityKey,
}

impl core::fmt::Display for UnlockError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::BadFormat(e) => write!(f, "not an unlock token ({e})"),
            Self::WrongUid => write!(f, "token is for another device (UID differs)"),
            Self::NoChallenge => write!(f, "no challenge issued this boot: run `unlock` first"),
            Self::StaleChallenge => write!(
                f,
                "token answers another challenge (only the latest challenge of this boot counts)"
            ),
            Self::BadSignature => write!(f, "bad signature (not signed by the OEM authority key)"),
            Self::UnknownCommand => write!(f, "token names a command this loader does not know"),
            Self::NoCommands => write!(f, "token names no command"),
            Self::NoAuthorityKey => write!(f, "no authority key built into this loader"),
        }
    }
}

/// An unlock token (see the module documentation).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Token {
    /// The challenge it answers.
    pub challenge: Challenge,
    /// Bit `i` unlocks [`UNLOCKABLE`]`[i]`.
    pub commands: u32,
    /// ECDSA P-256 signature r || s (big-endian, 32 bytes each) over
    /// SHA-256 of [`Token::signed_bytes`], by the authority key.
    pub signature: [u8; 64],
}

impl Token {
    /// The signed part: magic, version, reserved, UID, nonce, commands.
    pub fn signed_bytes(challenge: &Challenge, commands: u32) -> [u8; SIGNED_LEN] {
        let mut b = [0u8; SIGNED_LEN];
        b[0..4].copy_from_slice(&MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        // 6..8 reserved, zero.
        b[8..24].copy_from_slice(&challenge.uid);
        b[24..40].copy_from_slice(&challenge.nonce);
        b[40..44].copy_from_slice(&commands.to_le_bytes());
        b
    }

    /// The token's bytes.
    pub fn to_bytes(&self) -> [u8; TOKEN_LEN] {
        let mut b = [0u8; TOKEN_LEN];
        b[..SIGNED_LEN].copy_from_slice(&Self::signed_bytes(&self.challenge, self.commands));
        b[SIGNED_LEN..].copy_from_slice(&self.signature);
        b
    }

    /// Parses the token's bytes (structure only; [`Token::verify`] checks
    /// the rest).
    pub fn parse(b: &[u8]) -> Result<Self, FormatError> {
        const WHAT: &str = "unlock token";
        if b.len() != TOKEN_LEN {
            return Err(if b.len() < TOKEN_LEN {
                FormatError::Truncated { what: WHAT }
            } else {
                FormatError::BadLength { what: WHAT }
            });
        }
        let mut r = Rd::new(b, WHAT);
        r.magic_version(&MAGIC, VERSION)?;
        if r.u16()? != 0 {
            return Err(FormatError::BadField {
                what: "unlock token reserved",
            });
        }
        let uid = r.arr::<16>()?;
        let nonce = r.arr::<NONCE_LEN>()?;
        let commands = r.u32()?;
        let signature = r.arr::<64>()?;
        Ok(Self {
            challenge: Challenge { uid, nonce },
            commands,
            signature,
        })
    }

    /// Decodes a token from its base64 line (surrounding spaces allowed).
    pub fn from_base64(text: &str) -> Result<Self, FormatError> {
        let mut buf = [0u8; TOKEN_LEN + 3];
        let t = text.trim().as_bytes();
        if t.len() != TOKEN_B64_LEN {
            return Err(FormatError::BadLength {
                what: "unlock token (base64)",
            });
        }
        let n = crate::base64::decode(t, &mut buf)?;
        Self::parse(&buf[..n])
    }

    /// Checks the token against the challenge this boot issued (if any),
    /// this device's UID and the authority public key (X || Y), and returns
    /// the command mask it grants. Refuses a token naming any command this
    /// code does not know.
    pub fn verify(
        &self,
        uid: &[u8; 16],
        issued: Option<&[u8; NONCE_LEN]>,
        authority: &[u8; 64],
    ) -> Result<u32, UnlockError> {
        use p256::ecdsa::signature::Verifier;
        if &self.challenge.uid != uid {
            return Err(UnlockError::WrongUid);
        }
        let issued = issued.ok_or(UnlockError::NoChallenge)?;
        if !ct_eq(&self.challenge.nonce, issued) {
            return Err(UnlockError::StaleChallenge);
        }
        let mut sec1 = [0u8; 65];
        sec1[0] = 4;
        sec1[1..].copy_from_slice(authority);
        let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
            .map_err(|_| UnlockError::NoAuthorityKey)?;
        let sig = p256::ecdsa::Signature::from_slice(&self.signature)
            .map_err(|_| UnlockError::BadSignature)?;
        key.verify(&Self::signed_bytes(&self.challenge, self.commands), &sig)
            .map_err(|_| UnlockError::BadSignature)?;
        if self.commands & !KNOWN_COMMANDS != 0 {
            return Err(UnlockError::UnknownCommand);
        }
        if self.commands == 0 {
            return Err(UnlockError::NoCommands);
        }
        Ok(self.commands)
    }
}

/// Compares without an early exit.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use p256::ecdsa::{Signature, SigningKey, signature::Signer};
    use proptest::prelude::*;
    use std::string::String;

    const UID: [u8; 16] = *b"\x01\x23\x45\x67\x89\xab\xcd\xef\xfe\xdc\xba\x98\x76\x54\x32\x10";
    const NONCE: [u8; 16] = [0x5a; 16];

    fn key(seed: u8) -> (SigningKey, [u8; 64]) {
        let k = SigningKey::from_slice(&[seed; 32]).unwrap();
        let p = k.verifying_key().to_sec1_point(false);
        (k, p.as_bytes()[1..].try_into().unwrap())
    }

    fn sign(k: &SigningKey, c: Challenge, commands: u32) -> Token {
        let sig: Signature = k.sign(&Token::signed_bytes(&c, commands));
        Token {
            challenge: c,
            commands,
            signature: sig.to_bytes().as_slice().try_into().unwrap(),
        }
    }

    fn challenge() -> Challenge {
        Challenge {
            uid: UID,
            nonce: NONCE,
        }
    }

    #[test]
    fn command_bits_and_names() {
        assert_eq!(command_bit("md"), Some(1));
        assert_eq!(command_bit("mw"), Some(2));
        assert_eq!(command_bit("bootargs"), Some(1 << 10));
        assert_eq!(command_bit("md.b"), None);
        assert_eq!(command_bit("help"), None);
        let names: std::vec::Vec<_> = command_names(0b101 | 1 << 31).collect();
        assert_eq!(names, ["md", "mmc"]);
        assert_eq!(KNOWN_COMMANDS, 0x7ff);
    }

    #[test]
    fn challenge_line_round_trip() {
        let c = challenge();
        let mut s = String::new();
        c.write_line(&mut s).unwrap();
        assert_eq!(
            s,
            "unlock-challenge: 0123456789abcdeffedcba9876543210 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
        );
        assert_eq!(Challenge::parse_line(&s), Ok(c));
        assert_eq!(Challenge::parse_line(&std::format!("=> x\r {s}\r")), Ok(c));
        assert_eq!(Challenge::parse_line(&s.to_uppercase()[17..]), Ok(c));
        assert!(Challenge::parse_line(&std::format!("{s} 00")).is_err());
        assert!(Challenge::parse_line(&s[..s.len() - 1]).is_err());
        assert!(Challenge::parse_line("unlock-challenge: zz").is_err());
        assert!(Challenge::parse_line("").is_err());
    }

    #[test]
    fn a_valid_token_grants_exactly_its_commands() {
        let (k, pk) = key(3);
        let t = sign(&k, challenge(), 0b1);
        assert_eq!(t.verify(&UID, Some(&NONCE), &pk), Ok(1));
        let bytes = t.to_bytes();
        assert_eq!(bytes.len(), 108);
        assert_eq!(&bytes[..4], b"MFUT");
        assert_eq!(Token::parse(&bytes), Ok(t));
        let mut b64 = [0u8; TOKEN_B64_LEN];
        crate::base64::encode(&bytes, &mut b64).unwrap();
        let line = core::str::from_utf8(&b64).unwrap();
        assert_eq!(Token::from_base64(&std::format!(" {line}\r\n")), Ok(t));
    }

    #[test]
    fn each_refusal_is_specific() {
        let (k, pk) = key(3);
        let (other, other_pk) = key(4);
        let c = challenge();
        let t = sign(&k, c, 0b11);
        let mut uid2 = UID;
        uid2[15] ^= 1;
        assert_eq!(
            t.verify(&uid2, Some(&NONCE), &pk),
            Err(UnlockError::WrongUid)
        );
        assert_eq!(t.verify(&UID, None, &pk), Err(UnlockError::NoChallenge));
        assert_eq!(
            t.verify(&UID, Some(&[0x5b; 16]), &pk),
            Err(UnlockError::StaleChallenge)
        );
        assert_eq!(
            t.verify(&UID, Some(&NONCE), &other_pk),
            Err(UnlockError::BadSignature)
        );
        assert_eq!(
            sign(&other, c, 1).verify(&UID, Some(&NONCE), &pk),
            Err(UnlockError::BadSignature)
        );
        assert_eq!(
            sign(&k, c, 1 << 11).verify(&UID, Some(&NONCE), &pk),
            Err(UnlockError::UnknownCommand)
        );
        assert_eq!(
            sign(&k, c, 0).verify(&UID, Some(&NONCE), &pk),
            Err(UnlockError::NoCommands)
        );
        assert_eq!(
            t.verify(&UID, Some(&NONCE), &[0; 64]),
            Err(UnlockError::NoAuthorityKey)
        );
        // Commands widened after signing.
        let mut wider = t;
        wider.commands |= 0b100;
        assert_eq!(
            wider.verify(&UID, Some(&NONCE), &pk),
            Err(UnlockError::BadSignature)
        );
        let b = t.to_bytes();
        assert!(matches!(
            Token::parse(&b[..107]),
            Err(FormatError::Truncated { .. })
        ));
        let mut long = [0u8; 109];
        long[..108].copy_from_slice(&b);
        assert!(matches!(
            Token::parse(&long),
            Err(FormatError::BadLength { .. })
        ));
        let mut m = b;
        m[0] = b'X';
        assert!(matches!(
            Token::parse(&m),
            Err(FormatError::BadMagic { .. })
        ));
        let mut m = b;
        m[4] = 2;
        assert!(matches!(
            Token::parse(&m),
            Err(FormatError::UnsupportedVersion { version: 2, .. })
        ));
        let mut m = b;
        m[7] = 1;
        assert!(matches!(
            Token::parse(&m),
            Err(FormatError::BadField { .. })
        ));
        assert!(Token::from_base64("not base64 at all").is_err());
        assert!(Token::from_base64(&"A".repeat(TOKEN_B64_LEN)).is_err());
    }

    proptest! {
        #![proptest_config(crate::tests::config(256))]

        /// Any token with one byte changed (or one bit flipped) is refused:
        /// by the parser or by `verify`.
        #[test]
        fn prop_mutated_tokens_are_refused(
            pos in 0usize..TOKEN_LEN,
            x in 1u8..=255,
            mask in 1u32..=KNOWN_COMMANDS,
        ) {
            let (k, pk) = key(9);
            let t = sign(&k, challenge(), mask);
            prop_assert_eq!(t.verify(&UID, Some(&NONCE), &pk), Ok(mask));
            let mut b = t.to_bytes();
            b[pos] ^= x;
            let refused = match Token::parse(&b) {
                Err(_) => true,
                Ok(m) => m.verify(&UID, Some(&NONCE), &pk).is_err(),
            };
            prop_assert!(refused, "mutated byte {} ^ {:#x} accepted", pos, x);
        }

        #[test]
        fn prop_arbitrary_text_never_panics(s in ".{0,300}") {
            let _ = Token::from_base64(&s);
            let _ = Challenge::parse_line(&s);
        }
    }
}
