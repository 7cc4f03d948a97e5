//! A writer adapter that turns every `\n` into `\r\n` for the serial
//! console, leaving an existing `\r\n` alone.

use core::fmt::{self, Write};

/// Writes to an inner writer, translating newlines to `\r\n`.
pub struct Crlf<'a> {
    inner: &'a mut dyn Write,
    /// The last character written was `\r`.
    after_cr: bool,
}

impl<'a> Crlf<'a> {
    /// Wraps `inner`.
    pub fn new(inner: &'a mut dyn Write) -> Crlf<'a> {
        Crlf {
            inner,
            after_cr: false,
        }
    }
}

impl Write for Crlf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find('\n') {
            let before = &rest[..i];
            self.inner.write_str(before)?;
            let cr_before = if before.is_empty() {
                self.after_cr
            } else {
                before.ends_with('\r')
            };
            self.inner
                .write_str(if cr_before { "\n" } else { "\r\n" })?;
            self.after_cr = false;
            rest = &rest[i + 1..];
        }
        if !rest.is_empty() {
            self.inner.write_str(rest)?;
            self.after_cr = rest.ends_with('\r');
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;

    #[test]
    fn translates_newlines_once() {
        let mut s = String::new();
        let mut w = Crlf::new(&mut s);
        write!(w, "a\nb\r\n\n").unwrap();
        w.write_str("c\r").unwrap();
        w.write_str("\nd\n").unwrap();
        assert_eq!(s, "a\r\nb\r\n\r\nc\r\nd\r\n");
    }
}
