//! Helpers shared by the storage and CAAM QEMU tests: scratch files, disk
//! images, parsing `md` output.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use qemu_tests::{Qemu, QemuOpts};

/// Block size of the card.
pub const BLK: u64 = 512;

/// A RAM scratch address far from the loader (1 GiB of RAM from 0x40000000).
pub const SCRATCH: u64 = 0x5000_0000;

/// A fresh file path under a per-process scratch directory.
pub fn tmp_path(name: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("qt-files-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(format!("{n}-{name}"))
}

/// A zero-filled raw image of `size` bytes (QEMU wants a power of two).
pub fn blank_disk(name: &str, size: u64) -> PathBuf {
    assert!(size.is_power_of_two());
    let p = tmp_path(name);
    let f = fs::File::create(&p).expect("create disk");
    f.set_len(size).expect("size disk");
    p
}

/// A partition for [`gpt_disk`]: name, first LBA, last LBA, sgdisk type
/// code, partition GUID.
pub struct PartSpec {
    pub name: &'static str,
    pub first: u64,
    pub last: u64,
    pub type_code: &'static str,
    pub guid: &'static str,
}

/// A raw image of `size` bytes with a GPT made by `sgdisk` (the host's
/// independent GPT writer).
pub fn gpt_disk(name: &str, size: u64, parts: &[PartSpec]) -> PathBuf {
    let p = blank_disk(name, size);
    let mut cmd = Command::new("sgdisk");
    cmd.arg("--clear");
    for (i, s) in parts.iter().enumerate() {
        let n = i + 1;
        cmd.arg(format!("--new={n}:{}:{}", s.first, s.last))
            .arg(format!("--change-name={n}:{}", s.name))
            .arg(format!("--typecode={n}:{}", s.type_code))
            .arg(format!("--partition-guid={n}:{}", s.guid));
    }
    cmd.arg(&p);
    let out = cmd.output().expect("sgdisk runs (Debian package gdisk)");
    assert!(
        out.status.success(),
        "sgdisk failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    p
}

/// Reads `len` bytes at byte offset `off` of a file.
pub fn read_at(path: &Path, off: u64, len: usize) -> Vec<u8> {
    let mut f = fs::File::open(path).expect("open");
    f.seek(SeekFrom::Start(off)).expect("seek");
    let mut b = vec![0u8; len];
    f.read_exact(&mut b).expect("read");
    b
}

/// Writes `data` at byte offset `off` of a file.
pub fn write_at(path: &Path, off: u64, data: &[u8]) {
    let mut f = fs::OpenOptions::new().write(true).open(path).expect("open");
    f.seek(SeekFrom::Start(off)).expect("seek");
    f.write_all(data).expect("write");
}

/// Deterministic pseudo-random bytes (xorshift64*), different per `seed`.
pub fn pattern(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// FNV-1a 64-bit: the checksum the multi-MiB test compares.
pub fn fnv1a(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Parses U-Boot `md` output (any width) into the displayed values, in
/// order, each as its hex digits (e.g. `"0e0e8db6"` for `md.l`).
pub fn md_values(out: &str) -> Vec<String> {
    let mut v = Vec::new();
    for line in out.lines() {
        let Some((addr, rest)) = line.split_once(": ") else {
            continue;
        };
        if addr.len() < 8 || !addr.chars().all(|c| c.is_ascii_hexdigit()) {
            continue;
        }
        // The ASCII column follows four spaces.
        let hex = rest.split_once("    ").map_or(rest, |(h, _)| h);
        v.extend(hex.split_whitespace().map(str::to_string));
    }
    v
}

/// Memory bytes shown by `md.b ADDR LEN` (run on the console).
pub fn ram_bytes(q: &mut Qemu, addr: u64, len: usize) -> Vec<u8> {
    let out = run(q, &format!("md.b {addr:x} {len:x}"));
    let b: Vec<u8> = md_values(&out)
        .iter()
        .map(|s| u8::from_str_radix(s, 16).expect("md.b byte"))
        .collect();
    assert_eq!(b.len(), len, "md.b output: {out:?}");
    b
}

/// Puts `data` into guest RAM at `addr` with `mw.b` (small data only).
pub fn put_bytes(q: &mut Qemu, addr: u64, data: &[u8]) {
    for (i, b) in data.iter().enumerate() {
        let out = run(q, &format!("mw.b {:x} {b:x}", addr + i as u64));
        assert_eq!(out, "", "mw.b: {out:?}");
    }
}

/// Decodes a hex string (upper or lower case).
pub fn unhex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Lower-case hex of bytes.
pub fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs a console command (long timeout for big transfers).
pub fn run(q: &mut Qemu, cmd: &str) -> String {
    q.run_timeout(cmd, Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("`{cmd}`: {e}"))
}

/// Boots `opts` to the prompt and returns QEMU and the banner.
pub fn boot(opts: QemuOpts) -> (Qemu, String) {
    let mut q = Qemu::boot(opts).expect("QEMU starts");
    let banner = q.wait_prompt().expect("prompt");
    (q, banner)
}

/// Ends QEMU cleanly so its disk image is complete and unlocked.
pub fn poweroff(mut q: Qemu) {
    q.send_line("poweroff").expect("send");
    let st = q.wait_exit(Duration::from_secs(10)).expect("QEMU exits");
    assert!(st.success(), "QEMU exit status {st}");
}
