//! The i.MX8M manufacturing-protection loader.
//!
//! Layers, from the bottom: `arch` (entry, exception vectors, MMU, caches,
//! PSCI, timer), the board (`board` crate: addresses, emulation on QEMU), the
//! drivers (`drivers/*`), and the console (`console`, `commands`). See
//! `docs/architecture.md`.
//!
//! On the host this crate builds only its portable parts, for unit tests.
#![cfg_attr(target_os = "none", no_std, no_main)]
// Command errors carry their whole message (about 256 bytes) by value.
#![allow(clippy::result_large_err)]
// On the host only the portable modules build, for their unit tests.
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

mod console;
mod keys;
mod linux;
mod requests;

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod commands;
#[cfg(target_os = "none")]
mod log;
#[cfg(target_os = "none")]
mod machine;
#[cfg(target_os = "none")]
mod provisioning;

/// Loader version, as `version` and the identity message report it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The loader's name on the console.
pub const NAME: &str = "imx-mfg-loader";

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("the loader runs on aarch64-unknown-none: build it with `cargo xtask build`");
}

/// The Rust entry, from `arch/entry.S`: MMU off, .bss zeroed, stacks set.
#[cfg(target_os = "none")]
#[unsafe(no_mangle)]
extern "C" fn loader_main(dtb: u64) -> ! {
    use board::{Current, Platform};
    use core::fmt::Write;

    // early_init's temporaries (QEMU: the parsed fuse file, with the
    // model's OTPMK and MP family secret) are zeroed when it returns; it
    // runs out of line so that they are not in this (live) frame.
    arch::scrubbing(arch::Scrub::KiB(16), Current::early_init);
    arch::mmu::init(Current::memory_map());
    let p = Current::take_peripherals().expect("peripherals are taken once, here");
    let mut console = p.console;
    console.init();
    let first_byte = arch::cycles();
    console.write_bytes(b"\r\n");
    // Nothing before this point runs SHA-256 or AES on the EVK.
    if let Some(what) = arch::missing_crypto_extension() {
        let _ = write!(
            console,
            "fatal: this CPU lacks the Armv8 Cryptography Extension ({what}) the loader is built for\r\n"
        );
        arch::psci::halt();
    }
    // No log UART on boards that do not wire one (the EVK): frames are dropped.
    if let Some(uart) = p.log {
        log::init(uart);
    }
    defmt::info!("bench first_console_byte={=u64}", first_byte);
    defmt::info!("{=str} {=str} on {=str}", NAME, VERSION, Current::ID);

    let mut m = machine::Machine {
        console,
        dtb,
        typeahead: heapless::Deque::new(),
        bootargs: heapless::String::new(),
        security: Err("not started"),
        mmc: start_mmc(p.usdhc),
        lock: console::lock::Lock::new(),
    };
    let _ = m.bootargs.push_str(Current::DEFAULT_BOOTARGS);
    let (start, end) = m.dram();
    let _ = write!(
        m.console,
        "{NAME} {VERSION} ({}{})\r\nBoard: {}\r\nDRAM:  {} MiB at 0x{start:x}\r\n",
        Current::ID,
        commands::production_tag(),
        Current::NAME,
        (end - start) >> 20
    );
    if provisioning::scrub_leftovers(&m) {
        defmt::warn!("provision: scrubbed the scratch area of an interrupted run");
    }
    report_card(&mut m);
    m.security = match Current::security_hw_error() {
        Some(e) => {
            let _ = write!(
                m.console,
                "Fuses: {e}; CAAM and fuse commands are disabled\r\n"
            );
            defmt::warn!("security hardware unavailable");
            Err(e)
        }
        None => Ok(start_security(
            &mut m.console,
            p.caam_ctrl,
            p.caam_jr,
            p.ocotp,
        )),
    };
    if Current::AUTO_PROVISION && m.mmc.info().is_some() {
        // Errors were printed and journaled; the console comes up regardless.
        if let Err(e) = provisioning::run_reported(&mut m) {
            let _ = write!(m.console, "provision: {e}\r\n");
        }
    }
    linux::autoboot::autoboot(&mut m, Current::BOOTDELAY);
    console::shell::run(&mut m)
}

#[cfg(target_os = "none")]
/// Initialises the card and prints U-Boot's `MMC:` boot line.
fn report_card(m: &mut machine::Machine) {
    use board::{Current, Platform};
    use machine::outln;
    let dev = Current::MMC_DEV;
    match m.mmc.init() {
        Ok(info) => {
            let mib = info.user_blocks >> 11;
            outln!(
                m,
                "MMC:   FSL_SDHC: {} ({} {} MiB)",
                dev,
                machine::card_kind(info.kind),
                mib
            );
        }
        Err(e) => outln!(m, "MMC:   FSL_SDHC: {} ({})", dev, e),
    }
}

/// The eMMC driver on its DMA memory (the card is initialised later).
#[cfg(target_os = "none")]
fn start_mmc(regs: board::MmcRegs) -> machine::LoaderMmc {
    use board::{Current, Platform};
    static MMC_DMA: board::cell::StaticBuf<usdhc::DmaMem> =
        board::cell::StaticBuf::new(usdhc::DmaMem::new());
    let mem = MMC_DMA.take().expect("MMC DMA memory is taken once, here");
    usdhc::Usdhc::new(regs, dma(), board::timer::GenericTimer, mem, Current::MMC)
}

/// DMA as both masters see it: identity-mapped DRAM below 4 GiB (CAAM
/// pointers and ADMA2 addresses are 32-bit).
#[cfg(target_os = "none")]
fn dma() -> arch::cache::IdentityDma {
    use board::{Current, Platform};
    let dram = board::dram::BASE;
    arch::cache::IdentityDma {
        start: dram,
        end: (dram + Current::DRAM_SIZE).min(1 << 32),
    }
}

/// Brings up the CAAM (job ring, RNG) and the fuse reader; reports on the
/// console.
#[cfg(target_os = "none")]
fn start_security(
    console: &mut imx_uart::Uart<hal::MmioRegion>,
    ctrl: hal::MmioRegion,
    jr: hal::MmioRegion,
    fuses: hal::MmioRegion,
) -> machine::Security {
    use board::{Current, Platform};
    use core::fmt::Write;
    static CAAM_DMA: board::cell::StaticBuf<caam::DmaMem> =
        board::cell::StaticBuf::new(caam::DmaMem::new());

    let mem = CAAM_DMA
        .take()
        .expect("CAAM DMA memory is taken once, here");
    let mut c = caam::Caam::new(
        ctrl,
        jr,
        Current::CAAM_JOB_RING,
        dma(),
        board::timer::GenericTimer,
        mem,
    );
    let start = arch::cycles();
    match c.init() {
        Ok(()) => {
            let i = c.info();
            let _ = write!(
                console,
                "CAAM:  era {}, job ring {}, RNG ready, security state {}\r\n",
                i.era, i.ring, i.security
            );
            defmt::info!("caam: init took {=u64} cycles", arch::cycles() - start);
            lock_mpmr(console, &mut c);
        }
        Err(e) => {
            let _ = write!(console, "CAAM:  init failed: {e}\r\n");
            defmt::error!("caam: init failed");
        }
    }
    machine::Security {
        caam: c,
        ocotp: ocotp::Ocotp::new(fuses),
    }
}

/// Locks the loader's measurement into the MPMR, before the console or any
/// command exists: every MP signature of this boot then says which loader
/// made it, and nothing later can change that. An MPMR an earlier stage
/// locked is left as it is (the OEM refuses records whose MPMR is not a
/// released loader's).
#[cfg(target_os = "none")]
fn lock_mpmr(console: &mut imx_uart::Uart<hal::MmioRegion>, c: &mut machine::LoaderCaam) {
    use core::fmt::Write;
    if c.info().mpmr_locked {
        defmt::warn!("caam: MPMR already locked by an earlier stage");
        return;
    }
    let t = arch::cycles();
    let m = provisioning::measurement();
    defmt::info!("bench measure={=u64}", arch::cycles() - t);
    if let Err(e) = c.mpmr_write_and_lock(&m) {
        let _ = write!(console, "CAAM:  MPMR lock failed: {e}\r\n");
    }
}
