//! Host-side helpers for the provisioning-flow tests, the demo and the
//! bench: the `mfgtool` binary, the MP public key out of a development
//! boot's `mfgprot pubk`, `mfgprot-id:` lines, GPT partitions of a disk
//! image, and fuse files with a power-cut test plan.

use crate::{target_dir, workspace_root};
use std::fs;
use std::io;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The console line prefix of an ID record.
pub const ID_PREFIX: &str = "mfgprot-id: ";

/// The `mfgtool` binary: `MFGTOOL` names it, otherwise it is built once per
/// process (`cargo build -p mfgtool`, a no-op when up to date).
pub fn mfgtool_path() -> PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        if let Some(p) = std::env::var_os("MFGTOOL") {
            return PathBuf::from(p);
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace_root())
            .args(["build", "--quiet", "--package", "mfgtool"])
            .status();
        match status {
            Ok(s) if s.success() => {}
            Ok(s) => panic!("`cargo build -p mfgtool` failed ({s})"),
            Err(e) => panic!("cannot run cargo to build mfgtool: {e}"),
        }
        target_dir().join("debug/mfgtool")
    })
    .clone()
}

/// Runs `mfgtool` with `args` and returns its output (any exit status).
pub fn mfgtool<I, S>(args: I) -> io::Result<Output>
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(mfgtool_path()).args(args).output()
}

/// Runs `mfgtool ARGS` and returns its stdout; panics with both outputs when
/// it fails (for tests, where a failing tool is a failed test).
pub fn mfgtool_run<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> String {
    let out = mfgtool(args).expect("mfgtool runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "mfgtool {:?} failed ({}):\n{stdout}\n{}",
        args.iter()
            .map(|a| a.as_ref().to_owned())
            .collect::<Vec<_>>(),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The 64-byte MP public key (X || Y) out of `mfgprot pubk` output: the
/// first 128 hex digits after `Public key:`.
pub fn parse_pubkey(out: &str) -> Option<[u8; 64]> {
    let (_, rest) = out.split_once("Public key:")?;
    let digits: Vec<u8> = rest
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .take_while(u8::is_ascii_hexdigit)
        .take(128)
        .collect();
    if digits.len() != 128 {
        return None;
    }
    let mut key = [0u8; 64];
    for (i, k) in key.iter_mut().enumerate() {
        let s = std::str::from_utf8(&digits[2 * i..2 * i + 2]).ok()?;
        *k = u8::from_str_radix(s, 16).ok()?;
    }
    Some(key)
}

/// Every `mfgprot-id: ...` line in a console log (prefix included, line
/// end stripped).
pub fn id_lines(console: &str) -> Vec<String> {
    console
        .lines()
        .filter_map(|l| {
            let l = l.trim_end_matches('\r');
            l.find(ID_PREFIX).map(|i| l[i..].to_string())
        })
        .collect()
}

/// The byte range of the GPT partition named `name` in a disk image.
pub fn partition(image: &[u8], name: &str) -> Option<Range<usize>> {
    block::gpt::partition_range(image, name)
}

/// Fuse-file bytes of `chip`, with a power-cut test plan appended when
/// `cut_after_write` is given.
pub fn fuse_bytes(chip: &imx_emu::fusefile::FuseFile, cut_after_write: Option<u32>) -> Vec<u8> {
    let mut b = chip.to_bytes().to_vec();
    if let Some(k) = cut_after_write {
        let plan = imx_emu::fusefile::TestPlan {
            cut_after_write: Some(k),
        };
        b.extend_from_slice(&plan.to_bytes());
    }
    b
}

/// Fuse-file bytes of `chip` followed by an empty test plan and the CAAM
/// fault plan `fault` (see `imx_emu::fusefile::Fault`).
pub fn fuse_bytes_with_fault(
    chip: &imx_emu::fusefile::FuseFile,
    fault: imx_emu::fusefile::Fault,
) -> Vec<u8> {
    let mut b = chip.to_bytes().to_vec();
    b.extend_from_slice(&imx_emu::fusefile::TestPlan::default().to_bytes());
    b.extend_from_slice(&fault.to_bytes());
    b
}

/// Lower-case hex of `b`.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Standard base64 (with padding) of `b`.
pub fn base64(b: &[u8]) -> String {
    let mut out = vec![0u8; mfg_formats::base64::encoded_len(b.len())];
    let n = mfg_formats::base64::encode(b, &mut out).expect("sized for the input");
    out.truncate(n);
    String::from_utf8(out).expect("base64 is ASCII")
}

/// The text forms under which `secret` could leak into a log: hex (lower and
/// upper) and base64 at each of the three byte alignments a longer base64
/// stream could put it at (only the characters fully determined by the
/// secret are kept).
pub fn text_forms(secret: &[u8]) -> Vec<String> {
    let h = hex(secret);
    let mut v = vec![h.clone(), h.to_uppercase()];
    for pad in 0..3usize {
        let mut b = vec![0u8; pad];
        b.extend_from_slice(secret);
        let enc = base64(&b);
        // Characters covering only the padding bytes (at the start) or the
        // partial last group (at the end) also depend on other data.
        let skip = match pad {
            0 => 0,
            1 => 2,
            _ => 3,
        };
        let total = pad + secret.len();
        let full_groups = total / 3;
        let end = full_groups * 4;
        if end > skip {
            v.push(enc[skip..end].to_string());
        }
    }
    v
}

/// Where `needle` (bytes or any of its [`text_forms`]) occurs in `hay`:
/// a description of the first hit, or `None`.
pub fn find_leak(hay: &[u8], needle: &[u8]) -> Option<String> {
    if needle.is_empty() {
        return None;
    }
    if let Some(i) = hay.windows(needle.len()).position(|w| w == needle) {
        return Some(format!("binary at byte {i}"));
    }
    for f in text_forms(needle) {
        if f.len() < 16 {
            continue;
        }
        if let Some(i) = hay.windows(f.len()).position(|w| w == f.as_bytes()) {
            return Some(format!("text form {f:?} at byte {i}"));
        }
    }
    None
}

/// Copies `from` to `to` and returns `to`.
pub fn copy(from: &Path, to: &Path) -> io::Result<PathBuf> {
    fs::copy(from, to)?;
    Ok(to.to_path_buf())
}

/// Signs a console unlock token for a production loader's challenge line
/// with the development key set the test images are built with
/// (`mfgtool unlock-token --keys target/keys/dev`); `commands` is
/// comma-separated (`md,mw`).
pub fn unlock_token(challenge: &str, commands: &str) -> String {
    let keys = crate::dev_keys_dir();
    mfgtool_run(&[
        "unlock-token",
        "--keys",
        &keys.to_string_lossy(),
        "--challenge",
        challenge,
        "--commands",
        commands,
    ])
    .trim()
    .to_string()
}

/// The `unlock-challenge: ...` line out of `unlock`'s output.
pub fn challenge_line(out: &str) -> String {
    out.lines()
        .find(|l| l.starts_with("unlock-challenge: "))
        .unwrap_or_else(|| panic!("no challenge in `unlock` output: {out:?}"))
        .to_string()
}

/// Unlocks `commands` on a production loader's console the way an OEM
/// engineer does: `unlock`, a token signed with the development authority
/// key for that challenge, `unlock TOKEN`. Panics unless the loader says
/// it unlocked.
pub fn unlock(q: &mut crate::Qemu, commands: &str) {
    let out = q.run("unlock").expect("`unlock` returns to the prompt");
    let token = unlock_token(&challenge_line(&out), commands);
    let out = q
        .run(&format!("unlock {token}"))
        .expect("`unlock TOKEN` returns to the prompt");
    assert!(
        out.contains("unlocked for this boot:"),
        "unlock {commands} refused: {out:?}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }

    #[test]
    fn text_forms_find_a_secret_inside_a_longer_base64_stream() {
        let secret: Vec<u8> = (0u8..40).map(|i| i.wrapping_mul(37) ^ 0x5c).collect();
        for pre in 0..3 {
            let mut stream = vec![0xeeu8; pre];
            stream.extend_from_slice(&secret);
            stream.extend_from_slice(&[1, 2, 3, 4]);
            let enc = base64(&stream);
            assert!(
                find_leak(enc.as_bytes(), &secret).is_some(),
                "alignment {pre}"
            );
        }
        assert!(find_leak(b"nothing to see here at all", &secret).is_none());
        let up = hex(&secret).to_uppercase();
        assert!(find_leak(up.as_bytes(), &secret).is_some());
    }

    #[test]
    fn parses_pubk_output() {
        let mut out =
            String::from("\r\nGenerating Manufacturing Protection Public Key\r\nPublic key:\r\n");
        for i in 0..64u8 {
            out.push_str(&format!("{i:02X}"));
            if i == 31 {
                out.push_str("\r\n");
            }
        }
        out.push_str("\r\n");
        let k = parse_pubkey(&out).expect("parses");
        assert_eq!(k[0], 0);
        assert_eq!(k[63], 63);
        assert!(parse_pubkey("Public key:\r\n12").is_none());
    }

    #[test]
    fn finds_id_lines() {
        let log = "a\r\nprovision: x\r\nmfgprot-id: QUJD\r\n=> ";
        assert_eq!(id_lines(log), vec!["mfgprot-id: QUJD".to_string()]);
    }
}
