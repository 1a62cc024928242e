//! Command-line parsing for `cargo xtask`.

use std::path::PathBuf;

/// Usage text printed by `cargo xtask help` and on a usage error.
pub const USAGE: &str = "\
usage: cargo xtask <command> [options]

commands:
  build [--board qemu|imx8mp-evk] [--production] [--keys DIR] [--allow-dev-keys]
        build the loader; writes target/out/<board>[-production]/loader.{bin,elf}.
        --keys DIR: the OEM key set (mfgtool keys new) whose public keys the loader
        is built with; default: a development set made once in target/keys/dev.
        A production build refuses a development set unless --allow-dev-keys.
  qemu [--board B] [--production] [--keys DIR] [--allow-dev-keys] [--fuses FILE]
       [--disk IMG] [-- QEMU ARGS]
        build and boot on QEMU imx8mp-evk; console on this terminal (Ctrl-A X quits),
        defmt log decoded into target/qemu-defmt.log
  fuses new --uid HEX32 --srk-hash HEX64 [--otpmk HEX64] [--open] [--no-mp-key]
        [--caam-page0 zero|ones|abort] -o FILE
        write a virtual chip's fuse file (random OTPMK unless given); --no-mp-key:
        SCFGR.MPCURVE reads 0 at power-on; --caam-page0: the CAAM controller page
        refused as with OP-TEE (reads 0, reads all-ones, or aborts); docs/caam.md
  test  prerequisites, host tests, QEMU tests, clippy (host + target), fmt --check
  bench instruction counts under -icount and image sizes; target/bench/bench.json
  fuzz [--cases N] [--secs S]  every property test (parsers, decoder, CAAM model, FDT editor,
        GPT reader, console and command arguments) with N cases per property (default
        100000), then libFuzzer (cargo fuzz, stable, --sanitizer none) on each parser target
        for S seconds (default 60; 0 skips it); prints executions, reach, coverage, crashes
  demo  the provisioning story on QEMU: 4 chips, 2 OEMs, seal, provision, ledger, attacks
  clippy  clippy for host and target with -D warnings
  fmt [--check]  cargo fmt --all
  prereqs  check (and where possible install) what test/demo/bench need
  elf2bin ELF BIN  convert any loader ELF into a raw arm64 Image (what build does)
  factory -o DIR --emmc-sectors N [--bundle FILE] [--kernel Image] [--dtb DTB] [--bl31 FILE]
          [--board imx8mp-evk] [--keys DIR] [--allow-dev-keys]
        the CM's deliverables: production loader FIT (mkimage), eMMC image (sparse, N
        512-byte sectors: the eMMC user area) with the sealed bundle, uuu scripts
        flash-emmc.uuu and flash-bundle.uuu (docs/factory.md)
";

/// The board a loader image is built for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Board {
    /// QEMU `imx8mp-evk` with the emulated CAAM and OCOTP.
    Qemu,
    /// The real i.MX8M Plus EVK.
    Imx8mpEvk,
}

impl Board {
    /// The name used on the command line and in output paths.
    pub fn name(self) -> &'static str {
        match self {
            Board::Qemu => "qemu",
            Board::Imx8mpEvk => "imx8mp-evk",
        }
    }

    /// The loader's cargo feature that selects this board.
    pub fn feature(self) -> &'static str {
        match self {
            Board::Qemu => "board-qemu",
            Board::Imx8mpEvk => "board-imx8mp-evk",
        }
    }

    /// Parses a `--board` value.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "qemu" => Ok(Board::Qemu),
            "imx8mp-evk" | "evk" => Ok(Board::Imx8mpEvk),
            _ => Err(format!("unknown board '{s}' (expected qemu or imx8mp-evk)")),
        }
    }
}

/// What to build.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct BuildOpts {
    /// The board.
    pub board: Board,
    /// Production build (no debug-only commands such as `mfgprot pubk`).
    pub production: bool,
    /// The OEM key set (`--keys DIR`); `None`: the development set.
    pub keys: Option<PathBuf>,
    /// A production build may use a development key set.
    pub allow_dev_keys: bool,
}

impl Default for BuildOpts {
    fn default() -> Self {
        Self {
            board: Board::Qemu,
            production: false,
            keys: None,
            allow_dev_keys: false,
        }
    }
}

impl BuildOpts {
    /// A build of `board`, development keys allowed (tests, bench, clippy).
    pub fn for_tests(board: Board, production: bool) -> Self {
        Self {
            board,
            production,
            keys: None,
            allow_dev_keys: true,
        }
    }
}

impl BuildOpts {
    /// The output directory name: `<board>[-production]`.
    pub fn out_name(&self) -> String {
        if self.production {
            format!("{}-production", self.board.name())
        } else {
            self.board.name().to_string()
        }
    }
}

/// Arguments of `fuses new`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct FusesNew {
    /// 128-bit UID, big-endian.
    pub uid: [u8; 16],
    /// SRK hash.
    pub srk_hash: [u8; 32],
    /// OTPMK; random when `None`.
    pub otpmk: Option<[u8; 32]>,
    /// Open (not closed) part.
    pub open: bool,
    /// Power-on options of the emulated CAAM.
    pub options: imx_emu::fusefile::ChipOptions,
    /// Output file.
    pub out: PathBuf,
}

/// A parsed `cargo xtask` command.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Cmd {
    /// `build`.
    Build(BuildOpts),
    /// `qemu`.
    Qemu {
        /// What to build and boot.
        build: BuildOpts,
        /// Fuse file to load.
        fuses: Option<PathBuf>,
        /// Disk image for USDHC3.
        disk: Option<PathBuf>,
        /// Extra QEMU arguments after `--`.
        qemu_args: Vec<String>,
    },
    /// `fuses new`.
    FusesNew(FusesNew),
    /// `test`.
    Test,
    /// `bench`.
    Bench,
    /// `demo`.
    Demo,
    /// `clippy`.
    Clippy,
    /// `fmt [--check]`.
    Fmt {
        /// Only check.
        check: bool,
    },
    /// `prereqs`.
    Prereqs,
    /// `fuzz [--cases N] [--secs S]`.
    Fuzz {
        /// Cases per property.
        cases: u64,
        /// Seconds per coverage-guided target (0: none).
        secs: u64,
    },
    /// `elf2bin ELF BIN`.
    Elf2Bin {
        /// Input ELF.
        elf: PathBuf,
        /// Output Image.
        bin: PathBuf,
    },
    /// `factory`.
    Factory(crate::factory::FactoryOpts),
    /// `help`.
    Help,
}

/// Parses hex (optionally `0x`-prefixed) into exactly `N` bytes.
pub fn parse_hex<const N: usize>(what: &str, s: &str) -> Result<[u8; N], String> {
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if h.len() != 2 * N {
        return Err(format!(
            "{what}: expected {} hex digits, got {}",
            2 * N,
            h.len()
        ));
    }
    // Checked first: from_str_radix alone would accept a leading '+'.
    if !h.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("{what}: not hex: '{s}'"));
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(h.as_bytes().chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16).unwrap_or(0);
        let lo = char::from(pair[1]).to_digit(16).unwrap_or(0);
        *o = u8::try_from(hi * 16 + lo).map_err(|_| format!("{what}: not hex: '{s}'"))?;
    }
    Ok(out)
}

/// Parses the arguments after `cargo xtask`.
pub fn parse(args: &[String]) -> Result<Cmd, String> {
    let Some((cmd, rest)) = args.split_first() else {
        return Ok(Cmd::Help);
    };
    let mut it = rest.iter();
    let value = |it: &mut std::slice::Iter<'_, String>, opt: &str| -> Result<String, String> {
        it.next()
            .cloned()
            .ok_or_else(|| format!("{opt} needs a value"))
    };
    match cmd.as_str() {
        "build" | "qemu" => {
            let mut build = BuildOpts::default();
            let mut fuses = None;
            let mut disk = None;
            let mut qemu_args = Vec::new();
            let is_qemu = cmd == "qemu";
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--board" => build.board = Board::parse(&value(&mut it, a)?)?,
                    "--production" => build.production = true,
                    "--keys" => build.keys = Some(PathBuf::from(value(&mut it, a)?)),
                    "--allow-dev-keys" => build.allow_dev_keys = true,
                    "--fuses" if is_qemu => fuses = Some(PathBuf::from(value(&mut it, a)?)),
                    "--disk" if is_qemu => disk = Some(PathBuf::from(value(&mut it, a)?)),
                    "--" if is_qemu => {
                        qemu_args.extend(it.by_ref().cloned());
                    }
                    _ => return Err(format!("{cmd}: unexpected argument '{a}'")),
                }
            }
            if is_qemu {
                Ok(Cmd::Qemu {
                    build,
                    fuses,
                    disk,
                    qemu_args,
                })
            } else {
                Ok(Cmd::Build(build))
            }
        }
        "fuses" => {
            match it.next().map(String::as_str) {
                Some("new") => {}
                Some(other) => return Err(format!("fuses: unknown subcommand '{other}'")),
                None => return Err("fuses: expected 'new'".into()),
            }
            let (mut uid, mut srk, mut otpmk, mut open, mut out) = (None, None, None, false, None);
            let mut options = imx_emu::fusefile::ChipOptions::default();
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--no-mp-key" => options.mp_curve_zero = true,
                    "--caam-page0" => {
                        use imx_emu::fusefile::Page0;
                        options.page0 = match value(&mut it, a)?.as_str() {
                            "zero" => Page0::ReadsZero,
                            "ones" => Page0::ReadsOnes,
                            "abort" => Page0::Aborts,
                            v => {
                                return Err(format!(
                                    "fuses new: --caam-page0 must be zero, ones or abort, not '{v}'"
                                ));
                            }
                        };
                    }
                    "--uid" => uid = Some(parse_hex::<16>("--uid", &value(&mut it, a)?)?),
                    "--srk-hash" => srk = Some(parse_hex::<32>("--srk-hash", &value(&mut it, a)?)?),
                    "--otpmk" => otpmk = Some(parse_hex::<32>("--otpmk", &value(&mut it, a)?)?),
                    "--open" => open = true,
                    "-o" | "--output" => out = Some(PathBuf::from(value(&mut it, a)?)),
                    _ => return Err(format!("fuses new: unexpected argument '{a}'")),
                }
            }
            Ok(Cmd::FusesNew(FusesNew {
                uid: uid.ok_or("fuses new: --uid is required")?,
                srk_hash: srk.ok_or("fuses new: --srk-hash is required")?,
                otpmk,
                open,
                options,
                out: out.ok_or("fuses new: -o FILE is required")?,
            }))
        }
        "elf2bin" => match (it.next(), it.next(), it.next()) {
            (Some(elf), Some(bin), None) => Ok(Cmd::Elf2Bin {
                elf: elf.into(),
                bin: bin.into(),
            }),
            _ => Err("elf2bin: expected ELF BIN".into()),
        },
        "factory" => {
            let mut o = crate::factory::FactoryOpts {
                out: PathBuf::new(),
                board: Board::Imx8mpEvk,
                bundle: None,
                kernel: None,
                dtb: None,
                bl31: None,
                keys: None,
                allow_dev_keys: false,
                emmc_sectors: None,
            };
            let mut out = None;
            while let Some(a) = it.next() {
                match a.as_str() {
                    "-o" | "--output" => out = Some(PathBuf::from(value(&mut it, a)?)),
                    "--bundle" => o.bundle = Some(PathBuf::from(value(&mut it, a)?)),
                    "--kernel" => o.kernel = Some(PathBuf::from(value(&mut it, a)?)),
                    "--dtb" => o.dtb = Some(PathBuf::from(value(&mut it, a)?)),
                    "--bl31" => o.bl31 = Some(PathBuf::from(value(&mut it, a)?)),
                    "--board" => o.board = Board::parse(&value(&mut it, a)?)?,
                    "--keys" => o.keys = Some(PathBuf::from(value(&mut it, a)?)),
                    "--allow-dev-keys" => o.allow_dev_keys = true,
                    "--emmc-sectors" => {
                        let v = value(&mut it, a)?;
                        o.emmc_sectors = Some(v.parse::<u64>().map_err(|_| {
                            format!("--emmc-sectors: not a number of sectors: '{v}'")
                        })?);
                    }
                    _ => return Err(format!("factory: unexpected argument '{a}'")),
                }
            }
            o.out = out.ok_or("factory: -o DIR is required")?;
            Ok(Cmd::Factory(o))
        }
        "fmt" => {
            let mut check = false;
            for a in it {
                match a.as_str() {
                    "--check" => check = true,
                    _ => return Err(format!("fmt: unexpected argument '{a}'")),
                }
            }
            Ok(Cmd::Fmt { check })
        }
        "fuzz" => {
            let mut cases = 100_000;
            let mut secs = 60;
            while let Some(a) = it.next() {
                match a.as_str() {
                    "--cases" => {
                        let v = value(&mut it, "--cases")?;
                        cases = v
                            .parse::<u64>()
                            .ok()
                            .filter(|&n| n > 0)
                            .ok_or_else(|| format!("--cases: not a positive number: '{v}'"))?;
                    }
                    "--secs" => {
                        let v = value(&mut it, "--secs")?;
                        secs = v
                            .parse::<u64>()
                            .map_err(|_| format!("--secs: not a number: '{v}'"))?;
                    }
                    _ => return Err(format!("fuzz: unexpected argument '{a}'")),
                }
            }
            Ok(Cmd::Fuzz { cases, secs })
        }
        "test" | "bench" | "demo" | "clippy" | "prereqs" | "help" | "--help" | "-h" => {
            if let Some(a) = it.next() {
                return Err(format!("{cmd}: unexpected argument '{a}'"));
            }
            Ok(match cmd.as_str() {
                "test" => Cmd::Test,
                "bench" => Cmd::Bench,
                "demo" => Cmd::Demo,
                "clippy" => Cmd::Clippy,
                "prereqs" => Cmd::Prereqs,
                _ => Cmd::Help,
            })
        }
        other => Err(format!("unknown command '{other}'")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Cmd, String> {
        let v: Vec<String> = s.split_whitespace().map(String::from).collect();
        parse(&v)
    }

    #[test]
    fn fuzz_cases() {
        assert_eq!(
            p("fuzz"),
            Ok(Cmd::Fuzz {
                cases: 100_000,
                secs: 60
            })
        );
        assert_eq!(
            p("fuzz --cases 500"),
            Ok(Cmd::Fuzz {
                cases: 500,
                secs: 60
            })
        );
        assert_eq!(
            p("fuzz --secs 0 --cases 7"),
            Ok(Cmd::Fuzz { cases: 7, secs: 0 })
        );
        assert!(p("fuzz --secs x").is_err());
        assert!(p("fuzz --cases 0").is_err());
        assert!(p("fuzz --cases x").is_err());
        assert!(p("fuzz --cases").is_err());
        assert!(p("fuzz extra").is_err());
    }

    #[test]
    fn build_defaults_to_qemu() {
        assert_eq!(p("build"), Ok(Cmd::Build(BuildOpts::default())));
        assert_eq!(
            p("build --board imx8mp-evk --production"),
            Ok(Cmd::Build(BuildOpts {
                board: Board::Imx8mpEvk,
                production: true,
                ..BuildOpts::default()
            }))
        );
        assert_eq!(
            p("build --production --keys k/acme --allow-dev-keys"),
            Ok(Cmd::Build(BuildOpts {
                board: Board::Qemu,
                production: true,
                keys: Some("k/acme".into()),
                allow_dev_keys: true,
            }))
        );
        assert!(
            p("build --keys")
                .unwrap_err()
                .contains("--keys needs a value")
        );
        assert_eq!(
            BuildOpts {
                board: Board::Imx8mpEvk,
                production: true,
                ..BuildOpts::default()
            }
            .out_name(),
            "imx8mp-evk-production"
        );
        assert_eq!(BuildOpts::default().out_name(), "qemu");
    }

    #[test]
    fn build_rejects_bad_input() {
        assert!(
            p("build --board rpi")
                .unwrap_err()
                .contains("unknown board 'rpi'")
        );
        assert!(
            p("build --board")
                .unwrap_err()
                .contains("--board needs a value")
        );
        assert!(
            p("build --disk x")
                .unwrap_err()
                .contains("unexpected argument '--disk'")
        );
        assert!(
            p("frobnicate")
                .unwrap_err()
                .contains("unknown command 'frobnicate'")
        );
        assert!(p("test extra").is_err());
        assert!(p("elf2bin a").is_err());
        assert_eq!(
            p("elf2bin a b"),
            Ok(Cmd::Elf2Bin {
                elf: "a".into(),
                bin: "b".into()
            })
        );
    }

    #[test]
    fn qemu_takes_fuses_disk_and_passthrough() {
        assert_eq!(
            p("qemu --fuses a.fuses --disk d.img -- -d unimp --board x"),
            Ok(Cmd::Qemu {
                build: BuildOpts::default(),
                fuses: Some("a.fuses".into()),
                disk: Some("d.img".into()),
                qemu_args: vec!["-d".into(), "unimp".into(), "--board".into(), "x".into()],
            })
        );
    }

    #[test]
    fn fuses_new_parses_hex() {
        let uid = "00112233445566778899aabbccddeeff";
        let srk = "0x".to_string() + &"ab".repeat(32);
        let c = p(&format!(
            "fuses new --uid {uid} --srk-hash {srk} --open -o chip.fuses"
        ))
        .unwrap();
        let Cmd::FusesNew(f) = c else {
            panic!("not fuses new: {c:?}")
        };
        assert_eq!(f.uid[0], 0x00);
        assert_eq!(f.uid[15], 0xff);
        assert_eq!(f.srk_hash, [0xab; 32]);
        assert_eq!(f.otpmk, None);
        assert!(f.open);
        assert_eq!(f.out, PathBuf::from("chip.fuses"));
        assert_eq!(f.options, imx_emu::fusefile::ChipOptions::default());
        let c = p(&format!(
            "fuses new --uid {uid} --srk-hash {srk} --no-mp-key --caam-page0 ones -o c"
        ))
        .unwrap();
        let Cmd::FusesNew(f) = c else {
            panic!("not fuses new: {c:?}")
        };
        assert!(f.options.mp_curve_zero);
        assert_eq!(f.options.page0, imx_emu::fusefile::Page0::ReadsOnes);
        assert!(
            p(&format!(
                "fuses new --uid {uid} --srk-hash {srk} --caam-page0 maybe -o c"
            ))
            .unwrap_err()
            .contains("zero, ones or abort")
        );
    }

    #[test]
    fn fuses_new_rejects_bad_hex_and_missing_args() {
        let srk = "ab".repeat(32);
        assert!(
            p(&format!("fuses new --uid 0011 --srk-hash {srk} -o f"))
                .unwrap_err()
                .contains("expected 32 hex digits, got 4")
        );
        assert!(
            p(&format!(
                "fuses new --uid {} --srk-hash {srk} -o f",
                "zz".repeat(16)
            ))
            .unwrap_err()
            .contains("not hex")
        );
        assert!(
            p(&format!("fuses new --srk-hash {srk} -o f"))
                .unwrap_err()
                .contains("--uid is required")
        );
        assert!(
            p(&format!(
                "fuses new --uid {} --srk-hash {srk}",
                "00".repeat(16)
            ))
            .unwrap_err()
            .contains("-o FILE is required")
        );
        assert!(p("fuses old").is_err());
    }

    #[test]
    fn factory_needs_an_output_dir() {
        let Ok(Cmd::Factory(o)) = p(
            "factory -o out --bundle b.bin --kernel Image --dtb x.dtb --board evk --emmc-sectors 61071360",
        ) else {
            panic!("factory not parsed")
        };
        assert_eq!(o.out, PathBuf::from("out"));
        assert_eq!(o.emmc_sectors, Some(61_071_360));
        assert_eq!(o.board, Board::Imx8mpEvk);
        assert_eq!(o.bundle, Some(PathBuf::from("b.bin")));
        assert_eq!(o.kernel, Some(PathBuf::from("Image")));
        assert_eq!(o.dtb, Some(PathBuf::from("x.dtb")));
        assert_eq!(o.bl31, None);
        assert!(
            p("factory --bundle b.bin")
                .unwrap_err()
                .contains("-o DIR is required")
        );
        assert!(
            p("factory -o d --frob")
                .unwrap_err()
                .contains("unexpected argument '--frob'")
        );
        assert!(p("factory -o").unwrap_err().contains("-o needs a value"));
        assert!(
            p("factory -o d --emmc-sectors 32G")
                .unwrap_err()
                .contains("--emmc-sectors: not a number of sectors: '32G'")
        );
    }

    #[test]
    fn hex_is_exact() {
        assert_eq!(parse_hex::<2>("x", "0xBEef"), Ok([0xbe, 0xef]));
        assert!(parse_hex::<2>("x", "beef00").is_err());
        assert!(parse_hex::<2>("x", "+eef").is_err());
        // Multi-byte UTF-8 must be refused, not panic on a char boundary.
        assert!(parse_hex::<2>("x", "é00").is_err());
    }
}
