//! The model's crypto primitives: key derivation, the DRBG, the MP key and a
//! streaming AES-256-CCM (so blobs of any size go through a small buffer).
//!
//! None of these derivations is silicon's (the real ones are not public);
//! they only give the model the right *properties* (see the `caam` module).

use aes::Aes256;
use aes::cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use hkdf::Hkdf;
use p256::ecdsa::SigningKey;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// HKDF-SHA-256 with a multi-part info.
pub(crate) fn hkdf(salt: &[u8], ikm: &[u8], info: &[&[u8]], out: &mut [u8]) {
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    // Outputs here are at most 32 bytes, far below HKDF's 255*32 limit.
    if hk.expand_multi_info(info, out).is_err() {
        out.fill(0);
    }
}

/// A hash-counter DRBG: block i = SHA-256(seed || i). Deterministic for a
/// given fuse file and nonce; good enough for a model, not for silicon.
pub(crate) struct Drbg {
    seed: [u8; 32],
    counter: u64,
}

impl Drbg {
    pub(crate) fn new(otpmk: &[u8; 32], uid: &[u8; 16]) -> Self {
        let mut h = Sha256::new();
        h.update(b"imx-emu drbg v1");
        h.update(otpmk);
        h.update(uid);
        Self {
            seed: h.finalize().into(),
            counter: 0,
        }
    }

    /// Mixes `nonce` into the seed (e.g. a boot counter or timer value).
    pub(crate) fn reseed(&mut self, nonce: &[u8]) {
        let mut h = Sha256::new();
        h.update(self.seed);
        h.update(nonce);
        self.seed = h.finalize().into();
    }

    pub(crate) fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(32) {
            let mut h = Sha256::new();
            h.update(self.seed);
            h.update(self.counter.to_le_bytes());
            self.counter = self.counter.wrapping_add(1);
            let mut block: [u8; 32] = h.finalize().into();
            chunk.copy_from_slice(&block[..chunk.len()]);
            block.zeroize();
        }
    }
}

impl Drop for Drbg {
    fn drop(&mut self) {
        self.seed.zeroize();
    }
}

/// The chip's MP private key: a P-256 scalar derived from the OEM family
/// secret, the SRK hash fuses and the security state. Chips of one OEM in
/// one state share it.
pub(crate) fn mp_signing_key(family: &[u8; 32], srk_hash: &[u8; 32], secure: bool) -> SigningKey {
    let state = [u8::from(secure)];
    let mut ctr = 0u8;
    loop {
        let mut d = Zeroizing::new([0u8; 32]);
        hkdf(
            srk_hash,
            family,
            &[b"imx-emu MP P-256 private key v1", &state, &[ctr]],
            &mut *d,
        );
        if let Ok(k) = SigningKey::from_slice(&*d) {
            return k;
        }
        // Out of range (probability ~2^-32): try the next counter.
        ctr = ctr.wrapping_add(1);
    }
}

/// Streaming AES-256-CCM with a 12-byte nonce (L = 3, so payloads up to
/// 16 MiB), a 16-byte tag and no associated data (NIST SP 800-38C).
pub(crate) struct CcmStream {
    cipher: Aes256,
    nonce: [u8; 12],
    mac: [u8; 16],
    partial: [u8; 16],
    partial_len: usize,
    ctr: u32,
    keystream: [u8; 16],
    ks_used: usize,
}

const CCM_Q: u8 = 3;

impl CcmStream {
    /// Starts a CCM operation over a payload of `len` bytes.
    pub(crate) fn new(key: &[u8; 32], nonce: &[u8; 12], len: u32) -> Self {
        let cipher = Aes256::new(&Array::from(*key));
        let mut b0 = [0u8; 16];
        // Flags: Adata = 0, M' = (16 - 2) / 2 = 7, L' = q - 1.
        b0[0] = (7 << 3) | (CCM_Q - 1);
        b0[1..13].copy_from_slice(nonce);
        b0[13..16].copy_from_slice(&len.to_be_bytes()[1..4]);
        let mut blk = Array::from(b0);
        cipher.encrypt_block(&mut blk);
        Self {
            cipher,
            nonce: *nonce,
            mac: blk.into(),
            partial: [0; 16],
            partial_len: 0,
            ctr: 1,
            keystream: [0; 16],
            ks_used: 16,
        }
    }

    fn counter_block(&self, i: u32) -> [u8; 16] {
        let mut c = [0u8; 16];
        c[0] = CCM_Q - 1;
        c[1..13].copy_from_slice(&self.nonce);
        c[13..16].copy_from_slice(&i.to_be_bytes()[1..4]);
        let mut blk = Array::from(c);
        self.cipher.encrypt_block(&mut blk);
        blk.into()
    }

    /// Feeds plaintext into the CBC-MAC.
    pub(crate) fn mac_update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let n = (16 - self.partial_len).min(data.len());
            self.partial[self.partial_len..self.partial_len + n].copy_from_slice(&data[..n]);
            self.partial_len += n;
            data = &data[n..];
            if self.partial_len == 16 {
                self.mac_block();
            }
        }
    }

    fn mac_block(&mut self) {
        let mut x = [0u8; 16];
        for (o, (a, b)) in x.iter_mut().zip(self.mac.iter().zip(self.partial.iter())) {
            *o = a ^ b;
        }
        let mut blk = Array::from(x);
        self.cipher.encrypt_block(&mut blk);
        self.mac = blk.into();
        self.partial = [0; 16];
        self.partial_len = 0;
    }

    /// XORs the CTR keystream (counters 1, 2, ...) into `data`.
    pub(crate) fn ctr_apply(&mut self, data: &mut [u8]) {
        for b in data {
            if self.ks_used == 16 {
                self.keystream = self.counter_block(self.ctr);
                self.ctr = self.ctr.wrapping_add(1);
                self.ks_used = 0;
            }
            *b ^= self.keystream[self.ks_used];
            self.ks_used += 1;
        }
    }

    /// Restarts the keystream at counter 1 (for a second pass).
    pub(crate) fn ctr_restart(&mut self) {
        self.ctr = 1;
        self.ks_used = 16;
    }

    /// The tag: CBC-MAC (with the last partial block zero-padded) XOR S0.
    pub(crate) fn tag(&mut self) -> [u8; 16] {
        if self.partial_len != 0 {
            self.mac_block();
        }
        let s0 = self.counter_block(0);
        let mut t = [0u8; 16];
        for (o, (a, b)) in t.iter_mut().zip(self.mac.iter().zip(s0.iter())) {
            *o = a ^ b;
        }
        t
    }
}

impl Drop for CcmStream {
    fn drop(&mut self) {
        self.keystream.zeroize();
        self.partial.zeroize();
        self.mac.zeroize();
    }
}

/// AES-256-ECB over two blocks (the blob key wrap).
pub(crate) fn wrap_key(kek: &[u8; 32], key: &mut [u8; 32], encrypt: bool) {
    let cipher = Aes256::new(&Array::from(*kek));
    for half in key.chunks_exact_mut(16) {
        let mut b = [0u8; 16];
        b.copy_from_slice(half);
        let mut blk = Array::from(b);
        if encrypt {
            cipher.encrypt_block(&mut blk);
        } else {
            cipher.decrypt_block(&mut blk);
        }
        half.copy_from_slice(&blk);
        b.zeroize();
    }
}

/// Constant-time equality of two tags.
pub(crate) fn ct_eq(a: &[u8; 16], b: &[u8; 16]) -> bool {
    let mut d = 0u8;
    for (x, y) in a.iter().zip(b) {
        d |= x ^ y;
    }
    d == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use ccm::aead::AeadInOut;
    use ccm::consts::{U12, U16};

    type RefCcm = ccm::Ccm<Aes256, U16, U12>;

    #[test]
    fn streaming_ccm_matches_the_reference_crate() {
        let key = [0x42u8; 32];
        let nonce = [7u8; 12];
        for len in [0usize, 1, 15, 16, 17, 100, 4096, 70_000] {
            let plain: std::vec::Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
            let mut c = CcmStream::new(&key, &nonce, u32::try_from(len).unwrap());
            let mut ct = plain.clone();
            for chunk in ct.chunks_mut(100) {
                c.mac_update(chunk);
                c.ctr_apply(chunk);
            }
            let tag = c.tag();
            let r = RefCcm::new(&key.into());
            let mut ref_ct = plain.clone();
            let ref_tag = r
                .encrypt_inout_detached(&nonce.into(), &[], ref_ct.as_mut_slice().into())
                .unwrap();
            assert_eq!(ct, ref_ct, "len {len}");
            assert_eq!(tag.as_slice(), ref_tag.as_slice(), "len {len}");
        }
    }

    #[test]
    fn key_wrap_round_trips_and_depends_on_kek() {
        let mut k = [9u8; 32];
        wrap_key(&[1; 32], &mut k, true);
        assert_ne!(k, [9; 32]);
        let mut k2 = k;
        wrap_key(&[1; 32], &mut k, false);
        assert_eq!(k, [9; 32]);
        wrap_key(&[2; 32], &mut k2, false);
        assert_ne!(k2, [9; 32]);
    }

    #[test]
    fn drbg_is_deterministic_per_seed_and_reseeds() {
        let mut a = Drbg::new(&[1; 32], &[2; 16]);
        let mut b = Drbg::new(&[1; 32], &[2; 16]);
        let mut c = Drbg::new(&[1; 32], &[3; 16]);
        let (mut x, mut y, mut z) = ([0u8; 40], [0u8; 40], [0u8; 40]);
        a.fill(&mut x);
        b.fill(&mut y);
        c.fill(&mut z);
        assert_eq!(x, y);
        assert_ne!(x, z);
        a.fill(&mut y);
        assert_ne!(x, y, "counter advances");
        b.reseed(b"boot 2");
        b.fill(&mut z);
        assert_ne!(y, z);
    }
}
