//! The driver against the `imx-emu` model, through the harness in
//! `emulated.rs` (whose fake DMA models a non-coherent cache).

use super::*;
use crate::emulated::{CAAM, JR1, Rig, rig};
use imx_emu::MmioDevice;
use imx_emu::fusefile::{ChipOptions, DEFAULT_FAMILY_SECRET, FuseFile, Page0};
use p256::ecdsa::signature::hazmat::PrehashVerifier;
use p256::ecdsa::{Signature, VerifyingKey};
use sha2::{Digest, Sha256};
use std::vec;
use std::vec::Vec;

fn chip(uid: u8, srk: u8, otpmk: u8, open: bool) -> FuseFile {
    FuseFile {
        uid: [uid; 16],
        srk_hash: [srk; 32],
        otpmk: [otpmk; 32],
        family_secret: DEFAULT_FAMILY_SECRET,
        open,
        options: Default::default(),
    }
}

fn ready(f: FuseFile) -> Rig {
    let mut r = rig(f);
    r.caam.init().unwrap();
    r
}

fn emu_read(r: &Rig, addr: u64) -> u32 {
    u32::try_from(r.emu.borrow_mut().read(addr, 4).unwrap()).unwrap()
}

#[test]
fn init_instantiates_the_rng_and_info_reports_the_chip() {
    let mut r = rig(chip(1, 0x22, 0x33, false));
    let before = r.caam.info();
    assert!(!before.rng_sh0 && !before.initialised);
    r.caam.init().unwrap();
    let i = r.caam.info();
    assert_eq!(i.era, 9);
    assert_eq!(i.ip_id, 0x0A16);
    assert_eq!(i.major_rev, 4);
    assert_eq!(i.job_rings, 3);
    assert_eq!(i.ring, 1);
    // U-Boot instantiates both state handles.
    assert!(i.initialised && i.rng_sh0 && i.rng_sh1 && i.secure_keys);
    assert_eq!(i.security, ModeOfOperation::Secure);
    assert_eq!(i.mp_curve, 3);
    assert!(!i.mpmr_locked);
    // SCFGR.RDBENABLE set after instantiation, as U-Boot and Linux do.
    assert_ne!(emu_read(&r, CAAM + 0xC) & (1 << 10), 0);
    // The TRNG left program mode with raw sampling and the programmed delay.
    assert_eq!(emu_read(&r, CAAM + 0x600) & 0x1_0003, 1);
    assert_eq!(emu_read(&r, CAAM + 0x610), (3200 << 16) | 512);
    // Ring registers: 32-bit pointers into the arena, 4 entries.
    assert_eq!(emu_read(&r, JR1), 0);
    assert!(emu_read(&r, JR1 + 4) >= 0x4000_0000);
    assert_eq!(emu_read(&r, JR1 + 0xC), 4);
    assert_eq!(emu_read(&r, JR1 + 0x54) & 1, 1, "interrupt masked");
    // A second init finds the RNG instantiated and just resets the ring.
    r.caam.init().unwrap();
    assert!(r.caam.info().rng_sh0);
    let open = rig(chip(1, 0x22, 0x33, true));
    assert_eq!(open.caam.info().security, ModeOfOperation::NonSecure);
}

#[test]
fn operations_before_init_are_refused() {
    let mut r = rig(chip(1, 2, 3, false));
    assert_eq!(r.caam.mp_public_key(), Err(CaamError::NotInitialised));
    let mut b = [0u8; 8];
    assert_eq!(r.caam.rng_fill(&mut b), Err(CaamError::NotInitialised));
}

#[test]
fn mp_public_key_is_stable_and_oem_specific() {
    let base = chip(1, 0x22, 0x33, false);
    let a = ready(base.clone()).caam.mp_public_key().unwrap();
    let mut r = ready(base.clone());
    assert_eq!(r.caam.mp_public_key().unwrap(), a, "same chip, new boot");
    assert_eq!(r.caam.mp_public_key().unwrap(), a, "same boot, again");
    // Another chip of the same OEM: other UID and OTPMK, same SRK hash.
    let sibling = chip(9, 0x22, 0x99, false);
    assert_eq!(ready(sibling).caam.mp_public_key().unwrap(), a);
    // Another OEM (SRK hash) and an open part differ.
    let other_oem = chip(1, 0x23, 0x33, false);
    assert_ne!(ready(other_oem).caam.mp_public_key().unwrap(), a);
    let open = chip(1, 0x22, 0x33, true);
    assert_ne!(ready(open).caam.mp_public_key().unwrap(), a);
    // It is a valid uncompressed P-256 point.
    let mut sec1 = [4u8; 65];
    sec1[1..].copy_from_slice(&a);
    VerifyingKey::from_sec1_bytes(&sec1).unwrap();
}

fn verify(pubkey: &[u8; 64], mpmr: &[u8; 32], msg: &[u8], s: &MpSignature) {
    let mut h = Sha256::new();
    h.update(mpmr);
    h.update(msg);
    let digest: [u8; 32] = h.finalize().into();
    assert_eq!(s.mes_rep, digest, "message representative");
    let mut sec1 = [4u8; 65];
    sec1[1..].copy_from_slice(pubkey);
    let vk = VerifyingKey::from_sec1_bytes(&sec1).unwrap();
    let mut rs = [0u8; 64];
    rs[..32].copy_from_slice(&s.c);
    rs[32..].copy_from_slice(&s.d);
    let sig = Signature::from_slice(&rs).unwrap();
    vk.verify_prehash(&digest, &sig).unwrap();
}

#[test]
fn mp_sign_verifies_independently_over_mpmr_and_message() {
    let mut r = ready(chip(1, 0x22, 0x33, false));
    let pk = r.caam.mp_public_key().unwrap();
    // Unlocked, all-zero MPMR first (as U-Boot leaves it).
    let msg = [0xFF, 0xFF, 0xFF, 0xFF];
    let s = r.caam.mp_sign(&msg).unwrap();
    verify(&pk, &[0; 32], &msg, &s);

    let mut mpmr = [0u8; 32];
    mpmr[..30].copy_from_slice(b"value to fill the MPMR content");
    r.caam.mpmr_write_and_lock(&mpmr).unwrap();
    assert_eq!(r.caam.mpmr_read(), mpmr);
    assert!(r.caam.info().mpmr_locked);
    // Silicon's readback byte order: word 0 = 'v','a','l','u' reversed.
    assert_eq!(emu_read(&r, CAAM + 0x380), u32::from_be_bytes(*b"valu"));
    assert_eq!(
        r.caam.mpmr_write_and_lock(&[1; 32]),
        Err(CaamError::MpmrLocked)
    );
    assert_eq!(r.caam.mpmr_read(), mpmr, "lock holds");

    let long: Vec<u8> = (0..4096u32).map(|i| (i * 7) as u8).collect();
    for m in [&b"55DABA11"[..], &long[..]] {
        let s = r.caam.mp_sign(m).unwrap();
        verify(&pk, &mpmr, m, &s);
    }
    // A sibling chip's signature verifies with the same public key.
    let mut sib = ready(chip(5, 0x22, 0x77, false));
    sib.caam.mpmr_write_and_lock(&mpmr).unwrap();
    let s = sib.caam.mp_sign(b"hello").unwrap();
    verify(&pk, &mpmr, b"hello", &s);
}

#[test]
fn mp_sign_limits() {
    let mut r = ready(chip(1, 2, 3, false));
    assert_eq!(r.caam.mp_sign(&[]), Err(CaamError::EmptyMessage));
    assert_eq!(
        r.caam.mp_sign(&[0; 4097]),
        Err(CaamError::MessageTooLong { len: 4097 })
    );
}

#[test]
fn blob_round_trips_at_every_size() {
    let mut r = ready(chip(1, 2, 3, false));
    let km = *b"CAAM_KEY_TYPE_V1";
    for len in [0usize, 1, 15, 64, 4096, MAX_BLOB_PAYLOAD] {
        let plain: Vec<u8> = (0..len).map(|i| (i * 13 + 5) as u8).collect();
        let mut blob = vec![0u8; len + 48];
        assert_eq!(r.caam.blob_encap(&km, &plain, &mut blob).unwrap(), len + 48);
        if len >= 16 {
            assert_ne!(&blob[32..32 + len], &plain[..], "payload is encrypted");
        }
        let mut back = vec![0u8; len];
        assert_eq!(r.caam.blob_decap(&km, &blob, &mut back).unwrap(), len);
        assert_eq!(back, plain, "len {len}");
    }
    // A fresh blob key each time: two blobs of one payload differ.
    let (mut b1, mut b2) = ([0u8; 80], [0u8; 80]);
    r.caam.blob_encap(&km, &[7; 32], &mut b1).unwrap();
    r.caam.blob_encap(&km, &[7; 32], &mut b2).unwrap();
    assert_ne!(b1, b2);
    // The plaintext left no trace in the device-visible bounce buffer.
    let a = r.device_ram();
    assert!(
        !a.windows(32).any(|w| w == [7u8; 32]),
        "plaintext left in RAM"
    );
}

#[test]
fn blob_decap_fails_with_icv_on_any_mismatch_and_zeroes_output() {
    let chip_a = chip(1, 2, 3, false);
    let mut r = ready(chip_a.clone());
    let km = [0x11u8; 16];
    let plain = [0x5Au8; 100];
    let mut blob = [0u8; 148];
    r.caam.blob_encap(&km, &plain, &mut blob).unwrap();

    let mut out = [0xAAu8; 100];
    assert_eq!(
        r.caam.blob_decap(&[0x12; 16], &blob, &mut out),
        Err(CaamError::BlobMacMismatch),
        "other key modifier"
    );
    assert_eq!(out, [0; 100]);
    for pos in [0, 31, 32, 100, 131, 132, 147] {
        let mut bad = blob;
        bad[pos] ^= 1;
        out = [0xAA; 100];
        assert_eq!(
            r.caam.blob_decap(&km, &bad, &mut out),
            Err(CaamError::BlobMacMismatch),
            "flip at {pos}"
        );
        assert_eq!(out, [0; 100]);
    }
    // Another chip (other OTPMK), even of the same OEM.
    let mut other = ready(chip(9, 2, 4, false));
    assert_eq!(
        other.caam.blob_decap(&km, &blob, &mut out),
        Err(CaamError::BlobMacMismatch)
    );
    // The same chip after a "reboot" opens it.
    let mut again = ready(chip_a);
    assert_eq!(again.caam.blob_decap(&km, &blob, &mut out), Ok(100));
    assert_eq!(out, plain);
    // Argument checks.
    assert_eq!(
        r.caam.blob_decap(&km, &blob[..47], &mut out),
        Err(CaamError::BlobTooShort { len: 47 })
    );
    assert_eq!(
        r.caam.blob_encap(&km, &plain, &mut [0u8; 147]),
        Err(CaamError::OutputTooSmall {
            need: 148,
            got: 147
        })
    );
    assert_eq!(
        r.caam
            .blob_encap(&km, &vec![0; MAX_BLOB_PAYLOAD + 1], &mut []),
        Err(CaamError::PayloadTooLarge {
            len: MAX_BLOB_PAYLOAD + 1
        })
    );
}

#[test]
fn rng_fill_gives_fresh_bytes() {
    let mut r = ready(chip(1, 2, 3, false));
    let (mut a, mut b) = ([0u8; 300], [0u8; 300]);
    r.caam.rng_fill(&mut a).unwrap();
    r.caam.rng_fill(&mut b).unwrap();
    assert_ne!(a, b);
    assert!(a.iter().filter(|&&x| x == 0).count() < 10);
}

#[test]
fn malformed_descriptors_are_rejected_with_silicon_status() {
    let mut r = ready(chip(1, 2, 3, false));
    let out = r.caam.scratch_bus_addr().unwrap();
    let deco = |index, code| Err(CaamError::Deco { index, code });
    let cases: [(&[u32], Result<(), CaamError>); 12] = [
        // Length 0 in the header.
        (&[0xB080_0000], deco(0, 0x13)),
        // Length beyond the 64-word descriptor buffer.
        (&[0xB080_0041], deco(0, 0x13)),
        // ONE bit clear.
        (&[0xB000_0001], deco(0, 0x13)),
        // Start index 5 beyond length 4.
        (&[0xB085_0004, 0x0006_0000, out, 0x8614_0000], deco(0, 0x13)),
        // DNR set.
        (&[0xB180_0001], deco(0, 0x80)),
        // Unknown protocol id 0x99.
        (&[0xB080_0002, 0x8799_0000], deco(1, 0x81)),
        // MP public key with curve P-384 in the PDB.
        (&[0xB083_0004, 0x0008_0000, out, 0x8614_0000], deco(3, 0x82)),
        // MP public key with a one-word PDB.
        (&[0xB082_0003, 0x0006_0000, 0x8614_0000], deco(2, 0x82)),
        // MP public key to a pointer outside RAM.
        (
            &[0xB083_0004, 0x0006_0000, 0x9000_0000, 0x8614_0000],
            deco(3, 0x16),
        ),
        // Command type 0x19 does not exist.
        (&[0xB080_0002, 0xC800_0000], deco(1, 0x04)),
        // Blob decap of a 10-byte "blob" (shorter than 48).
        (
            &[
                0xB080_000A,
                0x0400_0010,
                out,
                0xF040_0000,
                out,
                10,
                0xF840_0000,
                out + 64,
                0,
                0x860D_0000,
            ],
            deco(9, 0x10),
        ),
        // A well-formed job still succeeds.
        (&[0xB083_0004, 0x0006_0000, out, 0x8614_0000], Ok(())),
    ];
    for (words, want) in cases {
        assert_eq!(r.caam.run_raw_descriptor(words), want, "{words:08x?}");
    }
    assert_eq!(
        r.caam.run_raw_descriptor(&[0; 17]),
        Err(CaamError::BadDescriptorLength { words: 17 })
    );
}

#[test]
fn a_job_that_never_completes_times_out_and_needs_init() {
    let mut r = ready(chip(1, 2, 3, false));
    let pk = r.caam.mp_public_key().unwrap();
    r.emu.borrow_mut().set_stalled(true);
    assert_eq!(
        r.caam.mp_public_key(),
        Err(CaamError::Timeout {
            what: "job completion"
        })
    );
    assert_eq!(r.caam.mp_public_key(), Err(CaamError::NotInitialised));
    r.emu.borrow_mut().set_stalled(false);
    r.caam.init().unwrap();
    assert_eq!(r.caam.mp_public_key(), Ok(pk));
}

#[test]
fn ring_indices_wrap_around() {
    let mut r = ready(chip(1, 2, 3, false));
    for _ in 0..(3 * RING_ENTRIES + 1) {
        r.caam.mp_public_key().unwrap();
    }
    // IRRIR / ORWIR are byte offsets.
    let irrir = emu_read(&r, JR1 + 0x5C);
    let orwir = emu_read(&r, JR1 + 0x64);
    // init's two RNG jobs + 13 jobs = 15 jobs: index 15 % 4 = 3.
    assert_eq!(irrir, 3 * 4);
    assert_eq!(orwir, 3 * 8);
    assert_eq!(emu_read(&r, JR1 + 0x3C), 0, "ORSFR drained");
}

fn with_options(mut f: FuseFile, options: ChipOptions) -> FuseFile {
    f.options = options;
    f
}

fn mpcurve0(f: FuseFile) -> FuseFile {
    with_options(
        f,
        ChipOptions {
            mp_curve_zero: true,
            ..ChipOptions::default()
        },
    )
}

fn pubkey_of(private: &[u8; 32]) -> [u8; 64] {
    let sk = p256::ecdsa::SigningKey::from_slice(private).unwrap();
    let p = sk.verifying_key().to_sec1_point(false);
    p.as_bytes()[1..65].try_into().unwrap()
}

#[test]
fn mpcurve_0_on_an_open_part_generates_the_key_with_mpprivk_once() {
    let f = mpcurve0(chip(1, 0x22, 0x33, true));
    let mut r = ready(f.clone());
    assert_eq!(r.caam.info().mp_curve, 0, "no key from the ROM");
    // Before MPPRIVK the CAAM refuses MPPUBK (curve 0 in SCFGR).
    let out = r.caam.scratch_bus_addr().unwrap();
    assert_eq!(
        r.caam
            .run_raw_descriptor(&[0xB083_0004, 0x0006_0000, out, 0x8614_0000]),
        Err(CaamError::Deco {
            index: 3,
            code: 0x82
        })
    );
    let pk = r.caam.mp_public_key().unwrap();
    // The key is the one MPPRIVK derives from OP-TEE's passphrase: the
    // driver sent that passphrase, P-256, in OP-TEE's descriptor.
    let want = imx_emu::mp_private_key_generated(&f, b"manufacturing protection");
    assert_eq!(pk, pubkey_of(&want));
    assert_ne!(
        pk,
        pubkey_of(&imx_emu::mp_private_key(&f)),
        "not the ROM key"
    );
    assert_eq!(r.caam.info().mp_curve, 3, "MPCURVE set by MPPRIVK");
    // Signing uses the same key; a second operation runs no second MPPRIVK
    // (the model refuses one, as OP-TEE assumes once per power cycle).
    let s = r.caam.mp_sign(b"id record").unwrap();
    verify(&pk, &[0; 32], b"id record", &s);
    assert_eq!(r.caam.mp_public_key(), Ok(pk));
    let pass = r.caam.scratch_bus_addr().unwrap();
    assert_eq!(
        r.caam.run_raw_descriptor(&desc::mp_privkey_gen(pass, 24)),
        Err(CaamError::Deco {
            index: 4,
            code: 0x09
        }),
        "second MPPRIVK in one power cycle"
    );
    // A new driver in the same power cycle (the loader re-inits the CAAM)
    // finds MPCURVE = 3 and uses the key without MPPRIVK.
    let mut again = r.another_driver();
    again.init().unwrap();
    assert_eq!(again.mp_public_key(), Ok(pk));
    // The same chip on the next power-on gets the same key again.
    assert_eq!(ready(f).caam.mp_public_key(), Ok(pk));
}

#[test]
fn mpcurve_0_on_a_closed_part_is_refused_as_op_tee_does() {
    let mut r = ready(mpcurve0(chip(1, 0x22, 0x33, false)));
    assert_eq!(r.caam.mp_public_key(), Err(CaamError::MpNoKeyOnClosedPart));
    assert_eq!(r.caam.mp_sign(b"x"), Err(CaamError::MpNoKeyOnClosedPart));
    assert_eq!(r.caam.info().mp_curve, 0, "no MPPRIVK was run");
    let m = std::format!("{}", CaamError::MpNoKeyOnClosedPart);
    assert!(m.contains("MPCURVE = 0") && m.contains("Unlock"), "{m}");
}

#[test]
fn rng_init_raises_the_entropy_delay_until_instantiation_succeeds() {
    let mut r = rig(chip(1, 2, 3, false));
    // This TRNG needs at least 4000 clocks per sample: 3200 and 3600 fail.
    r.emu.borrow_mut().set_rng_min_entropy_delay(4000);
    r.caam.init().unwrap();
    let i = r.caam.info();
    assert!(i.rng_sh0 && i.rng_sh1);
    assert_eq!(emu_read(&r, CAAM + 0x610) >> 16, 4000);
    assert_eq!(emu_read(&r, CAAM + 0x618), 1000, "FRQMIN = delay / 4");
    assert_ne!(emu_read(&r, CAAM + 0xC) & (1 << 10), 0, "RDBENABLE");
}

#[test]
fn rng_init_gives_up_below_12800_with_a_clear_error() {
    let mut r = rig(chip(1, 2, 3, false));
    r.emu.borrow_mut().set_rng_min_entropy_delay(12_800);
    assert_eq!(
        r.caam.init(),
        Err(CaamError::RngInstantiateFailed {
            handle: 0,
            ent_delay: 12_400
        })
    );
    assert!(!r.caam.info().rng_sh0);
    assert_eq!(emu_read(&r, CAAM + 0xC) & (1 << 10), 0, "no RDBENABLE");
    // Jobs that need the RNG are refused by the CAAM with a status word.
    assert_eq!(
        r.caam.mp_sign(b"x"),
        Err(CaamError::Ccb {
            cha: 5,
            err: 4,
            index: 7
        })
    );
    let mut blob = [0u8; 49];
    assert_eq!(
        r.caam.blob_encap(&[1; 16], &[5], &mut blob),
        Err(CaamError::Ccb {
            cha: 5,
            err: 4,
            index: 9
        })
    );
    assert_eq!(blob, [0; 49], "nothing written");
    let m = std::format!("{}", r.caam.mp_sign(b"x").unwrap_err());
    assert!(m.contains("RNG not instantiated"), "{m}");
}

#[test]
fn a_live_state_handle_keeps_the_trng_settings_and_is_left_alone() {
    // An earlier stage instantiated SH1 only: the driver instantiates SH0
    // without touching the TRNG (the model refuses program mode while a
    // handle is live, which would panic the register access here).
    let mut r = rig(chip(1, 2, 3, false));
    r.emu.borrow_mut().preinstantiate_rng(0b10);
    r.caam.init().unwrap();
    let i = r.caam.info();
    assert!(i.rng_sh0 && i.rng_sh1);
    assert_eq!(emu_read(&r, CAAM + 0x610), 0, "TRNG never programmed");
    assert_eq!(emu_read(&r, JR1 + 0x5C), 4, "one job: SH0 only");
    // Both live: no job at all.
    let mut r = rig(chip(1, 2, 3, false));
    r.emu.borrow_mut().preinstantiate_rng(0b11);
    r.caam.init().unwrap();
    assert_eq!(emu_read(&r, JR1 + 0x5C), 0, "no RNG job");
    r.caam.mp_sign(b"works").unwrap();
}

#[test]
fn a_failing_handle_next_to_a_live_one_ends_the_retries() {
    // SH1 live, SH0 never instantiates: the TRNG stays untouched and the
    // retries end (U-Boot's loop would spin: it raises the delay only when
    // it reprograms the TRNG).
    let mut r = rig(chip(1, 2, 3, false));
    r.emu.borrow_mut().preinstantiate_rng(0b10);
    r.emu
        .borrow_mut()
        .set_fault(Some(imx_emu::fusefile::Fault::RngNotInstantiable));
    assert_eq!(
        r.caam.init(),
        Err(CaamError::RngInstantiateFailed {
            handle: 0,
            ent_delay: 0
        })
    );
    assert_eq!(emu_read(&r, CAAM + 0x610), 0, "TRNG never programmed");
}

#[test]
fn virtualisation_starts_the_ring_in_jrstartr() {
    let mut r = rig(chip(1, 2, 3, false));
    // Without virtualisation JRSTARTR stays untouched.
    r.caam.init().unwrap();
    assert_eq!(emu_read(&r, CAAM + 0x5C), 0);
    // With SCFGR.VIRT_EN (CTPR_MS.VIRT_EN_INCL set in the model) a ring
    // runs only once started: the driver starts JR1 (bit 1).
    let mut r = rig(chip(1, 2, 3, false));
    r.emu
        .borrow_mut()
        .write(CAAM + 0xC, 4, u64::from(3u32 << 28 | 1 << 15))
        .unwrap();
    r.caam.init().unwrap();
    assert_eq!(emu_read(&r, CAAM + 0x5C), 1 << 1);
    r.caam.mp_public_key().unwrap();
}

#[test]
fn long_pointers_in_mcfgr_are_refused_before_touching_the_ring() {
    let mut r = rig(chip(1, 2, 3, false));
    r.emu
        .borrow_mut()
        .write(CAAM + 0x4, 4, u64::from(1u32 << 16))
        .unwrap();
    assert_eq!(
        r.caam.init(),
        Err(CaamError::LongPointers { mcfgr: 1 << 16 })
    );
    assert_eq!(emu_read(&r, JR1 + 4), 0, "ring base untouched");
    assert!(!r.caam.info().initialised);
}

#[test]
fn a_refused_controller_page_says_op_tee() {
    for page0 in [Page0::ReadsZero, Page0::ReadsOnes] {
        let f = with_options(
            chip(1, 2, 3, false),
            ChipOptions {
                page0,
                ..ChipOptions::default()
            },
        );
        let mut r = rig(f);
        let e = r.caam.init().unwrap_err();
        assert!(
            matches!(e, CaamError::ControllerPageRefused { .. }),
            "{page0:?}: {e:?}"
        );
        let m = std::format!("{e}");
        assert!(
            m.starts_with("CAAM controller page not accessible: is OP-TEE in the boot image?"),
            "{m}"
        );
        assert!(!r.caam.info().initialised);
        assert_eq!(r.caam.mp_public_key(), Err(CaamError::NotInitialised));
    }
    // An aborting page: the emulator refuses the access with the same words
    // (the QEMU board turns that into the crash report's reason).
    let f = with_options(
        chip(1, 2, 3, false),
        ChipOptions {
            page0: Page0::Aborts,
            ..ChipOptions::default()
        },
    );
    let r = rig(f);
    let e = r.emu.borrow_mut().read(CAAM + 0xFF8, 4).unwrap_err();
    assert!(
        std::format!("{e}")
            .starts_with("CAAM controller page not accessible: is OP-TEE in the boot image?")
    );
    // The job ring page and its alias still answer.
    assert_eq!(emu_read(&r, JR1 + 0xFF8), 0x0A16_0401);
}

#[test]
fn zero_length_mp_sign_is_refused_by_driver_and_model() {
    let mut r = ready(chip(1, 2, 3, false));
    assert_eq!(r.caam.mp_sign(&[]), Err(CaamError::EmptyMessage));
    let out = r.caam.scratch_bus_addr().unwrap();
    assert_eq!(
        r.caam
            .run_raw_descriptor(&desc::mp_sign(out, 0, out, out + 32, out + 64)),
        Err(CaamError::Deco {
            index: 7,
            code: 0x82
        })
    );
}

#[test]
fn priblob_only_goes_up_until_power_on() {
    let r = ready(chip(1, 2, 3, false));
    let scfgr = |r: &Rig| emu_read(r, CAAM + 0xC);
    let write = |r: &Rig, v: u32| {
        r.emu
            .borrow_mut()
            .write(CAAM + 0xC, 4, u64::from(v))
            .unwrap()
    };
    write(&r, scfgr(&r) | 1);
    assert_eq!(scfgr(&r) & 3, 1);
    // A CM trying to go back to PRIBLOB 0 (blobs of the boot image's class).
    write(&r, scfgr(&r) & !3);
    assert_eq!(scfgr(&r) & 3, 1, "PRIBLOB lowered");
    write(&r, (scfgr(&r) & !3) | 2);
    assert_eq!(scfgr(&r) & 3, 3);
}

#[test]
fn key_modifiers_of_other_lengths_bind_blobs_to_their_length() {
    let mut r = ready(chip(1, 2, 3, false));
    let secure_key = b"SECURE_KEY";
    let mut padded = [0u8; 16];
    padded[..10].copy_from_slice(secure_key);
    let plain = [0x42u8; 32];
    let mut blob = [0u8; 80];
    assert_eq!(
        r.caam
            .blob_encap_with_modifier(secure_key, &plain, &mut blob),
        Ok(80)
    );
    let mut out = [0u8; 32];
    assert_eq!(
        r.caam.blob_decap_with_modifier(secure_key, &blob, &mut out),
        Ok(32)
    );
    assert_eq!(out, plain);
    // Its zero padding to 16 bytes is another modifier, both ways.
    assert_eq!(
        r.caam.blob_decap(&padded, &blob, &mut out),
        Err(CaamError::BlobMacMismatch)
    );
    assert_eq!(out, [0; 32]);
    let mut blob16 = [0u8; 80];
    r.caam.blob_encap(&padded, &plain, &mut blob16).unwrap();
    assert_eq!(
        r.caam
            .blob_decap_with_modifier(secure_key, &blob16, &mut out),
        Err(CaamError::BlobMacMismatch)
    );
    // 16 bytes through either entry point is the same modifier.
    assert_eq!(
        r.caam.blob_decap_with_modifier(&padded, &blob16, &mut out),
        Ok(32)
    );
    // One byte works; none or 17 are refused before any job.
    let mut b1 = [0u8; 49];
    r.caam
        .blob_encap_with_modifier(b"k", &[9], &mut b1)
        .unwrap();
    let mut o1 = [0u8; 1];
    assert_eq!(r.caam.blob_decap_with_modifier(b"k", &b1, &mut o1), Ok(1));
    assert_eq!(
        r.caam.blob_encap_with_modifier(&[], &plain, &mut blob),
        Err(CaamError::BadKeyModifier { len: 0 })
    );
    out = [0xAA; 32];
    assert_eq!(
        r.caam.blob_decap_with_modifier(&[1; 17], &blob, &mut out),
        Err(CaamError::BadKeyModifier { len: 17 })
    );
    assert_eq!(out, [0; 32], "output zeroed on refusal");
}

#[test]
fn a_blob_with_secure_key_opens_with_linux_trusted_keys_descriptor() {
    // Linux `blob_gen.c` (trusted keys, `trusted_caam.c`): the modifier
    // "SECURE_KEY" as 10 bytes of immediate KEY data, 16-bit SEQ lengths.
    let km = |b: &[u8; 4]| u32::from_le_bytes(*b);
    assert_eq!(
        crate::emulated::linux_decap_descriptor(b"SECURE_KEY", 0x100, 80, 0x200),
        [
            0xB080_000A,
            0x0480_000A,
            km(b"SECU"),
            km(b"RE_K"),
            km(b"EY\0\0"),
            0xF000_0050,
            0x100,
            0xF800_0020,
            0x200,
            0x860D_0000,
        ]
    );
    let mut r = ready(chip(1, 2, 3, false));
    let plain: [u8; 32] = core::array::from_fn(|i| i as u8);
    let mut blob = [0u8; 80];
    r.caam
        .blob_encap_with_modifier(b"SECURE_KEY", &plain, &mut blob)
        .unwrap();
    assert_eq!(r.decap_as_linux(b"SECURE_KEY", &blob).unwrap(), plain);
    // Linux's descriptor with the zero-padded 16 bytes is another modifier.
    assert_eq!(
        r.decap_as_linux(b"SECURE_KEY\0\0\0\0\0\0", &blob),
        Err(CaamError::BlobMacMismatch)
    );
}

#[test]
fn a_job_ring_the_secure_world_still_owns_is_refused_before_touching_it() {
    // U-Boot's SPL on i.MX8M sets JRnDID_MS = TZ_OWN | PRIM_TZ | DID 1 for
    // its ring; a TF-A that does not hand JR1 back leaves it so. The model
    // refuses every access to that ring's page (the test's register access
    // would panic), so the driver must stop at page 0.
    let mut r = rig(chip(1, 2, 3, false));
    r.emu.borrow_mut().write(CAAM + 0x18, 4, 0x8011).unwrap();
    let e = r.caam.init().unwrap_err();
    assert_eq!(
        e,
        CaamError::RingOwnedBySecureWorld {
            ring: 1,
            jrdid_ms: 0x8011
        }
    );
    assert!(std::format!("{e}").contains("TF-A did not release it"));
    assert!(r.emu.borrow_mut().read(JR1 + 0x4C, 4).is_err());
    // JR0 owned by HAB (0x8011) does not concern the loader on JR1.
    let mut r = rig(chip(1, 2, 3, false));
    r.emu.borrow_mut().write(CAAM + 0x10, 4, 0x8011).unwrap();
    r.caam.init().unwrap();
    // TF-A's release value (non-secure, DID 1) is fine.
    let mut r = rig(chip(1, 2, 3, false));
    r.emu.borrow_mut().write(CAAM + 0x18, 4, 0x1).unwrap();
    r.caam.init().unwrap();
}
