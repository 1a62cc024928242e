//! SHA-256 of image data (the bulk of verification: tens of MB).
//!
//! On aarch64 with the Armv8 SHA-256 instructions (the loader's build) the
//! blocks are hashed here: the `sha2` crate's backend loads each 16-byte
//! piece with `vld1q_u8`, which LLVM turns into 16 single-byte loads on the
//! strict-alignment `aarch64-unknown-none` target (about 4 instructions per
//! byte in all); an `ld1 {v.16b}` needs only byte alignment, so it is
//! written out. Elsewhere (host tests, tools) it is `sha2`. Both are the
//! FIPS 180-4 algorithm; the QEMU tests accept a FIT only if this digest
//! equals the one `mkimage` computed on the host.

/// SHA-256 of `data`.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    #[cfg(all(target_arch = "aarch64", target_feature = "sha2"))]
    {
        // SAFETY: this code is only compiled with the `sha2` target feature
        // (and aarch64's NEON), i.e. for CPUs that have them; the loader
        // also refuses to run on one without (`arch::missing_crypto_extension`).
        unsafe { armv8::digest(data) }
    }
    #[cfg(not(all(target_arch = "aarch64", target_feature = "sha2")))]
    {
        use sha2::{Digest, Sha256};
        Sha256::digest(data).into()
    }
}

#[cfg(all(target_arch = "aarch64", target_feature = "sha2"))]
mod armv8 {
    use core::arch::aarch64::{
        uint32x4_t, vaddq_u32, vgetq_lane_u32, vld1q_u32, vreinterpretq_u32_u8, vrev32q_u8,
        vsha256h2q_u32, vsha256hq_u32, vsha256su0q_u32, vsha256su1q_u32,
    };
    use core::arch::asm;

    /// FIPS 180-4 section 4.2.2.
    static K: [[u32; 4]; 16] = [
        [0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5],
        [0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5],
        [0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3],
        [0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174],
        [0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc],
        [0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da],
        [0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7],
        [0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967],
        [0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13],
        [0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85],
        [0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3],
        [0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070],
        [0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5],
        [0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3],
        [0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208],
        [0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2],
    ];
    /// FIPS 180-4 section 5.3.3.
    static H0: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];

    #[target_feature(enable = "neon")]
    fn words(w: &[u32; 4]) -> uint32x4_t {
        // SAFETY: `w` is 4 readable, aligned u32s.
        unsafe { vld1q_u32(w.as_ptr()) }
    }

    /// Bytes 16 * I .. 16 * I + 16 of `block` as 4 big-endian words.
    #[target_feature(enable = "neon")]
    fn load16<const I: usize>(block: &[u8; 64]) -> uint32x4_t {
        const { assert!(I < 4) };
        let v;
        // SAFETY: I < 4 (checked at compile time), so the 16 bytes at
        // offset 16 * I are inside `block`; `ld1 {vN.16b}` reads exactly
        // those, with any alignment, and touches no other state.
        unsafe {
            asm!(
                "ld1 {{{v:v}.16b}}, [{p}]",
                v = out(vreg) v,
                p = in(reg) block.as_ptr().wrapping_add(16 * I),
                options(nostack, readonly, preserves_flags)
            );
        }
        vreinterpretq_u32_u8(vrev32q_u8(v))
    }

    /// One 64-byte block into the state (abcd, efgh).
    #[target_feature(enable = "neon,sha2")]
    fn compress(state: &mut [uint32x4_t; 2], block: &[u8; 64]) {
        let mut w = [
            load16::<0>(block),
            load16::<1>(block),
            load16::<2>(block),
            load16::<3>(block),
        ];
        let [a0, e0] = *state;
        let (mut a, mut e) = (a0, e0);
        for (i, k) in K.iter().enumerate() {
            let j = i % 4;
            if i >= 4 {
                w[j] = vsha256su1q_u32(
                    vsha256su0q_u32(w[j], w[(j + 1) % 4]),
                    w[(j + 2) % 4],
                    w[(j + 3) % 4],
                );
            }
            let t = vaddq_u32(w[j], words(k));
            let prev = a;
            a = vsha256hq_u32(prev, e, t);
            e = vsha256h2q_u32(e, prev, t);
        }
        *state = [vaddq_u32(a, a0), vaddq_u32(e, e0)];
    }

    #[target_feature(enable = "neon,sha2")]
    pub(super) fn digest(data: &[u8]) -> [u8; 32] {
        let mut state = [
            words(&[H0[0], H0[1], H0[2], H0[3]]),
            words(&[H0[4], H0[5], H0[6], H0[7]]),
        ];
        let (blocks, rest) = data.as_chunks::<64>();
        for b in blocks {
            compress(&mut state, b);
        }
        // Padding: 0x80, zeros, the length in bits (big-endian u64).
        let mut tail = [0u8; 128];
        tail[..rest.len()].copy_from_slice(rest);
        tail[rest.len()] = 0x80;
        let n = if rest.len() < 56 { 64 } else { 128 };
        let bits = (data.len() as u64).wrapping_mul(8);
        tail[n - 8..n].copy_from_slice(&bits.to_be_bytes());
        for b in tail[..n].as_chunks::<64>().0 {
            compress(&mut state, b);
        }
        let s = [
            vgetq_lane_u32::<0>(state[0]),
            vgetq_lane_u32::<1>(state[0]),
            vgetq_lane_u32::<2>(state[0]),
            vgetq_lane_u32::<3>(state[0]),
            vgetq_lane_u32::<0>(state[1]),
            vgetq_lane_u32::<1>(state[1]),
            vgetq_lane_u32::<2>(state[1]),
            vgetq_lane_u32::<3>(state[1]),
        ];
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(s) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }
}
