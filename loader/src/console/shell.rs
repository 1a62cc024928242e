//! The shell loop: read a line, run it, print the prompt again.

use super::line::{Event, LineEditor, MAX_LINE};
use crate::arch::cycles;
use crate::commands;
use crate::machine::{Machine, outln};

/// The prompt, as U-Boot's.
pub const PROMPT: &str = "=> ";

/// Runs the console forever.
pub fn run(m: &mut Machine) -> ! {
    let mut ed = LineEditor::new();
    defmt::info!("bench prompt={=u64}", cycles());
    m.console.write_bytes(PROMPT.as_bytes());
    loop {
        let b = loop {
            if let Some(b) = m.try_read_byte() {
                break b;
            }
            core::hint::spin_loop();
        };
        let event = ed.feed(b, |echo| m.console.write_bytes(echo));
        let start = cycles();
        match event {
            Event::Pending => continue,
            Event::Line => commands::execute(m, ed.line()),
            Event::Interrupted => {}
            Event::TooLong => outln!(m, "line too long (max {} characters): ignored", MAX_LINE),
            Event::NonAscii(b) => outln!(m, "non-ASCII byte 0x{:02x} in line: ignored", b),
        }
        m.console.write_bytes(PROMPT.as_bytes());
        defmt::info!("bench cmd={=u64}", cycles() - start);
    }
}
