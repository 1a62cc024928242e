//! `cargo xtask qemu`: the loader on QEMU with the console on this terminal.

use crate::args::{Board, BuildOpts};
use crate::prereq::{self, Need};
use crate::{Result, build, show};
use qemu_tests::QemuOpts;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Boots the loader with the console on this terminal; `defmt` is decoded
/// live into `target/qemu-defmt.log`. Ctrl-C goes to the guest (it cancels
/// a line); Ctrl-A X quits QEMU.
pub fn interactive(
    opts: BuildOpts,
    fuses: Option<PathBuf>,
    disk: Option<PathBuf>,
    extra: Vec<String>,
) -> Result<()> {
    let tools = prereq::ensure(Need::Qemu)?;
    if opts.board != Board::Qemu {
        eprintln!(
            "xtask: warning: the {} image has no CAAM/OCOTP emulation; it will fault on QEMU",
            opts.board.name()
        );
    }
    let out = build::build(&opts)?;
    let target = qemu_tests::target_dir();
    let log_path = target.join("qemu-defmt.log");
    let sock = std::env::temp_dir().join(format!("xtask-defmt-{}.sock", std::process::id()));
    let _ = fs::remove_file(&sock);
    let mut q = QemuOpts::new(&out.bin).elf(&out.elf).args(extra);
    q.fuses = fuses;
    q.disk = disk;
    let args = q.qemu_args(
        &format!("socket,path={},server=on,wait=on", sock.display()),
        "stdio,mux=on,signal=off",
    );
    let mut cmd = Command::new(&q.qemu);
    cmd.args(&args);
    eprintln!("$ {}", show(&cmd));
    eprintln!(
        "xtask: console below (Ctrl-A X quits QEMU); defmt log: {}",
        log_path.display()
    );
    let mut child = cmd.spawn().map_err(|e| format!("cannot start QEMU: {e}"))?;
    // QEMU waits for us on the defmt socket before it starts the guest.
    let start = Instant::now();
    let stream = loop {
        match UnixStream::connect(&sock) {
            Ok(s) => break s,
            Err(e) => {
                if child.try_wait()?.is_some() || start.elapsed() > Duration::from_secs(15) {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(format!("QEMU's defmt socket never came up: {e}").into());
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
    };
    let log = fs::File::create(&log_path)?;
    let mut decoder = Command::new(&tools.defmt_print)
        .arg("-e")
        .arg(&out.elf)
        .stdin(Stdio::piped())
        .stdout(log)
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start defmt-print: {e}"))?;
    let mut stdin = decoder.stdin.take().ok_or("defmt-print has no stdin")?;
    let pump = thread::spawn(move || {
        let mut s = stream;
        let mut buf = [0u8; 4096];
        while let Ok(n) = s.read(&mut buf) {
            if n == 0 || stdin.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let status = child.wait()?;
    let _ = pump.join();
    let _ = decoder.wait();
    let _ = fs::remove_file(&sock);
    eprintln!(
        "xtask: QEMU exited ({status}); defmt log in {}",
        log_path.display()
    );
    Ok(())
}
