//! Wiping secrets from RAM.

/// Overwrites `buf` with zeros in a way the compiler must keep: the writes
/// are followed by an opaque use of the buffer. A bulk `fill` (not byte-wise
/// volatile stores) keeps large scrubs cheap.
pub fn scrub(buf: &mut [u8]) {
    buf.fill(0);
    core::hint::black_box(&mut *buf);
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
}

#[cfg(test)]
mod tests {
    #[test]
    fn scrub_zeroes() {
        let mut b = [0xa5u8; 100];
        super::scrub(&mut b[10..90]);
        assert!(b[10..90].iter().all(|&x| x == 0));
        assert_eq!((b[9], b[90]), (0xa5, 0xa5));
    }
}
