//! Two tiny single-core cells for board state.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// A flag that is true exactly once.
pub struct TakeOnce(AtomicBool);

impl TakeOnce {
    /// Not yet taken.
    pub const fn new() -> Self {
        Self(AtomicBool::new(false))
    }

    /// True the first time, false afterwards.
    pub fn take(&self) -> bool {
        !self.0.swap(true, Ordering::AcqRel)
    }
}

impl Default for TakeOnce {
    fn default() -> Self {
        Self::new()
    }
}

/// A value written once during early boot and only read afterwards.
pub struct InitOnce<T> {
    state: AtomicU8,
    value: UnsafeCell<Option<T>>,
}

// SAFETY: the value is written only by `set`, which succeeds once and only
// while no reader can have a reference (state EMPTY -> WRITING -> READY);
// readers only see it in state READY, after which it is never written again.
unsafe impl<T: Sync + Send> Sync for InitOnce<T> {}

const EMPTY: u8 = 0;
const WRITING: u8 = 1;
const READY: u8 = 2;

impl<T> InitOnce<T> {
    /// Empty.
    pub const fn new() -> Self {
        Self {
            state: AtomicU8::new(EMPTY),
            value: UnsafeCell::new(None),
        }
    }

    /// Stores the value; returns it back if the cell was already set.
    pub fn set(&self, v: T) -> Result<(), T> {
        if self
            .state
            .compare_exchange(EMPTY, WRITING, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(v);
        }
        // SAFETY: state WRITING is held by this call only, and no reader
        // looks at the value before READY, so this is the only access.
        unsafe { *self.value.get() = Some(v) };
        self.state.store(READY, Ordering::Release);
        Ok(())
    }

    /// The value, once set.
    pub fn get(&self) -> Option<&T> {
        if self.state.load(Ordering::Acquire) != READY {
            return None;
        }
        // SAFETY: READY means the write finished and no further write happens.
        unsafe { (*self.value.get()).as_ref() }
    }
}

impl<T> Default for InitOnce<T> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn init_once_sets_once() {
        let c = InitOnce::new();
        assert_eq!(c.get(), None);
        assert_eq!(c.set(5), Ok(()));
        assert_eq!(c.set(6), Err(6));
        assert_eq!(c.get(), Some(&5));
        let t = TakeOnce::new();
        assert!(t.take());
        assert!(!t.take());
    }
}
