//! `mmc`: U-Boot's eMMC commands on USDHC3 (an SD card stands in on QEMU).

use super::{CmdError, Command};
use crate::machine::{self, Machine, outln};
use crate::requests::mmc::{self as req, MmcRequest, Transfer};
use block::gpt::Gpt;
use board::{Current, Platform};
use core::fmt::Write;
use usdhc::{CardKind, MmcError};

pub const MMC: Command = Command {
    name: "mmc",
    sized: false,
    summary: "MMC sub system",
    usage: "info - display info of the current MMC device\nmmc read addr blk# cnt\nmmc write addr blk# cnt\nmmc erase blk# cnt\nmmc rescan\nmmc part - lists available partition on current MMC device\nmmc dev [dev] [part] - show or set current mmc device [partition]\nmmc list - lists available devices\nmmc mode adma2|pio [multi|single] - data transfer mode (for benches)\n    (all numbers hex, as in U-Boot)",
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

/// The card, initialising it first if needed.
fn ready(m: &mut Machine) -> Result<(), CmdError> {
    if m.mmc.info().is_none() {
        m.mmc.init().map_err(mmc_err)?;
    }
    Ok(())
}

fn mmc(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    let dev = Current::MMC_DEV;
    match req::parse(args, dev)? {
        MmcRequest::List => {
            let k = m.mmc.info().map(|i| machine::card_kind(i.kind));
            match k {
                Some(k) => outln!(m, "FSL_SDHC: {} ({})", dev, k),
                None => outln!(m, "FSL_SDHC: {}", dev),
            }
            Ok(())
        }
        MmcRequest::Rescan => {
            m.mmc.init().map_err(mmc_err)?;
            Ok(())
        }
        MmcRequest::Dev { part } => {
            ready(m)?;
            if let Some(part) = part {
                m.mmc.select_partition(part).map_err(mmc_err)?;
                outln!(m, "switch to partitions #{}, OK", part as u8);
            }
            let p = m.mmc.partition() as u8;
            outln!(m, "mmc{}(part {}) is current device", dev, p);
            Ok(())
        }
        MmcRequest::Info => {
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
        MmcRequest::Transfer(t) => {
            outln!(m);
            let _ = write!(
                m,
                "MMC {}: dev # {}, block # {}, count {} ... ",
                t.name(),
                dev,
                t.blk,
                t.cnt
            );
            let r = transfer(m, &t);
            match &r {
                Ok(()) => outln!(m, "{} blocks {}: OK", t.cnt, t.verb()),
                Err(_) => outln!(m, "0 blocks {}: ERROR", t.verb()),
            }
            r
        }
        MmcRequest::Erase(e) => {
            outln!(m);
            let _ = write!(
                m,
                "MMC erase: dev # {}, block # {}, count {} ... ",
                dev, e.blk, e.cnt
            );
            let r = e
                .check_count()
                .and_then(|()| ready(m))
                .and_then(|()| m.mmc.erase(e.blk, e.cnt).map_err(mmc_err));
            match &r {
                Ok(()) => outln!(m, "{} blocks erased: OK", e.cnt),
                Err(_) => outln!(m, "0 blocks erased: ERROR"),
            }
            r
        }
        MmcRequest::Part => {
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
        MmcRequest::Mode { mode, multi } => {
            m.mmc.set_transfer_mode(mode);
            m.mmc.set_multi_block(multi);
            outln!(
                m,
                "mmc{}: {} transfers, {}-block commands",
                dev,
                req::mode_name(mode),
                if multi { "multi" } else { "single" }
            );
            Ok(())
        }
    }
}

/// Checks a block transfer fully (device range, RAM range) before any I/O.
fn transfer(m: &mut Machine, t: &Transfer) -> Result<(), CmdError> {
    t.check_count()?;
    ready(m)?;
    let len = t.check_blocks(block::BlockDevice::num_blocks(&m.mmc))?;
    let r = m.ram(t.addr, len)?;
    // SAFETY: a checked RAM range outside the loader, referenced only here.
    let buf = unsafe { r.slice_mut() };
    if t.write {
        m.mmc.write(t.blk, buf)
    } else {
        m.mmc.read(t.blk, buf)
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
