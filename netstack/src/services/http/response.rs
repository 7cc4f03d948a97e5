//! Status codes and the response head. Every response carries
//! `Server: Arbalest`, `Content-Length` (also on `HEAD`, the length the
//! body would have) and a `Connection` header saying whether the
//! connection stays open; the status line is always `HTTP/1.1` (the
//! server's version, RFC 9110 6.2), whatever the request's.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write;

/// The reason phrase of `code` (RFC 9110 15).
pub fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        414 => "URI Too Long",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}

/// What a response says about itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// Status code.
    pub code: u16,
    /// `Content-Type`.
    pub content_type: &'static str,
    /// `Content-Length`: the body's length.
    pub length: u64,
    /// The connection closes after this response.
    pub close: bool,
    /// An HTTP/1.0 client asked for keep-alive: say `keep-alive`
    /// explicitly (1.1 clients assume it).
    pub keep_alive_10: bool,
    /// `Allow: GET, HEAD` (on a `405`).
    pub allow: bool,
}

impl Head {
    /// The head as bytes, blank line included.
    pub fn emit(&self) -> Vec<u8> {
        let mut s = String::with_capacity(160);
        let _ = write!(
            s,
            "HTTP/1.1 {} {}\r\nServer: Arbalest\r\nContent-Type: {}\r\nContent-Length: {}\r\n",
            self.code,
            reason(self.code),
            self.content_type,
            self.length
        );
        if self.allow {
            s.push_str("Allow: GET, HEAD\r\n");
        }
        if self.close {
            s.push_str("Connection: close\r\n");
        } else if self.keep_alive_10 {
            s.push_str("Connection: keep-alive\r\n");
        }
        s.push_str("\r\n");
        s.into_bytes()
    }
}

/// The short text body of an error response.
pub fn error_body(code: u16) -> Vec<u8> {
    let mut s = String::new();
    let _ = writeln!(s, "{} {}", code, reason(code));
    s.into_bytes()
}
