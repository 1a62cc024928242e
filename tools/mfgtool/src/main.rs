//! `mfgtool`: the OEM's host tool for the i.MX8MP manufacturing-protection
//! flow. Seals product secrets into bundles, verifies device identities,
//! keeps the identity ledger, builds eMMC disk images and virtual chips.

mod bench;
mod disk;
mod error;
mod example;
mod fitimage;
mod gpt;
mod keys;
mod ledger;
mod seal;
mod verify;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use error::{Fail, Result, exit, read_file, write_file};
use imx_emu::fusefile::{DEFAULT_FAMILY_SECRET, FuseFile};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  I/O error or other failure
  2  command-line usage error
  3  authentication failed (bundle tag, ID-record signature)
  4  refused by ledger policy (duplicate UID, quota, SRK hash, security state, UID range)
  5  malformed, truncated or inconsistent input";

#[derive(Parser)]
#[command(name = "mfgtool", version, about = "OEM host tool for i.MX8MP manufacturing protection: seal bundles, verify device IDs, ledger, disk images", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Virtual chips for QEMU: create or show a fuse file.
    #[command(subcommand, after_help = EXIT_CODES)]
    Fuses(FusesCmd),
    /// Seal the secrets of a manifest into a bundle for the MP public key.
    #[command(after_help = EXIT_CODES)]
    Seal {
        /// MP public key: 128 hex digits X||Y (optionally 04-prefixed), or a
        /// file with that hex, U-Boot's `mfgprot pubk` output or a PEM key.
        #[arg(long)]
        mp_pubkey: String,
        /// Secrets manifest (TOML, one [[secret]] per secret).
        #[arg(long)]
        secrets: PathBuf,
        /// Product id (1..=32 of [A-Za-z0-9._-]); part of the key derivation.
        #[arg(long)]
        product: String,
        /// Bundle id recorded in the header and in each device's identity.
        #[arg(long, default_value_t = 1)]
        bundle_id: u64,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Authenticate a bundle and list its secrets (contents only with --reveal).
    #[command(after_help = EXIT_CODES)]
    Open {
        /// MP public key (as for `seal`).
        #[arg(long)]
        mp_pubkey: String,
        /// The sealed bundle.
        bundle: PathBuf,
        /// Also print each secret's content in hex.
        #[arg(long)]
        reveal: bool,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Verify ID records (console line file, raw record or disk image) and print the identity.
    #[command(after_help = EXIT_CODES)]
    VerifyId {
        /// MP public key (as for `seal`).
        #[arg(long)]
        mp_pubkey: String,
        /// A file with `mfgprot-id: ...` lines (e.g. a console log), a raw
        /// record, or a disk image (the record in `mfg-data`).
        record: PathBuf,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// The OEM's identity ledger (SQLite).
    #[command(after_help = EXIT_CODES)]
    Ledger {
        /// Ledger database file.
        #[arg(long)]
        db: PathBuf,
        /// JSON output.
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        cmd: LedgerCmd,
    },
    /// Build a GPT disk image for the eMMC (or QEMU's SD card).
    #[command(after_help = EXIT_CODES)]
    Image {
        /// Output disk image.
        #[arg(short, long)]
        output: PathBuf,
        /// Total size, a power of two (e.g. 64M).
        #[arg(long, default_value = "64M")]
        size: String,
        /// Sealed bundle for `mfg-bundle`.
        #[arg(long)]
        bundle: Option<PathBuf>,
        /// arm64 kernel Image for `kernel`.
        #[arg(long)]
        kernel: Option<PathBuf>,
        /// Device tree blob for `dtb`.
        #[arg(long)]
        dtb: Option<PathBuf>,
        /// initramfs for `initrd`.
        #[arg(long)]
        initrd: Option<PathBuf>,
        /// Loader image for `loader`.
        #[arg(long)]
        loader: Option<PathBuf>,
        /// Boot signing key (P-256 SEC1 PEM, `<key-name-hint>.pem` as in a
        /// `mkimage -k` key directory): build a signed FIT from --kernel,
        /// --dtb and --initrd for the `boot` partition instead of raw
        /// partitions (`SOURCE_DATE_EPOCH` sets its timestamps).
        #[arg(long, requires_all = ["kernel", "dtb"], conflicts_with = "fit")]
        boot_key: Option<PathBuf>,
        /// Kernel command line of the signed FIT's configuration.
        #[arg(long, requires = "boot_key", default_value = "console=ttymxc1,115200")]
        bootargs: String,
        /// A FIT signed elsewhere (`mkimage -k`) for the `boot` partition.
        #[arg(long)]
        fit: Option<PathBuf>,
        /// Also write the signed FIT built with --boot-key to this file.
        #[arg(long, requires = "boot_key")]
        fit_out: Option<PathBuf>,
        /// JSON output (partition table).
        #[arg(long)]
        json: bool,
    },
    /// Decode a disk image's provisioning area and bundle partition.
    #[command(after_help = EXIT_CODES)]
    Inspect {
        /// Disk image.
        image: PathBuf,
        /// Also verify the ID record's signature with this MP public key.
        #[arg(long)]
        mp_pubkey: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Print an MP public key (any accepted form) as U-Boot hex or PEM.
    #[command(after_help = EXIT_CODES)]
    Pubkey {
        /// MP public key (as for `seal`).
        #[arg(long)]
        mp_pubkey: String,
        /// Print a PEM SubjectPublicKeyInfo instead of hex.
        #[arg(long)]
        pem: bool,
    },
    /// Throughput measurements for `cargo xtask bench`.
    #[command(hide = true)]
    Bench {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Records per ledger batch (10 batches) and in the verify set.
        #[arg(long, default_value_t = 1000)]
        records: u64,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Print the worked examples of docs/formats.md.
    #[command(hide = true)]
    Example,
}

#[derive(Subcommand)]
enum FusesCmd {
    /// Write a fuse file for a virtual chip (random UID/OTPMK when not given).
    #[command(after_help = EXIT_CODES)]
    New {
        /// 128-bit unique ID, 32 hex digits.
        #[arg(long)]
        uid: Option<String>,
        /// SRK hash, 64 hex digits.
        #[arg(long)]
        srk_hash: String,
        /// OTPMK, 64 hex digits.
        #[arg(long)]
        otpmk: Option<String>,
        /// An open (not closed) part.
        #[arg(long)]
        open: bool,
        /// MP family secret, 64 hex digits (another silicon family / OEM key).
        #[arg(long)]
        family_secret: Option<String>,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Show a fuse file (the OTPMK and family secret are not printed).
    #[command(after_help = EXIT_CODES)]
    Show {
        /// Fuse file.
        file: PathBuf,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum LedgerCmd {
    /// Create the ledger with the OEM policy.
    Init {
        /// The OEM's MP public key (as for `seal`).
        #[arg(long)]
        mp_pubkey: String,
        /// The OEM's SRK hash, 64 hex digits.
        #[arg(long)]
        srk_hash: String,
        /// Production quota: devices the CM may register.
        #[arg(long)]
        quota: Option<u64>,
        /// Accept open (non-closed) parts (development only).
        #[arg(long)]
        allow_open: bool,
    },
    /// Verify and register ID records (files with `mfgprot-id:` lines, raw records or disk images).
    Register {
        /// Record files; every record in them is one batch (one transaction).
        #[arg(required = true)]
        records: Vec<PathBuf>,
        /// Product name recorded with the devices.
        #[arg(long, default_value = "default")]
        product: String,
        /// Production lot recorded with the devices.
        #[arg(long, default_value = "default")]
        lot: String,
    },
    /// List registered devices.
    List,
    /// Counts per product/lot, duplicates and refusals.
    Report,
    /// Allow a UID range (once any range exists, UIDs outside all ranges are refused).
    Allow {
        /// LO-HI, 32 hex digits each, inclusive.
        #[arg(long)]
        uid_range: String,
    },
}

fn print_json(v: &impl serde::Serialize) -> Result<()> {
    let s = serde_json::to_string_pretty(v).map_err(|e| Fail::new(exit::FAILURE, e.to_string()))?;
    println!("{s}");
    Ok(())
}

fn run(cli: Cli) -> Result<u8> {
    match cli.cmd {
        Cmd::Fuses(FusesCmd::New {
            uid,
            srk_hash,
            otpmk,
            open,
            family_secret,
            output,
        }) => {
            let f = FuseFile {
                uid: match uid {
                    Some(u) => keys::hex_exact("--uid", &u)?,
                    None => keys::random()?,
                },
                srk_hash: keys::hex_exact("--srk-hash", &srk_hash)?,
                otpmk: match otpmk {
                    Some(o) => keys::hex_exact("--otpmk", &o)?,
                    None => keys::random()?,
                },
                family_secret: match family_secret {
                    Some(s) => keys::hex_exact("--family-secret", &s)?,
                    None => DEFAULT_FAMILY_SECRET,
                },
                open,
            };
            write_file(&output, &f.to_bytes())?;
            println!(
                "wrote {} (uid {}, {})",
                output.display(),
                hex::encode(f.uid),
                if open { "open" } else { "closed" }
            );
        }
        Cmd::Fuses(FusesCmd::Show { file, json }) => {
            let f = FuseFile::parse(&read_file(&file)?)
                .map_err(|e| Fail::format(format!("{}: {e}", file.display())))?;
            let v = serde_json::json!({
                "uid": hex::encode(f.uid),
                "srk_hash": hex::encode(f.srk_hash),
                "security": if f.open { "open" } else { "closed" },
                "family_secret": if f.family_secret == DEFAULT_FAMILY_SECRET { "default" } else { "custom" },
                "otpmk": "set (not shown)",
            });
            if json {
                print_json(&v)?;
            } else {
                for k in ["uid", "srk_hash", "security", "family_secret", "otpmk"] {
                    println!("{k:<14}{}", v[k].as_str().unwrap_or(""));
                }
            }
        }
        Cmd::Seal {
            mp_pubkey,
            secrets,
            product,
            bundle_id,
            output,
        } => {
            let key = keys::load_pubkey(&mp_pubkey)?;
            let loaded = seal::load_manifest(&secrets)?;
            let b = seal::seal_secrets(&loaded, &product, bundle_id, &key)?;
            write_file(&output, &b)?;
            println!(
                "sealed {} secrets for product {product}, bundle id {bundle_id}: {} ({} bytes)",
                loaded.len(),
                output.display(),
                b.len()
            );
        }
        Cmd::Open {
            mp_pubkey,
            bundle,
            reveal,
            json,
        } => {
            let key = keys::load_pubkey(&mp_pubkey)?;
            let o = seal::open(&read_file(&bundle)?, &key, reveal)?;
            if json {
                print_json(&o)?;
            } else {
                println!(
                    "bundle: product {} bundle id {} ({} bytes), {} secrets",
                    o.product,
                    o.bundle_id,
                    o.size,
                    o.secrets.len()
                );
                for s in &o.secrets {
                    println!(
                        "  {:<32} {:<6} {:>6} bytes  km {}{}",
                        s.name,
                        s.kind,
                        s.size,
                        s.key_modifier,
                        if s.key_modifier_given {
                            ""
                        } else {
                            " (derived)"
                        }
                    );
                    if let Some(h) = &s.content_hex {
                        println!("    {h}");
                    }
                }
            }
        }
        Cmd::VerifyId {
            mp_pubkey,
            record,
            json,
        } => {
            let key = keys::load_pubkey(&mp_pubkey)?;
            let v = verify::Verifier::new(&key);
            let recs = verify::load_records(&record)?;
            let mut out = Vec::new();
            for r in &recs {
                v.verify(r)?;
                out.push(verify::describe(r));
            }
            if json {
                print_json(&out)?;
            } else {
                for r in &recs {
                    println!("signature OK");
                    verify::print_human(r);
                }
            }
        }
        Cmd::Ledger { db, json, cmd } => {
            let mut c = ledger::open_db(&db)?;
            match cmd {
                LedgerCmd::Init {
                    mp_pubkey,
                    srk_hash,
                    quota,
                    allow_open,
                } => {
                    let key = keys::load_pubkey(&mp_pubkey)?;
                    let srk = keys::hex_exact("--srk-hash", &srk_hash)?;
                    ledger::init(&mut c, &key, &srk, quota, allow_open)?;
                    println!("ledger {} initialised", db.display());
                }
                LedgerCmd::Allow { uid_range } => {
                    let (lo, hi) = ledger::allow(&mut c, &uid_range)?;
                    println!("allowed UID range {lo}-{hi}");
                }
                LedgerCmd::Register {
                    records,
                    product,
                    lot,
                } => {
                    let mut recs = Vec::new();
                    for p in &records {
                        recs.extend(verify::load_records(p)?);
                    }
                    let ds = ledger::register(&mut c, &recs, &product, &lot)?;
                    if json {
                        print_json(&ds)?;
                    } else {
                        let mut so = std::io::stdout().lock();
                        for d in &ds {
                            let _ = writeln!(
                                so,
                                "{} uid {}: {}",
                                if d.accepted { "accepted" } else { "REFUSED" },
                                d.uid,
                                d.reason
                            );
                        }
                    }
                    return Ok(ledger::register_exit(&ds));
                }
                LedgerCmd::List => {
                    let v = ledger::list(&c)?;
                    if json {
                        print_json(&v)?;
                    } else {
                        for d in v.as_array().into_iter().flatten() {
                            println!(
                                "#{:<5} uid {} product {} lot {} state {} at {}",
                                d["id"],
                                d["uid"].as_str().unwrap_or(""),
                                d["product"].as_str().unwrap_or(""),
                                d["lot"].as_str().unwrap_or(""),
                                d["security_state"].as_str().unwrap_or(""),
                                d["registered_at"].as_str().unwrap_or("")
                            );
                        }
                    }
                }
                LedgerCmd::Report => {
                    let v = ledger::report(&c)?;
                    if json {
                        print_json(&v)?;
                    } else {
                        println!(
                            "devices registered: {} (quota {})",
                            v["devices"], v["quota"]
                        );
                        for r in v["per_product_lot"].as_array().into_iter().flatten() {
                            println!(
                                "  product {} lot {}: {}",
                                r["product"].as_str().unwrap_or(""),
                                r["lot"].as_str().unwrap_or(""),
                                r["devices"]
                            );
                        }
                        let refusals = v["refusals"].as_object().cloned().unwrap_or_default();
                        println!(
                            "refusals: {}",
                            refusals.values().filter_map(|x| x.as_i64()).sum::<i64>()
                        );
                        for (k, n) in refusals {
                            println!("  {k}: {n}");
                        }
                        let dups = v["duplicates"].as_array().cloned().unwrap_or_default();
                        println!("duplicate UIDs: {}", dups.len());
                        for d in dups {
                            println!(
                                "  {} ({} refused attempts)",
                                d["uid"].as_str().unwrap_or(""),
                                d["attempts"]
                            );
                        }
                        println!("audit entries: {}", v["audit_entries"]);
                    }
                }
            }
        }
        Cmd::Image {
            output,
            size,
            bundle,
            kernel,
            dtb,
            initrd,
            loader,
            boot_key,
            bootargs,
            fit,
            fit_out,
            json,
        } => {
            let rd = |p: &Option<PathBuf>| p.as_ref().map(|p| read_file(p)).transpose();
            let (b, k, d, i, l) = (
                rd(&bundle)?,
                rd(&kernel)?,
                rd(&dtb)?,
                rd(&initrd)?,
                rd(&loader)?,
            );
            let mut boot_fit = rd(&fit)?;
            if let Some(key) = &boot_key {
                let (key, key_name) = fitimage::read_key(key)?;
                let epoch = match std::env::var("SOURCE_DATE_EPOCH") {
                    Ok(v) => v
                        .parse()
                        .map_err(|_| Fail::usage("SOURCE_DATE_EPOCH is not a number"))?,
                    Err(_) => 0,
                };
                let signed = fitimage::build_signed_fit(&fitimage::FitSpec {
                    kernel: k.as_deref().unwrap_or_default(),
                    dtb: d.as_deref().unwrap_or_default(),
                    initrd: i.as_deref(),
                    bootargs: &bootargs,
                    key: &key,
                    key_name: &key_name,
                    epoch,
                })?;
                if let Some(p) = &fit_out {
                    write_file(p, &signed)?;
                }
                boot_fit = Some(signed);
            }
            let raw = boot_key.is_none();
            let spec = disk::ImageSpec {
                size: gpt::parse_size(&size)?,
                bundle: b.as_deref(),
                kernel: k.as_deref().filter(|_| raw),
                dtb: d.as_deref().filter(|_| raw),
                initrd: i.as_deref().filter(|_| raw),
                loader: l.as_deref(),
                boot_fit: boot_fit.as_deref(),
            };
            let parts = disk::build_image(&output, &spec)?;
            if json {
                print_json(&parts)?;
            } else {
                println!("wrote {} ({} bytes)", output.display(), spec.size);
                for p in parts {
                    println!(
                        "  part {} {:<12} lba {:>8}..{:<8} {}",
                        p.index, p.name, p.first_lba, p.last_lba, p.type_guid
                    );
                }
            }
        }
        Cmd::Inspect {
            image,
            mp_pubkey,
            json,
        } => {
            let key = mp_pubkey.as_deref().map(keys::load_pubkey).transpose()?;
            let v = disk::inspect(&image, key.as_ref())?;
            if json {
                print_json(&v)?;
            } else {
                disk::print_inspect(&v);
            }
        }
        Cmd::Pubkey { mp_pubkey, pem } => {
            let k = keys::load_pubkey(&mp_pubkey)?;
            if pem {
                print!("{}", keys::to_pem(&k));
            } else {
                println!("{}", hex::encode_upper(k));
            }
        }
        Cmd::Bench {
            seconds,
            records,
            json,
        } => bench::run(seconds, records, json)?,
        Cmd::Example => print!("{}", example::render()?),
    }
    Ok(exit::OK)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            });
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(f) => {
            eprintln!("mfgtool: {}", f.msg);
            ExitCode::from(f.code)
        }
    }
}
