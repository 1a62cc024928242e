//! `mfgtool ledger`: the OEM's identity ledger in SQLite.
//!
//! Rollback journal (`journal_mode=DELETE`) with `synchronous=FULL`: every
//! write command is one `BEGIN IMMEDIATE` transaction, durable when the command
//! returns; concurrent writers queue on the write lock through the busy
//! timeout instead of failing. Readers (`list`, `report`) open the file
//! read-only and create no file next to it (WAL would need a `-shm` file,
//! which a read-only user cannot create). Only `init` creates a database.

use std::path::Path;
use std::time::Duration;

use mfg_formats::identity::{IdRecord, SOC_IMX8MP};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::{Fail, Result, exit};
use crate::verify::{Bad, Input, Verifier};

/// How long a command waits for another station's write transaction.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Schema version kept in `PRAGMA user_version` (0 = the first ledger, with
/// no `bundles`/`quotas` tables).
const SCHEMA_VERSION: i64 = 3;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS policy (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    mp_pubkey TEXT NOT NULL,
    srk_hash TEXT NOT NULL,
    security_state TEXT NOT NULL,
    quota INTEGER,
    created_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS uid_ranges (
    id INTEGER PRIMARY KEY,
    lo TEXT NOT NULL,
    hi TEXT NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    id INTEGER PRIMARY KEY,
    uid TEXT NOT NULL UNIQUE,
    product TEXT NOT NULL,
    lot TEXT NOT NULL,
    bundle_id INTEGER,
    security_state TEXT NOT NULL,
    loader_version TEXT NOT NULL,
    boot_counter INTEGER NOT NULL,
    record BLOB NOT NULL,
    record_sha256 TEXT NOT NULL,
    registered_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at TEXT NOT NULL,
    action TEXT NOT NULL,
    uid TEXT,
    product TEXT,
    lot TEXT,
    decision TEXT NOT NULL,
    reason_code TEXT NOT NULL,
    reason TEXT NOT NULL,
    record_sha256 TEXT,
    device_id INTEGER
);
";

/// Added in schema version 2.
const SCHEMA_V2: &str = "
CREATE TABLE IF NOT EXISTS bundles (
    bundle_id INTEGER PRIMARY KEY,
    product TEXT NOT NULL,
    lot TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    size INTEGER NOT NULL,
    added_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS quotas (
    product TEXT NOT NULL,
    lot TEXT NOT NULL,
    quota INTEGER NOT NULL,
    set_at TEXT NOT NULL,
    PRIMARY KEY (product, lot)
);
CREATE INDEX IF NOT EXISTS devices_product_lot ON devices (product, lot);
";

/// Added in schema version 3: the production-loader measurements the OEM
/// released (a record is accepted only with one of them in its MPMR).
const SCHEMA_V3: &str = "
CREATE TABLE IF NOT EXISTS loaders (
    measurement TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    added_at TEXT NOT NULL
);
";

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ','now')";

/// How a command opens the ledger.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Access {
    /// `init`: creates the file; an existing file only with `existing`.
    Create { existing: bool },
    /// Write commands: the ledger must exist and be initialised.
    Write,
    /// `list`/`report`: read-only open; nothing is written or created.
    Read,
}

fn missing(path: &Path) -> Fail {
    Fail::usage(format!(
        "ledger database {} does not exist (mistyped --db? 'mfgtool ledger --db FILE init' creates a ledger)",
        path.display()
    ))
}

fn not_initialised(path: &Path) -> Fail {
    Fail::usage(format!(
        "{}: ledger not initialised: run 'mfgtool ledger --db FILE init' first",
        path.display()
    ))
}

fn has_table(c: &Connection, name: &str) -> Result<bool> {
    Ok(c.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [name],
        |r| r.get::<_, i64>(0),
    )? != 0)
}

fn initialised(c: &Connection) -> Result<bool> {
    Ok(has_table(c, "policy")?
        && c.query_row("SELECT count(*) FROM policy", [], |r| r.get::<_, i64>(0))? != 0)
}

/// Opens the ledger. Every mode but `Create` refuses a missing file (nothing
/// is created) and a file that holds no initialised ledger (nothing is
/// written to it). Write modes switch an older WAL ledger to the rollback
/// journal and add the tables of newer schema versions.
pub fn open_db(path: &Path, access: Access) -> Result<Connection> {
    let exists = path
        .try_exists()
        .map_err(|e| Fail::io(&path.display().to_string(), e))?;
    let flags = match access {
        Access::Create { existing } => {
            if exists && !existing {
                return Err(Fail::usage(format!(
                    "{} already exists: 'init' makes a new ledger (to initialise an existing empty database file, pass --existing)",
                    path.display()
                )));
            }
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        }
        Access::Write => OpenFlags::SQLITE_OPEN_READ_WRITE,
        Access::Read => OpenFlags::SQLITE_OPEN_READ_ONLY,
    };
    if !exists && !matches!(access, Access::Create { .. }) {
        return Err(missing(path));
    }
    let c = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    c.busy_timeout(BUSY_TIMEOUT)?;
    let ready = initialised(&c)?;
    match access {
        Access::Read | Access::Write if !ready => return Err(not_initialised(path)),
        Access::Read => return Ok(c),
        Access::Write => {}
        Access::Create { .. } => {
            if ready {
                return Err(Fail::usage(format!(
                    "{} is an initialised ledger (its policy is fixed; use a new file)",
                    path.display()
                )));
            }
            let tables: i64 =
                c.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?;
            if tables != 0 {
                return Err(Fail::usage(format!(
                    "{} is a database of something else (it has tables but no ledger policy)",
                    path.display()
                )));
            }
        }
    }
    let mode: String = c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("delete") {
        c.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get::<_, String>(0))?;
    }
    c.pragma_update(None, "synchronous", "FULL")?;
    let version: i64 = c.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if version < SCHEMA_VERSION {
        let tx = rusqlite::Transaction::new_unchecked(&c, TransactionBehavior::Immediate)?;
        tx.execute_batch(SCHEMA)?;
        tx.execute_batch(SCHEMA_V2)?;
        tx.execute_batch(SCHEMA_V3)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
        tx.commit()?;
    }
    Ok(c)
}

fn write_tx(c: &mut Connection) -> Result<rusqlite::Transaction<'_>> {
    Ok(c.transaction_with_behavior(TransactionBehavior::Immediate)?)
}

/// The OEM policy row.
pub struct Policy {
    pub mp_pubkey: [u8; 64],
    pub srk_hash: [u8; 32],
    pub security_state: String,
    pub quota: Option<i64>,
}

/// Reads the policy (fixed once `init` wrote it).
pub fn load_policy(c: &Connection) -> Result<Policy> {
    let row: Option<(String, String, String, Option<i64>)> = c
        .query_row(
            "SELECT mp_pubkey, srk_hash, security_state, quota FROM policy WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .optional()?;
    let (k, s, st, q) = row.ok_or_else(|| {
        Fail::usage("ledger not initialised: run 'mfgtool ledger --db FILE init' first")
    })?;
    let bad = || Fail::format("ledger policy row is corrupt");
    Ok(Policy {
        mp_pubkey: hex::decode(k)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(bad)?,
        srk_hash: hex::decode(s)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(bad)?,
        security_state: st,
        quota: q,
    })
}

/// `init`: stores the OEM policy (once).
pub fn init(
    c: &mut Connection,
    mp_pubkey: &[u8; 64],
    srk_hash: &[u8; 32],
    quota: Option<u64>,
    allow_open: bool,
) -> Result<()> {
    let tx = write_tx(c)?;
    let exists: i64 = tx.query_row("SELECT count(*) FROM policy", [], |r| r.get(0))?;
    if exists != 0 {
        return Err(Fail::usage(
            "ledger already initialised (its policy is fixed; use a new file)",
        ));
    }
    let quota = quota.map(|q| i64::try_from(q).unwrap_or(i64::MAX));
    tx.execute(
        &format!("INSERT INTO policy VALUES (1, ?1, ?2, ?3, ?4, {NOW})"),
        params![
            hex::encode(mp_pubkey),
            hex::encode(srk_hash),
            if allow_open { "any" } else { "closed" },
            quota
        ],
    )?;
    tx.execute(
        &format!("INSERT INTO audit (at, action, decision, reason_code, reason) VALUES ({NOW}, 'init', 'accepted', 'ok', ?1)"),
        params![format!("policy: srk {} quota {:?} state {}", hex::encode(srk_hash), quota, if allow_open { "any" } else { "closed" })],
    )?;
    tx.commit()?;
    Ok(())
}

/// `allow --uid-range A-B`.
pub fn allow(c: &mut Connection, range: &str) -> Result<(String, String)> {
    let (a, b) = range
        .split_once('-')
        .ok_or_else(|| Fail::usage("--uid-range: expected LO-HI (32 hex digits each)"))?;
    let lo = hex::encode(crate::keys::hex_exact::<16>("--uid-range LO", a)?);
    let hi = hex::encode(crate::keys::hex_exact::<16>("--uid-range HI", b)?);
    if lo > hi {
        return Err(Fail::usage("--uid-range: LO is above HI"));
    }
    let tx = write_tx(c)?;
    load_policy(&tx)?;
    tx.execute(
        &format!("INSERT INTO uid_ranges (lo, hi, added_at) VALUES (?1, ?2, {NOW})"),
        params![lo, hi],
    )?;
    tx.execute(
        &format!("INSERT INTO audit (at, action, decision, reason_code, reason) VALUES ({NOW}, 'allow', 'accepted', 'ok', ?1)"),
        params![format!("UID range {lo}-{hi}")],
    )?;
    tx.commit()?;
    Ok((lo, hi))
}

/// Checks a lot (or product) label: 1..=32 of `[A-Za-z0-9._-]`, the
/// product id's alphabet.
pub fn check_label(what: &str, s: &str) -> Result<()> {
    if s.is_empty()
        || s.len() > 32
        || !s
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(Fail::usage(format!(
            "{what} '{s}': expected 1..=32 of [A-Za-z0-9._-]"
        )));
    }
    Ok(())
}

/// A bundle the OEM sealed, as the ledger knows it.
#[derive(serde::Serialize, Clone, Debug)]
pub struct Bundle {
    pub bundle_id: u64,
    pub product: String,
    pub lot: String,
    pub sha256: String,
    pub size: usize,
    /// True when this exact bundle was already registered (nothing changed).
    pub already: bool,
}

/// Refuses early (before sealing) a bundle id the ledger already holds, and
/// an MP public key that is not the ledger's.
pub fn check_new_bundle(c: &Connection, mp_pubkey: &[u8; 64], bundle_id: u64) -> Result<()> {
    let policy = load_policy(c)?;
    if &policy.mp_pubkey != mp_pubkey {
        return Err(Fail::usage(
            "--mp-pubkey is not the ledger's MP public key: a bundle sealed for it would never match this ledger's devices",
        ));
    }
    let row: Option<(String, String)> = c
        .query_row(
            "SELECT product, lot FROM bundles WHERE bundle_id = ?1",
            [bundle_id as i64],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((product, lot)) = row {
        return Err(Fail::new(
            exit::REFUSED,
            format!(
                "bundle id {bundle_id} is already registered in the ledger (product {product}, lot {lot}): choose a new bundle id"
            ),
        ));
    }
    Ok(())
}

/// `add-bundle` (and `seal --ledger`): authenticates the sealed bundle with
/// the ledger's MP public key and records its id, product (from the
/// authenticated header), lot and SHA-256. Registering the same bundle again
/// changes nothing; another bundle under a registered id is refused.
pub fn add_bundle(c: &mut Connection, sealed: &[u8], lot: &str) -> Result<Bundle> {
    check_label("lot", lot)?;
    let policy = load_policy(c)?;
    let opened = crate::seal::open(sealed, &policy.mp_pubkey, false).map_err(|e| {
        if e.code == exit::AUTH {
            Fail::new(
                exit::AUTH,
                format!(
                    "{}: the bundle is not sealed for this ledger's MP public key (or was altered)",
                    e.msg
                ),
            )
        } else {
            e
        }
    })?;
    let sha256 = hex::encode(Sha256::digest(sealed));
    let mut b = Bundle {
        bundle_id: opened.bundle_id,
        product: opened.product,
        lot: lot.to_string(),
        sha256,
        size: sealed.len(),
        already: false,
    };
    let tx = write_tx(c)?;
    let row: Option<(String, String, String)> = tx
        .query_row(
            "SELECT product, lot, sha256 FROM bundles WHERE bundle_id = ?1",
            [b.bundle_id as i64],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    if let Some((product, lot, sha)) = row {
        if sha == b.sha256 && lot == b.lot {
            b.already = true;
            return Ok(b);
        }
        let why = if sha == b.sha256 {
            format!(
                "bundle id {} is already registered for lot {lot}",
                b.bundle_id
            )
        } else {
            format!(
                "bundle id {} is already registered with another bundle (product {product}, lot {lot}, sha256 {sha})",
                b.bundle_id
            )
        };
        tx.execute(
            &format!("INSERT INTO audit (at, action, product, lot, decision, reason_code, reason) VALUES ({NOW}, 'add-bundle', ?1, ?2, 'refused', 'bundle', ?3)"),
            params![b.product, b.lot, why],
        )?;
        tx.commit()?;
        return Err(Fail::new(exit::REFUSED, why));
    }
    tx.execute(
        &format!("INSERT INTO bundles VALUES (?1, ?2, ?3, ?4, ?5, {NOW})"),
        params![
            b.bundle_id as i64,
            b.product,
            b.lot,
            b.sha256,
            b.size as i64
        ],
    )?;
    tx.execute(
        &format!("INSERT INTO audit (at, action, product, lot, decision, reason_code, reason) VALUES ({NOW}, 'add-bundle', ?1, ?2, 'accepted', 'ok', ?3)"),
        params![
            b.product,
            b.lot,
            format!("bundle id {} sha256 {} ({} bytes)", b.bundle_id, b.sha256, b.size)
        ],
    )?;
    tx.commit()?;
    Ok(b)
}

/// `quota --product P [--lot L] N`: at most N devices of that product and
/// lot (of the product, without a lot).
pub fn set_quota(c: &mut Connection, product: &str, lot: Option<&str>, n: u64) -> Result<()> {
    check_label("--product", product)?;
    if let Some(l) = lot {
        check_label("--lot", l)?;
    }
    let n = i64::try_from(n).unwrap_or(i64::MAX);
    let tx = write_tx(c)?;
    load_policy(&tx)?;
    tx.execute(
        &format!("INSERT INTO quotas VALUES (?1, ?2, ?3, {NOW}) ON CONFLICT (product, lot) DO UPDATE SET quota = excluded.quota, set_at = excluded.set_at"),
        params![product, lot.unwrap_or(""), n],
    )?;
    tx.execute(
        &format!("INSERT INTO audit (at, action, product, lot, decision, reason_code, reason) VALUES ({NOW}, 'quota', ?1, ?2, 'accepted', 'ok', ?3)"),
        params![product, lot, format!("quota {n}")],
    )?;
    tx.commit()?;
    Ok(())
}

/// A released production-loader measurement.
#[derive(serde::Serialize, Clone, Debug)]
pub struct Release {
    pub measurement: String,
    pub source: String,
    pub added_at: Option<String>,
    /// True when it was already released (nothing changed).
    pub already: bool,
}

/// `release`: adds a production-loader measurement (what that loader locks
/// into the MPMR); records are accepted only with a released one. Releasing
/// one again changes nothing.
pub fn release(c: &mut Connection, measurement: &[u8; 32], source: &str) -> Result<Release> {
    let m = hex::encode(measurement);
    let tx = write_tx(c)?;
    load_policy(&tx)?;
    let row: Option<(String, String)> = tx
        .query_row(
            "SELECT source, added_at FROM loaders WHERE measurement = ?1",
            [&m],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    if let Some((source, at)) = row {
        return Ok(Release {
            measurement: m,
            source,
            added_at: Some(at),
            already: true,
        });
    }
    tx.execute(
        &format!("INSERT INTO loaders VALUES (?1, ?2, {NOW})"),
        params![m, source],
    )?;
    tx.execute(
        &format!("INSERT INTO audit (at, action, decision, reason_code, reason) VALUES ({NOW}, 'release', 'accepted', 'ok', ?1)"),
        params![format!("loader measurement {m} ({source})")],
    )?;
    tx.commit()?;
    Ok(Release {
        measurement: m,
        source: source.to_string(),
        added_at: None,
        already: false,
    })
}

/// `release --list` (read-only).
pub fn releases(c: &Connection) -> Result<Vec<Release>> {
    if !has_table(c, "loaders")? {
        return Ok(Vec::new());
    }
    Ok(c.prepare(
        "SELECT measurement, source, added_at FROM loaders ORDER BY added_at, measurement",
    )?
    .query_map([], |r| {
        Ok(Release {
            measurement: r.get(0)?,
            source: r.get(1)?,
            added_at: Some(r.get(2)?),
            already: true,
        })
    })?
    .collect::<std::result::Result<_, _>>()?)
}

/// The result of one input line (or raw record / disk image) of a
/// `register` batch.
#[derive(serde::Serialize, Clone, Debug)]
pub struct Decision {
    /// The input file.
    pub source: String,
    /// Line in the input file (text input only).
    pub line: Option<usize>,
    /// `registered`, `already-registered`, `refused` or `malformed`.
    pub result: &'static str,
    pub uid: Option<String>,
    /// Registered now or before (same record): counts as success.
    pub accepted: bool,
    pub reason_code: &'static str,
    pub reason: String,
    pub device_id: Option<i64>,
    pub product: Option<String>,
    pub lot: Option<String>,
    pub bundle_id: Option<u64>,
}

impl Decision {
    /// Where the input came from, for human output.
    pub fn location(&self) -> String {
        match self.line {
            Some(n) => format!("{} line {n}", self.source),
            None => self.source.clone(),
        }
    }
}

/// What the station may claim about a batch: only narrows what is accepted.
#[derive(Default)]
pub struct Expect<'a> {
    pub product: Option<&'a str>,
    pub lot: Option<&'a str>,
}

enum Verdict {
    Register,
    Same(i64, String),
    Refuse(&'static str, String),
}

/// The bundle's product and lot: what the record is registered under.
struct Owner {
    product: String,
    lot: String,
    bundle_id: u64,
}

fn refuse(code: &'static str, why: String) -> Result<(Option<Owner>, Verdict)> {
    Ok((None, Verdict::Refuse(code, why)))
}

#[allow(clippy::too_many_arguments)]
fn check(
    tx: &rusqlite::Transaction<'_>,
    policy: &Policy,
    loaders: &[String],
    ranges: &[(String, String)],
    expect: &Expect<'_>,
    r: &IdRecord,
    uid: &str,
    sha: &str,
) -> Result<(Option<Owner>, Verdict)> {
    let m = &r.message;
    let mpmr = hex::encode(r.mpmr);
    if !loaders.contains(&mpmr) {
        return refuse(
            "loader",
            if loaders.is_empty() {
                format!(
                    "MPMR {mpmr} is not a released loader's measurement (none released: 'mfgtool ledger release --loader loader.elf')"
                )
            } else {
                format!("MPMR {mpmr} is not a released loader's measurement")
            },
        );
    }
    if m.soc != SOC_IMX8MP {
        return refuse("soc", format!("SoC code {:#06x} is not an i.MX8MP", m.soc));
    }
    if m.srk_hash != policy.srk_hash {
        return refuse(
            "srk",
            format!(
                "SRK hash {} is not the OEM's ({})",
                hex::encode(m.srk_hash),
                hex::encode(policy.srk_hash)
            ),
        );
    }
    if policy.security_state == "closed" && m.security_state.as_str() != "closed" {
        return refuse(
            "state",
            format!(
                "security state '{}' is not 'closed'",
                m.security_state.as_str()
            ),
        );
    }
    if !ranges.is_empty()
        && !ranges
            .iter()
            .any(|(lo, hi)| lo.as_str() <= uid && uid <= hi.as_str())
    {
        return refuse(
            "range",
            format!("UID {uid} is outside every allowed UID range"),
        );
    }
    let Some(bundle_id) = m.bundle_id else {
        return refuse(
            "bundle",
            "the record names no bundle (only records of a provisioning from a bundle the OEM sealed are registered)".into(),
        );
    };
    let row: Option<(String, String, String)> = tx
        .prepare_cached("SELECT product, lot, sha256 FROM bundles WHERE bundle_id = ?1")?
        .query_row([bundle_id as i64], |x| {
            Ok((x.get(0)?, x.get(1)?, x.get(2)?))
        })
        .optional()?;
    let Some((product, lot, bundle_sha)) = row else {
        return refuse(
            "bundle",
            format!(
                "bundle id {bundle_id} is not a bundle the OEM sealed (not in this ledger: 'seal --ledger' or 'ledger add-bundle' registers one)"
            ),
        );
    };
    // The signed identity binds the bundle's SHA-256 and product: a record
    // of a bundle the CM sealed itself under the OEM's bundle id (attack 6)
    // does not match the bundle the OEM registered.
    let digest = hex::encode(m.bundle_digest);
    if digest != bundle_sha {
        let other: Option<i64> = tx
            .prepare_cached("SELECT bundle_id FROM bundles WHERE sha256 = ?1")?
            .query_row([&digest], |x| x.get(0))
            .optional()?;
        return refuse(
            "bundle",
            match other {
                Some(o) => format!(
                    "bundle digest {digest} is bundle id {o}'s, not bundle id {bundle_id}'s ({bundle_sha})"
                ),
                None => format!(
                    "bundle digest {digest} matches no bundle the OEM sealed (bundle id {bundle_id} is {bundle_sha})"
                ),
            },
        );
    }
    if m.product_str() != product {
        return refuse(
            "bundle",
            format!(
                "the record's product {} is not bundle id {bundle_id}'s product {product}",
                m.product_str()
            ),
        );
    }
    if let Some(p) = expect.product.filter(|p| *p != product) {
        return refuse(
            "product",
            format!(
                "bundle id {bundle_id} is product {product}, not {p} (the product comes from the bundle, not from --product)"
            ),
        );
    }
    if let Some(l) = expect.lot.filter(|l| *l != lot) {
        return refuse(
            "lot",
            format!(
                "bundle id {bundle_id} is lot {lot}, not {l} (the lot comes from the bundle, not from --lot)"
            ),
        );
    }
    let owner = Owner {
        product,
        lot,
        bundle_id,
    };
    let earlier: Option<(i64, String, String, String, String)> = tx
        .prepare_cached(
            "SELECT id, product, lot, registered_at, record_sha256 FROM devices WHERE uid = ?1",
        )?
        .query_row([uid], |x| {
            Ok((x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?, x.get(4)?))
        })
        .optional()?;
    if let Some((id, product, lot, at, earlier_sha)) = earlier {
        let v = if earlier_sha == sha {
            Verdict::Same(
                id,
                format!(
                    "already registered (same record) as device #{id} (product {product}, lot {lot}, at {at})"
                ),
            )
        } else {
            Verdict::Refuse(
                "duplicate",
                format!(
                    "UID {uid} already registered as device #{id} (product {product}, lot {lot}, at {at}): clone or replay"
                ),
            )
        };
        return Ok((Some(owner), v));
    }
    if let Some(q) = policy.quota {
        let n: i64 = tx
            .prepare_cached("SELECT count(*) FROM devices")?
            .query_row([], |x| x.get(0))?;
        if n >= q {
            return Ok((
                Some(owner),
                Verdict::Refuse(
                    "quota",
                    format!("over the production quota ({q} devices already registered)"),
                ),
            ));
        }
    }
    // The lot's quota, then the product's (a quota row with lot '').
    let lot_of = owner.lot.clone();
    for lot in [lot_of.as_str(), ""] {
        let q: Option<i64> = tx
            .prepare_cached("SELECT quota FROM quotas WHERE product = ?1 AND lot = ?2")?
            .query_row(params![owner.product, lot], |x| x.get(0))
            .optional()?;
        let Some(q) = q else { continue };
        let (n, scope): (i64, String) = if lot.is_empty() {
            (
                tx.prepare_cached("SELECT count(*) FROM devices WHERE product = ?1")?
                    .query_row([&owner.product], |x| x.get(0))?,
                format!("product {}", owner.product),
            )
        } else {
            (
                tx.prepare_cached("SELECT count(*) FROM devices WHERE product = ?1 AND lot = ?2")?
                    .query_row(params![owner.product, lot], |x| x.get(0))?,
                format!("product {} lot {lot}", owner.product),
            )
        };
        if n >= q {
            let why = format!("over the quota of {scope} ({q} devices already registered)");
            return Ok((Some(owner), Verdict::Refuse("quota", why)));
        }
    }
    Ok((Some(owner), Verdict::Register))
}

/// `register`: every input is checked and gets its own result; a bad one
/// never stops the batch. Signatures are verified before the write
/// transaction; the ledger checks and inserts run in one `BEGIN IMMEDIATE`
/// transaction, so concurrent stations queue instead of failing.
pub fn register(
    c: &mut Connection,
    inputs: &[Input],
    expect: &Expect<'_>,
) -> Result<Vec<Decision>> {
    let policy = load_policy(c)?;
    let verifier = Verifier::new(&policy.mp_pubkey);
    let verified: Vec<Option<std::result::Result<(), String>>> = inputs
        .iter()
        .map(|i| {
            i.record
                .as_ref()
                .ok()
                .map(|r| verifier.verify(r).map_err(|e| e.msg))
        })
        .collect();
    let tx = write_tx(c)?;
    let ranges: Vec<(String, String)> = tx
        .prepare("SELECT lo, hi FROM uid_ranges")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    let loaders: Vec<String> = tx
        .prepare("SELECT measurement FROM loaders")?
        .query_map([], |r| r.get(0))?
        .collect::<std::result::Result<_, _>>()?;
    let mut out = Vec::with_capacity(inputs.len());
    for (input, sig) in inputs.iter().zip(verified) {
        let mut d = Decision {
            source: input.source.clone(),
            line: input.line,
            result: "refused",
            uid: None,
            accepted: false,
            reason_code: "malformed",
            reason: String::new(),
            device_id: None,
            product: None,
            lot: None,
            bundle_id: None,
        };
        let mut sha = None;
        match (&input.record, sig) {
            (Err(Bad::Sealed(why)), _) => {
                d.reason_code = "sealed";
                d.reason = why.clone();
            }
            (Err(Bad::Malformed(why)), _) => {
                d.result = "malformed";
                d.reason = match input.line {
                    Some(n) => format!("malformed line {n} of {}: {why}", input.source),
                    None => format!("malformed input {}: {why}", input.source),
                };
            }
            (Ok(_), None) => unreachable!("a parsed record is always verified"),
            (Ok(r), Some(sig)) => {
                let uid = hex::encode(r.message.uid);
                let bytes = r.to_bytes();
                let digest = hex::encode(Sha256::digest(bytes));
                d.uid = Some(uid.clone());
                let (owner, verdict) = match sig {
                    Err(e) => (None, Verdict::Refuse("signature", e)),
                    Ok(()) => check(&tx, &policy, &loaders, &ranges, expect, r, &uid, &digest)?,
                };
                if let Some(o) = &owner {
                    d.product = Some(o.product.clone());
                    d.lot = Some(o.lot.clone());
                    d.bundle_id = Some(o.bundle_id);
                }
                match verdict {
                    Verdict::Register => {
                        let (m, o) = (&r.message, owner.as_ref().unwrap_or_else(|| unreachable!()));
                        tx.prepare_cached(&format!(
                            "INSERT INTO devices (uid, product, lot, bundle_id, security_state, loader_version, boot_counter, record, record_sha256, registered_at)
                             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, {NOW})"
                        ))?
                        .execute(params![
                            uid,
                            o.product,
                            o.lot,
                            o.bundle_id as i64,
                            m.security_state.as_str(),
                            m.loader_version_str(),
                            m.boot_counter,
                            &bytes[..],
                            digest
                        ])?;
                        let id = tx.last_insert_rowid();
                        d.result = "registered";
                        d.accepted = true;
                        d.reason_code = "ok";
                        d.reason = format!(
                            "registered as device #{id} (product {}, lot {}, bundle {})",
                            o.product, o.lot, o.bundle_id
                        );
                        d.device_id = Some(id);
                    }
                    Verdict::Same(id, why) => {
                        d.result = "already-registered";
                        d.accepted = true;
                        d.reason_code = "same-record";
                        d.reason = why;
                        d.device_id = Some(id);
                    }
                    Verdict::Refuse(code, why) => {
                        d.reason_code = code;
                        d.reason = why;
                    }
                }
                sha = Some(digest);
            }
        }
        tx.prepare_cached(&format!(
            "INSERT INTO audit (at, action, uid, product, lot, decision, reason_code, reason, record_sha256, device_id)
             VALUES ({NOW}, 'register', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ))?
        .execute(params![
            d.uid,
            d.product,
            d.lot,
            if d.accepted { "accepted" } else { "refused" },
            d.reason_code,
            d.reason,
            sha,
            d.device_id
        ])?;
        out.push(d);
    }
    tx.commit()?;
    Ok(out)
}

/// `list`: the registered devices, with the MPMR (which released loader
/// signed) and bundle digest of each record (`null` for a record of the
/// first ledger version).
pub fn list(c: &Connection) -> Result<serde_json::Value> {
    let mut st = c.prepare(
        "SELECT id, uid, product, lot, bundle_id, security_state, loader_version, registered_at, record FROM devices ORDER BY id",
    )?;
    let rows = st
        .query_map([], |r| {
            let rec = IdRecord::parse(&r.get::<_, Vec<u8>>(8)?).ok();
            Ok(json!({
                "id": r.get::<_, i64>(0)?,
                "uid": r.get::<_, String>(1)?,
                "product": r.get::<_, String>(2)?,
                "lot": r.get::<_, String>(3)?,
                "bundle_id": r.get::<_, Option<i64>>(4)?.map(|b| b as u64),
                "security_state": r.get::<_, String>(5)?,
                "loader_version": r.get::<_, String>(6)?,
                "registered_at": r.get::<_, String>(7)?,
                "mpmr": rec.as_ref().map(|x| hex::encode(x.mpmr)),
                "bundle_digest": rec.as_ref().map(|x| hex::encode(x.message.bundle_digest)),
            }))
        })?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(json!(rows))
}

/// `report`: counts per product/lot, bundles, quotas, duplicates, refusals by reason.
pub fn report(c: &Connection) -> Result<serde_json::Value> {
    let policy = load_policy(c)?;
    let per_lot = c
        .prepare("SELECT product, lot, count(*) FROM devices GROUP BY product, lot ORDER BY product, lot")?
        .query_map([], |r| {
            Ok(json!({"product": r.get::<_, String>(0)?, "lot": r.get::<_, String>(1)?, "devices": r.get::<_, i64>(2)?}))
        })?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let refusals = c
        .prepare("SELECT reason_code, count(*) FROM audit WHERE decision = 'refused' GROUP BY reason_code ORDER BY reason_code")?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let duplicates = c
        .prepare("SELECT uid, count(*) FROM audit WHERE reason_code = 'duplicate' GROUP BY uid ORDER BY uid")?
        .query_map([], |r| Ok(json!({"uid": r.get::<_, String>(0)?, "attempts": r.get::<_, i64>(1)?})))?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    // A ledger made before schema version 2 has no bundles/quotas until its
    // next write; read-only commands do not add them.
    let (bundles, quotas) = if has_table(c, "bundles")? {
        let bundles = c
            .prepare("SELECT bundle_id, product, lot, sha256, size, added_at FROM bundles ORDER BY bundle_id")?
            .query_map([], |r| {
                Ok(json!({
                    "bundle_id": r.get::<_, i64>(0)? as u64,
                    "product": r.get::<_, String>(1)?,
                    "lot": r.get::<_, String>(2)?,
                    "sha256": r.get::<_, String>(3)?,
                    "size": r.get::<_, i64>(4)?,
                    "added_at": r.get::<_, String>(5)?,
                }))
            })?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let quotas = c
            .prepare("SELECT q.product, q.lot, q.quota, (SELECT count(*) FROM devices d WHERE d.product = q.product AND (q.lot = '' OR d.lot = q.lot)) FROM quotas q ORDER BY q.product, q.lot")?
            .query_map([], |r| {
                let lot: String = r.get(1)?;
                Ok(json!({
                    "product": r.get::<_, String>(0)?,
                    "lot": if lot.is_empty() { serde_json::Value::Null } else { json!(lot) },
                    "quota": r.get::<_, i64>(2)?,
                    "devices": r.get::<_, i64>(3)?,
                }))
            })?
            .collect::<std::result::Result<Vec<_>, _>>()?;
        (bundles, quotas)
    } else {
        (Vec::new(), Vec::new())
    };
    let total: i64 = c.query_row("SELECT count(*) FROM devices", [], |r| r.get(0))?;
    let audit: i64 = c.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?;
    Ok(json!({
        "devices": total,
        "quota": policy.quota,
        "srk_hash": hex::encode(policy.srk_hash),
        "per_product_lot": per_lot,
        "bundles": bundles,
        "quotas": quotas,
        "refusals": refusals.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "duplicates": duplicates,
        "released_loaders": releases(c)?.iter().map(|r| json!(r.measurement)).collect::<Vec<_>>(),
        "audit_entries": audit,
    }))
}

/// Exit code for a register run: 4 if any input was refused or malformed.
pub fn register_exit(ds: &[Decision]) -> u8 {
    if ds.iter().all(|d| d.accepted) {
        exit::OK
    } else {
        exit::REFUSED
    }
}
