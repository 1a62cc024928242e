//! The EL2 identity map: DRAM normal write-back, peripherals device memory,
//! the loader's own sections W^X, stack guard pages and everything else
//! unmapped (so stray accesses fault, and QEMU's emulated pages trap).
//!
//! 4 KiB granule, 39-bit VA (T0SZ = 25), lookup from level 1. Tables come from
//! a fixed pool in `.bss`; the map is built once, before the MMU is enabled.

use super::{cache, layout};
use board::cell::SingleCore;
use board::memory::{Kind, Region};
use core::arch::asm;
use core::sync::atomic::{AtomicU64, Ordering};

const ENTRIES: usize = 512;
const POOL: usize = 16;

const VALID: u64 = 1;
const TABLE_OR_PAGE: u64 = 1 << 1;
const ATTR_DEVICE: u64 = 0 << 2;
const ATTR_NORMAL: u64 = 1 << 2;
/// AP[1] is RES1 in the EL2 regime; AP[2] set = read-only.
const AP_RES1: u64 = 1 << 6;
const AP_RO: u64 = 1 << 7;
const SH_INNER: u64 = 3 << 8;
const AF: u64 = 1 << 10;
const XN: u64 = 1 << 54;
const ADDR_MASK: u64 = 0x0000_ffff_ffff_f000;

/// MAIR_EL2: index 0 Device-nGnRE, index 1 Normal WB RA/WA, index 2 Normal NC.
const MAIR: u64 = 0x04 | (0xff << 8) | (0x44 << 16);
/// TCR_EL2: T0SZ 25, inner/outer WB WA walks, inner shareable, 4 KiB, 40-bit
/// PA, RES1 bits 31 and 23.
const TCR: u64 = 25 | (1 << 8) | (1 << 10) | (3 << 12) | (2 << 16) | (1 << 23) | (1 << 31);
/// SCTLR_EL2: RES1 bits, M, C, SA, I, WXN.
const SCTLR: u64 = 0x30c5_0830 | 1 | (1 << 2) | (1 << 3) | (1 << 12) | (1 << 19);

/// Page permissions of a mapping.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Perm {
    /// Not mapped: any access faults.
    None,
    /// Device memory, read/write, never executable.
    Device,
    /// Normal memory, read/write, never executable.
    ReadWrite,
    /// Normal memory, read-only, never executable.
    ReadOnly,
    /// Normal memory, read-only, executable.
    Execute,
}

impl Perm {
    fn attrs(self) -> u64 {
        let normal = ATTR_NORMAL | SH_INNER | AF | AP_RES1 | VALID;
        match self {
            Perm::None => 0,
            Perm::Device => ATTR_DEVICE | AF | AP_RES1 | XN | VALID,
            Perm::ReadWrite => normal | XN,
            Perm::ReadOnly => normal | AP_RO | XN,
            Perm::Execute => normal | AP_RO,
        }
    }
}

#[repr(C, align(4096))]
struct Table([u64; ENTRIES]);

/// Written only by `init`, which runs once on the boot CPU before anything
/// else can observe it (before the MMU is on); afterwards only read by the
/// table walk in `lookup`.
static POOL_TABLES: SingleCore<[Table; POOL]> =
    SingleCore::new([const { Table([0; ENTRIES]) }; POOL]);
static ROOT: AtomicU64 = AtomicU64::new(0);

/// Builds tables from `[Table]`s handed out by `alloc`.
struct Builder<'a> {
    tables: &'a mut [Table; POOL],
    used: usize,
}

impl Builder<'_> {
    fn alloc(&mut self) -> usize {
        assert!(self.used < POOL, "page-table pool exhausted");
        self.used += 1;
        self.used - 1
    }

    fn map(&mut self, start: u64, end: u64, perm: Perm) {
        assert!(
            start.is_multiple_of(4096) && end.is_multiple_of(4096) && start <= end,
            "unaligned map"
        );
        self.map_level(0, 1, start, end, perm);
    }

    /// Maps `[start, end)` inside table `t`, which translates level `level`.
    fn map_level(&mut self, t: usize, level: u32, start: u64, end: u64, perm: Perm) {
        let shift = 12 + 9 * (3 - level);
        let size = 1u64 << shift;
        let mut va = start;
        while va < end {
            let idx = ((va >> shift) & 0x1ff) as usize;
            let block_start = va & !(size - 1);
            let block_end = block_start + size;
            let chunk_end = end.min(block_end);
            let whole = va == block_start && chunk_end == block_end;
            if whole {
                let attrs = perm.attrs();
                self.tables[t].0[idx] = if attrs == 0 {
                    0
                } else if level == 3 {
                    block_start | attrs | TABLE_OR_PAGE
                } else {
                    block_start | attrs
                };
            } else {
                let next = self.subtable(t, idx, level);
                self.map_level(next, level + 1, va, chunk_end, perm);
            }
            va = chunk_end;
        }
    }

    /// The next-level table under entry `idx` of table `t`, splitting a block
    /// entry into an equivalent table if needed.
    fn subtable(&mut self, t: usize, idx: usize, level: u32) -> usize {
        let e = self.tables[t].0[idx];
        if e & (VALID | TABLE_OR_PAGE) == (VALID | TABLE_OR_PAGE) {
            let addr = e & ADDR_MASK;
            let base = self.tables.as_ptr() as u64;
            return ((addr - base) / 4096) as usize;
        }
        let n = self.alloc();
        if e & VALID != 0 {
            // Split a block: same attributes, next level's granule.
            let child_size = 1u64 << (12 + 9 * (3 - (level + 1)));
            let attrs = e & !ADDR_MASK;
            let base = e & ADDR_MASK;
            let page_bit = if level + 1 == 3 { TABLE_OR_PAGE } else { 0 };
            for (i, slot) in self.tables[n].0.iter_mut().enumerate() {
                *slot = (base + i as u64 * child_size) | attrs | page_bit;
            }
        }
        let addr = &self.tables[n] as *const Table as u64;
        self.tables[t].0[idx] = addr | VALID | TABLE_OR_PAGE;
        n
    }
}

/// Builds the identity map from the board's regions plus the loader's own
/// sections and turns on the MMU and caches.
///
/// Runs once, on the boot CPU, with the MMU off.
pub fn init(regions: &[Region]) {
    // SAFETY: `init` runs once before the MMU is on and before anything reads
    // the pool (see `POOL_TABLES`), so this is the only reference.
    let tables = unsafe { POOL_TABLES.get() };
    let mut b = Builder { tables, used: 1 };
    for r in regions {
        let perm = match r.kind {
            Kind::Device => Perm::Device,
            Kind::Normal => Perm::ReadWrite,
        };
        b.map(r.start, r.end, perm);
    }
    // The loader image: text RX, rodata R, data/bss RW, guard pages unmapped.
    b.map(layout::image_start(), layout::text_end(), Perm::Execute);
    b.map(layout::text_end(), layout::rodata_end(), Perm::ReadOnly);
    b.map(layout::rodata_end(), layout::image_end(), Perm::ReadWrite);
    b.map(layout::stack_guard(), layout::stack_bottom(), Perm::None);
    b.map(
        layout::exc_stack_guard(),
        layout::exc_stack_bottom(),
        Perm::None,
    );

    let root = b.tables.as_ptr() as u64;
    ROOT.store(root, Ordering::Relaxed);
    // Drop any stale lines over what we wrote with the caches off.
    let start = layout::image_start() as usize;
    cache::invalidate(start, layout::image_end() as usize - start);

    // SAFETY: the tables map the running code RX at its own address (identity
    // map), the stacks and data RW, so execution continues unchanged when the
    // MMU comes on; the barriers order the table writes before the walk.
    unsafe {
        asm!(
            "dsb sy",
            "tlbi alle2",
            "ic iallu",
            "dsb sy",
            "isb",
            "msr mair_el2, {mair}",
            "msr tcr_el2, {tcr}",
            "msr ttbr0_el2, {root}",
            "isb",
            "msr sctlr_el2, {sctlr}",
            "isb",
            mair = in(reg) MAIR,
            tcr = in(reg) TCR,
            root = in(reg) root,
            sctlr = in(reg) SCTLR,
            options(nostack)
        )
    };
}

/// The permissions the live map gives `addr` (walks our own tables).
pub fn lookup(addr: u64) -> Perm {
    span(addr).0
}

/// The permissions the live map gives `addr`, and the end of the table
/// entry that maps it (so range checks step by block, not by page).
pub fn span(addr: u64) -> (Perm, u64) {
    let root = ROOT.load(Ordering::Relaxed);
    let page_end = (addr | 0xfff).saturating_add(1);
    if root == 0 || addr >> 39 != 0 {
        return (Perm::None, page_end);
    }
    let mut table = root;
    for level in 1..=3u32 {
        let shift = 12 + 9 * (3 - level);
        let end = (addr | ((1u64 << shift) - 1)).saturating_add(1);
        let idx = (addr >> shift) & 0x1ff;
        let ptr = (table + idx * 8) as *const u64;
        // SAFETY: `table` is one of the pool's tables (root or a table address
        // written by `Builder`), `idx` < 512, and the pool is no longer written.
        let e = unsafe { ptr.read() };
        if e & VALID == 0 {
            return (Perm::None, end);
        }
        let is_table = e & TABLE_OR_PAGE != 0 && level < 3;
        if !is_table {
            return (decode(e), end);
        }
        table = e & ADDR_MASK;
    }
    (Perm::None, page_end)
}

fn decode(e: u64) -> Perm {
    if e & (7 << 2) == ATTR_DEVICE {
        Perm::Device
    } else if e & AP_RO == 0 {
        Perm::ReadWrite
    } else if e & XN != 0 {
        Perm::ReadOnly
    } else {
        Perm::Execute
    }
}
