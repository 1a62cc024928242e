//! Line editing: printable ASCII, backspace/DEL, Ctrl-C (cancel the line),
//! Ctrl-U (erase the line), CR or LF (or CR LF) to finish.

use heapless::Vec;

/// Longest accepted line, in characters.
pub const MAX_LINE: usize = 256;

/// What a byte did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// Still editing.
    Pending,
    /// A line is complete: read it with [`LineEditor::line`].
    Line,
    /// Ctrl-C: the line was cancelled.
    Interrupted,
    /// The finished line was longer than [`MAX_LINE`]; it is dropped.
    TooLong,
    /// The finished line contained a byte that is not ASCII; it is dropped.
    NonAscii(u8),
}

/// A line editor. Echo goes through the callback given to [`feed`](Self::feed).
#[derive(Default)]
pub struct LineEditor {
    buf: Vec<u8, MAX_LINE>,
    overflow: bool,
    bad: Option<u8>,
    last_cr: bool,
    done: bool,
}

impl LineEditor {
    /// An empty editor.
    pub fn new() -> Self {
        Self::default()
    }

    fn reset(&mut self) {
        self.buf.clear();
        self.overflow = false;
        self.bad = None;
        self.done = false;
    }

    /// The completed line (valid after [`Event::Line`], until the next byte).
    pub fn line(&self) -> &str {
        // Only printable ASCII is ever stored.
        core::str::from_utf8(&self.buf).unwrap_or("")
    }

    /// Takes one received byte; echoes through `echo`.
    pub fn feed(&mut self, b: u8, mut echo: impl FnMut(&[u8])) -> Event {
        if self.done {
            self.reset();
        }
        let after_cr = core::mem::replace(&mut self.last_cr, b == b'\r');
        match b {
            b'\n' if after_cr => Event::Pending,
            b'\r' | b'\n' => {
                echo(b"\r\n");
                self.done = true;
                if let Some(bad) = self.bad {
                    Event::NonAscii(bad)
                } else if self.overflow {
                    Event::TooLong
                } else {
                    Event::Line
                }
            }
            0x03 => {
                echo(b"<INTERRUPT>\r\n");
                self.done = true;
                Event::Interrupted
            }
            0x15 => {
                for _ in 0..self.buf.len() {
                    echo(b"\x08 \x08");
                }
                self.reset();
                Event::Pending
            }
            0x08 | 0x7f => {
                if self.buf.pop().is_some() {
                    echo(b"\x08 \x08");
                }
                Event::Pending
            }
            b'\t' | 0x20..=0x7e => {
                let c = if b == b'\t' { b' ' } else { b };
                if self.buf.push(c).is_ok() {
                    echo(&[c]);
                } else {
                    self.overflow = true;
                }
                Event::Pending
            }
            0x80..=0xff => {
                self.bad.get_or_insert(b);
                Event::Pending
            }
            _ => Event::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &[u8]) -> (std::vec::Vec<(Event, String)>, std::vec::Vec<u8>) {
        let mut ed = LineEditor::new();
        let mut echo = std::vec::Vec::new();
        let mut events = std::vec::Vec::new();
        for &b in input {
            let e = ed.feed(b, |x| echo.extend_from_slice(x));
            if e != Event::Pending {
                events.push((e, ed.line().to_string()));
            }
        }
        (events, echo)
    }

    #[test]
    fn plain_line_with_crlf_is_one_line() {
        let (ev, echo) = run(b"md 0\r\nversion\n");
        assert_eq!(
            ev,
            [
                (Event::Line, "md 0".into()),
                (Event::Line, "version".into())
            ]
        );
        assert_eq!(echo, b"md 0\r\nversion\r\n");
    }

    #[test]
    fn backspace_and_ctrl_u_edit() {
        let (ev, echo) = run(b"mdx\x08 1\x7f2\r");
        assert_eq!(ev, [(Event::Line, "md 2".into())]);
        assert!(echo.starts_with(b"mdx\x08 \x08"));
        let (ev, _) = run(b"garbage\x15help\r");
        assert_eq!(ev, [(Event::Line, "help".into())]);
    }

    #[test]
    fn ctrl_c_cancels() {
        let (ev, echo) = run(b"md 40\x03version\r");
        assert_eq!(ev[0].0, Event::Interrupted);
        assert_eq!(ev[1], (Event::Line, "version".into()));
        assert!(echo.windows(11).any(|w| w == b"<INTERRUPT>"));
    }

    #[test]
    fn too_long_and_non_ascii_are_refused() {
        let mut long = vec![b'a'; MAX_LINE + 10];
        long.push(b'\r');
        let (ev, echo) = run(&long);
        assert_eq!(ev[0].0, Event::TooLong);
        assert_eq!(echo.len(), MAX_LINE + 2);
        let (ev, _) = run(b"echo \xc3\xa9\r");
        assert_eq!(ev[0].0, Event::NonAscii(0xc3));
        let (ev, _) = run(b"version\r");
        assert_eq!(
            ev[0].0,
            Event::Line,
            "a refused line does not poison the next"
        );
    }
}
