//! The line editor: turns console bytes, one at a time, into lines.
//!
//! It echoes what it accepts and edits in place on a dumb serial terminal:
//! backspace and Ctrl-U erase, Ctrl-C abandons the line, Ctrl-D on an
//! empty line is end-of-file. `\r`, `\n` and `\r\n` each end one line.
//! ANSI escape sequences (arrow keys and the like) are swallowed; other
//! control bytes and non-ASCII bytes are ignored. Echoed newlines are
//! always `\r\n`.

use alloc::string::String;
use core::fmt::Write;

/// The default longest line; further bytes are dropped.
pub const DEFAULT_MAX_LINE: usize = 1024;

const CTRL_C: u8 = 0x03;
const CTRL_D: u8 = 0x04;
const BACKSPACE: u8 = 0x08;
const CTRL_U: u8 = 0x15;
const ESC: u8 = 0x1b;
const DEL: u8 = 0x7f;

/// What a byte completed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LineEvent {
    /// A line was entered (without its terminator).
    Line(String),
    /// Ctrl-C: the line being typed was discarded.
    Interrupt,
    /// Ctrl-D on an empty line.
    Eof,
}

/// Where the editor is within an escape sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Escape {
    /// Not in one.
    None,
    /// After ESC.
    Start,
    /// After ESC `[`: parameters until a final byte 0x40..=0x7e.
    Csi,
    /// After ESC `O`: one more byte (SS3 keys such as F1–F4).
    Ss3,
}

/// A line editor for a serial console.
#[derive(Clone, Debug)]
pub struct LineEditor {
    buf: String,
    max: usize,
    /// The previous byte was a `\r` that ended a line.
    after_cr: bool,
    escape: Escape,
}

impl Default for LineEditor {
    fn default() -> Self {
        LineEditor::new()
    }
}

impl LineEditor {
    /// An editor with lines of up to [`DEFAULT_MAX_LINE`] bytes.
    pub fn new() -> LineEditor {
        LineEditor::with_max_len(DEFAULT_MAX_LINE)
    }

    /// An editor with lines of up to `max` bytes.
    pub fn with_max_len(max: usize) -> LineEditor {
        LineEditor {
            buf: String::new(),
            max,
            after_cr: false,
            escape: Escape::None,
        }
    }

    /// The line typed so far (to redraw it after other output).
    pub fn pending(&self) -> &str {
        &self.buf
    }

    /// Forgets the line typed so far and any partial escape sequence.
    pub fn reset(&mut self) {
        self.buf.clear();
        self.after_cr = false;
        self.escape = Escape::None;
    }

    /// Feeds one byte. Echo (and erase sequences) go to `echo`; errors
    /// writing the echo are ignored. Returns an event when the byte
    /// completes a line, interrupts it or signals end-of-file.
    pub fn feed(&mut self, b: u8, echo: &mut dyn Write) -> Option<LineEvent> {
        let after_cr = core::mem::replace(&mut self.after_cr, false);

        if self.escape != Escape::None {
            // A control byte aborts the sequence and is handled normally.
            if b >= 0x20 && b != DEL {
                self.escape = match (self.escape, b) {
                    (Escape::Start, b'[') => Escape::Csi,
                    (Escape::Start, b'O') => Escape::Ss3,
                    (Escape::Csi, 0x20..=0x3f) => Escape::Csi,
                    _ => Escape::None,
                };
                return None;
            }
            self.escape = Escape::None;
        }

        match b {
            b'\n' if after_cr => None,
            b'\r' | b'\n' => {
                self.after_cr = b == b'\r';
                let _ = echo.write_str("\r\n");
                Some(LineEvent::Line(core::mem::take(&mut self.buf)))
            }
            CTRL_C => {
                self.buf.clear();
                let _ = echo.write_str("^C\r\n");
                Some(LineEvent::Interrupt)
            }
            CTRL_D if self.buf.is_empty() => Some(LineEvent::Eof),
            BACKSPACE | DEL => {
                if self.buf.pop().is_some() {
                    let _ = echo.write_str("\x08 \x08");
                }
                None
            }
            CTRL_U => {
                while self.buf.pop().is_some() {
                    let _ = echo.write_str("\x08 \x08");
                }
                None
            }
            ESC => {
                self.escape = Escape::Start;
                None
            }
            0x20..=0x7e => {
                if self.buf.len() < self.max {
                    self.buf.push(b as char);
                    let _ = echo.write_char(b as char);
                }
                None
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    /// Feeds `input`, returning the events and the echo.
    fn run(ed: &mut LineEditor, input: &[u8]) -> (Vec<LineEvent>, String) {
        let mut echo = String::new();
        let events = input
            .iter()
            .filter_map(|&b| ed.feed(b, &mut echo))
            .collect();
        (events, echo)
    }

    fn line(s: &str) -> LineEvent {
        LineEvent::Line(String::from(s))
    }

    #[test]
    fn simple_line_and_echo() {
        let mut ed = LineEditor::new();
        let (ev, echo) = run(&mut ed, b"psrinfo -v\r");
        assert_eq!(ev, [line("psrinfo -v")]);
        assert_eq!(echo, "psrinfo -v\r\n");
        assert_eq!(ed.pending(), "");
    }

    #[test]
    fn line_terminators() {
        let mut ed = LineEditor::new();
        let (ev, echo) = run(&mut ed, b"a\r\nb\nc\rd\n\ne\r\r");
        assert_eq!(
            ev,
            [
                line("a"),
                line("b"),
                line("c"),
                line("d"),
                line(""),
                line("e"),
                line("")
            ]
        );
        assert_eq!(echo.matches("\r\n").count(), 7);
        // "\r" then "\n" fed separately is still one line.
        let (ev, _) = run(&mut ed, b"x\r");
        assert_eq!(ev, [line("x")]);
        let (ev, echo) = run(&mut ed, b"\n");
        assert!(ev.is_empty());
        assert_eq!(echo, "");
        // A "\n" after "\r" then text: only the first "\n" is swallowed.
        let (ev, _) = run(&mut ed, b"y\r\n\n");
        assert_eq!(ev, [line("y"), line("")]);
    }

    #[test]
    fn backspace_and_delete() {
        let mut ed = LineEditor::new();
        let (ev, echo) = run(&mut ed, b"ab\x08c\x7f\x7f\x7fd\r");
        assert_eq!(ev, [line("d")]);
        assert_eq!(echo, "ab\x08 \x08c\x08 \x08\x08 \x08d\r\n");
    }

    #[test]
    fn ctrl_u_erases_line() {
        let mut ed = LineEditor::new();
        let (ev, echo) = run(&mut ed, b"abc\x15x\r");
        assert_eq!(ev, [line("x")]);
        assert_eq!(echo, "abc\x08 \x08\x08 \x08\x08 \x08x\r\n");
        let (_, echo) = run(&mut ed, b"\x15");
        assert_eq!(echo, "");
    }

    #[test]
    fn ctrl_c_interrupts() {
        let mut ed = LineEditor::new();
        let (ev, echo) = run(&mut ed, b"abc\x03def\r");
        assert_eq!(ev, [LineEvent::Interrupt, line("def")]);
        assert_eq!(echo, "abc^C\r\ndef\r\n");
    }

    #[test]
    fn ctrl_d() {
        let mut ed = LineEditor::new();
        let (ev, echo) = run(&mut ed, b"\x04");
        assert_eq!(ev, [LineEvent::Eof]);
        assert_eq!(echo, "");
        let (ev, _) = run(&mut ed, b"ab\x04c\r");
        assert_eq!(ev, [line("abc")]);
    }

    #[test]
    fn escape_sequences_are_swallowed() {
        let mut ed = LineEditor::new();
        // Arrows, Delete (ESC [ 3 ~), a parameterised sequence, SS3 F1, Alt-x.
        let (ev, echo) = run(&mut ed, b"a\x1b[A\x1b[3~\x1b[1;5Cb\x1bOPc\x1bxd\r");
        assert_eq!(ev, [line("abcd")]);
        assert_eq!(echo, "abcd\r\n");
        // A control byte inside a sequence aborts it and acts.
        let (ev, _) = run(&mut ed, b"q\x1b[1\r");
        assert_eq!(ev, [line("q")]);
        let (ev, _) = run(&mut ed, b"\x1b\x03");
        assert_eq!(ev, [LineEvent::Interrupt]);
    }

    #[test]
    fn other_bytes_ignored() {
        let mut ed = LineEditor::new();
        let (ev, echo) = run(&mut ed, b"a\x00\x01\x07\tb\x80\xffc\r");
        assert_eq!(ev, [line("abc")]);
        assert_eq!(echo, "abc\r\n");
    }

    #[test]
    fn length_is_bounded() {
        let mut ed = LineEditor::with_max_len(4);
        let (ev, echo) = run(&mut ed, b"abcdefg\x08h\r");
        assert_eq!(ev, [line("abch")]);
        assert_eq!(echo, "abcd\x08 \x08h\r\n");
        let mut ed = LineEditor::new();
        let long = [b'x'; 5000];
        let (ev, _) = run(&mut ed, &long);
        assert!(ev.is_empty());
        assert_eq!(ed.pending().len(), DEFAULT_MAX_LINE);
        ed.reset();
        assert_eq!(ed.pending(), "");
    }
}
