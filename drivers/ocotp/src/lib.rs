//! i.MX8M Plus OCOTP fuse reader and security state
#![no_std]
