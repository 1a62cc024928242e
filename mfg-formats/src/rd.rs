//! A bounds-checked little-endian reader over untrusted bytes.

use crate::FormatError;

pub(crate) struct Rd<'a> {
    b: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Rd<'a> {
    pub(crate) fn new(b: &'a [u8], what: &'static str) -> Self {
        Self { b, pos: 0, what }
    }

    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self
            .pos
            .checked_add(n)
            .ok_or(FormatError::Truncated { what: self.what })?;
        let s = self
            .b
            .get(self.pos..end)
            .ok_or(FormatError::Truncated { what: self.what })?;
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn arr<const N: usize>(&mut self) -> Result<[u8; N], FormatError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.arr::<1>()?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<u16, FormatError> {
        Ok(u16::from_le_bytes(self.arr()?))
    }

    pub(crate) fn u32(&mut self) -> Result<u32, FormatError> {
        Ok(u32::from_le_bytes(self.arr()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, FormatError> {
        Ok(u64::from_le_bytes(self.arr()?))
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// Checks the magic, then the version against `version`.
    pub(crate) fn magic_version(&mut self, magic: &[u8], version: u16) -> Result<(), FormatError> {
        if self.take(magic.len())? != magic {
            return Err(FormatError::BadMagic { what: self.what });
        }
        let v = self.u16()?;
        if v != version {
            return Err(FormatError::UnsupportedVersion {
                what: self.what,
                version: v,
            });
        }
        Ok(())
    }
}

/// A little-endian writer into a caller's buffer whose size was checked first.
pub(crate) struct Wr<'a> {
    b: &'a mut [u8],
    pos: usize,
}

impl<'a> Wr<'a> {
    pub(crate) fn new(b: &'a mut [u8]) -> Self {
        Self { b, pos: 0 }
    }

    pub(crate) fn put(&mut self, s: &[u8]) -> Result<(), FormatError> {
        let end = self
            .pos
            .checked_add(s.len())
            .ok_or(FormatError::BufferTooSmall)?;
        self.b
            .get_mut(self.pos..end)
            .ok_or(FormatError::BufferTooSmall)?
            .copy_from_slice(s);
        self.pos = end;
        Ok(())
    }

    pub(crate) fn u8(&mut self, v: u8) -> Result<(), FormatError> {
        self.put(&[v])
    }
    pub(crate) fn u16(&mut self, v: u16) -> Result<(), FormatError> {
        self.put(&v.to_le_bytes())
    }
    pub(crate) fn u32(&mut self, v: u32) -> Result<(), FormatError> {
        self.put(&v.to_le_bytes())
    }
    pub(crate) fn u64(&mut self, v: u64) -> Result<(), FormatError> {
        self.put(&v.to_le_bytes())
    }
    pub(crate) fn padded(&mut self, name: &[u8], width: usize) -> Result<(), FormatError> {
        let end = self
            .pos
            .checked_add(width)
            .ok_or(FormatError::BufferTooSmall)?;
        let f = self
            .b
            .get_mut(self.pos..end)
            .ok_or(FormatError::BufferTooSmall)?;
        crate::put_padded(f, name);
        self.pos = end;
        Ok(())
    }
}
