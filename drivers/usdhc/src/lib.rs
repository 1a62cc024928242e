//! i.MX uSDHC driver (SD and eMMC, ADMA2 and PIO), block devices and GPT
#![no_std]
