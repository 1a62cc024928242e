//! The loader's cells: the one home of `UnsafeCell` for state shared by
//! the code of the one running core (statics of the board, the log, the
//! exception handler, the page tables, driver DMA memory).

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// A value that code of the one running core shares under a discipline
/// stated where it is used (only the data-abort handler, only before the
/// MMU is on, ...): no lock, the callers of [`SingleCore::get`] promise
/// that their accesses never overlap.
pub struct SingleCore<T>(UnsafeCell<T>);

// SAFETY: the loader runs on one core (entry.S parks the others) and every
// access goes through `get`, whose callers promise not to overlap.
unsafe impl<T> Sync for SingleCore<T> {}

impl<T> SingleCore<T> {
    /// Wraps a value (use a `const` initialiser so it lands in `.data`/`.bss`).
    pub const fn new(v: T) -> Self {
        Self(UnsafeCell::new(v))
    }

    /// The value.
    ///
    /// # Safety
    /// No other reference to the value may be live while the returned one
    /// is: the caller's discipline (stated at the static) excludes re-entry.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get(&self) -> &mut T {
        // SAFETY: exclusivity is the caller's promise.
        unsafe { &mut *self.0.get() }
    }
}

/// A buffer in `.bss` that is handed out once as `&'static mut` (DMA
/// memory for the drivers).
pub struct StaticBuf<T> {
    buf: UnsafeCell<T>,
    taken: TakeOnce,
}

// SAFETY: the buffer is reachable only through the single `&mut` that `take`
// hands out once (guarded by `taken`).
unsafe impl<T> Sync for StaticBuf<T> {}

impl<T> StaticBuf<T> {
    /// Wraps a value (use a `const` constructor so it lands in `.bss`).
    pub const fn new(v: T) -> Self {
        Self {
            buf: UnsafeCell::new(v),
            taken: TakeOnce::new(),
        }
    }

    /// The buffer, the first time only.
    // A shared `&'static self` yields the one `&mut`: that is the point of
    // the `taken` guard.
    #[allow(clippy::mut_from_ref)]
    pub fn take(&'static self) -> Option<&'static mut T> {
        if !self.taken.take() {
            return None;
        }
        // SAFETY: `taken` was false, so no other reference exists, and none
        // will be handed out again.
        Some(unsafe { &mut *self.buf.get() })
    }
}

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

    #[test]
    fn static_buf_is_handed_out_once() {
        static B: StaticBuf<[u8; 4]> = StaticBuf::new([1, 2, 3, 4]);
        let b = B.take().expect("first take");
        b[0] = 9;
        assert!(B.take().is_none());
    }
}
