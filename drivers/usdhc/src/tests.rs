//! Driver tests against the card model in `fake`.

use super::*;
use crate::fake::{CardSpec, CardType, Fake, FakeClock, FakeDma, FakeRegs};
use std::string::ToString;
use std::vec;
use std::vec::Vec;

type Dev = Usdhc<FakeRegs, FakeDma, FakeClock>;

fn setup(spec: Option<CardSpec>, cfg: Config) -> (Fake, Dev) {
    let fake = Fake::new(spec);
    let mmc = Usdhc::new(fake.regs(), fake.dma(), Fake::clock(), fake.dma_mem(), cfg);
    (fake, mmc)
}

fn emmc() -> (Fake, Dev) {
    let (f, mut m) = setup(Some(CardSpec::emmc()), Config::IMX8MP_EVK_EMMC);
    m.init().unwrap();
    f.take_log();
    (f, m)
}

fn sd(blocks: u64) -> (Fake, Dev) {
    let (f, mut m) = setup(Some(CardSpec::sd(CardType::SdHc, blocks)), Config::QEMU_SD);
    m.init().unwrap();
    f.take_log();
    (f, m)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from((i * 7 + i / 512) % 256).unwrap() ^ seed)
        .collect()
}

fn cmds(log: &[(u8, u32)]) -> Vec<u8> {
    log.iter().map(|&(c, _)| c).collect()
}

#[test]
fn emmc_init_reads_ext_csd_and_switches_bus() {
    let mut spec = CardSpec::emmc();
    spec.partition_config = 0x49; // left in boot0 by someone
    let (f, mut m) = setup(Some(spec), Config::IMX8MP_EVK_EMMC);
    let info = m.init().unwrap();
    assert_eq!(info.kind, CardKind::Mmc);
    assert_eq!(info.manufacturer_id, 0x15);
    assert_eq!(info.oem_id, 0x01);
    assert_eq!(info.name(), "FAKEMC");
    assert_eq!((info.revision, info.serial), (0x10, 0xCAFE_F00D));
    assert!(info.high_capacity);
    assert_eq!(info.user_blocks, 4096);
    assert_eq!(info.boot_size, 128 * 1024);
    assert_eq!(info.rpmb_size, 128 * 1024);
    assert!(info.has_rpmb());
    assert_eq!(info.bus_width, BusWidth::Bit8);
    assert_eq!(info.mode, BusMode::MmcHs52);
    assert_eq!(info.version.to_string(), "5.1");
    assert_eq!(info.rca, 1);
    assert!(info.trim);
    assert_eq!(
        info.erase_group_blocks, 8,
        "from the CSD (ERASE_GROUP_DEF 0)"
    );
    // Back to the user area, boot config bits kept.
    assert_eq!(info.partition_config, 0x48);
    assert_eq!(f.ext_csd(179), 0x48);
    assert_eq!(f.ext_csd(183), 2);
    assert_eq!(f.ext_csd(185), 1);
    assert_eq!(f.card_bus_width(), 8);
    assert_eq!((f.prot_ctrl() >> 1) & 3, 2, "PROT_CTRL.DTW 8-bit");
    assert_eq!(m.partition(), HwPart::User);
    assert_eq!(m.num_blocks(), 4096);
    let log = f.take_log();
    let c = cmds(&log);
    // Probe as SD first, then the MMC sequence.
    assert_eq!(&c[..5], &[0, 8, 55, 41, 0]);
    let cmd1: Vec<_> = log.iter().filter(|l| l.0 == 1).collect();
    assert_eq!(cmd1.len(), 4, "three busy answers, then ready");
    assert!(cmd1.iter().all(|l| l.1 == 0x40FF_8080));
    assert!(log.contains(&(3, 1 << 16)));
    assert!(log.contains(&(6, 0x03B7_0200)), "BUS_WIDTH=8");
    assert!(log.contains(&(6, 0x03B9_0100)), "HS_TIMING=1");
    assert!(
        log.contains(&(6, 0x03B3_4800)),
        "PARTITION_CONFIG back to user"
    );
    assert!(
        f.cache_violations().is_empty(),
        "{:?}",
        f.cache_violations()
    );
}

#[test]
fn emmc_init_in_pio_mode_and_4bit_legacy() {
    let mut spec = CardSpec::emmc();
    spec.hs52 = false;
    let cfg = Config {
        max_bus_width: BusWidth::Bit4,
        ..Config::IMX8MP_EVK_EMMC
    };
    let (f, mut m) = setup(Some(spec), cfg);
    m.set_transfer_mode(TransferMode::Pio);
    let info = m.init().unwrap();
    assert_eq!(info.user_blocks, 4096);
    assert_eq!(info.bus_width, BusWidth::Bit4);
    assert_eq!(info.mode, BusMode::MmcLegacy);
    assert_eq!(f.card_bus_width(), 4);
}

#[test]
fn byte_addressed_emmc_uses_csd_capacity_and_byte_addresses() {
    let mut spec = CardSpec::emmc();
    spec.kind = CardType::EmmcByte;
    spec.trim = false;
    let (f, mut m) = setup(Some(spec), Config::IMX8MP_EVK_EMMC);
    let info = m.init().unwrap();
    assert!(!info.high_capacity);
    assert_eq!(info.user_blocks, 4096);
    assert_eq!(info.erase_group_blocks, 8);
    f.take_log();
    let mut b = [0u8; 512];
    m.read(3, &mut b).unwrap();
    assert!(f.take_log().contains(&(17, 3 * 512)));
    assert_eq!(&b[..], &f.medium(0, 3, 1)[..]);
}

#[test]
fn sd_init_hc_and_sc() {
    let (f, mut m) = setup(Some(CardSpec::sd(CardType::SdHc, 8192)), Config::QEMU_SD);
    assert!(m.card_present());
    let info = m.init().unwrap();
    assert_eq!(info.kind, CardKind::Sd);
    assert_eq!(info.name(), "FAKSD");
    assert_eq!(info.oem_id, 0x514D);
    assert_eq!((info.revision, info.serial), (0x20, 0x1234_5678));
    assert!(info.high_capacity);
    assert_eq!(info.user_blocks, 8192);
    assert_eq!(info.rca, 0xB368);
    assert_eq!(info.bus_width, BusWidth::Bit4);
    assert_eq!(info.mode, BusMode::SdLegacy);
    assert_eq!(info.version.to_string(), "2.0");
    assert_eq!((info.boot_size, info.rpmb_size), (0, 0));
    assert_eq!(f.card_bus_width(), 4);
    let log = f.take_log();
    assert_eq!(log[1], (8, 0x1AA));
    assert!(log.contains(&(41, 0x40FF_8000)), "ACMD41 with HCS");
    assert!(log.contains(&(6, 2)), "ACMD6 4-bit");
    assert!(log.contains(&(7, 0xB368 << 16)));

    let (f, mut m) = setup(Some(CardSpec::sd(CardType::SdSc, 4096)), Config::QEMU_SD);
    let info = m.init().unwrap();
    assert!(!info.high_capacity);
    assert_eq!(info.user_blocks, 4096);
    f.take_log();
    let data = pattern(1024, 1);
    m.write(5, &data).unwrap();
    assert!(f.take_log().contains(&(25, 5 * 512)), "byte address");
    assert_eq!(f.medium(0, 5, 2), data);
}

fn round_trip(
    f: &Fake,
    m: &mut Dev,
    lba: u64,
    blocks: usize,
    offset: usize,
    mapped: bool,
    high: bool,
) {
    let len = blocks * BLOCK;
    let wbuf = f.alloc(len, offset, mapped, high);
    wbuf.copy_from_slice(&pattern(len, u8::try_from(blocks % 256).unwrap()));
    m.write(lba, wbuf).unwrap();
    assert_eq!(f.medium(0, lba, blocks), &wbuf[..], "medium after write");
    let rbuf = f.alloc(len, offset, mapped, high);
    m.read(lba, rbuf).unwrap();
    assert_eq!(&rbuf[..], &wbuf[..], "read back");
    assert!(
        f.cache_violations().is_empty(),
        "{:?}",
        f.cache_violations()
    );
}

#[test]
fn adma2_and_pio_round_trips_of_odd_sizes_and_alignments() {
    for mode in [TransferMode::Adma2, TransferMode::Pio] {
        let (f, mut m) = sd(16384);
        m.set_transfer_mode(mode);
        assert_eq!(m.transfer_mode(), mode);
        // (lba, blocks, offset from 64-byte alignment, mapped, above 4 GiB)
        let cases = [
            (0, 1, 0, true, false),
            (1, 3, 4, true, false), // 4-aligned: writes in place, reads bounce
            (9, 2, 1, true, false), // odd address: bounce
            (20, 7, 0, false, false), // not bus-addressable: bounce
            (40, 5, 0, true, true), // above 4 GiB: bounce
            (100, 129, 0, true, false),
            (300, 300, 3, true, false), // bounce in several chunks
            (16383, 1, 0, true, false), // last block
        ];
        for (lba, blocks, off, mapped, high) in cases {
            round_trip(&f, &mut m, lba, blocks, off, mapped, high);
        }
        assert_eq!(m.retries(), 0);
    }
}

#[test]
fn large_transfer_is_split_into_commands_the_controller_can_do() {
    let (f, mut m) = sd(16384);
    round_trip(&f, &mut m, 10, 5000, 0, true, false);
    let log = f.take_log();
    let w: Vec<_> = log.iter().filter(|l| l.0 == 25).copied().collect();
    assert_eq!(w, [(25, 10), (25, 10 + 4096)]);
    let r: Vec<_> = log.iter().filter(|l| l.0 == 18).copied().collect();
    assert_eq!(r, [(18, 10), (18, 10 + 4096)]);
    // Bounced: 128 blocks per command.
    round_trip(&f, &mut m, 10, 300, 8, false, false);
    let log = f.take_log();
    let w: Vec<_> = log.iter().filter(|l| l.0 == 25).map(|l| l.1).collect();
    assert_eq!(w, [10, 138, 266]);
    assert!(!log.iter().any(|l| l.0 == 24 || l.0 == 17));
}

#[test]
fn single_block_mode_uses_cmd17_and_cmd24_only() {
    let (f, mut m) = sd(8192);
    m.set_multi_block(false);
    for mode in [TransferMode::Adma2, TransferMode::Pio] {
        m.set_transfer_mode(mode);
        round_trip(&f, &mut m, 50, 4, 0, true, false);
        let c = cmds(&f.take_log());
        assert_eq!(c.iter().filter(|&&c| c == 24).count(), 4);
        assert_eq!(c.iter().filter(|&&c| c == 17).count(), 4);
        assert!(!c.contains(&18) && !c.contains(&25));
    }
}

#[test]
fn adma2_multi_block_needs_far_fewer_register_accesses_than_pio() {
    let (f, mut m) = sd(8192);
    let buf = f.alloc(256 * BLOCK, 0, true, false);
    let (r0, w0) = f.reg_accesses();
    m.read(0, buf).unwrap();
    let (r1, w1) = f.reg_accesses();
    m.set_transfer_mode(TransferMode::Pio);
    m.set_multi_block(false);
    m.read(0, buf).unwrap();
    let (r2, w2) = f.reg_accesses();
    let adma = (r1 - r0) + (w1 - w0);
    let pio = (r2 - r1) + (w2 - w1);
    assert!(
        adma * 100 < pio,
        "ADMA2 {adma} vs PIO {pio} register accesses"
    );
}

#[test]
fn partition_switching() {
    let (f, mut m) = emmc();
    m.select_partition(HwPart::Boot0).unwrap();
    assert_eq!(m.partition(), HwPart::Boot0);
    assert_eq!(m.num_blocks(), 256);
    assert_eq!(f.ext_csd(179), 0x49);
    assert_eq!(f.take_log()[0], (6, 0x03B3_4900));
    let data = pattern(1024, 9);
    m.write(254, &data).unwrap();
    assert_eq!(f.medium(1, 254, 2), data);
    assert_eq!(
        f.medium(0, 254, 1),
        vec![(254 % 251) as u8; 512],
        "user area untouched"
    );
    let mut b = vec![0u8; 1024];
    assert_eq!(
        m.read(255, &mut b).unwrap_err(),
        MmcError::Range(block::RangeError::PastEnd {
            lba: 255,
            count: 2,
            num_blocks: 256
        })
    );
    m.select_partition(HwPart::Boot1).unwrap();
    assert_eq!(f.ext_csd(179), 0x4A);
    m.read(254, &mut b).unwrap();
    assert!(b.iter().all(|&x| x == 0xB1));
    m.select_partition(HwPart::User).unwrap();
    assert_eq!((f.ext_csd(179), m.num_blocks()), (0x48, 4096));
    assert_eq!(HwPart::from_number(2), Some(HwPart::Boot1));
    assert_eq!(HwPart::from_number(3), None);

    let (_, mut s) = sd(8192);
    assert_eq!(s.select_partition(HwPart::Boot0), Err(MmcError::NotEmmc));
    assert_eq!(s.select_partition(HwPart::User), Ok(()));
    assert_eq!(
        MmcError::NotEmmc.to_string(),
        "mmc: hardware partitions need an eMMC card"
    );

    let mut spec = CardSpec::emmc();
    spec.boot_mult = 0;
    spec.rpmb_mult = 0;
    let (_, mut m) = setup(Some(spec), Config::IMX8MP_EVK_EMMC);
    let info = m.init().unwrap();
    assert!(!info.has_rpmb());
    assert_eq!(
        m.select_partition(HwPart::Boot1),
        Err(MmcError::NoSuchPartition)
    );
}

#[test]
fn switch_rejected_by_card() {
    let (f, mut m) = setup(Some(CardSpec::emmc()), Config::IMX8MP_EVK_EMMC);
    f.faults(|x| x.reject_switch = true);
    assert_eq!(
        m.init(),
        Err(MmcError::SwitchRejected {
            index: 183,
            value: 2
        })
    );
}

#[test]
fn erase_emmc_trim_sd_and_alignment() {
    let (f, mut m) = emmc();
    m.erase(10, 5).unwrap();
    assert_eq!(f.take_log()[..3], [(35, 10), (36, 14), (38, 1)]);
    assert!(f.medium(0, 10, 5).iter().all(|&b| b == 0));
    assert_eq!(f.medium(0, 9, 1), vec![9; 512]);
    assert_eq!(f.medium(0, 15, 1), vec![15; 512]);
    assert!(matches!(m.erase(4090, 7), Err(MmcError::Range(_))));
    assert!(matches!(
        m.erase(0, 0),
        Err(MmcError::Range(block::RangeError::Empty))
    ));

    let (f, mut s) = sd(8192);
    s.erase(100, 3).unwrap();
    assert_eq!(f.take_log()[..3], [(32, 100), (33, 102), (38, 0)]);
    assert!(f.medium(0, 100, 3).iter().all(|&b| b == 0));

    let mut spec = CardSpec::emmc();
    spec.trim = false;
    let (f, mut m) = setup(Some(spec), Config::IMX8MP_EVK_EMMC);
    m.init().unwrap();
    assert_eq!(m.erase(10, 5), Err(MmcError::EraseUnaligned { group: 8 }));
    f.take_log();
    m.erase(1024, 1024).unwrap();
    assert_eq!(f.take_log()[2], (38, 0));
}

#[test]
fn no_card() {
    let (_, mut m) = setup(None, Config::QEMU_SD);
    assert!(!m.card_present());
    assert_eq!(m.init(), Err(MmcError::NoCard));
    assert_eq!(m.init().unwrap_err().to_string(), "mmc: no card present");
    let mut b = [0u8; 512];
    assert_eq!(m.read(0, &mut b), Err(MmcError::NoCard));
    assert_eq!(m.num_blocks(), 0);
    // eMMC slot without card detect: assumed present, but nothing answers.
    let (_, mut m) = setup(None, Config::IMX8MP_EVK_EMMC);
    assert!(m.card_present());
    assert_eq!(
        m.init(),
        Err(MmcError::NoResponse(At { cmd: 1, lba: None }))
    );
}

#[test]
fn command_errors() {
    let (f, mut m) = setup(Some(CardSpec::sd(CardType::SdHc, 8192)), Config::QEMU_SD);
    f.faults(|x| x.no_response = Some((2, 1)));
    let e = m.init().unwrap_err();
    assert_eq!(e, MmcError::NoResponse(At { cmd: 2, lba: None }));
    assert_eq!(e.to_string(), "mmc: no response from card (CMD2)");
    // The next init works (the fault fired once).
    m.init().unwrap();

    f.faults(|x| x.never_ready = true);
    let e = m.init().unwrap_err();
    assert_eq!(
        e.to_string(),
        "mmc: timeout waiting for card power-up (CMD41)"
    );
    let (f, mut m) = setup(Some(CardSpec::emmc()), Config::IMX8MP_EVK_EMMC);
    f.faults(|x| x.never_ready = true);
    assert_eq!(
        m.init(),
        Err(MmcError::Timeout {
            wait: Wait::PowerUp,
            at: At { cmd: 1, lba: None }
        })
    );
}

#[test]
fn controller_hang_gives_the_documented_message() {
    let (f, mut m) = sd(16384);
    f.faults(|x| x.hang_cmd = Some(25));
    let buf = f.alloc(2 * BLOCK, 0, true, false);
    let e = m.write(0x2000, buf).unwrap_err();
    assert_eq!(
        e.to_string(),
        "mmc: timeout waiting for command complete (CMD25, lba 0x2000)"
    );
    assert_eq!(m.retries(), 1);
    // Recovered: other commands still work.
    f.faults(|x| x.hang_cmd = None);
    m.write(0x2000, buf).unwrap();
}

#[test]
fn data_crc_error_is_retried_once() {
    for mode in [TransferMode::Adma2, TransferMode::Pio] {
        let (f, mut m) = sd(8192);
        m.set_transfer_mode(mode);
        let buf = f.alloc(8 * BLOCK, 0, true, false);
        f.faults(|x| x.data_crc = 1);
        m.read(16, buf).unwrap();
        assert_eq!(&buf[..], &f.medium(0, 16, 8)[..]);
        assert_eq!(m.retries(), 1);
        let c = cmds(&f.take_log());
        assert_eq!(c.iter().filter(|&&c| c == 18).count(), 2);
        assert!(c.contains(&12), "card stopped with CMD12 before the retry");

        f.faults(|x| x.data_crc = 2);
        let e = m.read(16, buf).unwrap_err();
        assert_eq!(
            e,
            MmcError::DataCrc(At {
                cmd: 18,
                lba: Some(16)
            })
        );
        assert_eq!(e.to_string(), "mmc: data CRC error (CMD18, lba 0x10)");
        // And the card is usable afterwards.
        m.read(16, buf).unwrap();
        assert!(
            f.cache_violations().is_empty(),
            "{:?}",
            f.cache_violations()
        );
    }
}

#[test]
fn write_failing_half_way_is_retried_and_lands_whole() {
    for mode in [TransferMode::Adma2, TransferMode::Pio] {
        let (f, mut m) = sd(8192);
        m.set_transfer_mode(mode);
        let buf = f.alloc(8 * BLOCK, 0, true, false);
        buf.copy_from_slice(&pattern(8 * BLOCK, 0x77));
        f.faults(|x| x.write_fail_after = Some(3));
        m.write(200, buf).unwrap();
        assert_eq!(m.retries(), 1);
        assert_eq!(&f.medium(0, 200, 8)[..], &buf[..]);

        // Failing again on the retry: the error is reported.
        f.faults(|x| {
            x.write_fail_after = Some(2);
            x.data_crc = 1;
        });
        // First attempt: CRC error on block 0; retry: timeout after 2 blocks.
        let e = m.write(300, buf).unwrap_err();
        assert_eq!(
            e,
            MmcError::DataTimeout(At {
                cmd: 25,
                lba: Some(300)
            })
        );
        assert_eq!(e.to_string(), "mmc: data timeout (CMD25, lba 0x12c)");
        assert_eq!(m.retries(), 2);
        m.write(300, buf).unwrap();
        assert_eq!(&f.medium(0, 300, 8)[..], &buf[..]);
    }
}

#[test]
fn write_waits_for_transfer_state() {
    let (f, mut m) = sd(8192);
    f.faults(|x| x.program_polls = 3);
    let data = pattern(512, 3);
    m.write(1, &data).unwrap();
    let c = cmds(&f.take_log());
    assert_eq!(c.iter().filter(|&&c| c == 13).count(), 4, "{c:?}");

    f.faults(|x| x.stuck_programming = true);
    let e = m.write(1, &data).unwrap_err();
    assert_eq!(
        e,
        MmcError::Timeout {
            wait: Wait::TransferState,
            at: At {
                cmd: 24,
                lba: Some(1)
            }
        }
    );
    assert_eq!(
        e.to_string(),
        "mmc: timeout waiting for card to return to transfer state (CMD24, lba 0x1)"
    );
}

#[test]
fn missing_transfer_complete_and_endless_busy_time_out() {
    let (f, mut m) = sd(8192);
    f.faults(|x| x.no_transfer_complete = true);
    let mut b = vec![0u8; 1024];
    assert_eq!(
        m.read(7, &mut b),
        Err(MmcError::Timeout {
            wait: Wait::TransferComplete,
            at: At {
                cmd: 18,
                lba: Some(7)
            }
        })
    );
    let (f, mut m) = setup(Some(CardSpec::sd(CardType::SdHc, 8192)), Config::QEMU_SD);
    f.faults(|x| x.busy_forever = true);
    assert_eq!(
        m.init(),
        Err(MmcError::Timeout {
            wait: Wait::CardBusy,
            at: At { cmd: 7, lba: None }
        })
    );
}

#[test]
fn refused_requests_touch_nothing() {
    let (f, mut m) = sd(8192);
    let mut b = vec![0u8; 1024];
    assert!(matches!(m.read(8191, &mut b), Err(MmcError::Range(_))));
    assert!(matches!(m.write(8192, &b), Err(MmcError::Range(_))));
    assert!(matches!(m.write(0, &b[..100]), Err(MmcError::Range(_))));
    assert_eq!(
        m.read(0, &mut []),
        Err(MmcError::Range(block::RangeError::Empty))
    );
    assert!(f.take_log().is_empty());
    assert_eq!(
        m.read(8191, &mut b).unwrap_err().to_string(),
        "mmc: block: blocks 0x1fff+0x2 past the end of the device (0x2000 blocks)"
    );
}

#[test]
fn block_device_and_partition_view() {
    use block::Partition;
    let (f, mut m) = emmc();
    assert_eq!(m.block_size(), 512);
    let mut p = Partition::new(&mut m, 1000, 10).unwrap();
    let data = pattern(512, 0x42);
    p.write_blocks(9, &data).unwrap();
    assert!(p.write_blocks(10, &data).is_err());
    assert_eq!(f.medium(0, 1009, 1), data);
}

#[test]
fn host_timeouts() {
    let (f, mut m) = setup(Some(CardSpec::emmc()), Config::IMX8MP_EVK_EMMC);
    f.faults(|x| x.reset_stuck = true);
    let e = m.init().unwrap_err();
    assert_eq!(e, MmcError::HostTimeout(Wait::Reset));
    assert_eq!(e.to_string(), "mmc: timeout waiting for controller reset");
    f.faults(|x| {
        x.reset_stuck = false;
        x.clock_unstable = true;
    });
    assert_eq!(m.init(), Err(MmcError::HostTimeout(Wait::ClockStable)));
}

#[test]
fn lines_never_free() {
    let (f, mut m) = sd(8192);
    f.faults(|x| x.lines_stuck = true);
    let mut b = vec![0u8; 1024];
    let e = m.read(0x40, &mut b).unwrap_err();
    assert_eq!(
        e.to_string(),
        "mmc: timeout waiting for command/data lines free (CMD18, lba 0x40)"
    );
    f.faults(|x| x.lines_stuck = false);
    m.read(0x40, &mut b).unwrap();
}

#[test]
fn response_crc_error() {
    let (f, mut m) = setup(Some(CardSpec::sd(CardType::SdHc, 8192)), Config::QEMU_SD);
    f.faults(|x| x.rsp_crc = Some(9));
    let e = m.init().unwrap_err();
    assert_eq!(
        e,
        MmcError::ResponseError {
            status: 1 << 17,
            at: At { cmd: 9, lba: None }
        }
    );
    assert_eq!(
        e.to_string(),
        "mmc: bad response (status 0x00020000) (CMD9)"
    );
    // A CRC error on a data command's response is retried.
    m.init().unwrap();
    f.faults(|x| x.rsp_crc = Some(17));
    let mut b = [0u8; 512];
    m.read(1, &mut b).unwrap();
    assert_eq!(m.retries(), 1);
}

#[test]
fn card_status_errors_are_not_retried() {
    let (f, mut m) = sd(8192);
    f.faults(|x| x.r1_error = Some((24, 1 << 26)));
    let e = m.write(3, &[0u8; 512]).unwrap_err();
    assert_eq!(
        e,
        MmcError::CardStatus {
            status: (4 << 9) | (1 << 8) | (1 << 26),
            at: At {
                cmd: 24,
                lba: Some(3)
            }
        }
    );
    assert_eq!(
        e.to_string(),
        "mmc: card reported error status 0x04000900 (CMD24, lba 0x3)"
    );
    assert_eq!(m.retries(), 0);
    f.faults(|x| x.r1_error = None);
    m.write(3, &[0u8; 512]).unwrap();
}

#[test]
fn pio_buffer_never_ready() {
    let (f, mut m) = sd(8192);
    m.set_transfer_mode(TransferMode::Pio);
    f.faults(|x| x.hang_data = true);
    let mut b = [0u8; 512];
    assert_eq!(
        m.read(2, &mut b),
        Err(MmcError::Timeout {
            wait: Wait::BufferReady,
            at: At {
                cmd: 17,
                lba: Some(2)
            }
        })
    );
}

#[test]
fn adma_auto_cmd12_and_end_bit_errors() {
    let (f, mut m) = sd(8192);
    let buf = f.alloc(4 * BLOCK, 0, true, false);
    f.faults(|x| x.adma_errors = 1);
    m.read(0, buf).unwrap();
    assert_eq!(m.retries(), 1);
    f.faults(|x| x.adma_errors = 2);
    let e = m.read(0, buf).unwrap_err();
    assert_eq!(
        e,
        MmcError::Adma {
            status: 1,
            at: At {
                cmd: 18,
                lba: Some(0)
            }
        }
    );
    assert_eq!(
        e.to_string(),
        "mmc: ADMA error (status 0x1) (CMD18, lba 0x0)"
    );

    f.faults(|x| x.auto12_errors = 1);
    m.write(8, buf).unwrap();
    assert_eq!(m.retries(), 3);
    f.faults(|x| x.auto12_errors = 2);
    let e = m.write(8, buf).unwrap_err();
    assert_eq!(
        e,
        MmcError::AutoCmd12 {
            status: 1,
            at: At {
                cmd: 25,
                lba: Some(8)
            }
        }
    );
    // The card was stopped by the recovery's CMD12 and works again.
    m.read(8, buf).unwrap();

    f.faults(|x| x.data_end_bit = 2);
    assert_eq!(
        m.read(8, buf),
        Err(MmcError::DataEndBit(At {
            cmd: 18,
            lba: Some(8)
        }))
    );
}

#[test]
fn bad_cards() {
    let (f, mut m) = setup(Some(CardSpec::sd(CardType::SdHc, 8192)), Config::QEMU_SD);
    f.faults(|x| x.cmd8_bad_echo = true);
    assert_eq!(m.init(), Err(MmcError::Voltage));
    f.faults(|x| {
        x.cmd8_bad_echo = false;
        x.bad_csd = true;
    });
    assert_eq!(m.init(), Err(MmcError::BadCard));
}

#[test]
fn descriptor_table_out_of_reach() {
    let fake = Fake::new(Some(CardSpec::sd(CardType::SdHc, 8192)));
    let unmapped: &'static mut DmaMem = std::boxed::Box::leak(std::boxed::Box::new(DmaMem::new()));
    let mut m = Usdhc::new(
        fake.regs(),
        fake.dma(),
        Fake::clock(),
        unmapped,
        Config::QEMU_SD,
    );
    m.init().unwrap();
    let buf = fake.alloc(BLOCK, 0, true, false);
    assert_eq!(m.read(0, buf), Err(MmcError::DmaUnreachable));
    // PIO does not need the table.
    m.set_transfer_mode(TransferMode::Pio);
    m.read(0, buf).unwrap();
    assert_eq!(&buf[..], &fake.medium(0, 0, 1)[..]);
}

#[test]
fn card_removed_after_init() {
    let (f, mut m) = sd(8192);
    f.set_present(false);
    let mut b = [0u8; 512];
    assert_eq!(m.read(0, &mut b), Err(MmcError::NoCard));
    assert!(f.take_log().is_empty(), "nothing sent to an empty slot");
    assert_eq!(m.info(), None);
    // Still the empty slot, not "not initialised".
    assert_eq!(m.write(0, &b), Err(MmcError::NoCard));
    f.set_present(true);
    // Back in the slot: a card needs a new init first.
    assert_eq!(m.write(0, &b), Err(MmcError::NotInitialized));
    m.init().unwrap();
    m.read(0, &mut b).unwrap();
    let (f, mut m) = sd(8192);
    f.set_present(false);
    assert_eq!(m.erase(0, 1), Err(MmcError::NoCard));
    let (f, mut m) = sd(8192);
    f.set_present(false);
    assert_eq!(m.select_partition(HwPart::User), Err(MmcError::NoCard));
}

#[test]
fn bounce_buffer_is_scrubbed() {
    let (f, mut m) = sd(8192);
    let w = f.alloc(3 * BLOCK, 1, true, false);
    w.fill(0xA5);
    m.write(5, w).unwrap();
    assert!(m.bounce().iter().all(|&b| b == 0));
    let r = f.alloc(3 * BLOCK, 1, true, false);
    m.read(5, r).unwrap();
    assert!(r.iter().all(|&b| b == 0xA5));
    assert!(m.bounce().iter().all(|&b| b == 0));
}

#[test]
fn init_after_spl_clears_what_rsta_keeps_and_gates_the_clock() {
    let (f, mut m) = emmc();
    f.left_by_spl();
    m.init().unwrap();
    let [mix, vend, boot, dll, tune, tuning] = f.vendor_regs();
    // U-Boot esdhc_init_common: MMC_BOOT, DLL_CTRL, CLK_TUNE_CTRL_STATUS,
    // TUNING_CTRL cleared; VEND_SPEC back to VENDORSPEC_INIT (FRC_SDCLK_ON
    // from SPL gone) with the card clock on after the last divider change.
    assert_eq!(boot, 0, "MMC_BOOT");
    assert_eq!(dll, 0, "DLL_CTRL");
    assert_eq!(tune, 0, "CLK_TUNE_CTRL_STATUS");
    assert_eq!(tuning, 0, "TUNING_CTRL");
    assert_eq!(vend, 0x2000_7809, "VEND_SPEC");
    // DDR_EN from SPL did not survive init nor the commands since.
    assert_eq!(mix & (1 << 3), 0, "MIX_CTRL.DDR_EN");
    // Every divider change (400 kHz, then the bus speed) happened with
    // VEND_SPEC.CKEN clear (the model records a violation otherwise).
    assert!(
        f.cache_violations().is_empty(),
        "{:?}",
        f.cache_violations()
    );
    let mut buf = vec![0u8; 1024];
    m.read(0, &mut buf).unwrap();
    assert_eq!(f.vendor_regs()[0] & (1 << 3), 0, "DDR_EN after a read");
}

#[test]
fn the_clock_gating_check_catches_an_ungated_divider_change() {
    // The check the test above relies on: a divider change with CKEN set
    // is reported.
    let (f, _m) = emmc();
    let r = f.regs();
    r.write(regs::offsets::VEND_SPEC, 1 << 14);
    r.write(regs::offsets::SYS_CTRL, 0x000E_0105);
    assert_eq!(f.cache_violations().len(), 1, "{:?}", f.cache_violations());
}
