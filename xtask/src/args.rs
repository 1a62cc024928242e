//! Command-line parsing for `cargo xtask` (clap derive; `--help` on every
//! command shows its options).

use clap::{Args, Parser, Subcommand, ValueEnum};
use imx_emu::fusefile::{ChipOptions, Page0};
use std::path::PathBuf;

/// The one build, run, test and bench entry point (`cargo xtask`).
#[derive(Parser, Clone, PartialEq, Eq, Debug)]
#[command(name = "xtask", bin_name = "cargo xtask")]
pub struct Cli {
    /// The command; none prints the help.
    #[command(subcommand)]
    pub cmd: Option<Cmd>,
}

/// The board a loader image is built for.
#[derive(ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum Board {
    /// QEMU `imx8mp-evk` with the emulated CAAM and OCOTP.
    Qemu,
    /// The real i.MX8M Plus EVK.
    #[value(name = "imx8mp-evk", alias = "evk")]
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
}

/// What to build.
#[derive(Args, Clone, PartialEq, Eq, Debug)]
pub struct BuildOpts {
    /// The board.
    #[arg(long, value_enum, default_value_t = Board::Qemu)]
    pub board: Board,
    /// Production build (no debug-only commands such as `mfgprot pubk`).
    #[arg(long)]
    pub production: bool,
    /// The OEM key set (`mfgtool keys new`) whose public keys the loader is
    /// built with; default: a development set made once in target/keys/dev.
    #[arg(long, value_name = "DIR")]
    pub keys: Option<PathBuf>,
    /// Let a production build use a development key set (refused otherwise).
    #[arg(long)]
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

    /// The output directory name: `<board>[-production]`.
    pub fn out_name(&self) -> String {
        if self.production {
            format!("{}-production", self.board.name())
        } else {
            self.board.name().to_string()
        }
    }
}

/// How `--caam-page0` names a refused CAAM controller page.
#[derive(ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub enum CaamPage0 {
    /// Reads return 0.
    Zero,
    /// Reads return all-ones.
    Ones,
    /// Every access aborts.
    Abort,
}

impl From<CaamPage0> for Page0 {
    fn from(p: CaamPage0) -> Self {
        match p {
            CaamPage0::Zero => Page0::ReadsZero,
            CaamPage0::Ones => Page0::ReadsOnes,
            CaamPage0::Abort => Page0::Aborts,
        }
    }
}

/// Arguments of `fuses new`.
#[derive(Args, Clone, PartialEq, Eq, Debug)]
pub struct FusesNew {
    /// 128-bit UID, big-endian; random when not given.
    #[arg(long, value_name = "HEX32", value_parser = parse_hex::<16>)]
    pub uid: Option<[u8; 16]>,
    /// SRK hash.
    #[arg(long, value_name = "HEX64", value_parser = parse_hex::<32>)]
    pub srk_hash: [u8; 32],
    /// OTPMK; random when not given.
    #[arg(long, value_name = "HEX64", value_parser = parse_hex::<32>)]
    pub otpmk: Option<[u8; 32]>,
    /// The emulated CAAM's MP family secret (from which each chip's MP key
    /// is derived); the model's default when not given.
    #[arg(long, value_name = "HEX64", value_parser = parse_hex::<32>)]
    pub family_secret: Option<[u8; 32]>,
    /// Open (not closed) part.
    #[arg(long)]
    pub open: bool,
    /// SCFGR.MPCURVE reads 0 at power-on (no MP key).
    #[arg(long)]
    pub no_mp_key: bool,
    /// The CAAM controller page refused as with OP-TEE (docs/caam.md).
    #[arg(long, value_enum)]
    pub caam_page0: Option<CaamPage0>,
    /// Output file.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    pub out: PathBuf,
}

impl FusesNew {
    /// Power-on options of the emulated CAAM.
    pub fn options(&self) -> ChipOptions {
        ChipOptions {
            mp_curve_zero: self.no_mp_key,
            page0: self.caam_page0.map_or(Page0::Open, Page0::from),
        }
    }
}

/// `cargo xtask fuses` subcommands.
#[derive(Subcommand, Clone, PartialEq, Eq, Debug)]
pub enum FusesCmd {
    /// Write a virtual chip's fuse file (random UID and OTPMK unless given).
    New(FusesNew),
    /// Print a fuse file (the OTPMK is never printed).
    Show {
        /// The fuse file.
        file: PathBuf,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// A parsed `cargo xtask` command.
#[derive(Subcommand, Clone, PartialEq, Eq, Debug)]
pub enum Cmd {
    /// Build the loader into target/out/<board>[-production]/loader.{bin,elf}.
    Build(BuildOpts),
    /// Build and boot on QEMU imx8mp-evk, console on this terminal.
    ///
    /// Ctrl-A X quits; the defmt log is decoded into target/qemu-defmt.log.
    Qemu {
        /// What to build and boot.
        #[command(flatten)]
        build: BuildOpts,
        /// Fuse file of the virtual chip (`fuses new`).
        #[arg(long, value_name = "FILE")]
        fuses: Option<PathBuf>,
        /// Disk image for USDHC3.
        #[arg(long, value_name = "IMG")]
        disk: Option<PathBuf>,
        /// Extra QEMU arguments.
        #[arg(last = true, value_name = "QEMU ARGS")]
        qemu_args: Vec<String>,
    },
    /// Virtual chips for QEMU: fuse files.
    #[command(subcommand)]
    Fuses(FusesCmd),
    /// Prerequisites, host tests, QEMU tests, clippy (host + target), fmt --check.
    Test,
    /// Instruction counts under -icount and image sizes; target/bench/bench.json.
    Bench,
    /// The provisioning story on QEMU: 4 chips, 2 OEMs, seal, provision, ledger, attacks.
    Demo,
    /// Clippy for host and target with -D warnings.
    Clippy,
    /// cargo fmt --all.
    Fmt {
        /// Only check.
        #[arg(long)]
        check: bool,
    },
    /// Check (and where possible install) what test/demo/bench need.
    Prereqs,
    /// Every property test, then libFuzzer on each parser target.
    ///
    /// The property tests cover the parsers, decoder, CAAM model, FDT
    /// editor, GPT reader, console and command arguments; libFuzzer runs
    /// as `cargo fuzz` on stable with `--sanitizer none`. Prints executions,
    /// reach, coverage and crashes.
    Fuzz {
        /// Cases per property.
        #[arg(long, value_name = "N", default_value_t = 100_000,
              value_parser = clap::value_parser!(u64).range(1..))]
        cases: u64,
        /// Seconds of libFuzzer per parser target (0 skips it).
        #[arg(long, value_name = "S", default_value_t = 60)]
        secs: u64,
    },
    /// Convert any loader ELF into a raw arm64 Image (what build does).
    #[command(name = "elf2bin")]
    Elf2Bin {
        /// Input ELF.
        #[arg(value_name = "ELF")]
        elf: PathBuf,
        /// Output Image.
        #[arg(value_name = "BIN")]
        bin: PathBuf,
    },
    /// The CM's deliverables: loader FIT, sparse eMMC image, uuu scripts (docs/factory.md).
    ///
    /// Builds the production loader and its FIT (mkimage), the eMMC disk
    /// image with the sealed bundle, and the uuu scripts flash-emmc.uuu and
    /// flash-bundle.uuu.
    Factory(crate::factory::FactoryOpts),
}

/// Parses hex (optionally `0x`-prefixed) into exactly `N` bytes.
pub fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], String> {
    let h = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    if h.len() != 2 * N {
        return Err(format!("expected {} hex digits, got {}", 2 * N, h.len()));
    }
    // Checked first: from_str_radix alone would accept a leading '+'.
    if !h.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(format!("not hex: '{s}'"));
    }
    let mut out = [0u8; N];
    for (o, pair) in out.iter_mut().zip(h.as_bytes().chunks_exact(2)) {
        let hi = char::from(pair[0]).to_digit(16).unwrap_or(0);
        let lo = char::from(pair[1]).to_digit(16).unwrap_or(0);
        *o = u8::try_from(hi * 16 + lo).map_err(|_| format!("not hex: '{s}'"))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    fn p(s: &str) -> Result<Cmd, String> {
        let argv = std::iter::once("xtask").chain(s.split_whitespace());
        match Cli::try_parse_from(argv) {
            Ok(Cli { cmd: Some(c) }) => Ok(c),
            Ok(Cli { cmd: None }) => Err("no command".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn command_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every command and subcommand answers `--help` (and `-h`), and has a
    /// one-line description in the list.
    #[test]
    fn every_command_has_help() {
        fn walk(cmd: &clap::Command, path: &mut Vec<String>, seen: &mut usize) {
            for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
                path.push(sub.get_name().to_string());
                let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
                assert!(!about.is_empty(), "{path:?}: no description");
                assert!(!about.contains('\n'), "{path:?}: description spans lines");
                for flag in ["--help", "-h"] {
                    let argv = std::iter::once("xtask")
                        .chain(path.iter().map(String::as_str))
                        .chain([flag]);
                    let e = Cli::try_parse_from(argv).expect_err("help is an early exit");
                    assert_eq!(e.kind(), ErrorKind::DisplayHelp, "{path:?} {flag}: {e}");
                    assert!(e.to_string().contains("Usage: cargo xtask"), "{e}");
                }
                *seen += 1;
                walk(sub, path, seen);
                path.pop();
            }
        }
        let mut seen = 0;
        walk(&Cli::command(), &mut Vec::new(), &mut seen);
        // 12 commands, `fuses new` and `fuses show`.
        assert_eq!(seen, 14);
        let e = Cli::try_parse_from(["xtask", "--help"]).expect_err("help");
        assert_eq!(e.kind(), ErrorKind::DisplayHelp);
        assert!(e.to_string().contains("factory"), "{e}");
        let e = Cli::try_parse_from(["xtask", "help", "factory"]).expect_err("help");
        assert_eq!(e.kind(), ErrorKind::DisplayHelp);
        assert_eq!(p(""), Err("no command".into()));
    }

    #[test]
    fn factory_help_lists_its_options() {
        let e = Cli::try_parse_from(["xtask", "factory", "--help"]).expect_err("help");
        assert_eq!(e.kind(), ErrorKind::DisplayHelp);
        let help = e.to_string();
        for opt in [
            "--output <DIR>",
            "--bundle",
            "--kernel",
            "--dtb",
            "--bl31",
            "--board",
            "--keys",
            "--allow-dev-keys",
            "--emmc-sectors <N>",
            "uuu",
        ] {
            assert!(help.contains(opt), "{opt} missing from:\n{help}");
        }
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
                .contains("a value is required for '--keys <DIR>'")
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
                .contains("invalid value 'rpi' for '--board <BOARD>'")
        );
        assert!(
            p("build --board")
                .unwrap_err()
                .contains("a value is required for '--board <BOARD>'")
        );
        assert!(
            p("build --disk x")
                .unwrap_err()
                .contains("unexpected argument '--disk'")
        );
        assert!(
            p("frobnicate")
                .unwrap_err()
                .contains("unrecognized subcommand 'frobnicate'")
        );
        assert!(p("test extra").is_err());
        assert!(p("elf2bin a").is_err());
        assert!(p("elf2bin a b c").is_err());
        assert_eq!(
            p("elf2bin a b"),
            Ok(Cmd::Elf2Bin {
                elf: "a".into(),
                bin: "b".into()
            })
        );
    }

    #[test]
    fn simple_commands_parse() {
        assert_eq!(p("test"), Ok(Cmd::Test));
        assert_eq!(p("bench"), Ok(Cmd::Bench));
        assert_eq!(p("demo"), Ok(Cmd::Demo));
        assert_eq!(p("clippy"), Ok(Cmd::Clippy));
        assert_eq!(p("prereqs"), Ok(Cmd::Prereqs));
        assert_eq!(p("fmt"), Ok(Cmd::Fmt { check: false }));
        assert_eq!(p("fmt --check"), Ok(Cmd::Fmt { check: true }));
        assert!(p("fmt --fix").is_err());
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
        assert_eq!(
            p("qemu --board evk --production"),
            Ok(Cmd::Qemu {
                build: BuildOpts {
                    board: Board::Imx8mpEvk,
                    production: true,
                    ..BuildOpts::default()
                },
                fuses: None,
                disk: None,
                qemu_args: vec![],
            })
        );
        // QEMU arguments only after `--`.
        assert!(p("qemu -d unimp").is_err());
    }

    fn fuses_new(s: &str) -> FusesNew {
        match p(s) {
            Ok(Cmd::Fuses(FusesCmd::New(f))) => f,
            other => panic!("not fuses new: {other:?}"),
        }
    }

    #[test]
    fn fuses_new_parses_hex() {
        let uid = "00112233445566778899aabbccddeeff";
        let srk = "0x".to_string() + &"ab".repeat(32);
        let f = fuses_new(&format!(
            "fuses new --uid {uid} --srk-hash {srk} --open -o chip.fuses"
        ));
        let uid_bytes = f.uid.expect("uid given");
        assert_eq!((uid_bytes[0], uid_bytes[15]), (0x00, 0xff));
        assert_eq!(f.family_secret, None);
        assert_eq!(f.srk_hash, [0xab; 32]);
        assert_eq!(f.otpmk, None);
        assert!(f.open);
        assert_eq!(f.out, PathBuf::from("chip.fuses"));
        assert_eq!(f.options(), ChipOptions::default());
        let f = fuses_new(&format!(
            "fuses new --uid {uid} --srk-hash {srk} --otpmk {} --output c",
            "01".repeat(32)
        ));
        assert_eq!(f.otpmk, Some([1; 32]));
        assert!(!f.open);
        let f = fuses_new(&format!(
            "fuses new --srk-hash {srk} --family-secret {} -o c",
            "02".repeat(32)
        ));
        assert_eq!((f.uid, f.family_secret), (None, Some([2; 32])));
        assert_eq!(f.out, PathBuf::from("c"));
        let f = fuses_new(&format!(
            "fuses new --uid {uid} --srk-hash {srk} --no-mp-key --caam-page0 ones -o c"
        ));
        assert!(f.options().mp_curve_zero);
        assert_eq!(f.options().page0, Page0::ReadsOnes);
        for (v, page0) in [("zero", Page0::ReadsZero), ("abort", Page0::Aborts)] {
            let f = fuses_new(&format!(
                "fuses new --uid {uid} --srk-hash {srk} --caam-page0 {v} -o c"
            ));
            assert_eq!(f.options().page0, page0);
            assert!(!f.options().mp_curve_zero);
        }
        assert!(
            p(&format!(
                "fuses new --uid {uid} --srk-hash {srk} --caam-page0 maybe -o c"
            ))
            .unwrap_err()
            .contains("[possible values: zero, ones, abort]")
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
        let e = p("fuses new -o f").unwrap_err();
        assert!(
            e.contains("required arguments were not provided") && e.contains("--srk-hash <HEX64>"),
            "{e}"
        );
        assert!(
            p(&format!(
                "fuses new --srk-hash {srk} --family-secret 00 -o f"
            ))
            .unwrap_err()
            .contains("expected 64 hex digits, got 2")
        );
        assert!(matches!(
            p("fuses show --json f.fuses"),
            Ok(Cmd::Fuses(FusesCmd::Show { json: true, .. }))
        ));
        assert!(p("fuses show").is_err());
        let e = p(&format!(
            "fuses new --uid {} --srk-hash {srk}",
            "00".repeat(16)
        ))
        .unwrap_err();
        assert!(
            e.contains("required arguments were not provided") && e.contains("--output <FILE>"),
            "{e}"
        );
        assert!(p("fuses old").is_err());
        assert!(p("fuses").is_err());
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
        assert_eq!(o.keys, None);
        assert!(!o.allow_dev_keys);
        // The factory's board defaults to the EVK, not QEMU.
        let Ok(Cmd::Factory(o)) = p("factory --output d --keys k --allow-dev-keys --bl31 b") else {
            panic!("factory not parsed")
        };
        assert_eq!(o.board, Board::Imx8mpEvk);
        assert_eq!(o.out, PathBuf::from("d"));
        assert_eq!(o.keys, Some(PathBuf::from("k")));
        assert_eq!(o.bl31, Some(PathBuf::from("b")));
        assert!(o.allow_dev_keys);
        let e = p("factory --bundle b.bin").unwrap_err();
        assert!(
            e.contains("required arguments were not provided") && e.contains("--output <DIR>"),
            "{e}"
        );
        assert!(
            p("factory -o d --frob")
                .unwrap_err()
                .contains("unexpected argument '--frob'")
        );
        assert!(
            p("factory -o")
                .unwrap_err()
                .contains("a value is required for '--output <DIR>'")
        );
    }

    #[test]
    fn hex_is_exact() {
        assert_eq!(parse_hex::<2>("0xBEef"), Ok([0xbe, 0xef]));
        assert!(parse_hex::<2>("beef00").is_err());
        assert!(parse_hex::<2>("+eef").is_err());
        // Multi-byte UTF-8 must be refused, not panic on a char boundary.
        assert!(parse_hex::<2>("é00").is_err());
    }
}
