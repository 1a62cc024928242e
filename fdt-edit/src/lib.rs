//! A small flattened-device-tree (FDT, DTB) editor for the Linux handoff.
//!
//! It validates a blob's header and structure, finds nodes by path, adds
//! nodes and sets properties. Edits happen in a caller-provided buffer with
//! room to grow: [`Fdt::open_into`] copies the blob there in the canonical
//! order (header, memory reservations, structure block, strings block, free
//! space), so a new property only moves the bytes after it.
//!
//! [`FdtRef`] is the read-only counterpart for blobs that are only checked
//! and read in place (a FIT image): no copy, exact-name lookups.
//!
//! Every offset and length read from the blob is checked before use; a
//! malformed blob gives an [`FdtError`], never a panic.
#![no_std]

#[cfg(test)]
extern crate std;

const MAGIC: u32 = 0xd00d_feed;
const HEADER_LEN: usize = 40;
const BEGIN_NODE: u32 = 1;
const END_NODE: u32 = 2;
const PROP: u32 = 3;
const NOP: u32 = 4;
const END: u32 = 9;
const MAX_DEPTH: usize = 32;

/// Why a blob or an edit was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FdtError {
    /// Shorter than its header says, or than a header.
    Truncated,
    /// Not `0xd00dfeed`.
    BadMagic,
    /// A version this editor does not handle (needs 16 or 17).
    BadVersion(u32),
    /// Blocks outside the blob, overlapping, or misaligned.
    BadLayout,
    /// The structure block is malformed (bad token, unterminated name, ...).
    BadStructure,
    /// The edit does not fit in the buffer.
    NoSpace,
    /// The node does not exist.
    NotFound,
    /// A node or property name that is empty, too long or has bad characters.
    BadName,
}

impl core::fmt::Display for FdtError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Truncated => write!(f, "device tree truncated"),
            Self::BadMagic => write!(f, "not a device tree (bad magic)"),
            Self::BadVersion(v) => write!(f, "device tree version {v} not supported"),
            Self::BadLayout => write!(f, "device tree blocks out of bounds or overlapping"),
            Self::BadStructure => write!(f, "device tree structure block is malformed"),
            Self::NoSpace => write!(f, "no room left in the device tree buffer"),
            Self::NotFound => write!(f, "device tree node not found"),
            Self::BadName => write!(f, "bad device tree node or property name"),
        }
    }
}

fn be32(b: &[u8], off: usize) -> Result<u32, FdtError> {
    let s = b
        .get(off..off.checked_add(4).ok_or(FdtError::Truncated)?)
        .ok_or(FdtError::Truncated)?;
    Ok(u32::from_be_bytes([s[0], s[1], s[2], s[3]]))
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_be_bytes());
}

const fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// The header fields this editor uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Total size of the blob.
    pub totalsize: usize,
    /// Structure block offset.
    pub off_struct: usize,
    /// Strings block offset.
    pub off_strings: usize,
    /// Memory reservation block offset.
    pub off_rsvmap: usize,
    /// Version.
    pub version: u32,
    /// Boot CPU id.
    pub boot_cpuid: u32,
    /// Strings block size.
    pub size_strings: usize,
    /// Structure block size.
    pub size_struct: usize,
}

impl Header {
    /// Reads and checks the header of `blob` (which may be longer than the
    /// tree): magic, version, and that every block lies inside `totalsize`.
    pub fn read(blob: &[u8]) -> Result<Self, FdtError> {
        if blob.len() < HEADER_LEN {
            return Err(FdtError::Truncated);
        }
        if be32(blob, 0)? != MAGIC {
            return Err(FdtError::BadMagic);
        }
        let f = |i: usize| be32(blob, 4 * i).map(|v| v as usize);
        let h = Header {
            totalsize: f(1)?,
            off_struct: f(2)?,
            off_strings: f(3)?,
            off_rsvmap: f(4)?,
            version: be32(blob, 20)?,
            boot_cpuid: be32(blob, 28)?,
            size_strings: f(8)?,
            size_struct: f(9)?,
        };
        if h.version < 16 || be32(blob, 24)? > 17 {
            return Err(FdtError::BadVersion(h.version));
        }
        if h.totalsize > blob.len() {
            return Err(FdtError::Truncated);
        }
        let within = |off: usize, len: usize| {
            off >= HEADER_LEN && off.checked_add(len).is_some_and(|e| e <= h.totalsize)
        };
        if !within(h.off_struct, h.size_struct)
            || !within(h.off_strings, h.size_strings)
            || !within(h.off_rsvmap, 16)
            || !h.off_struct.is_multiple_of(4)
            || !h.off_rsvmap.is_multiple_of(8)
            || !h.size_struct.is_multiple_of(4)
        {
            return Err(FdtError::BadLayout);
        }
        Ok(h)
    }
}

/// The `totalsize` of the tree whose header starts `head`, after checking
/// the magic: how many bytes to fetch before calling [`Fdt::open_into`].
pub fn total_size(head: &[u8]) -> Result<usize, FdtError> {
    if be32(head, 0)? != MAGIC {
        return Err(FdtError::BadMagic);
    }
    let n = be32(head, 4)? as usize;
    if n < HEADER_LEN {
        Err(FdtError::Truncated)
    } else {
        Ok(n)
    }
}

/// A device tree being edited in a buffer with spare room.
pub struct Fdt<'a> {
    buf: &'a mut [u8],
    rsv_len: usize,
    struct_len: usize,
    strings_len: usize,
}

impl<'a> Fdt<'a> {
    /// Validates `src` and copies it into `buf` in canonical order with the
    /// free space at the end.
    pub fn open_into(src: &[u8], buf: &'a mut [u8]) -> Result<Self, FdtError> {
        let h = Header::read(src)?;
        let rsv_len = rsvmap_len(src, h.off_rsvmap, h.totalsize)?;
        let rsv = HEADER_LEN;
        let st = rsv + rsv_len;
        let strs = st + h.size_struct;
        let total = strs + h.size_strings;
        if total > buf.len() {
            return Err(FdtError::NoSpace);
        }
        buf[..HEADER_LEN].copy_from_slice(&src[..HEADER_LEN]);
        buf[rsv..st].copy_from_slice(&src[h.off_rsvmap..h.off_rsvmap + rsv_len]);
        buf[st..strs].copy_from_slice(&src[h.off_struct..h.off_struct + h.size_struct]);
        buf[strs..total].copy_from_slice(&src[h.off_strings..h.off_strings + h.size_strings]);
        let mut fdt = Fdt {
            buf,
            rsv_len,
            struct_len: h.size_struct,
            strings_len: h.size_strings,
        };
        fdt.write_header();
        fdt.validate_structure()?;
        Ok(fdt)
    }

    fn off_struct(&self) -> usize {
        HEADER_LEN + self.rsv_len
    }

    fn off_strings(&self) -> usize {
        self.off_struct() + self.struct_len
    }

    /// Size of the edited tree in bytes.
    pub fn totalsize(&self) -> usize {
        self.off_strings() + self.strings_len
    }

    /// The edited tree.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.totalsize()]
    }

    fn write_header(&mut self) {
        let (st, ss, tot) = (self.off_struct(), self.off_strings(), self.totalsize());
        put32(self.buf, 4, tot as u32);
        put32(self.buf, 8, st as u32);
        put32(self.buf, 12, ss as u32);
        put32(self.buf, 16, HEADER_LEN as u32);
        put32(self.buf, 20, 17);
        put32(self.buf, 24, 16);
        put32(self.buf, 32, self.strings_len as u32);
        put32(self.buf, 36, self.struct_len as u32);
    }

    fn strukt(&self) -> &[u8] {
        &self.buf[self.off_struct()..self.off_strings()]
    }

    fn string_at(&self, off: usize) -> Result<&[u8], FdtError> {
        let strs = &self.buf[self.off_strings()..self.totalsize()];
        let s = strs.get(off..).ok_or(FdtError::BadStructure)?;
        let end = s
            .iter()
            .position(|&b| b == 0)
            .ok_or(FdtError::BadStructure)?;
        Ok(&s[..end])
    }

    /// Walks the structure block once, checking every token: nodes nest,
    /// properties sit inside a node, and there is exactly one root node
    /// (NOPs may precede it, so a leading NOP once let a tree without any
    /// node through).
    fn validate_structure(&self) -> Result<(), FdtError> {
        #[cfg(test)]
        props::reach_hit(props::REACH_STRUCTURE);
        let mut depth = 0usize;
        let mut roots = 0usize;
        let mut off = 0;
        loop {
            let tok = self.token(off)?;
            match tok.kind {
                Token::Begin => {
                    if depth == 0 {
                        roots += 1;
                        if roots > 1 {
                            return Err(FdtError::BadStructure);
                        }
                    }
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(FdtError::BadStructure);
                    }
                }
                Token::End => depth = depth.checked_sub(1).ok_or(FdtError::BadStructure)?,
                Token::Prop { name_off, .. } => {
                    self.string_at(name_off)?;
                    if depth == 0 {
                        return Err(FdtError::BadStructure);
                    }
                }
                Token::Nop => {}
                Token::Finish => {
                    #[cfg(test)]
                    props::reach_hit(props::REACH_END);
                    return if depth == 0 && roots == 1 {
                        Ok(())
                    } else {
                        Err(FdtError::BadStructure)
                    };
                }
            }
            off = tok.next;
        }
    }

    fn token(&self, off: usize) -> Result<Tok, FdtError> {
        token(self.strukt(), off)
    }

    /// The structure-block offset of the node at `path` (`/`, `/chosen`,
    /// `/soc@0/mmc@30b60000`). A path component without `@` also matches a
    /// node named `name@unit`, as Linux does.
    pub fn find_node(&self, path: &str) -> Result<usize, FdtError> {
        let root = self.first_node()?;
        let mut node = root;
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            node = self.child(node, comp)?.ok_or(FdtError::NotFound)?;
        }
        Ok(node)
    }

    fn first_node(&self) -> Result<usize, FdtError> {
        let mut off = 0;
        loop {
            let t = self.token(off)?;
            match t.kind {
                Token::Nop => off = t.next,
                Token::Begin => return Ok(off),
                _ => return Err(FdtError::BadStructure),
            }
        }
    }

    fn child(&self, node: usize, want: &str) -> Result<Option<usize>, FdtError> {
        let me = self.token(node)?;
        let mut off = me.next;
        loop {
            let t = self.token(off)?;
            match t.kind {
                Token::Begin => {
                    let name = &self.strukt()[t.name.0..t.name.0 + t.name.1];
                    let base = name.split(|&b| b == b'@').next().unwrap_or(name);
                    if name == want.as_bytes() || (!want.contains('@') && base == want.as_bytes()) {
                        return Ok(Some(off));
                    }
                    off = self.skip_node(off)?;
                }
                Token::End | Token::Finish => return Ok(None),
                _ => off = t.next,
            }
        }
    }

    /// The offset just past the END_NODE of the node at `node`.
    fn skip_node(&self, node: usize) -> Result<usize, FdtError> {
        let mut depth = 0usize;
        let mut off = node;
        loop {
            let t = self.token(off)?;
            match t.kind {
                Token::Begin => depth += 1,
                Token::End => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(t.next);
                    }
                }
                Token::Finish => return Err(FdtError::BadStructure),
                _ => {}
            }
            off = t.next;
        }
    }

    /// A property's value.
    pub fn get_prop(&self, node: usize, name: &str) -> Result<Option<&[u8]>, FdtError> {
        Ok(self
            .find_prop(node, name)?
            .map(|(_, val, len)| &self.strukt()[val..val + len]))
    }

    /// (token offset, value offset, length) of a property of `node`.
    fn find_prop(
        &self,
        node: usize,
        name: &str,
    ) -> Result<Option<(usize, usize, usize)>, FdtError> {
        let me = self.token(node)?;
        let mut off = me.next;
        loop {
            let t = self.token(off)?;
            match t.kind {
                Token::Prop { name_off, val, len } => {
                    if self.string_at(name_off)? == name.as_bytes() {
                        return Ok(Some((off, val, len)));
                    }
                }
                Token::Nop => {}
                _ => return Ok(None),
            }
            off = t.next;
        }
    }

    /// Inserts `len` bytes at structure offset `at` (moving the rest and the
    /// strings block), or removes `-len` bytes.
    fn resize_struct(&mut self, at: usize, old: usize, new: usize) -> Result<(), FdtError> {
        let abs = self.off_struct() + at;
        let total = self.totalsize();
        if new > old {
            let grow = new - old;
            if total + grow > self.buf.len() {
                return Err(FdtError::NoSpace);
            }
            self.buf.copy_within(abs + old..total, abs + new);
            self.struct_len += grow;
        } else {
            let shrink = old - new;
            self.buf.copy_within(abs + old..total, abs + new);
            self.struct_len -= shrink;
        }
        self.write_header();
        Ok(())
    }

    /// The offset of `name` in the strings block, adding it if absent.
    fn string_offset(&mut self, name: &str) -> Result<usize, FdtError> {
        let base = self.off_strings();
        let strs = &self.buf[base..base + self.strings_len];
        let mut i = 0;
        while i < strs.len() {
            let end = strs[i..]
                .iter()
                .position(|&b| b == 0)
                .map_or(strs.len(), |p| i + p);
            if &strs[i..end] == name.as_bytes() {
                return Ok(i);
            }
            i = end + 1;
        }
        let at = self.totalsize();
        if at + name.len() + 1 > self.buf.len() {
            return Err(FdtError::NoSpace);
        }
        self.buf[at..at + name.len()].copy_from_slice(name.as_bytes());
        self.buf[at + name.len()] = 0;
        let off = self.strings_len;
        self.strings_len += name.len() + 1;
        self.write_header();
        Ok(off)
    }

    /// Sets (replacing or adding) a property of the node at `node`.
    pub fn set_prop(&mut self, node: usize, name: &str, value: &[u8]) -> Result<(), FdtError> {
        self.set_prop_with(node, name, value.len(), |b| b.copy_from_slice(value))
    }

    /// Sets a string property (NUL-terminated).
    pub fn set_prop_str(&mut self, node: usize, name: &str, value: &str) -> Result<(), FdtError> {
        if value.as_bytes().contains(&0) {
            return Err(FdtError::BadName);
        }
        self.set_prop_with(node, name, value.len() + 1, |b| {
            b[..value.len()].copy_from_slice(value.as_bytes());
            b[value.len()] = 0;
        })
    }

    /// Sets a property of `len` bytes filled by `fill`.
    pub fn set_prop_with(
        &mut self,
        node: usize,
        name: &str,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) -> Result<(), FdtError> {
        check_name(name)?;
        if u32::try_from(len).is_err() {
            return Err(FdtError::NoSpace);
        }
        let name_off = self.string_offset(name)?;
        let (at, old) = match self.find_prop(node, name)? {
            Some((tok, _, l)) => (tok, 12 + align4(l)),
            None => (self.token(node)?.next, 0),
        };
        let new = 12 + align4(len);
        self.resize_struct(at, old, new)?;
        let abs = self.off_struct() + at;
        put32(self.buf, abs, PROP);
        put32(self.buf, abs + 4, len as u32);
        put32(self.buf, abs + 8, name_off as u32);
        self.buf[abs + 12..abs + new].fill(0);
        fill(&mut self.buf[abs + 12..abs + 12 + len]);
        Ok(())
    }

    /// Sets a property of big-endian 32-bit cells.
    pub fn set_prop_u32s(
        &mut self,
        node: usize,
        name: &str,
        cells: &[u32],
    ) -> Result<(), FdtError> {
        self.set_prop_with(node, name, cells.len() * 4, |b| {
            for (i, c) in cells.iter().enumerate() {
                b[i * 4..i * 4 + 4].copy_from_slice(&c.to_be_bytes());
            }
        })
    }

    /// Sets a property holding one big-endian 64-bit value.
    pub fn set_prop_u64(&mut self, node: usize, name: &str, v: u64) -> Result<(), FdtError> {
        self.set_prop(node, name, &v.to_be_bytes())
    }

    /// Returns the child `name` of `parent`, adding an empty one if absent.
    pub fn ensure_subnode(&mut self, parent: usize, name: &str) -> Result<usize, FdtError> {
        check_name(name)?;
        if let Some(n) = self.child(parent, name)? {
            return Ok(n);
        }
        // New nodes go right before the parent's END_NODE.
        let end = self.skip_node(parent)? - 4;
        let size = 4 + align4(name.len() + 1) + 4;
        self.resize_struct(end, 0, size)?;
        let abs = self.off_struct() + end;
        put32(self.buf, abs, BEGIN_NODE);
        let nm = abs + 4;
        self.buf[nm..nm + align4(name.len() + 1)].fill(0);
        self.buf[nm..nm + name.len()].copy_from_slice(name.as_bytes());
        put32(self.buf, abs + size - 4, END_NODE);
        Ok(end)
    }
}

fn check_name(name: &str) -> Result<(), FdtError> {
    let ok = !name.is_empty()
        && name.len() <= 31 + 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b",._+-#?@".contains(&b));
    if ok { Ok(()) } else { Err(FdtError::BadName) }
}

/// Length of the memory reservation block including its terminator.
fn rsvmap_len(blob: &[u8], off: usize, total: usize) -> Result<usize, FdtError> {
    let mut p = off;
    loop {
        if p + 16 > total {
            return Err(FdtError::BadLayout);
        }
        let addr = (u64::from(be32(blob, p)?) << 32) | u64::from(be32(blob, p + 4)?);
        let size = (u64::from(be32(blob, p + 8)?) << 32) | u64::from(be32(blob, p + 12)?);
        p += 16;
        if addr == 0 && size == 0 {
            return Ok(p - off);
        }
    }
}

/// Decodes the token at `off` of the structure block `s`.
fn token(s: &[u8], off: usize) -> Result<Tok, FdtError> {
    let t = be32(s, off).map_err(|_| FdtError::BadStructure)?;
    let body = off + 4;
    match t {
        BEGIN_NODE => {
            let rest = s.get(body..).ok_or(FdtError::BadStructure)?;
            let n = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or(FdtError::BadStructure)?;
            let next = body + align4(n + 1);
            if next > s.len() {
                return Err(FdtError::BadStructure);
            }
            Ok(Tok {
                kind: Token::Begin,
                next,
                name: (body, n),
            })
        }
        END_NODE => Ok(Tok {
            kind: Token::End,
            next: body,
            name: (0, 0),
        }),
        PROP => {
            let len = be32(s, body).map_err(|_| FdtError::BadStructure)? as usize;
            let name_off = be32(s, body + 4).map_err(|_| FdtError::BadStructure)? as usize;
            let val = body + 8;
            let next = val.checked_add(align4(len)).ok_or(FdtError::BadStructure)?;
            if next > s.len() {
                return Err(FdtError::BadStructure);
            }
            Ok(Tok {
                kind: Token::Prop { name_off, val, len },
                next,
                name: (0, 0),
            })
        }
        NOP => Ok(Tok {
            kind: Token::Nop,
            next: body,
            name: (0, 0),
        }),
        END => Ok(Tok {
            kind: Token::Finish,
            next: body,
            name: (0, 0),
        }),
        _ => Err(FdtError::BadStructure),
    }
}

#[derive(Clone, Copy)]
enum Token {
    Begin,
    End,
    Prop {
        name_off: usize,
        val: usize,
        len: usize,
    },
    Nop,
    Finish,
}

#[derive(Clone, Copy)]
struct Tok {
    kind: Token,
    next: usize,
    name: (usize, usize),
}

mod read;
pub use read::{FdtRef, Props, Subnodes, Tag};

#[cfg(test)]
mod props;
#[cfg(test)]
mod tests;
