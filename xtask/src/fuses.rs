//! `cargo xtask fuses new|show`: a virtual chip's fuse file (QEMU and the
//! host tests; the format is `imx_emu::fusefile`).

use crate::Result;
use crate::args::FusesNew;
use imx_emu::fusefile::{DEFAULT_FAMILY_SECRET, FuseFile};
use std::fs;
use std::path::Path;

fn random<const N: usize>(what: &str) -> Result<[u8; N]> {
    let mut k = [0u8; N];
    getrandom::fill(&mut k).map_err(|e| format!("no OS randomness for the {what}: {e}"))?;
    Ok(k)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Builds the fuse file for `f`, drawing the UID and OTPMK from the OS RNG
/// when they were not given.
pub fn make(f: &FusesNew) -> Result<FuseFile> {
    let otpmk = match f.otpmk {
        Some(k) => k,
        None => random("OTPMK")?,
    };
    let uid = match f.uid {
        Some(u) => u,
        None => random("UID")?,
    };
    Ok(FuseFile {
        uid,
        srk_hash: f.srk_hash,
        otpmk,
        family_secret: f.family_secret.unwrap_or(DEFAULT_FAMILY_SECRET),
        open: f.open,
        options: f.options(),
    })
}

/// `fuses new`: writes the fuse file and says what it holds.
pub fn new(f: &FusesNew) -> Result<()> {
    println!("{}", write(f)?);
    Ok(())
}

/// Writes the fuse file; returns a one-line summary. The OTPMK is a
/// secret: it is not in it.
pub fn write(f: &FusesNew) -> Result<String> {
    let fuses = make(f)?;
    fs::write(&f.out, fuses.to_bytes())
        .map_err(|e| format!("cannot write {}: {e}", f.out.display()))?;
    Ok(format!(
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
    ))
}

/// Prints a fuse file's UID, SRK hash, security state and options; the
/// OTPMK and a custom family secret are secrets and are never printed.
pub fn show(file: &Path, json: bool) -> Result<()> {
    let bytes = fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
    println!(
        "{}",
        describe(&bytes, json).map_err(|e| format!("{}: {e}", file.display()))?
    );
    Ok(())
}

fn describe(bytes: &[u8], json: bool) -> core::result::Result<String, String> {
    let f = FuseFile::parse(bytes).map_err(|e| e.to_string())?;
    let fields = [
        ("uid", hex(&f.uid)),
        ("srk_hash", hex(&f.srk_hash)),
        ("security", (if f.open { "open" } else { "closed" }).into()),
        (
            "family_secret",
            (if f.family_secret == DEFAULT_FAMILY_SECRET {
                "default"
            } else {
                "custom"
            })
            .into(),
        ),
        ("otpmk", "set (not shown)".into()),
        ("mp_key_at_power_on", (!f.options.mp_curve_zero).to_string()),
        (
            "caam_page0",
            format!("{:?}", f.options.page0).to_lowercase(),
        ),
    ];
    Ok(if json {
        let body: Vec<String> = fields
            .iter()
            .map(|(k, v)| match v.as_str() {
                "true" | "false" => format!("  \"{k}\": {v}"),
                _ => format!("  \"{k}\": \"{v}\""),
            })
            .collect();
        format!("{{\n{}\n}}", body.join(",\n"))
    } else {
        fields
            .iter()
            .map(|(k, v)| format!("{k:<20}{v}"))
            .collect::<Vec<_>>()
            .join("\n")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(otpmk: Option<[u8; 32]>) -> FusesNew {
        FusesNew {
            uid: Some([7; 16]),
            srk_hash: [9; 32],
            otpmk,
            family_secret: None,
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
    fn random_otpmk_and_uid_differ_between_chips() {
        let a = make(&args(None)).unwrap();
        let b = make(&args(None)).unwrap();
        assert_ne!(a.otpmk, b.otpmk);
        assert_ne!(a.otpmk, [0; 32]);
        assert_eq!(a.uid, [7; 16], "a given UID is kept");
        let no_uid = FusesNew {
            uid: None,
            family_secret: Some([1; 32]),
            ..args(None)
        };
        let (c, d) = (make(&no_uid).unwrap(), make(&no_uid).unwrap());
        assert_ne!(c.uid, d.uid);
        assert_eq!(c.family_secret, [1; 32]);
    }

    #[test]
    fn show_never_prints_the_otpmk_or_a_custom_family_secret() {
        let f = make(&FusesNew {
            family_secret: Some([0x5e; 32]),
            ..args(Some([0xc3; 32]))
        })
        .unwrap();
        for json in [false, true] {
            let out = describe(&f.to_bytes(), json).unwrap();
            assert!(
                out.contains(&hex(&[7; 16])) && out.contains(&hex(&[9; 32])),
                "{out}"
            );
            assert!(out.contains("open") && out.contains("custom"), "{out}");
            assert!(!out.contains("c3c3") && !out.contains("5e5e"), "{out}");
        }
        let j = describe(&f.to_bytes(), true).unwrap();
        assert!(j.contains("\"mp_key_at_power_on\": false"), "{j}");
        let mut bad = f.to_bytes();
        bad[0] ^= 1;
        assert!(
            describe(&bad, false).is_err(),
            "a damaged fuse file is refused"
        );
    }
}
