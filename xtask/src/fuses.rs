//! `cargo xtask fuses new`: write a virtual chip's fuse file.

use crate::Result;
use crate::args::FusesNew;
use imx_emu::fusefile::{DEFAULT_FAMILY_SECRET, FuseFile};
use std::fs;

/// Builds the fuse file for `f`, drawing the OTPMK from the OS RNG when
/// none was given.
pub fn make(f: &FusesNew) -> Result<FuseFile> {
    let otpmk = match f.otpmk {
        Some(k) => k,
        None => {
            let mut k = [0u8; 32];
            getrandom::fill(&mut k).map_err(|e| format!("no OS randomness for the OTPMK: {e}"))?;
            k
        }
    };
    Ok(FuseFile {
        uid: f.uid,
        srk_hash: f.srk_hash,
        otpmk,
        family_secret: DEFAULT_FAMILY_SECRET,
        open: f.open,
        options: f.options(),
    })
}

/// Writes the fuse file. The OTPMK is a secret: it is not printed.
pub fn new(f: &FusesNew) -> Result<()> {
    let fuses = make(f)?;
    fs::write(&f.out, fuses.to_bytes())
        .map_err(|e| format!("cannot write {}: {e}", f.out.display()))?;
    let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
    println!(
        "{}: uid {} srk-hash {} {} (OTPMK {}){}{}",
        f.out.display(),
        hex(&fuses.uid),
        hex(&fuses.srk_hash),
        if fuses.open { "open" } else { "closed" },
        if f.otpmk.is_some() { "given" } else { "random" },
        if fuses.options.mp_curve_zero {
            ", no MP key at power-on"
        } else {
            ""
        },
        match fuses.options.page0 {
            imx_emu::fusefile::Page0::Open => "",
            imx_emu::fusefile::Page0::ReadsZero => ", CAAM page 0 reads 0",
            imx_emu::fusefile::Page0::ReadsOnes => ", CAAM page 0 reads all-ones",
            imx_emu::fusefile::Page0::Aborts => ", CAAM page 0 aborts",
        },
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(otpmk: Option<[u8; 32]>) -> FusesNew {
        FusesNew {
            uid: [7; 16],
            srk_hash: [9; 32],
            otpmk,
            open: true,
            no_mp_key: true,
            caam_page0: None,
            out: std::env::temp_dir().join(format!("xtask-fuses-{}", std::process::id())),
        }
    }

    #[test]
    fn writes_a_parsable_file_with_the_given_values() {
        let a = args(Some([5; 32]));
        new(&a).unwrap();
        let f = FuseFile::parse(&fs::read(&a.out).unwrap()).unwrap();
        let _ = fs::remove_file(&a.out);
        assert_eq!(f.uid, [7; 16]);
        assert_eq!(f.srk_hash, [9; 32]);
        assert_eq!(f.otpmk, [5; 32]);
        assert!(f.open);
        assert_eq!(f.family_secret, DEFAULT_FAMILY_SECRET);
        assert!(f.options.mp_curve_zero, "chip options reach the file");
    }

    #[test]
    fn random_otpmk_differs_between_chips() {
        let a = make(&args(None)).unwrap();
        let b = make(&args(None)).unwrap();
        assert_ne!(a.otpmk, b.otpmk);
        assert_ne!(a.otpmk, [0; 32]);
    }
}
