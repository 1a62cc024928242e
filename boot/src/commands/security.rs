//! The security commands: mfgprot (U-Boot), blob (U-Boot), fuse (U-Boot's
//! `fuse read`), caam (ours). They refuse to run when the security hardware
//! is unavailable (QEMU without a fuse file).

use super::{CmdError, Command, arity};
use crate::arch::Scrub;
use crate::console::args::{dec_or_hex, hex};
use crate::machine::{LoaderCaam, Machine, outln};
use board::{Current, Platform};
use core::fmt::Write;

/// The CAAM, or why it cannot be used.
fn caam(m: &mut Machine) -> Result<&mut LoaderCaam, CmdError> {
    if let Some(e) = Current::security_hw_error() {
        return Err(CmdError::msg(format_args!(
            "security hardware unavailable: {e}"
        )));
    }
    m.caam
        .as_mut()
        .ok_or_else(|| CmdError::msg(format_args!("CAAM not available")))
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
    arity(args, 1, 3)?;
    match args[1] {
        // The production build never reveals the MP public key: it is the
        // secret from which the bundle key derives.
        #[cfg(not(feature = "production"))]
        "pubk" => {
            arity(args, 1, 1)?;
            caam(m)?;
            outln!(m);
            outln!(m, "Generating Manufacturing Protection Public Key");
            let mut key = caam(m)?.mp_public_key().map_err(caam_err)?;
            outln!(m, "Public key:");
            hex_upper(m, &key);
            key.fill(0);
            Ok(())
        }
        "sign" => {
            arity(args, 3, 3)?;
            let addr = hex(args[2])?;
            let size = dec_or_hex(args[3])?;
            if size == 0 || size > caam::MAX_MP_MESSAGE as u64 {
                return Err(CmdError::msg(format_args!(
                    "message size must be 1..{} bytes",
                    caam::MAX_MP_MESSAGE
                )));
            }
            caam(m)?;
            let r = m.ram(addr, size)?;
            // SAFETY: a checked RAM range outside the loader; only read here.
            let msg: &[u8] = unsafe { r.slice_mut() };
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
        other => Err(CmdError::msg(format_args!("unknown subcommand '{other}'"))),
    }
}

pub const BLOB: Command = Command {
    name: "blob",
    sized: false,
    summary: "Blob encapsulation/decryption",
    usage: "enc SRC DST LEN KM\n    - encapsulate LEN bytes at SRC into a blob of LEN+48 bytes at DST\nblob dec SRC DST LEN KM\n    - decapsulate the blob at SRC into LEN bytes at DST\n    KM is the address of a 16-byte key modifier; all numbers hex",
    // Payload copies in its frames (and the CAAM model's) are zeroed when
    // it returns.
    run: |m, args| crate::arch::scrubbing(Scrub::All, || blob(m, args)),
};

fn blob(m: &mut Machine, args: &[&str]) -> Result<(), CmdError> {
    arity(args, 5, 5)?;
    let enc = match args[1] {
        "enc" => true,
        "dec" => false,
        other => return Err(CmdError::msg(format_args!("unknown subcommand '{other}'"))),
    };
    let (src, dst, len, km) = (hex(args[2])?, hex(args[3])?, hex(args[4])?, hex(args[5])?);
    if len == 0 || len > caam::MAX_BLOB_PAYLOAD as u64 {
        return Err(CmdError::msg(format_args!(
            "LEN must be 1..0x{:x}",
            caam::MAX_BLOB_PAYLOAD
        )));
    }
    let blob_len = len + caam::BLOB_OVERHEAD as u64;
    let (src_r, dst_r) = if enc {
        (m.ram(src, len)?, m.ram(dst, blob_len)?)
    } else {
        (m.ram(src, blob_len)?, m.ram(dst, len)?)
    };
    let km_r = m.ram(km, 16)?;
    if src_r.overlaps(&dst_r) || km_r.overlaps(&dst_r) {
        return Err(CmdError::msg(format_args!("DST overlaps SRC or KM")));
    }
    let mut key_mod = [0u8; 16];
    // SAFETY: checked RAM ranges outside the loader (here and below); SRC
    // and KM are only read, DST is disjoint from both, and nothing else
    // refers to them.
    let km_bytes: &[u8] = unsafe { km_r.slice_mut() };
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
            .blob_encap(&key_mod, input, output)
            .map_err(caam_err)?;
    } else {
        outln!(m);
        outln!(m, "Decapsulating blob to get data");
        caam(m)?
            .blob_decap(&key_mod, input, output)
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
    arity(args, 3, 4)?;
    if args[1] != "read" {
        return Err(CmdError::msg(format_args!(
            "unknown subcommand '{}' (only 'read')",
            args[1]
        )));
    }
    let bank = u32::try_from(dec_or_hex(args[2])?)
        .map_err(|_| CmdError::msg(format_args!("bank out of range")))?;
    let word = u32::try_from(dec_or_hex(args[3])?)
        .map_err(|_| CmdError::msg(format_args!("word out of range")))?;
    let cnt = match args.get(4) {
        Some(c) => u32::try_from(dec_or_hex(c)?)
            .map_err(|_| CmdError::msg(format_args!("count out of range")))?,
        None => 1,
    };
    if cnt == 0
        || word
            .checked_add(cnt)
            .is_none_or(|end| end > ocotp::WORDS_PER_BANK)
    {
        return Err(CmdError::msg(format_args!(
            "words {word}..{} outside the bank's {} words",
            word.saturating_add(cnt),
            ocotp::WORDS_PER_BANK
        )));
    }
    caam(m)?;
    outln!(m, "Reading bank {}:", bank);
    for i in 0..cnt {
        let w = word + i;
        let v = m
            .ocotp
            .as_ref()
            .ok_or_else(|| CmdError::msg(format_args!("fuses not available")))?
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
    arity(args, 1, 1)?;
    if args[1] != "info" {
        return Err(CmdError::msg(format_args!(
            "unknown subcommand '{}' (only 'info')",
            args[1]
        )));
    }
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
