//! Job descriptor builders (pure functions, 32-bit pointers).
//!
//! Every word is documented with its source in `docs/caam.md` (U-Boot
//! `jobdesc.c`, `fsl_mfgprot.c`; OP-TEE `caam_rng.c`, `caam_mp.c`); the unit
//! tests compare them word for word.

/// Job descriptor header: ONE bit set, `start` = start index (0 without a
/// PDB, 1 + PDB words with one), `len` = total words including the header.
pub const fn header(len: u32, start: u32) -> u32 {
    0xB080_0000 | (start << 16) | len
}

/// OPERATION: RNG instantiate state handle 0 with prediction resistance.
pub const OP_RNG_INSTANTIATE_SH0: u32 = 0x8250_0006;
/// JUMP class 1, local, offset +1 (waits for class-1 done).
pub const JUMP_WAIT_CLASS1: u32 = 0xA200_0001;
/// LOAD immediate, 4 bytes, to the clear-written register.
pub const LOAD_CLEAR_WRITTEN: u32 = 0x1088_0004;
/// OPERATION: RNG generate secure keys (JDKEK/TDKEK/TDSK).
pub const OP_RNG_GEN_SK: u32 = 0x8250_1000;
/// OPERATION: RNG generate with prediction resistance, state handle 0.
pub const OP_RNG_GENERATE: u32 = 0x8250_0002;
/// FIFO STORE of RNG data; the low 16 bits take the length.
pub const FIFO_STORE_RNG: u32 = 0x6034_0000;
/// PDB word 0 of MP operations: CSEL = P-256 (3 << 17).
pub const MP_CSEL_P256: u32 = 0x0006_0000;
/// OPERATION: MP public key.
pub const OP_MP_PUBK: u32 = 0x8614_0000;
/// OPERATION: MP sign.
pub const OP_MP_SIGN: u32 = 0x8615_0000;
/// OPERATION: MP private key generation (OP-TEE `MPPRIVK`), used when
/// SCFGR.MPCURVE reads 0 on an open part.
pub const OP_MP_PRIVK: u32 = 0x8714_0000;
/// OPERATION: RNG instantiate state handle 1 with prediction resistance.
pub const OP_RNG_INSTANTIATE_SH1: u32 = 0x8250_0016;
/// OP-TEE's MP private-key passphrase (`caam_mp.c`, `caam_mp_init`).
pub const MP_PASSPHRASE: &[u8; 24] = b"manufacturing protection";
/// KEY class 2, by reference, 16 bytes (the blob key modifier).
pub const KEY_CLASS2_16: u32 = 0x0400_0010;
/// KEY class 2, by reference; the low 10 bits take the length in bytes.
pub const KEY_CLASS2: u32 = 0x0400_0000;
/// Longest blob key modifier (Linux `CAAM_BLOB_KEYMOD_LENGTH`).
pub const MAX_KEY_MOD: usize = 16;
/// SEQ IN PTR with a 32-bit length word (EXT).
pub const SEQ_IN_EXT: u32 = 0xF040_0000;
/// SEQ OUT PTR with a 32-bit length word (EXT).
pub const SEQ_OUT_EXT: u32 = 0xF840_0000;
/// OPERATION: blob encapsulation.
pub const OP_BLOB_ENCAP: u32 = 0x870D_0000;
/// OPERATION: blob decapsulation.
pub const OP_BLOB_DECAP: u32 = 0x860D_0000;
/// Bytes a blob adds to its payload: 32-byte blob key + 16-byte MAC.
pub const BLOB_OVERHEAD: u32 = 48;

/// RNG instantiation of state handle 0. With `secure_keys` it also
/// generates JDKEK/TDKEK/TDSK (U-Boot does so when RDSTA.SKVN is clear).
/// Returns the words and how many are used.
pub const fn rng_instantiate_sh0(secure_keys: bool) -> ([u32; 6], usize) {
    if secure_keys {
        (
            [
                header(6, 0),
                OP_RNG_INSTANTIATE_SH0,
                JUMP_WAIT_CLASS1,
                LOAD_CLEAR_WRITTEN,
                1,
                OP_RNG_GEN_SK,
            ],
            6,
        )
    } else {
        ([header(2, 0), OP_RNG_INSTANTIATE_SH0, 0, 0, 0, 0], 2)
    }
}

/// RNG instantiation of state handle 1 (U-Boot / OP-TEE: no secure keys).
pub const fn rng_instantiate_sh1() -> [u32; 2] {
    [header(2, 0), OP_RNG_INSTANTIATE_SH1]
}

/// MP private key generation as OP-TEE's `do_mppriv_gen` builds it:
/// PDB {csel, passphrase ptr, passphrase length}, start index 4.
pub const fn mp_privkey_gen(passphrase: u32, len: u32) -> [u32; 5] {
    [header(5, 4), MP_CSEL_P256, passphrase, len, OP_MP_PRIVK]
}

/// `len` (≤ 0xFFFF) random bytes to `ptr`.
pub const fn rng_generate(ptr: u32, len: u16) -> [u32; 4] {
    [
        header(4, 0),
        OP_RNG_GENERATE,
        FIFO_STORE_RNG | len as u32,
        ptr,
    ]
}

/// MP public key (64 bytes X || Y) to `out`; PDB {csel, ptr} as U-Boot.
pub const fn mp_pubkey(out: u32) -> [u32; 4] {
    [header(4, 3), MP_CSEL_P256, out, OP_MP_PUBK]
}

/// MP sign of `msg_len` bytes at `msg`; PDB {csel, msg, mes_rep, c, d, len}.
pub const fn mp_sign(msg: u32, msg_len: u32, mes_rep: u32, c: u32, d: u32) -> [u32; 8] {
    [
        header(8, 7),
        MP_CSEL_P256,
        msg,
        mes_rep,
        c,
        d,
        msg_len,
        OP_MP_SIGN,
    ]
}

/// Blob encapsulation of `len` bytes at `input` into `len + 48` bytes at
/// `output`, key modifier of `km_len` (1..=16) bytes at `key_mod` (the KEY
/// command carries its length: 16 as U-Boot, 10 for Linux's trusted keys).
pub const fn blob_encap(key_mod: u32, km_len: u32, input: u32, len: u32, output: u32) -> [u32; 10] {
    [
        header(10, 0),
        KEY_CLASS2 | km_len,
        key_mod,
        SEQ_IN_EXT,
        input,
        len,
        SEQ_OUT_EXT,
        output,
        len + BLOB_OVERHEAD,
        OP_BLOB_ENCAP,
    ]
}

/// Blob decapsulation of `len + 48` bytes at `input` into `len` bytes at
/// `output`, key modifier as in [`blob_encap`].
pub const fn blob_decap(key_mod: u32, km_len: u32, input: u32, len: u32, output: u32) -> [u32; 10] {
    [
        header(10, 0),
        KEY_CLASS2 | km_len,
        key_mod,
        SEQ_IN_EXT,
        input,
        len + BLOB_OVERHEAD,
        SEQ_OUT_EXT,
        output,
        len,
        OP_BLOB_DECAP,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_descriptors_match_u_boot() {
        assert_eq!(
            rng_instantiate_sh0(true),
            (
                [
                    0xB0800006, 0x82500006, 0xA2000001, 0x10880004, 0x00000001, 0x82501000
                ],
                6
            )
        );
        assert_eq!(rng_instantiate_sh0(false).0[..2], [0xB0800002, 0x82500006]);
        assert_eq!(rng_instantiate_sh1(), [0xB0800002, 0x82500016]);
        assert_eq!(
            rng_generate(0x4000_1000, 0x20),
            [0xB0800004, 0x82500002, 0x60340020, 0x4000_1000]
        );
    }

    #[test]
    fn mp_privkey_descriptor_matches_op_tee() {
        assert_eq!(
            mp_privkey_gen(0x4000_0200, 24),
            [0xB0840005, 0x00060000, 0x4000_0200, 24, 0x87140000]
        );
        assert_eq!(MP_PASSPHRASE.len(), 24);
    }

    #[test]
    fn mp_descriptors_match_u_boot() {
        assert_eq!(
            mp_pubkey(0x4000_0100),
            [0xB0830004, 0x00060000, 0x4000_0100, 0x86140000]
        );
        assert_eq!(
            mp_sign(0x10, 5, 0x20, 0x30, 0x40),
            [
                0xB0870008, 0x00060000, 0x10, 0x20, 0x30, 0x40, 5, 0x86150000
            ]
        );
    }

    #[test]
    fn blob_descriptors_match_u_boot() {
        assert_eq!(
            blob_encap(0x100, 16, 0x200, 64, 0x300),
            [
                0xB080000A, 0x04000010, 0x100, 0xF0400000, 0x200, 64, 0xF8400000, 0x300, 112,
                0x870D0000
            ]
        );
        assert_eq!(
            blob_decap(0x100, 16, 0x300, 64, 0x400),
            [
                0xB080000A, 0x04000010, 0x100, 0xF0400000, 0x300, 112, 0xF8400000, 0x400, 64,
                0x860D0000
            ]
        );
        // Linux trusted keys' "SECURE_KEY": a 10-byte modifier.
        assert_eq!(blob_encap(0x100, 10, 0x200, 64, 0x300)[1], 0x0400_000A);
        assert_eq!(KEY_CLASS2 | 16, KEY_CLASS2_16);
    }
}
