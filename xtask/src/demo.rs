//! `cargo xtask demo`: the manufacturing-protection story on QEMU, from
//! nothing.
//!
//! Four virtual chips: A, B and C of one OEM (one SRK hash) and D of
//! another OEM. The OEM reads its MP public key from a development boot of
//! a reference chip (`mfgprot pubk`), seals a bundle of demo secrets for it
//! (`mfgtool seal --ledger`, which also registers the bundle in the OEM's
//! ledger) and builds a disk image (`mfgtool image`). Each chip boots its
//! own copy of the image and the loader provisions it; the ID record
//! printed on the console goes into the OEM's ledger (`mfgtool ledger
//! register`, quota 2 for the lot). Then the demo shows what the scheme
//! protects against (including the production console: locked, a token
//! signed with the CM's own key refused, the OEM's token unlocking `md`
//! only; the production image is built with the development key set,
//! `--allow-dev-keys`), checks every expectation, and prints a report.

use crate::args::BuildOpts;
use crate::prereq::{self, Need};
use crate::{Result, build};
use qemu_tests::mfg::{self, id_lines, parse_pubkey};
use qemu_tests::{Qemu, QemuOpts};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

const PRODUCT: &str = "imx8mp-demo";
const LOT: &str = "demo-lot-1";
const OEM_SRK: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
const OTHER_SRK: &str = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";
const BOOT: Duration = Duration::from_secs(30);

/// One expectation and whether it held.
struct Check {
    what: String,
    ok: bool,
    detail: String,
}

struct Demo {
    dir: PathBuf,
    loader: PathBuf,
    elf: PathBuf,
    checks: Vec<Check>,
}

fn p(path: &Path) -> String {
    path.display().to_string()
}

fn text(o: &Output) -> String {
    let mut s = String::from_utf8_lossy(&o.stdout).into_owned();
    s.push_str(&String::from_utf8_lossy(&o.stderr));
    s
}

impl Demo {
    fn step(&self, msg: &str) {
        println!("demo: {msg}");
    }

    fn check(&mut self, what: &str, ok: bool, detail: impl Into<String>) {
        let detail = detail.into();
        println!(
            "demo:   [{}] {what}{}",
            if ok { "ok" } else { "FAILED" },
            if ok || detail.is_empty() {
                String::new()
            } else {
                format!("\n{detail}")
            }
        );
        self.checks.push(Check {
            what: what.into(),
            ok,
            detail,
        });
    }

    /// Runs mfgtool; fails the demo only if it cannot run at all.
    fn mfgtool(&self, args: &[&str]) -> Result<Output> {
        let o = mfg::mfgtool(args).map_err(|e| format!("cannot run mfgtool: {e}"))?;
        Ok(o)
    }

    /// Runs mfgtool and requires success.
    fn mfgtool_ok(&self, args: &[&str]) -> Result<String> {
        let o = self.mfgtool(args)?;
        if !o.status.success() {
            return Err(format!(
                "mfgtool {} failed ({}):\n{}",
                args.join(" "),
                o.status,
                text(&o)
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    }

    fn boot(&self, fuses: &Path, disk: Option<&Path>) -> Result<(Qemu, String)> {
        let mut o = QemuOpts::new(&self.loader)
            .elf(&self.elf)
            .fuses(fuses)
            .no_reboot(true);
        if let Some(d) = disk {
            o = o.disk(d);
        }
        let mut q = Qemu::boot(o)?;
        let banner = q.wait_prompt_timeout(BOOT)?;
        Ok((q, banner))
    }

    fn poweroff(q: &mut Qemu) -> Result<()> {
        q.send_line("poweroff")?;
        q.wait_exit(Duration::from_secs(10))?;
        Ok(())
    }

    fn new_chip(&self, name: &str, srk: &str) -> Result<PathBuf> {
        let out = self.dir.join(format!("chip-{name}.fuses"));
        let uid: String = format!("demo-chip-{name:0>6}")
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        let f = crate::args::FusesNew {
            uid: Some(crate::args::parse_hex::<16>(&uid)?),
            srk_hash: crate::args::parse_hex::<32>(srk)?,
            otpmk: None,
            family_secret: None,
            open: false,
            no_mp_key: false,
            caam_page0: None,
            out: out.clone(),
        };
        let msg = crate::fuses::write(&f)?;
        self.step(&format!("chip {name}: {}", msg.trim()));
        Ok(out)
    }

    /// Boots a chip on its disk, lets it provision, saves its console.
    fn provision(&mut self, name: &str, fuses: &Path, disk: &Path) -> Result<(PathBuf, String)> {
        let (mut q, banner) = self.boot(fuses, Some(disk))?;
        for l in banner.lines().filter(|l| l.starts_with("provision")) {
            println!("demo:   | {}", l.trim_end());
        }
        Self::poweroff(&mut q)?;
        let log = self.dir.join(format!("chip-{name}.console"));
        fs::write(&log, q.console_bytes())?;
        Ok((log, banner))
    }
}

/// Runs the demo; fails unless every expectation held.
pub fn demo() -> Result<()> {
    prereq::ensure(Need::All)?;
    let out = build::build(&BuildOpts::default())?;
    // The production image of step 9, with the development key set (whose
    // authority key stands in for the OEM's).
    let prod = build::build(&BuildOpts {
        production: true,
        allow_dev_keys: true,
        ..BuildOpts::default()
    })?;
    // Builds mfgtool once (a no-op when up to date).
    let tool = mfg::mfgtool_path();
    if !tool.is_file() {
        return Err(format!("mfgtool not found at {}", tool.display()).into());
    }
    let started = Instant::now();
    let dir = qemu_tests::target_dir().join("demo");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let mut d = Demo {
        dir: dir.clone(),
        loader: out.bin.clone(),
        elf: out.elf.clone(),
        checks: Vec::new(),
    };

    d.step("1. virtual chips: A, B, C of the OEM, D of another OEM, R the OEM's reference chip");
    let chip_a = d.new_chip("A", OEM_SRK)?;
    let chip_b = d.new_chip("B", OEM_SRK)?;
    let chip_c = d.new_chip("C", OEM_SRK)?;
    let chip_d = d.new_chip("D", OTHER_SRK)?;
    let chip_r = d.new_chip("R", OEM_SRK)?;

    d.step("2. the OEM reads the MP public key on a development boot of R (mfgprot pubk)");
    let (mut q, _) = d.boot(&chip_r, None)?;
    let pubk_out = q.run_timeout("mfgprot pubk", BOOT)?;
    Demo::poweroff(&mut q)?;
    drop(q);
    let pubk = dir.join("oem-mp-pubkey.txt");
    fs::write(&pubk, &pubk_out)?;
    let key = parse_pubkey(&pubk_out).ok_or("no MP public key in the `mfgprot pubk` output")?;
    d.step(&format!(
        "   MP public key {}... ({})",
        &mfg::hex(&key[..8]),
        pubk.display()
    ));

    d.step("3. the OEM seals the demo secrets for that key and registers the bundle in its ledger (mfgtool seal --ledger)");
    let secrets = [
        (
            "wifi-psk",
            "raw",
            b"demo wifi pre-shared key 0123456".to_vec(),
        ),
        (
            "cloud-token",
            "opaque",
            b"demo cloud enrolment token: not a real one".to_vec(),
        ),
    ];
    let mut manifest = String::new();
    for (name, kind, data) in &secrets {
        fs::write(dir.join(format!("{name}.bin")), data)?;
        manifest.push_str(&format!(
            "[[secret]]\nname = \"{name}\"\nfile = \"{name}.bin\"\ntype = \"{kind}\"\n\n"
        ));
    }
    fs::write(dir.join("secrets.toml"), manifest)?;
    let ledger = dir.join("ledger.db");
    d.mfgtool_ok(&[
        "ledger",
        "--db",
        &p(&ledger),
        "init",
        "--mp-pubkey",
        &p(&pubk),
        "--srk-hash",
        OEM_SRK,
    ])?;
    // The loader the chips run is the one the OEM released: the ledger
    // accepts records only with its measurement in their MPMR.
    let rel = d.mfgtool_ok(&[
        "ledger",
        "--db",
        &p(&ledger),
        "release",
        "--loader",
        &p(&d.elf),
    ])?;
    for l in rel.lines() {
        d.step(&format!("   {l}"));
    }
    let bundle = dir.join("bundle.bin");
    let s = d.mfgtool_ok(&[
        "seal",
        "--mp-pubkey",
        &p(&pubk),
        "--secrets",
        &p(&dir.join("secrets.toml")),
        "--product",
        PRODUCT,
        "-o",
        &p(&bundle),
        "--ledger",
        &p(&ledger),
        "--lot",
        LOT,
    ])?;
    for l in s.lines() {
        d.step(&format!("   {l}"));
    }
    d.mfgtool_ok(&[
        "ledger",
        "--db",
        &p(&ledger),
        "quota",
        "--product",
        PRODUCT,
        "--lot",
        LOT,
        "2",
    ])?;
    d.step(&format!(
        "   ledger: OEM MP key and SRK hash; the bundle (id, product, lot {LOT}, SHA-256); quota 2 devices for that lot"
    ));

    d.step("4. the CM builds the eMMC image with the bundle (mfgtool image)");
    let base = dir.join("base.img");
    d.mfgtool_ok(&[
        "image",
        "-o",
        &p(&base),
        "--size",
        "32M",
        "--bundle",
        &p(&bundle),
    ])?;

    d.step("5. each chip boots its own copy; the loader provisions it");
    let mut logs = Vec::new();
    for (name, chip) in [("A", &chip_a), ("B", &chip_b), ("C", &chip_c)] {
        let disk = dir.join(format!("emmc-{name}.img"));
        fs::copy(&base, &disk)?;
        d.step(&format!("   chip {name}:"));
        let (log, banner) = d.provision(name, chip, &disk)?;
        let lines = id_lines(&banner);
        if let Some(l) = lines.first() {
            println!(
                "demo:   | {}... (sealed to the OEM record key: opaque to the CM)",
                &l[..l.len().min(60)]
            );
        }
        d.check(
            &format!("chip {name} provisioned and printed one ID record"),
            banner.contains("provision: device provisioned") && lines.len() == 1,
            banner.clone(),
        );
        logs.push((name, log, disk));
    }
    let disk_d = dir.join("emmc-D.img");
    fs::copy(&base, &disk_d)?;
    d.step("   chip D (the other OEM):");
    let (_, banner_d) = d.provision("D", &chip_d, &disk_d)?;
    d.check(
        "chip D (other OEM, other MP key) refuses the bundle",
        banner_d.contains("refused") && banner_d.contains("bundle authentication failed"),
        banner_d.clone(),
    );

    d.step("6. the ID records go to the OEM's ledger (mfgtool ledger register)");
    let register = |d: &Demo, log: &Path, product: &str| -> Result<(bool, String)> {
        let o = d.mfgtool(&[
            "ledger",
            "--db",
            &p(&ledger),
            "register",
            "--record-key",
            &p(&qemu_tests::dev_keys_dir()),
            "--product",
            product,
            &p(log),
        ])?;
        let t = text(&o);
        for l in t.lines() {
            println!("demo:   | {l}");
        }
        Ok((o.status.success() && t.contains("accepted"), t))
    };
    let (ok_a, t) = register(&d, &logs[0].1, PRODUCT)?;
    d.check("chip A's record accepted", ok_a, t);
    let (ok, t) = register(&d, &logs[1].1, "other-product")?;
    d.check(
        "chip B's record claimed for another product is refused (the product is the bundle's)",
        !ok && t.contains(&format!("is product {PRODUCT}, not other-product")),
        t,
    );
    let (ok_b, t) = register(&d, &logs[1].1, PRODUCT)?;
    d.check(
        "chip B's record then accepted under its own product",
        ok_b,
        t,
    );
    let (ok, t) = register(&d, &logs[0].1, PRODUCT)?;
    d.check(
        "chip A's record submitted again: already registered (same record), counted once",
        ok && t.contains("already registered (same record)"),
        t,
    );
    let (ok, t) = register(&d, &logs[2].1, PRODUCT)?;
    d.check(
        "chip C, genuine but third under a quota of two, counts as over-production",
        !ok && t.contains("quota"),
        t,
    );

    d.step("7. chip A rebooted");
    let (mut q, banner) = d.boot(&chip_a, Some(&logs[0].2))?;
    d.check(
        "chip A boots straight through (already provisioned)",
        banner.contains("provision: already provisioned; nothing to do"),
        banner.clone(),
    );
    let v = q.run_timeout("provision verify", BOOT)?;
    for l in v.lines() {
        println!("demo:   | {}", l.trim_end());
    }
    d.check(
        "chip A's blobs decapsulate on chip A",
        v.contains("provision verify: 2 of 2 blob(s) ok"),
        v.clone(),
    );
    Demo::poweroff(&mut q)?;
    drop(q);

    d.step("8. chip A's provisioned eMMC copied onto chip B");
    let clone = dir.join("emmc-A-on-B.img");
    fs::copy(&logs[0].2, &clone)?;
    let (mut q, _) = d.boot(&chip_b, Some(&clone))?;
    let v = q.run_timeout("provision verify", BOOT)?;
    for l in v.lines() {
        println!("demo:   | {}", l.trim_end());
    }
    d.check(
        "chip B cannot open chip A's blobs (bound to A's OTPMK)",
        v.contains("FAILED") && v.contains("provision verify: 0 of 2 blob(s) ok"),
        v.clone(),
    );
    Demo::poweroff(&mut q)?;
    drop(q);

    d.step("9. the production console is locked; an OEM token unlocks one command for one boot");
    console_lock_step(&mut d, &prod, &chip_a, &logs[0].2)?;

    d.step(
        "10. the production loader refuses an unsigned kernel, then boots Debian's arm64 kernel \
         from a signed FIT on a freshly provisioned chip, and Linux finds its blobs",
    );
    linux_step(&mut d)?;

    let elapsed = started.elapsed();
    let failed = d.checks.iter().filter(|c| !c.ok).count();
    println!();
    println!(
        "demo report ({:.1} s, files in {})",
        elapsed.as_secs_f64(),
        dir.display()
    );
    for c in &d.checks {
        println!("  [{}] {}", if c.ok { "ok" } else { "FAILED" }, c.what);
    }
    let rep = d.mfgtool(&["ledger", "--db", &p(&ledger), "report"])?;
    println!("ledger report:");
    for l in text(&rep).lines() {
        println!("  {l}");
    }
    if failed == 0 {
        println!("demo: ok ({} expectations held)", d.checks.len());
        Ok(())
    } else {
        for c in d.checks.iter().filter(|c| !c.ok) {
            eprintln!("demo: FAILED: {}\n{}", c.what, c.detail);
        }
        Err(format!("{failed} of {} expectations failed", d.checks.len()).into())
    }
}

/// Step 9: chip A on the production loader. The CM finds `md` locked and
/// tries a token signed with a key set of its own (refused); the OEM signs
/// the chip's challenge with its authority key (the development set here),
/// which unlocks `md` only, and `md` still cannot read the CAAM.
fn console_lock_step(d: &mut Demo, prod: &build::Outputs, chip: &Path, disk: &Path) -> Result<()> {
    let o = QemuOpts::new(&prod.bin)
        .elf(&prod.elf)
        .fuses(chip)
        .disk(disk)
        .no_reboot(true);
    let mut q = Qemu::boot(o)?;
    q.wait_prompt_timeout(BOOT)?;
    let show = |q: &mut Qemu, cmd: &str| -> Result<String> {
        let out = q.run_timeout(cmd, BOOT)?;
        println!(
            "demo:   | => {}",
            if cmd.len() > 60 { &cmd[..60] } else { cmd }
        );
        for l in out.lines() {
            println!("demo:   | {}", l.trim_end());
        }
        Ok(out)
    };
    let md = show(&mut q, "md.b 50000000 10")?;
    d.check(
        "production console: md refused before an unlock",
        md.contains("md.b: locked: `unlock` first (production build)"),
        md.clone(),
    );
    let challenge = mfg::challenge_line(&show(&mut q, "unlock")?);
    let cm_keys = d.dir.join("cm-keys");
    d.mfgtool_ok(&["keys", "new", "--dev", "--oem", "cm", "-o", &p(&cm_keys)])?;
    let forged = d
        .mfgtool_ok(&[
            "unlock-token",
            "--keys",
            &p(&cm_keys),
            "--challenge",
            &challenge,
            "--commands",
            "md,mw,blob,mmc",
        ])?
        .trim()
        .to_string();
    let out = show(&mut q, &format!("unlock {forged}"))?;
    d.check(
        "a token signed with the CM's own key is refused",
        out.contains("unlock: refused: bad signature"),
        out.clone(),
    );
    let token = mfg::unlock_token(&challenge, "md");
    let out = show(&mut q, &format!("unlock {token}"))?;
    d.check(
        "the OEM's token for this chip's challenge unlocks md",
        out.contains("unlocked for this boot: md"),
        out.clone(),
    );
    let md = show(&mut q, "md.b 50000000 10")?;
    let caam = show(&mut q, "md.l 30901000 4")?;
    let mw = show(&mut q, "mw.l 50000000 1")?;
    d.check(
        "unlocked: md reads RAM, never the CAAM; mw stays locked",
        md.starts_with("50000000:")
            && caam.contains("CAAM register window")
            && mw.contains("locked"),
        format!("{md}{caam}{mw}"),
    );
    Demo::poweroff(&mut q)?;
    Ok(())
}

/// The last act: a chip provisions from a disk that also holds Debian's
/// kernel, DTB and a small initramfs, autoboots Linux, and Linux reads the
/// `/chosen` properties and the blob table the loader left it.
fn linux_step(d: &mut Demo) -> Result<()> {
    use qemu_tests::linux;
    let loader = d.loader.clone();
    let setup = std::panic::catch_unwind(|| linux::provision_disk_signed("demo", &loader));
    let s = match setup {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("preparing the Linux disk: {e}").into()),
        Err(_) => {
            return Err(
                "fetching Debian's arm64 kernel failed (needs root on Debian; see above)".into(),
            );
        }
    };
    let production = build::build(&BuildOpts {
        board: crate::args::Board::Qemu,
        production: true,
        allow_dev_keys: true,
        ..BuildOpts::default()
    })?;
    // The CM's attack: Debian's kernel, unsigned, in the `kernel` partition.
    let k = linux::kernel_files();
    let raw = s.dir.join("unsigned.img");
    d.mfgtool_ok(&[
        "image",
        "-o",
        &p(&raw),
        "--size",
        "64M",
        "--kernel",
        &p(&k.image),
        "--dtb",
        &p(&k.dtb),
    ])?;
    let mut q = Qemu::boot(QemuOpts::new(&production.bin).fuses(&s.fuses).disk(&raw))?;
    let refused = q.wait_prompt_timeout(Duration::from_secs(120))?;
    for l in refused.lines().filter(|l| l.contains("boot:")) {
        println!("demo:   | {}", l.trim_end());
    }
    d.check(
        "the production loader refuses the unsigned kernel and boots nothing",
        refused.contains("boot: no 'boot' partition: this loader boots only a signed FIT")
            && !refused.contains("Starting kernel"),
        refused.clone(),
    );
    Demo::poweroff(&mut q)?;
    drop(q);

    let mut q = Qemu::boot(
        QemuOpts::new(&production.bin)
            .elf(&production.elf)
            .fuses(&s.fuses)
            .disk(&s.disk)
            .no_reboot(true),
    )?;
    let before = q.wait_for("Starting kernel ...", Duration::from_secs(120))?;
    for l in before
        .lines()
        .filter(|l| l.starts_with("   ") || l.starts_with("## "))
    {
        println!("demo:   | {}", l.trim_end());
    }
    d.check(
        "the chip provisioned itself and autobooted the signed FIT",
        before.contains("provision: device provisioned")
            && before.contains("Hit any key to stop autoboot:")
            && before.contains("Verifying configuration signature ... sha256,ecdsa256:")
            && before.contains("Verifying Hash Integrity ... sha256 OK"),
        before.clone(),
    );
    let log = q
        .wait_for("init: done", Duration::from_secs(180))?
        .replace('\r', "");
    for l in log.lines().filter(|l| {
        l.contains("Linux version") || l.starts_with("chosen: ") || l.starts_with("blob: ")
    }) {
        println!("demo:   | {}", l.trim_end());
    }
    let blobs = log.lines().filter(|l| l.starts_with("blob: ")).count();
    d.check(
        "Linux sees state done and its 3 blobs on the eMMC",
        log.contains("chosen: mfgprot,state=done") && blobs == 3,
        log.clone(),
    );
    d.check(
        "Linux runs with the signed command line",
        log.contains(&format!("cmdline: {}", linux::SIGNED_BOOTARGS)),
        log.clone(),
    );
    let st = q.wait_exit(Duration::from_secs(60))?;
    d.check(
        "Linux powered the machine off cleanly",
        st.success(),
        format!("{st}"),
    );
    Ok(())
}
