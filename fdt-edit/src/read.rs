//! A read-only view of a device tree that stays where it is (no copy): for
//! blobs that are only checked and read, such as a FIT image.
//!
//! [`FdtRef::new`] checks the header and walks the whole structure block
//! once, more strictly than the editor does: exactly one root node with an
//! empty name, nothing but the `FDT_END` token after it, and that token is
//! the last word of the structure block (as U-Boot's `fdt_find_regions`
//! requires). After that, the walks behind the accessors cannot meet a bad
//! token, so they return plain values.
//!
//! Node lookups here match names exactly: `kernel` does not find
//! `kernel@0` (libfdt would), because a verifier must not be steered to a
//! node other than the one that was signed.

use crate::{FdtError, Header, MAX_DEPTH, Tok, Token};

/// One token of the structure block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag<'a> {
    /// `FDT_BEGIN_NODE` with the node's name (unit address included).
    Begin(&'a [u8]),
    /// `FDT_END_NODE`.
    End,
    /// `FDT_PROP` with its name (from the strings block) and value.
    Prop(&'a [u8], &'a [u8]),
    /// `FDT_NOP`.
    Nop,
    /// `FDT_END`.
    Finish,
}

/// A checked, read-only device tree borrowed in place.
#[derive(Clone, Copy, Debug)]
pub struct FdtRef<'a> {
    header: Header,
    strukt: &'a [u8],
    strings: &'a [u8],
    root: usize,
}

impl<'a> FdtRef<'a> {
    /// Checks `blob` (which may be longer than `totalsize`) and borrows it.
    pub fn new(blob: &'a [u8]) -> Result<Self, FdtError> {
        let header = Header::read(blob)?;
        let strukt = &blob[header.off_struct..header.off_struct + header.size_struct];
        let strings = &blob[header.off_strings..header.off_strings + header.size_strings];
        let mut me = FdtRef {
            header,
            strukt,
            strings,
            root: 0,
        };
        me.root = me.validate()?;
        Ok(me)
    }

    /// The header.
    pub fn header(&self) -> Header {
        self.header
    }

    /// The structure block.
    pub fn struct_block(&self) -> &'a [u8] {
        self.strukt
    }

    /// The strings block.
    pub fn strings_block(&self) -> &'a [u8] {
        self.strings
    }

    fn raw(&self, off: usize) -> Result<Tok, FdtError> {
        crate::token(self.strukt, off)
    }

    fn string(&self, off: usize) -> Result<&'a [u8], FdtError> {
        let s = self.strings.get(off..).ok_or(FdtError::BadStructure)?;
        let end = s
            .iter()
            .position(|&b| b == 0)
            .ok_or(FdtError::BadStructure)?;
        Ok(&s[..end])
    }

    /// The token at structure offset `off` and the offset of the next one.
    pub fn tag(&self, off: usize) -> Result<(Tag<'a>, usize), FdtError> {
        let t = self.raw(off)?;
        let s = self.strukt;
        let tag = match t.kind {
            Token::Begin => Tag::Begin(&s[t.name.0..t.name.0 + t.name.1]),
            Token::End => Tag::End,
            Token::Prop { name_off, val, len } => {
                let value = s.get(val..val + len).ok_or(FdtError::BadStructure)?;
                Tag::Prop(self.string(name_off)?, value)
            }
            Token::Nop => Tag::Nop,
            Token::Finish => Tag::Finish,
        };
        Ok((tag, t.next))
    }

    /// Walks every token; returns the root node's offset.
    fn validate(&self) -> Result<usize, FdtError> {
        let mut depth = 0usize;
        let mut off = 0;
        let mut root = None;
        loop {
            let (tag, next) = self.tag(off)?;
            match tag {
                Tag::Begin(name) => {
                    if depth == 0 {
                        if root.is_some() || !name.is_empty() {
                            return Err(FdtError::BadStructure);
                        }
                        root = Some(off);
                    } else if name.is_empty() {
                        return Err(FdtError::BadStructure);
                    }
                    depth += 1;
                    if depth > MAX_DEPTH {
                        return Err(FdtError::BadStructure);
                    }
                }
                Tag::End => depth = depth.checked_sub(1).ok_or(FdtError::BadStructure)?,
                Tag::Prop(..) if depth == 0 => return Err(FdtError::BadStructure),
                Tag::Prop(..) | Tag::Nop => {}
                Tag::Finish => {
                    return match root {
                        Some(r) if depth == 0 && next == self.strukt.len() => Ok(r),
                        _ => Err(FdtError::BadStructure),
                    };
                }
            }
            off = next;
        }
    }

    /// The root node.
    pub fn root(&self) -> usize {
        self.root
    }

    /// The name of the node at `node` (empty for the root or a non-node).
    pub fn name(&self, node: usize) -> &'a [u8] {
        match self.tag(node) {
            Ok((Tag::Begin(n), _)) => n,
            _ => &[],
        }
    }

    /// The properties of `node`, in order.
    pub fn props(&self, node: usize) -> Props<'a> {
        let off = match self.tag(node) {
            Ok((Tag::Begin(_), next)) => Some(next),
            _ => None,
        };
        Props { fdt: *self, off }
    }

    /// The value of the first property `name` of `node`.
    pub fn prop(&self, node: usize, name: &str) -> Option<&'a [u8]> {
        self.props(node)
            .find(|(n, _)| *n == name.as_bytes())
            .map(|(_, v)| v)
    }

    /// A NUL-terminated string property without the NUL (`None` if
    /// absent, not terminated, or containing another NUL).
    pub fn prop_str(&self, node: usize, name: &str) -> Option<&'a str> {
        let v = self.prop(node, name)?;
        let (last, s) = v.split_last()?;
        if *last != 0 || s.contains(&0) {
            return None;
        }
        core::str::from_utf8(s).ok()
    }

    /// The direct subnodes of `node`: (offset, name).
    pub fn subnodes(&self, node: usize) -> Subnodes<'a> {
        let off = match self.tag(node) {
            Ok((Tag::Begin(_), next)) => Some(next),
            _ => None,
        };
        Subnodes { fdt: *self, off }
    }

    /// The subnode of `node` named exactly `name`.
    pub fn subnode(&self, node: usize, name: &str) -> Option<usize> {
        self.subnodes(node)
            .find(|(_, n)| *n == name.as_bytes())
            .map(|(o, _)| o)
    }

    /// The node at an absolute `path`, each component matched exactly.
    pub fn path(&self, path: &str) -> Option<usize> {
        let mut node = self.root;
        for comp in path.split('/').filter(|c| !c.is_empty()) {
            node = self.subnode(node, comp)?;
        }
        Some(node)
    }

    /// The offset just past the `FDT_END_NODE` of the node at `node`.
    pub fn node_end(&self, node: usize) -> Result<usize, FdtError> {
        let mut depth = 0usize;
        let mut off = node;
        loop {
            let (tag, next) = self.tag(off)?;
            match tag {
                Tag::Begin(_) => depth += 1,
                Tag::End => {
                    depth = depth.checked_sub(1).ok_or(FdtError::BadStructure)?;
                    if depth == 0 {
                        return Ok(next);
                    }
                }
                Tag::Finish => return Err(FdtError::BadStructure),
                _ => {}
            }
            off = next;
        }
    }
}

/// Iterator over a node's properties (see [`FdtRef::props`]).
#[derive(Debug)]
pub struct Props<'a> {
    fdt: FdtRef<'a>,
    off: Option<usize>,
}

impl<'a> Iterator for Props<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (tag, next) = self.fdt.tag(self.off?).ok()?;
            self.off = Some(next);
            match tag {
                Tag::Prop(n, v) => return Some((n, v)),
                Tag::Nop => {}
                _ => {
                    self.off = None;
                    return None;
                }
            }
        }
    }
}

/// Iterator over a node's direct subnodes (see [`FdtRef::subnodes`]).
#[derive(Debug)]
pub struct Subnodes<'a> {
    fdt: FdtRef<'a>,
    off: Option<usize>,
}

impl<'a> Iterator for Subnodes<'a> {
    type Item = (usize, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let off = self.off?;
            let (tag, next) = self.fdt.tag(off).ok()?;
            match tag {
                Tag::Begin(name) => {
                    self.off = self.fdt.node_end(off).ok();
                    return Some((off, name));
                }
                Tag::Prop(..) | Tag::Nop => self.off = Some(next),
                Tag::End | Tag::Finish => {
                    self.off = None;
                    return None;
                }
            }
        }
    }
}
