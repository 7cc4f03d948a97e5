//! The request parser: incremental over a connection's input buffer (it
//! resumes scanning where it stopped, so a head trickling in byte by byte
//! costs linear time), bounded, and total — every byte sequence ends in a
//! request or in the status that refuses it, never a panic.
//!
//! Limits and what exceeding them earns:
//!
//! | what | limit | status |
//! |---|---|---|
//! | request line (method, target, version) | [`MAX_REQUEST_LINE`] | `414` when the target is what makes it too long, else `400` |
//! | header section | [`MAX_HEADER_BYTES`] bytes or [`MAX_HEADERS`] fields | `431` |
//! | `Content-Length` body | [`MAX_BODY`] | `413` |
//! | `Transfer-Encoding: chunked` body | refused | `411` (send a length) |
//! | another transfer coding | refused | `501` |
//!
//! Malformed input is `400`: a method that is no token, a target that is
//! not origin-form (`/...`) or absolute-form (`http://host/...`) or holds
//! a control or space character, a version that is not `HTTP/d.d`
//! (`505` for `HTTP/2.0` and friends), a header name that is no token or
//! is followed by whitespace before the colon, obsolete line folding,
//! control characters in a value, an HTTP/1.1 request without exactly one
//! `Host`, a `Content-Length` that is not digits or disagrees with
//! another, both `Content-Length` and `Transfer-Encoding`. Up to
//! [`MAX_LEADING_EMPTY`] empty lines before a request line are skipped
//! (RFC 9112 2.2); a bare LF ends a line as CRLF does.

use alloc::string::String;

/// Longest request line, bytes (without its line end).
pub const MAX_REQUEST_LINE: usize = 8 * 1024;
/// Largest header section, bytes (line ends included).
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header fields.
pub const MAX_HEADERS: usize = 100;
/// Largest request body read (and discarded: GET and HEAD carry none that
/// means anything).
pub const MAX_BODY: u64 = 64 * 1024;
/// Empty lines skipped before a request line.
pub const MAX_LEADING_EMPTY: usize = 8;
/// Most bytes the parser needs buffered to decide on a head.
pub const MAX_HEAD: usize = MAX_LEADING_EMPTY * 2 + MAX_REQUEST_LINE + 2 + MAX_HEADER_BYTES + 2;

/// The method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// Any other token (answered `405`).
    Other,
}

/// A parsed request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// Its method.
    pub method: Method,
    /// The path (origin-form, query included).
    pub target: String,
    /// `1` for HTTP/1.1, `0` for HTTP/1.0.
    pub minor: u8,
    /// The client asked to close (`Connection: close`, or 1.0 without
    /// `keep-alive`).
    pub close: bool,
    /// An HTTP/1.0 client asked for keep-alive.
    pub keep_alive_10: bool,
    /// Body bytes that follow the head (to be read and discarded).
    pub body: u64,
}

/// Why a request is refused: the status to answer (the connection then
/// closes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal(pub u16);

/// The outcome of one [`Parser::parse`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// A complete head; `used` bytes of the buffer were its.
    Request {
        /// The request.
        req: Request,
        /// Bytes of the buffer the head took.
        used: usize,
    },
    /// The input can never become a valid request.
    Refused(Refusal),
    /// More input is needed (nothing was consumed).
    Partial,
}

/// Scanning state for the head at the start of a buffer.
#[derive(Clone, Debug, Default)]
pub struct Parser {
    /// Bytes of the buffer already scanned without finding the end.
    scanned: usize,
}

impl Parser {
    /// A parser at the start of a head.
    pub fn new() -> Parser {
        Parser::default()
    }

    /// Forgets the scan (the buffer's head was consumed).
    pub fn reset(&mut self) {
        self.scanned = 0;
    }

    /// Whether any bytes of a head have arrived (after skipped empty
    /// lines).
    pub fn started(buf: &[u8]) -> bool {
        buf.iter().any(|&b| b != b'\r' && b != b'\n')
    }

    /// Looks for a complete head at the start of `buf`.
    pub fn parse(&mut self, buf: &[u8]) -> Parsed {
        // Leading empty lines.
        let mut start = 0;
        let mut empties = 0;
        loop {
            if buf[start..].starts_with(b"\r\n") {
                start += 2;
            } else if buf[start..].starts_with(b"\n") {
                start += 1;
            } else if buf[start..] == *b"\r" {
                return Parsed::Partial;
            } else {
                break;
            }
            empties += 1;
            if empties > MAX_LEADING_EMPTY {
                return Parsed::Refused(Refusal(400));
            }
        }
        let rest = &buf[start..];
        // The request line.
        let Some(le) = memchr(b'\n', rest) else {
            if rest.len() > MAX_REQUEST_LINE {
                return Parsed::Refused(Refusal(line_too_long(rest)));
            }
            // Refuse early what can never be a request line.
            if let Some(r) = early_check(rest) {
                return Parsed::Refused(r);
            }
            return Parsed::Partial;
        };
        let line = strip_cr(&rest[..le]);
        if line.len() > MAX_REQUEST_LINE {
            return Parsed::Refused(Refusal(line_too_long(line)));
        }
        if let Some(r) = early_check(line) {
            return Parsed::Refused(r);
        }
        // The header section: find the empty line, from where we stopped.
        let hstart = le + 1;
        let from = self.scanned.saturating_sub(start).max(hstart);
        let hdrs = &rest[hstart..];
        let mut at = from - hstart;
        let mut end = None;
        while let Some(i) = memchr(b'\n', &hdrs[at..]) {
            let nl = at + i;
            // Is the line ending here empty?
            let line_start = hdrs[..nl].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            let l = &hdrs[line_start..nl];
            if l.is_empty() || l == b"\r" {
                end = Some((line_start, nl + 1));
                break;
            }
            at = nl + 1;
        }
        let Some((hlen, hend)) = end else {
            if hdrs.len() > MAX_HEADER_BYTES {
                return Parsed::Refused(Refusal(431));
            }
            // Resume from the start of the last, unfinished line.
            let last = hdrs.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            self.scanned = start + hstart + last;
            return Parsed::Partial;
        };
        if hlen > MAX_HEADER_BYTES {
            return Parsed::Refused(Refusal(431));
        }
        self.scanned = 0;
        match head(line, &hdrs[..hlen]) {
            Ok(req) => Parsed::Request { req, used: start + hstart + hend },
            Err(r) => Parsed::Refused(r),
        }
    }
}

fn memchr(b: u8, s: &[u8]) -> Option<usize> {
    s.iter().position(|&c| c == b)
}

fn strip_cr(l: &[u8]) -> &[u8] {
    l.strip_suffix(b"\r").unwrap_or(l)
}

/// `tchar` (RFC 9110 5.6.2).
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `414` if the target is what makes the line too long (a method, a
/// space, and a target that alone leaves no room for ` HTTP/1.1`), else
/// `400`.
fn line_too_long(l: &[u8]) -> u16 {
    match memchr(b' ', l) {
        Some(sp) if sp > 0 && l[..sp].iter().all(|&b| is_tchar(b)) => {
            let t = &l[sp + 1..];
            let tlen = memchr(b' ', t).unwrap_or(t.len());
            if sp + 1 + tlen > MAX_REQUEST_LINE - b" HTTP/1.1".len() { 414 } else { 400 }
        }
        _ => 400,
    }
}

/// A request line that is wrong in its first bytes is refused before its
/// end arrives (a binary stream gets its `400` at once).
fn early_check(l: &[u8]) -> Option<Refusal> {
    let mlen = memchr(b' ', l).unwrap_or(l.len());
    if !l[..mlen].iter().all(|&b| is_tchar(b)) || (mlen == 0 && !l.is_empty()) {
        return Some(Refusal(400));
    }
    if mlen < l.len() {
        let t = &l[mlen + 1..];
        let tlen = memchr(b' ', t).unwrap_or(t.len());
        if t[..tlen].iter().any(|&b| !(0x21..=0x7e).contains(&b)) {
            return Some(Refusal(400));
        }
    }
    None
}

fn head(line: &[u8], hdrs: &[u8]) -> Result<Request, Refusal> {
    let bad = Refusal(400);
    let mut parts = line.split(|&b| b == b' ');
    let (Some(m), Some(t), Some(v), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(bad);
    };
    if m.is_empty() || !m.iter().all(|&b| is_tchar(b)) {
        return Err(bad);
    }
    let method = match m {
        b"GET" => Method::Get,
        b"HEAD" => Method::Head,
        _ => Method::Other,
    };
    let minor = version(v)?;
    if t.is_empty() || t.iter().any(|&b| !(0x21..=0x7e).contains(&b)) {
        return Err(bad);
    }
    let target = origin_form(t).ok_or(bad)?;
    let mut req = Request {
        method,
        target: String::from(core::str::from_utf8(target).map_err(|_| bad)?),
        minor,
        close: minor == 0,
        keep_alive_10: false,
        body: 0,
    };
    let mut hosts = 0;
    let mut length: Option<u64> = None;
    let mut coding: Option<bool> = None; // Some(chunked only)
    let mut count = 0;
    for l in hdrs.split(|&b| b == b'\n') {
        let l = strip_cr(l);
        if l.is_empty() {
            continue;
        }
        count += 1;
        if count > MAX_HEADERS {
            return Err(Refusal(431));
        }
        if l[0] == b' ' || l[0] == b'\t' {
            // Obsolete line folding (RFC 9112 5.2).
            return Err(bad);
        }
        let colon = memchr(b':', l).ok_or(bad)?;
        let name = &l[..colon];
        if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
            return Err(bad);
        }
        let value = trim_ows(&l[colon + 1..]);
        if value.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f) {
            return Err(bad);
        }
        if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            // A list of equal values is one value (RFC 9110 8.6).
            for v in value.split(|&b| b == b',') {
                let v = trim_ows(v);
                if v.is_empty() || v.len() > 19 || !v.iter().all(u8::is_ascii_digit) {
                    return Err(bad);
                }
                let n = v.iter().fold(0u64, |a, &d| a * 10 + u64::from(d - b'0'));
                if length.is_some_and(|l| l != n) {
                    return Err(bad);
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let chunked = value
                .split(|&b| b == b',')
                .map(trim_ows)
                .filter(|c| !c.is_empty())
                .all(|c| c.eq_ignore_ascii_case(b"chunked"));
            coding = Some(coding.unwrap_or(true) && chunked);
        } else if name.eq_ignore_ascii_case(b"connection") {
            for o in value.split(|&b| b == b',').map(trim_ows) {
                if o.eq_ignore_ascii_case(b"close") {
                    req.close = true;
                } else if o.eq_ignore_ascii_case(b"keep-alive") && minor == 0 {
                    req.keep_alive_10 = true;
                }
            }
        }
    }
    if minor == 0 && req.keep_alive_10 && !has_close(hdrs) {
        req.close = false;
    }
    if req.close {
        req.keep_alive_10 = false;
    }
    if (minor == 1 && hosts != 1) || hosts > 1 {
        return Err(bad);
    }
    match (coding, length) {
        (Some(_), Some(_)) => return Err(bad),
        (Some(true), None) => return Err(Refusal(411)),
        (Some(false), None) => return Err(Refusal(501)),
        (None, Some(n)) if n > MAX_BODY => return Err(Refusal(413)),
        (None, Some(n)) => req.body = n,
        (None, None) => {}
    }
    Ok(req)
}

fn has_close(hdrs: &[u8]) -> bool {
    hdrs.split(|&b| b == b'\n').any(|l| {
        let l = strip_cr(l);
        match memchr(b':', l) {
            Some(c) if l[..c].eq_ignore_ascii_case(b"connection") => {
                l[c + 1..].split(|&b| b == b',').any(|o| trim_ows(o).eq_ignore_ascii_case(b"close"))
            }
            _ => false,
        }
    })
}

fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', r @ ..] = v {
        v = r;
    }
    while let [r @ .., b' ' | b'\t'] = v {
        v = r;
    }
    v
}

/// `HTTP/1.0` → 0, `HTTP/1.1` → 1; another `HTTP/d.d` is `505`, anything
/// else `400`.
fn version(v: &[u8]) -> Result<u8, Refusal> {
    match v {
        b"HTTP/1.1" => Ok(1),
        b"HTTP/1.0" => Ok(0),
        [b'H', b'T', b'T', b'P', b'/', a, b'.', b] if a.is_ascii_digit() && b.is_ascii_digit() => Err(Refusal(505)),
        _ => Err(Refusal(400)),
    }
}

/// The origin-form path of a target: itself if it starts with `/`; the
/// path of an absolute-form `http://authority/path` (`/` when it has
/// none).
fn origin_form(t: &[u8]) -> Option<&[u8]> {
    if t.first() == Some(&b'/') {
        return Some(t);
    }
    let rest = t.strip_prefix(b"http://").or_else(|| t.strip_prefix(b"HTTP://"))?;
    match memchr(b'/', rest) {
        Some(0) => None,
        Some(i) => Some(&rest[i..]),
        None if !rest.is_empty() && memchr(b'?', rest).is_none() => Some(b"/"),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &[u8]) -> Parsed {
        Parser::new().parse(s)
    }

    fn code(s: &[u8]) -> u16 {
        match p(s) {
            Parsed::Refused(Refusal(c)) => c,
            other => panic!("not refused: {other:?}"),
        }
    }

    #[test]
    fn simple_get() {
        let Parsed::Request { req, used } = p(b"GET /a?b HTTP/1.1\r\nHost: x\r\n\r\nrest") else { panic!() };
        assert_eq!(used, 30);
        assert_eq!(req.method, Method::Get);
        assert_eq!(req.target, "/a?b");
        assert!(!req.close);
    }

    #[test]
    fn versions_and_keepalive() {
        let Parsed::Request { req, .. } = p(b"HEAD / HTTP/1.0\n\n") else { panic!() };
        assert!(req.close && req.method == Method::Head);
        let Parsed::Request { req, .. } = p(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n") else { panic!() };
        assert!(!req.close && req.keep_alive_10);
        let Parsed::Request { req, .. } = p(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n") else { panic!() };
        assert!(req.close);
        assert_eq!(code(b"GET / HTTP/2.0\r\n\r\n"), 505);
        assert_eq!(code(b"GET / HTTP/1\r\n\r\n"), 400);
    }

    #[test]
    fn refusals() {
        assert_eq!(code(b"GET / HTTP/1.1\r\n\r\n"), 400, "no Host");
        assert_eq!(code(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"), 400);
        assert_eq!(code(b"G(T / HTTP/1.1\r\n"), 400);
        assert_eq!(code(b"\x16\x03\x01\x02"), 400, "TLS hello");
        assert_eq!(code(b"GET /a b HTTP/1.1\r\n\r\n"), 400);
        assert_eq!(code(b"GET x HTTP/1.1\r\nHost: a\r\n\r\n"), 400);
        assert_eq!(code(b"GET / HTTP/1.1\r\nHost : a\r\n\r\n"), 400);
        assert_eq!(code(b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n"), 400);
        assert_eq!(code(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1x\r\n\r\n"), 400);
        assert_eq!(code(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"), 400);
        assert_eq!(code(b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n"), 413);
        assert_eq!(code(b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"), 411);
        assert_eq!(code(b"GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n"), 501);
        let mut long = b"GET /".to_vec();
        long.resize(MAX_REQUEST_LINE + 10, b'a');
        assert_eq!(code(&long), 414);
        long.extend_from_slice(b" HTTP/1.1\r\n");
        assert_eq!(code(&long), 414, "the whole line at once");
        let mut pad = b"GET / HTTP/1.1".to_vec();
        pad.resize(MAX_REQUEST_LINE + 10, b'x');
        assert_eq!(code(&pad), 400, "too long after the target");
        let mut big = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        big.resize(MAX_HEADER_BYTES + 100, b'a');
        assert_eq!(code(&big), 431);
        let mut many = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            many.extend_from_slice(alloc::format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(code(&many), 431);
    }

    #[test]
    fn incremental_any_split() {
        let full = b"\r\nGET /bytes/5 HTTP/1.1\r\nHost: h\r\nUser-Agent: t\r\n\r\n";
        let mut parser = Parser::new();
        for n in 0..full.len() {
            assert_eq!(parser.parse(&full[..n]), Parsed::Partial, "prefix {n}");
        }
        let Parsed::Request { req, used } = parser.parse(full) else { panic!() };
        assert_eq!(used, full.len());
        assert_eq!(req.target, "/bytes/5");
    }

    #[test]
    fn absolute_form() {
        let Parsed::Request { req, .. } = p(b"GET http://h/x HTTP/1.1\r\nHost: h\r\n\r\n") else { panic!() };
        assert_eq!(req.target, "/x");
    }
}
