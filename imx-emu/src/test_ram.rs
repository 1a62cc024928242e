//! Guest RAM for the model's unit and property tests: a byte vector at
//! [`RAM`], every access bounds-checked like the QEMU board's.

use crate::{BusError, BusMemory};
use std::vec::Vec;

/// Where the test RAM starts.
pub const RAM: u64 = 0x4000_0000;

/// `Ram(bytes)`: guest RAM from [`RAM`] on.
pub struct Ram(pub Vec<u8>);

impl Ram {
    fn range(&self, addr: u64, len: usize) -> Result<core::ops::Range<usize>, BusError> {
        let err = BusError { addr, len };
        let off = usize::try_from(addr.checked_sub(RAM).ok_or(err)?).map_err(|_| err)?;
        let end = off.checked_add(len).ok_or(err)?;
        if end > self.0.len() {
            return Err(err);
        }
        Ok(off..end)
    }
}

impl BusMemory for Ram {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), BusError> {
        let r = self.range(addr, buf.len())?;
        buf.copy_from_slice(&self.0[r]);
        Ok(())
    }
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), BusError> {
        let r = self.range(addr, data.len())?;
        self.0[r].copy_from_slice(data);
        Ok(())
    }
}
