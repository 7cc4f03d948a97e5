//! TCP connection building blocks for FireEngine part 2 (not wired into
//! the instance yet): plain types, driven by the caller's clock, that the
//! TCP room will use on the receive side and at connection set-up.
//!
//! * [`rcv_reass`]: one connection's out-of-order receive queue (illumos
//!   `tcp_reass`), with SACK blocks and the `tcpIn*` data counters.
//! * [`isn`]: RFC 6528 initial sequence numbers (4 µs clock + keyed hash).
//! * [`syncookie`]: SYN cookies for a full q0 (RFC 4987), options carried
//!   in the timestamp.
//! * [`cookie_replay`]: the cookies that made a conn lately, so that a
//!   late copy makes no second one.
//! * [`listen_q`]: a listener's q0 and q with illumos' limits, q0 drop
//!   policy, SYN defense and counters.
//! * [`tuple`]: the 4-tuple they share.
//!
//! Private: SipHash-2-4 (`siphash`, tested against the paper's vectors)
//! and wrapping sequence arithmetic (`seq`), so the room stands alone.

pub mod cookie_replay;
pub mod isn;
pub mod listen_q;
pub mod rcv_reass;
pub mod syncookie;
pub mod tuple;

mod seq;
mod siphash;
