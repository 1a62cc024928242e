//! The `mmc` commands against a disk image on USDHC3 (an SD card in QEMU),
//! checked from the host: GPT made by `sgdisk`, data placed and inspected
//! in the image file by the test itself.

mod common;

use common::*;
use qemu_tests::{QemuOpts, loader_image};

/// 16 MiB: 0x8000 blocks.
const DISK: u64 = 16 << 20;
const DISK_BLOCKS: u64 = DISK / BLK;

const LINUX_FS: &str = "0fc63daf-8483-4772-8e79-3d69d8477de4";
const BASIC_DATA: &str = "ebd0a0a2-b9e5-4433-87c0-68b6b72699c7";

fn parts() -> [PartSpec; 3] {
    [
        PartSpec {
            name: "boot_a",
            first: 0x800,
            last: 0x17ff,
            type_code: "8300",
            guid: "11111111-2222-3333-4444-555555555555",
        },
        PartSpec {
            name: "keystore",
            first: 0x1800,
            last: 0x1fff,
            type_code: "0700",
            guid: "a1b2c3d4-0001-4002-8003-000000000abc",
        },
        PartSpec {
            name: "rootfs",
            first: 0x2000,
            last: 0x7fde,
            type_code: "8300",
            guid: "0badc0de-dead-4eef-8bad-f00dfacecafe",
        },
    ]
}

fn disk_opts(disk: &std::path::Path) -> QemuOpts {
    QemuOpts::new(loader_image()).disk(disk)
}

/// The `Part` lines of `mmc part`: (index, first, last, name, type, guid).
fn part_rows(out: &str) -> Vec<(u32, u64, u64, String, String, String)> {
    let lines: Vec<&str> = out.lines().collect();
    let mut rows = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let f: Vec<&str> = l.split('\t').collect();
        if f.len() == 4
            && let Ok(idx) = f[0].trim().parse::<u32>()
        {
            let hexnum = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
            let field = |k: usize, key: &str| {
                lines[i + k]
                    .trim()
                    .strip_prefix(key)
                    .unwrap_or_else(|| panic!("line {:?} lacks {key}", lines[i + k]))
                    .trim()
                    .to_lowercase()
            };
            rows.push((
                idx,
                hexnum(f[1]),
                hexnum(f[2]),
                f[3].trim_matches('"').to_string(),
                field(2, "type:"),
                field(3, "guid:"),
            ));
        }
    }
    rows
}

fn assert_parts_match(out: &str) {
    let rows = part_rows(out);
    let want = parts();
    assert_eq!(rows.len(), want.len(), "mmc part: {out}");
    for (i, (r, w)) in rows.iter().zip(want.iter()).enumerate() {
        assert_eq!(r.0, u32::try_from(i + 1).unwrap(), "{out}");
        assert_eq!((r.1, r.2), (w.first, w.last), "LBAs of {}: {out}", w.name);
        assert_eq!(r.3, w.name, "{out}");
        let ty = if w.type_code == "8300" {
            LINUX_FS
        } else {
            BASIC_DATA
        };
        assert_eq!(r.4, ty, "type of {}: {out}", w.name);
        assert_eq!(r.5, w.guid, "guid of {}: {out}", w.name);
    }
}

#[test]
fn mmc_part_lists_what_sgdisk_created() {
    let disk = gpt_disk("part.img", DISK, &parts());
    let (mut q, banner) = boot(disk_opts(&disk));
    assert!(
        banner.contains("MMC:   FSL_SDHC: 2 (SD 16 MiB)"),
        "banner: {banner}"
    );
    let out = run(&mut q, "mmc part");
    assert!(out.contains("Partition Type: EFI"), "{out}");
    assert!(!out.contains("primary GPT bad"), "{out}");
    assert_parts_match(&out);
}

#[test]
fn a_corrupt_primary_gpt_is_recovered_from_the_backup() {
    let disk = gpt_disk("backup.img", DISK, &parts());
    // Break the primary header's CRC field (LBA 1, offset 16).
    let mut crc = read_at(&disk, BLK + 16, 4);
    crc[0] ^= 0xff;
    write_at(&disk, BLK + 16, &crc);
    let (mut q, _) = boot(disk_opts(&disk));
    let out = run(&mut q, "mmc part");
    assert!(
        out.contains("(primary GPT bad: header CRC mismatch"),
        "no recovery notice: {out}"
    );
    assert!(out.contains("using the backup"), "{out}");
    assert_parts_match(&out);
    poweroff(q);

    // With the backup header broken too, a clear error and no table.
    let last = DISK - BLK;
    write_at(&disk, last, b"NOT A GPT HEADER");
    let (mut q, _) = boot(disk_opts(&disk));
    let out = run(&mut q, "mmc part");
    assert!(
        out.contains("mmc: gpt: primary table invalid (header CRC mismatch")
            && out.contains("backup table invalid (no \"EFI PART\" signature)"),
        "{out}"
    );
    assert!(part_rows(&out).is_empty(), "{out}");
}

#[test]
fn read_returns_host_data_and_write_lands_at_the_right_lba() {
    let disk = gpt_disk("rw.img", DISK, &parts());
    let host = pattern(1, 4 * BLK as usize);
    write_at(&disk, 0x900 * BLK, &host);
    let (mut q, _) = boot(disk_opts(&disk));

    let out = run(&mut q, &format!("mmc read {SCRATCH:x} 900 4"));
    assert_eq!(
        out,
        "\r\nMMC read: dev # 2, block # 2304, count 4 ... 4 blocks read: OK\r\n"
    );
    // Check every byte of the first and last block, through md.
    assert_eq!(ram_bytes(&mut q, SCRATCH, 512), host[..512]);
    assert_eq!(ram_bytes(&mut q, SCRATCH + 3 * BLK, 512), host[3 * 512..]);

    // Write two of those blocks elsewhere: they land at LBA 0x1234..0x1235
    // and nowhere else.
    let before = std::fs::read(&disk).expect("read image");
    let out = run(&mut q, &format!("mmc write {:x} 1234 2", SCRATCH + BLK));
    assert!(out.contains("2 blocks written: OK"), "{out}");
    let after = std::fs::read(&disk).expect("read image");
    let at = 0x1234 * BLK as usize;
    assert_eq!(after[at..at + 1024], host[512..1536]);
    assert_eq!(after[..at], before[..at], "bytes before LBA 0x1234 changed");
    assert_eq!(
        after[at + 1024..],
        before[at + 1024..],
        "bytes after LBA 0x1235 changed"
    );

    // Data the guest writes with mw reaches the image, and PIO mode agrees.
    run(&mut q, &format!("mw.l {SCRATCH:x} c0ffee11 80"));
    assert_eq!(
        run(&mut q, "mmc mode pio single"),
        "mmc2: pio transfers, single-block commands\r\n"
    );
    let out = run(&mut q, &format!("mmc write {SCRATCH:x} 4000 1"));
    assert!(out.contains("1 blocks written: OK"), "{out}");
    let blk = read_at(&disk, 0x4000 * BLK, 512);
    assert!(
        blk.chunks(4).all(|w| w == [0x11, 0xee, 0xff, 0xc0]),
        "LBA 0x4000: {blk:02x?}"
    );
    run(&mut q, &format!("mw.l {SCRATCH:x} 0 80"));
    let out = run(&mut q, &format!("mmc read {SCRATCH:x} 900 1"));
    assert!(out.contains("1 blocks read: OK"), "{out}");
    assert_eq!(ram_bytes(&mut q, SCRATCH, 512), host[..512]);
}

#[test]
fn a_four_mib_transfer_round_trips_with_the_same_checksum() {
    const MIB4: u64 = 4 << 20;
    let disk = blank_disk("big.img", 32 << 20);
    let src = pattern(4, MIB4 as usize);
    write_at(&disk, 0x2000 * BLK, &src);
    let sum = fnv1a(&src);
    let (mut q, _) = boot(disk_opts(&disk));
    // 0x2000 blocks = 4 MiB: into RAM, then back out to LBA 0x8000.
    let out = run(&mut q, &format!("mmc read {SCRATCH:x} 2000 2000"));
    assert!(out.contains("8192 blocks read: OK"), "{out}");
    let out = run(&mut q, &format!("mmc write {SCRATCH:x} 8000 2000"));
    assert!(out.contains("8192 blocks written: OK"), "{out}");
    // The last 16 bytes in RAM are the source's (spot check through md).
    assert_eq!(
        ram_bytes(&mut q, SCRATCH + MIB4 - 16, 16),
        src[src.len() - 16..]
    );
    poweroff(q);
    let copy = read_at(&disk, 0x8000 * BLK, MIB4 as usize);
    assert_eq!(fnv1a(&copy), sum, "checksum of the copy differs");
    assert!(copy == src);
    // Nothing beyond the copy was touched.
    assert!(
        read_at(&disk, 0x8000 * BLK + MIB4, 4096)
            .iter()
            .all(|&b| b == 0)
    );
}

#[test]
fn bad_requests_are_refused_and_write_nothing() {
    let disk = gpt_disk("bad.img", DISK, &parts());
    let image = std::fs::read(&disk).expect("read image");
    let (mut q, _) = boot(disk_opts(&disk));
    run(&mut q, &format!("mw.l {SCRATCH:x} 5a5a5a5a 400"));
    let end = DISK_BLOCKS;
    let cases: Vec<(String, &str)> = vec![
        (
            format!("mmc write {SCRATCH:x} {:x} 2", end - 1),
            "past the end of the device (0x8000 blocks)",
        ),
        (
            format!("mmc write {SCRATCH:x} {end:x} 1"),
            "past the end of the device",
        ),
        (
            format!("mmc write {SCRATCH:x} ffffffffffffffff 2"),
            "block range overflows",
        ),
        (
            format!("mmc write {SCRATCH:x} 100 0"),
            "count must be at least 1",
        ),
        ("mmc write 20000000 100 1".into(), "is outside RAM"),
        ("mmc write 7ffffe00 100 2".into(), "is outside RAM"),
        ("mmc write 40200000 100 1".into(), "overlaps the loader"),
        ("mmc erase 100 0".into(), "count must be at least 1"),
        (format!("mmc erase {:x} 2", end - 1), "past the end"),
        (
            format!("mmc read {SCRATCH:x} {end:x} 1"),
            "past the end of the device",
        ),
        ("mmc read 40200000 0 1".into(), "overlaps the loader"),
        ("mmc read 7ffffe00 0 2".into(), "is outside RAM"),
    ];
    for (cmd, msg) in &cases {
        let out = run(&mut q, cmd);
        assert!(out.contains(msg), "`{cmd}` said {out:?}, expected {msg:?}");
        assert!(
            out.contains("0 blocks") && out.contains(": ERROR"),
            "`{cmd}`: {out:?}"
        );
    }
    // The loader image is intact (a read into it was refused).
    assert!(run(&mut q, "version").contains(env!("CARGO_PKG_VERSION")));
    poweroff(q);
    let now = std::fs::read(&disk).expect("read image");
    assert!(now == image, "the image changed");
}

#[test]
fn a_card_less_slot_reports_no_card() {
    let (mut q, banner) = boot(QemuOpts::new(loader_image()));
    assert!(
        banner.contains("MMC:   FSL_SDHC: 2 (mmc: no card present)"),
        "banner: {banner}"
    );
    for cmd in ["mmc info", "mmc part", "mmc rescan"] {
        let out = run(&mut q, cmd);
        assert_eq!(out, "mmc: no card present\r\n", "`{cmd}`");
    }
    let out = run(&mut q, &format!("mmc read {SCRATCH:x} 0 1"));
    assert!(
        out.contains("0 blocks read: ERROR") && out.contains("no card present"),
        "{out:?}"
    );
    assert_eq!(run(&mut q, "mmc list"), "FSL_SDHC: 2\r\n");
}

/// A high-capacity card (4 GiB, SDHC: block-addressed commands, CSD v2),
/// as the retired bare-metal uSDHC smoke test checked: a block near the end
/// of the card reads and writes at its own LBA (a byte-addressed command
/// would wrap it below 4 GiB).
#[test]
fn a_high_capacity_card_is_block_addressed_to_its_last_blocks() {
    const SIZE: u64 = 4 << 30;
    let disk = blank_disk("sdhc.img", SIZE);
    let lba = SIZE / BLK - 8;
    let host = pattern(7, BLK as usize);
    write_at(&disk, lba * BLK, &host);
    let (mut q, banner) = boot(disk_opts(&disk));
    assert!(
        banner.contains("MMC:   FSL_SDHC: 2 (SD 4096 MiB)"),
        "banner: {banner}"
    );
    let out = run(&mut q, &format!("mmc read {SCRATCH:x} {lba:x} 1"));
    assert!(out.contains("1 blocks read: OK"), "{out}");
    assert_eq!(ram_bytes(&mut q, SCRATCH, 512), host);
    run(&mut q, &format!("mw.l {SCRATCH:x} 5eed5eed 80"));
    let out = run(&mut q, &format!("mmc write {SCRATCH:x} {:x} 1", lba + 1));
    assert!(out.contains("1 blocks written: OK"), "{out}");
    poweroff(q);
    let blk = read_at(&disk, (lba + 1) * BLK, 512);
    assert!(
        blk.chunks(4).all(|w| w == [0xed, 0x5e, 0xed, 0x5e]),
        "{blk:02x?}"
    );
    let _ = std::fs::remove_file(&disk);
}
