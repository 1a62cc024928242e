//! Bare-metal smoke test of the uSDHC driver on QEMU `imx8mp-evk` (run.sh).
//!
//! Loaded as an ELF, so it starts at EL3 with the MMU and caches off: DMA is
//! the identity and needs no cache maintenance. It initialises the SD card on
//! USDHC3, reads the GPT sgdisk wrote, checks the host's pattern through every
//! transfer path (ADMA2 in place / bounced, PIO, single / multi block), writes
//! through every path, does a multi-MiB round trip and an erase, prints rough
//! CNTVCT ticks per MiB (125 guest instructions per tick with
//! `-icount shift=0`), and powers off through SNVS. run.sh checks the output
//! and the image file. A development harness, not part of the loader.
#![no_std]
#![no_main]

use block::BlockDevice;
use block::gpt::Gpt;
use core::fmt::Write;
use core::ptr::NonNull;
use hal::{Clock, Dma, MmioRegion, RegisterIo};
use usdhc::{Config, DmaMem, Part, TransferMode, Usdhc};

core::arch::global_asm!(
    r#"
.section .text.start, "ax"
.global _start
_start:
    ldr x0, =__stack_top
    mov sp, x0
    msr cptr_el3, xzr
    adr x0, vectors
    msr vbar_el3, x0
    isb
    bl main
1:  wfe
    b 1b

.balign 2048
vectors:
.rept 16
    .balign 128
    b exc
.endr
exc:
    mrs x0, esr_el3
    mrs x1, elr_el3
    mrs x2, far_el3
    bl exception
2:  b 2b
"#
);

struct Uart(MmioRegion);
impl Write for Uart {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for b in s.bytes() {
            if b == b'\n' {
                self.put(b'\r');
            }
            self.put(b);
        }
        Ok(())
    }
}
impl Uart {
    fn put(&self, b: u8) {
        while self.0.read(0xB4) & (1 << 4) != 0 {}
        self.0.write(0x40, u32::from(b));
    }
}

fn uart() -> Uart {
    // SAFETY: UART1 window on imx8mp-evk; used only by this single-threaded test.
    Uart(unsafe { MmioRegion::new(NonNull::new(0x3086_0000 as *mut u32).unwrap(), 0x100) })
}

#[unsafe(no_mangle)]
extern "C" fn exception(esr: u64, elr: u64, far: u64) {
    let _ = writeln!(uart(), "EXCEPTION esr={esr:#x} elr={elr:#x} far={far:#x}");
    poweroff();
}

#[panic_handler]
fn panic(p: &core::panic::PanicInfo) -> ! {
    let _ = writeln!(uart(), "SMOKE FAIL: {p}");
    poweroff();
    loop {}
}

fn poweroff() {
    // SAFETY: SNVS LPCR; writing 0x60 powers QEMU off.
    unsafe { core::ptr::write_volatile(0x3037_0038 as *mut u32, 0x60) };
}

struct Timer;
impl Clock for Timer {
    fn ticks(&self) -> u64 {
        let t: u64;
        // SAFETY: reading the virtual counter has no side effects.
        unsafe { core::arch::asm!("mrs {}, cntvct_el0", out(reg) t) };
        t
    }
    fn frequency(&self) -> u64 {
        let f: u64;
        // SAFETY: as above.
        unsafe { core::arch::asm!("mrs {}, cntfrq_el0", out(reg) f) };
        f
    }
}

/// Caches and MMU are off: identity, no maintenance.
struct Identity;
impl Dma for Identity {
    fn bus_addr(&self, ptr: *const u8, len: usize) -> Option<u64> {
        let a = ptr as u64;
        (a + len as u64 <= 1 << 32).then_some(a)
    }
    fn clean(&self, _: *const u8, _: usize) {}
    fn invalidate(&self, _: *const u8, _: usize) {}
}

static mut MEM: DmaMem = DmaMem::new();
#[repr(C, align(64))]
struct Big([u8; 4 << 20]);
static mut BUF: Big = Big([0; 4 << 20]);
static mut BUF2: Big = Big([0; 4 << 20]);

fn pat(lba: u64, j: usize) -> u8 {
    ((lba as usize * 131 + j * 7) ^ (lba as usize >> 8)) as u8
}

fn check_pat(lba: u64, buf: &[u8]) {
    for (i, b) in buf.chunks(512).enumerate() {
        let l = lba + i as u64;
        for (j, &x) in b.iter().enumerate() {
            assert!(x == pat(l, j), "pattern mismatch lba {l:#x} byte {j}: {x:#x}");
        }
    }
}

fn fill(seed: u8, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(13) ^ seed ^ (i >> 9) as u8;
    }
}

#[unsafe(no_mangle)]
extern "C" fn main() {
    let mut u = uart();
    let _ = writeln!(u, "usdhc smoke start");
    // SAFETY: USDHC3 window; only this driver uses it.
    let regs = unsafe { MmioRegion::new(NonNull::new(0x30B6_0000 as *mut u32).unwrap(), 0x100) };
    // SAFETY: single-threaded; MEM handed over once.
    let mem = unsafe { &mut *core::ptr::addr_of_mut!(MEM) };
    // SAFETY: as above.
    let buf = unsafe { &mut (*core::ptr::addr_of_mut!(BUF)).0 };
    // SAFETY: as above.
    let buf2 = unsafe { &mut (*core::ptr::addr_of_mut!(BUF2)).0 };
    let mut mmc = Usdhc::new(regs, Identity, Timer, mem, Config::QEMU_SD);
    let _ = writeln!(u, "card_present {}", mmc.card_present());
    let t0 = Timer.ticks();
    let info = match mmc.init() {
        Ok(i) => i,
        Err(e) => {
            let _ = writeln!(u, "init error: {e}");
            let _ = writeln!(u, "SMOKE DONE");
            poweroff();
            return;
        }
    };
    let t1 = Timer.ticks();
    let _ = writeln!(u, "init ticks {}", t1 - t0);
    let _ = writeln!(
        u,
        "info: kind {:?} mid {:#x} oem {:#x} name '{}' rev {:#x} serial {:#x} hc {} blocks {:#x} bus {} mode '{}' rca {:#x} ver {}",
        info.kind, info.manufacturer_id, info.oem_id, info.name(), info.revision, info.serial,
        info.high_capacity, info.user_blocks, info.bus_width.bits(), info.mode, info.rca, info.version
    );
    match Gpt::read(&mut mmc) {
        Ok(g) => {
            let _ = writeln!(u, "gpt source {:?} disk {}", g.source, g.disk_guid);
            for p in g.partitions() {
                let _ = writeln!(
                    u,
                    "part {} {:#x}..{:#x} '{}' type {} guid {}",
                    p.index, p.first_lba, p.last_lba, p.display_name(), p.type_guid, p.unique_guid
                );
            }
        }
        Err(e) => {
            let _ = writeln!(u, "gpt error: {e}");
        }
    }
    // Reads of the host pattern, every path.
    for (mode, multi, off, n, lba) in [
        (TransferMode::Adma2, true, 0usize, 300usize, 2048u64),
        (TransferMode::Adma2, true, 3, 200, 2100),
        (TransferMode::Adma2, false, 0, 5, 2200),
        (TransferMode::Pio, true, 0, 33, 2300),
        (TransferMode::Pio, false, 1, 3, 2400),
    ] {
        mmc.set_transfer_mode(mode);
        mmc.set_multi_block(multi);
        let b = &mut buf[off..off + n * 512];
        b.fill(0);
        mmc.read(lba, b).unwrap();
        check_pat(lba, b);
        let _ = writeln!(u, "read ok {mode:?} multi {multi} off {off} n {n} lba {lba}");
    }
    // Writes, read back each way.
    for (i, (mode, multi, off, n, lba)) in [
        (TransferMode::Adma2, true, 0usize, 64usize, 4096u64),
        (TransferMode::Adma2, true, 5, 7, 4200),
        (TransferMode::Adma2, false, 0, 2, 4300),
        (TransferMode::Pio, true, 0, 3, 4400),
        (TransferMode::Pio, false, 2, 2, 4500),
    ]
    .into_iter()
    .enumerate()
    {
        mmc.set_transfer_mode(mode);
        mmc.set_multi_block(multi);
        let w = &mut buf[off..off + n * 512];
        fill(i as u8, w);
        mmc.write(lba, w).unwrap();
        mmc.set_transfer_mode(TransferMode::Adma2);
        mmc.set_multi_block(true);
        let r = &mut buf2[..n * 512];
        mmc.read(lba, r).unwrap();
        assert!(r == &buf[off..off + n * 512], "write/read mismatch {i}");
        let _ = writeln!(u, "write ok {mode:?} multi {multi} off {off} n {n} lba {lba}");
    }
    // Multi-MiB.
    let big = &mut buf[..5000 * 512];
    fill(0x5A, big);
    mmc.write(8192, big).unwrap();
    buf2[..5000 * 512].fill(0);
    mmc.read(8192, &mut buf2[..5000 * 512]).unwrap();
    assert!(buf2[..5000 * 512] == buf[..5000 * 512], "big mismatch");
    let _ = writeln!(u, "big ok");
    // Erase.
    mmc.erase(6000, 4).unwrap();
    let r = &mut buf2[..6 * 512];
    mmc.read(5999, r).unwrap();
    check_pat(5999, &r[..512]);
    check_pat(6004, &r[5 * 512..]);
    let _ = writeln!(u, "erase ok, erased byte {:#x}", r[512]);
    // Timing (CNTVCT ticks; 125 instructions per tick with -icount shift=0).
    for (mode, multi, write) in [
        (TransferMode::Adma2, true, false),
        (TransferMode::Adma2, true, true),
        (TransferMode::Adma2, false, false),
        (TransferMode::Pio, true, false),
        (TransferMode::Pio, false, true),
    ] {
        mmc.set_transfer_mode(mode);
        mmc.set_multi_block(multi);
        let b = &mut buf[..1 << 20];
        let t0 = Timer.ticks();
        if write {
            mmc.write(16384, b).unwrap();
        } else {
            mmc.read(16384, b).unwrap();
        }
        let t = Timer.ticks() - t0;
        let _ = writeln!(u, "bench {mode:?} multi {multi} write {write}: {t} ticks/MiB");
    }
    let e = mmc.select_partition(Part::Boot0).unwrap_err();
    let _ = writeln!(u, "boot0 on SD: {e}");
    let mut one = [0u8; 1024];
    let e = mmc.read(mmc.num_blocks() - 1, &mut one).unwrap_err();
    let _ = writeln!(u, "past end: {e}");
    let _ = writeln!(u, "SMOKE PASS");
    poweroff();
}
