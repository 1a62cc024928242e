//! Read-only views of the provisioning area: `provision status`,
//! `provision verify`, and the summary Linux is told in `/chosen`.

use crate::disk::{Disk, Layout};
use crate::error::FlowError;
use crate::flow::{BLOB_AT, BLOB_BUF, SCRATCH_LEN, bundle_header, read_journal};
use crate::hw::{Console, Hardware, Storage};
use crate::{outln, scrub};
use mfg_formats::area::{
    self, BLOB_TABLE_LBA, BLOCK, BlobTable, ID_SLOT_LBA, ProvState, TABLE_MAX_LEN,
};
use mfg_formats::identity;

/// What Linux is told about provisioning in `/chosen` (no secrets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Summary {
    /// Journal state.
    pub state: ProvState,
    /// GPT partition index (1-based) of `mfg-data`.
    pub partition_index: u32,
    /// Byte offset of the blob table inside `mfg-data`.
    pub table_offset: u64,
    /// Number of blobs.
    pub blob_count: u16,
    /// The device UID.
    pub uid: [u8; 16],
}

/// Reads the provisioning state for the Linux handoff; `None` without an
/// `mfg-data` partition. `uid` is the fuses' (zero without them).
pub fn summary<S: Storage>(dev: &mut S, uid: [u8; 16]) -> Option<Summary> {
    let l = Layout::find(dev).ok()?;
    let mut d = Disk { dev, obs: &mut () };
    let j = read_journal(&mut d, &l).ok()?;
    Some(Summary {
        state: j.rec.state,
        partition_index: l.data_index,
        table_offset: BLOB_TABLE_LBA * BLOCK as u64,
        blob_count: j.rec.blob_count,
        uid,
    })
}

/// `provision status`: state, ID record, blob table, bundle presence.
pub fn status<S: Storage>(dev: &mut S, out: &mut dyn Console) -> Result<(), FlowError> {
    let l = Layout::find(dev)?;
    let mut d = Disk { dev, obs: &mut () };
    let j = read_journal(&mut d, &l)?;
    let hdr = bundle_header(&mut d, &l)?;
    let r = j.rec;
    outln!(out, "state        : {}", r.state.as_str());
    match j.copy {
        Some(c) => outln!(
            out,
            "journal      : sequence {}, copy {}, boot counter {}",
            r.sequence,
            c,
            r.boot_counter
        ),
        None => outln!(out, "journal      : blank"),
    }
    outln!(
        out,
        "last error   : {}",
        area::error_code::name(r.last_error)
    );
    if let Some(slot) = r.id_slot {
        let mut b = [0u8; BLOCK];
        d.read(l.data, ID_SLOT_LBA[usize::from(slot)], &mut b)?;
        // Sealed to the OEM record key: the device cannot read it back, and
        // says only what its journal knows.
        match identity::sealed_from_block(&b) {
            Ok(_) => outln!(
                out,
                "ID record    : slot {}, sealed for the OEM, bundle {}, boot counter {}",
                slot,
                r.bundle_id.unwrap_or(0),
                r.boot_counter
            ),
            Err(e) => outln!(out, "ID record    : slot {} unreadable: {}", slot, e),
        }
    }
    if r.blob_count > 0 {
        let mut t = [0u8; TABLE_MAX_LEN.next_multiple_of(BLOCK)];
        d.read(l.data, BLOB_TABLE_LBA, &mut t)?;
        match BlobTable::parse(&t) {
            Ok(table) => {
                outln!(
                    out,
                    "blob table   : {} blob(s), crc 0x{:08x}",
                    table.len(),
                    table.crc()
                );
                for (i, e) in table.iter().enumerate() {
                    outln!(
                        out,
                        "  {:2} {:<32} {:<6} {:6} bytes at 0x{:06x}",
                        i,
                        e.name(),
                        e.kind.as_str(),
                        e.secret_len(),
                        e.offset
                    );
                }
            }
            Err(e) => outln!(out, "blob table   : unreadable: {}", e),
        }
    }
    match hdr {
        Some(h) => outln!(out, "bundle       : present ({} bytes)", h.bundle_len),
        None => outln!(out, "bundle       : absent"),
    }
    Ok(())
}

/// `provision verify`: decapsulates every blob; reports, never prints a
/// secret (a development build prints each secret's CRC-32). Returns the
/// number of failed blobs.
pub fn verify<S: Storage>(
    dev: &mut S,
    hw: Hardware<'_>,
    out: &mut dyn Console,
    scratch: &mut [u8],
    production: bool,
) -> Result<usize, FlowError> {
    let caam = match hw {
        Hardware::Available { caam, .. } => caam,
        Hardware::Unavailable(e) => return Err(FlowError::NoSecurityHw(e)),
    };
    let l = Layout::find(dev)?;
    let mut d = Disk { dev, obs: &mut () };
    let j = read_journal(&mut d, &l)?;
    if j.rec.blob_count == 0 {
        outln!(
            out,
            "provision verify: no blobs (state {})",
            j.rec.state.as_str()
        );
        return Ok(0);
    }
    let mut t = [0u8; TABLE_MAX_LEN.next_multiple_of(BLOCK)];
    d.read(l.data, BLOB_TABLE_LBA, &mut t)?;
    let table = BlobTable::parse(&t).map_err(FlowError::Area)?;
    if table.crc() != j.rec.table_crc {
        return Err(FlowError::ReadBack(
            "blob table (CRC differs from the journal's)",
        ));
    }
    if scratch.len() < SCRATCH_LEN {
        return Err(FlowError::Partition("no scratch RAM"));
    }
    let (blob, plain_buf) = scratch[BLOB_AT..].split_at_mut(BLOB_BUF);
    let mut failed = 0;
    for (i, e) in table.iter().enumerate() {
        let n = e.length as usize;
        d.read(
            l.data,
            u64::from(e.offset) / BLOCK as u64,
            &mut blob[..n.next_multiple_of(BLOCK)],
        )?;
        let _ = write!(out, "  {:2} {:<32} ", i, e.name());
        if mfg_formats::crc32(&blob[..n]) != e.crc {
            failed += 1;
            outln!(out, "FAILED: blob CRC mismatch (corrupted on eMMC)");
            continue;
        }
        let plain = &mut plain_buf[..e.secret_len()];
        match caam.blob_decap(e.key_modifier.as_bytes(), &blob[..n], plain) {
            Ok(_) => {
                let crc = mfg_formats::crc32(plain);
                scrub(plain);
                if production {
                    outln!(out, "ok");
                } else {
                    outln!(out, "ok (secret crc32 0x{:08x})", crc);
                }
            }
            Err(err) => {
                scrub(plain);
                failed += 1;
                outln!(out, "FAILED: {}", err);
            }
        }
    }
    outln!(
        out,
        "provision verify: {} of {} blob(s) ok",
        table.len() - failed,
        table.len()
    );
    Ok(failed)
}
