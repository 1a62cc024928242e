//! `mmc`: U-Boot's eMMC commands on USDHC3 (an SD card stands in on QEMU).

use super::{CmdError, Command, arity};
use crate::console::args::hex;
use crate::machine::{Machine, outln};
use block::gpt::Gpt;
use board::{Current, Platform};
use core::fmt::Write;
use usdhc::{CardKind, MmcError, Part};

pub const MMC: Command = Command {
    name: "mmc",
    sized: false,
    summary: "MMC sub system",
    usage: "info - display info of the current MMC device\nmmc read addr blk# cnt\nmmc write addr blk# cnt\nmmc erase blk# cnt\nmmc rescan\nmmc part - lists available partition on current MMC device\nmmc dev [dev] [part] - show or set current mmc device [partition]\nmmc list - lists available devices\n    (all numbers hex, as in U-Boot)",
    run: mmc,
};

fn mmc_err(e: MmcError) -> CmdError {
    // The driver's messages start with "mmc: ", as does every error of this
    // command: print it once.
    struct NoPrefix(MmcError);
    impl core::fmt::Display for NoPrefix {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            let mut s: heapless::String<240> = heapless::String::new();
            let _ = write!(s, "{}", self.0);
            f.write_str(s.strip_prefix("mmc: ").unwrap_or(&s))
        }
    }
    CmdError::msg(format_args!("{}", NoPrefix(e)))
}

fn kind(k: CardKind) -> &'static str {
    match k {
        CardKind::Sd => "SD",
        _ => "eMMC",
    }
}

/// Initialises the card and prints U-Boot's `MMC:` boot line.
pub fn report_card(m: &mut Machine) {
    let dev = Current::MMC_DEV;
    match m.mmc.init() {
        Ok(info) => {
            let mib = info.user_blocks >> 11;
            outln!(
                m,
                "MMC:   FSL_SDHC: {} ({} {} MiB)",
                dev,
                kind(info.kind),
                mib
            );
        }
        Err(e) => outln!(m, "MMC:   FSL_SDHC: {} ({})", dev, e),
    }
}

/// The card, initialising it first if needed.
fn ready(m: &mut Machine) -> Result<(), CmdError> {
    if m.mmc.info().is_none() {
        m.mmc.init().map_err(mmc_err)?;
    }
    Ok(())
}

fn mmc(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    arity(args, 1, 4)?;
    let dev = Current::MMC_DEV;
    match args[1] {
        "list" => {
            arity(args, 1, 1)?;
            let k = m.mmc.info().map(|i| kind(i.kind));
            match k {
                Some(k) => outln!(m, "FSL_SDHC: {} ({})", dev, k),
                None => outln!(m, "FSL_SDHC: {}", dev),
            }
            Ok(())
        }
        "rescan" => {
            arity(args, 1, 1)?;
            m.mmc.init().map_err(mmc_err)?;
            Ok(())
        }
        "dev" => {
            arity(args, 1, 3)?;
            if let Some(n) = args.get(2) {
                let n = hex(n)?;
                if n != u64::from(dev) {
                    return Err(CmdError::msg(format_args!(
                        "no mmc device at slot {n:x} (only {dev})"
                    )));
                }
            }
            ready(m)?;
            if let Some(p) = args.get(3) {
                let part = u8::try_from(hex(p)?)
                    .ok()
                    .and_then(Part::from_number)
                    .ok_or_else(|| {
                        CmdError::msg(format_args!(
                            "partition must be 0 (user), 1 (boot0) or 2 (boot1)"
                        ))
                    })?;
                m.mmc.select_partition(part).map_err(mmc_err)?;
                outln!(m, "switch to partitions #{}, OK", part as u8);
            }
            let p = m.mmc.partition() as u8;
            outln!(m, "mmc{}(part {}) is current device", dev, p);
            Ok(())
        }
        "info" => {
            arity(args, 1, 1)?;
            ready(m)?;
            let i = *m
                .mmc
                .info()
                .ok_or_else(|| CmdError::msg(format_args!("no card")))?;
            outln!(m, "Device: FSL_SDHC");
            outln!(m, "Manufacturer ID: {:x}", i.manufacturer_id);
            outln!(m, "OEM: {:x}", i.oem_id);
            outln!(m, "Name: {}", i.name());
            outln!(m, "Bus Speed: {}", i.mode.hz());
            outln!(m, "Mode: {}", i.mode);
            outln!(m, "Rd Block Len: 512");
            outln!(
                m,
                "{} version {}",
                if i.kind == CardKind::Sd { "SD" } else { "MMC" },
                i.version
            );
            outln!(
                m,
                "High Capacity: {}",
                if i.high_capacity { "Yes" } else { "No" }
            );
            let _ = write!(m, "Capacity: ");
            size(m, i.user_blocks * 512);
            outln!(m, "Bus Width: {}-bit", i.bus_width.bits());
            outln!(
                m,
                "Erase Group Size: {} KiB",
                u64::from(i.erase_group_blocks) / 2
            );
            if i.kind != CardKind::Sd {
                let _ = write!(m, "Boot Capacity: ");
                size(m, i.boot_size);
                let _ = write!(m, "RPMB Capacity: ");
                size(m, i.rpmb_size);
                outln!(m, "Partition config: 0x{:02x}", i.partition_config);
            }
            Ok(())
        }
        "read" | "write" => {
            arity(args, 4, 4)?;
            let (addr, blk, cnt) = (hex(args[2])?, hex(args[3])?, hex(args[4])?);
            let write = args[1] == "write";
            outln!(m);
            let _ = write!(
                m,
                "MMC {}: dev # {}, block # {}, count {} ... ",
                args[1], dev, blk, cnt
            );
            let verb = if write { "written" } else { "read" };
            let r = transfer(m, write, addr, blk, cnt);
            match &r {
                Ok(()) => outln!(m, "{} blocks {}: OK", cnt, verb),
                Err(_) => outln!(m, "0 blocks {}: ERROR", verb),
            }
            r
        }
        "erase" => {
            arity(args, 3, 3)?;
            let (blk, cnt) = (hex(args[2])?, hex(args[3])?);
            outln!(m);
            let _ = write!(
                m,
                "MMC erase: dev # {}, block # {}, count {} ... ",
                dev, blk, cnt
            );
            let r = if cnt == 0 {
                Err(CmdError::msg(format_args!("count must be at least 1")))
            } else {
                ready(m).and_then(|()| m.mmc.erase(blk, cnt).map_err(mmc_err))
            };
            match &r {
                Ok(()) => outln!(m, "{} blocks erased: OK", cnt),
                Err(_) => outln!(m, "0 blocks erased: ERROR"),
            }
            r
        }
        "part" => {
            arity(args, 1, 1)?;
            ready(m)?;
            let gpt = Gpt::read(&mut m.mmc).map_err(|e| CmdError::msg(format_args!("{e}")))?;
            outln!(m);
            outln!(
                m,
                "Partition Map for MMC device {}  --   Partition Type: EFI",
                dev
            );
            outln!(m);
            if let block::gpt::Source::Backup { primary } = gpt.source {
                outln!(m, "(primary GPT bad: {}; using the backup)", primary);
            }
            outln!(m, "Part\tStart LBA\tEnd LBA\t\tName");
            outln!(m, "\tAttributes");
            outln!(m, "\tType GUID");
            outln!(m, "\tPartition GUID");
            for p in gpt.partitions() {
                outln!(
                    m,
                    "{:3}\t0x{:08x}\t0x{:08x}\t\"{}\"",
                    p.index,
                    p.first_lba,
                    p.last_lba,
                    p.display_name()
                );
                outln!(m, "\tattrs:\t0x{:016x}", p.attributes);
                outln!(m, "\ttype:\t{}", p.type_guid);
                outln!(m, "\tguid:\t{}", p.unique_guid);
            }
            Ok(())
        }
        other => Err(CmdError::msg(format_args!("unknown subcommand '{other}'"))),
    }
}

/// Checks a block transfer fully (device range, RAM range) before any I/O.
fn transfer(m: &mut Machine, write: bool, addr: u64, blk: u64, cnt: u64) -> Result<(), CmdError> {
    if cnt == 0 {
        return Err(CmdError::msg(format_args!("count must be at least 1")));
    }
    ready(m)?;
    let end = blk
        .checked_add(cnt)
        .ok_or_else(|| CmdError::msg(format_args!("block range overflows")))?;
    let last = block::BlockDevice::num_blocks(&m.mmc);
    if end > last {
        return Err(CmdError::msg(format_args!(
            "blocks 0x{blk:x}..0x{end:x} are past the end of the device (0x{last:x} blocks)"
        )));
    }
    let len = cnt
        .checked_mul(512)
        .ok_or_else(|| CmdError::msg(format_args!("count too large")))?;
    let r = m.ram(addr, len)?;
    // SAFETY: a checked RAM range outside the loader, referenced only here.
    let buf = unsafe { r.slice_mut() };
    if write {
        m.mmc.write(blk, buf)
    } else {
        m.mmc.read(blk, buf)
    }
    .map_err(mmc_err)
}

/// U-Boot's `print_size`: `7.3 GiB`, `4 MiB`.
fn size(m: &mut Machine, bytes: u64) {
    const UNITS: [(&str, u32); 3] = [("GiB", 30), ("MiB", 20), ("KiB", 10)];
    for (name, shift) in UNITS {
        if bytes >= 1 << shift {
            let whole = bytes >> shift;
            let tenth = ((bytes - (whole << shift)) * 10) >> shift;
            if tenth == 0 {
                outln!(m, "{} {}", whole, name);
            } else {
                outln!(m, "{}.{} {}", whole, tenth, name);
            }
            return;
        }
    }
    outln!(m, "{} Bytes", bytes);
}
