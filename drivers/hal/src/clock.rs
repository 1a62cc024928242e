//! Time for timeouts.

/// A monotonic tick counter with a known frequency (the generic timer on the
/// boards; a fake that advances on every read in host tests).
pub trait Clock {
    /// The current tick count.
    fn ticks(&self) -> u64;
    /// Ticks per second.
    fn frequency(&self) -> u64;

    /// A deadline `us` microseconds from now.
    fn deadline_us(&self, us: u64) -> Deadline {
        let f = self.frequency();
        let delta = (u128::from(us) * u128::from(f)).div_ceil(1_000_000);
        Deadline {
            at: self
                .ticks()
                .saturating_add(u64::try_from(delta).unwrap_or(u64::MAX)),
        }
    }

    /// Microseconds since tick 0 (for log timestamps).
    fn micros(&self) -> u64 {
        let f = self.frequency().max(1);
        u64::try_from(u128::from(self.ticks()) * 1_000_000 / u128::from(f)).unwrap_or(u64::MAX)
    }
}

impl<T: Clock + ?Sized> Clock for &T {
    fn ticks(&self) -> u64 {
        (**self).ticks()
    }
    fn frequency(&self) -> u64 {
        (**self).frequency()
    }
}

/// A point in time after which a wait gives up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline {
    at: u64,
}

impl Deadline {
    /// Whether `clock` has passed the deadline.
    pub fn expired(&self, clock: &impl Clock) -> bool {
        clock.ticks() >= self.at
    }

    /// Polls `done` until it returns `Some`, or the deadline passes (`None`).
    /// `done` is always tried at least once, and once more after expiry, so a
    /// slow clock never turns a finished operation into a timeout.
    pub fn poll<T>(&self, clock: &impl Clock, mut done: impl FnMut() -> Option<T>) -> Option<T> {
        loop {
            let expired = self.expired(clock);
            if let Some(v) = done() {
                return Some(v);
            }
            if expired {
                return None;
            }
            core::hint::spin_loop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::cell::Cell;

    struct Fake(Cell<u64>);
    impl Clock for Fake {
        fn ticks(&self) -> u64 {
            let t = self.0.get();
            self.0.set(t + 1);
            t
        }
        fn frequency(&self) -> u64 {
            1_000_000
        }
    }

    #[test]
    fn deadline_expires_after_its_ticks() {
        let c = Fake(Cell::new(0));
        let d = c.deadline_us(10);
        let mut polls = 0;
        assert_eq!(
            d.poll(&c, || {
                polls += 1;
                None::<()>
            }),
            None
        );
        assert!((9..=12).contains(&polls), "polled {polls} times");
    }

    #[test]
    fn poll_returns_value_when_ready() {
        let c = Fake(Cell::new(0));
        let d = c.deadline_us(1000);
        let mut n = 0;
        assert_eq!(
            d.poll(&c, || {
                n += 1;
                (n == 3).then_some(n)
            }),
            Some(3)
        );
    }
}
