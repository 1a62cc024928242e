//! Block devices and the GPT reader.
#![no_std]
