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
mod keyset;
mod ledger;
mod loaderimage;
mod recordkey;
mod seal;
mod sparse;
mod verify;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use error::{Fail, Result, exit, read_file, write_file};

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  I/O error or other failure
  2  command-line usage error
  3  authentication failed (bundle tag, ID-record signature, a sealed record that does not
     open with the record key)
  4  refused by ledger policy (duplicate UID, quota, SRK hash, security state, UID range,
     unknown bundle, unreleased loader); `ledger register`: at least one input line was
     refused or malformed
     (every other line was still processed: see the per-line results)
  5  malformed, truncated or inconsistent input";

#[derive(Parser)]
#[command(name = "mfgtool", version, about = "OEM host tool for i.MX8MP manufacturing protection: seal bundles, verify device IDs, ledger, disk images", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
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
        /// Also register the bundle (id, product, lot, SHA-256) in this
        /// ledger: the ledger accepts only records of bundles it knows.
        #[arg(long, requires = "lot")]
        ledger: Option<PathBuf>,
        /// Production lot the bundle is for (with --ledger).
        #[arg(long, requires = "ledger")]
        lot: Option<String>,
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
    /// Open sealed ID records (console line file, raw sealed record or disk image) with the
    /// record key, verify them and print the identity.
    #[command(after_help = EXIT_CODES)]
    VerifyId {
        /// MP public key (as for `seal`).
        #[arg(long)]
        mp_pubkey: String,
        /// The OEM record private key (P-256 PEM: PKCS#8 or SEC1) the
        /// devices seal their ID records to.
        #[arg(long, value_name = "FILE")]
        record_key: PathBuf,
        /// A file with `mfgprot-id: ...` lines (e.g. a console log), a raw
        /// sealed record, or a disk image (the record in `mfg-data`).
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
        /// Total size of a raw image, a power of two (e.g. 64M).
        #[arg(long, default_value = "64M")]
        size: String,
        /// Write an Android sparse image of exactly N 512-byte sectors
        /// instead: the eMMC user area's size, so that the backup GPT is in
        /// its last sector (for uuu's `FB: flash all`; docs/factory.md).
        #[arg(long, value_name = "N", conflicts_with = "size")]
        emmc_sectors: Option<u64>,
        /// Also write the `mfg-bundle` partition alone (its full size) to
        /// this file.
        #[arg(long, value_name = "FILE", requires = "bundle")]
        bundle_out: Option<PathBuf>,
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
        /// Open the sealed ID record with this record private key (P-256
        /// PEM) and show the identity; without it only what the device
        /// shows (state, journal) is decoded.
        #[arg(long, value_name = "FILE")]
        record_key: Option<PathBuf>,
        /// Also verify the ID record's signature with this MP public key
        /// (needs --record-key).
        #[arg(long, requires = "record_key")]
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
    /// The OEM key set (record, authority and boot keys).
    #[command(subcommand, after_help = EXIT_CODES)]
    Keys(KeysCmd),
    /// Sign a console unlock token for a production loader's challenge.
    #[command(after_help = EXIT_CODES)]
    UnlockToken {
        /// Key set directory (its authority key signs).
        #[arg(long)]
        keys: PathBuf,
        /// The device's `unlock-challenge: <UID> <nonce>` line (or just
        /// the two hex fields).
        #[arg(long)]
        challenge: String,
        /// Commands to unlock, comma-separated (md, mw, mmc, blob, mfgprot,
        /// fuse, caam, provision, boot, booti, bootargs).
        #[arg(long)]
        commands: String,
        /// Where to write the token line (`-`: stdout).
        #[arg(short, long, default_value = "-")]
        output: String,
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
enum KeysCmd {
    /// Write a new key set: keyset.toml, and NAME.pem (private, PKCS#8,
    /// mode 0600) and NAME.pub (hex X||Y) for record, authority and boot.
    #[command(after_help = EXIT_CODES)]
    New {
        /// Output directory (must not hold a key set).
        #[arg(short, long)]
        output: PathBuf,
        /// A development key set (tests, demo): a production loader build
        /// refuses it unless given --allow-dev-keys.
        #[arg(long)]
        dev: bool,
        /// The OEM's name (1..=32 of [A-Za-z0-9._-]); required without --dev.
        #[arg(long)]
        oem: Option<String>,
        /// Print the public keys as JSON.
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
        /// Overall production quota: devices the CM may register, all
        /// products together (per product and lot: `ledger quota`).
        #[arg(long)]
        quota: Option<u64>,
        /// Accept open (non-closed) parts (development only).
        #[arg(long)]
        allow_open: bool,
        /// Initialise an existing empty database file (without it, `init`
        /// refuses any existing file; an initialised ledger is always refused).
        #[arg(long)]
        existing: bool,
    },
    /// Register a sealed bundle (authenticated with the ledger's MP key):
    /// records of its bundle id are registered under its product and this lot.
    AddBundle {
        /// The sealed bundle file.
        bundle: PathBuf,
        /// Production lot the bundle is for (1..=32 of [A-Za-z0-9._-]).
        #[arg(long)]
        lot: String,
    },
    /// Set the quota of a product and lot (of the whole product without --lot).
    Quota {
        /// Product id (as in the bundles).
        #[arg(long)]
        product: String,
        /// Production lot (as given to add-bundle / seal --ledger).
        #[arg(long)]
        lot: Option<String>,
        /// Devices that may be registered.
        quota: u64,
    },
    /// Verify and register ID records (files with `mfgprot-id:` lines, raw
    /// records or disk images); every input gets its own result.
    Register {
        /// Record files; all records in them are one batch (one transaction).
        /// A malformed line or a refused record is reported and skipped.
        #[arg(required = true)]
        records: Vec<PathBuf>,
        /// The OEM record private key (P-256 PEM: PKCS#8 or SEC1) that
        /// opens the sealed records.
        #[arg(long, value_name = "FILE")]
        record_key: PathBuf,
        /// Refuse records whose bundle is not of this product (the product
        /// a device is registered under is always its bundle's).
        #[arg(long)]
        product: Option<String>,
        /// Refuse records whose bundle is not of this lot (the lot is
        /// always the bundle's).
        #[arg(long)]
        lot: Option<String>,
    },
    /// Release a production loader: records are accepted only when their
    /// MPMR is a released loader's measurement (SHA-256 of its .text and
    /// .rodata, which it locks into the MPMR at boot).
    #[command(after_help = EXIT_CODES, group(clap::ArgGroup::new("what").required(true).multiple(true).args(["loader", "measurement", "list"])))]
    Release {
        /// The loader's ELF (`loader.elf` of the build; the raw `.bin` does
        /// not say where .rodata ends): its measurement is computed.
        #[arg(long, value_name = "FILE")]
        loader: Vec<PathBuf>,
        /// A measurement, 64 hex digits (as the ledger or another tool
        /// printed it).
        #[arg(long, value_name = "HEX")]
        measurement: Vec<String>,
        /// List the released measurements (read-only).
        #[arg(long, conflicts_with_all = ["loader", "measurement"])]
        list: bool,
    },
    /// List registered devices (read-only).
    List,
    /// Counts per product/lot, bundles, quotas, duplicates and refusals (read-only).
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

fn print_bundle(b: &ledger::Bundle, db: &std::path::Path) {
    println!(
        "bundle id {} (product {}, lot {}, sha256 {}, {} bytes) {} ledger {}",
        b.bundle_id,
        b.product,
        b.lot,
        b.sha256,
        b.size,
        if b.already {
            "was already registered in"
        } else {
            "registered in"
        },
        db.display()
    );
}

fn run(cli: Cli) -> Result<u8> {
    match cli.cmd {
        Cmd::Seal {
            mp_pubkey,
            secrets,
            product,
            bundle_id,
            output,
            ledger: ledger_db,
            lot,
        } => {
            let key = keys::load_pubkey(&mp_pubkey)?;
            // The ledger is checked before anything is sealed or written.
            let mut db = match (&ledger_db, &lot) {
                (Some(path), Some(lot)) => {
                    ledger::check_label("--lot", lot)?;
                    let c = ledger::open_db(path, ledger::Access::Write)?;
                    ledger::check_new_bundle(&c, &key, bundle_id)?;
                    Some((c, path, lot))
                }
                _ => None,
            };
            let loaded = seal::load_manifest(&secrets)?;
            let b = seal::seal_secrets(&loaded, &product, bundle_id, &key)?;
            write_file(&output, &b)?;
            println!(
                "sealed {} secrets for product {product}, bundle id {bundle_id}: {} ({} bytes)",
                loaded.len(),
                output.display(),
                b.len()
            );
            if let Some((c, path, lot)) = db.as_mut() {
                let r = ledger::add_bundle(c, &b, lot).map_err(|e| {
                    Fail::new(
                        e.code,
                        format!(
                            "{} written but not registered in {}: {} (retry with 'mfgtool ledger --db {} add-bundle --lot {lot} {}')",
                            output.display(),
                            path.display(),
                            e.msg,
                            path.display(),
                            output.display()
                        ),
                    )
                })?;
                print_bundle(&r, path);
            }
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
                        if s.linux_trusted_key {
                            " (SECURE_KEY: Linux trusted key)"
                        } else if s.key_modifier_given {
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
            record_key,
            record,
            json,
        } => {
            let key = keys::load_pubkey(&mp_pubkey)?;
            let rk = recordkey::FileRecordKey::load(&record_key)?;
            let v = verify::Verifier::new(&key);
            let recs = verify::load_records(&record, &rk)?;
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
            use ledger::Access;
            let access = match &cmd {
                LedgerCmd::Init { existing, .. } => Access::Create {
                    existing: *existing,
                },
                LedgerCmd::List | LedgerCmd::Report | LedgerCmd::Release { list: true, .. } => {
                    Access::Read
                }
                _ => Access::Write,
            };
            let mut c = ledger::open_db(&db, access)?;
            match cmd {
                LedgerCmd::Init {
                    mp_pubkey,
                    srk_hash,
                    quota,
                    allow_open,
                    existing: _,
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
                LedgerCmd::AddBundle { bundle, lot } => {
                    let b = ledger::add_bundle(&mut c, &read_file(&bundle)?, &lot)?;
                    if json {
                        print_json(&b)?;
                    } else {
                        print_bundle(&b, &db);
                    }
                }
                LedgerCmd::Quota {
                    product,
                    lot,
                    quota,
                } => {
                    ledger::set_quota(&mut c, &product, lot.as_deref(), quota)?;
                    match lot {
                        Some(l) => println!("quota of product {product} lot {l}: {quota} devices"),
                        None => println!("quota of product {product} (all lots): {quota} devices"),
                    }
                }
                LedgerCmd::Release {
                    loader,
                    measurement,
                    list,
                } => {
                    if list {
                        let v = ledger::releases(&c)?;
                        if json {
                            print_json(&v)?;
                        } else {
                            for r in &v {
                                println!(
                                    "{}  {} ({})",
                                    r.measurement,
                                    r.source,
                                    r.added_at.as_deref().unwrap_or("")
                                );
                            }
                            println!("{} released loader measurements", v.len());
                        }
                        return Ok(exit::OK);
                    }
                    // Everything is read and computed before anything is written.
                    let mut todo = Vec::new();
                    for p in &loader {
                        let b = read_file(p)?;
                        if !loaderimage::is_elf(&b) {
                            return Err(Fail::format(format!(
                                "--loader {}: not an ELF file: give the loader's ELF (loader.elf of the same build), a raw Image does not say where .rodata ends",
                                p.display()
                            )));
                        }
                        let m = loaderimage::measure_elf(&b).map_err(|e| {
                            Fail::new(e.code, format!("--loader {}: {}", p.display(), e.msg))
                        })?;
                        todo.push((
                            m.measurement,
                            format!(
                                "loader {} ({:#x}..{:#x})",
                                p.display(),
                                m.image_start,
                                m.rodata_end
                            ),
                        ));
                    }
                    for h in &measurement {
                        todo.push((
                            keys::hex_exact::<32>("--measurement", h)?,
                            "--measurement".to_string(),
                        ));
                    }
                    let mut out = Vec::new();
                    for (m, source) in todo {
                        out.push(ledger::release(&mut c, &m, &source)?);
                    }
                    if json {
                        print_json(&out)?;
                    } else {
                        for r in &out {
                            println!(
                                "loader measurement {} {} ({})",
                                r.measurement,
                                if r.already {
                                    "was already released"
                                } else {
                                    "released"
                                },
                                r.source
                            );
                        }
                    }
                }
                LedgerCmd::Register {
                    records,
                    record_key,
                    product,
                    lot,
                } => {
                    let rk = recordkey::FileRecordKey::load(&record_key)?;
                    let mut per_file = Vec::new();
                    for p in &records {
                        per_file.push((p, verify::scan_inputs(p, &rk)?));
                    }
                    if per_file.iter().all(|(_, v)| v.is_empty()) {
                        return Err(Fail::format(
                            "no ID record found (expected 'mfgprot-id: <base64>' lines, a raw record or a disk image)",
                        ));
                    }
                    let mut inputs = Vec::new();
                    for (p, v) in per_file {
                        if v.is_empty() {
                            inputs.push(verify::Input {
                                source: p.display().to_string(),
                                line: None,
                                record: Err(verify::Bad::Malformed(
                                    "no ID record found in this file".into(),
                                )),
                            });
                        }
                        inputs.extend(v);
                    }
                    let expect = ledger::Expect {
                        product: product.as_deref(),
                        lot: lot.as_deref(),
                    };
                    let ds = ledger::register(&mut c, &inputs, &expect)?;
                    if json {
                        print_json(&ds)?;
                    } else {
                        let mut so = std::io::stdout().lock();
                        for d in &ds {
                            let _ = match d.result {
                                "malformed" => writeln!(
                                    so,
                                    "MALFORMED{}",
                                    d.reason.strip_prefix("malformed").unwrap_or(&d.reason)
                                ),
                                _ => writeln!(
                                    so,
                                    "{} uid {}: {}  ({})",
                                    if d.accepted { "accepted" } else { "REFUSED" },
                                    d.uid.as_deref().unwrap_or("?"),
                                    d.reason,
                                    d.location()
                                ),
                            };
                        }
                        let n = |r: &str| ds.iter().filter(|d| d.result == r).count();
                        let _ = writeln!(
                            so,
                            "batch: {} registered, {} already registered (same record), {} refused, {} malformed",
                            n("registered"),
                            n("already-registered"),
                            n("refused"),
                            n("malformed")
                        );
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
                        match v["quota"].as_i64() {
                            Some(q) => {
                                println!("devices registered: {} (overall quota {q})", v["devices"])
                            }
                            None => {
                                println!("devices registered: {} (no overall quota)", v["devices"])
                            }
                        }
                        for r in v["per_product_lot"].as_array().into_iter().flatten() {
                            println!(
                                "  product {} lot {}: {}",
                                r["product"].as_str().unwrap_or(""),
                                r["lot"].as_str().unwrap_or(""),
                                r["devices"]
                            );
                        }
                        for b in v["bundles"].as_array().into_iter().flatten() {
                            println!(
                                "  bundle {}: product {} lot {} sha256 {}",
                                b["bundle_id"],
                                b["product"].as_str().unwrap_or(""),
                                b["lot"].as_str().unwrap_or(""),
                                b["sha256"].as_str().unwrap_or("")
                            );
                        }
                        for q in v["quotas"].as_array().into_iter().flatten() {
                            println!(
                                "  quota product {} lot {}: {} of {}",
                                q["product"].as_str().unwrap_or(""),
                                q["lot"].as_str().unwrap_or("(all)"),
                                q["devices"],
                                q["quota"]
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
                        let rel = v["released_loaders"]
                            .as_array()
                            .cloned()
                            .unwrap_or_default();
                        println!("released loader measurements: {}", rel.len());
                        for m in rel {
                            println!("  {}", m.as_str().unwrap_or(""));
                        }
                        println!("audit entries: {}", v["audit_entries"]);
                    }
                }
            }
        }
        Cmd::Image {
            output,
            size,
            emmc_sectors,
            bundle_out,
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
                size: match emmc_sectors {
                    Some(n) => gpt::DiskSize::Sectors(n),
                    None => gpt::DiskSize::Bytes(gpt::parse_size(&size)?),
                },
                bundle: b.as_deref(),
                kernel: k.as_deref().filter(|_| raw),
                dtb: d.as_deref().filter(|_| raw),
                initrd: i.as_deref().filter(|_| raw),
                loader: l.as_deref(),
                boot_fit: boot_fit.as_deref(),
            };
            let parts = disk::build_image(&output, &spec)?;
            if let Some(p) = &bundle_out {
                let d = gpt::DiskImage::open(&output)?;
                let part = d.find(mfg_formats::partitions::MFG_BUNDLE.name)?;
                write_file(p, &d.read(&part, 0, part.size() as usize)?)?;
            }
            if json {
                print_json(&parts)?;
            } else {
                let size = match spec.size {
                    gpt::DiskSize::Bytes(b) => format!("{b} bytes"),
                    gpt::DiskSize::Sectors(n) => format!("sparse, {n} sectors"),
                };
                println!("wrote {} ({size})", output.display());
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
            record_key,
            mp_pubkey,
            json,
        } => {
            let key = mp_pubkey.as_deref().map(keys::load_pubkey).transpose()?;
            let rk = record_key
                .as_deref()
                .map(recordkey::FileRecordKey::load)
                .transpose()?;
            let v = disk::inspect(
                &image,
                rk.as_ref().map(|k| k as &dyn recordkey::RecordKey),
                key.as_ref(),
            )?;
            if json {
                print_json(&v)?;
            } else {
                disk::print_inspect(&v);
            }
            // Everything else is shown; a record that does not open with
            // the key given is still a refusal.
            if v["id_record"]["error"].as_str() == Some(recordkey::DOES_NOT_OPEN) {
                return Err(Fail::new(exit::AUTH, recordkey::DOES_NOT_OPEN));
            }
        }
        Cmd::Keys(KeysCmd::New {
            output,
            dev,
            oem,
            json,
        }) => {
            let (kind, oem) = match (dev, oem) {
                (true, oem) => (
                    keyset::Kind::Development,
                    oem.unwrap_or_else(|| "development".into()),
                ),
                (false, Some(oem)) => (keyset::Kind::Production, oem),
                (false, None) => {
                    return Err(Fail::usage(
                        "keys new: --oem NAME is required for a production key set (or --dev)",
                    ));
                }
            };
            let set = keyset::create(&output, kind, &oem)?;
            let mut v = serde_json::json!({
                "dir": output.display().to_string(),
                "kind": set.kind.name(),
                "oem": set.oem,
            });
            for (name, k) in keyset::KEY_NAMES.iter().zip(set.public) {
                v[*name] = hex::encode(k).into();
            }
            if json {
                print_json(&v)?;
            } else {
                println!(
                    "wrote {} key set for {} in {}",
                    kind.name(),
                    set.oem,
                    output.display()
                );
                for name in keyset::KEY_NAMES {
                    println!("{name:<10}{}", v[name].as_str().unwrap_or(""));
                }
            }
        }
        Cmd::UnlockToken {
            keys,
            challenge,
            commands,
            output,
        } => {
            let (t, line) = keyset::unlock_token(&keys, &challenge, &commands)?;
            if let Some(w) = keyset::secret_warning(t.commands) {
                eprintln!("mfgtool: warning: {w}");
            }
            match keyset::output_path(&output) {
                None => println!("{line}"),
                Some(path) => {
                    write_file(&path, format!("{line}\n").as_bytes())?;
                    let names: Vec<_> = mfg_formats::unlock::command_names(t.commands).collect();
                    println!(
                        "wrote {}: unlock token for uid {} ({})",
                        path.display(),
                        hex::encode(t.challenge.uid),
                        names.join(",")
                    );
                }
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
