//! `mfgtool image` and `mfgtool inspect`.

use std::path::Path;

use mfg_formats::area::{self, BLOCK, BlobTable, BundlePartitionHeader};
use mfg_formats::bundle::{BundleHeader, KeyModifier};
use mfg_formats::identity;
use mfg_formats::partitions;
use serde_json::json;

use crate::error::{Fail, Result};
use crate::gpt::{self, DiskImage, NewPart};
use crate::recordkey::RecordKey;

/// Inputs of `image`.
pub struct ImageSpec<'a> {
    pub size: gpt::DiskSize,
    pub bundle: Option<&'a [u8]>,
    pub kernel: Option<&'a [u8]>,
    pub dtb: Option<&'a [u8]>,
    pub initrd: Option<&'a [u8]>,
    pub loader: Option<&'a [u8]>,
    /// The signed FIT for `boot`.
    pub boot_fit: Option<&'a [u8]>,
}

/// Placeholder size of an empty kernel/dtb partition.
const EMPTY_PART: u64 = 1 << 20;

/// Builds the disk image; returns its partitions.
pub fn build_image<'a>(path: &Path, spec: &ImageSpec<'a>) -> Result<Vec<gpt::ImagePartition>> {
    let bundle_block;
    let mut bundle_content = Vec::new();
    if let Some(b) = spec.bundle {
        // Refuse garbage early: the header must parse and the length match.
        let h = BundleHeader::parse(b)?;
        if h.total_len() != b.len() {
            return Err(Fail::format("bundle: length does not match its header"));
        }
        bundle_block = BundlePartitionHeader::for_bundle(b)?.to_block();
        bundle_content.push((0u64, &bundle_block[..]));
        bundle_content.push((area::BUNDLE_OFFSET, b));
    }
    let sized = |d: Option<&[u8]>| d.map_or(EMPTY_PART, |d| d.len() as u64);
    let content = |d: Option<&'a [u8]>| d.map(|d| vec![(0u64, d)]).unwrap_or_default();
    let mut parts = vec![
        NewPart {
            def: partitions::MFG_DATA,
            size: area::MFG_DATA_BYTES,
            content: vec![],
        },
        NewPart {
            def: partitions::MFG_BUNDLE,
            size: area::MFG_BUNDLE_BYTES,
            content: bundle_content,
        },
        NewPart {
            def: partitions::KERNEL,
            size: sized(spec.kernel),
            content: content(spec.kernel),
        },
        NewPart {
            def: partitions::DTB,
            size: sized(spec.dtb),
            content: content(spec.dtb),
        },
    ];
    if let Some(i) = spec.initrd {
        parts.push(NewPart {
            def: partitions::INITRD,
            size: i.len() as u64,
            content: content(Some(i)),
        });
    }
    if let Some(f) = spec.boot_fit {
        parts.push(NewPart {
            def: partitions::BOOT,
            size: f.len() as u64,
            content: content(Some(f)),
        });
    }
    if let Some(l) = spec.loader {
        parts.push(NewPart {
            def: partitions::LOADER,
            size: l.len() as u64,
            content: content(Some(l)),
        });
    }
    gpt::write_image(path, spec.size, &parts)
}

/// The ID slot as `inspect` shows it: what anyone sees (a record sealed for
/// the OEM, its size and kind), and with the record key the identity (and
/// with the MP public key its signature check).
fn id_record(
    block: &[u8],
    record_key: Option<&dyn RecordKey>,
    mp_pubkey: Option<&[u8; 64]>,
) -> serde_json::Value {
    let sealed = match identity::sealed_from_block(block) {
        Ok(s) => s,
        Err(e) => return json!({"error": e.to_string()}),
    };
    let Some(rk) = record_key else {
        return json!({
            "sealed": "sealed for the OEM",
            "sealed_length": sealed.len(),
            "note": "the record key is needed for the rest (--record-key)",
        });
    };
    match crate::recordkey::open_record(rk, &sealed) {
        Ok(rec) => {
            let mut v = crate::verify::describe(&rec);
            v["sealed"] = json!("opened with the record key");
            if let Some(k) = mp_pubkey {
                v["signature"] = json!(match crate::verify::Verifier::new(k).verify(&rec) {
                    Ok(()) => "ok".to_string(),
                    Err(e) => e.msg,
                });
            }
            v
        }
        Err(e) => json!({"error": e.msg}),
    }
}

/// Decodes the provisioning area and bundle partition of a disk image.
pub fn inspect(
    path: &Path,
    record_key: Option<&dyn RecordKey>,
    mp_pubkey: Option<&[u8; 64]>,
) -> Result<serde_json::Value> {
    let disk = DiskImage::open(path)?;
    let data = disk.find(partitions::MFG_DATA.name)?;
    let j: Vec<Vec<u8>> = area::JOURNAL_LBA
        .iter()
        .map(|&l| disk.read(&data, l * BLOCK as u64, BLOCK))
        .collect::<Result<_>>()?;
    let copies: Vec<serde_json::Value> = j
        .iter()
        .map(|b| match area::JournalRecord::parse(b) {
            Ok(r) => json!({"valid": true, "sequence": r.sequence, "state": r.state.as_str()}),
            Err(e) if b.iter().all(|&x| x == 0) => {
                json!({"valid": false, "error": format!("erased ({e})")})
            }
            Err(e) => json!({"valid": false, "error": e.to_string()}),
        })
        .collect();
    let mut out = json!({
        "image": path.display().to_string(),
        "gpt": if disk.used_backup { "backup (primary damaged)" } else { "primary" },
        "partitions": disk.parts,
        "journal_copies": copies,
    });
    match area::select_journal(&j[0], &j[1]) {
        None => {
            out["state"] = json!("blank");
        }
        Some((r, copy)) => {
            out["state"] = json!(r.state.as_str());
            out["journal"] = json!({
                "copy": copy,
                "sequence": r.sequence,
                "bundle_id": r.bundle_id,
                "blob_count": r.blob_count,
                "last_error": r.last_error,
                "last_error_name": area::error_code::name(r.last_error),
                "boot_counter": r.boot_counter,
                "id_slot": r.id_slot,
            });
            if let Some(slot) = r.id_slot {
                let b = disk.read(
                    &data,
                    area::ID_SLOT_LBA[usize::from(slot)] * BLOCK as u64,
                    BLOCK,
                )?;
                out["id_record"] = id_record(&b, record_key, mp_pubkey);
            }
            if r.state >= area::ProvState::SecretsBlobbed {
                let tb = disk.read(
                    &data,
                    area::BLOB_TABLE_LBA * BLOCK as u64,
                    area::table_len(usize::from(r.blob_count)),
                )?;
                out["blob_table"] = match BlobTable::parse(&tb) {
                    Ok(t) if t.crc() != r.table_crc => {
                        json!({"error": "blob table CRC differs from the journal's"})
                    }
                    Ok(t) => {
                        let mut rows = Vec::new();
                        for e in t.iter() {
                            let blob = disk.read(&data, u64::from(e.offset), e.length as usize)?;
                            rows.push(json!({
                                "name": e.name(),
                                "type": e.kind.as_str(),
                                "key_modifier": hex::encode(e.key_modifier.as_bytes()),
                                "linux_trusted_key": e.key_modifier == KeyModifier::LINUX_TRUSTED,
                                "offset": e.offset,
                                "blob_length": e.length,
                                "secret_length": e.secret_len(),
                                "crc": format!("{:08x}", e.crc),
                                "crc_ok": mfg_formats::crc32(&blob) == e.crc,
                            }));
                        }
                        json!(rows)
                    }
                    Err(e) => json!({"error": e.to_string()}),
                };
            }
        }
    }
    out["bundle"] = match disk.find(partitions::MFG_BUNDLE.name) {
        Err(_) => json!({"present": false, "note": "no mfg-bundle partition"}),
        Ok(bp) => {
            let hb = disk.read(&bp, 0, BLOCK)?;
            match BundlePartitionHeader::parse(&hb) {
                Err(e) => {
                    json!({"present": false, "note": if hb.iter().all(|&x| x == 0) { "erased".to_string() } else { e.to_string() }})
                }
                Ok(h) => {
                    let b = disk.read(&bp, area::BUNDLE_OFFSET, h.bundle_len as usize)?;
                    match (h.check(&b), BundleHeader::parse(&b)) {
                        (Ok(()), Ok(bh)) => json!({
                            "present": true,
                            "length": h.bundle_len,
                            "product": bh.product(),
                            "bundle_id": bh.bundle_id,
                        }),
                        (Err(e), _) | (_, Err(e)) => {
                            json!({"present": false, "note": format!("corrupt: {e}")})
                        }
                    }
                }
            }
        }
    };
    Ok(out)
}

/// Prints `inspect`'s result for a person.
pub fn print_inspect(v: &serde_json::Value) {
    println!(
        "image: {}  (GPT: {})",
        v["image"].as_str().unwrap_or(""),
        v["gpt"].as_str().unwrap_or("")
    );
    if let Some(parts) = v["partitions"].as_array() {
        for p in parts {
            println!(
                "  part {:>2} {:<12} lba {:>8}..{:<8} {}",
                p["index"],
                p["name"].as_str().unwrap_or(""),
                p["first_lba"],
                p["last_lba"],
                p["type_guid"].as_str().unwrap_or("")
            );
        }
    }
    println!("state: {}", v["state"].as_str().unwrap_or("?"));
    if let Some(j) = v.get("journal") {
        println!(
            "journal: copy {} sequence {} bundle {} blobs {} last error {} ({})",
            j["copy"],
            j["sequence"],
            j["bundle_id"],
            j["blob_count"],
            j["last_error"],
            j["last_error_name"].as_str().unwrap_or("")
        );
    }
    if let Some(r) = v.get("id_record") {
        if let Some(e) = r.get("error") {
            println!("ID record: invalid ({})", e.as_str().unwrap_or(""));
        } else if r.get("uid").is_none() {
            println!(
                "ID record: {} ({} bytes); {}",
                r["sealed"].as_str().unwrap_or(""),
                r["sealed_length"],
                r["note"].as_str().unwrap_or("")
            );
        } else {
            if let Some(sig) = r.get("signature") {
                println!("ID record signature: {}", sig.as_str().unwrap_or(""));
            }
            println!(
                "ID record ({}): uid {} srk {} state {} loader {} product {} bundle {} digest {} mpmr {}",
                r["sealed"].as_str().unwrap_or(""),
                r["uid"].as_str().unwrap_or(""),
                r["srk_hash"].as_str().unwrap_or(""),
                r["security_state"].as_str().unwrap_or(""),
                r["loader_version"].as_str().unwrap_or(""),
                r["product"].as_str().unwrap_or(""),
                r["bundle_id"],
                r["bundle_digest"].as_str().unwrap_or("none"),
                r["mpmr"].as_str().unwrap_or("")
            );
        }
    }
    match v.get("blob_table") {
        Some(serde_json::Value::Array(rows)) => {
            println!("blob table: {} blobs", rows.len());
            for b in rows {
                println!(
                    "  {:<32} {:<6} km {}{} off {:#x} len {} crc {} {}",
                    b["name"].as_str().unwrap_or(""),
                    b["type"].as_str().unwrap_or(""),
                    b["key_modifier"].as_str().unwrap_or(""),
                    if b["linux_trusted_key"].as_bool() == Some(true) {
                        " (SECURE_KEY)"
                    } else {
                        ""
                    },
                    b["offset"].as_u64().unwrap_or(0),
                    b["blob_length"],
                    b["crc"].as_str().unwrap_or(""),
                    if b["crc_ok"].as_bool() == Some(true) {
                        "ok"
                    } else {
                        "BAD"
                    }
                );
            }
        }
        Some(t) => println!(
            "blob table: invalid ({})",
            t["error"].as_str().unwrap_or("")
        ),
        None => {}
    }
    let b = &v["bundle"];
    if b["present"].as_bool() == Some(true) {
        println!(
            "bundle: present ({} bytes, product {}, bundle id {})",
            b["length"],
            b["product"].as_str().unwrap_or(""),
            b["bundle_id"]
        );
    } else {
        println!("bundle: none ({})", b["note"].as_str().unwrap_or(""));
    }
}
