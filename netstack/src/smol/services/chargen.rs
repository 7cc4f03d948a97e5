//! TCP chargen (RFC 864): an endless stream of 72-character lines of the 95
//! printable ASCII characters, each line starting one character later than
//! the one before, ended by CR LF. The stream repeats every 95 lines; it is
//! kept as one table built at compile time, and each connection remembers
//! its position in it. Received data is discarded; when the peer closes,
//! the stream ends.

use smoltcp::socket::tcp::{self, State};

use super::pool::Io;

/// Characters per line before CR LF.
pub const LINE_CHARS: usize = 72;
/// Bytes per line, CR LF included.
pub const LINE_BYTES: usize = LINE_CHARS + 2;
/// Printable ASCII characters (space to `~`).
const PRINTABLE: usize = 95;
/// Length of the repeating stream.
pub const PERIOD: usize = LINE_BYTES * PRINTABLE;

/// The whole repeating stream.
pub static PATTERN: [u8; PERIOD] = build();

const fn build() -> [u8; PERIOD] {
    let mut p = [0u8; PERIOD];
    let mut i = 0;
    while i < PERIOD {
        let (line, col) = (i / LINE_BYTES, i % LINE_BYTES);
        p[i] = if col < LINE_CHARS {
            b' ' + ((line + col) % PRINTABLE) as u8
        } else if col == LINE_CHARS {
            b'\r'
        } else {
            b'\n'
        };
        i += 1;
    }
    p
}

/// Copies the stream from `*pos` into `buf`, advancing `*pos`; returns the
/// bytes written (all of `buf`).
pub fn fill(buf: &mut [u8], pos: &mut usize) -> usize {
    let mut done = 0;
    while done < buf.len() {
        let p = *pos % PERIOD;
        let n = (PERIOD - p).min(buf.len() - done);
        buf[done..done + n].copy_from_slice(&PATTERN[p..p + n]);
        done += n;
        *pos = (p + n) % PERIOD;
    }
    done
}

/// Discards input and fills `s`'s send buffer with the stream.
pub fn serve(s: &mut tcp::Socket<'static>, pos: &mut usize, io: &mut Io) {
    super::discard::serve(s, io);
    if !s.may_send() || s.state() == State::CloseWait {
        return;
    }
    // The free space may wrap around the end of the ring: two rounds.
    for _ in 0..2 {
        match s.send(|buf| {
            let n = fill(buf, pos);
            (n, n)
        }) {
            Ok(n) if n > 0 => io.bytes_out += n as u64,
            _ => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_lines() {
        let first = &PATTERN[..LINE_BYTES];
        assert_eq!(&first[..10], b" !\"#$%&'()");
        assert_eq!(&first[LINE_CHARS..], b"\r\n");
        let second = &PATTERN[LINE_BYTES..2 * LINE_BYTES];
        assert_eq!(second[0], b'!');
        // Line 94 starts with '~' and wraps around to ' '.
        let last = &PATTERN[94 * LINE_BYTES..];
        assert_eq!(last[0], b'~');
        assert_eq!(last[1], b' ');
    }

    #[test]
    fn fill_wraps() {
        let mut pos = PERIOD - 3;
        let mut buf = [0u8; 10];
        assert_eq!(fill(&mut buf, &mut pos), 10);
        assert_eq!(&buf[..3], &PATTERN[PERIOD - 3..]);
        assert_eq!(&buf[3..], &PATTERN[..7]);
        assert_eq!(pos, 7);
    }
}
