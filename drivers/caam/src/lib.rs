//! i.MX8M CAAM driver: job ring, RNG, Manufacturing Protection, blobs
#![no_std]
