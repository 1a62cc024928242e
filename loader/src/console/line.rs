//! Line editing: printable ASCII, backspace/DEL, Ctrl-C (cancel the line),
//! Ctrl-U (erase the line), CR or LF (or CR LF) to finish. The keys a
//! terminal sends as escape sequences (arrows, Home, End, Delete, function
//! keys, with or without modifiers) are swallowed whole instead of leaving
//! `[A` in the line: CSI `ESC [ params final` (xterm, VTE, minicom,
//! picocom), SS3 `ESC O [params] final` (application mode, some F-keys),
//! the Linux console's `ESC [ [ A`..`E` and rxvt's `$`/`^`/`@`-terminated
//! keys. A control byte ends a sequence early and then acts as itself. A
//! lone Esc key followed by `[` or `O` still starts a sequence (there is
//! no timer here, unlike ncurses' ESCDELAY).

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
    esc: Escape,
}

/// Where the editor is in a terminal escape sequence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Escape {
    #[default]
    None,
    /// After ESC.
    Start,
    /// After `ESC [`, with this many parameter bytes.
    Csi(u8),
    /// After `ESC O`, with this many parameter bytes.
    Ss3(u8),
    /// After the Linux console's `ESC [ [`: one more byte.
    LinuxFn,
}

/// Longest CSI parameter run swallowed; a longer one is not a key.
const MAX_CSI_PARAMS: u8 = 16;

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
        if self.swallow(b) {
            self.last_cr = false;
            return Event::Pending;
        }
        let after_cr = core::mem::replace(&mut self.last_cr, b == b'\r');
        match b {
            0x1b => {
                self.esc = Escape::Start;
                Event::Pending
            }
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

    /// Whether `b` belongs to an escape sequence (and is dropped).
    fn swallow(&mut self, b: u8) -> bool {
        let (eaten, next) = match (self.esc, b) {
            (Escape::None, _) => return false,
            (Escape::Start, b'[') => (true, Escape::Csi(0)),
            (Escape::Start, b'O') => (true, Escape::Ss3(0)),
            (Escape::Csi(0), b'[') => (true, Escape::LinuxFn),
            (Escape::Csi(n), 0x30..=0x3f) if n < MAX_CSI_PARAMS => (true, Escape::Csi(n + 1)),
            (Escape::Ss3(n), 0x30..=0x3f) if n < MAX_CSI_PARAMS => (true, Escape::Ss3(n + 1)),
            // The final byte (keyboards send no intermediates: rxvt's
            // `$` (Shift) and the like end the key).
            (Escape::Csi(_) | Escape::Ss3(_), 0x20..=0x2f | 0x40..=0x7e)
            | (Escape::LinuxFn, 0x20..=0x7e) => (true, Escape::None),
            // Anything else ends the sequence and is taken as itself.
            _ => (false, Escape::None),
        };
        self.esc = next;
        eaten
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
    fn arrow_and_editing_keys_leave_nothing_in_the_line() {
        // Up, Down, Right, Left (CSI and SS3 forms), Home, End, Delete, F5.
        let keys = b"\x1b[A\x1b[B\x1bOC\x1bOD\x1b[1~\x1b[4~\x1b[3~\x1b[15~";
        let mut input = b"ver".to_vec();
        input.extend_from_slice(keys);
        input.extend_from_slice(b"sion\r");
        let (ev, echo) = run(&input);
        assert_eq!(ev, [(Event::Line, "version".to_string())]);
        assert_eq!(echo, b"version\r\n");
    }

    #[test]
    fn keys_of_other_terminals_leave_nothing_in_the_line() {
        // Linux console F1, F5; SS3 with modifiers (Shift-F1 two ways);
        // rxvt Shift-Delete, Ctrl-Home, Ctrl-Shift-Up; xterm Ctrl-Up.
        let keys: [&[u8]; 8] = [
            b"\x1b[[A",
            b"\x1b[[E",
            b"\x1bO2P",
            b"\x1bO1;2P",
            b"\x1b[3$",
            b"\x1b[7^",
            b"\x1b[a",
            b"\x1b[1;5A",
        ];
        for k in keys {
            let mut input = b"ver".to_vec();
            input.extend_from_slice(k);
            input.extend_from_slice(b"sion\r");
            let (ev, _) = run(&input);
            assert_eq!(ev, [(Event::Line, "version".to_string())], "{k:?}");
        }
    }

    #[test]
    fn a_control_byte_ends_an_escape_sequence_and_acts() {
        // ESC [ cut short by CR: the line still ends; ESC then a letter
        // types the letter; ESC [ then Ctrl-C interrupts.
        let (ev, _) = run(b"md\x1b[\rab\x1bc\r\x1b[12\x03");
        assert_eq!(
            ev,
            [
                (Event::Line, "md".to_string()),
                (Event::Line, "abc".to_string()),
                (Event::Interrupted, String::new()),
            ]
        );
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
