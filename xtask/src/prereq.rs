//! Prerequisite checks (and installs, where this machine allows it).
//!
//! Nothing may need installing by hand: as root on Debian the missing
//! packages are installed with apt (QEMU from backports), the rustup target
//! with rustup and `defmt-print` with cargo. Elsewhere the exact commands are
//! printed and the check fails.

use crate::{Result, cargo, run_cmd, show};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// QEMU must be at least this major version (the first with `imx8mp-evk`).
pub const MIN_QEMU_MAJOR: u32 = 9;

/// What a command needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Need {
    /// Build and boot on QEMU: rustup target, QEMU, defmt-print.
    Qemu,
    /// Everything the tests use: the above plus the Debian tools.
    All,
}

/// Tools found.
#[derive(Clone, Debug)]
pub struct Tools {
    /// The `defmt-print` binary.
    pub defmt_print: PathBuf,
}

/// Debian packages the tests use: (package, how to check it is there).
const DEBIAN_TOOLS: &[(&str, &[&str])] = &[
    ("gdisk", &["sgdisk", "--version"]),
    ("u-boot-tools", &["mkimage", "-V"]),
    ("device-tree-compiler", &["dtc", "--version"]),
    ("uuu", &["uuu", "-h"]),
    ("openssl", &["openssl", "version"]),
    ("device-tree-compiler", &["dtc", "--version"]),
    (
        "python3-cryptography",
        &["python3", "-c", "import cryptography"],
    ),
    // The independent FIT verifier (fit/check/fit_check_sign.py) runs on
    // Debian's interpreter, which has both modules.
    (
        "python3-libfdt",
        &["/usr/bin/python3", "-c", "import libfdt, cryptography"],
    ),
];

/// Runs `argv` with no input and its output discarded.
fn quiet_status(argv: &[&str]) -> std::io::Result<std::process::ExitStatus> {
    Command::new(argv[0])
        .args(&argv[1..])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
}

fn runs(argv: &[&str]) -> bool {
    quiet_status(argv).is_ok()
}

fn succeeds(argv: &[&str]) -> bool {
    quiet_status(argv).is_ok_and(|s| s.success())
}

fn output(argv: &[&str]) -> Option<String> {
    let o = Command::new(argv[0]).args(&argv[1..]).output().ok()?;
    o.status
        .success()
        .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
}

fn is_root() -> bool {
    output(&["id", "-u"]).is_some_and(|s| s.trim() == "0")
}

fn can_apt() -> bool {
    is_root() && Path::new("/etc/debian_version").exists() && runs(&["apt-get", "--version"])
}

/// The Debian codename from /etc/os-release (e.g. `bookworm`).
fn codename() -> String {
    fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VERSION_CODENAME="))
                .map(|v| v.trim_matches('"').to_string())
        })
        .unwrap_or_else(|| "bookworm".into())
}

/// Parses "QEMU emulator version 10.0.2 (...)" into its major version.
pub fn qemu_major(version_output: &str) -> Option<u32> {
    let rest = version_output.split("version ").nth(1)?;
    rest.split(['.', ' ']).next()?.parse().ok()
}

/// Why the installed QEMU is not usable, or `None` when it is.
fn qemu_problem() -> Option<String> {
    let Some(v) = output(&["qemu-system-aarch64", "--version"]) else {
        return Some("qemu-system-aarch64 is not installed".into());
    };
    match qemu_major(&v) {
        Some(m) if m >= MIN_QEMU_MAJOR => {}
        _ => {
            return Some(format!(
                "qemu-system-aarch64 is too old (need >= {MIN_QEMU_MAJOR}): {}",
                v.lines().next().unwrap_or("")
            ));
        }
    }
    let machines = output(&["qemu-system-aarch64", "-machine", "help"]).unwrap_or_default();
    if !machines
        .lines()
        .any(|l| l.split_whitespace().next() == Some("imx8mp-evk"))
    {
        return Some("qemu-system-aarch64 has no machine imx8mp-evk".into());
    }
    None
}

/// The Debian mirror the machine already uses, from its apt sources, so no
/// host name is written into this tool.
pub fn debian_mirror(sources: &[(String, String)], codename: &str) -> Option<String> {
    for (name, text) in sources {
        if name.ends_with(".sources") {
            // deb822 stanzas: find one whose Suites include the codename.
            for stanza in text.split("\n\n") {
                let field = |key: &str| {
                    stanza
                        .lines()
                        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
                };
                let (Some(uris), Some(suites)) = (field("URIs:"), field("Suites:")) else {
                    continue;
                };
                if suites.split_whitespace().any(|s| s == codename) {
                    return uris.split_whitespace().next().map(String::from);
                }
            }
        } else {
            for l in text.lines() {
                let w: Vec<&str> = l.split_whitespace().collect();
                // deb [opts] URI suite components...
                let w: Vec<&str> = w.into_iter().filter(|x| !x.starts_with('[')).collect();
                if w.len() >= 3 && w[0] == "deb" && w[2] == codename {
                    return Some(w[1].to_string());
                }
            }
        }
    }
    None
}

fn apt_sources() -> Vec<(String, String)> {
    let mut out = Vec::new();
    if let Ok(t) = fs::read_to_string("/etc/apt/sources.list") {
        out.push(("sources.list".to_string(), t));
    }
    if let Ok(rd) = fs::read_dir("/etc/apt/sources.list.d") {
        let mut names: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
        names.sort();
        for p in names {
            let name = p
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if !(name.ends_with(".list") || name.ends_with(".sources")) {
                continue;
            }
            if let Ok(t) = fs::read_to_string(&p) {
                out.push((name, t));
            }
        }
    }
    out
}

struct Apt {
    updated: bool,
}

impl Apt {
    fn update(&mut self) -> Result<()> {
        if !self.updated {
            run_cmd(Command::new("apt-get").args(["update"]))?;
            self.updated = true;
        }
        Ok(())
    }

    fn install(&mut self, from: Option<&str>, pkgs: &[&str]) -> Result<()> {
        self.update()?;
        let mut c = Command::new("apt-get");
        c.env("DEBIAN_FRONTEND", "noninteractive").args([
            "install",
            "-y",
            "--no-install-recommends",
        ]);
        if let Some(suite) = from {
            c.args(["-t", suite]);
        }
        c.args(pkgs);
        run_cmd(&mut c)
    }
}

fn ensure_backports_source(code: &str) -> Result<()> {
    let suite = format!("{code}-backports");
    let sources = apt_sources();
    if sources.iter().any(|(_, t)| t.contains(&suite)) {
        return Ok(());
    }
    let mirror = debian_mirror(&sources, code)
        .ok_or("cannot find the Debian mirror in /etc/apt/sources.list{,.d}")?;
    let path = format!("/etc/apt/sources.list.d/{suite}.sources");
    let text = format!(
        "Types: deb\nURIs: {mirror}\nSuites: {suite}\nComponents: main\n\
         Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    );
    eprintln!("xtask: adding apt source {path}");
    fs::write(&path, text).map_err(|e| format!("cannot write {path}: {e}"))?;
    Ok(())
}

fn ensure_target() -> Result<()> {
    let installed = output(&["rustup", "target", "list", "--installed"]);
    match installed {
        Some(list) if list.lines().any(|l| l.trim() == crate::build::TARGET) => Ok(()),
        Some(_) => run_cmd(Command::new("rustup").args(["target", "add", crate::build::TARGET])),
        None => Err(format!(
            "rustup not found: install the {} target for this toolchain",
            crate::build::TARGET
        )
        .into()),
    }
}

fn ensure_qemu(apt: &mut Apt) -> Result<()> {
    let Some(problem) = qemu_problem() else {
        return Ok(());
    };
    let code = codename();
    let suite = format!("{code}-backports");
    if !can_apt() {
        return Err(format!(
            "{problem}.\nInstall QEMU >= {MIN_QEMU_MAJOR} with imx8mp-evk, on Debian as root:\n  \
             add a deb822 source for suite {suite} (same mirror, component main) under \
             /etc/apt/sources.list.d/\n  apt-get update\n  \
             apt-get install -y -t {suite} qemu-system-arm"
        )
        .into());
    }
    eprintln!("xtask: {problem}; installing qemu-system-arm from {suite}");
    ensure_backports_source(&code)?;
    apt.updated = false;
    apt.install(Some(&suite), &["qemu-system-arm"])?;
    match qemu_problem() {
        None => Ok(()),
        Some(p) => Err(format!("after installing: {p}").into()),
    }
}

fn ensure_debian_tools(apt: &mut Apt) -> Result<()> {
    let missing: Vec<&str> = DEBIAN_TOOLS
        .iter()
        .filter(|(_, check)| !succeeds(check))
        .map(|(pkg, _)| *pkg)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !can_apt() {
        return Err(format!(
            "missing Debian packages: {}\n  apt-get install -y {}",
            missing.join(" "),
            missing.join(" ")
        )
        .into());
    }
    apt.install(None, &missing)?;
    let still: Vec<&str> = DEBIAN_TOOLS
        .iter()
        .filter(|(_, check)| !succeeds(check))
        .map(|(pkg, _)| *pkg)
        .collect();
    if still.is_empty() {
        Ok(())
    } else {
        Err(format!("still missing after apt-get install: {}", still.join(" ")).into())
    }
}

fn ensure_defmt_print() -> Result<PathBuf> {
    if let Some(p) = qemu_tests::defmt_print_path() {
        return Ok(p);
    }
    let mut c = cargo();
    c.args(["install", "defmt-print", "--locked"]);
    run_cmd(&mut c).map_err(|e| format!("{e}; run `{}` by hand", show(&c)))?;
    qemu_tests::defmt_print_path()
        .ok_or_else(|| "defmt-print installed but not found in PATH or ~/.cargo/bin".into())
}

/// Checks, and where possible installs, what `need` requires.
pub fn ensure(need: Need) -> Result<Tools> {
    let mut apt = Apt { updated: false };
    ensure_target()?;
    ensure_qemu(&mut apt)?;
    if need == Need::All {
        ensure_debian_tools(&mut apt)?;
    }
    let defmt_print = ensure_defmt_print()?;
    eprintln!(
        "xtask: prerequisites ok (target {}, QEMU imx8mp-evk, {})",
        crate::build::TARGET,
        defmt_print.display()
    );
    Ok(Tools { defmt_print })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_qemu_versions() {
        assert_eq!(
            qemu_major("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds)\nCopyright"),
            Some(10)
        );
        assert_eq!(qemu_major("QEMU emulator version 7.2.15"), Some(7));
        assert_eq!(qemu_major("something else"), None);
    }

    #[test]
    fn finds_the_mirror_in_deb822_and_one_line_sources() {
        let deb822 = "Types: deb\nURIs: http://mirror.example/debian\nSuites: bookworm \
                      bookworm-updates\nComponents: main\n\nTypes: deb\nURIs: \
                      http://sec.example/debian-security\nSuites: bookworm-security\n";
        let s = vec![("debian.sources".to_string(), deb822.to_string())];
        assert_eq!(
            debian_mirror(&s, "bookworm").as_deref(),
            Some("http://mirror.example/debian")
        );
        assert_eq!(debian_mirror(&s, "trixie"), None);
        let one = "# c\ndeb [arch=amd64] http://m.example/debian bookworm main\n";
        let s = vec![("sources.list".to_string(), one.to_string())];
        assert_eq!(
            debian_mirror(&s, "bookworm").as_deref(),
            Some("http://m.example/debian")
        );
    }
}
