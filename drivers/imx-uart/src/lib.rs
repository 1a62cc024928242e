//! i.MX UART driver
#![no_std]
