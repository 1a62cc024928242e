//! `mfgtool ledger`: the OEM's identity ledger in SQLite (WAL, one
//! transaction per command, `synchronous=FULL` so each batch is durable when
//! the command returns).

use std::path::Path;

use mfg_formats::identity::{IdRecord, SOC_IMX8MP};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::error::{Fail, Result, exit};
use crate::verify::Verifier;

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

const NOW: &str = "strftime('%Y-%m-%dT%H:%M:%fZ','now')";

/// Opens (creating) the ledger with WAL and full synchronous commits.
pub fn open_db(path: &Path) -> Result<Connection> {
    let c = Connection::open(path)?;
    c.pragma_update(None, "journal_mode", "WAL")?;
    c.pragma_update(None, "synchronous", "FULL")?;
    c.busy_timeout(std::time::Duration::from_secs(10))?;
    c.execute_batch(SCHEMA)?;
    Ok(c)
}

/// The OEM policy row.
pub struct Policy {
    pub mp_pubkey: [u8; 64],
    pub srk_hash: [u8; 32],
    pub security_state: String,
    pub quota: Option<i64>,
}

fn load_policy(c: &Connection) -> Result<Policy> {
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
    let tx = c.transaction()?;
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
    let tx = c.transaction()?;
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

/// One register decision.
#[derive(serde::Serialize, Clone, Debug)]
pub struct Decision {
    pub uid: String,
    pub accepted: bool,
    pub reason_code: &'static str,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_id: Option<i64>,
}

fn check(
    tx: &rusqlite::Transaction<'_>,
    policy: &Policy,
    verifier: &Verifier,
    ranges: &[(String, String)],
    r: &IdRecord,
    uid: &str,
) -> Result<std::result::Result<(), (&'static str, String)>> {
    if let Err(e) = verifier.verify(r) {
        return Ok(Err(("signature", e.msg)));
    }
    let m = &r.message;
    if m.soc != SOC_IMX8MP {
        return Ok(Err((
            "soc",
            format!("SoC code {:#06x} is not an i.MX8MP", m.soc),
        )));
    }
    if m.srk_hash != policy.srk_hash {
        return Ok(Err((
            "srk",
            format!(
                "SRK hash {} is not the OEM's ({})",
                hex::encode(m.srk_hash),
                hex::encode(policy.srk_hash)
            ),
        )));
    }
    if policy.security_state == "closed" && m.security_state.as_str() != "closed" {
        return Ok(Err((
            "state",
            format!(
                "security state '{}' is not 'closed'",
                m.security_state.as_str()
            ),
        )));
    }
    if !ranges.is_empty()
        && !ranges
            .iter()
            .any(|(lo, hi)| lo.as_str() <= uid && uid <= hi.as_str())
    {
        return Ok(Err((
            "range",
            format!("UID {uid} is outside every allowed UID range"),
        )));
    }
    let earlier: Option<(i64, String, String, String)> = tx
        .prepare_cached("SELECT id, product, lot, registered_at FROM devices WHERE uid = ?1")?
        .query_row([uid], |x| Ok((x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?)))
        .optional()?;
    if let Some((id, product, lot, at)) = earlier {
        return Ok(Err((
            "duplicate",
            format!(
                "UID {uid} already registered as device #{id} (product {product}, lot {lot}, at {at}): clone or replay"
            ),
        )));
    }
    if let Some(q) = policy.quota {
        let n: i64 = tx
            .prepare_cached("SELECT count(*) FROM devices")?
            .query_row([], |x| x.get(0))?;
        if n >= q {
            return Ok(Err((
                "quota",
                format!("over the production quota ({q} devices already registered)"),
            )));
        }
    }
    Ok(Ok(()))
}

/// `register`: verifies and records each record in one transaction.
pub fn register(
    c: &mut Connection,
    records: &[IdRecord],
    product: &str,
    lot: &str,
) -> Result<Vec<Decision>> {
    let tx = c.transaction()?;
    let policy = load_policy(&tx)?;
    let verifier = Verifier::new(&policy.mp_pubkey);
    let ranges: Vec<(String, String)> = tx
        .prepare("SELECT lo, hi FROM uid_ranges")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<std::result::Result<_, _>>()?;
    let mut out = Vec::with_capacity(records.len());
    for r in records {
        let uid = hex::encode(r.message.uid);
        let bytes = r.to_bytes();
        let sha = hex::encode(Sha256::digest(bytes));
        let d = match check(&tx, &policy, &verifier, &ranges, r, &uid)? {
            Ok(()) => {
                let m = &r.message;
                tx.prepare_cached(&format!(
                    "INSERT INTO devices (uid, product, lot, bundle_id, security_state, loader_version, boot_counter, record, record_sha256, registered_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, {NOW})"
                ))?
                .execute(params![
                    uid,
                    product,
                    lot,
                    m.bundle_id.map(|b| b as i64),
                    m.security_state.as_str(),
                    m.loader_version_str(),
                    m.boot_counter,
                    &bytes[..],
                    sha
                ])?;
                let id = tx.last_insert_rowid();
                Decision {
                    uid,
                    accepted: true,
                    reason_code: "ok",
                    reason: format!("registered as device #{id}"),
                    device_id: Some(id),
                }
            }
            Err((code, reason)) => Decision {
                uid,
                accepted: false,
                reason_code: code,
                reason,
                device_id: None,
            },
        };
        tx.prepare_cached(&format!(
            "INSERT INTO audit (at, action, uid, product, lot, decision, reason_code, reason, record_sha256, device_id)
             VALUES ({NOW}, 'register', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
        ))?
        .execute(params![
            d.uid,
            product,
            lot,
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

/// `list`: the registered devices.
pub fn list(c: &Connection) -> Result<serde_json::Value> {
    let mut st = c.prepare(
        "SELECT id, uid, product, lot, bundle_id, security_state, loader_version, registered_at FROM devices ORDER BY id",
    )?;
    let rows = st
        .query_map([], |r| {
            Ok(json!({
                "id": r.get::<_, i64>(0)?,
                "uid": r.get::<_, String>(1)?,
                "product": r.get::<_, String>(2)?,
                "lot": r.get::<_, String>(3)?,
                "bundle_id": r.get::<_, Option<i64>>(4)?,
                "security_state": r.get::<_, String>(5)?,
                "loader_version": r.get::<_, String>(6)?,
                "registered_at": r.get::<_, String>(7)?,
            }))
        })?
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(json!(rows))
}

/// `report`: counts per product/lot, duplicates, refusals by reason.
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
    let total: i64 = c.query_row("SELECT count(*) FROM devices", [], |r| r.get(0))?;
    let audit: i64 = c.query_row("SELECT count(*) FROM audit", [], |r| r.get(0))?;
    Ok(json!({
        "devices": total,
        "quota": policy.quota,
        "srk_hash": hex::encode(policy.srk_hash),
        "per_product_lot": per_lot,
        "refusals": refusals.iter().map(|(k, v)| (k.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
        "duplicates": duplicates,
        "audit_entries": audit,
    }))
}

/// Exit code for a register run: 4 if anything was refused.
pub fn register_exit(ds: &[Decision]) -> u8 {
    if ds.iter().all(|d| d.accepted) {
        exit::OK
    } else {
        exit::REFUSED
    }
}
