//! One HTTP connection's state machine, independent of the socket below:
//! the caller feeds it what it read ([`HttpConn::feed`], at most
//! [`HttpConn::input_room`] bytes), takes what it may send
//! ([`HttpConn::output`], at most the socket's send room), ticks it with
//! its clock ([`HttpConn::tick`]) and closes the connection when it says
//! so ([`HttpConn::should_close`], [`HttpConn::should_abort`]).
//!
//! * Input is bounded: the buffer holds at most [`MAX_INBUF`] bytes (one
//!   head at its limits, plus pipelined requests); when it is full the
//!   caller stops reading and TCP's window closes on the client.
//! * One response is in flight at a time; pipelined requests wait in the
//!   buffer and are answered in order as the previous answer drains.
//! * `/bytes/N` is made as room opens, never buffered whole.
//! * Keep-alive: HTTP/1.1 unless `Connection: close`; HTTP/1.0 only with
//!   `Connection: keep-alive`. A refused request (a malformed head, a
//!   limit exceeded) is answered, then the connection closes: the stream
//!   can no longer be trusted to be in step.
//! * Timeouts, on the caller's clock (ms): a request must arrive complete
//!   within [`REQUEST_TIMEOUT_MS`] of the connection becoming idle — if
//!   some of it came, `408` and close; if nothing came, the idle
//!   connection is closed quietly. A response the client does not read
//!   for [`WRITE_TIMEOUT_MS`] ends in a reset.

use alloc::vec::Vec;
use core::sync::atomic::Ordering;

use super::counters::HttpCounters;
use super::pages::{self, Body, StatusSource};
use super::parse::{MAX_HEAD, Method, Parsed, Parser, Refusal, Request};
use super::pattern;
use super::response::Head;

/// How long a client has to send a complete request head, ms.
pub const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// How long a response may make no progress, ms.
pub const WRITE_TIMEOUT_MS: u64 = 30_000;
/// The input buffer's bound.
pub const MAX_INBUF: usize = MAX_HEAD + 8 * 1024;
/// Most bytes read at once while discarding (a body, or after close).
const DISCARD_CHUNK: usize = 64 * 1024;

/// See the module documentation.
pub struct HttpConn {
    inbuf: Vec<u8>,
    parser: Parser,
    /// Request body bytes still to read and discard.
    skip: u64,
    /// Head (and small body) not yet sent.
    out: Vec<u8>,
    out_at: usize,
    /// Pattern bytes still to send: (next offset, end).
    stream: Option<(u64, u64)>,
    /// No more requests: close once the output drained.
    closing: bool,
    /// The client finished sending.
    peer_eof: bool,
    /// A client not reading: reset.
    abort: bool,
    /// When the request being waited for must be complete.
    deadline_ms: u64,
    /// Last time output moved (or a response started).
    progress_ms: u64,
    /// A response was started and not yet seen drained.
    in_flight: bool,
    /// Responses so far: (status, had a body), for tests.
    #[cfg(test)]
    pub log: Vec<(u16, bool)>,
}

impl HttpConn {
    /// A new connection, waiting for its first request from `now_ms`.
    pub fn new(now_ms: u64) -> HttpConn {
        HttpConn {
            inbuf: Vec::new(),
            parser: Parser::new(),
            skip: 0,
            out: Vec::new(),
            out_at: 0,
            stream: None,
            closing: false,
            peer_eof: false,
            abort: false,
            deadline_ms: now_ms.saturating_add(REQUEST_TIMEOUT_MS),
            progress_ms: now_ms,
            in_flight: false,
            #[cfg(test)]
            log: Vec::new(),
        }
    }

    /// A connection answered `503` and closed at once (over the bound).
    pub fn refused(now_ms: u64, ctr: &HttpCounters) -> HttpConn {
        let mut c = HttpConn::new(now_ms);
        c.respond_error(503, true, ctr);
        c.closing = true;
        c
    }

    /// How many bytes the caller may read and feed now.
    pub fn input_room(&self) -> usize {
        if self.closing || self.peer_eof {
            // Read and drop what still comes, so that closing with unread
            // data does not reset the answer away (a lingering close).
            return DISCARD_CHUNK;
        }
        let skip = usize::try_from(self.skip).unwrap_or(usize::MAX).min(DISCARD_CHUNK);
        skip + MAX_INBUF.saturating_sub(self.inbuf.len())
    }

    /// Whether nothing is left to send.
    fn drained(&self) -> bool {
        self.out_at >= self.out.len() && self.stream.is_none()
    }

    /// Takes bytes read from the client.
    pub fn feed(&mut self, mut data: &[u8], now_ms: u64, src: &dyn StatusSource, ctr: &HttpCounters) {
        ctr.bytes_in.fetch_add(data.len() as u64, Ordering::Relaxed);
        if self.closing {
            return;
        }
        if self.skip > 0 && self.inbuf.is_empty() {
            let k = usize::try_from(self.skip).unwrap_or(usize::MAX).min(data.len());
            self.skip -= k as u64;
            data = &data[k..];
        }
        let room = MAX_INBUF.saturating_sub(self.inbuf.len());
        // The caller read no more than `input_room`; anything beyond is
        // dropped rather than let the buffer grow.
        self.inbuf.extend_from_slice(&data[..data.len().min(room)]);
        self.advance(now_ms, src, ctr);
    }

    /// The client finished sending (its FIN): complete requests already
    /// read are still answered, then the connection closes.
    pub fn peer_finished(&mut self, now_ms: u64, src: &dyn StatusSource, ctr: &HttpCounters) {
        self.peer_eof = true;
        self.advance(now_ms, src, ctr);
    }

    /// Up to `room` bytes to send now.
    pub fn output(&mut self, room: usize, now_ms: u64, src: &dyn StatusSource, ctr: &HttpCounters) -> Vec<u8> {
        let mut v = Vec::new();
        while v.len() < room {
            if self.out_at < self.out.len() {
                let k = (self.out.len() - self.out_at).min(room - v.len());
                v.extend_from_slice(&self.out[self.out_at..self.out_at + k]);
                self.out_at += k;
                if self.out_at == self.out.len() {
                    self.out.clear();
                    self.out_at = 0;
                }
            } else if let Some((pos, end)) = self.stream {
                let k = usize::try_from(end - pos).unwrap_or(usize::MAX).min(room - v.len());
                pattern::extend(&mut v, pos, k);
                self.stream = if pos + k as u64 >= end { None } else { Some((pos + k as u64, end)) };
            } else {
                if self.in_flight {
                    // This answer is out: the wait for the next request
                    // starts now.
                    self.in_flight = false;
                    self.deadline_ms = now_ms.saturating_add(REQUEST_TIMEOUT_MS);
                }
                // The next pipelined request may go.
                if !self.advance(now_ms, src, ctr) {
                    break;
                }
            }
        }
        if !v.is_empty() {
            self.progress_ms = now_ms;
            ctr.bytes_out.fetch_add(v.len() as u64, Ordering::Relaxed);
        }
        v
    }

    /// Runs the timeouts at `now_ms`.
    pub fn tick(&mut self, now_ms: u64, ctr: &HttpCounters) {
        if self.closing && self.drained() {
            return;
        }
        if !self.drained() {
            if now_ms.saturating_sub(self.progress_ms) >= WRITE_TIMEOUT_MS && !self.abort {
                self.abort = true;
                ctr.timeouts.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        if self.closing || now_ms < self.deadline_ms {
            return;
        }
        ctr.timeouts.fetch_add(1, Ordering::Relaxed);
        if Parser::started(&self.inbuf) || self.skip > 0 {
            self.respond_error(408, true, ctr);
        }
        self.closing = true;
    }

    /// Whether every answer is out and the connection should close
    /// (the caller shuts down its write side).
    pub fn should_close(&self) -> bool {
        self.closing && self.drained()
    }

    /// Whether the connection should be reset.
    pub fn should_abort(&self) -> bool {
        self.abort
    }

    /// When [`HttpConn::tick`] next has something to decide, ms.
    pub fn deadline(&self) -> u64 {
        if self.drained() { self.deadline_ms } else { self.progress_ms.saturating_add(WRITE_TIMEOUT_MS) }
    }

    /// Answers the next request if nothing is in flight; whether it
    /// produced output.
    fn advance(&mut self, now_ms: u64, src: &dyn StatusSource, ctr: &HttpCounters) -> bool {
        if self.closing || !self.drained() {
            return false;
        }
        if self.skip > 0 {
            let k = usize::try_from(self.skip).unwrap_or(usize::MAX).min(self.inbuf.len());
            self.inbuf.drain(..k);
            self.skip -= k as u64;
            if self.skip > 0 {
                if self.peer_eof {
                    self.closing = true;
                }
                return false;
            }
        }
        match self.parser.parse(&self.inbuf) {
            Parsed::Partial => {
                if self.inbuf.len() >= MAX_INBUF {
                    // Cannot happen within the parser's limits; refuse
                    // rather than stall.
                    self.respond_error(431, true, ctr);
                    self.closing = true;
                    return true;
                }
                if self.peer_eof {
                    // An incomplete request can never finish.
                    self.closing = true;
                }
                false
            }
            Parsed::Refused(Refusal(code)) => {
                self.inbuf.clear();
                self.parser.reset();
                self.respond_error(code, true, ctr);
                self.closing = true;
                true
            }
            Parsed::Request { req, used } => {
                self.inbuf.drain(..used);
                self.parser.reset();
                self.skip = req.body;
                self.progress_ms = now_ms;
                self.respond(&req, src, ctr);
                if req.close {
                    self.closing = true;
                }
                true
            }
        }
    }

    fn respond(&mut self, req: &Request, src: &dyn StatusSource, ctr: &HttpCounters) {
        let head_only = req.method == Method::Head;
        let body = match req.method {
            Method::Other => {
                let data = super::response::error_body(405);
                let head = Head {
                    code: 405,
                    content_type: "text/plain; charset=utf-8",
                    length: data.len() as u64,
                    close: req.close,
                    keep_alive_10: req.keep_alive_10,
                    allow: true,
                };
                self.start(head, Some(data), 0, ctr);
                return;
            }
            _ => pages::route(&req.target, src),
        };
        match body {
            Body::Bytes { code, content_type, data } => {
                let head = Head {
                    code,
                    content_type,
                    length: data.len() as u64,
                    close: req.close,
                    keep_alive_10: req.keep_alive_10,
                    allow: false,
                };
                self.start(head, (!head_only).then_some(data), 0, ctr);
            }
            Body::Pattern { len } => {
                let head = Head {
                    code: 200,
                    content_type: "application/octet-stream",
                    length: len,
                    close: req.close,
                    keep_alive_10: req.keep_alive_10,
                    allow: false,
                };
                self.start(head, None, if head_only { 0 } else { len }, ctr);
            }
        }
    }

    fn respond_error(&mut self, code: u16, close: bool, ctr: &HttpCounters) {
        let data = super::response::error_body(code);
        let head = Head {
            code,
            content_type: "text/plain; charset=utf-8",
            length: data.len() as u64,
            close,
            keep_alive_10: false,
            allow: code == 405,
        };
        self.start(head, Some(data), 0, ctr);
    }

    fn start(&mut self, head: Head, data: Option<Vec<u8>>, stream: u64, ctr: &HttpCounters) {
        ctr.requests.fetch_add(1, Ordering::Relaxed);
        ctr.count_status(head.code);
        #[cfg(test)]
        self.log.push((head.code, data.is_some() || stream > 0 || head.length == 0));
        self.in_flight = true;
        self.out = head.emit();
        self.out_at = 0;
        if let Some(d) = data {
            self.out.extend_from_slice(&d);
        }
        self.stream = (stream > 0).then_some((0, stream));
    }
}

#[cfg(test)]
mod tests;
