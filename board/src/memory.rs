//! Memory-map description the MMU code turns into page tables.

/// How a region is mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Device-nGnRE, read/write, never executable.
    Device,
    /// Normal write-back cacheable memory, read/write, never executable.
    Normal,
}

/// A physical range `[start, end)`, identity-mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
    /// Mapping kind.
    pub kind: Kind,
}

impl Region {
    /// A region of the given kind.
    pub const fn new(start: u64, end: u64, kind: Kind) -> Self {
        Self { start, end, kind }
    }

    /// Whether `addr` lies inside.
    pub const fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
}
