//! GPT partition names and type GUIDs the loader looks up (by name) and
//! `mfgtool image` creates.

/// A GUID in its textual field form (`d1-d2-d3-d4[0..2]-d4[2..8]`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Guid {
    /// First field (stored little-endian in GPT).
    pub d1: u32,
    /// Second field (little-endian in GPT).
    pub d2: u16,
    /// Third field (little-endian in GPT).
    pub d3: u16,
    /// Last 8 bytes, stored as is.
    pub d4: [u8; 8],
}

impl Guid {
    /// The 16 bytes as stored in a GPT entry (mixed endian).
    pub const fn to_gpt_bytes(&self) -> [u8; 16] {
        let a = self.d1.to_le_bytes();
        let b = self.d2.to_le_bytes();
        let c = self.d3.to_le_bytes();
        let d = self.d4;
        [
            a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d[0], d[1], d[2], d[3], d[4], d[5],
            d[6], d[7],
        ]
    }
    /// Reads the GPT byte form.
    pub const fn from_gpt_bytes(b: &[u8; 16]) -> Self {
        Self {
            d1: u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            d2: u16::from_le_bytes([b[4], b[5]]),
            d3: u16::from_le_bytes([b[6], b[7]]),
            d4: [b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]],
        }
    }
}

impl core::fmt::Display for Guid {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let d = &self.d4;
        write!(
            f,
            "{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}",
            self.d1, self.d2, self.d3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

/// A partition the loader knows.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PartitionDef {
    /// GPT partition name (UTF-16LE in the entry).
    pub name: &'static str,
    /// Partition type GUID.
    pub type_guid: Guid,
}

/// Provisioning area.
pub const MFG_DATA: PartitionDef = PartitionDef {
    name: "mfg-data",
    type_guid: Guid {
        d1: 0xbc12_6847,
        d2: 0xb355,
        d3: 0x4f88,
        d4: [0xa4, 0x84, 0x0c, 0x3b, 0x4c, 0xd5, 0xaa, 0xb0],
    },
};
/// Sealed bundle.
pub const MFG_BUNDLE: PartitionDef = PartitionDef {
    name: "mfg-bundle",
    type_guid: Guid {
        d1: 0x168b_29ff,
        d2: 0x2236,
        d3: 0x4bfc,
        d4: [0xbc, 0x72, 0xc5, 0x8c, 0xdc, 0x82, 0xb3, 0xf7],
    },
};
/// Raw arm64 kernel Image.
pub const KERNEL: PartitionDef = PartitionDef {
    name: "kernel",
    type_guid: Guid {
        d1: 0x9b98_0737,
        d2: 0xe84a,
        d3: 0x4932,
        d4: [0xab, 0x20, 0x66, 0x8f, 0x83, 0x53, 0xad, 0xff],
    },
};
/// Raw flattened device tree.
pub const DTB: PartitionDef = PartitionDef {
    name: "dtb",
    type_guid: Guid {
        d1: 0x0654_8593,
        d2: 0xe8be,
        d3: 0x4c97,
        d4: [0xbe, 0xd6, 0x35, 0xed, 0xf4, 0x9e, 0xa9, 0xe8],
    },
};
/// Raw initramfs (optional).
pub const INITRD: PartitionDef = PartitionDef {
    name: "initrd",
    type_guid: Guid {
        d1: 0x150e_f8c5,
        d2: 0x5be2,
        d3: 0x418c,
        d4: [0x9c, 0xee, 0x3b, 0xc8, 0xcc, 0x17, 0x69, 0x1a],
    },
};
/// The loader image (optional; on silicon the loader lives in the boot
/// partition, this copy is for reference/recovery).
pub const LOADER: PartitionDef = PartitionDef {
    name: "loader",
    type_guid: Guid {
        d1: 0x3b8f_8425,
        d2: 0x20e0,
        d3: 0x4f3b,
        d4: [0x90, 0x7f, 0x1a, 0x25, 0xa7, 0x6f, 0x98, 0xe8],
    },
};
/// The signed FIT (kernel, device tree, optional initramfs, command line)
/// a production loader boots; `docs/verified-boot.md`.
pub const BOOT: PartitionDef = PartitionDef {
    name: "boot",
    type_guid: Guid {
        d1: 0x7c5e_3a10,
        d2: 0x9d2b,
        d3: 0x4f61,
        d4: [0x8a, 0x3e, 0x52, 0x1f, 0x6b, 0xc4, 0x90, 0xd7],
    },
};
/// All of them, in the order `mfgtool image` lays them out.
pub const ALL: [PartitionDef; 7] = [MFG_DATA, MFG_BUNDLE, KERNEL, DTB, INITRD, BOOT, LOADER];
