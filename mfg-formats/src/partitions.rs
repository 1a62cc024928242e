//! GPT partition names and type GUIDs (`block::Guid`) the loader looks up (by name) and
//! `mfgtool image` creates.

use block::Guid;

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
    // bc126847-b355-4f88-a484-0c3b4cd5aab0
    type_guid: Guid::from_text_bytes([
        0xbc, 0x12, 0x68, 0x47, 0xb3, 0x55, 0x4f, 0x88, 0xa4, 0x84, 0x0c, 0x3b, 0x4c, 0xd5, 0xaa,
        0xb0,
    ]),
};
/// Sealed bundle.
pub const MFG_BUNDLE: PartitionDef = PartitionDef {
    name: "mfg-bundle",
    // 168b29ff-2236-4bfc-bc72-c58cdc82b3f7
    type_guid: Guid::from_text_bytes([
        0x16, 0x8b, 0x29, 0xff, 0x22, 0x36, 0x4b, 0xfc, 0xbc, 0x72, 0xc5, 0x8c, 0xdc, 0x82, 0xb3,
        0xf7,
    ]),
};
/// Raw arm64 kernel Image.
pub const KERNEL: PartitionDef = PartitionDef {
    name: "kernel",
    // 9b980737-e84a-4932-ab20-668f8353adff
    type_guid: Guid::from_text_bytes([
        0x9b, 0x98, 0x07, 0x37, 0xe8, 0x4a, 0x49, 0x32, 0xab, 0x20, 0x66, 0x8f, 0x83, 0x53, 0xad,
        0xff,
    ]),
};
/// Raw flattened device tree.
pub const DTB: PartitionDef = PartitionDef {
    name: "dtb",
    // 06548593-e8be-4c97-bed6-35edf49ea9e8
    type_guid: Guid::from_text_bytes([
        0x06, 0x54, 0x85, 0x93, 0xe8, 0xbe, 0x4c, 0x97, 0xbe, 0xd6, 0x35, 0xed, 0xf4, 0x9e, 0xa9,
        0xe8,
    ]),
};
/// Raw initramfs (optional).
pub const INITRD: PartitionDef = PartitionDef {
    name: "initrd",
    // 150ef8c5-5be2-418c-9cee-3bc8cc17691a
    type_guid: Guid::from_text_bytes([
        0x15, 0x0e, 0xf8, 0xc5, 0x5b, 0xe2, 0x41, 0x8c, 0x9c, 0xee, 0x3b, 0xc8, 0xcc, 0x17, 0x69,
        0x1a,
    ]),
};
/// The loader image (optional; on silicon the loader lives in the boot
/// partition, this copy is for reference/recovery).
pub const LOADER: PartitionDef = PartitionDef {
    name: "loader",
    // 3b8f8425-20e0-4f3b-907f-1a25a76f98e8
    type_guid: Guid::from_text_bytes([
        0x3b, 0x8f, 0x84, 0x25, 0x20, 0xe0, 0x4f, 0x3b, 0x90, 0x7f, 0x1a, 0x25, 0xa7, 0x6f, 0x98,
        0xe8,
    ]),
};
/// The signed FIT (kernel, device tree, optional initramfs, command line)
/// a production loader boots; `docs/verified-boot.md`.
pub const BOOT: PartitionDef = PartitionDef {
    name: "boot",
    // 7c5e3a10-9d2b-4f61-8a3e-521f6bc490d7
    type_guid: Guid::from_text_bytes([
        0x7c, 0x5e, 0x3a, 0x10, 0x9d, 0x2b, 0x4f, 0x61, 0x8a, 0x3e, 0x52, 0x1f, 0x6b, 0xc4, 0x90,
        0xd7,
    ]),
};
/// All of them, in the order `mfgtool image` lays them out.
pub const ALL: [PartitionDef; 7] = [MFG_DATA, MFG_BUNDLE, KERNEL, DTB, INITRD, BOOT, LOADER];
