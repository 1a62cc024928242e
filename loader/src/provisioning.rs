//! The provisioning flow (crate `provision`) on this machine: its drivers
//! as the flow's hardware, the console as its report, the scratch DRAM, and
//! the loader's own hooks (bench metering in the structured log, the QEMU
//! power-cut test plan).

use crate::arch::{Scrub, cycles, exception, layout, psci};
use crate::machine::{Machine, Security, outln};
use crate::requests::CmdError;
use core::fmt;
use core::sync::atomic::{AtomicU32, Ordering};
use hal::MmioRegion;
use imx_uart::Uart;
pub use provision::Outcome;
use provision::{Config, Console, FlowError, Hardware, Observer, Step};
use sha2::{Digest, Sha256};

pub use provision::Summary;

/// The product this loader provisions; bundles for another are refused.
pub const PRODUCT: &str = match option_env!("MFG_PRODUCT") {
    Some(p) => p,
    None => "imx8mp-demo",
};

const _: () = assert!(board::dram::PROVISION_SCRATCH_LEN as usize >= provision::SCRATCH_LEN);

/// The console as the flow's report.
struct Out<'a>(&'a mut Uart<MmioRegion>);

impl fmt::Write for Out<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.write_str(s)
    }
}

impl Console for Out<'_> {
    fn flush(&mut self) {
        self.0.flush();
    }
}

fn hardware<'a>(s: &'a mut Result<Security, &'static str>) -> Hardware<'a> {
    match s {
        Ok(s) => Hardware::Available {
            caam: &mut s.caam,
            fuses: &s.ocotp,
        },
        Err(e) => Hardware::Unavailable(e),
    }
}

/// The scratch DRAM area.
fn scratch(m: &Machine) -> Result<&'static mut [u8], FlowError> {
    let r = m
        .ram(
            board::dram::PROVISION_SCRATCH,
            board::dram::PROVISION_SCRATCH_LEN,
        )
        .map_err(|_| FlowError::Partition("no scratch RAM"))?;
    // SAFETY: a checked RAM range outside the loader, used only by the flow
    // (one run at a time) and the boot-time scrub; nothing else refers to it.
    Ok(unsafe { r.slice_mut() })
}

/// The last 8 bytes of the scratch area hold this while a run may have
/// plaintext there (outside every buffer the flow uses).
const IN_PROGRESS: [u8; 8] = *b"MFGRUN\x00\x01";
const _: () = assert!(board::dram::PROVISION_SCRATCH_LEN as usize - 8 >= provision::SCRATCH_LEN);

fn mark(s: &mut [u8], v: [u8; 8]) {
    let at = s.len() - 8;
    s[at..].copy_from_slice(&v);
    // Written back before the flow writes any plaintext: after a warm
    // reset, DRAM has the mark whenever it may have plaintext.
    crate::arch::cache::clean(s[at..].as_ptr() as usize, 8);
}

/// At boot: if the last run was cut short by a reset (its mark is still
/// there), zero the whole scratch area, so that the plaintext bundle it may
/// have held never reaches the console of this boot. Returns whether it did.
pub fn scrub_leftovers(m: &Machine) -> bool {
    let Ok(s) = scratch(m) else { return false };
    if s[s.len() - 8..] != IN_PROGRESS {
        return false;
    }
    provision::scrub(s);
    mark(s, [0; 8]);
    true
}

/// SHA-256 of the running loader's code and read-only data: locked into the
/// MPMR at boot, so every signature attests which loader produced it.
pub fn measurement() -> [u8; 32] {
    let start = layout::image_start();
    let len = (layout::rodata_end() - start) as usize;
    // SAFETY: .text and .rodata are mapped read-only and never written.
    let image = unsafe { core::slice::from_raw_parts(start as *const u8, len) };
    Sha256::digest(image).into()
}

/// eMMC writes the flow issued this boot (power-cut plans count them
/// across runs).
static FLOW_WRITES: AtomicU32 = AtomicU32::new(0);

/// Cycle and emulated-CAAM meters per step, for `cargo xtask bench`, and the
/// power-cut test plan.
#[derive(Default)]
struct Hooks {
    cut_after: Option<u32>,
    /// (cycles, emulation cycles) when each step began.
    began: [(u64, u64); 7],
    /// Cycles and emulation cycles spent in each step.
    spent: [(u64, u64); 7],
}

impl Observer for Hooks {
    fn begin(&mut self, step: Step) {
        self.began[step as usize] = (cycles(), exception::emulation_cycles());
    }

    fn end(&mut self, step: Step) {
        let (t, e) = self.began[step as usize];
        let s = &mut self.spent[step as usize];
        s.0 += cycles() - t;
        s.1 += exception::emulation_cycles() - e;
        if step == Step::Run {
            let c = |s: Step| self.spent[s as usize].0;
            let e = |s: Step| self.spent[s as usize].1;
            defmt::info!(
                "bench flow sign={=u64} decrypt={=u64} blob={=u64} consume={=u64} emmc={=u64} emu={=u64} total={=u64}",
                c(Step::Sign),
                c(Step::Decrypt),
                c(Step::Blob),
                c(Step::Consume),
                c(Step::Io),
                e(Step::Run),
                c(Step::Run)
            );
            defmt::info!(
                "bench flowemu sign={=u64} decrypt={=u64} blob={=u64} seal={=u64}",
                e(Step::Sign),
                e(Step::Decrypt),
                e(Step::Blob),
                c(Step::Seal)
            );
        }
    }

    fn written(&mut self, out: &mut dyn Console) {
        let n = FLOW_WRITES.fetch_add(1, Ordering::Relaxed) + 1;
        if self.cut_after == Some(n) {
            outln!(out, "*** power cut (test plan) after eMMC write {} ***", n);
            out.flush();
            defmt::warn!("flow: power cut injected after write {=u32}", n);
            psci::system_off();
            psci::halt();
        }
    }

    fn journal(&mut self, sequence: u64, state: u8, copy: usize) {
        defmt::info!(
            "flow: journal seq {=u64} state {=u8} -> copy {=usize}",
            sequence,
            state,
            copy
        );
    }

    fn refused(&mut self, code: u16) {
        defmt::error!("flow: refused, code {=u16}", code);
    }
}

/// Runs (or resumes) the flow with the board's power-cut test plan.
pub fn run(m: &mut Machine) -> Result<Outcome, FlowError> {
    use board::{Current, Platform};
    let scratch = scratch(m)?;
    mark(scratch, IN_PROGRESS);
    let cfg = Config {
        product: PRODUCT,
        loader_version: crate::VERSION,
        production: cfg!(feature = "production"),
        record_key: &crate::keys::RECORD,
    };
    let mut hooks = Hooks {
        cut_after: Current::power_cut_after_write(),
        ..Hooks::default()
    };
    let r = provision::run(
        &mut m.mmc,
        hardware(&mut m.security),
        &mut Out(&mut m.console),
        &mut scratch[..provision::SCRATCH_LEN],
        &cfg,
        &mut hooks,
    );
    // The run scrubbed what it used.
    mark(scratch, [0; 8]);
    r
}

/// `provision status`.
pub fn status(m: &mut Machine) -> Result<(), FlowError> {
    provision::status(&mut m.mmc, &mut Out(&mut m.console))
}

/// `provision verify`: the number of blobs that failed.
pub fn verify(m: &mut Machine) -> Result<usize, FlowError> {
    let scratch = scratch(m)?;
    mark(scratch, IN_PROGRESS);
    let r = provision::verify(
        &mut m.mmc,
        hardware(&mut m.security),
        &mut Out(&mut m.console),
        &mut scratch[..provision::SCRATCH_LEN],
        cfg!(feature = "production"),
    );
    mark(scratch, [0; 8]);
    r
}

/// What Linux is told in `/chosen`.
pub fn summary(m: &mut Machine) -> Option<Summary> {
    let uid = m.security.as_ref().map_or([0; 16], |s| s.ocotp.unique_id());
    provision::summary(&mut m.mmc, uid)
}

/// Runs the flow (at power-on, and for `provision`); prints the outcome.
pub fn run_reported(m: &mut Machine) -> Result<Outcome, CmdError> {
    // Once the flow returned, its frames (bundle key, plaintext secrets,
    // and the CAAM model's derived keys on the exception stack) are zeroed.
    let r = crate::arch::scrubbing(Scrub::All, || run(m));
    match r {
        Ok(Outcome::AlreadyProvisioned) => {
            outln!(m, "provision: already provisioned; nothing to do")
        }
        Ok(Outcome::NoBundle) => outln!(m, "provision: blank device and no bundle; nothing to do"),
        Ok(Outcome::Provisioned) => {}
        Err(ref e) => return Err(CmdError::msg(format_args!("refused: {e}"))),
    }
    r.map_err(|e| CmdError::msg(format_args!("{e}")))
}
