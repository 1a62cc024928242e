//! The driver on the `imx-emu` model, on the host: for tests of the crates
//! built on this one (feature `emulated`; never in the loader).
//!
//! The fake DMA models a non-coherent cache: the CPU's `DmaMem` and the
//! device-visible "RAM" (an arena at bus address 0x4000_0000) are separate
//! copies, `clean` copies CPU -> RAM and `invalidate` RAM -> CPU. A missing
//! cache operation in the driver therefore shows up as wrong data.

extern crate std;

use crate::{Caam, CaamError, DmaMem};
use core::cell::{Cell, RefCell};
use hal::{Clock, Dma, RegisterIo};
use imx_emu::fusefile::FuseFile;
use imx_emu::{BusError, BusMemory, Emulator, MmioDevice};
use std::boxed::Box;
use std::rc::Rc;
use std::vec;
use std::vec::Vec;

const BUS_BASE: u64 = 0x4000_0000;
/// The CAAM's base address, as the model decodes it.
pub const CAAM: u64 = imx_emu::CAAM_BASE;
/// Job ring 1's page.
pub const JR1: u64 = CAAM + 0x2000;

type Arena = Rc<RefCell<Vec<u8>>>;

/// The device-visible RAM.
pub struct ArenaBus(Arena);

impl BusMemory for ArenaBus {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), BusError> {
        let a = self.0.borrow();
        let err = BusError {
            addr,
            len: buf.len(),
        };
        let off = usize::try_from(addr.checked_sub(BUS_BASE).ok_or(err)?).map_err(|_| err)?;
        let src = a.get(off..off + buf.len()).ok_or(err)?;
        buf.copy_from_slice(src);
        Ok(())
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), BusError> {
        let mut a = self.0.borrow_mut();
        let err = BusError {
            addr,
            len: data.len(),
        };
        let off = usize::try_from(addr.checked_sub(BUS_BASE).ok_or(err)?).map_err(|_| err)?;
        a.get_mut(off..off + data.len())
            .ok_or(err)?
            .copy_from_slice(data);
        Ok(())
    }
}

/// The model behind the register windows.
pub type Emu = Emulator<ArenaBus>;

/// A register window of the model.
pub struct Regs {
    emu: Rc<RefCell<Emu>>,
    base: u64,
}

impl RegisterIo for Regs {
    fn read(&self, offset: usize) -> u32 {
        let v = self
            .emu
            .borrow_mut()
            .read(self.base + offset as u64, 4)
            .unwrap_or_else(|e| panic!("driver read refused: {e}"));
        u32::try_from(v).unwrap_or_else(|_| panic!("32-bit read returned {v:#x}"))
    }
    fn write(&self, offset: usize, value: u32) {
        self.emu
            .borrow_mut()
            .write(self.base + offset as u64, 4, u64::from(value))
            .unwrap_or_else(|e| panic!("driver write refused: {e}"));
    }
}

/// DMA between the leaked `DmaMem` and the arena.
pub struct FakeDma {
    cpu_base: usize,
    len: usize,
    arena: Arena,
}

impl FakeDma {
    fn range(&self, ptr: *const u8, len: usize) -> usize {
        let p = ptr as usize;
        assert!(
            p >= self.cpu_base && p + len <= self.cpu_base + self.len,
            "DMA range outside DmaMem"
        );
        p - self.cpu_base
    }
}

// `hal::Dma` takes raw pointers by design; `range` bounds them to the
// leaked `DmaMem` before any dereference.
#[allow(clippy::not_unsafe_ptr_arg_deref)]
impl Dma for FakeDma {
    fn bus_addr(&self, ptr: *const u8, len: usize) -> Option<u64> {
        Some(BUS_BASE + self.range(ptr, len) as u64)
    }
    fn clean(&self, ptr: *const u8, len: usize) {
        let off = self.range(ptr, len);
        // SAFETY: `range` checked that [ptr, ptr+len) lies inside the live,
        // leaked `DmaMem`; the driver is not writing it during this call.
        let src = unsafe { core::slice::from_raw_parts(ptr, len) };
        self.arena.borrow_mut()[off..off + len].copy_from_slice(src);
    }
    fn invalidate(&self, ptr: *const u8, len: usize) {
        let off = self.range(ptr, len);
        // SAFETY: `range` checked the bounds inside the leaked `DmaMem`, and
        // the driver passes pointers derived from `&mut` for buffers it hands
        // to the device for writing; no reference to them is live here.
        let dst = unsafe { core::slice::from_raw_parts_mut(ptr.cast_mut(), len) };
        dst.copy_from_slice(&self.arena.borrow()[off..off + len]);
    }
}

/// A clock that advances one tick (1 us) per read.
pub struct FakeClock(Cell<u64>);

impl Clock for FakeClock {
    fn ticks(&self) -> u64 {
        let t = self.0.get();
        self.0.set(t + 1);
        t
    }
    fn frequency(&self) -> u64 {
        1_000_000
    }
}

/// The driver on the model.
pub type Driver = Caam<Regs, FakeDma, FakeClock>;

/// A virtual chip: the model and the driver on job ring 1.
pub struct Rig {
    /// The model (for direct register access in tests).
    pub emu: Rc<RefCell<Emu>>,
    /// The driver.
    pub caam: Driver,
}

/// A chip with the fuses `f`, its CAAM not yet initialised.
pub fn rig(f: FuseFile) -> Rig {
    let len = core::mem::size_of::<DmaMem>();
    let arena: Arena = Rc::new(RefCell::new(vec![0u8; len]));
    let emu = Rc::new(RefCell::new(Emulator::new(f, ArenaBus(arena.clone()))));
    let caam = driver(&emu, arena);
    Rig { emu, caam }
}

impl Rig {
    /// A copy of the device-visible RAM (what DMA left there).
    pub fn device_ram(&self) -> Vec<u8> {
        self.emu.borrow_mut().mem().0.borrow().clone()
    }

    /// Another driver on the same chip, as a re-initialising loader in the
    /// same power cycle would have (the model keeps its state).
    pub fn another_driver(&self) -> Driver {
        let arena = self.emu.borrow_mut().mem().0.clone();
        driver(&self.emu, arena)
    }

    /// Decapsulates `blob` as Linux does ([`linux_decap_descriptor`]),
    /// through the driver's 128-byte scratch buffer: the blob and its
    /// payload together take at most 128 bytes (a payload of up to 40).
    pub fn decap_as_linux(&mut self, key_mod: &[u8], blob: &[u8]) -> Result<Vec<u8>, CaamError> {
        let out_len = blob.len().checked_sub(crate::BLOB_OVERHEAD);
        let out_len = out_len.filter(|n| blob.len() + n <= 128);
        let out_len = out_len.unwrap_or_else(|| panic!("a {}-byte blob", blob.len()));
        let blob_at = self.caam.scratch_bus_addr()?;
        let out_at = blob_at + blob.len() as u32;
        let desc = linux_decap_descriptor(key_mod, blob_at, blob.len(), out_at);
        let mut emu = self.emu.borrow_mut();
        let ram = emu.mem();
        ram.write(u64::from(blob_at), blob).expect("scratch");
        ram.write(u64::from(out_at), &vec![0; out_len])
            .expect("scratch");
        drop(emu);
        self.caam.run_raw_descriptor(&desc)?;
        let mut out = vec![0; out_len];
        self.emu
            .borrow_mut()
            .mem()
            .read(u64::from(out_at), &mut out)
            .expect("scratch");
        Ok(out)
    }
}

/// The blob decapsulation descriptor Linux's `blob_gen.c` builds (the one
/// trusted keys with `trusted.source=caam` use): `init_job_desc`, the key
/// modifier as immediate class-2 KEY data (`append_key_as_imm`: `04800000 |
/// len`, the bytes padded to whole words), SEQ IN and SEQ OUT pointers with
/// 16-bit lengths (`append_seq_*_ptr_intlen`), 32-bit pointers, then
/// OPERATION blob decapsulation (`860D0000`).
pub fn linux_decap_descriptor(
    key_mod: &[u8],
    blob_at: u32,
    blob_len: usize,
    out_at: u32,
) -> Vec<u32> {
    let mut d = vec![0, 0x0480_0000 | key_mod.len() as u32];
    d.extend(key_mod.chunks(4).map(|c| {
        let mut w = [0u8; 4];
        w[..c.len()].copy_from_slice(c);
        u32::from_le_bytes(w)
    }));
    let out_len = blob_len.saturating_sub(crate::BLOB_OVERHEAD);
    d.extend([
        0xF000_0000 | blob_len as u32,
        blob_at,
        0xF800_0000 | out_len as u32,
        out_at,
        0x860D_0000,
    ]);
    d[0] = 0xB080_0000 | d.len() as u32;
    d
}

fn driver(emu: &Rc<RefCell<Emu>>, arena: Arena) -> Driver {
    let mem: &'static mut DmaMem = Box::leak(Box::new(DmaMem::new()));
    let len = core::mem::size_of::<DmaMem>();
    let dma = FakeDma {
        cpu_base: core::ptr::from_mut(mem) as usize,
        len,
        arena,
    };
    Caam::new(
        Regs {
            emu: emu.clone(),
            base: CAAM,
        },
        Regs {
            emu: emu.clone(),
            base: JR1,
        },
        1,
        dma,
        FakeClock(Cell::new(0)),
        mem,
    )
}
