//! Provisioning formats shared by the loader and the OEM tool: sealed bundle, identity record, provisioning area
#![no_std]
