//! The OEM key set a loader build takes its public keys from.
//!
//! A key set is a directory: `keyset.toml` (`kind = "development"` or
//! `"production"`), and for each of `record` and `authority` a private key
//! `NAME.pem` (P-256, PKCS#8) and its public key `NAME.pub` (one line: 128
//! hex digits, x || y). The loader build gets the public halves as
//! `MFG_RECORD_PUBKEY` and `MFG_AUTHORITY_PUBKEY`. Builds use a development
//! set made once in `target/keys/dev`. (The FIT boot key is still its own
//! build input, `MFG_BOOT_KEY`: `docs/verified-boot.md`.)

use crate::Result;
use p256::pkcs8::{EncodePrivateKey, LineEnding};
use std::fs;
use std::path::{Path, PathBuf};

/// The keys of a set, in the order of their build variables.
pub const KEYS: [(&str, &str); 2] = [
    ("record", "MFG_RECORD_PUBKEY"),
    ("authority", "MFG_AUTHORITY_PUBKEY"),
];

/// The development key set, made on first use. Several builds may race to
/// make it (parallel test processes): each makes its own in a temporary
/// directory and renames it into place; the first rename wins, and every
/// build uses the winner's keys.
pub fn dev_keyset() -> Result<PathBuf> {
    let dir = qemu_tests::dev_keys();
    if dir.join("keyset.toml").exists() {
        return Ok(dir);
    }
    let parent = dir.parent().ok_or("no parent for the key set")?;
    fs::create_dir_all(parent)?;
    let tmp = parent.join(format!("dev.tmp.{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    write_keyset(&tmp, "development")?;
    if fs::rename(&tmp, &dir).is_err() {
        // Another build made it first.
        let _ = fs::remove_dir_all(&tmp);
    }
    if !dir.join("keyset.toml").exists() {
        return Err(format!("no key set in {}", dir.display()).into());
    }
    Ok(dir)
}

/// Writes a new key set of `kind` into `dir` (which must not exist).
pub fn write_keyset(dir: &Path, kind: &str) -> Result<()> {
    fs::create_dir(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, _) in KEYS {
        let key = new_key()?;
        let pem = key
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|e| format!("cannot encode the {name} key: {e}"))?;
        write_private(&dir.join(format!("{name}.pem")), pem.as_bytes())?;
        let point = key.public_key().to_sec1_bytes();
        let hex: String = point[1..].iter().map(|b| format!("{b:02x}")).collect();
        fs::write(dir.join(format!("{name}.pub")), format!("{hex}\n"))?;
    }
    fs::write(dir.join("keyset.toml"), format!("kind = \"{kind}\"\n"))?;
    Ok(())
}

fn new_key() -> Result<p256::SecretKey> {
    loop {
        let mut b = [0u8; 32];
        getrandom::fill(&mut b).map_err(|e| format!("no OS randomness: {e}"))?;
        if let Ok(k) = p256::SecretKey::from_slice(&b) {
            return Ok(k);
        }
    }
}

fn write_private(path: &Path, data: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(data)?;
    Ok(())
}

/// The build variables for the key set in `dir`: (name, 128 hex digits).
pub fn build_env(dir: &Path) -> Result<Vec<(&'static str, String)>> {
    let mut env = Vec::new();
    for (name, var) in KEYS {
        let path = dir.join(format!("{name}.pub"));
        let hex = fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .trim()
            .to_string();
        if hex.len() != 128 || !hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!("{}: not 128 hex digits", path.display()).into());
        }
        env.push((var, hex));
    }
    Ok(env)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_key_set_gives_its_public_keys_to_the_build() {
        let dir = std::env::temp_dir().join(format!("xtask-keys-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        write_keyset(&dir, "development").unwrap();
        let kind = fs::read_to_string(dir.join("keyset.toml")).unwrap();
        assert_eq!(kind, "kind = \"development\"\n");
        let env = build_env(&dir).unwrap();
        assert_eq!(env.len(), 2);
        for ((name, var), (v, hex)) in KEYS.iter().zip(&env) {
            assert_eq!(var, v);
            let pem = fs::read_to_string(dir.join(format!("{name}.pem"))).unwrap();
            use p256::pkcs8::DecodePrivateKey;
            let k = p256::SecretKey::from_pkcs8_pem(&pem).unwrap();
            let p = k.public_key().to_sec1_bytes();
            let want: String = p[1..].iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(&want, hex);
        }
        assert!(
            write_keyset(&dir, "development").is_err(),
            "overwrote a key set"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
