//! The HTTP/1.1 server's protocol core (RFC 9110/9112), stack-free and
//! host-tested:
//!
//! * [`parse`]: the incremental, bounded request parser (request line,
//!   headers, framing) and the status each malformed request earns;
//! * [`response`]: status codes, reasons, and the response head every
//!   answer carries (`Server: Arbalest`, `Content-Length`, `Connection`);
//! * [`pages`]: the endpoints (`/`, `/status.json`, `/stats/dlstat`,
//!   `/stats/flowstat`, `/bytes/N`) behind the [`pages::StatusSource`]
//!   trait the instance implements;
//! * [`pattern`]: the deterministic byte pattern `/bytes/N` streams;
//! * [`conn`]: one connection's state machine: bounded input, keep-alive,
//!   pipelining in order, streaming output as the caller's send room
//!   allows, the request timeout (`408`) on a clock the caller passes;
//! * [`json`]: a small JSON writer for the status pages;
//! * [`counters`]: the server's counters (requests, responses per status
//!   class, bytes, connections, refusals, timeouts).

pub mod conn;
pub mod counters;
pub mod json;
pub mod pages;
pub mod parse;
pub mod pattern;
pub mod response;

pub use conn::HttpConn;
pub use counters::HttpCounters;
pub use pages::StatusSource;

/// The port the service listens on.
pub const HTTP_PORT: u16 = 80;
