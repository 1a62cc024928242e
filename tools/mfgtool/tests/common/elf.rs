// A synthetic loader ELF for the measurement tests; included by the
// CLI tests (tests/common) and the unit tests of src/loaderimage.rs.

/// A minimal AArch64 ELF: two PT_LOAD segments (code at `base`, data a
/// page later at `base + gap`), a symtab with `syms`.
pub fn synthetic_elf(
    base: u64,
    code: &[u8],
    gap: u64,
    data: &[u8],
    syms: &[(&str, u64)],
) -> Vec<u8> {
    let mut strtab = vec![0u8];
    let mut symtab = vec![0u8; 24];
    for (n, v) in syms {
        let mut s = [0u8; 24];
        s[0..4].copy_from_slice(&(strtab.len() as u32).to_le_bytes());
        s[8..16].copy_from_slice(&v.to_le_bytes());
        symtab.extend_from_slice(&s);
        strtab.extend_from_slice(n.as_bytes());
        strtab.push(0);
    }
    let phoff = 64u64;
    let code_off = phoff + 2 * 56;
    let data_off = code_off + code.len() as u64;
    let sym_off = data_off + data.len() as u64;
    let str_off = sym_off + symtab.len() as u64;
    let shoff = str_off + strtab.len() as u64;
    let mut e = vec![0u8; 64];
    e[..4].copy_from_slice(b"\x7fELF");
    e[4] = 2;
    e[5] = 1;
    e[6] = 1;
    e[0x10..0x12].copy_from_slice(&2u16.to_le_bytes());
    e[0x12..0x14].copy_from_slice(&183u16.to_le_bytes());
    e[0x20..0x28].copy_from_slice(&phoff.to_le_bytes());
    e[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
    e[0x34..0x36].copy_from_slice(&64u16.to_le_bytes());
    e[0x36..0x38].copy_from_slice(&56u16.to_le_bytes());
    e[0x38..0x3a].copy_from_slice(&2u16.to_le_bytes());
    e[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
    e[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
    for (off, addr, len) in [
        (code_off, base, code.len() as u64),
        (data_off, base + gap, data.len() as u64),
    ] {
        let mut ph = [0u8; 56];
        ph[0..4].copy_from_slice(&1u32.to_le_bytes());
        ph[8..16].copy_from_slice(&off.to_le_bytes());
        ph[16..24].copy_from_slice(&addr.to_le_bytes());
        ph[24..32].copy_from_slice(&addr.to_le_bytes());
        ph[32..40].copy_from_slice(&len.to_le_bytes());
        ph[40..48].copy_from_slice(&len.to_le_bytes());
        e.extend_from_slice(&ph);
    }
    e.extend_from_slice(code);
    e.extend_from_slice(data);
    e.extend_from_slice(&symtab);
    e.extend_from_slice(&strtab);
    // Section headers: null, .symtab (link 2), .strtab.
    e.extend_from_slice(&[0u8; 64]);
    let mut sh = [0u8; 64];
    sh[4..8].copy_from_slice(&2u32.to_le_bytes());
    sh[24..32].copy_from_slice(&sym_off.to_le_bytes());
    sh[32..40].copy_from_slice(&(symtab.len() as u64).to_le_bytes());
    sh[40..44].copy_from_slice(&2u32.to_le_bytes());
    sh[56..64].copy_from_slice(&24u64.to_le_bytes());
    e.extend_from_slice(&sh);
    let mut sh = [0u8; 64];
    sh[4..8].copy_from_slice(&3u32.to_le_bytes());
    sh[24..32].copy_from_slice(&str_off.to_le_bytes());
    sh[32..40].copy_from_slice(&(strtab.len() as u64).to_le_bytes());
    e.extend_from_slice(&sh);
    e
}
