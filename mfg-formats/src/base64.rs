//! Standard base64 (RFC 4648 section 4, `+/`, `=` padding), no allocation:
//! the loader prints the ID record with it.

use crate::FormatError;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Encoded length of `n` bytes.
pub const fn encoded_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}

/// Encodes `input` into `out`; returns the length written.
pub fn encode(input: &[u8], out: &mut [u8]) -> Result<usize, FormatError> {
    let len = encoded_len(input.len());
    let out = out.get_mut(..len).ok_or(FormatError::BufferTooSmall)?;
    for (chunk, o) in input.chunks(3).zip(out.chunks_mut(4)) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, c) in o.iter_mut().enumerate() {
            *c = if i > chunk.len() {
                b'='
            } else {
                ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]
            };
        }
    }
    Ok(len)
}

fn value(c: u8) -> Option<u32> {
    Some(u32::from(match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    }))
}

/// Decodes canonical padded base64 into `out`; returns the length written.
/// Refuses bad characters, bad padding and non-zero pad bits.
pub fn decode(input: &[u8], out: &mut [u8]) -> Result<usize, FormatError> {
    const WHAT: &str = "base64";
    if !input.len().is_multiple_of(4) {
        return Err(FormatError::BadLength { what: WHAT });
    }
    let mut n = 0usize;
    let groups = input.len() / 4;
    for (gi, g) in input.chunks(4).enumerate() {
        let pad = g.iter().rev().take_while(|&&c| c == b'=').count();
        if pad > 2 || (pad > 0 && gi + 1 != groups) {
            return Err(FormatError::BadField { what: WHAT });
        }
        let mut v = 0u32;
        for &c in &g[..4 - pad] {
            v = (v << 6) | value(c).ok_or(FormatError::BadField { what: WHAT })?;
        }
        v <<= 6 * pad as u32;
        let bytes = [(v >> 16) as u8, (v >> 8) as u8, v as u8];
        let take = 3 - pad;
        if bytes[take..].iter().any(|&b| b != 0) {
            return Err(FormatError::BadField { what: WHAT });
        }
        let end = n + take;
        out.get_mut(n..end)
            .ok_or(FormatError::BufferTooSmall)?
            .copy_from_slice(&bytes[..take]);
        n = end;
    }
    Ok(n)
}
