//! The OEM key set a loader build takes (`cargo xtask build --keys DIR`):
//! its public halves become the loader's `MFG_RECORD_PUBKEY`,
//! `MFG_AUTHORITY_PUBKEY` and `MFG_BOOT_PUBKEY` (128 hex digits X || Y
//! each). Without `--keys`, a development key set is made once in
//! `target/keys/dev` (by `mfgtool keys new --dev`) and used. A production
//! build refuses a development key set unless `--allow-dev-keys`.

use crate::Result;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The loader's build-time variables, in the key set's order.
pub const ENV: [(&str, &str); 3] = [
    ("MFG_RECORD_PUBKEY", "record"),
    ("MFG_AUTHORITY_PUBKEY", "authority"),
    ("MFG_BOOT_PUBKEY", "boot"),
];

/// A key set's public side as the build uses it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEnv {
    /// Where it was read.
    pub dir: PathBuf,
    /// `kind = "development"` in `keyset.toml`.
    pub development: bool,
    /// The three public keys (hex), in [`ENV`] order.
    pub public: [String; 3],
}

impl KeyEnv {
    /// Sets the three variables on a cargo command.
    pub fn apply(&self, cmd: &mut Command) {
        for ((var, _), value) in ENV.iter().zip(&self.public) {
            cmd.env(var, value);
        }
    }
}

/// Reads `DIR/keyset.toml` and `DIR/{record,authority,boot}.pub`.
pub fn load(dir: &Path) -> Result<KeyEnv> {
    let toml_path = dir.join("keyset.toml");
    let toml = fs::read_to_string(&toml_path).map_err(|e| {
        format!(
            "--keys {}: no key set ({}: {e}; make one with mfgtool keys new)",
            dir.display(),
            toml_path.display()
        )
    })?;
    let kind = toml
        .lines()
        .filter_map(|l| l.split_once('='))
        .find(|(k, _)| k.trim() == "kind")
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .ok_or_else(|| format!("{}: no kind = \"...\"", toml_path.display()))?;
    let development = match kind.as_str() {
        "development" => true,
        "production" => false,
        other => {
            return Err(format!(
                "{}: kind \"{other}\" (expected development or production)",
                toml_path.display()
            )
            .into());
        }
    };
    let mut public: [String; 3] = Default::default();
    for ((_, name), out) in ENV.iter().zip(public.iter_mut()) {
        let p = dir.join(format!("{name}.pub"));
        let s = fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
        let s = s.trim();
        if s.len() != 128
            || !s
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(format!(
                "{}: expected one line of 128 lowercase hex digits (X || Y)",
                p.display()
            )
            .into());
        }
        *out = s.to_string();
    }
    Ok(KeyEnv {
        dir: dir.to_path_buf(),
        development,
        public,
    })
}

/// `target/keys/dev`, made by `mfgtool keys new --dev` the first time.
/// Safe against builds running in parallel: the set is made in a
/// temporary directory and renamed into place; the loser of a race uses
/// the winner's.
pub fn dev_keys() -> Result<PathBuf> {
    let dir = qemu_tests::dev_keys_dir();
    if dir.join("keyset.toml").is_file() {
        return Ok(dir);
    }
    let parent = dir.parent().ok_or("target/keys: no parent")?;
    fs::create_dir_all(parent)?;
    let tmp = parent.join(format!("dev.tmp.{}", std::process::id()));
    let _ = fs::remove_dir_all(&tmp);
    let out = qemu_tests::mfg::mfgtool(["keys", "new", "--dev", "-o", &tmp.to_string_lossy()])
        .map_err(|e| format!("cannot run mfgtool: {e}"))?;
    if !out.status.success() {
        let _ = fs::remove_dir_all(&tmp);
        return Err(format!(
            "mfgtool keys new --dev failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    if fs::rename(&tmp, &dir).is_err() {
        let _ = fs::remove_dir_all(&tmp);
        if !dir.join("keyset.toml").is_file() {
            return Err(format!("cannot create {}", dir.display()).into());
        }
    } else {
        println!("made a development key set in {}", dir.display());
    }
    Ok(dir)
}

/// The key set for a build: `--keys DIR`, else the development set; a
/// production build with a development set needs `allow_dev_keys`.
pub fn for_build(keys: Option<&Path>, production: bool, allow_dev_keys: bool) -> Result<KeyEnv> {
    let dir = match keys {
        Some(d) => d.to_path_buf(),
        None => dev_keys()?,
    };
    let env = load(&dir)?;
    check_production(&env, production, allow_dev_keys)?;
    Ok(env)
}

/// Refuses a development key set for a production build unless allowed.
pub fn check_production(env: &KeyEnv, production: bool, allow_dev_keys: bool) -> Result<()> {
    if production && env.development && !allow_dev_keys {
        return Err(format!(
            "refusing a production build with the development key set {} \
             (pass --keys DIR with the OEM's key set, or --allow-dev-keys for tests and demos)",
            env.dir.display()
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_set(dir: &Path, kind: &str, pubs: [&str; 3]) {
        fs::create_dir_all(dir).unwrap();
        fs::write(
            dir.join("keyset.toml"),
            format!("format = 1\nkind = \"{kind}\"\noem = \"t\"\n"),
        )
        .unwrap();
        for ((_, n), p) in ENV.iter().zip(pubs) {
            fs::write(dir.join(format!("{n}.pub")), format!("{p}\n")).unwrap();
        }
    }

    #[test]
    fn production_refuses_development_keys_unless_allowed() {
        let base = std::env::temp_dir().join(format!("xtask-keys-{}", std::process::id()));
        let (a, b, c) = ("a".repeat(128), "b".repeat(128), "c".repeat(128));
        write_set(&base.join("dev"), "development", [&a, &b, &c]);
        write_set(&base.join("prod"), "production", [&a, &b, &c]);
        let dev = load(&base.join("dev")).unwrap();
        assert!(dev.development);
        assert_eq!(dev.public, [a.clone(), b.clone(), c.clone()]);
        let e = check_production(&dev, true, false).unwrap_err().to_string();
        assert!(e.contains("--allow-dev-keys"), "{e}");
        assert!(check_production(&dev, true, true).is_ok());
        assert!(check_production(&dev, false, false).is_ok());
        let prod = load(&base.join("prod")).unwrap();
        assert!(check_production(&prod, true, false).is_ok());
        // Malformed public keys and kinds are refused.
        write_set(&base.join("bad"), "production", [&a, &"A".repeat(128), &c]);
        assert!(load(&base.join("bad")).is_err());
        write_set(&base.join("short"), "production", [&a, &b, &c[1..]]);
        assert!(load(&base.join("short")).is_err());
        write_set(&base.join("kind"), "testing", [&a, &b, &c]);
        assert!(load(&base.join("kind")).is_err());
        assert!(load(&base.join("none")).is_err());
        let _ = fs::remove_dir_all(&base);
    }
}
