//! The security commands: mfgprot (U-Boot), blob (U-Boot), fuse (U-Boot's
//! `fuse read`), caam (ours). They refuse to run when the security hardware
//! is unavailable (QEMU without a fuse file).

use super::{CmdError, Command};
use crate::arch::Scrub;
use crate::machine::{LoaderCaam, Machine, outln};
use crate::requests::security::{
    KEY_MODIFIER_LEN, MfgprotRequest, parse_blob, parse_caam, parse_fuse, parse_mfgprot,
};
use core::fmt::Write;

/// The CAAM, or why it cannot be used.
fn caam(m: &mut Machine) -> Result<&mut LoaderCaam, CmdError> {
    match &mut m.security {
        Ok(s) => Ok(&mut s.caam),
        Err(e) => Err(CmdError::msg(format_args!(
            "security hardware unavailable: {e}"
        ))),
    }
}

fn caam_err(e: caam::CaamError) -> CmdError {
    CmdError::msg(format_args!("{e}"))
}

fn hex_upper(m: &mut Machine, bytes: &[u8]) {
    for b in bytes {
        let _ = write!(m, "{b:02X}");
    }
    outln!(m);
}

#[cfg(not(feature = "production"))]
const MFGPROT_USAGE: &str = "pubk\n    - print the Manufacturing Protection public key\nmfgprot sign ADDR SIZE\n    - sign SIZE bytes (decimal, or hex with 0x) at ADDR with the MP private key";
#[cfg(feature = "production")]
const MFGPROT_USAGE: &str = "sign ADDR SIZE\n    - sign SIZE bytes (decimal, or hex with 0x) at ADDR with the MP private key";

pub const MFGPROT: Command = Command {
    name: "mfgprot",
    sized: false,
    summary: "Manufacturing Protection (MP) operations",
    usage: MFGPROT_USAGE,
    // The MP key material in its frames (and the CAAM model's) is zeroed
    // when it returns.
    run: |m, args| crate::arch::scrubbing(Scrub::All, || mfgprot(m, args)),
};

fn mfgprot(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    match parse_mfgprot(args)? {
        // The production build never reveals the MP public key: it is the
        // secret from which the bundle key derives (the request does not
        // exist there).
        #[cfg(not(feature = "production"))]
        MfgprotRequest::Pubk => {
            caam(m)?;
            outln!(m);
            outln!(m, "Generating Manufacturing Protection Public Key");
            let mut key = caam(m)?.mp_public_key().map_err(caam_err)?;
            outln!(m, "Public key:");
            hex_upper(m, &key);
            key.fill(0);
            Ok(())
        }
        MfgprotRequest::Sign { addr, size } => {
            caam(m)?;
            let r = m.ram(addr, size)?;
            // SAFETY: a checked RAM range outside the loader; only read here.
            let msg: &[u8] = unsafe { r.slice_mut() };
            // Domain separation: only the provisioning flow signs identity
            // messages. A console signature over `MFID...` bytes would be
            // a forged identity the OEM's ledger cannot tell from a real
            // one (the MPMR is the same locked measurement).
            if msg.starts_with(&mfg_formats::identity::MESSAGE_MAGIC) {
                return Err(CmdError::msg(format_args!(
                    "refused: the message starts like an identity message (MFID); only the provisioning flow signs those"
                )));
            }
            outln!(m);
            outln!(
                m,
                "Signing message with Manufacturing Protection Private Key"
            );
            let sig = caam(m)?.mp_sign(msg).map_err(caam_err)?;
            let _ = write!(m, "Message: ");
            for b in msg {
                let _ = write!(m, "{b:02X} ");
            }
            outln!(m);
            outln!(m, "Message Representative Digest(SHA-256):");
            hex_upper(m, &sig.mes_rep);
            outln!(m, "Signature:");
            outln!(m, "C:");
            hex_upper(m, &sig.c);
            outln!(m, "d:");
            hex_upper(m, &sig.d);
            Ok(())
        }
    }
}

pub const BLOB: Command = Command {
    name: "blob",
    sized: false,
    summary: "Blob encapsulation/decryption",
    usage: "enc SRC DST LEN KM [KMLEN]\n    - encapsulate LEN bytes at SRC into a blob of LEN+48 bytes at DST\nblob dec SRC DST LEN KM [KMLEN]\n    - decapsulate the blob at SRC into LEN bytes at DST\n    KM is the address of the key modifier, KMLEN its length in bytes\n    (1..0x10; 0x10 if omitted; 0xa for SECURE_KEY of Linux trusted keys);\n    all numbers hex",
    // Payload copies in its frames (and the CAAM model's) are zeroed when
    // it returns.
    run: |m, args| crate::arch::scrubbing(Scrub::All, || blob(m, args)),
};

fn blob(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    let r = parse_blob(args)?;
    let enc = r.encap;
    let (src_r, dst_r) = (m.ram(r.src, r.src_len())?, m.ram(r.dst, r.dst_len())?);
    let km_r = m.ram(r.km, r.km_len)?;
    if src_r.overlaps(&dst_r) || km_r.overlaps(&dst_r) {
        return Err(CmdError::msg(format_args!("DST overlaps SRC or KM")));
    }
    let mut key_mod = [0u8; KEY_MODIFIER_LEN as usize];
    // SAFETY: checked RAM ranges outside the loader (here and below); SRC
    // and KM are only read, DST is disjoint from both, and nothing else
    // refers to them.
    let km_bytes: &[u8] = unsafe { km_r.slice_mut() };
    let key_mod = &mut key_mod[..km_bytes.len()];
    key_mod.copy_from_slice(km_bytes);
    // SAFETY: see above.
    let input: &[u8] = unsafe { src_r.slice_mut() };
    // SAFETY: see above.
    let output = unsafe { dst_r.slice_mut() };
    caam(m)?;
    if enc {
        outln!(m);
        outln!(m, "Encapsulating data to form blob");
        caam(m)?
            .blob_encap_with_modifier(key_mod, input, output)
            .map_err(caam_err)?;
    } else {
        outln!(m);
        outln!(m, "Decapsulating blob to get data");
        caam(m)?
            .blob_decap_with_modifier(key_mod, input, output)
            .map_err(caam_err)?;
    }
    Ok(())
}

pub const FUSE: Command = Command {
    name: "fuse",
    sized: false,
    summary: "Fuse sub-system",
    usage: "read BANK WORD [CNT]\n    - read CNT fuse words starting at WORD of BANK (decimal, or hex with 0x)",
    run: fuse,
};

fn fuse(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    let r = parse_fuse(args)?;
    caam(m)?;
    let bank = r.bank;
    outln!(m, "Reading bank {}:", bank);
    for i in 0..r.count {
        let w = r.word + i;
        let v = m
            .security
            .as_ref()
            .map_err(|e| CmdError::msg(format_args!("security hardware unavailable: {e}")))?
            .ocotp
            .read(bank, w)
            .map_err(|e| CmdError::msg(format_args!("{e}")))?;
        if i == 0 || w % 4 == 0 {
            let _ = write!(m, "\r\nWord 0x{w:08x}:");
        }
        let _ = write!(m, " {v:08x}");
    }
    outln!(m);
    Ok(())
}

pub const CAAM: Command = Command {
    name: "caam",
    sized: false,
    summary: "CAAM status",
    usage: "info\n    - era, job rings, RNG state, security state, MP curve, MPMR lock",
    run: caam_cmd,
};

fn caam_cmd(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    parse_caam(args)?;
    let i = caam(m)?.info();
    let yes = |b: bool| if b { "yes" } else { "no" };
    outln!(
        m,
        "CAAM era        = {} (IP 0x{:04x} rev {})",
        i.era,
        i.ip_id,
        i.major_rev
    );
    outln!(
        m,
        "job rings       = {} (using JR{}{})",
        i.job_rings,
        i.ring,
        if i.initialised {
            ""
        } else {
            ", NOT initialised"
        }
    );
    outln!(
        m,
        "RNG             = SH0 {}, SH1 {}, secure keys {} (RDSTA 0x{:08x})",
        yes(i.rng_sh0),
        yes(i.rng_sh1),
        yes(i.secure_keys),
        i.rdsta
    );
    outln!(m, "security state  = {}", i.security);
    let curve = match i.mp_curve {
        0 => "none",
        3 => "P-256",
        4 => "P-384",
        5 => "P-521",
        _ => "unknown",
    };
    outln!(m, "MP curve        = {} ({})", curve, i.mp_curve);
    outln!(m, "MPMR locked     = {}", yes(i.mpmr_locked));
    Ok(())
}
