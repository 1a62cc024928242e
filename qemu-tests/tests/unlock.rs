//! The production console lock (issue 13, attacks 2 and 4), tried as the
//! contract manufacturer would on the production image: before an unlock
//! the commands that read memory, run CAAM jobs or touch the eMMC are
//! refused and change nothing; an OEM token (signed with the development
//! key set the test image is built with) enables exactly the commands it
//! names, for this boot's latest challenge and this chip only; even
//! unlocked, `md`/`mw` never reach the CAAM, the OCOTP or the loader.

mod common;

use common::*;
use mfg_formats::unlock::TOKEN_LEN;
use qemu_tests::mfg::{challenge_line, unlock, unlock_token};
use qemu_tests::{
    LOAD_ADDR, Qemu, QemuOpts, chip, loader_image, production_loader_image, write_fuse_file,
};
use std::path::PathBuf;

const LOCKED: &str = "locked: `unlock` first (production build)";
/// A block of the disk holding a known pattern.
const LBA: u64 = 8;
const PATTERN: u8 = 0xa5;

fn fuses(name: &str, uid: &[u8; 16]) -> PathBuf {
    write_fuse_file(name, &chip(*uid, [0x5a; 32]).to_bytes()).expect("fuse file")
}

fn disk(name: &str) -> PathBuf {
    let d = blank_disk(name, 1 << 20);
    let mut b = std::fs::read(&d).unwrap();
    b[(LBA * BLK) as usize..((LBA + 1) * BLK) as usize].fill(PATTERN);
    std::fs::write(&d, b).unwrap();
    d
}

fn boot_prod(fuse: &PathBuf, disk: Option<&PathBuf>) -> Qemu {
    let mut o = QemuOpts::new(production_loader_image()).fuses(fuse);
    if let Some(d) = disk {
        o = o.disk(d);
    }
    let (q, banner) = Qemu::boot_to_prompt(o).expect("QEMU boots to its prompt");
    assert!(banner.contains("production"), "{banner}");
    assert!(!banner.contains("Fuses:"), "fuse file refused: {banner}");
    q
}

fn assert_locked(q: &mut Qemu, cmd: &str) {
    let out = run(q, cmd);
    let name = cmd.split(' ').next().unwrap_or_default();
    assert_eq!(out, format!("{name}: {LOCKED}\r\n"), "`{cmd}`");
}

/// A token's base64 line with byte `pos` changed.
fn tamper(token: &str, pos: usize) -> String {
    let mut b = [0u8; TOKEN_LEN + 3];
    let n = mfg_formats::base64::decode(token.as_bytes(), &mut b).expect("base64");
    assert_eq!(n, TOKEN_LEN);
    b[pos] ^= 0x01;
    let mut out = vec![0u8; token.len()];
    mfg_formats::base64::encode(&b[..n], &mut out).expect("base64");
    String::from_utf8(out).unwrap()
}

#[test]
fn locked_commands_are_refused_and_change_nothing() {
    let f = fuses("unlock-locked", b"chip-unlock-0001");
    let d = disk("unlock-locked");
    let before = std::fs::read(&d).unwrap();
    let mut q = boot_prod(&f, Some(&d));
    let s = SCRATCH;
    for cmd in [
        format!("md.b {s:x} 10"),
        format!("md {s:x}"),
        format!("mw.l {s:x} deadbeef 4"),
        format!("blob enc {:x} {s:x} 10 {:x}", s + 0x100, s + 0x200),
        format!("blob dec {:x} {s:x} 10 {:x}", s + 0x100, s + 0x200),
        format!("mfgprot sign {s:x} 4"),
        "mfgprot pubk".into(),
        format!("mmc write {s:x} 0 1"),
        format!("mmc read {s:x} {LBA:x} 1"),
        "mmc erase 8 1".into(),
        "mmc info".into(),
        "fuse read 6 0 4".into(),
        "caam info".into(),
        "provision".into(),
        "provision verify".into(),
        "bootargs".into(),
        "bootargs console=ttyS0 init=/bin/sh".into(),
        "boot".into(),
    ] {
        assert_locked(&mut q, &cmd);
    }
    // booti does not exist in production at all (verified boot).
    let out = run(&mut q, &format!("booti {s:x} - {:x}", s + 0x1000));
    assert!(out.contains("Unknown command 'booti'"), "{out}");
    // The free commands answer.
    assert!(run(&mut q, "version").contains("production"));
    assert!(run(&mut q, "echo hello").contains("hello"));
    let help = run(&mut q, "help");
    assert!(help.contains("unlock"), "{help}");
    let line = |name: &str| {
        help.lines()
            .find(|l| l.starts_with(&format!("{name:<10}- ")))
            .unwrap_or_else(|| panic!("no {name} in {help}"))
            .to_string()
    };
    assert!(line("md").ends_with(" [locked]"), "{help}");
    assert!(line("mmc").ends_with(" [locked]"), "{help}");
    assert!(!line("version").contains("[locked]"), "{help}");
    assert!(!line("unlock").contains("[locked]"), "{help}");
    let st = run(&mut q, "provision status");
    assert!(!st.contains("locked"), "{st}");
    let bd = run(&mut q, "bdinfo");
    assert!(bd.contains("boardname"), "{bd}");

    // A token naming md enables md only.
    unlock(&mut q, "md");
    let help = run(&mut q, "help");
    assert!(
        !help.contains("md        - memory display [locked]"),
        "{help}"
    );
    assert!(
        help.contains("mw        - memory write (fill) [locked]"),
        "{help}"
    );
    assert_locked(&mut q, &format!("mw.l {s:x} 1"));
    assert_locked(&mut q, &format!("mmc read {s:x} {LBA:x} 1"));
    assert_locked(&mut q, &format!("mfgprot sign {s:x} 4"));
    // Nothing above wrote the scratch RAM (mw, mmc read, blob dec).
    assert_eq!(ram_bytes(&mut q, s, 0x300), vec![0u8; 0x300]);
    poweroff(q);
    // Nor the disk (mmc write, mmc erase).
    assert_eq!(std::fs::read(&d).unwrap(), before, "the disk changed");
}

#[test]
fn tokens_for_another_uid_challenge_or_content_are_refused() {
    let f = fuses("unlock-tokens", b"chip-unlock-0002");
    let mut q = boot_prod(&f, None);
    let out = run(&mut q, &format!("unlock {}", "A".repeat(144)));
    assert!(
        out.contains("unlock: refused: not an unlock token"),
        "{out}"
    );

    // Challenge 1, then challenge 2: a token for 1 is refused.
    let c1 = challenge_line(&run(&mut q, "unlock"));
    let t1 = unlock_token(&c1, "md");
    let c2 = challenge_line(&run(&mut q, "unlock"));
    assert_ne!(c1, c2, "the nonce is fresh");
    let out = run(&mut q, &format!("unlock {t1}"));
    assert!(
        out.contains("unlock: refused: token answers another challenge"),
        "{out}"
    );
    assert_locked(&mut q, &format!("md {SCRATCH:x}"));

    // A token for another UID (the same nonce).
    let mut other = c2.clone();
    let i = "unlock-challenge: ".len();
    let flipped = if &other[i..i + 1] == "0" { "1" } else { "0" };
    other.replace_range(i..i + 1, flipped);
    let out = run(&mut q, &format!("unlock {}", unlock_token(&other, "md")));
    assert!(
        out.contains("unlock: refused: token is for another device"),
        "{out}"
    );

    // The right token with one byte changed: in the command mask (md ->
    // md,mw), in the nonce, in the signature.
    let t2 = unlock_token(&c2, "md");
    for (pos, why) in [
        (40, "bad signature"),
        (30, "another challenge"),
        (60, "bad signature"),
        (TOKEN_LEN - 1, "bad signature"),
        (0, "not an unlock token"),
    ] {
        let out = run(&mut q, &format!("unlock {}", tamper(&t2, pos)));
        assert!(
            out.starts_with("unlock: refused: ") && out.contains(why),
            "byte {pos}: {out}"
        );
        assert_locked(&mut q, &format!("md {SCRATCH:x}"));
        assert_locked(&mut q, &format!("mw {SCRATCH:x} 0"));
    }

    // The untampered token for the latest challenge works, once.
    let out = run(&mut q, &format!("unlock {t2}"));
    assert!(out.contains("unlocked for this boot: md"), "{out}");
    assert!(run(&mut q, &format!("md.l {SCRATCH:x} 4")).contains(&format!("{SCRATCH:08x}:")));
    assert_locked(&mut q, &format!("mw {SCRATCH:x} 0"));
    let out = run(&mut q, &format!("unlock {t2}"));
    assert!(
        out.contains("unlock: refused: no challenge issued"),
        "{out}"
    );
    poweroff(q);

    // The unlock lasts one boot: after a power cycle md is locked again.
    let mut q = boot_prod(&f, None);
    assert_locked(&mut q, &format!("md {SCRATCH:x}"));
    let out = run(&mut q, &format!("unlock {t2}"));
    assert!(
        out.contains("unlock: refused: no challenge issued"),
        "{out}"
    );
    poweroff(q);
}

#[test]
fn unlocked_md_mw_never_reach_the_caam_ocotp_or_the_loader() {
    let f = fuses("unlock-ranges", b"chip-unlock-0003");
    let mut q = boot_prod(&f, None);
    unlock(&mut q, "md,mw");
    for (cmd, why) in [
        ("md.l 30900000 4".to_string(), "the CAAM register window"),
        ("md.l 30901000 4".into(), "the CAAM register window"),
        ("mw.l 30901000 1".into(), "the CAAM register window"),
        ("md.l 30350000 4".into(), "the OCOTP (fuse) register window"),
        ("mw.l 30350000 1".into(), "the OCOTP (fuse) register window"),
        // A range that starts below the CAAM and runs into it.
        ("md.b 308ffff0 20".into(), "the CAAM register window"),
        (format!("md.l {LOAD_ADDR:x} 4"), "overlaps the loader"),
        (
            format!("mw.l {:x} 0", LOAD_ADDR + 0x1000),
            "overlaps the loader",
        ),
        // Another device (the console UART).
        ("md.l 30890000 4".into(), "outside RAM"),
    ] {
        let out = run(&mut q, &cmd);
        let name = cmd.split(' ').next().unwrap_or_default();
        assert!(
            out.starts_with(&format!("{name}: ")) && out.contains(why),
            "`{cmd}`: {out:?}"
        );
        assert!(out.contains("production"), "`{cmd}`: {out:?}");
    }
    // DRAM outside the loader works.
    assert_eq!(run(&mut q, &format!("mw.l {SCRATCH:x} 12345678")), "");
    assert!(run(&mut q, &format!("md.l {SCRATCH:x} 1")).contains("12345678"));
    poweroff(q);
}

#[test]
fn the_development_console_is_not_locked() {
    let f = fuses("unlock-dev", b"chip-unlock-0004");
    let (mut q, _) = Qemu::boot_to_prompt(QemuOpts::new(loader_image()).fuses(&f)).expect("boots");
    let out = run(&mut q, "unlock");
    assert!(out.contains("not locked"), "{out}");
    // Bring-up: md reads the loader itself, no token needed.
    let out = run(&mut q, &format!("md.l {LOAD_ADDR:x} 1"));
    assert!(out.starts_with(&format!("{LOAD_ADDR:08x}:")), "{out}");
    poweroff(q);
}
