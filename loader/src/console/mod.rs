//! The U-Boot-style console: line editing, argument parsing, output
//! formatting (portable, host-tested) and the shell loop (target).

pub mod args;
pub mod hexdump;
pub mod line;
pub mod lock;

#[cfg(target_os = "none")]
pub mod shell;

#[cfg(test)]
pub(crate) mod props;
