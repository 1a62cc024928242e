//! The worked examples of docs/formats.md, generated from the code so the
//! document stays true (a test compares them with the document).

use std::fmt::Write;

use mfg_formats::area::{self, BlobEntry, JournalRecord, ProvState};
use mfg_formats::bundle::{self, KeyModifier, SealParams, SecretSpec, SecretType};
use mfg_formats::identity::{self, IdentityMessage, SOC_IMX8MP, SecurityState};
use mfg_formats::sealed;
use sha2::Digest;

use crate::error::Result;

/// Hex dump, 16 bytes a line, offsets in hex.
pub fn dump(b: &[u8]) -> String {
    let mut s = String::new();
    for (i, c) in b.chunks(16).enumerate() {
        let _ = write!(s, "{:04x}:", i * 16);
        for x in c {
            let _ = write!(s, " {x:02x}");
        }
        s.push('\n');
    }
    s
}

fn block(title: &str, body: &str) -> String {
    format!("{title}\n\n```text\n{body}```\n\n")
}

/// Renders every example.
pub fn render() -> Result<String> {
    let mut out = String::new();
    let key = crate::bench::test_key();
    let pk = crate::bench::pubkey_of(&key);
    out += &block(
        "MP public key X||Y (of the test private key `3c` x 32; never a real key):",
        &format!("{}\n", hex::encode(pk)),
    );

    // Bundle.
    let wifi: Vec<u8> = (0u8..16).collect();
    let specs = [
        SecretSpec {
            name: "wifi-key",
            kind: SecretType::Raw,
            key_modifier: None,
            data: &wifi,
        },
        SecretSpec {
            name: "cloud.token",
            kind: SecretType::Opaque,
            key_modifier: Some([0xff; 16].into()),
            data: b"hello",
        },
    ];
    let salt: [u8; 32] = core::array::from_fn(|i| i as u8);
    let nonce: [u8; 12] = core::array::from_fn(|i| 0xa0 + i as u8);
    let params = SealParams {
        product: "widget-9000",
        bundle_id: 42,
        label: bundle::DEFAULT_LABEL,
        salt,
        nonce,
    };
    out += &format!(
        "Bundle inputs: product `widget-9000`, bundle id 42, label `{}`, salt `{}`, nonce `{}`; \
         secret `wifi-key` (raw, bytes 00..0f, derived key modifier), secret `cloud.token` \
         (opaque, ASCII `hello`, key modifier ff x 16 given).\n\n",
        bundle::DEFAULT_LABEL,
        hex::encode(salt),
        hex::encode(nonce)
    );
    out += &block(
        "Derived key modifier of `wifi-key` = SHA-256(\"mfgprot key modifier v1\\0\" || \"wifi-key\")[0..16]:",
        &format!(
            "{}\n",
            hex::encode(bundle::derive_key_modifier(b"wifi-key"))
        ),
    );
    let mut info = Vec::new();
    info.extend_from_slice(bundle::DEFAULT_LABEL.as_bytes());
    info.extend_from_slice(b"widget-9000");
    info.extend_from_slice(&bundle::VERSION.to_le_bytes());
    out += &block(
        "HKDF info = label || product id || version (u16 LE):",
        &dump(&info),
    );
    let mut sealed = vec![0u8; bundle::sealed_len(&specs)?];
    bundle::seal(&mut sealed, &params, &specs, &pk)?;
    let header = bundle::BundleHeader::parse(&sealed)?;
    let k = bundle::derive_bundle_key(&pk, &header);
    out += &block(
        "Bundle key = HKDF-SHA256(IKM = X||Y, salt, info), 32 bytes:",
        &format!("{}\n", hex::encode(*k)),
    );
    let mut pt = vec![0u8; bundle::plaintext_len(&specs)?];
    bundle::write_secret_list(&mut pt, &specs)?;
    out += &block(
        "Plaintext secret list (encrypted in the bundle):",
        &dump(&pt),
    );
    out += &block(
        "Sealed bundle (header 0x00..0x7f, ciphertext, 16-byte tag):",
        &dump(&sealed),
    );

    // Identity.
    let bundle_digest: [u8; 32] = sha2::Sha256::digest(&sealed).into();
    let mut m = IdentityMessage {
        soc: SOC_IMX8MP,
        uid: core::array::from_fn(|i| 0x10 + i as u8),
        srk_hash: [0x5a; 32],
        security_state: SecurityState::Closed,
        boot_counter: 1,
        loader_version: [0; 16],
        product: [0; 32],
        bundle_id: Some(42),
        bundle_digest,
        station_nonce: None,
    };
    m.set_loader_version("0.1.0");
    m.set_product("widget-9000");
    let mpmr = [0x6d; 32];
    let r = crate::verify::sign_record(&key, m, mpmr);
    out += &format!(
        "Identity: UID `{}`, SRK hash 5a x 32, closed, boot counter 1, loader `0.1.0`, product \
         `widget-9000`, bundle 42 with the SHA-256 of the sealed bundle above (`{}`), no station \
         nonce, MPMR 6d x 32 (standing in for a loader measurement); signed with the test key \
         (RFC 6979 deterministic ECDSA).\n\n",
        hex::encode(r.message.uid),
        hex::encode(bundle_digest)
    );
    out += &block(
        &format!("Identity message ({} bytes):", identity::MESSAGE_LEN),
        &dump(&r.message.to_bytes()),
    );
    let record = r.to_bytes();
    out += &block(
        &format!(
            "ID record ({} bytes; the sealed record's plaintext):",
            identity::RECORD_LEN
        ),
        &dump(&record),
    );

    // Sealed record.
    let rk = crate::bench::TEST_RECORD_SECRET;
    let rpub = sealed::public_key(&rk)?;
    let eph: [u8; 32] = [0x22; 32];
    let epub = sealed::public_key(&eph)?;
    out += &block(
        "Record public key R = x || y (of the test record private key `5e` x 32; never a real key):",
        &format!("{}\n", hex::encode(rpub)),
    );
    let z = sealed::shared_secret(&eph, &rpub)?;
    out += &format!(
        "Sealing: ephemeral private key `22` x 32 (on the device: from the CAAM RNG), E = x || y:\n\n\
         ```text\n{}\n```\n\n",
        hex::encode(epub)
    );
    out += &block(
        "Z = x(e * R) = x(r * E), the ECDH shared secret:",
        &format!("{}\n", hex::encode(z)),
    );
    let mut salt = Vec::new();
    salt.extend_from_slice(&epub);
    salt.extend_from_slice(&rpub);
    let mut info = sealed::KDF_INFO.to_vec();
    info.extend_from_slice(&sealed::Kind::IdRecord.code().to_le_bytes());
    let mut okm = [0u8; 44];
    hkdf::Hkdf::<sha2::Sha256>::new(Some(&salt), &z)
        .expand(&info, &mut okm)
        .map_err(|_| crate::error::Fail::new(1, "HKDF"))?;
    out += &block(
        "HKDF-SHA256(IKM = Z, salt = E || R, info = \"imx-mfg sealed record v1\" || kind u16 LE (1)), \
         44 bytes: AES-256 key (0..32) then GCM nonce (32..44):",
        &dump(&okm),
    );
    let s = r.seal(&rpub, &eph)?;
    out += &block(
        &format!(
            "Sealed ID record ({} bytes: header 0x00..0x4b, ciphertext, 16-byte tag):",
            identity::SEALED_LEN
        ),
        &dump(&s),
    );
    let mut line = [0u8; identity::CONSOLE_LINE_LEN];
    let n = identity::console_line(&s, &mut line)?;
    out += &block(
        &format!("Console line ({} characters):", identity::CONSOLE_LINE_LEN),
        &format!("{}\n", String::from_utf8_lossy(&line[..n])),
    );

    // Provisioning area.
    let o1 = area::next_blob_offset(None);
    let e1 = BlobEntry::new(
        "wifi-key",
        SecretType::Raw,
        KeyModifier::derived(b"wifi-key"),
        false,
        o1 as u32,
        area::blob_len(16) as u32,
        0x1122_3344,
    )?;
    let o2 = area::next_blob_offset(Some(o1 + area::blob_len(16) as u64));
    let e2 = BlobEntry::new(
        "cloud.token",
        SecretType::Opaque,
        [0xff; 16].into(),
        true,
        o2 as u32,
        area::blob_len(5) as u32,
        0x5566_7788,
    )?;
    let mut tb = [0u8; area::TABLE_MAX_LEN];
    let (tn, tcrc) = area::write_blob_table(&mut tb, &[e1, e2])?;
    let j = JournalRecord {
        state: ProvState::SecretsBlobbed,
        id_slot: Some(0),
        sequence: 3,
        bundle_id: Some(42),
        blob_count: 2,
        last_error: 0,
        table_crc: tcrc,
        boot_counter: 1,
    };
    out += &block(
        "Journal record, state secrets-blobbed, sequence 3, ID slot 0, two blobs (first 64 bytes of its block):",
        &dump(&j.to_block()[..area::JOURNAL_LEN]),
    );
    out += &block(
        "Blob table for two blobs (blob CRCs 11223344 and 55667788 stand in for real blob CRCs):",
        &dump(&tb[..tn]),
    );
    let bh = area::BundlePartitionHeader::for_bundle(&sealed)?;
    out += &block(
        "`mfg-bundle` header for the sealed bundle above (first 20 bytes of block 0):",
        &dump(&bh.to_block()[..area::BUNDLE_PART_HEADER_LEN]),
    );

    // A Linux trusted key (section 3.3): a short key modifier.
    let disk: Vec<u8> = (0u8..32).collect();
    let trusted = [SecretSpec {
        name: "disk-key",
        kind: SecretType::Raw,
        key_modifier: Some(KeyModifier::LINUX_TRUSTED),
        data: &disk,
    }];
    let mut pt = vec![0u8; bundle::plaintext_len(&trusted)?];
    bundle::write_secret_list(&mut pt, &trusted)?;
    out += &block(
        "A Linux trusted key: secret list of one entry `disk-key` (raw, bytes 00..1f, \
         `linux_trusted_key = true`: key modifier `SECURE_KEY`, 10 bytes; flags 03, length 0a at \
         byte 34 of the entry):",
        &dump(&pt),
    );
    let e = BlobEntry::new(
        "disk-key",
        SecretType::Raw,
        KeyModifier::LINUX_TRUSTED,
        true,
        area::next_blob_offset(None) as u32,
        area::blob_len(disk.len()) as u32,
        0x99aa_bbcc,
    )?;
    let (tn, _) = area::write_blob_table(&mut tb, &[e])?;
    out += &block(
        "Its blob table, alone on a device (blob CRC 99aabbcc stands in for a real one): the blob \
         is the 80 bytes at byte 16 384 of `mfg-data`:",
        &dump(&tb[..tn]),
    );
    Ok(out)
}
