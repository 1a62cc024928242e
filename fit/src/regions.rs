//! The bytes a FIT configuration signature covers, as U-Boot computes them
//! (`boot/image-fit-sig.c`, `fit_config_check_sig`, and `boot/fdt_region.c`,
//! `fdt_find_regions`, U-Boot v2026.10-rc; the same regions as the
//! `hashed-nodes` list that `mkimage` 2023.01 writes).
//!
//! The node list is built from the configuration, not read from the
//! signature's `hashed-nodes` property (which the signature does not cover):
//! `/`, `/configurations/<conf>`, and for every image the configuration
//! names (any property but `description`, `compatible`, `default`) the image
//! node, each of its `hash*` subnodes and its `cipher` and `dm-verity`
//! subnodes. Walking the structure block, a listed node is "wanted" at
//! level 2 (its properties and tokens are hashed), its direct subnodes at
//! level 1 (only their begin and end tokens), deeper ones not at all; the
//! properties `data`, `data-size`, `data-position` and `data-offset` are
//! never hashed (the image hashes cover the data). The hashed bytes are
//! those regions in order, then the first `hashed-strings[1]` bytes of the
//! strings block.
//!
//! Everything is computed on the fly: no region list, no allocation.

use crate::FitError;
use fdt_edit::{FdtRef, Tag};
use sha2::{Digest, Sha256};

/// U-Boot's `FDT_MAX_DEPTH`.
const MAX_DEPTH: usize = 32;
/// U-Boot's path buffer in `fit_config_check_sig`.
const PATH_MAX: usize = 200;
/// U-Boot's `IMAGE_MAX_HASHED_NODES`.
const MAX_NODES: usize = 100;
/// Properties never hashed (U-Boot's `exc_prop`).
const EXCLUDED: [&[u8]; 4] = [b"data", b"data-size", b"data-position", b"data-offset"];

/// Configuration properties that do not name images.
pub(crate) fn names_images(prop: &[u8]) -> bool {
    !matches!(prop, b"description" | b"compatible" | b"default")
}

/// The strings of a string-list property (none if not NUL-terminated, as
/// libfdt's `fdt_stringlist_count` refuses it).
pub(crate) fn strings(v: &[u8]) -> impl Iterator<Item = &[u8]> {
    let ok = v.last() == Some(&0);
    let body = if ok { &v[..v.len() - 1] } else { &[][..] };
    body.split(|&b| b == 0).filter(move |_| ok)
}

/// Whether a subnode of a signed image is itself signed.
pub(crate) fn signed_subnode(name: &[u8]) -> bool {
    name.starts_with(b"hash") || name == b"cipher" || name == b"dm-verity"
}

/// The configuration being checked.
#[derive(Clone, Copy)]
pub(crate) struct Config<'a> {
    pub fit: FdtRef<'a>,
    /// Offset of `/configurations/<name>`.
    pub node: usize,
    pub name: &'a [u8],
}

impl Config<'_> {
    /// Whether the configuration names the image `name`.
    pub fn references(&self, name: &[u8]) -> bool {
        self.fit
            .props(self.node)
            .filter(|(p, _)| names_images(p))
            .any(|(_, v)| strings(v).any(|s| s == name))
    }

    /// U-Boot's count of signed node paths (one entry per reference).
    fn node_count(&self) -> Result<usize, FitError> {
        let images = self.fit.path("/images").ok_or(FitError::NoImages)?;
        let mut count = 2;
        let mut refs = 0;
        for (p, v) in self.fit.props(self.node) {
            if !names_images(p) {
                continue;
            }
            for s in strings(v) {
                let Some(img) = self
                    .fit
                    .subnodes(images)
                    .find(|(_, n)| *n == s)
                    .map(|(o, _)| o)
                else {
                    continue;
                };
                refs += 1;
                count += 1 + self
                    .fit
                    .subnodes(img)
                    .filter(|(_, n)| signed_subnode(n))
                    .count();
            }
        }
        if refs == 0 {
            return Err(FitError::NoImages);
        }
        if count > MAX_NODES {
            return Err(FitError::Regions);
        }
        Ok(count)
    }

    /// Whether the node at `depth` whose ancestors' names are
    /// `names[1..depth]` and whose own name is `names[depth]` is listed.
    fn listed(&self, names: &[&[u8]], depth: usize) -> bool {
        match depth {
            0 => true,
            2 => {
                (names[1] == b"configurations" && names[2] == self.name)
                    || (names[1] == b"images" && self.references(names[2]))
            }
            3 => names[1] == b"images" && self.references(names[2]) && signed_subnode(names[3]),
            _ => false,
        }
    }
}

/// SHA-256 of the bytes the signature node `sig` of `cfg` covers.
pub(crate) fn config_digest(cfg: &Config<'_>, sig: usize) -> Result<[u8; 32], FitError> {
    let fit = cfg.fit;
    let max_regions = 20 + cfg.node_count()? * 7;
    let s = fit.struct_block();
    let mut h = Sha256::new();
    let mut names: [&[u8]; MAX_DEPTH] = [&[]; MAX_DEPTH];
    let mut saved = [0u8; MAX_DEPTH];
    let mut cum = [0usize; MAX_DEPTH];
    let mut depth: isize = -1;
    let mut want = 0u8;
    let mut path_len = 0usize;
    let mut start: Option<usize> = None;
    let mut last_end: Option<usize> = None;
    let mut count = 0usize;
    let mut off = 0;
    loop {
        let (tag, next) = fit.tag(off).map_err(FitError::Malformed)?;
        let mut stop_at = next;
        let include = match tag {
            Tag::Prop(name, _) => {
                stop_at = off;
                want >= 2 && !EXCLUDED.contains(&name)
            }
            Tag::Nop => {
                stop_at = off;
                want >= 2
            }
            Tag::Begin(name) => {
                depth += 1;
                let d = depth as usize;
                if d >= MAX_DEPTH {
                    return Err(FitError::Regions);
                }
                if path_len + 2 + name.len() >= PATH_MAX {
                    return Err(FitError::Regions);
                }
                if path_len != 1 {
                    path_len += 1;
                }
                path_len += name.len();
                cum[d] = path_len;
                names[d] = name;
                saved[d] = want;
                if want == 1 {
                    stop_at = off;
                }
                if cfg.listed(&names, d) {
                    want = 2;
                } else if want > 0 {
                    want -= 1;
                } else {
                    stop_at = off;
                }
                want > 0
            }
            Tag::End => {
                if depth < 0 {
                    return Err(FitError::Malformed(fdt_edit::FdtError::BadStructure));
                }
                let include = want > 0;
                want = saved[depth as usize];
                depth -= 1;
                path_len = if depth >= 1 { cum[depth as usize] } else { 0 };
                include
            }
            Tag::Finish => true,
        };
        if include && start.is_none() {
            // U-Boot merges a region that starts where the last one ended.
            if count > 0 && last_end == Some(off) {
                count -= 1;
            }
            start = Some(off);
        }
        if !include && let Some(st) = start.take() {
            h.update(&s[st..stop_at]);
            last_end = Some(stop_at);
            count += 1;
        }
        if tag == Tag::Finish {
            // The last region runs to the end of the structure block
            // (`FdtRef` checked that FDT_END is its last word).
            if let Some(st) = start {
                h.update(&s[st..next]);
            }
            count += 1;
            break;
        }
        off = next;
    }
    if count >= max_regions - 1 {
        return Err(FitError::Regions);
    }
    if let Some(hs) = fit.prop(sig, "hashed-strings") {
        if hs.len() < 8 {
            return Err(FitError::Regions);
        }
        let size = u32::from_be_bytes([hs[4], hs[5], hs[6], hs[7]]) as usize;
        let strs = fit.strings_block();
        if size > strs.len() {
            return Err(FitError::Regions);
        }
        h.update(&strs[..size]);
    }
    Ok(h.finalize().into())
}
