//! CLI tests of `keys new` and `unlock-token`.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::*;
use mfg_formats::unlock::{Challenge, Token, UnlockError};

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn pubkey_of(dir: &std::path::Path, name: &str) -> [u8; 64] {
    let s = fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap();
    assert_eq!(s.len(), 129, "{name}.pub: one line of 128 hex digits");
    assert!(s.ends_with('\n'));
    let s = s.trim_end();
    assert!(
        s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    );
    hex::decode(s).unwrap().try_into().unwrap()
}

#[test]
fn keys_new_writes_a_key_set() {
    let t = tmp();
    let dir = t.path().join("acme");
    let out = ok(&[
        "keys",
        "new",
        "-o",
        dir.to_str().unwrap(),
        "--oem",
        "acme",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["kind"], "production");
    assert_eq!(v["oem"], "acme");
    let toml = fs::read_to_string(dir.join("keyset.toml")).unwrap();
    assert!(toml.contains("kind = \"production\"\n"), "{toml}");
    assert!(toml.contains("oem = \"acme\"\n"), "{toml}");
    let mut seen = Vec::new();
    for name in ["record", "authority", "boot"] {
        let pk = pubkey_of(&dir, name);
        assert_eq!(v[name].as_str().unwrap(), hex::encode(pk));
        assert!(!seen.contains(&pk), "two keys of the set are equal");
        seen.push(pk);
        let pem = dir.join(format!("{name}.pem"));
        let mode = fs::metadata(&pem).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{name}.pem mode {mode:o}");
        let text = fs::read_to_string(&pem).unwrap();
        assert!(text.starts_with("-----BEGIN PRIVATE KEY-----\n"), "{text}");
        // The private key's public half is the .pub.
        let der = {
            let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
            let mut out = vec![0u8; b64.len()];
            let n = mfg_formats::base64::decode(b64.as_bytes(), &mut out).unwrap();
            out.truncate(n);
            out
        };
        let k = p256::ecdsa::SigningKey::from_slice(&der[36..68]).unwrap();
        assert_eq!(pubkey(&k), pk);
    }
    // No temporary file is left behind.
    let names: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 7, "{names:?}");
}

#[test]
fn keys_new_refuses_to_overwrite_and_bad_names() {
    let t = tmp();
    let dir = t.path().join("dev");
    let d = dir.to_str().unwrap();
    ok(&["keys", "new", "--dev", "-o", d]);
    let toml = fs::read_to_string(dir.join("keyset.toml")).unwrap();
    assert!(toml.contains("kind = \"development\""), "{toml}");
    assert!(toml.contains("oem = \"development\""), "{toml}");
    let before = fs::read(dir.join("authority.pem")).unwrap();
    let (c, _, err) = run(&["keys", "new", "--dev", "-o", d]);
    assert_eq!(c, 1, "{err}");
    assert!(err.contains("refusing to overwrite"), "{err}");
    assert_eq!(fs::read(dir.join("authority.pem")).unwrap(), before);
    // A directory holding only one key file is refused too.
    let half = t.path().join("half");
    fs::create_dir(&half).unwrap();
    fs::write(half.join("boot.pem"), "x").unwrap();
    let (c, _, err) = run(&["keys", "new", "--dev", "-o", half.to_str().unwrap()]);
    assert_eq!(c, 1, "{err}");
    assert_eq!(fs::read(half.join("boot.pem")).unwrap(), b"x");
    let (c, _, err) = run(&["keys", "new", "-o", t.path().join("p").to_str().unwrap()]);
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("--oem NAME is required"), "{err}");
    let (c, _, err) = run(&[
        "keys",
        "new",
        "--oem",
        "a b",
        "-o",
        t.path().join("q").to_str().unwrap(),
    ]);
    assert_eq!(c, 2, "{err}");
}

/// `mkimage -k DIR` signs a FIT configuration with `boot.pem`
/// (`key-name-hint = "boot"`, `sha256,ecdsa256`), when mkimage and dtc
/// are installed (`.ci/run` installs them).
#[test]
fn mkimage_signs_with_boot_pem() {
    let have = |t: &str| {
        std::process::Command::new(t)
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !have("mkimage") || !have("dtc") {
        eprintln!("mkimage or dtc not installed: skipped");
        return;
    }
    let t = tmp();
    let keys = t.path().join("keys");
    ok(&["keys", "new", "--dev", "-o", keys.to_str().unwrap()]);
    fs::write(t.path().join("k.bin"), [0x5au8; 512]).unwrap();
    fs::write(
        t.path().join("t.its"),
        r#"/dts-v1/;
/ {
  description = "keys test";
  #address-cells = <1>;
  images {
    kernel-1 { data = /incbin/("k.bin"); type = "kernel"; arch = "arm64"; os = "linux";
      compression = "none"; load = <0x40480000>; entry = <0x40480000>;
      hash-1 { algo = "sha256"; }; };
  };
  configurations {
    default = "conf-1";
    conf-1 { kernel = "kernel-1";
      signature-1 { algo = "sha256,ecdsa256"; key-name-hint = "boot"; sign-images = "kernel"; }; };
  };
};
"#,
    )
    .unwrap();
    let out = std::process::Command::new("mkimage")
        .current_dir(t.path())
        .args(["-k", keys.to_str().unwrap(), "-f", "t.its", "t.itb"])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mkimage failed: {text}");
    assert!(text.contains("Signature written"), "{text}");
}

fn challenge_line(uid: [u8; 16], nonce: [u8; 16]) -> String {
    let mut s = String::new();
    Challenge { uid, nonce }.write_line(&mut s).unwrap();
    s
}

#[test]
fn unlock_token_signs_what_the_device_checks() {
    let t = tmp();
    let keys = t.path().join("keys");
    let k = keys.to_str().unwrap();
    ok(&["keys", "new", "--dev", "-o", k]);
    let authority = pubkey_of(&keys, "authority");
    let uid = [0x11; 16];
    let nonce = [0x22; 16];
    let line = format!("=> unlock\r\n{}\r\n", challenge_line(uid, nonce));
    let out = ok(&[
        "unlock-token",
        "--keys",
        k,
        "--challenge",
        &line,
        "--commands",
        "md,mmc",
    ]);
    let tok = Token::from_base64(out.trim()).unwrap();
    assert_eq!(tok.verify(&uid, Some(&nonce), &authority), Ok(0b101));
    // Another nonce or UID: refused on the device side.
    assert_eq!(
        tok.verify(&uid, Some(&[0x23; 16]), &authority),
        Err(UnlockError::StaleChallenge)
    );
    assert_eq!(
        tok.verify(&[0x12; 16], Some(&nonce), &authority),
        Err(UnlockError::WrongUid)
    );
    // Signed with the authority key, not another key of the set.
    let record = pubkey_of(&keys, "record");
    assert_eq!(
        tok.verify(&uid, Some(&nonce), &record),
        Err(UnlockError::BadSignature)
    );
    // -o FILE.
    let f = t.path().join("tok.txt");
    let out = ok(&[
        "unlock-token",
        "--keys",
        k,
        "--challenge",
        &challenge_line(uid, nonce),
        "--commands",
        "mw",
        "-o",
        f.to_str().unwrap(),
    ]);
    assert!(out.contains("(mw)"), "{out}");
    let tok = Token::from_base64(&fs::read_to_string(&f).unwrap()).unwrap();
    assert_eq!(tok.verify(&uid, Some(&nonce), &authority), Ok(0b10));
    // A token that reaches the secrets is signed, with a warning; one
    // that does not, without.
    let sign = |cmds: &str| {
        let (c, _, err) = run(&[
            "unlock-token",
            "--keys",
            k,
            "--challenge",
            &challenge_line(uid, nonce),
            "--commands",
            cmds,
        ]);
        assert_eq!(c, 0, "{err}");
        err
    };
    assert!(sign("md,blob").contains("warning: a token naming 'blob' with 'md' or 'mmc'"));
    assert!(sign("blob,mmc").contains("warning: a token naming 'blob' with 'md' or 'mmc'"));
    assert!(sign("md,mmc").is_empty());
    assert!(sign("blob").is_empty());
}

#[test]
fn unlock_token_refusals() {
    let t = tmp();
    let keys = t.path().join("keys");
    let k = keys.to_str().unwrap();
    ok(&["keys", "new", "--dev", "-o", k]);
    let line = challenge_line([1; 16], [2; 16]);
    let (c, _, err) = run(&[
        "unlock-token",
        "--keys",
        k,
        "--challenge",
        &line,
        "--commands",
        "md,frob",
    ]);
    assert_eq!(c, 2, "{err}");
    assert!(err.contains("unknown command 'frob'"), "{err}");
    let (c, _, err) = run(&[
        "unlock-token",
        "--keys",
        k,
        "--challenge",
        "unlock-challenge: 0011",
        "--commands",
        "md",
    ]);
    assert_eq!(c, 5, "{err}");
    assert!(err.contains("--challenge"), "{err}");
    let (c, _, err) = run(&[
        "unlock-token",
        "--keys",
        t.path().to_str().unwrap(),
        "--challenge",
        &line,
        "--commands",
        "md",
    ]);
    assert_eq!(c, 1, "{err}");
    assert!(err.contains("not a key set"), "{err}");
    // An authority.pem that does not match authority.pub is refused.
    let other = t.path().join("other");
    ok(&["keys", "new", "--dev", "-o", other.to_str().unwrap()]);
    fs::copy(other.join("authority.pem"), keys.join("authority.pem")).unwrap();
    let (c, _, err) = run(&[
        "unlock-token",
        "--keys",
        k,
        "--challenge",
        &line,
        "--commands",
        "md",
    ]);
    assert_eq!(c, 5, "{err}");
    assert!(err.contains("does not match authority.pub"), "{err}");
}

#[test]
fn help_of_the_new_subcommands_lists_exit_codes() {
    for args in [
        vec!["keys", "new", "--help"],
        vec!["unlock-token", "--help"],
    ] {
        let out = ok(&args);
        assert!(out.contains("Exit codes:"), "{args:?}");
    }
    let (c, _, err) = run(&["unlock-token", "--keys", "k"]);
    assert_eq!(c, 2, "{err}");
}
